//! What every job backend does with a job's working directory and spec, whatever runs it:
//! check the spec, write its files, collect its outputs — all through a cap-std [`Dir`] on the
//! working directory, so no path a plugin or a job names (absolute, `..`, a symlink) reaches
//! outside it.

use super::sandbox;
use super::*;
use crate::artifacts::{Artifact, ArtifactStore};
use crate::capability::{CapResult, CapabilityError};
use cap_std::fs::{Dir, OpenOptionsExt};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// Most files collected from one output directory.
const MAX_OUTPUT_FILES: usize = 1000;

/// What a run gives its jobs.
#[derive(Clone)]
pub struct JobContext {
    /// Whose jobs these are (the run), for fair scheduling.
    pub owner: String,
    pub artifacts: Arc<ArtifactStore>,
    /// The task's public data, for `mount-source::task-public`.
    pub task_public: Option<PathBuf>,
}

/// Check a spec before anything runs.
pub fn validate(
    spec: &JobSpec,
    datasets: &BTreeMap<String, PathBuf>,
    context: &JobContext,
) -> CapResult<()> {
    if spec.command.is_empty() || spec.command[0].is_empty() {
        return Err(CapabilityError::InvalidArgument(
            "the job's command is empty".into(),
        ));
    }
    if spec.command.iter().any(|a| a.contains('\0')) {
        return Err(CapabilityError::InvalidArgument(
            "the job's command contains NUL".into(),
        ));
    }
    for (key, value) in &spec.env {
        let valid_key = !key.is_empty()
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !key.as_bytes()[0].is_ascii_digit();
        if !valid_key || value.contains('\0') {
            return Err(CapabilityError::InvalidArgument(format!(
                "invalid environment variable {key:?}"
            )));
        }
    }
    if let Some(kind) = &spec.resources.gpu_kind {
        // It becomes part of a scheduler's request (Slurm's `--gres gpu:<kind>:<n>`).
        let plain = !kind.is_empty()
            && kind.len() <= 64
            && kind
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !plain {
            return Err(CapabilityError::InvalidArgument(format!(
                "resources.gpu-kind {kind:?} must be 1-64 letters, digits, `-`, `_` or `.`"
            )));
        }
    }
    for file in &spec.files {
        sandbox::relative_path(&file.path)?;
    }
    for output in &spec.outputs {
        sandbox::relative_path(output.trim_end_matches('/'))?;
    }
    for mount in &spec.mounts {
        sandbox::mount_target(&mount.target)?;
        match &mount.source {
            MountSource::Named(name) if !datasets.contains_key(name) => {
                return Err(CapabilityError::NotFound(format!(
                    "no dataset named `{name}` in [jobs.datasets]"
                )));
            }
            MountSource::TaskPublic if context.task_public.is_none() => {
                return Err(CapabilityError::Unavailable(
                    "this run has no task data to mount".into(),
                ));
            }
            MountSource::Artifact(id) => {
                context.artifacts.stat(id)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Write the job's files into its working directory (through `work`, so nothing escapes).
pub fn materialise(work: &Dir, files: &[JobFile], artifacts: &ArtifactStore) -> CapResult<()> {
    let io = |path: &str, e: std::io::Error| {
        CapabilityError::InvalidArgument(format!("cannot write job file {path:?}: {e}"))
    };
    for file in files {
        let relative = sandbox::relative_path(&file.path)?;
        if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
            work.create_dir_all(parent).map_err(|e| io(&file.path, e))?;
        }
        let mut options = cap_std::fs::OpenOptions::new();
        options
            .write(true)
            .create(true)
            .truncate(true)
            .mode(if file.executable { 0o755 } else { 0o644 });
        let mut out = work
            .open_with(&relative, &options)
            .map_err(|e| io(&file.path, e))?;
        match &file.contents {
            FileContents::Text(text) => out
                .write_all(text.as_bytes())
                .map_err(|e| io(&file.path, e))?,
            FileContents::Bytes(bytes) => out.write_all(bytes).map_err(|e| io(&file.path, e))?,
            FileContents::Artifact(id) => {
                let mut source = artifacts.open_file(id)?;
                std::io::copy(&mut source, &mut out).map_err(|e| io(&file.path, e))?;
            }
        }
    }
    Ok(())
}

/// Collect `outputs` (files, or directories with a trailing `/`) into the artifact store.
/// Returns the artifacts and the problems met (escapes, oversize files), which do not fail the
/// job. Missing paths are skipped.
///
/// Sizes are checked before anything is read: a file over the store's per-artifact limit, or
/// one that would take the job's outputs past `max_total_bytes` together (apparent sizes, so a
/// sparse file counts at its full length), is named and skipped. Files are streamed into the
/// store, never held in memory.
pub fn collect_outputs(
    work: &Dir,
    outputs: &[String],
    artifacts: &ArtifactStore,
    max_total_bytes: u64,
) -> (Vec<Artifact>, Vec<String>) {
    let mut collected = Vec::new();
    let mut problems = Vec::new();
    let mut total: u64 = 0;
    for output in outputs {
        let Ok(relative) = sandbox::relative_path(output.trim_end_matches('/')) else {
            continue;
        };
        let mut pending = vec![relative];
        let mut files = 0;
        while let Some(path) = pending.pop() {
            let metadata = match work.symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    problems.push(format!("output {}: {e}", path.display()));
                    continue;
                }
            };
            if metadata.is_symlink() {
                problems.push(format!(
                    "output {} is a symlink; not collected",
                    path.display()
                ));
            } else if metadata.is_dir() {
                match work.read_dir(&path) {
                    Ok(entries) => {
                        pending.extend(entries.flatten().map(|e| path.join(e.file_name())))
                    }
                    Err(e) => problems.push(format!("output {}: {e}", path.display())),
                }
            } else if metadata.is_file() {
                files += 1;
                if files > MAX_OUTPUT_FILES {
                    problems.push(format!("output {output}: more than {MAX_OUTPUT_FILES} files; the rest are not collected"));
                    break;
                }
                let size = metadata.len();
                if size > artifacts.max_bytes() {
                    problems.push(format!(
                        "output {} is {size} bytes, more than the {} bytes an artifact may hold; not collected",
                        path.display(),
                        artifacts.max_bytes()
                    ));
                    continue;
                }
                if total.saturating_add(size) > max_total_bytes {
                    problems.push(format!(
                        "output {} ({size} bytes) would take the job's outputs past {max_total_bytes} bytes; not collected",
                        path.display()
                    ));
                    continue;
                }
                total += size;
                let name = path.to_string_lossy().replace('/', "__");
                let stored = work
                    .open(&path)
                    .map_err(|e| CapabilityError::Internal(e.to_string()))
                    .and_then(|file| {
                        let mut file = file.into_std().take(size);
                        artifacts.create_streamed(&name, &mut file)
                    });
                match stored {
                    Ok(artifact) => collected.push(artifact),
                    Err(e) => problems.push(format!("output {}: {e}", path.display())),
                }
            }
        }
    }
    (collected, problems)
}

/// The job's read-only mounts as (host path, path inside the sandbox). Artifacts are copied out
/// of the store into `job_dir/mounts/`, so the job sees that one file and nothing else.
pub fn resolve_mounts(
    job_dir: &std::path::Path,
    spec: &JobSpec,
    context: &JobContext,
    datasets: &BTreeMap<String, PathBuf>,
) -> CapResult<Vec<(PathBuf, String)>> {
    let internal = |e: std::io::Error| CapabilityError::Internal(format!("preparing a mount: {e}"));
    let mut mounts = Vec::new();
    for (n, mount) in spec.mounts.iter().enumerate() {
        let target = sandbox::mount_target(&mount.target)?;
        let host = match &mount.source {
            MountSource::TaskPublic => context.task_public.clone().ok_or_else(|| {
                CapabilityError::Unavailable("this run has no task data to mount".into())
            })?,
            MountSource::Named(name) => datasets.get(name).cloned().ok_or_else(|| {
                CapabilityError::NotFound(format!("no dataset named `{name}` in [jobs.datasets]"))
            })?,
            MountSource::Artifact(id) => {
                let artifact = context.artifacts.stat(id)?;
                let dir = job_dir.join("mounts").join(n.to_string());
                std::fs::create_dir_all(&dir).map_err(internal)?;
                let path = dir.join(&artifact.name);
                let mut source = context.artifacts.open_file(id)?;
                let mut file = std::fs::File::create(&path).map_err(internal)?;
                std::io::copy(&mut source, &mut file).map_err(internal)?;
                path
            }
        };
        // The sandbox binds by path: a relative source (a relative data dir or dataset in
        // sophon.toml) must not depend on the sandbox's working directory.
        mounts.push((std::path::absolute(&host).map_err(internal)?, target));
    }
    Ok(mounts)
}

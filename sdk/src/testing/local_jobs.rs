//! The mock host's real jobs: a plain local process in a scratch directory (no sandbox).
//!
//! Failure behaviour: anything that stops the job from starting (a file it cannot write, a
//! mount it cannot make, a command not found) is a `failed` result whose message says why,
//! as the real host reports it; the scratch directory is removed afterwards.

use crate::jobs::{
    ExitStatus, FileContents, JobResult, JobSpec, JobState, MountSource, OutputExcerpt,
};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bytes of each stream kept at the start and at the end.
const EXCERPT: usize = 8 * 1024;
/// The wall time of a job whose spec sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Run `spec`; returns its result and the outputs it left (`outputs` that exist), by name.
pub(crate) fn run(
    spec: &JobSpec,
    task_data: Option<&Path>,
    artifacts: &[(String, Vec<u8>)],
) -> (JobResult, Vec<(String, Vec<u8>)>) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sophon-mock-job-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let outcome = prepare(spec, &dir, task_data, artifacts).and_then(|()| execute(spec, &dir));
    let result = match outcome {
        Ok(result) => result,
        Err(message) => failed(message),
    };
    let outputs = spec
        .outputs
        .iter()
        .filter_map(|name| {
            let path = inside(&dir, name).ok()?;
            let bytes = std::fs::read(path).ok()?;
            let file = Path::new(name).file_name()?.to_string_lossy().into_owned();
            Some((file, bytes))
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (result, outputs)
}

/// `relative` under `dir`, refusing absolute paths and `..`; a leading `/` is dropped
/// (mount targets are absolute in the sandbox).
fn inside(dir: &Path, relative: &str) -> Result<PathBuf, String> {
    let path = Path::new(relative.trim_start_matches('/'));
    if path.as_os_str().is_empty()
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "path {relative:?} must stay inside the job's directory"
        ));
    }
    Ok(dir.join(path))
}

fn prepare(
    spec: &JobSpec,
    dir: &Path,
    task_data: Option<&Path>,
    artifacts: &[(String, Vec<u8>)],
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for file in &spec.files {
        let path = inside(dir, &file.path)?;
        let bytes = match &file.contents {
            FileContents::Text(text) => text.as_bytes().to_vec(),
            FileContents::Bytes(bytes) => bytes.clone(),
            FileContents::Artifact(id) => artifact(artifacts, id)?.to_vec(),
        };
        write(&path, &bytes)?;
        #[cfg(unix)]
        if file.executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("making {} executable: {e}", file.path))?;
        }
    }
    for mount in &spec.mounts {
        let target = inside(dir, &mount.target)?;
        match &mount.source {
            MountSource::TaskPublic => {
                let data = task_data.ok_or(
                    "the job mounts the task's data, but the mock host has none: \
                     pass its directory to MockHost::local_jobs(Some(dir))",
                )?;
                link(data, &target)?;
            }
            MountSource::Artifact(id) => write(&target, artifact(artifacts, id)?)?,
            MountSource::Named(name) => {
                return Err(format!(
                    "the mock host has no named mount `{name}`; use a fake job (MockHost::on_job)"
                ));
            }
        }
    }
    Ok(())
}

fn artifact<'a>(artifacts: &'a [(String, Vec<u8>)], id: &str) -> Result<&'a [u8], String> {
    artifacts
        .iter()
        .find(|(known, _)| known == id)
        .map(|(_, bytes)| bytes.as_slice())
        .ok_or_else(|| format!("no artifact `{id}` in this run"))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn link(source: &Path, target: &Path) -> Result<(), String> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    let source = source
        .canonicalize()
        .map_err(|e| format!("the task data {}: {e}", source.display()))?;
    #[cfg(unix)]
    let linked = std::os::unix::fs::symlink(&source, target);
    #[cfg(not(unix))]
    let linked = Err::<(), _>(std::io::Error::other("mounts need a Unix host"));
    linked.map_err(|e| format!("linking the task data at {}: {e}", target.display()))
}

fn execute(spec: &JobSpec, dir: &Path) -> Result<JobResult, String> {
    let timeout = spec
        .resources
        .timeout_ms
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
    let stdout_path = dir.join(".sophon-stdout");
    let stderr_path = dir.join(".sophon-stderr");
    let open = |path: &Path| {
        std::fs::File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))
    };
    let started = Instant::now();
    let mut child = Command::new(&spec.command[0])
        .args(&spec.command[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(open(&stdout_path)?)
        .stderr(open(&stderr_path)?)
        .spawn()
        .map_err(|e| format!("starting {:?}: {e}", spec.command[0]))?;
    let (state, exit) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break exit_of(status),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break (JobState::TimedOut, None);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for the job: {e}")),
        }
    };
    let message = match (&state, &exit) {
        (JobState::TimedOut, _) => format!("timed out after {} ms", timeout.as_millis()),
        (_, Some(ExitStatus::Code(code))) => format!("exit code {code}"),
        (_, Some(ExitStatus::Signal(signal))) => format!("killed by signal {signal}"),
        (_, None) => String::new(),
    };
    Ok(JobResult {
        state,
        exit,
        stdout: excerpt(&std::fs::read(&stdout_path).unwrap_or_default()),
        stderr: excerpt(&std::fs::read(&stderr_path).unwrap_or_default()),
        wall_ms: started.elapsed().as_millis() as u64,
        cpu_ms: 0,
        peak_memory_bytes: None,
        artifacts: Vec::new(),
        message,
    })
}

fn exit_of(status: std::process::ExitStatus) -> (JobState, Option<ExitStatus>) {
    if let Some(code) = status.code() {
        let state = if code == 0 {
            JobState::Succeeded
        } else {
            JobState::Failed
        };
        return (state, Some(ExitStatus::Code(code)));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return (JobState::Failed, Some(ExitStatus::Signal(signal)));
        }
    }
    (JobState::Failed, None)
}

/// The first and the last [`EXCERPT`] bytes (the tail empty when everything fits the head).
fn excerpt(bytes: &[u8]) -> OutputExcerpt {
    let total_bytes = bytes.len() as u64;
    if bytes.len() <= 2 * EXCERPT {
        return OutputExcerpt {
            head: String::from_utf8_lossy(bytes).into_owned(),
            tail: String::new(),
            total_bytes,
        };
    }
    OutputExcerpt {
        head: String::from_utf8_lossy(&bytes[..EXCERPT]).into_owned(),
        tail: String::from_utf8_lossy(&bytes[bytes.len() - EXCERPT..]).into_owned(),
        total_bytes,
    }
}

fn failed(message: String) -> JobResult {
    let empty = || OutputExcerpt {
        head: String::new(),
        tail: String::new(),
        total_bytes: 0,
    };
    JobResult {
        state: JobState::Failed,
        exit: None,
        stdout: empty(),
        stderr: empty(),
        wall_ms: 0,
        cpu_ms: 0,
        peak_memory_bytes: None,
        artifacts: Vec::new(),
        message,
    }
}

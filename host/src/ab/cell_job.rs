//! One (arm, seed) sequence as a cluster job: its directory (`<out>/cells/<arm>-seed-<s>/`),
//! its record (`job.json`, written before the submission and again, atomically, after it), its
//! script and the environment the script sources, and how the job's Sophon confines its runs
//! to the allocation.
//!
//! Secrets: the variables Sophon reads (the LLM providers' keys, the clusters' tokens) go into
//! `env.sh`, mode 0600, which `job.sh` sources on the node; the script itself, which slurmrestd
//! and slurmctld keep, holds none. The job must run as the driver's user to read it.

use super::error::AbError;
use super::experiment::Experiment;
use crate::config::SophonConfig;
use crate::jobs::batch::{BatchExecutor, BatchState, Submission, shell_quote};
use crate::jobs::scheduler::Gpu;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A cell's cores and memory unless `[cell]` says otherwise.
pub const DEFAULT_CELL_CPUS: u32 = 2;
pub const DEFAULT_CELL_MEMORY_MB: u64 = 8192;
/// Memory of a cell kept for Sophon itself (and grading), out of its jobs' reach: a quarter of
/// the cell, at most this.
const SOPHON_RESERVE_MB: u64 = 2048;

/// The outcomes a sequence's job writes when it ends (cells without a summary included).
pub const OUTCOMES_FILE: &str = "outcomes.json";
pub const JOB_FILE: &str = "job.json";
/// Left by `--cancel` beside the job it stopped.
pub const CANCELLED_FILE: &str = "cancelled";

/// How a node starts Sophon: this binary, with this configuration file (else the defaults).
#[derive(Clone, Debug)]
pub struct Launch {
    pub exe: PathBuf,
    pub config: Option<PathBuf>,
}

/// `job.json`: the cluster job running a sequence. `native_id` is empty while the submission
/// is under way (a driver that died then leaves it so).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellJob {
    pub backend: String,
    pub native_id: String,
    /// Sophon's name for the submission (Ray's submission id; Slurm's job comment).
    #[serde(default)]
    pub submission_id: String,
    pub submitted_unix_ms: u64,
}

/// The directory of a sequence's job: its script, logs, record and outcomes.
pub fn sequence_dir(out: &Path, arm: &str, seed: u64) -> PathBuf {
    out.join("cells").join(format!("{arm}-seed-{seed}"))
}

/// The record in `dir`: `None` when there is none; an error when one is there but cannot be
/// read (a sequence whose job is unknown must not be submitted again).
pub fn read_job(dir: &Path) -> Result<Option<CellJob>, AbError> {
    let path = dir.join(JOB_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| AbError::UnreadableRecord { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AbError::Read { path, source }),
    }
}

/// Write `job` to `dir` atomically (a temporary file renamed over it).
fn write_job(dir: &Path, job: &CellJob) -> Result<(), AbError> {
    let path = dir.join(JOB_FILE);
    let temporary = dir.join(format!("{JOB_FILE}.tmp"));
    let json = serde_json::to_string_pretty(job).map_err(AbError::EncodeJson)?;
    std::fs::write(&temporary, json)
        .and_then(|()| std::fs::rename(&temporary, &path))
        .map_err(|source| AbError::RecordJob { path, source })
}

/// Write the sequence's script and environment, record the submission, submit it, record the
/// job.
pub async fn submit(
    cluster: &BatchExecutor,
    experiment: &Experiment,
    launch: &Launch,
    config: &SophonConfig,
    (arm, seed): (&str, u64),
) -> Result<CellJob, AbError> {
    let out = experiment.output_dir();
    let dir = sequence_dir(&out, arm, seed);
    std::fs::create_dir_all(&dir).map_err(AbError::create(&dir))?;
    // Outcomes (and a cancel) of an earlier job of this sequence are not this one's.
    let _ = std::fs::remove_file(dir.join(OUTCOMES_FILE));
    let _ = std::fs::remove_file(dir.join(CANCELLED_FILE));
    write_private(
        &dir.join("env.sh"),
        &environment_file(config, std::env::vars()),
    )?;
    let script = script(experiment, launch, &dir, (arm, seed));
    write_private(&dir.join("job.sh"), &script)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let submission_id: String = format!("sophon-ab-{}-{arm}-{seed}-{now}", experiment.name())
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                true => c,
                false => '_',
            },
        )
        .collect();
    let mut job = CellJob {
        backend: cluster.backend().to_string(),
        native_id: String::new(),
        submission_id: submission_id.clone(),
        submitted_unix_ms: now,
    };
    write_job(&dir, &job)?;
    let cell = &experiment.cell;
    let submission = Submission {
        id: submission_id,
        name: format!("sophon-ab-{arm}-{seed}"),
        dir: dir.clone(),
        script,
        cpus: cell.cpus.unwrap_or(DEFAULT_CELL_CPUS),
        memory_mb: cell.memory_mb.unwrap_or(DEFAULT_CELL_MEMORY_MB),
        timeout: experiment.cell_time()?,
        gpus: cell.gpus,
        gpu_kind: cell.gpu_kind.clone(),
    };
    let submitted = cluster.api().submit(&submission).await;
    job.native_id = match submitted {
        Ok(id) => id,
        Err(source) => {
            // Refused: nothing runs, so nothing is recorded.
            let _ = std::fs::remove_file(dir.join(JOB_FILE));
            return Err(AbError::Submit {
                arm: arm.to_string(),
                seed,
                backend: cluster.backend().to_string(),
                source,
            });
        }
    };
    write_job(&dir, &job)?;
    Ok(job)
}

/// The sequence job's script: the environment, then Sophon running the one sequence, its
/// output into `dir`.
pub fn script(
    experiment: &Experiment,
    launch: &Launch,
    dir: &Path,
    (arm, seed): (&str, u64),
) -> String {
    let out = experiment.output_dir();
    let quote = |p: &Path| shell_quote(&p.to_string_lossy());
    let cell = &experiment.cell;
    let config_flag = launch
        .config
        .as_ref()
        .map_or(String::new(), |c| format!("--config {} ", quote(c)));
    format!(
        "#!/bin/sh\n# Written by Sophon: the sequence (arm {arm}, seed {seed}) of A/B experiment {:?}.\n\
         . {}\ncd {}\n\
         exec {} {config_flag}ab {} --sequence {} --cell-cpus {} --cell-memory-mb {} >{} 2>{}\n",
        experiment.name(),
        quote(&dir.join("env.sh")),
        quote(&out),
        quote(&launch.exe),
        quote(&out.join("experiment.toml")),
        shell_quote(&format!("{arm}:{seed}")),
        cell.cpus.unwrap_or(DEFAULT_CELL_CPUS),
        cell.memory_mb.unwrap_or(DEFAULT_CELL_MEMORY_MB),
        quote(&dir.join("stdout.log")),
        quote(&dir.join("stderr.log")),
    )
}

/// `export NAME='value'` lines for what the cell's Sophon needs of this process's environment:
/// `HOME`, `PATH`, `USER`, `LANG`, the XDG directories, every `SOPHON_*` variable, and each
/// variable the configuration reads (the providers' keys and endpoints, the clusters' tokens).
pub fn environment_file(
    config: &SophonConfig,
    vars: impl Iterator<Item = (String, String)>,
) -> String {
    let mut read: Vec<String> = [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_MODEL",
        "SLURM_JWT",
    ]
    .map(String::from)
    .to_vec();
    read.extend(
        config
            .llm
            .providers
            .values()
            .filter_map(|p| p.api_key_env.clone()),
    );
    read.extend(
        [config.jobs.slurm.as_ref(), config.jobs.ray.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|c| c.token_env.clone()),
    );
    let mut vars: Vec<(String, String)> = vars
        .filter(|(key, _)| {
            is_name(key)
                && (matches!(
                    key.as_str(),
                    "HOME" | "PATH" | "USER" | "LANG" | "XDG_DATA_HOME" | "XDG_CACHE_HOME"
                ) || key.starts_with("SOPHON_")
                    || read.contains(key))
        })
        .collect();
    vars.sort();
    let mut text = String::from("# Written by Sophon: the environment of a sequence job.\n");
    for (key, value) in vars {
        text.push_str(&format!("export {key}={}\n", shell_quote(&value)));
    }
    text
}

/// A shell variable name.
fn is_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Write `text` to a new file at `path`, readable only by this user (mode 0700), replacing any
/// file there.
fn write_private(path: &Path, text: &str) -> Result<(), AbError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(AbError::write(path))
}

/// Confine the runs of a sequence job to what the cluster gave it: `cpus` of the cores this
/// process may run on, `memory_mb` less what Sophon itself keeps, and the GPUs
/// `CUDA_VISIBLE_DEVICES` names (the scheduler sets it) — unless `[jobs.local]` fixes them.
pub fn confine_to_cell(config: &mut SophonConfig, cpus: u32, memory_mb: u64) {
    let local = &mut config.jobs.local;
    let detected = crate::jobs::scheduler::Inventory::detect();
    if local.cpus.is_none() {
        local.cpus = Some(
            detected
                .cores
                .into_iter()
                .take(cpus.max(1) as usize)
                .collect(),
        );
    }
    if local.memory_mb.is_none() {
        let jobs = memory_mb - (memory_mb / 4).min(SOPHON_RESERVE_MB);
        local.memory_mb = Some(jobs.min(detected.memory_mb.max(1)));
    }
    if local.gpus.is_none() {
        local.gpus = Some(visible_gpus(
            detected.gpus,
            std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref(),
        ));
    }
}

/// The GPUs of `gpus` that `visible` (a `CUDA_VISIBLE_DEVICES` value) names: all when unset,
/// none when empty; by index, else (a renumbering scheduler) the first as many as it names.
pub fn visible_gpus(gpus: Vec<Gpu>, visible: Option<&str>) -> Vec<Gpu> {
    let Some(visible) = visible else {
        return gpus;
    };
    let named: Vec<u32> = visible
        .split(',')
        .filter_map(|i| i.trim().parse().ok())
        .collect();
    let by_index: Vec<Gpu> = gpus
        .iter()
        .filter(|g| named.contains(&g.index))
        .cloned()
        .collect();
    match by_index.len() == named.len() {
        true => by_index,
        false => gpus.into_iter().take(named.len()).collect(),
    }
}

/// A scheduler state in words: `running`, `failed (NODE_FAIL, exit code 1)`.
pub fn words(state: &BatchState) -> String {
    let name = crate::jobs::records::state_name(state.state);
    let mut detail = Vec::new();
    if !state.native.eq_ignore_ascii_case(name) && !state.native.is_empty() {
        detail.push(state.native.clone());
    }
    match state.exit {
        Some(crate::jobs::ExitStatus::Code(c)) if c != 0 => detail.push(format!("exit code {c}")),
        Some(crate::jobs::ExitStatus::Signal(s)) => detail.push(format!("signal {s}")),
        _ => {}
    }
    match detail.is_empty() {
        true => name.to_string(),
        false => format!("{name} ({})", detail.join(", ")),
    }
}

/// `: <last lines of the log>` (at most 400 characters), or nothing when it is empty or missing.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.reverse();
    let tail = lines.join(" | ");
    let tail = tail.trim();
    let skip = tail.chars().count().saturating_sub(400);
    match tail {
        "" => String::new(),
        t => format!(
            ": {}",
            crate::term::line(&t.chars().skip(skip).collect::<String>())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_sees_the_gpus_its_scheduler_named() {
        let gpus: Vec<Gpu> = (0..4)
            .map(|index| Gpu {
                index,
                name: "H100".into(),
                memory_mb: 80_000,
            })
            .collect();
        let indices = |v: Option<&str>| -> Vec<u32> {
            visible_gpus(gpus.clone(), v)
                .iter()
                .map(|g| g.index)
                .collect()
        };
        assert_eq!(indices(None), vec![0, 1, 2, 3]);
        assert_eq!(indices(Some("")), Vec::<u32>::new());
        assert_eq!(indices(Some("1,3")), vec![1, 3]);
        // Renumbered (device cgroups show two GPUs as 0 and 1 … of indices 5 and 6).
        assert_eq!(indices(Some("5,6")), vec![0, 1]);
    }

    #[test]
    fn a_sequence_script_sources_its_environment_and_runs_its_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exp.toml");
        std::fs::write(
            &path,
            "name = 'x\\ny'\ncompetitions = ['a']\nbackend = 'slurm'\n[cell]\ncpus = 3\n[[arms]]\nname = 'a1'\n[[arms]]\nname = 'a2'\n",
        )
        .unwrap();
        let experiment = Experiment::load(&path).unwrap();
        let launch = Launch {
            exe: PathBuf::from("/opt/sophon bin/sophon"),
            config: Some(PathBuf::from("/etc/sophon.toml")),
        };
        let text = script(
            &experiment,
            &launch,
            Path::new("/o/cells/a1-seed-0"),
            ("a1", 0),
        );
        assert_eq!(
            text.lines().count(),
            5,
            "the name's newline stays escaped: {text}"
        );
        assert!(text.contains("\n. '/o/cells/a1-seed-0/env.sh'\n"));
        assert!(text.contains("exec '/opt/sophon bin/sophon' --config '/etc/sophon.toml' ab "));
        assert!(text.contains("--sequence 'a1:0' --cell-cpus 3 --cell-memory-mb 8192"));
        assert!(text.contains(">'/o/cells/a1-seed-0/stdout.log'"));
    }

    #[test]
    fn the_environment_file_carries_what_sophon_reads_and_nothing_else() {
        let vars = [
            ("SOPHON_TEST_CELL_VAR", "it's here"),
            ("OPENAI_API_KEY", "sk-test"),
            ("UNRELATED_TEST_CELL_VAR", "no"),
            ("SOPHON_BAD-NAME", "x"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let text = environment_file(&SophonConfig::defaults(), vars.into_iter());
        assert!(
            text.contains("export SOPHON_TEST_CELL_VAR='it'\\''s here'\n"),
            "{text}"
        );
        assert!(text.contains("export OPENAI_API_KEY='sk-test'\n"));
        assert!(!text.contains("UNRELATED_TEST_CELL_VAR") && !text.contains("BAD-NAME"));
        assert!(!is_name("A-B") && !is_name("1A") && is_name("_A1"));
    }
}

//! A/B cells as cluster jobs (`backend = "slurm"` or `"ray"`): each (arm, seed) sequence is one
//! job that runs `sophon ab <out>/experiment.toml --sequence ARM:SEED` on a node — the
//! sequence's runs in order, its run directories and HCC store in the experiment's output
//! directory, which must therefore be on a filesystem the nodes share. The driver submits,
//! waits (telling each cell as its summary appears), and collects; the summary and report are
//! then built as for cells run in-process.
//!
//! Resumable, and nothing runs twice: `cells/<arm>-seed-<seed>/job.json` records a sequence's
//! job. A driver started again re-attaches to a job still queued or running, submits anew only
//! for a sequence with unfinished cells whose job has ended (its runs then resume from their
//! journals), and never for a finished sequence; a run directory's lock refuses a second
//! process on one run. Stopping the driver leaves the jobs running (`--cancel` stops them).
//!
//! The cell job is Sophon itself — the operator's binary and configuration — so it runs
//! unsandboxed on the node, with this process's `HOME`, `PATH`, `SOPHON_*` variables and the
//! LLM providers' key variables written into its script (readable by its owner only); the jobs
//! its runs start are sandboxed on the node as usual.

use super::experiment::Experiment;
use super::runner::{
    CellObserver, cell_dir, claim_output, failed_cell, finished_outcome, sequences,
};
use super::stats::Outcome;
use crate::config::SophonConfig;
use crate::jobs::JobState;
use crate::jobs::backends::connect_cluster;
use crate::jobs::batch::{BatchExecutor, BatchState, Submission, shell_quote};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A cell's cores and memory unless `[cell]` says otherwise.
pub const DEFAULT_CELL_CPUS: u32 = 2;
pub const DEFAULT_CELL_MEMORY_MB: u64 = 8192;

/// Confine the runs of a sequence job to what the cluster gave it: `cpus` of the cores this
/// process may run on, `memory_mb`, and the GPUs `CUDA_VISIBLE_DEVICES` names (the scheduler
/// sets it) — unless `[jobs.local]` fixes them itself.
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
        local.memory_mb = Some(memory_mb.min(detected.memory_mb.max(1)));
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
pub fn visible_gpus(
    gpus: Vec<crate::jobs::scheduler::Gpu>,
    visible: Option<&str>,
) -> Vec<crate::jobs::scheduler::Gpu> {
    let Some(visible) = visible else {
        return gpus;
    };
    let named: Vec<u32> = visible
        .split(',')
        .filter_map(|i| i.trim().parse().ok())
        .collect();
    let by_index: Vec<_> = gpus
        .iter()
        .filter(|g| named.contains(&g.index))
        .cloned()
        .collect();
    match by_index.len() == named.len() {
        true => by_index,
        false => gpus.into_iter().take(named.len()).collect(),
    }
}

/// How a node starts Sophon: this binary, with this configuration file (else the defaults).
#[derive(Clone, Debug)]
pub struct Launch {
    pub exe: PathBuf,
    pub config: Option<PathBuf>,
}

/// `job.json`: the cluster job running a sequence.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellJob {
    pub backend: String,
    pub native_id: String,
    pub submitted_unix_ms: u64,
}

/// Where a sequence stands (`sophon ab --status`).
#[derive(Clone, Debug, Serialize)]
pub struct SequenceStatus {
    pub arm: String,
    pub seed: u64,
    pub finished: usize,
    pub cells: usize,
    /// Its job and the scheduler's word for it (`gone` once the scheduler forgot it).
    pub job: Option<(CellJob, String)>,
}

/// The directory of a sequence's job: its script, logs, record and outcomes.
pub fn sequence_dir(out: &Path, arm: &str, seed: u64) -> PathBuf {
    out.join("cells").join(format!("{arm}-seed-{seed}"))
}

/// The outcomes a sequence's job writes when it ends (cells without a summary included).
pub const OUTCOMES_FILE: &str = "outcomes.json";
const JOB_FILE: &str = "job.json";
/// Left by `--cancel` beside the job it stopped.
const CANCELLED_FILE: &str = "cancelled";

/// Run every unfinished sequence of `experiment` as a job on its cluster backend and wait for
/// them; returns every cell's outcome in (arm, seed, competition) order.
pub async fn run_cells_on_cluster(
    config: &SophonConfig,
    experiment: &Experiment,
    launch: &Launch,
    observer: Arc<dyn CellObserver>,
) -> Result<Vec<Outcome>, String> {
    let out = experiment.output_dir();
    let cluster = connect(config, experiment).await?;
    claim_output(&out, experiment)?;
    let api = cluster.api().clone();
    let mut active: BTreeMap<(String, u64), CellJob> = BTreeMap::new();
    let mut ended: BTreeMap<(String, u64), String> = BTreeMap::new();
    let mut told = std::collections::BTreeSet::new();
    for (arm, seed) in sequences(experiment) {
        let unfinished = unfinished(experiment, &out, &arm.name, seed, |o| {
            observer.on_cell(&o, true);
            told.insert((arm.name.clone(), seed, o.competition_id.clone()));
        });
        if unfinished == 0 {
            continue;
        }
        let dir = sequence_dir(&out, &arm.name, seed);
        if let Some(job) = read_job(&dir) {
            if job.backend != cluster.backend() {
                return Err(format!(
                    "the sequence (arm {}, seed {seed}) was started on {} (job {}): run the \
                     experiment with --backend {}, or once that job has ended (--status, \
                     --cancel) delete {} to go on here",
                    arm.name,
                    job.backend,
                    job.native_id,
                    job.backend,
                    dir.join(JOB_FILE).display()
                ));
            }
            // Submit anew only when the scheduler says the earlier job is over: a job it
            // cannot tell about may still be running.
            let state = api.query(&job.native_id).await.map_err(|e| {
                format!(
                    "asking {} about job {} of the sequence (arm {}, seed {seed}): {e}; try again \
                     when it answers",
                    job.backend, job.native_id, arm.name
                )
            })?;
            if let Some(state) = state.filter(|s| !s.state.is_final()) {
                observer.on_sequence(
                    &arm.name,
                    seed,
                    &format!(
                        "{} job {} {}: attached",
                        job.backend,
                        job.native_id,
                        words(&state)
                    ),
                );
                active.insert((arm.name.clone(), seed), job);
                continue;
            }
        }
        let job = submit(&cluster, experiment, launch, config, &arm.name, seed).await?;
        observer.on_sequence(
            &arm.name,
            seed,
            &format!(
                "{} job {} submitted ({unfinished} cells)",
                job.backend, job.native_id
            ),
        );
        active.insert((arm.name.clone(), seed), job);
    }
    let mut last_words: BTreeMap<(String, u64), String> = BTreeMap::new();
    while !active.is_empty() {
        tokio::time::sleep(poll_interval(cluster.settings().poll, active.len())).await;
        let mut done = Vec::new();
        for (key, job) in &active {
            let state = match api.query(&job.native_id).await {
                Ok(state) => state,
                // A scheduler that does not answer once is asked again at the next poll.
                Err(e) => {
                    tracing::warn!("asking about {} job {}: {e}", job.backend, job.native_id);
                    continue;
                }
            };
            let said = state.as_ref().map_or_else(|| "gone".to_string(), words);
            if last_words.get(key) != Some(&said) {
                observer.on_sequence(
                    &key.0,
                    key.1,
                    &format!("{} job {} {said}", job.backend, job.native_id),
                );
                last_words.insert(key.clone(), said.clone());
            }
            if state.as_ref().is_none_or(|s| s.state.is_final()) {
                done.push(key.clone());
                if state
                    .as_ref()
                    .is_none_or(|s| s.state != JobState::Succeeded)
                {
                    let dir = sequence_dir(&out, &key.0, key.1);
                    let how = match dir.join(CANCELLED_FILE).exists() {
                        true => "was cancelled (sophon ab --cancel)".to_string(),
                        false => format!("ended {said}"),
                    };
                    ended.insert(
                        key.clone(),
                        format!(
                            "the {} job {} running this cell's sequence {how}{}",
                            job.backend,
                            job.native_id,
                            log_tail(&dir.join("stderr.log"))
                        ),
                    );
                }
            }
        }
        for (arm, seed) in sequences(experiment) {
            for competition in &experiment.competitions {
                let key = (arm.name.clone(), seed, competition.clone());
                if !told.contains(&key)
                    && let Some(outcome) = finished_outcome(&out, &arm.name, seed, competition)
                {
                    observer.on_cell(&outcome, false);
                    told.insert(key);
                }
            }
        }
        for key in done {
            active.remove(&key);
        }
    }
    Ok(collect(experiment, &out, &ended))
}

/// How long the driver waits between rounds of questions about `jobs` jobs: the backend's
/// `poll-ms`, stretched so that it asks at most about 10 questions a second (each is a
/// scheduler RPC: 450 sequences polled every second would be 450 a second), and never more
/// than a minute.
pub fn poll_interval(poll: Duration, jobs: usize) -> Duration {
    poll.max(Duration::from_millis(100))
        .max(Duration::from_millis(100 * jobs as u64))
        .min(Duration::from_secs(60))
}

/// Where every sequence stands, without waiting.
pub async fn status(
    config: &SophonConfig,
    experiment: &Experiment,
) -> Result<Vec<SequenceStatus>, String> {
    let out = experiment.output_dir();
    let api = match experiment.backend() {
        crate::jobs::service::LOCAL => None,
        _ => Some(connect(config, experiment).await?.api().clone()),
    };
    let mut statuses = Vec::new();
    for (arm, seed) in sequences(experiment) {
        let finished = experiment
            .competitions
            .iter()
            .filter(|c| {
                cell_dir(&out, &arm.name, seed, c)
                    .join("summary.json")
                    .is_file()
            })
            .count();
        let job = match (&api, read_job(&sequence_dir(&out, &arm.name, seed))) {
            (Some(api), Some(job)) => {
                let said = match api.query(&job.native_id).await {
                    Ok(Some(state)) => words(&state),
                    Ok(None) => "gone".into(),
                    Err(e) => format!("unknown ({e})"),
                };
                Some((job, said))
            }
            _ => None,
        };
        statuses.push(SequenceStatus {
            arm: arm.name.clone(),
            seed,
            finished,
            cells: experiment.competitions.len(),
            job,
        });
    }
    Ok(statuses)
}

/// Stop every sequence job still queued or running; returns the ones stopped. Their runs
/// resume from their journals when the experiment is started again.
pub async fn cancel(
    config: &SophonConfig,
    experiment: &Experiment,
) -> Result<Vec<CellJob>, String> {
    let out = experiment.output_dir();
    let api = connect(config, experiment).await?.api().clone();
    let mut stopped = Vec::new();
    for (arm, seed) in sequences(experiment) {
        let dir = sequence_dir(&out, &arm.name, seed);
        let Some(job) = read_job(&dir) else {
            continue;
        };
        if let Ok(Some(state)) = api.query(&job.native_id).await
            && !state.state.is_final()
        {
            std::fs::write(dir.join(CANCELLED_FILE), b"")
                .map_err(|e| format!("marking {} cancelled: {e}", dir.display()))?;
            api.kill(&job.native_id)
                .await
                .map_err(|e| format!("stopping {} job {}: {e}", job.backend, job.native_id))?;
            stopped.push(job);
        }
    }
    Ok(stopped)
}

async fn connect(
    config: &SophonConfig,
    experiment: &Experiment,
) -> Result<Arc<BatchExecutor>, String> {
    connect_cluster(&config.jobs, experiment.backend())
        .await
        .map_err(|e| e.to_string())
}

/// How many of a sequence's cells have no summary; `finished` sees each one that has.
fn unfinished(
    experiment: &Experiment,
    out: &Path,
    arm: &str,
    seed: u64,
    mut finished: impl FnMut(Outcome),
) -> usize {
    let mut left = 0;
    for competition in &experiment.competitions {
        match finished_outcome(out, arm, seed, competition) {
            Some(outcome) => finished(outcome),
            None => left += 1,
        }
    }
    left
}

/// Write the sequence's script and submit it.
async fn submit(
    cluster: &BatchExecutor,
    experiment: &Experiment,
    launch: &Launch,
    config: &SophonConfig,
    arm: &str,
    seed: u64,
) -> Result<CellJob, String> {
    let out = experiment.output_dir();
    let dir = sequence_dir(&out, arm, seed);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    // Outcomes (and a cancel) of an earlier job of this sequence are not this one's.
    let _ = std::fs::remove_file(dir.join(OUTCOMES_FILE));
    let _ = std::fs::remove_file(dir.join(CANCELLED_FILE));
    let script = script(experiment, launch, config, &dir, arm, seed);
    write_private(&dir.join("job.sh"), &script)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let id: String = format!("sophon-ab-{}-{arm}-{seed}-{now}", experiment.name())
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                true => c,
                false => '_',
            },
        )
        .collect();
    let cell = &experiment.cell;
    let submission = Submission {
        id,
        name: format!("sophon-ab-{arm}-{seed}"),
        dir: dir.clone(),
        script,
        cpus: cell.cpus.unwrap_or(DEFAULT_CELL_CPUS),
        memory_mb: cell.memory_mb.unwrap_or(DEFAULT_CELL_MEMORY_MB),
        timeout: experiment.cell_time()?,
        gpus: cell.gpus,
        gpu_kind: cell.gpu_kind.clone(),
    };
    let native_id = cluster.api().submit(&submission).await.map_err(|e| {
        format!(
            "submitting the sequence (arm {arm}, seed {seed}) to {}: {e}",
            cluster.backend()
        )
    })?;
    let job = CellJob {
        backend: cluster.backend().to_string(),
        native_id,
        submitted_unix_ms: now,
    };
    let json = serde_json::to_string_pretty(&job).map_err(|e| e.to_string())?;
    std::fs::write(dir.join(JOB_FILE), json)
        .map_err(|e| format!("recording the job in {}: {e}", dir.display()))?;
    Ok(job)
}

/// The sequence job's script: Sophon running the one sequence, its output into `dir`.
fn script(
    experiment: &Experiment,
    launch: &Launch,
    config: &SophonConfig,
    dir: &Path,
    arm: &str,
    seed: u64,
) -> String {
    let out = experiment.output_dir();
    let quote = |p: &Path| shell_quote(&p.to_string_lossy());
    let mut text = format!(
        "#!/bin/sh\n# Written by Sophon: the sequence (arm {arm}, seed {seed}) of A/B experiment {:?}.\n",
        experiment.name()
    );
    for (key, value) in environment(config) {
        text.push_str(&format!("export {key}={}\n", shell_quote(&value)));
    }
    text.push_str(&format!("cd {}\n", quote(&out)));
    let config_flag = launch
        .config
        .as_ref()
        .map_or(String::new(), |c| format!("--config {} ", quote(c)));
    let cell = &experiment.cell;
    text.push_str(&format!(
        "exec {} {config_flag}ab {} --sequence {} --cell-cpus {} --cell-memory-mb {} >{} 2>{}\n",
        quote(&launch.exe),
        quote(&out.join("experiment.toml")),
        shell_quote(&format!("{arm}:{seed}")),
        cell.cpus.unwrap_or(DEFAULT_CELL_CPUS),
        cell.memory_mb.unwrap_or(DEFAULT_CELL_MEMORY_MB),
        quote(&dir.join("stdout.log")),
        quote(&dir.join("stderr.log")),
    ));
    text
}

/// What the cell process needs of this one's environment.
fn environment(config: &SophonConfig) -> Vec<(String, String)> {
    let keys: Vec<String> = config
        .llm
        .providers
        .values()
        .filter_map(|p| p.api_key_env.clone())
        .collect();
    std::env::vars()
        .filter(|(key, _)| {
            matches!(
                key.as_str(),
                "HOME" | "PATH" | "USER" | "LANG" | "XDG_DATA_HOME" | "XDG_CACHE_HOME"
            ) || key.starts_with("SOPHON_")
                || keys.contains(key)
        })
        .collect()
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

fn read_job(dir: &Path) -> Option<CellJob> {
    serde_json::from_str(&std::fs::read_to_string(dir.join(JOB_FILE)).ok()?).ok()
}

/// A scheduler state in words: `running`, `failed (NODE_FAIL, exit code 1)`.
fn words(state: &BatchState) -> String {
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
fn log_tail(path: &Path) -> String {
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

/// Every cell's outcome: its summary; else what the sequence's job said of it; else why it has
/// none.
fn collect(
    experiment: &Experiment,
    out: &Path,
    ended: &BTreeMap<(String, u64), String>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for (arm, seed) in sequences(experiment) {
        let written: Vec<Outcome> =
            std::fs::read_to_string(sequence_dir(out, &arm.name, seed).join(OUTCOMES_FILE))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
        for competition in &experiment.competitions {
            let outcome = finished_outcome(out, &arm.name, seed, competition)
                .or_else(|| {
                    written
                        .iter()
                        .find(|o| &o.competition_id == competition)
                        .cloned()
                })
                .unwrap_or_else(|| {
                    let why = ended
                        .get(&(arm.name.clone(), seed))
                        .cloned()
                        .unwrap_or_else(|| "the cell's sequence job ended before it".into());
                    failed_cell(
                        &arm.name,
                        seed,
                        competition,
                        &cell_dir(out, &arm.name, seed, competition),
                        why,
                    )
                });
            outcomes.push(outcome);
        }
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::scheduler::Gpu;

    #[test]
    fn the_driver_asks_the_scheduler_at_most_about_ten_questions_a_second() {
        let poll = Duration::from_secs(1);
        assert_eq!(poll_interval(poll, 2), poll);
        assert_eq!(poll_interval(poll, 450), Duration::from_secs(45));
        assert_eq!(poll_interval(poll, 10_000), Duration::from_secs(60));
        assert_eq!(poll_interval(Duration::ZERO, 0), Duration::from_millis(100));
    }

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
    fn a_sequence_script_runs_sophon_on_its_sequence_with_its_cell() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exp.toml");
        std::fs::write(
            &path,
            "name = 'x y'\ncompetitions = ['a']\nbackend = 'slurm'\n[cell]\ncpus = 3\n[[arms]]\nname = 'a1'\n[[arms]]\nname = 'a2'\n",
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
            &SophonConfig::defaults(),
            Path::new("/o/cells/a1-seed-0"),
            "a1",
            0,
        );
        assert!(text.contains("exec '/opt/sophon bin/sophon' --config '/etc/sophon.toml' ab "));
        assert!(text.contains("--sequence 'a1:0' --cell-cpus 3 --cell-memory-mb 8192"));
        assert!(text.contains(">'/o/cells/a1-seed-0/stdout.log'"));
        assert_eq!(
            experiment.cell_time().unwrap(),
            (crate::run::execute::DEFAULT_TIME_LIMIT + super::super::experiment::CELL_OVERHEAD)
        );
    }
}

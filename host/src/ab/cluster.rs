//! A/B cells as cluster jobs (`backend = "slurm"` or `"ray"`): each (arm, seed) sequence is one
//! job ([`super::cell_job`]) that runs `sophon ab <out>/experiment.toml --sequence ARM:SEED` on
//! a node — the sequence's runs in order, its run directories and HCC store in the
//! experiment's output directory, which must therefore be on a filesystem the nodes share. The
//! driver submits (at most `max-parallel` at once), waits (telling each cell as its summary
//! appears), and collects; the summary and report are then built as for cells run in-process.
//!
//! Resumable, and nothing runs twice: one driver at a time (`<out>/driver.lock`); a sequence's
//! `job.json` is written before its submission and again after it. A driver started again
//! re-attaches to a job still queued or running, submits anew only for a sequence with
//! unfinished cells whose job has ended (its runs then resume from their journals), never for a
//! finished sequence, and refuses to guess about a record it cannot read or a submission whose
//! job id was never recorded. Stopping the driver leaves the jobs running (`--cancel` stops
//! them). A scheduler that stops answering for [`MAX_QUERY_FAILURES`] polls in a row stops the
//! driver, which re-attaches when started again.

use super::cell_job::{
    self, CANCELLED_FILE, CellJob, JOB_FILE, Launch, OUTCOMES_FILE, log_tail, read_job,
    sequence_dir, words,
};
use super::error::AbError;
use super::experiment::{CellResources, Experiment};
use super::runner::{
    CellObserver, cell_dir, claim_output, failed_cell, finished_outcome, sequences,
};
use super::stats::Outcome;
use crate::config::SophonConfig;
use crate::jobs::JobState;
use crate::jobs::backends::connect_cluster;
use crate::jobs::batch::{BatchApi, BatchExecutor, BatchState};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Polls in a row a job's state may go unanswered before the driver gives up.
pub const MAX_QUERY_FAILURES: u32 = 30;
/// How long past its `[cell] time` a job may run before the driver stops it (Ray has no time
/// limit of its own; Slurm's ends it first).
const CELL_TIME_GRACE: Duration = Duration::from_secs(10 * 60);

type Key = (String, u64);

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

/// The backend an earlier driver recorded for `experiment`'s sequences, if any (the first
/// `job.json` found).
pub fn recorded_backend(experiment: &Experiment) -> Option<String> {
    let out = experiment.output_dir();
    sequences(experiment).into_iter().find_map(|(arm, seed)| {
        read_job(&sequence_dir(&out, &arm.name, seed))
            .ok()
            .flatten()
            .map(|job| job.backend)
    })
}

/// Run every unfinished sequence of `experiment` as a job on its cluster backend and wait for
/// them; returns every cell's outcome in (arm, seed, competition) order. A sequence cancelled
/// while the driver waited makes it an error: nothing is summarised, and running the driver
/// again resumes it.
pub async fn run_cells_on_cluster(
    config: &SophonConfig,
    experiment: &Experiment,
    launch: &Launch,
    observer: Arc<dyn CellObserver>,
) -> Result<Vec<Outcome>, AbError> {
    let out = experiment.output_dir();
    let cluster = connect(config, experiment).await?;
    admit_cells(&cluster, &experiment.cell)?;
    claim_output(&out, experiment)?;
    let _driver = lock_driver(&out)?;
    let api = cluster.api().clone();
    let mut driver = Driver {
        experiment,
        out: &out,
        observer: observer.as_ref(),
        api: api.as_ref(),
        active: BTreeMap::new(),
        ended: BTreeMap::new(),
        failures: BTreeMap::new(),
        said: BTreeMap::new(),
        next_cell: BTreeMap::new(),
        told: BTreeSet::new(),
    };
    let waiting = driver.attach(cluster.backend()).await?;
    let cell_time = experiment.cell_time()?;
    driver
        .run(&cluster, (launch, config), waiting, cell_time)
        .await?;
    let cancelled = driver
        .ended
        .keys()
        .filter(|(arm, seed)| sequence_dir(&out, arm, *seed).join(CANCELLED_FILE).exists())
        .count();
    if cancelled > 0 {
        return Err(AbError::Cancelled(cancelled));
    }
    Ok(collect(experiment, &out, &driver.ended).await)
}

/// Check that a node of `cluster` can hold a cell of `cell`'s cores, memory and GPUs.
fn admit_cells(cluster: &BatchExecutor, cell: &CellResources) -> Result<(), AbError> {
    cluster
        .settings()
        .node
        .admit(
            cluster.backend(),
            cell.cpus.unwrap_or(cell_job::DEFAULT_CELL_CPUS),
            cell.memory_mb.unwrap_or(cell_job::DEFAULT_CELL_MEMORY_MB),
            cell.gpus,
        )
        .map_err(AbError::CellResources)
}

/// The driver's view of the sequences it waits on.
struct Driver<'a> {
    experiment: &'a Experiment,
    out: &'a Path,
    observer: &'a dyn CellObserver,
    api: &'a dyn BatchApi,
    active: BTreeMap<Key, CellJob>,
    /// Sequences whose job ended without success, with what to say of their unfinished cells.
    ended: BTreeMap<Key, String>,
    /// Polls in a row without an answer, per job.
    failures: BTreeMap<Key, u32>,
    /// What was last said of each job's state.
    said: BTreeMap<Key, String>,
    /// Per sequence, the first cell not yet told (cells finish in order).
    next_cell: BTreeMap<Key, usize>,
    /// The cells told, by sequence and index.
    told: BTreeSet<(Key, usize)>,
}

impl Driver<'_> {
    /// Sort the sequences: finished ones are told and skipped, those with a job still queued
    /// or running on `backend` become active, the rest are returned, in order, to be submitted.
    async fn attach(&mut self, backend: &str) -> Result<VecDeque<Key>, AbError> {
        let mut waiting = VecDeque::new();
        for (arm, seed) in sequences(self.experiment) {
            let key = (arm.name.clone(), seed);
            if self.tell_finished_cells(&key, true, true) == self.experiment.competitions.len() {
                continue;
            }
            match self.running_job(&key, backend).await? {
                Some(job) => {
                    self.active.insert(key, job);
                }
                None => waiting.push_back(key),
            }
        }
        Ok(waiting)
    }

    /// Submit the `waiting` sequences, at most `max-parallel` active at once, and poll until
    /// every job has ended.
    async fn run(
        &mut self,
        cluster: &BatchExecutor,
        (launch, config): (&Launch, &SophonConfig),
        mut waiting: VecDeque<Key>,
        cell_time: Duration,
    ) -> Result<(), AbError> {
        let experiment = self.experiment;
        let cap = experiment.max_parallel.unwrap_or(usize::MAX).max(1);
        loop {
            while self.active.len() < cap
                && let Some(key) = waiting.pop_front()
            {
                let job =
                    cell_job::submit(cluster, experiment, launch, config, (&key.0, key.1)).await?;
                self.observer.on_sequence(
                    &key.0,
                    key.1,
                    &format!("{} job {} submitted", job.backend, job.native_id),
                );
                self.active.insert(key, job);
            }
            if self.active.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(poll_interval(cluster.settings().poll, self.active.len())).await;
            self.poll(cell_time).await?;
        }
    }

    /// Tell the finished cells of `key` not told yet (as `reused`, finished before this
    /// driver), in order up to the first unfinished one — or, `all`, every one; returns how
    /// many of its cells are finished.
    fn tell_finished_cells(&mut self, key: &Key, all: bool, reused: bool) -> usize {
        let competitions = &self.experiment.competitions;
        let mut next = self.next_cell.get(key).copied().unwrap_or(0);
        let mut finished = next;
        for (i, competition) in competitions.iter().enumerate().skip(next) {
            if self.told.contains(&(key.clone(), i)) {
                finished += 1;
                if i == next {
                    next += 1;
                }
                continue;
            }
            match finished_outcome(self.out, &key.0, key.1, competition) {
                Some(outcome) => {
                    self.observer.on_cell(&outcome, reused);
                    self.told.insert((key.clone(), i));
                    finished += 1;
                    if i == next {
                        next += 1;
                    }
                }
                None if all => {}
                None => break,
            }
        }
        self.next_cell.insert(key.clone(), next);
        finished
    }

    /// The job of `key` still queued or running, re-attached; `None` when there is none (never
    /// submitted, or ended).
    async fn running_job(&self, key: &Key, backend: &str) -> Result<Option<CellJob>, AbError> {
        let dir = sequence_dir(self.out, &key.0, key.1);
        let Some(mut job) = read_job(&dir)? else {
            return Ok(None);
        };
        let record = dir.join(JOB_FILE);
        if job.backend != backend {
            return Err(AbError::OtherBackend {
                arm: key.0.clone(),
                seed: key.1,
                backend: job.backend,
                native_id: job.native_id,
                record,
            });
        }
        if job.native_id.is_empty() {
            // A driver died between submitting and recording the id. Ray knows the job by
            // Sophon's submission id; Slurm does not.
            match backend {
                "ray" if !job.submission_id.is_empty() => job.native_id = job.submission_id.clone(),
                _ => {
                    return Err(AbError::InterruptedSubmission {
                        arm: key.0.clone(),
                        seed: key.1,
                        backend: backend.to_string(),
                        record,
                    });
                }
            }
        }
        // Submit anew only when the scheduler says the earlier job is over: a job it cannot
        // tell about may still be running.
        let state = self
            .api
            .query(&job.native_id)
            .await
            .map_err(|source| AbError::Reattach {
                backend: backend.to_string(),
                native_id: job.native_id.clone(),
                arm: key.0.clone(),
                seed: key.1,
                source,
            })?;
        Ok(match state.filter(|s| !s.state.is_final()) {
            Some(state) => {
                self.observer.on_sequence(
                    &key.0,
                    key.1,
                    &format!(
                        "{backend} job {} {}: attached",
                        job.native_id,
                        words(&state)
                    ),
                );
                Some(job)
            }
            None => None,
        })
    }

    /// One round: every active job's state, the cells finished since, jobs past their time
    /// stopped.
    async fn poll(&mut self, cell_time: Duration) -> Result<(), AbError> {
        let mut done = Vec::new();
        let keys: Vec<Key> = self.active.keys().cloned().collect();
        for key in keys {
            let job = self.active[&key].clone();
            let state = match self.api.query(&job.native_id).await {
                Ok(state) => {
                    self.failures.remove(&key);
                    state
                }
                Err(e) => {
                    let failures = self.failures.entry(key.clone()).or_default();
                    *failures += 1;
                    if *failures >= MAX_QUERY_FAILURES {
                        return Err(AbError::SchedulerSilent {
                            backend: job.backend,
                            native_id: job.native_id,
                            polls: MAX_QUERY_FAILURES,
                            source: e,
                        });
                    }
                    tracing::warn!("asking about {} job {}: {e}", job.backend, job.native_id);
                    continue;
                }
            };
            self.say(&key, &job, &state);
            self.tell_finished_cells(&key, false, false);
            match &state {
                Some(s) if !s.state.is_final() => {
                    if over_time(&job, cell_time) {
                        let _ = self.api.kill(&job.native_id).await;
                        self.ended.insert(
                            key.clone(),
                            format!(
                                "the {} job {} running this cell's sequence ran past its [cell] \
                                 time and was stopped",
                                job.backend, job.native_id
                            ),
                        );
                        done.push(key);
                    }
                }
                _ => {
                    if state
                        .as_ref()
                        .is_none_or(|s| s.state != JobState::Succeeded)
                        && !self.ended.contains_key(&key)
                    {
                        self.ended
                            .insert(key.clone(), self.why_ended(&key, &job, &state));
                    }
                    self.tell_finished_cells(&key, true, false);
                    done.push(key);
                }
            }
        }
        for key in done {
            self.active.remove(&key);
        }
        Ok(())
    }

    fn say(&mut self, key: &Key, job: &CellJob, state: &Option<BatchState>) {
        let said = state.as_ref().map_or_else(|| "gone".to_string(), words);
        if self.said.get(key) != Some(&said) {
            self.observer.on_sequence(
                &key.0,
                key.1,
                &format!("{} job {} {said}", job.backend, job.native_id),
            );
            self.said.insert(key.clone(), said);
        }
    }

    fn why_ended(&self, key: &Key, job: &CellJob, state: &Option<BatchState>) -> String {
        let dir = sequence_dir(self.out, &key.0, key.1);
        let how = match dir.join(CANCELLED_FILE).exists() {
            true => "was cancelled (sophon ab --cancel)".to_string(),
            false => format!(
                "ended {}",
                state.as_ref().map_or_else(|| "gone".to_string(), words)
            ),
        };
        format!(
            "the {} job {} running this cell's sequence {how}{}",
            job.backend,
            job.native_id,
            log_tail(&dir.join("stderr.log"))
        )
    }
}

/// Whether `job` has run past `cell_time` and its grace.
fn over_time(job: &CellJob, cell_time: Duration) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let ran = Duration::from_millis(now.saturating_sub(job.submitted_unix_ms));
    ran > cell_time.saturating_add(CELL_TIME_GRACE)
}

/// Hold `<out>/driver.lock` while driving: a second driver is refused, not interleaved.
fn lock_driver(out: &Path) -> Result<std::fs::File, AbError> {
    let path = out.join("driver.lock");
    let file = std::fs::File::create(&path).map_err(AbError::create(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(AbError::DriverBusy {
            out: out.to_path_buf(),
            lock: path,
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(AbError::Lock { path, source }),
    }
}

/// How long the driver waits between rounds of questions about `jobs` jobs: the backend's
/// `poll-ms`, stretched so that it asks at most about 10 questions a second (each is a
/// scheduler RPC: 450 sequences polled every second would be 450 a second), and never more
/// than a minute (past 600 jobs, that is more than 10 a second).
pub fn poll_interval(poll: Duration, jobs: usize) -> Duration {
    poll.max(Duration::from_millis(100))
        .max(Duration::from_millis(100 * jobs as u64))
        .min(Duration::from_secs(60))
}

/// Where every sequence stands, without waiting.
pub async fn status(
    config: &SophonConfig,
    experiment: &Experiment,
) -> Result<Vec<SequenceStatus>, AbError> {
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
        let job = match (&api, read_job(&sequence_dir(&out, &arm.name, seed))?) {
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

/// Stop every sequence job still queued or running — interrupted first, so the Sophon in it
/// stops its own jobs, killed after the backend's grace — and return the ones stopped. Their
/// runs resume from their journals when the experiment is started again.
pub async fn cancel(
    config: &SophonConfig,
    experiment: &Experiment,
) -> Result<Vec<CellJob>, AbError> {
    let out = experiment.output_dir();
    let cluster = connect(config, experiment).await?;
    let api = cluster.api().clone();
    let ask = |job: &CellJob, source| AbError::Query {
        backend: job.backend.clone(),
        native_id: job.native_id.clone(),
        source,
    };
    let mut stopping = Vec::new();
    for (arm, seed) in sequences(experiment) {
        let dir = sequence_dir(&out, &arm.name, seed);
        let Some(job) = read_job(&dir)? else {
            continue;
        };
        let state = api.query(&job.native_id).await.map_err(|e| ask(&job, e))?;
        if state.is_some_and(|s| !s.state.is_final()) {
            std::fs::write(dir.join(CANCELLED_FILE), b"").map_err(|source| {
                AbError::MarkCancelled {
                    dir: dir.clone(),
                    source,
                }
            })?;
            api.interrupt(&job.native_id)
                .await
                .map_err(|source| AbError::Stop {
                    backend: job.backend.clone(),
                    native_id: job.native_id.clone(),
                    source,
                })?;
            stopping.push(job);
        }
    }
    let deadline = tokio::time::Instant::now() + cluster.settings().grace;
    for job in &stopping {
        loop {
            let state = api.query(&job.native_id).await.map_err(|e| ask(job, e))?;
            if state.is_none_or(|s| s.state.is_final()) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                api.kill(&job.native_id)
                    .await
                    .map_err(|source| AbError::Kill {
                        backend: job.backend.clone(),
                        native_id: job.native_id.clone(),
                        source,
                    })?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(stopping)
}

/// The experiment's cluster backend, checked to answer.
async fn connect(
    config: &SophonConfig,
    experiment: &Experiment,
) -> Result<Arc<BatchExecutor>, AbError> {
    Ok(connect_cluster(&config.jobs, experiment.backend()).await?)
}

/// Every cell's outcome: its summary; else what the sequence's job said of it; else why it has
/// none. A summary a shared filesystem does not show yet is looked for once more after 2 s.
async fn collect(
    experiment: &Experiment,
    out: &Path,
    ended: &BTreeMap<Key, String>,
) -> Vec<Outcome> {
    let missing = sequences(experiment).iter().any(|(arm, seed)| {
        experiment
            .competitions
            .iter()
            .any(|c| finished_outcome(out, &arm.name, *seed, c).is_none())
    });
    if missing {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
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

    #[test]
    fn the_driver_asks_the_scheduler_at_most_about_ten_questions_a_second() {
        let poll = Duration::from_secs(1);
        assert_eq!(poll_interval(poll, 2), poll);
        assert_eq!(poll_interval(poll, 450), Duration::from_secs(45));
        assert_eq!(poll_interval(poll, 10_000), Duration::from_secs(60));
        assert_eq!(poll_interval(Duration::ZERO, 0), Duration::from_millis(100));
    }

    #[test]
    fn a_second_driver_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = lock_driver(dir.path()).unwrap();
        let second = lock_driver(dir.path()).unwrap_err().to_string();
        assert!(
            second.contains("another `sophon ab` is driving"),
            "{second}"
        );
    }

    #[test]
    fn an_unreadable_record_is_an_error_not_a_missing_job() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_job(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join(JOB_FILE), "{torn").unwrap();
        let err = read_job(dir.path()).unwrap_err().to_string();
        assert!(err.contains("unreadable"), "{err}");
    }
}

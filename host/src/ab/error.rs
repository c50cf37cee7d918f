//! [`AbError`]: why an A/B experiment cannot be loaded, run, followed or stopped.
//!
//! Every variant names its cause and keeps the error behind it as its `source`. Its Display is
//! the whole message, the source's text included (what `sophon ab` prints, and what a cell's
//! outcome records); the CLI prints a chain of causes leaving out those a message already
//! names, so the source is not said twice.

use crate::capability::CapabilityError;
use crate::jobs::backends::BackendError;
use std::path::PathBuf;

/// Why an A/B experiment failed; see the module doc for how it is shown.
#[derive(Debug, thiserror::Error)]
pub enum AbError {
    // The experiment file and its checks.
    #[error("cannot read the experiment {}: {source}", path.display())]
    ReadExperiment {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid experiment: {source}", path.display())]
    InvalidExperiment {
        path: PathBuf,
        source: toml::de::Error,
    },
    /// The experiment's directory could not be made absolute.
    #[error("{}: {source}", path.display())]
    ExperimentDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("budget.time-limit = {value:?} is not a duration like \"5m\": {source}")]
    TimeLimit {
        value: String,
        source: humantime::DurationError,
    },
    #[error("cell.time = {value:?} is not a duration like \"30h\": {source}")]
    CellTime {
        value: String,
        source: humantime::DurationError,
    },
    #[error("budget.time-limit × the competitions is too long for a cell: set cell.time")]
    CellTimeOverflow,
    #[error("an A/B experiment needs at least two [[arms]], this one has {0}")]
    TooFewArms(usize),
    #[error(
        "arms[{index}].name = {name:?}: use 1–64 letters, digits, `-` or `_` (it names directories)"
    )]
    ArmName { index: usize, name: String },
    #[error("two arms are named {0:?}: arm names must differ")]
    DuplicateArm(String),
    #[error("`competitions` is empty: name at least one prepared competition")]
    NoCompetitions,
    #[error("competition {0:?} is not a competition id")]
    CompetitionId(String),
    #[error("`seeds` is empty: give at least one seed")]
    NoSeeds,
    #[error("`seeds` repeats a seed: paired comparisons need distinct seeds")]
    RepeatedSeed,
    #[error("max-parallel = 0: at least one cell must run")]
    NoParallelism,
    #[error(
        "backend = {0:?}: use one of {known}",
        known = crate::jobs::backends::known().join(", ")
    )]
    UnknownBackend(String),

    // The output directory and the files in it.
    #[error(
        "{} holds another experiment (its experiment.toml differs): give this one another \
         name or output-dir, or delete that directory",
        .0.display()
    )]
    OtherExperiment(PathBuf),
    #[error("creating {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The experiment could not be written as TOML.
    #[error(transparent)]
    EncodeToml(toml::ser::Error),
    /// Outcomes or a job record could not be written as JSON.
    #[error(transparent)]
    EncodeJson(serde_json::Error),

    // Running the cells.
    #[error(
        "this experiment's sequences were started as {recorded} jobs: follow them with \
         --backend {recorded} (or, once those jobs have ended, delete {} to run the rest here)",
        cells.display()
    )]
    StartedElsewhere { recorded: String, cells: PathBuf },
    #[error(
        "backend = \"{0}\" runs cells as cluster jobs: it needs the sophon binary to start on \
         the nodes"
    )]
    NoLaunch(String),
    #[error(
        "the experiment has no sequence of arm `{arm}` and seed {seed}: arms {arms}, seeds {seeds:?}"
    )]
    NoSequence {
        arm: String,
        seed: u64,
        /// The experiment's arms, comma-separated.
        arms: String,
        seeds: Vec<u64>,
    },
    /// The process's job backends could not be set up (`run::jobs` words it).
    #[error(transparent)]
    Backends(crate::run::jobs::JobsSetupError),
    #[error(transparent)]
    Backend(#[from] BackendError),

    // Cluster jobs.
    #[error("[cell]: {0}")]
    CellResources(#[source] CapabilityError),
    #[error(
        "another `sophon ab` is driving the experiment in {} (it holds {})",
        out.display(),
        lock.display()
    )]
    DriverBusy { out: PathBuf, lock: PathBuf },
    #[error("locking {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is unreadable ({source}): see `sophon ab --status`", path.display())]
    UnreadableRecord {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("recording the job in {}: {source}", path.display())]
    RecordJob {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("submitting the sequence (arm {arm}, seed {seed}) to {backend}: {source}")]
    Submit {
        arm: String,
        seed: u64,
        backend: String,
        source: CapabilityError,
    },
    #[error(
        "the sequence (arm {arm}, seed {seed}) was started on {backend} (job {native_id}): run \
         the experiment with --backend {backend}, or once that job has ended (--status, \
         --cancel) delete {} to go on here",
        record.display()
    )]
    OtherBackend {
        arm: String,
        seed: u64,
        backend: String,
        native_id: String,
        record: PathBuf,
    },
    #[error(
        "the submission of the sequence (arm {arm}, seed {seed}) to {backend} was interrupted \
         before its job id was recorded: look for a job named `sophon-ab-{arm}-{seed}` (e.g. \
         `squeue --name`), cancel it if it runs, then delete {}",
        record.display()
    )]
    InterruptedSubmission {
        arm: String,
        seed: u64,
        backend: String,
        record: PathBuf,
    },
    #[error(
        "asking {backend} about job {native_id} of the sequence (arm {arm}, seed {seed}): \
         {source}; try again when it answers"
    )]
    Reattach {
        backend: String,
        native_id: String,
        arm: String,
        seed: u64,
        source: CapabilityError,
    },
    #[error(
        "{backend} did not answer about job {native_id} for {polls} polls in a row (last: \
         {source}): fix that (a token to refresh?) and run the experiment again; it re-attaches \
         to its jobs"
    )]
    SchedulerSilent {
        backend: String,
        native_id: String,
        polls: u32,
        source: CapabilityError,
    },
    #[error(
        "{0} sequence(s) were cancelled (sophon ab --cancel), so nothing was summarised: run the \
         experiment again to resume them"
    )]
    Cancelled(usize),
    #[error("asking {backend} about job {native_id}: {source}")]
    Query {
        backend: String,
        native_id: String,
        source: CapabilityError,
    },
    #[error("marking {} cancelled: {source}", dir.display())]
    MarkCancelled {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("stopping {backend} job {native_id}: {source}")]
    Stop {
        backend: String,
        native_id: String,
        source: CapabilityError,
    },
    #[error("killing {backend} job {native_id}: {source}")]
    Kill {
        backend: String,
        native_id: String,
        source: CapabilityError,
    },
}

impl AbError {
    /// [`AbError::Create`] of `path`.
    pub fn create(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AbError {
        let path = path.into();
        move |source| AbError::Create { path, source }
    }

    /// [`AbError::Write`] of `path`.
    pub fn write(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AbError {
        let path = path.into();
        move |source| AbError::Write { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages are those `sophon ab` printed before they were typed, word for word.
    #[test]
    fn messages_read_as_before() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let cap = || CapabilityError::Unavailable("down".into());
        let silent = format!(
            "ray did not answer about job 7 for 30 polls in a row (last: {}): fix that \
                     (a token to refresh?) and run the experiment again; it re-attaches to its \
                     jobs",
            cap()
        );
        let cases = [
            (
                AbError::Write {
                    path: "/o/s.json".into(),
                    source: io(),
                },
                "writing /o/s.json: gone",
            ),
            (
                AbError::StartedElsewhere {
                    recorded: "slurm".into(),
                    cells: "/o/cells".into(),
                },
                "this experiment's sequences were started as slurm jobs: follow them with \
                 --backend slurm (or, once those jobs have ended, delete /o/cells to run the rest \
                 here)",
            ),
            (
                AbError::InterruptedSubmission {
                    arm: "a".into(),
                    seed: 3,
                    backend: "slurm".into(),
                    record: "/o/job.json".into(),
                },
                "the submission of the sequence (arm a, seed 3) to slurm was interrupted before \
                 its job id was recorded: look for a job named `sophon-ab-a-3` (e.g. `squeue \
                 --name`), cancel it if it runs, then delete /o/job.json",
            ),
            (
                AbError::SchedulerSilent {
                    backend: "ray".into(),
                    native_id: "7".into(),
                    polls: 30,
                    source: cap(),
                },
                silent.as_str(),
            ),
            (
                AbError::UnknownBackend("k8s".into()),
                "backend = \"k8s\": use one of local, slurm, ray",
            ),
            (
                AbError::NoSequence {
                    arm: "x".into(),
                    seed: 9,
                    arms: "a, b".into(),
                    seeds: vec![1, 2],
                },
                "the experiment has no sequence of arm `x` and seed 9: arms a, b, seeds [1, 2]",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected);
        }
    }
}

//! A mock host, so `cargo test` runs a plugin's logic natively, without wasm or a Sophon.
//!
//! In a native build every host call of this SDK ([`crate::llm`], [`crate::jobs`],
//! [`crate::hcc`], [`crate::task`], [`crate::run`], [`crate::artifacts`]) goes to the
//! [`MockHost`] installed on the calling thread: scripted LLM replies, fake (or real local)
//! jobs, an in-memory artifact store, HCC and run. After the call under test, the mock tells
//! what the plugin did: the requests it sent, the jobs it submitted, the nodes, the best, the
//! events and the log.
//!
//! ```
//! use sophon_sdk::testing::MockHost;
//! use sophon_sdk::{Outcome, Strategy, jobs, llm, run};
//!
//! struct Greedy;
//! impl Strategy for Greedy {
//!     fn run(_config: String) -> Result<Outcome, String> {
//!         let idea = llm::chat(&llm::ChatRequest::user("one idea"))?.text;
//!         let result = jobs::run(&jobs::JobSpec::new("try", &["python", "x.py"]))?;
//!         let metric: f64 = result.stdout.head.trim().parse().map_err(|e| format!("{e}"))?;
//!         run::node("node-1", "draft").plan(idea).metric(metric).report()?;
//!         Ok(Outcome { best_node: Some("node-1".into()), nodes: 1, summary: String::new() })
//!     }
//! }
//!
//! let host = MockHost::new()
//!     .reply("use gradient boosting")
//!     .on_job(|_spec| MockHost::job_printing("0.87\n"));
//! let outcome = host.run::<Greedy>("{}").unwrap();
//! assert_eq!(outcome.best_node.as_deref(), Some("node-1"));
//! assert_eq!(host.nodes()[0].plan, "use gradient boosting");
//! assert_eq!(host.nodes()[0].metric, Some(0.87));
//! assert_eq!(host.jobs()[0].name, "try");
//! ```
//!
//! Invariants: a mock serves only the thread it is installed on (Rust's test harness runs each
//! test on its own thread, so tests never see each other's mock); a host call made with no
//! mock installed panics with a message that says how to install one; every operation
//! completes at once (a job's result is decided when it is submitted), so [`crate::rt`]
//! futures never wait.

mod handles;
mod local_jobs;
mod state;

pub use handles::{MockJob, MockPending, MockPollable};

use crate::hcc::{KnowledgeUnit, StoredEvent, WisdomEntry};
use crate::jobs::{JobResult, JobSpec, JobState, OutputExcerpt};
use crate::llm::{ChatRequest, Completion};
use crate::run::{LogLevel, NodeReport};
use crate::task::{TaskInfo, Validation};
use crate::{Direction, Error, ErrorKind, Outcome, Strategy};
use state::{Calls, ChatHandler, JobHandler, JobRunner, State, ValidateHandler};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

thread_local! {
    static CURRENT: RefCell<Option<Rc<RefCell<State>>>> = const { RefCell::new(None) };
}

/// Run `call` on the mock installed on this thread.
///
/// # Panics
/// When no mock is installed: outside a plugin build, host calls need one.
pub(crate) fn with<R>(call: impl FnOnce(&Calls) -> R) -> R {
    let state = CURRENT.with(|current| current.borrow().clone());
    match state {
        Some(state) => call(&Calls(state)),
        None => panic!(
            "a sophon_sdk host call was made natively with no mock host installed: in a test, \
             run the plugin through sophon_sdk::testing::MockHost (`MockHost::new().run::<MyStrategy>(\"{{}}\")`, \
             or `host.within(|| ...)`); in a plugin, build for wasm32-wasip2 (`sophon plugin build`)"
        ),
    }
}

/// The claimed best submission, as the mock host accepted it.
#[derive(Clone, Debug, PartialEq)]
pub struct Best {
    pub node: String,
    /// Artifact id of the submission.
    pub submission: String,
    pub metric: f64,
}

/// A scriptable, inspectable host for native tests; cheap to clone (clones share state).
#[derive(Clone)]
pub struct MockHost(Rc<RefCell<State>>);

impl Default for MockHost {
    fn default() -> Self {
        MockHost::new()
    }
}

impl MockHost {
    /// A host for run `test-run` of competition `mock-competition` (seed 0, unlimited
    /// budgets), with a small tabular task, no LLM replies and no job runner: a chat or a
    /// job fails with an error that says which builder method to call.
    pub fn new() -> Self {
        MockHost(Rc::new(RefCell::new(State::new())))
    }

    fn set(self, change: impl FnOnce(&mut State)) -> Self {
        change(&mut self.0.borrow_mut());
        self
    }

    /// The task [`crate::task::describe`] answers (its competition id becomes the run's).
    pub fn task(self, task: TaskInfo) -> Self {
        self.set(|s| {
            s.info.competition_id = task.competition_id.clone();
            s.task = task;
        })
    }

    /// The run's seed ([`crate::run::info`]).
    pub fn seed(self, seed: u64) -> Self {
        self.set(|s| s.info.seed = seed)
    }

    /// At most `steps` node reports: the next one fails `budget-exhausted` and
    /// [`crate::run::should_stop`] turns true.
    pub fn steps(self, steps: u32) -> Self {
        self.set(|s| s.step_limit = Some(steps))
    }

    /// A wall-clock budget in milliseconds, counted from when the mock was made.
    pub fn wall_ms(self, ms: u64) -> Self {
        self.set(|s| s.wall_ms = Some(ms))
    }

    /// Queue the text of the next chat reply (replies are used in order).
    pub fn reply(self, text: impl Into<String>) -> Self {
        let text = text.into();
        self.set(|s| s.replies.push_back(Ok(text)))
    }

    /// Queue a failed chat call (e.g. `ErrorKind::RateLimited`).
    pub fn reply_error(self, kind: ErrorKind, message: impl Into<String>) -> Self {
        let error = Error::new(kind, message);
        self.set(|s| s.replies.push_back(Err(error)))
    }

    /// Answer every chat (once the queued replies are used up) with `answer(request)`.
    pub fn on_chat(
        self,
        answer: impl FnMut(&ChatRequest) -> crate::Result<String> + 'static,
    ) -> Self {
        let handler: ChatHandler = Rc::new(RefCell::new(answer));
        self.set(|s| s.chat_handler = Some(handler))
    }

    /// Decide every job's result with `run(spec)` (see [`MockHost::job_printing`]); files a
    /// job lists in `outputs` are not collected.
    pub fn on_job(self, run: impl FnMut(&JobSpec) -> JobResult + 'static) -> Self {
        let handler: JobHandler = Rc::new(RefCell::new(run));
        self.set(|s| s.jobs_runner = JobRunner::Fake(handler))
    }

    /// Run jobs for real, as plain local processes (no sandbox: test only your own code) in a
    /// fresh scratch directory each, with the spec's files written, its `outputs` collected as
    /// artifacts and its timeout enforced. A task-data mount links `task_data` at the mount
    /// target taken relative to the working directory (`/data` becomes `./data`), so scripts
    /// meant for the sandbox should read their data through a relative path or an env var.
    pub fn local_jobs(self, task_data: Option<PathBuf>) -> Self {
        self.set(|s| s.jobs_runner = JobRunner::Local { task_data })
    }

    /// Judge submissions ([`crate::task::validate`], [`crate::run::report_best`]) with
    /// `check(contents)`; by default any non-empty artifact is valid.
    pub fn validate_with(self, check: impl FnMut(&[u8]) -> Validation + 'static) -> Self {
        let handler: ValidateHandler = Rc::new(RefCell::new(check));
        self.set(|s| s.validator = Some(handler))
    }

    /// Queue the knowledge unit the next [`crate::hcc::end_phase`] returns (by default a
    /// phase ends with none, as with promotion policy `none`).
    pub fn knowledge_unit(self, unit: KnowledgeUnit) -> Self {
        self.set(|s| s.scripted_knowledge.push_back(unit))
    }

    /// Wisdom from earlier tasks, for [`crate::hcc::search`] and [`crate::hcc::context`].
    pub fn wisdom(self, entry: WisdomEntry) -> Self {
        self.set(|s| s.wisdom.push(entry))
    }

    /// Make every call of `capability` (`llm`, `jobs`, `hcc`, `task`, `artifacts`) fail
    /// `not-granted`, as for a plugin whose manifest does not ask for it.
    pub fn deny(self, capability: &str) -> Self {
        let capability = capability.to_string();
        self.set(|s| {
            s.denied.insert(capability);
        })
    }

    /// Install this mock on the current thread while `body` runs (nested calls restore the
    /// previous mock), e.g. to test a helper function or a policy's export directly.
    pub fn within<R>(&self, body: impl FnOnce() -> R) -> R {
        struct Restore(Option<Rc<RefCell<State>>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|current| *current.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|current| current.borrow_mut().replace(self.0.clone()));
        let _restore = Restore(previous);
        body()
    }

    /// Run strategy `S` with `config` (JSON) as the host would, on this mock.
    pub fn run<S: Strategy>(&self, config: &str) -> Result<Outcome, String> {
        self.within(|| S::run(config.to_string()))
    }

    /// A succeeded job whose stdout is `stdout`, for [`MockHost::on_job`].
    pub fn job_printing(stdout: &str) -> JobResult {
        MockHost::job_result(JobState::Succeeded, 0, stdout, "")
    }

    /// A job result in `state` with exit code `code` and these outputs.
    pub fn job_result(state: JobState, code: i32, stdout: &str, stderr: &str) -> JobResult {
        let excerpt = |text: &str| OutputExcerpt {
            head: text.to_string(),
            tail: String::new(),
            total_bytes: text.len() as u64,
        };
        JobResult {
            state,
            exit: Some(crate::jobs::ExitStatus::Code(code)),
            stdout: excerpt(stdout),
            stderr: excerpt(stderr),
            wall_ms: 0,
            cpu_ms: 0,
            peak_memory_bytes: None,
            artifacts: Vec::new(),
            message: match state {
                JobState::Succeeded => "exit code 0".to_string(),
                _ => format!("exit code {code}"),
            },
        }
    }

    /// Every chat request the plugin sent, in order.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.0.borrow().requests.clone()
    }

    /// Every job spec the plugin submitted, in order.
    pub fn jobs(&self) -> Vec<JobSpec> {
        self.0
            .borrow()
            .jobs
            .iter()
            .map(|j| j.spec.clone())
            .collect()
    }

    /// The nodes reported, in order.
    pub fn nodes(&self) -> Vec<NodeReport> {
        self.0.borrow().nodes.clone()
    }

    /// The best submission claimed and accepted, if any.
    pub fn best(&self) -> Option<Best> {
        self.0.borrow().best.clone()
    }

    /// The events recorded in the HCC, oldest first.
    pub fn events(&self) -> Vec<StoredEvent> {
        self.0.borrow().events.clone()
    }

    /// The plans of the phases begun, in order.
    pub fn phases(&self) -> Vec<String> {
        self.0.borrow().plans.clone()
    }

    /// The log lines written.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.0.borrow().logs.clone()
    }

    /// The contents of artifact `id`.
    pub fn artifact(&self, id: &str) -> Option<Vec<u8>> {
        self.0
            .borrow()
            .artifacts
            .iter()
            .find(|(a, _)| a.id == id)
            .map(|(_, bytes)| bytes.clone())
    }

    /// The best submission's contents, if one was accepted.
    pub fn best_submission(&self) -> Option<Vec<u8>> {
        self.best().and_then(|best| self.artifact(&best.submission))
    }

    /// What a completed chat looks like: `text`, finished, with token counts estimated as
    /// one token per four characters.
    pub fn completion(request: &ChatRequest, text: String) -> Completion {
        state::completion(request, text)
    }
}

/// The default task: a tiny binary classification, maximising accuracy.
pub fn sample_task() -> TaskInfo {
    TaskInfo {
        competition_id: "mock-competition".into(),
        title: "Mock competition".into(),
        description: "Predict `target` (0 or 1) for each `id` of test.csv.".into(),
        metric: crate::task::Metric {
            name: "accuracy".into(),
            direction: Direction::Maximize,
            description: "share of correct predictions".into(),
        },
        submission_format: "CSV with columns id,target".into(),
        data_preview: "train.csv (3 rows): id,x,target\ntest.csv (2 rows): id,x".into(),
        public_files: vec![
            "train.csv".into(),
            "test.csv".into(),
            "sample_submission.csv".into(),
        ],
        sample_submission: Some("id,target\n1,0\n2,0\n".into()),
    }
}

#[cfg(test)]
mod tests;

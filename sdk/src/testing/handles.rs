//! The mock host's resources: a job, a pending chat and a pollable, all already finished.

use crate::jobs::{JobResult, JobState, LogStream};
use crate::llm::Completion;
use crate::{Error, ErrorKind, Result};
use std::cell::{Cell, RefCell};

/// Readiness of a mock operation: always ready (every mock operation completes at once).
pub struct MockPollable;

impl MockPollable {
    pub fn ready(&self) -> bool {
        true
    }
    pub fn block(&self) {}
}

/// A job of the mock host, finished when submitted.
pub struct MockJob {
    pub(crate) id: String,
    pub(crate) result: JobResult,
}

impl MockJob {
    pub(crate) fn id(&self) -> String {
        self.id.clone()
    }
    pub(crate) fn state(&self) -> JobState {
        self.result.state
    }
    pub(crate) fn subscribe(&self) -> MockPollable {
        MockPollable
    }
    pub(crate) fn get(&self) -> Option<JobResult> {
        Some(self.result.clone())
    }
    /// The job has ended: nothing to cancel, as with the real host.
    pub(crate) fn cancel(&self) {}
    /// The recorded excerpts (head, then tail) from `offset`.
    pub(crate) fn logs(&self, stream: LogStream, offset: u64, max_bytes: u32) -> Result<String> {
        let excerpt = match stream {
            LogStream::Stdout => &self.result.stdout,
            LogStream::Stderr => &self.result.stderr,
        };
        let text = format!("{}{}", excerpt.head, excerpt.tail);
        let bytes = text.as_bytes();
        let start = (offset as usize).min(bytes.len());
        let end = start.saturating_add(max_bytes as usize).min(bytes.len());
        Ok(String::from_utf8_lossy(&bytes[start..end]).into_owned())
    }
}

/// A chat of the mock host, answered when started.
pub struct MockPending {
    pub(crate) outcome: RefCell<Option<Result<Completion>>>,
    pub(crate) taken: Cell<bool>,
}

impl MockPending {
    pub(crate) fn subscribe(&self) -> MockPollable {
        MockPollable
    }
    pub(crate) fn get(&self) -> Option<Result<Completion>> {
        if self.taken.replace(true) {
            return Some(Err(Error::new(
                ErrorKind::InvalidArgument,
                "this call's outcome was already taken",
            )));
        }
        self.outcome.borrow_mut().take()
    }
    pub(crate) fn cancel(&self) {
        if !self.taken.get() {
            *self.outcome.borrow_mut() = Some(Err(Error::new(
                ErrorKind::Cancelled,
                "cancelled by the plugin",
            )));
        }
    }
}

//! CPU-heavy work done on a plugin's behalf (counting tokens, assembling a context, scoring a
//! search), kept off the async executor.
//!
//! [`offload`] runs the work on tokio's blocking pool, at most [`permits`] pieces at once across
//! the process, so a plugin that floods the host with heavy calls queues behind its own work
//! instead of starving the executor or other plugins. Invariants:
//!
//! - the executor's threads never run the work;
//! - the caller bounds the wait (for a permit and for the work together) by awaiting
//!   [`offload`] under its call deadline; dropping the future sets the work's [`Cancel`], so
//!   work that checks it (between chunks) stops soon and frees its permit;
//! - work that does not check runs to its end, which callers keep bounded by capping the size
//!   of what they hand it (checked before any work starts).

use super::{CapResult, CapabilityError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;

/// Set when the caller stopped waiting (its deadline passed or it was cancelled).
#[derive(Debug, Default)]
pub struct Cancel(AtomicBool);

impl Cancel {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// `cancelled` once the caller has gone; work calls this between its steps.
    pub fn check(&self) -> CapResult<()> {
        if self.is_set() {
            return Err(CapabilityError::Cancelled(
                "the caller stopped waiting for this work (its deadline passed)".into(),
            ));
        }
        Ok(())
    }

    /// Ask the work to stop at its next check.
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Heavy pieces of work that may run at once: one per core the host may use.
pub fn permits() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 16))
}

static POOL: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(permits())));

/// Sets the work's [`Cancel`] when the waiting future goes away, however it ends.
struct CancelOnDrop(Arc<Cancel>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// Run `work` on the blocking pool once a permit is free. Callers await this under their call
/// deadline; dropping the future cancels the work. A panic in `work` is an `internal` error,
/// never the caller's crash.
pub async fn offload<T, F>(work: F) -> CapResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Cancel) -> CapResult<T> + Send + 'static,
{
    let cancel = Arc::new(Cancel::default());
    let _guard = CancelOnDrop(cancel.clone());
    let permit = POOL
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| CapabilityError::Internal("the host's work pool is closed".into()))?;
    let joined = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        cancel.check()?;
        work(&cancel)
    })
    .await;
    match joined {
        Ok(result) => result,
        Err(e) => Err(CapabilityError::Internal(format!(
            "host work for this call failed: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "current_thread")]
    async fn work_runs_off_the_executor_and_stops_when_its_caller_gives_up() {
        // The executor stays free while the work runs: a timer on it fires on time.
        let executor = std::thread::current().id();
        let started = Instant::now();
        let (ran_on, ticked) = tokio::join!(
            offload(move |_| {
                std::thread::sleep(Duration::from_millis(300));
                Ok(std::thread::current().id())
            }),
            async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                started.elapsed()
            }
        );
        assert_ne!(ran_on.unwrap(), executor);
        assert!(ticked < Duration::from_millis(250), "{ticked:?}");

        // A caller that stops waiting cancels the work at its next check.
        let stopped = Arc::new(AtomicBool::new(false));
        let seen = stopped.clone();
        let waited = tokio::time::timeout(
            Duration::from_millis(50),
            offload(move |cancel| {
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(30) {
                    if cancel.check().is_err() {
                        seen.store(true, Ordering::Release);
                        return Err(CapabilityError::Cancelled("stopped".into()));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(())
            }),
        )
        .await;
        assert!(waited.is_err());
        for _ in 0..200 {
            if stopped.load(Ordering::Acquire) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the abandoned work did not see its cancel flag");
    }

    #[tokio::test]
    async fn a_panic_in_the_work_is_an_internal_error() {
        let err = offload::<(), _>(|_| panic!("boom")).await.unwrap_err();
        assert!(matches!(err, CapabilityError::Internal(_)), "{err}");
    }
}

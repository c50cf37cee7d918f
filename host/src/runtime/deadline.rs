//! [`within`]: a wall-clock deadline that costs nothing for calls that finish at once.
//!
//! Most plugin calls complete in their first poll (a no-op, a string echo): arming a tokio
//! timer for them would be a large part of their cost. The timer is created only when the call
//! first returns `Pending`, i.e. when it really waits; the deadline is still measured from the
//! start of the call (on the runtime's coarse clock, so starting a call reads no system clock).

use super::engine::CoarseClock;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// The call did not finish by its deadline.
#[derive(Debug)]
pub struct Elapsed;

/// Run `future` for at most `limit` from `start_ms` on `clock`.
pub fn within<F: Future>(
    clock: &CoarseClock,
    start_ms: u64,
    limit: Duration,
    future: F,
) -> Within<'_, F> {
    Within {
        future,
        clock,
        start_ms,
        limit,
        timer: None,
    }
}

pin_project_lite::pin_project! {
    pub struct Within<'c, F> {
        #[pin]
        future: F,
        clock: &'c CoarseClock,
        start_ms: u64,
        limit: Duration,
        timer: Option<Pin<Box<Sleep>>>,
    }
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(value) = this.future.poll(cx) {
            return Poll::Ready(Ok(value));
        }
        let (clock, start_ms, limit) = (*this.clock, *this.start_ms, *this.limit);
        let timer = this.timer.get_or_insert_with(|| {
            let spent = Duration::from_millis(clock.now_ms().saturating_sub(start_ms));
            Box::pin(tokio::time::sleep(limit.saturating_sub(spent)))
        });
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn immediate_values_pass_and_slow_ones_time_out() {
        let clock = CoarseClock::default();
        let limit = Duration::from_millis(50);
        assert_eq!(
            within(&clock, clock.now_ms(), limit, async { 7 })
                .await
                .unwrap(),
            7
        );
        let slow = within(
            &clock,
            clock.now_ms(),
            limit,
            tokio::time::sleep(Duration::from_secs(30)),
        );
        assert!(slow.await.is_err());
        let quick = within(
            &clock,
            clock.now_ms(),
            Duration::from_secs(30),
            tokio::time::sleep(Duration::from_millis(5)),
        );
        assert!(quick.await.is_ok());
    }
}

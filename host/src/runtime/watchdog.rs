//! Per-call deadlines enforced through epoch interruption.
//!
//! The engine's epoch advances every tick (10 ms by default). A running plugin reaches its
//! epoch deadline every tick and [`Watchdog::on_epoch`] decides:
//!
//! - past the call's hard deadline → trap (the call took too long overall);
//! - computing without pause for longer than the compute slice → trap (an infinite loop);
//! - otherwise yield to the async executor, so one plugin's computation never starves the
//!   host or other plugins on the same thread.
//!
//! "Without pause" is measured from the callbacks themselves: while a plugin waits in a host
//! call it does not run, so no callback fires; a gap of more than three ticks between
//! callbacks means it paused, which restarts the slice. Host calls pay nothing for this, and
//! starting a call reads only the runtime's coarse clock.

use super::engine::CoarseClock;
use std::sync::Arc;
use std::time::Duration;

/// Why the watchdog stopped a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trip {
    /// The whole call ran past its deadline.
    CallDeadline(Duration),
    /// The plugin computed without pause for longer than the slice.
    ComputeSlice(Duration),
}

#[derive(Debug)]
pub struct Watchdog {
    clock: Arc<CoarseClock>,
    tick_ms: u64,
    slice: Duration,
    /// (deadline in clock ms, the call's timeout)
    call_deadline: Option<(u64, Duration)>,
    busy_since_ms: u64,
    last_seen_ms: u64,
    pub(crate) tripped: Option<Trip>,
}

impl Watchdog {
    pub fn new(clock: Arc<CoarseClock>, tick: Duration, slice: Duration) -> Self {
        let now = clock.now_ms();
        Watchdog {
            clock,
            tick_ms: (tick.as_millis() as u64).max(1),
            slice,
            call_deadline: None,
            busy_since_ms: now,
            last_seen_ms: now,
            tripped: None,
        }
    }

    /// Arm for a call that may last `timeout` in total; returns its start on the clock.
    pub fn start_call(&mut self, timeout: Duration) -> u64 {
        let now = self.clock.now_ms();
        let limit_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.call_deadline = Some((now.saturating_add(limit_ms), timeout));
        self.busy_since_ms = now;
        self.last_seen_ms = now;
        self.tripped = None;
        now
    }

    /// Decide at an epoch deadline: `Err` traps, `Ok` lets the plugin continue after a yield.
    pub fn on_epoch(&mut self) -> Result<(), Trip> {
        let now = self.clock.now_ms();
        if now.saturating_sub(self.last_seen_ms) > self.tick_ms * 3 {
            self.busy_since_ms = now;
        }
        self.last_seen_ms = now;
        if let Some((deadline, timeout)) = self.call_deadline
            && now >= deadline
        {
            self.tripped = Some(Trip::CallDeadline(timeout));
            return Err(Trip::CallDeadline(timeout));
        }
        if Duration::from_millis(now.saturating_sub(self.busy_since_ms)) >= self.slice {
            self.tripped = Some(Trip::ComputeSlice(self.slice));
            return Err(Trip::ComputeSlice(self.slice));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock the test moves by hand.
    fn clock() -> Arc<CoarseClock> {
        Arc::new(CoarseClock::default())
    }

    fn advance(clock: &CoarseClock, ms: u64) {
        clock.set_for_test(clock.now_ms() + ms);
    }

    #[test]
    fn trips_on_continuous_compute_but_not_after_pauses() {
        let c = clock();
        let mut w = Watchdog::new(
            c.clone(),
            Duration::from_millis(10),
            Duration::from_millis(100),
        );
        w.start_call(Duration::from_secs(60));
        // Paused between callbacks (as when waiting on the host): never trips.
        for _ in 0..20 {
            advance(&c, 40);
            assert!(w.on_epoch().is_ok());
        }
        // Continuous: a callback every tick until the slice is spent.
        for _ in 0..9 {
            advance(&c, 10);
            assert!(w.on_epoch().is_ok());
        }
        advance(&c, 10);
        assert_eq!(
            w.on_epoch(),
            Err(Trip::ComputeSlice(Duration::from_millis(100)))
        );
        assert_eq!(
            w.tripped,
            Some(Trip::ComputeSlice(Duration::from_millis(100)))
        );
    }

    #[test]
    fn trips_at_the_call_deadline() {
        let c = clock();
        let mut w = Watchdog::new(
            c.clone(),
            Duration::from_millis(10),
            Duration::from_secs(60),
        );
        w.start_call(Duration::from_millis(20));
        advance(&c, 10);
        assert!(w.on_epoch().is_ok());
        advance(&c, 40);
        assert_eq!(
            w.on_epoch(),
            Err(Trip::CallDeadline(Duration::from_millis(20)))
        );
    }
}

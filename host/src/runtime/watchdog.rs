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
//! call it does not run, so no callback fires; a gap of more than two ticks between callbacks
//! means it paused, which restarts the slice. Host calls pay nothing for this.

use std::time::{Duration, Instant};

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
    tick: Duration,
    slice: Duration,
    call_deadline: Option<(Instant, Duration)>,
    busy_since: Instant,
    last_seen: Instant,
    pub(crate) tripped: Option<Trip>,
}

impl Watchdog {
    pub fn new(tick: Duration, slice: Duration) -> Self {
        let now = Instant::now();
        Watchdog {
            tick,
            slice,
            call_deadline: None,
            busy_since: now,
            last_seen: now,
            tripped: None,
        }
    }

    /// Arm for a call that may last `timeout` in total.
    pub fn start_call(&mut self, timeout: Duration) {
        let now = Instant::now();
        self.call_deadline = Some((now + timeout, timeout));
        self.busy_since = now;
        self.last_seen = now;
        self.tripped = None;
    }

    /// Decide at an epoch deadline: `Err` traps, `Ok` lets the plugin continue after a yield.
    pub fn on_epoch(&mut self) -> Result<(), Trip> {
        let now = Instant::now();
        if now.duration_since(self.last_seen) > self.tick * 2 {
            self.busy_since = now;
        }
        self.last_seen = now;
        if let Some((deadline, timeout)) = self.call_deadline
            && now >= deadline
        {
            self.tripped = Some(Trip::CallDeadline(timeout));
            return Err(Trip::CallDeadline(timeout));
        }
        if now.duration_since(self.busy_since) >= self.slice {
            self.tripped = Some(Trip::ComputeSlice(self.slice));
            return Err(Trip::ComputeSlice(self.slice));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_on_continuous_compute_but_not_after_pauses() {
        let tick = Duration::from_millis(20);
        let mut w = Watchdog::new(tick, Duration::from_millis(100));
        w.start_call(Duration::from_secs(60));
        // Paused between callbacks (as when waiting on the host): never trips.
        for _ in 0..8 {
            std::thread::sleep(tick * 3);
            assert!(w.on_epoch().is_ok());
        }
        // Continuous: callbacks more often than every tick until the slice is spent.
        let start = Instant::now();
        let trip = loop {
            std::thread::sleep(Duration::from_millis(2));
            if let Err(trip) = w.on_epoch() {
                break trip;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "never tripped");
        };
        assert_eq!(trip, Trip::ComputeSlice(Duration::from_millis(100)));
    }

    #[test]
    fn trips_at_the_call_deadline() {
        let mut w = Watchdog::new(Duration::from_millis(5), Duration::from_secs(60));
        w.start_call(Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            w.on_epoch(),
            Err(Trip::CallDeadline(Duration::from_millis(20)))
        );
        assert_eq!(
            w.tripped,
            Some(Trip::CallDeadline(Duration::from_millis(20)))
        );
    }
}

//! "Now", for every rule about days and expiries: a trial's end, a shared token's expiry,
//! created/updated times on the control plane, an account's UTC day at the gateway. The
//! control plane and the gateway are each given this clock when they start: the system
//! clock in production, one that tests move forward at will, so a test of what happens
//! after a trial ends or a day turns does not sleep until it does.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The system clock plus an offset that only `advance` moves (always 0 in production).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Epoch milliseconds. Read every request (the account's day): the system's real-time
    /// clock read as it is, without `SystemTime`'s checked subtraction and `u128` division.
    pub fn now_ms(&self) -> i64 {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        let wall = now.tv_sec * 1000 + now.tv_nsec / 1_000_000;
        wall.saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Epoch seconds.
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Midnight (UTC) of today, epoch milliseconds: usage is kept per UTC day.
    pub fn today_utc_ms(&self) -> i64 {
        let now = self.now_ms();
        now - now.rem_euclid(DAY_MS)
    }

    /// Moves this clock (and every copy of it) forward. Tests of expiry and trials use it;
    /// production code never calls it, so the offset stays 0 there.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn the_system_clock_reads_as_system_time_does() {
        let clock = Clock::system();
        let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        let before = ms(SystemTime::now());
        let now = clock.now_ms();
        let after = ms(SystemTime::now());
        assert!(
            before <= now && now <= after,
            "{before} <= {now} <= {after}"
        );
    }

    #[test]
    fn advancing_moves_every_copy() {
        let clock = Clock::system();
        let copy = clock.clone();
        let before = copy.now_ms();
        clock.advance(Duration::from_secs(3600));
        let after = copy.now_ms();
        assert!(after - before >= 3_600_000, "{before} -> {after}");
        assert!(after - before < 3_700_000, "{before} -> {after}");
    }
}

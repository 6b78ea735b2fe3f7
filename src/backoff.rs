//! Exponential backoff with full jitter, the one retry pacing of every background loop that
//! talks to something that can fail for a while: the batcher retrying its sink, the feed
//! client retrying the control plane.
//!
//! It owns only the arithmetic (how long the next wait may be); the caller sleeps, so it
//! can race the wait against shutdown and honour a `Retry-After`. It imports nothing from
//! the crate: `forward` and `tokens` both use it and must not import each other.

use std::time::Duration;

/// The n-th consecutive failure waits a uniform random time in `[0, min(max, initial * 2^n)]`
/// (AWS architecture blog, "Exponential Backoff And Jitter"), so clients that failed
/// together — gateways that lost the control plane, batchers behind one receiver — spread
/// out instead of retrying in step.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            failures: 0,
        }
    }

    /// The upper bound of the next wait.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The next wait (and one more failure counted).
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        ceiling.mul_f64(rand::random::<f64>())
    }

    /// A success: the next failure waits at most `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_up_to_its_cap_and_waits_at_most_the_ceiling() {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let mut ceilings = Vec::new();
        for _ in 0..12 {
            let ceiling = backoff.ceiling();
            ceilings.push(ceiling.as_millis());
            let started = tokio::time::Instant::now();
            let delay = backoff.next_delay();
            assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
            tokio::time::sleep(delay).await;
            assert!(started.elapsed() <= ceiling + Duration::from_millis(1));
        }
        assert_eq!(
            ceilings,
            [
                250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 30000
            ]
        );
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_millis(250));
        // Far past 2^31 failures the ceiling stays at the cap, no overflow.
        backoff.failures = u32::MAX;
        assert_eq!(backoff.ceiling(), Duration::from_secs(30));
        assert!(backoff.next_delay() <= Duration::from_secs(30));
    }

    /// The batcher's pacing (100 ms doubling to 5 s) is the same arithmetic.
    #[test]
    fn the_sink_retry_pacing_doubles_from_100ms_to_5s() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let ceilings: Vec<_> = (0..9)
            .map(|_| {
                let ceiling = backoff.ceiling().as_millis();
                backoff.next_delay();
                ceiling
            })
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(backoff.failures(), 9);
    }

    #[test]
    fn backoff_is_jittered() {
        let mut delays = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
            delays.insert(backoff.next_delay());
        }
        assert!(
            delays.len() > 10,
            "full jitter spreads the waits: {delays:?}"
        );
    }
}

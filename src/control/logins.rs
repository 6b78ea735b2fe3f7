//! Failed logins to the page, counted per email and per client address over a window, so
//! guessing passwords is slow; and the count of every login's outcome.

use std::net::IpAddr;
use std::time::Duration;

use moka::sync::Cache;
use prometheus::IntCounterVec;

/// Failed logins counted per email and per client address over a window; past the limit
/// every attempt is refused, the right password included, until the window ends.
pub struct LoginLimiter {
    by_email: Cache<String, u32>,
    by_client: Cache<IpAddr, u32>,
    /// `tollgate_control_logins_total` by outcome.
    outcomes: IntCounterVec,
}

/// Failures allowed per email, and per client address, within `LOGIN_WINDOW`.
const EMAIL_FAILURES: u32 = 5;
const CLIENT_FAILURES: u32 = 20;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Bounds the limiter's memory under a flood of distinct emails or addresses.
const LIMITER_ENTRIES: u64 = 100_000;

fn failures<K: std::hash::Hash + Eq + Send + Sync + 'static>() -> Cache<K, u32> {
    Cache::builder()
        .max_capacity(LIMITER_ENTRIES)
        .time_to_live(LOGIN_WINDOW)
        .build()
}

impl LoginLimiter {
    pub fn new(outcomes: IntCounterVec) -> LoginLimiter {
        LoginLimiter {
            by_email: failures(),
            by_client: failures(),
            outcomes,
        }
    }

    pub fn outcome(&self, outcome: &str) {
        self.outcomes.with_label_values(&[outcome]).inc();
    }

    pub fn limited(&self, email: &str, client: IpAddr) -> bool {
        self.by_email.get(email).unwrap_or(0) >= EMAIL_FAILURES
            || self.by_client.get(&client).unwrap_or(0) >= CLIENT_FAILURES
    }

    pub fn failed(&self, email: &str, client: IpAddr) {
        // Not atomic per key: concurrent failures may count once, which only loosens the
        // limit by the concurrency of one client.
        self.by_email
            .insert(email.to_owned(), self.by_email.get(email).unwrap_or(0) + 1);
        self.by_client
            .insert(client, self.by_client.get(&client).unwrap_or(0) + 1);
    }

    pub fn succeeded(&self, email: &str) {
        self.by_email.invalidate(email);
    }
}

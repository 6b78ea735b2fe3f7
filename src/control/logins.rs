//! Failed logins to the page, limited so guessing passwords is slow, and the count of
//! every login's outcome. An attempt is counted before its password is checked (the check
//! takes tens of milliseconds), so attempts sent together cannot all pass the limit.
//!
//! Three limits within `LOGIN_WINDOW`: one email from one client address (a stranger can
//! only lock an admin out of the addresses the stranger uses), one email from every
//! address together (a higher ceiling against guessing from many), and one client address
//! for every email. Behind a reverse proxy the client address is the one the proxy names
//! (`control_plane.trusted_proxies`), so one person's failures do not lock out everyone
//! behind it.

use std::net::IpAddr;
use std::time::Duration;

use moka::sync::Cache;
use prometheus::IntCounterVec;

/// Attempts allowed within `LOGIN_WINDOW`, failed ones counted.
const EMAIL_FROM_CLIENT: u32 = 5;
const EMAIL: u32 = 50;
const CLIENT: u32 = 20;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Bounds the limiter's memory under a flood of distinct emails or addresses.
const LIMITER_ENTRIES: u64 = 100_000;

pub struct LoginLimiter {
    by_email_from_client: Cache<(String, IpAddr), u32>,
    by_email: Cache<String, u32>,
    by_client: Cache<IpAddr, u32>,
    /// `tollgate_control_logins_total` by outcome.
    outcomes: IntCounterVec,
}

fn attempts<K: std::hash::Hash + Eq + Send + Sync + 'static>() -> Cache<K, u32> {
    Cache::builder()
        .max_capacity(LIMITER_ENTRIES)
        .time_to_live(LOGIN_WINDOW)
        .build()
}

/// Adds one to `key`'s count, atomically; the count after.
fn count<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static>(
    cache: &Cache<K, u32>,
    key: K,
) -> u32 {
    cache
        .entry(key)
        .and_upsert_with(|found| found.map_or(1, |e| e.into_value().saturating_add(1)))
        .into_value()
}

/// One login attempt, counted. A failed one stays counted; `succeeded` gives it back.
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    email: String,
    client: IpAddr,
}

impl LoginLimiter {
    pub fn new(outcomes: IntCounterVec) -> LoginLimiter {
        LoginLimiter {
            by_email_from_client: attempts(),
            by_email: attempts(),
            by_client: attempts(),
            outcomes,
        }
    }

    pub fn outcome(&self, outcome: &str) {
        self.outcomes.with_label_values(&[outcome]).inc();
    }

    /// Counts an attempt for `email` from `client` before its password is checked; `None`
    /// past a limit. An attempt refused at once (a limit already reached) is not counted,
    /// so the window closes 15 minutes after the last failure, not the last try.
    pub fn attempt(&self, email: &str, client: IpAddr) -> Option<Attempt<'_>> {
        let pair = (email.to_owned(), client);
        if self.by_email_from_client.get(&pair).unwrap_or(0) >= EMAIL_FROM_CLIENT
            || self.by_email.get(email).unwrap_or(0) >= EMAIL
            || self.by_client.get(&client).unwrap_or(0) >= CLIENT
        {
            return None;
        }
        // Counted first, checked after: of attempts racing for the last slot, one wins.
        let over = [
            count(&self.by_email_from_client, pair) > EMAIL_FROM_CLIENT,
            count(&self.by_email, email.to_owned()) > EMAIL,
            count(&self.by_client, client) > CLIENT,
        ];
        if over.contains(&true) {
            return None;
        }
        Some(Attempt {
            limiter: self,
            email: email.to_owned(),
            client,
        })
    }
}

impl Attempt<'_> {
    /// The right password: the email's counts start over, and the address gets its
    /// attempt back.
    pub fn succeeded(self) {
        let limiter = self.limiter;
        limiter
            .by_email_from_client
            .invalidate(&(self.email.clone(), self.client));
        limiter.by_email.invalidate(&self.email);
        limiter
            .by_client
            .entry(self.client)
            .and_compute_with(|found| match found {
                Some(e) if e.value() > &1 => moka::ops::compute::Op::Put(e.into_value() - 1),
                _ => moka::ops::compute::Op::Remove,
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(
            IntCounterVec::new(prometheus::Opts::new("t", "t"), &["outcome"]).unwrap(),
        )
    }

    #[test]
    fn attempts_racing_for_the_last_slot_do_not_all_pass() {
        let limiter = limiter();
        let ip: IpAddr = [192, 0, 2, 1].into();
        let passed = std::thread::scope(|s| {
            let handles: Vec<_> = (0..12)
                .map(|_| s.spawn(|| limiter.attempt("ann@example.com", ip).is_some()))
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok())
                .filter(|passed| *passed)
                .count()
        });
        assert_eq!(u32::try_from(passed).unwrap(), EMAIL_FROM_CLIENT);
    }

    #[test]
    fn a_stranger_locks_an_email_out_of_the_strangers_address_only() {
        let limiter = limiter();
        let (stranger, admin): (IpAddr, IpAddr) = ([198, 51, 100, 7].into(), [192, 0, 2, 1].into());
        for _ in 0..EMAIL_FROM_CLIENT {
            assert!(limiter.attempt("admin@example.com", stranger).is_some());
        }
        assert!(limiter.attempt("admin@example.com", stranger).is_none());
        let attempt = limiter
            .attempt("admin@example.com", admin)
            .expect("the admin's own address");
        attempt.succeeded();
        // Across every address the email has a ceiling too.
        for n in 0..EMAIL {
            let ip: IpAddr = [203, 0, 113, u8::try_from(n % 250).unwrap()].into();
            limiter.attempt("target@example.com", ip);
        }
        assert!(limiter.attempt("target@example.com", admin).is_none());
    }

    #[test]
    fn a_success_gives_the_address_its_attempt_back() {
        let limiter = limiter();
        let ip: IpAddr = [192, 0, 2, 9].into();
        for n in 0..CLIENT * 2 {
            let attempt = limiter
                .attempt(&format!("user{n}@example.com"), ip)
                .expect("successes do not use up the address");
            attempt.succeeded();
        }
    }
}

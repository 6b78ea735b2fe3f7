//! The decode budget (`server.max_inflight_decoded_bytes`): what requests hold once their
//! body is read, across requests. The body budget (`server::body`) counts bytes as sent,
//! while they arrive; a 100 KB gzip body can hold 100 MiB once decompressed and more again
//! as lines or structs, so decoding takes from a budget of its own. A request counts what
//! it is about to allocate (its body as read, each piece of decompressed output, its
//! lines, its decoded form) before allocating it, so the budget bounds the memory and not
//! only its count, and gives it all back when the request ends (`DecodeHold` drops).
//! A request that cannot take more is answered 503 + `Retry-After`; one that would need
//! more than the whole budget, 413.
//!
//! Each request's first `UNCOUNTED_BYTES` are its own: most requests are small, and they
//! never touch the shared counter (no atomic operation on the common path) nor are they
//! ever refused by it, whatever large requests hold. So the memory decoding holds is at
//! most the budget plus `UNCOUNTED_BYTES` for each request in flight
//! (`server.max_concurrent_requests`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use super::error::IngestError;
use crate::server::body::BodyBudget;
use crate::telemetry::{DecodeMetrics, Telemetry};

/// What each request may hold without taking from the budget.
pub const UNCOUNTED_BYTES: u64 = 64 * 1024;

/// The most a request takes ahead of what it counts: a decoder grows in many small steps,
/// and taking up to this much more each time keeps it to a few atomic operations a MiB,
/// while leaving little of the budget taken and unused.
const TAKE_AHEAD: u64 = 1024 * 1024;

/// The bytes requests being decoded hold beyond their first `UNCOUNTED_BYTES`, counted as
/// the body budget counts its own: only ever tried, never waited on.
pub struct DecodeBudget {
    bytes: BodyBudget,
    /// The `Retry-After` of a 503 for the budget.
    retry_after: Duration,
    metrics: DecodeMetrics,
    /// Turns to decode off the async runtime: as many as there are cores. Here because
    /// whoever decodes holds the budget, and how many decode at once is part of what
    /// bounds the memory.
    turns: tokio::sync::Semaphore,
}

impl std::fmt::Debug for DecodeBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeBudget")
            .field("taken", &self.taken())
            .field("max", &self.bytes.max())
            .finish()
    }
}

impl DecodeBudget {
    pub fn new(max_bytes: u64, retry_after: Duration, metrics: DecodeMetrics) -> DecodeBudget {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        DecodeBudget {
            bytes: BodyBudget::new(max_bytes, metrics.taken.clone()),
            retry_after,
            metrics,
            turns: tokio::sync::Semaphore::new(cores),
        }
    }

    /// A budget nothing exceeds, for decoding outside a server (benches, fuzzing).
    pub fn unlimited() -> Arc<DecodeBudget> {
        let metrics = Telemetry::new().decode_budget();
        Arc::new(DecodeBudget::new(u64::MAX, Duration::ZERO, metrics))
    }

    /// Bytes taken now.
    pub fn taken(&self) -> u64 {
        self.bytes.taken()
    }

    /// Waits for a turn to decode off the async runtime (`body::off_the_runtime_if_large`).
    pub async fn turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.turns
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }
}

/// One request's share of the decode budget: what it counts as held, and what it took
/// from the budget for that. Dropped, it gives back all it took.
pub struct DecodeHold<'a> {
    /// Borrowed on the request's task; owned by work moved off the runtime (`detach`).
    budget: Cow<'a, Arc<DecodeBudget>>,
    used: u64,
    /// At least `used - UNCOUNTED_BYTES`.
    taken: u64,
}

impl<'a> DecodeHold<'a> {
    pub fn new(budget: &'a Arc<DecodeBudget>) -> DecodeHold<'a> {
        DecodeHold {
            budget: Cow::Borrowed(budget),
            used: 0,
            taken: 0,
        }
    }

    /// Counts `bytes` the request is about to allocate: past its own `UNCOUNTED_BYTES`,
    /// they are taken from the budget first. A 503 when the budget does not have them, a
    /// 413 when the request would hold more than the whole budget.
    pub fn grow(&mut self, bytes: usize) -> Result<(), IngestError> {
        let used = self.used.saturating_add(bytes as u64);
        if used > self.taken.saturating_add(UNCOUNTED_BYTES) {
            self.take_for(used)?;
        }
        self.used = used;
        Ok(())
    }

    /// Counts `bytes` the request freed. What it took beyond what it still holds goes
    /// back to the budget, for other requests.
    pub fn shrink(&mut self, bytes: usize) {
        self.used = self.used.saturating_sub(bytes as u64);
        let needed = self.used.saturating_sub(UNCOUNTED_BYTES);
        if self.taken > needed {
            self.budget.bytes.give_back(self.taken - needed);
            self.taken = needed;
        }
    }

    /// The budget it takes from.
    pub fn budget(&self) -> &Arc<DecodeBudget> {
        &self.budget
    }

    /// What the request counts as held now.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The same hold with its own reference to the budget, for work moved off the async
    /// runtime (which must own what it uses); `self` is left holding nothing.
    pub fn detach(&mut self) -> DecodeHold<'static> {
        DecodeHold {
            budget: Cow::Owned(Arc::clone(&self.budget)),
            used: std::mem::take(&mut self.used),
            taken: std::mem::take(&mut self.taken),
        }
    }

    #[cold]
    fn take_for(&mut self, used: u64) -> Result<(), IngestError> {
        let budget = &**self.budget;
        let (wanted, max) = (used - UNCOUNTED_BYTES, budget.bytes.max());
        if wanted > max {
            budget.metrics.refused_too_large(wanted);
            return Err(IngestError::TooLarge {
                what: "the memory this request takes to decode",
                limit: max,
            });
        }
        let needed = wanted - self.taken;
        let ahead = needed.max(self.taken.min(TAKE_AHEAD)).min(max - self.taken);
        let took = if budget.bytes.try_take(ahead) {
            ahead
        } else if ahead > needed && budget.bytes.try_take(needed) {
            needed
        } else {
            budget.metrics.refused_busy(wanted);
            return Err(IngestError::DecodeBusy {
                retry_after: budget.retry_after,
            });
        };
        self.taken += took;
        Ok(())
    }
}

impl Drop for DecodeHold<'_> {
    fn drop(&mut self) {
        if self.taken > 0 {
            self.budget.bytes.give_back(self.taken);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A budget of `max` bytes, its metrics in a registry of their own.
    pub(crate) fn budget(max: u64) -> Arc<DecodeBudget> {
        let metrics = Telemetry::new().decode_budget();
        Arc::new(DecodeBudget::new(max, Duration::from_secs(1), metrics))
    }

    #[test]
    fn a_request_holds_its_first_bytes_without_taking_from_the_budget() {
        let budget = budget(1 << 20);
        let mut hold = DecodeHold::new(&budget);
        hold.grow(UNCOUNTED_BYTES as usize).unwrap();
        assert_eq!(budget.taken(), 0);
        hold.grow(1).unwrap();
        assert!(budget.taken() >= 1);
        drop(hold);
        assert_eq!(budget.taken(), 0);
    }

    #[test]
    fn past_the_budget_is_503_and_past_the_whole_budget_413() {
        let budget = budget(1 << 20);
        let mut first = DecodeHold::new(&budget);
        first.grow((1 << 20) + UNCOUNTED_BYTES as usize).unwrap();
        assert_eq!(budget.taken(), 1 << 20);
        let mut second = DecodeHold::new(&budget);
        second.grow(UNCOUNTED_BYTES as usize).unwrap();
        assert!(matches!(
            second.grow(1),
            Err(IngestError::DecodeBusy { retry_after }) if retry_after == Duration::from_secs(1)
        ));
        assert!(matches!(
            second.grow(2 << 20),
            Err(IngestError::TooLarge { limit, .. }) if limit == 1 << 20
        ));
        // What the first gives back, the second can take.
        first.shrink(1 << 20);
        assert_eq!(budget.taken(), 0);
        second.grow(1).unwrap();
    }

    #[test]
    fn taking_ahead_never_takes_what_a_request_could_not_get_exactly() {
        let budget = budget(3 << 20);
        let mut big = DecodeHold::new(&budget);
        big.grow(UNCOUNTED_BYTES as usize + (2 << 20)).unwrap();
        // Growing by a byte would take a step ahead, 1 MiB, but the budget has less:
        // the byte alone is taken.
        let mut other = DecodeHold::new(&budget);
        other
            .grow(UNCOUNTED_BYTES as usize + (1 << 20) - 10)
            .unwrap();
        big.grow(1).unwrap();
        assert!(budget.taken() <= 3 << 20);
        drop((big, other));
        assert_eq!(budget.taken(), 0);
    }

    #[test]
    fn a_detached_hold_carries_what_was_taken() {
        let budget = budget(4 << 20);
        let mut hold = DecodeHold::new(&budget);
        hold.grow(2 << 20).unwrap();
        let taken = budget.taken();
        let detached = hold.detach();
        drop(hold);
        assert_eq!(budget.taken(), taken, "the detached hold owns it now");
        drop(detached);
        assert_eq!(budget.taken(), 0);
    }
}

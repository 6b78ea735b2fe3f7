//! What the spool holds that the sink has not acknowledged yet: the count `submit` checks
//! against `forward.spool_max_bytes` (a slow sink becomes 503s at the front door, never
//! lost data) and the `tollgate_spool_bytes` / `tollgate_spool_records` gauges that show it.
//!
//! `Unacked` is the one owner of those numbers. The writer adds what it made durable, the
//! reader adds the records it replays and takes off the bytes it skips, the batcher takes
//! off what the sink acknowledged, `submit` reads the total. Nothing else writes them, and
//! this module does no I/O.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::IntGauge;

/// Frame bytes and records spooled and not yet acknowledged by the sink. Atomics only:
/// the request path reads it on every submit, so no lock.
pub struct Unacked {
    bytes: AtomicU64,
    records: AtomicU64,
    bytes_gauge: IntGauge,
    records_gauge: IntGauge,
}

impl Unacked {
    /// Starts from the `bytes` found after the cursor at boot. Their records are not
    /// known yet (counting them would read every frame twice): the reader adds them as it
    /// replays.
    pub(super) fn new(bytes: u64, bytes_gauge: IntGauge, records_gauge: IntGauge) -> Unacked {
        let unacked = Unacked {
            bytes: AtomicU64::new(bytes),
            records: AtomicU64::new(0),
            bytes_gauge,
            records_gauge,
        };
        unacked.publish();
        unacked
    }

    /// A group commit made `bytes` of frames holding `records` durable.
    pub(super) fn appended(&self, bytes: u64, records: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
        self.publish();
    }

    /// The reader replayed `records` that were on disk at boot (their bytes were counted
    /// by `new`).
    pub(super) fn replayed(&self, records: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.publish();
    }

    /// The reader passed over `bytes` of corrupt frames or a torn tail: they will never be
    /// acknowledged, so they must not hold up the high-water check.
    pub(super) fn skipped(&self, bytes: u64) {
        if bytes > 0 {
            let _ = self
                .bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    Some(b.saturating_sub(bytes))
                });
            self.publish();
        }
    }

    /// The sink acknowledged entries holding `bytes` of frames and `records`.
    pub fn acknowledged(&self, bytes: u64, records: u64) {
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.records.fetch_sub(records, Ordering::Relaxed);
        self.publish();
    }

    /// Frame bytes not yet acknowledged: what the high-water mark is checked against.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn publish(&self) {
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.bytes_gauge.set(gauge(self.bytes()));
        self.records_gauge
            .set(gauge(self.records.load(Ordering::Relaxed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unacked(boot_bytes: u64) -> Unacked {
        let gauge = |name| IntGauge::new(name, "test").expect("a valid gauge");
        Unacked::new(boot_bytes, gauge("bytes"), gauge("records"))
    }

    #[test]
    fn the_gauges_follow_appends_replays_skips_and_acks() {
        let u = unacked(100);
        assert_eq!((u.bytes_gauge.get(), u.records_gauge.get()), (100, 0));
        u.replayed(4);
        u.appended(50, 2);
        assert_eq!(u.bytes(), 150);
        assert_eq!((u.bytes_gauge.get(), u.records_gauge.get()), (150, 6));
        u.skipped(30);
        u.acknowledged(70, 4);
        assert_eq!(u.bytes(), 50);
        assert_eq!((u.bytes_gauge.get(), u.records_gauge.get()), (50, 2));
    }

    #[test]
    fn skipping_more_than_is_counted_stops_at_zero() {
        let u = unacked(10);
        u.skipped(25);
        assert_eq!(u.bytes(), 0);
    }
}

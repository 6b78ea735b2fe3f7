//! The drop filters a gateway holds, as the feed sends them, and what each has let through
//! today. Only the logs route asks (log filters); an account without an active filter
//! costs one empty-map check or one lookup.
//!
//! A filter with a threshold lets matching logs through until they total its bytes in the
//! UTC day, then drops the rest of the day's. The count is this gateway's: a fleet of N
//! gateways lets up to N × the threshold through before every gateway drops.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use serde_json::Value;

use super::logs::LogDropFilter;
use crate::clock::{Clock, DAY_MS};
use crate::model::AccountId;

/// What a log filter let through on one UTC day.
#[derive(Default)]
struct DayCount {
    day: AtomicU32,
    bytes: AtomicU64,
}

impl DayCount {
    /// Adds `bytes` matched on `day`; returns whether they are over `threshold`.
    fn over(&self, day: u32, bytes: u64, threshold: u64) -> bool {
        if threshold == 0 {
            return true;
        }
        if self.day.swap(day, Ordering::AcqRel) != day {
            self.bytes.store(0, Ordering::Release);
        }
        let before = self.bytes.fetch_add(bytes, Ordering::AcqRel);
        before >= threshold
    }
}

struct Held {
    filter: LogDropFilter,
    count: Arc<DayCount>,
}

/// Every log filter of every account, by account; inactive filters are held (their counts
/// go on) and never drop.
pub struct HeldFilters {
    logs: ArcSwap<HashMap<AccountId, Vec<Arc<Held>>>>,
    clock: Clock,
}

impl HeldFilters {
    pub fn new(clock: Clock) -> HeldFilters {
        HeldFilters {
            logs: ArcSwap::from_pointee(HashMap::new()),
            clock,
        }
    }

    /// Every log filter, from a snapshot: replaces all.
    pub fn set(&self, logs: Vec<LogDropFilter>) {
        self.install(logs, |_| false);
    }

    /// A change: `upserts` replace the filters of their ids, `deleted` ids go.
    pub fn apply(&self, upserts: Vec<LogDropFilter>, deleted: &[u64]) {
        let upserted: Vec<u64> = upserts.iter().map(|f| f.id).collect();
        let kept = self
            .logs
            .load()
            .values()
            .flatten()
            .map(|h| h.filter.clone())
            .collect::<Vec<_>>();
        let mut all = upserts;
        all.extend(kept.into_iter().filter(|f| !upserted.contains(&f.id)));
        self.install(all, |id| deleted.contains(&id));
    }

    fn install(&self, filters: Vec<LogDropFilter>, gone: impl Fn(u64) -> bool) {
        let counts: HashMap<u64, Arc<DayCount>> = self
            .logs
            .load()
            .values()
            .flatten()
            .map(|h| (h.filter.id, Arc::clone(&h.count)))
            .collect();
        let mut next: HashMap<AccountId, Vec<Arc<Held>>> = HashMap::new();
        for filter in filters.into_iter().filter(|f| !gone(f.id)) {
            let count = counts.get(&filter.id).cloned().unwrap_or_default();
            next.entry(filter.account_id)
                .or_default()
                .push(Arc::new(Held { filter, count }));
        }
        next.retain(|_, held| held.iter().any(|h| h.filter.active));
        self.logs.store(Arc::new(next));
    }

    /// The account's active log filters, if it has any: what the logs route asks first.
    pub fn for_account(&self, account: AccountId) -> Option<AccountFilters> {
        let logs = self.logs.load();
        if logs.is_empty() {
            return None;
        }
        let held = logs.get(&account)?;
        let day = u32::try_from(self.clock.now_ms().div_euclid(DAY_MS)).unwrap_or(0);
        Some(AccountFilters {
            held: held.iter().filter(|h| h.filter.active).cloned().collect(),
            day,
        })
    }
}

/// One account's active log filters, for one request.
pub struct AccountFilters {
    held: Vec<Arc<Held>>,
    day: u32,
}

impl AccountFilters {
    /// Whether a log of `bytes` bytes and type `log_type` is dropped: the first filter it
    /// matches decides, by its threshold.
    pub fn drops(&self, log_type: &str, log: &Value, bytes: u64) -> bool {
        self.held
            .iter()
            .find(|h| h.filter.matches(Some(log_type), log))
            .is_some_and(|h| h.count.over(self.day, bytes, h.filter.threshold_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::logs::{ConditionValue, FieldCondition};
    use serde_json::json;

    fn filter(id: u64, active: bool, threshold_bytes: u64) -> LogDropFilter {
        LogDropFilter {
            id,
            account_id: AccountId(7),
            active,
            log_type: Some("nginx".into()),
            field_conditions: vec![FieldCondition {
                field_name: "level".into(),
                value: ConditionValue::Text("debug".into()),
            }],
            threshold_bytes,
        }
    }

    #[test]
    fn matching_logs_are_dropped_past_the_threshold_and_counts_survive_a_change() {
        let held = HeldFilters::new(Clock::system());
        held.set(vec![filter(1, true, 250)]);
        let f = held.for_account(AccountId(7)).expect("an active filter");
        let debug = json!({"level": "debug"});
        let passed = (0..5).filter(|_| !f.drops("nginx", &debug, 100)).count();
        assert_eq!(
            passed, 3,
            "100, 200 and 300 bytes: the third starts under 250"
        );
        assert!(!f.drops("apache", &debug, 100), "another type");
        assert!(
            !f.drops("nginx", &json!({"level": "info"}), 100),
            "another value"
        );
        held.apply(vec![filter(1, true, 250)], &[]);
        let f = held.for_account(AccountId(7)).unwrap();
        assert!(f.drops("nginx", &debug, 1), "the day's count is kept");
        held.apply(vec![filter(1, false, 0)], &[]);
        assert!(
            held.for_account(AccountId(7)).is_none(),
            "inactive drops nothing"
        );
        held.apply(vec![], &[1]);
        assert!(held.logs.load().is_empty());
    }
}

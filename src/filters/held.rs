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

/// The filters held: every log filter (inactive ones too: a filter switched off and on
/// within a day keeps its count), and each account's active ones, ready for a request.
#[derive(Default)]
struct State {
    all: Vec<LogDropFilter>,
    counts: HashMap<u64, Arc<DayCount>>,
    active: HashMap<AccountId, Arc<[Held]>>,
}

/// Every log filter of every account, as the feed sends them.
pub struct HeldFilters {
    state: ArcSwap<State>,
    clock: Clock,
}

impl HeldFilters {
    pub fn new(clock: Clock) -> HeldFilters {
        HeldFilters {
            state: ArcSwap::from_pointee(State::default()),
            clock,
        }
    }

    /// Every log filter, from a snapshot: replaces all.
    pub fn set(&self, logs: Vec<LogDropFilter>) {
        self.install(logs);
    }

    /// A change: `upserts` replace the filters of their ids, `deleted` ids go.
    pub fn apply(&self, upserts: Vec<LogDropFilter>, deleted: &[u64]) {
        let current = self.state.load();
        let mut all = upserts;
        let replaced: Vec<u64> = all.iter().map(|f| f.id).collect();
        all.extend(
            current
                .all
                .iter()
                .filter(|f| !replaced.contains(&f.id) && !deleted.contains(&f.id))
                .cloned(),
        );
        self.install(all);
    }

    fn install(&self, all: Vec<LogDropFilter>) {
        let current = self.state.load();
        let counts: HashMap<u64, Arc<DayCount>> = all
            .iter()
            .map(|f| (f.id, current.counts.get(&f.id).cloned().unwrap_or_default()))
            .collect();
        let mut active: HashMap<AccountId, Vec<Held>> = HashMap::new();
        for filter in all.iter().filter(|f| f.active) {
            let count = Arc::clone(&counts[&filter.id]);
            active.entry(filter.account_id).or_default().push(Held {
                filter: filter.clone(),
                count,
            });
        }
        let active = active.into_iter().map(|(a, h)| (a, h.into())).collect();
        self.state.store(Arc::new(State {
            all,
            counts,
            active,
        }));
    }

    /// The account's active log filters, if it has any: what the logs route asks first.
    pub fn for_account(&self, account: AccountId) -> Option<AccountFilters> {
        let state = self.state.load();
        if state.active.is_empty() {
            return None;
        }
        let held = Arc::clone(state.active.get(&account)?);
        let day = u32::try_from(self.clock.now_ms().div_euclid(DAY_MS)).unwrap_or(0);
        Some(AccountFilters { held, day })
    }
}

/// One account's active log filters, for one request.
pub struct AccountFilters {
    held: Arc<[Held]>,
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
        assert!(held.state.load().all.is_empty());
    }
}

//! The drop filters a gateway holds, as the feed sends them: each account's active log and
//! metrics filters ready for a request, what each dropped since the last usage report, and
//! what each log filter with a threshold let through today. An account without an active
//! filter costs one empty-map check or one lookup.
//!
//! A log filter with a threshold lets matching logs through until they total its bytes in
//! the UTC day, fleet-wide, then drops the rest of the day's. Each gateway counts what it
//! let through and adds it to the fleet's count in the volume bank every second
//! (`sync`); between two syncs it knows the fleet's count as of the last one plus its own
//! since, so a fleet of N gateways lets at most about N × one second's matching traffic
//! through past the threshold.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use foldhash::HashMap;
use regex::{RegexSet, RegexSetBuilder};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::logs::{Fields, LogDropFilter, ScalarKey};
use super::metrics::{
    Comparison, CompiledFilter, Condition, Expression, Labels, METRIC_NAME, MetricsDropFilter,
};
use crate::clock::{Clock, DAY_MS};
use crate::model::{AccountId, Kind};
use crate::volume::bank::{Bank, Day};

/// What one drop filter dropped at a gateway since its last usage report (the report's
/// `dropped`; the control plane sums them per day for the page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterDrops {
    /// `logs`: a log filter; `metrics`: a metrics filter.
    pub kind: Kind,
    pub filter_id: u64,
    pub records: u64,
    pub bytes: u64,
}

/// What a filter dropped since the last report.
#[derive(Default)]
struct Dropped {
    records: AtomicU64,
    bytes: AtomicU64,
}

impl Dropped {
    fn add(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// What a log filter let through on one UTC day: the fleet's count as of the last sync and
/// this gateway's since.
#[derive(Default)]
struct Passed {
    day: AtomicU32,
    fleet: AtomicU64,
    here: AtomicU64,
}

impl Passed {
    /// Whether a matching log of `bytes` on `day` is dropped by `threshold`: once the
    /// day's count has reached it. A log that passes is counted.
    fn over(&self, day: u32, bytes: u64, threshold: u64) -> bool {
        if threshold == 0 {
            return true;
        }
        self.turn(day);
        let passed = self.fleet.load(Ordering::Acquire) + self.here.load(Ordering::Acquire);
        if passed >= threshold {
            return true;
        }
        self.here.fetch_add(bytes, Ordering::AcqRel);
        false
    }

    /// Starts the count again when `day` is a new one.
    fn turn(&self, day: u32) {
        if self.day.swap(day, Ordering::AcqRel) != day {
            self.fleet.store(0, Ordering::Release);
            self.here.store(0, Ordering::Release);
        }
    }
}

/// A log filter's counts, kept across changes to it (a filter switched off and on within a
/// day keeps what it let through).
#[derive(Default)]
struct LogCounts {
    passed: Passed,
    dropped: Dropped,
}

struct HeldLog {
    filter: LogDropFilter,
    counts: Arc<LogCounts>,
}

/// One account's active log filters, indexed by their first condition so that a log is
/// looked up once per distinct first field instead of being tried against every filter.
struct AccountLogs {
    held: Vec<HeldLog>,
    /// The top-level keys the conditions read (each field name and its dotted prefixes)
    /// and `type`: all a line's check needs to keep of it.
    keys: Vec<Box<str>>,
    first: Vec<FirstConditions>,
    /// Filters without conditions (the API refuses them; a token file may hold them).
    unconditional: Vec<usize>,
}

/// The filters whose first condition reads `field`, by the value it wants.
struct FirstConditions {
    field: Box<str>,
    texts: HashMap<Box<str>, Vec<usize>>,
    numbers: HashMap<u64, Vec<usize>>,
}

impl AccountLogs {
    fn new(held: Vec<HeldLog>) -> AccountLogs {
        let mut keys: Vec<Box<str>> = vec!["type".into()];
        let mut first: Vec<FirstConditions> = Vec::new();
        let mut unconditional = Vec::new();
        for (i, h) in held.iter().enumerate() {
            for c in &h.filter.field_conditions {
                let name = c.field_name.as_str();
                let prefixes = name.match_indices('.').map(|(at, _)| &name[..at]);
                for key in prefixes.chain([name]) {
                    if !keys.iter().any(|k| &**k == key) {
                        keys.push(key.into());
                    }
                }
            }
            let Some(c) = h.filter.field_conditions.first() else {
                unconditional.push(i);
                continue;
            };
            let group = match first.iter().position(|g| *g.field == *c.field_name) {
                Some(g) => &mut first[g],
                None => {
                    first.push(FirstConditions {
                        field: c.field_name.as_str().into(),
                        texts: HashMap::default(),
                        numbers: HashMap::default(),
                    });
                    first.last_mut().expect("just pushed")
                }
            };
            match c.value.key() {
                ScalarKey::Text(t) => group.texts.entry(t.into()).or_default().push(i),
                ScalarKey::Number(n) => group.numbers.entry(n).or_default().push(i),
            }
        }
        AccountLogs {
            held,
            keys,
            first,
            unconditional,
        }
    }

    /// The first filter (in the account's order) that `log` of type `log_type` meets.
    fn first_match<F: Fields + ?Sized>(&self, log_type: &str, log: &F) -> Option<&HeldLog> {
        let meets = |i: &usize| self.held[*i].filter.matches(Some(log_type), log);
        let mut best = self.unconditional.iter().copied().find(|i| meets(i));
        for group in &self.first {
            let value = log.scalar(&group.field);
            let candidates = match value.key() {
                Some(ScalarKey::Text(t)) => group.texts.get(t),
                Some(ScalarKey::Number(n)) => group.numbers.get(&n),
                None => None,
            };
            let found = candidates.and_then(|c| c.iter().copied().find(|i| meets(i)));
            best = match (best, found) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        best.map(|i| &self.held[i])
    }
}

struct HeldMetrics {
    /// The filter's `__name__` condition, when it has one at the top: what indexes it.
    name: Option<Condition>,
    compiled: CompiledFilter,
    dropped: Arc<Dropped>,
}

/// One metrics account's enabled filters, indexed by their `__name__` condition: a series
/// is looked up by its name once (a map for `EQ`, one set of all the `REGEX_MATCH`
/// patterns) instead of being tried against every filter.
struct AccountMetrics {
    held: Vec<HeldMetrics>,
    by_name: HashMap<Box<str>, Vec<usize>>,
    /// The patterns, anchored, and the filter each one is.
    patterns: Option<(RegexSet, Vec<usize>)>,
    /// Filters with neither: tried on every series.
    always: Vec<usize>,
}

/// How large the compiled set of an account's name patterns may grow; past it (not with
/// 1,000 ordinary patterns) the filters are tried one by one instead.
const PATTERN_SET_SIZE_LIMIT: usize = 64 << 20;

impl AccountMetrics {
    fn new(held: Vec<HeldMetrics>) -> AccountMetrics {
        let mut by_name: HashMap<Box<str>, Vec<usize>> = HashMap::default();
        let (mut patterns, mut patterned) = (Vec::new(), Vec::new());
        let mut always = Vec::new();
        for (i, h) in held.iter().enumerate() {
            match &h.name {
                Some(c) if c.comparison_filter == Comparison::Eq => {
                    by_name.entry(c.value.as_str().into()).or_default().push(i);
                }
                Some(c) => {
                    patterns.push(format!("^(?:{})$", c.value));
                    patterned.push(i);
                }
                None => always.push(i),
            }
        }
        let set = match patterns.is_empty() {
            true => None,
            false => RegexSetBuilder::new(&patterns)
                .size_limit(PATTERN_SET_SIZE_LIMIT)
                .build()
                .ok(),
        };
        let patterns = match set {
            Some(set) => Some((set, patterned)),
            None => {
                always.extend(patterned);
                always.sort_unstable();
                None
            }
        };
        AccountMetrics {
            held,
            by_name,
            patterns,
            always,
        }
    }

    /// The first filter (in the account's order) a series meets.
    fn first_match<L: Labels + ?Sized>(&self, name: &str, labels: &L) -> Option<&HeldMetrics> {
        let meets = |i: &usize| self.held[*i].compiled.matches(name, labels);
        let mut best = self.always.iter().copied().find(|i| meets(i));
        let mut consider = |found: Option<usize>| {
            best = match (best, found) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        };
        consider(
            self.by_name
                .get(name)
                .and_then(|c| c.iter().copied().find(|i| meets(i))),
        );
        if let Some((set, filters)) = &self.patterns
            && set.is_match(name)
        {
            consider(
                set.matches(name)
                    .iter()
                    .map(|p| filters[p])
                    .find(|i| meets(i)),
            );
        }
        best.map(|i| &self.held[i])
    }
}

/// A filter's top-level `__name__` condition that selects series (`EQ` or `REGEX_MATCH`).
fn name_condition(filter: &MetricsDropFilter) -> Option<Condition> {
    filter.filter.expression.iter().find_map(|e| match e {
        Expression::Condition(c)
            if c.name == METRIC_NAME
                && matches!(c.comparison_filter, Comparison::Eq | Comparison::RegexMatch) =>
        {
            Some(c.clone())
        }
        _ => None,
    })
}

/// The filters held: every filter (inactive ones too), their counts, and each account's
/// active ones, ready for a request.
#[derive(Default)]
struct State {
    logs: Vec<LogDropFilter>,
    metrics: Vec<MetricsDropFilter>,
    log_counts: HashMap<u64, Arc<LogCounts>>,
    metrics_dropped: HashMap<u64, Arc<Dropped>>,
    active_logs: HashMap<AccountId, Arc<AccountLogs>>,
    active_metrics: HashMap<AccountId, Arc<AccountMetrics>>,
}

/// Every drop filter of every account, as the feed sends them.
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

    /// Every filter, from a snapshot: replaces all.
    pub fn set(&self, logs: Vec<LogDropFilter>, metrics: Vec<MetricsDropFilter>) {
        self.install(logs, metrics);
    }

    /// A change: upserts replace the filters of their ids, deleted ids go.
    pub fn apply(
        &self,
        logs: Vec<LogDropFilter>,
        deleted_logs: &[u64],
        metrics: Vec<MetricsDropFilter>,
        deleted_metrics: &[u64],
    ) {
        let current = self.state.load();
        let logs = merged(logs, &current.logs, deleted_logs, |f| f.id);
        let metrics = merged(metrics, &current.metrics, deleted_metrics, |f| f.id);
        self.install(logs, metrics);
    }

    fn install(&self, logs: Vec<LogDropFilter>, metrics: Vec<MetricsDropFilter>) {
        let current = self.state.load();
        let log_counts: HashMap<u64, Arc<LogCounts>> = logs
            .iter()
            .map(|f| (f.id, kept(&current.log_counts, f.id)))
            .collect();
        let metrics_dropped: HashMap<u64, Arc<Dropped>> = metrics
            .iter()
            .map(|f| (f.id, kept(&current.metrics_dropped, f.id)))
            .collect();
        let mut active_logs: HashMap<AccountId, Vec<HeldLog>> = HashMap::default();
        for filter in logs.iter().filter(|f| f.active) {
            active_logs
                .entry(filter.account_id)
                .or_default()
                .push(HeldLog {
                    counts: Arc::clone(&log_counts[&filter.id]),
                    filter: filter.clone(),
                });
        }
        let mut active_metrics: HashMap<AccountId, Vec<HeldMetrics>> = HashMap::default();
        for filter in metrics.iter().filter(|f| f.active) {
            // The control plane compiled it when it took it; one that does not compile
            // here (a newer syntax) drops nothing rather than everything.
            let Ok(compiled) = filter.filter.compile() else {
                tracing::warn!(filter = filter.id, "a metrics drop filter does not compile");
                continue;
            };
            active_metrics
                .entry(filter.account_id)
                .or_default()
                .push(HeldMetrics {
                    name: name_condition(filter),
                    compiled,
                    dropped: Arc::clone(&metrics_dropped[&filter.id]),
                });
        }
        self.state.store(Arc::new(State {
            logs,
            metrics,
            log_counts,
            metrics_dropped,
            active_logs: active_logs
                .into_iter()
                .map(|(a, h)| (a, Arc::new(AccountLogs::new(h))))
                .collect(),
            active_metrics: active_metrics
                .into_iter()
                .map(|(a, h)| (a, Arc::new(AccountMetrics::new(h))))
                .collect(),
        }));
    }

    /// Every filter held, in the feed's snapshot shape (what a gateway persists with its
    /// table).
    pub fn all(&self) -> (Vec<LogDropFilter>, Vec<MetricsDropFilter>) {
        let state = self.state.load();
        (state.logs.clone(), state.metrics.clone())
    }

    /// The account's active log filters, if it has any: what a logs route asks first.
    pub fn logs_of(&self, account: AccountId) -> Option<LogFilters> {
        let state = self.state.load();
        if state.active_logs.is_empty() {
            return None;
        }
        let held = Arc::clone(state.active_logs.get(&account)?);
        Some(LogFilters {
            held,
            day: self.today(),
        })
    }

    /// The account's enabled metrics filters, if it has any.
    pub fn metrics_of(&self, account: AccountId) -> Option<MetricsFilters> {
        let state = self.state.load();
        if state.active_metrics.is_empty() {
            return None;
        }
        let held = Arc::clone(state.active_metrics.get(&account)?);
        Some(MetricsFilters { held })
    }

    fn today(&self) -> u32 {
        u32::try_from(self.clock.now_ms().div_euclid(DAY_MS)).unwrap_or(0)
    }

    /// What each filter dropped since the last call (counts restart from zero).
    pub fn take_dropped(&self) -> Vec<FilterDrops> {
        let state = self.state.load();
        let take = |kind: Kind, filter_id: u64, d: &Dropped| {
            let records = d.records.swap(0, Ordering::Relaxed);
            let bytes = d.bytes.swap(0, Ordering::Relaxed);
            (records > 0 || bytes > 0).then_some(FilterDrops {
                kind,
                filter_id,
                records,
                bytes,
            })
        };
        let logs = state
            .log_counts
            .iter()
            .filter_map(|(id, c)| take(Kind::Logs, *id, &c.dropped));
        let metrics = state
            .metrics_dropped
            .iter()
            .filter_map(|(id, d)| take(Kind::Metrics, *id, d));
        logs.chain(metrics).collect()
    }

    /// Puts back what a failed report took (a filter deleted since is forgotten).
    pub fn restore_dropped(&self, dropped: Vec<FilterDrops>) {
        let state = self.state.load();
        for d in dropped {
            let counter = match d.kind {
                Kind::Logs => state.log_counts.get(&d.filter_id).map(|c| &c.dropped),
                Kind::Metrics => state.metrics_dropped.get(&d.filter_id).map(|d| &**d),
                Kind::Traces => None,
            };
            if let Some(counter) = counter {
                counter.add(d.records, d.bytes);
            }
        }
    }

    /// Adds what each active log filter with a threshold let through here to the fleet's
    /// count in `bank`, and takes the fleet's count back. On failure what was let through
    /// here is kept for the next sync.
    pub async fn sync<B: Bank>(&self, bank: &B) {
        let state = self.state.load_full();
        let day = self.today();
        let thresholds = state
            .active_logs
            .values()
            .flat_map(|account| account.held.iter())
            .filter(|h| h.filter.threshold_bytes > 0);
        for held in thresholds {
            let passed = &held.counts.passed;
            passed.turn(day);
            let here = passed.here.swap(0, Ordering::AcqRel);
            match bank.tally(held.filter.id, Day(day), here).await {
                Ok(total) if passed.day.load(Ordering::Acquire) == day => {
                    passed.fleet.store(total, Ordering::Release);
                }
                Ok(_) => {} // the day turned meanwhile: the new day starts from zero
                Err(e) => {
                    passed.here.fetch_add(here, Ordering::AcqRel);
                    tracing::debug!("drop filter thresholds not synced: {e}");
                    return;
                }
            }
        }
    }

    /// `sync` every `every` until `stop`.
    pub async fn run<B: Bank>(
        self: Arc<Self>,
        bank: Arc<B>,
        every: Duration,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => self.sync(&*bank).await,
            }
        }
    }
}

/// `upserts`, then the filters of `current` neither replaced nor deleted.
fn merged<F: Clone>(upserts: Vec<F>, current: &[F], deleted: &[u64], id: fn(&F) -> u64) -> Vec<F> {
    let replaced: Vec<u64> = upserts.iter().map(id).collect();
    let mut all = upserts;
    all.extend(
        current
            .iter()
            .filter(|f| !replaced.contains(&id(f)) && !deleted.contains(&id(f)))
            .cloned(),
    );
    all
}

/// The counts `id` had, or new ones.
fn kept<C: Default>(counts: &HashMap<u64, Arc<C>>, id: u64) -> Arc<C> {
    counts.get(&id).cloned().unwrap_or_default()
}

/// One account's active log filters, for one request.
pub struct LogFilters {
    held: Arc<AccountLogs>,
    day: u32,
}

impl LogFilters {
    /// The top-level keys of a log the filters read, `type` first: a line's check keeps
    /// their values for `drops`.
    pub fn keys(&self) -> &[Box<str>] {
        &self.held.keys
    }

    /// Whether a log of `bytes` bytes and type `log_type` is dropped: the first filter it
    /// matches decides, by its threshold. A dropped log is counted for its filter.
    pub fn drops<F: Fields + ?Sized>(&self, log_type: &str, log: &F, bytes: u64) -> bool {
        let Some(held) = self.held.first_match(log_type, log) else {
            return false;
        };
        let dropped = held
            .counts
            .passed
            .over(self.day, bytes, held.filter.threshold_bytes);
        if dropped {
            held.counts.dropped.add(1, bytes);
        }
        dropped
    }
}

/// One metrics account's enabled filters, for one request.
pub struct MetricsFilters {
    held: Arc<AccountMetrics>,
}

impl MetricsFilters {
    /// Whether a series (or an OTLP metric's data point) named `metric_name` with `labels`
    /// is dropped; a dropped one is counted for the first filter it matches, as `points`
    /// records of `bytes`.
    pub fn drops<L: Labels + ?Sized>(
        &self,
        metric_name: &str,
        labels: &L,
        points: u64,
        bytes: u64,
    ) -> bool {
        let Some(held) = self.held.first_match(metric_name, labels) else {
            return false;
        };
        held.dropped.add(points, bytes);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::logs::{ConditionValue, FieldCondition};
    use crate::filters::metrics::{Comparison, Condition, Expression};
    use crate::filters::metrics::{DropPolicy, Filter, Operator};
    use crate::volume::bank::LocalBank;
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

    fn metrics_filter(id: u64, active: bool, pattern: &str) -> MetricsDropFilter {
        MetricsDropFilter {
            id,
            account_id: AccountId(8),
            active,
            drop_policy: DropPolicy::BeforeProcessing,
            filter: Filter {
                operator: Operator::And,
                expression: vec![Expression::Condition(Condition {
                    name: "__name__".into(),
                    value: pattern.into(),
                    comparison_filter: Comparison::RegexMatch,
                })],
            },
        }
    }

    #[test]
    fn matching_logs_are_dropped_past_the_threshold_and_counts_survive_a_change() {
        let held = HeldFilters::new(Clock::system());
        held.set(vec![filter(1, true, 250)], vec![]);
        let f = held.logs_of(AccountId(7)).expect("an active filter");
        let debug = json!({"level": "debug"});
        let passed = (0..5).filter(|_| !f.drops("nginx", &debug, 100)).count();
        assert_eq!(passed, 3, "0, 100 and 200 bytes before: under 250");
        assert!(!f.drops("apache", &debug, 100), "another type");
        assert!(
            !f.drops("nginx", &json!({"level": "info"}), 100),
            "another value"
        );
        held.apply(vec![filter(1, true, 250)], &[], vec![], &[]);
        let f = held.logs_of(AccountId(7)).unwrap();
        assert!(f.drops("nginx", &debug, 1), "the day's count is kept");
        let dropped = held.take_dropped();
        assert_eq!(
            dropped,
            vec![FilterDrops {
                kind: Kind::Logs,
                filter_id: 1,
                records: 3,
                bytes: 201
            }]
        );
        assert!(held.take_dropped().is_empty(), "taken");
        held.restore_dropped(dropped.clone());
        assert_eq!(
            held.take_dropped(),
            dropped,
            "a failed report puts them back"
        );
        held.apply(vec![filter(1, false, 0)], &[], vec![], &[]);
        assert!(
            held.logs_of(AccountId(7)).is_none(),
            "inactive drops nothing"
        );
        held.apply(vec![], &[1], vec![], &[]);
        assert!(held.state.load().logs.is_empty());
    }

    #[tokio::test]
    async fn thresholds_are_counted_across_gateways_through_the_bank() {
        let bank = LocalBank::default();
        let (a, b) = (
            HeldFilters::new(Clock::system()),
            HeldFilters::new(Clock::system()),
        );
        for g in [&a, &b] {
            g.set(vec![filter(1, true, 1_000)], vec![]);
        }
        let debug = json!({"level": "debug"});
        let (fa, fb) = (
            a.logs_of(AccountId(7)).unwrap(),
            b.logs_of(AccountId(7)).unwrap(),
        );
        assert!(!fa.drops("nginx", &debug, 600));
        assert!(
            !fb.drops("nginx", &debug, 600),
            "b does not know of a's yet"
        );
        a.sync(&bank).await;
        b.sync(&bank).await;
        assert!(fb.drops("nginx", &debug, 1), "1,200 let through fleet-wide");
        a.sync(&bank).await;
        assert!(fa.drops("nginx", &debug, 1), "a learns the fleet's count");
    }

    #[test]
    fn the_first_filter_a_series_meets_counts_it_whatever_indexes_it() {
        let condition = |name: &str, value: &str, comparison| {
            Expression::Condition(Condition {
                name: name.into(),
                value: value.into(),
                comparison_filter: comparison,
            })
        };
        let with = |id, expression| MetricsDropFilter {
            id,
            account_id: AccountId(8),
            active: true,
            drop_policy: DropPolicy::BeforeProcessing,
            filter: Filter {
                operator: Operator::And,
                expression,
            },
        };
        let held = HeldFilters::new(Clock::system());
        held.set(
            vec![],
            vec![
                with(
                    1,
                    vec![
                        condition("job", "a", Comparison::Eq),
                        condition("__name__", "cpu", Comparison::Eq),
                    ],
                ),
                with(
                    2,
                    vec![condition("__name__", "c.*", Comparison::RegexMatch)],
                ),
                with(3, vec![condition("job", "b", Comparison::Eq)]),
            ],
        );
        let f = held.metrics_of(AccountId(8)).unwrap();
        let job = |j: &'static str| [("job", j)];
        assert!(f.drops("cpu", &job("a")[..], 1, 1), "by its name: 1");
        assert!(
            f.drops("cpu", &job("b")[..], 2, 2),
            "by its pattern: 2, before 3"
        );
        assert!(
            f.drops("mem", &job("b")[..], 4, 4),
            "tried on every series: 3"
        );
        assert!(!f.drops("mem", &job("c")[..], 8, 8));
        let mut dropped = held.take_dropped();
        dropped.sort_by_key(|d| d.filter_id);
        let records: Vec<(u64, u64)> = dropped.iter().map(|d| (d.filter_id, d.records)).collect();
        assert_eq!(records, [(1, 1), (2, 2), (3, 4)]);
    }

    #[test]
    fn metrics_filters_drop_matching_series_and_count_them() {
        let held = HeldFilters::new(Clock::system());
        held.set(
            vec![],
            vec![
                metrics_filter(4, true, "cpu_.*"),
                metrics_filter(5, false, ".*"),
            ],
        );
        assert!(held.metrics_of(AccountId(9)).is_none(), "another account");
        let f = held.metrics_of(AccountId(8)).expect("an enabled filter");
        let labels: &[(&str, &str)] = &[("job", "node")];
        assert!(f.drops("cpu_seconds", labels, 3, 120));
        assert!(
            !f.drops("memory_bytes", labels, 1, 40),
            "the disabled one drops nothing"
        );
        assert_eq!(
            held.take_dropped(),
            vec![FilterDrops {
                kind: Kind::Metrics,
                filter_id: 4,
                records: 3,
                bytes: 120
            }]
        );
    }
}

//! The control plane's metrics, on its own listener's `/metrics`. Route labels are the
//! matched path templates (`/v1/log-shipping/tokens/{id}`), a fixed set; rule labels are
//! the `errorCode`s, also fixed.

use std::time::Duration;

use std::sync::atomic::AtomicI64;

use prometheus::{HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Registry};

use super::{counter_vec, encode, gauge, gauge_vec, histogram_vec};

/// The control plane's registry and the handles its API, feed and page write.
pub struct ControlTelemetry {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    /// Refusals by `errorCode`: how often each product rule says no.
    refusals: IntCounterVec,
    pub feed_version: IntGauge,
    /// Long polls on `/v1/feed/changes` waiting right now: roughly the connected gateways.
    pub feed_waiting: IntGauge,
    /// Single-digest lookups from gateways' miss caches, `found` or `not_found`.
    pub feed_lookups: IntCounterVec,
    /// Page logins by outcome: `ok`, `failed` (unknown email or wrong password),
    /// `limited` (too many failures), `suspended`.
    pub logins: IntCounterVec,
    /// Accounts' UTC days marked, by `mark`: `capped` (a gateway first held it capped)
    /// or `soft_limit` (its volume first crossed `softLimitGB`).
    pub volume_marks: IntCounterVec,
    /// Today's bytes of the accounts that sent the most (`TOP_ACCOUNTS`), by account and
    /// kind: what the fleet dashboard's "top accounts" panel shows. Bounded, so no label
    /// grows with the number of accounts.
    pub top_accounts: IntGaugeVec,
    /// When `top_accounts` was last read from the store (epoch ms).
    pub top_accounts_read_ms: AtomicI64,
}

/// How many accounts `top_accounts` holds.
pub const TOP_ACCOUNTS: i64 = 20;

impl Default for ControlTelemetry {
    fn default() -> Self {
        ControlTelemetry::new()
    }
}

impl ControlTelemetry {
    pub fn new() -> ControlTelemetry {
        let registry = Registry::new();
        ControlTelemetry {
            requests: counter_vec(
                &registry,
                "tollgate_control_requests_total",
                "Control-plane requests answered, by route template and status code.",
                &["route", "code"],
            ),
            duration: histogram_vec(
                &registry,
                "tollgate_control_request_duration_seconds",
                "Control-plane request latency (long polls included), by route template.",
                &["route"],
                Ok(vec![
                    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0,
                ]),
            ),
            refusals: counter_vec(
                &registry,
                "tollgate_control_refusals_total",
                "Control-plane calls refused, by errorCode (the rule or check that refused).",
                &["code"],
            ),
            feed_version: gauge(
                &registry,
                "tollgate_control_feed_version",
                "The control plane's current token feed version.",
            ),
            feed_waiting: gauge(
                &registry,
                "tollgate_control_feed_waiting",
                "Long polls on /v1/feed/changes waiting for a change.",
            ),
            feed_lookups: counter_vec(
                &registry,
                "tollgate_control_feed_lookups_total",
                "Single-digest lookups from gateways' miss caches, by result.",
                &["result"],
            ),
            logins: counter_vec(
                &registry,
                "tollgate_control_logins_total",
                "Manage Tokens page logins, by outcome (ok, failed, limited, suspended).",
                &["outcome"],
            ),
            volume_marks: counter_vec(
                &registry,
                "tollgate_control_volume_days_marked_total",
                "Accounts' UTC days marked, by mark: capped (a gateway first held the account \
                 capped that day) or soft_limit (its volume first crossed softLimitGB).",
                &["mark"],
            ),
            top_accounts: gauge_vec(
                &registry,
                "tollgate_control_top_account_bytes_today",
                "Today's (UTC) bytes of the 20 (account, kind) pairs that sent the most, fleet-wide \
                 as gateways report them, by account_id, account_name and kind.",
                &["account_id", "account_name", "kind"],
            ),
            top_accounts_read_ms: AtomicI64::new(i64::MIN),
            registry,
        }
    }

    /// Counts one answered call. `route` is a matched template, never a raw path.
    pub fn observe(&self, route: &str, code: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, &code.to_string()])
            .inc();
        self.duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    pub fn refused(&self, code: &'static str) {
        self.refusals.with_label_values(&[code]).inc();
    }

    pub fn render(&self) -> Vec<u8> {
        encode(&self.registry)
    }
}

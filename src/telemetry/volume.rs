//! Account volume's metrics and events (docs/volume.md): what capped and rate-limited
//! accounts cost, and how the fleet's bank answers.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

use super::{counter, counter_vec, gauge};
use crate::model::Kind;

/// Where volume's events happen, as a `tracing` target.
const TARGET: &str = "tollgate::volume";

#[derive(Clone)]
pub struct VolumeMetrics {
    /// Records accepted and not forwarded because their account was capped, by kind.
    capped_records: IntCounterVec,
    capped_bytes: IntCounter,
    /// Requests refused with 503 + `Retry-After`, by reason.
    refused: IntCounterVec,
    /// Accounts this gateway holds capped today.
    pub capped_accounts: IntGauge,
    /// Accounts with a volume policy.
    pub policies: IntGauge,
    /// Calls to the bank, by operation and outcome.
    bank_calls: IntCounterVec,
    /// 1 while the bank answers, 0 while it does not.
    bank_up: IntGauge,
    /// Utilization records this gateway wrote (it won the interval's claim).
    pub utilization_records: IntCounter,
}

impl VolumeMetrics {
    pub(super) fn register(registry: &Registry) -> VolumeMetrics {
        let bank_up = gauge(
            registry,
            "tollgate_volume_bank_up",
            "1 while the volume bank (Redis, or this process) answers; 0 during an outage.",
        );
        bank_up.set(1);
        let metrics = VolumeMetrics {
            capped_records: counter_vec(
                registry,
                "tollgate_volume_capped_records_total",
                "Records accepted and not forwarded because their account reached its daily \
                 volume, by kind.",
                &["kind"],
            ),
            capped_bytes: counter(
                registry,
                "tollgate_volume_capped_bytes_total",
                "Bytes accepted and not forwarded because their account reached its daily \
                 volume.",
            ),
            refused: counter_vec(
                registry,
                "tollgate_volume_refused_total",
                "Requests refused with 503 and Retry-After, by reason (rate_limit, capped).",
                &["reason"],
            ),
            capped_accounts: gauge(
                registry,
                "tollgate_volume_capped_accounts",
                "Accounts this gateway holds capped until the UTC day turns.",
            ),
            policies: gauge(
                registry,
                "tollgate_volume_policies",
                "Accounts with a volume policy (volume, LogSize, utilization or rate limit).",
            ),
            bank_calls: counter_vec(
                registry,
                "tollgate_volume_bank_calls_total",
                "Calls to the volume bank, by operation (acquire, used, claim) and outcome \
                 (ok, error).",
                &["op", "outcome"],
            ),
            bank_up,
            utilization_records: counter(
                registry,
                "tollgate_volume_utilization_records_total",
                "logzio_account_utilization records this gateway wrote.",
            ),
        };
        // Every series exists from the start at 0, so rates and alerts work before the
        // first event.
        for kind in Kind::ALL {
            metrics.capped_records.with_label_values(&[kind.as_str()]);
        }
        for reason in ["rate_limit", "capped"] {
            metrics.refused.with_label_values(&[reason]);
        }
        for op in ["acquire", "used", "claim"] {
            for outcome in ["ok", "error"] {
                metrics.bank_calls.with_label_values(&[op, outcome]);
            }
        }
        metrics
    }

    pub fn capped(&self, kind: Kind, records: u64, bytes: u64) {
        self.capped_records
            .with_label_values(&[kind.as_str()])
            .inc_by(records);
        self.capped_bytes.inc_by(bytes);
    }

    /// `reason`: `rate_limit` or `capped`.
    pub fn refused(&self, reason: &'static str) {
        self.refused.with_label_values(&[reason]).inc();
    }

    /// The bank answered (`ok`) or not; an outage's start and end are logged once each.
    pub fn bank_call(&self, op: &'static str, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.bank_calls.with_label_values(&[op, outcome]).inc();
        let was_up = self.bank_up.get() == 1;
        if ok && !was_up {
            tracing::info!(target: TARGET, "volume: the bank answers again; counts catch up");
        }
        self.bank_up.set(i64::from(ok));
    }

    /// The bank failed: `error` carries no secret (the bank's errors never name a URL's
    /// password).
    pub fn bank_outage(&self, error: &dyn std::fmt::Display) {
        if self.bank_up.get() == 1 {
            tracing::warn!(target: TARGET, error = %error, "volume: the bank does not answer; counting locally until it does");
        }
        self.bank_up.set(0);
    }
}

//! The ingest routes' metrics: requests by route and code, records by kind, and the decode
//! budget's bytes and refusals. They are written on the request path, so each series is
//! resolved when it is built and a request touches atomics only (a status code outside
//! `CODES` would take the label lock).

use std::time::Duration;

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, Registry};

use super::{counter_vec, gauge, histogram_vec};
use crate::model::{Kind, RejectReason, Route};

/// Where the decode budget's events happen, as a `tracing` target.
const BUDGET: &str = "tollgate::ingest::budget";

/// Status codes the ingest routes answer; each gets a pre-resolved counter per route.
const CODES: [u16; 14] = [
    200, 204, 400, 401, 403, 404, 405, 408, 411, 413, 415, 429, 500, 503,
];

/// Per-route request metrics, resolved once.
#[derive(Clone)]
pub struct RouteMetrics {
    route: Route,
    requests: IntCounterVec,
    by_code: [IntCounter; CODES.len()],
    duration: Histogram,
}

impl RouteMetrics {
    /// Counts one answered request and its latency.
    pub fn observe(&self, code: u16, elapsed: Duration) {
        match CODES.iter().position(|&c| c == code) {
            Some(i) => self.by_code[i].inc(),
            None => self
                .requests
                .with_label_values(&[self.route.as_str(), &code.to_string()])
                .inc(),
        }
        self.duration.observe(elapsed.as_secs_f64());
    }
}

/// Per-kind ingest counters.
#[derive(Clone)]
pub struct KindMetrics {
    pub bytes: IntCounter,
    pub records: IntCounter,
    rejected: [IntCounter; RejectReason::ALL.len()],
    /// Records an account's drop filter dropped before the spool.
    pub dropped_by_filter: IntCounter,
}

impl KindMetrics {
    pub fn rejected(&self, reason: RejectReason, n: u64) {
        if n > 0 {
            self.rejected[reason as usize].inc_by(n);
        }
    }
}

/// The ingest routes' metrics: requests by route and code, records by kind.
#[derive(Clone)]
pub struct IngestMetrics {
    routes: Vec<RouteMetrics>,
    kinds: Vec<KindMetrics>,
}

impl IngestMetrics {
    pub(super) fn register(registry: &Registry) -> IngestMetrics {
        let requests = counter_vec(
            registry,
            "tollgate_requests_total",
            "Requests answered, by route and status code.",
            &["route", "code"],
        );
        let durations = histogram_vec(
            registry,
            "tollgate_request_duration_seconds",
            "Time from request head to response, by route.",
            &["route"],
            Ok(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ]),
        );
        let routes = Route::ALL
            .iter()
            .map(|&route| RouteMetrics {
                route,
                requests: requests.clone(),
                by_code: CODES
                    .map(|c| requests.with_label_values(&[route.as_str(), &c.to_string()])),
                duration: durations.with_label_values(&[route.as_str()]),
            })
            .collect();

        let bytes = counter_vec(
            registry,
            "tollgate_ingested_bytes_total",
            "Accepted payload bytes (after decompression), by kind.",
            &["kind"],
        );
        let records = counter_vec(
            registry,
            "tollgate_ingested_records_total",
            "Accepted records, by kind.",
            &["kind"],
        );
        let rejected = counter_vec(
            registry,
            "tollgate_rejected_records_total",
            "Records refused inside an otherwise accepted request, by kind and reason.",
            &["kind", "reason"],
        );
        let dropped = counter_vec(
            registry,
            "tollgate_dropped_records_total",
            "Records accepted and dropped before the spool, by kind and reason (drop_filter: \
             an account's drop filter).",
            &["kind", "reason"],
        );
        let kinds = Kind::ALL
            .iter()
            .map(|&k| KindMetrics {
                bytes: bytes.with_label_values(&[k.as_str()]),
                records: records.with_label_values(&[k.as_str()]),
                rejected: RejectReason::ALL
                    .map(|r| rejected.with_label_values(&[k.as_str(), r.as_str()])),
                dropped_by_filter: dropped.with_label_values(&[k.as_str(), "drop_filter"]),
            })
            .collect();
        IngestMetrics { routes, kinds }
    }

    pub fn route(&self, route: Route) -> &RouteMetrics {
        &self.routes[route as usize]
    }

    pub fn kind(&self, kind: Kind) -> &KindMetrics {
        &self.kinds[kind.index()]
    }
}

/// The decode budget's handles (`server.max_inflight_decoded_bytes`): the bytes taken from
/// it now, and the requests it refused, by reason.
#[derive(Clone)]
pub struct DecodeMetrics {
    /// `tollgate_inflight_decoded_bytes`.
    pub taken: IntGauge,
    busy: IntCounter,
    too_large: IntCounter,
}

impl DecodeMetrics {
    pub(super) fn register(registry: &Registry) -> DecodeMetrics {
        let refused = counter_vec(
            registry,
            "tollgate_decode_refused_total",
            "Requests refused by the decode budget, by reason: busy (the budget was taken \
             by other requests: 503), too_large (more than the whole budget: 413).",
            &["reason"],
        );
        DecodeMetrics {
            taken: gauge(
                registry,
                "tollgate_inflight_decoded_bytes",
                "Bytes that requests being decoded hold beyond their first 64 KiB each \
                 (bodies, decompressed bodies, decoded forms), against \
                 server.max_inflight_decoded_bytes.",
            ),
            busy: refused.with_label_values(&["busy"]),
            too_large: refused.with_label_values(&["too_large"]),
        }
    }

    /// A request could not take more of the budget: other requests hold it.
    pub fn refused_busy(&self, wanted: u64) {
        self.busy.inc();
        tracing::debug!(target: BUDGET, wanted, "decode budget taken: 503");
    }

    /// A request needs more than the whole budget: it could never be decoded.
    pub fn refused_too_large(&self, wanted: u64) {
        self.too_large.inc();
        tracing::debug!(target: BUDGET, wanted, "request needs more than the decode budget: 413");
    }
}

//! The front door's metrics and events: connections by listener, how they end, the
//! bodies drained after an early answer, and the body bytes in flight.

use std::fmt::Display;
use std::net::SocketAddr;

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry};

use super::{counter_vec, gauge, gauge_vec};

/// Where the events below happen, as a `tracing` target.
const SERVER: &str = "tollgate::server";

/// One listener's connection metrics.
#[derive(Clone)]
pub struct ConnMetrics {
    listener: &'static str,
    pub open: IntGauge,
    errors: IntCounterVec,
    /// Unread request bodies drained after an early answer.
    pub drains: DrainMetrics,
}

impl ConnMetrics {
    /// Counts a connection that ended badly; `reason` is one of a fixed set of literals.
    /// Resolved here, not in advance: a label that never happens stays out of `/metrics`.
    fn error(&self, reason: &'static str) {
        self.errors
            .with_label_values(&[self.listener, reason])
            .inc();
    }

    /// The TLS handshake failed.
    pub fn tls_failed(&self, peer: SocketAddr, error: &dyn Display) {
        self.error("tls");
        tracing::debug!(target: SERVER, %peer, error = %error, "TLS handshake failed");
    }

    /// The TLS handshake did not finish within the header read timeout.
    pub fn tls_timed_out(&self) {
        self.error("tls_timeout");
    }

    /// The connection ended with an error; `reason` is its label (`server::classify`).
    pub fn failed(&self, reason: &'static str, error: &dyn Display) {
        self.error(reason);
        tracing::debug!(target: SERVER, reason, error = %error, "connection ended with an error");
    }

    /// A request head did not arrive within the header read timeout.
    pub fn head_timed_out(&self) {
        self.error("timeout");
        tracing::debug!(
            target: SERVER,
            "request head not received within the header read timeout"
        );
    }
}

/// What becomes of request bodies a service left unread (`server::body::Linger`).
#[derive(Clone)]
pub struct DrainMetrics {
    complete: IntCounter,
    cut: IntCounter,
}

impl DrainMetrics {
    /// The rest of a body was read and discarded to its end: the connection stays open.
    pub fn complete(&self) {
        self.complete.inc();
    }

    /// The rest of a body was past the drain's bounds: the connection was closed.
    pub fn cut(&self) {
        self.cut.inc();
    }
}

/// The front door's metrics; the per-listener series are resolved when a listener's
/// handles are handed out.
pub(super) struct ServerTelemetry {
    connections_open: IntGaugeVec,
    connection_errors: IntCounterVec,
    connection_drains: IntCounterVec,
    inflight_body_bytes: IntGauge,
}

impl ServerTelemetry {
    pub(super) fn register(registry: &Registry) -> ServerTelemetry {
        ServerTelemetry {
            connections_open: gauge_vec(
                registry,
                "tollgate_connections_open",
                "Open client connections, by listener.",
                &["listener"],
            ),
            connection_errors: counter_vec(
                registry,
                "tollgate_connection_errors_total",
                "Connections ended by a protocol error or timeout, by listener and reason.",
                &["listener", "reason"],
            ),
            connection_drains: counter_vec(
                registry,
                "tollgate_connection_drains_total",
                "Request bodies left unread by an early answer (413, 401, 503) and read and \
                 discarded so the client can read the answer (lingering close), by listener \
                 and result: complete (the connection stays open), cut (over the drain's \
                 bounds: the connection was closed).",
                &["listener", "result"],
            ),
            inflight_body_bytes: gauge(
                registry,
                "tollgate_inflight_body_bytes",
                "Request body bytes being read now (declared Content-Length, or received so far \
                 without one), against server.max_inflight_body_bytes.",
            ),
        }
    }

    pub(super) fn connections(&self, listener: &'static str) -> ConnMetrics {
        ConnMetrics {
            listener,
            open: self.connections_open.with_label_values(&[listener]),
            errors: self.connection_errors.clone(),
            drains: DrainMetrics {
                complete: self
                    .connection_drains
                    .with_label_values(&[listener, "complete"]),
                cut: self.connection_drains.with_label_values(&[listener, "cut"]),
            },
        }
    }

    pub(super) fn inflight_body_bytes(&self) -> IntGauge {
        self.inflight_body_bytes.clone()
    }
}

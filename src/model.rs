//! Shared vocabulary: the names every module uses for the same things.
//! No logic and no I/O live here, so any module may import it.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What a shipping token may send, and what a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Logs,
    Metrics,
    Traces,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Logs, Kind::Metrics, Kind::Traces];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Logs => "logs",
            Kind::Metrics => "metrics",
            Kind::Traces => "traces",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Dense index for per-kind arrays (metric handles, batches).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an account holds: log management (main or sub-account), metrics, tracing or
/// security data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountType {
    Logs,
    Metrics,
    Tracing,
    Security,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Logs => "logs",
            AccountType::Metrics => "metrics",
            AccountType::Tracing => "tracing",
            AccountType::Security => "security",
        }
    }

    pub fn parse(s: &str) -> Option<AccountType> {
        match s {
            "logs" => Some(AccountType::Logs),
            "metrics" => Some(AccountType::Metrics),
            "tracing" => Some(AccountType::Tracing),
            "security" => Some(AccountType::Security),
            _ => None,
        }
    }

    /// The kind of shipping token an account of this type holds: log and security accounts
    /// receive logs, metrics accounts metrics, tracing accounts traces.
    pub fn shipping_kind(self) -> Kind {
        match self {
            AccountType::Logs | AccountType::Security => Kind::Logs,
            AccountType::Metrics => Kind::Metrics,
            AccountType::Tracing => Kind::Traces,
        }
    }

    /// Metrics and tracing accounts have no API tokens of their own: their main account's
    /// tokens manage them. Main, sub and security accounts have their own.
    pub fn has_own_api_tokens(self) -> bool {
        matches!(self, AccountType::Logs | AccountType::Security)
    }
}

/// An account's numeric id. Never a metric label: there are too many of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub u64);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A token's public id (`t-1`), safe to log. The token itself is a secret and has no type
/// here on purpose: it lives only as a `&str` borrowed from the request until it is hashed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(pub Arc<str>);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a token was refused; the `reason` label of `tollgate_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    Unknown,
    Disabled,
    WrongKind,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 5] = [
        AuthFailure::Missing,
        AuthFailure::Malformed,
        AuthFailure::Unknown,
        AuthFailure::Disabled,
        AuthFailure::WrongKind,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Unknown => "unknown",
            AuthFailure::Disabled => "disabled",
            AuthFailure::WrongKind => "wrong_kind",
        }
    }
}

/// Why one record (a log line, an OTLP span, log record or data point) was rejected; the
/// `reason` label of `tollgate_rejected_records_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    Malformed,
    Oversized,
    Empty,
    /// An OTLP record that decodes but breaks a validation rule (e.g. a zero trace id).
    Invalid,
}

impl RejectReason {
    pub const ALL: [RejectReason; 4] = [
        RejectReason::Malformed,
        RejectReason::Oversized,
        RejectReason::Empty,
        RejectReason::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::Oversized => "oversized",
            RejectReason::Empty => "empty",
            RejectReason::Invalid => "invalid",
        }
    }
}

/// The ingest routes; the `route` label of the request metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /?token=…` — the Logz.io listener bulk protocol.
    Logs,
    /// `POST /v1/logs` — OTLP/HTTP logs.
    OtlpLogs,
    /// `POST /v1/metrics` — OTLP/HTTP metrics.
    OtlpMetrics,
    /// `POST /v1/traces` — OTLP/HTTP traces.
    OtlpTraces,
    /// `POST /api/v1/write` — Prometheus remote_write 1.0.
    RemoteWrite,
    /// Anything that matched no route (404) — counted so scanners show up.
    Unmatched,
}

impl Route {
    pub const ALL: [Route; 6] = [
        Route::Logs,
        Route::OtlpLogs,
        Route::OtlpMetrics,
        Route::OtlpTraces,
        Route::RemoteWrite,
        Route::Unmatched,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Route::Logs => "logs",
            Route::OtlpLogs => "otlp_logs",
            Route::OtlpMetrics => "otlp_metrics",
            Route::OtlpTraces => "otlp_traces",
            Route::RemoteWrite => "remote_write",
            Route::Unmatched => "unmatched",
        }
    }
}

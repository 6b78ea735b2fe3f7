//! Where a refused request ends up. Status codes are decided in `IngestError::response`
//! and nowhere else, so DESIGN §1's table can be checked against this one match.
//! Bodies are JSON `{"error": "..."}`, except on the OTLP routes, whose errors are a
//! `google.rpc.Status` in the request's encoding; no body ever contains a token.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use prost::Message;
use serde::Serialize;

use super::request::OtlpEncoding;
use crate::forward::SubmitError;
use crate::model::Route;
use crate::proto::Status;
use crate::tokens::AuthError;

pub type Body = Full<Bytes>;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error("no such route")]
    NotFound,
    #[error("method not allowed: use POST")]
    MethodNotAllowed,
    #[error("{what} is over {limit} bytes")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("unsupported Content-Encoding; use gzip, deflate or none")]
    UnsupportedEncoding,
    #[error("unsupported {what}; use {expected}")]
    Unsupported {
        what: &'static str,
        expected: &'static str,
    },
    /// A body that does not decode as the route's protocol message, or breaks a rule the
    /// whole request depends on (remote_write has no partial success).
    #[error("{0}")]
    BadPayload(String),
    #[error("body is not valid {encoding}")]
    BadEncoding { encoding: &'static str },
    #[error("request body not received within {0:?}")]
    BodyTimeout(Duration),
    #[error("request body could not be read")]
    BodyRead,
    #[error("{0}")]
    BadParameter(&'static str),
    #[error("too many requests in flight")]
    Shed { retry_after: Duration },
    /// Over `server.max_inflight_body_bytes`, before the body is read or mid-body.
    #[error("too many request body bytes in flight")]
    OverBudget { retry_after: Duration },
    /// Over `server.max_inflight_decoded_bytes` while the body is decompressed or decoded.
    #[error("too many request bytes being decoded")]
    DecodeBusy { retry_after: Duration },
    #[error("some lines were rejected")]
    Lines(LineCounts),
    /// Past the account's rate limit (docs/volume.md); `otlp_429`: the operator chose 429
    /// for the OTLP routes, where the OTLP spec says 429.
    #[error("the account is over its rate limit; retry later")]
    RateLimited {
        retry_after: Duration,
        otlp_429: bool,
    },
    /// The account reached its daily volume and the operator chose to refuse past it.
    #[error("the account reached its daily volume; retry after the UTC day turns")]
    Capped { retry_after: Duration },
}

/// Per-line outcome counts: the body of the 400 answer, with the Logz.io field names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineCounts {
    pub malformed_lines: u64,
    pub successful_lines: u64,
    pub oversized_lines: u64,
    pub empty_log_lines: u64,
}

impl LineCounts {
    pub fn all_accepted(&self) -> bool {
        self.malformed_lines == 0 && self.oversized_lines == 0 && self.empty_log_lines == 0
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("counts serialize")
    }
}

/// How a route words its refusals (DESIGN §1): the Logz.io listener answers every token
/// failure with 401 and a message naming it; OTLP answers a `google.rpc.Status` in the
/// request's encoding; OTLP and remote_write answer 403 for a disabled token or one of
/// the wrong kind. Chosen from the route and the request head before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Logzio,
    /// OTLP/HTTP; an unsupported `Content-Type` is answered in JSON.
    Otlp(OtlpEncoding),
    RemoteWrite,
    /// No route matched.
    Plain,
}

impl Dialect {
    pub fn of(route: Route, headers: &HeaderMap) -> Dialect {
        match route {
            Route::Logs => Dialect::Logzio,
            Route::OtlpLogs | Route::OtlpMetrics | Route::OtlpTraces => {
                Dialect::Otlp(OtlpEncoding::from_headers(headers).unwrap_or(OtlpEncoding::Json))
            }
            Route::RemoteWrite => Dialect::RemoteWrite,
            Route::Unmatched => Dialect::Plain,
        }
    }
}

impl IngestError {
    /// The one mapping from error to HTTP answer, with the route's own rules.
    pub fn response(&self, dialect: Dialect) -> Response<Body> {
        let status = self.status(dialect);
        let (content_type, body) = match (self, dialect) {
            (IngestError::Lines(counts), _) => (JSON, counts.to_json()),
            (IngestError::Auth(e), Dialect::Logzio) => (JSON, error_json(&logs_auth_message(*e))),
            (other, Dialect::Otlp(encoding)) => (
                encoding.content_type(),
                rpc_status(encoding, status, &other.to_string()),
            ),
            (other, _) => (JSON, error_json(&other.to_string())),
        };
        let mut response = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("static status and header are valid");
        if let Some(retry_after) = self.retry_after() {
            let secs = retry_after.as_secs().max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }

    fn status(&self, dialect: Dialect) -> StatusCode {
        match self {
            IngestError::Auth(AuthError::NotReady) => StatusCode::SERVICE_UNAVAILABLE,
            // The Logz.io listener answers every token failure with 401, and its senders
            // rely on it. OTLP and remote_write tell "who are you" (401) from "not
            // allowed" (403): a disabled token or one of another kind (DESIGN §1).
            IngestError::Auth(AuthError::Disabled | AuthError::WrongKind { .. }) => match dialect {
                Dialect::Otlp(_) | Dialect::RemoteWrite => StatusCode::FORBIDDEN,
                Dialect::Logzio | Dialect::Plain => StatusCode::UNAUTHORIZED,
            },
            IngestError::Auth(AuthError::Missing | AuthError::Malformed | AuthError::Unknown) => {
                StatusCode::UNAUTHORIZED
            }
            IngestError::RateLimited { otlp_429: true, .. }
                if matches!(dialect, Dialect::Otlp(_)) =>
            {
                StatusCode::TOO_MANY_REQUESTS
            }
            IngestError::Submit(_)
            | IngestError::Shed { .. }
            | IngestError::OverBudget { .. }
            | IngestError::DecodeBusy { .. }
            | IngestError::RateLimited { .. }
            | IngestError::Capped { .. } => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::NotFound => StatusCode::NOT_FOUND,
            IngestError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            IngestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::UnsupportedEncoding | IngestError::Unsupported { .. } => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            IngestError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            IngestError::BadEncoding { .. }
            | IngestError::BodyRead
            | IngestError::BadParameter(_)
            | IngestError::BadPayload(_)
            | IngestError::Lines(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            IngestError::Submit(e) => Some(e.retry_after()),
            IngestError::Shed { retry_after }
            | IngestError::OverBudget { retry_after }
            | IngestError::DecodeBusy { retry_after }
            | IngestError::RateLimited { retry_after, .. }
            | IngestError::Capped { retry_after } => Some(*retry_after),
            IngestError::Auth(AuthError::NotReady) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

const JSON: &str = "application/json";

/// A `google.rpc.Status` for an OTLP error, in the request's encoding. The code is the
/// gRPC code closest to the HTTP status (the OTLP/HTTP spec leaves it to the server).
fn rpc_status(encoding: OtlpEncoding, status: StatusCode, message: &str) -> Vec<u8> {
    let code = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => 3, // INVALID_ARGUMENT
        StatusCode::REQUEST_TIMEOUT => 4,                                  // DEADLINE_EXCEEDED
        StatusCode::NOT_FOUND => 5,                                        // NOT_FOUND
        StatusCode::FORBIDDEN => 7,                                        // PERMISSION_DENIED
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => 8, // RESOURCE_EXHAUSTED
        StatusCode::METHOD_NOT_ALLOWED => 12,                              // UNIMPLEMENTED
        StatusCode::SERVICE_UNAVAILABLE => 14,                             // UNAVAILABLE
        StatusCode::UNAUTHORIZED => 16,                                    // UNAUTHENTICATED
        _ => 2,                                                            // UNKNOWN
    };
    let status = Status {
        code,
        message: message.to_string(),
    };
    match encoding {
        OtlpEncoding::Protobuf => status.encode_to_vec(),
        OtlpEncoding::Json => serde_json::to_vec(&serde_json::json!({
            "code": status.code,
            "message": status.message,
        }))
        .expect("a JSON value serializes"),
    }
}

/// The Logz.io listener's wording: the message names the reason, the token is never echoed.
fn logs_auth_message(e: AuthError) -> String {
    match e {
        AuthError::Missing => "Logging token is missing".to_string(),
        AuthError::Malformed | AuthError::Unknown => "Logging token is not valid".to_string(),
        AuthError::Disabled => "Logging token is disabled".to_string(),
        AuthError::WrongKind { .. } => "Logging token is not a logs token".to_string(),
        AuthError::NotReady => e.to_string(),
    }
}

fn error_json(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": message })).expect("a JSON value serializes")
}

//! `ApiError`: every way a management or feed call is refused, mapped to a status and the
//! DESIGN §4 JSON body (`errorCode`, `message`, `requestId`) in one place. An `errorCode`
//! names the rule or check that refused the call, so clients can branch on it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::store::StoreError;

/// A refused call. The message is shown to the caller and never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body or a parameter is not what the call takes.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// 401: no credential, or one that is not known.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: a known credential that may not do this (doesn't reach the account, trial over).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// 404: no such object — also the answer for another account's object.
    #[error("{0}")]
    NotFound(String),
    /// 401 on the feed: the gateway's feed secret is missing or wrong (feed protocol).
    #[error("{0}")]
    FeedUnauthorized(&'static str),
    /// 404 on the feed's miss lookup: no shipping token has the digest (feed protocol).
    #[error("{0}")]
    UnknownToken(&'static str),
    /// 409: a product rule refuses the change; `code` names the rule.
    #[error("{message}")]
    Rule { code: &'static str, message: String },
    /// 410: the feed no longer has the changes since this version; a setup link expired.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// 429: too many failed logins for this email or from this client.
    #[error("too many failed logins: try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    /// 413 / 415 / 405: the request's framing, not its content.
    #[error("{message}")]
    Framing {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// 503: the store failed, or holds a row it cannot read; the caller may retry.
    /// Logged with its cause, not shown.
    #[error("the store is unavailable")]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            code: "request/INVALID",
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn rule(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Rule {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::NotFound(format!("{what} not found"))
    }

    /// The status this refusal answers with.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// The `errorCode`: which rule or check refused.
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Invalid { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "auth/UNAUTHORIZED"),
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "request/NOT_FOUND"),
            ApiError::FeedUnauthorized(_) => (StatusCode::UNAUTHORIZED, "feed/UNAUTHORIZED"),
            ApiError::UnknownToken(_) => (StatusCode::NOT_FOUND, "feed/UNKNOWN_TOKEN"),
            ApiError::Rule { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::Gone { code, .. } => (StatusCode::GONE, code),
            ApiError::TooManyAttempts { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "auth/TOO_MANY_ATTEMPTS")
            }
            ApiError::Framing { status, code, .. } => (*status, code),
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store/UNAVAILABLE"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Store(e) = &self {
            tracing::error!(error = %e, "control plane store failed");
        }
        let body = serde_json::json!({
            "errorCode": code,
            "message": self.to_string(),
            "requestId": request_id(),
        });
        let mut response = (status, axum::Json(body)).into_response();
        response.extensions_mut().insert(ErrorCode(code));
        if let ApiError::TooManyAttempts { retry_after_secs } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// Rides on an error response so the metrics layer can count refusals by `errorCode`.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// A random id a caller can quote when reporting an error.
fn request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

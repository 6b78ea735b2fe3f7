//! The one place where a refused call becomes an HTTP answer: a status and the DESIGN §4
//! JSON body (`errorCode`, `message`, `requestId`). The page answers refusals with the
//! same statuses (`status`), so the two never disagree.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::control::refusal::Refusal;
use crate::control::store::StoreError;

/// A management or feed call answered with an error: a use case's refusal, or a request
/// whose framing (size, media type, method) the API itself refuses.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// 413 / 415 / 405: the request's framing, not its content.
    #[error("{message}")]
    Framing {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::Refused(e.into())
    }
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> ApiError {
        Refusal::invalid(message).into()
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Refused(refusal) => (status(refusal), refusal.code()),
            ApiError::Framing { status, code, .. } => (*status, code),
        }
    }
}

/// The status a refusal answers with, on the API and on the page.
pub fn status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::Invalid { .. } => StatusCode::BAD_REQUEST,
        Refusal::Unauthenticated(_) | Refusal::FeedUnauthenticated(_) => StatusCode::UNAUTHORIZED,
        Refusal::Forbidden { .. } => StatusCode::FORBIDDEN,
        Refusal::NotFound(_) | Refusal::UnknownToken(_) => StatusCode::NOT_FOUND,
        Refusal::Rule { .. } => StatusCode::CONFLICT,
        Refusal::Gone { .. } => StatusCode::GONE,
        Refusal::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Logs a store failure's cause once, where it is answered; the caller sees only that
/// the store is unavailable.
pub fn log_cause(refusal: &Refusal) {
    if let Refusal::Unavailable(e) = refusal {
        tracing::error!(error = %e, "control plane store failed");
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Refused(refusal) = &self {
            log_cause(refusal);
        }
        let body = serde_json::json!({
            "errorCode": code,
            "message": self.to_string(),
            "requestId": request_id(),
        });
        let mut response = (status, axum::Json(body)).into_response();
        response.extensions_mut().insert(ErrorCode(code));
        if let ApiError::Refused(Refusal::TooManyAttempts { retry_after_secs }) = &self {
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

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        ApiError::Refused(self).into_response()
    }
}

/// Rides on an error response so the metrics layer can count refusals by `errorCode`.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// A random id a caller can quote when reporting an error.
fn request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

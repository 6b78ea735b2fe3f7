//! Where a refused request ends up. Status codes are decided in `IngestError::response`
//! and nowhere else, so DESIGN §1's table can be checked against this one match.
//! Bodies are JSON `{"error": "..."}` and never contain a token.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use super::logs::LineCounts;
use crate::forward::SubmitError;
use crate::model::Route;
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
    #[error("some lines were rejected")]
    Lines(LineCounts),
}

impl IngestError {
    /// The one mapping from error to HTTP answer, with the route's own rules.
    pub fn response(&self, route: Route) -> Response<Body> {
        let status = self.status(route);
        let body = match self {
            IngestError::Lines(counts) => counts.to_json(),
            IngestError::Auth(e) if route == Route::Logs => error_json(&logs_auth_message(*e)),
            other => error_json(&other.to_string()),
        };
        let mut response = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
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

    fn status(&self, route: Route) -> StatusCode {
        match self {
            IngestError::Auth(AuthError::NotReady) => StatusCode::SERVICE_UNAVAILABLE,
            // The Logz.io listener answers every token failure with 401, and its senders
            // rely on it (DESIGN §1). OTLP routes will map Disabled/WrongKind to 403.
            IngestError::Auth(_) => match route {
                Route::Logs | Route::Unmatched => StatusCode::UNAUTHORIZED,
            },
            IngestError::Submit(_) | IngestError::Shed { .. } => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::NotFound => StatusCode::NOT_FOUND,
            IngestError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            IngestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            IngestError::BadEncoding { .. }
            | IngestError::BodyRead
            | IngestError::BadParameter(_)
            | IngestError::Lines(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            IngestError::Submit(e) => Some(e.retry_after()),
            IngestError::Shed { retry_after } => Some(*retry_after),
            IngestError::Auth(AuthError::NotReady) => Some(Duration::from_secs(1)),
            _ => None,
        }
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

//! The live-tail page a shared link opens (`/tail#token=…`): static HTML, script and style,
//! embedded in the binary. It holds no secret; the token stays in the URL's fragment, which
//! the browser keeps to itself, and the script presents it to `GET /v1/tail`.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{Either, Full};

use super::TailBody;

/// The page's path; its script and style live under it.
pub const PATH: &str = "/tail";

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/tail.js");
const STYLE: &str = include_str!("page/tail.css");
const ICON: &str = include_str!("page/favicon.svg");

/// Only this origin's script and style, no frames, no forms, no referrer: the page shows
/// other people's logs.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                      connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
                      frame-ancestors 'none'";

/// Whether `path` is the page or one of its files.
pub fn serves(path: &str) -> bool {
    path == PATH || path.starts_with("/tail/")
}

/// The file at `path`, or `None` (404).
pub fn file(path: &str) -> Option<Response<TailBody>> {
    let (body, content_type) = match path.strip_prefix(PATH)? {
        "" | "/" => (INDEX, "text/html; charset=utf-8"),
        "/tail.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/tail.css" => (STYLE, "text/css; charset=utf-8"),
        "/favicon.svg" => (ICON, "image/svg+xml"),
        _ => return None,
    };
    let mut response = Response::new(Either::Left(Full::new(Bytes::from_static(body.as_bytes()))));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    Some(response)
}

//! The page's one stylesheet and one script, compiled into the binary and served under
//! `/ui/assets/` with a long cache lifetime: their URLs carry a digest of the content,
//! so a new build is fetched fresh.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{BASE, PageState};
use crate::control::refusal::Refusal;

const CSS: &str = include_str!("assets/page.css");
const JS: &str = include_str!("assets/page.js");
/// The brand's diamond: the tab's icon (without one, browsers ask for `/favicon.ico`).
const ICON: &str = include_str!("assets/favicon.svg");

pub fn routes() -> Router<PageState> {
    Router::new().route("/assets/{file}", get(serve))
}

static CSS_URL: LazyLock<String> = LazyLock::new(|| versioned("page.css", CSS));
static JS_URL: LazyLock<String> = LazyLock::new(|| versioned("page.js", JS));
static ICON_URL: LazyLock<String> = LazyLock::new(|| versioned("favicon.svg", ICON));

fn versioned(file: &str, content: &str) -> String {
    format!(
        "{BASE}/assets/{file}?v={:08x}",
        crc32c::crc32c(content.as_bytes())
    )
}

pub fn css_url() -> &'static str {
    &CSS_URL
}

pub fn js_url() -> &'static str {
    &JS_URL
}

pub fn icon_url() -> &'static str {
    &ICON_URL
}

async fn serve(Path(file): Path<String>) -> Response {
    let (content_type, body) = match file.as_str() {
        "page.css" => ("text/css; charset=utf-8", CSS),
        "page.js" => ("text/javascript; charset=utf-8", JS),
        "favicon.svg" => ("image/svg+xml", ICON),
        _ => return Refusal::NotFound(format!("no asset {file}")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        body,
    )
        .into_response()
}

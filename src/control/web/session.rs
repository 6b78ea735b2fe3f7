//! Who is using the page, and proof that a form came from it.
//!
//! `layer` runs before every `/ui` handler: it resolves the `tollgate_session` cookie into
//! a `Session` (a live session of an active user), puts the CSRF token every form must
//! carry into a `Csrf` extension, and refuses a state-changing request whose token is
//! missing or wrong with 403 before any handler runs — so no handler can forget the
//! check. Logged in, the token is derived from the session's secret (it dies with the
//! session); before login (the login and setup forms) it is a random value kept in a
//! `tollgate_csrf` cookie and compared with the form's (double submit). Both cookies are
//! `HttpOnly`, `SameSite=Strict`, scoped to `/ui`, and `Secure` when the page is served
//! over https (`public_url`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{
    ConnectInfo, FromRef, FromRequestParts, OptionalFromRequestParts, Request, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use ipnet::IpNet;

use super::flash::{self, Flash};
use super::{PageSettings, PageState};
use crate::control::api::error::ApiError;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::accounts::Account;
use crate::control::store::users::User;
use crate::control::usecases::callers::{self, Caller};
use crate::control::usecases::sessions;
use crate::tokens::wire::Digest;

pub const SESSION_COOKIE: &str = "tollgate_session";
pub const CSRF_COOKIE: &str = "tollgate_csrf";
/// The form field, or the header for scripts, that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Page forms are small; a larger body is refused before it is buffered for the check.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A logged-in user: the request's extension, and an extractor for handlers that need
/// one (without it a GET is sent to the login page and anything else is a 401).
#[derive(Clone)]
pub struct Session {
    pub user: User,
    /// The user's own account.
    pub home: Account,
    secret: String,
}

impl Session {
    /// The caller acting on `account_id`: the user's account, or for an admin what its
    /// account's API token reaches.
    pub async fn caller(&self, cp: &ControlPlane, account_id: i64) -> Result<Caller, Refusal> {
        callers::user_caller(cp, &self.user, &self.home, account_id).await
    }

    /// The cookie's secret, to log out with.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

/// The CSRF token of this request's page: put it in every form as the `csrf` field, or
/// send it as `X-CSRF-Token`.
#[derive(Clone)]
pub struct Csrf(pub String);

/// Where the request came from, for rate-limiting logins.
#[derive(Clone, Copy)]
pub struct ClientIp(pub IpAddr);

pub async fn layer(State(page): State<PageState>, mut req: Request, next: Next) -> Response {
    let cp: Arc<ControlPlane> = FromRef::from_ref(&page);
    let settings: Arc<PageSettings> = FromRef::from_ref(&page);
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let client = client_address(peer, req.headers(), &settings.trusted_proxies);
    req.extensions_mut().insert(ClientIp(client));
    let session = match cookie(req.headers(), SESSION_COOKIE) {
        Some(secret) => match sessions::session(&cp, secret).await {
            Ok(found) => found.map(|(user, home)| Session {
                user,
                home,
                secret: secret.to_owned(),
            }),
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    // A session cookie that no longer names a session: signed out (idle, aged, logged out
    // elsewhere, suspended) while a page was open.
    let stale_session = session.is_none() && cookie(req.headers(), SESSION_COOKIE).is_some();
    let pre_session = cookie(req.headers(), CSRF_COOKIE)
        .filter(|v| is_secret(v))
        .map(str::to_owned);
    let (expected, new_cookie) = match (&session, pre_session) {
        (Some(s), _) => (session_csrf(&s.secret), None),
        (None, Some(token)) => (token, None),
        (None, None) => {
            let token = callers::new_secret();
            (token.clone(), Some(token))
        }
    };
    // What the POST that led here did, if this browser's session (or pre-session) signed it.
    let had_flash = cookie(req.headers(), flash::COOKIE).is_some();
    let flash = cookie(req.headers(), flash::COOKIE).and_then(|v| Flash::open(v, &expected));
    if let Some(flash) = flash {
        req.extensions_mut().insert(flash);
    }
    let is_get = req.method() == Method::GET;
    if changes_state(req.method()) {
        let (parts, body) = req.into_parts();
        let bytes = match to_bytes(body, MAX_FORM_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                return ApiError::Framing {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: "request/TOO_LARGE",
                    message: format!("page forms are at most {MAX_FORM_BYTES} bytes"),
                }
                .into_response();
            }
        };
        let presented = presented_csrf(&parts.headers, &bytes);
        if !presented.is_some_and(|p| Digest::of(&p) == Digest::of(&expected)) {
            let refusal = Refusal::forbidden(
                "auth/CSRF",
                "this form has expired or did not come from this page: reload it and try again",
            );
            if !wants_html(&parts.headers) {
                return refusal.into_response();
            }
            let mut response = if stale_session {
                // A form left open past its session: sign in again, and back to where it was.
                let mut response = flash::signed_out(parts.uri.path());
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, logout_cookie(&settings));
                response
            } else {
                (StatusCode::FORBIDDEN, super::layout::form_expired(&refusal)).into_response()
            };
            finish(&mut response, &settings, &expected, new_cookie, false);
            return response;
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(Csrf(expected.clone()));
    if let Some(s) = session {
        req.extensions_mut().insert(s);
    }
    let mut response = next.run(req).await;
    let shown = had_flash && is_get && is_page(&response);
    finish(&mut response, &settings, &expected, new_cookie, shown);
    response
}

/// The cookies an answer sets on its way out: the flash a handler left (sealed with this
/// request's key, which the next request of the same session or pre-session holds too),
/// or the end of one the page has shown (`shown`: a reload shows the page without it);
/// and a new pre-session CSRF cookie.
fn finish(
    response: &mut Response,
    settings: &PageSettings,
    key: &str,
    new_csrf: Option<String>,
    shown: bool,
) {
    if let Some(flash) = response.extensions_mut().remove::<Flash>() {
        let sealed = flash.seal(key);
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(settings, flash::COOKIE, &sealed, Some(flash::MAX_AGE_SECS)),
        );
    } else if shown {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(settings, flash::COOKIE, "", Some(0)),
        );
    }
    if let Some(token) = new_csrf {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(settings, CSRF_COOKIE, &token, None),
        );
    }
}

/// The client a request comes from: the connection's peer, or, when the peer is a trusted
/// proxy, the last address in `X-Forwarded-For` that is not (each proxy appends the
/// address it was connected from, so the entries left of it are the client's to write).
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// An HTML page (not an asset, not a redirect): what shows a flash.
fn is_page(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// A browser's form post (it accepts HTML); scripts get the JSON refusal.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// The `Set-Cookie` value that starts a session.
pub fn login_cookie(settings: &PageSettings, session_secret: &str) -> HeaderValue {
    set_cookie(settings, SESSION_COOKIE, session_secret, None)
}

/// The `Set-Cookie` value that ends it in the browser.
pub fn logout_cookie(settings: &PageSettings) -> HeaderValue {
    set_cookie(settings, SESSION_COOKIE, "", Some(0))
}

fn set_cookie(
    settings: &PageSettings,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict");
    if let Some(secs) = max_age {
        cookie.push_str(&format!("; Max-Age={secs}"));
    }
    if settings.secure_cookies {
        cookie.push_str("; Secure");
    }
    HeaderValue::try_from(cookie).expect("cookie values are [A-Za-z0-9_.-]")
}

/// A session's CSRF token: derived from its secret, so it needs no storage, can't be
/// guessed without the cookie, and dies with the session.
fn session_csrf(session_secret: &str) -> String {
    Digest::of(&format!("csrf:{session_secret}")).to_hex()
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The token in the `X-CSRF-Token` header, or in an urlencoded form's `csrf` field.
fn presented_csrf(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if let Some(v) = headers.get(CSRF_HEADER) {
        return v.to_str().ok().map(str::to_owned);
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return None;
    }
    form_urlencoded::parse(body)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned())
}

/// The value of cookie `name`, from any `Cookie` header.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Secrets this module hands out are 32 `[A-Za-z0-9]`; anything else is not one of them.
fn is_secret(value: &str) -> bool {
    value.len() == 32 && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl FromRequestParts<PageState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &PageState) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Session>() {
            Some(s) => Ok(s.clone()),
            None if parts.method == Method::GET => Err(Redirect::to("/ui/login").into_response()),
            None => Err(Refusal::Unauthenticated("log in to the page first").into_response()),
        }
    }
}

impl OptionalFromRequestParts<PageState> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &PageState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Session>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; tollgate_csrf=x"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("tollgate_session=s"),
        );
        assert_eq!(cookie(&headers, CSRF_COOKIE), Some("x"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("s"));
        assert_eq!(cookie(&headers, "b"), None);
    }

    #[test]
    fn the_csrf_token_comes_from_the_header_or_the_form() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(
            presented_csrf(&headers, b"name=a&csrf=t%2B1").as_deref(),
            Some("t+1")
        );
        assert_eq!(presented_csrf(&headers, b"name=a"), None);
        headers.insert(CSRF_HEADER, HeaderValue::from_static("h"));
        assert_eq!(presented_csrf(&headers, b"csrf=t").as_deref(), Some("h"));
    }
}

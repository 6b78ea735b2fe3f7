//! Signing in (email and password → the session cookie), setting a password through a
//! one-time setup link, and signing out — through `usecases::sessions`. A refused sign-in
//! says the same for an unknown email and a wrong password (the use case's answer).

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, csrf_field};
use super::session::{self, ClientIp, Session};
use super::{BASE, Fields, Flash, PageRefusal, PageSettings, PageState, Visit, csrf_of, see_other};
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules;
use crate::control::usecases::sessions as usecase;

pub fn routes() -> Router<PageState> {
    Router::new()
        .route("/login", get(page).post(submit))
        .route("/logout", post(logout))
        .route("/setup/{secret}", get(setup_page).post(setup_submit))
}

#[derive(Debug, Default, Deserialize)]
struct LoginQuery {
    /// Set after a password was set through a setup link.
    #[serde(default)]
    ready: Option<String>,
    /// The tab to go back to once signed in (a form was posted after the session ended).
    #[serde(default)]
    next: Option<String>,
}

/// `next` if it is one of the page's tabs: never another site, never anything else.
fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| super::tab_of(n).as_deref() == Some(*n))
}

/// What the sign-in page says above its form.
enum Said<'a> {
    Nothing,
    /// A password was just set.
    Ready,
    /// Why the person is here (signed out while a form was open).
    Told(&'a str),
    Refused(&'a PageRefusal),
}

fn login_form(csrf: &str, email: &str, said: Said, next: Option<&str>) -> Markup {
    layout::card_page(
        "Sign in",
        html! {
            h1 { "Sign in" }
            p.muted { "Manage your account's tokens." }
            @match said {
                Said::Nothing => {}
                Said::Ready => {
                    div #flash .alert.ok role="status" { p { "Your password is set. Sign in with it." } }
                }
                Said::Told(message) => {
                    div #flash .alert.info role="status" { p { (message) } }
                }
                Said::Refused(r) => { (layout::refusal(r)) }
            }
            form.stacked method="post" action={ (BASE) "/login" } {
                (csrf_field(csrf))
                @if let Some(next) = next { input type="hidden" name="next" value=(next); }
                div.field {
                    label for="email" { "Email" }
                    input #email type="email" name="email" value=(email) required autocomplete="username" autofocus;
                }
                div.field {
                    label for="password" { "Password" }
                    input #password type="password" name="password" required autocomplete="current-password";
                }
                div.buttons { button.btn.primary.wide type="submit" { "Sign in" } }
            }
        },
    )
}

async fn page(session: Option<Session>, Query(q): Query<LoginQuery>, req: Request) -> Response {
    let next = safe_next(q.next.as_deref());
    if session.is_some() {
        return see_other(next.unwrap_or(BASE));
    }
    let (parts, _) = req.into_parts();
    let flash = parts.extensions.get::<Flash>();
    let said = match (flash, q.ready.is_some()) {
        (Some(flash), _) => Said::Told(&flash.message),
        (None, true) => Said::Ready,
        (None, false) => Said::Nothing,
    };
    login_form(&csrf_of(&parts), "", said, next).into_response()
}

async fn submit(
    State(cp): State<Arc<ControlPlane>>,
    State(settings): State<Arc<PageSettings>>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let csrf = csrf_of(&parts);
    let client = parts
        .extensions
        .get::<ClientIp>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ClientIp(ip)| *ip);
    let fields = match Fields::from_request(Request::from_parts(parts, body), &()).await {
        Ok(fields) => fields,
        Err(rejection) => return rejection,
    };
    let email = fields.get("email").trim();
    let next = safe_next(fields.opt("next"));
    match usecase::login(&cp, email, fields.get("password"), client).await {
        Ok(logged_in) => {
            let cookie = session::login_cookie(&settings, &logged_in.session_secret);
            let mut response = see_other(next.unwrap_or(BASE));
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Err(e) => {
            let refusal = PageRefusal::from(e);
            let mut response = (
                refusal.status,
                login_form(&csrf, email, Said::Refused(&refusal), next),
            )
                .into_response();
            if let Some(secs) = refusal.retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
    }
}

async fn logout(State(cp): State<Arc<ControlPlane>>, visit: Visit) -> Response {
    // Signed out either way: the cookie goes even if the store could not be reached.
    if let Err(e) = usecase::logout(&cp, visit.session.secret()).await {
        tracing::warn!(error = %e, "logout: the session could not be ended in the store");
    }
    let mut response = see_other(&format!("{BASE}/login"));
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::logout_cookie(&visit.settings));
    response
}

fn setup_form(csrf: &str, secret: &str, email: &str, refusal: Option<&PageRefusal>) -> Markup {
    layout::card_page(
        "Set a password",
        html! {
            h1 { "Set a password" }
            p { "Set a password for " strong { (email) } "." }
            @if let Some(r) = refusal { (layout::refusal(r)) }
            form.stacked method="post" action={ (BASE) "/setup/" (secret) } {
                (csrf_field(csrf))
                input type="email" name="username" value=(email) autocomplete="username" hidden;
                div.field {
                    label for="password" { "Password" }
                    input #password type="password" name="password" required autocomplete="new-password" autofocus
                        minlength=(rules::PASSWORD_CHARS.start()) maxlength=(rules::PASSWORD_CHARS.end())
                        aria-describedby="password-rule";
                    p.hint #password-rule {
                        (rules::PASSWORD_CHARS.start()) " to " (rules::PASSWORD_CHARS.end())
                        " characters; a few words you remember are a good password."
                    }
                }
                div.field {
                    label for="confirm" { "Confirm password" }
                    input #confirm type="password" name="confirm" required autocomplete="new-password";
                }
                div.buttons { button.btn.primary.wide type="submit" { "Set password" } }
            }
        },
    )
}

/// A setup link that can't be used (unknown, used, expired): the reason, and a way on.
fn dead_link(refusal: &PageRefusal) -> Response {
    (
        refusal.status,
        layout::card_page(
            "Set a password",
            html! {
                h1 { "Set a password" }
                (layout::refusal(refusal))
                p { "Ask an admin of your account for a new link, or "
                    a href={ (BASE) "/login" } { "sign in" } "." }
            },
        ),
    )
        .into_response()
}

async fn setup_page(
    State(cp): State<Arc<ControlPlane>>,
    Path(secret): Path<String>,
    req: Request,
) -> Response {
    let (parts, _) = req.into_parts();
    match usecase::setup_target(&cp, &secret).await {
        Ok(user) => {
            let mut response =
                setup_form(&csrf_of(&parts), &secret, &user.email, None).into_response();
            no_store(&mut response);
            response
        }
        Err(e) => dead_link(&e.into()),
    }
}

async fn setup_submit(
    State(cp): State<Arc<ControlPlane>>,
    Path(secret): Path<String>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let csrf = csrf_of(&parts);
    let fields = match Fields::from_request(Request::from_parts(parts, body), &()).await {
        Ok(fields) => fields,
        Err(rejection) => return rejection,
    };
    let user = match usecase::setup_target(&cp, &secret).await {
        Ok(user) => user,
        Err(e) => return dead_link(&e.into()),
    };
    let password = fields.get("password");
    let result = if password != fields.get("confirm") {
        Err(Refusal::Invalid {
            code: "users/PASSWORD_MISMATCH",
            message: "the two passwords are not the same".into(),
        })
    } else {
        usecase::complete_setup(&cp, &secret, password).await
    };
    match result {
        Ok(_) => see_other(&format!("{BASE}/login?ready=1")),
        Err(e) => {
            let refusal = PageRefusal::from(e);
            let mut response = (
                refusal.status,
                setup_form(&csrf, &secret, &user.email, Some(&refusal)),
            )
                .into_response();
            no_store(&mut response);
            response
        }
    }
}

/// The setup link's secret is in the page's URL and its forms: keep it out of caches.
fn no_store(response: &mut Response) {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
}

/// Any other path under the page: 404, as a page.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        layout::card_page(
            "Not found",
            html! {
                h1 { "Page not found" }
                p.muted { "There is no page at this address." }
                div.buttons { a.btn.primary.wide href=(BASE) { "Go to Manage tokens" } }
            },
        ),
    )
        .into_response()
}

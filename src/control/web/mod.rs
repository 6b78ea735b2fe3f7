//! The Manage Tokens page (DESIGN §4 "Users and the Manage Tokens page"): server-rendered
//! HTML (maud) over the same use-case functions as the management API, so a product rule
//! lives in one place and the page only shows what it answers. Plain forms post and every
//! POST is answered with a 303 back to its tab, refused or not (Post/Redirect/Get: a reload
//! never sends a form again); what it did travels in the `flash` cookie and is shown once,
//! the focus on what changed or on the refused form with what was typed. A little
//! JavaScript enhances (copy to the clipboard, confirmation dialogs, editing in place,
//! moving the focus) and is never needed to act.
//!
//! Each handler reads top to bottom: session → the caller for the account (the same reach
//! as the API's `X-Account-Id`) → one use case → a template. The page hides what a role
//! can't use; the use cases decide. Secrets (a new API token, a setup link) go from the POST
//! that made them to the next page in the flash, never in a URL.
//!
//! `session` (the cookie, the CSRF check, sealing and opening the flash) wraps every route
//! here; what the other files hold: `layout` (the frame, shared widgets), `assets` (CSS,
//! JS and the icon, embedded), `flash` (what a POST did, for the page after it), `login`
//! (sign in, set a password, sign out), one file per tab.

mod api_tokens;
mod assets;
mod chart;
pub mod dates;
mod drop_filters;
mod flash;
mod form;
mod layout;
mod login;
pub mod session;
mod shared;
mod shipping;
mod users;
mod volume;

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;

use super::api::error;
use super::plane::ControlPlane;
use super::refusal::Refusal;
use super::store::accounts::Account;
use super::store::users::Role;
use super::usecases::accounts as account_usecases;
use super::usecases::callers::Caller;
use crate::config::ControlPlaneConfig;
use crate::model::Kind;
pub use flash::Flash;
pub use form::Fields;
use session::{Csrf, Session};

/// What only the page takes from the config.
pub struct PageSettings {
    /// `Secure` session cookies: the page is reached over https.
    pub secure_cookies: bool,
    /// Where the gateways' public listener is reached, without a trailing `/`: the start
    /// of a shared token's live-tail link. `None`: the page offers none.
    pub gateway_url: Option<String>,
    /// Proxies whose `X-Forwarded-For` names the client (`control_plane.trusted_proxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl PageSettings {
    pub fn from_config(config: &ControlPlaneConfig) -> PageSettings {
        PageSettings {
            secure_cookies: config.page_url().starts_with("https://"),
            gateway_url: config
                .gateway_url
                .as_deref()
                .map(|url| url.trim_end_matches('/').to_string()),
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }
}

/// The page's router state: the use cases' state and the page's own settings; handlers
/// extract the one they need (`State<Arc<ControlPlane>>`, `State<Arc<PageSettings>>`).
#[derive(Clone)]
pub struct PageState {
    cp: Arc<ControlPlane>,
    settings: Arc<PageSettings>,
}

impl FromRef<PageState> for Arc<ControlPlane> {
    fn from_ref(state: &PageState) -> Arc<ControlPlane> {
        Arc::clone(&state.cp)
    }
}

impl FromRef<PageState> for Arc<PageSettings> {
    fn from_ref(state: &PageState) -> Arc<PageSettings> {
        Arc::clone(&state.settings)
    }
}

/// Every page route, inside `session::layer`, to be served under [`BASE`].
pub fn routes(cp: Arc<ControlPlane>, settings: PageSettings) -> Router {
    let state = PageState {
        cp,
        settings: Arc::new(settings),
    };
    let mut router = Router::new()
        .route("/", get(home))
        .merge(login::routes())
        .merge(assets::routes())
        .merge(shipping::routes())
        .merge(api_tokens::routes())
        .merge(shared::routes())
        .merge(users::routes())
        .merge(volume::routes())
        .merge(drop_filters::routes());
    // One GET route per tab (a `{tab}` segment would shadow the tabs' own POST routes).
    for tab in Tab::ALL {
        let path = format!("/accounts/{{account}}/{}", tab.slug());
        router = router.route(&path, get(show_tab).layer(Extension(tab)));
    }
    router
        .fallback(login::not_found)
        .method_not_allowed_fallback(form_address)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::layer,
        ))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// What every page allows a browser: its own scripts, styles and forms only, no framing
/// (clickjacking), no content sniffing, no referrer (a URL may name an account). Pages
/// show tokens, so none is kept by a cache unless it says otherwise (the assets do).
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                      img-src 'self'; connect-src 'self'; form-action 'self'; \
                      base-uri 'none'; frame-ancestors 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Where `routes` is served; every link and form action starts with it.
pub const BASE: &str = "/ui";

/// The page's tabs, in the order the header shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Logs,
    Metrics,
    Traces,
    Api,
    Shared,
    Users,
    Volume,
    DropFilters,
}

impl Tab {
    pub const ALL: [Tab; 8] = [
        Tab::Logs,
        Tab::Metrics,
        Tab::Traces,
        Tab::Api,
        Tab::Shared,
        Tab::Users,
        Tab::Volume,
        Tab::DropFilters,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            Tab::Logs => "logs",
            Tab::Metrics => "metrics",
            Tab::Traces => "traces",
            Tab::Api => "api",
            Tab::Shared => "shared",
            Tab::Users => "users",
            Tab::Volume => "volume",
            Tab::DropFilters => "drop-filters",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Tab::Logs => "Log shipping",
            Tab::Metrics => "Metrics shipping",
            Tab::Traces => "Tracing shipping",
            Tab::Api => "API tokens",
            Tab::Shared => "Shared tokens",
            Tab::Users => "Users",
            Tab::Volume => "Volume",
            Tab::DropFilters => "Drop filters",
        }
    }

    /// The shipping tab of tokens of `kind`.
    pub fn of_kind(kind: Kind) -> Tab {
        match kind {
            Kind::Logs => Tab::Logs,
            Kind::Metrics => Tab::Metrics,
            Kind::Traces => Tab::Traces,
        }
    }

    /// Only admins manage tokens; the other roles see and use shared tokens.
    pub fn shown_to(self, role: Role) -> bool {
        role == Role::Admin || self == Tab::Shared
    }

    pub fn url(self, account_id: i64) -> String {
        format!("{BASE}/accounts/{account_id}/{}", self.slug())
    }
}

/// The tab a session starts on: an admin's account's own shipping tokens, shared tokens
/// for everyone else.
pub fn first_tab(role: Role, home: &Account) -> Tab {
    if role == Role::Admin {
        Tab::of_kind(home.account_type.shipping_kind())
    } else {
        Tab::Shared
    }
}

async fn home(session: Session) -> Redirect {
    let tab = first_tab(session.user.role, &session.home);
    Redirect::to(&tab.url(session.home.id))
}

/// A signed-in visit: the session, the CSRF token every form of the answer embeds, the
/// page's settings, and what the POST that led here did.
pub struct Visit {
    pub session: Session,
    pub csrf: String,
    pub settings: Arc<PageSettings>,
    pub flash: Option<Flash>,
}

impl FromRequestParts<PageState> for Visit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &PageState) -> Result<Visit, Response> {
        let session = match Session::from_request_parts(parts, state).await {
            Ok(session) => session,
            // A GET goes to the login page; a form posted after the session ended goes
            // there too, told so, to come back to its tab once signed in.
            Err(rejection) if parts.method == Method::GET => return Err(rejection),
            Err(_) => return Err(flash::signed_out(parts.uri.path())),
        };
        Ok(Visit {
            session,
            csrf: csrf_of(parts),
            settings: Arc::clone(&state.settings),
            flash: parts.extensions.get::<Flash>().cloned(),
        })
    }
}

/// The CSRF token `session::layer` put on the request.
pub fn csrf_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<Csrf>()
        .map(|Csrf(token)| token.clone())
        .unwrap_or_default()
}

/// A refused call as the page shows it: the rule's sentence, its code in small text, and
/// the status the API would have answered.
#[derive(Debug, Clone)]
pub struct PageRefusal {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// When to try again (too many failed logins), for `Retry-After`.
    pub retry_after_secs: Option<u64>,
}

impl From<Refusal> for PageRefusal {
    fn from(e: Refusal) -> PageRefusal {
        // The status is the API's for the same refusal; a store failure is logged there.
        error::log_cause(&e);
        let retry_after_secs = match &e {
            Refusal::TooManyAttempts { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        PageRefusal {
            status: error::status(&e),
            code: e.code().to_string(),
            message: e.to_string(),
            retry_after_secs,
        }
    }
}

/// What a tab shows besides its content: nothing, what a change did, a refusal, or a
/// secret made by the POST that led here.
pub enum Notice {
    None,
    /// A change made: what it did, and the id of the element it concerns.
    Done {
        message: String,
        focus: Option<String>,
    },
    Refused(PageRefusal),
    /// A new API token: its secret, shown this once.
    ApiToken {
        name: String,
        token: String,
    },
    /// An invited user (or one given a new link) and the one-time link that sets their
    /// password.
    Invited {
        email: String,
        link: String,
        reissued: bool,
    },
    /// A refused form (`form` is its id): the tab shows the refusal in it, open again
    /// with what was typed.
    Retry {
        refusal: PageRefusal,
        form: String,
        fields: Fields,
    },
}

impl Notice {
    /// A secret in the page: not to be kept by any cache.
    fn holds_secret(&self) -> bool {
        matches!(self, Notice::ApiToken { .. } | Notice::Invited { .. })
    }

    /// What was typed into form `form` when it was refused, and the refusal.
    pub fn retry_of(&self, form: &str) -> Option<(&PageRefusal, &Fields)> {
        match self {
            Notice::Retry {
                refusal,
                form: f,
                fields,
            } if f == form => Some((refusal, fields)),
            _ => None,
        }
    }
}

impl From<Flash> for Notice {
    fn from(flash: Flash) -> Notice {
        let Some(refused) = flash.refused.clone() else {
            return match flash.secret {
                Some(flash::Secret::ApiToken { name, token }) => Notice::ApiToken { name, token },
                Some(flash::Secret::SetupLink {
                    email,
                    link,
                    reissued,
                }) => Notice::Invited {
                    email,
                    link,
                    reissued,
                },
                None => Notice::Done {
                    message: flash.message,
                    focus: flash.focus,
                },
            };
        };
        let refusal = PageRefusal {
            status: StatusCode::from_u16(refused.status).unwrap_or(StatusCode::BAD_REQUEST),
            code: refused.code,
            message: flash.message.clone(),
            retry_after_secs: None,
        };
        match flash.form.clone() {
            Some(form) => Notice::Retry {
                refusal,
                form,
                fields: flash.typed_fields(),
            },
            None => Notice::Refused(refusal),
        }
    }
}

/// `?edit=<id>`: the row shown with its edit form open (what "Rename"/"Edit" link to, so
/// editing works without JavaScript too).
#[derive(Debug, Default, Deserialize)]
pub struct TabQuery {
    pub edit: Option<i64>,
}

/// What a tab renders from: who is looking at which account.
pub struct Ctx<'a> {
    pub cp: &'a ControlPlane,
    pub visit: &'a Visit,
    pub caller: &'a Caller,
    /// The accounts the session reaches (the header's switcher), home first.
    pub reach: &'a [Account],
    pub edit: Option<i64>,
}

impl Ctx<'_> {
    pub fn account(&self) -> &Account {
        &self.caller.account
    }

    pub fn role(&self) -> Role {
        self.visit.session.user.role
    }

    pub fn is_admin(&self) -> bool {
        self.role() == Role::Admin
    }

    pub fn csrf(&self) -> &str {
        &self.visit.csrf
    }

    /// Where a form of this account's posts.
    pub fn action(&self, rest: &str) -> String {
        format!("{BASE}/accounts/{}/{rest}", self.account().id)
    }

    pub fn now_secs(&self) -> i64 {
        self.cp.clock.now_secs()
    }

    /// The latest expiry a shared token may be given now (`shared_token_max_lifetime_secs`).
    pub fn latest_expiry_ms(&self) -> i64 {
        self.cp
            .clock
            .now_ms()
            .saturating_add(self.cp.shared_tokens.max_lifetime_ms)
    }

    /// Where the gateways' public listener is reached, if configured.
    pub fn gateway_url(&self) -> Option<&str> {
        self.visit.settings.gateway_url.as_deref()
    }
}

async fn show_tab(
    State(cp): State<Arc<ControlPlane>>,
    Extension(tab): Extension<Tab>,
    visit: Visit,
    Path(account_id): Path<i64>,
    Query(query): Query<TabQuery>,
) -> Response {
    let caller = match visit.session.caller(&cp, account_id).await {
        Ok(caller) => caller,
        Err(e) => return unreachable_account(&cp, &visit, e).await,
    };
    let notice = visit.flash.clone().map_or(Notice::None, Notice::from);
    render(&cp, &visit, &caller, tab, query.edit, notice).await
}

/// Renders `tab` of the caller's account with `notice` (what the POST that led here did).
/// A tab whose own read is refused shows that refusal, with its status, instead of its
/// content; a refused change is the redirect's page and answers 200 like any tab.
async fn render(
    cp: &ControlPlane,
    visit: &Visit,
    caller: &Caller,
    tab: Tab,
    edit: Option<i64>,
    notice: Notice,
) -> Response {
    let reach = reach(cp, visit, caller).await;
    let ctx = Ctx {
        cp,
        visit,
        caller,
        reach: &reach,
        edit,
    };
    let content = match tab {
        Tab::Logs => shipping::content(&ctx, Kind::Logs, &notice).await,
        Tab::Metrics => shipping::content(&ctx, Kind::Metrics, &notice).await,
        Tab::Traces => shipping::content(&ctx, Kind::Traces, &notice).await,
        Tab::Api => api_tokens::content(&ctx, &notice).await,
        Tab::Shared => shared::content(&ctx, &notice).await,
        Tab::Users => users::content(&ctx, &notice).await,
        Tab::Volume => volume::content(&ctx, &notice).await,
        Tab::DropFilters => drop_filters::content(&ctx, &notice).await,
    };
    let (status, notice, content) = match content {
        Ok(markup) => (StatusCode::OK, notice, markup),
        Err(e) => {
            let refusal = PageRefusal::from(e);
            (refusal.status, Notice::Refused(refusal), maud::html! {})
        }
    };
    let frame = layout::Frame {
        visit,
        account: &caller.account,
        tab: Some(tab),
        reach: &reach,
    };
    let secret = notice.holds_secret();
    let mut response = (status, layout::page(&frame, &notice, content)).into_response();
    if secret {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The tab a page address belongs to (`/ui/accounts/3/logs/tokens/7/rename` →
/// `/ui/accounts/3/logs`), with or without the page's base.
pub fn tab_of(path: &str) -> Option<String> {
    let path = path.strip_prefix(BASE).unwrap_or(path);
    let mut parts = path.trim_start_matches('/').split('/');
    let (Some("accounts"), Some(account), Some(slug)) = (parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let account: i64 = account.parse().ok()?;
    let tab = Tab::ALL.into_iter().find(|t| t.slug() == slug)?;
    Some(tab.url(account))
}

/// A GET of an address only forms post to (typed, or kept by a browser): the tab the form
/// is on, not an error.
async fn form_address(method: Method, uri: axum::http::Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            Refusal::invalid("this address takes the page's forms only").to_string(),
        )
            .into_response();
    }
    see_other(&tab_of(uri.path()).unwrap_or_else(|| BASE.to_string()))
}

/// The accounts the header's switcher offers: the session's home, and for an admin of a
/// main account its accessible sub-accounts and tied accounts.
async fn reach(cp: &ControlPlane, visit: &Visit, caller: &Caller) -> Vec<Account> {
    let session = &visit.session;
    let mut accounts = vec![session.home.clone()];
    if session.user.role != Role::Admin || !session.home.is_main_logs() {
        return accounts;
    }
    let home_caller = if caller.account.id == session.home.id {
        Ok(caller.clone())
    } else {
        session.caller(cp, session.home.id).await
    };
    // The switcher is a convenience: a failed read leaves it with the home account only.
    if let Ok(home) = home_caller
        && let Ok(reached) = account_usecases::reachable(cp, &home).await
    {
        accounts.extend(reached);
    }
    accounts
}

/// An account the session doesn't reach (or that isn't there): the refusal, in the frame
/// of the session's home account.
pub async fn unreachable_account(cp: &ControlPlane, visit: &Visit, e: Refusal) -> Response {
    let refusal = PageRefusal::from(e);
    let status = refusal.status;
    let home = visit.session.home.clone();
    let reach = match visit.session.caller(cp, home.id).await {
        Ok(caller) => reach(cp, visit, &caller).await,
        Err(_) => vec![home.clone()],
    };
    let frame = layout::Frame {
        visit,
        account: &home,
        tab: None,
        reach: &reach,
    };
    let content = maud::html! {};
    (
        status,
        layout::page(&frame, &Notice::Refused(refusal), content),
    )
        .into_response()
}

/// 303 to `location`: the browser follows with a GET (Post/Redirect/Get).
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// What a change did, as the page tells it: a sentence, the id of the element it changed
/// (the focus goes there; `None`: to the sentence, as after a deletion), and a secret it
/// made, to show once.
pub struct Done {
    pub message: String,
    pub focus: Option<String>,
    pub secret: Option<flash::Secret>,
}

impl Done {
    pub fn new(message: impl Into<String>, focus: Option<String>) -> Done {
        Done {
            message: message.into(),
            focus,
            secret: None,
        }
    }

    /// A change that made a secret: the page the redirect lands on shows it once.
    pub fn with_secret(mut self, secret: flash::Secret) -> Done {
        self.secret = Some(secret);
        self
    }
}

/// Runs one change on account `account_id` as the session's user and answers 303 back to
/// `tab`, refused or not, with a flash saying what happened (Post/Redirect/Get: a reload
/// never sends the form again). A refusal of what was typed into `form` (its id and what
/// it posted) brings that form back as it was. After a change the address ends with the
/// id of the row it changed, so a browser without script scrolls there too.
pub async fn act(
    cp: &ControlPlane,
    visit: &Visit,
    account_id: i64,
    tab: Tab,
    form: Option<(&str, &Fields)>,
    change: impl AsyncFnOnce(&Caller) -> Result<Done, Refusal>,
) -> Response {
    let outcome = match visit.session.caller(cp, account_id).await {
        Ok(caller) => change(&caller).await,
        Err(e) => Err(e),
    };
    let flash = match outcome {
        Ok(done) => Flash {
            secret: done.secret,
            ..Flash::done(done.message, done.focus)
        },
        Err(e) => Flash::refused(&PageRefusal::from(e), form),
    };
    // Not a refused form's id: a browser's scroll to a fragment that names an element it
    // can't focus takes the focus away from the form's field.
    let location = match &flash.focus {
        Some(id) => format!("{}#{id}", tab.url(account_id)),
        None => tab.url(account_id),
    };
    flash.redirect(&location)
}

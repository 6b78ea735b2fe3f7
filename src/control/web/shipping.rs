//! The Log / Metrics / Tracing shipping tabs: an account's shipping tokens of one kind
//! with the plan's limit, and create, rename, enable/disable, rotate and delete — each
//! through `usecases::shipping_tokens`, whose refusals (the plan's limit, the last enabled
//! token, a duplicate name) come back on the tab. An account holds the tokens of its type's kind
//! only: on another kind's tab, the page says where those tokens live.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use maud::{Markup, html};

use super::layout::{self, badge, confirm_form, copy_token, csrf_field};
use super::{Ctx, Done, Fields, Notice, PageRefusal, PageState, Tab, Visit, act, dates};
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules;
use crate::control::store::shipping_tokens::{Order, ShippingToken};
use crate::control::store::users::User;
use crate::control::usecases::shipping_tokens as usecase;
use crate::control::usecases::users as user_usecases;
use crate::model::Kind;

pub fn routes() -> Router<PageState> {
    let mut router = Router::new();
    for kind in [Kind::Logs, Kind::Metrics, Kind::Traces] {
        let base = format!("/accounts/{{account}}/{}/tokens", Tab::of_kind(kind).slug());
        let routes = Router::new()
            .route(&base, post(create))
            .route(&format!("{base}/{{id}}/rename"), post(rename))
            .route(&format!("{base}/{{id}}/enabled"), post(set_enabled))
            .route(&format!("{base}/{{id}}/rotate"), post(rotate))
            .route(&format!("{base}/{{id}}/delete"), post(delete))
            .layer(Extension(kind));
        router = router.merge(routes);
    }
    router
}

/// "log", "metrics", "tracing": how the documentation names each kind's tokens.
fn noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Logs => "log",
        Kind::Metrics => "metrics",
        Kind::Traces => "tracing",
    }
}

/// The most tokens one tab lists (the plan allows 15 enabled; disabled ones add up).
const MAX_LISTED: i64 = 1000;

/// The id of the create form, which a refusal brings back as it was typed.
const NEW_TOKEN: &str = "new-token";

/// The id of token `id`'s rename form.
fn rename_form(id: i64) -> String {
    format!("token-{id}-rename")
}

pub async fn content(ctx: &Ctx<'_>, kind: Kind, notice: &Notice) -> Result<Markup, Refusal> {
    // Shipping tokens are admins' business, on every shipping tab.
    ctx.caller.require_admin()?;
    if ctx.account().account_type.shipping_kind() != kind {
        return Ok(elsewhere(ctx, kind));
    }
    let limits = usecase::limits(ctx.cp, ctx.caller, kind).await?;
    let (_, tokens) =
        usecase::search(ctx.cp, ctx.caller, kind, None, Order::Id, MAX_LISTED, 0).await?;
    // Only to show "created by" as an email: a failure leaves the raw label.
    let people = user_usecases::list(ctx.cp, ctx.caller)
        .await
        .unwrap_or_default();
    // The account's default token: the one its account token answers with (the first
    // enabled one), which setup instructions use.
    let default_id = tokens.iter().find(|t| t.enabled).map(|t| t.id);
    // Why the last enabled token can't be disabled or deleted, in the rule's own words.
    let last_enabled = rules::check_may_lose_enabled(limits.enabled)
        .err()
        .map(|e| e.to_string());
    let plan = ctx.account().plan_at(ctx.now_secs());
    let at_limit = limits.enabled >= limits.max_allowed;
    let title = format!("{} shipping tokens", capitalized(noun(kind)));
    Ok(html! {
        div.section-head {
            div {
                h2 { (title) }
                p.lede {
                    "Shippers send data to this account with one of these tokens. "
                    "Click a token to copy it."
                }
            }
            div.limit aria-live="polite" {
                span.count { (limits.enabled) " of " (limits.max_allowed) " enabled" }
                meter min="0" max=(limits.max_allowed) value=(limits.enabled)
                    aria-label="Enabled tokens against the plan's limit" {}
                span.muted { "the " (plan.as_str()) " plan allows " (limits.max_allowed) }
            }
        }
        form.create id=(NEW_TOKEN) method="post" action=(ctx.action(&format!("{}/tokens", Tab::of_kind(kind).slug()))) {
            (csrf_field(ctx.csrf()))
            @let retry = notice.retry_of(NEW_TOKEN);
            @if let Some((refusal, _)) = retry { (layout::refusal(refusal)) }
            label for="new-token-name" { "Name" }
            input #new-token-name type="text" name="name" required maxlength="256"
                value=[retry.map(|(_, f)| f.get("name"))]
                placeholder="e.g. kubernetes-prod" autocomplete="off";
            button.btn.primary type="submit" { "+ New " (noun(kind)) " shipping token" }
            @if at_limit {
                p.hint.warn {
                    @if limits.max_allowed == 1 {
                        "The one token the plan allows is enabled: rotate it to replace it with "
                        "a new one, or disable it before adding another."
                    } @else {
                        "All " (limits.max_allowed) " tokens the plan allows are enabled: "
                        "disable one before adding another."
                    }
                }
            } @else {
                p.hint { "New tokens are enabled." }
            }
        }
        @if tokens.is_empty() {
            p.empty { "No " (noun(kind)) " shipping tokens yet." }
        } @else {
            div.table-wrap {
                table.tokens.cards {
                    caption.sr-only { (title) }
                    thead { tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Token" }
                        th scope="col" { "Created" }
                        th scope="col" { "Last used" }
                        th scope="col" { "Enabled" }
                        th scope="col" { span.sr-only { "Actions" } }
                    } }
                    tbody {
                        @for t in &tokens {
                            (row(ctx, kind, t, Some(t.id) == default_id,
                                 t.enabled.then_some(()).and(last_enabled.as_deref()), &people,
                                 notice.retry_of(&rename_form(t.id))))
                        }
                    }
                }
            }
            @if let Some(reason) = &last_enabled {
                p.hint.lock { "The last enabled token can't be disabled or deleted: " (reason) "." }
            }
            p.hint { (badge("info", "Default")) " the account's default token: the first enabled one, which setup instructions use." }
        }
    })
}

/// One token's row; `locked` is the rule that keeps it enabled, when it is the last.
fn row(
    ctx: &Ctx<'_>,
    kind: Kind,
    t: &ShippingToken,
    default: bool,
    locked: Option<&str>,
    people: &[User],
    retry: Option<(&PageRefusal, &Fields)>,
) -> Markup {
    let base = format!("{}/tokens/{}", Tab::of_kind(kind).slug(), t.id);
    let editing = ctx.edit == Some(t.id) || retry.is_some();
    let row_id = format!("token-{}", t.id);
    let what = format!("{} shipping token “{}”", noun(kind), t.name);
    html! {
        tr id=(row_id) .disabled[!t.enabled] {
            td.name {
                div.view hidden[editing] {
                    span.token-name.clamp title=(t.name) { (t.name) }
                    @if default { " " (badge("info", "Default")) }
                }
                form.rename id=(rename_form(t.id)) method="post" action=(ctx.action(&format!("{base}/rename"))) hidden[!editing] {
                    (csrf_field(ctx.csrf()))
                    @if let Some((refusal, _)) = retry { (layout::refusal(refusal)) }
                    label.sr-only for={ "rename-" (t.id) } { "New name for " (what) }
                    input id={ "rename-" (t.id) } type="text" name="name"
                        value=(retry.map_or(t.name.as_str(), |(_, f)| f.get("name")))
                        required maxlength="256" autocomplete="off";
                    button.btn.primary.small type="submit" { "Save" }
                    a.btn.ghost.small href=(Tab::of_kind(kind).url(ctx.account().id)) data-edit-cancel { "Cancel" }
                }
            }
            td.token data-label="Token" { (copy_token(&t.token, &what)) }
            td.created data-label="Created" {
                (layout::time(t.created_at * 1000))
                br;
                span.muted { "by " (layout::who(&t.created_by, people)) }
            }
            td.last-used data-label="Last used" {
                @match t.last_used {
                    Some(s) => {
                        (layout::time(s * 1000)) br;
                        span.muted { (dates::ago(s * 1000, ctx.cp.clock.now_ms())) }
                    }
                    None => span.muted { "Never" },
                }
            }
            td.enabled data-label="Enabled" {
                form method="post" action=(ctx.action(&format!("{base}/enabled"))) {
                    (csrf_field(ctx.csrf()))
                    input type="hidden" name="enabled" value=(if t.enabled { "false" } else { "true" });
                    button.switch type="submit" role="switch" aria-checked=(t.enabled)
                        aria-label={ "Enabled: " (what) } disabled[locked.is_some()]
                        title=[locked] {
                        span.knob aria-hidden="true" {}
                    }
                    span.state aria-hidden="true" { @if t.enabled { "On" } @else { "Off" } }
                }
                @if locked.is_some() { span.reason { "Last enabled token" } }
            }
            td.actions {
                a.btn.ghost.small href={ "?edit=" (t.id) "#" (row_id) } data-edit=(row_id)
                    aria-label={ "Rename " (what) } { "Rename" }
                form.inline method="post" action=(ctx.action(&format!("{base}/rotate")))
                    data-confirm={ "Rotate the " (what) " (…" (last_chars(&t.token)) ")? A new token named “" (t.name) "” replaces it at once: shippers still sending with …" (last_chars(&t.token)) " are refused from then on. Update them with the new token, which this tab shows next." }
                    data-confirm-button="Rotate" {
                    (csrf_field(ctx.csrf()))
                    button.btn.ghost.small type="submit" aria-label={ "Rotate " (what) } { "Rotate" }
                }
                @if let Some(reason) = locked {
                    button.btn.danger.small type="button" disabled title=(reason)
                        aria-label={ "Delete " (what) " (not possible: " (reason) ")" } { "Delete" }
                } @else {
                    (confirm_form(
                        &ctx.action(&format!("{base}/delete")),
                        ctx.csrf(),
                        "Delete",
                        &format!("Delete {what}"),
                        &format!("Delete the {what}? Shippers that send with it will be refused."),
                        &[],
                    ))
                }
            }
        }
    }
}

/// The tab of a kind this account does not hold: where those tokens live, with links to
/// the accounts the session reaches that hold them.
fn elsewhere(ctx: &Ctx<'_>, kind: Kind) -> Markup {
    let account = ctx.account();
    let holds = account.account_type.shipping_kind();
    let holders: Vec<_> = ctx
        .reach
        .iter()
        .filter(|a| a.id != account.id && a.account_type.shipping_kind() == kind)
        .filter(|a| match account.owner_id {
            // From a tied account: its main account.
            Some(main) => a.id == main,
            // From a main account: the accounts tied to it.
            None => a.owner_id == Some(account.id),
        })
        .collect();
    html! {
        div.section-head {
            div {
                h2 { (capitalized(noun(kind))) " shipping tokens" }
            }
        }
        div.callout.info {
            p {
                strong { (account.name) } " is a " (layout::account_kind(account)) ": it holds "
                (noun(holds)) " shipping tokens only. "
                @match (kind, account.owner_id) {
                    (Kind::Logs, Some(_)) => "Log shipping tokens live in its main log management account.",
                    (Kind::Logs, None) => "Log shipping tokens live in log management accounts.",
                    (Kind::Metrics, _) => "Metrics shipping tokens live in the metrics accounts tied to a main account.",
                    (Kind::Traces, _) => "Tracing shipping tokens live in the tracing accounts tied to a main account.",
                }
            }
            @if holders.is_empty() {
                p.muted {
                    "None of the accounts you reach holds " (noun(kind)) " shipping tokens."
                }
            } @else {
                ul.links {
                    @for a in holders {
                        li { a href=(Tab::of_kind(kind).url(a.id)) {
                            (a.name) " — " (layout::account_kind(a)) " · " (a.id)
                        } }
                    }
                }
            }
            p {
                a href=(Tab::of_kind(holds).url(account.id)) {
                    "This account's " (noun(holds)) " shipping tokens →"
                }
            }
        }
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

// === actions ===

/// "log shipping token “k8s”": a token as the page's sentences name it.
fn named(kind: Kind, name: &str) -> String {
    format!("{} shipping token “{name}”", noun(kind))
}

fn row_id(id: i64) -> Option<String> {
    Some(format!("token-{id}"))
}

async fn create(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    visit: Visit,
    Path(account): Path<i64>,
    fields: Fields,
) -> Response {
    let form = Some((NEW_TOKEN, &fields));
    act(
        &cp,
        &visit,
        account,
        Tab::of_kind(kind),
        form,
        async |caller| {
            let t = usecase::create(&cp, caller, kind, fields.get("name"), None).await?;
            let message = format!("{} created and enabled", capitalized(&named(kind, &t.name)));
            Ok(Done::new(message, row_id(t.id)))
        },
    )
    .await
}

async fn rename(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
    fields: Fields,
) -> Response {
    let form = rename_form(id);
    let form = Some((form.as_str(), &fields));
    act(
        &cp,
        &visit,
        account,
        Tab::of_kind(kind),
        form,
        async |caller| {
            let before = usecase::read(&cp, caller, kind, id).await?;
            let t = usecase::update(&cp, caller, kind, id, Some(fields.get("name")), None).await?;
            let message = format!(
                "{} renamed “{}”",
                capitalized(&named(kind, &before.name)),
                t.name
            );
            Ok(Done::new(message, row_id(id)))
        },
    )
    .await
}

async fn set_enabled(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
    fields: Fields,
) -> Response {
    act(
        &cp,
        &visit,
        account,
        Tab::of_kind(kind),
        None,
        async |caller| {
            let enabled = match fields.get("enabled") {
                "true" => true,
                "false" => false,
                _ => return Err(Refusal::invalid("enabled must be true or false")),
            };
            let t = usecase::update(&cp, caller, kind, id, None, Some(enabled)).await?;
            let message = match enabled {
                true => format!(
                    "{} enabled: shippers may send with it",
                    capitalized(&named(kind, &t.name))
                ),
                false => format!(
                    "{} disabled: shippers that send with it are refused",
                    capitalized(&named(kind, &t.name))
                ),
            };
            Ok(Done::new(message, row_id(id)))
        },
    )
    .await
}

/// The end of a token, to tell two tokens apart in a sentence.
fn last_chars(token: &str) -> &str {
    let at = token.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
    &token[at..]
}

async fn rotate(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
) -> Response {
    act(
        &cp,
        &visit,
        account,
        Tab::of_kind(kind),
        None,
        async |caller| {
            let (new, old) = usecase::rotate(&cp, caller, kind, id).await?;
            let message = format!(
                "{} rotated: the new token ends …{}; shippers still sending with …{} are refused",
                capitalized(&named(kind, &new.name)),
                last_chars(&new.token),
                last_chars(&old.token),
            );
            Ok(Done::new(message, row_id(new.id)))
        },
    )
    .await
}

async fn delete(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
) -> Response {
    act(
        &cp,
        &visit,
        account,
        Tab::of_kind(kind),
        None,
        async |caller| {
            let t = usecase::read(&cp, caller, kind, id).await?;
            usecase::delete(&cp, caller, kind, id).await?;
            Ok(Done::new(
                format!("{} deleted", capitalized(&named(kind, &t.name))),
                None,
            ))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_told_by_its_last_characters() {
        assert_eq!(last_chars("3JuDa3sOPicz1E4UzZY84DjA7VihPge7"), "Pge7");
        assert_eq!(last_chars("ab"), "ab");
    }

    #[test]
    fn kinds_are_capitalized() {
        assert_eq!(capitalized("metrics"), "Metrics");
    }
}

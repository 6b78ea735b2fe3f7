//! The Shared tokens tab: read-only tokens to the account's logs with their filter logic,
//! last use and expiry, and the account's token filters (`field: value`, exact match).
//! Every role sees the tokens; admins add, edit and delete them and the filters. The
//! documentation's best practices show as warnings: a token without any filter reads all
//! of the account's logs, and a legacy token without an expiry never stops working.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use maud::{Markup, html};

use super::layout::{self, badge, confirm_form, copy_token, csrf_field};
use super::{Ctx, Done, Fields, Notice, PageRefusal, PageState, Tab, Visit, act, dates};
use crate::clock::DAY_MS;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::shared_tokens::{Filter, FiltersOperator, SharedToken};
use crate::control::usecases::shared_tokens::{self as usecase, NewShared, SharedChange};

pub fn routes() -> Router<PageState> {
    Router::new()
        .route("/accounts/{account}/shared/tokens", post(create))
        .route("/accounts/{account}/shared/tokens/{id}/edit", post(edit))
        .route(
            "/accounts/{account}/shared/tokens/{id}/delete",
            post(delete),
        )
        .route("/accounts/{account}/shared/filters", post(create_filter))
        .route(
            "/accounts/{account}/shared/filters/{id}/delete",
            post(delete_filter),
        )
}

/// How many days a new shared token lasts unless another date is picked (the
/// documentation's default).
const DEFAULT_DAYS: i64 = 7;

/// The ids of the forms a refusal brings back as they were typed.
const NEW_SHARED: &str = "new-shared";
const NEW_FILTER: &str = "new-filter";

fn edit_form(id: i64) -> String {
    format!("edit-shared-{id}")
}

/// A refused form's refusal and what was typed into it.
type Retry<'a> = Option<(&'a PageRefusal, &'a Fields)>;

/// The filters a refused form had ticked, and how it combined them.
fn typed_choice(fields: &Fields) -> (Vec<i64>, FiltersOperator) {
    let chosen = fields
        .all("filter")
        .filter_map(|f| f.parse().ok())
        .collect();
    let operator = match fields.get("operator") {
        "OR" => FiltersOperator::Or,
        _ => FiltersOperator::And,
    };
    (chosen, operator)
}

pub async fn content(ctx: &Ctx<'_>, notice: &Notice) -> Result<Markup, Refusal> {
    let tokens = usecase::list(ctx.cp, ctx.caller).await?;
    let admin = ctx.is_admin();
    // Admins manage every filter; other roles see those the tokens carry.
    let filters = if admin {
        usecase::list_filters(ctx.cp, ctx.caller).await?
    } else {
        usecase::filters_in_use(ctx.cp, ctx.caller).await?
    };
    let now_ms = ctx.cp.clock.now_ms();
    Ok(html! {
        div.section-head {
            div {
                h2 { "Shared tokens" }
                p.lede {
                    "Shared tokens give read-only access to this account's logs to people "
                    "without a login. Attach a token filter to every token and let it expire."
                }
            }
        }
        @if admin { (create_form(ctx, &filters, now_ms, notice.retry_of(NEW_SHARED))) }
        @if tokens.is_empty() {
            p.empty { "No shared tokens yet." }
        } @else {
            div.table-wrap {
                table.shared.cards {
                    caption.sr-only { "Shared tokens" }
                    thead { tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Token" }
                        th scope="col" { "Filter logic" }
                        th scope="col" { "Last used" }
                        th scope="col" { "Expires" }
                        @if ctx.gateway_url().is_some() { th scope="col" { "Live tail" } }
                        @if admin { th scope="col" { span.sr-only { "Actions" } } }
                    } }
                    tbody {
                        @for t in &tokens {
                            (row(ctx, t, &filters, now_ms))
                            @if admin { (edit_row(ctx, t, &filters, notice.retry_of(&edit_form(t.id)))) }
                        }
                    }
                }
            }
        }
        @if admin { (filters_section(ctx, &filters, &tokens, notice.retry_of(NEW_FILTER))) }
    })
}

fn create_form(ctx: &Ctx<'_>, filters: &[Filter], now_ms: i64, retry: Retry) -> Markup {
    let default_expiry = dates::date(now_ms + DEFAULT_DAYS * DAY_MS);
    let (chosen, operator) =
        retry.map_or((Vec::new(), FiltersOperator::And), |(_, f)| typed_choice(f));
    html! {
        details.add open[filters.is_empty() || retry.is_some()] {
            summary.btn.primary { "+ Add shared token" }
            form.stacked id=(NEW_SHARED) method="post" action=(ctx.action("shared/tokens")) {
                (csrf_field(ctx.csrf()))
                @if let Some((refusal, _)) = retry { (layout::refusal(refusal)) }
                div.field {
                    label for="shared-name" { "Token name" }
                    input #shared-name type="text" name="name" required maxlength="256"
                        value=[retry.map(|(_, f)| f.get("name"))]
                        placeholder="e.g. status-page" autocomplete="off";
                }
                div.field {
                    label for="shared-expires" { "Expiration date" }
                    input #shared-expires type="date" name="expires" required
                        value=(retry.map_or(default_expiry.as_str(), |(_, f)| f.get("expires")))
                        min=(dates::date(now_ms)) max=(dates::date(ctx.latest_expiry_ms()))
                        aria-describedby="shared-expires-hint";
                    p.hint #shared-expires-hint { "Works through the end of that day (UTC). 7 days unless you pick another." }
                }
                (filter_picker("new", filters, &chosen, operator))
                div.buttons { button.btn.primary type="submit" { "Add" } }
            }
        }
    }
}

/// The filters to attach (a checkbox each) and how they combine.
fn filter_picker(
    id: &str,
    filters: &[Filter],
    chosen: &[i64],
    operator: FiltersOperator,
) -> Markup {
    html! {
        fieldset.field.filters {
            legend { "Filters" }
            @if filters.is_empty() {
                p.hint.warn { "No token filters yet: add one under Token filters below, then attach it here." }
            } @else {
                div.choices {
                    @for f in filters {
                        label.choice {
                            input type="checkbox" name="filter" value=(f.id) checked[chosen.contains(&f.id)];
                            code { (f.field) ": " (f.value) }
                            @if !f.description.is_empty() { span.muted { " — " (f.description) } }
                        }
                    }
                }
                div.operator role="radiogroup" aria-label="Combine filters with" {
                    span.muted { "Combine with" }
                    @for op in [FiltersOperator::And, FiltersOperator::Or] {
                        label.choice {
                            input type="radio" name="operator" value=(op.as_str())
                                id={ "op-" (id) "-" (op.as_str()) } checked[op == operator];
                            (op.as_str())
                        }
                    }
                }
            }
        }
    }
}

fn row(ctx: &Ctx<'_>, t: &SharedToken, filters: &[Filter], now_ms: i64) -> Markup {
    let row_id = format!("shared-{}", t.id);
    let what = format!("shared token “{}”", t.name);
    html! {
        tr id=(row_id) {
            td.name { span.clamp title=(t.name) { (t.name) } }
            td.token data-label="Token" { (copy_token(&t.token, &what)) }
            td.logic data-label="Filter logic" {
                @if t.filters.is_empty() {
                    (badge("warn", "No filter"))
                    span.warn-text { " Reads all of the account's logs: attach a token filter." }
                } @else {
                    code { (logic(t, filters)) }
                }
            }
            td.last-used data-label="Last used" {
                @match t.last_used_ms {
                    Some(ms) => {
                        (layout::time(ms)) br; span.muted { (dates::ago(ms, now_ms)) }
                    }
                    None => span.muted { "Never" },
                }
            }
            td.expires data-label="Expires" {
                @match t.expires_at_ms {
                    None => {
                        (badge("warn", "Never expires"))
                        span.warn-text { " Legacy token: set an expiration date or delete it." }
                    }
                    Some(ms) if ms <= now_ms => {
                        (badge("muted", "Expired")) " " (layout::time(ms))
                    }
                    Some(ms) => {
                        (layout::time(ms)) br; span.muted { (dates::until(ms, now_ms)) }
                    }
                }
            }
            @if let Some(gateway) = ctx.gateway_url() {
                td.tail data-label="Live tail" {
                    @if t.expires_at_ms.is_some_and(|ms| ms <= now_ms) {
                        span.muted { "Expired" }
                    } @else {
                        (live_tail(gateway, t, &what, &ctx.account().name))
                    }
                }
            }
            @if ctx.is_admin() {
                td.actions {
                    a.btn.ghost.small href={ "?edit=" (t.id) "#" (row_id) } data-edit=(row_id)
                        aria-label={ "Edit " (what) } { "Edit" }
                    (confirm_form(
                        &ctx.action(&format!("shared/tokens/{}/delete", t.id)),
                        ctx.csrf(),
                        "Delete",
                        &format!("Delete {what}"),
                        &format!("Delete the {what}? Links shared with it stop working at once."),
                        &[],
                    ))
                }
            }
        }
    }
}

/// The sharing link of a token's live tail: the gateway's page, the token in the URL's
/// fragment (which browsers never send to a server). Anyone with it reads what the token
/// grants, without logging in.
fn live_tail(gateway: &str, t: &SharedToken, what: &str, account: &str) -> Markup {
    // The account's name rides along for the page to show; the token decides what it reads.
    let name: String = form_urlencoded::byte_serialize(account.as_bytes()).collect();
    let link = format!("{gateway}/tail#token={}&account={name}", t.token);
    html! {
        span.copy-wrap {
            a.btn.ghost.small href=(link) target="_blank" rel="noopener noreferrer"
                aria-label={ "Open live tail of " (what) } { "Open live tail" }
            " "
            button.btn.ghost.small type="button" data-copy=(link)
                aria-label={ "Copy link to the live tail of " (what) } { "Copy link" }
            span.copied role="status" aria-live="polite" {}
        }
    }
}

/// The row under a token's with its edit form, open with `?edit=<id>`, by the script, or
/// after a refused edit (with what was typed).
fn edit_row(ctx: &Ctx<'_>, t: &SharedToken, filters: &[Filter], retry: Retry) -> Markup {
    let editing = ctx.edit == Some(t.id) || retry.is_some();
    let form_id = edit_form(t.id);
    let (chosen, operator) = retry.map_or((t.filters.clone(), t.filters_operator), |(_, f)| {
        typed_choice(f)
    });
    let expires = match retry {
        Some((_, f)) => Some(f.get("expires").to_string()),
        None => t.expires_at_ms.map(dates::date),
    };
    // Name, token, logic, last used, expires, (live tail,) actions.
    let columns = if ctx.gateway_url().is_some() { 7 } else { 6 };
    html! {
        tr.edit-row id={ "shared-" (t.id) "-edit" } hidden[!editing] {
            td colspan=(columns) {
                form.stacked.inline-edit method="post" id=(form_id)
                    action=(ctx.action(&format!("shared/tokens/{}/edit", t.id))) {
                    (csrf_field(ctx.csrf()))
                    h3 { "Edit “" (t.name) "”" }
                    @if let Some((refusal, _)) = retry { (layout::refusal(refusal)) }
                    div.field {
                        label for={ (form_id) "-expires" } { "Expiration date" }
                        input id={ (form_id) "-expires" } type="date" name="expires"
                            value=[expires]
                            max=(dates::date(ctx.latest_expiry_ms()));
                        @if t.expires_at_ms.is_none() {
                            p.hint { "Empty keeps this legacy token without an expiry." }
                        }
                    }
                    (filter_picker(&t.id.to_string(), filters, &chosen, operator))
                    div.buttons {
                        button.btn.primary type="submit" { "Save" }
                        a.btn.ghost href=(Tab::Shared.url(ctx.account().id)) data-edit-cancel { "Cancel" }
                    }
                }
            }
        }
    }
}

/// "env: test AND region: eu" (a filter deleted meanwhile shows by number).
fn logic(t: &SharedToken, filters: &[Filter]) -> String {
    let joiner = format!(" {} ", t.filters_operator.as_str());
    t.filters
        .iter()
        .map(|id| {
            filters.iter().find(|f| f.id == *id).map_or_else(
                || format!("filter {id}"),
                |f| format!("{}: {}", f.field, f.value),
            )
        })
        .collect::<Vec<_>>()
        .join(&joiner)
}

fn filters_section(
    ctx: &Ctx<'_>,
    filters: &[Filter],
    tokens: &[SharedToken],
    retry: Retry,
) -> Markup {
    let typed = |name: &str| retry.map(|(_, f)| f.get(name).to_string());
    html! {
        div.section-head.sub {
            div {
                h2 #token-filters { "Token filters" }
                p.lede {
                    "Each filter is a " code { "field: value" } " pair that a record must match "
                    "exactly (no wildcards). Changes apply to every token using it at its next request."
                }
            }
        }
        form.create.filter id=(NEW_FILTER) method="post" action=(ctx.action("shared/filters")) {
            (csrf_field(ctx.csrf()))
            @if let Some((refusal, _)) = retry { (layout::refusal(refusal)) }
            div.field {
                label for="filter-description" { "Description" }
                input #filter-description type="text" name="description" maxlength="256"
                    value=[typed("description")]
                    placeholder="e.g. test environment" autocomplete="off";
            }
            div.field {
                label for="filter-field" { "Field" }
                input #filter-field type="text" name="field" required maxlength="256"
                    value=[typed("field")]
                    pattern="[a-zA-Z0-9_@.\\-]+" placeholder="env" autocomplete="off"
                    title="Letters, digits and _ @ . - only";
            }
            div.field {
                label for="filter-value" { "Value" }
                input #filter-value type="text" name="value" required maxlength="256"
                    value=[typed("value")]
                    pattern="[a-zA-Z0-9_@.\\-]+" placeholder="test" autocomplete="off"
                    title="Letters, digits and _ @ . - only (an exact value)";
            }
            button.btn.primary type="submit" { "+ Add filter" }
        }
        @if filters.is_empty() {
            p.empty { "No token filters yet." }
        } @else {
            div.table-wrap {
                table.filters.cards {
                    caption.sr-only { "Token filters" }
                    thead { tr {
                        th scope="col" { "Description" }
                        th scope="col" { "Filter" }
                        th scope="col" { "Used by" }
                        th scope="col" { span.sr-only { "Actions" } }
                    } }
                    tbody {
                        @for f in filters {
                            @let users: Vec<String> = tokens.iter()
                                .filter(|t| t.filters.contains(&f.id))
                                .map(|t| format!("“{}”", t.name))
                                .collect();
                            tr id={ "filter-" (f.id) } {
                                td.name { @if f.description.is_empty() { span.muted { "—" } } @else { (f.description) } }
                                td.filter data-label="Filter" { code { (f.field) ": " (f.value) } }
                                td.used-by data-label="Used by" {
                                    @if users.is_empty() { span.muted { "No token" } }
                                    @else { span.clamp title=(users.join(", ")) { (users.join(", ")) } }
                                }
                                td.actions {
                                    (confirm_form(
                                        &ctx.action(&format!("shared/filters/{}/delete", f.id)),
                                        ctx.csrf(),
                                        "Delete",
                                        &format!("Delete token filter {}: {}", f.field, f.value),
                                        &if users.is_empty() {
                                            format!("Delete the token filter “{}: {}”? No shared token uses it.", f.field, f.value)
                                        } else {
                                            format!("Delete the token filter “{}: {}”? These shared tokens use it and lose it at once (a token left without filters reads all of the account's logs):", f.field, f.value)
                                        },
                                        &users,
                                    ))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// === actions ===

/// The expiry a form gives: `None` when left empty.
fn expiry(fields: &Fields) -> Result<Option<i64>, Refusal> {
    fields
        .opt("expires")
        .map(|d| {
            dates::end_of_day(d)
                .ok_or_else(|| Refusal::invalid("the expiration date must be a date (YYYY-MM-DD)"))
        })
        .transpose()
}

fn chosen_filters(fields: &Fields) -> Result<Vec<i64>, Refusal> {
    fields
        .all("filter")
        .map(|f| {
            f.parse()
                .map_err(|_| Refusal::invalid("filters are chosen from the account's filters"))
        })
        .collect()
}

fn operator(fields: &Fields) -> Result<Option<FiltersOperator>, Refusal> {
    match fields.opt("operator") {
        None => Ok(None),
        Some("AND") => Ok(Some(FiltersOperator::And)),
        Some("OR") => Ok(Some(FiltersOperator::Or)),
        Some(_) => Err(Refusal::invalid("filters combine with AND or OR")),
    }
}

async fn create(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path(account): Path<i64>,
    fields: Fields,
) -> Response {
    let form = Some((NEW_SHARED, &fields));
    act(&cp, &visit, account, Tab::Shared, form, async |caller| {
        let filters = chosen_filters(&fields)?;
        let new = NewShared {
            name: fields.get("name"),
            filters: &filters,
            filters_operator: operator(&fields)?,
            // No date: the use case's default lifetime.
            expiration: expiry(&fields)?.map(Some),
            legacy: false,
        };
        let t = usecase::create(&cp, caller, new).await?;
        let warning = if t.filters.is_empty() {
            ": without a filter it reads all of the account's logs"
        } else {
            ""
        };
        Ok(Done::new(
            format!("Shared token “{}” created{warning}", t.name),
            Some(format!("shared-{}", t.id)),
        ))
    })
    .await
}

async fn edit(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
    fields: Fields,
) -> Response {
    let form = edit_form(id);
    let form = Some((form.as_str(), &fields));
    act(&cp, &visit, account, Tab::Shared, form, async |caller| {
        let change = SharedChange {
            filters: Some(chosen_filters(&fields)?),
            filters_operator: operator(&fields)?,
            // Empty keeps the current expiry (a legacy token's none included).
            expiration: expiry(&fields)?.map(Some),
        };
        let t = usecase::update(&cp, caller, id, change).await?;
        Ok(Done::new(
            format!("Shared token “{}” saved", t.name),
            Some(format!("shared-{id}")),
        ))
    })
    .await
}

async fn delete(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
) -> Response {
    act(&cp, &visit, account, Tab::Shared, None, async |caller| {
        let t = usecase::read(&cp, caller, id).await?;
        usecase::delete(&cp, caller, id).await?;
        Ok(Done::new(
            format!(
                "Shared token “{}” deleted: links shared with it stop working",
                t.name
            ),
            None,
        ))
    })
    .await
}

async fn create_filter(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path(account): Path<i64>,
    fields: Fields,
) -> Response {
    let form = Some((NEW_FILTER, &fields));
    act(&cp, &visit, account, Tab::Shared, form, async |caller| {
        let (description, field, value) = (
            fields.get("description").trim(),
            fields.get("field").trim(),
            fields.get("value").trim(),
        );
        let f = usecase::create_filter(&cp, caller, description, field, value).await?;
        Ok(Done::new(
            format!("Token filter “{}: {}” added", f.field, f.value),
            Some(format!("filter-{}", f.id)),
        ))
    })
    .await
}

async fn delete_filter(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
) -> Response {
    act(&cp, &visit, account, Tab::Shared, None, async |caller| {
        let f = usecase::read_filter(&cp, caller, id).await?;
        usecase::delete_filter(&cp, caller, id).await?;
        Ok(Done::new(
            format!("Token filter “{}: {}” deleted", f.field, f.value),
            None,
        ))
    })
    .await
}

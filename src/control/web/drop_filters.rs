//! The Drop filters tab (admins): what the gateways drop before anything is stored. On a
//! log account its log filters (a log type and exact `field: value` conditions, with an
//! optional daily threshold); on a metrics account its metrics filters (label conditions
//! with EQ, NOT_EQ and anchored regular expressions), reached from the main account like
//! its shipping tokens. Each filter shows its conditions, its threshold, its state and
//! what it dropped today as gateways reported it. Create, switch on and off, and delete go
//! through `usecases::log_drop_filters` and `usecases::metrics_drop_filters`, the API's
//! own, so the same checks refuse the same things; a refused form comes back with what was
//! typed.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use maud::{Markup, html};
use serde_json::{Number, Value};

use super::layout::{self, confirm_form, csrf_field};
use super::{Ctx, Done, Fields, Notice, PageRefusal, PageState, Tab, Visit, act, chart};
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules::AccountType;
use crate::control::store::accounts::Account;
use crate::control::store::drop_filters::{Dropped, LogFilter, MetricsFilter};
use crate::control::usecases::callers::Caller;
use crate::control::usecases::log_drop_filters as logs;
use crate::control::usecases::metrics_drop_filters::{self as metrics, MetricsFilterInput, Search};
use crate::filters::logs::{
    ConditionRequest, ConditionValue, LogFilterRequest, MAX_CONDITIONS as MAX_LOG_CONDITIONS,
    MAX_FILTERS_PER_ACCOUNT as MAX_LOG_FILTERS, MAX_THRESHOLD_GB,
};
use crate::filters::metrics::{
    Comparison, DropPolicy, Expression, ExpressionRequest, Filter, FilterRequest, METRIC_NAME,
};

pub fn routes() -> Router<PageState> {
    let mut router = Router::new()
        .route("/accounts/{account}/drop-filters/logs", post(create_log))
        .route(
            "/accounts/{account}/drop-filters/metrics",
            post(create_metrics),
        );
    for which in [Which::Logs, Which::Metrics] {
        let base = format!("/accounts/{{account}}/drop-filters/{}/{{id}}", which.slug());
        let routes = Router::new()
            .route(&format!("{base}/active"), post(set_active))
            .route(&format!("{base}/delete"), post(delete))
            .layer(Extension(which));
        router = router.merge(routes);
    }
    router
}

/// Which of the two kinds of filter a switch or a delete is for.
#[derive(Debug, Clone, Copy)]
enum Which {
    Logs,
    Metrics,
}

impl Which {
    fn slug(self) -> &'static str {
        match self {
            Which::Logs => "logs",
            Which::Metrics => "metrics",
        }
    }

    fn row_id(self, id: i64) -> String {
        match self {
            Which::Logs => log_row_id(id),
            Which::Metrics => metrics_row_id(id),
        }
    }

    /// "Log drop filter “…” deactivated: matching logs are kept".
    fn switched(self, what: &str, on: bool) -> String {
        let (noun, records, done) = match (self, on) {
            (Which::Logs, true) => ("Log", "logs", "activated"),
            (Which::Logs, false) => ("Log", "logs", "deactivated"),
            (Which::Metrics, true) => ("Metrics", "data points", "enabled"),
            (Which::Metrics, false) => ("Metrics", "data points", "disabled"),
        };
        let fate = if on { "dropped" } else { "kept" };
        format!("{noun} drop filter {what} {done}: matching {records} are {fate}")
    }

    fn deleted(self, what: &str) -> String {
        match self {
            Which::Logs => format!("Log drop filter {what} deleted: those logs are kept"),
            Which::Metrics => {
                format!("Metrics drop filter {what} deleted: those data points are kept")
            }
        }
    }
}

/// The ids of the two create forms, which a refusal brings back as they were typed.
const NEW_LOG: &str = "new-log-drop-filter";
const NEW_METRICS: &str = "new-metrics-drop-filter";
/// Condition rows the metrics form offers (more through the API).
const METRICS_ROWS: usize = 4;
/// The most metrics filters the tab lists (an account may have 1,000).
const MAX_LISTED: usize = 1000;
const COMPARISONS: [(Comparison, &str); 4] = [
    (Comparison::Eq, "equals (EQ)"),
    (Comparison::NotEq, "does not equal (NOT_EQ)"),
    (Comparison::RegexMatch, "matches the regex (REGEX_MATCH)"),
    (
        Comparison::RegexNoMatch,
        "does not match the regex (REGEX_NO_MATCH)",
    ),
];

pub async fn content(ctx: &Ctx<'_>, notice: &Notice) -> Result<Markup, Refusal> {
    let account = ctx.account();
    let body = match account.account_type {
        AccountType::Logs => log_section(ctx, notice).await?,
        AccountType::Metrics => metrics_section(ctx, notice).await?,
        AccountType::Tracing | AccountType::Security => html! {},
    };
    Ok(html! {
        div.section-head {
            div {
                h2 { "Drop filters" }
                p.lede {
                    "Gateways drop what an active filter matches before anything is stored: "
                    "it is not forwarded, not shown in live tails and not counted in the "
                    "day's volume, and the sender is answered as if it had been accepted."
                }
            }
        }
        (body)
        (elsewhere(ctx))
    })
}

/// Where this account's other drop filters live: from a main account, its metrics
/// accounts; from an account that holds none, where filters are.
fn elsewhere(ctx: &Ctx<'_>) -> Markup {
    let account = ctx.account();
    let metrics_accounts: Vec<&Account> = ctx
        .reach
        .iter()
        .filter(|a| a.account_type == AccountType::Metrics && a.owner_id == Some(account.id))
        .collect();
    let holds_none = matches!(
        account.account_type,
        AccountType::Tracing | AccountType::Security
    );
    html! {
        @if holds_none || !metrics_accounts.is_empty() {
            div.callout.info {
                @if holds_none {
                    p {
                        strong { (account.name) } " is a " (layout::account_kind(account))
                        ": drop filters belong to log accounts (logs) and metrics accounts "
                        "(metrics)."
                    }
                } @else {
                    p { "Metrics drop filters belong to each metrics account:" }
                }
                @if !metrics_accounts.is_empty() {
                    ul.links {
                        @for a in metrics_accounts {
                            li { a href=(Tab::DropFilters.url(a.id)) {
                                (a.name) "'s metrics drop filters →"
                            } }
                        }
                    }
                }
            }
        }
    }
}

// === log filters ===

async fn log_section(ctx: &Ctx<'_>, notice: &Notice) -> Result<Markup, Refusal> {
    let filters = logs::list(ctx.cp, ctx.caller).await?;
    let dropped = logs::dropped_today(ctx.cp, ctx.caller).await?;
    let retry = notice.retry_of(NEW_LOG);
    let full = filters.len() >= MAX_LOG_FILTERS;
    Ok(html! {
        div.section-head.compact {
            div {
                h3 { "Log drop filters" }
                p.muted {
                    "A log is dropped when its type is the filter's (any type when none is "
                    "set) and every condition holds."
                }
            }
            div.limit {
                span.count { (filters.len()) " of " (MAX_LOG_FILTERS) " filters" }
                span.muted { "active or not" }
            }
        }
        details.add open[filters.is_empty() || retry.is_some()] {
            summary.btn.primary { "+ New log drop filter" }
            (log_form(ctx, retry, full))
        }
        @if filters.is_empty() {
            p.empty { "No log drop filters: every log is kept." }
        } @else {
            (table("Log drop filters", ["Threshold", "Active"], html! {
                @for f in &filters { (log_row(ctx, f, dropped.get(&f.id))) }
            }))
        }
    })
}

fn log_form(ctx: &Ctx<'_>, retry: Option<(&PageRefusal, &Fields)>, full: bool) -> Markup {
    let typed = |name: &str| retry.map(|(_, f)| f.get(name).to_string());
    html! {
        form.stacked.drop-filter id=(NEW_LOG) method="post" action=(ctx.action("drop-filters/logs")) {
            (csrf_field(ctx.csrf()))
            @if let Some((refusal, _)) = retry { (layout::refusal(refusal)) }
            @if full {
                p.hint.warn {
                    "The account has " (MAX_LOG_FILTERS) " filters, the most it may have: "
                    "delete one before adding another."
                }
            }
            div.field {
                label for="drop-log-type" { "Log type " span.muted { "(optional)" } }
                input #drop-log-type type="text" name="logType" maxlength="256"
                    value=[typed("logType")] placeholder="e.g. nginx" autocomplete="off"
                    aria-describedby="drop-log-type-hint";
                p.hint #drop-log-type-hint { "Empty: logs of every type." }
            }
            fieldset.conditions {
                legend { "Field conditions " span.muted { "(1 to " (MAX_LOG_CONDITIONS) ", all must hold)" } }
                p.hint #drop-value-hint {
                    "A value that reads as a JSON number (" code { "200" } ", " code { "1.5" }
                    ") matches that number and never the text “200”; tick “as text” to match "
                    "the text. Any other value matches the same text exactly, case-sensitive. "
                    "A dotted name (" code { "kubernetes.pod" } ") reaches nested fields."
                }
                @for i in 1..=MAX_LOG_CONDITIONS {
                    div.condition {
                        div.field {
                            label for={ "drop-field-" (i) } { "Field " (i) }
                            input id={ "drop-field-" (i) } type="text" name={ "field" (i) }
                                maxlength="256" required[i == 1] autocomplete="off"
                                value=[typed(&format!("field{i}"))]
                                placeholder=[(i == 1).then_some("e.g. env")];
                        }
                        div.field {
                            label for={ "drop-value-" (i) } { "Value " (i) }
                            input id={ "drop-value-" (i) } type="text" name={ "value" (i) }
                                maxlength="1024" required[i == 1] autocomplete="off"
                                value=[typed(&format!("value{i}"))]
                                placeholder=[(i == 1).then_some("e.g. test")]
                                aria-describedby="drop-value-hint";
                        }
                        label.choice {
                            input type="checkbox" name={ "text" (i) } value="1"
                                checked[retry.is_some_and(|(_, f)| f.opt(&format!("text{i}")).is_some())];
                            "as text"
                        }
                    }
                }
            }
            div.field {
                label for="drop-threshold" { "Threshold, GB a day " span.muted { "(optional)" } }
                input #drop-threshold type="number" name="thresholdInGB" min="0"
                    max=(MAX_THRESHOLD_GB) step="any" inputmode="decimal"
                    value=[typed("thresholdInGB")] aria-describedby="drop-threshold-hint";
                p.hint #drop-threshold-hint {
                    "Matching logs pass until they total this much in the UTC day; the rest "
                    "of the day's are dropped. Empty or 0: every matching log is dropped."
                }
            }
            div.field {
                label for="drop-description" { "Description " span.muted { "(optional)" } }
                input #drop-description type="text" name="description" maxlength="256"
                    value=[typed("description")] autocomplete="off";
            }
            div.buttons { button.btn.primary type="submit" { "Add log drop filter" } }
        }
    }
}

fn log_row(ctx: &Ctx<'_>, f: &LogFilter, dropped: Option<&Dropped>) -> Markup {
    let row_id = log_row_id(f.id);
    let what = log_filter_words(f);
    let base = format!("drop-filters/logs/{}", f.id);
    html! {
        tr id=(row_id) .disabled[!f.active] {
            td.drops {
                @if let Some(d) = &f.rule.description { div.name { (d) } }
                div.log-type {
                    span.muted { "Logs of " }
                    @match &f.rule.log_type {
                        Some(t) => { "type " code { (t) } }
                        None => { "any type" }
                    }
                    span.muted { " where" }
                }
                ul.conditions {
                    @for c in &f.rule.field_conditions {
                        li { code { (c.field_name) " = " (condition_value(&c.value)) } }
                    }
                }
            }
            td.threshold data-label="Threshold" {
                @if f.rule.threshold_gb > 0.0 {
                    "after " (chart::gb_of(f.rule.threshold_gb)) " a day"
                } @else {
                    span.muted { "none: all dropped" }
                }
            }
            td.dropped data-label="Dropped today" { (dropped_today(dropped, "log", "logs")) }
            td.enabled data-label="Active" {
                (switch(ctx, &format!("{base}/active"), f.active, "Active", &what))
            }
            td.actions {
                (confirm_form(
                    &ctx.action(&format!("{base}/delete")),
                    ctx.csrf(),
                    "Delete",
                    &format!("Delete the log drop filter {what}"),
                    &format!("Delete the log drop filter {what}? These logs stop being dropped: \
                              gateways store them and count them in the day's volume again."),
                    &[],
                ))
            }
        }
    }
}

fn log_row_id(id: i64) -> String {
    format!("drop-filter-{id}")
}

/// A log filter in a few words: its description, else its conditions (and type).
fn log_filter_words(f: &LogFilter) -> String {
    let conditions = f
        .rule
        .field_conditions
        .iter()
        .map(|c| format!("{} = {}", c.field_name, condition_value(&c.value)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let of_type = f
        .rule
        .log_type
        .as_deref()
        .map(|t| format!(" on logs of type {t}"))
        .unwrap_or_default();
    match &f.rule.description {
        Some(d) => format!("“{d}” ({conditions}{of_type})"),
        None => format!("“{conditions}”{of_type}"),
    }
}

/// A condition's value as it compares: a number bare, text in quotes.
fn condition_value(value: &ConditionValue) -> String {
    match value {
        ConditionValue::Number(n) => n.to_string(),
        ConditionValue::Text(t) => format!("\"{t}\""),
    }
}

/// The log filter the create form describes, checked as the API checks it.
fn log_request(fields: &Fields) -> Result<LogFilterRequest, Refusal> {
    let mut conditions = Vec::new();
    for i in 1..=MAX_LOG_CONDITIONS {
        let name = fields.get(&format!("field{i}")).trim();
        let value = fields.get(&format!("value{i}"));
        if name.is_empty() && value.is_empty() {
            continue;
        }
        let as_text = fields.opt(&format!("text{i}")).is_some();
        conditions.push(ConditionRequest {
            field_name: Some(name.to_string()),
            value: typed_value(value, as_text),
        });
    }
    let threshold_in_gb = match fields.opt("thresholdInGB").map(str::trim) {
        None => None,
        Some(text) => Some(text.parse::<f64>().map_err(|_| {
            Refusal::invalid("thresholdInGB: must be a number of GB (empty for none)")
        })?),
    };
    Ok(LogFilterRequest {
        log_type: fields.opt("logType").map(|t| t.trim().to_string()),
        description: fields.opt("description").map(|d| d.trim().to_string()),
        field_conditions: Some(conditions),
        threshold_in_gb,
    })
}

/// A typed value as a condition takes it: a JSON number when it reads as one (and is not
/// asked to be text), else the text as typed. An empty value is no value (refused).
fn typed_value(value: &str, as_text: bool) -> Value {
    if value.is_empty() {
        return Value::Null;
    }
    if !as_text
        && value.trim() == value
        && let Ok(n) = serde_json::from_str::<Number>(value)
    {
        return Value::Number(n);
    }
    Value::String(value.to_string())
}

async fn create_log(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path(account): Path<i64>,
    fields: Fields,
) -> Response {
    let form = Some((NEW_LOG, &fields));
    act(
        &cp,
        &visit,
        account,
        Tab::DropFilters,
        form,
        async |caller| {
            let rule = log_request(&fields)?.check()?;
            let created = logs::create(&cp, caller, rule).await?;
            Ok(Done::new(
                format!(
                    "Log drop filter {} created: matching logs are dropped from now on",
                    log_filter_words(&created)
                ),
                Some(log_row_id(created.id)),
            ))
        },
    )
    .await
}

// === metrics filters ===

async fn metrics_section(ctx: &Ctx<'_>, notice: &Notice) -> Result<Markup, Refusal> {
    let only_this = Search {
        account_ids: vec![ctx.account().id],
        ..Search::default()
    };
    let (_, filters) = metrics::search(ctx.cp, ctx.caller, &only_this, 0, MAX_LISTED).await?;
    let dropped = metrics::dropped_today(ctx.cp, ctx.caller).await?;
    let retry = notice.retry_of(NEW_METRICS);
    Ok(html! {
        div.section-head.compact {
            div {
                h3 { "Metrics drop filters" }
                p.muted {
                    "A data point is dropped when its series meets every condition of an "
                    "enabled filter. " code { (METRIC_NAME) } " is the metric's name; a label "
                    "a series lacks reads as empty; regular expressions match the whole value, "
                    "as Prometheus anchors them."
                }
            }
        }
        details.add open[filters.is_empty() || retry.is_some()] {
            summary.btn.primary { "+ New metrics drop filter" }
            (metrics_form(ctx, retry))
        }
        @if filters.is_empty() {
            p.empty { "No metrics drop filters: every data point is kept." }
        } @else {
            (table("Metrics drop filters", ["Policy", "Enabled"], html! {
                @for f in &filters { (metrics_row(ctx, f, dropped.get(&f.id))) }
            }))
        }
    })
}

fn metrics_form(ctx: &Ctx<'_>, retry: Option<(&PageRefusal, &Fields)>) -> Markup {
    let typed = |name: &str| retry.map(|(_, f)| f.get(name).to_string());
    let policy = retry.map_or(DropPolicy::default().as_str(), |(_, f)| f.get("dropPolicy"));
    html! {
        form.stacked.drop-filter id=(NEW_METRICS) method="post" action=(ctx.action("drop-filters/metrics")) {
            (csrf_field(ctx.csrf()))
            @if let Some((refusal, _)) = retry { (layout::refusal(refusal)) }
            div.field {
                label for="drop-name" { "Name " span.muted { "(optional)" } }
                input #drop-name type="text" name="name" maxlength="256"
                    value=[typed("name")] placeholder="e.g. debug histograms" autocomplete="off";
            }
            fieldset.conditions {
                legend { "Conditions " span.muted { "(at least one, all must hold)" } }
                @for i in 1..=METRICS_ROWS {
                    div.condition.metrics {
                        div.field {
                            label for={ "drop-label-" (i) } { "Label " (i) }
                            input id={ "drop-label-" (i) } type="text" name={ "label" (i) }
                                maxlength="256" required[i == 1] autocomplete="off"
                                value=[typed(&format!("label{i}"))]
                                placeholder=[(i == 1).then_some(METRIC_NAME)];
                        }
                        div.field {
                            label for={ "drop-comparison-" (i) } { "Comparison " (i) }
                            @let chosen = typed(&format!("comparison{i}"));
                            select id={ "drop-comparison-" (i) } name={ "comparison" (i) } {
                                @for (c, words) in COMPARISONS {
                                    option value=(c.as_str())
                                        selected[chosen.as_deref() == Some(c.as_str())] { (words) }
                                }
                            }
                        }
                        div.field {
                            label for={ "drop-mvalue-" (i) } { "Value " (i) }
                            input id={ "drop-mvalue-" (i) } type="text" name={ "value" (i) }
                                maxlength="1024" required[i == 1] autocomplete="off"
                                value=[typed(&format!("value{i}"))]
                                placeholder=[(i == 1).then_some("e.g. http_request_duration_seconds_bucket")];
                        }
                    }
                }
            }
            fieldset {
                legend { "Drop policy" }
                @for (p, words) in [
                    (DropPolicy::BeforeProcessing, "before processing (DROP_BEFORE_PROCESSING)"),
                    (DropPolicy::BeforeStoring, "before storing (DROP_BEFORE_STORING)"),
                ] {
                    label.choice {
                        input type="radio" name="dropPolicy" value=(p.as_str())
                            checked[policy == p.as_str()];
                        (words)
                    }
                }
                p.hint { "Either way the gateway drops the data point; the policy is kept for Logz.io's clients that set it." }
            }
            div.buttons { button.btn.primary type="submit" { "Add metrics drop filter" } }
        }
    }
}

fn metrics_row(ctx: &Ctx<'_>, f: &MetricsFilter, dropped: Option<&Dropped>) -> Markup {
    let row_id = metrics_row_id(f.id);
    let what = metrics_filter_words(f);
    let base = format!("drop-filters/metrics/{}", f.id);
    html! {
        tr id=(row_id) .disabled[!f.active] {
            td.drops {
                @if let Some(name) = &f.name { div.name { (name) } }
                code.expression { (expression(&f.filter)) }
            }
            td.policy data-label="Policy" {
                @match f.drop_policy {
                    DropPolicy::BeforeProcessing => "before processing",
                    DropPolicy::BeforeStoring => "before storing",
                }
            }
            td.dropped data-label="Dropped today" { (dropped_today(dropped, "data point", "data points")) }
            td.enabled data-label="Enabled" {
                (switch(ctx, &format!("{base}/active"), f.active, "Enabled", &what))
            }
            td.actions {
                (confirm_form(
                    &ctx.action(&format!("{base}/delete")),
                    ctx.csrf(),
                    "Delete",
                    &format!("Delete the metrics drop filter {what}"),
                    &format!("Delete the metrics drop filter {what}? These data points stop \
                              being dropped: gateways forward and store them again."),
                    &[],
                ))
            }
        }
    }
}

fn metrics_row_id(id: i64) -> String {
    format!("metrics-drop-filter-{id}")
}

/// A metrics filter in a few words: its name, else its expression.
fn metrics_filter_words(f: &MetricsFilter) -> String {
    match &f.name {
        Some(name) => format!("“{name}”"),
        None => format!("“{}”", expression(&f.filter)),
    }
}

/// An expression as Prometheus writes label matchers: `__name__ = "x" AND env =~ "dev.*"`,
/// nested groups in parentheses.
fn expression(filter: &Filter) -> String {
    filter
        .expression
        .iter()
        .map(|e| match e {
            Expression::Group(g) => format!("({})", expression(g)),
            Expression::Condition(c) => {
                let op = match c.comparison_filter {
                    Comparison::Eq => "=",
                    Comparison::NotEq => "!=",
                    Comparison::RegexMatch => "=~",
                    Comparison::RegexNoMatch => "!~",
                };
                format!("{} {op} \"{}\"", c.name, c.value)
            }
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The metrics filter the create form describes, checked as the API checks it.
fn metrics_input(caller: &Caller, fields: &Fields) -> Result<MetricsFilterInput, Refusal> {
    let mut conditions = Vec::new();
    for i in 1..=METRICS_ROWS {
        let label = fields.get(&format!("label{i}")).trim();
        let value = fields.get(&format!("value{i}"));
        if label.is_empty() && value.is_empty() {
            continue;
        }
        conditions.push(ExpressionRequest {
            name: Some(label.to_string()),
            value: Some(value.to_string()),
            comparison_filter: Some(fields.get(&format!("comparison{i}")).to_string()),
            ..ExpressionRequest::default()
        });
    }
    let filter = FilterRequest {
        operator: Some("AND".into()),
        expression: Some(conditions),
    };
    Ok(MetricsFilterInput {
        account_id: caller.account.id,
        name: fields.opt("name").map(|n| n.trim().to_string()),
        active: None,
        drop_policy: DropPolicy::check(fields.opt("dropPolicy"))?,
        filter: filter.check()?,
    })
}

async fn create_metrics(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path(account): Path<i64>,
    fields: Fields,
) -> Response {
    let form = Some((NEW_METRICS, &fields));
    act(
        &cp,
        &visit,
        account,
        Tab::DropFilters,
        form,
        async |caller| {
            let input = metrics_input(caller, &fields)?;
            let created = metrics::create(&cp, caller, input).await?;
            Ok(Done::new(
                format!(
                    "Metrics drop filter {} created: matching data points are dropped from now on",
                    metrics_filter_words(&created)
                ),
                Some(metrics_row_id(created.id)),
            ))
        },
    )
    .await
}

// === shared by both ===

/// Switches a filter on or off: a log filter is activated or deactivated, a metrics
/// filter enabled or disabled.
async fn set_active(
    State(cp): State<Arc<ControlPlane>>,
    Extension(which): Extension<Which>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
    fields: Fields,
) -> Response {
    act(
        &cp,
        &visit,
        account,
        Tab::DropFilters,
        None,
        async |caller| {
            let active = on_or_off(&fields, "active")?;
            let what = match which {
                Which::Logs => log_filter_words(&logs::set_active(&cp, caller, id, active).await?),
                Which::Metrics => {
                    metrics_filter_words(&metrics::set_active(&cp, caller, id, active).await?)
                }
            };
            Ok(Done::new(
                which.switched(&what, active),
                Some(which.row_id(id)),
            ))
        },
    )
    .await
}

async fn delete(
    State(cp): State<Arc<ControlPlane>>,
    Extension(which): Extension<Which>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
) -> Response {
    act(
        &cp,
        &visit,
        account,
        Tab::DropFilters,
        None,
        async |caller| {
            let what = match which {
                Which::Logs => log_filter_words(&logs::delete(&cp, caller, id).await?),
                Which::Metrics => {
                    let f = metrics::read(&cp, caller, id).await?;
                    metrics::delete(&cp, caller, id).await?;
                    metrics_filter_words(&f)
                }
            };
            Ok(Done::new(which.deleted(&what), None))
        },
    )
    .await
}

/// A list of filters: what each drops, `columns[0]` (threshold or policy), what it dropped
/// today, `columns[1]` (its state) and its actions.
fn table(caption: &str, columns: [&str; 2], rows: Markup) -> Markup {
    html! {
        div.table-wrap {
            table.drop-filters.cards {
                caption.sr-only { (caption) }
                thead { tr {
                    th scope="col" { "Drops" }
                    th scope="col" { (columns[0]) }
                    th scope="col" { "Dropped today" }
                    th scope="col" { (columns[1]) }
                    th scope="col" { span.sr-only { "Actions" } }
                } }
                tbody { (rows) }
            }
        }
    }
}

/// What a filter dropped today, in records and bytes.
fn dropped_today(dropped: Option<&Dropped>, one: &str, many: &str) -> Markup {
    let d = dropped.copied().unwrap_or_default();
    html! {
        @if d.records == 0 {
            span.muted { "nothing" }
        } @else {
            strong { (chart::grouped(d.records)) } " " (if d.records == 1 { one } else { many })
            br;
            span.muted { (bytes(d.bytes)) }
        }
    }
}

/// Bytes as people read them (10^3 steps, as the volume counts GB).
fn bytes(n: i64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} bytes");
    }
    let mut value = chart::float(n);
    let mut unit = "bytes";
    for u in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    if value < 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.0} {unit}")
    }
}

/// A filter's on/off switch: a one-button form that posts the other state.
fn switch(ctx: &Ctx<'_>, action: &str, on: bool, state: &str, what: &str) -> Markup {
    html! {
        form method="post" action=(ctx.action(action)) {
            (csrf_field(ctx.csrf()))
            input type="hidden" name="active" value=(if on { "false" } else { "true" });
            button.switch type="submit" role="switch" aria-checked=(on)
                aria-label={ (state) ": drop filter " (what) } {
                span.knob aria-hidden="true" {}
            }
            span.state aria-hidden="true" { @if on { "On" } @else { "Off" } }
        }
    }
}

fn on_or_off(fields: &Fields, name: &str) -> Result<bool, Refusal> {
    match fields.get(name) {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Refusal::invalid(format!("{name} must be true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::metrics::Operator;

    #[test]
    fn a_value_that_reads_as_a_number_is_one_unless_asked_for_text() {
        assert_eq!(typed_value("200", false), Value::from(200));
        assert_eq!(typed_value("1.5", false), serde_json::json!(1.5));
        assert_eq!(typed_value("200", true), Value::from("200"));
        assert_eq!(typed_value(" 200", false), Value::from(" 200"));
        assert_eq!(typed_value("test", false), Value::from("test"));
        assert_eq!(typed_value("NaN", false), Value::from("NaN"));
        assert_eq!(typed_value("", false), Value::Null);
    }

    #[test]
    fn blank_condition_rows_are_skipped_and_the_rest_checked_as_the_api_checks() {
        let posted = Fields::parse(
            b"logType=nginx&field1=status&value1=500&field2=&value2=&field3=env&value3=test",
        );
        let rule = log_request(&posted).unwrap().check().unwrap();
        assert_eq!(rule.log_type.as_deref(), Some("nginx"));
        assert_eq!(rule.field_conditions.len(), 2);
        assert_eq!(rule.threshold_gb, 0.0);
        let no_name = Fields::parse(b"field1=&value1=x");
        let refused = log_request(&no_name).unwrap().check().unwrap_err();
        assert_eq!(refused.field, "fieldConditions[0].fieldName");
        let bad = Fields::parse(b"field1=a&value1=b&thresholdInGB=lots");
        assert!(log_request(&bad).is_err());
    }

    #[test]
    fn expressions_read_as_label_matchers() {
        let condition = |name: &str, value: &str, c| {
            Expression::Condition(crate::filters::metrics::Condition {
                name: name.into(),
                value: value.into(),
                comparison_filter: c,
            })
        };
        let filter = Filter {
            operator: Operator::And,
            expression: vec![
                condition("__name__", "up", Comparison::Eq),
                Expression::Group(Filter {
                    operator: Operator::And,
                    expression: vec![condition("env", "dev.*", Comparison::RegexNoMatch)],
                }),
            ],
        };
        assert_eq!(
            expression(&filter),
            r#"__name__ = "up" AND (env !~ "dev.*")"#
        );
    }

    #[test]
    fn bytes_read_in_thousands() {
        assert_eq!(bytes(120), "120 bytes");
        assert_eq!(bytes(1_500), "1.5 kB");
        assert_eq!(bytes(42_000_000), "42 MB");
        assert_eq!(bytes(3_000_000_000), "3.0 GB");
    }
}

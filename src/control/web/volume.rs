//! The Volume tab (admins): today's volume of the account, and on a main account of each
//! of its sub-accounts, against the most it may index a day (docs/volume.md); a chart of
//! the last 30 UTC days with the same numbers in a table; a banner for a day past the soft
//! limit or capped; and on a main account, each sub-account's volume settings to edit.
//! Edits go through `sub_accounts::update_sub_account`, so the API's rules and refusals
//! (400 `volume/OVER_PLAN`) apply; a refused edit comes back with its form open, the
//! refusal in it, and what was typed kept.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use maud::{Markup, html};

use super::chart::{self, Day};
use super::layout::{self, badge, csrf_field};
use super::{Ctx, Done, Fields, Notice, PageRefusal, PageState, Tab, Visit, act};
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::accounts::SubAccountSettings;
use crate::control::usecases::callers::Caller;
use crate::control::usecases::sub_accounts::{self as subs, SubAccountFields};
use crate::control::usecases::volume_overview::{self as usecase, AccountVolume, Volume};
use crate::control::volume::{Allocation, BYTES_PER_GB};

pub fn routes() -> Router<PageState> {
    Router::new().route("/accounts/{account}/volume/{id}", post(edit))
}

/// A refused edit being shown again: its refusal and what was typed into form `form`.
struct Retry<'a> {
    form: &'a str,
    refusal: &'a PageRefusal,
    fields: &'a Fields,
}

/// The id of sub-account `id`'s settings form.
fn settings_form(id: i64) -> String {
    format!("volume-{id}-settings")
}

pub async fn content(ctx: &Ctx<'_>, notice: &Notice) -> Result<Markup, Refusal> {
    let overview = usecase::overview(ctx.cp, ctx.caller).await?;
    let retry = match notice {
        Notice::Retry {
            refusal,
            form,
            fields,
        } => Some(Retry {
            form,
            refusal,
            fields,
        }),
        _ => None,
    };
    // A refusal about an account the tab doesn't show (deleted meanwhile) goes on top.
    let unplaced = retry.as_ref().filter(|r| {
        !overview.manages_subs
            || !overview
                .accounts
                .iter()
                .any(|a| settings_form(a.account.id) == r.form)
    });
    Ok(html! {
        div.section-head {
            div {
                h2 { "Volume" }
                p.lede {
                    "The bytes of accepted log records per UTC day (1 GB = 10"
                    sup { "9" } " bytes), against the most each account may index a day. "
                    "Days turn at 00:00 UTC."
                }
            }
        }
        @if let Some(r) = unplaced { (layout::refusal(r.refusal)) }
        @for a in &overview.accounts {
            (card(ctx, &overview, a, retry.as_ref().filter(|r| r.form == settings_form(a.account.id))))
        }
    })
}

/// One account: today against its volume, the day's banners, the chart and its numbers,
/// and (a sub-account on its main account's tab) the settings form.
fn card(
    ctx: &Ctx<'_>,
    overview: &usecase::VolumeOverview,
    a: &AccountVolume,
    retry: Option<&Retry>,
) -> Markup {
    let id = a.account.id;
    let most = a.volume.most_gb().map(|gb| gb * BYTES_PER_GB);
    let today = a.today_bytes(overview.today_ms);
    let days = chart::last_days(overview.today_ms, overview.days, &a.daily_bytes);
    let editable = overview.manages_subs && a.account.is_sub_account();
    html! {
        section.volume-card id={ "volume-" (id) } aria-labelledby={ "volume-" (id) "-name" } {
            div.card-head {
                div {
                    h3 id={ "volume-" (id) "-name" } { (a.account.name) " " (kind_badge(&a.volume)) }
                    p.muted.small { (layout::account_kind(&a.account)) " · account " (id) }
                }
                (today_figure(chart::float(today), most))
            }
            (banners(a))
            p.terms { (terms(&a.volume, a.soft_limit_gb())) }
            figure.usage {
                (chart::svg(id, &a.account.name, &days, most))
                figcaption.legend {
                    span { span.key.bars aria-hidden="true" {} "bytes per UTC day" }
                    @if let Some(most) = most {
                        @if days.iter().any(|d| chart::float(d.bytes) > most) {
                            span { span.key.over aria-hidden="true" {} "over the daily volume" }
                        }
                        span { span.key.line aria-hidden="true" {} "daily volume" }
                    }
                }
            }
            (numbers(&a.account.name, &days, most))
            @if editable && let Some(settings) = &a.settings {
                (edit_form(ctx, a, settings, retry))
            }
        }
    }
}

fn kind_badge(volume: &Volume) -> Markup {
    match volume {
        Volume::Main { .. } => badge("info", "Main"),
        Volume::Sub {
            allocation: Allocation::Fixed { .. },
            ..
        } => badge("muted", "Fixed"),
        Volume::Sub { .. } => badge("ok", "Flexible"),
        Volume::Unlimited => badge("muted", "No volume"),
    }
}

/// "3.2 GB of 10 GB today · 32 %", with a meter when there is a volume to fill.
fn today_figure(today: f64, most: Option<f64>) -> Markup {
    html! {
        div.today {
            p {
                strong.amount { (chart::gb(today)) }
                @match most {
                    Some(most) => { " of " (chart::gb(most)) " today" }
                    None => { " today" }
                }
                @if let Some(share) = chart::percent(today, most) {
                    span.muted { " · " (share) }
                }
            }
            @if let Some(most) = most.filter(|m| *m > 0.0) {
                meter min="0" max=(most) value=(today.min(most))
                    aria-label="Today's volume against the daily volume" {}
            }
        }
    }
}

/// The day's banners: past the soft limit, capped. Words and a symbol carry them, not a
/// colour.
fn banners(a: &AccountVolume) -> Markup {
    html! {
        @if let Some(at) = a.today.capped_at_ms {
            div.banner.capped role="status" {
                span.symbol aria-hidden="true" { "■" }
                p {
                    strong { "Capped today" }
                    " — logs are accepted and not forwarded until 00:00 UTC. "
                    span.muted { "Since " (layout::time(at)) "." }
                }
            }
        }
        @if let Some(at) = a.today.soft_limit_at_ms {
            div.banner.soft role="status" {
                span.symbol aria-hidden="true" { "▲" }
                p {
                    strong { "Soft limit crossed today" }
                    @if let Some(gb) = a.soft_limit_gb() { " (" (chart::gb_of(gb)) ")" }
                    " — a warning only: nothing is dropped. "
                    span.muted { "At " (layout::time(at)) "." }
                }
            }
        }
    }
}

/// What the account's volume is made of, in words.
fn terms(volume: &Volume, soft_limit_gb: Option<f64>) -> Markup {
    let soft = soft_limit_gb.map(chart::gb_of);
    html! {
        @match *volume {
            Volume::Main { plan_gb: Some(plan), shared_gb } => {
                "Plan: " (chart::gb_of(plan)) " a day. The shared pool left by the sub-accounts' \
                 fixed and reserved volumes, " (chart::gb_of(shared_gb.unwrap_or(plan)))
                ", is what this account and the flexible sub-accounts draw on."
            }
            Volume::Main { plan_gb: None, .. } => {
                "No plan volume is set: no daily volume limits this account or its flexible \
                 sub-accounts. The operator sets it (totalTimeBasedDailyGB)."
            }
            Volume::Sub { allocation: Allocation::Fixed { daily_gb }, .. } => {
                "Fixed: " (chart::gb_of(daily_gb)) " a day, reserved for it out of the plan."
            }
            Volume::Sub { allocation: Allocation::Flexible { reserved_gb, cap_gb }, shared_gb } => {
                "Flexible: " (chart::gb_of(reserved_gb)) " reserved"
                @if let Some(pool) = shared_gb { ", then the shared pool (" (chart::gb_of(pool)) ")" }
                @match cap_gb {
                    Some(cap) => { ", capped at " (chart::gb_of(cap)) "." }
                    None if shared_gb.is_some() => { "; no cap of its own." }
                    None => { "; no cap, and no plan volume: nothing limits it." }
                }
            }
            Volume::Unlimited => {
                "This account has no daily volume of its own; its bytes are counted."
            }
        }
        @if let Some(soft) = soft { " Soft limit: " (soft) "." }
    }
}

/// The chart's numbers as a table, for screen readers and anyone who wants them.
fn numbers(name: &str, days: &[Day], most: Option<f64>) -> Markup {
    html! {
        details.numbers {
            summary { "Daily numbers" }
            div.table-wrap {
                table {
                    caption { "Bytes per UTC day of " (name) ", the last " (days.len()) " days" }
                    thead { tr {
                        th scope="col" { "Day (UTC)" }
                        th scope="col" { "Volume" }
                        th scope="col" { "Bytes" }
                        @if most.is_some() { th scope="col" { "Of the daily volume" } }
                    } }
                    tbody {
                        @for d in days.iter().rev() {
                            tr {
                                th scope="row" { (super::dates::date(d.start_ms)) }
                                td { (chart::gb(chart::float(d.bytes))) }
                                td.num { (chart::grouped(d.bytes)) }
                                @if most.is_some() {
                                    td { (chart::percent(chart::float(d.bytes), most).unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A sub-account's volume settings, as its main account's admins change them.
fn edit_form(
    ctx: &Ctx<'_>,
    a: &AccountVolume,
    s: &SubAccountSettings,
    retry: Option<&Retry>,
) -> Markup {
    let id = a.account.id;
    let field = |name: &str, current: Option<f64>| match retry {
        Some(r) => r.fields.get(name).to_string(),
        None => current.map(|gb| gb.to_string()).unwrap_or_default(),
    };
    let flexible = match retry {
        Some(r) => r.fields.get("isFlexible") == "true",
        None => s.extra.is_flexible,
    };
    let input_id = |name: &str| format!("volume-{id}-{name}");
    let inputs = [
        (
            "maxDailyGB",
            "Max daily GB",
            field("maxDailyGB", s.max_daily_gb),
            "Fixed: its daily volume. Flexible: its cap; 0 for none.",
        ),
        (
            "reservedDailyGB",
            "Reserved daily GB",
            field("reservedDailyGB", s.extra.reserved_daily_gb),
            "Flexible: guaranteed to it out of the plan.",
        ),
        (
            "softLimitGB",
            "Soft limit GB",
            field("softLimitGB", s.extra.soft_limit_gb),
            "A warning once a day; 0 for none.",
        ),
    ];
    html! {
        details.edit-volume open[retry.is_some() || ctx.edit == Some(id)] {
            summary { "Edit volume settings" }
            form.volume-form id=(settings_form(id)) method="post" action=(ctx.action(&format!("volume/{id}")))
                aria-label={ "Volume settings of " (a.account.name) } {
                (csrf_field(ctx.csrf()))
                @if let Some(r) = retry { (layout::refusal(r.refusal)) }
                fieldset.kind {
                    legend { "Type" }
                    label.choice {
                        input type="radio" name="isFlexible" value="false" checked[!flexible];
                        "Fixed" span.muted { " — its own daily volume" }
                    }
                    label.choice {
                        input type="radio" name="isFlexible" value="true" checked[flexible];
                        "Flexible" span.muted { " — reserved, then the shared pool" }
                    }
                }
                div.fields {
                    @for (i, (name, label, value, hint)) in inputs.iter().enumerate() {
                        div.field {
                            label for=(input_id(name)) { (label) }
                            input id=(input_id(name)) type="number" name=(name) value=(value)
                                min="0" step="any" inputmode="decimal"
                                autofocus[i == 0 && retry.is_some()]
                                aria-describedby={ (input_id(name)) "-hint" };
                            p.hint id={ (input_id(name)) "-hint" } { (hint) }
                        }
                    }
                }
                div.buttons {
                    button.btn.primary type="submit" { "Save" }
                }
            }
        }
    }
}

// === actions ===

async fn edit(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
    fields: Fields,
) -> Response {
    // Saved: back to the account's card; refused: its form again, as it was typed.
    let form = settings_form(id);
    let form = Some((form.as_str(), &fields));
    act(&cp, &visit, account, Tab::Volume, form, async |caller| {
        let name = save(&cp, caller, id, &fields).await?;
        Ok(Done::new(
            format!("Volume settings of {name} saved"),
            Some(format!("volume-{id}")),
        ))
    })
    .await
}

/// Saves the posted settings; the sub-account's name, for the page to say.
async fn save(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
    fields: &Fields,
) -> Result<String, Refusal> {
    let current = subs::read_sub_account(cp, caller, id).await?.sub;
    let changes = changes(&current.settings, fields)?;
    subs::update_sub_account(cp, caller, id, None, changes).await?;
    Ok(current.name)
}

/// The posted settings, each given to the use case only where it differs from `current`:
/// a refusal then names a field the person changed, and the others stay as they are. A
/// blank number is 0 (no cap, no soft limit), as the hints say; a field not posted at all
/// is left as it is.
fn changes(current: &SubAccountSettings, fields: &Fields) -> Result<SubAccountFields, Refusal> {
    let is_flexible = match fields.get("isFlexible") {
        "true" => true,
        "false" => false,
        _ => return Err(Refusal::invalid("isFlexible must be fixed or flexible")),
    };
    let changed = |name: &str, now: Option<f64>| -> Result<Option<f64>, Refusal> {
        let Some(text) = fields.all(name).next().map(str::trim) else {
            return Ok(None);
        };
        let gb = if text.is_empty() {
            0.0
        } else {
            text.parse::<f64>()
                .map_err(|_| Refusal::invalid(format!("{name} must be a number of GB")))?
        };
        Ok((gb != now.unwrap_or(0.0)).then_some(gb))
    };
    Ok(SubAccountFields {
        is_flexible: (is_flexible != current.extra.is_flexible).then_some(is_flexible),
        max_daily_gb: changed("maxDailyGB", current.max_daily_gb)?,
        reserved_daily_gb: changed("reservedDailyGB", current.extra.reserved_daily_gb)?,
        soft_limit_gb: changed("softLimitGB", current.extra.soft_limit_gb)?,
        ..SubAccountFields::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SubAccountSettings {
        let mut s = SubAccountSettings {
            max_daily_gb: Some(50.0),
            ..SubAccountSettings::default()
        };
        s.extra.is_flexible = true;
        s.extra.reserved_daily_gb = Some(20.0);
        s
    }

    #[test]
    fn only_changed_settings_reach_the_use_case() {
        let posted =
            Fields::parse(b"isFlexible=true&maxDailyGB=50&reservedDailyGB=25.5&softLimitGB=");
        let c = changes(&settings(), &posted).unwrap();
        assert_eq!(c.is_flexible, None);
        assert_eq!(c.max_daily_gb, None, "unchanged");
        assert_eq!(c.reserved_daily_gb, Some(25.5));
        assert_eq!(c.soft_limit_gb, None, "blank and none are the same");

        let posted = Fields::parse(b"isFlexible=false&maxDailyGB=&reservedDailyGB=20");
        let c = changes(&settings(), &posted).unwrap();
        assert_eq!(c.is_flexible, Some(false));
        assert_eq!(c.max_daily_gb, Some(0.0), "blank is 0");
        assert_eq!(c.soft_limit_gb, None, "not posted: left as it is");
    }

    #[test]
    fn what_is_not_a_number_is_refused_naming_the_field() {
        let posted = Fields::parse(b"isFlexible=true&maxDailyGB=lots");
        let err = changes(&settings(), &posted).err().expect("refused");
        assert_eq!(err.to_string(), "maxDailyGB must be a number of GB");
        let posted = Fields::parse(b"maxDailyGB=1");
        assert!(changes(&settings(), &posted).is_err(), "no type");
    }
}

//! The Volume tab (admins): today's volume of the account, and on a main account of each
//! of its sub-accounts, against the most it may index a day (docs/volume.md); a chart of
//! the last 30 UTC days with the same numbers in a table; a banner for a day past the soft
//! limit or capped.

use maud::{Markup, html};

use super::chart::{self, Day};
use super::layout::{self, badge};
use super::{Ctx, Notice};
use crate::control::refusal::Refusal;
use crate::control::usecases::volume_overview::{self as usecase, AccountVolume, Volume};
use crate::control::volume::{Allocation, BYTES_PER_GB};

pub async fn content(ctx: &Ctx<'_>, _notice: &Notice) -> Result<Markup, Refusal> {
    let overview = usecase::overview(ctx.cp, ctx.caller).await?;
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
        @for a in &overview.accounts {
            (card(&overview, a))
        }
    })
}

/// One account: today against its volume, the day's banners, the chart and its numbers.
fn card(overview: &usecase::VolumeOverview, a: &AccountVolume) -> Markup {
    let id = a.account.id;
    let most = a.volume.most_gb().map(|gb| gb * BYTES_PER_GB);
    let today = a.today_bytes(overview.today_ms);
    let days = chart::last_days(overview.today_ms, overview.days, &a.daily_bytes);
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

//! The Volume tab's usage chart, drawn on the server as inline SVG (no script): one bar
//! per UTC day, oldest first, and a dashed line at the account's daily volume. It reads
//! without colour: bars are outlined and hatched (a day over the volume cross-hatched), the
//! line is dashed and labelled, and each day's numbers are its `<title>` (shown on hover).
//! The tab puts the same numbers in a table for screen readers; the SVG itself is one
//! labelled image.
//!
//! Horizontal positions are percentages and vertical ones pixels, so the chart takes the
//! panel's width at any screen size without stretching its text or strokes (the page's
//! Content-Security-Policy allows no inline style, and no script sizes it).

use maud::{Markup, html};

use super::dates;
use crate::clock::DAY_MS;
use crate::control::volume::BYTES_PER_GB;

/// One UTC day's volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    /// The day's midnight (UTC), epoch ms.
    pub start_ms: i64,
    pub bytes: i64,
}

/// The `n` UTC days ending with the one starting at `today_ms`, oldest first, from the
/// days gateways reported (`(day's midnight, bytes)`): a day without a report is 0.
pub fn last_days(today_ms: i64, n: usize, reported: &[(i64, i64)]) -> Vec<Day> {
    let first = today_ms - DAY_MS * i64::try_from(n.saturating_sub(1)).unwrap_or(0);
    (0..n)
        .scan(first, |start, _| {
            let day = *start;
            *start += DAY_MS;
            Some(day)
        })
        .map(|start_ms| Day {
            start_ms,
            bytes: reported
                .iter()
                .filter(|(day, _)| *day == start_ms)
                .map(|(_, bytes)| *bytes)
                .fold(0, i64::saturating_add),
        })
        .collect()
}

/// The chart's height in pixels, and the room above (the line's label) and below (the
/// dates) the bars.
const HEIGHT: f64 = 168.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 22.0;
const PLOT: f64 = HEIGHT - TOP - BOTTOM;
/// The part of a day's column its bar takes.
const BAR_SHARE: f64 = 0.7;

/// Where one day's bar goes: across in % of the chart's width, down in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub x_pct: f64,
    pub width_pct: f64,
    pub y: f64,
    pub height: f64,
    /// More than the daily volume.
    pub over: bool,
}

/// Where the bars and the daily volume's line go.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    /// The bytes at the top of the plot: a round number of GB at or above the highest
    /// day and the daily volume.
    pub scale_bytes: f64,
    pub bars: Vec<Bar>,
    /// The daily volume's line, pixels down from the top; `None`: no volume.
    pub line_y: Option<f64>,
}

/// Bytes to a float for drawing and showing in GB: exact up to 2^53 bytes (9 PB), which no
/// chart shows to the byte anyway.
pub fn float(bytes: i64) -> f64 {
    bytes as f64
}

/// Lays out `days` against `volume_bytes`. Heights are proportional to bytes; a day of
/// 0 bytes has no height, and a chart with nothing to show (no bytes, no volume or a volume
/// of 0) still has a scale, so nothing divides by 0.
pub fn geometry(days: &[Day], volume_bytes: Option<f64>) -> Geometry {
    let peak = days
        .iter()
        .map(|d| float(d.bytes.max(0)))
        .fold(0.0, f64::max);
    let volume = volume_bytes.filter(|v| v.is_finite() && *v >= 0.0);
    let scale_bytes = nice_ceiling(peak.max(volume.unwrap_or(0.0)));
    let height_of = |bytes: f64| (bytes / scale_bytes * PLOT).clamp(0.0, PLOT);
    let column = 100.0 / days.len().max(1) as f64;
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let height = height_of(float(d.bytes.max(0)));
            Bar {
                x_pct: column * (i as f64 + (1.0 - BAR_SHARE) / 2.0),
                width_pct: column * BAR_SHARE,
                y: TOP + PLOT - height,
                height,
                over: volume.is_some_and(|v| float(d.bytes) > v),
            }
        })
        .collect();
    Geometry {
        scale_bytes,
        bars,
        line_y: volume.map(|v| TOP + PLOT - height_of(v)),
    }
}

/// The smallest 1, 2, 2.5 or 5 × 10^k GB at or above `bytes`; 1 GB when there is nothing.
fn nice_ceiling(bytes: f64) -> f64 {
    let gb = bytes / BYTES_PER_GB;
    if !gb.is_finite() || gb <= 0.0 {
        return BYTES_PER_GB;
    }
    let magnitude = 10f64.powf(gb.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|top| *top >= gb * (1.0 - 1e-12))
        .unwrap_or(10.0 * magnitude);
    step * BYTES_PER_GB
}

/// GB as the page shows them: three significant figures or so, trailing zeros dropped
/// ("0.5 GB", "12.3 GB", "250 GB"); under a MB, "< 0.001 GB" (the table has the bytes).
pub fn gb(bytes: f64) -> String {
    let gb = bytes / BYTES_PER_GB;
    if !gb.is_finite() {
        return "–".into();
    }
    if gb == 0.0 {
        return "0 GB".into();
    }
    if gb.abs() < 0.001 {
        return "< 0.001 GB".into();
    }
    let decimals = match gb.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 => 2,
        _ => 3,
    };
    let text = format!("{gb:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text} GB")
}

/// A volume given in GB, shown as `gb` shows bytes.
pub fn gb_of(gb_value: f64) -> String {
    gb(gb_value * BYTES_PER_GB)
}

/// `bytes` with a thin separator every three digits: "1,250,000".
pub fn grouped(bytes: i64) -> String {
    let digits = bytes.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if bytes < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part` of `whole` as a whole percentage, when there is a whole to take it of.
pub fn percent(part: f64, whole: Option<f64>) -> Option<String> {
    let whole = whole.filter(|w| w.is_finite() && *w > 0.0)?;
    Some(format!("{:.0} %", part / whole * 100.0))
}

/// One day as its bar's `<title>` and the table say it.
pub fn day_text(day: &Day, volume_bytes: Option<f64>) -> String {
    let bytes = float(day.bytes);
    let mut text = format!(
        "{}: {} ({} bytes)",
        dates::date(day.start_ms),
        gb(bytes),
        grouped(day.bytes)
    );
    if let Some(share) = percent(bytes, volume_bytes) {
        text.push_str(&format!(", {share} of the daily volume"));
    }
    text
}

/// The chart of `days` for the account named `name`; `id` keeps its patterns apart from
/// the other charts' on the page.
pub fn svg(id: i64, name: &str, days: &[Day], volume_bytes: Option<f64>) -> Markup {
    let g = geometry(days, volume_bytes);
    let hatch = format!("hatch-{id}");
    let cross = format!("cross-{id}");
    let label = format!(
        "Bytes per UTC day of {name}, the last {} days{}. The numbers are in the table \
         that follows.",
        days.len(),
        volume_bytes.map_or(String::new(), |v| format!(
            ", against a daily volume of {}",
            gb(v)
        ))
    );
    let bottom = TOP + PLOT;
    html! {
        svg.chart width="100%" height=(HEIGHT) role="img" aria-label=(label)
            xmlns="http://www.w3.org/2000/svg" {
            defs {
                pattern id=(hatch) width="6" height="6" patternUnits="userSpaceOnUse"
                    patternTransform="rotate(45)" {
                    line x1="0" y1="0" x2="0" y2="6" stroke="currentColor" stroke-width="2" {}
                }
                pattern id=(cross) width="6" height="6" patternUnits="userSpaceOnUse"
                    patternTransform="rotate(45)" {
                    line x1="0" y1="0" x2="0" y2="6" stroke="currentColor" stroke-width="2.5" {}
                    line x1="0" y1="0" x2="6" y2="0" stroke="currentColor" stroke-width="2.5" {}
                }
            }
            line.grid x1="0" x2="100%" y1=(TOP) y2=(TOP) stroke="currentColor" stroke-width="1" {}
            text.scale x="0" y=(TOP - 8.0) { (gb(g.scale_bytes)) }
            @for (day, bar) in days.iter().zip(&g.bars) {
                g.day {
                    title { (day_text(day, volume_bytes)) }
                    // The whole column answers the pointer, so an empty day has numbers too.
                    rect.hit x={ (pct(bar.x_pct - bar.width_pct * 0.2)) } y=(TOP)
                        width={ (pct(bar.width_pct * 1.4)) } height=(PLOT) fill="transparent" {}
                    @if bar.height > 0.0 {
                        rect.bar.over[bar.over] x={ (pct(bar.x_pct)) } y=(bar.y)
                            width={ (pct(bar.width_pct)) } height=(bar.height)
                            fill={ "url(#" (if bar.over { &cross } else { &hatch }) ")" }
                            stroke="currentColor" stroke-width="1.5" {}
                    }
                }
            }
            line.axis x1="0" x2="100%" y1=(bottom) y2=(bottom) stroke="currentColor" stroke-width="1.5" {}
            @if let (Some(y), Some(v)) = (g.line_y, volume_bytes) {
                g.volume {
                    title { "Daily volume: " (gb(v)) }
                    line x1="0" x2="100%" y1=(y) y2=(y) stroke="currentColor" stroke-width="2"
                        stroke-dasharray="7 4" {}
                    text x="100%" y=(y - 6.0) text-anchor="end" paint-order="stroke"
                        stroke-width="4" stroke-linejoin="round" { "daily volume " (gb(v)) }
                }
            }
            @if let (Some(first), Some(last)) = (days.first(), days.last()) {
                text.date x="0" y=(HEIGHT - 4.0) { (dates::date(first.start_ms)) }
                text.date x="100%" y=(HEIGHT - 4.0) text-anchor="end" {
                    "today, " (dates::date(last.start_ms))
                }
            }
        }
    }
}

fn pct(value: f64) -> String {
    format!("{value:.3}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: i64 = 20_000 * DAY_MS;
    const GB: i64 = 1_000_000_000;

    fn day(days_ago: i64, bytes: i64) -> (i64, i64) {
        (TODAY - days_ago * DAY_MS, bytes)
    }

    #[test]
    fn days_without_a_report_are_zero_and_today_is_last() {
        let days = last_days(TODAY, 30, &[day(0, 5), day(3, 7), day(45, 9)]);
        assert_eq!(days.len(), 30);
        assert_eq!(
            days[29],
            Day {
                start_ms: TODAY,
                bytes: 5
            }
        );
        assert_eq!(days[26].bytes, 7);
        assert_eq!(days[0].start_ms, TODAY - 29 * DAY_MS);
        let zeros = days.iter().filter(|d| d.bytes == 0).count();
        assert_eq!(zeros, 28, "only the two reported days within 30 have bytes");
    }

    #[test]
    fn bars_are_as_high_as_their_bytes_against_a_round_scale() {
        let days = last_days(TODAY, 3, &[day(2, 4 * GB), day(0, 8 * GB)]);
        let g = geometry(&days, Some(float(5 * GB)));
        assert_eq!(g.scale_bytes, float(10 * GB), "8 GB rounds up to 10");
        assert_eq!(g.bars[0].height, PLOT * 0.4);
        assert_eq!(g.bars[1].height, 0.0, "an empty day");
        assert_eq!(g.bars[2].height, PLOT * 0.8);
        assert_eq!(
            g.bars[2].y + g.bars[2].height,
            TOP + PLOT,
            "bars stand on the axis"
        );
        assert_eq!(g.line_y, Some(TOP + PLOT * 0.5));
        assert!(!g.bars[0].over && g.bars[2].over, "8 GB is over 5 GB");
        let across: f64 = g.bars.iter().map(|b| b.width_pct).sum();
        assert!((across - 70.0).abs() < 1e-9, "{across}");
    }

    #[test]
    fn nothing_to_show_is_drawn_without_nan() {
        for volume in [None, Some(0.0), Some(f64::NAN)] {
            let days = last_days(TODAY, 30, &[]);
            let g = geometry(&days, volume);
            assert_eq!(g.scale_bytes, float(GB));
            for b in &g.bars {
                assert!(
                    b.height == 0.0 && b.y.is_finite() && b.x_pct.is_finite(),
                    "{b:?}"
                );
            }
            let svg = svg(1, "acme", &days, volume).into_string();
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
        assert!(geometry(&[], None).bars.is_empty());
    }

    #[test]
    fn the_line_stays_on_the_chart_when_the_volume_is_the_highest() {
        let days = last_days(TODAY, 2, &[day(0, GB / 2)]);
        let g = geometry(&days, Some(float(2 * GB)));
        assert_eq!(g.scale_bytes, float(2 * GB));
        assert_eq!(g.line_y, Some(TOP));
        assert_eq!(g.bars[1].height, PLOT / 4.0);
    }

    #[test]
    fn each_bar_carries_its_numbers() {
        let days = last_days(TODAY, 2, &[day(0, 1_500_000_000)]);
        let svg = svg(7, "acme", &days, Some(float(3 * GB))).into_string();
        assert!(
            svg.contains(
                "<title>2024-10-04: 1.5 GB (1,500,000,000 bytes), 50 % of the daily volume</title>"
            ),
            "{svg}"
        );
        assert!(svg.contains("<title>2024-10-03: 0 GB (0 bytes), 0 % of the daily volume</title>"));
        assert!(svg.contains("daily volume 3 GB"));
        assert!(svg.contains("url(#hatch-7)") && svg.contains("id=\"cross-7\""));
    }

    #[test]
    fn gigabytes_read_at_a_glance() {
        assert_eq!(gb(0.0), "0 GB");
        assert_eq!(gb(100.0), "< 0.001 GB");
        assert_eq!(gb(float(GB) / 2.0), "0.5 GB");
        assert_eq!(gb(12_345_000_000.0), "12.3 GB");
        assert_eq!(gb(float(250 * GB)), "250 GB");
        assert_eq!(gb(1_999_999_999.0), "2 GB");
        assert_eq!(gb_of(0.25), "0.25 GB");
        assert_eq!(grouped(1_250_000), "1,250,000");
        assert_eq!(grouped(999), "999");
        assert_eq!(percent(1.0, Some(4.0)).as_deref(), Some("25 %"));
        assert_eq!(percent(1.0, Some(0.0)), None);
        assert_eq!(percent(1.0, None), None);
    }
}

//! Dates as the page shows and reads them: UTC, `YYYY-MM-DD` (the value of an
//! `<input type="date">`) and `YYYY-MM-DD HH:MM UTC`. The control plane keeps epoch
//! seconds (shipping and API tokens) and milliseconds (shared tokens, as Logz.io's API).

use crate::clock::DAY_MS;

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01 (`days_from_civil`).
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` of the UTC day holding `ms`.
pub fn date(ms: i64) -> String {
    let (y, m, d) = civil(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM UTC`.
pub fn date_time(ms: i64) -> String {
    let minutes = ms.rem_euclid(DAY_MS) / 60_000;
    format!("{} {:02}:{:02} UTC", date(ms), minutes / 60, minutes % 60)
}

/// Epoch seconds as `date_time`.
pub fn secs(secs: i64) -> String {
    date_time(secs.saturating_mul(1000))
}

/// The ISO 8601 instant, for `<time datetime=…>`.
pub fn iso(ms: i64) -> String {
    let minutes = ms.rem_euclid(DAY_MS) / 60_000;
    let seconds = ms.rem_euclid(60_000) / 1000;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date(ms),
        minutes / 60,
        minutes % 60,
        seconds
    )
}

/// The last millisecond of the UTC day `YYYY-MM-DD` names: a token set to expire on a
/// day works through that day.
pub fn end_of_day(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days(y, m, d);
    // 2024-02-31 would roll over into March: refuse it rather than guess.
    if civil(day) != (y, m, d) {
        return None;
    }
    Some((day + 1) * DAY_MS - 1)
}

/// How long ago `then_ms` was, in words: "just now", "5 minutes ago", "3 days ago".
pub fn ago(then_ms: i64, now_ms: i64) -> String {
    let s = (now_ms - then_ms).max(0) / 1000;
    let (n, unit) = match s {
        0..60 => return "just now".into(),
        60..3600 => (s / 60, "minute"),
        3600..86_400 => (s / 3600, "hour"),
        _ => (s / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// How long until `then_ms`, in days: "in 7 days", "today", or "expired".
pub fn until(then_ms: i64, now_ms: i64) -> String {
    if then_ms <= now_ms {
        return "expired".into();
    }
    match (then_ms - now_ms) / DAY_MS {
        0 => "today".into(),
        1 => "in 1 day".into(),
        n => format!("in {n} days"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_the_date_input() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date_time(1_714_571_100_000), "2024-05-01 13:45 UTC");
        assert_eq!(iso(1_714_571_100_000), "2024-05-01T13:45:00Z");
        let end = end_of_day("2024-02-29").expect("a leap day");
        assert_eq!(date(end), "2024-02-29");
        assert_eq!(date(end + 1), "2024-03-01");
        for bad in ["2023-02-29", "2024-13-01", "soon", "", "2024-1"] {
            assert_eq!(end_of_day(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(ago(0, 30_000), "just now");
        assert_eq!(ago(0, 60_000), "1 minute ago");
        assert_eq!(ago(0, 3 * DAY_MS), "3 days ago");
        assert_eq!(until(7 * DAY_MS + 5, 0), "in 7 days");
        assert_eq!(until(0, 1), "expired");
    }
}

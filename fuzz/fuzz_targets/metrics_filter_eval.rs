//! The metrics drop-filter evaluator as a gateway runs it on what the feed sent: a filter
//! (JSON, up to the first 0xFF byte), then a series: its metric name and label names and
//! values, separated by 0x00. Never panics; a filter of one condition and the same
//! filter with the opposite comparison never agree on a series.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::filters::metrics::{Comparison, Expression, Filter};

fn opposite(c: Comparison) -> Comparison {
    match c {
        Comparison::Eq => Comparison::NotEq,
        Comparison::NotEq => Comparison::Eq,
        Comparison::RegexMatch => Comparison::RegexNoMatch,
        Comparison::RegexNoMatch => Comparison::RegexMatch,
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0xFF).unwrap_or(data.len());
    let Ok(filter) = serde_json::from_slice::<Filter>(&data[..split]) else {
        return;
    };
    let Ok(compiled) = filter.compile() else {
        return;
    };
    let series = String::from_utf8_lossy(data.get(split + 1..).unwrap_or_default());
    let mut parts = series.split('\0');
    let name = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let labels: Vec<(&str, &str)> = rest
        .chunks(2)
        .map(|pair| (pair[0], pair.get(1).copied().unwrap_or_default()))
        .collect();
    let matched = compiled.matches(name, &labels[..]);
    if let [Expression::Condition(c)] = filter.expression.as_slice() {
        let mut flipped = filter.clone();
        let mut condition = c.clone();
        condition.comparison_filter = opposite(c.comparison_filter);
        flipped.expression = vec![Expression::Condition(condition)];
        let other = flipped.compile().expect("the same pattern compiles");
        assert_ne!(matched, other.matches(name, &labels[..]));
    }
});

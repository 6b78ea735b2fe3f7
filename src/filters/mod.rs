//! Drop filters (DESIGN §9): an account's rules for what its gateways drop before the
//! spool, in Logz.io's two shapes — log filters (`logs`: a log type and exact
//! `field: value` conditions) and metrics filters (`metrics`: label expressions with
//! equality and anchored regular expressions). Each module holds the filter as the feed
//! carries it, the check that turns a management request into one (the control plane's
//! only way in), and the match a gateway runs on a record. It imports neither `control`
//! nor the request path, so both can use it: the control plane checks and stores filters,
//! gateways evaluate them.

pub mod held;
pub mod logs;
pub mod metrics;

use serde_json::Value;

/// A refused filter: which field (`fieldConditions[1].value`, as the API names it), the
/// `errorCode` that names the check, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

impl Invalid {
    fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            code,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Longest field, label or log type name a filter may hold, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest value a condition may compare with, in characters.
pub const MAX_VALUE_CHARS: usize = 1024;

/// A name a person typed: not empty, not too long, no control characters (they would not
/// show on the page and never appear in a real field name).
fn checked_name(field: &str, name: &str, code: &'static str) -> Result<(), Invalid> {
    if name.is_empty() {
        return Err(Invalid::new(code, field, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Invalid::new(
            "drop-filters/NAME_FORM",
            field,
            format!("must be at most {MAX_NAME_CHARS} characters without control characters"),
        ));
    }
    Ok(())
}

/// The value at `path` in a JSON record: the key itself, else the longest dotted prefix
/// that is a key (`a.b` before `a`), descending into it with the rest. So a dotted name
/// reaches nested objects (`kubernetes.pod.name`) after a key spelled with the dots
/// (`service.name`, as OTLP attributes are) is tried. Shared by drop filters and the
/// shared tokens' read filters, which must agree on what a field name means.
pub fn field<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    let object = record.as_object()?;
    if let Some(v) = object.get(path) {
        return Some(v);
    }
    path.rmatch_indices('.')
        .find_map(|(i, _)| field(object.get(&path[..i])?, &path[i + 1..]))
}

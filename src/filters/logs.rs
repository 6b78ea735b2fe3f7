//! Log drop filters, in Logz.io's shape: an optional log type and up to three exact
//! `fieldName: value` conditions, all of which a log must meet, with an optional daily
//! threshold. A management request becomes a `LogRule` through `LogFilterRequest::check`;
//! the feed carries each filter as a `LogDropFilter`, which a gateway asks `matches`.
//!
//! Matching (docs/drop-filters.md): a condition's field name reaches nested objects
//! through its dots after a key spelled with the dots is tried (`filters::field`, as the
//! shared tokens' filters read it); the value keeps its JSON type, so a number matches an
//! equal number (`200` and `200.0` alike) and never the string `"200"`, and a string
//! matches the same string, case-sensitively. Objects, arrays, booleans and `null` in a log
//! match no condition.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use super::{Invalid, MAX_NAME_CHARS, MAX_VALUE_CHARS, checked_name, field};
use crate::model::AccountId;

/// Conditions a filter may hold (Logz.io: "up to three field-value pairs per filter").
pub const MAX_CONDITIONS: usize = 3;
/// Filters an account may have, active or not (Logz.io: "up to 10 drop filters per
/// account").
pub const MAX_FILTERS_PER_ACCOUNT: usize = 10;
/// The largest threshold, in GB a day (Logz.io's page offers 1 to 1,000 GB). Smaller
/// thresholds than 1 GB are taken: its API states no lower bound, and a small account
/// (or a test) has uses for them.
pub const MAX_THRESHOLD_GB: f64 = 1000.0;

/// What a condition compares a log's field with. The JSON type is kept: a number matches
/// a number, a string a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConditionValue {
    Text(String),
    Number(Number),
}

impl ConditionValue {
    /// Whether a log's value equals this one.
    pub fn matches(&self, value: &Scalar<'_>) -> bool {
        match (self, value) {
            (ConditionValue::Text(want), Scalar::Text(got)) => want == got,
            (ConditionValue::Number(want), Scalar::Number(got)) => same_number(want, got),
            _ => false,
        }
    }

    /// What `Scalar::key` gives an equal value, for an index of conditions.
    pub fn key(&self) -> ScalarKey<'_> {
        match self {
            ConditionValue::Text(t) => ScalarKey::Text(t),
            ConditionValue::Number(n) => ScalarKey::Number(number_key(n)),
        }
    }
}

/// A log's field as a condition reads it: a string, a number, or anything else (an
/// object, an array, a boolean, `null`, or no such field), which no condition matches.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Text(Cow<'a, str>),
    Number(Number),
    Other,
}

impl Scalar<'_> {
    /// Equal values have equal keys (numbers by their double, so `200` and `2e2` alike);
    /// unequal values may share one (integers past 2^53), so a key only finds candidates.
    pub fn key(&self) -> Option<ScalarKey<'_>> {
        match self {
            Scalar::Text(t) => Some(ScalarKey::Text(t)),
            Scalar::Number(n) => Some(ScalarKey::Number(number_key(n))),
            Scalar::Other => None,
        }
    }
}

/// A scalar's index key (`Scalar::key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarKey<'a> {
    Text(&'a str),
    /// The bits of the value as a double, `-0` as `0`.
    Number(u64),
}

fn number_key(n: &Number) -> u64 {
    let x = n.as_f64().unwrap_or(f64::NAN);
    if x == 0.0 { 0 } else { x.to_bits() }
}

/// A log's fields, however the gateway holds the log: parsed (`Value`), or as the raw
/// values of a few top-level keys read while the line was checked.
pub trait Fields {
    /// The field `name` (a dotted name as `filters::field` reads it).
    fn scalar(&self, name: &str) -> Scalar<'_>;
}

impl Fields for Value {
    fn scalar(&self, name: &str) -> Scalar<'_> {
        scalar_of(field(self, name))
    }
}

/// A JSON value as a condition reads it.
pub fn scalar_of(value: Option<&Value>) -> Scalar<'_> {
    match value {
        Some(Value::String(s)) => Scalar::Text(Cow::Borrowed(s)),
        Some(Value::Number(n)) => Scalar::Number(n.clone()),
        _ => Scalar::Other,
    }
}

/// Integers compare exactly; anything with a fraction or an exponent compares as a
/// double, so `200` equals `200.0` and `2e2`.
fn same_number(a: &Number, b: &Number) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x == y;
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// One `fieldName: value` condition, spelled as Logz.io's API spells it (also in the
/// feed, where the filter is otherwise snake_case).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldCondition {
    pub field_name: String,
    pub value: ConditionValue,
}

impl FieldCondition {
    pub fn matches<F: Fields + ?Sized>(&self, record: &F) -> bool {
        self.value.matches(&record.scalar(&self.field_name))
    }
}

/// A log filter as gateways hold it: the feed's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogDropFilter {
    /// The id the management API shows (as a string there).
    pub id: u64,
    pub account_id: AccountId,
    /// An inactive filter drops nothing; it rides along so a gateway keeps counting a
    /// filter that is switched off and on again within a day.
    pub active: bool,
    /// Only logs of this type; `None`: every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_type: Option<String>,
    /// All must match.
    pub field_conditions: Vec<FieldCondition>,
    /// Matching logs pass until they total this many bytes in the UTC day; the rest of
    /// the day's matching logs are dropped. 0: every matching log is dropped.
    #[serde(default)]
    pub threshold_bytes: u64,
}

impl LogDropFilter {
    /// Whether a log of type `log_type` meets the filter: its type (when the filter names
    /// one) and every condition. Says nothing of `active` or the threshold: the gateway
    /// decides those with its counts.
    pub fn matches<F: Fields + ?Sized>(&self, log_type: Option<&str>, record: &F) -> bool {
        if let Some(want) = &self.log_type
            && log_type != Some(want.as_str())
        {
            return false;
        }
        self.field_conditions.iter().all(|c| c.matches(record))
    }
}

/// A checked filter definition, as a create request gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRule {
    pub log_type: Option<String>,
    pub description: Option<String>,
    pub field_conditions: Vec<FieldCondition>,
    /// GB a day; 0: no threshold.
    pub threshold_gb: f64,
}

/// `POST /v1/drop-filters` as Logz.io's clients send it. Everything may be missing so
/// that `check` can name what is.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFilterRequest {
    #[serde(default)]
    pub log_type: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub field_conditions: Option<Vec<ConditionRequest>>,
    #[serde(default, rename = "thresholdInGB")]
    pub threshold_in_gb: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionRequest {
    #[serde(default)]
    pub field_name: Option<String>,
    /// Any JSON value (Logz.io's client types it `interface{}`); absent reads as `null`.
    #[serde(default)]
    pub value: Value,
}

impl LogFilterRequest {
    /// The filter it describes, or the first field that is wrong.
    pub fn check(self) -> Result<LogRule, Invalid> {
        // An empty log type is "all types", as Logz.io's Terraform provider documents it.
        let log_type = self.log_type.filter(|t| !t.is_empty());
        if let Some(t) = &log_type {
            checked_name("logType", t, "drop-filters/LOG_TYPE_FORM")?;
        }
        let description = self.description.filter(|d| !d.is_empty());
        if let Some(d) = &description
            && (d.chars().count() > MAX_NAME_CHARS || d.chars().any(char::is_control))
        {
            return Err(Invalid::new(
                "drop-filters/DESCRIPTION_FORM",
                "description",
                format!("must be at most {MAX_NAME_CHARS} characters without control characters"),
            ));
        }
        let requested = self.field_conditions.unwrap_or_default();
        if requested.is_empty() {
            return Err(Invalid::new(
                "drop-filters/FIELD_CONDITIONS_REQUIRED",
                "fieldConditions",
                "must hold at least one {fieldName, value} condition",
            ));
        }
        if requested.len() > MAX_CONDITIONS {
            return Err(Invalid::new(
                "drop-filters/TOO_MANY_CONDITIONS",
                "fieldConditions",
                format!(
                    "a filter holds at most {MAX_CONDITIONS} conditions, not {}",
                    requested.len()
                ),
            ));
        }
        let field_conditions = requested
            .into_iter()
            .enumerate()
            .map(|(i, c)| c.check(&format!("fieldConditions[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(LogRule {
            log_type,
            description,
            field_conditions,
            threshold_gb: checked_threshold(self.threshold_in_gb)?,
        })
    }
}

impl ConditionRequest {
    fn check(self, path: &str) -> Result<FieldCondition, Invalid> {
        let field_name = self.field_name.unwrap_or_default();
        checked_name(
            &format!("{path}.fieldName"),
            &field_name,
            "drop-filters/FIELD_NAME_REQUIRED",
        )?;
        let at = format!("{path}.value");
        let value = match self.value {
            Value::Null => {
                return Err(Invalid::new(
                    "drop-filters/VALUE_REQUIRED",
                    at,
                    "must be set: a string or a number",
                ));
            }
            Value::String(s) if s.chars().count() > MAX_VALUE_CHARS => {
                return Err(Invalid::new(
                    "drop-filters/VALUE_FORM",
                    at,
                    format!("must be at most {MAX_VALUE_CHARS} characters"),
                ));
            }
            Value::String(s) => ConditionValue::Text(s),
            Value::Number(n) => ConditionValue::Number(n),
            Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
                return Err(Invalid::new(
                    "drop-filters/VALUE_TYPE",
                    at,
                    "must be a string or a number",
                ));
            }
        };
        Ok(FieldCondition { field_name, value })
    }
}

/// `thresholdInGB`: absent or 0 is none; else a finite number of GB up to the maximum.
fn checked_threshold(gb: Option<f64>) -> Result<f64, Invalid> {
    match gb {
        None => Ok(0.0),
        Some(gb) if gb.is_finite() && (0.0..=MAX_THRESHOLD_GB).contains(&gb) => Ok(gb),
        Some(_) => Err(Invalid::new(
            "drop-filters/THRESHOLD_RANGE",
            "thresholdInGB",
            format!("must be a number of GB from 0 (no threshold) to {MAX_THRESHOLD_GB}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(body: Value) -> LogFilterRequest {
        serde_json::from_value(body).unwrap()
    }

    fn filter(log_type: Option<&str>, conditions: Value) -> LogDropFilter {
        let rule = request(json!({"logType": log_type, "fieldConditions": conditions}))
            .check()
            .unwrap();
        LogDropFilter {
            id: 1,
            account_id: AccountId(7),
            active: true,
            log_type: rule.log_type,
            field_conditions: rule.field_conditions,
            threshold_bytes: 0,
        }
    }

    #[test]
    fn every_condition_and_the_type_must_match() {
        let f = filter(
            Some("nginx"),
            json!([{"fieldName": "status", "value": 200}, {"fieldName": "env", "value": "test"}]),
        );
        let log = json!({"status": 200, "env": "test", "message": "GET /"});
        assert!(f.matches(Some("nginx"), &log));
        assert!(!f.matches(Some("apache"), &log), "another type");
        assert!(!f.matches(None, &log), "no type when the filter names one");
        assert!(!f.matches(Some("nginx"), &json!({"status": 200, "env": "prod"})));
        assert!(
            !f.matches(Some("nginx"), &json!({"status": 200})),
            "a field missing"
        );
        let any_type = filter(None, json!([{"fieldName": "env", "value": "test"}]));
        assert!(any_type.matches(Some("anything"), &log) && any_type.matches(None, &log));
    }

    #[test]
    fn values_keep_their_json_type() {
        let number = filter(None, json!([{"fieldName": "status", "value": 200}]));
        assert!(number.matches(None, &json!({"status": 200})));
        assert!(
            number.matches(None, &json!({"status": 200.0})),
            "the same number"
        );
        assert!(number.matches(None, &json!({"status": 2e2})));
        assert!(
            !number.matches(None, &json!({"status": "200"})),
            "a string is not"
        );
        assert!(!number.matches(None, &json!({"status": 201})));
        let text = filter(None, json!([{"fieldName": "status", "value": "200"}]));
        assert!(text.matches(None, &json!({"status": "200"})));
        assert!(
            !text.matches(None, &json!({"status": 200})),
            "a number is not"
        );
        let case = filter(None, json!([{"fieldName": "level", "value": "ERROR"}]));
        assert!(
            !case.matches(None, &json!({"level": "error"})),
            "case-sensitive"
        );
        for other in [json!(true), json!(null), json!([200]), json!({"v": 200})] {
            assert!(!number.matches(None, &json!({"status": other})));
        }
        let big = filter(
            None,
            json!([{"fieldName": "n", "value": 18446744073709551615u64}]),
        );
        assert!(big.matches(None, &json!({"n": 18446744073709551615u64})));
        assert!(!big.matches(None, &json!({"n": -1})));
    }

    #[test]
    fn dotted_names_reach_nested_fields_after_dotted_keys() {
        let f = filter(
            None,
            json!([{"fieldName": "docker.container.name", "value": "system-logs"}]),
        );
        assert!(f.matches(
            None,
            &json!({"docker": {"container": {"name": "system-logs"}}})
        ));
        assert!(f.matches(None, &json!({"docker.container.name": "system-logs"})));
        assert!(f.matches(None, &json!({"docker": {"container.name": "system-logs"}})));
        assert!(!f.matches(None, &json!({"docker": {"container": "system-logs"}})));
    }

    #[test]
    fn a_request_names_the_field_it_refuses() {
        let refused = |body: Value| request(body).check().unwrap_err();
        let cases = [
            (
                json!({}),
                "fieldConditions",
                "drop-filters/FIELD_CONDITIONS_REQUIRED",
            ),
            (
                json!({"fieldConditions": []}),
                "fieldConditions",
                "drop-filters/FIELD_CONDITIONS_REQUIRED",
            ),
            (
                json!({"fieldConditions": [{"fieldName": "", "value": 1}]}),
                "fieldConditions[0].fieldName",
                "drop-filters/FIELD_NAME_REQUIRED",
            ),
            (
                json!({"fieldConditions": [{"fieldName": "a", "value": 1}, {"value": 1}]}),
                "fieldConditions[1].fieldName",
                "drop-filters/FIELD_NAME_REQUIRED",
            ),
            (
                json!({"fieldConditions": [{"fieldName": "a", "value": null}]}),
                "fieldConditions[0].value",
                "drop-filters/VALUE_REQUIRED",
            ),
            (
                json!({"fieldConditions": [{"fieldName": "a"}]}),
                "fieldConditions[0].value",
                "drop-filters/VALUE_REQUIRED",
            ),
            (
                json!({"fieldConditions": [{"fieldName": "a", "value": true}]}),
                "fieldConditions[0].value",
                "drop-filters/VALUE_TYPE",
            ),
            (
                json!({"fieldConditions": [{"fieldName": "a", "value": {"b": 1}}]}),
                "fieldConditions[0].value",
                "drop-filters/VALUE_TYPE",
            ),
            (
                json!({"fieldConditions": [
                    {"fieldName": "a", "value": 1}, {"fieldName": "b", "value": 1},
                    {"fieldName": "c", "value": 1}, {"fieldName": "d", "value": 1}]}),
                "fieldConditions",
                "drop-filters/TOO_MANY_CONDITIONS",
            ),
            (
                json!({"fieldConditions": [{"fieldName": "a", "value": 1}], "thresholdInGB": -1}),
                "thresholdInGB",
                "drop-filters/THRESHOLD_RANGE",
            ),
            (
                json!({"fieldConditions": [{"fieldName": "a", "value": 1}], "thresholdInGB": 1000.5}),
                "thresholdInGB",
                "drop-filters/THRESHOLD_RANGE",
            ),
            (
                json!({"fieldConditions": [{"fieldName": "a\n", "value": 1}]}),
                "fieldConditions[0].fieldName",
                "drop-filters/NAME_FORM",
            ),
        ];
        for (body, field, code) in cases {
            let err = refused(body.clone());
            assert_eq!((err.field.as_str(), err.code), (field, code), "{body}");
        }
    }

    #[test]
    fn a_request_becomes_a_rule() {
        let rule = request(json!({
            "logType": "", "description": "noise", "thresholdInGB": 10.5,
            "fieldConditions": [{"fieldName": "status", "value": 200}]
        }))
        .check()
        .unwrap();
        assert_eq!(rule.log_type, None, "an empty type is every type");
        assert_eq!(rule.description.as_deref(), Some("noise"));
        assert_eq!(rule.threshold_gb, 10.5);
        let plain = request(json!({"fieldConditions": [{"fieldName": "a", "value": "b"}]}))
            .check()
            .unwrap();
        assert_eq!(plain.threshold_gb, 0.0);
        // The feed's shape round-trips, conditions in Logz.io's spelling.
        let f = filter(
            Some("nginx"),
            json!([{"fieldName": "status", "value": 200}]),
        );
        let wire = serde_json::to_value(&f).unwrap();
        assert_eq!(
            wire["field_conditions"],
            json!([{"fieldName": "status", "value": 200}])
        );
        assert_eq!(serde_json::from_value::<LogDropFilter>(wire).unwrap(), f);
    }
}

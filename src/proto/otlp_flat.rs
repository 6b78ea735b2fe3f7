//! OTLP records as flat JSON objects, the way `field: value` terms read them: a log
//! record is its resource's and its own attributes by key, `message` (its body),
//! `severity` and `timeUnixNano`. Live tails show and match this form, and log drop
//! filters match it, so both agree on what an OTLP log's fields are.

use serde_json::{Map, Value, json};

use super::otlp::common::v1::{AnyValue, KeyValue, any_value};
use super::otlp::logs::v1::LogRecord;
use super::otlp::resource::v1::Resource;

/// The log type of every OTLP log record (shown as `_type`, matched by a drop filter's
/// `logType`): OTLP has no such field.
pub const LOG_TYPE: &str = "otlp";

/// A log record as one object, over its resource's `attributes(…)`.
pub fn log_record(resource: &Map<String, Value>, log: &LogRecord) -> Map<String, Value> {
    let mut object = resource.clone();
    for kv in &log.attributes {
        insert(&mut object, kv);
    }
    if let Some(body) = &log.body {
        object.insert("message".into(), any(body));
    }
    if !log.severity_text.is_empty() {
        object.insert("severity".into(), json!(log.severity_text));
    }
    if log.time_unix_nano != 0 {
        object.insert("timeUnixNano".into(), json!(log.time_unix_nano));
    }
    object
}

/// A resource's attributes by key.
pub fn attributes(resource: Option<&Resource>) -> Map<String, Value> {
    let mut object = Map::new();
    for kv in resource
        .map(|r| r.attributes.as_slice())
        .unwrap_or_default()
    {
        insert(&mut object, kv);
    }
    object
}

fn insert(object: &mut Map<String, Value>, kv: &KeyValue) {
    if let Some(value) = &kv.value {
        object.insert(kv.key.clone(), any(value));
    }
}

/// An OTLP value as plain JSON: strings, numbers and booleans as themselves.
pub fn any(value: &AnyValue) -> Value {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        // JSON has no NaN or infinity: those are strings, as in OTLP/JSON.
        Some(any_value::Value::DoubleValue(d)) if d.is_nan() => json!("NaN"),
        Some(any_value::Value::DoubleValue(d)) if d.is_infinite() => {
            json!(if *d > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.iter().map(any).collect()),
        Some(any_value::Value::KvlistValue(kv)) => {
            let mut object = Map::new();
            for item in &kv.values {
                insert(&mut object, item);
            }
            Value::Object(object)
        }
        Some(any_value::Value::BytesValue(b)) => json!(hex::encode(b)),
        // An index into a profiles string table, meaningless without that table.
        Some(any_value::Value::StringValueStrindex(_)) | None => Value::Null,
    }
}

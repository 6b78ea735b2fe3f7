//! A tapped batch as the records a tail shows: JSON objects with `_account_id`, `_type` and
//! `_kind`. A Logz.io log is its own object. An OTLP log record becomes one flat object
//! (`proto::otlp_flat`), so the same `field: value` terms match both. Traces and metrics are shown a request at a time
//! as OTLP/JSON, matched against the attributes of the request's resources.

use serde_json::{Map, Value, json};

use crate::forward::{ContentType, RecordBatch};
use crate::model::Kind;
use crate::proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::otlp::resource::v1::Resource;
use crate::proto::otlp_flat::{self, attributes};
use crate::proto::otlp_json::{self, OtlpMessage};

/// One record to show, and what its terms are matched against.
pub struct Event {
    pub record: Value,
    /// `None`: match against `record` itself.
    pub match_on: Option<Value>,
}

impl Event {
    pub fn subject(&self) -> &Value {
        self.match_on.as_ref().unwrap_or(&self.record)
    }
}

/// The batch's records; ones that cannot be decoded (they were validated on the way in,
/// so only a bug would) are skipped.
pub fn events(batch: &RecordBatch) -> Vec<Event> {
    let envelope = &batch.envelope;
    let stamp = |object: &mut Map<String, Value>, log_type: &str| {
        object.insert("_account_id".into(), json!(envelope.account_id));
        object.insert("_type".into(), json!(log_type));
        object.insert("_kind".into(), json!(envelope.kind.as_str()));
    };
    let mut out = Vec::new();
    for payload in &batch.payloads {
        match (envelope.kind, envelope.content_type) {
            (Kind::Logs, ContentType::JsonObject) => {
                let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(payload) else {
                    continue;
                };
                let log_type = envelope
                    .log_type
                    .as_deref()
                    .or_else(|| object.get("type").and_then(Value::as_str))
                    .unwrap_or("logs")
                    .to_owned();
                stamp(&mut object, &log_type);
                out.push(Event {
                    record: Value::Object(object),
                    match_on: None,
                });
            }
            (Kind::Logs, content_type) => {
                let Some(request) = decode::<ExportLogsServiceRequest>(payload, content_type)
                else {
                    continue;
                };
                for resource_logs in &request.resource_logs {
                    let resource = attributes(resource_logs.resource.as_ref());
                    for scope in &resource_logs.scope_logs {
                        for log in &scope.log_records {
                            let mut object = otlp_flat::log_record(&resource, log);
                            stamp(&mut object, otlp_flat::LOG_TYPE);
                            out.push(Event {
                                record: Value::Object(object),
                                match_on: None,
                            });
                        }
                    }
                }
            }
            (Kind::Traces, content_type) => {
                if let Some(request) = decode::<ExportTraceServiceRequest>(payload, content_type) {
                    let resources = request.resource_spans.iter().map(|r| r.resource.as_ref());
                    out.push(whole(&request, resources, stamp));
                }
            }
            (Kind::Metrics, ContentType::OtlpProtobuf | ContentType::OtlpJson) => {
                if let Some(request) =
                    decode::<ExportMetricsServiceRequest>(payload, envelope.content_type)
                {
                    let resources = request.resource_metrics.iter().map(|r| r.resource.as_ref());
                    out.push(whole(&request, resources, stamp));
                }
            }
            // Prometheus remote_write is not shown: it has no OTLP form here.
            (Kind::Metrics, _) => {}
        }
    }
    out
}

/// A whole OTLP request as one event, matched against the union of its resources'
/// attributes (a term matches when any resource has it).
fn whole<'a>(
    request: &impl OtlpMessage,
    resources: impl Iterator<Item = Option<&'a Resource>>,
    stamp: impl Fn(&mut Map<String, Value>, &str),
) -> Event {
    let mut json = Vec::new();
    otlp_json::encode(request, &mut json);
    let mut object = match serde_json::from_slice(&json) {
        Ok(Value::Object(o)) => o,
        _ => Map::new(),
    };
    stamp(&mut object, "otlp");
    let mut union = Map::new();
    for resource in resources {
        for (k, v) in attributes(resource) {
            union.entry(k).or_insert(v);
        }
    }
    Event {
        record: Value::Object(object),
        match_on: Some(Value::Object(union)),
    }
}

fn decode<T: OtlpMessage>(payload: &[u8], content_type: ContentType) -> Option<T> {
    match content_type {
        ContentType::OtlpProtobuf => T::decode(payload).ok(),
        ContentType::OtlpJson => otlp_json::decode(payload).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::forward::Envelope;
    use crate::model::{AccountId, TokenId};

    fn batch(kind: Kind, content_type: ContentType, payloads: Vec<Bytes>) -> RecordBatch {
        RecordBatch {
            envelope: Envelope {
                kind,
                account_id: AccountId(7),
                token_id: TokenId("3".into()),
                log_type: Some("nginx".into()),
                content_type,
            },
            payloads: payloads.into(),
        }
    }

    #[test]
    fn a_logzio_log_keeps_its_fields_and_gains_the_envelope() {
        let events = events(&batch(
            Kind::Logs,
            ContentType::JsonObject,
            vec![Bytes::from_static(br#"{"msg":"hi","env":"test"}"#)],
        ));
        assert_eq!(
            events[0].record,
            json!({"msg": "hi", "env": "test", "_account_id": 7, "_type": "nginx", "_kind": "logs"})
        );
    }

    #[test]
    fn an_otlp_log_record_is_flattened_with_its_resource() {
        let request = json!({"resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
            "scopeLogs": [{"logRecords": [
                {"body": {"stringValue": "one"}, "severityText": "INFO",
                 "attributes": [{"key": "env", "value": {"stringValue": "test"}}]},
                {"body": {"stringValue": "two"}}
            ]}]
        }]});
        let events = events(&batch(
            Kind::Logs,
            ContentType::OtlpJson,
            vec![Bytes::from(request.to_string())],
        ));
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0].record,
            json!({"service.name": "api", "env": "test", "message": "one", "severity": "INFO",
                   "_account_id": 7, "_type": "otlp", "_kind": "logs"})
        );
        assert_eq!(events[1].record["message"], "two");
    }
}

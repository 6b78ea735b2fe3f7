//! What ingest hands to forward: payloads plus an envelope the client cannot forge.
//! `forward` knows no tokens; ingest copies what a record needs into the envelope after
//! authentication.

use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::model::{AccountId, Kind, TokenId};

/// Who sent a request's records, set by tollgate after authentication. One per request,
/// shared by all its records, so a 4,000-line body carries one envelope, not 4,000.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub kind: Kind,
    pub account_id: AccountId,
    pub token_id: TokenId,
    /// The Logz.io `type` of a logs request (`?type=`), `None` for other kinds.
    pub log_type: Option<Arc<str>>,
    pub content_type: ContentType,
}

/// How each payload is encoded: what a Kafka consumer reads in the `content_type` header
/// and what the file sink converts from. OTLP and remote_write payloads are the protocol's
/// own bytes (one payload per request), so a sink can forward the original body; which
/// OTLP message it is follows from the envelope's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// A Logz.io log: one JSON object per payload, without a trailing newline.
    JsonObject,
    /// An OTLP `Export{Logs,Metrics,Trace}ServiceRequest` in protobuf.
    OtlpProtobuf,
    /// An OTLP `Export{Logs,Metrics,Trace}ServiceRequest` in OTLP/JSON, as the client sent it.
    OtlpJson,
    /// A Prometheus remote_write 1.0 `WriteRequest`, snappy block-compressed, as sent.
    RemoteWriteSnappy,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::JsonObject => "application/json",
            ContentType::OtlpProtobuf => "application/x-protobuf;proto=otlp",
            ContentType::OtlpJson => "application/json;proto=otlp",
            ContentType::RemoteWriteSnappy => {
                "application/x-protobuf;proto=prometheus.WriteRequest;encoding=snappy"
            }
        }
    }

    /// The inverse of `as_str`: a `content_type` header read back from Kafka.
    pub fn parse(s: &str) -> Option<ContentType> {
        [
            ContentType::JsonObject,
            ContentType::OtlpProtobuf,
            ContentType::OtlpJson,
            ContentType::RemoteWriteSnappy,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }

    /// The byte that stands for it in a spool frame. Never reuse a retired code.
    pub fn code(self) -> u8 {
        match self {
            ContentType::JsonObject => 0,
            ContentType::OtlpProtobuf => 1,
            ContentType::OtlpJson => 2,
            ContentType::RemoteWriteSnappy => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<ContentType> {
        match code {
            0 => Some(ContentType::JsonObject),
            1 => Some(ContentType::OtlpProtobuf),
            2 => Some(ContentType::OtlpJson),
            3 => Some(ContentType::RemoteWriteSnappy),
            _ => None,
        }
    }
}

/// A request's payloads. Most requests carry one (a one-line log body, an OTLP or
/// remote_write body), held inline: no allocation of its own, none to free in the batcher.
pub type Payloads = SmallVec<[Bytes; 1]>;

/// The records of one request. Payloads are slices of the request body (or of one
/// rewrite buffer per request), never a copy per record.
#[derive(Debug, Clone)]
pub struct RecordBatch {
    pub envelope: Envelope,
    pub payloads: Payloads,
}

/// What a request's records cost in memory besides their payload while they wait for the
/// sink: the batch, its envelope and payload list, its place in the batcher and the ack
/// bookkeeping. `tests/binary.rs` measured about 430 bytes for a one-payload request while
/// the payload list was a `Vec` (up to 256 bytes of its own); inline now, so this errs
/// on the safe side.
const BATCH_OVERHEAD: usize = 384;
const PAYLOAD_OVERHEAD: usize = 32;

impl RecordBatch {
    /// Payload bytes: what the sinks' batch sizes and the ingest metrics count.
    pub fn payload_bytes(&self) -> usize {
        self.payloads.iter().map(Bytes::len).sum()
    }

    /// The memory the batch holds while it waits, counted by the queue's and the spool
    /// handoff's budgets: without the bookkeeping, a queue of one-line requests held four
    /// times its budget.
    pub fn held_bytes(&self) -> usize {
        self.payload_bytes() + BATCH_OVERHEAD + PAYLOAD_OVERHEAD * self.payloads.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A logs request's records, one payload a line, for tests of what carries them.
    pub(crate) fn batch(lines: &[&'static str]) -> RecordBatch {
        RecordBatch {
            envelope: Envelope {
                kind: Kind::Logs,
                account_id: AccountId(1001),
                token_id: TokenId("t-1".into()),
                log_type: Some("nginx".into()),
                content_type: ContentType::JsonObject,
            },
            payloads: lines
                .iter()
                .map(|l| Bytes::from_static(l.as_bytes()))
                .collect(),
        }
    }
}

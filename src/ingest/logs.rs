//! `POST /?token=T&type=X` — the Logz.io listener bulk protocol (DESIGN §1), top to bottom:
//! token, authentication, body, lines, submit, reply.
//!
//! Lines: each non-empty line is one log. A line that parses as a JSON object is kept as
//! is (its bytes are a slice of the body); a plain-text line becomes
//! `{"message": "<line>", "type": ...}`. A line starting with `{` that is not valid JSON is
//! malformed, a line over `max_line_bytes` oversized, a blank line empty. A final newline
//! ends the last line; `\r\n` ends a line too. Invalid UTF-8 in a plain-text line is kept,
//! with each bad byte sequence replaced by U+FFFD; in a JSON line it makes it malformed.
//!
//! The `type` field is added unless the log has one, and the metadata field names
//! (`_account_id`, `_token_id`, `_kind`, `_type`) are removed from the log: they travel in
//! the envelope, set after authentication, so a shipper cannot forge them.

use std::borrow::Cow;
use std::fmt;

use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::Ingest;
use super::body::read_body;
use super::error::{Body, IngestError, LineCounts};
use super::request::bearer_token;
use crate::forward::{ContentType, Envelope, RecordBatch};
use crate::model::{Kind, RejectReason};
use crate::server::body::RequestBody;
use crate::volume::gate::Admission;

/// The `type` a log gets when the request names none (as the Logz.io listener).
pub const DEFAULT_TYPE: &str = "http-bulk";
/// Longest `type` accepted; a longer one is a 400 (it would be copied into every log).
pub const MAX_TYPE_BYTES: usize = 256;
/// Fields tollgate owns; a client-sent field of one of these names is dropped.
const RESERVED_FIELDS: [&str; 4] = ["_account_id", "_token_id", "_kind", "_type"];

pub async fn handle(req: Request<RequestBody>, cx: &Ingest) -> Result<Response<Body>, IngestError> {
    let (parts, body) = req.into_parts();
    let params = Params::from_query(parts.uri.query())?;
    let token = params
        .token
        .as_deref()
        .or_else(|| bearer_token(&parts.headers));
    let info = cx.tokens.authenticate(token, Kind::Logs).await?;
    tracing::Span::current().record("token_id", tracing::field::display(&info.token_id));
    let body = read_body(&parts.headers, body, &cx.limits).await?;
    let lines = split_lines(&body, &params.log_type, cx.limits.max_line_bytes)?;
    let accepted_bytes = lines.payload_bytes();
    let counts = lines.counts;
    let payloads = match cx.admit(
        &info,
        Kind::Logs,
        accepted_bytes as u64,
        counts.successful_lines,
    )? {
        Admission::Forward { log_size: false } => Some(lines.payloads),
        Admission::Forward { log_size: true } => Some(with_log_size(lines.payloads)),
        Admission::Capped => None,
    };
    if let Some(payloads) = payloads {
        cx.forward
            .submit(RecordBatch {
                envelope: Envelope {
                    kind: Kind::Logs,
                    account_id: info.account_id,
                    token_id: info.token_id.clone(),
                    log_type: Some(params.log_type.into()),
                    content_type: ContentType::JsonObject,
                },
                payloads,
            })
            .await?;
    }
    record_rejections(&counts, cx);
    let metrics = cx.metrics.kind(Kind::Logs);
    metrics.records.inc_by(counts.successful_lines);
    metrics.bytes.inc_by(accepted_bytes as u64);
    cx.tokens
        .record_usage(&info, accepted_bytes as u64, counts.successful_lines);
    if counts.all_accepted() {
        Ok(Response::builder()
            .status(StatusCode::OK)
            .body(Full::new(Bytes::new()))
            .expect("static response is valid"))
    } else {
        Err(IngestError::Lines(counts))
    }
}

/// The query parameters this route reads; all others are ignored. Borrowed from the
/// query unless percent-decoding changed them.
struct Params<'q> {
    token: Option<Cow<'q, str>>,
    log_type: Cow<'q, str>,
}

impl<'q> Params<'q> {
    fn from_query(query: Option<&'q str>) -> Result<Params<'q>, IngestError> {
        let mut token = None;
        let mut log_type = None;
        let mut take = |key: &str, value: Cow<'q, str>| match key {
            "token" if token.is_none() => token = Some(value),
            "type" if log_type.is_none() => log_type = Some(value),
            _ => {}
        };
        let query = query.unwrap_or("");
        if memchr::memchr2(b'%', b'+', query.as_bytes()).is_some() {
            for (key, value) in form_urlencoded::parse(query.as_bytes()) {
                take(&key, value);
            }
        } else {
            // Nothing to decode (the common case): the same pairs, borrowed as they are.
            for pair in query.split('&').filter(|pair| !pair.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                take(key, Cow::Borrowed(value));
            }
        }
        let log_type = match log_type {
            None => Cow::Borrowed(DEFAULT_TYPE),
            Some(t) if t.is_empty() => Cow::Borrowed(DEFAULT_TYPE),
            Some(t) if t.len() > MAX_TYPE_BYTES => {
                return Err(IngestError::BadParameter("type is longer than 256 bytes"));
            }
            Some(t) if t.chars().any(char::is_control) => {
                return Err(IngestError::BadParameter(
                    "type contains control characters",
                ));
            }
            Some(t) => t,
        };
        Ok(Params { token, log_type })
    }
}

/// `docSizeSetting`: each log gains `LogSize`, its size in bytes as accepted (before the
/// field is added), as Logz.io adds it. A log that already has one keeps its own.
fn with_log_size(payloads: Vec<Bytes>) -> Vec<Bytes> {
    payloads
        .into_iter()
        .map(|log| {
            let Some(end) = memchr::memrchr(b'}', &log) else {
                return log;
            };
            if memchr::memmem::find(&log, b"\"LogSize\"").is_some() {
                return log;
            }
            let last = log[..end].iter().rev().find(|b| !b.is_ascii_whitespace());
            let mut sized = BytesMut::with_capacity(log.len() + 24);
            sized.extend_from_slice(&log[..end]);
            if last != Some(&b'{') {
                sized.extend_from_slice(b",");
            }
            sized.extend_from_slice(format!("\"LogSize\":{}", log.len()).as_bytes());
            sized.extend_from_slice(&log[end..]);
            sized.freeze()
        })
        .collect()
}

/// Counts the rejected lines by reason.
fn record_rejections(counts: &LineCounts, cx: &Ingest) {
    let m = cx.metrics.kind(Kind::Logs);
    m.rejected(RejectReason::Malformed, counts.malformed_lines);
    m.rejected(RejectReason::Oversized, counts.oversized_lines);
    m.rejected(RejectReason::Empty, counts.empty_log_lines);
}

/// The accepted lines of one body, as JSON objects, and the counts of all lines.
pub struct Lines {
    pub payloads: Vec<Bytes>,
    pub counts: LineCounts,
}

impl Lines {
    pub fn payload_bytes(&self) -> usize {
        self.payloads.iter().map(Bytes::len).sum()
    }
}

/// Where an accepted line's bytes live until the rewrite buffer is frozen.
enum Slice {
    Body(usize, usize),
    Rewritten(usize, usize),
}

/// What one accepted line costs beyond its bytes: its slice while splitting, then its
/// `Bytes` in the batch.
const LINE_COST: usize = std::mem::size_of::<Slice>() + std::mem::size_of::<Bytes>();

/// The lines of a body may cost at most this many times the body in memory (plus
/// `LINES_COST_FLOOR`): a body of millions of tiny lines (`{}`) is refused rather than
/// turned into gigabytes of bookkeeping. Lines of ~25 bytes or more never reach it.
pub const LINES_COST_FACTOR: usize = 4;
const LINES_COST_FLOOR: usize = 1 << 20;

/// A body whose lines would cost more memory than `LINES_COST_FACTOR` allows.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManyLines {
    /// The budget, in bytes.
    pub limit: usize,
}

impl From<TooManyLines> for IngestError {
    fn from(e: TooManyLines) -> IngestError {
        IngestError::TooLarge {
            what: "the memory for this body's lines (56 bytes a line, plus rewrites; at most \
                   4 times the decompressed body + 1 MiB: send fewer, longer lines)",
            limit: e.limit as u64,
        }
    }
}

/// Splits a body into lines and decides each one. Accepted lines kept as sent are slices
/// of `body`; the few that need rewriting (plain text, missing `type`, reserved fields)
/// go into one buffer per body. Nothing is allocated per line, and what the lines cost is
/// counted as they are found (see `LINES_COST_FACTOR`).
pub fn split_lines(
    body: &Bytes,
    log_type: &str,
    max_line_bytes: usize,
) -> Result<Lines, TooManyLines> {
    let budget = LINES_COST_FACTOR * body.len() + LINES_COST_FLOOR;
    let mut counts = LineCounts::default();
    let mut slices = Vec::new();
    let mut rewritten = BytesMut::new();
    let mut type_json = Vec::with_capacity(log_type.len() + 2);
    serde_json::to_writer(&mut type_json, log_type).expect("writing to a Vec cannot fail");

    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    for end in ends {
        let line_start = start;
        start = end + 1;
        if end == body.len() && line_start == end && end > 0 {
            break; // the final newline ends the last line; it makes no empty line
        }
        let mut line = &body[line_start..end];
        if let [head @ .., b'\r'] = line {
            line = head;
        }
        if line.len() > max_line_bytes {
            counts.oversized_lines += 1;
            continue;
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            counts.empty_log_lines += 1;
            continue;
        }
        let offset = line_start + (trimmed.as_ptr() as usize - line.as_ptr() as usize);
        if trimmed[0] == b'{' {
            // UTF-8 first: serde_json does not check the bytes of strings it skips.
            let Some(keys) = std::str::from_utf8(trimmed)
                .ok()
                .and_then(|text| serde_json::from_str::<TopLevelKeys>(text).ok())
            else {
                counts.malformed_lines += 1;
                continue;
            };
            if keys.has_reserved {
                let from = rewritten.len();
                if rewrite_without_reserved(trimmed, keys.has_type, &type_json, &mut rewritten)
                    .is_err()
                {
                    rewritten.truncate(from);
                    counts.malformed_lines += 1;
                    continue;
                }
                slices.push(Slice::Rewritten(from, rewritten.len()));
            } else if keys.has_type {
                slices.push(Slice::Body(offset, offset + trimmed.len()));
            } else {
                // One allocation for this line's pieces, not one for each.
                rewritten.reserve(trimmed.len() + type_json.len() + 16);
                let from = rewritten.len();
                rewritten.extend_from_slice(b"{\"type\":");
                rewritten.extend_from_slice(&type_json);
                let rest = &trimmed[1..];
                if !rest.trim_ascii_start().starts_with(b"}") {
                    rewritten.extend_from_slice(b",");
                }
                rewritten.extend_from_slice(rest);
                slices.push(Slice::Rewritten(from, rewritten.len()));
            }
        } else {
            rewritten.reserve(trimmed.len() + type_json.len() + 32);
            let from = rewritten.len();
            rewritten.extend_from_slice(b"{\"message\":");
            let text = String::from_utf8_lossy(trimmed);
            serde_json::to_writer(WriteBytes(&mut rewritten), &*text)
                .expect("writing to a buffer cannot fail");
            rewritten.extend_from_slice(b",\"type\":");
            rewritten.extend_from_slice(&type_json);
            rewritten.extend_from_slice(b"}");
            slices.push(Slice::Rewritten(from, rewritten.len()));
        }
        counts.successful_lines += 1;
        if slices.len() * LINE_COST + rewritten.len() > budget {
            return Err(TooManyLines { limit: budget });
        }
    }

    let rewritten = rewritten.freeze();
    let payloads = slices
        .into_iter()
        .map(|s| match s {
            Slice::Body(a, b) => body.slice(a..b),
            Slice::Rewritten(a, b) => rewritten.slice(a..b),
        })
        .collect();
    Ok(Lines { payloads, counts })
}

/// Slow path for a log that carries tollgate's metadata field names: parse it, drop them,
/// add `type` if missing, and write it back. Rare, so a `Value` is fine here. It fails
/// only past serde_json's nesting limit (128), which the validating scan does not have.
fn rewrite_without_reserved(
    line: &[u8],
    has_type: bool,
    type_json: &[u8],
    out: &mut BytesMut,
) -> serde_json::Result<()> {
    let mut map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)?;
    for field in RESERVED_FIELDS {
        map.remove(field);
    }
    if !has_type {
        let t = serde_json::from_slice(type_json).expect("type_json is a JSON string");
        map.insert("type".to_string(), t);
    }
    serde_json::to_writer(WriteBytes(out), &map)
}

/// `io::Write` for a `BytesMut`, so serde_json writes straight into the rewrite buffer.
struct WriteBytes<'a>(&'a mut BytesMut);

impl std::io::Write for WriteBytes<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Validates a JSON object without building it, noting the top-level keys that matter.
#[derive(Default)]
struct TopLevelKeys {
    has_type: bool,
    has_reserved: bool,
}

impl<'de> Deserialize<'de> for TopLevelKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TopLevelKeysVisitor)
    }
}

struct TopLevelKeysVisitor;

impl<'de> Visitor<'de> for TopLevelKeysVisitor {
    type Value = TopLevelKeys;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevelKeys, A::Error> {
        let mut keys = TopLevelKeys::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => keys.has_type = true,
                Key::Reserved => keys.has_reserved = true,
                Key::Other => {}
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(keys)
    }
}

enum Key {
    Type,
    Reserved,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(if v == "type" {
                    Key::Type
                } else if RESERVED_FIELDS.contains(&v) {
                    Key::Reserved
                } else {
                    Key::Other
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(body: &'static [u8]) -> Lines {
        split_lines(&Bytes::from_static(body), "nginx", 100).unwrap()
    }

    fn objects(lines: &Lines) -> Vec<serde_json::Value> {
        lines
            .payloads
            .iter()
            .map(|p| serde_json::from_slice(p).expect("every payload is a JSON object"))
            .collect()
    }

    #[test]
    fn millions_of_tiny_lines_are_refused_before_they_cost_more_than_the_budget() {
        let tiny = Bytes::from("{}\n".repeat(1_000_000));
        let budget = LINES_COST_FACTOR * tiny.len() + LINES_COST_FLOOR;
        assert_eq!(
            split_lines(&tiny, "t", 100).err(),
            Some(TooManyLines { limit: budget })
        );
        // The same number of ordinary lines is fine, and so is a small body of tiny ones.
        let line = format!("{{\"message\":\"{}\",\"type\":\"t\"}}\n", "x".repeat(60));
        let ordinary = Bytes::from(line.repeat(1_000_000));
        assert_eq!(
            split_lines(&ordinary, "t", 100).unwrap().payloads.len(),
            1_000_000
        );
        let small = Bytes::from("{}\n".repeat(10_000));
        assert_eq!(
            split_lines(&small, "t", 100).unwrap().payloads.len(),
            10_000
        );
    }

    #[test]
    fn numbers_beyond_an_f64_are_valid_json_and_forwarded_as_sent() {
        // Found by the `logs_lines` fuzz target: a line `serde_json::Value` refuses.
        let lines = split(b"{\t\"\"\t:33333333E313 }\n");
        assert_eq!(lines.counts.successful_lines, 1);
        assert_eq!(
            &lines.payloads[0][..],
            b"{\"type\":\"nginx\",\t\"\"\t:33333333E313 }"
        );
    }

    #[test]
    fn final_newline_makes_no_empty_line_and_crlf_ends_lines() {
        for body in [
            &b"{\"a\":1}\nplain"[..],
            b"{\"a\":1}\nplain\n",
            b"{\"a\":1}\r\nplain\r\n",
        ] {
            let lines = split_lines(&Bytes::copy_from_slice(body), "t", 100).unwrap();
            assert_eq!(lines.counts.successful_lines, 2, "{body:?}");
            assert!(lines.counts.all_accepted(), "{body:?}");
        }
    }

    #[test]
    fn mixed_body_is_counted_line_by_line() {
        let long = format!("{{\"x\":\"{}\"}}", "y".repeat(200));
        let body =
            format!("{{\"a\":1}}\nplain text\n{{broken\n\n   \n{long}\n{{\"type\":\"own\"}}\n");
        let lines = split_lines(&Bytes::from(body), "nginx", 100).unwrap();
        assert_eq!(
            lines.counts,
            LineCounts {
                malformed_lines: 1,
                successful_lines: 3,
                oversized_lines: 1,
                empty_log_lines: 2,
            }
        );
        let objs = objects(&lines);
        assert_eq!(objs[0]["a"], 1);
        assert_eq!(objs[0]["type"], "nginx");
        assert_eq!(objs[1]["message"], "plain text");
        assert_eq!(objs[1]["type"], "nginx");
        assert_eq!(objs[2]["type"], "own", "a log's own type wins");
    }

    #[test]
    fn lines_with_type_are_slices_of_the_body_not_copies() {
        let body = Bytes::from_static(b"{\"type\":\"x\",\"a\":1}\n");
        let lines = split_lines(&body, "t", 100).unwrap();
        assert_eq!(lines.payloads[0].as_ptr(), body.as_ptr());
    }

    #[test]
    fn reserved_fields_sent_by_the_client_are_dropped() {
        let lines = split(b"{\"_account_id\":666,\"_token_id\":\"forged\",\"msg\":\"hi\"}\n");
        let obj = &objects(&lines)[0];
        assert!(obj.get("_account_id").is_none());
        assert!(obj.get("_token_id").is_none());
        assert_eq!(obj["msg"], "hi");
        assert_eq!(obj["type"], "nginx");
    }

    #[test]
    fn invalid_utf8_is_replaced_in_text_and_malformed_in_json() {
        let lines = split(b"bad \xff byte\n{\"a\":\"\xff\"}\n");
        assert_eq!(lines.counts.successful_lines, 1);
        assert_eq!(lines.counts.malformed_lines, 1);
        assert_eq!(objects(&lines)[0]["message"], "bad \u{fffd} byte");
    }

    #[test]
    fn json_that_is_not_an_object_is_plain_text_and_empty_object_gets_type() {
        let lines = split(b"[1,2]\n{}\n{\"a\":1} trailing\n");
        assert_eq!(lines.counts.malformed_lines, 1);
        let objs = objects(&lines);
        assert_eq!(objs[0]["message"], "[1,2]");
        assert_eq!(objs[1], serde_json::json!({"type": "nginx"}));
    }

    #[test]
    fn empty_body_is_one_empty_line() {
        let lines = split(b"");
        assert_eq!(lines.counts.empty_log_lines, 1);
        assert!(lines.payloads.is_empty());
    }

    #[test]
    fn deep_nesting_never_crashes() {
        let nest = |n| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let body = format!(
            "{{\"a\":{}}}\n{{\"_kind\":\"x\",\"a\":{}}}\n{{\"_kind\":\"x\",\"a\":{}}}\n",
            nest(100_000),
            nest(100_000),
            nest(10)
        );
        let lines = split_lines(&Bytes::from(body), "t", 1 << 20).unwrap();
        // Valid JSON is accepted however deep; the rewrite path refuses what it cannot parse.
        assert_eq!(lines.counts.successful_lines, 2);
        assert_eq!(lines.counts.malformed_lines, 1);
        let rewritten: serde_json::Value = serde_json::from_slice(&lines.payloads[1]).unwrap();
        assert!(rewritten.get("_kind").is_none());
    }

    #[test]
    fn params_default_and_bound_the_type() {
        assert_eq!(Params::from_query(None).unwrap().log_type, DEFAULT_TYPE);
        assert_eq!(
            Params::from_query(Some("type=")).unwrap().log_type,
            DEFAULT_TYPE
        );
        let p = Params::from_query(Some("token=abc%2Bdef&type=nginx&type=other")).unwrap();
        assert_eq!(p.token.as_deref(), Some("abc+def"));
        assert_eq!(p.log_type, "nginx");
        let long = format!("type={}", "x".repeat(10_000));
        assert!(Params::from_query(Some(&long)).is_err());
    }

    #[test]
    fn a_query_with_nothing_to_decode_reads_as_form_urlencoded_reads_it() {
        for query in [
            "token=abc&type=nginx",
            "&&token=abc&&type=x&",
            "token&type=y",
            "type=a=b&token=t=u",
            "token=&type=",
            "x=1&token=t&token=u&type=v&type=w",
            "TOKEN=a&Type=b",
        ] {
            let (mut token, mut log_type) = (None, None);
            for (key, value) in form_urlencoded::parse(query.as_bytes()) {
                match &*key {
                    "token" if token.is_none() => token = Some(value.into_owned()),
                    "type" if log_type.is_none() => log_type = Some(value.into_owned()),
                    _ => {}
                }
            }
            let params = Params::from_query(Some(query)).unwrap();
            assert_eq!(params.token.as_deref(), token.as_deref(), "{query}");
            let log_type = log_type.filter(|t| !t.is_empty());
            assert_eq!(
                params.log_type,
                log_type.as_deref().unwrap_or(DEFAULT_TYPE),
                "{query}"
            );
        }
    }
}

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
//!
//! A compressed body is decompressed and split a piece at a time (`PIECE_BYTES`), so a
//! body whose lines cost too much is refused after its first pieces, not once inflated
//! whole; lines are slices of the piece they end in, and a piece no accepted line points
//! into is freed as soon as it is split. What the body and its lines hold is counted in the
//! decode budget as it is allocated.

mod query;

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use http::{Request, Response};
use http_body_util::Full;

use super::Ingest;
use super::body::{
    Encoding, Inflate, PIECE_BYTES, RawBody, off_the_runtime_if_large, read_raw_body,
};
use super::budget::DecodeHold;
use super::error::{Body, IngestError, LineCounts};
use super::json_line::{self, Captured, RESERVED_FIELDS};
use super::request::bearer_token;
use crate::filters::held::LogFilters;
use crate::filters::logs::{Fields, Scalar};
use crate::forward::{ContentType, Envelope, Payloads, RecordBatch};
use crate::model::{Kind, RejectReason};
use crate::server::body::RequestBody;
use crate::volume::gate::Admission;
pub use query::{DEFAULT_TYPE, MAX_TYPE_BYTES};
use query::{LogType, Params};

pub async fn handle(req: Request<RequestBody>, cx: &Ingest) -> Result<Response<Body>, IngestError> {
    // The head is read in a block of its own: the future holds it only until the body.
    let (info, log_type, encoding, body) = {
        let (parts, body) = req.into_parts();
        let params = Params::from_query(parts.uri.query())?;
        let token = params
            .token
            .as_deref()
            .or_else(|| bearer_token(&parts.headers));
        let info = cx.tokens.authenticate(token, Kind::Logs).await?;
        super::record_token(&info);
        let encoding = Encoding::from_headers(&parts.headers)?;
        (info, LogType::of(&params.log_type), encoding, body)
    };
    // What the body and its lines hold, until the answer: given back when it drops.
    let mut hold = DecodeHold::new(&cx.limits.decode_budget);
    let raw = read_raw_body(body, &cx.limits).await?;
    hold.grow(raw.len())?;
    let filters = cx.rules.filters.logs_of(info.account_id);
    let splitter =
        Splitter::of_type(log_type.clone(), cx.limits.max_line_bytes).with_filters(filters);
    let lines = if encoding == Encoding::Identity {
        splitter.split_raw(raw, &mut hold)?
    } else {
        // Boxed: unboxed, this rarer path's future would set the size of every request's.
        let (raw, max) = (raw.shared, cx.limits.max_decompressed_bytes);
        Box::pin(off_the_runtime_if_large(
            raw.len(),
            &mut hold,
            move |hold| splitter.split_compressed(raw, encoding, max, hold),
        ))
        .await?
    };
    let dropped = lines.dropped;
    let accepted_bytes = lines.payload_bytes();
    let counts = lines.counts;
    let kept = counts.successful_lines - dropped;
    let payloads = match cx.admit(&info, Kind::Logs, accepted_bytes as u64, kept)? {
        Admission::Forward { log_size: false } => Some(lines.payloads),
        Admission::Forward { log_size: true } => {
            hold.grow(accepted_bytes + LOG_SIZE_COST * lines.payloads.len())?;
            Some(with_log_size(lines.payloads))
        }
        Admission::Capped => None,
    };
    if let Some(payloads) = payloads.filter(|p| !p.is_empty()) {
        cx.forward
            .submit(RecordBatch {
                envelope: Envelope {
                    kind: Kind::Logs,
                    account_id: info.account_id,
                    token_id: info.token_id.clone(),
                    log_type: Some(log_type.name),
                    content_type: ContentType::JsonObject,
                },
                payloads,
            })
            .await?;
    }
    record_rejections(&counts, cx);
    let metrics = cx.metrics.kind(Kind::Logs);
    metrics.records.inc_by(kept);
    metrics.bytes.inc_by(accepted_bytes as u64);
    metrics.dropped_by_filter.inc_by(dropped);
    // Dropped logs are not in the account's volume (DESIGN §9).
    cx.tokens.record_usage(&info, accepted_bytes as u64, kept);
    if counts.all_accepted() {
        // 200 OK, no headers: made as it is, not through the builder's checks.
        Ok(Response::new(Full::new(Bytes::new())))
    } else {
        Err(IngestError::Lines(counts))
    }
}

/// What `with_log_size` allocates for a log beyond its bytes.
const LOG_SIZE_COST: usize = 24;

/// `docSizeSetting`: each log gains `LogSize`, its size in bytes as accepted (before the
/// field is added), as Logz.io adds it. A log that already has one keeps its own.
fn with_log_size(payloads: Payloads) -> Payloads {
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
            let mut sized = BytesMut::with_capacity(log.len() + LOG_SIZE_COST);
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

/// The accepted lines of one body, as JSON objects, and the counts of all lines. Lines a
/// drop filter dropped count as successful and are not in `payloads`.
pub struct Lines {
    pub payloads: Payloads,
    pub counts: LineCounts,
    pub dropped: u64,
}

impl Lines {
    pub fn payload_bytes(&self) -> usize {
        self.payloads.iter().map(Bytes::len).sum()
    }

    /// Lines kept as slices of `body` are moved to one copy of it, so they no longer hold
    /// the buffer `body` is a slice of (`RawBody`). Rewritten lines own their bytes already;
    /// a body whose lines all were rewritten is not copied.
    fn own_slices_of(&mut self, body: RawBody) {
        let body = body.shared;
        let range = body.as_ptr_range();
        let mut copy: Option<Bytes> = None;
        for payload in &mut self.payloads {
            if range.contains(&payload.as_ptr()) {
                let copy = copy.get_or_insert_with(|| Bytes::copy_from_slice(&body));
                let start = payload.as_ptr() as usize - body.as_ptr() as usize;
                *payload = copy.slice(start..start + payload.len());
            }
        }
    }
}

/// What one accepted line costs beyond its bytes: its `Bytes` in the batch.
const LINE_COST: usize = std::mem::size_of::<Bytes>();

/// The lines of a body may cost at most this many times the body in memory (plus
/// `LINES_COST_FLOOR`), counted as they are found against the body up to the line: a body
/// of millions of tiny lines (`{}`) is refused rather than turned into gigabytes of
/// bookkeeping, within its first megabyte. Lines of ~10 bytes or more that keep their
/// bytes as sent never reach it.
pub const LINES_COST_FACTOR: usize = 4;
const LINES_COST_FLOOR: usize = 1 << 20;

/// The rewrite buffer is allocated this much at a time at most (more for a longer line).
const REWRITE_CHUNK: usize = 64 * 1024;

/// A body whose lines would cost more memory than `LINES_COST_FACTOR` allows.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManyLines {
    /// The budget, in bytes, at the line that passed it.
    pub limit: usize,
}

impl From<TooManyLines> for IngestError {
    fn from(e: TooManyLines) -> IngestError {
        IngestError::TooLarge {
            what: "the memory for this body's lines (32 bytes a line, plus rewrites; at most \
                   4 times the body up to the line + 1 MiB: send fewer, longer lines)",
            limit: e.limit as u64,
        }
    }
}

/// Splits a body into lines and decides each one. Accepted lines kept as sent are slices
/// of `body`; the few that need rewriting (plain text, missing `type`, reserved fields)
/// are written into a shared buffer and split off it. Nothing is allocated per line, and
/// what the lines cost is counted as they are found (see `LINES_COST_FACTOR`) and taken
/// from `hold` before it is allocated.
pub fn split_lines(
    body: &Bytes,
    log_type: &str,
    max_line_bytes: usize,
    hold: &mut DecodeHold<'_>,
) -> Result<Lines, IngestError> {
    Splitter::new(log_type, max_line_bytes).split(body, hold)
}

/// The state of a body being split: the lines accepted so far and what they cost.
pub struct Splitter {
    log_type: LogType,
    /// The account's active drop filters, if any: a line they drop is not kept.
    filters: Option<LogFilters>,
    dropped: u64,
    max_line_bytes: usize,
    counts: LineCounts,
    payloads: Payloads,
    /// Where rewritten lines are written; each is split off as its own `Bytes`.
    rewrites: BytesMut,
    /// What the accepted lines cost: `LINE_COST` each, and the bytes of rewrites.
    cost: usize,
    /// Where the piece being split starts in the body.
    base: usize,
    /// A line of the current piece was kept as a slice of it.
    retained: bool,
    /// Inside a line already longer than `max_line_bytes`: the rest of it, up to its
    /// newline, is passed over without being kept.
    skipping: bool,
    /// The size of the pieces a compressed body is decompressed into.
    piece_bytes: usize,
}

impl Splitter {
    pub fn new(log_type: &str, max_line_bytes: usize) -> Splitter {
        Splitter::of_type(LogType::of(log_type), max_line_bytes)
    }

    fn of_type(log_type: LogType, max_line_bytes: usize) -> Splitter {
        Splitter {
            log_type,
            filters: None,
            dropped: 0,
            max_line_bytes,
            counts: LineCounts::default(),
            payloads: Payloads::new(),
            rewrites: BytesMut::new(),
            cost: 0,
            base: 0,
            retained: false,
            skipping: false,
            piece_bytes: PIECE_BYTES,
        }
    }

    /// Drops the lines `filters` drop (DESIGN §9), deciding on what the line's check read.
    pub fn with_filters(mut self, filters: Option<LogFilters>) -> Splitter {
        self.filters = filters;
        self
    }

    /// Decompresses into pieces of `bytes` instead (tests and fuzzing cut lines with
    /// many piece ends).
    pub fn with_piece_bytes(mut self, bytes: usize) -> Splitter {
        self.piece_bytes = bytes.max(1);
        self
    }

    /// Splits a whole body.
    pub fn split(mut self, body: &Bytes, hold: &mut DecodeHold<'_>) -> Result<Lines, IngestError> {
        let tail = self.feed(body, hold)?;
        self.finish(body, tail, hold)
    }

    /// Splits a whole body as it was read: lines kept as slices of a borrowed one are
    /// moved to a copy (`Lines::own_slices_of`).
    fn split_raw(self, raw: RawBody, hold: &mut DecodeHold<'_>) -> Result<Lines, IngestError> {
        let mut lines = self.split(&raw.shared, hold)?;
        if raw.borrowed {
            lines.own_slices_of(raw);
        }
        Ok(lines)
    }

    /// Decompresses `raw` a piece at a time and splits each piece as it comes. A line cut
    /// by the end of a piece is copied to the start of the next; one longer than
    /// `max_line_bytes` is passed over instead. A piece is counted in `hold` before it is
    /// allocated, and given back once split if no accepted line points into it.
    pub fn split_compressed(
        mut self,
        raw: Bytes,
        encoding: Encoding,
        max: u64,
        hold: &mut DecodeHold<'_>,
    ) -> Result<Lines, IngestError> {
        let mut inflate = Inflate::new(raw, encoding, max)?;
        let mut step = inflate.size_hint().min(self.piece_bytes);
        // What the pieces so far decompressed to; the piece before, and whether lines
        // point into it; where its cut line starts.
        let mut inflated = 0;
        let mut before: Option<(Bytes, bool)> = None;
        let mut tail = 0;
        loop {
            let carried = before.as_ref().map_or(&[][..], |(piece, _)| &piece[tail..]);
            let size = carried.len() + step;
            hold.grow(size)?;
            let mut buf = Vec::with_capacity(size);
            buf.extend_from_slice(carried);
            let ended = inflate.fill(&mut buf, size)?;
            self.base = inflated - carried.len();
            inflated = self.base + buf.len();
            if let Some((piece, false)) = before.take() {
                hold.shrink(piece.len());
            }
            let piece = Bytes::from(buf);
            self.retained = false;
            tail = self.feed(&piece, hold)?;
            if ended {
                return self.finish(&piece, tail, hold);
            }
            if piece.len() - tail > self.max_line_bytes + 1 {
                // Longer than any line kept, whatever ends it (`\r\n` included).
                self.skipping = true;
                tail = piece.len();
            }
            before = Some((piece, self.retained));
            step = self.piece_bytes;
        }
    }

    /// Splits the lines `piece` ends; where its last, unfinished line starts.
    fn feed(&mut self, piece: &Bytes, hold: &mut DecodeHold<'_>) -> Result<usize, IngestError> {
        let mut start = 0;
        if self.skipping {
            let Some(end) = memchr::memchr(b'\n', piece) else {
                return Ok(piece.len());
            };
            self.skipping = false;
            self.counts.oversized_lines += 1;
            start = end + 1;
        }
        let first = start;
        for end in memchr::memchr_iter(b'\n', &piece[first..]).map(|i| first + i) {
            let line_start = std::mem::replace(&mut start, end + 1);
            self.line(piece, line_start, end, hold)?;
        }
        Ok(start)
    }

    /// Splits the body's last line, `piece[tail..]`, and hands over the lines.
    fn finish(
        mut self,
        piece: &Bytes,
        tail: usize,
        hold: &mut DecodeHold<'_>,
    ) -> Result<Lines, IngestError> {
        if self.skipping {
            self.counts.oversized_lines += 1;
        } else if tail < piece.len() || self.base + piece.len() == 0 {
            // A final newline ends the last line and makes no empty line; an empty body
            // is one empty line.
            self.line(piece, tail, piece.len(), hold)?;
        }
        Ok(Lines {
            payloads: self.payloads,
            counts: self.counts,
            dropped: self.dropped,
        })
    }

    /// Decides the line `piece[start..end]` (without its newline).
    fn line(
        &mut self,
        piece: &Bytes,
        start: usize,
        end: usize,
        hold: &mut DecodeHold<'_>,
    ) -> Result<(), IngestError> {
        let mut line = &piece[start..end];
        if let [head @ .., b'\r'] = line {
            line = head;
        }
        if line.len() > self.max_line_bytes {
            self.counts.oversized_lines += 1;
            return Ok(());
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            self.counts.empty_log_lines += 1;
            return Ok(());
        }
        let offset = start + (trimmed.as_ptr() as usize - line.as_ptr() as usize);
        // Rewrites of the rest of the piece may need about twice its bytes.
        let ahead = 2 * (piece.len() - start);
        let type_json = &self.log_type.json[..];
        let payload = if trimmed[0] == b'{' {
            let wanted = self.filters.as_ref().map_or(&[][..], LogFilters::keys);
            // UTF-8 first: serde_json does not check the bytes of strings it skips.
            let Some(keys) = simdutf8::basic::from_utf8(trimmed)
                .ok()
                .and_then(|text| json_line::scan(text, wanted))
            else {
                self.counts.malformed_lines += 1;
                return Ok(());
            };
            if let Some(filters) = &self.filters {
                let fields = Captured {
                    wanted,
                    values: &keys.captured,
                };
                let log_type = match fields.scalar("type") {
                    Scalar::Text(t) => t,
                    _ => Cow::Borrowed(&*self.log_type.name),
                };
                let added = if keys.has_type {
                    0
                } else {
                    type_json.len() + 8
                };
                if filters.drops(&log_type, &fields, (trimmed.len() + added) as u64) {
                    self.dropped += 1;
                    self.counts.successful_lines += 1;
                    return Ok(());
                }
            }
            if keys.has_reserved {
                let out = rewrite_room(&mut self.rewrites, 2 * trimmed.len() + 64, ahead, hold)?;
                if rewrite_without_reserved(trimmed, keys.has_type, type_json, out).is_err() {
                    out.clear();
                    self.counts.malformed_lines += 1;
                    return Ok(());
                }
                out.split().freeze()
            } else if keys.has_type {
                // Kept as sent: a slice of the body, costing no bytes of its own.
                self.retained = true;
                self.cost += LINE_COST;
                return self.push(piece.slice(offset..offset + trimmed.len()), end, hold);
            } else {
                let typed = WithType::new(trimmed, type_json);
                if end + 1 >= piece.len() {
                    // The piece's last line (a one-line body's only one) gets a buffer of
                    // its own, of its exact size: it becomes a `Bytes` without allocating
                    // the reference count a split of the shared buffer needs.
                    hold.grow(typed.len())?;
                    let mut out = Vec::with_capacity(typed.len());
                    typed.write(&mut out);
                    Bytes::from(out)
                } else {
                    let need = typed.len();
                    let out = rewrite_room(&mut self.rewrites, need, ahead, hold)?;
                    typed.write(out);
                    out.split().freeze()
                }
            }
        } else {
            let text = String::from_utf8_lossy(trimmed);
            if let Some(filters) = &self.filters {
                let log = serde_json::json!({"message": text, "type": &*self.log_type.name});
                let bytes = (trimmed.len() + type_json.len() + 24) as u64;
                if filters.drops(&self.log_type.name, &log, bytes) {
                    self.dropped += 1;
                    self.counts.successful_lines += 1;
                    return Ok(());
                }
            }
            let need = trimmed.len() + type_json.len() + 32;
            let out = rewrite_room(&mut self.rewrites, need, ahead, hold)?;
            out.extend_from_slice(b"{\"message\":");
            serde_json::to_writer(WriteBytes(out), &*text)
                .expect("writing to a buffer cannot fail");
            out.extend_from_slice(b",\"type\":");
            out.extend_from_slice(type_json);
            out.extend_from_slice(b"}");
            out.split().freeze()
        };
        self.cost += LINE_COST + payload.len();
        self.push(payload, end, hold)
    }

    /// Adds an accepted line ending at `end` of the current piece, checking what the
    /// lines cost so far (`LINES_COST_FACTOR`).
    fn push(
        &mut self,
        payload: Bytes,
        end: usize,
        hold: &mut DecodeHold<'_>,
    ) -> Result<(), IngestError> {
        if self.payloads.len() == self.payloads.capacity() {
            // The first line is kept inline (`Payloads`); the list allocates from the second.
            let had = self.payloads.capacity();
            let grown = (2 * had).max(8);
            hold.grow(grown * LINE_COST)?;
            let counted = if self.payloads.spilled() { had } else { 0 };
            self.payloads.reserve_exact(grown - had);
            hold.shrink(counted * LINE_COST);
        }
        self.payloads.push(payload);
        self.counts.successful_lines += 1;
        let limit = LINES_COST_FACTOR * (self.base + end) + LINES_COST_FLOOR;
        if self.cost > limit {
            return Err(TooManyLines { limit }.into());
        }
        Ok(())
    }
}

/// A JSON object line with `"type"` added first: `{"type":T,` and the rest of it.
struct WithType<'a> {
    /// The line after its `{`.
    rest: &'a [u8],
    type_json: &'a [u8],
    /// The object has other fields.
    comma: bool,
}

impl<'a> WithType<'a> {
    const KEY: &'static [u8] = b"{\"type\":";

    fn new(line: &'a [u8], type_json: &'a [u8]) -> WithType<'a> {
        let rest = &line[1..];
        WithType {
            rest,
            type_json,
            comma: !rest.trim_ascii_start().starts_with(b"}"),
        }
    }

    fn len(&self) -> usize {
        Self::KEY.len() + self.type_json.len() + usize::from(self.comma) + self.rest.len()
    }

    fn write(&self, out: &mut impl BufMut) {
        out.put_slice(Self::KEY);
        out.put_slice(self.type_json);
        if self.comma {
            out.put_u8(b',');
        }
        out.put_slice(self.rest);
    }
}

/// The rewrite buffer with room for `need` more bytes: a new one, counted in `hold`, when
/// the one in use is short; `ahead` guesses how much more the body will rewrite.
fn rewrite_room<'b>(
    rewrites: &'b mut BytesMut,
    need: usize,
    ahead: usize,
    hold: &mut DecodeHold<'_>,
) -> Result<&'b mut BytesMut, IngestError> {
    if rewrites.capacity() - rewrites.len() < need {
        let size = need.max(ahead.min(REWRITE_CHUNK));
        hold.grow(size)?;
        *rewrites = BytesMut::with_capacity(size);
    }
    Ok(rewrites)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::budget::DecodeBudget;
    use crate::ingest::budget::tests::budget;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    #[test]
    fn lines_kept_as_sent_stop_holding_a_borrowed_body() {
        let buffer = Bytes::from(
            b"GET {\"type\":\"a\",\"n\":1}\nplain\n{\"type\":\"b\"}\n{\"n\":2} tail".to_vec(),
        );
        let body = buffer.slice(4..buffer.len() - 5);
        let mut lines = split_body(&body, "t", 1000).unwrap();
        let before = lines.payloads.clone();
        lines.own_slices_of(RawBody {
            shared: body,
            borrowed: true,
        });
        assert_eq!(lines.payloads, before);
        let held = buffer.as_ptr_range();
        for payload in &lines.payloads {
            assert!(!held.contains(&payload.as_ptr()), "{payload:?}");
        }
        assert_eq!(&lines.payloads[0][..], br#"{"type":"a","n":1}"#);
    }

    fn split_body(
        body: &Bytes,
        log_type: &str,
        max_line_bytes: usize,
    ) -> Result<Lines, IngestError> {
        let budget = DecodeBudget::unlimited();
        split_lines(
            body,
            log_type,
            max_line_bytes,
            &mut DecodeHold::new(&budget),
        )
    }

    fn split(body: &'static [u8]) -> Lines {
        split_body(&Bytes::from_static(body), "nginx", 100).unwrap()
    }

    fn gzip(data: &[u8]) -> Bytes {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(data).unwrap();
        Bytes::from(gz.finish().unwrap())
    }

    fn split_gzip(
        body: &[u8],
        max_line_bytes: usize,
        hold: &mut DecodeHold<'_>,
    ) -> Result<Lines, IngestError> {
        Splitter::new("t", max_line_bytes).split_compressed(
            gzip(body),
            Encoding::Gzip,
            1 << 30,
            hold,
        )
    }

    /// The same in pieces of `piece_bytes`, with a budget nothing exceeds.
    fn split_gzip_in_pieces(body: &[u8], max_line_bytes: usize, piece_bytes: usize) -> Lines {
        let budget = DecodeBudget::unlimited();
        Splitter::new("t", max_line_bytes)
            .with_piece_bytes(piece_bytes)
            .split_compressed(
                gzip(body),
                Encoding::Gzip,
                1 << 30,
                &mut DecodeHold::new(&budget),
            )
            .unwrap()
    }

    fn objects(lines: &Lines) -> Vec<serde_json::Value> {
        lines
            .payloads
            .iter()
            .map(|p| serde_json::from_slice(p).expect("every payload is a JSON object"))
            .collect()
    }

    #[test]
    fn millions_of_tiny_lines_are_refused_after_their_first_megabytes() {
        let tiny = Bytes::from("{}\n".repeat(1_000_000));
        let Err(IngestError::TooLarge { limit, .. }) = split_body(&tiny, "t", 100) else {
            panic!("a body of a million `{{}}` lines is refused");
        };
        // Counted against the body up to each line: refused within its first 100 KB.
        assert!(limit < (LINES_COST_FLOOR + 400_000) as u64, "{limit}");
        // The same number of ordinary lines is fine, and so is a small body of tiny ones.
        let line = format!("{{\"message\":\"{}\",\"type\":\"t\"}}\n", "x".repeat(60));
        let ordinary = Bytes::from(line.repeat(1_000_000));
        assert_eq!(
            split_body(&ordinary, "t", 100).unwrap().payloads.len(),
            1_000_000
        );
        let small = Bytes::from("{}\n".repeat(10_000));
        assert_eq!(split_body(&small, "t", 100).unwrap().payloads.len(), 10_000);
    }

    #[test]
    fn drop_filters_read_what_the_line_check_kept() {
        use crate::clock::Clock;
        use crate::filters::held::HeldFilters;
        use crate::filters::logs::{ConditionValue, FieldCondition, LogDropFilter};
        use crate::model::AccountId;
        let filter =
            |id, log_type: Option<&str>, conditions: &[(&str, ConditionValue)]| LogDropFilter {
                id,
                account_id: AccountId(1),
                active: true,
                log_type: log_type.map(str::to_owned),
                field_conditions: conditions
                    .iter()
                    .map(|(name, value)| FieldCondition {
                        field_name: (*name).to_owned(),
                        value: value.clone(),
                    })
                    .collect(),
                threshold_bytes: 0,
            };
        let text = |t: &str| ConditionValue::Text(t.to_owned());
        let number = |n: &str| ConditionValue::Number(n.parse().unwrap());
        let held = HeldFilters::new(Clock::system());
        held.set(
            vec![
                filter(1, None, &[("status", number("200")), ("env", text("prod"))]),
                filter(2, Some("nginx"), &[("kubernetes.pod.name", text("web-1"))]),
                filter(3, None, &[("message", text("health check"))]),
                filter(4, Some("own"), &[("level", text("debug"))]),
            ],
            vec![],
        );
        let body = Bytes::from_static(
            br#"{"status":200,"env":"prod","n":1}
{"status":2e2,"env":"prod","n":2}
{"status":"200","env":"prod","n":3}
{"status":200,"env":"dev","n":4}
{"kubernetes":{"pod":{"name":"web-1"}},"n":5}
{"kubernetes.pod.name":"web-1","n":6}
{"kubernetes":{"pod.name":"web-1"},"n":7}
{"kubernetes":{"pod":{"name":"web-2"}},"n":8}
health check
{"message":"health check","n":9}
{"type":"own","level":"debug","n":10}
{"level":"debug","n":11}
{"_kind":"x","status":200,"env":"prod","n":12}
"#,
        );
        let budget = DecodeBudget::unlimited();
        let lines = Splitter::new("nginx", 1000)
            .with_filters(held.logs_of(AccountId(1)))
            .split(&body, &mut DecodeHold::new(&budget))
            .unwrap();
        let kept: Vec<u64> = objects(&lines)
            .iter()
            .map(|o| o["n"].as_u64().unwrap())
            .collect();
        assert_eq!(
            kept,
            [3, 4, 8, 11],
            "a string is not a number; other values pass"
        );
        assert_eq!(lines.dropped, 9);
        assert_eq!(
            lines.counts.successful_lines, 13,
            "dropped lines are answered as accepted"
        );
    }

    #[test]
    fn a_compressed_body_splits_as_the_same_body_sent_plain() {
        // Lines of every kind, some longer than a piece, cut anywhere by the pieces' ends.
        let mut body = Vec::new();
        for i in 0..4000usize {
            match i % 9 {
                0 => body.extend(format!("{{\"type\":\"own\",\"i\":{i}}}\n").bytes()),
                1 => body.extend(format!("plain {i}\r\n").bytes()),
                2 => body.extend(format!("{{\"_kind\":\"x\",\"i\":{i}}}\n").bytes()),
                3 => body.extend(b"\n   \n"),
                4 => body.extend(format!("{{broken {i}\n").bytes()),
                5 => {
                    body.extend(format!("{{\"long\":\"{}\"}}\n", "y".repeat(i * 37 % 900)).bytes())
                }
                6 if i / 9 % 50 == 0 => {
                    body.extend(format!("{}\n", "z".repeat(300_001 + i)).bytes())
                }
                7 if i / 9 % 70 == 0 => body.extend(format!("{}\r\n", "w".repeat(300_000)).bytes()),
                _ => body.extend(format!("{{\"i\":{i}}}\n").bytes()),
            }
        }
        for (ending, piece_bytes) in [(&b""[..], 4096), (b"last line", 65_536), (b"\n", 1 << 20)] {
            let mut body = body.clone();
            body.extend(ending);
            let plain = split_body(&Bytes::from(body.clone()), "t", 300_000).unwrap();
            let gz = split_gzip_in_pieces(&body, 300_000, piece_bytes);
            assert_eq!(gz.counts, plain.counts);
            assert_eq!(gz.payloads, plain.payloads);
            assert!(plain.counts.oversized_lines >= 8, "{:?}", plain.counts);
        }
        for body in [&b""[..], b"\n", b"x", b"\r\n", b"a\r", b"\r\n\r\n"] {
            let plain = split_body(&Bytes::copy_from_slice(body), "t", 100).unwrap();
            for piece_bytes in [1, 2, 3] {
                let gz = split_gzip_in_pieces(body, 100, piece_bytes);
                assert_eq!(gz.counts, plain.counts, "{body:?}");
                assert_eq!(gz.payloads, plain.payloads, "{body:?}");
            }
        }
    }

    #[test]
    fn pieces_no_line_points_into_are_given_back_as_the_body_is_split() {
        // 40 MiB in one line, passed over: never more than two pieces at once.
        let budget = budget(1 << 30);
        let mut hold = DecodeHold::new(&budget);
        let lines = split_gzip(&vec![b'a'; 40 << 20], 1000, &mut hold).unwrap();
        assert_eq!(lines.counts.oversized_lines, 1);
        assert!(
            hold.used() <= 2 * PIECE_BYTES as u64 + 2000,
            "{}",
            hold.used()
        );
        // Lines that keep their bytes keep their pieces: all of it is counted.
        let line = "{\"type\":\"t\",\"message\":\"0123456789012345678901234567890\"}\n";
        let body = line.repeat((8 << 20) / line.len());
        let mut hold = DecodeHold::new(&budget);
        let lines = split_gzip(body.as_bytes(), 1000, &mut hold).unwrap();
        let counted = body.len() + LINE_COST * lines.payloads.len();
        assert!(
            hold.used() as usize >= counted,
            "{} < {counted}",
            hold.used()
        );
        assert!(budget.taken() + crate::ingest::budget::UNCOUNTED_BYTES >= hold.used());
    }

    #[test]
    fn a_body_that_cannot_get_the_budget_is_refused_and_gives_back_what_it_took() {
        let budget = budget(16 << 20);
        let mut other = DecodeHold::new(&budget);
        other.grow(10 << 20).unwrap();
        let line = "{\"type\":\"t\",\"message\":\"0123456789012345678901234567890\"}\n";
        let body = line.repeat((8 << 20) / line.len());
        let mut hold = DecodeHold::new(&budget);
        assert!(matches!(
            split_gzip(body.as_bytes(), 1000, &mut hold),
            Err(IngestError::DecodeBusy { .. })
        ));
        drop(hold);
        assert_eq!(
            budget.taken(),
            (10 << 20) - crate::ingest::budget::UNCOUNTED_BYTES
        );
        // Alone, more than the whole budget: 413.
        let mut hold = DecodeHold::new(&budget);
        let body = line.repeat((20 << 20) / line.len());
        drop(other);
        assert!(matches!(
            split_gzip(body.as_bytes(), 1000, &mut hold),
            Err(IngestError::TooLarge { limit, .. }) if limit == 16 << 20
        ));
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
    fn lone_surrogate_escapes_are_valid_json_and_forwarded_as_sent() {
        // Found by the `logs_lines` fuzz target: the grammar allows `\u` escapes of lone
        // surrogates, `serde_json::Value` refuses them, Jackson (the Logz.io listener's
        // parser) reads them. In a top-level key serde_json decides (and refuses) them.
        let lines = split(b"{\"sa\":\t\t\"XmXem\\udaaa\\\"\"}\n{\"a\":\"\\udc00\"}\n");
        assert_eq!(lines.counts.successful_lines, 2);
        assert_eq!(
            &lines.payloads[0][..],
            b"{\"type\":\"nginx\",\"sa\":\t\t\"XmXem\\udaaa\\\"\"}"
        );
        assert_eq!(
            &lines.payloads[1][..],
            b"{\"type\":\"nginx\",\"a\":\"\\udc00\"}"
        );
        let refused = split(b"{\"\\udaaa\":1}\n");
        assert_eq!(refused.counts.malformed_lines, 1);
    }

    #[test]
    fn final_newline_makes_no_empty_line_and_crlf_ends_lines() {
        for body in [
            &b"{\"a\":1}\nplain"[..],
            b"{\"a\":1}\nplain\n",
            b"{\"a\":1}\r\nplain\r\n",
        ] {
            let lines = split_body(&Bytes::copy_from_slice(body), "t", 100).unwrap();
            assert_eq!(lines.counts.successful_lines, 2, "{body:?}");
            assert!(lines.counts.all_accepted(), "{body:?}");
        }
    }

    #[test]
    fn mixed_body_is_counted_line_by_line() {
        let long = format!("{{\"x\":\"{}\"}}", "y".repeat(200));
        let body =
            format!("{{\"a\":1}}\nplain text\n{{broken\n\n   \n{long}\n{{\"type\":\"own\"}}\n");
        let lines = split_body(&Bytes::from(body), "nginx", 100).unwrap();
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
        let lines = split_body(&body, "t", 100).unwrap();
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
    fn every_reserved_field_is_dropped_and_only_those() {
        for field in RESERVED_FIELDS {
            let body = format!("{{\"{field}\":1,\"{field}x\":2,\"a\":3}}\n");
            let lines = split_body(&Bytes::from(body), "nginx", 100).unwrap();
            let obj = &objects(&lines)[0];
            assert!(obj.get(field).is_none(), "{field}");
            assert_eq!(obj[format!("{field}x")], 2, "{field}");
        }
        let obj = &objects(&split(b"{\"_typ\":1,\"typ\":2,\"types\":3}\n"))[0];
        assert_eq!(obj["type"], "nginx");
        assert_eq!(
            (&obj["_typ"], &obj["typ"], &obj["types"]),
            (&1.into(), &2.into(), &3.into())
        );
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
        let lines = split_body(&Bytes::from(body), "t", 1 << 20).unwrap();
        // Valid JSON is accepted however deep; the rewrite path refuses what it cannot parse.
        assert_eq!(lines.counts.successful_lines, 2);
        assert_eq!(lines.counts.malformed_lines, 1);
        let rewritten: serde_json::Value = serde_json::from_slice(&lines.payloads[1]).unwrap();
        assert!(rewritten.get("_kind").is_none());
    }
}

//! Reading a request body within its limits: the size is checked against `Content-Length`
//! before reading, the read itself is capped and timed, and decompression is capped too,
//! so a gzip bomb costs at most `max_decompressed_bytes` of memory before its 413. What the
//! body holds once read, and each piece of its decompressed form, is counted in the
//! request's share of the decode budget (`budget.rs`) before it is allocated.

use std::io::{Cursor, Read};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use flate2::bufread::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use futures_util::FutureExt;
use http::{HeaderMap, header};
use http_body_util::BodyExt;

use super::budget::{DecodeBudget, DecodeHold};
use super::error::IngestError;
use crate::server::body::OverBudget;
use crate::server::find_header;

/// Decompression of bodies larger than this moves off the async worker threads.
const INLINE_DECODE_MAX: usize = 64 * 1024;

/// Decompressed output is written this much at a time into the room made for it, so only
/// what is written is touched.
const READ_STEP: usize = 256 * 1024;

/// A body decompressed a piece at a time takes pieces of this size (smaller for a body
/// whose gzip trailer says it is smaller): the size from which jemalloc serves memory out
/// of an arena it gives back to the OS as soon as it is freed (`oversize_threshold`), so
/// the pieces of a refused body stop counting in the RSS when they are freed instead of
/// staying resident for jemalloc's decay time.
pub const PIECE_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_decompressed_bytes: u64,
    pub max_line_bytes: usize,
    pub body_read_timeout: Duration,
    /// The `Retry-After` of a 503 for load: requests or body bytes in flight.
    pub retry_after: Duration,
    /// What requests hold while they are decoded, across requests.
    pub decode_budget: Arc<DecodeBudget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

impl Encoding {
    /// Reads `Content-Encoding`; anything but gzip, deflate or identity is a 415.
    pub fn from_headers(headers: &HeaderMap) -> Result<Encoding, IngestError> {
        let Some(value) = find_header(headers, &header::CONTENT_ENCODING) else {
            return Ok(Encoding::Identity);
        };
        let value = value
            .to_str()
            .map_err(|_| IngestError::UnsupportedEncoding)?
            .trim();
        if value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip") {
            Ok(Encoding::Gzip)
        } else if value.eq_ignore_ascii_case("deflate") {
            Ok(Encoding::Deflate)
        } else if value.is_empty() || value.eq_ignore_ascii_case("identity") {
            Ok(Encoding::Identity)
        } else {
            Err(IngestError::UnsupportedEncoding)
        }
    }
}

/// Reads the whole body within `limits` and returns it decompressed, counting the body and
/// its decompressed form in `hold`.
pub async fn read_body<B>(
    headers: &HeaderMap,
    body: B,
    limits: &Limits,
    hold: &mut DecodeHold<'_>,
) -> Result<Bytes, IngestError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let encoding = Encoding::from_headers(headers)?;
    let raw = read_raw_body(body, limits).await?;
    hold.grow(raw.len())?;
    if encoding == Encoding::Identity {
        return Ok(raw.into_owned());
    }
    // Decompressed as it came: only what it decompresses to is kept.
    let raw = raw.shared;
    let (sent, max) = (raw.len(), limits.max_decompressed_bytes);
    let body =
        off_the_runtime_if_large(sent, hold, move |hold| decompress(raw, encoding, max, hold))
            .await?;
    hold.shrink(sent);
    Ok(body)
}

/// A body as read. One that came in one frame (most small requests) is a slice of the
/// connection's read buffer: kept that way (an OTLP request is forwarded as sent) it
/// would hold the whole buffer, 8 KiB or more, while it waits for the sink, and make the
/// connection allocate a new buffer for its next read. So what is kept is copied first
/// (`into_owned`), and what is only read (decompressed, split into lines that are
/// rewritten) is not.
pub struct RawBody {
    pub shared: Bytes,
    /// `shared` is a slice of the connection's read buffer.
    pub borrowed: bool,
}

impl RawBody {
    /// The body, owning its bytes.
    pub fn into_owned(self) -> Bytes {
        if self.borrowed {
            Bytes::copy_from_slice(&self.shared)
        } else {
            self.shared
        }
    }

    pub fn len(&self) -> usize {
        self.shared.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shared.is_empty()
    }
}

/// Reads the whole body as sent, within `max_body_bytes` and the body timeout (from the
/// first wait), without looking at `Content-Encoding` (remote_write decodes its own
/// snappy). Frames already received are taken without arming a timer or reading the
/// clock, and a body known to have ended is not polled again. A body of one frame is
/// handed on as it came (`RawBody`).
///
/// One future, and not an `async fn` (which holds its arguments twice): the logs route's
/// future is copied as it is made, so every byte of this one is paid on every request.
#[allow(clippy::manual_async_fn)] // on purpose: see above
pub fn read_raw_body<B>(
    body: B,
    limits: &Limits,
) -> impl Future<Output = Result<RawBody, IngestError>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    async move {
        let too_large = || IngestError::TooLarge {
            what: "body",
            limit: limits.max_body_bytes,
        };
        // A declared `Content-Length` over the limit is refused before anything is read.
        if body.size_hint().lower() > limits.max_body_bytes {
            return Err(too_large());
        }
        let mut body = std::pin::pin!(body);
        let mut first: Option<Bytes> = None;
        let mut joined = BytesMut::new();
        let mut received = 0u64;
        let mut deadline = None;
        loop {
            let frame = match body.as_mut().frame().now_or_never() {
                Some(frame) => frame,
                None => {
                    let timeout = limits.body_read_timeout;
                    let deadline =
                        *deadline.get_or_insert_with(|| tokio::time::Instant::now() + timeout);
                    // Boxed: the timer is this future's largest part (120 of ~390 bytes,
                    // `-Zprint-type-sizes`), and a body already in (most small requests)
                    // never waits.
                    Box::pin(tokio::time::timeout_at(deadline, body.as_mut().frame()))
                        .await
                        .map_err(|_| IngestError::BodyTimeout(timeout))?
                }
            };
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| match e.into() {
                e if e.is::<OverBudget>() => IngestError::OverBudget {
                    retry_after: limits.retry_after,
                },
                _ => IngestError::BodyRead,
            })?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            received += data.len() as u64;
            if received > limits.max_body_bytes {
                return Err(too_large());
            }
            match first.take() {
                None if joined.is_empty() => first = Some(data),
                held => {
                    if let Some(held) = held {
                        // Room for what is declared to come, so the buffer grows once.
                        let rest = usize::try_from(body.size_hint().lower()).unwrap_or(0);
                        joined.reserve(held.len() + data.len() + rest);
                        joined.extend_from_slice(&held);
                    }
                    joined.extend_from_slice(&data);
                }
            }
            // All of a `Content-Length` body is in: its end need not be polled for.
            if body.is_end_stream() {
                break;
            }
        }
        Ok(match first {
            Some(only) => RawBody {
                shared: only,
                borrowed: true,
            },
            None => RawBody {
                shared: joined.freeze(),
                borrowed: false,
            },
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs CPU-heavy work on a body (decompression, protobuf decoding) inline when the body
/// is small, and off the async worker threads when it is large, so one 10 MiB request
/// does not stall every connection sharing its worker. Off the runtime, as many bodies
/// are decoded at once as there are cores, and the others wait their turn: more would
/// not decode faster, and each would hold its memory longer (and spread it over more of
/// the allocator's arenas). The work counts what it holds in `hold`, which it owns while
/// it runs off the runtime.
pub async fn off_the_runtime_if_large<T, F>(
    len: usize,
    hold: &mut DecodeHold<'_>,
    work: F,
) -> Result<T, IngestError>
where
    F: FnOnce(&mut DecodeHold<'_>) -> Result<T, IngestError> + Send + 'static,
    T: Send + 'static,
{
    if len <= INLINE_DECODE_MAX {
        return work(hold);
    }
    let budget = Arc::clone(hold.budget());
    let _turn = budget.turn().await;
    let mut detached = hold.detach();
    let (result, detached) = tokio::task::spawn_blocking(move || {
        let result = work(&mut detached);
        (result, detached)
    })
    .await
    .map_err(|_| IngestError::BodyRead)?;
    *hold = detached;
    result
}

/// Decompresses `raw` whole, stopping one byte past `max` so a bomb is refused without
/// being inflated. The output grows a piece at a time, each counted in `hold` first.
pub fn decompress(
    raw: Bytes,
    encoding: Encoding,
    max: u64,
    hold: &mut DecodeHold<'_>,
) -> Result<Bytes, IngestError> {
    if encoding == Encoding::Identity {
        return Ok(raw);
    }
    let mut inflate = Inflate::new(raw, encoding, max)?;
    let mut out: Vec<u8> = Vec::new();
    let limit = inflate.limit();
    let mut wanted = inflate.size_hint();
    loop {
        if out.len() == out.capacity() {
            let had = out.capacity();
            let grown = wanted.max(had.saturating_mul(2)).min(limit);
            hold.grow(grown)?;
            out.reserve_exact(grown - out.len());
            hold.shrink(had);
            wanted = 0;
        }
        let room = out.capacity();
        if inflate.fill(&mut out, room)? {
            return Ok(Bytes::from(out));
        }
    }
}

/// A compressed body being decompressed: at most `max` bytes come out, and one more is an
/// error (413), so a bomb is never inflated past its cap. `deflate` accepts zlib-wrapped
/// data (RFC 9110) and raw deflate (what some clients send).
pub struct Inflate {
    reader: Box<dyn Read + Send>,
    name: &'static str,
    max: u64,
    out: u64,
    size_hint: usize,
}

impl Inflate {
    /// `encoding` is gzip or deflate (identity reads `raw` as it is). A gzip body whose
    /// trailer tells a size over `max` is refused before anything is inflated.
    pub fn new(raw: Bytes, encoding: Encoding, max: u64) -> Result<Inflate, IngestError> {
        // A gzip stream ends with its size mod 2^32 (of its last member): what most
        // bodies decompress to, and never more than deflate's 1032:1. Otherwise a guess.
        let size_hint = match (encoding, raw.len()) {
            (Encoding::Gzip, n) if n >= 18 => {
                let trailer: [u8; 4] = raw[n - 4..].try_into().expect("four bytes");
                usize::try_from(u32::from_le_bytes(trailer))
                    .unwrap_or(usize::MAX)
                    .min(n.saturating_mul(1032))
            }
            (_, n) => n.saturating_mul(4),
        };
        let limit = max.saturating_add(1);
        let raw = Cursor::new(raw);
        let (reader, name): (Box<dyn Read + Send>, _) = match encoding {
            Encoding::Identity => (Box::new(raw.take(limit)), "identity"),
            Encoding::Gzip => (Box::new(MultiGzDecoder::new(raw).take(limit)), "gzip"),
            Encoding::Deflate if looks_like_zlib(raw.get_ref()) => {
                (Box::new(ZlibDecoder::new(raw).take(limit)), "deflate")
            }
            Encoding::Deflate => (Box::new(DeflateDecoder::new(raw).take(limit)), "deflate"),
        };
        if size_hint as u64 > max && encoding == Encoding::Gzip {
            return Err(IngestError::TooLarge {
                what: "decompressed body",
                limit: max,
            });
        }
        let mut inflate = Inflate {
            reader,
            name,
            max,
            out: 0,
            size_hint: 0,
        };
        // One more than the body, so its end is seen without a second read.
        inflate.size_hint = size_hint.saturating_add(1).min(inflate.limit());
        Ok(inflate)
    }

    /// What the body probably decompresses to, plus one byte; at most `limit`.
    pub fn size_hint(&self) -> usize {
        self.size_hint
    }

    /// The most output to make room for: `max` and the byte that makes it a 413.
    pub fn limit(&self) -> usize {
        usize::try_from(self.max.saturating_add(1)).unwrap_or(usize::MAX)
    }

    /// Appends decompressed bytes to `out` until it holds `upto` (within its capacity) or
    /// the body ends: `true` once it has ended.
    pub fn fill(&mut self, out: &mut Vec<u8>, upto: usize) -> Result<bool, IngestError> {
        while out.len() < upto {
            let len = out.len();
            out.resize(len + (upto - len).min(READ_STEP), 0);
            let n = self.read(&mut out[len..]);
            out.truncate(len + n.as_ref().map_or(0, |n| *n));
            if n? == 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, IngestError> {
        let n = self
            .reader
            .read(buf)
            .map_err(|_| IngestError::BadEncoding {
                encoding: self.name,
            })?;
        self.out += n as u64;
        if self.out > self.max {
            return Err(IngestError::TooLarge {
                what: "decompressed body",
                limit: self.max,
            });
        }
        Ok(n)
    }
}

/// A zlib stream starts with CMF/FLG: deflate method and a header checksum divisible by 31.
fn looks_like_zlib(raw: &[u8]) -> bool {
    match raw {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::budget::tests::budget;
    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use std::io::Write;

    fn compress<W: Write>(mut w: W, data: &[u8]) -> W {
        w.write_all(data).unwrap();
        w
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        compress(GzEncoder::new(Vec::new(), Compression::best()), data)
            .finish()
            .unwrap()
    }

    fn inflate(raw: &[u8], encoding: Encoding, max: u64) -> Result<Bytes, IngestError> {
        let budget = DecodeBudget::unlimited();
        decompress(
            Bytes::copy_from_slice(raw),
            encoding,
            max,
            &mut DecodeHold::new(&budget),
        )
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_all_decode() {
        let data = b"line one\nline two\n".repeat(100);
        let gz = compress(GzEncoder::new(Vec::new(), Compression::fast()), &data)
            .finish()
            .unwrap();
        let zl = compress(ZlibEncoder::new(Vec::new(), Compression::fast()), &data)
            .finish()
            .unwrap();
        let raw = compress(DeflateEncoder::new(Vec::new(), Compression::fast()), &data)
            .finish()
            .unwrap();
        assert_eq!(inflate(&gz, Encoding::Gzip, 1 << 20).unwrap(), data);
        assert_eq!(inflate(&zl, Encoding::Deflate, 1 << 20).unwrap(), data);
        assert_eq!(inflate(&raw, Encoding::Deflate, 1 << 20).unwrap(), data);
    }

    #[test]
    fn decompression_stops_at_the_cap() {
        let gz = gzip(&vec![0u8; 1 << 20]);
        assert!(matches!(
            inflate(&gz, Encoding::Gzip, 1000),
            Err(IngestError::TooLarge { .. })
        ));
        assert_eq!(
            inflate(&gz, Encoding::Gzip, 1 << 20).unwrap().len(),
            1 << 20
        );
    }

    #[test]
    fn garbage_is_bad_encoding() {
        assert!(matches!(
            inflate(b"not gzip at all", Encoding::Gzip, 1000),
            Err(IngestError::BadEncoding { .. })
        ));
    }

    #[test]
    fn gzip_members_and_a_false_size_trailer_still_decode_whole() {
        // Each member's trailer tells its own size: the last one says 3 bytes of 3 MiB.
        let mut body = gzip(&vec![b'a'; 3 << 20]);
        body.extend(gzip(b"end"));
        let out = inflate(&body, Encoding::Gzip, 4 << 20).unwrap();
        assert_eq!(out.len(), (3 << 20) + 3);
        assert!(out.ends_with(b"aend"));
        // A trailer claiming 4 GiB is only a hint, within what deflate can expand to; the
        // stream is then found to be lying (gzip checks the size it tells).
        let mut liar = gzip(b"small");
        let n = liar.len();
        liar[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        let hint = Inflate::new(Bytes::from(liar.clone()), Encoding::Gzip, 1 << 20)
            .unwrap()
            .size_hint();
        assert_eq!(hint, n * 1032 + 1);
        assert!(matches!(
            inflate(&liar, Encoding::Gzip, 1 << 20),
            Err(IngestError::BadEncoding { .. })
        ));
    }

    #[test]
    fn decompressed_bytes_are_taken_from_the_budget_before_they_are_allocated() {
        let budget = budget(4 << 20);
        let gz = Bytes::from(gzip(&vec![0u8; 3 << 20]));
        let mut hold = DecodeHold::new(&budget);
        let out = decompress(gz.clone(), Encoding::Gzip, 8 << 20, &mut hold).unwrap();
        assert_eq!(out.len(), 3 << 20);
        assert!(budget.taken() >= hold.used() - crate::ingest::budget::UNCOUNTED_BYTES);
        assert!(hold.used() >= 3 << 20, "{}", hold.used());
        // Another request finds 1 MiB left: it is refused before it holds more.
        let mut other = DecodeHold::new(&budget);
        assert!(matches!(
            decompress(gz, Encoding::Gzip, 8 << 20, &mut other),
            Err(IngestError::DecodeBusy { .. })
        ));
        drop((hold, other));
        assert_eq!(budget.taken(), 0, "both gave everything back");
    }
}

//! Reading a request body within its limits: the size is checked against `Content-Length`
//! before reading, the read itself is capped and timed, and decompression is capped too,
//! so a gzip bomb costs at most `max_decompressed_bytes` of memory before its 413.

use std::io::Read;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use futures_util::FutureExt;
use http::{HeaderMap, header};
use http_body_util::{BodyExt, Limited};

use super::error::IngestError;
use crate::server::body::OverBudget;

/// Decompression of bodies larger than this moves off the async worker threads.
const INLINE_DECODE_MAX: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_decompressed_bytes: u64,
    pub max_line_bytes: usize,
    pub body_read_timeout: Duration,
    /// The `Retry-After` of a 503 for load: requests or body bytes in flight.
    pub retry_after: Duration,
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
        let Some(value) = headers.get(header::CONTENT_ENCODING) else {
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

/// Reads the whole body within `limits` and returns it decompressed.
pub async fn read_body<B>(
    headers: &HeaderMap,
    body: B,
    limits: &Limits,
) -> Result<Bytes, IngestError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let encoding = Encoding::from_headers(headers)?;
    let raw = read_raw_body(headers, body, limits).await?;
    if encoding == Encoding::Identity {
        return Ok(raw);
    }
    let max = limits.max_decompressed_bytes;
    off_the_runtime_if_large(raw.len(), move || decompress(&raw, encoding, max)).await
}

/// Reads the whole body as sent, within `max_body_bytes` and the body timeout, without
/// looking at `Content-Encoding` (remote_write decodes its own snappy).
pub async fn read_raw_body<B>(
    headers: &HeaderMap,
    body: B,
    limits: &Limits,
) -> Result<Bytes, IngestError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = IngestError::TooLarge {
        what: "body",
        limit: limits.max_body_bytes,
    };
    if declared_length(headers).is_some_and(|n| n > limits.max_body_bytes) {
        return Err(too_large);
    }
    let cap = usize::try_from(limits.max_body_bytes).unwrap_or(usize::MAX);
    let deadline = tokio::time::Instant::now() + limits.body_read_timeout;
    collect(Limited::new(body, cap), deadline)
        .await
        .map_err(|e| match e {
            None => IngestError::BodyTimeout(limits.body_read_timeout),
            Some(e) if e.is::<http_body_util::LengthLimitError>() => too_large,
            Some(e) if e.is::<OverBudget>() => IngestError::OverBudget {
                retry_after: limits.retry_after,
            },
            Some(_) => IngestError::BodyRead,
        })
}

/// The body's bytes, by `deadline` (`Err(None)` past it). Frames already received are
/// taken without arming a timer. A body of one frame (most small requests) is copied once:
/// as it came it is a slice of the connection's read buffer, and kept that way (an OTLP
/// request is forwarded as sent) it would hold the whole buffer, 8 KiB or more, while it
/// waits for the sink, and make the connection allocate a new buffer for its next read.
async fn collect<B>(body: B, deadline: tokio::time::Instant) -> Result<Bytes, Option<BoxError>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    loop {
        let frame = match body.as_mut().frame().now_or_never() {
            Some(frame) => frame,
            None => tokio::time::timeout_at(deadline, body.as_mut().frame())
                .await
                .map_err(|_| None)?,
        };
        let Some(frame) = frame else { break };
        let Ok(data) = frame.map_err(|e| Some(e.into()))?.into_data() else {
            continue; // trailers
        };
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
    }
    Ok(match first {
        Some(only) => Bytes::copy_from_slice(&only),
        None => joined.freeze(),
    })
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body's `Content-Length`, when it has a valid one.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Runs CPU-heavy work on a body (decompression, protobuf decoding) inline when the body
/// is small, and off the async worker threads when it is large, so one 10 MiB request
/// does not stall every connection sharing its worker.
pub async fn off_the_runtime_if_large<T, F>(len: usize, work: F) -> Result<T, IngestError>
where
    F: FnOnce() -> Result<T, IngestError> + Send + 'static,
    T: Send + 'static,
{
    if len <= INLINE_DECODE_MAX {
        work()
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| IngestError::BodyRead)?
    }
}

/// Decompresses `raw`, stopping one byte past `max` so a bomb is refused without being
/// inflated. `deflate` accepts zlib-wrapped data (RFC 9110) and raw deflate (what some
/// clients send).
pub fn decompress(raw: &[u8], encoding: Encoding, max: u64) -> Result<Bytes, IngestError> {
    let (reader, name): (Box<dyn Read + '_>, _) = match encoding {
        Encoding::Identity => return Ok(Bytes::copy_from_slice(raw)),
        Encoding::Gzip => (Box::new(MultiGzDecoder::new(raw)), "gzip"),
        Encoding::Deflate if looks_like_zlib(raw) => (Box::new(ZlibDecoder::new(raw)), "deflate"),
        Encoding::Deflate => (Box::new(DeflateDecoder::new(raw)), "deflate"),
    };
    let estimate = raw
        .len()
        .saturating_mul(4)
        .min(usize::try_from(max).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(estimate);
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|_| IngestError::BadEncoding { encoding: name })?;
    if out.len() as u64 > max {
        return Err(IngestError::TooLarge {
            what: "decompressed body",
            limit: max,
        });
    }
    Ok(Bytes::from(out))
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
    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use std::io::Write;

    fn compress<W: Write>(mut w: W, data: &[u8]) -> W {
        w.write_all(data).unwrap();
        w
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
        assert_eq!(decompress(&gz, Encoding::Gzip, 1 << 20).unwrap(), data);
        assert_eq!(decompress(&zl, Encoding::Deflate, 1 << 20).unwrap(), data);
        assert_eq!(decompress(&raw, Encoding::Deflate, 1 << 20).unwrap(), data);
    }

    #[test]
    fn decompression_stops_at_the_cap() {
        let zeros = vec![0u8; 1 << 20];
        let gz = compress(GzEncoder::new(Vec::new(), Compression::best()), &zeros)
            .finish()
            .unwrap();
        assert!(matches!(
            decompress(&gz, Encoding::Gzip, 1000),
            Err(IngestError::TooLarge { .. })
        ));
        assert_eq!(
            decompress(&gz, Encoding::Gzip, 1 << 20).unwrap().len(),
            1 << 20
        );
    }

    #[test]
    fn garbage_is_bad_encoding() {
        assert!(matches!(
            decompress(b"not gzip at all", Encoding::Gzip, 1000),
            Err(IngestError::BadEncoding { .. })
        ));
    }
}

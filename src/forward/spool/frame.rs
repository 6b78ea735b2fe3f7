//! The frame codec: how one spooled entry is laid out on disk, and how a frame is found
//! and checked again. `magic u32 | len u32 | crc32c(body) u32 | body`, little-endian; the
//! body holds the entry's seq, its envelope and its payloads.
//!
//! It owns the byte layout only: it never decides what a corrupt frame means (skip it or
//! truncate a torn tail — the reader does) and never writes a file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use bytes::Bytes;

use crate::forward::record::{ContentType, Envelope, Payloads, RecordBatch};
use crate::model::{AccountId, Kind, TokenId};

pub(super) const MAGIC: u32 = 0x3154_4754; // "TGT1" little-endian
pub(super) const HEADER: usize = 12;
/// Larger than any entry ingest can produce (a decompressed body is capped well below).
const MAX_FRAME: u32 = 1 << 30;

pub(super) enum Frame {
    Valid { body: Bytes, end: u64 },
    Corrupt,
}

/// Reads and checks the frame at `offset`; anything that is not a whole valid frame
/// ending at or before `limit` is `Corrupt`.
pub(super) fn read_frame(file: &File, offset: u64, limit: u64) -> io::Result<Frame> {
    if limit - offset < HEADER as u64 {
        return Ok(Frame::Corrupt);
    }
    let mut header = [0u8; HEADER];
    file.read_exact_at(&mut header, offset)?;
    let word = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    let (magic, len, crc) = (word(0), word(4), word(8));
    let end = offset + HEADER as u64 + u64::from(len);
    if magic != MAGIC || len > MAX_FRAME || end > limit {
        return Ok(Frame::Corrupt);
    }
    let mut body = vec![0u8; len as usize];
    file.read_exact_at(&mut body, offset + HEADER as u64)?;
    if crc32c::crc32c(&body) != crc {
        return Ok(Frame::Corrupt);
    }
    Ok(Frame::Valid {
        body: Bytes::from(body),
        end,
    })
}

/// The offset of the next valid frame at or after `from`, if any.
pub(super) fn resync(file: &File, from: u64, limit: u64) -> io::Result<Option<u64>> {
    let magic = MAGIC.to_le_bytes();
    let mut chunk_start = from;
    let mut chunk = vec![0u8; 1 << 20];
    while chunk_start < limit {
        let n = (limit - chunk_start).min(chunk.len() as u64) as usize;
        file.read_exact_at(&mut chunk[..n], chunk_start)?;
        for i in memchr::memmem::find_iter(&chunk[..n], &magic) {
            let candidate = chunk_start + i as u64;
            if matches!(read_frame(file, candidate, limit)?, Frame::Valid { .. }) {
                return Ok(Some(candidate));
            }
        }
        // Overlap by 3 bytes so a magic split across chunks is still found.
        chunk_start += (n as u64).saturating_sub(3).max(1);
    }
    Ok(None)
}

/// Whether the bytes from `from` to `limit` are all zero: the writer's runway.
pub(super) fn all_zeros(file: &File, from: u64, limit: u64) -> io::Result<bool> {
    let mut chunk = vec![0u8; (limit - from).min(64 << 10) as usize];
    let mut at = from;
    while at < limit {
        let n = (limit - at).min(chunk.len() as u64) as usize;
        file.read_exact_at(&mut chunk[..n], at)?;
        if chunk[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// Appends one frame holding `batch` as entry `seq`.
pub(super) fn encode_frame(seq: u64, batch: &RecordBatch, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    let e = &batch.envelope;
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(e.kind as u8);
    out.push(e.content_type.code());
    out.extend_from_slice(&e.account_id.0.to_le_bytes());
    put_str(out, &e.token_id.0);
    match &e.log_type {
        Some(t) => {
            out.push(1);
            put_str(out, t);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&(batch.payloads.len() as u32).to_le_bytes());
    for p in &batch.payloads {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    let body_len = (out.len() - start - HEADER) as u32;
    let crc = crc32c::crc32c(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&MAGIC.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&body_len.to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Decodes a frame body whose CRC already matched. Payloads are slices of `body`.
pub(super) fn decode_body(body: Bytes) -> Result<(u64, RecordBatch), ()> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<std::ops::Range<usize>, ()> {
        let range = pos..pos.checked_add(n).ok_or(())?;
        if range.end > body.len() {
            return Err(());
        }
        pos = range.end;
        Ok(range)
    };
    let u64_at =
        |r: std::ops::Range<usize>| u64::from_le_bytes(body[r].try_into().expect("8 bytes"));
    let u32_at =
        |r: std::ops::Range<usize>| u32::from_le_bytes(body[r].try_into().expect("4 bytes"));
    let seq = u64_at(take(8)?);
    let kind = match body[take(1)?][0] {
        0 => Kind::Logs,
        1 => Kind::Metrics,
        2 => Kind::Traces,
        _ => return Err(()),
    };
    let content_type = ContentType::from_code(body[take(1)?][0]).ok_or(())?;
    let account_id = AccountId(u64_at(take(8)?));
    let len = u32_at(take(4)?) as usize;
    let token_id = std::str::from_utf8(&body[take(len)?])
        .map_err(|_| ())?
        .into();
    let log_type = match body[take(1)?][0] {
        0 => None,
        _ => {
            let len = u32_at(take(4)?) as usize;
            Some(
                std::str::from_utf8(&body[take(len)?])
                    .map_err(|_| ())?
                    .into(),
            )
        }
    };
    let count = u32_at(take(4)?) as usize;
    let mut payloads = Payloads::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        let len = u32_at(take(4)?) as usize;
        payloads.push(body.slice(take(len)?));
    }
    Ok((
        seq,
        RecordBatch {
            envelope: Envelope {
                kind,
                account_id,
                token_id: TokenId(token_id),
                log_type,
                content_type,
            },
            payloads,
        },
    ))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::forward::record::tests::batch;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        encode_frame(42, &batch(&["{\"a\":1}", "{}"]), &mut buf);
        let body = Bytes::copy_from_slice(&buf[HEADER..]);
        let (seq, back) = decode_body(body).unwrap();
        assert_eq!(seq, 42);
        assert_eq!(
            &back.payloads[..],
            [Bytes::from_static(b"{\"a\":1}"), Bytes::from_static(b"{}")]
        );
        assert_eq!(back.envelope.log_type.as_deref(), Some("nginx"));
        assert_eq!(back.envelope.account_id, AccountId(1001));
    }
}

//! One JSON log line read once, without building it: that it is a valid object, whether
//! it has a `type` or a field tollgate owns, and the raw values (borrowed from the line) of
//! the top-level keys the account's drop filters read, which `Captured` serves to them.
//!
//! Two readers give the same answer. `quick` walks the bytes of a line in one pass and
//! decides the lines shippers send; it leaves an escaped top-level key (serde_json decodes
//! it) and nesting past `QUICK_DEPTH` to serde_json (`scan_by_serde`, the reference).
//! serde_json's own reading costs about twice as much on a typical line (~3,300
//! instructions against ~1,700 on logs-small's: visitor calls per key and value); the
//! `json_line` fuzz target checks that the two agree on every input.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use wide::u8x16;

use crate::filters;
use crate::filters::logs::{Fields, Scalar, scalar_of};

/// Fields tollgate owns; a client-sent field of one of these names is dropped.
pub const RESERVED_FIELDS: [&str; 4] = ["_account_id", "_token_id", "_kind", "_type"];

/// Reads `text` as one JSON object (nothing after it), keeping the values of `wanted`.
pub fn scan<'de>(text: &'de str, wanted: &[Box<str>]) -> Option<TopLevelKeys<'de>> {
    match quick(text, wanted) {
        Quick::Read(keys) => Some(keys),
        Quick::Stopped(Stop::Invalid) => None,
        Quick::Stopped(Stop::Unsure) => scan_by_serde(text, wanted),
    }
}

/// `scan` as serde_json reads it: the reference `quick` agrees with.
pub fn scan_by_serde<'de>(text: &'de str, wanted: &[Box<str>]) -> Option<TopLevelKeys<'de>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let keys = Scan { wanted }.deserialize(&mut de).ok()?;
    de.end().ok().map(|()| keys)
}

/// Validates a JSON object without building it, noting the top-level keys that matter and
/// keeping the raw values of the `wanted` ones (borrowed from the line).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TopLevelKeys<'de> {
    pub has_type: bool,
    pub has_reserved: bool,
    /// `(index in wanted, the value's JSON text)`.
    pub captured: Vec<(usize, &'de str)>,
}

impl TopLevelKeys<'_> {
    /// Notes a top-level key; the index in `wanted` its value is kept under, if it is.
    fn note(&mut self, key: Key, wanted: &[Box<str>]) -> Option<usize> {
        match key {
            Key::Type => {
                self.has_type = true;
                (!wanted.is_empty()).then_some(0)
            }
            Key::Reserved => {
                self.has_reserved = true;
                None
            }
            Key::Wanted(i) => Some(i),
            Key::Other => None,
        }
    }
}

/// Reads a line as `TopLevelKeys`, keeping the values of `wanted` (a drop filter's keys,
/// `type` first; empty without filters, when nothing is kept or allocated).
struct Scan<'w> {
    wanted: &'w [Box<str>],
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = TopLevelKeys<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TopLevelKeys<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = TopLevelKeys<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevelKeys<'de>, A::Error> {
        let mut keys = TopLevelKeys::default();
        let wanted = self.wanted;
        while let Some(key) = map.next_key_seed(KeySeed { wanted })? {
            match keys.note(key, wanted) {
                Some(i) => {
                    let raw = map.next_value::<&'de RawValue>()?;
                    keys.captured.push((i, raw.get()));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(keys)
    }
}

enum Key {
    Type,
    Reserved,
    /// A key a drop filter reads: its index in the wanted keys.
    Wanted(usize),
    Other,
}

struct KeySeed<'w> {
    wanted: &'w [Box<str>],
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key::of(v, self.wanted))
    }
}

impl Key {
    #[inline(always)]
    fn of(key: &str, wanted: &[Box<str>]) -> Key {
        // By length and first byte before comparing: most keys are neither.
        let b = key.as_bytes();
        match (b.len(), b.first()) {
            (4, Some(b't')) if b == b"type" => Key::Type,
            (5 | 9 | 11, Some(b'_')) if RESERVED_FIELDS.contains(&key) => Key::Reserved,
            _ => match wanted.iter().position(|w| **w == *key) {
                Some(i) => Key::Wanted(i),
                None => Key::Other,
            },
        }
    }
}

/// What the quick reading of a line found.
enum Quick<'de> {
    Read(TopLevelKeys<'de>),
    Stopped(Stop),
}

/// Why the quick reading stopped.
#[derive(Clone, Copy)]
enum Stop {
    /// Not one JSON object, whoever reads it.
    Invalid,
    /// Something it leaves to serde_json: an escape in a top-level key (serde_json
    /// decodes it, and checks its surrogates), nesting deeper than `QUICK_DEPTH`.
    Unsure,
}

/// How deep `quick` follows nested values (a bit a level); deeper is left to serde_json.
const QUICK_DEPTH: u32 = 64;

/// Reads `text` in one pass as serde_json's reading does: RFC 8259's grammar, numbers of
/// any size, `\u` escapes in values not checked for surrogates, no control character in a
/// string.
fn quick<'de>(text: &'de str, wanted: &[Box<str>]) -> Quick<'de> {
    let mut at = Cursor { text, i: 0 };
    match at.object(wanted) {
        Ok(keys) if at.skip_spaces().is_none() => Quick::Read(keys),
        Ok(_) => Quick::Stopped(Stop::Invalid),
        Err(stop) => Quick::Stopped(stop),
    }
}

/// A position in a line being read by `quick`.
struct Cursor<'de> {
    text: &'de str,
    i: usize,
}

impl<'de> Cursor<'de> {
    /// Passes whitespace; the byte after it.
    #[inline(always)]
    fn skip_spaces(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        loop {
            let b = *bytes.get(self.i)?;
            // No byte above the space is whitespace: most often one comparison.
            if b > b' ' || !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(b);
            }
            self.i += 1;
        }
    }

    /// Takes `byte`, after whitespace if there is any.
    #[inline(always)]
    fn expect(&mut self, byte: u8) -> Result<(), Stop> {
        let next = self.text.as_bytes().get(self.i).copied();
        if next != Some(byte) && self.skip_spaces() != Some(byte) {
            return Err(Stop::Invalid);
        }
        self.i += 1;
        Ok(())
    }

    /// The top-level object, its keys noted and the wanted ones' values kept.
    fn object(&mut self, wanted: &[Box<str>]) -> Result<TopLevelKeys<'de>, Stop> {
        let mut keys = TopLevelKeys::default();
        self.expect(b'{')?;
        if self.skip_spaces() == Some(b'}') {
            self.i += 1;
            return Ok(keys);
        }
        loop {
            self.expect(b'"')?;
            let start = self.i;
            if self.string()? {
                return Err(Stop::Unsure); // an escaped key: serde_json decodes it
            }
            let key = &self.text[start..self.i - 1];
            self.expect(b':')?;
            let keep = keys.note(Key::of(key, wanted), wanted);
            let first = self.skip_spaces();
            let start = self.i;
            if first == Some(b'"') {
                // Most values are strings: read here, not through `value`'s nesting.
                self.i += 1;
                self.string()?;
            } else {
                self.value()?;
            }
            if let Some(i) = keep {
                keys.captured.push((i, &self.text[start..self.i]));
            }
            match self.skip_spaces() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(keys);
                }
                _ => return Err(Stop::Invalid),
            }
        }
    }

    /// Passes one value of any kind; nested arrays and objects are followed with a stack
    /// of one bit a level (set: an object).
    fn value(&mut self) -> Result<(), Stop> {
        let mut objects: u64 = 0;
        let mut depth = 0;
        loop {
            // A value starts here.
            let Some(b) = self.skip_spaces() else {
                return Err(Stop::Invalid);
            };
            self.i += 1;
            let opened = match b {
                b'{' | b'[' if self.skip_spaces() == Some(if b == b'{' { b'}' } else { b']' }) => {
                    self.i += 1; // `{}` or `[]`
                    false
                }
                b'{' | b'[' => {
                    if depth == QUICK_DEPTH {
                        return Err(Stop::Unsure);
                    }
                    objects = objects << 1 | u64::from(b == b'{');
                    depth += 1;
                    true
                }
                _ => {
                    self.scalar(b)?;
                    false
                }
            };
            if opened {
                if objects & 1 == 1 {
                    self.member_key()?;
                }
                continue;
            }
            // A value ended: close what it ends, up to the next one.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let in_object = objects & 1 == 1;
                match self.skip_spaces() {
                    Some(b',') => {
                        self.i += 1;
                        if in_object {
                            self.member_key()?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {}
                    Some(b']') if !in_object => {}
                    _ => return Err(Stop::Invalid),
                }
                self.i += 1;
                objects >>= 1;
                depth -= 1;
            }
        }
    }

    /// A nested object's key (escapes allowed: it is only passed) and its colon.
    fn member_key(&mut self) -> Result<(), Stop> {
        self.expect(b'"')?;
        self.string()?;
        self.expect(b':')
    }

    /// Passes a string whose opening quote was taken, up to its closing one; whether it
    /// has escapes. An escape is `\` and one of `"\/bfnrt`, or `u` and four hex digits.
    #[inline(always)]
    fn string(&mut self) -> Result<bool, Stop> {
        let bytes = self.text.as_bytes();
        let mut escaped = false;
        loop {
            let Some(n) = string_stop(&bytes[self.i..]) else {
                return Err(Stop::Invalid);
            };
            self.i += n + 1;
            match bytes[self.i - 1] {
                b'"' => return Ok(escaped),
                b'\\' => escaped = true,
                _ => return Err(Stop::Invalid), // a control character
            }
            match bytes.get(self.i) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                Some(b'u') => {
                    let hex = bytes.get(self.i + 1..self.i + 5).ok_or(Stop::Invalid)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(Stop::Invalid);
                    }
                    self.i += 5;
                }
                _ => return Err(Stop::Invalid),
            }
        }
    }

    /// A string, number, `true`, `false` or `null` whose first byte, `first`, was taken.
    fn scalar(&mut self, first: u8) -> Result<(), Stop> {
        let rest: &[u8] = match first {
            b'"' => return self.string().map(drop),
            b'-' | b'0'..=b'9' => return self.number(first),
            b't' => b"rue",
            b'f' => b"alse",
            b'n' => b"ull",
            _ => return Err(Stop::Invalid),
        };
        if !self.text.as_bytes()[self.i..].starts_with(rest) {
            return Err(Stop::Invalid);
        }
        self.i += rest.len();
        Ok(())
    }

    /// A number whose first byte, `first`, was taken: `-`? (`0` | [1-9][0-9]*)
    /// (`.` [0-9]+)? ([eE] [+-]? [0-9]+)?, of any size.
    fn number(&mut self, first: u8) -> Result<(), Stop> {
        let bytes = self.text.as_bytes();
        let mut lead = first;
        if first == b'-' {
            lead = *bytes.get(self.i).ok_or(Stop::Invalid)?;
            self.i += 1;
        }
        match lead {
            b'0' => {}
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return Err(Stop::Invalid),
        }
        if bytes.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(Stop::Invalid);
            }
        }
        if let Some(b'e' | b'E') = bytes.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = bytes.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(Stop::Invalid);
            }
        }
        Ok(())
    }

    /// Passes ASCII digits; how many.
    fn digits(&mut self) -> usize {
        let bytes = self.text.as_bytes();
        let start = self.i;
        while bytes.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }
}

/// Where the first `"`, `\\` or control character (below 0x20) of `bytes` is. Sixteen
/// bytes at a time (`wide`: SSE2 on x86-64, NEON on aarch64, plain code elsewhere): strings
/// in log lines are mostly short, where memchr's search costs more to start than it saves;
/// the last bytes of a line are looked at in a padded copy.
#[inline(always)]
fn string_stop(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 16) {
        if let Some(n) = stop_in(chunk.try_into().expect("sixteen bytes")) {
            return Some(i + n);
        }
        i += 16;
    }
    // Padded with spaces, which stop nothing.
    let rest = &bytes[i..];
    let mut last = [b' '; 16];
    last[..rest.len()].copy_from_slice(rest);
    stop_in(last).map(|n| i + n)
}

/// `string_stop` in one block of sixteen bytes.
#[inline(always)]
fn stop_in(block: [u8; 16]) -> Option<usize> {
    let v = u8x16::new(block);
    let quote = v.simd_eq(u8x16::splat(b'"'));
    let backslash = v.simd_eq(u8x16::splat(b'\\'));
    let control = v.min(u8x16::splat(0x1f)).simd_eq(v);
    let found = (quote | backslash | control).to_bitmask();
    (found != 0).then(|| found.trailing_zeros() as usize)
}

/// A line's fields as its check kept them: the raw values of the wanted top-level keys.
/// A dotted name the line has as a key is read as it is; else its longest dotted prefix
/// that is a key is parsed and descended into (`filters::field`'s reading).
pub struct Captured<'a> {
    pub wanted: &'a [Box<str>],
    pub values: &'a [(usize, &'a str)],
}

impl Captured<'_> {
    fn raw(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(i, _)| *self.wanted[*i] == *name)
            .map(|(_, raw)| *raw)
    }
}

impl Fields for Captured<'_> {
    fn scalar(&self, name: &str) -> Scalar<'_> {
        if let Some(raw) = self.raw(name) {
            return raw_scalar(raw);
        }
        for (at, _) in name.rmatch_indices('.') {
            if let Some(raw) = self.raw(&name[..at]) {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(raw) else {
                    return Scalar::Other;
                };
                return match scalar_of(filters::field(&value, &name[at + 1..])) {
                    Scalar::Text(t) => Scalar::Text(Cow::Owned(t.into_owned())),
                    Scalar::Number(n) => Scalar::Number(n),
                    Scalar::Other => Scalar::Other,
                };
            }
        }
        Scalar::Other
    }
}

/// A raw JSON value as a condition reads it; a string without escapes is borrowed.
fn raw_scalar(text: &str) -> Scalar<'_> {
    match text.as_bytes().first() {
        Some(b'"') if !text.contains('\\') => Scalar::Text(Cow::Borrowed(&text[1..text.len() - 1])),
        Some(b'"') => serde_json::from_str::<String>(text)
            .map_or(Scalar::Other, |s| Scalar::Text(Cow::Owned(s))),
        Some(b'-' | b'0'..=b'9') => {
            serde_json::from_str::<serde_json::Number>(text).map_or(Scalar::Other, Scalar::Number)
        }
        _ => Scalar::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(keys: &[&str]) -> Vec<Box<str>> {
        keys.iter().map(|k| Box::from(*k)).collect()
    }

    /// Lines on both sides of every rule `quick` applies; each is read by both readers.
    const LINES: &[&str] = &[
        r#"{}"#,
        r#"{ }"#,
        "{\t\"a\" :\r 1 }",
        r#"{"a":1}"#,
        r#"{"a":1,}"#,
        r#"{"a":1 "b":2}"#,
        r#"{"a" 1}"#,
        r#"{a:1}"#,
        r#"{"a":1} "#,
        r#"{"a":1}x"#,
        r#"{"a":1}{}"#,
        r#"{"a":"#,
        r#"{"a":"x"#,
        r#"{"a":"x\"#,
        r#"[1]"#,
        r#"{"type":"nginx","message":"GET / 200"}"#,
        r#"{"_account_id":7,"message":"x"}"#,
        r#"{"_kind":1,"_type":2,"_token_id":3,"_other":4}"#,
        r#"{"typ\u0065":"x"}"#,
        r#"{"\ud800":1}"#,
        r#"{"a":"\ud800"}"#,
        r#"{"a":"\u12g4"}"#,
        r#"{"a":"\u12"}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":"\"\\\/\b\f\n\r\t"}"#,
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"nul\u{0}\"}",
        "{\"a\":\"é ü 日本 \u{1F600}\"}",
        "{\"a\":\"\u{7f}\"}",
        r#"{"a":0,"b":-0,"c":0.5,"d":-1.25e-3,"e":1E+9,"f":1e999,"g":123456789012345678901234567890}"#,
        r#"{"a":01}"#,
        r#"{"a":-}"#,
        r#"{"a":1.}"#,
        r#"{"a":.5}"#,
        r#"{"a":1e}"#,
        r#"{"a":1e+}"#,
        r#"{"a":+1}"#,
        r#"{"a":-a}"#,
        r#"{"a":true,"b":false,"c":null}"#,
        r#"{"a":tru}"#,
        r#"{"a":nul}"#,
        r#"{"a":True}"#,
        r#"{"a":[],"b":{},"c":[[]],"d":{"e":{}}}"#,
        r#"{"a":[1,2,[3,{"b":[4]}]],"c":{"d":"e","f":[true,null]}}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":[,1]}"#,
        r#"{"a":{"b"}}"#,
        r#"{"a":{"b":}}"#,
        r#"{"a":{1:2}}"#,
        r#"{"a":{"b":1,}}"#,
        r#"{"a":[}"#,
        r#"{"a":{]}"#,
        r#"{"a":[1}"#,
        r#"{"a":{"\u0000\n":1}}"#,
        r#"{"a":{"k\"ey":1}}"#,
        r#"{"level":"info","message":"a \"quoted\" word","n":1}"#,
    ];

    #[test]
    fn quick_reads_every_line_as_serde_json_does() {
        for wanted in [wanted(&[]), wanted(&["type", "a", "b.c", "message"])] {
            for line in LINES {
                assert_eq!(
                    scan(line, &wanted),
                    scan_by_serde(line, &wanted),
                    "{line:?} with {wanted:?}"
                );
            }
        }
    }

    #[test]
    fn quick_decides_the_lines_shippers_send_without_serde_json() {
        let line = r#"{"@timestamp":"2026-11-24T00:00:00.000Z","level":"info","message":"GET /x \"q\" 200","latency_ms":12.5,"ok":true,"tags":["a",{"b":null}]}"#;
        let Quick::Read(keys) = quick(line, &wanted(&["level"])) else {
            panic!("quick gave up on a plain log line");
        };
        assert_eq!(keys.captured, [(0, r#""info""#)]);
        assert!(matches!(
            quick(r#"{"a":01}"#, &[]),
            Quick::Stopped(Stop::Invalid)
        ));
        // Left to serde_json: an escaped top-level key, nesting past QUICK_DEPTH.
        assert!(matches!(
            quick(r#"{"typ\u0065":1}"#, &[]),
            Quick::Stopped(Stop::Unsure)
        ));
        let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(100), "]".repeat(100));
        assert!(matches!(quick(&deep, &[]), Quick::Stopped(Stop::Unsure)));
        assert!(scan(&deep, &[]).is_some());
    }

    #[test]
    fn string_stop_finds_the_first_quote_backslash_or_control_character() {
        for (bytes, at) in [
            (&b"abcdefgh\"ijk"[..], Some(8)),
            (b"ab\\cdefghij\"", Some(2)),
            (b"abcdefghijklmno\x1f", Some(15)),
            (b"\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac\"", Some(8)),
            (b"\"\"\"\"\"\"\"\"\"", Some(0)),
            (b"abcdefghijklmnop", None),
            (b"abcdefghijklmnopq\\rstu", Some(17)),
            (b"abcdefghijklmnopqrstuvwxyz012345\t", Some(32)),
            (b"abcdefghijklmnopqrstuvwxyz012345", None),
            (b"abc\x7f\x80\xff \"", Some(7)),
            (b"", None),
        ] {
            assert_eq!(string_stop(bytes), at, "{bytes:?}");
        }
    }
}

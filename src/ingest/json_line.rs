//! One JSON log line read once, without building it: that it is a valid object, whether
//! it has a `type` or a field tollgate owns, and the raw values (borrowed from the line) of
//! the top-level keys the account's drop filters read, which `Captured` serves to them.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::filters;
use crate::filters::logs::{Fields, Scalar, scalar_of};

/// Fields tollgate owns; a client-sent field of one of these names is dropped.
pub const RESERVED_FIELDS: [&str; 4] = ["_account_id", "_token_id", "_kind", "_type"];

/// Reads `text` as one JSON object (nothing after it), keeping the values of `wanted`.
pub fn scan<'de>(text: &'de str, wanted: &[Box<str>]) -> Option<TopLevelKeys<'de>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let keys = Scan { wanted }.deserialize(&mut de).ok()?;
    de.end().ok().map(|()| keys)
}

/// Validates a JSON object without building it, noting the top-level keys that matter and
/// keeping the raw values of the `wanted` ones (borrowed from the line).
#[derive(Default)]
pub struct TopLevelKeys<'de> {
    pub has_type: bool,
    pub has_reserved: bool,
    /// `(index in wanted, value)`.
    pub captured: Vec<(usize, &'de RawValue)>,
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
            let keep = match key {
                Key::Type => {
                    keys.has_type = true;
                    (!wanted.is_empty()).then_some(0)
                }
                Key::Reserved => {
                    keys.has_reserved = true;
                    None
                }
                Key::Wanted(i) => Some(i),
                Key::Other => None,
            };
            match keep {
                Some(i) => keys.captured.push((i, map.next_value::<&'de RawValue>()?)),
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
        // By length and first byte before comparing: most keys are neither.
        let b = v.as_bytes();
        Ok(match (b.len(), b.first()) {
            (4, Some(b't')) if b == b"type" => Key::Type,
            (5 | 9 | 11, Some(b'_')) if RESERVED_FIELDS.contains(&v) => Key::Reserved,
            _ => match self.wanted.iter().position(|w| **w == *v) {
                Some(i) => Key::Wanted(i),
                None => Key::Other,
            },
        })
    }
}

/// A line's fields as its check kept them: the raw values of the wanted top-level keys.
/// A dotted name the line has as a key is read as it is; else its longest dotted prefix
/// that is a key is parsed and descended into (`filters::field`'s reading).
pub struct Captured<'a> {
    pub wanted: &'a [Box<str>],
    pub values: &'a [(usize, &'a RawValue)],
}

impl Captured<'_> {
    fn raw(&self, name: &str) -> Option<&RawValue> {
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
                let Ok(value) = serde_json::from_str::<serde_json::Value>(raw.get()) else {
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
fn raw_scalar(raw: &RawValue) -> Scalar<'_> {
    let text = raw.get();
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

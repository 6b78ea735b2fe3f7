//! The logs route's query: `token` and `type`, the first of each (as the Logz.io
//! listener reads them), borrowed from the query unless percent-decoding changed them.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use wide::u8x16;

use crate::ingest::error::IngestError;

/// The `type` a log gets when the request names none (as the Logz.io listener).
pub const DEFAULT_TYPE: &str = "http-bulk";
/// Longest `type` accepted; a longer one is a 400 (it would be copied into every log).
pub const MAX_TYPE_BYTES: usize = 256;

/// The query parameters this route reads; all others are ignored. Borrowed from the
/// query unless percent-decoding changed them.
pub(super) struct Params<'q> {
    pub token: Option<Cow<'q, str>>,
    pub log_type: Cow<'q, str>,
}

impl<'q> Params<'q> {
    pub fn from_query(query: Option<&'q str>) -> Result<Params<'q>, IngestError> {
        let query = query.unwrap_or("");
        let mut first = First::default();
        if plain_pairs(query, |key, value| first.take(key, Cow::Borrowed(value))).is_err() {
            // Something to percent-decode: the pairs again, decoded.
            first = First::default();
            for (key, value) in form_urlencoded::parse(query.as_bytes()) {
                first.take(&key, value);
            }
        }
        let First { token, log_type } = first;
        let log_type = match log_type {
            None => Cow::Borrowed(DEFAULT_TYPE),
            Some(t) if t.is_empty() => Cow::Borrowed(DEFAULT_TYPE),
            Some(t) if t.len() > MAX_TYPE_BYTES => {
                return Err(IngestError::BadParameter("type is longer than 256 bytes"));
            }
            Some(t) if has_control(&t) => {
                return Err(IngestError::BadParameter(
                    "type contains control characters",
                ));
            }
            Some(t) => t,
        };
        Ok(Params { token, log_type })
    }
}

/// The first `token` and `type` of a query.
#[derive(Default)]
struct First<'q> {
    token: Option<Cow<'q, str>>,
    log_type: Option<Cow<'q, str>>,
}

impl<'q> First<'q> {
    fn take(&mut self, key: &str, value: Cow<'q, str>) {
        match key {
            "token" if self.token.is_none() => self.token = Some(value),
            "type" if self.log_type.is_none() => self.log_type = Some(value),
            _ => {}
        }
    }
}

/// Calls `pair` with the pairs of a query as `form_urlencoded::parse` finds them (empty
/// pairs skipped; no `=`, an empty value), borrowed as they are; `Err` at the first `%`
/// or `+`, which only decoding reads right. The query is split on every request, so its
/// `&`, `=`, `%` and `+` are found sixteen bytes at a time: `memchr` a pair cost it ~600
/// instructions (callgrind, logs-small), `str::split` more.
fn plain_pairs<'q>(query: &'q str, mut pair: impl FnMut(&'q str, &'q str)) -> Result<(), ()> {
    let bytes = query.as_bytes();
    let (mut start, mut eq) = (0, None);
    // ASCII bytes end and start UTF-8 characters: these slices cannot fail.
    let mut end_pair = |start: usize, eq: Option<usize>, end: usize| {
        if start < end {
            match eq {
                Some(at) => pair(&query[start..at], &query[at + 1..end]),
                None => pair(&query[start..end], ""),
            }
        }
    };
    for at in separators(bytes) {
        match bytes[at] {
            b'&' => {
                end_pair(start, eq.take(), at);
                start = at + 1;
            }
            b'=' => {
                eq.get_or_insert(at);
            }
            _ => return Err(()),
        }
    }
    end_pair(start, eq, bytes.len());
    Ok(())
}

/// Where `&`, `=`, `%` and `+` are in `bytes`, in order; sixteen bytes at a time
/// (`wide`), the last ones in a zero-padded copy.
fn separators(bytes: &[u8]) -> impl Iterator<Item = usize> {
    let mut base = 0;
    let mut found = 0u32;
    std::iter::from_fn(move || {
        while found == 0 {
            if base >= bytes.len() {
                return None;
            }
            let rest = &bytes[base..];
            let block = match rest.get(..16) {
                Some(block) => block.try_into().expect("sixteen bytes"),
                None => {
                    let mut last = [0; 16];
                    last[..rest.len()].copy_from_slice(rest);
                    last
                }
            };
            let v = u8x16::new(block);
            found = (v.simd_eq(u8x16::splat(b'&'))
                | v.simd_eq(u8x16::splat(b'='))
                | v.simd_eq(u8x16::splat(b'%'))
                | v.simd_eq(u8x16::splat(b'+')))
            .to_bitmask();
            base += 16;
        }
        let at = base - 16 + found.trailing_zeros() as usize;
        found &= found - 1;
        Some(at)
    })
}

/// Whether `text` has a control character (C0, DEL or C1): one pass over its bytes when
/// they are all printable ASCII, as a type mostly is.
fn has_control(text: &str) -> bool {
    !text.bytes().all(|b| matches!(b, b' '..=b'~')) && text.chars().any(char::is_control)
}

/// A log type as the route stamps it on logs: its name (the envelope's) and the name as
/// a JSON string (added to logs that lack one). A gateway's requests name a few types
/// over and over, so each worker thread keeps the last one it made: a request of the
/// same type shares it instead of allocating its own.
#[derive(Clone)]
pub struct LogType {
    pub name: Arc<str>,
    pub json: Arc<[u8]>,
}

impl LogType {
    pub fn of(name: &str) -> LogType {
        thread_local! {
            static LAST: RefCell<Option<LogType>> = const { RefCell::new(None) };
        }
        LAST.with_borrow_mut(|last| match last {
            Some(kept) if *kept.name == *name => kept.clone(),
            _ => last.insert(LogType::new(name)).clone(),
        })
    }

    fn new(name: &str) -> LogType {
        let mut json = Vec::with_capacity(name.len() + 2);
        serde_json::to_writer(&mut json, name).expect("writing to a Vec cannot fail");
        LogType {
            name: name.into(),
            json: json.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_query_reads_as_form_urlencoded_reads_it() {
        for query in [
            "token=abc&type=nginx",
            "&&token=abc&&type=x&",
            "token&type=y",
            "type=a=b&token=t=u",
            "token=&type=",
            "x=1&token=t&token=u&type=v&type=w",
            "TOKEN=a&Type=b",
            "token=a&type=b%20c",
            "type=x&token=a+b&type=y",
            "token=sampleLogsToken0000000000000001&type=loadtest",
            "type=loadtest&x=0123456789abcdef0123&token=sampleLogsToken0000000000000001",
            "token=sampleLogsToken0000000000000001&type=load%20test",
            "token=sampleLogsToken0000000000000001&type=load+test",
            "a=0123456789abcde&token=t&type=u=v&&",
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

    #[test]
    fn a_log_type_is_shared_by_requests_of_the_same_type() {
        let a = LogType::of("nginx");
        let b = LogType::of("nginx");
        assert!(Arc::ptr_eq(&a.name, &b.name) && Arc::ptr_eq(&a.json, &b.json));
        let c = LogType::of("ngin\"x");
        assert_eq!(&*c.name, "ngin\"x");
        assert_eq!(&*c.json, br#""ngin\"x""#);
        // Only the last type is kept: the first is made again, equal.
        let again = LogType::of("nginx");
        assert!(!Arc::ptr_eq(&a.name, &again.name));
        assert_eq!(&*again.json, br#""nginx""#);
    }

    #[test]
    fn a_type_with_a_control_character_is_refused_ascii_or_not() {
        for (query, refused) in [
            ("type=a%01b", true),
            ("type=a%7Fb", true),
            ("type=%C2%85x", true),
            ("type=caf%C3%A9", false),
            ("type=a-b_c", false),
        ] {
            assert_eq!(Params::from_query(Some(query)).is_err(), refused, "{query}");
        }
        assert!(has_control("é\u{9f}"));
        assert!(!has_control("é-ok"));
    }
}

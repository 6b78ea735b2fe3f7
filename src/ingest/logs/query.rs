//! The logs route's query: `token` and `type`, the first of each (as the Logz.io
//! listener reads them), borrowed from the query unless percent-decoding changed them.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

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
            for (key, value) in plain_pairs(query) {
                take(key, Cow::Borrowed(value));
            }
        }
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

/// The pairs of a query with nothing to percent-decode, as `form_urlencoded::parse`
/// finds them (empty pairs skipped; no `=`, an empty value). `&` and `=` are found with
/// `memchr`: the query is split on every request, and `str::split` with `split_once` cost
/// it ~160 instructions more (callgrind, logs-small).
fn plain_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = query;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let end = memchr::memchr(b'&', rest.as_bytes()).unwrap_or(rest.len());
            // ASCII bytes end and start UTF-8 characters: these slices cannot fail.
            let pair = &rest[..end];
            rest = &rest[(end + 1).min(rest.len())..];
            if !pair.is_empty() {
                return Some(match memchr::memchr(b'=', pair.as_bytes()) {
                    Some(at) => (&pair[..at], &pair[at + 1..]),
                    None => (pair, ""),
                });
            }
        }
        None
    })
}

/// Whether `text` has a control character (C0, DEL or C1): byte by byte when it is ASCII.
fn has_control(text: &str) -> bool {
    if text.is_ascii() {
        text.bytes().any(|b| b.is_ascii_control())
    } else {
        text.chars().any(char::is_control)
    }
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

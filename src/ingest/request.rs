//! The request head: where the token and the body's encoding are read from. Pure parsing
//! of headers; it knows no route and no error type, so the routes and `error.rs` (which
//! answers in the request's OTLP encoding) can both use it.

use http::{HeaderMap, header};

use crate::server::find_header;

/// `Authorization: Bearer T`: the only token carrier of OTLP and remote_write, and the
/// alternative to `?token=` on the logs route.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = find_header(headers, &header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The two OTLP/HTTP encodings; the answer always uses the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpEncoding {
    Protobuf,
    Json,
}

impl OtlpEncoding {
    /// Reads `Content-Type` (parameters such as `charset` are ignored); `None` is a 415.
    pub fn from_headers(headers: &HeaderMap) -> Option<OtlpEncoding> {
        let value = find_header(headers, &header::CONTENT_TYPE)?.to_str().ok()?;
        let media_type = value.split(';').next().unwrap_or("").trim();
        if media_type.eq_ignore_ascii_case("application/x-protobuf") {
            Some(OtlpEncoding::Protobuf)
        } else if media_type.eq_ignore_ascii_case("application/json") {
            Some(OtlpEncoding::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OtlpEncoding::Protobuf => "application/x-protobuf",
            OtlpEncoding::Json => "application/json",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_parameters_are_ignored_and_others_refused() {
        let mut h = HeaderMap::new();
        assert_eq!(OtlpEncoding::from_headers(&h), None);
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(OtlpEncoding::from_headers(&h), Some(OtlpEncoding::Json));
        h.insert(
            header::CONTENT_TYPE,
            "Application/X-Protobuf".parse().unwrap(),
        );
        assert_eq!(OtlpEncoding::from_headers(&h), Some(OtlpEncoding::Protobuf));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(OtlpEncoding::from_headers(&h), None);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_others_are_ignored() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(header::AUTHORIZATION, "bearer abc ".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
    }
}

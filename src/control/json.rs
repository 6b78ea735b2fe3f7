//! Request bodies and their quirks: `Body<T>` parses JSON with errors that name the field,
//! and `lenient_bool` takes the strings "true"/"false" where a boolean is expected, as
//! Logz.io's own Go client sends them.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::ApiError;

/// Management bodies are small; anything bigger is a mistake or an attack.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A JSON request body. A missing content type is accepted (scripts forget it); a
/// non-JSON one is 415; a body over `MAX_BODY_BYTES` is 413; bad JSON is 400 naming
/// where it went wrong.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = match req.headers().get(header::CONTENT_TYPE) {
            None => true,
            Some(v) => v
                .to_str()
                .map(|v| {
                    let essence = v.split(';').next().unwrap_or_default().trim();
                    essence.eq_ignore_ascii_case("application/json")
                        || essence.to_ascii_lowercase().ends_with("+json")
                })
                .unwrap_or(false),
        };
        if !json {
            return Err(ApiError::Framing {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "request/UNSUPPORTED_MEDIA_TYPE",
                message: "request bodies are JSON: send `Content-Type: application/json`".into(),
            });
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::Framing {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: "request/TOO_LARGE",
                    message: format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
                }
            } else {
                ApiError::invalid(format!("cannot read the body: {e}"))
            }
        })?;
        // An empty body reads as `null`: fine where the body is optional, 400 elsewhere.
        let bytes: &[u8] = if bytes.trim_ascii().is_empty() {
            b"null"
        } else {
            &bytes
        };
        parse(bytes).map(Body)
    }
}

/// Parses a JSON body; the error names the path of the offending field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::invalid(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::invalid(format!("invalid field `{path}`: {inner}"))
        }
    })
}

/// A boolean given as `true`/`false` or as the strings `"true"`/`"false"`; an empty
/// string is "not given" (Logz.io's Go client sends `""` for an unset string boolean).
pub fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Bool(bool),
        Text(String),
    }
    match Option::<Loose>::deserialize(d)? {
        None => Ok(None),
        Some(Loose::Bool(b)) => Ok(Some(b)),
        Some(Loose::Text(s)) if s.is_empty() => Ok(None),
        Some(Loose::Text(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Loose::Text(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(Loose::Text(_)) => Err(serde::de::Error::custom(
            "expected a boolean or \"true\"/\"false\"",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct Flag {
        #[serde(default, deserialize_with = "lenient_bool")]
        enabled: Option<bool>,
    }

    #[test]
    fn booleans_may_be_strings() {
        for (body, want) in [
            (r#"{"enabled": true}"#, Some(true)),
            (r#"{"enabled": "false"}"#, Some(false)),
            (r#"{"enabled": null}"#, None),
            (r#"{}"#, None),
            (r#"{"enabled": ""}"#, None),
        ] {
            assert_eq!(
                parse::<Flag>(body.as_bytes()).unwrap().enabled,
                want,
                "{body}"
            );
        }
        let err = parse::<Flag>(br#"{"enabled": "yes"}"#).unwrap_err();
        assert!(err.to_string().contains("enabled"), "{err}");
    }
}

//! Parsing what a management call sends, shared by every resource: `Body<T>` parses JSON
//! with errors that name the field, `lenient_bool` takes the strings "true"/"false" where
//! a boolean is expected (as Logz.io's own Go client sends them), and Logz.io's
//! pagination. Ids in paths are `extract::Id`.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

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

/// Tells a field left out (`None`, with `#[serde(default)]`) from one sent as `null`
/// (`Some(None)`): in an update, "unchanged" and "cleared".
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
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

/// Logz.io's pagination: `pageNumber` from 1, `pageSize` up to 1,000 (default 25).
#[derive(Deserialize, Serialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    #[serde(default)]
    pub page_number: Option<i64>,
    #[serde(default)]
    pub page_size: Option<i64>,
}

impl Pagination {
    /// The page asked for, or 400 naming the bound it breaks.
    pub fn resolve(self) -> Result<PageEcho, ApiError> {
        let page_number = self.page_number.unwrap_or(1);
        let page_size = self.page_size.unwrap_or(25);
        if page_number < 1 {
            return Err(ApiError::invalid("pagination.pageNumber must be >= 1"));
        }
        if !(1..=1000).contains(&page_size) {
            return Err(ApiError::invalid(
                "pagination.pageSize must be between 1 and 1000",
            ));
        }
        Ok(PageEcho {
            page_number,
            page_size,
        })
    }
}

/// One page of a listing, in Logz.io's shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub total: i64,
    pub results: Vec<T>,
    pub pagination: PageEcho,
}

/// The page that was served.
#[derive(Serialize, Clone, Copy, Debug)]
#[serde(rename_all = "camelCase")]
pub struct PageEcho {
    pub page_number: i64,
    pub page_size: i64,
}

impl PageEcho {
    /// Rows to skip before this page.
    pub fn offset(self) -> i64 {
        (self.page_number - 1).saturating_mul(self.page_size)
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

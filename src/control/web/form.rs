//! A posted form's fields, in order, repeated names kept (a shared token's filters are one
//! checkbox each). The page reads `application/x-www-form-urlencoded` bodies only; the
//! control plane's body limit applies before any of it is read.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Fields {
        Fields(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Fields {
        Fields(pairs)
    }

    /// Every field as posted, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The first value of `name`, `""` when absent (an empty field and a missing one are
    /// the same to a person).
    pub fn get(&self, name: &str) -> &str {
        self.opt(name).unwrap_or_default()
    }

    /// The first value of `name`, `None` when absent or blank.
    pub fn opt(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    /// Every value of `name`, in the order posted.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Fields, Response> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Fields::parse(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_are_kept_in_order_and_blank_ones_are_absent() {
        let f = Fields::parse(b"name=ci+token&filter=3&filter=1&note=+&x=%C3%A9");
        assert_eq!(f.get("name"), "ci token");
        assert_eq!(f.all("filter").collect::<Vec<_>>(), ["3", "1"]);
        assert_eq!(f.opt("note"), None);
        assert_eq!(f.get("missing"), "");
        assert_eq!(f.get("x"), "é");
    }
}

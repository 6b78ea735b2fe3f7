//! `Refusal`: every way the control plane says no, in the product's terms: what kind of
//! no it is, the `errorCode` that names the rule or check, and a sentence for the person.
//! It knows no HTTP: the API (`api::error`) turns it into a status and the DESIGN §4 JSON
//! body, the page into a sentence on the tab. The message never contains a secret.

/// A refused call.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The input is not what the call takes.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// No credential, or one that is not known.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A known credential that may not do this (doesn't reach the account, trial over).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// No such object — also the answer for another account's object.
    #[error("{0}")]
    NotFound(String),
    /// The gateway's feed secret is missing or wrong (feed protocol).
    #[error("{0}")]
    FeedUnauthenticated(&'static str),
    /// The feed's miss lookup: no shipping token has the digest (feed protocol).
    #[error("{0}")]
    UnknownToken(&'static str),
    /// A product rule refuses the change; `code` names the rule.
    #[error("{message}")]
    Rule { code: &'static str, message: String },
    /// What was asked for existed once and is no more: the feed's old changes, an
    /// expired setup link.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// Too many failed logins for this email or from this client.
    #[error("too many failed logins: try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    /// The store failed, or holds a row it cannot read; the caller may retry. The cause
    /// is logged where the refusal is answered, never shown.
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A drop filter's field that is wrong (`filters`' checks): 400 naming the field.
impl From<crate::filters::Invalid> for Refusal {
    fn from(e: crate::filters::Invalid) -> Refusal {
        Refusal::Invalid {
            code: e.code,
            message: e.to_string(),
        }
    }
}

impl Refusal {
    pub fn invalid(message: impl Into<String>) -> Refusal {
        Refusal::Invalid {
            code: "request/INVALID",
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn rule(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal::Rule {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> Refusal {
        Refusal::NotFound(format!("{what} not found"))
    }

    /// The `errorCode`: which rule or check refused.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Invalid { code, .. }
            | Refusal::Forbidden { code, .. }
            | Refusal::Rule { code, .. }
            | Refusal::Gone { code, .. } => code,
            Refusal::Unauthenticated(_) => "auth/UNAUTHORIZED",
            Refusal::NotFound(_) => "request/NOT_FOUND",
            Refusal::FeedUnauthenticated(_) => "feed/UNAUTHORIZED",
            Refusal::UnknownToken(_) => "feed/UNKNOWN_TOKEN",
            Refusal::TooManyAttempts { .. } => "auth/TOO_MANY_ATTEMPTS",
            Refusal::Unavailable(_) => "store/UNAVAILABLE",
        }
    }
}

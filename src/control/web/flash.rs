//! A word after every change. A form's POST is answered with a 303 back to its tab
//! (Post/Redirect/Get: a reload or Back never sends it again, refused or not), and what
//! the change did rides along in the `tollgate_flash` cookie: a sentence, the element it
//! concerns (the page moves the focus there), a refusal with what was typed in its form,
//! or a secret to show once. `session::layer` seals the cookie on the way out and opens
//! it on the way in; the first page that shows it clears it, so a reload shows the tab
//! without it.
//!
//! The cookie is signed (HMAC-SHA256) with the request's CSRF token: derived from the
//! session, or before login the browser's own random `tollgate_csrf`. A cookie planted
//! by another site or left by another session fails the check and is ignored. It is
//! `HttpOnly`, `SameSite=Strict`, scoped to `/ui` and lives a minute; a secret in it (a new
//! API token, a setup link) so never enters a URL, and the page that shows it is
//! `no-store` like every page.

use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{BASE, Fields, PageRefusal, see_other};

pub const COOKIE: &str = "tollgate_flash";
/// How long a flash waits for the page it is meant for (the redirect is followed at once).
pub const MAX_AGE_SECS: u64 = 60;
/// A cookie's value stays well inside what browsers keep (4 KB with its name and
/// attributes); what was typed is the first thing left out beyond it.
const MAX_SEALED_BYTES: usize = 3500;
/// Fields a refused form never gets back.
const NEVER_KEPT: [&str; 3] = ["csrf", "password", "confirm"];

/// What one POST did, for the page its redirect lands on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flash {
    /// What happened, or why not, as a sentence.
    pub message: String,
    /// Set when the change was refused: the status the API answers it with and the
    /// rule's code, shown as the inline refusals are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refused>,
    /// The id of the element the change concerns (the row it changed): the page moves the
    /// focus there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus: Option<String>,
    /// The id of the refused form, shown again with the refusal and `typed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<String>,
    /// What was typed into the refused form (never a password or the CSRF token).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub typed: Vec<(String, String)>,
    /// A secret shown this once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refused {
    pub status: u16,
    pub code: String,
}

/// A secret the page shows once, in the answer to the GET the POST's redirect leads to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Secret {
    ApiToken {
        name: String,
        token: String,
    },
    SetupLink {
        email: String,
        link: String,
        /// A new link for a user who lost theirs, rather than an invitation.
        #[serde(default)]
        reissued: bool,
    },
}

impl Flash {
    /// A change made: `message` says what, `focus` is the id of what it changed.
    pub fn done(message: impl Into<String>, focus: Option<String>) -> Flash {
        Flash {
            message: message.into(),
            focus,
            ..Flash::default()
        }
    }

    /// A refused change; `form` (its id) and what was posted to it come back when the
    /// refusal is about what was typed there.
    pub fn refused(refusal: &PageRefusal, form: Option<(&str, &Fields)>) -> Flash {
        let (form, typed) = match form {
            Some((id, fields)) => (Some(id.to_string()), kept(fields)),
            None => (None, Vec::new()),
        };
        Flash {
            message: refusal.message.clone(),
            refused: Some(Refused {
                status: refusal.status.as_u16(),
                code: refusal.code.clone(),
            }),
            form,
            typed,
            ..Flash::default()
        }
    }

    /// A redirect (303) to `location` carrying this flash.
    pub fn redirect(self, location: &str) -> Response {
        let mut response = see_other(location);
        response.extensions_mut().insert(self);
        response
    }

    /// The cookie's value: the flash as JSON in base64url, a dot, and its signature.
    pub fn seal(&self, key: &str) -> String {
        let mut flash = self.clone();
        loop {
            let json = serde_json::to_vec(&flash).expect("a flash encodes as JSON");
            let payload = URL_SAFE_NO_PAD.encode(json);
            if payload.len() <= MAX_SEALED_BYTES {
                let signature = URL_SAFE_NO_PAD.encode(signature(key, &payload));
                return format!("{payload}.{signature}");
            }
            // Too long to keep: first what was typed, then the message's tail.
            if !flash.typed.is_empty() {
                flash.typed.clear();
            } else {
                let keep = flash.message.chars().count() / 2;
                flash.message = flash.message.chars().take(keep).collect();
                flash.message.push('…');
            }
        }
    }

    /// The flash a cookie's `value` holds, if `key` signed it.
    pub fn open(value: &str, key: &str) -> Option<Flash> {
        let (payload, signature) = value.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = keyed(key);
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }

    /// What was typed into the refused form, as the form's fields.
    pub fn typed_fields(&self) -> Fields {
        Fields::from_pairs(self.typed.clone())
    }
}

/// A form posted after its session ended (signed out, idle, suspended): nothing was
/// changed; the sign-in page says so and leads back to the form's tab.
pub fn signed_out(posted_to: &str) -> Response {
    let location = match super::tab_of(posted_to) {
        Some(tab) => format!("{BASE}/login?next={tab}"),
        None => format!("{BASE}/login"),
    };
    Flash::done(
        "You were signed out, so nothing was changed. Sign in to go back to where you were.",
        None,
    )
    .redirect(&location)
}

/// What of a posted form is worth showing again.
fn kept(fields: &Fields) -> Vec<(String, String)> {
    fields
        .pairs()
        .filter(|(k, _)| !NEVER_KEPT.contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn keyed(key: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(b"tollgate flash\0");
    mac
}

fn signature(key: &str, payload: &str) -> Vec<u8> {
    let mut mac = keyed(key);
    mac.update(payload.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flash_opens_with_the_key_that_sealed_it_only() {
        let flash = Flash {
            secret: Some(Secret::ApiToken {
                name: "ci".into(),
                token: "abc".into(),
            }),
            ..Flash::done("API token “ci” created", Some("api-token-3".into()))
        };
        let sealed = flash.seal("session-one");
        assert_eq!(Flash::open(&sealed, "session-one"), Some(flash.clone()));
        assert_eq!(Flash::open(&sealed, "session-two"), None, "another session");
        let (payload, signature) = sealed.split_once('.').unwrap();
        let forged = Flash::done("forged", None).seal("session-two");
        let forged_payload = forged.split_once('.').unwrap().0;
        assert_eq!(
            Flash::open(&format!("{forged_payload}.{signature}"), "session-one"),
            None,
            "another payload under a valid signature"
        );
        assert_eq!(Flash::open(payload, "session-one"), None, "no signature");
        assert_eq!(Flash::open("", "session-one"), None);
    }

    #[test]
    fn a_refused_form_keeps_what_was_typed_but_never_a_password() {
        let posted = Fields::parse(b"csrf=t&name=k8s&password=secret&confirm=secret");
        let refusal = PageRefusal {
            status: axum::http::StatusCode::CONFLICT,
            code: "tokens/DUPLICATE_NAME".into(),
            message: "taken".into(),
            retry_after_secs: None,
        };
        let flash = Flash::refused(&refusal, Some(("new-token", &posted)));
        assert_eq!(flash.typed, [("name".to_string(), "k8s".to_string())]);
        assert_eq!(flash.form.as_deref(), Some("new-token"));
        assert_eq!(flash.refused.as_ref().map(|r| r.status), Some(409));
    }

    #[test]
    fn a_long_flash_drops_what_was_typed_first() {
        let refusal = PageRefusal {
            status: axum::http::StatusCode::BAD_REQUEST,
            code: "request/INVALID".into(),
            message: "too long".into(),
            retry_after_secs: None,
        };
        let long = "x".repeat(5000);
        let posted = Fields::from_pairs(vec![("name".into(), long)]);
        let sealed = Flash::refused(&refusal, Some(("f", &posted))).seal("k");
        assert!(sealed.len() < 4000, "{}", sealed.len());
        let opened = Flash::open(&sealed, "k").unwrap();
        assert!(opened.typed.is_empty());
        assert_eq!(opened.message, "too long");
    }
}

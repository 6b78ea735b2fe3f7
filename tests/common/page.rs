//! A browser's part in the Manage Tokens page, for HTTP-level tests: a cookie jar, the
//! CSRF token read from the last page's forms (as a browser would post it back), GETs and
//! urlencoded POSTs that don't follow redirects (the tests check each 303).

use std::collections::BTreeMap;

use super::Reply;
use super::control::ControlPlane;

pub const PASSWORD: &str = "correct horse battery staple";
/// What a browser accepts for a page, so the page answers as it answers browsers.
const ACCEPT: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

pub struct Browser<'a> {
    cp: &'a ControlPlane,
    cookies: BTreeMap<String, String>,
    /// The `csrf` field of the last page that had a form.
    pub csrf: Option<String>,
}

/// What a page answered, with its body as text.
pub struct Page {
    pub reply: Reply,
    pub html: String,
}

impl Page {
    pub fn status(&self) -> u16 {
        self.reply.status.as_u16()
    }

    pub fn location(&self) -> &str {
        self.reply
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> &str {
        self.reply
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Asserts the page contains each of `parts` (as HTML: text with `&`, `<`, `>`, `"`
    /// escaped).
    pub fn shows(&self, parts: &[&str]) -> &Page {
        for part in parts {
            assert!(
                self.html.contains(part),
                "the page should show {part:?}; it is:\n{}",
                self.html
            );
        }
        self
    }

    pub fn lacks(&self, parts: &[&str]) -> &Page {
        for part in parts {
            assert!(
                !self.html.contains(part),
                "the page should not show {part:?}; it is:\n{}",
                self.html
            );
        }
        self
    }

    /// Asserts a refusal shown inline: its status, its code in the markup, and its
    /// message; never a JSON body.
    pub fn refused(&self, status: u16, code: &str, message: &str) -> &Page {
        assert_eq!(self.status(), status, "status; page:\n{}", self.html);
        assert!(
            self.header("content-type").starts_with("text/html"),
            "a refusal is a page, not {:?}: {}",
            self.header("content-type"),
            self.html
        );
        self.shows(&[
            "role=\"alert\"",
            &format!("data-code=\"{code}\""),
            &escape(message),
        ])
    }

    /// Asserts the page says what the POST that led here did, in its flash.
    pub fn told(&self, message: &str) -> &Page {
        self.shows(&["id=\"flash\"", &escape(message)])
    }

    /// Asserts a refusal the POST that led here got, shown on the page its redirect landed
    /// on: its message, its code, and the status the API would have answered.
    pub fn refusal_shown(&self, status: u16, code: &str, message: &str) -> &Page {
        self.shows(&[
            "role=\"alert\"",
            &format!("data-code=\"{code}\""),
            &format!("Refused ({status})"),
            &escape(message),
        ])
    }
}

/// Text as maud writes it into HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl<'a> Browser<'a> {
    pub fn new(cp: &'a ControlPlane) -> Browser<'a> {
        Browser {
            cp,
            cookies: BTreeMap::new(),
            csrf: None,
        }
    }

    /// A browser signed in as a new user of `account` with `role` (`USER_ROLE_…`), who set
    /// a password through the setup link on the page.
    pub async fn signed_in(
        cp: &'a ControlPlane,
        account: i64,
        email: &str,
        role: &str,
    ) -> Browser<'a> {
        let (_, link) = cp.create_user(account, email, role).await;
        let mut browser = Browser::new(cp);
        browser.set_password(&link).await;
        browser.sign_in(email, PASSWORD).await;
        browser
    }

    /// Follows a setup link: the page, then its form.
    pub async fn set_password(&mut self, link: &str) {
        let path = &link[link.find("/ui/").expect("a /ui/ link")..];
        self.get(path).await.shows(&["Set a password for"]);
        let set = self
            .post(path, &[("password", PASSWORD), ("confirm", PASSWORD)])
            .await;
        assert_eq!(set.status(), 303, "{}", set.html);
        assert_eq!(set.location(), "/ui/login?ready=1");
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        self.get("/ui/login").await;
        let page = self
            .post("/ui/login", &[("email", email), ("password", password)])
            .await;
        if page.status() == 303 {
            assert_eq!(page.location(), "/ui");
            assert!(self.cookies.contains_key("tollgate_session"));
        }
        page
    }

    pub fn has_session(&self) -> bool {
        self.cookies.contains_key("tollgate_session")
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let call = self
            .cp
            .get(path)
            .header("cookie", self.cookie_header())
            .header("accept", ACCEPT);
        self.keep(call.send().await)
    }

    /// POSTs `fields` with the CSRF token of the last page, as its form would.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self
            .csrf
            .clone()
            .expect("a page with a form was loaded first");
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// POSTs exactly `fields` (no CSRF token unless among them).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let call = self
            .cp
            .post(path)
            .header("cookie", self.cookie_header())
            .header("accept", ACCEPT)
            .raw_body("application/x-www-form-urlencoded", body);
        self.keep(call.send().await)
    }

    /// POSTs a form as `post` does, asserts the answer is a 303 back into the page, and
    /// follows it: the page the person lands on.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let answer = self.post(path, fields).await;
        assert_eq!(answer.status(), 303, "POST {path}: {}", answer.html);
        let location = answer.location().to_string();
        assert!(
            location.starts_with("/ui"),
            "POST {path} went to {location}"
        );
        // The fragment (the element the page focuses) stays in the browser.
        self.get(location.split('#').next().unwrap_or_default())
            .await
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, reply: Reply) -> Page {
        for value in reply.headers.get_all("set-cookie") {
            let value = value.to_str().expect("ascii cookie");
            let pair = value.split(';').next().unwrap_or_default();
            let (name, v) = pair.split_once('=').expect("name=value");
            if v.is_empty() || value.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), v.to_string());
            }
        }
        let html = String::from_utf8_lossy(&reply.body).into_owned();
        if let Some(token) = csrf_in(&html) {
            self.csrf = Some(token);
        }
        Page { reply, html }
    }
}

/// The value of the first `csrf` field in a page.
fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[at..].find('"')?;
    Some(html[at..at + end].to_string())
}

/// `YYYY-MM-DD` of the UTC day `epoch_ms` falls on (the civil calendar from day numbers).
pub fn utc_date(epoch_ms: i64) -> String {
    let z = epoch_ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

//! Users on the Manage Tokens page, over HTTP as a browser would use it (cookies, forms,
//! CSRF tokens), against SQLite and PostgreSQL: setup links, login and logout, the same
//! answer for an unknown email and a wrong password, rate-limited logins, idle and
//! absolute session expiry, CSRF refusals that change nothing, roles enforced by the
//! server, sessions that die with a suspension, a deletion or a new role, and the audit
//! trail naming the user.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::control::{Backend, ControlPlane};
use http::Method;
use serde_json::{Value, json};

on_both_backends!(
    a_user_sets_a_password_logs_in_and_out,
    failed_logins_are_rate_limited_per_email_and_per_client,
    sessions_end_when_idle_and_at_their_age_limit,
    forms_without_the_right_csrf_token_change_nothing,
    only_admins_change_anything_whatever_they_send,
    suspension_deletion_and_a_new_role_end_sessions_at_once,
    setup_links_work_once_and_expire,
    a_new_setup_link_and_a_new_password_end_the_users_sessions,
    guesses_sent_together_are_held_to_the_limit,
    a_stranger_behind_a_trusted_proxy_cannot_lock_an_admin_out,
);

const PASSWORD: &str = "correct horse battery";

/// A cookie jar and the last page's CSRF token: what a browser keeps between requests.
struct Browser<'a> {
    cp: &'a ControlPlane,
    cookies: HashMap<String, String>,
    csrf: Option<String>,
    /// Sent as `X-Forwarded-For`, as a reverse proxy in front of the page would.
    forwarded_for: Option<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    text: String,
}

impl<'a> Browser<'a> {
    fn new(cp: &'a ControlPlane) -> Browser<'a> {
        Browser {
            cp,
            cookies: HashMap::new(),
            csrf: None,
            forwarded_for: None,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    /// Posts a form with the current page's CSRF token.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self
            .csrf
            .clone()
            .expect("a page with a form was loaded first");
        let mut all = fields.to_vec();
        all.push(("csrf", &csrf));
        self.post_raw(path, &all).await
    }

    /// Posts exactly `fields`: no CSRF token unless one is among them.
    async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(Method::POST, path, Some(body)).await
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<String>) -> Page {
        let mut call = self.cp.request(method, path);
        if let Some(client) = &self.forwarded_for {
            call = call.header("x-forwarded-for", client);
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            call = call.header("cookie", jar.join("; "));
        }
        if let Some(form) = form {
            call = call.raw_body("application/x-www-form-urlencoded", form);
        }
        let reply = call.send().await;
        let set_cookies: Vec<String> = reply
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for cookie in &set_cookies {
            let (pair, attributes) = cookie.split_once(';').unwrap_or((cookie, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        if let Some(token) = csrf_in(&text) {
            self.csrf = Some(token);
        }
        Page {
            status: reply.status.as_u16(),
            location: reply
                .headers
                .get("location")
                .map(|v| v.to_str().unwrap().to_string()),
            set_cookies,
            text,
        }
    }

    /// Opens the login page and logs in.
    async fn login(&mut self, email: &str, password: &str) -> Page {
        let page = self.get("/ui/login").await;
        assert_eq!(page.status, 200, "{}", page.text);
        self.post("/ui/login", &[("email", email), ("password", password)])
            .await
    }

    fn session_cookie(&self) -> Option<&String> {
        self.cookies.get("tollgate_session")
    }
}

/// The value of the first `<input … name="csrf" … value="…">` in a page.
fn csrf_in(html: &str) -> Option<String> {
    html.split("<input").skip(1).find_map(|tag| {
        let tag = &tag[..tag.find('>')?];
        if !tag.contains(r#"name="csrf""#) {
            return None;
        }
        let value = &tag[tag.find(r#"value=""#)? + 7..];
        Some(value[..value.find('"')?].to_string())
    })
}

/// An account with an admin user who has set a password: (account id, API token, user id).
async fn account_with_admin(cp: &ControlPlane, email: &str) -> (i64, String, i64) {
    let (account, api, _) = cp.account("acme").await;
    let user = add_user(cp, account, email, "USER_ROLE_ACCOUNT_ADMIN").await;
    (account, api, user)
}

/// A user of `account` with `role` who has set `PASSWORD` through its setup link.
async fn add_user(cp: &ControlPlane, account: i64, email: &str, role: &str) -> i64 {
    let (id, link) = cp.create_user(account, email, role).await;
    let path = link.strip_prefix(&cp.url()).unwrap();
    let mut browser = Browser::new(cp);
    let form = browser.get(path).await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert!(form.text.contains(email), "the setup page names the user");
    let done = browser
        .post(path, &[("password", PASSWORD), ("confirm", PASSWORD)])
        .await;
    assert_eq!(done.status, 303, "{}", done.text);
    id
}

async fn log_tokens(cp: &ControlPlane, api: &str) -> Vec<String> {
    let page = cp
        .post("/v1/log-shipping/tokens/search")
        .token(api)
        .json(json!({}))
        .send()
        .await
        .expect_ok("search");
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

async fn a_user_sets_a_password_logs_in_and_out(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (account, api, ann) = account_with_admin(&cp, "ann@example.com").await;
    let mut browser = Browser::new(&cp);

    // Not logged in: pages send the browser to the login page.
    let tab = format!("/ui/accounts/{account}/logs");
    let page = browser.get(&tab).await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/ui/login"))
    );

    // A wrong password and an unknown email get the same answer.
    let wrong = browser.login("ann@example.com", "not the password").await;
    let unknown = browser
        .login("nobody@example.com", "not the password")
        .await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    for page in [&wrong, &unknown] {
        assert!(
            page.text.contains("email or password is not correct"),
            "{}",
            page.text
        );
        assert!(
            page.set_cookies
                .iter()
                .all(|c| !c.starts_with("tollgate_session"))
        );
    }

    // The right one: a session cookie, HttpOnly and SameSite=Strict, then the account's page.
    let page = browser.login("ANN@example.com", PASSWORD).await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/ui")),
        "{}",
        page.text
    );
    let cookie = page
        .set_cookies
        .iter()
        .find(|c| c.starts_with("tollgate_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let home = browser.get("/ui").await;
    assert_eq!(home.location.as_deref(), Some(tab.as_str()));
    let page = browser.get(&tab).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("ann@example.com") && page.text.contains("default"),
        "{}",
        page.text
    );

    // Logging out ends the session on the server, not only in the browser.
    let old = browser.session_cookie().cloned().unwrap();
    let page = browser.post("/ui/logout", &[]).await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/ui/login"))
    );
    assert!(browser.session_cookie().is_none());
    browser.cookies.insert("tollgate_session".into(), old);
    let page = browser.get(&tab).await;
    assert_eq!(page.location.as_deref(), Some("/ui/login"));

    // The audit trail names the user.
    let events = cp
        .get("/v1/audit-events?pageSize=50")
        .token(&api)
        .send()
        .await
        .expect_ok("audit");
    let by_user: Vec<&str> = events["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == format!("user:{ann}"))
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(by_user, ["user.logout", "user.login", "user.set-password"]);
    let metrics = cp.metrics().await;
    assert!(
        metrics.contains(r#"tollgate_control_logins_total{outcome="failed"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tollgate_control_logins_total{outcome="ok"} 1"#),
        "{metrics}"
    );
}

async fn failed_logins_are_rate_limited_per_email_and_per_client(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    add_user_to_new_account(&cp, "ann@example.com").await;
    let mut browser = Browser::new(&cp);
    for _ in 0..5 {
        assert_eq!(
            browser
                .login("ann@example.com", "wrong password!")
                .await
                .status,
            401
        );
    }
    // Past the limit, even the right password is refused, and the page says why.
    let page = browser.login("ann@example.com", PASSWORD).await;
    assert_eq!(page.status, 429, "{}", page.text);
    assert!(
        page.text.contains("too many failed logins"),
        "{}",
        page.text
    );
    assert!(browser.session_cookie().is_none());

    // Per client address: 20 failures over any emails, then every email is refused.
    for i in 0..15 {
        let email = format!("guess{i}@example.com");
        assert_eq!(browser.login(&email, "wrong password!").await.status, 401);
    }
    let page = browser
        .login("someone-else@example.com", "wrong password!")
        .await;
    assert_eq!(page.status, 429, "{}", page.text);
    assert!(
        cp.metrics()
            .await
            .contains(r#"tollgate_control_logins_total{outcome="limited"} 2"#)
    );
}

async fn add_user_to_new_account(cp: &ControlPlane, email: &str) -> (i64, String, i64) {
    account_with_admin(cp, email).await
}

async fn sessions_end_when_idle_and_at_their_age_limit(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start_with(backend, test, |c| {
        c.session_idle_timeout_secs = Duration::from_secs(600);
        c.session_max_age_secs = Duration::from_secs(3600);
    })
    .await
    else {
        return;
    };
    let (account, _, _) = account_with_admin(&cp, "ann@example.com").await;
    let tab = format!("/ui/accounts/{account}/logs");
    let mut browser = Browser::new(&cp);
    browser.login("ann@example.com", PASSWORD).await;
    assert_eq!(browser.get(&tab).await.status, 200);
    // Idle for longer than the idle timeout: gone.
    cp.advance_clock_past(now_ms_of(&cp) + 601_000);
    assert_eq!(
        browser.get(&tab).await.location.as_deref(),
        Some("/ui/login")
    );

    // Used every 500 s, it lives until its age limit, and not past it.
    let start = now_ms_of(&cp);
    browser.login("ann@example.com", PASSWORD).await;
    for step in 1..=7 {
        cp.advance_clock_past(start + step * 500_000);
        assert_eq!(
            browser.get(&tab).await.status,
            200,
            "after {} s",
            step * 500
        );
    }
    cp.advance_clock_past(start + 3_600_000);
    assert_eq!(
        browser.get(&tab).await.location.as_deref(),
        Some("/ui/login")
    );
}

async fn forms_without_the_right_csrf_token_change_nothing(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (account, api, _) = account_with_admin(&cp, "ann@example.com").await;
    add_user(&cp, account, "bea@example.com", "USER_ROLE_ACCOUNT_ADMIN").await;
    let tab = format!("/ui/accounts/{account}/logs");
    let create = format!("/ui/accounts/{account}/logs/tokens");
    let mut ann = Browser::new(&cp);
    ann.login("ann@example.com", PASSWORD).await;
    ann.get(&tab).await;
    let mut bea = Browser::new(&cp);
    bea.login("bea@example.com", PASSWORD).await;
    bea.get(&tab).await;
    let beas_token = bea.csrf.clone().unwrap();
    let before = log_tokens(&cp, &api).await;
    for (what, fields) in [
        ("no token", vec![("name", "sneaky")]),
        (
            "a wrong token",
            vec![("name", "sneaky"), ("csrf", "0123456789abcdef")],
        ),
        (
            "another session's token",
            vec![("name", "sneaky"), ("csrf", beas_token.as_str())],
        ),
    ] {
        let page = ann.post_raw(&create, &fields).await;
        assert_eq!(page.status, 403, "{what}: {}", page.text);
        assert!(page.text.contains("auth/CSRF"), "{what}: {}", page.text);
    }
    // Logging out and logging in need the token too.
    assert_eq!(ann.post_raw("/ui/logout", &[]).await.status, 403);
    assert!(ann.session_cookie().is_some());
    let mut stranger = Browser::new(&cp);
    let page = stranger
        .post_raw(
            "/ui/login",
            &[("email", "ann@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(stranger.session_cookie().is_none());
    assert_eq!(log_tokens(&cp, &api).await, before, "nothing changed");
    // With it, the same form works.
    let page = ann.post(&create, &[("name", "honest")]).await;
    assert_eq!(page.status, 303, "{}", page.text);
    assert!(log_tokens(&cp, &api).await.contains(&"honest".to_string()));
}

async fn only_admins_change_anything_whatever_they_send(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (account, api, _) = account_with_admin(&cp, "ann@example.com").await;
    let (token_id, _) = cp.create_token(&api, "k8s").await;
    add_user(&cp, account, "uma@example.com", "USER_ROLE_REGULAR").await;
    add_user(&cp, account, "rob@example.com", "USER_ROLE_READONLY").await;
    let (other, _, _) = cp.account("other").await;
    for email in ["uma@example.com", "rob@example.com"] {
        let mut browser = Browser::new(&cp);
        browser.login(email, PASSWORD).await;
        // Their home is the shared tokens tab.
        let home = browser.get("/ui").await;
        assert_eq!(
            home.location.as_deref(),
            Some(format!("/ui/accounts/{account}/shared").as_str())
        );
        let shared = browser.get(&format!("/ui/accounts/{account}/shared")).await;
        assert_eq!(shared.status, 200, "{email}: {}", shared.text);
        // Admin pages: 403; crafted admin forms: refused, and nothing changes.
        for tab in ["logs", "api", "users"] {
            let page = browser.get(&format!("/ui/accounts/{account}/{tab}")).await;
            assert_eq!(page.status, 403, "{email} {tab}: {}", page.text);
            assert!(!page.text.contains("k8s"), "{email} sees no shipping token");
        }
        for (path, fields) in [
            (
                format!("/ui/accounts/{account}/logs/tokens"),
                vec![("name", "mine")],
            ),
            (
                format!("/ui/accounts/{account}/logs/tokens/{token_id}/enabled"),
                vec![("enabled", "false")],
            ),
            (
                format!("/ui/accounts/{account}/logs/tokens/{token_id}/delete"),
                vec![],
            ),
            (
                format!("/ui/accounts/{account}/api/tokens"),
                vec![("name", "mine")],
            ),
            (
                format!("/ui/accounts/{account}/users/invite"),
                vec![
                    ("email", "x@example.com"),
                    ("fullName", "X"),
                    ("role", "admin"),
                ],
            ),
        ] {
            // Refused like any change: back to the tab (a 303), which says why.
            let page = browser.post(&path, &fields).await;
            assert_eq!(page.status, 303, "{email} POST {path}: {}", page.text);
            let tab = page.location.unwrap_or_default();
            let page = browser.get(tab.split('#').next().unwrap()).await;
            assert!(
                page.text.contains("ADMIN_ROLE_REQUIRED"),
                "{email} POST {path}: {}",
                page.text
            );
        }
        // Another account: not reachable at all.
        let page = browser.get(&format!("/ui/accounts/{other}/shared")).await;
        assert_eq!(page.status, 403, "{email}: {}", page.text);
    }
    assert_eq!(log_tokens(&cp, &api).await, ["default", "k8s"]);
    let users = cp
        .get("/v1/user-management")
        .token(&api)
        .send()
        .await
        .expect_ok("users");
    assert_eq!(users.as_array().map(Vec::len), Some(3));
    let token: Value = cp
        .get(&format!("/v1/log-shipping/tokens/{token_id}"))
        .token(&api)
        .send()
        .await
        .expect_ok("token");
    assert_eq!(token["enabled"], true);
}

async fn suspension_deletion_and_a_new_role_end_sessions_at_once(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (account, api, _) = account_with_admin(&cp, "ann@example.com").await;
    let bea = add_user(&cp, account, "bea@example.com", "USER_ROLE_ACCOUNT_ADMIN").await;
    let tab = format!("/ui/accounts/{account}/logs");
    let mut browser = Browser::new(&cp);
    let signed_out = |page: Page| page.location.as_deref() == Some("/ui/login");

    browser.login("bea@example.com", PASSWORD).await;
    assert_eq!(browser.get(&tab).await.status, 200);
    cp.post(&format!("/v1/user-management/suspend/{bea}"))
        .token(&api)
        .send()
        .await
        .expect_ok("suspend");
    assert!(
        signed_out(browser.get(&tab).await),
        "suspended: the session is gone"
    );
    let page = browser.login("bea@example.com", PASSWORD).await;
    assert_eq!(page.status, 403, "{}", page.text);
    assert!(page.text.contains("suspended"), "{}", page.text);

    cp.post(&format!("/v1/user-management/unsuspend/{bea}"))
        .token(&api)
        .send()
        .await
        .expect_ok("unsuspend");
    browser.login("bea@example.com", PASSWORD).await;
    assert_eq!(browser.get(&tab).await.status, 200);
    cp.put(&format!("/v1/user-management/{bea}"))
        .token(&api)
        .json(json!({"fullName": "Bea", "role": "USER_ROLE_REGULAR"}))
        .send()
        .await
        .expect_ok("new role");
    assert!(
        signed_out(browser.get(&tab).await),
        "a new role: the session is gone"
    );

    browser.login("bea@example.com", PASSWORD).await;
    let shared = format!("/ui/accounts/{account}/shared");
    assert_eq!(browser.get(&shared).await.status, 200);
    // A rename is not a new role: the session lives on.
    cp.put(&format!("/v1/user-management/{bea}"))
        .token(&api)
        .json(json!({"fullName": "Beatrice"}))
        .send()
        .await
        .expect_ok("rename");
    assert_eq!(browser.get(&shared).await.status, 200);
    cp.delete(&format!("/v1/user-management/{bea}"))
        .token(&api)
        .send()
        .await
        .expect_ok("delete");
    assert!(
        signed_out(browser.get(&shared).await),
        "deleted: the session is gone"
    );
    assert_eq!(browser.login("bea@example.com", PASSWORD).await.status, 401);
}

async fn setup_links_work_once_and_expire(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (account, api, _) = cp.account("acme").await;
    let created = cp
        .post("/v1/user-management")
        .token(&api)
        .json(json!({"username": "ann@example.com", "fullName": "Ann", "accountID": account, "role": "USER_ROLE_ACCOUNT_ADMIN"}))
        .send()
        .await
        .expect_ok("create");
    let ann = created["id"].as_i64().unwrap();
    let first = created["setupLink"]
        .as_str()
        .unwrap()
        .strip_prefix(&cp.url())
        .unwrap()
        .to_string();
    let mut browser = Browser::new(&cp);

    // Before a password is set, no password logs in.
    assert_eq!(browser.login("ann@example.com", "").await.status, 401);
    // Rules on the password, and the page keeps the link usable after a refusal.
    browser.get(&first).await;
    let page = browser
        .post(&first, &[("password", "short"), ("confirm", "short")])
        .await;
    assert_eq!(page.status, 400, "{}", page.text);
    assert!(page.text.contains("12 to 256 characters"), "{}", page.text);
    let page = browser
        .post(
            &first,
            &[("password", PASSWORD), ("confirm", "something else!")],
        )
        .await;
    assert_eq!(page.status, 400, "{}", page.text);

    // A new link replaces the first.
    let again = cp
        .post(&format!("/v1/user-management/{ann}/setup-link"))
        .token(&api)
        .send()
        .await
        .expect_ok("new link");
    let second = again["setupLink"]
        .as_str()
        .unwrap()
        .strip_prefix(&cp.url())
        .unwrap()
        .to_string();
    assert_eq!(browser.get(&first).await.status, 404);
    // Used once; the second use is refused and changes nothing.
    browser.get(&second).await;
    assert_eq!(
        browser
            .post(&second, &[("password", PASSWORD), ("confirm", PASSWORD)])
            .await
            .status,
        303
    );
    let page = browser.get(&second).await;
    assert_eq!(page.status, 404, "{}", page.text);
    assert!(
        page.text.contains("not valid or was already used"),
        "{}",
        page.text
    );
    assert_eq!(browser.login("ann@example.com", PASSWORD).await.status, 303);

    // Expiry: a link unused past its lifetime (3 days by default) is refused with 410.
    let third = cp
        .post(&format!("/v1/user-management/{ann}/setup-link"))
        .token(&api)
        .send()
        .await
        .expect_ok("third link");
    let third = third["setupLink"]
        .as_str()
        .unwrap()
        .strip_prefix(&cp.url())
        .unwrap()
        .to_string();
    cp.advance_clock_past(now_ms_of(&cp) + 3 * 24 * 3600 * 1000);
    let page = browser.get(&third).await;
    assert_eq!(page.status, 410, "{}", page.text);
    assert!(page.text.contains("expired"), "{}", page.text);
}

/// The control plane's "now" (its clock may have been moved forward).
fn now_ms_of(cp: &ControlPlane) -> i64 {
    cp.now_ms()
}

/// A reissued link exists because the account may be in other hands: it ends the user's
/// sessions, and so does the password set through it.
async fn a_new_setup_link_and_a_new_password_end_the_users_sessions(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (account, _, ann) = account_with_admin(&cp, "ann@example.com").await;
    let tab = format!("/ui/accounts/{account}/logs");
    let mut first = Browser::new(&cp);
    assert_eq!(first.login("ann@example.com", PASSWORD).await.status, 303);
    assert_eq!(first.get(&tab).await.status, 200);

    let reissued = cp
        .post(&format!("/v1/user-management/{ann}/setup-link"))
        .admin()
        .account(account)
        .send()
        .await
        .expect_ok("a new setup link");
    let page = first.get(&tab).await;
    assert_eq!(
        page.location.as_deref(),
        Some("/ui/login"),
        "the session ended with the new link"
    );

    // Signed in again meanwhile, then the password is set through the link: that
    // session ends too.
    let mut second = Browser::new(&cp);
    assert_eq!(second.login("ann@example.com", PASSWORD).await.status, 303);
    assert_eq!(second.get(&tab).await.status, 200);
    let link = reissued["setupLink"].as_str().unwrap();
    let path = link.strip_prefix(&cp.url()).unwrap();
    let mut setter = Browser::new(&cp);
    setter.get(path).await;
    let new_password = "another horse battery";
    let done = setter
        .post(
            path,
            &[("password", new_password), ("confirm", new_password)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.text);
    let page = second.get(&tab).await;
    assert_eq!(
        page.location.as_deref(),
        Some("/ui/login"),
        "the session ended with the new password"
    );
    assert_eq!(
        second.login("ann@example.com", new_password).await.status,
        303
    );
    assert_eq!(second.get(&tab).await.status, 200);
}

/// Twelve guesses for one email sent at once: each takes its attempt before its password
/// is checked, so five are checked and seven are refused, whatever the order.
async fn guesses_sent_together_are_held_to_the_limit(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    account_with_admin(&cp, "ann@example.com").await;
    let mut browsers = Vec::new();
    for _ in 0..12 {
        let mut browser = Browser::new(&cp);
        assert_eq!(browser.get("/ui/login").await.status, 200);
        browsers.push(browser);
    }
    let guesses = browsers
        .iter_mut()
        .enumerate()
        .map(|(n, browser)| async move {
            let password = if n == 11 { PASSWORD } else { "a wrong guess!" };
            browser
                .post(
                    "/ui/login",
                    &[("email", "ann@example.com"), ("password", password)],
                )
                .await
        });
    let statuses: Vec<u16> = futures_util::future::join_all(guesses)
        .await
        .iter()
        .map(|page| page.status)
        .collect();
    let checked = statuses.iter().filter(|s| [401, 303].contains(*s)).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, limited), (5, 7), "{statuses:?}");
}

/// A browser behind a proxy that names it `address`, after five wrong passwords for ann.
async fn guessed_five_times_from<'a>(cp: &'a ControlPlane, address: &str) -> Browser<'a> {
    let mut stranger = Browser::new(cp);
    stranger.forwarded_for = Some(address.into());
    for _ in 0..5 {
        let page = stranger.login("ann@example.com", "a wrong guess!").await;
        assert_eq!(page.status, 401, "{}", page.text);
    }
    stranger
}

/// Behind a trusted proxy each person is their forwarded address: a stranger's failures
/// lock the email out of the stranger's address only. From an untrusted peer the header
/// is ignored, so it cannot be used to dodge the limit.
async fn a_stranger_behind_a_trusted_proxy_cannot_lock_an_admin_out(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start_with(backend, test, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await
    else {
        return;
    };
    account_with_admin(&cp, "ann@example.com").await;
    let mut stranger = guessed_five_times_from(&cp, "203.0.113.5").await;
    assert_eq!(
        stranger.login("ann@example.com", PASSWORD).await.status,
        429
    );
    let mut ann = Browser::new(&cp);
    // A client-supplied entry left of the proxy's is the client's to write: the proxy's
    // own (the last) is what counts.
    ann.forwarded_for = Some("203.0.113.5, 198.51.100.1".into());
    let page = ann.login("ann@example.com", PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.text);
    cp.stop().await;

    let Some(cp) = ControlPlane::start(backend, &format!("{test}_untrusted")).await else {
        return;
    };
    account_with_admin(&cp, "ann@example.com").await;
    guessed_five_times_from(&cp, "203.0.113.5").await;
    let mut other = Browser::new(&cp);
    other.forwarded_for = Some("198.51.100.1".into());
    assert_eq!(
        other.login("ann@example.com", PASSWORD).await.status,
        429,
        "the header of an untrusted peer names nobody"
    );
}

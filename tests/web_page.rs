//! The Manage Tokens page over HTTP, driven as a browser drives it (GET a form, POST it
//! urlencoded with its CSRF token and the session cookie, follow the 303), against the
//! real control plane on SQLite. Every change made on the page is checked through the
//! management API, and every refusal is checked as a page with the rule's message inline.

mod common;

use common::control::ControlPlane;
use common::page::{Browser, PASSWORD, utc_date};
use http::Method;
use serde_json::{Value, json};

const ADMIN: &str = "USER_ROLE_ACCOUNT_ADMIN";
const USER: &str = "USER_ROLE_REGULAR";

/// The account's log shipping tokens as the API lists them.
async fn api_tokens(cp: &ControlPlane, api: &str) -> Vec<Value> {
    let found = cp
        .api(
            Method::POST,
            "/v1/log-shipping/tokens/search",
            api,
            Some(json!({})),
        )
        .await;
    found["results"].as_array().expect("results").clone()
}

fn named<'v>(tokens: &'v [Value], name: &str) -> Option<&'v Value> {
    tokens.iter().find(|t| t["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tab_renders_for_an_admin() {
    let cp = ControlPlane::sqlite().await;
    let (account, _api, first_token) = cp.account("acme").await;
    let metrics = cp
        .create_account(
            json!({"accountName": "acme-metrics", "type": "metrics", "ownerAccountId": account}),
        )
        .await["accountId"]
        .as_i64()
        .unwrap();
    let mut admin = Browser::signed_in(&cp, account, "ann@example.com", ADMIN).await;

    let home = admin.get("/ui").await;
    assert_eq!(home.status(), 303);
    assert_eq!(home.location(), format!("/ui/accounts/{account}/logs"));

    let logs = admin.get(&format!("/ui/accounts/{account}/logs")).await;
    assert_eq!(logs.status(), 200);
    logs.shows(&[
        "Log shipping tokens",
        &first_token,
        "1 of 15 enabled",
        "the pro plan allows 15",
        "Default",
        "+ New log shipping token",
        // The only enabled token: its toggle and delete are locked, with the rule's reason.
        "every account must keep at least one enabled shipping token",
        "ann@example.com",
        // The account switcher offers the tied metrics account.
        "acme-metrics",
        "Log out",
    ]);

    admin
        .get(&format!("/ui/accounts/{account}/metrics"))
        .await
        .shows(&[
            "it holds log shipping tokens only",
            "Metrics shipping tokens live in the metrics accounts",
            &format!("href=\"/ui/accounts/{metrics}/metrics\""),
        ]);
    admin
        .get(&format!("/ui/accounts/{account}/traces"))
        .await
        .shows(&[
            "Tracing shipping tokens live in the tracing accounts",
            "None of the accounts you reach holds tracing shipping tokens.",
        ]);
    admin
        .get(&format!("/ui/accounts/{account}/api"))
        .await
        .shows(&["API tokens", "+ New API token", "default", "Last used"]);
    admin
        .get(&format!("/ui/accounts/{account}/shared"))
        .await
        .shows(&["Shared tokens", "+ Add shared token", "Token filters"]);
    admin
        .get(&format!("/ui/accounts/{account}/users"))
        .await
        .shows(&["ann@example.com", "+ Invite user", "admin"]);

    // The tied metrics account: its own metrics tokens, and no API tokens of its own.
    admin
        .get(&format!("/ui/accounts/{metrics}/metrics"))
        .await
        .shows(&["Metrics shipping tokens", "1 of 15 enabled"]);
    admin
        .get(&format!("/ui/accounts/{metrics}/api"))
        .await
        .shows(&[
            "Metrics accounts have no API tokens of their own; use the main account's",
            &format!("href=\"/ui/accounts/{account}/api\""),
        ])
        .lacks(&["+ New API token"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_embedded_and_cached() {
    let cp = ControlPlane::sqlite().await;
    let mut browser = Browser::new(&cp);
    let login = browser.get("/ui/login").await;
    let css_at = login.html.find("/ui/assets/page.css?v=").expect("css link");
    let css_url = &login.html[css_at..css_at + login.html[css_at..].find('"').unwrap()];
    let css = browser.get(css_url).await;
    assert_eq!(css.status(), 200);
    assert!(css.header("content-type").starts_with("text/css"));
    assert!(css.header("cache-control").contains("max-age="));
    assert!(css.html.contains(":focus-visible"));
    let js = browser.get("/ui/assets/page.js").await;
    assert!(js.header("content-type").starts_with("text/javascript"));
    assert!(js.html.contains("data-confirm"));
    assert_eq!(browser.get("/ui/assets/nope.js").await.status(), 404);
    // An icon of its own: browsers need not ask for a /favicon.ico that isn't there.
    let icon_at = login
        .html
        .find("rel=\"icon\" href=\"")
        .expect("an icon link")
        + 17;
    let icon_url = &login.html[icon_at..icon_at + login.html[icon_at..].find('"').unwrap()];
    let icon = browser.get(icon_url).await;
    assert_eq!(icon.status(), 200, "{icon_url}");
    assert_eq!(icon.header("content-type"), "image/svg+xml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipping_tokens_made_on_the_page_are_what_the_api_returns() {
    let cp = ControlPlane::sqlite().await;
    let (account, api, _) = cp.account("acme").await;
    let mut admin = Browser::signed_in(&cp, account, "ann@example.com", ADMIN).await;
    let tab = format!("/ui/accounts/{account}/logs");
    admin.get(&tab).await;

    let created = admin
        .post(&format!("{tab}/tokens"), &[("name", "k8s-prod")])
        .await;
    assert_eq!(created.status(), 303, "{}", created.html);
    let tokens = api_tokens(&cp, &api).await;
    let token = named(&tokens, "k8s-prod").expect("created on the page");
    assert_eq!(token["enabled"], true, "enabled by default");
    let id = token["id"].as_i64().unwrap();
    // Back to the tab, at the new token's row.
    assert_eq!(created.location(), format!("{tab}#token-{id}"));
    assert!(
        token["createdBy"].as_str().unwrap().starts_with("user:"),
        "{token}"
    );
    admin
        .get(&tab)
        .await
        .told("Log shipping token “k8s-prod” created and enabled")
        .shows(&[
            "k8s-prod",
            token["token"].as_str().unwrap(),
            "2 of 15 enabled",
            &format!("data-focus=\"token-{id}\""),
        ]);
    // Said once: a reload shows the tab without it, and made nothing more.
    admin.get(&tab).await.lacks(&["id=\"flash\""]);
    assert_eq!(api_tokens(&cp, &api).await.len(), 2);

    admin
        .submit(
            &format!("{tab}/tokens/{id}/rename"),
            &[("name", "k8s-production")],
        )
        .await
        .told("Log shipping token “k8s-prod” renamed “k8s-production”");
    assert!(named(&api_tokens(&cp, &api).await, "k8s-production").is_some());

    admin
        .submit(
            &format!("{tab}/tokens/{id}/enabled"),
            &[("enabled", "false")],
        )
        .await
        .told("Log shipping token “k8s-production” disabled")
        .shows(&["1 of 15 enabled"]);
    let tokens = api_tokens(&cp, &api).await;
    assert_eq!(named(&tokens, "k8s-production").unwrap()["enabled"], false);

    // Another token of the same name is refused by the API's rule, shown in the form with
    // the name typed kept.
    admin
        .submit(&format!("{tab}/tokens"), &[("name", "k8s-production")])
        .await
        .refusal_shown(
            409,
            "tokens/DUPLICATE_NAME",
            "this account already has a log shipping token named “k8s-production”",
        )
        .shows(&[
            "data-focus=\"new-token\"",
            "name=\"name\" required maxlength=\"256\" value=\"k8s-production\"",
        ]);
    // So is a rename to a taken name: the row's form opens again with it.
    admin
        .submit(&format!("{tab}/tokens/{id}/rename"), &[("name", "default")])
        .await
        .refusal_shown(409, "tokens/DUPLICATE_NAME", "named “default”")
        .shows(&[
            &format!("data-focus=\"token-{id}-rename\""),
            "value=\"default\"",
        ]);

    admin
        .submit(&format!("{tab}/tokens/{id}/delete"), &[])
        .await
        .told("Log shipping token “k8s-production” deleted")
        .lacks(&["title=\"k8s-production\""]);
    assert!(named(&api_tokens(&cp, &api).await, "k8s-production").is_none());
    // Typed in the address bar, a form's address leads to its tab.
    let typed = admin.get(&format!("{tab}/tokens/{id}/rename")).await;
    assert_eq!((typed.status(), typed.location()), (303, tab.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_rules_are_shown_inline_in_their_own_words() {
    let cp = ControlPlane::sqlite().await;
    let created = cp
        .create_account(json!({"accountName": "small", "plan": "community"}))
        .await;
    let account = created["accountId"].as_i64().unwrap();
    let mut admin = Browser::signed_in(&cp, account, "cat@example.com", ADMIN).await;
    let tab = format!("/ui/accounts/{account}/logs");
    let page = admin.get(&tab).await;
    page.shows(&[
        "1 of 1 enabled",
        "the community plan allows 1",
        "The one token the plan allows is enabled: rotate it to replace it with a new one, or \
         disable it before adding another.",
    ]);

    admin
        .submit(&format!("{tab}/tokens"), &[("name", "second")])
        .await
        .refusal_shown(
            409,
            "tokens/ENABLED_LIMIT",
            "the community plan allows 1 enabled shipping token; disable one first",
        )
        // Still the tab, with its table: the refusal is in the form.
        .shows(&["Log shipping tokens", "1 of 1 enabled", "value=\"second\""]);

    let search = cp.log_tokens_of(account).await;
    assert_eq!(search["total"], 1, "nothing was created: {search}");
    let only = search["results"][0]["id"].as_i64().unwrap();

    admin
        .submit(
            &format!("{tab}/tokens/{only}/enabled"),
            &[("enabled", "false")],
        )
        .await
        .refusal_shown(
            409,
            "tokens/LAST_ENABLED",
            "every account must keep at least one enabled shipping token; this is the last one",
        );
    admin
        .submit(&format!("{tab}/tokens/{only}/delete"), &[])
        .await
        .refusal_shown(409, "tokens/LAST_ENABLED", "this is the last one");

    // But it can be rotated: a new token of the same name replaces it in one step.
    let old = search["results"][0]["token"].as_str().unwrap().to_string();
    let rotated = admin
        .submit(&format!("{tab}/tokens/{only}/rotate"), &[])
        .await;
    let search = cp.log_tokens_of(account).await;
    assert_eq!(search["total"], 1, "one token still: {search}");
    let new = &search["results"][0];
    assert_eq!(
        (new["name"].as_str(), new["enabled"].as_bool()),
        (Some("default"), Some(true))
    );
    let token = new["token"].as_str().unwrap();
    assert_ne!(token, old);
    rotated
        .told(&format!(
            "Log shipping token “default” rotated: the new token ends …{}; shippers still \
             sending with …{} are refused",
            &token[28..],
            &old[28..]
        ))
        .shows(&[token])
        .lacks(&[&old]);

    // A community account has no API tokens, and the tab says why.
    admin
        .get(&format!("/ui/accounts/{account}/api"))
        .await
        .shows(&["API tokens are available on pro and enterprise plans and during a trial."])
        .lacks(&["+ New API token"]);
    admin
        .submit(
            &format!("/ui/accounts/{account}/api/tokens"),
            &[("name", "ci")],
        )
        .await
        .refusal_shown(
            409,
            "api-tokens/PLAN",
            "API tokens are available on pro and enterprise plans and during a trial",
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_token_secret_is_shown_once_on_the_page_its_post_leads_to() {
    let cp = ControlPlane::sqlite().await;
    let (account, _, _) = cp.account("acme").await;
    let mut admin = Browser::signed_in(&cp, account, "ann@example.com", ADMIN).await;
    let tab = format!("/ui/accounts/{account}/api");
    admin.get(&tab).await;
    let answer = admin
        .post(&format!("{tab}/tokens"), &[("name", "terraform")])
        .await;
    assert_eq!(answer.status(), 303, "{}", answer.html);
    assert!(
        !answer.html.contains("data-copy") && !answer.location().contains("token="),
        "the secret is neither in the answer nor in its address"
    );
    let created = admin.get(&tab).await;
    assert_eq!(created.header("cache-control"), "no-store");
    created.shows(&["API token “terraform” created", "won't be shown again"]);
    let at = created.html.find("data-copy=\"").unwrap() + "data-copy=\"".len();
    let secret = &created.html[at..at + 32];
    let whoami = cp.get("/v2/whoami").token(secret).send().await;
    assert_eq!(whoami.expect_ok("whoami")["accountName"], "acme");

    // A reload shows the tab without it, and makes no second token.
    let later = admin.get(&tab).await;
    later.shows(&["terraform"]).lacks(&[secret]);
    // Two tokens of one name are told apart by their last characters, and by who made them.
    later.shows(&[&format!("…{}", &secret[28..]), "by ann@example.com"]);
    // The token was just used: the page says when.
    later.shows(&["just now"]);
    let list = cp
        .get("/v1/api-tokens")
        .token(secret)
        .send()
        .await
        .expect_ok("list");
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "terraform")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    later.shows(&["Integrations that use it stop working"]);
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "the default token and this one"
    );
    admin
        .submit(&format!("{tab}/tokens/{id}/delete"), &[])
        .await
        .told("API token “terraform” deleted");
    assert_eq!(cp.get("/v2/whoami").token(secret).send().await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_tokens_and_filters_are_managed_with_the_best_practices_shown() {
    let cp = ControlPlane::sqlite_with(|c| c.shared_tokens_without_expiry = true).await;
    let (account, api, _) = cp.account("acme").await;
    let mut admin = Browser::signed_in(&cp, account, "ann@example.com", ADMIN).await;
    let tab = format!("/ui/accounts/{account}/shared");
    admin.get(&tab).await;

    // A filter value is validated as the API validates it.
    admin
        .submit(
            &format!("/ui/accounts/{account}/shared/filters"),
            &[("description", "any"), ("field", "env"), ("value", "te*t")],
        )
        .await
        .refusal_shown(400, "filters/INVALID_TERM", "wildcards are not supported")
        .shows(&["value=\"te*t\"", "value=\"any\""]);
    for (field, value) in [("env", "test"), ("region", "eu")] {
        admin
            .submit(
                &format!("/ui/accounts/{account}/shared/filters"),
                &[("description", "scope"), ("field", field), ("value", value)],
            )
            .await
            .told(&format!("Token filter “{field}: {value}” added"));
    }
    let filters = cp
        .api(Method::GET, "/v1/shared-tokens/filters", &api, None)
        .await;
    let ids: Vec<String> = filters
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].to_string())
        .collect();

    // Within the year a shared token may live.
    let expires = utc_date(cp.now_ms() + 200 * 86_400_000);
    admin
        .submit(
            &format!("{tab}/tokens"),
            &[
                ("name", "status-page"),
                ("expires", &expires),
                ("filter", &ids[0]),
                ("filter", &ids[1]),
                ("operator", "AND"),
            ],
        )
        .await
        .told("Shared token “status-page” created");
    // One without a filter, and a legacy one without an expiry (only the API makes those).
    admin
        .submit(&format!("{tab}/tokens"), &[("name", "wide-open")])
        .await
        .told(
            "Shared token “wide-open” created: without a filter it reads all of the account's logs",
        );
    cp.api(
        Method::POST,
        "/v1/shared-tokens",
        &api,
        Some(json!({"tokenName": "old", "filters": [], "expirationDate": null, "legacy": true})),
    )
    .await;
    let shared = cp.api(Method::GET, "/v1/shared-tokens", &api, None).await;
    let status_page = shared
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tokenName"] == "status-page" || t["name"] == "status-page")
        .expect("made on the page")
        .clone();
    assert_eq!(status_page["filters"].as_array().unwrap().len(), 2);
    assert_eq!(status_page["filtersOperator"], "AND");
    let wide = shared
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tokenName"] == "wide-open" || t["name"] == "wide-open")
        .unwrap();
    assert!(
        wide["expirationDate"].is_number(),
        "7 days by default: {wide}"
    );

    let page = admin.get(&tab).await;
    page.shows(&[
        "env: test AND region: eu",
        "No filter",
        "Reads all of the account's logs",
        "Never expires",
        "Legacy token: set an expiration date",
        &expires,
        // Deleting a filter names the shared tokens that use it.
        "data-confirm-details=\"“status-page”\"",
    ]);

    // Edit: OR, one filter, another date.
    let later = utc_date(cp.now_ms() + 300 * 86_400_000);
    let id = status_page["id"].as_i64().unwrap();
    admin
        .submit(
            &format!("{tab}/tokens/{id}/edit"),
            &[("expires", &later), ("filter", &ids[1]), ("operator", "OR")],
        )
        .await
        .told("Shared token “status-page” saved");
    let token = cp
        .api(Method::GET, &format!("/v1/shared-tokens/{id}"), &api, None)
        .await;
    assert_eq!(token["filtersOperator"], "OR");
    assert_eq!(token["filters"].as_array().unwrap().len(), 1);
    admin.get(&tab).await.shows(&[&later, "region: eu"]);
    // A refused edit comes back open, with the date typed.
    admin
        .submit(
            &format!("{tab}/tokens/{id}/edit"),
            &[("expires", "2001-01-01"), ("filter", &ids[1])],
        )
        .await
        .refusal_shown(
            400,
            "shared-tokens/EXPIRY_IN_PAST",
            "the expiration date (expirationDate) must be in the future",
        )
        .shows(&[
            &format!("data-focus=\"edit-shared-{id}\""),
            "value=\"2001-01-01\"",
        ]);

    let filter_id = &ids[1];
    admin
        .submit(
            &format!("/ui/accounts/{account}/shared/filters/{filter_id}/delete"),
            &[],
        )
        .await
        .told("Token filter “region: eu” deleted");
    admin
        .submit(&format!("{tab}/tokens/{id}/delete"), &[])
        .await
        .told("Shared token “status-page” deleted");
    assert_eq!(
        cp.get(&format!("/v1/shared-tokens/{id}"))
            .token(&api)
            .send()
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sees_only_shared_tokens_and_is_refused_admin_posts() {
    let cp = ControlPlane::sqlite().await;
    let (account, api, _) = cp.account("acme").await;
    let filter = cp
        .api(
            Method::POST,
            "/v1/shared-tokens/filters",
            &api,
            Some(json!({"description": "eu", "field": "region", "value": "eu"})),
        )
        .await;
    cp.api(
        Method::POST,
        "/v1/shared-tokens",
        &api,
        Some(json!({"tokenName": "dash", "filters": [filter["id"]]})),
    )
    .await;
    let mut user = Browser::signed_in(&cp, account, "bob@example.com", USER).await;

    let home = user.get("/ui").await;
    assert_eq!(home.location(), format!("/ui/accounts/{account}/shared"));
    let shared = user.get(&format!("/ui/accounts/{account}/shared")).await;
    assert_eq!(shared.status(), 200);
    shared
        .shows(&["dash", "Shared tokens", "region: eu"])
        .lacks(&[
            "Log shipping",
            "API tokens",
            "Users",
            "+ Add shared token",
            "Token filters",
            // No `gateway_url` here: no live-tail link to offer.
            "Open live tail",
        ]);

    user.get(&format!("/ui/accounts/{account}/logs"))
        .await
        .refused(
            403,
            "auth/ADMIN_ROLE_REQUIRED",
            "only the account's admins may do this",
        );
    let before = api_tokens(&cp, &api).await.len();
    user.submit(
        &format!("/ui/accounts/{account}/logs/tokens"),
        &[("name", "mine")],
    )
    .await
    .refusal_shown(
        403,
        "auth/ADMIN_ROLE_REQUIRED",
        "only the account's admins may do this",
    );
    user.submit(
        &format!("/ui/accounts/{account}/shared/tokens"),
        &[("name", "mine")],
    )
    .await
    .refusal_shown(
        403,
        "auth/ADMIN_ROLE_REQUIRED",
        "only the account's admins may do this",
    );
    assert_eq!(api_tokens(&cp, &api).await.len(), before);
    let shared = cp.api(Method::GET, "/v1/shared-tokens", &api, None).await;
    assert_eq!(shared.as_array().unwrap().len(), 1);

    // Another account is out of reach for a user, whatever its role.
    let (other, _, _) = cp.account("globex").await;
    user.get(&format!("/ui/accounts/{other}/shared"))
        .await
        .refused(403, "auth/FORBIDDEN", "this user does not reach account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_shared_token_offers_its_live_tail_link_to_every_role() {
    let cp = ControlPlane::sqlite_with(|c| {
        c.gateway_url = Some("https://listener.example.com/".to_string());
    })
    .await;
    let (account, api, _) = cp.account("acme").await;
    let create = |name: &'static str, days: i64| {
        let body = json!({"tokenName": name, "expirationDate": cp.now_ms() + days * 86_400_000});
        cp.api(Method::POST, "/v1/shared-tokens", &api, Some(body))
    };
    let soon = create("soon", 1).await;
    let later = create("later", 30).await;
    let mut user = Browser::signed_in(&cp, account, "bob@example.com", USER).await;
    let tab = format!("/ui/accounts/{account}/shared");
    let link = |token: &Value| {
        format!(
            "href=\"https://listener.example.com/tail#token={}&amp;account=acme\"",
            token["token"].as_str().unwrap()
        )
    };
    user.get(&tab).await.shows(&[
        "Live tail",
        "Open live tail",
        "Copy link",
        &link(&soon),
        &link(&later),
    ]);

    // Past its expiry a token's link would only say so: the page offers none. (Two days
    // on, the session has ended too: sign in again.)
    cp.advance_clock_past(cp.now_ms() + 2 * 86_400_000);
    let mut user = Browser::signed_in(&cp, account, "carol@example.com", USER).await;
    user.get(&tab)
        .await
        .shows(&[&link(&later), "Expired"])
        .lacks(&[&link(&soon)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let cp = ControlPlane::sqlite().await;
    let (account, api, _) = cp.account("acme").await;
    let (first_id, _) = cp.create_token(&api, "second").await;
    let mut admin = Browser::signed_in(&cp, account, "ann@example.com", ADMIN).await;
    let a = format!("/ui/accounts/{account}");
    let snapshot = async || {
        let tokens = api_tokens(&cp, &api).await;
        let shared = cp.api(Method::GET, "/v1/shared-tokens", &api, None).await;
        let filters = cp
            .api(Method::GET, "/v1/shared-tokens/filters", &api, None)
            .await;
        let keys = cp.api(Method::GET, "/v1/api-tokens", &api, None).await;
        let users = cp.api(Method::GET, "/v1/user-management", &api, None).await;
        json!([tokens, shared, filters, keys, users]).to_string()
    };
    let before = snapshot().await;
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("{a}/logs/tokens"), vec![("name", "x")]),
        (
            format!("{a}/logs/tokens/{first_id}/rename"),
            vec![("name", "y")],
        ),
        (
            format!("{a}/logs/tokens/{first_id}/enabled"),
            vec![("enabled", "false")],
        ),
        (format!("{a}/logs/tokens/{first_id}/delete"), vec![]),
        (format!("{a}/api/tokens"), vec![("name", "x")]),
        (format!("{a}/shared/tokens"), vec![("name", "x")]),
        (
            format!("{a}/shared/filters"),
            vec![("field", "env"), ("value", "x")],
        ),
        (
            format!("{a}/users/invite"),
            vec![
                ("email", "eve@example.com"),
                ("full_name", "Eve"),
                ("role", "admin"),
            ],
        ),
        ("/ui/logout".to_string(), vec![]),
    ];
    for (path, fields) in &posts {
        let page = admin.post_raw(path, fields).await;
        assert_eq!(page.status(), 403, "{path} without csrf: {}", page.html);
        let mut forged = vec![("csrf", "0123456789abcdef0123456789abcdef")];
        forged.extend_from_slice(fields);
        let page = admin.post_raw(path, &forged).await;
        assert_eq!(
            page.status(),
            403,
            "{path} with a wrong csrf: {}",
            page.html
        );
    }
    assert_eq!(snapshot().await, before, "nothing changed");
    assert!(admin.has_session(), "logout without csrf did not log out");
    assert_eq!(admin.get(&format!("{a}/logs")).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_user_sets_a_password_and_signs_in() {
    let cp = ControlPlane::sqlite().await;
    let (account, _, _) = cp.account("acme").await;
    let mut admin = Browser::signed_in(&cp, account, "ann@example.com", ADMIN).await;
    let tab = format!("/ui/accounts/{account}/users");
    admin.get(&tab).await;
    // A refused invitation keeps what was typed.
    admin
        .submit(
            &format!("/ui/accounts/{account}/users/invite"),
            &[
                ("email", "not an email"),
                ("full_name", "Dan"),
                ("role", "read-only"),
            ],
        )
        .await
        .shows(&[
            "role=\"alert\"",
            "value=\"not an email\"",
            "value=\"Dan\"",
            "<option value=\"read-only\" selected>",
        ]);
    let invited = admin
        .submit(
            &format!("/ui/accounts/{account}/users/invite"),
            &[
                ("email", "dan@example.com"),
                ("full_name", "Dan"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(invited.header("cache-control"), "no-store");
    invited.shows(&["Invitation for dan@example.com", "/ui/setup/"]);
    let link = copied(&invited);
    admin.get(&tab).await.lacks(&[&link]);

    let mut dan = Browser::new(&cp);
    let path = &link[link.find("/ui/").unwrap()..];
    dan.get(path)
        .await
        .shows(&["Set a password for <strong>dan@example.com</strong>"]);
    dan.post(
        path,
        &[("password", PASSWORD), ("confirm", "something else")],
    )
    .await
    .refused(
        400,
        "users/PASSWORD_MISMATCH",
        "the two passwords are not the same",
    );
    dan.post(path, &[("password", "short"), ("confirm", "short")])
        .await
        .refused(400, "users/WEAK_PASSWORD", "the password must be");
    dan.set_password(&link).await;
    // The link works once.
    dan.get(path)
        .await
        .refused(404, "request/NOT_FOUND", "already used");

    dan.sign_in("dan@example.com", "wrong password")
        .await
        .refused(
            401,
            "auth/UNAUTHORIZED",
            "the email or password is not correct",
        );
    let signed = dan.sign_in("dan@example.com", PASSWORD).await;
    assert_eq!(signed.status(), 303);
    let home = dan.get("/ui").await;
    assert_eq!(home.location(), format!("/ui/accounts/{account}/shared"));

    // The admin suspends Dan: his session ends and he can't sign in again.
    let users = admin.get(&tab).await;
    users.shows(&["dan@example.com", "Suspend"]);
    let dan_id = user_id(&cp, account, "dan@example.com").await;
    admin
        .submit(&format!("{tab}/{dan_id}/active"), &[("active", "false")])
        .await
        .told("dan@example.com suspended");
    assert_eq!(
        dan.get(&format!("/ui/accounts/{account}/shared"))
            .await
            .location(),
        "/ui/login"
    );
    dan.sign_in("dan@example.com", PASSWORD).await.refused(
        403,
        "auth/USER_SUSPENDED",
        "this user is suspended",
    );
    admin.get(&tab).await.shows(&["Suspended", "Unsuspend"]);

    admin
        .submit(&format!("{tab}/{dan_id}/role"), &[("role", "read-only")])
        .await
        .told("dan@example.com is now read-only");
    // The last admin keeps the role: the rule's refusal, on the tab.
    let ann_id = user_id(&cp, account, "ann@example.com").await;
    admin
        .submit(&format!("{tab}/{ann_id}/role"), &[("role", "user")])
        .await
        .refusal_shown(
            409,
            "users/LAST_ADMIN",
            "this is the account's last active admin",
        );
    // A lost setup link: a new one from the tab, shown once; the old one stops working.
    admin
        .submit(&format!("{tab}/{dan_id}/active"), &[("active", "true")])
        .await;
    let reissued = admin
        .submit(&format!("{tab}/{dan_id}/setup-link"), &[])
        .await;
    reissued.shows(&["New setup link for dan@example.com"]);
    let new_link = copied(&reissued);
    assert_ne!(new_link, link);
    let mut dan = Browser::new(&cp);
    dan.set_password(&new_link).await;
    admin
        .submit(&format!("{tab}/{dan_id}/delete"), &[])
        .await
        .told("User dan@example.com deleted");
    admin.get(&tab).await.lacks(&["dan@example.com"]);

    // A form left open until the session ended (idle for an hour): nothing changes, the
    // sign-in page says so, and signing in again leads back to the form's tab.
    let logs = format!("/ui/accounts/{account}/logs");
    assert_eq!(admin.get(&logs).await.status(), 200);
    cp.advance_clock_past(cp.now_ms() + 3_600_000);
    let late = admin
        .post(&format!("{logs}/tokens"), &[("name", "late")])
        .await;
    assert_eq!(late.status(), 303, "{}", late.html);
    assert_eq!(late.location(), format!("/ui/login?next={logs}"));
    assert!(!admin.has_session(), "the dead session's cookie is gone");
    admin.get(late.location()).await.shows(&[
        "You were signed out, so nothing was changed",
        &format!("name=\"next\" value=\"{logs}\""),
    ]);
    let back = admin
        .post(
            "/ui/login",
            &[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("next", &logs),
            ],
        )
        .await;
    assert_eq!((back.status(), back.location()), (303, logs.as_str()));
    assert_eq!(log_tokens_named(&cp, account, "late").await, 0);
    // Logged out here, a form of another session's page is refused as expired, as a page.
    admin.get(&logs).await;
    admin.post("/ui/logout", &[]).await;
    let stale = admin
        .post(&format!("{logs}/tokens"), &[("name", "late")])
        .await;
    assert_eq!(stale.status(), 403);
    stale.shows(&["This form has expired", "auth/CSRF", "Nothing was changed."]);
    // A form's address typed in the address bar leads to its tab, not an error.
    let typed = admin.get(&format!("{logs}/tokens")).await;
    assert_eq!((typed.status(), typed.location()), (303, logs.as_str()));
    let lost = admin.get("/ui/accounts/1/nowhere").await;
    assert_eq!(lost.status(), 404);
    lost.shows(&["Page not found"]);
}

/// The secret a page shows once (in its copy button).
fn copied(page: &common::page::Page) -> String {
    let at = page.html.find("data-copy=\"").expect("a secret") + "data-copy=\"".len();
    page.html[at..at + page.html[at..].find('"').unwrap()].to_string()
}

async fn log_tokens_named(cp: &ControlPlane, account: i64, name: &str) -> usize {
    cp.log_tokens_of(account).await["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == name)
        .count()
}

async fn user_id(cp: &ControlPlane, account: i64, email: &str) -> i64 {
    let users = cp
        .get("/v1/user-management")
        .admin()
        .account(account)
        .send()
        .await
        .expect_ok("users");
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == email)
        .unwrap_or_else(|| panic!("{email} in {users}"))["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_of_a_main_account_switches_to_the_accounts_it_reaches() {
    let cp = ControlPlane::sqlite().await;
    let (account, api, _) = cp.account("acme").await;
    let mut admin = Browser::signed_in(&cp, account, "ann@example.com", ADMIN).await;
    let sub = |name: &str, accessible: bool| {
        json!({"accountName": name, "email": "ann@example.com", "retentionDays": 7,
               "searchable": false, "accessible": accessible, "sharingObjectsAccounts": []})
    };
    let open = cp
        .api(
            Method::POST,
            "/v1/account-management/time-based-accounts",
            &api,
            Some(sub("acme-eu", true)),
        )
        .await["accountId"]
        .as_i64()
        .unwrap();
    let closed = cp
        .api(
            Method::POST,
            "/v1/account-management/time-based-accounts",
            &api,
            Some(sub("acme-secret", false)),
        )
        .await["accountId"]
        .as_i64()
        .unwrap();
    let tracing = cp
        .create_account(
            json!({"accountName": "acme-traces", "type": "tracing", "ownerAccountId": account}),
        )
        .await["accountId"]
        .as_i64()
        .unwrap();
    let page = admin.get(&format!("/ui/accounts/{account}/logs")).await;
    page.shows(&[
        &format!("href=\"/ui/accounts/{open}/logs\""),
        &format!("href=\"/ui/accounts/{tracing}/traces\""),
        "acme-eu",
        "acme-traces",
    ])
    .lacks(&["acme-secret"]);
    admin
        .get(&format!("/ui/accounts/{open}/logs"))
        .await
        .shows(&["acme-eu", "log management sub-account", "1 of 15 enabled"]);
    admin
        .get(&format!("/ui/accounts/{closed}/logs"))
        .await
        .refused(
            403,
            "auth/NOT_ACCESSIBLE",
            "is not accessible from the main account",
        );
    admin
        .get(&format!("/ui/accounts/{tracing}/logs"))
        .await
        .shows(&[
            "Log shipping tokens live in its main log management account.",
            &format!("href=\"/ui/accounts/{account}/logs\""),
        ]);
    // An admin of the sub-account reaches its own account only: no switcher.
    let mut sub_admin = Browser::signed_in(&cp, open, "eu-admin@example.com", ADMIN).await;
    sub_admin
        .get(&format!("/ui/accounts/{open}/logs"))
        .await
        .lacks(&["switch account", "acme-traces"]);
    sub_admin
        .get(&format!("/ui/accounts/{account}/logs"))
        .await
        .refused(403, "auth/FORBIDDEN", "this user does not reach account");
}

/// Every page forbids framing, sniffing, referrers and anything not its own (CSP); no
/// page that shows tokens is kept by a cache, so Back after logging out shows none. The
/// assets keep their own long caching. A login refused for too many attempts says when to
/// try again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_security_headers_and_token_pages_are_not_stored() {
    let cp = ControlPlane::sqlite().await;
    let (account, _api, _) = cp.account("acme").await;
    let mut admin = Browser::signed_in(&cp, account, "ann@example.com", ADMIN).await;
    let tab = admin.get(&format!("/ui/accounts/{account}/logs")).await;
    let login = Browser::new(&cp).get("/ui/login").await;
    for page in [&tab, &login] {
        let csp = page.header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert_eq!(page.header("x-frame-options"), "DENY");
        assert_eq!(page.header("x-content-type-options"), "nosniff");
        assert_eq!(page.header("referrer-policy"), "no-referrer");
        assert_eq!(page.header("cache-control"), "no-store");
    }
    let css = admin.get("/ui/assets/page.js").await;
    assert!(css.header("cache-control").contains("max-age="));

    let mut guesser = Browser::new(&cp);
    let mut last = None;
    for _ in 0..6 {
        last = Some(guesser.sign_in("ann@example.com", "not the password").await);
    }
    let limited = last.unwrap();
    assert_eq!(limited.status(), 429, "{}", limited.html);
    let retry: u64 = limited
        .header("retry-after")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=900).contains(&retry), "{retry}");
}

//! The Manage Tokens page end to end in headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from `tests/browser/`): a real control plane and a real gateway
//! following its feed, an admin who signs in, creates, renames, copies, disables and
//! deletes tokens, ships logs to the gateway with the token copied from the page and sees
//! it refused once disabled, hits the plan's limit, makes a shared token with a filter,
//! invites a user who sets a password and sees only shared tokens; and, on a main account
//! with a month of usage, reads the Volume tab (at 1280 and 375 px), edits a sub-account's
//! cap and sees an over-plan edit refused; and tours every tab as each role at 1280 and
//! 375 px with the longest names allowed, where axe-core finds no violation and nothing
//! overflows, a reload or Back after a POST makes nothing twice, and a community account
//! rotates its only token. Screenshots of each tab land in `target/browser-artifacts/`.
//!
//! Without node, Chromium or `npm ci` in `tests/browser/` the test prints a SKIPPED banner
//! and returns; under `CI=true` it fails instead (`.ci/run` installs them).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::TestServer;
use common::control::{ControlPlane, skip, use_control_plane};
use common::page::{Browser, PASSWORD};
use common::volume;
use http::Method;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const ADMIN_EMAIL: &str = "ann@example.com";
/// The Volume test's admin: its accounts' sub-account email is `ADMIN_EMAIL` already.
const VOLUME_ADMIN: &str = "root@example.com";

/// What the driver needs, or why it can't run here.
fn prerequisites(dir: &Path) -> Result<(), String> {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("node is not installed ({e})"))?;
    if !node.status.success() {
        return Err("node --version failed".into());
    }
    if !Path::new(CHROMIUM).exists() {
        return Err(format!("{CHROMIUM} is missing (apt-get install chromium)"));
    }
    for package in ["playwright-core", "axe-core"] {
        if !dir.join("node_modules").join(package).exists() {
            return Err(format!(
                "{package} is not installed (npm ci in tests/browser)"
            ));
        }
    }
    Ok(())
}

/// Runs `script` (in `dir`) with `env` and `TOLLGATE_ARTIFACTS`, for at most 180 s; fails
/// unless it exits 0 after saying "all steps passed".
async fn drive(dir: &Path, script: &str, env: &[(&str, String)], artifacts: &Path) {
    let mut driver = tokio::process::Command::new("node")
        .arg(dir.join(script))
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("TOLLGATE_ARTIFACTS", artifacts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let stdout = driver.stdout.take().expect("piped");
    let stderr = driver.stderr.take().expect("piped");
    let read = |mut pipe: Box<dyn tokio::io::AsyncRead + Unpin + Send>| async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut text).await;
        text
    };
    let (out, err, status) = tokio::time::timeout(Duration::from_secs(180), async {
        tokio::join!(
            read(Box::new(stdout)),
            read(Box::new(stderr)),
            driver.wait()
        )
    })
    .await
    .expect("the browser run ends within 180 s");
    eprintln!("{out}{err}");
    assert!(
        status.expect("node ran").success(),
        "the browser run failed (screenshot: {}/failure.png):\n{out}\n{err}",
        artifacts.display()
    );
    assert!(out.contains("all steps passed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_tokens_in_a_real_browser() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let driver_dir = root.join("tests/browser");
    if let Err(why) = prerequisites(&driver_dir) {
        skip("an_admin_manages_tokens_in_a_real_browser", &why);
        return;
    }
    // The gateway's address first: the page's live-tail links point at it.
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_url = format!("http://{}", public.local_addr().unwrap());
    let cp = ControlPlane::sqlite_with(|c| c.gateway_url = Some(gateway_url.clone())).await;
    let url = cp.url();
    let gateway = TestServer::start_on(public, |c| use_control_plane(c, &url)).await;
    gateway.wait_ready().await;

    // A pro account with 14 of its 15 tokens enabled, and its admin.
    let (account, api, _) = cp.account("acme").await;
    let (_, ship_token) = cp.create_token(&api, "web").await;
    for name in [
        "k8s-prod",
        "k8s-staging",
        "edge-eu",
        "edge-us",
        "lambda",
        "batch-jobs",
    ] {
        cp.create_token(&api, name).await;
    }
    for i in 1..=6 {
        cp.create_token(&api, &format!("team-{i}")).await;
    }
    let (old, _) = cp.create_token(&api, "retired").await;
    cp.set_enabled(&api, old, "retired", false).await;
    for (name, kind) in [("acme-metrics", "metrics"), ("acme-traces", "tracing")] {
        cp.create_account(json!({"accountName": name, "type": kind, "ownerAccountId": account}))
            .await;
    }
    let (_, link) = cp
        .create_user(account, ADMIN_EMAIL, "USER_ROLE_ACCOUNT_ADMIN")
        .await;
    Browser::new(&cp).set_password(&link).await;

    let artifacts = root.join("target/browser-artifacts");
    drive(
        &driver_dir,
        "manage_tokens.mjs",
        &[
            ("TOLLGATE_PAGE_URL", url.clone()),
            ("TOLLGATE_GATEWAY_URL", format!("http://{}", gateway.addr)),
            ("TOLLGATE_ACCOUNT_ID", account.to_string()),
            ("TOLLGATE_SHIP_TOKEN", ship_token.clone()),
            ("TOLLGATE_ADMIN_EMAIL", ADMIN_EMAIL.to_string()),
            ("TOLLGATE_ADMIN_PASSWORD", PASSWORD.to_string()),
        ],
        &artifacts,
    )
    .await;

    // What the browser did is what the API sees.
    let found = cp
        .api(
            Method::POST,
            "/v1/log-shipping/tokens/search",
            &api,
            Some(json!({})),
        )
        .await;
    let names: Vec<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"browser-renamed") && !names.contains(&"browser-test"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"one-too-many"),
        "the limit held: {names:?}"
    );
    let shared = cp.api(Method::GET, "/v1/shared-tokens", &api, None).await;
    assert!(shared.to_string().contains("status-page"), "{shared}");
    let users = cp.api(Method::GET, "/v1/user-management", &api, None).await;
    let dan = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "dan@example.com")
        .expect("the invited user");
    assert_eq!(dan["role"], "USER_ROLE_REGULAR");
    for shot in [
        "login",
        "logs",
        "logs-limit",
        "metrics",
        "shared",
        "api",
        "users",
        "setup",
        "user-shared",
        "live-tail",
        "live-tail-ended",
        "drop-filters",
        "drop-filters-metrics",
    ] {
        assert!(
            artifacts.join(format!("{shot}.png")).exists(),
            "screenshot {shot}.png"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reads_and_edits_volume_in_a_real_browser() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let driver_dir = root.join("tests/browser");
    if let Err(why) = prerequisites(&driver_dir) {
        skip("an_admin_reads_and_edits_volume_in_a_real_browser", &why);
        return;
    }
    let cp = ControlPlane::sqlite().await;
    let acme = volume::acme(&cp).await;
    // A month of usage, a day at a time as gateways report it: the fixed account near its
    // 30 GB and at it today, the flexible one past its 40 GB soft limit on some days.
    for day in 0..30_u64 {
        let gb = |base: u64, spread: u64, step: u64| (base + day * step % spread) * volume::GB;
        let today = day == 29;
        let fixed = if today {
            30 * volume::GB
        } else {
            gb(17, 12, 7)
        };
        let flexible = if today {
            42 * volume::GB
        } else {
            gb(24, 23, 13)
        };
        volume::report_usage(&cp, acme.main, gb(6, 9, 5)).await;
        volume::report_usage(&cp, acme.fixed, fixed).await;
        volume::report_usage(&cp, acme.flexible, flexible).await;
        if day < 29 {
            cp.advance_clock_past(volume::today_ms(&cp) + volume::DAY_MS);
        }
    }
    // A gateway reports `acme-eu` capped; `acme-us` crossed its 40 GB soft limit today
    // with the usage reported above.
    volume::report_capped(&cp, acme.fixed).await;
    // The admin comes after the clock moved, so the setup link is fresh.
    let (_, link) = cp.create_user(acme.main, VOLUME_ADMIN, volume::ADMIN).await;
    Browser::new(&cp).set_password(&link).await;

    let artifacts = root.join("target/browser-artifacts");
    drive(
        &driver_dir,
        "volume.mjs",
        &[
            ("TOLLGATE_PAGE_URL", cp.url()),
            ("TOLLGATE_ACCOUNT_ID", acme.main.to_string()),
            ("TOLLGATE_FIXED_ID", acme.fixed.to_string()),
            ("TOLLGATE_FLEXIBLE_ID", acme.flexible.to_string()),
            ("TOLLGATE_ADMIN_EMAIL", VOLUME_ADMIN.to_string()),
            ("TOLLGATE_ADMIN_PASSWORD", PASSWORD.to_string()),
        ],
        &artifacts,
    )
    .await;

    // The cap edited in the browser is what the API reads back; the refused edit changed
    // nothing.
    let flexible = volume::sub_account(&cp, &acme, acme.flexible).await;
    assert_eq!(flexible["maxDailyGB"], 45.0, "{flexible}");
    assert_eq!(flexible["reservedDailyGB"], 20.0, "{flexible}");
    for shot in ["volume", "volume-phone", "volume-refused"] {
        assert!(
            artifacts.join(format!("{shot}.png")).exists(),
            "screenshot {shot}.png"
        );
    }
}

/// A name as long as names may be (256 characters), without a space to break it at.
fn longest_name() -> String {
    "very-long-name-".repeat(18).chars().take(256).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tab_reads_well_for_every_role_at_1280_and_375_px() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let driver_dir = root.join("tests/browser");
    if let Err(why) = prerequisites(&driver_dir) {
        skip(
            "every_tab_reads_well_for_every_role_at_1280_and_375_px",
            &why,
        );
        return;
    }
    let cp = ControlPlane::sqlite_with(|c| {
        c.gateway_url = Some("https://listener.example.com".to_string());
        c.shared_tokens_without_expiry = true;
    })
    .await;
    let long = longest_name();
    // A main account with a daily volume, two sub-accounts and a day of usage; tokens,
    // filters and users of every kind, the longest name in each table.
    let acme = volume::acme(&cp).await;
    let api = acme.api.clone();
    volume::report_usage(&cp, acme.main, 12 * volume::GB).await;
    volume::report_usage(&cp, acme.fixed, 30 * volume::GB).await;
    volume::report_capped(&cp, acme.fixed).await;
    cp.create_token(&api, &long).await;
    cp.create_token(&api, "k8s-prod").await;
    let (old, _) = cp.create_token(&api, "retired").await;
    cp.set_enabled(&api, old, "retired", false).await;
    for name in ["terraform", "terraform", long.as_str()] {
        cp.api(
            Method::POST,
            "/v1/api-tokens",
            &api,
            Some(json!({"name": name})),
        )
        .await;
    }
    let mut filters = Vec::new();
    for (field, value) in [
        ("kubernetes.namespace", "payments-production"),
        ("env", "test"),
    ] {
        let f = cp
            .api(
                Method::POST,
                "/v1/shared-tokens/filters",
                &api,
                Some(json!({"description": "scope", "field": field, "value": value})),
            )
            .await;
        filters.push(f["id"].clone());
    }
    let week = cp.now_ms() + 7 * 86_400_000;
    for body in [
        json!({"tokenName": "status-page", "filters": filters, "expirationDate": week}),
        json!({"tokenName": long, "filters": [filters[0]], "expirationDate": week}),
        json!({"tokenName": "wide-open", "filters": [], "expirationDate": week}),
        json!({"tokenName": "old", "filters": [], "expirationDate": null, "legacy": true}),
    ] {
        cp.api(Method::POST, "/v1/shared-tokens", &api, Some(body))
            .await;
    }
    let log_filter = cp
        .api(
            Method::POST,
            "/v1/drop-filters",
            &api,
            Some(
                json!({"logType": "nginx", "description": long, "thresholdInGB": 2.5,
                        "fieldConditions": [{"fieldName": "status", "value": 200},
                                            {"fieldName": "kubernetes.pod", "value": long}]}),
            ),
        )
        .await;
    let metrics = cp
        .create_account(json!({"accountName": "acme-metrics", "type": "metrics",
                               "ownerAccountId": acme.main}))
        .await["accountId"]
        .as_i64()
        .unwrap();
    cp.create_account(
        json!({"accountName": "acme-traces", "type": "tracing", "ownerAccountId": acme.main}),
    )
    .await;
    cp.api(
        Method::POST,
        "/v1/metrics-management/drop-filters",
        &api,
        Some(
            json!({"accountId": metrics, "name": "debug histograms", "filter": {
            "operator": "AND", "expression": [
                {"name": "__name__", "value": ".*_bucket", "comparisonFilter": "REGEX_MATCH"},
                {"name": "env", "value": "dev", "comparisonFilter": "EQ"}]}}),
        ),
    )
    .await;
    cp.post("/v1/feed/usage")
        .feed()
        .json(
            json!({"dropped": [{"kind": "logs", "filter_id": log_filter["id"].as_str()
            .unwrap().parse::<u64>().unwrap(), "records": 1234, "bytes": 567_000}]}),
        )
        .send()
        .await
        .expect_status(204, "usage report");
    for (email, role) in [
        (VOLUME_ADMIN, "USER_ROLE_ACCOUNT_ADMIN"),
        ("bob@example.com", "USER_ROLE_REGULAR"),
        ("rob@example.com", "USER_ROLE_READONLY"),
    ] {
        let (_, link) = cp.create_user(acme.main, email, role).await;
        Browser::new(&cp).set_password(&link).await;
    }
    // Invited, and suspended.
    cp.create_user(acme.main, "new@example.com", "USER_ROLE_REGULAR")
        .await;
    let (gone, _) = cp
        .create_user(acme.main, "left@example.com", "USER_ROLE_REGULAR")
        .await;
    cp.post(&format!("/v1/user-management/suspend/{gone}"))
        .token(&api)
        .send()
        .await;
    // A community account: one token, to rotate.
    let small = cp
        .create_account(json!({"accountName": "small", "plan": "community"}))
        .await;
    let small_id = small["accountId"].as_i64().unwrap();
    let small_token = small["accountToken"].as_str().unwrap().to_string();
    let (_, link) = cp
        .create_user(small_id, "cat@example.com", "USER_ROLE_ACCOUNT_ADMIN")
        .await;
    Browser::new(&cp).set_password(&link).await;

    let artifacts = root.join("target/browser-artifacts");
    drive(
        &driver_dir,
        "tour.mjs",
        &[
            ("TOLLGATE_PAGE_URL", cp.url()),
            ("TOLLGATE_ACCOUNT_ID", acme.main.to_string()),
            ("TOLLGATE_METRICS_ID", metrics.to_string()),
            ("TOLLGATE_COMMUNITY_ID", small_id.to_string()),
            ("TOLLGATE_LONG_NAME", long.clone()),
            ("TOLLGATE_PASSWORD", PASSWORD.to_string()),
        ],
        &artifacts,
    )
    .await;

    // The community account's token was rotated on the page: the old one is gone, a new
    // one has its name.
    let tokens = cp.log_tokens_of(small_id).await;
    let results = tokens["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{tokens}");
    assert_eq!(results[0]["name"], "default");
    assert_eq!(results[0]["enabled"], true);
    assert_ne!(results[0]["token"], small_token.as_str(), "a new token");
    for tab in [
        "login",
        "admin-logs",
        "admin-shared",
        "admin-drop-filters",
        "user-shared",
    ] {
        for width in ["", "-phone"] {
            let shot = format!("tour-{tab}{width}.png");
            assert!(artifacts.join(&shot).exists(), "screenshot {shot}");
        }
    }
}

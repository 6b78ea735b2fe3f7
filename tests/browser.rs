//! The Manage Tokens page end to end in headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from `tests/browser/`): a real control plane and a real gateway
//! following its feed, an admin who signs in, creates, renames, copies, disables and
//! deletes tokens, ships logs to the gateway with the token copied from the page and sees
//! it refused once disabled, hits the plan's limit, makes a shared token with a filter,
//! invites a user who sets a password and sees only shared tokens; and, on a main account
//! with a month of usage, reads the Volume tab (at 1280 and 375 px), edits a sub-account's
//! cap and sees an over-plan edit refused. Screenshots of each tab land in
//! `target/browser-artifacts/`.
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
    if !dir.join("node_modules/playwright-core").exists() {
        return Err("playwright-core is not installed (npm ci in tests/browser)".into());
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

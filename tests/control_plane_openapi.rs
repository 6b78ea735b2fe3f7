//! The OpenAPI document against the real control plane: the served document is the one
//! in the repository, and schemathesis (from PyPI) fuzzes every documented operation with
//! generated inputs, checking that nothing answers 5xx and that every answer's status,
//! content type and body conform to the document.
//!
//! schemathesis must be on PATH (`pip install schemathesis==4.32.5`, which `.ci/run` does)
//! or named by `SCHEMATHESIS_BIN`. Without it the fuzzing test prints SKIPPED; under
//! `CI=true` it fails.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::control::{ADMIN_SECRET, Backend, ControlPlane, FEED_SECRET, skip};
use serde_json::{Value, json};
use tokio::process::Command;

const DOCUMENT: &str = include_str!("../src/control/api/openapi.json");

/// Bounds each schemathesis run: examples per operation, and a wall-clock limit.
const MAX_EXAMPLES: &str = "15";
const RUN_LIMIT: Duration = Duration::from_secs(110);
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

#[tokio::test]
async fn the_served_document_is_the_repository_file() {
    let Some(cp) = ControlPlane::start(
        Backend::Sqlite,
        "the_served_document_is_the_repository_file",
    )
    .await
    else {
        return;
    };
    let served = cp.get("/v1/openapi.json").send().await;
    assert_eq!(served.status, 200);
    assert_eq!(
        served.headers.get("content-type").unwrap(),
        "application/json"
    );
    let file: Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
    assert_eq!(served.json(), file);
    assert_eq!(file["openapi"], "3.0.3");
    cp.stop().await;
}

/// Every route the control plane serves is in the document, and every documented path
/// answers something other than "no such route".
#[tokio::test]
async fn the_document_covers_every_route() {
    let Some(cp) = ControlPlane::start(Backend::Sqlite, "the_document_covers_every_route").await
    else {
        return;
    };
    let file: Value = serde_json::from_str(DOCUMENT).unwrap();
    let paths = file["paths"].as_object().unwrap();
    for (path, ops) in paths {
        let concrete = path
            .replace("{id}", "1")
            .replace("{digest}", &"a".repeat(64));
        for method in ops.as_object().unwrap().keys() {
            let method: http::Method = method.to_uppercase().parse().unwrap();
            let reply = cp.request(method.clone(), &concrete).send().await;
            if reply.status == 404 {
                let body = reply.json();
                assert_ne!(
                    body["message"], "no such route",
                    "{method} {path} is documented but not served"
                );
            }
            assert_ne!(
                reply.status, 405,
                "{method} {path} is documented but not served"
            );
            let documented = ops[method.as_str().to_lowercase()]["responses"]
                .as_object()
                .unwrap();
            assert!(
                documented.contains_key(reply.status.as_str()),
                "{method} {path} answered {} without credentials, not documented",
                reply.status
            );
        }
    }
    // The other way round: the routes of DESIGN §4 and the feed protocol are documented.
    for path in [
        "/v1/admin/accounts",
        "/v2/whoami",
        "/v1/log-shipping/tokens",
        "/v1/log-shipping/tokens/search",
        "/v1/log-shipping/tokens/limits",
        "/v1/log-shipping/tokens/{id}",
        "/v1/metrics-shipping/tokens/{id}",
        "/v1/tracing-shipping/tokens/search",
        "/v1/account-management/time-based-accounts",
        "/v1/account-management/time-based-accounts/{id}",
        "/v1/account-management/time-based-accounts/detailed",
        "/v1/account-management/time-based-accounts/detailed/{id}",
        "/v1/account-management/metrics-accounts",
        "/v1/account-management/metrics-accounts/{id}",
        "/v1/api-tokens",
        "/v1/api-tokens/sub-account",
        "/v1/api-tokens/{id}",
        "/v1/shared-tokens",
        "/v1/shared-tokens/{id}",
        "/v1/shared-tokens/filters",
        "/v1/shared-tokens/filters/{id}",
        "/v1/audit-events",
        "/v1/user-management",
        "/v1/user-management/recursive",
        "/v1/user-management/{id}",
        "/v1/user-management/suspend/{id}",
        "/v1/user-management/unsuspend/{id}",
        "/v1/feed/snapshot",
        "/v1/feed/changes",
        "/v1/feed/tokens/{digest}",
        "/v1/feed/usage",
        "/v1/feed/shared-tokens/resolve",
        "/v1/openapi.json",
        "/v1/admin/accounts/{id}",
        "/v1/drop-filters",
        "/v1/drop-filters/search",
        "/v1/drop-filters/{id}",
        "/v1/drop-filters/{id}/activate",
        "/v1/drop-filters/{id}/deactivate",
        "/v1/metrics-management/drop-filters",
        "/v1/metrics-management/drop-filters/bulk/create",
        "/v1/metrics-management/drop-filters/bulk/delete",
        "/v1/metrics-management/drop-filters/search",
        "/v1/metrics-management/drop-filters/{id}",
        "/v1/metrics-management/drop-filters/{id}/enable",
        "/v1/metrics-management/drop-filters/{id}/disable",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    cp.stop().await;
}

fn schemathesis_bin() -> String {
    std::env::var("SCHEMATHESIS_BIN").unwrap_or_else(|_| "schemathesis".into())
}

async fn schemathesis_available() -> bool {
    Command::new(schemathesis_bin())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// One schemathesis run against the served document; panics with its report on failure.
async fn run_schemathesis(cp: &ControlPlane, what: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(schemathesis_bin());
    command
        .arg("run")
        .arg(format!("{}/v1/openapi.json", cp.url()))
        .args(["--url", &cp.url()])
        .args(["--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--request-timeout", "10"])
        // One worker: with several, hypothesis' lambda descriptions race in CPython 3.11's
        // `ast` ("AST constructor recursion depth mismatch"), a tool error, not an API one.
        .args(["--workers", "1"])
        .args(["--suppress-health-check", "all"])
        .args(["--no-color"])
        .args(extra)
        // Its report and hypothesis database stay out of the repository.
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = std::time::Instant::now();
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ({what}) ran longer than {RUN_LIMIT:?}"))
        .expect("schemathesis runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis ({what}) found problems ({:?}):\n{report}",
        output.status
    );
    // A run that tested nothing must not pass quietly.
    assert!(
        report.contains("passed") && !report.contains("No operations"),
        "schemathesis ({what}) ran no test:\n{report}"
    );
    let summary: Vec<&str> = report.lines().rev().take(12).collect();
    eprintln!(
        "schemathesis ({what}) passed in {:.1} s:\n{}",
        started.elapsed().as_secs_f64(),
        summary.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_nonconformance() {
    const TEST: &str = "schemathesis_finds_no_server_error_and_no_nonconformance";
    if !schemathesis_available().await {
        skip(
            TEST,
            "schemathesis is not installed (pip install schemathesis==4.32.5, or set SCHEMATHESIS_BIN)",
        );
        return;
    }
    let Some(cp) = ControlPlane::start(Backend::Sqlite, TEST).await else {
        return;
    };
    // A pro account with objects to find: tokens, a sub-account, filters, shared tokens,
    // a metrics account (3) and drop filters. The document's path examples name them
    // (shipping token, filter, shared token and drop filters 1, sub-account 2), so the
    // examples phase reaches past 404 into the real answers.
    let created = cp
        .create_account(json!({"accountName": "fuzzed", "plan": "pro"}))
        .await;
    let api = created["apiToken"].as_str().unwrap().to_string();
    for body in [
        json!({"name": "second"}),
        json!({"name": "third", "enabled": false}),
    ] {
        cp.post("/v1/log-shipping/tokens")
            .token(&api)
            .json(body)
            .send()
            .await
            .expect_ok("seed token");
    }
    cp.post("/v1/account-management/time-based-accounts")
        .token(&api)
        .json(json!({"accountName": "fuzzed-sub", "accessible": true}))
        .send()
        .await
        .expect_ok("seed sub-account");
    let filter = cp
        .post("/v1/shared-tokens/filters")
        .token(&api)
        .json(json!({"description": "env", "field": "env", "value": "prod"}))
        .send()
        .await
        .expect_ok("seed filter");
    cp.post("/v1/shared-tokens")
        .token(&api)
        .json(json!({"tokenName": "seeded", "filters": [filter["id"]]}))
        .send()
        .await
        .expect_ok("seed shared token");
    let metrics = cp
        .create_account(json!({"accountName": "fuzzed-metrics", "type": "metrics",
            "ownerAccountId": created["accountId"]}))
        .await;
    cp.post("/v1/drop-filters")
        .token(&api)
        .json(json!({"fieldConditions": [{"fieldName": "level", "value": "debug"}]}))
        .send()
        .await
        .expect_ok("seed log drop filter");
    cp.post("/v1/metrics-management/drop-filters")
        .token(&api)
        .json(
            json!({"accountId": metrics["accountId"], "filter": {"operator": "AND",
            "expression": [{"name": "__name__", "value": "up", "comparisonFilter": "EQ"}]}}),
        )
        .send()
        .await
        .expect_ok("seed metrics drop filter");

    // The management API with the account's API token.
    run_schemathesis(
        &cp,
        "management API, X-API-TOKEN",
        &[
            "--header",
            &format!("X-API-TOKEN: {api}"),
            "--exclude-path-regex",
            "^/v1/feed/",
        ],
    )
    .await;
    // Account creation with the operator's secret (an API token only ever gets 403 there).
    run_schemathesis(
        &cp,
        "account creation, admin secret",
        &[
            "--header",
            &format!("Authorization: Bearer {ADMIN_SECRET}"),
            "--include-path-regex",
            "^/v1/admin/",
        ],
    )
    .await;
    // The feed with the feed secret. `changes` is a long poll (a generated `since` equal
    // to the current version waits up to 60 s); tests/control_plane_api/feed.rs covers it.
    run_schemathesis(
        &cp,
        "feed, feed secret",
        &[
            "--header",
            &format!("Authorization: Bearer {FEED_SECRET}"),
            "--include-path-regex",
            "^/v1/feed/",
            "--exclude-path-regex",
            "^/v1/feed/changes$",
        ],
    )
    .await;
    cp.stop().await;
}

//! The `control_plane` token source against the REAL control plane (`tollgate::control`
//! on 127.0.0.1:0 with SQLite in a tempdir) and the real gateway (`app::run`), over HTTP:
//! propagation within DESIGN §2's 2 s bound, fail-static through outages and restarts,
//! 410 → snapshot refetch, the miss lookup budget under a flood, and last-used reporting.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::control::{ControlPlane, use_control_plane};
use common::*;
use http::{Method, StatusCode};

/// DESIGN §2: a change in the control plane is enforced by connected gateways within 2 s.
const PROPAGATION: Duration = Duration::from_secs(2);

async fn logs_status(server: &TestServer, token: &str) -> StatusCode {
    server
        .post_logs(Some(token), "", "{\"a\":1}\n")
        .await
        .status
}

/// True when the logs route refuses `token` with 401 and this error message.
async fn refused_with(server: &TestServer, token: &str, message: &str) -> bool {
    let reply = server.post_logs(Some(token), "", "{\"a\":1}\n").await;
    reply.status == StatusCode::UNAUTHORIZED && reply.json()["error"] == message
}

async fn gateway(cp: &ControlPlane) -> TestServer {
    let url = cp.url();
    let server = TestServer::start(|c| use_control_plane(c, &url)).await;
    server.wait_ready().await;
    server
}

/// Waits until the gateway serves the control plane's current version.
async fn caught_up(server: &TestServer, cp: &ControlPlane) {
    let version = cp.feed_version().await as f64;
    eventually(PROPAGATION, || async {
        server.metric("tollgate_token_table_version").await == version
    })
    .await;
}

#[tokio::test]
async fn created_disabled_enabled_deleted_tokens_take_effect_within_two_seconds() {
    let cp = ControlPlane::sqlite().await;
    let (_, api, first) = cp.account("acme").await;
    let server = gateway(&cp).await;
    assert_eq!(logs_status(&server, &first).await, StatusCode::OK);

    let (id, token) = cp.create_token(&api, "second").await;
    let took = eventually(PROPAGATION, || async {
        logs_status(&server, &token).await == StatusCode::OK
    })
    .await;
    eprintln!("created: accepted after {took:?}");

    cp.set_enabled(&api, id, "second", false).await;
    let took = eventually(PROPAGATION, || {
        refused_with(&server, &token, "Logging token is disabled")
    })
    .await;
    eprintln!("disabled: refused after {took:?}");

    cp.set_enabled(&api, id, "second", true).await;
    let took = eventually(PROPAGATION, || async {
        logs_status(&server, &token).await == StatusCode::OK
    })
    .await;
    eprintln!("re-enabled: accepted after {took:?}");

    cp.api(
        Method::DELETE,
        &format!("/v1/log-shipping/tokens/{id}"),
        &api,
        None,
    )
    .await;
    let took = eventually(PROPAGATION, || {
        refused_with(&server, &token, "Logging token is not valid")
    })
    .await;
    eprintln!("deleted: refused after {took:?}");

    // Every step came through the feed: the gateway serves the control plane's version,
    // and the untouched token never stopped working.
    caught_up(&server, &cp).await;
    assert_eq!(logs_status(&server, &first).await, StatusCode::OK);
    assert!(
        server
            .metric("tollgate_token_reloads_total{result=\"ok\"}")
            .await
            >= 5.0,
        "a snapshot and four deltas"
    );
}

#[tokio::test]
async fn gateway_serves_through_control_plane_outages_and_restarts_then_catches_up() {
    let mut cp = ControlPlane::sqlite().await;
    let url = cp.url();
    let (_, api, first) = cp.account("acme").await;
    let (second_id, second) = cp.create_token(&api, "second").await;
    let server = gateway(&cp).await;
    caught_up(&server, &cp).await;
    assert_eq!(logs_status(&server, &second).await, StatusCode::OK);

    // 1. The control plane goes away: the gateway notices and keeps serving.
    cp.go_down().await;
    eventually(Duration::from_secs(5), || async {
        server
            .metric("tollgate_token_reloads_total{result=\"error\"}")
            .await
            >= 1.0
    })
    .await;
    assert_eq!(logs_status(&server, &first).await, StatusCode::OK);
    assert_eq!(logs_status(&server, &second).await, StatusCode::OK);
    assert_eq!(
        logs_status(&server, UNKNOWN_TOKEN).await,
        StatusCode::UNAUTHORIZED,
        "an unknown token cannot be looked up, so it is refused, not waited on"
    );
    assert_eq!(server.get_admin("/readyz").await.status, StatusCode::OK);
    // Staleness shows: nothing confirms the table any more (whole seconds, so wait one).
    eventually(Duration::from_secs(5), || async {
        server.metric("tollgate_token_table_age_seconds").await >= 1.0
    })
    .await;

    // 2. While the gateway is down, the control plane comes back and `second` is disabled;
    //    then the control plane goes down again and the gateway restarts without it.
    let dir = server.shutdown().await;
    cp.restart().await;
    cp.set_enabled(&api, second_id, "second", false).await;
    cp.go_down().await;
    let server = TestServer::start_in(dir, |c| use_control_plane(c, &url)).await;
    assert_eq!(
        server.get_admin("/readyz").await.status,
        StatusCode::OK,
        "ready at once from the persisted snapshot"
    );
    assert_eq!(logs_status(&server, &first).await, StatusCode::OK);
    assert_eq!(
        logs_status(&server, &second).await,
        StatusCode::OK,
        "fail-static: the persisted table serves until the control plane answers"
    );
    let persisted = std::fs::read_to_string(server.dir.join("state/tokens.snapshot.json")).unwrap();
    assert!(!persisted.contains(&first) && !persisted.contains(&second));

    // 3. The control plane is back: the gateway catches up by itself.
    cp.restart().await;
    let took = eventually(Duration::from_secs(3), || async {
        logs_status(&server, &second).await == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!("caught up {took:?} after the control plane came back");
    caught_up(&server, &cp).await;
    assert_eq!(logs_status(&server, &first).await, StatusCode::OK);
}

#[tokio::test]
async fn a_reset_control_plane_410s_the_change_feed_and_the_gateway_refetches_the_snapshot() {
    let mut cp = ControlPlane::sqlite().await;
    let (_, api, first) = cp.account("acme").await;
    for i in 0..4 {
        cp.create_token(&api, &format!("extra-{i}")).await;
    }
    let server = gateway(&cp).await;
    caught_up(&server, &cp).await;
    let old_version = server.metric("tollgate_token_table_version").await;
    let reloads = server
        .metric("tollgate_token_reloads_total{result=\"ok\"}")
        .await;

    // Same address, empty database: the gateway's version is newer than the current one.
    cp.restart_fresh().await;
    let (_, _, fresh) = cp.account("globex").await;
    let fresh_version = cp.feed_version().await;
    assert!(
        (fresh_version as f64) < old_version,
        "the reset went back in time"
    );

    eventually(Duration::from_secs(3), || async {
        server.metric("tollgate_token_table_version").await == fresh_version as f64
    })
    .await;
    assert_eq!(server.metric("tollgate_token_table_size").await, 1.0);
    assert!(
        server
            .metric("tollgate_token_reloads_total{result=\"ok\"}")
            .await
            > reloads
    );
    assert_eq!(
        logs_status(&server, &first).await,
        StatusCode::UNAUTHORIZED,
        "tokens of the old database are gone"
    );
    assert_eq!(logs_status(&server, &fresh).await, StatusCode::OK);
}

#[tokio::test]
async fn a_flood_of_random_tokens_costs_the_control_plane_at_most_the_configured_lookups() {
    const FLOOD: usize = 100_000;
    const PER_SEC: u32 = 20;
    const CONCURRENCY: usize = 32;
    let cp = ControlPlane::sqlite().await;
    let (_, _, first) = cp.account("acme").await;
    let url = cp.url();
    // From before the gateway exists: its lookup budget cannot have started earlier.
    let started = Instant::now();
    let server = Arc::new(
        TestServer::start(|c| {
            use_control_plane(c, &url);
            c.tokens.miss_lookups_per_sec = PER_SEC;
        })
        .await,
    );
    server.wait_ready().await;

    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|w| {
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                let mut refused = 0usize;
                for i in (w..FLOOD).step_by(CONCURRENCY) {
                    let token = format!("flood{i:027}");
                    if logs_status(&server, &token).await == StatusCode::UNAUTHORIZED {
                        refused += 1;
                    }
                }
                refused
            })
        })
        .collect();
    let mut refused = 0;
    for w in workers {
        refused += w.await.unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(refused, FLOOD, "every random token is refused");

    let m = |result: &'static str| {
        let server = Arc::clone(&server);
        async move {
            server
                .metric(&format!(
                    "tollgate_token_miss_lookups_total{{result=\"{result}\"}}"
                ))
                .await
        }
    };
    let (found, unknown, error, limited) = (
        m("found").await,
        m("unknown").await,
        m("error").await,
        m("limited").await,
    );
    // The bucket starts full (one second's worth), then refills at PER_SEC.
    let budget = f64::from(PER_SEC) * (elapsed.as_secs_f64() + 1.0);
    let asked = found + unknown + error;
    eprintln!(
        "{FLOOD} random tokens in {elapsed:?}: {asked} lookups (budget {budget:.0}), {limited} limited"
    );
    assert!(asked <= budget, "{asked} lookups > {budget}");
    assert!(asked >= 1.0, "misses do reach the control plane");
    assert_eq!(found, 0.0);
    assert_eq!(unknown + limited + error, FLOOD as f64);

    // The control plane's own count agrees.
    let cp_metrics = cp.metrics().await;
    let cp_lookups = metric_value(
        &cp_metrics,
        "tollgate_control_feed_lookups_total{result=\"not_found\"}",
    ) + metric_value(
        &cp_metrics,
        "tollgate_control_feed_lookups_total{result=\"found\"}",
    );
    assert_eq!(cp_lookups, unknown);
    assert!(cp_lookups <= budget);

    // Real tokens are unaffected by the flood.
    assert_eq!(logs_status(&server, &first).await, StatusCode::OK);
}

#[tokio::test]
async fn last_used_appears_in_the_token_listing_after_traffic() {
    let cp = ControlPlane::sqlite().await;
    let (_, api, _) = cp.account("acme").await;
    let (id, token) = cp.create_token(&api, "shipper").await;
    let server = gateway(&cp).await;
    let path = format!("/v1/log-shipping/tokens/{id}");
    assert!(
        cp.api(Method::GET, &path, &api, None).await["lastUsed"].is_null(),
        "never used yet"
    );

    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    eventually(PROPAGATION, || async {
        logs_status(&server, &token).await == StatusCode::OK
    })
    .await;
    eventually(Duration::from_secs(5), || async {
        let model = cp.api(Method::GET, &path, &api, None).await;
        model["lastUsed"].as_u64().is_some_and(|t| t >= before)
    })
    .await;
    assert!(
        server
            .metric("tollgate_usage_flushes_total{result=\"ok\"}")
            .await
            >= 1.0
    );
}

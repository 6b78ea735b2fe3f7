//! Account volume across a fleet (docs/volume.md, "Across a fleet"): gateways that share
//! one control plane and one real Redis (started per test, `common::redis`) enforce one
//! daily volume between them, within the stated overshoot; a flexible account stops when
//! the plan's pool is empty while a fixed one keeps its reservation; one utilization
//! record per interval for the whole fleet; and Redis killed under load costs no 5xx and
//! loses nothing acknowledged.

mod common;

use std::time::Duration;

use common::control::{ControlPlane, use_control_plane};
use common::volume::{plan, sub};
use common::*;
use http::{Method, StatusCode};
use serde_json::json;

const PROPAGATION: Duration = Duration::from_secs(2);
const DAY: Duration = Duration::from_secs(86_400);
/// Lines a request carries in these tests, of about 100 bytes each: 10 kB a request.
const LINES: usize = 100;
/// The largest lease a gateway takes (`volume.lease_bytes`).
const LEASE: u64 = 32 * 1024;

/// `n` gateways following `cp` and counting in `redis_url`, each ready and holding
/// `policies` volume policies.
async fn fleet(cp: &ControlPlane, redis_url: &str, n: usize, policies: f64) -> Vec<TestServer> {
    let mut gateways = Vec::new();
    for _ in 0..n {
        let (url, redis) = (cp.url(), redis_url.to_string());
        let gateway = TestServer::start(|c| {
            use_control_plane(c, &url);
            c.volume.redis_url = Some(redis);
            // Small leases, so a few requests already go to Redis.
            c.volume.lease_bytes = LEASE;
            c.volume.bank_timeout_secs = Duration::from_millis(200);
            c.volume.retry_secs = Duration::from_millis(50);
            c.volume.utilization_check_secs = Duration::from_millis(50);
        })
        .await;
        gateway.wait_ready().await;
        wait_until("the policies reach the gateway", PROPAGATION, || async {
            gateway.metric("tollgate_volume_policies").await >= policies
        })
        .await;
        gateways.push(gateway);
    }
    gateways
}

fn logs(tag: &str) -> String {
    (0..LINES)
        .map(|i| format!("{{\"message\":\"{tag} {i:05} {}\"}}\n", "x".repeat(64)))
        .collect()
}

/// Sends `rounds` requests to each gateway in turn with `token`; all must be 200.
async fn send_round_robin(gateways: &[TestServer], token: &str, rounds: usize, tag: &str) {
    for _ in 0..rounds {
        for g in gateways {
            let reply = g.post_logs(Some(token), "", logs(tag)).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Records with `tag` in every gateway's sink.
fn forwarded(gateways: &[TestServer], tag: &str) -> usize {
    gateways
        .iter()
        .flat_map(|g| g.sink_records("logs"))
        .filter(|r| r["message"].as_str().is_some_and(|m| m.starts_with(tag)))
        .count()
}

/// The accepted size of one test log, as the gateways count it.
async fn line_bytes(g: &TestServer) -> f64 {
    g.metric("tollgate_ingested_bytes_total{kind=\"logs\"}")
        .await
        / g.metric("tollgate_ingested_records_total{kind=\"logs\"}")
            .await
}

async fn metric_sum(gateways: &[TestServer], sample: &str) -> f64 {
    let mut sum = 0.0;
    for g in gateways {
        sum += g.metric(sample).await;
    }
    sum
}

#[tokio::test]
async fn three_gateways_share_one_cap_within_the_stated_overshoot() {
    let Some(redis) = common::redis::start("three_gateways_share_one_cap") else {
        return;
    };
    let cp = ControlPlane::sqlite().await;
    let (_, api, main_token) = plan(&cp, 1.0).await;
    // 2 MB a day, shared by three gateways.
    let (sub_id, token) = sub(&cp, &api, "eu", json!({"maxDailyGB": 0.002})).await;
    let gateways = fleet(&cp, &redis.url, 3, 2.0).await;

    send_round_robin(&gateways, &token, 100, "eu").await; // 3 MB sent
    send_round_robin(&gateways, &main_token, 2, "main").await;
    wait_until(
        "the other account's logs all arrive",
        PROPAGATION,
        || async { forwarded(&gateways, "main") == 3 * 2 * LINES },
    )
    .await;
    let line = line_bytes(&gateways[0]).await;
    let sent = 3.0 * 100.0 * LINES as f64;
    let eu = forwarded(&gateways, "eu") as f64;
    let (cap, request, lease) = (2_000_000.0, LINES as f64 * line, LEASE as f64);
    let overshoot = eu * line - cap;
    // Stated in docs/volume.md: per gateway, what it spends while a refill is on its
    // way (under half a lease) and the request that crossed the cap.
    let bound = 3.0 * (lease / 2.0 + request);
    assert!(
        (0.0..=bound).contains(&overshoot),
        "forwarded {} bytes for a cap of {cap}: overshoot {overshoot} over {bound}",
        eu * line
    );
    let capped = metric_sum(
        &gateways,
        "tollgate_volume_capped_records_total{kind=\"logs\"}",
    )
    .await;
    assert_eq!(
        capped + eu,
        sent,
        "every log past the cap is counted, none lost"
    );
    let detailed = format!("/v1/account-management/time-based-accounts/detailed/{sub_id}");
    wait_until(
        "isCapped on the detailed view",
        Duration::from_secs(5),
        || async { cp.api(Method::GET, &detailed, &api, None).await["isCapped"] == true },
    )
    .await;
    eprintln!(
        "3 gateways, cap {cap} B: forwarded {} B, overshoot {overshoot} B",
        eu * line
    );

    // The UTC day turns everywhere: the account is forwarded again.
    for g in &gateways {
        g.clock.advance(DAY);
    }
    cp.clock().advance(DAY);
    send_round_robin(&gateways, &token, 1, "tomorrow").await;
    wait_until("the new day's logs are forwarded", PROPAGATION, || async {
        forwarded(&gateways, "tomorrow") == 3 * LINES
    })
    .await;
}

#[tokio::test]
async fn a_flexible_account_stops_when_the_pool_is_empty_and_a_fixed_one_keeps_its_volume() {
    let Some(redis) = common::redis::start("flexible_account_pool") else {
        return;
    };
    let cp = ControlPlane::sqlite().await;
    // 2 MB plan: a fixed account takes 1 MB, a flexible one reserves 0.5 MB; the pool
    // (`sharedGB`) is the 0.5 MB left, which the flexible account and the main share.
    let (_, api, main_token) = plan(&cp, 0.002).await;
    let (_, fixed) = sub(&cp, &api, "fixed", json!({"maxDailyGB": 0.001})).await;
    let (flex_id, flexible) = sub(
        &cp,
        &api,
        "flex",
        json!({"isFlexible": true, "reservedDailyGB": 0.0005}),
    )
    .await;
    let read = cp
        .api(
            Method::GET,
            &format!("/v1/account-management/time-based-accounts/{flex_id}"),
            &api,
            None,
        )
        .await;
    assert_eq!(read["sharedGB"], 0.0005);
    let gateways = fleet(&cp, &redis.url, 2, 3.0).await;
    let line = {
        send_round_robin(&gateways, &fixed, 1, "probe").await;
        line_bytes(&gateways[0]).await
    };

    send_round_robin(&gateways, &flexible, 75, "flex").await; // 1.5 MB
    send_round_robin(&gateways, &main_token, 5, "main").await; // 0.1 MB
    send_round_robin(&gateways, &fixed, 45, "fixed").await; // 0.9 MB
    wait_until(
        "the fixed account's logs all arrive",
        PROPAGATION,
        || async { forwarded(&gateways, "fixed") == 2 * 45 * LINES },
    )
    .await;
    let flex = forwarded(&gateways, "flex") as f64 * line;
    let main = forwarded(&gateways, "main") as f64 * line;
    let slack = 2.0 * (LEASE as f64 / 2.0 + LINES as f64 * line);
    assert!(
        (1_000_000.0..=1_000_000.0 + slack).contains(&(flex + main)),
        "the flexible account and the main took its reservation and the pool: {flex} + {main}"
    );
    assert!(flex >= 500_000.0, "its reservation is guaranteed: {flex}");
}

#[tokio::test]
async fn one_utilization_record_per_interval_across_two_gateways() {
    let Some(redis) = common::redis::start("utilization_across_gateways") else {
        return;
    };
    let cp = ControlPlane::sqlite().await;
    let (_, api, _) = plan(&cp, 1.0).await;
    let (_, token) = sub(
        &cp,
        &api,
        "eu",
        json!({"maxDailyGB": 0.5, "utilizationSettings":
            {"utilizationEnabled": true, "frequencyMinutes": 10}}),
    )
    .await;
    let gateways = fleet(&cp, &redis.url, 2, 2.0).await;
    send_round_robin(&gateways, &token, 3, "eu").await;
    let records = || {
        gateways
            .iter()
            .flat_map(|g| g.sink_records("logs"))
            .filter(|r| r["type"] == "logzio_account_utilization")
            .count()
    };
    wait_until("the interval's record", PROPAGATION, || async {
        records() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        records(),
        1,
        "one record for the fleet, not one per gateway"
    );
    for g in &gateways {
        g.clock.advance(Duration::from_secs(600));
    }
    wait_until("the next interval's record", PROPAGATION, || async {
        records() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(records(), 2);
}

#[tokio::test]
async fn redis_killed_under_load_costs_no_5xx_and_loses_nothing_acknowledged() {
    // Append-only with fsync on every write: a killed Redis comes back with its counts.
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let Some(mut redis) = common::redis::start_with("redis_killed_under_load", &args) else {
        return;
    };
    let cp = ControlPlane::sqlite().await;
    let (_, api, _) = plan(&cp, 1.0).await;
    let (sub_id, token) = sub(&cp, &api, "eu", json!({"maxDailyGB": 0.5})).await;
    let gateways = fleet(&cp, &redis.url, 2, 2.0).await;

    send_round_robin(&gateways, &token, 10, "before").await;
    redis.kill();
    send_round_robin(&gateways, &token, 20, "during").await;
    for g in &gateways {
        assert_eq!(
            g.metric("tollgate_volume_bank_up").await,
            0.0,
            "the outage is seen"
        );
    }
    redis.restart();
    send_round_robin(&gateways, &token, 10, "after").await;
    let sent = 2 * 40 * LINES;
    wait_until("every acknowledged log arrives", PROPAGATION, || async {
        forwarded(&gateways, "before")
            + forwarded(&gateways, "during")
            + forwarded(&gateways, "after")
            == sent
    })
    .await;
    // Every gateway reaches Redis again, and the counts catch up: what the gateways spent
    // during the outage reaches it.
    wait_until(
        "every gateway reaches Redis again",
        Duration::from_secs(5),
        || async {
            metric_sum(&gateways, "tollgate_volume_bank_up").await == gateways.len() as f64
        },
    )
    .await;
    let line = line_bytes(&gateways[0]).await;
    let key = |g: u64| format!("tg:{{{g}}}:used:{g}:{}", cp.now_ms() / 86_400_000);
    wait_until(
        "Redis counts every byte sent",
        Duration::from_secs(3),
        || async {
            let used: Option<u64> = redis.command(::redis::cmd("GET").arg(key(sub_id as u64)));
            used.is_some_and(|u| u as f64 >= sent as f64 * line)
        },
    )
    .await;
    for g in &gateways {
        assert!(
            g.metric("tollgate_volume_bank_calls_total{op=\"acquire\",outcome=\"error\"}")
                .await
                >= 1.0
        );
    }
}

#[tokio::test]
async fn during_an_outage_each_gateway_admits_at_most_what_was_left() {
    let Some(mut redis) = common::redis::start("outage_overshoot") else {
        return;
    };
    let cp = ControlPlane::sqlite().await;
    let (_, api, _) = plan(&cp, 1.0).await;
    // 300 kB a day; a third of it sent before Redis goes away.
    let (_, token) = sub(&cp, &api, "eu", json!({"maxDailyGB": 0.0003})).await;
    let gateways = fleet(&cp, &redis.url, 2, 2.0).await;
    send_round_robin(&gateways, &token, 5, "before").await;
    redis.kill();
    send_round_robin(&gateways, &token, 30, "during").await;
    wait_until("the admitted logs arrive", PROPAGATION, || async {
        forwarded(&gateways, "before") == 2 * 5 * LINES
    })
    .await;
    let line = line_bytes(&gateways[0]).await;
    let total = (forwarded(&gateways, "before") + forwarded(&gateways, "during")) as f64 * line;
    // docs/volume.md: during an outage each gateway admits at most what the cap had
    // left at its last grant, so two gateways at most twice the cap, and a request each.
    let bound = 2.0 * 300_000.0 + 2.0 * LINES as f64 * line;
    assert!(
        total <= bound,
        "forwarded {total} bytes during the outage, bound {bound}"
    );
    assert!(
        total >= 300_000.0 * 0.5,
        "the outage refuses nothing by itself: {total}"
    );
    eprintln!("outage, 2 gateways, cap 300000 B: forwarded {total} B (bound {bound} B)");
}

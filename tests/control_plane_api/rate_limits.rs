//! Rate limits (docs/volume.md, "Rate limits"): each plan's default from
//! `[control_plane.rate_limits]`, a main account's own `rateLimit` set by the operator on
//! `/v1/admin/accounts`, and the feed carrying the rate that applies to the main account,
//! each of its sub-accounts and each tied account.

use serde_json::{Value, json};

use crate::common::control::{Backend, ControlPlane};
use crate::{SUBS, account, event, latest_events, main_account, tied_account};

crate::on_both_backends!(
    the_operator_sets_reads_and_clears_a_main_accounts_rate_limit,
    rate_limits_are_refused_naming_the_field_and_only_the_operator_sets_them,
    the_feed_carries_the_rate_of_the_main_its_sub_accounts_and_tied_accounts,
    new_plan_defaults_reach_every_family_when_the_control_plane_restarts,
);

const ADMIN_ACCOUNTS: &str = "/v1/admin/accounts";

/// Pro accounts send 1000 B/s with a 4000 B burst unless their main account says otherwise;
/// community and enterprise are not limited.
async fn with_pro_default(backend: Backend, test: &str) -> Option<ControlPlane> {
    ControlPlane::start_with(backend, test, |c| {
        c.rate_limits.pro = Some(tollgate::config::RateLimit {
            bytes_per_sec: 1000,
            burst_bytes: Some(4000),
        });
    })
    .await
}

async fn read_main(cp: &ControlPlane, id: i64) -> Value {
    cp.get(&format!("{ADMIN_ACCOUNTS}/{id}"))
        .admin()
        .send()
        .await
        .expect_ok("read the main account")
}

async fn put_main(cp: &ControlPlane, id: i64, body: Value) -> Value {
    cp.put(&format!("{ADMIN_ACCOUNTS}/{id}"))
        .admin()
        .json(body)
        .send()
        .await
        .expect_ok("update the main account")
}

fn rate(bytes_per_sec: u64, burst_bytes: u64) -> Value {
    json!({"bytes_per_sec": bytes_per_sec, "burst_bytes": burst_bytes})
}

async fn the_operator_sets_reads_and_clears_a_main_accounts_rate_limit(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = account(
        &cp,
        json!({"accountName": "acme", "plan": "pro", "totalTimeBasedDailyGB": 10,
               "rateLimit": {"bytesPerSecond": 5000, "burstBytes": 20000}}),
    )
    .await;
    assert_eq!(
        read_main(&cp, main.id).await,
        json!({"accountId": main.id, "totalTimeBasedDailyGB": 10.0, "sharedGB": 10.0,
               "rateLimit": {"bytesPerSecond": 5000, "burstBytes": 20000}})
    );
    // Each field is left as it is unless sent: the rate alone, the volume alone, nothing.
    let set = put_main(&cp, main.id, json!({"rateLimit": {"bytesPerSecond": 7000}})).await;
    assert_eq!(
        set["rateLimit"],
        json!({"bytesPerSecond": 7000, "burstBytes": 7000}),
        "the burst defaults to one second of the rate"
    );
    assert_eq!(
        set["totalTimeBasedDailyGB"], 10.0,
        "the volume is unchanged"
    );
    assert_eq!(read_main(&cp, main.id).await, set);
    assert_eq!(
        latest_events(&cp, main.api(), 1).await,
        [event(
            "account.set-rate-limit",
            format!("account:{}", main.id)
        )]
    );
    let set = put_main(&cp, main.id, json!({"totalTimeBasedDailyGB": 12})).await;
    assert_eq!(
        set["rateLimit"]["bytesPerSecond"], 7000,
        "the rate is unchanged"
    );
    assert_eq!(
        put_main(&cp, main.id, json!({})).await,
        set,
        "nothing changes"
    );
    // null clears it: the plan's default (none here) applies again.
    let cleared = put_main(&cp, main.id, json!({"rateLimit": null})).await;
    assert_eq!(cleared["rateLimit"], Value::Null);
    assert_eq!(cleared["totalTimeBasedDailyGB"], 12.0);
    assert_eq!(read_main(&cp, main.id).await["rateLimit"], Value::Null);
    // Without one at creation, there is none.
    let plain = main_account(&cp, "plain", "pro").await;
    assert_eq!(read_main(&cp, plain.id).await["rateLimit"], Value::Null);
    cp.stop().await;
}

async fn rate_limits_are_refused_naming_the_field_and_only_the_operator_sets_them(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let path = format!("{ADMIN_ACCOUNTS}/{}", main.id);
    for (limit, message) in [
        (
            json!({"bytesPerSecond": 0}),
            "rateLimit.bytesPerSecond must be > 0",
        ),
        (json!({"bytesPerSecond": -5}), "rateLimit.bytesPerSecond"),
        (json!({"bytesPerSecond": 1.5}), "rateLimit.bytesPerSecond"),
        (
            json!({"bytesPerSecond": "fast"}),
            "rateLimit.bytesPerSecond",
        ),
        (
            json!({"bytesPerSecond": 4_294_967_296u64}),
            "rateLimit.bytesPerSecond must be at most 4294967295",
        ),
        (
            json!({"bytesPerSecond": 1000, "burstBytes": 999}),
            "rateLimit.burstBytes must be >= the bytes per second",
        ),
        (json!({"burstBytes": 1000}), "bytesPerSecond"),
        (json!({"bytesPerSecond": 1000, "burst": 5000}), "rateLimit"),
        (json!(1000), "rateLimit"),
    ] {
        cp.put(&path)
            .admin()
            .json(json!({"rateLimit": limit}))
            .send()
            .await
            .expect_error(400, "request/INVALID", message);
        cp.post(ADMIN_ACCOUNTS)
            .admin()
            .json(json!({"accountName": "x", "rateLimit": limit}))
            .send()
            .await
            .expect_error(400, "request/INVALID", message);
    }
    assert_eq!(
        read_main(&cp, main.id).await["rateLimit"],
        Value::Null,
        "the refusals changed nothing"
    );
    // A tied account follows its main account's.
    cp.post(ADMIN_ACCOUNTS)
        .admin()
        .json(
            json!({"accountName": "m", "type": "metrics", "ownerAccountId": main.id,
                     "rateLimit": {"bytesPerSecond": 1000}}),
        )
        .send()
        .await
        .expect_error(
            400,
            "request/INVALID",
            "rateLimit belongs to a main log management account",
        );
    let metrics = tied_account(&cp, &main, "metrics", "m").await;
    cp.put(&format!("{ADMIN_ACCOUNTS}/{}", metrics.id))
        .admin()
        .json(json!({"rateLimit": {"bytesPerSecond": 1000}}))
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "main account");
    // The operator only: not the account's own API token, not without credentials.
    cp.put(&path)
        .token(main.api())
        .json(json!({"rateLimit": null}))
        .send()
        .await
        .expect_error(403, "auth/ADMIN_REQUIRED", "operator");
    cp.get(&path).token(main.api()).send().await.expect_error(
        403,
        "auth/ADMIN_REQUIRED",
        "operator",
    );
    cp.put(&path)
        .json(json!({"rateLimit": null}))
        .send()
        .await
        .expect_status(401, "no credentials");
    cp.post(ADMIN_ACCOUNTS)
        .token(main.api())
        .json(json!({"accountName": "x", "rateLimit": {"bytesPerSecond": 1000}}))
        .send()
        .await
        .expect_error(403, "auth/ADMIN_REQUIRED", "operator");
    cp.stop().await;
}

/// The feed's volume policies by account id: each one's `rate`.
async fn feed_rates(cp: &ControlPlane, path: &str) -> (u64, Vec<(i64, Value)>) {
    let (status, body) = cp.feed(path).await;
    assert_eq!(status, 200, "{body}");
    let policies = match body.get("volumes") {
        Some(Value::Array(policies)) => policies.clone(),
        _ => body["volumes"]["policies"].as_array().cloned().unwrap(),
    };
    let mut rates: Vec<(i64, Value)> = policies
        .iter()
        .map(|p| (p["account_id"].as_i64().unwrap(), p["rate"].clone()))
        .collect();
    rates.sort_by_key(|(id, _)| *id);
    (body["version"].as_u64().unwrap(), rates)
}

async fn the_feed_carries_the_rate_of_the_main_its_sub_accounts_and_tied_accounts(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = with_pro_default(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let sub = cp
        .post(SUBS)
        .token(main.api())
        .json(json!({"accountName": "eu", "retentionDays": 7}))
        .send()
        .await
        .expect_ok("create a sub-account")["accountId"]
        .as_i64()
        .unwrap();
    let metrics = tied_account(&cp, &main, "metrics", "acme metrics").await;
    let tracing = tied_account(&cp, &main, "tracing", "acme tracing").await;
    // Community has no default; a community account on a trial has pro's.
    let community = main_account(&cp, "free", "community").await;
    let trial = account(
        &cp,
        json!({"accountName": "trial", "plan": "community",
               "trialEndsAt": crate::now_secs() + 3600}),
    )
    .await;
    // The family's four accounts, each with `rate`.
    let family = |rate: &Value| [main.id, sub, metrics.id, tracing.id].map(|id| (id, rate.clone()));
    let default = rate(1000, 4000);
    let (version, rates) = feed_rates(&cp, "/v1/feed/snapshot?volume=true").await;
    assert_eq!(
        rates,
        [&family(&default)[..], &[(trial.id, default.clone())]].concat(),
        "no policy for {} (community, no default)",
        community.id
    );

    // The main account's own rate reaches the whole family in the next changes; a
    // community account given one gets a policy.
    put_main(
        &cp,
        main.id,
        json!({"rateLimit": {"bytesPerSecond": 50, "burstBytes": 100}}),
    )
    .await;
    put_main(
        &cp,
        community.id,
        json!({"rateLimit": {"bytesPerSecond": 10}}),
    )
    .await;
    let changes = format!("/v1/feed/changes?since={version}&wait=0&volume=true");
    let (status, body) = cp.feed(&changes).await;
    assert_eq!(status, 200, "{body}");
    let mut families: Vec<i64> = body["volumes"]["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_i64().unwrap())
        .collect();
    families.sort_unstable();
    assert_eq!(families, [main.id, community.id]);
    let (_, rates) = feed_rates(&cp, &changes).await;
    assert_eq!(
        rates,
        [&family(&rate(50, 100))[..], &[(community.id, rate(10, 10))]].concat()
    );

    // Cleared: the plan's default again.
    let (version, _) = feed_rates(&cp, "/v1/feed/snapshot?volume=true").await;
    put_main(&cp, main.id, json!({"rateLimit": null})).await;
    let changes = format!("/v1/feed/changes?since={version}&wait=0&volume=true");
    let (_, rates) = feed_rates(&cp, &changes).await;
    assert_eq!(rates, family(&default));
    cp.stop().await;
}

async fn new_plan_defaults_reach_every_family_when_the_control_plane_restarts(
    backend: Backend,
    test: &str,
) {
    let Some(mut cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "enterprise").await;
    let metrics = tied_account(&cp, &main, "metrics", "m").await;
    let (version, rates) = feed_rates(&cp, "/v1/feed/snapshot?volume=true").await;
    assert_eq!(rates, [], "no defaults, no rates");

    cp.restart_with(|c| {
        c.rate_limits.enterprise = Some(tollgate::config::RateLimit {
            bytes_per_sec: 8000,
            burst_bytes: None,
        });
    })
    .await;
    let changes = format!("/v1/feed/changes?since={version}&wait=0&volume=true");
    let (moved, rates) = feed_rates(&cp, &changes).await;
    assert_eq!(
        rates,
        [(main.id, rate(8000, 8000)), (metrics.id, rate(8000, 8000))],
        "a gateway following the feed gets the new defaults without a snapshot"
    );
    // The same defaults again: nothing moves.
    cp.restart_with(|_| {}).await;
    assert_eq!(cp.feed_version().await, moved);
    cp.stop().await;
}

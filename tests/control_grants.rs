//! Read grants in the feed, against the REAL control plane on 127.0.0.1:0, on
//! SQLite and on PostgreSQL: the snapshot carries accounts, API tokens and shared tokens
//! when asked (`?grants=true`), every change to what they grant moves the feed and shows up
//! in `changes`, shared-token uses come back through the usage report; and a gateway's
//! feed follower (`app::start_token_source`, the step `app::run` starts it with) serves
//! them through `Tokens::grants()` within 2 s of the API call, and from its persisted state
//! through a control-plane outage.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tollgate::app;
use tollgate::clock::Clock;
use tollgate::filters::held::HeldFilters;
use tollgate::model::AccountId;
use tollgate::telemetry::Telemetry;
use tollgate::tokens::grants::{FilterOp, GrantError};
use tollgate::tokens::{Digest, Tokens};
use tollgate::volume::gate::Gate;

use common::control::{Backend, ControlPlane, use_control_plane};
use common::eventually;

/// DESIGN §2: a change reaches connected gateways within 2 s.
const PROPAGATION: Duration = Duration::from_secs(2);
const SUBS: &str = "/v1/account-management/time-based-accounts";

on_both_backends!(
    every_grant_change_moves_the_feed,
    a_gateway_follows_grants_within_two_seconds_and_through_an_outage,
);

/// Wall-clock milliseconds: the gateway judges expiry on the real clock.
fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn digest(token: &str) -> String {
    Digest::of(token).to_hex()
}

fn id(value: &Value, field: &str) -> i64 {
    value[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} in {value}"))
}

fn secret(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"))
        .to_string()
}

/// The grants of `GET /v1/feed/changes?since=V&wait=0&grants=true`, and its version.
async fn grant_changes(cp: &ControlPlane, since: u64) -> (Value, u64) {
    let (status, body) = cp
        .feed(&format!(
            "/v1/feed/changes?since={since}&wait=0&grants=true"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let version = body["version"].as_u64().expect("version");
    assert!(version > since, "the change moved the feed: {body}");
    (body["grants"].clone(), version)
}

/// The grants of `GET /v1/feed/snapshot?grants=true`, and its version.
async fn grant_snapshot(cp: &ControlPlane) -> (Value, u64) {
    let (status, body) = cp.feed("/v1/feed/snapshot?grants=true").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body["grants"].clone(), body["version"].as_u64().unwrap())
}

fn account_row(grants: &Value, account: i64) -> Value {
    grants["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["account_id"] == account)
        .unwrap_or_else(|| panic!("account {account} in {grants}"))
        .clone()
}

fn no_deletes() -> Value {
    json!({"accounts": [], "api_tokens": [], "shared_tokens": []})
}

/// Both tests' account: a pro main account with its API token, a metrics account, a
/// sub-account made not searchable, a filter and a shared token using it.
struct Acme {
    main: i64,
    api: String,
    metrics: Value,
    sub: i64,
    filter: Value,
    expires: u64,
    shared_id: i64,
    shared_secret: String,
}

async fn acme(cp: &ControlPlane) -> Acme {
    let acme = cp
        .create_account(json!({"accountName": "acme", "plan": "pro"}))
        .await;
    let (main, api) = (id(&acme, "accountId"), secret(&acme, "apiToken"));
    let metrics = cp
        .create_account(
            json!({"accountName": "acme-metrics", "type": "metrics", "ownerAccountId": main}),
        )
        .await;
    let sub = cp
        .api(
            Method::POST,
            SUBS,
            &api,
            Some(json!({"accountName": "acme-eu", "searchable": false})),
        )
        .await;
    let sub = id(&sub, "accountId");
    let filter = cp
        .api(
            Method::POST,
            "/v1/shared-tokens/filters",
            &api,
            Some(json!({"description": "web", "field": "service", "value": "web"})),
        )
        .await;
    let expires = now_ms() + 3_600_000;
    let shared = cp
        .api(
            Method::POST,
            "/v1/shared-tokens",
            &api,
            Some(json!({"tokenName": "support", "filters": [filter["id"]],
                        "expirationDate": expires})),
        )
        .await;
    let (shared_id, shared_secret) = (id(&shared, "id"), secret(&shared, "token"));
    Acme {
        main,
        api,
        metrics,
        sub,
        filter,
        expires,
        shared_id,
        shared_secret,
    }
}

async fn every_grant_change_moves_the_feed(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let Acme {
        main,
        api,
        metrics,
        sub,
        filter,
        expires,
        shared_id,
        shared_secret,
    } = acme(&cp).await;
    let trial_ends = i64::try_from(now_ms() / 1000).unwrap() + 3600;
    let trial = cp
        .create_account(
            json!({"accountName": "trial", "plan": "community", "trialEndsAt": trial_ends}),
        )
        .await;
    let free = cp
        .create_account(json!({"accountName": "free", "plan": "community"}))
        .await;

    // Without `?grants=true` the snapshot has the shape gateways from before grants know.
    let (_, plain) = cp.feed("/v1/feed/snapshot").await;
    assert!(plain.get("grants").is_none(), "{plain}");

    // The snapshot: every account with its read attributes, digests only.
    let (grants, v0) = grant_snapshot(&cp).await;
    let text = grants.to_string();
    assert!(
        !text.contains(&api) && !text.contains(&shared_secret),
        "digests only"
    );
    assert_eq!(
        account_row(&grants, main),
        json!({"account_id": main, "owner_id": null, "type": "logs", "searchable": false,
               "api_tokens_usable_until_ms": null})
    );
    assert_eq!(
        account_row(&grants, id(&trial, "accountId"))["api_tokens_usable_until_ms"],
        trial_ends * 1000,
        "a trial's API tokens work until it ends"
    );
    assert_eq!(
        account_row(&grants, id(&free, "accountId"))["api_tokens_usable_until_ms"],
        0,
        "a community account's never work"
    );
    assert_eq!(
        account_row(&grants, id(&metrics, "accountId")),
        json!({"account_id": id(&metrics, "accountId"), "owner_id": main, "type": "metrics",
               "searchable": false, "api_tokens_usable_until_ms": null})
    );
    assert_eq!(account_row(&grants, sub)["owner_id"], main);
    assert!(
        grants["api_tokens"]
            .as_array()
            .unwrap()
            .contains(&json!({"digest": digest(&api), "account_id": main}))
    );
    assert_eq!(
        grants["shared_tokens"],
        json!([{"digest": digest(&shared_secret), "token_id": shared_id, "account_id": main,
                "filters": [{"field": "service", "value": "web"}], "operator": "AND",
                "expires_at_ms": expires}])
    );
    // The gateway's own parser takes it (the wire types are shared).
    let (_, snapshot) = cp.feed("/v1/feed/snapshot?grants=true").await;
    let parsed = tollgate::tokens::wire::Snapshot::parse(snapshot.to_string().as_bytes())
        .expect("tollgate's Snapshot type")
        .into_state()
        .expect("valid grants");
    assert!(parsed.1.is_some());

    // 1. `searchable` flipped: that one account row, nothing else.
    cp.api(
        Method::PUT,
        &format!("{SUBS}/{sub}"),
        &api,
        Some(json!({"searchable": true})),
    )
    .await;
    let (changes, v1) = grant_changes(&cp, v0).await;
    assert_eq!(
        changes,
        json!({"upserts": {"accounts": [{"account_id": sub, "owner_id": main, "type": "logs",
                                         "searchable": true, "api_tokens_usable_until_ms": null}],
                           "api_tokens": [], "shared_tokens": []},
               "deletes": no_deletes()})
    );
    // A change that touches no read attribute moves no grant.
    cp.api(
        Method::PUT,
        &format!("{SUBS}/{sub}"),
        &api,
        Some(json!({"accessible": false})),
    )
    .await;
    let (status, quiet) = cp
        .feed(&format!("/v1/feed/changes?since={v1}&wait=0&grants=true"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(quiet["version"], v1, "{quiet}");

    // 2. An API token created, then deleted.
    let created = cp
        .api(
            Method::POST,
            "/v1/api-tokens",
            &api,
            Some(json!({"name": "ci"})),
        )
        .await;
    let (changes, v2) = grant_changes(&cp, v1).await;
    assert_eq!(
        changes["upserts"]["api_tokens"],
        json!([{"digest": digest(&secret(&created, "token")), "account_id": main}])
    );
    cp.api(
        Method::DELETE,
        &format!("/v1/api-tokens/{}", id(&created, "id")),
        &api,
        None,
    )
    .await;
    let (changes, v3) = grant_changes(&cp, v2).await;
    assert_eq!(
        changes,
        json!({"upserts": {"accounts": [], "api_tokens": [], "shared_tokens": []},
               "deletes": {"accounts": [], "api_tokens": [digest(&secret(&created, "token"))],
                           "shared_tokens": []}})
    );

    // 3. A shared token's filters, operator and expiry edited.
    let second = cp
        .api(
            Method::POST,
            "/v1/shared-tokens/filters",
            &api,
            Some(json!({"description": "eu", "field": "region", "value": "eu-1"})),
        )
        .await;
    let later = expires + 3_600_000;
    cp.api(
        Method::PUT,
        &format!("/v1/shared-tokens/{shared_id}"),
        &api,
        Some(
            json!({"filters": [filter["id"], second["id"]], "filtersOperator": "OR",
                    "expirationDate": later}),
        ),
    )
    .await;
    let (changes, v4) = grant_changes(&cp, v3).await;
    assert_eq!(
        changes["upserts"]["shared_tokens"],
        json!([{"digest": digest(&shared_secret), "token_id": shared_id, "account_id": main,
                "filters": [{"field": "service", "value": "web"},
                            {"field": "region", "value": "eu-1"}],
                "operator": "OR", "expires_at_ms": later}])
    );

    // 4. A filter the token uses deleted: the token changes.
    cp.api(
        Method::DELETE,
        &format!("/v1/shared-tokens/filters/{}", filter["id"]),
        &api,
        None,
    )
    .await;
    let (changes, v5) = grant_changes(&cp, v4).await;
    assert_eq!(
        changes["upserts"]["shared_tokens"][0]["filters"],
        json!([{"field": "region", "value": "eu-1"}])
    );

    // 5. Use reported by a gateway moves `lastUsed`, only forward.
    for used in [expires - 10, expires - 20] {
        let reply = cp
            .post("/v1/feed/usage")
            .feed()
            .json(json!({"shared_tokens": [{"token_id": shared_id, "last_used_ms": used}]}))
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
    }
    let read = cp
        .api(
            Method::GET,
            &format!("/v1/shared-tokens/{shared_id}"),
            &api,
            None,
        )
        .await;
    assert_eq!(read["lastUsed"], expires - 10);

    // 6. The shared token deleted: a tombstone.
    cp.api(
        Method::DELETE,
        &format!("/v1/shared-tokens/{shared_id}"),
        &api,
        None,
    )
    .await;
    let (changes, v6) = grant_changes(&cp, v5).await;
    assert_eq!(
        changes["deletes"]["shared_tokens"],
        json!([digest(&shared_secret)])
    );

    // 7. A sub-account deleted: its account row and API tokens go. (Made accessible
    // again first: the main account gives it an API token.)
    cp.api(
        Method::PUT,
        &format!("{SUBS}/{sub}"),
        &api,
        Some(json!({"accessible": true})),
    )
    .await;
    let sub_api = cp
        .api(
            Method::POST,
            "/v1/api-tokens/sub-account",
            &api,
            Some(json!({"name": "sub's", "accountId": sub})),
        )
        .await;
    let (_, v7) = grant_changes(&cp, v6).await;
    cp.api(Method::DELETE, &format!("{SUBS}/{sub}"), &api, None)
        .await;
    let (changes, _) = grant_changes(&cp, v7).await;
    assert_eq!(
        changes["deletes"],
        json!({"accounts": [sub], "api_tokens": [digest(&secret(&sub_api, "token"))],
               "shared_tokens": []})
    );

    // 8. A trial's end needs no feed change: gateways hold the instant, and agree with the
    // control plane's own check once it passes.
    let trial_api = secret(&trial, "apiToken");
    cp.get("/v2/whoami")
        .token(&trial_api)
        .send()
        .await
        .expect_ok("during the trial");
    let before = cp.feed_version().await;
    cp.advance_clock_past(trial_ends * 1000);
    cp.get("/v2/whoami")
        .token(&trial_api)
        .send()
        .await
        .expect_error(403, "api-tokens/TRIAL_ENDED", "trial has ended");
    assert_eq!(cp.feed_version().await, before);
    let (grants, _) = grant_snapshot(&cp).await;
    let grants = tollgate::tokens::grants::ReadGrants::from_wire(
        1,
        serde_json::from_value(grants).expect("grants"),
    )
    .expect("valid");
    let end_ms = u64::try_from(trial_ends * 1000).unwrap();
    assert!(grants.api_token(&trial_api, end_ms - 1).is_ok());
    assert_eq!(
        grants.api_token(&trial_api, end_ms),
        Err(GrantError::NotUsable)
    );

    // A bad `grants` parameter is refused like the other parameters.
    let (status, body) = cp
        .feed("/v1/feed/changes?since=0&wait=0&grants=maybe")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = cp.feed("/v1/feed/snapshot?grants=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A gateway's token source, the one `app::run` starts for `tokens.source = "control_plane"`.
struct Follower {
    tokens: Arc<Tokens>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Follower {
    async fn start(url: &str, state_dir: &Path) -> Follower {
        let mut config = common::test_config(state_dir);
        use_control_plane(&mut config, url);
        let stop = CancellationToken::new();
        let telemetry = Telemetry::new();
        let gate = Gate::new(
            config.volume.lease_bytes,
            config.volume.over_cap,
            Clock::system(),
            telemetry.volume(),
        );
        let source = app::start_token_source(
            &config.tokens,
            &telemetry,
            Arc::new(gate),
            Arc::new(HeldFilters::new(Clock::system())),
            stop.clone(),
            stop.clone(),
        )
        .await
        .expect("the token source starts");
        Follower {
            tokens: source.tokens,
            stop,
            tasks: std::iter::once(source.follower)
                .chain(source.usage)
                .collect(),
        }
    }

    /// Stops it the way shutdown does (the state is persisted once more).
    async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("stops within 30 s")
                .expect("no panic");
        }
    }

    fn reach(&self, api: &str) -> Result<Vec<u64>, GrantError> {
        self.tokens
            .grants()
            .api_token(api, now_ms())
            .map(|r| r.accounts.iter().map(|a| a.0).collect())
    }
}

/// Waits until `check` holds on the follower's grants; asserts it took at most 2 s.
async fn within_propagation(what: &str, check: impl Fn() -> bool) {
    let took = eventually(PROPAGATION, || {
        let held = check();
        async move { held }
    })
    .await;
    eprintln!("{what}: seen after {took:?}");
}

async fn a_gateway_follows_grants_within_two_seconds_and_through_an_outage(
    backend: Backend,
    test: &str,
) {
    let Some(mut cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let Acme {
        main,
        api,
        metrics,
        sub,
        filter,
        expires,
        shared_id,
        shared_secret,
    } = acme(&cp).await;
    let metrics = id(&metrics, "accountId");
    let to_u64 = |id: i64| u64::try_from(id).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let gateway = Follower::start(&cp.url(), dir.path()).await;
    within_propagation("snapshot", || gateway.reach(&api).is_ok()).await;
    let changed = gateway.tokens.grants_changed();
    assert_eq!(
        gateway.reach(&api).unwrap(),
        sorted(&[main, metrics]),
        "the main account and its tied metrics account; the sub-account is not searchable"
    );
    let grant = gateway
        .tokens
        .grants()
        .shared_token(&shared_secret, now_ms())
        .unwrap();
    assert_eq!(
        (grant.token_id, grant.account, grant.op, grant.expires_at_ms),
        (
            to_u64(shared_id),
            AccountId(to_u64(main)),
            FilterOp::And,
            Some(expires)
        )
    );
    assert_eq!(grant.filters, [("service".to_string(), "web".to_string())]);
    assert_eq!(
        gateway
            .tokens
            .grants()
            .shared_token(&shared_secret, expires),
        Err(GrantError::Expired)
    );

    // `searchable` flipped: the sub-account joins the reach within 2 s.
    cp.api(
        Method::PUT,
        &format!("{SUBS}/{sub}"),
        &api,
        Some(json!({"searchable": true})),
    )
    .await;
    within_propagation("searchable on", || {
        gateway.reach(&api).is_ok_and(|r| r.contains(&to_u64(sub)))
    })
    .await;
    assert!(
        changed.has_changed().unwrap(),
        "installing grants wakes tails"
    );

    // An API token created, then deleted.
    let ci = cp
        .api(
            Method::POST,
            "/v1/api-tokens",
            &api,
            Some(json!({"name": "ci"})),
        )
        .await;
    let ci_secret = secret(&ci, "token");
    within_propagation("API token created", || gateway.reach(&ci_secret).is_ok()).await;
    cp.api(
        Method::DELETE,
        &format!("/v1/api-tokens/{}", id(&ci, "id")),
        &api,
        None,
    )
    .await;
    within_propagation("API token deleted", || {
        gateway.reach(&ci_secret) == Err(GrantError::Unknown)
    })
    .await;

    // The shared token's filters edited, then its filter deleted.
    let region = cp
        .api(
            Method::POST,
            "/v1/shared-tokens/filters",
            &api,
            Some(json!({"description": "eu", "field": "region", "value": "eu-1"})),
        )
        .await;
    cp.api(
        Method::PUT,
        &format!("/v1/shared-tokens/{shared_id}"),
        &api,
        Some(json!({"filters": [filter["id"], region["id"]], "filtersOperator": "OR"})),
    )
    .await;
    let shared_grant = || {
        gateway
            .tokens
            .grants()
            .shared_token(&shared_secret, now_ms())
    };
    within_propagation("filters edited", || {
        shared_grant().is_ok_and(|g| g.op == FilterOp::Or && g.filters.len() == 2)
    })
    .await;
    cp.api(
        Method::DELETE,
        &format!("/v1/shared-tokens/filters/{}", filter["id"]),
        &api,
        None,
    )
    .await;
    within_propagation("filter deleted", || {
        shared_grant().is_ok_and(|g| g.filters == [("region".into(), "eu-1".into())])
    })
    .await;

    // A use moves the shared token's `lastUsed` on the control plane.
    let used_from = i64::try_from(now_ms()).unwrap();
    gateway.tokens.record_shared_use(to_u64(shared_id));
    eventually(Duration::from_secs(5), || async {
        let read = cp
            .api(
                Method::GET,
                &format!("/v1/shared-tokens/{shared_id}"),
                &api,
                None,
            )
            .await;
        read["lastUsed"].as_i64().is_some_and(|t| t >= used_from)
    })
    .await;

    // Outage: the gateway restarts while the control plane is down and serves the grants
    // it persisted (fail-static).
    let other = cp
        .api(
            Method::POST,
            "/v1/api-tokens",
            &api,
            Some(json!({"name": "other"})),
        )
        .await;
    let other_secret = secret(&other, "token");
    within_propagation("second API token", || gateway.reach(&other_secret).is_ok()).await;
    gateway.stop().await;
    cp.go_down().await;
    let gateway = Follower::start(&cp.url(), dir.path()).await;
    assert_eq!(
        gateway.reach(&api).unwrap(),
        sorted(&[main, sub, metrics]),
        "served from the persisted state with the control plane down"
    );
    assert!(gateway.reach(&other_secret).is_ok());
    assert_eq!(gateway.reach(&ci_secret), Err(GrantError::Unknown));
    assert_eq!(
        shared_grant_of(&gateway, &shared_secret).filters,
        [("region".to_string(), "eu-1".to_string())]
    );

    // The control plane comes back: changes made meanwhile arrive.
    cp.restart().await;
    cp.api(
        Method::DELETE,
        &format!("/v1/shared-tokens/{shared_id}"),
        &api,
        None,
    )
    .await;
    cp.api(
        Method::PUT,
        &format!("{SUBS}/{sub}"),
        &api,
        Some(json!({"searchable": false})),
    )
    .await;
    eventually(Duration::from_secs(10), || {
        let gone = gateway
            .tokens
            .grants()
            .shared_token(&shared_secret, now_ms())
            == Err(GrantError::Unknown);
        let narrowed = gateway.reach(&api) == Ok(sorted(&[main, metrics]));
        async move { gone && narrowed }
    })
    .await;
    gateway.stop().await;
    cp.stop().await;
}

/// Account ids as a reach lists them: sorted.
fn sorted(ids: &[i64]) -> Vec<u64> {
    let mut ids: Vec<u64> = ids.iter().map(|id| u64::try_from(*id).unwrap()).collect();
    ids.sort_unstable();
    ids
}

fn shared_grant_of(gateway: &Follower, secret: &str) -> tollgate::tokens::grants::SharedGrant {
    gateway
        .tokens
        .grants()
        .shared_token(secret, now_ms())
        .expect("a shared grant")
}

//! Main accounts and the accounts tied to them: a trial's plan over time, and metrics,
//! tracing and security accounts managed through their main account and following its plan.

use serde_json::json;

use crate::common::control::{Backend, ControlPlane};
use crate::{Account, LOGS, METRICS, TRACES, account, main_account, now_secs, tied_account};

crate::on_both_backends!(
    trial_has_pro_until_it_ends,
    tied_accounts_need_an_owner_and_only_security_ones_have_api_tokens,
    the_main_accounts_api_token_manages_its_tied_accounts,
    each_account_holds_shipping_tokens_of_its_own_kind,
    a_security_account_is_reached_from_its_main_account_but_not_the_other_way,
    tied_accounts_follow_their_main_accounts_plan,
);

async fn trial_has_pro_until_it_ends(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let ends = now_secs() + 3;
    let trial = account(
        &cp,
        json!({"accountName": "trial", "plan": "community", "trialEndsAt": ends}),
    )
    .await;
    // During the trial: pro's limits and API tokens.
    let limits = cp
        .get(&format!("{LOGS}/limits"))
        .token(trial.api())
        .send()
        .await
        .expect_ok("limits during trial");
    assert_eq!(limits["maxAllowedTokens"], 15);
    cp.post(LOGS)
        .token(trial.api())
        .json(json!({"name": "second"}))
        .send()
        .await
        .expect_ok("a second enabled token during the trial");
    let second_api = cp
        .post("/v1/api-tokens")
        .token(trial.api())
        .json(json!({"name": "ci"}))
        .send()
        .await
        .expect_ok("API token during the trial");

    cp.advance_clock_past(ends * 1000);

    // After it: every API token of the account is refused, naming the reason.
    for token in [trial.api(), second_api["token"].as_str().unwrap()] {
        cp.get("/v2/whoami").token(token).send().await.expect_error(
            403,
            "api-tokens/TRIAL_ENDED",
            "trial has ended",
        );
    }
    // Community again: limit 1 (the two enabled stay, a third is refused), no API tokens.
    let limits = cp
        .get(&format!("{LOGS}/limits"))
        .admin()
        .account(trial.id)
        .send()
        .await
        .expect_ok("limits after trial");
    assert_eq!(
        limits,
        json!({"maxAllowedTokens": 1, "numOfEnabledTokens": 2})
    );
    cp.post(LOGS)
        .admin()
        .account(trial.id)
        .json(json!({"name": "third"}))
        .send()
        .await
        .expect_error(409, "tokens/ENABLED_LIMIT", "community plan allows 1");
    cp.post("/v1/api-tokens")
        .admin()
        .account(trial.id)
        .json(json!({"name": "late"}))
        .send()
        .await
        .expect_error(409, "api-tokens/PLAN", "pro and enterprise");
    cp.stop().await;
}

/// A pro main account with a tied metrics, tracing and security account.
struct Tied {
    main: Account,
    metrics: Account,
    tracing: Account,
    security: Account,
}

async fn tied(cp: &ControlPlane) -> Tied {
    let main = main_account(cp, "acme", "pro").await;
    Tied {
        metrics: tied_account(cp, &main, "metrics", "acme-metrics").await,
        tracing: tied_account(cp, &main, "tracing", "acme-tracing").await,
        security: tied_account(cp, &main, "security", "acme-security").await,
        main,
    }
}

async fn tied_accounts_need_an_owner_and_only_security_ones_have_api_tokens(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    cp.post("/v1/admin/accounts")
        .admin()
        .json(json!({"accountName": "m", "type": "metrics"}))
        .send()
        .await
        .expect_error(400, "accounts/OWNER_REQUIRED", "ownerAccountId is required");
    let Tied {
        main,
        metrics,
        tracing,
        security,
    } = tied(&cp).await;
    // Metrics and tracing accounts have no API tokens; security accounts have their own.
    assert!(metrics.api_token.is_none());
    assert!(tracing.api_token.is_none());
    assert!(security.api_token.is_some());
    cp.post("/v1/api-tokens")
        .token(main.api())
        .account(metrics.id)
        .json(json!({"name": "x"}))
        .send()
        .await
        .expect_error(
            409,
            "api-tokens/ACCOUNT_TYPE",
            "metrics accounts have no API tokens",
        );
    cp.stop().await;
}

async fn the_main_accounts_api_token_manages_its_tied_accounts(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let Tied {
        main,
        metrics,
        tracing,
        ..
    } = tied(&cp).await;
    // By X-Account-Id.
    let who = cp
        .get("/v2/whoami")
        .token(main.api())
        .account(metrics.id)
        .send()
        .await
        .expect_ok("whoami as metrics");
    assert_eq!(who["accountId"], metrics.id);
    let page = cp
        .post(&format!("{METRICS}/search"))
        .token(main.api())
        .account(metrics.id)
        .json(json!({}))
        .send()
        .await
        .expect_ok("metrics tokens");
    assert_eq!(page["results"][0]["token"], metrics.shipping_token.as_str());
    cp.post(METRICS)
        .token(main.api())
        .account(metrics.id)
        .json(json!({"name": "second metrics"}))
        .send()
        .await
        .expect_ok("a second metrics token on a pro main account");
    cp.post(TRACES)
        .token(main.api())
        .account(tracing.id)
        .json(json!({"name": "second traces"}))
        .send()
        .await
        .expect_ok("tracing token");
    cp.stop().await;
}

async fn each_account_holds_shipping_tokens_of_its_own_kind(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let Tied { main, metrics, .. } = tied(&cp).await;
    cp.post(LOGS)
        .token(main.api())
        .account(metrics.id)
        .json(json!({"name": "wrong"}))
        .send()
        .await
        .expect_error(409, "tokens/ACCOUNT_TYPE", "metrics account");
    cp.post(METRICS)
        .token(main.api())
        .json(json!({"name": "wrong"}))
        .send()
        .await
        .expect_error(409, "tokens/ACCOUNT_TYPE", "logs account");
    cp.stop().await;
}

/// A security account holds log shipping tokens, managed with its own API token too.
async fn a_security_account_is_reached_from_its_main_account_but_not_the_other_way(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let Tied { main, security, .. } = tied(&cp).await;
    cp.post(LOGS)
        .token(security.api())
        .json(json!({"name": "siem"}))
        .send()
        .await
        .expect_ok("security account's own token");
    cp.get("/v2/whoami")
        .token(main.api())
        .account(security.id)
        .send()
        .await
        .expect_ok("main reaches its security account");
    cp.get("/v2/whoami")
        .token(security.api())
        .account(main.id)
        .send()
        .await
        .expect_error(403, "auth/FORBIDDEN", "does not reach");
    cp.stop().await;
}

/// A community main account's metrics account has the community plan's one token.
async fn tied_accounts_follow_their_main_accounts_plan(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let small = main_account(&cp, "small", "community").await;
    let small_metrics = tied_account(&cp, &small, "metrics", "small-metrics").await;
    let limits = cp
        .get(&format!("{METRICS}/limits"))
        .admin()
        .account(small_metrics.id)
        .send()
        .await
        .expect_ok("limits");
    assert_eq!(
        limits,
        json!({"maxAllowedTokens": 1, "numOfEnabledTokens": 1})
    );
    cp.post(METRICS)
        .admin()
        .account(small_metrics.id)
        .json(json!({"name": "second"}))
        .send()
        .await
        .expect_error(409, "tokens/ENABLED_LIMIT", "community plan allows 1");
    cp.stop().await;
}

//! A main account's daily volume (docs/volume.md): the operator sets it; fixed and
//! reserved volumes of its sub-accounts must fit in it; flexible sub-accounts read back
//! the plan volume and the shared pool left; refusals name the field.

use serde_json::{Value, json};

use crate::common::control::{Backend, ControlPlane};
use crate::{Account, SUBS, account, event, latest_events, main_account, read_sub, tied_account};

crate::on_both_backends!(
    the_operator_sets_and_reads_a_main_accounts_volume,
    fixed_and_reserved_volumes_must_fit_the_plan,
    flexible_sub_accounts_read_back_the_plan_and_the_pool,
    volumes_are_refused_where_they_do_not_belong,
    utilization_intervals_are_the_ones_logzio_offers,
    the_detailed_view_serves_the_soft_limit_under_both_keys,
);

const ADMIN_ACCOUNTS: &str = "/v1/admin/accounts";

/// A pro main account with a 100 GB daily volume.
async fn acme_100(cp: &ControlPlane) -> Account {
    account(
        cp,
        json!({"accountName": "acme", "plan": "pro", "totalTimeBasedDailyGB": 100}),
    )
    .await
}

async fn volume_of(cp: &ControlPlane, id: i64) -> Value {
    cp.get(&format!("{ADMIN_ACCOUNTS}/{id}"))
        .admin()
        .send()
        .await
        .expect_ok("read the main account's volume")
}

async fn create_sub(cp: &ControlPlane, main: &Account, name: &str, volume: Value) -> i64 {
    let mut body = json!({"accountName": name, "retentionDays": 7});
    body.as_object_mut()
        .unwrap()
        .extend(volume.as_object().unwrap().clone());
    let created = cp
        .post(SUBS)
        .token(main.api())
        .json(body)
        .send()
        .await
        .expect_ok(name);
    created["accountId"].as_i64().unwrap()
}

async fn the_operator_sets_and_reads_a_main_accounts_volume(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = acme_100(&cp).await;
    let read = volume_of(&cp, main.id).await;
    assert_eq!(
        read,
        json!({"accountId": main.id, "totalTimeBasedDailyGB": 100.0, "sharedGB": 100.0,
               "rateLimit": null})
    );
    let set = cp
        .put(&format!("{ADMIN_ACCOUNTS}/{}", main.id))
        .admin()
        .json(json!({"totalTimeBasedDailyGB": 250.5}))
        .send()
        .await
        .expect_ok("set the volume");
    assert_eq!(set["totalTimeBasedDailyGB"], 250.5);
    assert_eq!(volume_of(&cp, main.id).await, set);
    assert_eq!(
        latest_events(&cp, main.api(), 1).await,
        [event("account.set-volume", format!("account:{}", main.id))]
    );
    // null clears it: nothing is limited by a volume any more.
    let cleared = cp
        .put(&format!("{ADMIN_ACCOUNTS}/{}", main.id))
        .admin()
        .json(json!({"totalTimeBasedDailyGB": null}))
        .send()
        .await
        .expect_ok("clear the volume");
    assert_eq!(cleared["totalTimeBasedDailyGB"], Value::Null);
    assert_eq!(cleared["sharedGB"], Value::Null);
    // The operator only; an account's own API token may not set its plan.
    cp.put(&format!("{ADMIN_ACCOUNTS}/{}", main.id))
        .token(main.api())
        .json(json!({"totalTimeBasedDailyGB": 1000}))
        .send()
        .await
        .expect_error(403, "auth/ADMIN_REQUIRED", "operator");
    cp.get(&format!("{ADMIN_ACCOUNTS}/999999"))
        .admin()
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "main account");
    cp.stop().await;
}

async fn fixed_and_reserved_volumes_must_fit_the_plan(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = acme_100(&cp).await;
    let fixed = create_sub(&cp, &main, "fixed", json!({"maxDailyGB": 60})).await;
    let flexible = create_sub(
        &cp,
        &main,
        "flexible",
        json!({"isFlexible": true, "reservedDailyGB": 40, "maxDailyGB": 70}),
    )
    .await;
    assert_eq!(volume_of(&cp, main.id).await["sharedGB"], 0.0);
    // A third account reserving anything does not fit; one reserving nothing does.
    cp.post(SUBS)
        .token(main.api())
        .json(json!({"accountName": "more", "retentionDays": 7,
                     "isFlexible": true, "reservedDailyGB": 0.5}))
        .send()
        .await
        .expect_error(400, "volume/OVER_PLAN", "reservedDailyGB: the sub-accounts' fixed and reserved volumes would take 100.5 GB of the main account's 100 GB a day");
    create_sub(&cp, &main, "pool only", json!({"isFlexible": true})).await;
    // Raising a fixed volume is refused naming maxDailyGB, and changes nothing.
    cp.put(&format!("{SUBS}/{fixed}"))
        .token(main.api())
        .json(json!({"accountName": "fixed", "maxDailyGB": 61}))
        .send()
        .await
        .expect_error(400, "volume/OVER_PLAN", "maxDailyGB:");
    let read = read_sub(&cp, &main, fixed, "read the fixed account").await;
    assert_eq!(read["maxDailyGB"], 60.0);
    // Lowering one frees volume for another (Logz.io's way of moving volume).
    cp.put(&format!("{SUBS}/{fixed}"))
        .token(main.api())
        .json(json!({"accountName": "fixed", "maxDailyGB": 50}))
        .send()
        .await
        .expect_status(204, "lower the fixed volume");
    cp.put(&format!("{SUBS}/{flexible}"))
        .token(main.api())
        .json(json!({"accountName": "flexible", "reservedDailyGB": 50}))
        .send()
        .await
        .expect_status(204, "raise the reserved volume into what was freed");
    // The plan cannot shrink below what is allocated; deleting an account gives its
    // volume back.
    cp.put(&format!("{ADMIN_ACCOUNTS}/{}", main.id))
        .admin()
        .json(json!({"totalTimeBasedDailyGB": 99}))
        .send()
        .await
        .expect_error(400, "volume/OVER_PLAN", "totalTimeBasedDailyGB:");
    cp.delete(&format!("{SUBS}/{fixed}"))
        .token(main.api())
        .send()
        .await
        .expect_status(204, "delete the fixed account");
    assert_eq!(volume_of(&cp, main.id).await["sharedGB"], 50.0);
    cp.stop().await;
}

async fn flexible_sub_accounts_read_back_the_plan_and_the_pool(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = acme_100(&cp).await;
    let fixed = create_sub(&cp, &main, "fixed", json!({"maxDailyGB": 30})).await;
    let flexible = create_sub(
        &cp,
        &main,
        "flexible",
        json!({"isFlexible": true, "reservedDailyGB": 20, "maxDailyGB": 50}),
    )
    .await;
    let list = cp
        .get(SUBS)
        .token(main.api())
        .send()
        .await
        .expect_ok("list");
    let by_id = |id: i64| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["accountId"] == id)
            .cloned()
            .unwrap()
    };
    // The worked example of docs/volume.md: 100 - 30 - 20 = 50 GB to share.
    assert_eq!(by_id(flexible)["sharedGB"], 50.0);
    assert_eq!(by_id(flexible)["totalTimeBasedDailyGB"], 100.0);
    // A fixed account's are null, as Logz.io serves them.
    assert_eq!(by_id(fixed)["sharedGB"], Value::Null);
    assert_eq!(by_id(fixed)["totalTimeBasedDailyGB"], Value::Null);
    // Without a plan volume there is no pool to show.
    let bare = main_account(&cp, "bare", "pro").await;
    let sub = create_sub(
        &cp,
        &bare,
        "flex",
        json!({"isFlexible": true, "reservedDailyGB": 5}),
    )
    .await;
    let read = read_sub(&cp, &bare, sub, "read").await;
    assert_eq!(read["sharedGB"], Value::Null);
    assert_eq!(read["totalTimeBasedDailyGB"], Value::Null);
    cp.stop().await;
}

async fn volumes_are_refused_where_they_do_not_belong(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = acme_100(&cp).await;
    cp.post(ADMIN_ACCOUNTS)
        .admin()
        .json(
            json!({"accountName": "m", "type": "metrics", "ownerAccountId": main.id,
                     "totalTimeBasedDailyGB": 5}),
        )
        .send()
        .await
        .expect_error(
            400,
            "request/INVALID",
            "totalTimeBasedDailyGB belongs to a main log management account",
        );
    for bad in [json!(-1), json!("lots")] {
        cp.post(ADMIN_ACCOUNTS)
            .admin()
            .json(json!({"accountName": "x", "totalTimeBasedDailyGB": bad}))
            .send()
            .await
            .expect_error(400, "request/INVALID", "totalTimeBasedDailyGB");
    }
    cp.put(&format!("{ADMIN_ACCOUNTS}/{}", main.id))
        .admin()
        .json(json!({"totalTimeBasedDailyGB": -0.5}))
        .send()
        .await
        .expect_error(
            400,
            "request/INVALID",
            "totalTimeBasedDailyGB must be a number >= 0",
        );
    // Only main log accounts have a volume to read or set.
    let metrics = tied_account(&cp, &main, "metrics", "m").await;
    cp.get(&format!("{ADMIN_ACCOUNTS}/{}", metrics.id))
        .admin()
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "main account");
    let sub = create_sub(&cp, &main, "sub", json!({"maxDailyGB": 1})).await;
    cp.put(&format!("{ADMIN_ACCOUNTS}/{sub}"))
        .admin()
        .json(json!({"totalTimeBasedDailyGB": 1}))
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "main account");
    cp.stop().await;
}

async fn utilization_intervals_are_the_ones_logzio_offers(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = acme_100(&cp).await;
    // As Logz.io's Go client sends an unset interval: 0, utilization off.
    let sub = create_sub(
        &cp,
        &main,
        "quiet",
        json!({"utilizationSettings": {"frequencyMinutes": 0, "utilizationEnabled": "false"}}),
    )
    .await;
    for minutes in [10, 30, 60] {
        let updated = cp
            .put(&format!("{SUBS}/{sub}"))
            .token(main.api())
            .json(json!({"accountName": "quiet",
                         "utilizationSettings": {"frequencyMinutes": minutes, "utilizationEnabled": true}}))
            .send()
            .await;
        updated.expect_status(204, "an interval Logz.io offers");
    }
    for bad in [
        json!({"frequencyMinutes": 5, "utilizationEnabled": true}),
        json!({"frequencyMinutes": 0, "utilizationEnabled": true}),
        json!({"frequencyMinutes": 15, "utilizationEnabled": false}),
    ] {
        cp.put(&format!("{SUBS}/{sub}"))
            .token(main.api())
            .json(json!({"accountName": "quiet", "utilizationSettings": bad}))
            .send()
            .await
            .expect_error(
                400,
                "request/INVALID",
                "frequencyMinutes must be 10, 30 or 60",
            );
    }
    let read = read_sub(&cp, &main, sub, "read").await;
    assert_eq!(
        read["utilizationSettings"]["frequencyMinutes"], 60,
        "the refusals changed nothing"
    );
    cp.stop().await;
}

async fn the_detailed_view_serves_the_soft_limit_under_both_keys(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = acme_100(&cp).await;
    let sub = create_sub(
        &cp,
        &main,
        "soft",
        json!({"maxDailyGB": 10, "softLimitGB": 8}),
    )
    .await;
    let detailed = cp
        .get(&format!("{SUBS}/detailed/{sub}"))
        .token(main.api())
        .send()
        .await
        .expect_ok("detailed view");
    assert_eq!(detailed["softLimitGB"], 8.0);
    assert_eq!(
        detailed["softLimit"], 8.0,
        "the key Logz.io's Go client reads"
    );
    cp.stop().await;
}

//! The `email` of a sub-account or a metrics account names its admin, and Logz.io takes
//! only an admin user of the main account there: checked on create and on an update that
//! changes the address. Every other address gets the same refusal (400
//! `accounts/EMAIL_NOT_ADMIN`, naming `email`), whoever it belongs to, and changes nothing.

use serde_json::{Value, json};

use crate::common::control::{Backend, ControlPlane};
use crate::{Account, SUBS, main_account, read_sub};

crate::on_both_backends!(
    a_new_accounts_email_must_be_an_active_admin_of_the_main_account,
    an_update_is_checked_only_when_it_changes_the_email,
);

const METRICS_ACCOUNTS: &str = "/v1/account-management/metrics-accounts";
const ADMIN: &str = "USER_ROLE_ACCOUNT_ADMIN";

/// Each resource whose `email` names an admin, with a create body it completes.
fn resources() -> [(&'static str, Value); 2] {
    [
        (SUBS, json!({"accountName": "acme-eu", "retentionDays": 7})),
        (
            METRICS_ACCOUNTS,
            json!({"accountName": "acme-prom", "planUts": 100}),
        ),
    ]
}

fn with_email(body: &Value, email: &str) -> Value {
    let mut body = body.clone();
    body["email"] = json!(email);
    body
}

fn not_admin(email: &str) -> String {
    format!("email: {email} is not an active admin user of the main account")
}

/// "acme" with two active admins (ops, ann), a suspended one (sid), a user and a
/// read-only user; and "globex" with its own admin. Answers "acme" and ann's user id.
async fn acme_and_its_users(cp: &ControlPlane) -> (Account, i64) {
    let acme = main_account(cp, "acme", "pro").await;
    let globex = main_account(cp, "globex", "pro").await;
    for (email, role) in [
        ("ops@acme.test", ADMIN),
        ("uma@acme.test", "USER_ROLE_REGULAR"),
        ("rob@acme.test", "USER_ROLE_READONLY"),
    ] {
        cp.create_user(acme.id, email, role).await;
    }
    let (ann, _) = cp.create_user(acme.id, "ann@acme.test", ADMIN).await;
    let (sid, _) = cp.create_user(acme.id, "sid@acme.test", ADMIN).await;
    suspend(cp, &acme, sid).await;
    cp.create_user(globex.id, "boss@globex.test", ADMIN).await;
    (acme, ann)
}

async fn suspend(cp: &ControlPlane, main: &Account, user: i64) {
    cp.post(&format!("/v1/user-management/suspend/{user}"))
        .token(main.api())
        .send()
        .await
        .expect_ok("suspend");
}

/// The accounts `main` has under `path`, as its list answers them.
async fn list(cp: &ControlPlane, main: &Account, path: &str) -> Vec<Value> {
    let list = cp
        .get(path)
        .token(main.api())
        .send()
        .await
        .expect_ok("list");
    list.as_array().expect("a list").clone()
}

async fn a_new_accounts_email_must_be_an_active_admin_of_the_main_account(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (acme, _) = acme_and_its_users(&cp).await;
    // An admin of one of acme's sub-accounts is not an admin of the main account.
    let sub = cp
        .post(SUBS)
        .token(acme.api())
        .json(json!({"accountName": "acme-us", "email": "ops@acme.test"}))
        .send()
        .await
        .expect_ok("a sub-account with the main account's admin")["accountId"]
        .as_i64()
        .unwrap();
    cp.create_user(sub, "lee@acme.test", ADMIN).await;
    let subs_before = list(&cp, &acme, SUBS).await.len();
    for (path, body) in resources() {
        for email in [
            "nobody@acme.test",
            "uma@acme.test",
            "rob@acme.test",
            "sid@acme.test",
            "boss@globex.test",
            "lee@acme.test",
        ] {
            cp.post(path)
                .token(acme.api())
                .json(with_email(&body, email))
                .send()
                .await
                .expect_error(400, "accounts/EMAIL_NOT_ADMIN", &not_admin(email));
        }
        // Through the operator's secret too: the rule is the account's, not the caller's.
        cp.post(path)
            .admin()
            .account(acme.id)
            .json(with_email(&body, "uma@acme.test"))
            .send()
            .await
            .expect_error(400, "accounts/EMAIL_NOT_ADMIN", "email:");
    }
    assert_eq!(
        list(&cp, &acme, SUBS).await.len(),
        subs_before,
        "none was made"
    );
    assert_eq!(
        list(&cp, &acme, METRICS_ACCOUNTS).await.len(),
        0,
        "none was made"
    );
    // An active admin is taken, as users' emails are compared, case aside; the account
    // keeps the address as given.
    for (path, body) in resources() {
        cp.post(path)
            .token(acme.api())
            .json(with_email(&body, "Ann@ACME.test"))
            .send()
            .await
            .expect_ok("an active admin of the main account");
    }
    let subs = list(&cp, &acme, SUBS).await;
    assert!(
        subs.iter()
            .any(|s| s["accountName"] == "acme-eu" && s["email"] == "Ann@ACME.test"),
        "{subs:?}"
    );
    assert_eq!(list(&cp, &acme, METRICS_ACCOUNTS).await.len(), 1);
    cp.stop().await;
}

/// An update that changes the email is checked as a create is; one that keeps it (left
/// out, sent again as Logz.io's Terraform provider does, or in another case) goes through
/// even when that user is an admin no longer, so an account made before keeps working.
async fn an_update_is_checked_only_when_it_changes_the_email(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (acme, ann) = acme_and_its_users(&cp).await;
    let mut items = Vec::new();
    for (path, body) in resources() {
        let created = cp
            .post(path)
            .token(acme.api())
            .json(with_email(&body, "ops@acme.test"))
            .send()
            .await
            .expect_ok("create");
        let id = created["accountId"]
            .as_i64()
            .or(created["Id"].as_i64())
            .unwrap();
        // A sub-account's update answers 204, a metrics account's 200 with the account.
        let done = if path == SUBS { 204 } else { 200 };
        let item = format!("{path}/{id}");
        let put = |body: Value| cp.put(&item).token(acme.api()).json(body).send();
        for email in ["uma@acme.test", "sid@acme.test", "boss@globex.test"] {
            put(json!({"email": email})).await.expect_error(
                400,
                "accounts/EMAIL_NOT_ADMIN",
                &not_admin(email),
            );
        }
        put(json!({"accountName": "renamed"}))
            .await
            .expect_status(done, "an update without the email");
        put(json!({"email": "ann@acme.test"}))
            .await
            .expect_status(done, "another active admin");
        if path == SUBS {
            let model = read_sub(&cp, &acme, id, "read").await;
            assert_eq!(model["email"], "ann@acme.test");
            assert_eq!(model["accountName"], "renamed");
        }
        items.push((item, body, done));
    }
    // ann is suspended: the accounts that name her keep working.
    suspend(&cp, &acme, ann).await;
    for (item, body, done) in items {
        let put = |body: Value| cp.put(&item).token(acme.api()).json(body).send();
        put(with_email(&body, "ann@acme.test"))
            .await
            .expect_status(done, "the same email sent again");
        put(json!({"email": "Ann@ACME.test"}))
            .await
            .expect_status(done, "a case change is no change");
        put(json!({"email": "uma@acme.test"})).await.expect_error(
            400,
            "accounts/EMAIL_NOT_ADMIN",
            &not_admin("uma@acme.test"),
        );
    }
    cp.stop().await;
}

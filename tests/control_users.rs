//! Account users over Logz.io's user-management API (`/v1/user-management…`) and the
//! `tollgate user add` command, against SQLite and PostgreSQL: roles, suspension, the
//! last-admin rule, who may manage users, setup links, and the audit trail.

mod common;

use common::control::{Backend, ControlPlane};
use serde_json::{Value, json};

on_both_backends!(
    users_are_managed_in_logzio_shapes,
    an_account_keeps_an_active_admin,
    only_admins_of_the_account_manage_its_users,
    users_of_sub_accounts_are_listed_recursively,
    a_sub_account_made_inaccessible_shows_neither_its_users_nor_its_token,
);

/// The operator's command creates an account's first admin and prints its setup link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_add_command_creates_an_admin_with_a_setup_link() {
    let cp = ControlPlane::sqlite().await;
    let (account, api, _) = cp.account("acme").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tollgate.toml");
    std::fs::write(
        &config,
        format!(
            "[control_plane]\ndatabase_url = \"{}\"\npublic_url = \"https://tokens.example.com/\"\n",
            cp.database_url()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["user", "add", "--config", config.to_str().unwrap()])
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run tollgate user add")
    };
    let out = run(&[
        "--account",
        &account.to_string(),
        "--email",
        "Ann@Example.com",
        "--name",
        "Ann Admin",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("(ann@example.com) created in account")
            && stdout.contains("https://tokens.example.com/ui/setup/"),
        "{stdout}"
    );
    let users = cp
        .get("/v1/user-management")
        .token(&api)
        .send()
        .await
        .expect_ok("list");
    assert_eq!(users[0]["username"], "ann@example.com");
    assert_eq!(users[0]["role"], "USER_ROLE_ACCOUNT_ADMIN");

    // Refusals say why and exit non-zero: an unknown account, a taken email.
    let out = run(&[
        "--account",
        "999",
        "--email",
        "x@example.com",
        "--name",
        "X",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("account not found"));
    let out = run(&[
        "--account",
        &account.to_string(),
        "--email",
        "ann@example.com",
        "--name",
        "X",
        "--role",
        "user",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

async fn users_are_managed_in_logzio_shapes(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (account, api, _) = cp.account("acme").await;
    let (ann, link) = cp
        .create_user(account, " Ann@Example.com ", "USER_ROLE_ACCOUNT_ADMIN")
        .await;
    let prefix = format!("{}/ui/setup/", cp.url());
    let secret = link
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{link} under {prefix}"));
    assert!(
        secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{link}"
    );

    // The account's API token manages users too; older clients send `roles: [2]`.
    let bob = cp
        .post("/v1/user-management")
        .token(&api)
        .json(json!({"username": "bob@example.com", "fullName": "Bob", "accountID": account, "roles": [2]}))
        .send()
        .await
        .expect_ok("create with roles")["id"]
        .as_i64()
        .unwrap();
    let users = cp
        .get("/v1/user-management")
        .token(&api)
        .send()
        .await
        .expect_ok("list");
    assert_eq!(
        users,
        json!([
            {"id": ann, "username": "ann@example.com", "fullName": "Test User", "accountID": account,
             "role": "USER_ROLE_ACCOUNT_ADMIN", "active": true},
            {"id": bob, "username": "bob@example.com", "fullName": "Bob", "accountID": account,
             "role": "USER_ROLE_REGULAR", "active": true},
        ])
    );

    // Emails are unique, whatever their case.
    cp.post("/v1/user-management")
        .token(&api)
        .json(json!({"username": "BOB@example.com", "fullName": "Bob 2", "role": "USER_ROLE_READONLY"}))
        .send()
        .await
        .expect_error(409, "users/EMAIL_TAKEN", "bob@example.com");
    for (body, code, part) in [
        (
            json!({"username": "not-an-email", "fullName": "X", "role": "USER_ROLE_REGULAR"}),
            "users/INVALID_EMAIL",
            "email",
        ),
        (
            json!({"username": "c@example.com", "fullName": "X", "role": "USER_ROLE_OWNER"}),
            "users/INVALID_ROLE",
            "USER_ROLE_READONLY",
        ),
        (
            json!({"username": "c@example.com", "fullName": "X", "roles": [7]}),
            "users/INVALID_ROLE",
            "role",
        ),
        (
            json!({"username": "c@example.com", "role": "USER_ROLE_REGULAR"}),
            "request/INVALID",
            "fullName",
        ),
        (
            json!({"fullName": "X", "role": "USER_ROLE_REGULAR"}),
            "request/INVALID",
            "username",
        ),
    ] {
        cp.post("/v1/user-management")
            .token(&api)
            .json(body)
            .send()
            .await
            .expect_error(400, code, part);
    }

    // Update: name and role; the email and the account are fixed.
    let updated = cp
        .put(&format!("/v1/user-management/{bob}"))
        .token(&api)
        .json(json!({"username": "bob@example.com", "fullName": "Robert", "accountID": account, "role": "USER_ROLE_READONLY"}))
        .send()
        .await
        .expect_ok("update");
    assert_eq!(updated["fullName"], "Robert");
    assert_eq!(updated["role"], "USER_ROLE_READONLY");
    cp.put(&format!("/v1/user-management/{bob}"))
        .token(&api)
        .json(json!({"username": "robert@example.com", "fullName": "Robert", "role": "USER_ROLE_READONLY"}))
        .send()
        .await
        .expect_error(400, "users/USERNAME_FIXED", "cannot change");
    cp.put(&format!("/v1/user-management/{bob}"))
        .token(&api)
        .json(json!({"fullName": "Robert", "accountID": account + 1000, "role": "USER_ROLE_READONLY"}))
        .send()
        .await
        .expect_error(400, "users/ACCOUNT_FIXED", "another account");

    // Suspend and unsuspend.
    cp.post(&format!("/v1/user-management/suspend/{bob}"))
        .token(&api)
        .send()
        .await
        .expect_ok("suspend");
    let read = cp
        .get(&format!("/v1/user-management/{bob}"))
        .token(&api)
        .send()
        .await
        .expect_ok("read");
    assert_eq!(read["active"], false);
    cp.post(&format!("/v1/user-management/unsuspend/{bob}"))
        .token(&api)
        .send()
        .await
        .expect_ok("unsuspend");
    let read = cp
        .get(&format!("/v1/user-management/{bob}"))
        .token(&api)
        .send()
        .await
        .expect_ok("read");
    assert_eq!(read["active"], true);

    // A new setup link replaces the old one.
    let again = cp
        .post(&format!("/v1/user-management/{ann}/setup-link"))
        .token(&api)
        .send()
        .await
        .expect_ok("new link");
    assert_eq!(again["id"], ann);
    assert_ne!(again["setupLink"].as_str().unwrap(), link);

    // Delete; then it is gone, and its id is not handed out again.
    cp.delete(&format!("/v1/user-management/{bob}"))
        .token(&api)
        .send()
        .await
        .expect_ok("delete");
    cp.get(&format!("/v1/user-management/{bob}"))
        .token(&api)
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", &format!("user {bob}"));
    let (carol, _) = cp
        .create_user(account, "carol@example.com", "USER_ROLE_REGULAR")
        .await;
    assert!(
        carol > bob,
        "ids are never reused: {carol} after deleting {bob}"
    );

    // Every change is an audit event naming who made it.
    let events = cp
        .get("/v1/audit-events?pageSize=100")
        .token(&api)
        .send()
        .await
        .expect_ok("audit");
    let actions: Vec<(String, String)> = events["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (action, target) in [
        ("user.create", format!("user:{ann}")),
        ("user.update", format!("user:{bob}")),
        ("user.suspend", format!("user:{bob}")),
        ("user.unsuspend", format!("user:{bob}")),
        ("user.setup-link", format!("user:{ann}")),
        ("user.delete", format!("user:{bob}")),
    ] {
        assert!(
            actions.contains(&(action.to_string(), target.clone())),
            "{action} {target} in {actions:?}"
        );
    }
}

async fn an_account_keeps_an_active_admin(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (account, api, _) = cp.account("acme").await;
    let (ann, _) = cp
        .create_user(account, "ann@example.com", "USER_ROLE_ACCOUNT_ADMIN")
        .await;
    let (bob, _) = cp
        .create_user(account, "bob@example.com", "USER_ROLE_REGULAR")
        .await;
    let last = "last active admin";
    cp.post(&format!("/v1/user-management/suspend/{ann}"))
        .token(&api)
        .send()
        .await
        .expect_error(409, "users/LAST_ADMIN", last);
    cp.delete(&format!("/v1/user-management/{ann}"))
        .token(&api)
        .send()
        .await
        .expect_error(409, "users/LAST_ADMIN", last);
    cp.put(&format!("/v1/user-management/{ann}"))
        .token(&api)
        .json(json!({"fullName": "Ann", "role": "USER_ROLE_REGULAR"}))
        .send()
        .await
        .expect_error(409, "users/LAST_ADMIN", last);
    // With a second admin, the first may go.
    cp.put(&format!("/v1/user-management/{bob}"))
        .token(&api)
        .json(json!({"fullName": "Bob", "role": "USER_ROLE_ACCOUNT_ADMIN"}))
        .send()
        .await
        .expect_ok("promote bob");
    cp.post(&format!("/v1/user-management/suspend/{ann}"))
        .token(&api)
        .send()
        .await
        .expect_ok("suspend ann");
    // A suspended admin does not count: bob is now the last active one.
    cp.delete(&format!("/v1/user-management/{bob}"))
        .token(&api)
        .send()
        .await
        .expect_error(409, "users/LAST_ADMIN", last);
    cp.delete(&format!("/v1/user-management/{ann}"))
        .token(&api)
        .send()
        .await
        .expect_ok("delete suspended ann");
}

async fn only_admins_of_the_account_manage_its_users(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (acme, acme_api, _) = cp.account("acme").await;
    let (_, other_api, _) = cp.account("other").await;
    let (ann, _) = cp
        .create_user(acme, "ann@example.com", "USER_ROLE_ACCOUNT_ADMIN")
        .await;
    // Another account's API token: its users are "not found", and it can't create here.
    cp.get(&format!("/v1/user-management/{ann}"))
        .token(&other_api)
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "user");
    cp.post(&format!("/v1/user-management/suspend/{ann}"))
        .token(&other_api)
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "user");
    cp.post("/v1/user-management")
        .token(&other_api)
        .json(json!({"username": "x@example.com", "fullName": "X", "accountID": acme, "role": "USER_ROLE_ACCOUNT_ADMIN"}))
        .send()
        .await
        .expect_error(403, "auth/FORBIDDEN", &format!("account {acme}"));
    let listed = cp
        .get("/v1/user-management")
        .token(&other_api)
        .send()
        .await
        .expect_ok("list");
    assert_eq!(listed, json!([]));
    // No credential, a wrong one, and the operator without an account.
    cp.get("/v1/user-management").send().await.expect_error(
        401,
        "auth/UNAUTHORIZED",
        "X-API-TOKEN",
    );
    cp.get("/v1/user-management")
        .token("not-a-token")
        .send()
        .await
        .expect_error(401, "auth/UNAUTHORIZED", "not valid");
    cp.post("/v1/user-management")
        .admin()
        .json(json!({"username": "x@example.com", "fullName": "X", "role": "USER_ROLE_ACCOUNT_ADMIN"}))
        .send()
        .await
        .expect_error(400, "request/ACCOUNT_REQUIRED", "X-Account-Id");
    let listed = cp
        .get("/v1/user-management")
        .token(&acme_api)
        .send()
        .await
        .expect_ok("list");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
}

/// `GET /v1/user-management/recursive` with the main account's API token.
async fn recursive_users(cp: &ControlPlane, api: &str) -> Value {
    cp.get("/v1/user-management/recursive")
        .token(api)
        .send()
        .await
        .expect_ok("recursive")
}

async fn users_of_sub_accounts_are_listed_recursively(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (main, api, _) = cp.account("main").await;
    cp.create_user(main, "ann@example.com", "USER_ROLE_ACCOUNT_ADMIN")
        .await;
    let sub: Value = cp
        .post("/v1/account-management/time-based-accounts")
        .token(&api)
        .json(json!({"accountName": "sub", "email": "ann@example.com", "maxDailyGB": 1, "retentionDays": 5, "searchable": true, "accessible": true}))
        .send()
        .await
        .expect_ok("create sub-account");
    let sub_id = sub["accountId"].as_i64().expect("accountId");
    // The main account's API token creates users in its sub-account (reach, as X-Account-Id).
    let created = cp
        .post("/v1/user-management")
        .token(&api)
        .json(json!({"username": "sub@example.com", "fullName": "Sub", "accountID": sub_id, "role": "USER_ROLE_READONLY"}))
        .send()
        .await
        .expect_ok("create in sub-account");
    let all = recursive_users(&cp, &api).await;
    let emails: Vec<(&str, i64)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["username"].as_str().unwrap(),
                u["accountID"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        emails,
        [("ann@example.com", main), ("sub@example.com", sub_id)]
    );
    let own = cp
        .get("/v1/user-management")
        .token(&api)
        .send()
        .await
        .expect_ok("own");
    assert_eq!(own.as_array().map(Vec::len), Some(1));
    let sub_users = cp
        .get("/v1/user-management")
        .token(&api)
        .account(sub_id)
        .send()
        .await
        .expect_ok("sub's users");
    assert_eq!(sub_users[0]["id"], created["id"]);
}

/// A main account still manages a sub-account it made inaccessible (it must be able to
/// give access back) but sees nothing inside it: not its users in the recursive list, not
/// its shipping token in the sub-account views.
async fn a_sub_account_made_inaccessible_shows_neither_its_users_nor_its_token(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (main, api, _) = cp.account("main").await;
    cp.create_user(main, "ann@example.com", "USER_ROLE_ACCOUNT_ADMIN")
        .await;
    let subs = "/v1/account-management/time-based-accounts";
    let sub_id = cp
        .post(subs)
        .token(&api)
        .json(json!({"accountName": "sub", "email": "ann@example.com", "maxDailyGB": 1, "retentionDays": 5, "accessible": true}))
        .send()
        .await
        .expect_ok("create sub-account")["accountId"]
        .as_i64()
        .unwrap();
    cp.post("/v1/user-management")
        .token(&api)
        .json(json!({"username": "sub@example.com", "fullName": "Sub", "accountID": sub_id, "role": "USER_ROLE_READONLY"}))
        .send()
        .await
        .expect_ok("create in sub-account");
    let revoked = cp
        .put(&format!("{subs}/{sub_id}"))
        .token(&api)
        .json(json!({"accountName": "sub", "accessible": false}))
        .send()
        .await;
    assert_eq!(revoked.status.as_u16(), 204);
    let all = recursive_users(&cp, &api).await;
    let emails: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["ann@example.com"],
        "the sub-account's users are not shown"
    );
    let read = cp
        .get(&format!("{subs}/{sub_id}"))
        .token(&api)
        .send()
        .await
        .expect_ok("read");
    assert_eq!(read["accessible"], false);
    assert!(read["accountToken"].is_null(), "{read}");
    let detailed = cp
        .get(&format!("{subs}/detailed/{sub_id}"))
        .token(&api)
        .send()
        .await
        .expect_ok("detailed");
    assert!(detailed["account"]["accountToken"].is_null(), "{detailed}");
    // Access given back, both come back.
    let restored = cp
        .put(&format!("{subs}/{sub_id}"))
        .token(&api)
        .json(json!({"accountName": "sub", "accessible": true}))
        .send()
        .await;
    assert_eq!(restored.status.as_u16(), 204);
    let read = cp
        .get(&format!("{subs}/{sub_id}"))
        .token(&api)
        .send()
        .await
        .expect_ok("read");
    assert!(read["accountToken"].is_string(), "{read}");
    let all = recursive_users(&cp, &api).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
}

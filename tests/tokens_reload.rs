//! The file token source against the real server: hot reload within the 2 s bound,
//! garbage never replacing a good table, and the persisted snapshot served at restart.

mod common;

use std::time::Duration;

use common::*;
use http::StatusCode;

/// Writes the token file the way an operator's tool does: temp file, then rename.
fn replace_tokens_file(dir: &std::path::Path, contents: &str) {
    let tmp = dir.join("tokens.json.tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(tmp, dir.join("tokens.json")).unwrap();
}

async fn logs_status(server: &TestServer, token: &str) -> StatusCode {
    server
        .post_logs(Some(token), "", "{\"a\":1}\n")
        .await
        .status
}

#[tokio::test]
async fn disabling_then_deleting_a_token_is_refused_within_two_seconds() {
    let server = TestServer::start(|_| {}).await;
    assert_eq!(logs_status(&server, LOGS_TOKEN).await, StatusCode::OK);

    replace_tokens_file(&server.dir, &tokens_json(2, false));
    let took = eventually(Duration::from_secs(2), || async {
        logs_status(&server, LOGS_TOKEN).await == StatusCode::UNAUTHORIZED
    })
    .await;
    let reply = server.post_logs(Some(LOGS_TOKEN), "", "x").await;
    assert_eq!(reply.json()["error"], "Logging token is disabled");
    assert_eq!(server.metric("tollgate_token_table_version").await, 2.0);
    eprintln!("disable took effect after {took:?}");

    // Deleted: written in place this time (no rename), as a hand edit would.
    let mut v: serde_json::Value = serde_json::from_str(&tokens_json(3, true)).unwrap();
    v["tokens"].as_array_mut().unwrap().remove(0);
    std::fs::write(server.dir.join("tokens.json"), v.to_string()).unwrap();
    eventually(Duration::from_secs(2), || async {
        let reply = server.post_logs(Some(LOGS_TOKEN), "", "x").await;
        reply.status == StatusCode::UNAUTHORIZED
            && reply.json()["error"] == "Logging token is not valid"
    })
    .await;
    assert_eq!(
        logs_status(&server, OTHER_ACCOUNT_TOKEN).await,
        StatusCode::OK
    );
    assert!(
        server
            .metric("tollgate_token_reloads_total{result=\"ok\"}")
            .await
            >= 3.0
    );
}

#[tokio::test]
async fn garbage_or_half_written_files_keep_the_old_table_serving() {
    let server = TestServer::start(|_| {}).await;
    let full = tokens_json(2, true);
    for bad in [
        "garbage \u{0}\u{1} not json",
        &full[..full.len() / 2],
        "{\"version\": 5, \"tokens\": [{\"token\": \"x\"}]}",
    ] {
        let errors_before = server
            .metric("tollgate_token_reloads_total{result=\"error\"}")
            .await;
        std::fs::write(server.dir.join("tokens.json"), bad).unwrap();
        eventually(Duration::from_secs(2), || async {
            server
                .metric("tollgate_token_reloads_total{result=\"error\"}")
                .await
                > errors_before
        })
        .await;
        assert_eq!(
            logs_status(&server, LOGS_TOKEN).await,
            StatusCode::OK,
            "old table serves"
        );
        assert_eq!(server.metric("tollgate_token_table_version").await, 1.0);
    }
    // The writer finishes: the good file is picked up.
    replace_tokens_file(&server.dir, &tokens_json(7, false));
    eventually(Duration::from_secs(2), || async {
        logs_status(&server, LOGS_TOKEN).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(server.metric("tollgate_token_table_version").await, 7.0);
}

#[tokio::test]
async fn restart_with_an_unreadable_token_file_serves_the_persisted_snapshot() {
    let server = TestServer::start(|_| {}).await;
    server.wait_ready().await;
    let dir = server.shutdown().await;
    let persisted = std::fs::read_to_string(dir.join("state/tokens.snapshot.json")).unwrap();
    for token in ALL_TOKENS {
        assert!(
            !persisted.contains(token),
            "the persisted snapshot holds digests only"
        );
    }

    // Unreadable: the path is now a directory. Then garbage. Both times the snapshot serves.
    std::fs::remove_file(dir.join("tokens.json")).unwrap();
    std::fs::create_dir(dir.join("tokens.json")).unwrap();
    let server = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(server.get_admin("/readyz").await.status, StatusCode::OK);
    assert_eq!(logs_status(&server, LOGS_TOKEN).await, StatusCode::OK);
    assert_eq!(
        logs_status(&server, DISABLED_TOKEN).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        server
            .metric("tollgate_token_reloads_total{result=\"error\"}")
            .await
            >= 1.0
    );
    let dir = server.shutdown().await;

    std::fs::remove_dir(dir.join("tokens.json")).unwrap();
    std::fs::write(dir.join("tokens.json"), "garbage").unwrap();
    let server = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(logs_status(&server, LOGS_TOKEN).await, StatusCode::OK);
}

//! Every example config in `config/` passes `tollgate check-config`, and the Kafka sink's
//! config errors name the key at fault.

use std::path::Path;
use std::process::Command;

fn check_config(path: &Path) -> (bool, String) {
    check_config_with(path, &[])
}

fn check_config_with(path: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check-config")
        .arg(path)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TOLLGATE_SINK__TYPE")
        .env_remove("TOLLGATE_TOKENS__FEED_SECRET")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_example_config_passes_check_config() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            // gateway.toml leaves its feed secret to the environment, as it says.
            let (ok, stderr) = check_config_with(&path, &[(FEED_SECRET_ENV, STRONG_SECRET)]);
            assert!(ok, "{}: {stderr}", path.display());
            checked.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    checked.sort();
    assert!(
        checked.contains(&"gateway.toml".to_string()) && checked.len() >= 3,
        "{checked:?}"
    );
}

const FEED_SECRET_ENV: &str = "TOLLGATE_TOKENS__FEED_SECRET";
const STRONG_SECRET: &str = "k7Qw2xZp9LmN4vB8rT1yH6sD";

#[test]
fn the_fleet_example_needs_a_strong_feed_secret_from_the_environment() {
    let gateway = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gateway.toml");
    let (ok, stderr) = check_config(&gateway);
    assert!(!ok && stderr.contains("tokens.feed_secret"), "{stderr}");
    let (ok, stderr) = check_config_with(&gateway, &[(FEED_SECRET_ENV, "change-me-too")]);
    assert!(!ok && stderr.contains("tokens.feed_secret"), "{stderr}");
}

#[test]
fn check_config_checks_a_control_plane_section_that_is_not_embedded() {
    let section = |listen: &str, admin: &str| {
        format!(
            "[control_plane]\nlisten = \"{listen}\"\nadmin_secret = \"{admin}\"\n\
             feed_secret = \"{STRONG_SECRET}-feed\"\n"
        )
    };
    let (ok, stderr) = check_text(&section("0.0.0.0:8090", "x"));
    assert!(!ok, "a one-character secret on 0.0.0.0 passed");
    assert!(stderr.contains("control_plane.admin_secret"), "{stderr}");
    let (ok, stderr) = check_text(&section("127.0.0.1:8090", "x"));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("warning: control_plane.admin_secret"),
        "{stderr}"
    );
    let (ok, stderr) = check_text(&section("0.0.0.0:8090", STRONG_SECRET));
    assert!(ok, "{stderr}");
    let (ok, stderr) = check_text("[control_plane]\nlisten = \"127.0.0.1:8090\"\n");
    assert!(
        !ok && stderr.contains("control_plane.admin_secret"),
        "{stderr}"
    );
}

fn check_text(text: &str) -> (bool, String) {
    check_text_with(text, &[])
}

fn check_text_with(text: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, text).unwrap();
    check_config_with(&path, env)
}

#[test]
fn control_plane_durations_take_fractions_and_refuse_negatives_naming_the_key() {
    let section = format!(
        "[control_plane]\nadmin_secret = \"{STRONG_SECRET}\"\nfeed_secret = \"{STRONG_SECRET}-feed\"\n"
    );
    for key in [
        "session_idle_timeout_secs",
        "session_max_age_secs",
        "setup_link_ttl_secs",
    ] {
        let (ok, stderr) = check_text(&format!("{section}{key} = 0.5\n"));
        assert!(ok, "{key} = 0.5: {stderr}");
        let (ok, stderr) = check_text(&format!("{section}{key} = -1\n"));
        assert!(
            !ok && stderr.contains(&format!("control_plane.{key}: ")),
            "{key} = -1: {stderr}"
        );
    }
    let env = "TOLLGATE_CONTROL_PLANE__SESSION_IDLE_TIMEOUT_SECS";
    let (ok, stderr) = check_text_with(&section, &[(env, "0.5")]);
    assert!(ok, "{env}=0.5: {stderr}");
    let (ok, stderr) = check_text_with(&section, &[(env, "-0.5")]);
    assert!(
        !ok && stderr.contains("control_plane.session_idle_timeout_secs: "),
        "{env}=-0.5: {stderr}"
    );
}

#[test]
fn kafka_sink_errors_name_the_key() {
    let (ok, stderr) = check_text("[sink]\ntype = \"kafka\"\n");
    assert!(!ok);
    assert!(stderr.contains("sink.brokers"), "{stderr}");

    let (ok, stderr) = check_text(
        "[sink]\ntype = \"kafka\"\nbrokers = \"b:9092\"\n[sink.kafka]\n\"linger.mss\" = 5\n",
    );
    assert!(!ok);
    assert!(stderr.contains("sink.kafka.\"linger.mss\""), "{stderr}");

    let (ok, stderr) =
        check_text("[sink]\ntype = \"kafka\"\nbrokers = \"b:9092\"\n[sink.kafka]\nacks = 1\n");
    assert!(!ok);
    assert!(stderr.contains("sink.kafka.\"acks\""), "{stderr}");

    let (ok, stderr) =
        check_text("[sink]\ntype = \"kafka\"\nbrokers = \"b:9092\"\ntopic_logs = \"\"\n");
    assert!(!ok);
    assert!(stderr.contains("sink.topic_logs"), "{stderr}");

    let (ok, stderr) =
        check_text("[sink]\ntype = \"kafka\"\nbrokers = \"b:9092\"\ntopic = \"x\"\n");
    assert!(!ok);
    assert!(stderr.contains("topic"), "{stderr}");

    let (ok, stderr) = check_text("[sink]\ntype = \"kafka\"\nbrokers = \"b:9092\"\n");
    assert!(ok, "{stderr}");
}

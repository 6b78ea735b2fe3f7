//! Every example config in `config/` passes `tollgate check-config`, and the Kafka sink's
//! config errors name the key at fault.

use std::path::Path;
use std::process::Command;

fn check_config(path: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check-config")
        .arg(path)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TOLLGATE_SINK__TYPE")
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
            let (ok, stderr) = check_config(&path);
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

fn check_text(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, text).unwrap();
    check_config(&path)
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

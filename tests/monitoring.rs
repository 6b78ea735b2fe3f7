//! deploy/monitoring/: the alerting and recording rules pass `promtool check rules` and
//! their unit tests (`promtool test rules`), and every metric the rules and the dashboard
//! name is exported by a running gateway or control plane. promtool comes from Debian's
//! `prometheus` package (`.ci/run` installs it); without it the promtool checks skip
//! loudly, except under `CI=true`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::control::{ControlPlane, skip, use_control_plane};
use common::*;
use http::StatusCode;

fn monitoring() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/monitoring"))
}

/// Runs promtool with `args` in `dir`; `None` (after the skip banner) when it is missing.
fn promtool(test: &str, dir: &Path, args: &[&str]) -> Option<String> {
    let out = match Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            skip(
                test,
                &format!("promtool is not installed ({e}): apt-get install prometheus"),
            );
            return None;
        }
    };
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    Some(text)
}

#[test]
fn the_rules_check_and_every_alert_fires_only_when_it_should() {
    let test = "the_rules_check_and_every_alert_fires_only_when_it_should";
    let Some(checked) = promtool(
        test,
        monitoring(),
        &["check", "rules", "tollgate.rules.yml"],
    ) else {
        return;
    };
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(
        test,
        &monitoring().join("tests"),
        &["test", "rules", "alerts.test.yml"],
    )
    .expect("promtool ran once already");
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert has a unit test and a runbook section.
    let rules = std::fs::read_to_string(monitoring().join("tollgate.rules.yml")).unwrap();
    let tests = std::fs::read_to_string(monitoring().join("tests/alerts.test.yml")).unwrap();
    let runbook = std::fs::read_to_string(monitoring().join("../../docs/operations.md")).unwrap();
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "{alert} has no unit test"
        );
        assert!(
            runbook.contains(&format!("### {alert}")),
            "{alert} has no runbook section in docs/operations.md"
        );
    }
}

/// The metric families a rule or panel names: `tollgate_…` words, histogram series
/// mapped to their family.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("tollgate_") {
        let start = i + at;
        let preceded =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b':');
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .map_or(text.len(), |n| start + n);
        if !preceded {
            let name = &text[start..end];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            names.insert(family.to_string());
        }
        i = end;
    }
    names
}

/// The families a `/metrics` answer exports.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_metric_the_rules_and_dashboard_name_is_exported() {
    let cp = ControlPlane::sqlite().await;
    let (_, _, token) = cp.account("acme").await;
    let url = cp.url();
    let server = TestServer::start(|c| {
        use_control_plane(c, &url);
        c.tokens.usage_flush_interval_secs = std::time::Duration::from_millis(100);
    })
    .await;
    server.wait_ready().await;
    assert_eq!(
        server
            .post_logs(Some(&token), "", "{\"a\":1}\n")
            .await
            .status,
        StatusCode::OK
    );
    let unknown = server
        .post_logs(Some(UNKNOWN_TOKEN), "", "{\"a\":1}\n")
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    // The top accounts appear once a usage report has been recorded: the one log's bytes.
    wait_until(
        "the top accounts are read",
        std::time::Duration::from_secs(5),
        || async {
            let text = cp.metrics().await;
            text.lines().any(|l| {
                l.starts_with("tollgate_control_top_account_bytes_today{")
                    && l.contains("account_name=\"acme\"")
                    && l.contains("kind=\"logs\"")
                    && metric_value(&text, l.rsplit_once(' ').unwrap().0) > 0.0
            })
        },
    )
    .await;
    let mut have = exported(&String::from_utf8_lossy(
        &server.get_admin("/metrics").await.body,
    ));
    have.extend(exported(&cp.metrics().await));

    let mut named = BTreeSet::new();
    for file in ["tollgate.rules.yml", "tollgate-dashboard.json"] {
        named.extend(metric_names(
            &std::fs::read_to_string(monitoring().join(file)).unwrap(),
        ));
    }
    assert!(named.len() > 20, "the rules and dashboard name {named:?}");
    let missing: Vec<_> = named.difference(&have).collect();
    assert!(missing.is_empty(), "named but not exported: {missing:?}");
}

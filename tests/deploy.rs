//! deploy/: the Kubernetes manifests validate against a pinned Kubernetes version
//! (`kubernetes-validate --strict`, PyPI) and the Compose file resolves
//! (`podman-compose config`, PyPI, which needs podman). `.ci/run` installs both; without
//! them these tests skip loudly, except under `CI=true`. The image itself is built and
//! run by `.ci/image`.

mod common;

use std::path::Path;
use std::process::Command;

use common::control::skip;

/// The Kubernetes version the manifests are checked against (`lifecycle.preStop.sleep`
/// needs 1.30 or later).
const KUBERNETES: &str = "1.31.0";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `program args` in the repository; `None` (after the skip banner) when missing.
fn run(test: &str, program: &str, args: &[&str]) -> Option<String> {
    let out = match Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            skip(
                test,
                &format!("{program} is not installed ({e}); .ci/run installs it"),
            );
            return None;
        }
    };
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    Some(text)
}

#[test]
fn the_kubernetes_manifests_validate() {
    let dir = root().join("deploy/kubernetes");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    let mut args = vec!["--strict", "-k", KUBERNETES];
    args.extend(files.iter().map(String::as_str));
    let Some(out) = run(
        "the_kubernetes_manifests_validate",
        "kubernetes-validate",
        &args,
    ) else {
        return;
    };
    for kind in [
        "deployment",
        "statefulset",
        "service",
        "poddisruptionbudget",
        "networkpolicy",
        "configmap",
        "secret",
    ] {
        assert!(
            out.contains(&format!("passed for resource {kind}/")),
            "{kind} not validated:\n{out}"
        );
    }
    assert!(!out.contains("ERROR") && !out.contains("failed"), "{out}");
}

#[test]
fn the_compose_file_resolves() {
    let Some(out) = run(
        "the_compose_file_resolves",
        "podman-compose",
        &["-f", "deploy/compose.yaml", "config"],
    ) else {
        return;
    };
    for service in [
        "postgres",
        "redis",
        "kafka",
        "control-plane-1",
        "control-plane-2",
        "gateway-1",
        "gateway-2",
    ] {
        assert!(
            out.contains(&format!("  {service}:")),
            "{service} missing:\n{out}"
        );
    }
}

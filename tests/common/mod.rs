//! What the CLI test binaries share: where the workspace is, the feature cache the tests extract
//! once, the MLflow server scripts/test.sh starts, and reading a run id from `fairlab run`'s output.
//! Each test binary compiles this module and uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The workspace root (the tests run `fairlab` from there).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Features shared by the tests that do not test the cache itself (extracted once).
pub fn shared_cache() -> PathBuf {
    root().join("target/test-feature-cache")
}

/// `--set` values that make the quickstart's relative paths (data, weights) absolute and point it
/// at the shared feature cache, for runs started from another folder (sweeps, whose directories
/// are relative to the working folder).
pub fn absolute_paths() -> Vec<String> {
    vec![
        format!("dataset.root={}", root().join("data/nih1000").display()),
        format!(
            "backbone.weights={}",
            root().join("models/efficientnet-lite0").display()
        ),
        format!("features.cache_dir={}", shared_cache().display()),
    ]
}

/// The real MLflow server of `FAIRLAB_MLFLOW_SERVER` (scripts/test.sh starts one), or `None`,
/// after saying SKIPPED, when none is set; with `FAIRLAB_REQUIRE_MLFLOW=1` a missing server fails
/// the test instead.
pub fn shared_server() -> Option<String> {
    let server = std::env::var("FAIRLAB_MLFLOW_SERVER").ok().filter(|s| !s.is_empty());
    if server.is_none() {
        assert!(
            std::env::var("FAIRLAB_REQUIRE_MLFLOW").as_deref() != Ok("1"),
            "FAIRLAB_REQUIRE_MLFLOW=1 but FAIRLAB_MLFLOW_SERVER is not set: start one with scripts/mlflow-server.sh start"
        );
        eprintln!("SKIPPED: no MLflow server (FAIRLAB_MLFLOW_SERVER); scripts/mlflow-server.sh start");
    }
    server
}

/// The run id in `fairlab run`'s output (`run <id> FINISHED`).
pub fn run_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("run ").and_then(|r| r.split_whitespace().next()))
        .unwrap_or_else(|| panic!("no run id in:\n{stdout}"))
        .to_string()
}

/// Press Ctrl-C on `child`: send it SIGINT.
pub fn interrupt(child: &std::process::Child) {
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -INT {} failed", child.id());
}

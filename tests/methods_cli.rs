//! The debiasing methods end to end through the binary: every method experiment in
//! `experiments/` runs (with a few epochs) on the real NIH1000 X-rays, and DNE removes a
//! sensitive attribute that is planted in the images.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Features shared with the other CLI tests (extracted once per resolution).
fn shared_cache() -> PathBuf {
    root().join("target/test-feature-cache")
}

fn fairlab(store: &Path) -> Command {
    let mut cmd = Command::cargo_bin("fairlab").unwrap();
    cmd.current_dir(root())
        .env("MLFLOW_TRACKING_URI", format!("file:{}", store.display()))
        .env_remove("MLFLOW_EXPERIMENT_NAME")
        .env_remove("RUST_LOG");
    cmd
}

/// The last value of metric `key` of the only run in `store`.
fn metric(store: &Path, key: &str) -> f64 {
    let mut found = Vec::new();
    for exp in std::fs::read_dir(store).unwrap().flatten() {
        for run in std::fs::read_dir(exp.path()).into_iter().flatten().flatten() {
            let file = run.path().join("metrics").join(key);
            if file.is_file() {
                found.push(std::fs::read_to_string(file).unwrap());
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "expected one run with metric {key} in {}",
        store.display()
    );
    let fields: Vec<&str> = found[0].split_whitespace().collect();
    fields[fields.len() - 2].parse().unwrap()
}

/// Overrides that cut an experiment to a smoke test: few epochs everywhere.
fn smoke_overrides(experiment: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(experiment)).unwrap();
    let mut sets = vec![format!("features.cache_dir={}", shared_cache().display())];
    if text.contains("kind: dne") {
        sets.extend(
            [
                "debiaser.sa_classifier.epochs=2",
                "debiaser.noise.epochs=1",
                "debiaser.probe.epochs=2",
            ]
            .map(String::from),
        );
    } else {
        sets.push("debiaser.epochs=2".to_string());
    }
    sets
}

#[test]
fn every_method_experiment_runs() {
    let mut experiments: Vec<String> = std::fs::read_dir(root().join("experiments"))
        .unwrap()
        .flatten()
        .map(|e| format!("experiments/{}", e.file_name().to_string_lossy()))
        .filter(|name| name.ends_with(".yaml") && !name.ends_with("quickstart.yaml"))
        .collect();
    experiments.sort();
    assert!(experiments.len() >= 4, "method experiments: {experiments:?}");
    for experiment in experiments {
        let store = tempfile::tempdir().unwrap();
        let mut cmd = fairlab(store.path());
        cmd.args(["run", &experiment]);
        for set in smoke_overrides(&experiment) {
            cmd.args(["--set", &set]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{experiment} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let auc = metric(store.path(), "test_auc");
        assert!((0.0..=1.0).contains(&auc), "{experiment}: test_auc {auc}");
        let leakage = metric(store.path(), "test_leakage_auc_sex");
        assert!((0.0..=1.0).contains(&leakage), "{experiment}: leakage {leakage}");
        let text = std::fs::read_to_string(root().join(&experiment)).unwrap();
        if text.contains("kind: gezo") {
            // Black-box: one round of 10 candidates x 2 batches x 2 signs (+2 baseline queries for
            // the paper variant), and never a backward pass.
            let forward = metric(store.path(), "dne_forward_passes");
            let expected = if text.contains("variant: paper") { 42.0 } else { 40.0 };
            assert_eq!(forward, expected, "{experiment}: forward passes");
            assert_eq!(
                metric(store.path(), "dne_backward_passes"),
                0.0,
                "{experiment}: GeZO ran backward"
            );
        } else if text.contains("kind: dne") {
            assert!(
                metric(store.path(), "dne_backward_passes") > 0.0,
                "{experiment}: white-box backprop"
            );
        }
    }
}

/// A dataset whose sensitive attribute is written into the images: group `M` carries a bright
/// square in the top-left corner, group `F` does not; the label is a bar in the bottom half,
/// independent of the group. Everything else is noise.
fn planted_dataset(dir: &Path) {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let mut csv = String::from("file,label,sex,split\n");
    let mut state = 12345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    for i in 0..240 {
        let (male, pair) = (i % 2 == 0, i / 2);
        let label = (pair / 6) % 2 == 0;
        let split = match pair % 6 {
            0..=3 => "train",
            4 => "val",
            _ => "test",
        };
        let image = image::GrayImage::from_fn(32, 32, |x, y| {
            let base = 60 + (next() % 60) as u8;
            image::Luma([if male && x < 10 && y < 10 {
                250
            } else if label && y > 20 && y < 24 {
                200
            } else {
                base
            }])
        });
        let file = format!("{i:03}.png");
        image.save(dir.join("images").join(&file)).unwrap();
        csv.push_str(&format!(
            "{file},{},{},{split}\n",
            u8::from(label),
            if male { "M" } else { "F" }
        ));
    }
    std::fs::write(dir.join("labels.csv"), csv).unwrap();
}

#[test]
fn white_box_dne_hides_a_planted_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("planted");
    planted_dataset(&data);
    let experiment = dir.path().join("dne.yaml");
    std::fs::write(
        &experiment,
        format!(
            "name: planted\nseed: 0\n\
             dataset: {{kind: csv-images, root: {}, target: label, attributes: [sex]}}\n\
             backbone: {{kind: efficientnet-lite0, weights: models/efficientnet-lite0, device: cpu, image_size: 32}}\n\
             features: {{cache: false}}\n\
             debiaser:\n  kind: dne\n  attribute: sex\n\
             \x20 sa_classifier: {{epochs: 30, batch_size: 32, optimizer: {{kind: adam, lr: 0.01}}}}\n\
             \x20 noise: {{epochs: 10, batch_size: 32, optimizer: {{kind: adam, lr: 0.05}}}}\n\
             \x20 probe: {{epochs: 5}}\n\
             evaluation: {{leakage: false}}\n",
            data.display()
        ),
    )
    .unwrap();
    let store = dir.path().join("mlruns");
    let out = fairlab(&store).args(["run"]).arg(&experiment).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let clean = metric(&store, "dne_sa_test_auc_clean");
    let noised = metric(&store, "dne_sa_test_auc_noised");
    assert!(clean > 0.95, "the planted attribute must be easy to read: AUC {clean}");
    assert!(
        noised < clean - 0.3,
        "white-box DNE must cut the attribute classifier's AUC: {clean} -> {noised}"
    );
    let artifacts = std::fs::read_dir(store.clone())
        .unwrap()
        .flatten()
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .map(|run| run.path().join("artifacts/noise"))
        .find(|p| p.is_dir())
        .expect("noise artifacts");
    assert!(artifacts.join("noise.safetensors").is_file());
    assert!(artifacts.join("noise.png").is_file());
}

/// `experiments/dne-adam.yaml` cut short, with `set` overridden: exits 2 with `expected` on stderr
/// and leaves the run recorded as FAILED.
fn dne_rejects(set: &str, expected: &str) {
    let store = tempfile::tempdir().unwrap();
    let out = fairlab(store.path())
        .args(["run", "experiments/dne-adam.yaml", "--set", set])
        .args(["--set", "debiaser.sa_classifier.epochs=1"])
        .arg("--set")
        .arg(format!("features.cache_dir={}", shared_cache().display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{set}: {stderr}");
    assert!(stderr.contains(expected), "{set}: expected `{expected}` in:\n{stderr}");
    assert!(stderr.contains("recorded as FAILED"), "{set}: {stderr}");
}

#[test]
fn dne_rejects_a_non_binary_or_unknown_attribute() {
    dne_rejects(
        "debiaser.attribute=age_group",
        "`debiaser.attribute`: DNE needs a binary sensitive attribute; `age_group` has 4 group(s) in the training split",
    );
    dne_rejects(
        "debiaser.attribute=race",
        "`debiaser.attribute`: unknown attribute `race`; the dataset's attributes are `sex`, `age_group`",
    );
}

#[test]
fn dne_rejects_more_noise_steps_than_the_data_has_batches() {
    dne_rejects(
        "debiaser.noise.steps_per_epoch=100",
        "`debiaser.noise.steps_per_epoch`: 100 steps of 1 mini-batch(es) need 100 batches, but the 704 training \
         images give 11 batches of 64",
    );
}

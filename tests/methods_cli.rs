//! The debiasing methods end to end through the binary: every method experiment in
//! `experiments/` runs (with a few epochs) on the real NIH1000 X-rays, and DNE removes a
//! sensitive attribute that is planted in the images.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

use common::{root, shared_cache};

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
    metric_history(store, key).last().unwrap().1
}

/// Every `(step, value)` logged for metric `key` of the only run in `store`, in order.
fn metric_history(store: &Path, key: &str) -> Vec<(i64, f64)> {
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
    found[0]
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[2].parse().unwrap(), fields[1].parse().unwrap())
        })
        .collect()
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
    } else if !text.contains("kind: zero-shot") {
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
        // Sweep files plan many runs; their dry runs are tested in sweep_cli.rs.
        .filter(|name| !fairlab_framework::sweep::declares_sweep(&root().join(name)))
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

/// `experiment` with the `sets` overrides (and the shared feature cache): exits 2 with
/// `expected` on stderr, which is returned.
fn rejects(experiment: &str, sets: &[&str], expected: &str) -> String {
    let store = tempfile::tempdir().unwrap();
    let mut cmd = fairlab(store.path());
    cmd.args(["run", experiment]);
    for set in sets {
        cmd.args(["--set", set]);
    }
    let out = cmd
        .arg("--set")
        .arg(format!("features.cache_dir={}", shared_cache().display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{sets:?}: {stderr}");
    assert!(
        stderr.contains(expected),
        "{sets:?}: expected `{expected}` in:\n{stderr}"
    );
    stderr
}

/// `experiments/dne-adam.yaml` cut short, with `set` overridden: exits 2 with `expected` on stderr
/// and leaves the run recorded as FAILED.
fn dne_rejects(set: &str, expected: &str) {
    let stderr = rejects(
        "experiments/dne-adam.yaml",
        &[set, "debiaser.sa_classifier.epochs=1"],
        expected,
    );
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

/// The only run's `metrics.json` artifact (the test split's report).
fn metrics_json(store: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(metrics_json_path(store)).unwrap()).unwrap()
}

/// `artifacts/metrics.json` of the only run in `store`.
fn metrics_json_path(store: &Path) -> PathBuf {
    std::fs::read_dir(store)
        .unwrap()
        .flatten()
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .map(|run| run.path().join("artifacts/metrics.json"))
        .find(|p| p.is_file())
        .expect("metrics.json")
}

#[test]
fn fairclip_finetune_trains_clip_and_logs_every_epoch() {
    let experiment = "experiments/fairclip-finetune.yaml";
    let store = tempfile::tempdir().unwrap();
    let mut cmd = fairlab(store.path());
    cmd.args(["run", experiment]);
    for set in smoke_overrides(experiment) {
        cmd.args(["--set", &set]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let store = store.path();
    let report = metrics_json(store);
    let auc = report["overall"]["auc"]
        .as_f64()
        .unwrap_or_else(|| panic!("no test AUC in metrics.json: {report}"));
    assert!((0.0..=1.0).contains(&auc), "test AUC {auc}");
    for key in ["train_loss", "contrastive_loss", "sinkhorn_F", "sinkhorn_M", "val_auc"] {
        let history = metric_history(store, key);
        let epochs: Vec<i64> = history.iter().map(|(step, _)| *step).filter(|s| *s > 0).collect();
        assert_eq!(epochs, [1, 2], "{key} per epoch: {history:?}");
        assert!(history.iter().all(|(_, v)| v.is_finite()), "{key} {history:?}");
    }
    // The fine-tuned weights moved away from the pretrained ones, and an epoch was kept.
    let change = metric(store, "clip_weight_change_l2");
    assert!(change > 1e-3, "the fine-tuned weights did not move ({change})");
    let selected = metric(store, "selected_epoch");
    assert!([1.0, 2.0].contains(&selected), "selected epoch {selected}");
    // The fine-tuned tensors are saved under their checkpoint names: 72 of tiny-clip's towers.
    let run_artifacts = metrics_json_path(store).parent().unwrap().to_path_buf();
    let (tensors, metadata) = fairlab_framework::tensor_io::load(
        &run_artifacts.join("model/finetuned.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert_eq!(tensors.len(), 72);
    assert!(tensors.contains_key("vision_model.encoder.layers.0.self_attn.q_proj.weight"));
    assert!(!tensors.contains_key("text_model.embeddings.token_embedding.weight"));
    assert!(metadata["base"].starts_with("clip@sha256:"));
}

#[test]
fn fairclip_finetune_rejects_backbones_it_cannot_train() {
    let finetune = "experiments/fairclip-finetune.yaml";
    rejects(
        finetune,
        &["backbone.trainable=[]"],
        "`backbone.trainable`: `fairclip` with `target: clip` fine-tunes the backbone, but `clip` has no trainable \
         weights: set backbone.trainable, e.g. [vision_model, visual_projection, text_model.encoder]",
    );
    rejects(
        finetune,
        &["backbone.trainable=[vision_model, transformer]"],
        "`backbone.trainable`: `transformer` matches no tensor",
    );
    rejects(finetune, &["backbone.dtype=bf16"], "`backbone.dtype`: fine-tuning");
    rejects(
        "experiments/fairclip-probe.yaml",
        &["debiaser.target=clip"],
        "`debiaser.target`: `fairclip` with `target: clip` needs a backbone with a text encoder (e.g. clip); \
         `efficientnet-lite0` has none",
    );
}

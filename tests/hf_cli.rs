//! `fairlab embed` and the CLIP experiments end to end through the binary, on the tiny CLIP/BLIP
//! fixtures (random weights, Hugging Face layout, reference outputs from `transformers`), loaded
//! from a folder and from the Hub cache with `HF_HUB_OFFLINE=1`.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use candle_core::{DType, Device, Tensor};
use predicates::prelude::*;

use common::root;

fn model(name: &str) -> PathBuf {
    root().join("tests/fixtures/hf/models").join(name)
}

/// `fairlab` with the fixtures' Hub cache as `HF_HOME`, offline, in `dir`.
fn fairlab(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("fairlab").unwrap();
    cmd.current_dir(dir)
        .env("HF_HOME", root().join("tests/fixtures/hf/hf-cache"))
        .env("HF_HUB_OFFLINE", "1")
        .env("MLFLOW_TRACKING_URI", format!("file:{}", dir.join("mlruns").display()))
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env_remove("MLFLOW_EXPERIMENT_NAME")
        .env_remove("RUST_LOG");
    cmd
}

/// A safetensors file's tensors and metadata.
fn read(path: &Path) -> (HashMap<String, Tensor>, HashMap<String, String>) {
    fairlab_framework::tensor_io::load(path, &Device::Cpu).unwrap()
}

fn reference(name: &str) -> HashMap<String, Tensor> {
    read(&model(name).join("reference/reference.safetensors")).0
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// The fixture's reference texts as a one-per-line file in `dir`.
fn texts_file(dir: &Path, name: &str) -> PathBuf {
    let texts: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(model(name).join("reference/texts.json")).unwrap()).unwrap();
    let path = dir.join("texts.txt");
    std::fs::write(&path, texts.join("\n") + "\n").unwrap();
    path
}

#[test]
fn embed_clip_matches_transformers_from_folder_and_hub_cache() {
    let dir = tempfile::tempdir().unwrap();
    let texts = texts_file(dir.path(), "tiny-clip");
    let want = reference("tiny-clip");
    let mut outputs = Vec::new();
    for source in [
        model("tiny-clip").display().to_string(),
        "fairlab-fixtures/tiny-clip".to_string(),
    ] {
        let out = dir.path().join(format!("embeds-{}.safetensors", outputs.len()));
        fairlab(dir.path())
            .args(["embed", "--backbone", "clip", "--model", &source, "--device", "cpu"])
            .arg("--images")
            .arg(model("tiny-clip").join("reference"))
            .arg("--texts")
            .arg(&texts)
            .arg("--out")
            .arg(&out)
            .assert()
            .success()
            .stdout(predicate::str::contains("image_embeds: [4, 32]"))
            .stdout(predicate::str::contains("text_embeds: [4, 32]"));
        let (tensors, metadata) = read(&out);
        // The images' own preprocessing reproduces transformers' pixel values exactly, so the
        // embeddings match the reference to the model tolerance.
        assert!(max_abs_diff(&tensors["image_embeds"], &want["image_embeds"]) <= 1e-4);
        assert!(max_abs_diff(&tensors["text_embeds"], &want["text_embeds"]) <= 1e-4);
        let images: Vec<String> = serde_json::from_str(&metadata["images"]).unwrap();
        let names: Vec<&str> = images.iter().map(|p| p.rsplit('/').next().unwrap()).collect();
        assert_eq!(names, ["img_0.png", "img_1.png", "img_2.png", "img_3.png"]);
        let listed: Vec<String> = serde_json::from_str(&metadata["texts"]).unwrap();
        assert_eq!(listed.len(), 4);
        assert!(metadata["backbone"].starts_with("clip@sha256:"));
        outputs.push(tensors);
    }
    assert_eq!(
        max_abs_diff(&outputs[0]["image_embeds"], &outputs[1]["image_embeds"]),
        0.0
    );
}

#[test]
fn embed_blip_from_a_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("images.csv");
    // Reversed order: a CSV keeps its row order.
    std::fs::write(&csv, "file,note\nimg_3.png,a\nimg_2.png,b\nimg_1.png,c\nimg_0.png,d\n").unwrap();
    let out = dir.path().join("blip.safetensors");
    fairlab(dir.path())
        .args([
            "embed",
            "--backbone",
            "blip",
            "--model",
            "fairlab-fixtures/tiny-blip",
            "--device",
            "cpu",
        ])
        .arg("--images")
        .arg(&csv)
        .arg("--image-root")
        .arg(model("tiny-blip").join("reference"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let (tensors, _) = read(&out);
    let order = Tensor::new(&[3u32, 2, 1, 0], &Device::Cpu).unwrap();
    let want = reference("tiny-blip")["image_embeds"].index_select(&order, 0).unwrap();
    assert!(max_abs_diff(&tensors["image_embeds"], &want) <= 1e-4);
}

#[test]
fn embed_errors_are_clear_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let images = model("tiny-clip").join("reference");
    let texts = texts_file(dir.path(), "tiny-clip");
    let run = |args: &[&str]| {
        fairlab(dir.path())
            .arg("embed")
            .args(args)
            .arg("--out")
            .arg(dir.path().join("x.safetensors"))
            .assert()
            .code(2)
    };
    let images = images.to_str().unwrap();
    // A repo that is not in the cache, offline: where fairlab looked and how to provide it.
    run(&[
        "--backbone",
        "clip",
        "--model",
        "someone/not-cached",
        "--images",
        images,
    ])
    .stderr(predicate::str::contains("HF_HUB_OFFLINE"))
    .stderr(predicate::str::contains("models--someone--not-cached"))
    .stderr(predicate::str::contains("huggingface-cli download someone/not-cached"));
    // BLIP has no text encoder.
    run(&[
        "--backbone",
        "blip",
        "--model",
        "fairlab-fixtures/tiny-blip",
        "--images",
        images,
        "--texts",
        texts.to_str().unwrap(),
    ])
    .stderr(predicate::str::contains(
        "`--texts`: backbone `blip` has no text encoder",
    ));
    // An unknown backbone, a missing image folder, a bad dtype.
    run(&["--backbone", "clop", "--model", "x", "--images", images]).stderr(predicate::str::contains("clip"));
    run(&[
        "--backbone",
        "clip",
        "--model",
        "fairlab-fixtures/tiny-clip",
        "--images",
        "nope",
    ])
    .stderr(predicate::str::contains("`--images`: `nope` not found"));
    run(&[
        "--backbone",
        "clip",
        "--model",
        "fairlab-fixtures/tiny-clip",
        "--dtype",
        "f8",
        "--images",
        images,
    ])
    .stderr(predicate::str::contains("backbone.dtype"));
    assert!(!dir.path().join("x.safetensors").exists());
}

/// The metrics.json of the only run in a store.
fn only_metrics(store: &Path) -> serde_json::Value {
    let runs: Vec<PathBuf> = walk(store)
        .into_iter()
        .filter(|p| p.ends_with("artifacts/metrics.json"))
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    serde_json::from_str(&std::fs::read_to_string(&runs[0]).unwrap()).unwrap()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn clip_experiments_run_on_the_xrays() {
    for (experiment, extra) in [
        ("experiments/clip-zero-shot.yaml", vec![]),
        ("experiments/clip-erm.yaml", vec!["debiaser.epochs=3"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = fairlab(dir.path());
        cmd.arg("run")
            .arg(root().join(experiment))
            .arg("--set")
            .arg(format!("backbone.model={}", model("tiny-clip").display()))
            .arg("--set")
            .arg(format!("dataset.root={}", root().join("data/nih1000").display()))
            .arg("--set")
            .arg(format!(
                "features.cache_dir={}",
                root().join("target/test-feature-cache").display()
            ));
        for e in extra {
            cmd.args(["--set", e]);
        }
        cmd.assert().success().stdout(predicate::str::contains("auc"));
        let metrics = only_metrics(&dir.path().join("mlruns"));
        assert_eq!(metrics["n"], 148, "the test split");
        let auc = metrics["overall"]["auc"].as_f64().expect("a test AUC");
        assert!((0.0..=1.0).contains(&auc), "{auc}");
        assert!(metrics["attributes"]["sex"]["groups"]["F"]["n"].as_u64().unwrap() > 0);
    }
}

//! EfficientNet-Lite0 against the outputs of the real PyTorch model (`reference.safetensors`):
//! preprocessing, features, logits, the ImageNet sanity image, and load errors.

#[allow(dead_code)] // Shared with the CLIP/BLIP tests; this binary uses a subset.
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor, Var};
use common::max_abs_diff;
use fairlab_backbones::efficientnet_lite0::depthwise::same_padding;
use fairlab_backbones::efficientnet_lite0::EfficientNetLite0Backbone;
use fairlab_framework::config::PluginSpec;
use fairlab_framework::{Backbone, ConfigError, Registry};

const MODEL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/efficientnet-lite0");
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const WEIGHTS_SHA256: &str = "83767a2a5ff0b5ef0fd8958e9d9c22d5a07239de74d19561e825bb4109b70af6";

fn model_dir() -> &'static Path {
    Path::new(MODEL_DIR)
}

fn backbone() -> &'static EfficientNetLite0Backbone {
    static BACKBONE: OnceLock<EfficientNetLite0Backbone> = OnceLock::new();
    BACKBONE.get_or_init(|| EfficientNetLite0Backbone::load(model_dir(), &Device::Cpu, DType::F32).unwrap())
}

fn reference() -> &'static HashMap<String, Tensor> {
    static REFERENCE: OnceLock<HashMap<String, Tensor>> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        candle_core::safetensors::load(model_dir().join("reference.safetensors"), &Device::Cpu).unwrap()
    })
}

fn reference_json() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(model_dir().join("reference.json")).unwrap()).unwrap()
}

fn argmax(logits: &Tensor) -> Vec<u32> {
    logits.argmax(1).unwrap().to_vec1::<u32>().unwrap()
}

fn error_text(err: &anyhow::Error) -> String {
    format!("{err:#}")
}

#[test]
fn preprocessing_matches_reference_pixel_values() {
    let paths: Vec<PathBuf> = reference_json()["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|img| Path::new(WORKSPACE).join(img["path"].as_str().unwrap()))
        .collect();
    let images: Vec<image::DynamicImage> = paths
        .iter()
        .map(|p| image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    let preprocessing = backbone().preprocessing();
    let unit = preprocessing.unit_batch(&images, &Device::Cpu).unwrap();
    let pixels = preprocessing.normalize(&unit).unwrap();
    let err = max_abs_diff(&pixels, &reference()["pixel_values"]);
    eprintln!("pixel_values max abs error: {err:e}");
    assert!(err < 1e-5, "pixel_values differ by {err}");
}

#[test]
fn features_and_logits_match_reference() {
    let pixels = &reference()["pixel_values"];
    let features = backbone().encode_images(pixels).unwrap();
    assert_eq!(features.dims(), &[4, backbone().feature_dim()]);
    let logits = backbone().model().logits(&features).unwrap();
    let feature_err = max_abs_diff(&features, &reference()["features"]);
    let logit_err = max_abs_diff(&logits, &reference()["logits"]);
    eprintln!("features max abs error: {feature_err:e}; logits max abs error: {logit_err:e}");
    assert!(feature_err < 1e-4, "features differ by {feature_err}");
    assert!(logit_err < 1e-4, "logits differ by {logit_err}");
    let expected_top1: Vec<u32> = reference_json()["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|img| img["top1_imagenet_class"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(argmax(&logits), expected_top1);
}

#[test]
fn traffic_light_is_top1() {
    let img = image::open(model_dir().join("sanity_traffic_light.png")).unwrap();
    let preprocessing = backbone().preprocessing();
    let pixels = preprocessing
        .normalize(&preprocessing.unit_batch(&[img], &Device::Cpu).unwrap())
        .unwrap();
    let logits = backbone()
        .model()
        .logits(&backbone().encode_images(&pixels).unwrap())
        .unwrap();
    assert_eq!(argmax(&logits), vec![920]);
    let p = candle_nn::ops::softmax_last_dim(&logits)
        .unwrap()
        .get(0)
        .unwrap()
        .get(920)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((p - 0.498).abs() < 0.01, "p(traffic light) = {p}");
}

#[test]
fn gradients_flow_to_the_input() {
    let pixels = reference()["pixel_values"].narrow(0, 0, 1).unwrap();
    let input = Var::from_tensor(&pixels).unwrap();
    let features = backbone().encode_images(input.as_tensor()).unwrap();
    let grads = features.sum_all().unwrap().backward().unwrap();
    let grad = grads.get(input.as_tensor()).expect("a gradient for the input");
    assert_eq!(grad.dims(), pixels.dims());
    let norm = grad.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(norm.is_finite() && norm > 0.0, "gradient norm {norm}");
}

#[test]
fn identity_and_settings() {
    let b = backbone();
    assert_eq!(b.kind(), "efficientnet-lite0");
    assert_eq!(b.fingerprint(), format!("efficientnet-lite0@sha256:{WEIGHTS_SHA256}"));
    assert_eq!(b.feature_dim(), 1280);
    assert_eq!(b.dtype(), DType::F32);
    assert!(b.device().is_cpu());
    let p = b.preprocessing();
    assert_eq!((p.height, p.width), (224, 224));
    assert!((p.mean[0] - 127.0 / 255.0).abs() < 1e-7 && (p.std[2] - 128.0 / 255.0).abs() < 1e-7);
}

#[test]
fn tf_same_padding_matches_config() {
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir().join("config.json")).unwrap()).unwrap();
    let as_usize = |v: &serde_json::Value| v.as_u64().unwrap() as usize;
    for block in config["blocks"].as_array().unwrap() {
        let (before, after) = same_padding(
            as_usize(&block["input_hw"]),
            as_usize(&block["kernel_size"]),
            as_usize(&block["stride"]),
        );
        let expected: Vec<usize> = block["depthwise_padding_top_left_bottom_right"]
            .as_array()
            .unwrap()
            .iter()
            .map(as_usize)
            .collect();
        assert_eq!(vec![before, before, after, after], expected, "block {}", block["index"]);
    }
    let stem = &config["stem"];
    let (before, after) = same_padding(224, as_usize(&stem["kernel_size"]), as_usize(&stem["stride"]));
    assert_eq!(vec![before, before, after, after], vec![0, 0, 1, 1]);
}

#[test]
fn registry_builds_from_yaml_and_keys_bad_settings() {
    let mut registry = Registry::new();
    fairlab_backbones::register(&mut registry);
    let spec = |yaml: &str| PluginSpec::new("backbone", "efficientnet-lite0", serde_norway::from_str(yaml).unwrap());
    let built = registry
        .backbone(&spec(&format!("{{weights: '{MODEL_DIR}', device: cpu}}")))
        .unwrap();
    assert_eq!(built.fingerprint(), backbone().fingerprint());

    let config_error = |yaml: &str| -> ConfigError {
        match registry.backbone(&spec(yaml)) {
            Ok(_) => panic!("{yaml} should fail"),
            Err(e) => e
                .downcast::<ConfigError>()
                .unwrap_or_else(|e| panic!("{yaml}: not a ConfigError: {e:#}")),
        }
    };
    assert_eq!(config_error("{device: tpu}").key.as_deref(), Some("backbone.device"));
    assert_eq!(config_error("{dtype: f64}").key.as_deref(), Some("backbone.dtype"));
    assert!(config_error("{batch_size: 8}")
        .to_string()
        .contains("unknown field `batch_size`"));
    assert!(config_error("{weigths: models}").to_string().contains("weigths"));
    let missing = config_error("{weights: /nonexistent/lite0, device: cpu}");
    assert_eq!(missing.key.as_deref(), Some("backbone.weights"));
}

#[test]
fn missing_folder_or_file_names_the_path_and_expected_files() {
    let err = EfficientNetLite0Backbone::load(Path::new("/nonexistent/lite0"), &Device::Cpu, DType::F32).unwrap_err();
    let text = error_text(&err);
    assert!(err.is::<ConfigError>(), "{text}");
    assert!(
        text.contains("/nonexistent/lite0") && text.contains("config.json") && text.contains("model.safetensors"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(model_dir().join("config.json"), dir.path().join("config.json")).unwrap();
    let text = error_text(&EfficientNetLite0Backbone::load(dir.path(), &Device::Cpu, DType::F32).unwrap_err());
    assert!(
        text.contains(&dir.path().join("model.safetensors").display().to_string()),
        "{text}"
    );
}

/// A copy of the real config with a hand-made weights file.
fn folder_with_weights(tensors: &[(&str, Tensor)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(model_dir().join("config.json"), dir.path().join("config.json")).unwrap();
    let map: HashMap<String, Tensor> = tensors.iter().map(|(name, t)| (name.to_string(), t.clone())).collect();
    candle_core::safetensors::save(&map, dir.path().join("model.safetensors")).unwrap();
    dir
}

#[test]
fn bad_tensors_are_named() {
    let zeros = |shape: &[usize]| Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap();
    let dir = folder_with_weights(&[("_conv_stem.weight", zeros(&[32, 3, 5, 5]))]);
    let text = error_text(&EfficientNetLite0Backbone::load(dir.path(), &Device::Cpu, DType::F32).unwrap_err());
    assert!(
        text.contains("_conv_stem.weight") && text.contains("model.safetensors"),
        "{text}"
    );

    let dir = folder_with_weights(&[("_conv_stem.weight", zeros(&[32, 3, 3, 3]))]);
    let text = error_text(&EfficientNetLite0Backbone::load(dir.path(), &Device::Cpu, DType::F32).unwrap_err());
    assert!(text.contains("_bn0."), "{text}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(model_dir().join("config.json"), dir.path().join("config.json")).unwrap();
    let weights = std::fs::read(model_dir().join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), &weights[..4096]).unwrap();
    let text = error_text(&EfficientNetLite0Backbone::load(dir.path(), &Device::Cpu, DType::F32).unwrap_err());
    assert!(
        text.contains(&dir.path().join("model.safetensors").display().to_string()),
        "{text}"
    );
}

#[test]
fn half_precision_stays_close() {
    let half = EfficientNetLite0Backbone::load(model_dir(), &Device::Cpu, DType::F16).unwrap();
    let pixels = reference()["pixel_values"].narrow(0, 0, 1).unwrap();
    let features = half.encode_images(&pixels).unwrap();
    assert_eq!(features.dtype(), DType::F16);
    let features = features.to_dtype(DType::F32).unwrap();
    let want = reference()["features"].narrow(0, 0, 1).unwrap();
    let err = max_abs_diff(&features, &want);
    let dot = |a: &Tensor, b: &Tensor| (a * b).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    let cosine = dot(&features, &want) / (dot(&features, &features) * dot(&want, &want)).sqrt();
    eprintln!("f16 features: max abs error {err:e}, cosine similarity {cosine}");
    assert!(
        err < 0.2 && cosine > 0.9995,
        "f16 features: max abs error {err}, cosine {cosine}"
    );
}

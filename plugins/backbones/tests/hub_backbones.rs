//! The `clip` and `blip` plugins end to end on the tiny fixtures: loaded from a local folder and
//! from the Hub cache offline, raw images through their own preprocessing, tokenizer and model,
//! compared with the `transformers` reference outputs.

#[allow(dead_code)] // Shared with clip.rs and blip.rs; this binary uses a subset.
mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use common::{fixture, load_reference, max_abs_diff, TOLERANCE};
use fairlab_backbones::blip::BlipBackbone;
use fairlab_backbones::clip::ClipBackbone;
use fairlab_backbones::hub_checkpoint::HubCheckpoint;
use fairlab_framework::config::PluginSpec;
use fairlab_framework::hub::{HubSettings, ModelFiles};
use fairlab_framework::{Backbone, ConfigError, Registry};

/// The fixtures' Hub cache (an `HF_HOME`'s `hub` folder).
fn hub_cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hf/hf-cache/hub")
}

fn offline() -> HubSettings {
    HubSettings {
        cache_dir: hub_cache(),
        offline: true,
        endpoint: "http://127.0.0.1:9".to_string(),
        token: None,
    }
}

/// The checkpoint of fixture `name` from its folder, or (`from_hub`) as `fairlab-fixtures/<name>`
/// from the Hub cache with no network.
fn checkpoint(kind: &str, name: &str, from_hub: bool) -> HubCheckpoint {
    let files = if from_hub {
        ModelFiles::resolve_with(&format!("fairlab-fixtures/{name}"), "main", offline()).unwrap()
    } else {
        ModelFiles::resolve_with(fixture(name).to_str().unwrap(), "main", offline()).unwrap()
    };
    HubCheckpoint::from_files(kind, files, Device::Cpu, DType::F32).unwrap()
}

/// The fixture's reference images through the backbone's own preprocessing, normalised.
fn pixels(backbone: &dyn Backbone, name: &str) -> Tensor {
    let images: Vec<_> = (0..4)
        .map(|i| image::open(fixture(name).join(format!("reference/img_{i}.png"))).unwrap())
        .collect();
    let unit = backbone.preprocessing().unit_batch(&images, &Device::Cpu).unwrap();
    backbone.preprocessing().normalize(&unit).unwrap()
}

fn texts(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(name).join("reference/texts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn clip_from_folder_and_hub_cache_matches_transformers() {
    let reference = load_reference("tiny-clip");
    let mut fingerprints = Vec::new();
    for from_hub in [false, true] {
        let clip = ClipBackbone::load(checkpoint("clip", "tiny-clip", from_hub)).unwrap();
        let pixel_values = pixels(&clip, "tiny-clip");
        assert!(max_abs_diff(&pixel_values, &reference["pixel_values"]) <= 2e-2);
        let image_embeds = clip.encode_images(&pixel_values).unwrap();
        assert!(max_abs_diff(&image_embeds, &reference["image_embeds"]) <= TOLERANCE);
        assert_eq!(clip.feature_dim(), 32);

        // The tokenizer reproduces transformers' ids: the longest text fills the context exactly
        // and the longer one is truncated with its end-of-text kept.
        let texts = texts("tiny-clip");
        let tokens = clip.tokenizer().encode(&texts, &Device::Cpu).unwrap();
        assert_eq!(
            tokens.input_ids.to_vec2::<u32>().unwrap(),
            reference["input_ids"].to_vec2::<u32>().unwrap()
        );
        let text_embeds = clip.encode_texts(&texts).unwrap().unwrap();
        assert!(max_abs_diff(&text_embeds, &reference["text_embeds"]) <= TOLERANCE);
        // Padding to a shorter batch does not change a text's embedding.
        let alone = clip.encode_texts(&texts[1..2]).unwrap().unwrap();
        assert!(max_abs_diff(&alone, &reference["text_embeds"].narrow(0, 1, 1).unwrap()) <= TOLERANCE);

        let scale = clip.logit_scale().unwrap().unwrap();
        assert!((scale - 3f64.exp()).abs() < 1e-4, "{scale}");
        fingerprints.push(clip.fingerprint());
    }
    assert_eq!(fingerprints[0], fingerprints[1]);
    assert!(fingerprints[0].starts_with("clip@sha256:"));
}

#[test]
fn blip_from_folder_and_hub_cache_matches_transformers() {
    let reference = load_reference("tiny-blip");
    for from_hub in [false, true] {
        let blip = BlipBackbone::load(checkpoint("blip", "tiny-blip", from_hub)).unwrap();
        let pixel_values = pixels(&blip, "tiny-blip");
        assert!(max_abs_diff(&pixel_values, &reference["pixel_values"]) <= 2e-2);
        let features = blip.encode_images(&pixel_values).unwrap();
        assert!(max_abs_diff(&features, &reference["image_embeds"]) <= TOLERANCE);
        assert_eq!(blip.feature_dim(), 64);
        assert!(!blip.has_text_encoder());

        let prompt = &texts("tiny-blip")[0];
        let ids = blip.caption_input_ids(prompt).unwrap();
        assert_eq!(
            ids.to_vec2::<u32>().unwrap()[0],
            reference["input_ids"].to_vec2::<u32>().unwrap()[0]
        );
        let logits = blip.caption_logits(&pixel_values, prompt).unwrap();
        assert!(max_abs_diff(&logits, &reference["logits"]) <= TOLERANCE);
    }
}

#[test]
fn plugins_are_registered_and_read_their_settings() {
    let mut registry = Registry::new();
    fairlab_backbones::register(&mut registry);
    let spec = |kind: &str, yaml: &str| {
        let params: serde_norway::Mapping = serde_norway::from_str(yaml).unwrap();
        PluginSpec::new("backbone", kind, params)
    };
    let folder = fixture("tiny-clip").display().to_string();
    let clip = registry
        .backbone(&spec(
            "clip",
            &format!("{{model: '{folder}', device: cpu, dtype: f32}}"),
        ))
        .unwrap();
    assert_eq!(clip.kind(), "clip");
    assert!(clip.has_text_encoder());
    let half = registry
        .backbone(&spec(
            "clip",
            &format!("{{model: '{folder}', device: cpu, dtype: bf16}}"),
        ))
        .unwrap();
    assert_eq!(half.dtype(), DType::BF16);

    let error = |yaml: &str| {
        let err = registry.backbone(&spec("clip", yaml)).map(|_| ()).unwrap_err();
        let config_error = err
            .chain()
            .find_map(|e| e.downcast_ref::<ConfigError>())
            .unwrap_or_else(|| panic!("not a ConfigError: {err:#}"));
        config_error.to_string()
    };
    let message = error(&format!("{{model: '{folder}', dtype: f64}}"));
    assert!(
        message.contains("backbone.dtype") && message.contains("f64"),
        "{message}"
    );
    let message = error("{model: ./no/such/folder}");
    assert!(
        message.contains("backbone.model") && message.contains("not found"),
        "{message}"
    );
    let message = error(&format!("{{model: '{folder}', weights: x}}"));
    assert!(message.contains("weights"), "{message}");
}

#[test]
fn broken_checkpoints_are_errors_naming_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture("tiny-clip")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let open = || {
        let files = ModelFiles::resolve_with(dir.path().to_str().unwrap(), "main", offline()).unwrap();
        HubCheckpoint::from_files("clip", files, Device::Cpu, DType::F32).and_then(ClipBackbone::load)
    };
    assert!(open().is_ok());

    // An unsupported activation names its key.
    let config_path = dir.path().join("config.json");
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, config.replacen("quick_gelu", "swishy", 1)).unwrap();
    let message = format!("{:#}", open().unwrap_err());
    assert!(
        message.contains("hidden_act") && message.contains("swishy"),
        "{message}"
    );
    std::fs::write(&config_path, &config).unwrap();

    // An image processor whose size disagrees with the vision tower.
    let processor_path = dir.path().join("preprocessor_config.json");
    let processor = std::fs::read_to_string(&processor_path).unwrap();
    std::fs::write(&processor_path, processor.replace("32", "48")).unwrap();
    let message = format!("{:#}", open().unwrap_err());
    assert!(
        message.contains("48x48") && message.contains("image_size is 32"),
        "{message}"
    );
    std::fs::write(&processor_path, &processor).unwrap();

    // No tokenizer: the text tower cannot be used, and the error says which file is missing.
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let message = format!("{:#}", open().unwrap_err());
    assert!(message.contains("tokenizer.json"), "{message}");

    // A repo that is not in the cache, offline.
    let files = ModelFiles::resolve_with("fairlab-fixtures/not-there", "main", offline()).unwrap();
    let message = format!(
        "{:#}",
        HubCheckpoint::from_files("clip", files, Device::Cpu, DType::F32).unwrap_err()
    );
    assert!(
        message.contains("HF_HUB_OFFLINE") && message.contains("models--fairlab-fixtures--not-there"),
        "{message}"
    );
}

#[test]
fn sharded_weights_load_like_a_single_file() {
    // tiny-clip's tensors split over two shards with a `model.safetensors.index.json`, as
    // `save_pretrained(max_shard_size=...)` writes large models.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture("tiny-clip")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.file_name().unwrap() != "model.safetensors" {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let tensors = candle_core::safetensors::load(fixture("tiny-clip").join("model.safetensors"), &Device::Cpu).unwrap();
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let mut weight_map = serde_json::Map::new();
    for (i, part) in names.chunks(names.len().div_ceil(2)).enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        let shard: Vec<(&str, &Tensor)> = part.iter().map(|n| (n.as_str(), &tensors[*n])).collect();
        let bytes = fairlab_framework::tensor_io::to_safetensors(&shard, Default::default()).unwrap();
        std::fs::write(dir.path().join(&file), bytes).unwrap();
        for name in part {
            weight_map.insert(name.to_string(), file.clone().into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.path().join("model.safetensors.index.json"), index.to_string()).unwrap();

    let files = ModelFiles::resolve_with(dir.path().to_str().unwrap(), "main", offline()).unwrap();
    let sharded =
        ClipBackbone::load(HubCheckpoint::from_files("clip", files, Device::Cpu, DType::F32).unwrap()).unwrap();
    let single = ClipBackbone::load(checkpoint("clip", "tiny-clip", false)).unwrap();
    let x = pixels(&single, "tiny-clip");
    let (a, b) = (single.encode_images(&x).unwrap(), sharded.encode_images(&x).unwrap());
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    assert_ne!(
        single.fingerprint(),
        sharded.fingerprint(),
        "the fingerprint hashes the files as stored"
    );
}

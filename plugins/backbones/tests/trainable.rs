//! `backbone.trainable`: the `clip` and `blip` plugins load the weights under the listed prefixes
//! as vars that the model computes with (gradients reach them, updates change the outputs) and
//! keep every other tensor frozen; bad prefixes and half dtypes are keyed errors.

#[allow(dead_code)] // Shared with the other backbone tests; this binary uses a subset.
mod common;

use candle_core::{DType, Device, Tensor};
use common::fixture;
use fairlab_backbones::hub_checkpoint::HubCheckpoint;
use fairlab_framework::config::PluginSpec;
use fairlab_framework::{Backbone, ConfigError, Registry};

/// FairCLIP's trainable towers (`model.transformer`, `model.visual`) in Hugging Face naming.
const FAIRCLIP: &str = "[vision_model, visual_projection, text_model.encoder]";

fn registry() -> Registry {
    let mut registry = Registry::new();
    fairlab_backbones::register(&mut registry);
    registry
}

fn spec(kind: &str, fixture_name: &str, extra: &str) -> PluginSpec {
    let folder = fixture(fixture_name).display().to_string();
    let yaml = format!("{{model: '{folder}', device: cpu, {extra}}}");
    PluginSpec::new("backbone", kind, serde_norway::from_str(&yaml).unwrap())
}

fn backbone(kind: &str, fixture_name: &str, extra: &str) -> Box<dyn Backbone> {
    registry().backbone(&spec(kind, fixture_name, extra)).unwrap()
}

/// The message of the [`ConfigError`] building this backbone fails with.
fn config_error(kind: &str, extra: &str) -> String {
    let err = registry()
        .backbone(&spec(kind, "tiny-clip", extra))
        .map(|_| ())
        .unwrap_err();
    err.chain()
        .find_map(|e| e.downcast_ref::<ConfigError>())
        .unwrap_or_else(|| panic!("not a ConfigError: {err:#}"))
        .to_string()
}

fn pixels(backbone: &dyn Backbone) -> Tensor {
    let size = backbone.preprocessing().height;
    let unit = Tensor::rand(0f32, 1f32, (2, 3, size, size), &Device::Cpu).unwrap();
    backbone.preprocessing().normalize(&unit).unwrap()
}

fn texts() -> Vec<String> {
    vec!["a chest x-ray".to_string(), "no finding".to_string()]
}

#[test]
fn fairclip_prefixes_select_the_towers_and_leave_embeddings_projection_and_scale_frozen() {
    let files = fairlab_framework::hub::ModelFiles::resolve(fixture("tiny-clip").to_str().unwrap(), "main").unwrap();
    let prefixes: Vec<String> = serde_norway::from_str(FAIRCLIP).unwrap();
    let checkpoint = HubCheckpoint::from_files("clip", files, Device::Cpu, DType::F32)
        .unwrap()
        .with_trainable(&prefixes)
        .unwrap();
    // 78 tensors: all but the token and position embeddings, final_layer_norm (2),
    // text_projection and logit_scale.
    assert_eq!(checkpoint.trainable.len(), 72);
    for frozen in [
        "text_model.embeddings.token_embedding.weight",
        "text_model.embeddings.position_embedding.weight",
        "text_model.final_layer_norm.weight",
        "text_projection.weight",
        "logit_scale",
    ] {
        assert!(!checkpoint.trainable.iter().any(|n| n == frozen), "{frozen}");
    }
    assert!(checkpoint.trainable.iter().all(|n| n.starts_with("vision_model.")
        || n.starts_with("visual_projection.")
        || n.starts_with("text_model.encoder.")));
}

#[test]
fn trainable_weights_compute_the_same_features_take_gradients_and_updates() {
    let frozen = backbone("clip", "tiny-clip", "dtype: f32");
    assert!(frozen.trainable_vars().is_empty());
    let tuned = backbone("clip", "tiny-clip", &format!("trainable: {FAIRCLIP}"));
    assert_eq!(tuned.trainable_vars().len(), 72);
    assert_eq!(tuned.fingerprint(), frozen.fingerprint(), "the feature cache key");

    let x = pixels(tuned.as_ref());
    let before = tuned.encode_images(&x).unwrap();
    let diff = (&before - frozen.encode_images(&x).unwrap()).unwrap().abs().unwrap();
    assert_eq!(diff.max_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);

    // Image features depend on the vision tower and the visual projection only.
    let grads = before.sum_all().unwrap().backward().unwrap();
    let vars = tuned.trainable_vars();
    let vision: Vec<_> = vars.iter().filter(|v| grads.get(v).is_some()).collect();
    let text_vars = 2 * 16; // 2 layers x 16 tensors of text_model.encoder.
    assert_eq!(vision.len(), 72 - text_vars);
    // Text features reach only text_model.encoder (the embeddings and projection are frozen).
    let text = tuned.encode_texts(&texts()).unwrap().unwrap();
    let grads = text.sum_all().unwrap().backward().unwrap();
    let with_grad = vars.iter().filter(|v| grads.get(v).is_some()).count();
    assert_eq!(with_grad, text_vars);

    // The model computes with the vars themselves: setting one changes the features.
    let var = vision[0];
    let noise = var.as_tensor().rand_like(0.0, 1.0).unwrap();
    var.set(&(var.as_tensor() + noise).unwrap()).unwrap();
    let after = tuned.encode_images(&x).unwrap();
    let moved = (&after - &before).unwrap().abs().unwrap().max_all().unwrap();
    assert!(moved.to_scalar::<f32>().unwrap() > 1e-4);
}

#[test]
fn blip_takes_trainable_prefixes_too() {
    let blip = backbone("blip", "tiny-blip", "trainable: [vision_model.encoder]");
    let vars = blip.trainable_vars();
    assert!(!vars.is_empty());
    let grads = blip
        .encode_images(&pixels(blip.as_ref()))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(vars.iter().all(|v| grads.get(v).is_some()));
}

#[test]
fn unknown_prefixes_and_half_dtypes_are_keyed_errors() {
    let message = config_error("clip", "trainable: [vision_model, text_tower]");
    assert!(
        message.contains("backbone.trainable")
            && message.contains("`text_tower` matches no tensor")
            && message.contains("logit_scale, text_model, text_projection, vision_model, visual_projection"),
        "{message}"
    );
    // A prefix matches whole components: `vision` is not `vision_model`.
    let message = config_error("clip", "trainable: [vision]");
    assert!(message.contains("`vision` matches no tensor"), "{message}");
    let message = config_error("clip", "dtype: f16, trainable: [vision_model]");
    assert!(
        message.contains("backbone.dtype") && message.contains("needs f32"),
        "{message}"
    );
}

//! CLIP against the outputs of transformers' `CLIPModel` on the tiny-clip fixture
//! (`tests/fixtures/hf/models/tiny-clip`, random weights): every reference tensor within 1e-4,
//! half-precision loads, gradients to the pixels, the pooling rule, and load errors.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use common::{check, check_gradient, max_abs_diff, weights_without, TOLERANCE};
use fairlab_backbones::clip::{l2_normalize, pooling_positions, ClipConfig, ClipModel};
use fairlab_backbones::transformer::Activation;

fn fixture() -> PathBuf {
    common::fixture("tiny-clip")
}

fn config() -> ClipConfig {
    ClipConfig::from_file(&fixture().join("config.json")).unwrap()
}

fn load(weights: &Path, dtype: DType) -> candle_core::Result<ClipModel> {
    // SAFETY: the fixture files are not modified while mapped.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], dtype, &Device::Cpu)? };
    ClipModel::new(vb, &config())
}

fn model() -> &'static ClipModel {
    static MODEL: OnceLock<ClipModel> = OnceLock::new();
    MODEL.get_or_init(|| load(&fixture().join("model.safetensors"), DType::F32).unwrap())
}

fn reference() -> &'static HashMap<String, Tensor> {
    static REFERENCE: OnceLock<HashMap<String, Tensor>> = OnceLock::new();
    REFERENCE.get_or_init(|| common::load_reference("tiny-clip"))
}

fn input(name: &str) -> Tensor {
    reference()[name].clone()
}

/// The first eos position of each reference row (`manifest.json` says 15, 3, 14, 15).
fn eos_positions() -> Vec<usize> {
    pooling_positions(&input("input_ids"), config().text_config.eos_token_id).unwrap()
}

#[test]
fn config_reads_the_fixture() {
    let cfg = config();
    assert_eq!(cfg.projection_dim, 32);
    assert_eq!(cfg.text_config.eos_token_id, 999);
    assert_eq!(cfg.text_config.hidden_act, Activation::QuickGelu);
    assert_eq!((cfg.vision_config.image_size, cfg.vision_config.patch_size), (32, 8));
    assert_eq!(eos_positions(), vec![15, 3, 14, 15]);
}

#[test]
fn vision_outputs_match_transformers() {
    let outputs = model().vision_outputs(&input("pixel_values")).unwrap();
    check(
        "vision_last_hidden_state",
        &outputs.last_hidden_state,
        &reference()["vision_last_hidden_state"],
    );
    check(
        "vision_pooler_output",
        &outputs.pooler_output,
        &reference()["vision_pooler_output"],
    );
}

#[test]
fn text_outputs_match_transformers_up_to_the_first_eos() {
    let outputs = model()
        .text_outputs(&input("input_ids"), Some(&input("attention_mask")))
        .unwrap();
    check(
        "text_pooler_output",
        &outputs.pooler_output,
        &reference()["text_pooler_output"],
    );
    let expected = &reference()["text_last_hidden_state"];
    let mut worst = 0f32;
    for (row, eos) in eos_positions().into_iter().enumerate() {
        let got = outputs.last_hidden_state.i((row, ..=eos)).unwrap();
        worst = worst.max(max_abs_diff(&got, &expected.i((row, ..=eos)).unwrap()));
    }
    eprintln!("text_last_hidden_state (positions <= first eos): max abs error {worst:e}");
    // The padding positions match too: the padding mask is applied as transformers applies it.
    check(
        "text_last_hidden_state (all positions)",
        &outputs.last_hidden_state,
        expected,
    );
    assert!(worst < TOLERANCE, "text_last_hidden_state differs by {worst}");
}

#[test]
fn embeddings_and_logits_match_transformers() {
    let model = model();
    let image_embeds = model.image_features(&input("pixel_values")).unwrap();
    let text_embeds = model
        .text_features(&input("input_ids"), Some(&input("attention_mask")))
        .unwrap();
    check("image_embeds", &image_embeds, &reference()["image_embeds"]);
    check("text_embeds", &text_embeds, &reference()["text_embeds"]);
    check(
        "image_embeds_normalized",
        &l2_normalize(&image_embeds).unwrap(),
        &reference()["image_embeds_normalized"],
    );
    check(
        "text_embeds_normalized",
        &l2_normalize(&text_embeds).unwrap(),
        &reference()["text_embeds_normalized"],
    );
    let logits = model.logits_per_image(&image_embeds, &text_embeds).unwrap();
    check("logits_per_image", &logits, &reference()["logits_per_image"]);
    check("logits_per_text", &logits.t().unwrap(), &reference()["logits_per_text"]);
    check(
        "logit_scale",
        &model.logit_scale().reshape(1).unwrap(),
        &reference()["logit_scale"],
    );
}

#[test]
fn only_padding_positions_depend_on_the_padding_mask() {
    let ids = input("input_ids");
    let with_mask = model().text_outputs(&ids, Some(&input("attention_mask"))).unwrap();
    let without = model().text_outputs(&ids, None).unwrap();
    // Attention is causal, so the pooled (first eos) row cannot see the padding after it ...
    assert!(max_abs_diff(&with_mask.pooler_output, &without.pooler_output) < 1e-6);
    // ... but the padding positions themselves attend to each other unless masked.
    let (with_mask, without) = (with_mask.last_hidden_state, without.last_hidden_state);
    assert!(max_abs_diff(&with_mask, &without) > 1e-3);
}

#[test]
fn half_precision_loads_stay_close_to_f32() {
    let weights = fixture().join("model.safetensors");
    let pixels = input("pixel_values");
    let (ids, mask) = (input("input_ids"), input("attention_mask"));
    let f32_image = model().image_features(&pixels).unwrap();
    let f32_text = model().text_features(&ids, Some(&mask)).unwrap();
    for (dtype, tolerance) in [(DType::F16, 2e-2), (DType::BF16, 1e-1)] {
        let half = load(&weights, dtype).unwrap();
        let image = half.image_features(&pixels).unwrap();
        let text = half.text_features(&ids, Some(&mask)).unwrap();
        assert_eq!((image.dtype(), text.dtype()), (dtype, dtype));
        let (image_err, text_err) = (max_abs_diff(&image, &f32_image), max_abs_diff(&text, &f32_text));
        eprintln!("{dtype:?}: image_embeds {image_err:e}, text_embeds {text_err:e}");
        assert!(
            image_err < tolerance && text_err < tolerance,
            "{dtype:?}: {image_err} / {text_err}"
        );
    }
}

#[test]
fn gradients_flow_back_to_the_pixels() {
    let model = load(&fixture().join("model.safetensors"), DType::F64).unwrap();
    let (ids, mask) = (input("input_ids"), input("attention_mask"));
    let text_embeds = model.text_features(&ids, Some(&mask)).unwrap();
    let pixels = input("pixel_values").to_dtype(DType::F64).unwrap();
    check_gradient(&pixels, |pixels| {
        let image_embeds = model.image_features(pixels).unwrap();
        let logits = model.logits_per_image(&image_embeds, &text_embeds).unwrap();
        logits.i((.., 0)).unwrap().sum_all().unwrap()
    });
}

#[test]
fn pooling_follows_the_legacy_and_first_eos_rules() {
    let ids = Tensor::new(&[[5u32, 9, 7, 9, 9], [5, 8, 2, 1, 1]], &Device::Cpu).unwrap();
    // First occurrence of eos 9; row 1 has none.
    assert!(pooling_positions(&ids, 9).unwrap_err().to_string().contains("row 1"));
    let ids = Tensor::new(&[[5u32, 9, 7, 9, 9], [5, 8, 2, 1, 1]], &Device::Cpu).unwrap();
    assert_eq!(pooling_positions(&ids.i(..1).unwrap(), 9).unwrap(), vec![1]);
    // eos_token_id 2 is the legacy rule: argmax of the ids (first maximum), whatever holds 2.
    assert_eq!(pooling_positions(&ids, 2).unwrap(), vec![1, 1]);
    // Padding with eos (pad = eos) keeps the first one.
    let padded = Tensor::new(&[[998i64, 4, 999, 999, 999]], &Device::Cpu).unwrap();
    assert_eq!(pooling_positions(&padded, 999).unwrap(), vec![2]);
}

#[test]
fn absent_keys_take_transformers_defaults() {
    let cfg = ClipConfig::from_json(serde_json::json!({})).unwrap();
    assert_eq!(cfg, ClipConfig::default());
    assert_eq!(cfg.projection_dim, 512);
    assert_eq!(
        (
            cfg.vision_config.hidden_size,
            cfg.vision_config.patch_size,
            cfg.vision_config.image_size
        ),
        (768, 32, 224)
    );
    assert_eq!(
        (
            cfg.text_config.vocab_size,
            cfg.text_config.max_position_embeddings,
            cfg.text_config.eos_token_id
        ),
        (49408, 77, 49407)
    );
    assert_eq!(cfg.text_config.layer_norm_eps, 1e-5);
    // The legacy `*_config_dict` keys override `*_config` key by key.
    let cfg = ClipConfig::from_json(serde_json::json!({
        "text_config": {"hidden_size": 64, "eos_token_id": 2},
        "text_config_dict": {"hidden_size": 96},
    }))
    .unwrap();
    assert_eq!((cfg.text_config.hidden_size, cfg.text_config.eos_token_id), (96, 2));
}

#[test]
fn unsupported_config_values_name_the_key() {
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("config.json")).unwrap()).unwrap();
    json["vision_config"]["hidden_act"] = "foo".into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, json.to_string()).unwrap();
    let err = format!("{:#}", ClipConfig::from_file(&path).unwrap_err());
    assert!(
        err.contains("vision_config.hidden_act: unsupported activation `foo`; expected one of quick_gelu"),
        "{err}"
    );
    json["vision_config"]["hidden_act"] = "gelu".into();
    json["text_config"]["num_attention_heads"] = 5.into();
    let err = format!("{:#}", ClipConfig::from_json(json).unwrap_err());
    assert!(err.contains("text_config.num_attention_heads"), "{err}");
}

#[test]
fn a_missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = weights_without("tiny-clip", "vision_model.embeddings.class_embedding", dir.path());
    let err = load(&path, DType::F32).unwrap_err().to_string();
    assert!(err.contains("vision_model.embeddings.class_embedding"), "{err}");
    assert!(err.contains("CLIP vision tower"), "{err}");
}

#[test]
fn wrong_input_sizes_are_errors() {
    let pixels = Tensor::zeros((1, 3, 64, 64), DType::F32, &Device::Cpu).unwrap();
    let err = model().image_features(&pixels).unwrap_err().to_string();
    assert!(err.contains("vision_config.image_size"), "{err}");
    let ids = Tensor::zeros((1, 17), DType::U32, &Device::Cpu).unwrap();
    let err = model().text_features(&ids, None).unwrap_err().to_string();
    assert!(err.contains("text_config.max_position_embeddings"), "{err}");
}

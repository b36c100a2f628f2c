//! BLIP against the outputs of transformers' `BlipForConditionalGeneration` on the tiny-blip
//! fixture (`tests/fixtures/hf/models/tiny-blip`, random weights, no stored tied decoder
//! weight): every reference tensor within 1e-4, batches, half-precision loads, gradients to the
//! pixels, and load errors.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use common::{check, check_gradient, max_abs_diff, weights_without};
use fairlab_backbones::blip::{BlipConfig, BlipForConditionalGeneration};
use fairlab_backbones::transformer::Activation;

fn fixture() -> PathBuf {
    common::fixture("tiny-blip")
}

fn config() -> BlipConfig {
    BlipConfig::from_file(&fixture().join("config.json")).unwrap()
}

fn load_with(weights: &Path, dtype: DType, cfg: &BlipConfig) -> candle_core::Result<BlipForConditionalGeneration> {
    // SAFETY: the weight files are not modified while mapped.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], dtype, &Device::Cpu)? };
    BlipForConditionalGeneration::new(vb, cfg)
}

fn model() -> &'static BlipForConditionalGeneration {
    static MODEL: OnceLock<BlipForConditionalGeneration> = OnceLock::new();
    MODEL.get_or_init(|| load_with(&fixture().join("model.safetensors"), DType::F32, &config()).unwrap())
}

fn reference() -> &'static HashMap<String, Tensor> {
    static REFERENCE: OnceLock<HashMap<String, Tensor>> = OnceLock::new();
    REFERENCE.get_or_init(|| common::load_reference("tiny-blip"))
}

fn input(name: &str) -> Tensor {
    reference()[name].clone()
}

#[test]
fn config_reads_the_fixture() {
    let cfg = config();
    assert_eq!(cfg.text_config.hidden_act, Activation::Gelu);
    assert_eq!(cfg.text_config.layer_norm_eps, 1e-12);
    assert_eq!(cfg.text_config.encoder_hidden_size, 64);
    assert_eq!(cfg.text_config.bos_token_id, Some(598));
    assert!(cfg.ties_word_embeddings());
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
    let image_features = model().image_features(&input("pixel_values")).unwrap();
    check("image_embeds", &image_features, &reference()["image_embeds"]);
}

#[test]
fn caption_logits_match_transformers() {
    let image_tokens = model()
        .vision_outputs(&input("pixel_values"))
        .unwrap()
        .last_hidden_state;
    let logits = model().text_logits(&input("input_ids"), &image_tokens).unwrap();
    check("logits", &logits, &reference()["logits"]);
}

#[test]
fn batched_rows_are_independent() {
    // Four different images with four different captions: each row of the batch must equal the
    // same row run alone.
    let image_tokens = model()
        .vision_outputs(&input("pixel_values"))
        .unwrap()
        .last_hidden_state;
    let ids: Vec<Vec<u32>> = input("input_ids").to_vec2().unwrap();
    let ids: Vec<Vec<u32>> = ids
        .iter()
        .enumerate()
        .map(|(row, tokens)| {
            let mut tokens = tokens.clone();
            tokens[1..].rotate_left(row);
            tokens
        })
        .collect();
    let ids = Tensor::new(ids, &Device::Cpu).unwrap();
    let batched = model().text_logits(&ids, &image_tokens).unwrap();
    for row in 0..4 {
        let single = model()
            .text_logits(&ids.i(row..=row).unwrap(), &image_tokens.i(row..=row).unwrap())
            .unwrap();
        assert!(
            max_abs_diff(&single, &batched.i(row..=row).unwrap()) < 1e-5,
            "row {row}"
        );
    }
    assert!(max_abs_diff(&batched.i(0).unwrap(), &batched.i(1).unwrap()) > 1e-2);
}

#[test]
fn half_precision_loads_stay_close_to_f32() {
    let weights = fixture().join("model.safetensors");
    let pixels = input("pixel_values");
    let f32_outputs = model().vision_outputs(&pixels).unwrap();
    let f32_logits = model()
        .text_logits(&input("input_ids"), &f32_outputs.last_hidden_state)
        .unwrap();
    for (dtype, tolerance) in [(DType::F16, 5e-2), (DType::BF16, 2e-1)] {
        let half = load_with(&weights, dtype, &config()).unwrap();
        let outputs = half.vision_outputs(&pixels).unwrap();
        let logits = half
            .text_logits(&input("input_ids"), &outputs.last_hidden_state)
            .unwrap();
        assert_eq!((outputs.pooler_output.dtype(), logits.dtype()), (dtype, dtype));
        let pooled_err = max_abs_diff(&outputs.pooler_output, &f32_outputs.pooler_output);
        let logits_err = max_abs_diff(&logits, &f32_logits);
        eprintln!("{dtype:?}: vision_pooler_output {pooled_err:e}, logits {logits_err:e}");
        assert!(
            pooled_err < tolerance && logits_err < tolerance,
            "{dtype:?}: {pooled_err} / {logits_err}"
        );
    }
}

#[test]
fn gradients_flow_back_to_the_pixels() {
    let model = load_with(&fixture().join("model.safetensors"), DType::F64, &config()).unwrap();
    let pixels = input("pixel_values").to_dtype(DType::F64).unwrap();
    check_gradient(&pixels, |pixels| {
        let outputs = model.vision_outputs(pixels).unwrap();
        let logits = model
            .text_logits(&input("input_ids"), &outputs.last_hidden_state)
            .unwrap();
        (logits.i((.., .., 5)).unwrap().sum_all().unwrap() + outputs.pooler_output.sum_all().unwrap()).unwrap()
    });
}

#[test]
fn absent_keys_take_transformers_defaults() {
    let cfg = BlipConfig::from_json(serde_json::json!({})).unwrap();
    assert_eq!(cfg.vision_config.image_size, 384);
    assert_eq!(cfg.vision_config.patch_size, 16);
    assert_eq!(cfg.text_config.vocab_size, 30524);
    assert_eq!(cfg.text_config.layer_norm_eps, 1e-12);
    assert!(cfg.text_config.is_decoder && cfg.ties_word_embeddings());
    // transformers overwrites the decoder's encoder_hidden_size with the vision width.
    let cfg = BlipConfig::from_json(serde_json::json!({
        "vision_config": {"hidden_size": 1024, "num_attention_heads": 16},
        "text_config": {"encoder_hidden_size": 768},
    }))
    .unwrap();
    assert_eq!(cfg.text_config.encoder_hidden_size, 1024);
}

#[test]
fn unsupported_config_values_name_the_key() {
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("config.json")).unwrap()).unwrap();
    json["text_config"]["hidden_act"] = "foo".into();
    let err = format!("{:#}", BlipConfig::from_json(json.clone()).unwrap_err());
    assert!(
        err.contains("text_config.hidden_act: unsupported activation `foo`"),
        "{err}"
    );
    json["text_config"]["hidden_act"] = "gelu".into();
    json["text_config"]["is_decoder"] = false.into();
    let err = format!("{:#}", BlipConfig::from_json(json).unwrap_err());
    assert!(err.contains("text_config.is_decoder"), "{err}");
}

#[test]
fn a_missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let weights = weights_without(
        "tiny-blip",
        "text_decoder.bert.encoder.layer.1.crossattention.self.key.weight",
        dir.path(),
    );
    let err = load_with(&weights, DType::F32, &config()).unwrap_err().to_string();
    assert!(
        err.contains("text_decoder.bert.encoder.layer.1.crossattention.self.key.weight"),
        "{err}"
    );
    assert!(err.contains("BLIP text decoder"), "{err}");
}

#[test]
fn an_untied_head_needs_its_decoder_weight() {
    let mut cfg = config();
    cfg.tie_word_embeddings = false;
    cfg.text_config.tie_word_embeddings = Some(false);
    let err = load_with(&fixture().join("model.safetensors"), DType::F32, &cfg)
        .unwrap_err()
        .to_string();
    assert!(err.contains("text_decoder.cls.predictions.decoder.weight"), "{err}");
}

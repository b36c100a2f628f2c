//! `Preprocessing::from_hf_processor_config` on the tiny CLIP and BLIP fixtures reproduces the
//! `pixel_values` that transformers' PIL image processors computed
//! (`tests/fixtures/hf/models/*/reference/reference.safetensors`).

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use fairlab_framework::preprocess::{Preprocessing, Resize};

/// The fixtures' budget is 2e-2 (one 8-bit level is 0.0150 in the green channel). Pillow's
/// resampling is reproduced exactly, so only float rounding in `x / 255` and the normalisation is
/// left.
const TOLERANCE: f32 = 1e-5;

/// The fixtures' `image_mean` and `image_std` (OpenAI CLIP's), as written in their configs.
const OPENAI_CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

fn fixture(model: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/hf/models")
        .join(model)
}

/// The reference tensor `name` of a fixture.
fn reference(model: &str, name: &str) -> Tensor {
    let path = fixture(model).join("reference/reference.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    tensors.remove(name).unwrap()
}

/// `reference/img_0..3.png` through `preprocessing`: `[4, 3, H, W]` normalised pixel values.
fn pixel_values(model: &str, preprocessing: &Preprocessing) -> Tensor {
    let images: Vec<_> = (0..4)
        .map(|i| image::open(fixture(model).join(format!("reference/img_{i}.png"))).unwrap())
        .collect();
    let unit = preprocessing.unit_batch(&images, &Device::Cpu).unwrap();
    preprocessing.normalize(&unit).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn tiny_clip_pixel_values_match_transformers() {
    let preprocessing = Preprocessing::from_hf_processor_config(&fixture("tiny-clip")).unwrap();
    assert_eq!(
        preprocessing,
        Preprocessing {
            height: 32,
            width: 32,
            resize: Resize::Bicubic,
            shortest_edge: Some(32),
            mean: OPENAI_CLIP_MEAN.map(|m| m as f32),
            std: OPENAI_CLIP_STD.map(|s| s as f32),
        }
    );
    let ours = pixel_values("tiny-clip", &preprocessing);
    let error = max_abs_diff(&ours, &reference("tiny-clip", "pixel_values"));
    let torchvision = max_abs_diff(&ours, &reference("tiny-clip", "pixel_values_torchvision"));
    eprintln!("tiny-clip: max |ours - pixel_values| = {error:e}, vs torchvision = {torchvision}");
    assert!(error <= TOLERANCE, "tiny-clip max abs error {error}");
}

#[test]
fn tiny_blip_pixel_values_match_transformers() {
    let dir = fixture("tiny-blip");
    let preprocessing = Preprocessing::from_hf_processor_config(&dir).unwrap();
    assert_eq!(
        preprocessing,
        Preprocessing {
            height: 32,
            width: 32,
            resize: Resize::Bicubic,
            shortest_edge: None,
            mean: OPENAI_CLIP_MEAN.map(|m| m as f32),
            std: OPENAI_CLIP_STD.map(|s| s as f32),
        }
    );
    // transformers 5 writes the same settings into processor_config.json.
    let from_processor = Preprocessing::from_hf_processor_config(&dir.join("processor_config.json")).unwrap();
    assert_eq!(from_processor, preprocessing);
    let ours = pixel_values("tiny-blip", &preprocessing);
    let error = max_abs_diff(&ours, &reference("tiny-blip", "pixel_values"));
    let torchvision = max_abs_diff(&ours, &reference("tiny-blip", "pixel_values_torchvision"));
    eprintln!("tiny-blip: max |ours - pixel_values| = {error:e}, vs torchvision = {torchvision}");
    assert!(error <= TOLERANCE, "tiny-blip max abs error {error}");
}

//! The benchmarks. `fairlab bench tracking` is in [`tracking`]; this file holds `fairlab bench
//! backbone`: image-feature throughput of CLIP's vision tower and the time of one DNE-style step
//! (forward + backward into an input-noise plane through the frozen encoder), as JSON lines that
//! `scripts/bench-backbone.sh` sets beside PyTorch's numbers from the same run.
//!
//! The weights are random (no pretrained CLIP can be had here) in the real architecture of
//! `openai/clip-vit-base-patch16`: compute does not depend on the values.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use clap::{Args, Subcommand, ValueEnum};
use fairlab_backbones::clip::{ClipConfig, ClipModel};
use fairlab_framework::device::{parse_dtype, select_device};
use fairlab_framework::preprocess::{OPENAI_CLIP_MEAN, OPENAI_CLIP_STD};
use fairlab_framework::ConfigError;

pub mod tracking;

/// The benchmarks.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// CLIP vision-tower throughput and DNE step time.
    Backbone(BackboneBenchArgs),
    /// Metric points per second to the MLflow server of MLFLOW_TRACKING_URI, logged one call per
    /// point, the cost of that call, and the server's own ceiling.
    Tracking(tracking::TrackingBenchArgs),
}

/// Architectures `fairlab bench backbone` can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Architecture {
    /// `openai/clip-vit-base-patch16`: ViT-B/16 at 224 px (86M vision parameters).
    VitB16,
    /// A 2-layer, 64-wide ViT at 32 px, to check the benchmark itself on a CPU in seconds.
    Tiny,
}

impl Architecture {
    /// The name on the command line and in the JSON records.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::VitB16 => "vit-b16",
            Architecture::Tiny => "tiny",
        }
    }
}

/// Arguments of `fairlab bench backbone`.
#[derive(Debug, Clone, Args)]
pub struct BackboneBenchArgs {
    /// The architecture.
    #[arg(long, value_enum, default_value_t = Architecture::VitB16)]
    pub arch: Architecture,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Comma-separated dtypes to measure.
    #[arg(long, default_value = "f32,bf16", value_delimiter = ',')]
    pub dtypes: Vec<String>,
    /// Images per forward pass for the throughput measurement.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Images per DNE step (DNE's default batch size).
    #[arg(long, default_value_t = 128)]
    pub dne_batch: usize,
    /// Untimed iterations before measuring (kernel compilation, allocator warm-up).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed iterations; the median is reported.
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Use TF32 tensor cores for f32 matmuls on CUDA (PyTorch's default is off).
    #[arg(long)]
    pub tf32: bool,
}

/// Run a benchmark, printing its results (JSON, or a table where the benchmark offers one).
pub fn run(command: &BenchCommand, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    match command {
        BenchCommand::Backbone(args) => backbone(args, out),
        BenchCommand::Tracking(args) => tracking::run(args, out),
    }
}

fn backbone(args: &BackboneBenchArgs, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    if args.batch == 0 || args.dne_batch == 0 || args.iters == 0 {
        return Err(ConfigError::new("--batch, --dne-batch and --iters must be at least 1").into());
    }
    let device = select_device(&args.device).map_err(|e| ConfigError::attach_key(e, "--device"))?;
    #[cfg(feature = "cuda")]
    candle_core::cuda::set_gemm_reduced_precision_f32(args.tf32);
    let config = ClipConfig::from_json(architecture(args.arch))?;
    let weights = random_weights(&config, &device)?;
    for name in &args.dtypes {
        let dtype = parse_dtype(name).map_err(|e| ConfigError::attach_key(e, "--dtypes"))?;
        let tensors = weights
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.to_dtype(dtype)?)))
            .collect::<candle_core::Result<HashMap<_, _>>>()?;
        let model = ClipModel::new(VarBuilder::from_tensors(tensors, dtype, &device), &config)?;
        let size = config.vision_config.image_size;
        let images = Tensor::randn(0f32, 1.0, (args.batch, 3, size, size), &device)?.to_dtype(dtype)?;
        let forward_s = median_seconds(&device, args.warmup, args.iters, || {
            model.image_features(&images)?;
            Ok(())
        })?;
        let step_s = dne_step_seconds(&model, dtype, &device, args)?;
        let record = serde_json::json!({
            "framework": "fairlab (candle)",
            "arch": args.arch.name(),
            "device": format!("{device:?}"),
            "dtype": name,
            "tf32": args.tf32,
            "batch": args.batch,
            "images_per_s": args.batch as f64 / forward_s,
            "forward_ms": forward_s * 1e3,
            "dne_batch": args.dne_batch,
            "dne_step_ms": step_s * 1e3,
        });
        writeln!(out, "{record}")?;
    }
    Ok(())
}

/// One DNE step: unit pixels plus a `[H, W]` noise plane shared by the channels, CLIP's
/// normalisation, the frozen tower, a linear sensitive-attribute head, BCE, and the gradient
/// with respect to the noise only (the weights are plain tensors, not variables).
fn dne_step_seconds(model: &ClipModel, dtype: DType, device: &Device, args: &BackboneBenchArgs) -> anyhow::Result<f64> {
    let size = model.config().vision_config.image_size;
    let dim = model.config().projection_dim;
    let unit = Tensor::rand(0f32, 1.0, (args.dne_batch, 3, size, size), device)?;
    let noise = Var::zeros((size, size), DType::F32, device)?;
    let head = Tensor::randn(0f32, 0.05, (dim, 1), device)?;
    let targets = Tensor::rand(0f32, 1.0, (args.dne_batch, 1), device)?
        .ge(0.5)?
        .to_dtype(DType::F32)?;
    let channels = |values: [f64; 3]| Tensor::new(&values.map(|v| v as f32), device)?.reshape((1, 3, 1, 1));
    let (mean, std) = (channels(OPENAI_CLIP_MEAN)?, channels(OPENAI_CLIP_STD)?);
    median_seconds(device, args.warmup, args.iters, || {
        let noised = unit.broadcast_add(noise.as_tensor())?;
        let x = noised.broadcast_sub(&mean)?.broadcast_div(&std)?.to_dtype(dtype)?;
        let logits = model.image_features(&x)?.to_dtype(DType::F32)?.matmul(&head)?;
        let loss = candle_nn::loss::binary_cross_entropy_with_logit(&logits, &targets)?;
        let grads = loss.backward()?;
        grads.get(noise.as_tensor()).context("no gradient reached the noise")?;
        Ok(())
    })
}

/// The median wall time of `iters` calls of `f` after `warmup` untimed ones, synchronising the
/// device around each.
fn median_seconds(
    device: &Device,
    warmup: usize,
    iters: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    device.synchronize()?;
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let start = Instant::now();
        f()?;
        device.synchronize()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The `config.json` of an architecture.
fn architecture(arch: Architecture) -> serde_json::Value {
    match arch {
        Architecture::VitB16 => serde_json::json!({
            "projection_dim": 512,
            "text_config": {"hidden_size": 512, "intermediate_size": 2048, "num_attention_heads": 8,
                             "num_hidden_layers": 12, "eos_token_id": 2},
            "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
                              "num_hidden_layers": 12, "image_size": 224, "patch_size": 16}
        }),
        Architecture::Tiny => serde_json::json!({
            "projection_dim": 32,
            "text_config": {"hidden_size": 48, "intermediate_size": 96, "num_attention_heads": 4,
                            "num_hidden_layers": 2, "vocab_size": 1000, "max_position_embeddings": 16},
            "vision_config": {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
                              "num_hidden_layers": 2, "image_size": 32, "patch_size": 8}
        }),
    }
}

/// Random f32 weights with the names and shapes `config` needs: N(0, 0.02²), layer-norm scales
/// N(1, 0.02²), `logit_scale` ln(100).
fn random_weights(config: &ClipConfig, device: &Device) -> anyhow::Result<HashMap<String, Tensor>> {
    let shapes = VarMap::new();
    ClipModel::new(VarBuilder::from_varmap(&shapes, DType::F32, &Device::Cpu), config)?;
    let vars = shapes.data().lock().expect("a poisoned VarMap lock");
    vars.iter()
        .map(|(name, var)| {
            let shape = var.shape();
            let t = if name == "logit_scale" {
                Tensor::full(100f32.ln(), shape, device)?
            } else if shape.rank() == 1 && name.contains("norm") && name.ends_with("weight") {
                Tensor::randn(1f32, 0.02, shape, device)?
            } else {
                Tensor::randn(0f32, 0.02, shape, device)?
            };
            Ok((name.clone(), t))
        })
        .collect()
}

//! Test doubles for fitting debiasers without images: an in-memory [`DataAccess`] over synthetic
//! features, a recording [`TrainingMonitor`] and a seeded generator of Gaussian features.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use fairlab_framework::config::PluginSpec;
use fairlab_framework::debiaser::{DataAccess, FitContext, Predictor, SplitData, TrainingMonitor};
use fairlab_framework::preprocess::{Preprocessing, Resize};
use fairlab_framework::{Backbone, Registry, Split};

/// A backbone that only exists to satisfy [`DataAccess::backbone`]: features are precomputed.
pub struct NoBackbone(Preprocessing);

impl Backbone for NoBackbone {
    fn kind(&self) -> &str {
        "none"
    }
    fn preprocessing(&self) -> &Preprocessing {
        &self.0
    }
    fn feature_dim(&self) -> usize {
        0
    }
    fn device(&self) -> &Device {
        &Device::Cpu
    }
    fn dtype(&self) -> DType {
        DType::F32
    }
    fn fingerprint(&self) -> String {
        "none".into()
    }
    fn encode_images(&self, _: &Tensor) -> anyhow::Result<Tensor> {
        anyhow::bail!("synthetic data has no images")
    }
}

/// One split: features `[N, D]` row-major plus labels and attribute columns.
pub struct SyntheticSplit {
    /// Row-major features.
    pub features: Vec<f32>,
    /// Feature dimension.
    pub dim: usize,
    /// Labels and attributes.
    pub data: SplitData,
}

/// Synthetic data for all three splits.
pub struct SyntheticData {
    backbone: NoBackbone,
    names: Vec<String>,
    splits: HashMap<Split, SyntheticSplit>,
}

impl SyntheticData {
    /// Data with these attribute names and splits (every split must be given).
    pub fn new(names: &[&str], splits: [(Split, SyntheticSplit); 3]) -> Self {
        let preprocessing = Preprocessing {
            height: 1,
            width: 1,
            resize: Resize::Bilinear,
            shortest_edge: None,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        Self {
            backbone: NoBackbone(preprocessing),
            names: names.iter().map(|n| n.to_string()).collect(),
            splits: splits.into_iter().collect(),
        }
    }
}

impl DataAccess for SyntheticData {
    fn backbone(&self) -> &dyn Backbone {
        &self.backbone
    }
    fn attribute_names(&self) -> &[String] {
        &self.names
    }
    fn split(&self, split: Split) -> &SplitData {
        &self.splits[&split].data
    }
    fn features(&self, split: Split) -> anyhow::Result<Tensor> {
        let s = &self.splits[&split];
        Ok(Tensor::from_slice(&s.features, (s.data.len(), s.dim), &Device::Cpu)?)
    }
    fn unit_pixels(&self, _: Split, _: usize, _: usize) -> anyhow::Result<Tensor> {
        anyhow::bail!("synthetic data has no images")
    }
}

/// Everything a debiaser reported.
#[derive(Default)]
pub struct Recorder {
    /// `(epoch, train_loss, val_scores)` per `epoch` call.
    pub epochs: Vec<(usize, f64, Option<Vec<f64>>)>,
    /// `(step, name, value)` per logged value.
    pub logs: Vec<(usize, String, f64)>,
    /// `(done, total)` per progress call.
    pub progress: Vec<(usize, usize)>,
}

impl Recorder {
    /// The values logged under `name`, in order.
    pub fn series(&self, name: &str) -> Vec<(usize, f64)> {
        self.logs.iter().filter(|l| l.1 == name).map(|l| (l.0, l.2)).collect()
    }
}

impl TrainingMonitor for Recorder {
    fn epoch(&mut self, epoch: usize, train_loss: f64, val_scores: Option<&[f64]>) -> anyhow::Result<()> {
        self.epochs.push((epoch, train_loss, val_scores.map(<[f64]>::to_vec)));
        Ok(())
    }
    fn log(&mut self, step: usize, values: &[(&str, f64)]) -> anyhow::Result<()> {
        self.logs.extend(values.iter().map(|(n, v)| (step, n.to_string(), *v)));
        Ok(())
    }
    fn progress(&mut self, done: usize, total: usize) {
        self.progress.push((done, total));
    }
}

/// A registry with the built-in optimisers and debiasers.
fn registry() -> Registry {
    let mut registry = Registry::new();
    fairlab_optimizers::register(&mut registry);
    fairlab_debiasers::register(&mut registry);
    registry
}

/// Run `f` with a fit context over `data` (CPU, the built-in plugins); what it returned and what
/// it reported, even when it failed.
pub fn with_context<T>(
    data: &SyntheticData,
    seed: u64,
    f: impl FnOnce(&mut FitContext<'_>) -> anyhow::Result<T>,
) -> (anyhow::Result<T>, Recorder) {
    let registry = registry();
    let mut recorder = Recorder::default();
    let mut ctx = FitContext {
        data,
        registry: &registry,
        device: Device::Cpu,
        seed,
        monitor: &mut recorder,
    };
    let result = f(&mut ctx);
    (result, recorder)
}

/// Build the `kind` debiaser with these YAML settings (a mapping, `{}` for the defaults) as the
/// experiment's `debiaser` section and fit it on `data`.
pub fn fit(
    kind: &str,
    settings: &str,
    data: &SyntheticData,
    seed: u64,
) -> (anyhow::Result<Box<dyn Predictor>>, Recorder) {
    let spec = PluginSpec::new("debiaser", kind, serde_norway::from_str(settings).unwrap());
    with_context(data, seed, |ctx| registry().debiaser(&spec)?.fit(ctx))
}

/// 37 training samples (10 for val and test) of 3 features whose label is a noisy linear rule;
/// attribute `grp` alternates `a`, `b`.
pub fn small_data() -> SyntheticData {
    let mut rng = Gaussian::new(7);
    let splits = [
        (Split::Train, noisy_rule(&mut rng, 37)),
        (Split::Val, noisy_rule(&mut rng, 10)),
        (Split::Test, noisy_rule(&mut rng, 10)),
    ];
    SyntheticData::new(&["grp"], splits)
}

fn noisy_rule(rng: &mut Gaussian, n: usize) -> SyntheticSplit {
    let mut features = Vec::new();
    let mut data = SplitData::default();
    for i in 0..n {
        let x: Vec<f32> = (0..3).map(|_| rng.normal() as f32).collect();
        let label = (x[0] - 0.5 * x[1] + 0.7 * rng.normal() as f32 > 0.0) as u8;
        features.extend(x);
        data.ids.push(format!("s{i}"));
        data.labels.push(label);
    }
    data.attributes = vec![(0..n).map(|i| ["a", "b"][i % 2].to_string()).collect()];
    SyntheticSplit { features, dim: 3, data }
}

/// A seeded SplitMix64 generator with standard normal draws (Box-Muller): stable across
/// platforms and dependency versions, so hard-coded expectations stay valid.
pub struct Gaussian(u64);

impl Gaussian {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A uniform draw in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal draw.
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

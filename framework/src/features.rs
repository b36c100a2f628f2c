//! Backbone feature extraction and its on-disk cache.
//!
//! Extracting features is the expensive part of a linear-probe experiment, and it depends only on
//! the backbone (architecture + weights), its preprocessing and the data. The cache key hashes
//! exactly those, so a second run (another seed, another method, another learning rate) skips
//! extraction. Files are safetensors (`train`, `val`, `test`: `[N, D]` f32) written atomically.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::backbone::Backbone;
use crate::dataset::{Dataset, Sample, Split};
use crate::tensor_io;

/// Bump when the cache file layout or the extraction semantics change.
const FORMAT: &str = "fairlab-features-v1";

/// Whether features came from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStatus {
    /// Read from this file.
    Hit(PathBuf),
    /// Extracted and written to this file.
    Stored(PathBuf),
    /// Extracted; caching is disabled.
    Disabled,
}

/// Features of every split, `[N, D]` f32 on the CPU.
pub type SplitFeatures = HashMap<Split, Tensor>;

/// The feature cache folder.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: Option<PathBuf>,
}

impl FeatureCache {
    /// A cache in `dir`, or none (always extract) when `dir` is `None`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// The cache key of a backbone + data combination.
    pub fn key(backbone: &dyn Backbone, dataset: &dyn Dataset) -> String {
        let mut h = Sha256::new();
        for part in [
            FORMAT,
            &backbone.fingerprint(),
            &backbone.preprocessing().fingerprint(),
            &format!("{:?}", backbone.dtype()),
            dataset.fingerprint(),
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        hex::encode(h.finalize())
    }

    /// Features of every split, from the cache when present, else extracted (and stored).
    pub fn get_or_extract(
        &self,
        backbone: &dyn Backbone,
        dataset: &dyn Dataset,
        batch_size: usize,
    ) -> anyhow::Result<(SplitFeatures, CacheStatus)> {
        let key = Self::key(backbone, dataset);
        let path = self.dir.as_ref().map(|d| d.join(format!("{key}.safetensors")));
        // Held until the features are stored: processes that need the same features (a sweep's
        // trials starting together) wait for one extraction instead of each doing it.
        let _entry_lock = self.dir.as_ref().and_then(|d| lock_entry(d, &key));
        if let Some(path) = path.as_ref().filter(|p| p.exists()) {
            match read(path) {
                Ok(features) => {
                    tracing::info!(path = %path.display(), "feature cache hit");
                    return Ok((features, CacheStatus::Hit(path.clone())));
                }
                Err(e) => tracing::warn!(path = %path.display(), "ignoring unreadable feature cache file: {e:#}"),
            }
        }
        let mut features = SplitFeatures::new();
        for split in Split::ALL {
            let samples = dataset.split(split);
            let bar = crate::progress::bar(samples.len() as u64, &format!("features ({split})"));
            let t = extract(backbone, dataset, &samples, batch_size, |n| bar.inc(n as u64))?;
            bar.finish_and_clear();
            features.insert(split, t);
        }
        let Some(path) = path else {
            return Ok((features, CacheStatus::Disabled));
        };
        let tensors: Vec<(&str, &Tensor)> = Split::ALL.iter().map(|s| (s.as_str(), &features[s])).collect();
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("backbone".to_string(), backbone.fingerprint()),
            ("preprocessing".to_string(), backbone.preprocessing().fingerprint()),
            (
                "dataset".to_string(),
                format!("{}@{}", dataset.name(), dataset.fingerprint()),
            ),
        ]);
        tensor_io::write_atomic(&path, &tensor_io::to_safetensors(&tensors, metadata)?)?;
        tracing::info!(path = %path.display(), "features stored in the cache");
        Ok((features, CacheStatus::Stored(path)))
    }
}

/// An exclusive lock on the cache entry `key` in `dir` (`<key>.lock`), waiting while another
/// process holds it. `None`, with a warning, when the lock file cannot be made (a read-only cache):
/// the caller then goes on unlocked.
fn lock_entry(dir: &Path, key: &str) -> Option<std::fs::File> {
    let path = dir.join(format!("{key}.lock"));
    let opened = std::fs::create_dir_all(dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
    });
    let file = match opened {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(path = %path.display(), "feature cache entry not locked: {e}");
            return None;
        }
    };
    match file.try_lock() {
        Ok(()) => Some(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::info!(path = %path.display(), "waiting for another process extracting the same features");
            file.lock().ok().map(|()| file)
        }
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::warn!(path = %path.display(), "feature cache entry not locked: {e}");
            None
        }
    }
}

fn read(path: &Path) -> anyhow::Result<SplitFeatures> {
    let (mut tensors, metadata) = tensor_io::load(path, &Device::Cpu)?;
    anyhow::ensure!(
        metadata.get("format").map(String::as_str) == Some(FORMAT),
        "not a {FORMAT} file"
    );
    Split::ALL
        .into_iter()
        .map(|s| {
            Ok((
                s,
                tensors
                    .remove(s.as_str())
                    .ok_or_else(|| anyhow::anyhow!("no `{s}` tensor"))?,
            ))
        })
        .collect()
}

/// Encode `samples` of `dataset` in batches (see [`encode_images`]).
pub fn extract(
    backbone: &dyn Backbone,
    dataset: &dyn Dataset,
    samples: &[&Sample],
    batch_size: usize,
    advance: impl FnMut(usize),
) -> anyhow::Result<Tensor> {
    encode_images(
        backbone,
        samples.len(),
        batch_size,
        |i| dataset.load_image(samples[i]),
        advance,
    )
}

/// Encode `count` images, image `i` being `load(i)`, in batches of `batch_size`: decode and
/// preprocess each batch in parallel, run the backbone, and return `[count, D]` f32 features on the
/// CPU. `advance` is called with the size of each batch done. The runner's feature extraction and
/// `fairlab embed` both go through here.
pub fn encode_images(
    backbone: &dyn Backbone,
    count: usize,
    batch_size: usize,
    load: impl Fn(usize) -> anyhow::Result<image::DynamicImage> + Sync,
    mut advance: impl FnMut(usize),
) -> anyhow::Result<Tensor> {
    anyhow::ensure!(
        batch_size > 0,
        crate::ConfigError::at_key("features.batch_size", "must be at least 1")
    );
    let mut parts = Vec::new();
    for start in (0..count).step_by(batch_size) {
        crate::interrupt::check()?;
        let end = (start + batch_size).min(count);
        let pixels = load_unit_pixels(backbone, start..end, &load)?;
        // Detached: a backbone with trainable vars would otherwise keep each batch's autograd
        // graph (every activation) alive with its features.
        parts.push(encode_unit(backbone, &pixels)?.detach().to_device(&Device::Cpu)?);
        advance(end - start);
    }
    if parts.is_empty() {
        return Ok(Tensor::zeros((0, backbone.feature_dim()), DType::F32, &Device::Cpu)?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}

/// Features `[B, D]` (f32, on the backbone's device) of unit-range pixels `[B, 3, H, W]`: the
/// backbone's normalisation, its dtype, its encoder. Differentiable in `unit` (DNE edits the pixels
/// before this step).
pub fn encode_unit(backbone: &dyn Backbone, unit: &Tensor) -> anyhow::Result<Tensor> {
    let x = backbone.preprocessing().normalize(unit)?.to_dtype(backbone.dtype())?;
    Ok(backbone.encode_images(&x)?.to_dtype(DType::F32)?)
}

/// Decode and preprocess images (in parallel) to unit-range pixels `[B, 3, H, W]` on the backbone's
/// device, before normalisation.
pub fn unit_pixels(backbone: &dyn Backbone, dataset: &dyn Dataset, samples: &[&Sample]) -> anyhow::Result<Tensor> {
    load_unit_pixels(backbone, 0..samples.len(), &|i| dataset.load_image(samples[i]))
}

/// Images `range` of `load`, decoded in parallel, as unit-range pixels on the backbone's device.
fn load_unit_pixels(
    backbone: &dyn Backbone,
    range: std::ops::Range<usize>,
    load: &(impl Fn(usize) -> anyhow::Result<image::DynamicImage> + Sync),
) -> anyhow::Result<Tensor> {
    let images = range.into_par_iter().map(load).collect::<anyhow::Result<Vec<_>>>()?;
    backbone.preprocessing().unit_batch(&images, backbone.device())
}

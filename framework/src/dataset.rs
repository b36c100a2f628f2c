//! The `Dataset` plugin kind: labelled images with named sensitive attributes and a split.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which part of the data a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Used to fit probes, noise and fine-tuned weights.
    Train,
    /// Used for per-epoch monitoring and model selection.
    Val,
    /// Held out; reported once at the end.
    Test,
}

impl Split {
    /// All splits in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The lowercase name used in files and metric keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// Parse `train`, `val` or `test`.
    pub fn parse(s: &str) -> Option<Split> {
        Split::ALL.into_iter().find(|split| split.as_str() == s)
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One labelled image.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Stable identifier (e.g. the image file name), unique within the dataset.
    pub id: String,
    /// Where the image file is.
    pub image_path: PathBuf,
    /// Binary target label (0 or 1).
    pub label: u8,
    /// Values of the sensitive attributes, in the order of [`Dataset::attribute_names`].
    pub attributes: Vec<String>,
    /// The split the sample belongs to.
    pub split: Split,
}

/// A collection of samples with sensitive attributes.
pub trait Dataset: Send + Sync {
    /// The plugin kind, e.g. `csv-images`.
    fn kind(&self) -> &str;

    /// Human-readable name (e.g. the data folder's name).
    fn name(&self) -> &str;

    /// Name of the binary target (e.g. `abnormal`).
    fn target_name(&self) -> &str;

    /// Names of the sensitive attributes, in the order used by [`Sample::attributes`].
    fn attribute_names(&self) -> &[String];

    /// All samples, in a stable order.
    fn samples(&self) -> &[Sample];

    /// Content hash over the sample list and the image bytes; part of the feature-cache key.
    fn fingerprint(&self) -> &str;

    /// Decode one sample's image.
    fn load_image(&self, sample: &Sample) -> anyhow::Result<image::DynamicImage>;

    /// The samples of one split, in stable order.
    fn split(&self, split: Split) -> Vec<&Sample> {
        self.samples().iter().filter(|s| s.split == split).collect()
    }
}

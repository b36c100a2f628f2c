//! `csv-images`: a dataset folder holding `labels.csv` (one row per image) and the images.
//!
//! ```yaml
//! dataset:
//!   kind: csv-images
//!   root: data/nih1000          # folder with labels.csv and images/
//!   target: label               # 0/1 column
//!   target_name: abnormal       # what label 1 means, for reports
//!   attributes: [sex, age_group]
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use fairlab_framework::{ConfigError, Dataset, Sample, Split};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// `csv-images` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvImagesConfig {
    /// The dataset folder.
    pub root: PathBuf,
    /// The CSV file, relative to `root`.
    #[serde(default = "default_labels")]
    pub labels: PathBuf,
    /// The image folder, relative to `root`.
    #[serde(default = "default_images")]
    pub images: PathBuf,
    /// Column with the image file name (relative to the image folder).
    #[serde(default = "default_image_column")]
    pub image_column: String,
    /// Column with the binary target (0/1).
    #[serde(default = "default_target")]
    pub target: String,
    /// What label 1 means (defaults to the target column's name).
    #[serde(default)]
    pub target_name: Option<String>,
    /// Columns holding sensitive attributes.
    pub attributes: Vec<String>,
    /// Column holding `train`/`val`/`test`.
    #[serde(default = "default_split_column")]
    pub split_column: String,
}

fn default_labels() -> PathBuf {
    PathBuf::from("labels.csv")
}
fn default_images() -> PathBuf {
    PathBuf::from("images")
}
fn default_image_column() -> String {
    "file".to_string()
}
fn default_target() -> String {
    "label".to_string()
}
fn default_split_column() -> String {
    "split".to_string()
}

/// A loaded `csv-images` dataset.
#[derive(Debug)]
pub struct CsvImages {
    name: String,
    target_name: String,
    attributes: Vec<String>,
    samples: Vec<Sample>,
    fingerprint: String,
}

impl CsvImages {
    /// Read and check `labels.csv`, check that every image exists, and hash the content.
    pub fn open(cfg: CsvImagesConfig) -> anyhow::Result<CsvImages> {
        let root = &cfg.root;
        if !root.is_dir() {
            anyhow::bail!(fairlab_framework::RunFailure::new(format!(
                "dataset folder {} does not exist (expected a folder with {} and {}/)",
                root.display(),
                cfg.labels.display(),
                cfg.images.display()
            )));
        }
        let csv_path = root.join(&cfg.labels);
        let mut reader = csv::Reader::from_path(&csv_path)
            .map_err(|e| fairlab_framework::RunFailure::new(format!("cannot read {}: {e}", csv_path.display())))?;
        let headers = reader
            .headers()
            .with_context(|| format!("reading the header of {}", csv_path.display()))?
            .clone();
        let column = |key: &str, name: &str| -> anyhow::Result<usize> {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                ConfigError::at_key(
                    format!("dataset.{key}"),
                    format!(
                        "column `{name}` is not in {}; its columns are: {}",
                        csv_path.display(),
                        headers.iter().collect::<Vec<_>>().join(", ")
                    ),
                )
                .into()
            })
        };
        let image_col = column("image_column", &cfg.image_column)?;
        let target_col = column("target", &cfg.target)?;
        let split_col = column("split_column", &cfg.split_column)?;
        let attr_cols = cfg
            .attributes
            .iter()
            .map(|a| column("attributes", a))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if cfg.attributes.is_empty() {
            return Err(
                ConfigError::at_key("dataset.attributes", "list at least one sensitive attribute column").into(),
            );
        }

        let image_dir = root.join(&cfg.images);
        let mut samples = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut hasher = Sha256::new();
        for (i, record) in reader.records().enumerate() {
            let row = i + 2; // 1-based, after the header
            let record = record.with_context(|| format!("{}: row {row}", csv_path.display()))?;
            let at = |col: usize| record.get(col).unwrap_or("");
            let bad = |col: usize, what: String| {
                fairlab_framework::RunFailure::new(format!(
                    "{}: row {row}, column `{}`: {what}",
                    csv_path.display(),
                    &headers[col]
                ))
            };
            let id = at(image_col).to_string();
            if let Some(first) = seen.insert(id.clone(), row) {
                anyhow::bail!(bad(image_col, format!("`{id}` already appears on row {first}")));
            }
            let label = match at(target_col) {
                "0" => 0,
                "1" => 1,
                other => anyhow::bail!(bad(target_col, format!("the target must be 0 or 1, got `{other}`"))),
            };
            let split = Split::parse(at(split_col)).ok_or_else(|| {
                bad(
                    split_col,
                    format!("the split must be train, val or test, got `{}`", at(split_col)),
                )
            })?;
            let attributes: Vec<String> = attr_cols.iter().map(|&c| at(c).to_string()).collect();
            for (&c, value) in attr_cols.iter().zip(&attributes) {
                if value.is_empty() {
                    anyhow::bail!(bad(c, "the attribute is empty".to_string()));
                }
            }
            let image_path = image_dir.join(&id);
            let bytes = std::fs::read(&image_path)
                .map_err(|e| bad(image_col, format!("cannot read image {}: {e}", image_path.display())))?;
            hasher.update(id.as_bytes());
            hasher.update([0, label, split as u8]);
            for a in &attributes {
                hasher.update(a.as_bytes());
                hasher.update([0]);
            }
            hasher.update(Sha256::digest(&bytes));
            samples.push(Sample {
                id,
                image_path,
                label,
                attributes,
                split,
            });
        }
        if samples.is_empty() {
            anyhow::bail!(fairlab_framework::RunFailure::new(format!(
                "{} has no rows",
                csv_path.display()
            )));
        }
        Ok(CsvImages {
            name: dataset_name(root),
            target_name: cfg.target_name.unwrap_or(cfg.target),
            attributes: cfg.attributes,
            samples,
            fingerprint: hex::encode(hasher.finalize()),
        })
    }
}

fn dataset_name(root: &Path) -> String {
    root.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| root.display().to_string())
}

impl Dataset for CsvImages {
    fn kind(&self) -> &str {
        "csv-images"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn target_name(&self) -> &str {
        &self.target_name
    }

    fn attribute_names(&self) -> &[String] {
        &self.attributes
    }

    fn samples(&self) -> &[Sample] {
        &self.samples
    }

    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn load_image(&self, sample: &Sample) -> anyhow::Result<image::DynamicImage> {
        image::open(&sample.image_path).map_err(|e| {
            fairlab_framework::RunFailure::new(format!("cannot decode image {}: {e}", sample.image_path.display()))
                .into()
        })
    }
}

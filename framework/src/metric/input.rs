//! [`PredictionSet`]: the labels, scores, optional hard predictions and sensitive attributes of a
//! set of samples, borrowed from wherever they live (the runner's splits, a parsed CSV).

use std::borrow::Cow;
use std::collections::HashMap;

use rayon::prelude::*;

/// The group of every sample under one sensitive attribute.
#[derive(Debug, Clone, Copy)]
pub enum GroupColumn<'a> {
    /// One value per sample, as text (e.g. the runner's attribute columns).
    Values(&'a [String]),
    /// Values interned to codes: sample `i` is in group `levels[codes[i]]` (e.g. a parsed CSV).
    Coded {
        /// The distinct group names.
        levels: &'a [String],
        /// One index into `levels` per sample.
        codes: &'a [u32],
    },
}

impl<'a> From<&'a [String]> for GroupColumn<'a> {
    fn from(values: &'a [String]) -> Self {
        GroupColumn::Values(values)
    }
}

impl<'a> From<&'a Vec<String>> for GroupColumn<'a> {
    fn from(values: &'a Vec<String>) -> Self {
        GroupColumn::Values(values)
    }
}

impl<'a> GroupColumn<'a> {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            GroupColumn::Values(values) => values.len(),
            GroupColumn::Coded { codes, .. } => codes.len(),
        }
    }

    /// Whether the column has no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The distinct group names and each sample's index into them; text values are interned.
    pub(crate) fn coded(&self) -> (Cow<'a, [String]>, Cow<'a, [u32]>) {
        match *self {
            GroupColumn::Coded { levels, codes } => (Cow::Borrowed(levels), Cow::Borrowed(codes)),
            GroupColumn::Values(values) => {
                let mut index: HashMap<&str, u32> = HashMap::new();
                let mut levels = Vec::new();
                let codes = values
                    .iter()
                    .map(|v| {
                        *index.entry(v.as_str()).or_insert_with(|| {
                            levels.push(v.clone());
                            (levels.len() - 1) as u32
                        })
                    })
                    .collect();
                (Cow::Owned(levels), Cow::Owned(codes))
            }
        }
    }
}

/// Predictions on a set of samples, column by column; every column has one entry per sample.
#[derive(Debug, Clone)]
pub struct PredictionSet<'a> {
    /// True labels, each 0 or 1.
    pub y_true: &'a [u8],
    /// Predicted probability of class 1, each in [0, 1].
    pub y_score: &'a [f64],
    /// Hard predictions, each 0 or 1; when absent, `y_score >= threshold`.
    pub y_pred: Option<&'a [u8]>,
    /// Sensitive attributes: name and the group of every sample.
    pub attributes: Vec<(&'a str, GroupColumn<'a>)>,
}

impl<'a> PredictionSet<'a> {
    /// Labels and scores, with no hard predictions and no attribute yet.
    pub fn new(y_true: &'a [u8], y_score: &'a [f64]) -> Self {
        Self {
            y_true,
            y_score,
            y_pred: None,
            attributes: Vec::new(),
        }
    }

    /// Use these hard predictions instead of thresholding the scores.
    pub fn with_predictions(mut self, y_pred: &'a [u8]) -> Self {
        self.y_pred = Some(y_pred);
        self
    }

    /// Add a sensitive attribute.
    pub fn with_attribute(mut self, name: &'a str, groups: impl Into<GroupColumn<'a>>) -> Self {
        self.attributes.push((name, groups.into()));
        self
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.y_true.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.y_true.is_empty()
    }

    /// Check that the columns line up and hold legal values: labels and predictions 0 or 1,
    /// scores in [0, 1], group codes within their levels.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        let n = self.len();
        let check_len = |what: &str, len: usize| {
            anyhow::ensure!(len == n, "{what} has {len} entries but y_true has {n}");
            Ok(())
        };
        check_len("y_score", self.y_score.len())?;
        if let Some(y_pred) = self.y_pred {
            check_len("y_pred", y_pred.len())?;
        }
        for (name, column) in &self.attributes {
            check_len(&format!("attribute `{name}`"), column.len())?;
        }
        check_binary("y_true", self.y_true)?;
        if let Some(y_pred) = self.y_pred {
            check_binary("y_pred", y_pred)?;
        }
        if let Some(i) = self.y_score.first_position(|s| !(0.0..=1.0).contains(s)) {
            anyhow::bail!(
                "y_score of sample {i} is {}, not a probability in [0, 1]",
                self.y_score[i]
            );
        }
        for (name, column) in &self.attributes {
            if let GroupColumn::Coded { levels, codes } = column {
                let limit = levels.len();
                if let Some(i) = codes.first_position(|&c| c as usize >= limit) {
                    anyhow::bail!(
                        "attribute `{name}`: sample {i} has group code {} but there are {limit} groups",
                        codes[i]
                    );
                }
            }
        }
        Ok(())
    }
}

fn check_binary(what: &str, values: &[u8]) -> anyhow::Result<()> {
    if let Some(i) = values.first_position(|&v| v > 1) {
        anyhow::bail!("{what} of sample {i} is {}, not 0 or 1", values[i]);
    }
    Ok(())
}

/// Samples per parallel work item of a scan.
const SCAN_CHUNK: usize = 1 << 16;

/// The first index whose value fails a check, scanned in parallel chunks (each a tight loop).
trait FirstPosition<T> {
    fn first_position(&self, bad: impl Fn(&T) -> bool + Sync) -> Option<usize>;
}

impl<T: Sync> FirstPosition<T> for [T] {
    fn first_position(&self, bad: impl Fn(&T) -> bool + Sync) -> Option<usize> {
        self.par_chunks(SCAN_CHUNK)
            .enumerate()
            .find_map_first(|(k, chunk)| chunk.iter().position(&bad).map(|i| k * SCAN_CHUNK + i))
    }
}

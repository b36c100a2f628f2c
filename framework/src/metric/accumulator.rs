//! [`Accumulator`]: the streaming state of an evaluation. One [`SetStats`] for all samples and one
//! per group of each attribute, updated in one pass per batch, mergeable across batches and
//! workers (burn's `update` / `compute` / `clear`, with `merge` for data split over workers).

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::input::PredictionSet;
use super::ranking::{merge_all, sort_scores, Ranking};
use super::set_stats::{Observation, SetStats, Tally};

/// The scores of a group's positives and of its negatives.
type ClassScores = (Vec<f64>, Vec<f64>);

/// Samples per parallel work item of the counting pass.
const CHUNK: usize = 1 << 16;

/// The statistics of one attribute: one [`SetStats`] per group seen, by group name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttributeStats {
    name: String,
    groups: BTreeMap<String, SetStats>,
}

impl AttributeStats {
    /// The attribute's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every group seen so far with its statistics, sorted by group name.
    pub fn groups(&self) -> &BTreeMap<String, SetStats> {
        &self.groups
    }
}

/// Statistics of every set an evaluation reports on, at one decision threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Accumulator {
    threshold: f64,
    overall: SetStats,
    attributes: Vec<AttributeStats>,
}

impl Accumulator {
    /// An empty state for the named attributes; samples without a hard prediction are predicted
    /// positive when `y_score >= threshold`.
    pub fn new<S: Into<String>>(threshold: f64, attributes: impl IntoIterator<Item = S>) -> anyhow::Result<Self> {
        anyhow::ensure!(
            threshold.is_finite(),
            "the decision threshold must be a finite number, got {threshold}"
        );
        let attributes: Vec<AttributeStats> = attributes
            .into_iter()
            .map(|name| AttributeStats {
                name: name.into(),
                groups: BTreeMap::new(),
            })
            .collect();
        for (k, a) in attributes.iter().enumerate() {
            anyhow::ensure!(
                !attributes[..k].iter().any(|b| b.name == a.name),
                "attribute `{}` is given twice",
                a.name
            );
        }
        Ok(Self {
            threshold,
            overall: SetStats::default(),
            attributes,
        })
    }

    /// The decision threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Statistics of all samples.
    pub fn overall(&self) -> &SetStats {
        &self.overall
    }

    /// Statistics per attribute, in the order given to [`Accumulator::new`].
    pub fn attributes(&self) -> &[AttributeStats] {
        &self.attributes
    }

    /// Add a batch of samples. Its attributes must be the accumulator's, in the same order.
    pub fn update(&mut self, batch: &PredictionSet<'_>) -> anyhow::Result<()> {
        batch.validate()?;
        let names: Vec<&str> = batch.attributes.iter().map(|(name, _)| *name).collect();
        let expected: Vec<&str> = self.attributes.iter().map(|a| a.name.as_str()).collect();
        anyhow::ensure!(
            names == expected,
            "the batch has attributes {names:?} but the accumulator expects {expected:?}"
        );
        let batch = batch_stats(batch, self.threshold);
        self.absorb(batch);
        Ok(())
    }

    /// Add the samples another accumulator has seen (e.g. another worker's share of the data).
    pub fn merge(&mut self, other: Accumulator) -> anyhow::Result<()> {
        anyhow::ensure!(
            other.threshold == self.threshold,
            "cannot merge statistics at threshold {} into statistics at threshold {}",
            other.threshold,
            self.threshold
        );
        let names = |a: &Accumulator| a.attributes.iter().map(|x| x.name.clone()).collect::<Vec<_>>();
        anyhow::ensure!(
            names(&other) == names(self),
            "cannot merge statistics of attributes {:?} into statistics of attributes {:?}",
            names(&other),
            names(self)
        );
        self.absorb(other);
        Ok(())
    }

    /// Forget every sample, keeping the threshold and the attribute names.
    pub fn clear(&mut self) {
        self.overall = SetStats::default();
        for a in &mut self.attributes {
            a.groups.clear();
        }
    }

    /// Merge a state over the same attributes (already checked) into this one.
    fn absorb(&mut self, other: Accumulator) {
        self.overall.merge(other.overall);
        for (mine, theirs) in self.attributes.iter_mut().zip(other.attributes) {
            for (group, stats) in theirs.groups {
                mine.groups.entry(group).or_default().merge(stats);
            }
        }
    }
}

/// The state of one validated batch: one counting pass (in parallel over chunks of samples), then
/// the scores of every set gathered and sorted.
fn batch_stats(batch: &PredictionSet<'_>, threshold: f64) -> Accumulator {
    let n = batch.len();
    let columns: Vec<_> = batch.attributes.iter().map(|(_, column)| column.coded()).collect();
    // Slot 0 is all samples; attribute `a`'s group `g` is slot `offsets[a] + g`.
    let mut offsets = Vec::with_capacity(columns.len());
    let mut slots = 1;
    for (levels, _) in &columns {
        offsets.push(slots);
        slots += levels.len();
    }
    let predicted = |i: usize| match batch.y_pred {
        Some(y_pred) => y_pred[i] == 1,
        None => batch.y_score[i] >= threshold,
    };

    let tallies = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let mut tallies = vec![Tally::default(); slots];
            for i in chunk * CHUNK..n.min((chunk + 1) * CHUNK) {
                let o = Observation::new(batch.y_true[i] == 1, batch.y_score[i], predicted(i));
                tallies[0].observe(&o);
                for ((_, codes), offset) in columns.iter().zip(&offsets) {
                    tallies[offset + codes[i] as usize].observe(&o);
                }
            }
            tallies
        })
        .reduce(
            || vec![Tally::default(); slots],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| x.merge(y));
                a
            },
        );

    // Scores per group and class, gathered in one pass per attribute, then all sorted in parallel.
    let gather = |codes: Option<&[u32]>, offset: usize, groups: usize| -> Vec<ClassScores> {
        let mut gathered: Vec<ClassScores> = (0..groups)
            .map(|g| {
                let confusion = tallies[offset + g].confusion();
                (
                    Vec::with_capacity(confusion.positives() as usize),
                    Vec::with_capacity(confusion.negatives() as usize),
                )
            })
            .collect();
        for i in 0..n {
            let (positives, negatives) = &mut gathered[codes.map_or(0, |c| c[i] as usize)];
            // `+ 0.0` turns -0.0 into 0.0 so that equal scores sort next to each other.
            let score = batch.y_score[i] + 0.0;
            if batch.y_true[i] == 1 {
                positives.push(score);
            } else {
                negatives.push(score);
            }
        }
        gathered
    };
    let mut scores: Vec<Vec<ClassScores>> = (0..columns.len())
        .into_par_iter()
        .map(|a| gather(Some(&columns[a].1), offsets[a], columns[a].0.len()))
        .collect();
    scores
        .par_iter_mut()
        .flat_map(|groups| groups.par_iter_mut())
        .flat_map_iter(|(positives, negatives)| [positives, negatives])
        .for_each(sort_scores);
    // All samples: the groups of the attribute with the fewest groups merged, or, without
    // attributes, gathered and sorted.
    let overall_ranking = match scores.iter().min_by_key(|groups| groups.len()) {
        Some(groups) => {
            let class = |pick: fn(&ClassScores) -> &[f64]| merge_all(&groups.iter().map(pick).collect::<Vec<_>>());
            let (positives, negatives) = rayon::join(|| class(|g| &g.0), || class(|g| &g.1));
            Ranking::from_sorted(positives, negatives)
        }
        None => {
            let (mut positives, mut negatives) = gather(None, 0, 1).pop().unwrap_or_default();
            rayon::join(|| sort_scores(&mut positives), || sort_scores(&mut negatives));
            Ranking::from_sorted(positives, negatives)
        }
    };
    let rankings = scores.into_iter().map(|groups| {
        groups
            .into_iter()
            .map(|(p, q)| Ranking::from_sorted(p, q))
            .collect::<Vec<_>>()
    });

    let overall = SetStats::new(tallies[0], overall_ranking);
    let attributes = batch
        .attributes
        .iter()
        .zip(&columns)
        .zip(&offsets)
        .zip(rankings)
        .map(|((((name, _), (levels, _)), &offset), ranking)| {
            let mut groups = BTreeMap::<String, SetStats>::new();
            for (g, (level, ranking)) in levels.iter().zip(ranking).enumerate() {
                let tally = tallies[offset + g];
                // Levels no sample uses are absent groups; a level listed twice is one group.
                if tally.confusion().total() > 0 {
                    groups
                        .entry(level.clone())
                        .or_default()
                        .merge(SetStats::new(tally, ranking));
                }
            }
            AttributeStats {
                name: name.to_string(),
                groups,
            }
        })
        .collect();
    Accumulator {
        threshold,
        overall,
        attributes,
    }
}

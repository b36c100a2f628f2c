//! Linear probes (logistic regression on frozen features) and the one training loop shared by
//! every method that trains a classifier head: ERM, the resampling and group-DRO baselines, DNE's
//! sensitive-attribute classifier and final probe.
//!
//! A method customises [`train_probe_with`] through [`ProbeTraining`]: a [`BatchPlan`] decides which
//! samples each mini-batch holds ([`Shuffled`] chunks, [`WeightedSampling`] with replacement), a
//! [`BatchLoss`] turns a batch's logits into the loss ([`MeanBce`], or a method's own, which may
//! keep state, read other samples through [`Batch::features`] and log values per epoch), and a
//! [`Report`] says whether the probe is the experiment's target model or an auxiliary one.

mod config;
mod groups;
mod linear;
mod loss;
mod plan;
mod predictor;
mod training;

pub use config::ProbeConfig;
pub use groups::{attribute_column, attribute_name, Groups};
pub use linear::LinearProbe;
pub use loss::{bce_per_sample, bce_with_logits, Batch, BatchLoss, MeanBce};
pub use plan::{BatchPlan, Shuffled, WeightedSampling};
pub use predictor::{fit_target_probe, ProbePredictor};
pub use training::{train_probe, train_probe_with, ProbeTraining, Report};

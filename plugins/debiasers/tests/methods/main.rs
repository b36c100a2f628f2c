//! The probe-based debiasers fitted end to end on synthetic features.

mod erm;
mod rebalancing;
mod reporting;
mod support;

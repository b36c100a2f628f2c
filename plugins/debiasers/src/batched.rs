//! A whole split's images through a function in batches, for methods that change what the
//! backbone sees or computes (DNE's noise, FairCLIP's fine-tuned weights) and so cannot use the
//! runner's cached features.

use candle_core::Tensor;
use fairlab_framework::debiaser::DataAccess;
use fairlab_framework::Split;

/// Images per batch.
pub const BATCH: usize = 64;

/// `f` applied to the unit-range pixels `[b, 3, H, W]` of `split` (see
/// [`DataAccess::unit_pixels`]) in batches of [`BATCH`] images, in the split's order; the
/// results, detached, concatenated along dimension 0. Checks for an interrupt between batches.
pub fn map_split(
    data: &dyn DataAccess,
    split: Split,
    f: impl Fn(&Tensor) -> anyhow::Result<Tensor>,
) -> anyhow::Result<Tensor> {
    let n = data.split(split).len();
    let mut parts = Vec::new();
    for start in (0..n).step_by(BATCH) {
        fairlab_framework::interrupt::check()?;
        parts.push(f(&data.unit_pixels(split, start, BATCH)?)?.detach());
    }
    Ok(Tensor::cat(&parts, 0)?)
}

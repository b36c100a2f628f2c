//! Which training samples each mini-batch of an epoch holds.

use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Decides the mini-batches of each epoch. The training loop seeds one generator from the
/// experiment seed and passes it to every call, so a plan is deterministic given the seed.
pub trait BatchPlan {
    /// The mini-batches of the next epoch over a training set of `n` samples, as sample indices
    /// (each batch at most `batch_size` long, none empty).
    fn epoch(&mut self, n: usize, batch_size: usize, rng: &mut StdRng) -> anyhow::Result<Vec<Vec<u32>>>;
}

/// Every sample once per epoch, in a fresh random order cut into consecutive batches (the last
/// one shorter). Each epoch reshuffles the previous epoch's order.
#[derive(Debug, Clone, Default)]
pub struct Shuffled {
    order: Vec<u32>,
}

impl BatchPlan for Shuffled {
    fn epoch(&mut self, n: usize, batch_size: usize, rng: &mut StdRng) -> anyhow::Result<Vec<Vec<u32>>> {
        if self.order.len() != n {
            self.order = (0..n as u32).collect();
        }
        self.order.shuffle(rng);
        Ok(self.order.chunks(batch_size).map(<[u32]>::to_vec).collect())
    }
}

/// `n` samples per epoch drawn independently with replacement, sample `i` with probability
/// proportional to `weights[i]`, cut into consecutive batches.
#[derive(Debug, Clone)]
pub struct WeightedSampling {
    len: usize,
    index: WeightedIndex<f64>,
}

impl WeightedSampling {
    /// Sampling with these per-sample weights (non-negative, finite, not all zero).
    pub fn new(weights: &[f64]) -> anyhow::Result<Self> {
        let index = WeightedIndex::new(weights)
            .map_err(|e| anyhow::anyhow!("invalid sampling weights ({} samples): {e}", weights.len()))?;
        Ok(Self {
            len: weights.len(),
            index,
        })
    }
}

impl BatchPlan for WeightedSampling {
    fn epoch(&mut self, n: usize, batch_size: usize, rng: &mut StdRng) -> anyhow::Result<Vec<Vec<u32>>> {
        anyhow::ensure!(
            n == self.len,
            "the sampling weights cover {} samples but the training set has {n}",
            self.len
        );
        let draws: Vec<u32> = (0..n).map(|_| self.index.sample(rng) as u32).collect();
        Ok(draws.chunks(batch_size).map(<[u32]>::to_vec).collect())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn shuffled_visits_every_sample_once_per_epoch_in_a_new_order() {
        let mut plan = Shuffled::default();
        let mut rng = StdRng::seed_from_u64(1);
        let first = plan.epoch(10, 4, &mut rng).unwrap();
        assert_eq!(first.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
        let mut seen: Vec<u32> = first.concat();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        let second = plan.epoch(10, 4, &mut rng).unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn weighted_sampling_draws_in_proportion_to_the_weights() {
        let weights = [1.0, 3.0, 0.0, 4.0];
        let mut plan = WeightedSampling::new(&weights).unwrap();
        let mut rng = StdRng::seed_from_u64(5);
        let mut counts = [0usize; 4];
        for _ in 0..20_000 {
            let batches = plan.epoch(4, 3, &mut rng).unwrap();
            assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [3, 1]);
            batches.concat().into_iter().for_each(|i| counts[i as usize] += 1);
        }
        let total = 80_000.0;
        for (c, w) in counts.iter().zip(weights) {
            assert!((*c as f64 / total - w / 8.0).abs() < 0.01, "{counts:?}");
        }
        assert!(WeightedSampling::new(&[0.0, 0.0]).is_err());
        assert!(plan.epoch(5, 3, &mut rng).is_err());
    }
}

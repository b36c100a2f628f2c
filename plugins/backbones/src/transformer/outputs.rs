//! The outputs of a transformer tower.

use candle_core::Tensor;

/// A tower's sequence output and pooled output, as in transformers' `BaseModelOutputWithPooling`.
/// Which normalisation each one has is model-specific and documented where it is produced.
#[derive(Debug, Clone)]
pub struct PooledOutputs {
    /// `[B, T, D]`: one vector per token.
    pub last_hidden_state: Tensor,
    /// `[B, D]`: one vector per sequence.
    pub pooler_output: Tensor,
}

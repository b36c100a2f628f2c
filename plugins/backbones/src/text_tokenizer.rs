//! A Hugging Face `tokenizer.json` turned into model inputs: truncated to the text tower's context
//! length (special tokens kept), padded to the longest text of a batch, as `input_ids` and
//! `attention_mask` tensors.

use std::path::{Path, PathBuf};

use anyhow::Context;
use candle_core::{Device, Tensor};
use fairlab_framework::ConfigError;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// A tokenizer with the truncation and padding a text tower needs.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    max_len: usize,
    pad_id: u32,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("max_len", &self.max_len)
            .field("pad_id", &self.pad_id)
            .finish_non_exhaustive()
    }
}

/// The token ids and attention mask of a batch of texts, `[N, T]` u32 each (mask: 1 = token,
/// 0 = padding).
#[derive(Debug, Clone)]
pub struct TokenizedTexts {
    /// Token ids, padded on the right.
    pub input_ids: Tensor,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Tensor,
}

impl TextTokenizer {
    /// Load `tokenizer.json` and set truncation to `max_len` tokens (the tower's
    /// `max_position_embeddings`; special tokens count and stay) and padding with `pad_id`.
    /// The padding token is the `pad_token` named by the first of `special_token_files`
    /// (`special_tokens_map.json`, `tokenizer_config.json`) that names one the vocabulary knows,
    /// else `fallback_pad_id` (the text config's `pad_token_id`).
    pub fn from_file(
        path: &Path,
        special_token_files: &[PathBuf],
        max_len: usize,
        fallback_pad_id: u32,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(max_len > 0, "a text tower with a context of 0 tokens");
        let mut inner = Tokenizer::from_file(path)
            .map_err(|e| ConfigError::new(format!("{}: not a readable tokenizer.json: {e}", path.display())))?;
        let mut pad_id = fallback_pad_id;
        for file in special_token_files {
            if let Some(id) = pad_token(file)?.and_then(|token| inner.token_to_id(&token)) {
                pad_id = id;
                break;
            }
        }
        let pad_token = inner.id_to_token(pad_id).unwrap_or_default();
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| anyhow::anyhow!("{}: cannot truncate to {max_len} tokens: {e}", path.display()))?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token,
            ..Default::default()
        }));
        Ok(Self { inner, max_len, pad_id })
    }

    /// The context length texts are truncated to.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The id padding uses.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Tokenize `texts` (with the model's special tokens) on `device`.
    pub fn encode(&self, texts: &[String], device: &Device) -> anyhow::Result<TokenizedTexts> {
        anyhow::ensure!(!texts.is_empty(), "no text to encode");
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow::anyhow!("cannot tokenize: {e}"))?;
        let len = encodings[0].get_ids().len();
        let mut ids = Vec::with_capacity(texts.len() * len);
        let mut mask = Vec::with_capacity(texts.len() * len);
        for encoding in &encodings {
            ids.extend_from_slice(encoding.get_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        Ok(TokenizedTexts {
            input_ids: Tensor::from_vec(ids, (texts.len(), len), device)?,
            attention_mask: Tensor::from_vec(mask, (texts.len(), len), device)?,
        })
    }
}

/// The `pad_token` a `special_tokens_map.json` or `tokenizer_config.json` names (a string or an
/// `{"content": ...}` object), if any.
fn pad_token(file: &Path) -> anyhow::Result<Option<String>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ConfigError::new(format!("{}: not valid JSON: {e}", file.display())))?;
    Ok(match json.get("pad_token") {
        Some(serde_json::Value::String(token)) => Some(token.clone()),
        Some(other) => other.get("content").and_then(|c| c.as_str()).map(str::to_string),
        None => None,
    })
}

//! A byte-level BPE tokenizer (Radford et al. 2019, GPT-2 §2.2; Sennrich et al. 2016) trained on
//! the corpus with the `tokenizers` crate and saved as `tokenizer.json`.
//!
//! Special tokens: [`EOS`] ends a sequence (and pads), [`THINK_OPEN`]/[`THINK_CLOSE`] delimit the
//! reasoning, as in DeepSeek-R1's template.

use std::path::Path;

use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::AddedToken;

/// End of sequence (also used as padding, which the loss masks out).
pub const EOS: &str = "<|eos|>";
/// Opens the reasoning.
pub const THINK_OPEN: &str = "<think>";
/// Closes the reasoning.
pub const THINK_CLOSE: &str = "</think>";

/// Errors from training, saving, loading or using the tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// An error reported by the `tokenizers` crate.
    #[error("tokenizer {action}: {message}")]
    Backend {
        /// What was being done.
        action: &'static str,
        /// The crate's message.
        message: String,
    },
    /// A loaded tokenizer lacks one of the special tokens.
    #[error("tokenizer has no special token {0}")]
    MissingSpecial(&'static str),
}

fn backend(action: &'static str) -> impl Fn(tokenizers::Error) -> TokenizerError {
    move |e| TokenizerError::Backend {
        action,
        message: e.to_string(),
    }
}

/// The trained tokenizer and its special token ids.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    eos: u32,
    think_open: u32,
    think_close: u32,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("eos", &self.eos)
            .finish()
    }
}

impl Tokenizer {
    /// Train a byte-level BPE of at most `vocab_size` tokens (special tokens included) on `texts`.
    pub fn train<I, S>(texts: I, vocab_size: usize) -> Result<Self, TokenizerError>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
    {
        let specials = [EOS, THINK_OPEN, THINK_CLOSE]
            .iter()
            .map(|t| AddedToken::from(*t, true))
            .collect::<Vec<_>>();
        let trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(specials)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut inner = tokenizers::Tokenizer::new(BPE::default());
        inner.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        inner.with_decoder(Some(ByteLevel::default()));
        let mut trainer = TrainerWrapper::BpeTrainer(trainer);
        inner
            .train(&mut trainer, texts)
            .map_err(backend("training"))?;
        Self::from_inner(inner)
    }

    fn from_inner(inner: tokenizers::Tokenizer) -> Result<Self, TokenizerError> {
        let id = |t: &'static str| {
            inner
                .token_to_id(t)
                .ok_or(TokenizerError::MissingSpecial(t))
        };
        Ok(Self {
            eos: id(EOS)?,
            think_open: id(THINK_OPEN)?,
            think_close: id(THINK_CLOSE)?,
            inner,
        })
    }

    /// Load a `tokenizer.json`.
    pub fn load(path: &Path) -> Result<Self, TokenizerError> {
        Self::from_inner(tokenizers::Tokenizer::from_file(path).map_err(backend("loading"))?)
    }

    /// Save as `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<(), TokenizerError> {
        self.inner.save(path, false).map_err(backend("saving"))
    }

    /// Token ids of `text` (special tokens in the text are recognised).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        Ok(self
            .inner
            .encode(text, false)
            .map_err(backend("encoding"))?
            .get_ids()
            .to_vec())
    }

    /// The text of `ids`, special tokens kept.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner.decode(ids, false).map_err(backend("decoding"))
    }

    /// Number of tokens, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The end-of-sequence id.
    pub fn eos(&self) -> u32 {
        self.eos
    }

    /// The `<think>` id.
    pub fn think_open(&self) -> u32 {
        self.think_open
    }

    /// The `</think>` id.
    pub fn think_close(&self) -> u32 {
        self.think_close
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        (0..200)
            .map(|i| format!("def solve(xs):\n    return sorted(xs) + [{i}]\n"))
            .collect()
    }

    #[test]
    fn round_trips_text_with_special_tokens_and_unseen_bytes() {
        let tokenizer = Tokenizer::train(corpus().into_iter(), 300).unwrap();
        assert!(tokenizer.vocab_size() <= 300);
        let text =
            "<think>sort, then add</think>\n```python\ndef f(é):\n\treturn 'ß→∑'\n```<|eos|>";
        let ids = tokenizer.encode(text).unwrap();
        assert_eq!(ids[0], tokenizer.think_open());
        assert_eq!(*ids.last().unwrap(), tokenizer.eos());
        assert!(ids.contains(&tokenizer.think_close()));
        assert_eq!(tokenizer.decode(&ids).unwrap(), text);
    }

    #[test]
    fn merges_learn_the_corpus_and_survive_save_and_load() {
        let tokenizer = Tokenizer::train(corpus().into_iter(), 300).unwrap();
        let line = "def solve(xs):\n    return sorted(xs)";
        let ids = tokenizer.encode(line).unwrap();
        assert!(
            ids.len() * 3 < line.len(),
            "{} tokens for {} bytes",
            ids.len(),
            line.len()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        tokenizer.save(&path).unwrap();
        let loaded = Tokenizer::load(&path).unwrap();
        assert_eq!(loaded.encode(line).unwrap(), ids);
        assert_eq!(loaded.eos(), tokenizer.eos());
    }
}

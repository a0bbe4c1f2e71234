//! The subword tokenizer: a Hugging Face `tokenizers` WordPiece model trained on the training
//! split and shipped inside the model artifact, so serving splits text exactly as training did.
//!
//! Training is not bit-reproducible: the trainer breaks ties between equally frequent merges in
//! hash-map order, which is random per process. Pin a trained tokenizer to reproduce a model.

use tokenizers::models::TrainerWrapper;
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::normalizers::{Lowercase, NFKC, Sequence};
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::{AddedToken, Tokenizer};

/// Errors from training or loading the subword tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum SubwordError {
    /// Training the vocabulary failed.
    #[error("training the subword tokenizer failed: {0}")]
    Train(String),
    /// A stored tokenizer could not be read back.
    #[error("the stored subword tokenizer is invalid: {0}")]
    Load(String),
    /// Encoding text failed.
    #[error("subword encoding failed: {0}")]
    Encode(String),
}

/// A trained WordPiece tokenizer (normaliser NFKC + lower case, whitespace/punctuation
/// pre-tokenizer, subword vocabulary).
#[derive(Clone)]
pub struct SubwordTokenizer {
    inner: Tokenizer,
}

impl std::fmt::Debug for SubwordTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubwordTokenizer")
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

const UNKNOWN: &str = "[UNK]";

impl SubwordTokenizer {
    /// Trains a vocabulary of at most `vocab_size` subwords on `texts`.
    pub fn train<I, S>(texts: I, vocab_size: usize) -> Result<Self, SubwordError>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
    {
        let model = WordPiece::builder()
            .unk_token(UNKNOWN.to_owned())
            .build()
            .map_err(|e| SubwordError::Train(e.to_string()))?;
        let mut tokenizer = Tokenizer::new(model);
        tokenizer
            .with_normalizer(Some(Sequence::new(vec![NFKC.into(), Lowercase.into()])))
            .map_err(|e| SubwordError::Train(e.to_string()))?
            .with_pre_tokenizer(Some(Whitespace {}));
        let trainer = WordPieceTrainer::builder()
            .vocab_size(vocab_size)
            .min_frequency(3)
            .limit_alphabet(200)
            .show_progress(false)
            .special_tokens(vec![AddedToken::from(UNKNOWN, true)])
            .build();
        let mut trainer = TrainerWrapper::from(trainer);
        tokenizer
            .train(&mut trainer, texts)
            .map_err(|e| SubwordError::Train(e.to_string()))?;
        Ok(SubwordTokenizer { inner: tokenizer })
    }

    /// Reads a tokenizer back from its JSON form.
    pub fn from_json(json: &str) -> Result<Self, SubwordError> {
        let inner = json
            .parse::<Tokenizer>()
            .map_err(|e| SubwordError::Load(e.to_string()))?;
        Ok(SubwordTokenizer { inner })
    }

    /// The JSON form stored in model artifacts.
    pub fn to_json(&self) -> Result<String, SubwordError> {
        self.inner
            .to_string(false)
            .map_err(|e| SubwordError::Load(e.to_string()))
    }

    /// Number of subwords in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Subword ids of `text`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, SubwordError> {
        self.inner
            .encode_fast(text, false)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|e| SubwordError::Encode(e.to_string()))
    }

    /// The subword string of an id, for explanations.
    pub fn token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trains_encodes_and_round_trips_through_json() -> Result<(), SubwordError> {
        let texts = [
            "cheap pills online",
            "cheap software online",
            "meeting notes attached",
        ]
        .repeat(20);
        let tokenizer = SubwordTokenizer::train(texts.iter(), 200)?;
        let ids = tokenizer.encode("Cheap pills")?;
        assert_eq!(ids.len(), 2);
        assert_eq!(tokenizer.token(ids[0]).as_deref(), Some("cheap"));
        let restored = SubwordTokenizer::from_json(&tokenizer.to_json()?)?;
        assert_eq!(restored.encode("Cheap pills")?, ids);
        assert!(SubwordTokenizer::from_json("{not json").is_err());
        Ok(())
    }
}

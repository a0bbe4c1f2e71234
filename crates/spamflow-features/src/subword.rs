//! The subword tokenizer: a Hugging Face `tokenizers` WordPiece model trained on the training
//! split and shipped inside the model artifact, so serving splits text exactly as training did.
//!
//! Training is not bit-reproducible: the trainer breaks ties between equally frequent merges in
//! hash-map order, which is random per process. Pin a trained tokenizer to reproduce a model.

use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::{Lowercase, NFKC, NormalizerWrapper, Sequence};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::{AddedToken, Model, Tokenizer};

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
    /// The same WordPiece model applied directly, for text the pipeline provably leaves alone.
    direct: Option<DirectWordPiece>,
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
        Ok(SubwordTokenizer::wrap(tokenizer))
    }

    fn wrap(inner: Tokenizer) -> Self {
        let direct = DirectWordPiece::for_tokenizer(&inner);
        SubwordTokenizer { inner, direct }
    }

    /// Reads a tokenizer back from its JSON form.
    pub fn from_json(json: &str) -> Result<Self, SubwordError> {
        let inner = json
            .parse::<Tokenizer>()
            .map_err(|e| SubwordError::Load(e.to_string()))?;
        Ok(SubwordTokenizer::wrap(inner))
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
        if let Some(direct) = &self.direct
            && let ModelWrapper::WordPiece(model) = self.inner.get_model()
            && DirectWordPiece::applies_to(text)
        {
            let mut ids = Vec::new();
            direct.encode(model, text, &mut ids);
            return Ok(ids);
        }
        self.encode_with_pipeline(text)
    }

    /// Subword ids of `text` through the full `tokenizers` pipeline (what [`Self::encode`]
    /// matches).
    fn encode_with_pipeline(&self, text: &str) -> Result<Vec<u32>, SubwordError> {
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

/// WordPiece encoding without the `tokenizers` pipeline, for lower-case ASCII text.
///
/// On such text the pipeline this crate builds (NFKC, lower case, `\w+|[^\w\s]+`
/// pre-tokenizer, WordPiece, no post-processing) reduces to: split into runs of word bytes
/// (`[0-9A-Za-z_]`) and runs of other non-space bytes, then greedy longest-match-first WordPiece
/// on each run. Only used when the stored tokenizer has exactly that pipeline and no added token
/// could occur in such text; the generic machinery costs far more than this on 64-byte windows.
/// Looks subwords up in the tokenizer's own WordPiece vocabulary.
#[derive(Clone)]
struct DirectWordPiece {
    unknown: u32,
    continuing_prefix: String,
    max_input_chars_per_word: usize,
}

impl DirectWordPiece {
    fn for_tokenizer(tokenizer: &Tokenizer) -> Option<Self> {
        let normalizer_matches = match tokenizer.get_normalizer()? {
            NormalizerWrapper::Sequence(sequence) => matches!(
                sequence.as_ref(),
                [NormalizerWrapper::NFKC(_), NormalizerWrapper::Lowercase(_)]
            ),
            _ => false,
        };
        let pre_tokenizer_matches = matches!(
            tokenizer.get_pre_tokenizer()?,
            PreTokenizerWrapper::Whitespace(_)
        );
        let added_tokens_absent = tokenizer
            .get_added_tokens_decoder()
            .values()
            .all(|token| !Self::applies_to(&token.content));
        if !normalizer_matches
            || !pre_tokenizer_matches
            || !added_tokens_absent
            || tokenizer.get_post_processor().is_some()
            || tokenizer.get_truncation().is_some()
            || tokenizer.get_padding().is_some()
        {
            return None;
        }
        let ModelWrapper::WordPiece(model) = tokenizer.get_model() else {
            return None;
        };
        let unknown = model.token_to_id(&model.unk_token)?;
        Some(DirectWordPiece {
            unknown,
            continuing_prefix: model.continuing_subword_prefix.clone(),
            max_input_chars_per_word: model.max_input_chars_per_word,
        })
    }

    /// True for text NFKC and lower-casing leave unchanged in a way this shortcut knows:
    /// ASCII without capitals.
    fn applies_to(text: &str) -> bool {
        text.bytes()
            .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    }

    fn encode(&self, model: &WordPiece, text: &str, ids: &mut Vec<u32>) {
        // `\s` of the pre-tokenizer's regex, restricted to ASCII.
        let is_space = |b: u8| matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ');
        let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let bytes = text.as_bytes();
        let mut key = String::new();
        let mut start = 0;
        while let Some(&first) = bytes.get(start) {
            if is_space(first) {
                start += 1;
                continue;
            }
            let word_run = is_word(first);
            let end = bytes[start..]
                .iter()
                .position(|&b| is_space(b) || is_word(b) != word_run)
                .map_or(bytes.len(), |len| start + len);
            self.encode_word(model, &text[start..end], &mut key, ids);
            start = end;
        }
    }

    /// WordPiece on one pre-token, as `tokenizers` does it (ASCII: one byte per char).
    fn encode_word(&self, model: &WordPiece, word: &str, key: &mut String, ids: &mut Vec<u32>) {
        if word.len() > self.max_input_chars_per_word {
            ids.push(self.unknown);
            return;
        }
        let first = ids.len();
        let mut start = 0;
        while start < word.len() {
            // The candidate is `key`: the rest of the word (after the continuing prefix unless at
            // the start), shortened one byte at a time.
            key.clear();
            if start > 0 {
                key.push_str(&self.continuing_prefix);
            }
            let prefix = key.len();
            key.push_str(&word[start..]);
            let mut end = word.len();
            let mut found = None;
            while start < end {
                key.truncate(prefix + end - start);
                if let Some(id) = model.token_to_id(key) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            let Some(id) = found else {
                ids.truncate(first);
                ids.push(self.unknown);
                return;
            };
            ids.push(id);
            start = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    #[test]
    fn direct_wordpiece_matches_the_pipeline() -> Result<(), SubwordError> {
        let texts = [
            "cheap pills online now!!! $$$ click_here http://pills.example/buy?x=1",
            "meeting notes attached, see you at 10:30 -- bob",
            "re: [spam] v1agra c1alis ... unsubscribe@list.example",
        ]
        .repeat(20);
        let tokenizer = SubwordTokenizer::train(texts.iter(), 120)?;
        assert!(tokenizer.direct.is_some());
        for text in [
            "",
            "   ",
            "cheap pills",
            "cheaper pillsonline!!!?? zzzqqq x_y__z 12ab",
            "re: [unk] [spam]\tclick\u{b}here\u{c}now\r\n--bob--",
            "\u{1}\u{1f}control\u{7f} bytes",
            "http://pills.example/buy?x=1&y=2#frag",
            &"a".repeat(150),
            &"ab-".repeat(40),
        ] {
            assert!(DirectWordPiece::applies_to(text));
            assert_eq!(
                tokenizer.encode(text)?,
                tokenizer.encode_with_pipeline(text)?,
                "{text:?}"
            );
        }
        assert!(!DirectWordPiece::applies_to("Cheap"));
        assert!(!DirectWordPiece::applies_to("caf\u{e9}"));
        Ok(())
    }

    proptest! {
        /// Any lower-case ASCII text (words of the vocabulary and not, punctuation, every ASCII
        /// space and control byte, words past the length limit) encodes the same both ways.
        #[test]
        fn direct_wordpiece_matches_the_pipeline_on_any_ascii_text(
            pieces in prop::collection::vec(
                prop_oneof![
                    prop::sample::select(vec![
                        "cheap", "pills", "online", "click", "here", "meeting", "notes", "bob",
                        "v1agra", "_", "--", "$$$", "!!!", "://", "@", "..."
                    ]).prop_map(str::to_owned),
                    "[a-z0-9_]{1,12}",
                    "[\\x00-\\x40\\x5b-\\x7f]{1,6}",
                    "[a-z]{95,110}",
                ],
                0..24,
            )
        ) {
            let text = pieces.concat();
            prop_assert!(DirectWordPiece::applies_to(&text));
            let tokenizer = PROPERTY_TOKENIZER.as_ref().map_err(|e| {
                TestCaseError::fail(e.to_string())
            })?;
            prop_assert!(tokenizer.direct.is_some());
            let pipeline = tokenizer.encode_with_pipeline(&text);
            prop_assert!(pipeline.is_ok(), "{pipeline:?}");
            prop_assert_eq!(tokenizer.encode(&text).ok(), pipeline.ok());
        }
    }

    /// A small tokenizer the property test trains once.
    static PROPERTY_TOKENIZER: std::sync::LazyLock<Result<SubwordTokenizer, SubwordError>> =
        std::sync::LazyLock::new(|| {
            let texts = [
                "cheap pills online now!!! $$$ click_here http://pills.example/buy?x=1",
                "meeting notes attached, see you at 10:30 -- bob",
                "re: [spam] v1agra c1alis ... unsubscribe@list.example",
            ]
            .repeat(20);
            SubwordTokenizer::train(texts.iter(), 120)
        });
}

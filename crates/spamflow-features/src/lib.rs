//! spamflow-features: the pure front half of the classifier.
//!
//! Any bytes go in (an mbox `From ` line, CRLF or LF, invalid UTF-8, broken MIME); a
//! [`ParsedMail`] (decoded text, header facts, URLs, attachments), normalised words, subword
//! tokens and a [`SparseFeatures`] vector come out. Nothing here opens a file or a socket:
//! callers hand in bytes and get values back, so training and serving share this code exactly.

mod extract;
mod flags;
mod html;
mod lexicon;
mod limits;
mod normalize;
mod parse;
mod subword;

pub use extract::{
    Extraction, FeatureConfig, FeatureExtractor, FeatureNames, Namespace, SparseFeatures,
};
pub use flags::Flags;
pub use lexicon::LEXICON_VERSION;
pub use limits::Limits;
pub use parse::{Attachment, ParsedMail, delivery_recipients, message_id, parse_mail};
pub use subword::{SubwordError, SubwordTokenizer};

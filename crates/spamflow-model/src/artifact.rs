//! The model file: one self-describing, versioned, checksummed artifact.
//!
//! Layout: `SPAMFLOW` magic (8 bytes), format version (u32 LE), payload length (u64 LE),
//! SHA-256 of the payload (32 bytes), then the payload: a bincode-encoded [`ModelArtifact`].
//! Loading checks each in turn and says precisely what is wrong with a bad file.
//!
//! Version 2 added the FTRL online-learning state ([`OnlineState`], so a model can be updated
//! incrementally) and the parent model id. Version 3 added [`FeatureConfig::header_words`].
//! Version 4 added [`ModelMetadata::build_options`], the options the model was built with.
//! Version 5 added [`CategoryCounts`], the naive Bayes sums of the category head, so that
//! `update` can continue it. Version 6 added [`FeatureConfig::header_word_fields`], the fields
//! whose words are features. Version 7 added [`SpamNaiveBayes`], the naive Bayes part of the
//! spam head, so that `update` can continue it. Version 8 added
//! [`FeatureConfig::mime_structure`]. Version 9 added [`ModelArtifact::log_count_scale`], how a
//! feature's count becomes its value. Version 10 added [`FeatureConfig::lexicons`]. bincode is
//! not self-describing, so older payloads
//! are decoded with their own layout and converted: a version-1 file has no online state and no
//! parent, files before version 3 extracted header words, files before version 4 do not record
//! their options, files before version 5 have no category counts, files before version 6 took
//! the words of every header field (`["*"]`), files before version 7 have no naive Bayes
//! part, files before version 8 extracted the MIME structure features, and files before
//! version 9 weighed counts as `1 + ln(count)` (scale 1), and files before version 10 have no
//! word-list features. This build writes version 10 only.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spamflow_features::{FeatureConfig, Limits};

use crate::train::CategoryAlgorithm;

/// The artifact format this build writes (it also reads [`OLDEST_FORMAT_VERSION`] and later).
pub const FORMAT_VERSION: u32 = 10;
/// The oldest artifact format this build reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"SPAMFLOW";
const HEADER_LEN: usize = 8 + 4 + 8 + 32;

/// What is wrong with `scale` as a [`ModelArtifact::log_count_scale`], if anything: a model's
/// scale runs from presence only (0) to the full logarithm of the count (1).
pub(crate) fn log_count_scale_problem(scale: f32) -> Option<String> {
    (!(0.0..=1.0).contains(&scale))
        .then(|| format!("the log count scale must be a number from 0 to 1, got {scale}"))
}

/// Why a model file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file does not start with the spamflow magic bytes.
    #[error("not a spamflow model file (missing SPAMFLOW magic bytes)")]
    NotAModel,
    /// Written by a different, incompatible format version.
    #[error(
        "model file format version {found} is not supported by this build (it reads versions {oldest} to {newest})"
    )]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Oldest version this build reads.
        oldest: u32,
        /// Newest version this build reads (and the one it writes).
        newest: u32,
    },
    /// Shorter than its header says.
    #[error("model file is truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// Bytes the header promises.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The payload does not match its checksum.
    #[error("model file is corrupt: SHA-256 checksum mismatch")]
    ChecksumMismatch,
    /// The payload could not be decoded or is inconsistent.
    #[error("model file payload is invalid: {0}")]
    Invalid(String),
}

/// Where the training data came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingData {
    /// SHA-256 of each manifest file used, hex.
    pub manifest_sha256: Vec<String>,
    /// SHA-256 over the sorted (path, label, category) rows trained on, hex.
    pub rows_sha256: String,
    /// The split trained on.
    pub split: Option<String>,
    /// Messages trained on.
    pub messages: usize,
    /// Of which spam.
    pub spam: usize,
    /// Of which ham.
    pub ham: usize,
    /// Spam messages per category label, `(name, count)`.
    pub categories: Vec<(String, usize)>,
}

/// Cross-validated quality measured on the training data when the model was built.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidationSummary {
    /// Folds used.
    pub folds: usize,
    /// `(algorithm, cross-validated ROC AUC)` for each candidate compared.
    pub candidates: Vec<(String, f64)>,
    /// Cross-validated ROC AUC of the chosen algorithm.
    pub roc_auc: f64,
    /// Cross-validated false-positive rate at the chosen threshold.
    pub fpr: f64,
    /// Cross-validated spam recall at the chosen threshold.
    pub recall: f64,
    /// Cross-validated category macro-F1 (all categories).
    pub category_macro_f1: f64,
}

/// Descriptive metadata, printed by `spamflow inspect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Stable identifier, derived from the weights.
    pub model_id: String,
    /// Creation time, RFC 3339 (given by the caller: this crate reads no clock).
    pub created_at: String,
    /// Version of spamflow that trained it.
    pub spamflow_version: String,
    /// The spam head's learning algorithm.
    pub algorithm: String,
    /// Random seed of training.
    pub seed: u64,
    /// Where the data came from.
    pub training_data: TrainingData,
    /// Cross-validated quality on the training data.
    pub validation: ValidationSummary,
    /// The model this one was incrementally updated from (`None` for a model trained from
    /// scratch, and for every version-1 file).
    pub parent_model_id: Option<String>,
    /// The options of the run that built this model, as JSON: the
    /// [`TrainOptions`](crate::TrainOptions) of `train`, or the
    /// [`UpdateOptions`](crate::UpdateOptions) of `update` when `parent_model_id` is set. Kept as
    /// text so that options added later need no new file format. `None` before format version 4.
    pub build_options: Option<String>,
}

impl ModelMetadata {
    /// The category head algorithm the model was built with, as its recorded build options name
    /// it (`train` always recorded it, `update` since 28 November 2026). Without build options,
    /// or with options that do not name one, the head is multinomial naive Bayes: the only head
    /// of those models but a logistic one, which its options name.
    pub fn category_algorithm(&self) -> Result<CategoryAlgorithm, ArtifactError> {
        let Some(json) = &self.build_options else {
            return Ok(CategoryAlgorithm::NaiveBayes);
        };
        let invalid = |e: serde_json::Error| ArtifactError::Invalid(format!("build options: {e}"));
        let options: serde_json::Value = serde_json::from_str(json).map_err(invalid)?;
        match options.get("category_algorithm") {
            None | Some(serde_json::Value::Null) => Ok(CategoryAlgorithm::NaiveBayes),
            Some(name) => serde_json::from_value(name.clone()).map_err(invalid),
        }
    }
}

/// FTRL-proximal learning state: what an online learner needs to continue where training
/// stopped. Weight `i` is `(sign(z) * l1 - z) / ((sqrt(n) + beta) / alpha + l2)`, or 0 when
/// `|z| <= l1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnlineState {
    /// Learning rate.
    pub alpha: f64,
    /// Learning-rate smoothing.
    pub beta: f64,
    /// L1 regularisation.
    pub l1: f64,
    /// L2 regularisation.
    pub l2: f64,
    /// Accumulated adjusted gradients, one per feature row.
    pub z: Vec<f32>,
    /// Accumulated squared gradients, one per feature row.
    pub n: Vec<f32>,
}

/// What the category head's naive Bayes learned, so that `update` can add new labeled spam to
/// it: per category, the summed feature values of its training rows over the head's feature
/// rows (each row once for a one-vs-rest head, minority categories repeated for a multinomial
/// one: [`ModelMetadata::category_algorithm`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryCounts {
    /// Smoothing (naive Bayes alpha) of the fit.
    pub alpha: f64,
    /// The feature rows the head is over, ascending; the others have zero category weights.
    pub columns: Vec<u32>,
    /// Labeled rows learned (spam messages, and their headerless copies when those were
    /// learned), per category in [`Category::ALL`] order.
    ///
    /// [`Category::ALL`]: crate::Category::ALL
    pub rows: Vec<u64>,
    /// Summed values, row-major `[categories x columns]`.
    pub sums: Vec<f64>,
}

/// The naive Bayes part of the spam head (format version 7): its weights, `blend` times the
/// naive Bayes log-odds, are added to the FTRL weights in the spam weights. Stored so that
/// `update` can add new rows to the sums and refit that part as training would.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpamNaiveBayes {
    /// Weight of the naive Bayes log-odds in the spam weights.
    pub blend: f64,
    /// Smoothing (naive Bayes alpha) of the fit.
    pub alpha: f64,
    /// Rows learned (messages, and their headerless copies when those were learned): ham, spam.
    pub rows: [u64; 2],
    /// Summed values, row-major `[ham, spam] x feature rows`.
    pub sums: Vec<f64>,
}

/// Everything a model file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    /// Descriptive metadata.
    pub metadata: ModelMetadata,
    /// How messages become features.
    pub feature_config: FeatureConfig,
    /// The Hugging Face tokenizer JSON, if subword features are on.
    pub tokenizer_json: Option<String>,
    /// Feature hashes, one per weight row.
    pub feature_hashes: Vec<u64>,
    /// Readable feature names, one per weight row.
    pub feature_names: Vec<String>,
    /// Spam-head weight per row.
    pub spam_weights: Vec<f32>,
    /// Spam-head bias.
    pub spam_bias: f32,
    /// Category-head weights, row-major `[rows x categories]`.
    pub category_weights: Vec<f32>,
    /// Category-head bias per category.
    pub category_bias: Vec<f32>,
    /// Platt calibration: probability = sigmoid(a * raw + b).
    pub calibration: (f32, f32),
    /// Calibrated spam probability at or above which the verdict is spam.
    pub threshold: f32,
    /// FTRL state of the spam head, when it was trained online: lets `update` warm-start
    /// exactly (format version 2; `None` for other learners and version-1 files).
    pub online_state: Option<OnlineState>,
    /// The category head's naive Bayes sums, when it is naive Bayes (format version 5; `None`
    /// for a logistic head and older files, whose head `update` keeps as it is).
    pub category_counts: Option<CategoryCounts>,
    /// The spam head's naive Bayes part, when it has one (format version 7; `None` for a head
    /// without one and older files: their spam weights are the learner's alone).
    pub spam_naive_bayes: Option<SpamNaiveBayes>,
    /// A feature counted `n` times in a message has the value `1 + log_count_scale * ln(n)`
    /// before the message's values are scaled to unit length (format version 9; 1 for older
    /// files, which all weighed counts so).
    pub log_count_scale: f32,
}

/// The feature-configuration layout of format versions 1 and 2 (no `header_words` field: those
/// builds always extracted header words).
#[derive(Deserialize)]
struct FeatureConfigV2 {
    limits: Limits,
    ignored_header_prefixes: Vec<String>,
    word_pairs: bool,
    subword_window_bytes: usize,
}

impl From<FeatureConfigV2> for FeatureConfig {
    fn from(v2: FeatureConfigV2) -> Self {
        FeatureConfigV5 {
            limits: v2.limits,
            ignored_header_prefixes: v2.ignored_header_prefixes,
            word_pairs: v2.word_pairs,
            header_words: true,
            subword_window_bytes: v2.subword_window_bytes,
        }
        .into()
    }
}

/// The feature-configuration layout of format versions 3 to 5 (no `header_word_fields`: those
/// builds took the words of every field when `header_words` was on).
#[derive(Deserialize)]
struct FeatureConfigV5 {
    limits: Limits,
    ignored_header_prefixes: Vec<String>,
    word_pairs: bool,
    header_words: bool,
    subword_window_bytes: usize,
}

impl From<FeatureConfigV5> for FeatureConfig {
    fn from(v5: FeatureConfigV5) -> Self {
        FeatureConfigV7 {
            limits: v5.limits,
            ignored_header_prefixes: v5.ignored_header_prefixes,
            word_pairs: v5.word_pairs,
            header_words: v5.header_words,
            header_word_fields: vec!["*".to_owned()],
            subword_window_bytes: v5.subword_window_bytes,
        }
        .into()
    }
}

/// The feature-configuration layout of format versions 6 and 7 (no `mime_structure`: those
/// builds always extracted the MIME and HTML structure features).
#[derive(Deserialize)]
struct FeatureConfigV7 {
    limits: Limits,
    ignored_header_prefixes: Vec<String>,
    word_pairs: bool,
    header_words: bool,
    header_word_fields: Vec<String>,
    subword_window_bytes: usize,
}

impl From<FeatureConfigV7> for FeatureConfig {
    fn from(v7: FeatureConfigV7) -> Self {
        FeatureConfigV9 {
            limits: v7.limits,
            ignored_header_prefixes: v7.ignored_header_prefixes,
            word_pairs: v7.word_pairs,
            header_words: v7.header_words,
            header_word_fields: v7.header_word_fields,
            subword_window_bytes: v7.subword_window_bytes,
            mime_structure: true,
        }
        .into()
    }
}

/// The feature-configuration layout of format versions 8 and 9 (no `lexicons`: those builds
/// had no word-list features).
#[derive(Deserialize)]
struct FeatureConfigV9 {
    limits: Limits,
    ignored_header_prefixes: Vec<String>,
    word_pairs: bool,
    header_words: bool,
    header_word_fields: Vec<String>,
    subword_window_bytes: usize,
    mime_structure: bool,
}

impl From<FeatureConfigV9> for FeatureConfig {
    fn from(v9: FeatureConfigV9) -> Self {
        FeatureConfig {
            limits: v9.limits,
            ignored_header_prefixes: v9.ignored_header_prefixes,
            word_pairs: v9.word_pairs,
            header_words: v9.header_words,
            header_word_fields: v9.header_word_fields,
            subword_window_bytes: v9.subword_window_bytes,
            mime_structure: v9.mime_structure,
            lexicons: 0,
        }
    }
}

/// The payload layout of format versions 1 to 9: metadata `M`, feature configuration `F`, the
/// model, then `O`, the online state (absent in version 1), `C`, the category counts (absent
/// before version 5), `N`, the spam head's naive Bayes part (absent before version 7), and `S`,
/// the count scale (absent before version 9). The layouts also decode types of today's build:
/// [`ModelMetadata`] (versions 4 to 9), [`SpamNaiveBayes`] (versions 7 to 9), and in all of them
/// [`Limits`], `TrainingData`, `ValidationSummary`, [`OnlineState`] and [`CategoryCounts`]. A
/// change to one of those needs a frozen copy of today's layout here (the tests of
/// `tests/fixtures/format-*.spamflow` fail until there is one).
#[derive(Deserialize)]
struct LegacyArtifact<M, F, O, C, N = Absent, S = Absent> {
    metadata: M,
    feature_config: F,
    tokenizer_json: Option<String>,
    feature_hashes: Vec<u64>,
    feature_names: Vec<String>,
    spam_weights: Vec<f32>,
    spam_bias: f32,
    category_weights: Vec<f32>,
    category_bias: Vec<f32>,
    calibration: (f32, f32),
    threshold: f32,
    online_state: O,
    category_counts: C,
    spam_naive_bayes: N,
    log_count_scale: S,
}

/// The version-1 payload layout: version-1 metadata, the oldest feature configuration, no
/// online state.
type ModelArtifactV1 = LegacyArtifact<ModelMetadataV1, FeatureConfigV2, Absent, Absent>;
/// The version-2 payload layout: version-3 metadata and the oldest feature configuration.
type ModelArtifactV2 =
    LegacyArtifact<ModelMetadataV3, FeatureConfigV2, Option<OnlineState>, Absent>;
/// The version-3 payload layout: version 4's without the build options.
type ModelArtifactV3 =
    LegacyArtifact<ModelMetadataV3, FeatureConfigV5, Option<OnlineState>, Absent>;
/// The version-4 payload layout: version 5's without the category counts.
type ModelArtifactV4 = LegacyArtifact<ModelMetadata, FeatureConfigV5, Option<OnlineState>, Absent>;
/// The version-5 payload layout: the current one without the header word fields.
type ModelArtifactV5 =
    LegacyArtifact<ModelMetadata, FeatureConfigV5, Option<OnlineState>, Option<CategoryCounts>>;
/// The version-6 payload layout: version 7's without the spam head's naive Bayes part.
type ModelArtifactV6 =
    LegacyArtifact<ModelMetadata, FeatureConfigV7, Option<OnlineState>, Option<CategoryCounts>>;
/// The version-7 payload layout: version 8's without `mime_structure`.
type ModelArtifactV7 = LegacyArtifact<
    ModelMetadata,
    FeatureConfigV7,
    Option<OnlineState>,
    Option<CategoryCounts>,
    Option<SpamNaiveBayes>,
>;
/// The version-8 payload layout: version 9's without the count scale.
type ModelArtifactV8 = LegacyArtifact<
    ModelMetadata,
    FeatureConfigV9,
    Option<OnlineState>,
    Option<CategoryCounts>,
    Option<SpamNaiveBayes>,
>;
/// The version-9 payload layout: the current one without `lexicons`.
type ModelArtifactV9 = LegacyArtifact<
    ModelMetadata,
    FeatureConfigV9,
    Option<OnlineState>,
    Option<CategoryCounts>,
    Option<SpamNaiveBayes>,
    f32,
>;

/// The count scale of every model before format version 9: `1 + ln(count)`.
const LEGACY_LOG_COUNT_SCALE: f32 = 1.0;

impl<M, F, O, C, N, S> From<LegacyArtifact<M, F, O, C, N, S>> for ModelArtifact
where
    M: Into<ModelMetadata>,
    F: Into<FeatureConfig>,
    O: Into<Option<OnlineState>>,
    C: Into<Option<CategoryCounts>>,
    N: Into<Option<SpamNaiveBayes>>,
    S: Into<Option<f32>>,
{
    fn from(legacy: LegacyArtifact<M, F, O, C, N, S>) -> Self {
        ModelArtifact {
            metadata: legacy.metadata.into(),
            feature_config: legacy.feature_config.into(),
            tokenizer_json: legacy.tokenizer_json,
            feature_hashes: legacy.feature_hashes,
            feature_names: legacy.feature_names,
            spam_weights: legacy.spam_weights,
            spam_bias: legacy.spam_bias,
            category_weights: legacy.category_weights,
            category_bias: legacy.category_bias,
            calibration: legacy.calibration,
            threshold: legacy.threshold,
            online_state: legacy.online_state.into(),
            category_counts: legacy.category_counts.into(),
            spam_naive_bayes: legacy.spam_naive_bayes.into(),
            log_count_scale: legacy
                .log_count_scale
                .into()
                .unwrap_or(LEGACY_LOG_COUNT_SCALE),
        }
    }
}

/// The version-1 metadata layout (no parent model id).
#[derive(Deserialize)]
struct ModelMetadataV1 {
    model_id: String,
    created_at: String,
    spamflow_version: String,
    algorithm: String,
    seed: u64,
    training_data: TrainingData,
    validation: ValidationSummary,
}

impl From<ModelMetadataV1> for ModelMetadata {
    fn from(v1: ModelMetadataV1) -> Self {
        ModelMetadata {
            model_id: v1.model_id,
            created_at: v1.created_at,
            spamflow_version: v1.spamflow_version,
            algorithm: v1.algorithm,
            seed: v1.seed,
            training_data: v1.training_data,
            validation: v1.validation,
            parent_model_id: None,
            build_options: None,
        }
    }
}

/// The metadata layout of format versions 2 and 3: version 1's and the parent model id, no build
/// options. bincode writes a nested struct as its fields in order, so this reads the flat layout.
#[derive(Deserialize)]
struct ModelMetadataV3 {
    v1: ModelMetadataV1,
    parent_model_id: Option<String>,
}

impl From<ModelMetadataV3> for ModelMetadata {
    fn from(v3: ModelMetadataV3) -> Self {
        ModelMetadata {
            parent_model_id: v3.parent_model_id,
            ..v3.v1.into()
        }
    }
}

/// A part an older layout does not have (the online state of a version-1 file, the category
/// counts before version 5, the spam head's naive Bayes part before version 7, the count scale
/// before version 9): no bytes
/// (bincode writes nothing for a unit struct), read as `None`.
#[derive(Deserialize)]
struct Absent;

impl From<Absent> for Option<OnlineState> {
    fn from(_: Absent) -> Self {
        None
    }
}

impl From<Absent> for Option<CategoryCounts> {
    fn from(_: Absent) -> Self {
        None
    }
}

impl From<Absent> for Option<SpamNaiveBayes> {
    fn from(_: Absent) -> Self {
        None
    }
}

impl From<Absent> for Option<f32> {
    fn from(_: Absent) -> Self {
        None
    }
}

/// `SPAMFLOW`, `version`, payload length and checksum, then `payload`.
fn frame(version: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&version.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&Sha256::digest(payload));
    bytes.extend_from_slice(payload);
    bytes
}

/// Decodes a whole payload: bytes left over mean the layout did not match.
fn decode<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, ArtifactError> {
    let (value, used) = bincode::serde::decode_from_slice(payload, bincode::config::standard())
        .map_err(|e| ArtifactError::Invalid(e.to_string()))?;
    if used != payload.len() {
        return Err(ArtifactError::Invalid(format!(
            "{} bytes of the payload left undecoded",
            payload.len() - used
        )));
    }
    Ok(value)
}

impl ModelArtifact {
    /// Serialises to the file format ([`FORMAT_VERSION`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, ArtifactError> {
        let payload = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|e| ArtifactError::Invalid(e.to_string()))?;
        Ok(frame(FORMAT_VERSION, &payload))
    }

    /// Reads and verifies the file format.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ArtifactError> {
        Self::from_bytes_with_version(bytes).map(|(artifact, _)| artifact)
    }

    /// Reads and verifies the file format; also returns the format version of the file.
    pub fn from_bytes_with_version(bytes: &[u8]) -> Result<(Self, u32), ArtifactError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(ArtifactError::NotAModel);
        }
        if bytes.len() < HEADER_LEN {
            return Err(ArtifactError::Truncated {
                expected: HEADER_LEN as u64,
                found: bytes.len() as u64,
            });
        }
        let field = |from: usize, to: usize| &bytes[from..to];
        let version = u32::from_le_bytes(
            field(8, 12)
                .try_into()
                .map_err(|_| ArtifactError::NotAModel)?,
        );
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(ArtifactError::UnsupportedVersion {
                found: version,
                oldest: OLDEST_FORMAT_VERSION,
                newest: FORMAT_VERSION,
            });
        }
        let length = u64::from_le_bytes(
            field(12, 20)
                .try_into()
                .map_err(|_| ArtifactError::NotAModel)?,
        );
        let payload = &bytes[HEADER_LEN..];
        if (payload.len() as u64) < length {
            return Err(ArtifactError::Truncated {
                expected: HEADER_LEN as u64 + length,
                found: bytes.len() as u64,
            });
        }
        if payload.len() as u64 > length {
            return Err(ArtifactError::Invalid(format!(
                "{} unexpected bytes after the payload",
                payload.len() as u64 - length
            )));
        }
        if Sha256::digest(payload).as_slice() != field(20, HEADER_LEN) {
            return Err(ArtifactError::ChecksumMismatch);
        }
        let artifact: ModelArtifact = match version {
            1 => decode::<ModelArtifactV1>(payload)?.into(),
            2 => decode::<ModelArtifactV2>(payload)?.into(),
            3 => decode::<ModelArtifactV3>(payload)?.into(),
            4 => decode::<ModelArtifactV4>(payload)?.into(),
            5 => decode::<ModelArtifactV5>(payload)?.into(),
            6 => decode::<ModelArtifactV6>(payload)?.into(),
            7 => decode::<ModelArtifactV7>(payload)?.into(),
            8 => decode::<ModelArtifactV8>(payload)?.into(),
            9 => decode::<ModelArtifactV9>(payload)?.into(),
            _ => decode(payload)?,
        };
        artifact.check_shapes()?;
        Ok((artifact, version))
    }

    /// Checks that the weight arrays agree with each other and that the count scale is one a
    /// model may have.
    pub fn check_shapes(&self) -> Result<(), ArtifactError> {
        let rows = self.feature_hashes.len();
        let categories = crate::category::Category::ALL.len();
        let problems = [
            (self.feature_names.len() != rows, "feature names"),
            (self.spam_weights.len() != rows, "spam weights"),
            (
                self.category_weights.len() != rows * categories,
                "category weights",
            ),
            (self.category_bias.len() != categories, "category bias"),
            (
                self.online_state
                    .as_ref()
                    .is_some_and(|s| s.z.len() != rows || s.n.len() != rows),
                "online state (FTRL z and n)",
            ),
            (
                self.category_counts.as_ref().is_some_and(|c| {
                    c.rows.len() != categories
                        || c.sums.len() != c.columns.len() * categories
                        || c.columns.last().is_some_and(|&last| last as usize >= rows)
                }),
                "category counts",
            ),
            (
                self.spam_naive_bayes
                    .as_ref()
                    .is_some_and(|nb| nb.sums.len() != 2 * rows),
                "spam naive Bayes sums",
            ),
        ];
        if let Some((_, what)) = problems.iter().find(|(bad, _)| *bad) {
            return Err(ArtifactError::Invalid(format!(
                "{what} do not match {rows} feature rows"
            )));
        }
        if let Some(problem) = log_count_scale_problem(self.log_count_scale) {
            return Err(ArtifactError::Invalid(problem));
        }
        if let Some(problem) = self.feature_config.problem() {
            return Err(ArtifactError::Invalid(problem));
        }
        if let Some(counts) = &self.category_counts {
            counts.check()?;
        }
        match &self.spam_naive_bayes {
            Some(naive_bayes) => naive_bayes.check(self.online_state.is_some()),
            None => Ok(()),
        }
    }
}

/// The error naming `part` and its problem, if it has one.
fn refuse_if(part: &str, problem: Option<&str>) -> Result<(), ArtifactError> {
    match problem {
        Some(problem) => Err(ArtifactError::Invalid(format!("{part}: {problem}"))),
        None => Ok(()),
    }
}

/// True when every summed value is a finite number in `0..=`[`CategoryCounts::LIMIT`].
fn plausible_sums(sums: &[f64]) -> bool {
    sums.iter()
        .all(|&s| s.is_finite() && (0.0..=CategoryCounts::LIMIT).contains(&s))
}

/// True for a smoothing in `(0, `[`CategoryCounts::MAX_ALPHA`]`]`.
fn plausible_alpha(alpha: f64) -> bool {
    alpha > 0.0 && alpha <= CategoryCounts::MAX_ALPHA
}

impl SpamNaiveBayes {
    /// Largest blend accepted (in training too): far above any useful value, small enough that
    /// the blended weights stay finite.
    pub const MAX_BLEND: f64 = 1e3;

    /// Checks the values (the shapes are checked with the artifact's); `with_ftrl_state` says
    /// whether the artifact carries the FTRL state the part was added to, which it must:
    /// `update` continues both together.
    fn check(&self, with_ftrl_state: bool) -> Result<(), ArtifactError> {
        let problem = if !with_ftrl_state {
            Some("a naive Bayes part without the FTRL state it was added to")
        } else if !(self.blend > 0.0 && self.blend <= Self::MAX_BLEND) {
            Some("the blend is not a positive number up to MAX_BLEND (1000)")
        } else if !plausible_alpha(self.alpha) {
            Some("smoothing alpha is not a positive number up to MAX_ALPHA (1e6)")
        } else if self
            .rows
            .iter()
            .any(|&r| r == 0 || r as f64 > CategoryCounts::LIMIT)
        {
            Some("a class has no rows or implausibly many")
        } else if !plausible_sums(&self.sums) {
            Some("a summed value is negative, too large or not a number")
        } else {
            None
        };
        refuse_if("spam naive Bayes", problem)
    }
}

impl CategoryCounts {
    /// Largest row count or summed value accepted: far beyond any real corpus, small enough that
    /// adding to it neither overflows nor loses whole rows.
    const LIMIT: f64 = 1e12;
    /// Largest smoothing accepted (in training too): far above any useful value, small enough
    /// that the smoothed counts of every feature still sum to a finite number.
    pub const MAX_ALPHA: f64 = 1e6;

    /// Checks the values (the shapes are checked with the artifact's).
    fn check(&self) -> Result<(), ArtifactError> {
        let width = self.columns.len();
        let problem = if !self.columns.is_sorted_by(|a, b| a < b) {
            Some("feature rows are not ascending and distinct")
        } else if !plausible_alpha(self.alpha) {
            Some("smoothing alpha is not a positive number up to MAX_ALPHA (1e6)")
        } else if self.rows.iter().all(|&r| r == 0) {
            Some("no category has rows")
        } else if self.rows.iter().any(|&r| r as f64 > Self::LIMIT) {
            Some("a row count is implausibly large")
        } else if !plausible_sums(&self.sums) {
            Some("a summed value is negative, too large or not a number")
        } else if self.rows.iter().enumerate().any(|(c, &r)| {
            r == 0
                && self
                    .sums
                    .get(c * width..(c + 1) * width)
                    .is_some_and(|sums| sums.iter().any(|&s| s > 0.0))
        }) {
            Some("a category without rows has summed values")
        } else {
            None
        };
        refuse_if("category counts", problem)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn tiny_artifact() -> ModelArtifact {
        ModelArtifact {
            metadata: ModelMetadata {
                model_id: "test".into(),
                ..ModelMetadata::default()
            },
            feature_config: FeatureConfig {
                header_words: false,
                ..FeatureConfig::default()
            },
            tokenizer_json: None,
            feature_hashes: vec![1, 2],
            feature_names: vec!["body:a".into(), "body:b".into()],
            spam_weights: vec![1.0, -1.0],
            spam_bias: 0.0,
            category_weights: vec![0.0; 14],
            category_bias: vec![0.0; 7],
            calibration: (1.0, 0.0),
            threshold: 0.5,
            online_state: Some(OnlineState {
                alpha: 0.5,
                beta: 1.0,
                l1: 0.0,
                l2: 0.0,
                z: vec![-2.0, 2.0],
                n: vec![0.0, 0.0],
            }),
            category_counts: None,
            spam_naive_bayes: None,
            log_count_scale: 0.25,
        }
    }

    /// `config` in the layout of format versions 1 and 2 (no `header_words`).
    fn legacy_feature_config(config: &FeatureConfig) -> impl Serialize + '_ {
        (
            &config.limits,
            &config.ignored_header_prefixes,
            config.word_pairs,
            config.subword_window_bytes,
        )
    }

    /// `config` in the layout of format versions 3 to 5 (no `header_word_fields`).
    fn feature_config_v5(config: &FeatureConfig) -> impl Serialize + '_ {
        (
            &config.limits,
            &config.ignored_header_prefixes,
            config.word_pairs,
            config.header_words,
            config.subword_window_bytes,
        )
    }

    /// `artifact` in the payload layout of format versions 1 to 5 under a `version` header:
    /// `metadata` first, then `feature_config`, the model and `tail`: the online state (`()` for
    /// version 1: bincode writes nothing for it), and from version 5 the category counts.
    fn legacy_bytes(
        version: u32,
        metadata: impl Serialize,
        feature_config: impl Serialize,
        artifact: &ModelArtifact,
        tail: impl Serialize,
    ) -> Vec<u8> {
        let payload = bincode::serde::encode_to_vec(
            (
                metadata,
                feature_config,
                &artifact.tokenizer_json,
                &artifact.feature_hashes,
                &artifact.feature_names,
                &artifact.spam_weights,
                artifact.spam_bias,
                &artifact.category_weights,
                &artifact.category_bias,
                artifact.calibration,
                artifact.threshold,
                tail,
            ),
            bincode::config::standard(),
        )
        .unwrap_or_default();
        frame(version, &payload)
    }

    /// The metadata fields of format version 1.
    fn metadata_v1(m: &ModelMetadata) -> impl Serialize + '_ {
        (
            &m.model_id,
            &m.created_at,
            &m.spamflow_version,
            &m.algorithm,
            m.seed,
            &m.training_data,
            &m.validation,
        )
    }

    /// The metadata fields of format versions 2 and 3 (no build options).
    fn metadata_v3(m: &ModelMetadata) -> impl Serialize + '_ {
        (metadata_v1(m), &m.parent_model_id)
    }

    /// The version-1 encoding of `artifact` (which must have no online state, no parent and no
    /// build options), written in the version-1 layout as version-1 builds wrote it.
    fn version_1_bytes(artifact: &ModelArtifact) -> Vec<u8> {
        let config = legacy_feature_config(&artifact.feature_config);
        legacy_bytes(1, metadata_v1(&artifact.metadata), config, artifact, ())
    }

    /// The version-2 encoding of `artifact`, as version-2 builds wrote it.
    fn version_2_bytes(artifact: &ModelArtifact) -> Vec<u8> {
        let metadata = metadata_v3(&artifact.metadata);
        let config = legacy_feature_config(&artifact.feature_config);
        legacy_bytes(2, metadata, config, artifact, &artifact.online_state)
    }

    /// [`tiny_artifact`] as a version-3 build wrote it (kept as a file, so that a later change
    /// to the current types cannot change the layout this test reads).
    const VERSION_3_FILE: &[u8] = include_bytes!("../tests/fixtures/format-3.spamflow");

    /// A model as an older build wrote it: header words were always extracted, so a file
    /// trained with them off is not representable (`tiny_artifact` has them off).
    fn legacy_artifact() -> ModelArtifact {
        let mut artifact = before_version_6(tiny_artifact());
        artifact.feature_config.header_words = true;
        artifact
    }

    /// `artifact` as a file written before format version 6 reads: every header field's words
    /// (and, as before version 8, the MIME structure features).
    fn before_version_6(mut artifact: ModelArtifact) -> ModelArtifact {
        artifact.feature_config.header_word_fields = vec!["*".into()];
        before_version_8(artifact)
    }

    /// `artifact` as a file written before format version 8 reads: with the MIME and HTML
    /// structure features, which every build extracted then.
    fn before_version_8(mut artifact: ModelArtifact) -> ModelArtifact {
        artifact.feature_config.mime_structure = true;
        before_version_9(artifact)
    }

    /// `artifact` as a file written before format version 9 reads: counts weighed as
    /// `1 + ln(count)`, as every build weighed them then.
    fn before_version_9(mut artifact: ModelArtifact) -> ModelArtifact {
        artifact.log_count_scale = 1.0;
        before_version_10(artifact)
    }

    /// `artifact` as a file written before format version 10 reads: no word-list features,
    /// which no build extracted then.
    fn before_version_10(mut artifact: ModelArtifact) -> ModelArtifact {
        artifact.feature_config.lexicons = 0;
        artifact
    }

    /// Checks that `bytes`, a file of format `version`, reads as `expected`, and that re-saved
    /// it becomes a current file with the same content; returns what was read.
    fn assert_reads_as(
        bytes: &[u8],
        version: u32,
        expected: &ModelArtifact,
    ) -> Result<ModelArtifact, ArtifactError> {
        let (loaded, found) = ModelArtifact::from_bytes_with_version(bytes)?;
        assert_eq!((&loaded, found), (expected, version));
        let (again, found) = ModelArtifact::from_bytes_with_version(&loaded.to_bytes()?)?;
        assert_eq!((&again, found), (expected, FORMAT_VERSION));
        Ok(loaded)
    }

    /// Checks that the payload of file `bytes` is refused, not misread, under a `version` header.
    fn assert_refused_under(version: u32, bytes: &[u8]) {
        assert!(ModelArtifact::from_bytes(&frame(version, &bytes[HEADER_LEN..])).is_err());
    }

    /// Checks that `current`, which has a part format `version` lacks, round-trips as a current
    /// file and is refused, not misread, under a `version` header.
    fn assert_round_trips_but_not_as(
        current: &ModelArtifact,
        version: u32,
    ) -> Result<(), ArtifactError> {
        let bytes = current.to_bytes()?;
        assert_eq!(&ModelArtifact::from_bytes(&bytes)?, current);
        assert_refused_under(version, &bytes);
        Ok(())
    }

    #[test]
    fn version_1_files_still_load_without_online_state() -> Result<(), ArtifactError> {
        let mut artifact = legacy_artifact();
        artifact.online_state = None;
        artifact.metadata.model_id = "sf-version1".into();
        let bytes = version_1_bytes(&artifact);
        assert_eq!(&bytes[8..12], &1u32.to_le_bytes());
        let loaded = assert_reads_as(&bytes, 1, &artifact)?;
        assert_eq!(loaded.metadata.parent_model_id, None);
        // A current payload under a version-1 header is refused, not misread.
        let current = tiny_artifact().to_bytes()?;
        assert_refused_under(1, &current);
        Ok(())
    }

    #[test]
    fn version_2_files_load_with_header_words_on() -> Result<(), ArtifactError> {
        let artifact = legacy_artifact();
        let loaded = assert_reads_as(&version_2_bytes(&artifact), 2, &artifact)?;
        assert!(loaded.feature_config.header_words);
        let current = tiny_artifact().to_bytes()?;
        assert!(ModelArtifact::from_bytes(&frame(2, &current[HEADER_LEN..])).is_err());
        Ok(())
    }

    #[test]
    fn version_3_files_load_without_build_options() -> Result<(), ArtifactError> {
        let artifact = before_version_6(tiny_artifact());
        let loaded = assert_reads_as(VERSION_3_FILE, 3, &artifact)?;
        assert!(!loaded.feature_config.header_words, "kept as written");
        let mut current = tiny_artifact();
        current.metadata.build_options = Some(r#"{"seed":1}"#.into());
        assert_round_trips_but_not_as(&current, 3)
    }

    /// [`tiny_artifact`] with build options, as a version-4 build wrote it.
    const VERSION_4_FILE: &[u8] = include_bytes!("../tests/fixtures/format-4.spamflow");

    #[test]
    fn version_4_files_load_without_category_counts() -> Result<(), ArtifactError> {
        let mut artifact = before_version_6(tiny_artifact());
        artifact.metadata.build_options = Some(r#"{"seed":1}"#.into());
        let loaded = assert_reads_as(VERSION_4_FILE, 4, &artifact)?;
        assert_eq!(loaded.category_counts, None);
        let mut current = artifact.clone();
        current.category_counts = Some(tiny_counts());
        assert_round_trips_but_not_as(&current, 4)
    }

    /// [`tiny_artifact`] with build options and category counts, as a version-5 build wrote it.
    const VERSION_5_FILE: &[u8] = include_bytes!("../tests/fixtures/format-5.spamflow");

    #[test]
    fn version_5_files_load_with_the_words_of_every_header_field() -> Result<(), ArtifactError> {
        let mut artifact = before_version_6(tiny_artifact());
        artifact.metadata.build_options = Some(r#"{"seed":1}"#.into());
        artifact.category_counts = Some(tiny_counts());
        assert_reads_as(VERSION_5_FILE, 5, &artifact)?;
        let current = tiny_artifact().to_bytes()?;
        assert!(ModelArtifact::from_bytes(&frame(5, &current[HEADER_LEN..])).is_err());
        Ok(())
    }

    #[test]
    fn a_version_5_model_with_header_words_keeps_extracting_every_field()
    -> Result<(), ArtifactError> {
        let mut artifact = legacy_artifact();
        artifact.category_counts = Some(tiny_counts());
        let tail = (&artifact.online_state, &artifact.category_counts);
        let config = feature_config_v5(&artifact.feature_config);
        let bytes = legacy_bytes(5, &artifact.metadata, config, &artifact, tail);
        let loaded = assert_reads_as(&bytes, 5, &artifact)?;
        let mail =
            b"From: a@a.example\nReceived: from relay.a.example\nList-Id: <fans.example>\n\nhi\n";
        let names = feature_names(loaded.feature_config, mail);
        assert!(names.contains("hdr:received:relay") && names.contains("hdr:list-id:fans"));
        Ok(())
    }

    /// The names of the features `config` extracts from `mail`.
    fn feature_names(config: FeatureConfig, mail: &[u8]) -> std::collections::BTreeSet<String> {
        let extractor = spamflow_features::FeatureExtractor::new(config, None);
        let mut names = spamflow_features::FeatureNames::default();
        let extraction = extractor.features_of(&extractor.parse(mail), Some(&mut names));
        extraction
            .features
            .entries
            .iter()
            .filter_map(|(hash, _)| names.get(*hash).map(str::to_owned))
            .collect()
    }

    /// [`tiny_artifact`] with build options and category counts, as a version-6 build wrote it.
    const VERSION_6_FILE: &[u8] = include_bytes!("../tests/fixtures/format-6.spamflow");

    #[test]
    fn version_6_files_load_without_a_naive_bayes_part() -> Result<(), ArtifactError> {
        let mut artifact = before_version_8(tiny_artifact());
        artifact.metadata.build_options = Some(r#"{"seed":1}"#.into());
        artifact.category_counts = Some(tiny_counts());
        assert_reads_as(VERSION_6_FILE, 6, &artifact)?;
        // A version-6 payload under a version-7 header is refused, not misread.
        assert_refused_under(7, VERSION_6_FILE);
        let mut current = artifact.clone();
        current.spam_naive_bayes = Some(tiny_naive_bayes());
        assert_round_trips_but_not_as(&current, 6)
    }

    /// [`tiny_artifact`] with build options, category counts and a spam-head naive Bayes part,
    /// as a version-7 build wrote it.
    const VERSION_7_FILE: &[u8] = include_bytes!("../tests/fixtures/format-7.spamflow");

    /// `artifact` with build options, category counts and a spam-head naive Bayes part, as the
    /// fixtures of format versions 7 and later have them.
    fn with_every_part(mut artifact: ModelArtifact) -> ModelArtifact {
        artifact.metadata.build_options = Some(r#"{"seed":1}"#.into());
        artifact.category_counts = Some(tiny_counts());
        artifact.spam_naive_bayes = Some(tiny_naive_bayes());
        artifact
    }

    #[test]
    fn version_7_files_load_with_the_mime_structure_features() -> Result<(), ArtifactError> {
        let artifact = with_every_part(before_version_8(tiny_artifact()));
        let loaded = assert_reads_as(VERSION_7_FILE, 7, &artifact)?;
        // It keeps extracting the structure features it was trained with.
        let html = b"From: a@a.example\nContent-Type: text/html\n\n<p>hi <b>there</b></p>\n";
        assert!(feature_names(loaded.feature_config, html).contains("meta:html_only"));
        // A version-7 payload under a version-8 header is refused, not misread, and a current
        // file is not read as version 7.
        assert_refused_under(8, VERSION_7_FILE);
        let mut current = artifact.clone();
        current.feature_config.mime_structure = false;
        assert_round_trips_but_not_as(&current, 7)
    }

    /// [`tiny_artifact`] with build options, category counts and a spam-head naive Bayes part,
    /// as a version-8 build wrote it.
    const VERSION_8_FILE: &[u8] = include_bytes!("../tests/fixtures/format-8.spamflow");

    #[test]
    fn version_8_files_load_weighing_counts_as_before() -> Result<(), ArtifactError> {
        let artifact = with_every_part(before_version_9(tiny_artifact()));
        let loaded = assert_reads_as(VERSION_8_FILE, 8, &artifact)?;
        assert_eq!(loaded.log_count_scale, 1.0);
        // A version-8 payload under a version-9 header is refused, not misread, and a current
        // file is not read as version 8.
        assert_refused_under(9, VERSION_8_FILE);
        let mut current = artifact.clone();
        current.log_count_scale = 0.25;
        assert_round_trips_but_not_as(&current, 8)
    }

    /// [`tiny_artifact`] with build options, category counts and a spam-head naive Bayes part,
    /// as a version-9 build wrote it.
    const VERSION_9_FILE: &[u8] = include_bytes!("../tests/fixtures/format-9.spamflow");

    #[test]
    fn version_9_files_load_without_word_list_features() -> Result<(), ArtifactError> {
        let artifact = with_every_part(before_version_10(tiny_artifact()));
        let loaded = assert_reads_as(VERSION_9_FILE, 9, &artifact)?;
        assert_eq!(loaded.log_count_scale, 0.25);
        // It keeps extracting the features it was trained with: no word lists.
        let pharma = b"From: a@a.example\nSubject: cheap viagra\n\nour pharmacy\n";
        assert!(!feature_names(loaded.feature_config, pharma).contains("lex:pharma"));
        // A version-9 payload under a version-10 header is refused, not misread, and a current
        // file is not read as version 9.
        assert_refused_under(10, VERSION_9_FILE);
        let mut current = artifact.clone();
        current.feature_config.lexicons = 1;
        current.tokenizer_json = Some("{}".into());
        assert_round_trips_but_not_as(&current, 9)
    }

    #[test]
    fn a_count_scale_outside_0_to_1_is_refused() -> Result<(), ArtifactError> {
        for scale in [-0.5, 1.5, f32::NAN, f32::INFINITY] {
            let mut artifact = tiny_artifact();
            artifact.log_count_scale = scale;
            let error = ModelArtifact::from_bytes(&artifact.to_bytes()?)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains("log count scale"), "{scale}: {error}");
        }
        Ok(())
    }

    #[test]
    fn word_lists_this_build_does_not_have_are_refused() -> Result<(), ArtifactError> {
        let mut artifact = tiny_artifact();
        artifact.feature_config.lexicons = spamflow_features::LEXICON_VERSION + 1;
        let error = ModelArtifact::from_bytes(&artifact.to_bytes()?)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("word lists version 2 is unknown"), "{error}");
        artifact.feature_config.lexicons = spamflow_features::LEXICON_VERSION;
        assert_eq!(ModelArtifact::from_bytes(&artifact.to_bytes()?)?, artifact);
        Ok(())
    }

    /// A spam-head naive Bayes part that fits [`tiny_artifact`].
    fn tiny_naive_bayes() -> SpamNaiveBayes {
        SpamNaiveBayes {
            blend: 0.05,
            alpha: 0.01,
            rows: [3, 2],
            sums: vec![2.5, 0.5, 0.25, 1.75],
        }
    }

    #[test]
    fn inconsistent_naive_bayes_parts_are_refused() -> Result<(), ArtifactError> {
        type Breakage = fn(&mut SpamNaiveBayes);
        let breakages: [(Breakage, &str); 7] = [
            (|nb| nb.sums.push(1.0), "do not match 2 feature rows"),
            (|nb| nb.blend = 0.0, "blend"),
            (|nb| nb.blend = f64::INFINITY, "blend"),
            (|nb| nb.alpha = -1.0, "smoothing alpha"),
            (|nb| nb.rows[1] = 0, "no rows"),
            (|nb| nb.sums[0] = f64::NAN, "summed value"),
            (|nb| nb.sums[3] = -1.0, "summed value"),
        ];
        assert_refused("spam naive Bayes", &breakages, |artifact, breakage| {
            let mut naive_bayes = tiny_naive_bayes();
            breakage(&mut naive_bayes);
            artifact.spam_naive_bayes = Some(naive_bayes);
        })?;
        // Nor without the FTRL state it was added to.
        assert_refused(
            "spam naive Bayes",
            &[((), "without the FTRL state")],
            |artifact, ()| {
                artifact.spam_naive_bayes = Some(tiny_naive_bayes());
                artifact.online_state = None;
            },
        )
    }

    /// Checks that [`tiny_artifact`] with each breakage applied (by `apply`) is refused at load
    /// with an error naming `part` and the breakage's expected reason.
    fn assert_refused<B: Copy>(
        part: &str,
        breakages: &[(B, &str)],
        apply: impl Fn(&mut ModelArtifact, B),
    ) -> Result<(), ArtifactError> {
        for &(breakage, expected) in breakages {
            let mut artifact = tiny_artifact();
            apply(&mut artifact, breakage);
            let error = ModelArtifact::from_bytes(&artifact.to_bytes()?)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains(part) && error.contains(expected),
                "{expected}: {error}"
            );
        }
        Ok(())
    }

    /// Category counts that fit [`tiny_artifact`]: over its second row only.
    fn tiny_counts() -> CategoryCounts {
        CategoryCounts {
            alpha: 0.1,
            columns: vec![1],
            rows: vec![1, 0, 0, 0, 0, 0, 2],
            sums: vec![0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 1.5],
        }
    }

    #[test]
    fn inconsistent_category_counts_are_refused() -> Result<(), ArtifactError> {
        type Breakage = fn(&mut CategoryCounts);
        let breakages: [(Breakage, &str); 10] = [
            (|c| c.columns = vec![2], "do not match 2 feature rows"),
            (
                |c| c.rows.pop().map_or((), drop),
                "do not match 2 feature rows",
            ),
            (
                |c| {
                    c.columns = vec![1, 1];
                    c.sums = [c.sums.clone(), c.sums.clone()].concat();
                },
                "not ascending and distinct",
            ),
            (|c| c.sums[0] = f64::NAN, "summed value"),
            (|c| c.sums[6] = 1e300, "summed value"),
            (|c| c.alpha = 0.0, "smoothing alpha"),
            (|c| c.alpha = 1e308, "smoothing alpha"),
            (|c| c.rows[0] = u64::MAX, "row count"),
            (|c| c.rows[0] = 0, "without rows has summed values"),
            (|c| c.rows = vec![0; 7], "no category has rows"),
        ];
        assert_refused("category counts", &breakages, |artifact, breakage| {
            let mut counts = tiny_counts();
            breakage(&mut counts);
            artifact.category_counts = Some(counts);
        })
    }

    #[test]
    fn round_trips_and_refuses_damage_with_clear_errors() -> Result<(), ArtifactError> {
        let artifact = tiny_artifact();
        let bytes = artifact.to_bytes()?;
        assert_eq!(ModelArtifact::from_bytes(&bytes)?, artifact);

        let error = |bytes: &[u8]| {
            ModelArtifact::from_bytes(bytes)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(error(b"hello").contains("not a spamflow model"));
        assert!(error(&bytes[..bytes.len() - 3]).contains("truncated"));
        assert!(error(&bytes[..30]).contains("truncated"));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(error(&flipped).contains("checksum"));
        let mut future = bytes.clone();
        future[8] = 99;
        assert!(error(&future).contains("version 99"));
        assert!(error(&future).contains("versions 1 to 10"));
        let mut inconsistent = artifact.clone();
        inconsistent.spam_weights.pop();
        assert!(error(&inconsistent.to_bytes()?).contains("spam weights"));
        let mut short_state = artifact.clone();
        if let Some(state) = short_state.online_state.as_mut() {
            state.n.pop();
        }
        assert!(error(&short_state.to_bytes()?).contains("online state"));
        Ok(())
    }
}

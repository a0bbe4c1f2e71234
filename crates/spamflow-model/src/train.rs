//! Training: messages to a [`ModelArtifact`], with linfa doing the learning.
//!
//! 1. unless one is given, train the subword tokenizer on the text it will see in serving (a
//!    first parse of every message, keeping only that text);
//! 2. parse and extract sparse features, in chunks, and keep the most informative ones
//!    (chi-squared against spam/ham and against each category, after a minimum document
//!    frequency);
//! 3. fit logistic regression, multinomial naive Bayes and FTRL on the kept features and compare
//!    them by stratified k-fold cross-validated ROC AUC. With [`TrainOptions::headerless_copies`]
//!    they learn from every message and its headerless copy ([`SpamRows`]); only the messages
//!    are scored. Rows stay sparse ([`SparseRows`]);
//!    FTRL sees one dense mini-batch at a time, so its memory grows with the messages' non-zero
//!    values, not messages x features (logistic regression and naive Bayes need a dense matrix);
//! 4. fit the best on all data, calibrate it (Platt scaling on out-of-fold scores) and choose the
//!    threshold that keeps the out-of-fold false-positive rate at the target;
//! 5. fit the category head (over labeled spam and, with headerless copies, their copies;
//!    [`CategoryAlgorithm`]) and pack everything into one artifact.
//!
//! All three learners are linear, so serving needs one weight row per feature whatever won.

use std::collections::{BTreeMap, HashMap};

use linfa::prelude::*;
use linfa_bayes::MultinomialNb;
use linfa_ftrl::Ftrl;
use linfa_logistic::{LogisticRegression, MultiLogisticRegression};
use ndarray::{Array1, Array2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spamflow_features::{
    Extraction, FeatureConfig, FeatureExtractor, FeatureNames, SparseFeatures, SubwordError,
    SubwordTokenizer,
};

use crate::artifact::{
    CategoryCounts, ModelArtifact, ModelMetadata, OnlineState, SpamNaiveBayes, TrainingData,
    ValidationSummary, log_count_scale_problem,
};
use crate::category::Category;
use crate::metrics::{binary_metrics, category_report, roc_auc};
use crate::scorer::{CountWeighting, feature_values, sigmoid};

/// A learning algorithm for the spam head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// L2-regularised logistic regression (linfa-logistic, L-BFGS).
    Logistic,
    /// Multinomial naive Bayes (linfa-bayes).
    NaiveBayes,
    /// Follow-the-regularised-leader logistic regression, trained online (linfa-ftrl).
    Ftrl,
}

impl Algorithm {
    /// Every algorithm, in comparison order.
    pub const ALL: [Algorithm; 3] = [Algorithm::Logistic, Algorithm::NaiveBayes, Algorithm::Ftrl];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Logistic => "logistic",
            Algorithm::NaiveBayes => "naive_bayes",
            Algorithm::Ftrl => "ftrl",
        }
    }

    /// An algorithm by name, or `None` for `"auto"` (compare them all).
    pub fn parse_or_auto(name: &str) -> Result<Option<Algorithm>, UnknownAlgorithm> {
        if name == "auto" {
            return Ok(None);
        }
        name.parse()
            .map(Some)
            .map_err(|_: UnknownAlgorithm| UnknownAlgorithm::new(name, &["auto"]))
    }
}

/// A name that is not an algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown algorithm {name:?} (expected one of {expected})")]
pub struct UnknownAlgorithm {
    name: String,
    expected: String,
}

impl UnknownAlgorithm {
    /// `name` is unknown; `also` are names accepted besides the algorithms.
    fn new(name: &str, also: &[&str]) -> Self {
        let known: Vec<&str> = Algorithm::ALL
            .iter()
            .map(|a| a.as_str())
            .chain(also.iter().copied())
            .collect();
        UnknownAlgorithm {
            name: name.to_owned(),
            expected: known.join(", "),
        }
    }
}

/// An optional algorithm in options files: its name, or `"auto"` for `None` (compare them all;
/// `null`, as the first format-4 files recorded it, means the same).
mod algorithm_or_auto {
    use super::Algorithm;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(
        algorithm: &Option<Algorithm>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(algorithm.map_or("auto", Algorithm::as_str))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Algorithm>, D::Error> {
        match Option::<String>::deserialize(deserializer)?.as_deref() {
            None => Ok(None),
            Some(name) => Algorithm::parse_or_auto(name).map_err(D::Error::custom),
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == name)
            .ok_or_else(|| UnknownAlgorithm::new(name, &[]))
    }
}

/// One training message.
#[derive(Debug, Clone, Copy)]
pub struct LabeledMessage<'a> {
    /// Raw message bytes.
    pub bytes: &'a [u8],
    /// True for spam.
    pub spam: bool,
    /// Category label of a spam message, when known.
    pub category: Option<Category>,
}

/// A learning algorithm for the category head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoryAlgorithm {
    /// Multinomial logistic regression (linfa-logistic, L-BFGS), minority categories repeated.
    /// (`"ftrl"`, which options could name when the field took a spam-head algorithm, fitted
    /// this head too.)
    #[serde(alias = "ftrl")]
    Logistic,
    /// Multinomial naive Bayes (linfa-bayes), uniform priors, minority categories repeated
    /// (the default before 28 November 2026).
    NaiveBayes,
    /// One-vs-rest naive Bayes: per category, its naive Bayes log-probabilities minus those of
    /// all other categories together, scaled to a mean absolute weight of 1 (the weight
    /// normalisation of Rennie et al., 2003), every labeled row learned once.
    OneVsRestNaiveBayes,
}

impl CategoryAlgorithm {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CategoryAlgorithm::Logistic => "logistic",
            CategoryAlgorithm::NaiveBayes => "naive_bayes",
            CategoryAlgorithm::OneVsRestNaiveBayes => "one_vs_rest_naive_bayes",
        }
    }

    /// Whether the head is naive Bayes, whose class sums `update` continues.
    fn is_naive_bayes(self) -> bool {
        matches!(
            self,
            CategoryAlgorithm::NaiveBayes | CategoryAlgorithm::OneVsRestNaiveBayes
        )
    }
}

/// Training settings. `Default` gives the settings of the shipped model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainOptions {
    /// Seed for fold assignment and shuffling.
    pub seed: u64,
    /// The spam-head algorithm; `None` compares all by cross-validation and keeps the best
    /// (default FTRL: it won that comparison, see docs/spam-head.md). Written `"auto"` in options files.
    #[serde(with = "algorithm_or_auto")]
    pub algorithm: Option<Algorithm>,
    /// How messages become features.
    pub feature_config: FeatureConfig,
    /// Subword vocabulary size (0: no subword features).
    pub subword_vocab_size: usize,
    /// Features kept after selection.
    pub max_features: usize,
    /// Share of `max_features` reserved for category-informative features.
    pub category_feature_share: f64,
    /// Minimum number of training messages a feature must occur in.
    pub min_document_frequency: u32,
    /// Cross-validation folds.
    pub folds: usize,
    /// Out-of-fold false-positive rate the threshold is chosen for.
    pub target_fpr: f64,
    /// Logistic regression L2 strength.
    pub logistic_alpha: f64,
    /// Logistic regression L-BFGS iterations.
    pub logistic_iterations: u64,
    /// Naive Bayes additive smoothing.
    pub naive_bayes_alpha: f64,
    /// Weight of a naive Bayes model's log-odds added to the FTRL spam head's weights (0: FTRL
    /// alone). Both learn from the same rows; the sum is calibrated as one model. Applies to
    /// FTRL only: `algorithm = "ftrl"`, and the FTRL candidate under `"auto"` (docs/spam-head.md).
    pub naive_bayes_blend: f64,
    /// FTRL passes over the data.
    pub ftrl_epochs: usize,
    /// FTRL learning rate (alpha).
    pub ftrl_alpha: f64,
    /// FTRL L1 regularisation.
    pub ftrl_l1: f64,
    /// FTRL L2 regularisation.
    pub ftrl_l2: f64,
    /// Category head algorithm: `one_vs_rest_naive_bayes` (default), `naive_bayes` or
    /// `logistic` (README, "How it works").
    pub category_algorithm: CategoryAlgorithm,
    /// Category head L2 strength (logistic).
    pub category_alpha: f64,
    /// Category head L-BFGS iterations.
    pub category_iterations: u64,
    /// Also train both heads on a copy of every message without header features (the `hdr:`
    /// namespace: header words and facts), so that what a message says keeps its weight on mail
    /// from servers and lists the model has never seen (docs/generalization.md).
    /// Copies are learned from, never scored for validation or calibration.
    pub headerless_copies: bool,
    /// A feature counted `n` times in a message has the value `1 + log_count_scale * ln(n)`
    /// before the message's values are scaled to unit length: 1 is the usual logarithmic term
    /// frequency, 0 presence only (docs/generalization.md). From 0 to 1.
    pub log_count_scale: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seed: 42,
            algorithm: Some(Algorithm::Ftrl),
            feature_config: FeatureConfig::default(),
            subword_vocab_size: 8000,
            max_features: 40_000,
            category_feature_share: 0.1,
            min_document_frequency: 2,
            folds: 5,
            target_fpr: 0.001,
            logistic_alpha: 0.001,
            logistic_iterations: 60,
            naive_bayes_alpha: 0.01,
            naive_bayes_blend: 0.05,
            ftrl_epochs: 200,
            ftrl_alpha: 0.5,
            ftrl_l1: 0.0001,
            ftrl_l2: 0.001,
            category_algorithm: CategoryAlgorithm::OneVsRestNaiveBayes,
            category_alpha: 0.001,
            category_iterations: 150,
            headerless_copies: true,
            log_count_scale: 0.25,
        }
    }
}

/// Receives progress reports; the CLI draws progress bars from them.
pub trait TrainProgress: Sync {
    /// A new stage with `total` steps begins.
    fn stage(&self, _name: &str, _total: u64) {}
    /// `steps` more steps of the current stage are done.
    fn advance(&self, _steps: u64) {}
    /// Runs `work`, hiding what it prints on stderr (linfa-bayes 0.8.1 leaves a `dbg!` in
    /// multinomial naive Bayes fitting that dumps whole histograms).
    fn quietly(&self, work: &mut dyn FnMut()) {
        work()
    }
}

/// Progress reports that go nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl TrainProgress for NoProgress {}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Too little data to cross-validate.
    #[error(
        "training needs at least {needed} spam and {needed} ham messages, got {spam} spam and {ham} ham"
    )]
    TooFewMessages {
        /// Minimum per class.
        needed: usize,
        /// Spam given.
        spam: usize,
        /// Ham given.
        ham: usize,
    },
    /// No feature passed the selection.
    #[error("no feature occurs in at least {0} messages")]
    NoFeatures(u32),
    /// Training the subword tokenizer failed.
    #[error(transparent)]
    Subword(#[from] SubwordError),
    /// The model cannot be updated incrementally.
    #[error("model {model_id} cannot be updated: {reason}")]
    NotUpdatable {
        /// The model given.
        model_id: String,
        /// Why not.
        reason: String,
    },
    /// An update was given no messages.
    #[error("an update needs at least one message")]
    NoMessages,
    /// An option is out of its range.
    #[error("invalid option {name}: {reason}")]
    InvalidOption {
        /// The option's name in options files.
        name: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The options could not be recorded in the model's metadata.
    #[error("cannot record the options in the model: {0}")]
    Options(#[from] serde_json::Error),
    /// A linfa estimator failed.
    #[error("{algorithm} training failed: {message}")]
    Estimator {
        /// Which estimator.
        algorithm: &'static str,
        /// What it said.
        message: String,
    },
}

pub(crate) fn estimator_error(algorithm: &'static str) -> impl Fn(String) -> TrainError {
    move |message| TrainError::Estimator { algorithm, message }
}

/// Trains a model. `created_at` and `training_data` are recorded in the metadata as given
/// (counts are filled in here). With `tokenizer`, that subword tokenizer is used instead of
/// training one: the rest of training is deterministic for a seed, tokenizer training is not.
pub fn train(
    messages: &[LabeledMessage<'_>],
    options: &TrainOptions,
    tokenizer: Option<SubwordTokenizer>,
    created_at: &str,
    mut training_data: TrainingData,
    progress: &dyn TrainProgress,
) -> Result<ModelArtifact, TrainError> {
    let labels: Vec<bool> = messages.iter().map(|m| m.spam).collect();
    let spam = labels.iter().filter(|&&s| s).count();
    let ham = labels.len() - spam;
    if options.folds < 2 {
        return Err(TrainError::InvalidOption {
            name: "folds",
            reason: format!(
                "cross-validation needs at least 2 folds, got {}",
                options.folds
            ),
        });
    }
    let share = options.category_feature_share;
    if !(0.0..1.0).contains(&share) {
        return Err(TrainError::InvalidOption {
            name: "category_feature_share",
            reason: format!(
                "the share must be a number from 0 up to (not including) 1, got {share}"
            ),
        });
    }
    let needed = options.folds;
    if spam < needed || ham < needed {
        return Err(TrainError::TooFewMessages { needed, spam, ham });
    }
    let alpha = options.naive_bayes_alpha;
    if !(alpha > 0.0 && alpha <= CategoryCounts::MAX_ALPHA) {
        return Err(TrainError::InvalidOption {
            name: "naive_bayes_alpha",
            reason: format!("the smoothing must be a positive number up to 1e6, got {alpha}"),
        });
    }
    let blend = options.naive_bayes_blend;
    if !(0.0..=SpamNaiveBayes::MAX_BLEND).contains(&blend) {
        return Err(TrainError::InvalidOption {
            name: "naive_bayes_blend",
            reason: format!(
                "the blend must be a number from 0 to {}, got {blend}",
                SpamNaiveBayes::MAX_BLEND
            ),
        });
    }
    let scale = options.log_count_scale;
    if let Some(reason) = log_count_scale_problem(scale) {
        return Err(TrainError::InvalidOption {
            name: "log_count_scale",
            reason,
        });
    }
    if let Some(reason) = options.feature_config.problem() {
        return Err(TrainError::InvalidOption {
            name: "feature_config",
            reason,
        });
    }
    let weighting = CountWeighting::new(scale);
    count_messages(&mut training_data, messages);

    let tokenizer = if options.feature_config.subword_window_bytes == 0 {
        None
    } else if tokenizer.is_some() {
        tokenizer
    } else if options.subword_vocab_size > 0 {
        let plain = FeatureExtractor::new(options.feature_config.clone(), None);
        let texts = subword_texts(&plain, messages, progress);
        progress.stage("train subword tokenizer", 1);
        let tokenizer = SubwordTokenizer::train(texts.iter(), options.subword_vocab_size)?;
        progress.advance(1);
        Some(tokenizer)
    } else {
        None
    };
    let extractor = FeatureExtractor::new(options.feature_config.clone(), tokenizer);
    let Extracted {
        examples,
        headerless,
        names,
    } = extract_all(&extractor, options.headerless_copies, messages, progress);

    progress.stage("select features", 1);
    let categories: Vec<Option<Category>> = messages
        .iter()
        .map(|m| m.category.filter(|_| m.spam))
        .collect();
    let Selection {
        vocabulary,
        category_columns,
    } = select_features(&examples, &labels, &categories, options);
    if vocabulary.is_empty() {
        return Err(TrainError::NoFeatures(options.min_document_frequency));
    }
    // The names of every feature seen are many; only the kept ones are needed from here on.
    let feature_names: Vec<String> = vocabulary
        .iter()
        .map(|&h| names.get(h).unwrap_or("?").to_owned())
        .collect();
    drop(names);
    let row_of: HashMap<u64, u32> = vocabulary
        .iter()
        .enumerate()
        .map(|(i, &h)| (h, i as u32))
        .collect();
    let x = SparseRows::new(examples.iter().map(|e| &e.features), &row_of, &weighting);
    drop(examples);
    let copies = SparseRows::new(&headerless, &row_of, &weighting);
    drop(headerless);
    let category_rows = TrainingRows::new(
        x.columns(&category_columns),
        copies.columns(&category_columns),
        &categories,
    );
    let spam_rows = SpamRows::new(x, copies, &labels);
    progress.advance(1);

    let folds = fold_assignment(&labels, options.folds, options.seed);
    let candidates: Vec<Algorithm> = match options.algorithm {
        Some(algorithm) => vec![algorithm],
        None => Algorithm::ALL.to_vec(),
    };
    progress.stage("cross-validate", (candidates.len() * options.folds) as u64);
    let mut compared = Vec::new();
    let mut best: Option<(Algorithm, f64, Vec<f64>)> = None;
    for algorithm in candidates {
        let out_of_fold = cross_validate(algorithm, &spam_rows, &folds, options, progress)?;
        let auc = roc_auc(&out_of_fold, &labels);
        compared.push((algorithm.as_str().to_owned(), auc));
        if best.as_ref().is_none_or(|(_, best_auc, _)| auc > *best_auc) {
            best = Some((algorithm, auc, out_of_fold));
        }
    }
    let Some((algorithm, cv_auc, out_of_fold)) = best else {
        return Err(TrainError::NoFeatures(options.min_document_frequency));
    };

    progress.stage("fit final model", 2);
    let fit = fit_linear(algorithm, &spam_rows, &spam_rows.all(), options, progress)?;
    drop(spam_rows);
    progress.advance(1);
    let calibration = platt_scaling(&out_of_fold, &labels)?;
    let calibrated: Vec<f64> = out_of_fold
        .iter()
        .map(|&s| f64::from(sigmoid((calibration.0 * s + calibration.1) as f32)))
        .collect();
    let threshold = choose_threshold(&calibrated, &labels, options.target_fpr);
    let at_threshold = binary_metrics(&calibrated, &labels, threshold);
    progress.advance(1);

    progress.stage("category head", options.folds as u64 + 1);
    let head = fit_category_head(
        &category_rows,
        &folds,
        &CategorySums::default(),
        options,
        None,
        progress,
    )?;
    drop(category_rows);
    let category_weights =
        spread_category_weights(&head.weights, &category_columns, vocabulary.len());
    let category_counts = head
        .learned
        .map(|learned| learned.to_counts(&category_columns, options.naive_bayes_alpha));

    let spam_weights: Vec<f32> = fit.weights.iter().map(|&w| w as f32).collect();
    let mut artifact = ModelArtifact {
        metadata: ModelMetadata {
            model_id: String::new(),
            created_at: created_at.to_owned(),
            spamflow_version: env!("CARGO_PKG_VERSION").to_owned(),
            algorithm: algorithm.as_str().to_owned(),
            seed: options.seed,
            training_data,
            validation: ValidationSummary {
                folds: options.folds,
                candidates: compared,
                roc_auc: cv_auc,
                fpr: at_threshold.fpr,
                recall: at_threshold.recall,
                category_macro_f1: head.macro_f1,
            },
            build_options: Some(serde_json::to_string(options)?),
            parent_model_id: None,
        },
        feature_config: options.feature_config.clone(),
        tokenizer_json: extractor
            .subword()
            .map(SubwordTokenizer::to_json)
            .transpose()?,
        feature_hashes: vocabulary,
        feature_names,
        spam_weights,
        spam_bias: fit.bias as f32,
        category_weights,
        category_bias: head.bias,
        calibration: (calibration.0 as f32, calibration.1 as f32),
        threshold: threshold as f32,
        online_state: fit.ftrl.as_ref().map(online_state),
        category_counts,
        spam_naive_bayes: fit.naive_bayes,
        log_count_scale: scale,
    };
    artifact.metadata.model_id = model_id(&artifact);
    Ok(artifact)
}

/// The storable form of a linfa FTRL model's state.
pub(crate) fn online_state(model: &Ftrl<f64>) -> OnlineState {
    OnlineState {
        alpha: model.alpha(),
        beta: model.beta(),
        l1: model.l1_ratio(),
        l2: model.l2_ratio(),
        z: model.z().iter().map(|&v| v as f32).collect(),
        n: model.n().iter().map(|&v| v as f32).collect(),
    }
}

/// Records the message, class and category counts of `messages` in `training_data`.
pub(crate) fn count_messages(training_data: &mut TrainingData, messages: &[LabeledMessage<'_>]) {
    training_data.messages = messages.len();
    training_data.spam = messages.iter().filter(|m| m.spam).count();
    training_data.ham = messages.len() - training_data.spam;
    training_data.categories = Category::ALL
        .into_iter()
        .map(|c| {
            (
                c.as_str().to_owned(),
                messages
                    .iter()
                    .filter(|m| m.spam && m.category == Some(c))
                    .count(),
            )
        })
        .collect();
}

/// The "parse" stage when a subword tokenizer is trained: the text it will see of every
/// message, in input order. Parsed mail is not kept: at scale it would not fit in memory.
fn subword_texts(
    plain: &FeatureExtractor,
    messages: &[LabeledMessage<'_>],
    progress: &dyn TrainProgress,
) -> Vec<String> {
    progress.stage("parse", messages.len() as u64);
    messages
        .par_iter()
        .map(|m| {
            let text = plain.subword_text(&plain.parse(m.bytes));
            progress.advance(1);
            text
        })
        .collect()
}

/// Messages parsed and extracted together, so that only this many parsed messages and their
/// per-message feature names are alive at once.
const EXTRACT_CHUNK: usize = 512;

/// What the "extract features" stage produces, in input order.
pub(crate) struct Extracted {
    /// Every message's features.
    pub(crate) examples: Vec<Extraction>,
    /// Every message's headerless features, when asked for (else empty).
    pub(crate) headerless: Vec<SparseFeatures>,
    /// The readable names of all features of `examples` (the first name seen for a hash).
    pub(crate) names: FeatureNames,
}

/// The "extract features" stage: every message parsed once and turned into features, in
/// parallel; with `headerless_copies`, also into its headerless features.
pub(crate) fn extract_all(
    extractor: &FeatureExtractor,
    headerless_copies: bool,
    messages: &[LabeledMessage<'_>],
    progress: &dyn TrainProgress,
) -> Extracted {
    extract_in_chunks(
        extractor,
        headerless_copies,
        messages,
        EXTRACT_CHUNK,
        progress,
    )
}

/// [`extract_all`] with `chunk` messages at a time (at least 1).
fn extract_in_chunks(
    extractor: &FeatureExtractor,
    headerless_copies: bool,
    messages: &[LabeledMessage<'_>],
    chunk: usize,
    progress: &dyn TrainProgress,
) -> Extracted {
    progress.stage("extract features", messages.len() as u64);
    let mut extracted = Extracted {
        examples: Vec::with_capacity(messages.len()),
        headerless: Vec::new(),
        names: FeatureNames::default(),
    };
    for chunk in messages.chunks(chunk.max(1)) {
        let results: Vec<(Extraction, Option<SparseFeatures>, FeatureNames)> = chunk
            .par_iter()
            .map(|m| {
                let mail = extractor.parse(m.bytes);
                let mut message_names = FeatureNames::default();
                let (mut extraction, mut copy) =
                    extractor.features_and_copy(&mail, Some(&mut message_names), headerless_copies);
                // Kept until features are selected: give back the room of duplicate hashes.
                extraction.features.entries.shrink_to_fit();
                if let Some(copy) = &mut copy {
                    copy.entries.shrink_to_fit();
                }
                progress.advance(1);
                (extraction, copy, message_names)
            })
            .collect();
        for (extraction, copy, message_names) in results {
            extracted.names.merge(message_names);
            extracted.examples.push(extraction);
            extracted.headerless.extend(copy);
        }
    }
    extracted
}

/// Document frequencies of one feature: `[spam, ham, category 0..7]`.
type Frequencies = [u32; 2 + Category::ALL.len()];

/// The kept features.
struct Selection {
    /// Feature hashes, in column order.
    vocabulary: Vec<u64>,
    /// Columns chosen for telling categories apart (the category head's inputs).
    category_columns: Vec<usize>,
}

/// Chooses the kept features: minimum document frequency, then the best by chi-squared against
/// spam/ham, plus a reserved share of the best by chi-squared against each category within spam.
/// The category head reads only the category-ranked features: a dense multinomial fit over all
/// of them costs minutes, over these seconds.
fn select_features(
    examples: &[Extraction],
    labels: &[bool],
    categories: &[Option<Category>],
    options: &TrainOptions,
) -> Selection {
    let mut frequencies: HashMap<u64, Frequencies> = HashMap::new();
    for ((example, &spam), category) in examples.iter().zip(labels).zip(categories) {
        for &(hash, _) in &example.features.entries {
            let f = frequencies.entry(hash).or_insert([0; 9]);
            f[usize::from(!spam)] += 1;
            if let Some(c) = category {
                f[2 + c.index()] += 1;
            }
        }
    }
    frequencies.retain(|_, f| f[0] + f[1] >= options.min_document_frequency);
    let n_spam = labels.iter().filter(|&&s| s).count() as f64;
    let n_ham = labels.len() as f64 - n_spam;
    let mut category_sizes = [0f64; 7];
    for c in categories.iter().flatten() {
        category_sizes[c.index()] += 1.0;
    }
    let labeled_spam: f64 = category_sizes.iter().sum();

    let ranked = |score: &dyn Fn(&Frequencies) -> f64| -> Vec<u64> {
        best_first(frequencies.iter().map(|(&h, f)| (h, score(f))))
    };
    let category_quota = (options.max_features as f64 * options.category_feature_share) as usize;
    let spam_quota = options.max_features - category_quota;
    let mut chosen: Vec<u64> =
        ranked(&|f| chi_squared(f64::from(f[0]), f64::from(f[1]), n_spam, n_ham))
            .into_iter()
            .take(spam_quota)
            .collect();
    let mut column_of: HashMap<u64, usize> =
        chosen.iter().enumerate().map(|(i, &h)| (h, i)).collect();
    let mut category_columns = Vec::new();
    let per_category = category_quota / Category::ALL.len();
    for c in Category::ALL {
        let size = category_sizes[c.index()];
        if size == 0.0 {
            continue;
        }
        let ranking = ranked(&|f| {
            let inside = f64::from(f[2 + c.index()]);
            let outside: f64 = f[2..].iter().map(|&v| f64::from(v)).sum::<f64>() - inside;
            chi_squared(inside, outside, size, labeled_spam - size)
        });
        for hash in ranking.into_iter().take(per_category) {
            let column = *column_of.entry(hash).or_insert_with(|| {
                chosen.push(hash);
                chosen.len() - 1
            });
            category_columns.push(column);
        }
    }
    category_columns.sort_unstable();
    category_columns.dedup();
    Selection {
        vocabulary: chosen,
        category_columns,
    }
}

/// The hashes of `scored` `(hash, score)` pairs with a positive score, best first; equal scores
/// in hash order, so the ranking does not depend on the order they came in.
pub(crate) fn best_first(scored: impl Iterator<Item = (u64, f64)>) -> Vec<u64> {
    let mut scored: Vec<(f64, u64)> = scored
        .filter(|(_, score)| *score > 0.0)
        .map(|(hash, score)| (score, hash))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, hash)| hash).collect()
}

/// Chi-squared statistic of a feature present in `a` of `n1` positives and `b` of `n0` negatives,
/// signed zero when it is not more frequent in either class than chance allows.
pub(crate) fn chi_squared(a: f64, b: f64, n1: f64, n0: f64) -> f64 {
    let (c, d) = (n1 - a, n0 - b);
    let n = n1 + n0;
    let denominator = (a + b) * (c + d) * (a + c) * (b + d);
    if denominator <= 0.0 {
        return 0.0;
    }
    n * (a * d - b * c).powi(2) / denominator
}

/// Reusable buffers for [`SparseRows::dense_over_used_columns`]: a bit per column, set for the
/// columns a mini-batch uses, and each used column's position among them.
#[derive(Default)]
struct UsedColumns {
    marks: Vec<u64>,
    positions: Vec<u32>,
}

impl UsedColumns {
    /// Room for `n_columns` columns.
    fn fit(&mut self, n_columns: usize) {
        self.marks.resize(n_columns.div_ceil(64), 0);
        self.positions.resize(n_columns, 0);
    }

    /// Marks `column` as used; columns past the room are ignored.
    fn mark(&mut self, column: usize) {
        if column >= self.positions.len() {
            return;
        }
        if let Some(word) = self.marks.get_mut(column / 64) {
            *word |= 1 << (column % 64);
        }
    }

    /// The marked columns in ascending order; clears the marks and records the positions.
    fn take_ascending(&mut self) -> Vec<usize> {
        let mut columns = Vec::new();
        for (index, word) in self.marks.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                columns.push(index * 64 + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        }
        for (at, &column) in (0u32..).zip(&columns) {
            if let Some(position) = self.positions.get_mut(column) {
                *position = at;
            }
        }
        columns
    }

    /// The position of a column taken by the last [`UsedColumns::take_ascending`].
    fn position(&self, column: usize) -> Option<usize> {
        self.positions.get(column).map(|&at| at as usize)
    }
}

/// Training rows as sparse feature values, densified a few rows at a time: memory grows with
/// the non-zero values of the messages, not with messages x features.
pub(crate) struct SparseRows {
    rows: Vec<Vec<(u32, f32)>>,
    n_columns: usize,
}

impl SparseRows {
    /// The values of `examples` over the columns `column_of` gives (other features dropped).
    pub(crate) fn new<'a>(
        examples: impl IntoIterator<Item = &'a SparseFeatures>,
        column_of: &HashMap<u64, u32>,
        weighting: &CountWeighting,
    ) -> Self {
        SparseRows {
            rows: examples
                .into_iter()
                .map(|features| feature_values(features, |h| column_of.get(&h).copied(), weighting))
                .collect(),
            n_columns: column_of.len(),
        }
    }

    /// Number of rows.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// `other`'s rows after these (same columns).
    fn append(&mut self, other: SparseRows) {
        self.rows.extend(other.rows);
    }

    /// Number of columns (features).
    pub(crate) fn n_columns(&self) -> usize {
        self.n_columns
    }

    /// The sparse values of row `i`: `(column, value)`.
    pub(crate) fn row(&self, i: usize) -> &[(u32, f32)] {
        self.rows.get(i).map_or(&[], Vec::as_slice)
    }

    /// The given rows as a dense matrix, in that order.
    pub(crate) fn dense(&self, rows: &[usize]) -> Array2<f64> {
        let mut x = Array2::<f64>::zeros((rows.len(), self.n_columns));
        for (mut record, &i) in x.rows_mut().into_iter().zip(rows) {
            for &(column, value) in self.row(i) {
                record[column as usize] = f64::from(value);
            }
        }
        x
    }

    /// The given rows as a dense matrix over only the columns they use, and those columns
    /// (ascending): what one FTRL mini-batch needs, whatever the width of the whole matrix.
    /// `scratch` marks the used columns, so finding them takes no sort.
    fn dense_over_used_columns(
        &self,
        rows: &[usize],
        scratch: &mut UsedColumns,
    ) -> (Vec<usize>, Array2<f64>) {
        scratch.fit(self.n_columns);
        for &i in rows {
            for &(column, _) in self.row(i) {
                scratch.mark(column as usize);
            }
        }
        let columns = scratch.take_ascending();
        let mut x = Array2::<f64>::zeros((rows.len(), columns.len()));
        for (mut record, &i) in x.rows_mut().into_iter().zip(rows) {
            for &(column, value) in self.row(i) {
                if let Some(slot) = scratch
                    .position(column as usize)
                    .and_then(|at| record.get_mut(at))
                {
                    *slot = f64::from(value);
                }
            }
        }
        (columns, x)
    }

    /// `row(i) . weights`.
    pub(crate) fn dot(&self, i: usize, weights: &Array1<f64>) -> f64 {
        self.row(i)
            .iter()
            .map(|&(column, value)| weights[column as usize] * f64::from(value))
            .sum()
    }

    /// The same rows restricted to `columns`, renumbered in that order.
    pub(crate) fn columns(&self, columns: &[usize]) -> SparseRows {
        let mut renumbered = vec![None; self.n_columns];
        for (new, &old) in columns.iter().enumerate() {
            if let Some(slot) = renumbered.get_mut(old) {
                *slot = Some(new as u32);
            }
        }
        SparseRows {
            rows: self
                .rows
                .iter()
                .map(|row| {
                    row.iter()
                        .filter_map(|&(column, value)| {
                            Some((renumbered.get(column as usize).copied().flatten()?, value))
                        })
                        .collect()
                })
                .collect(),
            n_columns: columns.len(),
        }
    }
}

/// Stratified fold of each message, shuffled deterministically by `seed`.
pub(crate) fn fold_assignment(labels: &[bool], folds: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&i| {
        (
            labels[i],
            splitmix64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        )
    });
    let mut assignment = vec![0; labels.len()];
    let mut next = [0usize; 2];
    for i in order {
        let class = usize::from(labels[i]);
        assignment[i] = next[class] % folds;
        next[class] += 1;
    }
    assignment
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A head's training rows: one per message, then the headerless copies (if any), copy `i`
/// standing for message `i` and carrying its label.
pub(crate) struct TrainingRows<L> {
    pub(crate) x: SparseRows,
    /// Labels of every row.
    pub(crate) labels: Vec<L>,
    messages: usize,
}

/// The spam head's rows: spam or ham.
pub(crate) type SpamRows = TrainingRows<bool>;

impl<L: Clone> TrainingRows<L> {
    /// The rows of `messages` followed by those of `copies` (empty, or one per message).
    pub(crate) fn new(messages: SparseRows, copies: SparseRows, labels: &[L]) -> Self {
        let count = messages.len();
        debug_assert!(
            copies.len() == 0 || copies.len() == count,
            "one copy per message"
        );
        let mut x = messages;
        let mut row_labels = labels.to_vec();
        if copies.len() == count {
            x.append(copies);
            row_labels.extend_from_slice(labels);
        }
        TrainingRows {
            x,
            labels: row_labels,
            messages: count,
        }
    }

    /// The message row `row` stands for.
    fn message_of(&self, row: usize) -> usize {
        row % self.messages.max(1)
    }

    /// Every row.
    pub(crate) fn all(&self) -> Vec<usize> {
        (0..self.x.len()).collect()
    }

    /// For cross-validation fold `fold` of `folds` (one per message): the rows to learn from
    /// (the other folds' messages and their copies) and the messages to score (this fold's).
    pub(crate) fn fold_split(&self, folds: &[usize], fold: usize) -> (Vec<usize>, Vec<usize>) {
        let learn = (0..self.x.len())
            .filter(|&i| folds[self.message_of(i)] != fold)
            .collect();
        let score = (0..self.messages).filter(|&i| folds[i] == fold).collect();
        (learn, score)
    }
}

/// Out-of-fold raw scores of `algorithm` for every message: each fold's messages scored by a
/// model fitted on the rows (messages and copies) of the other folds.
fn cross_validate(
    algorithm: Algorithm,
    rows: &SpamRows,
    folds: &[usize],
    options: &TrainOptions,
    progress: &dyn TrainProgress,
) -> Result<Vec<f64>, TrainError> {
    let per_fold: Vec<Result<Vec<(usize, f64)>, TrainError>> = (0..options.folds)
        .into_par_iter()
        .map(|fold| {
            let (learn, score) = rows.fold_split(folds, fold);
            let fit = fit_linear(algorithm, rows, &learn, options, progress)?;
            progress.advance(1);
            Ok(score
                .into_iter()
                .map(|i| (i, rows.x.dot(i, &fit.weights) + fit.bias))
                .collect())
        })
        .collect();
    let mut out = vec![0.0; rows.messages];
    for fold in per_fold {
        for (i, score) in fold? {
            out[i] = score;
        }
    }
    Ok(out)
}

/// A fitted spam head in linear form: the raw score of a message is `x . weights + bias`, a
/// log-odds for every learner.
struct LinearFit {
    weights: Array1<f64>,
    bias: f64,
    /// The online-learning state, for FTRL.
    ftrl: Option<Ftrl<f64>>,
    /// The naive Bayes part blended into FTRL's weights, if any.
    naive_bayes: Option<SpamNaiveBayes>,
}

/// Fits `algorithm` on the given rows and returns its linear form.
fn fit_linear(
    algorithm: Algorithm,
    spam_rows: &SpamRows,
    rows: &[usize],
    options: &TrainOptions,
    progress: &dyn TrainProgress,
) -> Result<LinearFit, TrainError> {
    let (x, labels) = (&spam_rows.x, &spam_rows.labels);
    let records = || x.dense(rows);
    let targets = || rows.iter().map(|&i| labels[i]).collect::<Array1<bool>>();
    match algorithm {
        Algorithm::Logistic => {
            let fitted = LogisticRegression::default()
                .alpha(options.logistic_alpha)
                .max_iterations(options.logistic_iterations)
                .fit(&Dataset::new(records(), targets()))
                .map_err(|e| estimator_error("logistic regression")(e.to_string()))?;
            let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
            Ok(LinearFit {
                weights: fitted.params().mapv(|w| w * sign),
                bias: fitted.intercept() * sign,
                ftrl: None,
                naive_bayes: None,
            })
        }
        Algorithm::NaiveBayes => {
            let part = SpamNaiveBayesPart::fit(
                spam_rows,
                rows,
                None,
                1.0,
                options.naive_bayes_alpha,
                progress,
            )?;
            Ok(LinearFit {
                weights: part.weights,
                bias: part.bias,
                ftrl: None,
                naive_bayes: None,
            })
        }
        Algorithm::Ftrl => {
            let fitted = ftrl_passes(
                None,
                FtrlHyper::of(options),
                spam_rows,
                rows,
                options.ftrl_epochs,
                options.seed,
            )?;
            let mut fit = LinearFit {
                weights: fitted.get_weights(),
                bias: 0.0,
                ftrl: Some(fitted),
                naive_bayes: None,
            };
            if options.naive_bayes_blend > 0.0 {
                let part = SpamNaiveBayesPart::fit(
                    spam_rows,
                    rows,
                    None,
                    options.naive_bayes_blend,
                    options.naive_bayes_alpha,
                    progress,
                )?;
                fit.weights += &part.weights;
                fit.bias += part.bias;
                fit.naive_bayes = Some(part.stored);
            }
            Ok(fit)
        }
    }
}

/// A binary multinomial naive Bayes model (ham, spam) in log-odds form, times `blend`: the naive
/// Bayes part of an FTRL spam head (added to the FTRL weights and bias), or with `blend` 1 the
/// whole spam head under `algorithm = "naive_bayes"`.
pub(crate) struct SpamNaiveBayesPart {
    /// `blend` times the feature log-probability differences (spam minus ham).
    pub(crate) weights: Array1<f64>,
    /// `blend` times the log prior odds.
    pub(crate) bias: f64,
    /// The sums and row counts behind it, as a model file stores them.
    pub(crate) stored: SpamNaiveBayes,
}

impl SpamNaiveBayesPart {
    /// Fits the part on `rows` of `spam_rows`, continuing from `start` (a model's stored part,
    /// over its first feature rows; `None` for a new model).
    pub(crate) fn fit(
        spam_rows: &SpamRows,
        rows: &[usize],
        start: Option<&SpamNaiveBayes>,
        blend: f64,
        alpha: f64,
        progress: &dyn TrainProgress,
    ) -> Result<Self, TrainError> {
        let n_columns = spam_rows.x.n_columns();
        let mut start_sums = BTreeMap::new();
        if let Some(stored) = start {
            let width = stored.sums.len() / 2;
            for (class, stored_sums) in stored.sums.chunks(width.max(1)).take(2).enumerate() {
                let mut sums = Array1::zeros(n_columns);
                for (sum, &value) in sums.iter_mut().zip(stored_sums) {
                    *sum = value;
                }
                start_sums.insert(class, sums);
            }
        }
        let labels = &spam_rows.labels;
        let classes = fit_naive_bayes(
            &spam_rows.x,
            rows,
            |i| usize::from(labels[i]),
            &start_sums,
            alpha,
            progress,
        )?;
        let (Some(ham), Some(spam)) = (classes.get(&0), classes.get(&1)) else {
            return Err(estimator_error("naive Bayes")(
                "both classes are needed".into(),
            ));
        };
        // Rows learned in all: this fit's and those behind the starting sums.
        let start_rows = start.map_or([0, 0], |s| s.rows);
        let rows = [
            ham.rows as u64 + start_rows[0],
            spam.rows as u64 + start_rows[1],
        ];
        // The log prior odds, with priors as linfa-bayes computes them (a class's share of rows).
        let total = (rows[0] + rows[1]) as f64;
        let prior = |class_rows: u64| class_rows as f64 / total;
        let bias = prior(rows[1]).ln() - prior(rows[0]).ln();
        Ok(SpamNaiveBayesPart {
            weights: (&spam.log_prob - &ham.log_prob) * blend,
            bias: bias * blend,
            stored: SpamNaiveBayes {
                blend,
                alpha,
                rows,
                sums: ham.sums.iter().chain(&spam.sums).copied().collect(),
            },
        })
    }
}

/// Examples per FTRL mini-batch (training and updates).
const FTRL_BATCH: usize = 16;

/// FTRL-proximal hyper-parameters (linfa-ftrl's alpha, beta, l1_ratio, l2_ratio).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FtrlHyper {
    /// Learning rate.
    pub(crate) alpha: f64,
    /// Learning-rate smoothing.
    pub(crate) beta: f64,
    /// L1 regularisation.
    pub(crate) l1: f64,
    /// L2 regularisation.
    pub(crate) l2: f64,
}

impl FtrlHyper {
    /// The training options' FTRL settings (beta is fixed at 1).
    pub(crate) fn of(options: &TrainOptions) -> Self {
        FtrlHyper {
            alpha: options.ftrl_alpha,
            beta: 1.0,
            l1: options.ftrl_l1,
            l2: options.ftrl_l2,
        }
    }

    /// The `z` for which FTRL's proximal step gives `weight` after squared gradients `n`:
    /// the inverse of `w = (sign(z) l1 - z) / ((sqrt(n) + beta) / alpha + l2)` (0 for 0).
    pub(crate) fn z_for(&self, weight: f64, n: f64) -> f64 {
        if weight == 0.0 {
            return 0.0;
        }
        -(weight * ((n.sqrt() + self.beta) / self.alpha + self.l2) + weight.signum() * self.l1)
    }

    /// A linfa FTRL model in the given state. linfa-ftrl builds a model only with random `z`,
    /// so the state goes in through its serde form (bincode: this runs once per mini-batch).
    pub(crate) fn model(&self, z: Array1<f64>, n: Array1<f64>) -> Result<Ftrl<f64>, TrainError> {
        /// The serde layout of `linfa_ftrl::Ftrl`.
        #[derive(Serialize)]
        struct FtrlState {
            alpha: f64,
            beta: f64,
            l1_ratio: f64,
            l2_ratio: f64,
            z: Array1<f64>,
            n: Array1<f64>,
        }
        let failed = estimator_error("FTRL");
        let config = bincode::config::standard();
        let state = FtrlState {
            alpha: self.alpha,
            beta: self.beta,
            l1_ratio: self.l1,
            l2_ratio: self.l2,
            z,
            n,
        };
        let bytes =
            bincode::serde::encode_to_vec(&state, config).map_err(|e| failed(e.to_string()))?;
        bincode::serde::decode_from_slice(&bytes, config)
            .map(|(model, _)| model)
            .map_err(|e| failed(e.to_string()))
    }
}

/// `epochs` passes of FTRL over the rows `examples` of `rows` in mini-batches of [`FTRL_BATCH`],
/// in an order shuffled per epoch by `seed`; starts from `start` (a warm start) or, when `None`,
/// from linfa's own initialisation. `hyper` applies (a warm start keeps only its z and n).
/// Training and updates share this loop.
///
/// linfa-ftrl updates every weight of the model it is given for every mini-batch, although only
/// the features the batch uses change (the others get a zero gradient). So each batch is given
/// to linfa as a model over just those features, and their state is written back: the same
/// learning (up to rounding in the order of summation), at a cost that grows with the batch's
/// features instead of the whole feature set.
pub(crate) fn ftrl_passes(
    start: Option<Ftrl<f64>>,
    hyper: FtrlHyper,
    rows: &SpamRows,
    examples: &[usize],
    epochs: usize,
    seed: u64,
) -> Result<Ftrl<f64>, TrainError> {
    let failed = estimator_error("FTRL");
    let params = Ftrl::params()
        .alpha(hyper.alpha)
        .beta(hyper.beta)
        .l1_ratio(hyper.l1)
        .l2_ratio(hyper.l2)
        .check()
        .map_err(|e| failed(e.to_string()))?;
    let model = start.unwrap_or_else(|| Ftrl::new(params.clone(), rows.x.n_columns()));
    let (mut z, mut n) = (model.z().clone(), model.n().clone());
    if z.len() != rows.x.n_columns() || n.len() != rows.x.n_columns() {
        return Err(failed(format!(
            "the starting state has {} weights for {} features",
            z.len(),
            rows.x.n_columns()
        )));
    }
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut batch = Vec::with_capacity(FTRL_BATCH);
    let mut used_columns = UsedColumns::default();
    for epoch in 0..epochs {
        order.sort_by_key(|&i| splitmix64(seed ^ ((epoch as u64) << 32) ^ i as u64));
        for chunk in order.chunks(FTRL_BATCH) {
            batch.clear();
            batch.extend(chunk.iter().map(|&i| examples[i]));
            let (columns, records) = rows.x.dense_over_used_columns(&batch, &mut used_columns);
            let targets: Array1<bool> = batch.iter().map(|&i| rows.labels[i]).collect();
            let part = hyper.model(
                columns.iter().map(|&c| z[c]).collect(),
                columns.iter().map(|&c| n[c]).collect(),
            )?;
            let part = params
                .fit_with(Some(part), &Dataset::new(records, targets))
                .map_err(|e| failed(e.to_string()))?;
            for ((&column, &part_z), &part_n) in columns.iter().zip(part.z()).zip(part.n()) {
                z[column] = part_z;
                n[column] = part_n;
            }
        }
    }
    hyper.model(z, n)
}

/// One class of a fitted multinomial naive Bayes model.
pub(crate) struct NaiveBayesClass {
    /// Rows learned in this fit (repeats count again; not those of a starting sum).
    rows: usize,
    /// Summed feature values: the starting sum and this fit's rows.
    sums: Array1<f64>,
    /// Feature log-probabilities.
    log_prob: Array1<f64>,
}

/// A fitted multinomial naive Bayes model, by class.
type NaiveBayesClasses = BTreeMap<usize, NaiveBayesClass>;

/// Multinomial naive Bayes (linfa-bayes) over `rows` of `x` (repeats count again), `class_of`
/// giving each row's class, continuing from `start` (summed values per class; empty for a new
/// model). Naive Bayes needs only each class's feature sums, so linfa gets one row per class:
/// the sum of that class's rows, added in row order as linfa adds dense rows, so the
/// log-probabilities are the same while memory is classes x features, not rows x features.
fn fit_naive_bayes(
    x: &SparseRows,
    rows: &[usize],
    class_of: impl Fn(usize) -> usize,
    start: &BTreeMap<usize, Array1<f64>>,
    alpha: f64,
    progress: &dyn TrainProgress,
) -> Result<NaiveBayesClasses, TrainError> {
    let failed = estimator_error("naive Bayes");
    let mut sums: BTreeMap<usize, (usize, Array1<f64>)> = start
        .iter()
        .map(|(&class, sum)| (class, (0, sum.clone())))
        .collect();
    for &i in rows {
        let (count, sum) = sums
            .entry(class_of(i))
            .or_insert_with(|| (0, Array1::zeros(x.n_columns())));
        *count += 1;
        for &(column, value) in x.row(i) {
            if let Some(total) = sum.get_mut(column as usize) {
                *total += f64::from(value);
            }
        }
    }
    let classes: Vec<usize> = sums.keys().copied().collect();
    let views: Vec<_> = sums.values().map(|(_, sum)| sum.view()).collect();
    let records = ndarray::stack(ndarray::Axis(0), &views).map_err(|e| failed(e.to_string()))?;
    let mut dataset = Some(Dataset::new(records, Array1::from(classes)));
    let mut fitted = None;
    progress.quietly(&mut || {
        if let Some(dataset) = dataset.take() {
            fitted = Some(MultinomialNb::params().alpha(alpha).fit(&dataset));
        }
    });
    let fitted = fitted
        .ok_or_else(|| failed("not run".into()))?
        .map_err(|e| failed(e.to_string()))?;
    // linfa-bayes keeps the fitted parameters private: read them from its serde form.
    #[derive(Deserialize)]
    struct Fitted {
        class_info: HashMap<String, Histogram>,
    }
    #[derive(Deserialize)]
    struct Histogram {
        feature_log_prob: Array1<f64>,
    }
    let value = serde_json::to_value(&fitted).map_err(|e| failed(e.to_string()))?;
    let mut parsed: Fitted = serde_json::from_value(value).map_err(|e| failed(e.to_string()))?;
    sums.into_iter()
        .map(|(class, (rows, sums))| {
            let log_prob = parsed
                .class_info
                .remove(&class.to_string())
                .ok_or_else(|| failed(format!("class {class} missing from the fit")))?
                .feature_log_prob;
            Ok((
                class,
                NaiveBayesClass {
                    rows,
                    sums,
                    log_prob,
                },
            ))
        })
        .collect()
}

/// Platt scaling `(a, b)`: P(spam) = sigmoid(a * score + b), fitted on out-of-fold scores.
pub(crate) fn platt_scaling(scores: &[f64], labels: &[bool]) -> Result<(f64, f64), TrainError> {
    let x = Array2::from_shape_vec((scores.len(), 1), scores.to_vec())
        .map_err(|e| estimator_error("calibration")(e.to_string()))?;
    let y: Array1<bool> = labels.iter().copied().collect();
    let fitted = LogisticRegression::default()
        .alpha(1e-6)
        .max_iterations(200)
        .fit(&Dataset::new(x, y))
        .map_err(|e| estimator_error("calibration")(e.to_string()))?;
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    Ok((fitted.params()[0] * sign, fitted.intercept() * sign))
}

/// The lowest threshold (at least 0.5) whose false-positive rate on `scores` is at most `target`.
pub(crate) fn choose_threshold(scores: &[f64], labels: &[bool], target_fpr: f64) -> f64 {
    let mut ham: Vec<f64> = scores
        .iter()
        .zip(labels)
        .filter(|(_, l)| !**l)
        .map(|(&s, _)| s)
        .collect();
    ham.sort_by(|a, b| b.total_cmp(a));
    let allowed = (target_fpr * ham.len() as f64).floor() as usize;
    let above = ham.get(allowed).copied().unwrap_or(0.0);
    // Just above the first ham score that must not be flagged.
    (above + 1e-9).clamp(0.5, 1.0)
}

/// What a naive Bayes category head has learned: labeled rows per category and their summed
/// values over the head's columns (categories without rows have no entry). Training starts from
/// the empty one, an update from the parent's; every fit returns its own.
#[derive(Debug, Default)]
pub(crate) struct CategorySums {
    /// Labeled rows learned, per category (as stored in [`CategoryCounts::rows`]).
    rows: [u64; N_CATEGORIES],
    /// Their summed values, by category index.
    sums: BTreeMap<usize, Array1<f64>>,
}

impl CategorySums {
    /// The sums stored in `counts` (which must have passed the artifact's shape check).
    pub(crate) fn of(counts: &CategoryCounts) -> Self {
        let mut rows = [0; N_CATEGORIES];
        for (row, &count) in rows.iter_mut().zip(&counts.rows) {
            *row = count;
        }
        let width = counts.columns.len();
        let sums = (0..N_CATEGORIES)
            .filter(|&c| rows[c] > 0)
            .filter_map(|c| {
                let sum = counts.sums.get(c * width..(c + 1) * width)?;
                Some((c, Array1::from(sum.to_vec())))
            })
            .collect();
        CategorySums { rows, sums }
    }

    /// The stored form, for the head's `columns` (artifact rows) fitted with smoothing `alpha`.
    pub(crate) fn to_counts(&self, columns: &[usize], alpha: f64) -> CategoryCounts {
        let zeros = Array1::zeros(columns.len());
        CategoryCounts {
            alpha,
            columns: columns.iter().map(|&c| c as u32).collect(),
            rows: self.rows.to_vec(),
            sums: (0..N_CATEGORIES)
                .flat_map(|c| self.sums.get(&c).unwrap_or(&zeros).iter().copied())
                .collect(),
        }
    }
}

const N_CATEGORIES: usize = Category::ALL.len();

/// A fitted category head.
pub(crate) struct CategoryHead {
    /// Weights, row-major `[columns x categories]`.
    pub(crate) weights: Vec<f32>,
    /// Bias per category.
    pub(crate) bias: Vec<f32>,
    /// Cross-validated macro-F1 over the labeled messages (0 when none was scored).
    pub(crate) macro_f1: f64,
    /// What naive Bayes learned, to continue from (`None` for a logistic head).
    pub(crate) learned: Option<CategorySums>,
}

/// Fits the category head on labeled spam (and, when `rows` has them, their headerless copies),
/// continuing from `start`; the macro-F1 is cross-validated over the messages only. The weights
/// are divided by `temperature`, or by the one fitted on the out-of-fold logits when `None`.
pub(crate) fn fit_category_head(
    rows: &TrainingRows<Option<Category>>,
    folds: &[usize],
    start: &CategorySums,
    options: &TrainOptions,
    temperature: Option<f64>,
    progress: &dyn TrainProgress,
) -> Result<CategoryHead, TrainError> {
    let (x, categories) = (&rows.x, &rows.labels);
    let labeled = |rows: Vec<usize>| -> Vec<usize> {
        rows.into_iter()
            .filter(|&i| categories[i].is_some())
            .collect()
    };
    if start.sums.is_empty() && labeled((0..rows.messages).collect()).len() < 2 {
        return Ok(CategoryHead {
            weights: vec![0.0; x.n_columns() * N_CATEGORIES],
            bias: vec![0.0; N_CATEGORIES],
            macro_f1: 0.0,
            learned: None,
        });
    }
    type Scored = Vec<(Category, Array1<f64>)>;
    let per_fold: Vec<Result<Scored, TrainError>> = (0..options.folds)
        .into_par_iter()
        .map(|fold| {
            let (learn, score) = rows.fold_split(folds, fold);
            let (learn, score) = (labeled(learn), labeled(score));
            let fit = fit_categories(x, categories, &learn, start, options, progress)?;
            progress.advance(1);
            Ok(score
                .iter()
                .filter_map(|&i| {
                    let mut logits = fit.bias.clone();
                    for &(column, value) in x.row(i) {
                        logits.scaled_add(f64::from(value), &fit.weights.row(column as usize));
                    }
                    Some((categories[i]?, logits))
                })
                .collect())
        })
        .collect();
    let mut scored = Vec::new();
    for fold in per_fold {
        scored.extend(fold?);
    }
    let (truth, predicted): (Vec<Category>, Vec<Category>) = scored
        .iter()
        .filter_map(|(truth, logits)| {
            let predicted = Category::ALL
                .into_iter()
                .max_by(|a, b| logits[a.index()].total_cmp(&logits[b.index()]))?;
            Some((*truth, predicted))
        })
        .unzip();
    let temperature = temperature.unwrap_or_else(|| softmax_temperature(&scored));
    let macro_f1 = if truth.is_empty() {
        0.0
    } else {
        category_report(&truth, &predicted).macro_f1
    };
    let fit = fit_categories(
        x,
        categories,
        &labeled(rows.all()),
        start,
        options,
        progress,
    )?;
    progress.advance(1);
    Ok(CategoryHead {
        weights: fit
            .weights
            .iter()
            .map(|&w| (w / temperature) as f32)
            .collect(),
        bias: fit.bias.iter().map(|&b| (b / temperature) as f32).collect(),
        macro_f1,
        learned: fit.learned,
    })
}

/// The temperature that fits the softmax of out-of-fold category logits to their true
/// categories best (least cross-entropy), between 0.05 and 20; 1 without scored rows. The head's
/// weights and biases are divided by it, so that its category scores are calibrated
/// probabilities; which category wins does not change. Rows whose category had no training rows
/// in their fold (its logit is the absent-category bias) say nothing about the scale and are
/// left out.
fn softmax_temperature(scored: &[(Category, Array1<f64>)]) -> f64 {
    let scored: Vec<&(Category, Array1<f64>)> = scored
        .iter()
        .filter(|(truth, logits)| {
            logits
                .get(truth.index())
                .is_some_and(|&logit| logit > ABSENT_CATEGORY_BIAS / 2.0)
        })
        .collect();
    if scored.is_empty() {
        return 1.0;
    }
    let cross_entropy = |temperature: f64| -> f64 {
        scored
            .iter()
            .map(|(truth, logits)| {
                let scaled = logits / temperature;
                let max = scaled.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                let log_sum = max + scaled.mapv(|l| (l - max).exp()).sum().ln();
                log_sum - scaled.get(truth.index()).copied().unwrap_or(max)
            })
            .sum()
    };
    // The cross-entropy is convex in 1 / temperature: a golden-section search on its logarithm.
    let (mut low, mut high) = (0.05f64.ln(), 20f64.ln());
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..50 {
        let (a, b) = (high - ratio * (high - low), low + ratio * (high - low));
        if cross_entropy(a.exp()) < cross_entropy(b.exp()) {
            high = b;
        } else {
            low = a;
        }
    }
    ((low + high) / 2.0).exp()
}

/// The softmax temperature a stored category head was fitted with: the weight of largest
/// magnitude that `start` (its stored sums) gives without a temperature, over the stored one in
/// `weights` (the artifact's `[rows x categories]`; the head's rows are `columns`). 1 for heads
/// from before temperatures, or when the two do not compare.
pub(crate) fn stored_temperature(
    rows: &TrainingRows<Option<Category>>,
    start: &CategorySums,
    columns: &[usize],
    weights: &[f32],
    options: &TrainOptions,
) -> Result<f64, TrainError> {
    let fit = fit_categories(&rows.x, &rows.labels, &[], start, options, &NoProgress)?;
    let largest = fit
        .weights
        .indexed_iter()
        .max_by(|(_, a), (_, b)| a.abs().total_cmp(&b.abs()));
    let temperature = largest.and_then(|((head_row, class), &unscaled)| {
        let row = *columns.get(head_row)?;
        let stored = f64::from(*weights.get(row * N_CATEGORIES + class)?);
        Some(unscaled / stored)
    });
    Ok(temperature
        .filter(|t| t.is_finite() && (0.01..=100.0).contains(t))
        .unwrap_or(1.0))
}

/// One fit of the category head, in f64.
struct CategoryFit {
    /// `[columns x categories]`.
    weights: Array2<f64>,
    bias: Array1<f64>,
    learned: Option<CategorySums>,
}

/// The category head over the given labeled rows, continuing from `start`: naive Bayes (one
/// vs rest or multinomial) or logistic regression. The multinomial heads repeat minority
/// categories (about the square root of their shortfall, counted with the rows of `start`) so
/// that small ones such as `software` are heard; one-vs-rest needs no repeats, since every
/// category is weighed against the rest on the same scale. Categories with no rows get a bias
/// that keeps them from being predicted.
fn fit_categories(
    x: &SparseRows,
    categories: &[Option<Category>],
    rows: &[usize],
    start: &CategorySums,
    options: &TrainOptions,
    progress: &dyn TrainProgress,
) -> Result<CategoryFit, TrainError> {
    let mut counts = start.rows;
    for &i in rows {
        if let Some(c) = categories[i] {
            counts[c.index()] += 1;
        }
    }
    let largest = counts.iter().copied().max().unwrap_or(1) as f64;
    let mut repeated = Vec::new();
    for &i in rows {
        let Some(c) = categories[i] else { continue };
        let factor = match options.category_algorithm {
            CategoryAlgorithm::OneVsRestNaiveBayes => 1,
            _ => (largest / counts[c.index()] as f64)
                .sqrt()
                .round()
                .clamp(1.0, 8.0) as usize,
        };
        repeated.extend(std::iter::repeat_n(i, factor));
    }
    let mut fit = CategoryFit {
        weights: Array2::zeros((x.n_columns(), N_CATEGORIES)),
        // Far below any logit: a multinomial head's are sums of log-probabilities, about -8
        // each, so a bias of a few tens could win on a long message.
        bias: Array1::from_elem(N_CATEGORIES, ABSENT_CATEGORY_BIAS),
        learned: None,
    };
    let present: Vec<usize> = (0..N_CATEGORIES).filter(|&c| counts[c] > 0).collect();
    match options.category_algorithm {
        algorithm if algorithm.is_naive_bayes() && !present.is_empty() => {
            let category_of = |i: usize| categories[i].map_or(0, Category::index);
            let fitted = fit_naive_bayes(
                x,
                &repeated,
                category_of,
                &start.sums,
                options.naive_bayes_alpha,
                progress,
            )?;
            let (log_probs, sums): (BTreeMap<_, _>, BTreeMap<_, _>) = fitted
                .into_iter()
                .map(|(class, fitted)| ((class, fitted.log_prob), (class, fitted.sums)))
                .unzip();
            if present.len() > 1 {
                for (class, log_prob) in log_probs {
                    let weights = match algorithm {
                        CategoryAlgorithm::OneVsRestNaiveBayes => {
                            one_vs_rest_weights(&log_prob, &sums, class, options.naive_bayes_alpha)
                        }
                        _ => log_prob,
                    };
                    fit.weights.column_mut(class).assign(&weights);
                }
            }
            // Uniform priors: the class sizes of a training set say little about tomorrow's
            // mix, and the prior of `other` (two thirds of spam) would swallow the rest.
            for &class in sums.keys() {
                fit.bias[class] = 0.0;
            }
            fit.learned = Some(CategorySums { rows: counts, sums });
        }
        _ if present.len() == 1 => fit.bias[present[0]] = 0.0,
        CategoryAlgorithm::Logistic if present.len() > 1 => {
            let targets: Array1<usize> = repeated
                .iter()
                .filter_map(|&i| categories[i].map(Category::index))
                .collect();
            let fitted = MultiLogisticRegression::default()
                .alpha(options.category_alpha)
                .max_iterations(options.category_iterations)
                .fit(&Dataset::new(x.dense(&repeated), targets))
                .map_err(|e| estimator_error("category head")(e.to_string()))?;
            for (column, &class) in fitted.classes().iter().enumerate() {
                fit.weights
                    .column_mut(class)
                    .assign(&fitted.params().column(column));
                fit.bias[class] = fitted.intercept()[column];
            }
        }
        _ => {}
    }
    Ok(fit)
}

/// One-vs-rest naive Bayes weights of `class`: its log-probabilities `log_prob` minus the
/// log-probabilities of the summed values of every other class (`sums` by class, smoothing
/// `alpha`), scaled to a mean absolute weight of 1 so that no category wins by the size of its
/// weights alone.
fn one_vs_rest_weights(
    log_prob: &Array1<f64>,
    sums: &BTreeMap<usize, Array1<f64>>,
    class: usize,
    alpha: f64,
) -> Array1<f64> {
    let mut rest = Array1::<f64>::zeros(log_prob.len());
    for (_, sum) in sums.iter().filter(|&(&other, _)| other != class) {
        rest += sum;
    }
    let total = rest.sum() + alpha * rest.len() as f64;
    let mut weights = log_prob - &rest.mapv(|v| ((v + alpha) / total).ln());
    let mean_magnitude = weights.mapv(f64::abs).mean().unwrap_or(0.0);
    if mean_magnitude > 0.0 {
        weights /= mean_magnitude;
    }
    weights
}

/// The bias of a category without training rows: never predicted.
const ABSENT_CATEGORY_BIAS: f64 = -1.0e4;

/// The head's weights `[columns x categories]` placed at their artifact rows `columns` of
/// `[n_rows x categories]`; other rows get zeros.
pub(crate) fn spread_category_weights(head: &[f32], columns: &[usize], n_rows: usize) -> Vec<f32> {
    let n = N_CATEGORIES;
    let mut weights = vec![0f32; n_rows * n];
    for (head_row, &column) in columns.iter().enumerate() {
        if let (Some(to), Some(from)) = (
            weights.get_mut(column * n..(column + 1) * n),
            head.get(head_row * n..(head_row + 1) * n),
        ) {
            to.copy_from_slice(from);
        }
    }
    weights
}

/// A short identifier derived from the model's features and weights.
/// Everything that decides a model's verdicts goes in: features, weights, biases, calibration,
/// threshold, count scale, feature configuration and tokenizer. Metadata (time, data fingerprints) does not,
/// so the same model trained twice gets the same id.
pub(crate) fn model_id(artifact: &ModelArtifact) -> String {
    let mut hasher = Sha256::new();
    for h in &artifact.feature_hashes {
        hasher.update(h.to_le_bytes());
    }
    let scalars = [
        artifact.spam_bias,
        artifact.calibration.0,
        artifact.calibration.1,
        artifact.threshold,
        artifact.log_count_scale,
    ];
    for w in artifact
        .spam_weights
        .iter()
        .chain(&artifact.category_weights)
        .chain(&artifact.category_bias)
        .chain(&scalars)
    {
        hasher.update(w.to_le_bytes());
    }
    hasher.update(serde_json::to_vec(&artifact.feature_config).unwrap_or_default());
    hasher.update(artifact.tokenizer_json.as_deref().unwrap_or("").as_bytes());
    format!("sf-{}", &hex::encode(hasher.finalize())[..12])
}

/// Toy corpora for the training and update tests.
#[cfg(test)]
pub(crate) mod toy {
    use super::*;

    /// Messages with their labels, owned.
    pub(crate) type Owned = Vec<(Vec<u8>, bool, Option<Category>)>;

    /// A tiny message with a subject and a body.
    pub(crate) fn message(subject: &str, body: &str) -> Vec<u8> {
        format!("From: a@{subject}.example\nSubject: {subject}\n\n{body}\n").into_bytes()
    }

    /// `count` rounds of one message per `(subject, body, spam, category)` kind, the body
    /// numbered by its round.
    pub(crate) fn corpus(kinds: &[(&str, &str, bool, Option<Category>)], count: usize) -> Owned {
        let mut owned = Vec::new();
        for i in 0..count {
            for &(subject, body, spam, category) in kinds {
                owned.push((message(subject, &format!("{body} {i}")), spam, category));
            }
        }
        owned
    }

    /// Options for a toy corpus: no subword tokenizer, 300 features, 3 folds.
    pub(crate) fn small_options() -> TrainOptions {
        TrainOptions {
            subword_vocab_size: 0,
            max_features: 300,
            folds: 3,
            ..TrainOptions::default()
        }
    }

    /// The row of the feature `name` in `artifact`.
    pub(crate) fn feature_row(artifact: &ModelArtifact, name: &str) -> Result<usize, String> {
        let row = artifact.feature_names.iter().position(|n| n == name);
        row.ok_or(format!("no {name}"))
    }

    /// The spam rows' summed values of the feature `name` in `artifact`'s spam-head naive Bayes
    /// part: what training (or an update) made of its counts.
    pub(crate) fn spam_sum(artifact: &ModelArtifact, name: &str) -> Result<f64, String> {
        let row = feature_row(artifact, name)?;
        let naive_bayes = artifact
            .spam_naive_bayes
            .as_ref()
            .ok_or("no naive Bayes part")?;
        Ok(naive_bayes.sums[artifact.feature_hashes.len() + row])
    }

    /// Checks that `artifact`'s spam weights and bias are those of its FTRL state (bias 0) plus,
    /// when it has a naive Bayes part, `blend` times the naive Bayes log-odds of the stored sums
    /// and row counts.
    pub(crate) fn assert_spam_weights_blend(
        artifact: &ModelArtifact,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let state = artifact.online_state.as_ref().ok_or("no FTRL state")?;
        let hyper = FtrlHyper {
            alpha: state.alpha,
            beta: state.beta,
            l1: state.l1,
            l2: state.l2,
        };
        let widen = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Array1<f64>>();
        let mut expected = hyper.model(widen(&state.z), widen(&state.n))?.get_weights();
        let mut expected_bias = 0.0;
        if let Some(nb) = &artifact.spam_naive_bayes {
            expected_bias = nb.blend * ((nb.rows[1] as f64).ln() - (nb.rows[0] as f64).ln());
            let n = expected.len();
            let log_prob = |class: usize| -> Vec<f64> {
                let sums = &nb.sums[class * n..(class + 1) * n];
                let total = sums.iter().sum::<f64>() + nb.alpha * n as f64;
                sums.iter().map(|s| ((s + nb.alpha) / total).ln()).collect()
            };
            let (ham, spam) = (log_prob(0), log_prob(1));
            for (w, (s, h)) in expected.iter_mut().zip(spam.iter().zip(&ham)) {
                *w += nb.blend * (s - h);
            }
        }
        assert!((f64::from(artifact.spam_bias) - expected_bias).abs() < 1e-5);
        assert_eq!(artifact.spam_weights.len(), expected.len());
        for (row, (&got, &want)) in artifact.spam_weights.iter().zip(&expected).enumerate() {
            assert!(
                (f64::from(got) - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "row {row}: {got} against {want}"
            );
        }
        Ok(())
    }

    /// Checks that `artifact`'s category weights are what `algorithm` makes of its stored
    /// category counts, divided by one positive softmax temperature: per category with rows, the
    /// naive Bayes log-probabilities of its sums (`naive_bayes`), or those minus the
    /// log-probabilities of the other categories' summed sums, scaled to a mean absolute weight
    /// of 1 (`one_vs_rest_naive_bayes`). Returns the scale, 1 / temperature, within 1 / 20 to 20.
    pub(crate) fn assert_category_head_from_counts(
        artifact: &ModelArtifact,
        algorithm: CategoryAlgorithm,
    ) -> Result<f64, Box<dyn std::error::Error>> {
        let counts = artifact
            .category_counts
            .as_ref()
            .ok_or("no category counts")?;
        let (width, alpha) = (counts.columns.len(), counts.alpha);
        let sum_of = |c: usize| -> Array1<f64> {
            Array1::from(counts.sums[c * width..(c + 1) * width].to_vec())
        };
        let log_prob = |sum: &Array1<f64>| -> Array1<f64> {
            let total = sum.sum() + alpha * width as f64;
            sum.mapv(|s| ((s + alpha) / total).ln())
        };
        let present: Vec<usize> = (0..N_CATEGORIES).filter(|&c| counts.rows[c] > 0).collect();
        assert!(present.len() > 1, "a head over one category has no weights");
        let mut inverse_temperature = None;
        for &class in &present {
            let mut expected = log_prob(&sum_of(class));
            if algorithm == CategoryAlgorithm::OneVsRestNaiveBayes {
                let rest = present
                    .iter()
                    .filter(|&&c| c != class)
                    .fold(Array1::zeros(width), |rest, &c| rest + sum_of(c));
                expected = expected - log_prob(&rest);
                let mean_magnitude = expected.mapv(f64::abs).mean().ok_or("no columns")?;
                expected /= mean_magnitude;
            }
            for (&column, &want) in counts.columns.iter().zip(&expected) {
                let got =
                    f64::from(artifact.category_weights[column as usize * N_CATEGORIES + class]);
                if want.abs() < 1e-3 {
                    continue;
                }
                let scale = *inverse_temperature.get_or_insert(got / want);
                assert!(scale > 0.0, "the temperature is positive");
                assert!(
                    (got - scale * want).abs() <= 1e-4 * (scale * want).abs().max(1.0),
                    "{algorithm:?}, category {class}, row {column}: {got} against {scale} x {want}"
                );
            }
        }
        let scale = inverse_temperature.ok_or("no weight to compare")?;
        assert!(
            (0.05 - 1e-6..=20.0 + 1e-4).contains(&scale),
            "scale {scale}"
        );
        Ok(scale)
    }

    /// `train` on `data` at a fixed time.
    pub(crate) fn train_on(
        data: &Owned,
        options: &TrainOptions,
    ) -> Result<ModelArtifact, TrainError> {
        train(
            &labeled(data),
            options,
            None,
            "2026-01-01T00:00:00Z",
            TrainingData::default(),
            &NoProgress,
        )
    }

    /// Borrowed training messages of `owned`.
    pub(crate) fn labeled(owned: &Owned) -> Vec<LabeledMessage<'_>> {
        owned
            .iter()
            .map(|(bytes, spam, category)| LabeledMessage {
                bytes,
                spam: *spam,
                category: *category,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::toy::{corpus, labeled, message, train_on};
    use super::*;
    use crate::scorer::Model;
    use ndarray::{Axis, array};

    #[test]
    fn folds_are_stratified_and_deterministic() {
        let labels: Vec<bool> = (0..50).map(|i| i % 5 == 0).collect();
        let folds = fold_assignment(&labels, 5, 7);
        assert_eq!(folds, fold_assignment(&labels, 5, 7));
        for fold in 0..5 {
            let spam = (0..50).filter(|&i| folds[i] == fold && labels[i]).count();
            assert_eq!(spam, 2);
        }
        assert_ne!(folds, fold_assignment(&labels, 5, 8));
    }

    #[test]
    fn sparse_rows_densify_dot_and_restrict_like_a_dense_matrix() {
        let example = |entries: Vec<(u64, f32)>| Extraction {
            features: spamflow_features::SparseFeatures { entries },
            ..Extraction::default()
        };
        let examples = [
            example(vec![(10, 1.0), (20, 3.0), (99, 1.0)]),
            example(vec![]),
            example(vec![(30, 2.0)]),
        ];
        let column_of: HashMap<u64, u32> = [(10, 0), (20, 1), (30, 2)].into_iter().collect();
        let rows = SparseRows::new(
            examples.iter().map(|e| &e.features),
            &column_of,
            &CountWeighting::new(1.0),
        );
        assert_eq!(rows.n_columns(), 3);
        assert_eq!(rows.len(), 3);
        let dense = rows.dense(&[2, 0, 1]);
        assert_eq!(dense.dim(), (3, 3));
        // Row values are the scorer's: log counts scaled to unit length; unknown hashes dropped.
        for (i, &row) in [2, 0, 1].iter().enumerate() {
            let expected = feature_values(
                &examples[row].features,
                |h| column_of.get(&h).copied(),
                &CountWeighting::new(1.0),
            );
            let mut want = [0.0f64; 3];
            for (column, value) in expected {
                want[column as usize] = f64::from(value);
            }
            assert_eq!(dense.row(i).to_vec(), want.to_vec());
        }
        let weights = Array1::from(vec![1.0, -2.0, 0.5]);
        for row in 0..3 {
            let want = rows.dense(&[row]).row(0).dot(&weights);
            assert!((rows.dot(row, &weights) - want).abs() < 1e-12);
        }
        let restricted = rows.columns(&[2, 1]);
        assert_eq!(restricted.n_columns(), 2);
        assert_eq!(
            restricted.dense(&[0, 2]),
            rows.dense(&[0, 2]).select(Axis(1), &[2, 1])
        );
        assert!(rows.row(7).is_empty());
    }

    #[test]
    fn naive_bayes_on_class_sums_equals_linfa_on_the_dense_rows()
    -> Result<(), Box<dyn std::error::Error>> {
        // Pseudo-random sparse rows over 40 columns, three classes, rows repeated.
        let mut state = 7u64;
        let mut next = || {
            state = splitmix64(state);
            state
        };
        let features: Vec<SparseFeatures> = (0..60)
            .map(|_| {
                let mut entries: Vec<(u64, f32)> = (0..next() % 12)
                    .map(|_| (next() % 40, (1 + next() % 5) as f32))
                    .collect();
                entries.sort_by_key(|e| e.0);
                entries.dedup_by_key(|e| e.0);
                SparseFeatures { entries }
            })
            .collect();
        let column_of: HashMap<u64, u32> = (0..40).map(|c| (c, c as u32)).collect();
        let x = SparseRows::new(&features, &column_of, &CountWeighting::new(1.0));
        let class_of = |i: usize| i % 3;
        let rows: Vec<usize> = (0..60)
            .flat_map(|i| [i; 2].into_iter().take(1 + i % 2))
            .collect();
        let fitted = fit_naive_bayes(&x, &rows, class_of, &BTreeMap::new(), 0.1, &NoProgress)?;

        let targets: Array1<usize> = rows.iter().map(|&i| class_of(i)).collect();
        let dense = MultinomialNb::params()
            .alpha(0.1)
            .fit(&Dataset::new(x.dense(&rows), targets.clone()))?;
        let value = serde_json::to_value(&dense)?;
        for class in 0..3 {
            let histogram = &value["class_info"][class.to_string()];
            let want: Vec<f64> =
                serde_json::from_value(histogram["feature_log_prob"]["data"].clone())?;
            let fitted = &fitted[&class];
            assert_eq!(fitted.log_prob.to_vec(), want, "class {class}");
            assert_eq!(fitted.rows, targets.iter().filter(|&&t| t == class).count());
        }
        Ok(())
    }

    #[test]
    fn a_batch_is_dense_over_exactly_its_columns_in_ascending_order() {
        let x = SparseRows {
            rows: vec![
                vec![(130, 1.0), (3, 2.0)],
                vec![(64, 3.0), (3, 4.0)],
                vec![(0, 5.0)],
            ],
            n_columns: 131,
        };
        let mut scratch = UsedColumns::default();
        let (columns, dense) = x.dense_over_used_columns(&[0, 1], &mut scratch);
        assert_eq!(columns, [3, 64, 130]);
        assert_eq!(dense, array![[2.0, 0.0, 1.0], [4.0, 3.0, 0.0]]);
        // The marks of one batch do not leak into the next.
        let (columns, dense) = x.dense_over_used_columns(&[2], &mut scratch);
        assert_eq!(columns, [0]);
        assert_eq!(dense, array![[5.0]]);
        // Narrower rows with the same scratch: a column past the width (here inside the last
        // word of marks) is never used, and a column repeated within a row keeps its last value,
        // as a dense row would.
        let narrow = SparseRows {
            rows: vec![vec![(1, 1.0), (120, 2.0), (1, 3.0)]],
            n_columns: 100,
        };
        let (columns, dense) = narrow.dense_over_used_columns(&[0], &mut scratch);
        assert_eq!(columns, [1]);
        assert_eq!(dense, array![[3.0]]);
    }

    #[test]
    fn ftrl_on_the_batch_features_equals_linfa_on_whole_dense_batches() -> Result<(), TrainError> {
        // 60 messages over 50 features, each using a few: a spam word, a ham word, shared ones;
        // every eleventh message has no selected feature at all (hash 999 is not a column).
        let features: Vec<SparseFeatures> = (0..60u64)
            .map(|i| {
                let mut entries: Vec<(u64, f32)> = if i % 11 == 0 {
                    vec![(999, 1.0)]
                } else {
                    vec![
                        (i % 2 * 10 + i % 7, 0.6),
                        (20 + i % 13, 0.5),
                        (35 + (i * 7) % 15, 0.4),
                    ]
                };
                entries.sort_by_key(|e| e.0);
                entries.dedup_by_key(|e| e.0);
                SparseFeatures { entries }
            })
            .collect();
        let column_of: HashMap<u64, u32> = (0..50u64).map(|h| (h, h as u32)).collect();
        let labels: Vec<bool> = (0..60).map(|i| i % 2 == 1).collect();
        let rows = SpamRows::new(
            SparseRows::new(&features, &column_of, &CountWeighting::new(1.0)),
            SparseRows::new(&[], &column_of, &CountWeighting::new(1.0)),
            &labels,
        );
        let examples: Vec<usize> = (0..60).filter(|i| i % 5 != 0).collect();
        let hyper = FtrlHyper::of(&TrainOptions::default());
        let failed = estimator_error("FTRL");
        let params = Ftrl::params()
            .alpha(hyper.alpha)
            .beta(hyper.beta)
            .l1_ratio(hyper.l1)
            .l2_ratio(hyper.l2);
        // The reference: linfa given every feature for every batch, as training did before.
        let dense_passes = |mut model: Ftrl<f64>, epochs: usize, seed: u64| {
            let mut order: Vec<usize> = (0..examples.len()).collect();
            for epoch in 0..epochs {
                order.sort_by_key(|&i| splitmix64(seed ^ ((epoch as u64) << 32) ^ i as u64));
                for chunk in order.chunks(FTRL_BATCH) {
                    let batch: Vec<usize> = chunk.iter().map(|&i| examples[i]).collect();
                    let targets: Array1<bool> = batch.iter().map(|&i| labels[i]).collect();
                    model = params
                        .fit_with(Some(model), &Dataset::new(rows.x.dense(&batch), targets))
                        .map_err(|e| failed(e.to_string()))?;
                }
            }
            Ok::<_, TrainError>(model)
        };
        let same = |got: &Ftrl<f64>, want: &Ftrl<f64>| {
            for (name, got, want) in [("z", got.z(), want.z()), ("n", got.n(), want.n())] {
                for (column, (a, b)) in got.iter().zip(want).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                        "{name}[{column}]: {a} vs {b}"
                    );
                }
            }
        };
        let start = Ftrl::new(
            params.clone().check().map_err(|e| failed(e.to_string()))?,
            50,
        );
        let sparse = ftrl_passes(None, hyper, &rows, &examples, 3, 7)?;
        let dense = dense_passes(start, 3, 7)?;
        same(&sparse, &dense);
        // Features no batch uses keep their starting state; the others were learned.
        let used: std::collections::HashSet<usize> = examples
            .iter()
            .flat_map(|&i| rows.x.row(i).iter().map(|&(c, _)| c as usize))
            .collect();
        for (column, &n) in sparse.n().iter().enumerate() {
            assert_eq!(n > 0.0, used.contains(&column), "n[{column}] = {n}");
        }
        // A warm start continues the same way (as `update` does).
        let continued = ftrl_passes(Some(sparse.clone()), hyper, &rows, &examples, 2, 8)?;
        same(&continued, &dense_passes(dense, 2, 8)?);
        // A starting state of another width is refused, not indexed out of bounds.
        let narrow = hyper.model(Array1::zeros(10), Array1::zeros(10))?;
        assert!(ftrl_passes(Some(narrow), hyper, &rows, &examples, 1, 7).is_err());
        Ok(())
    }

    #[test]
    fn copies_are_learned_with_their_message_and_never_scored() {
        let rows = |n: usize| {
            let features: Vec<SparseFeatures> = (0..n)
                .map(|i| SparseFeatures {
                    entries: vec![(i as u64, 1.0)],
                })
                .collect();
            let column_of: HashMap<u64, u32> = (0..n as u64).map(|h| (h, h as u32)).collect();
            SparseRows::new(&features, &column_of, &CountWeighting::new(1.0))
        };
        let labels = [true, false, true];
        let folds = [0, 1, 0];
        let with_copies = SpamRows::new(rows(3), rows(3), &labels);
        assert_eq!(with_copies.all(), [0, 1, 2, 3, 4, 5]);
        assert_eq!(with_copies.labels, [true, false, true, true, false, true]);
        assert_eq!(with_copies.fold_split(&folds, 0), (vec![1, 4], vec![0, 2]));
        assert_eq!(
            with_copies.fold_split(&folds, 1),
            (vec![0, 2, 3, 5], vec![1])
        );
        let without = SpamRows::new(rows(3), rows(0), &labels);
        assert_eq!(without.all(), [0, 1, 2]);
        assert_eq!(without.fold_split(&folds, 0), (vec![1], vec![0, 2]));
        // The category head's rows: copies carry their message's category.
        let categories = [Some(Category::Pharma), None, Some(Category::Other)];
        let category_rows = TrainingRows::new(rows(3), rows(3), &categories);
        assert_eq!(category_rows.labels[3..], categories);
        assert_eq!(
            category_rows.fold_split(&folds, 0),
            (vec![1, 4], vec![0, 2]),
            "a fold's copies are not learned from, and copies are never scored"
        );
    }

    #[test]
    fn extraction_in_chunks_keeps_order_names_and_headerless_copies() {
        let owned = corpus(
            &[
                ("pills", "cheap pills online", true, Some(Category::Pharma)),
                ("meeting", "agenda for the meeting", false, None),
                (
                    "rates",
                    "refinance your mortgage",
                    true,
                    Some(Category::Mortgage),
                ),
            ],
            3,
        );
        let messages = labeled(&owned);
        let extractor = FeatureExtractor::new(FeatureConfig::default(), None);
        let whole = extract_in_chunks(&extractor, false, &messages, messages.len(), &NoProgress);
        let chunked = extract_in_chunks(&extractor, true, &messages, 2, &NoProgress);
        assert_eq!(messages.len(), 9, "five chunks of two");
        assert_eq!(chunked.examples, whole.examples);
        assert!(whole.headerless.is_empty());
        for (hash, _) in whole.examples.iter().flat_map(|e| &e.features.entries) {
            assert_eq!(chunked.names.get(*hash), whole.names.get(*hash));
            assert!(whole.names.get(*hash).is_some());
        }
        // Each copy is its message's features less exactly those named `hdr:`.
        assert_eq!(chunked.headerless.len(), messages.len());
        for (copy, full) in chunked.headerless.iter().zip(&whole.examples) {
            let expected: Vec<(u64, f32)> = full
                .features
                .entries
                .iter()
                .copied()
                .filter(|(hash, _)| {
                    !whole
                        .names
                        .get(*hash)
                        .is_some_and(|n| n.starts_with("hdr:"))
                })
                .collect();
            assert!(expected.len() < full.features.entries.len());
            assert_eq!(copy.entries, expected);
        }
    }

    #[test]
    fn options_write_auto_for_comparing_all_algorithms() -> Result<(), serde_json::Error> {
        let auto = TrainOptions {
            algorithm: None,
            ..TrainOptions::default()
        };
        let json = serde_json::to_string(&auto)?;
        assert!(json.contains(r#""algorithm":"auto""#), "{json}");
        assert_eq!(serde_json::from_str::<TrainOptions>(&json)?, auto);
        let ftrl = serde_json::to_string(&TrainOptions::default())?;
        assert!(ftrl.contains(r#""algorithm":"ftrl""#), "{ftrl}");
        assert_eq!(
            serde_json::from_str::<TrainOptions>(r#"{"algorithm":null}"#)?,
            auto
        );
        let unknown = serde_json::from_str::<TrainOptions>(r#"{"algorithm":"svm"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            unknown.contains("expected one of logistic, naive_bayes, ftrl, auto"),
            "{unknown}"
        );
        assert_eq!(Algorithm::parse_or_auto("auto"), Ok(None));
        assert_eq!(
            Algorithm::parse_or_auto("naive_bayes"),
            Ok(Some(Algorithm::NaiveBayes))
        );
        assert!(
            Algorithm::parse_or_auto("svm").is_err_and(|e| e.to_string().ends_with("ftrl, auto)"))
        );
        assert!(
            "auto"
                .parse::<Algorithm>()
                .is_err_and(|e| e.to_string().ends_with("naive_bayes, ftrl)"))
        );
        Ok(())
    }

    #[test]
    fn too_few_folds_and_a_feature_share_outside_0_to_1_exclusive_are_refused() {
        let owned = corpus(&[("a", "x y", true, None), ("b", "z w", false, None)], 6);
        let folds = |folds| TrainOptions {
            folds,
            ..TrainOptions::default()
        };
        let share = |category_feature_share| TrainOptions {
            category_feature_share,
            ..TrainOptions::default()
        };
        let bad = [
            ("folds", folds(0)),
            ("folds", folds(1)),
            ("category_feature_share", share(1.5)),
            ("category_feature_share", share(1.0)),
            ("category_feature_share", share(f64::NAN)),
        ];
        for (name, options) in bad {
            let error = train_on(&owned, &options)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(&format!("invalid option {name}")), "{error}");
        }
    }

    #[test]
    fn smoothing_that_is_not_positive_is_refused() {
        let owned = corpus(&[("a", "x y", true, None), ("b", "z w", false, None)], 6);
        for alpha in [0.0, -1.0, f64::NAN, 1e308] {
            let options = TrainOptions {
                naive_bayes_alpha: alpha,
                ..TrainOptions::default()
            };
            let error = train_on(&owned, &options)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains("invalid option naive_bayes_alpha"),
                "{error}"
            );
        }
    }

    #[test]
    fn chi_squared_is_zero_for_independent_features() {
        assert_eq!(chi_squared(5.0, 5.0, 10.0, 10.0), 0.0);
        assert!(chi_squared(10.0, 0.0, 10.0, 10.0) > chi_squared(8.0, 2.0, 10.0, 10.0));
    }

    #[test]
    fn threshold_keeps_out_of_fold_false_positives_at_target() {
        let scores = [0.1, 0.7, 0.95, 0.6, 0.99];
        let labels = [false, false, true, false, true];
        let t = choose_threshold(&scores, &labels, 0.0);
        assert!(t > 0.7 && t < 0.95);
        let t = choose_threshold(&scores, &labels, 0.34);
        assert!(t > 0.6 && t < 0.7);
    }

    #[test]
    fn the_spam_head_adds_the_blend_times_naive_bayes_to_ftrl()
    -> Result<(), Box<dyn std::error::Error>> {
        let owned = corpus(
            &[
                ("pills", "cheap pills viagra offer", true, None),
                ("meeting", "agenda for the team meeting", false, None),
                ("patch", "kernel patch review comments", false, None),
            ],
            20,
        );
        let train_with = |blend: f64| {
            let options = TrainOptions {
                naive_bayes_blend: blend,
                ..toy::small_options()
            };
            toy::train_on(&owned, &options)
        };
        let plain = train_with(0.0)?;
        assert_eq!(plain.spam_naive_bayes, None);
        toy::assert_spam_weights_blend(&plain)?;
        let blended = train_with(0.5)?;
        // The same features and FTRL learning; only the naive Bayes part is added.
        assert_eq!(blended.feature_hashes, plain.feature_hashes);
        assert_eq!(blended.online_state, plain.online_state);
        toy::assert_spam_weights_blend(&blended)?;
        let nb = blended
            .spam_naive_bayes
            .as_ref()
            .ok_or("no naive Bayes part")?;
        assert_eq!((nb.blend, nb.alpha), (0.5, 0.01));
        // 40 ham and 20 spam messages, each with its headerless copy.
        assert_eq!(nb.rows, [80, 40]);
        let n = blended.feature_hashes.len();
        let (viagra, agenda) = (
            toy::feature_row(&blended, "body:viagra")?,
            toy::feature_row(&blended, "body:agenda")?,
        );
        assert!(nb.sums[n + viagra] > 0.0 && nb.sums[viagra] == 0.0);
        assert!(nb.sums[agenda] > 0.0 && nb.sums[n + agenda] == 0.0);
        assert!(blended.spam_weights[viagra] > plain.spam_weights[viagra]);
        assert!(blended.spam_weights[agenda] < plain.spam_weights[agenda]);
        // Out of range blends are refused.
        for bad in [-0.1, f64::NAN, 1e4] {
            let error = train_with(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains("invalid option naive_bayes_blend"),
                "{bad}: {error}"
            );
        }
        Ok(())
    }

    #[test]
    fn counts_weigh_by_the_models_scale_and_a_bad_scale_is_refused()
    -> Result<(), Box<dyn std::error::Error>> {
        let owned = corpus(
            &[
                (
                    "pills",
                    "cheap pills viagra viagra viagra offer",
                    true,
                    None,
                ),
                ("meeting", "agenda for the team meeting", false, None),
            ],
            20,
        );
        let train_with = |scale: f32| {
            let options = TrainOptions {
                log_count_scale: scale,
                ..toy::small_options()
            };
            toy::train_on(&owned, &options)
        };
        // `viagra` said once or four times beside `agenda`, as the model's score of it.
        let log_odds = |artifact: &ModelArtifact, viagra: f32| -> Result<f32, String> {
            let hash = |name: &str| {
                toy::feature_row(artifact, name).map(|row| artifact.feature_hashes[row])
            };
            let mut entries = vec![(hash("body:viagra")?, viagra), (hash("body:agenda")?, 1.0)];
            entries.sort_by_key(|&(hash, _)| hash);
            let model = Model::from_artifact(artifact.clone()).map_err(|e| e.to_string())?;
            let features = SparseFeatures { entries };
            Ok(model
                .score(&features, spamflow_features::Flags::empty())
                .spam_log_odds)
        };
        let presence = train_with(0.0)?;
        assert_eq!(presence.log_count_scale, 0.0);
        assert_eq!(log_odds(&presence, 4.0)?, log_odds(&presence, 1.0)?);
        // Training weighs its rows so too: `viagra`, three times in every spam message, sums to
        // what `cheap`, once in each, does when only presence counts, and to more otherwise.
        let sums = |artifact: &ModelArtifact| -> Result<(f64, f64), String> {
            Ok((
                toy::spam_sum(artifact, "body:viagra")?,
                toy::spam_sum(artifact, "body:cheap")?,
            ))
        };
        let (viagra, cheap) = sums(&presence)?;
        assert!(
            cheap > 0.0 && (viagra - cheap).abs() < 1e-9,
            "{viagra} {cheap}"
        );
        for scale in [0.25, 1.0] {
            let counted = train_with(scale)?;
            assert_eq!(counted.log_count_scale, scale);
            assert!(
                log_odds(&counted, 4.0)? > log_odds(&counted, 1.0)?,
                "{scale}"
            );
            let (viagra, cheap) = sums(&counted)?;
            let expected = 1.0 + f64::from(scale) * 3f64.ln();
            assert!(
                (viagra / cheap - expected).abs() < 1e-4,
                "{scale}: {viagra} {cheap}"
            );
        }
        for bad in [-0.1, 1.5, f32::NAN] {
            let error = train_with(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains("invalid option log_count_scale"),
                "{bad}: {error}"
            );
        }
        Ok(())
    }

    #[test]
    fn the_category_head_is_one_vs_rest_naive_bayes_over_rows_learned_once()
    -> Result<(), Box<dyn std::error::Error>> {
        // Pharma outnumbers mortgage and fraud four to one: a multinomial head repeats their
        // rows, the one-vs-rest head learns every row once; "the rest" of each category is two.
        let mut owned = corpus(
            &[
                ("pills", "cheap pills viagra", true, Some(Category::Pharma)),
                (
                    "meds",
                    "pharmacy pills cialis",
                    true,
                    Some(Category::Pharma),
                ),
                ("meeting", "agenda for the team meeting", false, None),
            ],
            40,
        );
        owned.extend(corpus(
            &[
                (
                    "rates",
                    "refinance mortgage rates now",
                    true,
                    Some(Category::Mortgage),
                ),
                (
                    "lottery",
                    "lottery winner bank transfer",
                    true,
                    Some(Category::Fraud),
                ),
            ],
            20,
        ));
        let options = TrainOptions {
            subword_vocab_size: 0,
            max_features: 400,
            category_feature_share: 0.2,
            folds: 3,
            ..TrainOptions::default()
        };
        assert_eq!(
            options.category_algorithm,
            CategoryAlgorithm::OneVsRestNaiveBayes
        );
        let artifact = toy::train_on(&owned, &options)?;
        let counts = artifact.category_counts.as_ref().ok_or("no counts")?;
        // Messages and their headerless copies, each once.
        assert_eq!(counts.rows[Category::Pharma.index()], 160);
        assert_eq!(counts.rows[Category::Mortgage.index()], 40);
        assert_eq!(counts.rows[Category::Fraud.index()], 40);
        toy::assert_category_head_from_counts(&artifact, CategoryAlgorithm::OneVsRestNaiveBayes)?;
        let model = Model::from_artifact(artifact.clone())?;
        for (subject, body, category) in [
            ("hello", "cheap cialis pills", Category::Pharma),
            ("hello", "mortgage rates", Category::Mortgage),
            ("hello", "bank transfer to the winner", Category::Fraud),
        ] {
            let verdict = model.classify(&message(subject, body));
            assert_eq!(verdict.category, category, "{verdict:?}");
        }

        let multinomial = toy::train_on(
            &owned,
            &TrainOptions {
                category_algorithm: CategoryAlgorithm::NaiveBayes,
                ..options
            },
        )?;
        let counts = multinomial.category_counts.as_ref().ok_or("no counts")?;
        assert_eq!(counts.rows[Category::Pharma.index()], 160);
        assert!(
            counts.sums.iter().sum::<f64>() > artifact_sums(&artifact),
            "the multinomial head sums repeated mortgage rows"
        );
        toy::assert_category_head_from_counts(&multinomial, CategoryAlgorithm::NaiveBayes)?;
        Ok(())
    }

    fn artifact_sums(artifact: &ModelArtifact) -> f64 {
        artifact
            .category_counts
            .as_ref()
            .map_or(0.0, |counts| counts.sums.iter().sum())
    }

    #[test]
    fn the_softmax_temperature_fits_the_out_of_fold_scores() {
        let logits = |winner: f64| Array1::from(vec![winner, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        // Always right but timid: sharpen (up to the bound).
        let timid: Vec<_> = (0..20).map(|_| (Category::Pharma, logits(1.0))).collect();
        assert!((softmax_temperature(&timid) - 0.05).abs() < 1e-3);
        // Confident, and wrong one time in four: soften.
        let mut bold: Vec<_> = (0..15).map(|_| (Category::Pharma, logits(20.0))).collect();
        bold.extend((0..5).map(|_| (Category::Mortgage, logits(20.0))));
        let temperature = softmax_temperature(&bold);
        assert!(temperature > 1.0, "{temperature}");
        // Right 3 in 4 with a winning logit of 20: the best temperature gives the winner
        // probability 0.75, e^(20 / t) / (e^(20 / t) + 6) = 0.75.
        let expected = 20.0 / 18f64.ln();
        assert!(
            (temperature - expected).abs() < 1e-3 * expected,
            "{temperature}"
        );
        assert_eq!(softmax_temperature(&[]), 1.0);
        // A row of a category its fold never learned does not soften the rest.
        let mut absent = logits(20.0);
        absent[Category::Stock.index()] = ABSENT_CATEGORY_BIAS;
        bold.push((Category::Stock, absent));
        assert_eq!(softmax_temperature(&bold), temperature);
    }

    #[test]
    fn every_algorithm_learns_a_separable_toy_problem() -> Result<(), Box<dyn std::error::Error>> {
        let owned = corpus(
            &[
                (
                    "pills",
                    "cheap pills viagra offer",
                    true,
                    Some(Category::Pharma),
                ),
                (
                    "rates",
                    "refinance mortgage rates now",
                    true,
                    Some(Category::Mortgage),
                ),
                ("meeting", "agenda for the team meeting", false, None),
                ("patch", "kernel patch review comments", false, None),
            ],
            40,
        );
        let messages = labeled(&owned);
        for algorithm in Algorithm::ALL {
            let options = TrainOptions {
                algorithm: Some(algorithm),
                subword_vocab_size: 200,
                max_features: 500,
                folds: 3,
                ..TrainOptions::default()
            };
            let artifact = toy::train_on(&owned, &options)?;
            assert_eq!(artifact.metadata.algorithm, algorithm.as_str());
            let recorded: TrainOptions =
                serde_json::from_str(artifact.metadata.build_options.as_deref().unwrap_or(""))?;
            assert_eq!(recorded, options, "the options are recorded as given");
            assert!(
                artifact.metadata.validation.roc_auc > 0.99,
                "{algorithm:?}: {:?}",
                artifact.metadata.validation
            );
            let model = Model::from_artifact(artifact.clone())?;
            let spam = model.classify(&message("pills", "buy cheap viagra pills"));
            assert!(spam.spam, "{algorithm:?} {spam:?}");
            assert_eq!(spam.category, Category::Pharma);
            assert_eq!(
                model
                    .classify(&message("rates", "lower mortgage rates"))
                    .category,
                Category::Mortgage
            );
            assert!(
                !model
                    .classify(&message("meeting", "team meeting agenda"))
                    .spam
            );
            let tokenizer = artifact
                .tokenizer_json
                .as_deref()
                .map(SubwordTokenizer::from_json)
                .transpose()?;
            let again = train(
                &messages,
                &options,
                tokenizer,
                "2026-01-01T00:00:00Z",
                TrainingData::default(),
                &NoProgress,
            )?;
            assert_eq!(
                again.metadata.model_id, artifact.metadata.model_id,
                "deterministic for a seed and tokenizer"
            );
        }
        Ok(())
    }
}

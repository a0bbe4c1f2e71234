//! Incremental update: a trained model plus new labeled messages to a new model, in seconds.
//!
//! 1. The new messages become features through the model's own feature configuration and
//!    subword tokenizer, so they are computed exactly as the model computes them in serving
//!    (compatible by construction), and their counts are weighed with the model's count scale
//!    ([`ModelArtifact::log_count_scale`]). The share of their feature occurrences the model knows is
//!    the vocabulary coverage; below [`UpdateOptions::min_coverage`] the report advises a full
//!    retrain (the model would be blind to most of what the new data says).
//! 2. Vocabulary extension: features the model lacks that occur in at least
//!    `min_document_frequency` new messages are ranked by chi-squared against spam/ham in the new
//!    data; the best `max_new_features` are appended as new rows with zero weights, zero FTRL
//!    state and zero category weights.
//! 3. Warm start: FTRL continues from the stored state (`z`, `n`); a model without one (logistic
//!    regression, naive Bayes, version-1 files) gets `n = prior_count` and the `z` that makes
//!    FTRL's proximal step reproduce its weights. FTRL has no intercept: a parent's bias is
//!    dropped from learning and absorbed by the calibration.
//! 4. `epochs` FTRL passes over the new messages, and over their headerless copies as in
//!    training ([`UpdateOptions::headerless_copies`]), with the mini-batch loop of training.
//! 5. Calibration: as in training, Platt scaling and the threshold (for `target_fpr`) are fitted
//!    on out-of-fold scores, here of the update itself: each fold's messages are scored by a model
//!    warm-started from the same parent and updated on the other folds. Progressive validation
//!    (scoring each mini-batch before learning it) would be cheaper, but its first-pass scores
//!    come from a model that has seen little of the new data, so it would calibrate a model less
//!    confident than the one shipped. Keeping the old calibration ignores that the updated
//!    weights score on a different scale. With fewer than `folds` spam or ham messages there is
//!    nothing to fit on, and the update is refused.
//! 6. The category head (naive Bayes) continues from the per-category sums the model stores
//!    ([`CategoryCounts`](crate::CategoryCounts), format version 5): the new labeled spam and
//!    their headerless copies are summed onto them over the head's own features (new features do
//!    not join it), and the weights are made as the parent's were
//!    ([`UpdateOptions::category_algorithm`]): one vs rest, every row once, or multinomial,
//!    minority categories repeated by the combined counts, then divided by the parent's softmax
//!    temperature (recovered from its stored weights and sums). Its macro-F1 is cross-validated like the
//!    calibration: each fold's labeled spam is predicted by the parent's sums plus the other
//!    folds'. A model without stored sums (older files, a logistic head), or an update without
//!    labeled spam, keeps the head as it is ([`CategoryHeadUpdate`]).
//! 7. The spam head's naive Bayes part ([`SpamNaiveBayes`](crate::SpamNaiveBayes), format
//!    version 7) continues the same way: the new rows are summed onto the stored ham and spam
//!    sums (new features start from zero), the part is refitted with the stored blend and
//!    smoothing and added to the updated FTRL weights, in every calibration fold as in the
//!    final model. A model without one keeps FTRL's weights alone.

use std::collections::HashMap;

use ndarray::Array1;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use spamflow_features::{FeatureExtractor, Namespace, SubwordTokenizer};

use crate::artifact::{ModelArtifact, ModelMetadata, TrainingData, ValidationSummary};
use crate::category::Category;
use crate::metrics::{binary_metrics, category_report, roc_auc};
use crate::scorer::{CountWeighting, sigmoid};
use crate::train::{
    CategoryAlgorithm, CategorySums, Extracted, FtrlHyper, LabeledMessage, SpamNaiveBayesPart,
    SpamRows, SparseRows, TrainError, TrainOptions, TrainProgress, TrainingRows, best_first,
    chi_squared, choose_threshold, count_messages, extract_all, fit_category_head, fold_assignment,
    ftrl_passes, model_id, online_state, platt_scaling, spread_category_weights,
    stored_temperature,
};

/// Update settings. `Default` gives the documented defaults, chosen with `dev/drift-experiment.sh
/// tune` on train rows only (an 80/20 split of the later subsets' train rows). Epochs: for a base
/// trained with 200 FTRL passes, held-out 1-AUC with 5,000 new features was 0.247 % after 10
/// epochs, 0.161 % after 40 and 0.140 % after 80; 40 keeps the update at a fifth of training's
/// passes, as 10 of 50 were before. New features: 5,000 beat 2,000 and 0 at every epoch count for
/// the older base of 50 passes (0.30 % against 0.33 % after 10 epochs); for the new base they tie
/// with 2,000 (0.161 % against 0.157 % after 40, 0.140 % against 0.145 % after 80). 3 calibration
/// folds kept the held-out false positives at 0 where 5 and 10 let one through. Figures in the
/// docs/drift-experiment.md. Vocabulary
/// coverage measured about 40-45 % on data like the model's own training data (a model keeps
/// only its selected features) and 38 % on the drifted subsets; 25 % flags data the model barely
/// knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateOptions {
    /// Seed for fold assignment and shuffling.
    pub seed: u64,
    /// FTRL passes over the new messages.
    pub epochs: usize,
    /// New features appended at most.
    pub max_new_features: usize,
    /// A new feature must occur in this many new messages.
    pub min_document_frequency: u32,
    /// Squared-gradient sum `n` assumed for a model without online state (the larger, the
    /// smaller FTRL's first steps away from its weights).
    pub prior_count: f64,
    /// Folds of the out-of-fold scores the calibration is fitted on.
    pub folds: usize,
    /// Out-of-fold false-positive rate the threshold is chosen for.
    pub target_fpr: f64,
    /// Vocabulary coverage below which the report advises a full retrain.
    pub min_coverage: f64,
    /// Also learn from a headerless copy of every new message, as training does
    /// ([`TrainOptions::headerless_copies`](crate::TrainOptions::headerless_copies)).
    pub headerless_copies: bool,
    /// The category head's algorithm. An update continues the parent's head as it was built
    /// ([`ModelMetadata::category_algorithm`](crate::ModelMetadata::category_algorithm)): `None`
    /// (default) takes it, another one is refused. The updated model records it, so the next
    /// update continues it too.
    pub category_algorithm: Option<CategoryAlgorithm>,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        UpdateOptions {
            seed: 42,
            epochs: 40,
            max_new_features: 5000,
            min_document_frequency: 3,
            prior_count: 100.0,
            folds: 3,
            target_fpr: 0.001,
            min_coverage: 0.25,
            headerless_copies: true,
            category_algorithm: None,
        }
    }
}

/// Where the update's FTRL state came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WarmStart {
    /// The FTRL state stored in the model.
    OnlineState,
    /// Derived from the weights with `n = prior_count`.
    FromWeights {
        /// The `n` assumed for every existing row.
        prior_count: f64,
    },
}

/// What an update did with the category head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoryHeadUpdate {
    /// Its naive Bayes sums were continued with the new labeled spam (and their copies).
    Continued {
        /// Labeled spam messages learned.
        labeled_spam: usize,
    },
    /// Kept as it was: the new messages have no labeled spam.
    KeptNoLabels,
    /// Kept as it was: the model stores no category counts (written before format version 5, a
    /// logistic head, or a head that had fewer than two labeled spam to learn from).
    KeptNoCounts,
}

/// What an update did.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateReport {
    /// The model updated.
    pub parent_model_id: String,
    /// The new model.
    pub model_id: String,
    /// New messages learned from.
    pub messages: usize,
    /// Of which spam.
    pub spam: usize,
    /// Share of the new messages' feature occurrences (distinct features per message, summed)
    /// that the parent model has rows for.
    pub coverage: f64,
    /// Coverage is below [`UpdateOptions::min_coverage`]: a full retrain is advisable.
    pub retrain_advised: bool,
    /// Rows appended by vocabulary extension.
    pub new_features: usize,
    /// How FTRL was warm-started.
    pub warm_start: WarmStart,
    /// What happened to the category head.
    pub category_head: CategoryHeadUpdate,
}

/// Updates `artifact` with `messages`: vocabulary extension, warm-started FTRL, recalibration,
/// the category head continued from its stored counts (see the module documentation).
/// `created_at` and `training_data` are recorded in the new model's metadata (counts are filled
/// in here). Deterministic for a seed.
pub fn update(
    artifact: &ModelArtifact,
    messages: &[LabeledMessage<'_>],
    options: &UpdateOptions,
    created_at: &str,
    mut training_data: TrainingData,
    progress: &dyn TrainProgress,
) -> Result<(ModelArtifact, UpdateReport), TrainError> {
    let parent_id = artifact.metadata.model_id.clone();
    let not_updatable = |reason: String| TrainError::NotUpdatable {
        model_id: parent_id.clone(),
        reason,
    };
    if messages.is_empty() {
        return Err(TrainError::NoMessages);
    }
    artifact
        .check_shapes()
        .map_err(|e| not_updatable(e.to_string()))?;
    let category_algorithm = artifact
        .metadata
        .category_algorithm()
        .map_err(|e| not_updatable(e.to_string()))?;
    if let Some(asked) = options.category_algorithm
        && asked != category_algorithm
    {
        return Err(not_updatable(format!(
            "its category head is {}, and an update continues it as it was built, not as {}",
            category_algorithm.as_str(),
            asked.as_str()
        )));
    }
    let tokenizer = artifact
        .tokenizer_json
        .as_deref()
        .map(SubwordTokenizer::from_json)
        .transpose()
        .map_err(|e| not_updatable(format!("its subword tokenizer does not load: {e}")))?;
    let subword_prefix = format!("{}:", Namespace::Subword.prefix());
    if tokenizer.is_none()
        && artifact
            .feature_names
            .iter()
            .any(|n| n.starts_with(&subword_prefix))
    {
        return Err(not_updatable(
            "it has subword (sw:) features but no subword tokenizer to compute them".into(),
        ));
    }
    if options.folds < 2 {
        return Err(not_updatable("an update needs at least 2 folds".into()));
    }
    count_messages(&mut training_data, messages);
    let labels: Vec<bool> = messages.iter().map(|m| m.spam).collect();

    let extractor = FeatureExtractor::new(artifact.feature_config.clone(), tokenizer);
    let Extracted {
        examples,
        headerless,
        names,
    } = extract_all(&extractor, options.headerless_copies, messages, progress);

    progress.stage("extend vocabulary", 1);
    let mut row_of: HashMap<u64, u32> = artifact
        .feature_hashes
        .iter()
        .zip(0u32..)
        .map(|(&h, row)| (h, row))
        .collect();
    let occurrences: usize = examples.iter().map(|e| e.features.entries.len()).sum();
    let known: usize = examples
        .iter()
        .flat_map(|e| &e.features.entries)
        .filter(|(h, _)| row_of.contains_key(h))
        .count();
    let coverage = if occurrences == 0 {
        1.0
    } else {
        known as f64 / occurrences as f64
    };
    let added = new_features(
        examples.iter().map(|e| &e.features.entries),
        &labels,
        &row_of,
        options,
    );
    let mut feature_hashes = artifact.feature_hashes.clone();
    let mut feature_names = artifact.feature_names.clone();
    for &hash in &added {
        row_of.insert(hash, feature_hashes.len() as u32);
        feature_hashes.push(hash);
        feature_names.push(names.get(hash).unwrap_or("?").to_owned());
    }
    let categories: Vec<Option<Category>> = messages
        .iter()
        .map(|m| m.category.filter(|_| m.spam))
        .collect();
    let labeled_spam = categories.iter().flatten().count();
    // New rows are weighed as the parent's were.
    let weighting = CountWeighting::new(artifact.log_count_scale);
    let x = SparseRows::new(examples.iter().map(|e| &e.features), &row_of, &weighting);
    drop(examples);
    let copies = SparseRows::new(&headerless, &row_of, &weighting);
    drop(headerless);
    // The category head continues over its own columns (new features do not join it); stored
    // counts always have rows (the shape check refuses counts without any).
    let category_head = artifact
        .category_counts
        .as_ref()
        .filter(|_| labeled_spam > 0)
        .map(|counts| {
            let columns: Vec<usize> = counts.columns.iter().map(|&c| c as usize).collect();
            let rows =
                TrainingRows::new(x.columns(&columns), copies.columns(&columns), &categories);
            (counts, columns, rows)
        });
    let rows = SpamRows::new(x, copies, &labels);
    progress.advance(1);

    let n_features = feature_hashes.len();
    let (hyper, start, warm_start) = warm_start(artifact, n_features, options)?;

    let spam = labels.iter().filter(|&&s| s).count();
    let ham = labels.len() - spam;
    if spam < options.folds || ham < options.folds {
        // Learning from one class only would push every weight towards it while nothing can
        // measure or recalibrate the result: refuse instead of producing a skewed model.
        return Err(TrainError::TooFewMessages {
            needed: options.folds,
            spam,
            ham,
        });
    }
    let folds = fold_assignment(&labels, options.folds, options.seed);
    // The spam weights of FTRL updated on `learn`, with the naive Bayes part refitted on the
    // same rows when the model has one; the bias; the part to store.
    let spam_head = |fitted: &linfa_ftrl::Ftrl<f64>, learn: &[usize]| {
        let mut weights = fitted.get_weights();
        let Some(stored) = &artifact.spam_naive_bayes else {
            return Ok((weights, 0.0, None));
        };
        let part = SpamNaiveBayesPart::fit(
            &rows,
            learn,
            Some(stored),
            stored.blend,
            stored.alpha,
            progress,
        )?;
        weights += &part.weights;
        Ok::<_, TrainError>((weights, part.bias, Some(part.stored)))
    };
    let (calibration, threshold, mut validation) = {
        progress.stage("calibrate (out-of-fold)", options.folds as u64);
        let per_fold: Vec<Result<Vec<(usize, f64)>, TrainError>> = (0..options.folds)
            .into_par_iter()
            .map(|fold| {
                let (learn, score) = rows.fold_split(&folds, fold);
                let fitted = ftrl_passes(
                    Some(start.clone()),
                    hyper,
                    &rows,
                    &learn,
                    options.epochs,
                    options.seed,
                )?;
                progress.advance(1);
                let (weights, bias, _) = spam_head(&fitted, &learn)?;
                Ok(score
                    .into_iter()
                    .map(|i| (i, rows.x.dot(i, &weights) + bias))
                    .collect())
            })
            .collect();
        let mut out_of_fold = vec![0.0; labels.len()];
        for fold in per_fold {
            for (i, s) in fold? {
                out_of_fold[i] = s;
            }
        }
        let (a, b) = platt_scaling(&out_of_fold, &labels)?;
        let calibrated: Vec<f64> = out_of_fold
            .iter()
            .map(|&s| f64::from(sigmoid((a * s + b) as f32)))
            .collect();
        let threshold = choose_threshold(&calibrated, &labels, options.target_fpr);
        let at_threshold = binary_metrics(&calibrated, &labels, threshold);
        let auc = roc_auc(&out_of_fold, &labels);
        let validation = ValidationSummary {
            folds: options.folds,
            candidates: vec![("ftrl".to_owned(), auc)],
            roc_auc: auc,
            fpr: at_threshold.fpr,
            recall: at_threshold.recall,
            category_macro_f1: 0.0,
        };
        ((a as f32, b as f32), threshold as f32, validation)
    };

    progress.stage("update", 1);
    let all_rows = rows.all();
    let fitted = ftrl_passes(
        Some(start),
        hyper,
        &rows,
        &all_rows,
        options.epochs,
        options.seed,
    )?;
    let (spam_weights, spam_bias, spam_naive_bayes) = spam_head(&fitted, &all_rows)?;
    let spam_weights: Vec<f32> = spam_weights.iter().map(|&w| w as f32).collect();
    progress.advance(1);

    let (category_weights, category_bias, category_counts, category_head) = match category_head {
        Some((counts, columns, category_rows)) => {
            progress.stage("category head", options.folds as u64 + 1);
            let head_options = TrainOptions {
                folds: options.folds,
                naive_bayes_alpha: counts.alpha,
                category_algorithm,
                ..TrainOptions::default()
            };
            // The parent's temperature, fitted on its whole training split's out-of-fold
            // scores: the update's few labeled spam would fit one far too sharp or too soft.
            let start = CategorySums::of(counts);
            let temperature = stored_temperature(
                &category_rows,
                &start,
                &columns,
                &artifact.category_weights,
                &head_options,
            )?;
            let head = fit_category_head(
                &category_rows,
                &folds,
                &start,
                &head_options,
                Some(temperature),
                progress,
            )?;
            validation.category_macro_f1 = head.macro_f1;
            (
                spread_category_weights(&head.weights, &columns, n_features),
                head.bias.clone(),
                head.learned
                    .map(|learned| learned.to_counts(&columns, counts.alpha)),
                CategoryHeadUpdate::Continued { labeled_spam },
            )
        }
        None => {
            let mut weights = artifact.category_weights.clone();
            weights.resize(n_features * Category::ALL.len(), 0.0);
            validation.category_macro_f1 =
                category_macro_f1(&rows.x, messages, &weights, &artifact.category_bias);
            let kept = if artifact.category_counts.is_some() {
                CategoryHeadUpdate::KeptNoLabels
            } else {
                CategoryHeadUpdate::KeptNoCounts
            };
            (
                weights,
                artifact.category_bias.clone(),
                artifact.category_counts.clone(),
                kept,
            )
        }
    };

    let mut updated = ModelArtifact {
        metadata: ModelMetadata {
            model_id: String::new(),
            created_at: created_at.to_owned(),
            spamflow_version: env!("CARGO_PKG_VERSION").to_owned(),
            algorithm: "ftrl".to_owned(),
            seed: options.seed,
            training_data,
            validation,
            parent_model_id: Some(parent_id.clone()),
            build_options: Some(serde_json::to_string(&UpdateOptions {
                category_algorithm: Some(category_algorithm),
                ..options.clone()
            })?),
        },
        feature_config: artifact.feature_config.clone(),
        tokenizer_json: artifact.tokenizer_json.clone(),
        feature_hashes,
        feature_names,
        spam_weights,
        spam_bias: spam_bias as f32,
        category_weights,
        category_bias,
        calibration,
        threshold,
        online_state: Some(online_state(&fitted)),
        category_counts,
        spam_naive_bayes,
        log_count_scale: artifact.log_count_scale,
    };
    updated.metadata.model_id = model_id(&updated);
    let report = UpdateReport {
        parent_model_id: parent_id,
        model_id: updated.metadata.model_id.clone(),
        messages: messages.len(),
        spam,
        coverage,
        retrain_advised: coverage < options.min_coverage,
        new_features: added.len(),
        warm_start,
        category_head,
    };
    Ok((updated, report))
}

/// Features of the new messages the model lacks, in at least `min_document_frequency` of them,
/// the `max_new_features` best by chi-squared against spam/ham (ties by hash).
fn new_features<'a>(
    examples: impl Iterator<Item = &'a Vec<(u64, f32)>>,
    labels: &[bool],
    known: &HashMap<u64, u32>,
    options: &UpdateOptions,
) -> Vec<u64> {
    let mut frequencies: HashMap<u64, [u32; 2]> = HashMap::new();
    for (entries, &spam) in examples.zip(labels) {
        for (hash, _) in entries {
            if !known.contains_key(hash) {
                frequencies.entry(*hash).or_default()[usize::from(!spam)] += 1;
            }
        }
    }
    let n_spam = labels.iter().filter(|&&s| s).count() as f64;
    let n_ham = labels.len() as f64 - n_spam;
    let mut ranked = best_first(
        frequencies
            .into_iter()
            .filter(|(_, f)| f[0] + f[1] >= options.min_document_frequency)
            .map(|(h, f)| {
                (
                    h,
                    chi_squared(f64::from(f[0]), f64::from(f[1]), n_spam, n_ham),
                )
            }),
    );
    ranked.truncate(options.max_new_features);
    ranked
}

/// The FTRL hyper-parameters, the starting model over `n_features` rows (new rows zero) and
/// where its state came from.
fn warm_start(
    artifact: &ModelArtifact,
    n_features: usize,
    options: &UpdateOptions,
) -> Result<(FtrlHyper, linfa_ftrl::Ftrl<f64>, WarmStart), TrainError> {
    let mut z = Array1::<f64>::zeros(n_features);
    let mut n = Array1::<f64>::zeros(n_features);
    let (hyper, how) = match &artifact.online_state {
        Some(state) => {
            for (i, (&zi, &ni)) in state.z.iter().zip(&state.n).enumerate() {
                z[i] = f64::from(zi);
                n[i] = f64::from(ni);
            }
            let hyper = FtrlHyper {
                alpha: state.alpha,
                beta: state.beta,
                l1: state.l1,
                l2: state.l2,
            };
            (hyper, WarmStart::OnlineState)
        }
        None => {
            let hyper = FtrlHyper::of(&TrainOptions::default());
            let n0 = options.prior_count.max(0.0);
            for (i, &w) in artifact.spam_weights.iter().enumerate() {
                n[i] = n0;
                z[i] = hyper.z_for(f64::from(w), n0);
            }
            (hyper, WarmStart::FromWeights { prior_count: n0 })
        }
    };
    Ok((hyper, hyper.model(z, n)?, how))
}

/// Macro-F1 of the category head on the labeled spam among `messages` (0 when there is none).
fn category_macro_f1(
    rows: &SparseRows,
    messages: &[LabeledMessage<'_>],
    weights: &[f32],
    bias: &[f32],
) -> f64 {
    let n = Category::ALL.len();
    let (truth, predicted): (Vec<Category>, Vec<Category>) = messages
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let truth = m.category.filter(|_| m.spam)?;
            let values = rows.row(i);
            let mut logits: Vec<f32> = bias.to_vec();
            for &(row, value) in values {
                let start = row as usize * n;
                for (logit, w) in logits.iter_mut().zip(weights.get(start..start + n)?) {
                    *logit += value * w;
                }
            }
            let best = Category::ALL
                .into_iter()
                .max_by(|a, b| logits[a.index()].total_cmp(&logits[b.index()]))?;
            Some((truth, best))
        })
        .unzip();
    if truth.is_empty() {
        return 0.0;
    }
    category_report(&truth, &predicted).macro_f1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::ArtifactError;
    use crate::scorer::{Model, Verdict};
    use crate::train::toy::{
        Owned, assert_category_head_from_counts, corpus, feature_row, labeled, message,
        small_options, spam_sum, train_on,
    };
    use crate::train::{Algorithm, NoProgress};

    /// `update` of `parent` with `new` at a fixed time.
    fn update_with(
        parent: &ModelArtifact,
        new: &Owned,
        options: &UpdateOptions,
    ) -> Result<(ModelArtifact, UpdateReport), TrainError> {
        update(
            parent,
            &labeled(new),
            options,
            "2026-01-02T00:00:00Z",
            TrainingData::default(),
            &NoProgress,
        )
    }

    fn old_data() -> Owned {
        corpus(
            &[
                (
                    "pills",
                    "cheap pills viagra offer",
                    true,
                    Some(Category::Pharma),
                ),
                ("meeting", "agenda for the team meeting", false, None),
                ("patch", "kernel patch review comments", false, None),
            ],
            30,
        )
    }

    /// Spam that looks like meeting mail except for two words the old model never saw.
    fn new_data() -> Owned {
        corpus(
            &[
                (
                    "meeting",
                    "zorblax presale agenda team",
                    true,
                    Some(Category::Fraud),
                ),
                ("meeting", "agenda for the team meeting", false, None),
                (
                    "pills",
                    "cheap pills viagra offer",
                    true,
                    Some(Category::Pharma),
                ),
            ],
            25,
        )
    }

    fn base(algorithm: Algorithm) -> Result<ModelArtifact, TrainError> {
        let options = TrainOptions {
            algorithm: Some(algorithm),
            subword_vocab_size: 200,
            max_features: 300,
            folds: 3,
            ..TrainOptions::default()
        };
        train_on(&old_data(), &options)
    }

    #[test]
    fn warm_start_learns_a_new_token_keeps_old_knowledge_and_is_deterministic()
    -> Result<(), Box<dyn std::error::Error>> {
        let parent = base(Algorithm::Ftrl)?;
        assert!(
            parent.online_state.is_some(),
            "FTRL training keeps its state"
        );
        let probe = message("meeting", "zorblax presale agenda team");
        let before = Model::from_artifact(parent.clone())?.classify(&probe);
        assert!(!before.spam, "the parent cannot know zorblax: {before:?}");

        let new = new_data();
        let options = UpdateOptions {
            folds: 3,
            ..UpdateOptions::default()
        };
        let (updated, report) = update_with(&parent, &new, &options)?;
        assert_eq!(report.warm_start, WarmStart::OnlineState);
        assert!(report.new_features > 0, "{report:?}");
        assert!(report.coverage > 0.0 && report.coverage < 1.0, "{report:?}");
        assert!(
            updated.feature_names.iter().any(|n| n == "body:zorblax"),
            "vocabulary extension adds the new token"
        );
        assert_eq!(
            updated.feature_hashes[..parent.feature_hashes.len()],
            parent.feature_hashes[..]
        );
        assert_eq!(
            updated.metadata.parent_model_id.as_deref(),
            Some(parent.metadata.model_id.as_str())
        );
        assert_eq!(updated.metadata.training_data.messages, new.len());
        assert_ne!(updated.metadata.model_id, parent.metadata.model_id);
        assert_eq!(updated.log_count_scale, parent.log_count_scale);
        let recorded: UpdateOptions =
            serde_json::from_str(updated.metadata.build_options.as_deref().unwrap_or(""))?;
        let resolved = UpdateOptions {
            category_algorithm: Some(CategoryAlgorithm::OneVsRestNaiveBayes),
            ..options.clone()
        };
        assert_eq!(
            recorded, resolved,
            "the update's options are recorded, with the parent's category algorithm"
        );

        let model = Model::from_artifact(updated.clone())?;
        let after = model.classify(&probe);
        assert!(after.spam, "the update flips the verdict: {after:?}");
        assert!(
            model
                .classify(&message("pills", "buy cheap viagra pills"))
                .spam
        );
        assert!(
            !model
                .classify(&message("patch", "kernel patch review"))
                .spam,
            "old ham it saw no more of stays ham"
        );
        assert!(
            !model
                .classify(&message("meeting", "team meeting agenda"))
                .spam
        );

        let bytes = updated.to_bytes()?;
        assert_eq!(ModelArtifact::from_bytes(&bytes)?, updated);
        let (again, _) = update_with(&parent, &new, &options)?;
        assert_eq!(again, updated, "deterministic for a seed");
        Ok(())
    }

    #[test]
    fn models_without_online_state_start_from_their_weights() -> Result<(), TrainError> {
        let mut parent = base(Algorithm::Logistic)?;
        assert!(parent.online_state.is_none());
        // As a file before format version 8 reads: the update extracts, and stays, as it does;
        // and as one before version 9, it weighs counts as `1 + ln(count)`, and so do its rows.
        parent.feature_config.mime_structure = true;
        parent.log_count_scale = 1.0;
        let new = new_data();
        let options = UpdateOptions {
            folds: 3,
            epochs: 0,
            max_new_features: 0,
            ..UpdateOptions::default()
        };
        let (updated, report) = update_with(&parent, &new, &options)?;
        assert_eq!(
            report.warm_start,
            WarmStart::FromWeights { prior_count: 100.0 }
        );
        assert_eq!(report.new_features, 0);
        let mut largest = 0f32;
        for (old, new) in parent.spam_weights.iter().zip(&updated.spam_weights) {
            assert!(
                (old - new).abs() <= 1e-5 * old.abs().max(1.0),
                "{old} {new}"
            );
            largest = largest.max(old.abs());
        }
        assert!(largest > 0.1, "the logistic model has real weights");
        assert_eq!(updated.feature_config, parent.feature_config);
        assert_eq!(updated.log_count_scale, 1.0);
        Ok(())
    }

    #[test]
    fn category_head_continues_from_the_stored_counts() -> Result<(), Box<dyn std::error::Error>> {
        // No subword features: the WordPiece trainer is not deterministic across processes.
        let options = TrainOptions {
            subword_vocab_size: 0,
            max_features: 300,
            // 60 places for the category head's features, so that the few words of this toy
            // corpus (and their pairs) all make it in.
            category_feature_share: 0.2,
            folds: 3,
            // No word lists: `pills` and `bank` are on two of them, which would name the probe's
            // kind before any update.
            feature_config: spamflow_features::FeatureConfig {
                lexicons: 0,
                ..Default::default()
            },
            ..TrainOptions::default()
        };
        let old = corpus(
            &[
                ("pills", "cheap pills viagra", true, Some(Category::Pharma)),
                (
                    "lottery",
                    "lottery winner bank",
                    true,
                    Some(Category::Fraud),
                ),
                ("meeting", "agenda for the team meeting", false, None),
                ("patch", "kernel patch review comments", false, None),
            ],
            30,
        );
        let parent = train_on(&old, &options)?;
        let parent_counts = parent
            .category_counts
            .clone()
            .ok_or("training stores counts")?;
        // Later pharma spam also talks of banks (`body:bank` is one of the head's features).
        let new = corpus(
            &[
                ("pills", "bank pills viagra", true, Some(Category::Pharma)),
                ("meeting", "agenda for the team meeting", false, None),
            ],
            25,
        );
        let update_options = UpdateOptions {
            folds: 3,
            ..UpdateOptions::default()
        };
        let (updated, report) = update_with(&parent, &new, &update_options)?;
        assert_eq!(
            report.category_head,
            CategoryHeadUpdate::Continued { labeled_spam: 25 }
        );
        let counts = updated.category_counts.clone().ok_or("kept")?;
        assert_eq!(counts.columns, parent_counts.columns);
        let pharma = Category::Pharma.index();
        // 25 messages and their 25 headerless copies.
        assert_eq!(counts.rows[pharma], parent_counts.rows[pharma] + 50);
        assert_eq!(
            counts.rows[Category::Fraud.index()],
            parent_counts.rows[Category::Fraud.index()]
        );
        // The parent names a message of pills and banks fraud; after learning that pharma spam
        // talks of banks too, pharma.
        let probe = message("hello", "bank pills");
        let verdict = |artifact: &ModelArtifact| -> Result<Verdict, ArtifactError> {
            Ok(Model::from_artifact(artifact.clone())?.classify(&probe))
        };
        let (before, after) = (verdict(&parent)?, verdict(&updated)?);
        assert_eq!(before.category, Category::Fraud, "{before:?}");
        assert_eq!(after.category, Category::Pharma, "{after:?}");
        assert!(after.category_scores[pharma] > before.category_scores[pharma] + 0.2);

        // Without stored counts (files before format version 5) the head is kept as it is.
        let mut legacy = parent.clone();
        legacy.category_counts = None;
        let (kept, report) = update_with(&legacy, &new, &update_options)?;
        assert_eq!(report.category_head, CategoryHeadUpdate::KeptNoCounts);
        assert_eq!(kept.category_counts, None);
        assert_eq!(kept.category_bias, parent.category_bias);
        assert_eq!(
            kept.category_weights[..parent.category_weights.len()],
            parent.category_weights[..]
        );
        // Without labeled spam the counts are kept too.
        let unlabeled: Owned = new.iter().map(|(m, s, _)| (m.clone(), *s, None)).collect();
        let (kept, report) = update_with(&parent, &unlabeled, &update_options)?;
        assert_eq!(report.category_head, CategoryHeadUpdate::KeptNoLabels);
        assert_eq!(kept.category_counts, parent.category_counts);

        // The head continues with the algorithm the parent was built with, and records it, and
        // keeps the parent's softmax temperature.
        let parent_scale =
            assert_category_head_from_counts(&parent, CategoryAlgorithm::OneVsRestNaiveBayes)?;
        let updated_scale =
            assert_category_head_from_counts(&updated, CategoryAlgorithm::OneVsRestNaiveBayes)?;
        assert!(
            (updated_scale - parent_scale).abs() < 1e-3 * parent_scale,
            "{updated_scale} against the parent's {parent_scale}"
        );
        assert_eq!(
            updated.metadata.category_algorithm()?,
            CategoryAlgorithm::OneVsRestNaiveBayes
        );
        let multinomial_parent = train_on(
            &old,
            &TrainOptions {
                category_algorithm: CategoryAlgorithm::NaiveBayes,
                ..options
            },
        )?;
        let (multinomial, _) = update_with(&multinomial_parent, &new, &update_options)?;
        assert_category_head_from_counts(&multinomial, CategoryAlgorithm::NaiveBayes)?;
        assert_eq!(
            multinomial.metadata.category_algorithm()?,
            CategoryAlgorithm::NaiveBayes
        );
        // An update of an update continues it too; options that do not name an algorithm (an
        // update before the option existed) mean the multinomial head.
        let (again, _) = update_with(&updated, &new, &update_options)?;
        assert_category_head_from_counts(&again, CategoryAlgorithm::OneVsRestNaiveBayes)?;
        let mut unnamed = updated.clone();
        unnamed.metadata.build_options = Some(r#"{"seed": 42}"#.to_owned());
        assert_eq!(
            unnamed.metadata.category_algorithm()?,
            CategoryAlgorithm::NaiveBayes
        );
        // Another algorithm cannot continue the stored sums; an unknown name is refused too.
        for (parent, asked) in [
            (&updated, CategoryAlgorithm::NaiveBayes),
            (&multinomial, CategoryAlgorithm::OneVsRestNaiveBayes),
            (&multinomial, CategoryAlgorithm::Logistic),
        ] {
            let options = UpdateOptions {
                category_algorithm: Some(asked),
                ..update_options.clone()
            };
            let refused = update_with(parent, &new, &options).map(|_| ());
            assert!(
                matches!(&refused, Err(TrainError::NotUpdatable { reason, .. })
                    if reason.contains("continues it as it was built")),
                "{refused:?}"
            );
        }
        let same = UpdateOptions {
            category_algorithm: Some(CategoryAlgorithm::NaiveBayes),
            ..update_options.clone()
        };
        assert!(update_with(&multinomial, &new, &same).is_ok());
        let mut unknown = updated.clone();
        unknown.metadata.build_options = Some(r#"{"category_algorithm": "svm"}"#.to_owned());
        assert!(matches!(
            update_with(&unknown, &new, &update_options),
            Err(TrainError::NotUpdatable { .. })
        ));
        Ok(())
    }

    #[test]
    fn the_spam_heads_naive_bayes_part_continues_from_the_stored_sums()
    -> Result<(), Box<dyn std::error::Error>> {
        let options = small_options();
        let parent = train_on(&old_data(), &options)?;
        let stored = parent
            .spam_naive_bayes
            .clone()
            .ok_or("training stores the part")?;
        let update_options = UpdateOptions {
            folds: 3,
            ..UpdateOptions::default()
        };
        let (updated, report) = update_with(&parent, &new_data(), &update_options)?;
        let continued = updated.spam_naive_bayes.clone().ok_or("kept")?;
        assert_eq!(
            (continued.blend, continued.alpha),
            (stored.blend, stored.alpha)
        );
        // 25 ham and 50 spam messages, each with its headerless copy.
        assert_eq!(continued.rows, [stored.rows[0] + 50, stored.rows[1] + 100]);
        let (old_width, new_width) = (parent.feature_hashes.len(), updated.feature_hashes.len());
        assert_eq!(new_width, old_width + report.new_features);
        for class in 0..2 {
            let (before, after) = (
                &stored.sums[class * old_width..(class + 1) * old_width],
                &continued.sums[class * new_width..(class + 1) * new_width],
            );
            for (column, (before, after)) in before.iter().zip(after).enumerate() {
                assert!(after >= &(before - 1e-9), "{column}: {before} -> {after}");
            }
            // Every new row adds a positive sum, to old features or new ones.
            assert!(after.iter().sum::<f64>() > before.iter().sum::<f64>() + 1.0);
        }
        // `kernel` occurs only in the old data: its sums stay as they were.
        let kernel = feature_row(&parent, "body:kernel")?;
        assert_eq!(continued.sums[kernel], stored.sums[kernel]);
        assert_eq!(
            continued.sums[new_width + kernel],
            stored.sums[old_width + kernel]
        );
        crate::train::toy::assert_spam_weights_blend(&updated)?;
        // A parent without the part (files before format version 7) is updated without one.
        let mut legacy = parent.clone();
        legacy.spam_naive_bayes = None;
        let (plain, _) = update_with(&legacy, &new_data(), &update_options)?;
        assert_eq!(plain.spam_naive_bayes, None);
        crate::train::toy::assert_spam_weights_blend(&plain)?;
        Ok(())
    }

    #[test]
    fn new_rows_are_weighed_with_the_parents_count_scale() -> Result<(), Box<dyn std::error::Error>>
    {
        let options = TrainOptions {
            log_count_scale: 0.0,
            ..small_options()
        };
        let parent = train_on(&old_data(), &options)?;
        // `viagra` three times in every new spam message, `cheap` once: with the parent's
        // presence-only scale both add the same to the spam sums (the default would not).
        let new = corpus(
            &[
                (
                    "pills",
                    "cheap pills viagra viagra viagra offer",
                    true,
                    Some(Category::Pharma),
                ),
                ("meeting", "agenda for the team meeting", false, None),
            ],
            25,
        );
        let update_options = UpdateOptions {
            folds: 3,
            ..UpdateOptions::default()
        };
        let (updated, _) = update_with(&parent, &new, &update_options)?;
        assert_eq!(updated.log_count_scale, 0.0);
        let added = |name: &str| -> Result<f64, String> {
            Ok(spam_sum(&updated, name)? - spam_sum(&parent, name)?)
        };
        let (viagra, cheap) = (added("body:viagra")?, added("body:cheap")?);
        assert!(
            cheap > 1.0 && (viagra - cheap).abs() < 1e-9,
            "{viagra} {cheap}"
        );
        Ok(())
    }

    #[test]
    fn z_for_inverts_the_proximal_step() {
        let hyper = FtrlHyper {
            alpha: 0.5,
            beta: 1.0,
            l1: 0.01,
            l2: 0.001,
        };
        for w in [-3.0, -0.2, 0.0, 0.05, 4.0] {
            for n in [0.0, 1.0, 250.0] {
                let z = hyper.z_for(w, n);
                let back = if z.abs() <= hyper.l1 {
                    0.0
                } else {
                    (z.signum() * hyper.l1 - z) / ((n.sqrt() + hyper.beta) / hyper.alpha + hyper.l2)
                };
                assert!((back - w).abs() < 1e-12, "w {w} n {n}: {back}");
            }
        }
    }

    #[test]
    fn refuses_models_it_cannot_update_with_clear_errors() -> Result<(), TrainError> {
        let mut parent = base(Algorithm::Ftrl)?;
        let new = new_data();
        let messages = labeled(&new);
        let run = |artifact: &ModelArtifact, messages: &[LabeledMessage<'_>]| {
            update(
                artifact,
                messages,
                &UpdateOptions::default(),
                "2026-01-02T00:00:00Z",
                TrainingData::default(),
                &NoProgress,
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
        };
        assert!(run(&parent, &[]).contains("at least one message"));
        assert!(
            parent.feature_names.iter().any(|n| n.starts_with("sw:")),
            "the toy model uses subword features"
        );
        let tokenizer = parent.tokenizer_json.take();
        assert!(run(&parent, &messages).contains("no subword tokenizer"));
        parent.tokenizer_json = Some("{not json".into());
        assert!(run(&parent, &messages).contains("tokenizer does not load"));
        parent.tokenizer_json = tokenizer;
        if let Some(state) = parent.online_state.as_mut() {
            state.z.pop();
        }
        assert!(run(&parent, &messages).contains("online state"));
        Ok(())
    }
}

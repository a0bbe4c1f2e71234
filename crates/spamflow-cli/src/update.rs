//! `spamflow update`: a model plus new labeled messages to a new model (warm-started FTRL).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use spamflow_model::{CategoryHeadUpdate, UpdateOptions, WarmStart};

use crate::manifest::Split;
use crate::{
    LabeledSet, input, learned_from, load_artifact, now_rfc3339, peak_memory, progress,
    read_options, thread_pool, write_model,
};

/// Arguments of `spamflow update`.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The model to update (default: the model built into this binary).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Manifest CSV of the new labeled messages. Repeat to combine.
    #[arg(long, required = true)]
    pub manifest: Vec<PathBuf>,
    /// Split to learn from [default: train]; rows of other splits are ignored. A manifest
    /// without a `split` column is read whole.
    #[arg(long)]
    pub split: Option<String>,
    /// Where to write the updated model file.
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed (fold assignment, shuffling) [default: 42].
    #[arg(long)]
    pub seed: Option<u64>,
    /// FTRL passes over the new messages [default: 40].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// New features appended at most (vocabulary extension; 0: none) [default: 5000].
    #[arg(long)]
    pub max_new_features: Option<usize>,
    /// Squared-gradient prior `n0` for a model without FTRL state [default: 100].
    #[arg(long)]
    pub prior_count: Option<f64>,
    /// Folds of the out-of-fold scores the calibration and threshold are fitted on [default: 3].
    #[arg(long)]
    pub folds: Option<usize>,
    /// Learn from the new messages only, not also from their headerless copies.
    #[arg(long)]
    pub no_headerless_copies: bool,
    /// TOML file with update options (every field of the update options; see the README).
    /// Flags given on the command line win over the file.
    #[arg(long)]
    pub options: Option<PathBuf>,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs `spamflow update`.
pub fn run(args: &UpdateArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    let parent = load_artifact(args.model.as_deref())?;
    let set = LabeledSet::read(
        &args.manifest,
        Split::chosen(args.split.as_deref(), "train"),
        input::kept_message_bytes(&parent.feature_config.limits),
    )?;
    let messages = set.messages();
    let defaults: UpdateOptions = read_options(args.options.as_deref())?;
    let options = UpdateOptions {
        seed: args.seed.unwrap_or(defaults.seed),
        epochs: args.epochs.unwrap_or(defaults.epochs),
        max_new_features: args.max_new_features.unwrap_or(defaults.max_new_features),
        prior_count: args.prior_count.unwrap_or(defaults.prior_count),
        folds: args.folds.unwrap_or(defaults.folds),
        headerless_copies: defaults.headerless_copies && !args.no_headerless_copies,
        ..defaults
    };
    let created_at = now_rfc3339();
    let bars = progress::Bars::new();
    let (artifact, report) = thread_pool(args.threads)?.install(|| {
        spamflow_model::update(
            &parent,
            &messages,
            &options,
            &created_at,
            set.training_data.clone(),
            &bars,
        )
    })?;
    bars.finish();
    let size = write_model(&args.out, &artifact)?;
    writeln!(
        out,
        "model {} (parent {}) written to {} ({} bytes)",
        report.model_id,
        report.parent_model_id,
        args.out.display(),
        size
    )?;
    writeln!(
        out,
        "updated on {} in {:.1} s, peak memory {}",
        learned_from(report.messages, report.spam, options.headerless_copies),
        started.elapsed().as_secs_f64(),
        peak_memory()
    )?;
    writeln!(
        out,
        "vocabulary coverage {:.1} % of the new messages' feature occurrences; {} new features",
        report.coverage * 100.0,
        report.new_features
    )?;
    if report.retrain_advised {
        writeln!(
            out,
            "warning: coverage is below {:.0} %: the model knows little of this data; a full retrain (`spamflow train`) is advisable",
            options.min_coverage * 100.0
        )?;
    }
    match report.warm_start {
        WarmStart::OnlineState => writeln!(out, "warm start from the stored FTRL state")?,
        WarmStart::FromWeights { prior_count } => writeln!(
            out,
            "warm start from the weights (no FTRL state stored; prior count {prior_count})"
        )?,
    }
    match &artifact.spam_naive_bayes {
        Some(nb) => writeln!(
            out,
            "spam head's naive Bayes part continued (blend {}; sums of {} ham and {} spam rows)",
            nb.blend, nb.rows[0], nb.rows[1]
        )?,
        None => writeln!(
            out,
            "spam head: FTRL alone (the model has no naive Bayes part: format before 7, or naive_bayes_blend = 0)"
        )?,
    }
    match report.category_head {
        CategoryHeadUpdate::Continued { labeled_spam } => writeln!(
            out,
            "category head continued with {labeled_spam} labeled spam{}",
            if options.headerless_copies {
                " and their headerless copies"
            } else {
                ""
            }
        )?,
        CategoryHeadUpdate::KeptNoLabels => writeln!(
            out,
            "category head kept: no spam among the new messages has a category label"
        )?,
        CategoryHeadUpdate::KeptNoCounts => writeln!(
            out,
            "category head kept: the model stores no category counts (written before format version 5, a logistic head, or one that had too few labeled spam); retrain to update it"
        )?,
    }
    let v = &artifact.metadata.validation;
    writeln!(
        out,
        "{}-fold out-of-fold ROC AUC {:.6} (1-AUC {:.4} %); threshold {:.4} (FPR {:.4} %, recall {:.4}); category macro-F1 {:.4}",
        v.folds,
        v.roc_auc,
        (1.0 - v.roc_auc) * 100.0,
        artifact.threshold,
        v.fpr * 100.0,
        v.recall,
        v.category_macro_f1
    )?;
    Ok(())
}

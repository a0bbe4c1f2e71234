//! `spamflow eval`: quality and speed of a model on a labeled manifest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;
use serde_json::json;
use spamflow_model::{
    BinaryMetrics, Calibration, Category, CategoryCalibration, CategoryReport, Model, Verdict,
    binary_metrics, calibration, category_calibration, category_report, recall_at_fpr, roc_auc,
};

use crate::manifest::{self, Split};
use crate::{input, load_model, thread_pool};

/// Equal-width probability bins of the reliability diagrams.
pub const CALIBRATION_BINS: usize = 10;

/// Categories the quality bar names.
pub const FOCUS_CATEGORIES: [Category; 3] =
    [Category::Pharma, Category::Mortgage, Category::Software];

/// Arguments of `spamflow eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Model file to evaluate.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Manifest CSV listing the messages.
    #[arg(long)]
    pub manifest: PathBuf,
    /// Split of the manifest to evaluate on [default: test; a manifest without a `split` column
    /// is evaluated whole].
    #[arg(long)]
    pub split: Option<String>,
    /// Also write the metrics as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write a Markdown report with ROC, precision-recall and confusion plots to this folder.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Spam-vs-ham figures.
#[derive(Debug)]
pub struct SpamSummary {
    /// ROC AUC.
    pub roc_auc: f64,
    /// (1 - AUC) in percent.
    pub one_minus_auc_pct: f64,
    /// Best recall with FPR <= 0.1 %.
    pub recall_at_fpr_0_1pct: f64,
    /// Best recall with no false positive (the ranking's limit at zero false positives).
    pub recall_at_zero_fp: f64,
    /// Rates at the model's threshold.
    pub metrics: BinaryMetrics,
    /// How well the spam probability matches the share of spam.
    pub calibration: Calibration,
}

/// The headline figures of one evaluation.
#[derive(Debug)]
pub struct EvalSummary {
    /// Model evaluated.
    pub model_id: String,
    /// Messages scored.
    pub messages: usize,
    /// Worker threads.
    pub threads: usize,
    /// Classification throughput (parse through score; files already in memory).
    pub msgs_per_sec: f64,
    /// Spam-vs-ham figures.
    pub spam: SpamSummary,
}

/// One model's evaluation on labeled messages: the summary, the category report and the
/// per-message scores the report plots.
pub struct Evaluation {
    /// Headline figures.
    pub summary: EvalSummary,
    /// Category metrics over the labeled spam.
    pub categories: CategoryReport,
    /// How well the category scores are calibrated, over the same spam.
    pub category_calibration: CategoryCalibration,
    /// Calibrated log-odds per message.
    pub scores: Vec<f64>,
    /// True for spam, per message.
    pub labels: Vec<bool>,
}

/// Scores `messages` (the files of `rows`, already in memory) with `model` on `pool` and
/// computes every metric `eval` reports.
pub fn evaluate(
    model: &Model,
    rows: &[manifest::Row],
    messages: &[Vec<u8>],
    pool: &rayon::ThreadPool,
) -> Evaluation {
    let threads = pool.current_num_threads();
    let started = Instant::now();
    let verdicts: Vec<Verdict> =
        pool.install(|| messages.par_iter().map(|m| model.classify(m)).collect());
    let seconds = started.elapsed().as_secs_f64();

    let scores: Vec<f64> = verdicts
        .iter()
        .map(|v| f64::from(v.spam_log_odds))
        .collect();
    let labels: Vec<bool> = rows.iter().map(|r| r.spam).collect();
    let probabilities: Vec<f64> = verdicts
        .iter()
        .map(|v| f64::from(v.spam_probability))
        .collect();
    let metrics = binary_metrics(&probabilities, &labels, f64::from(model.threshold()));
    // The calibration figures take the probability from the log-odds in f64: the f32
    // probability rounds to exactly 1 past log-odds of about 17, which would cost a wrong
    // message the log loss's clip instead of its real cost.
    let precise: Vec<f64> = scores.iter().map(|&z| 1.0 / (1.0 + (-z).exp())).collect();
    let auc = roc_auc(&scores, &labels);
    let mut truth = Vec::new();
    let mut predicted = Vec::new();
    let mut category_scores = Vec::new();
    for (row, verdict) in rows.iter().zip(&verdicts) {
        if let Some(category) = row.category {
            truth.push(category);
            predicted.push(verdict.category);
            category_scores.push(verdict.category_scores);
        }
    }
    let categories = category_report(&truth, &predicted);
    let category_calibration =
        category_calibration(&truth, &predicted, &category_scores, CALIBRATION_BINS);
    let summary = EvalSummary {
        model_id: model.metadata().model_id.clone(),
        messages: messages.len(),
        threads,
        msgs_per_sec: messages.len() as f64 / seconds.max(1e-9),
        spam: SpamSummary {
            roc_auc: auc,
            one_minus_auc_pct: (1.0 - auc) * 100.0,
            recall_at_fpr_0_1pct: recall_at_fpr(&scores, &labels, 0.001),
            recall_at_zero_fp: recall_at_fpr(&scores, &labels, 0.0),
            metrics,
            calibration: calibration(&precise, &labels, CALIBRATION_BINS),
        },
    };
    Evaluation {
        summary,
        categories,
        category_calibration,
        scores,
        labels,
    }
}

/// The rows `split` selects in `path` and their files' bytes (at most `max_bytes` of each);
/// fails when there are none.
pub fn read_split(
    path: &Path,
    split: Split<'_>,
    max_bytes: usize,
) -> anyhow::Result<(manifest::Manifest, Vec<Vec<u8>>)> {
    let manifest = manifest::read(path, split)?;
    anyhow::ensure!(
        !manifest.rows.is_empty(),
        "no rows{} in {}",
        manifest.selection(),
        path.display()
    );
    if let (Split::Default(default), None) = (split, &manifest.split) {
        // Said once, because a model trained on the same whole manifest would be scored on its
        // own training mail.
        eprintln!(
            "note: {} has no `split` column: evaluating all {} rows, not the {default:?} split",
            path.display(),
            manifest.rows.len()
        );
    }
    let messages = manifest::read_messages(&manifest.rows, max_bytes)?;
    Ok((manifest, messages))
}

/// Runs `spamflow eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let model = load_model(args.model.as_deref())?;
    let (manifest, messages) = read_split(
        &args.manifest,
        Split::chosen(args.split.as_deref(), "test"),
        input::kept_message_bytes(&model.extractor().config().limits),
    )?;
    let rows = &manifest.rows;
    let pool = thread_pool(args.threads)?;
    let evaluation = evaluate(&model, rows, &messages, &pool);
    print_table(&evaluation)?;
    if let Some(path) = &args.json {
        write_json(path, &to_json(&evaluation))?;
    }
    if let Some(dir) = &args.report {
        crate::report::write(dir, &evaluation)?;
        writeln!(
            std::io::stdout(),
            "report written to {}",
            dir.join("report.md").display()
        )?;
    }
    Ok(())
}

/// Writes a JSON document, pretty-printed, with a final newline.
pub fn write_json(path: &Path, document: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(document)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// The `eval` JSON document (keys in the README).
pub fn to_json(evaluation: &Evaluation) -> serde_json::Value {
    let Evaluation {
        summary,
        categories,
        category_calibration,
        ..
    } = evaluation;
    let m = &summary.spam.metrics;
    let c = &summary.spam.calibration;
    let per_class: serde_json::Map<String, serde_json::Value> = categories
        .per_class
        .iter()
        .map(|(c, cm)| (c.as_str().to_owned(), json!({"precision": cm.precision, "recall": cm.recall, "f1": cm.f1, "support": cm.support})))
        .collect();
    json!({
        "model_id": summary.model_id,
        "messages": summary.messages,
        "spam": {
            "roc_auc": summary.spam.roc_auc,
            "one_minus_auc_pct": summary.spam.one_minus_auc_pct,
            "threshold": m.threshold,
            "fpr": m.fpr,
            "fnr": m.fnr,
            "precision": m.precision,
            "recall": m.recall,
            "f1": m.f1,
            "accuracy": m.accuracy,
            "false_positives": m.false_positives,
            "false_negatives": m.false_negatives,
            "recall_at_fpr_0_1pct": summary.spam.recall_at_fpr_0_1pct,
            "recall_at_zero_fp": summary.spam.recall_at_zero_fp,
            "log_loss": c.log_loss,
            "brier": c.brier,
            "expected_calibration_error": c.expected_calibration_error,
            "reliability": c.bins,
        },
        "categories": {
            "support": categories.support,
            "macro_f1": categories.macro_f1,
            "macro_f1_pharma_mortgage_software": categories.macro_f1_of(&FOCUS_CATEGORIES),
            "per_class": per_class,
            "confusion": {
                "labels": Category::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                "matrix": categories.confusion,
            },
            "cross_entropy": category_calibration.cross_entropy,
            "mean_top_score": category_calibration.mean_top_score,
            "accuracy": category_calibration.accuracy,
            "top_score_expected_calibration_error":
                category_calibration.top_score.expected_calibration_error,
            "top_score_reliability": category_calibration.top_score.bins,
        },
        "throughput": {
            "msgs_per_sec": summary.msgs_per_sec,
            "threads": summary.threads,
        },
    })
}

/// `value` with `digits` decimals, `-` when it is undefined (NaN: a figure over no messages).
pub fn fixed(value: f64, digits: usize) -> String {
    if value.is_nan() {
        "-".to_owned()
    } else {
        format!("{value:.digits$}")
    }
}

fn print_table(evaluation: &Evaluation) -> std::io::Result<()> {
    let Evaluation {
        summary,
        categories,
        category_calibration,
        ..
    } = evaluation;
    let mut out = std::io::stdout().lock();
    let s = &summary.spam;
    let m = &s.metrics;
    writeln!(
        out,
        "model {}  messages {}  threads {}  {:.0} msgs/s",
        summary.model_id, summary.messages, summary.threads, summary.msgs_per_sec
    )?;
    writeln!(out, "{:<28}{:>12}", "metric", "value")?;
    let rows = [
        ("roc_auc", format!("{:.6}", s.roc_auc)),
        ("1-auc (%)", format!("{:.4}", s.one_minus_auc_pct)),
        ("threshold", format!("{:.4}", m.threshold)),
        ("false positives", format!("{}", m.false_positives)),
        ("false negatives", format!("{}", m.false_negatives)),
        ("fpr", format!("{:.5}", m.fpr)),
        ("fnr", format!("{:.5}", m.fnr)),
        ("precision", format!("{:.4}", m.precision)),
        ("recall", format!("{:.4}", m.recall)),
        ("f1", format!("{:.4}", m.f1)),
        ("accuracy", format!("{:.4}", m.accuracy)),
        ("recall@fpr<=0.1%", format!("{:.4}", s.recall_at_fpr_0_1pct)),
        ("recall@0 fp", format!("{:.4}", s.recall_at_zero_fp)),
        ("log loss", fixed(s.calibration.log_loss, 4)),
        ("brier", fixed(s.calibration.brier, 5)),
        (
            "calibration error",
            fixed(s.calibration.expected_calibration_error, 4),
        ),
        ("category macro-f1", format!("{:.4}", categories.macro_f1)),
        (
            "pharma/mortgage/software f1",
            format!("{:.4}", categories.macro_f1_of(&FOCUS_CATEGORIES)),
        ),
        (
            "category cross-entropy",
            fixed(category_calibration.cross_entropy, 4),
        ),
        (
            "category mean top score",
            fixed(category_calibration.mean_top_score, 4),
        ),
        (
            "category top-score ece",
            fixed(category_calibration.top_score.expected_calibration_error, 4),
        ),
    ];
    for (name, value) in rows {
        writeln!(out, "{name:<28}{value:>12}")?;
    }
    writeln!(
        out,
        "{:<12}{:>10}{:>10}{:>10}{:>10}",
        "category", "precision", "recall", "f1", "support"
    )?;
    for (c, cm) in &categories.per_class {
        writeln!(
            out,
            "{:<12}{:>10.3}{:>10.3}{:>10.3}{:>10}",
            c.as_str(),
            cm.precision,
            cm.recall,
            cm.f1,
            cm.support
        )?;
    }
    Ok(())
}

//! `spamflow compare`: the current model against a candidate on the same messages, accepted or
//! rejected by quality tolerances (the gate before a retrained model is shipped).

use std::io::Write;
use std::path::PathBuf;

use serde_json::json;

use crate::eval::{
    EvalSummary, Evaluation, FOCUS_CATEGORIES, evaluate, fixed, read_split, to_json, write_json,
};
use crate::manifest::Split;
use crate::{input, load_model, thread_pool};

/// Arguments of `spamflow compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The model in service (default: the model built into this binary).
    #[arg(long)]
    pub current: Option<PathBuf>,
    /// The model that would replace it.
    #[arg(long)]
    pub candidate: PathBuf,
    /// Manifest CSV listing the labeled messages both are evaluated on.
    #[arg(long)]
    pub manifest: PathBuf,
    /// Split of the manifest to evaluate on [default: test; a manifest without a `split` column
    /// is evaluated whole].
    #[arg(long)]
    pub split: Option<String>,
    /// Largest accepted drop of ROC AUC (absolute).
    #[arg(long, default_value_t = 0.0005)]
    pub max_auc_drop: f64,
    /// Largest accepted rise of the false-positive rate at each model's own threshold
    /// (absolute, as a fraction: 0.001 is 0.1 percentage points).
    #[arg(long, default_value_t = 0.001)]
    pub max_fpr_increase: f64,
    /// Largest accepted drop of the category macro-F1 over pharma, mortgage and software.
    #[arg(long, default_value_t = 0.02)]
    pub max_macro_f1_drop: f64,
    /// Also write both evaluations and the decision as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs `spamflow compare`; true when the candidate is accepted.
pub fn run(args: &CompareArgs) -> anyhow::Result<bool> {
    let current = load_model(args.current.as_deref())?;
    let candidate = load_model(Some(&args.candidate))?;
    let kept = |model: &spamflow_model::Model| {
        input::kept_message_bytes(&model.extractor().config().limits)
    };
    let max_bytes = kept(&current).max(kept(&candidate));
    let (manifest, messages) = read_split(
        &args.manifest,
        Split::chosen(args.split.as_deref(), "test"),
        max_bytes,
    )?;
    let rows = &manifest.rows;
    let spam = rows.iter().filter(|r| r.spam).count();
    // Without both classes AUC is undefined and one of FPR and recall is vacuous: a gate that
    // could not fail. Refuse instead (a trap-only feedback export, say).
    anyhow::ensure!(
        spam > 0 && spam < rows.len(),
        "compare needs spam and ham to judge: the rows{} in {} are {spam} spam and {} ham",
        manifest.selection(),
        args.manifest.display(),
        rows.len() - spam
    );
    let pool = thread_pool(args.threads)?;
    let current = evaluate(&current, rows, &messages, &pool);
    let candidate = evaluate(&candidate, rows, &messages, &pool);
    let failures = failures(&current, &candidate, args);
    print_table(&current, &candidate, &failures)?;
    if let Some(path) = &args.json {
        write_json(
            path,
            &json!({
                "current": to_json(&current),
                "candidate": to_json(&candidate),
                "accepted": failures.is_empty(),
                "failures": failures,
            }),
        )?;
    }
    Ok(failures.is_empty())
}

/// The figures the tolerances judge.
struct Gate {
    auc: f64,
    fpr: f64,
    macro_f1: f64,
}

impl Gate {
    fn of(evaluation: &Evaluation) -> Self {
        Gate {
            auc: evaluation.summary.spam.roc_auc,
            fpr: evaluation.summary.spam.metrics.fpr,
            macro_f1: evaluation.categories.macro_f1_of(&FOCUS_CATEGORIES),
        }
    }
}

/// One sentence per tolerance the candidate exceeds (empty: accepted).
fn failures(current: &Evaluation, candidate: &Evaluation, args: &CompareArgs) -> Vec<String> {
    let (a, b) = (Gate::of(current), Gate::of(candidate));
    let mut failures = Vec::new();
    let figures = [a.auc, a.fpr, a.macro_f1, b.auc, b.fpr, b.macro_f1];
    if figures.iter().any(|f| !f.is_finite()) {
        failures.push(format!(
            "a gated figure is not a number (ROC AUC {} -> {}, FPR {} -> {}, macro-F1 {} -> {})",
            a.auc, b.auc, a.fpr, b.fpr, a.macro_f1, b.macro_f1
        ));
    }
    let checks = [
        (
            "ROC AUC dropped",
            a.auc - b.auc,
            (a.auc, b.auc),
            args.max_auc_drop,
        ),
        (
            "FPR rose",
            b.fpr - a.fpr,
            (a.fpr, b.fpr),
            args.max_fpr_increase,
        ),
        (
            "pharma/mortgage/software macro-F1 dropped",
            a.macro_f1 - b.macro_f1,
            (a.macro_f1, b.macro_f1),
            args.max_macro_f1_drop,
        ),
    ];
    for (what, worse, (from, to), tolerance) in checks {
        if worse > tolerance {
            failures.push(format!(
                "{what} by {worse:.6} ({from:.6} -> {to:.6}), tolerance {tolerance}, exceeded by {:.6}",
                worse - tolerance
            ));
        }
    }
    failures
}

/// The side-by-side table and the decision line.
fn print_table(
    current: &Evaluation,
    candidate: &Evaluation,
    failures: &[String],
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let figures = |e: &Evaluation| -> Vec<f64> {
        let EvalSummary { spam, .. } = &e.summary;
        let m = &spam.metrics;
        vec![
            spam.roc_auc,
            spam.one_minus_auc_pct,
            m.threshold,
            m.false_positives as f64,
            m.fpr,
            m.fnr,
            m.recall,
            m.precision,
            m.f1,
            spam.recall_at_fpr_0_1pct,
            spam.calibration.log_loss,
            e.categories.macro_f1_of(&FOCUS_CATEGORIES),
            e.category_calibration.cross_entropy,
            e.summary.msgs_per_sec,
        ]
    };
    let names = [
        ("roc_auc", 6),
        ("1-auc (%)", 4),
        ("threshold", 4),
        ("false positives", 0),
        ("fpr", 5),
        ("fnr", 5),
        ("recall", 4),
        ("precision", 4),
        ("f1", 4),
        ("recall@fpr<=0.1%", 4),
        ("log loss", 4),
        ("pharma/mortgage/software f1", 4),
        ("category cross-entropy", 4),
        ("throughput (msgs/s)", 0),
    ];
    writeln!(
        out,
        "messages {}  current {}  candidate {}",
        current.summary.messages, current.summary.model_id, candidate.summary.model_id
    )?;
    writeln!(
        out,
        "{:<28}{:>14}{:>14}{:>14}",
        "metric", "current", "candidate", "difference"
    )?;
    for (((name, digits), a), b) in names.iter().zip(figures(current)).zip(figures(candidate)) {
        let difference = if (b - a).is_nan() {
            "-".to_owned()
        } else {
            format!("{:+.digits$}", b - a, digits = *digits)
        };
        writeln!(
            out,
            "{name:<28}{:>14}{:>14}{difference:>14}",
            fixed(a, *digits),
            fixed(b, *digits),
        )?;
    }
    if failures.is_empty() {
        writeln!(out, "ACCEPT")?;
    } else {
        writeln!(out, "REJECT: {}", failures.join("; "))?;
    }
    Ok(())
}

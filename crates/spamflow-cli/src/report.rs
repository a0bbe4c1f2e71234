//! The evaluation report folder: Markdown plus ROC, precision-recall, reliability and confusion
//! PNGs.

use std::path::Path;

use anyhow::{Context, anyhow};
use plotters::prelude::*;
use plotters::style::register_font;
use spamflow_model::{CalibrationBin, Category, CategoryReport};

use crate::eval::{CALIBRATION_BINS, Evaluation, fixed};

const FONT: &str = "sans-serif";

/// Writes `report.md`, `roc.png`, `precision_recall.png`, `reliability.png` and
/// `category_confusion.png` to `dir`.
pub fn write(dir: &Path, evaluation: &Evaluation) -> anyhow::Result<()> {
    let Evaluation {
        summary,
        categories,
        category_calibration,
        scores,
        labels,
    } = evaluation;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create report folder {}", dir.display()))?;
    // Plotters needs a font to draw text; DejaVu Sans ships inside the binary.
    register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| anyhow!("cannot load the embedded font"))?;
    let roc = spamflow_model::roc_curve(scores, labels);
    curve(
        &dir.join("roc.png"),
        "ROC curve (spam = positive)",
        "false-positive rate",
        "true-positive rate",
        &roc,
        true,
    )?;
    let pr = spamflow_model::pr_curve(scores, labels);
    curve(
        &dir.join("precision_recall.png"),
        "Precision-recall curve",
        "recall",
        "precision",
        &pr,
        false,
    )?;
    reliability(
        &dir.join("reliability.png"),
        &[
            (
                "spam probability: share of spam",
                &summary.spam.calibration.bins,
            ),
            (
                "category top score: share named right",
                &category_calibration.top_score.bins,
            ),
        ],
    )?;
    confusion(&dir.join("category_confusion.png"), categories)?;
    std::fs::write(dir.join("report.md"), markdown(evaluation))
        .context("cannot write report.md")?;
    Ok(())
}

fn curve(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
    log_x: bool,
) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let mut builder = ChartBuilder::on(&root);
    let chart = builder
        .caption(title, (FONT, 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55);
    let y_min = points.iter().map(|p| p.1).fold(1.0, f64::min).min(0.9);
    let series: Vec<(f64, f64)> = points.to_vec();
    if log_x {
        // FPR on a log axis: the interesting region is below 1 %.
        let floor = 1e-4;
        let mut chart = chart
            .build_cartesian_2d((floor..1.0).log_scale(), y_min..1.0)
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc(format!("{x_label} (log scale)"))
            .y_desc(y_label)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(LineSeries::new(
                series.into_iter().map(|(x, y)| (x.max(floor), y)),
                BLUE.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e}"))?;
    } else {
        let mut chart = chart
            .build_cartesian_2d(0.0..1.0, y_min..1.0)
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(LineSeries::new(series, BLUE.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?;
    }
    root.present()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The reliability diagram: per series, each bin's mean predicted probability against the share
/// observed true (points sized by the bin's messages), over the diagonal of perfect calibration.
fn reliability(path: &Path, series: &[(&str, &[CalibrationBin])]) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (800, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Reliability ({CALIBRATION_BINS} equal-width bins)"),
            (FONT, 24),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("mean predicted probability")
        .y_desc("observed share")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.4)))
        .map_err(|e| anyhow!("{e}"))?
        .label("perfect calibration")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
    for (&(name, bins), colour) in series.iter().zip([BLUE, RED]) {
        let points: Vec<(f64, f64)> = bins
            .iter()
            .map(|b| (b.mean_probability, b.observed_rate))
            .collect();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart
            .draw_series(bins.iter().map(|b| {
                // Area grows with the messages: radius 3 for one, 15 for 1,000 or more.
                let radius = 3.0 + 4.0 * (b.messages as f64).log10().min(3.0);
                Circle::new(
                    (b.mean_probability, b.observed_rate),
                    radius as i32,
                    colour.filled(),
                )
            }))
            .map_err(|e| anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 16))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    root.present()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn confusion(path: &Path, report: &CategoryReport) -> anyhow::Result<()> {
    let n = Category::ALL.len();
    let root = BitMapBackend::new(path, (800, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (title, body) = root.split_vertically(50);
    title
        .titled(
            "Category confusion (rows: true, columns: predicted)",
            (FONT, 22),
        )
        .map_err(|e| anyhow!("{e}"))?;
    let cell = 80i32;
    let left = 110i32;
    let top = 40i32;
    for (i, category) in Category::ALL.iter().enumerate() {
        let offset = i as i32 * cell + cell / 2;
        body.draw(&Text::new(
            category.as_str(),
            (left + offset - 28, top - 25),
            (FONT, 15),
        ))
        .map_err(|e| anyhow!("{e}"))?;
        body.draw(&Text::new(
            category.as_str(),
            (10, top + offset - 8),
            (FONT, 15),
        ))
        .map_err(|e| anyhow!("{e}"))?;
    }
    for truth in 0..n {
        let row_total: usize = report.confusion[truth].iter().sum::<usize>().max(1);
        for predicted in 0..n {
            let count = report.confusion[truth][predicted];
            let share = count as f64 / row_total as f64;
            let shade = (255.0 * (1.0 - share)) as u8;
            let x = left + predicted as i32 * cell;
            let y = top + truth as i32 * cell;
            body.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                RGBColor(shade, shade, 255).filled(),
            ))
            .map_err(|e| anyhow!("{e}"))?;
            body.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                BLACK.stroke_width(1),
            ))
            .map_err(|e| anyhow!("{e}"))?;
            let colour = if share > 0.5 { WHITE } else { BLACK };
            body.draw(&Text::new(
                count.to_string(),
                (x + cell / 2 - 10, y + cell / 2 - 8),
                (FONT, 18).into_font().color(&colour),
            ))
            .map_err(|e| anyhow!("{e}"))?;
        }
    }
    root.present()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn markdown(evaluation: &Evaluation) -> String {
    let Evaluation {
        summary,
        categories,
        ..
    } = evaluation;
    let s = &summary.spam;
    let mut out = format!(
        "# spamflow evaluation\n\nModel `{}`, {} messages, {} threads, {:.0} messages/s.\n\n\
         ## Spam vs ham\n\n| metric | value |\n|---|---|\n\
         | ROC AUC | {:.6} |\n| 1 - AUC | {:.4} % |\n| threshold | {:.4} |\n| false-positive rate | {:.4} % ({} ham) |\n\
         | false-negative rate | {:.4} % ({} spam) |\n| precision | {:.4} |\n| recall | {:.4} |\n| F1 | {:.4} |\n\
         | accuracy | {:.4} |\n| recall at FPR <= 0.1 % | {:.4} |\n| recall at zero false positives | {:.4} |\n\n\
         ![ROC](roc.png)\n\n![Precision-recall](precision_recall.png)\n\n\
         ## Categories (labeled spam, predicted category)\n\nMacro-F1 {:.4} over {} messages; pharma/mortgage/software macro-F1 {:.4}.\n\n\
         | category | precision | recall | F1 | support |\n|---|---|---|---|---|\n",
        summary.model_id,
        summary.messages,
        summary.threads,
        summary.msgs_per_sec,
        s.roc_auc,
        s.one_minus_auc_pct,
        s.metrics.threshold,
        s.metrics.fpr * 100.0,
        s.metrics.false_positives,
        s.metrics.fnr * 100.0,
        s.metrics.false_negatives,
        s.metrics.precision,
        s.metrics.recall,
        s.metrics.f1,
        s.metrics.accuracy,
        s.recall_at_fpr_0_1pct,
        s.recall_at_zero_fp,
        categories.macro_f1,
        categories.support,
        categories.macro_f1_of(&crate::eval::FOCUS_CATEGORIES),
    );
    for (category, m) in &categories.per_class {
        out.push_str(&format!(
            "| {category} | {:.3} | {:.3} | {:.3} | {} |\n",
            m.precision, m.recall, m.f1, m.support
        ));
    }
    out.push_str("\n![Category confusion](category_confusion.png)\n");
    out.push_str(&calibration_markdown(evaluation));
    out
}

/// The calibration section: summary figures and both reliability tables.
fn calibration_markdown(evaluation: &Evaluation) -> String {
    let spam = &evaluation.summary.spam.calibration;
    let category = &evaluation.category_calibration;
    // Figures over no messages are NaN: `-`, as in the tables on stdout.
    let mut out = format!(
        "\n## Calibration\n\nSpam probability: log loss {} nats, Brier score {}, expected \
         calibration error {}.\nCategory scores (labeled spam): cross-entropy of the true \
         category {} nats; the predicted category's mean score {} for {} named right \
         (expected calibration error {}).\n\n![Reliability](reliability.png)\n",
        fixed(spam.log_loss, 4),
        fixed(spam.brier, 5),
        fixed(spam.expected_calibration_error, 4),
        fixed(category.cross_entropy, 4),
        fixed(category.mean_top_score, 4),
        fixed(category.accuracy, 4),
        fixed(category.top_score.expected_calibration_error, 4),
    );
    for (title, observed, bins) in [
        ("Spam probability", "share spam", &spam.bins),
        (
            "Predicted category's score",
            "share named right",
            &category.top_score.bins,
        ),
    ] {
        out.push_str(&format!(
            "\n{title}:\n\n| bin | messages | mean probability | {observed} |\n|---|---|---|---|\n"
        ));
        for b in bins {
            out.push_str(&format!(
                "| {:.1}-{:.1} | {} | {:.4} | {:.4} |\n",
                b.lower, b.upper, b.messages, b.mean_probability, b.observed_rate
            ));
        }
    }
    out
}

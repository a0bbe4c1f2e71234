//! The evaluation report folder: Markdown plus ROC, precision-recall and confusion PNGs.

use std::path::Path;

use anyhow::{Context, anyhow};
use plotters::prelude::*;
use plotters::style::register_font;
use spamflow_model::{Category, CategoryReport};

use crate::eval::EvalSummary;

const FONT: &str = "sans-serif";

/// Writes `report.md`, `roc.png`, `precision_recall.png` and `category_confusion.png` to `dir`.
pub fn write(
    dir: &Path,
    summary: &EvalSummary,
    scores: &[f64],
    labels: &[bool],
    categories: &CategoryReport,
) -> anyhow::Result<()> {
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
    confusion(&dir.join("category_confusion.png"), categories)?;
    std::fs::write(dir.join("report.md"), markdown(summary, categories))
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

fn markdown(summary: &EvalSummary, categories: &CategoryReport) -> String {
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
    out
}

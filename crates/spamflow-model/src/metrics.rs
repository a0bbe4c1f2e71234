//! Evaluation metrics: ROC AUC, curves, thresholded rates, per-category scores and how well
//! predicted probabilities are calibrated.

use serde::Serialize;

use crate::category::Category;

/// Area under the ROC curve of `scores` against `labels` (true = positive), ties counted half.
/// Returns NaN when one class is missing. Like [`roc_curve`] and [`pr_curve`], it reads
/// `(score, label)` pairs: entries of the longer slice beyond the shorter one are ignored.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let (scores, labels) = paired(scores, labels);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    // Mann-Whitney U with average ranks for ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&k| labels[k]).count() as f64 * average_rank;
        i = j + 1;
    }
    let p = positives as f64;
    (rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64)
}

/// Points `(false-positive rate, true-positive rate)` of the ROC curve, one per distinct score.
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    let (scores, labels) = paired(scores, labels);
    let (positives, negatives) = class_counts(labels);
    sweep(scores, labels)
        .map(|(tp, fp)| {
            (
                fp as f64 / negatives.max(1) as f64,
                tp as f64 / positives.max(1) as f64,
            )
        })
        .collect()
}

/// Points `(recall, precision)` of the precision-recall curve, one per distinct score.
pub fn pr_curve(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    let (scores, labels) = paired(scores, labels);
    let (positives, _) = class_counts(labels);
    sweep(scores, labels)
        .filter(|(tp, fp)| tp + fp > 0)
        .map(|(tp, fp)| {
            (
                tp as f64 / positives.max(1) as f64,
                tp as f64 / (tp + fp) as f64,
            )
        })
        .collect()
}

/// Highest recall reachable while the false-positive rate stays at or below `max_fpr`.
pub fn recall_at_fpr(scores: &[f64], labels: &[bool], max_fpr: f64) -> f64 {
    roc_curve(scores, labels)
        .into_iter()
        .filter(|(fpr, _)| *fpr <= max_fpr)
        .map(|(_, tpr)| tpr)
        .fold(0.0, f64::max)
}

/// `scores` and `labels` cut to the same length.
fn paired<'a>(scores: &'a [f64], labels: &'a [bool]) -> (&'a [f64], &'a [bool]) {
    let n = scores.len().min(labels.len());
    (&scores[..n], &labels[..n])
}

fn class_counts(labels: &[bool]) -> (usize, usize) {
    let positives = labels.iter().filter(|&&l| l).count();
    (positives, labels.len() - positives)
}

/// Cumulative `(true positives, false positives)` as the threshold falls through each distinct
/// score, starting above the highest.
fn sweep<'a>(scores: &'a [f64], labels: &'a [bool]) -> impl Iterator<Item = (usize, usize)> + 'a {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut tp = 0;
    let mut fp = 0;
    let mut i = 0;
    std::iter::once((0, 0)).chain(std::iter::from_fn(move || {
        if i >= order.len() {
            return None;
        }
        let score = scores[order[i]];
        while i < order.len() && scores[order[i]] == score {
            if labels[order[i]] {
                tp += 1
            } else {
                fp += 1
            }
            i += 1;
        }
        Some((tp, fp))
    }))
}

/// Rates at one decision threshold (score >= threshold means positive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BinaryMetrics {
    /// The threshold applied.
    pub threshold: f64,
    /// Ham classified as spam / all ham.
    pub fpr: f64,
    /// Spam classified as ham / all spam.
    pub fnr: f64,
    /// Spam verdicts that are spam.
    pub precision: f64,
    /// Spam found.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Correct verdicts / all.
    pub accuracy: f64,
    /// Ham classified as spam.
    pub false_positives: usize,
    /// Spam classified as ham.
    pub false_negatives: usize,
}

/// Rates of `scores` against `labels` at `threshold`.
pub fn binary_metrics(scores: &[f64], labels: &[bool], threshold: f64) -> BinaryMetrics {
    let (mut tp, mut fp, mut tn, mut fn_) = (0usize, 0usize, 0usize, 0usize);
    for (&score, &label) in scores.iter().zip(labels) {
        match (score >= threshold, label) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fn_ += 1,
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    BinaryMetrics {
        threshold,
        fpr: ratio(fp, fp + tn),
        fnr: ratio(fn_, tp + fn_),
        precision,
        recall,
        f1: if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        },
        accuracy: ratio(tp + tn, scores.len()),
        false_positives: fp,
        false_negatives: fn_,
    }
}

/// Precision, recall and F1 of one category.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassMetrics {
    /// Predicted as this category and right / predicted as this category.
    pub precision: f64,
    /// Found / truly this category.
    pub recall: f64,
    /// Harmonic mean.
    pub f1: f64,
    /// Messages truly of this category.
    pub support: usize,
}

/// Per-category metrics and the confusion matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryReport {
    /// Metrics per category, in [`Category::ALL`] order.
    pub per_class: Vec<(Category, ClassMetrics)>,
    /// `confusion[truth][predicted]`, indexed by [`Category::index`].
    pub confusion: Vec<Vec<usize>>,
    /// Mean F1 over categories with support.
    pub macro_f1: f64,
    /// Labeled messages scored.
    pub support: usize,
}

impl CategoryReport {
    /// Mean F1 over the given categories (those without support count as absent).
    pub fn macro_f1_of(&self, categories: &[Category]) -> f64 {
        let f1s: Vec<f64> = self
            .per_class
            .iter()
            .filter(|(c, m)| categories.contains(c) && m.support > 0)
            .map(|(_, m)| m.f1)
            .collect();
        if f1s.is_empty() {
            0.0
        } else {
            f1s.iter().sum::<f64>() / f1s.len() as f64
        }
    }
}

/// Category metrics of `predicted` against `truth` (pairs of the same message).
pub fn category_report(truth: &[Category], predicted: &[Category]) -> CategoryReport {
    let n = Category::ALL.len();
    let mut confusion = vec![vec![0usize; n]; n];
    for (t, p) in truth.iter().zip(predicted) {
        confusion[t.index()][p.index()] += 1;
    }
    let per_class: Vec<(Category, ClassMetrics)> = Category::ALL
        .into_iter()
        .map(|c| {
            let i = c.index();
            let tp = confusion[i][i] as f64;
            let predicted_as: usize = confusion.iter().map(|row| row[i]).sum();
            let support: usize = confusion[i].iter().sum();
            let precision = if predicted_as == 0 {
                0.0
            } else {
                tp / predicted_as as f64
            };
            let recall = if support == 0 {
                0.0
            } else {
                tp / support as f64
            };
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            (
                c,
                ClassMetrics {
                    precision,
                    recall,
                    f1,
                    support,
                },
            )
        })
        .collect();
    let mut report = CategoryReport {
        per_class,
        confusion,
        macro_f1: 0.0,
        support: truth.len(),
    };
    report.macro_f1 = report.macro_f1_of(&Category::ALL);
    report
}

/// Probabilities are clipped to `[PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]` for the log loss, so
/// one confident mistake costs about 34.5 nats instead of infinity.
const PROBABILITY_FLOOR: f64 = 1e-15;

/// How far predicted probabilities are from the frequencies observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Mean negative log-likelihood of the outcomes, in nats (0 is perfect).
    pub log_loss: f64,
    /// Mean squared difference between probability and outcome (0 is perfect).
    pub brier: f64,
    /// Expected calibration error: over the bins, the message-weighted mean of
    /// |mean probability - observed rate|.
    pub expected_calibration_error: f64,
    /// The reliability diagram: equal-width probability bins, empty ones left out.
    pub bins: Vec<CalibrationBin>,
}

/// Messages whose predicted probability fell in `[lower, upper)` (the last bin includes 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CalibrationBin {
    /// Lower edge.
    pub lower: f64,
    /// Upper edge.
    pub upper: f64,
    /// Messages in the bin.
    pub messages: usize,
    /// Their mean predicted probability.
    pub mean_probability: f64,
    /// The share of them whose outcome was true.
    pub observed_rate: f64,
}

/// Calibration of `probabilities` (of an outcome) against the `outcomes`, with `bins`
/// equal-width bins for the reliability diagram. Probabilities outside 0..1 are clamped and NaN
/// counts as 0.5; with zero messages the figures are undefined (NaN, `null` in JSON) and there
/// are no bins.
pub fn calibration(probabilities: &[f64], outcomes: &[bool], bins: usize) -> Calibration {
    let bins = bins.max(1);
    let n = probabilities.len().min(outcomes.len());
    let mut log_loss = 0.0;
    let mut brier = 0.0;
    // Per bin: messages, summed probability, true outcomes.
    let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
    for (&p, &outcome) in probabilities.iter().zip(outcomes) {
        let p = if p.is_nan() { 0.5 } else { p.clamp(0.0, 1.0) };
        let clipped = p.clamp(PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR);
        log_loss -= if outcome {
            clipped.ln()
        } else {
            (1.0 - clipped).ln()
        };
        brier += (p - f64::from(u8::from(outcome))).powi(2);
        let bin = ((p * bins as f64) as usize).min(bins - 1);
        sums[bin].0 += 1;
        sums[bin].1 += p;
        sums[bin].2 += usize::from(outcome);
    }
    let edge = |i: u32| f64::from(i) / bins as f64;
    let bins: Vec<CalibrationBin> = (0..)
        .zip(sums)
        .filter(|(_, (messages, _, _))| *messages > 0)
        .map(|(i, (messages, summed, positives))| CalibrationBin {
            lower: edge(i),
            upper: edge(i + 1),
            messages,
            mean_probability: summed / messages as f64,
            observed_rate: positives as f64 / messages as f64,
        })
        .collect();
    let per_message = |total: f64| total / n as f64;
    Calibration {
        log_loss: per_message(log_loss),
        brier: per_message(brier),
        expected_calibration_error: per_message(
            bins.iter()
                .map(|b| b.messages as f64 * (b.mean_probability - b.observed_rate).abs())
                .sum(),
        ),
        bins,
    }
}

/// How well the category head's scores are calibrated, over labeled spam.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryCalibration {
    /// Mean -ln(score of the true category), in nats: the head's cross-entropy.
    pub cross_entropy: f64,
    /// Mean score of the predicted category.
    pub mean_top_score: f64,
    /// Share of messages whose predicted category is the true one.
    pub accuracy: f64,
    /// The predicted category's score taken as the probability that it is right.
    pub top_score: Calibration,
}

/// Category calibration of per-message `scores` (indexed by [`Category::index`]), `truth` and
/// `predicted` (triples of the same message), with `bins` reliability bins. A NaN score counts
/// as 0; with no labeled messages the figures are undefined (NaN).
pub fn category_calibration(
    truth: &[Category],
    predicted: &[Category],
    scores: &[[f32; Category::ALL.len()]],
    bins: usize,
) -> CategoryCalibration {
    let n = truth.len().min(predicted.len()).min(scores.len());
    let score = |scores: &[f32; Category::ALL.len()], c: Category| {
        let score = f64::from(scores[c.index()]);
        if score.is_nan() {
            0.0
        } else {
            score.clamp(0.0, 1.0)
        }
    };
    let (top, right): (Vec<f64>, Vec<bool>) = (0..n)
        .map(|i| (score(&scores[i], predicted[i]), truth[i] == predicted[i]))
        .unzip();
    let cross_entropy: f64 = (0..n)
        .map(|i| -score(&scores[i], truth[i]).max(PROBABILITY_FLOOR).ln())
        .sum();
    let mean = |total: f64| total / n as f64;
    CategoryCalibration {
        cross_entropy: mean(cross_entropy),
        mean_top_score: mean(top.iter().sum()),
        accuracy: mean(right.iter().filter(|&&r| r).count() as f64),
        top_score: calibration(&top, &right, bins),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_random_and_tied_scores() {
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels), 0.0);
        assert_eq!(roc_auc(&[0.5; 4], &labels), 0.5);
        assert_eq!(roc_auc(&[0.1, 0.6, 0.5, 0.9], &labels), 0.75);
        assert!(roc_auc(&[0.1], &[true]).is_nan());
    }

    #[test]
    fn ranking_metrics_read_pairs_up_to_the_shorter_slice() {
        let labels = [false, false, true, true];
        let scores = [0.1, 0.2, 0.8, 0.9];
        // Extra scores or labels are ignored, not indexed past the end.
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9, 0.0], &labels), 1.0);
        assert_eq!(roc_auc(&scores, &[false, false, true, true, true]), 1.0);
        assert_eq!(
            roc_curve(&[0.1, 0.2, 0.8], &labels),
            roc_curve(&[0.1, 0.2, 0.8], &labels[..3])
        );
        assert_eq!(
            pr_curve(&scores[..2], &labels),
            pr_curve(&scores[..2], &labels[..2])
        );
        assert_eq!(recall_at_fpr(&scores, &labels[..3], 0.0), 1.0);
    }

    #[test]
    fn curves_and_threshold_metrics() {
        let scores = [0.1, 0.4, 0.35, 0.8];
        let labels = [false, false, true, true];
        assert_eq!(
            roc_curve(&scores, &labels),
            [(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
        assert_eq!(recall_at_fpr(&scores, &labels, 0.0), 0.5);
        assert_eq!(pr_curve(&scores, &labels)[0], (0.5, 1.0));
        let m = binary_metrics(&scores, &labels, 0.35);
        assert_eq!((m.false_positives, m.false_negatives), (1, 0));
        assert_eq!(
            (m.fpr, m.recall, m.precision, m.accuracy),
            (0.5, 1.0, 2.0 / 3.0, 0.75)
        );
    }

    #[test]
    fn category_report_counts_confusions() {
        use Category::*;
        let report = category_report(
            &[Pharma, Pharma, Mortgage, Software],
            &[Pharma, Mortgage, Mortgage, Software],
        );
        assert_eq!(report.confusion[Pharma.index()][Mortgage.index()], 1);
        let pharma = report.per_class[Pharma.index()].1;
        assert_eq!(
            (pharma.precision, pharma.recall, pharma.support),
            (1.0, 0.5, 2)
        );
        assert!(
            (report.macro_f1_of(&[Pharma, Mortgage, Software])
                - (2.0 / 3.0 + 2.0 / 3.0 + 1.0) / 3.0)
                .abs()
                < 1e-12
        );
        assert_eq!(report.support, 4);
    }

    #[test]
    fn calibration_of_known_probabilities() {
        let c = calibration(&[0.9, 0.9, 0.1, 0.6], &[true, false, false, true], 2);
        let expected_log_loss = -(0.9f64.ln() + 0.1f64.ln() + 0.9f64.ln() + 0.6f64.ln()) / 4.0;
        assert!((c.log_loss - expected_log_loss).abs() < 1e-12);
        assert!((c.brier - (0.01 + 0.81 + 0.01 + 0.16) / 4.0).abs() < 1e-12);
        // Bins [0, 0.5): one message at 0.1, none true; [0.5, 1]: 0.9, 0.9, 0.6 with two true.
        assert_eq!(c.bins.len(), 2);
        assert_eq!((c.bins[0].messages, c.bins[0].observed_rate), (1, 0.0));
        assert_eq!(
            (c.bins[1].lower, c.bins[1].upper, c.bins[1].messages),
            (0.5, 1.0, 3)
        );
        assert!((c.bins[1].mean_probability - 0.8).abs() < 1e-12);
        assert!((c.bins[1].observed_rate - 2.0 / 3.0).abs() < 1e-12);
        let ece = (0.1 + 3.0 * (0.8f64 - 2.0 / 3.0).abs()) / 4.0;
        assert!((c.expected_calibration_error - ece).abs() < 1e-12);

        // Certain and right: perfect; certain and wrong: the clipped cost, not infinity.
        let perfect = calibration(&[1.0, 0.0], &[true, false], 10);
        assert_eq!(
            (perfect.brier, perfect.expected_calibration_error),
            (0.0, 0.0)
        );
        assert!(perfect.log_loss < 1e-12);
        let wrong = calibration(&[1.0], &[false], 10);
        assert!((wrong.log_loss + PROBABILITY_FLOOR.ln()).abs() < 1e-3);
        assert_eq!(wrong.bins[0].lower, 0.9);
        let none = calibration(&[], &[], 10);
        assert!(none.log_loss.is_nan() && none.brier.is_nan());
        assert!(none.expected_calibration_error.is_nan() && none.bins.is_empty());
        // Edges are exact tenths, and a probability on an edge belongs to the bin above it.
        let edges = calibration(&[0.3, 0.7], &[false, true], 10);
        assert_eq!(
            edges
                .bins
                .iter()
                .map(|b| (b.lower, b.upper))
                .collect::<Vec<_>>(),
            [(0.3, 0.4), (0.7, 0.8)]
        );
    }

    #[test]
    fn category_calibration_scores_the_true_and_the_predicted_category() {
        use Category::*;
        let mut sure_pharma = [0.0f32; 7];
        sure_pharma[Pharma.index()] = 0.75;
        sure_pharma[Mortgage.index()] = 0.25;
        let mut even = [0.0f32; 7];
        even[Mortgage.index()] = 0.5;
        even[Software.index()] = 0.5;
        let c = category_calibration(
            &[Pharma, Software],
            &[Pharma, Mortgage],
            &[sure_pharma, even],
            10,
        );
        assert!((c.cross_entropy - (-(0.75f64.ln()) - 0.5f64.ln()) / 2.0).abs() < 1e-9);
        assert!((c.mean_top_score - 0.625).abs() < 1e-9);
        assert_eq!(c.accuracy, 0.5);
        assert_eq!(c.top_score.bins.len(), 2);
        // A score of zero for the true category is clipped, not infinite.
        let zero = category_calibration(&[Stock], &[Pharma], &[sure_pharma], 10);
        assert!(zero.cross_entropy.is_finite() && zero.cross_entropy > 30.0);
        // A NaN score counts as 0; no labeled spam leaves the figures undefined.
        let nan = category_calibration(&[Pharma], &[Pharma], &[[f32::NAN; 7]], 10);
        assert_eq!(
            (nan.mean_top_score, nan.top_score.bins[0].lower),
            (0.0, 0.0)
        );
        let none = category_calibration(&[], &[], &[], 10);
        assert!(none.cross_entropy.is_nan() && none.mean_top_score.is_nan());
    }
}

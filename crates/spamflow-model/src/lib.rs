//! spamflow-model: everything between a feature vector and a verdict.
//!
//! Training with linfa (logistic regression, multinomial naive Bayes and FTRL, compared by
//! cross-validation), incremental updates (warm-started FTRL with vocabulary extension),
//! probability calibration and threshold choice, the spam-category head, the
//! versioned and checksummed model artifact, fast serving (a sparse dot product over a compact
//! weight table, with per-feature explanations) and evaluation metrics. Pure: no files, no sockets.

mod artifact;
mod category;
mod metrics;
mod scorer;
mod train;
mod update;

pub use artifact::{
    ArtifactError, CategoryCounts, FORMAT_VERSION, ModelArtifact, ModelMetadata,
    OLDEST_FORMAT_VERSION, OnlineState, SpamNaiveBayes, TrainingData, ValidationSummary,
};
pub use category::{Category, UnknownCategory};
pub use metrics::{
    BinaryMetrics, Calibration, CalibrationBin, CategoryCalibration, CategoryReport, ClassMetrics,
    binary_metrics, calibration, category_calibration, category_report, pr_curve, recall_at_fpr,
    roc_auc, roc_curve,
};
pub use scorer::{Contribution, Model, Verdict};
pub use train::{
    Algorithm, CategoryAlgorithm, LabeledMessage, NoProgress, TrainError, TrainOptions,
    TrainProgress, UnknownAlgorithm, train,
};
pub use update::{CategoryHeadUpdate, UpdateOptions, UpdateReport, WarmStart, update};

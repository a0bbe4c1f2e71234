//! Serving: message bytes to a [`Verdict`] with one sparse pass over ndarray weights.

use std::collections::HashMap;

use ndarray::{Array1, Array2};
use nohash_hasher::BuildNoHashHasher;
use serde::Serialize;
use spamflow_features::{FeatureExtractor, Flags, SparseFeatures, SubwordTokenizer};

use crate::artifact::{ArtifactError, ModelArtifact, ModelMetadata};
use crate::category::Category;

/// How many contributing features a verdict lists.
const TOP_FEATURES: usize = 5;

/// One feature's share of a verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    /// Readable feature name, such as `body:viagra` or `hdr:from_domain=example.com`.
    pub feature: String,
    /// Its contribution to the spam score (positive pushes towards spam).
    pub weight: f32,
}

/// The classification of one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// True when the spam probability reaches the model's threshold.
    pub spam: bool,
    /// Calibrated probability that the message is spam.
    pub spam_probability: f32,
    /// The same as log-odds (unbounded, so it ranks even where the probability rounds to 0 or 1).
    pub spam_log_odds: f32,
    /// Most likely category (reported for every message; meaningful for spam).
    pub category: Category,
    /// Probability of each category given spam, in [`Category::ALL`] order.
    pub category_scores: [f32; 7],
    /// The features that pushed hardest towards the verdict.
    pub top_features: Vec<Contribution>,
    /// Truncation and decoding flags of the input.
    pub flags: Flags,
}

/// A loaded model, ready to classify. Immutable and `Sync`: share it between threads.
#[derive(Debug)]
pub struct Model {
    metadata: ModelMetadata,
    extractor: FeatureExtractor,
    rows: HashMap<u64, u32, BuildNoHashHasher<u64>>,
    names: Vec<String>,
    spam_weights: Array1<f32>,
    spam_bias: f32,
    category_weights: Array2<f32>,
    category_bias: Array1<f32>,
    calibration: (f32, f32),
    threshold: f32,
}

impl Model {
    /// Reads and verifies a model file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ArtifactError> {
        Self::from_artifact(ModelArtifact::from_bytes(bytes)?)
    }

    /// Builds the serving structures from an artifact.
    pub fn from_artifact(artifact: ModelArtifact) -> Result<Self, ArtifactError> {
        artifact.check_shapes()?;
        let subword = artifact
            .tokenizer_json
            .as_deref()
            .map(SubwordTokenizer::from_json)
            .transpose()
            .map_err(|e| ArtifactError::Invalid(e.to_string()))?;
        let rows = artifact
            .feature_hashes
            .iter()
            .enumerate()
            .map(|(row, &hash)| (hash, row as u32))
            .collect();
        let n = artifact.feature_hashes.len();
        let category_weights =
            Array2::from_shape_vec((n, Category::ALL.len()), artifact.category_weights)
                .map_err(|e| ArtifactError::Invalid(e.to_string()))?;
        Ok(Model {
            metadata: artifact.metadata,
            extractor: FeatureExtractor::new(artifact.feature_config, subword),
            rows,
            names: artifact.feature_names,
            spam_weights: Array1::from(artifact.spam_weights),
            spam_bias: artifact.spam_bias,
            category_weights,
            category_bias: Array1::from(artifact.category_bias),
            calibration: artifact.calibration,
            threshold: artifact.threshold,
        })
    }

    /// The model's metadata.
    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    /// The feature extractor this model was trained with.
    pub fn extractor(&self) -> &FeatureExtractor {
        &self.extractor
    }

    /// The decision threshold on the calibrated spam probability.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Classifies raw message bytes (any bytes).
    pub fn classify(&self, message: &[u8]) -> Verdict {
        let extraction = self.extractor.extract(message);
        self.score(&extraction.features, extraction.flags)
    }

    /// Scores an already extracted feature vector.
    pub fn score(&self, features: &SparseFeatures, flags: Flags) -> Verdict {
        let values = feature_values(features, |hash| self.rows.get(&hash).copied());
        let n_categories = Category::ALL.len();
        let all_category_weights = self.category_weights.as_slice().unwrap_or_default();
        let mut raw = self.spam_bias;
        let mut category_logits = [0f32; 7];
        for (logit, bias) in category_logits.iter_mut().zip(self.category_bias.iter()) {
            *logit = *bias;
        }
        for &(row, value) in &values {
            let r = row as usize;
            raw += self.spam_weights[r] * value;
            if let Some(weights) =
                all_category_weights.get(r * n_categories..(r + 1) * n_categories)
            {
                for (logit, weight) in category_logits.iter_mut().zip(weights) {
                    *logit += value * weight;
                }
            }
        }
        let spam_log_odds = self.calibration.0 * raw + self.calibration.1;
        let spam_probability = sigmoid(spam_log_odds);
        let spam = spam_probability >= self.threshold;
        let category_scores = softmax(&category_logits);
        let category = Category::ALL
            .into_iter()
            .max_by(|a, b| category_scores[a.index()].total_cmp(&category_scores[b.index()]))
            .unwrap_or(Category::Other);
        let top_features = self.top_contributions(&values, if spam { 1.0 } else { -1.0 });
        Verdict {
            spam,
            spam_probability,
            spam_log_odds,
            category,
            category_scores,
            top_features,
            flags,
        }
    }
}

impl Model {
    /// The [`TOP_FEATURES`] features whose contribution points furthest in `direction`
    /// (+1 towards spam, -1 towards ham), strongest first.
    fn top_contributions(&self, values: &[(u32, f32)], direction: f32) -> Vec<Contribution> {
        let mut top: Vec<(u32, f32)> = Vec::with_capacity(TOP_FEATURES + 1);
        for &(row, value) in values {
            let contribution = self.spam_weights[row as usize] * value;
            if contribution * direction <= 0.0 {
                continue;
            }
            if top.len() == TOP_FEATURES
                && top
                    .last()
                    .is_some_and(|&(_, c)| c * direction >= contribution * direction)
            {
                continue;
            }
            let at = top.partition_point(|&(_, c)| c * direction >= contribution * direction);
            top.insert(at, (row, contribution));
            top.truncate(TOP_FEATURES);
        }
        top.into_iter()
            .map(|(row, weight)| Contribution {
                feature: self.names.get(row as usize).cloned().unwrap_or_default(),
                weight,
            })
            .collect()
    }
}

/// The model input for one message: `(row, value)` for every known feature, where value is
/// `1 + ln(count)` scaled so the vector has unit length. Training and serving share this.
pub(crate) fn feature_values(
    features: &SparseFeatures,
    row_of: impl Fn(u64) -> Option<u32>,
) -> Vec<(u32, f32)> {
    let mut values: Vec<(u32, f32)> = features
        .entries
        .iter()
        .filter_map(|&(hash, count)| row_of(hash).map(|row| (row, 1.0 + count.max(1.0).ln())))
        .collect();
    let norm = values.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, v) in &mut values {
            *v /= norm;
        }
    }
    values
}

pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-40.0, 40.0)).exp())
}

fn softmax(logits: &[f32; 7]) -> [f32; 7] {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let logits = logits.as_slice();
    let mut out = [0.0f32; 7];
    let mut sum = 0.0;
    for (o, &l) in out.iter_mut().zip(logits.iter()) {
        *o = (l - max).exp();
        sum += *o;
    }
    if sum > 0.0 && sum.is_finite() {
        out.iter_mut().for_each(|o| *o /= sum);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::tests::tiny_artifact;

    #[test]
    fn values_are_log_counts_of_unit_length() {
        let features = SparseFeatures {
            entries: vec![(1, 1.0), (2, 3.0), (3, 5.0)],
        };
        let values = feature_values(&features, |h| (h != 3).then_some(h as u32));
        assert_eq!(values.len(), 2);
        let norm: f32 = values.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-6);
        assert!(values[1].1 > values[0].1);
    }

    #[test]
    fn scoring_follows_weights_and_explains() -> Result<(), ArtifactError> {
        let mut artifact = tiny_artifact();
        artifact.category_weights[1] = 5.0; // feature 0 pushes towards Mortgage
        let model = Model::from_artifact(artifact)?;
        let spammy = model.score(
            &SparseFeatures {
                entries: vec![(1, 1.0)],
            },
            Flags::empty(),
        );
        assert!(spammy.spam && spammy.spam_probability > 0.7);
        assert_eq!(spammy.category, Category::Mortgage);
        assert_eq!(
            spammy.top_features,
            [Contribution {
                feature: "body:a".into(),
                weight: 1.0
            }]
        );
        let hammy = model.score(
            &SparseFeatures {
                entries: vec![(2, 1.0), (99, 4.0)],
            },
            Flags::empty(),
        );
        assert!(!hammy.spam);
        assert_eq!(hammy.top_features[0].feature, "body:b");
        let sum: f32 = hammy.category_scores.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
        Ok(())
    }
}

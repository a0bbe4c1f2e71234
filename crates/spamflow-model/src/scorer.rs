//! Serving: message bytes to a [`Verdict`] with one sparse pass over the weights.

use sha2::{Digest, Sha256};
use std::num::NonZeroU32;

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
    weights: WeightTable,
    names: Vec<String>,
    spam_bias: f32,
    category_bias: [f32; N_CATEGORIES],
    calibration: (f32, f32),
    threshold: f32,
    /// How a feature's count becomes its value, as the model was trained.
    count_weighting: CountWeighting,
    /// SHA-256 of the feature configuration and tokenizer: equal for models whose features are
    /// computed identically.
    features_fingerprint: [u8; 32],
}

const N_CATEGORIES: usize = Category::ALL.len();

/// What scoring reads of one feature: its spam weight and where its category weights are, side
/// by side so one lookup brings both. Most features carry no category weight (the category head
/// is over a few thousand of them), so those live in a separate, small table.
#[derive(Debug, Clone, Copy)]
struct FeatureWeights {
    spam: f32,
    /// Where its category weights are in [`WeightTable::categories`]: 1 + the index, `None`
    /// when they are all zero.
    category_row: Option<NonZeroU32>,
}

/// Feature hash to weights: the hashes sorted, and for each value of their top `bits` bits
/// where its hashes start. Feature hashes are uniform, so a lookup reads one small entry of
/// `starts` and a few neighbouring hashes: fewer cache misses than a hash map, no hashing.
#[derive(Debug)]
struct WeightTable {
    bits: u32,
    starts: Vec<u32>,
    hashes: Vec<u64>,
    entries: Vec<FeatureWeights>,
    /// The non-zero category weight rows.
    categories: Vec<[f32; N_CATEGORIES]>,
    /// Artifact row (index of the feature name) of each entry.
    rows: Vec<u32>,
}

impl WeightTable {
    /// The table of `hashes[row]` to `spam[row]` and the category weights of the row
    /// (`categories[row * N_CATEGORIES..]`); of rows sharing a hash, the last one wins.
    fn new(hashes: &[u64], spam: &[f32], categories: &[f32]) -> Self {
        let mut order: Vec<usize> = (0..hashes.len().min(spam.len())).collect();
        let spam_of = |row: usize| spam.get(row).copied().unwrap_or(0.0);
        order.sort_by_key(|&row| (hashes[row], std::cmp::Reverse(row)));
        order.dedup_by_key(|row| hashes[*row]);
        // About four hashes per bucket keeps `starts` small enough to stay in the L1 cache.
        let bits = (order.len() / 4).max(2).ilog2();
        let bucket = |hash: u64| (hash >> (u64::BITS - bits)) as usize;
        let mut starts = vec![0u32; (1 << bits) + 1];
        for &row in &order {
            starts[bucket(hashes[row]) + 1] += 1;
        }
        let mut total = 0;
        for start in &mut starts {
            total += *start;
            *start = total;
        }
        let mut category_rows = Vec::new();
        let entries = order
            .iter()
            .map(|&row| {
                let weights = categories
                    .get(row * N_CATEGORIES..(row + 1) * N_CATEGORIES)
                    .and_then(|w| <[f32; N_CATEGORIES]>::try_from(w).ok())
                    .filter(|w| w.iter().any(|&w| w != 0.0));
                let category_row = weights.and_then(|w| {
                    category_rows.push(w);
                    NonZeroU32::new(category_rows.len() as u32)
                });
                FeatureWeights {
                    spam: spam_of(row),
                    category_row,
                }
            })
            .collect();
        WeightTable {
            bits,
            starts,
            hashes: order.iter().map(|&row| hashes[row]).collect(),
            entries,
            categories: category_rows,
            rows: order.iter().map(|&row| row as u32).collect(),
        }
    }

    /// The index in `rows` of `hash`, if the model knows it.
    fn find(&self, hash: u64) -> Option<u32> {
        let bucket = (hash >> (u64::BITS - self.bits)) as usize;
        let (start, end) = (*self.starts.get(bucket)?, *self.starts.get(bucket + 1)?);
        let candidates = self.hashes.get(start as usize..end as usize)?;
        let at = candidates.iter().position(|&h| h == hash)?;
        Some(start + at as u32)
    }

    /// Entries in the table.
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get(&self, index: u32) -> Option<&FeatureWeights> {
        self.entries.get(index as usize)
    }

    /// The category weights of an entry, `None` when they are all zero.
    fn categories(&self, weights: &FeatureWeights) -> Option<&[f32; N_CATEGORIES]> {
        self.categories
            .get(weights.category_row?.get() as usize - 1)
    }

    /// The artifact row of an entry.
    fn row(&self, index: u32) -> Option<u32> {
        self.rows.get(index as usize).copied()
    }
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
        let mut category_bias = [0f32; N_CATEGORIES];
        category_bias.copy_from_slice(&artifact.category_bias);
        let mut fingerprint = Sha256::new();
        fingerprint.update(
            serde_json::to_vec(&artifact.feature_config)
                .map_err(|e| ArtifactError::Invalid(e.to_string()))?,
        );
        fingerprint.update(artifact.tokenizer_json.as_deref().unwrap_or("").as_bytes());
        Ok(Model {
            metadata: artifact.metadata,
            extractor: FeatureExtractor::new(artifact.feature_config, subword),
            weights: WeightTable::new(
                &artifact.feature_hashes,
                &artifact.spam_weights,
                &artifact.category_weights,
            ),
            names: artifact.feature_names,
            spam_bias: artifact.spam_bias,
            category_bias,
            calibration: artifact.calibration,
            threshold: artifact.threshold,
            count_weighting: CountWeighting::new(artifact.log_count_scale),
            features_fingerprint: fingerprint.finalize().into(),
        })
    }

    /// Whether `other` computes features exactly as this model does (same feature
    /// configuration and tokenizer), so one extraction can be scored by both.
    pub fn extracts_like(&self, other: &Model) -> bool {
        self.features_fingerprint == other.features_fingerprint
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

    /// Classifies raw message bytes (any bytes): the verdict of [`Model::score`] on the
    /// message's features, bit for bit, but faster: only the features the model knows are
    /// counted, straight into the weight table's order, where extracting would collect and sort
    /// them all.
    pub fn classify(&self, message: &[u8]) -> Verdict {
        let mail = self.extractor.parse(message);
        KNOWN_COUNTS.with_borrow_mut(|known| {
            known.prepare(self.weights.len());
            // Hash every feature first, then look them all up in one tight loop: the lookups
            // are independent, so the processor overlaps their cache misses, which it cannot
            // do when each lookup sits between the hashing of one word and the next (measured
            // 4-5 % faster per message).
            let mut hashes = std::mem::take(&mut known.hashes);
            hashes.clear();
            let flags = self
                .extractor
                .for_each_feature(&mail, |hash| hashes.push(hash));
            for &hash in &hashes {
                if let Some(index) = self.weights.find(hash) {
                    known.add(index);
                }
            }
            known.hashes = hashes;
            self.verdict(
                &known.take_values(self.weights.len(), &self.count_weighting),
                flags,
            )
        })
    }

    /// Scores an already extracted feature vector.
    pub fn score(&self, features: &SparseFeatures, flags: Flags) -> Verdict {
        self.verdict(
            &feature_values(
                features,
                |hash| self.weights.find(hash),
                &self.count_weighting,
            ),
            flags,
        )
    }

    /// The verdict on a message's [`feature_values`].
    fn verdict(&self, values: &[(u32, f32)], flags: Flags) -> Verdict {
        let mut raw = self.spam_bias;
        let mut category_logits = self.category_bias;
        for &(index, value) in values {
            let Some(entry) = self.weights.get(index) else {
                continue;
            };
            raw += entry.spam * value;
            if let Some(weights) = self.weights.categories(entry) {
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
        let top_features = self.top_contributions(values, if spam { 1.0 } else { -1.0 });
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
    /// (+1 towards spam, -1 towards ham), strongest first. `values` index the weight table.
    fn top_contributions(&self, values: &[(u32, f32)], direction: f32) -> Vec<Contribution> {
        let mut top: Vec<(u32, f32)> = Vec::with_capacity(TOP_FEATURES + 1);
        for &(index, value) in values {
            let Some(weights) = self.weights.get(index) else {
                continue;
            };
            let contribution = weights.spam * value;
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
            top.insert(at, (index, contribution));
            top.truncate(TOP_FEATURES);
        }
        top.into_iter()
            .map(|(index, weight)| Contribution {
                feature: self
                    .weights
                    .row(index)
                    .and_then(|row| self.names.get(row as usize))
                    .cloned()
                    .unwrap_or_default(),
                weight,
            })
            .collect()
    }
}

/// The model input for one message: `(row, value)` for every known feature, where value is
/// the `weighting` of its count, scaled so the vector has unit length. Training and serving
/// share this.
pub(crate) fn feature_values(
    features: &SparseFeatures,
    row_of: impl Fn(u64) -> Option<u32>,
    weighting: &CountWeighting,
) -> Vec<(u32, f32)> {
    let mut values: Vec<(u32, f32)> = Vec::with_capacity(features.entries.len());
    values.extend(
        features
            .entries
            .iter()
            .filter_map(|&(hash, count)| row_of(hash).map(|row| (row, weighting.value(count)))),
    );
    scale_to_unit_length(&mut values);
    values
}

/// Divides the values by their Euclidean norm (summed in the order given).
fn scale_to_unit_length(values: &mut [(u32, f32)]) {
    let norm = values.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, v) in values {
            *v /= norm;
        }
    }
}

/// Counts of the known features of one message by weight-table index, reused from message to
/// message on a thread, so that classifying allocates nothing the size of the model.
struct KnownCounts {
    /// Occurrences per weight-table index; zero outside a message.
    counts: Vec<u32>,
    /// One bit per weight-table index: set when it has a count.
    present: Vec<u64>,
    /// Between `prepare` and `take_values`.
    in_use: bool,
    /// The feature hashes of the message being classified (bounded by the parsing limits).
    hashes: Vec<u64>,
}

thread_local! {
    static KNOWN_COUNTS: std::cell::RefCell<KnownCounts> = const {
        std::cell::RefCell::new(KnownCounts {
            counts: Vec::new(),
            present: Vec::new(),
            in_use: false,
            hashes: Vec::new(),
        })
    };
}

impl KnownCounts {
    /// Ready for a message scored against a weight table of `len` entries.
    fn prepare(&mut self, len: usize) {
        if std::mem::replace(&mut self.in_use, true) {
            // The message before did not finish (a panic the caller caught): start clean.
            self.counts.fill(0);
            self.present.fill(0);
        }
        if self.counts.len() < len {
            self.counts.resize(len, 0);
            self.present.resize(len.div_ceil(64), 0);
        }
    }

    fn add(&mut self, index: u32) {
        let index = index as usize;
        if let (Some(count), Some(word)) =
            (self.counts.get_mut(index), self.present.get_mut(index / 64))
        {
            *count = count.saturating_add(1);
            *word |= 1 << (index % 64);
        }
    }

    /// The message's [`feature_values`] for a weight table of `len` entries, and the counts
    /// cleared for the next message. Read in weight-table order, which is the hash order of
    /// extracted features, so the values and their norm are the same to the bit.
    fn take_values(&mut self, len: usize, weighting: &CountWeighting) -> Vec<(u32, f32)> {
        self.in_use = false;
        let mut values = Vec::new();
        for (at, word) in self.present.iter_mut().take(len.div_ceil(64)).enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                let index = at * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(count) = self.counts.get_mut(index) {
                    values.push((index as u32, weighting.value(std::mem::take(count) as f32)));
                }
            }
        }
        scale_to_unit_length(&mut values);
        values
    }
}

/// How a feature's count in a message becomes its value: `1 + scale * ln(count)` (counts below
/// 1 count as 1), before the message's values are scaled to unit length. Scale 1 is the usual
/// logarithmic term frequency (every model before format version 9), 0 counts presence only;
/// in between, a word said twenty times weighs more than once, but not four times as much.
#[derive(Debug, Clone)]
pub(crate) struct CountWeighting {
    scale: f32,
    /// The values of the counts 0 to 63, computed once.
    small: [f32; 64],
}

impl CountWeighting {
    /// The weighting `1 + scale * ln(count)`.
    pub(crate) fn new(scale: f32) -> Self {
        let mut small = [0f32; 64];
        for (n, entry) in (0u8..).zip(&mut small) {
            *entry = Self::compute(scale, f32::from(n));
        }
        CountWeighting { scale, small }
    }

    fn compute(scale: f32, count: f32) -> f32 {
        1.0 + scale * count.max(1.0).ln()
    }

    /// The value of a feature counted `count` times.
    pub(crate) fn value(&self, count: f32) -> f32 {
        let n = count as usize;
        match self.small.get(n) {
            Some(&value) if n as f32 == count => value,
            _ => Self::compute(self.scale, count),
        }
    }
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
        let row_of = |h: u64| (h != 3).then_some(h as u32);
        let values = feature_values(&features, row_of, &CountWeighting::new(1.0));
        assert_eq!(values.len(), 2);
        let norm: f32 = values.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-6);
        // 1 + ln 3 against 1, before scaling.
        let ratio = values[1].1 / values[0].1;
        assert!((ratio - (1.0 + 3f32.ln())).abs() < 1e-5, "{ratio}");
        // Damped, three occurrences weigh less; presence only, as much as one.
        let damped = feature_values(&features, row_of, &CountWeighting::new(0.25));
        let ratio = damped[1].1 / damped[0].1;
        assert!((ratio - (1.0 + 0.25 * 3f32.ln())).abs() < 1e-5, "{ratio}");
        let presence = feature_values(&features, row_of, &CountWeighting::new(0.0));
        assert_eq!(presence[0].1, presence[1].1);
    }

    #[test]
    fn scale_1_weighs_counts_as_every_model_before_format_version_9() {
        let weighting = CountWeighting::new(1.0);
        for count in [0.0f32, 0.5, 1.0, 2.0, 3.0, 20.0, 63.0, 64.0, 1e6, f32::NAN] {
            let before = 1.0 + count.max(1.0).ln();
            assert_eq!(
                weighting.value(count).to_bits(),
                before.to_bits(),
                "{count}"
            );
        }
    }

    #[test]
    fn count_weights_match_the_formula() {
        for scale in [1.0f32, 0.25, 0.0] {
            let weighting = CountWeighting::new(scale);
            for count in [0.0f32, 0.5, 1.0, 2.0, 3.0, 63.0, 64.0, 1e6, f32::NAN] {
                let expected = 1.0 + scale * count.max(1.0).ln();
                let value = weighting.value(count);
                assert_eq!(value.to_bits(), expected.to_bits(), "{scale} {count}");
            }
        }
    }

    #[test]
    fn weight_table_finds_every_row_and_nothing_else() {
        let hashes: Vec<u64> = (0..1000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .chain([7, 7, u64::MAX])
            .collect();
        let spam: Vec<f32> = (0..hashes.len()).map(|row| row as f32).collect();
        // Every third row has category weights, and so does row 1000, the first of the two rows
        // of hash 7; the others have none.
        let has_categories = |row: usize| row.is_multiple_of(3) || row == 1000;
        let categories: Vec<f32> = (0..hashes.len())
            .flat_map(|row| {
                let weight = if has_categories(row) {
                    row as f32 + 0.5
                } else {
                    0.0
                };
                [weight; N_CATEGORIES]
            })
            .collect();
        let table = WeightTable::new(&hashes, &spam, &categories);
        // Rows 0, 3, ..., 1002 keep their category weights (335 rows); row 1000 lost to row 1001.
        assert_eq!(table.categories.len(), 335);
        for (row, &hash) in (0u32..).zip(&hashes).take(1000) {
            let found = table.find(hash);
            assert_eq!(found.and_then(|i| table.row(i)), Some(row));
            let entry = found.and_then(|i| table.get(i));
            assert_eq!(entry.map(|e| e.spam), Some(row as f32));
            let expected = (row % 3 == 0).then_some([row as f32 + 0.5; N_CATEGORIES]);
            assert_eq!(entry.and_then(|e| table.categories(e)).copied(), expected);
        }
        let duplicate = table.find(7).and_then(|i| table.row(i));
        assert_eq!(
            duplicate,
            Some(1001),
            "the last row of a repeated hash wins"
        );
        let duplicate_categories = table.find(7).and_then(|i| table.get(i));
        assert_eq!(
            duplicate_categories.and_then(|w| table.categories(w)),
            None,
            "with its category weights"
        );
        assert!(table.find(u64::MAX).is_some());
        assert_eq!(table.find(12345), None);
        assert_eq!(WeightTable::new(&[], &[], &[]).find(0), None);
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

    /// `classify` counts only known features, straight into table order; `score` scores the
    /// extracted features. Both must give the same verdict to the bit: checked with the shipped
    /// model (subwords, header words, every namespace) and a small one, in turn, on every 25th
    /// message of the shared corpus, and on odd inputs.
    #[test]
    fn classify_gives_the_verdict_of_scoring_the_extracted_features()
    -> Result<(), Box<dyn std::error::Error>> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let model = Model::from_bytes(&std::fs::read(root.join("models/default.spamflow"))?)?;
        let corpus = root.join("../shared/corpora/spamassassin");
        let manifest = std::fs::read_to_string(corpus.join("manifest.csv"))?;
        let mut messages: Vec<Vec<u8>> = manifest
            .lines()
            .skip(1)
            .step_by(25)
            .filter_map(|line| line.split(',').next())
            .map(|path| std::fs::read(corpus.join(path)))
            .collect::<Result<_, _>>()?;
        assert!(messages.len() > 200, "the shared corpus is read");
        messages.extend([
            Vec::new(),
            b"\xff\xfe\x00garbage".to_vec(),
            b"Subject: only a subject".to_vec(),
            b"Subject: V1agra v-i-a-g-r-a\n\nbuy buy buy cheap cheap http://x.example/".to_vec(),
        ]);
        // A small model too, classifying on the same thread in turn with the large one: the
        // per-thread counts serve weight tables of both sizes.
        let toy = crate::train::toy::corpus(
            &[
                ("offer", "cheap pills viagra free money", true, None),
                ("hello", "meeting agenda patch review", false, None),
            ],
            20,
        );
        let options = crate::train::toy::small_options();
        let small = Model::from_artifact(crate::train::toy::train_on(&toy, &options)?)?;
        let mut spam = [0, 0];
        for message in &messages {
            for (model, spam) in [&model, &small].into_iter().zip(&mut spam) {
                let extraction = model.extractor().extract(message);
                let scored = model.score(&extraction.features, extraction.flags);
                let classified = model.classify(message);
                assert_eq!(classified, scored);
                assert_eq!(
                    classified.spam_log_odds.to_bits(),
                    scored.spam_log_odds.to_bits()
                );
                *spam += usize::from(classified.spam);
            }
        }
        let [spam, small_spam] = spam;
        assert!(spam > 20 && spam < messages.len() - 20, "{spam} spam");
        assert!(
            small_spam > 0,
            "the small model knows some words of the corpus"
        );
        Ok(())
    }
}

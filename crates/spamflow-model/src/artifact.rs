//! The model file: one self-describing, versioned, checksummed artifact.
//!
//! Layout: `SPAMFLOW` magic (8 bytes), format version (u32 LE), payload length (u64 LE),
//! SHA-256 of the payload (32 bytes), then the payload: a bincode-encoded [`ModelArtifact`].
//! Loading checks each in turn and says precisely what is wrong with a bad file.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spamflow_features::FeatureConfig;

/// The artifact format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"SPAMFLOW";
const HEADER_LEN: usize = 8 + 4 + 8 + 32;

/// Why a model file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file does not start with the spamflow magic bytes.
    #[error("not a spamflow model file (missing SPAMFLOW magic bytes)")]
    NotAModel,
    /// Written by a different, incompatible format version.
    #[error(
        "model file format version {found} is not supported by this build (it reads version {supported})"
    )]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// Shorter than its header says.
    #[error("model file is truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// Bytes the header promises.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The payload does not match its checksum.
    #[error("model file is corrupt: SHA-256 checksum mismatch")]
    ChecksumMismatch,
    /// The payload could not be decoded or is inconsistent.
    #[error("model file payload is invalid: {0}")]
    Invalid(String),
}

/// Where the training data came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingData {
    /// SHA-256 of each manifest file used, hex.
    pub manifest_sha256: Vec<String>,
    /// SHA-256 over the sorted (path, label, category) rows trained on, hex.
    pub rows_sha256: String,
    /// The split trained on.
    pub split: Option<String>,
    /// Messages trained on.
    pub messages: usize,
    /// Of which spam.
    pub spam: usize,
    /// Of which ham.
    pub ham: usize,
    /// Spam messages per category label, `(name, count)`.
    pub categories: Vec<(String, usize)>,
}

/// Cross-validated quality measured on the training data when the model was built.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidationSummary {
    /// Folds used.
    pub folds: usize,
    /// `(algorithm, cross-validated ROC AUC)` for each candidate compared.
    pub candidates: Vec<(String, f64)>,
    /// Cross-validated ROC AUC of the chosen algorithm.
    pub roc_auc: f64,
    /// Cross-validated false-positive rate at the chosen threshold.
    pub fpr: f64,
    /// Cross-validated spam recall at the chosen threshold.
    pub recall: f64,
    /// Cross-validated category macro-F1 (all categories).
    pub category_macro_f1: f64,
}

/// Descriptive metadata, printed by `spamflow inspect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Stable identifier, derived from the weights.
    pub model_id: String,
    /// Creation time, RFC 3339 (given by the caller: this crate reads no clock).
    pub created_at: String,
    /// Version of spamflow that trained it.
    pub spamflow_version: String,
    /// The spam head's learning algorithm.
    pub algorithm: String,
    /// Random seed of training.
    pub seed: u64,
    /// Where the data came from.
    pub training_data: TrainingData,
    /// Cross-validated quality on the training data.
    pub validation: ValidationSummary,
}

/// Everything a model file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    /// Descriptive metadata.
    pub metadata: ModelMetadata,
    /// How messages become features.
    pub feature_config: FeatureConfig,
    /// The Hugging Face tokenizer JSON, if subword features are on.
    pub tokenizer_json: Option<String>,
    /// Feature hashes, one per weight row.
    pub feature_hashes: Vec<u64>,
    /// Readable feature names, one per weight row.
    pub feature_names: Vec<String>,
    /// Spam-head weight per row.
    pub spam_weights: Vec<f32>,
    /// Spam-head bias.
    pub spam_bias: f32,
    /// Category-head weights, row-major `[rows x categories]`.
    pub category_weights: Vec<f32>,
    /// Category-head bias per category.
    pub category_bias: Vec<f32>,
    /// Platt calibration: probability = sigmoid(a * raw + b).
    pub calibration: (f32, f32),
    /// Calibrated spam probability at or above which the verdict is spam.
    pub threshold: f32,
}

impl ModelArtifact {
    /// Serialises to the file format.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ArtifactError> {
        let payload = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|e| ArtifactError::Invalid(e.to_string()))?;
        let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&Sha256::digest(&payload));
        bytes.extend_from_slice(&payload);
        Ok(bytes)
    }

    /// Reads and verifies the file format.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ArtifactError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(ArtifactError::NotAModel);
        }
        if bytes.len() < HEADER_LEN {
            return Err(ArtifactError::Truncated {
                expected: HEADER_LEN as u64,
                found: bytes.len() as u64,
            });
        }
        let field = |from: usize, to: usize| &bytes[from..to];
        let version = u32::from_le_bytes(
            field(8, 12)
                .try_into()
                .map_err(|_| ArtifactError::NotAModel)?,
        );
        if version != FORMAT_VERSION {
            return Err(ArtifactError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let length = u64::from_le_bytes(
            field(12, 20)
                .try_into()
                .map_err(|_| ArtifactError::NotAModel)?,
        );
        let payload = &bytes[HEADER_LEN..];
        if (payload.len() as u64) < length {
            return Err(ArtifactError::Truncated {
                expected: HEADER_LEN as u64 + length,
                found: bytes.len() as u64,
            });
        }
        if payload.len() as u64 > length {
            return Err(ArtifactError::Invalid(format!(
                "{} unexpected bytes after the payload",
                payload.len() as u64 - length
            )));
        }
        if Sha256::digest(payload).as_slice() != field(20, HEADER_LEN) {
            return Err(ArtifactError::ChecksumMismatch);
        }
        let (artifact, _): (ModelArtifact, usize) =
            bincode::serde::decode_from_slice(payload, bincode::config::standard())
                .map_err(|e| ArtifactError::Invalid(e.to_string()))?;
        artifact.check_shapes()?;
        Ok(artifact)
    }

    /// Checks that the weight arrays agree with each other.
    pub fn check_shapes(&self) -> Result<(), ArtifactError> {
        let rows = self.feature_hashes.len();
        let categories = crate::category::Category::ALL.len();
        let problems = [
            (self.feature_names.len() != rows, "feature names"),
            (self.spam_weights.len() != rows, "spam weights"),
            (
                self.category_weights.len() != rows * categories,
                "category weights",
            ),
            (self.category_bias.len() != categories, "category bias"),
        ];
        match problems.iter().find(|(bad, _)| *bad) {
            Some((_, what)) => Err(ArtifactError::Invalid(format!(
                "{what} do not match {rows} feature rows"
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn tiny_artifact() -> ModelArtifact {
        ModelArtifact {
            metadata: ModelMetadata {
                model_id: "test".into(),
                ..ModelMetadata::default()
            },
            feature_config: FeatureConfig::default(),
            tokenizer_json: None,
            feature_hashes: vec![1, 2],
            feature_names: vec!["body:a".into(), "body:b".into()],
            spam_weights: vec![1.0, -1.0],
            spam_bias: 0.0,
            category_weights: vec![0.0; 14],
            category_bias: vec![0.0; 7],
            calibration: (1.0, 0.0),
            threshold: 0.5,
        }
    }

    #[test]
    fn round_trips_and_refuses_damage_with_clear_errors() -> Result<(), ArtifactError> {
        let artifact = tiny_artifact();
        let bytes = artifact.to_bytes()?;
        assert_eq!(ModelArtifact::from_bytes(&bytes)?, artifact);

        let error = |bytes: &[u8]| {
            ModelArtifact::from_bytes(bytes)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(error(b"hello").contains("not a spamflow model"));
        assert!(error(&bytes[..bytes.len() - 3]).contains("truncated"));
        assert!(error(&bytes[..30]).contains("truncated"));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(error(&flipped).contains("checksum"));
        let mut future = bytes.clone();
        future[8] = 99;
        assert!(error(&future).contains("version 99"));
        let mut inconsistent = artifact.clone();
        inconsistent.spam_weights.pop();
        assert!(error(&inconsistent.to_bytes()?).contains("spam weights"));
        Ok(())
    }
}

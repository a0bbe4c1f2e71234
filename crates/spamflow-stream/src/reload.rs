//! The models that score and their hot reload. A slot serves one model from a source (the
//! built-in model, a file, or a registry's `CURRENT` pointer); when the source changes (or on
//! SIGHUP) the new model is loaded beside the running one and swapped in only when it verifies.
//! A bad file is refused and the old model keeps serving.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use spamflow_model::Model;
use spamflow_registry::Registry;

use crate::telemetry::{MODEL_INFO, MODEL_RELOADS, SHADOW_MODEL_INFO};

/// Where a slot's model comes from.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// The model built into the binary: never reloaded.
    Builtin,
    /// A model file, reloaded when it changes.
    File(PathBuf),
    /// A registry: the model its `CURRENT` pointer names, followed when the pointer moves.
    Registry(Registry),
}

/// What a slot's model is used for; decides which metrics describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRole {
    /// Its verdicts are published.
    Serving,
    /// Scored beside the serving model for comparison only.
    Shadow,
}

impl ModelRole {
    fn name(self) -> &'static str {
        match self {
            ModelRole::Serving => "serving",
            ModelRole::Shadow => "shadow",
        }
    }
}

/// Why a model could not be loaded from its source.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read model file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid model.
    #[error("cannot load model {path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: spamflow_model::ArtifactError,
    },
    /// The registry has no current model or is damaged.
    #[error(transparent)]
    Registry(#[from] spamflow_registry::RegistryError),
    /// The built-in model is missing or invalid.
    #[error("the built-in model cannot be reloaded")]
    Builtin,
}

impl ModelSource {
    /// Loads the model the source names now.
    pub fn load(&self) -> Result<Model, LoadError> {
        let (path, bytes) = match self {
            ModelSource::Builtin => return Err(LoadError::Builtin),
            ModelSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
                    path: path.clone(),
                    source,
                })?;
                (path.clone(), bytes)
            }
            ModelSource::Registry(registry) => {
                let (id, bytes) = registry.read_current()?;
                (registry.model_path(&id)?, bytes)
            }
        };
        Model::from_bytes(&bytes).map_err(|source| LoadError::Invalid { path, source })
    }

    /// A cheap fingerprint of the source's state: changes when a reload may find a new model.
    fn stamp(&self) -> Option<String> {
        match self {
            ModelSource::Builtin => None,
            ModelSource::File(path) => {
                let meta = std::fs::metadata(path).ok()?;
                let modified = meta.modified().ok()?;
                let since = modified.duration_since(SystemTime::UNIX_EPOCH).ok()?;
                Some(format!("{}:{}", since.as_nanos(), meta.len()))
            }
            // A damaged pointer changes the stamp too, so that the reload reports it.
            ModelSource::Registry(registry) => match registry.current() {
                Ok(id) => id,
                Err(error) => Some(format!("unreadable: {error}")),
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            ModelSource::Builtin => "built-in".into(),
            ModelSource::File(path) => path.display().to_string(),
            ModelSource::Registry(registry) => {
                format!("registry {}", registry.dir().display())
            }
        }
    }
}

/// A model that scores, and where it comes from.
pub struct ModelSlot {
    current: Arc<Model>,
    source: ModelSource,
    role: ModelRole,
    check_every: Option<Duration>,
    last_check: Instant,
    last_seen: Option<String>,
}

impl ModelSlot {
    /// Loads the model of `source` for `role`; watches the source every `check_every`
    /// (`None`: only when [`ModelSlot::reload`] is called, as on SIGHUP).
    pub fn open(
        source: ModelSource,
        role: ModelRole,
        check_every: Option<Duration>,
    ) -> Result<Self, LoadError> {
        let last_seen = source.stamp();
        let model = source.load()?;
        Ok(Self::serving(model, source, role, check_every, last_seen))
    }

    /// Serves `model`, already loaded from `source`.
    pub fn with_model(
        model: Model,
        source: ModelSource,
        role: ModelRole,
        check_every: Option<Duration>,
    ) -> Self {
        let last_seen = source.stamp();
        Self::serving(model, source, role, check_every, last_seen)
    }

    fn serving(
        model: Model,
        source: ModelSource,
        role: ModelRole,
        check_every: Option<Duration>,
        last_seen: Option<String>,
    ) -> Self {
        publish_model_info(role, None, &model);
        tracing::info!(
            role = role.name(),
            model_id = %model.metadata().model_id,
            source = %source.describe(),
            "model loaded"
        );
        ModelSlot {
            current: Arc::new(model),
            source,
            role,
            check_every,
            last_check: Instant::now(),
            last_seen,
        }
    }

    /// The model to score the next batch with.
    pub fn current(&self) -> Arc<Model> {
        Arc::clone(&self.current)
    }

    /// Reloads when the source changed since the last successful load and its check interval
    /// passed. A refused source is tried again at every check (and logged each time) until it
    /// loads or changes back: a temporary read error on a shared volume does not pin the old
    /// model.
    pub fn reload_if_changed(&mut self) {
        let Some(every) = self.check_every else {
            return;
        };
        if self.last_check.elapsed() < every {
            return;
        }
        self.last_check = Instant::now();
        let stamp = self.source.stamp();
        if stamp.is_some() && stamp != self.last_seen {
            self.reload();
        }
    }

    /// Loads the source's model again; keeps the running model when it is unreadable or
    /// invalid. Returns whether a new model now serves.
    pub fn reload(&mut self) -> bool {
        if matches!(self.source, ModelSource::Builtin) {
            return false;
        }
        let stamp = self.source.stamp();
        match self.source.load() {
            Ok(model) => {
                self.last_seen = stamp;
                let old = Arc::clone(&self.current);
                tracing::info!(
                    role = self.role.name(),
                    old = %old.metadata().model_id,
                    new = %model.metadata().model_id,
                    source = %self.source.describe(),
                    "model reloaded"
                );
                publish_model_info(self.role, Some(&old), &model);
                metrics::counter!(MODEL_RELOADS, "outcome" => "loaded", "role" => self.role.name())
                    .increment(1);
                self.current = Arc::new(model);
                true
            }
            Err(error) => {
                tracing::error!(
                    role = self.role.name(),
                    %error,
                    serving = %self.current.metadata().model_id,
                    "model refused; the running model keeps serving"
                );
                metrics::counter!(MODEL_RELOADS, "outcome" => "refused", "role" => self.role.name())
                    .increment(1);
                false
            }
        }
    }
}

fn publish_model_info(role: ModelRole, old: Option<&Model>, new: &Model) {
    let name = match role {
        ModelRole::Serving => MODEL_INFO,
        ModelRole::Shadow => SHADOW_MODEL_INFO,
    };
    if let Some(old) = old {
        metrics::gauge!(name, "model_id" => old.metadata().model_id.clone()).set(0.0);
    }
    metrics::gauge!(name, "model_id" => new.metadata().model_id.clone()).set(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_model_bytes() -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/default.spamflow");
        std::fs::read(path).unwrap_or_default()
    }

    #[test]
    fn a_bad_file_is_refused_and_a_good_one_swapped_in() {
        let bytes = default_model_bytes();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("model.spamflow");
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let mut slot = ModelSlot::open(
            ModelSource::File(path.clone()),
            ModelRole::Serving,
            Some(Duration::ZERO),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let id = slot.current().metadata().model_id.clone();
        let before = slot.current();

        // Truncated and garbage files are refused; the running model stays.
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!slot.reload());
        std::fs::write(&path, b"not a model").unwrap_or_else(|e| panic!("{e}"));
        slot.reload_if_changed();
        assert!(Arc::ptr_eq(&before, &slot.current()));

        // A valid file replaces it (a new instance, here of the same model).
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        assert!(slot.reload());
        assert!(!Arc::ptr_eq(&before, &slot.current()));
        assert_eq!(slot.current().metadata().model_id, id);
    }

    #[test]
    fn a_registry_slot_follows_the_pointer() {
        let bytes = default_model_bytes();
        let mut artifact =
            spamflow_model::ModelArtifact::from_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let registry = Registry::new(dir.path());
        let first = registry.add(&bytes).unwrap_or_else(|e| panic!("{e}"));
        artifact.metadata.model_id = "sf-second".into();
        let second = registry
            .add(&artifact.to_bytes().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        let source = ModelSource::Registry(registry.clone());
        assert!(ModelSlot::open(source.clone(), ModelRole::Serving, None).is_err());
        registry
            .promote(&first.id)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut slot = ModelSlot::open(source, ModelRole::Serving, Some(Duration::ZERO))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(slot.current().metadata().model_id, first.id);
        registry
            .promote(&second.id)
            .unwrap_or_else(|e| panic!("{e}"));
        slot.reload_if_changed();
        assert_eq!(slot.current().metadata().model_id, second.id);
        registry.rollback().unwrap_or_else(|e| panic!("{e}"));
        slot.reload_if_changed();
        assert_eq!(slot.current().metadata().model_id, first.id);
    }
}

//! The serving model and its hot reload: a changed (or SIGHUP-signalled) model file is loaded
//! beside the running one and swapped in only when it verifies; a bad file is refused and the old
//! model keeps serving.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use spamflow_model::Model;

use crate::telemetry::{MODEL_INFO, MODEL_RELOADS};

/// The model that scores, and where it comes from.
pub struct ModelSlot {
    current: Arc<Model>,
    path: Option<PathBuf>,
    check_every: Option<Duration>,
    last_check: Instant,
    last_seen: Option<(SystemTime, u64)>,
}

impl ModelSlot {
    /// Serves `model`; with `path`, watches that file every `check_every` (`None`: only when
    /// [`ModelSlot::reload`] is called, as on SIGHUP).
    pub fn new(model: Model, path: Option<PathBuf>, check_every: Option<Duration>) -> Self {
        let last_seen = path.as_ref().and_then(|p| file_stamp(p));
        publish_model_info(None, &model);
        ModelSlot {
            current: Arc::new(model),
            path,
            check_every,
            last_check: Instant::now(),
            last_seen,
        }
    }

    /// The model to score the next batch with.
    pub fn current(&self) -> Arc<Model> {
        Arc::clone(&self.current)
    }

    /// Reloads when the watched file changed since the last look and its check interval passed.
    pub fn reload_if_changed(&mut self) {
        let Some(every) = self.check_every else {
            return;
        };
        if self.last_check.elapsed() < every {
            return;
        }
        self.last_check = Instant::now();
        let stamp = self.path.as_ref().and_then(|p| file_stamp(p));
        if stamp.is_some() && stamp != self.last_seen {
            self.reload();
        }
    }

    /// Loads the model file again; keeps the running model when the file is unreadable or
    /// invalid. Returns whether a new model now serves.
    pub fn reload(&mut self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        self.last_seen = file_stamp(path);
        let loaded = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| Model::from_bytes(&bytes).map_err(|e| e.to_string()));
        match loaded {
            Ok(model) => {
                let old = Arc::clone(&self.current);
                tracing::info!(
                    old = %old.metadata().model_id,
                    new = %model.metadata().model_id,
                    path = %path.display(),
                    "model reloaded"
                );
                publish_model_info(Some(&old), &model);
                metrics::counter!(MODEL_RELOADS, "outcome" => "loaded").increment(1);
                self.current = Arc::new(model);
                true
            }
            Err(error) => {
                tracing::error!(
                    path = %path.display(),
                    %error,
                    serving = %self.current.metadata().model_id,
                    "model file refused; the running model keeps serving"
                );
                metrics::counter!(MODEL_RELOADS, "outcome" => "refused").increment(1);
                false
            }
        }
    }
}

fn publish_model_info(old: Option<&Model>, new: &Model) {
    if let Some(old) = old {
        metrics::gauge!(MODEL_INFO, "model_id" => old.metadata().model_id.clone()).set(0.0);
    }
    metrics::gauge!(MODEL_INFO, "model_id" => new.metadata().model_id.clone()).set(1.0);
}

fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
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
        let Ok(model) = Model::from_bytes(&bytes) else {
            panic!("the default model must load");
        };
        let id = model.metadata().model_id.clone();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("model.spamflow");
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let mut slot = ModelSlot::new(model, Some(path.clone()), Some(Duration::ZERO));
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
}

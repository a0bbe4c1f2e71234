//! spamflow-registry: the model registry, a folder of versioned model files and a pointer to
//! the one that serves.
//!
//! Layout of a registry folder:
//! - `<model id>.spamflow`: every registered model, verified when added, never overwritten
//!   (except by a copy of the same model that adds the category head's counts, format 5);
//! - `CURRENT`: the id of the serving model (one line); `spamflow run` follows it;
//! - `HISTORY`: one line per promotion, `<id> <RFC 3339 time>`, the last line being current;
//!   `rollback` removes the last line and points `CURRENT` at the one before.
//!
//! Every change is written to a temporary file and renamed into place, and changes hold an
//! advisory lock on `.lock`, so a reader never sees half a file and two operators never
//! interleave.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use spamflow_model::{ArtifactError, ModelArtifact, ModelMetadata};

/// File name of the pointer to the serving model.
pub const POINTER_FILE: &str = "CURRENT";
/// File name of the promotion history.
pub const HISTORY_FILE: &str = "HISTORY";
/// File name extension of registered models.
pub const MODEL_EXTENSION: &str = "spamflow";
const LOCK_FILE: &str = ".lock";

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A model file is not a valid model.
    #[error("{path}: {source}")]
    InvalidModel {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: ArtifactError,
    },
    /// No registered model has this id (or id prefix).
    #[error("no model {0:?} in the registry (see `spamflow models list`)")]
    UnknownModel(String),
    /// An id prefix names several models.
    #[error("{prefix:?} names several models: {matches}")]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// The ids it matches, comma-separated.
        matches: String,
    },
    /// A different model is registered under the same id.
    #[error(
        "a different model is already registered as {0} (its weights or settings differ, not just its metadata)"
    )]
    IdClash(String),
    /// A model id that cannot be a file name.
    #[error("model id {0:?} is not usable as a file name (letters, digits, '.', '-', '_' only)")]
    BadId(String),
    /// Nothing was promoted yet.
    #[error("the registry has no current model: promote one with `spamflow models promote ID`")]
    NoCurrent,
    /// Rollback needs an earlier promotion.
    #[error("nothing to roll back to: {0} is the only model ever promoted")]
    NothingToRollBack(String),
    /// `CURRENT` or `HISTORY` is damaged.
    #[error("{path} is damaged: {problem}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// A model in the registry.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredModel {
    /// Its id (also its file name, without extension).
    pub id: String,
    /// Its file.
    pub path: PathBuf,
    /// Size of the file in bytes.
    pub size: u64,
    /// Its metadata.
    pub metadata: ModelMetadata,
}

/// One line of the promotion history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The model made current.
    pub id: String,
    /// When, RFC 3339.
    pub at: String,
}

/// What a promotion or rollback changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// The model that served before (none on the first promotion).
    pub previous: Option<String>,
    /// The model that serves now.
    pub current: String,
}

/// A registry folder.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

impl Registry {
    /// The registry in `dir` (created by the first [`Registry::add`]).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Registry { dir: dir.into() }
    }

    /// The registry's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pointer file that names the serving model.
    pub fn pointer_path(&self) -> PathBuf {
        self.dir.join(POINTER_FILE)
    }

    /// The file of model `id`.
    pub fn model_path(&self, id: &str) -> Result<PathBuf, RegistryError> {
        check_id(id)?;
        Ok(self.dir.join(format!("{id}.{MODEL_EXTENSION}")))
    }

    /// Verifies a model file's bytes and registers them under the model's id; returns the
    /// registered file. Registering the same model again is a no-op (also when only its metadata,
    /// such as the creation time, differs: the registered file is kept, and returned), except
    /// that a copy with more learning state (FTRL state, category counts) replaces one with less
    /// (same verdicts, and `update` can continue further); a different model under an existing
    /// id, or learning state that differs from the registered file's, is refused.
    pub fn add(&self, bytes: &[u8]) -> Result<RegisteredModel, RegistryError> {
        let artifact =
            ModelArtifact::from_bytes(bytes).map_err(|source| RegistryError::InvalidModel {
                path: PathBuf::from("<input>"),
                source,
            })?;
        let id = artifact.metadata.model_id.clone();
        let path = self.model_path(&id)?;
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let _lock = self.lock()?;
        let kept = match std::fs::read(&path) {
            Ok(existing) if existing == bytes => None,
            Ok(existing) => {
                // What decides verdicts: metadata and the learning state that only `update` uses
                // (older files lack some of it) do not.
                let verdict_parts = |mut artifact: ModelArtifact| {
                    artifact.metadata = ModelMetadata::default();
                    artifact.online_state = None;
                    artifact.category_counts = None;
                    artifact.spam_naive_bayes = None;
                    artifact
                };
                let registered = ModelArtifact::from_bytes(&existing).map_err(|source| {
                    RegistryError::InvalidModel {
                        path: path.clone(),
                        source,
                    }
                })?;
                let metadata = registered.metadata.clone();
                let upgrade = learns_more(&artifact, &registered);
                if !learning_states_agree(&artifact, &registered)
                    || verdict_parts(registered) != verdict_parts(artifact.clone())
                {
                    return Err(RegistryError::IdClash(id));
                }
                if upgrade {
                    // The same model that `update` can continue further: keep this file.
                    write_atomically(&path, bytes)?;
                    None
                } else {
                    Some((existing.len(), metadata))
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_atomically(&path, bytes)?;
                None
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let (size, metadata) = kept.unwrap_or((bytes.len(), artifact.metadata));
        Ok(RegisteredModel {
            id,
            path,
            size: size as u64,
            metadata,
        })
    }

    /// Every registered model, oldest first (by creation time, then id). Files that do not
    /// load are reported as errors, not skipped.
    pub fn list(&self) -> Result<Vec<RegisteredModel>, RegistryError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        let mut models = Vec::new();
        for entry in entries {
            let path = entry.map_err(io(&self.dir))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(MODEL_EXTENSION) {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let artifact = ModelArtifact::from_bytes(&bytes).map_err(|source| {
                RegistryError::InvalidModel {
                    path: path.clone(),
                    source,
                }
            })?;
            models.push(RegisteredModel {
                id: artifact.metadata.model_id.clone(),
                path,
                size: bytes.len() as u64,
                metadata: artifact.metadata,
            });
        }
        models
            .sort_by(|a, b| (&a.metadata.created_at, &a.id).cmp(&(&b.metadata.created_at, &b.id)));
        Ok(models)
    }

    /// The registered id that is `id_or_prefix` or starts with it.
    pub fn resolve(&self, id_or_prefix: &str) -> Result<String, RegistryError> {
        let ids: Vec<String> = self.list()?.into_iter().map(|m| m.id).collect();
        if ids.iter().any(|id| id == id_or_prefix) {
            return Ok(id_or_prefix.to_owned());
        }
        let matches: Vec<&String> = ids
            .iter()
            .filter(|id| !id_or_prefix.is_empty() && id.starts_with(id_or_prefix))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(RegistryError::UnknownModel(id_or_prefix.to_owned())),
            many => Err(RegistryError::Ambiguous {
                prefix: id_or_prefix.to_owned(),
                matches: many
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The id the pointer names, if any model was promoted.
    pub fn current(&self) -> Result<Option<String>, RegistryError> {
        let path = self.pointer_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let id = text.trim();
                check_id(id).map_err(|_| RegistryError::Damaged {
                    path: path.clone(),
                    problem: format!("{id:?} is not a model id"),
                })?;
                Ok(Some(id.to_owned()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The serving model's id and file bytes.
    pub fn read_current(&self) -> Result<(String, Vec<u8>), RegistryError> {
        let id = self.current()?.ok_or(RegistryError::NoCurrent)?;
        let path = self.model_path(&id)?;
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        Ok((id, bytes))
    }

    /// Every promotion, oldest first; the last is current.
    pub fn history(&self) -> Result<Vec<Promotion>, RegistryError> {
        let path = self.dir.join(HISTORY_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&path)(e)),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let mut fields = line.split_whitespace();
                match (fields.next(), fields.next()) {
                    (Some(id), Some(at)) if check_id(id).is_ok() => Ok(Promotion {
                        id: id.to_owned(),
                        at: at.to_owned(),
                    }),
                    _ => Err(RegistryError::Damaged {
                        path: path.clone(),
                        problem: format!("unreadable line {line:?}"),
                    }),
                }
            })
            .collect()
    }

    /// Makes `id_or_prefix` the serving model (after verifying its file loads).
    pub fn promote(&self, id_or_prefix: &str) -> Result<Switch, RegistryError> {
        let id = self.resolve(id_or_prefix)?;
        let path = self.model_path(&id)?;
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        ModelArtifact::from_bytes(&bytes)
            .map_err(|source| RegistryError::InvalidModel { path, source })?;
        let _lock = self.lock()?;
        let mut history = self.history()?;
        let previous = history.last().map(|p| p.id.clone());
        if previous.as_deref() != Some(id.as_str()) {
            history.push(Promotion {
                id: id.clone(),
                at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            });
            self.write_history(&history)?;
        }
        write_atomically(&self.pointer_path(), format!("{id}\n").as_bytes())?;
        Ok(Switch {
            previous,
            current: id,
        })
    }

    /// Points back at the model that served before the last promotion, and forgets that
    /// promotion.
    pub fn rollback(&self) -> Result<Switch, RegistryError> {
        let _lock = self.lock()?;
        let mut history = self.history()?;
        let Some(last) = history.pop() else {
            return Err(RegistryError::NoCurrent);
        };
        let Some(before) = history.last() else {
            return Err(RegistryError::NothingToRollBack(last.id));
        };
        let path = self.model_path(&before.id)?;
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        ModelArtifact::from_bytes(&bytes)
            .map_err(|source| RegistryError::InvalidModel { path, source })?;
        let current = before.id.clone();
        self.write_history(&history)?;
        write_atomically(&self.pointer_path(), format!("{current}\n").as_bytes())?;
        Ok(Switch {
            previous: Some(last.id),
            current,
        })
    }

    fn write_history(&self, history: &[Promotion]) -> Result<(), RegistryError> {
        let text: String = history
            .iter()
            .map(|p| format!("{} {}\n", p.id, p.at))
            .collect();
        write_atomically(&self.dir.join(HISTORY_FILE), text.as_bytes())
    }

    /// Holds the registry's advisory lock until dropped.
    fn lock(&self) -> Result<File, RegistryError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        Ok(file)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError {
    let path = path.to_path_buf();
    move |source| RegistryError::Io { path, source }
}

fn check_id(id: &str) -> Result<(), RegistryError> {
    let usable = !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if usable {
        Ok(())
    } else {
        Err(RegistryError::BadId(id.to_owned()))
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path` and syncs
/// the folder, so that a reader sees the old file or the new one, never a part, even after a
/// crash. Model files, the registry's pointer and history, and exported corpora are written so.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.partial"));
    let mut file = File::create(&temporary).map_err(io(&temporary))?;
    file.write_all(bytes).map_err(io(&temporary))?;
    file.sync_all().map_err(io(&temporary))?;
    std::fs::rename(&temporary, path).map_err(io(path))?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(folder)
        .and_then(|f| f.sync_all())
        .map_err(io(folder))
}

/// Whether `candidate` carries every part of the learning state that `registered` carries (the
/// FTRL state, since format version 2; the category sums, since format version 5; the spam
/// head's naive Bayes sums, since format version 7) and more: a copy of the same model that
/// `update` can continue further.
fn learns_more(candidate: &ModelArtifact, registered: &ModelArtifact) -> bool {
    let parts = |a: &ModelArtifact| {
        [
            a.online_state.is_some(),
            a.category_counts.is_some(),
            a.spam_naive_bayes.is_some(),
        ]
    };
    let (has, had) = (parts(candidate), parts(registered));
    has != had && has.iter().zip(&had).all(|(&has, &had)| has || !had)
}

/// Whether every part of the learning state that both files carry is the same (a part only one
/// of them carries is no conflict: older formats lack it).
fn learning_states_agree(a: &ModelArtifact, b: &ModelArtifact) -> bool {
    fn agree<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
    agree(&a.online_state, &b.online_state)
        && agree(&a.category_counts, &b.category_counts)
        && agree(&a.spam_naive_bayes, &b.spam_naive_bayes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_bytes(id: &str, created_at: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/default.spamflow");
        let bytes = std::fs::read(path).unwrap_or_default();
        let mut artifact =
            ModelArtifact::from_bytes(&bytes).unwrap_or_else(|e| panic!("cannot load {path}: {e}"));
        artifact.metadata.model_id = id.into();
        artifact.metadata.created_at = created_at.into();
        artifact.to_bytes().unwrap_or_default()
    }

    #[test]
    fn promote_and_rollback_move_the_pointer_through_the_history() -> Result<(), RegistryError> {
        let dir = tempfile::tempdir().map_err(io(Path::new("tmp")))?;
        let registry = Registry::new(dir.path().join("registry"));
        assert!(registry.list()?.is_empty());
        assert_eq!(registry.current()?, None);
        assert!(matches!(registry.rollback(), Err(RegistryError::NoCurrent)));

        let a = registry.add(&model_bytes("sf-aaa111", "2026-01-01T00:00:00Z"))?;
        let b = registry.add(&model_bytes("sf-bbb222", "2026-02-01T00:00:00Z"))?;
        // The same model again is fine, even with other metadata; another model under a taken
        // id is not.
        assert_eq!(
            registry.add(&model_bytes("sf-aaa111", "2026-01-01T00:00:00Z"))?,
            a
        );
        assert_eq!(
            registry.add(&model_bytes("sf-aaa111", "2026-03-01T00:00:00Z"))?,
            a,
            "the registered file is kept and reported"
        );
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/default.spamflow");
        let mut other = ModelArtifact::from_bytes(&std::fs::read(path).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        other.metadata.model_id = "sf-aaa111".into();
        other.threshold = 0.25;
        assert!(matches!(
            registry.add(&other.to_bytes().unwrap_or_default()),
            Err(RegistryError::IdClash(_))
        ));
        let ids: Vec<String> = registry.list()?.into_iter().map(|m| m.id).collect();
        assert_eq!(ids, [a.id.clone(), b.id.clone()]);
        // A copy without category counts (as format 4 wrote it) is the same model; adding the
        // copy with counts afterwards keeps the richer file, with its metadata.
        let with_counts = model_bytes("sf-ccc333", "2026-03-01T00:00:00Z");
        let mut without_counts =
            ModelArtifact::from_bytes(&with_counts).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            without_counts.category_counts.is_some(),
            "the shipped model has counts"
        );
        without_counts.category_counts = None;
        without_counts.metadata.created_at = "2026-04-01T00:00:00Z".into();
        let without_counts = without_counts.to_bytes().unwrap_or_default();
        let c = registry.add(&without_counts)?;
        assert_eq!(c.metadata.created_at, "2026-04-01T00:00:00Z");
        let upgraded = registry.add(&with_counts)?;
        assert_eq!(upgraded.size, with_counts.len() as u64);
        assert_eq!(upgraded.metadata.created_at, "2026-03-01T00:00:00Z");
        assert_eq!(std::fs::read(&c.path).unwrap_or_default(), with_counts);
        assert_eq!(
            registry.add(&without_counts)?,
            upgraded,
            "not replaced back"
        );
        let ids: Vec<String> = registry.list()?.into_iter().map(|m| m.id).collect();
        assert_eq!(ids, [a.id.clone(), b.id.clone(), c.id.clone()]);
        // The same for the FTRL state: a copy as format 1 wrote it (no FTRL state, no counts, no
        // naive Bayes part, which needs the FTRL state), then one with the FTRL state and the
        // naive Bayes part but no counts, then the full file; a copy that lacks part of the
        // registered state replaces nothing.
        let full = model_bytes("sf-ddd444", "2026-05-01T00:00:00Z");
        let copy = |online: bool, counts: bool| {
            let mut artifact = ModelArtifact::from_bytes(&full).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                artifact.online_state.is_some(),
                "the shipped model has FTRL state"
            );
            if !online {
                artifact.online_state = None;
                artifact.spam_naive_bayes = None;
            }
            if !counts {
                artifact.category_counts = None;
            }
            artifact.to_bytes().unwrap_or_default()
        };
        let d = registry.add(&copy(false, false))?;
        let mut expected = copy(false, false);
        for (step, (bytes, replaced)) in [
            (copy(true, false), true),
            (copy(false, true), false),
            (full.clone(), true),
            (copy(false, true), false),
            (copy(true, false), false),
        ]
        .into_iter()
        .enumerate()
        {
            let registered = registry.add(&bytes)?;
            if replaced {
                expected = bytes;
            }
            let on_disk = std::fs::read(&d.path).unwrap_or_default();
            assert!(on_disk == expected, "step {step}: wrong file kept");
            assert_eq!(registered.size, expected.len() as u64, "step {step}");
        }
        // Learning state that both copies carry must agree: other FTRL state under the same id
        // is another model's.
        let mut other_state = ModelArtifact::from_bytes(&full).unwrap_or_else(|e| panic!("{e}"));
        if let Some(state) = other_state.online_state.as_mut() {
            state.n[0] += 1.0;
        }
        assert!(matches!(
            registry.add(&other_state.to_bytes().unwrap_or_default()),
            Err(RegistryError::IdClash(_))
        ));
        let mut other_sums = ModelArtifact::from_bytes(&full).unwrap_or_else(|e| panic!("{e}"));
        let naive_bayes = other_sums.spam_naive_bayes.as_mut();
        assert!(
            naive_bayes.is_some(),
            "the shipped model has a naive Bayes part"
        );
        if let Some(naive_bayes) = naive_bayes {
            naive_bayes.sums[0] += 1.0;
        }
        assert!(matches!(
            registry.add(&other_sums.to_bytes().unwrap_or_default()),
            Err(RegistryError::IdClash(_))
        ));
        assert!(std::fs::read(&d.path).unwrap_or_default() == full);

        assert_eq!(
            registry.promote("sf-a")?,
            Switch {
                previous: None,
                current: a.id.clone()
            }
        );
        assert!(matches!(
            registry.rollback(),
            Err(RegistryError::NothingToRollBack(_))
        ));
        assert!(matches!(
            registry.promote("sf-"),
            Err(RegistryError::Ambiguous { .. })
        ));
        assert!(matches!(
            registry.promote("sf-zzz"),
            Err(RegistryError::UnknownModel(_))
        ));
        registry.promote(&b.id)?;
        assert_eq!(registry.current()?, Some(b.id.clone()));
        assert_eq!(registry.read_current()?.0, b.id);
        assert_eq!(registry.history()?.len(), 2);

        let back = registry.rollback()?;
        assert_eq!(
            back,
            Switch {
                previous: Some(b.id.clone()),
                current: a.id.clone()
            }
        );
        assert_eq!(registry.current()?, Some(a.id.clone()));
        assert_eq!(registry.history()?.len(), 1);
        Ok(())
    }

    #[test]
    fn bad_ids_and_damaged_files_are_refused() -> Result<(), RegistryError> {
        let dir = tempfile::tempdir().map_err(io(Path::new("tmp")))?;
        let registry = Registry::new(dir.path());
        assert!(matches!(
            registry.add(&model_bytes("../escape", "2026-01-01T00:00:00Z")),
            Err(RegistryError::BadId(_))
        ));
        assert!(matches!(
            registry.add(b"not a model"),
            Err(RegistryError::InvalidModel { .. })
        ));
        std::fs::write(registry.pointer_path(), "../../etc/passwd\n").map_err(io(dir.path()))?;
        assert!(matches!(
            registry.current(),
            Err(RegistryError::Damaged { .. })
        ));
        std::fs::write(dir.path().join("broken.spamflow"), b"SPAMFLOW\x01")
            .map_err(io(dir.path()))?;
        assert!(matches!(
            registry.list(),
            Err(RegistryError::InvalidModel { .. })
        ));
        Ok(())
    }
}

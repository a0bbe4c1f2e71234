//! The `spamflow` command: train, update, evaluate, compare, classify and inspect spam models;
//! run the Kafka service; replay messages into a topic and tail labeled events; manage the
//! model registry; export feedback as a corpus.
//!
//! Exit codes: 0 success, 1 error, 2 usage error (clap), 3 `compare` rejected the candidate.

mod compare;
mod dataset;
mod eval;
mod input;
mod manifest;
mod progress;
mod registry;
mod report;
mod stream;
mod update;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use rayon::prelude::*;
use serde_json::json;
use spamflow_features::SubwordTokenizer;
use spamflow_model::{
    Algorithm, LabeledMessage, Model, ModelArtifact, TrainOptions, TrainingData, UpdateOptions,
    Verdict,
};
use spamflow_stream::EventLine;

use crate::manifest::Split;

include!(concat!(env!("OUT_DIR"), "/default_model.rs"));

/// mimalloc instead of the system allocator: parsing and feature extraction make many small,
/// short-lived allocations per message, which it serves markedly faster than glibc malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "spamflow",
    version,
    about = "Streaming spam classifier: train, evaluate and classify email"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model on labeled messages listed in manifest CSV files.
    Train(TrainArgs),
    /// Update a model incrementally with new labeled messages (warm-started FTRL).
    Update(update::UpdateArgs),
    /// Evaluate a model on a labeled manifest: metrics table, JSON and a report with plots.
    Eval(eval::EvalArgs),
    /// Compare a candidate model with the current one on the same messages: ACCEPT (exit 0) or
    /// REJECT (exit 3) by quality tolerances.
    Compare(compare::CompareArgs),
    /// Classify messages from files, folders, mbox files or stdin: one JSON line per message.
    Classify(ClassifyArgs),
    /// Print a model file's metadata.
    Inspect(InspectArgs),
    /// Run the Kafka service: consume inbound mail, publish labeled events exactly once.
    Run(stream::RunArgs),
    /// Load messages (a manifest or files) into a Kafka topic.
    Replay(stream::ReplayArgs),
    /// Print committed labeled events of a topic as JSON lines.
    Tail(stream::TailArgs),
    /// The model registry: list, add, promote and roll back the model `run` serves.
    Models(registry::ModelsArgs),
    /// Turn feedback reports into training data.
    Dataset(dataset::DatasetArgs),
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    /// Manifest CSV (`path`, `label`; optional `split`, `category`). Repeat to combine corpora.
    #[arg(long, required = true)]
    manifest: Vec<PathBuf>,
    /// Split to train on [default: train]; rows of other splits are ignored. A manifest without
    /// a `split` column is read whole.
    #[arg(long)]
    split: Option<String>,
    /// Where to write the model file.
    #[arg(long)]
    out: PathBuf,
    /// Random seed (fold assignment, shuffling) [default: 42].
    #[arg(long)]
    seed: Option<u64>,
    /// Spam-head algorithm: logistic, naive_bayes, ftrl, or auto (compare all three by
    /// cross-validation and keep the best) [default: ftrl].
    #[arg(long)]
    algorithm: Option<String>,
    /// Reuse the subword tokenizer of this model file (or tokenizer JSON) instead of training one:
    /// makes training bit-for-bit reproducible.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Features kept after selection.
    #[arg(long)]
    max_features: Option<usize>,
    /// Cross-validation folds.
    #[arg(long)]
    folds: Option<usize>,
    /// Subword vocabulary size (0 turns subword features off).
    #[arg(long)]
    subword_vocab: Option<usize>,
    /// TOML file with training options (every field of the training options; see the README).
    /// Flags given on the command line win over the file.
    #[arg(long)]
    options: Option<PathBuf>,
    /// Worker threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, clap::Args)]
struct ClassifyArgs {
    /// Model file (default: the model built into this binary).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Worker threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Files, folders, mbox files, or `-` for stdin (default: stdin).
    paths: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// Model file (default: the model built into this binary).
    model: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Print only the options the model was built with, as TOML for `train --options` (or
    /// `update --options` for an updated model).
    #[arg(long, conflicts_with = "json")]
    options: bool,
}

/// Exit code of `compare` when the candidate is rejected (errors exit 1, usage errors 2).
const EXIT_REJECTED: u8 = 3;

fn main() -> anyhow::Result<ExitCode> {
    let result = match Cli::parse().command {
        Command::Train(args) => train(&args),
        Command::Update(args) => update::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Compare(args) => {
            return compare::run(&args).map(|accepted| {
                if accepted {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(EXIT_REJECTED)
                }
            });
        }
        Command::Classify(args) => classify(&args),
        Command::Inspect(args) => inspect(&args),
        Command::Run(args) => stream::run(&args),
        Command::Replay(args) => stream::replay(&args),
        Command::Tail(args) => stream::tail(&args),
        Command::Models(args) => registry::run(&args),
        Command::Dataset(args) => dataset::run(&args),
    };
    match result.map(|()| ExitCode::SUCCESS) {
        Err(error) if is_broken_pipe(&error) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

/// Whether `error` comes from writing to a closed pipe (`spamflow classify ... | head`), the
/// reader's choice rather than a failure: an I/O error of that kind anywhere in its chain, also
/// inside a JSON writer's error.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let kind = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => Some(io.kind()),
            None => cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind),
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// Reads and verifies a model file, or the built-in default model when `path` is `None`.
fn load_model(path: Option<&Path>) -> anyhow::Result<Model> {
    let artifact = load_artifact(path)?;
    Model::from_artifact(artifact).context("cannot build the model")
}

fn load_artifact(path: Option<&Path>) -> anyhow::Result<ModelArtifact> {
    load_artifact_with_version(path).map(|(artifact, _)| artifact)
}

/// Like [`load_artifact`], also returning the file's format version.
fn load_artifact_with_version(path: Option<&Path>) -> anyhow::Result<(ModelArtifact, u32)> {
    match path {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read model file {}", path.display()))?;
            ModelArtifact::from_bytes_with_version(&bytes)
                .with_context(|| format!("cannot load model {}", path.display()))
        }
        None => match DEFAULT_MODEL {
            Some(bytes) => ModelArtifact::from_bytes_with_version(bytes)
                .context("the built-in default model is invalid"),
            None => bail!(
                "this binary was built without a default model (models/default.spamflow): pass --model"
            ),
        },
    }
}

/// A rayon pool with `threads` workers (every core when `None`).
fn thread_pool(threads: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        anyhow::ensure!(n > 0, "--threads must be at least 1");
        builder = builder.num_threads(n);
    }
    builder.build().context("cannot start worker threads")
}

/// Labeled messages read from manifests, with the fingerprint of where they came from.
struct LabeledSet {
    rows: Vec<manifest::Row>,
    bytes: Vec<Vec<u8>>,
    training_data: TrainingData,
}

impl LabeledSet {
    /// The rows `split` selects in every manifest, and their files' bytes (at most
    /// `max_bytes` of each). The recorded split is the one rows were selected by: none when any
    /// manifest was read whole (it has no `split` column), as its rows were not.
    fn read(manifests: &[PathBuf], split: Split<'_>, max_bytes: usize) -> anyhow::Result<Self> {
        let mut rows = Vec::new();
        let mut manifest_sha256 = Vec::new();
        let mut splits = Vec::new();
        for path in manifests {
            let manifest = manifest::read(path, split)?;
            manifest_sha256.push(manifest.sha256);
            splits.push(manifest.split);
            rows.extend(manifest.rows);
        }
        let selected_by = splits
            .into_iter()
            .collect::<Option<Vec<String>>>()
            .and_then(|splits| splits.into_iter().next());
        anyhow::ensure!(
            !rows.is_empty(),
            "no rows{} in the manifests",
            manifest::selection(selected_by.as_deref())
        );
        let bytes = manifest::read_messages(&rows, max_bytes)?;
        let training_data = TrainingData {
            manifest_sha256,
            rows_sha256: manifest::rows_fingerprint(&rows),
            split: selected_by,
            ..TrainingData::default()
        };
        Ok(LabeledSet {
            rows,
            bytes,
            training_data,
        })
    }

    fn messages(&self) -> Vec<LabeledMessage<'_>> {
        self.rows
            .iter()
            .zip(&self.bytes)
            .map(|(row, bytes)| LabeledMessage {
                bytes,
                spam: row.spam,
                category: row.category,
            })
            .collect()
    }
}

/// Writes a model file atomically: to `PATH.partial` first, then renamed over `path`. Returns
/// the file's size.
fn write_model(path: &Path, artifact: &ModelArtifact) -> anyhow::Result<usize> {
    let encoded = artifact.to_bytes()?;
    spamflow_registry::write_atomically(path, &encoded)?;
    Ok(encoded.len())
}

/// The current time as RFC 3339, for model metadata (the model crate reads no clock).
fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn train(args: &TrainArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    let defaults: TrainOptions = read_options(args.options.as_deref())?;
    let set = LabeledSet::read(
        &args.manifest,
        Split::chosen(args.split.as_deref(), "train"),
        input::kept_message_bytes(&defaults.feature_config.limits),
    )?;
    let messages = set.messages();
    let options = TrainOptions {
        seed: args.seed.unwrap_or(defaults.seed),
        algorithm: match args.algorithm.as_deref() {
            None => defaults.algorithm,
            Some(name) => Algorithm::parse_or_auto(name)?,
        },
        max_features: args.max_features.unwrap_or(defaults.max_features),
        folds: args.folds.unwrap_or(defaults.folds),
        subword_vocab_size: args.subword_vocab.unwrap_or(defaults.subword_vocab_size),
        ..defaults
    };
    let tokenizer = match &args.tokenizer {
        Some(path) => Some(read_tokenizer(path)?),
        None => None,
    };
    let created_at = now_rfc3339();
    let bars = progress::Bars::new();
    let artifact = thread_pool(args.threads)?.install(|| {
        spamflow_model::train(
            &messages,
            &options,
            tokenizer,
            &created_at,
            set.training_data.clone(),
            &bars,
        )
    })?;
    bars.finish();
    let size = write_model(&args.out, &artifact)?;
    let v = &artifact.metadata.validation;
    writeln!(
        out,
        "model {} written to {} ({} bytes)",
        artifact.metadata.model_id,
        args.out.display(),
        size
    )?;
    writeln!(
        out,
        "trained on {} in {:.1} s, peak memory {}",
        learned_from(
            messages.len(),
            artifact.metadata.training_data.spam,
            options.headerless_copies
        ),
        started.elapsed().as_secs_f64(),
        peak_memory()
    )?;
    for (algorithm, auc) in &v.candidates {
        writeln!(
            out,
            "  {}-fold CV {:<12} ROC AUC {:.6} (1-AUC {:.4} %)",
            v.folds,
            algorithm,
            auc,
            (1.0 - auc) * 100.0
        )?;
    }
    writeln!(
        out,
        "chosen {}; threshold {:.4} (CV FPR {:.4} %, recall {:.4}); CV category macro-F1 {:.4}",
        artifact.metadata.algorithm,
        artifact.threshold,
        v.fpr * 100.0,
        v.recall,
        v.category_macro_f1
    )?;
    Ok(())
}

/// What `train` and `update` learned from: `N messages (S spam, H ham)`, and their headerless
/// copies when they were used.
fn learned_from(messages: usize, spam: usize, headerless_copies: bool) -> String {
    let copies = if headerless_copies {
        " and their headerless copies"
    } else {
        ""
    };
    format!(
        "{messages} messages ({spam} spam, {} ham){copies}",
        messages - spam
    )
}

/// The options in a TOML file (every field optional), or the defaults without a file.
fn read_options<T: serde::de::DeserializeOwned + Default>(
    path: Option<&Path>,
) -> anyhow::Result<T> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid options in {}", path.display()))
}

/// Peak resident memory of this process, from /proc (Linux), for the training and update reports.
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A subword tokenizer from a model file or a tokenizer JSON file.
fn read_tokenizer(path: &Path) -> anyhow::Result<SubwordTokenizer> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let json = if bytes.starts_with(b"SPAMFLOW") {
        ModelArtifact::from_bytes(&bytes)
            .with_context(|| format!("cannot load model {}", path.display()))?
            .tokenizer_json
            .with_context(|| format!("model {} has no subword tokenizer", path.display()))?
    } else {
        String::from_utf8(bytes)
            .with_context(|| format!("{} is neither a model nor tokenizer JSON", path.display()))?
    };
    SubwordTokenizer::from_json(&json)
        .with_context(|| format!("cannot load tokenizer from {}", path.display()))
}

/// Messages classified together: enough to keep every worker busy, few enough that memory stays
/// small and reused.
const CLASSIFY_BATCH: usize = 256;

fn classify(args: &ClassifyArgs) -> anyhow::Result<()> {
    let model = load_model(args.model.as_deref())?;
    let sources = if args.paths.is_empty() {
        vec!["-".to_owned()]
    } else {
        args.paths.clone()
    };
    let pool = thread_pool(args.threads)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let model_id = &model.metadata().model_id;
    let mut batch = Vec::with_capacity(CLASSIFY_BATCH);
    let mut verdicts: Vec<Verdict> = Vec::with_capacity(CLASSIFY_BATCH);
    let mut flush = |batch: &mut Vec<input::Message>| -> anyhow::Result<()> {
        pool.install(|| {
            batch
                .par_iter()
                .map(|m| model.classify(&m.bytes))
                .collect_into_vec(&mut verdicts)
        });
        for (message, verdict) in batch.iter().zip(&verdicts) {
            let event = spamflow_stream::labeled_mail(message.id.clone(), verdict, model_id);
            serde_json::to_writer(&mut out, &EventLine::new(&message.id, &event))?;
            out.write_all(b"\n")?;
        }
        batch.clear();
        Ok(())
    };
    let max_bytes = input::kept_message_bytes(&model.extractor().config().limits);
    input::for_each_message(&sources, max_bytes, |message| {
        batch.push(message);
        if batch.len() == CLASSIFY_BATCH {
            flush(&mut batch)?;
        }
        Ok(())
    })?;
    flush(&mut batch)?;
    out.flush()?;
    Ok(())
}

/// The options a model was built with, read back from its metadata.
enum BuildOptions {
    /// Trained from scratch by `train`.
    Train(TrainOptions),
    /// Updated from a parent model by `update`.
    Update(UpdateOptions),
}

impl BuildOptions {
    /// The recorded options (`None` in files before format version 4). Options recorded by an
    /// older build lack the fields added since, which would otherwise read as today's defaults:
    /// the feature configuration and count scale are taken from the artifact, a missing `naive_bayes_blend`
    /// reads as 0 (no naive Bayes part before format version 7) and a missing
    /// `category_algorithm` as `naive_bayes` (the multinomial head of those models,
    /// `ModelMetadata::category_algorithm`).
    fn of(artifact: &ModelArtifact) -> anyhow::Result<Option<Self>> {
        let metadata = &artifact.metadata;
        let Some(json) = &metadata.build_options else {
            return Ok(None);
        };
        Ok(Some(if metadata.parent_model_id.is_some() {
            BuildOptions::Update(serde_json::from_str(json)?)
        } else {
            let recorded: serde_json::Value = serde_json::from_str(json)?;
            let mut options: TrainOptions = serde_json::from_value(recorded.clone())?;
            options.feature_config = artifact.feature_config.clone();
            // Recorded before format version 9 without one: the artifact's is 1.
            options.log_count_scale = artifact.log_count_scale;
            if recorded.get("naive_bayes_blend").is_none() {
                // Recorded before format version 7: its spam head had no naive Bayes part.
                options.naive_bayes_blend = 0.0;
            }
            options.category_algorithm = metadata.category_algorithm()?;
            BuildOptions::Train(options)
        }))
    }

    /// One line for `inspect`.
    fn summary(&self) -> String {
        let (command, copies) = match self {
            BuildOptions::Train(o) => ("train", o.headerless_copies),
            BuildOptions::Update(o) => ("update", o.headerless_copies),
        };
        let copies = if copies { "on" } else { "off" };
        format!(
            "{command}, headerless copies {copies} (`spamflow inspect --options` prints them all)"
        )
    }
}

/// `inspect --options`: the build options as TOML, ready for `train --options` or
/// `update --options`.
fn print_build_options(out: &mut impl Write, artifact: &ModelArtifact) -> anyhow::Result<()> {
    let id = &artifact.metadata.model_id;
    let options = BuildOptions::of(artifact)?.with_context(|| {
        format!("model {id} does not record its options (files before format version 4 do not)")
    })?;
    let (command, toml) = match &options {
        BuildOptions::Train(o) => ("train", toml::to_string(o)?),
        BuildOptions::Update(o) => ("update", toml::to_string(o)?),
    };
    writeln!(
        out,
        "# options of model {id}: spamflow {command} --options FILE"
    )?;
    write!(out, "{toml}")?;
    Ok(())
}

fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let (artifact, version) = load_artifact_with_version(args.model.as_deref())?;
    let m = &artifact.metadata;
    let online = artifact.online_state.as_ref().map(
        |s| json!({"alpha": s.alpha, "beta": s.beta, "l1": s.l1, "l2": s.l2, "rows": s.z.len()}),
    );
    let category_counts = artifact.category_counts.as_ref().map(
        |c| json!({"alpha": c.alpha, "features": c.columns.len(), "rows_per_category": c.rows}),
    );
    let spam_naive_bayes = artifact
        .spam_naive_bayes
        .as_ref()
        .map(|nb| json!({"blend": nb.blend, "alpha": nb.alpha, "rows_ham_spam": nb.rows}));
    if args.options {
        return print_build_options(&mut out, &artifact);
    }
    if args.json {
        // The build options once, parsed (or as recorded, if this build cannot parse them).
        let build_options = m.build_options.as_deref().map(|text| {
            serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::from(text))
        });
        let mut metadata = serde_json::to_value(m)?;
        if let Some(fields) = metadata.as_object_mut() {
            fields.remove("build_options");
        }
        let document = json!({
            "format_version": version,
            "metadata": metadata,
            "build_options": build_options,
            "online_state": online,
            "incremental_update": if online.is_some() { "exact" } else { "from_weights" },
            "category_counts": category_counts,
            "spam_naive_bayes": spam_naive_bayes,
            "features": artifact.feature_hashes.len(),
            "subword_vocab_size": artifact.tokenizer_json.as_deref().and_then(|j| SubwordTokenizer::from_json(j).ok()).map(|t| t.vocab_size()),
            "threshold": artifact.threshold,
            "calibration": artifact.calibration,
            "feature_config": artifact.feature_config,
            "log_count_scale": artifact.log_count_scale,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&document)?)?;
        return Ok(());
    }
    let t = &m.training_data;
    writeln!(out, "model id          {}", m.model_id)?;
    writeln!(out, "format version    {version}")?;
    writeln!(out, "created at        {}", m.created_at)?;
    writeln!(out, "spamflow version  {}", m.spamflow_version)?;
    writeln!(out, "algorithm         {} (seed {})", m.algorithm, m.seed)?;
    writeln!(out, "features          {}", artifact.feature_hashes.len())?;
    let config = &artifact.feature_config;
    let header_words = match config.header_word_fields.as_slice() {
        _ if !config.header_words => "off".to_owned(),
        [] => "none".to_owned(),
        [every] if every == "*" => "every field".to_owned(),
        fields => fields.join(", "),
    };
    writeln!(out, "header words      {header_words}")?;
    writeln!(
        out,
        "mime structure    {}",
        if artifact.feature_config.mime_structure {
            "on (text/HTML part counts, HTML-only, images, HTML tags are features)"
        } else {
            "off"
        }
    )?;
    writeln!(
        out,
        "word lists        {}",
        match artifact.feature_config.lexicons {
            0 => "off".to_owned(),
            version => format!(
                "version {version} (subject and body words on the lists of kinds of spam add lex: features)"
            ),
        }
    )?;
    writeln!(
        out,
        "count weighting   1 + {} ln(count) per feature, before unit length",
        artifact.log_count_scale
    )?;
    writeln!(
        out,
        "parent model      {}",
        m.parent_model_id
            .as_deref()
            .unwrap_or("- (trained from scratch)")
    )?;
    let built_with = match BuildOptions::of(&artifact) {
        Ok(Some(options)) => options.summary(),
        Ok(None) => format!("not recorded (format version {version}, before 4)"),
        Err(e) => format!("recorded, but not readable by this build: {e:#}"),
    };
    writeln!(out, "build options     {built_with}")?;
    match &artifact.online_state {
        Some(s) => writeln!(
            out,
            "online state      FTRL z/n for {} rows (alpha {}, beta {}, l1 {}, l2 {}): `spamflow update` continues it exactly",
            s.z.len(),
            s.alpha,
            s.beta,
            s.l1,
            s.l2
        )?,
        None => writeln!(
            out,
            "online state      none: `spamflow update` derives FTRL state from the weights (approximate warm start)"
        )?,
    }
    match &artifact.spam_naive_bayes {
        Some(nb) => writeln!(
            out,
            "spam naive Bayes  {} x naive Bayes log-odds added to the spam weights (alpha {}; sums of {} ham and {} spam rows): `spamflow update` continues it",
            nb.blend, nb.alpha, nb.rows[0], nb.rows[1]
        )?,
        None => writeln!(
            out,
            "spam naive Bayes  none: the spam weights are the learner's alone"
        )?,
    }
    match &artifact.category_counts {
        Some(c) => writeln!(
            out,
            "category counts   naive Bayes sums over {} features (alpha {}): `spamflow update` continues the category head",
            c.columns.len(),
            c.alpha
        )?,
        None => writeln!(
            out,
            "category counts   none: `spamflow update` keeps the category head as it is"
        )?,
    }
    if let Some(json) = &artifact.tokenizer_json {
        writeln!(
            out,
            "subword vocab     {}",
            SubwordTokenizer::from_json(json)
                .map(|t| t.vocab_size())
                .unwrap_or(0)
        )?;
    }
    writeln!(out, "threshold         {:.4}", artifact.threshold)?;
    writeln!(
        out,
        "training data     {} messages ({} spam, {} ham), split {}",
        t.messages,
        t.spam,
        t.ham,
        t.split.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "  categories      {}",
        t.categories
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    for sha in &t.manifest_sha256 {
        writeln!(out, "  manifest sha256 {sha}")?;
    }
    writeln!(out, "  rows sha256     {}", t.rows_sha256)?;
    let v = &m.validation;
    for (algorithm, auc) in &v.candidates {
        writeln!(out, "CV {:<14} ROC AUC {:.6}", algorithm, auc)?;
    }
    writeln!(
        out,
        "CV at threshold   FPR {:.4} %, recall {:.4}; category macro-F1 {:.4}",
        v.fpr * 100.0,
        v.recall,
        v.category_macro_f1
    )?;
    Ok(())
}

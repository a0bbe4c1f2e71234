//! The Kafka commands: `run` (the service), `replay` (load messages into a topic) and `tail`
//! (print labeled events).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use spamflow_registry::Registry;
use spamflow_stream::{
    ClientSettings, Control, ModelRole, ModelSlot, ModelSource, Pipeline, ReplayFormat,
    ReplayMessage, ReportedLabel, RunConfig, RunOverrides,
    telemetry::{self, Health},
};

use crate::manifest::Split;
use crate::{input, load_model, manifest};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// TOML configuration file (every option and its default: README, "Configuration reference").
    #[arg(long)]
    config: Option<PathBuf>,
    /// Kafka bootstrap servers (overrides `brokers`).
    #[arg(long)]
    brokers: Option<String>,
    /// Consumer group (overrides `group`).
    #[arg(long)]
    group: Option<String>,
    /// Input topic; repeat for several (overrides `input_topics`).
    #[arg(long = "input-topic")]
    input_topics: Vec<String>,
    /// Topic for labeled events (overrides `output_topic`).
    #[arg(long)]
    output_topic: Option<String>,
    /// Model file (overrides `model`; default: the model built into this binary).
    #[arg(long, conflicts_with = "model_registry")]
    model: Option<PathBuf>,
    /// Model registry folder: serve its current model and follow promotions and rollbacks
    /// (overrides `model_registry`).
    #[arg(long)]
    model_registry: Option<PathBuf>,
    /// Candidate model scored beside the serving one; only the serving verdicts are published
    /// (overrides `shadow_model`).
    #[arg(long)]
    shadow_model: Option<PathBuf>,
    /// Exit 0 once no input arrived for this many seconds and everything is committed.
    #[arg(long, value_name = "SECS")]
    until_idle: Option<f64>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic to write to.
    #[arg(long)]
    topic: String,
    /// Manifest CSV: every listed message, keyed by its `path` column.
    #[arg(long, conflicts_with = "paths")]
    manifest: Option<PathBuf>,
    /// With `--manifest`: only rows of this split.
    #[arg(long, requires = "manifest")]
    split: Option<String>,
    /// Most records per second (default: as fast as the broker takes them).
    #[arg(long)]
    rate: Option<f64>,
    /// Record value format: `raw` message bytes, `protobuf` (`InboundMail`), or `feedback`
    /// (`Feedback` user reports, labeled by the manifest or `--label`).
    #[arg(long, value_enum, default_value = "raw")]
    format: FormatArg,
    /// With `--format feedback` and paths: the label every message is reported with.
    #[arg(long, value_enum)]
    label: Option<LabelArg>,
    /// Files, folders or mbox files, keyed by file name (with `#N` for mbox messages).
    #[arg(required_unless_present = "manifest")]
    paths: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Raw,
    Protobuf,
    Feedback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LabelArg {
    Spam,
    Ham,
}

#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic of labeled events.
    #[arg(long, default_value = "mail.labeled")]
    topic: String,
    /// Exit once no event arrived for this many seconds (default: run until interrupted).
    #[arg(long, value_name = "SECS")]
    until_idle: Option<f64>,
}

/// Logs go to stderr; `RUST_LOG` filters (default `info`). Message contents and addresses are
/// never logged.
fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests calling in) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Sets `stop` on SIGTERM or SIGINT and `reload` on SIGHUP.
fn register_signals(control: &Control) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    for signal in [SIGTERM, SIGINT] {
        signal_hook::flag::register(signal, control.stop.clone())
            .context("cannot install signal handlers")?;
    }
    signal_hook::flag::register(SIGHUP, control.reload.clone())
        .context("cannot install signal handlers")?;
    Ok(())
}

fn seconds(value: Option<f64>) -> anyhow::Result<Option<Duration>> {
    value
        .map(|s| Duration::try_from_secs_f64(s).context("--until-idle must be a positive number"))
        .transpose()
}

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let overrides = RunOverrides {
        brokers: args.brokers.clone(),
        group: args.group.clone(),
        input_topics: (!args.input_topics.is_empty()).then(|| args.input_topics.clone()),
        output_topic: args.output_topic.clone(),
        model: args.model.clone(),
        model_registry: args.model_registry.clone(),
        shadow_model: args.shadow_model.clone(),
    };
    let config = RunConfig::load(args.config.as_deref(), &overrides)?;
    init_logging(config.log_json);
    let until_idle = seconds(args.until_idle)?;
    let health = Arc::new(Health::new());
    let metrics = telemetry::install_recorder()?;
    if !config.http_listen.is_empty() {
        let bound = telemetry::serve_http(&config.http_listen, metrics, health.clone())?;
        tracing::info!(%bound, "serving /metrics, /healthz and /readyz");
    }
    let check = (config.model_check_secs > 0).then(|| Duration::from_secs(config.model_check_secs));
    let slot = match (&config.model, &config.model_registry) {
        (_, Some(dir)) => ModelSlot::open(
            ModelSource::Registry(Registry::new(dir)),
            ModelRole::Serving,
            check,
        )?,
        (Some(path), None) => {
            ModelSlot::open(ModelSource::File(path.clone()), ModelRole::Serving, check)?
        }
        (None, None) => ModelSlot::with_model(
            load_model(None)?,
            ModelSource::Builtin,
            ModelRole::Serving,
            None,
        ),
    };
    let shadow = config
        .shadow_model
        .as_ref()
        .map(|path| ModelSlot::open(ModelSource::File(path.clone()), ModelRole::Shadow, check))
        .transpose()?;
    let control = Control::default();
    register_signals(&control)?;
    let pipeline = Pipeline::start(config, slot, shadow, health)?;
    let summary = pipeline.run(&control, until_idle)?;
    tracing::info!(?summary, "stopped after committing every batch");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "consumed {} records in {:.2} s ({:.0} msgs/s): {} labeled ({} spam), {} dead letters, {} trap hits; {} batches committed, {} aborted and read again",
        summary.consumed,
        summary.busy.as_secs_f64(),
        summary.throughput(),
        summary.labeled,
        summary.spam,
        summary.dead_letters,
        summary.trap_hits,
        summary.batches,
        summary.aborted
    )?;
    Ok(())
}

pub fn replay(args: &ReplayArgs) -> anyhow::Result<()> {
    init_logging(false);
    let settings = ClientSettings {
        brokers: args.brokers.clone(),
        ..ClientSettings::default()
    };
    let format = match args.format {
        FormatArg::Raw => ReplayFormat::Raw,
        FormatArg::Protobuf => ReplayFormat::Protobuf,
        FormatArg::Feedback => ReplayFormat::Feedback,
    };
    let started = std::time::Instant::now();
    // A reading thread hands messages to the producer through a short queue: memory holds the
    // queued messages, whatever the size of the input.
    let (queue, messages) = std::sync::mpsc::sync_channel(REPLAY_QUEUE);
    let reader_args = args.clone();
    let reader = std::thread::spawn(move || {
        read_replay_messages(&reader_args, |message| {
            queue
                .send(message)
                .map_err(|_| anyhow::anyhow!("the producer stopped"))
        })
    });
    // A producer error is reported at once, without waiting for the reader: it stops at its
    // next message, but it may be waiting for input that does not come (an idle pipe or
    // terminal), and it ends with the process.
    let sent = spamflow_stream::replay(&settings, &args.topic, messages, format, args.rate)?;
    // The producer finished because the reader did: joining does not wait.
    reader
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the reading thread panicked")))
        .with_context(|| format!("{sent} messages were sent before the input failed"))?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "replayed {sent} messages to {} in {seconds:.1} s ({:.0} msgs/s)",
        args.topic,
        sent as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// Messages read ahead of the producer by `replay`.
const REPLAY_QUEUE: usize = 64;

/// Gives `send` every message `replay` sends, in order, whole (replay is a loading tool: it
/// sends what it is given): the manifest's rows, or every message of the paths.
fn read_replay_messages(
    args: &ReplayArgs,
    mut send: impl FnMut(ReplayMessage) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    match &args.manifest {
        Some(path) => {
            let split = args.split.as_deref().map_or(Split::All, Split::Named);
            for row in manifest::read(path, split)?.rows {
                send(ReplayMessage {
                    bytes: manifest::read_message(&row, usize::MAX)?,
                    label: Some(ReportedLabel {
                        spam: row.spam,
                        category: row.category,
                    }),
                    key: row.path,
                })?;
            }
            Ok(())
        }
        None => {
            let label = args.label.map(|label| ReportedLabel {
                spam: label == LabelArg::Spam,
                category: None,
            });
            input::for_each_message(&args.paths, usize::MAX, |m| {
                send(ReplayMessage {
                    key: file_name(&m.id),
                    bytes: m.bytes,
                    label,
                })
            })
        }
    }
}

/// The key of a replayed file: its file name (`name#N` for the N-th message of an mbox).
fn file_name(id: &str) -> String {
    Path::new(id)
        .file_name()
        .map_or_else(|| id.to_owned(), |n| n.to_string_lossy().into_owned())
}

pub fn tail(args: &TailArgs) -> anyhow::Result<()> {
    init_logging(false);
    let control = Control::default();
    register_signals(&control)?;
    let settings = ClientSettings {
        brokers: args.brokers.clone(),
        ..ClientSettings::default()
    };
    let stop: &AtomicBool = &control.stop;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    spamflow_stream::tail(
        &settings,
        &args.topic,
        seconds(args.until_idle)?,
        stop,
        &mut out,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spamflow_model::Category;

    fn replay_args(manifest: Option<PathBuf>, paths: Vec<String>) -> ReplayArgs {
        ReplayArgs {
            brokers: "127.0.0.1:9".into(),
            topic: "t".into(),
            manifest,
            split: None,
            rate: None,
            format: FormatArg::Raw,
            label: Some(LabelArg::Ham),
            paths,
        }
    }

    /// Replays `input` with a rate the producer refuses before sending anything, and checks
    /// that the replay fails saying so.
    fn replay_refusing_its_rate(input: &Path) -> anyhow::Result<()> {
        let mut args = replay_args(None, vec![input.display().to_string()]);
        args.rate = Some(0.0);
        let error = replay(&args)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        anyhow::ensure!(
            error.contains("--rate"),
            "replay did not refuse its rate: {error}"
        );
        Ok(())
    }

    #[test]
    fn replay_reads_in_order_and_stops_reading_when_the_producer_stops() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("a.eml"), "Subject: a\n\nA\n")?;
        std::fs::write(dir.path().join("b.eml"), "Subject: b\n\nB\n")?;
        let manifest = dir.path().join("m.csv");
        std::fs::write(
            &manifest,
            "path,label,category\na.eml,spam,pharma\nb.eml,ham,\n",
        )?;
        let mbox = dir.path().join("box.mbox");
        let envelope = "From x@example.com Mon Jan  1 00:00:00 2024\n";
        std::fs::write(
            &mbox,
            format!("{envelope}Subject: 1\n\n1\n\n{envelope}Subject: 2\n\n2\n"),
        )?;

        let mut sent = Vec::new();
        read_replay_messages(&replay_args(Some(manifest.clone()), vec![]), |m| {
            sent.push((m.key, m.label));
            Ok(())
        })?;
        let pharma = |spam| ReportedLabel {
            spam,
            category: spam.then_some(Category::Pharma),
        };
        assert_eq!(
            sent,
            [
                ("a.eml".into(), Some(pharma(true))),
                ("b.eml".into(), Some(pharma(false)))
            ]
        );

        let mut keys = Vec::new();
        let paths = vec![mbox.display().to_string()];
        read_replay_messages(&replay_args(None, paths), |m| {
            assert_eq!(m.label, Some(pharma(false)));
            keys.push(m.key);
            Ok(())
        })?;
        assert_eq!(keys, ["box.mbox#1", "box.mbox#2"]);

        // A producer that stops (its queue closed) ends the reading at the next message.
        let mut calls = 0;
        let stopped = read_replay_messages(&replay_args(Some(manifest), vec![]), |_| {
            calls += 1;
            anyhow::bail!("the producer stopped")
        });
        assert!(stopped.is_err());
        assert_eq!(calls, 1);
        Ok(())
    }

    #[test]
    fn a_producer_error_is_reported_without_waiting_for_idle_input() -> anyhow::Result<()> {
        // The input is a named pipe whose writer stays silent for 5 s: the reading thread waits
        // on it, and a producer that fails at once must not wait with it. (The writer and the
        // reader end on their own when the 5 s are up.)
        let dir = tempfile::tempdir()?;
        let pipe = dir.path().join("idle.pipe");
        let made = std::process::Command::new("mkfifo").arg(&pipe).status()?;
        assert!(made.success(), "mkfifo failed");
        let writer_pipe = pipe.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            let _open = std::fs::OpenOptions::new().write(true).open(writer_pipe)?;
            std::thread::sleep(std::time::Duration::from_secs(5));
            Ok(())
        });
        let started = std::time::Instant::now();
        replay_refusing_its_rate(&pipe)?;
        let waited = started.elapsed();
        assert!(
            waited < std::time::Duration::from_secs(3),
            "replay waited {waited:?} for an idle input after its producer failed"
        );
        Ok(())
    }

    #[test]
    fn a_producer_that_fails_at_once_ends_a_replay_with_more_messages_than_its_queue()
    -> anyhow::Result<()> {
        // More messages than the reading thread may queue, and a rate the producer refuses
        // before sending any: the reader, blocked on the full queue, must be released.
        let dir = tempfile::tempdir()?;
        let envelope = "From x@example.com Mon Jan  1 00:00:00 2024\n";
        let mbox: String = (0..3 * REPLAY_QUEUE)
            .map(|i| format!("{envelope}Subject: {i}\n\n{i}\n\n"))
            .collect();
        let path = dir.path().join("box.mbox");
        std::fs::write(&path, mbox)?;
        replay_refusing_its_rate(&path)
    }
}

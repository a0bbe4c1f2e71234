//! `spamflow dataset export`: the feedback topic as a corpus folder that `train`, `update` and
//! `eval` read.
//!
//! Each distinct message (by SHA-256 of its bytes) is written once, as
//! `messages/<sha256>.eml`; `manifest.csv` lists it with its label, a split and where the
//! reports came from. When reports disagree, the latest one wins (and is counted). The split
//! depends only on the message bytes, so a message keeps its split however the topic grows and
//! however often it is exported.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use spamflow_stream::{ClientSettings, FeedbackReport, ReportedLabel};

/// Arguments of `spamflow dataset`.
#[derive(Debug, clap::Args)]
pub struct DatasetArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Write every committed Feedback report of a topic as a corpus folder with a manifest.
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Feedback topic.
    #[arg(long, default_value = "mail.feedback")]
    topic: String,
    /// Output folder (created; an earlier export there is replaced by this one's manifest).
    #[arg(long)]
    out: PathBuf,
    /// Share of messages put in the `test` split, in percent (by a hash of the bytes).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(0..=100))]
    test_percent: u8,
    /// Give up when the topic shows no progress for this many seconds.
    #[arg(long, default_value_t = 30)]
    stall_secs: u64,
}

/// One distinct message of the export.
#[derive(Debug)]
struct Entry {
    label: ReportedLabel,
    sources: Vec<&'static str>,
    reports: u32,
    conflicting: bool,
}

pub fn run(args: &DatasetArgs) -> anyhow::Result<()> {
    match &args.action {
        Action::Export(export) => run_export(export),
    }
}

fn run_export(args: &ExportArgs) -> anyhow::Result<()> {
    let messages_dir = args.out.join("messages");
    std::fs::create_dir_all(&messages_dir)
        .with_context(|| format!("cannot create {}", messages_dir.display()))?;
    let settings = ClientSettings {
        brokers: args.brokers.clone(),
        ..ClientSettings::default()
    };
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let mut unlabeled = 0u64;
    let mut empty = 0u64;
    let read = spamflow_stream::read_feedback(
        &settings,
        &args.topic,
        Duration::from_secs(args.stall_secs),
        |report: FeedbackReport| {
            let Some(label) = report.label else {
                unlabeled += 1;
                return Ok(());
            };
            if report.raw.is_empty() {
                empty += 1;
                return Ok(());
            }
            let sha = hex::encode(Sha256::digest(&report.raw));
            match entries.get_mut(&sha) {
                Some(entry) => {
                    entry.conflicting |= entry.label.spam != label.spam;
                    entry.label = ReportedLabel {
                        spam: label.spam,
                        category: label
                            .category
                            .or(entry.label.category.filter(|_| label.spam)),
                    };
                    entry.reports += 1;
                    if !entry.sources.contains(&report.source) {
                        entry.sources.push(report.source);
                    }
                }
                None => {
                    write_if_missing(&messages_dir.join(format!("{sha}.eml")), &report.raw)?;
                    entries.insert(
                        sha,
                        Entry {
                            label,
                            sources: vec![report.source],
                            reports: 1,
                            conflicting: false,
                        },
                    );
                }
            }
            Ok(())
        },
    )?;

    let mut manifest = csv::Writer::from_writer(Vec::new());
    manifest.write_record(["path", "label", "split", "category", "source", "reports"])?;
    let (mut test, mut spam) = (0usize, 0usize);
    for (sha, entry) in &entries {
        let split = split_of(sha, args.test_percent);
        test += usize::from(split == "test");
        spam += usize::from(entry.label.spam);
        manifest.write_record([
            format!("messages/{sha}.eml").as_str(),
            if entry.label.spam { "spam" } else { "ham" },
            split,
            entry.label.category.map_or("", |c| c.as_str()),
            &entry.sources.join("+"),
            &entry.reports.to_string(),
        ])?;
    }
    let manifest_path = args.out.join("manifest.csv");
    let bytes = manifest.into_inner().context("cannot build the manifest")?;
    let temporary = args.out.join(".manifest.csv.partial");
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, &manifest_path)
        .with_context(|| format!("cannot write {}", manifest_path.display()))?;
    let conflicts = entries.values().filter(|e| e.conflicting).count();
    let duplicates: u32 = entries.values().map(|e| e.reports - 1).sum();
    writeln!(
        std::io::stdout().lock(),
        "exported {} messages ({} spam, {} ham; {} train, {} test) to {} from {} records of {}: \
         {} duplicate reports merged, {} with conflicting labels (latest kept), {} without a \
         label, {} without message bytes, {} undecodable",
        entries.len(),
        spam,
        entries.len() - spam,
        entries.len() - test,
        test,
        manifest_path.display(),
        read.records,
        args.topic,
        duplicates,
        conflicts,
        unlabeled,
        empty,
        read.undecodable
    )?;
    Ok(())
}

/// `test` for about `test_percent` % of messages, chosen by their SHA-256; `train` otherwise.
fn split_of(sha_hex: &str, test_percent: u8) -> &'static str {
    let bucket = u64::from_str_radix(&sha_hex[..sha_hex.len().min(8)], 16).unwrap_or(0) % 100;
    if bucket < u64::from(test_percent) {
        "test"
    } else {
        "train"
    }
}

/// Writes a content-addressed file unless an earlier export already did.
fn write_if_missing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_depends_on_the_bytes_only_and_honours_the_share() {
        let shas: Vec<String> = (0..2000u32)
            .map(|i| hex::encode(Sha256::digest(i.to_le_bytes())))
            .collect();
        let test = shas.iter().filter(|s| split_of(s, 20) == "test").count();
        assert!((300..500).contains(&test), "{test} of 2000 in test");
        assert!(shas.iter().all(|s| split_of(s, 0) == "train"));
        assert!(shas.iter().all(|s| split_of(s, 100) == "test"));
        assert_eq!(split_of(&shas[7], 20), split_of(&shas[7].clone(), 20));
    }
}

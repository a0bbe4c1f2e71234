//! `spamflow dataset export`: the feedback topic as a corpus folder that `train`, `update` and
//! `eval` read.
//!
//! Each distinct message (by SHA-256 of its bytes) is written once, as
//! `messages/<sha256>.eml`; `manifest.csv` lists it with its label, a split and where the
//! reports came from. When reports disagree, the latest one wins (by report time, then partition
//! and offset; conflicts are counted). The split
//! depends only on the message bytes, so a message keeps its split however the topic grows and
//! however often it is exported.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use spamflow_model::Category;
use spamflow_registry::write_atomically;
use spamflow_stream::{ClientSettings, FeedbackReport};

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

/// When a report was made, then its partition and offset: the order reports are merged in.
type ReportStamp = (i64, (i32, i64));

/// One distinct message of the export.
#[derive(Debug)]
struct Entry {
    /// The label of the latest report: true for spam.
    spam: bool,
    /// When the latest report was made.
    latest: ReportStamp,
    /// The category of the latest report that named one.
    category: Option<(Category, ReportStamp)>,
    sources: BTreeSet<&'static str>,
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
            let stamp = (report.reported_unix_micros, report.position);
            let category = label.category.map(|c| (c, stamp));
            match entries.get_mut(&sha) {
                Some(entry) => {
                    entry.conflicting |= entry.spam != label.spam;
                    if stamp > entry.latest {
                        entry.spam = label.spam;
                        entry.latest = stamp;
                    }
                    if category
                        .is_some_and(|(_, at)| entry.category.is_none_or(|(_, seen)| at > seen))
                    {
                        entry.category = category;
                    }
                    entry.reports += 1;
                    entry.sources.insert(report.source);
                }
                None => {
                    let path = messages_dir.join(format!("{sha}.eml"));
                    if !path.exists() {
                        write_atomically(&path, &report.raw).map_err(std::io::Error::other)?;
                    }
                    entries.insert(
                        sha,
                        Entry {
                            spam: label.spam,
                            latest: stamp,
                            category,
                            sources: BTreeSet::from([report.source]),
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
        spam += usize::from(entry.spam);
        manifest.write_record([
            format!("messages/{sha}.eml").as_str(),
            if entry.spam { "spam" } else { "ham" },
            split,
            entry
                .category
                .filter(|_| entry.spam)
                .map_or("", |(c, _)| c.as_str()),
            &entry.sources.iter().copied().collect::<Vec<_>>().join("+"),
            &entry.reports.to_string(),
        ])?;
    }
    let manifest_path = args.out.join("manifest.csv");
    let bytes = manifest.into_inner().context("cannot build the manifest")?;
    write_atomically(&manifest_path, &bytes)?;
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

//! End-to-end tests of the retraining loop on a real local Kafka broker (see `support.rs`):
//! trap accounts becoming feedback, feedback exported as a corpus, shadow scoring, and
//! promotion and rollback through the model registry while `spamflow run` serves.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failing loudly is the point

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use prost::Message as _;
use spamflow_e2e::*;
use spamflow_proto::v1;

/// A small hand-written message.
fn note(i: usize, to: &str) -> Vec<u8> {
    format!(
        "From: sender{i}@example.org\r\nTo: {to}\r\nSubject: note {i}\r\nMessage-ID: <n{i}@example.org>\r\n\r\nhello number {i}\r\n"
    )
    .into_bytes()
}

fn inbound(id: &str, raw: Vec<u8>, recipients: &[&str]) -> Option<Vec<u8>> {
    let envelope = (!recipients.is_empty()).then(|| v1::SmtpEnvelope {
        recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
        ..v1::SmtpEnvelope::default()
    });
    Some(
        v1::InboundMail {
            message_id: id.to_owned(),
            raw,
            envelope,
        }
        .encode_to_vec(),
    )
}

/// `spamflow replay --format feedback` into `topic`, plus `args`.
fn replay_feedback(topic: &str, args: &[&str]) {
    let brokers = brokers();
    let mut all = vec!["replay", "--brokers", &brokers, "--topic", topic];
    all.extend(["--format", "feedback"]);
    all.extend(args);
    spamflow_ok(&all);
}

/// `spamflow dataset export` of `topic` into `out`, plus `args`; returns its report.
fn export_feedback(topic: &str, out: &std::path::Path, args: &[&str]) -> String {
    let brokers = brokers();
    let mut all = vec!["dataset", "export", "--brokers", &brokers, "--topic", topic];
    all.extend(["--out", out.to_str().unwrap()]);
    all.extend(args);
    spamflow_ok(&all)
}

#[test]
fn trap_hits_become_spam_feedback_and_feedback_exports_as_a_corpus() {
    let (input, output, dead, feedback) = (
        unique("trap-in"),
        unique("trap-out"),
        unique("trap-dead"),
        unique("trap-feedback"),
    );
    create_topics(&[(&input, 2), (&output, 2), (&dead, 1), (&feedback, 2)]);
    let dir = tempfile::tempdir().unwrap();

    // 24 messages: envelope recipients decide where there are some, otherwise the receiving
    // server's `Delivered-To`; a trap address in `To` (the sender's words) never counts.
    let mut records = Vec::new();
    let mut expected_hits: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..24 {
        let id = format!("m-{i}");
        let (raw, recipients, hit) = match i % 6 {
            0 => (
                note(i, "x@example.org"),
                vec!["bait@spamflow-trap.test"],
                true,
            ),
            1 => (
                note(i, "x@example.org"),
                vec!["anyone@TRAPS.spamflow.test"],
                true,
            ),
            2 => (
                note(i, "bait@spamflow-trap.test"),
                vec!["user@example.org"],
                false,
            ),
            3 => {
                let mut raw = b"Delivered-To: Someone@traps.spamflow.test\r\n".to_vec();
                raw.extend(note(i, "someone@example.org"));
                (raw, vec![], true)
            }
            4 => (note(i, "user@example.org"), vec!["user@example.org"], false),
            _ => (
                note(i, "Someone <someone@traps.spamflow.test>"),
                vec![],
                false,
            ),
        };
        if hit {
            expected_hits.insert(id.clone(), raw.clone());
        }
        records.push((id.clone(), inbound(&id, raw, &recipients)));
    }
    // The same message reaching a trap again under another id: one corpus entry, two reports.
    let again = expected_hits["m-0"].clone();
    expected_hits.insert("m-again".into(), again.clone());
    records.push((
        "m-again".into(),
        inbound("m-again", again, &["bait@spamflow-trap.test"]),
    ));
    produce(&input, records);

    let config = run_config(
        dir.path(),
        "run",
        (&input, &output, &dead),
        &format!(
            "input_format = \"protobuf\"\nfeedback_topic = \"{feedback}\"\n\
             trap_recipients = [\"bait@spamflow-trap.test\", \"@traps.spamflow.test\"]\n\
             http_listen = \"\""
        ),
    );
    let service = Service::start(&config, &["--until-idle", "5"], &dir.path().join("run.log"));
    let (ok, summary) = service.wait(Duration::from_secs(120));
    assert!(ok, "spamflow run failed: {summary}");
    assert!(summary.contains("13 trap hits"), "{summary}");

    // Every message is labeled as usual; trap hits also become spam feedback.
    assert_eq!(read_committed(&output).len(), 25);
    let reports: BTreeMap<String, v1::Feedback> = read_committed(&feedback)
        .into_iter()
        .map(|r| {
            let f = v1::Feedback::decode(r.value.as_slice()).unwrap();
            assert_eq!(r.key.as_deref(), Some(f.message_id.as_bytes()));
            (f.message_id.clone(), f)
        })
        .collect();
    assert_eq!(
        reports.keys().collect::<Vec<_>>(),
        expected_hits.keys().collect::<Vec<_>>()
    );
    for (id, report) in &reports {
        assert_eq!(report.label(), v1::Label::Spam, "{id}");
        assert_eq!(report.source(), v1::FeedbackSource::TrapAccount, "{id}");
        assert_eq!(
            report.raw, expected_hits[id],
            "{id}: the message bytes are kept"
        );
        assert!(!report.model_id.is_empty());
    }

    // User reports arrive on the same topic; one contradicts a trap hit (the latest wins).
    let ham_file = dir.path().join("ham.eml");
    std::fs::write(&ham_file, note(100, "me@example.org")).unwrap();
    let contradicted = dir.path().join("contradicted.eml");
    std::fs::write(&contradicted, &expected_hits["m-1"]).unwrap();
    for file in [&ham_file, &contradicted] {
        replay_feedback(&feedback, &["--label", "ham", file.to_str().unwrap()]);
    }

    let corpus = dir.path().join("corpus");
    let printed = export_feedback(&feedback, &corpus, &[]);
    assert!(printed.contains("exported 13 messages"), "{printed}");
    assert!(printed.contains("2 duplicate reports merged"), "{printed}");
    assert!(printed.contains("1 with conflicting labels"), "{printed}");
    let mut reader = csv::Reader::from_path(corpus.join("manifest.csv")).unwrap();
    let rows: Vec<HashMap<String, String>> = reader.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 13);
    let spam = rows.iter().filter(|r| r["label"] == "spam").count();
    assert_eq!(
        spam, 11,
        "12 distinct trap messages, one later reported as ham"
    );
    for row in &rows {
        let bytes = std::fs::read(corpus.join(&row["path"])).unwrap();
        assert!(["train", "test"].contains(&row["split"].as_str()));
        if bytes == expected_hits["m-0"] {
            assert_eq!(
                (row["reports"].as_str(), row["label"].as_str()),
                ("2", "spam")
            );
            assert_eq!(row["source"], "trap_account");
        }
        if bytes == expected_hits["m-1"] {
            assert_eq!(row["label"], "ham");
            assert_eq!(row["source"], "trap_account+user_report");
        }
    }
    // Exporting again gives the same manifest: the split rule is deterministic.
    let before = std::fs::read(corpus.join("manifest.csv")).unwrap();
    export_feedback(&feedback, &corpus, &[]);
    assert_eq!(std::fs::read(corpus.join("manifest.csv")).unwrap(), before);
}

#[test]
fn shadow_mode_publishes_only_serving_verdicts_and_exports_agreement() {
    let (input, output, dead) = service_topics("shadow", 2);
    let dir = tempfile::tempdir().unwrap();
    // A candidate that calls every message spam: it disagrees on exactly the serving hams.
    let shadow = dir.path().join("shadow.spamflow");
    std::fs::write(&shadow, model_variant("sf-shadow-test", Some(0.0))).unwrap();
    // Every fourth test message: ham and spam of every subset.
    let files: Vec<(String, Option<Vec<u8>>)> = split_files("test")
        .into_iter()
        .step_by(4)
        .map(|(path, file)| (path, Some(std::fs::read(file).unwrap())))
        .collect();
    let total = files.len() as f64;
    produce(&input, files);
    let (service, http) = Service::with_metrics(
        dir.path(),
        (&input, &output, &dead),
        &format!("shadow_model = \"{}\"", shadow.display()),
        &[],
    );
    let both = |serving: &str, shadow: &str| {
        scrape(
            &http,
            "spamflow_shadow_verdicts_total",
            &format!("serving=\"{serving}\",shadow=\"{shadow}\""),
        )
    };
    wait_until(
        "every message shadow-scored",
        Duration::from_secs(120),
        || scrape(&http, "spamflow_shadow_verdicts_total", "") >= total,
    );
    let body = http_get(&http, "/metrics").unwrap().1;
    let serving_spam = metric_sum(&body, "spamflow_verdicts_total", "verdict=\"spam\"");
    let serving_ham = metric_sum(&body, "spamflow_verdicts_total", "verdict=\"ham\"");
    assert_eq!(serving_spam + serving_ham, total);
    assert!(serving_spam > 0.0 && serving_ham > 0.0);
    assert_eq!(both("spam", "spam"), serving_spam);
    assert_eq!(both("ham", "spam"), serving_ham);
    assert_eq!(both("spam", "ham") + both("ham", "ham"), 0.0);
    assert_eq!(
        metric_sum(&body, "spamflow_shadow_probability_difference_count", ""),
        total
    );
    assert_eq!(
        metric_sum(
            &body,
            "spamflow_shadow_categories_total",
            "agreement=\"agree\""
        ),
        serving_spam,
        "same category weights: every category agrees"
    );
    assert_eq!(
        metric_sum(&body, "spamflow_shadow_model_info", "sf-shadow-test"),
        1.0
    );
    service.stop();

    // Only the serving model's verdicts are published.
    let events = labeled_events(&output);
    assert_eq!(events.len() as f64, total);
    assert!(events.iter().all(|e| e.model_id != "sf-shadow-test"));
    let published_spam = events
        .iter()
        .filter(|e| e.verdict() == v1::Verdict::Spam)
        .count();
    assert_eq!(published_spam as f64, serving_spam);
}

#[test]
fn promote_and_rollback_switch_the_served_model_without_loss_or_duplicates() {
    let (input, output, dead) = service_topics("registry", 3);
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let registry_arg = registry.to_str().unwrap();
    let (first, second) = (dir.path().join("a.spamflow"), dir.path().join("b.spamflow"));
    std::fs::write(&first, model_variant("sf-registry-a", None)).unwrap();
    std::fs::write(&second, model_variant("sf-registry-b", None)).unwrap();
    let added = spamflow_ok(&[
        "models",
        "--registry",
        registry_arg,
        "add",
        first.to_str().unwrap(),
        "--promote",
    ]);
    assert!(added.contains("serving sf-registry-a"), "{added}");
    spamflow_ok(&[
        "models",
        "--registry",
        registry_arg,
        "add",
        second.to_str().unwrap(),
    ]);
    let listed = spamflow_ok(&["models", "--registry", registry_arg, "list"]);
    assert!(listed.contains("* sf-registry-a"), "{listed}");
    assert!(listed.contains("  sf-registry-b"), "{listed}");
    // Each row shows the size of the registered file, in MB.
    let first_mb = format!(
        "{:.2}",
        std::fs::metadata(&first).unwrap().len() as f64 / 1e6
    );
    let first_row = listed
        .lines()
        .find(|line| line.contains("sf-registry-a"))
        .unwrap_or_default();
    assert!(
        first_row.split_whitespace().any(|field| field == first_mb),
        "{first_mb} MB in {listed}"
    );

    let (service, http) = Service::with_metrics(
        dir.path(),
        (&input, &output, &dead),
        &format!("model_registry = \"{registry_arg}\"\nmodel_check_secs = 1"),
        &[],
    );
    let messages: Vec<(String, Option<Vec<u8>>)> = split_files("test")
        .into_iter()
        .cycle()
        .take(2400)
        .enumerate()
        .map(|(i, (_, file))| (format!("k-{i}"), Some(std::fs::read(file).unwrap())))
        .collect();
    let total = messages.len();
    // 2,400 messages at 120 per second: promotion and rollback land while input flows.
    let feeder = std::thread::spawn({
        let input = input.clone();
        move || produce_paced(&input, messages, Some(120.0))
    });
    let serving = |id: &str| scrape(&http, "spamflow_model_info", &format!("\"{id}\"")) == 1.0;
    let produced = || scrape(&http, "spamflow_produced_total", "");
    wait_until("a quarter of the input", Duration::from_secs(60), || {
        produced() >= total as f64 / 4.0
    });
    // Switches the registry with `action`, waits until the service serves `now`, then until a
    // quarter of the input more is through.
    let switch = |action: &[&str], now: &str, was: &str| {
        let mut args = vec!["models", "--registry", registry_arg];
        args.extend(action);
        let printed = spamflow_ok(&args);
        assert!(
            printed.contains(&format!("serving {now} (was {was})")),
            "{printed}"
        );
        wait_until(now, Duration::from_secs(30), || serving(now));
        let at_switch = produced();
        wait_until("more input", Duration::from_secs(60), || {
            produced() >= at_switch + total as f64 / 4.0
        });
        at_switch
    };
    switch(
        &["promote", "sf-registry-b"],
        "sf-registry-b",
        "sf-registry-a",
    );
    let at_rollback = switch(&["rollback"], "sf-registry-a", "sf-registry-b");
    feeder.join().unwrap();
    assert!(
        at_rollback < total as f64,
        "the rollback landed while input was still flowing"
    );
    wait_until("every message", Duration::from_secs(120), || {
        produced() >= total as f64
    });
    service.stop();

    // Exactly one event per message; per partition the model goes a, then b, then a again.
    let records = read_committed(&output);
    let mut per_key: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut sequences: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for record in &records {
        *per_key.entry(record.key.clone().unwrap()).or_default() += 1;
        let model = record
            .headers
            .iter()
            .find(|(k, _)| k == "spamflow-model")
            .map(|(_, v)| v.clone())
            .unwrap();
        let sequence = sequences.entry(record.partition).or_default();
        if sequence.last() != Some(&model) {
            sequence.push(model);
        }
    }
    assert_eq!(per_key.len(), total, "no message lost");
    assert!(per_key.values().all(|&n| n == 1), "no message duplicated");
    for (partition, sequence) in &sequences {
        assert_eq!(
            sequence,
            &["sf-registry-a", "sf-registry-b", "sf-registry-a"],
            "partition {partition}"
        );
    }
}

/// Writes a manifest of the shared corpus' rows of `subsets` and `split` with absolute paths.
fn corpus_manifest(out: &std::path::Path, subsets: &[&str], split: &str) -> usize {
    let corpus = corpus();
    let mut reader = csv::Reader::from_path(corpus.join("manifest.csv")).unwrap();
    let mut writer = csv::Writer::from_path(out).unwrap();
    writer
        .write_record(["path", "label", "split", "category"])
        .unwrap();
    let mut rows = 0;
    for row in reader.deserialize::<HashMap<String, String>>() {
        let row = row.unwrap();
        if subsets.contains(&row["subset"].as_str()) && row["split"] == split {
            let path = corpus.join(&row["path"]);
            writer
                .write_record([
                    path.to_str().unwrap(),
                    &row["label"],
                    &row["split"],
                    &row["category"],
                ])
                .unwrap();
            rows += 1;
        }
    }
    writer.flush().unwrap();
    rows
}

/// `spamflow eval` JSON of `model` on `manifest` (split `test`).
fn evaluate(model: &std::path::Path, manifest: &std::path::Path) -> serde_json::Value {
    let json = model.with_extension("eval.json");
    spamflow_ok(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap()
}

/// Runs `spamflow ARGS...` and returns how long it took.
fn timed(args: &[&str]) -> Duration {
    let started = std::time::Instant::now();
    spamflow_ok(args);
    started.elapsed()
}

#[test]
fn drift_feedback_through_kafka_updates_the_model_and_improves_on_later_mail() {
    const OLD: [&str; 2] = ["spam", "easy_ham"];
    const LATER: [&str; 3] = ["spam_2", "hard_ham", "easy_ham_2"];
    let feedback = unique("drift-feedback");
    create_topics(&[(&feedback, 3)]);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let text = |p: &std::path::PathBuf| p.to_str().unwrap().to_owned();
    assert!(corpus_manifest(&path("old.csv"), &OLD, "train") > 2000);
    assert!(corpus_manifest(&path("later-test.csv"), &LATER, "test") > 500);
    let later_train = corpus_manifest(&path("later-train.csv"), &LATER, "train");

    // Last year's model: trained on the old subsets only.
    spamflow_ok(&[
        "train",
        "--manifest",
        &text(&path("old.csv")),
        "--out",
        &text(&path("old.spamflow")),
    ]);
    let before = evaluate(&path("old.spamflow"), &path("later-test.csv"));

    // This year's reports arrive as Feedback on the broker and are exported as a corpus.
    replay_feedback(&feedback, &["--manifest", &text(&path("later-train.csv"))]);
    let exported = export_feedback(&feedback, &path("feedback"), &["--test-percent", "0"]);
    let manifest = path("feedback").join("manifest.csv");
    let rows = csv::Reader::from_path(&manifest).unwrap().records().count();
    assert!(
        rows > later_train * 9 / 10 && rows <= later_train,
        "{exported}"
    );

    // Incremental update from the exported feedback, and a full retrain on old + new data.
    let update_time = timed(&[
        "update",
        "--model",
        &text(&path("old.spamflow")),
        "--manifest",
        &text(&manifest),
        "--out",
        &text(&path("updated.spamflow")),
    ]);
    let retrain_time = timed(&[
        "train",
        "--manifest",
        &text(&path("old.csv")),
        "--manifest",
        &text(&manifest),
        "--out",
        &text(&path("retrained.spamflow")),
    ]);
    let after = evaluate(&path("updated.spamflow"), &path("later-test.csv"));
    let metric = |v: &serde_json::Value, key: &str| v["spam"][key].as_f64().unwrap();
    let line = |v: &serde_json::Value| {
        format!(
            "1-AUC {:.3} %, recall {:.3} at FPR {:.4}, recall {:.3} at FPR <= 0.1 %",
            metric(v, "one_minus_auc_pct"),
            metric(v, "recall"),
            metric(v, "fpr"),
            metric(v, "recall_at_fpr_0_1pct")
        )
    };
    eprintln!(
        "drift: old model {}; updated {}; update {:.1} s, full retrain {:.1} s",
        line(&before),
        line(&after),
        update_time.as_secs_f64(),
        retrain_time.as_secs_f64()
    );
    assert!(
        metric(&after, "one_minus_auc_pct") < metric(&before, "one_minus_auc_pct") * 0.8,
        "the update ranks later mail better"
    );
    assert!(
        metric(&after, "recall_at_fpr_0_1pct") > metric(&before, "recall_at_fpr_0_1pct"),
        "the update catches more later spam at a low false-positive rate"
    );
    assert!(
        metric(&after, "fpr") <= metric(&before, "fpr") + 0.01,
        "without flagging much more ham"
    );
    assert!(
        retrain_time >= update_time * 5,
        "update {update_time:?} is not 5x faster than a full retrain {retrain_time:?}"
    );

    // The promotion gate accepts the update over the old model on later mail.
    let compared = std::process::Command::new(spamflow())
        .args(["compare", "--current", &text(&path("old.spamflow"))])
        .args(["--candidate", &text(&path("updated.spamflow"))])
        .args(["--manifest", &text(&path("later-test.csv"))])
        .output()
        .unwrap();
    assert_eq!(
        compared.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&compared.stdout)
    );
}

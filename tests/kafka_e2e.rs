//! End to end on the real broker: the test split through `spamflow run` matches `spamflow
//! classify`, exactly one event per key, with matching metrics; malformed records become dead
//! letters or flagged verdicts and the partition keeps moving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use prost::Message as _;
use spamflow_e2e::*;
use spamflow_proto::v1;

#[test]
fn test_split_is_labeled_exactly_once_like_classify_with_matching_metrics() {
    let (input, output, dead) = (unique("in"), unique("out"), unique("dead"));
    create_topics(&[(&input, 6), (&output, 6), (&dead, 1)]);
    const CATEGORIES: [&str; 7] = [
        "pharma", "mortgage", "software", "stock", "adult", "fraud", "other",
    ];
    let category_topics: Vec<String> = CATEGORIES.iter().map(|c| format!("{output}.{c}")).collect();
    create_topics(
        &category_topics
            .iter()
            .map(|t| (t.as_str(), 1))
            .collect::<Vec<_>>(),
    );
    let files = split_files("test");
    assert_eq!(files.len(), 1185);

    let replay = Command::new(spamflow())
        .args([
            "replay",
            "--brokers",
            &brokers(),
            "--topic",
            &input,
            "--manifest",
        ])
        .arg(corpus().join("manifest.csv"))
        .args(["--split", "test"])
        .status()
        .unwrap();
    assert!(replay.success());

    let dir = tempfile::tempdir().unwrap();
    let (service, http) = Service::with_metrics(
        dir.path(),
        (&input, &output, &dead),
        &format!("batch_max_messages = 200\ncategory_topic = \"{output}.{{category}}\""),
        &["--until-idle", "8"],
    );

    // Scrape /metrics while the service runs, until every record is counted.
    let deadline = Instant::now() + Duration::from_secs(240);
    let metrics = loop {
        assert!(
            Instant::now() < deadline,
            "the service did not consume 1185 records in time"
        );
        if let Some((200, body)) = http_get(&http, "/metrics")
            && metric_sum(&body, "spamflow_produced_total", "") >= 1185.0
        {
            break body;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(http_get(&http, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(http_get(&http, "/readyz").map(|r| r.0), Some(200));
    assert_eq!(metric_sum(&metrics, "spamflow_consumed_total", ""), 1185.0);
    assert_eq!(metric_sum(&metrics, "spamflow_produced_total", ""), 1185.0);
    assert_eq!(metric_sum(&metrics, "spamflow_verdicts_total", ""), 1185.0);
    assert_eq!(metric_sum(&metrics, "spamflow_dead_letters_total", ""), 0.0);
    assert!(metric_sum(&metrics, "spamflow_transactions_total", "commit") >= 6.0);
    assert_eq!(metric_sum(&metrics, "spamflow_model_info", "sf-"), 1.0);
    assert!(metric_sum(&metrics, "spamflow_stage_seconds_count", "score") >= 6.0);
    let spam_counted = metric_sum(&metrics, "spamflow_verdicts_total", "\"spam\"");
    let categories_counted = metric_sum(&metrics, "spamflow_categories_total", "");
    assert_eq!(spam_counted, categories_counted);

    let (ok, stdout) = service.wait(Duration::from_secs(120));
    assert!(
        ok,
        "spamflow run failed; log: {}",
        std::fs::read_to_string(dir.path().join("run.log")).unwrap_or_default()
    );
    assert!(stdout.contains("consumed 1185 records in "), "{stdout}");

    // Exactly one committed event per input key.
    let records = read_committed(&output);
    assert_eq!(records.len(), 1185);
    let mut events: HashMap<String, (v1::LabeledMail, Vec<(String, String)>)> = HashMap::new();
    for record in records {
        let key = String::from_utf8(record.key.unwrap()).unwrap();
        let event = v1::LabeledMail::decode(record.value.as_slice()).unwrap();
        assert!(
            events
                .insert(key.clone(), (event, record.headers))
                .is_none(),
            "{key} twice"
        );
    }
    let keys: HashSet<&String> = files.iter().map(|(path, _)| path).collect();
    assert_eq!(events.keys().collect::<HashSet<_>>(), keys);

    // The same verdicts and categories as `spamflow classify` on the same files.
    let classify = Command::new(spamflow())
        .arg("classify")
        .args(files.iter().map(|(path, _)| path))
        .current_dir(corpus())
        .output()
        .unwrap();
    assert!(classify.status.success());
    let mut spam = 0;
    for line in String::from_utf8(classify.stdout).unwrap().lines() {
        let expected: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = expected["id"].as_str().unwrap();
        let (event, headers) = &events[id];
        let line = spamflow_e2e_json(event);
        assert_eq!(line["verdict"], expected["verdict"], "{id}");
        assert_eq!(line["category"], expected["category"], "{id}");
        let probability = |v: &serde_json::Value| v["spam_probability"].as_f64().unwrap();
        assert!(
            (probability(&line) - probability(&expected)).abs() < 1e-6,
            "{id}"
        );
        assert_eq!(line["model_id"], expected["model_id"], "{id}");
        let header = |name: &str| headers.iter().find(|h| h.0 == name).map(|h| h.1.as_str());
        assert_eq!(
            header("spamflow-verdict"),
            expected["verdict"].as_str(),
            "{id}"
        );
        assert_eq!(
            header("spamflow-category"),
            expected["category"].as_str(),
            "{id}"
        );
        spam += usize::from(expected["verdict"] == "spam");
    }
    assert_eq!(spam as f64, spam_counted);

    // With `category_topic`, every spam event is also on its category's topic.
    let mut routed = 0;
    for (category, topic) in CATEGORIES.iter().zip(&category_topics) {
        for record in read_committed(topic) {
            let key = String::from_utf8(record.key.unwrap()).unwrap();
            let expected = spamflow_e2e_json(&events[&key].0);
            assert_eq!(expected["verdict"], "spam", "{key} routed to {topic}");
            assert_eq!(expected["category"], *category, "{key} routed to {topic}");
            routed += 1;
        }
    }
    assert_eq!(routed, spam);

    // `tail` prints the committed events with the classify field names plus message_id.
    let tail = Command::new(spamflow())
        .args([
            "tail",
            "--brokers",
            &brokers(),
            "--topic",
            &output,
            "--until-idle",
            "3",
        ])
        .output()
        .unwrap();
    assert!(tail.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(tail.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1185);
    for field in [
        "id",
        "message_id",
        "verdict",
        "spam_probability",
        "category",
        "category_scores",
        "top_features",
        "flags",
        "model_id",
    ] {
        assert!(
            lines[0].get(field).is_some(),
            "tail lacks {field}: {}",
            lines[0]
        );
    }
}

/// The verdict fields of an event in `classify`'s JSON shape.
fn spamflow_e2e_json(event: &v1::LabeledMail) -> serde_json::Value {
    let category = match event.category() {
        v1::Category::Unspecified => serde_json::Value::Null,
        other => other
            .as_str_name()
            .trim_start_matches("CATEGORY_")
            .to_ascii_lowercase()
            .into(),
    };
    serde_json::json!({
        "verdict": if event.verdict() == v1::Verdict::Spam { "spam" } else { "ham" },
        "category": category,
        "spam_probability": event.spam_probability,
        "model_id": event.model_id,
    })
}

/// Runs one `spamflow run` over a single-partition topic and returns the committed labeled events
/// and dead letters in input order.
fn run_over(
    format: &str,
    records: Vec<(String, Option<Vec<u8>>)>,
) -> (Vec<v1::LabeledMail>, Vec<v1::DeadLetter>) {
    let (input, output, dead) = service_topics("bad", 1);
    produce(&input, records);
    let dir = tempfile::tempdir().unwrap();
    let config = run_config(
        dir.path(),
        "run",
        (&input, &output, &dead),
        &format!(
            "input_format = \"{format}\"\nhttp_listen = \"\"\nmax_message_bytes = 65536\ndead_letter_max_bytes = 1000"
        ),
    );
    let service = Service::start(&config, &["--until-idle", "5"], &dir.path().join("run.log"));
    let (ok, _) = service.wait(Duration::from_secs(120));
    assert!(
        ok,
        "{}",
        std::fs::read_to_string(dir.path().join("run.log")).unwrap_or_default()
    );
    let labeled = labeled_events(&output);
    let dead = read_committed(&dead)
        .into_iter()
        .map(|r| v1::DeadLetter::decode(r.value.as_slice()).unwrap())
        .collect();
    (labeled, dead)
}

fn pseudo_random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn malformed_raw_records_become_dead_letters_or_flagged_verdicts() {
    let mut big = b"Subject: a very long message\r\n\r\n".to_vec();
    big.extend(std::iter::repeat_n(b"lorem ipsum dolor ".as_slice(), 20_000).flatten());
    let (labeled, dead) = run_over(
        "raw",
        vec![
            ("random".into(), Some(pseudo_random_bytes(4000, 7))),
            ("no-value".into(), None),
            ("empty".into(), Some(Vec::new())),
            ("oversized".into(), Some(big)),
            (
                "good".into(),
                Some(b"Subject: lunch\r\n\r\nSee you at noon.".to_vec()),
            ),
        ],
    );
    let ids: Vec<&str> = labeled.iter().map(|e| e.message_id.as_str()).collect();
    assert_eq!(ids, ["random", "oversized", "good"]);
    assert!(
        labeled[0].flags.iter().any(|f| f == "no_headers"),
        "{:?}",
        labeled[0].flags
    );
    assert!(
        labeled[1].flags.iter().any(|f| f == "message_truncated"),
        "{:?}",
        labeled[1].flags
    );
    let kinds: Vec<(Vec<u8>, v1::ErrorKind)> = dead
        .iter()
        .map(|d| (d.original_key.clone(), d.error_kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            (b"no-value".to_vec(), v1::ErrorKind::Empty),
            (b"empty".to_vec(), v1::ErrorKind::Empty)
        ]
    );
    assert!(
        dead.iter()
            .all(|d| d.source.as_ref().is_some_and(|s| s.offset >= 0))
    );
}

#[test]
fn malformed_protobuf_records_become_dead_letters() {
    let good = v1::InboundMail {
        message_id: "pb-good".into(),
        raw: b"Subject: hello\r\n\r\nA normal message.".to_vec(),
        envelope: None,
    }
    .encode_to_vec();
    let truncated = good[..good.len() - 5].to_vec();
    let (labeled, dead) = run_over(
        "protobuf",
        vec![
            ("truncated".into(), Some(truncated.clone())),
            ("garbage".into(), Some(vec![0xff; 64])),
            ("no-value".into(), None),
            ("good".into(), Some(good)),
        ],
    );
    assert_eq!(
        labeled
            .iter()
            .map(|e| e.message_id.as_str())
            .collect::<Vec<_>>(),
        ["pb-good"]
    );
    let kinds: Vec<(Vec<u8>, v1::ErrorKind)> = dead
        .iter()
        .map(|d| (d.original_key.clone(), d.error_kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            (b"truncated".to_vec(), v1::ErrorKind::UndecodableProtobuf),
            (b"garbage".to_vec(), v1::ErrorKind::UndecodableProtobuf),
            (b"no-value".to_vec(), v1::ErrorKind::Empty),
        ]
    );
    assert_eq!(dead[0].original, truncated, "the original bytes are kept");
}

#[test]
fn sighup_reloads_the_model_and_a_bad_file_is_refused_while_serving() {
    let (input, output, dead) = service_topics("reload", 1);
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("current.spamflow");
    let good = std::fs::read(root().join("models/default.spamflow")).unwrap();
    std::fs::write(&model, &good).unwrap();
    // The same weights under another id: a valid candidate whose events are recognisable.
    let candidate = model_variant("sf-reload-test", None);
    let (service, http) = Service::with_metrics(
        dir.path(),
        (&input, &output, &dead),
        &format!("model = \"{}\"\nmodel_check_secs = 0", model.display()),
        &[],
    );
    let message = |n: usize| (format!("r-{n}"), Some(b"Subject: hi\r\n\r\nhello".to_vec()));
    let reloads = |outcome: &str| {
        scrape(
            &http,
            "spamflow_model_reloads_total",
            &format!("outcome=\"{outcome}\""),
        )
    };
    let wait_for = |condition: &dyn Fn() -> bool| {
        wait_until("the service", Duration::from_secs(60), condition)
    };
    let produced = || scrape(&http, "spamflow_produced_total", "");
    produce(&input, [message(0)]);
    wait_for(&|| produced() >= 1.0);

    // A corrupt file on SIGHUP is refused; the running model keeps serving.
    std::fs::write(&model, &good[..good.len() / 3]).unwrap();
    service.signal("HUP");
    wait_for(&|| reloads("refused") >= 1.0);
    produce(&input, [message(1)]);
    wait_for(&|| produced() >= 2.0);

    // A valid file on SIGHUP is loaded and scores from then on.
    std::fs::write(&model, &candidate).unwrap();
    service.signal("HUP");
    wait_for(&|| reloads("loaded") >= 1.0);
    produce(&input, [message(2)]);
    wait_for(&|| produced() >= 3.0);
    let metrics = http_get(&http, "/metrics").map(|r| r.1).unwrap_or_default();
    assert_eq!(
        metric_sum(&metrics, "spamflow_model_info", "sf-reload-test"),
        1.0
    );
    service.stop();

    let events = labeled_events(&output);
    let ids: Vec<&str> = events.iter().map(|e| e.model_id.as_str()).collect();
    assert_eq!(
        ids[..2],
        [ids[0], ids[0]],
        "the refused file changed nothing"
    );
    assert_ne!(ids[0], "sf-reload-test");
    assert_eq!(ids[2], "sf-reload-test");
}

#[test]
fn replay_of_files_as_protobuf_is_labeled_under_file_names() {
    let (input, output, dead) = service_topics("pb", 2);
    let files: Vec<std::path::PathBuf> = split_files("test")
        .into_iter()
        .take(20)
        .map(|(_, f)| f)
        .collect();
    let replay = Command::new(spamflow())
        .args(["replay", "--brokers", &brokers(), "--topic", &input])
        .args(["--format", "protobuf"])
        .args(&files)
        .status()
        .unwrap();
    assert!(replay.success());
    let dir = tempfile::tempdir().unwrap();
    let config = run_config(
        dir.path(),
        "run",
        (&input, &output, &dead),
        "input_format = \"protobuf\"\nhttp_listen = \"\"",
    );
    let service = Service::start(&config, &["--until-idle", "5"], &dir.path().join("run.log"));
    let (ok, _) = service.wait(Duration::from_secs(120));
    assert!(ok);
    let mut ids: Vec<String> = read_committed(&output)
        .into_iter()
        .map(|r| {
            v1::LabeledMail::decode(r.value.as_slice())
                .unwrap()
                .message_id
        })
        .collect();
    ids.sort();
    let mut names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        ids, names,
        "one event per file, named by the InboundMail message id"
    );
    assert!(read_committed(&dead).is_empty());
}

//! End-to-end tests of the `spamflow` binary on a slice of the shared SpamAssassin corpus
//! (`../shared/corpora/spamassassin`, beside the repository, as on CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/spamassassin");
    assert!(
        dir.join("manifest.csv").is_file(),
        "the shared corpus is missing at {}",
        dir.display()
    );
    dir
}

fn spamflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spamflow"))
        .args(args)
        .output()
        .expect("run spamflow")
}

fn ok(args: &[&str]) -> String {
    let output = spamflow(args);
    assert!(
        output.status.success(),
        "spamflow {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 stdout")
}

/// `spamflow COMMAND --manifest MANIFEST --out OUT --threads 2 EXTRA...` (`train` or `update`),
/// which must succeed; its stdout.
fn build(command: &str, manifest: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        command,
        "--manifest",
        manifest.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

/// A manifest with every `step`-th row of the shared manifest (all columns kept), written next
/// to absolute paths so it can live in a temporary folder.
fn slice_manifest(dir: &Path, step: usize) -> PathBuf {
    slice_manifest_from(dir, "slice.csv", step, 0)
}

/// Every `step`-th row of the shared manifest starting at row `offset`, with absolute paths,
/// written to `dir/name`.
fn slice_manifest_from(dir: &Path, name: &str, step: usize, offset: usize) -> PathBuf {
    let corpus = corpus();
    let text = std::fs::read_to_string(corpus.join("manifest.csv")).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for line in lines.skip(offset).step_by(step) {
        let (path, rest) = line.split_once(',').unwrap();
        out.push_str(&format!("{},{rest}\n", corpus.join(path).display()));
    }
    let manifest = dir.join(name);
    std::fs::write(&manifest, out).unwrap();
    manifest
}

#[test]
fn train_eval_classify_inspect_on_a_corpus_slice() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = slice_manifest(dir.path(), 6);
    let model = dir.path().join("slice.spamflow");
    let options = dir.path().join("options.toml");
    std::fs::write(
        &options,
        "folds = 3\nmax_features = 3000\nsubword_vocab_size = 2000\n",
    )
    .unwrap();
    let m = manifest.to_str().unwrap();
    let trained = build(
        "train",
        &manifest,
        &model,
        &["--options", options.to_str().unwrap()],
    );
    assert!(trained.contains("written to"), "{trained}");

    let json_path = dir.path().join("eval.json");
    let report = dir.path().join("report");
    let table = ok(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--manifest",
        m,
        "--json",
        json_path.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--threads",
        "2",
    ]);
    assert!(table.contains("roc_auc"), "{table}");
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let number = |pointer: &str| {
        eval.pointer(pointer)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| panic!("missing {pointer} in {eval}"))
    };
    let test_rows = std::fs::read_to_string(&manifest)
        .unwrap()
        .lines()
        .filter(|l| l.contains(",test,"))
        .count();
    assert_eq!(number("/messages") as usize, test_rows);
    for key in [
        "roc_auc",
        "threshold",
        "fpr",
        "fnr",
        "precision",
        "recall",
        "f1",
        "accuracy",
        "recall_at_fpr_0_1pct",
        "recall_at_zero_fp",
    ] {
        let value = number(&format!("/spam/{key}"));
        assert!((0.0..=1.0).contains(&value), "spam.{key} = {value}");
    }
    assert!(
        number("/spam/roc_auc") > 0.97,
        "a 800-message model still separates spam: {eval}"
    );
    assert!(
        (number("/spam/one_minus_auc_pct") - 100.0 * (1.0 - number("/spam/roc_auc"))).abs() < 1e-9
    );
    // Zero false positives is the strictest rate, and the threshold is one of its operating
    // points when it lets no ham through.
    assert!(number("/spam/recall_at_zero_fp") <= number("/spam/recall_at_fpr_0_1pct"));
    if number("/spam/false_positives") == 0.0 {
        assert!(number("/spam/recall") <= number("/spam/recall_at_zero_fp"));
    }
    assert!(number("/categories/support") > 0.0);
    assert!((0.0..=1.0).contains(&number("/categories/macro_f1")));
    for category in [
        "pharma", "mortgage", "software", "stock", "adult", "fraud", "other",
    ] {
        for key in ["precision", "recall", "f1", "support"] {
            number(&format!("/categories/per_class/{category}/{key}"));
        }
    }
    // Calibration: the reliability bins hold every message (every labeled spam for the
    // category head), and the category accuracy is the confusion matrix's diagonal.
    for key in ["log_loss", "brier", "expected_calibration_error"] {
        let value = number(&format!("/spam/{key}"));
        assert!(value.is_finite() && value >= 0.0, "spam.{key} = {value}");
    }
    // Better than a constant 0.5 for every message.
    assert!(number("/spam/brier") < 0.25);
    let binned = |pointer: &str| -> f64 {
        let bins = eval.pointer(pointer).and_then(|b| b.as_array()).unwrap();
        for bin in bins {
            let field = |key: &str| bin[key].as_f64().unwrap();
            let bin_range = field("lower")..=field("upper");
            assert!(
                bin_range.contains(&field("mean_probability")),
                "{pointer}: {bin}"
            );
            assert!(
                (0.0..=1.0).contains(&field("observed_rate")),
                "{pointer}: {bin}"
            );
        }
        bins.iter().map(|b| b["messages"].as_f64().unwrap()).sum()
    };
    assert_eq!(binned("/spam/reliability"), number("/messages"));
    assert_eq!(
        binned("/categories/top_score_reliability"),
        number("/categories/support")
    );
    assert!(number("/categories/cross_entropy").is_finite());
    // The top of seven softmax scores is at least 1/7.
    assert!(number("/categories/mean_top_score") >= 1.0 / 7.0);
    assert!((0.0..=1.0).contains(&number("/categories/mean_top_score")));
    let matrix = eval["categories"]["confusion"]["matrix"]
        .as_array()
        .unwrap();
    let diagonal: f64 = (0..matrix.len())
        .map(|i| matrix[i][i].as_f64().unwrap())
        .sum();
    assert!(
        (number("/categories/accuracy") - diagonal / number("/categories/support")).abs() < 1e-12
    );
    assert!(number("/throughput/msgs_per_sec") > 0.0);
    assert_eq!(number("/throughput/threads"), 2.0);
    let markdown = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        markdown.contains("ROC AUC")
            && markdown.contains("(roc.png)")
            && markdown.contains("## Calibration")
            && markdown.contains("(reliability.png)"),
        "{markdown}"
    );
    for file in [
        "roc.png",
        "precision_recall.png",
        "reliability.png",
        "category_confusion.png",
    ] {
        let bytes = std::fs::read(report.join(file)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 5000,
            "{file} is not a plot"
        );
    }

    let spam_file = corpus().join("spam/00001.7848dde101aa985090474a91ec93fcf0.eml");
    let lines = ok(&[
        "classify",
        "--model",
        model.to_str().unwrap(),
        spam_file.to_str().unwrap(),
    ]);
    let verdict: serde_json::Value = serde_json::from_str(lines.trim()).unwrap();
    assert_eq!(verdict["id"], spam_file.to_str().unwrap());
    assert!(verdict["spam_probability"].as_f64().is_some());
    assert_eq!(
        verdict["category_scores"].as_object().map(|o| o.len()),
        Some(7)
    );
    assert!(
        verdict["top_features"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );

    let inspected = ok(&["inspect", "--json", model.to_str().unwrap()]);
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(inspected["metadata"]["training_data"]["split"], "train");
    assert_eq!(inspected["metadata"]["model_id"], eval["model_id"]);
    assert_eq!(inspected["build_options"]["max_features"], 3000);
    assert_eq!(inspected["build_options"]["headerless_copies"], true);
    let text = ok(&["inspect", model.to_str().unwrap()]);
    assert!(
        text.contains("header words      from, to, cc, reply-to, date, mime-version,"),
        "{text}"
    );
    assert!(text.contains("mime structure    off\n"), "{text}");
    assert!(text.contains("word lists        version 1 ("), "{text}");

    // The options the model records train the same model again.
    let recorded = ok(&["inspect", "--options", model.to_str().unwrap()]);
    assert!(recorded.contains("folds = 3\n"), "{recorded}");
    let recorded_path = dir.path().join("recorded.toml");
    std::fs::write(&recorded_path, &recorded).unwrap();
    let again = dir.path().join("again.spamflow");
    let retrain_options = [
        "--options",
        recorded_path.to_str().unwrap(),
        "--tokenizer",
        model.to_str().unwrap(),
    ];
    build("train", &manifest, &again, &retrain_options);
    let again: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", again.to_str().unwrap()])).unwrap();
    assert_eq!(again["metadata"]["model_id"], eval["model_id"]);
}

#[test]
fn a_model_from_an_older_format_keeps_its_header_words_in_inspect_and_its_options() {
    // Written by a format-5 build (header words off, options `{"seed":1}`): it took every header
    // field's words when they were on, which its options must say so that retraining from them
    // extracts the same features, not today's default fields.
    let old = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../spamflow-model/tests/fixtures/format-5.spamflow");
    let old = old.to_str().unwrap();
    let text = ok(&["inspect", old]);
    assert!(text.contains("format version    5\n"), "{text}");
    assert!(text.contains("header words      off\n"), "{text}");
    // It extracted the MIME structure features, as every build before format version 8.
    assert!(text.contains("mime structure    on ("), "{text}");
    let options = ok(&["inspect", "--options", old]);
    assert!(options.contains("header_words = false\n"), "{options}");
    assert!(options.contains("mime_structure = true\n"), "{options}");
    // Nor had it word-list features, as no build before format version 10.
    assert!(text.contains("word lists        off\n"), "{text}");
    assert!(options.contains("lexicons = 0\n"), "{options}");
    // It weighed counts as every build before format version 9, and retraining must too.
    assert!(text.contains("count weighting   1 + 1 ln(count)"), "{text}");
    assert!(options.contains("log_count_scale = 1.0\n"), "{options}");
    assert!(
        options.contains("header_word_fields = [\"*\"]\n"),
        "{options}"
    );
    assert!(options.contains("seed = 1\n"), "{options}");
    // Nor did it blend naive Bayes into its spam head: retraining from its options must not.
    assert!(text.contains("spam naive Bayes  none"), "{text}");
    assert!(options.contains("naive_bayes_blend = 0.0\n"), "{options}");
    // Its category head was multinomial: retraining from its options must build that head.
    assert!(
        options.contains("category_algorithm = \"naive_bayes\"\n"),
        "{options}"
    );
}

#[test]
fn train_eval_and_compare_read_a_manifest_without_a_split_column_whole() {
    // Mail from elsewhere often comes as `path,label` only: the default split then means every
    // row, while an explicit `--split` the manifest cannot satisfy is a clear error. A category
    // spamflow does not know is a warning, not an error.
    let dir = tempfile::tempdir().unwrap();
    let sliced = slice_manifest(dir.path(), 30);
    let text = std::fs::read_to_string(&sliced).unwrap();
    let mut out = String::from("path,label,category\n");
    let mut relabeled = false;
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let category = if fields[1] == "spam" && !relabeled {
            relabeled = true;
            "phishing"
        } else {
            fields[4]
        };
        out.push_str(&format!("{},{},{category}\n", fields[0], fields[1]));
    }
    let rows = text.lines().count() - 1;
    assert!(text.lines().skip(1).any(|l| l.contains(",test,")) && rows > 100);
    let manifest = dir.path().join("path-label.csv");
    std::fs::write(&manifest, out).unwrap();
    let m = manifest.to_str().unwrap();

    let trained = dir.path().join("whole.spamflow");
    build("train", &manifest, &trained, &[]);
    let inspected = ok(&["inspect", "--json", trained.to_str().unwrap()]);
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    let training_data = &inspected["metadata"]["training_data"];
    assert_eq!(
        training_data["split"],
        serde_json::Value::Null,
        "{training_data}"
    );
    assert_eq!(training_data["messages"].as_u64(), Some(rows as u64));

    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default.spamflow");
    let model = model.to_str().unwrap();
    let json_path = dir.path().join("eval.json");
    let output = spamflow(&[
        "eval",
        "--model",
        model,
        "--manifest",
        m,
        "--json",
        json_path.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("1 spam rows have categories spamflow does not know (\"phishing\" 1)")
            && stderr.contains(&format!("evaluating all {rows} rows")),
        "{stderr}"
    );
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(eval["messages"].as_u64(), Some(rows as u64));
    let labeled_spam = text
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(4).is_some_and(|c| !c.is_empty()))
        .count();
    assert_eq!(
        eval["categories"]["support"].as_u64(),
        Some(labeled_spam as u64 - 1)
    );
    let table = ok(&[
        "compare",
        "--current",
        model,
        "--candidate",
        model,
        "--manifest",
        m,
    ]);
    assert!(table.contains(&format!("messages {rows} ")), "{table}");
    let output = spamflow(&["eval", "--model", model, "--manifest", m, "--split", "test"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--split test was given but the manifest has no `split` column"),
        "{stderr}"
    );
}

#[test]
fn damaged_models_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.spamflow");
    std::fs::write(&bad, b"SPAMFLOW\x01\x00\x00\x00\xff\xff").unwrap();
    let output = spamflow(&["inspect", bad.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("truncated"), "{stderr}");
    std::fs::write(&bad, b"not a model at all").unwrap();
    let stderr = String::from_utf8_lossy(
        &spamflow(&["classify", "--model", bad.to_str().unwrap(), "-"]).stderr,
    )
    .into_owned();
    assert!(stderr.contains("not a spamflow model"), "{stderr}");
}

#[test]
fn classify_reads_stdin_and_mbox_files_without_a_model_flag_when_one_is_built_in() {
    let output = spamflow(&["inspect"]);
    if !output.status.success() {
        // Built before models/default.spamflow existed: the error must say what to do.
        assert!(String::from_utf8_lossy(&output.stderr).contains("--model"));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("box.mbox");
    std::fs::write(&mbox, "From a@x Mon Jan 1 2002\nSubject: hello\n\nlunch?\n\nFrom b@y Mon Jan 1 2002\nSubject: CHEAP V1AGRA\n\nbuy now\n").unwrap();
    let lines = ok(&["classify", mbox.to_str().unwrap()]);
    let ids: Vec<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        ids,
        [
            format!("{}#1", mbox.display()),
            format!("{}#2", mbox.display())
        ]
    );
}

#[test]
fn classify_into_a_closed_pipe_ends_quietly() {
    // `spamflow classify box.mbox | head`: the reader leaves before spamflow has written.
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("box.mbox");
    let messages: String = (0..300)
        .map(|n| format!("From a@x Mon Jan 1 2002\nSubject: message {n}\n\nbody {n}\n\n"))
        .collect();
    std::fs::write(&mbox, messages).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_spamflow"))
        .args(["classify", mbox.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run spamflow");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait for spamflow");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(stderr.is_empty(), "{stderr}");
}

/// `spamflow compare` with `--json`: the exit code and the JSON document.
fn compare(
    current: &Path,
    candidate: &Path,
    manifest: &Path,
    json: &Path,
) -> (i32, serde_json::Value) {
    let output = spamflow(&[
        "compare",
        "--current",
        current.to_str().unwrap(),
        "--candidate",
        candidate.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--threads",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let code = output.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 3,
        "compare failed ({code}):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert_eq!(last.starts_with("ACCEPT"), code == 0, "{stdout}");
    assert_eq!(last.starts_with("REJECT: "), code == 3, "{stdout}");
    assert!(
        stdout.contains("recall@fpr<=0.1%") && stdout.contains("difference"),
        "{stdout}"
    );
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(document["accepted"], code == 0, "{document}");
    assert!(document["current"]["model_id"].is_string(), "{document}");
    assert!(document["failures"].is_array(), "{document}");
    (code, document)
}

#[test]
fn update_improves_a_weak_model_and_compare_gates_on_quality() {
    let dir = tempfile::tempdir().unwrap();
    let options = dir.path().join("options.toml");
    std::fs::write(
        &options,
        "folds = 3\nmax_features = 3000\nsubword_vocab_size = 1000\n",
    )
    .unwrap();
    let train = |manifest: &Path, out: &Path| {
        build(
            "train",
            manifest,
            out,
            &["--options", options.to_str().unwrap()],
        )
    };
    // A weak model: about 80 training messages.
    let tiny_manifest = slice_manifest_from(dir.path(), "tiny.csv", 60, 0);
    let weak = dir.path().join("weak.spamflow");
    train(&tiny_manifest, &weak);
    // A strong one: about 800.
    let manifest = slice_manifest(dir.path(), 6);
    let strong = dir.path().join("strong.spamflow");
    train(&manifest, &strong);
    let json = dir.path().join("compare.json");

    let (code, document) = compare(&strong, &weak, &manifest, &json);
    assert_eq!(code, 3, "the weak candidate is rejected: {document}");
    let failures = document["failures"].as_array().unwrap();
    assert!(
        failures
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("ROC AUC dropped by")),
        "{document}"
    );
    let auc = |which: &str| document[which]["spam"]["roc_auc"].as_f64().unwrap();
    assert!(auc("candidate") < auc("current"), "{document}");

    // Updating the weak model with other messages' train rows makes it better, and compare
    // accepts the update in its place.
    let more = slice_manifest_from(dir.path(), "more.csv", 6, 3);
    let updated = dir.path().join("updated.spamflow");
    let printed = build(
        "update",
        &more,
        &updated,
        &["--model", weak.to_str().unwrap()],
    );
    assert!(
        printed.contains("vocabulary coverage") && printed.contains("new features"),
        "{printed}"
    );
    assert!(
        printed.contains("spam head's naive Bayes part continued (blend 0.05;"),
        "{printed}"
    );
    assert!(printed.contains("peak memory"), "{printed}");
    let inspected: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", updated.to_str().unwrap()])).unwrap();
    let weak_id: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", weak.to_str().unwrap()])).unwrap();
    assert_eq!(
        inspected["metadata"]["parent_model_id"],
        weak_id["metadata"]["model_id"]
    );
    assert_eq!(inspected["format_version"], 10);
    assert_eq!(inspected["incremental_update"], "exact");
    // New rows are weighed as the parent's: the update keeps its count scale.
    assert_eq!(weak_id["log_count_scale"], 0.25);
    assert_eq!(inspected["log_count_scale"], weak_id["log_count_scale"]);
    // The spam head's naive Bayes part continues too: the update's rows join the stored sums.
    let naive_bayes_rows = |document: &serde_json::Value| {
        let rows = &document["spam_naive_bayes"]["rows_ham_spam"];
        (rows[0].as_u64().unwrap_or(0), rows[1].as_u64().unwrap_or(0))
    };
    let (weak_ham, weak_spam) = naive_bayes_rows(&weak_id);
    let (ham, spam) = naive_bayes_rows(&inspected);
    assert!(weak_ham > 0 && weak_spam > 0, "{weak_id}");
    assert!(ham > weak_ham && spam > weak_spam, "{inspected}");
    assert_eq!(inspected["spam_naive_bayes"]["blend"], 0.05);
    // The manifest labels categories: the update continues the category head's counts.
    assert!(
        printed.contains("category head continued with"),
        "{printed}"
    );
    assert!(
        inspected["category_counts"]["features"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    assert_eq!(inspected["build_options"]["epochs"], 40);
    let recorded = ok(&["inspect", "--options", updated.to_str().unwrap()]);
    assert!(
        recorded.contains("spamflow update --options") && recorded.contains("epochs = 40\n"),
        "{recorded}"
    );
    // The printed options are an `update --options` file; flags win over it.
    let recorded_path = dir.path().join("update.toml");
    std::fs::write(&recorded_path, recorded.replace("folds = 3", "folds = 4")).unwrap();
    let again = dir.path().join("again.spamflow");
    let flags = [
        "--model",
        weak.to_str().unwrap(),
        "--options",
        recorded_path.to_str().unwrap(),
        "--epochs",
        "2",
        "--no-headerless-copies",
    ];
    build("update", &more, &again, &flags);
    let again: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", again.to_str().unwrap()])).unwrap();
    let built = &again["build_options"];
    assert_eq!(
        (
            &built["epochs"],
            &built["folds"],
            &built["headerless_copies"]
        ),
        (
            &serde_json::json!(2),
            &serde_json::json!(4),
            &serde_json::json!(false)
        ),
        "{again}"
    );
    assert_eq!(inspected["metadata"]["algorithm"], "ftrl");

    let (code, document) = compare(&weak, &updated, &manifest, &json);
    assert_eq!(code, 0, "the updated model is accepted: {document}");
    assert_eq!(document["failures"], serde_json::json!([]));
    let auc = |which: &str| document[which]["spam"]["roc_auc"].as_f64().unwrap();
    assert!(auc("candidate") > auc("current"), "{document}");
}

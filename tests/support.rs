//! Helpers for spamflow's end-to-end tests against a real local Apache Kafka broker.
//!
//! `dev/test.sh` starts the broker with `dev/kafka.sh` and sets `SPAMFLOW_TEST_BROKERS`; the
//! tests drive the real `spamflow` binary (`SPAMFLOW_BIN`, default `target/debug/spamflow`).
//! Every test uses its own topics and consumer groups, so tests can share one broker.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// Bootstrap address of the broker under test.
pub fn brokers() -> String {
    std::env::var("SPAMFLOW_TEST_BROKERS").expect(
        "SPAMFLOW_TEST_BROKERS is not set: run the tests with dev/test.sh, which starts a local \
         Kafka broker (or start one with dev/kafka.sh start and export its address)",
    )
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `spamflow` binary under test.
pub fn spamflow() -> PathBuf {
    let path = std::env::var_os("SPAMFLOW_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/debug/spamflow"));
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p spamflow-cli)",
        path.display()
    );
    path
}

/// The shared SpamAssassin corpus.
pub fn corpus() -> PathBuf {
    std::env::var_os("CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/corpora/spamassassin"))
}

/// `(manifest path, file)` of every manifest row of `split`.
pub fn split_files(split: &str) -> Vec<(String, PathBuf)> {
    let corpus = corpus();
    let mut reader = csv::Reader::from_path(corpus.join("manifest.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (path, split_column) = (column("path"), column("split"));
    reader
        .records()
        .map(Result::unwrap)
        .filter(|r| &r[split_column] == split)
        .map(|r| (r[path].to_owned(), corpus.join(&r[path])))
        .collect()
}

/// A fresh name for a topic or group.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates topics (replication factor 1).
pub fn create_topics(topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    for result in futures_block_on(admin.create_topics(&new, &AdminOptions::new())).unwrap() {
        if let Err((topic, code)) = result {
            assert_eq!(code, RDKafkaErrorCode::TopicAlreadyExists, "create {topic}");
        }
    }
}

/// Runs a future to completion on the current thread (the admin API is async; no runtime needed
/// because librdkafka drives it from its own threads).
fn futures_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park_timeout(Duration::from_millis(50)),
        }
    }
}

/// Produces `(key, value)` records (`None` value: a record without value) and waits for acks.
pub fn produce(topic: &str, records: impl IntoIterator<Item = (String, Option<Vec<u8>>)>) {
    produce_paced(topic, records, None);
}

/// Like [`produce`], at most `per_second` records per second when given.
pub fn produce_paced(
    topic: &str,
    records: impl IntoIterator<Item = (String, Option<Vec<u8>>)>,
    per_second: Option<f64>,
) {
    let started = Instant::now();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("enable.idempotence", "true")
        .set("message.max.bytes", "16000000")
        .set("linger.ms", "20")
        .create()
        .unwrap();
    for (sent, (key, value)) in records.into_iter().enumerate() {
        if let Some(rate) = per_second {
            let due = started + Duration::from_secs_f64(sent as f64 / rate);
            while Instant::now() < due {
                producer.poll(due - Instant::now());
            }
        }
        let mut record: BaseRecord<'_, str, Vec<u8>> = BaseRecord::to(topic).key(key.as_str());
        if let Some(value) = &value {
            record = record.payload(value);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(20));
                }
                Err((error, _)) => panic!("produce: {error}"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// One committed output record.
#[derive(Debug, Clone)]
pub struct OutputRecord {
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub value: Vec<u8>,
    /// Record headers as `(name, value)` strings.
    pub headers: Vec<(String, String)>,
    /// Partition.
    pub partition: i32,
}

/// Every committed record of `topic` (read_committed, from the beginning to the end).
pub fn read_committed(topic: &str) -> Vec<OutputRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut at_end = HashSet::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while at_end.len() < partitions.len() {
        assert!(Instant::now() < deadline, "reading {topic} timed out");
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(error)) => panic!("reading {topic}: {error}"),
            Some(Ok(message)) => {
                at_end.remove(&message.partition());
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(OutputRecord {
                    key: message.key().map(<[u8]>::to_vec),
                    value: message.payload().unwrap_or_default().to_vec(),
                    headers,
                    partition: message.partition(),
                });
            }
        }
    }
    out
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `DIR/NAME.toml` for `spamflow run` on this broker: a fresh consumer group unless `extra`
/// sets one, the given topics, then the `extra` lines (more keys and tables).
pub fn run_config(
    dir: &Path,
    name: &str,
    (input, output, dead): (&str, &str, &str),
    extra: &str,
) -> PathBuf {
    let group = if extra.contains("group =") {
        String::new()
    } else {
        format!("group = \"{}\"\n", unique("group"))
    };
    let path = dir.join(format!("{name}.toml"));
    let body = format!(
        "brokers = \"{}\"\n{group}input_topics = [\"{input}\"]\noutput_topic = \"{output}\"\ndead_letter_topic = \"{dead}\"\n{extra}\n",
        brokers()
    );
    std::fs::write(&path, body).unwrap();
    path
}

/// A running `spamflow run` process.
pub struct Service {
    child: Child,
}

impl Service {
    /// Starts `spamflow run --config CONFIG` plus `args`; logs go to `log`.
    pub fn start(config: &Path, args: &[&str], log: &Path) -> Service {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(spamflow())
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        Service { child }
    }

    /// Starts `spamflow run` in `dir` on `topics` with `extra` configuration lines, serving
    /// `/metrics` on a free port, plus `args`; returns the service and its HTTP address.
    pub fn with_metrics(
        dir: &Path,
        topics: (&str, &str, &str),
        extra: &str,
        args: &[&str],
    ) -> (Service, String) {
        let http = format!("127.0.0.1:{}", free_port());
        let config = run_config(
            dir,
            "run",
            topics,
            &format!("http_listen = \"{http}\"\n{extra}"),
        );
        (Service::start(&config, args, &dir.join("run.log")), http)
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`KILL`, `TERM`, `HUP`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit (at most `timeout`) and returns (success, stdout).
    pub fn wait(mut self, timeout: Duration) -> (bool, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stdout = String::new();
                if let Some(mut out) = self.child.stdout.take() {
                    out.read_to_string(&mut stdout).unwrap();
                }
                return (status.success(), stdout);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("spamflow run did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops it with SIGTERM and fails unless it shuts down cleanly within a minute.
    pub fn stop(self) {
        self.signal("TERM");
        let (ok, _) = self.wait(Duration::from_secs(60));
        assert!(ok, "graceful shutdown failed");
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `path` from `address`; returns (status code, body).
pub fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

/// Sum of a Prometheus metric's samples whose labels contain `label_filter` (empty: all).
pub fn metric_sum(body: &str, name: &str, label_filter: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let metric = series.split('{').next()?;
            (metric == name && series.contains(label_filter)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// Waits until `condition` holds, at most `timeout`; fails naming `what` otherwise.
pub fn wait_until(what: &str, timeout: Duration, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// [`metric_sum`] over a running service's `/metrics` at `http` (0 when it does not answer).
pub fn scrape(http: &str, name: &str, label_filter: &str) -> f64 {
    http_get(http, "/metrics").map_or(0.0, |(_, body)| metric_sum(&body, name, label_filter))
}

/// Runs `spamflow ARGS...`, fails with its stderr unless it succeeds, and returns its stdout.
pub fn spamflow_ok(args: &[&str]) -> String {
    let output = Command::new(spamflow()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "spamflow {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Fresh input, output and dead-letter topic names starting with `prefix`, created with
/// `partitions` partitions each (the dead-letter topic with one).
pub fn service_topics(prefix: &str, partitions: i32) -> (String, String, String) {
    let names = (
        unique(&format!("{prefix}-in")),
        unique(&format!("{prefix}-out")),
        unique(&format!("{prefix}-dead")),
    );
    create_topics(&[
        (&names.0, partitions),
        (&names.1, partitions),
        (&names.2, 1),
    ]);
    names
}

/// Every committed `LabeledMail` of `topic`.
pub fn labeled_events(topic: &str) -> Vec<spamflow_proto::v1::LabeledMail> {
    use prost::Message as _;
    read_committed(topic)
        .into_iter()
        .map(|r| spamflow_proto::v1::LabeledMail::decode(r.value.as_slice()).unwrap())
        .collect()
}

/// The shipped default model's file bytes with another model id and, when given, another
/// threshold: a valid model whose events are recognisable.
pub fn model_variant(id: &str, threshold: Option<f32>) -> Vec<u8> {
    let bytes = std::fs::read(root().join("models/default.spamflow")).unwrap();
    let mut artifact = spamflow_model::ModelArtifact::from_bytes(&bytes).unwrap();
    artifact.metadata.model_id = id.into();
    if let Some(threshold) = threshold {
        artifact.threshold = threshold;
    }
    artifact.to_bytes().unwrap()
}

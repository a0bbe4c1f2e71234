//! `spamflow replay` (load messages into a topic), `spamflow tail` (print committed labeled
//! events as JSON lines) and the reading half of `spamflow dataset export` (every committed
//! `Feedback` report of a topic).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use spamflow_model::Category;
use spamflow_proto::v1;

use crate::delivery::{DeliveryCounter, send_waiting};
use crate::event::{EventLine, category_name, now_us, wire_category};

/// Record value format written by `replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayFormat {
    /// The raw message bytes.
    Raw,
    /// An `InboundMail` protobuf wrapping them.
    Protobuf,
    /// A `Feedback` user report carrying them and their label.
    Feedback,
}

/// One message for `replay`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayMessage {
    /// Record key (and message id).
    pub key: String,
    /// The raw message.
    pub bytes: Vec<u8>,
    /// Its true label; required by [`ReplayFormat::Feedback`].
    pub label: Option<ReportedLabel>,
}

/// A label as a user reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportedLabel {
    /// True for spam.
    pub spam: bool,
    /// The kind of spam, if known.
    pub category: Option<Category>,
}

/// Why a client tool failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Kafka refused or failed.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What was being done.
        context: &'static str,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// Some records were not acknowledged.
    #[error("{0} records were not acknowledged by the broker")]
    Undelivered(u64),
    /// The replay rate is not a number of records per second spamflow can pace.
    #[error("--rate must be at least {MIN_RATE} records per second")]
    Rate,
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// A feedback replay needs every message's label.
    #[error("message {0:?} has no label: feedback needs one (a manifest row or --label)")]
    Unlabeled(String),
    /// The topic does not exist.
    #[error("topic {0:?} does not exist")]
    MissingTopic(String),
    /// The topic did not reach its end in time.
    #[error("topic {topic:?} did not reach its end within {seconds} s of silence")]
    Stalled {
        /// The topic.
        topic: String,
        /// Seconds without progress.
        seconds: u64,
    },
}

fn kafka(context: &'static str) -> impl FnOnce(KafkaError) -> ToolError {
    move |source| ToolError::Kafka { context, source }
}

/// Slowest replay rate, records per second.
const MIN_RATE: f64 = 0.001;

/// A Kafka client's settings: bootstrap servers plus pass-through librdkafka properties.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// Bootstrap servers.
    pub brokers: String,
    /// Extra librdkafka properties.
    pub properties: BTreeMap<String, String>,
}

impl ClientSettings {
    fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }
}

/// The producer buffer of [`replay`], in KiB. It must hold the largest record: librdkafka
/// refuses records over `message.max.bytes` (1 MB by default) before they reach the buffer, but
/// a larger `message.max.bytes` than this would wait for room forever.
const REPLAY_BUFFER_KIB: &str = "65536";
/// How long [`replay`] waits for the broker to acknowledge a record, in milliseconds.
const REPLAY_DELIVERY_TIMEOUT_MS: &str = "60000";

/// Publishes `(key, message bytes)` pairs to `topic` with an idempotent producer (acks=all),
/// at most `rate` per second when given; returns how many were acknowledged.
pub fn replay(
    settings: &ClientSettings,
    topic: &str,
    messages: impl IntoIterator<Item = ReplayMessage>,
    format: ReplayFormat,
    rate: Option<f64>,
) -> Result<u64, ToolError> {
    let producer: BaseProducer<DeliveryCounter> = settings
        .config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "10")
        // Unacknowledged records held by the client: 64 MiB (librdkafka's default is 1 GiB), so
        // a large input is sent at the broker's pace without piling up in memory.
        .set("queue.buffering.max.kbytes", REPLAY_BUFFER_KIB)
        // A record not acknowledged within a minute fails the replay (a broker that is down
        // fails it after a minute, as the final flush did when every record was queued first).
        .set("message.timeout.ms", REPLAY_DELIVERY_TIMEOUT_MS)
        .create_with_context(DeliveryCounter::default())
        .map_err(kafka("cannot create the producer"))?;
    if rate.is_some_and(|r| !(MIN_RATE..=f64::MAX).contains(&r)) {
        return Err(ToolError::Rate);
    }
    let mut sent = 0u64;
    // With a rate, when the next record may go: a pause in the input does not let the records
    // after it go out in a burst.
    let mut next_due = Instant::now();
    for ReplayMessage { key, bytes, label } in messages {
        if let Some(rate) = rate {
            let due = next_due.max(Instant::now());
            while Instant::now() < due {
                producer.poll(due.saturating_duration_since(Instant::now()));
            }
            next_due = due + Duration::from_secs_f64(1.0 / rate);
        }
        let payload = match format {
            ReplayFormat::Raw => bytes,
            ReplayFormat::Protobuf => v1::InboundMail {
                message_id: key.clone(),
                raw: bytes,
                envelope: None,
            }
            .encode_to_vec(),
            ReplayFormat::Feedback => {
                let label = label.ok_or_else(|| ToolError::Unlabeled(key.clone()))?;
                v1::Feedback {
                    message_id: key.clone(),
                    raw: bytes,
                    label: if label.spam {
                        v1::Label::Spam
                    } else {
                        v1::Label::Ham
                    } as i32,
                    category: label
                        .category
                        .filter(|_| label.spam)
                        .map_or(v1::Category::Unspecified, wire_category)
                        as i32,
                    source: v1::FeedbackSource::UserReport as i32,
                    reported_unix_micros: now_us(),
                    tenant: String::new(),
                    model_id: String::new(),
                }
                .encode_to_vec()
            }
        };
        send_waiting(
            &producer,
            BaseRecord::to(topic).key(key.as_str()).payload(&payload),
        )
        .map_err(kafka("cannot send"))?;
        sent += 1;
        producer.poll(Duration::ZERO);
        all_delivered(&producer)?;
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(kafka("cannot flush"))?;
    all_delivered(&producer)?;
    Ok(sent)
}

/// Fails when a record of `producer` could not be delivered.
fn all_delivered(producer: &BaseProducer<DeliveryCounter>) -> Result<(), ToolError> {
    match producer.context().failed() {
        0 => Ok(()),
        failed => Err(ToolError::Undelivered(failed)),
    }
}

struct Assignments {
    changed: AtomicBool,
}

impl ClientContext for Assignments {}

impl ConsumerContext for Assignments {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        self.changed.store(true, Ordering::Relaxed);
    }
}

/// Prints every committed `LabeledMail` of `topic` from the beginning as a JSON line (the
/// `classify` fields plus `message_id` and `source`), until `stop` is set or, with
/// `until_idle`, until no event arrived for that long. Returns the number printed.
pub fn tail(
    settings: &ClientSettings,
    topic: &str,
    until_idle: Option<Duration>,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> Result<u64, ToolError> {
    let consumer: BaseConsumer<Assignments> = settings
        .config()
        .set(
            "group.id",
            format!("spamflow-tail-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create_with_context(Assignments {
            changed: AtomicBool::new(false),
        })
        .map_err(kafka("cannot create the consumer"))?;
    consumer
        .subscribe(&[topic])
        .map_err(kafka("cannot subscribe"))?;
    let mut printed = 0u64;
    let mut last_activity = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if consumer.context().changed.swap(false, Ordering::Relaxed) {
            last_activity = Instant::now();
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {
                if until_idle.is_some_and(|idle| last_activity.elapsed() >= idle) {
                    break;
                }
            }
            Some(Err(error)) => tracing::warn!(%error, "consumer error"),
            Some(Ok(message)) => {
                last_activity = Instant::now();
                let payload = message.payload().unwrap_or_default();
                match v1::LabeledMail::decode(payload) {
                    Ok(event) => {
                        let mut line =
                            serde_json::to_value(EventLine::new(&event.message_id, &event))
                                .map_err(std::io::Error::from)?;
                        line["message_id"] = event.message_id.clone().into();
                        if let Some(source) = &event.source {
                            line["source"] = serde_json::json!({
                                "topic": source.topic, "partition": source.partition, "offset": source.offset,
                            });
                        }
                        serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
                        out.write_all(b"\n")?;
                        printed += 1;
                    }
                    Err(error) => tracing::warn!(
                        partition = message.partition(),
                        offset = message.offset(),
                        %error,
                        "not a LabeledMail; skipped"
                    ),
                }
            }
        }
    }
    out.flush()?;
    Ok(printed)
}

/// A `Feedback` record, as `dataset export` uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackReport {
    /// The reported message's id.
    pub message_id: String,
    /// Its raw bytes.
    pub raw: Vec<u8>,
    /// The reported label (`None` when unset).
    pub label: Option<ReportedLabel>,
    /// Who reported it: `user_report`, `trap_account` or `unspecified`.
    pub source: &'static str,
    /// When, in microseconds since the Unix epoch (0 when unknown).
    pub reported_unix_micros: i64,
    /// Partition and offset of the record: with the time, orders reports deterministically.
    pub position: (i32, i64),
}

impl FeedbackReport {
    fn from_wire(feedback: v1::Feedback, position: (i32, i64)) -> Self {
        let spam = match feedback.label() {
            v1::Label::Spam => Some(true),
            v1::Label::Ham => Some(false),
            v1::Label::Unspecified => None,
        };
        let category = category_name(feedback.category()).and_then(|name| name.parse().ok());
        FeedbackReport {
            source: match feedback.source() {
                v1::FeedbackSource::UserReport => "user_report",
                v1::FeedbackSource::TrapAccount => "trap_account",
                v1::FeedbackSource::Unspecified => "unspecified",
            },
            label: spam.map(|spam| ReportedLabel {
                spam,
                category: category.filter(|_| spam),
            }),
            reported_unix_micros: feedback.reported_unix_micros,
            position,
            message_id: feedback.message_id,
            raw: feedback.raw,
        }
    }
}

/// What [`read_feedback`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackRead {
    /// Records read.
    pub records: u64,
    /// Records that were not `Feedback` protobufs (skipped).
    pub undecodable: u64,
}

/// Hands every committed `Feedback` of `topic` to `each`, from the beginning of every partition
/// to its end when the read starts (later records are left for the next export, so a busy topic
/// cannot keep the read going). Stops with [`ToolError::Stalled`] when no partition progresses
/// for `stall_timeout`.
pub fn read_feedback(
    settings: &ClientSettings,
    topic: &str,
    stall_timeout: Duration,
    mut each: impl FnMut(FeedbackReport) -> Result<(), std::io::Error>,
) -> Result<FeedbackRead, ToolError> {
    let consumer: BaseConsumer = settings
        .config()
        .set(
            "group.id",
            format!("spamflow-export-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(kafka("cannot create the consumer"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .map_err(kafka("cannot read topic metadata"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(ToolError::MissingTopic(topic.to_owned()));
    }
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(kafka("cannot assign partitions"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(kafka("cannot assign partitions"))?;
    // Where each partition ends now; a partition is done at that offset or at its end of
    // partition (with read_committed, the last stable offset), whichever comes first.
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for &partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(30))
            .map_err(kafka("cannot read partition offsets"))?;
        if high > low {
            ends.insert(partition, high);
        }
    }
    let mut read = FeedbackRead::default();
    let mut last_progress = Instant::now();
    while !ends.is_empty() {
        if last_progress.elapsed() >= stall_timeout {
            return Err(ToolError::Stalled {
                topic: topic.to_owned(),
                seconds: stall_timeout.as_secs(),
            });
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                ends.remove(&partition);
                last_progress = Instant::now();
            }
            Some(Err(error)) => tracing::warn!(%error, "consumer error"),
            Some(Ok(message)) => {
                let Some(&end) = ends.get(&message.partition()) else {
                    continue;
                };
                if message.offset() >= end {
                    ends.remove(&message.partition());
                    continue;
                }
                if message.offset() + 1 >= end {
                    ends.remove(&message.partition());
                }
                last_progress = Instant::now();
                read.records += 1;
                match v1::Feedback::decode(message.payload().unwrap_or_default()) {
                    Ok(feedback) => each(FeedbackReport::from_wire(
                        feedback,
                        (message.partition(), message.offset()),
                    ))?,
                    Err(error) => {
                        read.undecodable += 1;
                        tracing::warn!(
                            partition = message.partition(),
                            offset = message.offset(),
                            %error,
                            "not a Feedback; skipped"
                        );
                    }
                }
            }
        }
    }
    Ok(read)
}

//! `spamflow replay` (load messages into a topic) and `spamflow tail` (print committed labeled
//! events as JSON lines).

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
use serde::{Deserialize, Serialize};
use spamflow_proto::v1;

use crate::delivery::{DeliveryCounter, send_waiting};
use crate::event::EventLine;

/// Record value format written by `replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayFormat {
    /// The raw message bytes.
    Raw,
    /// An `InboundMail` protobuf wrapping them.
    Protobuf,
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

/// Publishes `(key, message bytes)` pairs to `topic` with an idempotent producer (acks=all),
/// at most `rate` per second when given; returns how many were acknowledged.
pub fn replay(
    settings: &ClientSettings,
    topic: &str,
    messages: impl IntoIterator<Item = (String, Vec<u8>)>,
    format: ReplayFormat,
    rate: Option<f64>,
) -> Result<u64, ToolError> {
    let producer: BaseProducer<DeliveryCounter> = settings
        .config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "10")
        .create_with_context(DeliveryCounter::default())
        .map_err(kafka("cannot create the producer"))?;
    if rate.is_some_and(|r| !(MIN_RATE..=f64::MAX).contains(&r)) {
        return Err(ToolError::Rate);
    }
    let started = Instant::now();
    let mut sent = 0u64;
    for (key, bytes) in messages {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(sent as f64 / rate);
            while Instant::now() < due {
                producer.poll(due.saturating_duration_since(Instant::now()));
            }
        }
        let payload = match format {
            ReplayFormat::Raw => bytes,
            ReplayFormat::Protobuf => v1::InboundMail {
                message_id: key.clone(),
                raw: bytes,
                envelope: None,
            }
            .encode_to_vec(),
        };
        send_waiting(
            &producer,
            BaseRecord::to(topic).key(key.as_str()).payload(&payload),
        )
        .map_err(kafka("cannot send"))?;
        sent += 1;
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(kafka("cannot flush"))?;
    let failed = producer.context().failed();
    if failed > 0 {
        return Err(ToolError::Undelivered(failed));
    }
    Ok(sent)
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

//! The `spamflow run` loop: poll a batch, score it on the worker pool, publish its events and
//! commit its offsets, then poll again.
//!
//! Exactly-once: each batch is one transaction holding its events and its consumed offsets
//! (`send_offsets_to_transaction` with the consumer's group metadata, so a zombie of an old
//! generation is fenced). At-least-once: the batch's offsets are committed only after the
//! producer acknowledged every event of the batch.
//!
//! Rebalances are served inside `poll`, which is only called while collecting a batch, never
//! while one is being published. A batch therefore never straddles a rebalance: records of
//! revoked partitions that were collected but not yet published are dropped (their offsets were
//! not committed, so the new owner reads them again), and a batch whose transaction fails is
//! aborted and its partitions are rewound to the batch's first offsets.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prost::Message as _;
use rayon::prelude::*;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use spamflow_proto::v1;

use crate::config::{Delivery, RunConfig};
use crate::delivery::{DeliveryCounter, send_waiting};
use crate::event::{
    InputRecord, Outcome, RecordLimits, RecordScorer, Scored, TrapAccounts, category_name, now_us,
    spam_name, verdict_name,
};
use crate::reload::ModelSlot;
use crate::telemetry::{
    ASSIGNED_PARTITIONS, BATCH_SIZE, CATEGORIES, CONSUMED, CONSUMER_LAG, DEAD_LETTERS,
    END_TO_END_SECONDS, Health, PRODUCED, SHADOW_CATEGORIES, SHADOW_PROBABILITY_DIFFERENCE,
    SHADOW_VERDICTS, STAGE_SECONDS, TRANSACTIONS, TRAP_HITS, VERDICTS,
};

/// Record header with the verdict (`spam` or `ham`), for routing without decoding.
pub const VERDICT_HEADER: &str = "spamflow-verdict";
/// Record header with the spam category (spam only).
pub const CATEGORY_HEADER: &str = "spamflow-category";
/// Record header with the id of the model that scored the message.
pub const MODEL_HEADER: &str = "spamflow-model";

/// Consecutive aborted batches after which the process gives up (a record that can never be
/// published, a broker refusing writes): it exits with an error instead of looping silently.
const MAX_ABORT_STREAK: u32 = 8;

/// Timeout of one Kafka control operation (transaction begin/commit/abort, offsets, metadata).
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A Kafka client could not be created or failed fatally.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What was being done.
        context: &'static str,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// A topic spamflow writes to does not exist.
    #[error("output topic {0:?} does not exist: create it first (see dev/kafka.sh create-topic)")]
    MissingTopic(String),
    /// The same work was aborted too many times in a row.
    #[error(
        "{aborts} batches in a row could not be committed; last error: {last}. Stopping so that \
         a restart resumes from the committed offsets"
    )]
    Stuck {
        /// Consecutive aborts.
        aborts: u32,
        /// The last error.
        last: KafkaError,
    },
    /// The consumer failed in a way it cannot recover from.
    #[error("kafka consumer failed fatally: {0}")]
    ConsumerFatal(KafkaError),
    /// The scoring thread pool could not start.
    #[error("cannot start the scoring threads: {0}")]
    Workers(String),
}

fn kafka(context: &'static str) -> impl FnOnce(KafkaError) -> RunError {
    move |source| RunError::Kafka { context, source }
}

/// What a finished run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// Input records consumed and committed.
    pub consumed: u64,
    /// Labeled events published.
    pub labeled: u64,
    /// Dead letters published.
    pub dead_letters: u64,
    /// Spam verdicts among the labeled events.
    pub spam: u64,
    /// Messages addressed to a trap account (each also published as spam feedback).
    pub trap_hits: u64,
    /// Batches committed.
    pub batches: u64,
    /// Batches aborted (and read again).
    pub aborted: u64,
    /// Time from the first record consumed to the last batch committed.
    pub busy: Duration,
}

impl RunSummary {
    /// Records committed per second of busy time.
    pub fn throughput(&self) -> f64 {
        self.consumed as f64 / self.busy.as_secs_f64().max(1e-9)
    }
}

/// Asks a running loop to stop (SIGTERM/SIGINT) or to reload its model (SIGHUP).
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Set to finish the current batch, commit and return.
    pub stop: Arc<AtomicBool>,
    /// Set to reload the model file before the next batch.
    pub reload: Arc<AtomicBool>,
}

/// Consumer callbacks: remembers revoked partitions and publishes lag from statistics.
struct ConsumerHooks {
    revoked: Mutex<Vec<(String, i32)>>,
    rebalanced: AtomicBool,
}

impl ClientContext for ConsumerHooks {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if p.partition >= 0 && p.consumer_lag >= 0 {
                    metrics::gauge!(CONSUMER_LAG, "topic" => topic.clone(), "partition" => partition.to_string())
                        .set(p.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for ConsumerHooks {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Error(error) = rebalance {
            // rdkafka answers a failed rebalance by unassigning everything: forget it all.
            tracing::warn!(%error, "rebalance failed; dropping unpublished records");
            let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
            if let Ok(assignment) = consumer.assignment() {
                for p in assignment.elements() {
                    revoked.push((p.topic().to_owned(), p.partition()));
                }
            }
        }
        if let Rebalance::Revoke(partitions) = rebalance {
            let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
            for p in partitions.elements() {
                revoked.push((p.topic().to_owned(), p.partition()));
                // Another member reports this partition's lag from now on.
                metrics::gauge!(CONSUMER_LAG, "topic" => p.topic().to_owned(), "partition" => p.partition().to_string())
                    .set(0.0);
            }
            tracing::info!(partitions = partitions.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            tracing::info!(partitions = partitions.count(), "partitions assigned");
        }
        self.rebalanced.store(true, Ordering::Relaxed);
        let assigned = consumer.assignment().map_or(0, |a| a.count());
        metrics::gauge!(ASSIGNED_PARTITIONS).set(assigned as f64);
    }
}

type ServiceConsumer = BaseConsumer<ConsumerHooks>;
type ServiceProducer = BaseProducer<DeliveryCounter>;

/// The running service: clients, model, worker pool.
pub struct Pipeline {
    config: RunConfig,
    consumer: ServiceConsumer,
    producer: ServiceProducer,
    output_partitions: i32,
    slot: ModelSlot,
    shadow: Option<ModelSlot>,
    traps: TrapAccounts,
    workers: rayon::ThreadPool,
    health: Arc<Health>,
    summary: RunSummary,
    first_record: Option<Instant>,
    abort_streak: u32,
}

/// The consumer's and the producer's librdkafka properties: spamflow's own first, then the
/// `[kafka]` table (both clients), then `[consumer]` or `[producer]`, each overriding what came
/// before; `bootstrap.servers` and `group.id` always come from `brokers` and `group`, which the
/// default transactional id is made of too.
fn client_configs(config: &RunConfig) -> (ClientConfig, ClientConfig) {
    let mut consumer = ClientConfig::new();
    consumer
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false")
        .set("statistics.interval.ms", "5000");
    let mut producer = ClientConfig::new();
    producer
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.max.bytes", "16777216")
        .set("allow.auto.create.topics", "false");
    if config.delivery == Delivery::ExactlyOnce {
        let id = config.transactional_id.clone().unwrap_or_else(|| {
            format!(
                "spamflow-{}-{}",
                config.group,
                uuid::Uuid::new_v4().simple()
            )
        });
        producer.set("transactional.id", id);
    }
    for (key, value) in &config.kafka {
        consumer.set(key, value);
        producer.set(key, value);
    }
    for (key, value) in &config.consumer {
        consumer.set(key, value);
    }
    for (key, value) in &config.producer {
        producer.set(key, value);
    }
    consumer
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group);
    producer.set("bootstrap.servers", &config.brokers);
    (consumer, producer)
}

impl Pipeline {
    /// Connects to Kafka, subscribes and (exactly-once) initialises transactions. `slot` serves;
    /// `shadow`, when given, is scored beside it for comparison.
    pub fn start(
        config: RunConfig,
        slot: ModelSlot,
        shadow: Option<ModelSlot>,
        health: Arc<Health>,
    ) -> Result<Self, RunError> {
        let (consumer_config, producer_config) = client_configs(&config);
        let consumer: ServiceConsumer = consumer_config
            .create_with_context(ConsumerHooks {
                revoked: Mutex::new(Vec::new()),
                rebalanced: AtomicBool::new(false),
            })
            .map_err(kafka("cannot create the consumer"))?;
        let producer: ServiceProducer = producer_config
            .create_with_context(DeliveryCounter::default())
            .map_err(kafka("cannot create the producer"))?;
        let output_partitions = topic_partitions(&producer, &config.output_topic)?;
        topic_partitions(&producer, &config.dead_letter_topic)?;
        let traps = TrapAccounts::new(&config.trap_recipients);
        if !traps.is_empty() {
            topic_partitions(&producer, &config.feedback_topic)?;
        }
        if let Some(template) = &config.category_topic {
            for category in spamflow_model::Category::ALL {
                topic_partitions(
                    &producer,
                    &template.replace("{category}", category.as_str()),
                )?;
            }
        }
        if config.delivery == Delivery::ExactlyOnce {
            producer
                .init_transactions(KAFKA_TIMEOUT)
                .map_err(kafka("cannot initialise transactions"))?;
        }
        let topics: Vec<&str> = config.input_topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(kafka("cannot subscribe"))?;
        let workers = rayon::ThreadPoolBuilder::new()
            .num_threads(config.workers)
            .thread_name(|i| format!("spamflow-score-{i}"))
            .build()
            .map_err(|e| RunError::Workers(e.to_string()))?;
        health.beat();
        health.set_ready(true);
        Ok(Pipeline {
            config,
            consumer,
            producer,
            output_partitions,
            slot,
            shadow,
            traps,
            workers,
            health,
            summary: RunSummary::default(),
            first_record: None,
            abort_streak: 0,
        })
    }

    /// Runs until `control.stop` is set or, with `until_idle`, until no record arrived for that
    /// long while partitions were assigned. Every published batch is committed before return.
    pub fn run(
        mut self,
        control: &Control,
        until_idle: Option<Duration>,
    ) -> Result<RunSummary, RunError> {
        let mut last_activity = Instant::now();
        while !control.stop.load(Ordering::Relaxed) {
            self.health.beat();
            let reload = control.reload.swap(false, Ordering::Relaxed);
            for slot in std::iter::once(&mut self.slot).chain(self.shadow.as_mut()) {
                if reload {
                    slot.reload();
                } else {
                    slot.reload_if_changed();
                }
            }
            let batch = self.collect_batch(control)?;
            if self
                .consumer
                .context()
                .rebalanced
                .swap(false, Ordering::Relaxed)
            {
                last_activity = Instant::now();
            }
            if batch.is_empty() {
                if until_idle.is_some_and(|idle| last_activity.elapsed() >= idle) {
                    let assigned = self.consumer.assignment().map_or(0, |a| a.count());
                    tracing::info!(assigned, "input idle; stopping");
                    break;
                }
                continue;
            }
            last_activity = Instant::now();
            self.process(batch)?;
        }
        self.health.set_ready(false);
        Ok(self.summary.clone())
    }

    /// Polls until the batch is full or its wait is over; drops records of partitions revoked
    /// meanwhile.
    fn collect_batch(&mut self, control: &Control) -> Result<Vec<InputRecord>, RunError> {
        let started = Instant::now();
        let max_wait = Duration::from_millis(self.config.batch_max_wait_ms);
        let mut batch: Vec<InputRecord> = Vec::new();
        let mut bytes = 0usize;
        while batch.len() < self.config.batch_max_messages
            && bytes < self.config.batch_max_bytes
            && !control.stop.load(Ordering::Relaxed)
        {
            let left = max_wait.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            let polled = self.consumer.poll(left);
            self.drop_revoked(&mut batch);
            match polled {
                None => {}
                Some(Ok(message)) => {
                    let record = InputRecord {
                        topic: message.topic().to_owned(),
                        partition: message.partition(),
                        offset: message.offset(),
                        key: message.key().map(<[u8]>::to_vec),
                        value: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                        timestamp_ms: message.timestamp().to_millis(),
                        consumed_at_us: now_us(),
                    };
                    bytes += record.value.len();
                    batch.push(record);
                    self.first_record.get_or_insert_with(Instant::now);
                }
                Some(Err(error @ KafkaError::MessageConsumptionFatal(_))) => {
                    return Err(RunError::ConsumerFatal(error));
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "consumer error");
                }
            }
        }
        metrics::histogram!(STAGE_SECONDS, "stage" => "poll").record(started.elapsed());
        Ok(batch)
    }

    fn drop_revoked(&self, batch: &mut Vec<InputRecord>) {
        let revoked = std::mem::take(
            &mut *self
                .consumer
                .context()
                .revoked
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if !revoked.is_empty() && !batch.is_empty() {
            let before = batch.len();
            batch.retain(|r| {
                !revoked
                    .iter()
                    .any(|(t, p)| *t == r.topic && *p == r.partition)
            });
            tracing::info!(
                dropped = before - batch.len(),
                "unpublished records of revoked partitions dropped; their new owner reads them"
            );
        }
    }

    /// Scores, publishes and commits one batch.
    fn process(&mut self, batch: Vec<InputRecord>) -> Result<(), RunError> {
        let model = self.slot.current();
        let shadow = self.shadow.as_ref().map(ModelSlot::current);
        let started = Instant::now();
        let scorer = RecordScorer {
            model: &model,
            shadow: shadow.as_deref(),
            format: self.config.input_format,
            limits: RecordLimits {
                max_message_bytes: self.config.max_message_bytes,
                dead_letter_max_bytes: self.config.dead_letter_max_bytes,
            },
            traps: &self.traps,
        };
        let outcomes: Vec<Scored> = if self.config.relay_only {
            let relayed = Scored {
                outcome: Outcome::Relayed,
                trap_feedback: None,
                shadow: None,
            };
            vec![relayed; batch.len()]
        } else {
            self.workers.install(|| {
                batch
                    .par_iter()
                    .map(|record| scorer.score(record))
                    .collect()
            })
        };
        metrics::histogram!(STAGE_SECONDS, "stage" => "score").record(started.elapsed());
        metrics::histogram!(BATCH_SIZE).record(batch.len() as f64);
        let offsets = batch_offsets(&batch);
        let end = match self.config.delivery {
            Delivery::ExactlyOnce => self.publish_transaction(&batch, &outcomes, &offsets.next),
            Delivery::AtLeastOnce => self.publish_then_commit(&batch, &outcomes, &offsets.next),
        };
        match end {
            BatchEnd::Committed => {
                metrics::counter!(TRANSACTIONS, "outcome" => "commit").increment(1);
                self.abort_streak = 0;
                self.count_committed(&batch, &outcomes);
                Ok(())
            }
            BatchEnd::Fatal(source) => Err(RunError::Kafka {
                context: "publishing a batch failed and the producer cannot go on",
                source,
            }),
            BatchEnd::Aborted(error) => {
                metrics::counter!(TRANSACTIONS, "outcome" => "abort").increment(1);
                self.summary.aborted += 1;
                self.abort_streak += 1;
                tracing::warn!(%error, records = batch.len(), streak = self.abort_streak, "batch not committed; rewinding to read it again");
                if self.abort_streak >= MAX_ABORT_STREAK {
                    return Err(RunError::Stuck {
                        aborts: self.abort_streak,
                        last: error,
                    });
                }
                self.rewind(&offsets.first)?;
                // Back off before reading the batch again: 0.2 s, 0.4 s, 0.8 s, ...
                std::thread::sleep(Duration::from_millis(100 << self.abort_streak.min(5)));
                Ok(())
            }
        }
    }

    /// Exactly-once: events and offsets in one transaction. Calls librdkafka marks retriable are
    /// repeated; an error that requires it aborts the transaction; anything else, or a failed
    /// abort, is fatal (the restarted process resumes from the committed offsets).
    fn publish_transaction(
        &self,
        batch: &[InputRecord],
        outcomes: &[Scored],
        next: &TopicPartitionList,
    ) -> BatchEnd {
        if let Err(error) = self.producer.begin_transaction() {
            return BatchEnd::Fatal(error);
        }
        let started = Instant::now();
        if let Err(error) = self.send_all(batch, outcomes) {
            return self.abort(error);
        }
        metrics::histogram!(STAGE_SECONDS, "stage" => "produce").record(started.elapsed());
        let started = Instant::now();
        let Some(group) = self.consumer.group_metadata() else {
            return self.abort(KafkaError::MessageProduction(RDKafkaErrorCode::State));
        };
        let committed = retried(|| {
            self.producer
                .send_offsets_to_transaction(next, &group, KAFKA_TIMEOUT)
        })
        .and_then(|()| retried(|| self.producer.commit_transaction(KAFKA_TIMEOUT)));
        match committed {
            Ok(()) => {
                metrics::histogram!(STAGE_SECONDS, "stage" => "commit").record(started.elapsed());
                BatchEnd::Committed
            }
            Err(error) if requires_abort(&error) => self.abort(error),
            Err(error) => BatchEnd::Fatal(error),
        }
    }

    /// Aborts the open transaction because of `cause`.
    fn abort(&self, cause: KafkaError) -> BatchEnd {
        match retried(|| self.producer.abort_transaction(KAFKA_TIMEOUT)) {
            Ok(()) => BatchEnd::Aborted(cause),
            Err(error) => BatchEnd::Fatal(error),
        }
    }

    /// At-least-once: publish, wait for every acknowledgement, then commit the offsets.
    fn publish_then_commit(
        &self,
        batch: &[InputRecord],
        outcomes: &[Scored],
        next: &TopicPartitionList,
    ) -> BatchEnd {
        match self.try_publish_then_commit(batch, outcomes, next) {
            Ok(()) => BatchEnd::Committed,
            Err(error) if is_fatal(&error) => BatchEnd::Fatal(error),
            Err(error) => BatchEnd::Aborted(error),
        }
    }

    fn try_publish_then_commit(
        &self,
        batch: &[InputRecord],
        outcomes: &[Scored],
        next: &TopicPartitionList,
    ) -> KafkaResult<()> {
        let deliveries = self.producer.context();
        deliveries.reset();
        let started = Instant::now();
        self.send_all(batch, outcomes)?;
        self.producer.flush(KAFKA_TIMEOUT)?;
        metrics::histogram!(STAGE_SECONDS, "stage" => "produce").record(started.elapsed());
        if deliveries.failed() > 0 {
            return Err(KafkaError::MessageProduction(RDKafkaErrorCode::Fail));
        }
        let started = Instant::now();
        self.consumer.commit(next, CommitMode::Sync)?;
        metrics::histogram!(STAGE_SECONDS, "stage" => "commit").record(started.elapsed());
        Ok(())
    }

    /// Sends every outcome in input order, waiting while the producer queue is full.
    fn send_all(&self, batch: &[InputRecord], outcomes: &[Scored]) -> KafkaResult<()> {
        for (record, scored) in batch.iter().zip(outcomes) {
            let key = record.key.as_deref();
            if let Some(feedback) = &scored.trap_feedback {
                let payload = feedback.encode_to_vec();
                self.send(
                    BaseRecord::to(&self.config.feedback_topic).payload(&payload),
                    Some(feedback.message_id.as_bytes()),
                )?;
            }
            match &scored.outcome {
                Outcome::Labeled(event) => {
                    let payload = event.encode_to_vec();
                    let category = category_name(event.category());
                    let verdict = verdict_name(event.verdict());
                    let headers = || {
                        let headers = OwnedHeaders::new()
                            .insert(Header {
                                key: VERDICT_HEADER,
                                value: Some(verdict),
                            })
                            .insert(Header {
                                key: MODEL_HEADER,
                                value: Some(event.model_id.as_str()),
                            });
                        match category {
                            Some(category) => headers.insert(Header {
                                key: CATEGORY_HEADER,
                                value: Some(category),
                            }),
                            None => headers,
                        }
                    };
                    // Events of one input partition go to one output partition, in input order.
                    let partition = record.partition.rem_euclid(self.output_partitions);
                    self.send(
                        BaseRecord::to(&self.config.output_topic)
                            .partition(partition)
                            .payload(&payload)
                            .headers(headers()),
                        key,
                    )?;
                    if let (Some(template), Some(category)) =
                        (&self.config.category_topic, category)
                    {
                        let topic = template.replace("{category}", category);
                        self.send(
                            BaseRecord::to(&topic).payload(&payload).headers(headers()),
                            key,
                        )?;
                    }
                }
                Outcome::Relayed => {
                    let partition = record.partition.rem_euclid(self.output_partitions);
                    self.send(
                        BaseRecord::to(&self.config.output_topic)
                            .partition(partition)
                            .payload(&record.value),
                        key,
                    )?;
                }
                Outcome::DeadLetter(dead) => {
                    let payload = dead.encode_to_vec();
                    self.send(
                        BaseRecord::to(&self.config.dead_letter_topic).payload(&payload),
                        key,
                    )?;
                }
            }
        }
        Ok(())
    }

    fn send<'a>(
        &self,
        record: BaseRecord<'a, [u8], Vec<u8>>,
        key: Option<&'a [u8]>,
    ) -> KafkaResult<()> {
        let record = match key {
            Some(key) => record.key(key),
            None => record,
        };
        send_waiting(&self.producer, record)
    }

    /// Seeks every still-assigned partition of an uncommitted batch back to its first record.
    /// A partition that stays assigned but cannot be rewound is fatal: reading on would skip
    /// the batch.
    fn rewind(&self, first: &TopicPartitionList) -> Result<(), RunError> {
        let assigned = self
            .consumer
            .assignment()
            .map_err(kafka("cannot read the assignment"))?;
        for element in first.elements() {
            let still_ours = assigned
                .find_partition(element.topic(), element.partition())
                .is_some();
            if !still_ours {
                // Revoked meanwhile: the new owner starts from the committed offset, which this
                // batch never moved.
                continue;
            }
            self.consumer
                .seek(
                    element.topic(),
                    element.partition(),
                    element.offset(),
                    KAFKA_TIMEOUT,
                )
                .map_err(kafka("cannot rewind a partition to its uncommitted batch"))?;
        }
        Ok(())
    }

    fn count_committed(&mut self, batch: &[InputRecord], outcomes: &[Scored]) {
        let now = now_us();
        self.summary.batches += 1;
        self.summary.consumed += batch.len() as u64;
        if let Some(first) = self.first_record {
            self.summary.busy = first.elapsed();
        }
        let mut per_topic: BTreeMap<&str, u64> = BTreeMap::new();
        for record in batch {
            *per_topic.entry(record.topic.as_str()).or_default() += 1;
        }
        for (topic, count) in per_topic {
            metrics::counter!(CONSUMED, "topic" => topic.to_owned()).increment(count);
        }
        for (record, scored) in batch.iter().zip(outcomes) {
            if scored.trap_feedback.is_some() {
                self.summary.trap_hits += 1;
                metrics::counter!(TRAP_HITS).increment(1);
            }
            if let Some(shadow) = &scored.shadow {
                metrics::counter!(SHADOW_VERDICTS, "serving" => spam_name(shadow.serving_spam), "shadow" => spam_name(shadow.shadow_spam))
                    .increment(1);
                metrics::histogram!(SHADOW_PROBABILITY_DIFFERENCE)
                    .record(f64::from(shadow.probability_difference));
                if shadow.serving_spam && shadow.shadow_spam {
                    let agreement = if shadow.serving_category == shadow.shadow_category {
                        "agree"
                    } else {
                        "disagree"
                    };
                    metrics::counter!(SHADOW_CATEGORIES, "category" => shadow.serving_category.as_str(), "agreement" => agreement)
                        .increment(1);
                }
            }
            if let Some(ms) = record.timestamp_ms.filter(|&ms| ms > 0) {
                let seconds = (now - ms.saturating_mul(1000)).max(0) as f64 / 1e6;
                metrics::histogram!(END_TO_END_SECONDS).record(seconds);
            }
            match &scored.outcome {
                Outcome::Labeled(event) => {
                    self.summary.labeled += 1;
                    metrics::counter!(PRODUCED, "topic" => self.config.output_topic.clone())
                        .increment(1);
                    let spam = event.verdict() == v1::Verdict::Spam;
                    metrics::counter!(VERDICTS, "verdict" => verdict_name(event.verdict()))
                        .increment(1);
                    if spam {
                        self.summary.spam += 1;
                        if let Some(category) = category_name(event.category()) {
                            metrics::counter!(CATEGORIES, "category" => category).increment(1);
                        }
                    }
                }
                Outcome::Relayed => {
                    metrics::counter!(PRODUCED, "topic" => self.config.output_topic.clone())
                        .increment(1);
                }
                Outcome::DeadLetter(dead) => {
                    self.summary.dead_letters += 1;
                    let kind = dead.error_kind().as_str_name();
                    metrics::counter!(DEAD_LETTERS, "kind" => kind).increment(1);
                }
            }
        }
    }
}

/// How a batch ended.
enum BatchEnd {
    /// Events and offsets are committed.
    Committed,
    /// Nothing of the batch is visible; its records are read again.
    Aborted(KafkaError),
    /// The producer cannot go on.
    Fatal(KafkaError),
}

/// Runs a transactional call again (up to 5 times, with a short pause) while librdkafka says
/// its error is retriable, such as a timed-out commit that is still in progress.
fn retried(call: impl Fn() -> KafkaResult<()>) -> KafkaResult<()> {
    let mut attempt = 0;
    loop {
        match call() {
            Err(KafkaError::Transaction(e)) if e.is_retriable() && attempt < 5 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "retrying a transactional call");
                std::thread::sleep(Duration::from_millis(200 * attempt));
            }
            other => return other,
        }
    }
}

/// Whether the open transaction must (and can) be aborted after `error`.
fn requires_abort(error: &KafkaError) -> bool {
    match error {
        KafkaError::Transaction(e) => e.txn_requires_abort(),
        _ => false,
    }
}

/// Errors after which this producer cannot go on (fenced by a newer instance, or a fatal
/// librdkafka state); the process exits and its supervisor restarts it.
fn is_fatal(error: &KafkaError) -> bool {
    match error {
        KafkaError::Transaction(e) => e.is_fatal(),
        other => matches!(
            other.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::Fatal
                    | RDKafkaErrorCode::Fenced
                    | RDKafkaErrorCode::ProducerFenced
            )
        ),
    }
}

/// First offsets (to rewind to) and next offsets (to commit) of each partition in a batch.
struct BatchOffsets {
    first: TopicPartitionList,
    next: TopicPartitionList,
}

fn batch_offsets(batch: &[InputRecord]) -> BatchOffsets {
    let mut ranges: BTreeMap<(&str, i32), (i64, i64)> = BTreeMap::new();
    for r in batch {
        let range = ranges
            .entry((r.topic.as_str(), r.partition))
            .or_insert((r.offset, r.offset));
        range.0 = range.0.min(r.offset);
        range.1 = range.1.max(r.offset);
    }
    let mut first = TopicPartitionList::new();
    let mut next = TopicPartitionList::new();
    for ((topic, partition), (low, high)) in ranges {
        // Adding an offset to a fresh list cannot fail.
        let _ = first.add_partition_offset(topic, partition, Offset::Offset(low));
        let _ = next.add_partition_offset(topic, partition, Offset::Offset(high + 1));
    }
    BatchOffsets { first, next }
}

/// Number of partitions of a topic; an error when it does not exist.
fn topic_partitions(producer: &ServiceProducer, topic: &str) -> Result<i32, RunError> {
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), KAFKA_TIMEOUT)
        .map_err(kafka("cannot read topic metadata"))?;
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len() as i32)
        .filter(|&n| n > 0)
        .ok_or_else(|| RunError::MissingTopic(topic.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64) -> InputRecord {
        InputRecord {
            topic: "in".into(),
            partition,
            offset,
            key: None,
            value: Vec::new(),
            timestamp_ms: None,
            consumed_at_us: 0,
        }
    }

    #[test]
    fn client_tables_override_spamflow_settings_kafka_first_then_each_client() {
        let mut config = RunConfig::default();
        config.kafka.insert("linger.ms".into(), "50".into());
        config
            .kafka
            .insert("security.protocol".into(), "ssl".into());
        config.kafka.insert("fetch.max.bytes".into(), "1000".into());
        config
            .consumer
            .insert("fetch.max.bytes".into(), "2000".into());
        config
            .consumer
            .insert("isolation.level".into(), "read_uncommitted".into());
        config.producer.insert("acks".into(), "1".into());
        config.kafka.insert("group.id".into(), "other".into());
        config
            .kafka
            .insert("bootstrap.servers".into(), "elsewhere:9092".into());
        let (consumer, producer) = client_configs(&config);
        // `[kafka]` reaches both clients and overrides spamflow's own settings...
        assert_eq!(producer.get("linger.ms"), Some("50"));
        assert_eq!(consumer.get("security.protocol"), Some("ssl"));
        assert_eq!(producer.get("security.protocol"), Some("ssl"));
        // ...and a client's own table overrides `[kafka]` and spamflow's settings.
        assert_eq!(consumer.get("fetch.max.bytes"), Some("2000"));
        assert_eq!(producer.get("fetch.max.bytes"), Some("1000"));
        assert_eq!(consumer.get("isolation.level"), Some("read_uncommitted"));
        assert_eq!(producer.get("acks"), Some("1"));
        // Untouched settings stay spamflow's.
        assert_eq!(consumer.get("enable.auto.commit"), Some("false"));
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        // Brokers and group are spamflow's options, whatever the tables say.
        assert_eq!(consumer.get("group.id"), Some(config.group.as_str()));
        assert_eq!(
            consumer.get("bootstrap.servers"),
            Some(config.brokers.as_str())
        );
        assert_eq!(
            producer.get("bootstrap.servers"),
            Some(config.brokers.as_str())
        );
    }

    #[test]
    fn batch_offsets_rewind_to_first_and_commit_after_last() {
        let batch = [record(1, 10), record(0, 3), record(1, 11), record(1, 12)];
        let offsets = batch_offsets(&batch);
        let pairs = |list: &TopicPartitionList| {
            list.elements()
                .iter()
                .map(|e| (e.partition(), e.offset()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            pairs(&offsets.first),
            [(0, Offset::Offset(3)), (1, Offset::Offset(10))]
        );
        assert_eq!(
            pairs(&offsets.next),
            [(0, Offset::Offset(4)), (1, Offset::Offset(13))]
        );
    }
}

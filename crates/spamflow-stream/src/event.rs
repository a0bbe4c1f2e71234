//! From a consumed record to what is published for it: a `LabeledMail` or a `DeadLetter`. No
//! I/O here; the pipeline hands records in and sends the results.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use serde::Serialize;
use spamflow_features::Flags;
use spamflow_model::{Category, Model, Verdict};
use spamflow_proto::v1;

use crate::config::InputFormat;

/// A record taken from an input topic (owned: it outlives the consumer's poll).
#[derive(Debug, Clone, PartialEq)]
pub struct InputRecord {
    /// Topic it came from.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value (empty when the record had none).
    pub value: Vec<u8>,
    /// Record timestamp in milliseconds since the Unix epoch, when known.
    pub timestamp_ms: Option<i64>,
    /// When spamflow took it from Kafka, in microseconds since the Unix epoch.
    pub consumed_at_us: i64,
}

/// What gets published for one input record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A classified message.
    Labeled(v1::LabeledMail),
    /// A record that could not be classified.
    DeadLetter(v1::DeadLetter),
    /// Relay mode: the input record goes out unchanged.
    Relayed,
}

/// Longest message id, tenant or dead-letter key copied into an output record: a huge key must
/// not make every event of its batch unpublishable.
const MAX_ID_BYTES: usize = 1024;

/// `text` cut to at most `max` bytes on a character boundary.
fn capped(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Size limits applied to each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// Longer messages are classified on their first this many bytes and flagged.
    pub max_message_bytes: usize,
    /// Most bytes of the original value kept in a dead letter.
    pub dead_letter_max_bytes: usize,
}

/// Classifies one record. Raw input is always classified (any bytes make a verdict, flagged when
/// odd or cut at `limits.max_message_bytes`); an empty value or an undecodable `InboundMail`
/// becomes a dead letter keeping up to `limits.dead_letter_max_bytes` of the original value.
pub fn classify_record(
    model: &Model,
    format: InputFormat,
    record: &InputRecord,
    limits: RecordLimits,
) -> Outcome {
    let dead_letter_max_bytes = limits.dead_letter_max_bytes;
    let dead = |kind: v1::ErrorKind, error: String| {
        let kept = record.value.len().min(dead_letter_max_bytes);
        Outcome::DeadLetter(v1::DeadLetter {
            error_kind: kind as i32,
            error,
            source: Some(source(record)),
            original_key: record
                .key
                .as_deref()
                .map(|k| k[..k.len().min(MAX_ID_BYTES)].to_vec())
                .unwrap_or_default(),
            original: record.value[..kept].to_vec(),
            original_truncated: kept < record.value.len(),
            original_size: record.value.len() as u64,
            message_id: String::new(),
            failed_unix_micros: now_us(),
            model_id: model.metadata().model_id.clone(),
        })
    };
    if record.value.is_empty() {
        // Checked first: an empty buffer is also a valid (empty) protobuf message.
        return dead(v1::ErrorKind::Empty, "the record has no value".into());
    }
    let inbound;
    let (message_id, raw, envelope) = match format {
        InputFormat::Raw => (String::new(), record.value.as_slice(), None),
        InputFormat::Protobuf => match v1::InboundMail::decode(record.value.as_slice()) {
            Ok(mail) => {
                inbound = mail;
                (
                    inbound.message_id.clone(),
                    inbound.raw.as_slice(),
                    inbound.envelope.as_ref(),
                )
            }
            Err(error) => {
                return dead(
                    v1::ErrorKind::UndecodableProtobuf,
                    format!("not an InboundMail protobuf: {error}"),
                );
            }
        },
    };
    if raw.is_empty() {
        return dead(
            v1::ErrorKind::Empty,
            "the InboundMail has no raw message".into(),
        );
    }
    let oversized = raw.len() > limits.max_message_bytes;
    let raw = &raw[..raw.len().min(limits.max_message_bytes)];
    let extractor = model.extractor();
    let started = Instant::now();
    let parsed = extractor.parse(raw);
    let parsed_at = Instant::now();
    let mut extraction = extractor.features_of(&parsed, None);
    if oversized {
        extraction.flags.insert(Flags::MESSAGE_TRUNCATED);
    }
    let extracted_at = Instant::now();
    let verdict = model.score(&extraction.features, extraction.flags);
    let scored_at = Instant::now();
    let message_id = if !message_id.is_empty() {
        message_id
    } else if let Some(key) = record.key.as_deref().filter(|k| !k.is_empty()) {
        String::from_utf8_lossy(key).into_owned()
    } else if let Some(id) = spamflow_features::message_id(raw, &extractor.config().limits) {
        id
    } else {
        format!("{}/{}/{}", record.topic, record.partition, record.offset)
    };
    let mut event = labeled_mail(
        capped(message_id, MAX_ID_BYTES),
        &verdict,
        &model.metadata().model_id,
    );
    event.source = Some(source(record));
    event.timings = Some(v1::Timings {
        received_unix_micros: envelope.map_or(0, |e| e.received_unix_micros),
        consumed_unix_micros: record.consumed_at_us,
        produced_unix_micros: now_us(),
        parse_micros: micros(parsed_at - started),
        features_micros: micros(extracted_at - parsed_at),
        score_micros: micros(scored_at - extracted_at),
    });
    event.tenant = capped(
        envelope.map(|e| e.tenant.clone()).unwrap_or_default(),
        MAX_ID_BYTES,
    );
    Outcome::Labeled(event)
}

fn source(record: &InputRecord) -> v1::SourceRecord {
    v1::SourceRecord {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        timestamp_unix_micros: record.timestamp_ms.map_or(0, |ms| ms.saturating_mul(1000)),
    }
}

/// The wire category of a model category.
pub fn wire_category(category: Category) -> v1::Category {
    match category {
        Category::Pharma => v1::Category::Pharma,
        Category::Mortgage => v1::Category::Mortgage,
        Category::Software => v1::Category::Software,
        Category::Stock => v1::Category::Stock,
        Category::Adult => v1::Category::Adult,
        Category::Fraud => v1::Category::Fraud,
        Category::Other => v1::Category::Other,
    }
}

/// The category name used in JSON, headers and topic names (`None` when unset).
pub fn category_name(category: v1::Category) -> Option<&'static str> {
    Category::ALL
        .into_iter()
        .find(|&c| wire_category(c) == category)
        .map(Category::as_str)
}

/// The verdict name used in JSON, headers and metrics: `spam` or `ham`.
pub fn verdict_name(verdict: v1::Verdict) -> &'static str {
    if verdict == v1::Verdict::Spam {
        "spam"
    } else {
        "ham"
    }
}

/// A `LabeledMail` for a verdict (no source coordinates or timings yet).
pub fn labeled_mail(message_id: String, verdict: &Verdict, model_id: &str) -> v1::LabeledMail {
    v1::LabeledMail {
        message_id,
        verdict: if verdict.spam {
            v1::Verdict::Spam
        } else {
            v1::Verdict::Ham
        } as i32,
        spam_probability: verdict.spam_probability,
        spam_log_odds: verdict.spam_log_odds,
        category: if verdict.spam {
            wire_category(verdict.category)
        } else {
            v1::Category::Unspecified
        } as i32,
        category_scores: Category::ALL
            .into_iter()
            .map(|c| v1::CategoryScore {
                category: wire_category(c) as i32,
                score: verdict.category_scores[c.index()],
            })
            .collect(),
        top_features: verdict
            .top_features
            .iter()
            .map(|c| v1::FeatureWeight {
                feature: c.feature.clone(),
                weight: c.weight,
            })
            .collect(),
        model_id: model_id.to_owned(),
        source: None,
        timings: None,
        flags: verdict.flags.names().map(str::to_owned).collect(),
        tenant: String::new(),
    }
}

/// The JSON line of a labeled event, as `spamflow classify` and `spamflow tail` print it:
/// `category`, `category_scores`, `flags`, `id`, `model_id`, `spam_probability`,
/// `top_features`, `verdict` (name order; numbers at f64 precision).
#[derive(Debug, Serialize)]
pub struct EventLine<'a> {
    category: Option<&'static str>,
    category_scores: CategoryScores,
    flags: &'a [String],
    id: &'a str,
    model_id: &'a str,
    spam_probability: f64,
    top_features: Vec<FeatureLine<'a>>,
    verdict: &'static str,
}

/// One entry of `top_features`.
#[derive(Debug, Serialize)]
struct FeatureLine<'a> {
    feature: &'a str,
    weight: f64,
}

/// Category scores as a JSON object, categories in name order.
#[derive(Debug)]
struct CategoryScores(Vec<(&'static str, f64)>);

impl Serialize for CategoryScores {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, score)| (*name, *score)))
    }
}

impl<'a> EventLine<'a> {
    /// The line for `event`, identified as `id`.
    pub fn new(id: &'a str, event: &'a v1::LabeledMail) -> Self {
        let mut scores: Vec<(&'static str, f64)> = event
            .category_scores
            .iter()
            .filter_map(|s| Some((category_name(s.category())?, f64::from(s.score))))
            .collect();
        scores.sort_unstable_by_key(|(name, _)| *name);
        EventLine {
            category: category_name(event.category()),
            category_scores: CategoryScores(scores),
            flags: &event.flags,
            id,
            model_id: &event.model_id,
            spam_probability: f64::from(event.spam_probability),
            top_features: event
                .top_features
                .iter()
                .map(|f| FeatureLine {
                    feature: &f.feature,
                    weight: f64::from(f.weight),
                })
                .collect(),
            verdict: verdict_name(event.verdict()),
        }
    }
}

/// Now, in microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped default model.
    fn model() -> Model {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/default.spamflow");
        let bytes = std::fs::read(path).unwrap_or_default();
        Model::from_bytes(&bytes).unwrap_or_else(|e| panic!("cannot load {path}: {e}"))
    }

    fn limits(dead_letter_max_bytes: usize) -> RecordLimits {
        RecordLimits {
            max_message_bytes: 1 << 20,
            dead_letter_max_bytes,
        }
    }

    fn record(value: &[u8], key: Option<&[u8]>) -> InputRecord {
        InputRecord {
            topic: "in".into(),
            partition: 2,
            offset: 7,
            key: key.map(<[u8]>::to_vec),
            value: value.to_vec(),
            timestamp_ms: Some(1_000),
            consumed_at_us: 5,
        }
    }

    #[test]
    fn raw_records_are_labeled_with_key_source_and_model() {
        let model = model();
        let outcome = classify_record(
            &model,
            InputFormat::Raw,
            &record(b"Subject: cheap pills\r\n\r\nbuy now", Some(b"k1")),
            limits(1024),
        );
        let Outcome::Labeled(event) = outcome else {
            panic!("expected a labeled event, got {outcome:?}");
        };
        assert_eq!(event.message_id, "k1");
        assert_eq!(event.model_id, model.metadata().model_id);
        assert_eq!(
            event.source.as_ref().map(|s| (s.partition, s.offset)),
            Some((2, 7))
        );
        assert_eq!(
            event.source.as_ref().map(|s| s.timestamp_unix_micros),
            Some(1_000_000)
        );
        assert_eq!(event.category_scores.len(), Category::ALL.len());
    }

    #[test]
    fn message_id_falls_back_to_header_then_coordinates() {
        let model = model();
        let with_header = record(b"Message-ID: <abc@example.org>\r\n\r\nhello", None);
        let Outcome::Labeled(event) =
            classify_record(&model, InputFormat::Raw, &with_header, limits(64))
        else {
            panic!("expected a labeled event");
        };
        assert_eq!(event.message_id, "abc@example.org");
        let Outcome::Labeled(event) = classify_record(
            &model,
            InputFormat::Raw,
            &record(b"hello", None),
            limits(64),
        ) else {
            panic!("expected a labeled event");
        };
        assert_eq!(event.message_id, "in/2/7");
    }

    #[test]
    fn empty_and_undecodable_records_become_dead_letters() {
        let model = model();
        let Outcome::DeadLetter(dead) = classify_record(
            &model,
            InputFormat::Raw,
            &record(b"", Some(b"k")),
            limits(64),
        ) else {
            panic!("expected a dead letter");
        };
        assert_eq!(dead.error_kind(), v1::ErrorKind::Empty);
        assert_eq!(dead.original_key, b"k");
        let garbage = [0xffu8; 300];
        let Outcome::DeadLetter(dead) = classify_record(
            &model,
            InputFormat::Protobuf,
            &record(&garbage, None),
            limits(100),
        ) else {
            panic!("expected a dead letter");
        };
        assert_eq!(dead.error_kind(), v1::ErrorKind::UndecodableProtobuf);
        assert_eq!((dead.original.len(), dead.original_size), (100, 300));
        assert!(dead.original_truncated);
        assert_eq!(dead.source.map(|s| s.offset), Some(7));
    }

    #[test]
    fn protobuf_input_is_unwrapped() {
        let model = model();
        let inbound = v1::InboundMail {
            message_id: "m-9".into(),
            raw: b"Subject: hello\r\n\r\nlunch tomorrow?".to_vec(),
            envelope: Some(v1::SmtpEnvelope {
                tenant: "acme".into(),
                ..v1::SmtpEnvelope::default()
            }),
        };
        let value = inbound.encode_to_vec();
        let Outcome::Labeled(event) = classify_record(
            &model,
            InputFormat::Protobuf,
            &record(&value, Some(b"k")),
            limits(64),
        ) else {
            panic!("expected a labeled event");
        };
        assert_eq!(
            (event.message_id.as_str(), event.tenant.as_str()),
            ("m-9", "acme")
        );
        let direct = model.classify(&inbound.raw);
        assert_eq!(event.spam_probability, direct.spam_probability);
    }

    #[test]
    fn oversized_messages_are_cut_and_flagged() {
        let model = model();
        let mut big = b"Subject: long\r\n\r\n".to_vec();
        big.resize(5_000, b'a');
        let limits = RecordLimits {
            max_message_bytes: 1_000,
            dead_letter_max_bytes: 10,
        };
        let Outcome::Labeled(event) =
            classify_record(&model, InputFormat::Raw, &record(&big, Some(b"k")), limits)
        else {
            panic!("expected a labeled event");
        };
        assert!(
            event.flags.iter().any(|f| f == "message_truncated"),
            "{:?}",
            event.flags
        );
    }

    #[test]
    fn json_lines_name_category_for_spam_only() {
        let model = model();
        let verdict = model.classify(b"Subject: x\r\n\r\ny");
        let event = labeled_mail("m".into(), &verdict, "sf-x");
        let line = serde_json::to_value(EventLine::new("m", &event)).unwrap_or_default();
        assert_eq!(line["id"], "m");
        assert_eq!(line["model_id"], "sf-x");
        assert_eq!(
            line["category_scores"].as_object().map(|o| o.len()),
            Some(7)
        );
        if !verdict.spam {
            assert!(line["category"].is_null());
        }
    }
}

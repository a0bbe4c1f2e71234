//! From a consumed record to what is published for it: a `LabeledMail` or a `DeadLetter`. No
//! I/O here; the pipeline hands records in and sends the results.

use std::collections::HashSet;
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

/// Recipients no person uses: whatever reaches them is spam. Entries are whole addresses
/// (`trap@example.org`) or domains (`@traps.example.org` or `traps.example.org`: every address
/// at that domain); matching ignores case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrapAccounts {
    addresses: HashSet<String>,
    domains: HashSet<String>,
}

impl TrapAccounts {
    /// The trap list of `entries`.
    pub fn new(entries: &[String]) -> Self {
        let mut traps = TrapAccounts::default();
        for entry in entries {
            let entry = entry.trim().to_ascii_lowercase();
            match entry.strip_prefix('@') {
                Some(domain) => traps.domains.insert(domain.to_owned()),
                None if entry.contains('@') => traps.addresses.insert(entry),
                None if !entry.is_empty() => traps.domains.insert(entry),
                None => false,
            };
        }
        traps
    }

    /// True when no trap is configured.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.domains.is_empty()
    }

    /// Whether `address` (any case) is a trap.
    pub fn contains(&self, address: &str) -> bool {
        let address = address.trim().to_ascii_lowercase();
        self.addresses.contains(&address)
            || address
                .rsplit_once('@')
                .is_some_and(|(_, domain)| self.domains.contains(domain))
    }
}

/// Turns input records into what is published for them. The serving model decides; a shadow
/// model, when given, scores the same message for comparison only.
#[derive(Debug, Clone, Copy)]
pub struct RecordScorer<'a> {
    /// The model whose verdicts are published.
    pub model: &'a Model,
    /// A candidate scored beside it.
    pub shadow: Option<&'a Model>,
    /// How input records carry a message.
    pub format: InputFormat,
    /// Size limits.
    pub limits: RecordLimits,
    /// Trap accounts: messages addressed to one also become spam `Feedback`.
    pub traps: &'a TrapAccounts,
}

/// Everything published or measured for one input record.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The labeled event or dead letter.
    pub outcome: Outcome,
    /// A spam report for the feedback topic, when the message reached a trap account.
    pub trap_feedback: Option<v1::Feedback>,
    /// How the shadow model's verdict compares, when one scored.
    pub shadow: Option<ShadowComparison>,
}

/// The serving and the shadow model's verdicts on one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShadowComparison {
    /// The serving model's spam verdict.
    pub serving_spam: bool,
    /// The shadow model's spam verdict.
    pub shadow_spam: bool,
    /// |shadow - serving| spam probability.
    pub probability_difference: f32,
    /// The serving model's category.
    pub serving_category: Category,
    /// The shadow model's category.
    pub shadow_category: Category,
}

impl RecordScorer<'_> {
    /// Scores one record. Raw input is always classified (any bytes make a verdict, flagged
    /// when odd or cut at `limits.max_message_bytes`); an empty value or an undecodable
    /// `InboundMail` becomes a dead letter keeping up to `limits.dead_letter_max_bytes` of the
    /// original value.
    pub fn score(&self, record: &InputRecord) -> Scored {
        let model = self.model;
        let dead_letter_max_bytes = self.limits.dead_letter_max_bytes;
        let dead = |kind: v1::ErrorKind, error: String| {
            let kept = record.value.len().min(dead_letter_max_bytes);
            Scored {
                outcome: Outcome::DeadLetter(v1::DeadLetter {
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
                }),
                trap_feedback: None,
                shadow: None,
            }
        };
        if record.value.is_empty() {
            // Checked first: an empty buffer is also a valid (empty) protobuf message.
            return dead(v1::ErrorKind::Empty, "the record has no value".into());
        }
        let inbound;
        let (message_id, raw, envelope) = match self.format {
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
        let whole = raw;
        let oversized = raw.len() > self.limits.max_message_bytes;
        let raw = &raw[..raw.len().min(self.limits.max_message_bytes)];
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
        let shadow = self.shadow.map(|shadow| {
            let shadow_verdict = if shadow.extracts_like(model) {
                shadow.score(&extraction.features, extraction.flags)
            } else {
                let parsed = shadow.extractor().parse(raw);
                let extraction = shadow.extractor().features_of(&parsed, None);
                shadow.score(&extraction.features, extraction.flags)
            };
            ShadowComparison {
                serving_spam: verdict.spam,
                shadow_spam: shadow_verdict.spam,
                probability_difference: (shadow_verdict.spam_probability
                    - verdict.spam_probability)
                    .abs(),
                serving_category: verdict.category,
                shadow_category: shadow_verdict.category,
            }
        });
        let message_id = if !message_id.is_empty() {
            message_id
        } else if let Some(key) = record.key.as_deref().filter(|k| !k.is_empty()) {
            String::from_utf8_lossy(key).into_owned()
        } else if let Some(id) = spamflow_features::message_id(raw, &extractor.config().limits) {
            id
        } else {
            format!("{}/{}/{}", record.topic, record.partition, record.offset)
        };
        let message_id = capped(message_id, MAX_ID_BYTES);
        let tenant = capped(
            envelope.map(|e| e.tenant.clone()).unwrap_or_default(),
            MAX_ID_BYTES,
        );
        let trap_feedback = self
            .reached_trap(raw, envelope, &extractor.config().limits)
            .then(|| {
                let kept = whole.len().min(dead_letter_max_bytes);
                v1::Feedback {
                    message_id: message_id.clone(),
                    raw: whole[..kept].to_vec(),
                    label: v1::Label::Spam as i32,
                    category: v1::Category::Unspecified as i32,
                    source: v1::FeedbackSource::TrapAccount as i32,
                    reported_unix_micros: now_us(),
                    tenant: tenant.clone(),
                    model_id: model.metadata().model_id.clone(),
                }
            });
        let mut event = labeled_mail(message_id, &verdict, &model.metadata().model_id);
        event.source = Some(source(record));
        event.timings = Some(v1::Timings {
            received_unix_micros: envelope.map_or(0, |e| e.received_unix_micros),
            consumed_unix_micros: record.consumed_at_us,
            produced_unix_micros: now_us(),
            parse_micros: micros(parsed_at - started),
            features_micros: micros(extracted_at - parsed_at),
            score_micros: micros(scored_at - extracted_at),
        });
        event.tenant = tenant;
        Scored {
            outcome: Outcome::Labeled(event),
            trap_feedback,
            shadow,
        }
    }

    /// Whether the message is addressed to a trap: by its SMTP envelope when the input carries
    /// one with recipients, otherwise by the envelope recipients the receiving server recorded
    /// in the header (`Delivered-To` and the like; never `To` or `Cc`, which the sender writes).
    fn reached_trap(
        &self,
        raw: &[u8],
        envelope: Option<&v1::SmtpEnvelope>,
        limits: &spamflow_features::Limits,
    ) -> bool {
        if self.traps.is_empty() {
            return false;
        }
        match envelope.filter(|e| !e.recipients.is_empty()) {
            Some(envelope) => envelope.recipients.iter().any(|r| self.traps.contains(r)),
            None => spamflow_features::delivery_recipients(raw, limits)
                .iter()
                .any(|r| self.traps.contains(r)),
        }
    }
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
    spam_name(verdict == v1::Verdict::Spam)
}

/// [`verdict_name`] of a spam decision.
pub fn spam_name(spam: bool) -> &'static str {
    if spam { "spam" } else { "ham" }
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

    fn classify(
        model: &Model,
        format: InputFormat,
        record: &InputRecord,
        limits: RecordLimits,
    ) -> Outcome {
        let traps = TrapAccounts::default();
        let scorer = RecordScorer {
            model,
            shadow: None,
            format,
            limits,
            traps: &traps,
        };
        scorer.score(record).outcome
    }

    #[test]
    fn trap_entries_match_addresses_and_domains_in_any_case() {
        let traps = TrapAccounts::new(&[
            "Trap@Example.org".into(),
            "@traps.example.net".into(),
            "bait.example.com".into(),
            " ".into(),
        ]);
        assert!(traps.contains("trap@example.ORG"));
        assert!(traps.contains("anyone@Traps.Example.Net"));
        assert!(traps.contains("x@bait.example.com"));
        assert!(!traps.contains("other@example.org"));
        assert!(!traps.contains("x@sub.traps.example.net"));
        assert!(!traps.contains(""));
        assert!(TrapAccounts::new(&[]).is_empty());
    }

    #[test]
    fn trap_hits_become_spam_feedback_by_envelope_or_headers() {
        let model = model();
        let traps = TrapAccounts::new(&["@traps.example.net".into()]);
        let scorer = RecordScorer {
            model: &model,
            shadow: None,
            format: InputFormat::Protobuf,
            limits: limits(1 << 20),
            traps: &traps,
        };
        let inbound = |recipients: &[&str], header: &str| {
            v1::InboundMail {
                message_id: "m-1".into(),
                raw: format!("{header}\r\nSubject: hello\r\n\r\nlunch?").into_bytes(),
                envelope: Some(v1::SmtpEnvelope {
                    recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
                    tenant: "acme".into(),
                    ..v1::SmtpEnvelope::default()
                }),
            }
            .encode_to_vec()
        };
        // The envelope decides when it names recipients, whatever the headers say.
        let hit = scorer.score(&record(
            &inbound(
                &["a@example.org", "spam@traps.example.net"],
                "To: a@example.org",
            ),
            None,
        ));
        let feedback = hit.trap_feedback.unwrap_or_default();
        assert_eq!(feedback.label(), v1::Label::Spam);
        assert_eq!(feedback.source(), v1::FeedbackSource::TrapAccount);
        assert_eq!(
            (feedback.message_id.as_str(), feedback.tenant.as_str()),
            ("m-1", "acme")
        );
        assert!(feedback.raw.starts_with(b"To: a@example.org"));
        assert!(matches!(hit.outcome, Outcome::Labeled(_)));
        let miss = scorer.score(&record(
            &inbound(&["a@example.org"], "Delivered-To: x@traps.example.net"),
            None,
        ));
        assert_eq!(miss.trap_feedback, None);
        // Without envelope recipients (or raw input) the receiving server's header fields
        // decide; `To` and `Cc`, which any sender writes, do not.
        let by_header = scorer.score(&record(
            &inbound(&[], "Delivered-To: X@TRAPS.example.net"),
            None,
        ));
        assert!(by_header.trap_feedback.is_some());
        let by_to = scorer.score(&record(&inbound(&[], "To: x@traps.example.net"), None));
        assert!(by_to.trap_feedback.is_none());
        let raw = RecordScorer {
            format: InputFormat::Raw,
            ..scorer
        };
        assert!(
            raw.score(&record(
                b"Delivered-To: t@traps.example.net\r\n\r\nhi",
                Some(b"k")
            ))
            .trap_feedback
            .is_some()
        );
        assert!(
            raw.score(&record(b"To: t@example.net\r\n\r\nhi", Some(b"k")))
                .trap_feedback
                .is_none()
        );
    }

    #[test]
    fn a_shadow_model_is_compared_but_never_published() {
        let serving = model();
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/default.spamflow"
        ))
        .unwrap_or_default();
        let mut artifact =
            spamflow_model::ModelArtifact::from_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"));
        // A shadow that calls everything spam.
        artifact.metadata.model_id = "sf-shadow".into();
        artifact.threshold = 0.0;
        let shadow = Model::from_artifact(artifact).unwrap_or_else(|e| panic!("{e}"));
        assert!(shadow.extracts_like(&serving));
        let traps = TrapAccounts::default();
        let scorer = RecordScorer {
            model: &serving,
            shadow: Some(&shadow),
            format: InputFormat::Raw,
            limits: limits(64),
            traps: &traps,
        };
        let scored = scorer.score(&record(
            b"Subject: lunch\r\n\r\nsee you at noon",
            Some(b"k"),
        ));
        let Outcome::Labeled(event) = &scored.outcome else {
            panic!("expected a labeled event");
        };
        assert_eq!(event.model_id, serving.metadata().model_id);
        assert_eq!(event.verdict(), v1::Verdict::Ham);
        let comparison = scored.shadow.unwrap_or_else(|| panic!("no comparison"));
        assert!(!comparison.serving_spam && comparison.shadow_spam);
        assert_eq!(
            comparison.probability_difference, 0.0,
            "same weights, same probability"
        );

        // A shadow whose features are computed differently extracts its own.
        let mut artifact =
            spamflow_model::ModelArtifact::from_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"));
        artifact.feature_config.word_pairs = !artifact.feature_config.word_pairs;
        let other = Model::from_artifact(artifact).unwrap_or_else(|e| panic!("{e}"));
        assert!(!other.extracts_like(&serving));
        let message = b"Subject: cheap meds\r\n\r\nbuy cheap pills online now";
        let scored = RecordScorer {
            shadow: Some(&other),
            ..scorer
        }
        .score(&record(message, Some(b"k")));
        let comparison = scored.shadow.unwrap_or_else(|| panic!("no comparison"));
        let expected = (other.classify(message).spam_probability
            - serving.classify(message).spam_probability)
            .abs();
        assert_eq!(comparison.probability_difference, expected);
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
        let outcome = classify(
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
        let Outcome::Labeled(event) = classify(&model, InputFormat::Raw, &with_header, limits(64))
        else {
            panic!("expected a labeled event");
        };
        assert_eq!(event.message_id, "abc@example.org");
        let Outcome::Labeled(event) = classify(
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
        let Outcome::DeadLetter(dead) = classify(
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
        let Outcome::DeadLetter(dead) = classify(
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
        let Outcome::Labeled(event) = classify(
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
            classify(&model, InputFormat::Raw, &record(&big, Some(b"k")), limits)
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

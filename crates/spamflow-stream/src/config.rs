//! `spamflow run` configuration: one TOML file, `SPAMFLOW_*` environment overrides, then flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// How input records carry a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// The record value is the raw RFC 5322 message.
    Raw,
    /// The record value is an `InboundMail` protobuf.
    Protobuf,
}

/// Delivery guarantee of labeled events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Transactional producer; consumed offsets are committed inside the transaction.
    ExactlyOnce,
    /// Offsets are committed only after the producer acknowledged every event of the batch;
    /// a crash can repeat events, never lose them.
    AtLeastOnce,
}

/// Everything `spamflow run` can be told. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Consumer group id.
    pub group: String,
    /// Topics to consume.
    pub input_topics: Vec<String>,
    /// Topic for labeled events.
    pub output_topic: String,
    /// Topic for records that could not be decoded.
    pub dead_letter_topic: String,
    /// When set, spam is also published to this topic, `{category}` replaced by the category
    /// (for example `mail.spam.{category}`).
    pub category_topic: Option<String>,
    /// How input records carry a message.
    pub input_format: InputFormat,
    /// Delivery guarantee.
    pub delivery: Delivery,
    /// Model file; without it (and without `model_registry`), the model built into the binary.
    pub model: Option<PathBuf>,
    /// Model registry folder (see `spamflow models`): the model its `CURRENT` pointer names
    /// serves, and a promotion or rollback is followed without a restart. Excludes `model`.
    pub model_registry: Option<PathBuf>,
    /// A candidate model file scored beside the serving model on every message: only the
    /// serving model's verdicts are published; agreement goes to the `spamflow_shadow_*`
    /// metrics.
    pub shadow_model: Option<PathBuf>,
    /// How often the model file, the registry pointer and the shadow model file are checked
    /// for changes, in seconds (0: only on SIGHUP).
    pub model_check_secs: u64,
    /// Topic for `Feedback` reports: trap-account hits are published there (user reports are
    /// produced there by other systems); `spamflow dataset export` reads it.
    pub feedback_topic: String,
    /// Trap accounts: recipient addresses (`trap@example.org`) or domains
    /// (`@traps.example.org`) that no person uses. Every message addressed to one is labeled
    /// as usual and also published to `feedback_topic` as a spam `Feedback`. Recipients come
    /// from the `InboundMail` envelope, or, without one, from the header fields the receiving
    /// server writes (`Delivered-To`, `X-Original-To`, `Envelope-To`, `X-Envelope-To`; never
    /// `To` or `Cc`, which the sender writes).
    pub trap_recipients: Vec<String>,
    /// Most records in one batch (one transaction).
    pub batch_max_messages: usize,
    /// Most bytes of record values in one batch.
    pub batch_max_bytes: usize,
    /// Longest wait for a batch to fill, in milliseconds.
    pub batch_max_wait_ms: u64,
    /// Largest message classified whole: a longer one is classified on its first
    /// `max_message_bytes` and flagged `message_truncated`.
    pub max_message_bytes: usize,
    /// Most bytes of the original value kept in a dead letter (keep it under the broker's
    /// message size limit).
    pub dead_letter_max_bytes: usize,
    /// Scoring threads (0: one per core).
    pub workers: usize,
    /// Transactional id of this process (exactly-once). Give each replica a stable one (a pod
    /// name, say) so that a restarted replica fences its predecessor at once; default: the group
    /// plus a random suffix.
    pub transactional_id: Option<String>,
    /// Address of the HTTP listener for `/metrics`, `/healthz` and `/readyz` (empty: none).
    pub http_listen: String,
    /// Log as JSON lines instead of text.
    pub log_json: bool,
    /// Benchmark baseline: publish every input record unchanged to `output_topic`, with the same
    /// batching, transactions and client settings but no parsing or scoring.
    pub relay_only: bool,
    /// librdkafka properties for both clients (`security.protocol`, `sasl.*`, ...).
    pub kafka: BTreeMap<String, String>,
    /// librdkafka properties for the consumer only.
    pub consumer: BTreeMap<String, String>,
    /// librdkafka properties for the producer only.
    pub producer: BTreeMap<String, String>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            brokers: "127.0.0.1:9092".into(),
            group: "spamflow".into(),
            input_topics: vec!["mail.inbound".into()],
            output_topic: "mail.labeled".into(),
            dead_letter_topic: "mail.deadletter".into(),
            category_topic: None,
            input_format: InputFormat::Raw,
            delivery: Delivery::ExactlyOnce,
            model: None,
            model_registry: None,
            shadow_model: None,
            model_check_secs: 5,
            feedback_topic: "mail.feedback".into(),
            trap_recipients: Vec::new(),
            batch_max_messages: 500,
            batch_max_bytes: 16 << 20,
            batch_max_wait_ms: 100,
            max_message_bytes: 10 << 20,
            dead_letter_max_bytes: 900 << 10,
            workers: 0,
            transactional_id: None,
            http_listen: "127.0.0.1:9464".into(),
            log_json: false,
            relay_only: false,
            kafka: BTreeMap::new(),
            consumer: BTreeMap::new(),
            producer: BTreeMap::new(),
        }
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file, an environment variable or a flag holds a bad value.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// The values are readable but do not make sense together.
    #[error("invalid configuration: {0}")]
    Inconsistent(String),
}

impl RunConfig {
    /// Reads the defaults, then `file` (TOML), then `SPAMFLOW_*` environment variables (see
    /// `environment_overrides`), then `overrides` (flags).
    pub fn load(file: Option<&Path>, overrides: &RunOverrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RunConfig::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: RunConfig = figment
            .merge(Serialized::defaults(environment_overrides(
                std::env::vars_os()
                    .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
            )))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |what: &str| Err(ConfigError::Inconsistent(what.to_owned()));
        if self.input_topics.is_empty() {
            return bad("input_topics is empty");
        }
        if self.model.is_some() && self.model_registry.is_some() {
            return bad("model and model_registry exclude each other: give one");
        }
        let outputs = [
            &self.output_topic,
            &self.dead_letter_topic,
            &self.feedback_topic,
        ];
        if outputs.iter().any(|t| self.input_topics.contains(t))
            || self.category_topic.as_deref().is_some_and(|template| {
                self.input_topics
                    .iter()
                    .any(|t| template.split("{category}").all(|part| t.contains(part)))
            })
        {
            return bad("an output, dead-letter or category topic is also an input topic");
        }
        if self.batch_max_messages == 0 || self.batch_max_bytes == 0 || self.batch_max_wait_ms == 0
        {
            return bad(
                "batch_max_messages, batch_max_bytes and batch_max_wait_ms must be positive",
            );
        }
        if self
            .category_topic
            .as_deref()
            .is_some_and(|t| !t.contains("{category}"))
        {
            return bad("category_topic must contain {category}");
        }
        Ok(())
    }
}

/// The options set by `SPAMFLOW_<KEY>` variables among `variables`. Each value is read as the
/// option's type (text stays text, so `SPAMFLOW_GROUP=42` is the group "42"); list options take
/// comma-separated values; `SPAMFLOW_<TABLE>__<PROPERTY>` sets a librdkafka property in the
/// `kafka`, `consumer` or `producer` table, `_` standing for `.` (`SPAMFLOW_PRODUCER__LINGER_MS`
/// sets `linger.ms`). Variables that name no option (`SPAMFLOW_BIN`, say) are ignored.
fn environment_overrides(variables: impl Iterator<Item = (String, String)>) -> serde_json::Value {
    use serde_json::Value;
    let defaults = match serde_json::to_value(RunConfig::default()) {
        Ok(Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    let mut out = serde_json::Map::new();
    for (name, raw) in variables {
        let Some(key) = name.strip_prefix("SPAMFLOW_") else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        if let Some((table, property)) = key.split_once("__") {
            if matches!(defaults.get(table), Some(Value::Object(_))) {
                let entry = out
                    .entry(table.to_owned())
                    .or_insert_with(|| Value::Object(serde_json::Map::new()));
                if let Value::Object(map) = entry {
                    map.insert(property.replace('_', "."), Value::String(raw));
                }
            }
            continue;
        }
        let value = match defaults.get(&key) {
            None | Some(Value::Object(_)) => continue,
            Some(Value::Array(_)) => Value::Array(
                raw.split(',')
                    .map(|v| Value::String(v.trim().to_owned()))
                    .collect(),
            ),
            Some(Value::Bool(_)) => raw.parse::<bool>().map_or(Value::String(raw), Value::Bool),
            Some(Value::Number(_)) => raw
                .parse::<u64>()
                .map_or(Value::String(raw), |n| Value::Number(n.into())),
            Some(Value::String(_) | Value::Null) => Value::String(raw),
        };
        out.insert(key, value);
    }
    Value::Object(out)
}

/// Command-line overrides; `None` leaves the value of the file or environment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunOverrides {
    /// `--brokers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers: Option<String>,
    /// `--group`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `--input-topic` (repeatable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_topics: Option<Vec<String>>,
    /// `--output-topic`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_topic: Option<String>,
    /// `--model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// `--model-registry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_registry: Option<PathBuf>,
    /// `--shadow-model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_model: Option<PathBuf>,
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error by design
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "run.toml",
                r#"
                brokers = "file:9092"
                group = "from-file"
                output_topic = "out.file"
                delivery = "at_least_once"
                [consumer]
                "fetch.min.bytes" = "1000"
                "#,
            )?;
            jail.set_env("SPAMFLOW_GROUP", "from-env");
            jail.set_env("SPAMFLOW_BATCH_MAX_MESSAGES", "64");
            jail.set_env("SPAMFLOW_BIN", "/not/an/option");
            jail.set_env("SPAMFLOW_TRANSACTIONAL_ID", "42");
            jail.set_env("SPAMFLOW_PRODUCER__LINGER_MS", "20");
            jail.set_env("SPAMFLOW_INPUT_TOPICS", "a, b");
            jail.set_env(
                "SPAMFLOW_TRAP_RECIPIENTS",
                "trap@example.org,@traps.example.net",
            );
            let overrides = RunOverrides {
                output_topic: Some("out.flag".into()),
                ..RunOverrides::default()
            };
            let config = RunConfig::load(Some(Path::new("run.toml")), &overrides)
                .map_err(|e| e.to_string())?;
            assert_eq!(config.brokers, "file:9092");
            assert_eq!(config.group, "from-env");
            assert_eq!(config.output_topic, "out.flag");
            assert_eq!(config.batch_max_messages, 64);
            assert_eq!(config.delivery, Delivery::AtLeastOnce);
            assert_eq!(config.consumer["fetch.min.bytes"], "1000");
            assert_eq!(config.input_topics, ["a", "b"]);
            assert_eq!(
                config.trap_recipients,
                ["trap@example.org", "@traps.example.net"]
            );
            assert_eq!(config.transactional_id.as_deref(), Some("42"));
            assert_eq!(config.producer["linger.ms"], "20");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_combinations_are_refused() {
        figment::Jail::expect_with(|jail| {
            let refused = |name: &str, body: &str| -> figment::error::Result<String> {
                jail.create_file(name, body)?;
                Ok(
                    RunConfig::load(Some(Path::new(name)), &RunOverrides::default())
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_default(),
                )
            };
            let error = refused("typo.toml", "batch_max_mesages = 3\n")?;
            assert!(error.contains("batch_max_mesages"), "{error}");
            let error = refused("loop.toml", "output_topic = \"mail.inbound\"\n")?;
            assert!(error.contains("also an input topic"), "{error}");
            let error = refused("nowait.toml", "batch_max_wait_ms = 0\n")?;
            assert!(error.contains("must be positive"), "{error}");
            let error = refused(
                "two_models.toml",
                "model = \"a.spamflow\"\nmodel_registry = \"models\"\n",
            )?;
            assert!(error.contains("exclude each other"), "{error}");
            Ok(())
        });
    }
}

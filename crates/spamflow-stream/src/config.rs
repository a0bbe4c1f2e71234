//! `spamflow run` configuration: one TOML file, `SPAMFLOW_*` environment overrides, then flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
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
    /// Model file; without one, the model built into the binary.
    pub model: Option<PathBuf>,
    /// How often the model file is checked for changes, in seconds (0: only on SIGHUP).
    pub model_check_secs: u64,
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
            model_check_secs: 5,
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
    /// Reads the defaults, then `file` (TOML), then `SPAMFLOW_*` environment variables (nested
    /// keys with `__`, e.g. `SPAMFLOW_KAFKA__SECURITY.PROTOCOL`), then `overrides` (flags).
    pub fn load(file: Option<&Path>, overrides: &RunOverrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RunConfig::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        // Only variables naming an option count: SPAMFLOW_BIN and the like belong to others.
        let options: Vec<String> = match serde_json::to_value(RunConfig::default()) {
            Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let environment = Env::prefixed("SPAMFLOW_").split("__").filter(move |key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            options.iter().any(|o| o.eq_ignore_ascii_case(top))
        });
        let config: RunConfig = figment
            .merge(environment)
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
        if self.input_topics.contains(&self.output_topic) {
            return bad("output_topic is also an input topic");
        }
        if self.batch_max_messages == 0 || self.batch_max_bytes == 0 {
            return bad("batch_max_messages and batch_max_bytes must be positive");
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
            assert_eq!(config.input_topics, ["mail.inbound"]);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_combinations_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "batch_max_mesages = 3\n")?;
            let error = RunConfig::load(Some(Path::new("typo.toml")), &RunOverrides::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains("batch_max_mesages"), "{error}");
            jail.create_file("loop.toml", "output_topic = \"mail.inbound\"\n")?;
            let error = RunConfig::load(Some(Path::new("loop.toml")), &RunOverrides::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains("also an input topic"), "{error}");
            Ok(())
        });
    }
}

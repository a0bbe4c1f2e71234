//! spamflow-stream: the Kafka runtime of spamflow.
//!
//! `spamflow run` consumes inbound mail (raw RFC 5322 bytes or `InboundMail` protobuf) in a
//! consumer group, scores batches on a worker pool with the model crate, and publishes one
//! `LabeledMail` per message (exactly once by default) plus dead letters for records that hold
//! no message. Metrics, health endpoints and model hot reload live here too; `replay` and `tail`
//! are the client tools for demos, backfills and tests. The model is reached only through its
//! serving calls (`Model::extractor`, `Model::score`).

mod config;
mod delivery;
mod event;
mod pipeline;
mod reload;
pub mod telemetry;
mod tools;

pub use config::{ConfigError, Delivery, InputFormat, RunConfig, RunOverrides};
pub use event::{
    EventLine, InputRecord, Outcome, RecordLimits, RecordScorer, Scored, ShadowComparison,
    TrapAccounts, labeled_mail,
};
pub use pipeline::{
    CATEGORY_HEADER, Control, MODEL_HEADER, Pipeline, RunError, RunSummary, VERDICT_HEADER,
};
pub use reload::{LoadError, ModelRole, ModelSlot, ModelSource};
pub use tools::{
    ClientSettings, FeedbackRead, FeedbackReport, ReplayFormat, ReplayMessage, ReportedLabel,
    ToolError, read_feedback, replay, tail,
};

//! Metrics (the `metrics` facade, rendered by the Prometheus exporter) and the HTTP endpoints
//! `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Records consumed from input topics (label `topic`).
pub const CONSUMED: &str = "spamflow_consumed_total";
/// Labeled events produced (label `topic`), counted when their batch is committed.
pub const PRODUCED: &str = "spamflow_produced_total";
/// Records sent to the dead-letter topic (label `kind`).
pub const DEAD_LETTERS: &str = "spamflow_dead_letters_total";
/// Verdicts given (label `verdict`: `spam` or `ham`).
pub const VERDICTS: &str = "spamflow_verdicts_total";
/// Spam verdicts by category (label `category`).
pub const CATEGORIES: &str = "spamflow_categories_total";
/// Seconds per batch stage (label `stage`: `poll`, `score`, `produce`, `commit`).
pub const STAGE_SECONDS: &str = "spamflow_stage_seconds";
/// Seconds from the input record's timestamp to the commit of its labeled event.
pub const END_TO_END_SECONDS: &str = "spamflow_end_to_end_seconds";
/// Records per batch.
pub const BATCH_SIZE: &str = "spamflow_batch_size";
/// Consumer lag in records (labels `topic`, `partition`), from librdkafka statistics.
pub const CONSUMER_LAG: &str = "spamflow_consumer_lag";
/// Transactions or at-least-once batches finished (label `outcome`: `commit` or `abort`).
pub const TRANSACTIONS: &str = "spamflow_transactions_total";
/// 1 for the model id that currently scores, 0 for models it replaced (label `model_id`).
pub const MODEL_INFO: &str = "spamflow_model_info";
/// Model reload attempts (labels `outcome`: `loaded` or `refused`; `role`: `serving` or
/// `shadow`).
pub const MODEL_RELOADS: &str = "spamflow_model_reloads_total";
/// 1 for the shadow model id that currently scores beside the serving one, 0 for replaced ones
/// (label `model_id`).
pub const SHADOW_MODEL_INFO: &str = "spamflow_shadow_model_info";
/// Messages scored by both models (labels `serving` and `shadow`: each model's verdict, `spam`
/// or `ham`); agreement is where the two labels are equal.
pub const SHADOW_VERDICTS: &str = "spamflow_shadow_verdicts_total";
/// Absolute difference between the shadow's and the serving model's spam probability.
pub const SHADOW_PROBABILITY_DIFFERENCE: &str = "spamflow_shadow_probability_difference";
/// Messages both models call spam, by the serving model's category (labels `category`;
/// `agreement`: `agree` when the shadow names the same category, else `disagree`).
pub const SHADOW_CATEGORIES: &str = "spamflow_shadow_categories_total";
/// Messages addressed to a trap account, published as spam `Feedback` (counted at commit).
pub const TRAP_HITS: &str = "spamflow_trap_hits_total";
/// Partitions currently assigned to this process.
pub const ASSIGNED_PARTITIONS: &str = "spamflow_assigned_partitions";

/// Liveness and readiness as seen by `/healthz` and `/readyz`.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    heartbeat_unix_secs: AtomicU64,
}

/// The processing loop must check in at least this often to count as alive.
const STALE_AFTER: Duration = Duration::from_secs(60);

impl Health {
    /// Alive from now on, not yet ready.
    pub fn new() -> Self {
        let health = Health::default();
        health.beat();
        health
    }

    /// Marks the loop alive now.
    pub fn beat(&self) {
        self.heartbeat_unix_secs
            .store(unix_secs(), Ordering::Relaxed);
    }

    /// Sets readiness: a model is loaded and the clients are connected.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    fn alive(&self) -> bool {
        unix_secs().saturating_sub(self.heartbeat_unix_secs.load(Ordering::Relaxed))
            <= STALE_AFTER.as_secs()
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The Prometheus recorder could not be installed.
    #[error("cannot install the metrics recorder: {0}")]
    Recorder(String),
    /// The HTTP listener could not bind.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The configured address.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn install_recorder() -> Result<PrometheusHandle, TelemetryError> {
    let seconds = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    let sizes = [1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0];
    let differences = [0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), &sizes))
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(SHADOW_PROBABILITY_DIFFERENCE.into()),
                &differences,
            )
        })
        .and_then(|b| b.install_recorder())
        .map_err(|e| TelemetryError::Recorder(e.to_string()))
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `address` from a background thread with its
/// own small runtime. Returns the bound address (useful with port 0).
pub fn serve_http(
    address: &str,
    handle: PrometheusHandle,
    health: Arc<Health>,
) -> Result<SocketAddr, TelemetryError> {
    let listen_error = |source| TelemetryError::Listen {
        address: address.to_owned(),
        source,
    };
    let listener = std::net::TcpListener::bind(address).map_err(listen_error)?;
    listener.set_nonblocking(true).map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(listen_error)?;
    std::thread::Builder::new()
        .name("spamflow-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let upkeep = handle.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        upkeep.run_upkeep();
                    }
                });
                let ready = health.clone();
                let app = Router::new()
                    .route("/metrics", get(move || async move { handle.render() }))
                    .route(
                        "/healthz",
                        get(move || async move { status(health.alive(), "alive") }),
                    )
                    .route(
                        "/readyz",
                        get(move || async move {
                            status(
                                ready.alive() && ready.ready.load(Ordering::Relaxed),
                                "ready",
                            )
                        }),
                    );
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        if let Err(error) = axum::serve(listener, app).await {
                            tracing::error!(%error, "HTTP listener stopped");
                        }
                    }
                    Err(error) => tracing::error!(%error, "HTTP listener failed"),
                }
            });
        })
        .map_err(listen_error)?;
    Ok(bound)
}

fn status(ok: bool, what: &'static str) -> (StatusCode, String) {
    if ok {
        (StatusCode::OK, format!("{what}\n"))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not {what}\n"))
    }
}

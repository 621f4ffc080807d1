//! The local HTTP endpoint: health and metrics (`health`: `/healthz`, `/metrics`,
//! `/api/status`) and the API (`api`: ledgers, alerts). It reads the store and the
//! shared counters; store work runs on the blocking pool (`blocking`), never on an async
//! worker, and it never depends on the commands or the running service's internals.

mod api;
mod health;

pub use health::{problems, render_metrics};

use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::modbus::poller;
use crate::sinks::SinkHealth;
use crate::store::Store;

pub struct AppState {
    pub store: Arc<Store>,
    /// The configuration, for the ledger endpoints.
    pub config: Arc<crate::config::Config>,
    pub sinks: Vec<Arc<SinkHealth>>,
    pub stats: poller::Stats,
    /// Every configured device with its labels.
    pub devices: Vec<DeviceLabels>,
    /// Unix ms of the last commit of readings to the store.
    pub last_commit_ms: Arc<AtomicI64>,
    /// No commit for this long means polling has stopped.
    pub polling_stall: Duration,
    pub sink_stall: Duration,
    pub started_ms: i64,
}

/// A device's labels in metrics and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLabels {
    pub device: String,
    pub bus: String,
    pub zone: String,
}

/// Runs store work on the blocking pool. Its error (or a task that panicked) answers
/// 500 with the reason.
pub(crate) async fn blocking<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()),
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/api/status", get(health::status))
        .route("/api/ledger/{month}", get(api::ledger))
        .route("/api/alerts", get(api::alerts))
        .route("/api/alerts/{id}/ack", axum::routing::post(api::ack))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found: try /healthz, /metrics or /api/status\n") })
        .with_state(state)
}

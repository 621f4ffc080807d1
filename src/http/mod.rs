//! The local HTTP endpoint: health and metrics (`health`: `/healthz`, `/metrics`,
//! `/api/status`), the API (`api`: ledgers, alerts) and device commands (`commands`: a
//! prepaid meter's valve, handed to its bus task). It reads the store and the shared
//! counters; store work runs on the blocking pool (`blocking`), never on an async worker,
//! and it never depends on the CLI or the running service's internals.

mod api;
mod commands;
pub mod config;
mod health;
pub mod page;
pub mod serve;

pub use health::{problems, render_metrics};

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
    /// What the writer reports: last commits, readings waiting in memory and why.
    pub intake: Arc<crate::store::Intake>,
    /// No commit for this long means polling has stopped.
    pub polling_stall: Duration,
    pub sink_stall: Duration,
    pub started_ms: i64,
    /// What every write must carry as `Authorization: Bearer …`; `None`: writes are off.
    pub token: Option<crate::secret::Secret>,
    /// What the alert destinations last said.
    pub alert_delivery: Arc<crate::alerts::deliver::DeliveryHealth>,
    /// What periodic jobs (the monthly ledger) could not do.
    pub jobs: Vec<Arc<JobHealth>>,
    /// One ledger computation at a time (each reads a month of every meter).
    pub ledger_slot: tokio::sync::Semaphore,
    /// Tasks started again after a failure, by name.
    pub restarts: Arc<crate::supervise::Restarts>,
    /// The way to each device's bus task, for commands (a meter's valve).
    pub commands: crate::modbus::command::Commands,
}

/// What a periodic job could not do in its last pass, for `/healthz` (`None`: fine).
#[derive(Debug, Default)]
pub struct JobHealth {
    problem: std::sync::Mutex<Option<String>>,
}

impl JobHealth {
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, p: Option<String>) {
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }
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

impl AppState {
    /// The one ledger slot (each ledger reads a month of every meter, and holds its
    /// tables while it renders them): waited for at most 30 s, then 503 with
    /// `Retry-After`, so that a flood of downloads neither grows memory nor holds
    /// connections for ever.
    pub(crate) async fn ledger_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Response> {
        let busy = || {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "10")],
                "the gateway is computing other ledgers; try again in a few seconds\n",
            )
                .into_response()
        };
        match tokio::time::timeout(Duration::from_secs(30), self.ledger_slot.acquire()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(busy()),
        }
    }
}

/// Largest request body any endpoint takes.
pub const MAX_BODY: usize = 64 * 1024;

/// Checks the bearer token of a request that changes state: `None` when it may go on,
/// else the answer: 403 when no token is configured (writes are off), 401 when it is
/// missing or wrong. Compared in constant time.
pub(crate) fn refusal(st: &AppState, headers: &axum::http::HeaderMap) -> Option<Response> {
    use subtle::ConstantTimeEq;
    let Some(token) = &st.token else {
        return Some((
            StatusCode::FORBIDDEN,
            "writes over HTTP are off: set [http] token_env or token_file in the configuration, then send it as `Authorization: Bearer TOKEN`\n",
        )
            .into_response());
    };
    // the scheme is case-insensitive (RFC 9110 §11.1): `bearer`, `BEARER` are the same
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, t)| t.trim());
    if bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
        None
    } else {
        Some(
            (
                StatusCode::UNAUTHORIZED,
                [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                "this endpoint needs `Authorization: Bearer TOKEN` with the gateway's token\n",
            )
                .into_response(),
        )
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/api/status", get(health::status))
        .route("/api/ledger/{month}", get(api::ledger))
        .route("/api/targets/{month}", get(api::targets))
        .route("/api/alerts", get(api::alerts))
        .route("/api/alerts/{id}/ack", axum::routing::post(api::ack))
        .route("/api/devices/{device}/valve", axum::routing::post(commands::valve))
        .route("/api/commands", get(commands::list))
        .merge(page::routes())
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found: try /, /healthz, /metrics or /api/status\n") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(serve::timeout))
        .layer(axum::middleware::from_fn(serve::security_headers))
        .with_state(state)
}

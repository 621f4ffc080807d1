//! Sinks: consumers of the local store that deliver readings to a receiver and move their
//! cursor only when the receiver confirmed (MQTT PubAck, InfluxDB 2xx).
//!
//! Each sink reports its state through a [`SinkHealth`] that `/healthz`, `/metrics` and
//! `/api/status` read.

pub mod influx;
pub mod mqtt;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;

#[derive(Debug, Default)]
pub struct SinkHealth {
    /// Shown in metrics and status, e.g. `mqtt`, `influxdb:plant`.
    pub name: String,
    /// The store cursor this sink advances.
    pub consumer: String,
    pub delivered: AtomicU64,
    pub failures: AtomicU64,
    pub set_aside: AtomicU64,
    /// Unix ms of the last confirmed delivery (0 = never).
    pub last_success_ms: AtomicI64,
    /// Unix ms of the last time the queue moved: a delivery, or a refused batch set
    /// aside. A sink whose queue moves is not stalled, even if it refuses data.
    pub last_progress_ms: AtomicI64,
    pub connected: AtomicBool,
    pub last_error: Mutex<Option<String>>,
    /// Unix ms of the last batch the receiver refused (0 = never): with no delivery since,
    /// it refuses everything.
    pub last_refused_ms: AtomicI64,
}

impl SinkHealth {
    pub fn new(name: &str, consumer: &str) -> SinkHealth {
        SinkHealth { name: name.into(), consumer: consumer.into(), ..Default::default() }
    }

    pub fn success(&self, n: u64) {
        self.delivered.fetch_add(n, Ordering::Relaxed);
        let now = Utc::now().timestamp_millis();
        self.last_success_ms.store(now, Ordering::Relaxed);
        self.last_progress_ms.store(now, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// A batch was refused as malformed and set aside.
    pub fn refused(&self) {
        self.set_aside.fetch_add(1, Ordering::Relaxed);
        self.last_refused_ms.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// The queue moved without a delivery (a refused batch was set aside).
    pub fn progress(&self) {
        self.last_progress_ms.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    pub fn failure(&self, message: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
    }

    pub fn error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Resolves when the store has committed more readings. Once the writer is gone (no
/// pollers, or shutting down) it never resolves, so callers fall back to their timers
/// instead of spinning on a closed channel.
/// Runs store work of a sink on the blocking pool. A store locked by another process
/// makes a statement wait up to the busy timeout (5 s), and the store has one connection:
/// on an async worker that wait would stall the pollers' tasks with it.
pub async fn on_store<T: Send + 'static>(
    store: &std::sync::Arc<crate::store::Store>,
    f: impl FnOnce(&crate::store::Store) -> crate::store::Result<T> + Send + 'static,
) -> crate::store::Result<T> {
    let s = store.clone();
    match tokio::task::spawn_blocking(move || f(&s)).await {
        Ok(r) => r,
        Err(e) => {
            Err(crate::store::StoreError::Invalid { path: "store".into(), message: format!("store task failed: {e}") })
        }
    }
}

pub async fn changed(notify: &mut tokio::sync::watch::Receiver<i64>) {
    if notify.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Exponential backoff for reconnects and retries: 0.5 s doubling up to 30 s.
pub fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(30))
}

//! Supervision: every long-running task of the gateway (a bus's pollers, a sink, a
//! periodic job) runs under a supervisor that sees how it ended. A task that panics, or
//! ends while nobody asked it to, is logged with its name, counted
//! (`pumphouse_task_restarts_total{task=…}`) and started again after a backoff — a box
//! nobody visits must not lose a bus or a sink to one bad moment. A task that ends
//! because it was cancelled is not restarted.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Restarts per task name, for `/metrics` and `/api/status`.
#[derive(Debug, Default)]
pub struct Restarts(Mutex<BTreeMap<String, u64>>);

impl Restarts {
    fn count(&self, task: &str) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(task.to_string()).or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A run this long counts as healthy: the next failure backs off from the start again.
const HEALTHY_RUN: std::time::Duration = std::time::Duration::from_secs(60);

/// The pause before restart `attempt` (0-based): 0.5 s, doubling to at most 30 s.
fn backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6))).min(std::time::Duration::from_secs(30))
}

/// Runs `make()` on `tracker` and keeps it running until `cancel` (see the module doc).
pub fn spawn<F, Fut>(tracker: &TaskTracker, name: String, cancel: CancellationToken, restarts: Arc<Restarts>, make: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tracker.spawn(async move {
        let mut attempt = 0u32;
        loop {
            let started = tokio::time::Instant::now();
            let ended = tokio::spawn(make()).await;
            if cancel.is_cancelled() {
                return;
            }
            match ended {
                Ok(()) => tracing::error!(task = %name, "task ended without being asked to; starting it again"),
                Err(e) => tracing::error!(task = %name, error = %e, "task failed; starting it again"),
            }
            restarts.count(&name);
            // a task that ran healthily for a while starts its backoff afresh: one bad
            // moment a day must not cost 30 s each time
            if started.elapsed() >= HEALTHY_RUN {
                attempt = 0;
            }
            // 0.5 s, doubling to at most 30 s
            let delay = backoff(attempt);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_task_that_panics_is_counted_and_started_again_until_cancelled() {
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let restarts = Arc::new(Restarts::default());
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let c = cancel.clone();
        spawn(&tracker, "sink mqtt".into(), cancel.clone(), restarts.clone(), move || {
            let (r, c) = (r.clone(), c.clone());
            async move {
                // the first two runs fail, the third one runs until cancelled
                match r.fetch_add(1, Ordering::SeqCst) {
                    0 => panic!("a bad moment"),
                    1 => {}
                    _ => c.cancelled().await,
                }
            }
        });
        tracker.close();
        // restarts after 0.5 s and 1 s
        for _ in 0..100 {
            if runs.load(Ordering::SeqCst) >= 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(restarts.snapshot().get("sink mqtt"), Some(&2));
        cancel.cancel();
        tracker.wait().await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "a cancelled task is not started again");
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_healthy_run_the_backoff_starts_again() {
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let restarts = Arc::new(Restarts::default());
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        spawn(&tracker, "bus".into(), cancel.clone(), restarts.clone(), move || {
            let r = r.clone();
            async move {
                // eight quick failures (backoff grows to 30 s), then a healthy hour, then
                // one more failure
                if r.fetch_add(1, Ordering::SeqCst) == 8 {
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                }
            }
        });
        tracker.close();
        let start = tokio::time::Instant::now();
        while runs.load(Ordering::SeqCst) < 9 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // 0.5 + 1 + 2 + 4 + 8 + 16 + 30 + 30 s of backoff before the ninth run
        let ninth = start.elapsed();
        while runs.load(Ordering::SeqCst) < 10 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let tenth = start.elapsed() - ninth;
        assert!(
            tenth < std::time::Duration::from_secs(3601),
            "restarted 0.5 s after the healthy hour, not 30 s: {tenth:?}"
        );
        assert_eq!(backoff(0), std::time::Duration::from_millis(500));
        assert_eq!(backoff(7), std::time::Duration::from_secs(30));
        cancel.cancel();
        tracker.wait().await;
    }
}

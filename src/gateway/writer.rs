//! The writer: the one place polled readings are committed. It runs on a thread of its
//! own, so that SQLite's blocking calls never hold an async worker.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{mpsc, watch};

use crate::model::Reading;
use crate::store::Store;

/// Largest number of readings committed in one transaction.
const MAX_BATCH: usize = 5000;

/// How long the writer gathers polls after the first arrives before it commits them in
/// one transaction (group commit): the transaction's cost (its WAL frames, the header
/// write) is shared by every poll in the window. A reading waits at most this long
/// before it is committed; under load the window fills up at once.
const GATHER: std::time::Duration = std::time::Duration::from_millis(100);

/// Commits readings from the pollers to the store in batches and tells the consumers.
/// Ends when every poller has ended and the channel is drained: nothing read is dropped
/// on shutdown. Committed batches are also offered to `tap` (a display), which may miss
/// some when it is slow; the store has them all.
pub(super) fn spawn(
    store: Arc<Store>,
    rx: mpsc::Receiver<Vec<Reading>>,
    notify: watch::Sender<i64>,
    last_commit_ms: Arc<AtomicI64>,
    last_good_ms: Arc<AtomicI64>,
    tap: Option<mpsc::Sender<Vec<Reading>>>,
    failed: tokio_util::sync::CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    // a runtime of the writer's own, for waiting on the channel with a deadline
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    std::thread::Builder::new().name("pumphouse-writer".into()).spawn(move || {
        // Runs when the thread ends, normally or by a panic: the end is seen, never silent.
        struct Ended(tokio_util::sync::CancellationToken);
        impl Drop for Ended {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    tracing::error!("the store writer failed");
                    self.0.cancel();
                }
            }
        }
        let _ended = Ended(failed);
        rt.block_on(run(&store, rx, &notify, (&last_commit_ms, &last_good_ms), tap.as_ref()))
    })
}

async fn run(
    store: &Store,
    mut rx: mpsc::Receiver<Vec<Reading>>,
    notify: &watch::Sender<i64>,
    // when readings were last committed, and when a good one was
    (last_commit_ms, last_good_ms): (&AtomicI64, &AtomicI64),
    tap: Option<&mpsc::Sender<Vec<Reading>>>,
) {
    while let Some(first) = rx.recv().await {
        let mut batches = vec![first];
        let mut count = batches[0].len();
        let deadline = tokio::time::Instant::now() + GATHER;
        while count < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(more)) => {
                    count += more.len();
                    batches.push(more);
                }
                // the pollers have ended (shutdown), or the window is over
                Ok(None) | Err(_) => break,
            }
        }
        // the display gets the batches as they came; without one they are moved, not copied
        let all: Vec<Reading> = match tap {
            Some(_) => batches.iter().flatten().cloned().collect(),
            None => std::mem::take(&mut batches).into_iter().flatten().collect(),
        };
        let mut attempt = 0u32;
        loop {
            match store.append(&all) {
                Ok(last) => {
                    let _ = notify.send(last);
                    let now = Utc::now().timestamp_millis();
                    last_commit_ms.store(now, Ordering::Relaxed);
                    if all.iter().any(|r| r.quality.is_good()) {
                        last_good_ms.store(now, Ordering::Relaxed);
                    }
                    break;
                }
                Err(e) => {
                    // Keep the batch and hold the pollers (back-pressure) until the disk
                    // takes it again: losing readings here is what the store prevents.
                    if attempt == 0 {
                        tracing::error!(error = %e, readings = all.len(), "cannot commit readings; retrying");
                    }
                    attempt += 1;
                    std::thread::sleep(crate::sinks::retry_delay(attempt));
                }
            }
        }
        if let Some(t) = tap {
            for b in batches {
                let _ = t.try_send(b);
            }
        }
    }
}

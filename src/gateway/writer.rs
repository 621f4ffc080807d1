//! The writer: the one place polled readings are committed. It runs on a thread of its
//! own, so that SQLite's blocking calls never hold an async worker.
//!
//! It never holds the pollers up: readings it cannot commit yet wait in a bounded memory
//! queue, for two reasons.
//! - **The store refuses writes** (disk full, I/O error, read-only): the writer tries
//!   again with a growing delay (0.5 s up to 30 s, never a busy loop) and commits the
//!   queue when the store takes writes again.
//! - **The wall clock is not set** (see [`crate::clock`]): readings are held with their
//!   monotonic time and stamped again once it is.
//!
//! When the queue is full the oldest readings go first; each is counted (in `/metrics`
//! at once, and in the store's `dropped` table as `memory_queue` once it takes writes).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::clock::{Clock, Guard, Held};
use crate::model::Reading;
use crate::store::{Intake, Store};

/// The writer gathers polls until it holds this many readings (or [`GATHER`] is over).
const MAX_BATCH: usize = 5000;

/// Largest number of readings committed in one transaction: what one gathering holds
/// (the last poll's burst may take it past [`MAX_BATCH`]) goes in one, because every
/// transaction writes each series' page of the (series, time) index, however few of its
/// readings it holds; a backlog (after the store refused writes) goes in pieces this size.
const MAX_TRANSACTION: usize = 2 * MAX_BATCH;

/// How long the writer gathers polls after the first arrives before it commits them in
/// one transaction (group commit): the transaction's cost (its WAL frames, the header
/// write) is shared by every poll in the window. A reading waits at most this long
/// before it is committed; under load the window fills up at once.
const GATHER: std::time::Duration = std::time::Duration::from_millis(100);

/// How often held readings look at the clock again when nothing arrives.
const CLOCK_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// How long the writer keeps trying, once the pollers have stopped, to commit what waits
/// in memory before it gives up (and says how many readings are lost): well inside the
/// gateway's shutdown deadline, so that the report is written.
const LAST_TRIES: std::time::Duration = std::time::Duration::from_secs(3);

/// Everything the writer works with.
pub struct Writer {
    pub store: Arc<Store>,
    pub notify: watch::Sender<i64>,
    pub intake: Arc<Intake>,
    /// Committed batches are also offered here (a display), which may miss some when it is
    /// slow; the store has them all.
    pub tap: Option<mpsc::Sender<Vec<Reading>>>,
    /// Most readings waiting in memory (unwritten and held together).
    pub capacity: usize,
    pub clock: Arc<dyn Clock>,
    pub guard: Guard,
}

/// Starts the writer on its own thread. It ends when every poller has ended and what it
/// holds is committed (or, with the store refusing writes, after [`LAST_TRIES`]).
pub(super) fn spawn(
    w: Writer,
    rx: mpsc::Receiver<Vec<Reading>>,
    failed: tokio_util::sync::CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    // a runtime of the writer's own, for waiting on the channel with a deadline
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    // checkpoints beside it; without that thread the writer checkpoints as SQLite does
    let stop = tokio_util::sync::CancellationToken::new();
    let checkpoints = match checkpoints::spawn(w.store.clone(), w.notify.subscribe(), stop.clone()) {
        Ok(thread) => match w.store.defer_checkpoints(checkpoints::BACKSTOP_PAGES) {
            Ok(()) => Some(thread),
            Err(e) => {
                tracing::warn!(error = %e, "the writer keeps checkpointing the store itself");
                stop.cancel();
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the checkpoint thread: the writer checkpoints the store itself");
            None
        }
    };
    let stop_unstarted = stop.clone();
    let writer = std::thread::Builder::new().name("pumphouse-writer".into()).spawn(move || {
        // Runs when the thread ends, normally or by a panic: the end is seen, never silent.
        // The checkpoint thread stops with it either way.
        struct Ended(tokio_util::sync::CancellationToken, tokio_util::sync::CancellationToken);
        impl Drop for Ended {
            fn drop(&mut self) {
                self.1.cancel();
                if std::thread::panicking() {
                    tracing::error!("the store writer failed");
                    self.0.cancel();
                }
            }
        }
        let _ended = Ended(failed, stop.clone());
        rt.block_on(run(w, rx));
        stop.cancel();
        if let Some(thread) = checkpoints {
            let _ = thread.join();
        }
    });
    if writer.is_err() {
        stop_unstarted.cancel();
    }
    writer
}

/// The store refusing writes: how many tries so far, and when the next one is due.
struct Failing {
    attempt: u32,
    next: Instant,
    last_log: Instant,
}

/// Waits for readings (or until `wake`), then gathers what else arrives within
/// [`GATHER`], up to [`MAX_BATCH`]; marks `closed_at` when the pollers have ended.
async fn receive(
    rx: &mut mpsc::Receiver<Vec<Reading>>,
    wake: Option<Instant>,
    closed_at: &mut Option<Instant>,
) -> Vec<Vec<Reading>> {
    let mut batches = Vec::new();
    let first = match wake {
        None => rx.recv().await.ok_or(()),
        Some(at) => match tokio::time::timeout_at(at, rx.recv()).await {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(()),
            Err(_) => Ok(Vec::new()),
        },
    };
    match first {
        Ok(b) => {
            let mut count = b.len();
            batches.push(b);
            let deadline = Instant::now() + GATHER;
            while count > 0 && count < MAX_BATCH {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(more)) => {
                        count += more.len();
                        batches.push(more);
                    }
                    // the pollers have ended (shutdown), or the window is over
                    Ok(None) => {
                        *closed_at = Some(Instant::now());
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        Err(()) => *closed_at = Some(Instant::now()),
    }
    batches
}

pub async fn run(mut w: Writer, mut rx: mpsc::Receiver<Vec<Reading>>) {
    let mut pending: VecDeque<Reading> = VecDeque::new();
    let mut held: VecDeque<Held> = VecDeque::new();
    let mut failing: Option<Failing> = None;
    // dropped from memory, not yet counted in the store
    let mut uncounted: i64 = 0;
    let mut closed_at: Option<Instant> = None;
    loop {
        // Wait for readings, or until a retry is due or the clock should be looked at.
        let wake = match (&failing, held.is_empty()) {
            (Some(f), _) => Some(f.next),
            (None, false) => Some(Instant::now() + CLOCK_CHECK),
            (None, true) => None,
        };
        let mut batches = Vec::new();
        if closed_at.is_none() {
            batches = receive(&mut rx, wake, &mut closed_at).await;
        } else if let (Some(f), Some(at)) = (&failing, closed_at) {
            // stopping: the next try, but not past the last one
            tokio::time::sleep_until(f.next.min(at + LAST_TRIES)).await;
        }

        // Judge every stamp: hold those of a clock not set, flag those of a clock behind.
        let (wall, mono) = (w.clock.wall(), w.clock.mono().as_millis() as i64);
        for r in batches.into_iter().flatten() {
            match w.guard.admit(r, wall, mono) {
                Ok(r) => {
                    if r.quality == crate::model::Quality::ClockBehind {
                        w.intake.behind.fetch_add(1, Ordering::Relaxed);
                    }
                    pending.push_back(r);
                }
                Err(h) => {
                    if held.is_empty() {
                        tracing::error!(clock = %wall, built = %crate::clock::build_time(), "the clock is not set (earlier than this build): readings are held until it is");
                    }
                    held.push_back(h);
                }
            }
        }
        if !held.is_empty() && w.guard.is_set(wall) {
            tracing::warn!(clock = %wall, readings = held.len(), "the clock is set: held readings stamped again from the time they were taken");
            let mut released: VecDeque<Reading> = held.drain(..).map(|h| w.guard.release(h, wall, mono)).collect();
            released.append(&mut pending);
            pending = released;
        }

        if let Some((ahead, now)) = w.guard.take_far_step() {
            tracing::error!(newest = %ahead, clock = %now, "the clock stepped back more than a day: readings stamped after now were taken by a clock that ran ahead");
        }

        // Commit what waits, unless the store refused and the next try is not due yet.
        let last_chance = closed_at.is_some_and(|at| Instant::now() >= at + LAST_TRIES);
        if !pending.is_empty() && (last_chance || failing.as_ref().is_none_or(|f| Instant::now() >= f.next)) {
            commit(&mut w, &mut pending, &mut failing, &mut uncounted);
        }

        // Bounded: what could not be committed (or is held) past the capacity goes, the
        // oldest first, held ones (older) before unwritten ones.
        let over = (pending.len() + held.len()).saturating_sub(w.capacity);
        if over > 0 {
            let from_held = over.min(held.len());
            held.drain(..from_held);
            pending.drain(..over - from_held);
            if uncounted == 0 {
                tracing::error!(capacity = w.capacity, "readings waiting in memory exceed [store] memory_queue: the oldest are dropped (counted as memory_queue)");
            }
            uncounted += over as i64;
            w.intake.dropped.fetch_add(over as u64, Ordering::Relaxed);
        }
        w.intake.unwritten.store(pending.len() as i64, Ordering::Relaxed);
        w.intake.held.store(held.len() as i64, Ordering::Relaxed);

        if let Some(at) = closed_at {
            let given_up = Instant::now() >= at + LAST_TRIES;
            if (pending.is_empty() && held.is_empty()) || given_up {
                if !pending.is_empty() {
                    tracing::error!(
                        readings = pending.len(),
                        "stopping with readings the store refused: they are lost"
                    );
                }
                if !held.is_empty() {
                    tracing::error!(
                        readings = held.len(),
                        "stopping while the clock is not set: the readings held are lost"
                    );
                }
                return;
            }
            if failing.is_none() {
                // only held readings are left: look at the clock again in a while
                tokio::time::sleep_until((Instant::now() + CLOCK_CHECK).min(at + LAST_TRIES)).await;
            }
        }
    }
}

/// Commits `pending` in transactions of at most [`MAX_TRANSACTION`], oldest first, until it is
/// empty or the store refuses.
fn commit(w: &mut Writer, pending: &mut VecDeque<Reading>, failing: &mut Option<Failing>, uncounted: &mut i64) {
    while !pending.is_empty() {
        let n = pending.len().min(MAX_TRANSACTION);
        let chunk = &pending.make_contiguous()[..n];
        match w.store.append(chunk) {
            Ok(last) => {
                let _ = w.notify.send(last);
                let now = chrono::Utc::now().timestamp_millis();
                w.intake.last_commit_ms.store(now, Ordering::Relaxed);
                if chunk.iter().any(|r| r.quality.is_good()) {
                    w.intake.last_good_ms.store(now, Ordering::Relaxed);
                }
                if let Some(t) = &w.tap {
                    let _ = t.try_send(chunk.to_vec());
                }
                pending.drain(..n);
                if let Some(f) = failing.take() {
                    tracing::warn!(tries = f.attempt, "the store takes writes again");
                    w.intake.failing_since_ms.store(0, Ordering::Relaxed);
                    w.intake.set_error(None);
                }
                if *uncounted > 0 && w.store.count_dropped("memory_queue", *uncounted).is_ok() {
                    *uncounted = 0;
                }
            }
            Err(e) => {
                let now = Instant::now();
                let f = failing.get_or_insert_with(|| {
                    tracing::error!(error = %e, readings = pending.len(), "the store refuses writes; readings wait in memory");
                    w.intake.failing_since_ms.store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
                    Failing { attempt: 0, next: now, last_log: now }
                });
                f.attempt += 1;
                w.intake.refusals.fetch_add(1, Ordering::Relaxed);
                f.next = now + crate::sinks::retry_delay(f.attempt);
                if now.duration_since(f.last_log) >= std::time::Duration::from_secs(60) {
                    tracing::warn!(error = %e, readings = pending.len(), tries = f.attempt, "the store still refuses writes");
                    f.last_log = now;
                }
                w.intake.set_error(Some(e.to_string()));
                return;
            }
        }
    }
}

mod checkpoints;

#[cfg(test)]
mod tests;

//! The store's checkpoints, on a thread of their own beside the writer (why: the
//! store's `checkpoint` module).
//!
//! When: right after a commit (so that the checkpoint usually finishes before the next
//! one and the WAL can start over), once the WAL has grown by about [`TARGET_FRAMES`]
//! pages since the last checkpoint, and never later than [`MAX_WAIT`] after a commit: a
//! power cut takes back at most about that much of what was committed.
//!
//! The WAL's growth is told from the readings committed since, times the pages a reading
//! has been seen to cost ([`Cost`]). The WAL's own length does not tell it: the WAL
//! starts over only when a checkpoint has moved all of it and no reader is on it (the
//! sinks read often), so its length counts from a restart that may lie before or after
//! the last checkpoint.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::store::{Checkpointed, Store};

/// New pages of WAL a checkpoint aims to find (4 KiB each: 128 MiB). What a checkpoint
/// costs is the distinct pages it writes, and the same index pages come back in every
/// commit, so the longer the wait the less each reading costs (BENCHMARKS.md, "The
/// store's checkpoints").
pub const TARGET_FRAMES: i64 = 32_000;
/// Longest time between a commit and the checkpoint that syncs it.
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// The writer's own checkpoint, should this thread fall behind: at twice the target
/// (256 MiB; the WAL file is cut back to the store's 64 MiB after it).
pub const BACKSTOP_PAGES: u32 = 2 * TARGET_FRAMES as u32;
/// A failing checkpoint is told at most this often.
const TOLD_EVERY: Duration = Duration::from_secs(60);

/// Pages of WAL per reading committed, as measured between checkpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    per_reading: f64,
}

impl Default for Cost {
    /// Until measured: a page a reading (more than seen at any rate), so that the first
    /// checkpoints come early rather than late.
    fn default() -> Self {
        Cost { per_reading: 1.0 }
    }
}

impl Cost {
    /// Whether a checkpoint is due, `readings` committed and `since` elapsed since the last.
    pub fn due(&self, readings: i64, since: Duration) -> bool {
        readings > 0 && (readings as f64 * self.per_reading >= TARGET_FRAMES as f64 || since >= MAX_WAIT)
    }

    /// Learns from a checkpoint that found `found`, the one before having found `before`
    /// pages, `readings` committed in between. Only a WAL that did not start over in
    /// between tells its growth (one that did holds less than grew).
    pub fn learn(&mut self, before: i64, found: Checkpointed, readings: i64) {
        if before > 0 && found.wal_frames >= before && readings > 0 {
            let seen = (found.wal_frames - before) as f64 / readings as f64;
            self.per_reading = 0.5 * self.per_reading + 0.5 * seen;
        }
    }
}

/// Starts the checkpoint thread: it follows `commits` (the last committed sequence
/// number) and ends, after a last checkpoint, when `stop` fires.
pub fn spawn(
    store: Arc<Store>,
    commits: watch::Receiver<i64>,
    stop: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    std::thread::Builder::new()
        .name("pumphouse-checkpoint".into())
        .spawn(move || rt.block_on(run(store, commits, stop)))
}

async fn run(store: Arc<Store>, mut commits: watch::Receiver<i64>, stop: CancellationToken) {
    let mut cost = Cost::default();
    let mut last = Instant::now();
    let mut synced = *commits.borrow_and_update();
    let mut frames = 0;
    let mut told: Option<Instant> = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            changed = commits.changed() => if changed.is_err() { break },
            () = tokio::time::sleep_until(last + MAX_WAIT) => {}
        }
        let seq = *commits.borrow_and_update();
        if seq == synced {
            // nothing committed in the longest wait: nothing to sync
            last = Instant::now();
            continue;
        }
        if !cost.due(seq - synced, last.elapsed()) {
            continue;
        }
        let started = Instant::now();
        match store.checkpoint() {
            Ok(found) => {
                cost.learn(frames, found, seq - synced);
                tracing::debug!(wal_frames = found.wal_frames, moved = found.moved, readings = seq - synced, took = ?started.elapsed(), ?cost, "store checkpoint");
                frames = found.wal_frames;
                synced = seq;
                if told.take().is_some() {
                    tracing::info!("store checkpoints work again");
                }
            }
            Err(e) => {
                if told.is_none_or(|t| t.elapsed() >= TOLD_EVERY) {
                    tracing::warn!(error = %e, "store checkpoint failed; trying again (the writer checkpoints itself once the WAL holds {BACKSTOP_PAGES} pages)");
                    told = Some(Instant::now());
                }
            }
        }
        last = started;
    }
    if *commits.borrow() != synced {
        if let Err(e) = store.checkpoint() {
            tracing::warn!(error = %e, "last store checkpoint failed (SQLite checkpoints again when the store is next opened)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(wal_frames: i64) -> Checkpointed {
        Checkpointed { wal_frames, moved: wal_frames }
    }

    #[test]
    fn a_checkpoint_is_due_at_the_target_or_the_longest_wait() {
        let s = Duration::from_secs;
        let cost = Cost { per_reading: 0.25 };
        // 128 000 readings at a quarter page each: the target's 32 000 pages
        assert!(!cost.due(127_999, s(1)));
        assert!(cost.due(128_000, s(1)));
        // a slow site: the longest wait
        assert!(!cost.due(500, s(9)));
        assert!(cost.due(500, MAX_WAIT));
        // nothing new: nothing due
        assert!(!cost.due(0, s(60)));
        // not measured yet: a page a reading
        assert!(Cost::default().due(32_000, s(1)));
    }

    #[test]
    fn the_cost_is_learnt_only_from_a_wal_that_did_not_start_over() {
        let mut cost = Cost::default();
        // grew by 12 000 pages for 40 000 readings: 0.3, averaged with the 1.0 assumed
        cost.learn(20_000, found(32_000), 40_000);
        assert_eq!(cost, Cost { per_reading: 0.65 });
        // started over in between (shorter than before), or no earlier length: unchanged
        cost.learn(32_000, found(900), 40_000);
        cost.learn(0, found(12_000), 40_000);
        assert_eq!(cost, Cost { per_reading: 0.65 });
        cost.learn(10_000, found(22_000), 40_000);
        assert_eq!(cost, Cost { per_reading: 0.475 });
    }
}

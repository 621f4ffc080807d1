//! What the writer reports about readings on their way into the store: when it last
//! committed, and what waits in memory and why (the store refusing writes, the clock not
//! set). Shared with `/healthz` and `/metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Intake {
    /// Unix ms of the last commit of readings.
    pub last_commit_ms: AtomicI64,
    /// Unix ms of the last commit that held a good reading: timeouts are committed too,
    /// so every meter dead still commits.
    pub last_good_ms: AtomicI64,
    /// Readings waiting in memory because the store refuses writes.
    pub unwritten: AtomicI64,
    /// Readings held in memory until the wall clock is set.
    pub held: AtomicI64,
    /// Readings dropped from memory (oldest first) because the queue was full.
    pub dropped: AtomicU64,
    /// Readings committed flagged `clock_behind`.
    pub behind: AtomicU64,
    /// Commits the store refused (each retry counts).
    pub refusals: AtomicU64,
    /// Unix ms since when the store has refused every write (0: it accepts them).
    pub failing_since_ms: AtomicI64,
    /// Why the store refuses writes.
    error: Mutex<Option<String>>,
}

impl Intake {
    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_error(&self, e: Option<String>) {
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = e;
    }

    /// The sentences `/healthz` reports (empty: nothing waits).
    pub fn problems(&self, now_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        let since = self.failing_since_ms.load(Ordering::Relaxed);
        if since > 0 {
            out.push(format!(
                "the store has refused writes for {} s ({}); {} readings wait in memory, {} dropped since start",
                (now_ms - since).max(0) / 1000,
                self.error().unwrap_or_else(|| "no reason given".into()),
                self.unwritten.load(Ordering::Relaxed),
                self.dropped.load(Ordering::Relaxed),
            ));
        }
        let held = self.held.load(Ordering::Relaxed);
        if held > 0 {
            out.push(format!(
                "the clock reads {}, earlier than this build ({}): it is not set; {held} readings are held until it is",
                chrono::DateTime::from_timestamp_millis(now_ms).map_or_else(|| now_ms.to_string(), |t| t.to_rfc3339()),
                crate::clock::build_time().to_rfc3339(),
            ));
        }
        out
    }
}

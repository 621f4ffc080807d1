//! Checkpoints on a connection of their own, so that the writer never waits on one.
//!
//! A checkpoint copies the WAL's pages into the database file and syncs it (with
//! `synchronous = NORMAL`, the only sync: what a power cut cannot take back). SQLite
//! runs one inside a commit once the WAL holds 1000 pages. Readings of many series
//! touch a page of the (series, time) index each, so at a few hundred series that is
//! every second or third commit, on the writer's thread, writing mostly the same index
//! pages again. The gateway instead checkpoints from a thread of its own
//! ([`crate::gateway`]'s writer starts it) on a schedule, and leaves the writer's own
//! checkpoint as a backstop ([`Store::defer_checkpoints`]) should that thread fall
//! behind. Tools that open the store alone keep SQLite's default.

use std::sync::Mutex;

use rusqlite::Connection;

use super::{Result, Store, BUSY_TIMEOUT};

/// What one checkpoint found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpointed {
    /// Pages (frames) in the WAL when it ran.
    pub wal_frames: i64,
    /// Of those, how many are now in the database file.
    pub moved: i64,
}

/// The checkpoint connection, opened at the first checkpoint.
#[derive(Default)]
pub(super) struct Checkpointer(Mutex<Option<Connection>>);

impl Store {
    /// Copies what it can of the WAL into the database file without waiting for the
    /// writer or a reader (`PASSIVE`): the pages of a transaction still being read by a
    /// reader that started before it stay in the WAL until the next checkpoint.
    pub fn checkpoint(&self) -> Result<Checkpointed> {
        let mut guard = self.checkpointer.0.lock().unwrap_or_else(|e| e.into_inner());
        let conn = match &mut *guard {
            Some(conn) => conn,
            slot @ None => {
                let conn = Connection::open(&self.path).map_err(|e| self.err(e))?;
                conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.err(e))?;
                slot.insert(conn)
            }
        };
        let (wal_frames, moved) = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
            .map_err(|e| self.err(e))?;
        Ok(Checkpointed { wal_frames, moved })
    }

    /// The writer's connection checkpoints only once the WAL holds `pages` (SQLite's
    /// default is 1000): for a caller that runs [`Store::checkpoint`] itself.
    pub fn defer_checkpoints(&self, pages: u32) -> Result<()> {
        let inner = self.lock();
        inner.conn.pragma_update(None, "wal_autocheckpoint", pages).map_err(|e| self.err(e))
    }
}

//! The age and size limits, and the store's counters.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::{PruneReport, Result, Stats, Store, StoreError};

impl Store {
    fn count_drop(conn: &Connection, reason: &str, n: i64) -> rusqlite::Result<()> {
        if n > 0 {
            conn.execute(
                "INSERT INTO dropped (reason, count) VALUES (?1, ?2) ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count",
                params![reason, n],
            )?;
        }
        Ok(())
    }

    fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(((pages - free).max(0) * size) as u64)
    }

    /// Applies the age and size limits. `consumers` are the active consumers: records at
    /// or below all their cursors count as delivered.
    /// Readings at or after `keep_from` are never removed, for age or for size: the
    /// ledger's month that is not frozen yet needs them (the caller knows which; `None`:
    /// no such month). No `max_age` means no age limit.
    pub fn prune(
        &self,
        now: DateTime<Utc>,
        consumers: &[&str],
        keep_from: Option<DateTime<Utc>>,
    ) -> Result<PruneReport> {
        let mut cursors = Vec::new();
        for c in consumers {
            cursors.push(self.cursor(c)?);
        }
        let delivered_upto = cursors.iter().copied().min().unwrap_or(i64::MAX);
        let mut report = PruneReport::default();
        let keep = keep_from.map_or(i64::MAX, |t| t.timestamp_millis());
        let age_cutoff = match self.limits.max_age {
            // saturating: an age beyond the representable is no limit, never a negative one
            Some(age) => now.timestamp_millis().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX)),
            None => i64::MIN,
        };
        let cutoff = age_cutoff.min(keep);
        // In chunks, each its own transaction with its count, and the store let go between
        // them: a month of readings past the limit at once (the clock stepped, the limit
        // lowered) neither holds the writer up for minutes nor needs a WAL the size of
        // what is deleted.
        const AGED: &str =
            "DELETE FROM readings WHERE seq IN (SELECT seq FROM readings WHERE ts_ms < ?1 AND seq <= ?2 LIMIT 10000)";
        for (reason, bound) in [("age_delivered", delivered_upto), ("age_undelivered", i64::MAX)] {
            loop {
                let n = self.delete_chunk(AGED, params![cutoff, bound], reason)?;
                if reason == "age_delivered" {
                    report.delivered += n;
                } else {
                    report.undelivered += n;
                }
                if n < 10_000 {
                    break;
                }
            }
        }
        // Size: delete the oldest in chunks until under the limit; delivered ones first.
        const OLDEST: &str = "DELETE FROM readings WHERE seq IN (SELECT seq FROM readings WHERE seq <= ?1 AND ts_ms < ?2 ORDER BY seq LIMIT 10000)";
        for pass in ["size_delivered", "size_undelivered"] {
            loop {
                let used = Self::used_bytes(&self.lock().conn).map_err(|e| self.err(e))?;
                if used <= self.limits.max_size {
                    break;
                }
                let bound = if pass == "size_delivered" { delivered_upto } else { i64::MAX };
                let n = self.delete_chunk(OLDEST, params![bound, keep], pass)?;
                if n == 0 {
                    if pass == "size_undelivered" && keep_from.is_some() {
                        tracing::warn!(store = %self.path, max_size = self.limits.max_size, "store over its size limit: the readings of the ledger month not frozen yet are kept");
                    }
                    break;
                }
                if pass == "size_delivered" {
                    report.delivered += n;
                } else {
                    report.undelivered += n;
                }
            }
        }
        let inner = self.lock();
        let conn = &inner.conn;
        let e = |source| StoreError::Sqlite { path: self.path.clone(), source };
        // refused batches are kept for inspection, within bounds: as long as readings, and
        // at most a twentieth of the store (at least 1 MiB); what goes is counted
        let aside_cutoff =
            conn.execute("DELETE FROM set_aside WHERE at_ms < ?1", params![age_cutoff]).map_err(e)? as i64;
        let budget = (self.limits.max_size / 20).max(1 << 20) as i64;
        let mut aside_size = 0i64;
        let sizes: Vec<(i64, i64)> = {
            let mut stmt = conn.prepare_cached("SELECT id, length(body) FROM set_aside ORDER BY id DESC").map_err(e)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(e)?;
            rows.collect::<rusqlite::Result<_>>().map_err(e)?
        };
        let mut keep_from = None;
        for (id, len) in sizes {
            aside_size += len;
            if aside_size > budget {
                keep_from = Some(id);
                break;
            }
        }
        let aside_size_dropped = match keep_from {
            Some(id) => conn.execute("DELETE FROM set_aside WHERE id <= ?1", params![id]).map_err(e)? as i64,
            None => 0,
        };
        Self::count_drop(conn, "set_aside_batches", aside_cutoff + aside_size_dropped).map_err(e)?;
        if report.undelivered > 0 {
            tracing::warn!(dropped = report.undelivered, store = %self.path, "store limits reached: dropped undelivered readings");
        }
        Ok(report)
    }

    /// Runs one chunk's DELETE and counts what it removed as `reason`, in one transaction;
    /// the number removed.
    fn delete_chunk(&self, sql: &str, params: impl rusqlite::Params, reason: &str) -> Result<i64> {
        let mut inner = self.lock();
        let e = |source| StoreError::Sqlite { path: self.path.clone(), source };
        let tx = inner.conn.transaction().map_err(e)?;
        let n = tx.prepare_cached(sql).and_then(|mut st| st.execute(params)).map_err(e)? as i64;
        Self::count_drop(&tx, reason, n).map_err(e)?;
        tx.commit().map_err(e)?;
        self.records.fetch_sub(n, Ordering::Relaxed);
        Ok(n)
    }

    /// Counts `n` readings dropped for `reason` (persistently, like the limits' drops).
    pub fn count_dropped(&self, reason: &str, n: i64) -> Result<()> {
        let inner = self.lock();
        Self::count_drop(&inner.conn, reason, n).map_err(|e| self.err(e))
    }

    /// Caps the database at `pages` pages, as a full disk would (for tests).
    #[doc(hidden)]
    pub fn limit_pages(&self, pages: i64) -> Result<()> {
        let inner = self.lock();
        inner.conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(())).map_err(|e| self.err(e))
    }

    /// Refuses every write from now on (`PRAGMA query_only`), as a disk remounted
    /// read-only would (for tests).
    #[doc(hidden)]
    pub fn set_query_only(&self, on: bool) -> Result<()> {
        let inner = self.lock();
        inner.conn.pragma_update(None, "query_only", on).map_err(|e| self.err(e))
    }

    /// The database's size in pages now.
    #[doc(hidden)]
    pub fn page_count(&self) -> Result<i64> {
        let inner = self.lock();
        inner.conn.query_row("PRAGMA page_count", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    pub fn stats(&self) -> Result<Stats> {
        let inner = self.lock();
        let conn = &inner.conn;
        let e = |source| StoreError::Sqlite { path: self.path.clone(), source };
        // min and max of the primary key are index look-ups; the count is kept, not counted
        let (first, last): (i64, i64) = conn
            .query_row("SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM readings", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(e)?;
        let records = self.records();
        let mut dropped = HashMap::new();
        {
            let mut stmt = conn.prepare_cached("SELECT reason, count FROM dropped").map_err(e)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(e)?;
            for row in rows {
                let (k, v) = row.map_err(e)?;
                dropped.insert(k, v);
            }
        }
        let set_aside: i64 = conn.query_row("SELECT count(*) FROM set_aside", [], |r| r.get(0)).map_err(e)?;
        let bytes = Self::used_bytes(conn).map_err(e)?;
        Ok(Stats { records, first_seq: first, last_seq: last, bytes, dropped, set_aside })
    }
}

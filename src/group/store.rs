//! The group's own store (SQLite, WAL): the documents received from the sites, one row
//! per topic, a newer one replacing the older; and when each site was last heard from.
//! Replacing by topic makes a repeat (a retained document sent again) harmless.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection};

#[derive(Debug, thiserror::Error)]
#[error("group store: {0}")]
pub struct GroupStoreError(#[from] rusqlite::Error);

pub struct GroupStore {
    conn: Mutex<Connection>,
}

/// A document as kept: (site, kind, key, body).
pub type Kept = (String, String, String, serde_json::Value);

impl GroupStore {
    pub fn open(path: &Path) -> Result<GroupStore, GroupStoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS docs (
                site TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
                body TEXT NOT NULL, received_ms INTEGER NOT NULL,
                PRIMARY KEY (site, kind, key)
            ) WITHOUT ROWID;",
        )?;
        Ok(GroupStore { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a document (committed before the broker is acknowledged); `at_ms`: when the
    /// site sent it.
    pub fn put(&self, site: &str, kind: &str, key: &str, body: &str, now_ms: i64) -> Result<(), GroupStoreError> {
        self.lock().execute(
            "INSERT INTO docs (site, kind, key, body, received_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (site, kind, key) DO UPDATE SET body = excluded.body, received_ms = excluded.received_ms",
            params![site, kind, key, body, now_ms],
        )?;
        Ok(())
    }

    /// Every document of `kind` (and `key`, when given).
    pub fn docs(&self, kind: &str, key: Option<&str>) -> Result<Vec<Kept>, GroupStoreError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(
            "SELECT site, kind, key, body FROM docs WHERE kind = ?1 AND (?2 IS NULL OR key = ?2) ORDER BY site, key",
        )?;
        let rows = st.query_map(params![kind, key], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (site, kind, key, body) = r?;
            // a body that is not JSON was refused before it was kept; skip rather than fail
            if let Ok(v) = serde_json::from_str(&body) {
                out.push((site, kind, key, v));
            }
        }
        Ok(out)
    }

    /// Each site heard from: (site, last document received, documents kept).
    pub fn contact(&self) -> Result<Vec<(String, i64, i64)>, GroupStoreError> {
        let conn = self.lock();
        let mut st =
            conn.prepare_cached("SELECT site, max(received_ms), count(*) FROM docs GROUP BY site ORDER BY site")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }
}

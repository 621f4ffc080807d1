//! The audit trail of corrections. The store keeps each change as the JSON its author
//! (the ledger) wrote; reading it back is the ledger's business.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Result, Store};

/// A recorded correction as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrectionRow {
    pub id: i64,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    pub who: String,
    pub why: String,
    /// The change, as JSON.
    pub change: String,
}

impl Store {
    /// Records a correction (JSON of the change); returns its id. Never updates or
    /// deletes: the table is an audit trail.
    pub fn add_correction(&self, who: &str, why: &str, change_json: &str) -> Result<i64> {
        let inner = self.lock();
        inner
            .conn
            .execute(
                "INSERT INTO corrections (at_ms, who, why, change) VALUES (?1, ?2, ?3, ?4)",
                params![Utc::now().timestamp_millis(), who, why, change_json],
            )
            .map_err(|e| self.err(e))?;
        Ok(inner.conn.last_insert_rowid())
    }

    /// Every correction, oldest first.
    pub fn corrections(&self) -> Result<Vec<CorrectionRow>> {
        let raw: Vec<(i64, i64, String, String, String)> = self.select(
            &self.lock().conn,
            "SELECT id, at_ms, who, why, change FROM corrections ORDER BY id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        raw.into_iter()
            .map(|(id, at_ms, who, why, change)| Ok(CorrectionRow { id, at: self.time(at_ms)?, who, why, change }))
            .collect()
    }
}

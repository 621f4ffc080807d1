//! The log of commands sent to devices: who sent which, why, and what the device
//! answered. Rows are only ever added, as an audit trail.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Result, Store};

/// A command as logged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommandRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub device: String,
    pub action: String,
    pub who: String,
    pub why: String,
    /// What came of it: where the valve stands, or why it was not done.
    pub outcome: String,
}

impl Store {
    /// Logs a command and its outcome; returns its id.
    pub fn log_command(
        &self,
        at: DateTime<Utc>,
        device: &str,
        action: &str,
        who: &str,
        why: &str,
        outcome: &str,
    ) -> Result<i64> {
        let inner = self.lock();
        inner
            .conn
            .execute(
                "INSERT INTO commands (at_ms, device, action, who, why, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![at.timestamp_millis(), device, action, who, why, outcome],
            )
            .map_err(|e| self.err(e))?;
        Ok(inner.conn.last_insert_rowid())
    }

    /// The last `limit` commands, newest first.
    pub fn commands(&self, limit: usize) -> Result<Vec<CommandRow>> {
        let raw: Vec<(i64, i64, String, String, String, String, String)> = self.select(
            &self.lock().conn,
            "SELECT id, at_ms, device, action, who, why, outcome FROM commands ORDER BY id DESC LIMIT ?1",
            [limit as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )?;
        raw.into_iter()
            .map(|(id, at_ms, device, action, who, why, outcome)| {
                Ok(CommandRow { id, at: self.time(at_ms)?, device, action, who, why, outcome })
            })
            .collect()
    }
}

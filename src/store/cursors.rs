//! Consumers' cursors and the batches receivers refused.

use chrono::Utc;
use rusqlite::{params, OptionalExtension};

use super::{Result, Store};

impl Store {
    /// The consumer's cursor; a consumer seen for the first time starts at 0 (everything).
    /// Only reads: it works on a store that refuses writes.
    pub fn cursor(&self, consumer: &str) -> Result<i64> {
        let inner = self.lock();
        inner
            .conn
            .prepare_cached("SELECT seq FROM cursors WHERE consumer = ?1")
            .and_then(|mut st| st.query_row([consumer], |r| r.get(0)).optional())
            .map(|seq| seq.unwrap_or(0))
            .map_err(|e| self.err(e))
    }

    /// Moves the consumer's cursor forward to `seq` (never back).
    pub fn advance(&self, consumer: &str, seq: i64) -> Result<()> {
        let inner = self.lock();
        inner
            .conn
            .prepare_cached(
                "INSERT INTO cursors (consumer, seq) VALUES (?1, ?2)
                 ON CONFLICT (consumer) DO UPDATE SET seq = max(seq, excluded.seq)",
            )
            .and_then(|mut st| st.execute(params![consumer, seq]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Keeps a refused batch for inspection.
    pub fn set_aside(&self, consumer: &str, first: i64, last: i64, reason: &str, body: &str) -> Result<()> {
        let inner = self.lock();
        inner
            .conn
            .execute(
                "INSERT INTO set_aside (consumer, first_seq, last_seq, at_ms, reason, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![consumer, first, last, Utc::now().timestamp_millis(), reason, body],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

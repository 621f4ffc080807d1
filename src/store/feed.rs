//! What the group feed has published (`crate::gateway::feed`): each topic's digest and
//! whether its document is final, so that a pass sends only what changed.

use std::collections::HashMap;

use rusqlite::params;

use super::{Result, Store};

/// A document the broker confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedSent {
    pub digest: i64,
    /// A frozen month or one of its days.
    pub fixed: bool,
    /// When it was confirmed (ms).
    pub sent_ms: i64,
}

impl Store {
    /// Topic → what was last confirmed, for every document sent.
    pub fn feed_sent(&self) -> Result<HashMap<String, FeedSent>> {
        let rows: Vec<(String, i64, bool, i64)> =
            self.select(&self.lock().conn, "SELECT topic, digest, fixed, sent_ms FROM feed_sent", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
        Ok(rows.into_iter().map(|(t, digest, fixed, sent_ms)| (t, FeedSent { digest, fixed, sent_ms })).collect())
    }

    /// Marks documents confirmed: (topic, digest, final).
    pub fn feed_mark(&self, sent: &[(String, i64, bool)]) -> Result<()> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut up = tx
                .prepare_cached(
                    "INSERT INTO feed_sent (topic, digest, fixed, sent_ms) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (topic) DO UPDATE SET digest = excluded.digest, fixed = excluded.fixed, sent_ms = excluded.sent_ms",
                )
                .map_err(|e| self.err(e))?;
            let now = chrono::Utc::now().timestamp_millis();
            for (t, d, f) in sent {
                up.execute(params![t, d, f, now]).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }
}

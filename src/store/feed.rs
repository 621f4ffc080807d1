//! What the group feed has published (`crate::gateway::feed`): each topic's digest and
//! whether its document is final, so that a pass sends only what changed.

use std::collections::HashMap;

use rusqlite::params;

use super::{Result, Store};

impl Store {
    /// Topic → (digest, final) of every document confirmed by the broker.
    pub fn feed_sent(&self) -> Result<HashMap<String, (i64, bool)>> {
        let rows: Vec<(String, i64, bool)> =
            self.select(&self.lock().conn, "SELECT topic, digest, fixed FROM feed_sent", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        Ok(rows.into_iter().map(|(t, d, f)| (t, (d, f))).collect())
    }

    /// Marks documents confirmed: (topic, digest, final).
    pub fn feed_mark(&self, sent: &[(String, i64, bool)]) -> Result<()> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut up = tx
                .prepare_cached(
                    "INSERT INTO feed_sent (topic, digest, fixed) VALUES (?1, ?2, ?3) ON CONFLICT (topic) DO UPDATE SET digest = excluded.digest, fixed = excluded.fixed",
                )
                .map_err(|e| self.err(e))?;
            for (t, d, f) in sent {
                up.execute(params![t, d, f]).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }
}

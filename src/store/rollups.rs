//! Frozen ledger months: each meter's hourly consumption, kept after the raw readings
//! are pruned.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Result, Store};
use crate::model::Month;

/// One meter's consumption in one hour of a frozen month.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollupRow {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    pub volume: f64,
    /// The part of `volume` spread over a gap.
    pub estimated: f64,
}

impl Store {
    /// Keeps a month's hourly consumption per meter (`device.point`) for good: the
    /// ledger of a frozen month no longer needs the raw readings, which may be pruned.
    /// Replaces what was frozen for that month before.
    pub fn freeze_month(
        &self,
        month: Month,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        meters: &[(String, Vec<RollupRow>)],
    ) -> Result<()> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut del = tx
                .prepare_cached("DELETE FROM rollups WHERE meter = ?1 AND hour_ms >= ?2 AND hour_ms < ?3")
                .map_err(|e| self.err(e))?;
            let mut ins = tx
                .prepare_cached("INSERT INTO rollups (meter, hour_ms, volume, estimated) VALUES (?1, ?2, ?3, ?4)")
                .map_err(|e| self.err(e))?;
            for (meter, hours) in meters {
                del.execute(params![meter, from.timestamp_millis(), to.timestamp_millis()]).map_err(|e| self.err(e))?;
                for h in hours {
                    ins.execute(params![meter, h.hour.timestamp_millis(), h.volume, h.estimated])
                        .map_err(|e| self.err(e))?;
                }
            }
            tx.execute(
                "INSERT INTO frozen_months (month, at_ms) VALUES (?1, ?2) ON CONFLICT (month) DO UPDATE SET at_ms = excluded.at_ms",
                params![month.key(), Utc::now().timestamp_millis()],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The earliest frozen month, if any (its readings may be pruned by now).
    pub fn first_frozen(&self) -> Result<Option<Month>> {
        let inner = self.lock();
        let first: Option<String> =
            inner.conn.query_row("SELECT min(month) FROM frozen_months", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        Ok(first.as_deref().and_then(Month::parse))
    }

    /// When `month` was last frozen (ms), if it is.
    pub fn frozen_at(&self, month: Month) -> Result<Option<i64>> {
        let inner = self.lock();
        let at: Option<i64> = inner
            .conn
            .query_row("SELECT max(at_ms) FROM frozen_months WHERE month = ?1", [month.key()], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(at)
    }

    pub fn is_frozen(&self, month: Month) -> Result<bool> {
        let inner = self.lock();
        let n: i64 = inner
            .conn
            .query_row("SELECT count(*) FROM frozen_months WHERE month = ?1", [month.key()], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// The frozen hourly consumption of a meter (`device.point`) between two times.
    pub fn rollups(&self, meter: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<RollupRow>> {
        let raw: Vec<(i64, f64, f64)> = self.select(
            &self.lock().conn,
            "SELECT hour_ms, volume, estimated FROM rollups WHERE meter = ?1 AND hour_ms >= ?2 AND hour_ms < ?3 ORDER BY hour_ms",
            params![meter, from.timestamp_millis(), to.timestamp_millis()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        raw.into_iter()
            .map(|(ms, volume, estimated)| Ok(RollupRow { hour: self.time(ms)?, volume, estimated }))
            .collect()
    }
}

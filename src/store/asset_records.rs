//! The register's records of work on assets done by hand: a valve exercised or repaired,
//! a pipe section repaired (and the burst or leak it ended), with who recorded it and
//! why. Rows are only ever added (an audit trail).

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Result, Store};

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetWork {
    /// Turned from one end to the other and back (a gate valve that is never moved seizes).
    Exercise,
    Repair,
}

impl AssetWork {
    pub fn id(self) -> &'static str {
        match self {
            AssetWork::Exercise => "exercise",
            AssetWork::Repair => "repair",
        }
    }

    pub fn parse(s: &str) -> Option<AssetWork> {
        match s {
            "exercise" => Some(AssetWork::Exercise),
            "repair" => Some(AssetWork::Repair),
            _ => None,
        }
    }
}

/// One record as kept.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AssetRecord {
    pub id: i64,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    pub asset: String,
    pub kind: AssetWork,
    /// When the work was done.
    pub done: DateTime<Utc>,
    pub who: String,
    pub why: String,
    /// The burst or leak alert a repair ended, when the operator said which: the failure
    /// is then tied to this section.
    pub alert: Option<i64>,
}

impl Store {
    /// Adds a record; returns its id.
    pub fn add_asset_record(
        &self,
        asset: &str,
        kind: AssetWork,
        done: DateTime<Utc>,
        who: &str,
        why: &str,
        alert: Option<i64>,
    ) -> Result<i64> {
        let inner = self.lock();
        inner
            .conn
            .execute(
                "INSERT INTO asset_records (at_ms, asset, kind, done_ms, who, why, alert) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![Utc::now().timestamp_millis(), asset, kind.id(), done.timestamp_millis(), who, why, alert],
            )
            .map_err(|e| self.err(e))?;
        Ok(inner.conn.last_insert_rowid())
    }

    /// Every record, oldest first.
    pub fn asset_records(&self) -> Result<Vec<AssetRecord>> {
        type Row = (i64, i64, String, String, i64, String, String, Option<i64>);
        let raw: Vec<Row> = self.select(
            &self.lock().conn,
            "SELECT id, at_ms, asset, kind, done_ms, who, why, alert FROM asset_records ORDER BY id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
        )?;
        raw.into_iter()
            .map(|(id, at_ms, asset, kind, done_ms, who, why, alert)| {
                let kind =
                    AssetWork::parse(&kind).ok_or_else(|| self.invalid(format!("asset record {id}: kind `{kind}`")))?;
                Ok(AssetRecord { id, at: self.time(at_ms)?, asset, kind, done: self.time(done_ms)?, who, why, alert })
            })
            .collect()
    }

    /// Whether a valve's held readings have been read through once for its movements.
    pub fn valve_scanned(&self, device: &str) -> Result<bool> {
        let n: i64 = self
            .lock()
            .conn
            .query_row("SELECT count(*) FROM valve_scanned WHERE device = ?1", [device], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Notes the hours in which a valve's readings showed it moving (repeats are ignored);
    /// `scanned`: these came from every reading held of it.
    pub fn note_valve_moves(&self, device: &str, hours: &[DateTime<Utc>], scanned: bool) -> Result<()> {
        if hours.is_empty() && !scanned {
            return Ok(());
        }
        let mut inner = self.lock();
        let tx = inner.conn.transaction().map_err(|e| self.err(e))?;
        if scanned {
            tx.execute("INSERT OR IGNORE INTO valve_scanned (device) VALUES (?1)", [device])
                .map_err(|e| self.err(e))?;
        }
        {
            let mut ins = tx
                .prepare_cached("INSERT OR IGNORE INTO valve_moves (device, hour_ms) VALUES (?1, ?2)")
                .map_err(|e| self.err(e))?;
            for h in hours {
                ins.execute(params![device, h.timestamp_millis()]).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The hours a valve was seen moving, oldest first.
    pub fn valve_moves(&self, device: &str) -> Result<Vec<DateTime<Utc>>> {
        let raw: Vec<i64> = self.select(
            &self.lock().conn,
            "SELECT hour_ms FROM valve_moves WHERE device = ?1 ORDER BY hour_ms",
            [device],
            |r| r.get(0),
        )?;
        raw.into_iter().map(|ms| self.time(ms)).collect()
    }
}

//! The local store: the spine between the pollers and everything that consumes readings.
//!
//! Invariants:
//! 1. **A reading exists once it is committed here.** Pollers hand readings to one writer,
//!    which commits them in batches (SQLite, WAL, `synchronous = NORMAL`: a committed
//!    transaction survives a process crash; a power cut may lose the last few hundred
//!    milliseconds, never corrupt the file).
//! 2. **Every consumer has its own persistent cursor** (the highest sequence number it has
//!    had confirmed by its receiver) and reads in sequence order after it. A cursor only
//!    moves forward, and only after the receiver confirmed (MQTT PubAck, InfluxDB 2xx).
//!    After a crash, a consumer resumes after its cursor: the unconfirmed tail may be sent
//!    again, never skipped.
//! 3. **Sequence numbers are never reused** (`AUTOINCREMENT`), so a cursor cannot point
//!    at a different reading after pruning.
//! 4. **Bounded, never silently.** Past `max_age` or `max_size`, records that every
//!    consumer has taken go first; only then the oldest undelivered ones. Each drop is
//!    counted (persistently, by reason), logged, and exposed in metrics.
//! 5. Batches a receiver refuses as malformed are set aside here for inspection
//!    (`set_aside`), so they do not block the queue forever.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection};

use crate::model::{Quality, Quantity, Reading};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("store {path}: {message}")]
    Invalid { path: String, message: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_size: u64,
    pub max_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_size: 2 << 30, max_age: Duration::from_secs(90 * 86_400) }
    }
}

/// A stored reading with its sequence number.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: i64,
    pub reading: Reading,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    pub records: i64,
    pub first_seq: i64,
    pub last_seq: i64,
    pub bytes: u64,
    /// Records dropped by reason (`age_delivered`, `age_undelivered`, `size_delivered`,
    /// `size_undelivered`). Only the `undelivered` ones are losses.
    pub dropped: HashMap<String, i64>,
    pub set_aside: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub delivered: i64,
    pub undelivered: i64,
}

/// An alert as kept in the store.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub rule: String,
    pub subject: String,
    pub zone: String,
    pub device: Option<String>,
    pub severity: String,
    /// When the condition started (data time).
    pub start_ms: i64,
    /// When it cleared (data time); `None` while active.
    pub end_ms: Option<i64>,
    pub evidence: String,
    pub loss_per_day: Option<f64>,
    pub loss_fen_per_day: Option<i64>,
    pub acked_by: Option<String>,
    pub acked_ms: Option<i64>,
}

const ALERT_COLUMNS: &str =
    "id, rule, subject, zone, device, severity, start_ms, end_ms, evidence, loss_per_day, loss_fen_per_day, acked_by, acked_ms";

/// An alert row from a query that starts with [`ALERT_COLUMNS`].
fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        rule: r.get(1)?,
        subject: r.get(2)?,
        zone: r.get(3)?,
        device: r.get(4)?,
        severity: r.get(5)?,
        start_ms: r.get(6)?,
        end_ms: r.get(7)?,
        evidence: r.get(8)?,
        loss_per_day: r.get(9)?,
        loss_fen_per_day: r.get(10)?,
        acked_by: r.get(11)?,
        acked_ms: r.get(12)?,
    })
}

/// A recorded correction as stored: (id, recorded at ms, who, why, change as JSON).
pub type StoredCorrection = (i64, i64, String, String, String);

type SeriesKey = (Arc<str>, Arc<str>, Arc<str>, Arc<str>);

struct Series {
    site: Arc<str>,
    zone: Arc<str>,
    device: Arc<str>,
    point: Arc<str>,
    quantity: Quantity,
    unit: Arc<str>,
}

struct Inner {
    conn: Connection,
    ids: HashMap<SeriesKey, i64>,
    series: HashMap<i64, Series>,
}

pub struct Store {
    inner: Mutex<Inner>,
    /// New readings in the last `append` (see `last_added`).
    added: std::sync::atomic::AtomicUsize,
    path: String,
    limits: Limits,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL, zone TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL,
    quantity TEXT NOT NULL, unit TEXT NOT NULL,
    UNIQUE (site, zone, device, point)
);
CREATE TABLE IF NOT EXISTS readings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    series INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    value REAL,
    quality TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts_ms);
CREATE UNIQUE INDEX IF NOT EXISTS readings_series_ts_unique ON readings (series, ts_ms);
CREATE TABLE IF NOT EXISTS cursors (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dropped (reason TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rollups (
    meter TEXT NOT NULL, hour_ms INTEGER NOT NULL, volume REAL NOT NULL, estimated REAL NOT NULL,
    PRIMARY KEY (meter, hour_ms)
);
CREATE TABLE IF NOT EXISTS frozen_months (month TEXT PRIMARY KEY, at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    rule TEXT NOT NULL, subject TEXT NOT NULL, zone TEXT NOT NULL, device TEXT,
    severity TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER,
    evidence TEXT NOT NULL, loss_per_day REAL, loss_fen_per_day INTEGER,
    raised_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
    acked_by TEXT, acked_ms INTEGER,
    -- the updated_ms each destination last confirmed (durable delivery of changes)
    mqtt_ms INTEGER NOT NULL DEFAULT 0, webhook_ms INTEGER NOT NULL DEFAULT 0, influx_ms INTEGER NOT NULL DEFAULT 0,
    UNIQUE (rule, subject, start_ms)
);
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL, who TEXT NOT NULL, why TEXT NOT NULL,
    change TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS set_aside (
    id INTEGER PRIMARY KEY,
    consumer TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL, reason TEXT NOT NULL, body TEXT NOT NULL
);
";

impl Store {
    pub fn open(path: &Path, limits: Limits) -> Result<Store> {
        let p = path.display().to_string();
        let err = |source| StoreError::Sqlite { path: p.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Invalid {
                path: p.clone(),
                message: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        let store = Store {
            inner: Mutex::new(Inner { conn, ids: HashMap::new(), series: HashMap::new() }),
            added: std::sync::atomic::AtomicUsize::new(0),
            path: p,
            limits,
        };
        store.load_series()?;
        Ok(store)
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite { path: self.path.clone(), source }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load_series(&self) -> Result<()> {
        let mut inner = self.lock();
        self.refresh_series(&mut inner)
    }

    /// Reads the series table into the cache. Another process (an import while the
    /// gateway runs) may have added series: readers call this when they meet an unknown
    /// id, so that no reading is skipped.
    fn refresh_series(&self, inner: &mut Inner) -> Result<()> {
        let rows: Vec<(i64, String, String, String, String, String, String)> = {
            let mut stmt = inner
                .conn
                .prepare("SELECT id, site, zone, device, point, quantity, unit FROM series")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
                .map_err(|e| self.err(e))?;
            rows.collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))?
        };
        for (id, site, zone, device, point, quantity, unit) in rows {
            let s = Series {
                site: site.into(),
                zone: zone.into(),
                device: device.into(),
                point: point.into(),
                quantity: Quantity::parse(&quantity).unwrap_or(Quantity::Status),
                unit: unit.into(),
            };
            inner.ids.insert((s.site.clone(), s.zone.clone(), s.device.clone(), s.point.clone()), id);
            inner.series.insert(id, s);
        }
        Ok(())
    }

    /// Commits `readings` in one transaction; returns the last sequence number.
    pub fn append(&self, readings: &[Reading]) -> Result<i64> {
        let mut inner = self.lock();
        let Inner { conn, ids, series } = &mut *inner;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let mut last = 0;
        let mut added = 0usize;
        {
            let mut ins_series = tx
                .prepare_cached(
                    "INSERT INTO series (site, zone, device, point, quantity, unit) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (site, zone, device, point) DO UPDATE SET quantity = excluded.quantity, unit = excluded.unit
                     RETURNING id",
                )
                .map_err(|e| self.err(e))?;
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO readings (series, ts_ms, value, quality) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| self.err(e))?;
            for r in readings {
                let key = (r.site.clone(), r.zone.clone(), r.device.clone(), r.point.clone());
                let id = match ids.get(&key) {
                    Some(id) if series.get(id).is_some_and(|s| s.quantity == r.quantity && s.unit == r.unit) => *id,
                    _ => {
                        let id: i64 = ins_series
                            .query_row(
                                params![&*r.site, &*r.zone, &*r.device, &*r.point, r.quantity.as_str(), &*r.unit],
                                |row| row.get(0),
                            )
                            .map_err(|e| self.err(e))?;
                        ids.insert(key, id);
                        series.insert(
                            id,
                            Series {
                                site: r.site.clone(),
                                zone: r.zone.clone(),
                                device: r.device.clone(),
                                point: r.point.clone(),
                                quantity: r.quantity,
                                unit: r.unit.clone(),
                            },
                        );
                        id
                    }
                };
                // The same series at the same instant is the same reading: a re-import or
                // a replayed batch changes nothing.
                let n = ins
                    .execute(params![id, r.ts.timestamp_millis(), r.value, r.quality.code()])
                    .map_err(|e| self.err(e))?;
                if n > 0 {
                    last = tx.last_insert_rowid();
                    added += 1;
                }
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        drop(inner);
        self.added.store(added, std::sync::atomic::Ordering::Relaxed);
        if added == 0 {
            return self.last_seq();
        }
        Ok(last)
    }

    /// How many of the readings given to the last `append` were new (the others were
    /// already stored: same series, same instant).
    pub fn last_added(&self) -> usize {
        self.added.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Up to `limit` readings with sequence numbers above `after`, in order.
    pub fn read_after(&self, after: i64, limit: usize) -> Result<Vec<Stored>> {
        let mut inner = self.lock();
        let raw: Vec<(i64, i64, i64, Option<f64>, String)> = {
            let mut stmt = inner
                .conn
                .prepare_cached(
                    "SELECT seq, series, ts_ms, value, quality FROM readings WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(params![after, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<f64>>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .map_err(|e| self.err(e))?;
            rows.collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))?
        };
        if raw.iter().any(|r| !inner.series.contains_key(&r.1)) {
            self.refresh_series(&mut inner)?;
        }
        let mut out = Vec::new();
        for (seq, sid, ts_ms, value, quality) in raw {
            let Some(s) = inner.series.get(&sid) else { continue };
            let Some(ts) = Utc.timestamp_millis_opt(ts_ms).single() else { continue };
            out.push(Stored {
                seq,
                reading: Reading {
                    ts,
                    site: s.site.clone(),
                    zone: s.zone.clone(),
                    device: s.device.clone(),
                    point: s.point.clone(),
                    quantity: s.quantity,
                    value,
                    unit: s.unit.clone(),
                    quality: Quality::from_code(&quality).unwrap_or(Quality::DecodeError),
                },
            });
        }
        Ok(out)
    }

    /// The consumer's cursor; a consumer seen for the first time starts at 0 (everything).
    pub fn cursor(&self, consumer: &str) -> Result<i64> {
        let inner = self.lock();
        inner
            .conn
            .execute("INSERT INTO cursors (consumer, seq) VALUES (?1, 0) ON CONFLICT DO NOTHING", [consumer])
            .map_err(|e| self.err(e))?;
        inner
            .conn
            .query_row("SELECT seq FROM cursors WHERE consumer = ?1", [consumer], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Moves the consumer's cursor forward to `seq` (never back).
    pub fn advance(&self, consumer: &str, seq: i64) -> Result<()> {
        let inner = self.lock();
        inner
            .conn
            .execute(
                "INSERT INTO cursors (consumer, seq) VALUES (?1, ?2)
                 ON CONFLICT (consumer) DO UPDATE SET seq = max(seq, excluded.seq)",
                params![consumer, seq],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Readings of one series between `from_ms` (inclusive) and `to_ms` (exclusive), in
    /// time order: (ts_ms, value, quality code).
    pub fn series_readings(
        &self,
        device: &str,
        point: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, Option<f64>, String)>> {
        let mut inner = self.lock();
        if !inner.series.values().any(|s| &*s.device == device && &*s.point == point) {
            self.refresh_series(&mut inner)?;
        }
        let ids: Vec<i64> = inner
            .series
            .iter()
            .filter(|(_, s)| &*s.device == device && &*s.point == point)
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT ts_ms, value, quality FROM readings WHERE series = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 ORDER BY ts_ms")
            .map_err(|e| self.err(e))?;
        for id in ids {
            let rows = stmt
                .query_map(params![id, from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| self.err(e))?;
            for row in rows {
                out.push(row.map_err(|e| self.err(e))?);
            }
        }
        out.sort_by_key(|r| r.0);
        Ok(out)
    }

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
    pub fn corrections(&self) -> Result<Vec<StoredCorrection>> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT id, at_ms, who, why, change FROM corrections ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Keeps a month's hourly consumption per meter (`device.point`) for good: the
    /// ledger of a frozen month no longer needs the raw readings, which may be pruned.
    /// Replaces what was frozen for that month before.
    pub fn freeze_month(
        &self,
        month: &str,
        from_ms: i64,
        to_ms: i64,
        meters: &[(String, crate::ledger::month::HourlyRecord)],
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
                del.execute(params![meter, from_ms, to_ms]).map_err(|e| self.err(e))?;
                for (h, v, e) in hours {
                    ins.execute(params![meter, h, v, e]).map_err(|e| self.err(e))?;
                }
            }
            tx.execute(
                "INSERT INTO frozen_months (month, at_ms) VALUES (?1, ?2) ON CONFLICT (month) DO UPDATE SET at_ms = excluded.at_ms",
                params![month, Utc::now().timestamp_millis()],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The last good reading of a series before `before_ms`: (ts_ms, value).
    pub fn last_good_before(&self, device: &str, point: &str, before_ms: i64) -> Result<Option<(i64, f64)>> {
        let mut inner = self.lock();
        if !inner.series.values().any(|s| &*s.device == device && &*s.point == point) {
            self.refresh_series(&mut inner)?;
        }
        let ids: Vec<i64> = inner
            .series
            .iter()
            .filter(|(_, s)| &*s.device == device && &*s.point == point)
            .map(|(id, _)| *id)
            .collect();
        let mut best: Option<(i64, f64)> = None;
        let mut stmt = inner
            .conn
            .prepare_cached(
                "SELECT ts_ms, value FROM readings WHERE series = ?1 AND ts_ms < ?2 AND quality = 'good' AND value IS NOT NULL ORDER BY ts_ms DESC LIMIT 1",
            )
            .map_err(|e| self.err(e))?;
        for id in ids {
            let row: Option<(i64, f64)> = stmt.query_row(params![id, before_ms], |r| Ok((r.get(0)?, r.get(1)?))).ok();
            if let Some(r) = row {
                if best.is_none_or(|b| r.0 > b.0) {
                    best = Some(r);
                }
            }
        }
        Ok(best)
    }

    /// The time of the oldest reading held.
    pub fn oldest_ts(&self) -> Result<Option<DateTime<Utc>>> {
        let inner = self.lock();
        let ms: Option<i64> =
            inner.conn.query_row("SELECT min(ts_ms) FROM readings", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        Ok(ms.and_then(|m| Utc.timestamp_millis_opt(m).single()))
    }

    /// The time of the newest reading held.
    pub fn newest_ts(&self) -> Result<Option<DateTime<Utc>>> {
        let inner = self.lock();
        let ms: Option<i64> =
            inner.conn.query_row("SELECT max(ts_ms) FROM readings", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        Ok(ms.and_then(|m| Utc.timestamp_millis_opt(m).single()))
    }

    pub fn is_frozen(&self, month: &str) -> Result<bool> {
        let inner = self.lock();
        let n: i64 = inner
            .conn
            .query_row("SELECT count(*) FROM frozen_months WHERE month = ?1", [month], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// The frozen hourly consumption of a meter: (hour_ms, volume, estimated).
    pub fn rollups(&self, meter: &str, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, f64, f64)>> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT hour_ms, volume, estimated FROM rollups WHERE meter = ?1 AND hour_ms >= ?2 AND hour_ms < ?3 ORDER BY hour_ms")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![meter, from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Records an alert episode, or updates the one with the same rule, subject and start
    /// (its end, evidence, severity and loss). Returns (id, whether it was new or
    /// changed).
    pub fn upsert_alert(&self, a: &AlertRow) -> Result<(i64, bool)> {
        let inner = self.lock();
        let now = Utc::now().timestamp_millis();
        let existing: Option<(i64, Option<i64>, String, String)> = inner
            .conn
            .query_row(
                "SELECT id, end_ms, evidence, severity FROM alerts WHERE rule = ?1 AND subject = ?2 AND start_ms = ?3",
                params![a.rule, a.subject, a.start_ms],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .ok();
        match existing {
            Some((id, end, evidence, severity)) => {
                let changed = end != a.end_ms || evidence != a.evidence || severity != a.severity;
                if changed {
                    inner
                        .conn
                        .execute(
                            "UPDATE alerts SET end_ms = ?2, evidence = ?3, severity = ?4, loss_per_day = ?5, loss_fen_per_day = ?6, updated_ms = ?7 WHERE id = ?1",
                            params![id, a.end_ms, a.evidence, a.severity, a.loss_per_day, a.loss_fen_per_day, now],
                        )
                        .map_err(|e| self.err(e))?;
                }
                Ok((id, changed))
            }
            None => {
                inner
                    .conn
                    .execute(
                        "INSERT INTO alerts (rule, subject, zone, device, severity, start_ms, end_ms, evidence, loss_per_day, loss_fen_per_day, raised_ms, updated_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                        params![a.rule, a.subject, a.zone, a.device, a.severity, a.start_ms, a.end_ms, a.evidence, a.loss_per_day, a.loss_fen_per_day, now],
                    )
                    .map_err(|e| self.err(e))?;
                Ok((inner.conn.last_insert_rowid(), true))
            }
        }
    }

    /// Alerts, newest first; `active` only those not cleared.
    pub fn alerts(&self, active: bool) -> Result<Vec<AlertRow>> {
        let inner = self.lock();
        let filter = if active { "WHERE end_ms IS NULL" } else { "" };
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts {filter} ORDER BY start_ms DESC");
        let mut stmt = inner.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], alert_row).map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Alerts whose last change `destination` (mqtt, webhook or influx) has not confirmed:
    /// (row, updated_ms), oldest change first.
    pub fn undelivered_alerts(&self, destination: &str) -> Result<Vec<(AlertRow, i64)>> {
        let column = match destination {
            "mqtt" => "mqtt_ms",
            "webhook" => "webhook_ms",
            _ => "influx_ms",
        };
        let inner = self.lock();
        let sql =
            format!("SELECT {ALERT_COLUMNS}, updated_ms FROM alerts WHERE updated_ms > {column} ORDER BY updated_ms");
        let mut stmt = inner.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| Ok((alert_row(r)?, r.get(13)?))).map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Records that `destination` confirmed the alert's change of `updated_ms`.
    pub fn alert_delivered(&self, destination: &str, id: i64, updated_ms: i64) -> Result<()> {
        let column = match destination {
            "mqtt" => "mqtt_ms",
            "webhook" => "webhook_ms",
            _ => "influx_ms",
        };
        let inner = self.lock();
        inner
            .conn
            .execute(&format!("UPDATE alerts SET {column} = max({column}, ?2) WHERE id = ?1"), params![id, updated_ms])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Acknowledges an alert; false when there is no such alert.
    pub fn ack_alert(&self, id: i64, by: &str) -> Result<bool> {
        let inner = self.lock();
        let n = inner
            .conn
            .execute(
                "UPDATE alerts SET acked_by = ?2, acked_ms = ?3, updated_ms = ?3 WHERE id = ?1",
                params![id, by, Utc::now().timestamp_millis()],
            )
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    pub fn last_seq(&self) -> Result<i64> {
        let inner = self.lock();
        inner.conn.query_row("SELECT coalesce(max(seq), 0) FROM readings", [], |r| r.get(0)).map_err(|e| self.err(e))
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
    pub fn prune(&self, now: DateTime<Utc>, consumers: &[&str]) -> Result<PruneReport> {
        let mut cursors = Vec::new();
        for c in consumers {
            cursors.push(self.cursor(c)?);
        }
        let delivered_upto = cursors.iter().copied().min().unwrap_or(i64::MAX);
        let inner = self.lock();
        let conn = &inner.conn;
        let e = |source| StoreError::Sqlite { path: self.path.clone(), source };
        let mut report = PruneReport::default();
        let cutoff = now.timestamp_millis() - self.limits.max_age.as_millis() as i64;
        let d = conn
            .execute("DELETE FROM readings WHERE ts_ms < ?1 AND seq <= ?2", params![cutoff, delivered_upto])
            .map_err(e)? as i64;
        let u = conn.execute("DELETE FROM readings WHERE ts_ms < ?1", params![cutoff]).map_err(e)? as i64;
        Self::count_drop(conn, "age_delivered", d).map_err(e)?;
        Self::count_drop(conn, "age_undelivered", u).map_err(e)?;
        report.delivered += d;
        report.undelivered += u;
        // Size: delete the oldest in chunks until under the limit; delivered ones first.
        for pass in ["size_delivered", "size_undelivered"] {
            loop {
                if Self::used_bytes(conn).map_err(e)? <= self.limits.max_size {
                    break;
                }
                let bound = if pass == "size_delivered" { delivered_upto } else { i64::MAX };
                let n = conn
                    .execute(
                        "DELETE FROM readings WHERE seq IN (SELECT seq FROM readings WHERE seq <= ?1 ORDER BY seq LIMIT 10000)",
                        params![bound],
                    )
                    .map_err(e)? as i64;
                if n == 0 {
                    break;
                }
                Self::count_drop(conn, pass, n).map_err(e)?;
                if pass == "size_delivered" {
                    report.delivered += n;
                } else {
                    report.undelivered += n;
                }
            }
        }
        if report.undelivered > 0 {
            tracing::warn!(dropped = report.undelivered, store = %self.path, "store limits reached: dropped undelivered readings");
        }
        Ok(report)
    }

    pub fn stats(&self) -> Result<Stats> {
        let inner = self.lock();
        let conn = &inner.conn;
        let e = |source| StoreError::Sqlite { path: self.path.clone(), source };
        let (records, first, last): (i64, i64, i64) = conn
            .query_row("SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM readings", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(e)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(device: &str, point: &str, ts_ms: i64, value: Option<f64>, quality: Quality) -> Reading {
        Reading {
            ts: Utc.timestamp_millis_opt(ts_ms).unwrap(),
            site: "s".into(),
            zone: "z".into(),
            device: device.into(),
            point: point.into(),
            quantity: Quantity::WaterVolume,
            value,
            unit: "m3".into(),
            quality,
        }
    }

    #[test]
    fn readings_round_trip_in_order_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        {
            let store = Store::open(&path, Limits::default()).unwrap();
            let last = store
                .append(&[
                    reading("m1", "total", 1_000, Some(10.5), Quality::Good),
                    reading("m2", "total", 1_001, None, Quality::Timeout),
                    reading("m1", "total", 2_000, None, Quality::Exception(2)),
                ])
                .unwrap();
            assert_eq!(last, 3);
            store.advance("mqtt", 1).unwrap();
        }
        let store = Store::open(&path, Limits::default()).unwrap();
        assert_eq!(store.cursor("mqtt").unwrap(), 1);
        assert_eq!(store.cursor("influx").unwrap(), 0);
        let got = store.read_after(1, 10).unwrap();
        assert_eq!(got.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(&*got[0].reading.device, "m2");
        assert_eq!(got[0].reading.quality, Quality::Timeout);
        assert_eq!(got[1].reading.quality, Quality::Exception(2));
        assert_eq!(got[1].reading.ts.timestamp_millis(), 2_000);
        let all = store.read_after(0, 10).unwrap();
        assert_eq!(all[0].reading.value, Some(10.5));
        assert_eq!(all[0].reading.unit.as_ref(), "m3");
    }

    #[test]
    fn series_added_by_another_process_are_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let gateway = Store::open(&path, Limits::default()).unwrap();
        gateway.append(&[reading("m1", "total", 1_000, Some(1.0), Quality::Good)]).unwrap();
        assert_eq!(gateway.read_after(0, 10).unwrap().len(), 1);
        // an import running beside the gateway adds a series the gateway has not seen
        let import = Store::open(&path, Limits::default()).unwrap();
        import.append(&[reading("m2", "total", 2_000, Some(2.0), Quality::Good)]).unwrap();
        let got = gateway.read_after(0, 10).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(&*got[1].reading.device, "m2");
        assert_eq!(gateway.series_readings("m2", "total", 0, 10_000).unwrap().len(), 1);
    }

    #[test]
    fn cursors_never_move_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db"), Limits::default()).unwrap();
        store.advance("c", 10).unwrap();
        store.advance("c", 4).unwrap();
        assert_eq!(store.cursor("c").unwrap(), 10);
    }

    #[test]
    fn age_limit_drops_delivered_and_counts_undelivered() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits { max_size: u64::MAX, max_age: Duration::from_secs(3600) };
        let store = Store::open(&dir.path().join("s.db"), limits).unwrap();
        let now = Utc.timestamp_millis_opt(10 * 3_600_000).unwrap();
        let old = now.timestamp_millis() - 2 * 3_600_000;
        let fresh = now.timestamp_millis() - 60_000;
        store
            .append(&[
                reading("a", "p", old, Some(1.0), Quality::Good),
                reading("a", "p", old + 1, Some(2.0), Quality::Good),
                reading("a", "p", old + 2, Some(3.0), Quality::Good),
                reading("a", "p", fresh, Some(4.0), Quality::Good),
            ])
            .unwrap();
        store.advance("mqtt", 2).unwrap();
        store.advance("influx", 4).unwrap();
        let r = store.prune(now, &["mqtt", "influx"]).unwrap();
        assert_eq!(r, PruneReport { delivered: 2, undelivered: 1 });
        let st = store.stats().unwrap();
        assert_eq!(st.records, 1);
        assert_eq!(st.dropped.get("age_undelivered"), Some(&1));
        assert_eq!(st.dropped.get("age_delivered"), Some(&2));
        // sequence numbers go on after pruning
        assert_eq!(store.append(&[reading("a", "p", fresh + 1, Some(5.0), Quality::Good)]).unwrap(), 5);
    }

    #[test]
    fn size_limit_drops_what_everyone_has_first() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(&dir.path().join("s.db"), Limits { max_size: u64::MAX, max_age: Duration::from_secs(1 << 30) })
                .unwrap();
        let batch: Vec<Reading> =
            (0..20_000).map(|i| reading("a", "p", 1_000_000 + i, Some(i as f64), Quality::Good)).collect();
        store.append(&batch).unwrap();
        store.advance("c", 15_000).unwrap();
        let full = store.stats().unwrap().bytes;
        // allow about half of what is there: the delivered 15 000 can cover it
        let store = Store { limits: Limits { max_size: full / 2, max_age: Duration::from_secs(1 << 30) }, ..store };
        let r = store.prune(Utc.timestamp_millis_opt(2_000_000).unwrap(), &["c"]).unwrap();
        assert!(r.delivered >= 10_000 && r.undelivered == 0, "{r:?}");
        assert_eq!(store.read_after(0, 1).unwrap()[0].seq, r.delivered + 1);
        // now allow almost nothing: undelivered ones go too, counted
        let store = Store { limits: Limits { max_size: 1, max_age: Duration::from_secs(1 << 30) }, ..store };
        let r = store.prune(Utc.timestamp_millis_opt(2_000_000).unwrap(), &["c"]).unwrap();
        assert_eq!(r.undelivered, 5_000);
        assert_eq!(store.stats().unwrap().dropped.get("size_undelivered"), Some(&5_000));
    }
}

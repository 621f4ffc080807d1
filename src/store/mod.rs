//! The local store: the spine between the pollers and everything that consumes readings.
//!
//! Invariants:
//! 1. **A reading exists once it is committed here.** Pollers hand readings to one writer,
//!    which commits them in batches (SQLite, WAL, `synchronous = NORMAL`). A committed
//!    transaction survives a crash of the process (`kill -9`, a panic). A power cut or
//!    a kernel crash may roll back the transactions committed since the WAL was last
//!    synced to disk, which NORMAL does at each checkpoint: in the gateway at most 10 s
//!    after a commit (`checkpoint`, and the writer's `checkpoints`); for a tool that
//!    opens the store alone, at SQLite's 1000 pages of WAL. What
//!    remains is an earlier commit's state: whole batches, no hole in the sequence, never
//!    a corrupt file, on storage that honours fsync (`tests::a_crash_loses_no_commit_…`).
//!    A file damaged anyway (a failing card) is caught at start (`open_or_replace`).
//!    A store that refuses writes (full, failing, read-only) loses nothing committed; the
//!    writer keeps what it cannot commit in a bounded memory queue (`Intake`).
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

use rusqlite::Connection;

use crate::model::{Quantity, Reading};

mod alerts;
mod asset_records;
mod checkpoint;
pub use checkpoint::Checkpointed;
mod commands;
pub mod config;
mod corrections;
mod cursors;
mod exports;
mod feed;
pub use feed::FeedSent;
mod intake;
mod prune;
mod readings;
mod rollups;
#[cfg(test)]
mod tests;

pub use alerts::{Ack, AlertRow, Destination};
pub use asset_records::{AssetRecord, AssetWork};
pub use commands::CommandRow;
pub use corrections::CorrectionRow;
pub use exports::{ExportRow, ExportState};
pub use intake::Intake;
pub use readings::{Latest, SeriesPoint};
pub use rollups::RollupRow;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("store {path}: {message}")]
    Invalid { path: String, message: String },
}

impl StoreError {
    /// Proven damage: SQLite says the file is corrupt or not a database. A lock held by
    /// another process, a full disk or a read-only directory is not damage: the file is
    /// fine, and moving it aside would hide a healthy store's history.
    pub fn is_damage(&self) -> bool {
        match self {
            StoreError::Sqlite { source: rusqlite::Error::SqliteFailure(e, _), .. } => {
                matches!(e.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            }
            _ => false,
        }
    }

    /// Another connection holds a lock longer than the busy timeout.
    pub fn is_locked(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite { source: rusqlite::Error::SqliteFailure(e, _), .. }
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_size: u64,
    /// `None`: kept forever (as far as `max_size` allows).
    pub max_age: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_size: 2 << 30, max_age: Some(Duration::from_secs(90 * 86_400)) }
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

/// The sinks' own connection: reading what to deliver never waits for the writer's
/// transaction (WAL lets a reader go on beside the writer), nor holds it up. Opened at
/// the first read.
struct Reader {
    conn: Connection,
    series: HashMap<i64, Series>,
    /// `Store::series_changed` when `series` was read.
    series_seen: u64,
}

pub struct Store {
    inner: Mutex<Inner>,
    reader: Mutex<Option<Reader>>,
    checkpointer: checkpoint::Checkpointer,
    /// Counts the writer's changes to the series table.
    series_changed: std::sync::atomic::AtomicU64,
    /// New readings in the last `append` (see `last_added`).
    added: std::sync::atomic::AtomicUsize,
    /// Readings held, kept up to date by `append` and `prune` so that `/metrics` never
    /// counts the table.
    records: std::sync::atomic::AtomicI64,
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
    -- where the data of the pass that last decided its end ended (idempotent evaluation)
    seen_to_ms INTEGER NOT NULL DEFAULT 0,
    UNIQUE (rule, subject, start_ms)
);
-- the data-time ranges the alert rules have been run over (merged): where incident and
-- interruption counts are complete
CREATE TABLE IF NOT EXISTS alert_passes (from_ms INTEGER NOT NULL, to_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL, who TEXT NOT NULL, why TEXT NOT NULL,
    change TEXT NOT NULL
);
-- work on assets recorded by hand (a valve exercised or repaired, a pipe repaired)
CREATE TABLE IF NOT EXISTS asset_records (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL, asset TEXT NOT NULL, kind TEXT NOT NULL, done_ms INTEGER NOT NULL,
    who TEXT NOT NULL, why TEXT NOT NULL,
    -- the burst or leak a pipe repair ended, when the operator said which
    alert INTEGER
);
-- the hours in which an actuated valve was seen moving (kept after readings are pruned:
-- the exercise rule looks a year back)
CREATE TABLE IF NOT EXISTS valve_moves (
    device TEXT NOT NULL, hour_ms INTEGER NOT NULL, PRIMARY KEY (device, hour_ms)
) WITHOUT ROWID;
-- valves whose held readings were read through once for their movements
CREATE TABLE IF NOT EXISTS valve_scanned (device TEXT PRIMARY KEY) WITHOUT ROWID;
-- what the group feed has published: each topic's digest, and whether it is final
CREATE TABLE IF NOT EXISTS feed_sent (
    topic TEXT PRIMARY KEY, digest INTEGER NOT NULL, fixed INTEGER NOT NULL, sent_ms INTEGER NOT NULL
) WITHOUT ROWID;
-- commands sent to devices (a meter's valve): who, why and what the device answered
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL, device TEXT NOT NULL, action TEXT NOT NULL,
    who TEXT NOT NULL, why TEXT NOT NULL, outcome TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exports (
    month TEXT NOT NULL, state TEXT NOT NULL, written_ms INTEGER NOT NULL,
    -- when each destination confirmed the announcement (0: not yet)
    mqtt_ms INTEGER NOT NULL DEFAULT 0, webhook_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, state)
);
CREATE TABLE IF NOT EXISTS set_aside (
    id INTEGER PRIMARY KEY,
    consumer TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL, reason TEXT NOT NULL, body TEXT NOT NULL
);
";

/// Columns added after a store was first made: added to a store that lacks them.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has: bool =
        conn.query_row("SELECT count(*) FROM pragma_table_info('alerts') WHERE name = 'seen_to_ms'", [], |r| {
            r.get::<_, i64>(0).map(|n| n > 0)
        })?;
    if !has {
        conn.execute_batch("ALTER TABLE alerts ADD COLUMN seen_to_ms INTEGER NOT NULL DEFAULT 0")?;
    }
    Ok(())
}

/// How long a statement waits for another connection's lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
        // First: a lock held by another process (an import, a backup, a second gateway)
        // is waited for, not taken as an error at the first statement.
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        // After a checkpoint the WAL file is cut back to this size: a burst (a long read
        // holding checkpoints back, a large prune) does not leave a WAL of gigabytes.
        conn.pragma_update(None, "journal_size_limit", 64i64 << 20).map_err(err)?;
        // The planner must not look at bound values: otherwise a statement such as
        // `… LIMIT ?2` is compiled anew at every call with a new value, and the statement
        // cache saves nothing on the hot path (reading for the sinks).
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        migrate(&conn).map_err(err)?;
        let store = Store {
            inner: Mutex::new(Inner { conn, ids: HashMap::new(), series: HashMap::new() }),
            reader: Mutex::new(None),
            checkpointer: checkpoint::Checkpointer::default(),
            series_changed: std::sync::atomic::AtomicU64::new(0),
            added: std::sync::atomic::AtomicUsize::new(0),
            records: std::sync::atomic::AtomicI64::new(0),
            path: p,
            limits,
        };
        store.load_series()?;
        let n: i64 =
            store.lock().conn.query_row("SELECT count(*) FROM readings", [], |r| r.get(0)).map_err(|e| store.err(e))?;
        store.records.store(n, std::sync::atomic::Ordering::Relaxed);
        Ok(store)
    }

    /// Opens the store for the running gateway. A store with *proven* damage — SQLite
    /// reports it corrupt or not a database, or `PRAGMA quick_check` fails (a disk fault,
    /// a file overwritten) — is moved aside as `NAME.corrupt-YYYYMMDDTHHMMSSZ` (with its
    /// `-wal` and `-shm`), a fresh store is started in its place, and the returned path
    /// says where the old one went: polling never stops in a restart loop over a damaged
    /// file. The old file is kept for recovery by hand. Any other failure (a lock held
    /// past the busy timeout, a full disk, a directory that cannot be written) is returned
    /// as it is: the file is never moved for it.
    pub fn open_or_replace(path: &Path, limits: Limits) -> Result<(Store, Option<std::path::PathBuf>)> {
        let checked = Store::open(path, limits).and_then(|s| {
            let verdict: String =
                s.lock().conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0)).map_err(|e| s.err(e))?;
            if verdict == "ok" {
                Ok(Ok(s))
            } else {
                Ok(Err(s.invalid(format!("quick_check: {verdict}"))))
            }
        });
        let damage = match checked {
            Ok(Ok(s)) => return Ok((s, None)),
            Ok(Err(failed_check)) => failed_check,
            Err(e) if e.is_damage() => e,
            Err(e) if e.is_locked() => {
                return Err(StoreError::Invalid {
                    path: path.display().to_string(),
                    message: format!(
                        "another process holds a lock on the store ({e}); waited {}s. Stop it (a second gateway, an import, a backup) and start again; the store is left as it is",
                        BUSY_TIMEOUT.as_secs()
                    ),
                })
            }
            Err(e) => return Err(e),
        };
        match damage {
            // only a file is moved aside: a path naming a directory is a configuration error
            e if path.is_file() => {
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
                let aside = path.with_file_name(format!(
                    "{}.corrupt-{stamp}",
                    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
                ));
                tracing::error!(store = %path.display(), error = %e, moved_to = %aside.display(), "the store is damaged; moved aside, starting a fresh one");
                let moved = |from: &Path, to: &Path| {
                    std::fs::rename(from, to).map_err(|io| StoreError::Invalid {
                        path: from.display().to_string(),
                        message: format!("the store is damaged ({e}) and cannot be moved aside: {io}"),
                    })
                };
                moved(path, &aside)?;
                for ext in ["-wal", "-shm"] {
                    let side = std::path::PathBuf::from(format!("{}{ext}", path.display()));
                    if side.exists() {
                        moved(&side, &std::path::PathBuf::from(format!("{}{ext}", aside.display())))?;
                    }
                }
                let fresh = Store::open(path, limits)?;
                Ok((fresh, Some(aside)))
            }
            e => Err(e),
        }
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite { path: self.path.clone(), source }
    }

    /// Every row of `sql`, each mapped by `row`; any failing step is the store's error.
    fn select<T, P: rusqlite::Params>(
        &self,
        conn: &rusqlite::Connection,
        sql: &str,
        params: P,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params, row).map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))
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
        for (id, s) in self.all_series(&inner.conn)? {
            inner.ids.insert((s.site.clone(), s.zone.clone(), s.device.clone(), s.point.clone()), id);
            inner.series.insert(id, s);
        }
        Ok(())
    }

    /// Runs `f` with the sinks' connection, opened at the first call.
    fn with_reader<T>(&self, f: impl FnOnce(&mut Reader) -> Result<T>) -> Result<T> {
        let mut guard = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let reader = match &mut *guard {
            Some(reader) => reader,
            slot @ None => {
                let conn = Connection::open_with_flags(&self.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .map_err(|e| self.err(e))?;
                conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.err(e))?;
                conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
                    .map_err(|e| self.err(e))?;
                slot.insert(Reader { conn, series: HashMap::new(), series_seen: 0 })
            }
        };
        f(reader)
    }

    fn all_series(&self, conn: &Connection) -> Result<Vec<(i64, Series)>> {
        let rows: Vec<(i64, String, String, String, String, String, String)> =
            self.select(conn, "SELECT id, site, zone, device, point, quantity, unit FROM series", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, site, zone, device, point, quantity, unit) in rows {
            let s = Series {
                site: site.into(),
                zone: zone.into(),
                device: device.into(),
                point: point.into(),
                quantity: Quantity::parse(&quantity).ok_or_else(|| StoreError::Invalid {
                    path: self.path.clone(),
                    message: format!("series #{id} has an unknown quantity `{quantity}`"),
                })?,
                unit: unit.into(),
            };
            out.push((id, s));
        }
        Ok(out)
    }
}

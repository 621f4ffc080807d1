//! Readings: committing them, reading them back in sequence order (for the sinks) and
//! by series and time (for the ledger and the alerts).

use std::sync::atomic::Ordering;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, OptionalExtension};

use super::{Inner, Result, Series, SeriesKey, Store, StoreError, Stored};
use crate::model::{Quality, Reading};

/// One stored reading of a series, as the ledger and the alerts read them.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    pub ts: DateTime<Utc>,
    pub value: Option<f64>,
    pub quality: Quality,
}

/// The newest reading of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    pub zone: String,
    pub device: String,
    pub point: String,
    pub unit: String,
    pub quantity: crate::model::Quantity,
    pub ts: DateTime<Utc>,
    pub value: Option<f64>,
    pub quality: Quality,
}

impl Store {
    /// The newest reading of every series (one index look-up each).
    pub fn latest(&self) -> Result<Vec<Latest>> {
        let mut inner = self.lock();
        self.refresh_series(&mut inner)?;
        let mut raw = Vec::new();
        {
            let mut stmt = inner
                .conn
                .prepare_cached(
                    "SELECT ts_ms, value, quality FROM readings WHERE series = ?1 ORDER BY ts_ms DESC LIMIT 1",
                )
                .map_err(|e| self.err(e))?;
            for (id, s) in &inner.series {
                let row: Option<(i64, Option<f64>, String)> = stmt
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
                    .map_err(|e| self.err(e))?;
                if let Some(r) = row {
                    raw.push((
                        s.zone.to_string(),
                        s.device.to_string(),
                        s.point.to_string(),
                        s.unit.to_string(),
                        s.quantity,
                        r,
                    ));
                }
            }
        }
        drop(inner);
        let mut out: Vec<Latest> = raw
            .into_iter()
            .map(|(zone, device, point, unit, quantity, (ms, value, q))| {
                Ok(Latest {
                    zone,
                    device,
                    point,
                    unit,
                    quantity,
                    ts: self.time(ms)?,
                    value,
                    quality: self.quality(&q)?,
                })
            })
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| (&a.device, &a.point, b.ts).cmp(&(&b.device, &b.point, a.ts)));
        out.dedup_by(|a, b| a.device == b.device && a.point == b.point);
        Ok(out)
    }

    /// Commits `readings` in one transaction; returns the last sequence number.
    pub fn append(&self, readings: &[Reading]) -> Result<i64> {
        let mut inner = self.lock();
        let Inner { conn, ids, series } = &mut *inner;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let mut last = 0;
        let mut added = 0usize;
        // Series created in this transaction join the cache only once it commits: a
        // rollback must not leave ids the database does not have.
        let mut new_series: Vec<(SeriesKey, i64, Series)> = Vec::new();
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
                let known = |id: &i64| series.get(id).is_some_and(|s| s.quantity == r.quantity && s.unit == r.unit);
                let cached = ids
                    .get(&(r.site.clone(), r.zone.clone(), r.device.clone(), r.point.clone()))
                    .filter(|id| known(id))
                    .copied();
                let pending = || {
                    new_series.iter().find(|(k, _, s)| {
                        k.0 == r.site
                            && k.1 == r.zone
                            && k.2 == r.device
                            && k.3 == r.point
                            && s.quantity == r.quantity
                            && s.unit == r.unit
                    })
                };
                let id = match cached.or_else(|| pending().map(|p| p.1)) {
                    Some(id) => id,
                    None => {
                        let id: i64 = ins_series
                            .query_row(
                                params![&*r.site, &*r.zone, &*r.device, &*r.point, r.quantity.as_str(), &*r.unit],
                                |row| row.get(0),
                            )
                            .map_err(|e| self.err(e))?;
                        new_series.push((
                            (r.site.clone(), r.zone.clone(), r.device.clone(), r.point.clone()),
                            id,
                            Series {
                                site: r.site.clone(),
                                zone: r.zone.clone(),
                                device: r.device.clone(),
                                point: r.point.clone(),
                                quantity: r.quantity,
                                unit: r.unit.clone(),
                            },
                        ));
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
        if !new_series.is_empty() {
            // the sinks' connection learns of them (a changed unit included) at its next read
            self.series_changed.fetch_add(1, Ordering::Relaxed);
        }
        for (key, id, s) in new_series {
            ids.insert(key, id);
            series.insert(id, s);
        }
        drop(inner);
        self.added.store(added, Ordering::Relaxed);
        self.records.fetch_add(added as i64, Ordering::Relaxed);
        if added == 0 {
            return self.last_seq();
        }
        Ok(last)
    }

    /// How many of the readings given to the last `append` were new (the others were
    /// already stored: same series, same instant).
    pub fn last_added(&self) -> usize {
        self.added.load(Ordering::Relaxed)
    }

    /// Readings held now (kept incrementally; no table scan).
    pub fn records(&self) -> i64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Up to `limit` readings with sequence numbers above `after`, in order.
    /// On the sinks' own connection: it neither waits for the writer's transaction nor
    /// holds it up.
    pub fn read_after(&self, after: i64, limit: usize) -> Result<Vec<Stored>> {
        self.with_reader(|reader| self.read_after_on(reader, after, limit))
    }

    fn read_after_on(&self, reader: &mut super::Reader, after: i64, limit: usize) -> Result<Vec<Stored>> {
        let raw: Vec<(i64, i64, i64, Option<f64>, String)> = self.select(
            &reader.conn,
            "SELECT seq, series, ts_ms, value, quality FROM readings WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            params![after, limit as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let changed = self.series_changed.load(Ordering::Relaxed);
        if reader.series_seen != changed || raw.iter().any(|r| !reader.series.contains_key(&r.1)) {
            reader.series = self.all_series(&reader.conn)?.into_iter().collect();
            reader.series_seen = changed;
        }
        let mut out = Vec::with_capacity(raw.len());
        for (seq, sid, ts_ms, value, quality) in raw {
            let Some(s) = reader.series.get(&sid) else {
                return Err(self.invalid(format!("reading #{seq} names series #{sid}, which does not exist")));
            };
            out.push(Stored {
                seq,
                reading: Reading {
                    ts: self.time(ts_ms)?,
                    site: s.site.clone(),
                    zone: s.zone.clone(),
                    device: s.device.clone(),
                    point: s.point.clone(),
                    quantity: s.quantity,
                    value,
                    unit: s.unit.clone(),
                    quality: self.quality(&quality)?,
                },
            });
        }
        Ok(out)
    }

    /// The ids of the series of `device.point` (one per zone it was ever in).
    fn series_ids(&self, inner: &mut Inner, device: &str, point: &str) -> Result<Vec<i64>> {
        let find = |inner: &Inner| -> Vec<i64> {
            inner.series.iter().filter(|(_, s)| &*s.device == device && &*s.point == point).map(|(id, _)| *id).collect()
        };
        let ids = find(inner);
        if !ids.is_empty() {
            return Ok(ids);
        }
        self.refresh_series(inner)?;
        Ok(find(inner))
    }

    /// Readings of one series between `from_ms` (inclusive) and `to_ms` (exclusive), in
    /// time order.
    pub fn series_readings(&self, device: &str, point: &str, from_ms: i64, to_ms: i64) -> Result<Vec<SeriesPoint>> {
        let mut inner = self.lock();
        let ids = self.series_ids(&mut inner, device, point)?;
        let mut raw: Vec<(i64, Option<f64>, String)> = Vec::new();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT ts_ms, value, quality FROM readings WHERE series = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 ORDER BY ts_ms")
            .map_err(|e| self.err(e))?;
        for id in ids {
            let rows = stmt
                .query_map(params![id, from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| self.err(e))?;
            for row in rows {
                raw.push(row.map_err(|e| self.err(e))?);
            }
        }
        raw.sort_by_key(|r| r.0);
        raw.into_iter()
            .map(|(ms, value, q)| Ok(SeriesPoint { ts: self.time(ms)?, value, quality: self.quality(&q)? }))
            .collect()
    }

    /// The last good reading of a series before `before_ms`: (time, value).
    pub fn last_good_before(&self, device: &str, point: &str, before_ms: i64) -> Result<Option<(DateTime<Utc>, f64)>> {
        let mut inner = self.lock();
        let ids = self.series_ids(&mut inner, device, point)?;
        let mut best: Option<(i64, f64)> = None;
        let mut stmt = inner
            .conn
            .prepare_cached(
                "SELECT ts_ms, value FROM readings WHERE series = ?1 AND ts_ms < ?2 AND quality = 'good' AND value IS NOT NULL ORDER BY ts_ms DESC LIMIT 1",
            )
            .map_err(|e| self.err(e))?;
        for id in ids {
            let row: Option<(i64, f64)> = stmt
                .query_row(params![id, before_ms], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some(r) = row {
                if best.is_none_or(|b| r.0 > b.0) {
                    best = Some(r);
                }
            }
        }
        best.map(|(ms, v)| Ok((self.time(ms)?, v))).transpose()
    }

    /// The time of the oldest reading held.
    pub fn oldest_ts(&self) -> Result<Option<DateTime<Utc>>> {
        self.ts_bound("SELECT min(ts_ms) FROM readings")
    }

    /// The time of the newest reading held.
    pub fn newest_ts(&self) -> Result<Option<DateTime<Utc>>> {
        self.ts_bound("SELECT max(ts_ms) FROM readings")
    }

    fn ts_bound(&self, sql: &str) -> Result<Option<DateTime<Utc>>> {
        let ms: Option<i64> = self.lock().conn.query_row(sql, [], |r| r.get(0)).map_err(|e| self.err(e))?;
        ms.map(|m| self.time(m)).transpose()
    }

    pub fn last_seq(&self) -> Result<i64> {
        let inner = self.lock();
        inner.conn.query_row("SELECT coalesce(max(seq), 0) FROM readings", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    /// A stored time, which must be one chrono can represent.
    pub(super) fn time(&self, ms: i64) -> Result<DateTime<Utc>> {
        Utc.timestamp_millis_opt(ms).single().ok_or_else(|| self.invalid(format!("time {ms} ms is out of range")))
    }

    /// A stored quality code, which must be one this version knows.
    fn quality(&self, code: &str) -> Result<Quality> {
        Quality::from_code(code).ok_or_else(|| self.invalid(format!("unknown quality code `{code}`")))
    }

    pub(super) fn invalid(&self, message: String) -> StoreError {
        StoreError::Invalid { path: self.path.clone(), message }
    }
}

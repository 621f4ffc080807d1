//! Alert episodes and their delivery state per destination.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{Result, Store};
use crate::model::{AlertRule, Severity};

/// An alert as kept in the store.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub rule: AlertRule,
    pub subject: String,
    pub zone: String,
    pub device: Option<String>,
    pub severity: Severity,
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

/// What an acknowledgement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    Done,
    /// Already acknowledged, by this person: nothing changed.
    AlreadyAcknowledged(String),
    /// The alert has cleared: nothing to acknowledge.
    Cleared,
    NoSuchAlert,
}

/// Where alert changes are delivered; each keeps its own confirmation per alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Mqtt,
    Webhook,
    Influx,
}

impl Destination {
    /// The column holding the `updated_ms` this destination last confirmed.
    fn column(self) -> &'static str {
        match self {
            Destination::Mqtt => "mqtt_ms",
            Destination::Webhook => "webhook_ms",
            Destination::Influx => "influx_ms",
        }
    }
}

const ALERT_COLUMNS: &str =
    "id, rule, subject, zone, device, severity, start_ms, end_ms, evidence, loss_per_day, loss_fen_per_day, acked_by, acked_ms";

fn text_error(column: usize, what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("unknown {what} `{value}`").into(),
    )
}

/// An alert row from a query that starts with [`ALERT_COLUMNS`]. An unknown rule or
/// severity (written by a newer version) is an error, not a default.
fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    let rule: String = r.get(1)?;
    let severity: String = r.get(5)?;
    Ok(AlertRow {
        id: r.get(0)?,
        rule: AlertRule::parse(&rule).ok_or_else(|| text_error(1, "alert rule", &rule))?,
        subject: r.get(2)?,
        zone: r.get(3)?,
        device: r.get(4)?,
        severity: Severity::parse(&severity).ok_or_else(|| text_error(5, "severity", &severity))?,
        start_ms: r.get(6)?,
        end_ms: r.get(7)?,
        evidence: r.get(8)?,
        loss_per_day: r.get(9)?,
        loss_fen_per_day: r.get(10)?,
        acked_by: r.get(11)?,
        acked_ms: r.get(12)?,
    })
}

impl Store {
    /// Records an alert episode, or updates the one with the same rule, subject and start
    /// (its end, evidence, severity and loss). Returns (id, whether it was new or
    /// changed).
    pub fn upsert_alert(&self, a: &AlertRow) -> Result<(i64, bool)> {
        self.upsert_alert_seen_to(a, i64::MAX)
    }

    /// [`Store::upsert_alert`] for an episode found by a pass whose data ends at
    /// `seen_to_ms`. Evaluation is idempotent over any ranges, in any order:
    /// - the same event seen from another range (a pass that began mid-episode, an import
    ///   then the live gateway) overlaps the stored alert of its rule and subject: it is
    ///   that alert, its start widened to the earliest seen — never a twin;
    /// - its end and evidence are those of the pass that saw furthest (`seen_to_ms`, kept
    ///   with the alert): a pass over older data, which cannot see how the event went on,
    ///   neither reopens nor cuts short what a later pass found.
    pub fn upsert_alert_seen_to(&self, a: &AlertRow, seen_to_ms: i64) -> Result<(i64, bool)> {
        let inner = self.lock();
        let now = Utc::now().timestamp_millis();
        type Stored = (i64, i64, Option<i64>, String, String, i64);
        let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Stored> {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        };
        let same: Option<Stored> = inner
            .conn
            .query_row(
                "SELECT id, start_ms, end_ms, evidence, severity, seen_to_ms FROM alerts
                 WHERE rule = ?1 AND subject = ?2
                   AND (start_ms = ?3 OR (start_ms <= ?4 AND (end_ms IS NULL OR end_ms >= ?3)))
                 ORDER BY start_ms = ?3 DESC, start_ms LIMIT 1",
                params![a.rule.as_str(), a.subject, a.start_ms, a.end_ms.unwrap_or(i64::MAX)],
                row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((id, start, end, evidence, severity, seen)) = same else {
            inner
                .conn
                .execute(
                    "INSERT INTO alerts (rule, subject, zone, device, severity, start_ms, end_ms, evidence, loss_per_day, loss_fen_per_day, raised_ms, updated_ms, seen_to_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)",
                    params![a.rule.as_str(), a.subject, a.zone, a.device, a.severity.as_str(), a.start_ms, a.end_ms, a.evidence, a.loss_per_day, a.loss_fen_per_day, now, seen_to_ms],
                )
                .map_err(|e| self.err(e))?;
            return Ok((inner.conn.last_insert_rowid(), true));
        };
        let new_start = start.min(a.start_ms);
        // the pass that saw as far or further decides how the event went on
        let (new_end, new_evidence, new_severity) = if seen_to_ms >= seen {
            (a.end_ms, a.evidence.as_str(), a.severity.as_str())
        } else {
            (end, evidence.as_str(), severity.as_str())
        };
        let changed = new_start != start || new_end != end || new_evidence != evidence || new_severity != severity;
        if changed {
            let (loss, fen) = if seen_to_ms >= seen { (a.loss_per_day, a.loss_fen_per_day) } else { (None, None) };
            inner
                .conn
                .execute(
                    "UPDATE alerts SET start_ms = ?2, end_ms = ?3, evidence = ?4, severity = ?5,
                       loss_per_day = coalesce(?6, loss_per_day), loss_fen_per_day = coalesce(?7, loss_fen_per_day),
                       updated_ms = ?8, seen_to_ms = max(seen_to_ms, ?9) WHERE id = ?1",
                    params![id, new_start, new_end, new_evidence, new_severity, loss, fen, now, seen_to_ms],
                )
                .map_err(|e| self.err(e))?;
        } else if seen_to_ms > seen {
            inner
                .conn
                .execute("UPDATE alerts SET seen_to_ms = ?2 WHERE id = ?1", params![id, seen_to_ms])
                .map_err(|e| self.err(e))?;
        }
        Ok((id, changed))
    }

    /// Alerts, newest first; `active` only those not cleared.
    pub fn alerts(&self, active: bool) -> Result<Vec<AlertRow>> {
        let inner = self.lock();
        let filter = if active { "WHERE end_ms IS NULL" } else { "" };
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts {filter} ORDER BY start_ms DESC");
        self.select(&inner.conn, &sql, [], alert_row)
    }

    /// Alerts whose episode overlaps `[from_ms, to_ms)`, oldest first.
    pub fn alerts_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<AlertRow>> {
        let inner = self.lock();
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE start_ms < ?2 AND (end_ms IS NULL OR end_ms > ?1) ORDER BY start_ms, id"
        );
        self.select(&inner.conn, &sql, [from_ms, to_ms], alert_row)
    }

    /// Records that the rules ran over `[from_ms, to_ms)`; the ranges are kept merged.
    pub fn record_alert_pass(&self, from_ms: i64, to_ms: i64) -> Result<()> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction().map_err(|e| self.err(e))?;
        let mut ranges: Vec<(i64, i64)> = {
            let mut stmt = tx.prepare_cached("SELECT from_ms, to_ms FROM alert_passes").map_err(|e| self.err(e))?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| self.err(e))?;
            rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))?
        };
        ranges.push((from_ms, to_ms));
        ranges.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        tx.execute("DELETE FROM alert_passes", []).map_err(|e| self.err(e))?;
        for (a, b) in merged {
            tx.execute("INSERT INTO alert_passes (from_ms, to_ms) VALUES (?1, ?2)", [a, b]).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The data-time ranges (ms) the rules have run over, merged, oldest first.
    pub fn alert_passes(&self) -> Result<Vec<(i64, i64)>> {
        let inner = self.lock();
        self.select(&inner.conn, "SELECT from_ms, to_ms FROM alert_passes ORDER BY from_ms", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
    }

    /// One alert by id.
    pub fn alert(&self, id: i64) -> Result<Option<AlertRow>> {
        let inner = self.lock();
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1");
        let mut stmt = inner.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        stmt.query_row([id], alert_row).optional().map_err(|e| self.err(e))
    }

    /// Alerts whose last change `destination` has not confirmed: (row, updated_ms),
    /// oldest change first.
    pub fn undelivered_alerts(&self, destination: Destination) -> Result<Vec<(AlertRow, i64)>> {
        let column = destination.column();
        let inner = self.lock();
        let sql =
            format!("SELECT {ALERT_COLUMNS}, updated_ms FROM alerts WHERE updated_ms > {column} ORDER BY updated_ms");
        self.select(&inner.conn, &sql, [], |r| Ok((alert_row(r)?, r.get(13)?)))
    }

    /// Records that `destination` confirmed the alert's change of `updated_ms`.
    pub fn alert_delivered(&self, destination: Destination, id: i64, updated_ms: i64) -> Result<()> {
        let column = destination.column();
        let inner = self.lock();
        inner
            .conn
            .execute(&format!("UPDATE alerts SET {column} = max({column}, ?2) WHERE id = ?1"), params![id, updated_ms])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Acknowledges an active alert. An alert already acknowledged or cleared is left as
    /// it is: nothing changes, so nothing is delivered again.
    pub fn ack_alert(&self, id: i64, by: &str, at: DateTime<Utc>) -> Result<Ack> {
        let inner = self.lock();
        let n = inner
            .conn
            .execute(
                "UPDATE alerts SET acked_by = ?2, acked_ms = ?3, updated_ms = max(updated_ms + 1, ?3)
                 WHERE id = ?1 AND acked_by IS NULL AND end_ms IS NULL",
                params![id, by, at.timestamp_millis()],
            )
            .map_err(|e| self.err(e))?;
        if n > 0 {
            return Ok(Ack::Done);
        }
        let row: Option<(Option<String>, Option<i64>)> = inner
            .conn
            .query_row("SELECT acked_by, end_ms FROM alerts WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(match row {
            None => Ack::NoSuchAlert,
            Some((Some(by), _)) => Ack::AlreadyAcknowledged(by),
            Some((None, _)) => Ack::Cleared,
        })
    }
}

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
        let inner = self.lock();
        let now = Utc::now().timestamp_millis();
        let existing: Option<(i64, Option<i64>, String, String)> = inner
            .conn
            .query_row(
                "SELECT id, end_ms, evidence, severity FROM alerts WHERE rule = ?1 AND subject = ?2 AND start_ms = ?3",
                params![a.rule.as_str(), a.subject, a.start_ms],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match existing {
            Some((id, end, evidence, severity)) => {
                let changed = end != a.end_ms || evidence != a.evidence || severity != a.severity.as_str();
                if changed {
                    inner
                        .conn
                        .execute(
                            "UPDATE alerts SET end_ms = ?2, evidence = ?3, severity = ?4, loss_per_day = ?5, loss_fen_per_day = ?6, updated_ms = ?7 WHERE id = ?1",
                            params![id, a.end_ms, a.evidence, a.severity.as_str(), a.loss_per_day, a.loss_fen_per_day, now],
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
                        params![a.rule.as_str(), a.subject, a.zone, a.device, a.severity.as_str(), a.start_ms, a.end_ms, a.evidence, a.loss_per_day, a.loss_fen_per_day, now],
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

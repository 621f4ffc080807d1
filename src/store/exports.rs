//! The monthly ledger files the gateway wrote, and which announcements were confirmed:
//! nothing is written or announced twice for the same month and state.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Result, Store};
use crate::model::Month;

/// A month's ledger is written twice: on the 1st of the next month (preliminary: late
/// readings may still come) and when the month is frozen (final).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExportState {
    Preliminary,
    Final,
}

impl ExportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportState::Preliminary => "preliminary",
            ExportState::Final => "final",
        }
    }

    fn parse(s: &str) -> Option<ExportState> {
        match s {
            "preliminary" => Some(ExportState::Preliminary),
            "final" => Some(ExportState::Final),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub month: Month,
    pub state: ExportState,
    pub written: DateTime<Utc>,
    pub mqtt_done: bool,
    pub webhook_done: bool,
}

impl Store {
    pub fn export_written(&self, month: Month, state: ExportState, at: DateTime<Utc>) -> Result<()> {
        let inner = self.lock();
        inner
            .conn
            .execute(
                "INSERT INTO exports (month, state, written_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![month.key(), state.as_str(), at.timestamp_millis()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records that the MQTT (`mqtt = true`) or webhook announcement was confirmed.
    pub fn export_announced(&self, month: Month, state: ExportState, mqtt: bool, at: DateTime<Utc>) -> Result<()> {
        let column = if mqtt { "mqtt_ms" } else { "webhook_ms" };
        let inner = self.lock();
        inner
            .conn
            .execute(
                &format!("UPDATE exports SET {column} = ?3 WHERE month = ?1 AND state = ?2"),
                params![month.key(), state.as_str(), at.timestamp_millis()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every export written, oldest first.
    pub fn exports(&self) -> Result<Vec<ExportRow>> {
        let raw: Vec<(String, String, i64, i64, i64)> = self.select(
            &self.lock().conn,
            "SELECT month, state, written_ms, mqtt_ms, webhook_ms FROM exports ORDER BY month, state",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        raw.into_iter()
            .map(|(m, s, w, mq, wh)| {
                let month =
                    Month::parse(&m).ok_or_else(|| self.invalid(format!("export of an unknown month `{m}`")))?;
                let state =
                    ExportState::parse(&s).ok_or_else(|| self.invalid(format!("unknown export state `{s}`")))?;
                Ok(ExportRow { month, state, written: self.time(w)?, mqtt_done: mq > 0, webhook_done: wh > 0 })
            })
            .collect()
    }
}

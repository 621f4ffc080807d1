//! Audited corrections: manual readings, meter replacements and tariff changes, each
//! with who recorded it, when, and why. Corrections are added, never edited: history is
//! not overwritten, and a ledger lists the corrections that affected it.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::topology::Utility;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A reading taken by hand (meters still read on foot, or a meter the gateway cannot
    /// reach).
    Reading { device: String, point: String, ts: DateTime<Utc>, value: f64 },
    /// The old meter's final reading and the new meter's initial reading at the swap.
    Replacement { device: String, point: String, ts: DateTime<Utc>, old_final: f64, new_initial: f64 },
    /// A flat tariff for a category from a date (tiers and time of use live in the
    /// configuration).
    Tariff { utility: Utility, category: String, from: NaiveDate, price: Decimal },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Correction {
    pub id: i64,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    pub by: String,
    pub why: String,
    pub change: Change,
}

impl Change {
    /// Every number of the change is one a meter or a price notice can have: finite, and
    /// not negative. Checked before a correction is stored, so that none can poison the
    /// ledger afterwards.
    pub fn check(&self) -> Result<(), String> {
        let reading = |name: &str, v: f64| -> Result<(), String> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} {v} is not a meter reading (a finite number, zero or more)"))
            }
        };
        match self {
            Change::Reading { value, .. } => reading("the reading", *value),
            Change::Replacement { old_final, new_initial, .. } => {
                reading("the old meter's final reading", *old_final)?;
                reading("the new meter's initial reading", *new_initial)
            }
            Change::Tariff { price, .. } if price.is_sign_negative() => Err(format!("the price {price} is negative")),
            Change::Tariff { category, .. } if category.trim().is_empty() => Err("the category is empty".into()),
            Change::Tariff { .. } => Ok(()),
        }
    }
}

impl Correction {
    /// One line for listings and the ledger's corrections sheet.
    /// What the correction changes, in `lang`, its time in `tz`.
    pub fn describe(&self, lang: crate::lang::Lang, tz: chrono_tz::Tz) -> String {
        use crate::lang::Lang;
        let at = |ts: &DateTime<Utc>| ts.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
        match (&self.change, lang) {
            (Change::Reading { device, point, ts, value }, Lang::En) => {
                format!("manual reading {device}.{point} = {value} at {}", at(ts))
            }
            (Change::Reading { device, point, ts, value }, Lang::Zh) => {
                format!("人工读数 {device}.{point} = {value}，时间 {}", at(ts))
            }
            (Change::Replacement { device, point, ts, old_final, new_initial }, Lang::En) => {
                format!(
                    "meter replaced {device}.{point} at {}: old final {old_final}, new initial {new_initial}",
                    at(ts)
                )
            }
            (Change::Replacement { device, point, ts, old_final, new_initial }, Lang::Zh) => {
                format!("换表 {device}.{point}，时间 {}：旧表止码 {old_final}，新表起码 {new_initial}", at(ts))
            }
            (Change::Tariff { utility, category, from, price }, Lang::En) => {
                format!("{} tariff for {category} from {from}: {price} per unit", utility.as_str())
            }
            (Change::Tariff { utility, category, from, price }, Lang::Zh) => {
                let u = if utility.as_str() == "water" { "水价" } else { "电价" };
                format!("{category} 的{u}自 {from} 起为每单位 {price}")
            }
        }
    }

    /// Whether the correction touches the period `[from, to)`.
    pub fn affects(&self, from: DateTime<Utc>, to: DateTime<Utc>, local_to: NaiveDate) -> bool {
        match &self.change {
            Change::Reading { ts, .. } | Change::Replacement { ts, .. } => {
                *ts >= from - chrono::TimeDelta::days(7) && *ts < to
            }
            Change::Tariff { from: f, .. } => *f < local_to,
        }
    }
}

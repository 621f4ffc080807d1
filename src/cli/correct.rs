//! `pumphouse correct …`: audited corrections, and their list.

use std::fmt::Write as _;

use anyhow::bail;
use chrono::Utc;

use crate::config::Config;
use crate::ledger::book::{self, Refrozen};
use crate::ledger::corrections::Change;

/// `pumphouse correct …`: records one audited correction; returns its id and a line per
/// frozen month it recomputed (or could not).
pub fn correct(cfg: &Config, by: &str, why: &str, change: Change) -> anyhow::Result<(i64, Vec<String>)> {
    if by.trim().is_empty() || why.trim().is_empty() {
        bail!("a correction needs --by (who) and --why (the reason): the ledger shows both");
    }
    if let Change::Reading { device, point, .. } | Change::Replacement { device, point, .. } = &change {
        let known = cfg.topology.meters.iter().any(|m| &m.device == device && &m.point == point);
        if !known {
            bail!("`{device}.{point}` is not a meter of the network map ([[zones]] inlets or [[meters]])");
        }
    }
    let store = super::open_store(cfg, false)?;
    let (id, months) = book::record_correction(&cfg.ledger_spec(), &store, by, why, &change, Utc::now())?;
    let lines = months
        .into_iter()
        .map(|r| match r {
            Refrozen::Recomputed(m) => format!("correction #{id}: ledger month {m} recomputed"),
            Refrozen::Kept(m) => {
                format!("correction #{id}: ledger month {m} is frozen and its readings are pruned; its record stays as it was")
            }
        })
        .collect();
    Ok((id, lines))
}

/// `pumphouse correct list`.
pub fn corrections_list(cfg: &Config) -> anyhow::Result<String> {
    let store = super::open_store(cfg, true)?;
    let mut out = String::new();
    let (good, unreadable) = book::corrections(&store)?;
    for line in unreadable {
        let _ = writeln!(out, "{line}");
    }
    for c in good {
        let _ = writeln!(out, "#{} {} by {}: {} — {}", c.id, c.at.to_rfc3339(), c.by, c.describe(), c.why);
    }
    Ok(out)
}

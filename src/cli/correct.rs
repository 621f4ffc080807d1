//! `pumphouse correct …`: audited corrections, and their list.

use std::fmt::Write as _;

use anyhow::{anyhow, bail};
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::ledger::book::{self, Refrozen};
use crate::ledger::corrections::Change;
use crate::untrusted::NAME_MAX;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum What {
    /// A reading taken by hand.
    Reading {
        #[arg(long)]
        device: String,
        /// Default: the meter's totalizer point in the network map.
        #[arg(long)]
        point: Option<String>,
        /// When it was read (RFC 3339 with offset).
        #[arg(long)]
        at: DateTime<Utc>,
        #[arg(long)]
        value: f64,
    },
    /// A meter swapped: the old one's final reading and the new one's initial reading.
    Replacement {
        #[arg(long)]
        device: String,
        #[arg(long)]
        point: Option<String>,
        #[arg(long)]
        at: DateTime<Utc>,
        #[arg(long)]
        old_final: f64,
        #[arg(long)]
        new_initial: f64,
    },
    /// A flat tariff for a customer category from a date.
    Tariff {
        #[arg(long)]
        utility: String,
        #[arg(long)]
        category: String,
        /// First day (YYYY-MM-DD, local).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Yuan per unit, e.g. 3.10.
        #[arg(long)]
        price: rust_decimal::Decimal,
    },
    /// List every correction.
    List,
}

/// `pumphouse correct WHAT`: a correction recorded, or the list.
pub fn run(cfg: &Config, by: &str, why: &str, what: What) -> anyhow::Result<super::Report> {
    let point_of = |device: &str, point: Option<String>| -> anyhow::Result<String> {
        point.or_else(|| cfg.topology.meters.iter().find(|m| m.device == device).map(|m| m.point.clone())).ok_or_else(
            || anyhow!("`{device}` is not a meter of the network map: name the device's totalizer with --point"),
        )
    };
    let change = match what {
        What::List => return Ok(super::Report::text(corrections_list(cfg)?)),
        What::Reading { device, point, at, value } => {
            let point = point_of(&device, point)?;
            Change::Reading { device, point, ts: at, value }
        }
        What::Replacement { device, point, at, old_final, new_initial } => {
            let point = point_of(&device, point)?;
            Change::Replacement { device, point, ts: at, old_final, new_initial }
        }
        What::Tariff { utility, category, from, price } => {
            let Some(utility) = crate::ledger::topology::Utility::parse(&utility) else {
                bail!("utility `{utility}`: use water or electricity");
            };
            Change::Tariff { utility, category, from, price }
        }
    };
    if let Change::Reading { value, .. } | Change::Replacement { old_final: value, .. } = &change {
        if !value.is_finite() {
            bail!("readings must be finite numbers");
        }
    }
    let (id, lines) = correct(cfg, by, why, change)?;
    Ok(super::Report {
        stdout: format!("correction #{id} recorded\n"),
        stderr: lines.iter().map(|l| format!("{l}\n")).collect(),
        code: 0,
    })
}

/// The longest reason kept with a correction.
const REASON_MAX: usize = 1000;

/// `pumphouse correct …`: records one audited correction; returns its id and a line per
/// frozen month it recomputed (or could not).
pub fn correct(cfg: &Config, by: &str, why: &str, change: Change) -> anyhow::Result<(i64, Vec<String>)> {
    if by.trim().is_empty() || why.trim().is_empty() {
        bail!("a correction needs --by (who) and --why (the reason): the ledger shows both");
    }
    let by = crate::untrusted::typed("--by", by, NAME_MAX)?;
    let why = crate::untrusted::typed("--why", why, REASON_MAX)?;
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
    let (lang, tz) = (cfg.site.language, cfg.site.timezone);
    if good.is_empty() && unreadable.is_empty() {
        let _ = writeln!(out, "{}", lang.t("no corrections recorded", "没有更正记录"));
    }
    for line in unreadable {
        let _ = writeln!(out, "{}", line.get(lang));
    }
    for c in good {
        // stored before names were checked, or written into the store by hand: shown safe
        let shown = |s: &str| crate::untrusted::shown(s, REASON_MAX);
        let _ = writeln!(
            out,
            "#{} {} {}{}{} {} — {}",
            c.id,
            c.at.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
            lang.t("by ", "录入人 "),
            shown(&c.by),
            lang.t(":", "："),
            c.describe(lang, tz),
            shown(&c.why)
        );
    }
    Ok(out)
}

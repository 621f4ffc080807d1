//! The demo's first screen: what runs where, today's balance per zone, the active alerts,
//! and last month's gap against the baseline with its status — short enough to read at
//! a glance; the page has the rest.

use std::fmt::Write as _;

use chrono::{DateTime, TimeZone, Utc};

use crate::config::Config;
use crate::ledger::book;
use crate::ledger::month::Depth;
use crate::ledger::topology::Utility;
use crate::model::Month;
use crate::store::Store;

fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    let whole = a / 100;
    let mut digits = whole.to_string();
    let mut grouped = String::new();
    while digits.len() > 3 {
        let tail = digits.split_off(digits.len() - 3);
        grouped = format!(" {tail}{grouped}");
    }
    format!("{sign}{digits}{grouped}.{:02}", a % 100)
}

/// Today's water balance per zone (since local midnight), from the current month's hours.
fn today(cfg: &Config, store: &Store, now: DateTime<Utc>, out: &mut String) -> anyhow::Result<()> {
    let tz = cfg.site.timezone;
    let Some(month) = Month::containing(now, tz) else { return Ok(()) };
    let midnight =
        now.with_timezone(&tz).date_naive().and_hms_opt(0, 0, 0).and_then(|m| tz.from_local_datetime(&m).earliest());
    let Some(midnight) = midnight.map(|m| m.with_timezone(&Utc)) else { return Ok(()) };
    let l = book::month_ledger(&cfg.ledger_spec(), store, month, Depth::Bare)?;
    let _ = writeln!(out, "Today since 00:00, water (m³):   net input    billed   non-revenue");
    for z in l.zone_volumes_since(&cfg.topology, midnight).iter().filter(|z| z.utility == Utility::Water) {
        let share =
            if z.net_input > 0.05 { format!("{:.0} %", 100.0 * z.non_revenue / z.net_input) } else { "—".into() };
        // as measured: a parent zone whose children's meters read a little more than its
        // inlet shows a small negative net input, not a 0 (only a rounded -0.0 is tidied)
        let tidy = |v: f64| if (v * 10.0).round() == 0.0 { 0.0 } else { v };
        let _ = writeln!(
            out,
            "  {:<28} {:>10.1} {:>9.1} {:>9.1} ({share})",
            z.zone,
            tidy(z.net_input),
            tidy(z.billed),
            tidy(z.non_revenue)
        );
    }
    Ok(())
}

/// The first screen.
pub fn summary(cfg: &Config, store: &Store, now: DateTime<Utc>) -> anyhow::Result<String> {
    let tz = cfg.site.timezone;
    let mut out = String::new();
    today(cfg, store, now, &mut out)?;
    let active = store.alerts(true)?;
    if active.is_empty() {
        let _ = writeln!(out, "Active alerts: none");
    } else {
        let _ = writeln!(out, "Active alerts ({}):", active.len());
        for a in active.iter().take(5) {
            let since = Utc
                .timestamp_millis_opt(a.start_ms)
                .single()
                .map(|t| {
                    // the year when it is not this one (a valve due since 2006 is not due
                    // since this January)
                    let local = t.with_timezone(&tz);
                    let same_year = local.format("%Y").to_string() == now.with_timezone(&tz).format("%Y").to_string();
                    local.format(if same_year { "%m-%d %H:%M" } else { "%Y-%m-%d" }).to_string()
                })
                .unwrap_or_default();
            let loss = match (a.loss_per_day, a.loss_fen_per_day) {
                (Some(m3), Some(f)) => format!(", losing {m3:.0} m³/day ({} yuan/day)", yuan(f)),
                (Some(m3), None) => format!(", losing {m3:.0} m³/day"),
                _ => String::new(),
            };
            let _ = writeln!(out, "  #{:<4} {:<8} {:<16} {} since {since}{loss}", a.id, a.severity, a.rule, a.subject);
        }
        if active.len() > 5 {
            let _ = writeln!(out, "  … and {} more on the page", active.len() - 5);
        }
    }
    if let Some(last) = Month::containing(now, tz).and_then(Month::prev) {
        let l = book::month_ledger(&cfg.ledger_spec(), store, last, Depth::Month)?;
        let _ = writeln!(out, "Last month ({last}), the gap (costs − fees) against the baseline year:");
        for u in l.utilities.iter().chain(std::iter::once(&l.combined)) {
            let name = u.utility.map_or("combined", Utility::as_str);
            let base = u.baseline_gap_fen.map(|b| format!("{} yuan", yuan(b))).unwrap_or_else(|| "no baseline".into());
            let status = u.status.map_or("—", |s| s.as_str());
            let _ = writeln!(out, "  {name:<12} gap {:>14} yuan   baseline {base:>16}   {status}", yuan(u.gap_fen));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn yuan_groups_thousands() {
        assert_eq!(super::yuan(123_456_789), "1 234 567.89");
        assert_eq!(super::yuan(-5), "-0.05");
        assert_eq!(super::yuan(100_000), "1 000.00");
    }
}

//! `pumphouse ledger`: the monthly ledger from the store.

use std::io::Write as _;

use anyhow::{bail, Context as _};

use crate::config::Config;
use crate::ledger::export;
use crate::model::Month;
use crate::targets::MonthReport;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerFormat {
    Json,
    Csv,
    Xlsx,
    /// The targets and each utility's figures, for reading in a terminal.
    Text,
}

/// The month at a glance: the three targets with their status, then each utility.
pub fn text(r: &MonthReport, lang: export::Lang, tz: chrono_tz::Tz) -> String {
    use std::fmt::Write as _;
    let t = &r.targets;
    let mut s = String::new();
    let _ = writeln!(s, "{} {}{}", t.site, t.month, if t.complete { "" } else { " (month still running)" });
    for (name, rows) in crate::targets::tables::tables(t, lang, tz).into_iter().take(1).map(|(n, _, r)| (n, r)) {
        let _ = writeln!(s, "\n{name}");
        for row in rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| match c {
                    export::Cell::Text(x) => x.clone(),
                    export::Cell::Num(n) => format!("{n}"),
                    export::Cell::Empty => "?".into(),
                })
                .collect();
            let _ = writeln!(s, "  {}", cells.join(" | "));
        }
    }
    let _ = writeln!(s);
    for u in r.ledger.utilities.iter().chain(std::iter::once(&r.ledger.combined)) {
        let _ = writeln!(
            s,
            "{}: revenue {} cost {} gap {} yuan{}",
            export::utility_label(lang, u.utility),
            export::yuan_text(u.revenue_fen),
            export::yuan_text(u.cost_fen),
            export::yuan_text(u.gap_fen),
            u.status.map(|x| format!(" ({})", export::status_label(lang, Some(x)))).unwrap_or_default()
        );
    }
    for n in &r.ledger.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

/// `pumphouse ledger`: the monthly ledger from the store.
pub fn ledger(
    cfg: &Config,
    month: &str,
    format: LedgerFormat,
    lang: export::Lang,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let Some(m) = Month::parse(month) else { bail!("`{month}` is not a month; write YYYY-MM") };
    if cfg.topology.zones.is_empty() {
        bail!(
            "{} defines no [[zones]]: the ledger needs the network map (see config/pumphouse.example.toml)",
            cfg.source
        );
    }
    let store = super::open_store(cfg, true)?;
    let l = MonthReport::from_store(&cfg.targets_spec(), &store, m)?;
    let bytes = match format {
        LedgerFormat::Json => crate::ledger::export::json(&l, true)?,
        LedgerFormat::Csv => l.csv(lang).into_bytes(),
        LedgerFormat::Xlsx => {
            if out.is_none() {
                bail!("an .xlsx ledger needs -o PATH");
            }
            l.xlsx(lang)?
        }
        LedgerFormat::Text => text(&l, lang, cfg.site.timezone).into_bytes(),
    };
    match out {
        Some(p) => std::fs::write(p, bytes).with_context(|| format!("cannot write {}", p.display()))?,
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}

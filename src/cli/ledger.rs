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
    let running = if t.complete { "" } else { lang.t(" (month still running)", "（本月尚未结束）") };
    let _ = writeln!(s, "{} {}{running}", t.site, t.month);
    for (name, head, rows) in crate::targets::tables::tables(t, lang, tz).into_iter().take(1) {
        let _ = writeln!(s, "\n{name}");
        // the header first, so that the baseline and the change are labelled; an
        // unknown figure reads "?"
        let _ = writeln!(s, "  {}", head.join(" | "));
        for row in rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| match c {
                    export::Cell::Empty => "?".into(),
                    other => other.text(),
                })
                .collect();
            let _ = writeln!(s, "  {}", cells.join(" | "));
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{}",
        lang.t(
            "utility: revenue / cost / gap = cost − revenue (yuan) (target)",
            "类别：收入 / 成本 / 收支差额 = 成本 − 收入（元）（零增长目标）"
        )
    );
    for u in r.ledger.utilities.iter().chain(std::iter::once(&r.ledger.combined)) {
        let _ = writeln!(
            s,
            "{}{} {} / {} / {}{}",
            export::utility_label(lang, u.utility),
            lang.t(":", "："),
            export::yuan_text(u.revenue_fen),
            export::yuan_text(u.cost_fen),
            export::yuan_text(u.gap_fen),
            u.status.map(|x| format!(" ({})", export::status_label(lang, Some(x)))).unwrap_or_default()
        );
    }
    for n in &r.ledger.notes {
        let _ = writeln!(s, "{}{}", lang.t("note: ", "说明："), n.get(lang));
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

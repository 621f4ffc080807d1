//! `pumphouse ledger`: the monthly ledger from the store.

use std::io::Write as _;

use anyhow::{bail, Context as _};

use crate::config::Config;
use crate::ledger::{book, export, month::Depth};
use crate::model::Month;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerFormat {
    Json,
    Csv,
    Xlsx,
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
    let l = book::month_ledger(&cfg.ledger_spec(), &store, m, Depth::Full)?;
    let bytes = match format {
        LedgerFormat::Json => serde_json::to_vec_pretty(&l)?,
        LedgerFormat::Csv => export::to_csv(&l, lang).into_bytes(),
        LedgerFormat::Xlsx => {
            if out.is_none() {
                bail!("an .xlsx ledger needs -o PATH");
            }
            export::to_xlsx(&l, lang)?
        }
    };
    match out {
        Some(p) => std::fs::write(p, bytes).with_context(|| format!("cannot write {}", p.display()))?,
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}

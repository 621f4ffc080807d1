//! The commands, one file each. Each takes a validated configuration (or its own
//! arguments) and returns what it prints; `main.rs` turns that into output and an exit
//! code. Commands reach the store through the same modules as the running gateway
//! (`ledger::book`, `alerts::evaluate`), never through `gateway`.

pub mod alerts;
pub mod assets;
pub mod check;
pub mod correct;
pub mod demo;
pub mod import;
pub mod ledger;
pub mod probe;
pub mod profiles;
pub mod topology;
pub mod valves;

use anyhow::bail;

use crate::config::{self, diag::ConfigErrors, Config, Mode};
use crate::store::Store;

/// What a command printed and the exit code it asks for (0 unless it says otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

impl Report {
    pub fn text(stdout: impl Into<String>) -> Report {
        Report { stdout: stdout.into(), ..Default::default() }
    }
}

impl From<String> for Report {
    fn from(s: String) -> Report {
        Report::text(s)
    }
}

/// Loads a configuration, printing its warnings to stderr.
pub fn load_config(path: &std::path::Path, mode: Mode) -> Result<Config, ConfigErrors> {
    let (cfg, diags) = config::load(path, mode)?;
    for w in diags.warnings() {
        eprintln!("{w}");
    }
    Ok(cfg)
}

/// Opens the store of an existing installation (for `ledger`, `alerts` and `import`).
pub fn open_store(cfg: &Config, must_exist: bool) -> anyhow::Result<Store> {
    if must_exist && !cfg.store.path.exists() {
        bail!("no store at {}: run the gateway, or `pumphouse import` readings, first", cfg.store.path.display());
    }
    Ok(Store::open(&cfg.store.path, cfg.store.limits)?)
}

/// A progress bar on a terminal (stderr); nothing when the output goes elsewhere.
pub fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} {eta}") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

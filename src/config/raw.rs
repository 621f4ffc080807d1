//! The configuration as written: serde structs that mirror the TOML one to one, refuse
//! unknown fields, and hold numbers wide (i64) so that range errors become our own
//! sentences rather than serde's. Nothing here is trusted; `validate` turns it into the
//! typed configuration.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub name: Option<String>,
    pub timezone: Option<String>,
    /// `zh` (the default) or `en`: the page, alert texts, robot messages and files.
    pub language: Option<String>,
}

/// Defaults for every device, overridable per bus and per device.

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawAlerts {
    /// How often the running gateway evaluates the rules (default 5m).
    pub evaluate_every: Option<String>,
    /// Days the campus keeps as a weekend (public holidays, term breaks): `YYYY-MM-DD`, or
    /// `YYYY-MM-DD..YYYY-MM-DD` for a run of days.
    #[serde(default)]
    pub holidays: Vec<String>,
    pub webhook_url: Option<String>,
    /// The webhook URL carries the robot's key: better from an environment variable or a
    /// file than in the configuration.
    pub webhook_url_env: Option<String>,
    pub webhook_url_file: Option<String>,
    /// generic | wecom | dingtalk
    pub webhook_format: Option<String>,
    /// The page's address as the team's phones reach it; robot messages link there.
    pub page_url: Option<String>,
    /// Rule settings for the whole site (see `alerts::settings`).
    #[serde(flatten)]
    pub settings: crate::alerts::settings::RawSettings,
    #[serde(default)]
    pub overrides: Vec<crate::alerts::settings::RawSettings>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLedger {
    /// Where the running gateway writes each month's ledger (XLSX and CSV).
    pub export_dir: Option<String>,
    /// zh (default) or en.
    pub language: Option<String>,
}

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
}

/// Defaults for every device, overridable per bus and per device.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolling {
    pub interval: Option<String>,
    pub retries: Option<i64>,
    pub backoff_max: Option<String>,
    pub max_hole: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBus {
    pub name: Option<String>,
    pub transport: Option<String>,
    /// tcp and rtu-over-tcp: `host:port`.
    pub address: Option<String>,
    /// rtu: the serial device path.
    pub device: Option<String>,
    pub baud: Option<i64>,
    pub parity: Option<String>,
    pub stop_bits: Option<i64>,
    pub data_bits: Option<i64>,
    pub timeout: Option<String>,
    pub gap: Option<String>,
    /// tcp: how many requests may be in flight at once on this bus.
    pub concurrency: Option<i64>,
    pub retries: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    pub name: Option<String>,
    pub bus: Option<String>,
    pub unit: Option<i64>,
    pub profile: Option<String>,
    pub zone: Option<String>,
    pub interval: Option<String>,
    pub max_registers: Option<i64>,
    pub max_bits: Option<i64>,
    pub max_hole: Option<i64>,
    pub retries: Option<i64>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub path: Option<String>,
    pub max_size: Option<String>,
    pub max_age: Option<String>,
    pub memory_queue: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    pub url: Option<String>,
    pub prefix: Option<String>,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub retain: Option<bool>,
    pub qos: Option<i64>,
    /// Publishes in flight (sent, not yet acknowledged) at once.
    pub window: Option<i64>,
    /// `point` (one message per reading) or `device` (one per poll of a device).
    pub payload: Option<String>,
    pub keep_alive: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInflux {
    pub name: Option<String>,
    pub url: Option<String>,
    pub api: Option<String>,
    pub database: Option<String>,
    pub retention_policy: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub org: Option<String>,
    pub bucket: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<String>,
    pub batch_size: Option<i64>,
    pub flush_interval: Option<String>,
    pub precision: Option<String>,
    pub gzip: Option<bool>,
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub listen: Option<String>,
    /// A sink with a backlog and no success for this long makes /healthz answer 503.
    pub stall_after: Option<String>,
    /// The bearer token every endpoint that changes state requires, from the environment
    /// variable or the file named here.
    pub token_env: Option<String>,
    pub token_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawAlerts {
    /// How often the running gateway evaluates the rules (default 5m).
    pub evaluate_every: Option<String>,
    pub webhook_url: Option<String>,
    /// The webhook URL carries the robot's key: better from an environment variable or a
    /// file than in the configuration.
    pub webhook_url_env: Option<String>,
    pub webhook_url_file: Option<String>,
    /// generic | wecom | dingtalk
    pub webhook_format: Option<String>,
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

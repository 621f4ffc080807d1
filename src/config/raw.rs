//! The configuration as written: serde structs that mirror the TOML one to one, refuse
//! unknown fields, and hold numbers wide (i64) so that range errors become our own
//! sentences rather than serde's. Nothing here is trusted; `validate` turns it into the
//! typed configuration.

use std::collections::BTreeMap;

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub points: Vec<RawPoint>,
    /// Test vectors: raw registers with the values they must decode to.
    #[serde(default)]
    pub vectors: Vec<RawVector>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoint {
    pub name: Option<String>,
    pub table: Option<String>,
    pub address: Option<i64>,
    /// Alternative to table + address: the 1-based "Modicon" number of register maps,
    /// e.g. 30001 (input register 0) or 400010 (holding register 9).
    pub register: Option<i64>,
    #[serde(rename = "type")]
    pub data_type: Option<String>,
    pub bit: Option<i64>,
    pub order: Option<String>,
    pub scale: Option<f64>,
    pub offset: Option<f64>,
    pub unit: Option<String>,
    pub quantity: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub exponent_from: Option<String>,
    pub exponent_offset: Option<i64>,
    pub current_loop: Option<RawCurrentLoop>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCurrentLoop {
    /// Engineering value at 4 mA and at 20 mA.
    pub range: Option<Vec<f64>>,
    pub fault_below: Option<f64>,
    pub fault_above: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVector {
    pub description: Option<String>,
    #[serde(default)]
    pub registers: Vec<RawVectorBlock>,
    /// point name → expected engineering value.
    #[serde(default)]
    pub expect: BTreeMap<String, f64>,
    /// point name → expected quality code (`out_of_range`, …); default `good`.
    #[serde(default)]
    pub expect_quality: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVectorBlock {
    pub table: Option<String>,
    pub address: Option<i64>,
    #[serde(default)]
    pub values: Vec<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub path: Option<String>,
    pub max_size: Option<String>,
    pub max_age: Option<String>,
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
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawAlerts {
    /// How often the running gateway evaluates the rules (default 5m).
    pub evaluate_every: Option<String>,
    pub webhook_url: Option<String>,
    /// generic | wecom | dingtalk
    pub webhook_format: Option<String>,
    /// Rule settings for the whole site (see `alerts::settings`).
    #[serde(flatten)]
    pub settings: crate::alerts::settings::RawSettings,
    #[serde(default)]
    pub overrides: Vec<crate::alerts::settings::RawSettings>,
}

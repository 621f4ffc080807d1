//! Configuration: TOML (through the `config` crate, with `PUMPHOUSE__SECTION__KEY`
//! environment overrides) → raw serde structs → a validated, typed [`Config`].
//!
//! Validation reports every problem at once, each with its path and a sentence a user can
//! act on. Unknown keys are errors, not surprises at run time. Each array element is
//! deserialised on its own so one malformed device does not hide the problems of the
//! others.

pub mod delivery;
pub use crate::diag;
pub mod raw;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;

use crate::modbus::planner::{self, Limits};
use crate::modbus::profile::Profile;
use delivery::{HttpConfig, InfluxConfig, MqttConfig, StoreConfig};
use diag::{ConfigErrors, Diagnostics};

/// What the configuration is being loaded for: a missing serial device is a warning when
/// checking a file on another machine, and an error when about to poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Check,
    Run,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub site: Site,
    pub buses: Vec<Bus>,
    pub devices: Vec<Device>,
    /// Every profile by name: built-in ones and the configuration's own (which may
    /// replace a built-in one of the same name).
    pub profiles: BTreeMap<String, Arc<Profile>>,
    pub store: StoreConfig,
    /// `None` when the file has no `[mqtt]` section.
    pub mqtt: Option<MqttConfig>,
    pub influxdb: Vec<InfluxConfig>,
    /// `None` when `[http] listen = "off"`.
    pub http: Option<HttpConfig>,
    /// Zones, meters and unmetered uses of the ledger.
    pub topology: crate::ledger::topology::Topology,
    /// Tariffs, time-of-use schedule, costs and the baseline year.
    pub prices: crate::ledger::prices::Prices,
    /// The baseline year's safety and service figures from the old books.
    pub target_baselines: Vec<crate::targets::baseline::TargetBaseline>,
    pub alerts: AlertsConfig,
    pub ledger: LedgerConfig,
    /// Where the configuration came from, for messages.
    pub source: String,
}

/// `[ledger]`: the monthly ledger the running gateway writes by itself.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Where it writes each month's ledger; `None`: it does not.
    pub export_dir: Option<PathBuf>,
    /// The language of the files and announcements.
    pub language: crate::ledger::export::Lang,
}

#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub evaluate_every: Duration,
    /// The webhook URL (it carries the robot's key).
    pub webhook_url: Option<delivery::Secret>,
    pub webhook_format: crate::alerts::deliver::WebhookFormat,
    pub rules: crate::alerts::settings::RuleSettings,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub name: Arc<str>,
    pub timezone: Tz,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parity {
    None,
    Even,
    Odd,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    Tcp {
        address: String,
    },
    Rtu {
        device: PathBuf,
        baud: u32,
        parity: Parity,
        stop_bits: u8,
        data_bits: u8,
    },
    /// RTU frames over a TCP stream (serial device servers in transparent mode). `baud`
    /// is the serial side's rate, used only to estimate line time.
    RtuOverTcp {
        address: String,
        baud: Option<u32>,
    },
}

impl Transport {
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Tcp { .. } => "tcp",
            Transport::Rtu { .. } => "rtu",
            Transport::RtuOverTcp { .. } => "rtu-over-tcp",
        }
    }

    /// A serial line (or one behind a device server) carries one request at a time.
    pub fn is_half_duplex(&self) -> bool {
        !matches!(self, Transport::Tcp { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            Transport::Tcp { address } => format!("tcp {address}"),
            Transport::Rtu { device, baud, parity, stop_bits, data_bits } => {
                let p = match parity {
                    Parity::None => 'N',
                    Parity::Even => 'E',
                    Parity::Odd => 'O',
                };
                format!("rtu {} {baud} {data_bits}{p}{stop_bits}", device.display())
            }
            Transport::RtuOverTcp { address, .. } => format!("rtu-over-tcp {address}"),
        }
    }

    /// (baud, bits per character) of the serial line, when known.
    pub fn line(&self) -> Option<(u32, u32)> {
        match self {
            Transport::Rtu { baud, parity, stop_bits, data_bits, .. } => {
                let parity_bits = u32::from(*parity != Parity::None);
                Some((*baud, 1 + u32::from(*data_bits) + parity_bits + u32::from(*stop_bits)))
            }
            Transport::RtuOverTcp { baud: Some(b), .. } => Some((*b, 10)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Bus {
    pub name: Arc<str>,
    pub transport: Transport,
    /// How long to wait for one answer.
    pub timeout: Duration,
    /// Silence between two requests on the line (serial), or none.
    pub gap: Duration,
    /// Requests in flight at once (TCP only; serial lines are always 1).
    pub concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub name: Arc<str>,
    pub bus: Arc<str>,
    pub unit: u8,
    pub profile: Arc<Profile>,
    pub zone: Arc<str>,
    pub interval: Duration,
    pub limits: Limits,
    /// Extra attempts after a failed request before the cycle gives up on the device.
    pub retries: u32,
    /// Longest wait between attempts at a device that does not answer.
    pub backoff_max: Duration,
}

impl Device {
    pub fn plan(&self) -> Vec<planner::Request> {
        planner::plan(&self.profile.points, self.limits)
    }
}

impl Config {
    pub fn bus(&self, name: &str) -> Option<&Bus> {
        self.buses.iter().find(|b| &*b.name == name)
    }

    pub fn device(&self, name: &str) -> Option<&Device> {
        self.devices.iter().find(|d| &*d.name == name)
    }

    /// Readings a day the polling plan produces (every point of every device each interval).
    pub fn readings_per_day(&self) -> f64 {
        self.devices
            .iter()
            .map(|d| d.profile.points.len() as f64 * 86_400.0 / d.interval.as_secs_f64().max(0.001))
            .sum()
    }

    /// How many days of readings `[store] max_size` holds, at the bytes per reading the
    /// store takes (≈ 70, BENCHMARKS.md).
    pub fn store_days(&self) -> Option<f64> {
        let per_day = self.readings_per_day() * STORE_BYTES_PER_READING;
        (per_day > 0.0).then(|| self.store.limits.max_size as f64 / per_day)
    }

    /// What the ledger needs of this configuration.
    pub fn ledger_spec(&self) -> crate::ledger::month::Spec<'_> {
        crate::ledger::month::Spec {
            site: &self.site.name,
            tz: self.site.timezone,
            topology: &self.topology,
            prices: &self.prices,
            intervals: self.devices.iter().map(|d| (&*d.name, d.interval)).collect(),
            as_of: None,
        }
    }
}

/// What one reading takes in the store, index included (measured: 69 bytes).
pub const STORE_BYTES_PER_READING: f64 = 70.0;

pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Parses `10s`, `500ms`, `1m 30s` (humantime) into a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. 500ms, 10s, 5m"))
}

/// Loads a configuration file, applies `PUMPHOUSE__…` environment overrides, validates.
/// On success, the warnings come with the config.
pub fn load(path: &Path, mode: Mode) -> Result<(Config, Diagnostics), ConfigErrors> {
    let built = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .add_source(env_source())
        .build();
    let source = path.display().to_string();
    match built {
        Ok(c) => from_config(c, &source, mode),
        Err(e) => Err(ConfigErrors(vec![diag::Diagnostic {
            severity: diag::Severity::Error,
            path: source,
            message: e.to_string(),
        }])),
    }
}

/// Validates configuration text (TOML), with environment overrides.
pub fn load_str(text: &str, mode: Mode) -> Result<(Config, Diagnostics), ConfigErrors> {
    let built = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(env_source())
        .build();
    match built {
        Ok(c) => from_config(c, "<text>", mode),
        Err(e) => Err(ConfigErrors(vec![diag::Diagnostic {
            severity: diag::Severity::Error,
            path: "<text>".into(),
            message: e.to_string(),
        }])),
    }
}

fn env_source() -> config::Environment {
    config::Environment::with_prefix("PUMPHOUSE").prefix_separator("__").separator("__").try_parsing(true)
}

fn from_config(c: config::Config, source: &str, mode: Mode) -> Result<(Config, Diagnostics), ConfigErrors> {
    let mut diags = Diagnostics::default();
    let top: HashMap<String, config::Value> = match c.try_deserialize() {
        Ok(t) => t,
        Err(e) => {
            diags.error(source, e.to_string());
            return Err(ConfigErrors(diags.items));
        }
    };
    let config = validate::validate(&top, source, mode, &mut diags);
    match config {
        Some(c) if !diags.has_errors() => Ok((c, diags)),
        _ => Err(ConfigErrors(diags.items)),
    }
}

#[cfg(test)]
mod tests;

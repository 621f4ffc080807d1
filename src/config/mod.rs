//! Configuration: TOML (through the `config` crate, with `PUMPHOUSE__SECTION__KEY`
//! environment overrides) → raw serde structs → a validated, typed [`Config`].
//!
//! Validation reports every problem at once, each with its path and a sentence a user can
//! act on. Unknown keys are errors, not surprises at run time. Each array element is
//! deserialised on its own so one malformed device does not hide the problems of the
//! others.

pub use crate::diag;
pub use crate::diag::{parse_duration, Mode};
pub use crate::http::config::HttpConfig;
pub use crate::modbus::config::{Bus, Device, Parity, Transport, DEFAULT_INTERVAL};
pub use crate::secret::Secret;
pub use crate::sinks::influx::config::{InfluxApi, InfluxConfig, Precision};
pub use crate::sinks::mqtt::config::{MqttConfig, Payload};
pub use crate::store::config::StoreConfig;
pub mod raw;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;

use crate::modbus::profile::Profile;
use diag::{ConfigErrors, Diagnostics};

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
    /// The register of pipe sections (`[assets]`).
    pub assets: crate::assets::Assets,
    /// Where the configuration came from, for messages.
    pub source: String,
}

/// `[ledger]`: the monthly ledger the running gateway writes by itself.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Where it writes each month's ledger; `None`: it does not.
    pub export_dir: Option<PathBuf>,
    /// The language of the files and announcements.
    pub language: crate::lang::Lang,
}

#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub evaluate_every: Duration,
    /// The webhook URL (it carries the robot's key).
    pub webhook_url: Option<Secret>,
    pub webhook_format: crate::alerts::deliver::WebhookFormat,
    /// The page's address as the team's phones reach it (robot messages link there).
    pub page_url: Option<String>,
    pub rules: crate::alerts::settings::RuleSettings,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub name: Arc<str>,
    pub timezone: Tz,
    /// The language of everything a person reads.
    pub language: crate::lang::Lang,
}

impl Site {
    /// How alerts speak to this site's people.
    pub fn voice(&self) -> crate::alerts::said::Voice {
        crate::alerts::said::Voice::new(self.language, self.timezone)
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
        readings_per_day(&self.devices)
    }

    /// How many days of readings `[store] max_size` holds, at the bytes per reading the
    /// store takes (≈ 70, BENCHMARKS.md).
    pub fn store_days(&self) -> Option<f64> {
        let per_day = self.readings_per_day() * STORE_BYTES_PER_READING;
        (per_day > 0.0).then(|| self.store.limits.max_size as f64 / per_day)
    }

    /// What the alert rules need of this configuration.
    pub fn alert_spec(&self) -> crate::alerts::spec::Spec<'_> {
        crate::alerts::spec::Spec {
            tz: self.site.timezone,
            topology: &self.topology,
            prices: &self.prices,
            rules: &self.alerts.rules,
            devices: self
                .devices
                .iter()
                .map(|d| crate::alerts::spec::DeviceSpec {
                    name: &d.name,
                    zone: &d.zone,
                    interval: d.interval,
                    profile: &d.profile,
                })
                .collect(),
            register_valves: self
                .assets
                .valves
                .iter()
                .map(|v| crate::alerts::valve_life::RegisterValve {
                    id: &v.id,
                    zone: &v.zone,
                    installed: v.installed,
                    device: v.device.as_deref(),
                })
                .collect(),
            exercise_every: self.assets.exercise_interval(),
        }
    }

    /// What the zero-growth targets need of this configuration.
    pub fn targets_spec(&self) -> crate::targets::Spec<'_> {
        crate::targets::Spec {
            site: &self.site.name,
            tz: self.site.timezone,
            topology: &self.topology,
            baselines: &self.target_baselines,
            observed: self.devices.iter().flat_map(|d| d.profile.points.iter().map(|p| p.quantity)).collect(),
            ledger: self.ledger_spec(),
            assets: &self.assets,
            elements: self.schematic_elements(),
        }
    }

    /// Every configured device as the schematic draws it, without readings.
    pub fn schematic_elements(&self) -> Vec<crate::ledger::schematic::Element> {
        use crate::ledger::schematic::{kind_of, zone_of, Element};
        self.devices
            .iter()
            .map(|d| {
                let measures: Vec<_> = d.profile.points.iter().map(|p| p.quantity).collect();
                Element {
                    device: d.name.to_string(),
                    zone: zone_of(&self.topology, &d.name, &d.zone),
                    kind: kind_of(&self.topology, &d.name, &measures),
                    state: String::new(),
                    good: None,
                    alerted: false,
                }
            })
            .collect()
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

/// Readings a day some devices produce (every point each interval).
pub fn readings_per_day(devices: &[Device]) -> f64 {
    devices.iter().map(|d| d.profile.points.len() as f64 * 86_400.0 / d.interval.as_secs_f64().max(0.001)).sum()
}

/// What one reading takes in the store, index included (measured: 69 bytes).
pub const STORE_BYTES_PER_READING: f64 = 70.0;

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
        Err(e) => Err(unreadable(source, std::fs::read_to_string(path).ok().as_deref(), e)),
    }
}

/// A configuration that is not TOML: the parser's message, and where the text has
/// full-width punctuation outside quotes (a Chinese input method's `，` for `,`), a hint
/// naming those lines.
fn unreadable(source: String, text: Option<&str>, e: config::ConfigError) -> ConfigErrors {
    let mut message = e.to_string();
    let lines = text.map(full_width_lines).unwrap_or_default();
    if !lines.is_empty() {
        let at: Vec<String> = lines.iter().map(|(n, c)| format!("line {n} has `{c}`")).collect();
        message.push_str(&format!(
            "\nhint: {}: full-width punctuation outside quotes; write ASCII , : = [ ] {{ }} \" (半角), as a Chinese input method in English mode types them",
            at.join(", ")
        ));
    }
    ConfigErrors(vec![diag::Diagnostic { severity: diag::Severity::Error, path: source, message }])
}

/// Lines (1-based) with full-width punctuation outside quoted strings and comments, each
/// with the first such character.
pub fn full_width_lines(text: &str) -> Vec<(usize, char)> {
    const FULL_WIDTH: &[char] = &['，', '：', '＝', '［', '］', '｛', '｝', '“', '”', '；', '\u{3000}', '＃', '．'];
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut quoted = false;
        for c in line.chars() {
            match c {
                '"' | '\'' => quoted = !quoted,
                '#' if !quoted => break,
                c if !quoted && FULL_WIDTH.contains(&c) => {
                    out.push((i + 1, c));
                    break;
                }
                _ => {}
            }
        }
    }
    out
}

/// Validates configuration text (TOML), with environment overrides.
pub fn load_str(text: &str, mode: Mode) -> Result<(Config, Diagnostics), ConfigErrors> {
    let built = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(env_source())
        .build();
    match built {
        Ok(c) => from_config(c, "<text>", mode),
        Err(e) => Err(unreadable("<text>".into(), Some(text), e)),
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
    // a check reached by two paths says its finding once
    let mut seen = std::collections::HashSet::new();
    diags.items.retain(|d| seen.insert((d.severity, d.path.clone(), d.message.clone())));
    match config {
        Some(c) if !diags.has_errors() => Ok((c, diags)),
        _ => Err(ConfigErrors(diags.items)),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_advice;
#[cfg(test)]
mod tests_meters;

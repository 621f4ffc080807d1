//! Validation: raw sections → a [`Config`], every problem reported with its path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use serde::de::DeserializeOwned;

use super::*;
use crate::diag::{check_name, duration_field, human_size};
use crate::http::config as http_config;
use crate::modbus::config::{RawBus, RawDevice, RawPolling};
use crate::modbus::profile_file::{self, RawProfile};
use crate::sinks::influx::config::RawInflux;
use crate::sinks::mqtt::config::RawMqtt;
use crate::{modbus, secret, sinks, store};
use raw::RawSite;

fn section<T: DeserializeOwned + Default>(
    top: &HashMap<String, config::Value>,
    key: &str,
    diags: &mut Diagnostics,
) -> T {
    match top.get(key) {
        None => T::default(),
        Some(v) => v.clone().try_deserialize().unwrap_or_else(|e| {
            diags.error(key, e.to_string());
            T::default()
        }),
    }
}

fn array<T: DeserializeOwned>(
    top: &HashMap<String, config::Value>,
    key: &str,
    diags: &mut Diagnostics,
) -> Vec<(usize, T)> {
    let Some(v) = top.get(key) else { return Vec::new() };
    let items = match v.clone().into_array() {
        Ok(items) => items,
        Err(_) => {
            diags.error(key, format!("`{key}` must be an array of tables: write [[{key}]]"));
            return Vec::new();
        }
    };
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| match item.try_deserialize::<T>() {
            Ok(t) => Some((i, t)),
            Err(e) => {
                diags.error(format!("{key}[{i}]"), e.to_string());
                None
            }
        })
        .collect()
}

const SECTIONS: &[&str] = &[
    "site",
    "polling",
    "buses",
    "devices",
    "profiles",
    "store",
    "mqtt",
    "influxdb",
    "http",
    "zones",
    "meters",
    "unmetered",
    "tou",
    "tariffs",
    "costs",
    "baseline",
    "baseline_targets",
    "alerts",
    "ledger",
    "assets",
];
/// Sections that later parts of the gateway read; accepted here so one file serves all.
const LATER_SECTIONS: &[&str] = &[];

pub(super) fn validate(
    top: &HashMap<String, config::Value>,
    source: &str,
    mode: Mode,
    diags: &mut Diagnostics,
) -> Option<Config> {
    unknown_keys(top, diags);
    let raw_site: RawSite = section(top, "site", diags);
    let raw_polling: RawPolling = section(top, "polling", diags);
    let raw_buses: Vec<(usize, RawBus)> = array(top, "buses", diags);
    let raw_devices: Vec<(usize, RawDevice)> = array(top, "devices", diags);
    let raw_profiles: Vec<(usize, RawProfile)> = array(top, "profiles", diags);
    let raw_store: store::config::RawStore = section(top, "store", diags);
    let raw_mqtt: Option<RawMqtt> = top.contains_key("mqtt").then(|| section(top, "mqtt", diags));
    let raw_influx: Vec<(usize, RawInflux)> = array(top, "influxdb", diags);
    let raw_http: http_config::RawHttp = section(top, "http", diags);
    let raw_zones = array(top, "zones", diags);
    let raw_meters = array(top, "meters", diags);
    let raw_unmetered = array(top, "unmetered", diags);
    let raw_tou = array(top, "tou", diags);
    let raw_tariffs = array(top, "tariffs", diags);
    let raw_costs = array(top, "costs", diags);
    let raw_baseline = array(top, "baseline", diags);
    let raw_target_baselines = array(top, "baseline_targets", diags);
    let raw_alerts: raw::RawAlerts = section(top, "alerts", diags);
    let raw_ledger: raw::RawLedger = section(top, "ledger", diags);
    let (site_name, timezone, language) = site(&raw_site, diags);
    let polling = modbus::config::polling(&raw_polling, diags);
    let (profiles, own_profiles) = profiles(&raw_profiles, diags);
    let (buses, bus_index) = modbus::config::buses(&raw_buses, mode, diags);
    if raw_buses.is_empty() && top.contains_key("devices") {
        diags.error("buses", "devices are configured but no bus: add a [[buses]] entry");
    }
    let devices = modbus::config::devices(&raw_devices, &buses, &bus_index, &profiles, &own_profiles, &polling, diags);
    let used: HashSet<&str> = devices.iter().map(|d| &*d.bus).collect();
    for b in &buses {
        if !used.contains(&*b.name) {
            diags.warning(
                format!("buses[{}]", bus_index.get(&*b.name).copied().unwrap_or(0)),
                format!("bus `{}` has no devices", b.name),
            );
        }
    }
    let store = store::config::validate(&raw_store, diags);
    let mqtt = raw_mqtt.as_ref().and_then(|m| sinks::mqtt::config::validate(m, &site_name, mode, diags));
    let mut influxdb: Vec<InfluxConfig> = Vec::new();
    for (i, r) in &raw_influx {
        if let Some(c) = sinks::influx::config::validate(r, *i, mode, diags) {
            if influxdb.iter().any(|o| o.name == c.name) {
                diags.error(
                    format!("influxdb[{i}].name"),
                    format!("another [[influxdb]] is already named `{}`", c.name),
                );
            }
            influxdb.push(c);
        }
    }
    let http =
        if raw_http.listen.as_deref() == Some("off") { None } else { http_config::validate(&raw_http, mode, diags) };
    let known: Vec<crate::ledger::topology::KnownDevice<'_>> =
        devices.iter().map(|d| crate::ledger::topology::KnownDevice { name: &d.name, profile: &d.profile }).collect();
    let topology = crate::ledger::topology::validate(&raw_zones, &raw_meters, &raw_unmetered, &known, diags);
    // an interval that did not parse is reported; a store size computed at the default
    // in its place would be a second, false error
    let interval_unknown = diags.errors().any(|d| d.path.ends_with("interval"));
    if !topology.zones.is_empty() && !interval_unknown {
        store_keeps_a_month(&store, readings_per_day(&devices), diags);
    }
    let raw_prices = crate::ledger::prices::RawPrices {
        seasons: &raw_tou,
        tariffs: &raw_tariffs,
        costs: &raw_costs,
        baseline: &raw_baseline,
    };
    let prices = crate::ledger::prices::validate(&raw_prices, &topology, &known, diags);
    let alerts = alerts(&raw_alerts, mode, diags);
    rated_currents(&raw_devices, &devices, &alerts, diags);
    let ledger = ledger(&raw_ledger, language, !topology.zones.is_empty(), mode, diags);
    let cfg = Config {
        assets: crate::assets::validate_for(&section(top, "assets", diags), &topology, &valve_devices(&devices), diags),
        ledger,
        site: Site { name: site_name.into(), timezone, language },
        buses,
        devices,
        profiles,
        store,
        mqtt,
        influxdb,
        http,
        topology,
        prices,
        target_baselines: crate::targets::baseline::validate(&raw_target_baselines, diags),
        alerts,
        source: source.to_string(),
    };
    if !cfg.topology.zones.is_empty() {
        let unknown =
            |z: &str| z != "unzoned" && cfg.topology.zone(z).is_none() && !cfg.topology.broken.iter().any(|b| b == z);
        for d in cfg.devices.iter().filter(|d| unknown(&d.zone)) {
            let i = raw_devices.iter().find(|(_, r)| r.name.as_deref() == Some(&*d.name)).map_or(0, |(i, _)| *i);
            let known: Vec<&str> = cfg.topology.zones.iter().map(|z| z.name.as_str()).collect();
            diags.warning(
                format!("devices[{i}].zone"),
                format!(
                    "`{}` is not a zone of the network map ([[zones]]: {}); its readings are tagged with it, and no zone of the map sees them (balance, interruptions, bursts)",
                    d.zone,
                    known.join(", ")
                ),
            );
        }
    }
    let this_year = chrono::Datelike::year(&chrono::Utc::now().with_timezone(&cfg.site.timezone));
    unused_baselines(&cfg, this_year, diags);
    uncosted_utilities(&cfg, diags);
    for (zone, why) in cfg.alert_spec().bursts_unjudged() {
        let i = cfg.topology.zones.iter().position(|z| z.name == zone).unwrap_or(0);
        diags.warning(format!("zones[{i}]"), format!("zone `{zone}`: {why}"));
    }
    Some(cfg)
}

/// Baseline months no ledger of this year or last compares with: the baseline of a month
/// is the same month a year before, so this year's ledgers need last year's months. A
/// baseline given for another year is accepted, and used only by that year's successor.
fn unused_baselines(cfg: &Config, this_year: i32, diags: &mut Diagnostics) {
    let base = this_year - 1;
    let useful = |y: i32| y == base || y == base - 1;
    let mut stale: Vec<String> = cfg
        .prices
        .baseline
        .iter()
        .filter(|b| !useful(b.year))
        .map(|b| format!("{}-{:02}", b.year, b.month))
        .chain(cfg.target_baselines.iter().filter(|b| !useful(b.month.year())).map(|b| b.month.key()))
        .collect();
    stale.sort();
    stale.dedup();
    if let (Some(first), Some(last)) = (stale.first(), stale.last()) {
        let span = if first == last { first.clone() } else { format!("{first} … {last}") };
        diags.warning(
            "baseline",
            format!(
                "[[baseline]]/[[baseline_targets]] months {span} are not compared with any ledger of {this_year} or {base}: a month's baseline is the same month a year before, so this year's baseline year is {base}; give {base}'s months from the old books"
            ),
        );
    }
}

/// A utility with zones but no `[[costs]]`: the ledger books its fees, but its gap — the
/// money target — is unknown without what the water or power cost.
fn uncosted_utilities(cfg: &Config, diags: &mut Diagnostics) {
    use crate::ledger::topology::Utility;
    for u in [Utility::Water, Utility::Electricity] {
        let mapped = cfg.topology.zones.iter().any(|z| z.utility == u);
        if mapped && !cfg.prices.costs.iter().any(|c| c.utility == u) {
            let example = match u {
                Utility::Water => "utility = \"water\", name = \"purchase\", kind = \"input\", price = \"2.10\" (yuan per m3 bought or produced)",
                Utility::Electricity => "utility = \"electricity\", name = \"grid\", kind = \"input\", price = \"0.65\" (yuan per kWh from the grid)",
            };
            diags.warning(
                "costs",
                format!("no [[costs]] for {u}: its fees are booked but its cost is not, so its gap (the money target) reads unknown; add a [[costs]] with {example}"),
            );
        }
    }
}

/// A meter whose over-current is judged against its profile's `max_current` (the rating
/// of a meter connected directly) is said so: a meter on current transformers carries a
/// fraction of the feeder's current through its profile's figures, and would count an
/// incident on its first busy day. It needs its breaker's rating as `rated_current`.
fn rated_currents(
    raw_devices: &[(usize, RawDevice)],
    devices: &[crate::modbus::config::Device],
    alerts: &AlertsConfig,
    diags: &mut Diagnostics,
) {
    use crate::model::{AlertRule, Quantity};
    for d in devices {
        let set = alerts.rules.for_subject(&d.zone, Some(&d.name));
        let measures_current = d.profile.points.iter().any(|p| p.quantity == Quantity::Current);
        if !measures_current || !set.enabled(AlertRule::Overcurrent) || set.rated_current.is_some() {
            continue;
        }
        let i = raw_devices.iter().find(|(_, r)| r.name.as_deref() == Some(&*d.name)).map_or(0, |(i, _)| *i);
        let message = match d.profile.ratings.max_current {
            Some(a) => format!(
                "over-current is judged against the profile's {a} A, the rating of a meter connected directly; if `{}` is on current transformers, give its breaker's rating: [[alerts.overrides]] device = \"{}\", rated_current = …",
                d.name, d.name
            ),
            None => format!(
                "no rated current: over-current is not judged for `{}` until [[alerts.overrides]] device = \"{}\" gives rated_current",
                d.name, d.name
            ),
        };
        diags.warning(format!("devices[{i}].profile"), message);
    }
}

/// `[alerts]`: the pass interval, the robot's webhook (a secret: its key is in the URL)
/// and the rule settings.
fn alerts(raw_alerts: &raw::RawAlerts, mode: Mode, diags: &mut Diagnostics) -> AlertsConfig {
    use crate::alerts::deliver::WebhookFormat;
    let webhook_format = match raw_alerts.webhook_format.as_deref() {
        None => WebhookFormat::Generic,
        Some(f) => WebhookFormat::parse(f).unwrap_or_else(|| {
            diags.error("alerts.webhook_format", format!("unknown format `{f}`; use generic, wecom or dingtalk"));
            WebhookFormat::Generic
        }),
    };
    // The robot's key is in its URL: it is a secret like the others.
    let webhook_url = match (&raw_alerts.webhook_url, &raw_alerts.webhook_url_env, &raw_alerts.webhook_url_file) {
        (Some(_), None, None) => raw_alerts.webhook_url.clone().map(Secret::new),
        (None, _, _) => secret::read(
            &raw_alerts.webhook_url_env,
            &raw_alerts.webhook_url_file,
            "alerts.webhook_url",
            "webhook URL",
            mode,
            diags,
        ),
        (Some(_), _, _) => {
            diags.error(
                "alerts.webhook_url",
                "give the webhook URL once: webhook_url, webhook_url_env or webhook_url_file",
            );
            None
        }
    };
    if let Some(u) =
        webhook_url.as_ref().filter(|u| !(u.expose().starts_with("http://") || u.expose().starts_with("https://")))
    {
        diags.error(
            "alerts.webhook_url",
            format!("{} is not an http:// or https:// URL", secret::url_origin(u.expose())),
        );
    }
    let no_url = raw_alerts.webhook_url.is_none()
        && raw_alerts.webhook_url_env.is_none()
        && raw_alerts.webhook_url_file.is_none();
    if raw_alerts.webhook_format.is_some() && no_url {
        diags.warning(
            "alerts.webhook_url",
            "webhook_format is set but no robot address is: no alert is sent; give webhook_url_env = \"PUMPHOUSE_WEBHOOK_URL\" (or webhook_url_file) with the robot's URL",
        );
    }
    let page_url = raw_alerts.page_url.clone();
    match &page_url {
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            diags.error("alerts.page_url", format!("`{u}` is not an http:// or https:// address"));
        }
        None if webhook_url.is_some() => diags.warning(
            "alerts.page_url",
            "not set: robot messages carry no link to the page; write the address the team's phones reach, e.g. page_url = \"http://10.0.0.5:8080\"",
        ),
        _ => {}
    }
    let mut rules = crate::alerts::settings::validate(raw_alerts.settings.clone(), raw_alerts.overrides.clone(), diags);
    rules.holidays = crate::alerts::settings::holidays(&raw_alerts.holidays, diags);
    AlertsConfig {
        rules,
        evaluate_every: duration_field(
            &raw_alerts.evaluate_every,
            Duration::from_secs(300),
            Duration::from_secs(1)..=Duration::from_secs(86_400),
            "alerts.evaluate_every",
            diags,
        ),
        webhook_url,
        webhook_format,
        page_url,
    }
}

/// `[ledger]`: where the running gateway writes each month's ledger, and its language.
fn ledger(
    raw_ledger: &raw::RawLedger,
    site_language: crate::lang::Lang,
    has_zones: bool,
    mode: Mode,
    diags: &mut Diagnostics,
) -> LedgerConfig {
    let ledger = LedgerConfig {
        export_dir: raw_ledger.export_dir.as_ref().map(std::path::PathBuf::from),
        // `[ledger] language` only where the files must differ from the site's language
        language: match raw_ledger.language.as_deref().map(crate::lang::Lang::parse).transpose() {
            Ok(l) => l.unwrap_or(site_language),
            Err(e) => {
                diags.error("ledger.language", e.to_string());
                crate::lang::Lang::Zh
            }
        },
    };
    if let Some(dir) = &ledger.export_dir {
        if !has_zones {
            diags.error("ledger.export_dir", "the monthly ledger needs the network map ([[zones]])");
        } else if !dir.is_dir() {
            let m = format!("{} is not a directory (the monthly ledgers are written there)", dir.display());
            diags.of_machine(mode, "ledger.export_dir", m);
        }
    }
    ledger
}

/// A network map needs a month of readings and the seven days before it is frozen: the
/// store must keep them, by age and by size.
fn store_keeps_a_month(store: &StoreConfig, per_day: f64, diags: &mut Diagnostics) {
    // Months are frozen for the ledger seven days after they close: raw readings must
    // live at least that long (31 + 7 days, and a margin).
    if let Some(max_age) = store.limits.max_age.filter(|a| *a < Duration::from_secs(40 * 86_400)) {
        diags.error(
            "store.max_age",
            format!(
                "{} is too short for the ledger: a month is frozen seven days after it closes, so readings must be kept at least 40 days",
                humantime::format_duration(max_age)
            ),
        );
    }
    // the ledger needs a month of readings and the seven days before it is frozen
    let days = store.limits.max_size as f64 / (per_day * STORE_BYTES_PER_READING).max(1.0);
    if per_day > 0.0 && days < 40.0 {
        diags.error(
            "store.max_size",
            format!(
                "{} holds about {days:.0} days of this configuration's readings ({per_day:.0} a day, ~{STORE_BYTES_PER_READING:.0} bytes each); the ledger needs 40 (a month and seven days until it is frozen): raise it to at least {:.1} GiB, or poll less often",
                human_size(store.limits.max_size),
                40.0 * per_day * STORE_BYTES_PER_READING / (1u64 << 30) as f64
            ),
        );
    }
}

/// Unknown top-level sections, and unknown keys of `[alerts]`.
fn unknown_keys(top: &HashMap<String, config::Value>, diags: &mut Diagnostics) {
    let mut keys: Vec<&String> = top.keys().collect();
    keys.sort();
    for k in keys {
        if !SECTIONS.contains(&k.as_str()) && !LATER_SECTIONS.contains(&k.as_str()) {
            diags.error(k.as_str(), format!("unknown section `{k}`; known sections: {}", SECTIONS.join(", ")));
        }
    }
    // `[alerts]` flattens the rule settings in, which serde cannot check for unknown keys.
    if let Some(table) = top.get("alerts").and_then(|v| v.clone().into_table().ok()) {
        const KNOWN: &[&str] = &[
            "evaluate_every",
            "holidays",
            "webhook_url",
            "webhook_url_env",
            "webhook_url_file",
            "webhook_format",
            "page_url",
            "overrides",
            "night_window",
            "night_min_excess",
            "night_nights",
            "pressure_band",
            "silent_after",
            "continuous_hours",
            "stuck_hours",
            "imbalance_share",
            "burst_min_rise",
            "disable",
        ];
        let mut keys: Vec<&String> = table.keys().filter(|k| !KNOWN.contains(&k.as_str())).collect();
        keys.sort();
        for k in keys {
            diags.error("alerts", format!("unknown field `{k}`, expected one of {}", KNOWN.join(", ")));
        }
    }
}

fn site(raw_site: &RawSite, diags: &mut Diagnostics) -> (String, Tz, crate::lang::Lang) {
    let site_name = match raw_site.name.as_deref() {
        Some(n) => check_name(&Some(n.to_string()), "site", "site", diags).unwrap_or_default(),
        None => {
            diags.error("site.name", "missing: the site's name (it tags every reading)");
            String::new()
        }
    };
    let timezone = match raw_site.timezone.as_deref() {
        None => {
            diags.warning(
                "site.timezone",
                "not set: months, nights and tariff periods follow UTC; a campus in China writes timezone = \"Asia/Shanghai\"",
            );
            chrono_tz::UTC
        }
        Some(tz) => tz.parse::<Tz>().unwrap_or_else(|_| {
            diags.error("site.timezone", format!("`{tz}` is not an IANA time zone; write e.g. Asia/Shanghai"));
            chrono_tz::UTC
        }),
    };
    // one language for everything a person reads: the page, alerts, robots, files
    let language = match raw_site.language.as_deref().map(crate::lang::Lang::parse).transpose() {
        Ok(l) => l.unwrap_or_default(),
        Err(e) => {
            diags.error("site.language", e.to_string());
            crate::lang::Lang::Zh
        }
    };
    (site_name, timezone, language)
}

fn profiles(
    raw_profiles: &[(usize, RawProfile)],
    diags: &mut Diagnostics,
) -> (BTreeMap<String, Arc<Profile>>, HashMap<String, usize>) {
    let mut profiles: BTreeMap<String, Arc<Profile>> = BTreeMap::new();
    for p in profile_file::builtin_profiles(diags) {
        profiles.insert(p.name.to_string(), Arc::new(p));
    }
    let mut own_profiles: HashMap<String, usize> = HashMap::new();
    for (i, rp) in raw_profiles {
        let path = format!("profiles[{i}]");
        if let Some(name) = rp.name.as_deref() {
            if let Some(first) = own_profiles.insert(name.to_string(), *i) {
                diags
                    .error(format!("{path}.name"), format!("profile `{name}` is already defined at profiles[{first}]"));
                continue;
            }
        }
        if let Some(p) = profile_file::validate_profile(rp, &path, diags) {
            profiles.insert(p.name.to_string(), Arc::new(p));
        }
    }

    (profiles, own_profiles)
}

/// The devices that read a valve's position: what a register's valve may name.
fn valve_devices(devices: &[Device]) -> Vec<&str> {
    devices
        .iter()
        .filter(|d| d.profile.points.iter().any(|p| p.quantity == crate::model::Quantity::ValvePosition))
        .map(|d| &*d.name)
        .collect()
}

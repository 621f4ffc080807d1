//! Validation: raw sections → a [`Config`], every problem reported with its path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use serde::de::DeserializeOwned;

use super::*;
use crate::modbus::planner::{self, Limits};
use crate::modbus::profile_file::{self, RawProfile};
use raw::{RawBus, RawDevice, RawHttp, RawInflux, RawMqtt, RawPolling, RawSite, RawStore};

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
];
/// Sections that later parts of the gateway read; accepted here so one file serves all.
const LATER_SECTIONS: &[&str] = &[];

fn duration_field(value: &Option<String>, default: Duration, path: &str, diags: &mut Diagnostics) -> Duration {
    match value {
        None => default,
        Some(s) => match parse_duration(s) {
            Ok(d) if d.is_zero() => {
                diags.error(path, "must be longer than zero");
                default
            }
            Ok(d) => d,
            Err(e) => {
                diags.error(path, e);
                default
            }
        },
    }
}

fn int_field(
    value: Option<i64>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    path: &str,
    what: &str,
    diags: &mut Diagnostics,
) -> i64 {
    match value {
        None => default,
        Some(v) if range.contains(&v) => v,
        Some(v) => {
            diags.error(path, format!("{v} is outside {}..={}: {what}", range.start(), range.end()));
            default
        }
    }
}

fn check_name(name: &Option<String>, path: &str, what: &str, diags: &mut Diagnostics) -> Option<String> {
    match name.as_deref() {
        None | Some("") => {
            diags.error(format!("{path}.name"), format!("every {what} needs a name"));
            None
        }
        Some(n) if n.chars().any(|c| c == '/' || c == '+' || c == '#' || c.is_whitespace() || c.is_control()) => {
            diags.error(
                format!("{path}.name"),
                format!("`{n}` contains a space, '/', '+' or '#'; names become MQTT topic levels and series tags, use letters, digits, '-', '_' or '.'"),
            );
            None
        }
        Some(n) => Some(n.to_string()),
    }
}

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
    let raw_store: RawStore = section(top, "store", diags);
    let raw_mqtt: Option<RawMqtt> = top.contains_key("mqtt").then(|| section(top, "mqtt", diags));
    let raw_influx: Vec<(usize, RawInflux)> = array(top, "influxdb", diags);
    let raw_http: RawHttp = section(top, "http", diags);
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
    let (site_name, timezone) = site(&raw_site, diags);
    let polling = polling(&raw_polling, diags);
    let (profiles, own_profiles) = profiles(&raw_profiles, diags);
    let (buses, bus_index) = buses(&raw_buses, mode, diags);
    if raw_buses.is_empty() && top.contains_key("devices") {
        diags.error("buses", "devices are configured but no bus: add a [[buses]] entry");
    }
    let devices = devices(&raw_devices, &buses, &bus_index, &profiles, &own_profiles, &polling, diags);
    let used: HashSet<&str> = devices.iter().map(|d| &*d.bus).collect();
    for b in &buses {
        if !used.contains(&*b.name) {
            diags.warning(
                format!("buses[{}]", bus_index.get(&*b.name).copied().unwrap_or(0)),
                format!("bus `{}` has no devices", b.name),
            );
        }
    }
    let store = delivery::validate_store(&raw_store, diags);
    let mqtt = raw_mqtt.as_ref().and_then(|m| delivery::validate_mqtt(m, &site_name, mode, diags));
    let mut influxdb: Vec<InfluxConfig> = Vec::new();
    for (i, r) in &raw_influx {
        if let Some(c) = delivery::validate_influx(r, *i, mode, diags) {
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
        if raw_http.listen.as_deref() == Some("off") { None } else { delivery::validate_http(&raw_http, mode, diags) };
    let known: Vec<crate::ledger::topology::KnownDevice<'_>> =
        devices.iter().map(|d| crate::ledger::topology::KnownDevice { name: &d.name, profile: &d.profile }).collect();
    let topology = crate::ledger::topology::validate(&raw_zones, &raw_meters, &raw_unmetered, &known, diags);
    // Months are frozen for the ledger seven days after they close: raw readings must
    // live at least that long (31 + 7 days, and a margin).
    if !topology.zones.is_empty() && store.limits.max_age < Duration::from_secs(40 * 86_400) {
        diags.error(
            "store.max_age",
            format!(
                "{} is too short for the ledger: a month is frozen seven days after it closes, so readings must be kept at least 40 days",
                humantime::format_duration(store.limits.max_age)
            ),
        );
    }
    let raw_prices = crate::ledger::prices::RawPrices {
        seasons: &raw_tou,
        tariffs: &raw_tariffs,
        costs: &raw_costs,
        baseline: &raw_baseline,
    };
    let prices = crate::ledger::prices::validate(&raw_prices, &topology, &known, diags);
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
        (Some(_), None, None) => raw_alerts.webhook_url.clone().map(delivery::Secret::new),
        (None, _, _) => delivery::secret(
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
            format!("{} is not an http:// or https:// URL", delivery::url_origin(u.expose())),
        );
    }
    let rules = crate::alerts::settings::validate(raw_alerts.settings.clone(), raw_alerts.overrides.clone(), diags);
    let alerts = AlertsConfig {
        rules,
        evaluate_every: duration_field(
            &raw_alerts.evaluate_every,
            Duration::from_secs(300),
            "alerts.evaluate_every",
            diags,
        ),
        webhook_url,
        webhook_format,
    };
    // the ledger needs a month of readings and the seven days before it is frozen
    let per_day: f64 =
        devices.iter().map(|d| d.profile.points.len() as f64 * 86_400.0 / d.interval.as_secs_f64().max(0.001)).sum();
    let days = store.limits.max_size as f64 / (per_day * STORE_BYTES_PER_READING).max(1.0);
    if !topology.zones.is_empty() && per_day > 0.0 && days < 40.0 {
        diags.error(
            "store.max_size",
            format!(
                "{} holds about {days:.0} days of this configuration's readings ({per_day:.0} a day, ~{STORE_BYTES_PER_READING:.0} bytes each); the ledger needs 40 (a month and seven days until it is frozen): raise it to at least {:.1} GiB, or poll less often",
                humantime_size(store.limits.max_size),
                40.0 * per_day * STORE_BYTES_PER_READING / (1u64 << 30) as f64
            ),
        );
    }
    let ledger = LedgerConfig {
        export_dir: raw_ledger.export_dir.as_ref().map(std::path::PathBuf::from),
        language: match raw_ledger.language.as_deref() {
            None | Some("zh") => crate::ledger::export::Lang::Zh,
            Some("en") => crate::ledger::export::Lang::En,
            Some(other) => {
                diags.error("ledger.language", format!("unknown language `{other}`; use zh or en"));
                crate::ledger::export::Lang::Zh
            }
        },
    };
    if let Some(dir) = &ledger.export_dir {
        if topology.zones.is_empty() {
            diags.error("ledger.export_dir", "the monthly ledger needs the network map ([[zones]])");
        } else if !dir.is_dir() {
            let m = format!("{} is not a directory (the monthly ledgers are written there)", dir.display());
            match mode {
                Mode::Check => diags.warning("ledger.export_dir", m),
                Mode::Run => diags.error("ledger.export_dir", m),
            }
        }
    }
    Some(Config {
        ledger,
        site: Site { name: site_name.into(), timezone },
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
    })
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
            "webhook_url",
            "webhook_url_env",
            "webhook_url_file",
            "webhook_format",
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

fn site(raw_site: &RawSite, diags: &mut Diagnostics) -> (String, Tz) {
    let site_name = match raw_site.name.as_deref() {
        Some(n) => check_name(&Some(n.to_string()), "site", "site", diags).unwrap_or_default(),
        None => {
            diags.error("site.name", "missing: the site's name (it tags every reading)");
            String::new()
        }
    };
    let timezone = match raw_site.timezone.as_deref() {
        None => chrono_tz::UTC,
        Some(tz) => tz.parse::<Tz>().unwrap_or_else(|_| {
            diags.error("site.timezone", format!("`{tz}` is not an IANA time zone; write e.g. Asia/Shanghai"));
            chrono_tz::UTC
        }),
    };

    (site_name, timezone)
}

/// `[polling]`: what a device has unless it says otherwise.
struct PollingDefaults {
    interval: Duration,
    retries: i64,
    backoff_max: Duration,
    max_hole: i64,
}

fn polling(raw_polling: &RawPolling, diags: &mut Diagnostics) -> PollingDefaults {
    let default_interval = duration_field(&raw_polling.interval, DEFAULT_INTERVAL, "polling.interval", diags);
    let default_retries =
        int_field(raw_polling.retries, 1, 0..=10, "polling.retries", "extra attempts per request", diags);
    let backoff_max = duration_field(&raw_polling.backoff_max, Duration::from_secs(300), "polling.backoff_max", diags);
    let default_hole =
        int_field(raw_polling.max_hole, 8, 0..=124, "polling.max_hole", "unused registers a read may span", diags);

    PollingDefaults { interval: default_interval, retries: default_retries, backoff_max, max_hole: default_hole }
}

/// Profiles: built-in, then the configuration's own. Returns them by name, and where each
/// of the configuration's own was defined.
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

/// Buses, and where each name was first defined.
fn buses(raw_buses: &[(usize, RawBus)], mode: Mode, diags: &mut Diagnostics) -> (Vec<Bus>, HashMap<String, usize>) {
    let mut buses: Vec<Bus> = Vec::new();
    let mut bus_index: HashMap<String, usize> = HashMap::new();
    for (i, rb) in raw_buses {
        let path = format!("buses[{i}]");
        let name = check_name(&rb.name, &path, "bus", diags);
        if let Some(n) = &name {
            if let Some(first) = bus_index.get(n) {
                diags.error(format!("{path}.name"), format!("bus `{n}` is already defined at buses[{first}]"));
            } else {
                bus_index.insert(n.clone(), *i);
            }
        }
        let transport = validate_transport(rb, &path, mode, diags);
        let timeout = duration_field(&rb.timeout, Duration::from_secs(1), &format!("{path}.timeout"), diags);
        let gap_default =
            if matches!(transport, Some(Transport::Tcp { .. })) { Duration::ZERO } else { Duration::from_millis(5) };
        let gap = match &rb.gap {
            None => gap_default,
            Some(s) => parse_duration(s).unwrap_or_else(|e| {
                diags.error(format!("{path}.gap"), e);
                gap_default
            }),
        };
        let concurrency =
            int_field(rb.concurrency, 4, 1..=64, &format!("{path}.concurrency"), "requests in flight at once", diags)
                as usize;
        if rb.concurrency.is_some() && transport.as_ref().is_some_and(Transport::is_half_duplex) {
            diags.warning(
                format!("{path}.concurrency"),
                "a serial line carries one request at a time; concurrency is ignored",
            );
        }
        if rb.retries.is_some() {
            diags.error(format!("{path}.retries"), "retries are set per device or in [polling]");
        }
        let duplicate = name.as_ref().is_some_and(|n| bus_index.get(n) != Some(i));
        if let (Some(name), Some(transport), false) = (name, transport, duplicate) {
            let concurrency = if transport.is_half_duplex() { 1 } else { concurrency };
            buses.push(Bus { name: name.into(), transport, timeout, gap, concurrency });
        }
    }

    (buses, bus_index)
}

fn devices(
    raw_devices: &[(usize, RawDevice)],
    buses: &[Bus],
    bus_index: &HashMap<String, usize>,
    profiles: &BTreeMap<String, Arc<Profile>>,
    own_profiles: &HashMap<String, usize>,
    polling: &PollingDefaults,
    diags: &mut Diagnostics,
) -> Vec<Device> {
    let (default_interval, default_retries, backoff_max, default_hole) =
        (polling.interval, polling.retries, polling.backoff_max, polling.max_hole);
    let mut devices = Vec::new();
    let mut device_names: HashMap<String, usize> = HashMap::new();
    let mut units: HashMap<(String, u8), (usize, String)> = HashMap::new();
    for (i, rd) in raw_devices {
        let path = format!("devices[{i}]");
        let name = check_name(&rd.name, &path, "device", diags);
        if let Some(n) = &name {
            if let Some(first) = device_names.insert(n.clone(), *i) {
                diags.error(format!("{path}.name"), format!("device `{n}` is already defined at devices[{first}]"));
            }
        }
        let bus = match rd.bus.as_deref() {
            None => {
                diags.error(format!("{path}.bus"), "missing: the bus the device is on");
                None
            }
            Some(b) => match buses.iter().find(|x| &*x.name == b) {
                Some(bus) => Some(bus.clone()),
                None if bus_index.contains_key(b) => None, // declared, with its own errors
                None => {
                    let known: Vec<&str> = buses.iter().map(|b| &*b.name).collect();
                    diags
                        .error(format!("{path}.bus"), format!("unknown bus `{b}`; defined buses: {}", or_none(&known)));
                    None
                }
            },
        };
        let unit = match rd.unit {
            None => {
                diags.error(format!("{path}.unit"), "missing: the device's Modbus unit id (1..=247)");
                None
            }
            Some(u) if (1..=247).contains(&u) => Some(u as u8),
            Some(u) => {
                diags.error(
                    format!("{path}.unit"),
                    format!("unit id {u} is outside 1..=247 (0 is broadcast, 248..=255 are reserved)"),
                );
                None
            }
        };
        if let (Some(b), Some(u), Some(n)) = (rd.bus.as_deref(), unit, &name) {
            if let Some((first, other)) = units.insert((b.to_string(), u), (*i, n.clone())) {
                diags.error(
                    format!("{path}.unit"),
                    format!("unit id {u} on bus `{b}` is already used by `{other}` (devices[{first}])"),
                );
            }
        }
        let profile = match rd.profile.as_deref() {
            None => {
                diags.error(
                    format!("{path}.profile"),
                    "missing: the device's profile (built-in, or defined under [[profiles]])",
                );
                None
            }
            Some(p) => match profiles.get(p) {
                Some(p) => Some(p.clone()),
                None if own_profiles.contains_key(p) => None, // its own errors are reported already
                None => {
                    let known: Vec<&str> = profiles.keys().map(String::as_str).collect();
                    diags.error(
                        format!("{path}.profile"),
                        format!("unknown profile `{p}`; known profiles: {}", known.join(", ")),
                    );
                    None
                }
            },
        };
        let zone = match rd.zone.as_deref() {
            Some(z) => check_name(&Some(z.to_string()), &format!("{path}.zone"), "zone", diags).map(|z| z.to_string()),
            None => Some("unzoned".to_string()),
        };
        let interval = duration_field(&rd.interval, default_interval, &format!("{path}.interval"), diags);
        let max_registers = int_field(
            rd.max_registers,
            i64::from(planner::MAX_REGISTERS),
            1..=125,
            &format!("{path}.max_registers"),
            "registers per read (Modbus allows 125)",
            diags,
        ) as u16;
        let max_bits = int_field(
            rd.max_bits,
            i64::from(planner::MAX_BITS),
            1..=2000,
            &format!("{path}.max_bits"),
            "bits per read (Modbus allows 2000)",
            diags,
        ) as u16;
        let max_hole = int_field(
            rd.max_hole,
            default_hole,
            0..=124,
            &format!("{path}.max_hole"),
            "unused registers a read may span",
            diags,
        ) as u16;
        let retries = int_field(
            rd.retries,
            default_retries,
            0..=10,
            &format!("{path}.retries"),
            "extra attempts per request",
            diags,
        ) as u32;
        if let Some(p) = &profile {
            let widest = p.widest_register_point();
            if widest > max_registers {
                diags.error(
                    format!("{path}.max_registers"),
                    format!("profile `{}` has a {widest}-register point, which cannot be read with at most {max_registers} register(s) per request", p.name),
                );
            }
        }
        if let Some(b) = &bus {
            if b.timeout * (retries + 1) > interval {
                diags.warning(
                    format!("{path}.interval"),
                    format!(
                        "{} with {} attempt(s) of {} each can exceed the interval",
                        humantime::format_duration(interval),
                        retries + 1,
                        humantime::format_duration(b.timeout)
                    ),
                );
            }
        }
        if rd.enabled == Some(false) {
            continue;
        }
        if let (Some(name), Some(bus), Some(unit), Some(profile), Some(zone)) = (name, bus, unit, profile, zone) {
            devices.push(Device {
                name: name.into(),
                bus: bus.name.clone(),
                unit,
                profile,
                zone: zone.into(),
                interval,
                limits: Limits { max_registers, max_bits, max_hole },
                retries,
                backoff_max,
            });
        }
    }
    devices
}

fn or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn validate_transport(rb: &RawBus, path: &str, mode: Mode, diags: &mut Diagnostics) -> Option<Transport> {
    let kind = match rb.transport.as_deref() {
        None => {
            diags.error(format!("{path}.transport"), "missing: tcp, rtu or rtu-over-tcp");
            return None;
        }
        Some(k) => k,
    };
    let address = |diags: &mut Diagnostics| -> Option<String> {
        match rb.address.as_deref() {
            None => {
                diags.error(format!("{path}.address"), format!("missing: `host:port` of the {kind} endpoint"));
                None
            }
            Some(a) => match a.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                    Some(a.to_string())
                }
                _ => {
                    diags.error(format!("{path}.address"), format!("`{a}` is not `host:port` (e.g. 192.168.1.20:502)"));
                    None
                }
            },
        }
    };
    let serial_only = |diags: &mut Diagnostics| {
        for (field, set) in [
            ("device", rb.device.is_some()),
            ("parity", rb.parity.is_some()),
            ("stop_bits", rb.stop_bits.is_some()),
            ("data_bits", rb.data_bits.is_some()),
        ] {
            if set {
                diags.error(format!("{path}.{field}"), format!("`{field}` applies to rtu buses, not {kind}"));
            }
        }
    };
    match kind {
        "tcp" => {
            serial_only(diags);
            if rb.baud.is_some() {
                diags.error(format!("{path}.baud"), "`baud` applies to rtu and rtu-over-tcp buses, not tcp");
            }
            address(diags).map(|address| Transport::Tcp { address })
        }
        "rtu-over-tcp" => {
            serial_only(diags);
            let baud = rb.baud.map(|b| {
                int_field(Some(b), 9600, 300..=921_600, &format!("{path}.baud"), "the serial side's baud rate", diags)
                    as u32
            });
            address(diags).map(|address| Transport::RtuOverTcp { address, baud })
        }
        "rtu" => {
            if rb.address.is_some() {
                diags.error(format!("{path}.address"), "an rtu bus has a `device` (serial port path), not an address; for a serial device server use transport = \"rtu-over-tcp\"");
            }
            let baud =
                int_field(rb.baud, 9600, 300..=921_600, &format!("{path}.baud"), "the line's baud rate", diags) as u32;
            let parity = match rb.parity.as_deref().unwrap_or("none") {
                "none" => Parity::None,
                "even" => Parity::Even,
                "odd" => Parity::Odd,
                other => {
                    diags.error(format!("{path}.parity"), format!("unknown parity `{other}`; use none, even or odd"));
                    Parity::None
                }
            };
            let stop_bits = int_field(rb.stop_bits, 1, 1..=2, &format!("{path}.stop_bits"), "stop bits", diags) as u8;
            let data_bits =
                int_field(rb.data_bits, 8, 7..=8, &format!("{path}.data_bits"), "data bits (Modbus RTU uses 8)", diags)
                    as u8;
            let device = match rb.device.as_deref() {
                None | Some("") => {
                    diags.error(format!("{path}.device"), "missing: the serial port, e.g. /dev/ttyUSB0");
                    return None;
                }
                Some(d) => PathBuf::from(d),
            };
            if !device.exists() {
                let msg = format!(
                    "serial device {} does not exist (is the adapter plugged in, and is this the right path?)",
                    device.display()
                );
                match mode {
                    Mode::Check => diags.warning(format!("{path}.device"), msg),
                    Mode::Run => diags.error(format!("{path}.device"), msg),
                }
            }
            Some(Transport::Rtu { device, baud, parity, stop_bits, data_bits })
        }
        other => {
            diags.error(
                format!("{path}.transport"),
                format!("unknown transport `{other}`; use tcp, rtu or rtu-over-tcp"),
            );
            None
        }
    }
}

fn humantime_size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

//! Buses and devices: `[[buses]]`, `[[devices]]` and the `[polling]` defaults, as the
//! poller takes them, and their validation (every problem at once, with its path).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::planner::{self, Limits};
use super::profile::Profile;
use crate::diag::{check_name, duration_field, int_field, or_none, parse_duration, Diagnostics, Mode};

/// What a polling interval may be: no bus answers within less than a millisecond (a
/// shorter one would only mean "as fast as it goes", which 1 ms already says); longer
/// than a day is not polling.
const INTERVAL_RANGE: std::ops::RangeInclusive<Duration> = Duration::from_millis(1)..=Duration::from_secs(86_400);
/// The longest silence kept between two requests on a serial line.
const GAP_MAX: Duration = Duration::from_secs(10);

/// The default polling interval of a device.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

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
    /// tcp: reads in flight at once on each connection (1: no pipelining).
    pub pipeline: Option<i64>,
    pub retries: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    pub name: Option<String>,
    pub bus: Option<String>,
    pub unit: Option<i64>,
    /// A DL/T 645 or CJ/T 188 meter's address (instead of `unit`).
    pub address: Option<String>,
    pub profile: Option<String>,
    pub zone: Option<String>,
    pub interval: Option<String>,
    pub max_registers: Option<i64>,
    pub max_bits: Option<i64>,
    pub max_hole: Option<i64>,
    pub retries: Option<i64>,
    pub enabled: Option<bool>,
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

impl std::fmt::Display for Transport {
    /// Where the bus goes: `127.0.0.1:5020`, `/dev/ttyUSB0`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Tcp { address } | Transport::RtuOverTcp { address, .. } => f.write_str(address),
            Transport::Rtu { device, .. } => write!(f, "{}", device.display()),
        }
    }
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
    /// Connections, each with its own requests in flight (TCP only; serial lines are
    /// always 1).
    pub concurrency: usize,
    /// Reads in flight at once on one connection, matched by transaction id (Modbus TCP
    /// only; 1 everywhere else, and where a gap is set).
    pub pipeline: usize,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub name: Arc<str>,
    pub bus: Arc<str>,
    /// The Modbus unit id (0 for a meter, which has `meter` instead).
    pub unit: u8,
    /// A DL/T 645 or CJ/T 188 meter's address; `None` for a Modbus device.
    pub meter: Option<super::meter_config::MeterAddress>,
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
        if self.meter.is_some() {
            return Vec::new(); // a meter is read by identifier, not by register
        }
        planner::plan(&self.profile.points, self.limits)
    }
}

/// `[polling]`: what a device has unless it says otherwise.
pub struct PollingDefaults {
    interval: Duration,
    retries: i64,
    backoff_max: Duration,
    max_hole: i64,
}

pub fn polling(raw_polling: &RawPolling, diags: &mut Diagnostics) -> PollingDefaults {
    let default_interval =
        duration_field(&raw_polling.interval, DEFAULT_INTERVAL, INTERVAL_RANGE, "polling.interval", diags);
    let default_retries =
        int_field(raw_polling.retries, 1, 0..=10, "polling.retries", "extra attempts per request", diags);
    let backoff_max = duration_field(
        &raw_polling.backoff_max,
        Duration::from_secs(300),
        Duration::from_millis(100)..=Duration::from_secs(86_400),
        "polling.backoff_max",
        diags,
    );
    let default_hole =
        int_field(raw_polling.max_hole, 8, 0..=124, "polling.max_hole", "unused registers a read may span", diags);

    PollingDefaults { interval: default_interval, retries: default_retries, backoff_max, max_hole: default_hole }
}

/// Buses, and where each name was first defined.
pub fn buses(raw_buses: &[(usize, RawBus)], mode: Mode, diags: &mut Diagnostics) -> (Vec<Bus>, HashMap<String, usize>) {
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
        let timeout = duration_field(
            &rb.timeout,
            Duration::from_secs(1),
            Duration::from_millis(10)..=Duration::from_secs(60),
            &format!("{path}.timeout"),
            diags,
        );
        let gap_default =
            if matches!(transport, Some(Transport::Tcp { .. })) { Duration::ZERO } else { Duration::from_millis(5) };
        let gap = match &rb.gap {
            None => gap_default,
            Some(s) => match parse_duration(s) {
                Ok(d) if d <= GAP_MAX => d,
                Ok(_) => {
                    diags.error(
                        format!("{path}.gap"),
                        format!("`{s}` is outside 0s..={}", humantime::format_duration(GAP_MAX)),
                    );
                    gap_default
                }
                Err(e) => {
                    diags.error(format!("{path}.gap"), e.0);
                    gap_default
                }
            },
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
        let pipeline =
            int_field(rb.pipeline, 8, 1..=64, &format!("{path}.pipeline"), "reads in flight per connection", diags)
                as usize;
        if rb.pipeline.is_some_and(|p| p > 1) && transport.as_ref().is_some_and(|t| !matches!(t, Transport::Tcp { .. }))
        {
            diags.warning(
                format!("{path}.pipeline"),
                "only Modbus TCP matches answers to requests by transaction id; this bus reads one at a time",
            );
        }
        if rb.retries.is_some() {
            diags.error(format!("{path}.retries"), "retries are set per device or in [polling]");
        }
        let duplicate = name.as_ref().is_some_and(|n| bus_index.get(n) != Some(i));
        if let (Some(name), Some(transport), false) = (name, transport, duplicate) {
            let concurrency = if transport.is_half_duplex() { 1 } else { concurrency };
            // a gap is silence between requests: it cannot be kept with several in flight
            let pipeline = if matches!(transport, Transport::Tcp { .. }) && gap.is_zero() { pipeline } else { 1 };
            buses.push(Bus { name: name.into(), transport, timeout, gap, concurrency, pipeline });
        }
    }

    (buses, bus_index)
}

/// How much one request to a device may read: registers and bits per read (Modbus allows
/// 125 and 2000), and how many unused registers a read may span.
fn request_limits(rd: &RawDevice, path: &str, default_hole: i64, diags: &mut Diagnostics) -> Limits {
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
    Limits { max_registers, max_bits, max_hole }
}

/// The bus a device names: `None` (reported) when it names none or an unknown one, and
/// when its bus was declared with errors of its own.
fn bus_of(
    rd: &RawDevice,
    path: &str,
    buses: &[Bus],
    bus_index: &HashMap<String, usize>,
    diags: &mut Diagnostics,
) -> Option<Bus> {
    match rd.bus.as_deref() {
        None => {
            diags.error(format!("{path}.bus"), "missing: the bus the device is on");
            None
        }
        Some(b) => match buses.iter().find(|x| &*x.name == b) {
            Some(bus) => Some(bus.clone()),
            None if bus_index.contains_key(b) => None, // declared, with its own errors
            None => {
                let known: Vec<&str> = buses.iter().map(|b| &*b.name).collect();
                diags.error(format!("{path}.bus"), format!("unknown bus `{b}`; defined buses: {}", or_none(&known)));
                None
            }
        },
    }
}

/// The profile a device names: `None` (reported) when it names none or an unknown one,
/// and when its own profile has errors of its own.
fn profile_of(
    rd: &RawDevice,
    path: &str,
    profiles: &BTreeMap<String, Arc<Profile>>,
    own_profiles: &HashMap<String, usize>,
    diags: &mut Diagnostics,
) -> Option<Arc<Profile>> {
    match rd.profile.as_deref() {
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
    }
}

pub fn devices(
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
    let mut meters = super::meter_config::OnBus::new();
    let mut warned = super::meter_config::Warned::new();
    for (i, rd) in raw_devices {
        let path = format!("devices[{i}]");
        let name = check_name(&rd.name, &path, "device", diags);
        if let Some(n) = &name {
            if let Some(first) = device_names.insert(n.clone(), *i) {
                diags.error(format!("{path}.name"), format!("device `{n}` is already defined at devices[{first}]"));
            }
        }
        let bus = bus_of(rd, &path, buses, bus_index, diags);
        let profile = profile_of(rd, &path, profiles, own_profiles, diags);
        let meter = match &profile {
            Some(p) => super::meter_config::meter_address(rd, p, bus.as_ref(), &path, &mut warned, diags),
            None => super::meter_config::Addressing::Modbus,
        };
        super::meter_config::once_on_its_bus(&meter, rd, (*i, &name), &mut meters, diags);
        let is_meter = profile.as_ref().is_some_and(|p| p.protocol != super::profile::Protocol::Modbus);
        let unit = match rd.unit {
            _ if is_meter => Some(0),
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
        if let (Some(b), Some(u @ 1..), Some(n)) = (rd.bus.as_deref(), unit, &name) {
            if let Some((first, other)) = units.insert((b.to_string(), u), (*i, n.clone())) {
                diags.error(
                    format!("{path}.unit"),
                    format!("unit id {u} on bus `{b}` is already used by `{other}` (devices[{first}])"),
                );
            }
        }
        let zone = match rd.zone.as_deref() {
            Some(z) => check_name(&Some(z.to_string()), &format!("{path}.zone"), "zone", diags).map(|z| z.to_string()),
            None => Some("unzoned".to_string()),
        };
        let interval =
            duration_field(&rd.interval, default_interval, INTERVAL_RANGE, &format!("{path}.interval"), diags);
        let limits = request_limits(rd, &path, default_hole, diags);
        let max_registers = limits.max_registers;
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
        if let (Some(name), Some(bus), Some(unit), Some(profile), Some(zone), Some(meter)) =
            (name, bus, unit, profile, zone, meter.valid())
        {
            devices.push(Device {
                name: name.into(),
                bus: bus.name.clone(),
                unit,
                meter,
                profile,
                zone: zone.into(),
                interval,
                limits,
                retries,
                backoff_max,
            });
        }
    }
    devices
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
                diags.of_machine(mode, format!("{path}.device"), msg);
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

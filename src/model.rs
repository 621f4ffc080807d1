//! The data model every later stage consumes: what a reading is and how good it is.
//!
//! A [`Reading`] is one decoded point of one device at one instant. It always carries its
//! context (site, zone, device, point, quantity, unit) so that a consumer never has to
//! look the configuration up again, and a [`Quality`] that says whether the value can be
//! trusted and, if not, why. A bad reading is still a reading: the gap it leaves is data
//! for the ledger (estimated shares) and for alerts (a meter that stopped answering).

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a point measures. Later stages (ledger, alerts, InfluxDB measurement names) key
/// on this, never on point names, which are the profile author's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// Water totalizer (cumulative volume, m³). Consumption is taken from deltas of this.
    WaterVolume,
    /// Instantaneous water flow rate (m³/h).
    WaterFlow,
    /// Imported active energy totalizer (kWh).
    EnergyImport,
    /// Exported active energy totalizer (kWh).
    EnergyExport,
    /// Active power (W or kW, per the profile's unit).
    ActivePower,
    Voltage,
    Current,
    PowerFactor,
    Frequency,
    /// Line pressure (MPa, bar or kPa, per the profile's unit).
    Pressure,
    /// Valve position feedback, 0–100 %.
    ValvePosition,
    /// Commanded valve position, 0–100 %.
    ValveCommand,
    /// Open limit switch (1 = at the open end stop).
    ValveOpen,
    /// Closed limit switch (1 = at the closed end stop).
    ValveClosed,
    /// Analog loop current in mA (diagnostics of 4–20 mA transmitters).
    LoopCurrent,
    Temperature,
    /// Free (residual) chlorine, mg/L.
    FreeChlorine,
    /// Turbidity, NTU.
    Turbidity,
    /// pH (dimensionless).
    Ph,
    /// Electrical conductivity, µS/cm.
    Conductivity,
    /// Anything device-specific: error words, signal quality, unit codes.
    Status,
    /// A meter's own clock less the gateway's when it answered, in seconds (DL/T 645 and
    /// CJ/T 188 meters keep time for their tariff periods and settlement days).
    ClockOffset,
}

impl Quantity {
    pub const ALL: [Quantity; 22] = [
        Quantity::WaterVolume,
        Quantity::WaterFlow,
        Quantity::EnergyImport,
        Quantity::EnergyExport,
        Quantity::ActivePower,
        Quantity::Voltage,
        Quantity::Current,
        Quantity::PowerFactor,
        Quantity::Frequency,
        Quantity::Pressure,
        Quantity::ValvePosition,
        Quantity::ValveCommand,
        Quantity::ValveOpen,
        Quantity::ValveClosed,
        Quantity::LoopCurrent,
        Quantity::Temperature,
        Quantity::FreeChlorine,
        Quantity::Turbidity,
        Quantity::Ph,
        Quantity::Conductivity,
        Quantity::Status,
        Quantity::ClockOffset,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Quantity::WaterVolume => "water_volume",
            Quantity::WaterFlow => "water_flow",
            Quantity::EnergyImport => "energy_import",
            Quantity::EnergyExport => "energy_export",
            Quantity::ActivePower => "active_power",
            Quantity::Voltage => "voltage",
            Quantity::Current => "current",
            Quantity::PowerFactor => "power_factor",
            Quantity::Frequency => "frequency",
            Quantity::Pressure => "pressure",
            Quantity::ValvePosition => "valve_position",
            Quantity::ValveCommand => "valve_command",
            Quantity::ValveOpen => "valve_open",
            Quantity::ValveClosed => "valve_closed",
            Quantity::LoopCurrent => "loop_current",
            Quantity::Temperature => "temperature",
            Quantity::FreeChlorine => "free_chlorine",
            Quantity::Turbidity => "turbidity",
            Quantity::Ph => "ph",
            Quantity::Conductivity => "conductivity",
            Quantity::Status => "status",
            Quantity::ClockOffset => "clock_offset",
        }
    }

    pub fn parse(s: &str) -> Option<Quantity> {
        Quantity::ALL.into_iter().find(|q| q.as_str() == s)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a reading's value can be trusted, and if not, why.
///
/// Transport failures (`Timeout`, `Transport`) and the device's own refusals
/// (`Exception`) are kept apart: the first is the line or the network, the second is the
/// device answering that it cannot serve the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quality {
    Good,
    /// No answer within the bus timeout (after the configured retries).
    Timeout,
    /// The connection failed, closed, or the answer was not a valid Modbus frame.
    Transport,
    /// The device answered with a Modbus exception code.
    Exception(u8),
    /// The registers could not be decoded into a value (e.g. a multiplier that is not a
    /// small integer).
    DecodeError,
    /// The decoded value is NaN or infinite.
    NotFinite,
    /// The value is outside the point's plausible range (or a 4–20 mA loop outside its
    /// live zone: a broken wire or a failed transmitter). The value is kept for diagnosis.
    OutOfRange,
    /// Stamped by a wall clock that had stepped back behind readings already committed
    /// (see `clock`): kept and delivered, not used by the ledger or the alert rules.
    ClockBehind,
}

impl Quality {
    pub fn is_good(&self) -> bool {
        matches!(self, Quality::Good)
    }

    /// The stable code used in JSON, MQTT and InfluxDB: `good`, `timeout`, `transport`,
    /// `exception_02`, `decode_error`, `not_finite`, `out_of_range`, `clock_behind`.
    /// Borrowed for every code but an exception's: no allocation per reading on the hot
    /// path.
    pub fn code(&self) -> std::borrow::Cow<'static, str> {
        use std::borrow::Cow;
        match self {
            Quality::Good => Cow::Borrowed("good"),
            Quality::Timeout => Cow::Borrowed("timeout"),
            Quality::Transport => Cow::Borrowed("transport"),
            Quality::Exception(c) => Cow::Owned(format!("exception_{c:02x}")),
            Quality::DecodeError => Cow::Borrowed("decode_error"),
            Quality::NotFinite => Cow::Borrowed("not_finite"),
            Quality::OutOfRange => Cow::Borrowed("out_of_range"),
            Quality::ClockBehind => Cow::Borrowed("clock_behind"),
        }
    }
}

impl Quality {
    /// Parses [`Quality::code`] back (as stored in the local store).
    pub fn from_code(code: &str) -> Option<Quality> {
        Some(match code {
            "good" => Quality::Good,
            "timeout" => Quality::Timeout,
            "transport" => Quality::Transport,
            "decode_error" => Quality::DecodeError,
            "not_finite" => Quality::NotFinite,
            "out_of_range" => Quality::OutOfRange,
            "clock_behind" => Quality::ClockBehind,
            other => Quality::Exception(u8::from_str_radix(other.strip_prefix("exception_")?, 16).ok()?),
        })
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quality::Exception(c) => write!(f, "exception 0x{c:02x} ({})", exception_name(*c)),
            other => f.write_str(&other.code()),
        }
    }
}

impl Serialize for Quality {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.code())
    }
}

/// The name of a Modbus exception code, as the specification calls it.
pub fn exception_name(code: u8) -> &'static str {
    match code {
        0x01 => "illegal function",
        0x02 => "illegal data address",
        0x03 => "illegal data value",
        0x04 => "server device failure",
        0x05 => "acknowledge",
        0x06 => "server device busy",
        0x08 => "memory parity error",
        0x0A => "gateway path unavailable",
        0x0B => "gateway target device failed to respond",
        _ => "unknown exception",
    }
}

/// One decoded point of one device at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct Reading {
    /// When the answer carrying this value arrived (UTC).
    pub ts: DateTime<Utc>,
    pub site: Arc<str>,
    pub zone: Arc<str>,
    pub device: Arc<str>,
    pub point: Arc<str>,
    pub quantity: Quantity,
    /// `None` when there is no value to report (no answer, NaN); present for
    /// `OutOfRange`, so the odd value can be seen.
    pub value: Option<f64>,
    pub unit: Arc<str>,
    pub quality: Quality,
}

/// The alert rules. Stored, published and configured by their snake_case names
/// ([`AlertRule::as_str`]); an unknown name is an error wherever it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertRule {
    NightFlow,
    /// A leak seen in a zone's night pressure: a point's head falling below what the
    /// zone's inflow predicts.
    NightPressure,
    Burst,
    ZoneImbalance,
    ContinuousFlow,
    ConsumptionAnomaly,
    PressureLow,
    PressureHigh,
    DeviceSilent,
    TotalizerStuck,
    ValvePosition,
    ValveSwitches,
    /// A water-quality parameter outside its limits (GB 5749-2022 by default).
    WaterQuality,
    /// A phase current above the rated current.
    Overcurrent,
    /// A phase voltage outside the tolerance around the nominal voltage.
    VoltageRange,
    /// A phase without voltage while the others have it.
    PhaseLoss,
    /// Phase voltages that differ from their mean by more than the allowed share.
    PhaseImbalance,
    /// Power factor below its minimum, under load, for an hour or more.
    LowPowerFactor,
    /// A zone without supply: no pressure (or no inflow) during its supply hours.
    SupplyInterruption,
    /// The store failed its integrity check at start and was replaced by a fresh one.
    StoreReplaced,
    /// A meter's own clock off the gateway's by more than the tolerance: its tariff
    /// periods and settlement day are booked at the wrong times.
    MeterClock,
    /// A valve of the register not exercised (recorded, or seen moving) within
    /// `[assets] exercise_every`.
    ValveExercise,
}

impl AlertRule {
    pub const ALL: [AlertRule; 22] = [
        AlertRule::NightFlow,
        AlertRule::NightPressure,
        AlertRule::Burst,
        AlertRule::ZoneImbalance,
        AlertRule::ContinuousFlow,
        AlertRule::ConsumptionAnomaly,
        AlertRule::PressureLow,
        AlertRule::PressureHigh,
        AlertRule::DeviceSilent,
        AlertRule::TotalizerStuck,
        AlertRule::ValvePosition,
        AlertRule::ValveSwitches,
        AlertRule::WaterQuality,
        AlertRule::Overcurrent,
        AlertRule::VoltageRange,
        AlertRule::PhaseLoss,
        AlertRule::PhaseImbalance,
        AlertRule::LowPowerFactor,
        AlertRule::SupplyInterruption,
        AlertRule::StoreReplaced,
        AlertRule::MeterClock,
        AlertRule::ValveExercise,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertRule::NightFlow => "night_flow",
            AlertRule::NightPressure => "night_pressure",
            AlertRule::Burst => "burst",
            AlertRule::ZoneImbalance => "zone_imbalance",
            AlertRule::ContinuousFlow => "continuous_flow",
            AlertRule::ConsumptionAnomaly => "consumption_anomaly",
            AlertRule::PressureLow => "pressure_low",
            AlertRule::PressureHigh => "pressure_high",
            AlertRule::DeviceSilent => "device_silent",
            AlertRule::TotalizerStuck => "totalizer_stuck",
            AlertRule::ValvePosition => "valve_position",
            AlertRule::ValveSwitches => "valve_switches",
            AlertRule::WaterQuality => "water_quality",
            AlertRule::Overcurrent => "overcurrent",
            AlertRule::VoltageRange => "voltage_range",
            AlertRule::PhaseLoss => "phase_loss",
            AlertRule::PhaseImbalance => "phase_imbalance",
            AlertRule::LowPowerFactor => "low_power_factor",
            AlertRule::SupplyInterruption => "supply_interruption",
            AlertRule::StoreReplaced => "store_replaced",
            AlertRule::MeterClock => "meter_clock",
            AlertRule::ValveExercise => "valve_exercise",
        }
    }

    pub fn parse(s: &str) -> Option<AlertRule> {
        AlertRule::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether an episode of this rule counts as a safety incident against the
    /// zero-growth target: bursts, over-pressure, water out of the drinking-water limits,
    /// electrical overload and a lost phase. Power-quality rules (voltage range,
    /// imbalance, power factor) and metering faults are alerts, not incidents.
    pub fn is_safety_incident(self) -> bool {
        matches!(
            self,
            AlertRule::Burst
                | AlertRule::PressureHigh
                | AlertRule::WaterQuality
                | AlertRule::Overcurrent
                | AlertRule::PhaseLoss
        )
    }
}

impl fmt::Display for AlertRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where local day `d` starts: its midnight, or 01:00 where a clock change skips midnight.
pub fn local_midnight(d: chrono::NaiveDate, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .earliest()
        .or_else(|| tz.from_local_datetime(&d.and_hms_opt(1, 0, 0)?).earliest())
        .map(|t| t.with_timezone(&Utc))
}

/// A calendar month of the site (`YYYY-MM`), the unit of the ledger. Years 2000–2200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    pub fn new(year: i32, month: u32) -> Option<Month> {
        ((1..=12).contains(&month) && (2000..=2200).contains(&year)).then_some(Month { year, month })
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || !(1..=2).contains(&m.len()) {
            return None;
        }
        Month::new(y.parse().ok()?, m.parse().ok()?)
    }

    /// The month a time falls in, in time zone `tz`.
    pub fn containing(t: DateTime<Utc>, tz: chrono_tz::Tz) -> Option<Month> {
        use chrono::Datelike;
        let local = t.with_timezone(&tz);
        Month::new(local.year(), local.month())
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    /// `YYYY-MM`.
    pub fn key(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    pub fn next(self) -> Option<Month> {
        if self.month == 12 {
            Month::new(self.year + 1, 1)
        } else {
            Month::new(self.year, self.month + 1)
        }
    }

    pub fn prev(self) -> Option<Month> {
        if self.month == 1 {
            Month::new(self.year - 1, 12)
        } else {
            Month::new(self.year, self.month - 1)
        }
    }

    /// The month `n` months before this one.
    pub fn back(self, n: u32) -> Option<Month> {
        (0..n).try_fold(self, |m, _| m.prev())
    }

    /// Day `dom` of the month.
    pub fn day(self, dom: u32) -> Option<chrono::NaiveDate> {
        chrono::NaiveDate::from_ymd_opt(self.year, self.month, dom)
    }

    /// The same month a year earlier (the baseline year's).
    pub fn year_before(self) -> Option<Month> {
        Month::new(self.year - 1, self.month)
    }

    /// The UTC bounds of the month in `tz`. Where a clock change skips local midnight,
    /// the month starts at the first local time that exists (01:00).
    /// The month's local days with where each starts and ends, in UTC.
    pub fn local_days(
        self,
        tz: chrono_tz::Tz,
    ) -> impl Iterator<Item = (chrono::NaiveDate, DateTime<Utc>, DateTime<Utc>)> {
        let month = self.month;
        std::iter::successors(self.day(1), |d| d.succ_opt())
            .take_while(move |d| chrono::Datelike::month(d) == month)
            .map_while(move |d| Some((d, local_midnight(d, tz)?, local_midnight(d.succ_opt()?, tz)?)))
    }

    pub fn bounds(self, tz: chrono_tz::Tz) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        use chrono::NaiveDate;
        let first = NaiveDate::from_ymd_opt(self.year, self.month, 1)?;
        let next = if self.month == 12 {
            NaiveDate::from_ymd_opt(self.year + 1, 1, 1)?
        } else {
            NaiveDate::from_ymd_opt(self.year, self.month + 1, 1)?
        };
        Some((local_midnight(first, tz)?, local_midnight(next, tz)?))
    }

    /// The months from this one on.
    pub fn iter_from(self) -> impl Iterator<Item = Month> {
        std::iter::successors(Some(self), |m| m.next())
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key())
    }
}

/// A meter of the ledger: a device's totalizer point (`device.point`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MeterId {
    pub device: String,
    pub point: String,
}

impl MeterId {
    pub fn new(device: &str, point: &str) -> MeterId {
        MeterId { device: device.to_string(), point: point.to_string() }
    }

    /// `device.point`, the key of frozen records.
    pub fn key(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for MeterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.device, self.point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_months_local_days_start_at_local_midnight() {
        let days: Vec<_> = Month::new(2026, 3).unwrap().local_days(chrono_tz::Asia::Shanghai).collect();
        assert_eq!(days.len(), 31);
        assert_eq!(days[0].1.to_rfc3339(), "2026-02-28T16:00:00+00:00");
        assert_eq!(days[30].2.to_rfc3339(), "2026-03-31T16:00:00+00:00");
        // a clock change that skips midnight (Santiago, 2026-09-06): that day starts at 01:00
        let chile: Vec<_> = Month::new(2026, 9).unwrap().local_days(chrono_tz::America::Santiago).collect();
        assert_eq!(chile.len(), 30);
        assert_eq!(chile[5].1.to_rfc3339(), "2026-09-06T04:00:00+00:00");
    }
}

//! Fault scenarios for the simulator, from the command line (`--scenario
//! leak:north:2.5@23:00`) or a TOML file of `[[scenario]]` tables.
//!
//! | form                              | effect                                          |
//! |-----------------------------------|-------------------------------------------------|
//! | `leak:ZONE:M3H[@WHEN]`            | extra flow into a zone (a leak, or a burst)     |
//! | `stuck:DEVICE[@WHEN]`             | the device's totalizer stops counting           |
//! | `silent:DEVICE[@WHEN]`            | the device stops answering                      |
//! | `valve-stuck:DEVICE:PCT[@WHEN]`   | the valve stays at PCT % whatever its command   |
//! | `outage:ZONE[@WHEN]`              | the zone loses supply (no flow, no pressure)    |
//! | `overpressure:ZONE:MPA[@WHEN]`    | the zone's pressure rises to MPA                |
//! | `chlorine-fail[@WHEN]`            | chlorine dosing at the plant stops             |
//! | `turbidity:NTU[@WHEN]`            | the plant's outlet turbidity rises to NTU       |
//! | `overload:DEVICE:AMPS[@WHEN]`     | an electricity meter's phase L1 carries AMPS    |
//!
//! In a scenario file, `until` (a WHEN) ends a scenario: a burst repaired, supply back.
//!
//! WHEN is `+10m` (after the simulation starts), `23:00` (the next such local time at or
//! after the start) or an RFC 3339 instant; without it, from the start.

use std::fmt;
use std::path::Path;

use super::SimError;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq)]
pub enum ScenarioKind {
    Leak {
        zone: String,
        rate: f64,
    },
    StuckTotalizer {
        device: String,
    },
    Silent {
        device: String,
    },
    ValveStuck {
        device: String,
        position: f64,
    },
    /// The meter is swapped at `start`: its register restarts at `new_initial` (the demo's
    /// history records the swap as a correction, as a utilities office would).
    MeterReplaced {
        device: String,
        new_initial: f64,
    },
    /// The zone's supply is cut upstream of its pressure point.
    Outage {
        zone: String,
    },
    /// The zone's pressure rises to `mpa` (a pressure-reducing valve failed open).
    Overpressure {
        zone: String,
        mpa: f64,
    },
    /// Chlorine dosing at the plant stops: free chlorine decays towards 0.05 mg/L.
    ChlorineFail,
    /// Outlet turbidity rises to `ntu`.
    Turbidity {
        ntu: f64,
    },
    /// Phase L1 of an electricity meter carries `amps`.
    Overload {
        device: String,
        amps: f64,
    },
}

impl ScenarioKind {
    pub fn device(&self) -> Option<&str> {
        match self {
            ScenarioKind::Leak { .. }
            | ScenarioKind::Outage { .. }
            | ScenarioKind::Overpressure { .. }
            | ScenarioKind::ChlorineFail
            | ScenarioKind::Turbidity { .. } => None,
            ScenarioKind::Overload { device, .. }
            | ScenarioKind::StuckTotalizer { device }
            | ScenarioKind::Silent { device }
            | ScenarioKind::ValveStuck { device, .. }
            | ScenarioKind::MeterReplaced { device, .. } => Some(device),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub start: DateTime<Utc>,
    /// When it stops (a valve freed, a burst repaired); `None`: it goes on.
    pub end: Option<DateTime<Utc>>,
    pub kind: ScenarioKind,
}

impl Scenario {
    pub fn from(start: DateTime<Utc>, kind: ScenarioKind) -> Scenario {
        Scenario { start, end: None, kind }
    }

    pub fn between(start: DateTime<Utc>, end: DateTime<Utc>, kind: ScenarioKind) -> Scenario {
        Scenario { start, end: Some(end), kind }
    }

    pub fn active_at(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && self.end.is_none_or(|e| t < e)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ScenarioKind::Leak { zone, rate } => write!(f, "leak of {rate} m3/h in zone {zone}")?,
            ScenarioKind::StuckTotalizer { device } => write!(f, "stuck totalizer on {device}")?,
            ScenarioKind::Silent { device } => write!(f, "{device} stops answering")?,
            ScenarioKind::ValveStuck { device, position } => write!(f, "{device} stuck at {position} %")?,
            ScenarioKind::MeterReplaced { device, new_initial } => {
                write!(f, "{device} replaced by a meter reading {new_initial}")?
            }
            ScenarioKind::Outage { zone } => write!(f, "supply cut to zone {zone}")?,
            ScenarioKind::Overpressure { zone, mpa } => write!(f, "pressure of {mpa} MPa in zone {zone}")?,
            ScenarioKind::ChlorineFail => write!(f, "chlorine dosing fails")?,
            ScenarioKind::Turbidity { ntu } => write!(f, "turbidity of {ntu} NTU at the plant")?,
            ScenarioKind::Overload { device, amps } => write!(f, "{device} L1 carries {amps} A")?,
        }
        write!(f, " from {}", self.start.to_rfc3339())?;
        match self.end {
            Some(e) => write!(f, " to {}", e.to_rfc3339()),
            None => Ok(()),
        }
    }
}

/// Resolves WHEN against the simulation's start and time zone.
pub fn parse_when(when: &str, start: DateTime<Utc>, tz: Tz) -> Result<DateTime<Utc>, SimError> {
    if let Some(rel) = when.strip_prefix('+') {
        let d = humantime::parse_duration(rel).map_err(|e| format!("`{when}`: {e}"))?;
        let d = chrono::Duration::from_std(d).map_err(|e| format!("`{when}`: {e}"))?;
        return Ok(start + d);
    }
    if let Ok(t) = NaiveTime::parse_from_str(when, "%H:%M") {
        let local = tz.from_utc_datetime(&start.naive_utc());
        let mut day = local.date_naive();
        for _ in 0..3 {
            if let Some(at) = tz.from_local_datetime(&day.and_time(t)).earliest() {
                let at = at.with_timezone(&Utc);
                if at >= start {
                    return Ok(at);
                }
            }
            day = day.succ_opt().ok_or_else(|| SimError(format!("`{when}`: date out of range")))?;
        }
        return Err(format!("`{when}`: no such local time").into());
    }
    DateTime::parse_from_rfc3339(when)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| SimError(format!("`{when}` is not +DURATION, HH:MM or an RFC 3339 time")))
}

/// Parses one `--scenario` argument.
pub fn parse(spec: &str, start: DateTime<Utc>, tz: Tz) -> Result<Scenario, SimError> {
    let (body, when) = match spec.split_once('@') {
        Some((b, w)) => (b, Some(w)),
        None => (spec, None),
    };
    let at = match when {
        Some(w) => parse_when(w, start, tz)?,
        None => start,
    };
    let parts: Vec<&str> = body.split(':').collect();
    let number = |s: &str, what: &str| -> Result<f64, SimError> {
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| SimError(format!("scenario `{spec}`: {what} `{s}` is not a non-negative number")))
    };
    let kind = match parts.as_slice() {
        ["leak", zone, rate] => ScenarioKind::Leak { zone: zone.to_string(), rate: number(rate, "rate")? },
        ["stuck", device] => ScenarioKind::StuckTotalizer { device: device.to_string() },
        ["silent", device] => ScenarioKind::Silent { device: device.to_string() },
        ["valve-stuck", device, pos] => {
            let position = number(pos, "position")?;
            if position > 100.0 {
                return Err(format!("scenario `{spec}`: a valve position is 0–100 %").into());
            }
            ScenarioKind::ValveStuck { device: device.to_string(), position }
        }
        ["outage", zone] => ScenarioKind::Outage { zone: zone.to_string() },
        ["overpressure", zone, mpa] => ScenarioKind::Overpressure { zone: zone.to_string(), mpa: number(mpa, "pressure")? },
        ["chlorine-fail"] => ScenarioKind::ChlorineFail,
        ["turbidity", ntu] => ScenarioKind::Turbidity { ntu: number(ntu, "turbidity")? },
        ["overload", device, amps] => ScenarioKind::Overload { device: device.to_string(), amps: number(amps, "current")? },
        _ => return Err(format!("scenario `{spec}` is not one of leak:ZONE:M3H, stuck:DEVICE, silent:DEVICE, valve-stuck:DEVICE:PCT, outage:ZONE, overpressure:ZONE:MPA, chlorine-fail, turbidity:NTU, overload:DEVICE:AMPS (each with an optional @WHEN)").into()),
    };
    Ok(Scenario::from(at, kind))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    scenario: Vec<RawScenario>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    kind: String,
    zone: Option<String>,
    device: Option<String>,
    rate: Option<f64>,
    position: Option<f64>,
    /// The scenario's figure for the kinds that have one other than rate and position
    /// (MPa, NTU, A).
    value: Option<f64>,
    start: Option<String>,
    until: Option<String>,
}

/// Reads a scenario file: `[[scenario]]` tables with kind, zone/device, rate/position and
/// start (WHEN). Every bad entry is reported.
pub fn load_file(path: &Path, start: DateTime<Utc>, tz: Tz) -> Result<Vec<Scenario>, SimError> {
    let raw: RawFile = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, s) in raw.scenario.iter().enumerate() {
        let target = s.zone.as_deref().or(s.device.as_deref()).unwrap_or("?");
        let value = s.rate.or(s.position).or(s.value).map(|v| format!(":{v}")).unwrap_or_default();
        let when = s.start.as_deref().map(|w| format!("@{w}")).unwrap_or_default();
        let spec = match s.kind.as_str() {
            "chlorine-fail" => format!("chlorine-fail{when}"),
            "turbidity" => format!("turbidity{value}{when}"),
            _ => format!("{}:{target}{value}{when}", s.kind),
        };
        let parsed = parse(&spec, start, tz).and_then(|mut sc| {
            if let Some(u) = &s.until {
                let end = parse_when(u, start, tz)?;
                if end <= sc.start {
                    return Err(format!("`until` {u} is not after the start").into());
                }
                sc.end = Some(end);
            }
            Ok(sc)
        });
        match parsed {
            Ok(sc) => out.push(sc),
            Err(e) => errors.push(format!("{}: scenario[{i}]: {e}", path.display())),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("\n").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_each_form() {
        let start = t("2026-11-25T10:00:00Z"); // 18:00 in Shanghai
        let tz = chrono_tz::Asia::Shanghai;
        let s = parse("leak:north:2.5@23:00", start, tz).unwrap();
        assert_eq!(s.kind, ScenarioKind::Leak { zone: "north".into(), rate: 2.5 });
        assert_eq!(s.start, t("2026-11-25T15:00:00Z"));
        // 09:00 local has passed today: tomorrow's
        assert_eq!(parse("silent:pump-1@09:00", start, tz).unwrap().start, t("2026-11-26T01:00:00Z"));
        assert_eq!(parse("stuck:bldg-dorm-1@+90m", start, tz).unwrap().start, t("2026-11-25T11:30:00Z"));
        assert_eq!(
            parse("valve-stuck:valve-east:35", start, tz).unwrap(),
            Scenario::from(start, ScenarioKind::ValveStuck { device: "valve-east".into(), position: 35.0 })
        );
        assert_eq!(parse("silent:x@2026-12-01T00:00:00+08:00", start, tz).unwrap().start, t("2026-11-30T16:00:00Z"));
        assert_eq!(parse("chlorine-fail@+1h", start, tz).unwrap().kind, ScenarioKind::ChlorineFail);
        assert_eq!(parse("turbidity:3.5", start, tz).unwrap().kind, ScenarioKind::Turbidity { ntu: 3.5 });
        assert_eq!(parse("outage:east", start, tz).unwrap().kind, ScenarioKind::Outage { zone: "east".into() });
        assert_eq!(
            parse("overpressure:south:0.75", start, tz).unwrap().kind,
            ScenarioKind::Overpressure { zone: "south".into(), mpa: 0.75 }
        );
        assert_eq!(
            parse("overload:pump-1:130", start, tz).unwrap().kind,
            ScenarioKind::Overload { device: "pump-1".into(), amps: 130.0 }
        );
    }

    #[test]
    fn bad_specs_say_why() {
        let start = t("2026-11-25T10:00:00Z");
        let tz = chrono_tz::UTC;
        assert!(parse("leak:north", start, tz).unwrap_err().0.contains("is not one of"));
        assert!(parse("leak:north:-1", start, tz).unwrap_err().0.contains("not a non-negative number"));
        assert!(parse("valve-stuck:v:140", start, tz).unwrap_err().0.contains("0–100"));
        assert!(parse("silent:x@tomorrow", start, tz).unwrap_err().0.contains("is not +DURATION"));
    }
}

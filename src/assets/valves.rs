//! The register's valves (`[[assets.valves]]`): instrumented ones (a `device` whose
//! readings give the valve's life, see [`crate::alerts::valve_life`]) and manual ones,
//! whose exercise and repairs are recorded by hand (`pumphouse assets record`, kept in
//! the store as an audit trail). Pure: the register and the records in, each valve's
//! state out.
//!
//! ```toml
//! [[assets.valves]]
//! id = "V-S2"             # the valve's name on the drawings and its tag
//! zone = "south"          # a water zone of [[zones]]
//! kind = "gate"           # gate (default), butterfly, ball, check, pressure_reducing
//! diameter_mm = 150
//! installed = 1998
//! device = "valve-south"  # optional: the actuator polled, if it is instrumented
//! ```

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use crate::diag::Diagnostics;
use crate::store::AssetRecord;

/// What kind of valve: the register's word for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValveKind {
    Gate,
    Butterfly,
    Ball,
    Check,
    PressureReducing,
}

impl ValveKind {
    const ALL: [ValveKind; 5] =
        [ValveKind::Gate, ValveKind::Butterfly, ValveKind::Ball, ValveKind::Check, ValveKind::PressureReducing];

    pub fn id(self) -> &'static str {
        match self {
            ValveKind::Gate => "gate",
            ValveKind::Butterfly => "butterfly",
            ValveKind::Ball => "ball",
            ValveKind::Check => "check",
            ValveKind::PressureReducing => "pressure_reducing",
        }
    }

    pub fn label(self, lang: crate::lang::Lang) -> &'static str {
        match self {
            ValveKind::Gate => lang.t("gate valve", "闸阀"),
            ValveKind::Butterfly => lang.t("butterfly valve", "蝶阀"),
            ValveKind::Ball => lang.t("ball valve", "球阀"),
            ValveKind::Check => lang.t("check valve", "止回阀"),
            ValveKind::PressureReducing => lang.t("pressure-reducing valve", "减压阀"),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValve {
    pub id: Option<String>,
    pub zone: Option<String>,
    pub kind: Option<String>,
    pub diameter_mm: Option<i64>,
    pub installed: Option<i64>,
    pub device: Option<String>,
}

/// One valve of the register.
#[derive(Debug, Clone, PartialEq)]
pub struct Valve {
    pub id: String,
    pub zone: String,
    pub kind: ValveKind,
    pub diameter_mm: u32,
    pub installed: i32,
    /// The actuator polled, when the valve is instrumented.
    pub device: Option<String>,
}

/// Validates `[[assets.valves]]`: every error at once. `valve_devices` are the configured
/// devices that read a valve position; `taken` the ids the pipes already use.
pub fn validate(
    raw: &[RawValve],
    water_zones: &[&str],
    valve_devices: &[&str],
    taken: &mut std::collections::BTreeSet<String>,
    diags: &mut Diagnostics,
) -> Vec<Valve> {
    let mut out = Vec::new();
    for (i, v) in raw.iter().enumerate() {
        let path = format!("assets.valves[{i}]");
        let before = diags.items.len();
        let id = v.id.clone().filter(|s| !s.trim().is_empty());
        match &id {
            None => diags.error(format!("{path}.id"), "needs the valve's name (its tag)"),
            Some(x) if !taken.insert(x.clone()) => {
                diags.error(format!("{path}.id"), format!("`{x}` is named twice in the register"))
            }
            _ => {}
        }
        match v.zone.as_deref() {
            None => diags.error(format!("{path}.zone"), "needs the water zone the valve is in"),
            Some(z) if !water_zones.contains(&z) => diags.error(
                format!("{path}.zone"),
                format!("`{z}` is not a water zone of [[zones]] (known: {})", water_zones.join(", ")),
            ),
            _ => {}
        }
        let kind = match v.kind.as_deref() {
            None => Some(ValveKind::Gate),
            Some(k) => ValveKind::ALL.into_iter().find(|x| x.id() == k),
        };
        if kind.is_none() {
            let known: Vec<&str> = ValveKind::ALL.iter().map(|k| k.id()).collect();
            diags.error(format!("{path}.kind"), format!("one of {}", known.join(", ")));
        }
        let diameter = v.diameter_mm.and_then(|d| u32::try_from(d).ok()).filter(|d| (10..=4000).contains(d));
        if diameter.is_none() {
            diags.error(format!("{path}.diameter_mm"), "needs the nominal diameter in mm, 10 to 4000");
        }
        let installed = v.installed.and_then(|y| i32::try_from(y).ok()).filter(|y| (1850..=2200).contains(y));
        if installed.is_none() {
            diags.error(format!("{path}.installed"), "needs the year the valve was installed (1850 to 2200)");
        }
        if let Some(d) = v.device.as_deref().filter(|d| !valve_devices.contains(d)) {
            diags.error(
                format!("{path}.device"),
                format!(
                    "`{d}` is not a configured device that reads a valve position (known: {})",
                    valve_devices.join(", ")
                ),
            );
        }
        if diags.items.len() != before {
            continue;
        }
        if let (Some(id), Some(zone), Some(kind), Some(diameter_mm), Some(installed)) =
            (id, v.zone.clone(), kind, diameter, installed)
        {
            out.push(Valve { id, zone, kind, diameter_mm, installed, device: v.device.clone() });
        }
    }
    out
}

/// What is known of a valve's exercise.
#[derive(Debug, Clone, PartialEq)]
pub struct ValveState {
    /// The last time it was exercised: the later of the last exercise or repair recorded
    /// and, for an instrumented valve, its last movement in the readings.
    pub last_exercised: Option<DateTime<Utc>>,
    /// When the next exercise is due: `exercise_every` after the last one, or after the
    /// start of the year it was installed when none is known.
    pub due: DateTime<Utc>,
    pub last_repair: Option<DateTime<Utc>>,
    /// Records kept for this valve.
    pub records: usize,
}

impl ValveState {
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.due <= now
    }
}

/// A valve's state from its records and, when instrumented, its last movement.
pub fn state(v: &Valve, records: &[AssetRecord], moved: Option<DateTime<Utc>>, every: TimeDelta) -> ValveState {
    let mine: Vec<&AssetRecord> = records.iter().filter(|r| r.asset == v.id).collect();
    // an exercise or a repair: either moved the valve through its stroke
    let recorded = mine.iter().map(|r| r.done).max();
    let last_exercised = recorded.max(moved);
    ValveState {
        last_exercised,
        due: crate::alerts::valve_life::exercise_due_after(last_exercised, v.installed, every),
        last_repair: mine.iter().filter(|r| r.kind == crate::store::AssetWork::Repair).map(|r| r.done).max(),
        records: mine.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AssetWork;

    fn raw(id: &str, zone: &str) -> RawValve {
        RawValve {
            id: Some(id.into()),
            zone: Some(zone.into()),
            kind: None,
            diameter_mm: Some(150),
            installed: Some(1998),
            device: None,
        }
    }

    #[test]
    fn every_error_of_the_valves_at_once() {
        let mut d = Diagnostics::default();
        let mut taken = std::collections::BTreeSet::from(["S-01".to_string()]);
        let bad = [
            raw("S-01", "north"),
            RawValve { kind: Some("sluice".into()), ..raw("V-1", "west") },
            RawValve {
                diameter_mm: Some(5),
                installed: Some(1700),
                device: Some("pump-1".into()),
                ..raw("V-2", "north")
            },
        ];
        let ok = [RawValve { device: Some("valve-north".into()), ..raw("V-3", "north") }];
        let all: Vec<RawValve> = bad.iter().chain(ok.iter()).cloned().collect();
        let v = validate(&all, &["north"], &["valve-north"], &mut taken, &mut d);
        let said = d.items.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("\n");
        for want in [
            "assets.valves[0].id: `S-01` is named twice",
            "assets.valves[1].zone: `west` is not a water zone",
            "assets.valves[1].kind: one of gate, butterfly",
            "assets.valves[2].diameter_mm",
            "assets.valves[2].installed",
            "assets.valves[2].device: `pump-1` is not a configured device that reads a valve position",
        ] {
            assert!(said.contains(want), "{want}\n{said}");
        }
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].kind, v[0].device.as_deref()), (ValveKind::Gate, Some("valve-north")));
    }

    #[test]
    fn a_valve_is_due_a_year_after_its_last_exercise_recorded_or_seen() {
        let at = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
        let v = Valve {
            id: "V-1".into(),
            zone: "north".into(),
            kind: ValveKind::Gate,
            diameter_mm: 150,
            installed: 1998,
            device: None,
        };
        let rec = |asset: &str, kind, done| AssetRecord {
            id: 0,
            at: done,
            asset: asset.into(),
            kind,
            done,
            who: "w".into(),
            why: "y".into(),
            alert: None,
        };
        let year = TimeDelta::days(365);
        // nothing known: due a year after the start of its install year, long ago
        let s = state(&v, &[], None, year);
        assert_eq!((s.last_exercised, s.due, s.records), (None, at(1998, 12, 31) + TimeDelta::days(1), 0));
        assert!(s.is_due(at(2026, 12, 5)));
        // exercised in March (a repair counts too: the valve was worked), another valve's
        // record is not this one's
        let records = [
            rec("V-1", AssetWork::Exercise, at(2026, 3, 1)),
            rec("V-1", AssetWork::Repair, at(2025, 6, 1)),
            rec("V-9", AssetWork::Exercise, at(2026, 11, 1)),
        ];
        let s = state(&v, &records, None, year);
        assert_eq!((s.last_exercised, s.last_repair, s.records), (Some(at(2026, 3, 1)), Some(at(2025, 6, 1)), 2));
        assert_eq!(s.due, at(2026, 3, 1) + year);
        assert!(!s.is_due(at(2026, 12, 5)));
        // an instrumented valve that moved later than the record
        let s = state(&v, &records, Some(at(2026, 9, 1)), year);
        assert_eq!(s.last_exercised, Some(at(2026, 9, 1)));
    }
}

//! Rules for the safety and service targets: water quality at the plant, electrical
//! overload and supply faults, and supply interruptions. Pure: series in, episodes out,
//! stamped with the data's time.
//!
//! A condition becomes an episode only when it lasts: at least two readings and the
//! configured time from the first reading that shows it to the last. One odd sample is
//! noise; a turbidity spike of five minutes is an incident.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;

use super::rules::{merge, Episode};
use super::said::{Fact, Phase};
use super::settings::Limits;
use crate::model::{AlertRule, Quantity, Severity};

/// (time, whether the condition holds, the evidence at that time).
pub type Step = (DateTime<Utc>, bool, Fact);

/// A step's evidence where the condition does not hold: never shown.
fn nothing() -> Fact {
    Fact::Said { text: String::new() }
}

/// Runs of held steps lasting at least `min` (first to last held step, two steps or
/// more). An episode ends at the first step that no longer holds; `None` while it holds
/// at the end of the data.
pub fn sustained(
    steps: &[Step],
    min: TimeDelta,
    make: impl Fn(DateTime<Utc>, Option<DateTime<Utc>>, &Fact) -> Episode,
) -> Vec<Episode> {
    let mut out = Vec::new();
    let mut run: Option<(usize, usize)> = None;
    let lasts = |a: usize, b: usize| b > a && steps[b].0 - steps[a].0 >= min;
    for (i, (t, held, _)) in steps.iter().enumerate() {
        if *held {
            run = Some((run.map_or(i, |r| r.0), i));
            continue;
        }
        if let Some((a, b)) = run.take() {
            if lasts(a, b) {
                out.push(make(steps[a].0, Some(*t), &steps[b].2));
            }
        }
    }
    if let Some((a, b)) = run {
        if lasts(a, b) {
            out.push(make(steps[a].0, None, &steps[b].2));
        }
    }
    out
}

fn episode(
    rule: AlertRule,
    zone: &str,
    subject: &str,
    device: Option<&str>,
    severity: Severity,
) -> impl Fn(DateTime<Utc>, Option<DateTime<Utc>>, &Fact) -> Episode + use<> {
    let (zone, subject, device) = (zone.to_string(), subject.to_string(), device.map(str::to_string));
    move |start, end, ev| Episode {
        rule,
        subject: subject.clone(),
        zone: zone.clone(),
        device: device.clone(),
        severity,
        start,
        end,
        evidence: ev.clone(),
        loss_per_day: None,
    }
}

/// A water-quality parameter outside its limits for at least `min`: one critical episode
/// per exceedance. `what` is the parameter.
pub fn water_quality(
    zone: &str,
    subject: &str,
    what: Quantity,
    unit: &str,
    readings: &[(DateTime<Utc>, f64)],
    limits: Limits,
    min: TimeDelta,
) -> Vec<Episode> {
    if limits.low.is_none() && limits.high.is_none() {
        return Vec::new();
    }
    let steps: Vec<Step> = readings
        .iter()
        .map(|(t, v)| {
            let fact = |limit: f64, above: bool| Fact::Quality {
                quantity: what,
                value: *v,
                limit,
                unit: unit.to_string(),
                above,
            };
            let (held, ev) = match (limits.low, limits.high) {
                (Some(lo), _) if *v < lo => (true, fact(lo, false)),
                (_, Some(hi)) if *v > hi => (true, fact(hi, true)),
                _ => (false, nothing()),
            };
            (*t, held, ev)
        })
        .collect();
    let device = subject.split('.').next();
    merge(
        sustained(&steps, min, episode(AlertRule::WaterQuality, zone, subject, device, Severity::Critical)),
        TimeDelta::minutes(10),
    )
}

/// One poll of an electricity meter: phase voltages and currents (in the profile's
/// order) and the power factor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseSample {
    pub voltages: Vec<Option<f64>>,
    pub currents: Vec<Option<f64>>,
    pub power_factor: Option<f64>,
}

/// What the electrical rules judge against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Electrical {
    pub nominal_voltage: Option<f64>,
    /// Percent of nominal, (below, above).
    pub voltage_tolerance: (f64, f64),
    pub rated_current: Option<f64>,
    /// Percent.
    pub imbalance_max: f64,
    pub power_factor_min: f64,
    pub min: TimeDelta,
}

fn phase(i: usize, n: usize) -> Phase {
    if n == 1 {
        None
    } else {
        u8::try_from(i).ok()
    }
}

/// Overload and supply faults of one meter: current above the rated current
/// (`overcurrent`), a phase voltage outside the tolerance (`voltage_range`), a phase below
/// half the nominal voltage while another has at least 80 % (`phase_loss`), phase voltages
/// differing from their mean by more than `imbalance_max` percent (`phase_imbalance`),
/// and a power factor below its minimum while the meter carries at least a tenth of its
/// rated current for an hour or more (`low_power_factor`). A lost phase is judged as lost,
/// not as a voltage out of range or an imbalance.
pub fn electrical(
    zone: &str,
    device: &str,
    samples: &BTreeMap<DateTime<Utc>, PhaseSample>,
    e: &Electrical,
) -> Vec<Episode> {
    let mut out = Vec::new();
    let mut over = Vec::new();
    let mut range = Vec::new();
    let mut loss = Vec::new();
    let mut imbalance = Vec::new();
    let mut low_pf = Vec::new();
    for (t, s) in samples {
        let n = s.voltages.len();
        let volts: Vec<(usize, f64)> = s.voltages.iter().enumerate().filter_map(|(i, v)| Some((i, (*v)?))).collect();
        if let Some(rated) = e.rated_current {
            let worst =
                s.currents.iter().enumerate().filter_map(|(i, c)| Some((i, (*c)?))).max_by(|a, b| a.1.total_cmp(&b.1));
            let held = worst.is_some_and(|(_, c)| c > rated);
            let ev = worst
                .map(|(i, c)| Fact::Overcurrent { phase: phase(i, s.currents.len()), current: c, rated })
                .unwrap_or_else(nothing);
            over.push((*t, held, ev));
        }
        let Some(nominal) = e.nominal_voltage else { continue };
        let lost: Vec<usize> = volts.iter().filter(|(_, v)| *v < 0.5 * nominal).map(|(i, _)| *i).collect();
        let live = volts.iter().any(|(_, v)| *v >= 0.8 * nominal);
        let phase_lost = n > 1 && !lost.is_empty() && live;
        loss.push((
            *t,
            phase_lost,
            Fact::PhaseLost {
                phases: lost
                    .iter()
                    .filter_map(|i| volts.iter().find(|(j, _)| j == i))
                    .map(|(i, v)| (phase(*i, n), *v))
                    .collect(),
                nominal,
            },
        ));
        let (lo, hi) =
            (nominal * (1.0 + e.voltage_tolerance.0 / 100.0), nominal * (1.0 + e.voltage_tolerance.1 / 100.0));
        // a dead supply (every phase below half) is an outage, not a voltage to judge
        let judged: Vec<(usize, f64)> = volts.iter().copied().filter(|(_, v)| *v >= 0.5 * nominal).collect();
        let out_of_range = judged.iter().find(|(_, v)| *v < lo || *v > hi);
        range.push((
            *t,
            out_of_range.is_some(),
            out_of_range
                .map(|(i, v)| Fact::Voltage { phase: phase(*i, n), value: *v, low: lo, high: hi })
                .unwrap_or_else(nothing),
        ));
        if n >= 3 && judged.len() == n {
            let mean = judged.iter().map(|(_, v)| v).sum::<f64>() / n as f64;
            let (i, dev) = judged
                .iter()
                .map(|(i, v)| (*i, (v - mean).abs() / mean * 100.0))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((0, 0.0));
            imbalance.push((
                *t,
                dev > e.imbalance_max,
                Fact::PhaseImbalance { phase: phase(i, n), deviation: dev, mean, max: e.imbalance_max },
            ));
        }
    }
    for (t, s) in samples {
        let Some(pf) = s.power_factor else { continue };
        let current = s.currents.iter().flatten().copied().fold(0.0_f64, f64::max);
        let loaded = e.rated_current.map_or(current > 0.0, |r| current >= 0.1 * r);
        low_pf.push((
            *t,
            loaded && pf.abs() < e.power_factor_min,
            Fact::LowPowerFactor { power_factor: pf.abs(), min: e.power_factor_min, current },
        ));
    }
    let mk = |rule, severity| episode(rule, zone, device, Some(device), severity);
    out.extend(sustained(&over, e.min, mk(AlertRule::Overcurrent, Severity::Critical)));
    out.extend(sustained(&loss, e.min.min(TimeDelta::minutes(1)), mk(AlertRule::PhaseLoss, Severity::Critical)));
    out.extend(sustained(&range, e.min, mk(AlertRule::VoltageRange, Severity::Warning)));
    out.extend(sustained(&imbalance, e.min, mk(AlertRule::PhaseImbalance, Severity::Warning)));
    out.extend(sustained(&low_pf, e.min.max(TimeDelta::hours(1)), mk(AlertRule::LowPowerFactor, Severity::Info)));
    merge(out, TimeDelta::minutes(10))
}

/// Whether local hour `h` is in the supply hours `[first, last]` (which may wrap
/// midnight); `None` is all day.
pub fn in_supply_hours(hours: Option<(u32, u32)>, h: u32) -> bool {
    match hours {
        None => true,
        Some((a, b)) if a <= b => (a..=b).contains(&h),
        Some((a, b)) => h >= a || h <= b,
    }
}

/// What tells a zone has no supply.
#[derive(Debug, Clone, PartialEq)]
pub enum SupplySignal<'a> {
    /// A pressure point of the zone: (its name, its unit, readings, the no-supply level).
    Pressure { point: &'a str, unit: &'a str, readings: &'a [(DateTime<Utc>, f64)], below: f64 },
    /// The zone's inflow (m³/h) when it has no pressure point.
    Inflow { readings: &'a [(DateTime<Utc>, f64)], below: f64 },
}

/// Supply interruptions of a zone: no supply during its supply hours for at least `min`.
/// Each signal is judged on its own and the interruptions they show are merged: the zone
/// is without supply while any of its pressure points says so. `customers` is the number
/// of customer meters the zone feeds (its own and its child zones').
pub fn interruptions(
    zone: &str,
    signals: &[SupplySignal<'_>],
    supply_hours: Option<(u32, u32)>,
    tz: Tz,
    min: TimeDelta,
    customers: usize,
) -> Vec<Episode> {
    let mut out = Vec::new();
    for s in signals {
        let steps: Vec<Step> = match s {
            SupplySignal::Pressure { point, unit, readings, below } => readings
                .iter()
                .map(|(t, v)| {
                    let h = t.with_timezone(&tz).hour();
                    (
                        *t,
                        *v < *below && in_supply_hours(supply_hours, h),
                        Fact::NoSupply {
                            point: Some(point.to_string()),
                            value: *v,
                            unit: unit.to_string(),
                            below: *below,
                            customers,
                        },
                    )
                })
                .collect(),
            SupplySignal::Inflow { readings, below } => readings
                .iter()
                .map(|(t, v)| {
                    let h = t.with_timezone(&tz).hour();
                    (
                        *t,
                        *v < *below && in_supply_hours(supply_hours, h),
                        Fact::NoSupply { point: None, value: *v, unit: "m³/h".into(), below: *below, customers },
                    )
                })
                .collect(),
        };
        out.extend(sustained(
            &steps,
            min,
            episode(AlertRule::SupplyInterruption, zone, zone, None, Severity::Critical),
        ));
    }
    union(out)
}

/// Merges overlapping episodes of one rule and subject into one (the earliest start, the
/// latest end; open if any is open).
fn union(mut eps: Vec<Episode>) -> Vec<Episode> {
    eps.sort_by(|a, b| (a.rule, &a.subject, a.start).cmp(&(b.rule, &b.subject, b.start)));
    let mut out: Vec<Episode> = Vec::new();
    for e in eps {
        if let Some(last) = out.last_mut() {
            if last.rule == e.rule && last.subject == e.subject && last.end.is_none_or(|end| e.start <= end) {
                last.end = match (last.end, e.end) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                continue;
            }
        }
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap() + TimeDelta::minutes(min)
    }

    #[test]
    fn a_condition_counts_only_when_it_lasts() {
        let steps: Vec<Step> = [0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1]
            .iter()
            .enumerate()
            .map(|(i, h)| (at(i as i64 * 2), *h == 1, Fact::Said { text: format!("s{i}") }))
            .collect();
        let eps = sustained(
            &steps,
            TimeDelta::minutes(5),
            episode(AlertRule::WaterQuality, "z", "d.p", None, Severity::Critical),
        );
        // the run at 2–4 min lasts 2 minutes: noise; the run 8–18 lasts 10; the last single step is not a run
        assert_eq!(eps.len(), 1);
        assert_eq!((eps[0].start, eps[0].end, eps[0].evidence.en()), (at(8), Some(at(20)), "s9".to_string()));
    }

    #[test]
    fn chlorine_and_turbidity_against_gb_5749_defaults() {
        let s = crate::alerts::settings::Settings::default();
        // chlorine falls to 0.1 mg/L for 30 minutes (readings every minute), then recovers
        let cl: Vec<(DateTime<Utc>, f64)> =
            (0..120).map(|m| (at(m), if (30..60).contains(&m) { 0.1 } else { 0.6 })).collect();
        let eps = water_quality(
            "campus",
            "wq.free_chlorine",
            Quantity::FreeChlorine,
            "mg/L",
            &cl,
            s.free_chlorine,
            TimeDelta::minutes(5),
        );
        assert_eq!(eps.len(), 1);
        assert_eq!((eps[0].start, eps[0].end), (at(30), Some(at(60))));
        assert!(eps[0].evidence.en().contains("below the limit 0.3 mg/L"), "{}", eps[0].evidence.en());
        assert_eq!(eps[0].device.as_deref(), Some("wq"));
        // a turbidity spike of three minutes is not an incident; one of ten is
        let tu: Vec<(DateTime<Utc>, f64)> =
            (0..120).map(|m| (at(m), if (10..13).contains(&m) || (50..60).contains(&m) { 2.5 } else { 0.3 })).collect();
        let eps = water_quality(
            "campus",
            "wq.turbidity",
            Quantity::Turbidity,
            "NTU",
            &tu,
            s.turbidity,
            TimeDelta::minutes(5),
        );
        assert_eq!(eps.len(), 1);
        assert_eq!((eps[0].start, eps[0].end), (at(50), Some(at(60))));
        // pH at exactly the limits is within them
        let ph: Vec<(DateTime<Utc>, f64)> = (0..30).map(|m| (at(m), if m % 2 == 0 { 6.5 } else { 8.5 })).collect();
        assert!(water_quality("campus", "wq.ph", Quantity::Ph, "", &ph, s.ph, TimeDelta::minutes(5)).is_empty());
    }

    fn three_phase(v: [f64; 3], i: [f64; 3], pf: f64) -> PhaseSample {
        PhaseSample {
            voltages: v.iter().map(|x| Some(*x)).collect(),
            currents: i.iter().map(|x| Some(*x)).collect(),
            power_factor: Some(pf),
        }
    }

    #[test]
    fn electrical_faults_of_a_three_phase_meter() {
        let e = Electrical {
            nominal_voltage: Some(230.0),
            voltage_tolerance: (-7.0, 7.0),
            rated_current: Some(100.0),
            imbalance_max: 4.0,
            power_factor_min: 0.9,
            min: TimeDelta::minutes(5),
        };
        let mut s = BTreeMap::new();
        for m in 0..240 {
            let sample = match m {
                // L2 overloaded for 20 minutes
                20..40 => three_phase([230.0, 229.0, 231.0], [60.0, 120.0, 70.0], 0.95),
                // L3 lost for 3 minutes
                60..63 => three_phase([230.0, 229.0, 0.0], [60.0, 60.0, 0.0], 0.95),
                // every phase sags to 200 V (−13 %) for 10 minutes
                80..90 => three_phase([200.0, 201.0, 199.0], [60.0, 60.0, 60.0], 0.95),
                // power factor 0.8 under load for 90 minutes
                100..190 => three_phase([230.0, 230.0, 230.0], [50.0, 50.0, 50.0], 0.8),
                _ => three_phase([230.0, 229.0, 231.0], [60.0, 60.0, 60.0], 0.95),
            };
            s.insert(at(m), sample);
        }
        let eps = electrical("power", "pump-1", &s, &e);
        let got: Vec<(AlertRule, DateTime<Utc>, Option<DateTime<Utc>>)> =
            eps.iter().map(|e| (e.rule, e.start, e.end)).collect();
        assert_eq!(
            got,
            vec![
                (AlertRule::Overcurrent, at(20), Some(at(40))),
                (AlertRule::VoltageRange, at(80), Some(at(90))),
                (AlertRule::PhaseLoss, at(60), Some(at(63))),
                (AlertRule::LowPowerFactor, at(100), Some(at(190))),
            ],
            "{eps:#?}"
        );
        assert!(eps[0].evidence.en().contains("current L2 120.0 A above the rated 100 A"), "{}", eps[0].evidence.en());
        assert!(eps[2].evidence.en().contains("L3 at 0 V"), "{}", eps[2].evidence.en());
        // an imbalance: L1 at 240 V, L3 at 218 V (mean 229.7, L3 5.1 % off)
        let mut s = BTreeMap::new();
        for m in 0..20 {
            s.insert(at(m), three_phase([240.0, 231.0, 218.0], [60.0, 60.0, 60.0], 0.95));
        }
        let eps = electrical("power", "pump-1", &s, &e);
        assert_eq!(eps.iter().map(|e| e.rule).collect::<Vec<_>>(), vec![AlertRule::PhaseImbalance]);
    }

    #[test]
    fn interruptions_count_only_in_supply_hours_and_merge_across_points() {
        let tz: Tz = "UTC".parse().unwrap();
        // point A without pressure 00:30–01:30, point B 01:00–02:00: one interruption 00:30–02:00
        let a: Vec<(DateTime<Utc>, f64)> =
            (0..240).map(|m| (at(m), if (30..90).contains(&m) { 0.0 } else { 0.3 })).collect();
        let b: Vec<(DateTime<Utc>, f64)> =
            (0..240).map(|m| (at(m), if (60..120).contains(&m) { 0.01 } else { 0.3 })).collect();
        let signals = [
            SupplySignal::Pressure { point: "p-a.pressure", unit: "MPa", readings: &a, below: 0.05 },
            SupplySignal::Pressure { point: "p-b.pressure", unit: "MPa", readings: &b, below: 0.05 },
        ];
        let eps = interruptions("north", &signals, None, tz, TimeDelta::minutes(15), 12);
        assert_eq!(eps.len(), 1, "{eps:#?}");
        assert_eq!((eps[0].start, eps[0].end), (at(30), Some(at(120))));
        assert!(eps[0].evidence.en().contains("12 customer meter(s)"));
        // with supply only from 01:00, the same data is an interruption of 01:00–02:00
        let eps = interruptions("north", &signals, Some((1, 23)), tz, TimeDelta::minutes(15), 12);
        assert_eq!((eps.len(), eps[0].start, eps[0].end), (1, at(60), Some(at(120))));
        // ten minutes without supply is not an interruption at 15 minutes
        let c: Vec<(DateTime<Utc>, f64)> =
            (0..60).map(|m| (at(m), if (10..20).contains(&m) { 0.0 } else { 0.3 })).collect();
        let s = [SupplySignal::Inflow { readings: &c, below: 0.01 }];
        assert!(interruptions("north", &s, None, tz, TimeDelta::minutes(15), 1).is_empty());
        assert!(
            in_supply_hours(Some((22, 5)), 23)
                && in_supply_hours(Some((22, 5)), 3)
                && !in_supply_hours(Some((22, 5)), 12)
        );
    }
}

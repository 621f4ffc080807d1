//! The alert shell: reads the store, runs the rules over a time range, and records the
//! episodes as alerts (raise, update, clear). Because rules are stamped with the data's
//! time, evaluating imported history gives what live evaluation would have raised.
//!
//! [`episodes`] runs one evaluator per rule family (leaks, balance, consumption, bursts,
//! interruptions, continuous flow, each device's own rules); each reads what it needs and
//! returns its episodes or the store's error, so an unreadable disk never reads as a
//! quiet meter.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use rust_decimal::prelude::ToPrimitive;

use super::burst;
use super::rules::{self, Episode};
use super::safety;
use super::spec::{DeviceSpec, Spec};
use super::{night_flow, night_pressure};
use crate::ledger::intervals;
use crate::ledger::tariff::{in_force, Price};
use crate::ledger::topology::{Role, Utility, Zone};
use crate::model::{AlertRule, MeterId, Quantity};
use crate::store::{AlertRow, Store, StoreError};

mod pass;

use pass::{Hourly, Pass, Series, NIGHT_HISTORY};

/// Runs every rule over `[from, to)` (with the history the rules need before `from`).
pub fn episodes(
    spec: &Spec<'_>,
    store: &Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Episode>, StoreError> {
    let pass = Pass::new(spec, store, from, to)?;
    let mut out = night_leaks(&pass)?;
    out.extend(imbalances(&pass));
    out.extend(anomalies(&pass));
    let interruptions = interruptions(&pass)?;
    out.extend(bursts(&pass, &interruptions)?);
    out.extend(interruptions);
    out.extend(continuous_flows(&pass));
    for d in &spec.devices {
        out.extend(device_rules(&pass, d)?);
    }
    out.retain(|e| e.start < to && e.end.is_none_or(|end| end >= from));
    // every overdue spell of a register valve up to now, whatever the window: a record
    // entered late must close the spell it ends, however long ago; an actuator's
    // movements (noted by the device rules above, hour by hour) count as exercise
    if !spec.register_valves.is_empty() {
        let records = store.asset_records()?;
        for v in &spec.register_valves {
            if !spec.rules.for_subject(v.zone, v.device).enabled(AlertRule::ValveExercise) {
                continue;
            }
            let mut done: Vec<DateTime<Utc>> = records.iter().filter(|r| r.asset == v.id).map(|r| r.done).collect();
            if let Some(d) = v.device {
                done.extend(store.valve_moves(d)?);
            }
            // records are kept in wall-clock time, whatever range of data the pass reads
            out.extend(super::valve_life::exercise_episodes(*v, &done, spec.exercise_every, Utc::now()));
        }
    }
    Ok(out)
}

/// Leaks by night flow, per water zone: on the zone's balance (inflow less what its
/// customers' and child zones' meters took) where it has such meters — metered use moves
/// with demand, the balance only with losses — else on its inflow. Where the zone has
/// pressure points, also by night pressure against its inflow ([`night_pressure_leaks`]).
fn night_leaks(pass: &Pass<'_, '_>) -> Result<Vec<Episode>, StoreError> {
    let mut out = Vec::new();
    for z in pass.water_zones() {
        let set = pass.spec.rules.for_subject(&z.name, None);
        let (by_flow, by_pressure) = (set.enabled(AlertRule::NightFlow), set.enabled(AlertRule::NightPressure));
        if !by_flow && !by_pressure {
            continue;
        }
        let inflow = pass.sum(pass.inlets(&z.name));
        let metered = pass.outputs(&z.name);
        let has_outputs = metered.iter().any(|m| pass.of(m).is_some_and(|h| !h.is_empty()));
        let series: Hourly = if has_outputs {
            let outputs: Vec<&Hourly> = metered.iter().filter_map(|m| pass.of(m)).collect();
            inflow
                .range(pass.from - NIGHT_HISTORY..)
                .filter_map(|(t, v)| {
                    // an hour counts only where every output meter has it
                    let used: Option<f64> = outputs.iter().map(|h| h.get(t).copied()).sum();
                    used.map(|u| (*t, v - u))
                })
                .collect()
        } else {
            inflow.range(pass.from - NIGHT_HISTORY..).map(|(t, v)| (*t, *v)).collect()
        };
        let night = set.night(&pass.spec.rules.holidays);
        // one judgement of the nights serves both rules (the pressure rule's rate is the flow's)
        let flow = night_flow::evaluate(&series, pass.spec.tz, &night);
        if by_flow {
            out.extend(rules::night_leak(&z.name, &flow, &night, has_outputs));
        }
        // without an inlet meter there is no inflow to judge the pressure against
        if let Some(inflow) = pass.measured_sum(pass.inlets(&z.name)).filter(|_| by_pressure) {
            out.extend(night_pressure_leaks(pass, z, &inflow, &flow, &set)?);
        }
    }
    Ok(out)
}

/// Leaks by a zone's night pressure: its points' hourly means against its hourly inflow.
fn night_pressure_leaks(
    pass: &Pass<'_, '_>,
    z: &Zone,
    inflow: &Hourly,
    flow: &[night_flow::NightHour],
    set: &super::settings::Settings,
) -> Result<Vec<Episode>, StoreError> {
    let watched: Vec<_> =
        pass.spec.devices_in(&z.name).flat_map(|d| d.points(Quantity::Pressure).map(move |p| (d, p))).collect();
    if watched.len() < night_pressure::MIN_POINTS {
        return Ok(Vec::new()); // the rule does not run here: its nine weeks are not read
    }
    let mut points: Vec<night_pressure::PressurePoint> = Vec::new();
    for (d, p) in watched {
        let readings = pass.good(d.name, &p.name, pass.from - NIGHT_HISTORY)?;
        let hourly = night_pressure::hourly_means(&readings, set.no_supply_below(&p.unit));
        points.push(night_pressure::PressurePoint {
            id: MeterId::new(d.name, &p.name).to_string(),
            unit: p.unit.clone(),
            hourly,
        });
    }
    Ok(night_pressure::leaks(&z.name, inflow, &points, pass.spec.tz, flow, &set.night_pressure()))
}

/// Zone imbalance, day by day (local days fully measured at the inlets).
fn imbalances(pass: &Pass<'_, '_>) -> Vec<Episode> {
    let tz = pass.spec.tz;
    let mut out = Vec::new();
    for z in pass.water_zones() {
        let set = pass.spec.rules.for_subject(&z.name, None);
        let outputs_meters = pass.outputs(&z.name);
        if outputs_meters.is_empty() || !set.enabled(AlertRule::ZoneImbalance) {
            continue; // nothing metered leaves the zone: there is no balance to check
        }
        let input = pass.sum(pass.inlets(&z.name));
        let outputs = pass.sum(outputs_meters.into_iter());
        let unmetered: f64 = pass.spec.topology.unmetered.iter().filter(|u| u.zone == z.name).map(|u| u.per_day).sum();
        let mut days: BTreeMap<chrono::NaiveDate, (usize, f64, f64)> = BTreeMap::new();
        for (t, v) in input.range(pass.history..) {
            let e = days.entry(t.with_timezone(&tz).date_naive()).or_default();
            e.0 += 1;
            e.1 += v;
            e.2 += outputs.get(t).copied().unwrap_or(0.0);
        }
        let daily: Vec<(DateTime<Utc>, f64, f64, f64)> = days
            .into_iter()
            .filter(|(_, (n, _, _))| *n >= 23)
            .filter_map(|(d, (_, i, o))| {
                let end = d.succ_opt()?.and_hms_opt(0, 0, 0)?;
                Some((tz.from_local_datetime(&end).earliest()?.with_timezone(&Utc), i, o, unmetered))
            })
            .collect();
        out.extend(rules::imbalance(&z.name, &daily, 0.02, set.imbalance_share, 3));
    }
    out
}

/// Consumption far from the usual weekday-hour, water and electricity.
fn anomalies(pass: &Pass<'_, '_>) -> Vec<Episode> {
    let mut out = Vec::new();
    for m in &pass.spec.topology.meters {
        let set = pass.spec.rules.for_subject(&m.zone, Some(&m.device));
        if let Some(h) = pass.of(m).filter(|_| set.enabled(AlertRule::ConsumptionAnomaly)) {
            let floor = if m.utility == Utility::Water { 0.1 } else { 1.0 };
            out.extend(rules::anomaly(&m.zone, &m.id().to_string(), m.utility.unit(), h, 5.0, floor));
        }
    }
    out
}

/// Bursts: a zone's inlet flow against the pressure of the zone's own devices. A burst in
/// a child zone also shows at its parent's inlet: the most specific one is kept. Supply
/// coming back refills the zone's pipes: the inflow's jump in the hour after an
/// interruption (in the zone or a zone below it) is no burst; a burst that starts with
/// the interruption is its cause.
fn bursts(pass: &Pass<'_, '_>, interruptions: &[Episode]) -> Result<Vec<Episode>, StoreError> {
    let mut out: Vec<Episode> = Vec::new();
    for z in pass.water_zones() {
        let set = pass.spec.rules.for_subject(&z.name, None);
        if !set.enabled(AlertRule::Burst) {
            continue;
        }
        let mut flows = Series::new();
        // four polls of the inlet, at least five seconds: how long a reading stands
        let mut lag = TimeDelta::seconds(5);
        for d in pass.inlet_flow_devices(&z.name) {
            lag = lag.max(TimeDelta::from_std(d.interval * 4).unwrap_or(lag));
            if let Some(p) = d.point(Quantity::WaterFlow) {
                // two weeks and the day before the range: what is usual at each time of day
                flows.extend(pass.good(d.name, &p.name, pass.from - TimeDelta::days(16))?);
            }
        }
        let mut pressures = Series::new();
        for d in pass.spec.devices_in(&z.name) {
            for p in d.points(Quantity::Pressure) {
                pressures.extend(pass.good(d.name, &p.name, pass.from - TimeDelta::days(1) - TimeDelta::hours(2))?);
            }
        }
        flows.sort_by_key(|x| x.0);
        pressures.sort_by_key(|x| x.0);
        let settings = burst::Settings {
            min_rise: set.burst_min_rise,
            drop_share: 0.15,
            confirm: TimeDelta::minutes(30),
            lag,
            tz: pass.spec.tz,
            holidays: pass.spec.rules.holidays.clone(),
        };
        out.extend(burst::burst(&z.name, &flows, &pressures, pass.from, &settings));
    }
    let overlaps = |a: &Episode, b: &Episode| {
        a.start <= b.end.unwrap_or(DateTime::<Utc>::MAX_UTC) && b.start <= a.end.unwrap_or(DateTime::<Utc>::MAX_UTC)
    };
    let all = out.clone();
    out.retain(|e| !all.iter().any(|c| pass.is_parent_of(&e.zone, &c.zone) && overlaps(e, c)));
    out.retain(|e| {
        !interruptions.iter().any(|i| {
            let here = i.zone == e.zone || pass.is_parent_of(&e.zone, &i.zone);
            here && burst::is_refill(e, i)
        })
    });
    Ok(out)
}

/// Supply interruptions: no pressure at the zone's pressure points (or, without one, no
/// inflow at its inlets) during its supply hours.
fn interruptions(pass: &Pass<'_, '_>) -> Result<Vec<Episode>, StoreError> {
    let mut out = Vec::new();
    for z in pass.water_zones() {
        let set = pass.spec.rules.for_subject(&z.name, None);
        if !set.enabled(AlertRule::SupplyInterruption) {
            continue;
        }
        // (point, unit, readings) of each pressure point in the zone
        let mut pressures: Vec<(String, std::sync::Arc<str>, Series)> = Vec::new();
        for d in pass.spec.devices_in(&z.name) {
            for p in d.points(Quantity::Pressure) {
                let id = MeterId::new(d.name, &p.name).to_string();
                pressures.push((id, p.unit.clone(), pass.good(d.name, &p.name, pass.history)?));
            }
        }
        let mut inflow = Series::new();
        if pressures.is_empty() {
            for d in pass.inlet_flow_devices(&z.name) {
                if let Some(p) = d.point(Quantity::WaterFlow) {
                    inflow.extend(pass.good(d.name, &p.name, pass.history)?);
                }
            }
            inflow.sort_by_key(|x| x.0);
        }
        let signals: Vec<safety::SupplySignal<'_>> = if pressures.is_empty() {
            vec![safety::SupplySignal::Inflow { readings: &inflow, below: set.no_supply_flow }]
        } else {
            pressures
                .iter()
                .map(|(point, unit, readings)| safety::SupplySignal::Pressure {
                    point,
                    unit,
                    readings,
                    below: set.no_supply_below(unit),
                })
                .collect()
        };
        out.extend(safety::interruptions(
            &z.name,
            &signals,
            set.supply_hours,
            pass.spec.tz,
            TimeDelta::from_std(set.interruption_after).unwrap_or(TimeDelta::minutes(15)),
            pass.spec.topology.customers(&z.name),
        ));
    }
    Ok(out)
}

/// Continuous flow at customer and unbilled water meters.
fn continuous_flows(pass: &Pass<'_, '_>) -> Vec<Episode> {
    let mut out = Vec::new();
    for m in pass.spec.topology.meters.iter().filter(|m| m.utility == Utility::Water && m.role != Role::Inlet) {
        let set = pass.spec.rules.for_subject(&m.zone, Some(&m.device));
        if let Some(h) = pass.of(m).filter(|_| set.enabled(AlertRule::ContinuousFlow)) {
            // an hour whose volume is a gap's estimate spread evenly is no evidence that
            // water ran in it: it breaks a run as a quiet hour would
            let guessed = pass.estimated.get(&m.id());
            let h: Hourly = h
                .range(pass.history..)
                .map(|(t, v)| (*t, if guessed.is_some_and(|g| g.contains(t)) { 0.0 } else { *v }))
                .collect();
            out.extend(rules::continuous_flow(&m.zone, &m.id().to_string(), &h, 0.01, set.continuous_hours));
        }
    }
    out
}

/// A device's own rules: silence, pressure band, a stuck totalizer, the valve, water
/// quality, electrical faults.
fn device_rules(pass: &Pass<'_, '_>, d: &DeviceSpec<'_>) -> Result<Vec<Episode>, StoreError> {
    let set = pass.spec.rules.for_subject(d.zone, Some(d.name));
    let points = &d.profile.points;
    let (history, to) = (pass.history, pass.to);
    let mut out = Vec::new();
    // silence: any good reading counts
    let mut times: Vec<DateTime<Utc>> = Vec::new();
    for p in points {
        times.extend(pass.good(d.name, &p.name, history)?.into_iter().map(|(t, _)| t));
    }
    times.sort();
    times.dedup();
    if !times.is_empty() && set.enabled(AlertRule::DeviceSilent) {
        // three polling intervals (at least 15 minutes), or three of the readings' usual
        // spacing when they are sparser (hourly imports of a device polled every 10 s)
        let limit = match set.silent_after {
            Some(s) => TimeDelta::from_std(s).unwrap_or(TimeDelta::minutes(15)),
            None => TimeDelta::from_std(d.interval * 3)
                .unwrap_or(TimeDelta::minutes(15))
                .max(TimeDelta::minutes(15))
                .max(intervals::usual_spacing(&times).unwrap_or_default() * 3),
        };
        out.extend(rules::silent(d.zone, d.name, &times, to.min(Utc::now()), limit));
    }
    for p in d.points(Quantity::Pressure) {
        let (low, high) = set.pressure_band.unwrap_or(match &*p.unit {
            "bar" => (1.4, 6.0),
            "kPa" => (140.0, 600.0),
            _ => (0.14, 0.6),
        });
        let r = pass.good(d.name, &p.name, history)?;
        let id = MeterId::new(d.name, &p.name).to_string();
        out.extend(
            rules::pressure_band(d.zone, &id, &r, low, high, &p.unit).into_iter().filter(|e| set.enabled(e.rule)),
        );
    }
    if let (Some(total), Some(flow)) = (d.point(Quantity::WaterVolume), d.point(Quantity::WaterFlow)) {
        if set.enabled(AlertRule::TotalizerStuck) {
            let totals = pass.good(d.name, &total.name, history)?;
            let flows = pass.good(d.name, &flow.name, history)?;
            out.extend(rules::stuck_totalizer(d.zone, d.name, &totals, &flows, 0.1, set.stuck_hours));
        }
    }
    // movements kept for good (the readings are pruned long before a year is out); the
    // first pass that sees a valve reads every reading still held of it, so that a
    // movement older than the window counts from the start
    if let Some(pos) = d.point(Quantity::ValvePosition) {
        let scanned = pass.store.valve_scanned(d.name)?;
        let from = if scanned { history } else { DateTime::<Utc>::MIN_UTC };
        let moved = super::valve_life::moved_hours(&pass.good(d.name, &pos.name, from)?);
        pass.store.note_valve_moves(d.name, &moved, !scanned)?;
    }
    if let (Some(pos), Some(cmd)) = (d.point(Quantity::ValvePosition), d.point(Quantity::ValveCommand)) {
        let series = |p: Option<&crate::modbus::profile::Point>| -> Result<Hourly, StoreError> {
            Ok(match p {
                Some(p) => pass.good(d.name, &p.name, history)?.into_iter().collect(),
                None => Hourly::new(),
            })
        };
        let (ps, cs, os, zs) = (
            series(Some(pos))?,
            series(Some(cmd))?,
            series(d.point(Quantity::ValveOpen))?,
            series(d.point(Quantity::ValveClosed))?,
        );
        let samples: Vec<rules::ValveSample> = ps
            .iter()
            .map(|(t, v)| (*t, Some(*v), cs.get(t).copied(), os.get(t).copied(), zs.get(t).copied()))
            .collect();
        out.extend(rules::valve(d.zone, d.name, &samples, 5.0).into_iter().filter(|e| set.enabled(e.rule)));
    }
    if set.enabled(AlertRule::MeterClock) {
        for p in d.points(Quantity::ClockOffset) {
            let r = pass.good(d.name, &p.name, history)?;
            let tolerance = set.meter_clock_tolerance.as_secs_f64();
            out.extend(rules::meter_clock(d.zone, d.name, &r, tolerance));
        }
    }
    // water quality against the drinking-water limits
    if set.enabled(AlertRule::WaterQuality) {
        let after = TimeDelta::from_std(set.quality_after).unwrap_or(TimeDelta::minutes(5));
        for p in points {
            let limits = match p.quantity {
                Quantity::FreeChlorine => set.free_chlorine,
                Quantity::Turbidity => set.turbidity,
                Quantity::Ph => set.ph,
                Quantity::Conductivity => set.conductivity,
                _ => continue,
            };
            let r = pass.good(d.name, &p.name, history)?;
            let subject = MeterId::new(d.name, &p.name).to_string();
            out.extend(safety::water_quality(d.zone, &subject, p.quantity, &p.unit, &r, limits, after));
        }
    }
    out.extend(electrical(pass, d, &set)?);
    Ok(out)
}

/// Overload and supply faults of electricity meters.
fn electrical(
    pass: &Pass<'_, '_>,
    d: &DeviceSpec<'_>,
    set: &super::settings::Settings,
) -> Result<Vec<Episode>, StoreError> {
    let (nv, nc) = (d.points(Quantity::Voltage).count(), d.points(Quantity::Current).count());
    if nv == 0 && nc == 0 {
        return Ok(Vec::new());
    }
    let pf_point = {
        let pfs: Vec<&crate::modbus::profile::Point> = d.points(Quantity::PowerFactor).collect();
        pfs.iter().find(|p| p.name.contains("total")).or(pfs.first()).copied()
    };
    let mut samples: BTreeMap<DateTime<Utc>, safety::PhaseSample> = BTreeMap::new();
    let blank = || safety::PhaseSample { voltages: vec![None; nv], currents: vec![None; nc], power_factor: None };
    for (i, p) in d.points(Quantity::Voltage).enumerate() {
        for (t, v) in pass.good(d.name, &p.name, pass.history)? {
            samples.entry(t).or_insert_with(blank).voltages[i] = Some(v);
        }
    }
    for (i, p) in d.points(Quantity::Current).enumerate() {
        for (t, v) in pass.good(d.name, &p.name, pass.history)? {
            samples.entry(t).or_insert_with(blank).currents[i] = Some(v);
        }
    }
    if let Some(p) = pf_point {
        for (t, v) in pass.good(d.name, &p.name, pass.history)? {
            samples.entry(t).or_insert_with(blank).power_factor = Some(v);
        }
    }
    let ratings = d.profile.ratings;
    let e = safety::Electrical {
        nominal_voltage: set.nominal_voltage.or(ratings.nominal_voltage),
        voltage_tolerance: set.voltage_tolerance.or(ratings.voltage_tolerance).unwrap_or((-7.0, 7.0)),
        rated_current: set.rated_current.or(ratings.max_current),
        imbalance_max: set.imbalance_max,
        power_factor_min: set.power_factor_min,
        min: TimeDelta::from_std(set.electrical_after).unwrap_or(TimeDelta::minutes(5)),
    };
    Ok(safety::electrical(d.zone, d.name, &samples, &e).into_iter().filter(|e| set.enabled(e.rule)).collect())
}

/// The price a zone's customers pay for water on a day (mean of the flat or first-tier
/// prices of its billed categories), for valuing a leak.
fn zone_price(spec: &Spec<'_>, zone: &str, at: DateTime<Utc>) -> Option<f64> {
    let date = at.with_timezone(&spec.tz).date_naive();
    let prices: Vec<f64> = spec
        .topology
        .meters_in(zone)
        .filter(|m| m.role == Role::Billed && m.utility == Utility::Water)
        .filter_map(|m| spec.prices.tariffs.get(&(Utility::Water, m.category.clone()?)))
        .filter_map(|ts| in_force(ts, date))
        .filter_map(|(_, t)| match &t.price {
            Price::Flat(p) => p.to_f64(),
            Price::Tiered(tiers) => tiers.first().and_then(|x| x.price.to_f64()),
            Price::TimeOfUse(_) => None,
        })
        .collect();
    (!prices.is_empty()).then(|| prices.iter().sum::<f64>() / prices.len() as f64)
}

/// Evaluates `[from, to)` and records the episodes; returns how many alerts were raised
/// or changed.
pub fn record(
    spec: &Spec<'_>,
    store: &Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> crate::store::Result<Vec<AlertRow>> {
    let mut changed = Vec::new();
    for e in episodes(spec, store, from, to)? {
        let fen = e
            .loss_per_day
            .zip(zone_price(spec, &e.zone, e.start))
            .map(|(m3, price)| (m3 * price * 100.0).round() as i64);
        let row = AlertRow {
            id: 0,
            rule: e.rule,
            subject: e.subject.clone(),
            zone: e.zone.clone(),
            device: e.device.clone(),
            severity: e.severity,
            start_ms: e.start.timestamp_millis(),
            end_ms: e.end.map(|t| t.timestamp_millis()),
            // the figures; the loss is rendered from the row's own columns
            evidence: e.evidence.stored(),
            loss_per_day: e.loss_per_day,
            loss_fen_per_day: fen,
            acked_by: None,
            acked_ms: None,
        };
        let (id, was_changed) = store.upsert_alert_seen_to(&row, to.timestamp_millis())?;
        if was_changed {
            changed.push(AlertRow { id, ..row });
        }
    }
    store.record_alert_pass(from.timestamp_millis(), to.timestamp_millis())?;
    Ok(changed)
}

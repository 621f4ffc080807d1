//! The alert shell: reads the store, runs the rules over a time range, and records the
//! episodes as alerts (raise, update, clear). Because rules are stamped with the data's
//! time, evaluating imported history gives what live evaluation would have raised.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use rust_decimal::prelude::ToPrimitive;

use super::rules::{self, Episode};
use super::safety;
use crate::config::Config;
use crate::ledger::intervals::{self, MeterSpec, Sample};
use crate::ledger::tariff::{in_force, Price};
use crate::ledger::topology::{Role, Utility};
use crate::model::{AlertRule, Quantity};
use crate::store::{AlertRow, Store, StoreError};

/// Reads good readings for the rules. The first store error is kept and returned by
/// [`episodes`] in place of any result: a disk error never reads as a quiet meter.
struct Reader<'a> {
    store: &'a Store,
    error: std::cell::RefCell<Option<StoreError>>,
}

impl Reader<'_> {
    /// Readings of one series as (time, value), good ones only.
    fn good(&self, device: &str, point: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(DateTime<Utc>, f64)> {
        match self.store.series_readings(device, point, from.timestamp_millis(), to.timestamp_millis()) {
            Ok(rows) => {
                rows.into_iter().filter(|r| r.quality.is_good()).filter_map(|r| Some((r.ts, r.value?))).collect()
            }
            Err(e) => {
                self.error.borrow_mut().get_or_insert(e);
                Vec::new()
            }
        }
    }
}

fn hourly(
    store: &Reader<'_>,
    cfg: &Config,
    device: &str,
    point: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> BTreeMap<DateTime<Utc>, f64> {
    let samples: Vec<Sample> = store
        .good(device, point, from, to)
        .into_iter()
        .map(|(ts, v)| Sample { ts, value: Some(v), good: true })
        .collect();
    let interval = cfg.device(device).map(|d| d.interval).unwrap_or(std::time::Duration::from_secs(600));
    let spec = MeterSpec { rollover_at: None, max_rate: None, expected_interval: interval };
    let c = intervals::consumption(&samples, &[], &spec);
    intervals::hourly(&c.intervals, from, to).into_iter().map(|(t, b)| (t, b.volume)).collect()
}

/// The price a zone's customers pay for water on a day (mean of the flat or first-tier
/// prices of its billed categories), for valuing a leak.
fn zone_price(cfg: &Config, zone: &str, at: DateTime<Utc>) -> Option<f64> {
    let date = at.with_timezone(&cfg.site.timezone).date_naive();
    let prices: Vec<f64> = cfg
        .topology
        .meters_in(zone)
        .filter(|m| m.role == Role::Billed && m.utility == Utility::Water)
        .filter_map(|m| cfg.prices.tariffs.get(&(Utility::Water, m.category.clone()?)))
        .filter_map(|ts| in_force(ts, date))
        .filter_map(|(_, t)| match &t.price {
            Price::Flat(p) => p.to_f64(),
            Price::Tiered(tiers) => tiers.first().and_then(|x| x.price.to_f64()),
            Price::TimeOfUse(_) => None,
        })
        .collect();
    (!prices.is_empty()).then(|| prices.iter().sum::<f64>() / prices.len() as f64)
}

/// Runs every rule over `[from, to)` (with the history the rules need before `from`).
pub fn episodes(
    cfg: &Config,
    store: &Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Episode>, StoreError> {
    let reader = Reader { store, error: std::cell::RefCell::new(None) };
    let store = &reader;
    let history = from - TimeDelta::days(21);
    let mut out = Vec::new();
    let tz = cfg.site.timezone;
    // every ledger meter's hourly consumption, once (four weeks back for the profiles)
    let hours: std::collections::HashMap<String, BTreeMap<DateTime<Utc>, f64>> = cfg
        .topology
        .meters
        .iter()
        .map(|m| {
            (
                format!("{}.{}", m.device, m.point),
                hourly(store, cfg, &m.device, &m.point, from - TimeDelta::days(29), to),
            )
        })
        .collect();
    let of = |m: &crate::ledger::topology::Meter| hours.get(&format!("{}.{}", m.device, m.point));
    let sum = |meters: Vec<&crate::ledger::topology::Meter>| {
        let mut total: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
        for m in meters {
            for (t, v) in of(m).into_iter().flatten() {
                *total.entry(*t).or_default() += v;
            }
        }
        total
    };
    // leaks by night flow, per water zone: on the zone's balance (inflow less what its
    // customers' and child zones' meters took) where it has such meters — metered use
    // moves with demand, the balance only with losses — else on its inflow
    for z in cfg.topology.zones.iter().filter(|z| z.utility == Utility::Water) {
        let inflow = sum(cfg.topology.meters_in(&z.name).filter(|m| m.role == Role::Inlet).collect());
        let metered: Vec<&crate::ledger::topology::Meter> = cfg
            .topology
            .meters_in(&z.name)
            .filter(|m| m.role != Role::Inlet)
            .chain(
                cfg.topology
                    .children(&z.name)
                    .flat_map(|c| cfg.topology.meters_in(&c.name).filter(|m| m.role == Role::Inlet)),
            )
            .collect();
        let has_outputs = metered.iter().any(|m| of(m).is_some_and(|h| !h.is_empty()));
        let series: BTreeMap<DateTime<Utc>, f64> = if has_outputs {
            let outputs: Vec<&BTreeMap<DateTime<Utc>, f64>> = metered.iter().filter_map(|m| of(m)).collect();
            inflow
                .range(history..)
                .filter_map(|(t, v)| {
                    // an hour counts only where every output meter has it
                    let used: Option<f64> = outputs.iter().map(|h| h.get(t).copied()).sum();
                    used.map(|u| (*t, v - u))
                })
                .collect()
        } else {
            inflow.range(history..).map(|(t, v)| (*t, *v)).collect()
        };
        let set = cfg.alerts.rules.for_subject(&z.name, None);
        if set.enabled(AlertRule::NightFlow) {
            out.extend(rules::night_leak(&z.name, &series, tz, &set.night()));
        }
    }
    // zone imbalance, day by day (local days fully measured at the inlets)
    for z in cfg.topology.zones.iter().filter(|z| z.utility == Utility::Water) {
        let input = sum(cfg.topology.meters_in(&z.name).filter(|m| m.role == Role::Inlet).collect());
        let mut outputs_meters: Vec<&crate::ledger::topology::Meter> =
            cfg.topology.meters_in(&z.name).filter(|m| m.role != Role::Inlet).collect();
        for c in cfg.topology.children(&z.name) {
            outputs_meters.extend(cfg.topology.meters_in(&c.name).filter(|m| m.role == Role::Inlet));
        }
        let set = cfg.alerts.rules.for_subject(&z.name, None);
        if outputs_meters.is_empty() || !set.enabled(AlertRule::ZoneImbalance) {
            continue; // nothing metered leaves the zone: there is no balance to check
        }
        let outputs = sum(outputs_meters);
        let unmetered: f64 = cfg.topology.unmetered.iter().filter(|u| u.zone == z.name).map(|u| u.per_day).sum();
        let mut days: BTreeMap<chrono::NaiveDate, (usize, f64, f64)> = BTreeMap::new();
        for (t, v) in input.range(history..) {
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
    // consumption far from the usual weekday-hour, water and electricity
    for m in &cfg.topology.meters {
        if let Some(h) = of(m)
            .filter(|_| cfg.alerts.rules.for_subject(&m.zone, Some(&m.device)).enabled(AlertRule::ConsumptionAnomaly))
        {
            out.extend(rules::anomaly(
                &m.zone,
                &format!("{}.{}", m.device, m.point),
                m.utility.unit(),
                h,
                5.0,
                if m.utility == Utility::Water { 0.1 } else { 1.0 },
            ));
        }
    }
    // bursts: a zone's inlet flow against the pressure of the zone's own devices
    for z in cfg.topology.zones.iter().filter(|z| z.utility == Utility::Water) {
        let mut flows: Vec<(DateTime<Utc>, f64)> = Vec::new();
        // four polls of the inlet, at least five seconds: a burst's ramp stays out of "usual"
        let mut lag = TimeDelta::seconds(5);
        for m in cfg.topology.meters_in(&z.name).filter(|m| m.role == Role::Inlet) {
            if let Some(d) = cfg.device(&m.device) {
                lag = lag.max(TimeDelta::from_std(d.interval * 4).unwrap_or(lag));
                if let Some(p) = d.profile.points.iter().find(|p| p.quantity == Quantity::WaterFlow) {
                    // a week before: what the flow usually is at this time of day
                    flows.extend(store.good(&d.name, &p.name, from - TimeDelta::days(8), to));
                }
            }
        }
        let mut pressures: Vec<(DateTime<Utc>, f64)> = Vec::new();
        for d in cfg.devices.iter().filter(|d| &*d.zone == z.name.as_str()) {
            for p in d.profile.points.iter().filter(|p| p.quantity == Quantity::Pressure) {
                pressures.extend(store.good(&d.name, &p.name, history.max(from - TimeDelta::hours(2)), to));
            }
        }
        flows.sort_by_key(|x| x.0);
        pressures.sort_by_key(|x| x.0);
        let set = cfg.alerts.rules.for_subject(&z.name, None);
        if !flows.is_empty() && set.enabled(AlertRule::Burst) {
            out.extend(rules::burst(&z.name, &flows, &pressures, set.burst_min_rise, 0.15, lag));
        }
    }
    // A burst in a child zone also shows at its parent's inlet: keep the most specific one.
    let overlaps = |a: &Episode, b: &Episode| {
        a.start <= b.end.unwrap_or(DateTime::<Utc>::MAX_UTC) && b.start <= a.end.unwrap_or(DateTime::<Utc>::MAX_UTC)
    };
    let bursts: Vec<Episode> = out.iter().filter(|e| e.rule == AlertRule::Burst).cloned().collect();
    out.retain(|e| {
        e.rule != AlertRule::Burst
            || !bursts.iter().any(|c| {
                cfg.topology.zone(&c.zone).and_then(|z| z.parent.as_deref()) == Some(e.zone.as_str()) && overlaps(e, c)
            })
    });
    // supply interruptions: no pressure at the zone's pressure points (or, without one, no
    // inflow at its inlets) during its supply hours
    for z in cfg.topology.zones.iter().filter(|z| z.utility == Utility::Water) {
        let set = cfg.alerts.rules.for_subject(&z.name, None);
        if !set.enabled(AlertRule::SupplyInterruption) {
            continue;
        }
        // (point, unit, readings) of each pressure point in the zone
        type Series = Vec<(DateTime<Utc>, f64)>;
        let mut pressures: Vec<(String, std::sync::Arc<str>, Series)> = Vec::new();
        for d in cfg.devices.iter().filter(|d| &*d.zone == z.name.as_str()) {
            for p in d.profile.points.iter().filter(|p| p.quantity == Quantity::Pressure) {
                pressures.push((
                    format!("{}.{}", d.name, p.name),
                    p.unit.clone(),
                    store.good(&d.name, &p.name, history, to),
                ));
            }
        }
        let mut inflow: Vec<(DateTime<Utc>, f64)> = Vec::new();
        if pressures.is_empty() {
            for m in cfg.topology.meters_in(&z.name).filter(|m| m.role == Role::Inlet) {
                if let Some(d) = cfg.device(&m.device) {
                    if let Some(p) = d.profile.points.iter().find(|p| p.quantity == Quantity::WaterFlow) {
                        inflow.extend(store.good(&d.name, &p.name, history, to));
                    }
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
                    below: set.no_supply_pressure.unwrap_or(match &**unit {
                        "bar" => 0.5,
                        "kPa" => 50.0,
                        _ => 0.05,
                    }),
                })
                .collect()
        };
        out.extend(safety::interruptions(
            &z.name,
            &signals,
            set.supply_hours,
            tz,
            TimeDelta::from_std(set.interruption_after).unwrap_or(TimeDelta::minutes(15)),
            cfg.topology.customers(&z.name),
        ));
    }
    // Supply coming back refills the zone's pipes: the inflow's jump in the hour after an
    // interruption (in the zone or a zone below it) is no burst.
    let refills: Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> = out
        .iter()
        .filter(|e| e.rule == AlertRule::SupplyInterruption)
        .map(|e| (e.zone.clone(), e.start, e.end))
        .collect();
    out.retain(|e| {
        e.rule != AlertRule::Burst
            || !refills.iter().any(|(zone, start, end)| {
                let here = zone == &e.zone
                    || cfg.topology.zone(zone).and_then(|z| z.parent.as_deref()) == Some(e.zone.as_str());
                here && e.start >= *start && end.is_none_or(|end| e.start <= end + TimeDelta::hours(1))
            })
    });
    // continuous flow at customer and unbilled water meters
    for m in cfg.topology.meters.iter().filter(|m| m.utility == Utility::Water && m.role != Role::Inlet) {
        let set = cfg.alerts.rules.for_subject(&m.zone, Some(&m.device));
        if let Some(h) = of(m).filter(|_| set.enabled(AlertRule::ContinuousFlow)) {
            let h: BTreeMap<DateTime<Utc>, f64> = h.range(history..).map(|(t, v)| (*t, *v)).collect();
            out.extend(rules::continuous_flow(
                &m.zone,
                &format!("{}.{}", m.device, m.point),
                &h,
                0.01,
                set.continuous_hours,
            ));
        }
    }
    for d in &cfg.devices {
        let set = cfg.alerts.rules.for_subject(&d.zone, Some(&d.name));
        let points = &d.profile.points;
        let find = |q: Quantity| points.iter().find(|p| p.quantity == q);
        // silence: any good reading counts
        let mut times: Vec<DateTime<Utc>> = Vec::new();
        for p in points {
            times.extend(store.good(&d.name, &p.name, history, to).into_iter().map(|(t, _)| t));
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
            out.extend(rules::silent(&d.zone, &d.name, &times, to.min(Utc::now()), limit));
        }
        for p in points.iter().filter(|p| p.quantity == Quantity::Pressure) {
            let (low, high) = set.pressure_band.unwrap_or(match &*p.unit {
                "bar" => (1.4, 6.0),
                "kPa" => (140.0, 600.0),
                _ => (0.14, 0.6),
            });
            let r = store.good(&d.name, &p.name, history, to);
            let mut eps = rules::pressure_band(&d.zone, &format!("{}.{}", d.name, p.name), &r, low, high, &p.unit);
            eps.retain(|e| set.enabled(e.rule));
            out.extend(eps);
        }
        if let (Some(total), Some(flow)) = (find(Quantity::WaterVolume), find(Quantity::WaterFlow)) {
            let totals = store.good(&d.name, &total.name, history, to);
            let flows = store.good(&d.name, &flow.name, history, to);
            if set.enabled(AlertRule::TotalizerStuck) {
                out.extend(rules::stuck_totalizer(&d.zone, &d.name, &totals, &flows, 0.1, set.stuck_hours));
            }
        }
        if let (Some(pos), Some(cmd)) = (find(Quantity::ValvePosition), find(Quantity::ValveCommand)) {
            let series = |p: Option<&crate::modbus::profile::Point>| -> BTreeMap<DateTime<Utc>, f64> {
                p.map(|p| store.good(&d.name, &p.name, history, to).into_iter().collect()).unwrap_or_default()
            };
            let (ps, cs, os, zs) = (
                series(Some(pos)),
                series(Some(cmd)),
                series(find(Quantity::ValveOpen)),
                series(find(Quantity::ValveClosed)),
            );
            let samples: Vec<rules::ValveSample> = ps
                .iter()
                .map(|(t, v)| (*t, Some(*v), cs.get(t).copied(), os.get(t).copied(), zs.get(t).copied()))
                .collect();
            let mut eps = rules::valve(&d.zone, &d.name, &samples, 5.0);
            eps.retain(|e| set.enabled(e.rule));
            out.extend(eps);
        }
        // water quality against the drinking-water limits
        if set.enabled(AlertRule::WaterQuality) {
            let after = TimeDelta::from_std(set.quality_after).unwrap_or(TimeDelta::minutes(5));
            for p in points {
                let (what, limits) = match p.quantity {
                    Quantity::FreeChlorine => ("free chlorine", set.free_chlorine),
                    Quantity::Turbidity => ("turbidity", set.turbidity),
                    Quantity::Ph => ("pH", set.ph),
                    Quantity::Conductivity => ("conductivity", set.conductivity),
                    _ => continue,
                };
                let r = store.good(&d.name, &p.name, history, to);
                let subject = format!("{}.{}", d.name, p.name);
                out.extend(safety::water_quality(&d.zone, &subject, what, &p.unit, &r, limits, after));
            }
        }
        // overload and supply faults of electricity meters
        let phase_points = |q: Quantity| points.iter().filter(move |p| p.quantity == q);
        if phase_points(Quantity::Voltage).next().is_some() || phase_points(Quantity::Current).next().is_some() {
            let pf_point = {
                let pfs: Vec<&crate::modbus::profile::Point> = phase_points(Quantity::PowerFactor).collect();
                pfs.iter().find(|p| p.name.contains("total")).or(pfs.first()).copied()
            };
            let mut samples: BTreeMap<DateTime<Utc>, safety::PhaseSample> = BTreeMap::new();
            let nv = phase_points(Quantity::Voltage).count();
            let nc = phase_points(Quantity::Current).count();
            let mut blank =
                || safety::PhaseSample { voltages: vec![None; nv], currents: vec![None; nc], power_factor: None };
            for (i, p) in phase_points(Quantity::Voltage).enumerate() {
                for (t, v) in store.good(&d.name, &p.name, history, to) {
                    samples.entry(t).or_insert_with(&mut blank).voltages[i] = Some(v);
                }
            }
            for (i, p) in phase_points(Quantity::Current).enumerate() {
                for (t, v) in store.good(&d.name, &p.name, history, to) {
                    samples.entry(t).or_insert_with(&mut blank).currents[i] = Some(v);
                }
            }
            if let Some(p) = pf_point {
                for (t, v) in store.good(&d.name, &p.name, history, to) {
                    samples.entry(t).or_insert_with(&mut blank).power_factor = Some(v);
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
            let mut eps = safety::electrical(&d.zone, &d.name, &samples, &e);
            eps.retain(|e| set.enabled(e.rule));
            out.extend(eps);
        }
    }
    if let Some(e) = reader.error.take() {
        return Err(e);
    }
    out.retain(|e| e.start < to && e.end.is_none_or(|end| end >= from));
    Ok(out)
}

/// Evaluates `[from, to)` and records the episodes; returns how many alerts were raised
/// or changed.
pub fn record(
    cfg: &Config,
    store: &Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> crate::store::Result<Vec<AlertRow>> {
    let mut changed = Vec::new();
    for e in episodes(cfg, store, from, to)? {
        let fen = e
            .loss_per_day
            .zip(zone_price(cfg, &e.zone, e.start))
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
            evidence: match (e.loss_per_day, fen) {
                (Some(m3), Some(f)) => {
                    format!("{}; losing about {m3:.1} m³/day ({:.2} yuan/day)", e.evidence, f as f64 / 100.0)
                }
                (Some(m3), None) => format!("{}; losing about {m3:.1} m³/day", e.evidence),
                _ => e.evidence.clone(),
            },
            loss_per_day: e.loss_per_day,
            loss_fen_per_day: fen,
            acked_by: None,
            acked_ms: None,
        };
        let (id, was_changed) = store.upsert_alert(&row)?;
        if was_changed {
            changed.push(AlertRow { id, ..row });
        }
    }
    store.record_alert_pass(from.timestamp_millis(), to.timestamp_millis())?;
    Ok(changed)
}

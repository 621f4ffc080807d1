//! The physics of the simulated pump house: demand, flows, totalizers, pressures, valves
//! and pumps, stepped in simulated time. Pure: `step(now)` takes the simulated instant and
//! writes the devices' registers through their profiles, so what the gateway reads is
//! exactly what the built-in profiles describe.
//!
//! Demand follows hourly profiles per building type (`demand`); registers are written
//! through the profiles (`registers`). Each zone's inlet carries its
//! buildings, its unmetered authorised use and a small background leakage; the plant
//! outlet carries all zones. Totalizers integrate flow, so volumes add up.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::modbus::profile::Profile;

use super::demand::noise;
pub use super::demand::{demand_factor, Kind};
use super::registers::write_power;
pub use super::registers::Bank;
use super::scenario::{Scenario, ScenarioKind};
use super::SimError;

#[derive(Debug, Clone)]
pub struct SimDevice {
    pub name: String,
    pub unit: u8,
    pub profile: Arc<Profile>,
    pub zone: String,
}

#[derive(Debug, Clone)]
struct Building {
    meter: usize,
    power: Option<usize>,
    kind: Kind,
    /// Mean demand, m³/h.
    mean: f64,
    /// Mean electrical load, W.
    load: f64,
    volume: f64,
    energy: f64,
}

#[derive(Debug, Clone)]
struct Zone {
    name: String,
    inlet: usize,
    pressure: usize,
    valve: usize,
    buildings: Vec<usize>,
    /// Unmetered authorised use (irrigation, public toilets) and background leakage, m³/h.
    unmetered: f64,
    background_leak: f64,
    volume: f64,
    valve_position: f64,
}

/// (name, meter unit, mean m³/h, [(power meter name, unit, three-phase, mean W)]).
type BuildingSpec<'a> = (&'a str, u8, Kind, f64, Option<(&'a str, u8, bool, f64)>);
/// (zone, inlet unit, unmetered m³/h, background leakage m³/h, buildings).
type ZoneSpec<'a> = (&'a str, u8, f64, f64, &'a [BuildingSpec<'a>]);

/// The state of the simulated pump house.
#[derive(Debug, Clone)]
pub struct PumpHouse {
    pub tz: Tz,
    pub devices: Vec<SimDevice>,
    pub banks: Vec<Bank>,
    /// Devices that do not answer (by index), from scenarios.
    pub silent: Vec<bool>,
    buildings: Vec<Building>,
    zones: Vec<Zone>,
    plant: usize,
    plant_pressure: usize,
    /// The water-quality analyser at the plant outlet.
    plant_quality: usize,
    plant_volume: f64,
    pumps: Vec<(usize, f64)>,
    /// The campus's main electricity meter (all buildings, pumps, unmetered loads and
    /// losses) and its energy.
    main_power: usize,
    main_energy: f64,
    scenarios: Vec<Scenario>,
    last: Option<DateTime<Utc>>,
    /// Meters swapped so far: (device, when, the old meter's final reading).
    pub swaps: Vec<(String, DateTime<Utc>, f64)>,
    /// Valves slower than the actuators' 2 %/s: (device, % per second).
    valve_speed: Vec<(String, f64)>,
}

impl PumpHouse {
    /// The standard campus: a plant outlet, three zones (north: dormitories, south:
    /// canteen and teaching, east: laboratory and staff housing), six buildings, four
    /// pressure points, three zone valves, two pumps and three building power meters.
    pub fn campus(
        profiles: &HashMap<String, Arc<Profile>>,
        tz: Tz,
        scenarios: Vec<Scenario>,
    ) -> Result<PumpHouse, SimError> {
        let get = |n: &str| profiles.get(n).cloned().ok_or_else(|| format!("built-in profile {n} is missing"));
        let (tuf, ai, valve, sdm630, sdm120, wq) = (
            get("tuf-2000m")?,
            get("analog-4-20ma")?,
            get("valve-actuator")?,
            get("eastron-sdm630")?,
            get("eastron-sdm120")?,
            get("water-quality-analyser")?,
        );
        let mut devices = Vec::new();
        let mut add = |name: &str, unit: u8, profile: &Arc<Profile>, zone: &str| {
            devices.push(SimDevice { name: name.into(), unit, profile: profile.clone(), zone: zone.into() });
            devices.len() - 1
        };
        let plant = add("plant-outlet", 1, &tuf, "campus");
        let plant_pressure = add("pressure-plant", 21, &ai, "campus");
        let plant_quality = add("quality-plant", 61, &wq, "campus");
        let pump1 = add("pump-1", 41, &sdm630, "plant");
        let pump2 = add("pump-2", 42, &sdm630, "plant");
        let main_power = add("power-main", 40, &sdm630, "campus");
        let mut buildings = Vec::new();
        let mut zones = Vec::new();
        let spec: [ZoneSpec<'_>; 3] = [
            (
                "north",
                2,
                0.6,
                0.35,
                &[
                    ("dorm-1", 11, Kind::Dormitory, 6.0, Some(("power-dorm-1", 51, false, 18_000.0))),
                    ("dorm-2", 12, Kind::Dormitory, 5.0, None),
                ],
            ),
            (
                "south",
                3,
                0.9,
                0.3,
                &[
                    ("canteen", 13, Kind::Canteen, 4.5, Some(("power-canteen", 52, true, 45_000.0))),
                    ("teaching", 14, Kind::Teaching, 3.0, Some(("power-teaching", 53, true, 60_000.0))),
                ],
            ),
            (
                "east",
                4,
                0.4,
                0.25,
                &[("lab", 15, Kind::Teaching, 2.0, None), ("staff-housing", 16, Kind::StaffHousing, 3.5, None)],
            ),
        ];
        for (k, (zone, unit, unmetered, leak, blds)) in spec.iter().enumerate() {
            let inlet = add(&format!("zone-{zone}-inlet"), *unit, &tuf, zone);
            let pressure = add(&format!("pressure-{zone}"), 22 + k as u8, &ai, zone);
            let valve_dev = add(&format!("valve-{zone}"), 31 + k as u8, &valve, zone);
            let mut ids = Vec::new();
            for (bname, bunit, kind, mean, power) in blds.iter() {
                let meter = add(&format!("bldg-{bname}"), *bunit, &tuf, zone);
                let (power, load) = match power {
                    Some((pname, punit, three, load)) => {
                        (Some(add(pname, *punit, if *three { &sdm630 } else { &sdm120 }, zone)), *load)
                    }
                    None => (None, 0.0),
                };
                buildings.push(Building {
                    meter,
                    power,
                    kind: *kind,
                    mean: *mean,
                    load,
                    volume: 1000.0 * f64::from(*bunit),
                    energy: 5000.0 * f64::from(*bunit),
                });
                ids.push(buildings.len() - 1);
            }
            zones.push(Zone {
                name: zone.to_string(),
                inlet,
                pressure,
                valve: valve_dev,
                buildings: ids,
                unmetered: *unmetered,
                background_leak: *leak,
                volume: 20_000.0 * (k as f64 + 1.0),
                valve_position: 100.0,
            });
        }
        let n = devices.len();
        let mut sim = PumpHouse {
            tz,
            banks: vec![Bank::default(); n],
            silent: vec![false; n],
            devices,
            buildings,
            zones,
            plant,
            plant_pressure,
            plant_quality,
            plant_volume: 150_000.0,
            pumps: vec![(pump1, 80_000.0), (pump2, 60_000.0)],
            main_power,
            main_energy: 500_000.0,
            scenarios,
            last: None,
            swaps: Vec::new(),
            valve_speed: Vec::new(),
        };
        sim.initial_registers();
        sim.check_scenarios()?;
        Ok(sim)
    }

    /// The registers a device holds from power-on: units, multipliers, status words and
    /// the valves' commands.
    fn initial_registers(&mut self) {
        for (i, d) in self.devices.iter().enumerate() {
            let p = d.profile.clone();
            let b = &mut self.banks[i];
            match &*p.name {
                "tuf-2000m" => {
                    b.set(&p, "totalizer_unit", 0.0);
                    b.set(&p, "totalizer_multiplier", 3.0);
                    b.set(&p, "error_code", 0.0);
                    b.holding.insert(2, 0);
                    b.holding.insert(3, 0);
                }
                "valve-actuator" => {
                    b.set(&p, "command", 100.0);
                    b.set(&p, "fault", 0.0);
                }
                "analog-4-20ma" | "water-quality-analyser" => b.set(&p, "status", 0.0),
                _ => {}
            }
        }
    }

    /// Every scenario names a zone or device of the campus.
    fn check_scenarios(&self) -> Result<(), SimError> {
        for s in &self.scenarios {
            if let ScenarioKind::Leak { zone, .. }
            | ScenarioKind::Outage { zone }
            | ScenarioKind::Overpressure { zone, .. } = &s.kind
            {
                if !self.zones.iter().any(|z| &z.name == zone) {
                    return Err(format!("scenario {s}: no zone `{zone}` (zones: north, south, east)").into());
                }
            }
            if let Some(dev) = s.kind.device() {
                if !self.devices.iter().any(|d| d.name == dev) {
                    return Err(format!("scenario {s}: no device `{dev}`").into());
                }
            }
        }
        Ok(())
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.devices.iter().position(|d| d.name == name)
    }

    fn active(&self, now: DateTime<Utc>) -> impl Iterator<Item = &ScenarioKind> {
        self.scenarios.iter().filter(move |s| s.active_at(now)).map(|s| &s.kind)
    }

    /// Adds scenarios after the start (the demo's scripted history).
    pub fn add_scenarios(&mut self, more: impl IntoIterator<Item = Scenario>) {
        self.scenarios.extend(more);
    }

    /// What the gateway would read from every device now, decoded through its profile:
    /// one reading per point, stamped `ts`; a silent device's readings are timeouts.
    pub fn readings(&self, site: &Arc<str>, ts: DateTime<Utc>) -> Vec<crate::model::Reading> {
        use crate::modbus::profile::RegisterImage;
        use crate::model::{Quality, Reading};
        let mut out = Vec::new();
        for (i, d) in self.devices.iter().enumerate() {
            let bank = &self.banks[i];
            let mut image = RegisterImage::default();
            for p in &d.profile.points {
                let width = p.width();
                let data = if self.silent[i] {
                    Err(Quality::Timeout)
                } else if p.table.is_bits() {
                    let bits = bank.bits(p.table);
                    Ok((p.address..p.address + width)
                        .map(|a| u16::from(bits.and_then(|b| b.get(&a)).copied().unwrap_or(false)))
                        .collect())
                } else {
                    let regs = bank.registers(p.table);
                    Ok((p.address..p.address + width)
                        .map(|a| regs.and_then(|r| r.get(&a)).copied().unwrap_or(0))
                        .collect())
                };
                image.push(p.table, p.address, width, data);
            }
            let zone: Arc<str> = d.zone.as_str().into();
            let device: Arc<str> = d.name.as_str().into();
            for (p, v) in d.profile.points.iter().zip(d.profile.decode(&image)) {
                out.push(Reading {
                    ts,
                    site: site.clone(),
                    zone: zone.clone(),
                    device: device.clone(),
                    point: p.name.clone(),
                    quantity: p.quantity,
                    value: v.value,
                    unit: p.unit.clone(),
                    quality: v.quality,
                });
            }
        }
        out
    }

    /// Advances the model to `now` and rewrites every register.
    pub fn step(&mut self, now: DateTime<Utc>) {
        let dt_h = self.last.map(|l| (now - l).num_milliseconds().max(0) as f64 / 3_600_000.0).unwrap_or(0.0);
        let previous = self.last;
        self.last = Some(now);
        // One-shot events that fall in (previous, now]: a meter swapped at the end of this
        // step, after the old meter counted the step's flow.
        let swaps: Vec<(String, f64)> = self
            .scenarios
            .iter()
            .filter(|s| s.start <= now && previous.is_some_and(|p| s.start > p))
            .filter_map(|s| match &s.kind {
                ScenarioKind::MeterReplaced { device, new_initial } => Some((device.clone(), *new_initial)),
                _ => None,
            })
            .collect();
        let local = self.tz.from_utc_datetime(&now.naive_utc());
        let bucket = now.timestamp() / 60;
        let active: Vec<ScenarioKind> = self.active(now).cloned().collect();
        let stuck =
            |name: &str| active.iter().any(|k| matches!(k, ScenarioKind::StuckTotalizer { device } if device == name));
        for (i, d) in self.devices.iter().enumerate() {
            self.silent[i] = active.iter().any(|k| matches!(k, ScenarioKind::Silent { device } if device == &d.name));
        }
        let mut total_flow = 0.0;
        let mut load_w = 0.0;
        for zi in 0..self.zones.len() {
            self.move_valve(zi, dt_h, &active);
            let z = &mut self.zones[zi];
            let cut = active.iter().any(|k| matches!(k, ScenarioKind::Outage { zone } if zone == &z.name));
            let open_factor = if cut { 0.0 } else { (z.valve_position / 100.0 * 3.0).clamp(0.0, 1.0) };
            let mut zone_flow = 0.0;
            for &bi in &z.buildings.clone() {
                let b = &mut self.buildings[bi];
                let f =
                    b.mean * demand_factor(b.kind, &local) * (1.0 + 0.08 * noise(bi as u64 + 1, bucket)) * open_factor;
                let f = f.max(0.0);
                b.volume += f * dt_h;
                zone_flow += f;
                let meter = b.meter;
                let mp = self.devices[meter].profile.clone();
                let name = self.devices[meter].name.clone();
                self.banks[meter].set(&mp, "flow_rate", f);
                self.banks[meter].set(&mp, "velocity", f / 20.0);
                if !stuck(&name) {
                    self.banks[meter].set(&mp, "positive_total", b.volume);
                }
                if let Some(pw) = b.power {
                    let load = b.load
                        * (0.3 + 0.7 * demand_factor(b.kind, &local))
                        * (1.0 + 0.05 * noise(bi as u64 + 100, bucket));
                    b.energy += load / 1000.0 * dt_h;
                    load_w += load;
                    let pp = self.devices[pw].profile.clone();
                    let energy = b.energy;
                    write_power(&mut self.banks[pw], &pp, load, energy, bucket, pw as u64);
                }
            }
            let leak: f64 = active
                .iter()
                .map(|k| match k {
                    ScenarioKind::Leak { zone, rate } if zone == &z.name => *rate,
                    _ => 0.0,
                })
                .sum();
            zone_flow +=
                (z.unmetered * demand_factor(Kind::StaffHousing, &local) + z.background_leak + leak) * open_factor;
            z.volume += zone_flow * dt_h;
            total_flow += zone_flow;
            let (inlet, volume, zname) = (z.inlet, z.volume, z.name.clone());
            let ip = self.devices[inlet].profile.clone();
            let iname = self.devices[inlet].name.clone();
            self.banks[inlet].set(&ip, "flow_rate", zone_flow);
            self.banks[inlet].set(&ip, "velocity", zone_flow / 40.0);
            if !stuck(&iname) {
                self.banks[inlet].set(&ip, "positive_total", volume);
            }
            let _ = zname;
        }
        self.plant_volume += total_flow * dt_h;
        let pp = self.devices[self.plant].profile.clone();
        let plant = self.plant;
        let plant_name = self.devices[plant].name.clone();
        self.banks[plant].set(&pp, "flow_rate", total_flow);
        self.banks[plant].set(&pp, "velocity", total_flow / 60.0);
        if !stuck(&plant_name) {
            self.banks[plant].set(&pp, "positive_total", self.plant_volume);
        }
        self.write_pressures(total_flow, bucket, &active);
        // Pumps: lead pump always, lag pump above 30 m³/h.
        for (k, (dev, energy)) in self.pumps.iter_mut().enumerate() {
            let running = k == 0 || total_flow > 30.0;
            let power =
                if running { 3000.0 + 180.0 * total_flow / if total_flow > 30.0 { 2.0 } else { 1.0 } } else { 0.0 };
            *energy += power / 1000.0 * dt_h;
            load_w += power;
            let p = self.devices[*dev].profile.clone();
            write_power(&mut self.banks[*dev], &p, power, *energy, bucket, *dev as u64);
        }
        self.write_quality(now, bucket, &active);
        // Main meter: metered loads, 15 kW of unmetered campus loads, 3 % line losses.
        let main_w = (load_w + 15_000.0) * 1.03;
        self.main_energy += main_w / 1000.0 * dt_h;
        let mp = self.devices[self.main_power].profile.clone();
        let (mi, me) = (self.main_power, self.main_energy);
        write_power(&mut self.banks[mi], &mp, main_w, me, bucket, mi as u64);
        for k in &active {
            if let ScenarioKind::Overload { device, amps } = k {
                let Some(i) = self.devices.iter().position(|d| &d.name == device) else { continue };
                let p = self.devices[i].profile.clone();
                let point = if p.points.iter().any(|x| &*x.name == "current_l1") { "current_l1" } else { "current" };
                self.banks[i].set(&p, point, *amps);
            }
        }
        self.swap_meters(swaps, now);
    }

    /// Water quality at the plant outlet: chlorine dosed to about 0.6 mg/L (decaying
    /// towards 0.05 mg/L with a 15-minute time constant when dosing fails), turbidity
    /// about 0.25 NTU unless a scenario raises it.
    fn write_quality(&mut self, now: DateTime<Utc>, bucket: i64, active: &[ScenarioKind]) {
        let chlorine_fail = self
            .scenarios
            .iter()
            .filter(|s| s.active_at(now) && s.kind == ScenarioKind::ChlorineFail)
            .map(|s| (now - s.start).num_seconds().max(0) as f64 / 900.0)
            .fold(None, |acc: Option<f64>, x| Some(acc.map_or(x, |a| a.max(x))));
        let normal = 0.6 + 0.03 * noise(800, bucket);
        let chlorine = chlorine_fail.map_or(normal, |tau| 0.05 + (normal - 0.05) * (-tau).exp());
        let turbidity = active
            .iter()
            .find_map(|k| match k {
                ScenarioKind::Turbidity { ntu } => Some(*ntu),
                _ => None,
            })
            .unwrap_or(0.25 + 0.03 * noise(801, bucket));
        let (qi, qp) = (self.plant_quality, self.devices[self.plant_quality].profile.clone());
        let qb = &mut self.banks[qi];
        qb.set(&qp, "free_chlorine", chlorine);
        qb.set(&qp, "turbidity", turbidity);
        qb.set(&qp, "ph", 7.3 + 0.05 * noise(802, bucket));
        qb.set(&qp, "conductivity", 420.0 + 10.0 * noise(803, bucket));
        qb.set(&qp, "temperature", 16.0 + 0.5 * noise(804, bucket));
    }

    /// Pressure: the pumps hold ~0.42 MPa at the plant; friction loss grows with flow²;
    /// a zone's point is downstream of its valve.
    fn write_pressures(&mut self, total_flow: f64, bucket: i64, active: &[ScenarioKind]) {
        let pp = self.devices[self.plant].profile.clone();
        let p_plant = 0.42 - 0.000_03 * total_flow * total_flow + 0.002 * noise(7, bucket);
        let ap = self.devices[self.plant_pressure].profile.clone();
        let ppi = self.plant_pressure;
        self.banks[ppi].set(&ap, "pressure", p_plant.max(0.0));
        self.banks[ppi].set(&ap, "ch1_current", 4.0 + p_plant.max(0.0) / 1.6 * 16.0);
        for z in &self.zones {
            let q = self.banks[z.inlet].get(&pp, "flow_rate").unwrap_or(0.0);
            // the pressure point is downstream of the zone valve: a closed valve or a cut
            // supply leaves it without pressure
            let open = (z.valve_position / 100.0 * 3.0).clamp(0.0, 1.0);
            let mut p = (p_plant - 0.000_12 * q * q).max(0.0) * open;
            for k in active {
                match k {
                    ScenarioKind::Outage { zone } if zone == &z.name => p = 0.0,
                    ScenarioKind::Overpressure { zone, mpa } if zone == &z.name => p = *mpa,
                    _ => {}
                }
            }
            self.banks[z.pressure].set(&ap, "pressure", p);
            self.banks[z.pressure].set(&ap, "ch1_current", 4.0 + p / 1.6 * 16.0);
        }
    }

    /// Meters swapped at the end of this step, after the old meter counted its flow.
    fn swap_meters(&mut self, swaps: Vec<(String, f64)>, now: DateTime<Utc>) {
        for (device, initial) in swaps {
            let Some(b) = self.buildings.iter_mut().find(|b| self.devices[b.meter].name == device) else { continue };
            self.swaps.push((device, now, b.volume));
            b.volume = initial;
            let (meter, p) = (b.meter, self.devices[b.meter].profile.clone());
            self.banks[meter].set(&p, "positive_total", initial);
        }
    }

    /// Sets a valve's command (0–100 %), as a write to its actuator would.
    pub fn command_valve(&mut self, device: &str, percent: f64) -> Result<(), SimError> {
        let i = self.index(device).ok_or_else(|| SimError::from(format!("no valve `{device}`")))?;
        let p = self.devices[i].profile.clone();
        if !p.points.iter().any(|q| &*q.name == "command") {
            return Err(format!("`{device}` takes no command").into());
        }
        self.banks[i].set(&p, "command", percent.clamp(0.0, 100.0));
        Ok(())
    }

    /// Makes a valve travel at `percent_per_s` from now on (an actuator wearing, a gate
    /// stiffening in its seat).
    pub fn set_valve_speed(&mut self, device: &str, percent_per_s: f64) {
        self.valve_speed.retain(|(d, _)| d != device);
        self.valve_speed.push((device.to_string(), percent_per_s));
    }

    /// A valve's position as the simulation holds it, if `device` is a zone valve.
    pub fn valve_position(&self, device: &str) -> Option<f64> {
        let i = self.index(device)?;
        self.zones.iter().find(|z| z.valve == i).map(|z| z.valve_position)
    }

    /// A zone's valve moves towards its command at 2 %/s (or its own speed) unless stuck.
    fn move_valve(&mut self, zi: usize, dt_h: f64, active: &[ScenarioKind]) {
        let valve = self.zones[zi].valve;
        let vp = self.devices[valve].profile.clone();
        let command = self.banks[valve].get(&vp, "command").unwrap_or(100.0).clamp(0.0, 100.0);
        let stuck_at = active.iter().find_map(|k| match k {
            ScenarioKind::ValveStuck { device, position } if device == &self.devices[valve].name => Some(*position),
            _ => None,
        });
        let z = &mut self.zones[zi];
        match stuck_at {
            Some(p) => z.valve_position = p,
            None => {
                let name = &self.devices[valve].name;
                let speed = self.valve_speed.iter().find(|(d, _)| d == name).map_or(2.0, |(_, s)| *s);
                let max_move = speed * dt_h * 3600.0;
                let delta = (command - z.valve_position).clamp(-max_move, max_move);
                z.valve_position += delta;
            }
        }
        let vpos = z.valve_position;
        let vb = &mut self.banks[valve];
        vb.set(&vp, "position", vpos);
        vb.set(&vp, "open_limit", f64::from(u8::from(vpos >= 99.5)));
        vb.set(&vp, "closed_limit", f64::from(u8::from(vpos <= 0.5)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostics;
    use crate::modbus::profile_file::builtin_profiles;

    fn campus(scenarios: Vec<Scenario>) -> PumpHouse {
        let mut d = Diagnostics::default();
        let profiles = builtin_profiles(&mut d).into_iter().map(|p| (p.name.to_string(), Arc::new(p))).collect();
        PumpHouse::campus(&profiles, chrono_tz::Asia::Shanghai, scenarios).unwrap()
    }

    fn value(sim: &PumpHouse, device: &str, point: &str) -> f64 {
        let i = sim.index(device).unwrap();
        sim.banks[i].get(&sim.devices[i].profile, point).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn night_is_quieter_than_the_evening_and_volumes_add_up() {
        let mut sim = campus(vec![]);
        // Wednesday 2026-11-25, Asia/Shanghai (UTC+8): 03:00 local = 19:00 UTC the day before
        let t0 = at("2026-11-24T19:00:00Z");
        sim.step(t0);
        let night = value(&sim, "plant-outlet", "flow_rate");
        let v0 = value(&sim, "plant-outlet", "positive_total");
        let zones0: f64 =
            ["north", "south", "east"].iter().map(|z| value(&sim, &format!("zone-{z}-inlet"), "positive_total")).sum();
        // step through to 20:00 local in one-minute steps
        let mut t = t0;
        for _ in 0..(17 * 60) {
            t += chrono::Duration::minutes(1);
            sim.step(t);
        }
        let evening = value(&sim, "plant-outlet", "flow_rate");
        assert!(evening > 2.5 * night, "evening {evening} vs night {night}");
        let plant = value(&sim, "plant-outlet", "positive_total") - v0;
        let zones: f64 = ["north", "south", "east"]
            .iter()
            .map(|z| value(&sim, &format!("zone-{z}-inlet"), "positive_total"))
            .sum::<f64>()
            - zones0;
        assert!(plant > 100.0);
        // the totalizers carry f32 fractions: agree to well under a cubic metre
        assert!((plant - zones).abs() < 0.05, "plant {plant} zones {zones}");
        let p = value(&sim, "pressure-north", "pressure");
        assert!((0.2..0.45).contains(&p), "{p}");
    }

    #[test]
    fn a_leak_raises_night_flow_by_its_rate() {
        let t0 = at("2026-11-24T19:00:00Z");
        let mut quiet = campus(vec![]);
        let mut leaky = campus(vec![Scenario::from(t0, ScenarioKind::Leak { zone: "east".into(), rate: 2.5 })]);
        quiet.step(t0);
        leaky.step(t0);
        let d = value(&leaky, "zone-east-inlet", "flow_rate") - value(&quiet, "zone-east-inlet", "flow_rate");
        assert!((d - 2.5).abs() < 1e-3, "{d}");
        assert!(value(&leaky, "pressure-east", "pressure") < value(&quiet, "pressure-east", "pressure"));
    }

    #[test]
    fn a_stuck_totalizer_stops_while_flow_goes_on() {
        let t0 = at("2026-11-25T02:00:00Z");
        let mut sim = campus(vec![Scenario::from(t0, ScenarioKind::StuckTotalizer { device: "bldg-dorm-1".into() })]);
        sim.step(t0 - chrono::Duration::minutes(1));
        sim.step(t0);
        let v = value(&sim, "bldg-dorm-1", "positive_total");
        sim.step(t0 + chrono::Duration::hours(1));
        assert_eq!(value(&sim, "bldg-dorm-1", "positive_total"), v);
        assert!(value(&sim, "bldg-dorm-1", "flow_rate") > 0.5);
    }

    #[test]
    fn valves_follow_their_command_unless_stuck() {
        let t0 = at("2026-11-25T02:00:00Z");
        let mut sim =
            campus(vec![Scenario::from(t0, ScenarioKind::ValveStuck { device: "valve-south".into(), position: 40.0 })]);
        sim.step(t0);
        for z in ["north", "south"] {
            let i = sim.index(&format!("valve-{z}")).unwrap();
            let p = sim.devices[i].profile.clone();
            sim.banks[i].set(&p, "command", 20.0);
        }
        sim.step(t0 + chrono::Duration::seconds(60));
        assert_eq!(value(&sim, "valve-north", "position"), 20.0);
        assert_eq!(value(&sim, "valve-north", "open_limit"), 0.0);
        assert_eq!(value(&sim, "valve-south", "position"), 40.0);
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn readings_decode_every_point_and_a_swap_restarts_the_register() {
        let profiles = crate::sim::profiles().unwrap();
        let t0 = at("2026-03-01T00:00:00Z");
        let swap = at("2026-03-01T05:30:00Z"); // applied at the 06:00 step
        let mut sim = PumpHouse::campus(
            &profiles,
            chrono_tz::Asia::Shanghai,
            vec![
                Scenario::from(swap, ScenarioKind::MeterReplaced { device: "bldg-dorm-1".into(), new_initial: 3.0 }),
                Scenario::between(t0, at("2026-03-01T02:00:00Z"), ScenarioKind::Silent { device: "bldg-lab".into() }),
            ],
        )
        .unwrap();
        let site: Arc<str> = "s".into();
        let mut before = 0.0;
        for h in 0..10 {
            let t = t0 + chrono::TimeDelta::hours(h);
            sim.step(t);
            let r = sim.readings(&site, t);
            assert_eq!(r.len(), sim.devices.iter().map(|d| d.profile.points.len()).sum::<usize>());
            let lab = r.iter().find(|x| &*x.device == "bldg-lab" && &*x.point == "positive_total").unwrap();
            assert_eq!(lab.quality.is_good(), h >= 2, "silent until 02:00 only (hour {h})");
            let dorm = r.iter().find(|x| &*x.device == "bldg-dorm-1" && &*x.point == "positive_total").unwrap();
            let v = dorm.value.unwrap();
            if h == 6 {
                assert_eq!(v, 3.0, "the new meter reads its initial value at the swap");
                let (dev, when, old_final) = sim.swaps[0].clone();
                assert_eq!((dev.as_str(), when), ("bldg-dorm-1", at("2026-03-01T06:00:00Z")));
                assert!(old_final > before, "the old meter counted up to the swap");
            } else if h > 0 {
                assert!(v >= before, "{h}: {v} < {before}");
            }
            before = v;
        }
    }
}

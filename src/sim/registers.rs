//! The simulated devices' registers: values written and read through their profiles, so
//! that what the gateway reads is exactly what the built-in profiles describe.

use std::collections::HashMap;

use super::demand::noise;
use crate::modbus::decode::encode_register_value;
use crate::modbus::profile::{DataType, Profile, Table, Transform};

/// The registers of one unit id.
#[derive(Debug, Default, Clone)]
pub struct Bank {
    pub coils: HashMap<u16, bool>,
    pub discrete: HashMap<u16, bool>,
    pub input: HashMap<u16, u16>,
    pub holding: HashMap<u16, u16>,
}

impl Bank {
    pub fn registers(&self, table: Table) -> Option<&HashMap<u16, u16>> {
        match table {
            Table::Input => Some(&self.input),
            Table::Holding => Some(&self.holding),
            _ => None,
        }
    }

    pub fn bits(&self, table: Table) -> Option<&HashMap<u16, bool>> {
        match table {
            Table::Coil => Some(&self.coils),
            Table::Discrete => Some(&self.discrete),
            _ => None,
        }
    }

    /// Writes a point's engineering value, inverting the profile's transforms.
    pub fn set(&mut self, profile: &Profile, point: &str, value: f64) {
        let Some(p) = profile.points.iter().find(|p| &*p.name == point) else { return };
        let mut v = value;
        if let Transform::CurrentLoop { low, high, .. } = p.transform {
            v = 4.0 + (v - low) / (high - low) * 16.0;
        }
        if let Some(e) = p.exponent_from {
            let exp = profile.points.get(e).and_then(|ep| self.holding.get(&ep.address).copied()).unwrap_or(3);
            v /= 10f64.powi(i32::from(exp) + p.exponent_offset);
        }
        let raw = (v - p.offset) / p.scale;
        match p.table {
            Table::Coil => {
                self.coils.insert(p.address, raw != 0.0);
            }
            Table::Discrete => {
                self.discrete.insert(p.address, raw != 0.0);
            }
            Table::Input | Table::Holding => {
                let map = if p.table == Table::Input { &mut self.input } else { &mut self.holding };
                if let DataType::Bit(n) = p.data_type {
                    let w = map.entry(p.address).or_default();
                    *w = (*w & !(1 << n)) | (u16::from(raw != 0.0) << n);
                } else {
                    for (k, w) in encode_register_value(raw, p.data_type, p.order).into_iter().enumerate() {
                        map.insert(p.address + k as u16, w);
                    }
                }
            }
        }
    }

    /// A point's current engineering value as a device would report it.
    pub fn get(&self, profile: &Profile, point: &str) -> Option<f64> {
        let idx = profile.points.iter().position(|p| &*p.name == point)?;
        let mut image = crate::modbus::profile::RegisterImage::default();
        for p in &profile.points {
            let words: Option<Vec<u16>> = match p.table {
                Table::Coil | Table::Discrete => {
                    self.bits(p.table).and_then(|m| m.get(&p.address)).map(|b| vec![u16::from(*b)])
                }
                _ => self
                    .registers(p.table)
                    .and_then(|m| (0..p.width()).map(|k| m.get(&(p.address + k)).copied()).collect()),
            };
            if let Some(w) = words {
                image.push(p.table, p.address, p.width(), Ok(w));
            }
        }
        profile.decode(&image).get(idx).and_then(|d| d.value)
    }
}

/// An electricity meter's registers for a load of `watts` (three phases when the profile
/// has them) and its energy so far.
pub(super) fn write_power(bank: &mut Bank, p: &Profile, watts: f64, energy_kwh: f64, bucket: i64, key: u64) {
    let v = 230.0 + 2.0 * noise(key + 500, bucket);
    let pf = 0.93 + 0.03 * noise(key + 600, bucket);
    bank.set(p, "frequency", 50.0 + 0.02 * noise(key + 700, bucket));
    bank.set(p, "energy_import", energy_kwh);
    bank.set(p, "energy_export", 0.0);
    if p.points.iter().any(|x| &*x.name == "voltage_l1") {
        for (k, l) in ["l1", "l2", "l3"].iter().enumerate() {
            let share = watts / 3.0 * (1.0 + 0.03 * noise(key + k as u64, bucket));
            bank.set(p, &format!("voltage_{l}"), v + noise(key + 10 + k as u64, bucket));
            bank.set(p, &format!("current_{l}"), share / (v * pf));
            bank.set(p, &format!("power_{l}"), share);
            bank.set(p, &format!("power_factor_{l}"), pf);
        }
        bank.set(p, "power_total", watts);
        bank.set(p, "power_factor_total", pf);
    } else {
        bank.set(p, "voltage", v);
        bank.set(p, "current", watts / (v * pf));
        bank.set(p, "power", watts);
        bank.set(p, "power_factor", pf);
    }
}

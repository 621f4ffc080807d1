//! Device profiles: what a device's registers mean, as data.
//!
//! A profile is a list of [`Point`]s (table, address, type, order, scale, offset, unit,
//! quantity). Built-in profiles are TOML files under `profiles/` compiled into the
//! binary; users add their own in the configuration with the same fields. Each built-in
//! profile carries test vectors from the manufacturer's register map (raw registers →
//! expected values) that `cargo test` and `pumphouse check` run.
//!
//! Addresses are 0-based protocol addresses, as they travel in the request. Register maps
//! often print 1-based "Modicon" numbers instead: 00001–09999 coils, 10001–19999 discrete
//! inputs, 30001–39999 input registers, 40001–49999 holding registers (six-digit forms
//! 300001–365536 and 400001–465536 for the full range). A point may give `register =
//! 30001` instead of `table = "input"` + `address = 0`; both mean the same.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{Quality, Quantity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Coil,
    Discrete,
    Input,
    Holding,
}

impl Table {
    pub fn parse(s: &str) -> Option<Table> {
        match s {
            "coil" | "coils" => Some(Table::Coil),
            "discrete" | "discrete_input" | "discrete_inputs" => Some(Table::Discrete),
            "input" | "input_register" | "input_registers" => Some(Table::Input),
            "holding" | "holding_register" | "holding_registers" => Some(Table::Holding),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Table::Coil => "coil",
            Table::Discrete => "discrete",
            Table::Input => "input",
            Table::Holding => "holding",
        }
    }

    /// Coils and discrete inputs are read as bits; the others as 16-bit registers.
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::Discrete)
    }

    /// The Modbus function code that reads this table.
    pub fn function_code(self) -> u8 {
        match self {
            Table::Coil => 1,
            Table::Discrete => 2,
            Table::Holding => 3,
            Table::Input => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Bool,
    /// Bit N (0 = least significant) of one register.
    Bit(u8),
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    /// A 32-bit integer part followed by a 32-bit float fraction (4 registers), as
    /// ultrasonic flow meters such as the TUF-2000M keep their totalizers.
    I32F32,
}

impl DataType {
    pub fn parse(s: &str, bit: Option<u8>) -> Option<DataType> {
        Some(match s {
            "bool" => DataType::Bool,
            "bit" => DataType::Bit(bit?),
            "u16" => DataType::U16,
            "i16" => DataType::I16,
            "u32" => DataType::U32,
            "i32" => DataType::I32,
            "u64" => DataType::U64,
            "i64" => DataType::I64,
            "f32" => DataType::F32,
            "f64" => DataType::F64,
            "i32_f32" => DataType::I32F32,
            _ => return None,
        })
    }

    pub fn name(self) -> String {
        match self {
            DataType::Bool => "bool".into(),
            DataType::Bit(n) => format!("bit {n}"),
            DataType::U16 => "u16".into(),
            DataType::I16 => "i16".into(),
            DataType::U32 => "u32".into(),
            DataType::I32 => "i32".into(),
            DataType::U64 => "u64".into(),
            DataType::I64 => "i64".into(),
            DataType::F32 => "f32".into(),
            DataType::F64 => "f64".into(),
            DataType::I32F32 => "i32_f32".into(),
        }
    }

    /// How many 16-bit registers the type spans.
    pub fn registers(self) -> u16 {
        match self {
            DataType::Bool | DataType::Bit(_) | DataType::U16 | DataType::I16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 | DataType::I32F32 => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordOrder {
    Abcd,
    Cdab,
    Badc,
    Dcba,
}

impl WordOrder {
    pub fn parse(s: &str) -> Option<WordOrder> {
        match s.to_ascii_uppercase().as_str() {
            "ABCD" => Some(WordOrder::Abcd),
            "CDAB" => Some(WordOrder::Cdab),
            "BADC" => Some(WordOrder::Badc),
            "DCBA" => Some(WordOrder::Dcba),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WordOrder::Abcd => "ABCD",
            WordOrder::Cdab => "CDAB",
            WordOrder::Badc => "BADC",
            WordOrder::Dcba => "DCBA",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transform {
    None,
    /// `raw × scale + offset` is a loop current in mA, mapped linearly from 4–20 mA onto
    /// `low..high`. Currents outside `fault_below..=fault_above` mean a broken loop or a
    /// transmitter signalling failure (NAMUR NE 43: below 3.6 mA or above 21 mA).
    CurrentLoop {
        low: f64,
        high: f64,
        fault_below: f64,
        fault_above: f64,
    },
}

/// What a profile's device speaks. A Modbus point is read from registers; a meter point
/// by its identifier (DL/T 645) or from the meter-data answer (CJ/T 188).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    #[default]
    Modbus,
    Dlt645(crate::dlt645::Edition),
    /// With the meter-type byte its frames carry (10H cold water, …).
    Cjt188 {
        meter_type: u8,
    },
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        Some(match s {
            "modbus" => Protocol::Modbus,
            "dlt645-2007" | "dlt645" => Protocol::Dlt645(crate::dlt645::Edition::V2007),
            "dlt645-1997" => Protocol::Dlt645(crate::dlt645::Edition::V1997),
            "cjt188" => Protocol::Cjt188 { meter_type: crate::cjt188::COLD_WATER },
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Modbus => "Modbus",
            Protocol::Dlt645(crate::dlt645::Edition::V2007) => "DL/T 645-2007",
            Protocol::Dlt645(crate::dlt645::Edition::V1997) => "DL/T 645-1997",
            Protocol::Cjt188 { .. } => "CJ/T 188",
        }
    }
}

/// Where a meter point's value comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MeterItem {
    /// A DL/T 645 identifier and its BCD format.
    Dlt645 { di: u32, format: crate::dlt645::data::Format },
    /// A field of the CJ/T 188 meter-data answer.
    Cjt188(crate::cjt188::Field),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub name: Arc<str>,
    pub table: Table,
    pub address: u16,
    pub data_type: DataType,
    pub order: WordOrder,
    pub scale: f64,
    pub offset: f64,
    pub unit: Arc<str>,
    pub quantity: Quantity,
    /// Plausible range of the engineering value; outside it the reading is `out_of_range`.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Index of the point whose value is a power-of-ten exponent for this one.
    pub exponent_from: Option<usize>,
    pub exponent_offset: i32,
    pub transform: Transform,
    pub description: String,
    /// A meter point's source (`None` for a Modbus point, read from `table`/`address`).
    pub item: Option<MeterItem>,
}

impl Point {
    /// Registers (or bits) the point occupies in its table.
    pub fn width(&self) -> u16 {
        if self.table.is_bits() {
            1
        } else {
            self.data_type.registers()
        }
    }

    /// A plain point for tests: holding register 0, ABCD, no scaling.
    pub fn for_test(name: &str, data_type: DataType) -> Point {
        Point {
            name: name.into(),
            table: Table::Holding,
            address: 0,
            data_type,
            order: WordOrder::Abcd,
            scale: 1.0,
            offset: 0.0,
            unit: "".into(),
            quantity: Quantity::Status,
            min: None,
            max: None,
            exponent_from: None,
            exponent_offset: 0,
            transform: Transform::None,
            description: String::new(),
            item: None,
        }
    }

    /// Where a meter's own register wraps to zero, when its protocol fixes it (scaled like
    /// the value): a DL/T 645 BCD register of n bytes and d decimals at 10^(2n−d) — the
    /// 6-digit XXXXXX.XX kWh at 1 000 000 — and CJ/T 188's XXXXXX.XX m³ at 1 000 000.
    pub fn register_modulus(&self) -> Option<f64> {
        let m = match self.item? {
            MeterItem::Dlt645 { format, .. } if !format.signed => {
                10f64.powi(2 * i32::from(format.bytes) - i32::from(format.decimals))
            }
            MeterItem::Cjt188(crate::cjt188::Field::Total | crate::cjt188::Field::Settled) => 1e6,
            _ => return None,
        };
        Some(m * self.scale)
    }

    /// A meter point: its value is `item`'s × `scale`.
    pub fn meter(name: &str, item: MeterItem, quantity: Quantity, unit: &str, scale: f64) -> Point {
        Point { quantity, unit: unit.into(), scale, item: Some(item), ..Point::for_test(name, DataType::F64) }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vector {
    pub description: String,
    pub image: RegisterImage,
    pub expect: BTreeMap<String, f64>,
    pub expect_quality: BTreeMap<String, String>,
    /// A meter profile's vector: what the meter answered (instead of `image`).
    pub answers: Option<super::meter_profile::Answers>,
    /// The gateway's local time when the meter answered (a clock point's reference).
    pub at: Option<chrono::NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: Arc<str>,
    pub description: String,
    pub points: Vec<Point>,
    pub vectors: Vec<Vector>,
    /// Electrical ratings, the defaults of the electrical rules.
    pub ratings: Ratings,
    /// The TOML text of a built-in profile, for `profiles show`.
    pub source: Option<&'static str>,
    pub protocol: Protocol,
}

/// A device's electrical ratings as its profile gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ratings {
    /// Nominal phase-to-neutral voltage, V.
    pub nominal_voltage: Option<f64>,
    /// Allowed deviation from nominal in percent, (below, above), e.g. (−10, +7).
    pub voltage_tolerance: Option<(f64, f64)>,
    /// The meter's maximum current, A.
    pub max_current: Option<f64>,
}

/// What was read from a device in one cycle: blocks of registers or bits per table, or
/// the reason a block could not be read. Points are decoded against this.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegisterImage {
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub table: Table,
    pub start: u16,
    pub count: u16,
    /// Registers, or bits as 0/1, or why the read failed.
    pub data: Result<Vec<u16>, Quality>,
}

impl RegisterImage {
    pub fn push(&mut self, table: Table, start: u16, count: u16, data: Result<Vec<u16>, Quality>) {
        self.blocks.push(Block { table, start, count, data });
    }

    /// The words of `table[address .. address + width]`, from the last block that covers
    /// them all.
    pub fn get(&self, table: Table, address: u16, width: u16) -> Result<&[u16], Quality> {
        let end = u32::from(address) + u32::from(width);
        for b in self.blocks.iter().rev() {
            let b_end = u32::from(b.start) + u32::from(b.count);
            if b.table == table && b.start <= address && end <= b_end {
                return match &b.data {
                    Ok(words) => {
                        let from = usize::from(address - b.start);
                        words.get(from..from + usize::from(width)).ok_or(Quality::DecodeError)
                    }
                    Err(q) => Err(q.clone()),
                };
            }
        }
        Err(Quality::DecodeError)
    }
}

impl Profile {
    /// The widest point, in registers: a device's per-request cap must hold it.
    pub fn widest_register_point(&self) -> u16 {
        self.points.iter().filter(|p| !p.table.is_bits()).map(|p| p.width()).max().unwrap_or(0)
    }
}

/// The profiles shipped inside the binary: (name, TOML source).
pub const BUILTIN: &[(&str, &str)] = &[
    ("eastron-sdm630", include_str!("../../profiles/eastron-sdm630.toml")),
    ("eastron-sdm120", include_str!("../../profiles/eastron-sdm120.toml")),
    ("tuf-2000m", include_str!("../../profiles/tuf-2000m.toml")),
    ("analog-4-20ma", include_str!("../../profiles/analog-4-20ma.toml")),
    ("valve-actuator", include_str!("../../profiles/valve-actuator.toml")),
    ("water-quality-analyser", include_str!("../../profiles/water-quality-analyser.toml")),
    ("dlt645-single-phase", include_str!("../../profiles/dlt645-single-phase.toml")),
    ("dlt645-three-phase", include_str!("../../profiles/dlt645-three-phase.toml")),
    ("dlt645-1997", include_str!("../../profiles/dlt645-1997.toml")),
    ("cjt188-cold-water", include_str!("../../profiles/cjt188-cold-water.toml")),
];

/// Parses a register-map number such as 30001 or 400010 into (table, 0-based address).
pub fn parse_modicon(register: i64) -> Option<(Table, u16)> {
    let (table, base) = match register {
        1..=9_999 => (Table::Coil, 1),
        10_001..=19_999 => (Table::Discrete, 10_001),
        30_001..=39_999 => (Table::Input, 30_001),
        40_001..=49_999 => (Table::Holding, 40_001),
        100_001..=165_536 => (Table::Discrete, 100_001),
        300_001..=365_536 => (Table::Input, 300_001),
        400_001..=465_536 => (Table::Holding, 400_001),
        _ => return None,
    };
    u16::try_from(register - base).ok().map(|a| (table, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_are_valid_and_pass_their_vectors() {
        let mut d = crate::diag::Diagnostics::default();
        let all = crate::modbus::profile_file::builtin_profiles(&mut d);
        assert!(d.items.is_empty(), "{:#?}", d.items);
        assert_eq!(all.len(), BUILTIN.len());
        for p in &all {
            assert!(!p.vectors.is_empty(), "{} has no test vector", p.name);
            let checked: usize = p.vectors.iter().map(|v| v.expect.len()).sum();
            assert!(checked >= 3, "{} checks only {checked} values", p.name);
        }
    }

    #[test]
    fn modicon_numbers() {
        assert_eq!(parse_modicon(1), Some((Table::Coil, 0)));
        assert_eq!(parse_modicon(10_001), Some((Table::Discrete, 0)));
        assert_eq!(parse_modicon(30_001), Some((Table::Input, 0)));
        assert_eq!(parse_modicon(30_343), Some((Table::Input, 342)));
        assert_eq!(parse_modicon(40_001), Some((Table::Holding, 0)));
        assert_eq!(parse_modicon(401_438), Some((Table::Holding, 1437)));
        assert_eq!(parse_modicon(465_536), Some((Table::Holding, 65_535)));
        assert_eq!(parse_modicon(20_001), None);
        assert_eq!(parse_modicon(0), None);
    }

    #[test]
    fn image_lookup_reports_the_failure_of_the_block() {
        let mut img = RegisterImage::default();
        img.push(Table::Input, 10, 4, Ok(vec![1, 2, 3, 4]));
        img.push(Table::Holding, 0, 2, Err(Quality::Exception(2)));
        assert_eq!(img.get(Table::Input, 11, 2), Ok(&[2u16, 3][..]));
        assert_eq!(img.get(Table::Input, 12, 4), Err(Quality::DecodeError));
        assert_eq!(img.get(Table::Holding, 0, 2), Err(Quality::Exception(2)));
    }
}

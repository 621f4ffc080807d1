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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::config::diag::Diagnostics;
use crate::config::raw::{RawPoint, RawProfile, RawVector};
use crate::model::{Quality, Quantity};

use super::decode::{self, Decoded};

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
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vector {
    pub description: String,
    pub image: RegisterImage,
    pub expect: BTreeMap<String, f64>,
    pub expect_quality: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: Arc<str>,
    pub description: String,
    pub points: Vec<Point>,
    pub vectors: Vec<Vector>,
    /// The TOML text of a built-in profile, for `profiles show`.
    pub source: Option<&'static str>,
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
    /// Decodes every point against what was read. The result is index-aligned with
    /// `self.points`.
    pub fn decode(&self, image: &RegisterImage) -> Vec<Decoded> {
        let raw: Vec<Result<f64, Quality>> = self
            .points
            .iter()
            .map(|p| {
                let words = image.get(p.table, p.address, p.width())?;
                decode::raw_register_value(words, p.data_type, p.order).ok_or(Quality::DecodeError)
            })
            .collect();
        // Exponent points are plain points (validation forbids chains), so one pass over
        // them first is enough.
        let plain: Vec<Option<Decoded>> = self
            .points
            .iter()
            .zip(&raw)
            .map(|(p, r)| match (p.exponent_from, r) {
                (None, Ok(v)) => Some(decode::apply(p, *v, None)),
                (None, Err(q)) => Some(Decoded { value: None, quality: q.clone() }),
                (Some(_), _) => None,
            })
            .collect();
        self.points
            .iter()
            .zip(raw)
            .zip(&plain)
            .map(|((p, r), done)| {
                if let Some(d) = done {
                    return d.clone();
                }
                let exponent = p.exponent_from.and_then(|i| plain.get(i).cloned().flatten()).and_then(|d| {
                    if d.quality.is_good() {
                        d.value
                    } else {
                        None
                    }
                });
                match r {
                    Ok(v) => decode::apply(p, v, Some(exponent)),
                    Err(q) => Decoded { value: None, quality: q },
                }
            })
            .collect()
    }

    /// Runs the profile's test vectors; returns one sentence per mismatch.
    pub fn check_vectors(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for (vi, v) in self.vectors.iter().enumerate() {
            let decoded = self.decode(&v.image);
            let label = if v.description.is_empty() { format!("vector {vi}") } else { v.description.clone() };
            for (i, p) in self.points.iter().enumerate() {
                let d = &decoded[i];
                let want_q = v.expect_quality.get(&*p.name).map(String::as_str);
                if let Some(want) = v.expect.get(&*p.name) {
                    let ok = d.value.is_some_and(|got| (got - want).abs() <= want.abs() * 1e-6 + 1e-9);
                    if !ok {
                        failures.push(format!(
                            "profile {}: {label}: point {} decoded to {:?}, expected {want}",
                            self.name, p.name, d.value
                        ));
                    }
                    let want_code = want_q.unwrap_or("good");
                    if d.quality.code() != want_code {
                        failures.push(format!(
                            "profile {}: {label}: point {} has quality {}, expected {want_code}",
                            self.name,
                            p.name,
                            d.quality.code()
                        ));
                    }
                } else if let Some(want_code) = want_q {
                    if d.quality.code() != want_code {
                        failures.push(format!(
                            "profile {}: {label}: point {} has quality {}, expected {want_code}",
                            self.name,
                            p.name,
                            d.quality.code()
                        ));
                    }
                }
            }
        }
        failures
    }

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
];

/// Parses and validates the built-in profiles. Problems are reported under
/// `builtin profile NAME` (a test keeps them at zero).
pub fn builtin_profiles(diags: &mut Diagnostics) -> Vec<Profile> {
    let mut out = Vec::new();
    for (name, src) in BUILTIN {
        let path = format!("builtin profile {name}");
        let parsed = config::Config::builder()
            .add_source(config::File::from_str(src, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize::<RawProfile>());
        match parsed {
            Ok(raw) => {
                if let Some(mut p) = validate_profile(&raw, &path, diags) {
                    p.source = Some(src);
                    out.push(p);
                }
            }
            Err(e) => diags.error(path, e.to_string()),
        }
    }
    out
}

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

fn validate_point(raw: &RawPoint, path: &str, diags: &mut Diagnostics) -> Option<(Point, Option<String>)> {
    let before = diags.items.len();
    let name = raw.name.clone().unwrap_or_default();
    if name.is_empty() {
        diags.error(format!("{path}.name"), "every point needs a name");
    }
    let location = match (&raw.table, raw.address, raw.register) {
        (_, _, Some(reg)) if raw.table.is_some() || raw.address.is_some() => {
            diags.error(
                format!("{path}.register"),
                format!("give either `register = {reg}` or `table` and `address`, not both"),
            );
            None
        }
        (_, _, Some(reg)) => match parse_modicon(reg) {
            Some(loc) => Some(loc),
            None => {
                diags.error(
                    format!("{path}.register"),
                    format!("{reg} is not a register-map number (00001–09999 coils, 10001–19999 discrete inputs, 30001–39999 input registers, 40001–49999 holding registers, or the six-digit forms)"),
                );
                None
            }
        },
        (table, address, None) => {
            let t = match table.as_deref() {
                Some(t) => match Table::parse(t) {
                    Some(t) => Some(t),
                    None => {
                        diags.error(
                            format!("{path}.table"),
                            format!("unknown table `{t}`; use coil, discrete, input or holding"),
                        );
                        None
                    }
                },
                None => {
                    diags.error(
                        format!("{path}.table"),
                        "missing: which table holds the point (coil, discrete, input or holding)?",
                    );
                    None
                }
            };
            let a = match address {
                Some(a) => match u16::try_from(a) {
                    Ok(a) => Some(a),
                    Err(_) => {
                        diags.error(
                            format!("{path}.address"),
                            format!("{a} is outside 0..=65535 (addresses are 0-based protocol addresses)"),
                        );
                        None
                    }
                },
                None => {
                    diags.error(
                        format!("{path}.address"),
                        "missing: the 0-based protocol address (or use `register = 40001` style)",
                    );
                    None
                }
            };
            t.zip(a)
        }
    };
    let bit = match raw.bit {
        Some(b) if (0..=15).contains(&b) => Some(b as u8),
        Some(b) => {
            diags.error(format!("{path}.bit"), format!("bit {b} does not exist in a 16-bit register; use 0..=15"));
            None
        }
        None => None,
    };
    let is_bits_table = location.map(|(t, _)| t.is_bits());
    let type_name =
        raw.data_type.clone().unwrap_or_else(|| if is_bits_table == Some(true) { "bool".into() } else { "u16".into() });
    let data_type = match DataType::parse(&type_name, bit) {
        Some(t) => Some(t),
        None if type_name == "bit" => {
            diags.error(format!("{path}.bit"), "`type = \"bit\"` needs `bit = N` (0 = least significant)");
            None
        }
        None => {
            diags.error(
                format!("{path}.type"),
                format!("unknown type `{type_name}`; use bool, bit, u16, i16, u32, i32, u64, i64, f32, f64 or i32_f32"),
            );
            None
        }
    };
    if raw.bit.is_some() && !matches!(data_type, Some(DataType::Bit(_)) | None) {
        diags.error(format!("{path}.bit"), format!("`bit` only applies to `type = \"bit\"`, not {type_name}"));
    }
    if let (Some((table, address)), Some(dt)) = (location, data_type) {
        if table.is_bits() && dt != DataType::Bool {
            diags.error(
                format!("{path}.type"),
                format!(
                    "a {} is a single bit; it cannot hold a {} (use type = \"bool\", or read a register table)",
                    table.as_str(),
                    dt.name()
                ),
            );
        }
        if !table.is_bits() && u32::from(address) + u32::from(dt.registers()) > 65_536 {
            diags.error(
                format!("{path}.address"),
                format!(
                    "a {} at {address} needs {} registers and runs past the last address 65535",
                    dt.name(),
                    dt.registers()
                ),
            );
        }
    }
    let order = match raw.order.as_deref() {
        None => WordOrder::Abcd,
        Some(o) => WordOrder::parse(o).unwrap_or_else(|| {
            diags.error(format!("{path}.order"), format!("unknown order `{o}`; use ABCD, CDAB, BADC or DCBA"));
            WordOrder::Abcd
        }),
    };
    let quantity = match raw.quantity.as_deref() {
        Some(q) => Quantity::parse(q).or_else(|| {
            let all: Vec<&str> = Quantity::ALL.iter().map(|q| q.as_str()).collect();
            diags.error(format!("{path}.quantity"), format!("unknown quantity `{q}`; use one of {}", all.join(", ")));
            None
        }),
        None => {
            diags.error(
                format!("{path}.quantity"),
                "missing: what the point measures (e.g. water_volume, pressure, status)",
            );
            None
        }
    };
    let scale = raw.scale.unwrap_or(1.0);
    if !scale.is_finite() || scale == 0.0 {
        diags.error(format!("{path}.scale"), format!("{scale} is not a usable scale (finite, non-zero)"));
    }
    let offset = raw.offset.unwrap_or(0.0);
    if !offset.is_finite() {
        diags.error(format!("{path}.offset"), "the offset must be a finite number");
    }
    if let (Some(lo), Some(hi)) = (raw.min, raw.max) {
        if lo > hi {
            diags.error(format!("{path}.min"), format!("min {lo} is above max {hi}"));
        }
    }
    let exponent_offset = match raw.exponent_offset.unwrap_or(0) {
        e @ -12..=12 => e as i32,
        e => {
            diags.error(format!("{path}.exponent_offset"), format!("{e} is outside -12..=12"));
            0
        }
    };
    if raw.exponent_offset.is_some() && raw.exponent_from.is_none() {
        diags.error(format!("{path}.exponent_offset"), "only meaningful with `exponent_from`");
    }
    let transform = match &raw.current_loop {
        None => Transform::None,
        Some(l) => {
            let p = format!("{path}.current_loop");
            let (low, high) = match l.range.as_deref() {
                Some([lo, hi]) if lo.is_finite() && hi.is_finite() && lo != hi => (*lo, *hi),
                _ => {
                    diags.error(
                        format!("{p}.range"),
                        "needs two different numbers: the engineering value at 4 mA and at 20 mA, e.g. [0.0, 1.6]",
                    );
                    (0.0, 1.0)
                }
            };
            let fault_below = l.fault_below.unwrap_or(3.6);
            let fault_above = l.fault_above.unwrap_or(21.0);
            if !(fault_below < 4.0 && fault_above > 20.0) {
                diags.error(
                    p,
                    format!(
                        "fault_below ({fault_below}) must be under 4 mA and fault_above ({fault_above}) over 20 mA"
                    ),
                );
            }
            Transform::CurrentLoop { low, high, fault_below, fault_above }
        }
    };
    if diags.items.len() > before {
        return None;
    }
    let (table, address) = location?;
    Some((
        Point {
            name: name.into(),
            table,
            address,
            data_type: data_type?,
            order,
            scale,
            offset,
            unit: raw.unit.clone().unwrap_or_default().into(),
            quantity: quantity?,
            min: raw.min,
            max: raw.max,
            exponent_from: None,
            exponent_offset,
            transform,
            description: raw.description.clone().unwrap_or_default(),
        },
        raw.exponent_from.clone(),
    ))
}

fn validate_vector(
    raw: &RawVector,
    names: &HashMap<&str, usize>,
    path: &str,
    diags: &mut Diagnostics,
) -> Option<Vector> {
    let mut image = RegisterImage::default();
    let mut ok = true;
    for (i, b) in raw.registers.iter().enumerate() {
        let bp = format!("{path}.registers[{i}]");
        let table = b.table.as_deref().and_then(Table::parse);
        let start = b.address.and_then(|a| u16::try_from(a).ok());
        let words: Option<Vec<u16>> = b.values.iter().map(|v| u16::try_from(*v).ok()).collect();
        match (table, start, words) {
            (Some(t), Some(s), Some(w)) if u32::from(s) + w.len() as u32 <= 65_536 => {
                image.push(t, s, w.len() as u16, Ok(w));
            }
            _ => {
                diags.error(
                    bp,
                    "needs a table, a 0-based address and values that are 16-bit register contents (0..=65535)",
                );
                ok = false;
            }
        }
    }
    for name in raw.expect.keys().chain(raw.expect_quality.keys()) {
        if !names.contains_key(name.as_str()) {
            diags.error(format!("{path}.expect.{name}"), format!("the profile has no point `{name}`"));
            ok = false;
        }
    }
    ok.then(|| Vector {
        description: raw.description.clone().unwrap_or_default(),
        image,
        expect: raw.expect.clone(),
        expect_quality: raw.expect_quality.clone(),
    })
}

/// Validates a profile as written, pushing every problem under `path`.
pub fn validate_profile(raw: &RawProfile, path: &str, diags: &mut Diagnostics) -> Option<Profile> {
    let before = diags.items.len();
    let name = raw.name.clone().unwrap_or_default();
    if name.is_empty() {
        diags.error(format!("{path}.name"), "every profile needs a name");
    }
    if raw.points.is_empty() {
        diags.error(format!("{path}.points"), "a profile needs at least one point");
    }
    let mut points = Vec::new();
    let mut exps = Vec::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, rp) in raw.points.iter().enumerate() {
        let pp = format!("{path}.points[{i}]");
        if let Some(n) = rp.name.as_deref() {
            if let Some(first) = names.insert(n, i) {
                diags.error(format!("{pp}.name"), format!("point `{n}` is already defined at points[{first}]"));
            }
        }
        if let Some((p, exp)) = validate_point(rp, &pp, diags) {
            points.push((i, p));
            exps.push(exp);
        }
    }
    // Resolve exponent references by name once every point is known.
    let index_of: HashMap<String, usize> =
        points.iter().enumerate().map(|(k, (_, p))| (p.name.to_string(), k)).collect();
    for k in 0..points.len() {
        let Some(target) = exps[k].clone() else { continue };
        let pp = format!("{path}.points[{}].exponent_from", points[k].0);
        match index_of.get(&target) {
            None => diags.error(pp, format!("no point `{target}` in this profile")),
            Some(&t) if t == k => diags.error(pp, "a point cannot be its own exponent"),
            Some(&t) if exps[t].is_some() => diags
                .error(pp, format!("`{target}` takes its own exponent from another point; chains are not supported")),
            Some(&t) => points[k].1.exponent_from = Some(t),
        }
    }
    // Overlaps: two value points may not share a register (or bit); bit points may share
    // a register with each other and with a value point (a status word and its flags).
    let mut spans: Vec<(Table, u32, u32, usize, &Point)> = points
        .iter()
        .filter(|(_, p)| !matches!(p.data_type, DataType::Bit(_)))
        .map(|(i, p)| (p.table, u32::from(p.address), u32::from(p.address) + u32::from(p.width()), *i, p))
        .collect();
    spans.sort_by_key(|s| (s.0, s.1));
    for w in spans.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.0 == b.0 && b.1 < a.2 {
            diags.error(
                format!("{path}.points[{}]", b.3),
                format!(
                    "`{}` ({} {}..{}) overlaps `{}` ({} {}..{})",
                    b.4.name,
                    b.0.as_str(),
                    b.1,
                    b.2 - 1,
                    a.4.name,
                    a.0.as_str(),
                    a.1,
                    a.2 - 1
                ),
            );
        }
    }
    let mut bits: HashMap<(Table, u16, u8), &str> = HashMap::new();
    for (i, p) in &points {
        if let DataType::Bit(n) = p.data_type {
            if let Some(other) = bits.insert((p.table, p.address, n), &p.name) {
                diags.error(format!("{path}.points[{i}]"), format!("`{}` reads the same bit as `{other}`", p.name));
            }
        }
    }
    let vectors: Vec<Vector> = raw
        .vectors
        .iter()
        .enumerate()
        .filter_map(|(i, v)| validate_vector(v, &names, &format!("{path}.vectors[{i}]"), diags))
        .collect();
    if diags.items.len() > before {
        return None;
    }
    let profile = Profile {
        name: name.into(),
        description: raw.description.clone().unwrap_or_default(),
        points: points.into_iter().map(|(_, p)| p).collect(),
        vectors,
        source: None,
    };
    for f in profile.check_vectors() {
        diags.error(format!("{path}.vectors"), f);
    }
    Some(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_are_valid_and_pass_their_vectors() {
        let mut d = Diagnostics::default();
        let all = builtin_profiles(&mut d);
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

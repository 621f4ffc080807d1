//! Profiles as written (TOML, built-in or in the configuration) → validated [`Profile`]s,
//! with every problem reported under its path and the test vectors run.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::profile::*;
use crate::diag::Diagnostics;
use crate::model::Quantity;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    pub name: Option<String>,
    /// `modbus` (default), `dlt645-2007`, `dlt645-1997` or `cjt188`.
    pub protocol: Option<String>,
    /// CJ/T 188: the meter type (`cold_water`, `hot_water`, …, or a byte such as `0x10`).
    pub meter_type: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub points: Vec<RawPoint>,
    /// Test vectors: raw registers with the values they must decode to.
    #[serde(default)]
    pub vectors: Vec<RawVector>,
    /// The device's electrical ratings (defaults of the electrical rules).
    pub ratings: Option<RawRatings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRatings {
    /// Nominal phase-to-neutral voltage, V.
    pub nominal_voltage: Option<f64>,
    /// Allowed deviation from nominal, percent: [below, above], e.g. [-10, 7].
    pub voltage_tolerance: Option<Vec<f64>>,
    /// The highest current the meter is rated for, A.
    pub max_current: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoint {
    pub name: Option<String>,
    /// DL/T 645: the data identifier, `00010000` (2007) or `9010` (1997).
    pub id: Option<String>,
    /// CJ/T 188: the field of the meter-data answer (`total`, `settled`, `valve_closed`,
    /// `battery_low`).
    pub field: Option<String>,
    pub table: Option<String>,
    pub address: Option<i64>,
    /// Alternative to table + address: the 1-based "Modicon" number of register maps,
    /// e.g. 30001 (input register 0) or 400010 (holding register 9).
    pub register: Option<i64>,
    #[serde(rename = "type")]
    pub data_type: Option<String>,
    pub bit: Option<i64>,
    pub order: Option<String>,
    pub scale: Option<f64>,
    pub offset: Option<f64>,
    pub unit: Option<String>,
    pub quantity: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub exponent_from: Option<String>,
    pub exponent_offset: Option<i64>,
    pub current_loop: Option<RawCurrentLoop>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCurrentLoop {
    /// Engineering value at 4 mA and at 20 mA.
    pub range: Option<Vec<f64>>,
    pub fault_below: Option<f64>,
    pub fault_above: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVector {
    pub description: Option<String>,
    #[serde(default)]
    pub registers: Vec<RawVectorBlock>,
    /// point name → expected engineering value.
    #[serde(default)]
    pub expect: BTreeMap<String, f64>,
    /// point name → expected quality code (`out_of_range`, …); default `good`.
    #[serde(default)]
    pub expect_quality: BTreeMap<String, String>,
    /// A meter profile's vector: point name (DL/T 645) or `901F` (CJ/T 188) → the
    /// answer's bytes in hex, 33H removed.
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
    /// A meter profile's vector: the gateway's local time when the meter answered
    /// (`YYYY-MM-DD hh:mm:ss`), for a clock point's offset.
    pub at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVectorBlock {
    pub table: Option<String>,
    pub address: Option<i64>,
    #[serde(default)]
    pub values: Vec<i64>,
}

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

fn validate_point(raw: &RawPoint, path: &str, diags: &mut Diagnostics) -> Option<(Point, Option<String>)> {
    let before = diags.items.len();
    refuse_meter_fields(raw, path, diags);
    let name = raw.name.clone().unwrap_or_default();
    if name.is_empty() {
        diags.error(format!("{path}.name"), "every point needs a name");
    } else if name.chars().any(|c| c == '/' || c == '+' || c == '#' || c.is_whitespace() || c.is_control()) {
        // a point's name is the last level of its MQTT topic: a broker refuses a topic
        // with '+' or '#', and the sink would stall on it
        diags.error(
            format!("{path}.name"),
            format!("`{name}` contains a space, '/', '+' or '#'; point names become MQTT topic levels, use letters, digits, '-', '_' or '.'"),
        );
    }
    let location = location(raw, path, diags);
    let bit = bit(raw, path, diags);
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
    let quantity = quantity(raw, path, diags);
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
    let transform = current_loop(raw, path, diags);
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
            item: None,
        },
        raw.exponent_from.clone(),
    ))
}

/// A Modbus point with a meter point's fields.
fn refuse_meter_fields(raw: &RawPoint, path: &str, diags: &mut Diagnostics) {
    for (field, given) in [("id", raw.id.is_some()), ("field", raw.field.is_some())] {
        if given {
            diags.error(
                format!("{path}.{field}"),
                format!("a Modbus point has no `{field}`; a meter's profile sets protocol = \"dlt645-2007\", \"dlt645-1997\" or \"cjt188\""),
            );
        }
    }
}

/// Where a point is: `register = 40001` style, or `table` and `address`.
fn location(raw: &RawPoint, path: &str, diags: &mut Diagnostics) -> Option<(Table, u16)> {
    match (&raw.table, raw.address, raw.register) {
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
    }
}

/// The bit of a register a `type = "bit"` point reads, 0 the least significant.
fn bit(raw: &RawPoint, path: &str, diags: &mut Diagnostics) -> Option<u8> {
    match raw.bit {
        Some(b) if (0..=15).contains(&b) => Some(b as u8),
        Some(b) => {
            diags.error(format!("{path}.bit"), format!("bit {b} does not exist in a 16-bit register; use 0..=15"));
            None
        }
        None => None,
    }
}

/// What a point measures.
pub(super) fn quantity(raw: &RawPoint, path: &str, diags: &mut Diagnostics) -> Option<Quantity> {
    match raw.quantity.as_deref() {
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
    }
}

/// A 4–20 mA point's scaling and fault limits, or none.
fn current_loop(raw: &RawPoint, path: &str, diags: &mut Diagnostics) -> Transform {
    match &raw.current_loop {
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
    }
}

fn validate_ratings(r: &RawRatings, path: &str, diags: &mut Diagnostics) -> Ratings {
    let positive = |v: Option<f64>, key: &str, diags: &mut Diagnostics| match v {
        Some(x) if x.is_finite() && x > 0.0 => Some(x),
        Some(x) => {
            diags.error(format!("{path}.{key}"), format!("{x} is not a rating (a positive number)"));
            None
        }
        None => None,
    };
    let nominal_voltage = positive(r.nominal_voltage, "nominal_voltage", diags);
    let max_current = positive(r.max_current, "max_current", diags);
    let voltage_tolerance = match r.voltage_tolerance.as_deref() {
        None => None,
        Some([lo, hi]) if lo.is_finite() && hi.is_finite() && *lo < 0.0 && *hi > 0.0 => Some((*lo, *hi)),
        Some(_) => {
            diags.error(
                format!("{path}.voltage_tolerance"),
                "[below, above] in percent of nominal, below negative and above positive, e.g. [-10, 7]",
            );
            None
        }
    };
    Ratings { nominal_voltage, voltage_tolerance, max_current }
}

fn validate_vector(
    raw: &RawVector,
    names: &HashMap<&str, usize>,
    path: &str,
    diags: &mut Diagnostics,
) -> Option<Vector> {
    if !raw.answers.is_empty() {
        diags.error(format!("{path}.answers"), "a Modbus profile's vector gives `registers`, not answers");
    }
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
        answers: None,
        at: None,
    })
}

/// Validates a profile as written, pushing every problem under `path`.
pub fn validate_profile(raw: &RawProfile, path: &str, diags: &mut Diagnostics) -> Option<Profile> {
    if raw.protocol.as_deref().is_some_and(|p| p != "modbus") {
        return super::meter_profile::validate(raw, path, diags);
    }
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
    let ratings =
        raw.ratings.as_ref().map(|r| validate_ratings(r, &format!("{path}.ratings"), diags)).unwrap_or_default();
    if diags.items.len() > before {
        return None;
    }
    let profile = Profile {
        name: name.into(),
        description: raw.description.clone().unwrap_or_default(),
        points: points.into_iter().map(|(_, p)| p).collect(),
        vectors,
        ratings,
        source: None,
        protocol: super::profile::Protocol::Modbus,
    };
    for f in profile.check_vectors() {
        diags.error(format!("{path}.vectors"), f);
    }
    Some(profile)
}

//! Meter profiles: what a DL/T 645 or CJ/T 188 meter is asked for, as data, in the same
//! TOML as a Modbus profile with `protocol` set.
//!
//! ```toml
//! name = "dormitory-meter"
//! protocol = "dlt645-2007"
//! [[points]]
//! name = "energy_import"
//! id = "00010000"          # the identifier; its BCD format comes from the standard
//! [[vectors]]
//! answers = { energy_import = "56 34 12 00" }   # the value's bytes, 33H removed
//! expect = { energy_import = 1234.56 }
//! ```
//!
//! A DL/T 645 point names an identifier the edition defines ([`crate::dlt645::data`]):
//! its quantity and unit default to the standard's, and `scale` turns them into the
//! site's (kW → W, or a CT ratio). A CJ/T 188 point names a field of the meter-data
//! answer (`total`, `settled`, `valve_closed`, `battery_low`, `clock`); its vectors give that
//! answer's DATA under the key `901F`.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;

use super::decode::{apply, Decoded};
use super::profile::{MeterItem, Point, Profile, Protocol, Vector};
use super::profile_file::{RawPoint, RawProfile};
use crate::cjt188::{self, Field};
use crate::diag::Diagnostics;
use crate::dlt645::{data, Edition};
use crate::model::{Quality, Quantity};

/// What a meter answered in one poll, for decoding.
#[derive(Debug, Clone, PartialEq)]
pub enum Answers {
    /// Per point (in the profile's order), the value's bytes or why there are none.
    Dlt645(Vec<Result<Vec<u8>, Quality>>),
    /// The meter-data answer's DATA (from DI0), or why there is none.
    Cjt188(Result<Vec<u8>, Quality>),
}

impl Profile {
    /// The points' values from a meter's answers; `gateway` is the gateway's local time
    /// when they came, against which a clock point reads its offset (without it, a clock
    /// point has no value: a test vector that does not say when it was answered).
    pub fn decode_answers(&self, answers: &Answers, gateway: Option<NaiveDateTime>) -> Vec<Decoded> {
        let none = |q: Quality| Decoded { value: None, quality: q };
        match answers {
            Answers::Dlt645(per_point) => self
                .points
                .iter()
                .enumerate()
                .map(|(i, p)| match (p.item, per_point.get(i)) {
                    (Some(MeterItem::Dlt645 { format: data::TIME, .. }), Some(Ok(bytes))) => {
                        match (data::time_of_day(bytes), gateway) {
                            (Ok(t), Some(g)) => apply(p, data::offset_of_day(t, g.time()), None),
                            _ => none(Quality::DecodeError),
                        }
                    }
                    (Some(MeterItem::Dlt645 { format, .. }), Some(Ok(bytes))) => match data::value(
                        // maximum demand is followed by the time it was reached
                        if format == data::DEMAND { bytes.get(..3).unwrap_or(bytes) } else { bytes },
                        format,
                    ) {
                        Ok(v) => apply(p, v, None),
                        Err(_) => none(Quality::DecodeError),
                    },
                    (_, Some(Err(q))) => none(q.clone()),
                    _ => none(Quality::DecodeError),
                })
                .collect(),
            Answers::Cjt188(Err(q)) => self.points.iter().map(|_| none(q.clone())).collect(),
            Answers::Cjt188(Ok(bytes)) => {
                let parsed = cjt188::parse_data(bytes);
                self.points
                    .iter()
                    .map(|p| match (&parsed, p.item) {
                        (Ok(m), Some(MeterItem::Cjt188(Field::Clock))) => match gateway {
                            Some(g) => apply(p, (m.meter_time - g).num_milliseconds() as f64 / 1000.0, None),
                            None => none(Quality::DecodeError),
                        },
                        (Ok(m), Some(MeterItem::Cjt188(field))) => match m.get(field) {
                            Some(v) => apply(p, v, None),
                            None => none(Quality::OutOfRange),
                        },
                        _ => none(Quality::DecodeError),
                    })
                    .collect()
            }
        }
    }
}

/// One exchange of a meter's poll, for the polling plan: what it reads and the bytes of
/// its request and answer on the line, preambles included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub what: String,
    pub points: Vec<usize>,
    pub request_bytes: u32,
    pub answer_bytes: u32,
}

impl Exchange {
    /// Time on a serial line at `baud` with `bits_per_char`, and the gap after it (the
    /// meter's own turnaround not included).
    pub fn line_time(&self, baud: u32, bits_per_char: u32, gap: std::time::Duration) -> std::time::Duration {
        let chars = f64::from(self.request_bytes + self.answer_bytes);
        std::time::Duration::from_secs_f64(chars * f64::from(bits_per_char) / f64::from(baud.max(1))) + gap
    }
}

impl Profile {
    /// A meter's requests per cycle: one per DL/T 645 identifier, one meter-data read for
    /// a CJ/T 188 meter; none for a Modbus profile (its plan is the planner's).
    pub fn exchanges(&self) -> Vec<Exchange> {
        match self.protocol {
            Protocol::Modbus => Vec::new(),
            Protocol::Dlt645(edition) => {
                let di = match edition {
                    Edition::V2007 => 4,
                    Edition::V1997 => 2,
                };
                self.points
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| match p.item {
                        Some(MeterItem::Dlt645 { di: id, format }) => {
                            let value = u32::from(format.bytes) + if format == data::DEMAND { 5 } else { 0 };
                            // FE×4, 68 A×6 68 C L, DATA, CS 16
                            Some(Exchange {
                                what: format!("read {id:0w$X}", w = 2 * di as usize),
                                points: vec![i],
                                request_bytes: 4 + 12 + di,
                                answer_bytes: 4 + 12 + di + value,
                            })
                        }
                        _ => None,
                    })
                    .collect()
            }
            // FE×2, 68 T A×7 C L, DI0 DI1 SER, DATA (19 bytes in the answer), CS 16
            Protocol::Cjt188 { .. } => vec![Exchange {
                what: "read 901F".into(),
                points: (0..self.points.len()).collect(),
                request_bytes: 2 + 13 + 3,
                answer_bytes: 2 + 13 + 3 + 19,
            }],
        }
    }
}

/// The identifier of a DL/T 645 item as written: 8 hex digits (2007) or 4 (1997).
fn parse_id(s: &str, edition: Edition) -> Option<u32> {
    let digits = match edition {
        Edition::V2007 => 8,
        Edition::V1997 => 4,
    };
    let s = s.trim().trim_start_matches("0x");
    (s.len() == digits).then(|| u32::from_str_radix(s, 16).ok()).flatten()
}

fn meter_type(raw: &RawProfile, path: &str, diags: &mut Diagnostics) -> u8 {
    match raw.meter_type.as_deref() {
        None | Some("cold_water") => cjt188::COLD_WATER,
        Some("hot_water") => cjt188::HOT_WATER,
        Some("drinking_water") => 0x12,
        Some("reclaimed_water") => 0x13,
        Some(s) => match u8::from_str_radix(s.trim_start_matches("0x"), 16) {
            Ok(b) if s.starts_with("0x") => b,
            _ => {
                diags.error(
                    format!("{path}.meter_type"),
                    format!("unknown meter type `{s}`; use cold_water, hot_water, drinking_water, reclaimed_water or a byte such as 0x10"),
                );
                cjt188::COLD_WATER
            }
        },
    }
}

/// Fields of a Modbus point that a meter point does not have.
fn refuse_modbus_fields(rp: &RawPoint, protocol: Protocol, pp: &str, diags: &mut Diagnostics) {
    let given = [
        ("table", rp.table.is_some()),
        ("address", rp.address.is_some()),
        ("register", rp.register.is_some()),
        ("type", rp.data_type.is_some()),
        ("bit", rp.bit.is_some()),
        ("order", rp.order.is_some()),
        ("offset", rp.offset.is_some()),
        ("exponent_from", rp.exponent_from.is_some()),
        ("exponent_offset", rp.exponent_offset.is_some()),
        ("current_loop", rp.current_loop.is_some()),
        ("id", rp.id.is_some() && matches!(protocol, Protocol::Cjt188 { .. })),
        ("field", rp.field.is_some() && matches!(protocol, Protocol::Dlt645(_))),
    ];
    for (field, _) in given.iter().filter(|(_, g)| *g) {
        diags.error(format!("{pp}.{field}"), format!("a {} point has no `{field}`", protocol.name()));
    }
}

/// The item a point reads, with the standard's quantity and unit.
fn item_of(
    rp: &RawPoint,
    protocol: Protocol,
    pp: &str,
    diags: &mut Diagnostics,
) -> Option<(MeterItem, Quantity, &'static str)> {
    match protocol {
        Protocol::Dlt645(edition) => {
            let Some(id) = rp.id.as_deref() else {
                diags.error(format!("{pp}.id"), "missing: the data identifier, e.g. id = \"00010000\"");
                return None;
            };
            let found = parse_id(id, edition).and_then(|di| edition.items().iter().find(|i| i.di == di));
            match found {
                Some(i) => Some((MeterItem::Dlt645 { di: i.di, format: i.format }, i.quantity, i.unit)),
                None => {
                    let known: Vec<String> = edition
                        .items()
                        .iter()
                        .map(|i| format!("{:0w$X} {}", i.di, i.name, w = id_width(edition)))
                        .collect();
                    diags.error(
                        format!("{pp}.id"),
                        format!(
                            "`{id}` is not an identifier of {} read here; known: {}",
                            protocol.name(),
                            known.join(", ")
                        ),
                    );
                    None
                }
            }
        }
        Protocol::Cjt188 { .. } => match rp.field.as_deref().map(|f| (f, Field::parse(f))) {
            Some((_, Some(f))) => Some(match f {
                Field::Total | Field::Settled => (MeterItem::Cjt188(f), Quantity::WaterVolume, "m3"),
                Field::ValveClosed => (MeterItem::Cjt188(f), Quantity::ValveClosed, ""),
                Field::BatteryLow => (MeterItem::Cjt188(f), Quantity::Status, ""),
                Field::Clock => (MeterItem::Cjt188(f), Quantity::ClockOffset, "s"),
            }),
            Some((f, None)) => {
                diags.error(
                    format!("{pp}.field"),
                    format!("unknown field `{f}`; use total, settled, valve_closed, battery_low or clock"),
                );
                None
            }
            None => {
                diags.error(format!("{pp}.field"), "missing: total, settled, valve_closed, battery_low or clock");
                None
            }
        },
        Protocol::Modbus => None,
    }
}

fn id_width(edition: Edition) -> usize {
    match edition {
        Edition::V2007 => 8,
        Edition::V1997 => 4,
    }
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return None;
    }
    (0..digits.len()).step_by(2).map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok()).collect()
}

/// A meter profile from its TOML form, every problem reported under its path.
pub fn validate(raw: &RawProfile, path: &str, diags: &mut Diagnostics) -> Option<Profile> {
    let before = diags.items.len();
    let name = raw.name.clone().unwrap_or_default();
    if name.is_empty() {
        diags.error(format!("{path}.name"), "every profile needs a name");
    }
    let given = raw.protocol.as_deref().unwrap_or_default();
    let Some(protocol) = Protocol::parse(given) else {
        diags.error(
            format!("{path}.protocol"),
            format!("unknown protocol `{given}`; use modbus, dlt645-2007, dlt645-1997 or cjt188"),
        );
        return None;
    };
    let protocol = match protocol {
        Protocol::Cjt188 { .. } => Protocol::Cjt188 { meter_type: meter_type(raw, path, diags) },
        p => {
            if raw.meter_type.is_some() {
                diags.error(format!("{path}.meter_type"), "only a CJ/T 188 profile has a meter type");
            }
            p
        }
    };
    if raw.points.is_empty() {
        diags.error(format!("{path}.points"), "a profile needs at least one point");
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut points = Vec::new();
    for (i, rp) in raw.points.iter().enumerate() {
        let pp = format!("{path}.points[{i}]");
        let n = rp.name.as_deref().unwrap_or_default();
        if n.is_empty() || n.chars().any(|c| c == '/' || c == '+' || c == '#' || c.is_whitespace()) {
            diags.error(format!("{pp}.name"), "every point needs a name without spaces, '/', '+' or '#'");
        } else if let Some(first) = names.insert(n, i) {
            diags.error(format!("{pp}.name"), format!("point `{n}` is already defined at points[{first}]"));
        }
        refuse_modbus_fields(rp, protocol, &pp, diags);
        let Some((item, quantity, unit)) = item_of(rp, protocol, &pp, diags) else { continue };
        let quantity =
            if rp.quantity.is_some() { super::profile_file::quantity(rp, &pp, diags) } else { Some(quantity) };
        let scale = rp.scale.unwrap_or(1.0);
        if !scale.is_finite() || scale == 0.0 {
            diags.error(format!("{pp}.scale"), format!("{scale} is not a usable scale (finite, non-zero)"));
        }
        let Some(quantity) = quantity else { continue };
        let mut p = Point::meter(n, item, quantity, rp.unit.as_deref().unwrap_or(unit), scale);
        (p.min, p.max, p.description) = (rp.min, rp.max, rp.description.clone().unwrap_or_default());
        points.push(p);
    }
    let vectors = vectors(raw, protocol, &points, path, diags);
    if diags.items.len() > before {
        return None;
    }
    let profile = Profile {
        name: name.into(),
        description: raw.description.clone().unwrap_or_default(),
        points,
        vectors,
        ratings: Default::default(),
        source: None,
        protocol,
    };
    for f in profile.check_vectors() {
        diags.error(format!("{path}.vectors"), f);
    }
    Some(profile)
}

fn vectors(raw: &RawProfile, protocol: Protocol, points: &[Point], path: &str, diags: &mut Diagnostics) -> Vec<Vector> {
    let mut out = Vec::new();
    for (vi, rv) in raw.vectors.iter().enumerate() {
        let vp = format!("{path}.vectors[{vi}]");
        if !rv.registers.is_empty() {
            diags.error(format!("{vp}.registers"), "a meter's vector gives `answers`, not registers");
        }
        let mut bytes: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        for (key, hex) in &rv.answers {
            match hex_bytes(hex) {
                Some(b) => drop(bytes.insert(key, b)),
                None => diags.error(format!("{vp}.answers.{key}"), format!("`{hex}` is not hex bytes")),
            }
        }
        let answers = match protocol {
            Protocol::Cjt188 { .. } => Answers::Cjt188(bytes.remove("901F").ok_or(Quality::DecodeError)),
            _ => Answers::Dlt645(points.iter().map(|p| bytes.remove(&*p.name).ok_or(Quality::DecodeError)).collect()),
        };
        for key in bytes.keys() {
            diags.error(format!("{vp}.answers.{key}"), "no point of this profile reads it");
        }
        let at = rv.at.as_deref().and_then(|s| {
            let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok();
            if t.is_none() {
                diags.error(format!("{vp}.at"), format!("`{s}` is not a local time such as \"2026-12-05 15:30:09\""));
            }
            t
        });
        let clocks = points.iter().filter(|p| p.quantity == Quantity::ClockOffset && rv.expect.contains_key(&*p.name));
        if at.is_none() && rv.at.is_none() && clocks.count() > 0 {
            diags.error(
                format!("{vp}.at"),
                "a vector that expects a clock offset says when the meter answered: at = \"YYYY-MM-DD hh:mm:ss\"",
            );
        }
        out.push(Vector {
            description: rv.description.clone().unwrap_or_default(),
            image: Default::default(),
            expect: rv.expect.clone(),
            expect_quality: rv.expect_quality.clone(),
            answers: Some(answers),
            at,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> (Option<Profile>, Diagnostics) {
        let raw: RawProfile = toml::from_str(toml).unwrap();
        let mut d = Diagnostics::default();
        (validate(&raw, "profile", &mut d), d)
    }

    #[test]
    fn a_dlt645_profile_reads_its_vectors() {
        let (p, d) = parse(
            r#"
name = "m"
protocol = "dlt645-2007"
[[points]]
name = "energy_import"
id = "00010000"
[[points]]
name = "power"
id = "02030000"
scale = 1000
unit = "W"
[[vectors]]
answers = { energy_import = "56 34 12 00", power = "50 12 81" }
expect = { energy_import = 1234.56, power = -1125.0 }
"#,
        );
        assert!(d.items.is_empty(), "{:#?}", d.items);
        let p = p.unwrap();
        assert_eq!(p.protocol, Protocol::Dlt645(Edition::V2007));
        assert_eq!((p.points[1].quantity, &*p.points[1].unit), (Quantity::ActivePower, "W"));
    }

    #[test]
    fn every_mistake_is_named() {
        let (p, d) = parse(
            r#"
name = "m"
protocol = "dlt645-2007"
meter_type = "cold_water"
[[points]]
name = "a"
id = "9010"
[[points]]
name = "b"
id = "00010000"
table = "input"
field = "total"
[[vectors]]
answers = { b = "zz", c = "00" }
"#,
        );
        assert!(p.is_none());
        let said: Vec<String> = d.items.iter().map(|i| format!("{}: {}", i.path, i.message)).collect();
        for want in [
            "profile.meter_type: only a CJ/T 188",
            "profile.points[0].id: `9010` is not an identifier of DL/T 645-2007",
            "profile.points[1].table: a DL/T 645-2007 point has no `table`",
            "profile.points[1].field",
            "profile.vectors[0].answers.b: `zz` is not hex",
            "profile.vectors[0].answers.c: no point",
        ] {
            assert!(said.iter().any(|s| s.starts_with(want)), "{want} not in {said:#?}");
        }
    }

    #[test]
    fn a_cjt188_profile_and_a_wrong_vector() {
        let text = |expect: f64| {
            format!(
                r#"
name = "w"
protocol = "cjt188"
[[points]]
name = "volume"
field = "total"
[[points]]
name = "valve_closed"
field = "valve_closed"
[[vectors]]
answers = {{ 901F = "90 1F 00 56 34 12 00 2C 00 30 12 00 2C 15 30 09 05 12 26 20 01 00" }}
expect = {{ volume = {expect}, valve_closed = 1 }}
"#
            )
        };
        let (p, d) = parse(&text(1234.56));
        assert!(d.items.is_empty(), "{:#?}", d.items);
        assert_eq!(p.unwrap().protocol, Protocol::Cjt188 { meter_type: 0x10 });
        let (_, d) = parse(&text(1234.0));
        assert!(d.items.iter().any(|i| i.message.contains("point volume decoded to Some(1234.56), expected 1234")));
    }
}

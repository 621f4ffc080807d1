//! tier: fast (needs nothing installed: `scripts/test-fast` runs it)
//!
//! Property-based fuzzing of what a device, a file or a user can hand the gateway: Modbus
//! answers decoded through every type and word order (short, long and failed blocks),
//! configuration text with random damage, CSV import rows, and line protocol / MQTT
//! payloads of odd names. The property is always the same: no panic, and the output keeps
//! its shape (one value per point, one line per reading, valid JSON).
//!
//! In the suite each target runs a few hundred cases; `scripts/fuzz MINUTES` runs them
//! with many more cases and fresh seeds for a set time (figures in BENCHMARKS.md).
//! Failing inputs are kept by proptest under `proptest-regressions/`.

use std::sync::Arc;

use proptest::prelude::*;
use pumphouse::config::Precision;
use pumphouse::modbus::profile::{DataType, Point, Profile, RegisterImage, Table, Transform, WordOrder};
use pumphouse::model::{Quality, Quantity, Reading};

fn data_type() -> impl Strategy<Value = DataType> {
    prop_oneof![
        Just(DataType::Bool),
        (0u8..16).prop_map(DataType::Bit),
        Just(DataType::U16),
        Just(DataType::I16),
        Just(DataType::U32),
        Just(DataType::I32),
        Just(DataType::U64),
        Just(DataType::I64),
        Just(DataType::F32),
        Just(DataType::F64),
        Just(DataType::I32F32),
    ]
}

fn order() -> impl Strategy<Value = WordOrder> {
    prop_oneof![Just(WordOrder::Abcd), Just(WordOrder::Cdab), Just(WordOrder::Badc), Just(WordOrder::Dcba)]
}

fn table() -> impl Strategy<Value = Table> {
    prop_oneof![Just(Table::Coil), Just(Table::Discrete), Just(Table::Input), Just(Table::Holding)]
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![Just(1.0), Just(0.001), Just(-10.0), Just(1e-9), Just(1e12), -1e6f64..1e6]
}

prop_compose! {
    fn point(i: usize)(
        table in table(),
        address in 0u16..40,
        dt in data_type(),
        order in order(),
        scale in finite().prop_filter("non-zero", |s| *s != 0.0),
        offset in finite(),
        range in proptest::option::of((finite(), finite())),
        looped in proptest::option::of((finite(), finite())),
    ) -> Point {
        let dt = if table.is_bits() { DataType::Bool } else { dt };
        let (min, max) = match range { Some((a, b)) => (Some(a.min(b)), Some(a.max(b))), None => (None, None) };
        Point {
            name: format!("p{i}").into(),
            table,
            address,
            data_type: dt,
            order,
            scale,
            offset,
            unit: "".into(),
            quantity: Quantity::Status,
            min,
            max,
            exponent_from: None,
            exponent_offset: 0,
            transform: match looped {
                Some((lo, hi)) if lo != hi => Transform::CurrentLoop { low: lo, high: hi, fault_below: 3.6, fault_above: 21.0 },
                _ => Transform::None,
            },
            description: String::new(),
            item: None,
        }
    }
}

fn block() -> impl Strategy<Value = (Table, u16, Result<Vec<u16>, Quality>)> {
    (
        table(),
        0u16..48,
        prop_oneof![
            // short, exact and long answers, any words
            4 => proptest::collection::vec(any::<u16>(), 0..60).prop_map(Ok),
            // NaN and infinity patterns in every position
            1 => proptest::collection::vec(prop_oneof![Just(0x7fc0u16), Just(0x7f80), Just(0xff80), Just(0xffff), Just(0)], 0..16).prop_map(Ok),
            1 => prop_oneof![Just(Quality::Timeout), Just(Quality::Transport), (0u8..=255).prop_map(Quality::Exception)].prop_map(Err),
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256), ..ProptestConfig::default() })]

    /// A device's answer, whatever it is, decodes to one value per point; a good value is
    /// finite and inside the point's plausible range.
    #[test]
    fn modbus_answers_decode_without_panic(
        points in (1usize..8).prop_flat_map(|n| (0..n).map(point).collect::<Vec<_>>()),
        exponent in proptest::option::of((0usize..8, -12i32..12)),
        blocks in proptest::collection::vec(block(), 0..6),
    ) {
        let mut points = points;
        if let Some((from, off)) = exponent {
            // a power-of-ten exponent from another point (as a device's unit register)
            let n = points.len();
            if n > 1 && from % n != 0 {
                points[0].exponent_from = Some(from % n);
                points[0].exponent_offset = off;
            }
        }
        let profile = Profile {
            name: "fuzz".into(),
            description: String::new(),
            points,
            vectors: Vec::new(),
            ratings: Default::default(),
            source: None,
            protocol: Default::default(),
        };
        let mut image = RegisterImage::default();
        for (t, start, data) in blocks {
            let count = match &data { Ok(w) => w.len() as u16, Err(_) => 4 };
            image.push(t, start, count, data);
        }
        let decoded = profile.decode(&image);
        prop_assert_eq!(decoded.len(), profile.points.len());
        for (p, d) in profile.points.iter().zip(&decoded) {
            if d.quality == Quality::Good {
                let v = d.value.expect("a good reading has a value");
                prop_assert!(v.is_finite(), "{} decoded to {v}", p.name);
                if let (Some(lo), Some(hi)) = (p.min, p.max) {
                    prop_assert!(v >= lo && v <= hi, "{} = {v} outside {lo}..{hi} yet good", p.name);
                }
            }
        }
    }

    /// Any reading names (units, points) give one line of line protocol ending in a newline
    /// with no other raw newline, and JSON payloads that parse back to the same text.
    #[test]
    fn odd_names_stay_one_line_and_valid_json(
        unit in "\\PC{0,12}",
        point in "\\PC{1,12}",
        value in proptest::option::of(any::<f64>()),
        code in 0u8..=255,
    ) {
        let r = Reading {
            ts: chrono::DateTime::from_timestamp_millis(1_764_000_000_000).expect("time"),
            site: "s".into(),
            zone: "z=1, a b".into(),
            device: "d\\\"x".into(),
            point: Arc::from(point.as_str()),
            quantity: Quantity::Pressure,
            value,
            unit: Arc::from(unit.as_str()),
            quality: if code % 2 == 0 { Quality::Good } else { Quality::Exception(code) },
        };
        let mut out = String::new();
        pumphouse::sinks::influx::line(&r, Precision::Nanoseconds, &mut out);
        prop_assert!(out.ends_with('\n'));
        prop_assert_eq!(out.matches('\n').count(), 1, "{:?}", out);
        prop_assert!(!out.contains('\r'), "{:?}", out);
        let v: serde_json::Value = serde_json::from_str(&pumphouse::sinks::mqtt::payload(&r)).expect("point payload is JSON");
        prop_assert_eq!(v["unit"].as_str(), Some(unit.as_str()));
        let one = [&r];
        let d: serde_json::Value = serde_json::from_str(&pumphouse::sinks::mqtt::device_payload(&one)).expect("device payload is JSON");
        prop_assert!(d["points"].get(point.as_str()).is_some(), "{}", d);
    }

    /// Configuration text with random damage (a line dropped, doubled or cut, a character
    /// changed) is either valid or refused with diagnostics, never a panic.
    #[test]
    fn damaged_configuration_is_refused_not_a_panic(
        edits in proptest::collection::vec((0usize..400, 0u8..4, any::<char>()), 1..6),
    ) {
        let mut lines: Vec<String> = EXAMPLE.lines().map(String::from).collect();
        for (at, kind, c) in edits {
            let i = at % lines.len().max(1);
            match kind {
                0 => { lines.remove(i); }
                1 => { let l = lines[i].clone(); lines.insert(i, l); }
                2 => { let l = &mut lines[i]; let cut = l.char_indices().nth(l.chars().count() / 2).map(|x| x.0).unwrap_or(0); l.truncate(cut); }
                _ => { let l = &mut lines[i]; let mut cs: Vec<char> = l.chars().collect(); if !cs.is_empty() { let k = (c as usize) % cs.len(); cs[k] = c; } *l = cs.into_iter().collect(); }
            }
            if lines.is_empty() { break; }
        }
        let text = lines.join("\n");
        if let Err(e) = pumphouse::config::load_str(&text, pumphouse::config::Mode::Check) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}

const EXAMPLE: &str = include_str!("../config/pumphouse.example.toml");

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse::<u32>().ok()).map(|c| (c / 16).max(8)).unwrap_or(24), ..ProptestConfig::default() })]

    /// CSV rows of any shape are imported or refused with their line number; every row is
    /// accounted for.
    #[test]
    fn csv_rows_are_imported_or_refused_with_their_line(
        rows in proptest::collection::vec(
            (
                prop_oneof![Just("2026-03-01T10:00:00+08:00".to_string()), Just("2026-03-01 10:00".to_string()), "\\PC{0,30}"],
                prop_oneof![Just("m1".to_string()), Just("nope".to_string()), "\\PC{0,8}"],
                prop_oneof![Just("positive_total".to_string()), Just("flow_rate".to_string()), "\\PC{0,8}"],
                prop_oneof![Just("12.5".to_string()), Just("NaN".to_string()), Just("-1e309".to_string()), "\\PC{0,10}"],
            ),
            1..20,
        ),
        extra in proptest::option::of("\\PC{0,20}"),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg_text = format!(
            "[site]\nname = \"s\"\ntimezone = \"Asia/Shanghai\"\n[store]\npath = \"{}\"\n[[buses]]\nname = \"b\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n[[devices]]\nname = \"m1\"\nbus = \"b\"\nunit = 1\nprofile = \"tuf-2000m\"\n",
            dir.path().join("s.db").display()
        );
        let (cfg, _) = pumphouse::config::load_str(&cfg_text, pumphouse::config::Mode::Check).expect("config");
        let mut csv = String::from("ts,device,point,value\n");
        for (ts, d, p, v) in &rows {
            let field = |s: &str| if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() };
            csv.push_str(&format!("{},{},{},{}\n", field(ts), field(d), field(p), field(v)));
        }
        if let Some(e) = extra {
            csv.push_str(&e);
        }
        let path = dir.path().join("rows.csv");
        std::fs::write(&path, csv).expect("write");
        match pumphouse::cli::import::import(&cfg, &path, false) {
            Ok(r) => {
                prop_assert_eq!(r.imported + r.already_present + r.bad.len(), r.rows, "{:?}", r);
                prop_assert!(r.bad.iter().all(|(line, why)| *line >= 2 && !why.is_empty()), "{:?}", r.bad);
            }
            // a file that cannot be read as CSV at all is an error with a sentence
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

/// Every duration key of the configuration, as `section`, `key`.
const DURATION_KEYS: [(&str, &str); 12] = [
    ("polling", "interval"),
    ("polling", "backoff_max"),
    ("buses", "timeout"),
    ("buses", "gap"),
    ("devices", "interval"),
    ("store", "max_age"),
    ("http", "stall_after"),
    ("alerts", "evaluate_every"),
    ("alerts", "silent_after"),
    ("mqtt", "keep_alive"),
    ("influxdb", "flush_interval"),
    ("influxdb", "timeout"),
];

/// A configuration with one duration key set to `value` (the rest valid).
fn with_duration(section: &str, key: &str, value: &str, store: &std::path::Path) -> String {
    let set = |s: &str| if s == section { format!("{key} = {value:?}\n") } else { String::new() };
    format!(
        "[site]\nname = \"s\"\ntimezone = \"Asia/Shanghai\"\n[polling]\n{}[store]\npath = \"{}\"\n{}[http]\nlisten = \"127.0.0.1:0\"\n{}\
         [alerts]\n{}[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n{}[[influxdb]]\nname = \"i\"\nurl = \"http://127.0.0.1:8086\"\napi = \"v1\"\ndatabase = \"m\"\n{}\
         [[buses]]\nname = \"b\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n{}\
         [[devices]]\nname = \"m1\"\nbus = \"b\"\nunit = 1\nprofile = \"tuf-2000m\"\n{}",
        set("polling"),
        store.display(),
        set("store"),
        set("http"),
        set("alerts"),
        set("mqtt"),
        set("influxdb"),
        set("buses"),
        set("devices"),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse::<u32>().ok()).unwrap_or(256), ..ProptestConfig::default() })]

    /// Any duration in any duration key — 1 ns, 10⁹ years, nonsense — is accepted within
    /// its range or refused with the key named; `check` never panics, and what it accepts
    /// the gateway can compute with (no overflow in `timeout × attempts`, no negative age).
    #[test]
    fn duration_keys_are_bounded_where_they_are_read(
        key in 0..DURATION_KEYS.len(),
        n in prop_oneof![0u64..100, 1u64..1_000_000, Just(u64::MAX / 2), Just(500_000_000_000u64)],
        unit in prop_oneof![Just("ns"), Just("ms"), Just("s"), Just("m"), Just("h"), Just("d"), Just("y"), Just("")],
    ) {
        let (section, name) = DURATION_KEYS[key];
        let dir = tempfile::tempdir().expect("tempdir");
        let text = with_duration(section, name, &format!("{n}{unit}"), &dir.path().join("s.db"));
        let path = format!("{}{}.{name}", section, if matches!(section, "buses" | "devices" | "influxdb") { "[0]" } else { "" });
        match pumphouse::config::load_str(&text, pumphouse::config::Mode::Check) {
            Ok((cfg, _)) => {
                let day = std::time::Duration::from_secs(86_400);
                prop_assert!(cfg.devices.iter().all(|d| d.interval >= std::time::Duration::from_millis(1) && d.interval <= day));
                prop_assert!(cfg.buses.iter().all(|b| b.timeout <= std::time::Duration::from_secs(60)));
                if let Some(age) = cfg.store.limits.max_age {
                    prop_assert!(i64::try_from(age.as_millis()).is_ok());
                }
            }
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.contains(&path), "{path} not named in: {text}");
            }
        }
    }
}

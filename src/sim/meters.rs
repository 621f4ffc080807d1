//! A simulated RS-485 line of DL/T 645 and CJ/T 188 meters: a dormitory block's
//! electricity meters (DL/T 645-2007, one older 1997 meter) and staff housing's cold-water
//! meters (CJ/T 188), served on a serial port (one end of a socat pty pair) or on TCP as
//! a serial server in transparent mode would. Each meter answers only frames addressed to
//! it, as on a real line; an identifier it does not have gets the abnormal answer with
//! "no such data". Registers follow the simulated clock: energy at each meter's load,
//! water at each flat's use, so that a day at `--speed 3600` books a day's consumption.
//! A Modbus RTU pressure module (unit 1, `analog-4-20ma`) shares the line, as on a riser
//! where a pressure point and the meters hang on one RS-485 pair.

use std::fmt::Write as _;
use std::io;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Clock;
use crate::cjt188::{self, MeterData, Valve};
use crate::dlt645::{data, frame, frame::Address, Edition};
use crate::model::{Quality, Quantity, Reading};

/// One simulated meter.
#[derive(Debug, Clone)]
pub enum Meter {
    /// `drift_s`: how far the meter's clock is off real Beijing time, in seconds (a
    /// meter's clock keeps real time whatever the simulation's speed).
    Dlt645 { name: String, edition: Edition, address: Address, start_kwh: f64, load_kw: f64, drift_s: i64 },
    /// `quiet_nights`: no water drawn from 01:00 to 05:00 Beijing time (the day's use
    /// spread over the other hours), as a flat's meter shows; otherwise a steady draw.
    Cjt188 { name: String, address: [u8; 7], start_m3: f64, m3_per_hour: f64, drift_s: i64, quiet_nights: bool },
}

/// The water meters' valves as commanded (A017H), shared by every connection to the
/// line: a closed valve stops the meter's volume until it is opened again.
pub type Valves = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<[u8; 7], Shut>>>;

/// A valve's closings, in hours into the run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shut {
    /// Closed since then, if closed now.
    pub since_h: Option<f64>,
    /// Hours closed before that.
    pub closed_h: f64,
}

impl Shut {
    /// Hours the water ran, of `h`.
    fn flowing(&self, h: f64) -> f64 {
        h - self.closed_h - self.since_h.map_or(0.0, |s| h - s)
    }
}

/// A meter's clock: real time in Beijing (UTC+8, no daylight saving), off by `drift_s`.
fn meter_clock(drift_s: i64) -> chrono::NaiveDateTime {
    Utc::now().naive_utc() + chrono::Duration::hours(8) + chrono::Duration::seconds(drift_s)
}

impl Meter {
    pub fn name(&self) -> &str {
        match self {
            Meter::Dlt645 { name, .. } | Meter::Cjt188 { name, .. } => name,
        }
    }
}

/// The dormitory line: the block's three-phase incomer (`dorm-e-main`, DL/T 645-2007,
/// carrying the flats' load and 4 % more: the block's corridors, pumps and losses), four
/// 2007 flat meters (the fourth a few hours of load short of its 6-digit register's wrap
/// at 1 000 000 kWh; the third's clock 7 min 12 s slow), one 1997 meter; staff housing's
/// bulk water meter (`staff-w-main`, 6 % above its flats: common taps and a weeping
/// joint) and three flats' water meters (the second's clock 95 s fast, within tolerance).
pub fn dormitory_line() -> Vec<Meter> {
    let mut out = vec![Meter::Dlt645 {
        name: "dorm-e-main".into(),
        edition: Edition::V2007,
        address: Address::parse("000000240100").unwrap_or(Address([0; 6])),
        start_kwh: 480_000.0,
        load_kw: (3.2 + 2.6 + 4.1 + 1.8 + 1.2) * 1.04,
        drift_s: 2,
    }];
    let starts = [10_000.0, 11_000.0, 12_000.0, 999_985.0];
    for (i, (load, start_kwh)) in [3.2, 2.6, 4.1, 1.8].iter().zip(starts).enumerate() {
        out.push(Meter::Dlt645 {
            name: format!("dorm-e-{}", i + 1),
            edition: Edition::V2007,
            address: Address::parse(&format!("{:012}", 240_101 + i)).unwrap_or(Address([0; 6])),
            start_kwh,
            load_kw: *load,
            drift_s: if i == 2 { -432 } else { i as i64 },
        });
    }
    out.push(Meter::Dlt645 {
        name: "dorm-e-old".into(),
        edition: Edition::V1997,
        address: Address::parse("000000009701").unwrap_or(Address([0; 6])),
        start_kwh: 52_345.67,
        load_kw: 1.2,
        drift_s: -20,
    });
    out.push(Meter::Cjt188 {
        name: "staff-w-main".into(),
        address: cjt188::address("20260000").unwrap_or([0; 7]),
        start_m3: 8_000.0,
        m3_per_hour: (0.05 + 0.08 + 0.03) * 1.06,
        drift_s: -1,
        quiet_nights: false,
    });
    for (i, rate) in [0.05, 0.08, 0.03].iter().enumerate() {
        out.push(Meter::Cjt188 {
            name: format!("staff-w-{}", i + 1),
            address: cjt188::address(&format!("{}", 20_260_001 + i)).unwrap_or([0; 7]),
            start_m3: 300.0 + 50.0 * i as f64,
            m3_per_hour: *rate,
            drift_s: if i == 1 { 95 } else { 0 },
            quiet_nights: false,
        });
    }
    out
}

fn hours(clock_start: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    (now - clock_start).num_milliseconds().max(0) as f64 / 3_600_000.0
}

/// A DL/T 645 meter's value for identifier `di` at `h` hours into the run.
fn value_645(
    edition: Edition,
    di: u32,
    start_kwh: f64,
    load_kw: f64,
    h: f64,
    drift_s: i64,
) -> Option<(f64, data::Format)> {
    let item = edition.items().iter().find(|i| i.di == di)?;
    let total = start_kwh + load_kw * h;
    // the four periods' shares (尖 峰 平 谷) of the total
    let share = [0.1, 0.3, 0.4, 0.2];
    // the registers keep six digits before the point and wrap, as the meters' do
    let v = match item.name {
        "energy_import" => total % 1_000_000.0,
        "energy_export" => 0.0,
        n if n.starts_with("energy_import_t") => {
            let k = n.as_bytes().last().map(|b| usize::from(b - b'1')).unwrap_or(0);
            (total * share.get(k).copied().unwrap_or(0.0)) % 1_000_000.0
        }
        n if n.starts_with("voltage") => 220.0 + (h * 7.0).sin() * 3.0,
        n if n.starts_with("current") => load_kw * 1000.0 / 220.0,
        "power_factor" => 0.95,
        "frequency" => 50.0,
        "max_demand" => load_kw * 1.3,
        "clock" => {
            use chrono::Timelike;
            let t = meter_clock(drift_s);
            f64::from(t.hour() * 10_000 + t.minute() * 100 + t.second())
        }
        _ => load_kw, // power
    };
    Some((v, item.format))
}

/// The answer of the line to `request` (one frame's bytes) at `now`, if any meter answers.
pub fn answer(meters: &[Meter], valves: &Valves, clock: &Clock, request: &[u8]) -> Option<Vec<u8>> {
    let h = hours(clock.start, clock.now());
    if let Ok((f, _)) = frame::decode(request) {
        return answer_645(meters, &f, h);
    }
    let (f, _) = cjt188::decode(request).ok()?;
    let mut valves = valves.lock().unwrap_or_else(|e| e.into_inner());
    meters.iter().find_map(|m| match m {
        Meter::Cjt188 { address, start_m3, m3_per_hour, drift_s, quiet_nights, .. }
            if *address == f.address && f.control == 0x01 =>
        {
            let shut = valves.get(address).copied().unwrap_or_default();
            let data = MeterData {
                total_m3: start_m3 + m3_per_hour * shut.flowing(water_hours(*quiet_nights, clock.start, clock.now())),
                settled_m3: *start_m3,
                meter_time: meter_clock(*drift_s),
                valve: if shut.since_h.is_some() { Valve::Closed } else { Valve::Open },
                battery_low: false,
            };
            cjt188::encode(&cjt188::data_answer(&f, &data), 0).ok()
        }
        Meter::Cjt188 { address, quiet_nights, .. } if *address == f.address && f.control == 0x04 => {
            let h = water_hours(*quiet_nights, clock.start, clock.now());
            let reply = match f.data.as_slice() {
                [0xA0, 0x17, _, cmd @ (0x55 | 0x99)] => {
                    let shut = valves.entry(*address).or_default();
                    match (*cmd == 0x99, shut.since_h) {
                        (true, None) => shut.since_h = Some(h),
                        (false, Some(s)) => {
                            shut.closed_h += h - s;
                            shut.since_h = None;
                        }
                        _ => {}
                    }
                    cjt188::valve_reply(&f, if shut.since_h.is_some() { Valve::Closed } else { Valve::Open })
                }
                // another write, or a command it does not know: abnormal answer
                _ => cjt188::Frame {
                    control: 0xC4,
                    data: vec![f.data.first().copied().unwrap_or(0), f.data.get(1).copied().unwrap_or(0), 0, 0x01],
                    ..f.clone()
                },
            };
            cjt188::encode(&reply, 0).ok()
        }
        _ => None,
    })
}

fn answer_645(meters: &[Meter], f: &frame::Frame, h: f64) -> Option<Vec<u8>> {
    if f.control == 0x13 && f.address == Address::WILDCARD {
        // read address: only a line with one meter can answer it without collisions
        let mut it = meters.iter().filter_map(|m| match m {
            Meter::Dlt645 { address, .. } => Some(*address),
            Meter::Cjt188 { .. } => None,
        });
        let (Some(only), None) = (it.next(), it.next()) else { return None };
        return frame::encode(&frame::Frame { address: only, control: 0x93, data: only.0.to_vec() }, 0).ok();
    }
    meters.iter().find_map(|m| {
        let Meter::Dlt645 { edition, address, start_kwh, load_kw, drift_s, .. } = m else { return None };
        let (read, n) = match edition {
            Edition::V2007 => (0x11, 4),
            Edition::V1997 => (0x01, 2),
        };
        if *address != f.address || f.control != read || f.data.len() != n {
            return None;
        }
        let di = f.data.iter().rev().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        let reply = match value_645(*edition, di, *start_kwh, *load_kw, h, *drift_s) {
            Some((v, format)) => {
                let mut data = f.data.clone();
                data.extend(data::bytes_of(v, format));
                if format == data::DEMAND {
                    data.extend([0x00, 0x08, 0x01, 0x12, 0x26]); // reached 2026-12-01 08:00
                }
                frame::Frame { address: *address, control: read | 0x80, data }
            }
            // abnormal answer: error byte bit 1, no such data
            None => frame::Frame { address: *address, control: read | 0xC0, data: vec![0x02] },
        };
        frame::encode(&reply, 4).ok()
    })
}

/// The Modbus unit on the line, and its registers: a 4–20 mA module whose channel 1
/// reads 7.2 mA (0.32 MPa on its 0–1.6 MPa range: a riser's ordinary pressure, inside the
/// 0.14–0.6 MPa band), mirrored in holding register 0, status 0.
const MODBUS_UNIT: u8 = 1;

fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for b in bytes {
        crc ^= u16::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

/// A Modbus RTU read (function 03 or 04) at the start of `buf`: its answer, and the
/// request's length. `None` when `buf` does not start with one.
fn modbus_answer(buf: &[u8]) -> Option<(Option<Vec<u8>>, usize)> {
    let req = buf.get(..8)?;
    let crc = u16::from_le_bytes([req[6], req[7]]);
    if !matches!(req[1], 3 | 4) || crc16(&req[..6]) != crc {
        return None;
    }
    if req[0] != MODBUS_UNIT {
        return Some((None, 8)); // another unit's request: silence
    }
    let (start, count) = (u16::from_be_bytes([req[2], req[3]]), u16::from_be_bytes([req[4], req[5]]));
    let mut out = vec![req[0], req[1], u8::try_from(count.saturating_mul(2)).unwrap_or(u8::MAX)];
    for a in start..start.saturating_add(count) {
        let v: u16 = match (req[1], a) {
            (4, 0) => 7_200,
            (3, 0) => 720,
            _ => 0,
        };
        out.extend(v.to_be_bytes());
    }
    out.extend(crc16(&out).to_le_bytes());
    Some((Some(out), 8))
}

/// Serves the line on `stream` (a serial port, or one TCP connection) until it closes.
pub async fn serve_line<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    meters: &[Meter],
    valves: &Valves,
    clock: &Clock,
) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some((reply, used)) = modbus_answer(&buf) {
            buf.drain(..used);
            if let Some(reply) = reply {
                stream.write_all(&reply).await?;
                stream.flush().await?;
            }
            continue;
        }
        if buf.len() < 8 && !buf.contains(&0x68) {
            continue; // perhaps the start of a Modbus request
        }
        // one whole frame of either protocol, or wait for more
        let used = match (frame::decode(&buf), cjt188::decode(&buf)) {
            (Ok((_, used)), _) | (_, Ok((_, used))) => used,
            (Err(frame::FrameError::Incomplete(_)), _) | (_, Err(cjt188::Error::Incomplete(_))) => continue,
            _ => {
                buf.clear();
                continue;
            }
        };
        let request: Vec<u8> = buf.drain(..used.min(buf.len())).collect();
        if let Some(reply) = answer(meters, valves, clock, &request) {
            stream.write_all(&reply).await?;
            stream.flush().await?;
        }
    }
}

/// The line `hours` later: each register advanced by its meter's load over that time, as
/// the demo starts the live line where its generated history ends.
pub fn advanced(line: &[Meter], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Meter> {
    line.iter()
        .cloned()
        .map(|mut m| {
            match &mut m {
                Meter::Dlt645 { start_kwh, load_kw, .. } => *start_kwh += *load_kw * hours(from, to),
                Meter::Cjt188 { start_m3, m3_per_hour, quiet_nights, .. } => {
                    *start_m3 += *m3_per_hour * water_hours(*quiet_nights, from, to);
                }
            }
            m
        })
        .collect()
}

/// The line with its flats' water drawn by day, quiet from 01:00 to 05:00 (the bulk
/// meter, which feeds common taps and a weeping joint, still runs at night).
pub fn with_quiet_nights(line: &[Meter]) -> Vec<Meter> {
    line.iter()
        .cloned()
        .map(|mut m| {
            if let Meter::Cjt188 { quiet_nights, name, .. } = &mut m {
                *quiet_nights = !name.ends_with("-main");
            }
            m
        })
        .collect()
}

/// Hours of water drawn between `from` and `to`: the hours themselves, or with quiet
/// nights the hours outside 01:00–05:00 Beijing time (17:00–21:00 UTC) scaled by 24/20,
/// so that a day draws `m3_per_hour` × 24 either way.
fn water_hours(quiet_nights: bool, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    if !quiet_nights {
        return hours(from, to);
    }
    // active seconds since the Unix epoch
    let active = |t: DateTime<Utc>| -> f64 {
        let s = t.timestamp() as f64 + f64::from(t.timestamp_subsec_millis()) / 1000.0;
        let (days, r) = ((s / 86_400.0).floor(), s.rem_euclid(86_400.0));
        days * 20.0 * 3600.0 + r.min(17.0 * 3600.0) + (r - 21.0 * 3600.0).max(0.0)
    };
    ((active(to) - active(from)) / 3600.0 * 24.0 / 20.0).max(0.0)
}

/// The zone a meter of the line is in (as [`gateway_config`] and [`books`] place it).
fn zone_of(m: &Meter) -> &'static str {
    match m {
        Meter::Dlt645 { .. } => "dorm-power",
        Meter::Cjt188 { .. } => "staff-housing",
    }
}

/// The line's totalizers at `t`, `from` being the line's start: the history a gateway
/// would have read from it (the ledger needs nothing more), stamped `t`.
pub fn history_readings(line: &[Meter], site: &Arc<str>, from: DateTime<Utc>, t: DateTime<Utc>) -> Vec<Reading> {
    let h = hours(from, t);
    line.iter()
        .map(|m| {
            let (point, quantity, unit, value) = match m {
                Meter::Dlt645 { start_kwh, load_kw, .. } => {
                    ("energy_import", Quantity::EnergyImport, "kWh", (start_kwh + load_kw * h) % 1_000_000.0)
                }
                Meter::Cjt188 { start_m3, m3_per_hour, quiet_nights, .. } => (
                    "volume",
                    Quantity::WaterVolume,
                    "m3",
                    (start_m3 + m3_per_hour * water_hours(*quiet_nights, from, t)) % 1_000_000.0,
                ),
            };
            Reading {
                ts: t,
                site: site.clone(),
                zone: zone_of(m).into(),
                device: m.name().into(),
                point: point.into(),
                quantity,
                value: Some((value * 100.0).round() / 100.0),
                unit: unit.into(),
                quality: Quality::Good,
            }
        })
        .collect()
}

/// The line's books, as the demo campus keeps them: the dormitory block (electricity,
/// its incomer the inlet, the flats at the student-dormitory tariff) and staff housing
/// (water, its bulk meter the inlet, the flats at the staff-housing tariff), each a zone
/// of its own, supplied apart from the plant's network.
pub fn books(meters: &[Meter]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "[[zones]]\nname = \"dorm-power\"\nutility = \"electricity\"\ninlets = [\"dorm-e-main\"]\n");
    let _ = writeln!(s, "[[zones]]\nname = \"staff-housing\"\nutility = \"water\"\ninlets = [\"staff-w-main\"]\n");
    for m in meters.iter().filter(|m| !m.name().ends_with("-main")) {
        let (zone, category) = match m {
            Meter::Dlt645 { .. } => ("dorm-power", "student_dormitory"),
            Meter::Cjt188 { .. } => ("staff-housing", "staff_housing"),
        };
        let _ = writeln!(s, "[[meters]]\ndevice = \"{}\"\nzone = \"{zone}\"\ncategory = \"{category}\"\n", m.name());
    }
    s
}

/// A gateway configuration that polls the line at `transport` (`rtu` with its device, or
/// `rtu-over-tcp` with its address).
pub fn gateway_config(meters: &[Meter], site: &str, bus: &str, interval: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Polls the simulated meter line (`pumphouse simulate-meters`).");
    let _ = writeln!(s, "[site]\nname = \"{site}\"\ntimezone = \"Asia/Shanghai\"\n");
    let _ = writeln!(s, "[polling]\ninterval = \"{interval}\"\n");
    let _ = writeln!(s, "[[buses]]\nname = \"dorm-line\"\n{bus}\ntimeout = \"500ms\"\n");
    let _ = writeln!(
        s,
        "[[devices]]\nname = \"dorm-pressure\"\nbus = \"dorm-line\"\nunit = {MODBUS_UNIT}\nprofile = \"analog-4-20ma\"\nzone = \"staff-housing\"\n"
    );
    for m in meters {
        let (name, profile, address) = match m {
            Meter::Dlt645 { name, edition: Edition::V2007, address, .. } if name.ends_with("-main") => {
                (name, "dlt645-three-phase", address.to_string())
            }
            Meter::Dlt645 { name, edition: Edition::V2007, address, .. } => {
                (name, "dlt645-single-phase", address.to_string())
            }
            Meter::Dlt645 { name, address, .. } => (name, "dlt645-1997", address.to_string()),
            Meter::Cjt188 { name, address, .. } => {
                (name, "cjt188-cold-water", address.iter().rev().map(|b| format!("{b:02X}")).collect())
            }
        };
        let zone = zone_of(m);
        let _ = writeln!(
            s,
            "[[devices]]\nname = \"{name}\"\nbus = \"dorm-line\"\naddress = \"{address}\"\nprofile = \"{profile}\"\nzone = \"{zone}\"\n"
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pressure_module_answers_modbus_on_the_same_line() {
        // 01 04 0000 0001 and its CRC (31 CA)
        let req = [0x01, 0x04, 0x00, 0x00, 0x00, 0x01, 0x31, 0xCA];
        let (reply, used) = modbus_answer(&req).unwrap();
        assert_eq!(used, 8);
        let reply = reply.unwrap();
        assert_eq!(&reply[..5], &[0x01, 0x04, 0x02, 0x1C, 0x20]); // 7200 µA
        assert_eq!(crc16(&reply[..5]).to_le_bytes(), [reply[5], reply[6]]);
        // a DL/T 645 frame is not taken for Modbus
        assert!(modbus_answer(&[0xFE, 0xFE, 0x68, 1, 0, 0, 0, 0, 0, 0x68]).is_none());
    }

    #[test]
    fn each_meter_answers_its_own_frames_only() {
        let meters = dormitory_line();
        let clock = Clock::new(Utc::now(), 1.0);
        let named = |n: &str| meters.iter().find(|m| m.name() == n).unwrap().clone();
        let Meter::Dlt645 { address, .. } = named("dorm-e-2") else { panic!() };
        let address = &address;
        let req = crate::dlt645::read_request(Edition::V2007, *address, 0x0001_0000);
        let wire = frame::encode(&req, 4).unwrap();
        let (back, _) = frame::decode(&answer(&meters, &Valves::default(), &clock, &wire).unwrap()).unwrap();
        let got = crate::dlt645::read_answer(Edition::V2007, &req, &back).unwrap().unwrap();
        assert!((data::value(&got, data::ENERGY).unwrap() - 11_000.0).abs() < 0.02);
        // an identifier the meter lacks: refused with "no such data"
        let req = crate::dlt645::read_request(Edition::V2007, *address, 0x0401_0000);
        let (back, _) =
            frame::decode(&answer(&meters, &Valves::default(), &clock, &frame::encode(&req, 0).unwrap()).unwrap())
                .unwrap();
        assert_eq!(crate::dlt645::read_answer(Edition::V2007, &req, &back), Ok(Err(crate::dlt645::Refusal(2))));
        // nobody at this address: silence
        let req = crate::dlt645::read_request(Edition::V2007, Address::parse("1").unwrap(), 0x0001_0000);
        assert_eq!(answer(&meters, &Valves::default(), &clock, &frame::encode(&req, 0).unwrap()), None);
        // a water meter
        let Meter::Cjt188 { address, .. } = named("staff-w-1") else { panic!() };
        let req = cjt188::read_request(cjt188::COLD_WATER, address, 0);
        let (back, _) =
            cjt188::decode(&answer(&meters, &Valves::default(), &clock, &cjt188::encode(&req, 2).unwrap()).unwrap())
                .unwrap();
        assert_eq!(cjt188::read_answer(&req, &back).unwrap().total_m3, 300.0);
    }

    #[test]
    fn quiet_nights_draw_a_days_water_by_day() {
        use chrono::TimeZone;
        let at = |d, h, m| Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap();
        // a whole day draws 24 hours' worth either way
        assert!((water_hours(true, at(1, 3, 0), at(2, 3, 0)) - 24.0).abs() < 1e-9);
        assert!((water_hours(false, at(1, 3, 0), at(2, 3, 0)) - 24.0).abs() < 1e-9);
        // 01:00–05:00 Beijing is 17:00–21:00 UTC: nothing drawn
        assert_eq!(water_hours(true, at(1, 17, 10), at(1, 20, 50)), 0.0);
        // an hour by day draws 1.2 hours' worth
        assert!((water_hours(true, at(1, 2, 0), at(1, 3, 0)) - 1.2).abs() < 1e-9);
    }

    #[test]
    fn a_closed_valve_stops_the_water_until_it_opens() {
        let meters = dormitory_line();
        let Some(Meter::Cjt188 { address, .. }) = meters.iter().find(|m| m.name() == "staff-w-2") else { panic!() };
        let (valves, clock) = (Valves::default(), Clock::new(Utc::now(), 1.0));
        let ask = |req: &cjt188::Frame| {
            cjt188::decode(&answer(&meters, &valves, &clock, &cjt188::encode(req, 2).unwrap()).unwrap()).unwrap().0
        };
        let close = cjt188::valve_request(cjt188::COLD_WATER, *address, 1, false);
        assert_eq!(cjt188::valve_answer(&close, &ask(&close)), Ok(Valve::Closed));
        let read = cjt188::read_request(cjt188::COLD_WATER, *address, 2);
        assert_eq!(cjt188::read_answer(&read, &ask(&read)).unwrap().valve, Valve::Closed);
        // the volume: of 10 hours, 2 closed earlier and 7 since 3 h in leave 1 flowing
        let shut = Shut { since_h: Some(3.0), closed_h: 2.0 };
        assert_eq!(shut.flowing(10.0), 1.0);
        let open = cjt188::valve_request(cjt188::COLD_WATER, *address, 3, true);
        assert_eq!(cjt188::valve_answer(&open, &ask(&open)), Ok(Valve::Open));
        // a write the meter does not know: its abnormal answer
        let odd = cjt188::Frame { data: vec![0xA0, 0x18, 4, 0x00], ..open };
        assert!(matches!(cjt188::valve_answer(&odd, &ask(&odd)), Err(cjt188::Error::Abnormal(_))));
    }
}

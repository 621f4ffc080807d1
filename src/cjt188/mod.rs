//! CJ/T 188 (2004, 2018) meters — the remotely read water, heat and gas meters on M-Bus
//! or on RS-485 behind a converter: the frame codec, the meter-data read (901FH) and the
//! valve command (A017H) prepaid meters take. Pure: bytes in, values out; [`link`] puts them on a line.
//!
//! The frame (CJ/T 188-2004 clause 5, unchanged in 2018):
//!
//! ```text
//! [FE…]  68  T  A0 … A6  C  L  DI0 DI1 SER  DATA…  CS  16
//! ```
//!
//! - `T`, the meter type (table 1): 10H cold water, 11H hot water, 12H drinking water,
//!   13H reclaimed water, 20H heat (heating), 21H heat (cooling), 30H gas; AAH any;
//! - the address: 14 BCD digits, its lowest byte first; `AA…` a wildcard;
//! - `C`, the control code: bit 7 the direction (1: from the meter), bit 6 an abnormal
//!   answer, bits 5–0 the function: 01H read data, 04H write data, 03H read address;
//! - `L`, the length of DI0 DI1 SER DATA; no offset is added to DATA (unlike DL/T 645);
//! - `CS`, the sum modulo 256 of every byte from 68H to the end of DATA; then 16H.
//!
//! The meter-data answer (DI 901FH, clause 6.2): the current cumulative flow and the flow
//! at the last settlement day, each 4 BCD bytes `XXXXXX.XX` and a unit code (table 5:
//! 2CH m³, 29H L, 05H kWh, 11H GJ, …), the meter's time (7 bytes `YYYYMMDDhhmmss`, the
//! seconds first), and two status bytes (table 6): bits 0–1 the valve (00 open, 01 closed,
//! 11 abnormal), bit 2 the battery low.

use chrono::{NaiveDate, NaiveDateTime};

/// A meter's type byte.
pub const COLD_WATER: u8 = 0x10;
pub const HOT_WATER: u8 = 0x11;
pub const ANY_TYPE: u8 = 0xAA;

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub meter_type: u8,
    /// 14 BCD digits, least significant byte first.
    pub address: [u8; 7],
    pub control: u8,
    /// DI0 DI1 SER and the data.
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("an incomplete frame ({0} byte(s) so far)")]
    Incomplete(usize),
    #[error("no frame start (68H) in {0} byte(s)")]
    NoStart(usize),
    #[error("checksum {got:02X}H where the frame sums to {expected:02X}H")]
    Checksum { expected: u8, got: u8 },
    #[error("the frame ends with {0:02X}H, not 16H")]
    BadEnd(u8),
    #[error("`{0}` is not a meter address: up to 14 digits")]
    BadAddress(String),
    #[error("DATA of {0} bytes does not fit a frame")]
    TooLong(usize),
    #[error("an answer from meter {got}, not {want}")]
    OtherMeter { want: String, got: String },
    #[error("control code {0:02X}H does not answer the request")]
    Control(u8),
    #[error("an answer for identifier {0:04X}H")]
    Identifier(u16),
    #[error("the answer has {0} byte(s) of data, too few")]
    Short(usize),
    #[error("byte {0:02X}H is not BCD")]
    NotBcd(u8),
    #[error("unknown unit code {0:02X}H")]
    Unit(u8),
    #[error("the meter answered abnormally (status {0:02X}H)")]
    Abnormal(u8),
    #[error("{0} is not a date and time")]
    BadTime(String),
}

/// An address as printed: up to 14 digits (zero-padded), `A` a wildcard digit.
pub fn address(s: &str) -> Result<[u8; 7], Error> {
    let s = s.trim();
    if s.is_empty() || s.len() > 14 || !s.chars().all(|c| c.is_ascii_digit() || c == 'A' || c == 'a') {
        return Err(Error::BadAddress(s.to_string()));
    }
    let padded = format!("{s:0>14}");
    let mut out = [0u8; 7];
    for (i, pair) in padded.as_bytes().chunks(2).enumerate() {
        let nib = |c: u8| if c.is_ascii_digit() { c - b'0' } else { 0x0A };
        out[6 - i] = (nib(pair[0]) << 4) | nib(pair[1]);
    }
    Ok(out)
}

fn printed(a: &[u8; 7]) -> String {
    a.iter().rev().map(|b| format!("{b:02X}")).collect()
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
}

/// The frame on the wire with `preamble` FE bytes before it.
pub fn encode(f: &Frame, preamble: usize) -> Result<Vec<u8>, Error> {
    let len = u8::try_from(f.data.len()).map_err(|_| Error::TooLong(f.data.len()))?;
    let mut out = vec![0xFE; preamble];
    let start = out.len();
    out.push(0x68);
    out.push(f.meter_type);
    out.extend_from_slice(&f.address);
    out.push(f.control);
    out.push(len);
    out.extend_from_slice(&f.data);
    let cs = checksum(&out[start..]);
    out.extend([cs, 0x16]);
    Ok(out)
}

/// The first frame in `buf` and the bytes it (and what came before it) took.
pub fn decode(buf: &[u8]) -> Result<(Frame, usize), Error> {
    let Some(at) = buf.iter().position(|b| *b == 0x68) else { return Err(Error::NoStart(buf.len())) };
    let f = &buf[at..];
    if f.len() < 13 {
        return Err(Error::Incomplete(f.len()));
    }
    let len = usize::from(f[10]);
    let total = 13 + len;
    if f.len() < total {
        return Err(Error::Incomplete(f.len()));
    }
    let expected = checksum(&f[..11 + len]);
    if f[11 + len] != expected {
        return Err(Error::Checksum { expected, got: f[11 + len] });
    }
    if f[12 + len] != 0x16 {
        return Err(Error::BadEnd(f[12 + len]));
    }
    let mut address = [0u8; 7];
    address.copy_from_slice(&f[2..9]);
    Ok((Frame { meter_type: f[1], address, control: f[9], data: f[11..11 + len].to_vec() }, at + total))
}

/// DI 901FH: the meter's data.
pub const METER_DATA: u16 = 0x901F;
/// DI A017H: the valve command.
pub const VALVE: u16 = 0xA017;

/// DI0 is sent first; the standard writes the identifier DI0 DI1 (901FH: 90H then 1FH).
fn di_bytes(di: u16) -> [u8; 2] {
    di.to_be_bytes()
}

/// The request for the meter's data, with sequence number `ser`.
pub fn read_request(meter_type: u8, address: [u8; 7], ser: u8) -> Frame {
    let [d0, d1] = di_bytes(METER_DATA);
    Frame { meter_type, address, control: 0x01, data: vec![d0, d1, ser] }
}

/// The valve command: open (55H) or close (99H), written with DI A017H.
pub fn valve_request(meter_type: u8, address: [u8; 7], ser: u8, open: bool) -> Frame {
    let [d0, d1] = di_bytes(VALVE);
    Frame { meter_type, address, control: 0x04, data: vec![d0, d1, ser, if open { 0x55 } else { 0x99 }] }
}

/// The valve as the status bits say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Valve {
    Open,
    Closed,
    Abnormal,
}

/// What a meter-data answer says.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterData {
    /// The current cumulative volume, in m³ (a volume in litres is converted).
    pub total_m3: f64,
    /// The cumulative volume on the last settlement day, in m³.
    pub settled_m3: f64,
    pub meter_time: NaiveDateTime,
    pub valve: Valve,
    pub battery_low: bool,
}

/// What a profile's point takes from a meter-data answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The current cumulative volume, m³.
    Total,
    /// The cumulative volume on the last settlement day, m³.
    Settled,
    /// 1 when the valve is closed, 0 when open (abnormal has no value).
    ValveClosed,
    /// 1 when the battery is low.
    BatteryLow,
    /// The meter's clock, read as its offset from the gateway's (seconds).
    Clock,
}

impl Field {
    pub fn parse(s: &str) -> Option<Field> {
        Some(match s {
            "total" => Field::Total,
            "settled" => Field::Settled,
            "valve_closed" => Field::ValveClosed,
            "battery_low" => Field::BatteryLow,
            "clock" => Field::Clock,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Total => "total",
            Field::Settled => "settled",
            Field::ValveClosed => "valve_closed",
            Field::BatteryLow => "battery_low",
            Field::Clock => "clock",
        }
    }
}

impl MeterData {
    /// The field's value; `None` for a valve that reports itself abnormal.
    pub fn get(&self, field: Field) -> Option<f64> {
        match field {
            Field::Total => Some(self.total_m3),
            Field::Settled => Some(self.settled_m3),
            Field::ValveClosed => match self.valve {
                Valve::Open => Some(0.0),
                Valve::Closed => Some(1.0),
                Valve::Abnormal => None,
            },
            Field::BatteryLow => Some(f64::from(u8::from(self.battery_low))),
            // against the gateway's clock: see `Profile::decode_answers`
            Field::Clock => None,
        }
    }
}

/// The meter-data answer a meter holding `data` gives to `request` (for the simulator and
/// tests): volumes in m³ to the hundredth.
pub fn data_answer(request: &Frame, data: &MeterData) -> Frame {
    let [d0, d1] = di_bytes(METER_DATA);
    let mut out = vec![d0, d1, request.data.get(2).copied().unwrap_or(0)];
    for v in [data.total_m3, data.settled_m3] {
        let mut n = (v * 100.0).round().clamp(0.0, 99_999_999.0) as u64;
        for _ in 0..4 {
            let d = (n % 100) as u8;
            out.push(((d / 10) << 4) | (d % 10));
            n /= 100;
        }
        out.push(0x2C);
    }
    let t = data.meter_time;
    use chrono::{Datelike, Timelike};
    let to = |v: u32| (((v / 10) % 10) << 4 | (v % 10)) as u8;
    let y = t.year().max(0) as u32;
    out.extend([to(t.second()), to(t.minute()), to(t.hour()), to(t.day()), to(t.month()), to(y % 100), to(y / 100)]);
    let valve = match data.valve {
        Valve::Open => 0,
        Valve::Closed => 1,
        Valve::Abnormal => 3,
    };
    out.extend([valve | if data.battery_low { 0x04 } else { 0 }, 0x00]);
    Frame { meter_type: request.meter_type, address: request.address, control: request.control | 0x80, data: out }
}

fn bcd(b: u8) -> Result<u32, Error> {
    let (hi, lo) = (b >> 4, b & 0x0F);
    if hi > 9 || lo > 9 {
        return Err(Error::NotBcd(b));
    }
    Ok(u32::from(hi) * 10 + u32::from(lo))
}

/// A `XXXXXX.XX` volume and its unit code, in m³.
fn volume(b: &[u8]) -> Result<f64, Error> {
    let mut n = 0u64;
    for x in b[..4].iter().rev() {
        n = n * 100 + u64::from(bcd(*x)?);
    }
    // one division, so that the figure is the nearest to what the meter shows
    match b[4] {
        0x2C => Ok(n as f64 / 100.0),
        0x29 => Ok(n as f64 / 100_000.0),
        other => Err(Error::Unit(other)),
    }
}

/// The meter's data from its answer to `request`.
pub fn read_answer(request: &Frame, answer: &Frame) -> Result<MeterData, Error> {
    let wildcard = |a: u8, b: u8| a == 0xAA || a == b;
    if !request.address.iter().zip(answer.address.iter()).all(|(a, b)| wildcard(*a, *b)) {
        return Err(Error::OtherMeter { want: printed(&request.address), got: printed(&answer.address) });
    }
    if answer.control & 0x80 == 0 || answer.control & 0x3F != request.control & 0x3F {
        return Err(Error::Control(answer.control));
    }
    if answer.control & 0x40 != 0 {
        return Err(abnormal(answer));
    }
    parse_data(&answer.data)
}

/// A meter's abnormal answer: its status byte after DI0 DI1 SER, or, when the frame is
/// too short to carry one, a short answer (never a status the meter did not send).
fn abnormal(answer: &Frame) -> Error {
    answer.data.get(3).map_or(Error::Short(answer.data.len()), |st| Error::Abnormal(*st))
}

/// The valve as the meter reports it after a valve command: its answer (84H) carries
/// DI0 DI1 SER and the two status bytes (CJ/T 188-2004 clause 6.3, table 6).
pub fn valve_answer(request: &Frame, answer: &Frame) -> Result<Valve, Error> {
    if request.address != answer.address {
        return Err(Error::OtherMeter { want: printed(&request.address), got: printed(&answer.address) });
    }
    if answer.control & 0x80 == 0 || answer.control & 0x3F != request.control & 0x3F {
        return Err(Error::Control(answer.control));
    }
    if answer.control & 0x40 != 0 {
        return Err(abnormal(answer));
    }
    let d = &answer.data;
    if d.len() < 5 {
        return Err(Error::Short(d.len()));
    }
    let di = u16::from_be_bytes([d[0], d[1]]);
    if di != VALVE {
        return Err(Error::Identifier(di));
    }
    Ok(match d[3] & 0x03 {
        0b00 => Valve::Open,
        0b01 => Valve::Closed,
        _ => Valve::Abnormal,
    })
}

/// The meter's answer to a valve command, with the valve as it now stands: for tests
/// and simulators.
pub fn valve_reply(request: &Frame, now: Valve) -> Frame {
    let st = match now {
        Valve::Open => 0x00,
        Valve::Closed => 0x01,
        Valve::Abnormal => 0x03,
    };
    let mut data: Vec<u8> = request.data.iter().take(3).copied().collect();
    data.extend([st, 0x00]);
    Frame { meter_type: request.meter_type, address: request.address, control: request.control | 0x80, data }
}

/// The meter data in an answer's DATA (DI0 DI1 SER and the 19 data bytes).
pub fn parse_data(d: &[u8]) -> Result<MeterData, Error> {
    if d.len() < 22 {
        return Err(Error::Short(d.len()));
    }
    let di = u16::from_be_bytes([d[0], d[1]]);
    if di != METER_DATA {
        return Err(Error::Identifier(di));
    }
    let total_m3 = volume(&d[3..8])?;
    let settled_m3 = volume(&d[8..13])?;
    // time: ss mm hh DD MM YYlow YYhigh
    let t: Vec<u32> = d[13..20].iter().map(|b| bcd(*b)).collect::<Result<_, _>>()?;
    let year = t[6] * 100 + t[5];
    let meter_time = NaiveDate::from_ymd_opt(year as i32, t[4], t[3])
        .and_then(|day| day.and_hms_opt(t[2], t[1], t[0]))
        .ok_or_else(|| Error::BadTime(format!("{t:?}")))?;
    let st = d[20];
    let valve = match st & 0x03 {
        0b00 => Valve::Open,
        0b01 => Valve::Closed,
        _ => Valve::Abnormal,
    };
    Ok(MeterData { total_m3, settled_m3, meter_time, valve, battery_low: st & 0x04 != 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter() -> [u8; 7] {
        address("12345678").unwrap()
    }

    #[test]
    fn a_read_of_a_cold_water_meter() {
        assert_eq!(meter(), [0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00]);
        // 68 10 78 56 34 12 00 00 00 01 03 90 1F 00 CS 16
        // CS: 68+10+78+56+34+12+01+03+90+1F+00 = 23FH → 3FH
        assert_eq!(
            encode(&read_request(COLD_WATER, meter(), 0), 0).unwrap(),
            [0x68, 0x10, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00, 0x01, 0x03, 0x90, 0x1F, 0x00, 0x3F, 0x16]
        );
    }

    fn answer(status: u8, unit: u8) -> Frame {
        let mut data = vec![0x90, 0x1F, 0x00];
        data.extend([0x56, 0x34, 0x12, 0x00, unit]); // 1234.56
        data.extend([0x00, 0x30, 0x12, 0x00, unit]); // 1230.00 at settlement
        data.extend([0x15, 0x30, 0x09, 0x05, 0x12, 0x26, 0x20]); // 2026-12-05 09:30:15
        data.extend([status, 0x00]);
        Frame { meter_type: COLD_WATER, address: meter(), control: 0x81, data }
    }

    #[test]
    fn the_meter_data_answer_reads_volume_time_valve_and_battery() {
        let req = read_request(COLD_WATER, meter(), 0);
        let wire = encode(&answer(0x05, 0x2C), 2).unwrap();
        let (back, used) = decode(&wire).unwrap();
        assert_eq!(used, wire.len());
        let m = read_answer(&req, &back).unwrap();
        assert_eq!((m.total_m3, m.settled_m3), (1234.56, 1230.0));
        assert_eq!(m.meter_time.to_string(), "2026-12-05 09:30:15");
        assert_eq!((m.valve, m.battery_low), (Valve::Closed, true));
        // litres are converted; an unknown unit is refused, not guessed
        assert_eq!(read_answer(&req, &answer(0x00, 0x29)).unwrap().total_m3, 1.23456);
        assert_eq!(read_answer(&req, &answer(0x00, 0x35)), Err(Error::Unit(0x35)));
        assert_eq!(read_answer(&req, &answer(0x03, 0x2C)).unwrap().valve, Valve::Abnormal);
    }

    #[test]
    fn the_simulators_answer_reads_back() {
        let req = read_request(COLD_WATER, meter(), 7);
        let data = MeterData {
            total_m3: 1234.56,
            settled_m3: 1200.0,
            meter_time: NaiveDate::from_ymd_opt(2026, 12, 5).unwrap().and_hms_opt(9, 30, 15).unwrap(),
            valve: Valve::Open,
            battery_low: false,
        };
        let back = data_answer(&req, &data);
        assert_eq!(back, answer(0x00, 0x2C).with_ser_and_settled(7, [0x00, 0x00, 0x12, 0x00]));
        assert_eq!(read_answer(&req, &back).unwrap(), data);
        assert_eq!(data.get(Field::ValveClosed), Some(0.0));
        assert_eq!(Field::parse("total"), Some(Field::Total));
    }

    impl Frame {
        fn with_ser_and_settled(mut self, ser: u8, settled: [u8; 4]) -> Frame {
            self.data[2] = ser;
            self.data[8..12].copy_from_slice(&settled);
            self
        }
    }

    #[test]
    fn damaged_or_foreign_answers_are_named() {
        let req = read_request(COLD_WATER, meter(), 0);
        let wire = encode(&answer(0, 0x2C), 0).unwrap();
        for n in 1..wire.len() {
            assert!(matches!(decode(&wire[..n]), Err(Error::Incomplete(_))), "{n}");
        }
        let mut bad = wire.clone();
        let cs = bad.len() - 2;
        bad[cs] = bad[cs].wrapping_add(1);
        assert!(matches!(decode(&bad), Err(Error::Checksum { .. })));
        let other = Frame { address: address("87654321").unwrap(), ..answer(0, 0x2C) };
        assert!(matches!(read_answer(&req, &other), Err(Error::OtherMeter { .. })));
        let abnormal = Frame { control: 0xC1, ..answer(0, 0x2C) };
        assert_eq!(read_answer(&req, &abnormal), Err(Error::Abnormal(0x56)));
        let short = Frame { data: vec![0x90, 0x1F, 0x00], ..answer(0, 0x2C) };
        assert_eq!(read_answer(&req, &short), Err(Error::Short(3)));
        assert!(address("123456789012345").is_err());
    }

    #[test]
    fn the_valve_command_of_a_prepaid_meter() {
        // 68 10 78 56 34 12 00 00 00 04 04 A0 17 01 99 CS 16
        // CS: 68+10+78+56+34+12+04+04+A0+17+01+99 = 2E5H → E5H
        assert_eq!(
            encode(&valve_request(COLD_WATER, meter(), 1, false), 0).unwrap(),
            [0x68, 0x10, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00, 0x04, 0x04, 0xA0, 0x17, 0x01, 0x99, 0xE5, 0x16]
        );
        assert_eq!(valve_request(COLD_WATER, meter(), 1, true).data[3], 0x55);
    }

    #[test]
    fn the_valve_answer_says_where_the_valve_stands() {
        let req = valve_request(COLD_WATER, meter(), 7, false);
        // 68 10 78 56 34 12 00 00 00 84 05 A0 17 07 01 00 CS 16, hand-summed:
        // 68+10+78+56+34+12+84+05+A0+17+07+01 = 2D4H → D4H
        let wire = [
            0x68, 0x10, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00, 0x84, 0x05, 0xA0, 0x17, 0x07, 0x01, 0x00, 0xD4, 0x16,
        ];
        assert_eq!(encode(&valve_reply(&req, Valve::Closed), 0).unwrap(), wire);
        let (answer, _) = decode(&wire).unwrap();
        assert_eq!(valve_answer(&req, &answer), Ok(Valve::Closed));
        assert_eq!(valve_answer(&req, &valve_reply(&req, Valve::Abnormal)), Ok(Valve::Abnormal));
        // the meter refuses (C4H): a meter without a valve, or one locked by its prepayment
        let refused = Frame { control: 0xC4, data: vec![0xA0, 0x17, 0x07, 0x40], ..answer.clone() };
        assert_eq!(valve_answer(&req, &refused), Err(Error::Abnormal(0x40)));
        let other = Frame { address: address("87654321").unwrap(), ..answer.clone() };
        assert!(matches!(valve_answer(&req, &other), Err(Error::OtherMeter { .. })));
        // a meter-data answer is not a valve answer
        let read = Frame { control: 0x81, ..answer.clone() };
        assert_eq!(valve_answer(&req, &read), Err(Error::Control(0x81)));
        let short = Frame { data: vec![0xA0, 0x17, 0x07], ..answer.clone() };
        assert_eq!(valve_answer(&req, &short), Err(Error::Short(3)));
        // a refusal without its status byte is short, not "status 00H"
        let bare = Frame { control: 0xC4, data: vec![0xA0, 0x17, 0x07], ..answer.clone() };
        assert_eq!(valve_answer(&req, &bare), Err(Error::Short(3)));
        let foreign = Frame { data: vec![0x90, 0x1F, 0x07, 0x00, 0x00], ..answer };
        assert_eq!(valve_answer(&req, &foreign), Err(Error::Identifier(0x901F)));
    }
}

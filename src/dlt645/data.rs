//! What a DL/T 645 meter is asked for and how its answer reads: the data identifiers a
//! campus gateway polls (DL/T 645-2007 appendix A, tables A.1 energy, A.3 variables, A.5
//! parameters; DL/T 645-1997 appendix A's 2-byte identifiers for the same quantities),
//! and the BCD formats (2007 appendix A, "数据格式"): digits two to a byte, the least
//! significant byte first on the wire, a fixed number of decimals, and for signed
//! quantities the top bit of the most significant byte as the sign.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::model::Quantity;

/// A value's BCD layout: bytes on the wire, decimals, and whether its top bit is a sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub bytes: u8,
    pub decimals: u8,
    pub signed: bool,
}

/// `XXXXXX.XX` kWh: energy totals.
pub const ENERGY: Format = Format { bytes: 4, decimals: 2, signed: false };
/// `XXX.X` V.
pub const VOLTAGE: Format = Format { bytes: 2, decimals: 1, signed: false };
/// `XXX.XXX` A, signed (2007).
pub const CURRENT: Format = Format { bytes: 3, decimals: 3, signed: true };
/// `XX.XXXX` kW, signed (2007).
pub const POWER: Format = Format { bytes: 3, decimals: 4, signed: true };
/// `X.XXX`, signed (2007).
pub const POWER_FACTOR: Format = Format { bytes: 2, decimals: 3, signed: true };
/// `XX.XX` Hz.
pub const FREQUENCY: Format = Format { bytes: 2, decimals: 2, signed: false };
/// `XX.XXXX` kW: maximum demand (followed by its time `YYMMDDhhmm`).
pub const DEMAND: Format = Format { bytes: 3, decimals: 4, signed: false };

/// `hhmmss`: the meter's time of day (read as its offset from the gateway's clock).
pub const TIME: Format = Format { bytes: 3, decimals: 0, signed: false };

/// One thing a meter can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// The 2007 identifier DI3 DI2 DI1 DI0 (`0x0001_0000`), or the 1997 one (`0x9010`).
    pub di: u32,
    pub name: &'static str,
    pub quantity: Quantity,
    pub unit: &'static str,
    pub format: Format,
}

const fn item(di: u32, name: &'static str, quantity: Quantity, unit: &'static str, format: Format) -> Item {
    Item { di, name, quantity, unit, format }
}

/// DL/T 645-2007: energy per tariff period (A.1: DI1 00 total, 01–04 the periods 尖峰平谷),
/// phase variables (A.3), power factor, frequency, maximum demand and the clock.
pub const ITEMS_2007: &[Item] = &[
    item(0x0001_0000, "energy_import", Quantity::EnergyImport, "kWh", ENERGY),
    item(0x0001_0100, "energy_import_t1", Quantity::EnergyImport, "kWh", ENERGY),
    item(0x0001_0200, "energy_import_t2", Quantity::EnergyImport, "kWh", ENERGY),
    item(0x0001_0300, "energy_import_t3", Quantity::EnergyImport, "kWh", ENERGY),
    item(0x0001_0400, "energy_import_t4", Quantity::EnergyImport, "kWh", ENERGY),
    item(0x0002_0000, "energy_export", Quantity::EnergyExport, "kWh", ENERGY),
    item(0x0201_0100, "voltage_l1", Quantity::Voltage, "V", VOLTAGE),
    item(0x0201_0200, "voltage_l2", Quantity::Voltage, "V", VOLTAGE),
    item(0x0201_0300, "voltage_l3", Quantity::Voltage, "V", VOLTAGE),
    item(0x0202_0100, "current_l1", Quantity::Current, "A", CURRENT),
    item(0x0202_0200, "current_l2", Quantity::Current, "A", CURRENT),
    item(0x0202_0300, "current_l3", Quantity::Current, "A", CURRENT),
    item(0x0203_0000, "power_total", Quantity::ActivePower, "kW", POWER),
    item(0x0203_0100, "power_l1", Quantity::ActivePower, "kW", POWER),
    item(0x0203_0200, "power_l2", Quantity::ActivePower, "kW", POWER),
    item(0x0203_0300, "power_l3", Quantity::ActivePower, "kW", POWER),
    item(0x0206_0000, "power_factor", Quantity::PowerFactor, "", POWER_FACTOR),
    item(0x0280_0002, "frequency", Quantity::Frequency, "Hz", FREQUENCY),
    item(0x0101_0000, "max_demand", Quantity::ActivePower, "kW", DEMAND),
    // A.5: the time of day (04000102H); the date (04000101H) is not read, a clock
    // that drifts walks in seconds a day, not days
    item(0x0400_0102, "clock", Quantity::ClockOffset, "s", TIME),
];

/// DL/T 645-1997 (appendix A): the same quantities, fewer digits.
pub const ITEMS_1997: &[Item] = &[
    item(0x9010, "energy_import", Quantity::EnergyImport, "kWh", ENERGY),
    item(0x9011, "energy_import_t1", Quantity::EnergyImport, "kWh", ENERGY),
    item(0x9012, "energy_import_t2", Quantity::EnergyImport, "kWh", ENERGY),
    item(0x9013, "energy_import_t3", Quantity::EnergyImport, "kWh", ENERGY),
    item(0x9014, "energy_import_t4", Quantity::EnergyImport, "kWh", ENERGY),
    item(0x9020, "energy_export", Quantity::EnergyExport, "kWh", ENERGY),
    item(0xB611, "voltage_l1", Quantity::Voltage, "V", Format { bytes: 2, decimals: 0, signed: false }),
    item(0xB612, "voltage_l2", Quantity::Voltage, "V", Format { bytes: 2, decimals: 0, signed: false }),
    item(0xB613, "voltage_l3", Quantity::Voltage, "V", Format { bytes: 2, decimals: 0, signed: false }),
    item(0xB621, "current_l1", Quantity::Current, "A", Format { bytes: 2, decimals: 2, signed: false }),
    item(0xB622, "current_l2", Quantity::Current, "A", Format { bytes: 2, decimals: 2, signed: false }),
    item(0xB623, "current_l3", Quantity::Current, "A", Format { bytes: 2, decimals: 2, signed: false }),
    item(0xB630, "power_total", Quantity::ActivePower, "kW", Format { bytes: 3, decimals: 4, signed: false }),
    item(0xB650, "power_factor", Quantity::PowerFactor, "", Format { bytes: 2, decimals: 3, signed: false }),
    item(0xC011, "clock", Quantity::ClockOffset, "s", TIME),
];

/// Why a value's bytes cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("{got} byte(s) where {want} were expected")]
    Length { want: usize, got: usize },
    /// A nibble above 9: not BCD (a meter without the value often answers FFH).
    #[error("byte {0:02X}H is not BCD")]
    NotBcd(u8),
    #[error("{0} is not a date and time")]
    BadTime(String),
}

fn digits(b: u8) -> Result<u32, DataError> {
    let (hi, lo) = (b >> 4, b & 0x0F);
    if hi > 9 || lo > 9 {
        return Err(DataError::NotBcd(b));
    }
    Ok(u32::from(hi) * 10 + u32::from(lo))
}

/// A value from its bytes as the frame's DATA carries them (33H already removed, least
/// significant byte first).
pub fn value(bytes: &[u8], f: Format) -> Result<f64, DataError> {
    let want = usize::from(f.bytes);
    if bytes.len() != want {
        return Err(DataError::Length { want, got: bytes.len() });
    }
    let mut n: u64 = 0;
    let mut negative = false;
    for (i, b) in bytes.iter().rev().enumerate() {
        let mut b = *b;
        if i == 0 && f.signed {
            negative = b & 0x80 != 0;
            b &= 0x7F;
        }
        n = n * 100 + u64::from(digits(b)?);
    }
    let v = n as f64 / 10f64.powi(i32::from(f.decimals));
    Ok(if negative { -v } else { v })
}

/// A value's bytes for the wire's DATA (before 33H is added): for tests and simulators.
pub fn bytes_of(v: f64, f: Format) -> Vec<u8> {
    let scaled = (v.abs() * 10f64.powi(i32::from(f.decimals))).round() as u64;
    let mut out = Vec::with_capacity(usize::from(f.bytes));
    let mut n = scaled;
    for _ in 0..f.bytes {
        let pair = (n % 100) as u8;
        out.push(((pair / 10) << 4) | (pair % 10));
        n /= 100;
    }
    if f.signed && v < 0.0 {
        if let Some(top) = out.last_mut() {
            *top |= 0x80;
        }
    }
    out
}

/// Maximum demand and when it occurred (`XX.XXXX` kW then `YYMMDDhhmm`, 8 bytes).
pub fn demand(bytes: &[u8]) -> Result<(f64, NaiveDateTime), DataError> {
    if bytes.len() != 8 {
        return Err(DataError::Length { want: 8, got: bytes.len() });
    }
    let kw = value(&bytes[..3], DEMAND)?;
    // the time's bytes, least significant (minutes) first
    let t: Vec<u32> = bytes[3..].iter().map(|b| digits(*b)).collect::<Result<_, _>>()?;
    let (mi, h, d, mo, y) = (t[0], t[1], t[2], t[3], t[4]);
    let when = NaiveDate::from_ymd_opt(2000 + y as i32, mo, d)
        .and_then(|date| date.and_hms_opt(h, mi, 0))
        .ok_or_else(|| DataError::BadTime(format!("20{y:02}-{mo:02}-{d:02} {h:02}:{mi:02}")))?;
    Ok((kw, when))
}

/// The meter's clock from its date (04000101H, `YYMMDDWW`) and time (04000102H,
/// `hhmmss`) answers.
pub fn clock(date: &[u8], time: &[u8]) -> Result<NaiveDateTime, DataError> {
    if date.len() != 4 || time.len() != 3 {
        return Err(DataError::Length { want: 7, got: date.len() + time.len() });
    }
    let d: Vec<u32> = date.iter().map(|b| digits(*b)).collect::<Result<_, _>>()?;
    let t: Vec<u32> = time.iter().map(|b| digits(*b)).collect::<Result<_, _>>()?;
    // date: WW DD MM YY; time: ss mm hh (least significant first)
    let day = NaiveDate::from_ymd_opt(2000 + d[3] as i32, d[2], d[1]);
    let hms = NaiveTime::from_hms_opt(t[2], t[1], t[0]);
    day.zip(hms).map(|(a, b)| a.and_time(b)).ok_or_else(|| DataError::BadTime(format!("{d:?} {t:?}")))
}

/// DI 04000101H and 04000102H: the meter's date and time.
pub const CLOCK_DATE: u32 = 0x0400_0101;
pub const CLOCK_TIME: u32 = 0x0400_0102;

/// The meter's time of day from a [`TIME`] answer (`ss mm hh` on the wire).
pub fn time_of_day(bytes: &[u8]) -> Result<NaiveTime, DataError> {
    if bytes.len() != 3 {
        return Err(DataError::Length { want: 3, got: bytes.len() });
    }
    let t: Vec<u32> = bytes.iter().map(|b| digits(*b)).collect::<Result<_, _>>()?;
    NaiveTime::from_hms_opt(t[2], t[1], t[0])
        .ok_or_else(|| DataError::BadTime(format!("{:02}:{:02}:{:02}", t[2], t[1], t[0])))
}

/// A meter's time of day less the gateway's, in seconds, the nearer way round midnight
/// (within ±12 h): 23:58 against 00:03 is five minutes slow, not 23 h 55 min fast.
pub fn offset_of_day(meter: NaiveTime, gateway: NaiveTime) -> f64 {
    let d = (meter - gateway).num_milliseconds() as f64 / 1000.0;
    if d > 43_200.0 {
        d - 86_400.0
    } else if d <= -43_200.0 {
        d + 86_400.0
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_reads_as_its_offset_the_near_way_round_midnight() {
        let hms = |h, m, s| NaiveTime::from_hms_opt(h, m, s).unwrap();
        // 15:30:09 is sent 09 30 15
        assert_eq!(time_of_day(&[0x09, 0x30, 0x15]), Ok(hms(15, 30, 9)));
        assert!(matches!(time_of_day(&[0x09, 0x61, 0x15]), Err(DataError::BadTime(_))));
        assert_eq!(time_of_day(&[0x09, 0x30]), Err(DataError::Length { want: 3, got: 2 }));
        assert_eq!(offset_of_day(hms(15, 37, 21), hms(15, 30, 9)), 432.0);
        assert_eq!(offset_of_day(hms(23, 58, 0), hms(0, 3, 0)), -300.0);
        assert_eq!(offset_of_day(hms(0, 1, 0), hms(23, 59, 0)), 120.0);
    }

    #[test]
    fn bcd_values_read_with_their_decimals_and_sign() {
        // 1234.56 kWh is 00 12 34 56, sent 56 34 12 00
        assert_eq!(value(&[0x56, 0x34, 0x12, 0x00], ENERGY), Ok(1234.56));
        // 220.1 V
        assert_eq!(value(&[0x01, 0x22], VOLTAGE), Ok(220.1));
        // −1.234 A: the top bit of the most significant byte
        assert_eq!(value(&[0x34, 0x12, 0x80], CURRENT), Ok(-1.234));
        // power factor 0.987, and −0.5
        assert_eq!(value(&[0x87, 0x09], POWER_FACTOR), Ok(0.987));
        assert_eq!(value(&[0x00, 0x85], POWER_FACTOR), Ok(-0.5));
        assert_eq!(value(&[0x00, 0x50], FREQUENCY), Ok(50.0));
        assert_eq!(value(&[0xFF, 0xFF, 0xFF, 0xFF], ENERGY), Err(DataError::NotBcd(0xFF)));
        assert_eq!(value(&[0x01], VOLTAGE), Err(DataError::Length { want: 2, got: 1 }));
        for (v, f) in [(1234.56, ENERGY), (-1.234, CURRENT), (12.3456, POWER), (-0.5, POWER_FACTOR)] {
            assert_eq!(value(&bytes_of(v, f), f), Ok(v), "{v}");
        }
    }

    #[test]
    fn demand_and_clock_read_their_times() {
        // 12.3456 kW at 2026-11-30 18:45: 56 34 12 | 45 18 30 11 26
        let (kw, at) = demand(&[0x56, 0x34, 0x12, 0x45, 0x18, 0x30, 0x11, 0x26]).unwrap();
        assert_eq!(kw, 12.3456);
        assert_eq!(at.to_string(), "2026-11-30 18:45:00");
        assert!(matches!(demand(&[0x56, 0x34, 0x12, 0x45, 0x18, 0x31, 0x02, 0x26]), Err(DataError::BadTime(_))));
        // Saturday 2026-12-05 09:30:15: date 06 05 12 26, time 15 30 09
        let t = clock(&[0x06, 0x05, 0x12, 0x26], &[0x15, 0x30, 0x09]).unwrap();
        assert_eq!(t.to_string(), "2026-12-05 09:30:15");
    }

    #[test]
    fn every_identifier_is_listed_once() {
        for items in [ITEMS_2007, ITEMS_1997] {
            let mut seen = std::collections::HashSet::new();
            for i in items {
                assert!(seen.insert(i.di), "{:X}", i.di);
            }
        }
    }
}

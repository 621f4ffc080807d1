//! Registers → values. Pure functions, no I/O: a point's raw words (or bits) go in, an
//! engineering value and its quality come out.
//!
//! Word and byte order follow the names most register maps use, with `A` the most
//! significant byte of a 32-bit value:
//!
//! | order | 32-bit wire bytes | meaning                                         |
//! |-------|-------------------|-------------------------------------------------|
//! | ABCD  | A B C D           | big-endian words, high word first (Modbus norm) |
//! | CDAB  | C D A B           | low word first ("word swap")                    |
//! | BADC  | B A D C           | bytes swapped inside each word                  |
//! | DCBA  | D C B A           | fully little-endian                             |
//!
//! For 64-bit types the same rule extends to four words (CDAB = words reversed).

use crate::model::Quality;

use super::profile::{DataType, Point, Profile, RegisterImage, Transform, WordOrder};

/// Reorders `words` (as read from the wire) into big-endian order (most significant word
/// first, high byte first in each word).
pub fn to_big_endian(words: &[u16], order: WordOrder) -> Vec<u16> {
    let mut w: Vec<u16> = words.to_vec();
    if matches!(order, WordOrder::Badc | WordOrder::Dcba) {
        for x in &mut w {
            *x = x.swap_bytes();
        }
    }
    if matches!(order, WordOrder::Cdab | WordOrder::Dcba) {
        w.reverse();
    }
    w
}

fn be_u32(w: &[u16]) -> u32 {
    (u32::from(w[0]) << 16) | u32::from(w[1])
}

fn be_u64(w: &[u16]) -> u64 {
    (u64::from(w[0]) << 48) | (u64::from(w[1]) << 32) | (u64::from(w[2]) << 16) | u64::from(w[3])
}

/// Decodes the raw number (before scale and offset) of a register point.
/// `words` must hold exactly `data_type.registers()` words; the planner guarantees it.
pub fn raw_register_value(words: &[u16], data_type: DataType, order: WordOrder) -> Option<f64> {
    if words.len() != data_type.registers() as usize {
        return None;
    }
    let value = match data_type {
        DataType::Bool => f64::from(u8::from(words[0] != 0)),
        DataType::Bit(n) => f64::from((words[0] >> n) & 1),
        // Single-register types: byte order still applies (BADC/DCBA swap the bytes).
        DataType::U16 => f64::from(to_big_endian(words, order)[0]),
        DataType::I16 => f64::from(to_big_endian(words, order)[0] as i16),
        DataType::U32 => f64::from(be_u32(&to_big_endian(words, order))),
        DataType::I32 => f64::from(be_u32(&to_big_endian(words, order)) as i32),
        DataType::F32 => f64::from(f32::from_bits(be_u32(&to_big_endian(words, order)))),
        // u64/i64 beyond 2^53 lose precision in f64; no meter counts that far.
        DataType::U64 => be_u64(&to_big_endian(words, order)) as f64,
        DataType::I64 => be_u64(&to_big_endian(words, order)) as i64 as f64,
        DataType::F64 => f64::from_bits(be_u64(&to_big_endian(words, order))),
        DataType::I32F32 => {
            let int = be_u32(&to_big_endian(&words[0..2], order)) as i32;
            let frac = f32::from_bits(be_u32(&to_big_endian(&words[2..4], order)));
            f64::from(int) + f64::from(frac)
        }
    };
    Some(value)
}

/// The inverse of [`raw_register_value`]: a raw number → the words a device would send.
/// Integers are rounded and saturated to the type's range. Used by the simulator and by
/// round-trip tests.
pub fn encode_register_value(value: f64, data_type: DataType, order: WordOrder) -> Vec<u16> {
    // The order permutations are their own inverses, so applying them to big-endian
    // words gives the wire order.
    let wire = |be: Vec<u16>| to_big_endian(&be, order);
    let w32 = |x: u32| vec![(x >> 16) as u16, x as u16];
    let w64 = |x: u64| vec![(x >> 48) as u16, (x >> 32) as u16, (x >> 16) as u16, x as u16];
    match data_type {
        DataType::Bool => vec![u16::from(value != 0.0)],
        DataType::Bit(n) => vec![u16::from(value != 0.0) << n],
        DataType::U16 => wire(vec![value.round() as u16]),
        DataType::I16 => wire(vec![value.round() as i16 as u16]),
        DataType::U32 => wire(w32(value.round() as u32)),
        DataType::I32 => wire(w32(value.round() as i32 as u32)),
        DataType::F32 => wire(w32((value as f32).to_bits())),
        DataType::U64 => wire(w64(value.round() as u64)),
        DataType::I64 => wire(w64(value.round() as i64 as u64)),
        DataType::F64 => wire(w64(value.to_bits())),
        DataType::I32F32 => {
            let int = value.floor();
            let frac = (value - int) as f32;
            let mut words = wire(w32(int as i32 as u32));
            words.extend(wire(w32(frac.to_bits())));
            words
        }
    }
}

/// The outcome of decoding one point.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub value: Option<f64>,
    pub quality: Quality,
}

impl Decoded {
    fn bad(quality: Quality) -> Self {
        Decoded { value: None, quality }
    }
}

/// Turns a raw number into the point's engineering value: scale and offset, an optional
/// power-of-ten exponent read from another point (totalizer multipliers), the 4–20 mA
/// loop mapping, and the plausibility range.
///
/// `exponent` is the decoded value of the point named by `exponent_from`, when the point
/// has one: `None` there means the multiplier could not be read, and the point cannot be
/// trusted either.
pub fn apply(point: &Point, raw: f64, exponent: Option<Option<f64>>) -> Decoded {
    if !raw.is_finite() {
        return Decoded::bad(Quality::NotFinite);
    }
    let mut value = raw * point.scale + point.offset;
    if let Some(exp) = exponent {
        let Some(e) = exp else {
            return Decoded::bad(Quality::DecodeError);
        };
        // A multiplier register holds a small integer; anything else is a decode error,
        // not a reason to multiply by 10^37.
        if e.fract() != 0.0 || !(-12.0..=12.0).contains(&(e + f64::from(point.exponent_offset))) {
            return Decoded::bad(Quality::DecodeError);
        }
        value *= 10f64.powi(e as i32 + point.exponent_offset);
    }
    if let Transform::CurrentLoop { low, high, fault_below, fault_above } = point.transform {
        let ma = value;
        value = low + (ma - 4.0) / 16.0 * (high - low);
        if ma < fault_below || ma > fault_above {
            return Decoded { value: Some(value), quality: Quality::OutOfRange };
        }
    }
    if !value.is_finite() {
        return Decoded::bad(Quality::NotFinite);
    }
    let below = point.min.is_some_and(|m| value < m);
    let above = point.max.is_some_and(|m| value > m);
    if below || above {
        return Decoded { value: Some(value), quality: Quality::OutOfRange };
    }
    Decoded { value: Some(value), quality: Quality::Good }
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
                raw_register_value(words, p.data_type, p.order).ok_or(Quality::DecodeError)
            })
            .collect();
        // Exponent points are plain points (validation forbids chains), so one pass over
        // them first is enough.
        let plain: Vec<Option<Decoded>> = self
            .points
            .iter()
            .zip(&raw)
            .map(|(p, r)| match (p.exponent_from, r) {
                (None, Ok(v)) => Some(apply(p, *v, None)),
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
                    Ok(v) => apply(p, v, Some(exponent)),
                    Err(q) => Decoded { value: None, quality: q },
                }
            })
            .collect()
    }

    /// Runs the profile's test vectors; returns one sentence per mismatch.
    pub fn check_vectors(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for (vi, v) in self.vectors.iter().enumerate() {
            let decoded = match &v.answers {
                Some(a) => self.decode_answers(a, v.at),
                None => self.decode(&v.image),
            };
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
                }
                // an expected value implies good quality unless the vector says otherwise
                let want_code = want_q.or(v.expect.contains_key(&*p.name).then_some("good"));
                if let Some(want_code) = want_code.filter(|w| d.quality.code() != *w) {
                    failures.push(format!(
                        "profile {}: {label}: point {} has quality {}, expected {want_code}",
                        self.name,
                        p.name,
                        d.quality.code()
                    ));
                }
            }
        }
        failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::profile::{DataType::*, WordOrder::*};

    /// 0x4148_0000 is 12.5f32: A=0x41 B=0x48 C=0x00 D=0x00.
    #[test]
    fn f32_in_every_order() {
        let cases =
            [(Abcd, [0x4148, 0x0000]), (Cdab, [0x0000, 0x4148]), (Badc, [0x4841, 0x0000]), (Dcba, [0x0000, 0x4841])];
        for (order, words) in cases {
            assert_eq!(raw_register_value(&words, F32, order), Some(12.5), "{order:?}");
        }
    }

    /// 0x1234_5678 = 305419896; as i32 the same; 0xFFFF_FFFE = u32 4294967294, i32 -2.
    #[test]
    fn u32_i32_in_every_order() {
        let cases =
            [(Abcd, [0x1234, 0x5678]), (Cdab, [0x5678, 0x1234]), (Badc, [0x3412, 0x7856]), (Dcba, [0x7856, 0x3412])];
        for (order, words) in cases {
            assert_eq!(raw_register_value(&words, U32, order), Some(305_419_896.0), "{order:?}");
            assert_eq!(raw_register_value(&words, I32, order), Some(305_419_896.0), "{order:?}");
        }
        let neg =
            [(Abcd, [0xFFFF, 0xFFFE]), (Cdab, [0xFFFE, 0xFFFF]), (Badc, [0xFFFF, 0xFEFF]), (Dcba, [0xFEFF, 0xFFFF])];
        for (order, words) in neg {
            assert_eq!(raw_register_value(&words, U32, order), Some(4_294_967_294.0), "{order:?}");
            assert_eq!(raw_register_value(&words, I32, order), Some(-2.0), "{order:?}");
        }
    }

    /// 0x0102_0304_0506_0708 = 72623859790382856; -3 as i64 = 0xFFFF_FFFF_FFFF_FFFD;
    /// 0x4059_0000_0000_0000 = 100.0f64.
    #[test]
    fn sixty_four_bit_types_in_every_order() {
        let cases = [
            (Abcd, [0x0102, 0x0304, 0x0506, 0x0708]),
            (Cdab, [0x0708, 0x0506, 0x0304, 0x0102]),
            (Badc, [0x0201, 0x0403, 0x0605, 0x0807]),
            (Dcba, [0x0807, 0x0605, 0x0403, 0x0201]),
        ];
        for (order, words) in cases {
            assert_eq!(raw_register_value(&words, U64, order), Some(72_623_859_790_382_856.0));
            assert_eq!(raw_register_value(&words, I64, order), Some(72_623_859_790_382_856.0));
        }
        let neg = [
            (Abcd, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFD]),
            (Cdab, [0xFFFD, 0xFFFF, 0xFFFF, 0xFFFF]),
            (Badc, [0xFFFF, 0xFFFF, 0xFFFF, 0xFDFF]),
            (Dcba, [0xFDFF, 0xFFFF, 0xFFFF, 0xFFFF]),
        ];
        for (order, words) in neg {
            assert_eq!(raw_register_value(&words, I64, order), Some(-3.0), "{order:?}");
        }
        let f = [
            (Abcd, [0x4059, 0, 0, 0]),
            (Cdab, [0, 0, 0, 0x4059]),
            (Badc, [0x5940, 0, 0, 0]),
            (Dcba, [0, 0, 0, 0x5940]),
        ];
        for (order, words) in f {
            assert_eq!(raw_register_value(&words, F64, order), Some(100.0), "{order:?}");
        }
    }

    #[test]
    fn sixteen_bit_types_and_bits() {
        assert_eq!(raw_register_value(&[0xFFFF], U16, Abcd), Some(65535.0));
        assert_eq!(raw_register_value(&[0xFFFF], I16, Abcd), Some(-1.0));
        assert_eq!(raw_register_value(&[0x8000], I16, Abcd), Some(-32768.0));
        // BADC/DCBA swap the two bytes of a single register.
        assert_eq!(raw_register_value(&[0x0100], U16, Badc), Some(1.0));
        assert_eq!(raw_register_value(&[0x0100], U16, Dcba), Some(1.0));
        assert_eq!(raw_register_value(&[0x0100], U16, Cdab), Some(256.0));
        assert_eq!(raw_register_value(&[0b0000_0000_0010_0100], Bit(2), Abcd), Some(1.0));
        assert_eq!(raw_register_value(&[0b0000_0000_0010_0100], Bit(3), Abcd), Some(0.0));
        assert_eq!(raw_register_value(&[0x8000], Bit(15), Abcd), Some(1.0));
        assert_eq!(raw_register_value(&[1], Bool, Abcd), Some(1.0));
        assert_eq!(raw_register_value(&[0], Bool, Abcd), Some(0.0));
    }

    /// TUF-2000M style totalizer: LONG integer part then REAL4 fraction, low word first.
    /// 123456 = 0x0001_E240; 0.75f32 = 0x3F40_0000.
    #[test]
    fn integer_plus_fraction() {
        let words = [0xE240, 0x0001, 0x0000, 0x3F40];
        assert_eq!(raw_register_value(&words, I32F32, Cdab), Some(123_456.75));
        let words = [0x0001, 0xE240, 0x3F40, 0x0000];
        assert_eq!(raw_register_value(&words, I32F32, Abcd), Some(123_456.75));
    }

    #[test]
    fn encode_round_trips_in_every_order() {
        let cases = [
            (U16, 65535.0),
            (I16, -1234.0),
            (U32, 4_000_000_000.0),
            (I32, -123_456.0),
            (F32, 12.5),
            (U64, 1e15),
            (I64, -1e15),
            (F64, 0.1),
            (I32F32, 98_765.25),
        ];
        for order in [Abcd, Cdab, Badc, Dcba] {
            for (dt, v) in cases {
                let words = encode_register_value(v, dt, order);
                assert_eq!(words.len(), dt.registers() as usize);
                assert_eq!(raw_register_value(&words, dt, order), Some(v), "{dt:?} {order:?}");
            }
        }
    }

    #[test]
    fn wrong_word_count_is_refused() {
        assert_eq!(raw_register_value(&[1], F32, Abcd), None);
        assert_eq!(raw_register_value(&[1, 2, 3], U64, Abcd), None);
    }

    fn point() -> Point {
        Point::for_test("p", F32)
    }

    #[test]
    fn scale_offset_and_range() {
        let mut p = point();
        p.scale = 0.1;
        p.offset = -5.0;
        assert_eq!(apply(&p, 100.0, None), Decoded { value: Some(5.0), quality: Quality::Good });
        p.min = Some(0.0);
        p.max = Some(4.0);
        assert_eq!(apply(&p, 100.0, None), Decoded { value: Some(5.0), quality: Quality::OutOfRange });
        assert_eq!(apply(&p, 10.0, None), Decoded { value: Some(-4.0), quality: Quality::OutOfRange });
    }

    #[test]
    fn nan_and_infinity_have_no_value() {
        let p = point();
        assert_eq!(apply(&p, f64::NAN, None), Decoded { value: None, quality: Quality::NotFinite });
        assert_eq!(apply(&p, f64::INFINITY, None).quality, Quality::NotFinite);
        let nan = raw_register_value(&[0x7FC0, 0x0000], F32, Abcd).unwrap();
        assert_eq!(apply(&p, nan, None).quality, Quality::NotFinite);
    }

    #[test]
    fn exponent_from_a_multiplier_point() {
        let mut p = point();
        p.exponent_offset = -3;
        // multiplier n = 3 → ×10^0; n = 4 → ×10; n = 0 → ×0.001
        assert_eq!(apply(&p, 1234.5, Some(Some(3.0))).value, Some(1234.5));
        assert_eq!(apply(&p, 1234.5, Some(Some(4.0))).value, Some(12345.0));
        assert!((apply(&p, 1234.5, Some(Some(0.0))).value.unwrap() - 1.2345).abs() < 1e-12);
        // unreadable or absurd multiplier: no value
        assert_eq!(apply(&p, 1.0, Some(None)).quality, Quality::DecodeError);
        assert_eq!(apply(&p, 1.0, Some(Some(2.5))).quality, Quality::DecodeError);
        assert_eq!(apply(&p, 1.0, Some(Some(400.0))).quality, Quality::DecodeError);
    }

    /// 4–20 mA onto 0–1.6 MPa; raw counts in µA (scale 0.001 → mA).
    #[test]
    fn current_loop() {
        let mut p = Point::for_test("pressure", U16);
        p.scale = 0.001;
        p.transform = Transform::CurrentLoop { low: 0.0, high: 1.6, fault_below: 3.6, fault_above: 21.0 };
        let d = apply(&p, 12_000.0, None);
        assert_eq!(d.quality, Quality::Good);
        assert!((d.value.unwrap() - 0.8).abs() < 1e-12);
        let d = apply(&p, 4_000.0, None);
        assert_eq!(d.value, Some(0.0));
        // a broken wire reads ~0 mA: flagged, value kept for diagnosis
        let d = apply(&p, 0.0, None);
        assert_eq!(d.quality, Quality::OutOfRange);
        assert!((d.value.unwrap() + 0.4).abs() < 1e-12);
        // a transmitter signalling failure high (> 21 mA)
        assert_eq!(apply(&p, 22_000.0, None).quality, Quality::OutOfRange);
        // 3.8 mA is under-range but live (NAMUR NE 43): still good
        assert_eq!(apply(&p, 3_800.0, None).quality, Quality::Good);
    }
}

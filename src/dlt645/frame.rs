//! The DL/T 645 frame (DL/T 645-2007 clause 6; the 1997 edition's frame is the same):
//!
//! ```text
//! [FE FE FE FE]  68  A0 A1 A2 A3 A4 A5  68  C  L  DATA…  CS  16
//! ```
//!
//! - an optional wake-up preamble of `FE` bytes, which a receiver skips (clause 6.2);
//! - the address: 12 BCD digits, its lowest byte first (6.1; `AA` is a wildcard digit
//!   pair, `99…99` the broadcast address);
//! - `C`, the control code (6.2.3): bit 7 the direction (1: from the meter), bit 6 an
//!   abnormal answer, bit 5 a following frame, bits 4–0 the function;
//! - `L`, the length of DATA (at most 200 in 2007 for a read, 255 on the wire);
//! - DATA with 33H added to every byte on the wire (6.2.6);
//! - `CS`, the sum modulo 256 of every byte from the first 68H to the end of DATA (6.2.7);
//! - the end byte 16H.
//!
//! Pure: bytes in, frames out. A stream decoder skips noise before a frame, says when it
//! needs more bytes, and names what is wrong with a damaged frame.

use std::fmt;

/// A meter's address: 12 BCD digits, kept as written (`"000012345678"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address(pub [u8; 6]);

impl Address {
    /// The read-address wildcard (`AAAAAAAAAAAA`): any single meter on the line answers.
    pub const WILDCARD: Address = Address([0xAA; 6]);
    /// The broadcast address (`999999999999`): every meter acts, none answers.
    pub const BROADCAST: Address = Address([0x99; 6]);

    /// An address as printed on the meter's plate: 12 digits (shorter ones are padded
    /// with leading zeros); `A` digits are wildcards.
    pub fn parse(s: &str) -> Result<Address, FrameError> {
        let s = s.trim();
        if s.is_empty() || s.len() > 12 || !s.chars().all(|c| c.is_ascii_digit() || c == 'A' || c == 'a') {
            return Err(FrameError::BadAddress(s.to_string()));
        }
        let padded = format!("{s:0>12}");
        let digits = padded.as_bytes();
        let mut out = [0u8; 6];
        for (i, pair) in digits.chunks(2).enumerate() {
            let nib = |c: u8| if c.is_ascii_digit() { c - b'0' } else { 0x0A };
            // the printed address is most significant first; the wire is least first
            out[5 - i] = (nib(pair[0]) << 4) | nib(pair[1]);
        }
        Ok(Address(out))
    }

    /// Whether an answer from `other` may be for a request to `self`: the same digits,
    /// a wildcard pair matching any.
    pub fn matches(&self, other: &Address) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| *a == 0xAA || a == b)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().rev() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// One frame, its DATA without the 33H offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub address: Address,
    pub control: u8,
    pub data: Vec<u8>,
}

/// What is wrong with bytes that should hold a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not a whole frame yet: read more.
    #[error("an incomplete frame ({0} byte(s) so far)")]
    Incomplete(usize),
    #[error("no frame start (68H … 68H) in {0} byte(s)")]
    NoStart(usize),
    #[error("checksum {got:02X}H where the frame sums to {expected:02X}H")]
    Checksum { expected: u8, got: u8 },
    #[error("the frame ends with {0:02X}H, not 16H")]
    BadEnd(u8),
    #[error("`{0}` is not a meter address: up to 12 digits (A for a wildcard digit)")]
    BadAddress(String),
    #[error("DATA of {0} bytes does not fit a frame (at most 255)")]
    TooLong(usize),
}

/// The frame on the wire, with `preamble` FE bytes before it (4 wake a meter that sleeps
/// between requests; 0 for a line that does not need them).
pub fn encode(f: &Frame, preamble: usize) -> Result<Vec<u8>, FrameError> {
    let len = u8::try_from(f.data.len()).map_err(|_| FrameError::TooLong(f.data.len()))?;
    let mut out = vec![0xFE; preamble];
    let start = out.len();
    out.push(0x68);
    out.extend_from_slice(&f.address.0);
    out.push(0x68);
    out.push(f.control);
    out.push(len);
    out.extend(f.data.iter().map(|b| b.wrapping_add(0x33)));
    let cs = checksum(&out[start..]);
    out.push(cs);
    out.push(0x16);
    Ok(out)
}

/// The sum modulo 256 of `bytes`.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
}

/// The first frame in `buf`, and how many bytes it (with what came before it) took.
/// Bytes before a frame start (the FE preamble, line noise) are skipped;
/// [`FrameError::Incomplete`] asks for more bytes.
pub fn decode(buf: &[u8]) -> Result<(Frame, usize), FrameError> {
    // a start is 68H with another 68H seven bytes on; anything before it is skipped
    let Some(at) = (0..buf.len()).find(|&i| buf[i] == 0x68 && buf.get(i + 7).is_none_or(|b| *b == 0x68)) else {
        return Err(FrameError::NoStart(buf.len()));
    };
    let f = &buf[at..];
    if f.len() < 12 {
        return Err(FrameError::Incomplete(f.len()));
    }
    let len = usize::from(f[9]);
    let total = 12 + len;
    if f.len() < total {
        return Err(FrameError::Incomplete(f.len()));
    }
    let expected = checksum(&f[..10 + len]);
    if f[10 + len] != expected {
        return Err(FrameError::Checksum { expected, got: f[10 + len] });
    }
    if f[11 + len] != 0x16 {
        return Err(FrameError::BadEnd(f[11 + len]));
    }
    let mut address = [0u8; 6];
    address.copy_from_slice(&f[1..7]);
    let data = f[10..10 + len].iter().map(|b| b.wrapping_sub(0x33)).collect();
    Ok((Frame { address: Address(address), control: f[8], data }, at + total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_address_broadcast_is_the_frame_every_meter_knows() {
        let f = Frame { address: Address::WILDCARD, control: 0x13, data: vec![] };
        // 68 + AA×6 + 68 + 13 + 00 = 4DFH: CS = DFH
        assert_eq!(encode(&f, 0).unwrap(), [0x68, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0x68, 0x13, 0x00, 0xDF, 0x16]);
        assert_eq!(encode(&f, 4).unwrap()[..5], [0xFE, 0xFE, 0xFE, 0xFE, 0x68]);
    }

    #[test]
    fn an_address_is_printed_most_significant_first_and_sent_least_first() {
        let a = Address::parse("000012345678").unwrap();
        assert_eq!(a.0, [0x78, 0x56, 0x34, 0x12, 0x00, 0x00]);
        assert_eq!(a.to_string(), "000012345678");
        assert_eq!(Address::parse("12345678").unwrap(), a, "short addresses are zero-padded");
        assert_eq!(Address::parse("AAAAAAAAAAAA").unwrap(), Address::WILDCARD);
        assert!(Address::parse("1234567890123").is_err());
        assert!(Address::parse("12-34").is_err());
        assert!(Address::WILDCARD.matches(&a) && a.matches(&a) && !a.matches(&Address::BROADCAST));
    }

    #[test]
    fn a_frame_survives_its_preamble_and_noise_and_a_damaged_one_is_named() {
        let f = Frame { address: Address::parse("000012345678").unwrap(), control: 0x11, data: vec![0, 0, 1, 0] };
        let wire = encode(&f, 4).unwrap();
        let mut noisy = vec![0x00, 0x68, 0x13];
        noisy.extend_from_slice(&wire);
        noisy.push(0x55);
        let (back, used) = decode(&noisy).unwrap();
        assert_eq!(back, f);
        assert_eq!(used, noisy.len() - 1, "the byte after the frame is left for the next one");
        // every shorter prefix asks for more
        for n in 5..wire.len() {
            assert!(matches!(decode(&wire[..n]), Err(FrameError::Incomplete(_))), "{n}");
        }
        let mut bad = wire.clone();
        let cs = bad.len() - 2;
        bad[cs] ^= 0x01;
        assert!(matches!(decode(&bad), Err(FrameError::Checksum { .. })));
        let mut bad = wire.clone();
        let end = bad.len() - 1;
        bad[end] = 0x17;
        assert_eq!(decode(&bad), Err(FrameError::BadEnd(0x17)));
        assert_eq!(decode(&[0xFE, 0xFE, 0x11]), Err(FrameError::NoStart(3)));
        let long = Frame { data: vec![0; 256], ..f };
        assert_eq!(encode(&long, 0), Err(FrameError::TooLong(256)));
    }
}

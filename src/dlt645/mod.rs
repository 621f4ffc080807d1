//! DL/T 645 multi-function electricity meters (DL/T 645-2007, and the 1997 edition many
//! older campus meters still speak) on RS-485: the frame codec ([`frame`]), the data
//! identifiers and BCD formats ([`data`]), and here the exchanges a gateway makes — read
//! one identifier, read a meter's address — with the answers told apart as tokio-modbus
//! tells transport errors from exceptions: a frame that is not an answer to the request
//! (another address, another identifier, a damaged frame) is a transport fault; a meter's
//! abnormal answer (2007 D1H, 1997 C1H) with its error byte is the meter refusing.
//!
//! Control codes (2007 clause 7; 1997 clause 6): read data 11H (1997: 01H), its normal
//! answer 91H or B1H with following frames (81H, A1H), its abnormal answer D1H (C1H);
//! read address 13H, answered 93H. DATA of a 2007 read is the identifier DI0…DI3 (least
//! significant first); of a 1997 read, DI0 DI1.
//!
//! [`link`] exchanges frames on a line; the bus poller (`modbus::poller`) puts meters on
//! the same lines as Modbus devices. Everything else here is pure.

pub mod data;
pub mod frame;
pub mod link;

use frame::{Address, Frame};

/// Which edition a meter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Edition {
    /// DL/T 645-2007: 4-byte identifiers, usually 2400 baud 8E1.
    V2007,
    /// DL/T 645-1997: 2-byte identifiers, usually 1200 baud 8E1.
    V1997,
}

impl Edition {
    fn read(self) -> u8 {
        match self {
            Edition::V2007 => 0x11,
            Edition::V1997 => 0x01,
        }
    }

    fn di_len(self) -> usize {
        match self {
            Edition::V2007 => 4,
            Edition::V1997 => 2,
        }
    }

    /// The line settings the edition's meters leave the factory with: (baud, parity even).
    pub fn usual_line(self) -> (u32, bool) {
        match self {
            Edition::V2007 => (2400, true),
            Edition::V1997 => (1200, true),
        }
    }

    /// The identifiers this edition defines ([`data::ITEMS_2007`], [`data::ITEMS_1997`]).
    pub fn items(self) -> &'static [data::Item] {
        match self {
            Edition::V2007 => data::ITEMS_2007,
            Edition::V1997 => data::ITEMS_1997,
        }
    }
}

/// The request for identifier `di` of the meter at `address`.
pub fn read_request(edition: Edition, address: Address, di: u32) -> Frame {
    let data = di.to_le_bytes()[..edition.di_len()].to_vec();
    Frame { address, control: edition.read(), data }
}

/// The request for the address of the one meter on a line (2007 clause 7.5).
pub fn read_address_request() -> Frame {
    Frame { address: Address::WILDCARD, control: 0x13, data: Vec::new() }
}

/// The error byte of an abnormal answer (2007 clause 7.2, table 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the meter refused: {}", describe(*.0))]
pub struct Refusal(pub u8);

fn describe(err: u8) -> String {
    const BITS: [&str; 7] = [
        "other error",
        "no such data",
        "password wrong or not authorised",
        "baud rate cannot change",
        "too many annual time zones",
        "too many daily time slots",
        "too many tariffs",
    ];
    let named: Vec<&str> = BITS.iter().enumerate().filter(|(i, _)| err & (1 << i) != 0).map(|(_, s)| *s).collect();
    if named.is_empty() {
        format!("error byte {err:02X}H")
    } else {
        format!("{} (error byte {err:02X}H)", named.join(", "))
    }
}

/// A frame that does not answer the request it followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("an answer from meter {got}, not {want}")]
    Address { want: Address, got: Address },
    #[error("control code {0:02X}H does not answer the request")]
    Control(u8),
    #[error("an answer for identifier {got:X}, not {want:X}")]
    Identifier { want: u32, got: u32 },
    #[error("an answer of {0} byte(s) is too short")]
    Short(usize),
}

/// What a meter said to a read request: the value's bytes (33H removed, identifier
/// stripped), or its refusal.
pub fn read_answer(edition: Edition, request: &Frame, answer: &Frame) -> Result<Result<Vec<u8>, Refusal>, Mismatch> {
    if !request.address.matches(&answer.address) {
        return Err(Mismatch::Address { want: request.address, got: answer.address });
    }
    let function = request.control & 0x1F;
    // from the meter (bit 7), the same function; bit 6 an abnormal answer, bit 5 more
    if answer.control & 0x80 == 0 || answer.control & 0x1F != function {
        return Err(Mismatch::Control(answer.control));
    }
    if answer.control & 0x40 != 0 {
        return Ok(Err(Refusal(answer.data.first().copied().unwrap_or(0))));
    }
    let n = edition.di_len();
    if answer.data.len() < n {
        return Err(Mismatch::Short(answer.data.len()));
    }
    let di = |d: &[u8]| d.iter().rev().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    let (want, got) = (di(&request.data[..n.min(request.data.len())]), di(&answer.data[..n]));
    if want != got {
        return Err(Mismatch::Identifier { want, got });
    }
    Ok(Ok(answer.data[n..].to_vec()))
}

/// The address in a read-address answer (93H, six address bytes).
pub fn address_answer(answer: &Frame) -> Result<Address, Mismatch> {
    if answer.control != 0x93 {
        return Err(Mismatch::Control(answer.control));
    }
    let bytes: [u8; 6] = answer.data.as_slice().try_into().map_err(|_| Mismatch::Short(answer.data.len()))?;
    Ok(Address(bytes))
}

#[cfg(test)]
mod tests;

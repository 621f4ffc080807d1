//! Modbus TCP framing (the MBAP header) for the four read functions, with the
//! transaction id kept: what lets several requests be in flight on one connection and
//! their answers be matched in whatever order they come.
//!
//! tokio-modbus keeps its codec private and its client waits for each answer before the
//! next request; a pipelined connection needs the frames themselves. Only reads are
//! framed here: writes (valve commands) are rare and stay on tokio-modbus, one at a time.
//!
//! Pure: bytes in, frames out. A frame that cannot be a Modbus TCP answer is an error for
//! the connection (its framing is lost), never a panic.

use super::profile::Table;

/// Length of the MBAP header: transaction id, protocol id, length, unit id.
pub const HEADER: usize = 7;

/// Largest frame a Modbus TCP answer can be (header + 253-byte PDU).
pub const MAX_FRAME: usize = HEADER + 253;

/// The function code that reads `table`.
pub fn function(table: Table) -> u8 {
    match table {
        Table::Coil => 1,
        Table::Discrete => 2,
        Table::Holding => 3,
        Table::Input => 4,
    }
}

/// Appends the request frame reading `count` items of `table` from `start` at `unit`.
pub fn encode_read(out: &mut Vec<u8>, tid: u16, unit: u8, table: Table, start: u16, count: u16) {
    out.extend_from_slice(&tid.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 6, unit, function(table)]);
    out.extend_from_slice(&start.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
}

/// One answer frame: its transaction id, unit, function code and PDU body (after the
/// function code).
#[derive(Debug, PartialEq)]
pub struct Frame<'a> {
    pub tid: u16,
    pub unit: u8,
    pub function: u8,
    pub body: &'a [u8],
}

/// The connection's byte stream cannot be read as Modbus TCP any more.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum FrameError {
    #[error("protocol id {0} is not Modbus (0)")]
    Protocol(u16),
    #[error("frame length {0} is not a Modbus TCP answer's (2..=254)")]
    Length(u16),
}

/// The first complete frame in `buf` and the bytes it takes, or `None` while it is
/// incomplete.
pub fn next_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let tid = u16::from_be_bytes([buf[0], buf[1]]);
    let protocol = u16::from_be_bytes([buf[2], buf[3]]);
    let length = u16::from_be_bytes([buf[4], buf[5]]);
    if protocol != 0 {
        return Err(FrameError::Protocol(protocol));
    }
    // length counts the unit id and the PDU; a PDU is at least a function code
    if !(2..=254).contains(&length) {
        return Err(FrameError::Length(length));
    }
    let total = 6 + usize::from(length);
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((Frame { tid, unit: buf[6], function: buf[7], body: &buf[8..total] }, total)))
}

/// What an answer to a read says.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// `count` values (registers, or bits as 0/1).
    Values(Vec<u16>),
    /// The device refused the request with this exception code.
    Exception(u8),
}

/// The answer's meaning, given the request it answers; `Err` says why it is not a valid
/// answer to that request (the wrong function, the wrong amount of data).
pub fn decode_answer(frame: &Frame<'_>, table: Table, count: u16) -> Result<Answer, String> {
    let f = function(table);
    if frame.function == f | 0x80 {
        return match frame.body {
            [code] => Ok(Answer::Exception(*code)),
            _ => Err(format!("exception answer of {} bytes", frame.body.len())),
        };
    }
    if frame.function != f {
        return Err(format!("answered function {} to a request of function {f}", frame.function));
    }
    let Some((&n, data)) = frame.body.split_first() else { return Err("answer without data".into()) };
    if usize::from(n) != data.len() {
        return Err(format!("answer says {n} bytes and carries {}", data.len()));
    }
    let count = usize::from(count);
    match table {
        Table::Holding | Table::Input => {
            if data.len() != 2 * count {
                return Err(format!("answered {} values where {count} were asked", data.len() / 2));
            }
            Ok(Answer::Values(data.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect()))
        }
        Table::Coil | Table::Discrete => {
            if data.len() != count.div_ceil(8) {
                return Err(format!("answered {} bytes of bits where {count} bits were asked", data.len()));
            }
            Ok(Answer::Values((0..count).map(|i| u16::from(data[i / 8] >> (i % 8) & 1)).collect()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_request_is_the_standard_frame() {
        let mut out = Vec::new();
        encode_read(&mut out, 0x1234, 17, Table::Holding, 107, 3);
        // the example of the Modbus TCP specification, with its transaction id
        assert_eq!(out, [0x12, 0x34, 0, 0, 0, 6, 17, 3, 0, 107, 0, 3]);
        out.clear();
        encode_read(&mut out, 1, 2, Table::Discrete, 0xFFFF, 1);
        assert_eq!(out, [0, 1, 0, 0, 0, 6, 2, 2, 0xFF, 0xFF, 0, 1]);
    }

    #[test]
    fn frames_are_cut_from_a_stream_whatever_its_pieces() {
        let two = [
            0, 9, 0, 0, 0, 7, 1, 3, 4, 0x00, 0x2A, 0xFF, 0xFF, // tid 9: two registers
            0, 8, 0, 0, 0, 3, 2, 0x84, 2, // tid 8: exception 02
        ];
        for cut in 0..two.len() {
            let head = &two[..cut];
            match next_frame(head).unwrap() {
                None => assert!(cut < 13),
                Some((f, used)) => {
                    assert_eq!((f.tid, used), (9, 13));
                    assert!(cut >= 13);
                }
            }
        }
        let (f, used) = next_frame(&two).unwrap().unwrap();
        assert_eq!(decode_answer(&f, Table::Holding, 2), Ok(Answer::Values(vec![42, 0xFFFF])));
        let (g, _) = next_frame(&two[used..]).unwrap().unwrap();
        assert_eq!((g.tid, g.unit), (8, 2));
        assert_eq!(decode_answer(&g, Table::Input, 5), Ok(Answer::Exception(2)));
    }

    #[test]
    fn bits_come_least_significant_first_and_stop_at_the_count() {
        let frame = Frame { tid: 1, unit: 1, function: 1, body: &[2, 0b1000_0101, 0b0000_0011] };
        let Ok(Answer::Values(v)) = decode_answer(&frame, Table::Coil, 10) else { panic!() };
        assert_eq!(v, [1, 0, 1, 0, 0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn answers_that_do_not_fit_the_request_are_refused() {
        let short = Frame { tid: 1, unit: 1, function: 3, body: &[2, 0, 1] };
        assert!(decode_answer(&short, Table::Holding, 2).unwrap_err().contains("1 values where 2"));
        let lying = Frame { tid: 1, unit: 1, function: 3, body: &[4, 0, 1] };
        assert!(decode_answer(&lying, Table::Holding, 1).is_err());
        let other = Frame { tid: 1, unit: 1, function: 4, body: &[2, 0, 1] };
        assert!(decode_answer(&other, Table::Holding, 1).unwrap_err().contains("function 4"));
        assert!(decode_answer(&Frame { tid: 1, unit: 1, function: 3, body: &[] }, Table::Holding, 1).is_err());
        assert_eq!(next_frame(&[0, 1, 0, 5, 0, 3, 1, 3]), Err(FrameError::Protocol(5)));
        assert_eq!(next_frame(&[0, 1, 0, 0, 1, 0, 1, 3]), Err(FrameError::Length(256)));
        assert_eq!(next_frame(&[0, 1, 0, 0, 0, 1, 1, 3]), Err(FrameError::Length(1)));
    }
}

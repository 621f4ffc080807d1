//! Frames built by hand from the standard's layout, byte by byte, with their checksums
//! summed here in the comments.

use super::frame::{decode, encode, Address, Frame};
use super::*;

fn meter() -> Address {
    Address::parse("000012345678").unwrap()
}

#[test]
fn a_2007_read_of_forward_active_energy() {
    let req = read_request(Edition::V2007, meter(), 0x0001_0000);
    // 68 78 56 34 12 00 00 68 11 04 | 33 33 34 33 | CS 16
    // CS: 68+78+56+34+12+68+11+04 = 1F9H, + 33+33+34+33 = CDH → 2C6H → C6H
    assert_eq!(
        encode(&req, 0).unwrap(),
        [0x68, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x68, 0x11, 0x04, 0x33, 0x33, 0x34, 0x33, 0xC6, 0x16]
    );
    // the answer: 1234.56 kWh (00 12 34 56, sent 56 34 12 00, +33H: 89 67 45 33)
    // CS: 68+78+56+34+12+68+91+08 = 27DH, + 33 33 34 33 = 34AH, + 89 67 45 33 = 4B2H → B2H
    let wire = [
        0xFE, 0xFE, 0x68, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33, 0x89, 0x67,
        0x45, 0x33, 0xB2, 0x16,
    ];
    let (answer, used) = decode(&wire).unwrap();
    assert_eq!(used, wire.len());
    let bytes = read_answer(Edition::V2007, &req, &answer).unwrap().unwrap();
    assert_eq!(data::value(&bytes, data::ENERGY), Ok(1234.56));
}

#[test]
fn a_2007_refusal_carries_its_error_byte() {
    let req = read_request(Edition::V2007, meter(), 0x0201_0100);
    // D1H, L 01, ERR 02H (no such data) + 33H = 35H
    // CS: 68+78+56+34+12+68+D1+01 = 2B6H, + 35 = 2EBH → EBH
    let wire = [0x68, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x68, 0xD1, 0x01, 0x35, 0xEB, 0x16];
    let (answer, _) = decode(&wire).unwrap();
    let refused = read_answer(Edition::V2007, &req, &answer).unwrap().unwrap_err();
    assert_eq!(refused, Refusal(0x02));
    assert_eq!(refused.to_string(), "the meter refused: no such data (error byte 02H)");
}

#[test]
fn an_answer_to_another_request_is_a_mismatch_not_a_value() {
    let req = read_request(Edition::V2007, meter(), 0x0001_0000);
    let other =
        Frame { address: Address::parse("000087654321").unwrap(), control: 0x91, data: vec![0, 0, 1, 0, 0, 0, 0, 0] };
    assert!(matches!(read_answer(Edition::V2007, &req, &other), Err(Mismatch::Address { .. })));
    let echo = Frame { control: 0x11, ..req.clone() };
    assert_eq!(read_answer(Edition::V2007, &req, &echo), Err(Mismatch::Control(0x11)), "our own request echoed");
    let voltage = Frame { address: meter(), control: 0x91, data: vec![0, 1, 1, 2, 0x01, 0x22] };
    assert_eq!(
        read_answer(Edition::V2007, &req, &voltage),
        Err(Mismatch::Identifier { want: 0x0001_0000, got: 0x0201_0100 })
    );
    let short = Frame { address: meter(), control: 0x91, data: vec![0, 0] };
    assert_eq!(read_answer(Edition::V2007, &req, &short), Err(Mismatch::Short(2)));
}

#[test]
fn a_1997_read_uses_two_byte_identifiers() {
    let req = read_request(Edition::V1997, meter(), 0x9010);
    // 68 78 56 34 12 00 00 68 01 02 | 10+33 90+33 = 43 C3 | CS 16
    // CS: 68+78+56+34+12+68+01+02 = 1E7H, + 43 + C3 = 2EDH → EDH
    assert_eq!(
        encode(&req, 0).unwrap(),
        [0x68, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x68, 0x01, 0x02, 0x43, 0xC3, 0xED, 0x16]
    );
    let answer = Frame { address: meter(), control: 0x81, data: vec![0x10, 0x90, 0x56, 0x34, 0x12, 0x00] };
    let bytes = read_answer(Edition::V1997, &req, &answer).unwrap().unwrap();
    assert_eq!(data::value(&bytes, data::ENERGY), Ok(1234.56));
    let refused = Frame { address: meter(), control: 0xC1, data: vec![0x01] };
    assert_eq!(read_answer(Edition::V1997, &req, &refused), Ok(Err(Refusal(0x01))));
}

#[test]
fn the_one_meter_on_a_line_tells_its_address() {
    let answer = Frame { address: meter(), control: 0x93, data: meter().0.to_vec() };
    let wire = encode(&answer, 0).unwrap();
    let (back, _) = decode(&wire).unwrap();
    assert_eq!(address_answer(&back), Ok(meter()));
    assert_eq!(address_answer(&Frame { data: vec![1, 2], ..answer.clone() }), Err(Mismatch::Short(2)));
    assert_eq!(read_address_request().address, Address::WILDCARD);
}

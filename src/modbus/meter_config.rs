//! A meter device's configuration: its address on the line (instead of a Modbus unit id)
//! and whether its bus suits it. DL/T 645 and CJ/T 188 meters share serial lines with
//! Modbus devices; a line has one speed and parity, and meters of each protocol leave
//! the factory with their own (DL/T 645-2007 2400 8E1, DL/T 645-1997 1200 8E1, CJ/T 188
//! 2400 8E1), so where the bus's settings differ, `check` says so.

use std::fmt;

use super::config::{Bus, Parity, RawDevice, Transport};
use super::profile::{Profile, Protocol};
use crate::diag::Diagnostics;
use crate::dlt645::frame::Address;

/// A meter's address on its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeterAddress {
    Dlt645(Address),
    /// 14 BCD digits, least significant byte first, with the meter type.
    Cjt188 {
        address: [u8; 7],
        meter_type: u8,
    },
}

impl fmt::Display for MeterAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeterAddress::Dlt645(a) => write!(f, "{a}"),
            MeterAddress::Cjt188 { address, .. } => address.iter().rev().try_for_each(|b| write!(f, "{b:02X}")),
        }
    }
}

/// The line settings meters of `protocol` usually have: (baud, parity).
fn usual_line(protocol: Protocol) -> Option<(u32, Parity)> {
    match protocol {
        Protocol::Modbus => None,
        Protocol::Dlt645(e) => Some((e.usual_line().0, Parity::Even)),
        Protocol::Cjt188 { .. } => Some((2400, Parity::Even)),
    }
}

/// Lines already warned about, per protocol: one warning per line, not one per meter.
pub type Warned = std::collections::HashSet<(std::sync::Arc<str>, Protocol)>;

/// How a device is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// By its Modbus unit id (checked by the caller).
    Modbus,
    Meter(MeterAddress),
    /// Wrong, and reported.
    Invalid,
}

impl Addressing {
    /// `Some(None)` for a Modbus device, `Some(Some(a))` for a meter, `None` when wrong.
    pub fn valid(self) -> Option<Option<MeterAddress>> {
        match self {
            Addressing::Modbus => Some(None),
            Addressing::Meter(m) => Some(Some(m)),
            Addressing::Invalid => None,
        }
    }
}

/// The meters already on each bus: (bus, address) → (index, device name).
pub type OnBus = std::collections::HashMap<(String, MeterAddress), (usize, String)>;

/// One meter per address on a bus, however its plate number is written.
pub fn once_on_its_bus(
    addressing: &Addressing,
    rd: &RawDevice,
    (i, name): (usize, &Option<String>),
    seen: &mut OnBus,
    diags: &mut Diagnostics,
) {
    let (Addressing::Meter(m), Some(b)) = (addressing, rd.bus.as_deref()) else { return };
    if let Some((first, other)) = seen.insert((b.to_string(), *m), (i, name.clone().unwrap_or_default())) {
        diags.error(
            format!("devices[{i}].address"),
            format!("meter {m} on bus `{b}` is already `{other}` (devices[{first}])"),
        );
    }
}

/// How a device on `bus` is addressed: a Modbus unit id is checked by the caller; a
/// meter's `address` here, with the bus's suitability.
pub fn meter_address(
    rd: &RawDevice,
    profile: &Profile,
    bus: Option<&Bus>,
    path: &str,
    warned: &mut Warned,
    diags: &mut Diagnostics,
) -> Addressing {
    let protocol = profile.protocol;
    if protocol == Protocol::Modbus {
        if let Some(a) = &rd.address {
            diags.error(
                format!("{path}.address"),
                format!("`{a}`: a Modbus device is addressed by `unit`; `address` is a DL/T 645 or CJ/T 188 meter's"),
            );
            return Addressing::Invalid;
        }
        return Addressing::Modbus;
    }
    let name = protocol.name();
    let mut failed = false;
    if rd.unit.is_some() {
        diags.error(
            format!("{path}.unit"),
            format!("a {name} meter has no Modbus unit id: give its `address` (the number on its plate)"),
        );
        failed = true;
    }
    if let Some(bus) = bus {
        let first = warned.insert((bus.name.clone(), protocol));
        failed |= !line_suits(bus, protocol, path, first, diags);
    }
    let Some(given) = rd.address.as_deref() else {
        let digits = if matches!(protocol, Protocol::Cjt188 { .. }) { 14 } else { 12 };
        diags.error(
            format!("{path}.address"),
            format!("missing: the {name} meter's address, up to {digits} digits as on its plate"),
        );
        return Addressing::Invalid;
    };
    let parsed = match protocol {
        Protocol::Dlt645(_) => Address::parse(given).map(MeterAddress::Dlt645).map_err(|e| e.to_string()),
        Protocol::Cjt188 { meter_type } => crate::cjt188::address(given)
            .map(|address| MeterAddress::Cjt188 { address, meter_type })
            .map_err(|e| e.to_string()),
        Protocol::Modbus => return Addressing::Modbus,
    };
    match parsed {
        Ok(a) if given.contains(['A', 'a']) => {
            diags.error(
                format!("{path}.address"),
                format!("`{a}` has wildcard digits: poll a meter by its own address (`pumphouse probe` finds it)"),
            );
            Addressing::Invalid
        }
        Ok(a) if !failed => Addressing::Meter(a),
        Ok(_) => Addressing::Invalid,
        Err(e) => {
            diags.error(format!("{path}.address"), e);
            Addressing::Invalid
        }
    }
}

/// Whether a meter of `protocol` can be on `bus`: refused on Modbus TCP, warned where the
/// line's settings are not the protocol's usual ones.
fn line_suits(bus: &Bus, protocol: Protocol, path: &str, warn: bool, diags: &mut Diagnostics) -> bool {
    let name = protocol.name();
    let Some((baud, parity)) = usual_line(protocol) else { return true };
    let shown = |p: &Parity| match p {
        Parity::None => "N",
        Parity::Even => "E",
        Parity::Odd => "O",
    };
    match &bus.transport {
        Transport::Tcp { .. } => {
            diags.error(
                format!("{path}.bus"),
                format!(
                    "bus `{}` is Modbus TCP; a {name} meter is on a serial line: transport = \"rtu\", or \"rtu-over-tcp\" for a serial server in transparent mode",
                    bus.name
                ),
            );
            false
        }
        Transport::Rtu { baud: b, parity: p, .. } if warn && (*b, p) != (baud, &parity) => {
            diags.warning(
                format!("{path}.bus"),
                format!(
                    "{name} meters leave the factory at {baud} baud 8{}1; bus `{}` runs at {b} 8{}1 — every device on one line must use the line's settings (set the meters' own, or give them a line of their own)",
                    shown(&parity),
                    bus.name,
                    shown(p)
                ),
            );
            true
        }
        Transport::RtuOverTcp { baud: Some(b), .. } if warn && *b != baud => {
            diags.warning(
                format!("{path}.bus"),
                format!(
                    "{name} meters leave the factory at {baud} baud; bus `{}`'s serial side is given as {b}",
                    bus.name
                ),
            );
            true
        }
        _ => true,
    }
}

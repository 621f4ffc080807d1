//! DL/T 645 and CJ/T 188 meters in the configuration: addressed by their plate number,
//! on serial lines only, with the line settings their standards assume.

use super::*;

fn diagnostics(text: &str) -> Vec<String> {
    let items = match load_str(text, Mode::Check) {
        Ok((_, d)) => d.items,
        Err(ConfigErrors(items)) => items,
    };
    items.iter().map(|d| format!("{:?} {}: {}", d.severity, d.path, d.message)).collect()
}

const LINES: &str = r#"
[[buses]]
name = "dorm"
transport = "rtu"
device = "/dev/ttyUSB0"
baud = 9600

[[buses]]
name = "lan"
transport = "tcp"
address = "127.0.0.1:502"

[[buses]]
name = "server"
transport = "rtu-over-tcp"
address = "127.0.0.1:4001"
baud = 1200
"#;

fn device(name: &str, bus: &str, profile: &str, extra: &str) -> String {
    format!("[[devices]]\nname = \"{name}\"\nbus = \"{bus}\"\nprofile = \"{profile}\"\n{extra}\n")
}

fn has(said: &[String], want: &str) {
    assert!(said.iter().any(|s| s.contains(want)), "`{want}` not in {said:#?}");
}

#[test]
fn a_meter_is_addressed_by_its_plate_on_a_serial_line() {
    let text = [
        LINES.to_string(),
        device("e1", "dorm", "dlt645-single-phase", "address = \"240101\""),
        device("e2", "dorm", "dlt645-single-phase", "address = \"000000240101\""),
        device("e3", "dorm", "dlt645-three-phase", "unit = 3"),
        device("e4", "lan", "dlt645-single-phase", "address = \"1\""),
        device("e5", "dorm", "dlt645-single-phase", "address = \"12AA\""),
        device("e6", "server", "dlt645-1997", "address = \"9701\""),
        device("w1", "dorm", "cjt188-cold-water", "address = \"123456789012345\""),
        device("m1", "lan", "eastron-sdm120", "unit = 1\naddress = \"5\""),
    ]
    .concat();
    let said = diagnostics(&text);
    // the same plate number, however written, on one line
    has(&said, "Error devices[1].address: meter 000000240101 on bus `dorm` is already `e1` (devices[0])");
    has(&said, "Error devices[2].unit: a DL/T 645-2007 meter has no Modbus unit id");
    has(&said, "Error devices[2].address: missing: the DL/T 645-2007 meter's address, up to 12 digits");
    has(&said, "Error devices[3].bus: bus `lan` is Modbus TCP; a DL/T 645-2007 meter is on a serial line");
    has(&said, "Error devices[4].address: `0000000012AA` has wildcard digits");
    has(&said, "Error devices[6].address: `123456789012345` is not a meter address: up to 14 digits");
    has(&said, "Error devices[7].address: `5`: a Modbus device is addressed by `unit`");
    // the line's settings against the standard's: a 2007 meter on 9600 8N1 is named
    has(
        &said,
        "Warning devices[0].bus: DL/T 645-2007 meters leave the factory at 2400 baud 8E1; bus `dorm` runs at 9600 8N1",
    );
    // once per line, not once per meter
    assert_eq!(said.iter().filter(|s| s.contains("DL/T 645-2007 meters leave the factory")).count(), 1, "{said:#?}");
    // the 1997 meter behind a 1200-baud serial server is where it belongs
    assert!(!said.iter().any(|s| s.contains("devices[5].bus") || s.contains("devices[5].address")), "{said:#?}");
}

#[test]
fn a_meter_profile_in_the_configuration() {
    let text = format!(
        "{LINES}\n[[profiles]]\nname = \"dorm-pf\"\nprotocol = \"dlt645-2007\"\n[[profiles.points]]\nname = \"pf\"\nid = \"02060000\"\n[[profiles.points]]\nname = \"bad\"\nid = \"02060001\"\n{}",
        device("e1", "dorm", "dorm-pf", "address = \"1\"")
    );
    let said = diagnostics(&text);
    has(&said, "Error profiles[0].points[1].id: `02060001` is not an identifier of DL/T 645-2007 read here; known: 00010000 energy_import");
}

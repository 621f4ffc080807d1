//! Polling real Modbus devices we did not write (pymodbus), over TCP, RTU on a socat
//! serial pair, and RTU over TCP, including devices that time out, refuse requests with
//! exceptions, close the connection, or never answer on a shared line.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pumphouse::config::{self, Config, Mode};
use pumphouse::modbus::poller;
use pumphouse::model::{Quality, Reading};
use serde_json::json;

fn config(text: &str) -> Config {
    match config::load_str(text, Mode::Check) {
        Ok((c, _)) => c,
        Err(e) => panic!("{e}"),
    }
}

fn values(readings: &[Reading], device: &str) -> HashMap<String, (Option<f64>, Quality)> {
    readings
        .iter()
        .filter(|r| &*r.device == device)
        .map(|r| (r.point.to_string(), (r.value, r.quality.clone())))
        .collect()
}

fn assert_value(v: &HashMap<String, (Option<f64>, Quality)>, point: &str, want: f64) {
    let (got, q) = v.get(point).unwrap_or_else(|| panic!("no reading for {point}: {v:?}"));
    assert_eq!(*q, Quality::Good, "{point}");
    let got = got.unwrap_or(f64::NAN);
    assert!((got - want).abs() <= want.abs() * 1e-6 + 1e-9, "{point}: got {got}, want {want}");
}

/// SDM630 input registers 0..76 as float32 (ABCD), encoded by pymodbus.
fn sdm630_floats() -> Vec<f64> {
    let mut f = vec![0.0; 38];
    for (addr, v) in [
        (0, 230.5),
        (2, 231.0),
        (4, 229.5),
        (6, 10.25),
        (8, 8.5),
        (10, 12.0),
        (12, 2300.0),
        (14, 1950.0),
        (16, 2750.0),
        (30, 0.98),
        (32, 0.95),
        (34, 0.99),
        (52, 7000.0),
        (62, 0.97),
        (70, 49.98),
        (72, 123_456.75),
        (74, 12.5),
    ] {
        f[addr / 2] = v;
    }
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_values_match_what_pymodbus_encodes() {
    let spec = json!({"transport": "tcp", "devices": [
        {"id": 1,
         "holding": [
            {"address": 0, "type": "float32", "values": [12.5]},
            {"address": 2, "type": "uint32", "values": [305419896]},
            {"address": 4, "type": "int16", "values": [-5]},
            {"address": 5, "type": "float64", "values": [0.1]},
            {"address": 9, "type": "registers", "values": [0xE240, 0x0001, 0b1010]}],
         "coils": [{"address": 0, "type": "bits", "values": [false, false, true, false, false, false, false, false,
                                                             false, false, false, false, false, false, false, false]}]},
        {"id": 2, "input": [{"address": 0, "type": "float32", "values": sdm630_floats()}]},
        // TUF-2000M: low word first; registers 6..7 and 12..70 are not defined, so the
        // merged read 0..11 is refused (02) and the poller falls back to per-point reads.
        {"id": 3, "holding": [
            {"address": 0, "type": "registers", "values": [0, 16910, 0, 0, 0, 16288]},
            {"address": 8, "type": "registers", "values": [57920, 1, 0, 16192]},
            {"address": 71, "type": "registers", "values": [0]},
            {"address": 1437, "type": "registers", "values": [0, 3]}]}
    ]});
    let (_dev, port) = common::pymodbus_tcp(&spec);
    let cfg = config(&format!(
        r#"
[site]
name = "t"
[[buses]]
name = "lan"
transport = "tcp"
address = "127.0.0.1:{port}"
[[devices]]
name = "mixed"
bus = "lan"
unit = 1
profile = "mixed"
[[devices]]
name = "sdm"
bus = "lan"
unit = 2
profile = "eastron-sdm630"
[[devices]]
name = "tuf"
bus = "lan"
unit = 3
profile = "tuf-2000m"
[[profiles]]
name = "mixed"
points = [
  {{ name = "f32", table = "holding", address = 0, type = "f32", quantity = "status" }},
  {{ name = "u32", table = "holding", address = 2, type = "u32", quantity = "status" }},
  {{ name = "i16", table = "holding", address = 4, type = "i16", quantity = "status" }},
  {{ name = "f64", table = "holding", address = 5, type = "f64", quantity = "status" }},
  {{ name = "cdab", table = "holding", address = 9, type = "u32", order = "CDAB", quantity = "status" }},
  {{ name = "bit1", table = "holding", address = 11, type = "bit", bit = 1, quantity = "status" }},
  {{ name = "bit2", table = "holding", address = 11, type = "bit", bit = 2, quantity = "status" }},
  {{ name = "coil2", table = "coil", address = 2, quantity = "valve_open" }},
]
"#
    ));
    let mut all = Vec::new();
    for name in ["mixed", "sdm", "tuf"] {
        let d = cfg.device(name).unwrap();
        let out = poller::poll_once(cfg.bus("lan").unwrap(), d, cfg.site.name.clone(), cfg.site.timezone).await;
        assert!(out.answered, "{name} answered");
        all.extend(out.readings);
    }
    let m = values(&all, "mixed");
    assert_value(&m, "f32", 12.5);
    assert_value(&m, "u32", 305_419_896.0);
    assert_value(&m, "i16", -5.0);
    assert_value(&m, "f64", 0.1);
    assert_value(&m, "cdab", 123_456.0);
    assert_value(&m, "bit1", 1.0);
    assert_value(&m, "bit2", 0.0);
    assert_value(&m, "coil2", 1.0);
    let s = values(&all, "sdm");
    for (point, want) in [
        ("voltage_l1", 230.5),
        ("voltage_l3", 229.5),
        ("current_l2", 8.5),
        ("power_l3", 2750.0),
        ("power_factor_l1", 0.98),
        ("power_total", 7000.0),
        ("power_factor_total", 0.97),
        ("frequency", 49.98),
        ("energy_import", 123_456.75),
        ("energy_export", 12.5),
    ] {
        assert_value(&s, point, want);
    }
    let t = values(&all, "tuf");
    assert_value(&t, "flow_rate", 35.5);
    assert_value(&t, "velocity", 1.25);
    assert_value(&t, "positive_total", 123_456.75);
    assert_value(&t, "totalizer_multiplier", 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceptions_are_reported_per_point_and_polling_goes_on() {
    let spec = json!({"transport": "tcp", "devices": [
        {"id": 1, "holding": [{"address": 0, "type": "registers", "values": [41, 42]}]}
    ]});
    let (_dev, port) = common::pymodbus_tcp(&spec);
    let cfg = config(&format!(
        r#"
[site]
name = "t"
[[buses]]
name = "lan"
transport = "tcp"
address = "127.0.0.1:{port}"
[[devices]]
name = "d"
bus = "lan"
unit = 1
profile = "p"
interval = "300ms"
[[profiles]]
name = "p"
points = [
  {{ name = "good", table = "holding", address = 1, quantity = "status" }},
  {{ name = "missing", table = "holding", address = 500, quantity = "status" }},
  {{ name = "wrong_table", table = "input", address = 0, quantity = "status" }},
]
"#
    ));
    let (readings, stats) = common::run_for(&cfg, Duration::from_millis(1600)).await;
    let good: Vec<&Reading> = readings.iter().filter(|r| &*r.point == "good").collect();
    assert!(good.len() >= 4, "polling went on: {} cycles", good.len());
    assert!(good.iter().all(|r| r.quality == Quality::Good && r.value == Some(42.0)));
    let missing: Vec<&Reading> = readings.iter().filter(|r| &*r.point == "missing").collect();
    assert!(missing.iter().all(|r| r.quality == Quality::Exception(2) && r.value.is_none()), "{missing:?}");
    assert_eq!(missing[0].quality.code(), "exception_02");
    let s = &stats["d"];
    let per_point = s.point_exceptions.lock().unwrap().clone();
    assert_eq!(per_point.get("missing").copied(), Some(missing.len() as u64));
    assert_eq!(per_point.get("wrong_table").copied(), Some(missing.len() as u64));
    assert!(!per_point.contains_key("good"));
    assert_eq!(s.timeouts.load(Ordering::Relaxed), 0, "exceptions are not transport failures");
    assert_eq!(s.transport_errors.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_device_times_out_without_stalling_its_neighbour() {
    let spec = json!({"transport": "tcp", "devices": [
        {"id": 1, "delay": 3.0, "holding": [{"address": 0, "type": "registers", "values": [1]}]},
        {"id": 2, "holding": [{"address": 0, "type": "registers", "values": [2]}]}
    ]});
    let (_dev, port) = common::pymodbus_tcp(&spec);
    let cfg = config(&format!(
        r#"
[site]
name = "t"
[polling]
retries = 0
[[buses]]
name = "lan"
transport = "tcp"
address = "127.0.0.1:{port}"
timeout = "250ms"
concurrency = 2
[[devices]]
name = "slow"
bus = "lan"
unit = 1
profile = "p"
interval = "500ms"
[[devices]]
name = "quick"
bus = "lan"
unit = 2
profile = "p"
interval = "500ms"
[[profiles]]
name = "p"
points = [{{ name = "v", table = "holding", address = 0, quantity = "status" }}]
"#
    ));
    let (readings, stats) = common::run_for(&cfg, Duration::from_millis(4000)).await;
    let quick: Vec<&Reading> = readings.iter().filter(|r| &*r.device == "quick").collect();
    let slow: Vec<&Reading> = readings.iter().filter(|r| &*r.device == "slow").collect();
    assert!(quick.len() >= 7, "the quick device kept its 500 ms interval: {} polls in 4 s", quick.len());
    assert!(quick.iter().all(|r| r.quality == Quality::Good && r.value == Some(2.0)));
    assert!(!slow.is_empty());
    assert!(slow.iter().all(|r| r.quality == Quality::Timeout && r.value.is_none()));
    assert!(stats["slow"].timeouts.load(Ordering::Relaxed) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_closes_the_connection_is_reported_and_reconnected() {
    // Not a Modbus device at all: something that accepts and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf); // take the request, then close
        }
    });
    let cfg = config(&format!(
        r#"
[site]
name = "t"
[polling]
retries = 0
backoff_max = "400ms"
[[buses]]
name = "lan"
transport = "tcp"
address = "127.0.0.1:{port}"
timeout = "500ms"
[[devices]]
name = "hangup"
bus = "lan"
unit = 1
profile = "eastron-sdm120"
interval = "200ms"
"#
    ));
    let (readings, stats) = common::run_for(&cfg, Duration::from_millis(2500)).await;
    assert!(!readings.is_empty());
    assert!(readings.iter().all(|r| r.quality == Quality::Transport), "{:?}", readings.first());
    let n = accepted.load(Ordering::SeqCst);
    assert!(n >= 3, "reconnected after each hang-up: {n} connections");
    assert!(stats["hangup"].transport_errors.load(Ordering::Relaxed) >= 3);
    assert_eq!(stats["hangup"].exceptions.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtu_line_keeps_neighbours_on_interval_when_one_unit_never_answers() {
    let dir = tempfile::tempdir().unwrap();
    let pair = common::serial_pair(dir.path());
    let spec = json!({"transport": "rtu", "tty": pair.a.to_string_lossy(), "devices": [
        {"id": 1, "input": [{"address": 0, "type": "float32", "values": [231.0, 0.0, 0.0, 5.75]}]},
        {"id": 2, "input": [{"address": 0, "type": "float32", "values": [229.0, 0.0, 0.0, 1.5]}]}
    ]});
    let _dev = common::pymodbus_serial(&spec);
    let cfg = config(&format!(
        r#"
[site]
name = "t"
[polling]
retries = 1
backoff_max = "4s"
[[buses]]
name = "rs485"
transport = "rtu"
device = "{}"
baud = 19200
timeout = "300ms"
gap = "5ms"
[[devices]]
name = "m1"
bus = "rs485"
unit = 1
profile = "vi"
interval = "1s"
[[devices]]
name = "m2"
bus = "rs485"
unit = 2
profile = "vi"
interval = "1s"
[[devices]]
name = "dead"
bus = "rs485"
unit = 3
profile = "vi"
interval = "1s"
[[profiles]]
name = "vi"
points = [
  {{ name = "voltage", table = "input", address = 0, type = "f32", quantity = "voltage" }},
  {{ name = "current", table = "input", address = 6, type = "f32", quantity = "current" }},
]
"#,
        pair.b.display()
    ));
    let (readings, stats) = common::run_for(&cfg, Duration::from_millis(7000)).await;
    for (dev, v, i) in [("m1", 231.0, 5.75), ("m2", 229.0, 1.5)] {
        let polls: Vec<&Reading> = readings.iter().filter(|r| &*r.device == dev && &*r.point == "voltage").collect();
        assert!(polls.len() >= 6, "{dev} kept its 1 s interval: {} polls in 7 s", polls.len());
        assert!(polls.iter().all(|r| r.quality == Quality::Good && r.value == Some(v)), "{dev}: {polls:?}");
        let gaps: Vec<i64> = polls.windows(2).map(|w| (w[1].ts - w[0].ts).num_milliseconds()).collect();
        assert!(gaps.iter().all(|&g| g <= 1900), "{dev}: gaps between polls {gaps:?} ms");
        let cur = values(&readings, dev);
        assert_value(&cur, "current", i);
    }
    let dead: Vec<&Reading> = readings.iter().filter(|r| &*r.device == "dead" && &*r.point == "voltage").collect();
    assert!(!dead.is_empty() && dead.iter().all(|r| r.quality == Quality::Timeout), "{dead:?}");
    // backing off: at 1 s, 2 s, 4 s… not every second
    assert!(dead.len() <= 4, "the dead unit backed off: {} attempts in 7 s", dead.len());
    assert!(stats["dead"].timeouts.load(Ordering::Relaxed) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtu_over_tcp_reads_a_serial_device_server() {
    let spec = json!({"transport": "rtu-over-tcp", "devices": [
        {"id": 7, "input": [{"address": 0, "type": "float32", "values": [
            231.0, 0.0, 0.0, 5.75, 0.0, 0.0, 1320.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.96, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 50.02, 4521.25, 0.125]}]}
    ]});
    let (_dev, port) = common::pymodbus_tcp(&spec);
    let cfg = config(&format!(
        r#"
[site]
name = "t"
[[buses]]
name = "dtu"
transport = "rtu-over-tcp"
address = "127.0.0.1:{port}"
baud = 9600
[[devices]]
name = "sdm120"
bus = "dtu"
unit = 7
profile = "eastron-sdm120"
"#
    ));
    let d = cfg.device("sdm120").unwrap();
    let out = poller::poll_once(cfg.bus("dtu").unwrap(), d, cfg.site.name.clone(), cfg.site.timezone).await;
    let v = values(&out.readings, "sdm120");
    for (p, want) in [
        ("voltage", 231.0),
        ("current", 5.75),
        ("power", 1320.0),
        ("power_factor", 0.96),
        ("frequency", 50.02),
        ("energy_import", 4521.25),
        ("energy_export", 0.125),
    ] {
        assert_value(&v, p, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_device_is_counted_with_its_cause_and_no_good_reading() {
    // a port nobody listens on: every connection is refused
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = config(&format!(
        r#"
[site]
name = "t"
[polling]
retries = 0
backoff_max = "400ms"
[[buses]]
name = "lan"
transport = "tcp"
address = "127.0.0.1:{port}"
timeout = "300ms"
[[devices]]
name = "gone"
bus = "lan"
unit = 1
profile = "eastron-sdm120"
interval = "200ms"
"#
    ));
    let (readings, stats) = common::run_for(&cfg, Duration::from_millis(1200)).await;
    assert!(!readings.is_empty() && readings.iter().all(|r| r.quality == Quality::Transport));
    let s = &stats["gone"];
    let failures = s.connect_failures.load(Ordering::Relaxed);
    assert!(failures >= 2, "every refused connection is counted: {failures}");
    assert_eq!(s.transport_errors.load(Ordering::Relaxed), failures, "and counted as a transport error");
    let why = s.last_error().expect("the cause is kept");
    assert!(why.contains(&format!("cannot connect to 127.0.0.1:{port}")) && why.contains("refused"), "{why}");
    assert_eq!(s.last_good_ms.load(Ordering::Relaxed), 0, "no good reading: none claimed");
    assert!(s.failing_since_ms.load(Ordering::Relaxed) > 0, "failing from the first cycle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymodbus_drops_pipelined_reads_so_the_bus_reads_it_one_at_a_time_and_loses_nothing() {
    // pymodbus answers the first of several requests that arrive together and drops the
    // rest: a server that does not take pipelining, as many small devices are
    let devices: Vec<serde_json::Value> = (1..=12)
        .map(|id| json!({"id": id, "holding": [{"address": 0, "type": "registers", "values": [id * 100, id * 100 + 1]}]}))
        .collect();
    let (_dev, port) = common::pymodbus_tcp(&json!({"transport": "tcp", "devices": devices}));
    let mut text = format!(
        r#"
[site]
name = "t"
[polling]
retries = 0
[[buses]]
name = "lan"
transport = "tcp"
address = "127.0.0.1:{port}"
timeout = "300ms"
concurrency = 1
pipeline = 6
[[profiles]]
name = "p"
points = [{{ name = "a", table = "holding", address = 0, quantity = "status" }}, {{ name = "b", table = "holding", address = 1, quantity = "status" }}]
"#
    );
    for id in 1..=12 {
        text.push_str(&format!(
            "[[devices]]\nname = \"u{id}\"\nbus = \"lan\"\nunit = {id}\nprofile = \"p\"\ninterval = \"250ms\"\n"
        ));
    }
    let cfg = config(&text);
    let (readings, stats) = common::run_for(&cfg, Duration::from_millis(4000)).await;
    for id in 1..=12 {
        let name = format!("u{id}");
        let v = values(&readings, &name);
        assert_value(&v, "a", f64::from(id * 100));
        assert_value(&v, "b", f64::from(id * 100 + 1));
        let mine: Vec<&Reading> = readings.iter().filter(|r| *r.device == *name).collect();
        // a read lost to pipelining is sent again alone: late, never a gap
        assert!(
            mine.iter().all(|r| r.quality == Quality::Good),
            "{name}: {:?}",
            mine.iter().find(|r| r.quality != Quality::Good)
        );
        assert!(mine.len() >= 2 * 8, "{name}: {} readings in 4 s at 250 ms", mine.len());
        assert_eq!(
            stats[&*name].timeouts.load(Ordering::Relaxed),
            0,
            "{name}: a lost pipelined read is not the device's timeout"
        );
    }
    // what probe tells of this server
    let verdict = poller::pipelining_check(&cfg.buses[0], &cfg.devices[0]).await;
    assert!(matches!(verdict, Some(pumphouse::modbus::pipeline::Pipelining::Refuses(_))), "{verdict:?}");
}

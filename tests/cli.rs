//! The `pumphouse` binary as a user runs it: check, probe, profiles, simulate, demo.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{pumphouse, Proc};
use serde_json::{json, Value};

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn check_prints_the_plan_of_a_valid_file() {
    let (code, out, err) = pumphouse(&["check", "-c", "config/pumphouse.example.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("bus plant-lan: tcp 127.0.0.1:5020"), "{out}");
    assert!(out.contains("fc03 holding      0..11    ( 12 regs)  flow_rate, velocity, positive_total"), "{out}");
    assert!(out.contains("line time per cycle"), "serial buses get a line-time estimate:\n{out}");
    assert!(err.contains("warning: buses[1].device: serial device /dev/ttyUSB0 does not exist"), "{err}");
}

#[test]
fn check_reports_every_error_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "bad.toml",
        r#"
[site]
name = "s"
[[buses]]
name = "lan"
transport = "tcp"
address = "127.0.0.1:502"
[[devices]]
name = "a"
bus = "lan"
unit = 248
profile = "tuf-2000m"
[[devices]]
name = "b"
bus = "lan"
unit = 2
profile = "tuf2000"
interval = "fast"
"#,
    );
    let (code, out, err) = pumphouse(&["check", "-c", &cfg]);
    assert_eq!(code, 2);
    assert!(out.is_empty(), "no plan for an invalid file: {out}");
    assert!(err.contains("the configuration has 3 error(s)"), "{err}");
    assert!(err.contains("devices[0].unit: unit id 248 is outside 1..=247"), "{err}");
    assert!(err.contains("devices[1].profile: unknown profile `tuf2000`"), "{err}");
    assert!(err.contains("devices[1].interval: `fast` is not a duration"), "{err}");
}

#[test]
fn check_of_a_missing_or_broken_file_says_so() {
    let (code, _, err) = pumphouse(&["check", "-c", "/nonexistent/pumphouse.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/pumphouse.toml"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "broken.toml", "[site\nname = 1\n");
    let (code, _, err) = pumphouse(&["check", "-c", &cfg]);
    assert_eq!(code, 2);
    assert!(err.contains("broken.toml"), "{err}");
}

#[test]
fn profiles_are_listed_and_shown() {
    let (code, out, _) = pumphouse(&["profiles"]);
    assert_eq!(code, 0);
    for name in ["eastron-sdm630", "eastron-sdm120", "tuf-2000m", "analog-4-20ma", "valve-actuator"] {
        assert!(out.contains(name), "{out}");
    }
    let (code, out, _) = pumphouse(&["profiles", "show", "tuf-2000m"]);
    assert_eq!(code, 0);
    assert!(out.contains("exponent_from = \"totalizer_multiplier\""), "{out}");
    let (code, _, err) = pumphouse(&["profiles", "show", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no profile `nope`"), "{err}");
    let (code, out, _) = pumphouse(&["profiles", "-c", "config/pumphouse.example.toml", "show", "line-pressure"]);
    assert_eq!(code, 0);
    assert!(out.contains("pressure") && out.contains("MPa"), "{out}");
}

#[test]
fn probe_prints_json_lines_from_a_pymodbus_meter() {
    let spec = json!({"transport": "tcp", "devices": [
        {"id": 4, "input": [{"address": 0, "type": "float32", "values": [
            231.0, 0.0, 0.0, 5.75, 0.0, 0.0, 1320.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.96, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 50.02, 4521.25, 0.125]}]}
    ]});
    let (_dev, port) = common::pymodbus_tcp(&spec);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "p.toml",
        &format!(
            "[site]\nname = \"s\"\n[[buses]]\nname = \"lan\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n\
             [[devices]]\nname = \"dorm\"\nbus = \"lan\"\nunit = 4\nprofile = \"eastron-sdm120\"\nzone = \"north\"\n\
             [[devices]]\nname = \"ghost\"\nbus = \"lan\"\nunit = 9\nprofile = \"eastron-sdm120\"\n"
        ),
    );
    let (code, out, err) = pumphouse(&["probe", "-c", &cfg, "--device", "dorm", "--json"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).expect("a JSON object per line")).collect();
    assert_eq!(lines.len(), 7);
    let by_point: HashMap<&str, &Value> = lines.iter().map(|v| (v["point"].as_str().unwrap(), v)).collect();
    let e = by_point["energy_import"];
    assert_eq!(e["device"], "dorm");
    assert_eq!(e["quantity"], "energy_import");
    assert_eq!(e["value"], 4521.25);
    assert_eq!(e["unit"], "kWh");
    assert_eq!(e["quality"], "good");
    assert!(chrono::DateTime::parse_from_rfc3339(e["ts"].as_str().unwrap()).is_ok());
    assert_eq!(by_point["voltage"]["value"], 231.0);
    // the human form
    let (code, out, _) = pumphouse(&["probe", "-c", &cfg, "--device", "dorm"]);
    assert_eq!(code, 0);
    assert!(out.contains("energy_import") && out.contains("4521.25"), "{out}");
    // a unit the gateway answers for with exception 04: reported, exit non-zero
    let (code, out, err) = pumphouse(&["probe", "-c", &cfg, "--device", "ghost", "--json"]);
    assert_eq!(code, 0, "an exception is an answer: {err}");
    assert!(out.lines().count() > 0 && out.lines().all(|l| l.contains("\"quality\":\"exception_04\"")), "{out}");
    let (code, _, err) = pumphouse(&["probe", "-c", &cfg, "--device", "nobody"]);
    assert_eq!(code, 1);
    assert!(err.contains("no device `nobody`"), "{err}");
}

#[test]
fn probe_of_an_unreachable_device_fails_with_its_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // closed again
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "p.toml",
        &format!(
            "[site]\nname = \"s\"\n[[buses]]\nname = \"lan\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\ntimeout = \"300ms\"\n\
             [[devices]]\nname = \"m\"\nbus = \"lan\"\nunit = 1\nprofile = \"tuf-2000m\"\n"
        ),
    );
    let (code, out, err) = pumphouse(&["probe", "-c", &cfg, "--device", "m", "--json"]);
    assert_eq!(code, 1);
    assert!(err.contains("device `m` did not answer"), "{err}");
    assert!(out.lines().count() > 0, "probe printed nothing");
    assert!(out.lines().all(|l| l.contains("\"quality\":\"transport\"") && l.contains("\"value\":null")), "{out}");
}

fn spawn_simulator(extra: &[&str]) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pumphouse"))
        .args(["simulate", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("simulator listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    (Proc(child), addr)
}

#[test]
fn simulate_serves_what_print_config_polls_and_scenarios_take_effect() {
    let (_sim, addr) = spawn_simulator(&["--scenario", "silent:pump-2", "--scenario", "valve-stuck:valve-east:40"]);
    let (code, cfg_text, err) = pumphouse(&["simulate", "--print-config", "--listen", &addr, "--interval", "2s"]);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "sim.toml", &cfg_text);
    let (code, _, err) = pumphouse(&["check", "-c", &cfg]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = pumphouse(&["probe", "-c", &cfg, "--device", "plant-outlet", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let total = v.iter().find(|x| x["point"] == "positive_total").unwrap();
    assert_eq!(total["quality"], "good");
    assert!(total["value"].as_f64().unwrap() >= 150_000.0);
    let (code, out, _) = pumphouse(&["probe", "-c", &cfg, "--device", "valve-east", "--json"]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.contains("\"point\":\"position\"") && l.contains("\"value\":40.0")), "{out}");
    let (code, out, err) = pumphouse(&["probe", "-c", &cfg, "--device", "pump-2", "--json"]);
    assert_eq!(code, 1, "a silenced device does not answer: {out}");
    assert!(err.contains("did not answer"));
    assert!(out.lines().count() > 0, "probe printed nothing");
    assert!(out.lines().all(|l| l.contains("\"quality\":\"timeout\"")), "{out}");
}

#[test]
fn demo_runs_on_its_own_and_shows_every_device() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("demo.db");
    let store_arg = store.to_string_lossy().into_owned();
    let (code, out, err) = pumphouse(&[
        "demo",
        "--interval",
        "500ms",
        "--duration",
        "3s",
        "--json",
        "--store",
        &store_arg,
        "--http",
        "off",
        "--history",
        "0",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let devices: HashSet<&str> = lines.iter().map(|v| v["device"].as_str().unwrap()).collect();
    // the campus's 24 and the dormitory line's 11 (DL/T 645, CJ/T 188 and a Modbus module)
    assert_eq!(devices.len(), 35, "{devices:?}");
    assert!(devices.contains("dorm-e-old") && devices.contains("staff-w-main"), "{devices:?}");
    let bad: Vec<&Value> = lines.iter().filter(|v| v["quality"] != "good").collect();
    assert!(bad.is_empty(), "{bad:?}");
    // everything shown was committed to the local store first
    let conn = rusqlite::Connection::open(&store).unwrap();
    let stored: i64 = conn.query_row("SELECT count(*) FROM readings", [], |r| r.get(0)).unwrap();
    assert!(stored >= lines.len() as i64, "{stored} stored, {} shown", lines.len());
    // the human view: the page's address first, then a live line of the plant and zones
    // (the store of the first run is replaced: the demo starts anew)
    let http = format!("127.0.0.1:{}", common::free_port());
    let (code, out, err) = pumphouse(&[
        "demo",
        "--interval",
        "1s",
        "--duration",
        "3s",
        "--store",
        &store_arg,
        "--http",
        &http,
        "--history",
        "0",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("Pumphouse demo — the page: http://{http}/")), "{out}");
    let live = out.lines().find(|l| l.contains("plant ")).unwrap_or_else(|| panic!("no live line:\n{out}"));
    assert!(live.contains("m³/h") && live.contains("north") && live.contains("MPa"), "{live}");
    // a file that is no store is not replaced
    let other = dir.path().join("notes.txt");
    std::fs::write(&other, "keep me").unwrap();
    let (code, _, err) = pumphouse(&[
        "demo",
        "--duration",
        "1s",
        "--store",
        &other.to_string_lossy(),
        "--history",
        "0",
        "--http",
        "off",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("is not a Pumphouse store"), "{err}");
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "keep me");
}

#[test]
fn bad_simulator_arguments_are_refused_clearly() {
    let (code, _, err) = pumphouse(&["demo", "--scenario", "flood:everywhere", "--duration", "1s"]);
    assert_eq!(code, 1);
    assert!(err.contains("scenario `flood:everywhere` is not one of"), "{err}");
    let (code, _, err) = pumphouse(&["demo", "--scenario", "leak:west:2", "--duration", "1s"]);
    assert_eq!(code, 1);
    assert!(err.contains("no zone `west`"), "{err}");
    let (code, _, err) = pumphouse(&["demo", "--speed", "0", "--duration", "1s"]);
    assert_eq!(code, 1);
    assert!(err.contains("--speed"), "{err}");
}

#[test]
fn run_on_a_damaged_store_moves_it_aside_keeps_going_and_raises_an_alert() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    // a store whose pages a disk fault overwrote
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.resize(64 * 1024, 0xA5);
    std::fs::write(&db, &bytes).unwrap();
    let port = common::free_port();
    let cfg = dir.path().join("p.toml");
    std::fs::write(
        &cfg,
        format!("[site]\nname = \"s\"\n[store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n", db.display()),
    )
    .unwrap();
    let mut gw = common::gateway(&cfg, &dir.path().join("gw.log"));
    common::wait_port(port, "the gateway");
    let text = reqwest::blocking::get(format!("http://127.0.0.1:{port}/api/alerts")).unwrap().text().unwrap();
    let alerts: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let a = alerts.iter().find(|a| a["rule"] == "store_replaced").unwrap_or_else(|| panic!("{alerts:?}"));
    assert_eq!(a["severity"], "critical");
    assert!(a["evidence"].as_str().unwrap().contains("store.db.corrupt-"), "{a}");
    let health = reqwest::blocking::get(format!("http://127.0.0.1:{port}/healthz")).unwrap();
    // the fresh store works: the gateway is healthy; the loss is told by the critical alert
    assert_eq!(health.status().as_u16(), 200, "{:?}", health.text());
    common::terminate(&mut gw.0);
    let aside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("store.db.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(dir.path().join(&aside[0])).unwrap(), bytes, "kept as it was");
}

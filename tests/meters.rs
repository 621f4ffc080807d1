//! DL/T 645 and CJ/T 188 meters on a serial line (a socat pty pair) and behind a serial
//! server (TCP, transparent mode), served by `pumphouse simulate-meters`: read, stored and
//! booked in the monthly ledger like the Modbus meters, with a meter's 6-digit register
//! wrapping mid-run, a Modbus device on the same line, and a silent meter that does not
//! stall its line.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{free_port, gateway, pumphouse, serial_pair, wait_port, Proc};
use pumphouse::config::{self, Mode};
use pumphouse::model::Quality;
use serde_json::Value;

fn simulator(args: &[&str]) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_pumphouse"))
            .arg("simulate-meters")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the meter simulator"),
    )
}

const BOOKS: &str = r#"
[[zones]]
name = "dorm-power"
utility = "electricity"
inlets = ["dorm-e-1"]

[[zones]]
name = "staff-housing"
utility = "water"
inlets = ["staff-w-1"]

[[meters]]
device = "dorm-e-2"
zone = "dorm-power"
category = "student_dormitory"

[[meters]]
device = "dorm-e-4"
zone = "dorm-power"
category = "student_dormitory"

[[meters]]
device = "staff-w-2"
zone = "staff-housing"
category = "staff_housing"

[[tariffs]]
utility = "electricity"
category = "student_dormitory"
from = "2026-01-01"
price = "0.588"

[[tariffs]]
utility = "water"
category = "staff_housing"
from = "2026-01-01"
price = "2.85"
"#;

#[test]
fn meters_on_a_serial_line_are_stored_and_booked() {
    let dir = tempfile::tempdir().unwrap();
    let pair = serial_pair(dir.path());
    let a = pair.a.to_string_lossy().into_owned();
    let b = pair.b.to_string_lossy().into_owned();
    // an hour of load per real second
    let _sim = simulator(&["--serial", &a, "--speed", "3600"]);
    let (code, cfg, err) = pumphouse(&["simulate-meters", "--serial", &b, "--print-config", "--interval", "1s"]);
    assert_eq!(code, 0, "{err}");
    let store = dir.path().join("store.db");
    let cfg = format!(
        "{cfg}\n[store]\npath = \"{}\"\nmax_size = \"20GiB\"\n[http]\nlisten = \"off\"\n{BOOKS}",
        store.display()
    );
    let cfg_path = dir.path().join("meters.toml");
    std::fs::write(&cfg_path, &cfg).unwrap();
    let (code, out, err) = pumphouse(&["check", "-c", &cfg_path.to_string_lossy()]);
    assert_eq!(code, 0, "{out}{err}");
    // the 1997 meter on a 2400-baud line is named, not refused
    assert!(err.contains("DL/T 645-1997 meters leave the factory at 1200 baud 8E1"), "{err}");

    // the run and the month whose ledger is read must be one: not across a month's end
    let local = || chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let month_of = |t: chrono::DateTime<chrono_tz::Tz>| t.format("%Y-%m").to_string();
    if month_of(local()) != month_of(local() + chrono::TimeDelta::seconds(40)) {
        std::thread::sleep(Duration::from_secs(41));
    }
    let month = month_of(local());
    let log = dir.path().join("gateway.log");
    let run = gateway(&cfg_path, &log);
    std::thread::sleep(Duration::from_secs(14));
    drop(run);

    let (code, out, err) =
        pumphouse(&["ledger", "-c", &cfg_path.to_string_lossy(), "--month", &month, "--format", "json"]);
    assert_eq!(code, 0, "{err}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    let l: Value = serde_json::from_str(&out).unwrap();
    let meters: HashMap<String, Value> = l["meters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["device"].as_str().unwrap().to_string(), m.clone()))
        .collect();
    let seconds = |m: &Value| {
        let t = |k: &str| chrono::DateTime::parse_from_rfc3339(m[k].as_str().unwrap()).unwrap();
        (t("closing_ts") - t("opening_ts")).num_milliseconds() as f64 / 1000.0
    };
    // each meter's consumption is its load over the time between its first and last
    // reading (at 3600× an hour per second): 2.6 kW, 1.8 kW, 0.08 m³/h
    for (device, per_second) in [("dorm-e-2", 2.6), ("dorm-e-4", 1.8), ("staff-w-2", 0.08), ("dorm-e-1", 3.2)] {
        let m = &meters[device];
        let s = seconds(m);
        assert!(s > 8.0, "{device} read for {s} s only: {m}");
        let consumption = m["consumption"].as_f64().unwrap();
        let expected = per_second * s;
        assert!(
            (consumption - expected).abs() / expected < 0.12,
            "{device}: {consumption} booked, {expected} expected: {m}"
        );
    }
    // dorm-e-4 began 15 kWh short of 1 000 000 and wrapped: booked through the wrap, at
    // the tariff, never negative
    let wrapped = &meters["dorm-e-4"];
    assert!(wrapped["closing"].as_f64().unwrap() < wrapped["opening"].as_f64().unwrap(), "{wrapped}");
    // a wrap the register's width implies, not a reset whose jump would be lost
    let notes = wrapped["notes"].to_string();
    assert!(notes.contains("rollover from") || notes.contains("计数器翻转"), "{notes}");
    assert!(!notes.contains("reset") && !notes.contains("重置"), "{notes}");
    for device in ["dorm-e-2", "dorm-e-4"] {
        let m = &meters[device];
        let fen = (m["consumption"].as_f64().unwrap() * 58.8).round() as i64;
        assert_eq!(m["amount_fen"].as_i64(), Some(fen), "{m}");
    }
    // the Modbus pressure module on the same pty line: the port reopened as the other
    // kind between it and the meters, every poll answered
    let db = rusqlite::Connection::open(&store).unwrap();
    let (good, all): (i64, i64) = db
        .query_row(
            "SELECT SUM(r.quality = 'good'), COUNT(*) FROM readings r JOIN series s ON s.id = r.series WHERE s.device = 'dorm-pressure'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(all >= 15 && good == all, "{good} of {all} pressure readings good");
    // no [[costs]]: the fees are booked, but no gap is claimed and nothing is judged
    assert_eq!((&l["combined"]["cost_configured"], &l["combined"]["status"]), (&Value::Bool(false), &Value::Null));
    assert!(l["notes"].to_string().contains("no cost is configured for electricity ([[costs]])"), "{}", l["notes"]);
    let gap = l["targets"]["rows"].as_array().unwrap().iter().find(|r| r["measure"] == "gap_fen").unwrap();
    assert_eq!((&gap["this"], &gap["status"]), (&Value::Null, &Value::Null), "{gap}");
    let m = &meters["staff-w-2"];
    assert_eq!(m["amount_fen"].as_i64(), Some((m["consumption"].as_f64().unwrap() * 285.0).round() as i64), "{m}");

    // each meter's clock, read against the gateway's whatever the simulation's speed:
    // dorm-e-3 is 432 s slow, staff-w-2 95 s fast (the 1997 meter 20 s slow)
    let clock = |device: &str| -> Vec<f64> {
        let mut q = db
            .prepare("SELECT r.value FROM readings r JOIN series s ON s.id = r.series WHERE s.device = ?1 AND s.point = 'clock' AND r.quality = 'good'")
            .unwrap();
        q.query_map([device], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    for (device, offset) in [("dorm-e-3", -432.0), ("staff-w-2", 95.0), ("dorm-e-old", -20.0), ("dorm-e-1", 0.0)] {
        let c = clock(device);
        assert!(c.len() >= 5 && c.iter().all(|v| (v - offset).abs() <= 2.0), "{device}: {c:?}");
    }
    // beyond the 5-minute tolerance only dorm-e-3: one alert, which says how far and which way
    let (code, _, err) = pumphouse(&["alerts", "-c", &cfg_path.to_string_lossy(), "evaluate"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = pumphouse(&["alerts", "-c", &cfg_path.to_string_lossy(), "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let clocks: Vec<Value> =
        out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|a| a["rule"] == "meter_clock").collect();
    assert_eq!(clocks.len(), 1, "{out}");
    assert_eq!((&clocks[0]["subject"], &clocks[0]["active"]), (&Value::from("dorm-e-3"), &Value::Bool(true)));
    // nothing the line did not simulate: no safety incident (the riser's pressure is an
    // ordinary 0.32 MPa)
    let incidents = ["burst", "pressure_high", "water_quality", "overcurrent", "phase_loss"];
    assert!(
        !out.lines()
            .any(|l| incidents.contains(&serde_json::from_str::<Value>(l).unwrap()["rule"].as_str().unwrap_or(""))),
        "{out}"
    );
    let said = clocks[0]["evidence"].as_str().unwrap();
    assert!(said.contains("比网关慢 7 分 1") && said.contains("（允许 5 分钟）"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meters_behind_a_serial_server_and_a_silent_one() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _sim = simulator(&["--listen", &listen]);
    wait_port(port, "the meter simulator");
    let (code, cfg, err) = pumphouse(&["simulate-meters", "--listen", &listen, "--print-config", "--interval", "1s"]);
    assert_eq!(code, 0, "{err}");
    // a meter that is not on the line: it times out, the others are read every second
    let cfg = format!(
        "{cfg}\n[store]\nmax_size = \"20GiB\"\n[[devices]]\nname = \"gone\"\nbus = \"dorm-line\"\naddress = \"000000000999\"\nprofile = \"dlt645-single-phase\"\nretries = 0\n"
    );
    let cfg = match config::load_str(&cfg, Mode::Check) {
        Ok((c, _)) => c,
        Err(e) => panic!("{e}"),
    };
    let (readings, _) = common::run_for(&cfg, Duration::from_secs(5)).await;
    let of = |device: &str| readings.iter().filter(|r| &*r.device == device).collect::<Vec<_>>();
    for device in ["dorm-e-1", "dorm-e-old", "staff-w-3"] {
        let rs = of(device);
        let cycles = rs.iter().filter(|r| &*r.point == rs[0].point.as_ref()).count();
        assert!(cycles >= 3, "{device} read {cycles} times in 5 s beside a silent meter");
        assert!(rs.iter().all(|r| r.quality == Quality::Good), "{device}: {rs:?}");
    }
    // a Modbus pressure module on the same line, between the meters' frames
    let pressure = of("dorm-pressure");
    let p = pressure.iter().filter(|r| &*r.point == "pressure").collect::<Vec<_>>();
    assert!(
        p.len() >= 3
            && p.iter().all(|r| r.quality == Quality::Good && r.value.is_some_and(|v| (v - 0.32).abs() < 1e-9)),
        "{p:?}"
    );
    let gone = of("gone");
    assert!(!gone.is_empty() && gone.iter().all(|r| r.quality == Quality::Timeout), "{gone:?}");
    // what the standards' formats say, read back: the 1997 meter's whole volts, a water
    // meter's volume to the litre
    let old = of("dorm-e-old");
    let volts = old.iter().find(|r| &*r.point == "voltage_l1").and_then(|r| r.value).unwrap();
    assert_eq!(volts, volts.round());
    let water = of("staff-w-3").iter().find(|r| &*r.point == "volume").and_then(|r| r.value).unwrap();
    assert!((400.0..401.0).contains(&water), "{water}");
}

#[test]
fn probe_discovers_the_one_meter_on_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let bus = |port: u16| {
        let cfg = format!(
            "[site]\nname = \"t\"\n[store]\npath = \"{}\"\n[[buses]]\nname = \"dorm-line\"\ntransport = \"rtu-over-tcp\"\naddress = \"127.0.0.1:{port}\"\ntimeout = \"400ms\"\n",
            dir.path().join("s.db").display()
        );
        let path = dir.path().join(format!("bus-{port}.toml"));
        std::fs::write(&path, cfg).unwrap();
        path.to_string_lossy().into_owned()
    };
    let port = free_port();
    let _one = simulator(&["--listen", &format!("127.0.0.1:{port}"), "--only", "dorm-e-2"]);
    wait_port(port, "the meter simulator");
    let (code, out, err) = pumphouse(&["probe", "-c", &bus(port), "--discover", "dorm-line"]);
    assert_eq!((code, out.trim()), (0, "000000240102"), "{err}");
    // the whole line: the meters' answers would collide, and none is taken for an address
    let port = free_port();
    let _all = simulator(&["--listen", &format!("127.0.0.1:{port}")]);
    wait_port(port, "the meter simulator");
    let (code, out, err) = pumphouse(&["probe", "-c", &bus(port), "--discover", "dorm-line"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("or more than one"), "{err}");
}

/// A prepaid water meter's valve closed and opened again over HTTP, with the token: the
/// meter's own answer says where its valve stands, its next readings say closed and its
/// volume stops, and the command log keeps who and why. Without the token, for a meter
/// that is not CJ/T 188, or for one that is not on the line, nothing is claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepaid_meters_valve_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _sim = simulator(&["--listen", &listen, "--speed", "3600"]);
    wait_port(port, "the meter simulator");
    let (code, cfg, err) = pumphouse(&["simulate-meters", "--listen", &listen, "--print-config", "--interval", "1s"]);
    assert_eq!(code, 0, "{err}");
    let (http, token) = (free_port(), "valve-token-0123456789");
    let token_file = dir.path().join("http.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let store = dir.path().join("store.db");
    let cfg = format!(
        "{cfg}\n[store]\npath = \"{}\"\nmax_size = \"20GiB\"\n[http]\nlisten = \"127.0.0.1:{http}\"\ntoken_file = \"{}\"\n[[devices]]\nname = \"gone-w\"\nbus = \"dorm-line\"\naddress = \"99999999\"\nprofile = \"cjt188-cold-water\"\nretries = 0\n{BOOKS}",
        store.display(),
        token_file.display()
    );
    // the run and the month whose ledger is read must be one
    let local = || chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let month_of = |t: chrono::DateTime<chrono_tz::Tz>| t.format("%Y-%m").to_string();
    if month_of(local()) != month_of(local() + chrono::TimeDelta::seconds(40)) {
        tokio::time::sleep(Duration::from_secs(41)).await;
    }
    let month = month_of(local());
    let cfg_path = dir.path().join("meters.toml");
    std::fs::write(&cfg_path, &cfg).unwrap();
    let _gw = gateway(&cfg_path, &dir.path().join("gateway.log"));
    wait_port(http, "the gateway's page");
    let c = reqwest::Client::new();
    let send = |device: &str, body: String, bearer: Option<&str>| {
        let mut r = c.post(format!("http://127.0.0.1:{http}/api/devices/{device}/valve")).body(body);
        if let Some(b) = bearer {
            r = r.header("Authorization", format!("Bearer {b}"));
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let close = r#"{"action": "close", "by": "duty.engineer", "why": "flat 2 unpaid since October"}"#.to_string();
    assert_eq!(send("staff-w-2", close.clone(), None).await.0, 401);
    assert_eq!(send("staff-w-2", close.clone(), Some("wrong")).await.0, 401);
    let (code, body) = send("staff-w-2", r#"{"action": "shut", "by": "a", "why": "b"}"#.into(), Some(token)).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(send("staff-w-2", r#"{"action": "close", "by": "a"}"#.into(), Some(token)).await.0, 400);
    let (code, body) = send("dorm-e-1", close.clone(), Some(token)).await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(send("nobody", close.clone(), Some(token)).await.0, 404);
    let (code, body) = send("gone-w", close.clone(), Some(token)).await;
    assert_eq!(code, 504, "a meter not on the line does not answer: {body}");

    let readings = |point: &'static str| {
        let db = rusqlite::Connection::open(&store).unwrap();
        let mut q = db
            .prepare("SELECT r.ts_ms, r.value FROM readings r JOIN series s ON s.id = r.series WHERE s.device = 'staff-w-2' AND s.point = ?1 AND r.quality = 'good' ORDER BY r.ts_ms")
            .unwrap();
        q.query_map([point], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(readings("valve_closed").iter().all(|(_, v)| *v == 0.0));
    let (code, body) = send("staff-w-2", close, Some(token)).await;
    assert_eq!(code, 200, "{body}");
    let said: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((&said["valve"], &said["by"]), (&Value::from("closed"), &Value::from("duty.engineer")), "{said}");
    let closed_at = chrono::DateTime::parse_from_rfc3339(said["at"].as_str().unwrap()).unwrap().timestamp_millis();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // readings taken a second after the command: the valve closed, the volume still
    let after: Vec<(i64, f64)> = readings("valve_closed").into_iter().filter(|(t, _)| *t > closed_at + 1500).collect();
    assert!(after.len() >= 2 && after.iter().all(|(_, v)| *v == 1.0), "{after:?}");
    let volume: Vec<f64> =
        readings("volume").into_iter().filter(|(t, _)| *t > closed_at + 1500).map(|(_, v)| v).collect();
    assert!(volume.len() >= 2 && volume.windows(2).all(|w| w[0] == w[1]), "{volume:?}");
    let open = r#"{"action": "open", "by": "duty.engineer", "why": "paid"}"#.to_string();
    let (code, body) = send("staff-w-2", open, Some(token)).await;
    assert_eq!((code, serde_json::from_str::<Value>(&body).unwrap()["valve"].clone()), (200, Value::from("open")));
    tokio::time::sleep(Duration::from_secs(3)).await;
    // the water runs again at 0.08 m³/h (an hour per second): up again
    let v = readings("volume");
    assert!(v.last().unwrap().1 > volume.last().unwrap() + 0.05, "{v:?}");
    // the log, newest first: both commands that reached the line, and the meter that did not answer
    let log: Vec<Value> = serde_json::from_str(
        &c.get(format!("http://127.0.0.1:{http}/api/commands")).send().await.unwrap().text().await.unwrap(),
    )
    .unwrap();
    let rows: Vec<(String, String, String)> = log
        .iter()
        .map(|r| {
            (
                r["device"].as_str().unwrap().into(),
                r["action"].as_str().unwrap().into(),
                r["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 3, "{log:?}");
    assert_eq!(rows[0], ("staff-w-2".into(), "open".into(), "valve open".into()));
    assert_eq!(rows[1], ("staff-w-2".into(), "close".into(), "valve closed".into()));
    assert!(rows[2].0 == "gone-w" && rows[2].2.starts_with("the meter did not answer"), "{rows:?}");
    assert_eq!(
        (&log[1]["who"], &log[1]["why"]),
        (&Value::from("duty.engineer"), &Value::from("flat 2 unpaid since October"))
    );

    // behind the serial server too, the meters are booked in the month's ledger: dorm-e-2
    // at its 2.6 kW over its reading span, at 0.588 yuan/kWh to the fen
    let (code, out, err) =
        pumphouse(&["ledger", "-c", &cfg_path.to_string_lossy(), "--month", &month, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let l: Value = serde_json::from_str(&out).unwrap();
    let m = l["meters"].as_array().unwrap().iter().find(|m| m["device"] == "dorm-e-2").unwrap();
    let t = |k: &str| chrono::DateTime::parse_from_rfc3339(m[k].as_str().unwrap()).unwrap();
    let span = (t("closing_ts") - t("opening_ts")).num_milliseconds() as f64 / 1000.0;
    let consumption = m["consumption"].as_f64().unwrap();
    assert!(span > 8.0 && (consumption - 2.6 * span).abs() / (2.6 * span) < 0.12, "{m}");
    assert_eq!(m["amount_fen"].as_i64(), Some((consumption * 58.8).round() as i64), "{m}");
}

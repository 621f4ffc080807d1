//! tier: full (needs nats-server: `scripts/test` installs it)
//!
//! The group tier on a real clustered broker: three NATS server nodes (JetStream, MQTT on
//! each), three campus gateways' group feeds published to different nodes, and
//! `pumphouse group`. Checked: a site that has not reported leaves the group's figures
//! unknown and is named; with one node killed (SIGKILL) the last site still gets through
//! (after the cluster re-elects); the group's money equals the sum of the sites' own
//! ledgers to the fen; and a group restarted on an empty store gets everything again.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pumphouse;
use serde_json::Value;

/// One campus: one of the BWDF districts, its own price of purchased water and fees,
/// publishing to the broker node on `mqtt_port`.
fn site(dir: &Path, name: &str, dma: &str, price: &str, mqtt_port: u16) -> (String, PathBuf) {
    let base = include_str!("fixtures/bwdf-dmas.toml");
    // keep the site's own district: its device and zone
    let mut text = String::new();
    for block in base.split("\n[").enumerate().map(|(i, b)| if i == 0 { b.to_string() } else { format!("[{b}") }) {
        let other = ["dma-4", "dma-6", "dma-8"].iter().any(|d| *d != dma && block.contains(&format!("name = \"{d}\"")));
        if !other {
            text.push_str(&block);
            text.push('\n');
        }
    }
    let text = text
        .replace("name = \"bwdf\"", &format!("name = \"{name}\""))
        .replace("price = \"1.10\"", &format!("price = \"{price}\""))
        .replace("STORE", &dir.join(format!("{name}.db")).to_string_lossy())
        + &format!("[mqtt]\nurl = \"mqtt://127.0.0.1:{mqtt_port}\"\nprefix = \"ph\"\nclient_id = \"gw-{name}\"\n");
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, text).unwrap();
    let all = include_str!("fixtures/bwdf-2022-01.csv");
    let mine: String = all
        .lines()
        .filter(|l| l.starts_with("ts,") || l.contains(&format!(",{dma},")))
        .map(|l| format!("{l}\n"))
        .collect();
    let csv = dir.join(format!("{name}.csv"));
    std::fs::write(&csv, mine).unwrap();
    (cfg.to_string_lossy().into_owned(), csv)
}

/// A site's own gap for the month, fen, from its own ledger.
fn gap(cfg: &str) -> i64 {
    let (code, out, err) = pumphouse(&["ledger", "-c", cfg, "--month", "2022-01", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let l: Value = serde_json::from_str(&out).unwrap();
    l["combined"]["gap_fen"].as_i64().unwrap()
}

/// Publishes a site's feed, retrying while the cluster elects its leaders.
fn feed(cfg: &str, all: bool) -> String {
    let started = Instant::now();
    loop {
        let mut args = vec!["feed", "-c", cfg];
        if all {
            args.push("--all");
        }
        let (code, out, err) = pumphouse(&args);
        if code == 0 {
            return out;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{cfg}: the feed never got through: {err}");
        std::thread::sleep(Duration::from_secs(2));
    }
}

struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        common::terminate(&mut self.0);
    }
}

fn group(dir: &Path, store: &str, mqtt_port: u16, also: &[u16], http_port: u16) -> Group {
    let also: Vec<String> = also.iter().map(|p| format!("\"mqtt://127.0.0.1:{p}\"")).collect();
    let cfg = dir.join(format!("group-{store}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[group]\nname = \"university\"\nsites = [\"north\", \"south\", \"east\"]\nalso = [{}]\n[mqtt]\nurl = \"mqtt://127.0.0.1:{mqtt_port}\"\nprefix = \"ph\"\n[store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n",
            also.join(", "),
            dir.join(store).display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join(format!("{store}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_pumphouse"))
        .args(["group", "-c", &cfg.to_string_lossy()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    common::wait_port(http_port, "pumphouse group");
    Group(child)
}

/// The group's month, once `ready` says it has arrived.
fn month_when(http_port: u16, ready: impl Fn(&Value) -> bool) -> Value {
    let url = format!("http://127.0.0.1:{http_port}/api/group/months/2022-01");
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::blocking::get(&url) {
            if let Ok(v) = r.text().map(|t| serde_json::from_str::<Value>(&t).unwrap_or(Value::Null)) {
                if ready(&v) {
                    return v;
                }
                assert!(started.elapsed() < Duration::from_secs(90), "the group never got there: {v}");
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn the_group_is_its_sites_sum_through_a_lost_broker_node_and_an_empty_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = common::nats_cluster(dir.path());
    let mqtt: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    // three campuses, three tariffs, each on its own node (east shares the second)
    let sites =
        [("north", "dma-4", "1.10", mqtt[0]), ("south", "dma-6", "1.37", mqtt[1]), ("east", "dma-8", "0.96", mqtt[1])];
    let mut expected = Vec::new();
    let mut cfgs = Vec::new();
    let mut later = None;
    for (name, dma, price, port) in sites {
        let (cfg, csv) = site(dir.path(), name, dma, price, port);
        // east's gateway has read up to the 20th so far; the rest comes while it is cut off
        let csv = if name == "east" {
            let text = std::fs::read_to_string(&csv).unwrap();
            let (now, rest): (Vec<&str>, Vec<&str>) = text
                .lines()
                .skip(1)
                .partition(|l| l.as_bytes().get(..10).is_some_and(|d| d < b"2022-01-20".as_slice()));
            let first = dir.path().join("east-1.csv");
            std::fs::write(&first, format!("ts,device,point,value\n{}\n", now.join("\n"))).unwrap();
            let second = dir.path().join("east-2.csv");
            std::fs::write(&second, format!("ts,device,point,value\n{}\n", rest.join("\n"))).unwrap();
            later = Some(second);
            first
        } else {
            csv
        };
        let (code, _, err) = pumphouse(&["import", "-c", &cfg, "--csv", &csv.to_string_lossy()]);
        assert_eq!(code, 0, "{name}: {err}");
        expected.push(gap(&cfg));
        cfgs.push(cfg);
    }
    assert!(expected.iter().all(|g| *g != 0), "each site has a gap of its own: {expected:?}");
    let east_so_far = expected[2];
    let http = common::free_port();
    let g = group(dir.path(), "g1.db", mqtt[2], &[], http);
    // north and south report; east has not: unknown, and named
    feed(&cfgs[0], false);
    feed(&cfgs[1], false);
    let m = month_when(http, |v| {
        v["sites"].as_array().is_some_and(|s| s.iter().filter(|s| s["reported"] == true).count() == 2)
    });
    assert_eq!(m["missing"], serde_json::json!(["east"]), "{m}");
    assert_eq!(m["money"]["gap_fen"], Value::Null, "a site missing is not a smaller sum: {m}");
    // the first node dies; east publishes through the second once the cluster re-elects
    nodes[0].kill();
    let out = feed(&cfgs[2], false);
    assert!(out.contains("document(s) published"), "{out}");
    let sum: i64 = expected.iter().sum();
    let m = month_when(http, |v| v["missing"].as_array().is_some_and(|a| a.is_empty()));
    assert_eq!(m["money"]["gap_fen"].as_i64(), Some(sum), "to the fen: {m}");
    for (i, (name, ..)) in sites.iter().enumerate() {
        let s = m["sites"].as_array().unwrap().iter().find(|s| s["site"] == *name).unwrap();
        assert_eq!(s["money"]["gap_fen"].as_i64(), Some(expected[i]), "{name}: {m}");
    }
    // the node comes back; north's whole feed again goes through it
    nodes[0].start_again();
    feed(&cfgs[0], true);
    // east's gateway is cut off from the broker (a dead address) while the rest of its
    // month comes in: its feed fails and nothing is marked sent; back on line, it catches up
    let east = std::fs::read_to_string(&cfgs[2]).unwrap();
    let dead = common::free_port();
    std::fs::write(&cfgs[2], east.replace(&format!("127.0.0.1:{}", mqtt[1]), &format!("127.0.0.1:{dead}"))).unwrap();
    let later = later.unwrap();
    let (code, _, err) = pumphouse(&["import", "-c", &cfgs[2], "--csv", &later.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = pumphouse(&["feed", "-c", &cfgs[2]]);
    assert_ne!(code, 0, "no broker, no feed: {err}");
    let m = month_when(http, |v| v["money"]["gap_fen"].is_i64());
    assert_eq!(m["money"]["gap_fen"].as_i64(), Some(sum), "the group still has what east last sent: {m}");
    std::fs::write(&cfgs[2], east).unwrap();
    expected[2] = gap(&cfgs[2]);
    assert_ne!(expected[2], east_so_far, "the month grew while east was cut off");
    feed(&cfgs[2], false);
    let sum: i64 = expected.iter().sum();
    let m = month_when(http, |v| v["money"]["gap_fen"].as_i64() == Some(sum));
    assert_eq!(m["missing"], serde_json::json!([]));
    // the group restarts on an empty store and gets everything again, nothing double
    drop(g);
    let http2 = common::free_port();
    let _g2 = group(dir.path(), "g2.db", mqtt[2], &[mqtt[1], mqtt[0]], http2);
    let m = month_when(http2, |v| v["missing"].as_array().is_some_and(|a| a.is_empty()));
    assert_eq!(m["money"]["gap_fen"].as_i64(), Some(sum), "{m}");
    // the page of the current month: no site has reported it (the record is of 2022)
    let page = reqwest::blocking::get(format!("http://127.0.0.1:{http2}/")).unwrap().text().unwrap();
    assert!(page.contains("本月尚未上报") && page.contains("north, south, east"), "{page}");
    assert!(page.contains("data-contact=\"east\"") && !page.contains("从未"), "every site heard from: {page}");
    // the month as the office opens it: the group's gap in yuan, a sheet per site
    let book = reqwest::blocking::get(format!("http://127.0.0.1:{http2}/api/group/workbook/2022-01")).unwrap();
    assert_eq!(book.status(), 200);
    let path = dir.path().join("group.xlsx");
    std::fs::write(&path, book.bytes().unwrap()).unwrap();
    let read = "import json, sys, openpyxl\nwb = openpyxl.load_workbook(sys.argv[1])\nprint(json.dumps({'sheets': wb.sheetnames, 'gap': wb['集团汇总']['B4'].value, 'east': wb['east']['B4'].value}))";
    let o = Command::new(common::python_with("openpyxl")).args(["-c", read, &path.to_string_lossy()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let seen: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(seen["sheets"], serde_json::json!(["集团汇总", "集团三个零增长", "north", "south", "east"]), "{seen}");
    assert_eq!(seen["gap"].as_f64(), Some(sum as f64 / 100.0), "{seen}");
    assert_eq!(seen["east"].as_f64(), Some(expected[2] as f64 / 100.0), "{seen}");
    let sites_api: Value = serde_json::from_str(
        &reqwest::blocking::get(format!("http://127.0.0.1:{http2}/api/group/sites")).unwrap().text().unwrap(),
    )
    .unwrap();
    assert!(sites_api.as_array().unwrap().iter().all(|s| s["documents"].as_i64().unwrap_or(0) >= 1), "{sites_api}");
}

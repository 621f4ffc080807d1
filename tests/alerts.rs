//! Alerts replayed over imported history, as they would have been raised live.

mod common;

use common::pumphouse;
use serde_json::Value;

const CONFIG: &str = r#"
[site]
name = "s"
timezone = "Asia/Shanghai"
[polling]
interval = "1h"
[store]
path = "STORE"
[[buses]]
name = "lan"
transport = "tcp"
address = "127.0.0.1:502"
[[devices]]
name = "in-quiet"
bus = "lan"
unit = 1
profile = "tuf-2000m"
zone = "quiet"
[[devices]]
name = "in-leaky"
bus = "lan"
unit = 2
profile = "tuf-2000m"
zone = "leaky"
[[devices]]
name = "shop"
bus = "lan"
unit = 3
profile = "tuf-2000m"
zone = "leaky"
[[zones]]
name = "quiet"
utility = "water"
inlets = ["in-quiet"]
[[zones]]
name = "leaky"
utility = "water"
inlets = ["in-leaky"]
[[meters]]
device = "shop"
zone = "leaky"
category = "canteen"
[[tariffs]]
utility = "water"
category = "canteen"
from = "2026-01-01"
price = "4.00"
"#;

/// 30 days of hourly totalizer readings from 2026-01-01 local: 1 m³/h in the small
/// hours, 5 m³/h by day; the leaky zone gains `leak` m³/h from 20 January 23:00.
fn csv(leak: f64) -> String {
    use chrono::{TimeDelta, TimeZone, Timelike};
    let tz = chrono_tz::Asia::Shanghai;
    let start = tz.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let leak_from = tz.with_ymd_and_hms(2026, 1, 20, 23, 0, 0).unwrap();
    let mut out = String::from("ts,device,point,value\n");
    let (mut q, mut l, mut shop) = (1000.0, 2000.0, 10.0);
    for h in 0..30 * 24 {
        let t = start + TimeDelta::hours(h);
        let base = if (1..=4).contains(&t.hour()) { 1.0 + 0.01 * (h % 3) as f64 } else { 5.0 };
        q += base;
        l += base + if t >= leak_from { leak } else { 0.0 };
        shop += if (1..=4).contains(&t.hour()) { 0.0 } else { 0.5 };
        let ts = (t + TimeDelta::hours(1)).to_rfc3339();
        out.push_str(&format!("{ts},in-quiet,positive_total,{q:.3}\n{ts},in-leaky,positive_total,{l:.3}\n{ts},shop,positive_total,{shop:.3}\n"));
    }
    out
}

#[test]
fn a_leak_from_23_00_is_one_alert_with_its_loss_and_a_quiet_zone_raises_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("p.toml");
    std::fs::write(&cfg, CONFIG.replace("STORE", &dir.path().join("s.db").to_string_lossy())).unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let data = dir.path().join("history.csv");
    std::fs::write(&data, csv(2.0)).unwrap();
    let (code, out, err) = pumphouse(&["import", "-c", &cfg, "--csv", &data.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2160 imported"), "{out}");
    let (code, out, err) = pumphouse(&["alerts", "-c", &cfg, "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let alerts: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let leaks: Vec<&Value> = alerts.iter().filter(|a| a["rule"] == "night_flow").collect();
    assert_eq!(leaks.len(), 1, "one leak, one alert: {alerts:#?}");
    let a = leaks[0];
    assert_eq!(a["zone"], "leaky");
    assert_eq!(a["active"], true);
    // raised after the first leaking night's window (02:00-04:00 local on 21 January),
    // stamped with the data's time, before the office opens
    assert_eq!(a["start"], "2026-01-20T20:00:00+00:00", "{a}");
    let loss = a["loss_per_day"].as_f64().unwrap();
    assert!((loss - 48.0).abs() < 2.5, "about 2 m³/h × 24 h: {loss}");
    // valued at the zone's tariff (4.00 yuan/m³)
    let fen = a["loss_fen_per_day"].as_i64().unwrap();
    assert!((fen as f64 - loss * 400.0).abs() <= 1.0, "{fen} vs {loss}");
    assert!(a["evidence"].as_str().unwrap().contains("vs baseline 1.00 m³/h"), "{a}");
    assert!(!alerts.iter().any(|a| a["zone"] == "quiet"), "a quiet zone raises nothing: {alerts:#?}");
    // the shop's meter rests every night: no continuous flow
    assert!(!alerts.iter().any(|a| a["rule"] == "continuous_flow"), "{alerts:#?}");

    // re-evaluating changes nothing; acknowledging is recorded
    let (code, out, _) = pumphouse(&["alerts", "-c", &cfg, "evaluate"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("0 alert(s) raised or updated"), "{out}");
    let id = a["id"].as_i64().unwrap().to_string();
    let (code, out, _) = pumphouse(&["alerts", "-c", &cfg, "ack", &id, "--by", "duty.engineer"]);
    assert_eq!(code, 0);
    assert!(out.contains("acknowledged by duty.engineer"));
    let (code, out, _) = pumphouse(&["alerts", "-c", &cfg, "list", "--active"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("night_flow") && out.contains("acknowledged by duty.engineer") && out.contains("m³/day"),
        "{out}"
    );
    let (code, _, err) = pumphouse(&["alerts", "-c", &cfg, "ack", "999", "--by", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("no alert #999"));
}

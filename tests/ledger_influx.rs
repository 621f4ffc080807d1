//! The running gateway writes each month's ledger to a real InfluxDB (Debian's 1.x).

mod common;

use std::path::Path;

use common::pumphouse;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_writes_the_ledger_to_influxdb() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::bwdf_config(dir.path());
    let influx = common::influx1(dir.path(), "meters");
    // A month that is "this month" for the gateway: readings from the last two days.
    let now = chrono::Utc::now();
    let mut csv = String::from("ts,device,point,value\n");
    for h in 0..48 {
        let ts = now - chrono::TimeDelta::hours(48 - h);
        csv.push_str(&format!("{},dma-4,positive_total,{}\n", ts.to_rfc3339(), 1000.0 + 2.5 * h as f64));
    }
    let file = dir.path().join("recent.csv");
    std::fs::write(&file, csv).unwrap();
    let (code, _, err) = pumphouse(&["import", "-c", &cfg, "--csv", &file.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "[http]\nlisten = \"off\"\n[[influxdb]]\nurl = \"http://127.0.0.1:{}\"\ndatabase = \"meters\"\n",
        influx.port
    ));
    std::fs::write(&cfg, text).unwrap();
    let mut gw = common::gateway(Path::new(&cfg), &dir.path().join("gw.log"));
    let url = format!("http://127.0.0.1:{}/query", influx.port);
    let started = std::time::Instant::now();
    let series = loop {
        let body = common::text(reqwest::Client::new().get(&url).query(&[
            ("db", "meters"),
            ("q", "SELECT input, cost_yuan FROM ledger WHERE kind = 'utility' AND utility = 'water'"),
        ]))
        .await;
        let v: Value = serde_json::from_str(&body).unwrap();
        if let Some(s) = v["results"][0]["series"].as_array().filter(|a| !a.is_empty()) {
            break s[0].clone();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "no ledger in InfluxDB: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    common::terminate(&mut gw.0);
    // 47 hourly intervals of 2.5 m³ within this month (or fewer if the month just began)
    let input = series["values"][0][1].as_f64().unwrap();
    let cost = series["values"][0][2].as_f64().unwrap();
    assert!(input > 0.0 && input <= 117.5 + 1e-9, "{series}");
    assert!((cost - input * 1.10).abs() < 0.01, "cost = input × 1.10: {series}");
}

//! Benchmark: the monthly ledger for 1000 meters from 1-minute readings.
//!
//! Two runs: the ledger engine alone, fed by a generator (1000 meters × the month and its
//! seven-day margins at 1-minute resolution = 64.8 million readings), and the same
//! ledger read from a real store (BENCH_STORE_METERS meters, default 200, committed
//! first). Reports time and peak RSS; results also in target/bench/ledger.json.
//!
//! `cargo bench --bench ledger` (env: BENCH_METERS=1000, BENCH_STORE_METERS=200).

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use pumphouse::config::{self, Mode};
use pumphouse::ledger::intervals::Sample;
use pumphouse::ledger::month;
use pumphouse::model::{Quality, Quantity, Reading};
use pumphouse::store::{Limits, Store};

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()))
        .unwrap_or(0.0)
        / 1024.0
}

/// 10 zones, each with an inlet; the other meters billed, spread over the zones.
fn config_text(meters: usize, store: &str) -> String {
    let mut t = format!(
        "[site]\nname = \"bench\"\ntimezone = \"Asia/Shanghai\"\n[polling]\ninterval = \"1m\"\n[store]\npath = \"{store}\"\n\
         [[buses]]\nname = \"lan\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:502\"\nconcurrency = 1\n\
         [[tariffs]]\nutility = \"water\"\ncategory = \"residential\"\nfrom = \"2025-01-01\"\ntiers = [{{ upto = \"15\", price = \"2.85\" }}, {{ upto = \"22\", price = \"3.80\" }}, {{ price = \"4.75\" }}]\n\
         [[costs]]\nutility = \"water\"\nname = \"purchase\"\nkind = \"input\"\nprice = \"1.10\"\n"
    );
    for m in 0..meters {
        // Each bus holds 247 unit ids; spread the meters over enough buses.
        let bus = m / 247;
        if m % 247 == 0 && bus > 0 {
            t.push_str(&format!(
                "[[buses]]\nname = \"lan{bus}\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{}\"\n",
                1000 + bus
            ));
        }
        let bus_name = if bus == 0 { "lan".to_string() } else { format!("lan{bus}") };
        t.push_str(&format!(
            "[[devices]]\nname = \"m{m}\"\nbus = \"{bus_name}\"\nunit = {}\nprofile = \"tuf-2000m\"\n",
            m % 247 + 1
        ));
    }
    for z in 0..10 {
        t.push_str(&format!("[[zones]]\nname = \"z{z}\"\nutility = \"water\"\ninlets = [\"m{z}\"]\n"));
    }
    for m in 10..meters {
        t.push_str(&format!("[[meters]]\ndevice = \"m{m}\"\nzone = \"z{}\"\ncategory = \"residential\"\n", m % 10));
    }
    t
}

/// Totalizer of meter `k` at minute `i` since `t0`: a daily pattern, deterministic.
fn value(k: usize, i: i64) -> f64 {
    let rate = 0.001 * (1 + k % 7) as f64; // m³ per minute
    let day = (i % 1440) as f64 / 1440.0;
    1000.0 + rate * i as f64 + rate * 200.0 * (day * std::f64::consts::TAU).sin()
}

fn main() {
    let meters = env_or("BENCH_METERS", 1000);
    let store_meters = env_or("BENCH_STORE_METERS", 200);
    let dir = tempfile::tempdir().expect("tempdir");
    let store_path = dir.path().join("store.db");
    let t0 = Utc.with_ymd_and_hms(2026, 2, 20, 0, 0, 0).single().unwrap_or_else(Utc::now);
    let minutes = 45 * 1440;

    // 1. engine only
    let (cfg, _) = config::load_str(&config_text(meters, &store_path.display().to_string()), Mode::Check)
        .unwrap_or_else(|e| panic!("{e}"));
    let generated =
        |device: &str, _point: &str, from: DateTime<Utc>, to: DateTime<Utc>| -> Result<Vec<Sample>, month::ReadError> {
            let k: usize = device.trim_start_matches('m').parse().unwrap_or(0);
            let a = ((from - t0).num_minutes()).max(0);
            let b = ((to - t0).num_minutes()).min(minutes);
            Ok((a..b)
                .map(|i| Sample { ts: t0 + TimeDelta::minutes(i), value: Some(value(k, i)), good: true })
                .collect())
        };
    let march = pumphouse::model::Month::new(2026, 3).expect("month");
    let start = Instant::now();
    let l = month::compute(&cfg.ledger_spec(), march, &generated, &[]).expect("ledger");
    let engine_s = start.elapsed().as_secs_f64();
    let engine_rss = peak_rss_mib();
    let readings = (meters as f64) * ((l.to - l.from).num_minutes() as f64 + 14.0 * 1440.0);
    println!("| run | meters | readings read | seconds | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| ledger engine, generated 1-minute readings | {meters} | {readings:.0} | {engine_s:.1} | {engine_rss:.0} |"
    );

    // 2. from a store
    let (scfg, _) = config::load_str(&config_text(store_meters, &store_path.display().to_string()), Mode::Check)
        .unwrap_or_else(|e| panic!("{e}"));
    let store =
        Store::open(&store_path, Limits { max_size: u64::MAX, max_age: Some(std::time::Duration::from_secs(1 << 40)) })
            .expect("store");
    let site: Arc<str> = "bench".into();
    let fill = Instant::now();
    for k in 0..store_meters {
        let (device, point, zone, unit): (Arc<str>, Arc<str>, Arc<str>, Arc<str>) =
            (format!("m{k}").into(), "positive_total".into(), "z".into(), "m3".into());
        let batch: Vec<Reading> = (0..minutes)
            .map(|i| Reading {
                ts: t0 + TimeDelta::minutes(i),
                site: site.clone(),
                zone: zone.clone(),
                device: device.clone(),
                point: point.clone(),
                quantity: Quantity::WaterVolume,
                value: Some(value(k, i)),
                unit: unit.clone(),
                quality: Quality::Good,
            })
            .collect();
        store.append(&batch).expect("append");
    }
    let fill_s = fill.elapsed().as_secs_f64();
    let samples =
        |d: &str, p: &str, a: DateTime<Utc>, b: DateTime<Utc>| pumphouse::ledger::book::samples(&store, d, p, a, b);
    let start = Instant::now();
    let sl = month::compute(&scfg.ledger_spec(), march, &samples, &[]).expect("ledger");
    let store_s = start.elapsed().as_secs_f64();
    let rows = store.stats().map(|s| s.records).unwrap_or(0);
    println!(
        "| ledger from the store (SQLite, {rows} rows) | {store_meters} | {:.0} | {store_s:.1} | {:.0} |",
        store_meters as f64 * minutes as f64,
        peak_rss_mib()
    );
    println!(
        "\n(store filled in {fill_s:.1} s; water revenue {} yuan, engine run {} yuan)",
        sl.utilities[0].revenue_fen as f64 / 100.0,
        l.utilities[0].revenue_fen as f64 / 100.0
    );
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(
        out.join("ledger.json"),
        format!("{{\"engine\":{{\"meters\":{meters},\"seconds\":{engine_s:.2},\"peak_rss_mib\":{engine_rss:.0}}},\"store\":{{\"meters\":{store_meters},\"rows\":{rows},\"seconds\":{store_s:.2}}}}}\n"),
    );
}

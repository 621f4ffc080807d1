//! Benchmark: the store and the sinks. Fills a store with a backlog (default one hour of
//! 200 devices × 20 points every 10 s = 1.44 million readings), then drains it to a real
//! Mosquitto, InfluxDB 1.x and VictoriaMetrics (InfluxDB 2.x API) started on loopback,
//! and reports commit rate, bytes per reading and the drain rate of each sink.
//!
//! `cargo bench --bench delivery` (env: BENCH_DEVICES=200, BENCH_POINTS=20,
//! BENCH_MINUTES=60, BENCH_INTERVAL_S=10). Needs mosquitto, influxd and victoria-metrics
//! (`scripts/test` installs them). Results: printed, and target/bench/delivery.json.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use pumphouse::config::{InfluxApi, InfluxConfig, MqttConfig, Payload, Precision};
use pumphouse::model::{Quality, Quantity, Reading};
use pumphouse::sinks::{influx, mqtt, SinkHealth};
use pumphouse::store::{Limits, Store};
use tokio_util::sync::CancellationToken;

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").map(|l| l.local_addr().map(|a| a.port()).unwrap_or(0)).unwrap_or(0)
}

fn wait_port(port: u16) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(20), "service on {port} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &str, args: &[String]) -> Service {
    let path = ["/usr/sbin", "/usr/bin"].iter().map(|d| Path::new(d).join(bin)).find(|p| p.exists());
    let Some(path) = path else { panic!("{bin} is needed: run scripts/test once (it installs it)") };
    Service(Command::new(path).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn"))
}

fn fill(store: &Store, devices: u64, points: u64, minutes: u64, interval_s: u64) -> (u64, f64) {
    let start = Utc.timestamp_millis_opt(1_764_000_000_000).single().unwrap_or_else(Utc::now);
    let names: Vec<Arc<str>> = (0..devices).map(|d| Arc::from(format!("meter-{d:03}"))).collect();
    let pts: Vec<Arc<str>> = (0..points).map(|p| Arc::from(format!("p{p:02}"))).collect();
    let (site, zone, unit): (Arc<str>, Arc<str>, Arc<str>) = ("bench".into(), "zone-a".into(), "m3".into());
    let cycles = minutes * 60 / interval_s;
    let t0 = Instant::now();
    let mut n = 0u64;
    for c in 0..cycles {
        let ts = start + chrono::Duration::seconds((c * interval_s) as i64);
        let mut batch = Vec::with_capacity((devices * points) as usize);
        for d in &names {
            for (k, p) in pts.iter().enumerate() {
                batch.push(Reading {
                    ts,
                    site: site.clone(),
                    zone: zone.clone(),
                    device: d.clone(),
                    point: p.clone(),
                    quantity: if k == 0 { Quantity::WaterVolume } else { Quantity::Status },
                    value: Some(c as f64 * 0.25 + k as f64),
                    unit: unit.clone(),
                    quality: Quality::Good,
                });
            }
        }
        n += batch.len() as u64;
        store.append(&batch).expect("append");
    }
    (n, t0.elapsed().as_secs_f64())
}

async fn drain(
    store: Arc<Store>,
    consumer: &str,
    run: impl FnOnce(Arc<SinkHealth>, CancellationToken) -> tokio::task::JoinHandle<()>,
) -> f64 {
    let last = store.last_seq().expect("last");
    let health = Arc::new(SinkHealth::new(consumer, consumer));
    let cancel = CancellationToken::new();
    let t0 = Instant::now();
    let task = run(health.clone(), cancel.clone());
    while store.cursor(consumer).expect("cursor") < last {
        assert!(t0.elapsed() < Duration::from_secs(1800), "{consumer} did not drain: {:?}", health.error());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    secs
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (devices, points, minutes, interval_s) = (
        env_or("BENCH_DEVICES", 200),
        env_or("BENCH_POINTS", 20),
        env_or("BENCH_MINUTES", 60),
        env_or("BENCH_INTERVAL_S", 10),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let d: PathBuf = dir.path().to_path_buf();
    let store = Arc::new(Store::open(&d.join("store.db"), Limits::default()).expect("store"));
    let (n, fill_s) = fill(&store, devices, points, minutes, interval_s);
    let stats = store.stats().expect("stats");
    let bytes_per = stats.bytes as f64 / n as f64;

    // receivers
    let mq_port = free_port();
    std::fs::write(
        d.join("m.conf"),
        format!("listener {mq_port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n"),
    )
    .expect("conf");
    let _mq = spawn("mosquitto", &["-c".into(), d.join("m.conf").display().to_string()]);
    let (ix_port, ix_rpc) = (free_port(), free_port());
    std::fs::write(
        d.join("i.conf"),
        format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{ix_rpc}\"\n[meta]\ndir = \"{0}/meta\"\n[data]\ndir = \"{0}/data\"\nwal-dir = \"{0}/wal\"\n[http]\nbind-address = \"127.0.0.1:{ix_port}\"\nlog-enabled = false\n",
            d.join("ix").display()
        ),
    )
    .expect("conf");
    let _ix = spawn("influxd", &["-config".into(), d.join("i.conf").display().to_string()]);
    let vm_port = free_port();
    let _vm = spawn(
        "victoria-metrics",
        &[
            format!("-storageDataPath={}", d.join("vm").display()),
            format!("-httpListenAddr=127.0.0.1:{vm_port}"),
            "-retentionPeriod=100y".into(),
        ],
    );
    for p in [mq_port, ix_port, vm_port] {
        wait_port(p);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let results = rt.block_on(async {
        let _ = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{ix_port}/query"))
            .form(&[("q", "CREATE DATABASE bench")])
            .send()
            .await
            .expect("create database");
        let (_tx, rx) = tokio::sync::watch::channel(store.last_seq().unwrap_or(0));
        let mut out = Vec::new();
        let mq = MqttConfig {
            host: "127.0.0.1".into(),
            port: mq_port,
            tls: false,
            prefix: "pumphouse".into(),
            client_id: "bench".into(),
            username: None,
            password: None,
            ca_file: None,
            client_cert: None,
            retain: false,
            qos: 1,
            window: 1000,
            payload: Payload::Point,
            keep_alive: Duration::from_secs(30),
        };
        let (s, r) = (store.clone(), rx.clone());
        let device_mode = MqttConfig { payload: Payload::Device, ..mq.clone() };
        out.push((
            "MQTT QoS 1 to Mosquitto (window 1000, a message per reading)",
            drain(store.clone(), mqtt::CONSUMER, move |h, c| {
                tokio::spawn(mqtt::run(mq, "bench".into(), s, r, h, c, Duration::from_secs(5)))
            })
            .await,
        ));
        // the same backlog again, one message per poll of a device: the cursor goes back
        // to the start (a cursor never moves back through the store's API)
        rusqlite::Connection::open(d.join("store.db"))
            .and_then(|c| c.execute("UPDATE cursors SET seq = 0 WHERE consumer = ?1", [mqtt::CONSUMER]))
            .expect("reset the MQTT cursor");
        let (s, r) = (store.clone(), rx.clone());
        out.push((
            "MQTT QoS 1 to Mosquitto (window 1000, a message per poll of a device)",
            drain(store.clone(), mqtt::CONSUMER, move |h, c| {
                tokio::spawn(mqtt::run(device_mode, "bench".into(), s, r, h, c, Duration::from_secs(5)))
            })
            .await,
        ));
        for (label, name, url, api) in [
            (
                "InfluxDB 1.x /write (batch 5000, gzip)",
                "v1",
                format!("http://127.0.0.1:{ix_port}"),
                InfluxApi::V1 { database: "bench".into(), retention_policy: None, username: None, password: None },
            ),
            (
                "VictoriaMetrics /api/v2/write (batch 5000, gzip)",
                "vm",
                format!("http://127.0.0.1:{vm_port}"),
                InfluxApi::V2 { org: "o".into(), bucket: "b".into(), token: None },
            ),
        ] {
            let cfg = InfluxConfig {
                name: name.into(),
                url,
                api,
                batch_size: 5000,
                flush_interval: Duration::from_secs(1),
                precision: Precision::Nanoseconds,
                gzip: true,
                timeout: Duration::from_secs(30),
            };
            let consumer = influx::consumer_name(&cfg);
            let (s, r) = (store.clone(), rx.clone());
            out.push((
                label,
                drain(store.clone(), &consumer, move |h, c| {
                    tokio::spawn(influx::run(cfg, s, r, h, c, Duration::from_secs(5)))
                })
                .await,
            ));
        }
        out
    });
    println!("backlog: {n} readings ({devices} devices × {points} points every {interval_s} s for {minutes} min)");
    println!("| step | seconds | readings/s |");
    println!("|---|---:|---:|");
    println!("| commit to the store (batches of {}) | {fill_s:.1} | {:.0} |", devices * points, n as f64 / fill_s);
    let mut json =
        vec![format!("{{\"step\":\"commit\",\"seconds\":{fill_s:.2},\"readings_per_s\":{:.0}}}", n as f64 / fill_s)];
    for (label, secs) in &results {
        println!("| drain to {label} | {secs:.1} | {:.0} |", n as f64 / secs);
        json.push(format!("{{\"step\":\"{label}\",\"seconds\":{secs:.2},\"readings_per_s\":{:.0}}}", n as f64 / secs));
    }
    println!("\nstore: {} bytes for {n} readings = {bytes_per:.1} bytes per reading", stats.bytes);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(
        out.join("delivery.json"),
        format!("{{\"readings\":{n},\"bytes_per_reading\":{bytes_per:.1},\"steps\":[{}]}}\n", json.join(",")),
    );
}

//! Durable delivery against real receivers: Mosquitto, InfluxDB 1.x and VictoriaMetrics
//! (InfluxDB 2.x write API). The broker and the database are stopped mid-run and started
//! again, and the gateway is killed with SIGKILL and restarted; afterwards every reading
//! the gateway committed is in InfluxDB exactly once and arrived on MQTT at least once.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, gateway, terminate, Proc};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};

fn simulator(devices: u8) -> (Proc, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pumphouse"))
        .args(["simulate", "--listen", "127.0.0.1:0", "--fleet", &devices.to_string(), "--fleet-registers", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().trim_start_matches("simulator listening on ").to_string();
    (Proc(child), addr)
}

/// A durable MQTT subscriber: clean_session = false, so a broker restart (with
/// persistence) does not lose what was published for it meanwhile.
fn subscriber(port: u16, received: Arc<Mutex<Vec<(String, String)>>>) -> tokio::task::JoinHandle<()> {
    let mut opts = MqttOptions::new("delivery-test-subscriber", "127.0.0.1", port);
    opts.set_clean_session(false);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                    if !ack.session_present {
                        let _ = client.subscribe("pumphouse/#", QoS::AtLeastOnce).await;
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    let payload = String::from_utf8_lossy(&p.payload).into_owned();
                    received.lock().unwrap().push((p.topic.clone(), payload));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}

/// (device, point) → timestamps in ms, from the gateway's store.
fn store_contents(db: &Path) -> BTreeMap<(String, String), Vec<i64>> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn
        .prepare("SELECT s.device, s.point, r.ts_ms FROM readings r JOIN series s ON s.id = r.series ORDER BY r.seq")
        .unwrap();
    let mut out: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    let rows =
        stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))).unwrap();
    for row in rows {
        let (d, p, t) = row.unwrap();
        out.entry((d, p)).or_default().push(t);
    }
    out
}

async fn influx_contents(port: u16) -> BTreeMap<(String, String), Vec<i64>> {
    let url = format!("http://127.0.0.1:{port}/query");
    let rsp: serde_json::Value = reqwest::Client::new()
        .get(&url)
        .query(&[("db", "meters"), ("epoch", "ms"), ("q", "SELECT quality FROM status GROUP BY device, point")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    let mut out: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    for s in rsp["results"][0]["series"].as_array().cloned().unwrap_or_default() {
        let key = (s["tags"]["device"].as_str().unwrap().to_string(), s["tags"]["point"].as_str().unwrap().to_string());
        let ts: Vec<i64> = s["values"].as_array().unwrap().iter().map(|v| v[0].as_i64().unwrap()).collect();
        out.insert(key, ts);
    }
    out
}

/// VictoriaMetrics: the `status_quality` series is not numeric, so read `status_value`
/// (every reading in this test is good and has a value).
async fn victoria_contents(port: u16) -> BTreeMap<(String, String), BTreeSet<i64>> {
    let client = reqwest::Client::new();
    let _ = client.get(format!("http://127.0.0.1:{port}/internal/force_flush")).send().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let text = common::text(
        client
            .get(format!("http://127.0.0.1:{port}/api/v1/export"))
            .query(&[("match[]", "{__name__=\"status_value\"}")]),
    )
    .await;
    let mut out: BTreeMap<(String, String), BTreeSet<i64>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let key =
            (v["metric"]["device"].as_str().unwrap().to_string(), v["metric"]["point"].as_str().unwrap().to_string());
        let set = out.entry(key).or_default();
        for t in v["timestamps"].as_array().unwrap() {
            set.insert(t.as_i64().unwrap());
        }
    }
    out
}

async fn api_status(port: u16) -> Option<serde_json::Value> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/api/status")).await.ok()?.text().await.ok()?;
    serde_json::from_str(&text).ok()
}

/// Loopback ports of the receivers and the gateway's HTTP endpoint.
struct Ports {
    mqtt: u16,
    influx: u16,
    vm: u16,
    http: u16,
}

fn config(dir: &Path, sim: &str, devices: u8, ports: &Ports, with_devices: bool) -> std::path::PathBuf {
    let mut t = format!(
        r#"
[site]
name = "test-site"
[store]
path = "{}/store.db"
[mqtt]
url = "mqtt://127.0.0.1:{mqtt}"
client_id = "gateway-under-test"
window = 50
[[influxdb]]
name = "v1"
url = "http://127.0.0.1:{influx}"
database = "meters"
batch_size = 200
flush_interval = "300ms"
[[influxdb]]
name = "vm"
api = "v2"
url = "http://127.0.0.1:{vm}"
org = "campus"
bucket = "meters"
batch_size = 200
flush_interval = "300ms"
[http]
listen = "127.0.0.1:{http}"
stall_after = "2s"
[[profiles]]
name = "pair"
points = [
  {{ name = "a", table = "holding", address = 0, quantity = "status" }},
  {{ name = "b", table = "holding", address = 1, quantity = "status" }},
]
"#,
        dir.display(),
        mqtt = ports.mqtt,
        influx = ports.influx,
        vm = ports.vm,
        http = ports.http
    );
    if with_devices {
        t.push_str(&format!(
            "[[buses]]\nname = \"lan\"\ntransport = \"tcp\"\naddress = \"{sim}\"\ntimeout = \"500ms\"\n"
        ));
        for u in 1..=devices {
            t.push_str(&format!(
                "[[devices]]\nname = \"d{u}\"\nbus = \"lan\"\nunit = {u}\nprofile = \"pair\"\ninterval = \"100ms\"\n"
            ));
        }
    }
    let p = dir.join(if with_devices { "gateway.toml" } else { "drain.toml" });
    std::fs::write(&p, t).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_when_the_broker_the_database_and_the_gateway_go_down() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut broker = common::mosquitto(d, "allow_anonymous true");
    let mut influx = common::influx1(d, "meters");
    let vm = common::victoria(d);
    let (_sim, sim_addr) = simulator(5);
    let http = free_port();
    let ports = Ports { mqtt: broker.port, influx: influx.port, vm: vm.port, http };
    let cfg = config(d, &sim_addr, 5, &ports, true);
    let drain = config(d, &sim_addr, 5, &ports, false);
    let log = d.join("gateway.log");
    let received = Arc::new(Mutex::new(Vec::new()));
    let sub = subscriber(broker.port, received.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut gw = gateway(&cfg, &log);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Outage: broker and database down together for three seconds.
    broker.stop();
    influx.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // While they are down, /healthz reports the stalled sinks (stall_after = 2s).
    let status = api_status(http).await.expect("status while receivers are down");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let health = reqwest::get(format!("http://127.0.0.1:{http}/healthz")).await.unwrap();
    let health_code = health.status().as_u16();
    let health_text = health.text().await.unwrap();
    broker.restart();
    influx.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Crash: SIGKILL, then start again on the same store.
    let _ = gw.0.kill();
    let _ = gw.0.wait();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut gw = gateway(&cfg, &log);
    tokio::time::sleep(Duration::from_secs(2)).await;
    terminate(&mut gw.0);
    // Drain: same store and sinks, no devices, until every sink has caught up.
    let mut gw = gateway(&drain, &log);
    let started = Instant::now();
    loop {
        if let Some(s) = api_status(http).await {
            if s["sinks"].as_array().is_some_and(|a| a.iter().all(|x| x["backlog"] == 0)) {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "sinks did not catch up: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = reqwest::get(format!("http://127.0.0.1:{http}/metrics")).await.unwrap().text().await.unwrap();
    terminate(&mut gw.0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    sub.abort();

    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(health_code, 503, "healthz during the outage: {health_text}\nstatus: {status}");
    assert!(
        health_text.contains("sink mqtt stalled") && health_text.contains("sink influxdb:v1 stalled"),
        "{health_text}"
    );
    assert!(metrics.contains("pumphouse_sink_failures_total{sink=\"mqtt\"}"), "{metrics}");

    let stored = store_contents(&d.join("store.db"));
    let total: usize = stored.values().map(Vec::len).sum();
    assert!(total > 300, "the gateway committed {total} readings");
    assert_eq!(stored.len(), 10, "5 devices × 2 points");

    // InfluxDB 1.x: every committed reading, once.
    let in_influx = influx_contents(influx.port).await;
    for (key, ts) in &stored {
        let want: BTreeSet<i64> = ts.iter().copied().collect();
        assert_eq!(want.len(), ts.len(), "{key:?}: the store holds each reading once");
        let got = in_influx.get(key).cloned().unwrap_or_default();
        let got_set: BTreeSet<i64> = got.iter().copied().collect();
        assert_eq!(got.len(), got_set.len(), "{key:?}: duplicates in InfluxDB");
        let missing: Vec<&i64> = want.difference(&got_set).collect();
        assert!(
            missing.is_empty(),
            "{key:?}: {} readings missing from InfluxDB 1.x, e.g. {:?}\n{log_text}",
            missing.len(),
            missing.first()
        );
        assert_eq!(got_set, want, "{key:?}");
    }

    // VictoriaMetrics through the 2.x write API: every committed reading.
    let in_vm = victoria_contents(vm.port).await;
    for (key, ts) in &stored {
        let want: BTreeSet<i64> = ts.iter().copied().collect();
        let got = in_vm.get(key).cloned().unwrap_or_default();
        let missing = want.difference(&got).count();
        assert_eq!(missing, 0, "{key:?}: {missing} readings missing from VictoriaMetrics");
    }

    // MQTT: every reading arrived at least once; first arrivals in time order per series.
    let msgs = received.lock().unwrap().clone();
    assert!(msgs.iter().any(|(t, p)| t == "pumphouse/test-site/status" && p == "online"), "birth message");
    let mut first_seen: HashMap<(String, String), Vec<i64>> = HashMap::new();
    let mut seen: BTreeSet<(String, String, i64)> = BTreeSet::new();
    for (topic, payload) in &msgs {
        let parts: Vec<&str> = topic.split('/').collect();
        if parts.len() != 5 {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        let ts = chrono::DateTime::parse_from_rfc3339(v["ts"].as_str().unwrap()).unwrap().timestamp_millis();
        let key = (parts[3].to_string(), parts[4].to_string());
        if seen.insert((key.0.clone(), key.1.clone(), ts)) {
            first_seen.entry(key).or_default().push(ts);
        }
    }
    for (key, ts) in &stored {
        let got: BTreeSet<i64> = first_seen.get(key).map(|v| v.iter().copied().collect()).unwrap_or_default();
        let missing = ts.iter().filter(|t| !got.contains(t)).count();
        assert_eq!(missing, 0, "{key:?}: {missing} of {} readings never arrived on MQTT", ts.len());
        let order = &first_seen[key];
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{key:?}: out of order on MQTT");
    }
}

/// One device polled every 200 ms, one point: the source for the smaller delivery tests.
fn one_device(sim_addr: &str) -> String {
    format!(
        "[[buses]]\nname = \"lan\"\ntransport = \"tcp\"\naddress = \"{sim_addr}\"\n\
         [[devices]]\nname = \"d1\"\nbus = \"lan\"\nunit = 1\nprofile = \"p\"\ninterval = \"200ms\"\n\
         [[profiles]]\nname = \"p\"\npoints = [{{ name = \"a\", table = \"holding\", address = 0, quantity = \"status\" }}]\n"
    )
}

async fn influx_write(port: u16, db: &str, body: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/write?db={db}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_batches_are_set_aside_and_a_missing_database_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let influx = common::influx1(d, "conflict");
    // An integer `value` field first: every float the gateway writes to `status` now
    // conflicts (400 "field type conflict").
    assert_eq!(influx_write(influx.port, "conflict", "status,device=x value=1i").await, 204);
    let (_sim, sim_addr) = simulator(2);
    let http = free_port();
    let cfg = d.join("gw.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[site]
name = "s"
[store]
path = "{}/store.db"
[[influxdb]]
name = "conflict"
url = "http://127.0.0.1:{port}"
database = "conflict"
flush_interval = "200ms"
[[influxdb]]
name = "missing"
url = "http://127.0.0.1:{port}"
database = "nope"
flush_interval = "200ms"
[http]
listen = "127.0.0.1:{http}"
stall_after = "1s"
{device}"#,
            d.display(),
            port = influx.port,
            device = one_device(&sim_addr)
        ),
    )
    .unwrap();
    let log = d.join("gw.log");
    let mut gw = gateway(&cfg, &log);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = api_status(http).await.expect("status");
    let health = reqwest::get(format!("http://127.0.0.1:{http}/healthz")).await.unwrap();
    let code = health.status().as_u16();
    let text = health.text().await.unwrap();
    let metrics = reqwest::get(format!("http://127.0.0.1:{http}/metrics")).await.unwrap().text().await.unwrap();
    terminate(&mut gw.0);
    let sinks = status["sinks"].as_array().unwrap();
    let conflict = sinks.iter().find(|s| s["sink"] == "influxdb:conflict").unwrap();
    let missing = sinks.iter().find(|s| s["sink"] == "influxdb:missing").unwrap();
    // the refused batches were set aside and the queue moved on
    assert!(conflict["set_aside"].as_u64().unwrap() >= 1, "{conflict}");
    assert!(conflict["backlog"].as_i64().unwrap() < 20, "the queue moves on: {conflict}");
    assert!(conflict["last_error"].as_str().unwrap_or("").contains("field type conflict"), "{conflict}");
    assert!(status["store"]["set_aside"].as_i64().unwrap() >= 1);
    assert!(metrics.contains("pumphouse_sink_set_aside_total{sink=\"influxdb:conflict\"}"), "{metrics}");
    // the missing database holds its queue and says why
    assert!(missing["backlog"].as_i64().unwrap() > 5, "{missing}");
    assert!(missing["last_error"].as_str().unwrap().contains("database `nope` does not exist"), "{missing}");
    assert_eq!(code, 503);
    assert!(
        text.contains("sink influxdb:missing stalled") && text.contains("database `nope` does not exist"),
        "{text}"
    );
    // a sink whose queue moves is not stalled, but one that refuses every batch is named
    assert!(!text.contains("sink influxdb:conflict stalled"), "a sink that moves on is not stalled: {text}");
    assert!(text.contains("sink influxdb:conflict has refused every batch"), "{text}");
}

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl").current_dir(dir).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(ok.map(|s| s.success()).unwrap_or(false), "openssl {args:?} failed (scripts/test installs openssl)");
}

/// A CA and a server certificate for 127.0.0.1 / localhost.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_over_tls_with_a_password_and_a_wrong_password_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    let passwd = d.join("passwd");
    let st = Command::new(common::require("mosquitto_passwd", "mosquitto"))
        .arg("-c")
        .arg("-b")
        .arg(&passwd)
        .args(["gw", "s3cret"])
        .status()
        .unwrap();
    assert!(st.success());
    let broker = common::mosquitto(
        d,
        &format!(
            "allow_anonymous false\npassword_file {}\ncafile {}\ncertfile {}\nkeyfile {}",
            passwd.display(),
            d.join("ca.crt").display(),
            d.join("server.crt").display(),
            d.join("server.key").display()
        ),
    );
    // the test's subscriber, over TLS with the same account
    let received = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let mut opts = MqttOptions::new("tls-subscriber", "127.0.0.1", broker.port);
    opts.set_credentials("gw", "s3cret");
    opts.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Simple {
        ca: std::fs::read(d.join("ca.crt")).unwrap(),
        alpn: None,
        client_auth: None,
    }));
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    let got = received.clone();
    let sub = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    let _ = client.subscribe("pumphouse/#", QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    got.lock().unwrap().push((p.topic.clone(), String::from_utf8_lossy(&p.payload).into_owned()));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    let (_sim, sim_addr) = simulator(1);
    let mut gateways = Vec::new();
    let mut ports = Vec::new();
    for (name, secret) in [("good", "s3cret"), ("bad", "wrong")] {
        let http = free_port();
        let secret_file = d.join(format!("{name}.secret"));
        std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
        let cfg = d.join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                r#"
[site]
name = "{name}"
[store]
path = "{dir}/{name}.db"
[mqtt]
url = "mqtts://127.0.0.1:{port}"
client_id = "gw-{name}"
username = "gw"
password_file = "{secret}"
ca_file = "{dir}/ca.crt"
retain = true
[http]
listen = "127.0.0.1:{http}"
stall_after = "1s"
{device}"#,
                dir = d.display(),
                port = broker.port,
                secret = secret_file.display(),
                device = one_device(&sim_addr)
            ),
        )
        .unwrap();
        gateways.push(gateway(&cfg, &d.join(format!("{name}.log"))));
        ports.push(http);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let good = api_status(ports[0]).await.expect("status of the good gateway");
    let bad = api_status(ports[1]).await.expect("status of the bad gateway");
    for mut g in gateways {
        terminate(&mut g.0);
    }
    sub.abort();
    let msgs = received.lock().unwrap().clone();
    assert!(msgs.iter().any(|(t, p)| t == "pumphouse/good/status" && p == "online"), "{msgs:?}");
    let readings = msgs.iter().filter(|(t, _)| t == "pumphouse/good/unzoned/d1/a").count();
    assert!(readings >= 5, "readings over TLS: {readings}");
    assert!(!msgs.iter().any(|(t, _)| t.starts_with("pumphouse/bad/")), "the wrong password published nothing");
    assert!(good["sinks"][0]["delivered"].as_u64().unwrap() >= 5, "{good}");
    let err = bad["sinks"][0]["last_error"].as_str().unwrap_or("");
    assert!(err.contains("MQTT") && (err.contains("NotAuthorized") || err.contains("BadUserNamePassword")), "{bad}");
    // the secret never shows up in status or logs
    let bad_log = std::fs::read_to_string(d.join("bad.log")).unwrap();
    assert!(!bad_log.contains("wrong") && !bad.to_string().contains("wrong"), "{bad_log}");
    assert!(!std::fs::read_to_string(d.join("good.log")).unwrap().contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_per_poll_of_a_device_carries_every_reading_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let broker = common::mosquitto(d, "allow_anonymous true");
    let (_sim, sim_addr) = simulator(3);
    // InfluxDB is configured but not running: only MQTT is looked at here
    let ports = Ports { mqtt: broker.port, influx: free_port(), vm: free_port(), http: free_port() };
    let cfg = config(d, &sim_addr, 3, &ports, true);
    let text = std::fs::read_to_string(&cfg).unwrap().replace("window = 50", "window = 50\npayload = \"device\"");
    std::fs::write(&cfg, text).unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sub = subscriber(broker.port, received.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut gw = gateway(&cfg, &d.join("gateway.log"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    // SIGTERM drains what was committed to the broker before it stops
    terminate(&mut gw.0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    sub.abort();

    let stored = store_contents(&d.join("store.db"));
    let mut sent: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    let msgs = received.lock().unwrap().clone();
    let mut messages = 0;
    for (topic, payload) in msgs.iter().filter(|(t, _)| !t.ends_with("/status")) {
        // pumphouse/{site}/{zone}/{device}
        let parts: Vec<&str> = topic.split('/').collect();
        assert_eq!(parts.len(), 4, "{topic}");
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        let ts = chrono::DateTime::parse_from_rfc3339(v["ts"].as_str().unwrap()).unwrap().timestamp_millis();
        assert_eq!(v["quality"], "good", "{payload}");
        let points = v["points"].as_object().unwrap();
        assert_eq!(points.len(), 2, "both points of the poll in one message: {payload}");
        for (p, value) in points {
            assert!(value.is_number(), "{payload}");
            sent.entry((parts[3].to_string(), p.clone())).or_default().push(ts);
        }
        messages += 1;
    }
    for v in sent.values_mut() {
        v.sort();
    }
    let readings: usize = stored.values().map(Vec::len).sum();
    assert!(readings >= 3 * 2 * 10, "the fleet was polled: {readings} readings");
    assert_eq!(sent, stored, "every stored reading in exactly one message");
    assert_eq!(messages * 2, readings, "one message per poll of a device");
}

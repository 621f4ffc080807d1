//! Test harness: real outside parts, started per test on free loopback ports or fresh
//! pseudo-terminals, and stopped when the handle drops. A part that is missing fails the
//! test with a message that says how to get it — never a silent skip.

#![allow(dead_code)]

pub mod browser;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter that has pymodbus: `PUMPHOUSE_TEST_PYTHON`, or the project's
/// `.venv` made by `scripts/test`.
pub fn python() -> PathBuf {
    python_with("pymodbus, serial")
}

/// The project's Python (as [`python`]) that can `import {modules}`.
pub fn python_with(modules: &str) -> PathBuf {
    let candidate = std::env::var_os("PUMPHOUSE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join(".venv/bin/python"));
    let ok = Command::new(&candidate)
        .args(["-c", &format!("import {modules}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{modules} is needed for this test and was not found at {}: run `scripts/test` (it creates .venv with pymodbus, pyserial and openpyxl), or set PUMPHOUSE_TEST_PYTHON to a Python that has them",
        candidate.display()
    );
    candidate
}

pub fn require_socat() {
    let ok = Command::new("socat").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    assert!(
        ok,
        "socat is needed for the serial-line tests: run `scripts/test` (it installs it) or `apt-get install socat`"
    );
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `pumphouse run -c CFG`, its log appended to `log`; killed when dropped (a failing
/// assertion included).
pub fn gateway(cfg: &Path, log: &Path) -> Proc {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Proc(
        Command::new(env!("CARGO_BIN_EXE_pumphouse"))
            .args(["run", "-c"])
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start pumphouse run"),
    )
}

/// A file for a child's stderr (a pipe nobody reads could fill up and stall it).
fn stderr_file() -> (Stdio, PathBuf) {
    let f = tempfile::Builder::new().prefix("pumphouse-test-").suffix(".log").tempfile().expect("temp file");
    let (file, path) = f.keep().expect("keep temp file");
    (Stdio::from(file), path)
}

/// Waits for a line on the child's stdout that starts with `prefix`; returns it.
fn wait_line(child: &mut Child, log: &Path, prefix: &str, timeout: Duration) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    let prefix_owned = prefix.to_string();
    std::thread::spawn(move || {
        let reader = BufReader::new(stdout);
        let mut sent = false;
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if !sent && line.starts_with(&prefix_owned) {
                let _ = tx.send(line);
                sent = true;
            }
        }
    });
    match rx.recv_timeout(timeout) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(log).unwrap_or_default();
            panic!("process did not print `{prefix}` within {timeout:?}; stderr:\n{err}");
        }
    }
}

/// Starts tests/support/modbus_device.py with `spec`; returns it once it printed READY,
/// with the rest of that line.
fn pymodbus(spec: &serde_json::Value) -> (Proc, String) {
    let (err, log) = stderr_file();
    let mut child = Command::new(python())
        .arg(manifest_dir().join("tests/support/modbus_device.py"))
        .arg(spec.to_string())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .expect("start the pymodbus device");
    let line = wait_line(&mut child, &log, "READY", Duration::from_secs(30));
    (Proc(child), line.trim_start_matches("READY").trim().to_string())
}

/// A pymodbus device served over TCP (`tcp` or `rtu-over-tcp` framing), and its port.
pub fn pymodbus_tcp(spec: &serde_json::Value) -> (Proc, u16) {
    let (proc, rest) = pymodbus(spec);
    (proc, rest.parse().expect("port after READY"))
}

/// A pymodbus RTU device on a serial line (`spec["tty"]` set by the caller).
pub fn pymodbus_serial(spec: &serde_json::Value) -> Proc {
    pymodbus(spec).0
}

/// A virtual null-modem cable: two linked pseudo-terminals made by socat.
pub struct SerialPair {
    pub proc: Proc,
    pub a: PathBuf,
    pub b: PathBuf,
}

pub fn serial_pair(dir: &Path) -> SerialPair {
    require_socat();
    let a = dir.join("ttyA");
    let b = dir.join("ttyB");
    let child = Command::new("socat")
        .arg(format!("pty,raw,echo=0,link={}", a.display()))
        .arg(format!("pty,raw,echo=0,link={}", b.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start socat");
    let started = Instant::now();
    while !(a.exists() && b.exists()) {
        assert!(started.elapsed() < Duration::from_secs(10), "socat did not create the pty pair");
        std::thread::sleep(Duration::from_millis(20));
    }
    SerialPair { proc: Proc(child), a, b }
}

/// Runs the `pumphouse` binary with `args`; returns (exit code, stdout, stderr).
pub fn pumphouse(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pumphouse")).args(args).output().expect("run pumphouse");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes the ten BWDF DMAs' configuration (tests/fixtures/bwdf-dmas.toml) into `dir`,
/// with its store there; returns the configuration's path.
pub fn bwdf_config(dir: &Path) -> String {
    let cfg = dir.join("pumphouse.toml");
    let text = include_str!("../fixtures/bwdf-dmas.toml").replace("STORE", &dir.join("store.db").to_string_lossy());
    std::fs::write(&cfg, text).unwrap();
    cfg.to_string_lossy().into_owned()
}

/// The body of an answer to `req`, which must arrive.
pub async fn text(req: reqwest::RequestBuilder) -> String {
    req.send().await.unwrap().text().await.unwrap()
}

/// History for `fixtures/alerts-two-zones.toml`: 30 days of hourly totalizer readings
/// from 2026-01-01 local, 1 m³/h in the small hours and 5 m³/h by day; the leaky zone
/// gains `leak` m³/h from 20 January 23:00; the shop's meter rests every night.
pub fn two_zone_history(leak: f64) -> String {
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
        out.push_str(&format!(
            "{ts},in-quiet,positive_total,{q:.3}\n{ts},in-leaky,positive_total,{l:.3}\n{ts},shop,positive_total,{shop:.3}\n"
        ));
    }
    out
}

/// A webhook receiver on a free loopback port: `answer(n)` gives the status line and body
/// of the n-th request (from 1). The bodies it takes are recorded: those answered 200
/// without a robot's refusal (no `errcode`, or `errcode` 0).
pub fn webhook(
    answer: impl Fn(usize) -> (&'static str, &'static str) + Send + 'static,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hook.local_addr().unwrap().port();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        let mut n = 0;
        for stream in hook.incoming() {
            let Ok(mut s) = stream else { break };
            let mut buf = vec![0u8; 1 << 16];
            let mut got = 0;
            // read until the body (Content-Length) is complete
            while let Ok(k) = s.read(&mut buf[got..]) {
                if k == 0 {
                    break;
                }
                got += k;
                let text = String::from_utf8_lossy(&buf[..got]).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if got >= i + 4 + len {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&buf[..got]).to_string();
            let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
            n += 1;
            let (status, answer) = answer(n);
            let refused = answer.contains("\"errcode\"") && !answer.contains("\"errcode\":0");
            if status.starts_with("200") && !refused {
                seen.lock().unwrap().push(body);
            }
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                )
                .as_bytes(),
            );
        }
    });
    (port, bodies)
}

// ------------------------------------------------------------------ receivers for delivery

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

pub fn require(binary: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(binary);
        if p.exists() {
            return p;
        }
    }
    panic!("{binary} is needed for this test: run `scripts/test` (it installs the Debian package {package}) or `apt-get install {package}`");
}

pub fn wait_port(port: u16, what: &str) {
    let started = Instant::now();
    // a minute: influxd on a loaded 2-core runner has once taken more than 20 s
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "{what} did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a child politely (SIGTERM) and waits for it.
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A receiver process on a loopback port that a test can stop and start again (same
/// port, same data), killed when dropped.
pub struct Service {
    pub port: u16,
    bin: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    proc: Option<Child>,
}

impl Service {
    fn start(bin: PathBuf, args: Vec<String>, port: u16, log: PathBuf) -> Service {
        let mut s = Service { port, bin, args, log, proc: None };
        s.proc = Some(s.spawn());
        s
    }

    fn spawn(&self) -> Child {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(&self.bin)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.bin.display()));
        wait_port(self.port, &self.bin.display().to_string());
        child
    }

    /// SIGTERM, and wait: the receiver shuts down as it would on a real host.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.proc.take() {
            terminate(&mut c);
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.proc = Some(self.spawn());
    }

    /// SIGKILL: the host lost power.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.proc.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again after [`Service::kill`] or [`Service::stop`].
    pub fn start_again(&mut self) {
        if self.proc.is_none() {
            self.proc = Some(self.spawn());
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.proc.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A Mosquitto broker on a free port, with persistence so that a durable subscriber's
/// session survives a restart. `extra` is added to its configuration.
pub fn mosquitto(dir: &Path, extra: &str) -> Service {
    let bin = require("mosquitto", "mosquitto");
    let port = free_port();
    let data = dir.join("mosquitto");
    std::fs::create_dir_all(&data).unwrap();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\n{extra}\npersistence true\npersistence_location {}/\nlog_dest stderr\nuser root\n", data.display()),
    )
    .unwrap();
    Service::start(bin, vec!["-c".into(), conf.display().to_string()], port, dir.join("mosquitto.log"))
}

/// A three-node NATS cluster on loopback (JetStream, MQTT on each node), as
/// `docs/group.md` describes it; each node's MQTT port is its `port`. The nodes need a
/// few seconds to elect their JetStream leader before the first MQTT connection.
pub fn nats_cluster(dir: &Path) -> Vec<Service> {
    let bin = require("nats-server", "nats-server");
    let ports: Vec<(u16, u16, u16)> = (0..3).map(|_| (free_port(), free_port(), free_port())).collect();
    let routes: Vec<String> = ports.iter().map(|(_, r, _)| format!("nats-route://127.0.0.1:{r}")).collect();
    let mut out = Vec::new();
    for (i, (client, route, mqtt)) in ports.iter().enumerate() {
        let js = dir.join(format!("js{}", i + 1));
        std::fs::create_dir_all(&js).unwrap();
        let conf = dir.join(format!("n{}.conf", i + 1));
        std::fs::write(
            &conf,
            format!(
                "server_name: n{}\nlisten: 127.0.0.1:{client}\njetstream {{ store_dir: \"{}\" }}\ncluster {{ name: c1, listen: 127.0.0.1:{route}, routes: [{}] }}\nmqtt {{ listen: 127.0.0.1:{mqtt} }}\n",
                i + 1,
                js.display(),
                routes.join(", ")
            ),
        )
        .unwrap();
        let log = dir.join(format!("n{}.log", i + 1));
        out.push(Service::start(bin.clone(), vec!["-c".into(), conf.display().to_string()], *mqtt, log));
    }
    out
}

/// InfluxDB 1.x on free ports, with `database` created.
pub fn influx1(dir: &Path, database: &str) -> Service {
    let bin = require("influxd", "influxdb");
    let port = free_port();
    let rpc = free_port();
    let conf = dir.join("influxdb.conf");
    std::fs::write(
        &conf,
        format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\ndir = \"{0}/meta\"\n[data]\ndir = \"{0}/data\"\nwal-dir = \"{0}/wal\"\n[http]\nbind-address = \"127.0.0.1:{port}\"\nlog-enabled = false\n",
            dir.join("influxdb").display()
        ),
    )
    .unwrap();
    let service =
        Service::start(bin, vec!["-config".into(), conf.display().to_string()], port, dir.join("influxdb.log"));
    let body = format!("q=CREATE+DATABASE+{database}");
    let req = format!(
        "POST /query HTTP/1.0\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut r = String::new();
    std::io::Read::read_to_string(&mut s, &mut r).unwrap();
    assert!(r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"), "CREATE DATABASE failed: {r}");
    service
}

/// VictoriaMetrics, which accepts InfluxDB's 2.x write API.
pub struct Victoria {
    pub port: u16,
    pub proc: Proc,
}

pub fn victoria(dir: &Path) -> Victoria {
    let bin = require("victoria-metrics", "victoria-metrics");
    let port = free_port();
    let log = std::fs::File::create(dir.join("vm.log")).unwrap();
    let child = Command::new(bin)
        .arg(format!("-storageDataPath={}", dir.join("vm").display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .args(["-retentionPeriod=100y", "-search.latencyOffset=0s", "-dedup.minScrapeInterval=1ms"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start victoria-metrics");
    wait_port(port, "victoria-metrics");
    Victoria { port, proc: Proc(child) }
}

/// Runs every bus of `cfg` for `how_long`; returns the readings and the stats.
pub async fn run_for(
    cfg: &pumphouse::config::Config,
    how_long: Duration,
) -> (Vec<pumphouse::model::Reading>, pumphouse::modbus::poller::Stats) {
    let cancel = tokio_util::sync::CancellationToken::new();
    let tracker = tokio_util::task::TaskTracker::new();
    let (mut rx, stats) = pumphouse::gateway::start_pollers(cfg, &tracker, &cancel);
    tracker.close();
    let mut out = Vec::new();
    let deadline = tokio::time::sleep(how_long);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            Some(batch) = rx.recv() => out.extend(batch),
        }
    }
    cancel.cancel();
    drop(rx);
    tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await.expect("pollers stop within 5 s");
    (out, stats)
}

//! An RS-485 line under the gateway: how much of the line's time does a poll cycle use,
//! how many requests does it send against the planner's minimum, and how long is the
//! line silent between the requests of a cycle against the configured gap?
//!
//! The line is made of two socat pseudo-terminal pairs with a relay between them that
//! passes every byte on at the line's speed (ten bit times per character, 8N1) and
//! timestamps each frame: the gateway on one side, a pymodbus RTU fleet (a device we did
//! not write) on the other. A pseudo-terminal alone moves bytes instantly whatever its
//! baud setting; the relay makes the line as slow as a real one.
//!
//! `cargo bench --bench serial_line` (needs socat and a Python with pymodbus: the one
//! `scripts/test` creates in `.venv`, or `PUMPHOUSE_TEST_PYTHON`). `BENCH_SECONDS` (20)
//! per run; `BENCH_DEVICES` (8) SDM120 meters polled every second. Results also go to
//! `target/bench/serial_line.json`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pumphouse::config::{load_str, Mode};

#[path = "../tests/common/mod.rs"]
mod common;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A frame as it crossed the relay: when its first byte arrived, when its last byte left
/// at line speed, and its length.
#[derive(Debug, Clone, Copy)]
struct Frame {
    start: Instant,
    end: Instant,
    bytes: usize,
}

/// Copies bytes from `from` to `to` at `baud` (`bits` bit times per character: 10 for
/// 8N1, 11 for 8E1), recording each burst (bytes arriving less than 1.5 characters
/// apart) as one frame.
fn relay(mut from: std::fs::File, mut to: std::fs::File, baud: u32, bits: u32, frames: Arc<Mutex<Vec<Frame>>>) {
    let char_time = Duration::from_secs_f64(f64::from(bits) / f64::from(baud));
    let mut buf = [0u8; 512];
    let mut current: Option<Frame> = None;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let now = Instant::now();
        let frame = match current {
            // a continuation of the frame being sent
            Some(f) if now <= f.end + char_time.mul_f64(1.5) => Frame { bytes: f.bytes + n, ..f },
            Some(f) => {
                frames.lock().unwrap_or_else(|e| e.into_inner()).push(f);
                Frame { start: now, end: now, bytes: n }
            }
            None => Frame { start: now, end: now, bytes: n },
        };
        // the bytes leave one character time apart, after what is still on the line
        let leave = frame.end.max(now) + char_time * n as u32;
        std::thread::sleep(leave.saturating_duration_since(Instant::now()));
        if to.write_all(&buf[..n]).is_err() {
            return;
        }
        current = Some(Frame { end: leave, ..frame });
    }
}

/// Two socat null-modem cables with the paced relay between them: the gateway opens
/// `gw`, the device side `dev`; every frame each way is recorded.
struct PacedLine {
    gw: std::path::PathBuf,
    dev: std::path::PathBuf,
    requests: Arc<Mutex<Vec<Frame>>>,
    responses: Arc<Mutex<Vec<Frame>>>,
    _pairs: (common::SerialPair, common::SerialPair),
    _dir: tempfile::TempDir,
}

impl PacedLine {
    fn new() -> PacedLine {
        let dir = tempfile::tempdir().expect("tempdir");
        let (gw_dir, dev_dir) = (dir.path().join("gw"), dir.path().join("dev"));
        std::fs::create_dir_all(&gw_dir).expect("dir");
        std::fs::create_dir_all(&dev_dir).expect("dir");
        let (gw_pair, dev_pair) = (common::serial_pair(&gw_dir), common::serial_pair(&dev_dir));
        PacedLine {
            gw: gw_pair.a.clone(),
            dev: dev_pair.b.clone(),
            requests: Arc::new(Mutex::new(Vec::new())),
            responses: Arc::new(Mutex::new(Vec::new())),
            _pairs: (gw_pair, dev_pair),
            _dir: dir,
        }
    }

    /// Starts relaying at `baud` with `bits` bit times per character, once the device
    /// side is served.
    fn relay(&self, baud: u32, bits: u32) {
        let open = |p: &Path| std::fs::OpenOptions::new().read(true).write(true).open(p).expect("open pty");
        let (a, b) = (open(&self._pairs.0.b), open(&self._pairs.1.a));
        let (a2, b2) = (a.try_clone().expect("clone"), b.try_clone().expect("clone"));
        let (rq, rs) = (self.requests.clone(), self.responses.clone());
        std::thread::spawn(move || relay(a, b2, baud, bits, rq));
        std::thread::spawn(move || relay(b, a2, baud, bits, rs));
    }

    /// The frames each way since the last call, which clears them.
    fn take(&self) -> (Vec<Frame>, Vec<Frame>) {
        let take = |m: &Mutex<Vec<Frame>>| std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner()));
        (take(&self.requests), take(&self.responses))
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Run {
    baud: u32,
    requests_per_cycle: f64,
    planner_minimum: usize,
    line_busy: f64,
    estimated_busy: f64,
    silence_median_ms: f64,
    silence_min_ms: f64,
    gap_ms: f64,
    cycles: u64,
    late_cycles: u64,
}

fn run(baud: u32, devices: u8, seconds: u64) -> Run {
    // the tests' null-modem cables: one for the gateway, one for the fleet
    let paced = PacedLine::new();
    let (gw_side, dev_side) = (paced.gw.clone(), paced.dev.clone());
    let spec = serde_json::json!({
        "transport": "rtu",
        "tty": dev_side.to_string_lossy(),
        "devices": (1..=devices).map(|u| serde_json::json!({
            "id": u, "input": [{"address": 0, "type": "registers", "values": vec![0; 400]}]
        })).collect::<Vec<_>>(),
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/modbus_device.py");
    let mut child = Command::new(common::python())
        .arg(&script)
        .arg(spec.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python with pymodbus (run scripts/test once, or set PUMPHOUSE_TEST_PYTHON)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("READY");
    assert!(line.starts_with("READY"), "pymodbus did not start: {line}");
    let _device = common::Proc(child);
    paced.relay(baud, 10);
    let gap = Duration::from_millis(5);
    let mut cfg = format!(
        "[site]\nname = \"bench\"\n[polling]\ninterval = \"1s\"\nretries = 0\n[[buses]]\nname = \"rs485\"\ntransport = \"rtu\"\ndevice = \"{}\"\nbaud = {baud}\ntimeout = \"500ms\"\ngap = \"{}ms\"\n",
        gw_side.display(),
        gap.as_millis()
    );
    for u in 1..=devices {
        cfg.push_str(&format!(
            "[[devices]]\nname = \"m{u}\"\nbus = \"rs485\"\nunit = {u}\nprofile = \"eastron-sdm120\"\n"
        ));
    }
    let (cfg, _) = load_str(&cfg, Mode::Check).unwrap_or_else(|e| panic!("{e}"));
    let plan: Vec<_> = cfg.devices.iter().flat_map(|d| d.plan()).collect();
    let planner_minimum = plan.len() / usize::from(devices);
    let bus = &cfg.buses[0];
    let (b, bits) = bus.transport.line().expect("a serial line");
    let estimated: Duration = plan.iter().map(|r| r.line_time(b, bits, Duration::ZERO)).sum();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (stats, window) = rt.block_on(async {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (mut rx, stats) = pumphouse::gateway::start_pollers(&cfg, &tracker, &cancel);
        tracker.close();
        // a few seconds to settle, then the measured window
        let settle = tokio::time::Instant::now() + Duration::from_secs(3);
        while tokio::time::timeout_at(settle, rx.recv()).await.is_ok_and(|b| b.is_some()) {}
        let before: Vec<(u64, u64)> = stats
            .values()
            .map(|s| {
                (
                    s.cycles.load(std::sync::atomic::Ordering::Relaxed),
                    s.requests.load(std::sync::atomic::Ordering::Relaxed),
                )
            })
            .collect();
        paced.take();
        let t0 = Instant::now();
        let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
        while tokio::time::timeout_at(end, rx.recv()).await.is_ok_and(|b| b.is_some()) {}
        let window = t0.elapsed();
        cancel.cancel();
        drop(rx);
        let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
        (stats, (window, before))
    });
    let (window, before) = window;
    let (mut cycles, mut sent, mut late) = (0u64, 0u64, 0u64);
    for (s, (c0, r0)) in stats.values().zip(before) {
        cycles += s.cycles.load(std::sync::atomic::Ordering::Relaxed) - c0;
        sent += s.requests.load(std::sync::atomic::Ordering::Relaxed) - r0;
        late += s.slow_cycles.load(std::sync::atomic::Ordering::Relaxed);
    }
    let (rq, rs) = paced.take();
    let char_s = 10.0 / f64::from(baud);
    let busy: f64 = rq.iter().chain(rs.iter()).map(|f| f.bytes as f64 * char_s).sum();
    // silence on the line before each request that follows an answer within 100 ms (the
    // requests of one cycle, back to back)
    let mut silences: Vec<f64> = Vec::new();
    for r in &rq {
        let last_answer = rs.iter().filter(|a| a.end <= r.start).map(|a| a.end).max();
        if let Some(e) = last_answer {
            let s = (r.start - e).as_secs_f64() * 1000.0;
            if s < 100.0 {
                silences.push(s);
            }
        }
    }
    let min = silences.iter().copied().fold(f64::INFINITY, f64::min);
    Run {
        baud,
        requests_per_cycle: sent as f64 / cycles.max(1) as f64,
        planner_minimum,
        line_busy: busy / window.as_secs_f64(),
        // every device once a second: the plan's line time per second
        estimated_busy: estimated.as_secs_f64(),
        silence_median_ms: median(&mut silences),
        silence_min_ms: min,
        gap_ms: gap.as_secs_f64() * 1000.0,
        cycles,
        late_cycles: late,
    }
}

/// What the DL/T 645 line measured.
struct MeterRun {
    meters: usize,
    requests_per_cycle: f64,
    plan_requests: usize,
    /// Wall time per request on a saturated line: bytes, the meter's turnaround, the gap
    /// and the gateway's own time.
    per_request_ms: f64,
    /// What `check` plans per request (bytes at line speed and the gap).
    planned_per_request_ms: f64,
    line_busy: f64,
}

/// DL/T 645-2007 single-phase meters (`pumphouse simulate-meters`, the dormitory line's
/// four) at 2400 baud 8E1 behind the paced relay, polled every second so that the line
/// never rests: what a request really takes.
fn run_meters(seconds: u64) -> MeterRun {
    let baud = 2400;
    let paced = PacedLine::new();
    let (gw_side, dev_side) = (paced.gw.clone(), paced.dev.clone());
    let names = ["dorm-e-1", "dorm-e-2", "dorm-e-3", "dorm-e-4"];
    let mut sim = Command::new(env!("CARGO_BIN_EXE_pumphouse"));
    sim.arg("simulate-meters").arg("--serial").arg(&dev_side);
    for n in names {
        sim.args(["--only", n]);
    }
    let _sim = common::Proc(sim.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("simulate-meters"));
    std::thread::sleep(Duration::from_millis(500));
    paced.relay(baud, 11);
    let mut cfg = format!(
        "[site]\nname = \"bench\"\n[polling]\ninterval = \"1s\"\nretries = 0\n[[buses]]\nname = \"dorm\"\ntransport = \"rtu\"\ndevice = \"{}\"\nbaud = {baud}\nparity = \"even\"\ntimeout = \"1s\"\ngap = \"5ms\"\n",
        gw_side.display()
    );
    for (k, n) in names.iter().enumerate() {
        cfg.push_str(&format!(
            "[[devices]]\nname = \"{n}\"\nbus = \"dorm\"\naddress = \"{}\"\nprofile = \"dlt645-single-phase\"\n",
            240_101 + k
        ));
    }
    let (cfg, _) = load_str(&cfg, Mode::Check).unwrap_or_else(|e| panic!("{e}"));
    let exchanges = cfg.devices[0].profile.exchanges();
    let planned: Duration = exchanges.iter().map(|e| e.line_time(baud, 11, Duration::from_millis(5))).sum();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cycles, sent, window) = rt.block_on(async {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (mut rx, stats) = pumphouse::gateway::start_pollers(&cfg, &tracker, &cancel);
        tracker.close();
        let settle = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::timeout_at(settle, rx.recv()).await.is_ok_and(|b| b.is_some()) {}
        let count =
            |f: fn(&pumphouse::modbus::poller::DeviceStats) -> u64| -> u64 { stats.values().map(|s| f(s)).sum() };
        let (c0, r0) = (
            count(|s| s.cycles.load(std::sync::atomic::Ordering::Relaxed)),
            count(|s| s.requests.load(std::sync::atomic::Ordering::Relaxed)),
        );
        paced.take();
        let t0 = Instant::now();
        let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
        while tokio::time::timeout_at(end, rx.recv()).await.is_ok_and(|b| b.is_some()) {}
        let window = t0.elapsed();
        let c = count(|s| s.cycles.load(std::sync::atomic::Ordering::Relaxed)) - c0;
        let r = count(|s| s.requests.load(std::sync::atomic::Ordering::Relaxed)) - r0;
        cancel.cancel();
        drop(rx);
        let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
        (c, r, window)
    });
    let (rq, rs) = paced.take();
    let char_s = 11.0 / f64::from(baud);
    let busy: f64 = rq.iter().chain(rs.iter()).map(|f| f.bytes as f64 * char_s).sum();
    MeterRun {
        meters: names.len(),
        requests_per_cycle: sent as f64 / cycles.max(1) as f64,
        plan_requests: exchanges.len(),
        per_request_ms: window.as_secs_f64() * 1000.0 / sent.max(1) as f64,
        planned_per_request_ms: planned.as_secs_f64() * 1000.0 / exchanges.len().max(1) as f64,
        line_busy: busy / window.as_secs_f64(),
    }
}

fn main() {
    let seconds = env_or("BENCH_SECONDS", 20);
    let devices = env_or("BENCH_DEVICES", 8).clamp(1, 32) as u8;
    let mut rows = Vec::new();
    for baud in [9600, 19200] {
        rows.push(run(baud, devices, seconds));
    }
    println!("{devices} SDM120 meters on one RTU line, polled every 1 s, gap 5 ms, {seconds} s per run");
    println!("| baud | requests per device cycle | planner minimum | line busy with bytes | `check`'s estimate (bytes and 3.5-character silences) | silence before a request in a cycle, median | minimum | configured gap | cycles | late cycles |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut json = Vec::new();
    for r in &rows {
        println!(
            "| {} | {:.2} | {} | {:.1} % | {:.1} % | {:.1} ms | {:.1} ms | {:.0} ms | {} | {} |",
            r.baud,
            r.requests_per_cycle,
            r.planner_minimum,
            r.line_busy * 100.0,
            r.estimated_busy * 100.0,
            r.silence_median_ms,
            r.silence_min_ms,
            r.gap_ms,
            r.cycles,
            r.late_cycles
        );
        json.push(format!(
            "{{\"baud\":{},\"requests_per_cycle\":{:.3},\"planner_minimum\":{},\"line_busy\":{:.4},\"estimated_busy\":{:.4},\"silence_median_ms\":{:.2},\"silence_min_ms\":{:.2},\"gap_ms\":{},\"cycles\":{},\"late_cycles\":{}}}",
            r.baud, r.requests_per_cycle, r.planner_minimum, r.line_busy, r.estimated_busy, r.silence_median_ms, r.silence_min_ms, r.gap_ms, r.cycles, r.late_cycles
        ));
    }
    let m = run_meters(seconds);
    let cycle_32 = 32.0 * m.requests_per_cycle * m.per_request_ms / 1000.0;
    println!();
    println!("{} DL/T 645-2007 single-phase meters at 2400 baud 8E1, polled every 1 s (the line never rests), gap 5 ms, {seconds} s", m.meters);
    println!("| requests per meter cycle | identifiers in the profile | time per request, measured | `check`'s plan per request | line busy with bytes | 32 meters, one cycle (measured per request) | line load for 32 meters at 15 min |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {:.2} | {} | {:.0} ms | {:.0} ms | {:.1} % | {:.1} s | {:.1} % |",
        m.requests_per_cycle,
        m.plan_requests,
        m.per_request_ms,
        m.planned_per_request_ms,
        m.line_busy * 100.0,
        cycle_32,
        cycle_32 / 900.0 * 100.0
    );
    json.push(format!(
        "{{\"dlt645_meters\":{},\"requests_per_cycle\":{:.3},\"plan_requests\":{},\"per_request_ms\":{:.1},\"planned_per_request_ms\":{:.1},\"line_busy\":{:.4},\"cycle_32_s\":{:.2}}}",
        m.meters, m.requests_per_cycle, m.plan_requests, m.per_request_ms, m.planned_per_request_ms, m.line_busy, cycle_32
    ));
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("serial_line.json"), format!("[{}]\n", json.join(",")));
}

//! Benchmark: poll a simulated fleet of devices over Modbus TCP on loopback for a fixed
//! time, and report readings per CPU-second of the gateway, requests per cycle against
//! the planner's lower bound, and peak RSS.
//!
//! The fleet is served by `pumphouse simulate --fleet` in its own process, so the CPU
//! time measured here is the gateway's alone.
//!
//! `cargo bench --bench poll_fleet` (env: BENCH_DEVICES=200, BENCH_REGISTERS=40,
//! BENCH_SECONDS=20, BENCH_INTERVAL=1s, BENCH_CONCURRENCY=4). Results are printed as a
//! Markdown row and written to target/bench/poll_fleet.json.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pumphouse::config::{self, Mode};
use pumphouse::gateway;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the command name (which is in parentheses)
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let hz: f64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    ticks / hz
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()))
        .unwrap_or(0)
}

struct Run {
    label: String,
    readings: u64,
    cpu: f64,
    wall: f64,
    requests_per_cycle: f64,
    lower_bound: f64,
    errors: u64,
}

async fn run(
    addr: &str,
    devices: u16,
    registers: u16,
    max_registers: u16,
    seconds: u64,
    interval: &str,
    concurrency: u16,
) -> Run {
    let points: Vec<String> = (0..registers / 2)
        .map(|k| {
            format!(
                "{{ name = \"v{k}\", table = \"holding\", address = {}, type = \"f32\", quantity = \"status\" }}",
                k * 2
            )
        })
        .collect();
    let mut text = format!(
        "[site]\nname = \"bench\"\n[[buses]]\nname = \"lan\"\ntransport = \"tcp\"\naddress = \"{addr}\"\nconcurrency = {concurrency}\ntimeout = \"2s\"\n\
         [[profiles]]\nname = \"bench\"\npoints = [{}]\n",
        points.join(", ")
    );
    for u in 1..=devices {
        text.push_str(&format!(
            "[[devices]]\nname = \"d{u}\"\nbus = \"lan\"\nunit = {u}\nprofile = \"bench\"\ninterval = \"{interval}\"\nmax_registers = {max_registers}\n"
        ));
    }
    let (cfg, _) = config::load_str(&text, Mode::Run).unwrap_or_else(|e| panic!("{e}"));
    // The planner's lower bound: every read carries at most `max_registers` registers.
    let point_registers = u32::from(registers / 2 * 2);
    let lower_bound = f64::from(point_registers.div_ceil(u32::from(max_registers)));
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let (mut rx, stats) = gateway::start_pollers(&cfg, &tracker, &cancel);
    tracker.close();
    let deadline = tokio::time::sleep(Duration::from_secs(seconds));
    tokio::pin!(deadline);
    let mut readings = 0u64;
    let mut errors = 0u64;
    loop {
        tokio::select! {
            () = &mut deadline => break,
            Some(batch) = rx.recv() => {
                readings += batch.len() as u64;
                errors += batch.iter().filter(|r| !r.quality.is_good()).count() as u64;
            }
        }
    }
    cancel.cancel();
    drop(rx);
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let (req, cyc): (u64, u64) = stats
        .values()
        .map(|s| (s.requests.load(Ordering::Relaxed), s.cycles.load(Ordering::Relaxed)))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    Run {
        label: format!("{devices} devices × {registers} registers, cap {max_registers}, every {interval}, {concurrency} connections"),
        readings,
        cpu,
        wall,
        requests_per_cycle: req as f64 / cyc.max(1) as f64,
        lower_bound,
        errors,
    }
}

fn main() {
    let devices: u16 = env_or("BENCH_DEVICES", 200u16).min(247);
    let registers: u16 = env_or("BENCH_REGISTERS", 40u16);
    let seconds: u64 = env_or("BENCH_SECONDS", 20u64);
    let interval: String = env_or("BENCH_INTERVAL", "1s".to_string());
    let concurrency: u16 = env_or("BENCH_CONCURRENCY", 4u16);
    let mut sim = Command::new(env!("CARGO_BIN_EXE_pumphouse"))
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--fleet",
            &devices.to_string(),
            "--fleet-registers",
            &registers.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the fleet simulator");
    let mut line = String::new();
    BufReader::new(sim.stdout.take().expect("stdout")).read_line(&mut line).expect("simulator address");
    let addr = line.trim().trim_start_matches("simulator listening on ").to_string();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let runs = vec![
        rt.block_on(run(&addr, devices, registers, 125, seconds, &interval, concurrency)),
        rt.block_on(run(&addr, devices, registers, 16, seconds, &interval, concurrency)),
        // Saturation: every device due every 10 ms, so the bus never idles.
        rt.block_on(run(&addr, devices, registers, 125, seconds, "10ms", concurrency)),
    ];
    let _ = sim.kill();
    let _ = sim.wait();
    let rss = peak_rss_kib();
    println!("| run | readings | readings/s | gateway CPU s | readings per CPU-second | requests per cycle | planner lower bound | bad readings |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut json = Vec::new();
    for r in &runs {
        let per_cpu = r.readings as f64 / r.cpu.max(1e-9);
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0} | {} |",
            r.label,
            r.readings,
            r.readings as f64 / r.wall,
            r.cpu,
            per_cpu,
            r.requests_per_cycle,
            r.lower_bound,
            r.errors
        );
        json.push(format!(
            "{{\"run\":\"{}\",\"readings\":{},\"wall_s\":{:.2},\"cpu_s\":{:.3},\"readings_per_cpu_s\":{:.0},\"requests_per_cycle\":{:.3},\"planner_lower_bound\":{},\"bad_readings\":{}}}",
            r.label, r.readings, r.wall, r.cpu, per_cpu, r.requests_per_cycle, r.lower_bound, r.errors
        ));
    }
    println!("\npeak RSS of the gateway process: {:.1} MiB", rss as f64 / 1024.0);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let body = format!("{{\"runs\":[{}],\"peak_rss_kib\":{rss}}}\n", json.join(","));
    let _ = std::fs::write(dir.join("poll_fleet.json"), body);
}

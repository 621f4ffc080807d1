//! `pumphouse simulate` and `pumphouse demo`: the simulated pump house alone, and with
//! the gateway polling it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::probe::{format_value, reading_json};
use crate::config::{self, Mode};
use crate::gateway::{shutdown_signal, Gateway, SHUTDOWN_DEADLINE};
use crate::model::{Quantity, Reading};
use crate::sim::{self, model::PumpHouse, scenario, Clock, World};

/// Options shared by `simulate` and `demo`.
#[derive(Debug, Clone)]
pub struct SimArgs {
    pub speed: f64,
    pub start: Option<DateTime<Utc>>,
    pub scenarios: Vec<String>,
    pub scenario_file: Option<PathBuf>,
    pub timezone: Tz,
    pub site: String,
}

fn build_campus(args: &SimArgs, start: DateTime<Utc>) -> anyhow::Result<PumpHouse> {
    let mut scenarios = Vec::new();
    for s in &args.scenarios {
        scenarios.push(scenario::parse(s, start, args.timezone).map_err(anyhow::Error::msg)?);
    }
    if let Some(f) = &args.scenario_file {
        scenarios.extend(scenario::load_file(f, start, args.timezone).map_err(anyhow::Error::msg)?);
    }
    for s in &scenarios {
        tracing::info!(scenario = %s, "scenario armed");
    }
    let profiles = sim::profiles().map_err(anyhow::Error::msg)?;
    PumpHouse::campus(&profiles, args.timezone, scenarios).map_err(anyhow::Error::msg)
}

/// `pumphouse simulate`: serves the campus (or a fleet) until stopped.
pub async fn simulate(
    listen: &str,
    args: &SimArgs,
    fleet: Option<(u8, u16)>,
    print_config: Option<&str>,
) -> anyhow::Result<()> {
    let start = args.start.unwrap_or_else(Utc::now);
    let world = match fleet {
        Some((n, regs)) => World::fleet(n, regs),
        None => World::Campus(build_campus(args, start)?),
    };
    if let (Some(interval), World::Campus(c)) = (print_config, &world) {
        print!("{}", sim::gateway_config(c, &args.site, args.timezone, listen, interval));
        return Ok(());
    }
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // Scripts wait for this line on stdout.
    println!("simulator listening on {addr}");
    let _ = std::io::stdout().flush();
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.cancel();
    });
    sim::serve(listener, Arc::new(Mutex::new(world)), Clock::new(start, args.speed), cancel).await?;
    Ok(())
}

/// A one-line summary of a device poll for the demo's live view.
pub fn summary_line(readings: &[Reading], tz: Tz) -> Option<String> {
    let first = readings.first()?;
    let shown = |r: &Reading| match r.quantity {
        Quantity::WaterFlow
        | Quantity::WaterVolume
        | Quantity::Pressure
        | Quantity::ValvePosition
        | Quantity::EnergyImport => true,
        Quantity::ActivePower => matches!(&*r.point, "power" | "power_total"),
        Quantity::ValveOpen | Quantity::ValveClosed => r.value == Some(1.0),
        _ => false,
    };
    let mut parts: Vec<String> = readings
        .iter()
        .filter(|r| r.quality.is_good() && shown(r))
        .map(|r| format!("{} {} {}", r.point, format_value(r.value), r.unit).trim_end().to_string())
        .collect();
    let bad: Vec<&Reading> = readings.iter().filter(|r| !r.quality.is_good()).collect();
    if !bad.is_empty() {
        parts.push(format!("{} point(s) {}", bad.len(), bad[0].quality));
    }
    let local = first.ts.with_timezone(&tz);
    Some(format!("{}  {:<8} {:<20} {}", local.format("%H:%M:%S"), first.zone, first.device, parts.join(" · ")))
}

/// Where the demo keeps its store unless told otherwise.
pub fn default_demo_store() -> PathBuf {
    std::env::temp_dir().join("pumphouse-demo").join("store.db")
}

/// `pumphouse demo`: the simulator and the gateway in one process — the embedded default.
/// Readings are committed to a local store and shown as they are committed; the HTTP
/// endpoint runs on `http` when that port is free.
pub async fn demo(
    args: &SimArgs,
    interval: &str,
    duration: Option<Duration>,
    json: bool,
    store: &std::path::Path,
    http: &str,
) -> anyhow::Result<()> {
    let start = args.start.unwrap_or_else(Utc::now);
    let campus = build_campus(args, start)?;
    let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot open a loopback port for the simulator")?;
    let addr = listener.local_addr()?;
    let mut text = sim::gateway_config(&campus, &args.site, args.timezone, &addr.to_string(), interval);
    let _ = write!(text, "\n[store]\npath = {:?}\n\n[http]\nlisten = {:?}\n", store.display().to_string(), http);
    let (mut cfg, _) = config::load_str(&text, Mode::Run).map_err(|e| anyhow::anyhow!("demo configuration: {e}"))?;
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let sim_cancel = cancel.child_token();
    let clock = Clock::new(start, args.speed);
    tracker.spawn(async move {
        if let Err(e) = sim::serve(listener, Arc::new(Mutex::new(World::Campus(campus))), clock, sim_cancel).await {
            tracing::error!(error = %e, "simulator stopped");
        }
    });
    tracker.close();
    let (tap_tx, mut rx) = mpsc::channel(4096);
    let gw = match Gateway::start(&cfg, Some(tap_tx.clone())).await {
        Ok(g) => g,
        Err(e) if cfg.http.is_some() => {
            tracing::warn!(error = %format!("{e:#}"), "running the demo without its HTTP endpoint");
            cfg.http = None;
            Gateway::start(&cfg, Some(tap_tx)).await?
        }
        Err(e) => return Err(e),
    };
    if !json {
        println!(
            "Pumphouse demo: simulated pump house on {addr} ({} devices, site {}, {}), polled every {interval}{}.",
            cfg.devices.len(),
            cfg.site.name,
            cfg.site.timezone.name(),
            if args.speed != 1.0 { format!(", simulated time ×{}", args.speed) } else { String::new() }
        );
        println!(
            "Readings are committed to {}{}. Ctrl-C to stop.",
            cfg.store.path.display(),
            gw.http_addr
                .map(|a| format!("; status on http://{a}/api/status, metrics on http://{a}/metrics"))
                .unwrap_or_default()
        );
    }
    let deadline = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut stdout = std::io::stdout();
    loop {
        tokio::select! {
            () = &mut deadline => break,
            () = &mut signal => break,
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                let text = if json {
                    batch.iter().map(|r| reading_json(r) + "\n").collect::<String>()
                } else {
                    summary_line(&batch, cfg.site.timezone).map(|l| l + "\n").unwrap_or_default()
                };
                if stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).is_err() {
                    break; // stdout closed (e.g. piped into head)
                }
            }
        }
    }
    let stats = gw.stats.clone();
    let last = gw.store.last_seq().unwrap_or(0);
    gw.shutdown().await;
    cancel.cancel();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, tracker.wait()).await.is_err() {
        tracing::warn!("the simulator did not stop within {:?}", SHUTDOWN_DEADLINE);
    }
    let total: u64 = stats.values().map(|s| s.readings.load(std::sync::atomic::Ordering::Relaxed)).sum();
    if !json {
        eprintln!("stopped after {total} readings; the store holds readings up to #{last}");
    }
    Ok(())
}

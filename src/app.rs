//! The commands: what `pumphouse check | probe | profiles | simulate | demo` do, with the
//! wiring and shutdown of the tasks they start. `main.rs` only parses arguments.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{self, diag::ConfigErrors, Config, Mode};
use crate::modbus::poller;
use crate::modbus::profile::{self, Profile};
use crate::model::{Quantity, Reading};
use crate::sim::{self, model::PumpHouse, scenario, Clock, World};

/// How long tasks get to finish after a stop is asked for.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// Loads a configuration, printing its warnings to stderr.
pub fn load_config(path: &std::path::Path, mode: Mode) -> Result<Config, ConfigErrors> {
    let (cfg, diags) = config::load(path, mode)?;
    for w in diags.warnings() {
        eprintln!("{w}");
    }
    Ok(cfg)
}

/// `pumphouse profiles`: one line per profile.
pub fn profiles_list(cfg: Option<&Config>) -> anyhow::Result<String> {
    let all: Vec<Arc<Profile>> = match cfg {
        Some(c) => c.profiles.values().cloned().collect(),
        None => {
            let mut d = config::diag::Diagnostics::default();
            profile::builtin_profiles(&mut d).into_iter().map(Arc::new).collect()
        }
    };
    let mut out = String::new();
    for p in all {
        let kind = if p.source.is_some() { "built-in" } else { "config" };
        let _ = writeln!(out, "{:<18} {:<8} {:>3} points  {}", p.name, kind, p.points.len(), p.description);
    }
    Ok(out)
}

/// `pumphouse profiles show NAME`: the profile's TOML for a built-in one, a table of its
/// points for one defined in the configuration.
pub fn profiles_show(cfg: Option<&Config>, name: &str) -> anyhow::Result<String> {
    if cfg.is_none() {
        if let Some((_, src)) = profile::BUILTIN.iter().find(|(n, _)| *n == name) {
            return Ok((*src).to_string());
        }
    }
    let found = cfg.and_then(|c| c.profiles.get(name).cloned());
    let Some(p) = found else {
        let names: Vec<&str> = profile::BUILTIN.iter().map(|(n, _)| *n).collect();
        bail!("no profile `{name}`; built-in profiles: {}", names.join(", "));
    };
    if let Some(src) = p.source {
        return Ok(src.to_string());
    }
    let mut out = format!("# {} — {}\n", p.name, p.description);
    for pt in &p.points {
        let _ = writeln!(
            out,
            "{:<24} {:<8} {:>5} {:<8} {:<4} scale {:<8} offset {:<6} {:<6} {}",
            pt.name,
            pt.table.as_str(),
            pt.address,
            pt.data_type.name(),
            pt.order.as_str(),
            pt.scale,
            pt.offset,
            pt.unit,
            pt.quantity
        );
    }
    Ok(out)
}

/// `pumphouse check`: the resolved plan per bus and device, with line time on serial buses.
pub fn plan_report(cfg: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "site {} ({})", cfg.site.name, cfg.site.timezone.name());
    for bus in &cfg.buses {
        let devices: Vec<&config::Device> = cfg.devices.iter().filter(|d| d.bus == bus.name).collect();
        let _ = writeln!(
            out,
            "\nbus {}: {}, timeout {}, {} device(s), {}",
            bus.name,
            bus.transport.describe(),
            humantime::format_duration(bus.timeout),
            devices.len(),
            if bus.transport.is_half_duplex() {
                format!("one request at a time, gap {}", humantime::format_duration(bus.gap))
            } else {
                format!("up to {} requests in flight", bus.concurrency)
            }
        );
        let mut utilisation = 0.0;
        for d in devices {
            let plan = d.plan();
            let registers: u32 = plan.iter().map(|r| u32::from(r.count)).sum();
            let _ = writeln!(
                out,
                "  device {} (unit {}, profile {}, zone {}, every {}): {} point(s) in {} request(s) per cycle",
                d.name,
                d.unit,
                d.profile.name,
                d.zone,
                humantime::format_duration(d.interval),
                d.profile.points.len(),
                plan.len()
            );
            let mut line_time = Duration::ZERO;
            for r in &plan {
                let names: Vec<&str> = r.points.iter().map(|&i| &*d.profile.points[i].name).collect();
                let mut timing = String::new();
                if let Some((baud, bits)) = bus.transport.line() {
                    let t = r.line_time(baud, bits, bus.gap);
                    line_time += t;
                    timing = format!(" ~{:.1} ms", t.as_secs_f64() * 1000.0);
                }
                let _ = writeln!(
                    out,
                    "    fc{:02} {:<8} {:>5}..{:<5} ({:>3} {}){timing}  {}",
                    r.table.function_code(),
                    r.table.as_str(),
                    r.start,
                    u32::from(r.start) + u32::from(r.count) - 1,
                    r.count,
                    if r.table.is_bits() { "bits" } else { "regs" },
                    names.join(", ")
                );
            }
            if bus.transport.line().is_some() {
                let share = line_time.as_secs_f64() / d.interval.as_secs_f64();
                utilisation += share;
                let _ = writeln!(out, "    line time per cycle ~{:.1} ms ({:.1} % of the interval; device turnaround not included), {registers} registers", line_time.as_secs_f64() * 1000.0, share * 100.0);
            }
        }
        if bus.transport.line().is_some() {
            let _ = writeln!(
                out,
                "  estimated line load: {:.1} %{}",
                utilisation * 100.0,
                if utilisation > 0.8 {
                    " — too busy: lengthen intervals, raise the baud rate or split the line"
                } else {
                    ""
                }
            );
        } else if bus.transport.kind() == "rtu-over-tcp" {
            let _ = writeln!(out, "  (set `baud` on this bus to estimate line time)");
        }
    }
    out
}

/// One reading as a JSON line: device, point, quantity, value, unit, quality, ts (and
/// zone, site).
pub fn reading_json(r: &Reading) -> String {
    serde_json::json!({
        "device": &*r.device,
        "point": &*r.point,
        "quantity": r.quantity.as_str(),
        "value": r.value,
        "unit": &*r.unit,
        "quality": r.quality.code(),
        "ts": r.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "zone": &*r.zone,
        "site": &*r.site,
    })
    .to_string()
}

fn format_value(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) if v.abs() >= 1e6 || v == v.trunc() => format!("{v}"),
        Some(v) => format!("{v:.4}").trim_end_matches('0').trim_end_matches('.').to_string(),
    }
}

/// `pumphouse probe`: polls one device once.
pub async fn probe(cfg: &Config, device: &str, json: bool) -> anyhow::Result<bool> {
    let Some(d) = cfg.device(device) else {
        let names: Vec<&str> = cfg.devices.iter().map(|d| &*d.name).collect();
        bail!("no device `{device}` in {}; devices: {}", cfg.source, names.join(", "));
    };
    let Some(bus) = cfg.bus(&d.bus) else { bail!("device `{device}` names bus `{}`, which is not configured", d.bus) };
    let outcome = poller::poll_once(bus, d, cfg.site.name.clone()).await;
    let mut out = String::new();
    if json {
        for r in &outcome.readings {
            out.push_str(&reading_json(r));
            out.push('\n');
        }
    } else {
        let _ = writeln!(
            out,
            "{} (unit {} on {}, profile {}) in {:.0} ms",
            d.name,
            d.unit,
            bus.transport.describe(),
            d.profile.name,
            outcome.took.as_secs_f64() * 1000.0
        );
        for r in &outcome.readings {
            let _ = writeln!(
                out,
                "  {:<24} {:>16} {:<6} {:<14} {}",
                r.point,
                format_value(r.value),
                r.unit,
                r.quantity,
                r.quality
            );
        }
    }
    print!("{out}");
    Ok(outcome.answered)
}

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

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Starts one poller task per bus of `cfg`; readings arrive on the returned channel.
pub fn start_pollers(
    cfg: &Config,
    tracker: &TaskTracker,
    cancel: &CancellationToken,
) -> (mpsc::Receiver<Vec<Reading>>, poller::Stats) {
    let (tx, rx) = mpsc::channel(1024);
    let stats = poller::new_stats(&cfg.devices);
    for bus in &cfg.buses {
        let devices: Vec<config::Device> = cfg.devices.iter().filter(|d| d.bus == bus.name).cloned().collect();
        if devices.is_empty() {
            continue;
        }
        tracker.spawn(poller::run_bus(
            bus.clone(),
            devices,
            cfg.site.name.clone(),
            stats.clone(),
            tx.clone(),
            cancel.child_token(),
        ));
    }
    (rx, stats)
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

/// Commits readings from the pollers to the store in batches and tells the consumers.
/// Ends when every poller has ended and the channel is drained: nothing read is dropped
/// on shutdown. Committed batches are also offered to `tap` (a display), which may miss
/// some when it is slow; the store has them all.
async fn commit_readings(
    store: Arc<crate::store::Store>,
    mut rx: mpsc::Receiver<Vec<Reading>>,
    notify: tokio::sync::watch::Sender<i64>,
    last_commit_ms: Arc<std::sync::atomic::AtomicI64>,
    tap: Option<mpsc::Sender<Vec<Reading>>>,
) {
    while let Some(first) = rx.recv().await {
        let mut batches = vec![first];
        let mut count = batches[0].len();
        while count < 5000 {
            match rx.try_recv() {
                Ok(more) => {
                    count += more.len();
                    batches.push(more);
                }
                Err(_) => break,
            }
        }
        let all: Vec<Reading> = batches.iter().flatten().cloned().collect();
        let mut attempt = 0u32;
        loop {
            match store.append(&all) {
                Ok(last) => {
                    let _ = notify.send(last);
                    last_commit_ms.store(Utc::now().timestamp_millis(), std::sync::atomic::Ordering::Relaxed);
                    break;
                }
                Err(e) => {
                    // Keep the batch and hold the pollers (back-pressure) until the disk
                    // takes it again: losing readings here is what the store prevents.
                    if attempt == 0 {
                        tracing::error!(error = %e, readings = all.len(), "cannot commit readings; retrying");
                    }
                    attempt += 1;
                    tokio::time::sleep(crate::sinks::retry_delay(attempt)).await;
                }
            }
        }
        if let Some(t) = &tap {
            for b in batches {
                let _ = t.try_send(b);
            }
        }
    }
}

/// A running gateway: pollers → store → sinks, pruning, and the HTTP endpoint.
pub struct Gateway {
    pub store: Arc<crate::store::Store>,
    pub stats: poller::Stats,
    /// Where the HTTP endpoint listens, when it is on.
    pub http_addr: Option<std::net::SocketAddr>,
    poll_cancel: CancellationToken,
    sink_cancel: CancellationToken,
    http_cancel: CancellationToken,
    pollers: TaskTracker,
    sinks: TaskTracker,
    writer: tokio::task::JoinHandle<()>,
    pruner: tokio::task::JoinHandle<()>,
    publisher: Option<tokio::task::JoinHandle<()>>,
    alerter: Option<tokio::task::JoinHandle<()>>,
    http_task: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Opens the store and starts every task. `tap` receives committed readings (for a
    /// live display).
    pub async fn start(cfg: &Config, tap: Option<mpsc::Sender<Vec<Reading>>>) -> anyhow::Result<Gateway> {
        use crate::sinks::{influx, mqtt, SinkHealth};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = Arc::new(crate::store::Store::open(&cfg.store.path, cfg.store.limits)?);
        let last = store.last_seq()?;
        tracing::info!(store = %cfg.store.path.display(), last_seq = last, "store open");
        let (notify_tx, notify_rx) = tokio::sync::watch::channel(last);
        let last_commit = Arc::new(std::sync::atomic::AtomicI64::new(0));

        // HTTP first: a port conflict is a start-up error, before anything runs.
        let listener = match &cfg.http {
            Some(h) => Some(
                TcpListener::bind(h.listen)
                    .await
                    .with_context(|| format!("cannot listen on {} ([http] listen)", h.listen))?,
            ),
            None => None,
        };

        let poll_cancel = CancellationToken::new();
        let sink_cancel = CancellationToken::new();
        let pollers = TaskTracker::new();
        let (rx, stats) = start_pollers(cfg, &pollers, &poll_cancel);
        pollers.close();
        let writer = tokio::spawn(commit_readings(store.clone(), rx, notify_tx, last_commit.clone(), tap));

        let sinks = TaskTracker::new();
        let mut healths: Vec<Arc<SinkHealth>> = Vec::new();
        if let Some(m) = cfg.mqtt.clone() {
            let h = Arc::new(SinkHealth::new("mqtt", mqtt::CONSUMER));
            healths.push(h.clone());
            sinks.spawn(mqtt::run(
                m,
                cfg.site.name.clone(),
                store.clone(),
                notify_rx.clone(),
                h,
                sink_cancel.clone(),
                SHUTDOWN_DEADLINE,
            ));
        }
        for i in &cfg.influxdb {
            let consumer = influx::consumer_name(i);
            let h = Arc::new(SinkHealth::new(&consumer, &consumer));
            healths.push(h.clone());
            sinks.spawn(influx::run(
                i.clone(),
                store.clone(),
                notify_rx.clone(),
                h,
                sink_cancel.clone(),
                SHUTDOWN_DEADLINE,
            ));
        }
        sinks.close();
        if healths.is_empty() {
            tracing::info!("no [mqtt] or [[influxdb]] configured: readings are kept in the local store only");
        }

        // Pruning: age and size limits, counting what is dropped.
        let consumers: Vec<String> = healths.iter().map(|h| h.consumer.clone()).collect();
        let prune_store = store.clone();
        let prune_cfg = cfg.clone();
        let prune_cancel = sink_cancel.clone();
        let pruner = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    () = prune_cancel.cancelled() => break,
                    _ = tick.tick() => {
                        // Closed months are frozen first: the ledger must never depend
                        // on readings the pruning is about to drop.
                        if let Err(e) = freeze_closed_months(&prune_cfg, &prune_store, Utc::now()) {
                            tracing::error!(error = %format!("{e:#}"), "freezing closed ledger months failed; not pruning");
                            continue;
                        }
                        let names: Vec<&str> = consumers.iter().map(String::as_str).collect();
                        if let Err(e) = prune_store.prune(Utc::now(), &names) {
                            tracing::error!(error = %e, "pruning the store failed");
                        }
                    }
                }
            }
        });

        // The monthly ledger to InfluxDB (measurement `ledger`) every hour: this month,
        // and last month during the first three days (late readings still land there).
        let publisher = (!cfg.topology.zones.is_empty() && !cfg.influxdb.is_empty()).then(|| {
            let cfg = Arc::new(cfg.clone());
            let store = store.clone();
            let cancel = sink_cancel.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(3600));
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        _ = tick.tick() => publish_ledgers(cfg.clone(), store.clone()).await,
                    }
                }
            })
        });

        // Alerts: evaluate the recent days, then deliver every unconfirmed change.
        let alerter = (!cfg.topology.zones.is_empty() || !cfg.devices.is_empty()).then(|| {
            let cfg = Arc::new(cfg.clone());
            let store = store.clone();
            let cancel = sink_cancel.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(cfg.alerts.evaluate_every);
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        _ = tick.tick() => alert_pass(cfg.clone(), store.clone()).await,
                    }
                }
            })
        });

        let http_cancel = CancellationToken::new();
        let mut http_task = None;
        let mut http_addr = None;
        if let (Some(h), Some(listener)) = (&cfg.http, listener) {
            let max_interval = cfg.devices.iter().map(|d| d.interval).max().unwrap_or(Duration::from_secs(10));
            let state = Arc::new(crate::http::AppState {
                store: store.clone(),
                config: Arc::new(cfg.clone()),
                sinks: healths,
                stats: stats.clone(),
                devices: cfg
                    .devices
                    .iter()
                    .map(|d| (d.name.to_string(), d.bus.to_string(), d.zone.to_string()))
                    .collect(),
                last_commit_ms: last_commit,
                polling_stall: (max_interval * 3).max(Duration::from_secs(60)),
                sink_stall: h.stall_after,
                started_ms: Utc::now().timestamp_millis(),
            });
            let addr = listener.local_addr()?;
            http_addr = Some(addr);
            tracing::info!(listen = %addr, "http endpoint: /healthz /metrics /api/status");
            let c = http_cancel.clone();
            http_task = Some(tokio::spawn(async move {
                let _ = axum::serve(listener, crate::http::router(state))
                    .with_graceful_shutdown(async move { c.cancelled().await })
                    .await;
            }));
        }
        Ok(Gateway {
            store,
            stats,
            http_addr,
            poll_cancel,
            sink_cancel,
            http_cancel,
            pollers,
            sinks,
            writer,
            pruner,
            publisher,
            alerter,
            http_task,
        })
    }

    /// Stops from the edges in: polling first, then the writer commits what was read,
    /// then the sinks finish their in-flight work within the deadline.
    pub async fn shutdown(self) {
        self.poll_cancel.cancel();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_DEADLINE;
        let _ = tokio::time::timeout_at(deadline, self.pollers.wait()).await;
        if tokio::time::timeout_at(deadline, self.writer).await.is_err() {
            tracing::warn!("the store writer did not finish in time");
        }
        self.sink_cancel.cancel();
        if tokio::time::timeout(SHUTDOWN_DEADLINE + Duration::from_secs(1), self.sinks.wait()).await.is_err() {
            tracing::warn!("sinks did not finish in time; undelivered readings stay in the store for the next start");
        }
        let _ = self.pruner.await;
        if let Some(p) = self.publisher {
            let _ = tokio::time::timeout(Duration::from_secs(2), p).await;
        }
        if let Some(a) = self.alerter {
            let _ = tokio::time::timeout(Duration::from_secs(2), a).await;
        }
        self.http_cancel.cancel();
        if let Some(t) = self.http_task {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        tracing::info!(last_seq = self.store.last_seq().unwrap_or(0), "stopped");
    }
}

/// `pumphouse run`: the gateway until SIGTERM or Ctrl-C.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let gw = Gateway::start(&cfg, None).await?;
    shutdown_signal().await;
    tracing::info!("stopping: pollers first, then the store writer, then the sinks");
    gw.shutdown().await;
    Ok(())
}

/// Opens the store of an existing installation (for `ledger` and `import`).
fn open_store(cfg: &Config, must_exist: bool) -> anyhow::Result<crate::store::Store> {
    if must_exist && !cfg.store.path.exists() {
        bail!("no store at {}: run the gateway, or `pumphouse import` readings, first", cfg.store.path.display());
    }
    Ok(crate::store::Store::open(&cfg.store.path, cfg.store.limits)?)
}

/// The readings of one meter from the store, as ledger samples.
pub fn store_samples(
    store: &crate::store::Store,
) -> impl Fn(&str, &str, DateTime<Utc>, DateTime<Utc>) -> Vec<crate::ledger::intervals::Sample> + '_ {
    move |device, point, from, to| {
        store
            .series_readings(device, point, from.timestamp_millis(), to.timestamp_millis())
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, device, point, "cannot read the store");
                Vec::new()
            })
            .into_iter()
            .filter_map(|(ms, value, quality)| {
                use chrono::TimeZone;
                Some(crate::ledger::intervals::Sample {
                    ts: Utc.timestamp_millis_opt(ms).single()?,
                    value,
                    good: quality == "good",
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerFormat {
    Json,
    Csv,
    Xlsx,
}

/// `pumphouse ledger`: the monthly ledger from the store.
pub fn ledger(
    cfg: &Config,
    month: &str,
    format: LedgerFormat,
    lang: crate::ledger::export::Lang,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use crate::ledger::{export, month as m};
    let Some((year, mon)) = m::parse_month(month) else { bail!("`{month}` is not a month; write YYYY-MM") };
    if cfg.topology.zones.is_empty() {
        bail!(
            "{} defines no [[zones]]: the ledger needs the network map (see config/pumphouse.example.toml)",
            cfg.source
        );
    }
    let store = open_store(cfg, true)?;
    let Some(l) = month_ledger(cfg, &store, year, mon, m::Depth::Full)? else { bail!("cannot compute {month}") };
    let bytes = match format {
        LedgerFormat::Json => serde_json::to_vec_pretty(&l)?,
        LedgerFormat::Csv => export::to_csv(&l, lang).into_bytes(),
        LedgerFormat::Xlsx => {
            if out.is_none() {
                bail!("an .xlsx ledger needs -o PATH");
            }
            export::to_xlsx(&l, lang)?
        }
    };
    match out {
        Some(p) => std::fs::write(p, bytes).with_context(|| format!("cannot write {}", p.display()))?,
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}

/// What `import` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: usize,
    pub imported: usize,
    pub already_present: usize,
    /// (line number, reason)
    pub bad: Vec<(u64, String)>,
    /// Time range of the good rows.
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    /// Alerts raised or updated by replaying the rules over the imported range.
    pub alerts: usize,
}

/// `pumphouse import`: readings from a long CSV (`ts,device,point,value`, header
/// required, ISO 8601 timestamps with offset) through the same path as polled readings:
/// checked against the configured devices and points, given a quality by the point's
/// plausible range, committed to the store. Re-importing a file changes nothing.
pub fn import(cfg: &Config, path: &std::path::Path, progress: bool) -> anyhow::Result<ImportReport> {
    use crate::model::Quality;
    let store = open_store(cfg, false)?;
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).trim(csv::Trim::All).from_reader(file);
    let headers = rdr.headers().with_context(|| format!("{}: cannot read the header line", path.display()))?.clone();
    // Excel writes a byte-order mark before the first header.
    let col = |name: &str| headers.iter().position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name));
    let (Some(c_ts), Some(c_dev), Some(c_pt), Some(c_val)) = (col("ts"), col("device"), col("point"), col("value"))
    else {
        bail!(
            "{}: the header must name the columns ts, device, point, value (found: {})",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        );
    };
    let mut report = ImportReport::default();
    let mut batch: Vec<Reading> = Vec::new();
    let flush = |batch: &mut Vec<Reading>, report: &mut ImportReport| -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        store.append(batch)?;
        let added = store.last_added();
        report.imported += added;
        report.already_present += batch.len() - added;
        batch.clear();
        Ok(())
    };
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        report.rows += 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                report.bad.push((line, format!("unreadable row: {e}")));
                continue;
            }
        };
        let field = |c: usize| rec.get(c).unwrap_or("").to_string();
        let ts = match parse_iso8601(&field(c_ts)) {
            Some(t) => t,
            None => {
                report.bad.push((
                    line,
                    format!("`{}` is not an ISO 8601 time with offset (e.g. 2025-03-01T08:00:00+08:00)", field(c_ts)),
                ));
                continue;
            }
        };
        let dev_name = field(c_dev);
        let Some(device) = cfg.device(&dev_name) else {
            report.bad.push((line, format!("no device `{dev_name}` in the configuration")));
            continue;
        };
        let pt_name = field(c_pt);
        let Some(point) = device.profile.points.iter().find(|p| *p.name == *pt_name) else {
            report.bad.push((line, format!("device `{dev_name}` has no point `{pt_name}`")));
            continue;
        };
        let value = match field(c_val).parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => {
                report.bad.push((line, format!("`{}` is not a number", field(c_val))));
                continue;
            }
        };
        let out_of_range = point.min.is_some_and(|m| value < m) || point.max.is_some_and(|m| value > m);
        report.first = Some(report.first.map_or(ts, |f| f.min(ts)));
        report.last = Some(report.last.map_or(ts, |l| l.max(ts)));
        batch.push(Reading {
            ts,
            site: cfg.site.name.clone(),
            zone: device.zone.clone(),
            device: device.name.clone(),
            point: point.name.clone(),
            quantity: point.quantity,
            value: Some(value),
            unit: point.unit.clone(),
            quality: if out_of_range { Quality::OutOfRange } else { Quality::Good },
        });
        if batch.len() >= 5000 {
            flush(&mut batch, &mut report)?;
        }
        if progress && report.rows % 100_000 == 0 {
            eprintln!("{}: {} rows read, {} imported", path.display(), report.rows, report.imported);
        }
    }
    flush(&mut batch, &mut report)?;
    // Frozen months the import reaches into are recomputed while their readings are all
    // there, so that back-filled readings count.
    if let (Some(a), Some(b), Some(oldest)) = (report.first, report.last, store.oldest_ts()?) {
        for (y, m, from, _) in
            crate::ledger::month::months(cfg.site.timezone, a).take_while(|(_, _, from, _)| *from <= b)
        {
            if store.is_frozen(&format!("{y:04}-{m:02}"))? {
                if oldest <= from - chrono::TimeDelta::days(7) {
                    freeze(cfg, &store, y, m)?;
                } else {
                    eprintln!("ledger month {y:04}-{m:02} is frozen and its earlier readings are pruned: the imported readings do not change it");
                }
            }
        }
    }
    // Replay: the rules see imported history as they would have seen it live.
    if let (Some(a), Some(b)) = (report.first, report.last) {
        if report.imported > 0 {
            let changed = crate::alerts::evaluate::record(cfg, &store, a, b + chrono::TimeDelta::milliseconds(1))?;
            report.alerts = changed.len();
        }
    }
    Ok(report)
}

/// Every correction in the store.
pub fn load_corrections(store: &crate::store::Store) -> anyhow::Result<Vec<crate::ledger::corrections::Correction>> {
    use crate::ledger::corrections::Correction;
    use chrono::TimeZone;
    let mut out = Vec::new();
    for (id, at_ms, by, why, change) in store.corrections()? {
        let change =
            serde_json::from_str(&change).with_context(|| format!("correction #{id} in the store is unreadable"))?;
        let at = Utc.timestamp_millis_opt(at_ms).single().unwrap_or_default();
        out.push(Correction { id, at, by, why, change });
    }
    Ok(out)
}

/// `pumphouse correct …`: records one audited correction; returns its id.
pub fn correct(cfg: &Config, by: &str, why: &str, change: crate::ledger::corrections::Change) -> anyhow::Result<i64> {
    use crate::ledger::corrections::Change;
    if by.trim().is_empty() || why.trim().is_empty() {
        bail!("a correction needs --by (who) and --why (the reason): the ledger shows both");
    }
    match &change {
        Change::Reading { device, point, .. } | Change::Replacement { device, point, .. } => {
            let known = cfg.topology.meters.iter().any(|m| &m.device == device && &m.point == point);
            if !known {
                bail!("`{device}.{point}` is not a meter of the network map ([[zones]] inlets or [[meters]])");
            }
        }
        Change::Tariff { utility, .. } => {
            if crate::ledger::topology::Utility::parse(utility).is_none() {
                bail!("utility `{utility}`: use water or electricity");
            }
        }
    }
    let store = open_store(cfg, false)?;
    let id = store.add_correction(by, why, &serde_json::to_string(&change)?)?;
    refreeze_affected(cfg, &store)?;
    Ok(id)
}

/// Recomputes the frozen months a new correction touches, while their raw readings are
/// still there; a month whose readings are gone keeps its record, and says so.
fn refreeze_affected(cfg: &Config, store: &crate::store::Store) -> anyhow::Result<()> {
    let Some(c) = load_corrections(store)?.pop() else { return Ok(()) };
    let tz = cfg.site.timezone;
    let Some(oldest) = store.oldest_ts()? else { return Ok(()) };
    for (y, m, from, to) in crate::ledger::month::months(tz, oldest).take_while(|(_, _, from, _)| *from <= Utc::now()) {
        let key = format!("{y:04}-{m:02}");
        if store.is_frozen(&key)? && c.affects(from, to, to.with_timezone(&tz).date_naive()) {
            if oldest <= from - chrono::TimeDelta::days(7) {
                freeze(cfg, store, y, m)?;
                eprintln!("correction #{}: ledger month {key} recomputed", c.id);
            } else {
                eprintln!("correction #{}: ledger month {key} is frozen and its readings are pruned; its record stays as it was", c.id);
            }
        }
    }
    Ok(())
}

/// `pumphouse correct list`.
pub fn corrections_list(cfg: &Config) -> anyhow::Result<String> {
    let store = open_store(cfg, true)?;
    let mut out = String::new();
    for c in load_corrections(&store)? {
        let _ = writeln!(out, "#{} {} by {}: {} — {}", c.id, c.at.to_rfc3339(), c.by, c.describe(), c.why);
    }
    Ok(out)
}

/// Computes this month's ledger (and last month's in its first three days) and writes it
/// to every InfluxDB as the `ledger` measurement.
async fn publish_ledgers(cfg: Arc<Config>, store: Arc<crate::store::Store>) {
    use chrono::Datelike;
    let local = Utc::now().with_timezone(&cfg.site.timezone);
    let mut months = vec![(local.year(), local.month())];
    if local.day() <= 3 {
        months.push(if local.month() == 1 { (local.year() - 1, 12) } else { (local.year(), local.month() - 1) });
    }
    for (y, m) in months {
        let (c, s) = (cfg.clone(), store.clone());
        let lines = tokio::task::spawn_blocking(move || {
            month_ledger(&c, &s, y, m, crate::ledger::month::Depth::Month)
                .ok()
                .flatten()
                .map(|l| crate::ledger::export::influx_lines(&l))
        })
        .await;
        let Ok(Some(lines)) = lines else { continue };
        for i in &cfg.influxdb {
            if let Err(e) = crate::sinks::influx::write_once(i, &lines).await {
                tracing::warn!(sink = %crate::sinks::influx::consumer_name(i), month = %format!("{y}-{m:02}"), error = %e, "cannot write the ledger to InfluxDB; next try in an hour");
            }
        }
    }
}

/// Frozen records as the ledger reads them: (`YYYY-MM`, `device.point`) → the kept hours,
/// except for the month `except` (the one being frozen is computed from raw readings).
fn frozen_lookup<'a>(
    cfg: &'a Config,
    store: &'a crate::store::Store,
    except: Option<String>,
) -> impl Fn(&str, &str) -> Option<std::collections::BTreeMap<DateTime<Utc>, crate::ledger::intervals::Bucket>> + 'a {
    use crate::ledger::intervals::Bucket;
    use crate::ledger::month as m;
    use chrono::TimeZone;
    move |month_key, meter| {
        if except.as_deref() == Some(month_key) || !store.is_frozen(month_key).unwrap_or(false) {
            return None;
        }
        let (y, mo) = m::parse_month(month_key)?;
        let (from, to) = m::month_bounds(cfg.site.timezone, y, mo)?;
        let kept: std::collections::BTreeMap<DateTime<Utc>, Bucket> = store
            .rollups(meter, from.timestamp_millis(), to.timestamp_millis())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(ms, volume, estimated)| {
                Some((Utc.timestamp_millis_opt(ms).single()?, Bucket { volume, estimated }))
            })
            .collect();
        // A meter without a record in the frozen month (added or back-filled since) is
        // read from its raw readings.
        (!kept.is_empty()).then_some(kept)
    }
}

/// The last good reading of a meter before a time, as the ledger's gap anchor.
fn anchor_lookup(
    store: &crate::store::Store,
) -> impl Fn(&str, &str, DateTime<Utc>) -> Option<crate::ledger::intervals::Sample> + '_ {
    use chrono::TimeZone;
    move |device, point, before| {
        let (ms, v) = store.last_good_before(device, point, before.timestamp_millis()).ok().flatten()?;
        Some(crate::ledger::intervals::Sample {
            ts: Utc.timestamp_millis_opt(ms).single()?,
            value: Some(v),
            good: true,
        })
    }
}

/// The ledger of a month from the store: from its frozen record once the month is frozen,
/// from the raw readings before.
pub fn month_ledger(
    cfg: &Config,
    store: &crate::store::Store,
    year: i32,
    month: u32,
    depth: crate::ledger::month::Depth,
) -> anyhow::Result<Option<crate::ledger::month::Ledger>> {
    let corrections = load_corrections(store)?;
    let samples = store_samples(store);
    let frozen = frozen_lookup(cfg, store, None);
    let anchor = anchor_lookup(store);
    let source = crate::ledger::month::Source { samples: &samples, frozen: Some(&frozen), anchor: Some(&anchor) };
    Ok(crate::ledger::month::compute_from(cfg, year, month, &source, &corrections, depth))
}

/// Freezes `year-month` from the raw readings (and corrections): its hourly consumption
/// per meter is kept for good.
pub fn freeze(cfg: &Config, store: &crate::store::Store, year: i32, month: u32) -> anyhow::Result<()> {
    let Some((from, to)) = crate::ledger::month::month_bounds(cfg.site.timezone, year, month) else {
        bail!("no such month")
    };
    let key = format!("{year:04}-{month:02}");
    let corrections = load_corrections(store)?;
    let samples = store_samples(store);
    let frozen = frozen_lookup(cfg, store, Some(key.clone()));
    let anchor = anchor_lookup(store);
    let source = crate::ledger::month::Source { samples: &samples, frozen: Some(&frozen), anchor: Some(&anchor) };
    let Some(l) =
        crate::ledger::month::compute_from(cfg, year, month, &source, &corrections, crate::ledger::month::Depth::Bare)
    else {
        bail!("cannot compute the month")
    };
    let meters: Vec<(String, crate::ledger::month::HourlyRecord)> = l.hourly.into_iter().collect();
    store.freeze_month(&key, from.timestamp_millis(), to.timestamp_millis(), &meters)?;
    Ok(())
}

/// Freezes every month that ended more than seven days ago (late readings and the
/// bridging margin are in) and is not frozen yet, from the month of the oldest reading
/// on. Runs before pruning, so that no ledger depends on pruned readings.
pub fn freeze_closed_months(cfg: &Config, store: &crate::store::Store, now: DateTime<Utc>) -> anyhow::Result<usize> {
    if cfg.topology.zones.is_empty() {
        return Ok(0);
    }
    let (Some(oldest), Some(newest)) = (store.oldest_ts()?, store.newest_ts()?) else { return Ok(0) };
    let closed = crate::ledger::month::months(cfg.site.timezone, oldest)
        .take_while(|(_, _, from, to)| *to + chrono::TimeDelta::days(7) <= now && *from <= newest);
    let mut frozen = 0;
    for (y, m, _, _) in closed {
        if !store.is_frozen(&format!("{y:04}-{m:02}"))? {
            freeze(cfg, store, y, m)?;
            tracing::info!(month = %format!("{y:04}-{m:02}"), "ledger month frozen");
            frozen += 1;
        }
    }
    Ok(frozen)
}

/// ISO 8601 with an offset, as spreadsheets and older systems write it: RFC 3339
/// (`2025-03-01T08:00:00+08:00`, `…Z`, a space for the `T`), minutes without seconds,
/// and offsets without a colon (`+0800`).
pub fn parse_iso8601(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M%z"]
        .iter()
        .find_map(|f| DateTime::parse_from_str(s, f).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// `pumphouse alerts evaluate`.
pub fn alerts_evaluate(cfg: &Config, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> anyhow::Result<String> {
    let store = open_store(cfg, true)?;
    let (Some(oldest), Some(newest)) = (store.oldest_ts()?, store.newest_ts()?) else {
        return Ok("no readings\n".into());
    };
    let from = from.unwrap_or(oldest);
    let to = to.unwrap_or(newest + chrono::TimeDelta::milliseconds(1));
    let changed = crate::alerts::evaluate::record(cfg, &store, from, to)?;
    Ok(format!("{} alert(s) raised or updated between {} and {}\n", changed.len(), from.to_rfc3339(), to.to_rfc3339()))
}

fn alert_line(a: &crate::store::AlertRow, tz: Tz) -> String {
    use chrono::TimeZone;
    let t = |ms: i64| {
        Utc.timestamp_millis_opt(ms)
            .single()
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    let state = match (a.end_ms, &a.acked_by) {
        (Some(e), _) => format!("cleared {}", t(e)),
        (None, Some(by)) => format!("active, acknowledged by {by}"),
        (None, None) => "ACTIVE".into(),
    };
    format!(
        "#{:<4} {:<8} {:<16} {:<10} {} since {} ({state}): {}\n",
        a.id,
        a.severity,
        a.rule,
        a.zone,
        a.subject,
        t(a.start_ms),
        a.evidence
    )
}

/// `pumphouse alerts list`.
pub fn alerts_list(cfg: &Config, json: bool, active: bool) -> anyhow::Result<String> {
    let store = open_store(cfg, true)?;
    let rows = store.alerts(active)?;
    if json {
        use chrono::TimeZone;
        let mut out = String::new();
        for a in rows {
            let ts = |ms: Option<i64>| ms.and_then(|m| Utc.timestamp_millis_opt(m).single()).map(|t| t.to_rfc3339());
            let mut v = serde_json::to_value(&a)?;
            v["start"] = serde_json::json!(ts(Some(a.start_ms)));
            v["end"] = serde_json::json!(ts(a.end_ms));
            v["active"] = serde_json::json!(a.end_ms.is_none());
            out.push_str(&v.to_string());
            out.push('\n');
        }
        return Ok(out);
    }
    Ok(rows.iter().map(|a| alert_line(a, cfg.site.timezone)).collect())
}

/// `pumphouse alerts ack`.
pub fn alerts_ack(cfg: &Config, id: i64, by: &str) -> anyhow::Result<String> {
    if by.trim().is_empty() {
        bail!("--by must name who acknowledges");
    }
    let store = open_store(cfg, true)?;
    if !store.ack_alert(id, by)? {
        bail!("no alert #{id}");
    }
    Ok(format!("alert #{id} acknowledged by {by}\n"))
}

/// One pass of the alert task: the rules over the last three days, then delivery of every
/// change not yet confirmed by MQTT, the webhook and InfluxDB.
async fn alert_pass(cfg: Arc<Config>, store: Arc<crate::store::Store>) {
    use crate::alerts::{deliver, evaluate};
    let now = Utc::now();
    let (c, s) = (cfg.clone(), store.clone());
    let evaluated =
        tokio::task::spawn_blocking(move || evaluate::record(&c, &s, now - chrono::TimeDelta::days(3), now)).await;
    match evaluated {
        Ok(Ok(changed)) => {
            for a in &changed {
                tracing::warn!(alert = a.id, rule = %a.rule, zone = %a.zone, subject = %a.subject, state = deliver::state(a), evidence = %a.evidence, "alert");
            }
        }
        Ok(Err(e)) => tracing::error!(error = %e, "evaluating alerts failed"),
        Err(_) => {}
    }
    let site = cfg.site.name.to_string();
    if let Some(m) = &cfg.mqtt {
        deliver::mqtt(&store, &site, m).await;
    }
    if let Some(url) = &cfg.alerts.webhook_url {
        deliver::webhook(&store, &site, url, &cfg.alerts.webhook_format).await;
    }
    if !cfg.influxdb.is_empty() {
        deliver::influx(&store, &site, &cfg.influxdb).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_as_written_by_other_systems() {
        let want = "2025-03-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        for s in [
            "2025-03-01T08:00:00+08:00",
            "2025-03-01 08:00:00+08:00",
            "2025-03-01T00:00:00Z",
            "2025-03-01T08:00+08:00",
            "2025-03-01 08:00+0800",
            "2025-03-01T08:00:00.000+0800",
        ] {
            assert_eq!(parse_iso8601(s), Some(want), "{s}");
        }
        assert_eq!(parse_iso8601("2025-03-01 08:00:00"), None, "no offset: refused, not guessed");
        assert_eq!(parse_iso8601("01/03/2025 08:00"), None);
    }
}

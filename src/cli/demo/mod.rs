//! `pumphouse simulate` and `pumphouse demo`: the simulated pump house alone, and with
//! the gateway polling it.

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

use std::collections::HashMap;

use super::probe::reading_json;

pub mod history;
pub mod meter_line;
pub mod screen;
use crate::config::{self, Config, Mode};
use crate::gateway::{shutdown_signal, Gateway, SHUTDOWN_DEADLINE};
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
        scenarios.push(scenario::parse(s, start, args.timezone)?);
    }
    if let Some(f) = &args.scenario_file {
        scenarios.extend(scenario::load_file(f, start, args.timezone)?);
    }
    for s in &scenarios {
        tracing::info!(scenario = %s, "scenario armed");
    }
    let profiles = sim::profiles()?;
    Ok(PumpHouse::campus(&profiles, args.timezone, scenarios)?)
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
        None => World::Campus(Box::new(build_campus(args, start)?)),
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

/// The demo's live line: the plant and each zone's inflow and pressure, from the latest
/// readings, and the number of active alerts.
pub fn live_line(latest: &HashMap<(String, String), f64>, now: DateTime<Utc>, tz: Tz, alerts: usize) -> String {
    let v = |d: &str, p: &str| latest.get(&(d.to_string(), p.to_string())).copied();
    let flow = |d: &str| v(d, "flow_rate").map_or("—".to_string(), |f| format!("{f:.1}"));
    let mut parts = vec![format!(
        "plant {} m³/h {} MPa",
        flow("plant-outlet"),
        v("pressure-plant", "pressure").map_or("—".to_string(), |p| format!("{p:.3}"))
    )];
    for z in ["north", "south", "east"] {
        parts.push(format!(
            "{z} {} m³/h {} MPa",
            flow(&format!("zone-{z}-inlet")),
            v(&format!("pressure-{z}"), "pressure").map_or("—".to_string(), |p| format!("{p:.3}"))
        ));
    }
    format!("{}  {} · {} alert(s) active", now.with_timezone(&tz).format("%H:%M:%S"), parts.join(" · "), alerts)
}

/// Where the demo keeps its store unless told otherwise.
pub fn default_demo_store() -> PathBuf {
    std::env::temp_dir().join("pumphouse-demo").join("store.db")
}

/// What `pumphouse demo` was asked for.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub sim: SimArgs,
    pub interval: String,
    pub duration: Option<Duration>,
    pub json: bool,
    pub store: PathBuf,
    pub http: String,
    /// Months of history before this one (0: none; `None`: from January of last year,
    /// at least 13).
    pub history: Option<u32>,
    /// `http://host:port/DATABASE`: InfluxDB 1.x API, database created if missing.
    pub influxdb: Option<String>,
    pub mqtt: Option<String>,
    /// The HTTP token's file (writes over HTTP are off without one).
    pub token_file: Option<PathBuf>,
}

/// A demo store left by an earlier run is replaced (the history is generated anew); a
/// file at that path that is no Pumphouse store is left alone.
fn fresh_store(path: &std::path::Path) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let ours = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| {
            c.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'readings'", [], |r| r.get::<_, i64>(0))
        })
        .is_ok_and(|n| n == 1);
    if !ours {
        anyhow::bail!("{} exists and is not a Pumphouse store: give another --store", path.display());
    }
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
        }
    }
    Ok(())
}

/// Splits `http://host:port/DATABASE` and creates the database if it is missing.
async fn influx_target(url: &str) -> anyhow::Result<(String, String)> {
    let u = url.trim_end_matches('/');
    let (base, db) = match u.rsplit_once('/') {
        Some((b, d))
            if b.contains("://")
                && !b.ends_with('/')
                && !d.is_empty()
                && b.find("://").is_some_and(|i| i + 3 < b.len()) =>
        {
            (b.to_string(), d.to_string())
        }
        _ => anyhow::bail!("--influxdb {url}: write http://HOST:PORT/DATABASE (the InfluxDB 1.x API)"),
    };
    let q = format!("CREATE DATABASE \"{}\"", db.replace('"', ""));
    let rsp = reqwest::Client::new()
        .post(format!("{base}/query"))
        .form(&[("q", q.as_str())])
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("--influxdb: cannot reach {base}: {}", e.without_url()))?;
    if !rsp.status().is_success() {
        anyhow::bail!("--influxdb: {base} answered {} to CREATE DATABASE", rsp.status());
    }
    Ok((base, db))
}

/// Writes every month's ledger of the history to InfluxDB (the gateway publishes only the
/// current and last month), so that the money dashboards show a year at once.
async fn publish_history_ledgers(
    cfg: &config::Config,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let tz = cfg.site.timezone;
    let Some(first) = crate::model::Month::containing(from, tz) else { return Ok(0) };
    let Some(this) = crate::model::Month::containing(now, tz) else { return Ok(0) };
    let store = crate::store::Store::open(&cfg.store.path, cfg.store.limits)?;
    let mut n = 0;
    let months: Vec<crate::model::Month> = first.iter_from().take_while(|m| *m <= this).collect();
    let bar = super::progress_bar(months.len() as u64, "publishing a ledger per month");
    let mut mqtt = match &cfg.mqtt {
        Some(m) => Some(crate::sinks::mqtt::OneShot::connect(m, "ledger").await?),
        None => None,
    };
    for m in months {
        bar.inc(1);
        let l = crate::ledger::book::month_ledger(&cfg.ledger_spec(), &store, m, crate::ledger::month::Depth::Month)?;
        let lines = crate::ledger::export::influx_lines(&l);
        for i in &cfg.influxdb {
            crate::sinks::influx::write_once(i, &lines).await.map_err(anyhow::Error::msg)?;
        }
        if let (Some(conn), Some(mc)) = (mqtt.as_mut(), &cfg.mqtt) {
            // the monthly ledger's announcement, as the running gateway retains it
            let state =
                if m < this { crate::store::ExportState::Final } else { crate::store::ExportState::Preliminary };
            let (_, _, payload) = crate::gateway::monthly::headline(&l, state, cfg.ledger.language);
            let topic = format!("{}/{}/ledger/{m}", mc.prefix, cfg.site.name);
            if !conn.publish(&topic, payload.to_string(), true).await {
                anyhow::bail!("the MQTT broker did not confirm the ledger of {m}");
            }
        }
        n += 1;
    }
    if let Some(c) = mqtt {
        c.close().await;
    }
    bar.finish_and_clear();
    Ok(n)
}

/// `pumphouse demo`: the whole product on one machine. It generates the campus's last
/// months (scripted events included), freezes the closed months and runs the alert rules,
/// prints a first screen (where things run, today per zone, active alerts, last month's
/// gap), then polls the simulated pump house live.
pub async fn demo(o: &DemoOptions) -> anyhow::Result<()> {
    let args = &o.sim;
    let now = args.start.unwrap_or_else(Utc::now);
    let campus = build_campus(args, now)?;
    fresh_store(&o.store)?;
    let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot open a loopback port for the simulator")?;
    let addr = listener.local_addr()?;
    // the dormitory's RS-485 line of DL/T 645 and CJ/T 188 meters, behind a serial server
    let line_listener =
        TcpListener::bind("127.0.0.1:0").await.context("cannot open a loopback port for the meter line")?;
    let line_addr = line_listener.local_addr()?;
    let line = sim::meters::with_quiet_nights(&sim::meters::dormitory_line());
    let cfg = demo_config(o, &campus, addr, &line, line_addr).await?;
    let say = |line: &str| say(o, line);
    if let Some(h) = &cfg.http {
        say(&format!("Pumphouse demo — the page: http://{}/", h.listen));
    } else {
        say("Pumphouse demo (no page: --http off)");
    }
    say(&format!(
        "Its configuration: {} (for the commands: pumphouse alerts -c FILE list, …)",
        demo_config_path(o).display()
    ));
    let (campus, history_from) = generate_history(o, &cfg, campus, &line, now).await?;
    say(&format!(
        "Simulated pump house on {addr} ({} devices, site {}, {}), polled every {}{}; store {}{}",
        cfg.devices.len(),
        cfg.site.name,
        cfg.site.timezone.name(),
        o.interval,
        if args.speed != 1.0 { format!(", simulated time ×{}", args.speed) } else { String::new() },
        cfg.store.path.display(),
        cfg.influxdb.first().map(|i| format!("; InfluxDB {}", i.url)).unwrap_or_default()
    ));
    if history_from.is_some() {
        let store = crate::store::Store::open(&cfg.store.path, cfg.store.limits)?;
        let c2 = cfg.clone();
        let text = tokio::task::spawn_blocking(move || screen::summary(&c2, &store, now)).await??;
        for line in text.lines() {
            say(line);
        }
    }
    if let (Some(from), false) = (history_from, cfg.influxdb.is_empty() && cfg.mqtt.is_none()) {
        let months = publish_history_ledgers(&cfg, from, now).await?;
        let to = match (cfg.influxdb.is_empty(), cfg.mqtt.is_none()) {
            (false, false) => "InfluxDB (measurement `ledger`) and MQTT (retained, `…/ledger/YYYY-MM`)",
            (false, true) => "InfluxDB (measurement `ledger`)",
            _ => "MQTT (retained, `…/ledger/YYYY-MM`)",
        };
        say(&format!("Ledgers of {months} month(s) written to {to}"));
    }
    say("Ctrl-C to stop.");

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let clock = Clock::new(now, args.speed);
    // the meter line goes on from where its history ends
    let live = sim::meters::advanced(&line, history_from.unwrap_or(now), now);
    spawn_simulators(&tracker, &cancel, clock, (listener, campus), (line_listener, live));
    tracker.close();
    let (tap_tx, mut rx) = mpsc::channel(4096);
    let gw = Gateway::start(&cfg, Some(tap_tx)).await?;
    let deadline = async {
        match o.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut stdout = std::io::stdout();
    let mut latest: HashMap<(String, String), f64> = HashMap::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut shown_at: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            () = &mut deadline => break,
            () = &mut signal => break,
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                let text = if o.json {
                    batch.iter().map(|r| reading_json(r) + "\n").collect::<String>()
                } else {
                    for r in batch.iter().filter(|r| r.quality.is_good()) {
                        if let Some(v) = r.value {
                            latest.insert((r.device.to_string(), r.point.to_string()), v);
                        }
                        seen.insert(r.device.to_string());
                    }
                    // a line once every device has answered, then every ten seconds
                    let due = seen.len() >= cfg.devices.len() && shown_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
                    if due {
                        shown_at = Some(std::time::Instant::now());
                        let alerts = gw.store.alerts(true).map(|a| a.len()).unwrap_or(0);
                        live_line(&latest, Utc::now(), cfg.site.timezone, alerts) + "\n"
                    } else {
                        String::new()
                    }
                };
                if stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).is_err() {
                    break; // stdout closed (e.g. piped into head)
                }
            }
        }
    }
    let stats = gw.stats.clone();
    gw.shutdown().await;
    cancel.cancel();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, tracker.wait()).await.is_err() {
        tracing::warn!("the simulator did not stop within {:?}", SHUTDOWN_DEADLINE);
    }
    let total: u64 = stats.values().map(|s| s.readings.load(std::sync::atomic::Ordering::Relaxed)).sum();
    if !o.json {
        eprintln!("stopped after {total} live readings; the store is {}", cfg.store.path.display());
    }
    Ok(())
}

/// The simulated pump house and the dormitory's meter line, each on its listener.
fn spawn_simulators(
    tracker: &TaskTracker,
    cancel: &CancellationToken,
    clock: Clock,
    (listener, campus): (TcpListener, PumpHouse),
    (line_listener, line): (TcpListener, Vec<sim::meters::Meter>),
) {
    let sim_cancel = cancel.child_token();
    tracker.spawn(async move {
        if let Err(e) =
            sim::serve(listener, Arc::new(Mutex::new(World::Campus(Box::new(campus)))), clock, sim_cancel).await
        {
            tracing::error!(error = %e, "simulator stopped");
        }
    });
    tracker.spawn(meter_line::serve_tcp(line_listener, line, clock, cancel.child_token()));
}

/// The demo's configuration: the simulator's, with its store, HTTP, InfluxDB, MQTT and
/// token; without the page when its port is taken.
async fn demo_config(
    o: &DemoOptions,
    campus: &PumpHouse,
    addr: std::net::SocketAddr,
    line: &[sim::meters::Meter],
    line_addr: std::net::SocketAddr,
) -> anyhow::Result<Config> {
    let args = &o.sim;
    let generated = sim::gateway_config(campus, &args.site, args.timezone, &addr.to_string(), &o.interval);
    // the simulator's configuration as a document, the demo's sections set as values (not
    // edited as text), written back as TOML
    let mut doc: toml::Table = generated.parse().context("the simulator's configuration")?;
    // the meter line's bus, devices and books, appended to the campus's
    let bus = format!("transport = \"rtu-over-tcp\"\naddress = \"{line_addr}\"\nbaud = 2400");
    let polled: toml::Table = sim::meters::gateway_config(line, &args.site, &bus, &o.interval)
        .parse()
        .context("the meter line's configuration")?;
    let books: toml::Table = sim::meters::books(line).parse().context("the meter line's books")?;
    for (key, more) in [("buses", &polled), ("devices", &polled), ("zones", &books), ("meters", &books)] {
        let Some(toml::Value::Array(extra)) = more.get(key) else { continue };
        match doc.entry(key).or_insert_with(|| toml::Value::Array(Vec::new())) {
            toml::Value::Array(a) => a.extend(extra.iter().cloned()),
            _ => anyhow::bail!("the simulator's `{key}` is not an array"),
        }
    }
    let table = |pairs: &[(&str, String)]| -> toml::Value {
        toml::Value::Table(pairs.iter().map(|(k, v)| (k.to_string(), toml::Value::from(v.as_str()))).collect())
    };
    // the store the simulator's configuration sizes, at its path, with a year of history
    // kept raw (dashboards read it), not only in frozen months
    let size = store_size(&doc, &o.interval)?;
    let store = doc.entry("store").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(store) = store.as_table_mut() else { anyhow::bail!("the simulator's [store] is not a table") };
    store.insert("path".into(), o.store.display().to_string().into());
    store.insert("max_age".into(), "800d".into());
    store.insert("max_size".into(), size.into());
    let mut http = vec![("listen", o.http.clone())];
    if let Some(f) = &o.token_file {
        http.push(("token_file", f.display().to_string()));
    }
    doc.insert("http".into(), table(&http));
    if let Some(url) = &o.influxdb {
        let (base, db) = influx_target(url).await?;
        let i = table(&[("name", "demo".into()), ("url", base), ("database", db)]);
        doc.insert("influxdb".into(), toml::Value::Array(vec![i]));
    }
    if let Some(url) = &o.mqtt {
        doc.insert("mqtt".into(), table(&[("url", url.clone())]));
    }
    let text = toml::to_string(&doc).context("the demo's configuration")?;
    let (mut cfg, _) = config::load_str(&text, Mode::Run).map_err(|e| anyhow::anyhow!("demo configuration: {e}"))?;
    // beside the store, for the commands (`topology`, `assets`, `alerts list`) to read
    let path = demo_config_path(o);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    let http_free = match &cfg.http {
        Some(h) => std::net::TcpListener::bind(h.listen).is_ok(),
        None => false,
    };
    if !http_free && cfg.http.is_some() {
        tracing::warn!(listen = %o.http, "the demo's HTTP port is taken: running without the page");
        cfg.http = None;
    }
    Ok(cfg)
}

/// Where the demo writes its configuration: beside its store, `pumphouse.toml` for the
/// default `store.db`, else the store's name with `.toml` (two demos side by side keep
/// their own).
fn demo_config_path(o: &DemoOptions) -> std::path::PathBuf {
    if o.store.file_name().is_some_and(|n| n == "store.db") {
        o.store.with_file_name("pumphouse.toml")
    } else {
        o.store.with_extension("toml")
    }
}

/// Room for 45 days of every device's readings at `interval` (the ledger reads 40), the
/// meter line's included, as the simulator sizes its own store.
fn store_size(doc: &toml::Table, interval: &str) -> anyhow::Result<String> {
    let profiles = sim::profiles()?;
    let Some(devices) = doc.get("devices").and_then(toml::Value::as_array) else {
        anyhow::bail!("the demo's configuration has no [[devices]]")
    };
    let mut points = 0;
    for d in devices {
        let name = d.get("profile").and_then(toml::Value::as_str).unwrap_or_default();
        let Some(p) = profiles.get(name) else { anyhow::bail!("the demo names no built-in profile `{name}`") };
        points += p.points.len();
    }
    Ok(sim::store_size(points, interval))
}

/// A line of the demo's own output: on stdout, or on stderr when stdout carries JSON.
fn say(o: &DemoOptions, line: &str) {
    if o.json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// The campus's history from `--history` months back (default: from January of last
/// year) to `now`, committed, frozen and evaluated; returns where it starts.
async fn generate_history(
    o: &DemoOptions,
    cfg: &Config,
    mut campus: PumpHouse,
    line: &[sim::meters::Meter],
    now: DateTime<Utc>,
) -> anyhow::Result<(PumpHouse, Option<DateTime<Utc>>)> {
    let args = &o.sim;
    let say = |line: &str| say(o, line);
    let mut history_from = None;
    let months = o.history.unwrap_or_else(|| {
        use chrono::Datelike;
        (now.with_timezone(&args.timezone).month0() + 12).max(13)
    });
    if months > 0 {
        let from = history::start(now, args.timezone, months).context("no such history start")?;
        campus.add_scenarios(history::script(now, args.timezone));
        let store = crate::store::Store::open(&cfg.store.path, cfg.store.limits)?;
        let bar = super::progress_bar(0, "generating the campus's history");
        let started = std::time::Instant::now();
        let (cfg2, bar2, line) = (cfg.clone(), bar.clone(), line.to_vec());
        let (done, campus_back) = tokio::task::spawn_blocking(move || {
            let r = history::generate(&cfg2, &store, &mut campus, &line, from, now, |d, total| {
                bar2.set_length(total);
                bar2.set_position(d);
            });
            (r, campus)
        })
        .await?;
        campus = campus_back;
        let done = done?;
        bar.finish_and_clear();
        say(&format!(
            "History: {} to now, hourly (every 5 min over the last 3 days) — {} readings, {} months frozen, {} alert(s) raised, in {:.0} s",
            from.with_timezone(&args.timezone).format("%Y-%m-%d"),
            done.readings,
            done.frozen,
            done.alerts,
            started.elapsed().as_secs_f64()
        ));
        history_from = Some(from);
    }
    Ok((campus, history_from))
}

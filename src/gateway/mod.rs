//! The running service: pollers → writer → store → sinks, the periodic jobs and the HTTP
//! endpoint, each a component with its own cancellation, started in that order and
//! stopped from the edges in (polling first, so that everything read is committed and
//! offered to the sinks before they stop).

pub mod feed;
pub mod jobs;
pub mod monthly;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{self, Config};
use crate::modbus::command::Commands;
use crate::modbus::poller;
use crate::model::Reading;
use crate::supervise::{self, Restarts};

/// How long tasks get to finish after a stop is asked for.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

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
    let (rx, stats, _) = spawn_pollers(cfg, tracker, cancel, &Arc::new(Restarts::default()));
    (rx, stats)
}

/// [`start_pollers`], each bus under a supervisor that restarts it (counted in `restarts`).
fn spawn_pollers(
    cfg: &Config,
    tracker: &TaskTracker,
    cancel: &CancellationToken,
    restarts: &Arc<Restarts>,
) -> (mpsc::Receiver<Vec<Reading>>, poller::Stats, Commands) {
    // bursts of about `bus::BURST_MAX` readings at most: at most 128 of them wait for
    // the writer, which takes them at once into its own bounded queue
    let (tx, rx) = mpsc::channel(128);
    let mut commands = Commands::default();
    let stats = poller::new_stats(&cfg.devices);
    for bus in &cfg.buses {
        let devices: Vec<config::Device> = cfg.devices.iter().filter(|d| d.bus == bus.name).cloned().collect();
        if devices.is_empty() {
            continue;
        }
        let inbox = commands.add_bus(devices.iter().map(|d| &d.name));
        let site = poller::Origin { name: cfg.site.name.clone(), tz: cfg.site.timezone };
        let (bus, stats, tx, cancel) = (bus.clone(), stats.clone(), tx.clone(), cancel.child_token());
        let name = format!("bus {}", bus.name);
        supervise::spawn(tracker, name, cancel.clone(), restarts.clone(), move || {
            poller::run_bus(
                bus.clone(),
                devices.clone(),
                site.clone(),
                stats.clone(),
                tx.clone(),
                inbox.clone(),
                cancel.clone(),
            )
        });
    }
    (rx, stats, commands)
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
    writer: std::thread::JoinHandle<()>,
    /// Cancelled when the writer ends before it was asked to.
    pub failed: CancellationToken,
    /// Prune, ledger publishing and alert passes.
    jobs: TaskTracker,
    http_task: TaskTracker,
}

impl Gateway {
    /// Opens the store and starts every task. `tap` receives committed readings (for a
    /// live display).
    pub async fn start(cfg: &Config, tap: Option<mpsc::Sender<Vec<Reading>>>) -> anyhow::Result<Gateway> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (store, replaced) = crate::store::Store::open_or_replace(&cfg.store.path, cfg.store.limits)?;
        let store = Arc::new(store);
        if let Some(aside) = replaced {
            raise_store_replaced(&store, &cfg.site.name, &aside)?;
        }
        let last = store.last_seq()?;
        tracing::info!(store = %cfg.store.path.display(), last_seq = last, "store open");
        let (notify_tx, notify_rx) = tokio::sync::watch::channel(last);
        let intake = Arc::new(crate::store::Intake::default());
        // stamps are judged against the newest committed: a clock gone back is seen
        let guard = crate::clock::Guard::new(crate::clock::build_time(), store.newest_ts()?);

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
        let restarts = Arc::new(Restarts::default());
        let pollers = TaskTracker::new();
        let (rx, stats, commands) = spawn_pollers(cfg, &pollers, &poll_cancel, &restarts);
        pollers.close();
        // The writer cannot be restarted (it owns the channel the pollers send to): if it
        // ends before the pollers, `failed` tells `run`, which exits non-zero so that the
        // service manager starts the gateway again.
        let failed = CancellationToken::new();
        let w = writer::Writer {
            store: store.clone(),
            notify: notify_tx,
            intake: intake.clone(),
            tap,
            capacity: cfg.store.memory_queue,
            clock: Arc::new(crate::clock::SystemClock::default()),
            guard,
        };
        let writer = writer::spawn(w, rx, failed.clone()).context("cannot start the store writer thread")?;

        let (sinks, healths) = spawn_sinks(cfg, &store, &notify_rx, &sink_cancel, &restarts);
        if healths.is_empty() {
            tracing::info!("no [mqtt] or [[influxdb]] configured: readings are kept in the local store only");
        }

        let consumers: Vec<String> = healths.iter().map(|h| h.consumer.clone()).collect();
        let (periodic, monthly_health, alert_health) = spawn_jobs(cfg, &store, consumers, &sink_cancel, &restarts);

        let http_cancel = CancellationToken::new();
        let http_task = TaskTracker::new();
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
                    .map(|d| crate::http::DeviceLabels {
                        device: d.name.to_string(),
                        bus: d.bus.to_string(),
                        zone: d.zone.to_string(),
                    })
                    .collect(),
                intake,
                polling_stall: (max_interval * 3).max(Duration::from_secs(60)),
                sink_stall: h.stall_after,
                started_ms: Utc::now().timestamp_millis(),
                token: h.token.clone(),
                alert_delivery: alert_health,
                jobs: vec![monthly_health],
                ledger_slot: tokio::sync::Semaphore::new(1),
                restarts: restarts.clone(),
                commands,
            });
            let addr = listener.local_addr()?;
            http_addr = Some(addr);
            tracing::info!(listen = %addr, "http endpoint: /healthz /metrics /api/status");
            // supervised like every other task: a panic in the server restarts it on the
            // same socket
            let listener = Arc::new(listener);
            let app = crate::http::router(state);
            let bounds = crate::http::serve::Bounds::for_this_process(h.max_connections);
            let c = http_cancel.clone();
            supervise::spawn(&http_task, "http".into(), http_cancel.clone(), restarts.clone(), move || {
                crate::http::serve::serve(listener.clone(), app.clone(), bounds, c.clone())
            });
            http_task.close();
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
            failed,
            jobs: periodic,
            http_task,
        })
    }

    /// Stops from the edges in: polling first, then the writer commits what was read,
    /// then the sinks finish their in-flight work within the deadline.
    pub async fn shutdown(self) {
        self.poll_cancel.cancel();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_DEADLINE;
        let _ = tokio::time::timeout_at(deadline, self.pollers.wait()).await;
        // The writer ends once every poller has dropped its sender and the channel is
        // drained; wait for it off the async workers.
        let writer = self.writer;
        let joined = tokio::time::timeout_at(deadline, tokio::task::spawn_blocking(move || writer.join())).await;
        if !matches!(joined, Ok(Ok(Ok(())))) {
            tracing::warn!("the store writer did not finish in time");
        }
        self.sink_cancel.cancel();
        if tokio::time::timeout(SHUTDOWN_DEADLINE + Duration::from_secs(1), self.sinks.wait()).await.is_err() {
            tracing::warn!("sinks did not finish in time; undelivered readings stay in the store for the next start");
        }
        if tokio::time::timeout(Duration::from_secs(2), self.jobs.wait()).await.is_err() {
            tracing::warn!("periodic jobs did not finish in time");
        }
        self.http_cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(6), self.http_task.wait()).await;
        tracing::info!(last_seq = self.store.last_seq().unwrap_or(0), "stopped");
    }
}

/// `pumphouse run`: the gateway until SIGTERM or Ctrl-C — or until the store writer
/// fails, when it stops what it can and exits non-zero for the service manager to start
/// it again.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let gw = Gateway::start(&cfg, None).await?;
    let failed = gw.failed.clone();
    let failure = tokio::select! {
        () = shutdown_signal() => false,
        () = failed.cancelled() => true,
    };
    tracing::info!("stopping: pollers first, then the store writer, then the sinks");
    gw.shutdown().await;
    if failure {
        anyhow::bail!("the store writer stopped; nothing more can be committed (see the log above)");
    }
    Ok(())
}

/// A store moved aside as damaged at start is raised as a critical alert, delivered like
/// any other, so that someone looks at it.
fn raise_store_replaced(store: &crate::store::Store, site: &str, aside: &std::path::Path) -> anyhow::Result<()> {
    let now = Utc::now().timestamp_millis();
    let row = crate::store::AlertRow {
        id: 0,
        rule: crate::model::AlertRule::StoreReplaced,
        subject: "store".into(),
        zone: site.to_string(),
        device: None,
        severity: crate::model::Severity::Critical,
        start_ms: now,
        end_ms: None,
        evidence: crate::alerts::said::Fact::StoreReplaced { aside: aside.display().to_string() }.stored(),
        loss_per_day: None,
        loss_fen_per_day: None,
        acked_by: None,
        acked_ms: None,
    };
    store.upsert_alert(&row)?;
    Ok(())
}

/// The sinks, each under the supervisor, with their health.
fn spawn_sinks(
    cfg: &Config,
    store: &Arc<crate::store::Store>,
    notify_rx: &tokio::sync::watch::Receiver<i64>,
    sink_cancel: &CancellationToken,
    restarts: &Arc<Restarts>,
) -> (TaskTracker, Vec<Arc<crate::sinks::SinkHealth>>) {
    use crate::sinks::{influx, mqtt, SinkHealth};
    let sinks = TaskTracker::new();
    let mut healths: Vec<Arc<SinkHealth>> = Vec::new();
    if let Some(m) = cfg.mqtt.clone() {
        let h = Arc::new(SinkHealth::new("mqtt", mqtt::CONSUMER));
        healths.push(h.clone());
        let (site, store, notify, cancel) =
            (cfg.site.name.clone(), store.clone(), notify_rx.clone(), sink_cancel.clone());
        supervise::spawn(&sinks, "sink mqtt".into(), sink_cancel.clone(), restarts.clone(), move || {
            mqtt::run(
                m.clone(),
                site.clone(),
                store.clone(),
                notify.clone(),
                h.clone(),
                cancel.clone(),
                SHUTDOWN_DEADLINE,
            )
        });
    }
    for i in &cfg.influxdb {
        let consumer = influx::consumer_name(i);
        let h = Arc::new(SinkHealth::new(&consumer, &consumer));
        healths.push(h.clone());
        let (i, store, notify, cancel) = (i.clone(), store.clone(), notify_rx.clone(), sink_cancel.clone());
        supervise::spawn(&sinks, format!("sink {consumer}"), sink_cancel.clone(), restarts.clone(), move || {
            influx::run(i.clone(), store.clone(), notify.clone(), h.clone(), cancel.clone(), SHUTDOWN_DEADLINE)
        });
    }
    sinks.close();
    (sinks, healths)
}

/// The periodic jobs: pruning (after freezing closed months), the monthly ledger to
/// InfluxDB (measurement `ledger`) every hour, the monthly ledger files and the alert
/// passes, each under the supervisor.
fn spawn_jobs(
    cfg: &Config,
    store: &Arc<crate::store::Store>,
    consumers: Vec<String>,
    sink_cancel: &CancellationToken,
    restarts: &Arc<Restarts>,
) -> (TaskTracker, Arc<crate::http::JobHealth>, Arc<crate::alerts::deliver::DeliveryHealth>) {
    let periodic = TaskTracker::new();
    let shared = Arc::new(cfg.clone());
    let consumers: Arc<Vec<String>> = Arc::new(consumers);
    {
        let (c, s, n, k) = (shared.clone(), store.clone(), consumers.clone(), sink_cancel.clone());
        supervise::spawn(&periodic, "job prune".into(), sink_cancel.clone(), restarts.clone(), move || {
            let (c, s, n) = (c.clone(), s.clone(), n.clone());
            jobs::every(Duration::from_secs(60), k.clone(), move || jobs::prune(c.clone(), s.clone(), n.clone()))
        });
    }
    if !cfg.topology.zones.is_empty() && !cfg.influxdb.is_empty() {
        let (c, s, k) = (shared.clone(), store.clone(), sink_cancel.clone());
        supervise::spawn(&periodic, "job ledger".into(), sink_cancel.clone(), restarts.clone(), move || {
            let (c, s) = (c.clone(), s.clone());
            jobs::every(Duration::from_secs(3600), k.clone(), move || jobs::publish_ledgers(c.clone(), s.clone()))
        });
    }
    let monthly_health = Arc::new(crate::http::JobHealth::default());
    if cfg.ledger.export_dir.is_some() {
        let (c, s, h, k, every) =
            (shared.clone(), store.clone(), monthly_health.clone(), sink_cancel.clone(), cfg.alerts.evaluate_every);
        supervise::spawn(&periodic, "job monthly ledger".into(), sink_cancel.clone(), restarts.clone(), move || {
            let (c, s, h) = (c.clone(), s.clone(), h.clone());
            jobs::every(every, k.clone(), move || monthly::pass(c.clone(), s.clone(), h.clone()))
        });
    }
    let alert_health = Arc::new(crate::alerts::deliver::DeliveryHealth::default());
    if !cfg.topology.zones.is_empty() || !cfg.devices.is_empty() {
        let (c, s, h, k, every) =
            (shared.clone(), store.clone(), alert_health.clone(), sink_cancel.clone(), cfg.alerts.evaluate_every);
        supervise::spawn(&periodic, "job alerts".into(), sink_cancel.clone(), restarts.clone(), move || {
            let (c, s, h) = (c.clone(), s.clone(), h.clone());
            jobs::every(every, k.clone(), move || jobs::alert_pass(c.clone(), s.clone(), h.clone()))
        });
    }
    if cfg.mqtt.is_some() && !cfg.topology.zones.is_empty() {
        let (c, s, k, every) = (shared.clone(), store.clone(), sink_cancel.clone(), cfg.alerts.evaluate_every);
        supervise::spawn(&periodic, "job group feed".into(), sink_cancel.clone(), restarts.clone(), move || {
            let (c, s) = (c.clone(), s.clone());
            // everything on the first pass and after a failed one, then what changed
            let all = Arc::new(std::sync::atomic::AtomicBool::new(true));
            jobs::every(every, k.clone(), move || feed::pass(c.clone(), s.clone(), all.clone()))
        });
    }
    periodic.close();
    (periodic, monthly_health, alert_health)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poll_that_panics_frees_its_device_which_is_polled_again() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let world = Arc::new(std::sync::Mutex::new(crate::sim::World::fleet(2, 2)));
        tokio::spawn(crate::sim::serve(listener, world, crate::sim::Clock::new(Utc::now(), 1.0), cancel.clone()));
        let text = format!(
            "[site]\nname = \"s\"\n[polling]\ninterval = \"100ms\"\nbackoff_max = \"400ms\"\n[[buses]]\nname = \"lan\"\ntransport = \"tcp\"\naddress = \"{addr}\"\n[[profiles]]\nname = \"r\"\npoints = [{{ name = \"a\", table = \"holding\", address = 0, quantity = \"status\" }}]\n[[devices]]\nname = \"panicky-meter\"\nbus = \"lan\"\nunit = 1\nprofile = \"r\"\n[[devices]]\nname = \"steady-meter\"\nbus = \"lan\"\nunit = 2\nprofile = \"r\"\n"
        );
        let (cfg, _) = config::load_str(&text, config::Mode::Check).unwrap();
        *poller::PANIC_ON.lock().unwrap() = Some("panicky-meter".into());
        let tracker = TaskTracker::new();
        let (mut rx, stats) = start_pollers(&cfg, &tracker, &cancel);
        async fn seen(rx: &mut mpsc::Receiver<Vec<Reading>>, device: &str) {
            loop {
                let batch = rx.recv().await.expect("pollers run");
                if batch.iter().any(|r| &*r.device == device) {
                    return;
                }
            }
        }
        // the neighbour is polled while the panicky device's polls fail, again and again
        tokio::time::timeout(Duration::from_secs(10), async {
            while stats["panicky-meter"].panics.load(Ordering::Relaxed) < 3 {
                seen(&mut rx, "steady-meter").await;
            }
        })
        .await
        .expect("the failing polls are retried, not left busy");
        // once the fault is gone, the device answers again
        *poller::PANIC_ON.lock().unwrap() = None;
        tokio::time::timeout(Duration::from_secs(10), seen(&mut rx, "panicky-meter"))
            .await
            .expect("the device is polled again after its polls panicked");
        cancel.cancel();
    }
}

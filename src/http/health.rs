//! `/healthz`, `/metrics` (Prometheus text) and `/api/status` (JSON).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;

use super::{blocking, AppState};
use crate::modbus::poller;
use crate::store::StoreError;

struct SinkView {
    name: String,
    backlog: i64,
    lag_s: Option<f64>,
    last_success_ms: i64,
    last_progress_ms: i64,
    delivered: u64,
    failures: u64,
    set_aside: u64,
    connected: bool,
    error: Option<String>,
}

/// Each sink's backlog and state. Reads the store: call it on the blocking pool.
fn sink_views(st: &AppState) -> Result<(i64, Vec<SinkView>), StoreError> {
    let last = st.store.last_seq()?;
    let now = Utc::now();
    let views = st
        .sinks
        .iter()
        .map(|s| {
            let cursor = st.store.cursor(&s.consumer)?;
            let lag_s = st
                .store
                .read_after(cursor, 1)?
                .first()
                .map(|x| (now - x.reading.ts).num_milliseconds() as f64 / 1000.0);
            Ok(SinkView {
                name: s.name.clone(),
                backlog: (last - cursor).max(0),
                lag_s,
                last_success_ms: s.last_success_ms.load(Ordering::Relaxed),
                last_progress_ms: s.last_progress_ms.load(Ordering::Relaxed),
                delivered: s.delivered.load(Ordering::Relaxed),
                failures: s.failures.load(Ordering::Relaxed),
                set_aside: s.set_aside.load(Ordering::Relaxed),
                connected: s.connected.load(Ordering::Relaxed),
                error: s.error(),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((last, views))
}

/// Reasons the gateway is unhealthy (empty = healthy). Reads the store: call it on the
/// blocking pool. A store that cannot be read is a reason.
pub fn problems(st: &AppState) -> Vec<String> {
    let now = Utc::now().timestamp_millis();
    let mut out = Vec::new();
    let since_good = now - st.intake.last_good_ms.load(Ordering::Relaxed).max(st.started_ms);
    if !st.devices.is_empty() && since_good > st.polling_stall.as_millis() as i64 {
        out.push(format!("no device has given a good reading for {} s", since_good / 1000));
    }
    let since_commit = now - st.intake.last_commit_ms.load(Ordering::Relaxed).max(st.started_ms);
    if since_commit > st.polling_stall.as_millis() as i64 {
        out.push(format!("no readings committed for {} s", since_commit / 1000));
    }
    let views = match sink_views(st) {
        Ok((_, v)) => v,
        Err(e) => {
            out.push(format!("the store cannot be read: {e}"));
            Vec::new()
        }
    };
    out.extend(st.intake.problems(now));
    out.extend(st.jobs.iter().filter_map(|j| j.problem()));
    // a receiver that refuses every batch moves its queue (the batches are set aside),
    // but delivers nothing
    for sink in &st.sinks {
        let refused = sink.last_refused_ms.load(Ordering::Relaxed);
        let delivered = sink.last_success_ms.load(Ordering::Relaxed);
        let since = now - delivered.max(st.started_ms);
        if refused > delivered && since > st.sink_stall.as_millis() as i64 {
            out.push(format!(
                "sink {} has refused every batch for {} s (set aside in the store; delivered nothing){}",
                sink.name,
                since / 1000,
                sink.error().map(|e| format!(": {e}")).unwrap_or_default()
            ));
        }
    }
    for v in views {
        let since = now - v.last_progress_ms.max(st.started_ms);
        if v.backlog > 0 && since > st.sink_stall.as_millis() as i64 {
            out.push(format!(
                "sink {} stalled: {} readings waiting, no delivery for {} s{}",
                v.name,
                v.backlog,
                since / 1000,
                v.error.map(|e| format!(" ({e})")).unwrap_or_default()
            ));
        }
    }
    out
}

pub(super) async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    let p = match blocking(move || Ok::<_, std::convert::Infallible>(problems(&st))).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if p.is_empty() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", p.join("\n"))).into_response()
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `# HELP` and `# TYPE` of a metric family.
fn family(m: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Per device and point: readings, cycles, requests and their failures; task restarts.
fn device_metrics(st: &AppState, m: &mut String) {
    type DeviceCounter = (&'static str, &'static str, fn(&poller::DeviceStats) -> u64);
    let device_counters: [DeviceCounter; 8] = [
        ("pumphouse_device_readings_total", "Readings produced per device (any quality).", |s| {
            s.readings.load(Ordering::Relaxed)
        }),
        ("pumphouse_device_cycles_total", "Poll cycles per device.", |s| s.cycles.load(Ordering::Relaxed)),
        ("pumphouse_device_requests_total", "Modbus requests sent per device.", |s| s.requests.load(Ordering::Relaxed)),
        ("pumphouse_device_timeouts_total", "Requests that got no answer in time.", |s| {
            s.timeouts.load(Ordering::Relaxed)
        }),
        ("pumphouse_device_transport_errors_total", "Connection failures and invalid frames.", |s| {
            s.transport_errors.load(Ordering::Relaxed)
        }),
        ("pumphouse_device_exceptions_total", "Modbus exception responses.", |s| s.exceptions.load(Ordering::Relaxed)),
        ("pumphouse_device_slow_cycles_total", "Poll cycles that overran their interval.", |s| {
            s.slow_cycles.load(Ordering::Relaxed)
        }),
        ("pumphouse_device_poll_failures_total", "Poll tasks that panicked (polled again after a backoff).", |s| {
            s.panics.load(Ordering::Relaxed)
        }),
    ];
    for (name, help, get) in device_counters {
        family(m, name, "counter", help);
        for d in &st.devices {
            if let Some(s) = st.stats.get(&d.device) {
                let _ = writeln!(
                    m,
                    "{name}{{device=\"{}\",bus=\"{}\",zone=\"{}\"}} {}",
                    label(&d.device),
                    label(&d.bus),
                    label(&d.zone),
                    get(s)
                );
            }
        }
    }
    family(m, "pumphouse_task_restarts_total", "counter", "Tasks started again after a failure or an unasked end.");
    for (task, n) in st.restarts.snapshot() {
        let _ = writeln!(m, "pumphouse_task_restarts_total{{task=\"{}\"}} {n}", label(&task));
    }
    family(m, "pumphouse_point_exceptions_total", "counter", "Modbus exception responses per point.");
    for d in &st.devices {
        let dev = &d.device;
        if let Some(s) = st.stats.get(dev) {
            let map = s.point_exceptions.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let mut points: Vec<_> = map.into_iter().collect();
            points.sort();
            for (p, n) in points {
                let _ = writeln!(
                    m,
                    "pumphouse_point_exceptions_total{{device=\"{}\",point=\"{}\"}} {n}",
                    label(dev),
                    label(&p)
                );
            }
        }
    }
}

/// The writer's figures, from memory: shown even when the store cannot be read.
fn intake_metrics(st: &AppState, m: &mut String) {
    let i = &st.intake;
    let intake: [(&str, &str, &str, i64); 6] = [
        (
            "pumphouse_intake_unwritten",
            "gauge",
            "Readings waiting in memory because the store refuses writes.",
            i.unwritten.load(Ordering::Relaxed),
        ),
        (
            "pumphouse_intake_held",
            "gauge",
            "Readings held in memory until the wall clock is set.",
            i.held.load(Ordering::Relaxed),
        ),
        (
            "pumphouse_intake_dropped_total",
            "counter",
            "Readings dropped from memory (oldest first) because the queue was full: losses.",
            i.dropped.load(Ordering::Relaxed) as i64,
        ),
        (
            "pumphouse_intake_clock_behind_total",
            "counter",
            "Readings committed flagged clock_behind (the clock stepped back).",
            i.behind.load(Ordering::Relaxed) as i64,
        ),
        (
            "pumphouse_intake_store_refusals_total",
            "counter",
            "Commits of readings the store refused (each retry counts).",
            i.refusals.load(Ordering::Relaxed) as i64,
        ),
        (
            "pumphouse_intake_store_refusing",
            "gauge",
            "1 while the store refuses writes (disk full, I/O error, read-only).",
            i64::from(i.failing_since_ms.load(Ordering::Relaxed) > 0),
        ),
    ];
    for (name, kind, help, v) in intake {
        family(m, name, kind, help);
        let _ = writeln!(m, "{name} {v}");
    }
}

/// The store's size, sequence and what its limits dropped; left out when it cannot be read.
fn store_metrics(st: &AppState, m: &mut String) {
    let store_stats = st.store.stats();
    if let Err(e) = &store_stats {
        tracing::error!(error = %e, "cannot read the store's figures for /metrics");
    }
    if let Ok(s) = store_stats {
        family(m, "pumphouse_store_records", "gauge", "Readings held in the local store.");
        let _ = writeln!(m, "pumphouse_store_records {}", s.records);
        family(m, "pumphouse_store_bytes", "gauge", "Bytes used by the local store.");
        let _ = writeln!(m, "pumphouse_store_bytes {}", s.bytes);
        family(m, "pumphouse_store_last_seq", "counter", "Sequence number of the last committed reading.");
        let _ = writeln!(m, "pumphouse_store_last_seq {}", s.last_seq);
        family(
            m,
            "pumphouse_store_dropped_total",
            "counter",
            "Readings dropped by the store limits, by reason (undelivered ones are losses).",
        );
        let mut reasons: Vec<_> = s.dropped.into_iter().collect();
        reasons.sort();
        for (r, n) in reasons {
            let _ = writeln!(m, "pumphouse_store_dropped_total{{reason=\"{}\"}} {n}", label(&r));
        }
        family(
            m,
            "pumphouse_store_set_aside_batches",
            "gauge",
            "Batches refused by a receiver and kept for inspection.",
        );
        let _ = writeln!(m, "pumphouse_store_set_aside_batches {}", s.set_aside);
    }
}

/// Each sink's backlog, lag and deliveries.
fn sink_metrics(st: &AppState, m: &mut String) {
    let views = match sink_views(st) {
        Ok((_, v)) => v,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the sinks' cursors for /metrics");
            Vec::new()
        }
    };
    type SinkGauge = (&'static str, &'static str, &'static str, fn(&SinkView) -> Option<f64>);
    let gauges: [SinkGauge; 7] = [
        ("pumphouse_sink_backlog", "gauge", "Readings committed but not yet confirmed by the receiver.", |v| {
            Some(v.backlog as f64)
        }),
        (
            "pumphouse_sink_delivery_lag_seconds",
            "gauge",
            "Age of the oldest reading not yet confirmed (absent when none).",
            |v| v.lag_s,
        ),
        ("pumphouse_sink_last_success_timestamp_seconds", "gauge", "Unix time of the last confirmed delivery.", |v| {
            Some(v.last_success_ms as f64 / 1000.0)
        }),
        ("pumphouse_sink_delivered_total", "counter", "Readings confirmed by the receiver.", |v| {
            Some(v.delivered as f64)
        }),
        ("pumphouse_sink_failures_total", "counter", "Failed delivery attempts and connection losses.", |v| {
            Some(v.failures as f64)
        }),
        ("pumphouse_sink_set_aside_total", "counter", "Batches refused as malformed and set aside.", |v| {
            Some(v.set_aside as f64)
        }),
        ("pumphouse_sink_connected", "gauge", "1 while the receiver is reachable.", |v| {
            Some(f64::from(u8::from(v.connected)))
        }),
    ];
    for (name, kind, help, get) in gauges {
        family(m, name, kind, help);
        for v in &views {
            if let Some(x) = get(v) {
                let _ = writeln!(m, "{name}{{sink=\"{}\"}} {x}", label(&v.name));
            }
        }
    }
}

/// The Prometheus text. Reads the store: call it on the blocking pool. Families whose
/// figures the store cannot give are left out (and logged), never shown as zero.
pub fn render_metrics(st: &AppState) -> String {
    let mut m = String::new();
    device_metrics(st, &mut m);
    intake_metrics(st, &mut m);
    store_metrics(st, &mut m);
    sink_metrics(st, &mut m);
    family(&mut m, "pumphouse_up", "gauge", "1 when /healthz would answer 200.");
    let _ = writeln!(m, "pumphouse_up {}", u8::from(problems(st).is_empty()));
    m
}

pub(super) async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    match blocking(move || Ok::<_, std::convert::Infallible>(render_metrics(&st))).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(r) => r,
    }
}

pub(super) async fn status(State(st): State<Arc<AppState>>) -> Response {
    match blocking(move || Ok::<_, std::convert::Infallible>(status_json(&st))).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

fn status_json(st: &AppState) -> serde_json::Value {
    let (last_seq, views, store_error) = match sink_views(st) {
        Ok((l, v)) => (Some(l), v, None),
        Err(e) => (None, Vec::new(), Some(e.to_string())),
    };
    let devices: Vec<serde_json::Value> = st
        .devices
        .iter()
        .map(|d| {
            let s = st.stats.get(&d.device);
            let g = |f: fn(&poller::DeviceStats) -> u64| s.map(|s| f(s)).unwrap_or(0);
            let when = |ms: Option<i64>| {
                ms.filter(|m| *m > 0).and_then(chrono::DateTime::from_timestamp_millis).map(|t| t.to_rfc3339())
            };
            serde_json::json!({
                "device": d.device, "bus": d.bus, "zone": d.zone,
                "cycles": g(|s| s.cycles.load(Ordering::Relaxed)),
                "requests": g(|s| s.requests.load(Ordering::Relaxed)),
                "timeouts": g(|s| s.timeouts.load(Ordering::Relaxed)),
                "transport_errors": g(|s| s.transport_errors.load(Ordering::Relaxed)),
                "exceptions": g(|s| s.exceptions.load(Ordering::Relaxed)),
                "slow_cycles": g(|s| s.slow_cycles.load(Ordering::Relaxed)),
                "poll_failures": g(|s| s.panics.load(Ordering::Relaxed)),
                "connect_failures": g(|s| s.connect_failures.load(Ordering::Relaxed)),
                // the last cycle the device answered, not the last attempt
                "last_good_reading": when(s.map(|s| s.last_good_ms.load(Ordering::Relaxed))),
                "failing_since": when(s.map(|s| s.failing_since_ms.load(Ordering::Relaxed))),
                "last_error": s.and_then(|s| s.last_error()),
            })
        })
        .collect();
    let sinks: Vec<serde_json::Value> = views
        .iter()
        .map(|v| {
            serde_json::json!({
                "sink": v.name, "backlog": v.backlog, "delivery_lag_s": v.lag_s, "connected": v.connected,
                "delivered": v.delivered, "failures": v.failures, "set_aside": v.set_aside,
                "last_success_ms": v.last_success_ms, "last_progress_ms": v.last_progress_ms, "last_error": v.error,
            })
        })
        .collect();
    let problems = problems(st);
    let (store, store_error) = match st.store.stats() {
        Ok(s) => (Some(s), store_error),
        Err(e) => (None, Some(e.to_string())),
    };
    // what the alert pass cannot judge as configured: said, not silently skipped
    let unjudged: Vec<serde_json::Value> = st
        .config
        .alert_spec()
        .bursts_unjudged()
        .into_iter()
        .map(|(zone, why)| serde_json::json!({"zone": zone, "rule": "burst", "why": why}))
        .collect();
    let alerts_delivery = serde_json::json!({
        "errors": st.alert_delivery.errors(),
        "webhook_retry_in_s": st.alert_delivery.webhook_retry_in(),
    });
    let i = &st.intake;
    let intake = serde_json::json!({
        "unwritten": i.unwritten.load(Ordering::Relaxed),
        "held_for_clock": i.held.load(Ordering::Relaxed),
        "dropped": i.dropped.load(Ordering::Relaxed),
        "clock_behind": i.behind.load(Ordering::Relaxed),
        "store_refusals": i.refusals.load(Ordering::Relaxed),
        "store_write_error": i.error(),
    });
    serde_json::json!({
        "healthy": problems.is_empty(),
        "intake": intake,
        "alerts_delivery": alerts_delivery,
        "alerts_not_judged": unjudged,
        "problems": problems,
        "store": store,
        "store_error": store_error,
        "last_seq": last_seq,
        "devices": devices,
        "sinks": sinks,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::http::DeviceLabels;
    use crate::sinks::SinkHealth;

    fn state(dir: &std::path::Path, sinks: Vec<Arc<SinkHealth>>, started_ago_s: i64) -> AppState {
        let (cfg, _) = crate::config::load_str("[site]\nname = \"s\"\n", crate::config::Mode::Check).unwrap();
        let now = Utc::now().timestamp_millis();
        let intake = crate::store::Intake::default();
        intake.last_commit_ms.store(now, Ordering::Relaxed);
        AppState {
            store: Arc::new(crate::store::Store::open(&dir.join("s.db"), Default::default()).unwrap()),
            config: Arc::new(cfg),
            sinks,
            stats: Default::default(),
            devices: vec![DeviceLabels { device: "m1".into(), bus: "b".into(), zone: "z".into() }],
            intake: Arc::new(intake),
            polling_stall: Duration::from_secs(60),
            sink_stall: Duration::from_secs(60),
            started_ms: now - started_ago_s * 1000,
            token: None,
            alert_delivery: Default::default(),
            jobs: Vec::new(),
            ledger_slot: tokio::sync::Semaphore::new(1),
            restarts: Default::default(),
            commands: Default::default(),
        }
    }

    #[test]
    fn a_store_refusing_writes_and_a_clock_not_set_are_unhealthy_with_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let st = state(dir.path(), Vec::new(), 0);
        st.intake.last_good_ms.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        assert!(problems(&st).is_empty());
        st.intake.failing_since_ms.store(Utc::now().timestamp_millis() - 30_000, Ordering::Relaxed);
        st.intake.set_error(Some("database or disk is full".into()));
        st.intake.unwritten.store(15_000, Ordering::Relaxed);
        st.intake.held.store(12, Ordering::Relaxed);
        let p = problems(&st);
        assert!(
            p.iter().any(|x| x.starts_with(
                "the store has refused writes for 30 s (database or disk is full); 15000 readings wait in memory"
            )),
            "{p:?}"
        );
        assert!(p.iter().any(|x| x.contains("12 readings are held until it is")), "{p:?}");
        let v = status_json(&st);
        assert_eq!(v["healthy"], false);
        assert_eq!(v["intake"]["unwritten"], 15_000);
        assert_eq!(v["intake"]["store_write_error"], "database or disk is full");
        let m = render_metrics(&st);
        assert!(
            m.contains("pumphouse_intake_unwritten 15000\n") && m.contains("pumphouse_intake_store_refusing 1\n"),
            "{m}"
        );
    }

    #[test]
    fn every_meter_timing_out_is_unhealthy_though_readings_are_committed() {
        let dir = tempfile::tempdir().unwrap();
        // commits go on (timeouts are readings too), but none was good for five minutes
        let st = state(dir.path(), Vec::new(), 300);
        let p = problems(&st);
        assert!(p.iter().any(|x| x.starts_with("no device has given a good reading for")), "{p:?}");
        st.intake.last_good_ms.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        assert!(problems(&st).is_empty());
    }

    #[test]
    fn a_receiver_that_refuses_every_batch_is_unhealthy_though_its_queue_moves() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(SinkHealth::new("influxdb:x", "influxdb:x"));
        let st = state(dir.path(), vec![sink.clone()], 300);
        st.intake.last_good_ms.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        // refusals set the batches aside: the queue moves, nothing is delivered
        sink.refused();
        sink.progress();
        sink.failure("InfluxDB refused the batch (400): field type conflict".into());
        let p = problems(&st);
        assert!(
            p.iter()
                .any(|x| x.contains("sink influxdb:x has refused every batch") && x.contains("field type conflict")),
            "{p:?}"
        );
        // one delivery later, it is fine again
        sink.success(10);
        assert!(problems(&st).is_empty(), "{:?}", problems(&st));
    }

    /// The real connection loop on a loopback port, with `bounds`.
    async fn served(
        st: AppState,
        bounds: crate::http::serve::Bounds,
    ) -> (std::net::SocketAddr, tokio_util::sync::CancellationToken) {
        let listener = Arc::new(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.local_addr().unwrap();
        let cancel = tokio_util::sync::CancellationToken::new();
        tokio::spawn(crate::http::serve::serve(listener, crate::http::router(Arc::new(st)), bounds, cancel.clone()));
        (addr, cancel)
    }

    async fn healthz_within(addr: std::net::SocketAddr, limit: Duration) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let answer = async {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        tokio::time::timeout(limit, answer).await.expect("/healthz answered in time")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_and_slow_clients_neither_stay_nor_lock_healthz_out() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let bounds = crate::http::serve::Bounds { max_connections: 8, header_timeout: Duration::from_millis(500) };
        let (addr, cancel) = served(state(dir.path(), Vec::new(), 0), bounds).await;
        // a slowloris: headers begun, never finished; the server closes it
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ").await.unwrap();
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "a client that never finishes its headers is closed");
        // 40 idle connections, five times the limit: /healthz still answers at once
        let mut idle = Vec::new();
        for _ in 0..40 {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let answer = healthz_within(addr, Duration::from_secs(2)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // every answer says: no sniffing, no framing, only the gateway's own resources
        assert!(answer.contains("x-content-type-options: nosniff"), "{answer}");
        assert!(answer.contains("x-frame-options: DENY"), "{answer}");
        assert!(answer.contains("content-security-policy: default-src 'self'"), "{answer}");
        cancel.cancel();
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = state(dir.path(), Vec::new(), 0);
        st.token = Some(crate::secret::Secret::new("0123456789abcdef0123"));
        let with = |v: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(axum::http::header::AUTHORIZATION, v.parse().unwrap());
            crate::http::refusal(&st, &h).map(|r| r.status().as_u16())
        };
        for ok in ["Bearer 0123456789abcdef0123", "bearer 0123456789abcdef0123", "BEARER  0123456789abcdef0123"] {
            assert_eq!(with(ok), None, "{ok}");
        }
        assert_eq!(with("Basic 0123456789abcdef0123"), Some(401));
        assert_eq!(with("bearer wrong"), Some(401));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_page_says_a_device_fails_from_its_first_failed_cycle() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let mut st = state(dir.path(), Vec::new(), 0);
        let m1 = Arc::new(poller::DeviceStats::default());
        st.stats = Arc::new([("m1".to_string(), m1.clone())].into_iter().collect());
        // one failed cycle: /healthz is still green (it waits three intervals) ...
        m1.cycle_ended(false, Utc::now().timestamp_millis());
        assert!(problems(&st).is_empty());
        let bounds = crate::http::serve::Bounds { max_connections: 8, header_timeout: Duration::from_secs(5) };
        let (addr, cancel) = served(st, bounds).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /?lang=en HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut page = String::new();
        s.read_to_string(&mut page).await.unwrap();
        // ... but the page does not say everything moves
        assert!(!page.contains("Healthy: polling"), "{page}");
        assert!(page.contains("1 / 1 devices give no good reading"), "{page}");
        cancel.cancel();
    }
}

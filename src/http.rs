//! The local HTTP endpoint: `/healthz`, `/metrics` (Prometheus text) and `/api/status`
//! (JSON). It only reads shared state; it never blocks polling or delivery.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;

use crate::modbus::poller;
use crate::sinks::SinkHealth;
use crate::store::Store;

pub struct AppState {
    pub store: Arc<Store>,
    /// The configuration, for the ledger endpoints.
    pub config: Arc<crate::config::Config>,
    pub sinks: Vec<Arc<SinkHealth>>,
    pub stats: poller::Stats,
    /// (device, bus, zone) for labels.
    pub devices: Vec<(String, String, String)>,
    /// Unix ms of the last commit of readings to the store.
    pub last_commit_ms: Arc<AtomicI64>,
    /// No commit for this long means polling has stopped.
    pub polling_stall: Duration,
    pub sink_stall: Duration,
    pub started_ms: i64,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .route("/api/ledger/{month}", get(ledger))
        .route("/api/alerts", get(alerts))
        .route("/api/alerts/{id}/ack", axum::routing::post(ack))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found: try /healthz, /metrics or /api/status\n") })
        .with_state(state)
}

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

fn sink_views(st: &AppState) -> (i64, Vec<SinkView>) {
    let last = st.store.last_seq().unwrap_or(0);
    let now = Utc::now();
    let views = st
        .sinks
        .iter()
        .map(|s| {
            let cursor = st.store.cursor(&s.consumer).unwrap_or(0);
            let lag_s = st
                .store
                .read_after(cursor, 1)
                .ok()
                .and_then(|v| v.first().map(|x| (now - x.reading.ts).num_milliseconds() as f64 / 1000.0));
            SinkView {
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
            }
        })
        .collect();
    (last, views)
}

/// Reasons the gateway is unhealthy (empty = healthy).
pub fn problems(st: &AppState) -> Vec<String> {
    let now = Utc::now().timestamp_millis();
    let mut out = Vec::new();
    let since_commit = now - st.last_commit_ms.load(Ordering::Relaxed).max(st.started_ms);
    if since_commit > st.polling_stall.as_millis() as i64 {
        out.push(format!("no readings committed for {} s", since_commit / 1000));
    }
    let (_, views) = sink_views(st);
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

async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    let p = problems(&st);
    if p.is_empty() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", p.join("\n"))).into_response()
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render_metrics(st: &AppState) -> String {
    let mut m = String::new();
    let family = |m: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    type DeviceCounter = (&'static str, &'static str, fn(&poller::DeviceStats) -> u64);
    let device_counters: [DeviceCounter; 7] = [
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
    ];
    for (name, help, get) in device_counters {
        family(&mut m, name, "counter", help);
        for (dev, bus, zone) in &st.devices {
            if let Some(s) = st.stats.get(dev) {
                let _ = writeln!(
                    m,
                    "{name}{{device=\"{}\",bus=\"{}\",zone=\"{}\"}} {}",
                    label(dev),
                    label(bus),
                    label(zone),
                    get(s)
                );
            }
        }
    }
    family(&mut m, "pumphouse_point_exceptions_total", "counter", "Modbus exception responses per point.");
    for (dev, _, _) in &st.devices {
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
    if let Ok(s) = st.store.stats() {
        family(&mut m, "pumphouse_store_records", "gauge", "Readings held in the local store.");
        let _ = writeln!(m, "pumphouse_store_records {}", s.records);
        family(&mut m, "pumphouse_store_bytes", "gauge", "Bytes used by the local store.");
        let _ = writeln!(m, "pumphouse_store_bytes {}", s.bytes);
        family(&mut m, "pumphouse_store_last_seq", "counter", "Sequence number of the last committed reading.");
        let _ = writeln!(m, "pumphouse_store_last_seq {}", s.last_seq);
        family(
            &mut m,
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
            &mut m,
            "pumphouse_store_set_aside_batches",
            "gauge",
            "Batches refused by a receiver and kept for inspection.",
        );
        let _ = writeln!(m, "pumphouse_store_set_aside_batches {}", s.set_aside);
    }
    let (_, views) = sink_views(st);
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
        family(&mut m, name, kind, help);
        for v in &views {
            if let Some(x) = get(v) {
                let _ = writeln!(m, "{name}{{sink=\"{}\"}} {x}", label(&v.name));
            }
        }
    }
    family(&mut m, "pumphouse_up", "gauge", "1 when /healthz would answer 200.");
    let _ = writeln!(m, "pumphouse_up {}", u8::from(problems(st).is_empty()));
    m
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render_metrics(&st)).into_response()
}

async fn status(State(st): State<Arc<AppState>>) -> Response {
    let (last_seq, views) = sink_views(&st);
    let devices: Vec<serde_json::Value> = st
        .devices
        .iter()
        .map(|(dev, bus, zone)| {
            let s = st.stats.get(dev);
            let g = |f: fn(&poller::DeviceStats) -> u64| s.map(|s| f(s)).unwrap_or(0);
            serde_json::json!({
                "device": dev, "bus": bus, "zone": zone,
                "cycles": g(|s| s.cycles.load(Ordering::Relaxed)),
                "requests": g(|s| s.requests.load(Ordering::Relaxed)),
                "timeouts": g(|s| s.timeouts.load(Ordering::Relaxed)),
                "transport_errors": g(|s| s.transport_errors.load(Ordering::Relaxed)),
                "exceptions": g(|s| s.exceptions.load(Ordering::Relaxed)),
                "slow_cycles": g(|s| s.slow_cycles.load(Ordering::Relaxed)),
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
    let problems = problems(&st);
    Json(serde_json::json!({
        "healthy": problems.is_empty(),
        "problems": problems,
        "store": st.store.stats().ok(),
        "last_seq": last_seq,
        "devices": devices,
        "sinks": sinks,
    }))
    .into_response()
}

#[derive(Debug, serde::Deserialize)]
pub struct LedgerQuery {
    /// zh (default) or en.
    lang: Option<String>,
}

/// `/api/ledger/2026-03` (JSON), `/api/ledger/2026-03.csv`, `/api/ledger/2026-03.xlsx`.
async fn ledger(State(st): State<Arc<AppState>>, Path(month): Path<String>, Query(q): Query<LedgerQuery>) -> Response {
    use crate::ledger::{export, month as m};
    let (name, ext) = match month.rsplit_once('.') {
        Some((n, e)) => (n.to_string(), e.to_string()),
        None => (month.clone(), "json".to_string()),
    };
    let lang = match q.lang.as_deref() {
        None | Some("zh") => export::Lang::Zh,
        Some("en") => export::Lang::En,
        Some(other) => return (StatusCode::BAD_REQUEST, format!("lang `{other}`: use zh or en\n")).into_response(),
    };
    if !matches!(ext.as_str(), "json" | "csv" | "xlsx") {
        return (StatusCode::NOT_FOUND, format!("unknown format `.{ext}`: use .json, .csv or .xlsx\n")).into_response();
    }
    let Some((year, mon)) = m::parse_month(&name) else {
        return (StatusCode::BAD_REQUEST, format!("`{name}` is not a month: use YYYY-MM\n")).into_response();
    };
    if st.config.topology.zones.is_empty() {
        return (StatusCode::NOT_FOUND, "no [[zones]] are configured: there is no ledger\n").into_response();
    }
    let st2 = st.clone();
    let computed = tokio::task::spawn_blocking(move || {
        crate::app::month_ledger(&st2.config, &st2.store, year, mon, m::Depth::Full)
            .map_err(|e| format!("{e:#}"))?
            .ok_or_else(|| "cannot compute that month".to_string())
    })
    .await;
    let l = match computed {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    match ext.as_str() {
        "csv" => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], export::to_csv(&l, lang)).into_response(),
        "xlsx" => match export::to_xlsx(&l, lang) {
            Ok(bytes) => (
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
                    ),
                    (header::CONTENT_DISPOSITION, format!("attachment; filename=\"ledger-{name}.xlsx\"")),
                ],
                bytes,
            )
                .into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        },
        _ => Json(l).into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct AlertsQuery {
    active: Option<bool>,
}

/// `/api/alerts[?active=true]`: alerts, newest first, as JSON.
async fn alerts(State(st): State<Arc<AppState>>, Query(q): Query<AlertsQuery>) -> Response {
    match st.store.alerts(q.active.unwrap_or(false)) {
        Ok(rows) => {
            let site = st.config.site.name.to_string();
            let list: Vec<serde_json::Value> = rows.iter().map(|a| crate::alerts::deliver::json(a, &site)).collect();
            Json(list).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct AckQuery {
    by: Option<String>,
}

/// `POST /api/alerts/{id}/ack?by=NAME`.
async fn ack(State(st): State<Arc<AppState>>, Path(id): Path<String>, Query(q): Query<AckQuery>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return (StatusCode::BAD_REQUEST, format!("`{id}` is not an alert id\n")).into_response();
    };
    let Some(by) = q.by.filter(|b| !b.trim().is_empty()) else {
        return (StatusCode::BAD_REQUEST, "say who acknowledges: ?by=NAME\n").into_response();
    };
    match st.store.ack_alert(id, &by) {
        Ok(true) => (StatusCode::OK, format!("alert #{id} acknowledged by {by}\n")).into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, format!("no alert #{id}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

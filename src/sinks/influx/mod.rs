//! The InfluxDB sink: readings from the store as line protocol, in batches, to the 1.x
//! API (`/write?db=&rp=`) or the 2.x API (`/api/v2/write?org=&bucket=`). The cursor moves
//! only on a 2xx.
//!
//! Failures are told apart by what retrying can change:
//! - network errors and 5xx (and 429): retried with backoff, same batch, queue held;
//! - 401/403/404: wrong token, missing database or bucket — the sink reports itself
//!   unhealthy with a sentence saying so, and retries slowly (someone must fix it);
//! - other 4xx (malformed data, e.g. a field type conflict): the batch is set aside in the
//!   store for inspection, counted and logged, and the queue moves on;
//! - 413 (too large): the batch is halved and retried.
//!
//! Line protocol: one measurement per quantity family (`water`, `electricity`,
//! `pressure`, `valve`, `status`), tags `site`, `zone`, `device`, `point`, `quantity`,
//! `unit`; fields `value` (always a float, so the field type never conflicts) and
//! `quality` (string); timestamp in ns or s as configured. A repeat of a reading after a
//! crash writes the same series and timestamp: InfluxDB keeps one point.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{retry_delay, SinkHealth};
use crate::line_protocol::Line;
pub mod config;

use crate::model::{Quantity, Reading};
use crate::store::{Store, Stored};
use config::{InfluxApi, InfluxConfig, Precision};

pub fn measurement(q: Quantity) -> &'static str {
    match q {
        Quantity::WaterVolume | Quantity::WaterFlow => "water",
        Quantity::EnergyImport
        | Quantity::EnergyExport
        | Quantity::ActivePower
        | Quantity::Voltage
        | Quantity::Current
        | Quantity::PowerFactor
        | Quantity::Frequency => "electricity",
        Quantity::Pressure => "pressure",
        Quantity::ValvePosition | Quantity::ValveCommand | Quantity::ValveOpen | Quantity::ValveClosed => "valve",
        Quantity::FreeChlorine | Quantity::Turbidity | Quantity::Ph | Quantity::Conductivity => "water_quality",
        Quantity::LoopCurrent | Quantity::Temperature | Quantity::Status | Quantity::ClockOffset => "status",
    }
}

/// One reading as a line of line protocol (with the trailing newline).
pub fn line(r: &Reading, precision: Precision, out: &mut String) {
    let ts = match precision {
        Precision::Nanoseconds => r.ts.timestamp_millis() as i128 * 1_000_000,
        Precision::Seconds => i128::from(r.ts.timestamp()),
    };
    let mut l = Line::new(out, measurement(r.quantity))
        .tag("site", &r.site)
        .tag("zone", &r.zone)
        .tag("device", &r.device)
        .tag("point", &r.point)
        .tag("quantity", r.quantity.as_str())
        .tag("unit", &r.unit);
    if let Some(v) = r.value {
        l = l.float("value", v);
    }
    l.string("quality", &r.quality.code()).at(ts);
}

pub fn body(batch: &[Stored], precision: Precision) -> String {
    let mut s = String::with_capacity(batch.len() * 160);
    for st in batch {
        line(&st.reading, precision, &mut s);
    }
    s
}

pub fn write_url(cfg: &InfluxConfig) -> String {
    let p = match cfg.precision {
        Precision::Nanoseconds => "ns",
        Precision::Seconds => "s",
    };
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    match &cfg.api {
        InfluxApi::V1 { database, retention_policy, .. } => {
            let mut u = format!("{}/write?db={}&precision={p}", cfg.url, enc(database));
            if let Some(rp) = retention_policy {
                let _ = write!(u, "&rp={}", enc(rp));
            }
            u
        }
        InfluxApi::V2 { org, bucket, .. } => {
            format!("{}/api/v2/write?org={}&bucket={}&precision={p}", cfg.url, enc(org), enc(bucket))
        }
    }
}

/// What to do after a write attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Retry(String),
    /// Configuration or permission problem: unhealthy, retry slowly.
    Blocked(String),
    /// The data was refused: set the batch aside.
    Refused(String),
    TooLarge,
}

/// Judges InfluxDB's answer. Only what InfluxDB (or VictoriaMetrics) says on a stored
/// write counts as delivered: 204, or a 2xx with nothing in it. A redirect or a page
/// (a captive portal, a proxy's login) is not a delivery: the cursor stays.
pub fn judge(status: u16, text: &str, cfg: &InfluxConfig) -> Verdict {
    let text = text.trim();
    match status {
        204 => Verdict::Delivered,
        200..=299 if text.is_empty() => Verdict::Delivered,
        200..=299 => Verdict::Blocked(format!(
            "the InfluxDB URL answered {status} with a page, not InfluxDB's 204: a proxy or a portal is in the way; nothing was written. {}",
            crate::untrusted::shown(text, 120)
        )),
        300..=399 => Verdict::Blocked(format!(
            "the InfluxDB URL answered {status} ({text}): a redirect is not a delivery; set url to where InfluxDB itself listens"
        )),
        401 | 403 => Verdict::Blocked(match &cfg.api {
            InfluxApi::V1 { .. } => format!("InfluxDB refused the credentials ({status}): check username and password. {text}"),
            InfluxApi::V2 { .. } => format!("InfluxDB refused the token ({status}): check token_env/token_file and its write permission on the bucket. {text}"),
        }),
        404 => Verdict::Blocked(match &cfg.api {
            InfluxApi::V1 { database, .. } => format!("InfluxDB answered 404: database `{database}` does not exist (CREATE DATABASE {database}), or the URL is not an InfluxDB 1.x API. {text}"),
            InfluxApi::V2 { org, bucket, .. } => format!("InfluxDB answered 404: org `{org}` or bucket `{bucket}` does not exist, or the URL is not an InfluxDB 2.x API. {text}"),
        }),
        413 => Verdict::TooLarge,
        // a timeout, "too early" and rate limits say nothing against the data: try again
        408 | 425 | 429 | 500..=599 => Verdict::Retry(format!("InfluxDB answered {status}: {text}")),
        _ => Verdict::Refused(format!("InfluxDB refused the batch ({status}): {text}")),
    }
}

fn gzip(body: &str) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(body.as_bytes())?;
    enc.finish()
}

async fn post(http: &reqwest::Client, cfg: &InfluxConfig, url: &str, body: &str) -> Result<(u16, String), String> {
    let mut req = http.post(url).header("Content-Type", "text/plain; charset=utf-8");
    match &cfg.api {
        InfluxApi::V1 { username: Some(u), password, .. } => {
            req = req.basic_auth(u, password.as_ref().map(|p| p.expose().to_string()));
        }
        InfluxApi::V2 { token: Some(t), .. } => {
            req = req.header("Authorization", format!("Token {}", t.expose()));
        }
        _ => {}
    }
    req = if cfg.gzip {
        let zipped = gzip(body).map_err(|e| format!("gzip: {e}"))?;
        req.header("Content-Encoding", "gzip").body(zipped)
    } else {
        req.body(body.to_string())
    };
    match req.send().await {
        Ok(rsp) => {
            let status = rsp.status().as_u16();
            if rsp.status().is_redirection() {
                let to = rsp.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok());
                return Ok((status, format!("to {}", crate::secret::redact_url(to.unwrap_or("nowhere")))));
            }
            let text = rsp.text().await.unwrap_or_default();
            Ok((status, crate::untrusted::shown(&text, 500)))
        }
        // without_url: a query may carry credentials; the base URL (credentials taken out
        // by the configuration) says where
        Err(e) => Err(format!("cannot reach InfluxDB at {}: {}", cfg.url, e.without_url())),
    }
}

/// Writes one body of line protocol outside the store's queue (for figures that are
/// recomputed rather than queued, like the monthly ledger). Errors are sentences.
pub async fn write_once(cfg: &InfluxConfig, body: &str) -> Result<(), String> {
    let http = client(cfg).map_err(|e| e.to_string())?;
    let mut once = cfg.clone();
    once.precision = Precision::Nanoseconds;
    match post(&http, &once, &write_url(&once), body).await {
        Ok((status, text)) => match judge(status, &text, &once) {
            Verdict::Delivered => Ok(()),
            Verdict::Retry(e) | Verdict::Blocked(e) | Verdict::Refused(e) => Err(e),
            Verdict::TooLarge => Err("InfluxDB refused the body as too large".into()),
        },
        Err(e) => Err(e),
    }
}

/// The sink's HTTP client: it follows no redirect (a 302 would turn the POST into a GET
/// whose 200 says nothing about the data).
fn client(cfg: &InfluxConfig) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().timeout(cfg.timeout).redirect(reqwest::redirect::Policy::none()).build()
}

pub fn consumer_name(cfg: &InfluxConfig) -> String {
    format!("influxdb:{}", cfg.name)
}

/// Runs the sink until `cancel`; on cancel it finishes the batch in hand within `drain`.
pub async fn run(
    cfg: InfluxConfig,
    store: Arc<Store>,
    mut notify: watch::Receiver<i64>,
    health: Arc<SinkHealth>,
    cancel: CancellationToken,
    drain: Duration,
) {
    let consumer = consumer_name(&cfg);
    let http = match client(&cfg) {
        Ok(c) => c,
        Err(e) => {
            health.failure(format!("HTTP client: {e}"));
            return;
        }
    };
    let url = write_url(&cfg);
    let mut batch_size = cfg.batch_size;
    let mut attempt = 0u32;
    let mut stop_at: Option<tokio::time::Instant> = None;
    loop {
        if cancel.is_cancelled() && stop_at.is_none() {
            stop_at = Some(tokio::time::Instant::now() + drain);
        }
        // A store that cannot be read is waited for, with the same backoff as the
        // receiver: never a cursor taken as 0 (everything again), never a busy loop.
        let c = consumer.clone();
        let read = super::on_store(&store, move |s| s.cursor(&c).and_then(|at| s.read_after(at, batch_size))).await;
        let batch = match read {
            Ok(b) => b,
            Err(e) => {
                attempt += 1;
                if store_trouble(&health, &e, attempt, &cancel, stop_at).await {
                    return;
                }
                continue;
            }
        };
        if batch.is_empty()
            || (batch.len() < batch_size && stop_at.is_none() && attempt == 0 && young(&batch, cfg.flush_interval))
        {
            if stop_at.is_some() {
                return;
            }
            wait_for_more(&batch, cfg.flush_interval, &cancel, &mut notify).await;
            continue;
        }
        let (first, last) = (batch[0].seq, batch[batch.len() - 1].seq);
        let text = body(&batch, cfg.precision);
        let verdict = match post(&http, &cfg, &url, &text).await {
            Ok((status, rsp)) => judge(status, &rsp, &cfg),
            Err(e) => Verdict::Retry(e),
        };
        match verdict {
            Verdict::Delivered => {
                health.connected.store(true, Ordering::Relaxed);
                batch_size = cfg.batch_size;
                let c = consumer.clone();
                if let Err(e) = super::on_store(&store, move |s| s.advance(&c, last)).await {
                    // delivered but not recorded: the batch goes again (at least once),
                    // after a pause rather than as fast as the database answers
                    attempt += 1;
                    if store_trouble(&health, &e, attempt, &cancel, stop_at).await {
                        return;
                    }
                } else {
                    health.success(batch.len() as u64);
                    attempt = 0;
                }
                continue;
            }
            Verdict::Refused(why) => {
                tracing::error!(sink = %health.name, first, last, reason = %why, "batch refused; set aside in the store");
                health.refused();
                health.failure(why.clone());
                match set_aside(&store, &consumer, (first, last), &why, &text).await {
                    Ok(()) => health.progress(),
                    Err(e) => {
                        // the store itself failed: wait before trying again
                        attempt += 1;
                        if store_trouble(&health, &e, attempt, &cancel, stop_at).await {
                            return;
                        }
                    }
                }
                continue;
            }
            Verdict::TooLarge => {
                batch_size = (batch.len() / 2).max(1);
                if batch.len() == 1 {
                    let why = "a single reading is larger than InfluxDB accepts".to_string();
                    match set_aside(&store, &consumer, (first, last), &why, &text).await {
                        Ok(()) => {
                            health.refused();
                            health.progress();
                        }
                        Err(e) => {
                            attempt += 1;
                            if store_trouble(&health, &e, attempt, &cancel, stop_at).await {
                                return;
                            }
                        }
                    }
                }
                continue;
            }
            Verdict::Retry(why) | Verdict::Blocked(why) => {
                health.connected.store(false, Ordering::Relaxed);
                if attempt == 0 {
                    tracing::warn!(sink = %health.name, reason = %why, "InfluxDB write failed; retrying");
                }
                health.failure(why);
                if pause(attempt, &cancel, stop_at).await {
                    return;
                }
                attempt += 1;
            }
        }
    }
}

/// Waits for a batch to fill: until the store has more (an empty batch), the oldest
/// reading is `flush` old, or the sink is cancelled.
async fn wait_for_more(
    batch: &[Stored],
    flush: Duration,
    cancel: &CancellationToken,
    notify: &mut watch::Receiver<i64>,
) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = super::changed(notify), if batch.is_empty() => {}
        () = tokio::time::sleep(if batch.is_empty() { flush } else { remaining(batch, flush) }) => {}
    }
}

/// A batch the database will never take, kept in the store with the reason, and the
/// cursor moved past it.
async fn set_aside(
    store: &Arc<Store>,
    consumer: &str,
    (first, last): (i64, i64),
    why: &str,
    text: &str,
) -> crate::store::Result<()> {
    let (consumer, why, text) = (consumer.to_string(), why.to_string(), text.to_string());
    super::on_store(store, move |s| {
        s.set_aside(&consumer, first, last, &why, &text).and_then(|()| s.advance(&consumer, last))
    })
    .await
}

/// Waits `retry_delay(attempt)`, cut short by a cancel (then the drain deadline counts);
/// true when the sink should stop now.
async fn pause(attempt: u32, cancel: &CancellationToken, stop_at: Option<tokio::time::Instant>) -> bool {
    let delay = retry_delay(attempt);
    if let Some(at) = stop_at {
        if tokio::time::Instant::now() + delay > at {
            return true;
        }
    }
    tokio::select! {
        () = cancel.cancelled(), if stop_at.is_none() => {}
        () = tokio::time::sleep(delay) => {}
    }
    false
}

/// Reports a store error (logged on the first of a run) and pauses; true: stop now.
async fn store_trouble(
    health: &SinkHealth,
    e: &crate::store::StoreError,
    attempt: u32,
    cancel: &CancellationToken,
    stop_at: Option<tokio::time::Instant>,
) -> bool {
    if attempt == 1 {
        tracing::error!(sink = %health.name, error = %e, "the store cannot be read or updated; waiting");
    }
    health.failure(e.to_string());
    pause(attempt, cancel, stop_at).await
}

/// True while the oldest reading of a partial batch is younger than the flush interval.
fn young(batch: &[Stored], flush: Duration) -> bool {
    remaining(batch, flush) > Duration::ZERO
}

fn remaining(batch: &[Stored], flush: Duration) -> Duration {
    let oldest = batch[0].reading.ts;
    let age = (chrono::Utc::now() - oldest).to_std().unwrap_or(Duration::ZERO);
    flush.saturating_sub(age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Quality;
    use chrono::TimeZone;

    fn cfg(api: InfluxApi) -> InfluxConfig {
        InfluxConfig {
            name: "0".into(),
            url: "http://127.0.0.1:8086".into(),
            api,
            batch_size: 10,
            flush_interval: Duration::from_secs(1),
            precision: Precision::Nanoseconds,
            gzip: true,
            timeout: Duration::from_secs(1),
        }
    }

    fn reading(value: Option<f64>, quality: Quality) -> Reading {
        Reading {
            ts: chrono::Utc.timestamp_millis_opt(1_764_000_000_123).unwrap(),
            site: "north campus".into(),
            zone: "z,1".into(),
            device: "inlet=main".into(),
            point: "flow_rate".into(),
            quantity: Quantity::WaterFlow,
            value,
            unit: "m3/h".into(),
            quality,
        }
    }

    /// A receiver that accepts everything and counts the posts.
    async fn counting_receiver() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let posts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let p = posts.clone();
        let app = axum::Router::new().route(
            "/write",
            axum::routing::post(move || {
                let p = p.clone();
                async move {
                    p.fetch_add(1, Ordering::Relaxed);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, posts)
    }

    #[tokio::test]
    async fn a_redirect_to_a_portal_is_not_a_delivery() {
        use axum::http::{header, StatusCode};
        // a captive portal: the write is redirected to a login page that answers 200
        let app = axum::Router::new()
            .route("/write", axum::routing::any(|| async { (StatusCode::FOUND, [(header::LOCATION, "/login")], "") }))
            .route("/login", axum::routing::get(|| async { "<html>please log in</html>" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("s.db"), Default::default()).unwrap());
        store.append(&[reading(Some(1.0), Quality::Good)]).unwrap();
        let mut c =
            cfg(InfluxApi::V1 { database: "db".into(), retention_policy: None, username: None, password: None });
        c.url = url;
        c.flush_interval = Duration::from_millis(10);
        let health = Arc::new(SinkHealth::new("influxdb:0", "influxdb:0"));
        let cancel = CancellationToken::new();
        let (_tx, notify) = watch::channel(0);
        let task = tokio::spawn(run(c, store.clone(), notify, health.clone(), cancel.clone(), Duration::from_secs(1)));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while health.error().is_none() {
            assert!(std::time::Instant::now() < deadline, "no refusal reported");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let e = health.error().unwrap_or_default();
        assert!(e.contains("302") && e.contains("to /login") && e.contains("a redirect is not a delivery"), "{e}");
        assert_eq!(store.cursor("influxdb:0").unwrap(), 0, "nothing counted as delivered");
        assert_eq!(store.stats().unwrap().set_aside, 0, "nor set aside: it is sent again when the URL is right");
        cancel.cancel();
        let _ = task.await;
        // and a proxy's page with 200 is no delivery either
        let v1 = cfg(InfluxApi::V1 { database: "db".into(), retention_policy: None, username: None, password: None });
        assert!(matches!(judge(200, "<html>login</html>", &v1), Verdict::Blocked(_)));
        assert_eq!(judge(200, "", &v1), Verdict::Delivered);
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_cannot_record_delivery_is_waited_for_not_hammered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("s.db"), Default::default()).unwrap());
        store.append(&[reading(Some(1.0), Quality::Good)]).unwrap();
        let (url, posts) = counting_receiver().await;
        let mut c =
            cfg(InfluxApi::V1 { database: "db".into(), retention_policy: None, username: None, password: None });
        c.url = url;
        c.flush_interval = Duration::from_millis(10);
        // the cursor can be read, not moved (a read-only or failing disk)
        store.set_query_only(true).unwrap();
        let health = Arc::new(SinkHealth::new("influxdb:0", "influxdb:0"));
        let cancel = CancellationToken::new();
        let (_tx, notify) = watch::channel(0);
        let task = tokio::spawn(run(c, store.clone(), notify, health.clone(), cancel.clone(), Duration::from_secs(1)));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        // delivered, not recorded: posted again after pauses of 1 and 2 s (then 4, 8 …),
        // not as fast as the receiver answers
        let n = posts.load(Ordering::Relaxed);
        assert!((1..=3).contains(&n), "{n} posts in 2.5 s (of the paused clock)");
        assert_eq!(store.cursor("influxdb:0").unwrap(), 0);
        assert!(health.error().is_some_and(|e| e.contains("readonly")), "{:?}", health.error());
        // the store takes writes again: at the next try the cursor moves, and posts stop
        store.set_query_only(false).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while store.cursor("influxdb:0").unwrap() != 1 {
            assert!(tokio::time::Instant::now() < deadline, "the cursor never moved");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let after = posts.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(posts.load(Ordering::Relaxed), after);
        cancel.cancel();
        task.await.unwrap();
    }

    #[test]
    fn line_protocol_escapes_tags_and_keeps_floats() {
        let mut s = String::new();
        line(&reading(Some(12.0), Quality::Good), Precision::Nanoseconds, &mut s);
        assert_eq!(
            s,
            "water,site=north\\ campus,zone=z\\,1,device=inlet\\=main,point=flow_rate,quantity=water_flow,unit=m3/h value=12.0,quality=\"good\" 1764000000123000000\n"
        );
        let mut s = String::new();
        line(&reading(None, Quality::Exception(2)), Precision::Seconds, &mut s);
        assert!(s.ends_with(" quality=\"exception_02\" 1764000000\n"), "{s}");
        let mut s = String::new();
        line(&reading(Some(1e21), Quality::Good), Precision::Seconds, &mut s);
        assert!(s.contains("value=1e21,"), "{s}");
    }

    #[test]
    fn urls_for_both_apis() {
        let v1 = cfg(InfluxApi::V1 {
            database: "meters".into(),
            retention_policy: Some("one year".into()),
            username: None,
            password: None,
        });
        assert_eq!(write_url(&v1), "http://127.0.0.1:8086/write?db=meters&precision=ns&rp=one%20year");
        let v2 = cfg(InfluxApi::V2 { org: "campus".into(), bucket: "m&m".into(), token: None });
        assert_eq!(write_url(&v2), "http://127.0.0.1:8086/api/v2/write?org=campus&bucket=m%26m&precision=ns");
    }

    #[test]
    fn status_codes_are_judged_by_what_a_retry_can_change() {
        let v1 =
            cfg(InfluxApi::V1 { database: "meters".into(), retention_policy: None, username: None, password: None });
        assert_eq!(judge(204, "", &v1), Verdict::Delivered);
        assert!(matches!(judge(503, "busy", &v1), Verdict::Retry(_)));
        for retry in [408, 425, 429] {
            assert!(matches!(judge(retry, "", &v1), Verdict::Retry(_)), "{retry}");
        }
        match judge(404, "database not found", &v1) {
            Verdict::Blocked(m) => assert!(m.contains("database `meters` does not exist"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(judge(401, "", &v1), Verdict::Blocked(_)));
        match judge(400, "field type conflict", &v1) {
            Verdict::Refused(m) => assert!(m.contains("field type conflict")),
            other => panic!("{other:?}"),
        }
        assert_eq!(judge(413, "", &v1), Verdict::TooLarge);
    }
}

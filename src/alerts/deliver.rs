//! Durable delivery of alert changes. Each alert row remembers, per destination, the
//! change it last confirmed (`mqtt_ms`, `webhook_ms`, `influx_ms` against `updated_ms`):
//! a pass sends every unconfirmed change and records only what was confirmed (PubAck,
//! 2xx), so an alert raised during an outage is delivered when the receiver is back.
//!
//! - MQTT: `{prefix}/{site}/alerts/{zone}/{rule}` (plus `/{device}` for rules about a
//!   device, so that two devices of a zone do not overwrite each other), QoS 1, the
//!   active state retained; on clearing, the cleared state is published and the retained
//!   message removed.
//! - Webhook: a JSON POST, retried on the next pass until a 2xx; `generic` (the alert as
//!   JSON), `wecom` and `dingtalk` (the markdown message their group robots take).
//! - InfluxDB: measurement `alerts`, one point when raised (at its start) and one when
//!   cleared (at its end), usable as Grafana annotations.

use std::sync::Arc;
use std::time::Duration;

use super::group;
pub use super::message::{json, state, Speaker};
use crate::line_protocol::Line;
use crate::secret::Secret;
use crate::sinks::influx::config::InfluxConfig;
use crate::sinks::mqtt::config::MqttConfig;
use crate::store::{AlertRow, Destination, Store};

pub fn topic(prefix: &str, site: &str, a: &AlertRow) -> String {
    match &a.device {
        Some(d) => format!("{prefix}/{site}/alerts/{}/{}/{d}", a.zone, a.rule),
        None => format!("{prefix}/{site}/alerts/{}/{}", a.zone, a.rule),
    }
}

/// What the webhook receiver takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The alert as JSON.
    Generic,
    /// A WeCom (企业微信) group robot's markdown message.
    Wecom,
    /// A DingTalk (钉钉) group robot's markdown message.
    Dingtalk,
}

impl WebhookFormat {
    pub fn parse(s: &str) -> Option<WebhookFormat> {
        match s {
            "generic" => Some(WebhookFormat::Generic),
            "wecom" => Some(WebhookFormat::Wecom),
            "dingtalk" => Some(WebhookFormat::Dingtalk),
            _ => None,
        }
    }
}

/// The webhook body for `format`: the robot's message in the site's language, or the
/// alert's JSON.
pub fn webhook_body(a: &AlertRow, s: Speaker<'_>, format: WebhookFormat) -> serde_json::Value {
    let (title, text) = super::message::robot(a, s, chrono::Utc::now().timestamp_millis());
    format.message(&title, &text, || json(a, s))
}

impl WebhookFormat {
    /// A message in this format: the group robots' markdown (WeCom takes the text,
    /// DingTalk a title and the text), or the `generic` JSON. Alerts and the monthly
    /// announcement both go through it.
    pub fn message(self, title: &str, text: &str, generic: impl FnOnce() -> serde_json::Value) -> serde_json::Value {
        match self {
            WebhookFormat::Wecom => serde_json::json!({ "msgtype": "markdown", "markdown": { "content": text } }),
            WebhookFormat::Dingtalk => {
                serde_json::json!({ "msgtype": "markdown", "markdown": { "title": title, "text": text } })
            }
            WebhookFormat::Generic => generic(),
        }
    }
}

/// What the alert destinations last said, for `/api/status`, and the webhook's backoff.
#[derive(Debug, Default)]
pub struct DeliveryHealth {
    inner: std::sync::Mutex<HealthInner>,
}

#[derive(Debug, Default)]
struct HealthInner {
    /// Destination → why its last attempt failed (absent once one succeeds).
    errors: std::collections::BTreeMap<&'static str, String>,
    webhook_failures: u32,
    webhook_next: Option<std::time::Instant>,
}

impl DeliveryHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, HealthInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Destination → the reason its last attempt failed.
    pub fn errors(&self) -> std::collections::BTreeMap<&'static str, String> {
        self.lock().errors.clone()
    }

    /// Seconds until the webhook is tried again, while it backs off.
    pub fn webhook_retry_in(&self) -> Option<u64> {
        let next = self.lock().webhook_next?;
        Some(next.saturating_duration_since(std::time::Instant::now()).as_secs())
    }

    fn failed(&self, to: &'static str, why: String) {
        self.lock().errors.insert(to, why);
    }

    fn succeeded(&self, to: &'static str) {
        self.lock().errors.remove(to);
    }
}

/// Backoff of the webhook after `n` refusals in a row: the alert pass interval, doubled
/// each time, at most an hour (5, 10, 20, 40 minutes, then hourly, by default).
pub fn webhook_backoff(n: u32, every: Duration) -> Duration {
    every.saturating_mul(1 << n.saturating_sub(1).min(10)).min(Duration::from_secs(3600))
}

/// Whether a group robot took the message: WeCom and DingTalk answer HTTP 200 with
/// `errcode` ≠ 0 when they refuse one (rate limit, keyword or signature rules).
pub fn robot_verdict(format: WebhookFormat, body: &str) -> Result<(), String> {
    if format == WebhookFormat::Generic {
        return Ok(());
    }
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|_| format!("the robot's answer is not JSON: {:.120}", body))?;
    match v.get("errcode").and_then(serde_json::Value::as_i64) {
        Some(0) => Ok(()),
        Some(code) => Err(format!(
            "the robot refused the message: errcode {code} ({})",
            v.get("errmsg").and_then(serde_json::Value::as_str).unwrap_or("no errmsg")
        )),
        None => Err(format!("the robot's answer has no errcode: {:.120}", body)),
    }
}

/// Posts one message to the webhook: `Ok` when it was taken (a 2xx, and for the robots
/// `errcode` 0). The error never shows the URL (it carries the robot's key).
pub async fn post(
    http: &reqwest::Client,
    url: &Secret,
    body: &serde_json::Value,
    format: WebhookFormat,
) -> Result<(), String> {
    let answer = http.post(url.expose()).header("Content-Type", "application/json").body(body.to_string()).send().await;
    // what the receiver says is shown on /healthz: bounded, one line, and without the key
    let safe = |s: &str| crate::untrusted::shown(&crate::secret::without_url_secrets(s, url.expose()), 200);
    match answer {
        Err(e) => Err(format!("cannot reach the webhook: {}", e.without_url())),
        Ok(r) if r.status().is_redirection() => Err(format!(
            "the webhook answered HTTP {} redirecting to {}: a redirect is not a delivery; configure the URL that takes the message",
            r.status(),
            safe(r.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("(no Location)"))
        )),
        Ok(r) if !r.status().is_success() => Err(format!("the webhook answered HTTP {}", r.status())),
        Ok(r) => {
            let body = r.text().await.unwrap_or_default();
            let body = crate::secret::without_url_secrets(&body, url.expose());
            robot_verdict(format, &body).map_err(|e| crate::untrusted::shown(&e, 200))
        }
    }
}

/// The HTTP client of every robot message (alerts and the monthly announcement). It
/// follows no redirect: a captive portal's 302 would turn the POST into a GET of its
/// login page, and that page's 200 is not a robot taking the message.
pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).redirect(reqwest::redirect::Policy::none()).build()
}

/// Sends unconfirmed changes to the webhook; returns how many were confirmed. A refusal
/// (an HTTP error, or a robot's `errcode` ≠ 0) stops the pass, keeps the order, and backs
/// the webhook off; the reason shows in `/api/status`. Messages never show the URL (it
/// carries the robot's key).
pub async fn webhook(
    store: &Arc<Store>,
    site: Speaker<'_>,
    url: &Secret,
    format: WebhookFormat,
    every: Duration,
    health: &DeliveryHealth,
    parent_of: group::ParentOf<'_>,
) -> usize {
    if health.lock().webhook_next.is_some_and(|t| t > std::time::Instant::now()) {
        return 0;
    }
    let Some(pending) = pending(store, Destination::Webhook).await else { return 0 };
    // an alert caused by another (an outage's low pressure, a burst's interruption) is
    // not notified on its own: its root's message is the event
    let Some(earliest) = pending.iter().map(|(a, _)| a.start_ms).min() else { return 0 };
    let from = earliest.saturating_sub(86_400_000);
    let caused = match crate::sinks::on_store(store, move |s| s.alerts_between(from, i64::MAX)).await {
        Ok(around) => group::causes(&around, parent_of),
        Err(e) => {
            tracing::error!(error = %e, "cannot read alerts to group; notifying each on its own");
            Default::default()
        }
    };
    let http = match client() {
        Ok(c) => c,
        Err(e) => {
            health.failed("webhook", format!("HTTP client: {e}"));
            return 0;
        }
    };
    let mut n = 0;
    for (a, updated) in pending {
        if let Some(root) = caused.get(&a.id) {
            tracing::debug!(alert = a.id, root, "caused by another alert: not notified on its own");
            record_delivered(store, Destination::Webhook, a.id, updated).await;
            continue;
        }
        let verdict = post(&http, url, &webhook_body(&a, site, format), format).await;
        if let Err(why) = verdict {
            let mut h = health.lock();
            h.webhook_failures += 1;
            let wait = webhook_backoff(h.webhook_failures, every);
            // just under the wait, so that the pass that falls due at its end goes ahead
            h.webhook_next = Some(std::time::Instant::now() + wait.mul_f64(0.9));
            h.errors.insert("webhook", why.clone());
            drop(h);
            tracing::warn!(alert = a.id, reason = %why, retry_in_s = wait.as_secs(), "webhook did not take the alert");
            break; // keep the order: later changes wait for earlier ones
        }
        {
            let mut h = health.lock();
            h.webhook_failures = 0;
            h.webhook_next = None;
        }
        health.succeeded("webhook");
        if record_delivered(store, Destination::Webhook, a.id, updated).await {
            n += 1;
        }
    }
    n
}

/// Sends unconfirmed changes to every InfluxDB as `alerts` events; a change counts as
/// delivered when all of them took it (a repeat is harmless: same series and time).
pub async fn influx(store: &Arc<Store>, site: Speaker<'_>, cfgs: &[InfluxConfig], health: &DeliveryHealth) -> usize {
    let Some(pending) = pending(store, Destination::Influx).await else { return 0 };
    if pending.is_empty() {
        return 0;
    }
    let mut body = String::new();
    for (a, _) in &pending {
        let at = i128::from(a.end_ms.unwrap_or(a.start_ms)) * 1_000_000;
        let mut l = Line::new(&mut body, "alerts")
            .tag("site", site.site)
            .tag("zone", &a.zone)
            .tag("rule", a.rule.as_str())
            .tag("severity", a.severity.as_str())
            .int("id", a.id)
            .string("state", state(a))
            .string("subject", &a.subject)
            .string("evidence", &super::said::evidence(a, site.voice));
        if let Some(loss) = a.loss_per_day {
            l = l.float("loss_m3_per_day", loss);
        }
        l.at(at);
    }
    for cfg in cfgs {
        if let Err(e) = crate::sinks::influx::write_once(cfg, &body).await {
            tracing::warn!(error = %e, "cannot write alerts to InfluxDB; retrying on the next pass");
            health.failed("influx", e.to_string());
            return 0;
        }
    }
    health.succeeded("influx");
    let mut recorded = 0;
    for (a, u) in &pending {
        if record_delivered(store, Destination::Influx, a.id, *u).await {
            recorded += 1;
        }
    }
    recorded
}

/// Sends unconfirmed changes over MQTT, one PubAck at a time (alerts are few).
pub async fn mqtt(store: &Arc<Store>, site: Speaker<'_>, cfg: &MqttConfig, health: &DeliveryHealth) -> usize {
    let Some(pending) = pending(store, Destination::Mqtt).await else { return 0 };
    if pending.is_empty() {
        return 0;
    }
    let mut conn = match crate::sinks::mqtt::OneShot::connect(cfg, "alerts").await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot deliver alerts over MQTT");
            health.failed("mqtt", e.to_string());
            return 0;
        }
    };
    let mut n = 0;
    for (a, updated) in pending {
        let topic = topic(&cfg.prefix, site.site, &a);
        let payload = json(&a, site).to_string();
        let mut messages = vec![(payload, a.end_ms.is_none())];
        if a.end_ms.is_some() {
            messages.push((String::new(), true)); // remove the retained active state
        }
        let mut ok = true;
        for (p, retain) in messages {
            if !conn.publish(&topic, p, retain).await {
                ok = false;
                break;
            }
        }
        if !ok {
            tracing::warn!(alert = a.id, "MQTT did not confirm the alert; retrying on the next pass");
            health.failed("mqtt", "the broker did not confirm an alert within 5 s".into());
            break;
        }
        health.succeeded("mqtt");
        if record_delivered(store, Destination::Mqtt, a.id, updated).await {
            n += 1;
        }
    }
    conn.close().await;
    n
}

/// Records a confirmation (off the async thread: it waits on the store's lock); a store
/// error is logged and the change is sent again on the next pass (receivers take
/// repeats: same topic, same series and time).
async fn record_delivered(store: &Arc<Store>, to: Destination, id: i64, updated_ms: i64) -> bool {
    match crate::sinks::on_store(store, move |s| s.alert_delivered(to, id, updated_ms)).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, alert = id, "cannot record an alert's delivery");
            false
        }
    }
}

/// The changes `to` has not confirmed; a store error is logged and the pass skipped.
async fn pending(store: &Arc<Store>, to: Destination) -> Option<Vec<(AlertRow, i64)>> {
    crate::sinks::on_store(store, move |s| s.undelivered_alerts(to))
        .await
        .map_err(|e| tracing::error!(error = %e, "cannot read alerts to deliver"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AlertRule;
    use std::sync::Arc;

    #[tokio::test]
    async fn an_outages_consequences_are_not_notified_on_their_own() {
        let posts = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let p = posts.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let p = p.clone();
                async move {
                    p.lock().unwrap().push(body);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("s.db"), Default::default()).unwrap());
        let row = |rule: AlertRule, start_min: i64| AlertRow {
            id: 0,
            rule,
            subject: "east".into(),
            zone: "east".into(),
            device: None,
            severity: crate::model::Severity::Critical,
            start_ms: 1_700_000_000_000 + start_min * 60_000,
            end_ms: None,
            evidence: format!("{rule}"),
            loss_per_day: None,
            loss_fen_per_day: None,
            acked_by: None,
            acked_ms: None,
        };
        for (rule, at) in
            [(AlertRule::SupplyInterruption, 0), (AlertRule::PressureLow, 1), (AlertRule::ConsumptionAnomaly, 60)]
        {
            store.upsert_alert(&row(rule, at)).unwrap();
        }
        let url = Secret::new(format!("http://{addr}/hook"));
        let health = DeliveryHealth::default();
        let s = Speaker {
            site: "s",
            voice: super::super::said::Voice::new(crate::lang::Lang::En, chrono_tz::UTC),
            page: None,
        };
        webhook(&store, s, &url, WebhookFormat::Generic, Duration::from_secs(1), &health, &|_| None).await;
        let got = posts.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "one event, one notification: {got:?}");
        assert!(got[0].contains("supply_interruption"), "{got:?}");
        assert!(
            store.undelivered_alerts(Destination::Webhook).unwrap().is_empty(),
            "the consequences count as delivered"
        );
    }

    #[tokio::test]
    async fn a_redirect_is_not_a_delivery_and_an_echoed_key_never_shows() {
        use axum::http::{header, StatusCode, Uri};
        let app = axum::Router::new()
            .route(
                "/portal",
                axum::routing::any(|| async {
                    (StatusCode::FOUND, [(header::LOCATION, "http://portal.lan/login?next=/send?key=SECRETKEY123")], "")
                }),
            )
            .route(
                "/send",
                axum::routing::post(|uri: Uri| async move {
                    format!("{{\"errcode\":93000,\"errmsg\":\"invalid webhook url {uri}\"}}")
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = client().unwrap();
        let body = serde_json::json!({"msgtype": "text"});
        let url = Secret::new(format!("http://{addr}/portal?key=SECRETKEY123"));
        let e = post(&http, &url, &body, WebhookFormat::Wecom).await.unwrap_err();
        assert!(e.contains("302") && e.contains("a redirect is not a delivery"), "{e}");
        assert!(!e.contains("SECRETKEY123"), "{e}");
        let url = Secret::new(format!("http://{addr}/send?key=SECRETKEY123"));
        let e = post(&http, &url, &body, WebhookFormat::Wecom).await.unwrap_err();
        assert!(e.contains("errcode 93000"), "{e}");
        assert!(!e.contains("SECRETKEY123"), "{e}");
    }

    #[test]
    fn robots_refuse_with_http_200_and_an_errcode() {
        assert_eq!(robot_verdict(WebhookFormat::Wecom, r#"{"errcode":0,"errmsg":"ok"}"#), Ok(()));
        assert_eq!(robot_verdict(WebhookFormat::Dingtalk, r#"{"errcode":0,"errmsg":"ok"}"#), Ok(()));
        let e = robot_verdict(WebhookFormat::Wecom, r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#);
        assert_eq!(e, Err("the robot refused the message: errcode 45009 (api freq out of limit)".into()));
        let e = robot_verdict(WebhookFormat::Dingtalk, r#"{"errcode":310000,"errmsg":"keywords not in content"}"#);
        assert!(e.unwrap_err().contains("310000"));
        assert!(robot_verdict(WebhookFormat::Wecom, "").is_err(), "an empty answer is no acceptance");
        assert!(robot_verdict(WebhookFormat::Wecom, r#"{"ok":true}"#).is_err());
        assert_eq!(robot_verdict(WebhookFormat::Generic, ""), Ok(()), "a generic receiver's 2xx is enough");
    }

    #[test]
    fn the_webhook_backs_off_from_the_pass_interval_to_an_hour() {
        let five = Duration::from_secs(300);
        let waits: Vec<u64> = (1..=6).map(|n| webhook_backoff(n, five).as_secs() / 60).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(webhook_backoff(1, Duration::from_secs(1)), Duration::from_secs(1));
    }
}

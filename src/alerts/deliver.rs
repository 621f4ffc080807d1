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

use std::time::Duration;

use chrono::{TimeZone, Utc};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};

use crate::config::delivery::{InfluxConfig, MqttConfig};
use crate::store::{AlertRow, Store};

fn ts(ms: Option<i64>) -> Option<String> {
    ms.and_then(|m| Utc.timestamp_millis_opt(m).single()).map(|t| t.to_rfc3339())
}

pub fn state(a: &AlertRow) -> &'static str {
    if a.end_ms.is_some() {
        "cleared"
    } else {
        "active"
    }
}

/// The alert as the JSON every destination carries.
pub fn json(a: &AlertRow, site: &str) -> serde_json::Value {
    serde_json::json!({
        "id": a.id, "site": site, "zone": a.zone, "rule": a.rule, "subject": a.subject, "device": a.device,
        "severity": a.severity, "state": state(a), "start": ts(Some(a.start_ms)), "end": ts(a.end_ms),
        "evidence": a.evidence, "loss_m3_per_day": a.loss_per_day,
        "loss_yuan_per_day": a.loss_fen_per_day.map(|f| f as f64 / 100.0), "acked_by": a.acked_by,
    })
}

pub fn topic(prefix: &str, site: &str, a: &AlertRow) -> String {
    match &a.device {
        Some(d) => format!("{prefix}/{site}/alerts/{}/{}/{d}", a.zone, a.rule),
        None => format!("{prefix}/{site}/alerts/{}/{}", a.zone, a.rule),
    }
}

/// The webhook body for `format` (generic | wecom | dingtalk).
pub fn webhook_body(a: &AlertRow, site: &str, format: &str) -> serde_json::Value {
    let title = format!("[{}] {} {} — {}", a.severity, a.rule, state(a), a.zone);
    let text = format!(
        "### {title}\n- site: {site}\n- subject: {}\n- since: {}\n{}- {}\n",
        a.subject,
        ts(Some(a.start_ms)).unwrap_or_default(),
        ts(a.end_ms).map(|e| format!("- cleared: {e}\n")).unwrap_or_default(),
        a.evidence
    );
    match format {
        "wecom" => serde_json::json!({ "msgtype": "markdown", "markdown": { "content": text } }),
        "dingtalk" => serde_json::json!({ "msgtype": "markdown", "markdown": { "title": title, "text": text } }),
        _ => json(a, site),
    }
}

/// Sends unconfirmed changes to the webhook; returns how many were confirmed.
pub async fn webhook(store: &Store, site: &str, url: &str, format: &str) -> usize {
    let Ok(pending) = store.undelivered_alerts("webhook") else { return 0 };
    let Ok(http) = reqwest::Client::builder().timeout(Duration::from_secs(10)).build() else { return 0 };
    let mut n = 0;
    for (a, updated) in pending {
        let ok = http
            .post(url)
            .header("Content-Type", "application/json")
            .body(webhook_body(&a, site, format).to_string())
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if !ok {
            tracing::warn!(alert = a.id, "webhook did not take the alert; retrying on the next pass");
            break; // keep the order: later changes wait for earlier ones
        }
        if store.alert_delivered("webhook", a.id, updated).is_ok() {
            n += 1;
        }
    }
    n
}

/// Sends unconfirmed changes to every InfluxDB as `alerts` events; a change counts as
/// delivered when all of them took it (a repeat is harmless: same series and time).
pub async fn influx(store: &Store, site: &str, cfgs: &[InfluxConfig]) -> usize {
    let Ok(pending) = store.undelivered_alerts("influx") else { return 0 };
    if pending.is_empty() {
        return 0;
    }
    let esc = |v: &str| v.replace('\\', "\\\\").replace(',', "\\,").replace('=', "\\=").replace(' ', "\\ ");
    let quote = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let mut body = String::new();
    for (a, _) in &pending {
        let at = a.end_ms.unwrap_or(a.start_ms) as i128 * 1_000_000;
        body.push_str(&format!(
            "alerts,site={},zone={},rule={},severity={} id={}i,state=\"{}\",subject=\"{}\",evidence=\"{}\"{} {at}\n",
            esc(site),
            esc(&a.zone),
            esc(&a.rule),
            esc(&a.severity),
            a.id,
            state(a),
            quote(&a.subject),
            quote(&a.evidence),
            a.loss_per_day.map(|l| format!(",loss_m3_per_day={l:?}")).unwrap_or_default()
        ));
    }
    for cfg in cfgs {
        if let Err(e) = crate::sinks::influx::write_once(cfg, &body).await {
            tracing::warn!(error = %e, "cannot write alerts to InfluxDB; retrying on the next pass");
            return 0;
        }
    }
    pending.iter().filter(|(a, u)| store.alert_delivered("influx", a.id, *u).is_ok()).count()
}

/// Sends unconfirmed changes over MQTT, one PubAck at a time (alerts are few).
pub async fn mqtt(store: &Store, site: &str, cfg: &MqttConfig) -> usize {
    let Ok(pending) = store.undelivered_alerts("mqtt") else { return 0 };
    if pending.is_empty() {
        return 0;
    }
    let mut opts = MqttOptions::new(format!("{}-alerts", cfg.client_id), cfg.host.clone(), cfg.port);
    opts.set_keep_alive(Duration::from_secs(30));
    if let (Some(u), p) = (&cfg.username, &cfg.password) {
        opts.set_credentials(u.clone(), p.as_ref().map(|p| p.expose().to_string()).unwrap_or_default());
    }
    if cfg.tls {
        let ca = cfg.ca_file.as_ref().and_then(|f| std::fs::read(f).ok()).unwrap_or_default();
        let client_auth =
            cfg.client_cert.as_ref().and_then(|(c, k)| Some((std::fs::read(c).ok()?, std::fs::read(k).ok()?)));
        opts.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Simple { ca, alpn: None, client_auth }));
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let mut n = 0;
    for (a, updated) in pending {
        let topic = topic(&cfg.prefix, site, &a);
        let payload = json(&a, site).to_string();
        let mut messages = vec![(payload, a.end_ms.is_none())];
        if a.end_ms.is_some() {
            messages.push((String::new(), true)); // remove the retained active state
        }
        let mut ok = true;
        for (p, retain) in messages {
            if client.publish(topic.clone(), QoS::AtLeastOnce, retain, p).await.is_err() {
                ok = false;
                break;
            }
            let acked = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Incoming::PubAck(_))) => return true,
                        Ok(_) => continue,
                        Err(_) => return false,
                    }
                }
            })
            .await
            .unwrap_or(false);
            if !acked {
                ok = false;
                break;
            }
        }
        if !ok {
            tracing::warn!(alert = a.id, "MQTT did not confirm the alert; retrying on the next pass");
            break;
        }
        if store.alert_delivered("mqtt", a.id, updated).is_ok() {
            n += 1;
        }
    }
    let _ = client.disconnect().await;
    n
}

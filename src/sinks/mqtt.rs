//! The MQTT sink: readings from the store to a broker, QoS 1, advancing the store cursor
//! only on PubAck.
//!
//! rumqttc's `publish` only queues a packet; the packet id is assigned when the event
//! loop sends it (`Outgoing::Publish(pkid)`, in queue order), and delivery is the matching
//! `Incoming::PubAck(pkid)`. So the sink keeps a FIFO of queued sequence numbers, maps
//! each to its packet id when it goes out, and marks it delivered on its PubAck. The
//! cursor moves to just below the oldest unacknowledged reading.
//!
//! Each connection gets a fresh client and event loop: a new session forgets unacked
//! packets, so after any connection error the sink starts again from its cursor
//! (at-least-once; a repeat is harmless, same series and timestamp). At most `window`
//! publishes are in flight at once, so throughput does not collapse to one message per
//! round trip.
//!
//! Topics: readings on `{prefix}/{site}/{zone}/{device}/{point}` (JSON: value, unit,
//! quantity, quality, ts); a retained `online` on `{prefix}/{site}/status` after each
//! connect, and `offline` as the last will.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, QoS, TlsConfiguration, Transport,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{retry_delay, SinkHealth};
use crate::config::delivery::MqttConfig;
use crate::model::Reading;
use crate::store::Store;

pub const CONSUMER: &str = "mqtt";

pub fn topic(prefix: &str, r: &Reading) -> String {
    format!("{prefix}/{}/{}/{}/{}", r.site, r.zone, r.device, r.point)
}

pub fn payload(r: &Reading) -> String {
    serde_json::json!({
        "value": r.value,
        "unit": &*r.unit,
        "quantity": r.quantity.as_str(),
        "quality": r.quality.code(),
        "ts": r.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
    .to_string()
}

pub fn status_topic(cfg: &MqttConfig, site: &str) -> String {
    format!("{}/{site}/status", cfg.prefix)
}

/// The connection options every MQTT client of the gateway uses (the reading sink and
/// the alert delivery): address, keep-alive, credentials and TLS. A CA or client
/// certificate file that cannot be read is an error, never an empty trust store.
pub fn client_options(cfg: &MqttConfig, client_id: String) -> std::io::Result<MqttOptions> {
    let mut o = MqttOptions::new(client_id, cfg.host.clone(), cfg.port);
    o.set_keep_alive(cfg.keep_alive);
    if let (Some(u), p) = (&cfg.username, &cfg.password) {
        o.set_credentials(u.clone(), p.as_ref().map(|p| p.expose().to_string()).unwrap_or_default());
    }
    if cfg.tls {
        let read = |f: &std::path::Path| {
            std::fs::read(f).map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {}: {e}", f.display())))
        };
        let ca = match &cfg.ca_file {
            Some(f) => read(f)?,
            None => Vec::new(),
        };
        let client_auth = match &cfg.client_cert {
            Some((c, k)) => Some((read(c)?, read(k)?)),
            None => None,
        };
        if ca.is_empty() {
            return Err(std::io::Error::other("mqtts:// needs ca_file (the CA that signed the broker's certificate)"));
        }
        o.set_transport(Transport::Tls(TlsConfiguration::Simple { ca, alpn: None, client_auth }));
    }
    Ok(o)
}

/// A short-lived connection for a few messages (alert changes, ledger announcements),
/// each confirmed by its PubAck before the next is sent.
pub struct OneShot {
    client: rumqttc::AsyncClient,
    eventloop: EventLoop,
}

impl OneShot {
    /// `suffix` keeps its client id apart from the reading sink's.
    pub fn connect(cfg: &MqttConfig, suffix: &str) -> std::io::Result<OneShot> {
        let opts = client_options(cfg, format!("{}-{suffix}", cfg.client_id))?;
        let (client, eventloop) = rumqttc::AsyncClient::new(opts, 16);
        Ok(OneShot { client, eventloop })
    }

    /// Publishes at QoS 1 and waits up to 5 s for the broker's PubAck.
    pub async fn publish(&mut self, topic: &str, payload: String, retain: bool) -> bool {
        if self.client.publish(topic, QoS::AtLeastOnce, retain, payload).await.is_err() {
            return false;
        }
        let eventloop = &mut self.eventloop;
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::PubAck(_))) => return true,
                    Ok(_) => continue,
                    Err(_) => return false,
                }
            }
        })
        .await
        .unwrap_or(false)
    }

    pub async fn close(self) {
        let _ = self.client.disconnect().await;
    }
}

fn options(cfg: &MqttConfig, site: &str) -> std::io::Result<MqttOptions> {
    let mut o = client_options(cfg, cfg.client_id.clone())?;
    o.set_clean_session(true);
    o.set_inflight(u16::try_from(cfg.window.max(1)).unwrap_or(u16::MAX));
    o.set_last_will(LastWill::new(status_topic(cfg, site), "offline", QoS::AtLeastOnce, true));
    Ok(o)
}

/// What happened on the connection, forwarded from the task that owns the event loop.
enum LoopEvent {
    Connected,
    Sent(u16),
    Acked(u16),
    Failed(String),
}

async fn drive(mut eventloop: EventLoop, tx: mpsc::UnboundedSender<LoopEvent>) {
    loop {
        let ev = match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => LoopEvent::Connected,
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => LoopEvent::Sent(pkid),
            Ok(Event::Incoming(Incoming::PubAck(ack))) => LoopEvent::Acked(ack.pkid),
            Ok(_) => continue,
            Err(e) => {
                let _ = tx.send(LoopEvent::Failed(e.to_string()));
                return;
            }
        };
        if tx.send(ev).is_err() {
            return;
        }
    }
}

/// Delivery state of one connection.
#[derive(Default)]
struct Session {
    /// Sequence numbers queued to the client, waiting for their packet id (-1 = status).
    queued: VecDeque<i64>,
    inflight: HashMap<u16, i64>,
    /// Published in this session and not yet acknowledged.
    outstanding: BTreeSet<i64>,
    /// Highest sequence number queued in this session.
    sent_up_to: i64,
}

impl Session {
    /// The cursor the acknowledgements so far allow.
    fn confirmed(&self) -> i64 {
        match self.outstanding.first() {
            Some(first) => first - 1,
            None => self.sent_up_to,
        }
    }
}

/// Runs the sink until `cancel`; on cancel, waits up to `drain` for in-flight publishes.
pub async fn run(
    cfg: MqttConfig,
    site: Arc<str>,
    store: Arc<Store>,
    mut notify: watch::Receiver<i64>,
    health: Arc<SinkHealth>,
    cancel: CancellationToken,
    drain: Duration,
) {
    let mut attempt = 0u32;
    let status = status_topic(&cfg, &site);
    'connection: loop {
        if cancel.is_cancelled() {
            return;
        }
        let opts = match options(&cfg, &site) {
            Ok(o) => o,
            Err(e) => {
                health.failure(format!("MQTT TLS files: {e}"));
                tracing::error!(error = %e, "MQTT sink cannot start");
                tokio::select! { () = cancel.cancelled() => return, () = tokio::time::sleep(Duration::from_secs(30)) => continue }
            }
        };
        let (client, eventloop) = AsyncClient::new(opts, cfg.window * 2 + 8);
        let (tx, mut events) = mpsc::unbounded_channel();
        let driver = tokio::spawn(drive(eventloop, tx));
        let start = match store.cursor(CONSUMER) {
            Ok(c) => c,
            Err(e) => {
                health.failure(e.to_string());
                driver.abort();
                tokio::select! { () = cancel.cancelled() => return, () = tokio::time::sleep(Duration::from_secs(5)) => continue }
            }
        };
        let mut s = Session { sent_up_to: start, ..Default::default() };
        let mut connected = false;
        let mut saved = start;
        let mut draining: Option<tokio::time::Instant> = None;
        loop {
            // Fill the window.
            if connected && draining.is_none() && s.outstanding.len() < cfg.window {
                let want = cfg.window - s.outstanding.len();
                match store.read_after(s.sent_up_to, want) {
                    Ok(batch) => {
                        for st in batch {
                            let qos = if cfg.qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
                            if client
                                .try_publish(topic(&cfg.prefix, &st.reading), qos, cfg.retain, payload(&st.reading))
                                .is_err()
                            {
                                break;
                            }
                            s.queued.push_back(st.seq);
                            s.outstanding.insert(st.seq);
                            s.sent_up_to = st.seq;
                        }
                    }
                    Err(e) => health.failure(e.to_string()),
                }
            }
            let confirmed = s.confirmed();
            if confirmed > saved {
                if let Err(e) = store.advance(CONSUMER, confirmed) {
                    health.failure(e.to_string());
                } else {
                    health.success((confirmed - saved).max(0) as u64);
                    saved = confirmed;
                }
            }
            if let Some(deadline) = draining {
                if s.outstanding.is_empty() || tokio::time::Instant::now() >= deadline {
                    let _ = client.try_publish(status.clone(), QoS::AtLeastOnce, true, "offline");
                    let _ = tokio::time::timeout(Duration::from_millis(300), client.disconnect()).await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    driver.abort();
                    return;
                }
            }
            tokio::select! {
                () = cancel.cancelled(), if draining.is_none() => {
                    draining = Some(tokio::time::Instant::now() + drain);
                }
                ev = events.recv() => match ev {
                    Some(LoopEvent::Connected) => {
                        connected = true;
                        attempt = 0;
                        health.connected.store(true, Ordering::Relaxed);
                        tracing::info!(broker = %format!("{}:{}", cfg.host, cfg.port), from = s.sent_up_to, "MQTT connected");
                        if client.try_publish(status.clone(), QoS::AtLeastOnce, true, "online").is_ok() {
                            s.queued.push_back(-1);
                        }
                    }
                    Some(LoopEvent::Sent(pkid)) => {
                        if let Some(seq) = s.queued.pop_front() {
                            if pkid == 0 {
                                // QoS 0: sent is all there is.
                                s.outstanding.remove(&seq);
                            } else {
                                s.inflight.insert(pkid, seq);
                            }
                        }
                    }
                    Some(LoopEvent::Acked(pkid)) => {
                        if let Some(seq) = s.inflight.remove(&pkid) {
                            s.outstanding.remove(&seq);
                        }
                    }
                    Some(LoopEvent::Failed(e)) => {
                        health.connected.store(false, Ordering::Relaxed);
                        health.failure(format!("MQTT: {e}"));
                        if connected || attempt == 0 {
                            tracing::warn!(error = %e, "MQTT connection lost; will resend from the last acknowledged reading");
                        }
                        driver.abort();
                        if draining.is_some() {
                            return;
                        }
                        let delay = retry_delay(attempt);
                        attempt += 1;
                        tokio::select! { () = cancel.cancelled() => return, () = tokio::time::sleep(delay) => {} }
                        continue 'connection;
                    }
                    None => {
                        driver.abort();
                        continue 'connection;
                    }
                },
                () = super::changed(&mut notify), if connected && draining.is_none() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Quality, Quantity};
    use chrono::TimeZone;

    #[test]
    fn topic_and_payload() {
        let r = Reading {
            ts: chrono::Utc.timestamp_millis_opt(1_764_000_000_123).unwrap(),
            site: "north".into(),
            zone: "z1".into(),
            device: "inlet".into(),
            point: "flow_rate".into(),
            quantity: Quantity::WaterFlow,
            value: Some(12.5),
            unit: "m3/h".into(),
            quality: Quality::Good,
        };
        assert_eq!(topic("pumphouse", &r), "pumphouse/north/z1/inlet/flow_rate");
        let v: serde_json::Value = serde_json::from_str(&payload(&r)).unwrap();
        assert_eq!(v["value"], 12.5);
        assert_eq!(v["unit"], "m3/h");
        assert_eq!(v["quantity"], "water_flow");
        assert_eq!(v["quality"], "good");
        assert_eq!(v["ts"], "2025-11-24T16:00:00.123Z");
    }

    #[test]
    fn the_cursor_waits_for_the_oldest_unacknowledged() {
        let mut s = Session { sent_up_to: 10, ..Default::default() };
        assert_eq!(s.confirmed(), 10);
        for seq in 11..=15 {
            s.outstanding.insert(seq);
        }
        s.sent_up_to = 15;
        s.outstanding.remove(&12);
        s.outstanding.remove(&13);
        assert_eq!(s.confirmed(), 10, "11 is not acknowledged yet");
        s.outstanding.remove(&11);
        assert_eq!(s.confirmed(), 13);
        s.outstanding.remove(&14);
        s.outstanding.remove(&15);
        assert_eq!(s.confirmed(), 15);
    }
}

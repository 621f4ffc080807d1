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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, QoS, TlsConfiguration, Transport,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{retry_delay, SinkHealth};
pub mod config;

use crate::model::Reading;
use crate::store::{Store, Stored};
use config::{MqttConfig, Payload};

pub const CONSUMER: &str = "mqtt";

pub fn topic(prefix: &str, r: &Reading) -> String {
    format!("{prefix}/{}/{}/{}/{}", r.site, r.zone, r.device, r.point)
}

pub fn payload(r: &Reading) -> String {
    #[derive(serde::Serialize)]
    struct Point<'a> {
        value: Option<f64>,
        unit: &'a str,
        quantity: &'static str,
        quality: &'a str,
        ts: String,
    }
    let quality = r.quality.code();
    let p = Point {
        value: r.value,
        unit: &r.unit,
        quantity: r.quantity.as_str(),
        quality: &quality,
        ts: r.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    // cannot fail: named fields of strings and an optional float (a non-finite one is
    // written as null), so the empty default is never what is sent
    serde_json::to_string(&p).unwrap_or_default()
}

/// The topic of a device's message (`payload = "device"`): `{prefix}/{site}/{zone}/{device}`.
pub fn device_topic(prefix: &str, r: &Reading) -> String {
    format!("{prefix}/{}/{}/{}", r.site, r.zone, r.device)
}

/// One message for one poll of a device (`payload = "device"`):
/// `{"ts", "quality", "points": {name: value, …}}`. `quality` is `good` when every point
/// is, else the first point's code that is not; `bad` then lists each such point's code
/// (a point without a value is `null` in `points`).
pub fn device_payload(readings: &[&Reading]) -> String {
    use std::fmt::Write as _;
    let Some(first) = readings.first() else { return String::new() };
    let quality = readings.iter().find(|r| !r.quality.is_good()).map_or("good".into(), |r| r.quality.code());
    let mut out = String::with_capacity(64 + readings.len() * 24);
    let _ = write!(
        out,
        "{{\"ts\":\"{}\",\"quality\":\"{quality}\",\"points\":{{",
        first.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let name = |out: &mut String, r: &Reading| {
        out.push_str(&serde_json::to_string(&*r.point).unwrap_or_else(|_| "\"?\"".into()));
        out.push(':');
    };
    for (i, r) in readings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        name(&mut out, r);
        // as serde writes a float (1.0, not 1), like the per-point payload
        match r.value.and_then(serde_json::Number::from_f64) {
            Some(v) => {
                let _ = write!(out, "{v}");
            }
            None => out.push_str("null"),
        }
    }
    out.push('}');
    if quality != "good" {
        out.push_str(",\"bad\":{");
        for (i, r) in readings.iter().filter(|r| !r.quality.is_good()).enumerate() {
            if i > 0 {
                out.push(',');
            }
            name(&mut out, r);
            let _ = write!(out, "\"{}\"", r.quality.code());
        }
        out.push('}');
    }
    out.push('}');
    out
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
    /// `suffix` keeps its client id apart from the reading sink's. The TLS files are read
    /// on a blocking thread: a slow disk must not hold up the pollers sharing the runtime.
    pub async fn connect(cfg: &MqttConfig, suffix: &str) -> std::io::Result<OneShot> {
        let (cfg, id) = (cfg.clone(), format!("{}-{suffix}", cfg.client_id));
        let opts =
            tokio::task::spawn_blocking(move || client_options(&cfg, id)).await.map_err(std::io::Error::other)??;
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
/// What the sink has handed to the client and what the broker has confirmed. Each
/// message carries a range of sequence numbers (one reading, or one poll of a device).
#[derive(Default)]
struct Session {
    /// Ranges handed to the client, waiting for their packet id (in order).
    queued: VecDeque<(i64, i64)>,
    /// Packet id → the range it carries.
    inflight: HashMap<u16, (i64, i64)>,
    /// Every range not yet confirmed: first → last.
    outstanding: BTreeMap<i64, i64>,
    /// The last sequence number handed to the client.
    sent_up_to: i64,
}

impl Session {
    /// The client sent the next queued range as packet `pkid` (0: QoS 0, sent is all
    /// there is).
    fn sent(&mut self, pkid: u16) {
        if let Some(range) = self.queued.pop_front() {
            if pkid == 0 {
                self.outstanding.remove(&range.0);
            } else {
                self.inflight.insert(pkid, range);
            }
        }
    }

    /// The broker acknowledged packet `pkid`: its range is delivered.
    fn acked(&mut self, pkid: u16) {
        if let Some(range) = self.inflight.remove(&pkid) {
            self.outstanding.remove(&range.0);
        }
    }

    /// Everything up to this sequence number is confirmed.
    fn confirmed(&self) -> i64 {
        match self.outstanding.first_key_value() {
            Some((first, _)) => first - 1,
            None => self.sent_up_to,
        }
    }
}

/// What the broker has confirmed, as counted and as written to the store's cursor.
struct Cursor {
    saved: i64,
    reported: i64,
    last_save: tokio::time::Instant,
}

impl Cursor {
    /// Counts what is newly confirmed, and writes the cursor every [`SAVE_EVERY`]
    /// readings, every [`SAVE_INTERVAL`], and at every step of a drain.
    async fn record(&mut self, confirmed: i64, store: &Arc<Store>, health: &SinkHealth, draining: bool) {
        if confirmed > self.reported {
            health.success((confirmed - self.reported) as u64);
            self.reported = confirmed;
        }
        let due = confirmed - self.saved >= SAVE_EVERY || self.last_save.elapsed() >= SAVE_INTERVAL || draining;
        if confirmed > self.saved && due {
            if let Err(e) = super::on_store(store, move |s| s.advance(CONSUMER, confirmed)).await {
                health.failure(e.to_string());
            } else {
                self.saved = confirmed;
                self.last_save = tokio::time::Instant::now();
            }
        }
    }
}

/// Readings read ahead from the store in one query.
const READ_AHEAD: usize = 2000;

/// The next readings after `fetched`, and whether the read was full (more may wait); in
/// device mode a full read leaves its last poll, which may continue past the read, for
/// the next one.
fn read_ahead(store: &Store, fetched: i64, device_mode: bool) -> crate::store::Result<(Vec<Stored>, bool)> {
    let mut batch = store.read_after(fetched, READ_AHEAD)?;
    let full = batch.len() >= READ_AHEAD;
    if full && device_mode {
        let tail = batch.last().map(|l| (l.reading.ts, l.reading.device.clone()));
        let keep = batch
            .iter()
            .rposition(|x| Some((x.reading.ts, x.reading.device.clone())) != tail)
            .map_or(batch.len(), |i| i + 1);
        batch.truncate(keep);
    }
    Ok((batch, full))
}

/// Hands the client what is pending, a message at a time, while the window has room.
fn publish_ready(
    client: &AsyncClient,
    cfg: &MqttConfig,
    qos: QoS,
    device_mode: bool,
    pending: &mut VecDeque<Stored>,
    s: &mut Session,
) {
    while s.outstanding.len() < cfg.window {
        let n = next_message(pending, device_mode);
        if n == 0 {
            break;
        }
        let (topic, body) = if device_mode {
            let group: Vec<&Reading> = pending.iter().take(n).map(|x| &x.reading).collect();
            (device_topic(&cfg.prefix, group[0]), device_payload(&group))
        } else {
            let r = &pending[0].reading;
            (topic(&cfg.prefix, r), payload(r))
        };
        if client.try_publish(topic, qos, cfg.retain, body).is_err() {
            break;
        }
        let range = (pending[0].seq, pending[n - 1].seq);
        pending.drain(..n);
        s.queued.push_back(range);
        s.outstanding.insert(range.0, range.1);
        s.sent_up_to = range.1;
    }
}

/// The cursor is written at most this often (and every [`SAVE_EVERY`] readings): a crash
/// re-sends at most what was confirmed since, besides the unconfirmed tail.
const SAVE_INTERVAL: Duration = Duration::from_millis(250);
const SAVE_EVERY: i64 = 5000;

/// The next message from the front of `pending`: one reading, or in device mode the
/// readings of one poll of one device (same device, same instant). Returns how many
/// readings it takes.
fn next_message(pending: &VecDeque<Stored>, device_mode: bool) -> usize {
    let Some(first) = pending.front() else { return 0 };
    if !device_mode {
        return 1;
    }
    let same = |s: &Stored| {
        s.reading.ts == first.reading.ts
            && s.reading.device == first.reading.device
            && s.reading.zone == first.reading.zone
            && s.reading.site == first.reading.site
    };
    pending.iter().take_while(|s| same(s)).count()
}

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
        let start = match super::on_store(&store, |s| s.cursor(CONSUMER)).await {
            Ok(c) => c,
            Err(e) => {
                health.failure(e.to_string());
                driver.abort();
                tokio::select! { () = cancel.cancelled() => return, () = tokio::time::sleep(Duration::from_secs(5)) => continue }
            }
        };
        let mut s = Session { sent_up_to: start, ..Default::default() };
        let mut connected = false;
        let mut cursor = Cursor { saved: start, reported: start, last_save: tokio::time::Instant::now() };
        let mut draining: Option<tokio::time::Instant> = None;
        let device_mode = cfg.payload == Payload::Device;
        let qos = if cfg.qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
        // read ahead of what is handed to the client; re-read only when the writer
        // committed more (or a timer says so), never once per acknowledgement
        let mut pending: VecDeque<Stored> = VecDeque::new();
        let mut fetched = start;
        let mut more = true;
        // one timer for the connection, not one per event
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if connected && draining.is_none() && s.outstanding.len() < cfg.window {
                if pending.len() < cfg.window.max(64) && more {
                    match super::on_store(&store, move |s| read_ahead(s, fetched, device_mode)).await {
                        Ok((batch, full)) => {
                            more = full;
                            if let Some(l) = batch.last() {
                                fetched = l.seq;
                            }
                            pending.extend(batch);
                        }
                        Err(e) => health.failure(e.to_string()),
                    }
                }
                publish_ready(&client, &cfg, qos, device_mode, &mut pending, &mut s);
            }
            cursor.record(s.confirmed(), &store, &health, draining.is_some()).await;
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
                    Some(LoopEvent::Sent(pkid)) => s.sent(pkid),
                    Some(LoopEvent::Acked(pkid)) => s.acked(pkid),
                    Some(LoopEvent::Connected) => {
                        connected = true;
                        attempt = 0;
                        health.connected.store(true, Ordering::Relaxed);
                        tracing::info!(broker = %format!("{}:{}", cfg.host, cfg.port), from = s.sent_up_to, "MQTT connected");
                        if client.try_publish(status.clone(), QoS::AtLeastOnce, true, "online").is_ok() {
                            s.queued.push_back((-1, -1));
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
                () = super::changed(&mut notify), if connected && draining.is_none() => more = true,
                _ = tick.tick() => more = true,
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
            s.outstanding.insert(seq, seq);
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
        // a device's message carries a range: nothing in it is confirmed before its ack
        s.outstanding.insert(16, 25);
        s.sent_up_to = 25;
        assert_eq!(s.confirmed(), 15);
        s.outstanding.remove(&16);
        assert_eq!(s.confirmed(), 25);
    }

    fn reading(device: &str, point: &str, ms: i64, value: Option<f64>, quality: Quality) -> Reading {
        Reading {
            ts: chrono::Utc.timestamp_millis_opt(ms).unwrap(),
            site: "s".into(),
            zone: "z".into(),
            device: device.into(),
            point: point.into(),
            quantity: Quantity::Status,
            value,
            unit: "".into(),
            quality,
        }
    }

    #[test]
    fn one_message_per_poll_of_a_device() {
        let t = 1_764_000_000_000;
        let rows: VecDeque<Stored> = [
            reading("d1", "r0", t, Some(1.0), Quality::Good),
            reading("d1", "r1", t, Some(2.5), Quality::Good),
            reading("d2", "r0", t, None, Quality::Timeout),
            reading("d2", "r\"1", t, Some(7.0), Quality::OutOfRange),
            reading("d1", "r0", t + 1000, Some(1.0), Quality::Good),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, reading)| Stored { seq: i as i64 + 1, reading })
        .collect();
        assert_eq!(next_message(&rows, false), 1);
        assert_eq!(next_message(&rows, true), 2);
        let d1: Vec<&Reading> = rows.iter().take(2).map(|s| &s.reading).collect();
        assert_eq!(device_topic("ph", d1[0]), "ph/s/z/d1");
        let v: serde_json::Value = serde_json::from_str(&device_payload(&d1)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ts": "2025-11-24T16:00:00.000Z", "quality": "good", "points": {"r0": 1.0, "r1": 2.5}})
        );
        let rest: VecDeque<Stored> = rows.iter().skip(2).cloned().collect();
        assert_eq!(next_message(&rest, true), 2);
        let d2: Vec<&Reading> = rest.iter().take(2).map(|s| &s.reading).collect();
        let v: serde_json::Value = serde_json::from_str(&device_payload(&d2)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ts": "2025-11-24T16:00:00.000Z", "quality": "timeout", "points": {"r0": null, "r\"1": 7.0}, "bad": {"r0": "timeout", "r\"1": "out_of_range"}})
        );
    }
}

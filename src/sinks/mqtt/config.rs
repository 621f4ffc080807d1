//! `[mqtt]`: the broker, the topics, TLS, and how many publishes wait for their PubAck.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::diag::{duration_field, Diagnostics, Mode};
use crate::secret::{self, Secret};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    pub url: Option<String>,
    pub prefix: Option<String>,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub retain: Option<bool>,
    pub qos: Option<i64>,
    /// Publishes in flight (sent, not yet acknowledged) at once.
    pub window: Option<i64>,
    /// `point` (one message per reading) or `device` (one per poll of a device).
    pub payload: Option<String>,
    pub keep_alive: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// One message per reading on `{prefix}/{site}/{zone}/{device}/{point}` (the default).
    Point,
    /// One message per poll of a device on `{prefix}/{site}/{zone}/{device}`.
    Device,
}

#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub prefix: String,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub retain: bool,
    pub qos: u8,
    pub window: usize,
    pub payload: Payload,
    pub keep_alive: Duration,
}

pub fn validate(raw: &RawMqtt, site: &str, mode: Mode, diags: &mut Diagnostics) -> Option<MqttConfig> {
    let before = diags.items.len();
    let url = raw.url.clone().unwrap_or_else(|| "mqtt://127.0.0.1:1883".into());
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        diags.error("mqtt.url", format!("`{url}` must start with mqtt:// or mqtts://"));
        (false, "")
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse::<u16>().ok()),
        None => (rest.to_string(), Some(if tls { 8883 } else { 1883 })),
    };
    if host.is_empty() || port.is_none() {
        diags.error("mqtt.url", format!("`{url}` is not mqtt://host:port"));
    }
    let prefix = raw.prefix.clone().unwrap_or_else(|| "pumphouse".into());
    if prefix.is_empty() || prefix.contains(['+', '#']) {
        diags.error("mqtt.prefix", format!("`{prefix}` cannot be a topic prefix (empty, or with + or #)"));
    }
    let qos = match raw.qos.unwrap_or(1) {
        q @ 0..=1 => q as u8,
        q => {
            diags.error(
                "mqtt.qos",
                format!("QoS {q} is not supported; use 1 (delivery confirmed by PubAck) or 0 (fire and forget)"),
            );
            1
        }
    };
    let window = match raw.window.unwrap_or(100) {
        w @ 1..=65_000 => w as usize,
        w => {
            diags.error("mqtt.window", format!("{w} is outside 1..=65000"));
            100
        }
    };
    let payload = match raw.payload.as_deref() {
        None | Some("point") => Payload::Point,
        Some("device") => Payload::Device,
        Some(other) => {
            diags.error("mqtt.payload", format!("unknown payload `{other}`; use point or device"));
            Payload::Point
        }
    };
    let password = secret::read(&raw.password_env, &raw.password_file, "mqtt.password", "MQTT password", mode, diags);
    if password.is_some() && raw.username.is_none() {
        diags.error("mqtt.username", "a password is configured but no username");
    }
    let file = |v: &Option<String>, p: &str, diags: &mut Diagnostics| -> Option<PathBuf> {
        let f = PathBuf::from(v.as_ref()?);
        if !f.exists() {
            let m = format!("{} does not exist", f.display());
            diags.of_machine(mode, p, m);
        }
        Some(f)
    };
    let ca_file = file(&raw.ca_file, "mqtt.ca_file", diags);
    let cert = file(&raw.client_cert, "mqtt.client_cert", diags);
    let key = file(&raw.client_key, "mqtt.client_key", diags);
    if cert.is_some() != key.is_some() {
        diags.error("mqtt.client_cert", "a client certificate needs both client_cert and client_key");
    }
    if (ca_file.is_some() || cert.is_some()) && !tls {
        diags.error("mqtt.url", "TLS files are configured but the url is mqtt://; use mqtts://");
    }
    let keep_alive = duration_field(
        &raw.keep_alive,
        Duration::from_secs(30),
        // MQTT carries the keep-alive as 16-bit seconds
        Duration::from_secs(5)..=Duration::from_secs(u16::MAX as u64),
        "mqtt.keep_alive",
        diags,
    );
    if diags.items.len() > before && diags.has_errors() {
        return None;
    }
    Some(MqttConfig {
        host,
        port: port.unwrap_or(1883),
        tls,
        prefix,
        client_id: raw.client_id.clone().unwrap_or_else(|| format!("pumphouse-{site}")),
        username: raw.username.clone(),
        password,
        ca_file,
        client_cert: cert.zip(key),
        retain: raw.retain.unwrap_or(false),
        qos,
        window,
        payload,
        keep_alive,
    })
}

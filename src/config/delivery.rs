//! Validation of the delivery sections: `[store]`, `[mqtt]`, `[[influxdb]]`, `[http]`.
//! Secrets (MQTT password, InfluxDB token or password) are read here from the
//! environment variable or file the configuration names; they are never printed.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::diag::Diagnostics;
use super::raw::{RawHttp, RawInflux, RawMqtt, RawStore};
use super::{parse_duration, Mode};
use crate::store;

/// A secret value: shown as `***` in every debug print.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub limits: store::Limits,
    /// Most readings kept in memory while the store refuses writes or the clock is not
    /// set; past it the oldest are dropped (counted).
    pub memory_queue: usize,
}

/// What one MQTT message carries.
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

#[derive(Debug, Clone, PartialEq)]
pub enum InfluxApi {
    V1 { database: String, retention_policy: Option<String>, username: Option<String>, password: Option<Secret> },
    V2 { org: String, bucket: String, token: Option<Secret> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Nanoseconds,
    Seconds,
}

#[derive(Debug, Clone)]
pub struct InfluxConfig {
    /// Also the store cursor's name: `influxdb:NAME`.
    pub name: String,
    pub url: String,
    pub api: InfluxApi,
    pub batch_size: usize,
    pub flush_interval: Duration,
    pub precision: Precision,
    pub gzip: bool,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub stall_after: Duration,
    /// Required as `Authorization: Bearer …` by every endpoint that changes state; without
    /// one those endpoints answer 403.
    pub token: Option<Secret>,
}

/// A URL as it may be shown: its user information (`user:password@`) replaced.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

/// The scheme and host of a URL, for messages about a URL that is itself a secret (a
/// robot's webhook with its key).
pub fn url_origin(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            format!("{scheme}://{host}/…")
        }
        None => "(not a URL)".into(),
    }
}

/// Parses `2GiB`, `500MB`, `64KiB` or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a size; write e.g. 500MB or 2GiB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024f64.powi(4),
        _ => return Err(format!("`{s}`: unknown size unit `{}`; use B, KB, MB, GB, KiB, MiB or GiB", unit.trim())),
    };
    Ok((n * mult) as u64)
}

pub(super) fn secret(
    env: &Option<String>,
    file: &Option<String>,
    path: &str,
    what: &str,
    mode: Mode,
    diags: &mut Diagnostics,
) -> Option<Secret> {
    let problem = |diags: &mut Diagnostics, p: String, m: String| match mode {
        Mode::Check => diags.warning(p, m),
        Mode::Run => diags.error(p, m),
    };
    match (env, file) {
        (Some(_), Some(_)) => {
            diags.error(
                format!("{path}_env"),
                format!("give the {what} either from an environment variable or from a file, not both"),
            );
            None
        }
        (Some(var), None) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(Secret(v)),
            _ => {
                problem(diags, format!("{path}_env"), format!("environment variable {var} (the {what}) is not set"));
                None
            }
        },
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(v) if !v.trim().is_empty() => {
                if readable_by_others(f) {
                    diags.warning(
                        format!("{path}_file"),
                        format!("{f} (the {what}) is readable by every user of this machine: chmod 600 it (or 640 with the service's group)"),
                    );
                }
                Some(Secret(v.trim_end_matches(['\n', '\r']).to_string()))
            }
            Ok(_) => {
                problem(diags, format!("{path}_file"), format!("{f} (the {what}) is empty"));
                None
            }
            Err(e) => {
                problem(diags, format!("{path}_file"), format!("cannot read {f} (the {what}): {e}"));
                None
            }
        },
        (None, None) => None,
    }
}

#[cfg(unix)]
fn readable_by_others(path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &str) -> bool {
    false
}

fn duration(v: &Option<String>, default: Duration, path: &str, diags: &mut Diagnostics) -> Duration {
    match v {
        None => default,
        Some(s) => match parse_duration(s) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                diags.error(path, "must be longer than zero");
                default
            }
            Err(e) => {
                diags.error(path, e);
                default
            }
        },
    }
}

pub fn validate_store(raw: &RawStore, diags: &mut Diagnostics) -> StoreConfig {
    let defaults = store::Limits::default();
    let max_size = match raw.max_size.as_deref() {
        None => defaults.max_size,
        Some(s) => match parse_size(s) {
            Ok(n) if n >= 1 << 20 => n,
            Ok(_) => {
                diags.error("store.max_size", format!("{s} is too small for a store; give at least 1MiB"));
                defaults.max_size
            }
            Err(e) => {
                diags.error("store.max_size", e);
                defaults.max_size
            }
        },
    };
    let max_age = duration(&raw.max_age, defaults.max_age, "store.max_age", diags);
    let memory_queue = match raw.memory_queue.unwrap_or(200_000) {
        n @ 1000..=50_000_000 => n as usize,
        n => {
            diags.error("store.memory_queue", format!("{n} is outside 1000..=50000000 readings"));
            200_000
        }
    };
    StoreConfig {
        path: PathBuf::from(raw.path.clone().unwrap_or_else(|| "/var/lib/pumphouse/store.db".into())),
        limits: store::Limits { max_size, max_age },
        memory_queue,
    }
}

pub fn validate_mqtt(raw: &RawMqtt, site: &str, mode: Mode, diags: &mut Diagnostics) -> Option<MqttConfig> {
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
    let password = secret(&raw.password_env, &raw.password_file, "mqtt.password", "MQTT password", mode, diags);
    if password.is_some() && raw.username.is_none() {
        diags.error("mqtt.username", "a password is configured but no username");
    }
    let file = |v: &Option<String>, p: &str, diags: &mut Diagnostics| -> Option<PathBuf> {
        let f = PathBuf::from(v.as_ref()?);
        if !f.exists() {
            let m = format!("{} does not exist", f.display());
            match mode {
                Mode::Check => diags.warning(p, m),
                Mode::Run => diags.error(p, m),
            }
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
    let keep_alive = duration(&raw.keep_alive, Duration::from_secs(30), "mqtt.keep_alive", diags);
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

pub fn validate_influx(raw: &RawInflux, i: usize, mode: Mode, diags: &mut Diagnostics) -> Option<InfluxConfig> {
    let path = format!("influxdb[{i}]");
    let before = diags.errors().count();
    let mut url = raw.url.clone().unwrap_or_default();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        diags.error(
            format!("{path}.url"),
            format!("`{}` is not an http:// or https:// URL of the InfluxDB server", redact_url(&url)),
        );
    }
    // Credentials in the URL would be printed wherever the URL is (logs, status, errors):
    // they are taken out of it, and used as the v1 username and password.
    let mut url_credentials: Option<(String, Secret)> = None;
    if redact_url(&url) != url {
        if let Some((scheme, rest)) = url.clone().split_once("://") {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            if let Some(at) = rest[..end].rfind('@') {
                let info = &rest[..at];
                let (user, pass) = info.split_once(':').unwrap_or((info, ""));
                url_credentials = Some((user.to_string(), Secret::new(pass)));
                url = format!("{scheme}://{}", &rest[at + 1..]);
                diags.warning(
                    format!("{path}.url"),
                    "the URL carries a user and password: they are used as username and password; better give them as username and password_env or password_file",
                );
            }
        }
    }
    let api = match raw.api.as_deref().unwrap_or("v1") {
        "v1" => {
            for (f, set) in [
                ("org", raw.org.is_some()),
                ("bucket", raw.bucket.is_some()),
                ("token_env", raw.token_env.is_some()),
                ("token_file", raw.token_file.is_some()),
            ] {
                if set {
                    diags.error(format!("{path}.{f}"), format!("`{f}` belongs to api = \"v2\"; the v1 API takes database, retention_policy, username and password"));
                }
            }
            let database = raw.database.clone().unwrap_or_default();
            if database.is_empty() {
                diags.error(format!("{path}.database"), "missing: the database to write to (api v1)");
            }
            let password = secret(
                &raw.password_env,
                &raw.password_file,
                &format!("{path}.password"),
                "InfluxDB password",
                mode,
                diags,
            );
            let (username, password) = match url_credentials.take() {
                Some((u, p)) if raw.username.is_none() && password.is_none() => (Some(u), Some(p)),
                Some(_) => {
                    diags.error(
                        format!("{path}.url"),
                        "the URL carries a user and password and username/password are set too: give them once",
                    );
                    (raw.username.clone(), password)
                }
                None => (raw.username.clone(), password),
            };
            InfluxApi::V1 { database, retention_policy: raw.retention_policy.clone(), username, password }
        }
        "v2" => {
            for (f, set) in [
                ("database", raw.database.is_some()),
                ("retention_policy", raw.retention_policy.is_some()),
                ("username", raw.username.is_some()),
            ] {
                if set {
                    diags.error(
                        format!("{path}.{f}"),
                        format!("`{f}` belongs to api = \"v1\"; the v2 API takes org, bucket and a token"),
                    );
                }
            }
            let org = raw.org.clone().unwrap_or_default();
            let bucket = raw.bucket.clone().unwrap_or_default();
            if org.is_empty() {
                diags.error(format!("{path}.org"), "missing: the organisation (api v2)");
            }
            if bucket.is_empty() {
                diags.error(format!("{path}.bucket"), "missing: the bucket to write to (api v2)");
            }
            let token =
                secret(&raw.token_env, &raw.token_file, &format!("{path}.token"), "InfluxDB token", mode, diags);
            if url_credentials.take().is_some() {
                diags.error(format!("{path}.url"), "api v2 authenticates with a token: remove the user and password from the URL and give token_env or token_file");
            }
            InfluxApi::V2 { org, bucket, token }
        }
        other => {
            diags.error(format!("{path}.api"), format!("unknown api `{other}`; use v1 or v2"));
            return None;
        }
    };
    let batch_size = match raw.batch_size.unwrap_or(5000) {
        b @ 1..=100_000 => b as usize,
        b => {
            diags.error(format!("{path}.batch_size"), format!("{b} is outside 1..=100000"));
            5000
        }
    };
    let precision = match raw.precision.as_deref().unwrap_or("ns") {
        "ns" => Precision::Nanoseconds,
        "s" => Precision::Seconds,
        other => {
            diags.error(format!("{path}.precision"), format!("unknown precision `{other}`; use ns or s"));
            Precision::Nanoseconds
        }
    };
    let flush_interval =
        duration(&raw.flush_interval, Duration::from_secs(2), &format!("{path}.flush_interval"), diags);
    let timeout = duration(&raw.timeout, Duration::from_secs(10), &format!("{path}.timeout"), diags);
    if diags.errors().count() > before {
        return None;
    }
    Some(InfluxConfig {
        name: raw.name.clone().unwrap_or_else(|| i.to_string()),
        url: url.trim_end_matches('/').to_string(),
        api,
        batch_size,
        flush_interval,
        precision,
        gzip: raw.gzip.unwrap_or(true),
        timeout,
    })
}

pub fn validate_http(raw: &RawHttp, mode: Mode, diags: &mut Diagnostics) -> Option<HttpConfig> {
    let listen = raw.listen.clone().unwrap_or_else(|| "127.0.0.1:9109".into());
    let addr = match listen.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            diags.error("http.listen", format!("`{listen}` is not ip:port (e.g. 127.0.0.1:9109)"));
            return None;
        }
    };
    let stall_after = duration(&raw.stall_after, Duration::from_secs(300), "http.stall_after", diags);
    let token = secret(&raw.token_env, &raw.token_file, "http.token", "HTTP token", mode, diags);
    if token.as_ref().is_some_and(|t| t.expose().len() < 16) {
        diags.error(
            "http.token",
            "the token is shorter than 16 characters: use a long random one (e.g. `openssl rand -hex 32`)",
        );
    }
    if !addr.ip().is_loopback() && token.is_none() {
        diags.warning(
            "http.listen",
            format!("{addr} is reachable from the network and no token is set: anyone who reaches it can read status, ledgers and alerts; writes stay disabled until [http] token_env or token_file is set"),
        );
    }
    Some(HttpConfig { listen: addr, stall_after, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").unwrap_err().contains("unknown size unit"));
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        let cfg = InfluxApi::V2 { org: "o".into(), bucket: "b".into(), token: Some(s) };
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}

//! `[http]`: where the API and the page listen, when a stalled sink turns `/healthz`
//! red, and the token every write needs.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::diag::{duration_field, Diagnostics, Mode};
use crate::secret::{self, Secret};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub listen: Option<String>,
    /// A sink with a backlog and no success for this long makes /healthz answer 503.
    pub stall_after: Option<String>,
    /// The bearer token every endpoint that changes state requires, from the environment
    /// variable or the file named here.
    pub token_env: Option<String>,
    pub token_file: Option<String>,
    /// Connections served at once; at the limit the oldest is closed for the newest.
    pub max_connections: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub stall_after: Duration,
    /// Required as `Authorization: Bearer …` by every endpoint that changes state; without
    /// one those endpoints answer 403.
    pub token: Option<Secret>,
    /// Connections served at once (the process's open-file limit may lower it at start).
    pub max_connections: usize,
}

pub fn validate(raw: &RawHttp, mode: Mode, diags: &mut Diagnostics) -> Option<HttpConfig> {
    let listen = raw.listen.clone().unwrap_or_else(|| "127.0.0.1:9109".into());
    let addr = match listen.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            diags.error("http.listen", format!("`{listen}` is not ip:port (e.g. 127.0.0.1:9109)"));
            return None;
        }
    };
    let stall_after = duration_field(
        &raw.stall_after,
        Duration::from_secs(300),
        Duration::from_secs(1)..=Duration::from_secs(7 * 86_400),
        "http.stall_after",
        diags,
    );
    let token = secret::read(&raw.token_env, &raw.token_file, "http.token", "HTTP token", mode, diags);
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
    let max_connections = crate::diag::int_field(
        raw.max_connections,
        256,
        8..=65_536,
        "http.max_connections",
        "connections served at once",
        diags,
    ) as usize;
    Some(HttpConfig { listen: addr, stall_after, token, max_connections })
}

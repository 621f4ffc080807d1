//! `[[influxdb]]`: one InfluxDB (1.x or 2.x write API) to deliver readings to.

use std::time::Duration;

use serde::Deserialize;

use crate::diag::{duration_field, Diagnostics, Mode};
use crate::secret::{self, redact_url, Secret};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInflux {
    pub name: Option<String>,
    pub url: Option<String>,
    pub api: Option<String>,
    pub database: Option<String>,
    pub retention_policy: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub org: Option<String>,
    pub bucket: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<String>,
    pub batch_size: Option<i64>,
    pub flush_interval: Option<String>,
    pub precision: Option<String>,
    pub gzip: Option<bool>,
    pub timeout: Option<String>,
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

/// Fields set that belong to the other API: each an error saying where it belongs.
fn foreign(path: &str, fields: &[(&str, bool)], belongs: &str, diags: &mut Diagnostics) {
    for (f, _) in fields.iter().filter(|(_, set)| *set) {
        diags.error(format!("{path}.{f}"), format!("`{f}` belongs to {belongs}"));
    }
}

pub fn validate(raw: &RawInflux, i: usize, mode: Mode, diags: &mut Diagnostics) -> Option<InfluxConfig> {
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
    if let Some((bare, user, password)) = secret::take_user_info(&url) {
        url_credentials = Some((user, password));
        url = bare;
        diags.warning(
            format!("{path}.url"),
            "the URL carries a user and password: they are used as username and password; better give them as username and password_env or password_file",
        );
    }
    let api = match raw.api.as_deref().unwrap_or("v1") {
        "v1" => {
            let v2_only = [
                ("org", raw.org.is_some()),
                ("bucket", raw.bucket.is_some()),
                ("token_env", raw.token_env.is_some()),
                ("token_file", raw.token_file.is_some()),
            ];
            foreign(
                &path,
                &v2_only,
                "api = \"v2\"; the v1 API takes database, retention_policy, username and password",
                diags,
            );
            let database = raw.database.clone().unwrap_or_default();
            if database.is_empty() {
                diags.error(format!("{path}.database"), "missing: the database to write to (api v1)");
            }
            let password = secret::read(
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
            let v1_only = [
                ("database", raw.database.is_some()),
                ("retention_policy", raw.retention_policy.is_some()),
                ("username", raw.username.is_some()),
            ];
            foreign(&path, &v1_only, "api = \"v1\"; the v2 API takes org, bucket and a token", diags);
            let org = raw.org.clone().unwrap_or_default();
            let bucket = raw.bucket.clone().unwrap_or_default();
            if org.is_empty() {
                diags.error(format!("{path}.org"), "missing: the organisation (api v2)");
            }
            if bucket.is_empty() {
                diags.error(format!("{path}.bucket"), "missing: the bucket to write to (api v2)");
            }
            let token =
                secret::read(&raw.token_env, &raw.token_file, &format!("{path}.token"), "InfluxDB token", mode, diags);
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
    let Delivery { batch_size, precision, flush_interval, timeout } = delivery(raw, &path, diags);
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

/// How a sink sends: batch size, precision, flush interval and timeout.
struct Delivery {
    batch_size: usize,
    precision: Precision,
    flush_interval: Duration,
    timeout: Duration,
}

fn delivery(raw: &RawInflux, path: &str, diags: &mut Diagnostics) -> Delivery {
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
    let flush_interval = duration_field(
        &raw.flush_interval,
        Duration::from_secs(2),
        Duration::from_millis(10)..=Duration::from_secs(3600),
        &format!("{path}.flush_interval"),
        diags,
    );
    let timeout = duration_field(
        &raw.timeout,
        Duration::from_secs(10),
        Duration::from_millis(100)..=Duration::from_secs(600),
        &format!("{path}.timeout"),
        diags,
    );
    Delivery { batch_size, precision, flush_interval, timeout }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_prints() {
        let cfg = InfluxApi::V2 { org: "o".into(), bucket: "b".into(), token: Some(Secret::new("hunter2")) };
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}

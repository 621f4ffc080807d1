//! Secrets (passwords, tokens, a robot's webhook URL with its key): read from the
//! environment variable or file the configuration names, never printed, and URLs shown
//! without them.

use std::fmt;

use crate::diag::{Diagnostics, Mode};

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

/// A URL's user information taken out: (the URL without it, user, password), or `None`
/// when it has none.
pub fn take_user_info(url: &str) -> Option<(String, String, Secret)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..end].rfind('@')?;
    let info = &rest[..at];
    let (user, pass) = info.split_once(':').unwrap_or((info, ""));
    Some((format!("{scheme}://{}", &rest[at + 1..]), user.to_string(), Secret::new(pass)))
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

/// `text` (a receiver's answer, a `Location`) with everything of the secret URL `url`
/// that could be its key taken out: the URL itself, its path after the host, and each
/// query value. A robot that echoes the URL it was called on must not put its key in
/// `/healthz`.
pub fn without_url_secrets(text: &str, url: &str) -> String {
    let mut out = text.replace(url, "[webhook URL]");
    if let Some((_, rest)) = url.split_once("://") {
        let after_host = rest.find(['/', '?', '#']).map_or("", |i| &rest[i..]);
        let (path, query) = after_host.split_once('?').unwrap_or((after_host, ""));
        let mut parts: Vec<&str> = query.split('&').filter_map(|kv| kv.split_once('=').map(|(_, v)| v)).collect();
        parts.push(path);
        for p in parts.into_iter().filter(|p| p.len() >= 6) {
            out = out.replace(p, "[redacted]");
        }
    }
    out
}

/// Reads a secret from the environment variable or the file named (`path` is the
/// configuration path without `_env`/`_file`, `what` names it in messages).
pub fn read(
    env: &Option<String>,
    file: &Option<String>,
    path: &str,
    what: &str,
    mode: Mode,
    diags: &mut Diagnostics,
) -> Option<Secret> {
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
                diags.of_machine(
                    mode,
                    format!("{path}_env"),
                    format!("environment variable {var} (the {what}) is not set"),
                );
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
                diags.of_machine(mode, format!("{path}_file"), format!("{f} (the {what}) is empty"));
                None
            }
            Err(e) => {
                diags.of_machine(mode, format!("{path}_file"), format!("cannot read {f} (the {what}): {e}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
    }

    #[test]
    fn urls_lose_their_user_information() {
        assert_eq!(redact_url("http://u:p@host:8086/x"), "http://***@host:8086/x");
        assert_eq!(url_origin("https://qyapi.example/cgi?key=abc"), "https://qyapi.example/…");
        let (bare, user, password) = take_user_info("http://u:p@host:8086/x").unwrap();
        assert_eq!((bare.as_str(), user.as_str(), password.expose()), ("http://host:8086/x", "u", "p"));
        assert!(take_user_info("http://host:8086/x?a=b@c").is_none());
    }
}

//! `group.toml`: the group's name, the sites it expects (a site not listed is ignored; a
//! site listed and silent makes the group's figures unknown), the broker (`[mqtt]`, as a
//! gateway's), its store and its page. Every error is reported at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diag::{Diagnostics, Mode};
use crate::lang::Lang;
use crate::sinks::mqtt::config::{MqttConfig, RawMqtt};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    group: RawGroup,
    #[serde(default)]
    mqtt: RawMqtt,
    store: RawStore,
    #[serde(default)]
    http: RawHttp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    sites: Vec<String>,
    language: Option<String>,
    /// Whose months the page shows as "this month" (default Asia/Shanghai).
    timezone: Option<String>,
    /// More nodes of the same cluster, tried in turn when the one connected to is lost.
    #[serde(default)]
    also: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub name: String,
    pub sites: Vec<String>,
    pub mqtt: MqttConfig,
    /// `[mqtt] url` first, then `[group] also`: the nodes tried in turn.
    pub brokers: Vec<MqttConfig>,
    pub store: PathBuf,
    pub listen: SocketAddr,
    pub lang: Lang,
    pub tz: chrono_tz::Tz,
}

/// Reads and checks `path`; every problem in one message.
pub fn load(path: &Path) -> Result<GroupConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<GroupConfig, String> {
    let raw: Raw = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut diags = Diagnostics::default();
    let mut errors: Vec<String> = Vec::new();
    if raw.group.sites.is_empty() {
        errors.push("group.sites: list the sites whose gateways report to the group".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in &raw.group.sites {
        if s.is_empty() || s.contains(['/', '+', '#']) {
            errors.push(format!("group.sites: `{s}` cannot be a site name (a topic level)"));
        }
        if !seen.insert(s) {
            errors.push(format!("group.sites: `{s}` is listed twice"));
        }
    }
    let mut mqtt_raw = raw.mqtt.clone();
    mqtt_raw.client_id.get_or_insert_with(|| format!("pumphouse-group-{}", raw.group.name));
    let mqtt = crate::sinks::mqtt::config::validate(&mqtt_raw, &raw.group.name, Mode::Run, &mut diags);
    let mut brokers: Vec<MqttConfig> = mqtt.iter().cloned().collect();
    for (i, url) in raw.group.also.iter().enumerate() {
        let mut one = mqtt_raw.clone();
        one.url = Some(url.clone());
        let mut d = Diagnostics::default();
        match crate::sinks::mqtt::config::validate(&one, &raw.group.name, Mode::Run, &mut d) {
            Some(c) if !d.has_errors() => brokers.push(c),
            _ => errors.extend(d.errors().map(|e| format!("group.also[{i}]: {e}"))),
        }
    }
    let listen = raw.http.listen.as_deref().unwrap_or("127.0.0.1:8090");
    let listen = listen.parse::<SocketAddr>().map_err(|_| format!("http.listen: `{listen}` is not host:port"));
    let lang = match raw.group.language.as_deref() {
        None => Ok(Lang::Zh),
        Some(l) => Lang::parse(l).map_err(|e| format!("group.language: {e}")),
    };
    errors.extend(diags.errors().map(|d| d.to_string()));
    if let Err(e) = &listen {
        errors.push(e.clone());
    }
    if let Err(e) = &lang {
        errors.push(e.clone());
    }
    let tz = match raw.group.timezone.as_deref() {
        None => chrono_tz::Asia::Shanghai,
        Some(t) => t.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
            errors.push(format!("group.timezone: `{t}` is not an IANA time zone"));
            chrono_tz::UTC
        }),
    };
    match (mqtt, listen, lang) {
        (Some(mqtt), Ok(listen), Ok(lang)) if errors.is_empty() => Ok(GroupConfig {
            name: raw.group.name,
            sites: raw.group.sites,
            mqtt,
            brokers,
            store: PathBuf::from(raw.store.path),
            listen,
            lang,
            tz,
        }),
        _ => Err(errors.join("\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_said_at_once() {
        let e = parse(
            "[group]\nname = \"u\"\nsites = [\"a\", \"a\", \"b/c\"]\n[store]\npath = \"g.db\"\n[http]\nlisten = \"x\"\n[mqtt]\nurl = \"http://h\"\n",
        )
        .unwrap_err();
        for want in ["listed twice", "cannot be a site name", "http.listen", "mqtt.url"] {
            assert!(e.contains(want), "{want}: {e}");
        }
        let ok = parse("[group]\nname = \"u\"\nsites = [\"north\", \"south\"]\nalso = [\"mqtt://10.0.0.6:1883\"]\n[store]\npath = \"g.db\"\n").unwrap();
        assert_eq!(ok.sites, ["north", "south"]);
        assert_eq!(
            ok.brokers.iter().map(|b| (b.host.as_str(), b.port)).collect::<Vec<_>>(),
            [("127.0.0.1", 1883), ("10.0.0.6", 1883)]
        );
        let e = parse("[group]\nname = \"u\"\nsites = [\"a\"]\nalso = [\"tcp://x\"]\n[store]\npath = \"g.db\"\n")
            .unwrap_err();
        assert!(e.contains("group.also[0]"), "{e}");
        assert_eq!(ok.mqtt.client_id, "pumphouse-group-u");
    }
}

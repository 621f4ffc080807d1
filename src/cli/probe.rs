//! `pumphouse probe`: polls one device once and prints its decoded points.

use std::fmt::Write as _;

use anyhow::bail;

use crate::config::Config;
use crate::modbus::poller;
use crate::model::Reading;

/// One reading as a JSON line: device, point, quantity, value, unit, quality, ts (and
/// zone, site).
pub fn reading_json(r: &Reading) -> String {
    serde_json::json!({
        "device": &*r.device,
        "point": &*r.point,
        "quantity": r.quantity.as_str(),
        "value": r.value,
        "unit": &*r.unit,
        "quality": r.quality.code(),
        "ts": r.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "zone": &*r.zone,
        "site": &*r.site,
    })
    .to_string()
}

pub(crate) fn format_value(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) if v.abs() >= 1e6 || v == v.trunc() => format!("{v}"),
        Some(v) => format!("{v:.4}").trim_end_matches('0').trim_end_matches('.').to_string(),
    }
}

/// `pumphouse probe --discover BUS`: the address of the one DL/T 645 meter on the bus.
pub async fn discover(cfg: &Config, bus: &str) -> anyhow::Result<super::Report> {
    let Some(b) = cfg.bus(bus) else {
        let names: Vec<&str> = cfg.buses.iter().map(|b| &*b.name).collect();
        bail!("no bus `{bus}` in {}; buses: {}", cfg.source, names.join(", "));
    };
    match crate::modbus::meter_poll::discover(b).await {
        Ok(a) => Ok(super::Report::text(format!("{a}\n"))),
        Err(e) => bail!("bus `{bus}`: {e}"),
    }
}

/// `pumphouse probe`: polls one device once.
/// Returns what to print and whether the device answered.
pub async fn probe(cfg: &Config, device: &str, json: bool) -> anyhow::Result<(String, bool)> {
    let Some(d) = cfg.device(device) else {
        let names: Vec<&str> = cfg.devices.iter().map(|d| &*d.name).collect();
        bail!("no device `{device}` in {}; devices: {}", cfg.source, names.join(", "));
    };
    let Some(bus) = cfg.bus(&d.bus) else { bail!("device `{device}` names bus `{}`, which is not configured", d.bus) };
    let outcome = poller::poll_once(bus, d, cfg.site.name.clone(), cfg.site.timezone).await;
    let mut out = String::new();
    if json {
        for r in &outcome.readings {
            out.push_str(&reading_json(r));
            out.push('\n');
        }
    } else {
        let _ = writeln!(
            out,
            "{} ({} on {}, profile {}) in {:.0} ms",
            d.name,
            match &d.meter {
                Some(m) => format!("{} meter {m}", d.profile.protocol.name()),
                None => format!("unit {}", d.unit),
            },
            bus.transport.describe(),
            d.profile.name,
            outcome.took.as_secs_f64() * 1000.0
        );
        for r in &outcome.readings {
            let _ = writeln!(
                out,
                "  {:<24} {:>16} {:<6} {:<14} {}",
                r.point,
                format_value(r.value),
                r.unit,
                r.quantity,
                r.quality
            );
        }
    }
    if !json && outcome.answered {
        if let Some(verdict) = poller::pipelining_check(bus, d).await {
            let _ = writeln!(out, "  pipelining: {verdict}");
        }
    }
    Ok((out, outcome.answered))
}

//! `pumphouse profiles [show NAME]`.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::bail;

use crate::config::Config;
use crate::modbus::profile::{self, Profile};

/// `pumphouse profiles`: one line per profile.
pub fn profiles_list(cfg: Option<&Config>) -> anyhow::Result<String> {
    let all: Vec<Arc<Profile>> = match cfg {
        Some(c) => c.profiles.values().cloned().collect(),
        None => {
            let mut d = crate::diag::Diagnostics::default();
            crate::modbus::profile_file::builtin_profiles(&mut d).into_iter().map(Arc::new).collect()
        }
    };
    let mut out = String::new();
    for p in all {
        let kind = if p.source.is_some() { "built-in" } else { "config" };
        let _ = writeln!(out, "{:<18} {:<8} {:>3} points  {}", p.name, kind, p.points.len(), p.description);
    }
    Ok(out)
}

/// `pumphouse profiles show NAME`: the profile's TOML for a built-in one, a table of its
/// points for one defined in the configuration.
pub fn profiles_show(cfg: Option<&Config>, name: &str) -> anyhow::Result<String> {
    if cfg.is_none() {
        if let Some((_, src)) = profile::BUILTIN.iter().find(|(n, _)| *n == name) {
            return Ok((*src).to_string());
        }
    }
    let found = cfg.and_then(|c| c.profiles.get(name).cloned());
    let Some(p) = found else {
        let names: Vec<&str> = profile::BUILTIN.iter().map(|(n, _)| *n).collect();
        bail!("no profile `{name}`; built-in profiles: {}", names.join(", "));
    };
    if let Some(src) = p.source {
        return Ok(src.to_string());
    }
    let mut out = format!("# {} — {}\n", p.name, p.description);
    for pt in &p.points {
        let _ = writeln!(
            out,
            "{:<24} {:<8} {:>5} {:<8} {:<4} scale {:<8} offset {:<6} {:<6} {}",
            pt.name,
            pt.table.as_str(),
            pt.address,
            pt.data_type.name(),
            pt.order.as_str(),
            pt.scale,
            pt.offset,
            pt.unit,
            pt.quantity
        );
    }
    Ok(out)
}

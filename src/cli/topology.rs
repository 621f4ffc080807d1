//! `pumphouse topology`: the network map as text or Graphviz DOT.

use anyhow::bail;

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopologyFormat {
    Text,
    Dot,
}

pub fn topology(cfg: &Config, format: TopologyFormat) -> anyhow::Result<String> {
    if cfg.topology.zones.is_empty() {
        bail!("{} defines no [[zones]]", cfg.source);
    }
    Ok(match format {
        TopologyFormat::Text => cfg.topology.render(),
        TopologyFormat::Dot => cfg.topology.dot(),
    })
}

//! `pumphouse topology`: the network map as text, Graphviz DOT, or the schematic the page
//! draws (SVG, from the configuration alone: no readings, no alerts).

use anyhow::bail;

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopologyFormat {
    Text,
    Dot,
    Svg,
}

pub fn topology(cfg: &Config, format: TopologyFormat) -> anyhow::Result<String> {
    if cfg.topology.zones.is_empty() {
        bail!("{} defines no [[zones]]", cfg.source);
    }
    Ok(match format {
        TopologyFormat::Text => cfg.topology.render(),
        TopologyFormat::Dot => cfg.topology.dot(),
        TopologyFormat::Svg => {
            use crate::ledger::schematic::{svg, State};
            let state = State { elements: cfg.schematic_elements(), live: false, ..Default::default() };
            svg(&cfg.topology, &state, cfg.site.language, false) + "\n"
        }
    })
}

//! A zone's volumes over part of a month (today, a day of the month's balance) from the
//! month's hourly consumption.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Ledger;
use crate::ledger::topology::{Role, Topology, Utility};

/// A zone's volumes over part of a month (today, say): net input (its inlets less what
/// its child zones took), billed, and the rest (non-revenue).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneVolumes {
    pub zone: String,
    pub utility: Utility,
    pub parent: Option<String>,
    pub net_input: f64,
    pub billed: f64,
    pub non_revenue: f64,
}

impl Ledger {
    /// Each zone's volumes from `since` on, from the month's hourly consumption.
    pub fn zone_volumes_since(&self, topology: &Topology, since: DateTime<Utc>) -> Vec<ZoneVolumes> {
        self.zone_volumes_between(topology, since, DateTime::<Utc>::MAX_UTC)
    }

    /// Each zone's volumes in the hours starting in `[since, until)`.
    pub fn zone_volumes_between(
        &self,
        topology: &Topology,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<ZoneVolumes> {
        let sum = |zone: &str, role: Role| -> f64 {
            topology
                .meters
                .iter()
                .filter(|m| m.zone == zone && m.role == role)
                .filter_map(|m| self.hourly.get(&m.id().key()))
                .flat_map(|h| h.range(since..until))
                .map(|(_, b)| b.volume)
                .sum()
        };
        topology
            .zones
            .iter()
            .map(|z| {
                let children: f64 = topology.children(&z.name).map(|c| sum(&c.name, Role::Inlet)).sum();
                let net_input = sum(&z.name, Role::Inlet) - children;
                let billed = sum(&z.name, Role::Billed);
                ZoneVolumes {
                    zone: z.name.clone(),
                    utility: z.utility,
                    parent: z.parent.clone(),
                    net_input,
                    billed,
                    non_revenue: net_input - billed,
                }
            })
            .collect()
    }
}

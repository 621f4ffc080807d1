//! What the alert rules need of the configuration: the site's time zone, the network map,
//! the prices (to value a leak), the rule settings and each device's zone, interval and
//! points. Built by `Config::alert_spec()`, as the ledger takes its `Spec`.

use std::time::Duration;

use chrono_tz::Tz;

use super::settings::RuleSettings;
use crate::ledger::prices::Prices;
use crate::ledger::topology::Topology;
use crate::modbus::profile::{Point, Profile};
use crate::model::Quantity;

/// One polled device, as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct DeviceSpec<'a> {
    pub name: &'a str,
    pub zone: &'a str,
    pub interval: Duration,
    pub profile: &'a Profile,
}

impl<'a> DeviceSpec<'a> {
    /// The device's first point of a quantity.
    pub fn point(&self, q: Quantity) -> Option<&'a Point> {
        self.profile.points.iter().find(|p| p.quantity == q)
    }

    /// Every point of a quantity.
    pub fn points(&self, q: Quantity) -> impl Iterator<Item = &'a Point> {
        self.profile.points.iter().filter(move |p| p.quantity == q)
    }
}

#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub tz: Tz,
    pub topology: &'a Topology,
    pub prices: &'a Prices,
    pub rules: &'a RuleSettings,
    pub devices: Vec<DeviceSpec<'a>>,
    /// The register's valves and how often they are to be exercised.
    pub register_valves: Vec<super::valve_life::RegisterValve<'a>>,
    pub exercise_every: chrono::TimeDelta,
}

impl<'a> Spec<'a> {
    /// Water zones whose bursts cannot be judged as configured, each with why: no inlet
    /// whose device reads a flow rate, or inlets read more sparsely than
    /// [`super::burst::SPARSEST`]. The burst rule does nothing there; `check` and
    /// `/api/status` say so instead of staying silent.
    pub fn bursts_unjudged(&self) -> Vec<(String, String)> {
        use crate::ledger::topology::{Role, Utility};
        use crate::model::AlertRule;
        let sparsest = super::burst::SPARSEST.to_std().unwrap_or(Duration::from_secs(900));
        let mut out = Vec::new();
        for z in self.topology.zones.iter().filter(|z| z.utility == Utility::Water) {
            if !self.rules.for_subject(&z.name, None).enabled(AlertRule::Burst) {
                continue;
            }
            let inlets: Vec<&DeviceSpec<'a>> = self
                .topology
                .meters_in(&z.name)
                .filter(|m| m.role == Role::Inlet)
                .filter_map(|m| self.device(&m.device))
                .filter(|d| d.point(Quantity::WaterFlow).is_some())
                .collect();
            let why = match inlets.iter().map(|d| d.interval).max() {
                None => Some("no inlet of the zone reads a flow rate: bursts are not judged".to_string()),
                Some(i) if i > sparsest => Some(format!(
                    "its inlets are read every {}: too sparse to judge a burst within half an hour (every {} or finer is needed)",
                    humantime::format_duration(i),
                    humantime::format_duration(sparsest)
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                out.push((z.name.clone(), why));
            }
        }
        out
    }

    pub fn device(&self, name: &str) -> Option<&DeviceSpec<'a>> {
        self.devices.iter().find(|d| d.name == name)
    }

    /// The devices placed in a zone.
    pub fn devices_in<'s>(&'s self, zone: &'s str) -> impl Iterator<Item = &'s DeviceSpec<'a>> {
        self.devices.iter().filter(move |d| d.zone == zone)
    }
}

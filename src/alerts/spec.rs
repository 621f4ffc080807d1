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
}

impl<'a> Spec<'a> {
    pub fn device(&self, name: &str) -> Option<&DeviceSpec<'a>> {
        self.devices.iter().find(|d| d.name == name)
    }

    /// The devices placed in a zone.
    pub fn devices_in<'s>(&'s self, zone: &'s str) -> impl Iterator<Item = &'s DeviceSpec<'a>> {
        self.devices.iter().filter(move |d| d.zone == zone)
    }
}

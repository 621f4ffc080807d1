//! What a pass of the rules reads, read once: the range, the history before it, and
//! every ledger meter's hourly consumption, with the hours that are a gap's estimate.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};

use super::super::spec::{DeviceSpec, Spec};
use crate::ledger::intervals::{self, MeterSpec, Sample};
use crate::ledger::topology::{Meter, Role, Utility, Zone};
use crate::model::MeterId;
use crate::store::{Store, StoreError};

pub(super) type Series = Vec<(DateTime<Utc>, f64)>;
pub(super) type Hourly = BTreeMap<DateTime<Utc>, f64>;

/// Good readings of one series as (time, value).
fn good(
    store: &Store,
    device: &str,
    point: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Series, StoreError> {
    Ok(store
        .series_readings(device, point, from.timestamp_millis(), to.timestamp_millis())?
        .into_iter()
        .filter(|r| r.quality.is_good())
        .filter_map(|r| Some((r.ts, r.value?)))
        .collect())
}

/// What every family reads: the range, the history before it, and every ledger meter's
/// hourly consumption (nine weeks back: the night-flow rule learns a zone's weekly rhythm
/// from eight weeks of nights, and a live pass must see what a replay sees), read once.
pub(super) const NIGHT_HISTORY: TimeDelta = TimeDelta::days(63);

pub(super) struct Pass<'s, 'a> {
    pub(super) spec: &'s Spec<'a>,
    pub(super) store: &'s Store,
    pub(super) from: DateTime<Utc>,
    pub(super) to: DateTime<Utc>,
    pub(super) history: DateTime<Utc>,
    pub(super) hours: HashMap<MeterId, Hourly>,
    /// Hours whose volume is partly an estimate (a data gap's consumption spread over
    /// it), by meter: no evidence of flow in them.
    pub(super) estimated: HashMap<MeterId, std::collections::BTreeSet<DateTime<Utc>>>,
}

impl<'s, 'a> Pass<'s, 'a> {
    pub(super) fn new(
        spec: &'s Spec<'a>,
        store: &'s Store,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let mut hours = HashMap::new();
        let mut estimated = HashMap::new();
        for m in &spec.topology.meters {
            let samples: Vec<Sample> = good(store, &m.device, &m.point, from - NIGHT_HISTORY, to)?
                .into_iter()
                .map(|(ts, v)| Sample { ts, value: Some(v), good: true })
                .collect();
            let interval = spec.device(&m.device).map(|d| d.interval).unwrap_or(std::time::Duration::from_secs(600));
            // the meter's wrap, so that a register passing zero is consumption, not a reset
            let ms = MeterSpec { rollover_at: m.rollover_at, max_rate: None, expected_interval: interval };
            let c = intervals::consumption(&samples, &[], &ms);
            let h = intervals::hourly(&c.intervals, from - NIGHT_HISTORY, to);
            estimated.insert(m.id(), h.iter().filter(|(_, b)| b.estimated > 1e-9).map(|(t, _)| *t).collect());
            hours.insert(m.id(), h.into_iter().map(|(t, b)| (t, b.volume)).collect());
        }
        Ok(Pass { spec, store, from, to, history: from - TimeDelta::days(21), hours, estimated })
    }

    pub(super) fn good(&self, device: &str, point: &str, from: DateTime<Utc>) -> Result<Series, StoreError> {
        good(self.store, device, point, from, self.to)
    }

    pub(super) fn of(&self, m: &Meter) -> Option<&Hourly> {
        self.hours.get(&m.id())
    }

    /// The hourly sum of some meters over the hours every one of them measured whole: no
    /// gap's estimate in it, and not a meter's latest hour, which may still be filling.
    /// `None` without any meter.
    pub(super) fn measured_sum<'m>(&self, meters: impl Iterator<Item = &'m Meter>) -> Option<Hourly> {
        // (the sum so far, over the hours every meter so far measured whole)
        let mut total: Option<Hourly> = None;
        for m in meters {
            let guessed = self.estimated.get(&m.id());
            let whole = self.of(m).into_iter().flatten().rev().skip(1);
            let whole = whole.filter(|(t, _)| guessed.is_none_or(|g| !g.contains(*t)));
            total = Some(match &total {
                None => whole.map(|(t, v)| (*t, *v)).collect(),
                Some(so_far) => whole.filter_map(|(t, v)| so_far.get(t).map(|s| (*t, s + v))).collect(),
            });
        }
        total
    }

    /// The hourly sum of some meters.
    pub(super) fn sum<'m>(&self, meters: impl Iterator<Item = &'m Meter>) -> Hourly {
        let mut total = Hourly::new();
        for m in meters {
            for (t, v) in self.of(m).into_iter().flatten() {
                *total.entry(*t).or_default() += v;
            }
        }
        total
    }

    pub(super) fn water_zones(&self) -> impl Iterator<Item = &'s Zone> {
        self.spec.topology.zones.iter().filter(|z| z.utility == Utility::Water)
    }

    pub(super) fn inlets(&self, zone: &'s str) -> impl Iterator<Item = &'s Meter> {
        self.spec.topology.meters_in(zone).filter(|m| m.role == Role::Inlet)
    }

    /// What leaves a zone through meters: its own non-inlet meters and its children's inlets.
    pub(super) fn outputs(&self, zone: &'s str) -> Vec<&'s Meter> {
        let t = self.spec.topology;
        t.meters_in(zone)
            .filter(|m| m.role != Role::Inlet)
            .chain(t.children(zone).flat_map(|c| t.meters_in(&c.name).filter(|m| m.role == Role::Inlet)))
            .collect()
    }

    pub(super) fn is_parent_of(&self, parent: &str, child: &str) -> bool {
        self.spec.topology.zone(child).and_then(|z| z.parent.as_deref()) == Some(parent)
    }

    /// The inlet devices of a zone that measure a flow rate.
    pub(super) fn inlet_flow_devices(&self, zone: &'s str) -> Vec<DeviceSpec<'a>> {
        self.inlets(zone).filter_map(|m| self.spec.device(&m.device)).copied().collect()
    }
}

//! The network map's live state for the schematic ([`crate::ledger::schematic`]): each
//! configured device with its kind (from its place in the map, else from what its profile
//! measures), its latest values, whether they are good and whether an alert is active
//! about it; each zone's non-revenue share this month and its own active alerts.

use std::collections::BTreeMap;

use crate::ledger::month::Ledger;
use crate::ledger::schematic::{Element, State};
use crate::model::Quantity;
use crate::store::{AlertRow, Latest};

use super::AppState;

/// What a person wants to see of a device at a glance.
fn shown(q: Quantity) -> bool {
    use Quantity::*;
    matches!(q, WaterFlow | Pressure | ValvePosition | ActivePower | FreeChlorine | Turbidity | Ph)
}

pub(super) fn state(st: &AppState, latest: &[Latest], active: &[AlertRow], ledger: &Ledger) -> State {
    let mut elements = Vec::new();
    for d in &st.devices {
        let mine: Vec<&Latest> = latest.iter().filter(|l| l.device == d.device).collect();
        let values: Vec<String> = mine
            .iter()
            .filter(|l| shown(l.quantity) && l.quality.is_good())
            .filter_map(|l| l.value.map(|v| format!("{v:.3} {}", l.unit)))
            .collect();
        elements.push(Element {
            device: d.device.clone(),
            zone: crate::ledger::schematic::zone_of(&st.config.topology, &d.device, &d.zone),
            kind: {
                let measures: Vec<Quantity> = st
                    .config
                    .device(&d.device)
                    .map(|c| c.profile.points.iter().map(|p| p.quantity).collect())
                    .unwrap_or_default();
                crate::ledger::schematic::kind_of(&st.config.topology, &d.device, &measures)
            },
            state: values.join(" · "),
            good: (!mine.is_empty()).then(|| mine.iter().all(|l| l.quality.is_good())),
            alerted: active.iter().any(|a| a.device.as_deref() == Some(&*d.device)),
        });
    }
    let shares: BTreeMap<String, Option<f64>> =
        ledger.zones.iter().map(|z| (z.zone.clone(), z.non_revenue_share)).collect();
    let zone_alerts = active.iter().filter(|a| a.device.is_none()).map(|a| a.zone.clone()).collect();
    State { elements, shares, zone_alerts, live: true }
}

/// Each valve's life over the last `days` of its readings: (device, zone, life).
pub(super) fn valves(
    st: &AppState,
    days: i64,
) -> Result<Vec<(String, String, crate::alerts::valve_life::Life)>, crate::store::StoreError> {
    let mut out = Vec::new();
    for d in &st.config.devices {
        if let Some(life) = valve_life(st, d, days)? {
            out.push((d.name.to_string(), d.zone.to_string(), life));
        }
    }
    Ok(out)
}

/// A device's life as a valve over the last `days` of its good readings; `None` when it
/// has no position point.
pub(super) fn valve_life(
    st: &AppState,
    d: &crate::modbus::config::Device,
    days: i64,
) -> Result<Option<crate::alerts::valve_life::Life>, crate::store::StoreError> {
    let to = chrono::Utc::now();
    let from = (to - chrono::TimeDelta::days(days)).timestamp_millis();
    let point = |q: Quantity| d.profile.points.iter().find(|p| p.quantity == q);
    let Some(pos) = point(Quantity::ValvePosition) else { return Ok(None) };
    let series = |name: &str| -> Result<Vec<(chrono::DateTime<chrono::Utc>, f64)>, crate::store::StoreError> {
        Ok(st
            .store
            .series_readings(&d.name, name, from, to.timestamp_millis())?
            .into_iter()
            .filter(|r| r.quality.is_good())
            .filter_map(|r| Some((r.ts, r.value?)))
            .collect())
    };
    let positions = series(&pos.name)?;
    let commands = match point(Quantity::ValveCommand) {
        Some(c) => series(&c.name)?,
        None => Vec::new(),
    };
    Ok(Some(crate::alerts::valve_life::life(&positions, &commands, 5.0)))
}

//! One event, one alert, with its consequences under it — Alertmanager's inhibition,
//! applied to a water network.
//!
//! A burst lets water out: its zone's supply may be cut, its pressure falls, its night
//! flow and balance rise, its meters read odd hours. An interruption leaves the pressure
//! low and the zone's meters reading nothing. A leak raises the zone's balance and its
//! inlet's hours. Each of those is raised by its own rule, and
//! each is true, but they are one event: an operator wants the burst, and under it what
//! it caused. [`causes`] attaches every such alert to its root: the page and `alerts
//! list` show it nested, the API gives `caused_by`, and the webhook does not notify it
//! on its own. The targets already count each measure once (an interruption's low
//! pressure is not counted again as low pressure).
//!
//! Pure: alerts in, a map out.

use std::collections::HashMap;

use crate::model::AlertRule;
use crate::store::AlertRow;

/// What `root` causes in its own zone.
pub fn consequences_of(root: AlertRule) -> &'static [AlertRule] {
    use AlertRule::*;
    match root {
        Burst => &[SupplyInterruption, PressureLow, NightFlow, NightPressure, ZoneImbalance, ConsumptionAnomaly],
        SupplyInterruption => &[PressureLow, NightPressure, ConsumptionAnomaly],
        // a leak raises the zone's balance and its inlet's hours, and lowers its night
        // pressure; whichever signal raised it first is the root
        NightFlow => &[NightPressure, ZoneImbalance, ConsumptionAnomaly],
        NightPressure => &[NightFlow, ZoneImbalance, ConsumptionAnomaly],
        _ => &[],
    }
}

/// A consequence starts at most this long before its root is stamped: a pressure alert
/// raised on the first low reading, a burst stamped at its first bin; a leak is stamped
/// when a night shows it, up to a day after its water began to show in the hours.
fn before_ms(root: AlertRule) -> i64 {
    match root {
        AlertRule::NightFlow | AlertRule::NightPressure => 24 * 3_600_000,
        _ => 10 * 60_000,
    }
}
/// … and at most this long after the root ended (meters reading the hour after supply
/// came back).
const AFTER_MS: i64 = 60 * 60_000;

/// A zone's parent in the network map (`None` at the top).
pub type ParentOf<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

/// `zone` is `root` or above it: a parent's inflow carries its children's events.
fn same_or_above(zone: &str, root: &str, parent_of: ParentOf<'_>) -> bool {
    let mut z = Some(root.to_string());
    // bounded: a network map has no cycles, but a walk must not trust that
    for _ in 0..32 {
        match z {
            Some(ref name) if name == zone => return true,
            Some(name) => z = parent_of(&name),
            None => return false,
        }
    }
    false
}

fn is_leak(r: AlertRule) -> bool {
    matches!(r, AlertRule::NightFlow | AlertRule::NightPressure)
}

fn covers(root: &AlertRow, a: &AlertRow, parent_of: ParentOf<'_>) -> bool {
    // one leak seen by two signals: the one raised first is the root
    if is_leak(root.rule) && is_leak(a.rule) && (a.start_ms, a.id) < (root.start_ms, root.id) {
        return false;
    }
    same_or_above(&a.zone, &root.zone, parent_of)
        && a.id != root.id
        && a.start_ms >= root.start_ms - before_ms(root.rule)
        && root.end_ms.is_none_or(|end| a.start_ms <= end + AFTER_MS)
}

/// Each alert caused by another (alert id → its root's id). A burst is the root of the
/// interruption it caused and of everything that interruption caused; roots are looked
/// for bursts first.
pub fn causes(alerts: &[AlertRow], parent_of: ParentOf<'_>) -> HashMap<i64, i64> {
    let mut out = HashMap::new();
    for root_rule in [AlertRule::Burst, AlertRule::SupplyInterruption, AlertRule::NightFlow, AlertRule::NightPressure] {
        for root in alerts.iter().filter(|r| r.rule == root_rule) {
            // an interruption that a burst caused passes its consequences up
            let top = out.get(&root.id).copied().unwrap_or(root.id);
            for a in
                alerts.iter().filter(|a| consequences_of(root_rule).contains(&a.rule) && covers(root, a, parent_of))
            {
                if a.id != top {
                    out.entry(a.id).or_insert(top);
                }
            }
        }
    }
    // a root found to be caused after it claimed its own consequences (a leak's night
    // flow raised after its pressure) passes them up: every alert points at the top
    let links = out.clone();
    for (a, root) in out.iter_mut() {
        // every link points back in time (a leak's root is the earlier), so the walk ends;
        // bounded all the same
        for _ in 0..links.len() {
            match links.get(root) {
                Some(up) if up != a && up != root => *root = *up,
                _ => break,
            }
        }
    }
    out
}

/// Alerts in the order they are shown: each root (or alert on its own), then the
/// alerts it caused, each with its root's id.
pub fn nested<'a>(alerts: &'a [AlertRow], parent_of: ParentOf<'_>) -> Vec<(&'a AlertRow, Option<i64>)> {
    let caused = causes(alerts, parent_of);
    let mut out = Vec::with_capacity(alerts.len());
    for a in alerts.iter().filter(|a| !caused.contains_key(&a.id)) {
        out.push((a, None));
        for c in alerts.iter().filter(|c| caused.get(&c.id) == Some(&a.id)) {
            out.push((c, Some(a.id)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    fn alert(id: i64, rule: AlertRule, zone: &str, start_min: i64, end_min: Option<i64>) -> AlertRow {
        AlertRow {
            id,
            rule,
            subject: zone.into(),
            zone: zone.into(),
            device: None,
            severity: Severity::Warning,
            start_ms: start_min * 60_000,
            end_ms: end_min.map(|m| m * 60_000),
            evidence: String::new(),
            loss_per_day: None,
            loss_fen_per_day: None,
            acked_by: None,
            acked_ms: None,
        }
    }

    /// north, south and east under campus
    fn campus(z: &str) -> Option<String> {
        (z != "campus").then(|| "campus".to_string())
    }

    #[test]
    fn a_burst_below_shows_in_the_parent_zones_hours_too() {
        use AlertRule::*;
        let alerts = vec![
            alert(30, Burst, "south", 100, Some(400)),
            alert(31, ConsumptionAnomaly, "campus", 100, Some(400)),
            alert(32, ConsumptionAnomaly, "north", 100, Some(400)),
        ];
        let c = causes(&alerts, &campus);
        assert_eq!(c.get(&31), Some(&30), "the parent's inflow carries it");
        assert_eq!(c.get(&32), None, "a sibling's does not");
    }

    #[test]
    fn an_outage_is_one_alert_with_its_consequences_under_it() {
        use AlertRule::*;
        // east's four-hour outage: pressure low at once, three meters reading nothing,
        // and a leak in north at the same time that has nothing to do with it
        let alerts = vec![
            alert(1, SupplyInterruption, "east", 600, Some(840)),
            alert(2, PressureLow, "east", 598, Some(842)),
            alert(3, ConsumptionAnomaly, "east", 660, Some(700)),
            alert(4, ConsumptionAnomaly, "east", 720, Some(780)),
            alert(5, ConsumptionAnomaly, "east", 850, Some(900)),
            alert(6, NightFlow, "north", 610, None),
            // a day later: its own event
            alert(7, PressureLow, "east", 2000, Some(2010)),
        ];
        let c = causes(&alerts, &campus);
        assert_eq!(c.get(&2), Some(&1));
        assert_eq!(c.get(&3), Some(&1));
        assert_eq!(c.get(&4), Some(&1));
        assert_eq!(c.get(&5), Some(&1), "the hour after supply returns");
        assert_eq!(c.get(&6), None, "another zone");
        assert_eq!(c.get(&7), None, "another day");
        let shown: Vec<(i64, Option<i64>)> = nested(&alerts, &campus).iter().map(|(a, r)| (a.id, *r)).collect();
        assert_eq!(
            shown,
            vec![(1, None), (2, Some(1)), (3, Some(1)), (4, Some(1)), (5, Some(1)), (6, None), (7, None)]
        );
    }

    #[test]
    fn a_burst_is_the_root_of_its_interruption_and_of_what_that_caused() {
        use AlertRule::*;
        let alerts = vec![
            alert(10, Burst, "south", 100, Some(400)),
            alert(11, SupplyInterruption, "south", 130, Some(300)),
            alert(12, PressureLow, "south", 131, Some(300)),
            alert(13, NightFlow, "south", 200, Some(420)),
        ];
        let c = causes(&alerts, &campus);
        assert_eq!([c.get(&11), c.get(&12), c.get(&13)], [Some(&10), Some(&10), Some(&10)]);
        assert_eq!(c.get(&10), None);
    }

    #[test]
    fn a_leak_carries_its_imbalance_and_its_inlets_odd_hours() {
        use AlertRule::*;
        // the leak began at 18:00; the night confirms it at 20:00 on the same day
        let alerts = vec![
            alert(20, NightFlow, "east", 1200, None),
            alert(21, ConsumptionAnomaly, "east", 1080, Some(5000)),
            alert(22, ZoneImbalance, "east", 2400, None),
            alert(23, ConsumptionAnomaly, "east", -3000, Some(-2900)),
        ];
        let c = causes(&alerts, &campus);
        assert_eq!([c.get(&21), c.get(&22), c.get(&23)], [Some(&20), Some(&20), None]);
    }

    #[test]
    fn a_leak_seen_by_flow_and_pressure_is_one_alert_under_the_first_signal() {
        use AlertRule::*;
        // the pressure raised it first; the night flow two nights later, and the
        // imbalance it carries, are under the pressure's alert (not under each other)
        let alerts = vec![
            alert(40, NightFlow, "east", 4000, None),
            alert(41, NightPressure, "east", 1200, None),
            alert(42, ZoneImbalance, "east", 4100, None),
            alert(43, NightPressure, "north", 1200, None),
        ];
        let c = causes(&alerts, &campus);
        assert_eq!([c.get(&40), c.get(&41), c.get(&42), c.get(&43)], [Some(&41), None, Some(&41), None]);
        let shown: Vec<(i64, Option<i64>)> = nested(&alerts, &campus).iter().map(|(a, r)| (a.id, *r)).collect();
        assert_eq!(shown, vec![(41, None), (40, Some(41)), (42, Some(41)), (43, None)]);
        // the other way round: the flow first
        let alerts = vec![alert(50, NightFlow, "east", 1200, None), alert(51, NightPressure, "east", 1500, None)];
        let c = causes(&alerts, &campus);
        assert_eq!([c.get(&50), c.get(&51)], [None, Some(&50)]);
    }
}

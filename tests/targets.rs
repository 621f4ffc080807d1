//! tier: fast (needs nothing installed: `scripts/test-fast` runs it)
//!
//! The simulator's fault scenarios, through the alert rules and the store, give the
//! counts a working group would write down by hand.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use pumphouse::ledger::month::Status;
use pumphouse::model::{AlertRule, Month};
use pumphouse::sim::{self, model::PumpHouse, scenario::parse};
use pumphouse::store::{Limits, Store};
use pumphouse::targets::{self, Measure, Period, Target};

fn local(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Shanghai.with_ymd_and_hms(2026, 4, d, h, m, 0).unwrap().with_timezone(&Utc)
}

#[test]
fn simulated_faults_give_the_hand_counted_incidents_and_interruptions() {
    let start = local(1, 0, 0);
    let at = |d: u32, h: u32, m: u32| local(d, h, m).to_rfc3339();
    let specs = [
        // chlorine dosing stops for an hour: chlorine falls below 0.3 mg/L within minutes
        format!("chlorine-fail@{}", at(1, 2, 0)),
        // turbidity 3.5 NTU for 20 minutes: an incident; 2 NTU for 3 minutes: noise
        format!("turbidity:3.5@{}", at(1, 10, 0)),
        format!("turbidity:2@{}", at(1, 14, 0)),
        // the east zone without supply for an hour
        format!("outage:east@{}", at(1, 20, 0)),
        // a pressure-reducing valve fails open in the south for half an hour
        format!("overpressure:south:0.75@{}", at(2, 9, 0)),
        // pump 1's L1 carries 130 A (rated 100 A) for 20 minutes
        format!("overload:pump-1:130@{}", at(2, 12, 0)),
    ];
    let ends = [local(1, 3, 0), local(1, 10, 20), local(1, 14, 3), local(1, 21, 0), local(2, 9, 30), local(2, 12, 20)];
    let scenarios: Vec<_> = specs
        .iter()
        .zip(ends)
        .map(|(s, end)| {
            let mut sc = parse(s, local(1, 0, 0), Shanghai).unwrap();
            sc.end = Some(end);
            sc
        })
        .collect();
    let profiles = sim::profiles().unwrap();
    let mut campus = PumpHouse::campus(&profiles, Shanghai, scenarios).unwrap();
    let start = start - TimeDelta::days(8);
    let mut text = sim::gateway_config(&campus, "campus", Shanghai, "127.0.0.1:5020", "1m");
    text.push_str(
        "\n[[baseline_targets]]\nmonth = \"2025-04\"\nincidents = 4\ninterruptions = 2\ncustomer_minutes = 100\nlow_pressure_minutes = 30\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let text = text.replace("# path = \"pumphouse.db\"", &format!("path = \"{}\"", dir.path().join("s.db").display()));
    let (cfg, _) = pumphouse::config::load_str(&text, pumphouse::config::Mode::Check).unwrap();
    let store = Store::open(&dir.path().join("s.db"), Limits::default()).unwrap();
    // a poll a minute, from a week before (the burst rule learns the usual rise at each
    // time of day from the week before); the faults fall on a Wednesday and a Thursday
    let site: std::sync::Arc<str> = "campus".into();
    let mut t = start;
    while t < local(3, 0, 0) {
        campus.step(t);
        store.append(&campus.readings(&site, t)).unwrap();
        t += TimeDelta::minutes(1);
    }
    let month = Month::parse("2026-04").unwrap();
    let (from, to) = month.bounds(Shanghai).unwrap();
    pumphouse::alerts::evaluate::record(&cfg.alert_spec(), &store, from, to).unwrap();
    let report =
        targets::from_store(&cfg.targets_spec(), &store, month, None, local(30, 23, 0) + TimeDelta::days(2)).unwrap();

    let incidents: Vec<(AlertRule, String, DateTime<Utc>)> =
        report.incidents.iter().map(|i| (i.rule, i.subject.clone(), i.start)).collect();
    let rules: Vec<AlertRule> = incidents.iter().map(|i| i.0).collect();
    assert_eq!(
        rules,
        vec![AlertRule::WaterQuality, AlertRule::WaterQuality, AlertRule::PressureHigh, AlertRule::Overcurrent],
        "{incidents:#?}"
    );
    assert_eq!(incidents[0].1, "quality-plant.free_chlorine");
    // chlorine 0.6 → 0.05 with a 15-minute time constant crosses 0.3 about 12 minutes in
    let crossed = (incidents[0].2 - local(1, 2, 0)).num_minutes();
    assert!((10..=14).contains(&crossed), "{crossed} min");
    assert_eq!((incidents[1].1.as_str(), incidents[1].2), ("quality-plant.turbidity", local(1, 10, 0)));
    assert_eq!((incidents[2].1.as_str(), incidents[2].2), ("pressure-south.pressure", local(2, 9, 0)));
    assert_eq!((incidents[3].1.as_str(), incidents[3].2), ("pump-1", local(2, 12, 0)));
    // one interruption: the east zone, 60 minutes, its two customer meters
    let cut: Vec<(String, i64, usize, i64)> =
        report.interruptions.iter().map(|i| (i.zone.clone(), i.minutes, i.customers, i.customer_minutes)).collect();
    assert_eq!(cut, vec![("east".to_string(), 60, 2, 120)]);
    assert_eq!(report.interruptions[0].start, local(1, 20, 0));
    // the outage's low pressure is the interruption itself, not counted again
    let low: i64 = report.low_pressure.iter().map(|l| l.minutes).sum();
    assert_eq!(low, 0, "{:?}", report.low_pressure);
    let row = |m: Measure| report.rows.iter().find(|r| r.measure == m && r.period == Period::Month).unwrap();
    assert_eq!((row(Measure::Incidents).this, row(Measure::Incidents).status), (Some(4), Some(Status::OnTrack)));
    assert_eq!(row(Measure::Interruptions).status, Some(Status::OnTrack));
    assert_eq!(
        (row(Measure::CustomerMinutes).this, row(Measure::CustomerMinutes).status),
        (Some(120), Some(Status::Breached))
    );
    let service = report.summary.iter().find(|s| s.target == Target::Service && s.period == Period::Month).unwrap();
    assert_eq!(service.status, Some(Status::Breached));
}

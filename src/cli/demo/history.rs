//! The demo's past: the simulated campus stepped hour by hour through the last months,
//! with events a utilities team would recognise, committed to the store as if the gateway
//! had polled them, then the closed months frozen and the alert rules run over it.
//!
//! The script is relative to `now` in the site's time zone:
//! - a leak of 1.6 m³/h in zone east since three nights ago, 01:30 (still running);
//! - a burst in zone south (60 m³/h for five hours) on the 9th, five months ago;
//! - valve-north stuck at 35 % for a day, twenty days ago;
//! - the laboratory's water meter not answering for six hours, six days ago;
//! - the canteen's water meter replaced on the 12th of last month (recorded as a
//!   correction, as the office would: the old meter's final reading and the new one's
//!   initial reading);
//! - valve-north exercised by its actuator on the 5th of every month at 10:01, closed and
//!   opened again, read every 10 s: each stroke took 50 s until its last three exercises,
//!   which took 60, 75 and 95 s (a gate stiffening in its seat);
//! - a tariff change: students' water from 2.85 to 3.10 yuan/m³ from the first day of
//!   the month four months ago (recorded as a correction).

use std::sync::Arc;

use chrono::{DateTime, Duration as TimeDelta, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config::Config;
use crate::ledger::book;
use crate::ledger::corrections::Change;
use crate::ledger::topology::Utility;
use crate::model::Month;
use crate::sim::model::PumpHouse;
use crate::sim::scenario::{Scenario, ScenarioKind};
use crate::store::Store;

/// Who the demo's corrections are recorded by.
pub const CLERK: &str = "demo.office";

/// The scripted events between `from` and `now`.
pub fn script(now: DateTime<Utc>, tz: Tz) -> Vec<Scenario> {
    let local = now.with_timezone(&tz);
    let day = |d: NaiveDate, h: u32, m: u32| {
        tz.from_local_datetime(&d.and_hms_opt(h, m, 0)?).earliest().map(|t| t.with_timezone(&Utc))
    };
    let today = local.date_naive();
    let months_ago = |n: u32, dom: u32| Month::containing(now, tz)?.back(n)?.day(dom);
    let mut out = Vec::new();
    if let Some(t) = day(today - TimeDelta::days(3), 1, 30) {
        out.push(Scenario::from(t, ScenarioKind::Leak { zone: "east".into(), rate: 1.6 }));
    }
    if let Some(t) = months_ago(5, 9).and_then(|d| day(d, 3, 0)) {
        out.push(Scenario::between(
            t,
            t + TimeDelta::hours(5),
            ScenarioKind::Leak { zone: "south".into(), rate: 60.0 },
        ));
    }
    if let Some(t) = day(today - TimeDelta::days(20), 8, 0) {
        out.push(Scenario::between(
            t,
            t + TimeDelta::days(1),
            ScenarioKind::ValveStuck { device: "valve-north".into(), position: 35.0 },
        ));
    }
    if let Some(t) = day(today - TimeDelta::days(6), 9, 0) {
        out.push(Scenario::between(t, t + TimeDelta::hours(6), ScenarioKind::Silent { device: "bldg-lab".into() }));
    }
    // the plant's chlorine dosing fails one night, and the east zone's main is shut for a
    // repair one morning: a safety incident and a supply interruption
    if let Some(t) = day(today - TimeDelta::days(12), 2, 0) {
        out.push(Scenario::between(t, t + TimeDelta::hours(3), ScenarioKind::ChlorineFail));
    }
    if let Some(t) = day(today - TimeDelta::days(9), 10, 0) {
        out.push(Scenario::between(t, t + TimeDelta::hours(4), ScenarioKind::Outage { zone: "east".into() }));
    }
    if let Some(t) = months_ago(1, 12).and_then(|d| day(d, 10, 0)) {
        out.push(Scenario::from(t, ScenarioKind::MeterReplaced { device: "bldg-canteen".into(), new_initial: 0.0 }));
    }
    out
}

/// The valve exercised monthly, and its strokes' times.
pub const EXERCISED_VALVE: &str = "valve-north";

/// valve-north's exercises between `from` and `now`: (start, travel in % per second).
/// The last three are slower: strokes of 60, 75 and 95 s against 50 s before.
pub fn exercises(from: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> Vec<(DateTime<Utc>, f64)> {
    let mut starts: Vec<DateTime<Utc>> = Month::containing(from, tz)
        .into_iter()
        .flat_map(Month::iter_from)
        .map_while(|m| {
            let t = tz.from_local_datetime(&m.day(5)?.and_hms_opt(10, 1, 0)?).earliest()?.with_timezone(&Utc);
            (t < now).then_some(t)
        })
        .filter(|t| *t > from)
        .collect();
    // the strokes must end before the next reading of the whole campus (every 5 minutes
    // over the last days): 95 s closing, 20 s shut, 95 s opening end by 10:04:30
    starts.retain(|t| *t + TimeDelta::minutes(4) < now);
    let n = starts.len();
    starts
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let secs = match n - i {
                1 => 95.0,
                2 => 75.0,
                3 => 60.0,
                _ => 50.0,
            };
            (t, 100.0 / secs)
        })
        .collect()
}

/// One exercise: the valve closed, held shut for 20 s and opened again, its readings
/// every 10 s (the whole campus stepped with it, so flows and pressures follow).
fn exercise(
    campus: &mut PumpHouse,
    site: &Arc<str>,
    start: DateTime<Utc>,
    speed: f64,
) -> anyhow::Result<Vec<crate::model::Reading>> {
    let read = |campus: &PumpHouse, t| campus.readings(site, t).into_iter().filter(|r| &*r.device == EXERCISED_VALVE);
    campus.set_valve_speed(EXERCISED_VALVE, speed);
    campus.step(start);
    let mut out: Vec<crate::model::Reading> = read(campus, start).collect();
    let mut t = start;
    for (command, end) in [(0.0, 0.5), (100.0, 99.5)] {
        campus.command_valve(EXERCISED_VALVE, command)?;
        for _ in 0..60 {
            t += TimeDelta::seconds(10);
            campus.step(t);
            out.extend(read(campus, t));
            let at = campus.valve_position(EXERCISED_VALVE).unwrap_or(command);
            if (at - command).abs() <= (command - end).abs() {
                break;
            }
        }
        if command == 0.0 {
            t += TimeDelta::seconds(20);
            campus.step(t);
            out.extend(read(campus, t));
        }
    }
    Ok(out)
}

/// The first hour of the history: the first day of the month `months` before this one.
pub fn start(now: DateTime<Utc>, tz: Tz, months: u32) -> Option<DateTime<Utc>> {
    Month::containing(now, tz)?.back(months)?.bounds(tz).map(|(a, _)| a)
}

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    pub readings: usize,
    pub frozen: usize,
    pub alerts: usize,
    pub from: Option<DateTime<Utc>>,
}

/// Steps `campus` hourly from `from` to `now`, commits what the gateway would have read,
/// records the office's corrections, freezes the closed months and runs the alert rules.
/// `progress` is told (done, total) hours.
pub fn generate(
    cfg: &Config,
    store: &Store,
    campus: &mut PumpHouse,
    line: &[crate::sim::meters::Meter],
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<Generated> {
    let site: Arc<str> = cfg.site.name.clone();
    // hourly, then every five minutes over the last three days: the window the running
    // gateway's alert passes look at reads like a polled one
    let fine_from = (now - TimeDelta::days(3)).max(from);
    let mut steps: Vec<DateTime<Utc>> = Vec::new();
    let mut t = from;
    while t + TimeDelta::hours(1) <= fine_from {
        steps.push(t);
        t += TimeDelta::hours(1);
    }
    while t <= now {
        steps.push(t);
        t += TimeDelta::minutes(5);
    }
    let mut out = Generated { from: Some(from), ..Default::default() };
    let mut batch = Vec::with_capacity(20_000);
    let total = steps.len() as u64;
    let mut exercises = exercises(from, now, cfg.site.timezone).into_iter().peekable();
    for (k, t) in steps.into_iter().enumerate() {
        while let Some((start, speed)) = exercises.next_if(|(s, _)| *s < t) {
            batch.extend(exercise(campus, &site, start, speed)?);
        }
        campus.step(t);
        batch.extend(campus.readings(&site, t));
        batch.extend(crate::sim::meters::history_readings(line, &site, from, t));
        if batch.len() >= 16_000 || k as u64 + 1 == total {
            store.append(&batch)?;
            out.readings += batch.len();
            batch.clear();
            progress(k as u64 + 1, total);
        }
    }
    // the office's records
    let spec = cfg.ledger_spec();
    for (device, when, old_final) in campus.swaps.clone() {
        let change = Change::Replacement {
            device: device.clone(),
            point: "positive_total".into(),
            ts: when,
            old_final,
            new_initial: 0.0,
        };
        book::record_correction(&spec, store, CLERK, &format!("{device}：换表（工单）"), &change, now)?;
    }
    // the valve crew's round: V-S3 exercised five months ago; V-E2 has no record (due)
    store.add_asset_record(
        "V-S3",
        crate::store::AssetWork::Exercise,
        now - TimeDelta::days(150),
        CLERK,
        "年度活动：全关全开，关闭严密",
        None,
    )?;
    // a price change four months back, so that the ledger shows months on both sides
    if let Some(first) = Month::containing(now, cfg.site.timezone).and_then(|m| m.back(4)?.day(1)) {
        let change = Change::Tariff {
            utility: Utility::Water,
            category: "student_dormitory".into(),
            from: first,
            price: rust_decimal::Decimal::new(310, 2),
        };
        book::record_correction(&spec, store, CLERK, "调价通知：学生用水 3.10 元/m³", &change, now)?;
    }
    out.frozen = book::freeze_closed_months(&spec, store, now)?;
    out.alerts = crate::alerts::evaluate::record(&cfg.alert_spec(), store, from, now)?.len();
    // the crew found the July burst on S-01, the old cast-iron main, and said so
    let burst = store
        .alerts(false)?
        .into_iter()
        .filter(|a| a.rule == crate::model::AlertRule::Burst && a.zone == "south")
        .min_by_key(|a| a.start_ms);
    if let Some(b) = burst {
        let done = b.end_ms.and_then(DateTime::from_timestamp_millis).unwrap_or(now);
        store.add_asset_record(
            "S-01",
            crate::store::AssetWork::Repair,
            done,
            CLERK,
            "抢修：铸铁管环向断裂，更换 1 米管段",
            Some(b.id),
        )?;
    }
    Ok(out)
}

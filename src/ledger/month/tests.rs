//! A hand-computed month: Asia/Shanghai, March 2026, hourly readings. Every figure below
//! is worked out in the comments and matched to the fen.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::config::{self, Mode};

const CONFIG: &str = include_str!("../../../tests/fixtures/march-2026.toml");

fn t0() -> DateTime<Utc> {
    // an hour boundary well before the month and its seven-day margin
    Utc.with_ymd_and_hms(2026, 2, 15, 0, 0, 0).unwrap()
}

/// Hourly totalizer readings: `start + rate × hours`, with the adjustments of the case.
fn readings(device: &str) -> Vec<(DateTime<Utc>, f64)> {
    let (start, rate) = match device {
        "main" => (1000.0, 5.0),
        "za" => (9000.0, 3.0),
        "c1" => (200.0, 0.05),
        "c2" => (500.0, 0.5),
        "pm" => (50_000.0, 20.0),
        "e1" => (7_000.0, 5.0),
        _ => return Vec::new(),
    };
    let spike = Utc.with_ymd_and_hms(2026, 3, 5, 4, 0, 0).unwrap();
    let gap_from = Utc.with_ymd_and_hms(2026, 3, 9, 16, 0, 0).unwrap(); // 10 March local
    let gap_to = gap_from + TimeDelta::hours(24);
    (0..24 * 50)
        .filter_map(|h| {
            let ts = t0() + TimeDelta::hours(h);
            let mut v = start + rate * h as f64;
            if device == "za" {
                v %= 10_000.0; // the register wraps at 10 000 m³
            }
            if device == "main" && ts == spike {
                v += 5_000.0; // a glitch: 5000 m³ in an hour
            }
            if device == "c2" && ts > gap_from && ts < gap_to {
                return None; // a day without readings
            }
            Some((ts, v))
        })
        .collect()
}

fn ledger() -> Ledger {
    ledger_as_of(None)
}

fn ledger_as_of(as_of: Option<DateTime<Utc>>) -> Ledger {
    let text = CONFIG.replace("[[meters]]\ndevice = \"main\"\nmax_rate = 50\n", "");
    let (mut cfg, _) = config::load_str(&text, Mode::Check).unwrap_or_else(|e| panic!("{e}"));
    // limits of the inlets (not settable on [[zones]] inlets): main 50 m³/h, za wraps at 10 000
    for m in &mut cfg.topology.meters {
        match m.device.as_str() {
            "main" => m.max_rate = Some(50.0),
            "za" => m.rollover_at = Some(10_000.0),
            _ => {}
        }
    }
    let data: HashMap<String, Vec<(DateTime<Utc>, f64)>> =
        ["main", "za", "c1", "c2", "pm", "e1"].iter().map(|d| (d.to_string(), readings(d))).collect();
    let samples = samples_of(&data);
    let spec = Spec { as_of, ..cfg.ledger_spec() };
    compute(&spec, mo(2026, 3), &samples, &[]).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn the_month_follows_the_site_time_zone() {
    let l = ledger();
    assert_eq!(l.month.key(), "2026-03");
    assert_eq!(l.from, Utc.with_ymd_and_hms(2026, 2, 28, 16, 0, 0).unwrap());
    assert_eq!(l.to, Utc.with_ymd_and_hms(2026, 3, 31, 16, 0, 0).unwrap());
}

#[test]
fn meters_book_rollover_spike_and_gap_correctly() {
    let l = ledger();
    let m = |d: &str| l.meters.iter().find(|m| m.device == d).unwrap();
    // 31 days × 24 h = 744 h
    assert!(close(m("main").consumption, 3720.0), "{}", m("main").consumption); // 5 × 744, the spike quarantined
    assert_eq!(m("main").quarantined, 1);
    assert!(close(m("za").consumption, 2232.0), "{}", m("za").consumption); // 3 × 744 across the wrap at 10 000
    assert!(m("za").notes.iter().any(|n| n.contains("rollover")));
    assert!(close(m("c1").consumption, 37.2));
    assert!(close(m("c2").consumption, 372.0)); // 0.5 × 744, the missing day bridged
    assert!(close(m("c2").estimated, 12.0), "{}", m("c2").estimated); // one 24 h interval × 0.5
    assert!(close(m("e1").consumption, 3720.0));
}

#[test]
fn revenue_matches_the_hand_computed_bills() {
    let l = ledger();
    let fen = |d: &str| l.meters.iter().find(|m| m.device == d).unwrap().amount_fen.unwrap();
    // c1 staff housing, 37.2 m³: 15 × 2.85 + 7 × 3.80 + 15.2 × 4.75 = 42.75 + 26.60 + 72.20
    assert_eq!(fen("c1"), 14_155);
    // c2 canteen: 1–15 March 180 m³ × 4.20 = 756.00; 16–31 March 192 m³ × 4.50 = 864.00
    assert_eq!(fen("c2"), 162_000);
    // e1 dormitory: 3720 kWh × 0.588 = 2187.36
    assert_eq!(fen("e1"), 218_736);
}

#[test]
fn zone_balances_add_up_and_pass_children_on() {
    let l = ledger();
    let z = |n: &str| l.zones.iter().find(|z| z.zone == n).unwrap();
    let campus = z("campus");
    assert!(close(campus.balance.input, 3720.0));
    assert!(close(campus.balance.transferred, 2232.0));
    assert!(close(campus.balance.billed, 372.0));
    assert!(close(campus.losses, 1116.0)); // 3720 − 2232 − 372
    let a = z("a");
    assert!(close(a.balance.unbilled_estimated, 62.0)); // 2 m³/day × 31
    assert!(close(a.losses, 2132.8)); // 2232 − 37.2 − 62
    assert!(close(a.non_revenue, 2194.8)); // 2232 − 37.2
    let w = l.utilities.iter().find(|u| u.utility == Some(Utility::Water)).unwrap();
    assert!(close(w.input, 3720.0) && close(w.billed, 409.2) && close(w.unbilled, 62.0));
    assert!(close(w.losses, 3248.8) && close(w.non_revenue, 3310.8));
}

#[test]
fn a_running_month_is_judged_month_to_date_against_the_same_share_of_the_baseline() {
    // judged at 8 March 00:00 local: 7 of 31 days have passed
    let as_of = chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 3, 8, 0, 0, 0).unwrap().with_timezone(&Utc);
    let l = ledger_as_of(Some(as_of));
    let maintenance = l.costs.iter().find(|c| c.utility == Utility::Water && c.quantity.is_none()).unwrap();
    // 8000.00 × 7/31 = 1806.4516… → 1806.45
    assert_eq!(maintenance.amount_fen, 180_645);
    assert!(maintenance.notes.iter().any(|n| n.contains("accrued for 7.0 of 31 days")), "{:?}", maintenance.notes);
    let w = l.utilities.iter().find(|u| u.utility == Some(Utility::Water)).unwrap();
    // the demand charge is by the month too: 760.00 × 7/31 = 171.6129… → 171.61
    assert_eq!(l.costs.iter().find(|c| c.name == "demand").unwrap().amount_fen, 17_161);
    // the baseline month's gap, 8300.00, in the same share: 1874.1935… → 1874.19
    assert_eq!(w.baseline_gap_fen, Some(187_419));
    assert!(l.notes.iter().any(|n| n.starts_with("a running month, judged month-to-date")), "{:?}", l.notes);
    // the closed month books the whole fixed cost against the whole baseline
    let closed = ledger();
    let m = closed.costs.iter().find(|c| c.utility == Utility::Water && c.quantity.is_none()).unwrap();
    assert_eq!(m.amount_fen, 800_000);
}

#[test]
fn costs_gap_and_baseline_to_the_fen() {
    let l = ledger();
    let w = l.utilities.iter().find(|u| u.utility == Some(Utility::Water)).unwrap();
    assert_eq!(w.revenue_fen, 176_155); // 14 155 + 162 000
                                        // 3720 m³ × 0.62 = 2306.40, plus 8000.00 maintenance
    assert_eq!(w.cost_fen, 1_030_640);
    assert_eq!(w.gap_fen, 854_485);
    // baseline March 2025: 10 000.00 − 1 700.00 = 8 300.00; up 244.85 = 2.95 % → at risk
    assert_eq!(w.baseline_gap_fen, Some(830_000));
    assert_eq!(w.gap_change_fen, Some(24_485));
    assert_eq!(w.status, Some(Status::AtRisk));
    // I0 3500, B0 400, c0 = 1 000 000/3500, p0 = 170 000/400, s0 = 400/3500;
    // I1 3720, B1 409.2: volume (I1−I0)(c0−s0·p0) = 52 171; price I1((c1−c0)−s0(p1−p0))
    // = −34 550; loss −I1(s1−s0)p1 = 6 863; together 24 484 ≈ 24 485 (rounding)
    let e = w.effects.as_ref().unwrap();
    assert_eq!((e.volume_fen, e.price_fen, e.loss_fen), (52_171, -34_550, 6_863));
    let el = l.utilities.iter().find(|u| u.utility == Some(Utility::Electricity)).unwrap();
    // per day 160 kWh valley (8 h), 150 flat (7.5 h), 170 peak (8.5 h) at 20 kWh/h; × 31:
    // valley 4960 × 0.3126 = 1550.496 → 1550.50; flat 4650 × 0.6215 = 2889.975 → 2889.98;
    // peak 5270 × 1.0512 = 5539.824 → 5539.82; demand 20 kW × 38 = 760.00
    let purchase = l.costs.iter().find(|c| c.name == "purchase").unwrap();
    assert_eq!(purchase.amount_fen, 155_050 + 288_998 + 553_982);
    assert_eq!(l.costs.iter().find(|c| c.name == "demand").unwrap().amount_fen, 76_000);
    assert_eq!(el.cost_fen, 1_074_030);
    assert_eq!(el.gap_fen, 1_074_030 - 218_736);
    assert_eq!(el.status, None, "no electricity baseline");
    assert_eq!(l.combined.gap_fen, 854_485 + 855_294);
    assert_eq!(l.combined.status, None, "combined needs every utility's baseline");
}

#[test]
fn exports_carry_the_same_figures() {
    let l = ledger();
    let csv = crate::ledger::export::to_csv(&l, crate::ledger::export::Lang::En, &[]);
    // money as yuan with two decimals, the non-revenue share (3310.8 / 3720) as a percentage
    assert!(
        csv.contains(
            "\nwater,3720,409.2,62,3248.8,3310.8,89.0%,1761.55,10306.40,8544.85,8300.00,244.85,521.71,-345.50,68.63,at risk,m3\n"
        ),
        "{csv}"
    );
    let zh = crate::ledger::export::to_csv(&l, crate::ledger::export::Lang::Zh, &[]);
    assert!(zh.contains("收支差额(元，成本−收入)") && zh.contains("预警"), "{zh}");
    let xlsx = crate::ledger::export::to_xlsx(&l, crate::ledger::export::Lang::Zh, &[], None).unwrap();
    assert!(xlsx.starts_with(b"PK"), "an xlsx is a zip file");
    let json = serde_json::to_value(&l).unwrap();
    assert_eq!(json["utilities"][0]["gap_fen"], 854_485);
}

#[test]
fn corrections_change_the_bill_and_are_listed() {
    use crate::ledger::corrections::{Change, Correction};
    use std::str::FromStr;
    let text = CONFIG.replace("[[meters]]\ndevice = \"main\"\nmax_rate = 50\n", "");
    let (cfg, _) = config::load_str(&text, Mode::Check).unwrap();
    let data: HashMap<String, Vec<(DateTime<Utc>, f64)>> =
        ["c2"].iter().map(|d| (d.to_string(), readings(d))).collect();
    let samples = samples_of(&data);
    let at = Utc.with_ymd_and_hms(2026, 3, 20, 0, 0, 0).unwrap();
    let corrections = vec![
        Correction {
            id: 7,
            at,
            by: "li.wei".into(),
            why: "price notice 2026-12".into(),
            change: Change::Tariff {
                utility: Utility::Water,
                category: "canteen".into(),
                from: chrono::NaiveDate::from_ymd_opt(2026, 3, 25).unwrap(),
                price: rust_decimal::Decimal::from_str("5.00").unwrap(),
            },
        },
        Correction {
            id: 8,
            at,
            by: "li.wei".into(),
            why: "not this month".into(),
            change: Change::Tariff {
                utility: Utility::Water,
                category: "canteen".into(),
                from: chrono::NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
                price: rust_decimal::Decimal::from_str("9.00").unwrap(),
            },
        },
    ];
    let l = compute(&cfg.ledger_spec(), mo(2026, 3), &samples, &corrections).unwrap();
    let c2 = l.meters.iter().find(|m| m.device == "c2").unwrap();
    // 1–15 March 180 m³ × 4.20 = 756.00; 16–24 March 108 m³ × 4.50 = 486.00;
    // 25–31 March 84 m³ × 5.00 (the correction) = 420.00
    assert_eq!(c2.amount_fen, Some(166_200));
    assert!(c2.tariff.as_ref().unwrap().contains("correction #7"), "{:?}", c2.tariff);
    assert_eq!(l.corrections.iter().map(|c| c.id).collect::<Vec<_>>(), vec![7], "April's change does not affect March");
    let csv = crate::ledger::export::to_csv(&l, crate::ledger::export::Lang::En, &[]);
    assert!(
        csv.contains("li.wei,water tariff for canteen from 2026-03-25: 5.00 per unit,price notice 2026-12,7"),
        "{csv}"
    );
}

#[test]
fn influx_lines_carry_the_figures_at_the_month_start() {
    let l = ledger();
    let lines = crate::ledger::export::influx_lines(&l);
    // 2026-03-01 00:00 Asia/Shanghai = 2026-02-28T16:00:00Z
    let ts = " 1772294400000000000\n";
    let water = lines.lines().find(|x| x.contains("kind=utility,utility=water")).unwrap();
    assert!(water.starts_with("ledger,site=fixture,month=2026-03,kind=utility,utility=water revenue_yuan=1761.55,cost_yuan=10306.4,gap_yuan=8544.85,input=3720.0"), "{water}");
    assert!(water.contains("baseline_gap_yuan=8300.0,status=\"at risk\""), "{water}");
    assert!(lines.contains("kind=zone,utility=water,zone=a input=2232.0"), "{lines}");
    assert!(lines.lines().all(|x| format!("{x}\n").ends_with(ts)), "{lines}");
}

#[test]
fn costs_are_allocated_to_zones_by_net_input() {
    let l = ledger();
    let z = |n: &str| l.zones.iter().find(|z| z.zone == n).unwrap().clone();
    // 1 030 640 fen × 1488/3720 and × 2232/3720
    assert_eq!((z("campus").cost_fen, z("campus").revenue_fen, z("campus").gap_fen), (412_256, 162_000, 250_256));
    assert_eq!((z("a").cost_fen, z("a").revenue_fen, z("a").gap_fen), (618_384, 14_155, 604_229));
}

#[test]
fn year_to_date_sums_the_months_and_projects_the_year() {
    let mut text = CONFIG.replace("[[meters]]\ndevice = \"main\"\nmax_rate = 50\n", "");
    for m in 1..=12 {
        if m != 3 {
            text.push_str(&format!(
                "[[baseline]]\nmonth = \"2025-{m:02}\"\nutility = \"water\"\nrevenue = \"1000.00\"\ncost = \"9000.00\"\n"
            ));
        }
    }
    let (cfg, _) = config::load_str(&text, Mode::Check).unwrap_or_else(|e| panic!("{e}"));
    let data: HashMap<String, Vec<(DateTime<Utc>, f64)>> =
        ["main", "za", "c1", "c2", "pm", "e1"].iter().map(|d| (d.to_string(), readings(d))).collect();
    let samples = samples_of(&data);
    let l = compute(&cfg.ledger_spec(), mo(2026, 3), &samples, &[]).unwrap();
    let month = |m: u32| {
        compute_from(
            &cfg.ledger_spec(),
            mo(2026, m),
            &Source { samples: &samples, frozen: None, anchor: None },
            &[],
            Depth::Month,
        )
        .unwrap()
    };
    let water_gap = |l: &Ledger| l.utilities.iter().find(|u| u.utility == Some(Utility::Water)).unwrap().gap_fen;
    let ytd = l.year_to_date.iter().find(|y| y.utility == Some(Utility::Water)).unwrap();
    // January has no readings at all and February only from the 14th (the fixture
    // starts in mid-February): both are partial, left out of the year to date on both
    // sides, so that the year compares like with like
    assert!(month(1).utilities.iter().all(|u| u.input == 0.0));
    assert!(month(1).partial && month(2).partial && !l.partial);
    assert!(month(2).notes.iter().any(|n| n.starts_with("partial month")), "{:?}", month(2).notes);
    // February's own full ledger shows no year to date: 12 times half a month is no year
    let february = compute(&cfg.ledger_spec(), mo(2026, 2), &samples, &[]).unwrap();
    assert!(february.partial && february.year_to_date.is_empty(), "{:?}", february.year_to_date);
    // and half of February is not judged against the whole of last February, though the
    // baseline is there to see
    for u in february.utilities.iter().chain([&february.combined]) {
        assert_eq!((u.status, u.gap_change_fen), (None, None), "{:?}", u.utility);
    }
    let water = |l: &Ledger| l.utilities.iter().find(|u| u.utility == Some(Utility::Water)).cloned().unwrap();
    assert_eq!(water(&february).baseline_gap_fen, Some(800_000));
    assert!(water(&l).status.is_some(), "a whole month is judged");
    assert_eq!(ytd.partial_months_left_out, vec![mo(2026, 1), mo(2026, 2)]);
    assert_eq!(ytd.months, 1);
    assert_eq!(ytd.gap_fen, water_gap(&l));
    // baseline: 8300.00 for March (8000.00 a month from the config for the others)
    assert_eq!(ytd.baseline_gap_fen, Some(830_000));
    assert_eq!(ytd.baseline_full_year_fen, Some(830_000 + 800_000 * 9));
    let expected = ytd.gap_fen + (800_000.0 * 9.0 * ytd.gap_fen as f64 / 830_000.0).round() as i64;
    assert_eq!(ytd.projection_fen, expected);
    assert_eq!(ytd.projection_method, "baseline seasonal shape scaled by year to date");
    assert!(ytd.status.is_some());
    // electricity has no baseline: the year-to-date average carries on
    let e = l.year_to_date.iter().find(|y| y.utility == Some(Utility::Electricity)).unwrap();
    assert_eq!(e.projection_method, "year-to-date average per month carried on");
    assert_eq!(e.projection_fen, e.gap_fen * 12);
    assert_eq!(e.status, None);
}

#[test]
fn without_old_books_the_baseline_comes_from_last_years_readings() {
    let text = CONFIG.replace("[[meters]]\ndevice = \"main\"\nmax_rate = 50\n", "");
    let i = text.find("[[baseline]]").unwrap();
    let (cfg, _) = config::load_str(&text[..i], Mode::Check).unwrap_or_else(|e| panic!("{e}"));
    // the same meters a year earlier (365 days before), lower by a tenth
    let data: HashMap<String, Vec<(DateTime<Utc>, f64)>> = ["main", "za", "c1", "c2", "pm", "e1"]
        .iter()
        .map(|d| {
            let mut v = readings(d);
            v.extend(readings(d).into_iter().map(|(t, x)| (t - TimeDelta::days(365), x * 0.9)));
            (d.to_string(), v)
        })
        .collect();
    let samples = samples_of(&data);
    let now = compute_from(
        &cfg.ledger_spec(),
        mo(2026, 3),
        &Source { samples: &samples, frozen: None, anchor: None },
        &[],
        Depth::Month,
    )
    .unwrap();
    let then = compute_from(
        &cfg.ledger_spec(),
        mo(2025, 3),
        &Source { samples: &samples, frozen: None, anchor: None },
        &[],
        Depth::Bare,
    )
    .unwrap();
    let w = now.utilities.iter().find(|u| u.utility == Some(Utility::Water)).unwrap();
    let w0 = then.utilities.iter().find(|u| u.utility == Some(Utility::Water)).unwrap();
    assert!(w0.input > 0.0);
    assert_eq!(w.baseline_source, Some(BaselineSource::History));
    assert_eq!(w.baseline_gap_fen, Some(w0.gap_fen));
    assert!(w.effects.is_some(), "history has volumes: the change is explained");
}

fn mo(year: i32, month: u32) -> Month {
    Month::new(year, month).unwrap()
}

/// The fixture plus the pump house's own grid connection, which is no zone's meter, and
/// a water cost priced on its energy.
fn with_pump_grid(extra: &str) -> String {
    let text = CONFIG.replace("[[meters]]\ndevice = \"main\"\nmax_rate = 50\n", "");
    format!(
        "{text}\n[[devices]]\nname = \"pumps-grid\"\nbus = \"lan\"\nunit = 7\nprofile = \"eastron-sdm630\"\n\
         [[costs]]\nutility = \"water\"\nname = \"pump energy\"\nkind = \"meters\"\nmeters = [\"pumps-grid\"]\nprice = \"0.70\"\n{extra}"
    )
}

#[test]
fn a_cost_on_a_meter_outside_the_network_map_is_booked_from_its_totalizer() {
    let (cfg, _) = config::load_str(&with_pump_grid(""), Mode::Check).unwrap_or_else(|e| panic!("{e}"));
    // pumps-grid: 3000 kWh + 2 kWh an hour; 744 h in March = 1488 kWh × 0.70 = 1041.60 yuan
    let samples = |device: &str, _p: &str, from: DateTime<Utc>, to: DateTime<Utc>| -> Result<Vec<Sample>, ReadError> {
        let rows = if device == "pumps-grid" {
            (0..24 * 50).map(|h| (t0() + TimeDelta::hours(h), 3000.0 + 2.0 * h as f64)).collect()
        } else {
            readings(device)
        };
        Ok(rows
            .into_iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(t, v)| Sample { ts: t, value: Some(v), good: true })
            .collect())
    };
    let l = compute(&cfg.ledger_spec(), mo(2026, 3), &samples, &[]).unwrap();
    let pump = l.costs.iter().find(|c| c.name == "pump energy").unwrap();
    assert_eq!(pump.quantity, Some(1488.0));
    assert_eq!(pump.amount_fen, 104_160);
    assert!(pump.notes.is_empty(), "{:?}", pump.notes);
    let water = l.utilities.iter().find(|u| u.utility == Some(Utility::Water)).unwrap();
    let others: i64 =
        l.costs.iter().filter(|c| c.utility == Utility::Water && c.name != "pump energy").map(|c| c.amount_fen).sum();
    assert_eq!(water.cost_fen, others + 104_160);
    // outside every balance: no zone row or meter row for it
    assert!(l.meters.iter().all(|m| m.device != "pumps-grid"));
    // and frozen with the month
    assert!(l.hourly.keys().any(|k| k.starts_with("pumps-grid.")), "{:?}", l.hourly.keys().collect::<Vec<_>>());

    // a silent pump meter is a flagged cost line, and the ledger says so
    let silent = |device: &str, p: &str, from: DateTime<Utc>, to: DateTime<Utc>| {
        if device == "pumps-grid" {
            Ok(Vec::new())
        } else {
            samples(device, p, from, to)
        }
    };
    let l = compute(&cfg.ledger_spec(), mo(2026, 3), &silent, &[]).unwrap();
    let pump = l.costs.iter().find(|c| c.name == "pump energy").unwrap();
    assert_eq!(pump.amount_fen, 0);
    assert!(pump.notes.iter().any(|n| n.contains("no trusted readings")), "{:?}", pump.notes);
    assert!(l.notes.iter().any(|n| n.contains("pump energy")), "{:?}", l.notes);
}

/// The errors a config text draws in check mode, as "path: message".
fn config_errors(text: &str) -> Vec<String> {
    match config::load_str(text, Mode::Check) {
        Ok(_) => panic!("expected errors"),
        Err(e) => {
            e.0.into_iter()
                .filter(|d| d.severity == crate::diag::Severity::Error)
                .map(|d| format!("{}: {}", d.path, d.message))
                .collect()
        }
    }
}

#[test]
fn a_cost_naming_no_device_or_one_without_the_totalizer_is_a_config_error() {
    let e = config_errors(&with_pump_grid("").replace("meters = [\"pumps-grid\"]", "meters = [\"pump-grid\"]"));
    assert!(e.iter().any(|x| x.contains("costs[4].meters: no device `pump-grid`")), "{e:?}");
    // a cost on a pressure transmitter, which has no totalizer
    let e = config_errors(&format!(
        "{}\n[[devices]]\nname = \"p1\"\nbus = \"lan\"\nunit = 8\nprofile = \"analog-4-20ma\"\n[[costs]]\nutility = \"electricity\"\nname = \"x\"\nkind = \"meters\"\nmeters = [\"p1\"]\nprice = \"1\"\n",
        with_pump_grid("")
    ));
    assert!(
        e.iter().any(|x| x.contains("costs[5].meters: device `p1` (profile analog-4-20ma) has no totalizer")),
        "{e:?}"
    );
}

#[test]
fn no_silent_zero_in_money() {
    // a demand charge priced by time of use
    let text = CONFIG.replace(
        "name = \"demand\"\nkind = \"demand\"\nprice = \"38\"",
        "name = \"demand\"\nkind = \"demand\"\ntou = { peak = \"40\", flat = \"38\", valley = \"30\" }",
    );
    let e = config_errors(&text);
    assert!(e.iter().any(|x| x.contains("costs[3].price: a demand charge is priced per kW")), "{e:?}");
    // the same baseline month twice, and a baseline month that does not parse
    let e = config_errors(&format!("{CONFIG}\n[[baseline]]\nmonth = \"2025-03\"\nutility = \"water\"\nrevenue = \"1\"\ncost = \"2\"\n[[baseline]]\nmonth = \"March 2025\"\nutility = \"water\"\nrevenue = \"1\"\ncost = \"2\"\n"));
    assert!(e.iter().any(|x| x.contains("baseline[1].month: another water baseline is given for 2025-03")), "{e:?}");
    assert!(e.iter().any(|x| x.starts_with("baseline[2]: needs month (YYYY-MM)")), "{e:?}");

    // a category whose tariff comes into force mid-month: the hours before are not
    // charged, and the line says so instead of billing them at zero
    let text = CONFIG.replace("[[meters]]\ndevice = \"main\"\nmax_rate = 50\n", "").replace(
        "category = \"staff_housing\"\nfrom = \"2026-01-01\"",
        "category = \"staff_housing\"\nfrom = \"2026-03-11\"",
    );
    let (cfg, _) = config::load_str(&text, Mode::Check).unwrap_or_else(|e| panic!("{e}"));
    let data: HashMap<String, Vec<(DateTime<Utc>, f64)>> =
        ["c1"].iter().map(|d| (d.to_string(), readings(d))).collect();
    let samples = samples_of(&data);
    let l = compute(&cfg.ledger_spec(), mo(2026, 3), &samples, &[]).unwrap();
    let c1 = l.meters.iter().find(|m| m.device == "c1").unwrap();
    // 1–10 March local: 240 h × 0.05 = 12.000 m³ not charged; 11–31 March 25.2 m³ charged
    // at the tiers: 15 × 2.85 + 7 × 3.80 + 3.2 × 4.75 = 42.75 + 26.60 + 15.20 = 84.55 yuan
    assert!(c1.flagged);
    assert!(
        c1.notes.iter().any(|n| n
            .starts_with("12.000 not charged: no water tariff for category `staff_housing` in force from 2026-03-01")),
        "{:?}",
        c1.notes
    );
    assert_eq!(c1.amount_fen, Some(8_455));
    assert!(l.notes.iter().any(|n| n.contains("meter(s) flagged")), "{:?}", l.notes);
}

/// Readings of the meters in `data` (device → hourly readings), as the ledger's source.
fn samples_of(
    data: &HashMap<String, Vec<(DateTime<Utc>, f64)>>,
) -> impl Fn(&str, &str, DateTime<Utc>, DateTime<Utc>) -> Result<Vec<Sample>, ReadError> + '_ {
    move |device, _point, from, to| {
        Ok(data
            .get(device)
            .map(|v| {
                v.iter()
                    .filter(|(t, _)| *t >= from && *t < to)
                    .map(|(t, x)| Sample { ts: *t, value: Some(*x), good: true })
                    .collect()
            })
            .unwrap_or_default())
    }
}

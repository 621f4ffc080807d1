//! Detection quality of the night-flow leak rule (`src/alerts/night_flow.rs`) on real DMA
//! inflows.
//!
//! Data: the hourly inflows of the ten district metered areas of the Battle of Water
//! Demand Forecasting (Alvisi et al. 2025, J. Water Resour. Plann. Manage., doi
//! 10.1061/JWRMD5.WRENG-6887, CC BY 4.0), read from ../shared/data/bwdf/InflowData.csv
//! (or BWDF_CSV). Their real gaps stay gaps.
//!
//! - False alarms: the rule over every DMA's whole record as it is (assumed free of new
//!   leaks; any raise counts against the rule), per zone-quarter.
//! - Detection: for each DMA, constant leaks of a share of its mean night flow start at 20
//!   pseudo-random hours (after 30 days of history) and last 14 days; a leak is detected
//!   when the rule raises after its start; time to detect runs from the start to the end
//!   of the night hour that raised it.
//! - Scenarios the rule must not alarm on, each injected at 20 starts per DMA into
//!   stretches where the record as it is raises nothing: a holiday week, a new building
//!   (day demand up, and a variant with night flow up 5 %), a meter gap of 24/48/72 h, a
//!   seasonal ramp of +20 % over 60 days.
//!
//! `cargo bench --bench leak_detection`; results printed and written to
//! target/bench/leak_detection.json.

#[path = "bwdf/mod.rs"]
mod bwdf;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use pumphouse::alerts::night_flow::{evaluate, NightHour, Settings};

type Series = BTreeMap<DateTime<Utc>, f64>;

fn raises(e: &[NightHour]) -> usize {
    e.windows(2).filter(|w| w[1].leak && !w[0].leak).count() + usize::from(e.first().is_some_and(|x| x.leak))
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * p).round() as usize]
}

/// The 20 start indices of the injected events, spread over the record.
fn starts(len: usize) -> Vec<usize> {
    (0..20).map(|k| 24 * 30 + (k * 7919 + 13 * k * k) % (len - 24 * 45)).collect()
}

fn main() {
    let zones: Vec<(String, Series)> = bwdf::load().into_iter().filter(|(_, s)| s.len() >= 24 * 60).collect();
    let tz = chrono_tz::Europe::Rome;
    let s = Settings::default();
    let mut json = Vec::new();

    // false alarms on the records as they are
    let mut total_raises = 0;
    let mut total_quarters = 0.0;
    let mut per_dma: Vec<(String, f64, f64, f64, f64, usize)> = Vec::new(); // name, night mean, noise %, FA/q, 10 %≤48h, 20 %≤24h
    let mut whole: Vec<Vec<NightHour>> = Vec::new();
    for (name, series) in &zones {
        let e = evaluate(series, tz, &s);
        let days = (*series.keys().last().unwrap() - *series.keys().next().unwrap()).num_hours() as f64 / 24.0;
        let quarters = days / 91.3;
        let r = raises(&e);
        total_raises += r;
        total_quarters += quarters;
        // a zone's night flow: the mean of its nightly minimum of the hours starting at
        // 02:00 and 03:00 (the definition the earlier figures used)
        let night_mean = {
            let mut by_night: BTreeMap<chrono::NaiveDate, f64> = BTreeMap::new();
            for (t, v) in series.iter().filter(|(t, _)| matches!(t.with_timezone(&tz).hour(), 2 | 3)) {
                let m = by_night.entry(t.with_timezone(&tz).date_naive()).or_insert(f64::INFINITY);
                *m = m.min(*v);
            }
            by_night.values().sum::<f64>() / by_night.len().max(1) as f64
        };
        let noise = percentile(&e.iter().filter_map(|x| x.noise).collect::<Vec<_>>(), 0.5) / night_mean * 100.0;
        per_dma.push((name.clone(), night_mean, noise, r as f64 / quarters, f64::NAN, 0));
        whole.push(e);
    }
    println!(
        "false alarms: {total_raises} in {total_quarters:.0} zone-quarters = {:.2} per zone-quarter\n",
        total_raises as f64 / total_quarters
    );
    json.push(format!("{{\"false_alarms_per_zone_quarter\":{:.4}}}", total_raises as f64 / total_quarters));

    // detection
    println!("| leak size (share of mean night flow) | leaks | ≤ 24 h | ≤ 48 h | in 14 days | median time to detect (h) | 90th percentile (h) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut per_dma_hits: BTreeMap<(usize, u32), (usize, usize)> = BTreeMap::new(); // (dma, share %) → (hits in limit, leaks)
    for share in [0.05, 0.10, 0.20, 0.30, 0.50, 1.00] {
        let mut ttd = Vec::new();
        let mut total = 0;
        for (z, (_, series)) in zones.iter().enumerate() {
            let keys: Vec<DateTime<Utc>> = series.keys().copied().collect();
            let size = per_dma[z].1 * share;
            for idx in starts(keys.len()) {
                let start = keys[idx];
                let end = start + TimeDelta::days(14);
                let window: Series = series
                    .range(start - TimeDelta::days(30)..end)
                    .map(|(t, v)| (*t, if *t >= start { v + size } else { *v }))
                    .collect();
                total += 1;
                let e = evaluate(&window, tz, &s);
                let hit = e.iter().find(|x| x.leak && x.at > start).map(|x| (x.at - start).num_minutes() as f64 / 60.0);
                if let Some(h) = hit {
                    ttd.push(h);
                }
                let pct = (share * 100.0).round() as u32;
                let limit = if pct == 10 { 48.0 } else { 24.0 };
                let slot = per_dma_hits.entry((z, pct)).or_default();
                slot.1 += 1;
                if hit.is_some_and(|h| h <= limit) {
                    slot.0 += 1;
                }
            }
        }
        let within = |h: f64| 100.0 * ttd.iter().filter(|x| **x <= h).count() as f64 / total.max(1) as f64;
        println!(
            "| {:.0} % | {total} | {:.0} % | {:.0} % | {:.0} % | {:.0} | {:.0} |",
            share * 100.0,
            within(24.0),
            within(48.0),
            100.0 * ttd.len() as f64 / total.max(1) as f64,
            percentile(&ttd, 0.5),
            percentile(&ttd, 0.9)
        );
        json.push(format!(
            "{{\"share\":{share},\"leaks\":{total},\"within_24h\":{},\"within_48h\":{},\"detected\":{},\"median_h\":{:.1},\"p90_h\":{:.1}}}",
            ttd.iter().filter(|x| **x <= 24.0).count(),
            ttd.iter().filter(|x| **x <= 48.0).count(),
            ttd.len(),
            percentile(&ttd, 0.5),
            percentile(&ttd, 0.9)
        ));
    }
    println!("\n| DMA | night flow (m³/h) | night-to-night noise (% of night flow) | false alarms per quarter | 10 % leaks within 48 h | 20 % leaks within 24 h |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (z, (name, mean, noise, fa, _, _)) in per_dma.iter().enumerate() {
        let rate = |pct: u32| {
            per_dma_hits.get(&(z, pct)).map(|(h, n)| 100.0 * *h as f64 / (*n).max(1) as f64).unwrap_or(f64::NAN)
        };
        println!("| {name} | {mean:.1} | {noise:.1} | {fa:.2} | {:.0} % | {:.0} % |", rate(10), rate(20));
    }

    // scenarios the rule must not alarm on
    println!("\n| scenario | windows | raised |");
    println!("|---|---:|---:|");
    type Change = Box<dyn Fn(DateTime<Utc>, DateTime<Utc>, f64, f64) -> Option<f64>>;
    let day = move |t: DateTime<Utc>| (7..22).contains(&t.with_timezone(&tz).hour());
    let scenarios: Vec<(&str, i64, Change)> = vec![
        (
            "holiday week: day −30 %, night −10 %",
            7,
            Box::new(move |t, s0, v, _| {
                Some(if t < s0 + TimeDelta::days(7) {
                    if day(t) {
                        v * 0.7
                    } else {
                        v * 0.9
                    }
                } else {
                    v
                })
            }),
        ),
        (
            "new building: +15 % of mean flow 07–22 h",
            45,
            Box::new(move |t, _, v, m| Some(if day(t) { v + 0.15 * m } else { v })),
        ),
        (
            "new building, and its night flow (+5 %)",
            45,
            Box::new(move |t, _, v, m| Some(if day(t) { v + 0.15 * m } else { v * 1.05 })),
        ),
        ("meter gap of 24 h", 1, Box::new(move |t, s0, v, _| (t >= s0 + TimeDelta::hours(24)).then_some(v))),
        ("meter gap of 48 h", 2, Box::new(move |t, s0, v, _| (t >= s0 + TimeDelta::hours(48)).then_some(v))),
        ("meter gap of 72 h", 3, Box::new(move |t, s0, v, _| (t >= s0 + TimeDelta::hours(72)).then_some(v))),
        (
            "seasonal ramp: +20 % over 60 days",
            60,
            Box::new(move |t, s0, v, _| {
                Some(v * (1.0 + 0.2 * ((t - s0).num_hours() as f64 / (60.0 * 24.0)).clamp(0.0, 1.0)))
            }),
        ),
    ];
    for (label, days, change) in &scenarios {
        let (mut windows, mut raised) = (0, 0);
        for (z, (_, series)) in zones.iter().enumerate() {
            let keys: Vec<DateTime<Utc>> = series.keys().copied().collect();
            let mean = series.values().sum::<f64>() / series.len() as f64;
            for idx in starts(keys.len()) {
                let start = keys[idx];
                let end = start + TimeDelta::days(*days + 14);
                // only stretches where the record as it is raises nothing
                if whole[z].iter().any(|x| x.leak && x.at >= start - TimeDelta::days(30) && x.at < end) {
                    continue;
                }
                let window: Series =
                    series
                        .range(start - TimeDelta::days(30)..end)
                        .filter_map(|(t, v)| {
                            if *t >= start {
                                change(*t, start, *v, mean).map(|x| (*t, x))
                            } else {
                                Some((*t, *v))
                            }
                        })
                        .collect();
                windows += 1;
                if evaluate(&window, tz, &s).iter().any(|x| x.leak && x.at > start) {
                    raised += 1;
                }
            }
        }
        println!("| {label} | {windows} | {:.0} % |", 100.0 * raised as f64 / windows.max(1) as f64);
        json.push(format!("{{\"scenario\":{label:?},\"windows\":{windows},\"raised\":{raised}}}"));
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("leak_detection.json"), format!("[{}]\n", json.join(",")));
}

//! Benchmark of detection quality for the minimum-night-flow rule, on real DMA inflows.
//!
//! Data: the hourly inflows of the ten district metered areas of the Battle of Water
//! Demand Forecasting (Alvisi et al. 2025, J. Water Resour. Plann. Manage., doi
//! 10.1061/JWRMD5.WRENG-6887, CC BY 4.0), read from ../shared/data/bwdf/InflowData.csv
//! (or BWDF_CSV). Their real gaps stay gaps.
//!
//! False alarms: the rule runs over every DMA's whole record as it is (assumed free of
//! new leaks; any alarm counts against the rule) and alarms are counted per zone-month.
//! Detection: for each DMA, leaks of a given size (a share of that DMA's mean night flow)
//! start at 20 pseudo-random hours, each on the clean record, and last 14 days; a leak is
//! detected when the rule raises within those days; time to detect runs from the leak's
//! start to the end of the night window that raised it.
//!
//! `cargo bench --bench leak_detection`; results printed and written to
//! target/bench/leak_detection.json.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use pumphouse::alerts::night_flow::{nights, Settings};

fn load() -> Vec<(String, BTreeMap<DateTime<Utc>, f64>)> {
    let path = std::env::var("BWDF_CSV")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/bwdf/InflowData.csv").to_string());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (set BWDF_CSV to the BWDF InflowData.csv)"));
    let tz = chrono_tz::Europe::Rome;
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap_or_default().split(',').map(String::from).collect();
    let mut out: Vec<(String, BTreeMap<DateTime<Utc>, f64>)> =
        header[1..].iter().map(|h| (h.clone(), BTreeMap::new())).collect();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let Ok(local) = NaiveDateTime::parse_from_str(cells[0], "%d/%m/%Y %H:%M") else { continue };
        // CET/CEST: skip the ambiguous and missing hours of the clock changes
        let Some(t) = tz.from_local_datetime(&local).single() else { continue };
        for (k, c) in cells[1..].iter().enumerate() {
            if let Ok(v) = c.parse::<f64>() {
                out[k].1.insert(t.with_timezone(&Utc), v * 3.6); // L/s → m³/h
            }
        }
    }
    out
}

fn main() {
    let zones = load();
    let tz = chrono_tz::Europe::Rome;
    let s = Settings::default();
    // false alarms on the record as it is
    let mut alarms = 0usize;
    let mut zone_months = 0.0;
    for (_, series) in &zones {
        let n = nights(series, tz, &s);
        // count raises (a run of leaking nights is one alarm)
        alarms +=
            n.windows(2).filter(|w| w[1].leak && !w[0].leak).count() + usize::from(n.first().is_some_and(|x| x.leak));
        zone_months += n.len() as f64 / 30.4;
    }
    println!(
        "false alarms: {alarms} in {zone_months:.0} zone-months = {:.3} per zone-month\n",
        alarms as f64 / zone_months
    );
    println!(
        "| leak size (share of mean night flow) | leaks | detected | median time to detect (h) | 90th percentile (h) |"
    );
    println!("|---:|---:|---:|---:|---:|");
    let mut json = vec![format!("{{\"false_alarms_per_zone_month\":{:.4}}}", alarms as f64 / zone_months)];
    for share in [0.05, 0.10, 0.20, 0.30, 0.50, 1.00] {
        let mut detected = Vec::new();
        let mut total = 0;
        for (_, series) in &zones {
            let night_mean: f64 = {
                let n = nights(series, tz, &s);
                if n.is_empty() {
                    continue;
                }
                n.iter().map(|x| x.mnf).sum::<f64>() / n.len() as f64
            };
            let keys: Vec<DateTime<Utc>> = series.keys().copied().collect();
            if keys.len() < 24 * 60 {
                continue;
            }
            for k in 0..20 {
                // spread the starts over the record (after 30 days of history), pseudo-randomly in the hour
                let idx = 24 * 30 + (k * 7919 + 13 * k * k) % (keys.len() - 24 * 45);
                let start = keys[idx];
                let end = start + TimeDelta::days(14);
                let size = night_mean * share;
                let window: BTreeMap<DateTime<Utc>, f64> = series
                    .range(start - TimeDelta::days(30)..end)
                    .map(|(t, v)| (*t, if *t >= start { v + size } else { *v }))
                    .collect();
                total += 1;
                let n = nights(&window, tz, &s);
                if let Some(first) = n.iter().find(|x| x.leak && x.at > start) {
                    detected.push((first.at - start).num_minutes() as f64 / 60.0);
                }
            }
        }
        detected.sort_by(f64::total_cmp);
        let median = detected.get(detected.len() / 2).copied().unwrap_or(f64::NAN);
        let p90 = detected.get(detected.len() * 9 / 10).copied().unwrap_or(f64::NAN);
        println!(
            "| {:.0} % | {total} | {:.0} % | {median:.0} | {p90:.0} |",
            share * 100.0,
            100.0 * detected.len() as f64 / total.max(1) as f64
        );
        json.push(format!(
            "{{\"share\":{share},\"leaks\":{total},\"detected\":{},\"median_h\":{median:.1},\"p90_h\":{p90:.1}}}",
            detected.len()
        ));
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("leak_detection.json"), format!("[{}]\n", json.join(",")));
}

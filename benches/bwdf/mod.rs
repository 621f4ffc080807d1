//! The BWDF inflows for the detection benchmarks: the hourly inflows of the ten district
//! metered areas of the Battle of Water Demand Forecasting (Alvisi et al. 2025, J. Water
//! Resour. Plann. Manage., doi 10.1061/JWRMD5.WRENG-6887, CC BY 4.0), read from
//! ../shared/data/bwdf/InflowData.csv (or BWDF_CSV), in m³/h. Real gaps stay gaps; the
//! ambiguous and missing hours of the clock changes (CET/CEST) are skipped.

// each benchmark uses part of this module
#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc};
use pumphouse::alerts::night_flow::Settings;

type Series = BTreeMap<DateTime<Utc>, f64>;

pub fn load() -> Vec<(String, BTreeMap<DateTime<Utc>, f64>)> {
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
        let Some(t) = tz.from_local_datetime(&local).single() else { continue };
        for (k, c) in cells[1..].iter().enumerate() {
            if let Ok(v) = c.parse::<f64>() {
                out[k].1.insert(t.with_timezone(&Utc), v * 3.6); // L/s → m³/h
            }
        }
    }
    out
}

/// A zone's night-to-night noise before `start`, measured as the issue states it: the
/// nightly mean of the window's hours over the 28 complete nights before, and the robust
/// spread of consecutive nights' differences (1.4826 × median |Δ| / √2), m³/h.
pub fn noise_before(series: &Series, start: DateTime<Utc>, tz: chrono_tz::Tz, s: &Settings) -> Option<f64> {
    let means = night_means(series, start - TimeDelta::days(29), start, tz, s);
    let mut d: Vec<f64> =
        means.windows(2).filter(|w| w[1].0 - w[0].0 == TimeDelta::days(1)).map(|w| (w[1].1 - w[0].1).abs()).collect();
    (d.len() >= 10).then(|| 1.4826 * percentile_mut(&mut d, 0.5) / std::f64::consts::SQRT_2)
}

/// Each complete night's mean of the window's hours, from `from` to `to`.
pub fn night_means(
    series: &Series,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: chrono_tz::Tz,
    s: &Settings,
) -> Vec<(chrono::NaiveDate, f64)> {
    let hours = s.hours();
    let mut nights: BTreeMap<chrono::NaiveDate, Vec<f64>> = BTreeMap::new();
    for (t, v) in series.range(from..to) {
        let local = t.with_timezone(&tz);
        if !hours.contains(&local.hour()) {
            continue;
        }
        let date = if local.hour() >= 12 { local.date_naive() + TimeDelta::days(1) } else { local.date_naive() };
        nights.entry(date).or_default().push(*v);
    }
    nights
        .into_iter()
        .filter(|(_, v)| v.len() == hours.len())
        .map(|(d, v)| (d, v.iter().sum::<f64>() / v.len() as f64))
        .collect()
}

pub fn percentile_mut(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

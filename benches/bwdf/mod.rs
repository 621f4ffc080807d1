//! The BWDF inflows for the detection benchmarks: the hourly inflows of the ten district
//! metered areas of the Battle of Water Demand Forecasting (Alvisi et al. 2025, J. Water
//! Resour. Plann. Manage., doi 10.1061/JWRMD5.WRENG-6887, CC BY 4.0), read from
//! ../shared/data/bwdf/InflowData.csv (or BWDF_CSV), in m³/h. Real gaps stay gaps; the
//! ambiguous and missing hours of the clock changes (CET/CEST) are skipped.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

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

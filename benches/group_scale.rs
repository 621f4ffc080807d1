//! The group service's size, measured: how fast its store keeps the sites' documents and
//! how long the group's month (what the page and the API compute on every request) takes
//! with 10 and 100 sites. The documents are shaped like a campus's month document (two
//! utilities, seven zones, the targets' ten rows, ~3.5 KB).
//!
//! `cargo bench --bench group_scale`

use std::time::Instant;

use pumphouse::group::{figures, store::GroupStore};
use serde_json::json;

fn month_doc(site: &str, month: &str, k: i64) -> serde_json::Value {
    let utility = |u: &str| {
        json!({"utility": u, "input": 41_234.5, "billed": 35_111.2, "losses": 4_100.0, "non_revenue": 6_123.3,
               "revenue_fen": 12_345_678 + k, "cost_fen": 13_000_000 + k, "gap_fen": 654_322 - k, "baseline_gap_fen": 700_000})
    };
    let zones: Vec<_> = (0..7)
        .map(|z| json!({"zone": format!("zone-{z}"), "utility": "water", "parent": "campus", "net_input": 5_000.0, "billed": 4_300.0, "non_revenue": 700.0, "non_revenue_share": 0.14, "gap_fen": 12_000}))
        .collect();
    let mut rows = Vec::new();
    for (t, m) in [
        ("money", "gap_fen"),
        ("safety", "incidents"),
        ("service", "interruptions"),
        ("service", "customer_minutes"),
        ("service", "low_pressure_minutes"),
    ] {
        for p in ["month", "year_to_date"] {
            rows.push(json!({"target": t, "measure": m, "period": p, "this": 3 + k % 5, "baseline": 4}));
        }
    }
    json!({"schema": "pumphouse.group/1", "kind": "month", "site": site, "month": month, "frozen": true, "complete": true,
           "utilities": [utility("water"), utility("electricity")], "combined": utility("combined"),
           "zones": zones, "targets": rows, "incidents": 2, "interruptions": 1,
           "notes": ["1 meter(s) flagged: their consumption or bill may be short (see their notes)"]})
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let months: Vec<String> = (1..=12).map(|m| format!("2026-{m:02}")).collect();
    println!("| sites | documents kept | kept per second | store bytes per document | group month (median of 20) |");
    println!("|---:|---:|---:|---:|---:|");
    for n in [10_usize, 100] {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("group.db");
        let store = GroupStore::open(&path)?;
        let sites: Vec<String> = (0..n).map(|i| format!("campus-{i:03}")).collect();
        let docs: Vec<(String, String, String)> = sites
            .iter()
            .flat_map(|s| {
                months
                    .iter()
                    .enumerate()
                    .map(move |(k, m)| (s.clone(), m.clone(), month_doc(s, m, k as i64).to_string()))
            })
            .collect();
        let started = Instant::now();
        for (s, m, body) in &docs {
            store.put(s, "month", m, body, 0)?;
        }
        let put = started.elapsed();
        let bytes =
            std::fs::metadata(&path)?.len() + std::fs::metadata(dir.path().join("group.db-wal")).map_or(0, |m| m.len());
        let mut times = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let kept: Vec<(String, serde_json::Value)> =
                store.docs("month", Some("2026-06"))?.into_iter().map(|(s, _, _, d)| (s, d)).collect();
            let g = figures::month(&sites, "2026-06", &kept);
            assert!(g.missing.is_empty() && g.money.gap_fen.is_some());
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "| {n} | {} | {:.0} | {} | {:.2} ms |",
            docs.len(),
            docs.len() as f64 / put.as_secs_f64(),
            bytes / docs.len() as u64,
            times[times.len() / 2].as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

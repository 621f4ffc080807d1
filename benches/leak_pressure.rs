//! Pressure as a second leak signal (`src/alerts/night_pressure.rs`) beside the night-flow
//! rule, on a network model driven by real DMA inflows.
//!
//! Inflows: the ten BWDF DMAs' hourly inflows (Alvisi et al. 2025, CC BY 4.0; see
//! `bwdf/mod.rs`), each taken as the demand of a modelled zone. They carry the real
//! night-to-night wander that limits the flow rule.
//!
//! The zone model (one per DMA): eight demand nodes on a tree fed from one inlet — a
//! trunk, then three branches of two nodes each — with the Hazen–Williams head loss
//! `c · r · Q^1.852` on each pipe, `c` set so that the farthest node loses 15 m at the
//! DMA's 99th-percentile hour. Each hour every node takes its share of the DMA's inflow
//! times `exp(σ ε)` (ε standard normal, σ = 0.2 by default: a street's use is not a
//! fixed share of the zone's), renormalised to the inflow. The inlet head is 50 m with a
//! ±0.5 m daily cycle, a day-to-day wander (AR(1), φ = 0.9, 0.3 m) and 0.05 m hourly
//! noise (a tank's level, a pump's duty); each pressure point's hourly mean carries
//! 0.01 m of sensor noise. Pressure points at the three branch ends (nodes 4, 6, 8), or
//! only at node 4, or at node 4 and the inlet (node 0).
//!
//! A leak is a constant flow at one of the eight nodes (chosen per leak), sized in units
//! of the DMA's night-to-night noise as in `leak_detection` (0.5 … 12 units, 20 starts
//! per DMA after 30 days, 14 days each). Detected by flow alone (the night-flow rule on
//! the inflow with the leak), by pressure alone, and by either.
//! False alarms: each rule over each DMA's whole modelled record without leaks.
//!
//! `cargo bench --bench leak_pressure`; `LEAK_SPREAD=0.4` for a noisier split of demand,
//! `LEAK_POINTS=1` for one point, `LEAK_POINTS=inlet` for one point and one at the inlet.

#[path = "bwdf/mod.rs"]
mod bwdf;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use pumphouse::alerts::night_flow::{self, NightHour};
use pumphouse::alerts::night_pressure::{self, Point, PressureHour};

type Series = BTreeMap<DateTime<Utc>, f64>;

/// Per class and signal: leaks, found within 24 h, within 48 h, the delays (h).
type Tally = (usize, usize, usize, Vec<f64>);

/// Each node's parent (node 0 is the inlet), the relative length of the pipe into it, and
/// its share of the zone's demand.
const PARENT: [usize; 9] = [0, 0, 1, 2, 3, 2, 5, 1, 7];
const LENGTH: [f64; 9] = [0.0, 1.0, 1.0, 1.5, 1.5, 1.5, 1.5, 2.0, 2.0];
const SHARE: [f64; 9] = [0.0, 0.10, 0.15, 0.10, 0.15, 0.10, 0.15, 0.10, 0.15];
const EXPONENT: f64 = 1.852;

/// splitmix64: a reproducible stream without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// The path from the inlet to `node`: the nodes whose incoming pipe it crosses.
fn path(node: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut n = node;
    while n != 0 {
        out.push(n);
        n = PARENT[n];
    }
    out
}

/// The modelled pressures (m) at `points` for a DMA's inflow, with `leak` (node, rate,
/// from, to) added to the flows; the inflow the meter reads includes the leak.
struct Model {
    c: f64,
    spread: f64,
    seed: u64,
}

impl Model {
    fn new(inflow: &Series, spread: f64, seed: u64) -> Model {
        let mut v: Vec<f64> = inflow.values().copied().collect();
        let q99 = bwdf::percentile_mut(&mut v, 0.99);
        // loss to node 8 (the longest path) at q99 with the demand in its shares
        let flows = Model::pipe_flows(&SHARE.map(|w| w * q99));
        let loss: f64 = path(8).iter().map(|j| LENGTH[*j] * flows[*j].powf(EXPONENT)).sum();
        Model { c: 15.0 / loss, spread, seed }
    }

    fn pipe_flows(demand: &[f64; 9]) -> [f64; 9] {
        // each node's demand flows through every pipe on its path
        let mut q = [0.0; 9];
        for (n, d) in demand.iter().enumerate().skip(1) {
            let mut j = n;
            while j != 0 {
                q[j] += d;
                j = PARENT[j];
            }
        }
        q
    }

    fn run(
        &self,
        inflow: &Series,
        points: &[usize],
        leak: Option<(usize, f64, DateTime<Utc>, DateTime<Utc>)>,
    ) -> (Series, Vec<Series>) {
        // the same seed gives the same demand split and head with and without a leak
        let mut rng = Rng(self.seed);
        let mut metered = Series::new();
        let mut heads = vec![Series::new(); points.len()];
        let paths: Vec<Vec<usize>> = points.iter().map(|p| path(*p)).collect();
        let mut wander = 0.0;
        let mut day = None;
        for (t, d) in inflow {
            let today = t.timestamp().div_euclid(86_400);
            if day != Some(today) {
                wander = 0.9 * wander + 0.3 * (1.0 - 0.81_f64).sqrt() * rng.normal();
                day = Some(today);
            }
            let mut demand = [0.0; 9];
            for n in 1..9 {
                demand[n] = SHARE[n] * (self.spread * rng.normal()).exp();
            }
            let sum: f64 = demand.iter().sum();
            for x in demand.iter_mut() {
                *x *= d / sum;
            }
            let mut q_in = *d;
            if let Some((node, rate, from, to)) = leak {
                if *t >= from && *t < to {
                    demand[node] += rate;
                    q_in += rate;
                }
            }
            let flows = Model::pipe_flows(&demand);
            let hour = (t.timestamp().rem_euclid(86_400) / 3600) as f64;
            let head = 50.0 + 0.5 * (hour / 24.0 * std::f64::consts::TAU).sin() + wander + 0.05 * rng.normal();
            metered.insert(*t, q_in);
            for (k, p) in paths.iter().enumerate() {
                let loss: f64 = p.iter().map(|j| self.c * LENGTH[*j] * flows[*j].max(0.0).powf(EXPONENT)).sum();
                heads[k].insert(*t, head - loss + 0.01 * rng.normal());
            }
            // the sensor noise of points not asked for is still drawn: the stream stays aligned
            for _ in points.len()..3 {
                rng.normal();
            }
        }
        (metered, heads)
    }
}

fn pressure(inflow: &Series, heads: &[Series], tz: chrono_tz::Tz) -> Vec<PressureHour> {
    let points: Vec<Point<'_>> = heads.iter().collect();
    night_pressure::evaluate(inflow, &points, tz, &tuned())
}

/// The pressure rule's settings, with `PRESSURE_TUNE=slack=1.5,threshold=5,...` applied
/// (a developer's own runs; an unknown key stops the run).
fn tuned() -> night_pressure::Settings {
    let mut s = night_pressure::Settings::default();
    for kv in std::env::var("PRESSURE_TUNE").unwrap_or_default().split(',').filter(|x| !x.is_empty()) {
        let (k, v) = kv.split_once('=').expect("key=value");
        let v: f64 = v.parse().expect("a number");
        match k {
            "slack" => s.slack = v,
            "threshold" => s.threshold = v,
            "noise_nights" => s.noise_nights = v as usize,
            "history" => s.history = v as usize,
            "floor_share" => s.floor_share = v,
            "dirty" => s.dirty = v,
            _ => panic!("unknown key {k}"),
        }
    }
    s
}

/// The hour a leak is first raised after `from`, by each signal (a raise still standing
/// from before does not count).
fn first_flow(e: &[NightHour], from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    flow_raises(e).into_iter().find(|t| *t > from)
}

fn first_pressure(e: &[PressureHour], from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut was: BTreeMap<usize, bool> = BTreeMap::new();
    e.iter().find(|h| !was.insert(h.point, h.leak).unwrap_or(false) && h.leak && h.at > from).map(|h| h.at)
}

/// Raises over a record: the flow rule's, and the pressure rule's with a point's raise
/// counted once however many points raise within the same day.
fn flow_raises(e: &[NightHour]) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut was = false;
    for h in e {
        if h.leak && !was {
            out.push(h.at);
        }
        was = h.leak;
    }
    out
}

fn pressure_raises(e: &[PressureHour]) -> Vec<DateTime<Utc>> {
    let mut out: Vec<DateTime<Utc>> = Vec::new();
    let mut was: BTreeMap<usize, bool> = BTreeMap::new();
    for h in e {
        let w = was.insert(h.point, h.leak).unwrap_or(false);
        if h.leak && !w && out.last().is_none_or(|l| h.at - *l > TimeDelta::hours(24)) {
            out.push(h.at);
        }
    }
    out
}

fn main() {
    let spread: f64 = std::env::var("LEAK_SPREAD").ok().and_then(|v| v.parse().ok()).unwrap_or(0.2);
    let points: Vec<usize> = match std::env::var("LEAK_POINTS").as_deref() {
        Ok("1") => vec![4],
        Ok("inlet") => vec![0, 4], // the inlet's head and one point in the zone
        _ => vec![4, 6, 8],
    };
    let zones: Vec<(String, Series)> = bwdf::load().into_iter().filter(|(_, s)| s.len() >= 24 * 60).collect();
    let tz = chrono_tz::Europe::Rome;
    let fs = night_flow::Settings::default();
    println!("demand split σ = {spread}, pressure points at nodes {points:?}\n");

    // false alarms without leaks
    let (mut fa_flow, mut fa_pressure, mut fa_either, mut quarters) = (0usize, 0usize, 0usize, 0.0);
    for (k, (_, series)) in zones.iter().enumerate() {
        let model = Model::new(series, spread, 1000 + k as u64);
        let (q, heads) = model.run(series, &points, None);
        let f = flow_raises(&night_flow::evaluate(&q, tz, &fs));
        let p = pressure_raises(&pressure(&q, &heads, tz));
        // a pressure raise within two days of a flow raise is the same alert
        let either = p.iter().filter(|t| !f.iter().any(|x| (**t - *x).abs() <= TimeDelta::hours(48))).count() + f.len();
        fa_flow += f.len();
        fa_pressure += p.len();
        fa_either += either;
        let (Some(a), Some(b)) = (series.keys().next(), series.keys().last()) else { continue };
        quarters += (*b - *a).num_hours() as f64 / 24.0 / 91.3;
    }
    println!(
        "false alarms per zone-quarter ({quarters:.0} zone-quarters): flow {:.2}, pressure {:.2}, either {:.2}\n",
        fa_flow as f64 / quarters,
        fa_pressure as f64 / quarters,
        fa_either as f64 / quarters
    );

    // leaks
    let sizes = [0.5, 1.5, 2.5, 3.5, 4.5, 6.0, 8.0, 12.0];
    let classes: [(&str, f64, f64); 4] =
        [("< 1", 0.0, 1.0), ("1–3", 1.0, 3.0), ("3–6", 3.0, 6.0), ("≥ 6", 6.0, f64::MAX)];
    // per class, per signal (flow, pressure, either): leaks, ≤ 24 h, ≤ 48 h, delays (h)
    let mut table: BTreeMap<usize, [Tally; 3]> = BTreeMap::new();
    // leaks of ≥ 3 units by where they are: on the trunk (nodes 1, 2), mid-branch (3, 5,
    // 7), at a branch end (4, 6, 8); per signal: leaks, found ≤ 48 h
    let mut by_place: BTreeMap<&str, [(usize, usize); 3]> = BTreeMap::new();
    let mut smallest: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut rng = Rng(7);
    for (k, (name, series)) in zones.iter().enumerate() {
        let model = Model::new(series, spread, 1000 + k as u64);
        let keys: Vec<DateTime<Utc>> = series.keys().copied().collect();
        let len = keys.len();
        let mut found_at: BTreeMap<u64, [bool; 3]> = BTreeMap::new(); // start → smallest found
        for i in 0..20 {
            let idx = 24 * 30 + (i * 7919 + 13 * i * i) % (len - 24 * 45);
            let start = keys[idx];
            let Some(noise) = bwdf::noise_before(series, start, tz, &fs) else { continue };
            let node = 1 + (rng.next() * 8.0) as usize % 8;
            let end = start + TimeDelta::days(14);
            let cut: Series = series.range(..end + TimeDelta::days(1)).map(|(t, v)| (*t, *v)).collect();
            for units in sizes {
                let (q, heads) = model.run(&cut, &points, Some((node.min(8), units * noise, start, end)));
                let f = first_flow(&night_flow::evaluate(&q, tz, &fs), start);
                let p = first_pressure(&pressure(&q, &heads, tz), start);
                let either = match (f, p) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let Some(c) = classes.iter().position(|(_, lo, hi)| units >= *lo && units < *hi) else { continue };
                let row = table.entry(c).or_default();
                let place = match node {
                    1 | 2 => "trunk (nodes 1, 2)",
                    3 | 5 | 7 => "mid-branch (nodes 3, 5, 7)",
                    _ => "branch end (nodes 4, 6, 8)",
                };
                if units >= 3.0 {
                    let e = by_place.entry(place).or_default();
                    for (s, at) in [f, p, either].into_iter().enumerate() {
                        e[s].0 += 1;
                        e[s].1 += usize::from(at.is_some_and(|at| at - start <= TimeDelta::hours(48)));
                    }
                }
                for (s, at) in [f, p, either].into_iter().enumerate() {
                    row[s].0 += 1;
                    if let Some(at) = at {
                        let h = (at - start).num_minutes() as f64 / 60.0;
                        row[s].1 += usize::from(h <= 24.0);
                        row[s].2 += usize::from(h <= 48.0);
                        row[s].3.push(h);
                        let e = found_at.entry(idx as u64).or_insert([false; 3]);
                        if !e[s] && h <= 48.0 {
                            e[s] = true;
                            smallest[s].push(units);
                        }
                    }
                }
            }
        }
        eprintln!("{name}: done");
    }
    println!("| leak / night-to-night noise | leaks | flow ≤ 24 h | flow ≤ 48 h | pressure ≤ 24 h | pressure ≤ 48 h | either ≤ 24 h | either ≤ 48 h | median delay flow / pressure / either (h) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let pct = |a: usize, n: usize| format!("{:.0} %", 100.0 * a as f64 / n.max(1) as f64);
    let med = |v: &[f64], n: usize| {
        let mut d = v.to_vec();
        d.sort_by(f64::total_cmp);
        if d.len() * 2 < n {
            "not found".to_string()
        } else {
            format!("{:.0}", d[n / 2 - usize::from(n % 2 == 0)])
        }
    };
    for (c, row) in &table {
        let n = row[0].0;
        println!(
            "| {} | {n} | {} | {} | {} | {} | {} | {} | {} / {} / {} |",
            classes[*c].0,
            pct(row[0].1, n),
            pct(row[0].2, n),
            pct(row[1].1, n),
            pct(row[1].2, n),
            pct(row[2].1, n),
            pct(row[2].2, n),
            med(&row[0].3, n),
            med(&row[1].3, n),
            med(&row[2].3, n),
        );
    }
    println!(
        "\n| ≥ 3 units, leak at | leaks | flow ≤ 48 h | pressure ≤ 48 h | either ≤ 48 h |\n|---|---:|---:|---:|---:|"
    );
    for (place, row) in &by_place {
        println!(
            "| {place} | {} | {} | {} | {} |",
            row[0].0,
            pct(row[0].1, row[0].0),
            pct(row[1].1, row[1].0),
            pct(row[2].1, row[2].0)
        );
    }
    println!();
    for (s, name) in ["flow", "pressure", "either"].iter().enumerate() {
        let mut v = smallest[s].clone();
        v.sort_by(f64::total_cmp);
        let m = v.get(v.len() / 2).copied().unwrap_or(f64::NAN);
        println!(
            "median smallest leak found within 48 h, {name}: {m:.1} noise units ({} of {} starts)",
            v.len(),
            20 * zones.len()
        );
    }
}

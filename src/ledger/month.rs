//! The monthly ledger (台账): every meter's consumption and charge, every zone's balance,
//! each utility's revenue, cost and gap, against the baseline year's same month.
//!
//! Pure: readings come through a closure, so the same code serves the store, imported
//! history and tests. Months follow the site's time zone.
//!
//! Rules the working group should know:
//! - consumption is booked from totalizer differences (see [`super::intervals`]), spread
//!   over hours, and clipped to the month; readings up to seven days either side are used
//!   so that a gap across the month boundary is bridged;
//! - a parent zone's net input excludes what its child zones' inlets took;
//! - costs are per utility; a zone carries them in proportion to its net input (the
//!   water or energy it takes), and its revenue is what its own meters were billed;
//! - without a `[[baseline]]` entry for last year's month, the baseline is computed from
//!   last year's readings when the store holds them;
//! - gap = cost − revenue; against the baseline's same month, status is *on track* when
//!   the gap has not grown, *at risk* when it grew by up to 5 % of the baseline gap's
//!   size, *breached* beyond that;
//! - the change against the baseline splits into a volume effect (more or less input at
//!   the baseline's unit margin), a price effect (unit cost and unit revenue changes at
//!   the baseline's billed share) and a loss effect (a change of the billed share of the
//!   input, valued at this month's unit revenue) — they add up to the change exactly
//!   (needs the baseline's input and billed volumes).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::prelude::*;
use serde::Serialize;

use super::balance::Balance;
use super::corrections::{Change, Correction};
use super::intervals::{self, Bucket, MeterSpec, Sample};
use super::prices::CostKind;
use super::tariff::{self, charge, in_force, Price, Tariff};
use super::topology::{Role, Utility};
use crate::config::Config;

#[derive(Debug, Clone, Serialize)]
pub struct MeterRow {
    pub utility: &'static str,
    pub zone: String,
    pub device: String,
    pub point: String,
    pub role: &'static str,
    pub category: Option<String>,
    pub opening: Option<f64>,
    pub opening_ts: Option<DateTime<Utc>>,
    pub closing: Option<f64>,
    pub closing_ts: Option<DateTime<Utc>>,
    pub consumption: f64,
    /// The part of the consumption spread over gaps (estimated in time, not in amount).
    pub estimated: f64,
    pub quarantined: usize,
    pub tariff: Option<String>,
    pub amount_fen: Option<i64>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ZoneRow {
    pub utility: &'static str,
    pub zone: String,
    /// Billed amounts of the zone's own meters.
    pub revenue_fen: i64,
    /// The utility's cost allocated by the zone's share of the net input.
    pub cost_fen: i64,
    pub gap_fen: i64,
    pub parent: Option<String>,
    pub balance: Balance,
    pub net_input: f64,
    pub losses: f64,
    pub non_revenue: f64,
    pub non_revenue_share: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CostRow {
    pub utility: &'static str,
    pub name: String,
    pub quantity: Option<f64>,
    pub amount_fen: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Effects {
    pub volume_fen: i64,
    pub price_fen: i64,
    pub loss_fen: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UtilityRow {
    pub utility: &'static str,
    pub unit: &'static str,
    pub input: f64,
    pub billed: f64,
    pub unbilled: f64,
    pub losses: f64,
    pub non_revenue: f64,
    pub non_revenue_share: Option<f64>,
    pub revenue_fen: i64,
    pub cost_fen: i64,
    pub gap_fen: i64,
    pub baseline_gap_fen: Option<i64>,
    pub gap_change_fen: Option<i64>,
    pub status: Option<&'static str>,
    /// Where the baseline came from: `config` (the old books) or `history` (last year's
    /// readings in the store).
    pub baseline_source: Option<&'static str>,
    pub effects: Option<Effects>,
}

#[derive(Debug, Clone, Copy)]
struct BaseFigures {
    input: Option<f64>,
    billed: Option<f64>,
    revenue_fen: i64,
    cost_fen: i64,
    source: &'static str,
}

/// The year so far, and where it is heading.
#[derive(Debug, Clone, Serialize)]
pub struct YearToDate {
    pub utility: &'static str,
    pub months: u32,
    pub gap_fen: i64,
    /// The baseline year's gap over the same months, when every one of them is known.
    pub baseline_gap_fen: Option<i64>,
    pub projection_fen: i64,
    pub projection_method: &'static str,
    pub baseline_full_year_fen: Option<i64>,
    /// The projected year against the baseline year.
    pub status: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ledger {
    pub site: String,
    /// True when the month's hourly consumption comes from its frozen record.
    pub frozen: bool,
    /// Each meter's hourly consumption (`device.point` → (hour ms, volume, estimated)),
    /// the record a month is frozen with.
    #[serde(skip)]
    pub hourly: BTreeMap<String, HourlyRecord>,
    /// Corrections that affected this month's figures.
    pub corrections: Vec<Correction>,
    pub month: String,
    pub timezone: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub utilities: Vec<UtilityRow>,
    pub combined: UtilityRow,
    pub zones: Vec<ZoneRow>,
    /// The year so far per utility and combined (full ledgers only).
    pub year_to_date: Vec<YearToDate>,
    pub costs: Vec<CostRow>,
    pub meters: Vec<MeterRow>,
}

/// The UTC bounds of a local month.
pub fn month_bounds(tz: Tz, year: i32, month: u32) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    // Where a clock change skips local midnight, the month starts at the first local
    // time that exists (01:00).
    let at = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
            .earliest()
            .or_else(|| tz.from_local_datetime(&d.and_hms_opt(1, 0, 0)?).earliest())
            .map(|t| t.with_timezone(&Utc))
    };
    Some((at(first)?, at(next)?))
}

pub fn status(gap: i64, baseline: i64) -> &'static str {
    let allowance = baseline.abs() / 20;
    if gap <= baseline {
        "on track"
    } else if gap <= baseline + allowance {
        "at risk"
    } else {
        "breached"
    }
}

/// Volume, price and loss effects of the gap change; they add up to `gap1 − gap0`
/// (up to rounding to the fen).
/// A month's figures for the gap decomposition: input and billed volume, cost and revenue
/// in fen.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub input: f64,
    pub billed: f64,
    pub cost: f64,
    pub revenue: f64,
}

pub fn effects(base: Figures, now: Figures) -> Option<Effects> {
    let (i0, b0, cost0, rev0) = (base.input, base.billed, base.cost, base.revenue);
    let (i1, b1, cost1, rev1) = (now.input, now.billed, now.cost, now.revenue);
    if i0 <= 0.0 || b0 <= 0.0 || i1 <= 0.0 || b1 <= 0.0 {
        return None;
    }
    let (c0, p0, s0) = (cost0 / i0, rev0 / b0, b0 / i0);
    let (c1, p1, s1) = (cost1 / i1, rev1 / b1, b1 / i1);
    let volume = (i1 - i0) * (c0 - s0 * p0);
    let price = i1 * ((c1 - c0) - s0 * (p1 - p0));
    let loss = -i1 * (s1 - s0) * p1;
    Some(Effects { volume_fen: volume.round() as i64, price_fen: price.round() as i64, loss_fen: loss.round() as i64 })
}

type Samples<'a> = dyn Fn(&str, &str, DateTime<Utc>, DateTime<Utc>) -> Vec<Sample> + 'a;

/// (`YYYY-MM`, `device.point`) → the kept hourly buckets, when that month is frozen.
pub type Frozen<'a> = dyn Fn(&str, &str) -> Option<BTreeMap<DateTime<Utc>, Bucket>> + 'a;

/// How much a computation includes: the full ledger has the year to date and may reach
/// for the baseline in last year's readings; the months it computes for that are leaner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Year to date, projection, baseline from config or history.
    Full,
    /// Baseline from config or history, no year to date.
    Month,
    /// Neither (a baseline month itself).
    Bare,
}

/// Where a meter's readings come from: raw readings, and for a month already frozen, the
/// kept hourly consumption (which outlives pruned raw readings).
pub struct Source<'a> {
    pub samples: &'a Samples<'a>,
    pub frozen: Option<&'a Frozen<'a>>,
    /// The last trusted reading of a meter before a time, however long ago: it anchors a
    /// gap that began before the window the ledger reads.
    pub anchor: Option<&'a Anchor<'a>>,
}

/// (device, point, before) → the last trusted reading before that time.
pub type Anchor<'a> = dyn Fn(&str, &str, DateTime<Utc>) -> Option<Sample> + 'a;

/// Computes the ledger of `year-month` from the readings `samples(device, point, from, to)`
/// returns.
pub fn compute(
    cfg: &Config,
    year: i32,
    month: u32,
    samples: &Samples<'_>,
    corrections: &[Correction],
) -> Option<Ledger> {
    compute_from(cfg, year, month, &Source { samples, frozen: None, anchor: None }, corrections, Depth::Full)
}

/// [`compute`], taking a frozen month's hourly consumption from where it was kept.
pub fn compute_from(
    cfg: &Config,
    year: i32,
    month: u32,
    source: &Source<'_>,
    corrections: &[Correction],
    depth: Depth,
) -> Option<Ledger> {
    let samples = source.samples;
    let month_key = format!("{year:04}-{month:02}");
    let mut any_frozen = false;
    let mut late_notes: Vec<(String, f64)> = Vec::new();
    let tz = cfg.site.timezone;
    let (from, to) = month_bounds(tz, year, month)?;
    let local_to = to.with_timezone(&tz).date_naive();
    let applied: Vec<Correction> = corrections.iter().filter(|c| c.affects(from, to, local_to)).cloned().collect();
    // Tariff corrections join the configured tariffs as effective-dated entries.
    let mut prices_owned = cfg.prices.clone();
    for c in &applied {
        if let Change::Tariff { utility, category, from: f, price } = &c.change {
            if let Some(u) = Utility::parse(utility) {
                prices_owned.tariffs.entry((u, category.clone())).or_default().push(Tariff {
                    name: format!("correction #{} ({category} from {f})", c.id),
                    from: *f,
                    price: Price::Flat(*price),
                });
            }
        }
    }
    let prices = &prices_owned;
    let days = (to - from).num_hours() as f64 / 24.0;
    let margin = TimeDelta::days(7);
    let topo = &cfg.topology;
    // per meter: hourly buckets and the row
    let mut hourly: HashMap<String, BTreeMap<DateTime<Utc>, Bucket>> = HashMap::new();
    let mut rows: Vec<MeterRow> = Vec::new();
    let local_hours = |h: &BTreeMap<DateTime<Utc>, Bucket>| -> Vec<(chrono::NaiveDateTime, f64)> {
        h.iter().map(|(t, b)| (t.with_timezone(&tz).naive_local(), b.volume)).collect()
    };
    for m in &topo.meters {
        let interval = cfg.device(&m.device).map(|d| d.interval).unwrap_or(std::time::Duration::from_secs(600));
        let mut s = samples(&m.device, &m.point, from - margin, to + margin);
        if let Some(a) = source.anchor.and_then(|f| f(&m.device, &m.point, from - margin)) {
            s.push(a);
        }
        let mut replacements = Vec::new();
        for c in &applied {
            match &c.change {
                Change::Reading { device, point, ts, value } if *device == m.device && *point == m.point => {
                    s.push(Sample { ts: *ts, value: Some(*value), good: true });
                }
                Change::Replacement { device, point, ts, old_final, new_initial }
                    if *device == m.device && *point == m.point =>
                {
                    replacements.push(intervals::Replacement {
                        ts: *ts,
                        old_final: *old_final,
                        new_initial: *new_initial,
                    });
                }
                _ => {}
            }
        }
        s.sort_by_key(|x| x.ts);
        let spec = MeterSpec { max_reading: m.max_reading, max_rate: m.max_rate, expected_interval: interval };
        let c = intervals::consumption(&s, &replacements, &spec);
        let meter_key = format!("{}.{}", m.device, m.point);
        let mut h = match source.frozen.and_then(|f| f(&month_key, &meter_key)) {
            Some(h) => {
                any_frozen = true;
                h
            }
            None => intervals::hourly(&c.intervals, from, to),
        };
        // Volume that belongs before the month but arrived after the previous month was
        // frozen (a meter silent across the boundary): booked late, here, as estimated,
        // so that it is not lost.
        if !any_frozen {
            let prev = from - TimeDelta::days(1);
            let prev_local = prev.with_timezone(&tz);
            let prev_key = format!("{:04}-{:02}", prev_local.year(), prev_local.month());
            if let Some(kept) = source.frozen.and_then(|f| f(&prev_key, &meter_key)) {
                let raw: f64 = intervals::hourly(&c.intervals, from - margin, from).values().map(|b| b.volume).sum();
                let booked: f64 = kept.range(from - margin..from).map(|(_, b)| b.volume).sum();
                let late = raw - booked;
                if late > 1e-6 {
                    let b = h.entry(from).or_default();
                    b.volume += late;
                    b.estimated += late;
                    late_notes.push((meter_key.clone(), late));
                }
            }
        }
        let consumption: f64 = h.values().map(|b| b.volume).sum();
        let estimated: f64 = h.values().map(|b| b.estimated).sum();
        let late_note = late_notes.iter().find(|(k, _)| *k == meter_key).map(|(_, v)| {
            format!("{v:.3} used before the month start, read only after the previous month was closed: booked here as estimated")
        });
        let trusted: Vec<&Sample> = s.iter().filter(|x| x.good && x.value.is_some_and(f64::is_finite)).collect();
        let opening =
            trusted.iter().rev().find(|x| x.ts <= from).or_else(|| trusted.iter().find(|x| x.ts >= from && x.ts < to));
        let closing =
            trusted.iter().rev().find(|x| x.ts <= to && x.ts >= from).or_else(|| trusted.iter().find(|x| x.ts >= to));
        let mut notes: Vec<String> =
            c.notices.iter().filter(|n| n.ts >= from - margin && n.ts < to + margin).map(|n| n.text.clone()).collect();
        let quarantined = c.quarantined.iter().filter(|q| q.ts >= from && q.ts < to).count();
        notes.extend(late_note);
        if quarantined > 0 {
            notes.push(format!("{quarantined} reading(s) quarantined (spikes, backward steps, transient zeros)"));
        }
        if trusted.is_empty() {
            notes.push("no trusted readings: nothing booked".into());
        }
        // A meter silent past the month's end: what it used since its last reading is not
        // known yet, and is booked when it reads again (in the month it then falls into).
        let late = TimeDelta::from_std(interval * 3).unwrap_or(TimeDelta::hours(1));
        if let Some(last) = c.last.filter(|(ts, _)| *ts < to - late && *ts >= from - margin) {
            if !trusted.iter().any(|x| x.ts >= to) {
                notes.push(format!(
                    "no readings from {} to the end of the month: consumption after that is not booked yet",
                    last.0.with_timezone(&tz).format("%Y-%m-%d %H:%M")
                ));
            }
        }
        let (tariff_name, amount) = if m.role == Role::Billed {
            let cat = m.category.clone().unwrap_or_default();
            match prices.tariffs.get(&(m.utility, cat.clone())) {
                Some(ts) => {
                    let ch = charge(&local_hours(&h), ts, prices.tou.as_ref());
                    if ch.implausible {
                        notes.push("implausible consumption: not charged; check the meter's readings".into());
                    }
                    let names: Vec<String> = ch.lines.iter().map(|l| format!("{} {}", l.tariff, l.band)).collect();
                    (Some(names.join("; ")), Some(ch.total_fen()))
                }
                None => {
                    notes.push(format!("no {} tariff for category `{cat}`: not charged", m.utility.as_str()));
                    (None, None)
                }
            }
        } else {
            (None, None)
        };
        rows.push(MeterRow {
            utility: m.utility.as_str(),
            zone: m.zone.clone(),
            device: m.device.clone(),
            point: m.point.clone(),
            role: match m.role {
                Role::Inlet => "inlet",
                Role::Billed => "billed",
                Role::Unbilled => "unbilled",
            },
            category: m.category.clone(),
            opening: opening.and_then(|x| x.value),
            opening_ts: opening.map(|x| x.ts),
            closing: closing.and_then(|x| x.value),
            closing_ts: closing.map(|x| x.ts),
            consumption,
            estimated,
            quarantined,
            tariff: tariff_name,
            amount_fen: amount,
            notes,
        });
        hourly.insert(format!("{}.{}", m.device, m.point), h);
    }
    let consumption_of = |role: Role, zone: &str| -> f64 {
        topo.meters
            .iter()
            .zip(&rows)
            .filter(|(m, _)| m.role == role && m.zone == zone)
            .map(|(_, r)| r.consumption)
            .sum()
    };
    // Share of the month covered by each zone's inlet data (first to last trusted reading).
    let mut coverage: HashMap<String, f64> = HashMap::new();
    for (m, r) in topo.meters.iter().zip(&rows).filter(|(m, _)| m.role == Role::Inlet) {
        let span = match (r.opening_ts, r.closing_ts) {
            (Some(a), Some(b)) => {
                (b.min(to) - a.max(from)).num_seconds().max(0) as f64 / (to - from).num_seconds().max(1) as f64
            }
            _ => 0.0,
        };
        let c = coverage.entry(m.zone.clone()).or_insert(1.0);
        *c = c.min(span);
    }
    let mut zones = Vec::new();
    for z in &topo.zones {
        let transferred: f64 = topo.children(&z.name).map(|c| consumption_of(Role::Inlet, &c.name)).sum();
        // Estimated uses count for the part of the month the zone's inlets were measured.
        let covered = coverage.get(&z.name).copied().unwrap_or(0.0);
        let unmetered: f64 =
            topo.unmetered.iter().filter(|u| u.zone == z.name).map(|u| u.per_day * days * covered).sum();
        let b = Balance {
            input: consumption_of(Role::Inlet, &z.name),
            transferred,
            billed: consumption_of(Role::Billed, &z.name),
            unbilled_metered: consumption_of(Role::Unbilled, &z.name),
            unbilled_estimated: unmetered,
        };
        let revenue_fen: i64 =
            rows.iter().filter(|r| r.zone == z.name && r.role == "billed").filter_map(|r| r.amount_fen).sum();
        zones.push(ZoneRow {
            utility: z.utility.as_str(),
            zone: z.name.clone(),
            revenue_fen,
            cost_fen: 0,
            gap_fen: 0,
            parent: z.parent.clone(),
            net_input: b.net_input(),
            losses: b.losses(),
            non_revenue: b.non_revenue(),
            non_revenue_share: b.share(b.non_revenue()),
            balance: b,
        });
    }
    // The baseline: last year's same month from the configuration (the old books), or
    // else computed from last year's readings when the store holds them.
    let history = if depth != Depth::Bare && !cfg.prices.baseline.iter().any(|b| b.year == year - 1 && b.month == month)
    {
        compute_from(cfg, year - 1, month, source, corrections, Depth::Bare)
            .filter(|l| l.utilities.iter().any(|u| u.input > 0.0))
    } else {
        None
    };
    let baseline_of = |u: Utility, history: &Option<Ledger>| -> Option<BaseFigures> {
        if let Some(b) = cfg.prices.baseline.iter().find(|b| b.utility == u && b.year == year - 1 && b.month == month) {
            return Some(BaseFigures {
                input: b.input,
                billed: b.billed,
                revenue_fen: b.revenue_fen,
                cost_fen: b.cost_fen,
                source: "config",
            });
        }
        let h = history.as_ref()?.utilities.iter().find(|x| x.utility == u.as_str() && x.input > 0.0)?;
        Some(BaseFigures {
            input: Some(h.input),
            billed: Some(h.billed),
            revenue_fen: h.revenue_fen,
            cost_fen: h.cost_fen,
            source: "history",
        })
    };
    let mut utilities = Vec::new();
    let mut costs = Vec::new();
    for u in [Utility::Water, Utility::Electricity] {
        let uz: Vec<&ZoneRow> = zones.iter().filter(|z| z.utility == u.as_str()).collect();
        if uz.is_empty() {
            continue;
        }
        let input: f64 = uz.iter().filter(|z| z.parent.is_none()).map(|z| z.balance.input).sum();
        let billed: f64 = uz.iter().map(|z| z.balance.billed).sum();
        let unbilled: f64 = uz.iter().map(|z| z.balance.unbilled_metered + z.balance.unbilled_estimated).sum();
        let revenue: i64 = rows.iter().filter(|r| r.utility == u.as_str()).filter_map(|r| r.amount_fen).sum();
        // campus input, hour by hour (root zones' inlets)
        let mut input_hours: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
        for m in topo.meters.iter().filter(|m| {
            m.role == Role::Inlet && m.utility == u && topo.zone(&m.zone).is_some_and(|z| z.parent.is_none())
        }) {
            for (t, b) in hourly.get(&format!("{}.{}", m.device, m.point)).into_iter().flatten() {
                *input_hours.entry(*t).or_default() += b.volume;
            }
        }
        let to_local = |h: &BTreeMap<DateTime<Utc>, f64>| -> Vec<(chrono::NaiveDateTime, f64)> {
            h.iter().map(|(t, v)| (t.with_timezone(&tz).naive_local(), *v)).collect()
        };
        let mut cost: i64 = 0;
        for c in prices.costs.iter().filter(|c| c.utility == u) {
            let (quantity, amount) = match (&c.kind, &c.tariff) {
                (CostKind::Fixed(a), _) => (None, tariff::amount_fen(*a, Decimal::ONE)),
                (CostKind::Input, Some(t)) => {
                    let ch = charge(&to_local(&input_hours), std::slice::from_ref(t), prices.tou.as_ref());
                    (ch.quantity().to_f64(), ch.total_fen())
                }
                (CostKind::Meters(devices), Some(t)) => {
                    let mut h: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
                    for d in devices {
                        for m in topo.meters.iter().filter(|m| &m.device == d) {
                            for (ts, b) in hourly.get(&format!("{}.{}", m.device, m.point)).into_iter().flatten() {
                                *h.entry(*ts).or_default() += b.volume;
                            }
                        }
                    }
                    let ch = charge(&to_local(&h), std::slice::from_ref(t), prices.tou.as_ref());
                    (ch.quantity().to_f64(), ch.total_fen())
                }
                (CostKind::Demand, Some(t)) => {
                    let peak = input_hours.values().copied().fold(0.0, f64::max);
                    let price = match in_force(std::slice::from_ref(t), from.with_timezone(&tz).date_naive()) {
                        Some((_, Tariff { price: Price::Flat(p), .. })) => *p,
                        _ => Decimal::ZERO,
                    };
                    (Some(peak), tariff::amount_fen(tariff::units(peak), price))
                }
                _ => (None, 0),
            };
            cost += amount;
            costs.push(CostRow { utility: u.as_str(), name: c.name.clone(), quantity, amount_fen: amount });
        }
        let gap = cost - revenue;
        let base = baseline_of(u, &history);
        let baseline_gap = base.map(|b| b.cost_fen - b.revenue_fen);
        let fx = base.and_then(|b| {
            effects(
                Figures { input: b.input?, billed: b.billed?, cost: b.cost_fen as f64, revenue: b.revenue_fen as f64 },
                Figures { input, billed, cost: cost as f64, revenue: revenue as f64 },
            )
        });
        utilities.push(UtilityRow {
            utility: u.as_str(),
            unit: u.unit(),
            input,
            billed,
            unbilled,
            losses: input - billed - unbilled,
            non_revenue: input - billed,
            non_revenue_share: (input > 0.0).then(|| (input - billed) / input),
            revenue_fen: revenue,
            cost_fen: cost,
            gap_fen: gap,
            baseline_gap_fen: baseline_gap,
            gap_change_fen: baseline_gap.map(|b| gap - b),
            status: baseline_gap.map(|b| status(gap, b)),
            baseline_source: base.map(|b| b.source),
            effects: fx,
        });
        // Costs follow the water (or energy): each zone carries the utility's cost in
        // proportion to its net input.
        // Whole fen by largest remainder, so that the zones add up to the utility's cost.
        let idx: Vec<usize> = (0..zones.len()).filter(|&k| zones[k].utility == u.as_str()).collect();
        let exact: Vec<f64> = idx
            .iter()
            .map(|&k| if input > 0.0 { cost as f64 * zones[k].net_input.max(0.0) / input } else { 0.0 })
            .collect();
        let mut alloc: Vec<i64> = exact.iter().map(|x| x.floor() as i64).collect();
        let total_net: f64 = idx.iter().map(|&k| zones[k].net_input.max(0.0)).sum();
        if input > 0.0 && (total_net - input).abs() < 1e-6 * input.max(1.0) {
            let mut left = cost - alloc.iter().sum::<i64>();
            let mut order: Vec<usize> = (0..exact.len()).collect();
            order.sort_by(|a, b| (exact[*b] - exact[*b].floor()).total_cmp(&(exact[*a] - exact[*a].floor())));
            for o in order.iter().cycle().take(exact.len().max(1) * 2) {
                if left <= 0 {
                    break;
                }
                alloc[*o] += 1;
                left -= 1;
            }
        }
        for (n, &k) in idx.iter().enumerate() {
            zones[k].cost_fen = alloc[n];
            zones[k].gap_fen = zones[k].cost_fen - zones[k].revenue_fen;
        }
    }
    let all_baselines = utilities.iter().all(|u| u.baseline_gap_fen.is_some()) && !utilities.is_empty();
    let sum = |f: fn(&UtilityRow) -> i64| utilities.iter().map(f).sum::<i64>();
    let (rev, cost) = (sum(|u| u.revenue_fen), sum(|u| u.cost_fen));
    let base_gap = all_baselines.then(|| utilities.iter().filter_map(|u| u.baseline_gap_fen).sum::<i64>());
    let combined = UtilityRow {
        utility: "combined",
        unit: "",
        input: 0.0,
        billed: 0.0,
        unbilled: 0.0,
        losses: 0.0,
        non_revenue: 0.0,
        non_revenue_share: None,
        revenue_fen: rev,
        cost_fen: cost,
        gap_fen: cost - rev,
        baseline_gap_fen: base_gap,
        gap_change_fen: base_gap.map(|b| cost - rev - b),
        status: base_gap.map(|b| status(cost - rev, b)),
        baseline_source: None,
        effects: None,
    };
    let ytd = if depth == Depth::Full {
        year_to_date(cfg, year, month, source, corrections, &utilities, &combined)
    } else {
        Vec::new()
    };
    Some(Ledger {
        site: cfg.site.name.to_string(),
        frozen: any_frozen,
        hourly: hourly
            .iter()
            .map(|(k, h)| (k.clone(), h.iter().map(|(t, b)| (t.timestamp_millis(), b.volume, b.estimated)).collect()))
            .collect(),
        corrections: applied,
        month: format!("{year:04}-{month:02}"),
        timezone: tz.name().to_string(),
        from,
        to,
        utilities,
        combined,
        year_to_date: ytd,
        zones,
        costs,
        meters: rows,
    })
}

/// A meter's kept hourly consumption: (hour start in ms, volume, estimated part).
pub type HourlyRecord = Vec<(i64, f64, f64)>;

/// The local months from the one containing `first` on: (year, month, from, to) in UTC.
pub fn months(tz: Tz, first: DateTime<Utc>) -> impl Iterator<Item = (i32, u32, DateTime<Utc>, DateTime<Utc>)> {
    use chrono::Datelike;
    let local = first.with_timezone(&tz);
    let start = (local.year(), local.month());
    std::iter::successors(Some(start), |(y, m)| Some(if *m == 12 { (y + 1, 1) } else { (*y, m + 1) }))
        .map_while(move |(y, m)| month_bounds(tz, y, m).map(|(a, b)| (y, m, a, b)))
}

/// Parses `YYYY-MM`.
pub fn parse_month(s: &str) -> Option<(i32, u32)> {
    let (y, m) = s.split_once('-')?;
    let (y, m) = (y.parse().ok()?, m.parse().ok()?);
    ((1..=12).contains(&m) && (2000..=2200).contains(&y)).then_some((y, m))
}

#[cfg(test)]
mod tests;

/// The months of the year so far, and a year-end projection.
///
/// Projection: when the baseline year's gap is known for every month, the rest of the
/// year follows the baseline's seasonal shape scaled by how this year compares so far
/// (year-to-date gap ÷ baseline year-to-date gap); otherwise the year-to-date average
/// per month carries on.
fn year_to_date(
    cfg: &Config,
    year: i32,
    month: u32,
    source: &Source<'_>,
    corrections: &[Correction],
    current: &[UtilityRow],
    combined: &UtilityRow,
) -> Vec<YearToDate> {
    // Months before the gateway (or the imported history) had any reading do not count.
    let earlier: Vec<Ledger> = (1..month)
        .filter_map(|k| compute_from(cfg, year, k, source, corrections, Depth::Month))
        .filter(|l| l.utilities.iter().any(|u| u.input > 0.0))
        .collect();
    let later_baseline: Vec<Option<Ledger>> = (month + 1..=12)
        .map(|k| {
            if cfg.prices.baseline.iter().any(|b| b.year == year - 1 && b.month == k) {
                None
            } else {
                compute_from(cfg, year - 1, k, source, corrections, Depth::Bare)
            }
        })
        .collect();
    let mut out = Vec::new();
    let names: Vec<&'static str> = current.iter().map(|u| u.utility).chain(std::iter::once("combined")).collect();
    for name in names {
        let pick = |rows: &[UtilityRow]| -> Option<UtilityRow> { rows.iter().find(|u| u.utility == name).cloned() };
        let now = if name == "combined" { Some(combined.clone()) } else { pick(current) };
        let Some(now) = now else { continue };
        let mut gaps = vec![now.gap_fen];
        let mut bases = vec![now.baseline_gap_fen];
        for l in &earlier {
            let row = if name == "combined" { Some(l.combined.clone()) } else { pick(&l.utilities) };
            gaps.push(row.as_ref().map(|r| r.gap_fen).unwrap_or(0));
            bases.push(row.and_then(|r| r.baseline_gap_fen));
        }
        let gap: i64 = gaps.iter().sum();
        let base_ytd: Option<i64> = bases.iter().copied().sum();
        // the baseline of the months still to come
        let rest: Option<i64> = (month + 1..=12)
            .zip(&later_baseline)
            .map(|(k, hist)| {
                let from_config = |u: &str| {
                    cfg.prices
                        .baseline
                        .iter()
                        .find(|b| b.year == year - 1 && b.month == k && b.utility.as_str() == u)
                        .map(|b| b.cost_fen - b.revenue_fen)
                };
                if name == "combined" {
                    current
                        .iter()
                        .map(|u| from_config(u.utility).or_else(|| hist.as_ref().and_then(|h| pick_gap(h, u.utility))))
                        .sum()
                } else {
                    from_config(name).or_else(|| hist.as_ref().and_then(|h| pick_gap(h, name)))
                }
            })
            .sum();
        let months_so_far = 1 + earlier.len() as u32;
        let (projection, method) = match (base_ytd, rest) {
            (Some(b), Some(r)) if b > 0 => (
                gap + ((r as f64) * gap as f64 / b as f64).round() as i64,
                "baseline seasonal shape scaled by year to date",
            ),
            (Some(b), Some(r)) => (
                gap + r + (gap - b) * i64::from(12 - month) / i64::from(months_so_far),
                "baseline rest of year plus the year-to-date difference carried on",
            ),
            _ => (gap * 12 / i64::from(months_so_far), "year-to-date average per month carried on"),
        };
        let full_year = base_ytd.zip(rest).map(|(a, b)| a + b);
        out.push(YearToDate {
            utility: name,
            months: months_so_far,
            gap_fen: gap,
            baseline_gap_fen: base_ytd,
            projection_fen: projection,
            projection_method: method,
            baseline_full_year_fen: full_year,
            status: full_year.map(|b| status(projection, b)),
        });
    }
    out
}

fn pick_gap(l: &Ledger, utility: &str) -> Option<i64> {
    l.utilities.iter().find(|u| u.utility == utility && u.input > 0.0).map(|u| u.gap_fen)
}

//! The money side of the configuration: time-of-use schedule (`[[tou]]`), tariffs per
//! customer category (`[[tariffs]]`), the cost items (`[[costs]]`) and the baseline year
//! (`[[baseline]]`). Validated into the pure types of [`super::tariff`].

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveTime};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::tariff::{Period, Price, Season, Tariff, Tier, TouSchedule};
use super::topology::{KnownDevice, Role, Topology, Utility};
use crate::diag::Diagnostics;
use crate::model::MeterId;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeason {
    pub months: Option<Vec<u32>>,
    #[serde(default)]
    pub ranges: Vec<RawRange>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRange {
    pub from: Option<String>,
    pub to: Option<String>,
    pub period: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTier {
    pub upto: Option<String>,
    pub price: Option<String>,
}

/// One of `price`, `tiers` or `tou`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawPrice {
    pub price: Option<String>,
    pub tiers: Option<Vec<RawTier>>,
    pub tou: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTariff {
    pub utility: Option<String>,
    pub category: Option<String>,
    pub name: Option<String>,
    pub from: Option<String>,
    pub price: Option<String>,
    pub tiers: Option<Vec<RawTier>>,
    pub tou: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCost {
    pub utility: Option<String>,
    pub name: Option<String>,
    pub kind: Option<String>,
    pub from: Option<String>,
    pub price: Option<String>,
    pub tou: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub meters: Vec<String>,
    pub amount: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBaseline {
    pub month: Option<String>,
    pub utility: Option<String>,
    pub input: Option<f64>,
    pub billed: Option<f64>,
    pub revenue: Option<String>,
    pub cost: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CostKind {
    /// price × the utility's campus input (the root zones' inlets): purchased water or
    /// electricity, or per-m³ items such as resource fees and chemicals.
    Input,
    /// price × the listed meters' consumption: e.g. the pumps' energy for produced water.
    /// Each is a device's totalizer of the cost's utility, in the network map or not (a
    /// pump house with its own grid connection is no zone's meter).
    Meters(Vec<MeterId>),
    /// price per kW × the month's highest hourly mean demand of the campus input.
    Demand,
    /// A fixed amount per month (yuan).
    Fixed(Decimal),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cost {
    pub utility: Utility,
    pub name: String,
    pub kind: CostKind,
    /// The price (and its effective date) for the kinds that have one.
    pub tariff: Option<Tariff>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub year: i32,
    pub month: u32,
    pub utility: Utility,
    pub input: Option<f64>,
    pub billed: Option<f64>,
    pub revenue_fen: i64,
    pub cost_fen: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices {
    pub tou: Option<TouSchedule>,
    /// (utility, category) → tariffs, any order.
    pub tariffs: BTreeMap<(Utility, String), Vec<Tariff>>,
    pub costs: Vec<Cost>,
    pub baseline: Vec<Baseline>,
}

pub fn decimal(s: &str) -> Option<Decimal> {
    Decimal::from_str(s.trim()).ok()
}

/// Yuan (as written) → fen.
pub fn fen(s: &str) -> Option<i64> {
    decimal(s).and_then(|d| (d * Decimal::ONE_HUNDRED).round().try_into().ok())
}

fn date(s: &Option<String>, path: &str, diags: &mut Diagnostics) -> Option<NaiveDate> {
    match s.as_deref() {
        None => Some(NaiveDate::MIN),
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| diags.error(path, format!("`{d}` is not a date (YYYY-MM-DD)")))
            .ok(),
    }
}

fn tou_prices(
    map: &BTreeMap<String, String>,
    path: &str,
    diags: &mut Diagnostics,
) -> Option<BTreeMap<Period, Decimal>> {
    let mut out = BTreeMap::new();
    for (k, v) in map {
        match (Period::parse(k), decimal(v)) {
            (Some(p), Some(d)) if d >= Decimal::ZERO => {
                out.insert(p, d);
            }
            (None, _) => {
                diags.error(format!("{path}.{k}"), format!("unknown period `{k}`; use sharp, peak, flat or valley"))
            }
            _ => diags.error(format!("{path}.{k}"), format!("`{v}` is not a price (yuan per unit, e.g. \"0.6215\")")),
        }
    }
    (!out.is_empty()).then_some(out)
}

fn price(raw: &RawPrice, path: &str, tou: &Option<TouSchedule>, diags: &mut Diagnostics) -> Option<Price> {
    let given = [raw.price.is_some(), raw.tiers.is_some(), raw.tou.is_some()].iter().filter(|x| **x).count();
    if given != 1 {
        diags.error(path, "give exactly one of `price` (flat), `tiers` or `tou` (per period)");
        return None;
    }
    if let Some(p) = &raw.price {
        return match decimal(p) {
            Some(d) if d >= Decimal::ZERO => Some(Price::Flat(d)),
            _ => {
                diags.error(format!("{path}.price"), format!("`{p}` is not a price (yuan per unit, e.g. \"2.85\")"));
                None
            }
        };
    }
    if let Some(tiers) = &raw.tiers {
        let mut out = Vec::new();
        let mut last: Option<Decimal> = None;
        for (k, t) in tiers.iter().enumerate() {
            let tp = format!("{path}.tiers[{k}]");
            let price = t.price.as_deref().and_then(decimal);
            let upto = t.upto.as_deref().map(decimal);
            match (price, upto) {
                (Some(p), None) if k == tiers.len() - 1 => out.push(Tier { upto: None, price: p }),
                (Some(_), None) => diags.error(format!("{tp}.upto"), "only the last tier may be open-ended"),
                (Some(p), Some(Some(u))) if last.is_none_or(|l| u > l) => {
                    last = Some(u);
                    out.push(Tier { upto: Some(u), price: p });
                }
                (Some(_), Some(Some(_))) => diags.error(format!("{tp}.upto"), "tier limits must increase"),
                _ => diags.error(tp, "needs price (and upto, except the last tier) as decimal strings"),
            }
        }
        if out.last().is_some_and(|t| t.upto.is_some()) {
            diags.error(format!("{path}.tiers"), "the last tier must be open-ended (no upto)");
        }
        return Some(Price::Tiered(out));
    }
    let map = raw.tou.as_ref()?;
    let prices = tou_prices(map, &format!("{path}.tou"), diags)?;
    match tou {
        None => diags.error(format!("{path}.tou"), "time-of-use prices need a [[tou]] schedule"),
        Some(s) => {
            // a period in several ranges is missing once
            let mut missing: Vec<String> = Vec::new();
            for (_, _, p) in s.seasons.iter().flat_map(|season| &season.ranges) {
                if !prices.contains_key(p) && !missing.contains(&p.to_string()) {
                    missing.push(p.to_string());
                }
            }
            for p in missing {
                diags.error(format!("{path}.tou"), format!("no price for the `{p}` period of the schedule"));
            }
        }
    }
    Some(Price::TimeOfUse(prices))
}

/// The raw price sections, and what they are checked against.
pub struct RawPrices<'a> {
    pub seasons: &'a [(usize, RawSeason)],
    pub tariffs: &'a [(usize, RawTariff)],
    pub costs: &'a [(usize, RawCost)],
    pub baseline: &'a [(usize, RawBaseline)],
}

/// The meters a `kind = "meters"` cost names: each device's meters in the network map,
/// else the device's own totalizer — of the cost's utility when it has one, else of the
/// other (the pumps' kWh priced as a cost of the water they lift).
fn cost_meters(
    names: &[String],
    utility: Utility,
    topology: &Topology,
    devices: &[KnownDevice<'_>],
    path: &str,
    diags: &mut Diagnostics,
) -> Vec<MeterId> {
    let mut out = Vec::new();
    for name in names {
        let mut mapped: Vec<&super::topology::Meter> = topology.meters.iter().filter(|m| &m.device == name).collect();
        if mapped.iter().any(|m| m.utility == utility) {
            mapped.retain(|m| m.utility == utility);
        }
        if !mapped.is_empty() {
            out.extend(mapped.iter().map(|m| MeterId::new(&m.device, &m.point)));
            continue;
        }
        let Some(d) = devices.iter().find(|d| d.name == name) else {
            diags.error(path, format!("no device `{name}` is configured"));
            continue;
        };
        let other = match utility {
            Utility::Water => Utility::Electricity,
            Utility::Electricity => Utility::Water,
        };
        let total = |u: Utility| d.profile.points.iter().find(|p| p.quantity == u.totalizer());
        match total(utility).or_else(|| total(other)) {
            Some(p) => out.push(MeterId::new(name, &p.name)),
            None => diags.error(
                path,
                format!(
                    "device `{name}` (profile {}) has no totalizer ({} or {} point) to price",
                    d.profile.name,
                    utility.totalizer(),
                    other.totalizer()
                ),
            ),
        }
    }
    out
}

pub fn validate(
    raw: &RawPrices<'_>,
    topology: &Topology,
    devices: &[KnownDevice<'_>],
    diags: &mut Diagnostics,
) -> Prices {
    let RawPrices { seasons, tariffs, costs, baseline } = *raw;
    let mut out = Prices::default();
    tou_into(&mut out, seasons, diags);
    tariffs_into(&mut out, tariffs, diags);
    warn_unpriced(tariffs, topology, diags);
    costs_into(&mut out, costs, topology, devices, diags);
    baseline_into(&mut out, baseline, diags);
    out
}

/// `[[tou]]`: the time-of-use seasons, every month in one and every minute in a period.
fn tou_into(out: &mut Prices, seasons: &[(usize, RawSeason)], diags: &mut Diagnostics) {
    if !seasons.is_empty() {
        let mut schedule = TouSchedule { seasons: Vec::new() };
        let mut covered = [false; 13];
        for (i, s) in seasons {
            let path = format!("tou[{i}]");
            let months = s.months.clone().unwrap_or_else(|| (1..=12).collect());
            for m in &months {
                match covered.get_mut(*m as usize).filter(|_| (1..=12).contains(m)) {
                    Some(c) if *c => diags.error(format!("{path}.months"), format!("month {m} is in two seasons")),
                    Some(c) => *c = true,
                    None => diags.error(format!("{path}.months"), format!("{m} is not a month (1–12)")),
                }
            }
            let mut ranges = Vec::new();
            for (k, r) in s.ranges.iter().enumerate() {
                let rp = format!("{path}.ranges[{k}]");
                let t = |v: &Option<String>| v.as_deref().and_then(|x| NaiveTime::parse_from_str(x, "%H:%M").ok());
                match (t(&r.from), t(&r.to), r.period.as_deref().and_then(Period::parse)) {
                    (Some(a), Some(b), Some(p)) => ranges.push((a, b, p)),
                    _ => diags.error(rp, "needs from and to as HH:MM and period = sharp, peak, flat or valley"),
                }
            }
            let season = Season { months, ranges };
            let gaps = season.uncovered();
            if let Some(first) = gaps.first() {
                diags.error(
                    format!("{path}.ranges"),
                    format!(
                        "the ranges leave {} minute(s) of the day without a period, from {:02}:{:02}",
                        gaps.len(),
                        first / 60,
                        first % 60
                    ),
                );
            }
            schedule.seasons.push(season);
        }
        if let Some(m) = (1..=12).find(|m| !covered[*m as usize]) {
            diags.error("tou", format!("month {m} is in no season"));
        }
        out.tou = Some(schedule);
    }
}

/// `[[tariffs]]`: each category's prices by the day they start.
fn tariffs_into(out: &mut Prices, tariffs: &[(usize, RawTariff)], diags: &mut Diagnostics) {
    for (i, t) in tariffs {
        let path = format!("tariffs[{i}]");
        let Some(utility) = super::topology::utility_field(t.utility.as_deref(), &path, diags) else {
            continue;
        };
        let Some(category) = t.category.clone() else {
            diags.error(format!("{path}.category"), "missing: the customer category this tariff prices");
            continue;
        };
        let Some(from) = date(&t.from, &format!("{path}.from"), diags) else { continue };
        let raw = RawPrice { price: t.price.clone(), tiers: t.tiers.clone(), tou: t.tou.clone() };
        let Some(p) = price(&raw, &path, &out.tou, diags) else { continue };
        let name = t.name.clone().unwrap_or_else(|| {
            if from == NaiveDate::MIN {
                category.clone()
            } else {
                format!("{category} from {from}")
            }
        });
        let list = out.tariffs.entry((utility, category.clone())).or_default();
        if list.iter().any(|x| x.from == from) {
            diags.error(
                format!("{path}.from"),
                format!("another {} tariff for `{category}` starts on the same day", utility.as_str()),
            );
        }
        list.push(Tariff { name, from, price: p });
    }
}

/// Tariffs no billed meter uses, and billed meters no tariff prices: warnings.
fn warn_unpriced(tariffs: &[(usize, RawTariff)], topology: &Topology, diags: &mut Diagnostics) {
    // A tariff no meter uses is often a category misspelt on one side (the meters that
    // should pay it are then flagged in every ledger as not charged), or a category kept
    // from the price notice for meters still to come: a warning, not an error.
    for (i, t) in tariffs {
        let (Some(u), Some(cat)) = (t.utility.as_deref().and_then(Utility::parse), t.category.as_deref()) else {
            continue;
        };
        let billed: Vec<&str> = topology
            .meters
            .iter()
            .filter(|m| m.role == Role::Billed && m.utility == u)
            .filter_map(|m| m.category.as_deref())
            .collect();
        if !topology.meters.is_empty() && !billed.contains(&cat) {
            let mut known: Vec<&str> = billed.clone();
            known.sort_unstable();
            known.dedup();
            diags.warning(
                format!("tariffs[{i}].category"),
                format!(
                    "no billed {} meter has category `{cat}`; the categories of billed {} meters: {}",
                    u.as_str(),
                    u.as_str(),
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ),
            );
        }
    }
    for m in topology.meters.iter().filter(|m| m.role == Role::Billed) {
        let Some(cat) = m.category.as_deref() else { continue };
        let priced = tariffs.iter().any(|(_, t)| {
            t.category.as_deref() == Some(cat) && t.utility.as_deref().and_then(Utility::parse) == Some(m.utility)
        });
        if !priced {
            diags.warning(
                "tariffs",
                format!(
                    "billed meter {}.{} has category `{cat}`, which no {} tariff prices: its ledger line will say it is not charged",
                    m.device,
                    m.point,
                    m.utility.as_str()
                ),
            );
        }
    }
}

/// `[[costs]]`: what the utility pays, by input, by meters, by demand or fixed.
fn costs_into(
    out: &mut Prices,
    costs: &[(usize, RawCost)],
    topology: &Topology,
    devices: &[KnownDevice<'_>],
    diags: &mut Diagnostics,
) {
    for (i, c) in costs {
        let path = format!("costs[{i}]");
        let Some(utility) = super::topology::utility_field(c.utility.as_deref(), &path, diags) else {
            continue;
        };
        let name = c.name.clone().unwrap_or_else(|| format!("cost {i}"));
        let kind = match c.kind.as_deref() {
            Some("input") => CostKind::Input,
            Some("meters") if !c.meters.is_empty() => {
                let ids = cost_meters(&c.meters, utility, topology, devices, &format!("{path}.meters"), diags);
                if ids.is_empty() {
                    continue;
                }
                CostKind::Meters(ids)
            }
            Some("meters") => {
                diags.error(format!("{path}.meters"), "kind = \"meters\" needs the meters whose consumption is priced");
                continue;
            }
            Some("demand") => CostKind::Demand,
            Some("fixed") => match c.amount.as_deref().and_then(decimal) {
                Some(a) => CostKind::Fixed(a),
                None => {
                    diags.error(
                        format!("{path}.amount"),
                        "kind = \"fixed\" needs amount (yuan per month) as a decimal string",
                    );
                    continue;
                }
            },
            other => {
                diags.error(
                    format!("{path}.kind"),
                    format!("unknown kind {other:?}; use input, meters, demand or fixed"),
                );
                continue;
            }
        };
        let tariff = if matches!(kind, CostKind::Fixed(_)) {
            None
        } else {
            let Some(from) = date(&c.from, &format!("{path}.from"), diags) else { continue };
            let raw = RawPrice { price: c.price.clone(), tiers: None, tou: c.tou.clone() };
            let Some(p) = price(&raw, &path, &out.tou, diags) else { continue };
            if matches!(kind, CostKind::Demand) && !matches!(p, Price::Flat(_)) {
                diags.error(
                    format!("{path}.price"),
                    "a demand charge is priced per kW of the month's peak: give a flat `price`",
                );
                continue;
            }
            Some(Tariff { name: name.clone(), from, price: p })
        };
        out.costs.push(Cost { utility, name, kind, tariff });
    }
}

/// `[[baseline]]`: the baseline year's months from the old books.
fn baseline_into(out: &mut Prices, baseline: &[(usize, RawBaseline)], diags: &mut Diagnostics) {
    for (i, b) in baseline {
        let path = format!("baseline[{i}]");
        let month = b.month.as_deref().and_then(|m| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok());
        let utility = super::topology::utility_field(b.utility.as_deref(), &path, diags);
        let revenue = b.revenue.as_deref().and_then(fen);
        let cost = b.cost.as_deref().and_then(fen);
        match (month, utility, revenue, cost) {
            (Some(m), Some(u), Some(r), Some(c)) => {
                use chrono::Datelike;
                for (key, v) in [("input", b.input), ("billed", b.billed)] {
                    if let Some(x) = v.filter(|x| !(x.is_finite() && *x >= 0.0)) {
                        diags.error(format!("{path}.{key}"), format!("{x} is not a volume (zero or more)"));
                    }
                }
                if out.baseline.iter().any(|o| o.utility == u && o.year == m.year() && o.month == m.month()) {
                    diags.error(
                        format!("{path}.month"),
                        format!("another {} baseline is given for {}", u.as_str(), m.format("%Y-%m")),
                    );
                    continue;
                }
                out.baseline.push(Baseline {
                    year: m.year(),
                    month: m.month(),
                    utility: u,
                    input: b.input,
                    billed: b.billed,
                    revenue_fen: r,
                    cost_fen: c,
                })
            }
            // a wrong utility is said above, at its field
            (_, None, _, _) => {}
            _ => diags.error(path, "needs month (YYYY-MM), revenue and cost in yuan as decimal strings"),
        }
    }
}

//! Steps two and three of a month: each zone's water (or energy) balance, then each
//! utility's revenue, costs, gap and baseline, with the costs allocated to the zones.

use std::collections::{BTreeMap, HashMap};

use crate::lang::Text;
use chrono::{DateTime, Utc};
use rust_decimal::prelude::*;

use super::meters::{local_hours, Booked};
use super::{
    effects, BaseFigures, BaselineSource, CostRow, Figures, Ledger, MeterRow, Period, Spec, Status, UtilityRow, ZoneRow,
};
use crate::ledger::balance::Balance;
use crate::ledger::prices::{CostKind, Prices};
use crate::ledger::tariff::{self, charge, in_force, Price, Tariff};
use crate::ledger::topology::{Role, Utility};

/// Each zone's balance; costs are filled in by [`utility_rows`].
pub(crate) fn zone_rows(spec: &Spec<'_>, period: &Period, rows: &[MeterRow]) -> Vec<ZoneRow> {
    let topo = spec.topology;
    let (from, to) = (period.from, period.to);
    let consumption_of = |role: Role, zone: &str| -> f64 {
        topo.meters.iter().zip(rows).filter(|(m, _)| m.role == role && m.zone == zone).map(|(_, r)| r.consumption).sum()
    };
    // Share of the month covered by each zone's inlet data (first to last trusted reading).
    let mut coverage: HashMap<String, f64> = HashMap::new();
    for (m, r) in topo.meters.iter().zip(rows).filter(|(m, _)| m.role == Role::Inlet) {
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
            topo.unmetered.iter().filter(|u| u.zone == z.name).map(|u| u.per_day * period.days * covered).sum();
        let b = Balance {
            input: consumption_of(Role::Inlet, &z.name),
            transferred,
            billed: consumption_of(Role::Billed, &z.name),
            unbilled_metered: consumption_of(Role::Unbilled, &z.name),
            unbilled_estimated: unmetered,
        };
        let revenue_fen: i64 =
            rows.iter().filter(|r| r.zone == z.name && r.role == Role::Billed).filter_map(|r| r.amount_fen).sum();
        zones.push(ZoneRow {
            utility: z.utility,
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
    zones
}

/// The baseline of utility `u` for the period: the old books first, else last year's
/// computed ledger.
fn baseline_of(prices: &Prices, period: &Period, u: Utility, history: Option<&Ledger>) -> Option<BaseFigures> {
    let last = period.month.year_before()?;
    if let Some(b) = prices.baseline.iter().find(|b| b.utility == u && b.year == last.year() && b.month == last.month())
    {
        return Some(BaseFigures {
            input: b.input,
            billed: b.billed,
            revenue_fen: b.revenue_fen,
            cost_fen: b.cost_fen,
            source: BaselineSource::Config,
        });
    }
    let h = history?.utilities.iter().find(|x| x.utility == Some(u) && x.input > 0.0)?;
    Some(BaseFigures {
        input: Some(h.input),
        billed: Some(h.billed),
        revenue_fen: h.revenue_fen,
        cost_fen: h.cost_fen,
        source: BaselineSource::History,
    })
}

/// One cost item of utility `u` for the period: (quantity, amount in fen, notes).
fn cost_item(
    spec: &Spec<'_>,
    prices: &Prices,
    period: &Period,
    booked: &Booked,
    input_hours: &BTreeMap<DateTime<Utc>, f64>,
    kind: &CostKind,
    price: Option<&Tariff>,
) -> (Option<f64>, i64, Vec<Text>) {
    let mut notes = Vec::new();
    let priced = |hours: &BTreeMap<DateTime<Utc>, f64>, t: &Tariff, notes: &mut Vec<Text>| {
        let ch = charge(&local_hours(spec, hours, |v| v), std::slice::from_ref(t), prices.tou.as_ref());
        if ch.uncharged > 1e-9 {
            notes.push(Text::new(
                format!("{:.3} not priced: `{}` is in force only from {}", ch.uncharged, t.name, t.from),
                format!("{:.3} 未计价：`{}` 自 {} 起才生效", ch.uncharged, t.name, t.from),
            ));
        }
        if ch.implausible {
            notes.push(Text::new(
                "implausible quantity: not charged; check the meters' readings",
                "数量不合理：未计费；请核对相关表计读数",
            ));
        }
        (ch.quantity().to_f64(), ch.total_fen())
    };
    let (quantity, amount) = match (kind, price) {
        (CostKind::Fixed(a), _) => (None, tariff::amount_fen(*a, Decimal::ONE)),
        (CostKind::Input, Some(t)) => priced(input_hours, t, &mut notes),
        (CostKind::Meters(ids), Some(t)) => {
            let mut h: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
            for id in ids {
                for (ts, b) in booked.hourly.get(&id.key()).into_iter().flatten() {
                    *h.entry(*ts).or_default() += b.volume;
                }
                if let Some(n) = booked.outside_notes.get(&id.key()) {
                    notes.push(Text::joined(n).after(&id.to_string()));
                }
                if let Some(r) = booked.rows.iter().find(|r| r.flagged && r.device == id.device && r.point == id.point)
                {
                    notes.push(Text::joined(&r.notes).after(&id.to_string()));
                }
            }
            priced(&h, t, &mut notes)
        }
        (CostKind::Demand, Some(t)) => {
            match in_force(std::slice::from_ref(t), period.from.with_timezone(&spec.tz).date_naive()) {
                Some((_, Tariff { price: Price::Flat(p), .. })) => match demand_charge(input_hours.values(), *p) {
                    Some((peak, fen)) => (Some(peak), fen),
                    // never charged as 0 without a word
                    None => {
                        notes.push(Text::new(
                            "implausible peak: not charged; check the meters' readings",
                            "最大需量不合理：未计费；请核对相关表计读数",
                        ));
                        (None, 0)
                    }
                },
                _ => {
                    notes.push(Text::new(
                        format!("not charged: no flat price per kW in force on the month's first day ({})", t.name),
                        format!("未计费：本月第一天没有有效的按千瓦单一价（{}）", t.name),
                    ));
                    (peak_of(input_hours.values()), 0)
                }
            }
        }
        (_, None) => {
            notes.push(Text::new("not charged: the cost has no price", "未计费：该成本项没有价格"));
            (None, 0)
        }
    };
    // A charge by the month (a fixed sum, the demand charge on the month's peak) accrues by
    // day in a running month, so that it meets fees of the same days; a metered cost is
    // already of those days.
    let amount = match kind {
        CostKind::Fixed(_) | CostKind::Demand if period.running() && amount != 0 => {
            let accrued = period.accrued(amount);
            let (elapsed, days, whole) =
                (period.elapsed * period.days, period.days, crate::ledger::export::yuan_text(amount));
            notes.push(Text::new(
                format!("accrued for {elapsed:.1} of {days:.0} days ({whole} yuan for the whole month)"),
                format!("按 {days:.0} 天中的 {elapsed:.1} 天计提（全月 {whole} 元）"),
            ));
            accrued
        }
        _ => amount,
    };
    (quantity, amount, notes)
}

/// The month's peak hour, or `None` when an hour is not a number or beyond any meter.
fn peak_of<'a>(hours: impl Iterator<Item = &'a f64>) -> Option<f64> {
    let mut peak = 0.0f64;
    for v in hours {
        if !v.is_finite() || v.abs() > 1e15 {
            return None;
        }
        peak = peak.max(*v);
    }
    Some(peak)
}

/// The month's peak hour and its demand charge at `price` per unit, or `None` when the
/// peak is not plausible ([`peak_of`]) or the charge is beyond any meter.
fn demand_charge<'a>(hours: impl Iterator<Item = &'a f64>, price: rust_decimal::Decimal) -> Option<(f64, i64)> {
    let peak = peak_of(hours)?;
    Some((peak, tariff::checked_amount_fen(tariff::units(peak), price)?))
}

#[cfg(test)]
#[test]
fn a_demand_charge_on_an_impossible_peak_is_none_not_zero() {
    let p = rust_decimal::Decimal::from(38);
    assert_eq!(demand_charge([12.0, 20.0, 3.0].iter(), p), Some((20.0, 76_000)));
    assert_eq!(demand_charge([].iter(), p), Some((0.0, 0)));
    assert_eq!(demand_charge([12.0, f64::INFINITY].iter(), p), None);
    assert_eq!(demand_charge([f64::NAN, 12.0].iter(), p), None);
    assert_eq!(demand_charge([1e300].iter(), p), None);
}

/// Each utility's figures and cost lines; fills the zones' cost and gap.
pub(crate) fn utility_rows(
    spec: &Spec<'_>,
    prices: &Prices,
    period: &Period,
    booked: &Booked,
    zones: &mut [ZoneRow],
    history: Option<&Ledger>,
) -> (Vec<UtilityRow>, Vec<CostRow>) {
    let topo = spec.topology;
    let mut utilities = Vec::new();
    let mut costs = Vec::new();
    for u in [Utility::Water, Utility::Electricity] {
        let uz: Vec<&ZoneRow> = zones.iter().filter(|z| z.utility == u).collect();
        if uz.is_empty() {
            continue;
        }
        let input: f64 = uz.iter().filter(|z| z.parent.is_none()).map(|z| z.balance.input).sum();
        let billed: f64 = uz.iter().map(|z| z.balance.billed).sum();
        let unbilled: f64 = uz.iter().map(|z| z.balance.unbilled_metered + z.balance.unbilled_estimated).sum();
        let revenue: i64 = booked.rows.iter().filter(|r| r.utility == u).filter_map(|r| r.amount_fen).sum();
        // campus input, hour by hour (root zones' inlets)
        let input_hours = booked.hours_of(spec, |m| {
            m.role == Role::Inlet && m.utility == u && topo.zone(&m.zone).is_some_and(|z| z.parent.is_none())
        });
        let mut cost: i64 = 0;
        for c in prices.costs.iter().filter(|c| c.utility == u) {
            let (quantity, amount, notes) =
                cost_item(spec, prices, period, booked, &input_hours, &c.kind, c.tariff.as_ref());
            cost += amount;
            costs.push(CostRow { utility: u, name: c.name.clone(), quantity, amount_fen: amount, notes });
        }
        let gap = cost - revenue;
        let cost_configured = prices.costs.iter().any(|c| c.utility == u);
        let base = baseline_of(prices, period, u, history);
        // a running month against the same share of the baseline month
        let baseline_gap = base.map(|b| period.accrued(b.cost_fen - b.revenue_fen));
        let fx = base.and_then(|b| {
            effects(
                Figures { input: b.input?, billed: b.billed?, cost: b.cost_fen as f64, revenue: b.revenue_fen as f64 },
                Figures { input, billed, cost: cost as f64, revenue: revenue as f64 },
            )
        });
        utilities.push(UtilityRow {
            utility: Some(u),
            unit: u.unit(),
            input,
            billed,
            unbilled,
            losses: input - billed - unbilled,
            non_revenue: input - billed,
            non_revenue_share: crate::ledger::balance::share(input - billed, input),
            revenue_fen: revenue,
            cost_fen: cost,
            gap_fen: gap,
            baseline_gap_fen: baseline_gap,
            gap_change_fen: baseline_gap.filter(|_| cost_configured).map(|b| gap - b),
            status: baseline_gap.filter(|_| cost_configured).map(|b| Status::of(gap, b)),
            baseline_source: base.map(|b| b.source),
            effects: fx.filter(|_| cost_configured),
            cost_configured,
        });
        allocate(zones, u, cost, input);
    }
    (utilities, costs)
}

/// Costs follow the water (or energy): each zone of utility `u` carries its cost in
/// proportion to its net input, in whole fen by largest remainder so that the zones add
/// up to the utility's cost.
fn allocate(zones: &mut [ZoneRow], u: Utility, cost: i64, input: f64) {
    let idx: Vec<usize> = (0..zones.len()).filter(|&k| zones[k].utility == u).collect();
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

/// Water and electricity together (money only); its baseline needs every utility's.
pub(crate) fn combined(utilities: &[UtilityRow]) -> UtilityRow {
    let all_baselines = utilities.iter().all(|u| u.baseline_gap_fen.is_some()) && !utilities.is_empty();
    let cost_configured = utilities.iter().all(|u| u.cost_configured);
    let sum = |f: fn(&UtilityRow) -> i64| utilities.iter().map(f).sum::<i64>();
    let (rev, cost) = (sum(|u| u.revenue_fen), sum(|u| u.cost_fen));
    let base_gap = all_baselines.then(|| utilities.iter().filter_map(|u| u.baseline_gap_fen).sum::<i64>());
    UtilityRow {
        utility: None,
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
        gap_change_fen: base_gap.filter(|_| cost_configured).map(|b| cost - rev - b),
        status: base_gap.filter(|_| cost_configured).map(|b| Status::of(cost - rev, b)),
        baseline_source: None,
        effects: None,
        cost_configured,
    }
}

/// What a ledger says of each utility without a configured cost.
pub(crate) fn uncosted_notes(utilities: &[UtilityRow]) -> Vec<Text> {
    let mut uncosted = Vec::new();
    for u in utilities.iter().filter(|u| !u.cost_configured).filter_map(|u| u.utility) {
        uncosted.push(Text::new(
            format!("no cost is configured for {u} ([[costs]]): its cost 0.00 is not known to be 0, its gap is only the fees with the sign turned, and neither it nor the combined gap is judged against the baseline"),
            format!("未配置{zh}的成本（[[costs]]）：成本 0.00 并非真为零，差额只是收费取负，{zh}和合计差额均不与基准年比较", zh = if u == crate::ledger::topology::Utility::Water { "水" } else { "电" }),
        ));
    }
    uncosted
}

/// A partial month's gap is part of a month's against a whole baseline month: unlike
/// periods, so no status and no change is claimed for it.
pub(crate) fn unjudged_when(partial: bool, utilities: &mut [UtilityRow], combined: &mut UtilityRow) {
    if partial {
        for u in utilities.iter_mut().chain(std::iter::once(combined)) {
            (u.status, u.gap_change_fen, u.effects) = (None, None, None);
        }
    }
}

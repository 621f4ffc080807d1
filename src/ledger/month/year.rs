//! The year so far, and a year-end projection.
//!
//! Projection: when the baseline year's gap is known for every month, the rest of the
//! year follows the baseline's seasonal shape scaled by how this year compares so far
//! (year-to-date gap ÷ baseline year-to-date gap); otherwise the year-to-date average
//! per month carries on.

use super::{compute_from, Depth, Ledger, LedgerError, Projection, Source, Spec, Status, UtilityRow, YearToDate};
use crate::ledger::corrections::Correction;
use crate::ledger::topology::Utility;
use crate::model::Month;

pub(crate) fn year_to_date(
    spec: &Spec<'_>,
    month: Month,
    source: &Source<'_>,
    corrections: &[Correction],
    current: &[UtilityRow],
    combined: &UtilityRow,
) -> Result<Vec<YearToDate>, LedgerError> {
    let (year, m) = (month.year(), month.month());
    let in_config = |k: u32| spec.prices.baseline.iter().any(|b| b.year == year - 1 && b.month == k);
    // Months before the gateway (or the imported history) had any reading do not count.
    // A partial month (readings for part of it: a gateway started mid-month, an hour
    // imported to give the next month its opening) is left out: its gap is not a month's.
    let mut earlier: Vec<Ledger> = Vec::new();
    let mut left_out: Vec<Month> = Vec::new();
    for k in (1..m).filter_map(|k| Month::new(year, k)) {
        let l = compute_from(spec, k, source, corrections, Depth::Month)?;
        if l.partial {
            left_out.push(k);
        } else if l.utilities.iter().any(|u| u.input > 0.0) {
            earlier.push(l);
        }
    }
    let mut later_baseline: Vec<Option<Ledger>> = Vec::new();
    for k in m + 1..=12 {
        later_baseline.push(match Month::new(year - 1, k) {
            Some(last) if !in_config(k) => Some(compute_from(spec, last, source, corrections, Depth::Bare)?),
            _ => None,
        });
    }
    let mut out = Vec::new();
    let accounts: Vec<Option<Utility>> = current.iter().map(|u| u.utility).chain(std::iter::once(None)).collect();
    for account in accounts {
        let pick = |l: &Ledger| -> Option<UtilityRow> {
            match account {
                None => Some(l.combined.clone()),
                Some(_) => l.utilities.iter().find(|u| u.utility == account).cloned(),
            }
        };
        let now = match account {
            None => Some(combined.clone()),
            Some(_) => current.iter().find(|u| u.utility == account).cloned(),
        };
        let Some(now) = now else { continue };
        let mut gaps = vec![now.gap_fen];
        let mut bases = vec![now.baseline_gap_fen];
        for l in &earlier {
            let row = pick(l);
            gaps.push(row.as_ref().map(|r| r.gap_fen).unwrap_or(0));
            bases.push(row.and_then(|r| r.baseline_gap_fen));
        }
        let gap: i64 = gaps.iter().sum();
        let base_ytd: Option<i64> = bases.iter().copied().sum();
        // the baseline of the months still to come
        let rest: Option<i64> = (m + 1..=12)
            .zip(&later_baseline)
            .map(|(k, hist)| {
                let from_config = |u: Utility| {
                    spec.prices
                        .baseline
                        .iter()
                        .find(|b| b.year == year - 1 && b.month == k && b.utility == u)
                        .map(|b| b.cost_fen - b.revenue_fen)
                };
                let one = |u: Utility| from_config(u).or_else(|| hist.as_ref().and_then(|h| pick_gap(h, u)));
                match account {
                    None => current.iter().map(|u| u.utility.and_then(one)).sum(),
                    Some(u) => one(u),
                }
            })
            .sum();
        let months_so_far = 1 + earlier.len() as u32;
        let (projection, method) = match (base_ytd, rest) {
            (Some(b), Some(r)) if b > 0 => {
                (gap + ((r as f64) * gap as f64 / b as f64).round() as i64, Projection::SeasonalShape)
            }
            (Some(b), Some(r)) => {
                (gap + r + (gap - b) * i64::from(12 - m) / i64::from(months_so_far), Projection::BaselineRest)
            }
            _ => (gap * 12 / i64::from(months_so_far), Projection::Average),
        };
        let full_year = base_ytd.zip(rest).map(|(a, b)| a + b);
        out.push(YearToDate {
            utility: account,
            months: months_so_far,
            gap_fen: gap,
            baseline_gap_fen: base_ytd,
            projection_fen: projection,
            projection_method: method,
            baseline_full_year_fen: full_year,
            status: full_year.map(|b| Status::of(projection, b)),
            partial_months_left_out: left_out.clone(),
        });
    }
    Ok(out)
}

fn pick_gap(l: &Ledger, u: Utility) -> Option<i64> {
    l.utilities.iter().find(|x| x.utility == Some(u) && x.input > 0.0).map(|x| x.gap_fen)
}

//! The pure core: the alert records and the ledger in, the month's and the year's
//! figures against the baseline out.

use std::collections::BTreeMap;

use crate::lang::Text;
use chrono::{DateTime, TimeZone, Utc};

use super::*;

/// One period's safety and service figures.
#[derive(Debug, Clone, Default)]
struct Figures {
    incidents: Vec<Incident>,
    interruptions: Vec<Interruption>,
    low_pressure_ms: BTreeMap<String, i64>,
}

impl Figures {
    /// The figure of a safety or service measure; `None` for the gap, which the ledger
    /// gives, not the alert records.
    fn value(&self, m: Measure) -> Option<i64> {
        Some(match m {
            Measure::Incidents => self.incidents.len() as i64,
            Measure::Interruptions => self.interruptions.len() as i64,
            Measure::CustomerMinutes => self.interruptions.iter().map(|i| i.customer_minutes).sum(),
            Measure::LowPressureMinutes => self.low_pressure_ms.values().sum::<i64>() / 60_000,
            Measure::GapFen => return None,
        })
    }
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Total length of the union of `spans` (ms).
fn union_ms(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.retain(|(a, b)| b > a);
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn length(spans: &[(i64, i64)]) -> i64 {
    spans.iter().map(|(a, b)| b - a).sum()
}

/// `a` less `b` (both unions).
fn minus(a: &[(i64, i64)], b: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for &(mut s, e) in a {
        for &(bs, be) in b {
            if be <= s || bs >= e {
                continue;
            }
            if bs > s {
                out.push((s, bs));
            }
            s = s.max(be);
        }
        if s < e {
            out.push((s, e));
        }
    }
    out
}

/// The figures of `[from, to)`; episodes still open run to `to`.
fn figures(alerts: &[AlertRow], from: i64, to: i64, customers: &dyn Fn(&str) -> usize) -> Figures {
    let mut f = Figures::default();
    let end = |a: &AlertRow| a.end_ms.unwrap_or(to).min(to);
    let mut cut: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for a in alerts.iter().filter(|a| a.rule == AlertRule::SupplyInterruption) {
        cut.entry(&a.zone).or_default().push((a.start_ms.max(from), end(a)));
        if !(from..to).contains(&a.start_ms) {
            continue;
        }
        let minutes = (end(a) - a.start_ms).max(0) / 60_000;
        let n = customers(&a.zone);
        f.interruptions.push(Interruption {
            alert: a.id,
            zone: a.zone.clone(),
            start: time(a.start_ms),
            end: a.end_ms.map(time),
            minutes,
            customers: n,
            customer_minutes: minutes * n as i64,
            cause: crate::alerts::said::Fact::from_stored(&a.evidence),
        });
    }
    for a in alerts.iter().filter(|a| a.rule.is_safety_incident() && (from..to).contains(&a.start_ms)) {
        f.incidents.push(Incident {
            alert: a.id,
            rule: a.rule,
            zone: a.zone.clone(),
            subject: a.subject.clone(),
            severity: a.severity,
            start: time(a.start_ms),
            end: a.end_ms.map(time),
            evidence: crate::alerts::said::Fact::from_stored(&a.evidence),
        });
    }
    let mut low: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for a in alerts.iter().filter(|a| a.rule == AlertRule::PressureLow && a.start_ms < to && end(a) > from) {
        low.entry(&a.zone).or_default().push((a.start_ms.max(from), end(a)));
    }
    for (zone, spans) in low {
        let interrupted = union_ms(cut.get(zone).cloned().unwrap_or_default());
        let left = minus(&union_ms(spans), &interrupted);
        f.low_pressure_ms.insert(zone.to_string(), length(&left));
    }
    f
}

fn count_status(this: i64, base: i64, running: bool) -> Status {
    if this > base {
        Status::Breached
    } else if running && this == base && base > 0 {
        Status::AtRisk
    } else {
        Status::OnTrack
    }
}

fn worst(a: Option<Status>, b: Option<Status>) -> Option<Status> {
    let rank = |s: Status| match s {
        Status::OnTrack => 0,
        Status::AtRisk => 1,
        Status::Breached => 2,
    };
    match (a, b) {
        (Some(x), Some(y)) => Some(if rank(y) > rank(x) { y } else { x }),
        (x, y) => x.or(y),
    }
}

const SERVICE: [Measure; 4] =
    [Measure::Incidents, Measure::Interruptions, Measure::CustomerMinutes, Measure::LowPressureMinutes];

/// The baseline of one measure for one month: the old books (`[[baseline_targets]]`)
/// first, then the store's records of that month.
fn baseline_of(
    baselines: &[TargetBaseline],
    m: Month,
    measure: Measure,
    hist: &Option<Figures>,
) -> Option<(i64, BaselineSource)> {
    let entry = baselines.iter().find(|b| b.month == m);
    let given = entry.and_then(|b| match measure {
        Measure::Incidents => b.incidents,
        Measure::Interruptions => b.interruptions,
        Measure::CustomerMinutes => b.customer_minutes,
        Measure::LowPressureMinutes => b.low_pressure_minutes,
        Measure::GapFen => None,
    });
    given
        .map(|v| (v, BaselineSource::Config))
        .or_else(|| hist.as_ref().and_then(|f| f.value(measure)).map(|v| (v, BaselineSource::History)))
}

/// The money target's rows: the month's combined gap and the year to date, from the ledger.
fn money_rows(l: &Ledger) -> Vec<Row> {
    let c = &l.combined;
    let mut rows = Vec::new();
    rows.push(Row {
        target: Target::Money,
        measure: Measure::GapFen,
        period: Period::Month,
        // without a configured cost the gap is no gap: unknown, not the fees turned round
        this: Some(c.gap_fen).filter(|_| c.cost_configured),
        baseline: c.baseline_gap_fen,
        change: c.gap_change_fen,
        status: c.status,
        baseline_source: c.baseline_source,
    });
    if let Some(y) = l.year_to_date.iter().find(|y| y.utility.is_none()) {
        rows.push(Row {
            target: Target::Money,
            measure: Measure::GapFen,
            period: Period::YearToDate,
            this: Some(y.gap_fen).filter(|_| c.cost_configured),
            baseline: y.baseline_gap_fen,
            change: y.baseline_gap_fen.filter(|_| c.cost_configured).map(|b| y.gap_fen - b),
            status: y.status,
            baseline_source: None,
        });
    }
    rows
}

/// The note saying the alert rules have not run over all of month `m` (only `through`,
/// local time, if at all), with the command that runs them.
fn not_evaluated_note(
    m: Month,
    through: Option<String>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Text {
    // the command as it runs, its times in the site's offset
    let (from, to) = (from.with_timezone(&tz).to_rfc3339(), to.with_timezone(&tz).to_rfc3339());
    Text::new(
        format!(
            "safety and service figures of {m} are unknown: the alert rules have not run over all of it{} (run `pumphouse alerts -c CONFIG evaluate --from {from} --to {to}`)",
            through.as_ref().map(|t| format!(", only through {t}")).unwrap_or_default()
        ),
        format!(
            "{m} 的安全和服务数字未知：报警规则尚未覆盖整月{}（请运行 `pumphouse alerts -c 配置文件 evaluate --from {from} --to {to}`）",
            through.as_ref().map(|t| format!("，只到 {t}")).unwrap_or_default()
        ),
    )
}

/// The note naming the measures the baseline month `b` has no figure for.
fn no_baseline_note(b: Month, missing: &[Measure]) -> Text {
    let names: Vec<&str> = missing
        .iter()
        .map(|m| match m {
            Measure::Incidents => "incidents",
            Measure::Interruptions => "interruptions",
            Measure::CustomerMinutes => "customer_minutes",
            Measure::LowPressureMinutes => "low_pressure_minutes",
            Measure::GapFen => "gap",
        })
        .collect();
    let zh: Vec<&str> = missing.iter().map(|m| super::tables::measure_label(crate::lang::Lang::Zh, *m)).collect();
    Text::new(
        format!(
            "no baseline for {b} ({}): give it under [[baseline_targets]] from the old books, or keep that month's readings and run the alert rules over it",
            names.join(", ")
        ),
        format!(
            "{b} 没有基准（{}）：请在 [[baseline_targets]] 中按旧台账填写，或保留该月读数并对其运行报警规则",
            zh.join("、")
        ),
    )
}

/// Each target's status per period: the worst of its measures', unknown when one is.
pub(super) fn summary_of(rows: &[Row]) -> Vec<Summary> {
    let mut summary = Vec::new();
    for target in [Target::Money, Target::Safety, Target::Service] {
        for period in [Period::Month, Period::YearToDate] {
            let of: Vec<&Row> = rows.iter().filter(|r| r.target == target && r.period == period).collect();
            if of.is_empty() {
                continue;
            }
            // a measure without a status leaves the target's status unknown
            let status = if of.iter().all(|r| r.status.is_some()) {
                of.iter().fold(None, |acc, r| worst(acc, r.status))
            } else {
                None
            };
            summary.push(Summary { target, period, status });
        }
    }
    summary
}

/// The report for `input.month`.
pub fn compute(input: &Input<'_>) -> Targets {
    let tz = input.tz;
    let mut notes = Vec::new();
    let bounds = |m: Month| m.bounds(tz).map(|(a, b)| (ms(a), ms(b)));
    // where the rules have run through, from a time on
    let through = |from: i64| input.passes.iter().find(|(a, b)| *a <= from && from < *b).map(|(_, b)| *b);
    let now = ms(input.as_of);
    let complete = bounds(input.month).is_some_and(|(_, b)| b <= now);
    // A month's figures, counted through the end of the month or now; `None` when the
    // rules have not run over it (to within an hour of now for a month still running).
    let month_figures = |m: Month, notes: &mut Vec<Text>, baseline: bool| -> Option<Figures> {
        let (from, to) = bounds(m)?;
        let to = to.min(now);
        if to <= from {
            return Some(Figures::default());
        }
        let done = through(from);
        let enough = done.is_some_and(|d| d >= to || (!baseline && to == now && d >= now - 3_600_000));
        if !enough {
            if !baseline {
                let through = done.map(|d| time(d).with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string());
                notes.push(not_evaluated_note(m, through, time(from), time(to), tz));
            }
            return None;
        }
        Some(figures(input.alerts, from, done.map_or(to, |d| d.min(to)), input.customers))
    };
    let month = input.month;
    let this_month = month_figures(month, &mut notes, false);
    let base_of = |m: Month, measure: Measure, hist: &Option<Figures>| baseline_of(input.baselines, m, measure, hist);
    let months: Vec<Month> = Month::new(month.year(), 1)
        .map(|jan| jan.iter_from().take_while(|m| *m <= month).collect())
        .unwrap_or_default();
    let mut ytd_this: Vec<Option<Figures>> = Vec::new();
    let mut ytd_hist: Vec<(Month, Option<Figures>)> = Vec::new();
    for m in &months {
        let f = if *m == month { this_month.clone() } else { month_figures(*m, &mut Vec::new(), false) };
        ytd_this.push(f);
        let b = m.year_before();
        ytd_hist.push((*m, b.and_then(|b| month_figures(b, &mut Vec::new(), true))));
    }
    let mut rows = input.ledger.map(money_rows).unwrap_or_default();
    let mut missing_base: Vec<Measure> = Vec::new();
    for measure in SERVICE {
        let judge = |this: Option<i64>, base: Option<i64>| -> Option<Status> {
            let (t, b) = (this?, base?);
            Some(match measure {
                Measure::CustomerMinutes | Measure::LowPressureMinutes if !complete && t <= b => Status::OnTrack,
                Measure::CustomerMinutes | Measure::LowPressureMinutes => Status::of(t, b),
                _ => count_status(t, b, !complete),
            })
        };
        let hist =
            month.year_before().and_then(|b| ytd_hist.iter().find(|(m, _)| *m == month).map(|x| (b, x.1.clone())));
        let base = hist.as_ref().and_then(|(b, h)| base_of(*b, measure, h));
        if base.is_none() {
            missing_base.push(measure);
        }
        let this = this_month.as_ref().and_then(|f| f.value(measure));
        rows.push(Row {
            target: measure.target(),
            measure,
            period: Period::Month,
            this,
            baseline: base.map(|b| b.0),
            change: this.zip(base).map(|(t, b)| t - b.0),
            status: judge(this, base.map(|b| b.0)),
            baseline_source: base.map(|b| b.1),
        });
        let this: Option<i64> = ytd_this.iter().map(|f| f.as_ref().and_then(|f| f.value(measure))).sum();
        let bases: Option<Vec<(i64, BaselineSource)>> =
            ytd_hist.iter().map(|(m, h)| m.year_before().and_then(|b| base_of(b, measure, h))).collect();
        let base = bases.as_ref().map(|v| v.iter().map(|x| x.0).sum::<i64>());
        let source = bases.as_ref().map(|v| {
            if v.iter().all(|x| x.1 == BaselineSource::Config) {
                BaselineSource::Config
            } else {
                BaselineSource::History
            }
        });
        rows.push(Row {
            target: measure.target(),
            measure,
            period: Period::YearToDate,
            this,
            baseline: base,
            change: this.zip(base).map(|(t, b)| t - b),
            status: judge(this, base),
            baseline_source: source,
        });
    }
    if let (false, Some(b)) = (missing_base.is_empty(), month.year_before()) {
        notes.push(no_baseline_note(b, &missing_base));
    }
    let summary = summary_of(&rows);
    let f = this_month.unwrap_or_default();
    Targets {
        site: input.site.to_string(),
        month,
        as_of: input.as_of,
        complete,
        summary,
        rows,
        low_pressure: f
            .low_pressure_ms
            .iter()
            .map(|(zone, ms)| LowPressure { zone: zone.clone(), minutes: ms / 60_000 })
            .collect(),
        incidents: f.incidents,
        interruptions: f.interruptions,
        notes,
    }
}

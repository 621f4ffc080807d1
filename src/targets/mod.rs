//! The three zero-growth targets (三个零增长) of the plan, for a month and for the year to
//! date, against the baseline year:
//! 1. **money**: the fee–cost gap, from the month's ledger ([`crate::ledger::month`]);
//! 2. **safety**: incidents, the alert episodes of the safety kinds
//!    ([`AlertRule::is_safety_incident`]: bursts, over-pressure, water outside the
//!    drinking-water limits, electrical overload, a lost phase);
//! 3. **service**: supply interruptions (how many, customer-minutes without supply) and
//!    low-pressure minutes.
//!
//! Rules the working groups should know:
//! - an incident or an interruption belongs to the month it starts in; an interruption's
//!   minutes are those inside the period (one still going runs to the report's time);
//! - customer-minutes = an interruption's minutes × the customer meters (role `billed`)
//!   of its zone and the zones below it, as the network map is configured;
//! - low-pressure minutes: time a zone's pressure points were below the service level
//!   (the `pressure_low` alerts), overlaps counted once, interruptions of the zone not
//!   counted again;
//! - a period's figures are known only when the alert rules have run over all of it
//!   (the gateway runs them continuously; for imported history run `pumphouse alerts
//!   evaluate`); otherwise the figure is unknown and the notes say why, never 0;
//! - the baseline year's figures come from `[[baseline_targets]]` (the old books) where
//!   given, else from the store's records of that month when the rules ran over all of it;
//! - status of a count: *on track* when not above the baseline; while the period is still
//!   running, *at risk* when it equals a non-zero baseline (no headroom left); *breached*
//!   above it. Minutes are judged like money: *at risk* up to 5 % above the baseline,
//!   *breached* beyond. A target's status is the worst of its measures.
//!
//! Pure: [`compute`] takes the records and returns the report; [`from_store`] is the
//! shell that reads them.

pub mod baseline;
pub mod tables;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::Config;
use crate::ledger::month::{BaselineSource, Ledger, Status};
use crate::model::{AlertRule, Month, Severity};
use crate::store::{AlertRow, Store, StoreError};
use baseline::TargetBaseline;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Money,
    Safety,
    Service,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// The combined fee–cost gap, fen.
    GapFen,
    Incidents,
    Interruptions,
    CustomerMinutes,
    LowPressureMinutes,
}

impl Measure {
    pub fn target(self) -> Target {
        match self {
            Measure::GapFen => Target::Money,
            Measure::Incidents => Target::Safety,
            Measure::Interruptions | Measure::CustomerMinutes | Measure::LowPressureMinutes => Target::Service,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Month,
    YearToDate,
}

/// One measure for one period against the baseline year's same period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub target: Target,
    pub measure: Measure,
    pub period: Period,
    /// `None`: not known (see the notes).
    pub this: Option<i64>,
    pub baseline: Option<i64>,
    pub change: Option<i64>,
    pub status: Option<Status>,
    pub baseline_source: Option<BaselineSource>,
}

/// A target's status for a period: the worst of its measures'.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub target: Target,
    pub period: Period,
    pub status: Option<Status>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub alert: i64,
    pub rule: AlertRule,
    pub zone: String,
    pub subject: String,
    pub severity: Severity,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub evidence: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interruption {
    pub alert: i64,
    pub zone: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    /// Minutes without supply inside the month.
    pub minutes: i64,
    pub customers: usize,
    pub customer_minutes: i64,
    pub cause: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LowPressure {
    pub zone: String,
    pub minutes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Targets {
    pub site: String,
    pub month: Month,
    pub as_of: DateTime<Utc>,
    /// Whether the month is over.
    pub complete: bool,
    pub summary: Vec<Summary>,
    pub rows: Vec<Row>,
    /// The month's records.
    pub incidents: Vec<Incident>,
    pub interruptions: Vec<Interruption>,
    pub low_pressure: Vec<LowPressure>,
    pub notes: Vec<String>,
}

/// What [`compute`] needs.
pub struct Input<'a> {
    pub site: &'a str,
    pub month: Month,
    pub tz: Tz,
    pub as_of: DateTime<Utc>,
    /// The alert records from the baseline year's January to the end of the month.
    pub alerts: &'a [AlertRow],
    /// The data-time ranges (ms) the alert rules have run over, merged.
    pub passes: &'a [(i64, i64)],
    /// Customer meters a zone feeds.
    pub customers: &'a dyn Fn(&str) -> usize,
    pub baselines: &'a [TargetBaseline],
    /// The month's ledger, for the money target (`None`: no network map).
    pub ledger: Option<&'a Ledger>,
}

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

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
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
            cause: a.evidence.clone(),
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
            evidence: a.evidence.clone(),
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
    let month_figures = |m: Month, notes: &mut Vec<String>, baseline: bool| -> Option<Figures> {
        let (from, to) = bounds(m)?;
        let to = to.min(now);
        if to <= from {
            return Some(Figures::default());
        }
        let done = through(from);
        let enough = done.is_some_and(|d| d >= to || (!baseline && to == now && d >= now - 3_600_000));
        if !enough {
            if !baseline {
                notes.push(format!(
                    "safety and service figures of {m} are unknown: the alert rules have not run over all of it{} (run `pumphouse alerts evaluate --from {} --to {}`)",
                    done.map(|d| format!(", only through {}", time(d).with_timezone(&tz).format("%Y-%m-%d %H:%M"))).unwrap_or_default(),
                    time(from).to_rfc3339(),
                    time(to).to_rfc3339()
                ));
            }
            return None;
        }
        Some(figures(input.alerts, from, done.map_or(to, |d| d.min(to)), input.customers))
    };
    let month = input.month;
    let this_month = month_figures(month, &mut notes, false);
    // the baseline of one measure for one month: config first, then history
    let base_of = |m: Month, measure: Measure, hist: &Option<Figures>| -> Option<(i64, BaselineSource)> {
        let entry = input.baselines.iter().find(|b| b.month == m);
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
    };
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
    let mut rows = Vec::new();
    if let Some(l) = input.ledger {
        let c = &l.combined;
        rows.push(Row {
            target: Target::Money,
            measure: Measure::GapFen,
            period: Period::Month,
            this: Some(c.gap_fen),
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
                this: Some(y.gap_fen),
                baseline: y.baseline_gap_fen,
                change: y.baseline_gap_fen.map(|b| y.gap_fen - b),
                status: y.status,
                baseline_source: None,
            });
        }
    }
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
    if !missing_base.is_empty() {
        if let Some(b) = month.year_before() {
            let names: Vec<&str> = missing_base
                .iter()
                .map(|m| match m {
                    Measure::Incidents => "incidents",
                    Measure::Interruptions => "interruptions",
                    Measure::CustomerMinutes => "customer_minutes",
                    Measure::LowPressureMinutes => "low_pressure_minutes",
                    Measure::GapFen => "gap",
                })
                .collect();
            notes.push(format!(
                "no baseline for {b} ({}): give it under [[baseline_targets]] from the old books, or keep that month's readings and run the alert rules over it",
                names.join(", ")
            ));
        }
    }
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

/// The report from the store's alert records and the configuration's baselines.
pub fn from_store(
    cfg: &Config,
    store: &Store,
    month: Month,
    ledger: Option<&Ledger>,
    as_of: DateTime<Utc>,
) -> Result<Targets, StoreError> {
    let tz = cfg.site.timezone;
    // from the baseline year's January to the month's end; where a bound does not
    // exist (a baseline year before 2000), everything on that side — never an empty read
    let first = month.year_before().and_then(|b| Month::new(b.year(), 1)).and_then(|m| m.bounds(tz));
    let from = first.map_or(i64::MIN, |(a, _)| ms(a));
    let to = month.bounds(tz).map_or(i64::MAX, |(_, b)| ms(b));
    let alerts = store.alerts_between(from, to)?;
    let passes = store.alert_passes()?;
    let customers = |zone: &str| cfg.topology.customers(zone);
    let mut t = compute(&Input {
        site: &cfg.site.name,
        month,
        tz,
        as_of,
        alerts: &alerts,
        passes: &passes,
        customers: &customers,
        baselines: &cfg.target_baselines,
        ledger,
    });
    t.notes.extend(unobserved(cfg));
    Ok(t)
}

/// What the configured devices cannot see, so that a count of 0 is read as "none seen by
/// what is measured", with the gaps named.
pub fn unobserved(cfg: &Config) -> Vec<String> {
    use crate::model::Quantity;
    let has = |q: Quantity| cfg.devices.iter().any(|d| d.profile.points.iter().any(|p| p.quantity == q));
    let mut out = Vec::new();
    let quality = [Quantity::FreeChlorine, Quantity::Turbidity, Quantity::Ph];
    if !quality.into_iter().any(has) {
        out.push("no water-quality analyser is configured: water-quality incidents are not observed".to_string());
    }
    if !has(Quantity::Pressure) {
        out.push(
            "no pressure point is configured: over-pressure, low pressure and loss of pressure are not observed"
                .to_string(),
        );
    }
    if !has(Quantity::WaterFlow) {
        out.push("no flow-rate point is configured: bursts are not observed".to_string());
    }
    if !has(Quantity::Current) && !has(Quantity::Voltage) {
        out.push(
            "no electricity meter with phase currents or voltages: electrical incidents are not observed".to_string(),
        );
    }
    out
}

/// A month's ledger with its targets report: what every ledger output (command, API,
/// monthly files) shows.
#[derive(Debug, Clone, Serialize)]
pub struct MonthReport {
    #[serde(flatten)]
    pub ledger: Ledger,
    pub targets: Targets,
}

impl MonthReport {
    /// The ledger of `month` from the store, and its targets as of now.
    pub fn from_store(cfg: &Config, store: &Store, month: Month) -> crate::ledger::book::Result<MonthReport> {
        let ledger =
            crate::ledger::book::month_ledger(&cfg.ledger_spec(), store, month, crate::ledger::month::Depth::Full)?;
        let targets = from_store(cfg, store, month, Some(&ledger), Utc::now())?;
        Ok(MonthReport { ledger, targets })
    }

    pub fn csv(&self, lang: crate::ledger::export::Lang) -> String {
        let extra = tables::tables(&self.targets, lang, self.tz());
        crate::ledger::export::to_csv(&self.ledger, lang, &extra)
    }

    pub fn xlsx(&self, lang: crate::ledger::export::Lang) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        let extra = tables::tables(&self.targets, lang, self.tz());
        crate::ledger::export::to_xlsx(&self.ledger, lang, &extra)
    }

    fn tz(&self) -> Tz {
        self.ledger.timezone.parse().unwrap_or(chrono_tz::UTC)
    }
}

#[cfg(test)]
mod tests;

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
//! Pure: [`compute`] (in `compute.rs`) takes the records and returns the report;
//! [`from_store`] (in `report.rs`) is the shell that reads them, and [`MonthReport`] the
//! ledger with its targets as every output shows them.

pub mod baseline;
mod compute;
mod report;
pub mod tables;

pub use compute::compute;
pub use report::{from_store, MonthReport};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::ledger::month::{BaselineSource, Ledger, Status};
use crate::model::{AlertRule, Month, Severity};
use crate::store::AlertRow;
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
    pub evidence: crate::alerts::said::Fact,
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
    pub cause: crate::alerts::said::Fact,
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
    pub notes: Vec<crate::lang::Text>,
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

/// What the targets need of the configuration, built by `Config::targets_spec()`.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub site: &'a str,
    pub tz: Tz,
    pub topology: &'a crate::ledger::topology::Topology,
    pub baselines: &'a [TargetBaseline],
    /// The quantities some configured device measures (what can be observed at all).
    pub observed: std::collections::BTreeSet<crate::model::Quantity>,
    pub ledger: crate::ledger::month::Spec<'a>,
    /// The pipe register: its renewal list is a sheet of every month's files.
    pub assets: &'a crate::assets::Assets,
    /// The devices as the network map draws them (a sheet of the workbook).
    pub elements: Vec<crate::ledger::schematic::Element>,
}

#[cfg(test)]
mod tests;

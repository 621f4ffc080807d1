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
use std::time::Duration;

use crate::lang::Text;
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::balance::Balance;
use super::corrections::{Change, Correction};
use super::intervals::{Bucket, Sample};
use super::prices::Prices;
use super::tariff::{Price, Tariff};
use super::topology::{Role, Topology, Utility};
use crate::model::Month;

mod meters;
mod money;
mod volumes;
mod year;

pub use volumes::ZoneVolumes;

/// What the ledger needs of a site: its network map, prices, time zone and how often each
/// meter is read (which says what a gap is). Built by the configuration
/// (`Config::ledger_spec`); the ledger does not read the configuration itself.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub site: &'a str,
    pub tz: Tz,
    pub topology: &'a Topology,
    pub prices: &'a Prices,
    /// Polling interval per device name.
    pub intervals: HashMap<&'a str, Duration>,
    /// When the figures are computed, for a month still running: a meter is "silent"
    /// only if it has not read for a while before this, not before the month's end.
    pub as_of: Option<DateTime<Utc>>,
}

impl Spec<'_> {
    /// A device's polling interval; ten minutes for a device the gateway does not poll
    /// (its readings are imported).
    fn interval(&self, device: &str) -> Duration {
        self.intervals.get(device).copied().unwrap_or(Duration::from_secs(600))
    }
}

/// What a reading source could not do (a store error, typically).
pub type ReadError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{what}: {source}")]
    Read { what: String, source: ReadError },
    #[error("month {0} has no start or end in time zone {1}")]
    Bounds(Month, Tz),
}

/// Status against the zero-growth target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    /// The gap has not grown.
    #[serde(rename = "on track")]
    OnTrack,
    /// It grew by up to 5 % of the baseline gap's size.
    #[serde(rename = "at risk")]
    AtRisk,
    /// It grew by more.
    #[serde(rename = "breached")]
    Breached,
}

impl Status {
    pub fn of(gap: i64, baseline: i64) -> Status {
        let allowance = baseline.abs() / 20;
        if gap <= baseline {
            Status::OnTrack
        } else if gap <= baseline + allowance {
            Status::AtRisk
        } else {
            Status::Breached
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::OnTrack => "on track",
            Status::AtRisk => "at risk",
            Status::Breached => "breached",
        }
    }
}

/// Where a baseline came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineSource {
    /// `[[baseline]]`: the old books.
    Config,
    /// Last year's readings in the store.
    History,
}

fn account<S: serde::Serializer>(u: &Option<Utility>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(u.map_or("combined", Utility::as_str))
}

#[derive(Debug, Clone, Serialize)]
pub struct MeterRow {
    pub utility: Utility,
    pub zone: String,
    pub device: String,
    pub point: String,
    pub role: Role,
    pub category: Option<String>,
    pub opening: Option<f64>,
    pub opening_ts: Option<DateTime<Utc>>,
    pub closing: Option<f64>,
    pub closing_ts: Option<DateTime<Utc>>,
    pub consumption: f64,
    /// The part of the consumption spread over gaps (estimated in time, not in amount).
    pub estimated: f64,
    pub quarantined: usize,
    pub tariff: Option<crate::lang::Text>,
    pub amount_fen: Option<i64>,
    pub notes: Vec<crate::lang::Text>,
    /// True when a note says the consumption or the bill may be short (no trusted
    /// readings, readings missing at month end, volume not charged).
    pub flagged: bool,
    /// The share of the month (to now, in a running month) between the meter's first
    /// and last trusted readings; `None` for a month booked from its frozen record.
    pub coverage: Option<f64>,
}

/// Below this share of the month, a meter's readings leave the month partial.
pub const FULL_COVERAGE: f64 = 0.95;

#[derive(Debug, Clone, Serialize)]
pub struct ZoneRow {
    pub utility: Utility,
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
    pub utility: Utility,
    pub name: String,
    pub quantity: Option<f64>,
    pub amount_fen: i64,
    /// Why the amount may be short (a meter without readings, hours without a price).
    pub notes: Vec<crate::lang::Text>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Effects {
    pub volume_fen: i64,
    pub price_fen: i64,
    pub loss_fen: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UtilityRow {
    /// `None` for the combined row (serialized as `combined`).
    #[serde(serialize_with = "account")]
    pub utility: Option<Utility>,
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
    pub status: Option<Status>,
    /// Where the baseline came from: `config` (the old books) or `history` (last year's
    /// readings in the store).
    pub baseline_source: Option<BaselineSource>,
    pub effects: Option<Effects>,
    /// `[[costs]]` gives the utility (each, for the combined row) a cost; else cost 0 is
    /// unknown, the gap only the fees turned round, and no status is claimed.
    pub cost_configured: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct BaseFigures {
    pub(crate) input: Option<f64>,
    pub(crate) billed: Option<f64>,
    pub(crate) revenue_fen: i64,
    pub(crate) cost_fen: i64,
    pub(crate) source: BaselineSource,
}

/// How the year-end figure is projected from the year so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// The baseline year's remaining months, scaled by this year to date against its.
    SeasonalShape,
    /// The baseline year's remaining months plus the year-to-date difference carried on.
    BaselineRest,
    /// The average month so far, carried on (no baseline year to shape it).
    Average,
}

impl Projection {
    pub fn as_str(self) -> &'static str {
        match self {
            Projection::SeasonalShape => "baseline seasonal shape scaled by year to date",
            Projection::BaselineRest => "baseline rest of year plus the year-to-date difference carried on",
            Projection::Average => "year-to-date average per month carried on",
        }
    }

    pub fn label(self, lang: crate::lang::Lang) -> &'static str {
        match lang {
            crate::lang::Lang::En => self.as_str(),
            crate::lang::Lang::Zh => match self {
                Projection::SeasonalShape => "按基准年的季节规律，以本年累计比例放大",
                Projection::BaselineRest => "基准年剩余月份，加上本年至今的差额延续",
                Projection::Average => "按本年至今的月均值延续",
            },
        }
    }
}

impl PartialEq<&str> for Projection {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Projection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The year so far, and where it is heading.
#[derive(Debug, Clone, Serialize)]
pub struct YearToDate {
    #[serde(serialize_with = "account")]
    pub utility: Option<Utility>,
    pub months: u32,
    pub gap_fen: i64,
    /// The baseline year's gap over the same months, when every one of them is known.
    pub baseline_gap_fen: Option<i64>,
    pub projection_fen: i64,
    pub projection_method: Projection,
    pub baseline_full_year_fen: Option<i64>,
    /// The projected year against the baseline year.
    pub status: Option<Status>,
    /// Earlier months of the year left out as partial (see [`Ledger::partial`]).
    pub partial_months_left_out: Vec<Month>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ledger {
    pub site: String,
    /// True when the month's hourly consumption comes from its frozen record.
    pub frozen: bool,
    /// Each meter's hourly consumption (`device.point` → hour → bucket), the record a
    /// month is frozen with.
    #[serde(skip)]
    pub hourly: BTreeMap<String, BTreeMap<DateTime<Utc>, Bucket>>,
    /// Corrections that affected this month's figures.
    pub corrections: Vec<Correction>,
    pub month: Month,
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
    /// What a reader must know before trusting the figures: flagged meters and cost
    /// lines, corrections that could not be read. Empty when there is nothing to say.
    pub notes: Vec<crate::lang::Text>,
    /// A meter of the network map has readings for less than [`FULL_COVERAGE`] of the
    /// month: its figures are not the whole month's, it is left out of the year-end
    /// projection, and it is not frozen while its readings may still come.
    pub partial: bool,
}

impl Ledger {
    /// The meter whose readings cover the least of the month, with its share.
    pub fn least_covered(&self) -> Option<(&MeterRow, f64)> {
        self.meters.iter().filter_map(|r| r.coverage.map(|c| (r, c))).min_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// A month's figures for the gap decomposition (volume, price and loss effects, which add
/// up to `gap1 − gap0` to the fen): input and billed volume, cost and revenue in fen.
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

type Samples<'a> = dyn Fn(&str, &str, DateTime<Utc>, DateTime<Utc>) -> Result<Vec<Sample>, ReadError> + 'a;

/// (month, `device.point`) → the kept hourly buckets, when that month is frozen.
pub type Frozen<'a> = dyn Fn(Month, &str) -> Result<Option<BTreeMap<DateTime<Utc>, Bucket>>, ReadError> + 'a;

/// (device, point, before) → the last trusted reading before that time.
pub type Anchor<'a> = dyn Fn(&str, &str, DateTime<Utc>) -> Result<Option<Sample>, ReadError> + 'a;

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

/// Computes the ledger of `month` from the readings `samples(device, point, from, to)`
/// returns.
pub fn compute(
    spec: &Spec<'_>,
    month: Month,
    samples: &Samples<'_>,
    corrections: &[Correction],
) -> Result<Ledger, LedgerError> {
    compute_from(spec, month, &Source { samples, frozen: None, anchor: None }, corrections, Depth::Full)
}

/// The month's bounds and what the computation of it shares.
pub(crate) struct Period {
    pub month: Month,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Days in the month (23- and 25-hour days count as such).
    pub days: f64,
    /// The share of the month that has passed when it is judged: 1 for a closed month.
    /// A running month is judged month-to-date: fixed costs accrue by it, and the
    /// baseline month's gap is taken in the same share, so like is compared with like.
    pub elapsed: f64,
}

impl Period {
    fn new(month: Month, from: DateTime<Utc>, to: DateTime<Utc>, as_of: Option<DateTime<Utc>>) -> Period {
        let span = (to - from).num_milliseconds().max(1) as f64;
        let elapsed =
            as_of.filter(|t| *t < to).map_or(1.0, |t| ((t - from).num_milliseconds() as f64 / span).clamp(0.0, 1.0));
        Period { month, from, to, days: (to - from).num_hours() as f64 / 24.0, elapsed }
    }

    /// Whether the month is still running when judged.
    pub fn running(&self) -> bool {
        self.elapsed < 1.0
    }

    /// A whole month's amount in the share that has passed (fen, rounded).
    pub fn accrued(&self, whole_fen: i64) -> i64 {
        if self.running() {
            (whole_fen as f64 * self.elapsed).round() as i64
        } else {
            whole_fen
        }
    }
}

/// [`compute`], taking a frozen month's hourly consumption from where it was kept.
///
/// The steps: each meter's consumption and bill (`meters`); each zone's balance; each
/// utility's revenue, costs, gap and baseline, with costs allocated to zones (`money`);
/// the combined row; and for a full ledger the year to date (`year`).
pub fn compute_from(
    spec: &Spec<'_>,
    month: Month,
    source: &Source<'_>,
    corrections: &[Correction],
    depth: Depth,
) -> Result<Ledger, LedgerError> {
    let tz = spec.tz;
    let (from, to) = month.bounds(tz).ok_or(LedgerError::Bounds(month, tz))?;
    let period = Period::new(month, from, to, spec.as_of);
    let local_to = to.with_timezone(&tz).date_naive();
    let applied: Vec<Correction> = corrections.iter().filter(|c| c.affects(from, to, local_to)).cloned().collect();
    // Tariff corrections join the configured tariffs as effective-dated entries.
    let mut prices = spec.prices.clone();
    for c in &applied {
        if let Change::Tariff { utility, category, from: f, price } = &c.change {
            prices.tariffs.entry((*utility, category.clone())).or_default().push(Tariff {
                name: format!("correction #{} ({category} from {f})", c.id),
                from: *f,
                price: Price::Flat(*price),
            });
        }
    }
    let booked = meters::book(spec, &prices, &period, source, &applied)?;
    let mut zones = money::zone_rows(spec, &period, &booked.rows);
    // The baseline: last year's same month from the configuration (the old books), or
    // else computed from last year's readings when the store holds them.
    let last_year = month.year_before();
    let history = match last_year {
        Some(m)
            if depth != Depth::Bare && !prices.baseline.iter().any(|b| b.year == m.year() && b.month == m.month()) =>
        {
            Some(compute_from(spec, m, source, corrections, Depth::Bare)?)
                .filter(|l| l.utilities.iter().any(|u| u.input > 0.0))
        }
        _ => None,
    };
    let (mut utilities, costs) = money::utility_rows(spec, &prices, &period, &booked, &mut zones, history.as_ref());
    let (mut combined, uncosted) = (money::combined(&utilities), money::uncosted_notes(&utilities));
    let least = booked.rows.iter().filter_map(|r| r.coverage.map(|c| (r, c))).min_by(|a, b| a.1.total_cmp(&b.1));
    let partial = least.is_some_and(|(_, c)| c < FULL_COVERAGE);
    money::unjudged_when(partial, &mut utilities, &mut combined);
    // A partial month is left out of the year to date and its projection, its own
    // ledger's included: 12 times a third of a month is no year.
    let year_to_date = if depth == Depth::Full && !partial {
        year::year_to_date(spec, month, source, corrections, &utilities, &combined)?
    } else {
        Vec::new()
    };
    let partial_note = least.filter(|_| partial).map(|(r, c)| {
        let short = booked.rows.iter().filter(|r| r.coverage.is_some_and(|c| c < FULL_COVERAGE)).count();
        let (m, pct) = (format!("{}.{}", r.device, r.point), c * 100.0);
        Text::new(
            format!("partial month: the readings of {short} meter(s) cover less of it (least: {m}, {pct:.1} %); its figures are not the whole month's, its fixed costs are booked whole, its gap is not judged against the baseline month's, and it is left out of the year to date and the year-end projection (this ledger shows neither)"),
            format!("不完整月：{short} 块表的读数未覆盖全月（最少的是 {m}，{pct:.1} %）；本月数字不是全月的，固定成本按全月计，差额不与基准月比较（不判定是否达标），且不计入本年累计和年末预测（本台账不显示这两项）"),
        )
    });
    Ok(Ledger {
        partial,
        site: spec.site.to_string(),
        frozen: booked.any_frozen,
        hourly: booked.hourly,
        corrections: applied,
        month,
        timezone: tz.name().to_string(),
        from,
        to,
        utilities,
        combined,
        year_to_date,
        zones,
        notes: {
            let mut n = summary_notes(&booked.rows, &costs);
            n.extend(partial_note);
            n.extend(uncosted);
            if period.running() {
                let (elapsed, days) = (period.elapsed * period.days, period.days);
                n.push(Text::new(
                    format!("a running month, judged month-to-date ({elapsed:.1} of {days:.0} days): fees and metered costs so far, fixed costs accrued by day, against the same share of the baseline month's gap"),
                    format!("本月尚未结束，按月初至今计（{days:.0} 天中的 {elapsed:.1} 天）：收费和计量成本为至今的数，固定成本按天计提，与基准月差额的同等比例相比"),
                ));
            }
            n
        },
        costs,
        meters: booked.rows,
    })
}

/// The ledger's own notes: how many rows carry a flag that may leave money short.
fn summary_notes(rows: &[MeterRow], costs: &[CostRow]) -> Vec<Text> {
    let mut out = Vec::new();
    let flagged = rows.iter().filter(|r| r.flagged).count();
    if flagged > 0 {
        out.push(Text::new(
            format!("{flagged} meter(s) flagged: their consumption or bill may be short (see their notes)"),
            format!("{flagged} 块表有标记：其用量或收费可能偏少（见各表说明）"),
        ));
    }
    for c in costs.iter().filter(|c| !c.notes.is_empty()) {
        out.push(Text::joined(&c.notes).after(&format!("cost `{}` ({})", c.name, c.utility)));
    }
    out
}

/// The local months from the one containing `first` on: (month, from, to) in UTC.
pub fn months(tz: Tz, first: DateTime<Utc>) -> impl Iterator<Item = (Month, DateTime<Utc>, DateTime<Utc>)> {
    Month::containing(first, tz)
        .into_iter()
        .flat_map(Month::iter_from)
        .map_while(move |m| m.bounds(tz).map(|(a, b)| (m, a, b)))
}

/// Readings up to seven days either side of a month are read, so that a gap across the
/// month's boundary is bridged.
pub(crate) const MARGIN: TimeDelta = TimeDelta::days(7);

fn read<T>(what: impl FnOnce() -> String, r: Result<T, ReadError>) -> Result<T, LedgerError> {
    r.map_err(|source| LedgerError::Read { what: what(), source })
}

#[cfg(test)]
mod tests;

//! The shell: the report from the store, and the ledger with its targets as the
//! command, the API and the monthly files show it.

use crate::lang::Text;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::compute::ms;
use super::{compute, tables, Input, Spec, Targets};
use crate::ledger::month::Ledger;
use crate::model::{Month, Quantity};
use crate::store::{Store, StoreError};

/// The report from the store's alert records and the configuration's baselines.
pub fn from_store(
    spec: &Spec<'_>,
    store: &Store,
    month: Month,
    ledger: Option<&Ledger>,
    as_of: DateTime<Utc>,
) -> Result<Targets, StoreError> {
    let tz = spec.tz;
    // from the baseline year's January to the month's end; where a bound does not
    // exist (a baseline year before 2000), everything on that side — never an empty read
    let first = month.year_before().and_then(|b| Month::new(b.year(), 1)).and_then(|m| m.bounds(tz));
    let from = first.map_or(i64::MIN, |(a, _)| ms(a));
    let to = month.bounds(tz).map_or(i64::MAX, |(_, b)| ms(b));
    let alerts = store.alerts_between(from, to)?;
    let passes = store.alert_passes()?;
    let customers = |zone: &str| spec.topology.customers(zone);
    let mut t = compute(&Input {
        site: spec.site,
        month,
        tz,
        as_of,
        alerts: &alerts,
        passes: &passes,
        customers: &customers,
        baselines: spec.baselines,
        ledger,
    });
    t.notes.extend(unobserved(spec));
    blank_unobserved(&mut t, &spec.observed);
    let from_history = t.rows.iter().any(|r| {
        r.measure == super::Measure::Incidents
            && r.baseline_source == Some(crate::ledger::month::BaselineSource::History)
    });
    if let (true, Some(base)) = (from_history, month.year_before()) {
        t.notes.extend(finer_than_the_baseline(spec, store, month, base)?);
    }
    Ok(t)
}

/// The usual spacing of the water inlets' readings on the first day of `month` (the
/// finest of them), when there are readings.
fn inlet_spacing(spec: &Spec<'_>, store: &Store, month: Month) -> Result<Option<chrono::TimeDelta>, StoreError> {
    use crate::ledger::topology::{Role, Utility};
    let Some((from, _)) = month.bounds(spec.tz) else { return Ok(None) };
    let to = from + chrono::TimeDelta::days(1);
    let mut finest: Option<chrono::TimeDelta> = None;
    for m in spec.topology.meters.iter().filter(|m| m.role == Role::Inlet && m.utility == Utility::Water) {
        let times: Vec<DateTime<Utc>> =
            store.series_readings(&m.device, &m.point, ms(from), ms(to))?.into_iter().map(|r| r.ts).collect();
        if let Some(s) = crate::ledger::intervals::usual_spacing(&times) {
            finest = Some(finest.map_or(s, |f| f.min(s)));
        }
    }
    Ok(finest)
}

/// Incidents counted on readings finer than the baseline year's records could show (a
/// burst needs readings every 15 minutes or finer): flagged, not compared in silence.
fn finer_than_the_baseline(
    spec: &Spec<'_>,
    store: &Store,
    month: Month,
    base: Month,
) -> Result<Option<Text>, StoreError> {
    let (Some(now), Some(then)) = (inlet_spacing(spec, store, month)?, inlet_spacing(spec, store, base)?) else {
        return Ok(None);
    };
    let sparsest = crate::alerts::burst::SPARSEST;
    Ok((now <= sparsest && then > sparsest).then(|| {
        let now = humantime::format_duration(now.to_std().unwrap_or_default());
        let then = humantime::format_duration(then.to_std().unwrap_or_default());
        Text::new(
            format!("incidents: this month's inlets are read every {now}, the baseline month's ({base}) every {then}; bursts cannot be seen in readings that sparse, so the incident count is not compared like with like"),
            format!("事故次数：本月进水表每 {now} 读一次，基准月（{base}）每 {then} 读一次；读数这么稀疏时看不到爆管，因此事故次数不是同口径比较"),
        )
    }))
}

/// A measure no configured device can observe has no figure: minutes of low pressure
/// without a pressure point, interruptions without a pressure point or a flow rate. Its
/// rows read unknown, with no status, instead of a 0 that says "none happened".
pub(super) fn blank_unobserved(t: &mut super::Targets, observed: &std::collections::BTreeSet<Quantity>) {
    use super::Measure;
    let has = |q: Quantity| observed.contains(&q);
    let observable = |m: Measure| match m {
        Measure::LowPressureMinutes => has(Quantity::Pressure),
        Measure::Interruptions | Measure::CustomerMinutes => has(Quantity::Pressure) || has(Quantity::WaterFlow),
        Measure::Incidents | Measure::GapFen => true,
    };
    let mut blanked = false;
    for r in t.rows.iter_mut().filter(|r| !observable(r.measure)) {
        (r.this, r.change, r.status) = (None, None, None);
        blanked = true;
    }
    if blanked {
        t.summary = super::compute::summary_of(&t.rows);
    }
}

/// What the configured devices cannot see, so that a count of 0 is read as "none seen by
/// what is measured", with the gaps named.
pub fn unobserved(spec: &Spec<'_>) -> Vec<Text> {
    let has = |q: Quantity| spec.observed.contains(&q);
    let mut out = Vec::new();
    let quality = [Quantity::FreeChlorine, Quantity::Turbidity, Quantity::Ph];
    if !quality.into_iter().any(has) {
        out.push(Text::new(
            "no water-quality analyser is configured: water-quality incidents are not observed",
            "未配置水质分析仪：观测不到水质事故",
        ));
    }
    if !has(Quantity::Pressure) {
        out.push(Text::new(
            "no pressure point is configured: over-pressure, low pressure and loss of pressure are not observed",
            "未配置压力测点：观测不到超压、低压和失压",
        ));
    }
    if !has(Quantity::WaterFlow) {
        out.push(Text::new(
            "no flow-rate point is configured: bursts are not observed",
            "未配置瞬时流量测点：观测不到爆管",
        ));
    }
    if !has(Quantity::Current) && !has(Quantity::Voltage) {
        out.push(Text::new(
            "no electricity meter with phase currents or voltages: electrical incidents are not observed",
            "没有测相电流或电压的电表：观测不到电气事故",
        ));
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
    /// The register's renewal list as of now (a sheet of the files; the JSON ledger has
    /// `pumphouse assets renewal --format json` for it).
    #[serde(skip)]
    pub renewal: Vec<crate::assets::renewal::Candidate>,
    /// The network map as of the month: zones coloured by its non-revenue shares.
    #[serde(skip)]
    pub map: Option<(crate::ledger::topology::Topology, crate::ledger::schematic::State)>,
}

impl MonthReport {
    /// The ledger of `month` from the store, and its targets as of now.
    pub fn from_store(spec: &Spec<'_>, store: &Store, month: Month) -> crate::ledger::book::Result<MonthReport> {
        let ledger = crate::ledger::book::month_ledger(&spec.ledger, store, month, crate::ledger::month::Depth::Full)?;
        let targets = from_store(spec, store, month, Some(&ledger), Utc::now())?;
        let renewal = crate::assets::renewal_list(spec.assets, Some(store), Utc::now())?;
        let map = (!spec.topology.zones.is_empty()).then(|| {
            let shares = ledger.zones.iter().map(|z| (z.zone.clone(), z.non_revenue_share)).collect();
            let state = crate::ledger::schematic::State {
                elements: spec.elements.clone(),
                shares,
                zone_alerts: Default::default(),
                live: false,
            };
            (spec.topology.clone(), state)
        });
        Ok(MonthReport { ledger, targets, renewal, map })
    }

    fn extra(&self, lang: crate::ledger::export::Lang) -> Vec<crate::ledger::export::Table> {
        let mut extra = tables::tables(&self.targets, lang, self.tz());
        if !self.renewal.is_empty() {
            extra.push(crate::assets::renewal::table(&self.renewal, lang));
        }
        extra
    }

    pub fn csv(&self, lang: crate::ledger::export::Lang) -> String {
        let extra = self.extra(lang);
        crate::ledger::export::to_csv(&self.ledger, lang, &extra)
    }

    pub fn xlsx(&self, lang: crate::ledger::export::Lang) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        let extra = self.extra(lang);
        let picture = self.map.as_ref().map(|(topology, state)| {
            let svg = crate::ledger::schematic::svg(topology, state, lang, false);
            crate::ledger::export::Picture {
                sheet: lang.t("Network map", "管网图"),
                caption: lang
                    .t(
                        "The network, each zone coloured by the month's non-revenue share (green under 15 %, amber under 30 %, red above; grey: unknown)",
                        "管网分布图：分区按本月产销差率着色（绿色低于 15 %，黄色低于 30 %，红色更高；灰色为未知）",
                    )
                    .to_string(),
                png: crate::ledger::raster::png(&svg, 2.0).map_err(|e| {
                    let why = e.to_string();
                    tracing::warn!(month = %self.ledger.month.key(), "network map left out of the workbook: {why}");
                    format!("{}{why}", lang.t("The drawing could not be made: ", "未能生成管网图："))
                }),
            }
        });
        crate::ledger::export::to_xlsx(&self.ledger, lang, &extra, picture.as_ref())
    }

    fn tz(&self) -> Tz {
        self.ledger.timezone.parse().unwrap_or(chrono_tz::UTC)
    }
}

//! `pumphouse assets record` and `pumphouse assets valves`: work recorded by hand (who,
//! why, when it was done; kept in the store as an audit trail) — a valve exercised or
//! repaired, a pipe section repaired and the burst or leak it ended — and the register's
//! valves with their last exercise and when the next is due.

use anyhow::{bail, Context as _};
use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone as _, Utc};

use crate::assets::valves::{state, Valve, ValveState};
use crate::config::Config;
use crate::lang::Lang;
use crate::model::Quantity;
use crate::store::{AssetWork, Store};

/// The longest reason kept.
const REASON_MAX: usize = 1000;

/// What `record` was told.
pub struct Record<'a> {
    /// A valve or a pipe section of the register.
    pub asset: &'a str,
    pub kind: &'a str,
    /// For a pipe's repair: the burst or leak alert it ended.
    pub alert: Option<i64>,
    /// The local day the work was done (`YYYY-MM-DD`); today when absent.
    pub on: Option<&'a str>,
    pub by: &'a str,
    pub why: &'a str,
}

pub fn record(cfg: &Config, r: &Record<'_>) -> anyhow::Result<String> {
    let valve = cfg.assets.valves.iter().find(|v| v.id == r.asset);
    let pipe = cfg.assets.pipes.iter().find(|p| p.id == r.asset);
    let (installed, zone) = match (valve, pipe) {
        (Some(v), _) => (v.installed, &v.zone),
        (None, Some(p)) => (p.laid, &p.zone),
        (None, None) => {
            let known: Vec<&str> = cfg
                .assets
                .valves
                .iter()
                .map(|v| v.id.as_str())
                .chain(cfg.assets.pipes.iter().map(|p| p.id.as_str()))
                .collect();
            bail!("no valve or pipe section `{}` in the register (known: {})", r.asset, known.join(", "));
        }
    };
    let Some(kind) = AssetWork::parse(r.kind) else { bail!("--kind `{}`: exercise or repair", r.kind) };
    if valve.is_none() && kind == AssetWork::Exercise {
        bail!("`{}` is a pipe section: its work is a repair (--kind repair)", r.asset);
    }
    let store = super::open_store(cfg, false)?;
    if let Some(id) = r.alert {
        if valve.is_some() {
            bail!("--alert ties a burst or leak to the pipe section repaired, not to a valve");
        }
        let Some(a) = store.alert(id)? else { bail!("no alert #{id} in the store") };
        if !matches!(a.rule, crate::model::AlertRule::Burst | crate::model::AlertRule::NightFlow) {
            bail!("alert #{id} is a {} alert, not a burst or a leak", a.rule);
        }
        if &a.zone != zone {
            bail!("alert #{id} is in zone {}, section `{}` in zone {zone}", a.zone, r.asset);
        }
    }
    let by = crate::untrusted::typed("--by", r.by, crate::untrusted::NAME_MAX)?;
    let why = crate::untrusted::typed("--why", r.why, REASON_MAX)?;
    let tz = cfg.site.timezone;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let day = match r.on {
        None => today,
        Some(s) => {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").with_context(|| format!("--on `{s}`: a day, YYYY-MM-DD"))?
        }
    };
    if day > today {
        bail!("--on {day} is after today ({today}): record work once it is done");
    }
    if day < NaiveDate::from_ymd_opt(installed, 1, 1).unwrap_or(NaiveDate::MIN) {
        bail!("--on {day} is before `{}` was put in ({installed})", r.asset);
    }
    // the work's local noon: a day, not an instant
    let done = day
        .and_hms_opt(12, 0, 0)
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.with_timezone(&Utc))
        .context("no such local time")?;
    let id = store.add_asset_record(r.asset, kind, done, by, why, r.alert)?;
    let lang = cfg.site.language;
    Ok(format!(
        "{} #{id}: {} {} {day}, {} {by}\n",
        lang.t("record", "记录"),
        r.asset,
        lang.t(
            if kind == AssetWork::Exercise { "exercised" } else { "repaired" },
            if kind == AssetWork::Exercise { "活动于" } else { "维修于" }
        ),
        lang.t("by", "记录人"),
    ))
}

/// An instrumented valve's last movement, from its readings over one exercise interval
/// and a day (a valve not moved in that time is due whatever moved before).
fn last_moved(
    store: &Store,
    cfg: &Config,
    v: &Valve,
    now: DateTime<Utc>,
    every: TimeDelta,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let Some(device) = v.device.as_deref().and_then(|d| cfg.devices.iter().find(|x| &*x.name == d)) else {
        return Ok(None);
    };
    let Some(point) = device.profile.points.iter().find(|p| p.quantity == Quantity::ValvePosition) else {
        return Ok(None);
    };
    let from = (now - every - TimeDelta::days(1)).timestamp_millis();
    let positions: Vec<(DateTime<Utc>, f64)> = store
        .series_readings(&device.name, &point.name, from, now.timestamp_millis())?
        .into_iter()
        .filter(|r| r.quality.is_good())
        .filter_map(|r| Some((r.ts, r.value?)))
        .collect();
    Ok(crate::alerts::valve_life::life(&positions, &[], 5.0).last_moved)
}

/// Each registered valve with its state.
pub fn states(cfg: &Config, now: DateTime<Utc>) -> anyhow::Result<Vec<(&Valve, ValveState)>> {
    let every = cfg.assets.exercise_interval();
    let store = if cfg.store.path.exists() { Some(super::open_store(cfg, true)?) } else { None };
    let records = match &store {
        Some(s) => s.asset_records()?,
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for v in &cfg.assets.valves {
        // seen in the readings still held, or noted by the alert passes (kept for good)
        let moved = match (&store, v.device.as_deref()) {
            (Some(s), Some(d)) => last_moved(s, cfg, v, now, every)?.max(s.valve_moves(d)?.last().copied()),
            _ => None,
        };
        out.push((v, state(v, &records, moved, every)));
    }
    Ok(out)
}

pub fn valves(cfg: &Config, json: bool) -> anyhow::Result<String> {
    if cfg.assets.valves.is_empty() {
        bail!("{} registers no valves: add [[assets.valves]] (see the README's asset register)", cfg.source);
    }
    let now = Utc::now();
    let list = states(cfg, now)?;
    let (lang, tz) = (cfg.site.language, cfg.site.timezone);
    let day = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d").to_string();
    if json {
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|(v, s)| {
                serde_json::json!({
                    "valve": v.id, "zone": v.zone, "kind": v.kind.id(), "diameter_mm": v.diameter_mm,
                    "installed": v.installed, "device": v.device,
                    "last_exercised": s.last_exercised.map(day), "due": day(s.due), "is_due": s.is_due(now),
                    "last_repair": s.last_repair.map(day), "records": s.records,
                })
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&rows)? + "\n");
    }
    let mut out = String::new();
    for (v, s) in &list {
        let how = if v.device.is_some() { lang.t("instrumented", "带执行器") } else { lang.t("manual", "手动") };
        let last = s.last_exercised.map(day).unwrap_or_else(|| lang.t("never recorded", "无记录").to_string());
        let due = if s.is_due(now) { lang.t("DUE since", "已到期，自") } else { lang.t("next due", "下次") };
        let installed = match lang {
            Lang::Zh => format!("{}年安装（{how}，{}）：上次活动", v.installed, v.zone),
            Lang::En => format!("installed {} ({how}, {}): last exercised", v.installed, v.zone),
        };
        let (id, kind, dn, next) = (&v.id, v.kind.label(lang), v.diameter_mm, day(s.due));
        out.push_str(&format!("{id} {kind} DN{dn} {installed} {last}{} {due} {next}\n", lang.t(";", "；")));
    }
    Ok(out)
}

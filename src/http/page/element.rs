//! An element's own page, opened from the map: a device's latest readings, a week of each
//! measured point drawn (a totalizer as its use per hour), its last readings, a valve's
//! full strokes, and the alerts about it; and a zone's balance day by day this month.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use maud::{html, Markup};

use super::views::local;
use super::{charts, Lang};
use crate::http::AppState;
use crate::ledger::month::Ledger;
use crate::model::Quantity;
use crate::store::StoreError;

/// How far back a device's page draws its points.
const WEEK: TimeDelta = TimeDelta::days(7);

/// What is drawn of a quantity: its values, or (a totalizer) its use per hour; `None`:
/// not drawn (status words, limit switches, a clock).
fn drawn(q: Quantity) -> Option<bool> {
    use Quantity::*;
    match q {
        WaterVolume | EnergyImport | EnergyExport => Some(true),
        WaterFlow | ActivePower | Voltage | Current | PowerFactor | Pressure | ValvePosition | Temperature
        | FreeChlorine | Turbidity | Ph | Conductivity => Some(false),
        _ => None,
    }
}

/// A totalizer's use in each hour: the rise from the last good reading of one hour to the
/// last of the next. A fall (a meter changed or rolled over) is left out, not drawn as use.
pub(super) fn per_hour(readings: &[(DateTime<Utc>, f64)]) -> Vec<(DateTime<Utc>, f64)> {
    let mut last_of_hour: Vec<(i64, f64)> = Vec::new();
    for (t, v) in readings {
        let h = t.timestamp().div_euclid(3600);
        match last_of_hour.last_mut() {
            Some((lh, lv)) if *lh == h => *lv = *v,
            _ => last_of_hour.push((h, *v)),
        }
    }
    last_of_hour
        .windows(2)
        .filter(|w| w[1].0 == w[0].0 + 1 && w[1].1 >= w[0].1)
        .filter_map(|w| Some((Utc.timestamp_opt(w[1].0 * 3600, 0).single()?, w[1].1 - w[0].1)))
        .collect()
}

/// A device's page; `None` when no such device is configured.
pub(super) fn device(st: &AppState, lang: Lang, name: &str) -> Result<Option<Markup>, StoreError> {
    let Some(d) = st.config.device(name) else { return Ok(None) };
    let tz = st.config.site.timezone;
    let to = Utc::now();
    let from = to - WEEK;
    let latest: Vec<crate::store::Latest> = st.store.latest()?.into_iter().filter(|l| l.device == name).collect();
    let mut charts_md = Vec::new();
    let mut last_readings = None;
    for p in &d.profile.points {
        let Some(totalizer) = drawn(p.quantity) else { continue };
        let rows = st.store.series_readings(name, &p.name, from.timestamp_millis(), to.timestamp_millis())?;
        let good: Vec<(DateTime<Utc>, f64)> =
            rows.iter().filter(|r| r.quality.is_good()).filter_map(|r| Some((r.ts, r.value?))).collect();
        let (series, unit, title) = if totalizer {
            let unit = format!("{}/h", p.unit);
            let title = format!("{} — {}", p.name, lang.t("use per hour", "每小时用量"));
            (per_hour(&good), unit, title)
        } else {
            (good, p.unit.to_string(), p.name.to_string())
        };
        charts_md.push(html! {
            h2 { (title) }
            @if series.is_empty() { p.muted data-k=(format!("chart-{}", p.name)) data-n="0" { (lang.t("No good readings in the last seven days.", "近七天没有有效读数。")) } }
            @else { (charts::line(&p.name, &title, &unit, tz, from, to, &series)) }
        });
        if last_readings.is_none() {
            last_readings =
                Some((p.name.to_string(), p.unit.to_string(), rows.into_iter().rev().take(24).collect::<Vec<_>>()));
        }
    }
    let life = super::map::valve_life(st, d, 400)?;
    let alerts: Vec<crate::store::AlertRow> =
        st.store.alerts(false)?.into_iter().filter(|a| a.device.as_deref() == Some(name)).rev().take(20).collect();
    let voice = crate::alerts::said::Voice::new(lang, tz);
    Ok(Some(html! {
        p data-device=(name) {
            (lang.t("Zone", "分区")) " " a href=(format!("/network?lang={}&zone={}", lang.code(), d.zone)) { (d.zone) }
            " · " (lang.t("profile", "型号")) " " code { (d.profile.name) }
            " · " (lang.t("bus", "总线")) " " code { (d.bus) }
            " · " (lang.t("read every", "采集间隔")) " " (humantime::format_duration(d.interval))
        }
        h2 { (lang.t("Latest readings", "最新读数")) }
        @if latest.is_empty() { p.muted data-k="latest-none" { (lang.t("Nothing read yet.", "尚无读数。")) } }
        @else {
            div.wide { table {
                tr { th { (lang.t("Point", "测点")) } th { (lang.t("Value", "数值")) } th { (lang.t("Quality", "质量")) } th { (lang.t("Read at", "读取时间")) } }
                @for l in &latest {
                    tr data-point=(l.point) {
                        td { code { (l.point) } }
                        td.n data-k=(format!("latest-{}", l.point)) { (l.value.map(|v| format!("{v:.3}")).unwrap_or_else(|| "—".into())) " " (l.unit) }
                        td class=(if l.quality.is_good() { "ok" } else { "bad" }) { (quality(lang, &l.quality)) }
                        td { (local(st, l.ts, "%Y-%m-%d %H:%M:%S")) }
                    }
                }
            } }
        }
        @for c in &charts_md { (c) }
        @if let Some(life) = &life { (strokes(st, lang, life)) }
        @if let Some((point, unit, rows)) = &last_readings {
            h2 { (lang.t("Last readings of ", "最近读数：")) code { (point) } }
            div.wide { table {
                tr { th { (lang.t("Time", "时间")) } th { (lang.t("Value", "数值")) } th { (lang.t("Quality", "质量")) } }
                @for r in rows {
                    tr { td { (local(st, r.ts, "%Y-%m-%d %H:%M:%S")) } td.n { (r.value.map(|v| format!("{v:.3}")).unwrap_or_else(|| "—".into())) " " (unit) } td { (quality(lang, &r.quality)) } }
                }
            } }
        }
        h2 { (lang.t("Alerts about it", "相关报警")) }
        @if alerts.is_empty() { p.muted { (lang.t("None on record.", "无记录。")) } }
        @else {
            div.wide { table {
                tr { th { "#" } th { (lang.t("Rule", "规则")) } th { (lang.t("From", "开始")) } th { (lang.t("To", "结束")) } th { (lang.t("Evidence", "依据")) } }
                @for a in &alerts {
                    tr data-alert=(a.id) {
                        td { a href=(format!("/alerts?lang={}#a{}", lang.code(), a.id)) { (a.id) } }
                        td { (crate::alerts::said::rule_label(a.rule, lang)) }
                        td { (ms(st, a.start_ms)) }
                        td { (a.end_ms.map(|e| ms(st, e)).unwrap_or_else(|| lang.t("active", "未恢复").into())) }
                        td.muted { (crate::alerts::said::evidence(a, voice)) }
                    }
                }
            } }
        }
    }))
}

/// A reading's quality: "good", or its code (an identifier, as in the API).
fn quality(lang: Lang, q: &crate::model::Quality) -> Markup {
    html! { @if q.is_good() { (lang.t("good", "正常")) } @else { code { (q.code()) } } }
}

fn ms(st: &AppState, ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().map(|t| local(st, t, "%Y-%m-%d %H:%M")).unwrap_or_default()
}

/// A valve's full strokes, newest first, with how long each took.
fn strokes(st: &AppState, lang: Lang, life: &crate::alerts::valve_life::Life) -> Markup {
    html! {
        h2 { (lang.t("Full strokes", "全行程动作")) }
        p.muted data-k="valve-slowing" {
            @match life.slowing {
                Some(r) => (if lang == Lang::Zh { format!("最近一次用时为以往同向动作中位数的 {r:.2} 倍。") } else { format!("The latest took {r:.2} times the median of the earlier ones the same way.") }),
                None => (lang.t("Too few strokes to judge a trend.", "动作次数太少，无法判断趋势。")),
            }
        }
        @if !life.strokes.is_empty() {
            div.wide { table {
                tr { th { (lang.t("Ended", "完成时间")) } th { (lang.t("Way", "方向")) } th { (lang.t("Took", "用时")) } }
                @for s in life.strokes.iter().rev().take(24) {
                    tr data-stroke=(s.took().num_seconds()) {
                        td { (local(st, s.end, "%Y-%m-%d %H:%M")) }
                        td { (if s.opening { lang.t("opened", "开") } else { lang.t("closed", "关") }) }
                        td.n { (s.took().num_seconds()) " s" }
                    }
                }
            } }
        }
    }
}

/// A zone's balance on each day of the month so far: net input, billed and the rest.
pub(super) fn zone_days(st: &AppState, lang: Lang, l: &Ledger, zone: &str) -> Markup {
    let tz = st.config.site.timezone;
    let now = Utc::now();
    let mut days = Vec::new();
    for (d, a, b) in l.month.local_days(tz).take_while(|(_, a, _)| *a <= now) {
        if let Some(v) = l.zone_volumes_between(&st.config.topology, a, b).into_iter().find(|z| z.zone == zone) {
            days.push((d, v));
        }
    }
    html! {
        h2 { (lang.t("Balance by day", "每日水量平衡")) }
        div.wide { table {
            tr { th { (lang.t("Day", "日期")) } th { (lang.t("Net input", "净供给")) } th { (lang.t("Billed", "计费")) } th { (lang.t("Non-revenue", "产销差")) } th { (lang.t("Share", "产销差率")) } }
            @for (d, v) in &days {
                tr data-day=(d.format("%Y-%m-%d")) {
                    td { (d.format("%m-%d")) }
                    td.n data-k=(format!("day-net-{}", d.format("%d"))) { (format!("{:.1}", v.net_input)) }
                    td.n { (format!("{:.1}", v.billed)) }
                    td.n { (format!("{:.1}", v.non_revenue)) }
                    td.n { (if v.net_input > 0.0 { format!("{:.1} %", 100.0 * v.non_revenue / v.net_input) } else { "—".into() }) }
                }
            }
        } }
        p.muted { (lang.t("Net input / billed, as in the month's ledger (a gap's volume spread over its hours); today's row runs to now.", "净供给、计费用量与月度台账一致（缺读数期间的用量按小时分摊）；今日一行截至此刻。")) }
    }
}

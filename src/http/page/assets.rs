//! The network page's register part: each actuator valve's life from its readings, the
//! valve register (manual and instrumented valves with their exercise due) and the pipe
//! renewal list.

use chrono::Utc;
use maud::{html, Markup};

use super::views::{local, yuan};
use super::Lang;
use crate::http::AppState;
use crate::ledger::book::BookError;
use crate::store::StoreError;

/// Valves, register and renewal list; nothing for a site without valves or a register.
pub(super) fn section(st: &AppState, lang: Lang) -> Result<Markup, BookError> {
    let cfg = &st.config;
    let every = cfg.assets.exercise_interval();
    // the readings of a little more than one exercise interval: a valve not moved in it
    let valves = super::map::valves(st, every.num_days().max(365) + 35)?;
    let renewal = crate::assets::renewal_list(&cfg.assets, Some(&st.store), Utc::now())?;
    Ok(html! {
        @if !valves.is_empty() {
            h2 { (lang.t("Valves", "阀门")) }
            @let (read, due) = (every.num_days().max(365) + 35, every.num_days());
            p.muted {
                (if lang == Lang::Zh { format!("依据近 {read} 天的阀位读数。{due} 天未动作的阀门应当活动一次（") } else { format!("From the last {read} days of position readings. A valve not moved for {due} days is due to be exercised (") })
                code { "[assets] exercise_every" }
                (lang.t("): gate valves that never move seize.", "）：长期不动的闸阀会锈死。"))
            }
            table {
                tr { th { (lang.t("Valve", "阀门")) } th { (lang.t("Zone", "分区")) } th { (lang.t("Last moved", "最近动作")) } th { (lang.t("Last full stroke", "最近全行程")) } th { (lang.t("Took", "用时")) } th { (lang.t("Against earlier strokes", "与以往相比")) } th { (lang.t("Readings off the command", "与指令不符的读数")) } th { (lang.t("Exercise due", "应活动日期")) } }
                @for (name, zone_name, v) in &valves {
                    @let due = v.exercise_due(every);
                    tr data-valve=(name) {
                        td { (name) } td { (zone_name) }
                        td data-k=(format!("valve-moved-{name}")) {
                            @match (v.last_moved, v.since) {
                                (Some(t), _) => (local(st, t, "%Y-%m-%d %H:%M")),
                                (None, Some(s)) => (lang.t("not since ", "自 ")) (local(st, s, "%Y-%m-%d")) (lang.t("", " 起未动作")),
                                (None, None) => (lang.t("no readings", "无读数")),
                            }
                        }
                        td { (v.strokes.last().map(|s| format!("{} {}", local(st, s.end, "%Y-%m-%d %H:%M"), if s.opening { lang.t("opened", "开") } else { lang.t("closed", "关") })).unwrap_or_else(|| "—".into())) }
                        td.n { (v.strokes.last().map(|s| format!("{} s", s.took().num_seconds())).unwrap_or_default()) }
                        td class=(if v.slowing.is_some_and(|r| r >= 1.5) { "bad" } else { "" }) { (v.slowing.map(|r| format!("× {r:.2}")).unwrap_or_else(|| "—".into())) }
                        td.n { (v.disagreements) }
                        td class=(if due.is_some_and(|d| d <= Utc::now()) { "bad" } else { "" }) data-k=(format!("valve-due-{name}")) { (due.map(|d| local(st, d, "%Y-%m-%d")).unwrap_or_default()) }
                    }
                }
            }
        }
        @if !cfg.assets.valves.is_empty() {
            (register_table(st, lang, &valves, every)?)
        }
        @if !renewal.is_empty() {
            (renewal_table(&renewal, lang))
        }
    })
}

/// The register's pipe sections ranked for renewal ([`crate::assets::renewal`]).
/// The register's valves: each one's last exercise (recorded by hand, or seen moving in an
/// actuator's readings) and when the next is due.
fn register_table(
    st: &AppState,
    lang: Lang,
    moved: &[(String, String, crate::alerts::valve_life::Life)],
    every: chrono::TimeDelta,
) -> Result<Markup, StoreError> {
    let records = st.store.asset_records()?;
    let now = Utc::now();
    // seen moving in the readings still held, or noted by the alert passes (kept for good)
    let mut noted = std::collections::HashMap::new();
    for d in st.config.assets.valves.iter().filter_map(|v| v.device.as_deref()) {
        noted.insert(d, st.store.valve_moves(d)?.last().copied());
    }
    Ok(html! {
        h2 { (lang.t("Valve register", "阀门台账")) }
        p.muted {
            (lang.t("Manual valves' exercise and repairs are recorded with ", "手动阀门的活动和维修用 "))
            code { "pumphouse assets record" }
            (lang.t(" (who and why are kept).", " 记录（保留记录人和原因）。"))
        }
        table {
            tr { th { (lang.t("Valve", "阀门")) } th { (lang.t("Kind", "类型")) } th { "DN" } th { (lang.t("Installed", "安装")) } th { (lang.t("Zone", "分区")) } th { (lang.t("Operated", "操作方式")) } th { (lang.t("Last exercised", "最近活动")) } th { (lang.t("Last repair", "最近维修")) } th { (lang.t("Exercise due", "应活动日期")) } }
            @for v in &st.config.assets.valves {
                @let seen = v.device.as_deref().and_then(|d| moved.iter().find(|(n, _, _)| n == d)).and_then(|(_, _, l)| l.last_moved).max(v.device.as_deref().and_then(|d| noted.get(d).copied().flatten()));
                @let s = crate::assets::valves::state(v, &records, seen, every);
                tr data-register=(v.id) {
                    td { code { (v.id) } } td { (v.kind.label(lang)) } td.n { (v.diameter_mm) } td.n { (v.installed) } td { (v.zone) }
                    td { @match &v.device { Some(d) => (lang.t("actuator ", "执行器 ")) code { (d) }, None => (lang.t("by hand", "手动")) } }
                    td data-k=(format!("register-exercised-{}", v.id)) { (s.last_exercised.map(|t| local(st, t, "%Y-%m-%d")).unwrap_or_else(|| lang.t("none on record", "无记录").into())) }
                    td { (s.last_repair.map(|t| local(st, t, "%Y-%m-%d")).unwrap_or_else(|| "—".into())) }
                    td class=(if s.is_due(now) { "bad" } else { "" }) data-k=(format!("register-due-{}", v.id)) { (local(st, s.due, "%Y-%m-%d")) }
                }
            }
        }
    })
}

fn renewal_table(list: &[crate::assets::renewal::Candidate], lang: Lang) -> Markup {
    html! {
        h2 { (lang.t("Pipe renewal list", "管段更新排序")) }
        p.muted { (lang.t("Ranked by the zone's bursts and leaks per km of registered pipe per year, then by age against the material's design life; losses shared among a zone's sections by length.", "先按所在分区每公里登记管长每年的爆管与漏损次数，再按已用年限占材质设计年限的比例排序；损失按长度分摊到分区内各管段。")) }
        table {
            tr { th { "#" } th { (lang.t("Section", "管段")) } th { (lang.t("Zone", "分区")) } th { (lang.t("Material", "材质")) } th { (lang.t("Laid", "敷设")) } th { (lang.t("Age / design life", "已用 / 设计年限")) } th { (lang.t("Zone failures per km per year", "分区每公里每年故障")) } th { (lang.t("Lost, its share (m³)", "分摊损失(m³)")) } th { (lang.t("Its share (yuan)", "分摊金额(元)")) } th { (lang.t("Why", "原因")) } }
            @for c in list {
                @let id = &c.pipe.id;
                tr data-section=(id) {
                    td.n data-k=(format!("renewal-rank-{id}")) { (c.rank) }
                    td { (id) } td { (c.pipe.zone) } td { (c.pipe.material.label(lang)) } td.n { (c.pipe.laid) }
                    td.n data-k=(format!("renewal-life-{id}")) { (format!("{:.0}", 100.0 * c.life_share())) " %" }
                    td.n data-k=(format!("renewal-rate-{id}")) { (c.per_km_year.map(|r| format!("{r:.2}")).unwrap_or_else(|| "?".into())) }
                    td.n { (if c.per_km_year.is_some() { format!("{:.0}", c.lost_m3) } else { "?".into() }) }
                    td.n { (if c.per_km_year.is_some() { yuan(c.lost_fen) } else { "?".into() }) }
                    td.muted { (c.reason(lang)) }
                }
            }
        }
    }
}

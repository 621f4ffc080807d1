//! What each page shows. Each function reads the store (call it on the blocking pool)
//! and returns the page's body.

use chrono::{DateTime, TimeZone, Utc};
use maud::{html, Markup, PreEscaped};

use super::charts;
use super::Lang;
use crate::http::AppState;
use crate::ledger::book::{self, BookError};
pub(super) use crate::ledger::export::yuan_text as yuan;
use crate::ledger::export::{status_label, utility_label};
use crate::ledger::month::{Depth, Ledger, Status, UtilityRow};
use crate::ledger::topology::{Role, Utility};
use crate::model::Month;
use crate::store::StoreError;

fn num(v: f64) -> String {
    // no "-0.0" for a rounding residue
    format!("{:.1}", if v.abs() < 0.05 { 0.0 } else { v })
}

fn status_class(s: Option<Status>) -> &'static str {
    match s {
        Some(Status::OnTrack) => "ok",
        Some(Status::AtRisk) => "warn",
        Some(Status::Breached) => "bad",
        None => "muted",
    }
}

pub(super) fn local(st: &AppState, t: DateTime<Utc>, fmt: &str) -> String {
    t.with_timezone(&st.config.site.timezone).format(fmt).to_string()
}

fn ms(st: &AppState, ms: i64, fmt: &str) -> String {
    Utc.timestamp_millis_opt(ms).single().map(|t| local(st, t, fmt)).unwrap_or_default()
}

fn age(lang: Lang, since: DateTime<Utc>) -> String {
    let s = (Utc::now() - since).num_seconds().max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} {}", s / 3600, lang.t("h", "小时")),
    }
}

/// Overview: health, devices with their last reading, the sinks.
pub(super) fn overview(st: &AppState, lang: Lang) -> Result<Markup, StoreError> {
    let problems = crate::http::problems(st);
    let latest = st.store.latest()?;
    let stats = st.store.stats()?;
    let shown = |q: crate::model::Quantity| {
        use crate::model::Quantity::*;
        matches!(q, WaterFlow | WaterVolume | Pressure | ValvePosition | ActivePower | EnergyImport)
    };
    // devices failing now, from their first failed cycle (before /healthz turns red)
    let failing: Vec<(&crate::http::DeviceLabels, i64, String)> = st
        .devices
        .iter()
        .filter_map(|d| {
            let s = st.stats.get(&d.device)?;
            let since = s.failing_since_ms.load(std::sync::atomic::Ordering::Relaxed);
            (since > 0).then(|| (d, since, s.last_error().unwrap_or_default()))
        })
        .collect();
    let last_good = |device: &str| {
        st.stats
            .get(device)
            .map(|s| s.last_good_ms.load(std::sync::atomic::Ordering::Relaxed))
            .filter(|ms| *ms > 0)
            .and_then(chrono::DateTime::from_timestamp_millis)
    };
    Ok(html! {
        @if problems.is_empty() && failing.is_empty() {
            p.ok data-k="healthy" { (lang.t("Healthy: polling, store and delivery all move.", "运行正常：采集、存储和转发都在进行。")) }
        }
        @if !failing.is_empty() {
            div.note data-k="devices-failing" {
                b { (failing.len()) " / " (st.devices.len()) " " (lang.t("devices give no good reading:", "台设备没有正常读数：")) }
                ul { @for (d, since, why) in &failing {
                    li { (d.device) " — " (lang.t("since", "自")) " " (chrono::DateTime::from_timestamp_millis(*since).map(|t| local(st, t, "%H:%M:%S")).unwrap_or_default()) ": " (why) }
                } }
            }
        }
        @if !problems.is_empty() {
            div.note data-k="problems" {
                b { (lang.t("Needs attention:", "需要处理：")) }
                ul { @for p in &problems { li { (p) } } }
            }
        }
        div.cards {
            div.card { div.muted { (lang.t("Readings in the store", "本地存储读数")) } div.v data-k="store_records" { (stats.records) } }
            div.card { div.muted { (lang.t("Devices", "设备")) } div.v data-k="devices" { (st.devices.len()) } }
            div.card { div.muted { (lang.t("Site", "站点")) } div.v { (st.config.site.name) } }
        }
        h2 { (lang.t("Devices", "设备")) }
        table {
            tr {
                th { (lang.t("Device", "设备")) } th { (lang.t("Bus", "总线")) } th { (lang.t("Zone", "分区")) }
                th { (lang.t("Last good reading", "最近正常读数")) } th { (lang.t("Age", "距今")) } th { (lang.t("Quality", "质量")) }
                th { (lang.t("Values", "数值")) }
            }
            @for d in &st.devices {
                @let mine: Vec<&crate::store::Latest> = latest.iter().filter(|l| l.device == d.device).collect();
                // the last cycle the device answered; before the first one since start,
                // the newest good reading in the store
                @let newest = last_good(&d.device).or_else(|| mine.iter().filter(|l| l.quality.is_good()).map(|l| l.ts).max());
                @let cause = failing.iter().find(|(f, _, _)| f.device == d.device).map(|(_, _, why)| why.clone());
                @let bad = mine.iter().filter(|l| !l.quality.is_good()).count();
                tr data-device=(d.device) {
                    td { (d.device) } td { (d.bus) } td { (d.zone) }
                    td { (newest.map(|t| local(st, t, "%Y-%m-%d %H:%M:%S")).unwrap_or_else(|| "—".into())) }
                    td { (newest.map(|t| age(lang, t)).unwrap_or_default()) }
                    td class=(if bad == 0 && !mine.is_empty() && cause.is_none() { "ok" } else { "bad" }) {
                        @if let Some(why) = &cause { (lang.t("not answering: ", "无应答：")) (why) }
                        @else if mine.is_empty() { (lang.t("no reading yet", "尚无读数")) }
                        @else if bad == 0 { (lang.t("good", "正常")) }
                        @else { (bad) " " (lang.t("point(s) bad: ", "个点异常：")) (mine.iter().find(|l| !l.quality.is_good()).map(|l| l.quality.to_string()).unwrap_or_default()) }
                    }
                    td {
                        @for l in mine.iter().filter(|l| shown(l.quantity) && l.quality.is_good()) {
                            span { code { (l.point) } " " (l.value.map(|v| format!("{v:.3}")).unwrap_or_default()) " " (l.unit) } " · "
                        }
                    }
                }
            }
        }
        h2 { (lang.t("Delivery", "数据转发")) }
        @if st.sinks.is_empty() {
            p.muted { (lang.t("No MQTT or InfluxDB configured: readings stay in the local store.", "未配置 MQTT 或 InfluxDB：读数仅保存在本地。")) }
        } @else {
            table {
                tr { th { (lang.t("Sink", "目标")) } th { (lang.t("Waiting", "待发")) } th { (lang.t("Connected", "连接")) } th { (lang.t("Last error", "最近错误")) } }
                @for s in &st.sinks {
                    @let cursor = st.store.cursor(&s.consumer)?;
                    tr {
                        td { (s.name) }
                        td.n data-k=(format!("backlog-{}", s.name)) { ((stats.last_seq - cursor).max(0)) }
                        td { (if s.connected.load(std::sync::atomic::Ordering::Relaxed) { lang.t("yes", "是") } else { lang.t("no", "否") }) }
                        td.muted { (s.error().unwrap_or_default()) }
                    }
                }
            }
        }
    })
}

/// Network map: zones as a tree with today's and this month's figures; a zone's meters.
pub(super) fn network(st: &AppState, lang: Lang, zone: Option<&str>) -> Result<Markup, BookError> {
    let cfg = &st.config;
    if cfg.topology.zones.is_empty() {
        return Ok(html! { p.muted { (lang.t("No [[zones]] are configured.", "未配置分区（[[zones]]）。")) } });
    }
    let tz = cfg.site.timezone;
    let now = Utc::now();
    let Some(month) = Month::containing(now, tz) else { return Ok(html! {}) };
    let l = book::month_ledger(&cfg.ledger_spec(), &st.store, month, Depth::Bare)?;
    let midnight = now
        .with_timezone(&tz)
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|m| tz.from_local_datetime(&m).earliest())
        .map_or(now, |m| m.with_timezone(&Utc));
    let today = l.zone_volumes_since(&cfg.topology, midnight);
    let row = |name: &str| l.zones.iter().find(|z| z.zone == name);
    let node = |name: &str| -> Markup {
        let t = today.iter().find(|z| z.zone == name);
        let m = row(name);
        html! {
            a href=(format!("/network?lang={}&zone={name}", lang.code())) { b { (name) } }
            " — " (lang.t("today", "今日")) ": "
            span data-k=(format!("today-net-{name}")) { (t.map_or("—".into(), |t| num(t.net_input))) } " / "
            span data-k=(format!("today-billed-{name}")) { (t.map_or("—".into(), |t| num(t.billed))) }
            " · " (lang.t("this month", "本月")) ": "
            span data-k=(format!("month-net-{name}")) { (m.map_or("—".into(), |m| num(m.net_input))) } " / "
            span { (m.map_or("—".into(), |m| num(m.balance.billed))) } " · "
            (lang.t("losses", "漏损")) " " span { (m.map_or("—".into(), |m| num(m.losses))) } " · "
            (lang.t("non-revenue", "产销差率")) " "
            span data-k=(format!("month-nrw-{name}")) { (m.and_then(|m| m.non_revenue_share).map_or("—".into(), |s| format!("{:.1} %", s * 100.0))) }
        }
    };
    fn tree(topo: &crate::ledger::topology::Topology, parent: Option<&str>, node: &dyn Fn(&str) -> Markup) -> Markup {
        let kids: Vec<&crate::ledger::topology::Zone> =
            topo.zones.iter().filter(|z| z.parent.as_deref() == parent).collect();
        html! {
            @if !kids.is_empty() {
                ul.tree { @for z in kids { li { (node(&z.name)) (tree(topo, Some(&z.name), node)) } } }
            }
        }
    }
    let drawing = {
        let latest = st.store.latest()?;
        let active = st.store.alerts(true)?;
        crate::ledger::schematic::svg(&cfg.topology, &super::map::state(st, &latest, &active, &l), lang, true)
    };
    Ok(html! {
        p.muted {
            (lang.t("Each zone is coloured by its non-revenue share this month (green under 15 %, amber under 30 %, red above); a red sign marks an active alert; click a zone for its meters and balance by day, a device for its readings.", "分区按本月产销差率着色（绿色低于 15 %，黄色低于 30 %，红色更高）；红色标记为当前报警；点击分区查看其计量表和每日水量平衡，点击设备查看其读数。"))
        }
        // printed for the pump-house wall: the map on A3, across
        style { "@page{size:A3 landscape;margin:10mm}" }
        div.map { (PreEscaped(drawing)) }
        p.muted {
            (lang.t("Net input / billed, m³ (water) or kWh (electricity). Today since 00:00; the month so far.", "净供给 / 计费用量，水 m³、电 kWh；今日自 0 时起，本月截至目前。"))
        }
        (tree(&cfg.topology, None, &node))
        (super::assets::section(st, lang)?)
        @if let Some(z) = zone {
            (super::element::zone_days(st, lang, &l, z))
            h2 { (lang.t("Meters of zone", "分区计量表：")) " " (z) }
            table {
                tr { th { (lang.t("Device", "设备")) } th { (lang.t("Role", "用途")) } th { (lang.t("Category", "类别")) } th { (lang.t("This month", "本月用量")) } th { (lang.t("Amount (yuan)", "金额(元)")) } th { (lang.t("Notes", "说明")) } }
                @for m in l.meters.iter().filter(|m| m.zone == z) {
                    tr id=(format!("d-{}", m.device)) {
                        td { (m.device) "." (m.point) }
                        td { (match m.role { Role::Inlet => lang.t("inlet", "进水/进线"), Role::Billed => lang.t("billed", "计费"), Role::Unbilled => lang.t("unbilled", "免费") }) }
                        td { (m.category.clone().unwrap_or_default()) }
                        td.n { (num(m.consumption)) }
                        td.n { (m.amount_fen.map(yuan).unwrap_or_default()) }
                        td.muted { (crate::lang::Text::join(&m.notes, lang)) }
                    }
                }
            }
        }
    })
}

/// Alerts: active and recent, with acknowledge.
pub(super) fn alerts(st: &AppState, lang: Lang, note: Option<&str>) -> Result<Markup, StoreError> {
    let all = st.store.alerts(false)?;
    // each event once: its root, then what it caused (indented, "↳ #root")
    let parent_of = |z: &str| st.config.topology.zone(z).and_then(|z| z.parent.clone());
    let shown = crate::alerts::group::nested(&all, &parent_of);
    let (active, recent): (Vec<_>, Vec<_>) = shown.into_iter().partition(|(a, _)| a.end_ms.is_none());
    let writable = st.token.is_some();
    let voice = crate::alerts::said::Voice::new(lang, st.config.site.timezone);
    let rule = |a: &crate::store::AlertRow| crate::alerts::said::rule_label(a.rule, lang);
    let said = |a: &crate::store::AlertRow| crate::alerts::said::evidence(a, voice);
    Ok(html! {
        @if let Some(n) = note { div.note data-k="note" { (n) } }
        @if !writable {
            p.muted { (lang.t("Acknowledging from this page is off: set [http] token_env or token_file in the configuration.", "本页确认功能未开启：请在配置中设置 [http] token_env 或 token_file。")) }
        }
        h2 { (lang.t("Active", "当前报警")) " (" span data-k="active-count" { (active.len()) } ")" }
        table {
            tr { th { "#" } th { (lang.t("Rule", "规则")) } th { (lang.t("Severity", "级别")) } th { (lang.t("Where", "位置")) } th { (lang.t("Since", "开始")) } th { (lang.t("Evidence", "依据")) } th { (lang.t("Acknowledged", "确认")) } }
            @for (a, root) in &active {
                tr id=(format!("a{}", a.id)) data-alert=(a.id) data-rule=(a.rule.as_str()) data-caused-by=[root] {
                    td { (a.id) } td { @if let Some(r) = root { "↳ #" (r) " " } (rule(a)) } td class=(if a.severity == crate::model::Severity::Critical { "bad" } else { "warn" }) { (crate::alerts::said::severity_label(a.severity, lang)) }
                    td { (a.subject) } td { (ms(st, a.start_ms, "%Y-%m-%d %H:%M")) } td { (said(a)) }
                    td {
                        @if let Some(by) = &a.acked_by { span data-k=(format!("acked-{}", a.id)) { (by) } }
                        @else if writable {
                            form.inline method="post" action=(format!("/alerts/{}/ack", a.id)) {
                                input type="hidden" name="lang" value=(lang.code());
                                input name="by" placeholder=(lang.t("your name", "确认人")) required size="10";
                                " " input name="token" type="password" placeholder=(lang.t("token", "令牌")) required size="10";
                                " " button type="submit" data-ack=(a.id) { (lang.t("Acknowledge", "确认")) }
                            }
                        }
                    }
                }
            }
        }
        h2 { (lang.t("Recent, cleared", "最近已恢复")) }
        table {
            tr { th { "#" } th { (lang.t("Rule", "规则")) } th { (lang.t("Where", "位置")) } th { (lang.t("From", "开始")) } th { (lang.t("To", "结束")) } th { (lang.t("Evidence", "依据")) } }
            @for (a, root) in recent.iter().take(50) {
                tr id=(format!("a{}", a.id)) data-rule=(a.rule.as_str()) data-caused-by=[root] { td { (a.id) } td { @if let Some(r) = root { "↳ #" (r) " " } (rule(a)) } td { (a.subject) } td { (ms(st, a.start_ms, "%Y-%m-%d %H:%M")) } td { (a.end_ms.map(|e| ms(st, e, "%Y-%m-%d %H:%M")).unwrap_or_default()) } td.muted { (said(a)) } }
            }
        }
    })
}

fn utility_rows(lang: Lang, l: &Ledger) -> Markup {
    html! {
        table {
            tr {
                th { (lang.t("Utility", "类别")) } th { (lang.t("Input", "供给量")) } th { (lang.t("Billed", "计费用量")) }
                th { (lang.t("Non-revenue", "产销差")) } th { (lang.t("Revenue (yuan)", "收入(元)")) } th { (lang.t("Cost (yuan)", "成本(元)")) }
                th { (lang.t("Gap (yuan, cost − revenue)", "收支差额(元，成本−收入)")) } th { (lang.t("Baseline gap (yuan)", "基准年差额(元)")) } th { (lang.t("Status", "零增长目标")) }
            }
            @for u in l.utilities.iter().chain(std::iter::once(&l.combined)) {
                @let key = u.utility.map_or("combined", Utility::as_str);
                tr {
                    td { (utility_label(lang, u.utility)) }
                    td.n { @if u.utility.is_some() { (num(u.input)) " " (u.unit) } }
                    td.n { @if u.utility.is_some() { (num(u.billed)) } }
                    td.n { @if u.utility.is_some() { (num(u.non_revenue)) } }
                    td.n data-k=(format!("revenue-{key}")) { (yuan(u.revenue_fen)) }
                    td.n data-k=(format!("cost-{key}")) { (yuan(u.cost_fen)) }
                    td.n data-k=(format!("gap-{key}")) { (yuan(u.gap_fen)) }
                    td.n data-k=(format!("baseline-{key}")) { (u.baseline_gap_fen.map(yuan).unwrap_or_default()) }
                    td class=(status_class(u.status)) data-k=(format!("status-{key}")) { (status_label(lang, u.status)) }
                }
            }
        }
    }
}

/// The ledger of a month: picker, tables, downloads.
pub(super) fn ledger(st: &AppState, lang: Lang, month: Option<&str>) -> Result<Result<Markup, String>, BookError> {
    let cfg = &st.config;
    if cfg.topology.zones.is_empty() {
        return Ok(Err(lang
            .t("No [[zones]] are configured: there is no ledger.", "未配置分区：没有台账。")
            .to_string()));
    }
    let tz = cfg.site.timezone;
    let now = Utc::now();
    let this = Month::containing(now, tz).ok_or_else(|| BookError::Invalid("no current month".into()))?;
    let chosen = match month {
        None | Some("") => this.prev().unwrap_or(this),
        Some(m) => match Month::parse(m) {
            Some(m) => m,
            None => return Ok(Err(format!("`{m}` {}", lang.t("is not a month (YYYY-MM)", "不是月份（YYYY-MM）")))),
        },
    };
    let first = st.store.oldest_ts()?.and_then(|t| Month::containing(t, tz)).unwrap_or(this);
    let months: Vec<Month> = first.iter_from().take_while(|m| *m <= this).collect();
    let l = book::month_ledger(&cfg.ledger_spec(), &st.store, chosen, Depth::Full)?;
    let code = lang.code();
    Ok(Ok(html! {
        form method="get" action="/ledger" {
            input type="hidden" name="lang" value=(code);
            label { (lang.t("Month", "月份")) " "
                select name="month" {
                    @for m in months.iter().rev() { option value=(m.key()) selected[*m == chosen] { (m.key()) } }
                }
            }
            " " button type="submit" { (lang.t("Show", "查看")) }
            " · " a data-k="csv" href=(format!("/api/ledger/{}.csv?lang={code}", chosen.key())) { (lang.t("CSV", "下载 CSV")) }
            " · " a data-k="xlsx" href=(format!("/api/ledger/{}.xlsx?lang={code}", chosen.key())) download=(format!("ledger-{}.xlsx", chosen.key())) { (lang.t("Excel", "下载 Excel")) }
        }
        p data-k="month" { b { (chosen.key()) } " " span.muted { (local(st, l.from, "%Y-%m-%d")) " – " (local(st, l.to, "%Y-%m-%d")) @if l.frozen { " · " (lang.t("frozen", "已封账")) } } }
        @if !l.notes.is_empty() { div.note { ul { @for n in &l.notes { li { (n.get(lang)) } } } } }
        h2 { (lang.t("Utilities", "分类汇总")) }
        (utility_rows(lang, &l))
        h2 { (lang.t("Zones", "分区")) }
        table {
            tr { th { (lang.t("Zone", "分区")) } th { (lang.t("Net input", "净供给量")) } th { (lang.t("Billed", "计费用量")) } th { (lang.t("Losses", "漏损量")) } th { (lang.t("Non-revenue share", "产销差率")) } th { (lang.t("Revenue (yuan)", "收入(元)")) } th { (lang.t("Allocated cost (yuan)", "分摊成本(元)")) } th { (lang.t("Gap (yuan, cost − revenue)", "收支差额(元，成本−收入)")) } }
            @for z in &l.zones {
                tr {
                    td { (z.zone) } td.n { (num(z.net_input)) } td.n { (num(z.balance.billed)) } td.n { (num(z.losses)) }
                    td.n { (z.non_revenue_share.map(|s| format!("{:.1} %", s * 100.0)).unwrap_or_default()) }
                    td.n { (yuan(z.revenue_fen)) } td.n { (yuan(z.cost_fen)) } td.n data-k=(format!("zone-gap-{}", z.zone)) { (yuan(z.gap_fen)) }
                }
            }
        }
        h2 { (lang.t("Costs", "成本")) }
        table {
            tr { th { (lang.t("Item", "项目")) } th { (lang.t("Quantity", "数量")) } th { (lang.t("Amount (yuan)", "金额(元)")) } th { (lang.t("Notes", "说明")) } }
            @for c in &l.costs { tr { td { (c.name) } td.n { (c.quantity.map(num).unwrap_or_default()) } td.n { (yuan(c.amount_fen)) } td.muted { (crate::lang::Text::join(&c.notes, lang)) } } }
        }
        h2 { (lang.t("Meters", "计量表")) }
        table {
            tr { th { (lang.t("Meter", "表")) } th { (lang.t("Zone", "分区")) } th { (lang.t("Opening", "期初")) } th { (lang.t("Closing", "期末")) } th { (lang.t("Consumption", "用量")) } th { (lang.t("Amount (yuan)", "金额(元)")) } th { (lang.t("Notes", "说明")) } }
            @for m in &l.meters {
                tr class=(if m.flagged { "warn" } else { "" }) {
                    td { (m.device) "." (m.point) } td { (m.zone) }
                    td.n { (m.opening.map(|v| format!("{v:.3}")).unwrap_or_default()) } td.n { (m.closing.map(|v| format!("{v:.3}")).unwrap_or_default()) }
                    td.n { (format!("{:.3}", m.consumption)) } td.n { (m.amount_fen.map(yuan).unwrap_or_default()) } td.muted { (crate::lang::Text::join(&m.notes, lang)) }
                }
            }
        }
        @if !l.corrections.is_empty() {
            h2 { (lang.t("Corrections applied", "已应用的更正")) }
            ul { @for c in &l.corrections { li { "#" (c.id) " " (c.describe(lang, st.config.site.timezone)) " — " (c.by) (lang.t(": ", "：")) (c.why) } } }
        }
    }))
}

/// Zero-growth: this year's gap month by month against the baseline year, the
/// projection, the status per utility.
pub(super) fn targets(st: &AppState, lang: Lang) -> Result<Markup, BookError> {
    let cfg = &st.config;
    if cfg.topology.zones.is_empty() {
        return Ok(html! { p.muted { (lang.t("No [[zones]] are configured.", "未配置分区。")) } });
    }
    let tz = cfg.site.timezone;
    let this = Month::containing(Utc::now(), tz).ok_or_else(|| BookError::Invalid("no current month".into()))?;
    let spec = cfg.ledger_spec();
    let mut months: Vec<(Month, Ledger)> = Vec::new();
    for m in (1..this.month()).filter_map(|k| Month::new(this.year(), k)) {
        let l = book::month_ledger(&spec, &st.store, m, Depth::Month)?;
        if l.utilities.iter().any(|u| u.input > 0.0) {
            months.push((m, l));
        }
    }
    let current = book::month_ledger(&spec, &st.store, this, Depth::Full)?;
    let accounts: Vec<Option<Utility>> =
        current.utilities.iter().map(|u| u.utility).chain(std::iter::once(None)).collect();
    let pick = |l: &Ledger, a: Option<Utility>| -> Option<UtilityRow> {
        match a {
            None => Some(l.combined.clone()),
            Some(_) => l.utilities.iter().find(|u| u.utility == a).cloned(),
        }
    };
    let report = crate::targets::from_store(&cfg.targets_spec(), &st.store, this, Some(&current), Utc::now())?;
    Ok(html! {
        (three_targets(&report, lang, tz))
        h2 { (lang.t("Fee–cost gap", "水电费收支差额")) }
        p.muted { (lang.t("The gap is costs minus fees collected; the target is no growth against the baseline year's same months. The current month is still running.", "收支差额 = 成本 − 收费；目标是与基准年同期相比不增长。本月尚未结束。")) }
        @for a in &accounts {
            @let key = a.map_or("combined", Utility::as_str);
            @let ytd = current.year_to_date.iter().find(|y| y.utility == *a);
            h2 { (utility_label(lang, *a)) }
            @if let Some(y) = ytd {
                div.cards {
                    div.card { div.muted { (lang.t("Gap, year to date (yuan)", "年初至今差额(元)")) } div.v data-k=(format!("ytd-{key}")) { (yuan(y.gap_fen)) } }
                    div.card { div.muted { (lang.t("Baseline, same months (yuan)", "基准年同期(元)")) } div.v data-k=(format!("ytd-baseline-{key}")) { (y.baseline_gap_fen.map(yuan).unwrap_or_else(|| "—".into())) } }
                    div.card { div.muted { (lang.t("Year-end projection (yuan)", "全年预测(元)")) } div.v data-k=(format!("projection-{key}")) { (yuan(y.projection_fen)) } div.muted { (y.projection_method.label(lang)) } }
                    div.card { div.muted { (lang.t("Status", "状态")) } div class=(format!("v {}", status_class(y.status))) data-k=(format!("ytd-status-{key}")) { (if y.status.is_some() { status_label(lang, y.status) } else { lang.t("no full baseline year", "基准年不全") }) } }
                }
            }
            @let series: Vec<(String, Option<i64>, Option<i64>)> = months.iter().map(|(m, l)| (m.key(), pick(l, *a).map(|r| r.gap_fen), pick(l, *a).and_then(|r| r.baseline_gap_fen)))
                .chain(std::iter::once((this.key(), pick(&current, *a).map(|r| r.gap_fen), pick(&current, *a).and_then(|r| r.baseline_gap_fen))))
                .collect();
            (charts::gap_bars(lang, key, &series))
            table {
                tr { th { (lang.t("Month", "月份")) } th { (lang.t("Gap (yuan)", "差额(元)")) } th { (lang.t("Baseline (yuan)", "基准年(元)")) } th { (lang.t("Status", "状态")) } }
                @for (m, l) in months.iter().map(|(m, l)| (m, l)).chain(std::iter::once((&this, &current))) {
                    @if let Some(r) = pick(l, *a) {
                        tr {
                            td { (m.key()) } td.n data-k=(format!("gap-{key}-{}", m.key())) { (yuan(r.gap_fen)) }
                            td.n { (r.baseline_gap_fen.map(yuan).unwrap_or_default()) }
                            td class=(status_class(r.status)) { (status_label(lang, r.status)) }
                        }
                    }
                }
            }
        }
    })
}

/// The three targets for the month and the year to date, with the month's incidents and
/// interruptions.
fn three_targets(t: &crate::targets::Targets, lang: Lang, tz: chrono_tz::Tz) -> Markup {
    use crate::targets::{tables::measure_label, Measure, Period, Target};
    let target_name = |x: Target| match x {
        Target::Money => lang.t("Fee–cost gap", "水电费收支差额"),
        Target::Safety => lang.t("Safety incidents", "安全事故"),
        Target::Service => lang.t("Service (interruptions, low pressure)", "服务(停水、低压)"),
    };
    let key = |x: Target| match x {
        Target::Money => "money",
        Target::Safety => "safety",
        Target::Service => "service",
    };
    let period_name = |p: Period| match p {
        Period::Month => lang.t("month", "本月"),
        Period::YearToDate => lang.t("year to date", "本年累计"),
    };
    let figure = |m: Measure, v: Option<i64>| match (m, v) {
        (_, None) => "—".to_string(),
        (Measure::GapFen, Some(f)) => yuan(f),
        (_, Some(n)) => n.to_string(),
    };
    let when = |d: chrono::DateTime<Utc>| d.with_timezone(&tz).format("%m-%d %H:%M").to_string();
    html! {
        h2 { (lang.t("Three zero-growth targets", "三个零增长")) " · " (t.month.key()) }
        div.cards {
            @for s in t.summary.iter().filter(|s| s.period == Period::Month) {
                div.card {
                    div.muted { (target_name(s.target)) }
                    div class=(format!("v {}", status_class(s.status))) data-k=(format!("target-{}", key(s.target))) {
                        (if s.status.is_some() { status_label(lang, s.status) } else { lang.t("unknown", "未知") })
                    }
                }
            }
        }
        table {
            tr { th { (lang.t("Target", "目标")) } th { (lang.t("Measure", "指标")) } th { (lang.t("Period", "期间")) } th { (lang.t("This year", "本年")) } th { (lang.t("Baseline year", "基准年")) } th { (lang.t("Change", "变化")) } th { (lang.t("Status", "状态")) } }
            @for r in &t.rows {
                tr {
                    td { (target_name(r.target)) } td { (measure_label(lang, r.measure)) } td { (period_name(r.period)) }
                    td.n data-k=(format!("{:?}-{:?}", r.measure, r.period)) { (figure(r.measure, r.this)) }
                    td.n { (figure(r.measure, r.baseline)) } td.n { (figure(r.measure, r.change)) }
                    td class=(status_class(r.status)) { (status_label(lang, r.status)) }
                }
            }
        }
        @if !t.incidents.is_empty() {
            h3 { (lang.t("Incidents this month", "本月安全事故")) }
            ul { @for i in &t.incidents { li { (when(i.start)) " " (crate::alerts::said::rule_label(i.rule, lang)) " · " (i.zone) " · " (i.subject) (lang.t(": ", "：")) (i.evidence.render(crate::alerts::said::Voice::new(lang, tz))) } } }
        }
        @if !t.interruptions.is_empty() || !t.low_pressure.is_empty() {
            h3 { (lang.t("Interruptions and low pressure this month", "本月停水与低压")) }
            ul {
                @for i in &t.interruptions { li { (when(i.start)) " " (i.zone) ": " (i.minutes) " min × " (i.customers) " = " (i.customer_minutes) " " (lang.t("customer-minutes", "户·分钟")) } }
                @for l in &t.low_pressure { li { (l.zone) ": " (l.minutes) " " (lang.t("low-pressure minutes", "低压分钟")) } }
            }
        }
        @for n in &t.notes { p.muted { (n.get(lang)) } }
    }
}

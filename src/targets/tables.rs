//! The targets report as tables of the monthly ledger's export (a sheet each in the
//! workbook, a section each in the CSV), in the ledger's language.

use chrono_tz::Tz;

use super::{Measure, Period, Target, Targets};
use crate::ledger::export::{l, status_label, Cell, Lang, Table};

fn target_label(lang: Lang, t: Target) -> &'static str {
    match t {
        Target::Money => l(lang, "fee-cost gap", "水电费收支差额"),
        Target::Safety => l(lang, "safety incidents", "安全事故"),
        Target::Service => l(lang, "service", "服务投诉"),
    }
}

pub fn measure_label(lang: Lang, m: Measure) -> &'static str {
    match m {
        Measure::GapFen => l(lang, "gap (yuan)", "收支差额(元)"),
        Measure::Incidents => l(lang, "incidents", "事故次数"),
        Measure::Interruptions => l(lang, "supply interruptions", "停水次数"),
        Measure::CustomerMinutes => l(lang, "customer-minutes without supply", "停水户·分钟"),
        Measure::LowPressureMinutes => l(lang, "low-pressure minutes", "低压分钟数"),
    }
}

fn period_label(lang: Lang, p: Period) -> &'static str {
    match p {
        Period::Month => l(lang, "month", "本月"),
        Period::YearToDate => l(lang, "year to date", "本年累计"),
    }
}

/// A measure's figure as a cell: money in yuan, counts as numbers, unknown empty.
fn figure(m: Measure, v: Option<i64>) -> Cell {
    match (m, v) {
        (_, None) => Cell::Empty,
        (Measure::GapFen, Some(fen)) => Cell::Num(fen as f64 / 100.0),
        (_, Some(n)) => Cell::Num(n as f64),
    }
}

pub fn tables(t: &Targets, lang: Lang, tz: Tz) -> Vec<Table> {
    let own = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<String>>();
    let when = |d: chrono::DateTime<chrono::Utc>| d.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    let head = own(vec![
        l(lang, "target", "目标"),
        l(lang, "measure", "指标"),
        l(lang, "period", "期间"),
        l(lang, "this year", "本年"),
        l(lang, "baseline year", "基准年"),
        l(lang, "change", "变化"),
        l(lang, "status", "状态"),
        l(lang, "baseline from", "基准来源"),
    ]);
    let mut rows: Vec<Vec<Cell>> = t
        .rows
        .iter()
        .map(|r| {
            vec![
                Cell::Text(target_label(lang, r.target).into()),
                Cell::Text(measure_label(lang, r.measure).into()),
                Cell::Text(period_label(lang, r.period).into()),
                figure(r.measure, r.this),
                figure(r.measure, r.baseline),
                figure(r.measure, r.change),
                Cell::Text(if r.this.is_none() {
                    l(lang, "unknown", "未知").into()
                } else {
                    status_label(lang, r.status).into()
                }),
                Cell::Text(match r.baseline_source {
                    Some(crate::ledger::month::BaselineSource::Config) => l(lang, "old books", "台账录入").into(),
                    Some(crate::ledger::month::BaselineSource::History) => l(lang, "records", "历史记录").into(),
                    None => String::new(),
                }),
            ]
        })
        .collect();
    for n in &t.notes {
        rows.push(vec![Cell::Text(l(lang, "note", "说明").into()), Cell::Text(n.clone())]);
    }
    let incident_head = own(vec![
        l(lang, "rule", "类型"),
        l(lang, "zone", "分区"),
        l(lang, "subject", "对象"),
        l(lang, "severity", "级别"),
        l(lang, "start", "开始"),
        l(lang, "end", "结束"),
        l(lang, "evidence", "依据"),
    ]);
    let incidents = t
        .incidents
        .iter()
        .map(|i| {
            vec![
                Cell::Text(i.rule.as_str().into()),
                Cell::Text(i.zone.clone()),
                Cell::Text(i.subject.clone()),
                Cell::Text(i.severity.as_str().into()),
                Cell::Text(when(i.start)),
                i.end.map(|e| Cell::Text(when(e))).unwrap_or(Cell::Empty),
                Cell::Text(i.evidence.clone()),
            ]
        })
        .collect();
    let interruption_head = own(vec![
        l(lang, "zone", "分区"),
        l(lang, "start", "开始"),
        l(lang, "end", "结束"),
        l(lang, "minutes", "分钟"),
        l(lang, "customer meters", "用户表数"),
        l(lang, "customer-minutes", "户·分钟"),
        l(lang, "cause", "原因"),
    ]);
    let mut interruptions: Vec<Vec<Cell>> = t
        .interruptions
        .iter()
        .map(|i| {
            vec![
                Cell::Text(i.zone.clone()),
                Cell::Text(when(i.start)),
                i.end.map(|e| Cell::Text(when(e))).unwrap_or(Cell::Empty),
                Cell::Num(i.minutes as f64),
                Cell::Num(i.customers as f64),
                Cell::Num(i.customer_minutes as f64),
                Cell::Text(i.cause.clone()),
            ]
        })
        .collect();
    for lp in &t.low_pressure {
        interruptions.push(vec![
            Cell::Text(lp.zone.clone()),
            Cell::Empty,
            Cell::Empty,
            Cell::Num(lp.minutes as f64),
            Cell::Empty,
            Cell::Empty,
            Cell::Text(l(lang, "low pressure (below the service level)", "低压(低于服务压力)").into()),
        ]);
    }
    vec![
        (l(lang, "zero-growth targets", "三个零增长"), head, rows),
        (l(lang, "incidents", "安全事故记录"), incident_head, incidents),
        (l(lang, "interruptions", "停水与低压记录"), interruption_head, interruptions),
    ]
}

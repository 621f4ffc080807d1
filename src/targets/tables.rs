//! The targets report as tables of the monthly ledger's export (a sheet each in the
//! workbook, a section each in the CSV), in the ledger's language.

use chrono_tz::Tz;

use super::{Measure, Period, Target, Targets};
use crate::ledger::export::{header_row, status_label, Cell, Lang, Table};

fn target_label(lang: Lang, t: Target) -> &'static str {
    match t {
        Target::Money => lang.t("fee-cost gap", "水电费收支差额"),
        Target::Safety => lang.t("safety incidents", "安全事故"),
        Target::Service => lang.t("service", "服务投诉"),
    }
}

pub fn measure_label(lang: Lang, m: Measure) -> &'static str {
    match m {
        Measure::GapFen => lang.t("gap (yuan, cost − revenue)", "收支差额(元，成本−收入)"),
        Measure::Incidents => lang.t("incidents", "事故次数"),
        Measure::Interruptions => lang.t("supply interruptions", "停水次数"),
        Measure::CustomerMinutes => lang.t("customer-minutes without supply", "停水户·分钟"),
        Measure::LowPressureMinutes => lang.t("low-pressure minutes", "低压分钟数"),
    }
}

fn period_label(lang: Lang, p: Period) -> &'static str {
    match p {
        Period::Month => lang.t("month", "本月"),
        Period::YearToDate => lang.t("year to date", "本年累计"),
    }
}

/// A measure's figure as a cell: money in yuan, counts as numbers, unknown empty.
fn figure(m: Measure, v: Option<i64>) -> Cell {
    match (m, v) {
        (_, None) => Cell::Empty,
        (Measure::GapFen, Some(fen)) => Cell::Yuan(fen),
        (_, Some(n)) => Cell::Count(n),
    }
}

pub fn tables(t: &Targets, lang: Lang, tz: Tz) -> Vec<Table> {
    let when = |d: chrono::DateTime<chrono::Utc>| d.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    let voice = crate::alerts::said::Voice::new(lang, tz);
    let head = header_row(vec![
        lang.t("target", "目标"),
        lang.t("measure", "指标"),
        lang.t("period", "期间"),
        lang.t("this year", "本年"),
        lang.t("baseline year", "基准年"),
        lang.t("change", "变化"),
        lang.t("status", "状态"),
        lang.t("baseline from", "基准来源"),
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
                    lang.t("unknown", "未知").into()
                } else {
                    status_label(lang, r.status).into()
                }),
                Cell::Text(match r.baseline_source {
                    Some(crate::ledger::month::BaselineSource::Config) => lang.t("old books", "台账录入").into(),
                    Some(crate::ledger::month::BaselineSource::History) => lang.t("records", "历史记录").into(),
                    None => String::new(),
                }),
            ]
        })
        .collect();
    for n in &t.notes {
        rows.push(vec![Cell::Text(lang.t("note", "说明").into()), Cell::Text(n.get(lang).to_string())]);
    }
    let incident_head = header_row(vec![
        lang.t("rule", "类型"),
        lang.t("zone", "分区"),
        lang.t("subject", "对象"),
        lang.t("severity", "级别"),
        lang.t("start", "开始"),
        lang.t("end", "结束"),
        lang.t("evidence", "依据"),
    ]);
    let incidents = t
        .incidents
        .iter()
        .map(|i| {
            vec![
                Cell::Text(crate::alerts::said::rule_label(i.rule, lang).into()),
                Cell::Text(i.zone.clone()),
                Cell::Text(i.subject.clone()),
                Cell::Text(crate::alerts::said::severity_label(i.severity, lang).into()),
                Cell::Text(when(i.start)),
                i.end.map(|e| Cell::Text(when(e))).unwrap_or(Cell::Empty),
                Cell::Text(i.evidence.render(voice)),
            ]
        })
        .collect();
    let interruption_head = header_row(vec![
        lang.t("zone", "分区"),
        lang.t("start", "开始"),
        lang.t("end", "结束"),
        lang.t("minutes", "分钟"),
        lang.t("customer meters", "用户表数"),
        lang.t("customer-minutes", "户·分钟"),
        lang.t("cause", "原因"),
    ]);
    let mut interruptions: Vec<Vec<Cell>> = t
        .interruptions
        .iter()
        .map(|i| {
            vec![
                Cell::Text(i.zone.clone()),
                Cell::Text(when(i.start)),
                i.end.map(|e| Cell::Text(when(e))).unwrap_or(Cell::Empty),
                Cell::Count(i.minutes),
                Cell::Count(i.customers as i64),
                Cell::Count(i.customer_minutes),
                Cell::Text(i.cause.render(voice)),
            ]
        })
        .collect();
    for lp in &t.low_pressure {
        interruptions.push(vec![
            Cell::Text(lp.zone.clone()),
            Cell::Empty,
            Cell::Empty,
            Cell::Count(lp.minutes),
            Cell::Empty,
            Cell::Empty,
            Cell::Text(lang.t("low pressure (below the service level)", "低压(低于服务压力)").into()),
        ]);
    }
    vec![
        (lang.t("zero-growth targets", "三个零增长"), head, rows),
        (lang.t("incidents", "安全事故记录"), incident_head, incidents),
        (lang.t("interruptions", "停水与低压记录"), interruption_head, interruptions),
    ]
}

//! The group's month as a workbook: a summary (money and each target's rows for the group,
//! with the sites whose figure is unknown), then a sheet per site.

use crate::lang::Lang;
use crate::ledger::export::Cell;

use super::figures::GroupMonth;

fn fen(v: Option<i64>) -> Cell {
    v.map_or(Cell::Empty, Cell::Yuan)
}

/// A target row's figure: money in yuan, counts as counts; unknown left empty.
fn figure(measure: &str, v: Option<i64>) -> Cell {
    match (measure, v) {
        (_, None) => Cell::Empty,
        ("gap_fen", Some(f)) => Cell::Yuan(f),
        (_, Some(n)) => Cell::Count(n),
    }
}

pub fn xlsx(g: &GroupMonth, lang: Lang) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let t = |en: &str, zh: &str| lang.t(en, zh).to_string();
    let unknown = t("unknown", "未知");
    let mut summary = vec![
        vec![Cell::Text(t("fees (yuan)", "收费(元)")), fen(g.money.revenue_fen)],
        vec![Cell::Text(t("costs (yuan)", "成本(元)")), fen(g.money.cost_fen)],
        vec![Cell::Text(t("gap (yuan)", "收支差(元)")), fen(g.money.gap_fen)],
        vec![Cell::Text(t("baseline year's gap (yuan)", "基准年收支差(元)")), fen(g.money.baseline_gap_fen)],
    ];
    if !g.missing.is_empty() {
        summary.push(vec![
            Cell::Text(t("not reported (sums unknown)", "未上报（合计未知）")),
            Cell::Text(g.missing.join(", ")),
        ]);
    }
    let mut rows_head = vec![
        t("target", "目标"),
        t("measure", "指标"),
        t("period", "期间"),
        t("this year", "本年"),
        t("baseline year", "基准年"),
        t("change", "变化"),
        t("status", "状态"),
        t("unknown at", "未知的校区"),
    ];
    let group_rows: Vec<Vec<Cell>> = g
        .rows
        .iter()
        .map(|r| {
            vec![
                Cell::Text(r.target.clone()),
                Cell::Text(r.measure.clone()),
                Cell::Text(r.period.clone()),
                figure(&r.measure, r.this),
                figure(&r.measure, r.baseline),
                figure(&r.measure, r.change),
                Cell::Text(
                    r.status
                        .map_or_else(|| if r.this.is_none() { unknown.clone() } else { String::new() }, str::to_string),
                ),
                Cell::Text(r.unknown_at.join(", ")),
            ]
        })
        .collect();
    let mut tables = vec![
        (t("Group", "集团汇总"), vec![t("item", "项目"), t("value", "数值")], summary),
        (t("Group targets", "集团三个零增长"), rows_head.clone(), group_rows),
    ];
    rows_head.truncate(5);
    let taken: Vec<String> = tables.iter().map(|(n, _, _)| n.to_lowercase()).collect();
    for s in &g.sites {
        // a sheet name without the characters Excel refuses, apart from the summary's
        let mut name: String = s.site.chars().map(|c| if "[]:*?/\\".contains(c) { '_' } else { c }).take(28).collect();
        if taken.contains(&name.to_lowercase()) {
            name.push_str(" ()");
        }
        let mut rows = vec![
            vec![Cell::Text(t("fees (yuan)", "收费(元)")), fen(s.money.revenue_fen)],
            vec![Cell::Text(t("costs (yuan)", "成本(元)")), fen(s.money.cost_fen)],
            vec![Cell::Text(t("gap (yuan)", "收支差(元)")), fen(s.money.gap_fen)],
        ];
        if !s.reported {
            rows.push(vec![Cell::Text(t("not reported this month", "本月未上报")), Cell::Empty]);
        }
        for r in &s.rows {
            rows.push(vec![
                Cell::Text(format!("{} / {} / {}", r.target, r.measure, r.period)),
                figure(&r.measure, r.this),
                figure(&r.measure, r.baseline),
            ]);
        }
        tables.push((name, vec![t("item", "项目"), t("this year", "本年"), t("baseline year", "基准年")], rows));
    }
    crate::ledger::export::workbook(&tables)
}

//! The monthly ledger as CSV, XLSX and JSON, labelled in Chinese or English.
//!
//! Numbers stay numbers (volumes in their unit, money in yuan with two decimals); units
//! are in the headers. The CSV holds the same tables as the workbook, one after another,
//! each with its own header line, separated by a blank line.

use std::fmt::Write as _;
use std::path::Path;

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::month::{Ledger, Status};
use super::topology::{Role, Utility};
use crate::line_protocol::Line;

pub use crate::lang::Lang;

fn yuan(fen: i64) -> f64 {
    fen as f64 / 100.0
}

/// An amount in fen as yuan text with two decimals ("-1234.05"), exact: no float rounding.
pub fn yuan_text(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

pub fn status_label(lang: Lang, s: Option<Status>) -> &'static str {
    match s {
        None => "",
        Some(Status::OnTrack) => lang.t("on track", "达标"),
        Some(Status::AtRisk) => lang.t("at risk", "预警"),
        Some(Status::Breached) => lang.t("breached", "超标"),
    }
}

/// A utility's name; `None` is the combined account.
pub fn utility_label(lang: Lang, u: Option<Utility>) -> &'static str {
    match u {
        Some(Utility::Water) => lang.t("water", "水"),
        Some(Utility::Electricity) => lang.t("electricity", "电"),
        None => lang.t("combined", "合计"),
    }
}

fn role_label(lang: Lang, r: Role) -> &'static str {
    match r {
        Role::Inlet => lang.t("inlet", "进水/进线"),
        Role::Billed => lang.t("billed", "计费"),
        Role::Unbilled => lang.t("unbilled", "免费"),
    }
}

/// A table: header and rows of cells.
/// One cell of an exported table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A volume or a reading, shown to the meters' resolution (0.001).
    Num(f64),
    /// Money, in fen: shown as yuan with two decimals.
    Yuan(i64),
    /// A share (0.146): shown as a percentage (14.6 %).
    Share(f64),
    /// A count: shown without decimals.
    Count(i64),
    Empty,
}

impl Cell {
    /// The cell as a person reads it in a file or a text table: yuan with two decimals,
    /// shares as percentages, volumes to 0.001.
    pub fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            // + 0.0 turns a -0 into 0
            Cell::Num(n) => format!("{}", (n * 1000.0).round() / 1000.0 + 0.0),
            Cell::Yuan(fen) => yuan_text(*fen),
            Cell::Share(s) => format!("{:.1}%", s * 100.0 + 0.0),
            Cell::Count(n) => n.to_string(),
            Cell::Empty => String::new(),
        }
    }
}

fn money(fen: Option<i64>) -> Cell {
    fen.map(Cell::Yuan).unwrap_or(Cell::Empty)
}

fn share(s: Option<f64>) -> Cell {
    s.map(Cell::Share).unwrap_or(Cell::Empty)
}

/// An instant in the ledger's time zone, as a person reads it.
fn local(ledger: &Ledger, t: chrono::DateTime<chrono::Utc>) -> String {
    match ledger.timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => t.to_rfc3339(),
    }
}

/// A table of the export: its name (the sheet's), header and rows. Sections computed
/// beside the ledger (the targets report) are passed in as more tables.
pub type Table = (&'static str, Vec<String>, Vec<Vec<Cell>>);

/// A table whose sheet name is made at run time (a site's name).
pub type NamedTable = (String, Vec<String>, Vec<Vec<Cell>>);

fn opt(v: Option<f64>) -> Cell {
    v.map(Cell::Num).unwrap_or(Cell::Empty)
}

fn tables(ledger: &Ledger, lang: Lang) -> Vec<Table> {
    let mut out = vec![summary_table(ledger, lang), year_to_date_table(ledger, lang)];
    out.extend(zone_tables(ledger, lang));
    out.push(costs_table(ledger, lang));
    out.push(meters_table(ledger, lang));
    out.push(corrections_table(ledger, lang));
    out
}

/// A header row of labels.
pub fn header_row(head: Vec<&str>) -> Vec<String> {
    head.into_iter().map(String::from).collect()
}

/// Each utility's figures and the combined row.
fn summary_table(ledger: &Ledger, lang: Lang) -> Table {
    let summary_head = vec![
        lang.t("utility", "类别"),
        lang.t("input", "供给量"),
        lang.t("billed", "计费用量"),
        lang.t("unbilled authorised", "免费授权用量"),
        lang.t("losses", "漏损量"),
        lang.t("non-revenue", "产销差"),
        lang.t("non-revenue share", "产销差率"),
        lang.t("revenue (yuan)", "收入(元)"),
        lang.t("cost (yuan)", "成本(元)"),
        lang.t("gap (yuan, cost − revenue)", "收支差额(元，成本−收入)"),
        lang.t("baseline gap (yuan)", "基准年差额(元)"),
        lang.t("change (yuan)", "变化(元)"),
        lang.t("volume effect (yuan)", "量的影响(元)"),
        lang.t("price effect (yuan)", "价的影响(元)"),
        lang.t("loss effect (yuan)", "漏损影响(元)"),
        lang.t("target status", "零增长目标"),
        lang.t("unit", "单位"),
    ];
    let mut summary = Vec::new();
    for u in ledger.utilities.iter().chain(std::iter::once(&ledger.combined)) {
        let combined = u.utility.is_none();
        let vol = |v: f64| if combined { Cell::Empty } else { Cell::Num(v) };
        summary.push(vec![
            Cell::Text(utility_label(lang, u.utility).to_string()),
            vol(u.input),
            vol(u.billed),
            vol(u.unbilled),
            vol(u.losses),
            vol(u.non_revenue),
            share(u.non_revenue_share),
            Cell::Yuan(u.revenue_fen),
            Cell::Yuan(u.cost_fen),
            Cell::Yuan(u.gap_fen),
            money(u.baseline_gap_fen),
            money(u.gap_change_fen),
            money(u.effects.as_ref().map(|e| e.volume_fen)),
            money(u.effects.as_ref().map(|e| e.price_fen)),
            money(u.effects.as_ref().map(|e| e.loss_fen)),
            Cell::Text(status_label(lang, u.status).to_string()),
            Cell::Text(u.unit.to_string()),
        ]);
    }
    (lang.t("summary", "汇总"), header_row(summary_head), summary)
}

/// The year to date and its projection.
fn year_to_date_table(ledger: &Ledger, lang: Lang) -> Table {
    let ytd_head = vec![
        lang.t("utility", "类别"),
        lang.t("months", "月数"),
        lang.t("gap to date (yuan)", "累计收支差额(元)"),
        lang.t("baseline to date (yuan)", "基准年同期(元)"),
        lang.t("year-end projection (yuan)", "全年预测(元)"),
        lang.t("baseline year (yuan)", "基准年全年(元)"),
        lang.t("target status", "零增长目标"),
        lang.t("projection method", "预测方法"),
    ];
    let ytd: Vec<Vec<Cell>> = ledger
        .year_to_date
        .iter()
        .map(|y| {
            vec![
                Cell::Text(utility_label(lang, y.utility).to_string()),
                Cell::Count(i64::from(y.months)),
                Cell::Yuan(y.gap_fen),
                money(y.baseline_gap_fen),
                Cell::Yuan(y.projection_fen),
                money(y.baseline_full_year_fen),
                Cell::Text(status_label(lang, y.status).to_string()),
                Cell::Text(y.projection_method.label(lang).to_string()),
            ]
        })
        .collect();
    (lang.t("year to date", "年度累计"), header_row(ytd_head), ytd)
}

/// One zone sheet per utility, volumes with their unit in the header.
fn zone_tables(ledger: &Ledger, lang: Lang) -> Vec<Table> {
    [Utility::Water, Utility::Electricity]
        .iter()
        .filter(|u| ledger.zones.iter().any(|z| z.utility == **u))
        .map(|u| {
            let unit = if *u == Utility::Water { "m³" } else { "kWh" };
            let v = |en: &str, zh: &str| format!("{} ({unit})", if lang == Lang::En { en } else { zh });
            let head: Vec<String> = vec![
                lang.t("zone", "分区").to_string(),
                lang.t("parent", "上级分区").to_string(),
                v("input", "进水/进线量"),
                v("to child zones", "转供下级分区"),
                v("net input", "净供给量"),
                v("billed", "计费用量"),
                v("unbilled metered", "免费计量用量"),
                v("unbilled estimated", "免费估算用量"),
                v("losses", "漏损量"),
                v("non-revenue", "产销差"),
                lang.t("non-revenue share", "产销差率").to_string(),
                lang.t("revenue (yuan)", "收入(元)").to_string(),
                lang.t("allocated cost (yuan)", "分摊成本(元)").to_string(),
                lang.t("gap (yuan, cost − revenue)", "收支差额(元，成本−收入)").to_string(),
            ];
            let rows = ledger
                .zones
                .iter()
                .filter(|z| z.utility == *u)
                .map(|z| {
                    vec![
                        Cell::Text(z.zone.clone()),
                        Cell::Text(z.parent.clone().unwrap_or_default()),
                        Cell::Num(z.balance.input),
                        Cell::Num(z.balance.transferred),
                        Cell::Num(z.net_input),
                        Cell::Num(z.balance.billed),
                        Cell::Num(z.balance.unbilled_metered),
                        Cell::Num(z.balance.unbilled_estimated),
                        Cell::Num(z.losses),
                        Cell::Num(z.non_revenue),
                        share(z.non_revenue_share),
                        Cell::Yuan(z.revenue_fen),
                        Cell::Yuan(z.cost_fen),
                        Cell::Yuan(z.gap_fen),
                    ]
                })
                .collect();
            let name = match (*u, lang) {
                (Utility::Water, Lang::En) => "water zones",
                (Utility::Water, Lang::Zh) => "供水分区",
                (_, Lang::En) => "electricity zones",
                (_, Lang::Zh) => "供电分区",
            };
            (name, head, rows)
        })
        .collect()
}

/// Every meter's readings, consumption and bill.
fn meters_table(ledger: &Ledger, lang: Lang) -> Table {
    let meter_head = vec![
        lang.t("utility", "类别"),
        lang.t("zone", "分区"),
        lang.t("device", "表计"),
        lang.t("point", "读数点"),
        lang.t("role", "用途"),
        lang.t("category", "用户类别"),
        lang.t("opening reading", "期初读数"),
        lang.t("opening time", "期初时间"),
        lang.t("closing reading", "期末读数"),
        lang.t("closing time", "期末时间"),
        lang.t("consumption", "用量"),
        lang.t("estimated share", "估算部分"),
        lang.t("quarantined readings", "隔离读数"),
        lang.t("tariff", "价格"),
        lang.t("amount (yuan)", "金额(元)"),
        lang.t("quality notes", "数据说明"),
    ];
    let meters: Vec<Vec<Cell>> = ledger
        .meters
        .iter()
        .map(|m| {
            vec![
                Cell::Text(utility_label(lang, Some(m.utility)).to_string()),
                Cell::Text(m.zone.clone()),
                Cell::Text(m.device.clone()),
                Cell::Text(m.point.clone()),
                Cell::Text(role_label(lang, m.role).to_string()),
                Cell::Text(m.category.clone().unwrap_or_default()),
                opt(m.opening),
                Cell::Text(m.opening_ts.map(|t| local(ledger, t)).unwrap_or_default()),
                opt(m.closing),
                Cell::Text(m.closing_ts.map(|t| local(ledger, t)).unwrap_or_default()),
                Cell::Num(m.consumption),
                Cell::Num(m.estimated),
                Cell::Count(m.quarantined as i64),
                Cell::Text(m.tariff.as_ref().map(|t| t.get(lang).to_string()).unwrap_or_default()),
                money(m.amount_fen),
                Cell::Text(crate::lang::Text::join(&m.notes, lang)),
            ]
        })
        .collect();
    (lang.t("meters", "表计台账"), header_row(meter_head), meters)
}

/// The cost lines.
fn costs_table(ledger: &Ledger, lang: Lang) -> Table {
    let cost_head = vec![
        lang.t("utility", "类别"),
        lang.t("cost item", "成本项目"),
        lang.t("quantity", "数量"),
        lang.t("amount (yuan)", "金额(元)"),
    ];
    let costs: Vec<Vec<Cell>> = ledger
        .costs
        .iter()
        .map(|c| {
            vec![
                Cell::Text(utility_label(lang, Some(c.utility)).to_string()),
                Cell::Text(c.name.clone()),
                opt(c.quantity),
                Cell::Yuan(c.amount_fen),
            ]
        })
        .collect();
    (lang.t("costs", "成本"), header_row(cost_head), costs)
}

/// The audited corrections applied.
fn corrections_table(ledger: &Ledger, lang: Lang) -> Table {
    let corr_head = vec![
        lang.t("recorded", "记录时间"),
        lang.t("by", "操作人"),
        lang.t("what", "内容"),
        lang.t("why", "原因"),
        "#",
    ];
    let corrections: Vec<Vec<Cell>> = ledger
        .corrections
        .iter()
        .map(|c| {
            vec![
                Cell::Text(local(ledger, c.at)),
                Cell::Text(c.by.clone()),
                Cell::Text(c.describe(lang, ledger.timezone.parse().unwrap_or(chrono_tz::UTC))),
                Cell::Text(c.why.clone()),
                Cell::Count(c.id),
            ]
        })
        .collect();
    (lang.t("corrections", "更正记录"), header_row(corr_head), corrections)
}

/// A value as JSON with its figures tidied ([`tidy`]): what the API and `ledger --format
/// json` give.
pub fn json<T: serde::Serialize>(v: &T, pretty: bool) -> serde_json::Result<Vec<u8>> {
    let mut v = serde_json::to_value(v)?;
    tidy(&mut v);
    if pretty {
        serde_json::to_vec_pretty(&v)
    } else {
        serde_json::to_vec(&v)
    }
}

/// Every float rounded to a millionth — finer than any meter's last digit (a litre, a
/// watt-hour) and than any share shown — so that `10787.499999999976` reads `10787.5`,
/// and a zero has no sign (`-0.0` is `0`). Integers (fen, counts) are left as they are.
pub fn tidy(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(x) = n.as_f64() {
                let r = (x * 1e6).round() / 1e6 + 0.0;
                if let Some(t) = serde_json::Number::from_f64(r) {
                    *n = t;
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(tidy),
        serde_json::Value::Object(o) => o.values_mut().for_each(tidy),
        _ => {}
    }
}

/// A text cell: quoted when it must be, and never run as a formula by the spreadsheet
/// that opens it (a correction's `--by`/`--why` is typed by a user).
fn csv_field(s: &str) -> String {
    let s = crate::untrusted::cell(s);
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The ledger's tables, then `extra`, as CSV.
/// In Chinese, the file starts with a UTF-8 byte-order mark: Excel on Chinese Windows
/// reads a CSV without one as GBK and shows mojibake.
pub fn to_csv(ledger: &Ledger, lang: Lang, extra: &[Table]) -> String {
    let mut out = String::new();
    if lang == Lang::Zh {
        out.push('\u{feff}');
    }
    let _ = writeln!(
        out,
        "{},{},{}",
        csv_field(lang.t("site", "站点")),
        csv_field(&ledger.site),
        csv_field(&ledger.month.key())
    );
    for (name, head, rows) in tables(ledger, lang).iter().chain(extra) {
        let _ = writeln!(out, "\n{}", csv_field(name));
        let _ = writeln!(out, "{}", head.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(","));
        for r in rows {
            let cells: Vec<String> = r
                .iter()
                .map(|c| match c {
                    Cell::Text(t) => csv_field(t),
                    other => other.text(),
                })
                .collect();
            let _ = writeln!(out, "{}", cells.join(","));
        }
    }
    out
}

fn sheet(ws: &mut Worksheet, head: &[String], rows: &[Vec<Cell>]) -> Result<(), XlsxError> {
    let bold = Format::new().set_bold();
    let number = Format::new().set_num_format("#,##0.000");
    let money = Format::new().set_num_format("#,##0.00");
    let percent = Format::new().set_num_format("0.0%");
    let count = Format::new().set_num_format("0");
    for (c, h) in head.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, h, &bold)?;
        ws.set_column_width(c as u16, 14)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            match cell {
                Cell::Text(t) => {
                    ws.write_string(r, c, t)?;
                }
                Cell::Num(n) => {
                    // the value itself to the meters' 0.001, as the CSV has it: a cell
                    // holding 600.5999999999999 shows right and sums wrong
                    ws.write_number_with_format(r, c, (n * 1000.0).round() / 1000.0 + 0.0, &number)?;
                }
                Cell::Yuan(fen) => {
                    ws.write_number_with_format(r, c, *fen as f64 / 100.0, &money)?;
                }
                Cell::Share(x) => {
                    ws.write_number_with_format(r, c, *x, &percent)?;
                }
                Cell::Count(n) => {
                    ws.write_number_with_format(r, c, *n as f64, &count)?;
                }
                Cell::Empty => {}
            }
        }
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

/// A drawing for its own sheet: a PNG rendered at twice its size (shown at half, sharp
/// when printed), or why it could not be drawn (said on the sheet, not left blank).
#[derive(Debug, Clone)]
pub struct Picture {
    pub sheet: &'static str,
    pub caption: String,
    pub png: Result<Vec<u8>, String>,
}

/// The ledger's tables, then `extra`, as a workbook: one sheet each; then `picture`.
pub fn to_xlsx(ledger: &Ledger, lang: Lang, extra: &[Table], picture: Option<&Picture>) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    for (name, head, rows) in tables(ledger, lang).iter().chain(extra) {
        let ws = wb.add_worksheet();
        ws.set_name(*name)?;
        sheet(ws, head, rows)?;
    }
    if let Some(p) = picture {
        let ws = wb.add_worksheet();
        ws.set_name(p.sheet)?;
        ws.write_string(0, 0, &p.caption)?;
        match &p.png {
            Ok(png) => {
                let image = rust_xlsxwriter::Image::new_from_buffer(png)?.set_scale_width(0.5).set_scale_height(0.5);
                ws.insert_image(2, 0, &image)?;
            }
            Err(why) => {
                ws.write_string(2, 0, why)?;
            }
        }
    }
    wb.save_to_buffer()
}

/// Named tables as a workbook, one sheet each, formatted as the ledger's are (a sheet
/// name is cut to Excel's 31 characters).
pub fn workbook(tables: &[NamedTable]) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    for (name, head, rows) in tables {
        let ws = wb.add_worksheet();
        ws.set_name(name.chars().take(31).collect::<String>())?;
        sheet(ws, head, rows)?;
    }
    wb.save_to_buffer()
}

pub fn write_xlsx(ledger: &Ledger, lang: Lang, extra: &[Table], path: &Path) -> Result<(), XlsxError> {
    let bytes = to_xlsx(ledger, lang, extra, None)?;
    std::fs::write(path, bytes).map_err(XlsxError::IoError)
}

/// The ledger's figures as InfluxDB line protocol (measurement `ledger`), stamped with
/// the month's start so that recomputing a month overwrites its points: one line per
/// utility (and `combined`) and one per zone.
pub fn influx_lines(ledger: &Ledger) -> String {
    let ts = i128::from(ledger.from.timestamp_millis()) * 1_000_000;
    let month = ledger.month.key();
    let mut out = String::new();
    for u in ledger.utilities.iter().chain(std::iter::once(&ledger.combined)) {
        let mut line = Line::new(&mut out, "ledger")
            .tag("site", &ledger.site)
            .tag("month", &month)
            .tag("kind", "utility")
            .tag("utility", u.utility.map_or("combined", Utility::as_str))
            .float("revenue_yuan", yuan(u.revenue_fen))
            .float("cost_yuan", yuan(u.cost_fen))
            .float("gap_yuan", yuan(u.gap_fen));
        if u.utility.is_some() {
            line = line
                .float("input", u.input)
                .float("billed", u.billed)
                .float("unbilled", u.unbilled)
                .float("losses", u.losses)
                .float("non_revenue", u.non_revenue);
        }
        if let Some(b) = u.baseline_gap_fen {
            line = line.float("baseline_gap_yuan", yuan(b));
        }
        if let Some(s) = u.status {
            line = line.string("status", s.as_str());
        }
        line.at(ts);
    }
    for z in &ledger.zones {
        Line::new(&mut out, "ledger")
            .tag("site", &ledger.site)
            .tag("month", &month)
            .tag("kind", "zone")
            .tag("utility", z.utility.as_str())
            .tag("zone", &z.zone)
            .float("input", z.balance.input)
            .float("net_input", z.net_input)
            .float("billed", z.balance.billed)
            .float("unbilled", z.balance.unbilled_metered + z.balance.unbilled_estimated)
            .float("losses", z.losses)
            .float("non_revenue", z.non_revenue)
            .at(ts);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_figures_carry_no_binary_noise_and_no_signed_zero() {
        let v = serde_json::json!({"billed": 10787.499999999976, "unbilled": -0.0, "fen": 123, "share": 0.0123456789, "list": [1.0000000001]});
        let text = String::from_utf8(super::json(&v, false).unwrap()).unwrap();
        assert_eq!(text, r#"{"billed":10787.5,"fen":123,"list":[1.0],"share":0.012346,"unbilled":0.0}"#);
    }

    #[test]
    fn a_typed_cell_is_never_a_formula_in_the_csv() {
        assert_eq!(super::csv_field("=HYPERLINK(\"http://x\",\"ok\")"), "\"'=HYPERLINK(\"\"http://x\"\",\"\"ok\"\")\"");
        assert_eq!(super::csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(super::csv_field("wang.fang"), "wang.fang");
        assert_eq!(super::csv_field("-12.5"), "-12.5");
    }
}

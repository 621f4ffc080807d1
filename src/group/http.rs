//! The group's API and page: the sites with their last contact, a month's figures per
//! site and for the group, and the alerts across sites.

use std::sync::Arc;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use maud::{html, DOCTYPE};

use super::config::GroupConfig;
use super::figures::{self, GroupMonth};
use super::store::GroupStore;
use crate::model::Month;

#[derive(Clone)]
pub struct State {
    pub cfg: Arc<GroupConfig>,
    pub store: Arc<GroupStore>,
}

pub fn routes(st: State) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/group/sites", get(sites))
        .route("/api/group/months/{month}", get(month))
        .route("/api/group/workbook/{month}", get(workbook))
        .route("/api/group/alerts", get(alerts))
        .with_state(st)
}

fn fail(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(fail(e)),
        Err(e) => Err(fail(e)),
    }
}

fn group_month(st: &State, m: &str) -> Result<GroupMonth, String> {
    let docs: Vec<(String, serde_json::Value)> =
        st.store.docs("month", Some(m)).map_err(|e| e.to_string())?.into_iter().map(|(s, _, _, d)| (s, d)).collect();
    Ok(figures::month(&st.cfg.sites, m, &docs))
}

async fn sites(axum::extract::State(st): axum::extract::State<State>) -> Response {
    let s = st.clone();
    match blocking(move || s.store.contact().map_err(|e| e.to_string())).await {
        Ok(contact) => {
            let now = Utc::now().timestamp_millis();
            let list: Vec<serde_json::Value> = st
                .cfg
                .sites
                .iter()
                .map(|site| {
                    let c = contact.iter().find(|(s, _, _)| s == site);
                    serde_json::json!({
                        "site": site,
                        "last_contact": c.and_then(|(_, ms, _)| chrono::DateTime::from_timestamp_millis(*ms)).map(|t| t.to_rfc3339()),
                        "seconds_since": c.map(|(_, ms, _)| (now - ms) / 1000),
                        "documents": c.map_or(0, |(_, _, n)| *n),
                    })
                })
                .collect();
            Json(list).into_response()
        }
        Err(r) => r,
    }
}

async fn month(axum::extract::State(st): axum::extract::State<State>, Path(m): Path<String>) -> Response {
    if Month::parse(&m).is_none() {
        return (StatusCode::BAD_REQUEST, format!("`{m}` is not a month (YYYY-MM)")).into_response();
    }
    match blocking(move || group_month(&st, &m)).await {
        Ok(g) => Json(g).into_response(),
        Err(r) => r,
    }
}

/// The month as a workbook: the group's sums and a sheet per site.
async fn workbook(axum::extract::State(st): axum::extract::State<State>, Path(m): Path<String>) -> Response {
    if Month::parse(&m).is_none() {
        return (StatusCode::BAD_REQUEST, format!("`{m}` is not a month (YYYY-MM)")).into_response();
    }
    let lang = st.cfg.lang;
    let mm = m.clone();
    match blocking(move || super::export::xlsx(&group_month(&st, &mm)?, lang).map_err(|e| e.to_string())).await {
        Ok(bytes) => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
                ),
                (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"group-{m}.xlsx\"")),
            ],
            bytes,
        )
            .into_response(),
        Err(r) => r,
    }
}

#[derive(serde::Deserialize)]
struct AlertQuery {
    active: Option<bool>,
}

async fn alerts(axum::extract::State(st): axum::extract::State<State>, Query(q): Query<AlertQuery>) -> Response {
    match blocking(move || st.store.docs("alert", None).map_err(|e| e.to_string())).await {
        Ok(docs) => {
            let mut list: Vec<serde_json::Value> = docs
                .into_iter()
                .map(|(_, _, _, d)| d)
                .filter(|d| !q.active.unwrap_or(false) || d["state"] == "active")
                .collect();
            list.sort_by(|a, b| b["start"].as_str().cmp(&a["start"].as_str()));
            Json(list).into_response()
        }
        Err(r) => r,
    }
}

/// The page: this month per site and for the group.
async fn page(axum::extract::State(st): axum::extract::State<State>) -> Response {
    let m = Utc::now().with_timezone(&st.cfg.tz).format("%Y-%m").to_string();
    let (s, mm) = (st.clone(), m.clone());
    type Seen = (GroupMonth, Vec<(String, i64, i64)>, Vec<serde_json::Value>);
    let (g, contact, active) = match blocking(move || -> Result<Seen, String> {
        let g = group_month(&s, &mm)?;
        let contact = s.store.contact().map_err(|e| e.to_string())?;
        let active = s
            .store
            .docs("alert", None)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(_, _, _, d)| d)
            .filter(|d| d["state"] == "active")
            .collect();
        Ok((g, contact, active))
    })
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = Utc::now().timestamp_millis();
    let lang = st.cfg.lang;
    let yuan = |f: Option<i64>| {
        f.map_or_else(|| lang.t("unknown", "未知").to_string(), |f| format!("{:.2}", f as f64 / 100.0))
    };
    let body = html! {
        (DOCTYPE)
        html {
            head { meta charset="utf-8"; meta name="viewport" content="width=device-width, initial-scale=1"; title { (st.cfg.name) } }
            body style="font:14px system-ui,sans-serif;margin:16px" {
                h1 { (st.cfg.name) " — " (m) }
                @if !g.missing.is_empty() {
                    p data-k="missing" style="color:#b3261e" {
                        (lang.t("Not reported this month (the group's figures are unknown until they do): ", "本月尚未上报（在其上报前集团合计未知）：")) (g.missing.join(", "))
                    }
                }
                table {
                    tr { th { (lang.t("Site", "校区")) } th { (lang.t("Fees (yuan)", "收费(元)")) } th { (lang.t("Costs (yuan)", "成本(元)")) } th { (lang.t("Gap (yuan)", "收支差(元)")) } }
                    @for s in &g.sites {
                        tr data-site=(s.site) { td { (s.site) } td { (yuan(s.money.revenue_fen)) } td { (yuan(s.money.cost_fen)) } td { (yuan(s.money.gap_fen)) } }
                    }
                    tr { th { (lang.t("Group", "集团")) } th { (yuan(g.money.revenue_fen)) } th { (yuan(g.money.cost_fen)) } th data-k="group-gap" { (yuan(g.money.gap_fen)) } }
                }
                h2 { (lang.t("Sites", "校区")) }
                table {
                    tr { th { (lang.t("Site", "校区")) } th { (lang.t("Last heard from", "最近上报")) } th { (lang.t("Active alerts", "当前报警")) } }
                    @for site in &st.cfg.sites {
                        @let c = contact.iter().find(|(s, _, _)| s == site);
                        tr data-contact=(site) {
                            td { (site) }
                            td { @match c { Some((_, ms, _)) => (format!("{} {}", (now - ms).max(0) / 60_000, lang.t("min ago", "分钟前"))), None => (lang.t("never", "从未")) } }
                            td { (active.iter().filter(|a| a["site"] == site.as_str()).count()) }
                        }
                    }
                }
                h2 { (lang.t("The three targets", "三个零增长目标")) }
                table {
                    tr { th { (lang.t("Measure", "指标")) } th { (lang.t("Period", "期间")) } th { (lang.t("This year", "本年")) } th { (lang.t("Baseline year", "基准年")) } th { (lang.t("Status", "状态")) } }
                    @for r in &g.rows {
                        tr data-measure=(r.measure) data-period=(r.period) {
                            td { code { (r.measure) } } td { code { (r.period) } }
                            td { (r.this.map_or_else(|| lang.t("unknown", "未知").to_string(), |v| if r.measure == "gap_fen" { yuan(Some(v)) } else { v.to_string() })) }
                            td { (r.baseline.map_or_else(|| lang.t("unknown", "未知").to_string(), |v| if r.measure == "gap_fen" { yuan(Some(v)) } else { v.to_string() })) }
                            td { @match r.status { Some("on track") => (lang.t("on track", "达标")), Some(_) => (lang.t("breached", "未达标")), None => (lang.t("not judged (the month is not over everywhere)", "未评定（尚有校区本月未结束）")) } }
                        }
                    }
                }
                p { a href=(format!("/api/group/workbook/{m}")) { (lang.t("The month as a workbook (a sheet per site)", "本月工作簿（每个校区一页）")) } }
            }
        }
    };
    Html(body.into_string()).into_response()
}

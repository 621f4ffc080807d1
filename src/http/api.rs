//! The API: `/api/ledger/YYYY-MM[.csv|.xlsx]`, `/api/targets/YYYY-MM`, `/api/alerts`, `POST /api/alerts/{id}/ack`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;

use super::{blocking, AppState};
use crate::model::Month;
use crate::store::Ack;
use crate::targets::MonthReport;

#[derive(Debug, serde::Deserialize)]
pub struct LedgerQuery {
    /// zh (default) or en.
    lang: Option<String>,
}

/// `/api/ledger/2026-03` (JSON), `/api/ledger/2026-03.csv`, `/api/ledger/2026-03.xlsx`.
pub(super) async fn ledger(
    State(st): State<Arc<AppState>>,
    Path(month): Path<String>,
    Query(q): Query<LedgerQuery>,
) -> Response {
    let (name, ext) = match month.rsplit_once('.') {
        Some((n, e)) => (n.to_string(), e.to_string()),
        None => (month.clone(), "json".to_string()),
    };
    let lang = match q.lang.as_deref().map(crate::lang::Lang::parse).transpose() {
        Ok(l) => l.unwrap_or_default(),
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    if !matches!(ext.as_str(), "json" | "csv" | "xlsx") {
        return (StatusCode::NOT_FOUND, format!("unknown format `.{ext}`: use .json, .csv or .xlsx\n")).into_response();
    }
    let Some(month) = Month::parse(&name) else {
        return (StatusCode::BAD_REQUEST, format!("`{name}` is not a month: use YYYY-MM\n")).into_response();
    };
    if st.config.topology.zones.is_empty() {
        return (StatusCode::NOT_FOUND, "no [[zones]] are configured: there is no ledger\n").into_response();
    }
    // computed and rendered in the one ledger slot, off the async workers
    let _slot = match st.ledger_permit().await {
        Ok(p) => p,
        Err(busy) => return busy,
    };
    let st2 = st.clone();
    let format = ext.clone();
    let rendered = blocking(move || {
        let l = MonthReport::from_store(&st2.config.targets_spec(), &st2.store, month).map_err(|e| e.to_string())?;
        match format.as_str() {
            "csv" => Ok(l.csv(lang).into_bytes()),
            "xlsx" => l.xlsx(lang).map_err(|e| e.to_string()),
            _ => crate::ledger::export::json(&l, false).map_err(|e| e.to_string()),
        }
    })
    .await;
    let body = match rendered {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (ctype, disposition) = match ext.as_str() {
        "csv" => ("text/csv; charset=utf-8", None),
        "xlsx" => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Some(format!("attachment; filename=\"ledger-{name}.xlsx\"")),
        ),
        _ => ("application/json", None),
    };
    match disposition {
        Some(d) => {
            ([(header::CONTENT_TYPE, ctype.to_string()), (header::CONTENT_DISPOSITION, d)], body).into_response()
        }
        None => ([(header::CONTENT_TYPE, ctype.to_string())], body).into_response(),
    }
}

/// `/api/targets/2026-03`: the three zero-growth targets for the month and the year to
/// date (JSON).
pub(super) async fn targets(State(st): State<Arc<AppState>>, Path(month): Path<String>) -> Response {
    let Some(month) = Month::parse(&month) else {
        return (StatusCode::BAD_REQUEST, format!("`{month}` is not a month: use YYYY-MM\n")).into_response();
    };
    let _slot = match st.ledger_permit().await {
        Ok(p) => p,
        Err(busy) => return busy,
    };
    let st2 = st.clone();
    let computed = blocking(move || {
        if st2.config.topology.zones.is_empty() {
            // no ledger: safety and service only
            return crate::targets::from_store(&st2.config.targets_spec(), &st2.store, month, None, Utc::now())
                .map_err(crate::ledger::book::BookError::from);
        }
        MonthReport::from_store(&st2.config.targets_spec(), &st2.store, month).map(|r| r.targets)
    })
    .await;
    match computed {
        Ok(t) => match crate::ledger::export::json(&t, false) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        },
        Err(r) => r,
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct AlertsQuery {
    active: Option<bool>,
    lang: Option<String>,
}

/// `/api/alerts[?active=true][&lang=en]`: alerts, newest first, as JSON; labels and
/// evidence in the site's language unless `lang` asks for the other.
pub(super) async fn alerts(State(st): State<Arc<AppState>>, Query(q): Query<AlertsQuery>) -> Response {
    let st2 = st.clone();
    let mut voice = st.config.site.voice();
    if let Some(l) = q.lang.as_deref().and_then(|l| crate::lang::Lang::parse(l).ok()) {
        voice.lang = l;
    }
    let rows = blocking(move || st2.store.alerts(q.active.unwrap_or(false))).await;
    match rows {
        Ok(rows) => {
            let site = crate::alerts::deliver::Speaker {
                site: &st.config.site.name,
                voice,
                page: st.config.alerts.page_url.as_deref(),
            };
            let parent_of = |z: &str| st.config.topology.zone(z).and_then(|z| z.parent.clone());
            let caused = crate::alerts::group::causes(&rows, &parent_of);
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|a| {
                    let mut v = crate::alerts::deliver::json(a, site);
                    v["caused_by"] = serde_json::json!(caused.get(&a.id));
                    v
                })
                .collect();
            Json(list).into_response()
        }
        Err(r) => r,
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct AckQuery {
    by: Option<String>,
}

/// `POST /api/alerts/{id}/ack?by=NAME`, with the gateway's bearer token.
pub(super) async fn ack(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<AckQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Some(r) = super::refusal(&st, &headers) {
        return r;
    }
    let Ok(id) = id.parse::<i64>() else {
        return (StatusCode::BAD_REQUEST, format!("`{id}` is not an alert id\n")).into_response();
    };
    let Some(by) = q.by.filter(|b| !b.trim().is_empty()) else {
        return (StatusCode::BAD_REQUEST, "say who acknowledges: ?by=NAME\n").into_response();
    };
    let by = match crate::untrusted::typed("by", &by, crate::untrusted::NAME_MAX) {
        Ok(b) => b.to_string(),
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let who = by.clone();
    let acked = blocking(move || st.store.ack_alert(id, &who, Utc::now())).await;
    match acked {
        Ok(Ack::Done) => (StatusCode::OK, format!("alert #{id} acknowledged by {by}\n")).into_response(),
        Ok(Ack::AlreadyAcknowledged(first)) => (
            StatusCode::OK,
            format!(
                "alert #{id} was already acknowledged by {}; nothing changed\n",
                crate::untrusted::shown(&first, crate::untrusted::NAME_MAX)
            ),
        )
            .into_response(),
        Ok(Ack::Cleared) => {
            (StatusCode::CONFLICT, format!("alert #{id} has cleared; there is nothing to acknowledge\n"))
                .into_response()
        }
        Ok(Ack::NoSuchAlert) => (StatusCode::NOT_FOUND, format!("no alert #{id}\n")).into_response(),
        Err(r) => r,
    }
}

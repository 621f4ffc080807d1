//! The gateway's own page: overview, network map, alerts, ledger and the zero-growth
//! view, in Chinese and English. Server-rendered (maud), styles and charts inline (SVG):
//! no CDN, no external font, nothing fetched — it works on a pump-house network without
//! internet. Every figure it shows comes from the same code as the API, and carries a
//! `data-k` attribute naming it, so that a test can compare the two.

mod assets;
mod charts;
mod element;
mod map;
mod views;

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::AppState;

pub use crate::lang::Lang;

/// The page's language: `?lang=` (the switch in the header) first, then the site's
/// `[site] language`. The browser's preference does not decide: a team on English
/// Windows still reads the site's language unless someone switches.
pub fn pick_lang(query: Option<&str>, site: Lang) -> Lang {
    query.and_then(|q| Lang::parse(q).ok()).unwrap_or(site)
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    pub lang: Option<String>,
    pub month: Option<String>,
    pub zone: Option<String>,
    pub note: Option<String>,
}

const STYLE: &str = r#"
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","Microsoft YaHei",sans-serif;color:#1d2733;background:#f4f6f8}
header{background:#14324a;color:#fff;padding:10px 20px;display:flex;gap:18px;align-items:baseline;flex-wrap:wrap}
header b{font-size:17px}header a{color:#cfe3f5;text-decoration:none}header a.on{color:#fff;border-bottom:2px solid #6cc3ff}
header .lang{margin-left:auto}main{padding:16px 20px;max-width:1280px}
h1{font-size:19px;margin:4px 0 12px}h2{font-size:16px;margin:18px 0 8px}
table{border-collapse:collapse;background:#fff;margin-bottom:12px;min-width:50%}th,td{padding:4px 9px;border-bottom:1px solid #e3e7eb;text-align:left;vertical-align:top}
th{background:#eef2f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1b7a3a}.warn{color:#a86400}.bad{color:#b3261e;font-weight:600}.muted{color:#67737f}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:10px}.card{background:#fff;border:1px solid #dde3e8;border-radius:6px;padding:10px 14px;min-width:180px}
.card .v{font-size:20px;font-weight:600}.note{background:#fff8e1;border:1px solid #f0d58a;padding:8px 12px;margin:8px 0}
form.inline{display:inline}input,select,button{font:inherit}button{cursor:pointer}
.tree li{margin:2px 0}.wide{overflow-x:auto;max-width:100%}.map{overflow-x:auto}
@media (max-width:700px){main{padding:10px}table{display:block;overflow-x:auto;max-width:100%}.map svg.schematic{max-width:none!important}}
@media print{header,form{display:none}body{background:#fff}.map{overflow:visible}.map svg.schematic{max-width:100%!important}}code{font:inherit;color:#3b4a59}svg text{font:11px system-ui,sans-serif}
"#;

fn nav(lang: Lang, on: &str) -> Markup {
    let pages: [(&str, &str, &str); 5] = [
        ("/", "Overview", "概览"),
        ("/network", "Network map", "管网分区"),
        ("/alerts", "Alerts", "报警"),
        ("/ledger", "Ledger", "台账"),
        ("/targets", "Zero-growth targets", "零增长目标"),
    ];
    html! {
        header {
            b { "Pumphouse" }
            @for (href, en, zh) in pages {
                a class=(if href == on { "on" } else { "" }) href=(format!("{href}?lang={}", lang.code())) { (lang.t(en, zh)) }
            }
            span.lang {
                a href=(format!("{on}?lang=zh")) { "中文" } " · " a href=(format!("{on}?lang=en")) { "English" }
            }
        }
    }
}

pub(crate) fn layout(lang: Lang, on: &str, title: &str, body: Markup) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang=(lang.t("en", "zh-CN")) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Pumphouse" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (nav(lang, on))
                main { h1 { (title) } (body) }
            }
        }
    };
    Html(page.into_string()).into_response()
}

fn error_page(lang: Lang, on: &str, message: String) -> Response {
    let mut r = layout(lang, on, lang.t("Cannot show this page", "无法显示此页"), html! { p.bad { (message) } });
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(overview))
        .route("/network", get(network))
        .route("/device/{name}", get(device))
        .route("/alerts", get(alerts))
        .route("/alerts/{id}/ack", post(ack))
        .route("/ledger", get(ledger))
        .route("/targets", get(targets))
}

/// Renders a view on the blocking pool inside the layout. The ledger's pages (`slot`)
/// wait for the one ledger slot first: each reads a month of every meter.
async fn show<E: std::fmt::Display + Send + 'static>(
    st: Arc<AppState>,
    lang: Lang,
    slot: bool,
    on: &'static str,
    title: impl Into<String>,
    view: impl FnOnce(&AppState) -> Result<Result<Markup, String>, E> + Send + 'static,
) -> Response {
    let _slot = if slot {
        match st.ledger_permit().await {
            Ok(permit) => Some(permit),
            Err(busy) => return busy,
        }
    } else {
        None
    };
    let st2 = st.clone();
    match super::blocking(move || view(&st2)).await {
        Ok(Ok(body)) => layout(lang, on, &title.into(), body),
        Ok(Err(message)) => error_page(lang, on, message),
        Err(r) => r,
    }
}

async fn overview(State(st): State<Arc<AppState>>, Query(q): Query<PageQuery>) -> Response {
    let lang = pick_lang(q.lang.as_deref(), st.config.site.language);
    show(st, lang, false, "/", lang.t("Overview", "概览"), move |st| views::overview(st, lang).map(Ok)).await
}

async fn network(State(st): State<Arc<AppState>>, Query(q): Query<PageQuery>) -> Response {
    let lang = pick_lang(q.lang.as_deref(), st.config.site.language);
    let title = lang.t("Network map", "管网分区");
    show(st, lang, true, "/network", title, move |st| views::network(st, lang, q.zone.as_deref()).map(Ok)).await
}

/// A device's page (opened from the map); 404 for a device not configured.
async fn device(State(st): State<Arc<AppState>>, Path(name): Path<String>, Query(q): Query<PageQuery>) -> Response {
    let lang = pick_lang(q.lang.as_deref(), st.config.site.language);
    if st.config.device(&name).is_none() {
        let mut r = layout(
            lang,
            "/network",
            lang.t("No such device", "无此设备"),
            html! { p.bad { (lang.t("No device of that name is configured: ", "配置中没有这个设备：")) code { (name) } } },
        );
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    }
    let title = format!("{} {name}", lang.t("Device", "设备"));
    show(st, lang, false, "/network", title, move |st| {
        element::device(st, lang, &name).map(|m| m.ok_or_else(|| "no such device".to_string()))
    })
    .await
}

async fn alerts(State(st): State<Arc<AppState>>, Query(q): Query<PageQuery>) -> Response {
    let lang = pick_lang(q.lang.as_deref(), st.config.site.language);
    show(st, lang, false, "/alerts", lang.t("Alerts", "报警"), move |st| {
        views::alerts(st, lang, q.note.as_deref()).map(Ok)
    })
    .await
}

#[derive(Debug, serde::Deserialize)]
pub struct AckForm {
    by: Option<String>,
    token: Option<String>,
    lang: Option<String>,
}

/// The page's acknowledge form: the same token check as the API, then back to the list
/// with what happened.
async fn ack(State(st): State<Arc<AppState>>, Path(id): Path<i64>, Form(f): Form<AckForm>) -> Response {
    let lang = pick_lang(f.lang.as_deref(), st.config.site.language);
    let mut headers = HeaderMap::new();
    if let Ok(v) = format!("Bearer {}", f.token.unwrap_or_default()).parse() {
        headers.insert(header::AUTHORIZATION, v);
    }
    let back = |note: &str| {
        let enc: String = note
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        Redirect::to(&format!("/alerts?lang={}&note={enc}", lang.code())).into_response()
    };
    if super::refusal(&st, &headers).is_some() {
        return back(
            lang.t("Not acknowledged: the token is wrong or writes are off.", "未确认：令牌不对，或未开启写入。"),
        );
    }
    let Some(by) = f.by.filter(|b| !b.trim().is_empty()) else {
        return back(lang.t("Not acknowledged: say who acknowledges.", "未确认：请填写确认人。"));
    };
    let who = by.clone();
    match super::blocking(move || st.store.ack_alert(id, &who, chrono::Utc::now())).await {
        Ok(crate::store::Ack::Done) => back(&format!("#{id} {} {by}", lang.t("acknowledged by", "已确认，确认人"))),
        Ok(crate::store::Ack::AlreadyAcknowledged(first)) => {
            back(&format!("#{id} {} {first}", lang.t("was already acknowledged by", "此前已由其确认：")))
        }
        Ok(crate::store::Ack::Cleared) => back(&format!("#{id} {}", lang.t("has cleared", "已恢复，无需确认"))),
        Ok(crate::store::Ack::NoSuchAlert) => back(&format!("#{id} ?")),
        Err(r) => r,
    }
}

async fn ledger(State(st): State<Arc<AppState>>, Query(q): Query<PageQuery>) -> Response {
    let lang = pick_lang(q.lang.as_deref(), st.config.site.language);
    let title = lang.t("Monthly ledger", "月度台账");
    show(st, lang, true, "/ledger", title, move |st| views::ledger(st, lang, q.month.as_deref())).await
}

async fn targets(State(st): State<Arc<AppState>>, Query(q): Query<PageQuery>) -> Response {
    let lang = pick_lang(q.lang.as_deref(), st.config.site.language);
    let title = lang.t("Zero-growth targets", "零增长目标");
    show(st, lang, true, "/targets", title, move |st| views::targets(st, lang).map(Ok)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_follows_the_switch_then_the_site() {
        assert_eq!(pick_lang(None, Lang::Zh), Lang::Zh);
        assert_eq!(pick_lang(None, Lang::En), Lang::En);
        assert_eq!(pick_lang(Some("zh"), Lang::En), Lang::Zh);
        assert_eq!(pick_lang(Some("en"), Lang::Zh), Lang::En);
        assert_eq!(pick_lang(Some("fr"), Lang::En), Lang::En, "an unknown code changes nothing");
    }
}

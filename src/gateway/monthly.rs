//! The monthly ledger by itself: with `[ledger] export_dir` set, the running gateway
//! writes the previous month's ledger (XLSX and CSV, in `[ledger] language`) on the 1st,
//! marked preliminary, and again when the month is frozen (final); it announces each on
//! MQTT (retained, `{prefix}/{site}/ledger/{YYYY-MM}`) and on the webhook with the
//! headline — the gap per utility, its change against the baseline, the status.
//!
//! Nothing is written or announced twice for the same month and state (the store keeps
//! what was done); a write or an announcement that fails is tried again on the next pass,
//! and the failure shows in `/healthz` meanwhile.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::alerts::deliver;
use crate::config::Config;
use crate::http::JobHealth;
use crate::ledger::export::{self, yuan_text as yuan, Lang};
use crate::ledger::month::{Depth, Ledger};
use crate::ledger::{book, topology::Utility};
use crate::model::Month;
use crate::store::{ExportState, Store};

/// A month's files as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub month: Month,
    pub state: ExportState,
    pub files: Vec<PathBuf>,
}

fn file_stem(month: Month, state: ExportState) -> String {
    match state {
        ExportState::Preliminary => format!("ledger-{month}-preliminary"),
        ExportState::Final => format!("ledger-{month}"),
    }
}

/// Writes `bytes` to `path` through a temporary file, so that a reader never sees half a
/// ledger.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Writes what is due at `now`: last month's preliminary ledger once the month is over,
/// its final ledger once it is frozen. Returns what it wrote.
pub fn write_due(cfg: &Config, store: &Store, now: DateTime<Utc>) -> anyhow::Result<Vec<Written>> {
    let Some(dir) = &cfg.ledger.export_dir else { return Ok(Vec::new()) };
    let Some(last) = Month::containing(now, cfg.site.timezone).and_then(Month::prev) else { return Ok(Vec::new()) };
    let done = store.exports()?;
    let has = |s: ExportState| done.iter().any(|e| e.month == last && e.state == s);
    let frozen = store.is_frozen(last)?;
    let due = if has(ExportState::Final) {
        None
    } else if frozen {
        Some(ExportState::Final)
    } else if has(ExportState::Preliminary) {
        None
    } else {
        Some(ExportState::Preliminary)
    };
    let Some(state) = due else { return Ok(Vec::new()) };
    let report = crate::targets::MonthReport::from_store(&cfg.targets_spec(), store, last)?;
    let stem = file_stem(last, state);
    let xlsx = dir.join(format!("{stem}.xlsx"));
    let csv = dir.join(format!("{stem}.csv"));
    write_atomically(&xlsx, &report.xlsx(cfg.ledger.language)?)?;
    write_atomically(&csv, report.csv(cfg.ledger.language).as_bytes())?;
    store.export_written(last, state, now)?;
    tracing::info!(month = %last, state = state.as_str(), dir = %dir.display(), "monthly ledger written");
    Ok(vec![Written { month: last, state, files: vec![xlsx, csv] }])
}

/// The announcement: a title, a markdown text and the JSON payload.
pub fn headline(l: &Ledger, state: ExportState, lang: Lang) -> (String, String, serde_json::Value) {
    let t = |en: &'static str, zh: &'static str| if lang == Lang::En { en } else { zh };
    let state_word = match state {
        ExportState::Preliminary => t("preliminary", "初步"),
        ExportState::Final => t("final", "终版"),
    };
    let title = format!("{} {} {} ({state_word})", l.site, l.month, t("ledger", "月度台账"));
    let mut text = format!("### {title}\n");
    let mut rows = Vec::new();
    for u in l.utilities.iter().chain(std::iter::once(&l.combined)) {
        let name = export::utility_label(lang, u.utility);
        let status = export::status_label(lang, u.status);
        let change = u.gap_change_fen.map(|c| format!(", {} {}", t("change", "变化"), yuan(c))).unwrap_or_default();
        text.push_str(&format!(
            "- {name}: {} {}{change} {}\n",
            t("gap", "收支差额"),
            yuan(u.gap_fen),
            if status.is_empty() { String::new() } else { format!("({status})") }
        ));
        rows.push(serde_json::json!({
            "utility": u.utility.map_or("combined", Utility::as_str),
            "gap_yuan": u.gap_fen as f64 / 100.0,
            "baseline_gap_yuan": u.baseline_gap_fen.map(|b| b as f64 / 100.0),
            "change_yuan": u.gap_change_fen.map(|c| c as f64 / 100.0),
            "status": u.status.map(|s| s.as_str()),
        }));
    }
    if !l.notes.is_empty() {
        text.push_str(&format!("- {}: {}\n", t("notes", "说明"), crate::lang::Text::join(&l.notes, lang)));
    }
    let payload = serde_json::json!({
        "site": l.site, "month": l.month, "state": state.as_str(), "utilities": rows, "notes": l.notes,
    });
    (title, text, payload)
}

/// Announces every written ledger not yet confirmed by MQTT and the webhook. The store
/// work runs on the blocking pool.
pub async fn announce(cfg: std::sync::Arc<Config>, store: std::sync::Arc<Store>) -> Result<(), String> {
    type Prepared = Vec<(crate::store::ExportRow, String, String, serde_json::Value)>;
    let (c, s) = (cfg.clone(), store.clone());
    let prepared = tokio::task::spawn_blocking(move || -> Result<Prepared, String> {
        let mut out = Vec::new();
        for e in s.exports().map_err(|e| e.to_string())? {
            if (c.mqtt.is_some() && !e.mqtt_done) || (c.alerts.webhook_url.is_some() && !e.webhook_done) {
                let l = book::month_ledger(&c.ledger_spec(), &s, e.month, Depth::Full).map_err(|e| e.to_string())?;
                let (title, text, payload) = headline(&l, e.state, c.ledger.language);
                out.push((e, title, text, payload));
            }
        }
        Ok(out)
    })
    .await
    .map_err(|e| e.to_string())??;
    let record = |month: Month, state: ExportState, mqtt: bool| {
        let s = store.clone();
        async move {
            tokio::task::spawn_blocking(move || s.export_announced(month, state, mqtt, Utc::now()))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        }
    };
    let mut problems = Vec::new();
    for (e, title, text, payload) in prepared {
        if let (Some(m), false) = (&cfg.mqtt, e.mqtt_done) {
            let topic = format!("{}/{}/ledger/{}", m.prefix, cfg.site.name, e.month);
            let sent = match crate::sinks::mqtt::OneShot::connect(m, "ledger").await {
                Ok(mut c) => {
                    let ok = c.publish(&topic, payload.to_string(), true).await;
                    c.close().await;
                    ok
                }
                Err(err) => {
                    problems.push(format!("MQTT: {err}"));
                    false
                }
            };
            if sent {
                record(e.month, e.state, true).await?;
            } else {
                problems.push(format!("the broker did not confirm the {} ledger of {}", e.state.as_str(), e.month));
            }
        }
        if let (Some(url), false) = (&cfg.alerts.webhook_url, e.webhook_done) {
            let body = cfg.alerts.webhook_format.message(&title, &text, || payload.clone());
            let http = deliver::client().map_err(|e| e.to_string())?;
            match deliver::post(&http, url, &body, cfg.alerts.webhook_format).await {
                Ok(()) => record(e.month, e.state, false).await?,
                Err(why) => problems.push(format!("webhook: {why}")),
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// One pass: write what is due, announce what is not confirmed, and say what failed.
pub async fn pass(cfg: std::sync::Arc<Config>, store: std::sync::Arc<Store>, health: std::sync::Arc<JobHealth>) {
    if !super::jobs::clock_set(Utc::now(), "the monthly ledger") {
        return;
    }
    let (c, s) = (cfg.clone(), store.clone());
    let written = tokio::task::spawn_blocking(move || write_due(&c, &s, Utc::now())).await;
    let mut problem = match written {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("cannot write the monthly ledger: {e:#}")),
        Err(e) => Some(format!("the monthly ledger pass ended abnormally: {e}")),
    };
    if let Err(e) = announce(cfg, store).await {
        problem.get_or_insert(format!("cannot announce the monthly ledger: {e}"));
    }
    if let Some(p) = &problem {
        tracing::warn!(problem = %p, "monthly ledger; retrying on the next pass");
    }
    health.set(problem);
}

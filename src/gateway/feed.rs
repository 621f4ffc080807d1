//! What the gateway publishes for the group service (`pumphouse group`): each month's
//! ledger figures and three targets, its alert records, and each day's zone volumes — JSON
//! documents with a schema version (`docs/group-feed.md`), retained, QoS 1, on
//! `{prefix}/{site}/group/v1/{month|alert|day}/{key}`.
//!
//! A document goes out when it changed (the store keeps each topic's digest), and every
//! document goes out again after a restart and after a pass that failed: a group service
//! that starts late, or a broker that lost a node, gets everything again. A document is
//! marked sent only on its PubAck.
//!
//! Months from the earliest on record (and at least from January of last year; the
//! baseline year's same periods are each target row's own) to this one, those with no
//! readings skipped; days of this month and the last; every alert on record.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::Config;
use crate::ledger::month::{Depth, Ledger};
use crate::model::Month;
use crate::store::{AlertRow, Store};

/// The documents' schema, in every body; a change that breaks readers gets a new one and
/// a new topic level.
pub const SCHEMA: &str = "pumphouse.group/1";

/// One document: where it goes, what it says, and whether it is final (a frozen month
/// and its days, published once unless all are sent again).
#[derive(Debug, Clone)]
pub struct Doc {
    pub topic: String,
    pub body: Value,
    pub fixed: bool,
}

impl Doc {
    pub fn digest(&self) -> i64 {
        let mut h = std::hash::DefaultHasher::new();
        self.body.to_string().hash(&mut h);
        // the store keeps a signed 64-bit integer
        h.finish() as i64
    }
}

fn topic(prefix: &str, site: &str, kind: &str, key: &str) -> String {
    format!("{prefix}/{site}/group/v1/{kind}/{key}")
}

/// A utility's volumes and money. A utility without `[[costs]]` has no known cost, so
/// no known gap: `null`, never 0 (a group summing it would take a smaller sum for known).
fn money(u: &crate::ledger::month::UtilityRow) -> Value {
    let known = |v: i64| u.cost_configured.then_some(v);
    json!({
        "utility": u.utility.map(|u| u.as_str()),
        "input": u.input, "billed": u.billed, "losses": u.losses, "non_revenue": u.non_revenue,
        "revenue_fen": u.revenue_fen, "cost_fen": known(u.cost_fen), "gap_fen": known(u.gap_fen),
        "baseline_gap_fen": u.baseline_gap_fen.filter(|_| u.cost_configured),
    })
}

/// A month's figures: money per utility and combined, each zone's water balance, and
/// the three targets' rows (this period, the baseline year's same period).
pub fn month_doc(prefix: &str, l: &Ledger, t: &crate::targets::Targets, frozen: bool) -> Doc {
    let costed = |utility| l.utilities.iter().any(|u| u.utility == Some(utility) && u.cost_configured);
    let zones: Vec<Value> = l
        .zones
        .iter()
        .map(|z| {
            json!({
                "zone": z.zone, "utility": z.utility.as_str(), "parent": z.parent,
                "net_input": z.net_input, "billed": z.balance.billed, "non_revenue": z.non_revenue,
                "non_revenue_share": z.non_revenue_share, "gap_fen": costed(z.utility).then_some(z.gap_fen),
            })
        })
        .collect();
    let rows: Vec<Value> = t
        .rows
        .iter()
        .map(|r| json!({"target": r.target, "measure": r.measure, "period": r.period, "this": r.this, "baseline": r.baseline}))
        .collect();
    let body = json!({
        "schema": SCHEMA, "kind": "month", "site": l.site, "month": l.month.key(),
        "frozen": frozen, "complete": t.complete,
        "utilities": l.utilities.iter().map(money).collect::<Vec<_>>(),
        "combined": money(&l.combined),
        "zones": zones,
        "targets": rows,
        "incidents": t.incidents.len(), "interruptions": t.interruptions.len(),
        "notes": l.notes.iter().chain(&t.notes).collect::<Vec<_>>(),
    });
    Doc { topic: topic(prefix, &l.site, "month", &l.month.key()), body, fixed: frozen }
}

/// Each local day of the month so far: every zone's net input, billed and the rest.
pub fn day_docs(
    prefix: &str,
    l: &Ledger,
    topology: &crate::ledger::topology::Topology,
    tz: chrono_tz::Tz,
    frozen: bool,
    now: DateTime<Utc>,
) -> Vec<Doc> {
    let mut out = Vec::new();
    for (d, a, b) in l.month.local_days(tz).take_while(|(_, a, _)| *a <= now) {
        let zones: Vec<Value> = l
            .zone_volumes_between(topology, a, b)
            .into_iter()
            .map(|z| json!({"zone": z.zone, "utility": z.utility.as_str(), "net_input": z.net_input, "billed": z.billed, "non_revenue": z.non_revenue}))
            .collect();
        let key = d.format("%Y-%m-%d").to_string();
        let body =
            json!({"schema": SCHEMA, "kind": "day", "site": l.site, "day": key, "complete": b <= now, "zones": zones});
        out.push(Doc { topic: topic(prefix, &l.site, "day", &key), body, fixed: frozen });
    }
    out
}

/// An alert record as the other destinations carry it, with the schema.
pub fn alert_doc(prefix: &str, site: &str, a: &AlertRow, voice: crate::alerts::said::Voice) -> Doc {
    let mut body = crate::alerts::message::json(a, crate::alerts::message::Speaker { site, voice, page: None });
    if let Some(o) = body.as_object_mut() {
        o.insert("schema".into(), SCHEMA.into());
        o.insert("kind".into(), "alert".into());
    }
    Doc { topic: topic(prefix, site, "alert", &a.id.to_string()), body, fixed: false }
}

/// Every document due: months from January of last year to now (a frozen month already
/// sent as such is skipped unless `all`), their days for this month and the last, and
/// every alert.
pub fn documents(
    cfg: &Config,
    store: &Store,
    now: DateTime<Utc>,
    all: bool,
    sent: &HashMap<String, crate::store::FeedSent>,
) -> anyhow::Result<Vec<Doc>> {
    let Some(m) = &cfg.mqtt else { return Ok(Vec::new()) };
    let (prefix, site, tz) = (&m.prefix, &*cfg.site.name, cfg.site.timezone);
    let mut out = Vec::new();
    let Some(this) = Month::containing(now, tz) else { return Ok(out) };
    // from the earliest month on record (frozen, or with readings held), and at least
    // from January of last year
    let january = this.back(chrono::Datelike::month0(&now.with_timezone(&tz)) + 12);
    let oldest = store.oldest_ts()?.and_then(|t| Month::containing(t, tz));
    let first = [january, oldest, store.first_frozen()?].into_iter().flatten().min();
    let spec = cfg.targets_spec();
    for month in first.into_iter().flat_map(Month::iter_from).take_while(|m| *m <= this) {
        let key = topic(prefix, site, "month", &month.key());
        // a final month is computed again only when it was frozen again since it was sent
        // (a correction, a late import) or a day has passed (late alerts change its
        // counts); only a changed document goes out
        if let Some(s) = sent.get(&key).filter(|s| s.fixed && !all) {
            let refrozen = store.frozen_at(month)?.is_some_and(|at| at > s.sent_ms);
            if !refrozen && now.timestamp_millis() - s.sent_ms < 86_400_000 {
                continue;
            }
        }
        let frozen = store.is_frozen(month)?;
        let l = crate::ledger::book::month_ledger(&spec.ledger, store, month, Depth::Full)?;
        if !frozen && l.meters.iter().all(|m| m.coverage.is_none_or(|c| c <= 0.0)) {
            continue; // nothing read that month: no document, rather than one of zeros
        }
        let t = crate::targets::from_store(&spec, store, month, Some(&l), now)?;
        out.push(month_doc(prefix, &l, &t, frozen));
        if month >= this.back(1).unwrap_or(this) {
            out.extend(day_docs(prefix, &l, &cfg.topology, tz, frozen, now));
        }
    }
    let voice = crate::alerts::said::Voice::new(cfg.site.language, tz);
    for a in store.alerts(false)? {
        out.push(alert_doc(prefix, site, &a, voice));
    }
    Ok(out)
}

/// What a pass sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub documents: usize,
    pub bytes: usize,
}

/// One pass: publishes what changed (everything when `all`), each marked sent on its
/// PubAck. Returns what went out; an error leaves the rest for the next pass.
/// `suffix` keeps the client id apart from the running gateway's (`group`) when run by
/// hand (`group-once`): one id on two connections makes the broker drop one.
pub async fn publish(
    cfg: std::sync::Arc<Config>,
    store: std::sync::Arc<Store>,
    all: bool,
    suffix: &str,
) -> Result<Sent, String> {
    let Some(m) = cfg.mqtt.clone() else { return Ok(Sent::default()) };
    let (c, s) = (cfg.clone(), store.clone());
    let docs = tokio::task::spawn_blocking(move || -> Result<Vec<Doc>, String> {
        let sent = s.feed_sent().map_err(|e| e.to_string())?;
        let docs = documents(&c, &s, Utc::now(), all, &sent).map_err(|e| format!("{e:#}"))?;
        Ok(docs.into_iter().filter(|d| all || sent.get(&d.topic).is_none_or(|s| s.digest != d.digest())).collect())
    })
    .await
    .map_err(|e| e.to_string())??;
    if docs.is_empty() {
        return Ok(Sent::default());
    }
    let mut conn = crate::sinks::mqtt::OneShot::connect(&m, suffix).await.map_err(|e| format!("MQTT: {e}"))?;
    let mut done = Vec::new();
    let mut failed = None;
    let mut bytes = 0;
    let published = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for d in &docs {
        // when it was sent, for the group's "last heard from"; outside the digest
        let mut b = d.body.clone();
        if let Some(o) = b.as_object_mut() {
            o.insert("published".into(), published.clone().into());
        }
        let body = b.to_string();
        let len = body.len();
        if conn.publish(&d.topic, body, true).await {
            bytes += len;
            done.push((d.topic.clone(), d.digest(), d.fixed));
        } else {
            failed = Some(format!("the broker did not confirm {}", d.topic));
            break;
        }
    }
    conn.close().await;
    let n = done.len();
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.feed_mark(&done))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    match failed {
        Some(f) => Err(format!("{f} ({n} of {} sent)", docs.len())),
        None => Ok(Sent { documents: n, bytes }),
    }
}

/// The running gateway's pass: everything when `all` is set (the first pass, or the last
/// one failed), else what changed.
pub async fn pass(
    cfg: std::sync::Arc<Config>,
    store: std::sync::Arc<Store>,
    all: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    if !super::jobs::clock_set(Utc::now(), "the group feed") {
        return;
    }
    match publish(cfg, store, all.load(Ordering::Relaxed), "group").await {
        Ok(sent) => {
            all.store(false, Ordering::Relaxed);
            if sent.documents > 0 {
                tracing::info!(documents = sent.documents, bytes = sent.bytes, "group feed published");
            }
        }
        Err(e) => {
            all.store(true, Ordering::Relaxed);
            tracing::warn!(problem = %e, "group feed; everything again on the next pass");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::month::UtilityRow;

    fn row(cost_configured: bool) -> UtilityRow {
        UtilityRow {
            utility: Some(crate::ledger::topology::Utility::Water),
            unit: "m³",
            input: 1_000.0,
            billed: 850.0,
            unbilled: 20.0,
            losses: 130.0,
            non_revenue: 150.0,
            non_revenue_share: Some(0.15),
            revenue_fen: 263_500,
            cost_fen: if cost_configured { 110_000 } else { 0 },
            gap_fen: if cost_configured { -153_500 } else { -263_500 },
            baseline_gap_fen: Some(-140_000),
            gap_change_fen: None,
            status: None,
            baseline_source: None,
            effects: None,
            cost_configured,
        }
    }

    #[test]
    fn a_cost_not_configured_is_sent_as_unknown_not_as_zero() {
        let m = money(&row(false));
        assert_eq!(
            (m["revenue_fen"].as_i64(), m["cost_fen"].is_null(), m["gap_fen"].is_null()),
            (Some(263_500), true, true)
        );
        assert!(m["baseline_gap_fen"].is_null(), "{m}");
        let m = money(&row(true));
        assert_eq!((m["cost_fen"].as_i64(), m["gap_fen"].as_i64()), (Some(110_000), Some(-153_500)));
        assert_eq!(m["baseline_gap_fen"].as_i64(), Some(-140_000));
    }

    #[test]
    fn a_digest_follows_the_content_only() {
        let d = |v: Value| Doc { topic: "t".into(), body: v, fixed: false }.digest();
        assert_eq!(d(json!({"a": 1})), d(json!({"a": 1})));
        assert_ne!(d(json!({"a": 1})), d(json!({"a": 2})));
    }
}

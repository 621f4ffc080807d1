//! `pumphouse alerts evaluate | list | ack`.

use anyhow::bail;
use chrono::{DateTime, TimeZone, Utc};

use crate::alerts::said::{self, Voice};
use crate::config::Config;
use crate::store::{Ack, AlertRow};

/// `pumphouse alerts evaluate`.
pub fn alerts_evaluate(cfg: &Config, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> anyhow::Result<String> {
    let store = super::open_store(cfg, true)?;
    let (Some(oldest), Some(newest)) = (store.oldest_ts()?, store.newest_ts()?) else {
        return Ok("no readings\n".into());
    };
    let from = from.unwrap_or(oldest);
    let to = to.unwrap_or(newest + chrono::TimeDelta::milliseconds(1));
    let changed = crate::alerts::evaluate::record(&cfg.alert_spec(), &store, from, to)?;
    let v = cfg.site.voice();
    let (n, a, b) = (changed.len(), v.time(from.timestamp_millis()), v.time(to.timestamp_millis()));
    Ok(match cfg.site.language {
        crate::lang::Lang::En => format!("{n} alert(s) raised or updated between {a} and {b}\n"),
        crate::lang::Lang::Zh => format!("{a} 至 {b}：{n} 条报警新建或更新\n"),
    })
}

/// One alert, in the site's language and local time.
fn alert_line(a: &AlertRow, v: Voice) -> String {
    let l = v.lang;
    let state = match (a.end_ms, &a.acked_by) {
        (Some(e), _) => format!("{} {}", l.t("cleared", "已恢复"), v.time(e)),
        (None, Some(by)) => format!(
            "{}{}",
            l.t("active, acknowledged by ", "未恢复，已确认："),
            crate::untrusted::shown(by, crate::untrusted::NAME_MAX)
        ),
        (None, None) => l.t("ACTIVE", "未恢复").into(),
    };
    // where: the zone, and the subject when it is not the zone itself
    let place = if a.subject == a.zone { a.zone.clone() } else { format!("{} {}", a.zone, a.subject) };
    format!(
        "#{:<4} {} {} {} {} {} ({state}){} {}\n",
        a.id,
        said::severity_label(a.severity, l),
        said::rule_label(a.rule, l),
        place,
        l.t("since", "开始"),
        v.time(a.start_ms),
        l.t(":", "："),
        crate::untrusted::shown(&said::evidence(a, v), 2000)
    )
}

/// `pumphouse alerts list`.
pub fn alerts_list(cfg: &Config, json: bool, active: bool) -> anyhow::Result<String> {
    let store = super::open_store(cfg, true)?;
    let rows = store.alerts(active)?;
    let parent_of = |z: &str| cfg.topology.zone(z).and_then(|z| z.parent.clone());
    let caused = crate::alerts::group::causes(&rows, &parent_of);
    if json {
        let mut out = String::new();
        for a in rows {
            let ts = |ms: Option<i64>| ms.and_then(|m| Utc.timestamp_millis_opt(m).single()).map(|t| t.to_rfc3339());
            let mut v = serde_json::to_value(&a)?;
            // the figures, and the sentence in the site's language beside the identifiers
            v["facts"] = serde_json::to_value(said::Fact::from_stored(&a.evidence))?;
            v["evidence"] = serde_json::json!(said::evidence(&a, cfg.site.voice()));
            v["rule_label"] = serde_json::json!(said::rule_label(a.rule, cfg.site.language));
            v["start"] = serde_json::json!(ts(Some(a.start_ms)));
            v["end"] = serde_json::json!(ts(a.end_ms));
            v["active"] = serde_json::json!(a.end_ms.is_none());
            v["caused_by"] = serde_json::json!(caused.get(&a.id));
            out.push_str(&v.to_string());
            out.push('\n');
        }
        return Ok(out);
    }
    // each event once: its root, then what it caused, indented
    Ok(crate::alerts::group::nested(&rows, &parent_of)
        .into_iter()
        .map(|(a, root)| match root {
            Some(r) => format!(
                "    ↳ {}#{r}{} {}",
                cfg.site.language.t("caused by ", "由 "),
                cfg.site.language.t(":", " 引起："),
                alert_line(a, cfg.site.voice())
            ),
            None => alert_line(a, cfg.site.voice()),
        })
        .collect())
}

/// `pumphouse alerts ack`.
pub fn alerts_ack(cfg: &Config, id: i64, by: &str) -> anyhow::Result<String> {
    if by.trim().is_empty() {
        bail!("--by must name who acknowledges");
    }
    let by = crate::untrusted::typed("--by", by, crate::untrusted::NAME_MAX)?;
    let store = super::open_store(cfg, true)?;
    match store.ack_alert(id, by, Utc::now())? {
        Ack::Done => Ok(format!("alert #{id} acknowledged by {by}\n")),
        Ack::AlreadyAcknowledged(first) => Ok(format!(
            "alert #{id} was already acknowledged by {}; nothing changed\n",
            crate::untrusted::shown(&first, crate::untrusted::NAME_MAX)
        )),
        Ack::Cleared => bail!("alert #{id} has cleared; there is nothing to acknowledge"),
        Ack::NoSuchAlert => bail!("no alert #{id}"),
    }
}

//! An alert as it leaves the gateway: the JSON every destination carries (rule and
//! severity identifiers in English beside their labels, the evidence as figures and as
//! the site's sentence, times in RFC 3339 UTC as before) and the group robot's message, written as a duty engineer would: what, where,
//! since when, what it costs a day, what to check first, and a link to the page.

use chrono::{TimeZone, Utc};

use super::said::{self, Voice};
use crate::lang::Lang;
use crate::model::AlertRule;
use crate::store::AlertRow;

/// Who speaks: the site, its people's language and clock, and the page's address as
/// their phones reach it (robot messages link there).
#[derive(Debug, Clone, Copy)]
pub struct Speaker<'a> {
    pub site: &'a str,
    pub voice: Voice,
    pub page: Option<&'a str>,
}

pub fn state(a: &AlertRow) -> &'static str {
    if a.end_ms.is_some() {
        "cleared"
    } else {
        "active"
    }
}

/// An instant in RFC 3339 (UTC): programs read the JSON; people read the sentences.
fn rfc3339(ms: Option<i64>) -> Option<String> {
    ms.and_then(|m| Utc.timestamp_millis_opt(m).single()).map(|t| t.to_rfc3339())
}

/// The alert as the JSON every destination carries.
pub fn json(a: &AlertRow, s: Speaker<'_>) -> serde_json::Value {
    let v = s.voice;
    let facts = serde_json::from_str::<serde_json::Value>(&a.evidence).ok().filter(|f| f.is_object());
    serde_json::json!({
        "id": a.id, "site": s.site, "zone": a.zone, "rule": a.rule, "rule_label": said::rule_label(a.rule, v.lang),
        "subject": a.subject, "device": a.device, "severity": a.severity,
        "severity_label": said::severity_label(a.severity, v.lang), "state": state(a),
        "start": rfc3339(Some(a.start_ms)), "end": rfc3339(a.end_ms),
        "evidence": said::evidence(a, v), "facts": facts, "language": v.lang,
        "loss_m3_per_day": a.loss_per_day,
        "loss_yuan_per_day": a.loss_fen_per_day.map(|f| f as f64 / 100.0), "acked_by": a.acked_by,
    })
}

/// How long from `from` to `to`, as a person says it.
fn lasted(from_ms: i64, to_ms: i64, lang: Lang) -> String {
    let min = ((to_ms - from_ms) / 60_000).max(0);
    let (d, h, m) = (min / 1440, min % 1440 / 60, min % 60);
    match (lang, d, h) {
        (Lang::Zh, 0, 0) => format!("{m} 分钟"),
        (Lang::Zh, 0, _) => format!("{h} 小时 {m} 分钟"),
        (Lang::Zh, _, _) => format!("{d} 天 {h} 小时"),
        (Lang::En, 0, 0) => format!("{m} min"),
        (Lang::En, 0, _) => format!("{h} h {m} min"),
        (Lang::En, _, _) => format!("{d} d {h} h"),
    }
}

/// The robot's title and markdown text. `now` is when it is sent (for how long an active
/// alert has lasted).
pub fn robot(a: &AlertRow, s: Speaker<'_>, now_ms: i64) -> (String, String) {
    let v = s.voice;
    let l = v.lang;
    let what = said::rule_label(a.rule, l);
    let head = match (a.end_ms, l) {
        (Some(_), Lang::Zh) => "已恢复".to_string(),
        (Some(_), Lang::En) => "cleared".to_string(),
        (None, _) => said::severity_label(a.severity, l).to_string(),
    };
    let title = match l {
        Lang::Zh => format!("【{head}】{what} · {}", a.zone),
        Lang::En => format!("[{head}] {what} — {}", a.zone),
    };
    let mut lines = vec![format!("### {title}")];
    let item = |en: &str, zh: &str, value: String| format!("- {}{value}", l.t(en, zh));
    lines.push(item("What: ", "情况：", said::evidence(a, v)));
    let place = if a.subject == a.zone { a.zone.clone() } else { format!("{} · {}", a.zone, a.subject) };
    lines.push(match l {
        Lang::Zh => format!("- 位置：{place}（{}）", s.site),
        Lang::En => format!("- Where: {place} ({})", s.site),
    });
    let since = v.time(a.start_ms);
    lines.push(match (a.end_ms, l) {
        (Some(end), Lang::Zh) => format!("- 时间：{since} – {}（历时 {}）", v.time(end), lasted(a.start_ms, end, l)),
        (Some(end), Lang::En) => format!("- From: {since} to {} ({})", v.time(end), lasted(a.start_ms, end, l)),
        (None, Lang::Zh) => format!("- 开始：{since}（已持续 {}）", lasted(a.start_ms, now_ms, l)),
        (None, Lang::En) => format!("- Since: {since} ({} so far)", lasted(a.start_ms, now_ms, l)),
    });
    if a.end_ms.is_none() {
        if let Some(f) = a.loss_fen_per_day {
            lines.push(item("Costs: ", "损失：", format!("{:.2} {}", f as f64 / 100.0, l.t("yuan a day", "元/天"))));
        }
        lines.push(item("Check first: ", "先查：", said::first_check(a.rule, l).to_string()));
    }
    if let Some(page) = s.page {
        let url = format!("{}/alerts?lang={}#a{}", page.trim_end_matches('/'), l.code(), a.id);
        lines.push(format!("[{}]({url})", l.t("Open on the page", "在网页上查看")));
    }
    if a.rule == AlertRule::StoreReplaced {
        lines.push(l.t("The gateway keeps running on a fresh store.", "网关已用新存储继续运行。").to_string());
    }
    (title, lines.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::said::Fact;
    use crate::model::Severity;

    fn burst() -> AlertRow {
        AlertRow {
            id: 7,
            rule: AlertRule::Burst,
            subject: "南区".into(),
            zone: "南区".into(),
            device: None,
            severity: Severity::Critical,
            // 2026-07-14 08:15 in Beijing
            start_ms: 1_783_988_100_000,
            end_ms: None,
            evidence: Fact::BurstWithoutHistory { rise: 60.0, before: 12.0, pressure: Some((0.18, 0.32)) }.stored(),
            loss_per_day: Some(1440.0),
            loss_fen_per_day: Some(593_280),
            acked_by: None,
            acked_ms: None,
        }
    }

    const BEIJING: Voice = Voice { lang: Lang::Zh, tz: chrono_tz::Asia::Shanghai };

    #[test]
    fn the_robot_speaks_as_the_duty_engineer_in_chinese() {
        let s = Speaker { site: "南湖校区", voice: BEIJING, page: Some("http://10.1.2.3:8080/") };
        let (title, text) = robot(&burst(), s, 1_783_988_100_000 + 125 * 60_000);
        assert_eq!(title, "【严重】爆管 · 南区");
        let want = [
            "### 【严重】爆管 · 南区",
            "- 情况：进水比前一小时（12.0）高 60.0 m³/h，压力 0.180（通常 0.320）；尚无三天历史，无法判断常值；估计每天损失约 1440.0 m³（5932.80 元/天）",
            "- 位置：南区（南湖校区）",
            "- 开始：2026-07-14 08:15（已持续 2 小时 5 分钟）",
            "- 损失：5932.80 元/天",
            "- 先查：查看本区压力，寻找地面冒水处；准备关闭分区阀门",
            "[在网页上查看](http://10.1.2.3:8080/alerts?lang=zh#a7)",
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), want);
        let cleared = AlertRow { end_ms: Some(1_783_988_100_000 + 300 * 60_000), ..burst() };
        let (title, text) = robot(&cleared, s, 0);
        assert_eq!(title, "【已恢复】爆管 · 南区");
        assert!(text.contains("- 时间：2026-07-14 08:15 – 2026-07-14 13:15（历时 5 小时 0 分钟）"), "{text}");
        assert!(!text.contains("先查"), "a cleared alert asks nothing: {text}");
    }

    #[test]
    fn the_json_keeps_identifiers_beside_labels() {
        let s = Speaker { site: "s", voice: BEIJING, page: None };
        let j = json(&burst(), s);
        assert_eq!((j["rule"].as_str(), j["rule_label"].as_str()), (Some("burst"), Some("爆管")));
        assert_eq!(j["start"].as_str(), Some("2026-07-14T00:15:00+00:00"));
        assert_eq!(j["facts"]["kind"].as_str(), Some("burst_without_history"));
        let en = json(&burst(), Speaker { voice: Voice::new(Lang::En, chrono_tz::Asia::Shanghai), ..s });
        assert!(
            en["evidence"].as_str().is_some_and(|e| e.starts_with("inflow 60.0 m³/h above the hour before")),
            "{en}"
        );
    }
}

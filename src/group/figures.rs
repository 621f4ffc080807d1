//! The group's month from its sites' month documents: money and the three targets'
//! measures summed over the sites. A site that has not reported the month, or reported a
//! figure it could not compute, makes the group's figure unknown (`None`) and is named —
//! never a smaller sum. A period is judged (zero growth: no more than the baseline year's
//! same period) only when every site's month is over; an open month is not "breached".

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Money {
    pub revenue_fen: Option<i64>,
    pub cost_fen: Option<i64>,
    pub gap_fen: Option<i64>,
    pub baseline_gap_fen: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteMonth {
    pub site: String,
    pub reported: bool,
    pub complete: bool,
    pub frozen: bool,
    pub money: Money,
    /// The site's own rows: (measure, period, this, baseline).
    pub rows: Vec<SiteRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteRow {
    pub target: String,
    pub measure: String,
    pub period: String,
    pub this: Option<i64>,
    pub baseline: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRow {
    pub target: String,
    pub measure: String,
    pub period: String,
    pub this: Option<i64>,
    pub baseline: Option<i64>,
    pub change: Option<i64>,
    /// `on track` or `breached` for a period every site has finished; else `None`.
    pub status: Option<&'static str>,
    /// The sites whose figure is missing or unknown.
    pub unknown_at: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupMonth {
    pub month: String,
    pub sites: Vec<SiteMonth>,
    /// Sites that have not reported this month.
    pub missing: Vec<String>,
    pub complete: bool,
    pub money: Money,
    pub rows: Vec<GroupRow>,
}

fn int(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64)
}

/// The sum when every part is known.
fn sum(mut parts: impl Iterator<Item = Option<i64>>) -> Option<i64> {
    parts.try_fold(0_i64, |acc, p| p.and_then(|p| acc.checked_add(p)))
}

/// `docs`: (site, month document) as received.
pub fn month(expected: &[String], month: &str, docs: &[(String, Value)]) -> GroupMonth {
    let doc = |site: &str| docs.iter().find(|(s, d)| s == site && d["month"] == month).map(|(_, d)| d);
    let mut sites = Vec::new();
    let mut missing = Vec::new();
    for s in expected {
        match doc(s) {
            Some(d) => {
                let c = &d["combined"];
                let rows = d["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    // a row without its names says nothing: left out, as the group's rows do
                    .filter_map(|r| {
                        Some(SiteRow {
                            target: r["target"].as_str()?.to_string(),
                            measure: r["measure"].as_str()?.to_string(),
                            period: r["period"].as_str()?.to_string(),
                            this: int(r, "this"),
                            baseline: int(r, "baseline"),
                        })
                    })
                    .collect();
                sites.push(SiteMonth {
                    rows,
                    site: s.clone(),
                    reported: true,
                    complete: d["complete"].as_bool().unwrap_or(false),
                    frozen: d["frozen"].as_bool().unwrap_or(false),
                    money: Money {
                        revenue_fen: int(c, "revenue_fen"),
                        cost_fen: int(c, "cost_fen"),
                        gap_fen: int(c, "gap_fen"),
                        baseline_gap_fen: int(c, "baseline_gap_fen"),
                    },
                });
            }
            None => {
                missing.push(s.clone());
                sites.push(SiteMonth {
                    rows: Vec::new(),
                    site: s.clone(),
                    reported: false,
                    complete: false,
                    frozen: false,
                    money: Money { revenue_fen: None, cost_fen: None, gap_fen: None, baseline_gap_fen: None },
                });
            }
        }
    }
    let all = |f: fn(&Money) -> Option<i64>| sum(sites.iter().map(|s| f(&s.money)));
    let money = Money {
        revenue_fen: all(|m| m.revenue_fen),
        cost_fen: all(|m| m.cost_fen),
        gap_fen: all(|m| m.gap_fen),
        baseline_gap_fen: all(|m| m.baseline_gap_fen),
    };
    let complete = missing.is_empty() && sites.iter().all(|s| s.complete);
    // every (target, measure, period) any site reports, in the first site's order
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for (_, d) in docs.iter().filter(|(s, d)| expected.contains(s) && d["month"] == month) {
        for r in d["targets"].as_array().into_iter().flatten() {
            let k = (r["target"].as_str(), r["measure"].as_str(), r["period"].as_str());
            if let (Some(t), Some(m), Some(p)) = k {
                let k = (t.to_string(), m.to_string(), p.to_string());
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
    }
    let rows = keys
        .into_iter()
        .map(|(target, measure, period)| {
            let row = |s: &str| {
                doc(s).and_then(|d| {
                    d["targets"]
                        .as_array()?
                        .iter()
                        .find(|r| r["measure"] == *measure && r["period"] == *period)
                        .cloned()
                })
            };
            let mut unknown_at = Vec::new();
            let mut this = Some(0_i64);
            let mut baseline = Some(0_i64);
            for s in expected {
                let r = row(s);
                let (t, b) = (r.as_ref().and_then(|r| int(r, "this")), r.as_ref().and_then(|r| int(r, "baseline")));
                if t.is_none() {
                    unknown_at.push(s.clone());
                }
                this = this.zip(t).and_then(|(a, b)| a.checked_add(b));
                baseline = baseline.zip(b).and_then(|(a, b)| a.checked_add(b));
            }
            let change = this.zip(baseline).and_then(|(t, b)| t.checked_sub(b));
            let status = match (complete, change) {
                (true, Some(c)) if c <= 0 => Some("on track"),
                (true, Some(_)) => Some("breached"),
                _ => None,
            };
            GroupRow { target, measure, period, this, baseline, change, status, unknown_at }
        })
        .collect();
    GroupMonth { month: month.to_string(), sites, missing, complete, money, rows }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(month: &str, gap: i64, incidents: Option<i64>, complete: bool) -> Value {
        json!({
            "schema": "pumphouse.group/1", "kind": "month", "month": month, "complete": complete, "frozen": complete,
            "combined": {"revenue_fen": 100_000, "cost_fen": 100_000 + gap, "gap_fen": gap, "baseline_gap_fen": 5_000},
            "targets": [
                {"target": "money", "measure": "gap_fen", "period": "month", "this": gap, "baseline": 5_000},
                {"target": "safety", "measure": "incidents", "period": "month", "this": incidents, "baseline": 1},
            ],
        })
    }

    #[test]
    fn the_group_is_the_sum_of_its_sites_to_the_fen() {
        let sites = vec!["a".to_string(), "b".into(), "c".into()];
        let docs = vec![
            ("a".to_string(), doc("2026-10", 1_234, Some(0), true)),
            ("b".to_string(), doc("2026-10", 2_001, Some(2), true)),
            ("c".to_string(), doc("2026-10", -35, Some(1), true)),
            ("c".to_string(), doc("2026-09", 999_999, Some(9), true)),
        ];
        let g = month(&sites, "2026-10", &docs);
        assert_eq!(g.money.gap_fen, Some(1_234 + 2_001 - 35));
        assert_eq!(g.money.baseline_gap_fen, Some(15_000));
        assert_eq!(g.money.cost_fen, Some(300_000 + 3_200));
        let gap = g.rows.iter().find(|r| r.measure == "gap_fen").unwrap();
        assert_eq!((gap.this, gap.baseline, gap.status), (Some(3_200), Some(15_000), Some("on track")));
        let inc = g.rows.iter().find(|r| r.measure == "incidents").unwrap();
        assert_eq!((inc.this, inc.baseline, inc.change, inc.status), (Some(3), Some(3), Some(0), Some("on track")));
    }

    #[test]
    fn a_silent_site_makes_the_sum_unknown_and_is_named() {
        let sites = vec!["a".to_string(), "b".into()];
        let g = month(&sites, "2026-10", &[("a".to_string(), doc("2026-10", 500, Some(4), true))]);
        assert_eq!((g.money.gap_fen, g.missing.clone()), (None, vec!["b".to_string()]));
        assert!(!g.complete);
        let inc = g.rows.iter().find(|r| r.measure == "incidents").unwrap();
        assert_eq!((inc.this, inc.status, inc.unknown_at.clone()), (None, None, vec!["b".to_string()]));
        // a site that reported, but could not count, is unknown too
        let g = month(
            &sites,
            "2026-10",
            &[("a".to_string(), doc("2026-10", 500, Some(4), true)), ("b".to_string(), doc("2026-10", 7, None, true))],
        );
        let inc = g.rows.iter().find(|r| r.measure == "incidents").unwrap();
        assert_eq!((inc.this, inc.unknown_at.clone()), (None, vec!["b".to_string()]));
        assert_eq!(g.money.gap_fen, Some(507));
    }

    #[test]
    fn an_open_month_is_not_judged() {
        let sites = vec!["a".to_string()];
        let g = month(&sites, "2026-12", &[("a".to_string(), doc("2026-12", 90_000, Some(3), false))]);
        let gap = g.rows.iter().find(|r| r.measure == "gap_fen").unwrap();
        assert_eq!((gap.change, gap.status), (Some(85_000), None));
    }
}

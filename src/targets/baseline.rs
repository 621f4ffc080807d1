//! `[[baseline_targets]]`: the baseline year's safety and service figures from the old
//! books, month by month. A figure not given is taken from the store's records of that
//! month when the alert rules ran over all of it; otherwise it is unknown.
//!
//! ```toml
//! [[baseline_targets]]
//! month = "2025-03"
//! incidents = 2              # safety incidents
//! interruptions = 1          # supply interruptions
//! customer_minutes = 540     # customer-minutes without supply
//! low_pressure_minutes = 120
//! ```

use serde::Deserialize;

use crate::diag::Diagnostics;
use crate::model::Month;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargetBaseline {
    pub month: Option<String>,
    pub incidents: Option<i64>,
    pub interruptions: Option<i64>,
    pub customer_minutes: Option<i64>,
    pub low_pressure_minutes: Option<i64>,
}

/// One baseline month's figures as the old books give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetBaseline {
    pub month: Month,
    pub incidents: Option<i64>,
    pub interruptions: Option<i64>,
    pub customer_minutes: Option<i64>,
    pub low_pressure_minutes: Option<i64>,
}

pub fn validate(raw: &[(usize, RawTargetBaseline)], diags: &mut Diagnostics) -> Vec<TargetBaseline> {
    let mut out: Vec<TargetBaseline> = Vec::new();
    for (i, b) in raw {
        let path = format!("baseline_targets[{i}]");
        let before = diags.items.len();
        let month = b.month.as_deref().and_then(Month::parse);
        if month.is_none() {
            diags.error(format!("{path}.month"), "needs the month as YYYY-MM");
        }
        let figures = [
            ("incidents", b.incidents),
            ("interruptions", b.interruptions),
            ("customer_minutes", b.customer_minutes),
            ("low_pressure_minutes", b.low_pressure_minutes),
        ];
        for (key, v) in figures {
            if v.is_some_and(|x| x < 0) {
                diags.error(format!("{path}.{key}"), "a count: zero or more");
            }
        }
        if figures.iter().all(|(_, v)| v.is_none()) {
            diags.error(
                path.clone(),
                "gives no figure: incidents, interruptions, customer_minutes or low_pressure_minutes",
            );
        }
        if let Some(m) = month {
            if out.iter().any(|o| o.month == m) {
                diags.error(format!("{path}.month"), format!("another entry is given for {m}"));
            }
        }
        if diags.items.len() > before {
            continue;
        }
        if let Some(month) = month {
            out.push(TargetBaseline {
                month,
                incidents: b.incidents,
                interruptions: b.interruptions,
                customer_minutes: b.customer_minutes,
                low_pressure_minutes: b.low_pressure_minutes,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mistake_with_its_path() {
        let raw = |month: &str, incidents: Option<i64>, interruptions: Option<i64>| RawTargetBaseline {
            month: Some(month.into()),
            incidents,
            interruptions,
            customer_minutes: None,
            low_pressure_minutes: None,
        };
        let mut d = Diagnostics::default();
        let got = validate(
            &[
                (0, raw("2025-03", Some(2), Some(1))),
                (1, raw("2025-3x", Some(1), None)),
                (2, raw("2025-03", Some(1), None)),
                (3, raw("2025-04", Some(-1), None)),
                (4, raw("2025-05", None, None)),
            ],
            &mut d,
        );
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].incidents, got[0].interruptions, got[0].customer_minutes), (Some(2), Some(1), None));
        let text: Vec<String> = d.items.iter().map(|x| x.to_string()).collect();
        for want in [
            "baseline_targets[1].month",
            "baseline_targets[2].month: another entry is given for 2025-03",
            "baseline_targets[3].incidents",
            "baseline_targets[4]: gives no figure",
        ] {
            assert!(text.iter().any(|t| t.contains(want)), "{want}: {text:?}");
        }
    }
}

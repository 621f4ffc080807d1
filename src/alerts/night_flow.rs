//! Minimum night flow (MNF) per zone: the classic leak signal of district metered areas.
//! Pure: a zone's hourly inflow and `now` in, per-night evidence and findings out.
//!
//! Each night's MNF is the lowest hourly mean inflow in the night window (default
//! 02:00–04:00 site time: the hours starting at 02:00 and 03:00). It is compared with the
//! zone's own baseline, the median of the previous clean nights (default 14 of them; at
//! least 5 are needed), plus an allowance for legitimate night use (default 5 % of the
//! baseline). The excess above that is what the zone is losing.
//!
//! A leak is raised when the excess is at least `min_excess` — the largest of 0.3 m³/h,
//! 10 % of the baseline and three median absolute deviations of the recent clean nights —
//! on `nights` consecutive nights (default 2), or at least `jump` — the largest of 1 m³/h,
//! 30 % of the baseline and six deviations — in a single night. The defaults are the ones
//! the detection benchmark on real DMA inflows supports (BENCHMARKS.md).
//! Nights that raised are not "clean": they do not feed the baseline, so a leak that
//! goes on does not become the new normal.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// First and last hour (local) of the night window, inclusive: hours starting at these.
    pub window: (u32, u32),
    pub percentile: f64,
    pub history: usize,
    pub min_history: usize,
    pub allowance_share: f64,
    pub min_excess: f64,
    pub min_excess_share: f64,
    pub nights: usize,
    pub jump: f64,
    pub jump_share: f64,
    /// The excess must also stand out from the zone's own night-to-night spread: at
    /// least this many median absolute deviations of the recent clean nights (and
    /// `jump_mad` for a single-night raise).
    pub mad: f64,
    pub jump_mad: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window: (2, 3),
            percentile: 0.5,
            history: 14,
            min_history: 5,
            allowance_share: 0.05,
            min_excess: 0.3,
            min_excess_share: 0.10,
            nights: 2,
            jump: 1.0,
            jump_share: 0.30,
            mad: 3.0,
            jump_mad: 6.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Night {
    pub date: NaiveDate,
    /// Minimum hourly mean inflow in the window, m³/h.
    pub mnf: f64,
    /// The zone's baseline from earlier clean nights, when there were enough of them.
    pub baseline: Option<f64>,
    /// MNF − baseline − allowance (m³/h), when there is a baseline.
    pub excess: Option<f64>,
    /// True when this night raises (or keeps) a leak.
    pub leak: bool,
    /// When the night's evidence was complete (the end of the window), for stamping.
    pub at: DateTime<Utc>,
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let idx = ((v.len() - 1) as f64 * p).round() as usize;
    v[idx.min(v.len() - 1)]
}

/// Evaluates every complete night in `hourly` (UTC hour start → m³ in that hour).
pub fn nights(hourly: &BTreeMap<DateTime<Utc>, f64>, tz: Tz, s: &Settings) -> Vec<Night> {
    // local night date → hourly volumes in the window
    let mut by_night: BTreeMap<NaiveDate, Vec<(DateTime<Utc>, f64)>> = BTreeMap::new();
    for (t, v) in hourly {
        let local = t.with_timezone(&tz);
        if (s.window.0..=s.window.1).contains(&local.hour()) {
            by_night.entry(local.date_naive()).or_default().push((*t, *v));
        }
    }
    let want = (s.window.1 - s.window.0 + 1) as usize;
    let mut out: Vec<Night> = Vec::new();
    let mut clean: Vec<f64> = Vec::new();
    let mut streak = 0usize;
    for (date, hours) in by_night {
        if hours.len() < want {
            continue; // an incomplete night says nothing
        }
        let mnf = hours.iter().map(|(_, v)| *v).fold(f64::INFINITY, f64::min);
        let at = hours.iter().map(|(t, _)| *t).max().unwrap_or_default() + chrono::TimeDelta::hours(1);
        let recent: Vec<f64> = clean.iter().rev().take(s.history).copied().collect();
        let baseline = (recent.len() >= s.min_history).then(|| percentile(&recent, s.percentile));
        let spread = baseline.map(|b| {
            let dev: Vec<f64> = recent.iter().map(|v| (v - b).abs()).collect();
            percentile(&dev, 0.5)
        });
        let excess = baseline.map(|b| mnf - b - b * s.allowance_share);
        let mut leak = false;
        let mut above = false;
        if let (Some(b), Some(x), Some(mad)) = (baseline, excess, spread) {
            let min_excess = s.min_excess.max(b * s.min_excess_share).max(s.mad * mad);
            let jump = s.jump.max(b * s.jump_share).max(s.jump_mad * mad);
            above = x >= min_excess;
            streak = if above { streak + 1 } else { 0 };
            leak = x >= jump || streak >= s.nights;
        }
        // A night is clean unless it is above the line (a leak, or the start of one).
        if !above {
            clean.push(mnf);
        }
        out.push(Night { date, mnf, baseline, excess, leak, at });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    /// Hourly inflow: 1.0 m³/h at night (02–04 local), 5.0 by day; `extra` from `leak_from`.
    fn series(days: i64, leak_from: Option<(i64, u32)>, extra: f64) -> BTreeMap<DateTime<Utc>, f64> {
        let tz = chrono_tz::Asia::Shanghai;
        let start = tz.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap().with_timezone(&Utc);
        let mut out = BTreeMap::new();
        for h in 0..days * 24 {
            let t = start + TimeDelta::hours(h);
            let local = t.with_timezone(&tz);
            let mut v = if (1..=4).contains(&local.hour()) { 1.0 + 0.02 * ((h * 7919) % 5) as f64 } else { 5.0 };
            if let Some((day, hour)) = leak_from {
                if h >= day * 24 + i64::from(hour) {
                    v += extra;
                }
            }
            out.insert(t, v);
        }
        out
    }

    #[test]
    fn a_quiet_zone_raises_nothing() {
        let n = nights(&series(30, None, 0.0), chrono_tz::Asia::Shanghai, &Settings::default());
        assert_eq!(n.len(), 30);
        assert!(n.iter().all(|x| !x.leak));
        assert!(n[..5].iter().all(|x| x.baseline.is_none()), "five nights of history first");
        assert!((n[10].baseline.unwrap() - 1.0).abs() < 0.05);
    }

    #[test]
    fn a_leak_from_23_00_is_raised_the_second_night_and_a_big_one_the_first() {
        // day 20, 23:00 local: +0.5 m³/h (the default threshold is 0.3)
        let n = nights(&series(30, Some((20, 23)), 0.5), chrono_tz::Asia::Shanghai, &Settings::default());
        let first = n.iter().position(|x| x.leak).unwrap();
        assert_eq!(n[first].date, NaiveDate::from_ymd_opt(2026, 1, 23).unwrap(), "nights of the 22nd and 23rd");
        let x = n[first].excess.unwrap();
        assert!((x - 0.45).abs() < 0.06, "{x}");
        assert!(n[first..].iter().all(|x| x.leak), "one leak stays raised");
        // +2 m³/h: the first night
        let n = nights(&series(30, Some((20, 23)), 2.0), chrono_tz::Asia::Shanghai, &Settings::default());
        let first = n.iter().position(|x| x.leak).unwrap();
        assert_eq!(n[first].date, NaiveDate::from_ymd_opt(2026, 1, 22).unwrap());
        // the leaking nights never enter the baseline
        assert!((n.last().unwrap().baseline.unwrap() - 1.0).abs() < 0.05);
    }

    #[test]
    fn a_small_leak_below_the_threshold_is_not_raised() {
        let n = nights(&series(30, Some((20, 0)), 0.2), chrono_tz::Asia::Shanghai, &Settings::default());
        assert!(n.iter().all(|x| !x.leak));
    }

    #[test]
    fn incomplete_nights_are_skipped() {
        let mut s = series(10, None, 0.0);
        let tz = chrono_tz::Asia::Shanghai;
        let gap = tz.with_ymd_and_hms(2026, 1, 5, 2, 0, 0).unwrap().with_timezone(&Utc);
        s.remove(&gap);
        let n = nights(&s, tz, &Settings::default());
        assert_eq!(n.len(), 9);
        assert!(!n.iter().any(|x| x.date == NaiveDate::from_ymd_opt(2026, 1, 5).unwrap()));
    }
}

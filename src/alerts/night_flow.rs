//! Leaks from a zone's night flow, by change detection on the zone's own recent nights.
//! Pure: a zone's hourly inflow (or its balance: inflow less metered use) and the site's
//! time zone in, an evaluation per night hour out.
//!
//! Why this rule (measured on the ten BWDF DMAs, BENCHMARKS.md): night flows drift with
//! seasons and holidays, so a threshold scaled by their long-run spread misses a small
//! leak, while from one night to the next they change by a few per cent only. So:
//! - every hour of the night window (default 23:00–06:00) is compared with the median of
//!   the same hour over the last 7 clean nights (the *baseline*), plus the zone's weekly
//!   rhythm where its own history shows one (the nights before rest days, or each night of
//!   the week: [`night_rhythm`]);
//! - the noise is the night-to-night change of the nightly mean, from successive
//!   differences of the last 28 clean nights less their rhythm (1.4826 × median |Δ| / √2,
//!   at least 2 % of the baseline) — not the long-run spread;
//! - at the end of every night hour, the residuals of the last 7 night hours (within 30 h)
//!   form one block and the 7 before them (within 54 h) another; each block's level is
//!   its mean without its largest residual (one odd hour is not a leak). A leak is raised
//!   when the last block stands 5 noise units, 10 % of the baseline and `floor` (0.3 m³/h)
//!   above it, or when the last `blocks` blocks (default 2) all stand 3 noise units and
//!   `floor` above it;
//! - a night whose mean residual is above 3 noise units (or below −2: a holiday) is kept
//!   out of the baseline, so a leak never becomes the new normal; after 14 such nights in
//!   a row on the same side the new level is accepted (a new building, a term's end) and
//!   the leak cleared; a leak also clears when a night's mean residual falls below one
//!   noise unit (the flow came back).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;

pub use super::night_rhythm::Rhythm;
use super::night_rhythm::{self, median, RhythmSettings};

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// First and last local hour (their starts) of the night window; it may wrap midnight
    /// (23..=5: the hours starting at 23:00 up to the one starting at 05:00).
    pub window: (u32, u32),
    /// Clean nights whose median per hour is the baseline.
    pub history: usize,
    /// At least this many clean values per hour before there is a baseline.
    pub min_history: usize,
    /// Clean nights whose successive differences give the noise.
    pub noise_nights: usize,
    /// The noise is at least this share of the baseline.
    pub noise_floor_share: f64,
    /// One block raises at `jump_noise` noise units and `jump_share` of the baseline.
    pub jump_noise: f64,
    pub jump_share: f64,
    /// `blocks` blocks in a row raise at `noise` noise units.
    pub noise: f64,
    pub blocks: usize,
    /// No leak below this rate, m³/h (meter resolution, legitimate night use).
    pub floor: f64,
    /// A night this many noise units above (or `low_noise` below) is not clean.
    pub dirty_noise: f64,
    pub low_noise: f64,
    /// A leak clears when a night's residual is below this many noise units.
    pub clear_noise: f64,
    /// Unclean nights in a row after which their level is accepted as the new normal.
    pub accept_after: usize,
    /// Weeks of nights a weekly rhythm is learnt from, and the share of the noise a
    /// richer rhythm must cut it to ([`night_rhythm`]).
    pub rhythm_weeks: i64,
    pub rhythm_gain: f64,
    /// Days the campus keeps as a weekend: the night before one is a rest night.
    pub holidays: BTreeSet<NaiveDate>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window: (23, 5),
            history: 7,
            min_history: 5,
            noise_nights: 28,
            noise_floor_share: 0.02,
            jump_noise: 5.0,
            jump_share: 0.10,
            noise: 3.0,
            blocks: 2,
            floor: 0.3,
            dirty_noise: 3.0,
            low_noise: 2.0,
            clear_noise: 1.0,
            accept_after: 14,
            rhythm_weeks: 8,
            rhythm_gain: 0.6,
            holidays: BTreeSet::new(),
        }
    }
}

impl Settings {
    /// Nights a leak of `units` noise units (and `share` of the zone's usual night flow)
    /// takes to be surely raised: the night it starts when it clears the jump, the
    /// `blocks` nights of the sustained rule from `noise` units; `None` below that, where
    /// whether it is raised depends on the nights' noise.
    pub fn nights_to_raise(&self, units: f64, share: Option<f64>) -> Option<f64> {
        if units >= self.jump_noise && share.is_none_or(|x| x >= self.jump_share) {
            Some(1.0)
        } else if units >= self.noise {
            Some(self.blocks.max(1) as f64)
        } else {
            None
        }
    }

    /// The night's hours, in order (23, 0, 1, … 5).
    pub fn hours(&self) -> Vec<u32> {
        let (a, b) = self.window;
        let mut out = vec![a % 24];
        let mut h = a % 24;
        while h != b % 24 && out.len() < 24 {
            h = (h + 1) % 24;
            out.push(h);
        }
        out
    }
}

/// The evaluation at the end of one night hour.
#[derive(Debug, Clone, PartialEq)]
pub struct NightHour {
    /// The end of the hour (when its evidence was complete).
    pub at: DateTime<Utc>,
    /// The night (local date of its morning).
    pub night: NaiveDate,
    /// m³/h in this hour, and the baseline for it.
    pub flow: f64,
    pub baseline: Option<f64>,
    /// The latest block's level above the baseline, and the block before it.
    pub block: Option<f64>,
    pub previous_block: Option<f64>,
    /// The night-to-night noise, m³/h.
    pub noise: Option<f64>,
    /// The night's baseline level (mean of the hours' baselines).
    pub level: Option<f64>,
    /// The kinds of night the zone's nights are compared by.
    pub rhythm: Rhythm,
    /// True while a leak is raised (from the hour that raised it).
    pub leak: bool,
}

/// One night hour's value: (local hour, m³/h, hour start).
type NightValue = (u32, f64, DateTime<Utc>);

/// A block's level: its mean without the largest value (one odd hour is not a leak).
fn block_level(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.len() > 3 {
        v.pop();
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// The night hours of each local morning (hours from noon on belong to the next day).
pub(super) fn nights_of(
    hourly: &BTreeMap<DateTime<Utc>, f64>,
    tz: Tz,
    hours: &[u32],
) -> Vec<(NaiveDate, Vec<NightValue>)> {
    let mut nights: Vec<(NaiveDate, Vec<NightValue>)> = Vec::new();
    for (t, v) in hourly {
        let local = t.with_timezone(&tz);
        let h = local.hour();
        if !hours.contains(&h) || !v.is_finite() {
            continue;
        }
        let date = if h >= 12 { local.date_naive() + TimeDelta::days(1) } else { local.date_naive() };
        match nights.last_mut() {
            Some((d, hs)) if *d == date => hs.push((h, *v, *t)),
            _ => nights.push((date, vec![(h, *v, *t)])),
        }
    }
    nights
}

/// The levels of the last `s.blocks` blocks of `n_h` residuals up to `t`, newest first;
/// the k-th must lie within 30 h + 24 (k − 1) h of `t`, else it is unknown.
fn blocks_before(
    recent: &VecDeque<(DateTime<Utc>, f64)>,
    t: DateTime<Utc>,
    n_h: usize,
    s: &Settings,
) -> Vec<Option<f64>> {
    let span = TimeDelta::hours(30);
    let all: Vec<(DateTime<Utc>, f64)> = recent.iter().copied().collect();
    (0..s.blocks.max(1))
        .map(|k| {
            let end = all.len().saturating_sub(k * n_h);
            let start = end.saturating_sub(n_h);
            let limit = t - span - TimeDelta::hours(24 * k as i64);
            let vals: Vec<f64> = all[start..end].iter().filter(|(x, _)| *x > limit).map(|(_, r)| *r).collect();
            (vals.len() + 2 >= n_h && vals.len() >= 3).then(|| block_level(&vals))
        })
        .collect()
}

/// The plain baseline per night hour: the median of the last `history` clean nights.
fn baseline(clean: &[BTreeMap<u32, f64>], hours: &[u32], s: &Settings) -> BTreeMap<u32, f64> {
    let from = clean.len().saturating_sub(s.history);
    let mut base = BTreeMap::new();
    for h in hours {
        let mut vals: Vec<f64> = clean[from..].iter().filter_map(|c| c.get(h).copied()).collect();
        if vals.len() >= s.min_history {
            base.insert(*h, median(&mut vals));
        }
    }
    base
}

/// Evaluates every night hour in `hourly` (UTC hour start → m³ in that hour).
pub fn evaluate(hourly: &BTreeMap<DateTime<Utc>, f64>, tz: Tz, s: &Settings) -> Vec<NightHour> {
    let hours = s.hours();
    let n_h = hours.len();
    let nights = nights_of(hourly, tz, &hours);
    let mut clean: Vec<BTreeMap<u32, f64>> = Vec::new();
    let mut levels: Vec<(NaiveDate, f64)> = Vec::new();
    // every complete night: its mean residual against the plain baseline
    let mut learn: Vec<(NaiveDate, f64)> = Vec::new();
    let mut previous_rhythm = Rhythm::None;
    let rs = RhythmSettings {
        weeks: s.rhythm_weeks,
        gain: s.rhythm_gain,
        noise_nights: s.noise_nights,
        holidays: &s.holidays,
    };
    let mut dirty_run: Vec<(NaiveDate, BTreeMap<u32, f64>, f64)> = Vec::new();
    let mut recent: VecDeque<(DateTime<Utc>, f64)> = VecDeque::new();
    let mut out = Vec::new();
    let mut alarm = false;
    let mean = |m: &BTreeMap<u32, f64>| m.values().sum::<f64>() / m.len().max(1) as f64;
    for (date, hrs) in nights {
        let base = baseline(&clean, &hours, s);
        let plain = (base.len() + 1 >= n_h).then(|| base.values().sum::<f64>() / base.len() as f64);
        let choice = night_rhythm::choose(&learn, &levels, date, previous_rhythm, &rs);
        let (rhythm, corr) = match plain {
            Some(_) => (choice.rhythm, choice.correction),
            None => (Rhythm::None, 0.0),
        };
        previous_rhythm = rhythm;
        let level = plain.map(|b| b + corr);
        let noise = plain.and_then(|b| choice.noise.map(|n| n.max(s.noise_floor_share * b)));
        let plain_residuals: Vec<f64> = hrs.iter().filter_map(|(h, v, _)| base.get(h).map(|b| v - b)).collect();
        let mut night_res = Vec::new();
        for (h, v, t) in &hrs {
            let expected = base.get(h).map(|b| b + corr);
            let mut hour = NightHour {
                at: *t + TimeDelta::hours(1),
                night: date,
                flow: *v,
                baseline: expected,
                block: None,
                previous_block: None,
                noise,
                level,
                rhythm,
                leak: alarm,
            };
            if let Some(b) = expected {
                recent.push_back((*t, v - b));
                night_res.push(v - b);
            }
            if let (Some(_), Some(sig), Some(lv)) = (expected, noise, level) {
                let oldest = *t - TimeDelta::hours(24 * s.blocks as i64 + 30);
                while recent.front().is_some_and(|(x, _)| *x <= oldest) {
                    recent.pop_front();
                }
                let blocks = blocks_before(&recent, *t, n_h, s);
                hour.block = blocks.first().copied().flatten();
                hour.previous_block = blocks.get(1).copied().flatten();
                let jump = (s.jump_noise * sig).max(s.jump_share * lv).max(s.floor);
                let low = (s.noise * sig).max(s.floor);
                let sustained = blocks.iter().all(|b| b.is_some_and(|x| x >= low));
                alarm |= hour.block.is_some_and(|x| x >= jump) || sustained;
                hour.leak = alarm;
            }
            out.push(hour);
        }
        if hrs.len() + 1 < n_h {
            continue; // an incomplete night says nothing about the baseline
        }
        let values: BTreeMap<u32, f64> = hrs.iter().map(|(h, v, _)| (*h, *v)).collect();
        if plain.is_some() && plain_residuals.len() + 1 >= n_h {
            learn.push((date, plain_residuals.iter().sum::<f64>() / plain_residuals.len() as f64));
            learn.drain(..learn.len().saturating_sub(7 * s.rhythm_weeks.max(1) as usize + 7));
        }
        let Some(sig) = noise else {
            // warming up: the night feeds the history
            levels.push((date, mean(&values)));
            clean.push(values);
            continue;
        };
        if night_res.len() + 1 < n_h {
            continue;
        }
        let ns = block_level(&night_res);
        let low = ns <= -s.low_noise * sig;
        let mut dirty = alarm || ns >= s.dirty_noise * sig || low;
        if alarm && ns < s.clear_noise * sig {
            alarm = false;
            dirty = false;
        }
        if dirty {
            if dirty_run.last().is_some_and(|(_, _, x)| (*x < 0.0) != (ns < 0.0)) {
                dirty_run.clear(); // a run is all high or all low
            }
            dirty_run.push((date, values, ns));
            if dirty_run.len() >= s.accept_after {
                // the new level is accepted: it becomes the baseline
                let keep = dirty_run.len().saturating_sub(s.history);
                for (d, v, _) in dirty_run.drain(..).skip(keep) {
                    levels.push((d, mean(&v)));
                    clean.push(v);
                }
                alarm = false;
            }
        } else {
            dirty_run.clear();
            levels.push((date, mean(&values)));
            clean.push(values);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Hourly inflow: 1.0 m³/h (±2 %) from 23:00 to 06:00 local, 5.0 by day; `extra`
    /// from day `from.0` at hour `from.1` for `days` days.
    fn series(days: i64, change: Option<((i64, u32), f64, i64)>) -> BTreeMap<DateTime<Utc>, f64> {
        let tz = chrono_tz::Asia::Shanghai;
        let start = tz.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap().with_timezone(&Utc);
        let mut out = BTreeMap::new();
        for h in 0..days * 24 {
            let t = start + TimeDelta::hours(h);
            let local = t.with_timezone(&tz);
            let night = local.hour() >= 23 || local.hour() <= 5;
            let mut v = if night { 1.0 + 0.02 * ((h * 7919) % 3) as f64 - 0.02 } else { 5.0 };
            if let Some(((day, hour), extra, len)) = change {
                let from = day * 24 + i64::from(hour);
                if h >= from && h < from + len * 24 {
                    v += extra;
                }
            }
            out.insert(t, v);
        }
        out
    }

    fn tz() -> Tz {
        chrono_tz::Asia::Shanghai
    }

    #[test]
    fn the_window_wraps_midnight() {
        assert_eq!(Settings::default().hours(), [23, 0, 1, 2, 3, 4, 5]);
        assert_eq!(Settings { window: (2, 3), ..Default::default() }.hours(), [2, 3]);
    }

    #[test]
    fn a_quiet_zone_raises_nothing() {
        let e = evaluate(&series(40, None), tz(), &Settings::default());
        assert_eq!(e.len(), 40 * 7);
        assert!(e.iter().all(|x| !x.leak));
        let late = e.last().unwrap();
        assert!((late.baseline.unwrap() - 1.0).abs() < 0.05 && late.noise.is_some());
    }

    #[test]
    fn a_tenth_of_a_small_zone_is_below_the_floor_but_half_is_raised_the_first_night() {
        // +0.2 m³/h (the floor is 0.3): never
        let e = evaluate(&series(40, Some(((20, 23), 0.2, 20))), tz(), &Settings::default());
        assert!(e.iter().all(|x| !x.leak));
        // +0.5 m³/h from 23:00 on day 20: raised before the morning, and it stays raised
        let e = evaluate(&series(40, Some(((20, 23), 0.5, 20))), tz(), &Settings::default());
        let first = e.iter().position(|x| x.leak).unwrap();
        let start = tz().with_ymd_and_hms(2026, 1, 21, 23, 0, 0).unwrap().with_timezone(&Utc);
        let raised = e[first].at;
        assert!(raised > start && raised <= start + TimeDelta::hours(7), "raised at {raised}");
        assert!(e[first..].iter().take(7 * 10).all(|x| x.leak), "a leak stays raised");
        // the leaking nights never become the baseline
        let later = &e[first + 7 * 5];
        assert!((later.baseline.unwrap() - 1.0).abs() < 0.05, "{later:?}");
        assert!((later.block.unwrap() - 0.5).abs() < 0.05, "{later:?}");
    }

    #[test]
    fn the_leak_clears_when_the_flow_comes_back() {
        let e = evaluate(&series(50, Some(((20, 23), 0.8, 5))), tz(), &Settings::default());
        let first = e.iter().position(|x| x.leak).unwrap();
        let cleared = e[first..].iter().position(|x| !x.leak).map(|k| k + first).unwrap();
        assert!(e[cleared].at > e[first].at + TimeDelta::days(4));
        assert!(e[cleared..].iter().all(|x| !x.leak));
    }

    #[test]
    fn a_new_level_is_accepted_after_fourteen_nights() {
        // a new building: the night flow rises for good
        let e = evaluate(&series(70, Some(((20, 23), 0.6, 1000))), tz(), &Settings::default());
        let first = e.iter().position(|x| x.leak).unwrap();
        let last = e.iter().rposition(|x| x.leak).unwrap();
        assert!(e[last].at - e[first].at >= TimeDelta::days(13) && e[last].at - e[first].at <= TimeDelta::days(16));
        assert!(e.last().is_some_and(|x| !x.leak && (x.baseline.unwrap() - 1.6).abs() < 0.05));
    }

    #[test]
    fn a_holiday_raises_nothing() {
        // a week at 70 %, then back
        let e = evaluate(&series(50, Some(((20, 12), -0.3, 7))), tz(), &Settings::default());
        assert!(e.iter().all(|x| !x.leak));
    }

    #[test]
    fn hours_missing_are_gaps_not_zero() {
        let mut s = series(40, None);
        let gap = tz().with_ymd_and_hms(2026, 1, 25, 2, 0, 0).unwrap().with_timezone(&Utc);
        for k in 0..30 {
            s.remove(&(gap + TimeDelta::hours(k)));
        }
        let e = evaluate(&s, tz(), &Settings::default());
        assert!(e.iter().all(|x| !x.leak));
    }

    #[test]
    fn the_nights_a_leak_takes_follow_its_size() {
        let s = Settings::default();
        // (units, share of the usual night flow, nights)
        for (units, share, nights) in [
            (8.0, Some(0.2), Some(1.0)),
            (8.0, Some(0.05), Some(2.0)),
            (5.0, None, Some(1.0)),
            (3.5, None, Some(2.0)),
            (2.9, None, None),
            (0.5, None, None),
        ] {
            assert_eq!(s.nights_to_raise(units, share), nights, "{units} units");
        }
    }

    /// Nights of `level` m³/h whose nightly level moves by a pseudo-random N(0, σ) (hours
    /// jitter by a fifth of it), `extra(day, hour)` added; days are local from 2026-01-01.
    fn noisy(days: i64, level: f64, sigma: f64, extra: impl Fn(i64, u32) -> f64) -> BTreeMap<DateTime<Utc>, f64> {
        let start = tz().with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap().with_timezone(&Utc);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut gauss = || {
            // the sum of 12 uniforms less 6: close enough to N(0, 1) for a test
            (0..12)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 11) as f64 / (1u64 << 53) as f64
                })
                .sum::<f64>()
                - 6.0
        };
        let mut out = BTreeMap::new();
        let mut night_offset = 0.0;
        for h in 0..days * 24 {
            let t = start + TimeDelta::hours(h);
            let local = t.with_timezone(&tz());
            if local.hour() == 12 {
                night_offset = sigma * gauss();
            }
            let night = local.hour() >= 23 || local.hour() <= 5;
            let v = if night { level + night_offset + 0.2 * sigma * gauss() } else { 3.0 * level };
            out.insert(t, v + extra(h / 24, local.hour()));
        }
        out
    }

    #[test]
    fn a_zone_whose_weekend_nights_differ_is_compared_with_weekend_nights() {
        use chrono::Datelike;
        // nights before Saturday and Sunday mornings run 3 m³/h higher (noise 0.2)
        let weekend = |d: i64, h: u32| {
            let morning = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + TimeDelta::days(d + i64::from(h >= 12));
            if matches!(morning.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun) {
                3.0
            } else {
                0.0
            }
        };
        let settled = tz().with_ymd_and_hms(2026, 2, 15, 0, 0, 0).unwrap().with_timezone(&Utc);
        let e = evaluate(&noisy(90, 10.0, 0.2, weekend), tz(), &Settings::default());
        let late: Vec<&NightHour> = e.iter().filter(|x| x.at > settled).collect();
        assert!(late.iter().all(|x| !x.leak), "a weekend is not a leak");
        assert!(late.iter().all(|x| x.rhythm != Rhythm::None), "{:?}", late[0].rhythm);
        let sat = late.iter().find(|x| x.night.weekday() == chrono::Weekday::Sat).unwrap();
        let tue = late.iter().find(|x| x.night.weekday() == chrono::Weekday::Tue).unwrap();
        assert!((sat.level.unwrap() - tue.level.unwrap() - 3.0).abs() < 0.4, "{sat:?} {tue:?}");
        // the same zone compared with every night: its weekends raise
        let plain = Settings { rhythm_gain: 0.0, ..Default::default() };
        assert!(evaluate(&noisy(90, 10.0, 0.2, weekend), tz(), &plain).iter().any(|x| x.leak && x.at > settled));
        // and a leak of half a weekend's difference from a Monday night is still a leak,
        // raised that night
        let leak = |d: i64, h: u32| weekend(d, h) + if d >= 60 { 1.5 } else { 0.0 };
        let e = evaluate(&noisy(90, 10.0, 0.2, leak), tz(), &Settings::default());
        let from = tz().with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap().with_timezone(&Utc);
        // (its first weekends, before the rhythm was learnt, raised; they are long over)
        let first = e.iter().find(|x| x.leak && x.at > settled).unwrap();
        assert!(first.at > from && first.at < from + TimeDelta::hours(30), "{}", first.at);
    }

    #[test]
    fn a_noisy_zone_without_a_rhythm_keeps_the_plain_baseline() {
        let e = evaluate(&noisy(90, 10.0, 0.2, |_, _| 0.0), tz(), &Settings::default());
        assert!(e.iter().all(|x| x.rhythm == Rhythm::None && !x.leak));
    }
}

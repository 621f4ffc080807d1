//! A zone's weekly rhythm at night: whether its nights differ by kind (the nights before
//! rest days, or each night of the week), chosen per zone from its own history. Pure:
//! past nights in, the rhythm, tonight's correction and the noise it leaves out.
//!
//! Why it is chosen this way: a correction per kind is the median of that kind's nights,
//! and seven medians of a few nights each fit noise too, so a rhythm scored on the nights
//! it was fitted to always looks better. Each night is therefore scored with a correction
//! that leaves it out, and a richer rhythm is taken only when it cuts the mean change from
//! one night to the next to `gain` or less of the simpler one's (0.6 by default). The score is a
//! mean, not a median: two weekend jumps a week are a minority of the changes, and a
//! median would not see them. The rhythm in use keeps its place while it cuts the change
//! to √gain, so a zone does not flip between rhythms from one night to the next.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, TimeDelta, Weekday};

/// How a zone's nights are grouped into kinds that are compared with each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rhythm {
    /// Every night is like the others.
    #[default]
    None,
    /// Nights before a rest day (Saturday, Sunday, a holiday) differ from the others.
    RestOrWork,
    /// Each night of the week has its own level.
    Weekday,
}

impl Rhythm {
    const ALL: [Rhythm; 3] = [Rhythm::None, Rhythm::RestOrWork, Rhythm::Weekday];

    /// The kind of the night that ends on the morning of `morning`.
    pub fn kind(self, morning: NaiveDate, holidays: &BTreeSet<NaiveDate>) -> usize {
        let holiday = holidays.contains(&morning);
        match self {
            Rhythm::None => 0,
            Rhythm::RestOrWork => usize::from(holiday || matches!(morning.weekday(), Weekday::Sat | Weekday::Sun)),
            // a holiday's night is a Saturday night (its morning is a Sunday's)
            Rhythm::Weekday if holiday => Weekday::Sun.num_days_from_monday() as usize,
            Rhythm::Weekday => morning.weekday().num_days_from_monday() as usize,
        }
    }

    /// The identifier an alert's evidence names it by.
    pub fn id(self) -> Option<&'static str> {
        match self {
            Rhythm::None => None,
            Rhythm::RestOrWork => Some("rest_or_work"),
            Rhythm::Weekday => Some("weekday"),
        }
    }
}

/// What the rhythm settles for one night.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub rhythm: Rhythm,
    /// m³/h added to the plain baseline for tonight's kind.
    pub correction: f64,
    /// The night-to-night noise left once each clean night's kind is corrected for;
    /// `None` with too few nights.
    pub noise: Option<f64>,
}

pub struct RhythmSettings<'a> {
    pub weeks: i64,
    pub gain: f64,
    /// Clean nights whose successive differences give the noise.
    pub noise_nights: usize,
    pub holidays: &'a BTreeSet<NaiveDate>,
}

/// The median (of at least one value).
pub(super) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The robust spread of successive differences: 1.4826 × median |Δ| / √2.
pub fn spread(values: &[f64]) -> Option<f64> {
    let mut d: Vec<f64> = values.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    (d.len() >= 5).then(|| 1.4826 * median(&mut d) / std::f64::consts::SQRT_2)
}

/// The mean change from one value to the next.
fn mean_change(values: &[f64]) -> Option<f64> {
    (values.len() > 5).then(|| values.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (values.len() - 1) as f64)
}

/// The rhythm for the night of `date`. `nights`: every complete night before it, with its
/// residual against the plain baseline (raised or not: a weekend raised before its rhythm
/// is known is what the rhythm must explain); `clean`: the nightly levels of the nights
/// that entered the baseline, whose spread less the correction is the noise.
pub fn choose(
    nights: &[(NaiveDate, f64)],
    clean: &[(NaiveDate, f64)],
    date: NaiveDate,
    previous: Rhythm,
    s: &RhythmSettings,
) -> Choice {
    let since = date - TimeDelta::weeks(s.weeks);
    let recent: Vec<(NaiveDate, f64)> = nights.iter().copied().filter(|(d, _)| *d >= since).collect();
    let tail = &clean[clean.len().saturating_sub(s.noise_nights)..];
    let plain = Choice {
        rhythm: Rhythm::None,
        correction: 0.0,
        noise: spread(&tail.iter().map(|(_, l)| *l).collect::<Vec<_>>()),
    };
    // a leak or a season shifts every kind alike: corrections are taken from the median
    let center = {
        let mut all: Vec<f64> = recent.iter().map(|(_, r)| *r).collect();
        if all.len() < 14 {
            return plain;
        }
        median(&mut all)
    };
    let Some(mut best_score) = mean_change(&recent.iter().map(|(_, r)| *r).collect::<Vec<_>>()) else {
        return plain;
    };
    let mut best = plain;
    for rhythm in Rhythm::ALL.into_iter().skip(1) {
        let mut by_kind: BTreeMap<usize, Vec<(NaiveDate, f64)>> = BTreeMap::new();
        for (d, r) in &recent {
            by_kind.entry(rhythm.kind(*d, s.holidays)).or_default().push((*d, *r));
        }
        // a kind's median without the night `but`; too few nights: unknown
        let correction = |kind: usize, but: Option<NaiveDate>| -> Option<f64> {
            let mut v: Vec<f64> =
                by_kind.get(&kind)?.iter().filter(|(d, _)| Some(*d) != but).map(|(_, r)| *r).collect();
            (v.len() >= 3).then(|| median(&mut v) - center)
        };
        let Some(tonight) = correction(rhythm.kind(date, s.holidays), None) else { continue };
        let scored: Option<Vec<f64>> =
            recent.iter().map(|(d, r)| correction(rhythm.kind(*d, s.holidays), Some(*d)).map(|c| r - c)).collect();
        let Some(score) = scored.and_then(|v| mean_change(&v)) else { continue };
        let gain = if rhythm == previous { s.gain.sqrt() } else { s.gain };
        if score > gain * best_score {
            continue;
        }
        let left: Option<Vec<f64>> =
            tail.iter().map(|(d, l)| correction(rhythm.kind(*d, s.holidays), None).map(|c| l - c)).collect();
        best = Choice { rhythm, correction: tonight, noise: left.and_then(|v| spread(&v)) };
        best_score = score;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(k: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 2).unwrap() + TimeDelta::days(k) // a Monday
    }

    /// Eight weeks of nights: a pseudo-random wobble within ±0.3 and `kind(morning)` added.
    fn nights(kind: impl Fn(NaiveDate) -> f64) -> Vec<(NaiveDate, f64)> {
        let wobble = |k: i64| {
            let x = (k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
            0.3 * ((x % 1000) as f64 / 500.0 - 1.0)
        };
        (0..56).map(|k| (day(k), wobble(k) + kind(day(k)))).collect()
    }

    fn settings(h: &BTreeSet<NaiveDate>) -> RhythmSettings<'_> {
        RhythmSettings { weeks: 8, gain: 0.6, noise_nights: 28, holidays: h }
    }

    #[test]
    fn a_zone_without_a_rhythm_keeps_the_plain_baseline() {
        let h = BTreeSet::new();
        let n = nights(|_| 0.0);
        let c = choose(&n, &n, day(56), Rhythm::None, &settings(&h));
        assert_eq!((c.rhythm, c.correction), (Rhythm::None, 0.0));
        assert!(c.noise.is_some());
    }

    #[test]
    fn nights_before_rest_days_are_compared_with_each_other() {
        let h = BTreeSet::new();
        let rest = |d: NaiveDate| if matches!(d.weekday(), Weekday::Sat | Weekday::Sun) { 3.0 } else { 0.0 };
        let n = nights(rest);
        // a Saturday morning's night: +3 over the plain baseline (the weekdays' median)
        let sat = choose(&n, &n, day(61), Rhythm::None, &settings(&h));
        assert_ne!(sat.rhythm, Rhythm::None);
        assert!((sat.correction - 3.0).abs() < 0.35, "{sat:?}");
        let tue = choose(&n, &n, day(57), Rhythm::None, &settings(&h));
        assert!(tue.correction.abs() < 0.35, "{tue:?}");
        // the noise once corrected is the wobble's, not the weekends' jumps
        assert!(sat.noise.unwrap() < 0.5, "{sat:?}");
    }

    #[test]
    fn one_odd_night_of_the_week_is_a_weekday_rhythm() {
        let h = BTreeSet::new();
        let n = nights(|d| if d.weekday() == Weekday::Wed { 2.0 } else { 0.0 });
        let c = choose(&n, &n, day(58), Rhythm::None, &settings(&h));
        assert_eq!(c.rhythm, Rhythm::Weekday);
        assert!((c.correction - 2.0).abs() < 0.35, "{c:?}");
    }

    #[test]
    fn a_holiday_is_a_rest_night() {
        let h: BTreeSet<NaiveDate> = [day(59)].into(); // a Thursday
        assert_eq!(Rhythm::RestOrWork.kind(day(59), &h), 1);
        assert_eq!(Rhythm::Weekday.kind(day(59), &h), 6);
        assert_eq!(Rhythm::RestOrWork.kind(day(58), &h), 0);
    }

    #[test]
    fn a_leak_moves_every_kind_alike_and_is_not_explained_away() {
        let h = BTreeSet::new();
        // the last ten nights 2.0 higher, whatever their kind
        let n = nights(|d| if d >= day(46) { 2.0 } else { 0.0 });
        let c = choose(&n, &n, day(56), Rhythm::None, &settings(&h));
        assert_eq!(c.rhythm, Rhythm::None, "{c:?}");
    }

    #[test]
    fn too_few_nights_choose_nothing() {
        let h = BTreeSet::new();
        let n: Vec<(NaiveDate, f64)> = nights(|_| 0.0).into_iter().take(10).collect();
        assert_eq!(choose(&n, &n, day(10), Rhythm::None, &settings(&h)).rhythm, Rhythm::None);
    }
}

//! Bursts: a sustained excess of a zone's inflow over what is usual for this time of day
//! on this kind of day (weekday or weekend), not a step against the hour before, so that
//! a morning's demand ramp is no burst. Pure: flows and pressures in, episodes out.
//!
//! How it decides, at any reading interval from a second to fifteen minutes:
//! - the readings are averaged into bins as wide as their usual spacing (at least a
//!   minute, at most an hour), so a second's polling costs no more than a minute's;
//! - *usual* at a time is, for each earlier day of the same kind (up to two weeks back),
//!   the highest bin within ±20 minutes of that time of day — the envelope of the day's
//!   pattern, which a ramp that comes a little earlier or later stays under — and the
//!   median of those highs over the days (at least three days of that kind, else the
//!   time is not judged: a zone's first weekends wait for three earlier ones);
//!   a day read more sparsely than the bins judged is no reference (an hourly day does
//!   not show the peaks between its readings), so readings finer than their history are
//!   not judged until three days of that fineness exist;
//! - a bin is *above* when the inflow exceeds usual by `min_rise`, by a fifth of the
//!   zone's mean flow of the week before, and by three spreads of the earlier days'
//!   envelopes at that time (a zone whose mornings differ a lot from day to day needs a
//!   larger excess there); a burst goes on while the excess stays above half of that,
//!   and ends at the second bin in a row below it;
//! - it is *confirmed* (a burst, the safety incident) when the excess has lasted
//!   `confirm` (30 minutes by default, over two bins at least) or the zone's pressure fell
//!   by `drop_share` with it; an excess that fades sooner is no burst;
//! - without three earlier days to know what is usual (a new gateway), only a rise
//!   against the hour before with a pressure drop counts, on three readings in a row.
//!
//! Stamped at the first bin above; the loss is the median excess.

use chrono::{DateTime, Datelike, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;

use super::rules::Episode;
use super::said::Fact;
use crate::ledger::intervals::usual_spacing;
use crate::model::{AlertRule, Severity};

type Series = [(DateTime<Utc>, f64)];
/// (bin start, mean flow, its judgement when what is usual there is known).
type Judged = (DateTime<Utc>, f64, Option<Judgement>);
/// (reading time, its rise against the hour before and that hour's mean, when above).
type Step = (DateTime<Utc>, Option<(f64, f64)>);

/// The settings of one zone's burst rule.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The least excess that can be a burst, m³/h.
    pub min_rise: f64,
    /// The share by which the pressure must fall to confirm at once (0.15: 15 %).
    pub drop_share: f64,
    /// How long an excess must last to be confirmed without a pressure drop.
    pub confirm: TimeDelta,
    /// How long after a reading it may still stand for the flow (four polls).
    pub lag: TimeDelta,
    pub tz: Tz,
    /// Days kept as a weekend (public holidays, term breaks).
    pub holidays: std::collections::BTreeSet<chrono::NaiveDate>,
}

/// Readings sparser than this cannot show a burst within half an hour (hourly ones still
/// show one within two hours).
pub const SPARSEST: TimeDelta = TimeDelta::minutes(15);
/// The half-width of the window of the usual envelope.
const WINDOW: TimeDelta = TimeDelta::minutes(20);
/// How many days back "usual" looks.
const DAYS_BACK: i64 = 14;

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// A day the campus rests: a Saturday, a Sunday or a holiday.
fn weekend(t: DateTime<Utc>, s: &Settings) -> bool {
    let local = t.with_timezone(&s.tz);
    matches!(local.weekday(), Weekday::Sat | Weekday::Sun) || s.holidays.contains(&local.date_naive())
}

/// A bin: its start, the mean of its readings, how many readings.
type Bin = (DateTime<Utc>, f64, usize);

/// Mean values of `flows` in bins of `width`, in time order.
fn bins(flows: &Series, width: TimeDelta) -> Vec<Bin> {
    let w = width.num_milliseconds().max(1);
    let mut out: Vec<Bin> = Vec::new();
    let mut acc: Option<(i64, f64, usize)> = None;
    for (t, v) in flows {
        let k = t.timestamp_millis().div_euclid(w);
        match &mut acc {
            Some((bk, sum, n)) if *bk == k => {
                *sum += v;
                *n += 1;
            }
            _ => {
                if let Some((bk, sum, n)) = acc.take() {
                    if let Some(start) = DateTime::from_timestamp_millis(bk * w) {
                        out.push((start, sum / n as f64, n));
                    }
                }
                acc = Some((k, *v, 1));
            }
        }
    }
    if let Some((bk, sum, n)) = acc {
        if let Some(start) = DateTime::from_timestamp_millis(bk * w) {
            out.push((start, sum / n as f64, n));
        }
    }
    out
}

/// The highest bin within the window around `at`, when that day's readings there are
/// as dense as the bins judged: a day read hourly cannot show the peak between two
/// readings that a day read every five minutes shows, so it is no reference for it.
fn envelope(b: &[Bin], at: DateTime<Utc>, width: TimeDelta, per_bin: usize) -> Option<f64> {
    let lo = b.partition_point(|(t, _, _)| *t < at - WINDOW);
    let hi = b.partition_point(|(t, _, _)| *t <= at + WINDOW);
    let expected = (2 * WINDOW.num_seconds()) as f64 / width.num_seconds().max(1) as f64;
    let readings: usize = b[lo..hi].iter().map(|x| x.2).sum();
    if ((hi - lo) as f64) < (expected / 2.0).max(1.0) || (readings as f64) < (hi - lo) as f64 * per_bin as f64 / 2.0 {
        return None;
    }
    b[lo..hi].iter().map(|(_, v, _)| *v).reduce(f64::max)
}

/// What is usual at a time of day, from the earlier days of the same kind.
#[derive(Debug, Clone, Copy)]
struct Usual {
    /// The median of the days' envelopes.
    high: f64,
    /// The median of the days' values at the time.
    mid: f64,
    /// How far the days' envelopes spread (1.4826 × their median absolute deviation):
    /// what one day differs from another at this time.
    spread: f64,
}

/// A bin judged: what is usual there, the zone's mean flow over the week before it, and
/// the excess over `usual.high` that counts as above.
#[derive(Debug, Clone, Copy)]
struct Judgement {
    usual: Usual,
    mean: f64,
    need: f64,
}

fn usual(b: &[Bin], at: DateTime<Utc>, width: TimeDelta, per_bin: usize, s: &Settings) -> Option<Usual> {
    // only days of the same kind: a Saturday morning is not judged against weekdays'
    let kind = weekend(at, s);
    let (mut highs, mut mids) = (Vec::new(), Vec::new());
    for d in (1..=DAYS_BACK).filter(|d| weekend(at - TimeDelta::days(*d), s) == kind) {
        let r = at - TimeDelta::days(d);
        let Some(high) = envelope(b, r, width, per_bin) else { continue };
        let i = b.partition_point(|(t, _, _)| *t < r);
        highs.push(high);
        mids.push(b.get(i).filter(|(t, _, _)| *t - r <= WINDOW).map_or(high, |p| p.1));
    }
    if highs.len() < 3 {
        return None;
    }
    // a weekly rhythm (a tank filled every Monday night, a market every Saturday): what
    // both of the last two same weekdays showed at this time is usual too
    // (of the same kind: a holiday's weekday a week before was a working day)
    let weekly = [7, 14].map(|d| {
        let r = at - TimeDelta::days(d);
        (weekend(r, s) == kind).then(|| envelope(b, r, width, per_bin)).flatten()
    });
    let weekly = match weekly {
        [Some(a), Some(b)] => a.min(b),
        _ => f64::NEG_INFINITY,
    };
    let of_kind = median(&mut highs.clone())?;
    let high = of_kind.max(weekly);
    let mut dev: Vec<f64> = highs.iter().map(|h| (h - of_kind).abs()).collect();
    Some(Usual { high, mid: median(&mut mids)?, spread: 1.4826 * median(&mut dev)? })
}

/// Whether the pressure fell by `share` between `[start - 1 h, start)` and `[start, end]`;
/// (now, before) when it did.
fn pressure_drop(pressures: &Series, start: DateTime<Utc>, end: DateTime<Utc>, share: f64) -> Option<(f64, f64)> {
    let lo = pressures.partition_point(|(t, _)| *t < start - TimeDelta::hours(1));
    let mid = pressures.partition_point(|(t, _)| *t < start);
    let hi = pressures.partition_point(|(t, _)| *t <= end);
    let mut before: Vec<f64> = pressures[lo..mid].iter().map(|p| p.1).collect();
    if before.len() < 3 {
        return None;
    }
    let was = median(&mut before)?;
    let low = pressures[mid..hi].iter().map(|p| p.1).reduce(f64::min)?;
    (low <= was * (1.0 - share)).then_some((low, was))
}

/// Whether a burst is the pipes refilling after an interruption of its zone: it starts
/// after the supply was lost and at most an hour after it came back. A burst that starts
/// with the interruption (or before it) is its cause, and stays.
pub fn is_refill(burst: &Episode, interruption: &Episode) -> bool {
    burst.start > interruption.start && interruption.end.is_none_or(|end| burst.start <= end + TimeDelta::hours(1))
}

/// A burst's episode: critical, stamped at its start, its loss the median excess.
fn episode(zone: &str, start: DateTime<Utc>, end: Option<DateTime<Utc>>, evidence: Fact, rise: f64) -> Episode {
    Episode {
        rule: AlertRule::Burst,
        subject: zone.to_string(),
        zone: zone.to_string(),
        device: None,
        severity: Severity::Critical,
        start,
        end,
        evidence,
        loss_per_day: Some(rise * 24.0),
    }
}

/// Confirmed bursts in a zone's inflow (`flows` and `pressures` in time order, with the
/// history before the range evaluated).
pub fn burst(zone: &str, flows: &Series, pressures: &Series, from: DateTime<Utc>, s: &Settings) -> Vec<Episode> {
    let recent_from = from - TimeDelta::days(1);
    let start = flows.partition_point(|(t, _)| *t < recent_from);
    let times: Vec<DateTime<Utc>> = flows[start..].iter().map(|p| p.0).collect();
    let Some(spacing) = usual_spacing(&times) else { return Vec::new() };
    let width = spacing.clamp(TimeDelta::minutes(1), TimeDelta::hours(1));
    let b = bins(flows, width);
    // the zone's first three days have no three earlier days to know what is usual
    let Some(learnt) = flows.first().map(|(t, _)| *t + TimeDelta::days(3)) else { return Vec::new() };
    let mut out = Vec::new();
    if recent_from < learnt {
        let young = &flows[..flows.partition_point(|(t, _)| *t < learnt)];
        out.extend(without_history(zone, young, pressures, s).into_iter().filter(|e| e.start >= recent_from));
    }
    let first = b.partition_point(|(t, _, _)| *t < recent_from.max(learnt));
    // the zone's mean flow over the week before each bin, from running sums of the bins
    let mut sums = Vec::with_capacity(b.len() + 1);
    let mut total = 0.0;
    sums.push(total);
    for (_, v, _) in &b {
        total += v;
        sums.push(total);
    }
    let week_mean = |i: usize| -> Option<f64> {
        let lo = b.partition_point(|(t, _, _)| *t < b[i].0 - TimeDelta::days(7));
        (i > lo).then(|| (sums[i] - sums[lo]) / (i - lo) as f64)
    };
    let judged: Vec<Judged> = (first..b.len())
        .map(|i| {
            let (t, v, n) = b[i];
            let judgement = usual(&b, t, width, n, s).zip(week_mean(i)).map(|(usual, mean)| Judgement {
                usual,
                mean,
                // above: beyond `min_rise`, a fifth of the mean, and three spreads of the days
                need: s.min_rise.max(0.2 * mean).max(3.0 * usual.spread),
            });
            (t, v, judgement)
        })
        .collect();
    let mut i = 0;
    while i < judged.len() {
        let above = judged[i].2.is_some_and(|j| judged[i].1 - j.usual.high >= j.need);
        if !above {
            i += 1;
            continue;
        }
        // the run: it goes on while the excess stays above half the threshold, through at
        // most one bin below it, and across no gap of an hour
        let begin = i;
        let mut last = i;
        let mut j = i + 1;
        while j < judged.len() {
            if judged[j].0 - judged[last].0 > TimeDelta::hours(1) {
                break;
            }
            let keeps = |k: usize| judged[k].2.is_some_and(|j| judged[k].1 - j.usual.high >= j.need / 2.0);
            if keeps(j) {
                last = j;
            } else if !(j + 1 < judged.len() && keeps(j + 1)) {
                break;
            }
            j += 1;
        }
        let run = &judged[begin..=last];
        let started = judged[begin].0;
        let lasted = judged[last].0 + width - started;
        let end = judged.get(last + 1).map(|x| x.0);
        let drop = pressure_drop(pressures, started, judged[last].0 + width, s.drop_share);
        // persistence: `confirm` from the burst's start, which lies up to one bin before
        // the first bin that shows it, so the run itself need last one bin less
        let persist = s.confirm - width;
        let confirmed = run.len() >= 2 && (lasted >= persist || drop.is_some());
        // the run's first and last bins were judged above (or kept above half), so they
        // have a judgement and the run an excess
        let mut excess: Vec<f64> = run.iter().filter_map(|(_, v, j)| j.map(|j| v - j.usual.high)).collect();
        if let (true, Some(rise), (t, v, Some(j))) = (confirmed, median(&mut excess), judged[last]) {
            let evidence = Fact::Burst {
                inflow: v,
                usual: j.usual.mid,
                high: j.usual.high,
                mean: j.mean,
                weekend: weekend(t, s),
                pressure: drop,
                rise,
                minutes: lasted.num_minutes(),
            };
            out.push(episode(zone, started, end, evidence, rise));
        }
        i = last + 1;
    }
    out
}

/// A new gateway, without three days of the zone's flow: a rise of `min_rise` and 40 % of
/// the mean flow against the hour before, on three readings in a row, with the pressure
/// falling — a morning's ramp does not drop the pressure by 15 %.
fn without_history(zone: &str, flows: &Series, pressures: &Series, s: &Settings) -> Vec<Episode> {
    let mut prefix = Vec::with_capacity(flows.len() + 1);
    let mut total = 0.0;
    prefix.push(total);
    for (_, v) in flows {
        total += v;
        prefix.push(total);
    }
    let mean = |a: DateTime<Utc>, b: DateTime<Utc>| -> Option<f64> {
        let lo = flows.partition_point(|(x, _)| *x < a);
        let hi = flows.partition_point(|(x, _)| *x <= b);
        (hi >= lo + 2).then(|| (prefix[hi] - prefix[lo]) / (hi - lo) as f64)
    };
    let steps: Vec<Step> = flows
        .iter()
        .map(|(t, f)| {
            let before = mean(*t - TimeDelta::hours(1), *t - s.lag);
            let day = mean(*t - TimeDelta::days(1), *t - s.lag);
            let drop = pressure_drop(pressures, *t - s.lag, *t, s.drop_share);
            let held = match (before, day, drop) {
                (Some(b), Some(m), Some(_)) if f - b >= s.min_rise.max(0.4 * m) => Some((f - b, b)),
                _ => None,
            };
            (*t, held)
        })
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        if steps[i].1.is_none() {
            i += 1;
            continue;
        }
        let begin = i;
        while i < steps.len() && steps[i].1.is_some() {
            i += 1;
        }
        if i - begin < 3 {
            continue; // one or two readings: a spike, not a burst
        }
        // every step of the run is above, so each has its rise and the hour before it
        let mut rises: Vec<f64> = steps[begin..i].iter().filter_map(|x| x.1.map(|h| h.0)).collect();
        let (Some(rise), (t, Some((_, before)))) = (median(&mut rises), steps[begin]) else { continue };
        let drop = pressure_drop(pressures, t, steps[i - 1].0, s.drop_share);
        let evidence = Fact::BurstWithoutHistory { rise, before, pressure: drop };
        out.push(episode(zone, t, steps.get(i).map(|x| x.0), evidence, rise));
    }
    super::rules::merge(out, TimeDelta::minutes(10))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use chrono_tz::Asia::Shanghai;

    use super::*;

    /// A zone's inflow at `step` spacing over `days` days to 2026-03-20 (a Friday): nights
    /// at 10 m³/h, a morning ramp to 55 m³/h that starts between 05:40 and 06:20 (a
    /// different time each day), the day at 45, and ±2 % of noise; plus `extra` on top.
    fn campus(step: TimeDelta, days: i64, extra: &dyn Fn(DateTime<Utc>) -> f64) -> Vec<(DateTime<Utc>, f64)> {
        campus_until(at(20, 0, 0), 0.8, step, days, extra)
    }

    /// The same zone to `end`, its weekends at `weekend` times the weekdays' flow.
    fn campus_until(
        end: DateTime<Utc>,
        weekend_factor: f64,
        step: TimeDelta,
        days: i64,
        extra: &dyn Fn(DateTime<Utc>) -> f64,
    ) -> Vec<(DateTime<Utc>, f64)> {
        let mut t = end - TimeDelta::days(days);
        let mut seed: u64 = 7;
        let mut rnd = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as f64 / (1u64 << 31) as f64
        };
        let mut out = Vec::new();
        let mut day_shift = 0.0;
        let mut day = None;
        while t < end {
            let local = t.with_timezone(&Shanghai);
            if day != Some(local.date_naive()) {
                day = Some(local.date_naive());
                day_shift = rnd() * 40.0 - 20.0; // minutes
            }
            let minute = f64::from(local.hour() * 60 + local.minute()) - day_shift;
            let weekend = matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
            let base = match minute {
                m if m < 360.0 => 10.0,
                m if m < 420.0 => 10.0 + 45.0 * (m - 360.0) / 60.0,
                m if m < 480.0 => 55.0 - 10.0 * (m - 420.0) / 60.0,
                m if m < 1320.0 => 45.0,
                _ => 10.0,
            } * if weekend { weekend_factor } else { 1.0 };
            out.push((t, base * (1.0 + 0.04 * (rnd() - 0.5)) + extra(t)));
            t += step;
        }
        out
    }

    use chrono::Timelike;

    fn settings() -> Settings {
        Settings {
            min_rise: 5.0,
            drop_share: 0.15,
            confirm: TimeDelta::minutes(30),
            lag: TimeDelta::minutes(4),
            tz: Shanghai,
            holidays: Default::default(),
        }
    }

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Shanghai.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn morning_ramps_that_come_earlier_or_later_are_no_burst() {
        for step in [TimeDelta::minutes(1), TimeDelta::minutes(5), TimeDelta::minutes(15)] {
            let flows = campus(step, 18, &|_| 0.0);
            let eps = burst("north", &flows, &[], at(17, 0, 0), &settings());
            assert!(eps.is_empty(), "{step}: {eps:#?}");
        }
    }

    #[test]
    fn a_burst_of_a_quarter_of_the_mean_flow_is_confirmed_after_half_an_hour_and_lasts() {
        // the zone's mean is about 32 m³/h: 10 m³/h more from 14:00 on the 18th, for 6 hours
        let start = at(18, 14, 0);
        let extra = move |t: DateTime<Utc>| if t >= start && t < start + TimeDelta::hours(6) { 10.0 } else { 0.0 };
        for step in [TimeDelta::minutes(1), TimeDelta::minutes(5), TimeDelta::minutes(15)] {
            let flows = campus(step, 18, &extra);
            let eps = burst("north", &flows, &[], at(17, 0, 0), &settings());
            assert_eq!(eps.len(), 1, "{step}: {eps:#?}");
            let e = &eps[0];
            assert_eq!((e.rule, e.severity), (AlertRule::Burst, Severity::Critical));
            assert!((e.start - start).abs() <= step, "{step}: starts {}", e.start);
            // it does not clear while the excess stays
            let end = e.end.unwrap_or(DateTime::<Utc>::MAX_UTC);
            assert!(end >= start + TimeDelta::hours(6) - step, "{step}: ends {end}");
            assert!(end <= start + TimeDelta::hours(6) + step * 2, "{step}: ends {end}");
            let loss = e.loss_per_day.unwrap() / 24.0;
            assert!((8.0..=12.0).contains(&loss), "{step}: {loss} m³/h");
        }
    }

    #[test]
    fn a_holiday_is_judged_as_a_weekend_not_as_a_working_day() {
        // the 18th (a Wednesday) is a public holiday: the campus rests, its flow is a
        // weekend's (half a working day's); a burst of 12 m³/h from 10:00 that day
        let holiday = Shanghai.with_ymd_and_hms(2026, 3, 18, 0, 0, 0).unwrap().date_naive();
        let start = at(18, 10, 0);
        let flows: Vec<(DateTime<Utc>, f64)> = campus_until(at(20, 0, 0), 0.5, TimeDelta::minutes(5), 18, &|_| 0.0)
            .into_iter()
            .map(|(t, v)| {
                let rests = if t.with_timezone(&Shanghai).date_naive() == holiday { v * 0.5 } else { v };
                (t, rests + if t >= start && t < start + TimeDelta::hours(4) { 12.0 } else { 0.0 })
            })
            .collect();
        // judged against working days, the burst hides under their busier hours
        assert!(burst("north", &flows, &[], at(17, 0, 0), &settings()).is_empty());
        // judged against weekends, as the holiday it is, it stands out
        let mut s = settings();
        s.holidays.insert(holiday);
        let eps = burst("north", &flows, &[], at(17, 0, 0), &s);
        assert_eq!(eps.len(), 1, "{eps:#?}");
        assert!((eps[0].start - start).abs() <= TimeDelta::minutes(5));
        assert!(eps[0].evidence.en().contains("weekend or holiday"), "{}", eps[0].evidence.en());
    }

    #[test]
    fn a_weekly_rhythm_is_usual_but_a_burst_on_its_night_is_not() {
        // a tank filled every Tuesday from 01:00 to 02:30: 25 m³/h on top of the night
        let weekly = |t: DateTime<Utc>| {
            let l = t.with_timezone(&Shanghai);
            let m = l.hour() * 60 + l.minute();
            if l.weekday() == Weekday::Tue && (60..150).contains(&m) {
                25.0
            } else {
                0.0
            }
        };
        for step in [TimeDelta::minutes(1), TimeDelta::minutes(5)] {
            // three Tuesdays before the 20th: the 3rd, 10th and 17th; judged from the 17th on
            let flows = campus(step, 18, &weekly);
            let eps = burst("north", &flows, &[], at(17, 0, 0), &settings());
            assert!(eps.is_empty(), "{step}: the third Tuesday's filling is usual: {eps:#?}");
            // a burst on a Thursday night at the same hours is still one
            let start = at(19, 1, 0);
            let both = move |t: DateTime<Utc>| {
                weekly(t) + if t >= start && t < start + TimeDelta::hours(3) { 25.0 } else { 0.0 }
            };
            let eps = burst("north", &campus(step, 18, &both), &[], at(17, 0, 0), &settings());
            assert_eq!(eps.len(), 1, "{step}: {eps:#?}");
        }
    }

    #[test]
    fn an_excess_that_fades_within_half_an_hour_is_no_burst() {
        // a hydrant flushed for 20 minutes
        let start = at(18, 14, 0);
        let extra = move |t: DateTime<Utc>| if t >= start && t < start + TimeDelta::minutes(20) { 30.0 } else { 0.0 };
        let flows = campus(TimeDelta::minutes(1), 18, &extra);
        assert!(burst("north", &flows, &[], at(17, 0, 0), &settings()).is_empty());
        // unless the pressure fell with it
        let pressures: Vec<(DateTime<Utc>, f64)> = (0..240)
            .map(|m| {
                let t = start - TimeDelta::hours(2) + TimeDelta::minutes(m);
                (t, if t >= start && t < start + TimeDelta::minutes(20) { 2.0 } else { 3.0 })
            })
            .collect();
        let eps = burst("north", &flows, &pressures, at(17, 0, 0), &settings());
        assert_eq!(eps.len(), 1, "{eps:#?}");
        assert!(eps[0].evidence.en().contains("pressure 2.000 (usually 3.000)"), "{}", eps[0].evidence.en());
    }

    #[test]
    fn a_jump_after_supply_returns_is_a_refill_and_a_burst_that_cuts_supply_is_its_cause() {
        let outage = Episode {
            rule: AlertRule::SupplyInterruption,
            severity: Severity::Critical,
            evidence: Fact::Said { text: String::new() },
            loss_per_day: None,
            ..episode("south", at(8, 19, 0), Some(at(8, 23, 0)), Fact::Said { text: String::new() }, 0.0)
        };
        // (burst start, refill)
        for (start, refill) in [
            (at(8, 19, 0), false), // the scripted burst that emptied the zone
            (at(8, 18, 0), false),
            (at(8, 23, 0), true),
            (at(9, 0, 0), true),
            (at(9, 0, 5), false),
        ] {
            let b = episode("south", start, None, Fact::Said { text: String::new() }, 10.0);
            assert_eq!(is_refill(&b, &outage), refill, "{start}");
        }
    }

    #[test]
    fn a_weekend_is_not_judged_against_weekdays() {
        // from Monday 2 March: the first weekend's mornings are a third busier than the
        // weekdays', and there is no earlier weekend to know it by
        let flows = campus_until(at(9, 0, 0), 1.3, TimeDelta::minutes(5), 7, &|_| 0.0);
        let eps = burst("north", &flows, &[], at(7, 0, 0), &settings());
        assert!(eps.is_empty(), "{eps:#?}");
    }

    #[test]
    fn readings_finer_than_their_history_are_not_judged_against_it() {
        // hourly history, then the last days every five minutes: the peak of the morning
        // between two hourly readings is no burst (the demo's two false bursts)
        let fine_from = at(17, 0, 0);
        let hourly = campus(TimeDelta::hours(1), 18, &|_| 0.0);
        let fine = campus(TimeDelta::minutes(5), 18, &|_| 0.0);
        let mut flows: Vec<(DateTime<Utc>, f64)> = hourly.into_iter().filter(|(t, _)| *t < fine_from).collect();
        flows.extend(fine.into_iter().filter(|(t, _)| *t >= fine_from));
        let eps = burst("north", &flows, &[], at(18, 0, 0), &settings());
        assert!(eps.is_empty(), "{eps:#?}");
    }

    #[test]
    fn without_three_days_only_a_rise_with_a_pressure_drop_counts() {
        let t0 = at(18, 4, 0);
        let flows: Vec<(DateTime<Utc>, f64)> = (0..7200)
            .map(|s| {
                let t = t0 + TimeDelta::seconds(s);
                (t, if s >= 3600 { 70.0 } else { 20.0 })
            })
            .collect();
        let s = Settings { lag: TimeDelta::seconds(5), ..settings() };
        assert!(burst("east", &flows, &[], t0, &s).is_empty());
        let pressures: Vec<(DateTime<Utc>, f64)> =
            (0..7200).step_by(10).map(|x| (t0 + TimeDelta::seconds(x), if x >= 3600 { 1.5 } else { 3.0 })).collect();
        let eps = burst("east", &flows, &pressures, t0, &s);
        assert_eq!(eps.len(), 1, "{eps:#?}");
        assert!((eps[0].start - (t0 + TimeDelta::seconds(3600))).abs() <= TimeDelta::seconds(15));
    }
}

//! Leaks from a zone's night pressure: sequential change detection on what the zone's
//! inflow does not explain. Pure: the zone's hourly inflow, its pressure points' hourly
//! means and the site's time zone in, an evaluation per point and night hour out.
//!
//! Why a second signal: a leak's water travels the whole path from the inlet to where it
//! escapes, while the customers' night use is spread over the zone. So near a leak the
//! head falls by more than the zone's inflow predicts, and that fall does not move with
//! the night-to-night wander of demand that limits the flow rule ([`super::night_flow`]).
//! It also says where: the point nearest the leak falls most. Measured on a network
//! model driven by real inflows in BENCHMARKS.md ("Pressure as a second signal").
//! - Per point, what is fitted is its pressure less the mean of the zone's other points
//!   (the inlet head — a tank's level, a pump's duty — moves them all and cancels; with
//!   one point, the pressure itself), by least squares on the zone's inflow^1.852
//!   (Hazen–Williams head loss), over the hours of its last `history` (14) clean nights.
//! - Each hour's miss is scaled by that hour's inflow^1.852: the unevenness of night use
//!   across the zone moves the head loss in proportion to it. A night's miss so far is
//!   the mean of its hours' scaled misses; its noise is the robust spread (1.4826 × MAD)
//!   of the last `noise_nights` (28) nights' misses over as many hours, as they were
//!   judged (before they could join the fit: the nights kept clean are the quiet ones,
//!   so a spread taken from them shrinks), and at least `floor_share` of the point's
//!   pressure. A night's hours are not independent, so its noise is measured over as
//!   many hours, not taken as an hour's over √n.
//! - The evidence is a one-sided CUSUM of the nights' misses in noise units:
//!   `S = max(0, S + z − slack)` after each complete night, and during a night
//!   `S + z_so_far − slack`, so a large fall is raised within the night and a small one
//!   once enough nights add up. A leak is raised when the evidence reaches `threshold`.
//! - While evidence stands, clean nights wait to join the fit until it is spent: a small
//!   fall that joined night by night would be learnt before it added up.
//! - A night beyond `dirty` noise units either way is kept out of the fit; after
//!   `accept_after` such nights in a row on the same side the new level is the normal (a
//!   reset pressure-reducing valve, a re-routed main): the fit restarts from them and the
//!   evidence clears. A raised leak clears when a night's miss is under `clear` units.
//! - [`leaks`] makes the alerts: one per leak however many points see it, and none
//!   for a zone with one point (it cannot tell a leak from the inlet head's wander).

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, DurationRound, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

use super::night_flow::{nights_of, NightHour};
use super::night_rhythm::median;
use super::rules::{stands_out, AlertRule, Episode, Severity};
use super::said::Fact;

/// The Hazen–Williams exponent: head loss grows with the flow to this power.
const HEAD_LOSS_EXPONENT: f64 = 1.852;

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// First and last local hour (their starts) of the night window, as for night flow.
    pub window: (u32, u32),
    /// Clean nights the regression is fitted on.
    pub history: usize,
    /// The last nights whose misses, as judged, give the noise.
    pub noise_nights: usize,
    /// At least this many clean nights before there is a fit.
    pub min_history: usize,
    /// The noise is at least this share of the point's mean pressure.
    pub floor_share: f64,
    /// The CUSUM's slack and threshold, in noise units.
    pub slack: f64,
    pub threshold: f64,
    /// A night beyond this many noise units either way is not clean.
    pub dirty: f64,
    /// A raised leak clears on a night under this many noise units.
    pub clear: f64,
    /// Unclean nights in a row after which their level is accepted as the new normal.
    pub accept_after: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window: (23, 5),
            history: 14,
            noise_nights: 28,
            min_history: 7,
            floor_share: 0.0005,
            slack: 1.5,
            threshold: 5.0,
            dirty: 3.0,
            clear: 1.0,
            accept_after: 14,
        }
    }
}

impl Settings {
    /// Nights a fall of `units` noise units per night takes to be surely raised (the
    /// CUSUM's climb of `units − slack` a night up to the threshold); `None` at or below
    /// the slack, where only the nights' noise can raise it.
    pub fn nights_to_raise(&self, units: f64) -> Option<f64> {
        (units > self.slack).then(|| (self.threshold / (units - self.slack)).ceil().max(1.0))
    }

    fn hours(&self) -> Vec<u32> {
        super::night_flow::Settings { window: self.window, ..Default::default() }.hours()
    }
}

/// Fewest pressure points a zone needs for this rule: one point cannot tell a leak from
/// the inlet head's own wander (a tank's level over days). On the model in BENCHMARKS.md
/// it raised a false leak a quarter and found almost nothing; a second point (one at the
/// inlet will do) cancels it.
pub const MIN_POINTS: usize = 2;

/// One pressure point's hourly means (UTC hour start → pressure).
pub type Point<'a> = &'a BTreeMap<DateTime<Utc>, f64>;

/// The evaluation of one point at the end of one night hour.
#[derive(Debug, Clone, PartialEq)]
pub struct PressureHour {
    /// The end of the hour.
    pub at: DateTime<Utc>,
    /// The night (local date of its morning).
    pub night: NaiveDate,
    /// Index of the point in the input.
    pub point: usize,
    /// The pressure, and what the inflow (and the other points) predicted.
    pub pressure: f64,
    pub expected: Option<f64>,
    /// The night's mean fall so far below the prediction (pressure unit; negative: above).
    pub fall: Option<f64>,
    /// The noise of that mean (pressure unit).
    pub noise: Option<f64>,
    /// The fall in noise units (the misses are scaled by the night's flow before they
    /// are compared: see [`Fit::scale`]).
    pub units: Option<f64>,
    /// The night's mean miss so far in scale units (what the noise is learnt from).
    miss: Option<f64>,
    /// The evidence after this hour (CUSUM, noise units).
    pub evidence: f64,
    /// True while a leak is raised (from the hour that raised it).
    pub leak: bool,
}

impl PressureHour {
    /// The night's fall so far in noise units.
    pub fn units(&self) -> Option<f64> {
        self.units
    }
}

/// One usable hour of a point.
#[derive(Debug, Clone)]
struct Sample {
    /// The pressure, and what is fitted: the pressure less the other points' mean.
    pressure: f64,
    y: f64,
    /// The zone's inflow^1.852 in the same hour.
    x: f64,
    start: DateTime<Utc>,
}

/// A least-squares line of `y` on `x`; flat where `x` does not vary among the samples
/// it is fitted on.
#[derive(Debug, Clone)]
struct Fit {
    mean_y: f64,
    mean_x: f64,
    slope: f64,
}

impl Fit {
    fn new(samples: &[&Sample]) -> Option<Fit> {
        if samples.len() < 3 {
            return None;
        }
        let n = samples.len() as f64;
        let mean_y = samples.iter().map(|s| s.y).sum::<f64>() / n;
        let mean_x = samples.iter().map(|s| s.x).sum::<f64>() / n;
        let sxx: f64 = samples.iter().map(|s| (s.x - mean_x).powi(2)).sum();
        let sxy: f64 = samples.iter().map(|s| (s.x - mean_x) * (s.y - mean_y)).sum();
        // an inflow whose spread is nil next to its level carries nothing to fit
        let slope = if sxx > 1e-12 * (1.0 + mean_x * mean_x) * n { sxy / sxx } else { 0.0 };
        (slope.is_finite() && mean_y.is_finite()).then_some(Fit { mean_y, mean_x, slope })
    }

    /// The scale of a sample's miss: the demand's uneven spread over the zone moves the
    /// head loss in proportion to it, so the misses of a night of heavy flow are larger
    /// (at least a fifth of the fitted nights' mean, so that a night of no flow does not
    /// magnify a transducer's noise).
    fn scale(&self, x: f64) -> f64 {
        if self.mean_x > 0.0 {
            x.max(0.2 * self.mean_x)
        } else {
            1.0
        }
    }

    /// A sample's miss (positive: below what was expected) in units of its scale.
    fn miss(&self, s: &Sample) -> f64 {
        (self.predict(s.x) - s.y) / self.scale(s.x)
    }

    fn predict(&self, x: f64) -> f64 {
        self.mean_y + self.slope * (x - self.mean_x)
    }
}

/// A point's nights: the usable hours of each (the inflow and every other point known in
/// the same hour).
fn samples_of(
    points: &[Point<'_>],
    i: usize,
    inflow: &BTreeMap<DateTime<Utc>, f64>,
    tz: Tz,
    hours: &[u32],
) -> Vec<(NaiveDate, Vec<Sample>)> {
    nights_of(points[i], tz, hours)
        .into_iter()
        .map(|(date, hrs)| {
            let samples = hrs
                .into_iter()
                .filter_map(|(_, p, t)| {
                    let q = inflow.get(&t).copied().filter(|q| q.is_finite())?;
                    // every other point, or none: points stand metres apart (their
                    // heights), so a mean over whichever happen to report would jump
                    let mut others = 0.0;
                    for (_, o) in points.iter().enumerate().filter(|(j, _)| *j != i) {
                        others += o.get(&t).copied().filter(|x| x.is_finite())?;
                    }
                    let others = others / (points.len() - 1).max(1) as f64;
                    // against the others' mean the inlet head cancels: fitting its
                    // weight instead would dilute it (the others carry their own demand's
                    // noise) and leave the head's day-to-day wander in the residual
                    Some(Sample { pressure: p, y: p - others, x: q.abs().powf(HEAD_LOSS_EXPONENT), start: t })
                })
                .collect();
            (date, samples)
        })
        .collect()
}

/// The noise of a night's mean residual over its first `k` hours, for k = 1 ..= n_h:
/// the robust spread of the clean nights' such means, at least `floor`.
fn noises(fit: &Fit, clean: &[Vec<Sample>], n_h: usize, floor: f64) -> Vec<f64> {
    (1..=n_h)
        .map(|k| {
            let means: Vec<f64> = clean
                .iter()
                .filter(|night| night.len() >= k)
                .map(|night| night[..k].iter().map(|s| fit.miss(s)).sum::<f64>() / k as f64)
                .collect();
            robust_spread(means, floor)
        })
        .collect()
}

/// The noise from the last nights' falls as they were judged: for each number of hours
/// k, the robust spread of those nights' means over their first k hours, at least `floor`.
fn spread_of(misses: &VecDeque<Vec<f64>>, n_h: usize, floor: f64) -> Vec<f64> {
    (0..n_h).map(|k| robust_spread(misses.iter().filter_map(|m| m.get(k).copied()).collect(), floor)).collect()
}

/// 1.4826 × the median absolute deviation, at least `floor`; unknown (NaN) from fewer
/// than three values.
fn robust_spread(mut v: Vec<f64>, floor: f64) -> f64 {
    if v.len() < 3 {
        return f64::NAN;
    }
    let centre = median(&mut v);
    let mut dev: Vec<f64> = v.iter().map(|m| (*m - centre).abs()).collect();
    (1.4826 * median(&mut dev)).max(floor)
}

/// Evaluates every night hour of every point.
pub fn evaluate(
    inflow: &BTreeMap<DateTime<Utc>, f64>,
    points: &[Point<'_>],
    tz: Tz,
    s: &Settings,
) -> Vec<PressureHour> {
    let hours = s.hours();
    let mut out = Vec::new();
    for i in 0..points.len() {
        evaluate_point(i, samples_of(points, i, inflow, tz, &hours), hours.len(), s, &mut out);
    }
    out.sort_by_key(|h| (h.at, h.point));
    out
}

/// One point's nights, in order, each night's hours appended to `out`.
fn evaluate_point(
    i: usize,
    nights: Vec<(NaiveDate, Vec<Sample>)>,
    n_h: usize,
    s: &Settings,
    out: &mut Vec<PressureHour>,
) {
    let mut clean: Vec<Vec<Sample>> = Vec::new();
    let mut dirty_run: Vec<(Vec<Sample>, f64)> = Vec::new();
    let mut pending: Vec<Vec<Sample>> = Vec::new();
    // the last nights' falls as they were judged (before they could join the fit)
    let mut misses: VecDeque<Vec<f64>> = VecDeque::new();
    let mut cusum = 0.0_f64;
    let mut leak = false;
    for (date, night) in nights {
        let from = clean.len().saturating_sub(s.history);
        let fitted: Vec<&Sample> = clean[from..].iter().flatten().collect();
        let fit = (clean.len() >= s.min_history).then(|| Fit::new(&fitted)).flatten();
        let level = fitted.iter().map(|x| x.pressure.abs()).sum::<f64>() / fitted.len().max(1) as f64;
        // the floor in the misses' units
        let floor = s.floor_share * level / fit.as_ref().map_or(1.0, |f| f.scale(f.mean_x));
        let noise = fit.as_ref().map(|f| {
            if misses.len() >= s.min_history {
                spread_of(&misses, n_h, floor)
            } else {
                noises(f, &clean[from..], n_h, floor)
            }
        });
        // the night so far: its misses in pressure units, in scale units, and the scales
        let (mut sum_p, mut sum_u, mut sum_sc) = (0.0, 0.0, 0.0);
        let mut night_evidence = cusum;
        for (k, smp) in night.iter().enumerate() {
            let expected = fit.as_ref().map(|f| f.predict(smp.x) + smp.pressure - smp.y);
            let mut hour = PressureHour {
                at: smp.start + TimeDelta::hours(1),
                night: date,
                point: i,
                pressure: smp.pressure,
                expected,
                fall: None,
                noise: None,
                units: None,
                miss: None,
                evidence: cusum,
                leak,
            };
            // a night one hour longer (the clock going back) uses the full night's noise
            let sig = noise.as_ref().and_then(|n| n.get(k.min(n_h - 1))).filter(|x| x.is_finite());
            if let (Some(e), Some(f), Some(sig)) = (expected, fit.as_ref(), sig) {
                let n = (k + 1) as f64;
                sum_p += e - smp.pressure;
                sum_u += f.miss(smp);
                sum_sc += f.scale(smp.x);
                let z = sum_u / n / sig;
                hour.fall = Some(sum_p / n);
                hour.noise = Some(sig * sum_sc / n);
                hour.units = Some(z);
                hour.miss = Some(sum_u / n);
                night_evidence = (cusum + z - s.slack).max(0.0);
                hour.evidence = night_evidence;
                leak |= night_evidence >= s.threshold;
                hour.leak = leak;
            }
            out.push(hour);
        }
        if night.len() + 1 < n_h {
            continue; // an incomplete night neither adds evidence nor joins the fit
        }
        if !leak {
            let falls: Vec<f64> =
                out.iter().rev().take_while(|h| h.point == i && h.night == date).filter_map(|h| h.miss).collect();
            if falls.len() + 1 >= n_h {
                misses.push_back(falls.into_iter().rev().collect());
                if misses.len() > s.noise_nights {
                    misses.pop_front();
                }
            }
        }
        let tonight = || out.iter().rev().take_while(|h| h.point == i && h.night == date);
        let Some(z) = tonight().find_map(|h| h.units()) else {
            clean.push(night); // warming up: the night feeds the fit
            continue;
        };
        cusum = night_evidence;
        let mut dirty = leak || z.abs() >= s.dirty;
        if leak && z < s.clear {
            leak = false;
            cusum = 0.0;
            pending.clear(); // the nights that led up to the leak
            dirty = z.abs() >= s.dirty;
        }
        if dirty {
            if dirty_run.last().is_some_and(|(_, x)| (*x < 0.0) != (z < 0.0)) {
                dirty_run.clear(); // a run is all falls or all rises
            }
            dirty_run.push((night, z));
            if dirty_run.len() >= s.accept_after {
                // the new level is the normal: the fit restarts from it
                clean = dirty_run.drain(..).map(|(n, _)| n).collect();
                pending.clear();
                misses.clear(); // the old level's misses say nothing of the new one's
                leak = false;
                cusum = 0.0;
            }
        } else {
            dirty_run.clear();
            // while evidence stands, the fit waits: a small fall that joined it night
            // by night would be learnt before it added up; the nights join once the
            // evidence is spent (or has stood `accept_after` nights without raising)
            pending.push(night);
            if cusum <= 0.0 || pending.len() >= s.accept_after {
                clean.append(&mut pending);
            }
            if clean.len() > 4 * s.history {
                clean.drain(..clean.len() - s.history);
            }
        }
    }
}

/// One pressure point of a zone: its name, unit and hourly means.
pub struct PressurePoint {
    pub id: String,
    pub unit: std::sync::Arc<str>,
    pub hourly: BTreeMap<DateTime<Utc>, f64>,
}

/// Leaks from a zone's night pressure ([`evaluate`] on each point against
/// the zone's hourly `inflow`): one episode per leak, however many points see it, raised by the point that
/// saw it first and lasting while any point holds it. Its rate is what the zone's night
/// flow (or balance) `flow` stands above its baseline over the same nights, as the flow
/// rule estimates it; a pressure fall alone says where, not how much.
pub fn leaks(
    zone: &str,
    inflow: &BTreeMap<DateTime<Utc>, f64>,
    points: &[PressurePoint],
    tz: Tz,
    flow: &[NightHour],
    s: &Settings,
) -> Vec<Episode> {
    if points.len() < MIN_POINTS {
        return Vec::new();
    }
    let watched: Vec<Point<'_>> = points.iter().map(|p| &p.hourly).collect();
    let hours = evaluate(inflow, &watched, tz, s);
    let hours = &hours[..];
    let (from_hour, to_hour) = (s.window.0 % 24, (s.window.1 + 1) % 24);
    // each point's runs: (index of the raising hour, end)
    let mut runs: Vec<(usize, Option<DateTime<Utc>>)> = Vec::new();
    for p in 0..points.len() {
        let mine: Vec<usize> = (0..hours.len()).filter(|i| hours[*i].point == p).collect();
        let mut k = 0;
        while k < mine.len() {
            if !hours[mine[k]].leak {
                k += 1;
                continue;
            }
            let start = mine[k];
            while k < mine.len() && hours[mine[k]].leak {
                k += 1;
            }
            runs.push((start, mine.get(k).map(|i| hours[*i].at)));
        }
    }
    runs.sort_by_key(|(i, _)| (hours[*i].at, hours[*i].point));
    let mut merged: Vec<(usize, Option<DateTime<Utc>>)> = Vec::new();
    for (i, end) in runs {
        match merged.last_mut() {
            Some((_, last_end)) if last_end.is_none_or(|e| hours[i].at <= e) => {
                *last_end = match (*last_end, end) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            _ => merged.push((i, end)),
        }
    }
    merged
        .into_iter()
        .filter_map(|(i, end)| {
            let h = &hours[i];
            let point = points.get(h.point)?;
            // the nights the evidence stands on: since a night last ended with none (an
            // hour's evidence within a night is provisional)
            let mine: Vec<&PressureHour> = hours[..i].iter().filter(|x| x.point == h.point).collect();
            let since = mine
                .windows(2)
                .rev()
                .find(|w| w[0].night != w[1].night && w[0].evidence <= 0.0)
                .map_or(h.at - TimeDelta::days(1), |w| w[0].at);
            let nights = ((h.at - since).num_hours() as f64 / 24.0).ceil().max(1.0);
            let excess: Vec<f64> = flow
                .iter()
                .filter(|f| f.at > since && end.is_none_or(|e| f.at <= e))
                .filter_map(|f| f.baseline.map(|b| f.flow - b))
                .collect();
            let rate = (!excess.is_empty()).then(|| {
                let mut e = excess.clone();
                e.sort_by(f64::total_cmp);
                e[e.len() / 2].max(0.0) // the flow below its usual shows no loss, not a gain
            });
            let noise = flow.iter().rev().find(|f| f.at <= h.at).and_then(|f| f.noise);
            let band = noise.map(|n| 2.0 * n / nights.sqrt());
            let evidence = Fact::NightPressure {
                point: point.id.to_string(),
                unit: point.unit.to_string(),
                from_hour,
                to_hour,
                fall: h.fall,
                noise: h.noise,
                units: h.units(),
                evidence: h.evidence,
                nights,
                certain_in: h.units().and_then(|u| s.nights_to_raise(u)),
                rate,
                band,
                night: h.night,
            };
            // the loss is counted only where the flow shows it (the rate stands out)
            let loss = rate.filter(|r| stands_out(Some(*r), band.map(|b| b / 2.0)));
            let critical = loss.is_some_and(|r| r >= 2.0);
            Some(Episode {
                rule: AlertRule::NightPressure,
                subject: zone.to_string(),
                zone: zone.to_string(),
                device: None,
                severity: if critical { Severity::Critical } else { Severity::Warning },
                start: h.at,
                end,
                evidence,
                loss_per_day: loss.map(|r| r * 24.0),
            })
        })
        .collect()
}

/// Hourly means of a point's readings (UTC hour start → mean); an hour with any reading
/// below `no_supply` is an interruption's, not evidence, and is left out.
pub fn hourly_means(readings: &[(DateTime<Utc>, f64)], no_supply: f64) -> BTreeMap<DateTime<Utc>, f64> {
    let mut sums: BTreeMap<DateTime<Utc>, (f64, usize, bool)> = BTreeMap::new();
    for (t, v) in readings {
        let Ok(hour) = t.duration_trunc(TimeDelta::hours(1)) else { continue };
        let e = sums.entry(hour).or_insert((0.0, 0, false));
        e.0 += v;
        e.1 += 1;
        e.2 |= *v < no_supply;
    }
    sums.into_iter().filter(|(_, (_, n, cut))| *n > 0 && !cut).map(|(t, (s, n, _))| (t, s / n as f64)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A zone with a night inflow that wanders from night to night, and pressure points
    /// whose head falls with the inflow (`r` per flow^1.852) from an inlet head that
    /// drifts; `leak` adds `rate` to the inflow from hour `from` on, and `drop` more at
    /// point 0 (it is near the leak).
    struct Zone {
        inflow: BTreeMap<DateTime<Utc>, f64>,
        points: Vec<BTreeMap<DateTime<Utc>, f64>>,
    }

    fn wobble(i: i64, k: i64) -> f64 {
        // deterministic, roughly uniform on [-1, 1]
        (((i * 7919 + k * 104_729) % 2001) as f64 - 1000.0) / 1000.0
    }

    fn zone(days: i64, n_points: usize, head_drift: f64, leak: Option<(i64, f64, f64)>) -> Zone {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("a valid date");
        let mut z = Zone { inflow: BTreeMap::new(), points: vec![BTreeMap::new(); n_points] };
        for h in 0..days * 24 {
            let t = t0 + TimeDelta::hours(h);
            let night = h / 24;
            let hour = h % 24;
            let demand = 10.0
                + 8.0 * ((hour as f64 - 4.0) / 24.0 * std::f64::consts::TAU).sin().abs()
                + 1.5 * wobble(night, 1)
                + 0.3 * wobble(h, 2);
            let (rate, drop) = match leak {
                Some((from, rate, drop)) if h >= from => (rate, drop),
                _ => (0.0, 0.0),
            };
            let q = demand + rate;
            z.inflow.insert(t, q);
            let head = 50.0 + head_drift * wobble(night, 3) + 0.2 * head_drift * wobble(h, 4);
            for (p, series) in z.points.iter_mut().enumerate() {
                let near = if p == 0 { drop } else { 0.0 };
                // the points stand 5 m apart in height
                let height = 5.0 * p as f64;
                series.insert(
                    t,
                    head - height - 0.01 * q.powf(HEAD_LOSS_EXPONENT) - near + 0.005 * wobble(h, 5 + p as i64),
                );
            }
        }
        z
    }

    fn run(z: &Zone, s: &Settings) -> Vec<PressureHour> {
        let points: Vec<Point<'_>> = z.points.iter().collect();
        evaluate(&z.inflow, &points, chrono_tz::UTC, s)
    }

    fn first_raise(hours: &[PressureHour]) -> Option<DateTime<Utc>> {
        hours.iter().find(|h| h.leak).map(|h| h.at)
    }

    #[test]
    fn demand_and_the_inlet_head_moving_raise_nothing() {
        // the inflow wanders by ±15 % from night to night and the inlet head by ±1 m: the
        // fit explains both (the head through the other points)
        let z = zone(60, 3, 1.0, None);
        let hours = run(&z, &Settings::default());
        assert!(hours.iter().filter(|h| h.noise.is_some()).count() > 3 * 7 * 40, "the fit must warm up");
        assert_eq!(first_raise(&hours), None);
        // what the inflow predicts is within a few centimetres
        let worst = hours.iter().filter_map(|h| h.expected.map(|e| (e - h.pressure).abs())).fold(0.0, f64::max);
        assert!(worst < 0.05, "{worst}");
    }

    #[test]
    fn a_fall_near_one_point_is_raised_on_its_first_night() {
        // from day 40 at 23:00 a leak of 1 m³/h (a tenth of the night inflow, inside its
        // night-to-night wander) lowers point a by 0.3 m beyond what the inflow predicts
        let from = 40 * 24 - 1;
        let z = zone(60, 3, 1.0, Some((from, 1.0, 0.3)));
        let hours = run(&z, &Settings::default());
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("a valid date");
        let start = t0 + TimeDelta::hours(from);
        let raised = first_raise(&hours).expect("raised");
        assert!(raised > start && raised <= start + TimeDelta::hours(7), "{raised}");
        let h = hours.iter().find(|h| h.leak).expect("raised");
        assert_eq!(h.point, 0, "the point near the leak raises");
        assert!(h.fall.is_some_and(|f| f > 0.25 && f < 0.35), "{:?}", h.fall);
        // before it, every hour's evidence stays under the threshold
        assert!(hours.iter().filter(|h| h.at <= start).all(|h| h.evidence < 5.0));
    }

    #[test]
    fn a_small_fall_is_raised_once_its_nights_add_up() {
        // a fall of about three noise units a night: no single night raises it (3 − 1.5
        // slack < 5), the evidence climbs by about 1.5 a night and raises it on the 4th
        let from = 40 * 24 - 1;
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("a valid date");
        let start = t0 + TimeDelta::hours(from);
        let first_night_units = |drop: f64| {
            let hours = run(&zone(60, 3, 1.0, Some((from, 0.0, drop))), &Settings::default());
            let night = hours.iter().find(|h| h.at > start).map(|h| h.night);
            hours.iter().filter(|h| h.point == 0 && Some(h.night) == night).filter_map(|h| h.units()).next_back()
        };
        // the units are linear in the drop: size it from a centimetre's
        let per_cm = first_night_units(0.01).expect("judged") - first_night_units(0.0).expect("judged");
        let drop = 0.01 * 3.0 / per_cm;
        let hours = run(&zone(60, 3, 1.0, Some((from, 0.0, drop))), &Settings::default());
        let raised = first_raise(&hours).expect("raised");
        let nights = (raised - start).num_hours() as f64 / 24.0;
        assert!((3.0..=4.0).contains(&nights), "raised after {nights} nights (drop {drop:.4} m)");
        // the evidence climbed night by night before it
        let evidence: Vec<f64> =
            hours.iter().filter(|h| h.point == 0 && h.at > start && h.at < raised).map(|h| h.evidence).collect();
        assert!(evidence.windows(8).any(|w| w[7] > w[0] + 0.5), "{evidence:?}");
        assert_eq!(Settings::default().nights_to_raise(3.0), Some(4.0));
        assert_eq!(Settings::default().nights_to_raise(1.2), None);
    }

    #[test]
    fn a_single_point_with_a_steady_inlet_sees_a_fall_the_inflow_does_not_explain() {
        let from = 40 * 24 - 1;
        let z = zone(60, 1, 0.0, Some((from, 1.0, 0.15)));
        let hours = run(&z, &Settings::default());
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("a valid date");
        assert!(first_raise(&hours).is_some_and(|t| t > t0 + TimeDelta::hours(from)));
        // a leak whose only trace is the inflow's own head loss is explained by the inflow
        let z = zone(60, 1, 0.0, Some((from, 1.0, 0.0)));
        assert_eq!(first_raise(&run(&z, &Settings::default())), None);
    }

    #[test]
    fn a_new_level_is_accepted_and_a_leak_that_stops_clears() {
        let from = 30 * 24 - 1;
        // a lasting fall: raised, then after 14 nights the new normal
        let z = zone(70, 3, 1.0, Some((from, 0.0, 0.3)));
        let hours = run(&z, &Settings::default());
        let a: Vec<&PressureHour> = hours.iter().filter(|h| h.point == 0).collect();
        assert!(a.iter().any(|h| h.leak));
        assert!(!a.last().expect("hours").leak, "accepted after 14 nights");
        // a fall that stops after three nights clears on the first night without it
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("a valid date");
        let mut z = zone(50, 3, 1.0, Some((from, 0.0, 0.3)));
        let stop = t0 + TimeDelta::hours(from + 72);
        for (t, p) in z.points[0].iter_mut() {
            if *t >= stop {
                *p += 0.3;
            }
        }
        let hours = run(&z, &Settings::default());
        let a: Vec<&PressureHour> = hours.iter().filter(|h| h.point == 0).collect();
        assert!(a.iter().any(|h| h.leak && h.at < stop));
        assert!(a.iter().filter(|h| h.at > stop + TimeDelta::hours(24)).all(|h| !h.leak));
    }

    #[test]
    fn missing_inflow_or_pressure_is_no_evidence() {
        let mut z = zone(40, 2, 1.0, None);
        z.inflow.clear();
        assert!(run(&z, &Settings::default()).is_empty());
        let mut z = zone(40, 2, 1.0, None);
        z.points[1].clear(); // point a has no other point to compare with in any hour
        assert!(run(&z, &Settings::default()).is_empty());
        // NaN readings are skipped, not fitted
        let mut z = zone(40, 1, 0.0, None);
        for p in z.points[0].values_mut().step_by(5) {
            *p = f64::NAN;
        }
        let hours = run(&z, &Settings::default());
        assert!(hours.iter().all(|h| h.pressure.is_finite() && h.expected.is_none_or(f64::is_finite)));
        assert_eq!(first_raise(&hours), None);
    }

    #[test]
    fn a_point_missing_hours_takes_those_hours_from_the_others_not_a_false_fall() {
        // c (10 m below a) misses every 11th hour: a mean over whichever points report
        // would move a's comparison by metres in those hours
        let mut z = zone(60, 3, 1.0, None);
        let gaps: Vec<DateTime<Utc>> = z.points[2].keys().copied().step_by(11).collect();
        for t in &gaps {
            z.points[2].remove(t);
        }
        let hours = run(&z, &Settings::default());
        assert_eq!(first_raise(&hours), None);
        assert!(
            hours.iter().all(|h| !gaps.contains(&(h.at - TimeDelta::hours(1)))),
            "an hour without c is no evidence"
        );
        assert!(hours.iter().filter(|h| h.point == 0 && h.units().is_some()).count() > 7 * 30);
    }

    #[test]
    fn a_leak_two_points_see_is_one_alert_raised_by_the_first() {
        // a falls from day 40, b from day 41 (the leak's water reaches both): one alert,
        // raised by a, lasting while either holds it
        let from = 40 * 24 - 1;
        let mut z = zone(60, 3, 1.0, Some((from, 0.0, 0.3)));
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("a valid date");
        for (t, p) in z.points[1].iter_mut() {
            if *t >= t0 + TimeDelta::hours(from + 24) {
                *p -= 0.6;
            }
        }
        let points: Vec<PressurePoint> = ["p.a", "p.b", "p.c"]
            .iter()
            .zip(&z.points)
            .map(|(id, h)| PressurePoint { id: id.to_string(), unit: "m".into(), hourly: h.clone() })
            .collect();
        let e = leaks("east", &z.inflow, &points, chrono_tz::UTC, &[], &Settings::default());
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].evidence.en().starts_with("the pressure at p.a "), "{}", e[0].evidence.en());
        assert!(e[0].start <= t0 + TimeDelta::hours(from + 7));
    }

    #[test]
    fn a_pressure_leak_is_one_alert_from_two_points_and_none_from_one() {
        // 60 days; from day 40 at 23:00 point a falls 0.3 m below what the inflow predicts
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("a valid date");
        let wobble = |i: i64, k: i64| (((i * 7919 + k * 104_729) % 2001) as f64 - 1000.0) / 1000.0;
        let mut inflow = BTreeMap::new();
        let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
        for h in 0..60 * 24 {
            let at = t0 + TimeDelta::hours(h);
            let q: f64 = 12.0 + 2.0 * wobble(h / 24, 1) + 0.5 * wobble(h, 2);
            let head = 50.0 + wobble(h / 24, 3);
            let fall = if h >= 40 * 24 - 1 { 0.3 } else { 0.0 };
            inflow.insert(at, q);
            a.insert(at, head - 0.010 * q.powf(1.852) - fall + 0.005 * wobble(h, 4));
            b.insert(at, head - 0.012 * q.powf(1.852) + 0.005 * wobble(h, 5));
        }
        let point = |id: &str, hourly: &BTreeMap<DateTime<Utc>, f64>| PressurePoint {
            id: id.to_string(),
            unit: "m".into(),
            hourly: hourly.clone(),
        };
        let s = Settings::default();
        let both = [point("p.a", &a), point("p.b", &b)];
        let e = leaks("east", &inflow, &both, chrono_tz::UTC, &[], &s);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].rule, AlertRule::NightPressure);
        assert!(e[0].start > t0 + TimeDelta::hours(40 * 24 - 1) && e[0].start <= t0 + TimeDelta::hours(40 * 24 + 6));
        let said = e[0].evidence.en();
        assert!(
            said.contains("the pressure at p.a stands 0.3") && said.contains("m below what the zone's inflow predicts"),
            "{said}"
        );
        // without the flow's evidence the rate is unknown, and no loss is claimed
        assert!(said.contains("? ± ? m³/h"), "{said}");
        assert_eq!((e[0].loss_per_day, e[0].severity), (None, Severity::Warning));
        assert!(leaks("east", &inflow, &both[..1], chrono_tz::UTC, &[], &s).is_empty());
    }
}

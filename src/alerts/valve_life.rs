//! A gate valve's life from its readings: when it last moved, its full strokes (one end
//! to the other) with how long each took, whether it is getting slower (a valve getting
//! slower is a valve getting stuck), how often its position disagreed with its command,
//! and whether it is due to be exercised (gate valves that never move seize; utilities
//! exercise them on a schedule). Pure: position and command series in, a summary out.

use chrono::{DateTime, TimeDelta, Utc};

use super::rules::Episode;
use super::said::Fact;
use crate::model::{AlertRule, Severity};

/// A position counts as at an end within this many percent of it.
pub const END: f64 = 5.0;
/// A change smaller than this between two readings is a reading's noise, not a movement.
pub const MOVE: f64 = 2.0;

/// One full stroke.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stroke {
    /// The last reading at the end it left.
    pub start: DateTime<Utc>,
    /// The first reading at the end it reached.
    pub end: DateTime<Utc>,
    /// Towards open (closed → open) or towards closed.
    pub opening: bool,
}

impl Stroke {
    /// How long it took, to the resolution of the readings.
    pub fn took(&self) -> TimeDelta {
        self.end - self.start
    }
}

/// What the readings say of a valve.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Life {
    /// The last reading that differs from the one before by [`MOVE`] or more.
    pub last_moved: Option<DateTime<Utc>>,
    pub strokes: Vec<Stroke>,
    /// The latest stroke's time against the median of the earlier ones of the same
    /// direction (1.5: half as slow again); `None` without three earlier ones.
    pub slowing: Option<f64>,
    /// Readings whose position was more than `tolerance` off the command at the same time
    /// and no closer to it than the reading before (not on its way).
    pub disagreements: usize,
    /// The first reading, so that "not moved since" is said only as far as the records go.
    pub since: Option<DateTime<Utc>>,
}

impl Life {
    /// When the valve is due to be exercised: `every` after it last moved, or after the
    /// records begin when it never moved in them.
    pub fn exercise_due(&self, every: TimeDelta) -> Option<DateTime<Utc>> {
        self.last_moved.or(self.since).map(|t| t + every)
    }
}

/// The life of a valve from its position readings (%, in time order) and its command
/// readings (% at the same instants, where it has a command point).
pub fn life(positions: &[(DateTime<Utc>, f64)], commands: &[(DateTime<Utc>, f64)], tolerance: f64) -> Life {
    let mut out = Life { since: positions.first().map(|p| p.0), ..Default::default() };
    // the last reading at an end, and which end
    let mut at_end: Option<(DateTime<Utc>, bool)> = None;
    for (i, (t, p)) in positions.iter().enumerate() {
        if i > 0 && (p - positions[i - 1].1).abs() >= MOVE {
            out.last_moved = Some(*t);
        }
        let end = if *p <= END {
            Some(false)
        } else if *p >= 100.0 - END {
            Some(true)
        } else {
            None
        };
        match (end, at_end) {
            (Some(open), Some((left, was_open))) if open != was_open => {
                out.strokes.push(Stroke { start: left, end: *t, opening: open });
                at_end = Some((*t, open));
            }
            (Some(open), _) => at_end = Some((*t, open)),
            (None, _) => {}
        }
    }
    if let Some(last) = out.strokes.last().copied() {
        let mut earlier: Vec<i64> = out.strokes[..out.strokes.len() - 1]
            .iter()
            .filter(|s| s.opening == last.opening)
            .map(|s| s.took().num_milliseconds())
            .collect();
        if earlier.len() >= 3 {
            earlier.sort_unstable();
            let median = earlier[earlier.len() / 2];
            if median > 0 {
                out.slowing = Some(last.took().num_milliseconds() as f64 / median as f64);
            }
        }
    }
    // off the command and not on its way to it (a reading closer than the one before is
    // travel, as in the valve rule)
    out.disagreements = positions
        .iter()
        .enumerate()
        .filter(|(k, (t, p))| {
            commands.binary_search_by_key(t, |c| c.0).ok().is_some_and(|i| {
                let c = commands[i].1;
                let travelling = k.checked_sub(1).is_some_and(|j| (positions[j].1 - c).abs() - (p - c).abs() >= MOVE);
                (p - c).abs() > tolerance && !travelling
            })
        })
        .count();
    out
}

/// A valve of the register, as the exercise rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct RegisterValve<'a> {
    pub id: &'a str,
    pub zone: &'a str,
    pub installed: i32,
    /// Its actuator, when it has one: movements seen in its readings count as exercise.
    pub device: Option<&'a str>,
}

/// The hours in which a valve's position readings moved by [`MOVE`] or more from one
/// reading to the next: what the exercise rule counts as exercise of an instrumented valve.
pub fn moved_hours(positions: &[(DateTime<Utc>, f64)]) -> Vec<DateTime<Utc>> {
    let mut out: Vec<DateTime<Utc>> = positions
        .windows(2)
        .filter(|w| (w[1].1 - w[0].1).abs() >= MOVE)
        .filter_map(|w| DateTime::from_timestamp(w[1].0.timestamp().div_euclid(3600) * 3600, 0))
        .collect();
    out.dedup();
    out
}

/// When a valve is next due to be exercised: `every` after its last exercise, or after the
/// start of the year it was installed when none is known.
pub fn exercise_due_after(last: Option<DateTime<Utc>>, installed: i32, every: TimeDelta) -> DateTime<Utc> {
    let start_of_install_year = chrono::NaiveDate::from_ymd_opt(installed, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    last.unwrap_or(start_of_install_year) + every
}

/// A register valve's overdue spells: from `every` after each exercise (or after the start
/// of its install year, when none came before) to the next exercise, the last one open
/// when it is still overdue at `now`. `done` are the times it was worked (exercise and
/// repair records), in any order. Starts are fixed by the records, so passes find the
/// same spell again, and a record entered late closes the spell it ends.
pub fn exercise_episodes(
    v: RegisterValve<'_>,
    done: &[DateTime<Utc>],
    every: TimeDelta,
    now: DateTime<Utc>,
) -> Vec<Episode> {
    let mut times: Vec<DateTime<Utc>> = done.iter().copied().filter(|t| *t <= now).collect();
    times.sort();
    let mut out = Vec::new();
    let mut last: Option<DateTime<Utc>> = None;
    let episode = |last: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>| Episode {
        rule: AlertRule::ValveExercise,
        subject: v.id.to_string(),
        zone: v.zone.to_string(),
        device: v.device.map(str::to_string),
        severity: Severity::Info,
        start: exercise_due_after(last, v.installed, every),
        end,
        evidence: Fact::ValveExercise {
            last_ms: last.map(|t| t.timestamp_millis()),
            installed: v.installed,
            every_days: every.num_days(),
        },
        loss_per_day: None,
    };
    for t in times {
        if t > exercise_due_after(last, v.installed, every) {
            out.push(episode(last, Some(t)));
        }
        last = Some(t);
    }
    if now >= exercise_due_after(last, v.installed, every) {
        out.push(episode(last, None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_780_000_000 + s, 0).single().unwrap()
    }

    /// Closed → open → closed, read every 10 s, taking `secs` to travel each way.
    fn cycles(n: usize, secs: &[i64]) -> Vec<(DateTime<Utc>, f64)> {
        let mut out = vec![(at(0), 0.0)];
        let mut t = 0;
        for i in 0..n {
            let took = secs[i.min(secs.len() - 1)];
            for (from, to) in [(0.0, 100.0), (100.0, 0.0)] {
                t += 100; // resting at the end
                out.push((at(t), from));
                let steps = took / 10;
                for k in 1..=steps {
                    out.push((at(t + 10 * k), from + (to - from) * k as f64 / steps as f64));
                }
                t += took;
            }
        }
        out
    }

    #[test]
    fn strokes_are_timed_and_a_slowing_valve_is_seen() {
        let l = life(&cycles(5, &[60, 60, 60, 60, 90]), &[], 5.0);
        assert_eq!(l.strokes.len(), 10);
        assert!(l.strokes[0].opening && !l.strokes[1].opening);
        assert_eq!(l.strokes[0].took(), TimeDelta::seconds(60));
        // the last closing took 90 s against a median of 60: half as slow again
        assert_eq!(l.slowing, Some(1.5));
        let steady = life(&cycles(5, &[60]), &[], 5.0);
        assert_eq!(steady.slowing, Some(1.0));
        assert_eq!(life(&cycles(2, &[60]), &[], 5.0).slowing, None, "too few strokes to judge a trend");
    }

    #[test]
    fn a_valve_that_never_moved_is_due_from_the_first_record() {
        let still: Vec<(DateTime<Utc>, f64)> = (0..100).map(|i| (at(i * 3600), 100.0 + (i % 2) as f64)).collect();
        let l = life(&still, &[], 5.0);
        assert_eq!((l.last_moved, l.strokes.len()), (None, 0), "a 1 % flicker is not a movement");
        assert_eq!(l.exercise_due(TimeDelta::days(365)), Some(at(0) + TimeDelta::days(365)));
        let moved = life(&cycles(1, &[60]), &[], 5.0);
        let last = moved.last_moved.unwrap();
        assert_eq!(moved.exercise_due(TimeDelta::days(365)), Some(last + TimeDelta::days(365)));
    }

    #[test]
    fn a_manual_valve_is_overdue_from_a_year_after_its_last_exercise_until_the_next() {
        let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(4, 0, 0).unwrap().and_utc();
        let v = RegisterValve { id: "V-7", zone: "east", installed: 2020, device: None };
        let year = TimeDelta::days(365);
        // installed in 2020 and first exercised in June 2021 (overdue from the end of
        // 2020), then not until March 2023 (overdue from June 2022); on time in February
        // 2024, and overdue again from a year after that at the end of 2025
        let done = [day(2023, 3, 1), day(2021, 6, 1), day(2024, 2, 1)];
        let e = exercise_episodes(v, &done, year, day(2025, 12, 1));
        assert_eq!(e.len(), 3, "{e:?}");
        assert_eq!(e[0].end, Some(day(2021, 6, 1)));
        assert_eq!((e[1].start, e[1].end), (day(2021, 6, 1) + year, Some(day(2023, 3, 1))));
        assert_eq!((e[2].start, e[2].end, e[2].rule), (day(2024, 2, 1) + year, None, AlertRule::ValveExercise));
        assert_eq!(
            e[2].evidence,
            Fact::ValveExercise { last_ms: Some(day(2024, 2, 1).timestamp_millis()), installed: 2020, every_days: 365 }
        );
        // never recorded: overdue from a year after the start of its install year
        let never = exercise_episodes(v, &[], year, day(2025, 12, 1));
        assert_eq!(never.len(), 1);
        assert_eq!(never[0].start.date_naive(), chrono::NaiveDate::from_ymd_opt(2020, 12, 31).unwrap());
        // exercised within the year: nothing; a record dated after `now` is not counted yet
        let lately = exercise_episodes(v, &[day(2025, 6, 1)], year, day(2025, 12, 1));
        assert!(lately.len() == 1 && lately[0].end == Some(day(2025, 6, 1)), "only the spell it ended: {lately:?}");
        let on_time = RegisterValve { installed: 2025, ..v };
        assert!(exercise_episodes(on_time, &[day(2025, 6, 1)], year, day(2025, 12, 1)).is_empty());
        assert_eq!(exercise_episodes(v, &[day(2026, 6, 1)], year, day(2025, 12, 1)).len(), 1);
    }

    #[test]
    fn an_actuators_movements_count_by_the_hour_and_noise_does_not() {
        let h = |s: i64| at(s).timestamp().div_euclid(3600) * 3600;
        let r = [(at(0), 100.0), (at(10), 99.0), (at(4000), 60.0), (at(4010), 20.0), (at(9000), 21.0)];
        let moved: Vec<i64> = moved_hours(&r).iter().map(|t| t.timestamp()).collect();
        assert_eq!(moved, [h(4000)], "a 1 % step is noise; two steps in one hour are one hour");
        // seen moving, the valve is not overdue until `every` after that hour
        let v = RegisterValve { id: "V-N1", zone: "north", installed: 2001, device: Some("valve-north") };
        let every = TimeDelta::days(365);
        let eps = exercise_episodes(v, &moved_hours(&r), every, at(4000) + TimeDelta::days(100));
        assert_eq!(eps.len(), 1, "due since its install year until it moved: {eps:?}");
        assert_eq!(eps[0].end.map(|e| e.timestamp()), Some(h(4000)));
        assert_eq!(eps[0].device.as_deref(), Some("valve-north"));
        let later = exercise_episodes(v, &moved_hours(&r), every, at(4000) + TimeDelta::days(400));
        assert_eq!(later.len(), 2);
        assert_eq!((later[1].start.timestamp(), later[1].end), (h(4000) + 365 * 86_400, None));
    }

    #[test]
    fn disagreements_with_the_command_are_counted_at_the_same_instants() {
        let positions = [(at(0), 100.0), (at(10), 100.0), (at(20), 40.0), (at(30), 20.0)];
        let commands = [(at(0), 100.0), (at(10), 20.0), (at(20), 20.0), (at(30), 20.0)];
        // at 10 it has not started; at 20 and 30 it is on its way, then arrived
        assert_eq!(life(&positions, &commands, 5.0).disagreements, 1);
        let stuck = [(at(0), 100.0), (at(10), 100.0), (at(20), 40.0), (at(30), 40.0)];
        assert_eq!(life(&stuck, &commands, 5.0).disagreements, 2, "stopped at 40 % on the way to 20 %");
    }
}

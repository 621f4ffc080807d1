//! Whether the wall clock can be trusted to stamp readings. Pure: takes times, returns
//! verdicts; the writer applies them.
//!
//! A box without a real-time clock boots with its clock at 1970 (or at the time it last
//! saved) and steps when NTP answers. Two cases are caught:
//! - **The clock reads earlier than the binary was built**: it is not set. Readings are
//!   *held* in memory with their monotonic time, and stamped again from it once the clock
//!   is set (`now − time since the poll`), so they reach the store at the time they were
//!   taken. Nothing stamped 1970 is ever committed: no month of 1970 exists to freeze, and
//!   the age limit cannot take them as undelivered when the clock steps.
//! - **The clock stepped back** behind readings already committed (by more than
//!   [`BEHIND_TOLERANCE`]): readings are committed and delivered, but with the quality
//!   `clock_behind`, which the ledger and the alert rules do not use, until the clock
//!   passes the newest committed reading again. A totalizer loses nothing by it: the next
//!   good reading books the volume since the last good one. A step back of more than a
//!   day ([`FAR_BACK`]) is taken as the end of a clock that had run ahead (a bad RTC or
//!   NTP server): logged, and stamps are fine again from there, rather than flagging
//!   every reading until that far time comes.
//!
//! What it cannot catch: a clock that is set but wrong and never steps back (a box that
//! boots at its last saved time and is never corrected). The service is ordered after
//! `time-sync.target` for that.

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{Quality, Reading};

/// How far behind the newest committed reading a stamp may be and still count as the
/// same clock: polls of different buses reach the writer out of order by up to a few
/// seconds, and a step this small moves nothing into another hour.
pub const BEHIND_TOLERANCE: TimeDelta = TimeDelta::seconds(60);

/// A step back larger than this is taken as the end of a clock that ran ahead, not as
/// this clock being behind (see [`Guard::judge`]).
pub const FAR_BACK: TimeDelta = TimeDelta::days(1);

/// When this binary was built, less a day (a build machine's clock may run ahead): the
/// earliest time a running gateway can really be at.
pub fn build_time() -> DateTime<Utc> {
    env!("PUMPHOUSE_BUILD_EPOCH")
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .map_or(DateTime::UNIX_EPOCH, |t| t - TimeDelta::days(1))
}

/// False while the wall clock reads earlier than the build (it has not been set).
pub fn is_set(now: DateTime<Utc>) -> bool {
    now >= build_time()
}

/// The clocks the writer reads: the wall clock, and a monotonic one that never steps.
pub trait Clock: Send + Sync {
    fn wall(&self) -> DateTime<Utc>;
    /// Time since an arbitrary fixed start; never goes back.
    fn mono(&self) -> std::time::Duration;
}

/// The system's clocks.
#[derive(Debug)]
pub struct SystemClock(std::time::Instant);

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock(std::time::Instant::now())
    }
}

impl Clock for SystemClock {
    fn wall(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn mono(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

/// What to do with one reading's stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// Commit as it is.
    Fine,
    /// The clock was not set: hold it and stamp it again once the clock is.
    Hold,
    /// The clock is behind readings already committed: commit it flagged `clock_behind`.
    Behind,
}

/// A reading held while the clock was not set, with the monotonic time it was taken at.
#[derive(Debug, Clone)]
pub struct Held {
    pub reading: Reading,
    pub mono_ms: i64,
}

/// The judge of stamps. `floor` is the earliest plausible time (the build time);
/// `newest` the newest stamp committed so far (from the store at start).
#[derive(Debug, Clone)]
pub struct Guard {
    floor: DateTime<Utc>,
    newest: Option<DateTime<Utc>>,
    stepped_far_back: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Guard {
    pub fn new(floor: DateTime<Utc>, newest: Option<DateTime<Utc>>) -> Guard {
        Guard { floor, newest, stepped_far_back: None }
    }

    /// Whether the wall clock reading `now` is set.
    pub fn is_set(&self, now: DateTime<Utc>) -> bool {
        now >= self.floor
    }

    /// Judges a stamp; a fine one becomes the newest.
    pub fn judge(&mut self, ts: DateTime<Utc>) -> Stamp {
        if ts < self.floor {
            return Stamp::Hold;
        }
        if let Some(n) = self.newest {
            if ts < n - FAR_BACK {
                // a step back of more than a day: the clock was ahead (a bad RTC or NTP
                // server), not this one; flagging until that time comes would blind the
                // ledger for as long
                self.stepped_far_back = Some((n, ts));
                self.newest = Some(ts);
                return Stamp::Fine;
            }
            if ts < n - BEHIND_TOLERANCE {
                return Stamp::Behind;
            }
        }
        self.newest = Some(self.newest.map_or(ts, |n| n.max(ts)));
        Stamp::Fine
    }

    /// The last step back of more than [`FAR_BACK`] (the newest stamp before it, and the
    /// stamp after it) since the last call, for the caller to report.
    pub fn take_far_step(&mut self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.stepped_far_back.take()
    }

    /// Applies [`Guard::judge`] to a reading: `Err` holds it (with its monotonic time, from
    /// the clocks read when it arrived), `Ok` is what to commit.
    pub fn admit(&mut self, mut r: Reading, wall: DateTime<Utc>, mono_ms: i64) -> Result<Reading, Held> {
        match self.judge(r.ts) {
            Stamp::Fine => Ok(r),
            Stamp::Behind => {
                r.quality = Quality::ClockBehind;
                Ok(r)
            }
            Stamp::Hold => {
                // Its age by the clock that stamped it — unless that clock was set in
                // between (NTP stepped while the reading was on its way): then the stamp
                // says nothing, and the reading is as old as its way here (milliseconds).
                let age_ms =
                    if self.is_set(wall) { 0 } else { (wall - r.ts).num_milliseconds().clamp(0, mono_ms.max(0)) };
                Err(Held { mono_ms: mono_ms - age_ms, reading: r })
            }
        }
    }

    /// Stamps a held reading again from its monotonic time, now that the clock reads
    /// `wall` at monotonic `mono_ms`.
    pub fn release(&mut self, h: Held, wall: DateTime<Utc>, mono_ms: i64) -> Reading {
        let mut r = h.reading;
        r.ts = wall - TimeDelta::milliseconds((mono_ms - h.mono_ms).max(0));
        self.newest = Some(self.newest.map_or(r.ts, |n| n.max(r.ts)));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap()
    }

    fn reading(ts: DateTime<Utc>) -> Reading {
        Reading {
            site: "s".into(),
            zone: "z".into(),
            device: "d".into(),
            point: "p".into(),
            quantity: crate::model::Quantity::WaterVolume,
            unit: "m3".into(),
            ts,
            value: Some(1.0),
            quality: Quality::Good,
        }
    }

    #[test]
    fn stamps_are_judged_against_the_build_and_the_newest_committed() {
        let floor = at("2026-11-01T00:00:00Z");
        let newest = at("2026-11-29T10:00:00Z");
        // (stamp, verdict) in order: the newest moves with every fine stamp
        let cases = [
            ("1970-01-01T00:00:05Z", Stamp::Hold),
            ("2026-10-31T23:59:59Z", Stamp::Hold),
            ("2026-11-29T09:59:00Z", Stamp::Fine), // exactly the tolerance behind
            ("2026-11-29T09:58:59Z", Stamp::Behind),
            ("2026-11-29T11:00:00Z", Stamp::Fine),
            ("2026-11-29T10:30:00Z", Stamp::Behind), // the clock stepped back 30 min
            ("2026-11-29T10:59:30Z", Stamp::Fine),   // within the tolerance again
        ];
        let mut g = Guard::new(floor, Some(newest));
        for (ts, want) in cases {
            assert_eq!(g.judge(at(ts)), want, "{ts}");
        }
        // an empty store: only the floor counts
        let mut fresh = Guard::new(floor, None);
        assert_eq!(fresh.judge(at("2026-11-02T00:00:00Z")), Stamp::Fine);
        assert_eq!(fresh.judge(at("1970-01-01T00:00:00Z")), Stamp::Hold);
        assert!(!fresh.is_set(Utc.timestamp_opt(0, 0).unwrap()));
        assert!(fresh.is_set(floor));
    }

    #[test]
    fn held_readings_get_the_time_they_were_taken_once_the_clock_is_set() {
        let floor = at("2026-11-01T00:00:00Z");
        let mut g = Guard::new(floor, None);
        // booted at 1970-01-01T00:00:00 (monotonic 0); polled at 00:00:07, seen 200 ms
        // later (monotonic 7.2 s)
        let boot = at("1970-01-01T00:00:00Z");
        let taken = boot + TimeDelta::seconds(7);
        let held = g.admit(reading(taken), boot + TimeDelta::milliseconds(7200), 7200).unwrap_err();
        assert_eq!(held.mono_ms, 7000);
        // NTP steps the clock at monotonic 100 s to 2026-11-29T08:00:00
        let r = g.release(held, at("2026-11-29T08:00:00Z"), 100_000);
        assert_eq!(r.ts, at("2026-11-29T07:58:27Z")); // 93 s before
        assert_eq!(r.quality, Quality::Good);
        // live readings after it are fine; one stamped by a clock gone back is flagged
        assert!(g.admit(reading(at("2026-11-29T08:00:01Z")), at("2026-11-29T08:00:01Z"), 101_000).is_ok());
        let back = g.admit(reading(at("2026-11-29T07:00:00Z")), at("2026-11-29T07:00:00Z"), 102_000).unwrap();
        assert_eq!(back.quality, Quality::ClockBehind);
        assert_eq!(back.value, Some(1.0));
    }

    #[test]
    fn the_build_time_is_recorded() {
        let built = build_time();
        assert!(built > DateTime::UNIX_EPOCH, "{built}");
        assert!(built <= Utc::now() - TimeDelta::hours(23), "a day's margin: {built}");
    }

    #[test]
    fn a_reading_stamped_before_the_clock_was_set_and_judged_after_gets_its_arrival_time() {
        let mut g = Guard::new(at("2026-11-01T00:00:00Z"), None);
        // stamped 1970 by the clock before NTP stepped it; judged 80 ms later, after
        let set = at("2026-11-29T08:00:00Z");
        let held = g.admit(reading(DateTime::UNIX_EPOCH + TimeDelta::seconds(40)), set, 40_080).unwrap_err();
        let r = g.release(held, set, 40_080);
        assert_eq!(r.ts, set, "never 1970");
        // and a 1970 stamp never makes a held reading older than the process
        let mut g = Guard::new(at("2026-11-01T00:00:00Z"), None);
        let held =
            g.admit(reading(DateTime::UNIX_EPOCH), DateTime::UNIX_EPOCH + TimeDelta::days(400), 5_000).unwrap_err();
        assert_eq!(held.mono_ms, 0);
    }

    #[test]
    fn a_clock_that_ran_far_ahead_does_not_flag_readings_until_that_time() {
        let mut g = Guard::new(at("2026-11-01T00:00:00Z"), Some(at("2036-02-07T06:28:16Z")));
        assert_eq!(g.judge(at("2026-11-29T08:00:00Z")), Stamp::Fine);
        assert_eq!(g.take_far_step(), Some((at("2036-02-07T06:28:16Z"), at("2026-11-29T08:00:00Z"))));
        assert_eq!(g.take_far_step(), None);
        assert_eq!(g.judge(at("2026-11-29T08:00:01Z")), Stamp::Fine);
        // a step back within the day is still flagged
        assert_eq!(g.judge(at("2026-11-29T06:00:00Z")), Stamp::Behind);
    }
}

//! Interval consumption from totalizer readings. Pure: samples in, booked intervals,
//! quarantined readings and notices out.
//!
//! Consumption is always the difference between consecutive trusted totalizer readings,
//! never a sum of flow rates. The rules, in the order they apply to each reading:
//! 1. readings of bad quality, or without a value, are skipped (they are gaps, already
//!    flagged upstream);
//! 2. a recorded meter replacement closes the old meter at its final reading and opens
//!    the new one at its initial reading: the swap itself is never booked;
//! 3. a drop to exactly zero from a positive reading is a transient zero (some meters
//!    report 0 while restarting): quarantined;
//! 4. a step backwards is a rollover when the meter's wrap modulus is configured
//!    (`rollover_at`, or `max_reading` plus one count), the previous reading was in the
//!    top tenth of the range and the new one in the bottom tenth: it books
//!    `(modulus − previous) + new`; otherwise it is quarantined. Three consecutive readings that agree with
//!    each other below the reference mean the meter was reset or replaced without a
//!    record: the reference moves to them, nothing is booked for the jump, and a notice
//!    says so (record the replacement to book it exactly);
//! 5. a rise faster than the meter's physical `max_rate` (units per hour) is a spike:
//!    quarantined, and the next reading is compared with the last trusted one;
//! 6. otherwise the difference is booked over the interval between the two readings.
//!    An interval longer than three expected polling intervals bridges a gap: the volume
//!    is still booked in full (nothing is lost), but marked estimated, because how it
//!    spreads over the hours of the gap is not known.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::lang::Text;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub ts: DateTime<Utc>,
    pub value: Option<f64>,
    pub good: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeterSpec {
    /// The register's wrap modulus, if known: the value at which it shows zero again
    /// (100000 for a register whose last reading before the wrap is 99999.999).
    pub rollover_at: Option<f64>,
    /// Physical limit of the meter in units per hour; faster rises are spikes.
    pub max_rate: Option<f64>,
    /// The meter's polling interval: gaps longer than three of these are estimated.
    pub expected_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Replacement {
    pub ts: DateTime<Utc>,
    pub old_final: f64,
    pub new_initial: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub volume: f64,
    pub estimated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    Backward { reference: f64 },
    Spike { rate: f64 },
    TransientZero,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    pub ts: DateTime<Utc>,
    pub value: f64,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub ts: DateTime<Utc>,
    pub text: crate::lang::Text,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Consumption {
    pub intervals: Vec<Interval>,
    pub quarantined: Vec<Quarantined>,
    pub notices: Vec<Notice>,
    /// First and last trusted readings (the opening and closing of the period).
    pub first: Option<(DateTime<Utc>, f64)>,
    pub last: Option<(DateTime<Utc>, f64)>,
}

impl Consumption {
    pub fn total(&self) -> f64 {
        self.intervals.iter().map(|i| i.volume).sum()
    }

    pub fn estimated(&self) -> f64 {
        self.intervals.iter().filter(|i| i.estimated).map(|i| i.volume).sum()
    }
}

/// The usual spacing of a series: the median of the steps between consecutive times
/// (`None` with fewer than three). A meter read hourly (imported, say) has an hourly
/// spacing whatever its polling interval is.
pub fn usual_spacing(times: &[DateTime<Utc>]) -> Option<TimeDelta> {
    if times.len() < 3 {
        return None;
    }
    let mut steps: Vec<TimeDelta> = times.windows(2).map(|w| w[1] - w[0]).filter(|d| *d > TimeDelta::zero()).collect();
    if steps.is_empty() {
        return None;
    }
    steps.sort();
    Some(steps[steps.len() / 2])
}

/// Books the consumption of one meter. `samples` and `replacements` may come in any order.
/// A gap is an interval longer than three times the meter's polling interval or its
/// usual spacing, whichever is longer.
pub fn consumption(samples: &[Sample], replacements: &[Replacement], spec: &MeterSpec) -> Consumption {
    let mut samples: Vec<Sample> = samples.to_vec();
    samples.sort_by_key(|s| s.ts);
    let mut events: Vec<Replacement> = replacements.to_vec();
    events.sort_by_key(|e| e.ts);
    let mut events = events.into_iter().peekable();
    let trusted: Vec<DateTime<Utc>> =
        samples.iter().filter(|s| s.good && s.value.is_some_and(f64::is_finite)).map(|s| s.ts).collect();
    let expected = TimeDelta::from_std(spec.expected_interval).unwrap_or(TimeDelta::minutes(20));
    let gap_limit = expected.max(usual_spacing(&trusted).unwrap_or(expected)) * 3;
    let mut out = Consumption::default();
    let mut prev: Option<(DateTime<Utc>, f64)> = None;
    let mut below: Vec<(DateTime<Utc>, f64)> = Vec::new();
    for s in samples {
        while let Some(e) = events.next_if(|e| e.ts <= s.ts) {
            apply_replacement(&e, &mut prev, &mut out, gap_limit);
            below.clear();
        }
        let Some(v) = s.value.filter(|v| v.is_finite() && s.good) else { continue };
        let Some((pts, pv)) = prev else {
            prev = Some((s.ts, v));
            out.first = Some((s.ts, v));
            out.last = Some((s.ts, v));
            continue;
        };
        if s.ts <= pts {
            continue;
        }
        let mut delta = v - pv;
        // Even at the top of the range: a real wrap shows as a small positive reading next,
        // and booking a restart's zero as a wrap would bill a whole register.
        if v == 0.0 && pv > 0.0 {
            out.quarantined.push(Quarantined { ts: s.ts, value: v, reason: Reason::TransientZero });
            continue;
        }
        if delta < 0.0 {
            match spec.rollover_at {
                Some(m) if pv >= 0.9 * m && v <= 0.1 * m => {
                    delta = (m - pv) + v;
                    out.notices.push(Notice {
                        ts: s.ts,
                        text: Text::new(
                            format!("rollover from {pv} through {m} (zero) to {v}"),
                            format!("计数器翻转：从 {pv} 经 {m}（归零）到 {v}"),
                        ),
                    });
                }
                _ => {
                    out.quarantined.push(Quarantined {
                        ts: s.ts,
                        value: v,
                        reason: Reason::Backward { reference: pv },
                    });
                    below.push((s.ts, v));
                    // the last three readings below the reference agree with each other
                    if below.len() >= 3 && below[below.len() - 3..].windows(2).all(|w| w[1].1 >= w[0].1) {
                        let keep = below.len() - 3;
                        below.drain(..keep);
                        let (rts, rv) = below[below.len() - 1];
                        out.notices.push(Notice {
                            ts: below[0].0,
                            text: Text::new(
                                format!("meter reset or replaced without a record: readings went from {pv} to {}; the reference moves there and the jump is not booked (record the replacement to book it exactly)", below[0].1),
                                format!("表计被重置或更换但无记录：读数从 {pv} 变为 {}；以新读数为起点，跳变量不入账（补录换表记录可准确入账）", below[0].1),
                            ),
                        });
                        // The readings between the first below and now are consumption on
                        // the new register: book them.
                        let (fts, fv) = below[0];
                        if rv > fv {
                            out.intervals.push(Interval { start: fts, end: rts, volume: rv - fv, estimated: false });
                        }
                        out.quarantined.retain(|q| !below.iter().any(|b| b.0 == q.ts));
                        prev = Some((rts, rv));
                        out.last = Some((rts, rv));
                        below.clear();
                    }
                    continue;
                }
            }
        }
        below.clear();
        let hours = (s.ts - pts).num_milliseconds() as f64 / 3_600_000.0;
        if let Some(max) = spec.max_rate {
            let rate = delta / hours;
            if rate > max {
                out.quarantined.push(Quarantined { ts: s.ts, value: v, reason: Reason::Spike { rate } });
                continue;
            }
        }
        out.intervals.push(Interval { start: pts, end: s.ts, volume: delta, estimated: s.ts - pts > gap_limit });
        prev = Some((s.ts, v));
        out.last = Some((s.ts, v));
    }
    // A swap after the last reading still closes the old meter.
    for e in events {
        apply_replacement(&e, &mut prev, &mut out, gap_limit);
    }
    out
}

/// Books the old meter up to its final reading and moves the reference to the new one.
fn apply_replacement(
    e: &Replacement,
    prev: &mut Option<(DateTime<Utc>, f64)>,
    out: &mut Consumption,
    gap_limit: TimeDelta,
) {
    if let Some((pts, pv)) = *prev {
        let v = e.old_final - pv;
        if v >= 0.0 {
            out.intervals.push(Interval { start: pts, end: e.ts, volume: v, estimated: e.ts - pts > gap_limit });
        } else {
            out.notices.push(Notice {
                ts: e.ts,
                text: Text::new(
                    format!(
                        "replacement: old meter's final reading {} is below its last reading {pv}; nothing booked",
                        e.old_final
                    ),
                    format!("换表：旧表止码 {} 小于其最后读数 {pv}；未入账", e.old_final),
                ),
            });
        }
    }
    out.notices.push(Notice {
        ts: e.ts,
        text: Text::new(
            format!("meter replaced: old final {}, new initial {}", e.old_final, e.new_initial),
            format!("已换表：旧表止码 {}，新表起码 {}", e.old_final, e.new_initial),
        ),
    });
    *prev = Some((e.ts, e.new_initial));
    out.first.get_or_insert((e.ts, e.new_initial));
    out.last = Some((e.ts, e.new_initial));
}

/// Volume per hour (UTC hour start), spread uniformly over each interval's duration.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    pub volume: f64,
    pub estimated: f64,
}

/// Spreads intervals over hour buckets (by UTC hour start; any whole-hour zone offset
/// maps hours one to one), clipped to `[from, to)`.
pub fn hourly(intervals: &[Interval], from: DateTime<Utc>, to: DateTime<Utc>) -> BTreeMap<DateTime<Utc>, Bucket> {
    let mut out: BTreeMap<DateTime<Utc>, Bucket> = BTreeMap::new();
    for iv in intervals {
        let total_ms = (iv.end - iv.start).num_milliseconds();
        // Zero-volume intervals still mark their hours as measured and quiet.
        if total_ms <= 0 {
            continue;
        }
        let mut t = iv.start.max(from);
        let end = iv.end.min(to);
        while t < end {
            let hour = t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t);
            let next = (hour + TimeDelta::hours(1)).min(end);
            let share = (next - t).num_milliseconds() as f64 / total_ms as f64;
            let b = out.entry(hour).or_default();
            b.volume += iv.volume * share;
            if iv.estimated {
                b.estimated += iv.volume * share;
            }
            t = next;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: i64, m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + TimeDelta::hours(h) + TimeDelta::minutes(m)
    }

    fn s(h: i64, m: i64, v: f64) -> Sample {
        Sample { ts: t(h, m), value: Some(v), good: true }
    }

    fn spec() -> MeterSpec {
        MeterSpec { rollover_at: Some(100_000.0), max_rate: Some(50.0), expected_interval: Duration::from_secs(600) }
    }

    #[test]
    fn plain_deltas_are_booked() {
        let c = consumption(&[s(0, 0, 100.0), s(0, 10, 101.5), s(0, 20, 103.0)], &[], &spec());
        assert_eq!(c.total(), 3.0);
        assert_eq!(c.intervals.len(), 2);
        assert_eq!(c.estimated(), 0.0);
        assert_eq!(c.first, Some((t(0, 0), 100.0)));
        assert_eq!(c.last, Some((t(0, 20), 103.0)));
    }

    #[test]
    fn rollover_at_the_configured_modulus() {
        // 99 998.5 → 1.5 through 100 000 (zero): 1.5 + 1.5 = 3.0 m³
        let c = consumption(&[s(0, 0, 99_998.5), s(0, 10, 1.5)], &[], &spec());
        assert_eq!(c.total(), 3.0);
        assert!(c.notices[0].text.contains("rollover"));
        assert!(c.quarantined.is_empty());
    }

    #[test]
    fn a_meter_read_hourly_has_hourly_gaps_whatever_its_polling_interval() {
        // polled every 10 s by configuration, but the readings are hourly (imported)
        let spec = MeterSpec { rollover_at: None, max_rate: None, expected_interval: Duration::from_secs(10) };
        let hourly: Vec<Sample> = (0..6).map(|h| s(h, 0, 100.0 + h as f64)).collect();
        let c = consumption(&hourly, &[], &spec);
        assert!(c.intervals.iter().all(|i| !i.estimated), "hourly readings are not gaps");
        // a five-hour hole in hourly readings is
        let mut holed = hourly.clone();
        holed.extend((11..14).map(|h| s(h, 0, 100.0 + h as f64)));
        let c = consumption(&holed, &[], &spec);
        assert_eq!(c.intervals.iter().filter(|i| i.estimated).count(), 1);
        assert_eq!(usual_spacing(&[]), None);
    }

    #[test]
    fn a_wrap_loses_no_count_of_the_register() {
        // max_reading 99 999.999 as the example configuration writes it: the register
        // goes 99 999.998 → 99 999.999 → 0.000 → 0.001, three counts of 0.001 m³
        let m = crate::ledger::topology::modulus_of_max_reading(99_999.999);
        assert_eq!(m, 100_000.0);
        let spec = MeterSpec { rollover_at: Some(m), max_rate: None, expected_interval: Duration::from_secs(600) };
        let c = consumption(&[s(0, 0, 99_999.998), s(0, 10, 0.001)], &[], &spec);
        assert!((c.total() - 0.003).abs() < 1e-9, "{}", c.total());
        for (max, modulus) in [(9_999.0, 10_000.0), (999_999.9, 1_000_000.0), (65_535.0, 65_536.0), (0.99, 1.0)] {
            assert_eq!(crate::ledger::topology::modulus_of_max_reading(max), modulus, "{max}");
        }
    }

    #[test]
    fn a_replacement_is_an_event_not_consumption() {
        // old meter 500 → final 503.2 at 00:15; new meter starts at 0.4, reads 2.4 at 00:30
        let r = Replacement { ts: t(0, 15), old_final: 503.2, new_initial: 0.4 };
        let c = consumption(&[s(0, 0, 500.0), s(0, 30, 2.4)], &[r], &spec());
        assert!((c.total() - 5.2).abs() < 1e-9, "{}", c.total());
        assert!(c.quarantined.is_empty());
        assert!(c.notices.iter().any(|n| n.text.contains("meter replaced")));
    }

    #[test]
    fn a_gap_is_bridged_in_full_and_marked_estimated() {
        // polled every 10 min; nothing from 01:00 to 07:00; 12 m³ over the gap
        let c = consumption(&[s(0, 50, 10.0), s(1, 0, 10.5), s(7, 0, 22.5), s(7, 10, 23.0)], &[], &spec());
        assert_eq!(c.total(), 13.0);
        assert_eq!(c.estimated(), 12.0);
        let h = hourly(&c.intervals, t(0, 0), t(8, 0));
        // the gap's 12 m³ spread evenly over its 6 hours
        assert!((h[&t(3, 0)].volume - 2.0).abs() < 1e-9);
        assert!((h[&t(3, 0)].estimated - 2.0).abs() < 1e-9);
        assert!((h[&t(0, 0)].volume - 0.5).abs() < 1e-9);
        let sum: f64 = h.values().map(|b| b.volume).sum();
        assert!((sum - 13.0).abs() < 1e-9);
    }

    #[test]
    fn a_spike_is_quarantined_and_the_next_reading_compares_with_the_last_trusted_one() {
        let c = consumption(&[s(0, 0, 100.0), s(0, 10, 101.0), s(0, 20, 5_000.0), s(0, 30, 102.0)], &[], &spec());
        assert_eq!(c.total(), 2.0);
        assert_eq!(c.quarantined.len(), 1);
        assert!(matches!(c.quarantined[0].reason, Reason::Spike { rate } if rate > 20_000.0));
    }

    #[test]
    fn transient_zeros_and_backward_glitches_are_quarantined() {
        let c = consumption(&[s(0, 0, 100.0), s(0, 10, 0.0), s(0, 20, 99.0), s(0, 30, 101.0)], &[], &spec());
        assert_eq!(c.total(), 1.0);
        assert_eq!(c.quarantined.len(), 2);
        assert_eq!(c.quarantined[0].reason, Reason::TransientZero);
        assert_eq!(c.quarantined[1].reason, Reason::Backward { reference: 100.0 });
    }

    #[test]
    fn an_unrecorded_reset_moves_the_reference_after_three_agreeing_readings() {
        let c =
            consumption(&[s(0, 0, 500.0), s(0, 10, 3.0), s(0, 20, 4.0), s(0, 30, 5.5), s(0, 40, 6.0)], &[], &spec());
        // 3.0 → 5.5 on the new register (2.5) and 5.5 → 6.0 (0.5); the jump is not booked
        assert!((c.total() - 3.0).abs() < 1e-9, "{:?}", c);
        assert!(c.quarantined.is_empty());
        assert!(c.notices[0].text.contains("without a record"));
    }

    #[test]
    fn a_zero_at_the_top_of_the_range_is_a_restart_not_a_wrap() {
        let c = consumption(&[s(0, 0, 95_000.0), s(0, 10, 0.0), s(0, 20, 95_001.0)], &[], &spec());
        assert_eq!(c.total(), 1.0);
        assert_eq!(c.quarantined[0].reason, Reason::TransientZero);
    }

    #[test]
    fn reset_detection_looks_at_the_last_three_readings() {
        // after the reset one reading comes out of order; the next three agree
        let c = consumption(
            &[s(0, 0, 500.0), s(0, 10, 3.0), s(0, 20, 4.0), s(0, 25, 3.5), s(0, 30, 4.5), s(0, 40, 5.0), s(0, 50, 6.0)],
            &[],
            &spec(),
        );
        assert!(c.notices.iter().any(|n| n.text.contains("without a record")), "{c:?}");
        // 3.5 → 5.0 on the new register once re-based, then 5.0 → 6.0
        assert!((c.total() - 2.5).abs() < 1e-9, "{}", c.total());
    }

    #[test]
    fn a_swap_after_the_last_reading_still_books_the_old_meter() {
        let r = Replacement { ts: t(1, 0), old_final: 104.0, new_initial: 0.0 };
        let c = consumption(&[s(0, 0, 100.0), s(0, 30, 102.0)], &[r], &spec());
        assert!((c.total() - 4.0).abs() < 1e-9);
        assert_eq!(c.last, Some((t(1, 0), 0.0)));
    }

    #[test]
    fn bad_quality_readings_are_gaps_not_consumption() {
        let bad = Sample { ts: t(0, 10), value: Some(9_999.0), good: false };
        let none = Sample { ts: t(0, 20), value: None, good: false };
        let c = consumption(&[s(0, 0, 100.0), bad, none, s(0, 30, 101.0)], &[], &spec());
        assert_eq!(c.total(), 1.0);
        assert!(c.quarantined.is_empty());
    }

    #[test]
    fn hourly_buckets_clip_to_the_period() {
        let iv = Interval { start: t(0, 30), end: t(1, 30), volume: 4.0, estimated: false };
        let h = hourly(&[iv], t(1, 0), t(2, 0));
        assert_eq!(h.len(), 1);
        assert!((h[&t(1, 0)].volume - 2.0).abs() < 1e-9);
    }
}

//! Step one of a month: each meter's consumption (from its totalizer, or from the frozen
//! record), its opening and closing readings, its notes and, for a customer's meter, its
//! bill.

use std::collections::BTreeMap;

use crate::lang::Text;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

use super::{read, LedgerError, MeterRow, Period, Source, Spec, FULL_COVERAGE, MARGIN};
use crate::ledger::corrections::{Change, Correction};
use crate::ledger::intervals::{self, Bucket, MeterSpec, Sample};
use crate::ledger::prices::{CostKind, Prices};
use crate::ledger::tariff::charge;
use crate::ledger::topology::{Meter, Role};
use crate::model::Month;

/// Every meter of the map, booked: rows in the map's order, with their hourly
/// consumption by `device.point`.
pub(crate) struct Booked {
    pub rows: Vec<MeterRow>,
    pub hourly: BTreeMap<String, BTreeMap<DateTime<Utc>, Bucket>>,
    /// True when any meter's month came from its frozen record.
    pub any_frozen: bool,
    /// Flags of the meters outside the map that costs name, by `device.point`.
    pub outside_notes: BTreeMap<String, Vec<Text>>,
}

impl Booked {
    /// The summed hourly consumption of the meters `pick` selects.
    pub fn hours_of(&self, spec: &Spec<'_>, pick: impl Fn(&Meter) -> bool) -> BTreeMap<DateTime<Utc>, f64> {
        let mut out: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
        for m in spec.topology.meters.iter().filter(|m| pick(m)) {
            for (t, b) in self.hourly.get(&meter_key(m)).into_iter().flatten() {
                *out.entry(*t).or_default() += b.volume;
            }
        }
        out
    }
}

/// A meter's row, its hourly consumption, and whether that came from a frozen record.
type BookedMeter = (MeterRow, BTreeMap<DateTime<Utc>, Bucket>, bool);

pub(crate) fn meter_key(m: &Meter) -> String {
    m.id().key()
}

/// Hours in local time, as tariffs read them.
pub(crate) fn local_hours<T: Copy>(
    spec: &Spec<'_>,
    h: &BTreeMap<DateTime<Utc>, T>,
    volume: impl Fn(T) -> f64,
) -> Vec<(NaiveDateTime, f64)> {
    h.iter().map(|(t, b)| (t.with_timezone(&spec.tz).naive_local(), volume(*b))).collect()
}

pub(crate) fn book(
    spec: &Spec<'_>,
    prices: &Prices,
    period: &Period,
    source: &Source<'_>,
    applied: &[Correction],
) -> Result<Booked, LedgerError> {
    let mut booked =
        Booked { rows: Vec::new(), hourly: BTreeMap::new(), any_frozen: false, outside_notes: BTreeMap::new() };
    for m in &spec.topology.meters {
        let (row, hours, frozen) = meter(spec, prices, period, source, applied, m)?;
        booked.any_frozen |= frozen;
        booked.rows.push(row);
        booked.hourly.insert(meter_key(m), hours);
    }
    // Meters that only a cost names (a pump house's own grid connection): booked the same
    // way, outside every balance, and frozen with the month like the others.
    for c in &prices.costs {
        let CostKind::Meters(ids) = &c.kind else { continue };
        for id in ids {
            if booked.hourly.contains_key(&id.key()) {
                continue;
            }
            let m = Meter {
                device: id.device.clone(),
                point: id.point.clone(),
                zone: String::new(),
                utility: c.utility,
                role: Role::Unbilled,
                category: None,
                rollover_at: None,
                max_rate: None,
            };
            let (row, hours, frozen) = meter(spec, prices, period, source, applied, &m)?;
            booked.any_frozen |= frozen;
            if row.flagged {
                booked.outside_notes.insert(id.key(), row.notes);
            }
            booked.hourly.insert(id.key(), hours);
        }
    }
    Ok(booked)
}

/// The samples of a meter around the month, with its anchor and manual readings, and the
/// replacements recorded for it.
fn samples_of(
    period: &Period,
    source: &Source<'_>,
    applied: &[Correction],
    m: &Meter,
) -> Result<(Vec<Sample>, Vec<intervals::Replacement>), LedgerError> {
    let what = || format!("readings of {}.{}", m.device, m.point);
    let mut s = read(what, (source.samples)(&m.device, &m.point, period.from - MARGIN, period.to + MARGIN))?;
    if let Some(anchor) = source.anchor {
        s.extend(read(what, anchor(&m.device, &m.point, period.from - MARGIN))?);
    }
    let mut replacements = Vec::new();
    for c in applied {
        match &c.change {
            Change::Reading { device, point, ts, value } if *device == m.device && *point == m.point => {
                s.push(Sample { ts: *ts, value: Some(*value), good: true });
            }
            Change::Replacement { device, point, ts, old_final, new_initial }
                if *device == m.device && *point == m.point =>
            {
                replacements.push(intervals::Replacement { ts: *ts, old_final: *old_final, new_initial: *new_initial });
            }
            _ => {}
        }
    }
    s.sort_by_key(|x| x.ts);
    Ok((s, replacements))
}

/// A billed meter's charge for its hours: the tariffs applied and the amount, with a
/// flagged note for whatever could not be charged.
fn bill(
    spec: &Spec<'_>,
    prices: &Prices,
    m: &Meter,
    h: &BTreeMap<DateTime<Utc>, Bucket>,
    notes: &mut Vec<Text>,
    flagged: &mut bool,
) -> (Option<Text>, Option<i64>) {
    let cat = m.category.clone().unwrap_or_default();
    match prices.tariffs.get(&(m.utility, cat.clone())) {
        Some(ts) => {
            let ch = charge(&local_hours(spec, h, |b| b.volume), ts, prices.tou.as_ref());
            if ch.implausible {
                notes.push(Text::new(
                    "implausible consumption: not charged; check the meter's readings",
                    "用量不合理：未计费；请核对该表读数",
                ));
                *flagged = true;
            }
            if ch.uncharged > 1e-9 {
                let since = ch.uncharged_from.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default();
                notes.push(Text::new(
                    format!(
                        "{:.3} not charged: no {} tariff for category `{cat}` in force from {since}",
                        ch.uncharged,
                        m.utility.as_str()
                    ),
                    format!(
                        "{:.3} 未计费：类别 `{cat}` 自 {since} 起没有有效的{}价",
                        ch.uncharged,
                        utility_zh(m.utility)
                    ),
                ));
                *flagged = true;
            }
            let names: Vec<Text> = ch
                .lines
                .iter()
                .map(|l| Text::new(format!("{} {}", l.tariff.en, l.band), format!("{} {}", l.tariff.zh, l.band.zh())))
                .collect();
            (Some(Text::joined(&names)), Some(ch.total_fen()))
        }
        None => {
            notes.push(Text::new(
                format!("no {} tariff for category `{cat}`: not charged", m.utility.as_str()),
                format!("类别 `{cat}` 没有{}价：未计费", utility_zh(m.utility)),
            ));
            *flagged = true;
            (None, None)
        }
    }
}

fn meter(
    spec: &Spec<'_>,
    prices: &Prices,
    period: &Period,
    source: &Source<'_>,
    applied: &[Correction],
    m: &Meter,
) -> Result<BookedMeter, LedgerError> {
    let (from, to, tz) = (period.from, period.to, spec.tz);
    let interval = spec.interval(&m.device);
    let (s, replacements) = samples_of(period, source, applied, m)?;
    let c = intervals::consumption(
        &s,
        &replacements,
        &MeterSpec { rollover_at: m.rollover_at, max_rate: m.max_rate, expected_interval: interval },
    );
    let key = meter_key(m);
    let frozen_of = |month: Month| -> Result<Option<BTreeMap<DateTime<Utc>, Bucket>>, LedgerError> {
        match source.frozen {
            Some(f) => read(|| format!("the frozen record of {key} in {month}"), f(month, &key)),
            None => Ok(None),
        }
    };
    let kept = frozen_of(period.month)?;
    let frozen = kept.is_some();
    let mut h = kept.unwrap_or_else(|| intervals::hourly(&c.intervals, from, to));
    let mut notes: Vec<Text> =
        c.notices.iter().filter(|n| n.ts >= from - MARGIN && n.ts < to + MARGIN).map(|n| n.text.clone()).collect();
    // Volume that belongs before the month but arrived after the previous month was
    // frozen (a meter silent across the boundary): booked late, here, as estimated, so
    // that it is not lost.
    if !frozen {
        if let Some(kept) = period.month.prev().map(frozen_of).transpose()?.flatten() {
            let raw: f64 = intervals::hourly(&c.intervals, from - MARGIN, from).values().map(|b| b.volume).sum();
            let booked: f64 = kept.range(from - MARGIN..from).map(|(_, b)| b.volume).sum();
            let late = raw - booked;
            if late > 1e-6 {
                let b = h.entry(from).or_default();
                b.volume += late;
                b.estimated += late;
                notes.push(late_note(late));
            }
        }
    }
    let consumption: f64 = h.values().map(|b| b.volume).sum();
    let estimated: f64 = h.values().map(|b| b.estimated).sum();
    let trusted: Vec<&Sample> = s.iter().filter(|x| x.good && x.value.is_some_and(f64::is_finite)).collect();
    let opening =
        trusted.iter().rev().find(|x| x.ts <= from).or_else(|| trusted.iter().find(|x| x.ts >= from && x.ts < to));
    let closing =
        trusted.iter().rev().find(|x| x.ts <= to && x.ts >= from).or_else(|| trusted.iter().find(|x| x.ts >= to));
    let mut flagged = false;
    let quarantined = c.quarantined.iter().filter(|q| q.ts >= from && q.ts < to).count();
    if quarantined > 0 {
        let (en, zh) = (
            "reading(s) quarantined (spikes, backward steps, transient zeros)",
            "个读数被隔离（尖峰、倒走、瞬时归零）",
        );
        notes.push(Text::new(format!("{quarantined} {en}"), format!("{quarantined} {zh}")));
    }
    if trusted.is_empty() {
        notes.push(Text::new("no trusted readings: nothing booked", "没有可信读数：未入账"));
        flagged = true;
    }
    // A meter silent past the month's end: what it used since its last reading is not
    // known yet, and is booked when it reads again (in the month it then falls into).
    let late = TimeDelta::from_std(interval * 3).unwrap_or(TimeDelta::hours(1));
    // a month still running is judged at `as_of`, not at its end
    let judged_at = spec.as_of.map_or(to, |t| t.min(to));
    if let Some(last) = c.last.filter(|(ts, _)| *ts < judged_at - late && *ts >= from - MARGIN) {
        if !trusted.iter().any(|x| x.ts >= to) {
            notes.push(silent_note(last.0.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(), judged_at < to));
            flagged = true;
        }
    }
    let (tariff_name, amount) =
        if m.role == Role::Billed { bill(spec, prices, m, &h, &mut notes, &mut flagged) } else { (None, None) };
    // how much of the month (to when it is judged) lies between the first and the last
    // trusted reading, a reading within three intervals of either end counting as there
    let coverage = (!frozen).then(|| {
        let (Some(a), Some(b)) = (opening.map(|x| x.ts), closing.map(|x| x.ts)) else { return 0.0 };
        let a = if a - from <= late { from } else { a.max(from) };
        let b = if judged_at - b <= late { judged_at } else { b.min(judged_at) };
        let whole = (judged_at - from).num_seconds();
        if whole <= 0 {
            1.0
        } else {
            ((b - a).num_seconds() as f64 / whole as f64).clamp(0.0, 1.0)
        }
    });
    if let Some(c) = coverage.filter(|c| *c < FULL_COVERAGE && !trusted.is_empty()) {
        notes.push(Text::new(
            format!("readings cover {:.1} % of the month", c * 100.0),
            format!("读数只覆盖本月的 {:.1} %", c * 100.0),
        ));
        flagged = true;
    }
    let row = MeterRow {
        utility: m.utility,
        zone: m.zone.clone(),
        device: m.device.clone(),
        point: m.point.clone(),
        role: m.role,
        category: m.category.clone(),
        opening: opening.and_then(|x| x.value),
        opening_ts: opening.map(|x| x.ts),
        closing: closing.and_then(|x| x.value),
        closing_ts: closing.map(|x| x.ts),
        consumption,
        estimated,
        quarantined,
        tariff: tariff_name,
        amount_fen: amount,
        notes,
        flagged,
        coverage,
    };
    Ok((row, h, frozen))
}

/// The note of a meter silent since `since` (local time) to now (`running`) or the
/// month's end.
fn silent_note(since: String, running: bool) -> Text {
    let (until, until_zh) = if running { ("now", "现在") } else { ("the end of the month", "月末") };
    Text::new(
        format!("no readings from {since} to {until}: consumption after that is not booked yet"),
        format!("{since} 至{until_zh}没有读数：其后的用量尚未入账"),
    )
}

/// The note of volume used before the month, read after the previous month was closed.
fn late_note(late: f64) -> Text {
    Text::new(
        format!("{late:.3} used before the month start, read only after the previous month was closed: booked here as estimated"),
        format!("{late:.3} 为月初之前的用量，上月结账后才读到：作为估算计入本月"),
    )
}

/// A utility's name in Chinese, in a note.
fn utility_zh(u: crate::ledger::topology::Utility) -> &'static str {
    match u {
        crate::ledger::topology::Utility::Water => "水",
        crate::ledger::topology::Utility::Electricity => "电",
    }
}

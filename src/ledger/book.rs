//! The ledger's books in the store: the one module that reads and writes the store for
//! the ledger. A month's ledger from the store (raw readings, frozen records, gap
//! anchors, corrections), freezing closed months, recording corrections and recomputing
//! the frozen months they touch. Used alike by the commands, the HTTP API, the running
//! gateway, the tests and the benchmarks.
//!
//! Errors are never data: a store that cannot be read fails the ledger; it never shows a
//! meter with zero consumption.

use chrono::{DateTime, TimeDelta, Utc};

use super::corrections::{Change, Correction};
use super::intervals::{Bucket, Sample};
use super::month::{self, Depth, Ledger, LedgerError, ReadError, Source, Spec};
use crate::model::{Month, Quality};
use crate::store::{RollupRow, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, BookError>;

/// How long after a month's end it is frozen: late readings and the bridging margin are
/// in by then.
pub const FREEZE_AFTER: TimeDelta = TimeDelta::days(7);

/// The readings of one meter from the store, as ledger samples.
pub fn samples(
    store: &Store,
    device: &str,
    point: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> std::result::Result<Vec<Sample>, ReadError> {
    Ok(store
        .series_readings(device, point, from.timestamp_millis(), to.timestamp_millis())?
        .into_iter()
        .map(|r| Sample { ts: r.ts, value: r.value, good: r.quality == Quality::Good })
        .collect())
}

/// The corrections in the store, oldest first, and a sentence for each stored one that
/// cannot be read (or fails the checks a new one must pass): those are skipped, and the
/// ledger says so, rather than failing every month.
pub fn corrections(store: &Store) -> Result<(Vec<Correction>, Vec<crate::lang::Text>)> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for row in store.corrections()? {
        let change =
            serde_json::from_str::<Change>(&row.change).map_err(|e| e.to_string()).and_then(|c| c.check().map(|()| c));
        match change {
            Ok(change) => good.push(Correction { id: row.id, at: row.at, by: row.who, why: row.why, change }),
            Err(e) => {
                tracing::error!(correction = row.id, error = %e, "a stored correction is unreadable; skipped");
                let (id, at, who) = (row.id, row.at.to_rfc3339(), row.who);
                bad.push(crate::lang::Text::new(
                    format!("correction #{id} (recorded {at} by {who}) is unreadable and was skipped: {e}"),
                    format!("更正 #{id}（{who} 于 {at} 录入）无法读取，已跳过：{e}"),
                ));
            }
        }
    }
    Ok((good, bad))
}

/// Computes a month through `f`, with the store as its source; `except` is a month whose
/// frozen record is not used (the one being frozen is computed from raw readings).
fn with_source<T>(
    spec: &Spec<'_>,
    store: &Store,
    except: Option<Month>,
    f: impl FnOnce(&Source<'_>) -> std::result::Result<T, LedgerError>,
) -> std::result::Result<T, LedgerError> {
    let tz = spec.tz;
    let samples = |d: &str, p: &str, a: DateTime<Utc>, b: DateTime<Utc>| samples(store, d, p, a, b);
    let frozen = |m: Month, meter: &str| -> std::result::Result<_, ReadError> {
        if except == Some(m) || !store.is_frozen(m)? {
            return Ok(None);
        }
        let Some((from, to)) = m.bounds(tz) else { return Ok(None) };
        let kept: std::collections::BTreeMap<DateTime<Utc>, Bucket> = store
            .rollups(meter, from, to)?
            .into_iter()
            .map(|r| (r.hour, Bucket { volume: r.volume, estimated: r.estimated }))
            .collect();
        // A meter without a record in the frozen month (added or back-filled since) is
        // read from its raw readings.
        Ok((!kept.is_empty()).then_some(kept))
    };
    let anchor = |d: &str, p: &str, before: DateTime<Utc>| -> std::result::Result<_, ReadError> {
        Ok(store.last_good_before(d, p, before.timestamp_millis())?.map(|(ts, v)| Sample {
            ts,
            value: Some(v),
            good: true,
        }))
    };
    f(&Source { samples: &samples, frozen: Some(&frozen), anchor: Some(&anchor) })
}

/// The ledger of a month from the store: from its frozen record once the month is frozen,
/// from the raw readings before.
pub fn month_ledger(spec: &Spec<'_>, store: &Store, month: Month, depth: Depth) -> Result<Ledger> {
    // a month still running is judged now
    let spec = &Spec { as_of: Some(spec.as_of.unwrap_or_else(Utc::now)), ..spec.clone() };
    let (corrections, unreadable) = corrections(store)?;
    let mut l = with_source(spec, store, None, |s| month::compute_from(spec, month, s, &corrections, depth))?;
    l.notes.extend(unreadable);
    Ok(l)
}

/// Freezes `month` from the raw readings (and corrections): its hourly consumption per
/// meter is kept for good.
pub fn freeze(spec: &Spec<'_>, store: &Store, month: Month) -> Result<()> {
    freeze_unless_partial(spec, store, month, false).map(|_| ())
}

/// Freezes `month`, unless `hold_partial` and its readings cover only part of it (they
/// may still come: an import, a meter read by hand). Returns whether it froze.
fn freeze_unless_partial(spec: &Spec<'_>, store: &Store, month: Month, hold_partial: bool) -> Result<bool> {
    let (from, to) = month.bounds(spec.tz).ok_or(LedgerError::Bounds(month, spec.tz))?;
    let (corrections, _unreadable) = corrections(store)?;
    let l = with_source(spec, store, Some(month), |s| month::compute_from(spec, month, s, &corrections, Depth::Bare))?;
    if hold_partial && l.partial {
        return Ok(false);
    }
    let meters: Vec<(String, Vec<RollupRow>)> = l
        .hourly
        .into_iter()
        .map(|(k, h)| {
            (k, h.into_iter().map(|(hour, b)| RollupRow { hour, volume: b.volume, estimated: b.estimated }).collect())
        })
        .collect();
    store.freeze_month(month, from, to, &meters)?;
    Ok(true)
}

/// How long after [`FREEZE_AFTER`] a partial month waits for its missing readings before
/// it is frozen as it is (its notes still say it is partial): three weeks after the month
/// closed, still within the next month, whose first days write the final ledger.
pub const PARTIAL_GRACE: TimeDelta = TimeDelta::days(14);

/// Freezes every month that ended more than [`FREEZE_AFTER`] ago and is not frozen yet,
/// from the month of the oldest reading on. Runs before pruning, so that no ledger
/// depends on pruned readings. Returns how many months it froze.
pub fn freeze_closed_months(spec: &Spec<'_>, store: &Store, now: DateTime<Utc>) -> Result<usize> {
    if spec.topology.zones.is_empty() {
        return Ok(0);
    }
    let (Some(oldest), Some(newest)) = (store.oldest_ts()?, store.newest_ts()?) else { return Ok(0) };
    let closed =
        month::months(spec.tz, oldest).take_while(|(_, from, to)| *to + FREEZE_AFTER <= now && *from <= newest);
    let mut frozen = 0;
    for (m, _, to) in closed {
        if !store.is_frozen(m)? {
            let hold = to + FREEZE_AFTER + PARTIAL_GRACE > now;
            if !freeze_unless_partial(spec, store, m, hold)? {
                tracing::info!(month = %m, "ledger month partial: not frozen while its readings may still come");
                continue;
            }
            tracing::info!(month = %m, "ledger month frozen");
            frozen += 1;
        }
    }
    Ok(frozen)
}

/// Seven days before the start of the oldest month with readings that is not frozen yet
/// (the ledger bridges gaps across a month's start with them): pruning for size must keep
/// every reading from there on (`None` without a network map: no ledger).
pub fn keep_from(spec: &Spec<'_>, store: &Store) -> Result<Option<DateTime<Utc>>> {
    if spec.topology.zones.is_empty() {
        return Ok(None);
    }
    let Some(oldest) = store.oldest_ts()? else { return Ok(None) };
    // A reading before the ledger's first month (2000) must not switch the guard off:
    // the months are walked from the first one the ledger knows.
    let first_known = chrono::DateTime::<Utc>::from_timestamp(946_800_000, 0).unwrap_or(oldest);
    for (m, from, _) in month::months(spec.tz, oldest.max(first_known)) {
        if !store.is_frozen(m)? {
            return Ok(Some(from - month::MARGIN));
        }
    }
    Ok(None)
}

/// What happened to a frozen month that new data reaches into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refrozen {
    /// Recomputed from its raw readings, which are all still there.
    Recomputed(Month),
    /// Its readings are pruned: the record stays as it was.
    Kept(Month),
}

/// Recomputes the frozen months among `months` while their raw readings are all there.
pub fn refreeze(
    spec: &Spec<'_>,
    store: &Store,
    months: impl Iterator<Item = (Month, DateTime<Utc>)>,
) -> Result<Vec<Refrozen>> {
    let Some(oldest) = store.oldest_ts()? else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (m, from) in months {
        if store.is_frozen(m)? {
            if oldest <= from - FREEZE_AFTER {
                freeze(spec, store, m)?;
                out.push(Refrozen::Recomputed(m));
            } else {
                out.push(Refrozen::Kept(m));
            }
        }
    }
    Ok(out)
}

/// Recomputes the frozen months that readings between `first` and `last` reach into.
pub fn refreeze_range(
    spec: &Spec<'_>,
    store: &Store,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
) -> Result<Vec<Refrozen>> {
    let months = month::months(spec.tz, first).take_while(|(_, from, _)| *from <= last).map(|(m, from, _)| (m, from));
    refreeze(spec, store, months)
}

/// Records one audited correction and recomputes the frozen months it touches; returns
/// its id and what happened to those months.
pub fn record_correction(
    spec: &Spec<'_>,
    store: &Store,
    by: &str,
    why: &str,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<(i64, Vec<Refrozen>)> {
    change.check().map_err(BookError::Invalid)?;
    let json = serde_json::to_string(change).map_err(|e| BookError::Invalid(e.to_string()))?;
    let id = store.add_correction(by, why, &json)?;
    let c = Correction { id, at: now, by: by.to_string(), why: why.to_string(), change: change.clone() };
    let Some(oldest) = store.oldest_ts()? else { return Ok((id, Vec::new())) };
    let tz = spec.tz;
    let touched: Vec<(Month, DateTime<Utc>)> = month::months(tz, oldest)
        .take_while(|(_, from, _)| *from <= now)
        .filter(|(_, from, to)| c.affects(*from, *to, to.with_timezone(&tz).date_naive()))
        .map(|(m, from, _)| (m, from))
        .collect();
    Ok((id, refreeze(spec, store, touched.into_iter())?))
}

//! The bus task: when each device of one bus is polled, and how its readings leave.
//!
//! Invariants (with those of [`super::poller`]):
//! - **One timer per bus, one hand-off per burst.** Devices of one interval are due
//!   together; the task wakes once for them and starts them in their order on the bus
//!   (a line takes them one after another; a TCP bus as many as its connections and
//!   pipelines hold). Their readings go to the writer together, once nothing is left
//!   running, or after [`FLUSH`] while a slow device is still being waited for.
//! - **Polls run inside the bus task**, not as tasks of their own: the answers of a burst
//!   wake one task, not one per device. A poll that panics is caught, counted, and its
//!   device polled again after a backoff.
//! - **A device is never polled twice at once**, and its next poll is due one interval
//!   after the last was due. A cycle that overruns its interval is counted and logged,
//!   and the missed slots are skipped, never queued up.
//! - **Commands go before due polls**: an operator waits on them.

use std::any::Any;
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::command::{Command, CommandError, Inbox};
use super::config::{Bus, Device};
use super::poller::{Job, PollOutcome, Pool, Stats};
use crate::model::Reading;

/// Longest a finished poll's readings wait for the rest of their burst.
pub const FLUSH: Duration = Duration::from_millis(250);

/// A burst is handed to the writer once it holds this many readings (it exceeds it by
/// one poll's at most), so that the channel to the writer holds a bounded number of
/// readings, not bursts of any size.
pub const BURST_MAX: usize = 1000;

/// An overrunning device is told in the log at most this often.
const OVERRUN_TOLD_EVERY: Duration = Duration::from_secs(60);

struct Slot {
    job: Job,
    next_due: Instant,
    busy: bool,
    failures: u32,
    answering: bool,
    /// When an overrun was last told, and how many since (told at most once a minute).
    overrun_told: Option<Instant>,
    overruns_untold: u64,
}

/// The delay before the next attempt at a device that failed `failures` times in a row.
pub fn backoff(interval: Duration, failures: u32, max: Duration) -> Duration {
    if failures <= 1 {
        return interval;
    }
    let factor = 1u32 << (failures - 1).min(16);
    interval.saturating_mul(factor).min(max.max(interval))
}

/// The site whose readings a bus takes: its name, and its time zone (meters keep local
/// time).
#[derive(Debug, Clone)]
pub struct Origin {
    pub name: Arc<str>,
    pub tz: chrono_tz::Tz,
}

/// A poll (of the slot it names) or a command (`None`) that ended, or panicked.
type Done = (Option<usize>, Result<Option<PollOutcome>, Box<dyn Any + Send>>);
type Running = FuturesUnordered<Pin<Box<dyn Future<Output = Done> + Send>>>;

/// Polls every device of `bus` until `cancel` fires; readings go to `tx` a burst at a
/// time. When `tx` is full the bus waits (back-pressure): the consumer, not the poller,
/// decides what to keep.
pub async fn run_bus(
    bus: Bus,
    devices: Vec<Device>,
    site: Origin,
    stats: Stats,
    tx: mpsc::Sender<Vec<Reading>>,
    inbox: Inbox,
    cancel: CancellationToken,
) {
    let mut inbox = inbox.lock().await;
    let mut commands: VecDeque<Command> = VecDeque::new();
    let pool = Arc::new(Pool::new(&bus));
    let pipe = Pool::pipeline(&bus);
    // reads in flight at once: each connection's pipeline full
    let cap = bus.concurrency * pipe.as_ref().map_or(1, |p| p.depth());
    let start = Instant::now();
    let mut slots: Vec<Slot> = devices
        .into_iter()
        .map(|device| {
            let stats = stats.get(&*device.name).cloned().unwrap_or_default();
            Slot {
                job: Job {
                    plan: Arc::new(device.plan()),
                    split: Arc::new(HashSet::new()),
                    device,
                    site: site.name.clone(),
                    tz: site.tz,
                    stats,
                    pool: pool.clone(),
                    pipe: pipe.clone(),
                },
                next_due: start,
                busy: false,
                failures: 0,
                answering: true,
                overrun_told: None,
                overruns_untold: 0,
            }
        })
        .collect();
    tracing::info!(bus = %bus.name, transport = %bus.transport.describe(), devices = slots.len(), "polling");
    let mut running: Running = FuturesUnordered::new();
    let mut batch: Vec<Reading> = Vec::new();
    let mut batch_since = start;
    let timer = tokio::time::sleep_until(start);
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;
    loop {
        let now = Instant::now();
        while running.len() < cap {
            let Some(cmd) = commands.pop_front() else { break };
            running.push(command(&slots, cmd));
        }
        start_due(&mut slots, &mut running, cap, now);
        if !batch.is_empty() && (running.is_empty() || batch.len() >= BURST_MAX || now >= batch_since + FLUSH) {
            if tx.send(std::mem::take(&mut batch)).await.is_err() {
                return;
            }
            continue;
        }
        let next_due =
            if running.len() < cap { slots.iter().filter(|s| !s.busy).map(|s| s.next_due).min() } else { None };
        let flush = (!batch.is_empty()).then_some(batch_since + FLUSH);
        let wake = next_due.into_iter().chain(flush).min();
        if wake != armed {
            if let Some(at) = wake {
                timer.as_mut().reset(at);
            }
            armed = wake;
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            Some(cmd) = inbox.recv() => commands.push_back(cmd),
            Some((slot, done)) = running.next(), if !running.is_empty() => {
                let Some(i) = slot else { continue };
                slots[i].busy = false;
                match done {
                    Ok(Some(outcome)) => {
                        if batch.is_empty() {
                            batch_since = Instant::now();
                        }
                        batch.extend(ended(&mut slots[i], outcome));
                    }
                    Ok(None) => {}
                    Err(panic) => panicked(&mut slots[i], panic.as_ref()),
                }
            }
            () = &mut timer, if armed.is_some() => armed = None,
        }
    }
    // what was read before the stop still goes to the writer, polls that had ended but
    // were not taken yet included
    while let Some(Some((_, done))) = running.next().now_or_never() {
        if let Ok(Some(outcome)) = done {
            batch.extend(outcome.readings);
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch).await;
    }
}

/// Starts the due polls, the longest due first (in their order on the bus when due
/// together), while there is room.
fn start_due(slots: &mut [Slot], running: &mut Running, cap: usize, now: Instant) {
    if running.len() >= cap {
        return;
    }
    let mut due: Vec<usize> = (0..slots.len()).filter(|&i| !slots[i].busy && slots[i].next_due <= now).collect();
    due.sort_by_key(|&i| (slots[i].next_due, i));
    for i in due.into_iter().take(cap - running.len()) {
        slots[i].busy = true;
        let job = slots[i].job.clone();
        running.push(Box::pin(async move { (Some(i), AssertUnwindSafe(job.poll()).catch_unwind().await.map(Some)) }));
    }
}

fn command(slots: &[Slot], cmd: Command) -> Pin<Box<dyn Future<Output = Done> + Send>> {
    let job = slots.iter().find(|s| s.job.device.name == cmd.device).map(|s| s.job.clone());
    Box::pin(async move {
        let work = async move {
            let r = match job {
                Some(job) => job.command(cmd.action).await,
                None => Err(CommandError::UnknownDevice(cmd.device.to_string())),
            };
            let _ = cmd.reply.send(r);
            None
        };
        (None, AssertUnwindSafe(work).catch_unwind().await)
    })
}

/// A poll that panicked: the device is counted and polled again after a backoff, never
/// left marked busy.
fn panicked(slot: &mut Slot, panic: &(dyn Any + Send)) {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    slot.failures += 1;
    slot.job.stats.panics.fetch_add(1, Ordering::Relaxed);
    tracing::error!(device = %slot.job.device.name, error = %what, "poll failed; polling the device again after a backoff");
    slot.next_due = Instant::now() + backoff(slot.job.device.interval, slot.failures, slot.job.device.backoff_max);
}

/// Books a poll's end on its slot (next due, backoff, merged reads split) and gives back
/// its readings.
fn ended(slot: &mut Slot, outcome: PollOutcome) -> Vec<Reading> {
    if !outcome.split.is_empty() {
        let mut split = (*slot.job.split).clone();
        split.extend(outcome.split.iter().copied());
        tracing::info!(device = %slot.job.device.name, "device refuses reads across unused registers; reading those points one by one");
        slot.job.split = Arc::new(split);
    }
    let interval = slot.job.device.interval;
    let now = Instant::now();
    slot.job.stats.cycle_ended(outcome.answered, chrono::Utc::now().timestamp_millis());
    if outcome.answered {
        if !slot.answering {
            tracing::info!(device = %slot.job.device.name, "device answers again");
        }
        slot.failures = 0;
        slot.answering = true;
        slot.next_due += interval;
        if outcome.took > interval || slot.next_due <= now {
            slot.job.stats.slow_cycles.fetch_add(1, Ordering::Relaxed);
            slot.overruns_untold += 1;
            if slot.overrun_told.is_none_or(|t| now.duration_since(t) >= OVERRUN_TOLD_EVERY) {
                tracing::warn!(device = %slot.job.device.name, took = ?outcome.took, interval = ?interval, overruns = slot.overruns_untold, "poll cycles overran their interval; missed slots skipped (counted in slow_cycles; told at most once a minute)");
                slot.overrun_told = Some(now);
                slot.overruns_untold = 0;
            }
            while slot.next_due <= now {
                slot.next_due += interval;
            }
        }
    } else {
        slot.failures += 1;
        if slot.answering {
            tracing::warn!(device = %slot.job.device.name, unit = slot.job.device.unit, quality = %outcome.readings.first().map(|r| r.quality.to_string()).unwrap_or_default(), "device does not answer; backing off");
        }
        slot.answering = false;
        slot.next_due = now + backoff(interval, slot.failures, slot.job.device.backoff_max);
    }
    outcome.readings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let i = Duration::from_secs(10);
        let max = Duration::from_secs(60);
        assert_eq!(backoff(i, 0, max), i);
        assert_eq!(backoff(i, 1, max), i);
        assert_eq!(backoff(i, 2, max), Duration::from_secs(20));
        assert_eq!(backoff(i, 3, max), Duration::from_secs(40));
        assert_eq!(backoff(i, 4, max), max);
        assert_eq!(backoff(i, 40, max), max);
        // a cap below the interval never polls faster than the interval
        assert_eq!(backoff(i, 5, Duration::from_secs(1)), i);
    }
}

//! The writer against a store that refuses writes (`PRAGMA max_page_count`, as a full
//! disk) and against a fake clock that boots at 1970 and steps.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::model::{Quality, Quantity};

struct FakeClock(Mutex<(DateTime<Utc>, Duration)>);

impl FakeClock {
    fn set(&self, wall: DateTime<Utc>, mono: Duration) {
        *self.0.lock().unwrap() = (wall, mono);
    }
}

impl Clock for FakeClock {
    fn wall(&self) -> DateTime<Utc> {
        self.0.lock().unwrap().0
    }
    fn mono(&self) -> Duration {
        self.0.lock().unwrap().1
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn reading(device: &str, ts: DateTime<Utc>, value: f64) -> Reading {
    Reading {
        site: "campus".into(),
        zone: "east".into(),
        device: device.into(),
        point: "total".into(),
        quantity: Quantity::WaterVolume,
        unit: "m3".into(),
        ts,
        value: Some(value),
        quality: Quality::Good,
    }
}

/// `n` readings of `device`, one a second from `from`.
fn batch(device: &str, from: DateTime<Utc>, n: usize) -> Vec<Reading> {
    (0..n).map(|i| reading(device, from + TimeDelta::seconds(i as i64), i as f64)).collect()
}

struct Rig {
    store: Arc<Store>,
    intake: Arc<Intake>,
    clock: Arc<FakeClock>,
    tx: mpsc::Sender<Vec<Reading>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn rig(capacity: usize, wall: DateTime<Utc>, floor: DateTime<Utc>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.db"), Default::default()).unwrap());
    let intake = Arc::new(Intake::default());
    let clock = Arc::new(FakeClock(Mutex::new((wall, Duration::ZERO))));
    let (tx, rx) = mpsc::channel(16);
    let w = Writer {
        store: store.clone(),
        notify: watch::channel(0).0,
        intake: intake.clone(),
        tap: None,
        capacity,
        clock: clock.clone(),
        guard: Guard::new(floor, store.newest_ts().unwrap()),
    };
    let task = tokio::spawn(run(w, rx));
    Rig { store, intake, clock, tx, task, _dir: dir }
}

/// Lets the writer run (time is paused: sleeping advances it when all are idle).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never: {what}");
}

#[tokio::test(start_paused = true)]
async fn a_full_disk_keeps_readings_in_memory_and_commits_them_when_space_returns() {
    // the store keeps milliseconds
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let r = rig(8000, now, now - TimeDelta::days(30));
    r.tx.send(batch("m1", now, 100)).await.unwrap();
    until("the first batch committed", || r.store.records() == 100).await;

    // the disk is full: not one more page
    r.store.limit_pages(r.store.page_count().unwrap()).unwrap();
    // a new meter too: its series row is rolled back with the readings
    r.tx.send(batch("m2", now + TimeDelta::seconds(100), 5000)).await.unwrap();
    until("the store refused", || r.intake.failing_since_ms.load(Ordering::Relaxed) > 0).await;
    assert_eq!(r.store.records(), 100);
    assert_eq!(r.intake.unwritten.load(Ordering::Relaxed), 5000);
    assert!(r.intake.problems(Utc::now().timestamp_millis())[0].contains("the store has refused writes"));

    // polling goes on: the channel never fills, the writer takes every batch
    let tries_before = r.intake.refusals.load(Ordering::Relaxed);
    let sent =
        tokio::time::timeout(Duration::from_secs(1), r.tx.send(batch("m1", now + TimeDelta::seconds(200), 5000)));
    sent.await.expect("the writer holds the pollers up").unwrap();
    // a minute of a full disk: a few tries with a growing delay, no busy loop
    tokio::time::sleep(Duration::from_secs(60)).await;
    let tries = r.intake.refusals.load(Ordering::Relaxed) - tries_before;
    assert!((2..=8).contains(&tries), "{tries} tries in a minute");
    // 10 000 waited for 8 000 places: the oldest 2 000 (of m2) went, counted
    until("the queue bounded", || r.intake.unwritten.load(Ordering::Relaxed) == 8000).await;
    assert_eq!(r.intake.dropped.load(Ordering::Relaxed), 2000);

    // space returns: everything kept is committed, the drop is recorded in the store
    r.store.limit_pages(1 << 30).unwrap();
    until("the queue committed", || r.store.records() == 8100).await;
    until("healthy again", || r.intake.failing_since_ms.load(Ordering::Relaxed) == 0).await;
    assert_eq!(r.intake.unwritten.load(Ordering::Relaxed), 0);
    assert!(r.intake.error().is_none());
    assert_eq!(r.store.stats().unwrap().dropped.get("memory_queue"), Some(&2000));
    // m2's newest 3 000 (the series exists though its first insert was rolled back)
    let m2 = r.store.series_readings("m2", "total", 0, i64::MAX).unwrap();
    assert_eq!(m2.len(), 3000);
    assert_eq!(m2[0].ts, now + TimeDelta::seconds(100 + 2000));
    assert_eq!(r.store.series_readings("m1", "total", 0, i64::MAX).unwrap().len(), 5100);

    drop(r.tx);
    r.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn readings_of_a_clock_at_1970_are_held_and_stamped_again_when_it_is_set() {
    let floor = at("2026-11-01T00:00:00Z");
    let boot = DateTime::UNIX_EPOCH;
    let r = rig(100_000, boot, floor);
    // a poll each 10 s for a minute after boot, by a clock at 1970
    for i in 0..6 {
        let t = boot + TimeDelta::seconds(10 * i);
        r.clock.set(t, Duration::from_secs(10 * i as u64));
        r.tx.send(vec![reading("m1", t, 100.0 + i as f64)]).await.unwrap();
    }
    until("held", || r.intake.held.load(Ordering::Relaxed) == 6).await;
    assert_eq!(r.store.records(), 0);
    assert!(r.intake.problems(0).iter().any(|p| p.contains("it is not set; 6 readings are held")));

    // NTP steps the clock at monotonic 100 s
    let set = at("2026-11-29T08:00:00Z");
    r.clock.set(set, Duration::from_secs(100));
    until("released", || r.store.records() == 6).await;
    let rows = r.store.series_readings("m1", "total", 0, i64::MAX).unwrap();
    // taken at monotonic 0, 10, … 50 s: 100, 90, … 50 s before 08:00:00
    let want: Vec<DateTime<Utc>> = (0..6).map(|i| set - TimeDelta::seconds(100 - 10 * i)).collect();
    assert_eq!(rows.iter().map(|p| p.ts).collect::<Vec<_>>(), want);
    assert!(rows.iter().all(|p| p.quality == Quality::Good));
    assert_eq!(r.intake.held.load(Ordering::Relaxed), 0);
    assert!(r.intake.problems(set.timestamp_millis()).is_empty());

    // nothing of 1970 exists to freeze or to prune as undelivered
    assert_eq!(r.store.oldest_ts().unwrap(), Some(want[0]));
    let pruned = r.store.prune(set, &["mqtt"], None).unwrap();
    assert_eq!(pruned.undelivered, 0);

    // the clock steps back 30 min: readings are kept, flagged, until it passes the newest
    let back = set - TimeDelta::minutes(30);
    r.clock.set(back, Duration::from_secs(101));
    r.tx.send(vec![reading("m1", back, 200.0)]).await.unwrap();
    until("flagged", || r.store.records() == 7).await;
    let flagged = r.store.series_readings("m1", "total", back.timestamp_millis(), back.timestamp_millis() + 1).unwrap();
    assert_eq!(flagged[0].quality, Quality::ClockBehind);
    assert_eq!(flagged[0].value, Some(200.0));
    assert_eq!(r.intake.behind.load(Ordering::Relaxed), 1);
    let later = set + TimeDelta::seconds(1);
    r.clock.set(later, Duration::from_secs(1902));
    r.tx.send(vec![reading("m1", later, 201.0)]).await.unwrap();
    until("fine again", || r.store.records() == 8).await;
    let fine = r.store.series_readings("m1", "total", later.timestamp_millis(), later.timestamp_millis() + 1).unwrap();
    assert_eq!(fine[0].quality, Quality::Good);

    drop(r.tx);
    r.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn stopping_with_a_clock_never_set_ends_and_says_what_is_lost() {
    let r = rig(100_000, DateTime::UNIX_EPOCH, at("2026-11-01T00:00:00Z"));
    r.tx.send(vec![reading("m1", DateTime::UNIX_EPOCH, 1.0)]).await.unwrap();
    until("held", || r.intake.held.load(Ordering::Relaxed) == 1).await;
    drop(r.tx);
    // the writer ends (after its last tries), it does not wait for the clock forever
    tokio::time::timeout(Duration::from_secs(60), r.task).await.expect("the writer never ended").unwrap();
    assert_eq!(r.store.records(), 0);
}

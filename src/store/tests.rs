use super::*;
use chrono::{TimeZone, Utc};

use crate::model::Quality;

fn reading(device: &str, point: &str, ts_ms: i64, value: Option<f64>, quality: Quality) -> Reading {
    Reading {
        ts: Utc.timestamp_millis_opt(ts_ms).unwrap(),
        site: "s".into(),
        zone: "z".into(),
        device: device.into(),
        point: point.into(),
        quantity: Quantity::WaterVolume,
        value,
        unit: "m3".into(),
        quality,
    }
}

#[test]
fn readings_round_trip_in_order_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = Store::open(&path, Limits::default()).unwrap();
        let last = store
            .append(&[
                reading("m1", "total", 1_000, Some(10.5), Quality::Good),
                reading("m2", "total", 1_001, None, Quality::Timeout),
                reading("m1", "total", 2_000, None, Quality::Exception(2)),
            ])
            .unwrap();
        assert_eq!(last, 3);
        store.advance("mqtt", 1).unwrap();
    }
    let store = Store::open(&path, Limits::default()).unwrap();
    assert_eq!(store.cursor("mqtt").unwrap(), 1);
    assert_eq!(store.cursor("influx").unwrap(), 0);
    let got = store.read_after(1, 10).unwrap();
    assert_eq!(got.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(&*got[0].reading.device, "m2");
    assert_eq!(got[0].reading.quality, Quality::Timeout);
    assert_eq!(got[1].reading.quality, Quality::Exception(2));
    assert_eq!(got[1].reading.ts.timestamp_millis(), 2_000);
    let all = store.read_after(0, 10).unwrap();
    assert_eq!(all[0].reading.value, Some(10.5));
    assert_eq!(all[0].reading.unit.as_ref(), "m3");
}

#[test]
fn series_added_by_another_process_are_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let gateway = Store::open(&path, Limits::default()).unwrap();
    gateway.append(&[reading("m1", "total", 1_000, Some(1.0), Quality::Good)]).unwrap();
    assert_eq!(gateway.read_after(0, 10).unwrap().len(), 1);
    // an import running beside the gateway adds a series the gateway has not seen
    let import = Store::open(&path, Limits::default()).unwrap();
    import.append(&[reading("m2", "total", 2_000, Some(2.0), Quality::Good)]).unwrap();
    let got = gateway.read_after(0, 10).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(&*got[1].reading.device, "m2");
    assert_eq!(gateway.series_readings("m2", "total", 0, 10_000).unwrap().len(), 1);
}

#[test]
fn cursors_never_move_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), Limits::default()).unwrap();
    store.advance("c", 10).unwrap();
    store.advance("c", 4).unwrap();
    assert_eq!(store.cursor("c").unwrap(), 10);
}

#[test]
fn age_limit_drops_delivered_and_counts_undelivered() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_size: u64::MAX, max_age: Some(Duration::from_secs(3600)) };
    let store = Store::open(&dir.path().join("s.db"), limits).unwrap();
    let now = Utc.timestamp_millis_opt(10 * 3_600_000).unwrap();
    let old = now.timestamp_millis() - 2 * 3_600_000;
    let fresh = now.timestamp_millis() - 60_000;
    store
        .append(&[
            reading("a", "p", old, Some(1.0), Quality::Good),
            reading("a", "p", old + 1, Some(2.0), Quality::Good),
            reading("a", "p", old + 2, Some(3.0), Quality::Good),
            reading("a", "p", fresh, Some(4.0), Quality::Good),
        ])
        .unwrap();
    store.advance("mqtt", 2).unwrap();
    store.advance("influx", 4).unwrap();
    let r = store.prune(now, &["mqtt", "influx"], None).unwrap();
    assert_eq!(r, PruneReport { delivered: 2, undelivered: 1 });
    let st = store.stats().unwrap();
    assert_eq!(st.records, 1);
    assert_eq!(st.dropped.get("age_undelivered"), Some(&1));
    assert_eq!(st.dropped.get("age_delivered"), Some(&2));
    // sequence numbers go on after pruning
    assert_eq!(store.append(&[reading("a", "p", fresh + 1, Some(5.0), Quality::Good)]).unwrap(), 5);
}

#[test]
fn size_limit_drops_what_everyone_has_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("s.db"),
        Limits { max_size: u64::MAX, max_age: Some(Duration::from_secs(1 << 30)) },
    )
    .unwrap();
    let batch: Vec<Reading> =
        (0..20_000).map(|i| reading("a", "p", 1_000_000 + i, Some(i as f64), Quality::Good)).collect();
    store.append(&batch).unwrap();
    store.advance("c", 15_000).unwrap();
    let full = store.stats().unwrap().bytes;
    // allow about half of what is there: the delivered 15 000 can cover it
    let store = Store { limits: Limits { max_size: full / 2, max_age: Some(Duration::from_secs(1 << 30)) }, ..store };
    let r = store.prune(Utc.timestamp_millis_opt(2_000_000).unwrap(), &["c"], None).unwrap();
    assert!(r.delivered >= 10_000 && r.undelivered == 0, "{r:?}");
    assert_eq!(store.read_after(0, 1).unwrap()[0].seq, r.delivered + 1);
    // now allow almost nothing: undelivered ones go too, counted
    let store = Store { limits: Limits { max_size: 1, max_age: Some(Duration::from_secs(1 << 30)) }, ..store };
    let r = store.prune(Utc.timestamp_millis_opt(2_000_000).unwrap(), &["c"], None).unwrap();
    assert_eq!(r.undelivered, 5_000);
    assert_eq!(store.stats().unwrap().dropped.get("size_undelivered"), Some(&5_000));
}

#[test]
fn acknowledging_twice_or_after_clearing_changes_nothing() {
    use crate::model::{AlertRule, Severity};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), Limits::default()).unwrap();
    let row = |start_ms: i64, end_ms: Option<i64>| AlertRow {
        id: 0,
        rule: AlertRule::NightFlow,
        subject: format!("zone-{start_ms}"),
        zone: "z".into(),
        device: None,
        severity: Severity::Warning,
        start_ms,
        end_ms,
        evidence: "e".into(),
        loss_per_day: None,
        loss_fen_per_day: None,
        acked_by: None,
        acked_ms: None,
    };
    let (active, _) = store.upsert_alert(&row(1_000, None)).unwrap();
    let (cleared, _) = store.upsert_alert(&row(2_000, Some(3_000))).unwrap();
    let confirm_all = |store: &Store| {
        for (a, u) in store.undelivered_alerts(Destination::Mqtt).unwrap() {
            store.alert_delivered(Destination::Mqtt, a.id, u).unwrap();
        }
    };
    confirm_all(&store);
    let at = Utc.timestamp_millis_opt(10_000).unwrap();
    assert_eq!(store.ack_alert(active, "a", at).unwrap(), Ack::Done);
    assert_eq!(store.undelivered_alerts(Destination::Mqtt).unwrap().len(), 1, "the acknowledgement is a change");
    confirm_all(&store);
    assert_eq!(store.ack_alert(active, "b", at).unwrap(), Ack::AlreadyAcknowledged("a".into()));
    assert_eq!(store.ack_alert(cleared, "b", at).unwrap(), Ack::Cleared);
    assert_eq!(store.ack_alert(999, "b", at).unwrap(), Ack::NoSuchAlert);
    assert!(store.undelivered_alerts(Destination::Mqtt).unwrap().is_empty(), "nothing to send again");
    assert_eq!(store.alert(active).unwrap().unwrap().acked_by.as_deref(), Some("a"));
}

#[test]
fn refused_batches_are_kept_within_bounds_and_what_goes_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_size: 40 << 20, max_age: Some(Duration::from_secs(3600)) };
    let store = Store::open(&dir.path().join("s.db"), limits).unwrap();
    // 30 refused batches of 100 KiB; the budget is a twentieth of 40 MiB (2 MiB): the
    // newest 20 stay, the oldest 10 go, counted
    let body = "x".repeat(100 * 1024);
    for i in 0..30 {
        store.set_aside("influxdb:x", i, i, "field type conflict", &body).unwrap();
    }
    assert_eq!(store.stats().unwrap().set_aside, 30);
    store.prune(Utc::now(), &[], None).unwrap();
    let st = store.stats().unwrap();
    assert_eq!(st.set_aside, 20);
    assert_eq!(st.dropped.get("set_aside_batches"), Some(&10));
    // and none outlives the readings' age limit
    store.prune(Utc::now() + chrono::TimeDelta::hours(2), &[], None).unwrap();
    let st = store.stats().unwrap();
    assert_eq!(st.set_aside, 0);
    assert_eq!(st.dropped.get("set_aside_batches"), Some(&30));
}

#[test]
fn size_pruning_keeps_what_an_unfrozen_month_needs() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(&dir.path().join("s.db"), Limits { max_size: 1, max_age: Some(Duration::from_secs(1 << 30)) })
            .unwrap();
    let batch: Vec<Reading> =
        (0..2_000).map(|i| reading("a", "p", 1_000_000 + i * 1000, Some(i as f64), Quality::Good)).collect();
    store.append(&batch).unwrap();
    let keep = Utc.timestamp_millis_opt(1_000_000 + 1_500 * 1000).unwrap();
    store.prune(Utc.timestamp_millis_opt(3_000_000).unwrap(), &[], Some(keep)).unwrap();
    let left = store.read_after(0, 10_000).unwrap();
    assert_eq!(left.len(), 500, "everything from the unfrozen month's start stays, over the limit as it is");
    assert!(left.iter().all(|s| s.reading.ts >= keep));
    assert_eq!(store.stats().unwrap().dropped.get("size_delivered"), Some(&1_500));
}

#[test]
fn a_damaged_store_is_moved_aside_and_a_fresh_one_started() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let store = Store::open(&path, Limits::default()).unwrap();
        store.append(&[reading("d", "p", 1_000, Some(1.0), Quality::Good)]).unwrap();
    }
    // a healthy store opens as it is
    let (store, replaced) = Store::open_or_replace(&path, Limits::default()).unwrap();
    assert!(replaced.is_none());
    assert_eq!(store.records(), 1);
    drop(store);
    // a disk fault: the file's pages overwritten past the header
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes.iter_mut().skip(100) {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let _ = std::fs::remove_file(dir.path().join("s.db-wal"));
    assert!(Store::open(&path, Limits::default()).and_then(|s| s.last_seq()).is_err(), "the plain open refuses it");
    let (store, replaced) = Store::open_or_replace(&path, Limits::default()).unwrap();
    let aside = replaced.expect("moved aside");
    assert!(aside.file_name().unwrap().to_string_lossy().starts_with("s.db.corrupt-"), "{}", aside.display());
    assert_eq!(std::fs::read(&aside).unwrap(), bytes, "the damaged file is kept as it was");
    // the fresh store works
    assert_eq!(store.records(), 0);
    store.append(&[reading("d", "p", 2_000, Some(2.0), Quality::Good)]).unwrap();
    assert_eq!(store.records(), 1);
}

#[test]
fn the_age_limit_deletes_in_chunks_and_counts_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), Limits::default()).unwrap();
    // 25 000 readings a year old: three chunks
    let old: Vec<Reading> =
        (0..25_000).map(|i| reading("m1", "total", 1_700_000_000_000 + i, Some(1.0), Quality::Good)).collect();
    store.append(&old).unwrap();
    store.advance("mqtt", 10_000).unwrap();
    let now = Utc.timestamp_millis_opt(1_700_000_000_000 + 365 * 86_400_000).unwrap();
    let r = store.prune(now, &["mqtt"], None).unwrap();
    assert_eq!((r.delivered, r.undelivered), (10_000, 15_000));
    assert_eq!(store.records(), 0);
    let dropped = store.stats().unwrap().dropped;
    assert_eq!((dropped["age_delivered"], dropped["age_undelivered"]), (10_000, 15_000));
}

#[test]
fn the_wal_is_cut_back_after_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), Limits::default()).unwrap();
    let limit: i64 = store.lock().conn.query_row("PRAGMA journal_size_limit", [], |r| r.get(0)).unwrap();
    assert_eq!(limit, 64 << 20);
}

/// The gateway's writer leaves checkpoints to a connection of their own: past SQLite's
/// 1000 pages the WAL keeps growing, and one checkpoint moves all of it, every reading
/// still there.
#[test]
fn checkpoints_can_be_left_to_their_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), Limits::default()).unwrap();
    store.defer_checkpoints(100_000).unwrap();
    // 300 series, 200 commits: each commit writes the pages of the (series, time) index its
    // series are on
    for round in 0..200 {
        let batch: Vec<Reading> = (0..300)
            .map(|k| reading(&format!("m{k}"), "total", 1_000 * round + k, Some(k as f64), Quality::Good))
            .collect();
        store.append(&batch).unwrap();
    }
    let found = store.checkpoint().unwrap();
    assert!(found.wal_frames > 1000, "the writer checkpointed on its own: {found:?}");
    assert_eq!(found.moved, found.wal_frames);
    // nothing new since: nothing to move
    assert_eq!(store.checkpoint().unwrap().moved, found.wal_frames);
    assert_eq!(store.read_after(0, 100_000).unwrap().len(), 60_000);

    // without deferring, SQLite's own checkpoint keeps the WAL near its 1000 pages
    let other = Store::open(&dir.path().join("t.db"), Limits::default()).unwrap();
    for round in 0..200 {
        let batch: Vec<Reading> = (0..300)
            .map(|k| reading(&format!("m{k}"), "total", 1_000 * round + k, Some(k as f64), Quality::Good))
            .collect();
        other.append(&batch).unwrap();
    }
    assert!(other.checkpoint().unwrap().wal_frames < 1500);
}

/// What a crash and a power cut can do to the store (invariant 1). A process killed
/// mid-write loses no committed batch: the files it leaves (the page cache, as an OS
/// that had written everything out would leave them) open whole with every commit it
/// reported. A power cut can lose the WAL's tail written since its last sync (NORMAL
/// syncs at checkpoints): cut the WAL at arbitrary points, and the store still opens
/// whole with a prefix of the commits — an older state, never a corrupt one or a hole.
///
/// The test runs itself again as the child that writes (`PUMPHOUSE_CRASH_CHILD_STORE`
/// set): it commits batches until it is killed, printing each committed sequence number.
#[test]
fn a_crash_loses_no_commit_and_a_lost_wal_tail_only_rolls_back() {
    use std::io::{BufRead, Write};
    if let Ok(path) = std::env::var("PUMPHOUSE_CRASH_CHILD_STORE") {
        let store = Store::open(std::path::Path::new(&path), Limits::default()).unwrap();
        let mut out = std::io::stdout().lock();
        for b in 0i64.. {
            let batch: Vec<Reading> = (0..200)
                .map(|i| reading("m1", "total", 1_700_000_000_000 + b * 200 + i, Some(i as f64), Quality::Good))
                .collect();
            let last = store.append(&batch).unwrap();
            writeln!(out, "{last}").unwrap();
            out.flush().unwrap();
        }
    }
    let top = tempfile::tempdir().unwrap();
    // killed right after a checkpoint, the WAL holds nothing to lose: then once more
    for attempt in 0..3 {
        let dir = top.path().join(format!("try{attempt}"));
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("s.db");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::tests::a_crash_loses_no_commit_and_a_lost_wal_tail_only_rolls_back",
                "--nocapture",
            ])
            .env("PUMPHOUSE_CRASH_CHILD_STORE", &path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut reported = 0i64;
        // past the first automatic checkpoint (1000 pages), so the database file holds part
        while reported < 40_000 {
            match lines.next() {
                // the harness's own lines are not numbers
                Some(Ok(l)) => reported = l.trim().parse().unwrap_or(reported),
                other => panic!("the child stopped: {other:?}"),
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();

        // what is left, as it is
        let check = |p: &std::path::Path| -> i64 {
            let s = Store::open(p, Limits::default()).unwrap();
            let verdict: String = s.lock().conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).unwrap();
            assert_eq!(verdict, "ok");
            let (n, hi): (i64, i64) = s
                .lock()
                .conn
                .query_row("SELECT count(*), coalesce(max(seq), 0) FROM readings", [], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap();
            // a prefix of the commits: no hole (sequence numbers start at 1), whole batches
            assert_eq!(n, hi, "holes in 1..={hi}");
            assert_eq!(hi % 200, 0, "a batch committed in part");
            hi
        };
        let wal = std::fs::read(dir.join("s.db-wal")).unwrap();
        let db = std::fs::read(&path).unwrap();
        let copy = |name: &str, wal_bytes: Option<&[u8]>| {
            let d = dir.join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("s.db"), &db).unwrap();
            if let Some(w) = wal_bytes {
                std::fs::write(d.join("s.db-wal"), w).unwrap();
            }
            d.join("s.db")
        };
        let whole = check(&copy("crash", Some(&wal)));
        assert!(whole >= reported, "a crash lost commits: {whole} < {reported}");
        // power cuts: the WAL's unsynced tail lost at arbitrary points, and all of it
        let mut last = 0;
        for (i, cut) in [0, 32, 4096 + 24, wal.len() / 3, wal.len() / 2 + 7, wal.len() - 1].into_iter().enumerate() {
            let kept = check(&copy(&format!("cut{i}"), Some(&wal[..cut.min(wal.len())])));
            eprintln!("WAL cut at {cut} of {} bytes: {kept} of {whole} readings", wal.len());
            assert!(kept <= whole);
            assert!(kept >= last, "a longer WAL kept less");
            last = kept;
        }
        let without = check(&copy("nowal", None));
        assert!(without <= last);
        // the cuts did reach commits the crash kept: a power cut can cost them
        if without < whole {
            return;
        }
    }
    panic!("the WAL held nothing to lose in three crashes");
}

#[test]
fn a_locked_store_is_waited_for_then_refused_and_never_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let store = Store::open(&path, Limits::default()).unwrap();
        store.append(&[reading("d", "p", 1_000, Some(1.0), Quality::Good)]).unwrap();
    }
    // another connection (a second gateway, a backup) holds an exclusive lock
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;").unwrap();
    let started = std::time::Instant::now();
    let refused = Store::open_or_replace(&path, Limits::default()).map(|_| ()).unwrap_err();
    assert!(started.elapsed() >= std::time::Duration::from_secs(4), "the lock is waited for first");
    assert!(refused.to_string().contains("another process holds a lock"), "{refused}");
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.contains("corrupt")), "nothing moved aside: {names:?}");
    // once the lock is gone, the same store opens with its reading
    drop(holder);
    let (store, replaced) = Store::open_or_replace(&path, Limits::default()).unwrap();
    assert!(replaced.is_none());
    assert_eq!(store.records(), 1);
}

#[test]
fn only_proven_damage_counts_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    // a path under a regular file cannot be opened: an error, not damage, nothing moved
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let e = Store::open_or_replace(&blocker.join("s.db"), Limits::default()).map(|_| ()).unwrap_err();
    assert!(!e.is_damage(), "{e}");
    assert_eq!(std::fs::read(&blocker).unwrap(), b"x");
    // a full disk, a read-only directory, a lock: refusals, not damage
    for code in [
        rusqlite::ffi::SQLITE_FULL,
        rusqlite::ffi::SQLITE_READONLY,
        rusqlite::ffi::SQLITE_CANTOPEN,
        rusqlite::ffi::SQLITE_BUSY,
    ] {
        let e = StoreError::Sqlite {
            path: "s.db".into(),
            source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        };
        assert!(!e.is_damage(), "{e}");
    }
    // a file that is not a database is damage
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x5Au8; 8192]).unwrap();
    let e = Store::open(&junk, Limits::default()).map(|_| ()).unwrap_err();
    assert!(e.is_damage(), "{e}");
}

#[test]
fn age_pruning_keeps_an_unfrozen_months_readings_and_forever_keeps_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let hour = Limits { max_size: u64::MAX, max_age: Some(Duration::from_secs(3600)) };
    let store = Store::open(&path, hour).unwrap();
    let batch: Vec<Reading> =
        (0..2_000).map(|i| reading("a", "p", 1_000_000 + i * 1000, Some(i as f64), Quality::Good)).collect();
    store.append(&batch).unwrap();
    let a_day_later = Utc.timestamp_millis_opt(100_000_000).unwrap();
    // "forever": nothing goes for age, however old
    let forever = Store::open(&path, Limits { max_age: None, ..hour }).unwrap();
    assert_eq!(forever.prune(a_day_later, &[], None).unwrap(), PruneReport::default());
    // the largest age the config allows is no wrap-around into "everything is too old"
    let century = Store::open(&path, Limits { max_age: Some(Duration::from_secs(36_525 * 86_400)), ..hour }).unwrap();
    assert_eq!(century.prune(a_day_later, &[], None).unwrap(), PruneReport::default());
    let huge = Store::open(&path, Limits { max_age: Some(Duration::MAX), ..hour }).unwrap();
    assert_eq!(huge.prune(a_day_later, &[], None).unwrap(), PruneReport::default());
    // an hour's limit: all are past it, but those of the month not frozen yet stay
    let keep = Utc.timestamp_millis_opt(1_000_000 + 1_500 * 1000).unwrap();
    let r = store.prune(a_day_later, &[], Some(keep)).unwrap();
    assert_eq!(r.delivered + r.undelivered, 1_500);
    let left = store.read_after(0, 10_000).unwrap();
    assert_eq!(left.len(), 500);
    assert!(left.iter().all(|s| s.reading.ts >= keep));
}

#[test]
fn a_store_made_before_alerts_kept_their_pass_end_opens_and_gains_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE alerts (
                id INTEGER PRIMARY KEY, rule TEXT NOT NULL, subject TEXT NOT NULL, zone TEXT NOT NULL, device TEXT,
                severity TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER, evidence TEXT NOT NULL,
                loss_per_day REAL, loss_fen_per_day INTEGER, raised_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
                acked_by TEXT, acked_ms INTEGER, mqtt_ms INTEGER NOT NULL DEFAULT 0, webhook_ms INTEGER NOT NULL DEFAULT 0,
                influx_ms INTEGER NOT NULL DEFAULT 0, UNIQUE (rule, subject, start_ms));
             INSERT INTO alerts (rule, subject, zone, severity, start_ms, evidence, raised_ms, updated_ms)
                VALUES ('night_flow', 'east', 'east', 'warning', 1000, 'old', 1, 1);",
        )
        .unwrap();
    }
    let store = Store::open(&path, Limits::default()).unwrap();
    let old = store.alerts(false).unwrap();
    assert_eq!(old.len(), 1);
    // an overlapping episode of the same leak found later updates it, no twin
    let later = AlertRow { start_ms: 5_000, evidence: "new".into(), ..old[0].clone() };
    let (id, changed) = store.upsert_alert_seen_to(&later, 10_000).unwrap();
    assert_eq!((id, changed), (old[0].id, true));
    let now = store.alerts(false).unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!((now[0].start_ms, now[0].evidence.as_str()), (1000, "new"));
}

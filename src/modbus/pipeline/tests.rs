//! The lanes against small Modbus TCP servers written here to misbehave in known ways:
//! one that answers a burst of reads last first, one that answers only the first read of
//! whatever arrives together (as naive servers do), one that answers "busy" to all but
//! the first, and units that never answer or are always busy.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

#[derive(Clone, Copy)]
enum Manner {
    /// Answers everything that arrived together, the last first.
    Reversed,
    /// Answers the first read of what arrived together and drops the rest.
    FirstOnly,
    /// Answers in order, except unit 9, which it never answers.
    Unit9Dead,
    /// Answers in order and stalls at unit 9, as a gateway in front of a serial line
    /// waits for a unit that never answers: what came after it is not answered.
    StallsAtUnit9,
    /// Hangs up on its first connection without answering (a restart), then answers in
    /// order.
    HangsUpOnce,
    /// Answers the first read of what arrived together and "busy" (exception 06) to the
    /// rest.
    BusyBeyondFirst,
    /// Answers in order, but unit 4 is always busy.
    Unit4Busy,
}

/// The value a server gives register `a` of unit `u`.
fn value(unit: u8, a: u16) -> u16 {
    u16::from(unit) * 1000 + a
}

fn answer(req: &[u8]) -> Vec<u8> {
    let unit = req[6];
    let start = u16::from_be_bytes([req[8], req[9]]);
    let count = u16::from_be_bytes([req[10], req[11]]);
    let mut out = vec![req[0], req[1], 0, 0];
    out.extend_from_slice(&(3 + 2 * count).to_be_bytes());
    out.extend_from_slice(&[unit, 3, (2 * count) as u8]);
    for a in start..start + count {
        out.extend_from_slice(&value(unit, a).to_be_bytes());
    }
    out
}

fn busy(req: &[u8]) -> Vec<u8> {
    vec![req[0], req[1], 0, 0, 0, 3, req[6], req[7] | 0x80, 6]
}

async fn serve(mut s: TcpStream, manner: Manner, requests: Arc<AtomicUsize>, first: bool) {
    let mut buf = vec![0u8; 4096];
    let mut stalled = false;
    loop {
        let was_stalled = stalled;
        let Ok(n) = s.read(&mut buf).await else { return };
        if n == 0 || (first && matches!(manner, Manner::HangsUpOnce)) {
            return;
        }
        let frames: Vec<&[u8]> = buf[..n].chunks(12).filter(|c| c.len() == 12).collect();
        requests.fetch_add(frames.len(), Ordering::SeqCst);
        let out: Vec<u8> = match manner {
            Manner::Reversed => frames.iter().rev().flat_map(|f| answer(f)).collect(),
            Manner::FirstOnly => answer(frames[0]),
            Manner::Unit9Dead => frames.iter().filter(|f| f[6] != 9).flat_map(|f| answer(f)).collect(),
            Manner::HangsUpOnce => frames.iter().flat_map(|f| answer(f)).collect(),
            Manner::BusyBeyondFirst => {
                frames.iter().enumerate().flat_map(|(k, f)| if k == 0 { answer(f) } else { busy(f) }).collect()
            }
            Manner::Unit4Busy => frames.iter().flat_map(|f| if f[6] == 4 { busy(f) } else { answer(f) }).collect(),
            Manner::StallsAtUnit9 => {
                stalled = stalled || frames.iter().any(|f| f[6] == 9);
                frames.iter().take_while(|f| f[6] != 9 && !was_stalled).flat_map(|f| answer(f)).collect()
            }
        };
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}

async fn server(manner: Manner) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s, manner, counted.clone(), first));
            first = false;
        }
    });
    (address, requests)
}

fn read(unit: u8, start: u16) -> Read {
    Read { unit, table: Table::Holding, start, count: 2 }
}

/// Sends 40 reads at once on one lane and returns their outcomes in the order asked.
async fn burst(p: &Pipeline, units: impl Fn(usize) -> u8) -> Vec<(Read, Outcome)> {
    let reads: Vec<Read> = (0..40).map(|k| read(units(k), k as u16 * 2)).collect();
    let outcomes = futures::future::join_all(reads.iter().map(|r| p.read(*r))).await;
    reads.into_iter().zip(outcomes).collect()
}

#[tokio::test]
async fn answers_out_of_order_reach_their_own_reads() {
    let (address, requests) = server(Manner::Reversed).await;
    let p = Pipeline::start(&address, Duration::from_secs(2), 1, 8);
    for (r, o) in burst(&p, |k| 1 + (k % 5) as u8).await {
        assert_eq!(o, Outcome::Values(vec![value(r.unit, r.start), value(r.unit, r.start + 1)]), "{r:?}");
    }
    assert_eq!(requests.load(Ordering::SeqCst), 40, "each read sent once");
    assert_eq!(p.pipelining(), Pipelining::Takes { most: 8, out_of_order: true });
    assert_eq!(p.depth(), 8);
    assert_eq!(p.strays(), 0);
}

#[tokio::test]
async fn a_server_that_drops_pipelined_reads_is_read_one_at_a_time() {
    let (address, requests) = server(Manner::FirstOnly).await;
    let p = Pipeline::start(&address, Duration::from_millis(300), 1, 8);
    let started = std::time::Instant::now();
    // a cycle's burst: the first write carries 8 reads and the server answers one; the
    // reads after it go one per write as answers free room, and are answered
    for cycle in 1..=4 {
        for (r, o) in burst(&p, |_| 3).await {
            assert_eq!(o, Outcome::Values(vec![value(3, r.start), value(3, r.start + 1)]), "{r:?}");
        }
        let refused = matches!(p.pipelining(), Pipelining::Refuses(_));
        assert_eq!(refused, cycle >= STRIKES, "after cycle {cycle}: {:?}", p.pipelining());
    }
    assert_eq!(p.depth(), 1);
    // a timeout per cycle to find out, then one at a time: every read answered, none lost
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let sent = requests.load(Ordering::SeqCst);
    assert_eq!(sent, 4 * 40 + 3 * 7, "three bursts lost 7 each, each sent again once; none after");
    assert!(p.pipelining().to_string().contains("one at a time"));
}

#[tokio::test]
async fn a_unit_that_never_answers_is_not_taken_for_a_server_that_refuses_pipelining() {
    let (address, _) = server(Manner::Unit9Dead).await;
    let p = Pipeline::start(&address, Duration::from_millis(200), 1, 8);
    let outcomes = burst(&p, |k| if k % 10 == 3 { 9 } else { 1 }).await;
    for (r, o) in &outcomes {
        if r.unit == 9 {
            assert_eq!(*o, Outcome::Timeout, "{r:?}");
        } else {
            assert_eq!(*o, Outcome::Values(vec![value(1, r.start), value(1, r.start + 1)]), "{r:?}");
        }
    }
    assert!(matches!(p.pipelining(), Pipelining::Takes { .. }), "{:?}", p.pipelining());
    assert_eq!(p.depth(), 8);
}

#[tokio::test]
async fn a_dead_unit_holding_up_the_reads_behind_it_is_not_a_strike() {
    let (address, _) = server(Manner::StallsAtUnit9).await;
    let p = Pipeline::start(&address, Duration::from_millis(100), 1, 8);
    // four failures a cycle, each with reads held up behind the dead unit
    for cycle in 1..=2 {
        for (r, o) in burst(&p, |k| if k % 10 == 3 { 9 } else { 1 }).await {
            let want = if r.unit == 9 {
                Outcome::Timeout
            } else {
                Outcome::Values(vec![value(1, r.start), value(1, r.start + 1)])
            };
            assert_eq!(o, want, "cycle {cycle}: {r:?}");
        }
    }
    assert!(matches!(p.pipelining(), Pipelining::Takes { .. }), "{:?}", p.pipelining());
    assert_eq!(p.depth(), 8);
}

#[tokio::test]
async fn one_hang_up_with_reads_in_flight_does_not_turn_pipelining_off() {
    let (address, requests) = server(Manner::HangsUpOnce).await;
    let p = Pipeline::start(&address, Duration::from_secs(2), 1, 8);
    for (r, o) in burst(&p, |_| 4).await {
        assert_eq!(o, Outcome::Values(vec![value(4, r.start), value(4, r.start + 1)]), "{r:?}");
    }
    assert_eq!(requests.load(Ordering::SeqCst), 40, "the 8 lost (not counted by the server) sent again once each");
    assert!(matches!(p.pipelining(), Pipelining::Takes { .. }), "{:?}", p.pipelining());
    assert_eq!(p.depth(), 8);
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_failure_with_its_cause() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let p = Pipeline::start(&address, Duration::from_millis(500), 2, 4);
    let o = p.read(read(1, 0)).await;
    let Outcome::Unreachable(why) = o else { panic!("{o:?}") };
    assert!(why.contains("refused"), "{why}");
}

#[tokio::test]
async fn a_stray_answer_is_dropped_and_the_read_still_gets_its_own() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        let mut stray = answer(&buf);
        stray[0] ^= 0x55; // another transaction's
        let mut out = stray;
        out.extend(answer(&buf));
        s.write_all(&out).await.unwrap();
        let _ = s.read(&mut buf).await;
    });
    let p = Pipeline::start(&address, Duration::from_secs(1), 1, 4);
    assert_eq!(p.read(read(7, 10)).await, Outcome::Values(vec![value(7, 10), value(7, 11)]));
    assert_eq!(p.strays(), 1);
    assert_eq!(p.pipelining(), Pipelining::Untried);
}

#[tokio::test]
async fn a_server_busy_with_all_but_the_first_read_is_read_one_at_a_time() {
    let (address, _) = server(Manner::BusyBeyondFirst).await;
    // a cycle's strikes come within a timeout of each other (they count once) even on a
    // loaded machine
    let p = Pipeline::start(&address, Duration::from_millis(500), 1, 8);
    for cycle in 1..=4 {
        // every read gets its values: "busy" among others is asked again alone
        for (r, o) in burst(&p, |_| 3).await {
            assert_eq!(o, Outcome::Values(vec![value(3, r.start), value(3, r.start + 1)]), "{r:?}");
        }
        let refused = matches!(p.pipelining(), Pipelining::Refuses(_));
        assert_eq!(refused, cycle >= STRIKES, "after cycle {cycle}: {:?}", p.pipelining());
        // cycles further apart than the timeout, as polls are: one strike each
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert_eq!(p.depth(), 1);
}

#[tokio::test]
async fn a_unit_busy_alone_too_is_its_own_answer_and_no_strike() {
    let (address, _) = server(Manner::Unit4Busy).await;
    let p = Pipeline::start(&address, Duration::from_millis(100), 1, 8);
    for _ in 0..4 {
        for (r, o) in burst(&p, |k| 1 + (k % 5) as u8).await {
            let expected = if r.unit == 4 {
                Outcome::Exception(6)
            } else {
                Outcome::Values(vec![value(r.unit, r.start), value(r.unit, r.start + 1)])
            };
            assert_eq!(o, expected, "{r:?}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(p.depth(), 8, "{:?}", p.pipelining());
    assert!(matches!(p.pipelining(), Pipelining::Takes { .. }), "{:?}", p.pipelining());
}

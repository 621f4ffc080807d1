//! Several Modbus TCP reads in flight on one connection, matched to their answers by
//! transaction id ([`super::mbap`]).
//!
//! A bus gets `concurrency` lanes, each a task owning one connection. A device poll
//! hands its read to a lane and waits for the answer; the lane writes every read it has
//! (up to `depth` in flight) in one write, and gives each answer to its read whatever
//! order they come in. One timer per lane follows the oldest read in flight.
//!
//! Invariants:
//! - **An answer goes to its own read or nowhere.** A frame whose transaction id is not in
//!   flight (a late answer) is dropped and counted; a stream that stops being Modbus TCP
//!   closes the connection.
//! - **A timeout or a lost connection drops the connection**, as without pipelining: the
//!   server may still be working on what it was sent. The reads that were in flight with
//!   it are sent again, alone, on the next connection.
//! - **A server that does not take pipelined requests is found, said and respected.** A
//!   failure with several reads in flight whose lost reads are all answered when sent
//!   alone is a strike against pipelining. [`STRIKES`] strikes within [`STRIKE_WINDOW`]
//!   show that the server loses pipelined reads: the bus goes to one read at a time for
//!   good, says so in its log, and [`Pipelining`] tells `probe`. One failure is not
//!   enough: a server restarting or a network blip with reads in flight looks the same
//!   once. A failure in which one lost read fails alone too was that device's (a dead
//!   unit behind a gateway holding up the reads queued behind it), not a strike.
//! - **"Busy" to a read among others is not the device's answer yet.** A server that
//!   answers exception 06 (server device busy) to reads that arrive while it works on
//!   another has not refused the read, only the crowd: the read is sent again alone, and
//!   if it is answered then, that is a strike as above. Busy alone too is the device's
//!   answer and goes to the poll.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::mbap::{self, Answer};
use super::profile::Table;

/// Strikes against pipelining (see the module's invariants) that turn it off.
pub const STRIKES: usize = 3;
/// How recent the strikes must be.
pub const STRIKE_WINDOW: Duration = Duration::from_secs(600);
/// Modbus exception 06: the server is busy with a long-duration command.
const BUSY: u8 = 6;

/// One read: which unit, which table, from where, how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub unit: u8,
    pub table: Table,
    pub start: u16,
    pub count: u16,
}

/// How a read ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Values(Vec<u16>),
    Exception(u8),
    /// No answer within the bus's timeout.
    Timeout,
    /// The connection could not be opened (the error, in words).
    Unreachable(String),
    /// The connection failed, or the answer was not one to this read; in words.
    Transport(String),
}

/// What is known of the server's pipelining, for `probe` and the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Pipelining {
    /// Never more than one read in flight so far.
    #[default]
    Untried,
    /// The server answered reads while up to `most` were in flight; `out_of_order` if it
    /// ever answered a later one first.
    Takes { most: usize, out_of_order: bool },
    /// The server lost reads sent while others were in flight (why, in words): one at a
    /// time from then on.
    Refuses(String),
    /// Configured to one read at a time.
    Off,
}

impl std::fmt::Display for Pipelining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pipelining::Untried => write!(f, "not tried yet (never more than one read in flight)"),
            Pipelining::Takes { most, out_of_order: false } => {
                write!(f, "takes pipelined reads ({most} in flight at most so far, answered in order)")
            }
            Pipelining::Takes { most, out_of_order: true } => {
                write!(f, "takes pipelined reads ({most} in flight at most so far, answered out of order)")
            }
            Pipelining::Refuses(why) => write!(f, "does not take pipelined reads ({why}): one at a time"),
            Pipelining::Off => write!(f, "off (pipeline = 1)"),
        }
    }
}

/// What a bus's lanes share.
#[derive(Debug)]
struct Shared {
    address: String,
    timeout: Duration,
    /// Reads in flight per connection now (the configured depth, or 1 once refused).
    depth: AtomicUsize,
    verdict: Mutex<Pipelining>,
    /// When each recent strike was (from separate failures).
    strikes: Mutex<VecDeque<Instant>>,
    /// Answers whose transaction id was not in flight (dropped).
    pub strays: AtomicU64,
}

/// A read waiting for its answer.
struct Pending {
    read: Read,
    reply: oneshot::Sender<Outcome>,
    /// Sent again alone after a failure while pipelined.
    alone: bool,
    /// It failed while others were in flight (the number of that failure on its lane):
    /// answered alone, it is a strike against pipelining.
    evidence: Option<u64>,
}

struct Flight {
    tid: u16,
    deadline: Instant,
    pending: Pending,
    /// Another read was in flight with it at some moment (the server may have had both).
    crowded: bool,
}

/// The lanes of one Modbus TCP bus.
#[derive(Clone)]
pub struct Pipeline {
    lanes: Arc<Vec<mpsc::Sender<Pending>>>,
    /// Reads given to each lane and not yet answered.
    loads: Arc<Vec<AtomicUsize>>,
    shared: Arc<Shared>,
}

impl Pipeline {
    /// Starts `lanes` connection tasks to `address` (connected when first needed), each
    /// with up to `depth` reads in flight. They end when the last clone is dropped.
    pub fn start(address: &str, timeout: Duration, lanes: usize, depth: usize) -> Pipeline {
        let shared = Arc::new(Shared {
            address: address.to_string(),
            timeout,
            depth: AtomicUsize::new(depth.max(1)),
            verdict: Mutex::new(if depth <= 1 { Pipelining::Off } else { Pipelining::Untried }),
            strikes: Mutex::new(VecDeque::new()),
            strays: AtomicU64::new(0),
        });
        let lanes: Vec<mpsc::Sender<Pending>> = (0..lanes.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(256);
                tokio::spawn(Lane::new(shared.clone(), rx).run());
                tx
            })
            .collect();
        let loads = Arc::new((0..lanes.len()).map(|_| AtomicUsize::new(0)).collect());
        Pipeline { lanes: Arc::new(lanes), loads, shared }
    }

    /// Reads on the least loaded connection (so that one slow device does not hold up
    /// the reads queued behind it while another connection is free) and waits for the
    /// outcome.
    pub async fn read(&self, read: Read) -> Outcome {
        let k = (0..self.lanes.len()).min_by_key(|&k| self.loads[k].load(Ordering::Relaxed)).unwrap_or(0);
        self.loads[k].fetch_add(1, Ordering::Relaxed);
        // given back however this ends, the future dropped included
        struct Unload<'a>(&'a AtomicUsize);
        impl Drop for Unload<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _unload = Unload(&self.loads[k]);
        let (reply, answer) = oneshot::channel();
        if self.lanes[k].send(Pending { read, reply, alone: false, evidence: None }).await.is_err() {
            return Outcome::Transport("the connection's task has ended".into());
        }
        answer.await.unwrap_or_else(|_| Outcome::Transport("the connection's task has ended".into()))
    }

    /// Reads in flight per connection at most, now.
    pub fn depth(&self) -> usize {
        self.shared.depth.load(Ordering::Relaxed)
    }

    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    pub fn pipelining(&self) -> Pipelining {
        self.shared.verdict.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Answers dropped because no read in flight had their transaction id.
    pub fn strays(&self) -> u64 {
        self.shared.strays.load(Ordering::Relaxed)
    }
}

struct Lane {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Pending>,
    queue: VecDeque<Pending>,
    flights: VecDeque<Flight>,
    stream: Option<TcpStream>,
    next_tid: u16,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    /// The bus has dropped its end: no more reads will come.
    closed: bool,
    /// Failures with reads in flight so far on this lane.
    failures: u64,
    /// Per failure, its reads being tried alone: how many are left, and whether one
    /// failed alone too (then the failure was a device's, not pipelining's).
    trials: HashMap<u64, (usize, bool)>,
}

impl Lane {
    fn new(shared: Arc<Shared>, rx: mpsc::Receiver<Pending>) -> Lane {
        Lane {
            shared,
            rx,
            queue: VecDeque::new(),
            flights: VecDeque::new(),
            stream: None,
            next_tid: 0,
            rbuf: Vec::with_capacity(4096),
            wbuf: Vec::with_capacity(1024),
            closed: false,
            failures: 0,
            trials: HashMap::new(),
        }
    }

    async fn run(mut self) {
        let timer = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        let mut batch = Vec::with_capacity(64);
        loop {
            self.send_what_fits().await;
            if self.closed && self.flights.is_empty() && self.queue.is_empty() {
                return; // the bus has ended
            }
            let deadline = self.flights.front().map(|f| f.deadline);
            if deadline != armed {
                if let Some(d) = deadline {
                    timer.as_mut().reset(d);
                }
                armed = deadline;
            }
            let connected = self.stream.is_some();
            tokio::select! {
                // answers first: after a stall, an answer that came in time is taken
                // before the timer that fired meanwhile is believed
                biased;
                r = read_some(&mut self.stream, &mut self.rbuf), if connected => match r {
                    // the server closed an idle connection: nothing was lost
                    Ok(0) | Err(_) if self.flights.is_empty() => {
                        self.stream = None;
                        self.rbuf.clear();
                    }
                    Ok(0) => self.fail(|_| true, Outcome::Transport("the server closed the connection".into()), true),
                    Ok(_) => self.take_answers(),
                    Err(e) => self.fail(|_| true, Outcome::Transport(format!("connection failed: {e}")), true),
                },
                n = self.rx.recv_many(&mut batch, 64), if !self.closed => {
                    self.closed = n == 0;
                    self.queue.extend(batch.drain(..));
                }
                () = &mut timer, if armed.is_some() => self.timed_out(),
            }
        }
    }

    /// Sends queued reads while the depth allows, all in one write.
    async fn send_what_fits(&mut self) {
        // reads whose poll is gone (the bus stopped) are not sent, nor connected for
        while let Some(k) = self.queue.iter().position(|p| p.reply.is_closed()) {
            if let Some(p) = self.queue.remove(k) {
                self.settle(p.evidence, true);
            }
        }
        // reads sent again alone go one at a time, and nothing goes with them
        let probation = self.queue.iter().any(|p| p.alone) || self.flights.iter().any(|f| f.pending.alone);
        let depth = if probation { 1 } else { self.shared.depth.load(Ordering::Relaxed) };
        if self.queue.is_empty() || self.flights.len() >= depth {
            return;
        }
        if self.stream.is_none() {
            match super::transport::tcp_connect(&self.shared.address, self.shared.timeout).await {
                Ok(s) => {
                    self.stream = Some(s);
                    self.rbuf.clear();
                }
                Err(e) => {
                    let why = e.to_string();
                    for p in std::mem::take(&mut self.queue) {
                        self.settle(p.evidence, true);
                        let _ = p.reply.send(Outcome::Unreachable(why.clone()));
                    }
                    return;
                }
            }
        }
        self.wbuf.clear();
        let now = Instant::now();
        while self.flights.len() < depth {
            let Some(p) = self.queue.pop_front() else { break };
            self.next_tid = self.next_tid.wrapping_add(1);
            let r = p.read;
            mbap::encode_read(&mut self.wbuf, self.next_tid, r.unit, r.table, r.start, r.count);
            self.flights.push_back(Flight {
                tid: self.next_tid,
                deadline: now + self.shared.timeout,
                pending: p,
                crowded: false,
            });
        }
        if self.flights.len() > 1 {
            self.flights.iter_mut().for_each(|f| f.crowded = true);
        }
        let Some(stream) = self.stream.as_mut() else { return };
        if let Err(e) = stream.write_all(&self.wbuf).await {
            // the server may never have seen them: not held against pipelining
            self.fail(|_| true, Outcome::Transport(format!("connection failed: {e}")), false);
        }
    }

    /// Gives every complete answer in the buffer to its read.
    fn take_answers(&mut self) {
        let mut used = 0;
        loop {
            match mbap::next_frame(&self.rbuf[used..]) {
                Ok(None) => break,
                Err(e) => {
                    self.fail(|_| true, Outcome::Transport(format!("the answer is not Modbus TCP: {e}")), false);
                    return;
                }
                Ok(Some((frame, n))) => {
                    used += n;
                    let Some(k) = self.flights.iter().position(|f| f.tid == frame.tid) else {
                        self.shared.strays.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(address = %self.shared.address, tid = frame.tid, "answer to no read in flight dropped");
                        continue;
                    };
                    self.took(self.flights.len(), k > 0);
                    let Some(f) = self.flights.remove(k) else { continue };
                    let r = f.pending.read;
                    let outcome = if frame.unit != r.unit {
                        Outcome::Transport(format!("answered as unit {} to a read of unit {}", frame.unit, r.unit))
                    } else {
                        match mbap::decode_answer(&frame, r.table, r.count) {
                            Ok(Answer::Values(v)) => Outcome::Values(v),
                            Ok(Answer::Exception(c)) => Outcome::Exception(c),
                            Err(why) => Outcome::Transport(why),
                        }
                    };
                    if outcome == Outcome::Exception(BUSY) && f.crowded && !f.pending.alone {
                        self.busy_among_others(f.pending);
                        continue;
                    }
                    self.answered(f.pending, outcome);
                }
            }
        }
        self.rbuf.drain(..used);
        if self.flights.is_empty() {
            // bytes with no read in flight can only be a stray's: they must not shift the
            // frames of the next answers
            self.rbuf.clear();
        }
    }

    /// An answer came with `in_flight` reads out (itself included), `late` if one sent
    /// before it is still out.
    fn took(&self, in_flight: usize, late: bool) {
        if in_flight < 2 {
            return;
        }
        let mut v = self.shared.verdict.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *v {
            Pipelining::Takes { most, out_of_order } => {
                *most = (*most).max(in_flight);
                *out_of_order |= late;
            }
            Pipelining::Untried => *v = Pipelining::Takes { most: in_flight, out_of_order: late },
            _ => {}
        }
    }

    fn answered(&mut self, p: Pending, outcome: Outcome) {
        if p.alone {
            let device = match outcome {
                Outcome::Exception(c) => c == BUSY, // busy alone too: the device's
                Outcome::Values(_) => false,
                _ => true,
            };
            self.settle(p.evidence, device);
        }
        let _ = p.reply.send(outcome);
    }

    /// A read answered "busy" while others were in flight: sent again alone, as the
    /// trial of a failure of its own (the connection is fine and stays).
    fn busy_among_others(&mut self, mut p: Pending) {
        let failure = self.new_failure();
        self.on_trial(&mut p, failure);
        p.alone = true;
        self.queue.push_front(p);
    }

    /// Numbers a failure with reads in flight on this lane.
    fn new_failure(&mut self) -> u64 {
        self.failures += 1;
        self.failures
    }

    /// Makes `p` one of the reads whose answer alone judges `failure`; a read already on
    /// trial for an earlier failure is settled there as unknown.
    fn on_trial(&mut self, p: &mut Pending, failure: u64) {
        self.settle(p.evidence, true);
        p.evidence = Some(failure);
        self.trials.entry(failure).or_insert((0, false)).0 += 1;
    }

    /// One read of a failure's trial is settled (`device`: it failed alone too, or its
    /// outcome is not known). When all are, and none failed alone, pipelining lost them:
    /// a strike.
    fn settle(&mut self, evidence: Option<u64>, device: bool) {
        let Some(failure) = evidence else { return };
        let Some(trial) = self.trials.get_mut(&failure) else { return };
        trial.0 = trial.0.saturating_sub(1);
        trial.1 |= device;
        if trial.0 == 0 {
            let blamed_device = trial.1;
            self.trials.remove(&failure);
            if !blamed_device {
                self.strike();
            }
        }
    }

    /// Reads lost among others were all answered alone: after [`STRIKES`] of those within
    /// [`STRIKE_WINDOW`], one at a time for good. Strikes closer together than the bus's
    /// timeout (one server restart seen by several connections) count once.
    fn strike(&self) {
        let now = Instant::now();
        let mut strikes = self.shared.strikes.lock().unwrap_or_else(|e| e.into_inner());
        if strikes.back().is_some_and(|&t| now.duration_since(t) < self.shared.timeout) {
            return;
        }
        strikes.push_back(now);
        while strikes.front().is_some_and(|&t| now.duration_since(t) > STRIKE_WINDOW) {
            strikes.pop_front();
        }
        let n = strikes.len();
        drop(strikes);
        tracing::debug!(address = %self.shared.address, strikes = n, "reads lost among pipelined reads were answered alone");
        if n >= STRIKES {
            self.refuse(&format!(
                "{n} times within {}, reads lost or answered busy while others were in flight were answered when sent alone",
                humantime::format_duration(STRIKE_WINDOW)
            ));
        }
    }

    /// The server lost pipelined reads: one at a time for good.
    fn refuse(&self, why: &str) {
        self.shared.depth.store(1, Ordering::Relaxed);
        let mut v = self.shared.verdict.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(*v, Pipelining::Refuses(_)) {
            tracing::warn!(address = %self.shared.address, "the server does not take pipelined Modbus TCP reads ({why}); sending one at a time from now on");
            *v = Pipelining::Refuses(why.to_string());
        }
    }

    /// The oldest read's deadline has passed.
    fn timed_out(&mut self) {
        let now = Instant::now();
        if self.flights.front().is_none_or(|f| f.deadline > now) {
            return;
        }
        self.fail(|f| f.deadline <= now, Outcome::Timeout, true);
    }

    /// Drops the connection. A read that `culprit` names fails with `outcome` when it was
    /// alone on the line; with others in flight it is sent again alone, and, when the
    /// failure is `suspect` (the server saw the reads), tried as evidence against
    /// pipelining. The others go again alone without being held against anyone.
    fn fail(&mut self, culprit: impl Fn(&Flight) -> bool, outcome: Outcome, suspect: bool) {
        self.stream = None;
        self.rbuf.clear();
        let pipelined = self.flights.len() > 1;
        let failure = (pipelined && suspect).then(|| self.new_failure());
        let mut again = Vec::new();
        for f in std::mem::take(&mut self.flights) {
            let guilty = culprit(&f);
            let mut p = f.pending;
            if p.reply.is_closed() {
                self.settle(p.evidence, true);
                continue;
            }
            if guilty && (p.alone || !pipelined) {
                self.settle(p.evidence, true);
                let _ = p.reply.send(outcome.clone());
                continue;
            }
            if let (true, Some(n)) = (guilty, failure) {
                self.on_trial(&mut p, n);
            }
            p.alone = true;
            again.push(p);
        }
        for p in again.into_iter().rev() {
            self.queue.push_front(p);
        }
    }
}

async fn read_some(stream: &mut Option<TcpStream>, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    match stream {
        Some(s) => {
            if buf.len() > 16 * mbap::MAX_FRAME {
                return Err(std::io::Error::other("answers pile up without a frame ending"));
            }
            s.read_buf(buf).await
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;

//! The bus poller: one device poll, turning a device's plan into [`Reading`]s. When
//! devices are polled is the bus task's ([`super::bus`]).
//!
//! Invariants:
//! - **One request at a time on a half-duplex line** (RTU, and RTU over TCP, whose far
//!   end is a serial line), with the configured gap of silence between requests. A
//!   Modbus TCP bus has `concurrency` connections, each with up to `pipeline` reads in
//!   flight ([`super::pipeline`]).
//! - **One dead device does not stall its neighbours.** A request that times out is
//!   retried at most `retries` times; after that the device's remaining requests are not
//!   sent this cycle, and the device backs off exponentially (interval × 2ⁿ, capped at
//!   `backoff_max`) until it answers again. Its points are still reported, with quality
//!   `timeout`, so the gap is visible downstream.
//! - **Transport errors and Modbus exceptions stay apart.** A timeout or a broken
//!   connection drops the connection (a late answer must not be taken for the next one,
//!   and the server may still be busy with the request) and reconnects on the next
//!   request; an exception is the device refusing a request:
//!   counted per device and point, reported as that point's quality, and polling goes on.
//!   A merged read refused with 02 (illegal data address) is split into one read per
//!   point, for this cycle and the following ones.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tokio_modbus::client::Context;
use tokio_modbus::prelude::{Reader, SlaveContext};
use tokio_modbus::{ExceptionCode, Slave};

pub use super::bus::{backoff, run_bus, Origin};
use super::config::{Bus, Device, Transport};
use crate::model::{Quality, Reading};

use super::pipeline::{Outcome, Pipeline, Pipelining, Read};
use super::planner::{self, Request};
use super::profile::{RegisterImage, Table};
use super::transport;

/// Counters of one device, shared with whoever reports them (check, demo, later metrics).
#[derive(Debug, Default)]
pub struct DeviceStats {
    pub cycles: AtomicU64,
    pub requests: AtomicU64,
    pub timeouts: AtomicU64,
    pub transport_errors: AtomicU64,
    pub exceptions: AtomicU64,
    pub slow_cycles: AtomicU64,
    pub readings: AtomicU64,
    /// Poll tasks that panicked (the device is polled again after a backoff).
    pub panics: AtomicU64,
    /// Exception responses per point name.
    pub point_exceptions: Mutex<HashMap<String, u64>>,
    /// Connections that could not be opened (also counted in `transport_errors`).
    pub connect_failures: AtomicU64,
    /// Wall-clock ms of the last cycle the device answered (0: never).
    pub last_good_ms: AtomicI64,
    /// Wall-clock ms of the first cycle of the current run of failures (0: answering).
    pub failing_since_ms: AtomicI64,
    /// Why the last failed request failed, in words (`None` while the device answers).
    last_error: Mutex<Option<String>>,
}

impl DeviceStats {
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn failed(&self, why: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    /// Records how a cycle ended, at wall-clock `now_ms`.
    pub fn cycle_ended(&self, answered: bool, now_ms: i64) {
        if answered {
            self.last_good_ms.store(now_ms, Ordering::Relaxed);
            self.failing_since_ms.store(0, Ordering::Relaxed);
            *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        } else {
            let _ = self.failing_since_ms.compare_exchange(0, now_ms, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    pub(super) fn count_exception(&self, points: &[Arc<str>]) {
        self.exceptions.fetch_add(1, Ordering::Relaxed);
        let mut m = self.point_exceptions.lock().unwrap_or_else(|e| e.into_inner());
        for p in points {
            *m.entry(p.to_string()).or_default() += 1;
        }
    }
}

/// Stats of every device, by device name.
pub type Stats = Arc<HashMap<String, Arc<DeviceStats>>>;

pub fn new_stats(devices: &[Device]) -> Stats {
    Arc::new(devices.iter().map(|d| (d.name.to_string(), Arc::new(DeviceStats::default()))).collect())
}

/// What a connection speaks: a Modbus client, or the bare line for DL/T 645 and CJ/T 188
/// meters. One serial line may carry both; the connection is reopened as the other kind
/// when the next device on the line speaks the other protocol.
pub(super) enum Link {
    Modbus(Context),
    Meter(Box<dyn crate::dlt645::link::Line>),
}

pub(super) struct Conn {
    pub(super) link: Link,
    /// When the line last fell silent (end of the last answer), for the gap.
    pub(super) last_end: Instant,
}

/// Idle connections of one bus.
pub(super) struct Pool {
    pub(super) transport: Transport,
    pub(super) timeout: Duration,
    pub(super) gap: Duration,
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    pub(super) fn new(bus: &Bus) -> Pool {
        Pool { transport: bus.transport.clone(), timeout: bus.timeout, gap: bus.gap, idle: Mutex::new(Vec::new()) }
    }

    /// The pipelined connections a bus's Modbus reads go through, where it has them: a
    /// Modbus TCP bus without a gap.
    pub(super) fn pipeline(bus: &Bus) -> Option<Pipeline> {
        match &bus.transport {
            Transport::Tcp { address } if bus.gap.is_zero() => {
                Some(Pipeline::start(address, bus.timeout, bus.concurrency, bus.pipeline))
            }
            _ => None,
        }
    }

    /// An open connection of the kind asked for (`meter`: a bare line).
    pub(super) async fn take(&self, meter: bool) -> io::Result<Conn> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(c) if matches!(c.link, Link::Meter(_)) == meter => Ok(c),
            other => {
                // the other kind: closed first, so the serial port can be opened again,
                // and the line's silence kept across the switch
                let last_end = other.map_or_else(Instant::now, |c| c.last_end);
                let link = if meter {
                    Link::Meter(transport::open_line(&self.transport, self.timeout).await?)
                } else {
                    Link::Modbus(transport::connect(&self.transport, self.timeout).await?)
                };
                Ok(Conn { link, last_end })
            }
        }
    }

    pub(super) fn give(&self, c: Conn) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }
}

/// What one poll of one device produced.
pub struct PollOutcome {
    pub readings: Vec<Reading>,
    /// At least one request was answered (with data or an exception).
    pub answered: bool,
    /// Requests (by index in the device's plan) that the device refused as merged reads.
    pub split: Vec<usize>,
    pub took: Duration,
}

/// Everything a device poll needs, cheap to clone into a task.
#[derive(Clone)]
pub(super) struct Job {
    pub(super) device: Device,
    pub(super) site: Arc<str>,
    /// The site's time zone: meters keep local time.
    pub(super) tz: chrono_tz::Tz,
    pub(super) plan: Arc<Vec<Request>>,
    pub(super) split: Arc<HashSet<usize>>,
    pub(super) stats: Arc<DeviceStats>,
    pub(super) pool: Arc<Pool>,
    /// A Modbus TCP bus's pipelined connections (reads of Modbus devices go there, not to
    /// the pool).
    pub(super) pipe: Option<Pipeline>,
}

enum Attempt {
    Data(Vec<u16>),
    Exception(ExceptionCode),
    Timeout,
    Transport,
}

async fn read(ctx: &mut Context, table: Table, start: u16, count: u16) -> tokio_modbus::Result<Vec<u16>> {
    let bits = |r: tokio_modbus::Result<Vec<bool>>| {
        r.map(|inner| inner.map(|v| v.into_iter().take(usize::from(count)).map(u16::from).collect()))
    };
    match table {
        Table::Coil => bits(ctx.read_coils(start, count).await),
        Table::Discrete => bits(ctx.read_discrete_inputs(start, count).await),
        Table::Input => ctx.read_input_registers(start, count).await,
        Table::Holding => ctx.read_holding_registers(start, count).await,
    }
}

impl Job {
    /// A connection of the kind asked for, after the line's gap of silence; `None` (counted
    /// and told) when it cannot be opened.
    pub(super) async fn connection(&self, meter: bool) -> Option<Conn> {
        let conn = match self.pool.take(meter).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(device = %self.device.name, error = %e, "connect failed");
                // a connection refused is a failure of this device's poll: counted and
                // told, not only logged at debug
                self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                self.stats.failed(format!("cannot connect to {}: {e}", self.pool.transport));
                return None;
            }
        };
        if !self.pool.gap.is_zero() {
            tokio::time::sleep_until(conn.last_end + self.pool.gap).await;
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        Some(conn)
    }

    async fn attempt(&self, req: &Request) -> Attempt {
        if let Some(pipe) = &self.pipe {
            return self.attempt_pipelined(pipe, req).await;
        }
        let Some(mut conn) = self.connection(false).await else { return Attempt::Transport };
        let Link::Modbus(ctx) = &mut conn.link else { return Attempt::Transport };
        ctx.set_slave(Slave(self.device.unit));
        let result = tokio::time::timeout(self.pool.timeout, read(ctx, req.table, req.start, req.count)).await;
        conn.last_end = Instant::now();
        match result {
            Ok(Ok(Ok(data))) if data.len() == usize::from(req.count) => {
                self.pool.give(conn);
                Attempt::Data(data)
            }
            Ok(Ok(Ok(data))) => {
                // A valid frame with the wrong amount of data: the device is confused.
                tracing::debug!(device = %self.device.name, got = data.len(), want = req.count, "short answer");
                self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                self.stats.failed(format!("answered {} values where {} were asked", data.len(), req.count));
                Attempt::Transport
            }
            Ok(Ok(Err(code))) => {
                self.pool.give(conn);
                Attempt::Exception(code)
            }
            Ok(Err(e)) => {
                tracing::debug!(device = %self.device.name, error = %e, "transport error");
                self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                self.stats.failed(format!("transport error: {e}"));
                Attempt::Transport
            }
            Err(_) => self.timed_out(),
        }
    }

    /// A request that got no answer in time, counted and told.
    fn timed_out(&self) -> Attempt {
        self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
        self.stats.failed(format!(
            "no answer from unit {} within {}",
            self.device.unit,
            humantime::format_duration(self.pool.timeout)
        ));
        Attempt::Timeout
    }

    async fn attempt_pipelined(&self, pipe: &Pipeline, req: &Request) -> Attempt {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let read = Read { unit: self.device.unit, table: req.table, start: req.start, count: req.count };
        match pipe.read(read).await {
            Outcome::Values(v) => Attempt::Data(v),
            Outcome::Exception(code) => Attempt::Exception(ExceptionCode::new(code)),
            Outcome::Timeout => self.timed_out(),
            Outcome::Unreachable(e) => {
                self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                self.stats.failed(format!("cannot connect to {}: {e}", self.pool.transport));
                Attempt::Transport
            }
            Outcome::Transport(why) => {
                self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                self.stats.failed(format!("transport error: {why}"));
                Attempt::Transport
            }
        }
    }

    pub(super) async fn poll(&self) -> PollOutcome {
        #[cfg(test)]
        if PANIC_ON.lock().unwrap_or_else(|e| e.into_inner()).as_deref() == Some(&*self.device.name) {
            panic!("poll of {} failed", self.device.name);
        }
        if let Some(meter) = self.device.meter {
            return self.poll_meter(meter).await;
        }
        let started = Instant::now();
        let points = &self.device.profile.points;
        let mut queue: Vec<(Option<usize>, Request)> = Vec::new();
        for (i, r) in self.plan.iter().enumerate() {
            if self.split.contains(&i) {
                queue.extend(planner::plan_unmerged(points, &r.points).into_iter().map(|r| (None, r)));
            } else {
                queue.push((Some(i), r.clone()));
            }
        }
        queue.reverse(); // pop from the front of the plan
        let mut image = RegisterImage::default();
        let mut answered = false;
        let mut dead: Option<Quality> = None;
        let mut split = Vec::new();
        while let Some((plan_index, req)) = queue.pop() {
            if let Some(q) = &dead {
                image.push(req.table, req.start, req.count, Err(q.clone()));
                continue;
            }
            let mut last = Attempt::Timeout;
            for _ in 0..=self.device.retries {
                last = self.attempt(&req).await;
                match last {
                    Attempt::Data(_) => break,
                    // A busy device may serve the retry; other exceptions are final.
                    Attempt::Exception(ExceptionCode::ServerDeviceBusy) => continue,
                    Attempt::Exception(_) => break,
                    Attempt::Timeout | Attempt::Transport => continue,
                }
            }
            match last {
                Attempt::Data(data) => {
                    answered = true;
                    image.push(req.table, req.start, req.count, Ok(data));
                }
                Attempt::Exception(code) => {
                    answered = true;
                    if code == ExceptionCode::IllegalDataAddress && req.points.len() > 1 {
                        if let Some(i) = plan_index {
                            // Read the points one by one, now and from now on.
                            split.push(i);
                            let mut parts = planner::plan_unmerged(points, &req.points);
                            parts.reverse();
                            queue.extend(parts.into_iter().map(|r| (None, r)));
                            continue;
                        }
                    }
                    let names: Vec<Arc<str>> = req.points.iter().map(|&i| points[i].name.clone()).collect();
                    self.stats.count_exception(&names);
                    image.push(req.table, req.start, req.count, Err(Quality::Exception(u8::from(code))));
                }
                Attempt::Timeout => {
                    dead = Some(Quality::Timeout);
                    image.push(req.table, req.start, req.count, Err(Quality::Timeout));
                }
                Attempt::Transport => {
                    dead = Some(Quality::Transport);
                    image.push(req.table, req.start, req.count, Err(Quality::Transport));
                }
            }
        }
        let decoded = self.device.profile.decode(&image);
        self.outcome(decoded, answered, split, started)
    }

    /// The poll's readings, one per point, stamped now; the cycle counted.
    pub(super) fn outcome(
        &self,
        decoded: Vec<super::decode::Decoded>,
        answered: bool,
        split: Vec<usize>,
        started: Instant,
    ) -> PollOutcome {
        let ts = Utc::now();
        let readings: Vec<Reading> = self
            .device
            .profile
            .points
            .iter()
            .zip(decoded)
            .map(|(p, d)| Reading {
                ts,
                site: self.site.clone(),
                zone: self.device.zone.clone(),
                device: self.device.name.clone(),
                point: p.name.clone(),
                quantity: p.quantity,
                value: d.value,
                unit: p.unit.clone(),
                quality: d.quality,
            })
            .collect();
        self.stats.cycles.fetch_add(1, Ordering::Relaxed);
        self.stats.readings.fetch_add(readings.len() as u64, Ordering::Relaxed);
        PollOutcome { readings, answered, split, took: started.elapsed() }
    }
}

/// Polls one device once (for `probe`).
pub async fn poll_once(bus: &Bus, device: &Device, site: Arc<str>, tz: chrono_tz::Tz) -> PollOutcome {
    let job = Job {
        device: device.clone(),
        site,
        tz,
        plan: Arc::new(device.plan()),
        split: Arc::new(HashSet::new()),
        stats: Arc::new(DeviceStats::default()),
        pool: Arc::new(Pool::new(bus)),
        pipe: None,
    };
    job.poll().await
}

/// Sends the device's first read `bus.pipeline` times at once on one connection, in as
/// many bursts as it takes to judge (see [`super::pipeline::STRIKES`]), and says what the
/// server made of it (for `probe`); `None` where the bus has no pipelining.
pub async fn pipelining_check(bus: &Bus, device: &Device) -> Option<Pipelining> {
    let Transport::Tcp { address } = &bus.transport else { return None };
    let first = device.plan().into_iter().next()?;
    if bus.pipeline <= 1 || device.meter.is_some() {
        return None;
    }
    let pipe = Pipeline::start(address, bus.timeout, 1, bus.pipeline);
    let read = Read { unit: device.unit, table: first.table, start: first.start, count: first.count };
    for _ in 0..super::pipeline::STRIKES {
        let _ = futures::future::join_all((0..bus.pipeline).map(|_| pipe.read(read))).await;
        if matches!(pipe.pipelining(), Pipelining::Refuses(_)) {
            break;
        }
    }
    Some(pipe.pipelining())
}

/// Tests make the polls of the named device panic.
#[cfg(test)]
pub(crate) static PANIC_ON: Mutex<Option<String>> = Mutex::new(None);

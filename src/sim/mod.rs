//! The simulated pump house, served over Modbus TCP by tokio-modbus's server.
//!
//! [`model`] holds the physics (pure, stepped with a simulated clock); this module runs
//! the clock, answers Modbus requests from the model's registers, and prints a gateway
//! configuration that polls it. A `fleet` mode serves many identical devices for
//! benchmarks instead of the campus.
//!
//! Unset registers below a table's highest defined address read as 0, as on real meters
//! whose maps have reserved words; reads past it get exception 02. A unit id that is not
//! simulated gets 0x0B (gateway target failed to respond), as from a TCP gateway; a
//! device silenced by a scenario gets no answer at all.

pub mod demand;
pub mod meters;
pub mod model;
pub mod registers;
pub mod scenario;

/// Why the simulator cannot be set up as asked: a scenario that does not parse or names
/// nothing the campus has, or a built-in profile that does not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SimError(pub String);

impl From<String> for SimError {
    fn from(s: String) -> SimError {
        SimError(s)
    }
}

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::net::TcpListener;
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_util::sync::CancellationToken;

use crate::modbus::profile::Profile;
use model::{Bank, PumpHouse};

/// What is being simulated.
pub enum World {
    Campus(Box<PumpHouse>),
    /// `count` devices (unit ids 1..=count), each with `registers` holding registers that
    /// change every tick.
    Fleet {
        banks: HashMap<u8, Bank>,
        registers: u16,
    },
}

impl World {
    pub fn fleet(count: u8, registers: u16) -> World {
        let banks = (1..=count)
            .map(|u| {
                let mut b = Bank::default();
                for a in 0..registers {
                    b.holding.insert(a, a);
                }
                (u, b)
            })
            .collect();
        World::Fleet { banks, registers }
    }

    fn step(&mut self, now: DateTime<Utc>) {
        match self {
            World::Campus(c) => c.step(now),
            World::Fleet { banks, registers } => {
                let tick = (now.timestamp_millis() / 100) as u16;
                for b in banks.values_mut() {
                    for a in 0..*registers {
                        b.holding.insert(a, tick.wrapping_add(a));
                    }
                }
            }
        }
    }

    /// The bank of a unit id, and whether it is silenced.
    fn bank_mut(&mut self, unit: u8) -> Option<(&mut Bank, bool)> {
        match self {
            World::Campus(c) => {
                let i = c.devices.iter().position(|d| d.unit == unit)?;
                let silent = c.silent[i];
                Some((&mut c.banks[i], silent))
            }
            World::Fleet { banks, .. } => banks.get_mut(&unit).map(|b| (b, false)),
        }
    }
}

fn read_words(map: &HashMap<u16, u16>, addr: u16, cnt: u16) -> Result<Vec<u16>, ExceptionCode> {
    let top = map.keys().max().copied().unwrap_or(0);
    let end = u32::from(addr) + u32::from(cnt);
    if cnt == 0 || map.is_empty() || end > u32::from(top) + 1 {
        return Err(ExceptionCode::IllegalDataAddress);
    }
    Ok((addr..addr + cnt).map(|a| map.get(&a).copied().unwrap_or(0)).collect())
}

fn read_bits(map: &HashMap<u16, bool>, addr: u16, cnt: u16) -> Result<Vec<bool>, ExceptionCode> {
    let top = map.keys().max().copied().unwrap_or(0);
    let end = u32::from(addr) + u32::from(cnt);
    if cnt == 0 || map.is_empty() || end > u32::from(top) + 1 {
        return Err(ExceptionCode::IllegalDataAddress);
    }
    Ok((addr..addr + cnt).map(|a| map.get(&a).copied().unwrap_or(false)).collect())
}

/// Answers one request from the world's registers.
pub fn answer(world: &mut World, unit: u8, req: &Request<'_>) -> Result<Option<Response>, ExceptionCode> {
    let Some((bank, silent)) = world.bank_mut(unit) else {
        return Err(ExceptionCode::GatewayTargetDevice);
    };
    if silent {
        return Ok(None);
    }
    let rsp = match req {
        Request::ReadCoils(a, n) => Response::ReadCoils(read_bits(&bank.coils, *a, *n)?),
        Request::ReadDiscreteInputs(a, n) => Response::ReadDiscreteInputs(read_bits(&bank.discrete, *a, *n)?),
        Request::ReadInputRegisters(a, n) => Response::ReadInputRegisters(read_words(&bank.input, *a, *n)?),
        Request::ReadHoldingRegisters(a, n) => Response::ReadHoldingRegisters(read_words(&bank.holding, *a, *n)?),
        Request::WriteSingleRegister(a, w) => {
            read_words(&bank.holding, *a, 1)?;
            bank.holding.insert(*a, *w);
            Response::WriteSingleRegister(*a, *w)
        }
        Request::WriteMultipleRegisters(a, words) => {
            read_words(&bank.holding, *a, words.len() as u16)?;
            for (k, w) in words.iter().enumerate() {
                bank.holding.insert(*a + k as u16, *w);
            }
            Response::WriteMultipleRegisters(*a, words.len() as u16)
        }
        _ => return Err(ExceptionCode::IllegalFunction),
    };
    Ok(Some(rsp))
}

struct Service {
    world: Arc<Mutex<World>>,
}

impl tokio_modbus::server::Service for Service {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = future::Ready<Result<Self::Response, Self::Exception>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        future::ready(answer(&mut world, req.slave, &req.request))
    }
}

/// The simulated clock: `speed` simulated seconds per wall second from `start`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub start: DateTime<Utc>,
    pub speed: f64,
    pub wall_start: std::time::Instant,
}

impl Clock {
    pub fn new(start: DateTime<Utc>, speed: f64) -> Clock {
        Clock { start, speed, wall_start: std::time::Instant::now() }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let ms = self.wall_start.elapsed().as_secs_f64() * self.speed * 1000.0;
        self.start + chrono::Duration::milliseconds(ms as i64)
    }
}

/// Serves `world` on `listener` until `cancel`; steps the model every 200 ms of wall time.
pub async fn serve(
    listener: TcpListener,
    world: Arc<Mutex<World>>,
    clock: Clock,
    cancel: CancellationToken,
) -> io::Result<()> {
    {
        let mut w = world.lock().unwrap_or_else(|e| e.into_inner());
        w.step(clock.now());
    }
    let ticker_world = world.clone();
    let ticker_cancel = cancel.clone();
    let ticker = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                () = ticker_cancel.cancelled() => break,
                _ = tick.tick() => {
                    let mut w = ticker_world.lock().unwrap_or_else(|e| e.into_inner());
                    w.step(clock.now());
                }
            }
        }
    });
    let server = Server::new(listener);
    let new_service = move |_addr: SocketAddr| Ok(Some(Service { world: world.clone() }));
    let on_connected = |stream, addr| {
        let new_service = new_service.clone();
        async move { accept_tcp_connection(stream, addr, new_service) }
    };
    let on_error = |e: io::Error| tracing::debug!(error = %e, "simulator connection ended");
    let result = tokio::select! {
        r = server.serve(&on_connected, on_error) => r,
        () = cancel.cancelled() => Ok(()),
    };
    ticker.abort();
    result
}

/// A gateway configuration that polls the campus simulation at `address`.
pub fn gateway_config(campus: &PumpHouse, site: &str, tz: Tz, address: &str, interval: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Polls the simulated pump house (`pumphouse simulate`).");
    let _ = writeln!(s, "[site]\nname = \"{site}\"\ntimezone = \"{}\"\n", tz.name());
    let _ = writeln!(s, "[polling]\ninterval = \"{interval}\"\n");
    let _ =
        writeln!(s, "[[buses]]\nname = \"sim\"\ntransport = \"tcp\"\naddress = \"{address}\"\ntimeout = \"500ms\"\n");
    for d in &campus.devices {
        let _ = writeln!(
            s,
            "[[devices]]\nname = \"{}\"\nbus = \"sim\"\nunit = {}\nprofile = \"{}\"\nzone = \"{}\"\n",
            d.name, d.unit, d.profile.name, d.zone
        );
    }
    // a store that holds 45 days of these readings (the ledger needs 40)
    let points: usize = campus.devices.iter().map(|d| d.profile.points.len()).sum();
    let _ = writeln!(
        s,
        "[store]\n# path = \"pumphouse.db\"\nmax_size = \"{}\"          # 45 days of these readings\n",
        store_size(points, interval)
    );
    s.push_str(CAMPUS_TOPOLOGY);
    s
}

/// The simulated campus's network map, zones and customer categories.
pub const CAMPUS_TOPOLOGY: &str = r#"# Network map: water zones (district metered areas) and the electricity network.
[[zones]]
name = "campus"
utility = "water"
inlets = ["plant-outlet"]

[[zones]]
name = "north"
utility = "water"
parent = "campus"
inlets = ["zone-north-inlet"]

[[zones]]
name = "south"
utility = "water"
parent = "campus"
inlets = ["zone-south-inlet"]

[[zones]]
name = "east"
utility = "water"
parent = "campus"
inlets = ["zone-east-inlet"]

[[zones]]
name = "campus-power"
utility = "electricity"
inlets = ["power-main"]

[[meters]]
device = "bldg-dorm-1"
zone = "north"
category = "student_dormitory"
max_rate = 60

[[meters]]
device = "bldg-dorm-2"
zone = "north"
category = "student_dormitory"
max_rate = 60

[[meters]]
device = "bldg-canteen"
zone = "south"
category = "canteen"
max_rate = 60

[[meters]]
device = "bldg-teaching"
zone = "south"
category = "teaching_research"
max_rate = 60

[[meters]]
device = "bldg-lab"
zone = "east"
category = "teaching_research"
max_rate = 60

[[meters]]
device = "bldg-staff-housing"
zone = "east"
category = "staff_housing"
max_rate = 60

[[meters]]
device = "power-dorm-1"
zone = "campus-power"
category = "student_dormitory"

[[meters]]
device = "power-canteen"
zone = "campus-power"
category = "canteen"

[[meters]]
device = "power-teaching"
zone = "campus-power"
category = "teaching_research"

[[meters]]
device = "pump-1"
zone = "campus-power"
role = "unbilled"

[[meters]]
device = "pump-2"
zone = "campus-power"
role = "unbilled"

[[unmetered]]
zone = "north"
name = "irrigation and public toilets"
per_day = 14.4

[[unmetered]]
zone = "south"
name = "irrigation and public toilets"
per_day = 21.6

[[unmetered]]
zone = "east"
name = "irrigation and public toilets"
per_day = 9.6

# Time of use of the purchased electricity: valley 23:00-07:00, peak 08:00-11:30 and
# 18:00-23:00, flat otherwise.
[[tou]]
ranges = [
  { from = "23:00", to = "07:00", period = "valley" },
  { from = "07:00", to = "08:00", period = "flat" },
  { from = "08:00", to = "11:30", period = "peak" },
  { from = "11:30", to = "18:00", period = "flat" },
  { from = "18:00", to = "23:00", period = "peak" },
]

# What the campus units pay (yuan per m3 / per kWh).
[[tariffs]]
utility = "water"
category = "student_dormitory"
from = "2024-01-01"
price = "2.85"

[[tariffs]]
utility = "water"
category = "staff_housing"
from = "2024-01-01"
tiers = [{ upto = "15", price = "2.85" }, { upto = "22", price = "3.80" }, { price = "4.75" }]

[[tariffs]]
utility = "water"
category = "canteen"
from = "2024-01-01"
price = "4.20"

[[tariffs]]
utility = "water"
category = "teaching_research"
from = "2024-01-01"
price = "3.45"

[[tariffs]]
utility = "electricity"
category = "student_dormitory"
from = "2024-01-01"
price = "0.588"

[[tariffs]]
utility = "electricity"
category = "canteen"
from = "2024-01-01"
price = "0.85"

[[tariffs]]
utility = "electricity"
category = "teaching_research"
from = "2024-01-01"
price = "0.62"

# The campus's buildings are large (hundreds of people): they never have a quiet hour,
# so a meter that never rests is no sign of a leak behind it here.
[[alerts.overrides]]
zone = "north"
disable = ["continuous_flow"]

[[alerts.overrides]]
zone = "south"
disable = ["continuous_flow"]

[[alerts.overrides]]
zone = "east"
disable = ["continuous_flow"]

# The building and main meters are CT-connected: their rated current is the breaker's,
# not the meter's own (45 A for the single-phase SDM120, 100 A for the SDM630).
[[alerts.overrides]]
device = "power-main"
rated_current = 630

[[alerts.overrides]]
device = "power-dorm-1"
rated_current = 160

[[alerts.overrides]]
device = "power-canteen"
rated_current = 250

[[alerts.overrides]]
device = "power-teaching"
rated_current = 250

# What the utilities office pays. The pumps' energy is bought with the campus power, so
# it counts on the electricity side.
[[costs]]
utility = "water"
name = "raw water, treatment and resource fee"
kind = "input"
price = "2.10"

[[costs]]
utility = "water"
name = "plant staff and maintenance"
kind = "fixed"
amount = "18000.00"

[[costs]]
utility = "electricity"
name = "purchased electricity"
kind = "input"
tou = { peak = "1.0512", flat = "0.6215", valley = "0.3126" }

[[costs]]
utility = "electricity"
name = "maximum demand charge"
kind = "demand"
price = "38"

# The register's valves: the zone valves with their actuators, and two turned by hand
# (`pumphouse assets record` keeps their exercise).
[[assets.valves]]
id = "V-N1"
zone = "north"
diameter_mm = 200
installed = 1985
device = "valve-north"

[[assets.valves]]
id = "V-S3"
zone = "south"
diameter_mm = 150
installed = 1992

[[assets.valves]]
id = "V-E2"
zone = "east"
kind = "butterfly"
diameter_mm = 150
installed = 2005

# The register of pipe sections (`pumphouse assets renewal` ranks them); decades of
# materials, as a campus grows.
[[assets.pipes]]
id = "C-01"
zone = "campus"
from = "plant"
to = "campus ring"
material = "ductile_iron"
diameter_mm = 300
length_m = 850
laid = 1998

[[assets.pipes]]
id = "N-01"
zone = "north"
from = "north valve"
to = "dormitories 1–2"
material = "cast_iron"
diameter_mm = 150
length_m = 620
laid = 1978

[[assets.pipes]]
id = "N-02"
zone = "north"
from = "dormitories"
to = "canteen"
material = "pe"
diameter_mm = 110
length_m = 380
laid = 2016

[[assets.pipes]]
id = "S-01"
zone = "south"
from = "south valve"
to = "teaching block"
material = "cast_iron"
diameter_mm = 200
length_m = 740
laid = 1972

[[assets.pipes]]
id = "S-02"
zone = "south"
from = "teaching block"
to = "library"
material = "galvanized_steel"
diameter_mm = 80
length_m = 260
laid = 1995

[[assets.pipes]]
id = "S-03"
zone = "south"
from = "library"
to = "sports hall"
material = "pvc"
diameter_mm = 110
length_m = 410
laid = 2008

[[assets.pipes]]
id = "E-01"
zone = "east"
from = "east valve"
to = "labs"
material = "ductile_iron"
diameter_mm = 150
length_m = 560
laid = 1989

[[assets.pipes]]
id = "E-02"
zone = "east"
from = "labs"
to = "staff housing"
material = "steel"
diameter_mm = 100
length_m = 330
laid = 1983
"#;

/// Room for 45 days of `points` read every `interval` (the ledger reads 40), in whole
/// GiB, at least 2.
pub fn store_size(points: usize, interval: &str) -> String {
    let secs = humantime::parse_duration(interval).map(|d| d.as_secs_f64()).unwrap_or(10.0).max(0.001);
    let bytes = points as f64 * 86_400.0 / secs * crate::config::STORE_BYTES_PER_READING * 45.0;
    format!("{:.0}GiB", (bytes / (1u64 << 30) as f64).ceil().max(2.0))
}

/// Built-in profiles by name (the simulator's register layouts).
pub fn profiles() -> Result<HashMap<String, Arc<Profile>>, SimError> {
    let mut d = crate::diag::Diagnostics::default();
    let all = crate::modbus::profile_file::builtin_profiles(&mut d);
    if d.has_errors() {
        return Err(d.items.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("\n").into());
    }
    Ok(all.into_iter().map(|p| (p.name.to_string(), Arc::new(p))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_reads_writes_and_refusals() {
        let mut w = World::fleet(2, 10);
        assert_eq!(
            answer(&mut w, 1, &Request::ReadHoldingRegisters(0, 3)),
            Ok(Some(Response::ReadHoldingRegisters(vec![0, 1, 2])))
        );
        assert_eq!(answer(&mut w, 1, &Request::ReadHoldingRegisters(8, 3)), Err(ExceptionCode::IllegalDataAddress));
        assert_eq!(answer(&mut w, 9, &Request::ReadHoldingRegisters(0, 1)), Err(ExceptionCode::GatewayTargetDevice));
        assert_eq!(answer(&mut w, 2, &Request::ReadInputRegisters(0, 1)), Err(ExceptionCode::IllegalDataAddress));
        assert_eq!(
            answer(&mut w, 2, &Request::WriteSingleRegister(4, 77)),
            Ok(Some(Response::WriteSingleRegister(4, 77)))
        );
        assert_eq!(
            answer(&mut w, 2, &Request::ReadHoldingRegisters(4, 1)),
            Ok(Some(Response::ReadHoldingRegisters(vec![77])))
        );
        assert_eq!(answer(&mut w, 2, &Request::ReportServerId), Err(ExceptionCode::IllegalFunction));
    }
}

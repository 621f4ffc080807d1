//! Pumphouse: a gateway for a campus water-and-power utility.
//!
//! Readings flow one way:
//!
//! ```text
//! config ──► modbus::poller (one task per bus) ──► Reading stream ──► consumers
//!               │  planner: points → fewest reads          (demo printer, probe, and
//!               │  decode: registers → values + quality      later the store and sinks)
//!               └─ profile: what a device's registers mean
//! ```
//!
//! Modules:
//! - [`config`]: TOML + environment → raw structs → validated [`config::Config`]; every
//!   problem reported at once, with its path.
//! - [`model`]: [`model::Reading`], [`model::Quantity`], [`model::Quality`].
//! - [`modbus`]: device profiles as data ([`modbus::profile`]), the pure decoder
//!   ([`modbus::decode`]) and request planner ([`modbus::planner`]), and the I/O shell
//!   that polls buses ([`modbus::poller`]) over TCP, RTU and RTU over TCP.
//! - [`sim`]: a simulated pump house served over Modbus TCP, with fault scenarios.
//! - [`app`]: the commands (`check`, `probe`, `simulate`, `demo`, `profiles`) and their
//!   wiring and shutdown.
//!
//! Pure cores (decode, planner, sim physics) take data and return data and are tested
//! with tables; the async shells around them stay thin.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod alerts;
pub mod cli;
pub mod config;
pub mod diag;
pub mod gateway;
pub mod http;
pub mod ledger;
pub mod modbus;
pub mod model;
pub mod sim;
pub mod sinks;
pub mod store;

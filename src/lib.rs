//! Pumphouse: a gateway for a campus water-and-power utility.
//!
//! Data flows one way; every arrow is an import in the other direction only:
//!
//! ```text
//!  modbus::poller ──► gateway::writer ──► store (SQLite WAL: the commit point)
//!  (one task per bus)   (own thread)        │  each consumer has its own cursor
//!                                           ├──► sinks::mqtt    (advance on PubAck)
//!                                           ├──► sinks::influx  (advance on 2xx)
//!                                           ├──► ledger::book ─► ledger::month (pure)
//!                                           └──► alerts::evaluate ─► alerts::rules (pure)
//!                                                     │
//!                         http (API, health) ◄────────┴──── cli (one file per command)
//! ```
//!
//! Modules, lowest layer first:
//! - [`diag`]: diagnostics with their path; every layer's validators report through it.
//! - [`supervise`]: the supervisor every long-running task runs under (restart on a
//!   panic or an unasked end, counted), a leaf.
//! - [`model`]: the vocabulary: [`model::Reading`], [`model::Quantity`],
//!   [`model::Quality`], [`model::AlertRule`], [`model::Severity`], [`model::Month`].
//! - [`clock`]: whether the wall clock can stamp readings (not set yet, stepped back);
//!   pure verdicts the writer applies.
//! - [`modbus`]: profiles as data and their TOML form, the pure decoder and request
//!   planner, and the poller (the only part that does Modbus I/O).
//! - [`store`]: the local store, one file per table family (readings, cursors, pruning,
//!   frozen rollups, alerts, corrections); it imports no ledger or alert logic.
//! - [`sinks`]: MQTT and InfluxDB delivery, one line-protocol encoder and one MQTT
//!   client-options builder for every writer.
//! - [`ledger`]: topology, intervals, tariffs, prices, balance and the monthly ledger
//!   (pure, from a [`ledger::month::Spec`]); [`ledger::book`] is its one bridge to the store.
//! - [`alerts`]: pure rules and night-flow evidence; `evaluate` reads the store for them;
//!   `deliver` sends alert changes durably.
//! - [`targets`]: the three zero-growth targets (money, safety incidents, service
//!   interruptions) for a month and the year to date against the baseline year, from the
//!   ledger and the alert records; `[[baseline_targets]]` is its configuration.
//! - [`config`]: TOML + environment → validated [`config::Config`], every problem at once.
//! - [`sim`]: a simulated pump house served over Modbus TCP, with fault scenarios.
//! - [`http`]: health, metrics, status, the API and the page (server-rendered, Chinese
//!   and English); depends on ledger, alerts and store, never on cli or gateway.
//! - [`gateway`]: the running service: pollers, writer, sinks, periodic jobs (prune after
//!   freeze, ledger publishing, alert passes, the monthly ledger files) and HTTP, stopped
//!   from the edges in.
//! - [`cli`]: what each command does and prints (the demo's year of history included);
//!   `main.rs` only parses and dispatches.
//!
//! Pure cores (decode, planner, ledger, tariffs, alert rules, sim physics) take data and
//! `now` and return data, and are tested with tables; the I/O shells around them stay thin
//! and keep blocking work (SQLite) off the async workers.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod alerts;
pub mod cli;
pub mod clock;
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
pub mod supervise;
pub mod targets;

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
//! Modules, lowest layer first. A module imports only from its own layer and the layers
//! below it; `tests/layers.rs` reads the next line and checks every `crate::` path in
//! `src/` against it, so this map cannot drift from the code.
//!
//! Layers: diag | supervise | lang | line_protocol | untrusted | model, secret | clock, cjt188, dlt645, modbus | http::config, store, sinks, ledger, alerts, assets, targets, config, sim, http, gateway, group, cli.
//!
//! - [`diag`]: diagnostics with their path, and the field parsers every component's
//!   validation uses ([`diag::Mode`], durations, sizes, names).
//! - [`supervise`]: the supervisor every long-running task runs under (restart on a
//!   panic or an unasked end, counted), a leaf.
//! - [`lang`]: the one language type (Chinese or English) and its text helper.
//! - [`line_protocol`]: the one InfluxDB line-protocol encoder (readings, alert events,
//!   the ledger measurement).
//! - [`untrusted`]: outside text made safe where it is shown (bounded, escaped, CSV
//!   cells neutralised).
//! - [`model`]: the vocabulary: [`model::Reading`], [`model::Quantity`],
//!   [`model::Quality`], [`model::AlertRule`], [`model::Severity`], [`model::Month`].
//! - [`secret`]: secrets read from a variable or a file, never printed; URLs without them.
//! - [`clock`]: whether the wall clock can stamp readings (not set yet, stepped back);
//!   pure verdicts the writer applies.
//! - [`modbus`]: buses and devices with their configuration (`modbus::config`), profiles
//!   as data and their TOML form, the pure decoder and request planner, and the poller
//!   (the only part that does Modbus I/O).
//! - [`dlt645`]: DL/T 645-2007 and -1997 electricity meters: the frame codec, the data
//!   identifiers and BCD formats, and the read exchanges, pure (no line I/O yet).
//! - [`cjt188`]: CJ/T 188 water and heat meters: the frame codec, the meter-data read and
//!   the valve command, pure (no line I/O yet).
//! - `http::config`: the `[http]` section; it sits low so that [`config`] can assemble it
//!   while the HTTP server itself, above, serves a whole [`config::Config`].
//! - [`store`]: the local store (and `[store]`), one file per table family (readings,
//!   cursors, pruning, frozen rollups, alerts, corrections); no ledger or alert logic.
//! - [`sinks`]: MQTT and InfluxDB delivery, each with its configuration
//!   (`sinks::mqtt::config`, `sinks::influx::config`); one MQTT client-options builder.
//! - [`ledger`]: topology, intervals, tariffs, prices, balance and the monthly ledger
//!   (pure, from a [`ledger::month::Spec`]); [`ledger::book`] is its one bridge to the store.
//! - [`alerts`]: pure rules and night-flow evidence, from an [`alerts::spec::Spec`];
//!   `evaluate` reads the store for them, one evaluator per rule family; `deliver` sends
//!   alert changes durably.
//! - [`targets`]: the three zero-growth targets (money, safety incidents, service
//!   interruptions) for a month and the year to date against the baseline year, from the
//!   ledger and the alert records (`compute`, pure) and its report (`report`), from a
//!   [`targets::Spec`]; `[[baseline_targets]]` is its configuration.
//! - [`config`]: TOML + environment → validated [`config::Config`], every problem at once.
//!   It only parses and assembles: each section's types and checks belong to the
//!   component, and it builds the narrow specs the ledger, alerts and targets take.
//! - [`sim`]: a simulated pump house served over Modbus TCP, with fault scenarios.
//! - [`http`]: health, metrics, status, the API and the page (server-rendered, Chinese
//!   and English); depends on ledger, alerts and store, never on cli or gateway.
//! - [`gateway`]: the running service: pollers, writer, sinks, periodic jobs (prune after
//!   freeze, ledger publishing, alert passes, the monthly ledger files, the group feed)
//!   and HTTP, stopped from the edges in.
//! - [`group`]: `pumphouse group`, the central mode: the sites' group feeds from a
//!   (clustered) broker into its own store, the group's figures (pure) and its page.
//! - [`cli`]: what each command does and prints (the demo's year of history included);
//!   `main.rs` only parses and dispatches.
//!
//! Pure cores (decode, planner, ledger, tariffs, alert rules, sim physics) take data and
//! `now` and return data, and are tested with tables; the I/O shells around them stay thin
//! and keep blocking work (SQLite) off the async workers.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod alerts;
pub mod assets;
pub mod cjt188;
pub mod cli;
pub mod clock;
pub mod config;
pub mod diag;
pub mod dlt645;
pub mod gateway;
pub mod group;
pub mod http;
pub mod lang;
pub mod ledger;
pub mod line_protocol;
pub mod modbus;
pub mod model;
pub mod secret;
pub mod sim;
pub mod sinks;
pub mod store;
pub mod supervise;
pub mod targets;
pub mod untrusted;

//! Alerts on abnormal consumption. Pure rules over the hourly series the ledger books
//! (see [`crate::ledger::intervals`]); they take data and return evidence, stamped with
//! the data's time, so replaying imported history gives what live data would have.

pub mod burst;
pub mod deliver;
pub mod evaluate;
pub mod group;
pub mod message;
pub mod night_flow;
pub mod night_pressure;
pub mod night_rhythm;
pub mod rules;
pub mod safety;
pub mod said;
pub mod settings;
pub mod spec;
pub mod valve_life;

//! Acquisition on the buses: profiles (what registers mean, or a meter's identifiers —
//! [`meter_profile`]) and their TOML form, decode (registers → values), planner (points →
//! fewest reads) and the poller (the only part that does I/O), which also puts DL/T 645
//! and CJ/T 188 meters on the serial lines.

pub mod bus;
pub mod command;
pub mod config;
pub mod decode;
pub mod mbap;
pub mod meter_config;
pub mod meter_poll;
pub mod meter_profile;
pub mod pipeline;
pub mod planner;
pub mod poller;
pub mod profile;
pub mod profile_file;
pub mod transport;

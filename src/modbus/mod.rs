//! Modbus acquisition: profiles (what registers mean) and their TOML form, decode
//! (registers → values), planner (points → fewest reads) and the poller (the only part
//! that does I/O).

pub mod config;
pub mod decode;
pub mod planner;
pub mod poller;
pub mod profile;
pub mod profile_file;
pub mod transport;

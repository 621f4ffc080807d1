//! Modbus acquisition: profiles (what registers mean), decode (registers → values),
//! planner (points → fewest reads) and the poller (the only part that does I/O).

pub mod decode;
pub mod planner;
pub mod poller;
pub mod profile;
pub mod transport;

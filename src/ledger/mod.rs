//! Zone ledgers: interval consumption from totalizers, water and energy balance, tariffs
//! and costs, and the revenue–cost gap against the baseline year.

pub mod balance;
pub mod book;
pub mod corrections;
pub mod export;
pub mod intervals;
pub mod month;
pub mod prices;
pub mod raster;
pub mod schematic;
pub mod tariff;
pub mod topology;

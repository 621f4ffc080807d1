//! `[store]`: where the store lives, how much it may hold, and how many readings wait in
//! memory while it refuses writes.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Limits;
use crate::diag::{duration_field, parse_size, Diagnostics};

const DEFAULT_MAX_AGE: Duration = Duration::from_secs(90 * 86_400);
/// A day to a hundred years; past that, `"forever"`.
const MAX_AGE_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(86_400)..=Duration::from_secs(36_525 * 86_400);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub path: Option<String>,
    pub max_size: Option<String>,
    pub max_age: Option<String>,
    pub memory_queue: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub limits: Limits,
    /// Most readings kept in memory while the store refuses writes or the clock is not
    /// set; past it the oldest are dropped (counted).
    pub memory_queue: usize,
}

pub fn validate(raw: &RawStore, diags: &mut Diagnostics) -> StoreConfig {
    let defaults = Limits::default();
    let max_size = match raw.max_size.as_deref() {
        None => defaults.max_size,
        Some(s) => match parse_size(s) {
            Ok(n) if n >= 1 << 20 => n,
            Ok(_) => {
                diags.error("store.max_size", format!("{s} is too small for a store; give at least 1MiB"));
                defaults.max_size
            }
            Err(e) => {
                diags.error("store.max_size", e.0);
                defaults.max_size
            }
        },
    };
    let max_age = match raw.max_age.as_deref().map(str::trim) {
        // "keep forever": no age limit (size still applies)
        Some("forever" | "none") => None,
        _ => Some(duration_field(
            &raw.max_age,
            defaults.max_age.unwrap_or(DEFAULT_MAX_AGE),
            MAX_AGE_RANGE,
            "store.max_age",
            diags,
        )),
    };
    let memory_queue = match raw.memory_queue.unwrap_or(200_000) {
        n @ 1000..=50_000_000 => n as usize,
        n => {
            diags.error("store.memory_queue", format!("{n} is outside 1000..=50000000 readings"));
            200_000
        }
    };
    StoreConfig {
        path: PathBuf::from(raw.path.clone().unwrap_or_else(|| "/var/lib/pumphouse/store.db".into())),
        limits: Limits { max_size, max_age },
        memory_queue,
    }
}

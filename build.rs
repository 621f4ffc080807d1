//! Records when the binary was built (`SOURCE_DATE_EPOCH` when set, for reproducible
//! builds): a wall clock that reads earlier than this is not set yet (see `clock`).

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A SOURCE_DATE_EPOCH that is not a number stops the build rather than quietly
    // becoming "now"; a build machine's clock before 1970 gives no floor at all (0).
    let secs = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => match s.trim().parse::<u64>() {
            Ok(n) => n,
            Err(e) => panic!("SOURCE_DATE_EPOCH `{s}` is not seconds since 1970: {e}"),
        },
        Err(_) => SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    };
    println!("cargo:rustc-env=PUMPHOUSE_BUILD_EPOCH={secs}");
}

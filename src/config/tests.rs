use super::*;
use std::collections::HashSet;

pub(super) const GOOD: &str = r#"
[site]
name = "north-campus"
timezone = "Asia/Shanghai"

[[buses]]
name = "plant-lan"
transport = "tcp"
address = "127.0.0.1:5020"
timeout = "1s"

[[devices]]
name = "inlet-main"
bus = "plant-lan"
unit = 1
profile = "tuf-2000m"
zone = "campus"
interval = "10s"

[[profiles]]
name = "line-pressure"
[[profiles.points]]
name = "pressure"
table = "input"
address = 0
type = "u16"
scale = 0.001
unit = "MPa"
quantity = "pressure"
"#;

fn errors(text: &str) -> Vec<(String, String)> {
    match load_str(text, Mode::Check) {
        Ok(_) => panic!("expected errors"),
        Err(ConfigErrors(items)) => {
            items.into_iter().filter(|d| d.severity == diag::Severity::Error).map(|d| (d.path, d.message)).collect()
        }
    }
}

fn has(errs: &[(String, String)], path: &str, fragment: &str) {
    assert!(
        errs.iter().any(|(p, m)| p == path && m.contains(fragment)),
        "no error at {path} containing {fragment:?}; got:\n{errs:#?}"
    );
}

#[test]
fn a_good_config_is_typed() {
    let (cfg, diags) = load_str(GOOD, Mode::Check).unwrap();
    assert!(!diags.has_errors());
    assert_eq!(&*cfg.site.name, "north-campus");
    assert_eq!(cfg.site.timezone, chrono_tz::Asia::Shanghai);
    assert_eq!(cfg.buses[0].transport, Transport::Tcp { address: "127.0.0.1:5020".into() });
    assert_eq!(cfg.buses[0].concurrency, 4);
    let d = &cfg.devices[0];
    assert_eq!((d.unit, &*d.zone, d.interval), (1, "campus", Duration::from_secs(10)));
    assert_eq!(&*d.profile.name, "tuf-2000m");
    assert!(cfg.profiles.contains_key("line-pressure"));
    assert!(cfg.profiles.contains_key("eastron-sdm630"));
}

#[test]
fn every_error_is_reported_at_once_with_its_path() {
    let text = r#"
[site]
name = "north campus"
timezone = "Mars/Olympus"

[polling]
interval = "soon"

[[buses]]
name = "lan"
transport = "tcp"
address = "127.0.0.1"

[[buses]]
name = "lan"
transport = "carrier-pigeon"

[[buses]]
name = "rs485"
transport = "rtu"
device = "/dev/ttyDOESNOTEXIST9"
parity = "mark"
timeout = "-3s"

[[devices]]
name = "a"
bus = "lan"
unit = 0
profile = "tuf-2000m"

[[devices]]
name = "a"
bus = "nowhere"
unit = 300
profile = "no-such-profile"

[[devices]]
name = "c"
bus = "lan"
unit = 5
profile = "sdm"
max_registers = 1
interval = "0s"

[[devices]]
name = "d"
bus = "lan"
unit = 5
profile = "tuf-2000m"
max_registers = 2

[[devices]]
name = "e"
bus = "lan"
unit = 6
profile = "tuf-2000m"
adress = 5

[[profiles]]
name = "sdm"
[[profiles.points]]
name = "p"
table = "input"
address = 0
type = "f32"
quantity = "voltage"
[[profiles.points]]
name = "q"
table = "input"
address = 1
type = "u16"
quantity = "voltage"
[[profiles.points]]
name = "r"
table = "coil"
address = 0
type = "u32"
quantity = "status"
[[profiles.points]]
name = "p"
table = "holding"
address = 65535
type = "f32"
quantity = "pressure"
[[profiles.points]]
name = "s"
table = "register"
address = 70000
type = "float"
order = "ABDC"
quantity = "wetness"
[[profiles.points]]
name = "flow+rate"
table = "holding"
address = 100
quantity = "status"
"#;
    let errs = errors(text);
    has(&errs, "site.name", "contains a space");
    has(&errs, "site.timezone", "not an IANA time zone");
    has(&errs, "polling.interval", "not a duration");
    has(&errs, "buses[0].address", "is not `host:port`");
    has(&errs, "buses[1].name", "bus `lan` is already defined at buses[0]");
    has(&errs, "buses[1].transport", "unknown transport `carrier-pigeon`");
    has(&errs, "buses[2].parity", "unknown parity `mark`");
    has(&errs, "buses[2].timeout", "not a duration");
    has(&errs, "devices[0].unit", "unit id 0 is outside 1..=247");
    has(&errs, "devices[1].name", "device `a` is already defined at devices[0]");
    has(&errs, "devices[1].bus", "unknown bus `nowhere`");
    has(&errs, "devices[1].unit", "unit id 300 is outside 1..=247");
    has(&errs, "devices[1].profile", "unknown profile `no-such-profile`");
    has(&errs, "devices[2].interval", "`0s` is outside 1ms..=1day");
    has(&errs, "devices[3].unit", "unit id 5 on bus `lan` is already used by `c`");
    has(&errs, "devices[3].max_registers", "4-register point, which cannot be read with at most 2");
    has(&errs, "devices[4]", "unknown field `adress`");
    has(&errs, "profiles[0].points[1]", "`q` (input 1..1) overlaps `p` (input 0..1)");
    has(&errs, "profiles[0].points[2].type", "a coil is a single bit; it cannot hold a u32");
    has(&errs, "profiles[0].points[3].name", "point `p` is already defined at points[0]");
    has(
        &errs,
        "profiles[0].points[3].address",
        "a f32 at 65535 needs 2 registers and runs past the last address 65535",
    );
    has(&errs, "profiles[0].points[4].table", "unknown table `register`");
    has(&errs, "profiles[0].points[4].address", "70000 is outside 0..=65535");
    has(&errs, "profiles[0].points[4].type", "unknown type `float`");
    has(&errs, "profiles[0].points[4].order", "unknown order `ABDC`");
    has(&errs, "profiles[0].points[4].quantity", "unknown quantity `wetness`");
    has(&errs, "profiles[0].points[5].name", "`flow+rate` contains a space, '/', '+' or '#'");
    // the missing serial device is only a warning when checking…
    assert!(!errs.iter().any(|(p, _)| p == "buses[2].device"));
}

#[test]
fn a_missing_serial_device_is_an_error_for_run_and_a_warning_for_check() {
    let text = r#"
[site]
name = "s"
[[buses]]
name = "rs485"
transport = "rtu"
device = "/dev/ttyDOESNOTEXIST9"
[[devices]]
name = "m"
bus = "rs485"
unit = 1
profile = "eastron-sdm120"
"#;
    let (_, diags) = load_str(text, Mode::Check).unwrap();
    let w: Vec<_> = diags.warnings().collect();
    assert!(w.iter().any(|d| d.path == "buses[0].device" && d.message.contains("does not exist")), "{w:?}");
    match load_str(text, Mode::Run) {
        Err(ConfigErrors(items)) => {
            assert!(items.iter().any(|d| d.path == "buses[0].device" && d.severity == diag::Severity::Error))
        }
        Ok(_) => panic!("run must refuse a missing serial device"),
    }
}

#[test]
fn unknown_sections_and_fields_are_refused() {
    let errs = errors("[site]\nname = \"s\"\ncolour = \"red\"\n[sight]\nname = \"x\"\n");
    has(&errs, "sight", "unknown section `sight`");
    has(&errs, "site", "unknown field `colour`");
}

#[test]
fn modicon_register_numbers_and_their_conflicts() {
    let text = r#"
[site]
name = "s"
[[profiles]]
name = "m"
[[profiles.points]]
name = "a"
register = 30001
type = "f32"
quantity = "voltage"
[[profiles.points]]
name = "b"
register = 400010
quantity = "status"
[[profiles.points]]
name = "c"
register = 20001
quantity = "status"
[[profiles.points]]
name = "d"
register = 40001
table = "holding"
address = 0
quantity = "status"
"#;
    let errs = errors(text);
    has(&errs, "profiles[0].points[2].register", "20001 is not a register-map number");
    has(&errs, "profiles[0].points[3].register", "not both");
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn profile_vectors_in_the_config_are_checked() {
    let text = r#"
[site]
name = "s"
[[profiles]]
name = "m"
[[profiles.points]]
name = "a"
table = "holding"
address = 0
type = "u16"
scale = 0.1
quantity = "pressure"
[[profiles.vectors]]
registers = [{ table = "holding", address = 0, values = [123] }]
expect = { a = 1.23 }
"#;
    let errs = errors(text);
    has(&errs, "profiles[0].vectors", "point a decoded to Some(12.3");
}

#[test]
fn exponent_references_are_resolved_and_checked() {
    let text = r#"
[site]
name = "s"
[[profiles]]
name = "m"
[[profiles.points]]
name = "total"
table = "holding"
address = 0
type = "u32"
quantity = "water_volume"
exponent_from = "nothing"
[[profiles.points]]
name = "bits"
table = "holding"
address = 4
type = "bit"
quantity = "status"
"#;
    let errs = errors(text);
    has(&errs, "profiles[0].points[0].exponent_from", "no point `nothing`");
    has(&errs, "profiles[0].points[1].bit", "needs `bit = N`");
}

#[test]
fn environment_overrides_scalar_keys() {
    // A key no other test looks at: tests run in parallel and share the environment.
    std::env::set_var("PUMPHOUSE__POLLING__BACKOFF_MAX", "2m");
    let result = load_str(GOOD, Mode::Check);
    std::env::remove_var("PUMPHOUSE__POLLING__BACKOFF_MAX");
    let (cfg, _) = result.unwrap();
    assert_eq!(cfg.devices[0].backoff_max, Duration::from_secs(120));
}

#[test]
fn the_example_configuration_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pumphouse.example.toml");
    let (cfg, diags) = load(&path, Mode::Check).unwrap_or_else(|e| panic!("{e}"));
    assert!(!diags.has_errors());
    assert!(cfg.devices.len() >= 5);
    let kinds: HashSet<&str> = cfg.buses.iter().map(|b| b.transport.kind()).collect();
    assert_eq!(kinds, HashSet::from(["tcp", "rtu", "rtu-over-tcp"]));
}

#[test]
fn alert_settings_and_overrides() {
    let text = format!(
        "{GOOD}
[alerts]
evaluate_every = \"1m\"
night_min_excess = 0.5
disable = [\"consumption_anomaly\"]
[[alerts.overrides]]
zone = \"campus\"
pressure_band = [0.2, 0.5]
"
    );
    let (cfg, _) = load_str(&text, Mode::Check).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.alerts.evaluate_every, Duration::from_secs(60));
    let s = cfg.alerts.rules.for_subject("campus", Some("inlet-main"));
    assert_eq!((s.night_min_excess, s.pressure_band), (0.5, Some((0.2, 0.5))));
    assert!(!s.enabled(crate::model::AlertRule::ConsumptionAnomaly));
    let errs = errors(&format!("{GOOD}\n[alerts]\nnight_min_exces = 0.5\nwebhook_format = \"slack\"\n"));
    has(&errs, "alerts", "unknown field `night_min_exces`");
    let errs = errors(&format!("{GOOD}\n[alerts]\nwebhook_format = \"slack\"\n"));
    has(&errs, "alerts.webhook_format", "unknown format `slack`");
}

#[test]
fn max_reading_means_the_last_reading_before_the_wrap() {
    let map = |meter: &str| {
        format!(
            "{GOOD}\n[[devices]]\nname = \"m1\"\nbus = \"plant-lan\"\nunit = 2\nprofile = \"tuf-2000m\"\nzone = \"campus\"\n\
             [[zones]]\nname = \"campus\"\nutility = \"water\"\ninlets = [\"inlet-main\"]\n\
             [[meters]]\ndevice = \"m1\"\nzone = \"campus\"\ncategory = \"c\"\n{meter}\n\
             [[tariffs]]\nutility = \"water\"\ncategory = \"c\"\nprice = \"1\"\n"
        )
    };
    let modulus = |meter: &str| {
        let (cfg, _) = load_str(&map(meter), Mode::Check).unwrap_or_else(|e| panic!("{e}"));
        cfg.topology.meters.iter().find(|m| m.device == "m1").unwrap().rollover_at
    };
    assert_eq!(modulus("max_reading = 99999.999"), Some(100_000.0));
    assert_eq!(modulus("max_reading = 9999"), Some(10_000.0));
    assert_eq!(modulus("rollover_at = 100000"), Some(100_000.0));
    assert_eq!(modulus(""), None);
    let errs = errors(&map("max_reading = 99999.999\nrollover_at = 100000"));
    has(&errs, "meters[0].rollover_at", "not both");
}

#[test]
fn a_store_too_small_for_the_ledger_is_an_error() {
    // a month and the freeze delay: 40 days of readings
    let map = |interval: &str, size: &str| {
        format!(
            "{}\n[[zones]]\nname = \"campus\"\nutility = \"water\"\ninlets = [\"inlet-main\"]\n[store]\npath = \"s.db\"\nmax_size = \"{size}\"\n",
            GOOD.replace("interval = \"10s\"", &format!("interval = \"{interval}\""))
        )
    };
    // six points every 10 s ≈ 51 840 readings a day, ≈ 3.6 MB: 100 MiB holds ≈ 29 days
    let errs = errors(&map("10s", "100MiB"));
    has(&errs, "store.max_size", "holds about 29 days of this configuration's readings");
    assert!(load_str(&map("10s", "200MiB"), Mode::Check).is_ok());
    assert!(load_str(&map("1m", "100MiB"), Mode::Check).is_ok());
}

#[test]
fn the_memory_queue_is_bounded_both_ways() {
    let cfg = |n: &str| format!("{GOOD}\n[store]\npath = \"s.db\"\nmemory_queue = {n}\n");
    let (c, _) = load_str(&cfg("5000"), Mode::Check).unwrap();
    assert_eq!(c.store.memory_queue, 5000);
    has(&errors(&cfg("10")), "store.memory_queue", "10 is outside 1000..=50000000");
    has(&errors(&cfg("-1")), "store.memory_queue", "outside");
    let (d, _) = load_str(GOOD, Mode::Check).unwrap();
    assert_eq!(d.store.memory_queue, 200_000);
}

#[test]
fn durations_have_ranges_and_forever_keeps_readings() {
    let with = |extra: &str| format!("{GOOD}\n{extra}");
    has(
        &errors(&GOOD.replace("interval = \"10s\"", "interval = \"1ns\"")),
        "devices[0].interval",
        "outside 1ms..=1day",
    );
    has(&errors(&GOOD.replace("timeout = \"1s\"", "timeout = \"500000000000y\"")), "buses[0].timeout", "");
    has(&errors(&with("[store]\npath = \"s.db\"\nmax_age = \"300000000y\"\n")), "store.max_age", "outside");
    has(&errors(&with("[polling]\ninterval = \"0s\"\n")), "polling.interval", "outside");
    has(
        &errors(&with("[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\nkeep_alive = \"1s\"\n")),
        "mqtt.keep_alive",
        "outside 5s",
    );
    has(&errors(&with("[alerts]\nsilent_after = \"900000000y\"\n")), "alerts.silent_after", "outside 1s..=30days");
    for forever in ["forever", "none"] {
        let (c, _) =
            load_str(&with(&format!("[store]\npath = \"s.db\"\nmax_age = \"{forever}\"\n")), Mode::Check).unwrap();
        assert_eq!(c.store.limits.max_age, None);
    }
    let (c, _) = load_str(&with("[store]\npath = \"s.db\"\nmax_age = \"100y\"\n"), Mode::Check).unwrap();
    assert!(c.store.limits.max_age.is_some());
}

#[test]
fn a_meter_judged_on_its_profiles_default_current_is_said_so() {
    let base = "[site]\nname = \"s\"\n[[buses]]\nname = \"b\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n[[devices]]\nname = \"main-ct\"\nbus = \"b\"\nunit = 1\nprofile = \"eastron-sdm630\"\n";
    let warned = |text: &str| {
        let (_, diags) = load_str(text, Mode::Check).unwrap();
        let found =
            diags.warnings().any(|d| d.path == "devices[0].profile" && d.message.contains("the profile's 100 A"));
        found
    };
    assert!(warned(base), "a CT meter on the 100 A default is pointed out before it counts incidents");
    let rated = format!("{base}[alerts]\n[[alerts.overrides]]\ndevice = \"main-ct\"\nrated_current = 630\n");
    assert!(!warned(&rated), "its breaker's rating given: nothing to say");
    // a water meter measures no current
    assert!(!warned(&base.replace("eastron-sdm630", "tuf-2000m")));
}

#[test]
fn a_zone_whose_bursts_cannot_be_judged_is_said_so() {
    let zone = "[[zones]]\nname = \"campus\"\nutility = \"water\"\ninlets = [\"inlet-main\"]\n[store]\npath = \"s.db\"\nmax_size = \"1GiB\"\n";
    let warned = |text: &str| {
        let (_, diags) = load_str(text, Mode::Check).unwrap();
        let w: Vec<String> = diags.warnings().filter(|d| d.path == "zones[0]").map(|d| d.message.clone()).collect();
        w
    };
    assert!(warned(&format!("{GOOD}{zone}")).is_empty(), "read every 10 s: judged");
    let hourly = GOOD.replace("interval = \"10s\"", "interval = \"1h\"");
    let w = warned(&format!("{hourly}{zone}"));
    assert!(w.iter().any(|m| m.contains("every 1h: too sparse to judge a burst")), "{w:?}");
    let (cfg, _) = load_str(&format!("{hourly}{zone}"), Mode::Check).unwrap();
    assert_eq!(cfg.alert_spec().bursts_unjudged().len(), 1, "and /api/status lists it");
}

#[test]
fn holidays_are_days_or_runs_of_days() {
    let cfg = |h: &str| format!("{GOOD}\n[alerts]\nholidays = [{h}]\n");
    let (c, _) = load_str(&cfg("\"2026-10-01..2026-10-07\", \"2027-01-01\""), Mode::Check).unwrap();
    assert_eq!(c.alerts.rules.holidays.len(), 8);
    has(&errors(&cfg("\"2026-10-07..2026-10-01\"")), "alerts.holidays[0]", "is not a day");
    has(&errors(&cfg("\"National Day\"")), "alerts.holidays[0]", "YYYY-MM-DD");
}

#[test]
fn a_missing_time_zone_and_a_device_zone_outside_the_map_are_said() {
    let warned = |text: &str, path: &str, fragment: &str| {
        let (_, diags) = load_str(text, Mode::Check).unwrap();
        let found = diags.warnings().any(|d| d.path == path && d.message.contains(fragment));
        found
    };
    let no_tz = GOOD.replace("timezone = \"Asia/Shanghai\"\n", "");
    assert!(warned(&no_tz, "site.timezone", "follow UTC"));
    assert!(!warned(GOOD, "site.timezone", "follow UTC"));
    // the map names 教学区; the device says 教学楼 (a typo)
    let map = "[[zones]]\nname = \"教学区\"\nutility = \"water\"\ninlets = [\"inlet-main\"]\n[store]\npath = \"s.db\"\nmax_size = \"1GiB\"\n";
    let typo = format!("{}{map}", GOOD.replace("zone = \"campus\"", "zone = \"教学楼\""));
    let mut text = typo.replace("inlets = [\"inlet-main\"]", "inlets = []");
    text.push_str(
        "[[devices]]\nname = \"m2\"\nbus = \"plant-lan\"\nunit = 2\nprofile = \"tuf-2000m\"\nzone = \"教学区\"\n",
    );
    let text = text.replace("inlets = []", "inlets = [\"m2\"]");
    assert!(
        warned(&text, "devices[0].zone", "`教学楼` is not a zone of the network map ([[zones]]: 教学区)"),
        "{text}"
    );
    assert!(!warned(&text, "devices[1].zone", "not a zone"));
}

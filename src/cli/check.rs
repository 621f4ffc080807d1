//! `pumphouse check`: the resolved polling plan per bus and device, with line time on
//! serial buses.

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::{self, Config};

/// `pumphouse check`: the resolved plan per bus and device, with line time on serial buses.
pub fn plan_report(cfg: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "site {} ({}, language {})", cfg.site.name, cfg.site.timezone.name(), cfg.site.language);
    if !cfg.topology.zones.is_empty() {
        let base = chrono::Datelike::year(&chrono::Utc::now().with_timezone(&cfg.site.timezone)) - 1;
        let books = cfg.prices.baseline.iter().filter(|b| b.year == base).count();
        let targets = cfg.target_baselines.iter().filter(|b| b.month.year() == base).count();
        let _ = writeln!(
            out,
            "baseline year {base} (this year's months are compared with the same months of it): {books} utility-month(s) in [[baseline]], {targets} month(s) in [[baseline_targets]]; the rest from the store's records of {base}, where it has them"
        );
    }
    if let Some(days) = cfg.store_days() {
        let _ = writeln!(
            out,
            "store {}: about {:.0} readings a day, ~{:.0} MB a day: max_size holds about {days:.0} days",
            cfg.store.path.display(),
            cfg.readings_per_day(),
            cfg.readings_per_day() * config::STORE_BYTES_PER_READING / 1e6
        );
    }
    for bus in &cfg.buses {
        let devices: Vec<&config::Device> = cfg.devices.iter().filter(|d| d.bus == bus.name).collect();
        let _ = writeln!(
            out,
            "\nbus {}: {}, timeout {}, {} device(s), {}",
            bus.name,
            bus.transport.describe(),
            humantime::format_duration(bus.timeout),
            devices.len(),
            bus_manner(bus)
        );
        let mut utilisation = 0.0;
        for d in devices {
            let plan = d.plan();
            let registers: u32 = plan.iter().map(|r| u32::from(r.count)).sum();
            let exchanges = d.profile.exchanges();
            let _ = writeln!(
                out,
                "  device {} ({}, profile {}, zone {}, every {}): {} point(s) in {} request(s) per cycle",
                d.name,
                match &d.meter {
                    Some(m) => format!("{} meter {m}", d.profile.protocol.name()),
                    None => format!("unit {}", d.unit),
                },
                d.profile.name,
                d.zone,
                humantime::format_duration(d.interval),
                d.profile.points.len(),
                plan.len() + exchanges.len()
            );
            let mut line_time = Duration::ZERO;
            for x in &exchanges {
                let names: Vec<&str> = x.points.iter().map(|&i| &*d.profile.points[i].name).collect();
                let mut timing = String::new();
                if let Some((baud, bits)) = bus.transport.line() {
                    let t = x.line_time(baud, bits, bus.gap);
                    line_time += t;
                    timing = format!(" ~{:.1} ms", t.as_secs_f64() * 1000.0);
                }
                let _ = writeln!(
                    out,
                    "    {} ({}+{} bytes){timing}  {}",
                    x.what,
                    x.request_bytes,
                    x.answer_bytes,
                    names.join(", ")
                );
            }
            for r in &plan {
                let names: Vec<&str> = r.points.iter().map(|&i| &*d.profile.points[i].name).collect();
                let mut timing = String::new();
                if let Some((baud, bits)) = bus.transport.line() {
                    let t = r.line_time(baud, bits, bus.gap);
                    line_time += t;
                    timing = format!(" ~{:.1} ms", t.as_secs_f64() * 1000.0);
                }
                let _ = writeln!(
                    out,
                    "    fc{:02} {:<8} {:>5}..{:<5} ({:>3} {}){timing}  {}",
                    r.table.function_code(),
                    r.table.as_str(),
                    r.start,
                    u32::from(r.start) + u32::from(r.count) - 1,
                    r.count,
                    if r.table.is_bits() { "bits" } else { "regs" },
                    names.join(", ")
                );
            }
            if bus.transport.line().is_some() {
                let share = line_time.as_secs_f64() / d.interval.as_secs_f64();
                utilisation += share;
                let registers = if d.meter.is_some() { String::new() } else { format!(", {registers} registers") };
                let _ = writeln!(out, "    line time per cycle ~{:.1} ms ({:.1} % of the interval; device turnaround not included){registers}", line_time.as_secs_f64() * 1000.0, share * 100.0);
            }
        }
        if bus.transport.line().is_some() {
            let _ = writeln!(
                out,
                "  estimated line load: {:.1} %{}",
                utilisation * 100.0,
                if utilisation > 0.8 {
                    " — too busy: lengthen intervals, raise the baud rate or split the line"
                } else {
                    ""
                }
            );
        } else if bus.transport.kind() == "rtu-over-tcp" {
            let _ = writeln!(out, "  (set `baud` on this bus to estimate line time)");
        }
    }
    out
}

/// Zones whose losses were more than half their input in the month of the store's newest
/// reading: most often not a leak but use the map does not describe (offices, teaching
/// buildings, irrigation the university pays for), booked as losses. Nothing when there
/// is no store or no reading yet.
pub fn losses_advice(cfg: &Config) -> anyhow::Result<Vec<String>> {
    if cfg.topology.zones.is_empty() || !cfg.store.path.exists() {
        return Ok(Vec::new());
    }
    let store = super::open_store(cfg, true)?;
    let Some(newest) = store.newest_ts()? else { return Ok(Vec::new()) };
    // a reading at midnight on the 1st closes the month before; it does not open a month
    let last = newest - chrono::TimeDelta::milliseconds(1);
    let Some(month) = crate::model::Month::containing(last, cfg.site.timezone) else { return Ok(Vec::new()) };
    let l = crate::ledger::book::month_ledger(&cfg.ledger_spec(), &store, month, crate::ledger::month::Depth::Bare)?;
    let mut out = Vec::new();
    for z in l.zones.iter().filter(|z| z.net_input > 0.0 && z.losses > 0.5 * z.net_input) {
        let i = cfg.topology.zones.iter().position(|x| x.name == z.zone).unwrap_or(0);
        out.push(format!(
            "warning: zones[{i}]: in {month}, {:.1} % of zone `{}`'s input ({:.1} of {:.1}) is booked as losses; if the university pays for use there that is not billed, describe it — a meter with role = \"unbilled\" under [[meters]], or an estimate under [[unmetered]] (docs/快速上手.md §4, 学校自己付费、不收费的用水用电) — or it counts against the non-revenue target",
            100.0 * z.losses / z.net_input,
            z.zone,
            z.losses,
            z.net_input
        ));
    }
    Ok(out)
}

/// How a bus carries its requests, in words.
fn bus_manner(bus: &config::Bus) -> String {
    if bus.transport.is_half_duplex() {
        format!("one request at a time, gap {}", humantime::format_duration(bus.gap))
    } else if bus.pipeline > 1 {
        format!(
            "{} connection(s), up to {} reads in flight on each (pipelined; one at a time if the server does not take it)",
            bus.concurrency, bus.pipeline
        )
    } else {
        format!("up to {} requests in flight", bus.concurrency)
    }
}

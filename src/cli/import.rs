//! `pumphouse import`: readings from a CSV through the same path as polled readings.

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::ledger::book::{self, Refrozen};
use crate::model::{Quality, Reading};

/// What `import` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: usize,
    pub imported: usize,
    pub already_present: usize,
    /// (line number, reason)
    pub bad: Vec<(u64, String)>,
    /// Time range of the good rows.
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    /// Alerts raised or updated by replaying the rules over the imported range.
    pub alerts: usize,
}

/// `pumphouse import`: readings from a long CSV (`ts,device,point,value`, header
/// required, ISO 8601 timestamps with offset) through the same path as polled readings:
/// checked against the configured devices and points, given a quality by the point's
/// plausible range, committed to the store. Re-importing a file changes nothing.
/// `pumphouse import`: the rows imported, and each refused one on stderr (exit 3).
pub fn run(cfg: &Config, csv: &std::path::Path) -> anyhow::Result<super::Report> {
    let r = import(cfg, csv, true)?;
    let stderr: String = r.bad.iter().map(|(line, why)| format!("{}:{line}: {why}\n", csv.display())).collect();
    Ok(super::Report {
        stdout: format!(
            "{}: {} rows, {} imported, {} already present, {} refused; {} alert(s) raised or updated\n",
            csv.display(),
            r.rows,
            r.imported,
            r.already_present,
            r.bad.len(),
            r.alerts
        ),
        stderr,
        code: if r.bad.is_empty() { 0 } else { 3 },
    })
}

/// Where the CSV's columns are.
#[derive(Debug, Clone, Copy)]
struct Columns {
    ts: usize,
    device: usize,
    point: usize,
    value: usize,
}

/// Why a row is refused, in a sentence for its line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadRow(String);

/// One row as a reading of a configured point, or why it is refused.
fn row_reading(
    cfg: &Config,
    rec: &csv::StringRecord,
    c: Columns,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Reading, BadRow> {
    let field = |c: usize| rec.get(c).unwrap_or("").to_string();
    // a field echoed in a refusal: one line, at most 64 characters
    let echo = |c: usize| crate::untrusted::shown(rec.get(c).unwrap_or(""), 64);
    let ts = parse_iso8601(&field(c.ts)).ok_or_else(|| {
        BadRow(format!("`{}` is not an ISO 8601 time with offset (e.g. 2025-03-01T08:00:00+08:00)", echo(c.ts)))
    })?;
    // the ledger's calendar is 2000–2200: a row outside it is a typo, and stored it would
    // fall outside every ledger month (and every guard that walks them)
    if crate::model::Month::containing(ts, cfg.site.timezone).is_none() {
        return Err(BadRow(format!("{} is outside the years 2000 to 2200", echo(c.ts))));
    }
    // A reading from the future is a typo or a wrong offset; stored, it would also make
    // every live reading look stamped by a clock gone back.
    if ts > now + chrono::TimeDelta::minutes(5) {
        return Err(BadRow(format!(
            "{} is in the future (this machine's clock reads {})",
            ts.to_rfc3339(),
            now.to_rfc3339()
        )));
    }
    let dev_name = field(c.device);
    let device =
        cfg.device(&dev_name).ok_or_else(|| BadRow(format!("no device `{}` in the configuration", echo(c.device))))?;
    let pt_name = field(c.point);
    let point = device
        .profile
        .points
        .iter()
        .find(|p| *p.name == *pt_name)
        .ok_or_else(|| BadRow(format!("device `{dev_name}` has no point `{}`", echo(c.point))))?;
    let value = match field(c.value).parse::<f64>() {
        Ok(v) if v.is_finite() => v,
        _ => return Err(BadRow(format!("`{}` is not a number", echo(c.value)))),
    };
    let out_of_range = point.min.is_some_and(|m| value < m) || point.max.is_some_and(|m| value > m);
    Ok(Reading {
        ts,
        site: cfg.site.name.clone(),
        zone: device.zone.clone(),
        device: device.name.clone(),
        point: point.name.clone(),
        quantity: point.quantity,
        value: Some(value),
        unit: point.unit.clone(),
        quality: if out_of_range { Quality::OutOfRange } else { Quality::Good },
    })
}

pub fn import(cfg: &Config, path: &std::path::Path, progress: bool) -> anyhow::Result<ImportReport> {
    let store = super::open_store(cfg, false)?;
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).trim(csv::Trim::All).from_reader(file);
    let headers = rdr.headers().with_context(|| format!("{}: cannot read the header line", path.display()))?.clone();
    // Excel writes a byte-order mark before the first header.
    let col = |name: &str| headers.iter().position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name));
    let (Some(c_ts), Some(c_dev), Some(c_pt), Some(c_val)) = (col("ts"), col("device"), col("point"), col("value"))
    else {
        bail!(
            "{}: the header must name the columns ts, device, point, value (found: {})",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        );
    };
    let columns = Columns { ts: c_ts, device: c_dev, point: c_pt, value: c_val };
    let mut report = ImportReport::default();
    // bytes of the file read so far, on a terminal
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = if progress { super::progress_bar(size, "importing") } else { indicatif::ProgressBar::hidden() };
    let mut batch: Vec<Reading> = Vec::new();
    let now = chrono::Utc::now();
    let flush = |batch: &mut Vec<Reading>, report: &mut ImportReport| -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        store.append(batch)?;
        let added = store.last_added();
        report.imported += added;
        report.already_present += batch.len() - added;
        batch.clear();
        Ok(())
    };
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        report.rows += 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                report.bad.push((line, format!("unreadable row: {e}")));
                continue;
            }
        };
        if report.rows % 10_000 == 0 {
            if let Some(p) = rec.position() {
                bar.set_position(p.byte());
            }
        }
        let reading = match row_reading(cfg, &rec, columns, now) {
            Ok(r) => r,
            Err(BadRow(why)) => {
                report.bad.push((line, why));
                continue;
            }
        };
        let ts = reading.ts;
        report.first = Some(report.first.map_or(ts, |f| f.min(ts)));
        report.last = Some(report.last.map_or(ts, |l| l.max(ts)));
        batch.push(reading);
        if batch.len() >= 5000 {
            flush(&mut batch, &mut report)?;
        }
    }
    flush(&mut batch, &mut report)?;
    bar.finish_and_clear();
    // Frozen months the import reaches into are recomputed while their readings are all
    // there, so that back-filled readings count.
    if let (Some(a), Some(b)) = (report.first, report.last) {
        for r in book::refreeze_range(&cfg.ledger_spec(), &store, a, b)? {
            if let Refrozen::Kept(m) = r {
                eprintln!("ledger month {m} is frozen and its earlier readings are pruned: the imported readings do not change it");
            }
        }
    }
    // Replay: the rules see imported history as they would have seen it live.
    if let (Some(a), Some(b)) = (report.first, report.last) {
        if report.imported > 0 {
            let changed =
                crate::alerts::evaluate::record(&cfg.alert_spec(), &store, a, b + chrono::TimeDelta::milliseconds(1))?;
            report.alerts = changed.len();
        }
    }
    Ok(report)
}

/// ISO 8601 with an offset, as spreadsheets and older systems write it: RFC 3339
/// (`2025-03-01T08:00:00+08:00`, `…Z`, a space for the `T`), minutes without seconds,
/// and offsets without a colon (`+0800`).
pub fn parse_iso8601(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M%z"]
        .iter()
        .find_map(|f| DateTime::parse_from_str(s, f).ok())
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_as_written_by_other_systems() {
        let want = "2025-03-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        for s in [
            "2025-03-01T08:00:00+08:00",
            "2025-03-01 08:00:00+08:00",
            "2025-03-01T00:00:00Z",
            "2025-03-01T08:00+08:00",
            "2025-03-01 08:00+0800",
            "2025-03-01T08:00:00.000+0800",
        ] {
            assert_eq!(parse_iso8601(s), Some(want), "{s}");
        }
        assert_eq!(parse_iso8601("2025-03-01 08:00:00"), None, "no offset: refused, not guessed");
        assert_eq!(parse_iso8601("01/03/2025 08:00"), None);
    }

    #[test]
    fn rows_outside_the_ledgers_years_and_long_names_are_refused_briefly() {
        let text = "[site]\nname = \"s\"\ntimezone = \"Asia/Shanghai\"\n[[buses]]\nname = \"b\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n[[devices]]\nname = \"m1\"\nbus = \"b\"\nunit = 1\nprofile = \"tuf-2000m\"\n";
        let (cfg, _) = crate::config::load_str(text, crate::config::Mode::Check).unwrap();
        let cols = Columns { ts: 0, device: 1, point: 2, value: 3 };
        let now = Utc::now();
        let row = |ts: &str, dev: &str| {
            row_reading(&cfg, &csv::StringRecord::from(vec![ts, dev, "positive_total", "1"]), cols, now).map(|r| r.ts)
        };
        assert!(row("2025-03-01T08:00:00+08:00", "m1").is_ok());
        for old in ["0000-01-01T00:00:00+00:00", "1999-12-31T15:59:59Z"] {
            let why = row(old, "m1").unwrap_err().0;
            assert!(why.contains("outside the years 2000 to 2200"), "{why}");
        }
        let long = format!("dev\x1b[2J{}", "x".repeat(1 << 20));
        let why = row("2025-03-01T08:00:00+08:00", &long).unwrap_err().0;
        assert!(why.len() < 200 && !why.contains('\x1b'), "{}", &why[..why.len().min(300)]);
    }
}

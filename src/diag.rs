//! Collected configuration problems. Validation never stops at the first one: every
//! problem is pushed here with its path (`devices[3].unit`) and a sentence a user can act
//! on, and the caller decides what is fatal.

use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Where in the configuration, e.g. `profiles[1].points[4].type`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{tag}: {}: {}", self.path, self.message)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.items.push(Diagnostic { severity: Severity::Error, path: path.into(), message: message.into() });
    }

    pub fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.items.push(Diagnostic { severity: Severity::Warning, path: path.into(), message: message.into() });
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Warning)
    }
}

/// The error returned when a configuration cannot be used: all of its problems at once.
#[derive(Debug, thiserror::Error)]
#[error("{}", render(.0))]
pub struct ConfigErrors(pub Vec<Diagnostic>);

fn render(items: &[Diagnostic]) -> String {
    let errors = items.iter().filter(|d| d.severity == Severity::Error).count();
    let mut s = format!("the configuration has {errors} error(s):");
    for d in items {
        s.push_str("\n  ");
        s.push_str(&d.to_string());
    }
    s
}

/// What the configuration is being loaded for: a missing serial device is a warning when
/// checking a file on another machine, and an error when about to poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Check,
    Run,
}

impl Diagnostics {
    /// A problem of the machine rather than of the file (a missing device, an unset
    /// variable): a warning when checking, an error when about to run.
    pub fn of_machine(&mut self, mode: Mode, path: impl Into<String>, message: impl Into<String>) {
        match mode {
            Mode::Check => self.warning(path, message),
            Mode::Run => self.error(path, message),
        }
    }
}

/// A value that does not parse: the sentence says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadValue(pub String);

/// Parses `10s`, `500ms`, `1m 30s` (humantime) into a duration.
pub fn parse_duration(s: &str) -> Result<Duration, BadValue> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        // units written in Chinese: name the ones to write
        let hint = if s.contains(['秒', '分', '时', '天', '日', '毫']) {
            " (秒 is s, 分钟 m, 小时 h, 天 d, 毫秒 ms)"
        } else {
            ""
        };
        BadValue(format!("`{s}` is not a duration ({e}); write e.g. 500ms, 10s, 5m{hint}"))
    })
}

/// Parses `2GiB`, `500MB`, `64KiB` or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<u64, BadValue> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| BadValue(format!("`{s}` is not a size; write e.g. 500MB or 2GiB")))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024f64.powi(4),
        _ => {
            return Err(BadValue(format!(
                "`{s}`: unknown size unit `{}`; use B, KB, MB, GB, KiB, MiB or GiB",
                unit.trim()
            )))
        }
    };
    Ok((n * mult) as u64)
}

/// A duration field: its default when absent, an error (and the default) when it does
/// not parse or lies outside `range` (every duration the gateway reads has one: a
/// 1 ns interval spins a worker, and 10⁹ years overflow the arithmetic done with it).
pub fn duration_field(
    value: &Option<String>,
    default: Duration,
    range: std::ops::RangeInclusive<Duration>,
    path: &str,
    diags: &mut Diagnostics,
) -> Duration {
    match value {
        None => default,
        Some(s) => match parse_duration(s) {
            Ok(d) if range.contains(&d) => d,
            Ok(_) => {
                diags.error(path, format!("`{s}` is outside {}", duration_range(&range)));
                default
            }
            Err(e) => {
                diags.error(path, e.0);
                default
            }
        },
    }
}

/// `10ms..=1day`, as `check` says it.
pub fn duration_range(range: &std::ops::RangeInclusive<Duration>) -> String {
    format!("{}..={}", humantime::format_duration(*range.start()), humantime::format_duration(*range.end()))
}

/// An integer field within `range`; `what` says what it counts.
pub fn int_field(
    value: Option<i64>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    path: &str,
    what: &str,
    diags: &mut Diagnostics,
) -> i64 {
    match value {
        None => default,
        Some(v) if range.contains(&v) => v,
        Some(v) => {
            diags.error(path, format!("{v} is outside {}..={}: {what}", range.start(), range.end()));
            default
        }
    }
}

/// A name that becomes an MQTT topic level and a series tag.
pub fn check_name(name: &Option<String>, path: &str, what: &str, diags: &mut Diagnostics) -> Option<String> {
    match name.as_deref() {
        None | Some("") => {
            diags.error(format!("{path}.name"), format!("every {what} needs a name"));
            None
        }
        Some(n) if n.chars().any(|c| c == '/' || c == '+' || c == '#' || c.is_whitespace() || c.is_control()) => {
            diags.error(
                format!("{path}.name"),
                format!("`{n}` contains a space, '/', '+' or '#'; names become MQTT topic levels and series tags, use letters, digits, '-', '_' or '.'"),
            );
            None
        }
        Some(n) => Some(n.to_string()),
    }
}

/// Names joined for a message, or "none".
pub fn or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// A size in bytes as a person reads it.
pub fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").unwrap_err().0.contains("unknown size unit"));
    }
}

//! Collected configuration problems. Validation never stops at the first one: every
//! problem is pushed here with its path (`devices[3].unit`) and a sentence a user can act
//! on, and the caller decides what is fatal.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

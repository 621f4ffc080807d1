//! Text from outside — a device name in a CSV row, an acknowledger's name, a receiver's
//! error page — made safe where it is shown: bounded in length, with control characters
//! (newlines, ESC sequences that repaint a terminal) written as escapes, and spreadsheet
//! cells that would start a formula neutralised. A leaf: it knows nothing of where the
//! text came from.

/// `s` cut to `max` characters (an ellipsis says it was cut), every control character
/// written as `\u{…}` (newlines and tabs as `\n`, `\t`): one line, nothing a terminal
/// acts on.
pub fn shown(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 8));
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// The longest name of a person kept (who acknowledges, who corrects).
pub const NAME_MAX: usize = 100;

/// Why a name or a reason typed by a user is refused before it is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} is {len} characters long; at most {max} are kept")]
    TooLong { what: &'static str, len: usize, max: usize },
    #[error("{what} contains a control character (a newline, an escape sequence); write it on one line")]
    Control { what: &'static str },
}

/// Checks a name or a reason a user types (who acknowledges, who corrects and why)
/// before it is stored: not empty, at most `max` characters, one line without control
/// characters.
pub fn typed<'a>(what: &'static str, s: &'a str, max: usize) -> Result<&'a str, Refused> {
    let t = s.trim();
    let len = t.chars().count();
    if len == 0 {
        Err(Refused::Empty { what })
    } else if len > max {
        Err(Refused::TooLong { what, len, max })
    } else if t.chars().any(char::is_control) {
        Err(Refused::Control { what })
    } else {
        Ok(t)
    }
}

/// A CSV or spreadsheet cell that a spreadsheet would run as a formula (`=`, `+`, `-`,
/// `@`, or a tab or carriage return before one) gets a leading `'`, which spreadsheets
/// show as text. Numbers are left alone: `-3.5` is a value, not a formula.
pub fn cell(s: &str) -> std::borrow::Cow<'_, str> {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.trim().parse::<f64>().is_err();
    if risky {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_text_is_one_bounded_line() {
        assert_eq!(shown("ops\n\x1b[2Jroot", 100), "ops\\n\\u{1b}[2Jroot");
        assert_eq!(shown("张工", 100), "张工");
        assert_eq!(shown(&"x".repeat(1_000_000), 64).chars().count(), 65);
        assert_eq!(shown("abc", 2), "ab…");
    }

    #[test]
    fn typed_names_are_one_bounded_line() {
        assert_eq!(typed("who", " 王芳 ", 100), Ok("王芳"));
        assert!(matches!(typed("who", "  ", 100), Err(Refused::Empty { .. })));
        assert!(matches!(typed("who", &"x".repeat(60_000), 100), Err(Refused::TooLong { len: 60_000, .. })));
        assert!(matches!(typed("who", "ops\n\x1b[2Jroot", 100), Err(Refused::Control { .. })));
    }

    #[test]
    fn formulas_become_text_and_numbers_stay_numbers() {
        assert_eq!(cell("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("+1+cmd|' /C calc'!A0"), "'+1+cmd|' /C calc'!A0");
        assert_eq!(cell("-3.5"), "-3.5");
        assert_eq!(cell("+12"), "+12");
        assert_eq!(cell("张工"), "张工");
    }
}

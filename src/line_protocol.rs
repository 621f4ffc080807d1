//! InfluxDB line protocol, written in one place: the readings, the alert events and the
//! ledger measurement all go through [`Line`], so escaping cannot drift between them.
//!
//! Escaping follows the protocol: in measurement names `,` and space; in tag keys, tag
//! values and field keys `,`, `=`, space and `\`; in string field values `"` and `\`. A
//! newline ends a line whatever precedes it, so it is written as the two characters `\n`
//! everywhere.

use std::fmt::Write as _;

fn escape(s: &str, specials: &[char], out: &mut String) {
    for c in s.chars() {
        if c == '\n' {
            out.push_str("\\n");
            continue;
        }
        if specials.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Builds one line: `measurement,tag=v field=v ts`. Empty tag values are left out (the
/// protocol does not allow them). Non-finite float fields are left out (it has no NaN).
pub struct Line<'a> {
    out: &'a mut String,
    fields: usize,
}

impl<'a> Line<'a> {
    pub fn new(out: &'a mut String, measurement: &str) -> Line<'a> {
        escape(measurement, &[',', ' ', '\\'], out);
        Line { out, fields: 0 }
    }

    pub fn tag(self, key: &str, value: &str) -> Line<'a> {
        if !value.is_empty() {
            self.out.push(',');
            escape(key, &[',', '=', ' ', '\\'], self.out);
            self.out.push('=');
            escape(value, &[',', '=', ' ', '\\'], self.out);
        }
        self
    }

    fn key(&mut self, key: &str) {
        self.out.push(if self.fields == 0 { ' ' } else { ',' });
        escape(key, &[',', '=', ' ', '\\'], self.out);
        self.out.push('=');
        self.fields += 1;
    }

    /// A float field (always written with a decimal point or exponent, so InfluxDB never
    /// types it as an integer).
    pub fn float(mut self, key: &str, value: f64) -> Line<'a> {
        if value.is_finite() {
            self.key(key);
            let _ = write!(self.out, "{value:?}");
        }
        self
    }

    pub fn int(mut self, key: &str, value: i64) -> Line<'a> {
        self.key(key);
        let _ = write!(self.out, "{value}i");
        self
    }

    pub fn string(mut self, key: &str, value: &str) -> Line<'a> {
        self.key(key);
        self.out.push('"');
        escape(value, &['"', '\\'], self.out);
        self.out.push('"');
        self
    }

    /// Ends the line with its timestamp (in the unit the write uses) and a newline.
    pub fn at(self, ts: i128) {
        let _ = writeln!(self.out, " {ts}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_each_part_as_the_protocol_says() {
        let mut s = String::new();
        Line::new(&mut s, "m, x")
            .tag("site", "a b,c=d\\e")
            .tag("empty", "")
            .tag("zone", "line\nbreak")
            .float("value", 1.0)
            .float("nan", f64::NAN)
            .int("id", 7)
            .string("text", "say \"hi\" \\ \nbye")
            .at(42);
        assert_eq!(
            s,
            "m\\,\\ x,site=a\\ b\\,c\\=d\\\\e,zone=line\\nbreak value=1.0,id=7i,text=\"say \\\"hi\\\" \\\\ \\nbye\" 42\n"
        );
        assert_eq!(s.lines().count(), 1);
    }
}

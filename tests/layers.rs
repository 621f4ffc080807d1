//! tier: fast (needs nothing installed: `scripts/test-fast` runs it)
//!
//! The module map in `src/lib.rs` as a test: a module may import only from its own layer
//! or the layers below it, no source file is over 600 lines and no function over 120
//! (test code aside: tests compose the system from above, as the binary does).
//!
//! The layers, lowest first, are read from `src/lib.rs` itself (the `//! Layers:` list),
//! so the map and the check cannot drift apart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 120;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The layers as `src/lib.rs` states them: `//! Layers: a, b | c, d` (lowest first; `|`
/// parts are one layer's modules, `,` separates layers).
fn layers() -> BTreeMap<String, usize> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let line = lib
        .lines()
        .find_map(|l| l.strip_prefix("//! Layers: "))
        .expect("src/lib.rs states its layers on a `//! Layers: …` line");
    let mut out = BTreeMap::new();
    for (i, layer) in line.trim_end_matches('.').split(',').enumerate() {
        for m in layer.split('|') {
            out.insert(m.trim().trim_matches('`').to_string(), i);
        }
    }
    out
}

/// A file's module path (`http::config` for `src/http/config.rs`, `http` for
/// `src/http/mod.rs`).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).ok()?;
    let mut parts: Vec<String> =
        rel.components().map(|c| c.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    Some(parts.join("::"))
}

/// The layer node of a module path: the longest entry of the map it starts with (a
/// component's configuration types may sit lower than its running part).
fn node_of<'l>(layers: &'l BTreeMap<String, usize>, path: &str) -> Option<(&'l str, usize)> {
    layers
        .iter()
        .filter(|(k, _)| path == k.as_str() || path.starts_with(&format!("{k}::")))
        .max_by_key(|(k, _)| k.len())
        .map(|(k, v)| (k.as_str(), *v))
}

/// Whether a file is test code as a whole (`tests.rs`, `tests/…`).
fn is_test_file(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "tests") || path.file_stem().is_some_and(|s| s == "tests")
}

/// The lines of a file that are not test code: everything before its `#[cfg(test)]`
/// module (which the style puts last).
fn production_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        out.push((i + 1, line));
    }
    out
}

/// The crate modules a line names (`crate::x`, and `crate::{x, y::…}`).
fn crate_refs(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + 7..];
        if let Some(group) = after.strip_prefix('{') {
            // names at the group's top level
            let mut depth = 0;
            let mut name = String::new();
            let mut at_start = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        at_start = true;
                        if !name.is_empty() {
                            out.push(std::mem::take(&mut name));
                        }
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 && at_start {
                    if c.is_alphanumeric() || c == '_' || c == ':' {
                        name.push(c);
                    } else if !name.is_empty() {
                        at_start = false;
                        out.push(std::mem::take(&mut name));
                    }
                }
            }
            if !name.is_empty() {
                out.push(name);
            }
        } else {
            let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
        rest = after;
    }
    out.into_iter().map(|n| n.trim_end_matches(':').to_string()).collect()
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let layers = layers();
    let mut all = Vec::new();
    files(&src(), &mut all);
    let mut upward = Vec::new();
    for f in &all {
        let Some(path) = module_of(f) else { continue };
        if path == "lib" || path == "main" || is_test_file(f) {
            continue;
        }
        let Some((module, mine)) = node_of(&layers, &path) else {
            upward.push(format!("{}: module `{path}` is not in the lib.rs layers", f.display()));
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in production_lines(&text) {
            for r in crate_refs(line) {
                match node_of(&layers, &r) {
                    Some((node, theirs)) if theirs > mine => upward.push(format!(
                        "{}:{n}: `{module}` (layer {mine}) imports `{node}` (layer {theirs}): {}",
                        f.display(),
                        line.trim()
                    )),
                    Some(_) => {}
                    None => upward.push(format!("{}:{n}: `crate::{r}` is not in the lib.rs layers", f.display())),
                }
            }
        }
    }
    assert!(upward.is_empty(), "imports against the layers:\n{}", upward.join("\n"));
}

#[test]
fn the_layer_reader_sees_grouped_imports() {
    assert_eq!(
        crate_refs("use crate::{http, modbus::config::{Bus, Device}, store};"),
        ["http", "modbus::config", "store"]
    );
    assert_eq!(crate_refs("    let x = crate::ledger::book::f(); // crate::cli"), ["ledger::book::f"]);
    let layers: BTreeMap<String, usize> =
        [("http".to_string(), 5), ("http::config".to_string(), 1)].into_iter().collect();
    assert_eq!(node_of(&layers, "http::config::HttpConfig"), Some(("http::config", 1)));
    assert_eq!(node_of(&layers, "http::page"), Some(("http", 5)));
    assert_eq!(node_of(&layers, "httpx"), None);
}

/// A line's characters outside string and char literals and comments (a brace in
/// `"{x}"` or `'{'` is no block).
fn code_chars(line: &str) -> Vec<char> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'/') => break,
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
            }
            '\'' if chars.get(i + 2) == Some(&'\'') => i += 2,
            '\'' if chars.get(i + 1) == Some(&'\\') => {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Where each function starts and how many lines it has, by brace counting from a line
/// that opens a `fn`.
fn functions(lines: &[(usize, &str)]) -> Vec<(usize, String, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (n, line) = lines[i];
        let t = line.trim_start();
        let is_fn = ["fn ", "pub fn ", "pub(crate) fn ", "pub(super) fn ", "async fn ", "pub async fn ", "const fn "]
            .iter()
            .any(|p| t.starts_with(p));
        if !is_fn {
            i += 1;
            continue;
        }
        let name: String =
            t.split("fn ").nth(1).unwrap_or("").chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let mut depth = 0i32;
        let mut opened = false;
        let mut j = i;
        while j < lines.len() {
            for c in code_chars(lines[j].1) {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened && depth == 0 => break,
                    _ => {}
                }
            }
            if (opened && depth <= 0) || (!opened && lines[j].1.trim_end().ends_with(';')) {
                break;
            }
            j += 1;
        }
        out.push((n, name, j - i + 1));
        i += 1;
    }
    out
}

#[test]
fn no_source_file_over_600_lines_and_no_function_over_120() {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let mut over = Vec::new();
    for f in all.iter().filter(|f| !is_test_file(f)) {
        let rel = f.strip_prefix(src()).unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        let lines = production_lines(&text);
        if lines.len() > MAX_FILE_LINES {
            over.push(format!("src/{rel}: {} lines (at most {MAX_FILE_LINES})", lines.len()));
        }
        for (n, name, len) in functions(&lines) {
            if len > MAX_FN_LINES {
                over.push(format!("src/{rel}:{n}: fn {name} has {len} lines (at most {MAX_FN_LINES})"));
            }
        }
    }
    assert!(over.is_empty(), "too long:\n{}", over.join("\n"));
}

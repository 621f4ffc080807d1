//! Test harness: real outside parts, started per test on free loopback ports or fresh
//! pseudo-terminals, and stopped when the handle drops. A part that is missing fails the
//! test with a message that says how to get it — never a silent skip.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter that has pymodbus: `PUMPHOUSE_TEST_PYTHON`, or the project's
/// `.venv` made by `scripts/test`.
pub fn python() -> PathBuf {
    let candidate = std::env::var_os("PUMPHOUSE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join(".venv/bin/python"));
    let ok = Command::new(&candidate)
        .args(["-c", "import pymodbus, serial"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "pymodbus is needed for this test and was not found at {}: run `scripts/test` (it creates .venv with pymodbus and pyserial), or set PUMPHOUSE_TEST_PYTHON to a Python that has them",
        candidate.display()
    );
    candidate
}

pub fn require_socat() {
    let ok = Command::new("socat").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    assert!(
        ok,
        "socat is needed for the serial-line tests: run `scripts/test` (it installs it) or `apt-get install socat`"
    );
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A file for a child's stderr (a pipe nobody reads could fill up and stall it).
fn stderr_file() -> (Stdio, PathBuf) {
    let f = tempfile::Builder::new().prefix("pumphouse-test-").suffix(".log").tempfile().expect("temp file");
    let (file, path) = f.keep().expect("keep temp file");
    (Stdio::from(file), path)
}

/// Waits for a line on the child's stdout that starts with `prefix`; returns it.
fn wait_line(child: &mut Child, log: &Path, prefix: &str, timeout: Duration) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    let prefix_owned = prefix.to_string();
    std::thread::spawn(move || {
        let reader = BufReader::new(stdout);
        let mut sent = false;
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if !sent && line.starts_with(&prefix_owned) {
                let _ = tx.send(line);
                sent = true;
            }
        }
    });
    match rx.recv_timeout(timeout) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(log).unwrap_or_default();
            panic!("process did not print `{prefix}` within {timeout:?}; stderr:\n{err}");
        }
    }
}

/// A pymodbus device served over TCP (`tcp` or `rtu-over-tcp` framing). Returns the
/// process and its port.
pub fn pymodbus_tcp(spec: &serde_json::Value) -> (Proc, u16) {
    let (err, log) = stderr_file();
    let mut child = Command::new(python())
        .arg(manifest_dir().join("tests/support/modbus_device.py"))
        .arg(spec.to_string())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .expect("start the pymodbus device");
    let line = wait_line(&mut child, &log, "READY", Duration::from_secs(30));
    let port = line.trim_start_matches("READY").trim().parse().expect("port after READY");
    (Proc(child), port)
}

/// A pymodbus RTU device on a serial line (`spec["tty"]` set by the caller).
pub fn pymodbus_serial(spec: &serde_json::Value) -> Proc {
    let (err, log) = stderr_file();
    let mut child = Command::new(python())
        .arg(manifest_dir().join("tests/support/modbus_device.py"))
        .arg(spec.to_string())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .expect("start the pymodbus serial device");
    wait_line(&mut child, &log, "READY", Duration::from_secs(30));
    Proc(child)
}

/// A virtual null-modem cable: two linked pseudo-terminals made by socat.
pub struct SerialPair {
    pub proc: Proc,
    pub a: PathBuf,
    pub b: PathBuf,
}

pub fn serial_pair(dir: &Path) -> SerialPair {
    require_socat();
    let a = dir.join("ttyA");
    let b = dir.join("ttyB");
    let child = Command::new("socat")
        .arg(format!("pty,raw,echo=0,link={}", a.display()))
        .arg(format!("pty,raw,echo=0,link={}", b.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start socat");
    let started = Instant::now();
    while !(a.exists() && b.exists()) {
        assert!(started.elapsed() < Duration::from_secs(10), "socat did not create the pty pair");
        std::thread::sleep(Duration::from_millis(20));
    }
    SerialPair { proc: Proc(child), a, b }
}

/// Runs the `pumphouse` binary with `args`; returns (exit code, stdout, stderr).
pub fn pumphouse(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pumphouse")).args(args).output().expect("run pumphouse");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

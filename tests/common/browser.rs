//! A real browser for page tests: Debian's headless Chromium driven over the DevTools
//! protocol (a WebSocket per page): navigate, evaluate JavaScript, screenshot, download.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub struct Browser {
    proc: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

pub struct Page {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next: u64,
}

fn http(port: u16, method: &str, path: &str) -> Option<String> {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().ok()?;
    let url = format!("http://127.0.0.1:{port}{path}");
    let req = if method == "PUT" { client.put(url) } else { client.get(url) };
    req.send().ok()?.text().ok()
}

impl Browser {
    pub fn start() -> Browser {
        let bin = super::require("chromium", "chromium");
        let profile = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let proc = Command::new(bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,1000",
                &format!("--remote-debugging-port={port}"),
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while http(port, "GET", "/json/version").is_none() {
            assert!(started.elapsed() < Duration::from_secs(30), "chromium did not open its DevTools port");
            std::thread::sleep(Duration::from_millis(100));
        }
        Browser { proc, port, _profile: profile }
    }

    pub fn page(&self) -> Page {
        let body = http(self.port, "PUT", "/json/new?about:blank").expect("a new page");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let url = v["webSocketDebuggerUrl"].as_str().expect("webSocketDebuggerUrl").to_string();
        let (ws, _) = tungstenite::connect(url).expect("connect to the page");
        let mut p = Page { ws, next: 1 };
        p.call("Page.enable", json!({}));
        p.call("Runtime.enable", json!({}));
        p
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

impl Page {
    /// Sends a DevTools command and waits for its answer (events in between are skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.ws.send(Message::text(json!({"id": id, "method": method, "params": params}).to_string())).unwrap();
        loop {
            let msg = self.ws.read().expect("DevTools answer");
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates an expression in the page and returns its value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true, "awaitPromise": true}));
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Opens `url` and waits until the document is loaded.
    pub fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_loaded(url);
    }

    pub fn wait_loaded(&mut self, what: &str) {
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(100));
        while self.eval("document.readyState") != "complete" {
            assert!(started.elapsed() < Duration::from_secs(60), "{what} did not load");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every figure the page names with `data-k`, as shown.
    pub fn figures(&mut self) -> std::collections::HashMap<String, String> {
        let v = self.eval(
            "JSON.stringify(Object.fromEntries([...document.querySelectorAll('[data-k]')].map(e => [e.dataset.k, e.textContent.trim()])))",
        );
        serde_json::from_str(v.as_str().unwrap_or("{}")).unwrap()
    }

    pub fn screenshot(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": false}));
        let bytes = base64_decode(r["data"].as_str().unwrap_or(""));
        std::fs::write(path, bytes).unwrap();
    }

    pub fn allow_downloads(&mut self, dir: &Path) {
        self.call("Page.setDownloadBehavior", json!({"behavior": "allow", "downloadPath": dir.display().to_string()}));
    }
}

/// Standard base64 (what DevTools sends screenshots in).
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

//! The connection loop: what `axum::serve` does, with the bounds a box on an open
//! network needs.
//!
//! - **Header timeout.** A client has [`HEADER_TIMEOUT`] to send a request's headers,
//!   and the same to start the next one on a kept-alive connection: a slowloris holds a
//!   connection for seconds, not for ever.
//! - **Request timeout.** A request is answered within [`REQUEST_TIMEOUT`] or gets 503
//!   (`timeout` middleware in `router`).
//! - **Connection limit.** At most `max` connections are served; the limit is lowered at
//!   start to what the open-file limit allows. At the limit the *oldest* connection is
//!   asked to close (a request in flight finishes first) and the new one is served: idle
//!   connections cannot lock `/healthz` out.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take to be answered (a ledger may wait 30 s for its slot).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// File descriptors kept for everything but HTTP (the store, sinks, buses, logs).
const RESERVED_FILES: u64 = 64;

/// The connections served at once: `wanted`, lowered to half of what the open-file
/// limit leaves after [`RESERVED_FILES`] (at least 8).
fn connection_limit(wanted: usize) -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX);
    let room = soft.saturating_sub(RESERVED_FILES) / 2;
    let limit = wanted.min(usize::try_from(room).unwrap_or(usize::MAX)).max(8);
    if limit < wanted {
        tracing::warn!(
            wanted,
            limit,
            open_files = soft,
            "the open-file limit allows fewer HTTP connections than configured; raise LimitNOFILE"
        );
    }
    limit
}

/// Open connections by age (ids grow), each with the token that asks it to close.
#[derive(Default)]
struct Open {
    next: u64,
    by_age: BTreeMap<u64, CancellationToken>,
}

/// What the loop allows a client.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl Bounds {
    /// `max_connections` as configured, lowered to what the open-file limit allows.
    pub fn for_this_process(max_connections: usize) -> Bounds {
        Bounds { max_connections: connection_limit(max_connections), header_timeout: HEADER_TIMEOUT }
    }
}

/// Serves `app` on `listener` until `cancel`, then lets requests in flight finish (up
/// to 5 s).
pub async fn serve(listener: Arc<TcpListener>, app: axum::Router, bounds: Bounds, cancel: CancellationToken) {
    let open = Arc::new(Mutex::new(Open::default()));
    let tracker = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    // out of file descriptors, or the peer gone before accept: wait a
                    // moment rather than spin
                    tracing::warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (id, close) = {
            let mut o = open.lock().unwrap_or_else(|e| e.into_inner());
            if o.by_age.len() >= bounds.max_connections {
                if let Some((_, oldest)) = o.by_age.pop_first() {
                    oldest.cancel();
                }
            }
            let id = o.next;
            o.next += 1;
            let close = cancel.child_token();
            o.by_age.insert(id, close.clone());
            (id, close)
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let open = open.clone();
        tracker.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(bounds.header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = close.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(REQUEST_TIMEOUT, conn).await;
                }
            }
            open.lock().unwrap_or_else(|e| e.into_inner()).by_age.remove(&id);
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
}

/// Middleware: a request not answered within [`REQUEST_TIMEOUT`] gets 503.
pub async fn timeout(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "the request took too long; try again\n").into_response()
        }
    }
}

/// Middleware: headers every answer carries. The page is meant to be opened on its own
/// (no framing: clickjacking), types are not sniffed, and scripts and styles come only
/// from the gateway itself.
pub async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    ));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

//! `pumphouse group`: the same binary in a central mode, for a university with several
//! campuses. It subscribes to every campus gateway's group feed
//! ([`crate::gateway::feed`]) on a broker (a cluster: see `docs/group.md`), keeps what it
//! receives in its own store, and serves the group's figures: each site's three targets
//! and money, and their sums — never a smaller sum for a site that has not reported.
//!
//! - [`config`]: `group.toml` (the sites it expects, the broker, its store, its page);
//! - [`store`]: the documents received, one row per topic, replaced by newer ones;
//! - [`figures`]: the group's month from the sites' documents (pure), and [`export`]
//!   its workbook;
//! - `subscribe`: the broker session (acknowledged only after the store has the document);
//! - `http`: the API and the page.

pub mod config;
pub mod export;
pub mod figures;
mod http;
pub mod store;
mod subscribe;

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

/// Runs the group service until Ctrl-C.
pub async fn run(cfg: config::GroupConfig) -> anyhow::Result<()> {
    let store =
        Arc::new(store::GroupStore::open(&cfg.store).with_context(|| format!("cannot open {}", cfg.store.display()))?);
    let cfg = Arc::new(cfg);
    let cancel = CancellationToken::new();
    let sub = tokio::spawn(subscribe::run(cfg.clone(), store.clone(), cancel.clone()));
    let listener =
        tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("cannot listen on {}", cfg.listen))?;
    tracing::info!(listen = %cfg.listen, sites = cfg.sites.len(), "group service");
    let app = http::routes(http::State { cfg: cfg.clone(), store: store.clone() });
    let k = cancel.clone();
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move { k.cancelled().await });
    tokio::select! {
        r = serve => r.context("the group page")?,
        _ = tokio::signal::ctrl_c() => {}
    }
    cancel.cancel();
    let _ = sub.await;
    Ok(())
}

//! Periodic jobs of the running gateway: freezing closed ledger months then pruning the
//! store, publishing the ledger to InfluxDB, and the alert passes. Each runs its store
//! work on the blocking pool, never on an async worker.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use crate::alerts::{deliver, evaluate};
use crate::config::Config;
use crate::ledger::{book, export, month::Depth};
use crate::model::Month;
use crate::store::Store;

/// Runs `pass` every `every` until cancelled (the first pass at once).
pub(super) async fn every<F, Fut>(every: Duration, cancel: CancellationToken, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => pass().await,
        }
    }
}

/// Whether the wall clock is set; jobs that read "now" (which month, which nights) wait
/// for it. Pruning does not: the store's bounds hold whatever the clock says.
pub(super) fn clock_set(now: chrono::DateTime<Utc>, job: &str) -> bool {
    let set = crate::clock::is_set(now);
    if !set {
        tracing::warn!(clock = %now, job, "the clock is not set (earlier than this build): skipped");
    }
    set
}

/// Closed months are frozen first: the ledger must never depend on readings the pruning
/// is about to drop. Then the age and size limits — the size pass never touches the
/// oldest month not frozen yet (nor anything after it), so a freeze that fails holds back
/// only its own month's pruning.
pub fn prune_once(cfg: &Config, store: &Store, now: chrono::DateTime<Utc>, consumers: &[&str]) {
    let spec = cfg.ledger_spec();
    if let Err(e) = book::freeze_closed_months(&spec, store, now) {
        tracing::error!(error = %e, "freezing closed ledger months failed; their readings are kept");
    }
    // when the months cannot be read, nothing is pruned for size
    let keep = match book::keep_from(&spec, store) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "cannot tell which ledger months are frozen; no pruning for size");
            Some(chrono::DateTime::<Utc>::MIN_UTC)
        }
    };
    if let Err(e) = store.prune(now, consumers, keep) {
        tracing::error!(error = %e, "pruning the store failed");
    }
}

pub(super) async fn prune(cfg: Arc<Config>, store: Arc<Store>, consumers: Arc<Vec<String>>) {
    let done = tokio::task::spawn_blocking(move || {
        let names: Vec<&str> = consumers.iter().map(String::as_str).collect();
        prune_once(&cfg, &store, Utc::now(), &names);
    })
    .await;
    if let Err(e) = done {
        tracing::error!(error = %e, "the prune pass ended abnormally");
    }
}

/// Computes this month's ledger (and last month's in its first three days) and writes it
/// to every InfluxDB as the `ledger` measurement.
pub(super) async fn publish_ledgers(cfg: Arc<Config>, store: Arc<Store>) {
    let now = Utc::now();
    if !clock_set(now, "publishing the ledger") {
        return;
    }
    let Some(this) = Month::containing(now, cfg.site.timezone) else { return };
    let mut months = vec![this];
    if let Some(last) = Month::containing(now - TimeDelta::days(3), cfg.site.timezone).filter(|m| *m != this) {
        months.push(last);
    }
    for m in months {
        let (c, s) = (cfg.clone(), store.clone());
        let computed =
            tokio::task::spawn_blocking(move || book::month_ledger(&c.ledger_spec(), &s, m, Depth::Month)).await;
        let lines = match computed {
            Ok(Ok(l)) => export::influx_lines(&l),
            Ok(Err(e)) => {
                tracing::error!(month = %m, error = %e, "cannot compute the ledger to publish");
                continue;
            }
            Err(e) => {
                tracing::error!(month = %m, error = %e, "the ledger computation ended abnormally");
                continue;
            }
        };
        for i in &cfg.influxdb {
            if let Err(e) = crate::sinks::influx::write_once(i, &lines).await {
                tracing::warn!(sink = %crate::sinks::influx::consumer_name(i), month = %m, error = %e, "cannot write the ledger to InfluxDB; next try in an hour");
            }
        }
    }
}

/// One pass of the alert task: the rules over the last three days, then delivery of every
/// change not yet confirmed by MQTT, the webhook and InfluxDB.
pub(super) async fn alert_pass(cfg: Arc<Config>, store: Arc<Store>, health: Arc<deliver::DeliveryHealth>) {
    let now = Utc::now();
    if !clock_set(now, "the alert pass") {
        return;
    }
    let (c, s) = (cfg.clone(), store.clone());
    let evaluated =
        tokio::task::spawn_blocking(move || evaluate::record(&c.alert_spec(), &s, now - TimeDelta::days(3), now)).await;
    match evaluated {
        Ok(Ok(changed)) => {
            for a in &changed {
                let evidence = crate::alerts::said::evidence(a, cfg.site.voice());
                tracing::warn!(alert = a.id, rule = %a.rule, zone = %a.zone, subject = %a.subject, state = deliver::state(a), evidence = %evidence, "alert");
            }
        }
        Ok(Err(e)) => tracing::error!(error = %e, "evaluating alerts failed"),
        Err(e) => tracing::error!(error = %e, "the alert evaluation ended abnormally"),
    }
    let site = deliver::Speaker { site: &cfg.site.name, voice: cfg.site.voice(), page: cfg.alerts.page_url.as_deref() };
    if let Some(m) = &cfg.mqtt {
        deliver::mqtt(&store, site, m, &health).await;
    }
    if let Some(url) = &cfg.alerts.webhook_url {
        let parent_of = |z: &str| cfg.topology.zone(z).and_then(|z| z.parent.clone());
        deliver::webhook(&store, site, url, cfg.alerts.webhook_format, cfg.alerts.evaluate_every, &health, &parent_of)
            .await;
    }
    if !cfg.influxdb.is_empty() {
        deliver::influx(&store, site, &cfg.influxdb, &health).await;
    }
}

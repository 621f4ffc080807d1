//! The group's broker session: a persistent session (clean_session off) subscribed to
//! `{prefix}/+/group/v1/#` at QoS 1, subscribed again on every connection (a repeated
//! SUBSCRIBE makes the broker send the retained documents again: a group whose store was
//! lost gets everything back), and every document acknowledged only after the store has
//! committed it (manual acks): a crash between the two gets it again.
//!
//! A refused subscription (a clustered broker electing its leaders after a node died
//! answers "failure" for a while) is tried again every few seconds, not taken as the end.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{Event, Incoming, QoS, SubscribeReasonCode};
use tokio_util::sync::CancellationToken;

use super::config::GroupConfig;
use super::store::GroupStore;

/// `{prefix}/{site}/group/v1/{kind}/{key}` → (site, kind, key).
pub fn parse_topic<'t>(prefix: &str, topic: &'t str) -> Option<(&'t str, &'t str, &'t str)> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let mut it = rest.splitn(5, '/');
    let (site, group, version, kind, key) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    (group == "group" && version == "v1" && !site.is_empty() && !key.is_empty()).then_some((site, kind, key))
}

/// The options of the group's one session, on broker `b`: persistent, acknowledged by hand.
fn session(b: &crate::sinks::mqtt::config::MqttConfig, id: &str) -> std::io::Result<rumqttc::MqttOptions> {
    let mut o = crate::sinks::mqtt::client_options(b, id.to_string())?;
    o.set_clean_session(false);
    o.set_manual_acks(true);
    Ok(o)
}

/// Keeps one received document; false when the store could not (not to be acknowledged).
/// Documents of sites the group does not list, other topics and bodies that are not JSON
/// are dropped (acknowledged: sending them again would not help).
async fn keep(cfg: &GroupConfig, store: &Arc<GroupStore>, topic: &str, payload: &[u8]) -> bool {
    let Some((site, kind, key)) = parse_topic(&cfg.mqtt.prefix, topic) else { return true };
    if !cfg.sites.iter().any(|s| s == site) {
        return true;
    }
    let Some((body, v)) =
        std::str::from_utf8(payload).ok().and_then(|b| Some((b, serde_json::from_str::<serde_json::Value>(b).ok()?)))
    else {
        tracing::warn!(topic, "group: not JSON; dropped");
        return true;
    };
    // heard from when the site sent it: a retained document sent again on a new
    // subscription is not a new contact
    let at = v["published"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(|| chrono::Utc::now().timestamp_millis(), |t| t.timestamp_millis());
    let (s, site, kind, key, body) =
        (store.clone(), site.to_string(), kind.to_string(), key.to_string(), body.to_string());
    match tokio::task::spawn_blocking(move || s.put(&site, &kind, &key, &body, at)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::error!(error = %e, topic, "group: not kept; not acknowledged");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, topic, "group: not kept; not acknowledged");
            false
        }
    }
}

pub async fn run(cfg: Arc<GroupConfig>, store: Arc<GroupStore>, cancel: CancellationToken) {
    let filter = format!("{}/+/group/v1/#", cfg.mqtt.prefix);
    let opts = match session(&cfg.mqtt, &cfg.mqtt.client_id) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "group: cannot set up the broker connection");
            return;
        }
    };
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 256);
    // the broker in use: [mqtt] url, then each of [group] also in turn after a failure
    let mut node = 0;
    loop {
        let event = tokio::select! {
            () = cancel.cancelled() => break,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                tracing::info!(filter, "group: connected; subscribing");
                if let Err(e) = client.try_subscribe(&filter, QoS::AtLeastOnce) {
                    tracing::warn!(error = %e, "group: cannot subscribe");
                }
            }
            Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                if ack.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                    tracing::warn!("group: the broker refused the subscription; trying again in 3 s");
                    let (c, f, k) = (client.clone(), filter.clone(), cancel.clone());
                    tokio::spawn(async move {
                        tokio::select! {
                            () = k.cancelled() => {}
                            () = tokio::time::sleep(Duration::from_secs(3)) => { let _ = c.try_subscribe(&f, QoS::AtLeastOnce); }
                        }
                    });
                }
            }
            Ok(Event::Incoming(Incoming::Publish(p))) => {
                let topic = p.topic.clone();
                let kept = keep(&cfg, &store, &topic, &p.payload).await;
                if kept {
                    if let Err(e) = client.try_ack(&p) {
                        tracing::warn!(error = %e, topic, "group: cannot acknowledge; the broker sends it again");
                    }
                } else {
                    // the broker sends an unacknowledged message again only on a new
                    // connection: make one
                    let _ = client.try_disconnect();
                }
            }
            Ok(_) => {}
            Err(e) => {
                if cfg.brokers.len() > 1 {
                    node = (node + 1) % cfg.brokers.len();
                    let b = &cfg.brokers[node];
                    match session(b, &cfg.mqtt.client_id) {
                        Ok(o) => eventloop.mqtt_options = o,
                        Err(e) => tracing::warn!(error = %e, "group: cannot set up the next broker"),
                    }
                    tracing::warn!(error = %e, next = %format!("{}:{}", b.host, b.port), "group: broker connection lost; trying the next node");
                } else {
                    tracing::warn!(error = %e, "group: broker connection lost; reconnecting");
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    let _ = client.try_disconnect();
}

#[cfg(test)]
mod tests {
    #[test]
    fn topics_name_site_kind_and_key() {
        assert_eq!(super::parse_topic("ph", "ph/north/group/v1/month/2026-10"), Some(("north", "month", "2026-10")));
        assert_eq!(super::parse_topic("ph", "ph/north/group/v1/alert/17"), Some(("north", "alert", "17")));
        assert_eq!(super::parse_topic("ph", "ph/north/ledger/2026-10"), None);
        assert_eq!(super::parse_topic("ph", "other/north/group/v1/month/x"), None);
        assert_eq!(super::parse_topic("ph", "ph/north/group/v2/month/x"), None);
    }
}

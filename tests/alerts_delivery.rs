//! Alert changes reach a real Mosquitto, a webhook and a real InfluxDB, and a refusal
//! is retried, not lost.

mod common;

use common::pumphouse;
use serde_json::Value;

const CONFIG: &str = include_str!("fixtures/alerts-two-zones.toml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_mqtt_the_webhook_and_influxdb_after_a_refusal() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let broker = common::mosquitto(d, "allow_anonymous true");
    let influx = common::influx1(d, "meters");
    // a webhook that answers a server error, then a robot's refusal (HTTP 200 with
    // errcode ≠ 0, as WeCom answers a rate limit), then what it answers when it takes one
    let (hook_port, bodies) = common::webhook(|n| match n {
        1 => ("500 Internal Server Error", ""),
        2 => ("200 OK", r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#),
        _ => ("200 OK", r#"{"errcode":0,"errmsg":"ok"}"#),
    });
    let cfg = d.join("p.toml");
    // a Chinese site: the robot, MQTT and InfluxDB carry the alert in Chinese
    let mut text =
        CONFIG.replace("STORE", &d.join("s.db").to_string_lossy()).replace("language = \"en\"", "language = \"zh\"");
    text.push_str(&format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n[[influxdb]]\nurl = \"http://127.0.0.1:{}\"\ndatabase = \"meters\"\n[http]\nlisten = \"off\"\n\
         [alerts]\nevaluate_every = \"1s\"\nwebhook_url = \"http://127.0.0.1:{hook_port}/robot\"\nwebhook_format = \"wecom\"\n",
        broker.port, influx.port
    ));
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let data = d.join("history.csv");
    std::fs::write(&data, common::two_zone_history(2.0)).unwrap();
    let (code, _, err) = pumphouse(&["import", "-c", &cfg, "--csv", &data.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");

    // a subscriber for the retained alert state
    let received = Arc::new(Mutex::new(Vec::<(String, String, bool)>::new()));
    let got = received.clone();
    let (client, mut eventloop) =
        rumqttc::AsyncClient::new(rumqttc::MqttOptions::new("alert-watch", "127.0.0.1", broker.port), 10);
    let sub = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Incoming::ConnAck(_))) => {
                    let _ = client.subscribe("pumphouse/s/alerts/#", rumqttc::QoS::AtLeastOnce).await;
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Incoming::Publish(p))) => {
                    got.lock().unwrap().push((
                        p.topic.clone(),
                        String::from_utf8_lossy(&p.payload).into_owned(),
                        p.retain,
                    ));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
    });
    let mut gw = common::gateway(std::path::Path::new(&cfg), &d.join("gw.log"));
    let started = std::time::Instant::now();
    loop {
        let done_hook = !bodies.lock().unwrap().is_empty();
        let done_mqtt = received.lock().unwrap().iter().any(|(t, _, _)| t == "pumphouse/s/alerts/leaky/night_flow");
        if done_hook && done_mqtt {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "alert not delivered: {}",
            std::fs::read_to_string(d.join("gw.log")).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // acknowledging is a change: delivered again
    let list = pumphouse(&["alerts", "-c", &cfg, "list", "--json", "--active"]).1;
    let id = serde_json::from_str::<Value>(list.lines().find(|l| l.contains("night_flow")).unwrap()).unwrap()["id"]
        .to_string();
    assert_eq!(pumphouse(&["alerts", "-c", &cfg, "ack", &id, "--by", "duty.engineer"]).0, 0);
    let started = std::time::Instant::now();
    while !received.lock().unwrap().iter().any(|(_, p, _)| p.contains("duty.engineer")) {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "the acknowledgement did not reach MQTT");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    common::terminate(&mut gw.0);
    sub.abort();
    let log = std::fs::read_to_string(d.join("gw.log")).unwrap_or_default();
    assert!(
        log.contains("errcode 45009 (api freq out of limit)"),
        "the robot's refusal is a retry with its reason:\n{log}"
    );
    let hook_body: Value = serde_json::from_str(&bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(hook_body["msgtype"], "markdown");
    let content = hook_body["markdown"]["content"].as_str().unwrap();
    // the duty engineer's message: what, where, since when (local time), the cost a day,
    // what to check first
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(lines[0], "### 【严重】漏损（夜间流量） · leaky", "{content}");
    // which signal raised it, its size in noise units and how soon such a leak is sure
    assert!(lines[1].starts_with("- 情况：本区水量平衡（进水减计量用水）夜间（23:00–06:00）比常值 "), "{content}");
    assert!(lines[1].contains("倍；这样大小的漏损") && lines[1].contains("必被发现"), "{content}");
    assert!(lines[1].contains("；估计每天损失约 48.0 m³（192.00 元/天）"), "{content}");
    assert_eq!(lines[2], "- 位置：leaky（s）", "{content}");
    assert!(lines[3].starts_with("- 开始：2026-01-21 01:00（已持续 "), "{content}");
    assert_eq!(lines[4], "- 损失：192.00 元/天", "{content}");
    assert!(lines[5].starts_with("- 先查：夜间巡查本分区"), "{content}");
    assert!(!content.contains("night"), "no English in a Chinese site's message: {content}");
    let msgs = received.lock().unwrap().clone();
    let (_, payload, retained) = msgs.iter().find(|(t, _, _)| t == "pumphouse/s/alerts/leaky/night_flow").unwrap();
    let v: Value = serde_json::from_str(payload).unwrap();
    assert_eq!(v["state"], "active");
    assert!(v["loss_m3_per_day"].as_f64().unwrap() > 40.0);
    let _ = retained;
    let q = common::text(
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/query", influx.port))
            .query(&[("db", "meters"), ("q", "SELECT state, evidence FROM alerts WHERE rule = 'night_flow'")]),
    )
    .await;
    assert!(q.contains("\"active\"") && q.contains("夜间（23:00–06:00）比常值"), "{q}");
}

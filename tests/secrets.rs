//! tier: fast (needs nothing installed: `scripts/test-fast` runs it)
//!
//! No secret leaves the gateway: not in `check`'s output, the logs, `/api/status`,
//! `/metrics`, error messages or a debug print of the configuration — with every receiver
//! unreachable, so that every error path that could quote a URL or a credential runs.

mod common;

use std::io::Read as _;

use common::pumphouse;

const CONFIG: &str = include_str!("fixtures/alerts-two-zones.toml");

const MQTT_PASSWORD: &str = "mqtt-Pa55word-7781";
const INFLUX_PASSWORD: &str = "influx-Url-Secret-4411";
const INFLUX_TOKEN: &str = "influx-V2-Token-9902";
const ROBOT_KEY: &str = "robot-Key-5c1d9e0aa7";
const HTTP_TOKEN: &str = "http-Token-0b7e3a91c2d4f6a8";

fn secrets() -> [&'static str; 5] {
    [MQTT_PASSWORD, INFLUX_PASSWORD, INFLUX_TOKEN, ROBOT_KEY, HTTP_TOKEN]
}

fn assert_clean(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(s), "{what} shows a secret ({s}):\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_output_logs_status_or_debug() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let closed = common::free_port(); // nothing listens here
    let http = common::free_port();
    let write = |name: &str, text: &str, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p.display().to_string()
    };
    // the MQTT password in a file every user can read: a warning, and still a secret
    let mqtt_pw = write("mqtt.pw", &format!("{MQTT_PASSWORD}\n"), 0o644);
    let http_token = write("http.token", HTTP_TOKEN, 0o600);
    let text = format!(
        "{}\n[mqtt]\nurl = \"mqtt://127.0.0.1:{closed}\"\nusername = \"gw\"\npassword_file = \"{mqtt_pw}\"\n\
         [[influxdb]]\nname = \"v1\"\nurl = \"http://admin:{INFLUX_PASSWORD}@127.0.0.1:{closed}\"\ndatabase = \"meters\"\ntimeout = \"1s\"\n\
         [[influxdb]]\nname = \"v2\"\napi = \"v2\"\nurl = \"http://127.0.0.1:{closed}\"\norg = \"o\"\nbucket = \"b\"\ntoken_env = \"TEST_INFLUX_TOKEN\"\ntimeout = \"1s\"\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\ntoken_file = \"{http_token}\"\nstall_after = \"1s\"\n\
         [alerts]\nevaluate_every = \"1s\"\nwebhook_url_env = \"TEST_WEBHOOK_URL\"\nwebhook_format = \"wecom\"\n",
        CONFIG.replace("STORE", &d.join("s.db").to_string_lossy())
    );
    // [alerts] is already in the fixture? then merge by appending only what is new
    let text = if CONFIG.contains("[alerts]") { text.replacen("[alerts]\n", "", 1) } else { text };
    let cfg = write("p.toml", &text, 0o600);
    let webhook = format!("http://127.0.0.1:{closed}/cgi-bin/webhook/send?key={ROBOT_KEY}");
    std::env::set_var("TEST_INFLUX_TOKEN", INFLUX_TOKEN);
    std::env::set_var("TEST_WEBHOOK_URL", &webhook);

    // history with a leak, so that there are alerts to deliver
    let data = d.join("history.csv");
    std::fs::write(&data, common::two_zone_history(2.0)).unwrap();
    let (code, out, err) = pumphouse(&["import", "-c", &cfg, "--csv", &data.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    assert_clean("import", &(out + &err));

    // check: a warning for the readable password file and for the URL credentials
    let (code, out, err) = pumphouse(&["check", "-c", &cfg]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("readable by every user"), "{err}");
    assert!(err.contains("the URL carries a user and password"), "{err}");
    assert_clean("check", &(out + &err));

    // a debug print of the whole configuration
    let (loaded, _) = pumphouse::config::load(std::path::Path::new(&cfg), pumphouse::config::Mode::Run).unwrap();
    assert_clean("Debug of the configuration", &format!("{loaded:?}"));
    let influx = &loaded.influxdb[0];
    assert_eq!(influx.url, format!("http://127.0.0.1:{closed}"), "credentials taken out of the URL");

    // the running gateway, every receiver down
    let log = d.join("gateway.log");
    let mut gw = std::process::Command::new(env!("CARGO_BIN_EXE_pumphouse"))
        .args(["run", "-c", &cfg])
        .env("PUMPHOUSE_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    common::wait_port(http, "pumphouse run");
    let get = |path: &str| {
        let url = format!("http://127.0.0.1:{http}{path}");
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    // wait until every alert destination has failed at least once
    let started = std::time::Instant::now();
    let status = loop {
        let status = get("/api/status").await;
        let v: serde_json::Value = serde_json::from_str(&status).unwrap();
        let errors = &v["alerts_delivery"]["errors"];
        if errors.get("webhook").is_some() && errors.get("influx").is_some() && errors.get("mqtt").is_some() {
            assert!(errors["webhook"].as_str().unwrap().contains("cannot reach the webhook"), "{status}");
            break status;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "destinations never failed: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_clean("/api/status", &status);
    assert_clean("/metrics", &get("/metrics").await);
    assert_clean("/healthz", &get("/healthz").await);
    assert_clean("/api/alerts", &get("/api/alerts").await);
    common::terminate(&mut gw);
    let mut logged = String::new();
    std::fs::File::open(&log).unwrap().read_to_string(&mut logged).unwrap();
    assert!(logged.contains("webhook did not take the alert"), "the failure paths ran:\n{logged}");
    assert!(logged.contains("cannot reach InfluxDB"), "the failure paths ran:\n{logged}");
    assert_clean("the gateway's log", &logged);
}

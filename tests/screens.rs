//! The utilities team's screens on a demo year: every Grafana dashboard's queries on a
//! real InfluxDB filled by `demo --influxdb`, and every page of the gateway in a real
//! browser (headless Chromium), its figures checked against the API's.

mod common;

use std::time::{Duration, Instant};

use pumphouse::model::Month;
use serde_json::Value;

/// The dashboards' queries with Grafana's macros and variables substituted.
fn substitute(q: &str) -> String {
    q.replace("$timeFilter", "time > now() - 800d")
        .replace("$__interval", "1h")
        .replace("/^$site$/", "/^demo-campus$/")
        .replace("/^$zone$/", "/^.*$/")
        .replace("/^$utility$/", "/^.*$/")
        .replace("$site", "demo-campus")
}

fn influx_query(port: u16, q: &str) -> Value {
    let url = format!("http://127.0.0.1:{port}/query");
    let body = reqwest::blocking::Client::new()
        .post(url)
        .form(&[("db", "pumphouse"), ("q", q), ("epoch", "s")])
        .send()
        .unwrap()
        .text()
        .unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// True when the answer holds at least one value that is not null.
fn has_data(v: &Value) -> bool {
    v["results"].as_array().into_iter().flatten().any(|r| {
        r["series"].as_array().into_iter().flatten().any(|s| {
            s["values"].as_array().into_iter().flatten().any(|row| {
                row.as_array().is_some_and(|cells| cells.iter().skip(1).any(|c| !c.is_null()))
                    || row.as_array().is_some_and(|cells| cells.len() == 1 && !cells[0].is_null())
            })
        })
    })
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = common::manifest_dir().join("dashboards/pumphouse");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        out.push((p.file_name().unwrap().to_string_lossy().into_owned(), serde_json::from_str(&text).unwrap()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn dashboards_are_provisionable_and_well_formed() {
    let ds = std::fs::read_to_string(common::manifest_dir().join("dashboards/provisioning/datasources/pumphouse.yaml"))
        .unwrap();
    assert!(ds.contains("uid: pumphouse-influxdb") && ds.contains("type: influxdb"));
    let provider =
        std::fs::read_to_string(common::manifest_dir().join("dashboards/provisioning/dashboards/pumphouse.yaml"))
            .unwrap();
    assert!(provider.contains("type: file") && provider.contains("path: /var/lib/grafana/dashboards/pumphouse"));
    let all = dashboards();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "campus-overview.json",
            "device-health.json",
            "group.json",
            "money.json",
            "night-flow.json",
            "pump-house.json",
            "zones.json"
        ]
    );
    let mut uids = std::collections::HashSet::new();
    for (name, d) in &all {
        assert!(uids.insert(d["uid"].as_str().unwrap().to_string()), "{name}: uid reused");
        assert!(d["schemaVersion"].as_i64().unwrap() >= 36, "{name}");
        let vars: Vec<&str> =
            d["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert!(vars.contains(&"site"), "{name}: no site variable");
        let mut ids = std::collections::HashSet::new();
        let panels = d["panels"].as_array().unwrap();
        assert!(!panels.is_empty(), "{name}");
        for p in panels {
            assert!(ids.insert(p["id"].as_i64().unwrap()), "{name}: panel id {} twice", p["id"]);
            assert_eq!(p["datasource"]["uid"], "pumphouse-influxdb", "{name}: {}", p["title"]);
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}: {} has no query", p["title"]);
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "pumphouse-influxdb");
                assert!(t["query"].as_str().is_some_and(|q| q.starts_with("SELECT")), "{name}: {t}");
            }
        }
    }
}

#[test]
fn a_demo_year_fills_every_dashboard_and_every_page_shows_the_apis_figures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let influx = common::influx1(d, "bootstrap");
    let http = common::free_port();
    let token = "page-test-token-0123456789abcdef";
    let token_file = d.join("token");
    std::fs::write(&token_file, token).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // killed when dropped, a failing assertion included
    let mut demo = common::Proc(
        std::process::Command::new(env!("CARGO_BIN_EXE_pumphouse"))
            .args([
                "demo",
                "--history",
                "13",
                "--duration",
                "600s",
                "--store",
                &d.join("demo.db").to_string_lossy(),
                "--http",
                &format!("127.0.0.1:{http}"),
                "--influxdb",
                &format!("http://127.0.0.1:{}/pumphouse", influx.port),
                "--token-file",
                &token_file.to_string_lossy(),
            ])
            .stdout(std::fs::File::create(d.join("demo.out")).unwrap())
            .stderr(std::fs::File::create(d.join("demo.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    let api = |path: &str| -> Value {
        let body = reqwest::blocking::get(format!("http://127.0.0.1:{http}{path}")).unwrap().text().unwrap();
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    };
    // the history generated, then the sink drains it into InfluxDB
    let started = Instant::now();
    loop {
        let up = std::net::TcpStream::connect(("127.0.0.1", http)).is_ok();
        if up {
            let s = api("/api/status");
            let backlog = s["sinks"][0]["backlog"].as_i64().unwrap_or(i64::MAX);
            if backlog < 2_000 && s["store"]["records"].as_i64().unwrap_or(0) > 1_000_000 {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(420),
            "the demo's history did not reach InfluxDB:\n{}",
            std::fs::read_to_string(d.join("demo.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = std::fs::read_to_string(d.join("demo.out")).unwrap();
    assert!(out.starts_with(&format!("Pumphouse demo — the page: http://127.0.0.1:{http}/")), "{out}");
    assert!(out.contains("Ledgers of 14 month(s) written to InfluxDB"), "{out}");
    assert!(out.contains("Active alerts") && out.contains("night_flow"), "{out}");
    // the alert pass has written the alerts too
    let started = Instant::now();
    while !has_data(&influx_query(influx.port, "SELECT count(\"id\") FROM \"alerts\"")) {
        assert!(started.elapsed() < Duration::from_secs(60), "no alerts in InfluxDB");
        std::thread::sleep(Duration::from_millis(500));
    }

    // every panel's query, every variable and annotation query, returns data
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, dash) in dashboards() {
        let mut queries: Vec<(String, String)> = Vec::new();
        for p in dash["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                queries.push((format!("{name}: {}", p["title"]), t["query"].as_str().unwrap().to_string()));
            }
        }
        for v in dash["templating"]["list"].as_array().unwrap() {
            queries.push((format!("{name}: variable {}", v["name"]), v["query"].as_str().unwrap().to_string()));
        }
        for a in dash["annotations"]["list"].as_array().unwrap() {
            if let Some(q) = a["query"].as_str() {
                queries.push((format!("{name}: annotation {}", a["name"]), q.to_string()));
            }
        }
        for (what, q) in queries {
            let q = substitute(&q);
            let v = influx_query(influx.port, &q);
            ran += 1;
            if !has_data(&v) {
                failed.push(format!("{what}\n  {q}\n  {v}"));
            }
        }
    }
    assert!(ran >= 30, "{ran} queries");
    assert!(failed.is_empty(), "queries without data:\n{}", failed.join("\n"));
    group_dashboard(d, influx.port);

    // the pages, in a browser
    let browser = common::browser::Browser::start();
    let mut page = browser.page();
    let base = format!("http://127.0.0.1:{http}");
    let shots = common::manifest_dir().join("target/screens");
    std::fs::create_dir_all(&shots).unwrap();
    let yuan = |fen: &Value| format!("{:.2}", fen.as_i64().unwrap() as f64 / 100.0);

    page.open(&format!("{base}/?lang=en"));
    let f = page.figures();
    assert_eq!(f.get("devices").map(String::as_str), Some("35"), "{f:?}");
    let records: i64 = f["store_records"].parse().unwrap();
    assert!(records > 1_000_000, "{records}");
    assert!(page.eval("document.querySelectorAll('tr[data-device]').length") == 35);
    page.screenshot(&shots.join("overview.png"));

    // ledger of last month: the page's figures are the API's
    page.open(&format!("{base}/ledger?lang=en"));
    let f = page.figures();
    let month = f["month"].split_whitespace().next().unwrap().to_string();
    let l = api(&format!("/api/ledger/{month}"));
    for u in l["utilities"].as_array().unwrap().iter().chain(std::iter::once(&l["combined"])) {
        let key = u["utility"].as_str().unwrap();
        assert_eq!(f[&format!("gap-{key}")], yuan(&u["gap_fen"]), "{key}");
        assert_eq!(f[&format!("revenue-{key}")], yuan(&u["revenue_fen"]), "{key}");
        assert_eq!(f[&format!("cost-{key}")], yuan(&u["cost_fen"]), "{key}");
        if !u["baseline_gap_fen"].is_null() {
            assert_eq!(f[&format!("baseline-{key}")], yuan(&u["baseline_gap_fen"]), "{key}");
        }
    }
    for z in l["zones"].as_array().unwrap() {
        assert_eq!(f[&format!("zone-gap-{}", z["zone"].as_str().unwrap())], yuan(&z["gap_fen"]));
    }
    // the Excel download
    let downloads = d.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    page.allow_downloads(&downloads);
    page.eval("document.querySelector('a[data-k=xlsx]').click()");
    let started = Instant::now();
    let xlsx = loop {
        let found = std::fs::read_dir(&downloads)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "xlsx"));
        if let Some(p) = found {
            break p;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no .xlsx downloaded");
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_millis(300));
    let bytes = std::fs::read(&xlsx).unwrap();
    assert!(bytes.starts_with(b"PK") && bytes.len() > 5_000, "{} bytes", bytes.len());
    assert_eq!(xlsx.file_name().unwrap().to_string_lossy(), format!("ledger-{month}.xlsx"));

    // zero-growth view: the year to date is the full ledger's
    page.open(&format!("{base}/targets?lang=en"));
    let f = page.figures();
    let now_month = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m").to_string();
    let full = api(&format!("/api/ledger/{now_month}"));
    // the running month moves with every live reading between the page and the API call:
    // they agree to a few yuan (closed months above agree to the fen)
    let close = |shown: &str, fen: &Value, what: &str| {
        let (p, a): (f64, f64) = (shown.parse().unwrap(), fen.as_i64().unwrap() as f64 / 100.0);
        assert!((p - a).abs() <= 5.0_f64.max(a.abs() * 0.001), "{what}: page {p} api {a}");
    };
    for y in full["year_to_date"].as_array().unwrap() {
        let key = y["utility"].as_str().unwrap();
        close(&f[&format!("ytd-{key}")], &y["gap_fen"], key);
        close(&f[&format!("projection-{key}")], &y["projection_fen"], key);
    }
    assert!(page.eval("document.querySelectorAll('svg[data-k^=chart-]').length").as_i64().unwrap() >= 2);
    // the three targets: the page's status per target and counts are the API's; the
    // demo's history has a night without chlorine dosing and a morning without supply in
    // zone east this month
    let t = api(&format!("/api/targets/{now_month}"));
    for s in t["summary"].as_array().unwrap().iter().filter(|s| s["period"] == "month") {
        let key = s["target"].as_str().unwrap();
        let status = s["status"].as_str().unwrap_or("unknown");
        assert_eq!(f.get(&format!("target-{key}")).map(String::as_str), Some(status), "{key}: {f:?}");
    }
    let count = |t: &Value, m: &str| {
        t["rows"].as_array().unwrap().iter().find(|r| r["measure"] == m && r["period"] == "month").unwrap()["this"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(f.get("Incidents-Month"), Some(&count(&t, "incidents").to_string()), "{f:?}");
    assert_eq!(f.get("Interruptions-Month"), Some(&count(&t, "interruptions").to_string()), "{f:?}");
    // the events fall 12 and 9 days ago: in this month or the one before
    let before = Month::parse(&now_month).unwrap().prev().unwrap().key();
    let earlier = api(&format!("/api/targets/{before}"));
    let both =
        |key: &str| -> Vec<Value> { [&t, &earlier].iter().flat_map(|r| r[key].as_array().unwrap().clone()).collect() };
    let incidents = both("incidents");
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(incidents[0]["rule"], "water_quality");
    let cuts = both("interruptions");
    assert_eq!(cuts.len(), 1, "{cuts:#?}");
    assert_eq!((cuts[0]["zone"].as_str(), cuts[0]["minutes"].as_i64()), (Some("east"), Some(240)));
    page.screenshot(&shots.join("targets.png"));

    // network map: this month's net input per zone is the ledger's
    page.open(&format!("{base}/network?lang=en&zone=east"));
    let f = page.figures();
    for z in full["zones"].as_array().unwrap() {
        let name = z["zone"].as_str().unwrap();
        let shown: f64 = f[&format!("month-net-{name}")].parse().unwrap();
        // the page computed the month a moment later: live readings may have added a little
        let api_net = z["net_input"].as_f64().unwrap();
        assert!((shown - api_net).abs() < 5.0, "{name}: page {shown} api {api_net}");
    }
    assert!(page.eval("document.body.innerText.includes('bldg-lab')").as_bool().unwrap());
    // the schematic: every configured device is drawn, each zone coloured by this month's
    // non-revenue share, and every active alert marked on the element it concerns
    let mut drawn = |sel: &str, attr: &str| -> Option<String> {
        page.eval(&format!(
            "(() => {{ const e = document.querySelector('svg.schematic {sel}'); return e ? e.getAttribute('{attr}') : null }})()"
        ))
        .as_str()
        .map(str::to_string)
    };
    for d in api("/api/status")["devices"].as_array().unwrap() {
        let name = d["device"].as_str().unwrap();
        assert!(drawn(&format!("[data-device=\"{name}\"]"), "data-kind").is_some(), "{name} is not drawn");
    }
    for z in full["zones"].as_array().unwrap() {
        let name = z["zone"].as_str().unwrap();
        let want = match z["non_revenue_share"].as_f64() {
            Some(s) if s < 0.15 => "nrw-low",
            Some(s) if s < 0.30 => "nrw-mid",
            Some(_) => "nrw-high",
            None => "nrw-unknown",
        };
        assert_eq!(drawn(&format!("[data-zone=\"{name}\"]"), "data-nrw").as_deref(), Some(want), "{name}: {z}");
    }
    let active_now = api("/api/alerts?active=true");
    for a in active_now.as_array().unwrap() {
        let sel = match a["device"].as_str() {
            Some(d) => format!("[data-device=\"{d}\"]"),
            None => format!("[data-zone=\"{}\"]", a["zone"].as_str().unwrap()),
        };
        assert_eq!(drawn(&sel, "data-alert").as_deref(), Some("1"), "{a}");
    }
    assert!(!active_now.as_array().unwrap().is_empty(), "the demo has active alerts to mark");
    // the renewal list: each of the demo's eight registered sections once, ranked by its
    // zone's bursts and leaks per km per year, then by the share of its design life used;
    // a zone with a burst or a leak on record has a rate, one without has 0
    let sections: Vec<String> = serde_json::from_str(
        page.eval("JSON.stringify([...document.querySelectorAll('tr[data-section]')].map(r => r.dataset.section))")
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(sections.len(), 8, "{sections:?}");
    let failed: std::collections::BTreeSet<String> = api("/api/alerts")
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "burst" || a["rule"] == "night_flow")
        .map(|a| a["zone"].as_str().unwrap().to_string())
        .collect();
    assert!(failed.contains("south") && failed.contains("east"), "the July burst and the east leak: {failed:?}");
    let key = |id: &str| -> (f64, f64) {
        let rate: f64 = f[&format!("renewal-rate-{id}")].parse().unwrap();
        let life: f64 = f[&format!("renewal-life-{id}")].trim_end_matches(" %").parse().unwrap();
        (rate, life)
    };
    for (i, id) in sections.iter().enumerate() {
        assert_eq!(f[&format!("renewal-rank-{id}")], (i + 1).to_string());
        let zone =
            page.eval(&format!("document.querySelector('tr[data-section=\"{id}\"] td:nth-child(3)').textContent"));
        // a section carries its zone's failures, or one the crew tied to it: the July
        // burst is S-01's alone (its repair record), so its zone fellows carry none of it
        let why = page.eval(&format!("document.querySelector('tr[data-section=\"{id}\"] td:last-child').textContent"));
        let tied = why.as_str().unwrap_or_default().contains("repaired on this section itself");
        assert_eq!(tied, *id == "S-01", "{id}: {why}");
        if key(id).0 > 0.0 {
            assert!(failed.contains(zone.as_str().unwrap()), "{id} in {zone}");
        }
        if let Some(next) = sections.get(i + 1) {
            let (a, b) = (key(id), key(next));
            assert!(a.0 > b.0 || (a.0 == b.0 && a.1 >= b.1), "{id} {a:?} before {next} {b:?}");
        }
    }
    // the valve register: V-S3 exercised 150 days ago by hand and due in 215; V-E2 never
    // recorded, due, and raised as a valve_exercise alert; V-N1 judged by its actuator
    let tz = chrono_tz::Asia::Shanghai;
    let day =
        |d: i64| (chrono::Utc::now() + chrono::TimeDelta::days(d)).with_timezone(&tz).format("%Y-%m-%d").to_string();
    assert_eq!(f["register-exercised-V-S3"], day(-150), "{f:?}");
    assert_eq!(f["register-due-V-S3"], day(215));
    assert_eq!(f["register-exercised-V-E2"], "none on record");
    let due = page.eval("document.querySelector('td[data-k=\"register-due-V-E2\"]').className");
    assert_eq!(due.as_str(), Some("bad"));
    let overdue: Vec<String> = api("/api/alerts")
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "valve_exercise" && a["end"].is_null())
        .map(|a| a["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(overdue, ["V-E2"], "only the manual valve without a record");
    page.screenshot(&shots.join("network.png"));
    element_pages(&mut page, &base, &shots);

    // alerts: the active ones are the API's; acknowledge one from the page
    page.open(&format!("{base}/alerts?lang=en"));
    let active = api("/api/alerts?active=true");
    let f = page.figures();
    assert_eq!(f["active-count"], active.as_array().unwrap().len().to_string());
    let leak = active
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "night_flow" && a["zone"] == "east")
        .expect("the east leak");
    let id = leak["id"].as_i64().unwrap();
    page.eval(&format!(
        "(() => {{ const f = document.querySelector('form[action=\"/alerts/{id}/ack\"]'); f.by.value = 'duty.engineer'; f.token.value = '{token}'; f.querySelector('button').click(); return true }})()"
    ));
    page.wait_loaded("the acknowledgement");
    let started = Instant::now();
    loop {
        let acked = api("/api/alerts?active=true")
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id && a["acked_by"] == "duty.engineer");
        if acked {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the acknowledgement did not land");
        std::thread::sleep(Duration::from_millis(100));
    }
    let f = page.figures();
    assert_eq!(f.get(&format!("acked-{id}")).map(String::as_str), Some("duty.engineer"), "{f:?}");
    assert!(f["note"].contains("acknowledged by duty.engineer"), "{f:?}");
    // a wrong token acknowledges nothing
    let other = active.as_array().unwrap().iter().find(|a| a["id"] != id && a["acked_by"].is_null());
    if let Some(o) = other {
        let oid = o["id"].as_i64().unwrap();
        page.eval(&format!(
            "(() => {{ const f = document.querySelector('form[action=\"/alerts/{oid}/ack\"]'); f.by.value = 'x'; f.token.value = 'wrong'; f.querySelector('button').click(); return true }})()"
        ));
        page.wait_loaded("the refusal");
        assert!(page.figures()["note"].contains("token is wrong"));
        assert!(api("/api/alerts?active=true")
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == oid && a["acked_by"].is_null()));
    }
    // every page in the site's language (Chinese, the default), whatever the browser
    // prefers: no English left but identifiers (names from the configuration) and units
    page.call("Network.enable", serde_json::json!({}));
    page.call("Network.setExtraHTTPHeaders", serde_json::json!({"headers": {"Accept-Language": "en-US,en;q=0.9"}}));
    let allowed = identifiers(&[full.clone(), api("/api/status"), api("/api/alerts")]);
    let mut english = Vec::new();
    for path in
        ["/", "/network", "/network?zone=east", "/alerts", "/ledger", &format!("/ledger?month={before}"), "/targets"]
    {
        page.open(&format!("{base}{path}"));
        // identifiers marked as code (a profile's point names) are not sentences
        let text = page
            .eval("(() => { const b = document.body.cloneNode(true); b.querySelectorAll('code').forEach(c => c.remove()); document.documentElement.appendChild(b); const t = b.innerText; b.remove(); return t })()")
            .as_str()
            .unwrap_or_default()
            .to_string();
        for w in english_words(&text, &allowed) {
            english.push(format!("{path}: {w}"));
        }
    }
    english.sort();
    english.dedup();
    assert!(english.is_empty(), "English on the Chinese pages:\n{}", english.join("\n"));
    page.open(&format!("{base}/alerts"));
    assert!(page.eval("document.body.innerText.includes('当前报警')").as_bool().unwrap());

    common::terminate(&mut demo.0);
}

/// The names a page may show as they are configured: zones, devices, points, categories,
/// costs, buses and alert subjects, split into words.
/// The group dashboard on the InfluxDB of three gateways: two more demo campuses (a
/// quarter of history each) write their ledgers beside the first, and every panel that
/// compares campuses shows all three, each under its own `site`.
fn group_dashboard(d: &std::path::Path, port: u16) {
    for site in ["north-campus", "south-campus"] {
        let st = std::process::Command::new(env!("CARGO_BIN_EXE_pumphouse"))
            .args(["demo", "--site", site, "--history", "2", "--duration", "1s", "--http", "off"])
            .args(["--store", &d.join(format!("{site}.db")).to_string_lossy()])
            .args(["--influxdb", &format!("http://127.0.0.1:{port}/pumphouse")])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(d.join(format!("{site}.err"))).unwrap())
            .status()
            .unwrap();
        assert!(st.success(), "{site}: {}", std::fs::read_to_string(d.join(format!("{site}.err"))).unwrap_or_default());
    }
    let (_, dash) = dashboards().into_iter().find(|(n, _)| n == "group.json").unwrap();
    let vars = dash["templating"]["list"].as_array().unwrap();
    let site = vars.iter().find(|v| v["name"] == "site").unwrap();
    assert_eq!((site["multi"].as_bool(), site["includeAll"].as_bool()), (Some(true), Some(true)));
    for p in dash["panels"].as_array().unwrap() {
        let q = p["targets"][0]["query"].as_str().unwrap();
        if !q.contains("FROM \"ledger\"") {
            continue; // alerts come with the live passes, which the short demos do not wait for
        }
        let q = q.replace("$timeFilter", "time > now() - 800d").replace("/^$site$/", "/^.*$/");
        let v = influx_query(port, &q);
        let sites: std::collections::BTreeSet<String> = v["results"][0]["series"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["values"].as_array().is_some_and(|rows| !rows.is_empty()))
            .filter_map(|s| s["tags"]["site"].as_str().map(str::to_string))
            .collect();
        assert_eq!(
            sites.into_iter().collect::<Vec<_>>(),
            ["demo-campus", "north-campus", "south-campus"],
            "{}: {q}",
            p["title"]
        );
    }
}

/// Opened from the map: a zone's balance by day adds up to its month, and valve-north's
/// page draws its week and its strokes, the last exercises slower (the demo's script:
/// 50 s, then 60, 75 and 95 s, read every 10 s). On a phone the map keeps its size and
/// scrolls inside its frame; printed, it is A3 across and fits the sheet.
fn element_pages(page: &mut common::browser::Page, base: &str, shots: &std::path::Path) {
    page.open(&format!("{base}/network?lang=en&zone=east"));
    let f = page.figures();
    let days: f64 = f.iter().filter(|(k, _)| k.starts_with("day-net-")).map(|(_, v)| v.parse::<f64>().unwrap()).sum();
    let n = f.keys().filter(|k| k.starts_with("day-net-")).count();
    let month: f64 = f["month-net-east"].parse().unwrap();
    assert!(n >= 1 && (days - month).abs() <= 0.05 * n as f64 + 5.0, "{n} days sum to {days}, the month {month}");
    let href = page.eval(
        "(() => { const g = document.querySelector('svg.schematic [data-device=\"valve-north\"]'); const a = g && g.closest('a'); return a ? a.getAttribute('href') : null })()",
    );
    assert_eq!(href.as_str(), Some("/device/valve-north?lang=en"));
    page.open(&format!("{base}{}", href.as_str().unwrap()));
    let drawn: u64 =
        page.eval("document.querySelector('[data-k=\"chart-position\"]').dataset.n").as_str().unwrap().parse().unwrap();
    assert!(drawn > 100, "a week of positions: {drawn}");
    let strokes: Vec<i64> = serde_json::from_str(
        page.eval("JSON.stringify([...document.querySelectorAll('tr[data-stroke]')].map(r => +r.dataset.stroke))")
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(strokes.len() >= 8, "{strokes:?}");
    assert!((90..=100).contains(&strokes[0]) && (70..=80).contains(&strokes[2]), "newest first: {strokes:?}");
    assert!(strokes[6..].iter().all(|s| *s == 50 || *s == 60), "{strokes:?}");
    let slowing = page.figures()["valve-slowing"].clone();
    assert!(slowing.contains("1.90 times") || slowing.contains("2.00 times"), "{slowing}");
    assert!(page.eval("document.body.innerText.includes('Alerts about it')").as_bool().unwrap());
    // an unknown device is a 404 page, not an empty one
    let r = reqwest::blocking::get(format!("{base}/device/no-such")).unwrap();
    assert_eq!(r.status(), 404);
    // a phone: the page does not run off the side; the map keeps its text size and scrolls
    page.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
    );
    page.open(&format!("{base}/network"));
    let (page_w, text_h, framed) = (
        page.eval("document.documentElement.scrollWidth").as_f64().unwrap(),
        page.eval("document.querySelector('svg.schematic g[data-device] text').getBoundingClientRect().height")
            .as_f64()
            .unwrap(),
        page.eval("(() => { const m = document.querySelector('.map'); return m.scrollWidth > m.clientWidth })()")
            .as_bool()
            .unwrap(),
    );
    let wide = page.eval("[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 391 && !e.closest('.map, table')).slice(0, 5).map(e => e.tagName + '.' + e.className).join(' ')");
    assert!(page_w <= 391.0, "the page is {page_w} px wide on a 390 px phone: {wide}");
    assert!(text_h >= 11.0, "the map's labels are {text_h} px high");
    assert!(framed, "the map scrolls inside its frame");
    page.screenshot(&shots.join("network-phone.png"));
    page.call("Emulation.clearDeviceMetricsOverride", serde_json::json!({}));
    // printed: A3 landscape (420 × 297 mm), the map within the sheet's width
    page.open(&format!("{base}/network"));
    let pdf = page.call("Page.printToPDF", serde_json::json!({"preferCSSPageSize": true, "printBackground": true}));
    let pdf = common::browser::base64_decode(pdf["data"].as_str().unwrap());
    let text = String::from_utf8_lossy(&pdf);
    let boxes: Vec<&str> = text.match_indices("/MediaBox [").map(|(i, _)| &text[i + 11..i + 60]).collect();
    let first: Vec<f64> = boxes[0].split([' ', ']']).filter_map(|w| w.parse().ok()).take(4).collect();
    assert!((first[2] - 1190.6).abs() < 2.0 && (first[3] - 841.9).abs() < 2.0, "page size {first:?}");
    page.call("Emulation.setEmulatedMedia", serde_json::json!({"media": "print"}));
    let map_w = page.eval("document.querySelector('svg.schematic').getBoundingClientRect().width").as_f64().unwrap();
    page.call("Emulation.setEmulatedMedia", serde_json::json!({"media": ""}));
    std::fs::write(shots.join("network-a3.pdf"), &pdf).unwrap();
    assert!(map_w > 0.0 && map_w <= 400.0 / 25.4 * 96.0, "the printed map is {map_w} px wide");
}

fn identifiers(from: &[Value]) -> std::collections::HashSet<String> {
    // what people typed (an acknowledger's name, a correction's reason) counts as a name
    const KEYS: [&str; 12] =
        ["site", "zone", "device", "point", "category", "name", "subject", "bus", "parent", "acked_by", "by", "why"];
    fn walk(v: &Value, out: &mut std::collections::HashSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if let (true, Some(s)) = (KEYS.contains(&k.as_str()), x.as_str()) {
                        out.extend(s.split(|c: char| !c.is_ascii_alphanumeric()).map(str::to_lowercase));
                    }
                    walk(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = std::collections::HashSet::new();
    from.iter().for_each(|v| walk(v, &mut out));
    // units, product and protocol names, and the switch to the other language
    for w in [
        "m3",
        "kwh",
        "kw",
        "mpa",
        "mg",
        "ntu",
        "ph",
        "pumphouse",
        "mqtt",
        "influxdb",
        "csv",
        "xlsx",
        "json",
        "api",
        "modbus",
        "rtu",
        "tcp",
        "english",
        "grafana",
        "excel",
        "id",
        "s",
        "min",
        "h",
        "a",
        "v",
        "l1",
        "l2",
        "l3",
    ] {
        out.insert(w.to_string());
    }
    out
}

/// The English words of a page's text that are not identifiers or units.
fn english_words(text: &str, allowed: &std::collections::HashSet<String>) -> Vec<String> {
    // the notations Chinese drawings and standards write in Latin letters: a pipe's
    // nominal size (DN150) and its plastics (PE, PVC-U)
    let notation = |w: &str| {
        ["PE", "PVC"].contains(&w) || w.strip_prefix("DN").is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
    };
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.chars().any(|c| c.is_ascii_alphabetic()) && w.len() >= 2 && !notation(w))
        .filter(|w| !allowed.contains(&w.to_lowercase()) && !w.split('_').all(|p| allowed.contains(&p.to_lowercase())))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_sends_its_history_readings_alerts_and_ledgers_over_mqtt() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let broker = common::mosquitto(dir.path(), "allow_anonymous true");
    let got = Arc::new(Mutex::new(Vec::<(String, bool)>::new()));
    let seen = got.clone();
    let (client, mut eventloop) =
        rumqttc::AsyncClient::new(rumqttc::MqttOptions::new("demo-watch", "127.0.0.1", broker.port), 100);
    let sub = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Incoming::ConnAck(_))) => {
                    let _ = client.subscribe("pumphouse/demo-campus/#", rumqttc::QoS::AtMostOnce).await;
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Incoming::Publish(p))) => {
                    seen.lock().unwrap().push((p.topic.clone(), p.retain));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = tokio::task::spawn_blocking({
        let store = dir.path().join("demo.db");
        let port = broker.port;
        move || {
            common::pumphouse(&[
                "demo",
                "--history",
                "1",
                "--duration",
                "8s",
                "--http",
                "off",
                "--store",
                &store.to_string_lossy(),
                "--mqtt",
                &format!("mqtt://127.0.0.1:{port}"),
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(out.0, 0, "{}", out.2);
    assert!(out.1.contains("Ledgers of 2 month(s) written to MQTT"), "{}", out.1);
    let started = Instant::now();
    loop {
        let topics = got.lock().unwrap().clone();
        let ledgers = topics.iter().filter(|(t, _)| t.contains("/ledger/")).count();
        let readings = topics.iter().filter(|(t, _)| t.ends_with("/positive_total")).count();
        let alerts = topics.iter().filter(|(t, _)| t.contains("/alerts/")).count();
        if ledgers >= 2 && readings > 100 && alerts >= 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "ledgers {ledgers}, readings {readings}, alerts {alerts} of {}",
            topics.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sub.abort();
}

//! tier: fast (needs nothing installed: `scripts/test-fast` runs it)
//!
//! The ledger as the utilities office uses it: import last year's readings, then the
//! monthly ledger from the store, as CSV, XLSX and JSON.

mod common;

use std::path::Path;

use common::pumphouse;
use pumphouse::model::Month;
use serde_json::Value;

/// Imports the month of real DMA inflows (tests/fixtures/bwdf-2022-01.csv) into the store.
fn import_fixture(cfg: &str) {
    let fixture = common::manifest_dir().join("tests/fixtures/bwdf-2022-01.csv");
    let (code, _, err) = pumphouse(&["import", "-c", cfg, "--csv", &fixture.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn real_dma_inflows_survive_their_gaps_and_reimport_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::bwdf_config(dir.path());
    let fixture = common::manifest_dir().join("tests/fixtures/bwdf-2022-01.csv");
    let fixture = fixture.to_string_lossy();
    let (code, out, err) = pumphouse(&["import", "-c", &cfg, "--csv", &fixture]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2975 rows, 2975 imported, 0 already present, 0 refused"), "{out}");
    let (code, out, _) = pumphouse(&["import", "-c", &cfg, "--csv", &fixture]);
    assert_eq!(code, 0);
    assert!(out.contains("2975 rows, 0 imported, 2975 already present, 0 refused"), "re-import: {out}");

    let (code, out, err) = pumphouse(&["ledger", "-c", &cfg, "--month", "2022-01", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let l: Value = serde_json::from_str(&out).unwrap();
    let meter = |dma: &str| l["meters"].as_array().unwrap().iter().find(|m| m["device"] == dma).unwrap().clone();
    // the true January volumes of the full series (tests/fixtures/README.md)
    for (dma, truth) in [("dma-4", 90_567.720), ("dma-6", 28_866.460)] {
        let m = meter(dma);
        let got = m["consumption"].as_f64().unwrap();
        // Nothing is lost through the gaps; where a gap spans midnight of the 1st, the
        // bridged volume is spread evenly, so the month boundary may move a little of it.
        assert!((got - truth).abs() / truth < 0.002, "{dma}: ledger {got} m3, true {truth} m3");
        assert!(m["estimated"].as_f64().unwrap() > 0.0, "{dma} had gaps of several hours: {m}");
    }
    // DMA 8 stops reporting on 30 January at 02:00 and stays silent into February: the
    // ledger books up to its last reading, and says that the rest is not known yet.
    let m = meter("dma-8");
    let booked = m["consumption"].as_f64().unwrap();
    let read = m["closing"].as_f64().unwrap() - m["opening"].as_f64().unwrap();
    assert!((booked - read).abs() < 1e-6, "{booked} vs {read}: {m}");
    assert!(booked < 54_784.656 * 0.97, "the silent tail is not invented: {booked}");
    assert!(m["notes"].to_string().contains("no readings from 2022-01-30 02:00 to the end of the month"), "{m}");
    let water = &l["utilities"][0];
    let input = water["input"].as_f64().unwrap();
    let expected = 90_567.720 + 28_866.460 + booked;
    assert!((input - expected).abs() / input < 0.002, "{input} vs {expected}");
    // cost = input × 1.10, to the fen of the volume the ledger booked
    let cost = water["cost_fen"].as_i64().unwrap();
    assert!((cost as f64 - input * 110.0).abs() <= 1.0, "{cost} vs {input}");
}

#[test]
fn bad_rows_are_reported_with_their_line_and_good_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::bwdf_config(dir.path());
    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "\u{feff}ts,device,point,value\n\
         2022-01-01 00:00:00+0100,dma-4,positive_total,100.5\n\
         yesterday,dma-4,positive_total,101\n\
         2022-01-01T01:00:00+01:00,dma-99,positive_total,101\n\
         2022-01-01T01:00:00+01:00,dma-4,flow,101\n\
         2022-01-01T01:00:00+01:00,dma-4,positive_total,NaN\n\
         2022-01-01T01:00:00+01:00,dma-4,positive_total\n\
         2022-01-01T02:00:00+01:00,dma-4,positive_total,102.25\n\
         2099-01-01T00:00:00Z,dma-4,positive_total,103\n",
    )
    .unwrap();
    let (code, out, err) = pumphouse(&["import", "-c", &cfg, "--csv", &csv.to_string_lossy()]);
    assert_eq!(code, 3, "bad rows make the exit status non-zero");
    assert!(out.contains("8 rows, 2 imported, 0 already present, 6 refused"), "{out}");
    for (line, why) in [
        (3, "`yesterday` is not an ISO 8601 time"),
        (4, "no device `dma-99`"),
        (5, "device `dma-4` has no point `flow`"),
        (6, "`NaN` is not a number"),
        (7, "`` is not a number"),
        (9, "2099-01-01T00:00:00+00:00 is in the future"),
    ] {
        assert!(err.contains(&format!("bad.csv:{line}: {why}")), "line {line}: {err}");
    }
    let missing = dir.path().join("nohead.csv");
    std::fs::write(&missing, "when,meter,value\n2022-01-01T00:00:00+01:00,dma-4,1\n").unwrap();
    let (code, _, err) = pumphouse(&["import", "-c", &cfg, "--csv", &missing.to_string_lossy()]);
    assert_eq!(code, 1);
    assert!(err.contains("the header must name the columns ts, device, point, value"), "{err}");
}

#[test]
fn ledger_exports_csv_and_xlsx_in_both_languages() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::bwdf_config(dir.path());
    import_fixture(&cfg);
    let (code, out, _) = pumphouse(&["ledger", "-c", &cfg, "--month", "2022-01", "--format", "csv", "--lang", "en"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("site,bwdf,2022-01\n"), "{out}");
    assert!(out.contains("\nmeters\nutility,zone,device,point,role,category,opening reading,"), "{out}");
    // the targets follow the ledger's tables
    assert!(
        out.contains(
            "\nzero-growth targets\ntarget,measure,period,this year,baseline year,change,status,baseline from\n"
        ),
        "{out}"
    );
    assert!(out.contains("\nsafety incidents,incidents,month,0,,,,\n"), "{out}");
    let (code, out, _) = pumphouse(&["ledger", "-c", &cfg, "--month", "2022-01", "--format", "csv"]);
    assert_eq!(code, 0);
    assert!(out.contains("表计台账") && out.contains("产销差率") && out.contains("三个零增长"), "{out}");
    // in a terminal: the targets first; these DMAs have only totalizers, and the report
    // says what they cannot see, and that no baseline is known
    let (code, out, _) = pumphouse(&["ledger", "-c", &cfg, "--month", "2022-01", "--format", "text", "--lang", "en"]);
    assert_eq!(code, 0);
    for want in [
        "zero-growth targets",
        "safety incidents | incidents | month | 0 | ? | ? |",
        "no baseline for 2021-01",
        "over-pressure, low pressure and loss of pressure are not observed",
        "electrical incidents are not observed",
        "water-quality incidents are not observed",
        "water: ",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let xlsx = dir.path().join("ledger.xlsx");
    let (code, _, err) =
        pumphouse(&["ledger", "-c", &cfg, "--month", "2022-01", "--format", "xlsx", "-o", &xlsx.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&xlsx).unwrap();
    assert!(bytes.starts_with(b"PK") && bytes.len() > 5000);
    let (code, _, err) = pumphouse(&["ledger", "-c", &cfg, "--month", "2022-13", "--format", "json"]);
    assert_eq!(code, 1);
    assert!(err.contains("`2022-13` is not a month"), "{err}");
    let (code, _, err) = pumphouse(&["ledger", "-c", &cfg, "--month", "2022-01", "--format", "xlsx"]);
    assert_eq!(code, 1);
    assert!(err.contains("needs -o PATH"), "{err}");
}

#[test]
fn corrections_are_audited_and_a_replacement_is_not_booked_as_consumption() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::bwdf_config(dir.path());
    let csv = dir.path().join("swap.csv");
    // dma-4 reads 1000 → 1010 by 10:00; the meter is swapped at 10:30 (old final 1012.5,
    // new initial 3.0); the new meter reads 5.0 at 11:00 and 9.0 at 12:00.
    std::fs::write(
        &csv,
        "ts,device,point,value\n\
         2022-01-10T09:00:00+01:00,dma-4,positive_total,1000\n\
         2022-01-10T10:00:00+01:00,dma-4,positive_total,1010\n\
         2022-01-10T11:00:00+01:00,dma-4,positive_total,5\n\
         2022-01-10T12:00:00+01:00,dma-4,positive_total,9\n",
    )
    .unwrap();
    let (code, _, err) = pumphouse(&["import", "-c", &cfg, "--csv", &csv.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = pumphouse(&[
        "correct",
        "-c",
        &cfg,
        "replacement",
        "--device",
        "dma-4",
        "--at",
        "2022-01-10T10:30:00+01:00",
        "--old-final",
        "1012.5",
        "--new-initial",
        "3",
    ]);
    assert_eq!(code, 1, "who and why are required");
    assert!(err.contains("needs --by (who) and --why"), "{err}");
    let (code, out, err) = pumphouse(&[
        "correct",
        "-c",
        &cfg,
        "--by",
        "wang.fang",
        "--why",
        "meter DN100 replaced, work order 2022-017",
        "replacement",
        "--device",
        "dma-4",
        "--at",
        "2022-01-10T10:30:00+01:00",
        "--old-final",
        "1012.5",
        "--new-initial",
        "3",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("correction #1 recorded"), "{out}");
    let (code, out, _) = pumphouse(&["correct", "-c", &cfg, "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("#1 ")
            && out.contains("录入人 wang.fang： 换表 dma-4.positive_total")
            && out.contains("work order 2022-017"),
        "{out}"
    );
    let (code, _, err) = pumphouse(&[
        "correct",
        "-c",
        &cfg,
        "--by",
        "x",
        "--why",
        "y",
        "reading",
        "--device",
        "dma-99",
        "--at",
        "2022-01-10T10:30:00+01:00",
        "--value",
        "1",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("is not a meter of the network map"), "{err}");

    let (code, out, err) = pumphouse(&["ledger", "-c", &cfg, "--month", "2022-01", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let l: Value = serde_json::from_str(&out).unwrap();
    let m = l["meters"].as_array().unwrap().iter().find(|m| m["device"] == "dma-4").unwrap();
    // 1000 → 1010 (10) + 1010 → 1012.5 (2.5, old meter) + 3 → 5 → 9 (6, new meter) = 18.5
    assert!((m["consumption"].as_f64().unwrap() - 18.5).abs() < 1e-9, "{m}");
    assert!(m["notes"].to_string().contains("meter replaced"), "{m}");
    assert_eq!(l["corrections"][0]["by"], "wang.fang");
    assert_eq!(l["corrections"][0]["change"]["kind"], "replacement");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_is_served_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::bwdf_config(dir.path());
    let http = common::free_port();
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!("[http]\nlisten = \"127.0.0.1:{http}\"\n"));
    std::fs::write(&cfg, text).unwrap();
    import_fixture(&cfg);
    let mut gw = common::gateway(Path::new(&cfg), &dir.path().join("gw.log"));
    common::wait_port(http, "pumphouse run");
    let get = |path: &str| {
        let url = format!("http://127.0.0.1:{http}{path}");
        async move {
            let r = reqwest::get(url).await.unwrap();
            let code = r.status().as_u16();
            let ctype =
                r.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_string()).unwrap_or_default();
            (code, ctype, r.bytes().await.unwrap().to_vec())
        }
    };
    let (code, ctype, body) = get("/api/ledger/2022-01").await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert!(ctype.starts_with("application/json"));
    let l: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(l["month"], "2022-01");
    let (code, ctype, body) = get("/api/ledger/2022-01.csv?lang=en").await;
    assert_eq!(code, 200);
    assert!(ctype.starts_with("text/csv"));
    assert!(String::from_utf8_lossy(&body).contains("non-revenue share"));
    assert!(body.starts_with(b"site,"), "no byte-order mark in English");
    // in Chinese, a UTF-8 byte-order mark first, for Excel on Chinese Windows
    let (code, _, body) = get("/api/ledger/2022-01.csv").await;
    assert_eq!(code, 200);
    assert!(body.starts_with("\u{feff}站点,".as_bytes()), "{:?}", &body[..body.len().min(12)]);
    let (code, _, body) = get("/api/ledger/2022-01.xlsx").await;
    assert_eq!(code, 200);
    assert!(body.starts_with(b"PK"));
    assert_eq!(get("/api/ledger/2022-1x").await.0, 400);
    assert_eq!(get("/api/ledger/2022-01.pdf").await.0, 404);
    assert_eq!(get("/api/ledger/2022-01?lang=fr").await.0, 400);
    // without a configured token, writes are off and the answer says how to turn them on
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http}/api/alerts/1/ack?by=x"))
        .header("Authorization", "Bearer anything")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("token_env or token_file"));
    // ledgers asked for at once are computed one after the other, each answered in full
    let all = futures::future::join_all((0..4).map(|_| get("/api/ledger/2022-01"))).await;
    assert!(all.iter().all(|(code, _, body)| *code == 200 && body.len() > 100));
    common::terminate(&mut gw.0);
}

#[test]
fn a_frozen_month_outlives_its_pruned_readings() {
    use pumphouse::config::{self, Mode};
    use pumphouse::store::{Limits, Store};
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = common::bwdf_config(dir.path());
    import_fixture(&cfg_path);
    let (cfg, _) = config::load(Path::new(&cfg_path), Mode::Check).unwrap();
    let store = Store::open(&cfg.store.path, cfg.store.limits).unwrap();
    let before = pumphouse::ledger::book::month_ledger(
        &cfg.ledger_spec(),
        &store,
        Month::new(2022, 1).unwrap(),
        pumphouse::ledger::month::Depth::Full,
    )
    .unwrap();
    assert!(!before.frozen);
    // December, January and February 2022 have closed: frozen, once
    let now = chrono::Utc::now();
    assert_eq!(pumphouse::ledger::book::freeze_closed_months(&cfg.ledger_spec(), &store, now).unwrap(), 3);
    assert_eq!(pumphouse::ledger::book::freeze_closed_months(&cfg.ledger_spec(), &store, now).unwrap(), 0);
    // every raw reading pruned
    let short =
        Store::open(&cfg.store.path, Limits { max_size: u64::MAX, max_age: Some(std::time::Duration::from_secs(1)) })
            .unwrap();
    let r = short.prune(now, &[], None).unwrap();
    assert_eq!(r.delivered, 2975);
    assert_eq!(short.stats().unwrap().records, 0);
    let after = pumphouse::ledger::book::month_ledger(
        &cfg.ledger_spec(),
        &store,
        Month::new(2022, 1).unwrap(),
        pumphouse::ledger::month::Depth::Full,
    )
    .unwrap();
    assert!(after.frozen);
    for (a, b) in before.meters.iter().zip(&after.meters) {
        assert_eq!(a.device, b.device);
        assert!((a.consumption - b.consumption).abs() < 1e-9, "{}: {} vs {}", a.device, a.consumption, b.consumption);
        assert!((a.estimated - b.estimated).abs() < 1e-9);
    }
    assert_eq!(before.utilities[0].cost_fen, after.utilities[0].cost_fen);
    // and from the command line
    let (code, out, err) = pumphouse(&["ledger", "-c", &cfg_path, "--month", "2022-01", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let l: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(l["frozen"], true);
    assert_eq!(l["utilities"][0]["cost_fen"], before.utilities[0].cost_fen);
}

#[test]
fn a_meter_silent_across_a_frozen_month_end_is_booked_late_not_lost() {
    use chrono::{TimeDelta, TimeZone};
    use pumphouse::config::{self, Mode};
    use pumphouse::ledger::month::Depth;
    use pumphouse::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = common::bwdf_config(dir.path());
    let tz = chrono_tz::Europe::Rome;
    // dma-4 at 2 m³/h from 1 January; silent from 30 January 00:00 to 12 February 00:00
    let start = tz.with_ymd_and_hms(2022, 1, 1, 0, 0, 0).unwrap();
    let silent_from = tz.with_ymd_and_hms(2022, 1, 30, 0, 0, 0).unwrap();
    let back = tz.with_ymd_and_hms(2022, 2, 12, 0, 0, 0).unwrap();
    let end = tz.with_ymd_and_hms(2022, 3, 1, 0, 0, 0).unwrap();
    let rows = |from: chrono::DateTime<chrono_tz::Tz>, to: chrono::DateTime<chrono_tz::Tz>| {
        let mut csv = String::from("ts,device,point,value\n");
        let mut t = from;
        while t <= to {
            let v = 1000.0 + 2.0 * (t - start).num_hours() as f64;
            csv.push_str(&format!("{},dma-4,positive_total,{v}\n", t.to_rfc3339()));
            t += TimeDelta::hours(1);
        }
        csv
    };
    let before = dir.path().join("before.csv");
    std::fs::write(&before, rows(start, silent_from)).unwrap();
    let (code, _, err) = pumphouse(&["import", "-c", &cfg_path, "--csv", &before.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    let (cfg, _) = config::load(Path::new(&cfg_path), Mode::Check).unwrap();
    let store = Store::open(&cfg.store.path, cfg.store.limits).unwrap();
    // on 8 February the gateway holds January: the meter's readings cover 29 of its 31
    // days, and may still come
    let feb8 = tz.with_ymd_and_hms(2022, 2, 8, 12, 0, 0).unwrap().with_timezone(&chrono::Utc);
    assert_eq!(pumphouse::ledger::book::freeze_closed_months(&cfg.ledger_spec(), &store, feb8).unwrap(), 0);
    let held =
        pumphouse::ledger::book::month_ledger(&cfg.ledger_spec(), &store, Month::new(2022, 1).unwrap(), Depth::Bare)
            .unwrap();
    assert!(held.partial && !held.frozen);
    // frozen anyway (its grace over, or by hand) while the meter is still silent
    pumphouse::ledger::book::freeze(&cfg.ledger_spec(), &store, Month::new(2022, 1).unwrap()).unwrap();
    let jan =
        pumphouse::ledger::book::month_ledger(&cfg.ledger_spec(), &store, Month::new(2022, 1).unwrap(), Depth::Bare)
            .unwrap();
    assert!(jan.frozen);
    let jan_booked = jan.meters[0].consumption;
    assert!((jan_booked - 2.0 * 29.0 * 24.0).abs() < 1e-6, "{jan_booked}");
    // the meter reads again on 12 February
    let after = dir.path().join("after.csv");
    std::fs::write(&after, rows(back, end)).unwrap();
    let (code, _, err) = pumphouse(&["import", "-c", &cfg_path, "--csv", &after.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    let feb =
        pumphouse::ledger::book::month_ledger(&cfg.ledger_spec(), &store, Month::new(2022, 2).unwrap(), Depth::Bare)
            .unwrap();
    let m = &feb.meters[0];
    // January's silent two days (48 h × 2 m³) are booked in February, as estimated
    assert!(m.notes.iter().any(|n| n.contains("booked here as estimated")), "{:?}", m.notes);
    let total = (end - start).num_hours() as f64 * 2.0;
    assert!((jan_booked + m.consumption - total).abs() < 1e-6, "jan {jan_booked} + feb {} vs {total}", m.consumption);
    assert!(m.estimated >= 48.0 * 2.0 - 1e-6, "{}", m.estimated);
}

#[test]
fn corrections_cannot_poison_the_store() {
    use chrono::TimeZone;
    use pumphouse::config::{self, Mode};
    use pumphouse::ledger::month::Depth;
    use pumphouse::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = common::bwdf_config(dir.path());
    import_fixture(&cfg_path);
    // every number of every kind is checked before it is stored
    let base = ["correct", "-c", &cfg_path, "--by", "li", "--why", "test"];
    for (kind, args) in [
        (
            "replacement",
            vec![
                "--device",
                "dma-4",
                "--at",
                "2022-01-10T10:30:00+01:00",
                "--old-final",
                "1012.5",
                "--new-initial",
                "inf",
            ],
        ),
        (
            "replacement",
            vec!["--device", "dma-4", "--at", "2022-01-10T10:30:00+01:00", "--old-final", "NaN", "--new-initial", "3"],
        ),
        (
            "replacement",
            vec!["--device", "dma-4", "--at", "2022-01-10T10:30:00+01:00", "--old-final", "1012.5", "--new-initial=-3"],
        ),
        ("reading", vec!["--device", "dma-4", "--at", "2022-01-10T10:30:00+01:00", "--value=-inf"]),
        ("tariff", vec!["--utility", "water", "--category", "x", "--from", "2022-01-01", "--price=-1.5"]),
    ] {
        let mut a: Vec<&str> = base.to_vec();
        a.push(kind);
        a.extend(args.iter().copied());
        let (code, _, err) = pumphouse(&a);
        assert_eq!(code, 1, "{a:?} was accepted");
        assert!(err.contains("error:"), "{err}");
    }
    let (code, out, _) = pumphouse(&["correct", "-c", &cfg_path, "list"]);
    assert_eq!(code, 0);
    assert_eq!(out, "没有更正记录\n", "nothing was stored");

    // a correction stored unreadable (by an older version, or by hand) is skipped with a
    // note; the month is still computed and frozen
    let (cfg, _) = config::load(Path::new(&cfg_path), Mode::Check).unwrap();
    let store = Store::open(&cfg.store.path, cfg.store.limits).unwrap();
    store
        .add_correction(
            "old",
            "written when infinity became null",
            r#"{"kind":"replacement","device":"dma-4","point":"positive_total","ts":"2022-01-10T09:30:00Z","old_final":1012.5,"new_initial":null}"#,
        )
        .unwrap();
    let jan = Month::new(2022, 1).unwrap();
    let l = pumphouse::ledger::book::month_ledger(&cfg.ledger_spec(), &store, jan, Depth::Full).unwrap();
    assert!(
        l.notes.iter().any(|n| n.starts_with("correction #1 ") && n.contains("unreadable and was skipped")),
        "{:?}",
        l.notes
    );
    assert!(l.meters.iter().any(|m| m.consumption > 1000.0));
    let now = chrono::Utc.with_ymd_and_hms(2022, 3, 1, 0, 0, 0).unwrap();
    assert!(pumphouse::ledger::book::freeze_closed_months(&cfg.ledger_spec(), &store, now).unwrap() >= 1);
    let (code, out, err) = pumphouse(&["ledger", "-c", &cfg_path, "--month", "2022-01", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("unreadable and was skipped"), "{out}");
    let (code, out, _) = pumphouse(&["correct", "-c", &cfg_path, "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("更正 #1") && out.contains("无法读取"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_ledger_is_written_and_announced_by_itself_once_per_state() {
    use chrono::TimeZone;
    use pumphouse::config::{self, Mode};
    use pumphouse::gateway::monthly;
    use pumphouse::store::{ExportState, Store};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("ledgers");
    std::fs::create_dir_all(&exports).unwrap();
    // a webhook that records what it is sent
    let (hook_port, bodies) = common::webhook(|_| ("200 OK", ""));
    let cfg_path = common::bwdf_config(dir.path());
    let mut text = std::fs::read_to_string(&cfg_path).unwrap();
    text.push_str(&format!(
        "[ledger]\nexport_dir = \"{}\"\nlanguage = \"en\"\n[alerts]\nwebhook_url = \"http://127.0.0.1:{hook_port}/hook\"\n",
        exports.display()
    ));
    std::fs::write(&cfg_path, &text).unwrap();
    import_fixture(&cfg_path);
    let (cfg, _) = config::load(Path::new(&cfg_path), Mode::Run).unwrap();
    let store = Arc::new(Store::open(&cfg.store.path, cfg.store.limits).unwrap());
    let cfg = Arc::new(cfg);
    let tz = chrono_tz::Europe::Rome;

    // on the 1st: January, preliminary; once only
    let feb1 = tz.with_ymd_and_hms(2022, 2, 1, 2, 0, 0).unwrap().with_timezone(&chrono::Utc);
    let w = monthly::write_due(&cfg, &store, feb1).unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].month.key(), w[0].state), ("2022-01".to_string(), ExportState::Preliminary));
    let xlsx = exports.join("ledger-2022-01-preliminary.xlsx");
    assert!(std::fs::read(&xlsx).unwrap().starts_with(b"PK"));
    let csv = std::fs::read_to_string(exports.join("ledger-2022-01-preliminary.csv")).unwrap();
    assert!(csv.contains("non-revenue share"), "in English");
    assert!(monthly::write_due(&cfg, &store, feb1 + chrono::TimeDelta::hours(1)).unwrap().is_empty());

    // frozen seven days after: the final ledger
    // the fixture ends on 30 January: the month is partial, and on the 8th it is held
    // for readings that may still come; December (its last days only), past its grace,
    // is frozen as it is
    let feb8 = tz.with_ymd_and_hms(2022, 2, 8, 12, 0, 0).unwrap().with_timezone(&chrono::Utc);
    assert_eq!(pumphouse::ledger::book::freeze_closed_months(&cfg.ledger_spec(), &store, feb8).unwrap(), 1);
    assert!(store.is_frozen(Month::new(2021, 12).unwrap()).unwrap());
    assert!(monthly::write_due(&cfg, &store, feb8).unwrap().is_empty(), "no final ledger of a month held");
    // none came: two weeks later it is frozen as it is (its notes say partial), final
    let feb22 = feb8 + pumphouse::ledger::book::PARTIAL_GRACE;
    assert_eq!(pumphouse::ledger::book::freeze_closed_months(&cfg.ledger_spec(), &store, feb22).unwrap(), 1);
    let w = monthly::write_due(&cfg, &store, feb22).unwrap();
    assert_eq!(w.iter().map(|x| x.state).collect::<Vec<_>>(), [ExportState::Final]);
    assert!(exports.join("ledger-2022-01.xlsx").exists() && exports.join("ledger-2022-01.csv").exists());
    assert!(monthly::write_due(&cfg, &store, feb22).unwrap().is_empty());

    // announced once each, with the headline
    monthly::announce(cfg.clone(), store.clone()).await.unwrap();
    let sent = bodies.lock().unwrap().clone();
    assert_eq!(sent.len(), 2, "{sent:?}");
    let v: Value = serde_json::from_str(&sent[1]).unwrap();
    assert_eq!(v["month"], "2022-01");
    assert!(
        sent.iter().any(|b| b.contains("\"state\":\"preliminary\""))
            && sent.iter().any(|b| b.contains("\"state\":\"final\""))
    );
    let water = v["utilities"].as_array().unwrap().iter().find(|u| u["utility"] == "water").unwrap();
    let l = pumphouse::ledger::book::month_ledger(
        &cfg.ledger_spec(),
        &store,
        Month::new(2022, 1).unwrap(),
        pumphouse::ledger::month::Depth::Full,
    )
    .unwrap();
    assert_eq!(water["gap_yuan"].as_f64().unwrap(), l.utilities[0].gap_fen as f64 / 100.0);
    monthly::announce(cfg.clone(), store.clone()).await.unwrap();
    assert_eq!(bodies.lock().unwrap().len(), 2, "nothing is announced twice");

    // a directory that is gone: the pass says so, for /healthz, and tries again later
    std::fs::remove_dir_all(&exports).unwrap();
    let health = Arc::new(pumphouse::http::JobHealth::default());
    let mar1 = tz.with_ymd_and_hms(2022, 3, 1, 2, 0, 0).unwrap().with_timezone(&chrono::Utc);
    assert!(monthly::write_due(&cfg, &store, mar1).is_err());
    monthly::pass(cfg.clone(), store.clone(), health.clone()).await;
    assert!(health.problem().is_some_and(|p| p.contains("cannot write the monthly ledger")), "{:?}", health.problem());
}

#[test]
fn pruning_for_size_never_eats_a_month_not_frozen_yet() {
    use chrono::TimeZone;
    use pumphouse::config::{self, Mode};
    use pumphouse::ledger::month::Depth;
    use pumphouse::store::{Limits, Store};
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = common::bwdf_config(dir.path());
    import_fixture(&cfg_path);
    let (cfg, _) = config::load(Path::new(&cfg_path), Mode::Check).unwrap();
    let jan = Month::new(2022, 1).unwrap();
    let before = {
        let store = Store::open(&cfg.store.path, cfg.store.limits).unwrap();
        pumphouse::ledger::book::month_ledger(&cfg.ledger_spec(), &store, jan, Depth::Bare).unwrap()
    };
    // a store far over its size limit on 3 February: December is frozen (it closed more
    // than seven days ago), January is not yet
    let tiny =
        Store::open(&cfg.store.path, Limits { max_size: 1, max_age: Some(std::time::Duration::from_secs(10 << 30)) })
            .unwrap();
    let feb3 = chrono_tz::Europe::Rome.with_ymd_and_hms(2022, 2, 3, 12, 0, 0).unwrap().with_timezone(&chrono::Utc);
    pumphouse::gateway::jobs::prune_once(&cfg, &tiny, feb3, &[]);
    let jan_start = jan.bounds(chrono_tz::Europe::Rome).unwrap().0;
    // the fixture starts on 25 December: all of it is January's or its seven-day margin,
    // and none of it goes, far over the size limit as the store is
    let oldest = tiny.oldest_ts().unwrap().unwrap();
    assert!(oldest < jan_start, "{oldest}");
    assert_eq!(tiny.stats().unwrap().dropped.values().sum::<i64>(), 0);
    let after = pumphouse::ledger::book::month_ledger(&cfg.ledger_spec(), &tiny, jan, Depth::Bare).unwrap();
    assert!(!after.frozen);
    for (a, b) in before.meters.iter().zip(&after.meters) {
        assert!(
            (a.consumption - b.consumption).abs() < 1e-9,
            "{}: {} before, {} after",
            a.device,
            a.consumption,
            b.consumption
        );
    }
}

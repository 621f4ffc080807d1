//! One mistake, one error; and the warnings `check` gives before a setting misleads.

use super::tests::GOOD;
use super::*;

fn diagnostics(text: &str) -> Vec<diag::Diagnostic> {
    match load_str(text, Mode::Check) {
        Ok((_, d)) => d.items,
        Err(ConfigErrors(items)) => items,
    }
}

fn with_map(text: &str, size: &str) -> String {
    format!(
        "{text}\n[[zones]]\nname = \"campus\"\nutility = \"water\"\ninlets = [\"inlet-main\"]\n[store]\npath = \"s.db\"\nmax_size = \"{size}\"\n"
    )
}

#[test]
fn a_zone_with_a_wrong_utility_is_one_error_not_one_per_meter() {
    let text = format!(
        "{}[[zones]]\nname = \"教学区\"\nutility = \"水\"\nparent = \"campus\"\ninlets = []\n[[meters]]\ndevice = \"inlet-main\"\nzone = \"教学区\"\ncategory = \"teaching\"\n[[unmetered]]\nzone = \"教学区\"\nper_day = 3\n",
        with_map(GOOD, "1GiB")
    );
    let d = diagnostics(&text);
    let errors: Vec<String> = d
        .iter()
        .filter(|d| d.severity == diag::Severity::Error)
        .map(|d| format!("{}: {}", d.path, d.message))
        .collect();
    assert_eq!(
        errors,
        ["zones[1].utility: needs utility = \"water\" or \"electricity\" (水 is written water)"],
        "{d:#?}"
    );
}

#[test]
fn an_unreadable_interval_is_not_also_a_store_too_small() {
    // at the default 10 s, 100 MiB would hold about 29 days: a second, false error
    let text = with_map(&GOOD.replace("interval = \"10s\"", "interval = \"30秒\""), "100MiB");
    let d = diagnostics(&text);
    let errors: Vec<&str> = d.iter().filter(|d| d.severity == diag::Severity::Error).map(|d| d.path.as_str()).collect();
    assert_eq!(errors, ["devices[0].interval"], "{d:#?}");
    let why = &d.iter().find(|d| d.path == "devices[0].interval").unwrap().message;
    assert!(why.contains("(秒 is s, 分钟 m, 小时 h, 天 d, 毫秒 ms)"), "{why}");
}

#[test]
fn an_error_reached_twice_is_said_once() {
    let text = format!(
        "{}[[tou]]\nmonths = [1,2,3,4,5,6,7,8,9,10,11,12]\nranges = [{{ from = \"23:00\", to = \"07:00\", period = \"valley\" }}, {{ from = \"07:00\", to = \"08:00\", period = \"flat\" }}, {{ from = \"08:00\", to = \"18:00\", period = \"peak\" }}, {{ from = \"18:00\", to = \"23:00\", period = \"flat\" }}]\n[[costs]]\nutility = \"water\"\nname = \"purchase\"\nkind = \"input\"\ntou = {{ peak = \"1.0\", valley = \"0.3\" }}\n",
        with_map(GOOD, "1GiB")
    );
    let d = diagnostics(&text);
    let tou: Vec<&diag::Diagnostic> = d.iter().filter(|d| d.path == "costs[0].tou").collect();
    assert_eq!(tou.len(), 1, "{d:#?}");
    assert!(tou[0].message.contains("no price for the `flat` period"), "{d:#?}");
}

#[test]
fn full_width_punctuation_outside_quotes_gets_a_hint() {
    let text = GOOD.replace("timeout = \"1s\"", "timeout ＝ \"1s\"");
    let d = diagnostics(&text);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(d[0].message.contains("hint: line 10 has `＝`: full-width punctuation outside quotes"), "{}", d[0].message);
    // in a quoted name it is text, not a mistake
    assert_eq!(full_width_lines("name = \"南湖，北区\" # 注释：好\n"), []);
    assert_eq!(full_width_lines("a = 1\ninlets = [\"a\"，\"b\"]\n"), [(2, '，')]);
}

#[test]
fn a_baseline_no_ledger_of_this_year_or_last_uses_is_said() {
    use chrono::Datelike;
    let base = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).year() - 1;
    let baseline = |year: i32| {
        format!(
            "[[baseline]]\nmonth = \"{year}-11\"\nutility = \"water\"\nrevenue = \"98500.00\"\ncost = \"104200.00\"\n[[baseline_targets]]\nmonth = \"{year}-10\"\nincidents = 1\n"
        )
    };
    let warned = |year: i32| {
        let text = format!("{}{}", with_map(GOOD, "1GiB"), baseline(year));
        diagnostics(&text).into_iter().find(|d| d.path == "baseline" && d.severity == diag::Severity::Warning)
    };
    let old = warned(2019).expect("a baseline of 2019 is said");
    assert!(
        old.message.contains(&format!("months 2019-10 … 2019-11 are not compared with any ledger of {}", base + 1))
            && old.message.contains(&format!("this year's baseline year is {base}")),
        "{}",
        old.message
    );
    assert!(warned(base).is_none(), "last year's is the baseline");
    assert!(warned(base - 1).is_none(), "the year before serves last year's ledgers");
}

#[test]
fn a_robot_without_the_pages_address_is_said() {
    let hook = "[alerts]\nwebhook_url = \"http://127.0.0.1:9/hook\"\nwebhook_format = \"wecom\"\n";
    let warned = |text: &str| {
        diagnostics(text).into_iter().any(|d| d.path == "alerts.page_url" && d.message.contains("no link to the page"))
    };
    assert!(warned(&format!("{GOOD}{hook}")));
    assert!(!warned(&format!("{GOOD}{hook}page_url = \"http://10.0.0.5:8080\"\n")));
    assert!(!warned(GOOD), "no robot, no link to miss");
    let no_robot = diagnostics(&format!("{GOOD}[alerts]\nwebhook_format = \"wecom\"\n"));
    assert!(
        no_robot.iter().any(|d| d.path == "alerts.webhook_url" && d.message.contains("no alert is sent")),
        "{no_robot:#?}"
    );
    let bad = diagnostics(&format!("{GOOD}{hook}page_url = \"10.0.0.5:8080\"\n"));
    assert!(bad.iter().any(|d| d.severity == diag::Severity::Error && d.path == "alerts.page_url"), "{bad:#?}");
}

#[test]
fn a_utility_without_costs_is_warned_that_its_gap_is_unknown() {
    let d = diagnostics(&with_map(GOOD, "1GiB"));
    let said: Vec<String> = d.iter().map(|d| format!("{}: {}", d.path, d.message)).collect();
    assert!(
        said.iter().any(|s| s.starts_with("costs: no [[costs]] for water: its fees are booked but its cost is not")),
        "{said:#?}"
    );
    // electricity has no zone here: nothing to say of it
    assert!(!said.iter().any(|s| s.contains("no [[costs]] for electricity")), "{said:#?}");
    let costed = format!(
        "{}[[costs]]\nutility = \"water\"\nname = \"purchase\"\nkind = \"input\"\nprice = \"2.10\"\n",
        with_map(GOOD, "1GiB")
    );
    assert!(!diagnostics(&costed).iter().any(|d| d.path == "costs"));
}

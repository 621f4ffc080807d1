//! The renewal list: the register's pipe sections ranked for renewal, each with the reason
//! in a sentence. Pure: the register, the zones' failures and how long the alert rules
//! have watched, and today, in; the ranked sections out.
//!
//! How a section is judged (what the data can support, no more):
//! - **failures per km per year**: a burst or a leak in the store is known by its zone,
//!   not by its pipe, so each section carries its zone's rate — the zone's bursts and leaks
//!   over the years the alert rules have run, per km of the zone's *registered* pipe. A
//!   leak raised during a burst in the same zone is that burst, counted once;
//! - **age against design life**: years since it was laid over its material's design life
//!   ([`super::Material::default_life`], or `[assets.material_life]`);
//! - **the water lost and its money**: the zone's failures' estimated losses (rate × how
//!   long each lasted), shared among its sections by length.
//!
//! The rank is by failure rate first (evidence of the section's zone failing), then by the
//! share of its design life used, then by name; sections of a zone never watched have no
//! rate and come after those that have one, by age.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::{Assets, Pipe};
use crate::lang::Lang;
use crate::model::AlertRule;

/// A burst or a leak, as the store's alert records give it.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub zone: String,
    pub rule: AlertRule,
    pub start: DateTime<Utc>,
    /// `None` while it lasts.
    pub end: Option<DateTime<Utc>>,
    /// Estimated loss, m³ a day and fen a day; `None`: not estimated.
    pub loss_per_day: Option<f64>,
    pub loss_fen_per_day: Option<i64>,
    /// The section it was repaired on, when the operator said which
    /// (`pumphouse assets record SECTION --kind repair --alert N`).
    pub section: Option<String>,
}

/// One section of the renewal list.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub rank: usize,
    pub pipe: Pipe,
    pub age: i32,
    pub life: u32,
    /// Bursts and leaks of its zone not tied to a section, and the zone's registered km.
    pub bursts: usize,
    pub leaks: usize,
    /// Failures repaired on this section (tied to it by a repair record).
    pub own: usize,
    pub zone_km: f64,
    /// Years the alert rules have watched; `None`: never.
    pub years: Option<f64>,
    /// Failures per km per year: the zone's not tied to a section, over the zone's
    /// registered km, and this section's own over its km; `None` when never watched.
    pub per_km_year: Option<f64>,
    /// The section's share (by length) of its zone's estimated losses, and how many of
    /// the zone's failures had no estimate.
    pub lost_m3: f64,
    pub lost_fen: i64,
    pub unestimated: usize,
    /// Of the estimated ones, how many had no money estimate (no tariff): their water is
    /// in `lost_m3`, their money is not in `lost_fen`, and the reason says so.
    pub unpriced: usize,
}

impl Candidate {
    pub fn life_share(&self) -> f64 {
        f64::from(self.age) / f64::from(self.life.max(1))
    }

    /// Why it stands where it does, in a sentence.
    pub fn reason(&self, lang: Lang) -> String {
        let p = &self.pipe;
        let pct = (100.0 * self.life_share()).round();
        let m = p.material.label(lang);
        let yuan = crate::ledger::export::yuan_text(self.lost_fen);
        let zh = lang == Lang::Zh;
        let head = if zh {
            format!(
                "{}（{m}，DN{}，{:.0} 米，{} 年敷设）：已用 {} 年，为设计年限 {} 年的 {pct:.0}%",
                p.id, p.diameter_mm, p.length_m, p.laid, self.age, self.life
            )
        } else {
            format!(
                "{} ({m}, DN{}, {:.0} m, laid {}): {} years, {pct:.0} % of its {}-year design life",
                p.id, p.diameter_mm, p.length_m, p.laid, self.age, self.life
            )
        };
        let (Some(years), Some(rate)) = (self.years, self.per_km_year) else {
            return if zh {
                format!("{head}；尚无故障记录（告警规则还没有在本库的数据上运行过）")
            } else {
                format!("{head}; no failure record (the alert rules have not run over this store)")
            };
        };
        let n = self.bursts + self.leaks;
        // a watch shorter than a year in days: "0.1 years" hides how little was seen
        let span = match (years < 1.0, zh) {
            (true, true) => format!("{:.0} 天", years * 365.25),
            (true, false) => format!("{:.0} days", years * 365.25),
            (false, true) => format!("{years:.1} 年"),
            (false, false) => format!("{years:.1} years"),
        };
        let mut missing = match (self.unestimated, zh) {
            (0, _) => String::new(),
            (k, true) => format!("，另有 {k} 次故障未估损失"),
            (k, false) => format!("; {k} of the failures have no estimate"),
        };
        missing += &match (self.unpriced, zh) {
            (0, _) => String::new(),
            (k, true) => format!("，{k} 次故障无水价、损失金额未计入"),
            (k, false) => format!("; {k} have no tariff, their money is not in the sum"),
        };
        let own = match (self.own, zh) {
            (0, _) => String::new(),
            (k, true) => format!("，另有 {k} 次故障经维修确认在本段"),
            (k, false) => format!(", and {k} repaired on this section itself"),
        };
        if zh {
            format!(
                "{head}；所在分区 {} 在 {span}内发生 {n} 次未指明管段的故障（爆管 {} 次、漏损 {} 次），登记管长 {:.2} 公里{own}，合每公里每年 {rate:.2} 次；本段损失 {:.0} m³（{yuan} 元，分区的按长度分摊）{missing}",
                p.zone, self.bursts, self.leaks, self.zone_km, self.lost_m3
            )
        } else {
            format!(
                "{head}; its zone {} had {n} failure(s) ({} burst(s), {} leak(s)) in {span} on {:.2} km of registered pipe{own}, {rate:.2} per km per year; it lost {:.0} m³ ({yuan} yuan; the zone's shared by length){missing}",
                p.zone, self.bursts, self.leaks, self.zone_km, self.lost_m3
            )
        }
    }
}

/// The renewal list as a sheet of the monthly files.
pub fn table(list: &[Candidate], lang: Lang) -> crate::ledger::export::Table {
    use crate::ledger::export::Cell;
    let head = [
        ("rank", "排名"),
        ("section", "管段"),
        ("zone", "分区"),
        ("material", "材质"),
        ("diameter (mm)", "管径(mm)"),
        ("length (m)", "长度(m)"),
        ("laid", "敷设年份"),
        ("age / design life", "已用 / 设计年限"),
        ("zone failures per km per year", "分区每公里每年故障"),
        ("lost, its share (m³)", "分摊损失水量(m³)"),
        ("its share (yuan)", "分摊损失金额(元)"),
        ("why", "原因"),
    ];
    let rows = list
        .iter()
        .map(|c| {
            let known = c.per_km_year.is_some();
            vec![
                Cell::Count(c.rank as i64),
                Cell::Text(c.pipe.id.clone()),
                Cell::Text(c.pipe.zone.clone()),
                Cell::Text(c.pipe.material.label(lang).to_string()),
                Cell::Count(i64::from(c.pipe.diameter_mm)),
                Cell::Num(c.pipe.length_m),
                Cell::Count(i64::from(c.pipe.laid)),
                Cell::Share(c.life_share()),
                c.per_km_year.map(Cell::Num).unwrap_or(Cell::Empty),
                if known { Cell::Num(c.lost_m3) } else { Cell::Empty },
                if known { Cell::Yuan(c.lost_fen) } else { Cell::Empty },
                Cell::Text(c.reason(lang)),
            ]
        })
        .collect();
    (lang.t("Pipe renewal", "管段更新排序"), head.iter().map(|(en, zh)| lang.t(en, zh).to_string()).collect(), rows)
}

/// The failures counted once each: a leak raised while a burst in the same zone was on
/// is that burst.
fn distinct(failures: &[Failure], now: DateTime<Utc>) -> Vec<&Failure> {
    let during_burst = |f: &Failure| {
        failures.iter().any(|b| {
            b.rule == AlertRule::Burst && b.zone == f.zone && b.start <= f.start && b.end.unwrap_or(now) >= f.start
        })
    };
    failures
        .iter()
        .filter(|f| match f.rule {
            AlertRule::Burst => true,
            AlertRule::NightFlow => !during_burst(f),
            _ => false,
        })
        .collect()
}

/// Ranks the register's sections. `years`: how long the alert rules have watched the
/// store (`None`: never); `seen_to`: the end of the data they have seen, where a failure
/// still on is counted to (not to today: readings that stopped are not water lost);
/// `today`: for ages.
pub fn rank(
    assets: &Assets,
    failures: &[Failure],
    years: Option<f64>,
    seen_to: DateTime<Utc>,
    today: NaiveDate,
) -> Vec<Candidate> {
    let now = seen_to;
    let failures = distinct(failures, now);
    let mut out: Vec<Candidate> = assets
        .pipes
        .iter()
        .map(|p| {
            let zone_m: f64 = assets.pipes.iter().filter(|q| q.zone == p.zone).map(|q| q.length_m).sum();
            let share = p.length_m / zone_m.max(f64::MIN_POSITIVE);
            // a failure tied to a section is that section's alone; the others are the zone's,
            // shared by length
            let named = |f: &Failure| f.section.as_ref().is_some_and(|s| assets.pipes.iter().any(|q| &q.id == s));
            let mine: Vec<&&Failure> = failures.iter().filter(|f| f.zone == p.zone && !named(f)).collect();
            let own: Vec<&&Failure> = failures.iter().filter(|f| f.section.as_deref() == Some(p.id.as_str())).collect();
            let bursts = mine.iter().filter(|f| f.rule == AlertRule::Burst).count();
            let mut lost_m3 = 0.0;
            let mut lost_fen = 0.0;
            let (mut unestimated, mut unpriced) = (0, 0);
            for (f, part) in mine.iter().map(|f| (f, share)).chain(own.iter().map(|f| (f, 1.0))) {
                let ms = (f.end.unwrap_or(now) - f.start).num_milliseconds().max(0);
                match (f.loss_per_day, f.loss_fen_per_day) {
                    (Some(m3), fen) => {
                        lost_m3 += part * m3 * ms as f64 / 86_400_000.0;
                        match fen {
                            Some(fen) => lost_fen += part * (i128::from(fen) * i128::from(ms) / 86_400_000) as f64,
                            None => unpriced += 1,
                        }
                    }
                    (None, _) => unestimated += 1,
                }
            }
            let life = assets.life(p.material);
            Candidate {
                rank: 0,
                pipe: p.clone(),
                age: (today.year() - p.laid).max(0),
                life,
                bursts,
                leaks: mine.len() - bursts,
                own: own.len(),
                zone_km: zone_m / 1000.0,
                years,
                per_km_year: years
                    .filter(|y| *y > 0.0)
                    .map(|y| (mine.len() as f64 / (zone_m / 1000.0) + own.len() as f64 / (p.length_m / 1000.0)) / y),
                lost_m3,
                lost_fen: i64::try_from(lost_fen.round() as i128).unwrap_or(i64::MAX),
                unestimated,
                unpriced,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        let rate = |c: &Candidate| c.per_km_year.unwrap_or(-1.0);
        rate(b)
            .total_cmp(&rate(a))
            .then(b.life_share().total_cmp(&a.life_share()))
            .then_with(|| a.pipe.id.cmp(&b.pipe.id))
    });
    for (i, c) in out.iter_mut().enumerate() {
        c.rank = i + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::Material;
    use chrono::TimeZone;

    fn pipe(id: &str, zone: &str, material: Material, length_m: f64, laid: i32) -> Pipe {
        Pipe { id: id.into(), zone: zone.into(), from: None, to: None, material, diameter_mm: 150, length_m, laid }
    }

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn failure(zone: &str, rule: AlertRule, start: DateTime<Utc>, days: i64, per_day: Option<(f64, i64)>) -> Failure {
        Failure {
            zone: zone.into(),
            rule,
            start,
            end: Some(start + chrono::TimeDelta::days(days)),
            loss_per_day: per_day.map(|x| x.0),
            loss_fen_per_day: per_day.map(|x| x.1),
            section: None,
        }
    }

    /// A hand-ranked register: south (1.0 km) had two bursts and a leak in two years,
    /// east (2.0 km) one leak, north none.
    #[test]
    fn sections_rank_by_their_zones_failures_then_by_age() {
        let assets = Assets {
            pipes: vec![
                pipe("N-1", "north", Material::CastIron, 500.0, 1960), // 66 years: 132 %
                pipe("S-1", "south", Material::CastIron, 600.0, 1975), // 51 years: 102 %
                pipe("S-2", "south", Material::Pe, 400.0, 2010),       // 16 years: 32 %
                pipe("E-1", "east", Material::GalvanizedSteel, 2000.0, 2001), // 25 years: 83 %
            ],
            life: Material::ALL.iter().map(|m| (*m, m.default_life())).collect(),
            ..Default::default()
        };
        let failures = vec![
            failure("south", AlertRule::Burst, at(2025, 7, 1), 1, Some((240.0, 96_000))),
            // the leak raised during that burst is the burst
            failure("south", AlertRule::NightFlow, at(2025, 7, 1) + chrono::TimeDelta::hours(3), 1, Some((10.0, 4000))),
            failure("south", AlertRule::Burst, at(2026, 3, 1), 1, None),
            failure("south", AlertRule::NightFlow, at(2026, 5, 1), 10, Some((24.0, 9600))),
            failure("east", AlertRule::NightFlow, at(2026, 2, 1), 5, Some((48.0, 19_200))),
            // not a failure of a pipe
            failure("north", AlertRule::PressureLow, at(2026, 2, 1), 1, None),
        ];
        let r = rank(&assets, &failures, Some(2.0), at(2026, 12, 5), at(2026, 12, 5).date_naive());
        let order: Vec<&str> = r.iter().map(|c| c.pipe.id.as_str()).collect();
        // south: 3 failures / 1.0 km / 2 y = 1.5; east: 1 / 2.0 / 2 = 0.25; north 0
        assert_eq!(order, ["S-1", "S-2", "E-1", "N-1"]);
        assert_eq!((r[0].bursts, r[0].leaks, r[0].unestimated), (2, 1, 1));
        assert!((r[0].per_km_year.unwrap() - 1.5).abs() < 1e-9);
        assert!((r[2].per_km_year.unwrap() - 0.25).abs() < 1e-9);
        // south lost 240 + 240 m³ (the July burst, a day; the May leak, 10 days at 24):
        // S-1 carries 60 % of it: 288 m³, 0.6 × (960.00 + 960.00) = 1 152.00 yuan
        assert!((r[0].lost_m3 - 288.0).abs() < 1e-6, "{}", r[0].lost_m3);
        assert_eq!(r[0].lost_fen, 115_200);
        assert_eq!(r[1].lost_fen, 76_800);
        assert_eq!(r[3].age, 66);
        let en = r[0].reason(Lang::En);
        assert!(en.starts_with("S-1 (cast iron, DN150, 600 m, laid 1975): 51 years, 102 % of its 50-year design life; its zone south had 3 failure(s) (2 burst(s), 1 leak(s)) in 2.0 years on 1.00 km of registered pipe, 1.50 per km per year; it lost 288 m³ (1152.00 yuan; the zone's shared by length); 1 of the failures have no estimate"), "{en}");
        let zh = r[0].reason(Lang::Zh);
        assert!(zh.contains("合每公里每年 1.50 次") && zh.contains("本段损失 288 m³（1152.00 元"), "{zh}");

        // the May leak repaired on S-2: S-2 carries it alone (1 / 0.4 km / 2 y = 1.25, and
        // its 240 m³), the zone's other two are shared (2 / 1.0 km / 2 y = 1.0 each)
        let mut tied = failures.clone();
        tied[3].section = Some("S-2".into());
        let r = rank(&assets, &tied, Some(2.0), at(2026, 12, 5), at(2026, 12, 5).date_naive());
        let order: Vec<&str> = r.iter().map(|c| c.pipe.id.as_str()).collect();
        assert_eq!(order, ["S-2", "S-1", "E-1", "N-1"]);
        assert!((r[0].per_km_year.unwrap() - 2.25).abs() < 1e-9, "{:?}", r[0].per_km_year);
        assert!((r[1].per_km_year.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!((r[0].own, r[1].own, r[1].bursts + r[1].leaks), (1, 0, 2));
        // S-2: 40 % of the July burst (96 m³, 384.00 yuan) and all of the May leak (240 m³, 960.00)
        assert!((r[0].lost_m3 - 336.0).abs() < 1e-6, "{}", r[0].lost_m3);
        assert_eq!((r[0].lost_fen, r[1].lost_fen), (134_400, 57_600));
        assert!(
            r[0].reason(Lang::En)
                .contains("on 1.00 km of registered pipe, and 1 repaired on this section itself, 2.25 per km per year"),
            "{}",
            r[0].reason(Lang::En)
        );
    }

    #[test]
    fn a_store_never_watched_ranks_by_age_and_says_so() {
        let assets = Assets {
            pipes: vec![pipe("A", "z", Material::Pe, 100.0, 2000), pipe("B", "z", Material::CastIron, 100.0, 1970)],
            ..Default::default()
        };
        let r = rank(&assets, &[], None, at(2026, 1, 1), at(2026, 1, 1).date_naive());
        assert_eq!(r[0].pipe.id, "B"); // 56 of 50 years before 26 of 50
        assert!(r[0].per_km_year.is_none());
        assert!(r[0].reason(Lang::En).ends_with("no failure record (the alert rules have not run over this store)"));
    }

    #[test]
    fn water_lost_without_a_tariff_is_not_money_lost_at_zero() {
        let assets = Assets { pipes: vec![pipe("A", "z", Material::Pe, 100.0, 2000)], ..Default::default() };
        let f =
            vec![Failure { loss_per_day: Some(24.0), ..failure("z", AlertRule::NightFlow, at(2026, 1, 1), 2, None) }];
        let r = rank(&assets, &f, Some(1.0), at(2026, 2, 1), at(2026, 2, 1).date_naive());
        assert_eq!((r[0].lost_m3.round(), r[0].lost_fen, r[0].unpriced), (48.0, 0, 1));
        assert!(
            r[0].reason(Lang::En).ends_with("; 1 have no tariff, their money is not in the sum"),
            "{}",
            r[0].reason(Lang::En)
        );
    }
}

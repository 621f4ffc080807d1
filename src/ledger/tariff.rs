//! Tariffs and charges. Pure: hourly consumption in local time and effective-dated
//! tariffs in, charge lines in fen out.
//!
//! Money is `rust_decimal::Decimal` in yuan for prices and whole fen (`i64`) for amounts:
//! never binary floating point. Volumes come in as f64 from the meters and are rounded to
//! three decimals (a litre, a watt-hour) before they meet a price. Each charge line is
//! rounded half-up to the fen, as a bill prints it; a total is the sum of its lines.
//!
//! - **Effective dating:** a tariff applies from its `from` date (local) until the next
//!   one of the same category, so a price change mid-month prices each day at its own
//!   tariff.
//! - **Tiers** (阶梯水价) are per customer per month: the month's consumption fills the
//!   tiers in time order, so a tier crossing splits the hour in which it happens, and a
//!   mid-month tariff change keeps the month's cumulative position in the tiers.
//! - **Time of use** (峰/平/谷, optional 尖峰): a schedule per season maps every minute of
//!   the day to a period; ranges may cross midnight. An hour split by a boundary is
//!   shared by minutes (consumption within an hour is taken as uniform).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use rust_decimal::prelude::*;
use rust_decimal::Decimal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    Sharp,
    Peak,
    Flat,
    Valley,
}

impl Period {
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "sharp" => Some(Period::Sharp),
            "peak" => Some(Period::Peak),
            "flat" => Some(Period::Flat),
            "valley" => Some(Period::Valley),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Sharp => "sharp",
            Period::Peak => "peak",
            Period::Flat => "flat",
            Period::Valley => "valley",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            Period::Sharp => "尖峰",
            Period::Peak => "峰",
            Period::Flat => "平",
            Period::Valley => "谷",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One season of a time-of-use schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Season {
    /// Months (1–12) the season covers.
    pub months: Vec<u32>,
    /// (start, end, period); `end <= start` crosses midnight. Together they cover the day.
    pub ranges: Vec<(NaiveTime, NaiveTime, Period)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TouSchedule {
    pub seasons: Vec<Season>,
}

fn minute_of_day(t: NaiveTime) -> u32 {
    t.hour() * 60 + t.minute()
}

impl Season {
    /// The period of a minute of the day (0..1440).
    pub fn period_at(&self, minute: u32) -> Option<Period> {
        self.ranges.iter().find_map(|(a, b, p)| {
            let (a, b) = (minute_of_day(*a), minute_of_day(*b));
            let inside = if a < b { minute >= a && minute < b } else { minute >= a || minute < b };
            inside.then_some(*p)
        })
    }

    /// Minutes of the day no range covers (a schedule must cover them all).
    pub fn uncovered(&self) -> Vec<u32> {
        (0..1440).filter(|m| self.period_at(*m).is_none()).collect()
    }
}

impl TouSchedule {
    pub fn season(&self, month: u32) -> Option<&Season> {
        self.seasons.iter().find(|s| s.months.contains(&month))
    }

    /// How the hour starting at `hour` (local) divides between periods, in minutes.
    pub fn shares(&self, hour: NaiveDateTime) -> Vec<(Period, u32)> {
        let Some(season) = self.season(hour.month()) else { return Vec::new() };
        let start = hour.hour() * 60;
        let mut out: Vec<(Period, u32)> = Vec::new();
        for m in start..start + 60 {
            if let Some(p) = season.period_at(m) {
                match out.iter_mut().find(|(q, _)| *q == p) {
                    Some((_, n)) => *n += 1,
                    None => out.push((p, 1)),
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    /// Upper bound of the tier in units per month; `None` for the last tier.
    pub upto: Option<Decimal>,
    pub price: Decimal,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Price {
    Flat(Decimal),
    Tiered(Vec<Tier>),
    TimeOfUse(BTreeMap<Period, Decimal>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tariff {
    pub name: String,
    pub from: NaiveDate,
    pub price: Price,
}

impl Tariff {
    /// The tariff's name for a reader: its configured name, or its category and the day
    /// it took effect (`category from YYYY-MM-DD`, as `[[tariffs]]` names an unnamed one).
    pub fn label(&self) -> crate::lang::Text {
        match self.name.strip_suffix(&format!(" from {}", self.from)) {
            Some(category) => crate::lang::Text::new(self.name.clone(), format!("{category}（{} 起）", self.from)),
            None => crate::lang::Text::new(self.name.clone(), self.name.clone()),
        }
    }
}

/// The tariff in force on `date`: the latest one whose `from` is not after it.
pub fn in_force(tariffs: &[Tariff], date: NaiveDate) -> Option<(usize, &Tariff)> {
    tariffs.iter().enumerate().filter(|(_, t)| t.from <= date).max_by_key(|(_, t)| t.from)
}

/// What a charge line is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Band {
    Flat,
    Tier(usize),
    Period(Period),
}

impl Band {
    pub fn zh(&self) -> String {
        match self {
            Band::Flat => "单一价".into(),
            Band::Tier(i) => format!("第{}阶梯", i + 1),
            Band::Period(p) => p.zh().into(),
        }
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Band::Flat => f.write_str("flat"),
            Band::Tier(i) => write!(f, "tier {}", i + 1),
            Band::Period(p) => write!(f, "{p}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub tariff: crate::lang::Text,
    pub band: Band,
    /// Units, rounded to 0.001.
    pub quantity: Decimal,
    /// Yuan per unit.
    pub price: Decimal,
    pub amount_fen: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Charge {
    pub lines: Vec<Line>,
    /// A line's quantity or amount was beyond any sensible range and was not charged.
    pub implausible: bool,
    /// Volume of hours for which no tariff was in force (or no time-of-use period
    /// applied): not charged, and never silently.
    pub uncharged: f64,
    /// The first such hour.
    pub uncharged_from: Option<NaiveDateTime>,
}

impl Charge {
    pub fn total_fen(&self) -> i64 {
        self.lines.iter().map(|l| l.amount_fen).sum()
    }

    pub fn quantity(&self) -> Decimal {
        self.lines.iter().map(|l| l.quantity).sum()
    }
}

/// Rounds units to 0.001 (a litre, a watt-hour).
pub fn units(v: f64) -> Decimal {
    if !v.is_finite() || v.abs() > 1e15 {
        return Decimal::ZERO;
    }
    Decimal::from_f64(v).unwrap_or_default().round_dp_with_strategy(3, RoundingStrategy::MidpointAwayFromZero)
}

/// quantity × price, in fen, rounded half away from zero; `None` when the product is out
/// of any sensible range (a garbage totalizer), never a panic.
pub fn checked_amount_fen(quantity: Decimal, price: Decimal) -> Option<i64> {
    quantity
        .checked_mul(price)?
        .checked_mul(Decimal::ONE_HUNDRED)?
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
        .filter(|f| f.abs() < 1_000_000_000_000_000)
}

/// [`checked_amount_fen`], with an impossible amount as 0 (the caller flags it).
pub fn amount_fen(quantity: Decimal, price: Decimal) -> i64 {
    checked_amount_fen(quantity, price).unwrap_or(0)
}

/// Prices one month of a customer's (or a purchase's) hourly consumption, given in local
/// hours in time order. Hours before the first tariff's `from` are not charged (and
/// show up as the difference between consumption and charged quantity).
pub fn charge(hours: &[(NaiveDateTime, f64)], tariffs: &[Tariff], tou: Option<&TouSchedule>) -> Charge {
    // (tariff index, band) → quantity (f64 until the end, then rounded once per line)
    let mut acc: BTreeMap<(usize, Band), f64> = BTreeMap::new();
    let mut cumulative = 0.0f64;
    let mut uncharged = 0.0f64;
    let mut uncharged_from: Option<NaiveDateTime> = None;
    for (hour, v) in hours {
        if *v == 0.0 {
            continue;
        }
        let Some((ti, tariff)) = in_force(tariffs, hour.date()) else {
            uncharged += v;
            uncharged_from.get_or_insert(*hour);
            continue;
        };
        match &tariff.price {
            Price::Flat(_) => *acc.entry((ti, Band::Flat)).or_default() += v,
            Price::Tiered(tiers) => {
                let mut left = *v;
                for (k, tier) in tiers.iter().enumerate() {
                    if left <= 0.0 {
                        break;
                    }
                    let room = match tier.upto.and_then(|u| u.to_f64()) {
                        Some(u) => (u - cumulative).max(0.0),
                        None => f64::INFINITY,
                    };
                    let take = left.min(room);
                    if take > 0.0 {
                        *acc.entry((ti, Band::Tier(k))).or_default() += take;
                        cumulative += take;
                        left -= take;
                    }
                }
            }
            Price::TimeOfUse(_) => {
                let shares = tou.map(|s| s.shares(*hour)).unwrap_or_default();
                let covered: u32 = shares.iter().map(|(_, m)| *m).sum();
                for (p, minutes) in shares {
                    *acc.entry((ti, Band::Period(p))).or_default() += v * f64::from(minutes) / 60.0;
                }
                if covered < 60 {
                    uncharged += v * f64::from(60 - covered) / 60.0;
                    uncharged_from.get_or_insert(*hour);
                }
            }
        }
    }
    let mut out = Charge { uncharged, uncharged_from, ..Charge::default() };
    for ((ti, band), q) in acc {
        let t = &tariffs[ti];
        let price = match (&t.price, &band) {
            (Price::Flat(p), _) => *p,
            (Price::Tiered(tiers), Band::Tier(k)) => tiers.get(*k).map(|x| x.price).unwrap_or_default(),
            (Price::TimeOfUse(m), Band::Period(p)) => m.get(p).copied().unwrap_or_default(),
            _ => Decimal::ZERO,
        };
        let quantity = units(q);
        let amount = checked_amount_fen(quantity, price);
        out.implausible |= amount.is_none() || !q.is_finite() || q.abs() > 1e12;
        out.lines.push(Line { tariff: t.label(), band, quantity, price, amount_fen: amount.unwrap_or(0) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn at(day: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 3, day).unwrap().and_hms_opt(h, 0, 0).unwrap()
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    /// A common three-band schedule: valley 23:00–07:00 (across midnight), peak
    /// 08:00–11:30 and 18:00–23:00, flat the rest.
    fn schedule() -> TouSchedule {
        TouSchedule {
            seasons: vec![Season {
                months: (1..=12).collect(),
                ranges: vec![
                    (hm(23, 0), hm(7, 0), Period::Valley),
                    (hm(7, 0), hm(8, 0), Period::Flat),
                    (hm(8, 0), hm(11, 30), Period::Peak),
                    (hm(11, 30), hm(18, 0), Period::Flat),
                    (hm(18, 0), hm(23, 0), Period::Peak),
                ],
            }],
        }
    }

    #[test]
    fn the_schedule_covers_the_day_and_crosses_midnight() {
        let s = schedule();
        assert!(s.seasons[0].uncovered().is_empty());
        assert_eq!(s.shares(at(1, 23)), vec![(Period::Valley, 60)]);
        assert_eq!(s.shares(at(2, 0)), vec![(Period::Valley, 60)]);
        assert_eq!(s.shares(at(2, 11)), vec![(Period::Peak, 30), (Period::Flat, 30)]);
    }

    #[test]
    fn tou_split_across_midnight_to_the_fen() {
        let tou = Tariff {
            name: "purchase".into(),
            from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            price: Price::TimeOfUse(BTreeMap::from([
                (Period::Peak, d("1.0512")),
                (Period::Flat, d("0.6215")),
                (Period::Valley, d("0.3126")),
            ])),
        };
        // 22:00–02:00 across midnight: 40 kWh at 22:00 (peak), 30 at 23:00, 25 at 00:00,
        // 20 at 01:00 (valley); and 12 kWh at 11:00 (half peak, half flat)
        let hours = vec![(at(1, 11), 12.0), (at(1, 22), 40.0), (at(1, 23), 30.0), (at(2, 0), 25.0), (at(2, 1), 20.0)];
        let c = charge(&hours, &[tou], Some(&schedule()));
        let by: BTreeMap<String, (Decimal, i64)> =
            c.lines.iter().map(|l| (l.band.to_string(), (l.quantity, l.amount_fen))).collect();
        // peak: 40 + 6 = 46 kWh × 1.0512 = 48.3552 → 4835.52 fen → 4836
        assert_eq!(by["peak"], (d("46.000"), 4836));
        // flat: 6 kWh × 0.6215 = 3.729 → 372.9 fen → 373
        assert_eq!(by["flat"], (d("6.000"), 373));
        // valley: 75 kWh × 0.3126 = 23.445 → 2344.5 fen → 2345 (half away from zero)
        assert_eq!(by["valley"], (d("75.000"), 2345));
        assert_eq!(c.total_fen(), 4836 + 373 + 2345);
    }

    #[test]
    fn a_tier_crossing_splits_the_hour_it_happens_in() {
        // 0–15 m³ at 2.85, 15–22 at 3.80, above at 4.75 (per customer per month)
        let t = Tariff {
            name: "residential".into(),
            from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            price: Price::Tiered(vec![
                Tier { upto: Some(d("15")), price: d("2.85") },
                Tier { upto: Some(d("22")), price: d("3.80") },
                Tier { upto: None, price: d("4.75") },
            ]),
        };
        let hours = vec![(at(3, 8), 10.0), (at(10, 8), 8.0), (at(20, 8), 5.5)];
        let c = charge(&hours, &[t], None);
        let q: Vec<(String, Decimal, i64)> =
            c.lines.iter().map(|l| (l.band.to_string(), l.quantity, l.amount_fen)).collect();
        // tier 1: 15 × 2.85 = 42.75; tier 2: 7 × 3.80 = 26.60; tier 3: 1.5 × 4.75 = 7.125 → 7.13
        assert_eq!(
            q,
            vec![
                ("tier 1".into(), d("15.000"), 4275),
                ("tier 2".into(), d("7.000"), 2660),
                ("tier 3".into(), d("1.500"), 713)
            ]
        );
        assert_eq!(c.total_fen(), 7648);
    }

    #[test]
    fn a_mid_month_price_change_lands_on_the_right_days() {
        let old = Tariff {
            name: "teaching 2025".into(),
            from: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            price: Price::Flat(d("3.45")),
        };
        let new = Tariff {
            name: "teaching 2026-03-16".into(),
            from: NaiveDate::from_ymd_opt(2026, 3, 16).unwrap(),
            price: Price::Flat(d("3.95")),
        };
        let mut hours = Vec::new();
        for day in 1..=31 {
            hours.push((at(day, 10), 2.0)); // 2 m³ a day
        }
        let c = charge(&hours, &[new, old], None);
        // 1–15 March: 30 m³ × 3.45 = 103.50; 16–31 March: 32 m³ × 3.95 = 126.40
        let got: Vec<(String, Decimal, i64)> =
            c.lines.iter().map(|l| (l.tariff.en.clone(), l.quantity, l.amount_fen)).collect();
        assert_eq!(
            got,
            vec![("teaching 2026-03-16".into(), d("32.000"), 12640), ("teaching 2025".into(), d("30.000"), 10350)]
        );
        assert_eq!(c.total_fen(), 22990);
    }

    #[test]
    fn tiers_continue_across_a_mid_month_change() {
        let tiers = |p1: &str, p2: &str| {
            Price::Tiered(vec![Tier { upto: Some(d("10")), price: d(p1) }, Tier { upto: None, price: d(p2) }])
        };
        let a = Tariff { name: "a".into(), from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), price: tiers("2", "3") };
        let b = Tariff {
            name: "b".into(),
            from: NaiveDate::from_ymd_opt(2026, 3, 15).unwrap(),
            price: tiers("2.5", "3.5"),
        };
        // 8 m³ before the change, 6 after: the month has used 8 of tier 1 when b starts
        let c = charge(&[(at(5, 9), 8.0), (at(20, 9), 6.0)], &[a, b], None);
        let got: Vec<(String, String, Decimal, i64)> =
            c.lines.iter().map(|l| (l.tariff.en.clone(), l.band.to_string(), l.quantity, l.amount_fen)).collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), "tier 1".into(), d("8.000"), 1600),
                ("b".into(), "tier 1".into(), d("2.000"), 500),
                ("b".into(), "tier 2".into(), d("4.000"), 1400),
            ]
        );
    }

    #[test]
    fn an_absurd_quantity_is_flagged_not_a_panic() {
        let t = Tariff {
            name: "x".into(),
            from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            price: Price::Flat(d("4.2")),
        };
        let c = charge(&[(at(5, 9), 3.0e27)], &[t], None);
        assert!(c.implausible);
        assert_eq!(c.total_fen(), 0);
        assert_eq!(checked_amount_fen(Decimal::MAX, d("2")), None);
    }

    #[test]
    fn hours_before_any_tariff_are_not_charged() {
        let t = Tariff {
            name: "x".into(),
            from: NaiveDate::from_ymd_opt(2026, 3, 10).unwrap(),
            price: Price::Flat(d("1")),
        };
        let c = charge(&[(at(5, 9), 8.0), (at(12, 9), 1.25)], &[t], None);
        assert_eq!(c.quantity(), d("1.250"));
        assert_eq!(c.total_fen(), 125);
    }
}

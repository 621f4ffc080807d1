//! What an alert says to a person. The rules return their evidence as a [`Fact`]: the
//! kind of finding and its figures, with times as instants. It is stored as JSON in the
//! alert's row and rendered only when someone reads it, in the site's language and local
//! time ([`Voice`]), so the same alert reads in Chinese on the page and in a robot
//! message, in English for an English site, and never with a UTC time beside a local
//! one. Rows written before evidence was structured hold plain text, shown as it is.
//!
//! Rule identifiers (`night_flow`, `burst`) stay English in the JSON API, beside the
//! labels made here.

use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::lang::Lang;
use crate::model::{AlertRule, Quantity, Severity};
use crate::store::AlertRow;

/// Whom an alert speaks to: their language and their clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Voice {
    pub lang: Lang,
    pub tz: Tz,
}

impl Voice {
    pub fn new(lang: Lang, tz: Tz) -> Voice {
        Voice { lang, tz }
    }

    /// A stored instant as local time, `YYYY-MM-DD HH:MM`.
    pub fn time(self, ms: i64) -> String {
        Utc.timestamp_millis_opt(ms)
            .single()
            .map(|t| t.with_timezone(&self.tz).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "?".into())
    }

    fn t<'s>(self, en: &'s str, zh: &'s str) -> &'s str {
        self.lang.t(en, zh)
    }
}

/// Why a night-flow leak is believed: the signal that raised it, how sure the estimate
/// is, and how soon a leak of its size is certain to be raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakWhy {
    /// `true` for the zone's balance (inflow less metered use), `false` for its inflow.
    pub balance: bool,
    /// Half-width of the rate's 95 % band, m³/h (two noise units over √nights).
    pub band: f64,
    /// Nights the estimate stands on.
    pub nights: f64,
    /// The rate in units of the zone's night-to-night noise.
    pub units: f64,
    /// Nights a leak of this size takes to be surely raised; `None`: below that size,
    /// whether it is raised depends on the nights' noise.
    pub certain_in: Option<f64>,
    /// Nights compared with nights of the same kind: "rest_or_work" or "weekday".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rhythm: Option<String>,
}

/// A phase of a meter: `None` for a single-phase meter.
pub type Phase = Option<u8>;

/// One finding, with its figures. `None` figures are unknown and read "?", never 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fact {
    /// Text as written: evidence stored before it was structured.
    Said {
        text: String,
    },
    NightFlow {
        from_hour: u32,
        to_hour: u32,
        rate: Option<f64>,
        noise: Option<f64>,
        usual: Option<f64>,
        night: NaiveDate,
        /// What was watched and why it is believed (absent from older records).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<LeakWhy>,
    },
    /// A pressure point's night head below what the zone's inflow predicts
    /// ([`super::night_pressure`]).
    NightPressure {
        point: String,
        unit: String,
        from_hour: u32,
        to_hour: u32,
        /// The night's mean fall below the prediction, its noise, and the fall in noise units.
        fall: Option<f64>,
        noise: Option<f64>,
        units: Option<f64>,
        /// The evidence (CUSUM, noise units) when it was raised, and the nights it took.
        evidence: f64,
        nights: f64,
        /// Nights a fall this size takes to be surely raised (`None`: not surely).
        certain_in: Option<f64>,
        /// The zone's night flow (or balance) above its usual, m³/h, ± its band.
        rate: Option<f64>,
        band: Option<f64>,
        night: NaiveDate,
    },
    Burst {
        inflow: f64,
        usual: f64,
        high: f64,
        mean: f64,
        weekend: bool,
        /// (now, usually), where the pressure fell with it.
        pressure: Option<(f64, f64)>,
        rise: f64,
        minutes: i64,
    },
    BurstWithoutHistory {
        rise: f64,
        before: f64,
        pressure: Option<(f64, f64)>,
    },
    ContinuousFlow {
        hours: usize,
        floor: f64,
        last_hour: f64,
    },
    Pressure {
        value: f64,
        limit: f64,
        unit: String,
        above: bool,
    },
    Silent {
        last_good_ms: i64,
    },
    TotalizerStuck {
        total: f64,
        hours: f64,
        mean_flow: f64,
    },
    Unaccounted {
        volume: f64,
        input: f64,
    },
    Unusual {
        value: f64,
        usual: f64,
        unit: String,
    },
    ValveCommand {
        position: f64,
        command: f64,
    },
    ValveSwitches {
        position: f64,
        open: bool,
        closed: bool,
    },
    Quality {
        quantity: Quantity,
        value: f64,
        limit: f64,
        unit: String,
        above: bool,
    },
    Overcurrent {
        phase: Phase,
        current: f64,
        rated: f64,
    },
    PhaseLost {
        /// (phase, volts) of each lost phase.
        phases: Vec<(Phase, f64)>,
        nominal: f64,
    },
    Voltage {
        phase: Phase,
        value: f64,
        low: f64,
        high: f64,
    },
    PhaseImbalance {
        phase: Phase,
        deviation: f64,
        mean: f64,
        max: f64,
    },
    LowPowerFactor {
        power_factor: f64,
        min: f64,
        current: f64,
    },
    NoSupply {
        /// The pressure point that shows it, `None` for the zone's inflow.
        point: Option<String>,
        value: f64,
        unit: String,
        below: f64,
        customers: usize,
    },
    StoreReplaced {
        aside: String,
    },
    /// A register valve not exercised: when it last was (none on record: since its install
    /// year), and how often it should be.
    ValveExercise {
        last_ms: Option<i64>,
        installed: i32,
        every_days: i64,
    },
    /// A meter's clock less the gateway's (seconds), and the tolerance.
    MeterClock {
        offset_s: f64,
        tolerance_s: f64,
    },
}

impl Fact {
    /// What the store keeps: the fact as JSON.
    pub fn stored(&self) -> String {
        // cannot fail: strings and numbers only (serde_json writes a non-finite one as null)
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored evidence column: a fact, or text written before facts were stored.
    pub fn from_stored(s: &str) -> Fact {
        if s.starts_with('{') {
            if let Ok(f) = serde_json::from_str(s) {
                return f;
            }
        }
        Fact::Said { text: s.to_string() }
    }

    /// The fact in English on UTC, as the rules' tests read it.
    #[cfg(test)]
    pub fn en(&self) -> String {
        self.render(Voice::new(Lang::En, chrono_tz::UTC))
    }

    /// The fact as a sentence.
    pub fn render(&self, v: Voice) -> String {
        // a fact neither half renders is shown as stored, never as an empty sentence
        self.render_flows(v).or_else(|| self.render_devices(v)).unwrap_or_else(|| self.stored())
    }

    fn render_flows(&self, v: Voice) -> Option<String> {
        let zh = v.lang == Lang::Zh;
        let num = |x: Option<f64>| x.map_or("?".to_string(), |x| format!("{x:.2}"));
        let drop = |p: &Option<(f64, f64)>| {
            p.map(|(now, was)| {
                if zh {
                    format!("，压力 {now:.3}（通常 {was:.3}）")
                } else {
                    format!(", pressure {now:.3} (usually {was:.3})")
                }
            })
            .unwrap_or_default()
        };
        Some(match self {
            Fact::Said { text } => text.clone(),
            Fact::NightFlow { from_hour, to_hour, rate, noise, usual, night, why: Some(w) } => {
                let (rate, usual, noise) = (num(*rate), num(*usual), num(*noise));
                let band = format!("{:.2}", w.band);
                let units = format!("{:.1}", w.units);
                let nights = format!("{:.0}", w.nights.max(1.0));
                if zh {
                    let signal =
                        if w.balance { "本区水量平衡（进水减计量用水）" } else { "本区进水" };
                    let certain = match w.certain_in {
                        Some(n) if n <= 1.0 => "这样大小的漏损当夜必被发现".to_string(),
                        Some(n) => format!("这样大小的漏损 {n:.0} 夜内必被发现"),
                        None => "这样大小的漏损能否发现取决于夜间波动".to_string(),
                    };
                    let rhythm = match w.rhythm.as_deref() {
                        Some("weekday") => "，与同一星期几的夜晚相比",
                        Some(_) => "，与同类夜晚（休息日前夜或工作日前夜）相比",
                        None => "",
                    };
                    format!("{signal}夜间（{from_hour:02}:00–{to_hour:02}:00）比常值 {usual} m³/h 高 {rate} ± {band} m³/h（依据 {nights} 夜{rhythm}），为本区夜间波动（{noise} m³/h）的 {units} 倍；{certain}；{night} 夜间首次出现")
                } else {
                    let signal = if w.balance {
                        "the zone's night balance (inflow less metered use)"
                    } else {
                        "the zone's night inflow"
                    };
                    let certain = match w.certain_in {
                        Some(n) if n <= 1.0 => "a leak this size is surely raised the night it starts".to_string(),
                        Some(n) => format!("a leak this size is surely raised within {n:.0} nights"),
                        None => "whether a leak this size is raised depends on the nights' noise".to_string(),
                    };
                    let rhythm = match w.rhythm.as_deref() {
                        Some("weekday") => ", against nights of the same weekday",
                        Some(_) => ", against nights of the same kind (before a rest day or a working day)",
                        None => "",
                    };
                    format!("{signal} stands {rate} ± {band} m³/h above its usual {usual} m³/h at night ({from_hour:02}:00–{to_hour:02}:00; {nights} nights of evidence{rhythm}): {units} units of its night-to-night noise ({noise} m³/h); {certain}; first seen in the night of {night}")
                }
            }
            Fact::NightFlow { from_hour, to_hour, rate, noise, usual, night, why: None } => {
                let band = num(noise.map(|n| 2.0 * n));
                let (rate, usual, noise) = (num(*rate), num(*usual), num(*noise));
                if zh {
                    format!("夜间（{from_hour:02}:00–{to_hour:02}:00）流量比本区常值 {usual} m³/h 高 {rate} ± {band} m³/h（常值为近期正常夜晚的中位数，夜间波动 {noise} m³/h）；{night} 夜间首次出现")
                } else {
                    format!("night flow ({from_hour:02}:00–{to_hour:02}:00) {rate} ± {band} m³/h above this zone's usual {usual} m³/h (the median of its last clean nights, night-to-night noise {noise} m³/h); first seen in the night of {night}")
                }
            }
            Fact::NightPressure {
                point,
                unit,
                from_hour,
                to_hour,
                fall,
                noise,
                units,
                evidence,
                nights,
                certain_in,
                rate,
                band,
                night,
            } => {
                let fall = fall.map_or("?".to_string(), |x| format!("{x:.3}"));
                let noise = noise.map_or("?".to_string(), |x| format!("{x:.3}"));
                let units = units.map_or("?".to_string(), |x| format!("{x:.1}"));
                let nights = format!("{:.0}", nights.max(1.0));
                let (rate, band) = (num(*rate), num(*band));
                if zh {
                    let certain = match certain_in {
                        Some(n) if *n <= 1.0 => "这样大小的压降当夜必被发现".to_string(),
                        Some(n) => format!("这样大小的压降 {n:.0} 夜内必被发现"),
                        None => "这样大小的压降能否发现取决于夜间波动".to_string(),
                    };
                    format!("测点 {point} 夜间（{from_hour:02}:00–{to_hour:02}:00）压力比本区进水所预测的低 {fall} {unit}，为其夜间波动（{noise} {unit}）的 {units} 倍；{nights} 夜累积证据 {evidence:.1}；同期本区夜间流量比常值高 {rate} ± {band} m³/h；{certain}；{night} 夜间首次出现")
                } else {
                    let certain = match certain_in {
                        Some(n) if *n <= 1.0 => "a fall this size is surely raised the night it starts".to_string(),
                        Some(n) => format!("a fall this size is surely raised within {n:.0} nights"),
                        None => "whether a fall this size is raised depends on the nights' noise".to_string(),
                    };
                    format!("the pressure at {point} stands {fall} {unit} below what the zone's inflow predicts at night ({from_hour:02}:00–{to_hour:02}:00): {units} units of its night-to-night noise ({noise} {unit}), {evidence:.1} units of evidence over {nights} nights; the zone's night flow stands {rate} ± {band} m³/h above its usual; {certain}; first seen in the night of {night}")
                }
            }
            Fact::Burst { inflow, usual, high, mean, weekend, pressure, rise, minutes } => {
                let p = drop(pressure);
                if zh {
                    let kind = if *weekend { "周末或节假日" } else { "工作日" };
                    format!("进水 {inflow:.1} m³/h，{kind}此时段常值 {usual:.1}（最高 {high:.1}，均值 {mean:.1}）{p}；高出常值 {rise:.1} m³/h，已持续 {minutes} 分钟")
                } else {
                    let kind = if *weekend { "weekend or holiday" } else { "weekday" };
                    format!("inflow {inflow:.1} m³/h where {usual:.1} is usual at this time on a {kind} (at most {high:.1}; mean {mean:.1}){p}; {rise:.1} m³/h above usual for {minutes} min")
                }
            }
            Fact::BurstWithoutHistory { rise, before, pressure } => {
                let p = drop(pressure);
                if zh {
                    format!("进水比前一小时（{before:.1}）高 {rise:.1} m³/h{p}；尚无三天历史，无法判断常值")
                } else {
                    format!("inflow {rise:.1} m³/h above the hour before ({before:.1}){p}; no three earlier days yet to know what is usual")
                }
            }
            Fact::ContinuousFlow { hours, floor, last_hour } => {
                if zh {
                    format!(
                        "连续 {hours} 小时以上没有停流的时段（每小时至少 {floor} m³；最近一小时 {last_hour:.3} m³）"
                    )
                } else {
                    format!("flow for {hours} h or more without a quiet hour (at least {floor} m³ in every hour; last hour {last_hour:.3} m³)")
                }
            }
            Fact::Pressure { value, limit, unit, above } => match (zh, above) {
                (true, false) => format!("压力 {value:.3} {unit}，低于 {limit} {unit}"),
                (true, true) => format!("压力 {value:.3} {unit}，高于 {limit} {unit}"),
                (false, false) => format!("pressure {value:.3} {unit} below {limit} {unit}"),
                (false, true) => format!("pressure {value:.3} {unit} above {limit} {unit}"),
            },
            Fact::Silent { last_good_ms } => {
                let t = v.time(*last_good_ms);
                v.t(&format!("no good reading since {t}"), &format!("自 {t} 起没有有效读数")).to_string()
            }
            Fact::TotalizerStuck { total, hours, mean_flow } => {
                if zh {
                    format!("累计读数停在 {total} 已 {hours:.1} 小时，同期平均流量 {mean_flow:.2} m³/h")
                } else {
                    format!("totalizer at {total} for {hours:.1} h while flow averaged {mean_flow:.2} m³/h")
                }
            }
            Fact::Unaccounted { volume, input } => {
                let pct = 100.0 * volume / input.max(1e-9);
                if zh {
                    format!("一天进水 {input:.1} m³ 中有 {volume:.1} m³ 去向不明（{pct:.0} %）")
                } else {
                    format!("{volume:.1} m³ of {input:.1} m³ unaccounted for in a day ({pct:.0} %)")
                }
            }
            Fact::Unusual { value, usual, unit } => {
                if zh {
                    format!("一小时用量 {value:.2} {unit}，通常为 {usual:.2} {unit}")
                } else {
                    format!("{value:.2} {unit} in an hour where {usual:.2} {unit} is usual")
                }
            }
            _ => return None,
        })
    }

    fn render_devices(&self, v: Voice) -> Option<String> {
        let zh = v.lang == Lang::Zh;
        Some(match self {
            Fact::ValveCommand { position, command } => {
                if zh {
                    format!("阀位 {position:.1} %，指令 {command:.1} %")
                } else {
                    format!("position {position:.1} % vs command {command:.1} %")
                }
            }
            Fact::ValveSwitches { position, open, closed } => {
                let (o, c) = (u8::from(*open), u8::from(*closed));
                if zh {
                    format!("阀位 {position:.1} %，开到位信号 {o}，关到位信号 {c}")
                } else {
                    format!("position {position:.1} % with open switch {o} and closed switch {c}")
                }
            }
            Fact::Quality { quantity, value, limit, unit, above } => {
                let what = quantity_label(*quantity, v.lang);
                match (zh, above) {
                    (true, false) => format!("{what} {value:.2} {unit}，低于限值 {limit} {unit}"),
                    (true, true) => format!("{what} {value:.2} {unit}，高于限值 {limit} {unit}"),
                    (false, false) => format!("{what} {value:.2} {unit} below the limit {limit} {unit}"),
                    (false, true) => format!("{what} {value:.2} {unit} above the limit {limit} {unit}"),
                }
            }
            Fact::Overcurrent { phase, current, rated } => {
                let p = phase_name(*phase, v.lang);
                if zh {
                    format!("{p}电流 {current:.1} A，超过额定 {rated} A")
                } else {
                    format!("current {p} {current:.1} A above the rated {rated} A")
                }
            }
            Fact::PhaseLost { phases, nominal } => phases
                .iter()
                .map(|(p, volts)| {
                    let p = phase_name(*p, v.lang);
                    if zh {
                        format!("{p}电压 {volts:.0} V（额定 {nominal} V）")
                    } else {
                        format!("{p} at {volts:.0} V of a nominal {nominal} V")
                    }
                })
                .collect::<Vec<_>>()
                .join(v.t(", ", "，")),
            Fact::Voltage { phase, value, low, high } => {
                let p = phase_name(*phase, v.lang);
                if zh {
                    format!("{p}电压 {value:.1} V，超出 {low:.1}–{high:.1} V")
                } else {
                    format!("voltage {p} {value:.1} V outside {low:.1}–{high:.1} V")
                }
            }
            Fact::PhaseImbalance { phase, deviation, mean, max } => {
                let p = phase_name(*phase, v.lang);
                if zh {
                    format!("{p}电压偏离三相均值 {mean:.1} V 达 {deviation:.1} %（上限 {max} %）")
                } else {
                    format!("voltage {p} {deviation:.1} % from the phases' mean {mean:.1} V (at most {max} %)")
                }
            }
            Fact::LowPowerFactor { power_factor, min, current } => {
                if zh {
                    format!("功率因数 {power_factor:.2}，低于 {min}（电流 {current:.1} A）")
                } else {
                    format!("power factor {power_factor:.2} below {min} at {current:.1} A")
                }
            }
            Fact::NoSupply { point, value, unit, below, customers } => match (zh, point) {
                (true, Some(p)) => {
                    format!("停水：{p} 压力 {value:.3} {unit}，低于 {below} {unit}；影响 {customers} 块用户水表")
                }
                (true, None) => {
                    format!("停水：进水 {value:.3} {unit}，低于 {below} {unit}；影响 {customers} 块用户水表")
                }
                (false, Some(p)) => {
                    format!("no supply: {p} at {value:.3} {unit}, below {below} {unit}; {customers} customer meter(s)")
                }
                (false, None) => {
                    format!("no supply: inflow {value:.3} {unit}, below {below} {unit}; {customers} customer meter(s)")
                }
            },
            Fact::StoreReplaced { aside } => {
                if zh {
                    format!("存储文件在启动时未通过完整性检查，已移到 {aside}，并新建了存储（此前未送出的读数和台账记录在旧文件中）")
                } else {
                    format!("the store failed its integrity check at start; it was moved to {aside} and a fresh store was started (undelivered readings and ledger records before now are in the old file)")
                }
            }
            Fact::ValveExercise { last_ms, installed, every_days } => match (last_ms, zh) {
                (Some(ms), true) => {
                    format!("自 {} 起未活动，应每 {every_days} 天活动一次；闸阀久不活动会锈死", v.time(*ms))
                }
                (Some(ms), false) => format!(
                    "not exercised since {}; it should be every {every_days} days (a gate valve never moved seizes)",
                    v.time(*ms)
                ),
                (None, true) => format!("{installed} 年安装以来没有活动记录，应每 {every_days} 天活动一次"),
                (None, false) => format!(
                    "no exercise on record since it was installed in {installed}; it should be every {every_days} days"
                ),
            },
            Fact::MeterClock { offset_s, tolerance_s } => {
                let (off, tol) = (clock_span(offset_s.abs(), v.lang), clock_span(*tolerance_s, v.lang));
                match (zh, *offset_s >= 0.0) {
                    (true, true) => format!("表计时钟比网关快 {off}（允许 {tol}）；峰谷时段和结算日按错的时间计"),
                    (true, false) => format!("表计时钟比网关慢 {off}（允许 {tol}）；峰谷时段和结算日按错的时间计"),
                    (false, true) => format!("the meter's clock is {off} ahead of the gateway's (tolerance {tol}); its tariff periods and settlement day fall at the wrong times"),
                    (false, false) => format!("the meter's clock is {off} behind the gateway's (tolerance {tol}); its tariff periods and settlement day fall at the wrong times"),
                }
            }
            _ => return None,
        })
    }
}

/// A clock's error in whole minutes and seconds ("7 min 12 s", "7 分 12 秒"), or hours
/// and minutes past an hour.
fn clock_span(seconds: f64, lang: Lang) -> String {
    let s = seconds.round() as i64;
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    match (lang, h > 0, m > 0) {
        (Lang::Zh, false, true) if sec == 0 => format!("{m} 分钟"),
        (Lang::En, false, true) if sec == 0 => format!("{m} min"),
        (Lang::Zh, true, _) => format!("{h} 小时 {m} 分"),
        (Lang::Zh, false, true) => format!("{m} 分 {sec} 秒"),
        (Lang::Zh, false, false) => format!("{sec} 秒"),
        (Lang::En, true, _) => format!("{h} h {m} min"),
        (Lang::En, false, true) => format!("{m} min {sec} s"),
        (Lang::En, false, false) => format!("{sec} s"),
    }
}

fn phase_name(p: Phase, lang: Lang) -> String {
    match p {
        None => lang.t("the phase", "").to_string(),
        Some(i) => format!("L{}", i + 1),
    }
}

/// A water-quality parameter's name.
pub fn quantity_label(q: Quantity, lang: Lang) -> &'static str {
    match q {
        Quantity::FreeChlorine => lang.t("free chlorine", "余氯"),
        Quantity::Turbidity => lang.t("turbidity", "浊度"),
        Quantity::Ph => "pH",
        Quantity::Conductivity => lang.t("conductivity", "电导率"),
        other => other.as_str(),
    }
}

/// A rule's name for a person.
pub fn rule_label(r: AlertRule, lang: Lang) -> &'static str {
    match r {
        AlertRule::NightFlow => lang.t("leak (night flow)", "漏损（夜间流量）"),
        AlertRule::NightPressure => lang.t("leak (night pressure)", "漏损（夜间压力）"),
        AlertRule::Burst => lang.t("burst", "爆管"),
        AlertRule::ZoneImbalance => lang.t("zone imbalance", "分区水量不平衡"),
        AlertRule::ContinuousFlow => lang.t("continuous flow", "持续用水不停"),
        AlertRule::ConsumptionAnomaly => lang.t("unusual consumption", "用量异常"),
        AlertRule::PressureLow => lang.t("low pressure", "压力过低"),
        AlertRule::PressureHigh => lang.t("high pressure", "压力过高"),
        AlertRule::DeviceSilent => lang.t("device silent", "设备无读数"),
        AlertRule::TotalizerStuck => lang.t("totalizer stuck", "表计累计值不走"),
        AlertRule::ValvePosition => lang.t("valve not following its command", "阀门未跟随指令"),
        AlertRule::ValveSwitches => lang.t("valve limit switches disagree", "阀门限位信号矛盾"),
        AlertRule::WaterQuality => lang.t("water quality", "水质超标"),
        AlertRule::Overcurrent => lang.t("overcurrent", "过流"),
        AlertRule::VoltageRange => lang.t("voltage out of range", "电压越限"),
        AlertRule::PhaseLoss => lang.t("phase lost", "缺相"),
        AlertRule::PhaseImbalance => lang.t("phase imbalance", "三相不平衡"),
        AlertRule::LowPowerFactor => lang.t("low power factor", "功率因数偏低"),
        AlertRule::SupplyInterruption => lang.t("supply interruption", "停水"),
        AlertRule::StoreReplaced => lang.t("store replaced", "存储已重建"),
        AlertRule::MeterClock => lang.t("meter clock off", "表计时钟偏差"),
        AlertRule::ValveExercise => lang.t("valve due to be exercised", "阀门到期未活动"),
    }
}

/// What to check first, for the duty engineer reading a robot message.
pub fn first_check(r: AlertRule, lang: Lang) -> &'static str {
    match r {
        AlertRule::NightFlow => lang.t(
            "walk the zone at night: listen at valves and hydrants, look for wet ground; compare building meters with last week",
            "夜间巡查本分区：听阀门和消火栓，看地面是否渗水；对比各楼水表与上周的夜间用量",
        ),
        AlertRule::NightPressure => lang.t(
            "walk the mains towards the pressure point that fell, at night: listen at valves and hydrants, look for wet ground; check the zone's pressure transducers (one reading high makes the others look low)",
            "夜间沿压力下降的测点方向巡查管线：听阀门和消火栓，看地面是否渗水；检查本区各压力变送器（一个读数偏高会让其他测点显得偏低）",
        ),
        AlertRule::Burst => lang.t(
            "check the zone's pressure and look for water on the surface; be ready to close the zone valve",
            "查看本区压力，寻找地面冒水处；准备关闭分区阀门",
        ),
        AlertRule::ZoneImbalance => lang.t(
            "compare the inlet with the sum of the zone's meters; look for a leak or a meter that stopped",
            "对比进水表与区内各表之和；查找漏点或停走的水表",
        ),
        AlertRule::ContinuousFlow => lang.t(
            "check the building for running toilets, tank overflows and open taps",
            "检查该楼是否有长流水的便器、水箱溢流或未关的水龙头",
        ),
        AlertRule::ConsumptionAnomaly => lang.t(
            "ask the building whether the use is expected; check the meter",
            "向该楼了解用量变化是否正常；检查表计",
        ),
        AlertRule::PressureLow => lang.t(
            "check the pumps and the zone valves; look for a burst",
            "检查水泵和分区阀门；排查是否爆管",
        ),
        AlertRule::PressureHigh => lang.t(
            "check the pump set-point and the pressure-reducing valve",
            "检查水泵设定压力和减压阀",
        ),
        AlertRule::DeviceSilent => lang.t(
            "check the device's power, its RS-485 wiring and the converter",
            "检查设备供电、RS-485 接线和转换器",
        ),
        AlertRule::TotalizerStuck => lang.t(
            "read the meter on site; it may be jammed or its register broken",
            "现场抄表核对；表可能卡住或计数器损坏",
        ),
        AlertRule::ValvePosition | AlertRule::ValveSwitches => lang.t(
            "check the actuator and operate the valve locally",
            "检查执行机构，就地操作阀门",
        ),
        AlertRule::WaterQuality => lang.t(
            "take a sample and check the dosing; tell the water-quality group",
            "取样复测并检查加药设备；通知水质负责人",
        ),
        AlertRule::Overcurrent | AlertRule::PhaseLoss => lang.t(
            "check the load and the breaker; send an electrician",
            "检查负荷和断路器；派电工到场",
        ),
        AlertRule::VoltageRange | AlertRule::PhaseImbalance | AlertRule::LowPowerFactor => lang.t(
            "check the transformer tap and the distribution of single-phase loads",
            "检查变压器分接头和单相负荷分配",
        ),
        AlertRule::SupplyInterruption => lang.t(
            "check the pumps, the zone valves and the tanks; tell the customers affected",
            "检查水泵、分区阀门和水箱；通知受影响的用户",
        ),
        AlertRule::StoreReplaced => lang.t(
            "keep the old store file; tell whoever maintains the gateway",
            "保留旧的存储文件；通知网关维护人员",
        ),
        AlertRule::ValveExercise => lang.t(
            "turn the valve through its stroke and back, then record it: pumphouse assets record VALVE --kind exercise",
            "将阀门全程关闭再开启，然后记录：pumphouse assets record 阀门编号 --kind exercise",
        ),
        AlertRule::MeterClock => lang.t(
            "set the meter's clock with a hand-held programmer, or by a broadcast time set from the metering system; replace its battery if it drifts again",
            "用掌机或采集系统广播校时校准表计时钟；若再次偏差，更换表内电池",
        ),
    }
}

pub fn severity_label(s: Severity, lang: Lang) -> &'static str {
    match s {
        Severity::Info => lang.t("info", "提示"),
        Severity::Warning => lang.t("warning", "警告"),
        Severity::Critical => lang.t("critical", "严重"),
    }
}

/// An alert's evidence with its estimated loss, as a sentence.
pub fn evidence(a: &AlertRow, v: Voice) -> String {
    let said = Fact::from_stored(&a.evidence).render(v);
    match (a.loss_per_day, a.loss_fen_per_day, v.lang) {
        (Some(m3), Some(f), Lang::Zh) => format!("{said}；估计每天损失约 {m3:.1} m³（{:.2} 元/天）", f as f64 / 100.0),
        (Some(m3), None, Lang::Zh) => format!("{said}；估计每天损失约 {m3:.1} m³"),
        (Some(m3), Some(f), Lang::En) => {
            format!("{said}; losing about {m3:.1} m³/day ({:.2} yuan/day)", f as f64 / 100.0)
        }
        (Some(m3), None, Lang::En) => format!("{said}; losing about {m3:.1} m³/day"),
        (None, _, _) => said,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEIJING: Voice = Voice { lang: Lang::Zh, tz: chrono_tz::Asia::Shanghai };

    #[test]
    fn a_fact_round_trips_through_the_store_and_old_text_stays_text() {
        let f = Fact::Silent { last_good_ms: 1_762_729_200_000 };
        assert_eq!(Fact::from_stored(&f.stored()), f);
        assert_eq!(Fact::from_stored("no good reading since x"), Fact::Said { text: "no good reading since x".into() });
        assert_eq!(Fact::from_stored("{not json"), Fact::Said { text: "{not json".into() });
    }

    #[test]
    fn a_meter_clock_says_which_way_and_how_far() {
        let slow = Fact::MeterClock { offset_s: -432.4, tolerance_s: 300.0 };
        assert_eq!(slow.render(BEIJING), "表计时钟比网关慢 7 分 12 秒（允许 5 分钟）；峰谷时段和结算日按错的时间计");
        let en = Voice { lang: Lang::En, tz: chrono_tz::Asia::Shanghai };
        let fast = Fact::MeterClock { offset_s: 7300.0, tolerance_s: 45.0 };
        assert!(fast.render(en).starts_with("the meter's clock is 2 h 1 min ahead of the gateway's (tolerance 45 s)"));
    }

    #[test]
    fn times_are_local_and_the_language_is_the_sites() {
        // 2025-11-09T23:00:00Z is 07:00 on the 10th in Beijing
        let f = Fact::Silent { last_good_ms: 1_762_729_200_000 };
        assert_eq!(f.render(BEIJING), "自 2025-11-10 07:00 起没有有效读数");
        let en = Voice { lang: Lang::En, tz: chrono_tz::Asia::Shanghai };
        assert_eq!(f.render(en), "no good reading since 2025-11-10 07:00");
    }

    #[test]
    fn chinese_evidence_has_no_english_words() {
        let facts = [
            Fact::NightFlow {
                from_hour: 23,
                to_hour: 6,
                rate: Some(2.0),
                noise: None,
                usual: Some(5.0),
                night: NaiveDate::MIN,
                why: None,
            },
            Fact::NightFlow {
                from_hour: 23,
                to_hour: 6,
                rate: Some(2.0),
                noise: Some(0.5),
                usual: Some(5.0),
                night: NaiveDate::MIN,
                why: Some(LeakWhy {
                    balance: true,
                    band: 0.7,
                    nights: 2.0,
                    units: 4.0,
                    certain_in: Some(2.0),
                    rhythm: Some("weekday".into()),
                }),
            },
            Fact::Burst {
                inflow: 20.9,
                usual: 15.0,
                high: 16.0,
                mean: 14.0,
                weekend: true,
                pressure: Some((0.2, 0.3)),
                rise: 5.0,
                minutes: 30,
            },
            Fact::Quality {
                quantity: Quantity::FreeChlorine,
                value: 0.01,
                limit: 0.05,
                unit: "mg/L".into(),
                above: false,
            },
            Fact::PhaseLost { phases: vec![(Some(2), 0.0)], nominal: 220.0 },
            Fact::Overcurrent { phase: None, current: 120.0, rated: 100.0 },
            Fact::NoSupply { point: None, value: 0.0, unit: "m³/h".into(), below: 1.0, customers: 12 },
            Fact::MeterClock { offset_s: -432.0, tolerance_s: 300.0 },
            Fact::ValveExercise { last_ms: Some(1_762_729_200_000), installed: 1998, every_days: 365 },
            Fact::ValveExercise { last_ms: None, installed: 1998, every_days: 365 },
            Fact::MeterClock { offset_s: 7300.0, tolerance_s: 300.0 },
        ];
        for f in facts {
            let s = f.render(BEIJING);
            let words: Vec<&str> = s
                .split(|c: char| !c.is_ascii_alphabetic())
                .filter(|w| w.len() > 1 && !["mg", "pH", "L3"].contains(w))
                .collect();
            assert!(words.is_empty(), "{s}: {words:?}");
        }
    }

    #[test]
    fn the_loss_follows_the_evidence_and_an_unknown_figure_reads_unknown() {
        let row = AlertRow {
            id: 1,
            rule: AlertRule::NightFlow,
            subject: "east".into(),
            zone: "east".into(),
            device: None,
            severity: Severity::Warning,
            start_ms: 0,
            end_ms: None,
            evidence: Fact::NightFlow {
                from_hour: 23,
                to_hour: 6,
                rate: Some(2.0),
                noise: None,
                usual: Some(5.0),
                night: NaiveDate::MIN,
                why: None,
            }
            .stored(),
            loss_per_day: Some(48.0),
            loss_fen_per_day: Some(19_680),
            acked_by: None,
            acked_ms: None,
        };
        let zh = evidence(&row, BEIJING);
        assert!(zh.contains("高 2.00 ± ? m³/h") && zh.ends_with("估计每天损失约 48.0 m³（196.80 元/天）"), "{zh}");
        let en = evidence(&row, Voice { lang: Lang::En, tz: chrono_tz::UTC });
        assert!(en.ends_with("losing about 48.0 m³/day (196.80 yuan/day)"), "{en}");
    }
}

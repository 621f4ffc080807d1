//! Rule settings: defaults that make sense out of the box, overridable for the whole
//! site under `[alerts]` and per zone or device under `[[alerts.overrides]]` (zone
//! overrides first, then device overrides, later entries winning).

use serde::Deserialize;

use crate::diag::Diagnostics;
use crate::model::AlertRule;

/// The settings as written: every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub zone: Option<String>,
    pub device: Option<String>,
    /// First and last local hour (their starts) of the night window, e.g. [2, 3].
    pub night_window: Option<Vec<u32>>,
    pub night_min_excess: Option<f64>,
    pub night_nights: Option<i64>,
    /// [low, high] in the pressure point's unit.
    pub pressure_band: Option<Vec<f64>>,
    pub silent_after: Option<String>,
    pub continuous_hours: Option<i64>,
    pub stuck_hours: Option<i64>,
    pub imbalance_share: Option<f64>,
    pub burst_min_rise: Option<f64>,
    /// Water quality limits: [low, high] free chlorine (mg/L) and pH; highest turbidity
    /// (NTU) and conductivity (µS/cm).
    pub free_chlorine: Option<Vec<f64>>,
    pub ph: Option<Vec<f64>>,
    pub turbidity_max: Option<f64>,
    pub conductivity_max: Option<f64>,
    /// How long a parameter stays out of its limits before it is an episode.
    pub quality_after: Option<String>,
    /// Electrical: nominal phase voltage (V), tolerance [below, above] in percent, rated
    /// current per phase (A), largest phase-voltage imbalance (percent), lowest power
    /// factor, and how long a condition lasts before it is an episode.
    pub nominal_voltage: Option<f64>,
    pub voltage_tolerance: Option<Vec<f64>>,
    pub rated_current: Option<f64>,
    pub imbalance_max: Option<f64>,
    pub power_factor_min: Option<f64>,
    pub electrical_after: Option<String>,
    /// How far a DL/T 645 or CJ/T 188 meter's own clock may be off the gateway's.
    pub meter_clock_tolerance: Option<String>,
    /// Supply: the pressure below which a zone has no supply (the pressure point's unit),
    /// the inflow below which it has none (m³/h, for zones without a pressure point), the
    /// local hours it should have supply ([first, last], their starts), and how long
    /// without supply is an interruption.
    pub no_supply_pressure: Option<f64>,
    pub no_supply_flow: Option<f64>,
    pub supply_hours: Option<Vec<u32>>,
    pub interruption_after: Option<String>,
    #[serde(default)]
    pub disable: Vec<String>,
}

/// The limits of one water-quality parameter; `None` is no limit on that side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub low: Option<f64>,
    pub high: Option<f64>,
}

/// Effective settings for one zone or device.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub night_window: (u32, u32),
    pub night_min_excess: f64,
    pub night_nights: usize,
    /// `None`: by the point's unit (0.14–0.6 MPa, 1.4–6 bar, 140–600 kPa).
    pub pressure_band: Option<(f64, f64)>,
    pub silent_after: Option<std::time::Duration>,
    pub continuous_hours: usize,
    pub stuck_hours: i64,
    pub imbalance_share: f64,
    pub burst_min_rise: f64,
    /// Drinking-water limits, GB 5749-2022 by default: free chlorine at the plant
    /// outlet 0.3–2 mg/L (table 2), turbidity ≤ 1 NTU and pH 6.5–8.5 (table 1).
    /// Conductivity has no limit in the standard (set one per site if wanted).
    pub free_chlorine: Limits,
    pub ph: Limits,
    pub turbidity: Limits,
    pub conductivity: Limits,
    pub quality_after: std::time::Duration,
    /// 5 minutes by default: the line past which the State Grid's metering systems count
    /// a meter's clock as out (时钟超差) rather than correct it by a broadcast time set.
    pub meter_clock_tolerance: std::time::Duration,
    /// `None`: from the meter's profile.
    pub nominal_voltage: Option<f64>,
    pub voltage_tolerance: Option<(f64, f64)>,
    pub rated_current: Option<f64>,
    pub imbalance_max: f64,
    pub power_factor_min: f64,
    pub electrical_after: std::time::Duration,
    /// `None`: by the pressure point's unit (0.05 MPa, 0.5 bar, 50 kPa: water no higher
    /// than the ground floor).
    pub no_supply_pressure: Option<f64>,
    pub no_supply_flow: f64,
    /// `None`: all day.
    pub supply_hours: Option<(u32, u32)>,
    pub interruption_after: std::time::Duration,
    pub disabled: Vec<AlertRule>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            night_window: (23, 5),
            night_min_excess: 0.3,
            night_nights: 2,
            pressure_band: None,
            silent_after: None,
            continuous_hours: 24,
            stuck_hours: 6,
            imbalance_share: 0.10,
            burst_min_rise: 5.0,
            free_chlorine: Limits { low: Some(0.3), high: Some(2.0) },
            ph: Limits { low: Some(6.5), high: Some(8.5) },
            turbidity: Limits { low: None, high: Some(1.0) },
            conductivity: Limits { low: None, high: None },
            quality_after: std::time::Duration::from_secs(300),
            meter_clock_tolerance: std::time::Duration::from_secs(300),
            nominal_voltage: None,
            voltage_tolerance: None,
            rated_current: None,
            imbalance_max: 4.0,
            power_factor_min: 0.9,
            electrical_after: std::time::Duration::from_secs(300),
            no_supply_pressure: None,
            no_supply_flow: 0.01,
            supply_hours: None,
            interruption_after: std::time::Duration::from_secs(900),
            disabled: Vec::new(),
        }
    }
}

impl Settings {
    pub fn enabled(&self, rule: AlertRule) -> bool {
        !self.disabled.contains(&rule)
    }

    pub fn night(&self, holidays: &std::collections::BTreeSet<chrono::NaiveDate>) -> super::night_flow::Settings {
        super::night_flow::Settings {
            window: self.night_window,
            floor: self.night_min_excess,
            blocks: self.night_nights.max(1),
            holidays: holidays.clone(),
            ..Default::default()
        }
    }

    /// The night-pressure rule's settings: the night window of the night-flow rule.
    pub fn night_pressure(&self) -> super::night_pressure::Settings {
        super::night_pressure::Settings { window: self.night_window, ..Default::default() }
    }

    /// The pressure below which a zone's point reads no supply, in the point's unit.
    pub fn no_supply_below(&self, unit: &str) -> f64 {
        self.no_supply_pressure.unwrap_or(match unit {
            "bar" => 0.5,
            "kPa" => 50.0,
            _ => 0.05,
        })
    }

    fn apply(&mut self, r: &RawSettings) {
        if let Some([a, b]) = r.night_window.as_deref() {
            self.night_window = (*a, *b);
        }
        if let Some(v) = r.night_min_excess {
            self.night_min_excess = v;
        }
        if let Some(v) = r.night_nights {
            self.night_nights = v as usize;
        }
        if let Some([lo, hi]) = r.pressure_band.as_deref() {
            self.pressure_band = Some((*lo, *hi));
        }
        if let Some(d) = r.silent_after.as_deref().and_then(|s| humantime::parse_duration(s).ok()) {
            self.silent_after = Some(d);
        }
        if let Some(v) = r.continuous_hours {
            self.continuous_hours = v as usize;
        }
        if let Some(v) = r.stuck_hours {
            self.stuck_hours = v;
        }
        if let Some(v) = r.imbalance_share {
            self.imbalance_share = v;
        }
        if let Some(v) = r.burst_min_rise {
            self.burst_min_rise = v;
        }
        if let Some([lo, hi]) = r.free_chlorine.as_deref() {
            self.free_chlorine = Limits { low: Some(*lo), high: Some(*hi) };
        }
        if let Some([lo, hi]) = r.ph.as_deref() {
            self.ph = Limits { low: Some(*lo), high: Some(*hi) };
        }
        if let Some(v) = r.turbidity_max {
            self.turbidity.high = Some(v);
        }
        if let Some(v) = r.conductivity_max {
            self.conductivity.high = Some(v);
        }
        let duration = |s: &Option<String>| s.as_deref().and_then(|s| humantime::parse_duration(s).ok());
        if let Some(d) = duration(&r.quality_after) {
            self.quality_after = d;
        }
        if let Some(d) = duration(&r.meter_clock_tolerance) {
            self.meter_clock_tolerance = d;
        }
        if let Some(v) = r.nominal_voltage {
            self.nominal_voltage = Some(v);
        }
        if let Some([lo, hi]) = r.voltage_tolerance.as_deref() {
            self.voltage_tolerance = Some((*lo, *hi));
        }
        if let Some(v) = r.rated_current {
            self.rated_current = Some(v);
        }
        if let Some(v) = r.imbalance_max {
            self.imbalance_max = v;
        }
        if let Some(v) = r.power_factor_min {
            self.power_factor_min = v;
        }
        if let Some(d) = duration(&r.electrical_after) {
            self.electrical_after = d;
        }
        if let Some(v) = r.no_supply_pressure {
            self.no_supply_pressure = Some(v);
        }
        if let Some(v) = r.no_supply_flow {
            self.no_supply_flow = v;
        }
        if let Some([a, b]) = r.supply_hours.as_deref() {
            self.supply_hours = Some((*a, *b));
        }
        if let Some(d) = duration(&r.interruption_after) {
            self.interruption_after = d;
        }
        // unknown names were reported by validation
        self.disabled.extend(r.disable.iter().filter_map(|d| AlertRule::parse(d)));
    }
}

/// The site's settings and its overrides.
#[derive(Debug, Clone, Default)]
pub struct RuleSettings {
    site: RawSettings,
    overrides: Vec<RawSettings>,
    /// Days kept as a weekend: what is usual on them is judged against weekends.
    pub holidays: std::collections::BTreeSet<chrono::NaiveDate>,
}

impl RuleSettings {
    /// Settings for a zone, and for a device in it when given.
    pub fn for_subject(&self, zone: &str, device: Option<&str>) -> Settings {
        let mut s = Settings::default();
        s.apply(&self.site);
        for o in self.overrides.iter().filter(|o| o.zone.as_deref() == Some(zone) && o.device.is_none()) {
            s.apply(o);
        }
        if let Some(d) = device {
            for o in self.overrides.iter().filter(|o| o.device.as_deref() == Some(d)) {
                s.apply(o);
            }
        }
        s
    }
}

fn check(r: &RawSettings, path: &str, diags: &mut Diagnostics) {
    if let Some(w) = &r.night_window {
        // at most twelve hours: the night, not the day
        if !matches!(w.as_slice(), [a, b] if *a <= 23 && *b <= 23 && (b + 24 - a) % 24 < 12) {
            diags.error(
                format!("{path}.night_window"),
                "two local hours 0–23, the first and last of the night (it may wrap midnight, at most 12 hours), e.g. [23, 5]",
            );
        }
    }
    if let Some(b) = &r.pressure_band {
        if !matches!(b.as_slice(), [lo, hi] if lo < hi) {
            diags.error(format!("{path}.pressure_band"), "[low, high] in the pressure point's unit, low below high");
        }
    }
    for (f, v) in [("free_chlorine", &r.free_chlorine), ("ph", &r.ph)] {
        if let Some(b) = v {
            if !matches!(b.as_slice(), [lo, hi] if lo.is_finite() && hi.is_finite() && 0.0 <= *lo && lo < hi) {
                diags.error(format!("{path}.{f}"), "[low, high], two numbers with low below high");
            }
        }
    }
    if let Some(t) = &r.voltage_tolerance {
        if !matches!(t.as_slice(), [lo, hi] if lo.is_finite() && hi.is_finite() && *lo < 0.0 && *hi > 0.0) {
            diags.error(
                format!("{path}.voltage_tolerance"),
                "[below, above] in percent of nominal, below negative and above positive, e.g. [-10, 7]",
            );
        }
    }
    if let Some(h) = &r.supply_hours {
        if !matches!(h.as_slice(), [a, b] if *a <= 23 && *b <= 23) {
            diags.error(
                format!("{path}.supply_hours"),
                "two local hours 0–23, the first and last hour with supply (it may wrap midnight), e.g. [6, 22]",
            );
        }
    }
    if r.power_factor_min.is_some_and(|x| !(x > 0.0 && x <= 1.0)) {
        diags.error(format!("{path}.power_factor_min"), "a power factor above 0 and at most 1");
    }
    if r.no_supply_flow.is_some_and(|x| !(x.is_finite() && x >= 0.0)) {
        diags.error(format!("{path}.no_supply_flow"), "must be a flow of zero or more (m³/h)");
    }
    for (f, v) in [
        ("night_min_excess", r.night_min_excess),
        ("imbalance_share", r.imbalance_share),
        ("burst_min_rise", r.burst_min_rise),
        ("turbidity_max", r.turbidity_max),
        ("conductivity_max", r.conductivity_max),
        ("nominal_voltage", r.nominal_voltage),
        ("rated_current", r.rated_current),
        ("imbalance_max", r.imbalance_max),
        ("no_supply_pressure", r.no_supply_pressure),
    ] {
        if v.is_some_and(|x| !(x.is_finite() && x > 0.0)) {
            diags.error(format!("{path}.{f}"), "must be a positive number");
        }
    }
    for (f, v) in
        [("night_nights", r.night_nights), ("continuous_hours", r.continuous_hours), ("stuck_hours", r.stuck_hours)]
    {
        if v.is_some_and(|x| !(1..=1000).contains(&x)) {
            diags.error(format!("{path}.{f}"), "must be a whole number from 1 to 1000");
        }
    }
    for (f, v) in [
        ("silent_after", &r.silent_after),
        ("quality_after", &r.quality_after),
        ("electrical_after", &r.electrical_after),
        ("interruption_after", &r.interruption_after),
        ("meter_clock_tolerance", &r.meter_clock_tolerance),
    ] {
        if let Some(s) = v {
            // a second to thirty days: how long a condition lasts before it is an alert
            let range = std::time::Duration::from_secs(1)..=std::time::Duration::from_secs(30 * 86_400);
            match humantime::parse_duration(s) {
                Ok(d) if range.contains(&d) => {}
                Ok(_) => diags
                    .error(format!("{path}.{f}"), format!("`{s}` is outside {}", crate::diag::duration_range(&range))),
                Err(_) => diags.error(format!("{path}.{f}"), format!("`{s}` is not a duration")),
            }
        }
    }
    for d in &r.disable {
        if AlertRule::parse(d).is_none() {
            let rules: Vec<&str> = AlertRule::ALL.iter().map(|r| r.as_str()).collect();
            diags.error(format!("{path}.disable"), format!("unknown rule `{d}`; rules: {}", rules.join(", ")));
        }
    }
}

/// `[alerts] holidays`: days or `FROM..TO` runs of days (at most a year each).
pub fn holidays(raw: &[String], diags: &mut Diagnostics) -> std::collections::BTreeSet<chrono::NaiveDate> {
    let mut out = std::collections::BTreeSet::new();
    let day = |s: &str| chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
    for (i, r) in raw.iter().enumerate() {
        let (a, b) = match r.split_once("..") {
            Some((a, b)) => (day(a), day(b)),
            None => (day(r), day(r)),
        };
        match (a, b) {
            (Some(a), Some(b)) if a <= b && (b - a).num_days() <= 366 => {
                out.extend(a.iter_days().take_while(|d| *d <= b));
            }
            _ => diags.error(
                format!("alerts.holidays[{i}]"),
                format!("`{r}` is not a day (YYYY-MM-DD) or a run of at most a year (YYYY-MM-DD..YYYY-MM-DD)"),
            ),
        }
    }
    out
}

pub fn validate(site: RawSettings, overrides: Vec<RawSettings>, diags: &mut Diagnostics) -> RuleSettings {
    check(&site, "alerts", diags);
    if site.zone.is_some() || site.device.is_some() {
        diags.error("alerts", "`zone` and `device` belong in [[alerts.overrides]]");
    }
    for (i, o) in overrides.iter().enumerate() {
        let path = format!("alerts.overrides[{i}]");
        check(o, &path, diags);
        if o.zone.is_some() == o.device.is_some() {
            diags.error(path, "an override names either a zone or a device");
        }
    }
    RuleSettings { site, overrides, holidays: Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_then_device_overrides() {
        let mut d = Diagnostics::default();
        let site = RawSettings {
            night_min_excess: Some(0.5),
            disable: vec!["consumption_anomaly".into()],
            ..Default::default()
        };
        let zone = RawSettings {
            zone: Some("north".into()),
            night_nights: Some(3),
            pressure_band: Some(vec![0.2, 0.5]),
            ..Default::default()
        };
        let dev =
            RawSettings { device: Some("p-north".into()), pressure_band: Some(vec![0.25, 0.45]), ..Default::default() };
        let r = validate(site, vec![zone, dev], &mut d);
        assert!(d.items.is_empty(), "{:?}", d.items);
        let north = r.for_subject("north", None);
        assert_eq!((north.night_min_excess, north.night_nights, north.pressure_band), (0.5, 3, Some((0.2, 0.5))));
        assert!(!north.enabled(AlertRule::ConsumptionAnomaly) && north.enabled(AlertRule::Burst));
        assert_eq!(r.for_subject("north", Some("p-north")).pressure_band, Some((0.25, 0.45)));
        assert_eq!(r.for_subject("south", Some("p-north")).pressure_band, Some((0.25, 0.45)));
        assert_eq!(
            r.for_subject("south", None),
            Settings { night_min_excess: 0.5, disabled: vec![AlertRule::ConsumptionAnomaly], ..Default::default() }
        );
    }

    #[test]
    fn mistakes_are_reported_with_their_path() {
        let mut d = Diagnostics::default();
        let bad = RawSettings {
            zone: Some("z".into()),
            device: Some("d".into()),
            night_window: Some(vec![5, 2]),
            disable: vec!["leaks".into()],
            ..Default::default()
        };
        validate(RawSettings { pressure_band: Some(vec![0.6, 0.1]), ..Default::default() }, vec![bad], &mut d);
        let got: Vec<String> = d.items.iter().map(|x| x.to_string()).collect();
        for want in [
            "alerts.pressure_band: [low, high]",
            "alerts.overrides[0].night_window",
            "alerts.overrides[0].disable: unknown rule `leaks`",
            "alerts.overrides[0]: an override names either a zone or a device",
        ] {
            assert!(got.iter().any(|g| g.contains(want)), "{want}: {got:?}");
        }
    }
}

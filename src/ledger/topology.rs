//! The network map (管网分布图) and zoned management (分区管理): a tree of zones per
//! utility, the meters that feed each zone (inlets), the meters inside it (billed
//! customers and unbilled authorised uses), and estimated unmetered uses.
//!
//! Validation catches what would make a balance meaningless: a meter booked in two
//! places, a zone tree with a cycle, a zone without an inlet, references to devices that
//! are not configured or that have no totalizer of the zone's utility.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde::Deserialize;

use crate::diag::Diagnostics;
use crate::modbus::profile::Profile;
use crate::model::Quantity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Utility {
    Water,
    Electricity,
}

impl Utility {
    pub fn parse(s: &str) -> Option<Utility> {
        match s {
            "water" => Some(Utility::Water),
            "electricity" => Some(Utility::Electricity),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Utility::Water => "water",
            Utility::Electricity => "electricity",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Utility::Water => "m3",
            Utility::Electricity => "kWh",
        }
    }

    /// The totalizer quantity a meter of this utility is read from.
    pub fn totalizer(self) -> Quantity {
        match self {
            Utility::Water => Quantity::WaterVolume,
            Utility::Electricity => Quantity::EnergyImport,
        }
    }
}

impl std::fmt::Display for Utility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Feeds a zone (its inlet).
    Inlet,
    /// A customer's meter: consumption is billed at its category's tariff.
    Billed,
    /// Authorised but not billed (public toilets, irrigation, fire fighting, pumps).
    Unbilled,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    pub name: Option<String>,
    pub utility: Option<String>,
    pub parent: Option<String>,
    #[serde(default)]
    pub inlets: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMeter {
    pub device: Option<String>,
    /// The totalizer point; default: the device's first point of the utility's quantity.
    pub point: Option<String>,
    pub zone: Option<String>,
    pub role: Option<String>,
    pub category: Option<String>,
    /// The highest reading the register shows before it wraps to zero (e.g. 99999.999):
    /// the wrap adds one count of its last decimal place.
    pub max_reading: Option<f64>,
    /// Or the wrap modulus itself: the value at which the register shows zero again
    /// (e.g. 100000).
    pub rollover_at: Option<f64>,
    pub max_rate: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUnmetered {
    pub zone: Option<String>,
    pub name: Option<String>,
    /// Estimated units per day.
    pub per_day: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Meter {
    pub device: String,
    pub point: String,
    pub zone: String,
    pub utility: Utility,
    pub role: Role,
    pub category: Option<String>,
    /// The register's wrap modulus: the value at which it shows zero again.
    pub rollover_at: Option<f64>,
    pub max_rate: Option<f64>,
}

impl Meter {
    /// `device.point`: the meter's key in frozen records and its name in evidence.
    pub fn id(&self) -> crate::model::MeterId {
        crate::model::MeterId::new(&self.device, &self.point)
    }
}

/// The wrap modulus a `max_reading` means: the reading plus one count of its last decimal
/// place as written (99999.999 → 100000, 9999 → 10000, 999999.9 → 1000000).
pub fn modulus_of_max_reading(max: f64) -> f64 {
    let written = format!("{max}");
    let decimals = written.split_once('.').map_or(0, |(_, d)| d.len()) as i32;
    let count = 10f64.powi(-decimals);
    // round to the decimal grid so that 99999.999 + 0.001 is exactly 100000
    ((max + count) * 10f64.powi(decimals)).round() / 10f64.powi(decimals)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub name: String,
    pub utility: Utility,
    pub parent: Option<String>,
    pub inlets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unmetered {
    pub zone: String,
    pub name: String,
    pub per_day: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Topology {
    pub zones: Vec<Zone>,
    pub meters: Vec<Meter>,
    pub unmetered: Vec<Unmetered>,
    /// Zones defined with an error already reported: what refers to them is not reported
    /// again as "no zone", so that one mistake reads as one error.
    pub broken: Vec<String>,
}

impl Topology {
    pub fn zone(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.name == name)
    }

    pub fn children<'a>(&'a self, zone: &'a str) -> impl Iterator<Item = &'a Zone> + 'a {
        self.zones.iter().filter(move |z| z.parent.as_deref() == Some(zone))
    }

    /// The customer meters (role `billed`) a zone feeds: its own and its descendants'.
    pub fn customers(&self, zone: &str) -> usize {
        let own = self.meters_in(zone).filter(|m| m.role == Role::Billed).count();
        own + self.children(zone).map(|c| self.customers(&c.name)).sum::<usize>()
    }

    pub fn meters_in<'a>(&'a self, zone: &'a str) -> impl Iterator<Item = &'a Meter> + 'a {
        self.meters.iter().filter(move |m| m.zone == zone)
    }

    /// The tree, one zone per line, indented under its parent, with its meters.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for utility in [Utility::Water, Utility::Electricity] {
            let roots: Vec<&Zone> = self.zones.iter().filter(|z| z.utility == utility && z.parent.is_none()).collect();
            if roots.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{}", utility.as_str());
            for r in roots {
                self.render_zone(r, 1, &mut out);
            }
        }
        out
    }

    fn render_zone(&self, z: &Zone, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        let _ = writeln!(out, "{pad}zone {} (inlets: {})", z.name, z.inlets.join(", "));
        for m in self.meters_in(&z.name).filter(|m| m.role != Role::Inlet) {
            let what = match (&m.role, &m.category) {
                (Role::Billed, Some(c)) => format!("billed, {c}"),
                (Role::Billed, None) => "billed".into(),
                _ => "unbilled".into(),
            };
            let _ = writeln!(out, "{pad}  meter {}.{} ({what})", m.device, m.point);
        }
        for u in self.unmetered.iter().filter(|u| u.zone == z.name) {
            let _ = writeln!(out, "{pad}  unmetered {} (~{} {}/day)", u.name, u.per_day, z.utility.unit());
        }
        for c in self.children(&z.name) {
            self.render_zone(c, depth + 1, out);
        }
    }

    /// Graphviz DOT of the network: zones as boxes, meters as ellipses, flow along edges.
    pub fn dot(&self) -> String {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\\\""));
        let mut out = String::from("digraph network {\n  rankdir=LR;\n  node [fontname=\"sans-serif\"];\n");
        for z in &self.zones {
            let _ = writeln!(
                out,
                "  {} [shape=box, label={}];",
                q(&format!("zone:{}", z.name)),
                q(&format!("{} ({})", z.name, z.utility.as_str()))
            );
        }
        for m in &self.meters {
            let id = q(&format!("meter:{}.{}", m.device, m.point));
            let _ = writeln!(out, "  {id} [shape=ellipse, label={}];", q(&m.device));
            let zone = q(&format!("zone:{}", m.zone));
            match m.role {
                Role::Inlet => {
                    let parent = self.zone(&m.zone).and_then(|z| z.parent.clone());
                    if let Some(p) = parent {
                        let _ = writeln!(out, "  {} -> {id};", q(&format!("zone:{p}")));
                    }
                    let _ = writeln!(out, "  {id} -> {zone};");
                }
                _ => {
                    let _ = writeln!(out, "  {zone} -> {id};");
                }
            }
        }
        out.push_str("}\n");
        out
    }
}

/// What the network map needs to know of a configured device.
#[derive(Debug, Clone, Copy)]
pub struct KnownDevice<'a> {
    pub name: &'a str,
    pub profile: &'a Profile,
}

/// Validates the topology sections against the configured devices.
pub fn validate(
    zones: &[(usize, RawZone)],
    meters: &[(usize, RawMeter)],
    unmetered: &[(usize, RawUnmetered)],
    devices: &[KnownDevice<'_>],
    diags: &mut Diagnostics,
) -> Topology {
    let mut topo = Topology::default();
    let device = |name: &str| devices.iter().find(|d| d.name == name);
    let zone_index = zones_into(&mut topo, zones, diags);
    check_tree(&topo, &zone_index, diags);
    // inlet meters
    let mut placed: HashMap<String, String> = HashMap::new();
    let mut place = |device: &str, point: &str, place: String, path: &str, diags: &mut Diagnostics| -> bool {
        let key = format!("{device}.{point}");
        if let Some(first) = placed.get(&key) {
            diags.error(path, format!("meter `{key}` is already counted at {first}; a meter can be in one place only"));
            return false;
        }
        placed.insert(key, place);
        true
    };
    let zones_snapshot = topo.zones.clone();
    for z in &zones_snapshot {
        let zi = zone_index.get(&z.name).copied().unwrap_or(0);
        for (k, inlet) in z.inlets.iter().enumerate() {
            let path = format!("zones[{zi}].inlets[{k}]");
            let (dev, point) = match inlet.split_once('.') {
                Some((d, p)) => (d, Some(p)),
                None => (inlet.as_str(), None),
            };
            let Some(d) = device(dev) else {
                diags.error(path, format!("no device `{dev}` is configured"));
                continue;
            };
            match totalizer(d, z.utility, point) {
                Ok(p) => {
                    if place(dev, &p, path.clone(), &path, diags) {
                        let dev_point = p.clone();
                        topo.meters.push(Meter {
                            device: dev.into(),
                            point: p,
                            zone: z.name.clone(),
                            utility: z.utility,
                            role: Role::Inlet,
                            category: None,
                            rollover_at: modulus(d, &dev_point),
                            max_rate: None,
                        });
                    }
                }
                Err(e) => diags.error(path, e),
            }
        }
    }
    for (i, m) in meters {
        let path = format!("meters[{i}]");
        let Some(dev) = m.device.as_deref() else {
            diags.error(format!("{path}.device"), "missing: the device the meter is read from");
            continue;
        };
        let Some(d) = device(dev) else {
            diags.error(format!("{path}.device"), format!("no device `{dev}` is configured"));
            continue;
        };
        let Some(zname) = m.zone.as_deref() else {
            diags.error(format!("{path}.zone"), "missing: the zone the meter is in");
            continue;
        };
        let Some(z) = topo.zone(zname).cloned() else {
            if !topo.broken.iter().any(|b| b == zname) {
                diags.error(format!("{path}.zone"), format!("no zone `{zname}`"));
            }
            continue;
        };
        let role = match m.role.as_deref().unwrap_or("billed") {
            "billed" => Role::Billed,
            "unbilled" => Role::Unbilled,
            other => {
                diags.error(
                    format!("{path}.role"),
                    format!("unknown role `{other}`; use billed or unbilled (inlets are listed on their zone)"),
                );
                continue;
            }
        };
        if role == Role::Billed && m.category.is_none() {
            diags.error(format!("{path}.category"), "a billed meter needs a customer category (its tariff)");
        }
        let rollover_at = rollover_of(m, &path, diags);
        if let Some(x) = m.max_rate.filter(|x| !(x.is_finite() && *x > 0.0)) {
            diags.error(format!("{path}.max_rate"), format!("{x} is not a positive number"));
        }
        match totalizer(d, z.utility, m.point.as_deref()) {
            Ok(p) => {
                if place(dev, &p, path.clone(), &path, diags) {
                    let dev_point = p.clone();
                    topo.meters.push(Meter {
                        device: dev.into(),
                        point: p,
                        zone: z.name.clone(),
                        utility: z.utility,
                        role,
                        category: m.category.clone(),
                        rollover_at: rollover_at.or_else(|| modulus(d, &dev_point)),
                        max_rate: m.max_rate,
                    });
                }
            }
            Err(e) => diags.error(format!("{path}.point"), e),
        }
    }
    unmetered_into(&mut topo, unmetered, diags);
    topo
}

/// A section's `utility`, or its error at `{path}.utility` (with the word to write where
/// it was written in Chinese).
pub fn utility_field(raw: Option<&str>, path: &str, diags: &mut Diagnostics) -> Option<Utility> {
    let parsed = raw.and_then(Utility::parse);
    if parsed.is_none() {
        let hint = match raw.map(str::trim) {
            Some("水" | "供水") => " (水 is written water)",
            Some("电" | "供电") => " (电 is written electricity)",
            _ => "",
        };
        diags.error(format!("{path}.utility"), format!("needs utility = \"water\" or \"electricity\"{hint}"));
    }
    parsed
}

/// `[[zones]]`: each zone with its utility; returns where each name was defined.
fn zones_into(topo: &mut Topology, zones: &[(usize, RawZone)], diags: &mut Diagnostics) -> HashMap<String, usize> {
    let mut zone_index: HashMap<String, usize> = HashMap::new();
    for (i, z) in zones {
        let path = format!("zones[{i}]");
        let Some(name) = z.name.clone().filter(|n| !n.is_empty()) else {
            diags.error(format!("{path}.name"), "every zone needs a name");
            continue;
        };
        if let Some(first) = zone_index.insert(name.clone(), *i) {
            diags.error(format!("{path}.name"), format!("zone `{name}` is already defined at zones[{first}]"));
            continue;
        }
        let Some(utility) = utility_field(z.utility.as_deref(), &path, diags) else {
            topo.broken.push(name);
            continue;
        };
        topo.zones.push(Zone { name, utility, parent: z.parent.clone(), inlets: z.inlets.clone() });
    }
    zone_index
}

/// Parents exist and have the same utility, the tree has no cycle, and every zone has
/// an inlet.
fn check_tree(topo: &Topology, zone_index: &HashMap<String, usize>, diags: &mut Diagnostics) {
    for (k, z) in topo.zones.iter().enumerate() {
        let path = format!("zones[{}]", zone_index.get(&z.name).copied().unwrap_or(k));
        if let Some(p) = &z.parent {
            match topo.zone(p) {
                None if topo.broken.contains(p) => {}
                None => diags.error(format!("{path}.parent"), format!("no zone `{p}`")),
                Some(pz) if pz.utility != z.utility => diags.error(
                    format!("{path}.parent"),
                    format!("`{p}` is a {} zone; `{}` is {}", pz.utility.as_str(), z.name, z.utility.as_str()),
                ),
                Some(_) => {
                    let mut seen = HashSet::from([z.name.as_str()]);
                    let mut cur = Some(p.as_str());
                    while let Some(c) = cur {
                        if !seen.insert(c) {
                            diags.error(
                                format!("{path}.parent"),
                                format!("zone `{}` is its own ancestor (a cycle through `{c}`)", z.name),
                            );
                            break;
                        }
                        cur = topo.zone(c).and_then(|x| x.parent.as_deref());
                    }
                }
            }
        }
        if z.inlets.is_empty() {
            diags.error(
                format!("{path}.inlets"),
                format!("zone `{}` has no inlet meter: its input cannot be measured", z.name),
            );
        }
    }
}

/// Where the register of a device's point wraps, when its protocol fixes it (a DL/T 645
/// or CJ/T 188 meter's BCD register); `rollover_at` in `[[meters]]` overrides it.
fn modulus(d: &KnownDevice<'_>, point: &str) -> Option<f64> {
    d.profile.points.iter().find(|p| &*p.name == point).and_then(|p| p.register_modulus())
}

/// A device's totalizer point of a utility: the one named, else its first.
fn totalizer(d: &KnownDevice<'_>, u: Utility, point: Option<&str>) -> Result<String, String> {
    let pts: Vec<&str> = d.profile.points.iter().filter(|p| p.quantity == u.totalizer()).map(|p| &*p.name).collect();
    match point {
        Some(p) if pts.contains(&p) => Ok(p.to_string()),
        Some(p) => Err(format!(
            "device `{}` has no {} point `{p}` (its {} totalizers: {})",
            d.name,
            u.as_str(),
            u.totalizer(),
            if pts.is_empty() { "none".into() } else { pts.join(", ") }
        )),
        None => pts.first().map(|p| p.to_string()).ok_or_else(|| {
            format!(
                "device `{}` (profile {}) has no {} point to read {} from",
                d.name,
                d.profile.name,
                u.totalizer(),
                u.as_str()
            )
        }),
    }
}

/// A meter's wrap modulus: `max_reading` (the last reading before the wrap) or
/// `rollover_at` (the modulus), not both.
fn rollover_of(m: &RawMeter, path: &str, diags: &mut Diagnostics) -> Option<f64> {
    if let Some(x) = m.max_reading.filter(|x| !(x.is_finite() && *x > 0.0)) {
        diags.error(format!("{path}.max_reading"), format!("{x} is not a positive number"));
    }
    if let Some(x) = m.rollover_at.filter(|x| !(x.is_finite() && *x > 0.0)) {
        diags.error(format!("{path}.rollover_at"), format!("{x} is not a positive number"));
    }
    match (m.max_reading, m.rollover_at) {
        (Some(_), Some(_)) => {
            diags.error(
                format!("{path}.rollover_at"),
                "give max_reading (the last reading before the wrap) or rollover_at (the wrap modulus), not both",
            );
            None
        }
        (Some(max), None) => Some(modulus_of_max_reading(max)),
        (None, at) => at,
    }
}

/// `[[unmetered]]`: estimated unmetered use per zone.
fn unmetered_into(topo: &mut Topology, unmetered: &[(usize, RawUnmetered)], diags: &mut Diagnostics) {
    for (i, u) in unmetered {
        let path = format!("unmetered[{i}]");
        let zone = u.zone.clone().unwrap_or_default();
        if topo.zone(&zone).is_none() {
            if !topo.broken.contains(&zone) {
                diags.error(format!("{path}.zone"), format!("no zone `{zone}`"));
            }
            continue;
        }
        match u.per_day {
            Some(v) if v.is_finite() && v >= 0.0 => topo.unmetered.push(Unmetered {
                zone,
                name: u.name.clone().unwrap_or_else(|| "unmetered".into()),
                per_day: v,
            }),
            _ => diags.error(format!("{path}.per_day"), "needs the estimated use per day (a number ≥ 0)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{self, diag::ConfigErrors, Mode};

    const DEVICES: &str = r#"
[site]
name = "s"
[[buses]]
name = "lan"
transport = "tcp"
address = "127.0.0.1:502"
[[devices]]
name = "main"
bus = "lan"
unit = 1
profile = "tuf-2000m"
[[devices]]
name = "a"
bus = "lan"
unit = 2
profile = "tuf-2000m"
[[devices]]
name = "b"
bus = "lan"
unit = 3
profile = "tuf-2000m"
[[devices]]
name = "power"
bus = "lan"
unit = 4
profile = "eastron-sdm120"
"#;

    fn errors(extra: &str) -> Vec<(String, String)> {
        match config::load_str(&format!("{DEVICES}{extra}"), Mode::Check) {
            Ok(_) => panic!("expected errors"),
            Err(ConfigErrors(items)) => items.into_iter().map(|d| (d.path, d.message)).collect(),
        }
    }

    fn has(errs: &[(String, String)], path: &str, fragment: &str) {
        assert!(errs.iter().any(|(p, m)| p == path && m.contains(fragment)), "no {path} ~ {fragment:?} in {errs:#?}");
    }

    #[test]
    fn a_valid_tree() {
        let text = format!(
            "{DEVICES}
[[zones]]
name = \"campus\"
utility = \"water\"
inlets = [\"main\"]
[[zones]]
name = \"z1\"
utility = \"water\"
parent = \"campus\"
inlets = [\"a\"]
[[meters]]
device = \"b\"
zone = \"z1\"
category = \"canteen\"
"
        );
        let (cfg, _) = config::load_str(&text, Mode::Check).unwrap();
        let t = &cfg.topology;
        assert_eq!(t.zones.len(), 2);
        assert_eq!(t.meters.len(), 3);
        assert_eq!(t.meters.iter().find(|m| m.device == "b").unwrap().point, "positive_total");
        assert!(
            t.render().contains("    zone z1 (inlets: a)\n      meter b.positive_total (billed, canteen)"),
            "{}",
            t.render()
        );
        assert!(t.dot().contains("\"zone:campus\" -> \"meter:a.positive_total\""));
    }

    #[test]
    fn a_meter_in_two_places_a_cycle_and_a_zone_without_inlet() {
        let errs = errors(
            "
[[zones]]
name = \"x\"
utility = \"water\"
parent = \"y\"
inlets = [\"main\"]
[[zones]]
name = \"y\"
utility = \"water\"
parent = \"x\"
inlets = [\"a\"]
[[zones]]
name = \"z\"
utility = \"water\"
[[zones]]
name = \"p\"
utility = \"electricity\"
inlets = [\"b\"]
[[meters]]
device = \"a\"
zone = \"x\"
category = \"canteen\"
[[meters]]
device = \"nobody\"
zone = \"x\"
[[meters]]
device = \"power\"
zone = \"x\"
category = \"canteen\"
[[meters]]
device = \"b\"
zone = \"x\"
",
        );
        has(&errs, "zones[0].parent", "is its own ancestor");
        has(&errs, "zones[2].inlets", "zone `z` has no inlet meter");
        has(&errs, "zones[3].inlets[0]", "device `b` (profile tuf-2000m) has no energy_import point");
        has(&errs, "meters[0]", "meter `a.positive_total` is already counted at zones[1].inlets[0]");
        has(&errs, "meters[1].device", "no device `nobody`");
        has(&errs, "meters[2].point", "device `power` (profile eastron-sdm120) has no water_volume point");
        has(&errs, "meters[3].category", "a billed meter needs a customer category");
    }
}

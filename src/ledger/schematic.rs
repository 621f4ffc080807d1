//! The network map drawn: a schematic of the water and the power network from the
//! configuration's topology, laid out by itself (no coordinates to maintain): each
//! network starts at its source (the plant, the grid intake), its zones hang below it as
//! a tree, and each zone lists its devices — inlet meters, valves, pressure points,
//! water-quality analysers, billed and unbilled meters. Each zone is coloured by its
//! non-revenue share this month, each element carries its live state, and an element
//! with an active alert is marked. Pure: data in, SVG text out; the page, the command
//! line and the files draw the same picture.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::topology::{Topology, Utility};
use crate::lang::Lang;

/// What an element of a zone is, for its symbol and its order within the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Inlet,
    Valve,
    Pressure,
    Quality,
    Billed,
    Unbilled,
    Device,
}

/// A configured device with its state as last read.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub device: String,
    /// The zone the device is placed in (`[[devices]] zone`).
    pub zone: String,
    pub kind: Kind,
    /// Its latest values with units ("12.3 m³/h · 0.352 MPa"); empty when none.
    pub state: String,
    /// `None`: no reading yet; `Some(false)`: its latest reading is bad.
    pub good: Option<bool>,
    pub alerted: bool,
}

/// What the drawing shows besides the topology.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub elements: Vec<Element>,
    /// Zone → this month's non-revenue share (`None`: unknown).
    pub shares: BTreeMap<String, Option<f64>>,
    /// Zones with an active alert about the zone itself.
    pub zone_alerts: BTreeSet<String>,
    /// Whether the elements carry their readings; a drawing of the configuration alone
    /// (`pumphouse topology --format svg`) claims nothing about them.
    pub live: bool,
}

/// Where an element is drawn: a meter of the map in the zone the map puts it in (an
/// electricity meter mounted in a water zone's building is drawn in the power network),
/// any other device in its own `zone`.
pub fn zone_of(topo: &Topology, device: &str, device_zone: &str) -> String {
    topo.meters.iter().find(|m| m.device == device).map_or_else(|| device_zone.to_string(), |m| m.zone.clone())
}

/// An element's kind: from its place in the map (inlet, billed, unbilled meter), else
/// from what its profile measures.
pub fn kind_of(topo: &Topology, device: &str, measures: &[crate::model::Quantity]) -> Kind {
    use super::topology::Role;
    use crate::model::Quantity;
    let roles: Vec<Role> = topo.meters.iter().filter(|m| m.device == device).map(|m| m.role).collect();
    let has = |q: Quantity| measures.contains(&q);
    if roles.contains(&Role::Inlet) {
        Kind::Inlet
    } else if roles.contains(&Role::Billed) {
        Kind::Billed
    } else if roles.contains(&Role::Unbilled) {
        Kind::Unbilled
    } else if has(Quantity::ValvePosition) {
        Kind::Valve
    } else if has(Quantity::FreeChlorine) || has(Quantity::Turbidity) || has(Quantity::Ph) {
        Kind::Quality
    } else if has(Quantity::Pressure) {
        Kind::Pressure
    } else {
        Kind::Device
    }
}

/// The colour class of a non-revenue share: under 15 %, under 30 %, more, unknown.
pub fn share_class(share: Option<f64>) -> &'static str {
    match share {
        Some(s) if s < 0.15 => "nrw-low",
        Some(s) if s < 0.30 => "nrw-mid",
        Some(_) => "nrw-high",
        None => "nrw-unknown",
    }
}

fn colour(class: &str) -> &'static str {
    match class {
        "nrw-low" => "#d5efdc",
        "nrw-mid" => "#fbe7b5",
        "nrw-high" => "#f6c9c4",
        _ => "#e4e8ec",
    }
}

/// A label's width in the drawing's 12 px font: Chinese characters are twice as wide.
fn text_width(s: &str) -> f64 {
    s.chars().map(|c| if c.is_ascii() { 6.8 } else { 12.5 }).sum()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

enum Row<'a> {
    Header(&'a str),
    Source(Utility),
    Zone { name: &'a str, depth: usize, parent: Option<usize> },
    Element { e: &'a Element, depth: usize, parent: Option<usize> },
}

const ROW: f64 = 26.0;
const STEP: f64 = 26.0;

/// The schematic as SVG. `link`: each zone and device links to its page (`/network?…`)
/// in `lang`.
pub fn svg(topo: &Topology, state: &State, lang: Lang, link: bool) -> String {
    let mut rows: Vec<Row<'_>> = Vec::new();
    for (utility, title) in [
        (Utility::Water, lang.t("Water network", "供水管网")),
        (Utility::Electricity, lang.t("Power network", "供电网络")),
    ] {
        if !topo.zones.iter().any(|z| z.utility == utility) {
            continue;
        }
        rows.push(Row::Header(title));
        rows.push(Row::Source(utility));
        let source = rows.len() - 1;
        let roots: Vec<&str> =
            topo.zones.iter().filter(|z| z.utility == utility && z.parent.is_none()).map(|z| z.name.as_str()).collect();
        for r in roots {
            zone_rows(topo, state, r, 1, Some(source), &mut rows);
        }
    }
    // devices whose zone is not on the map still appear, apart, so that none is lost
    let mut off: Vec<&Element> = state.elements.iter().filter(|e| topo.zone(&e.zone).is_none()).collect();
    off.sort_by(|a, b| (&a.zone, a.kind, &a.device).cmp(&(&b.zone, b.kind, &b.device)));
    if !off.is_empty() {
        rows.push(Row::Header(lang.t("Devices outside the map", "不在分区图上的设备")));
        rows.extend(off.into_iter().map(|e| Row::Element { e, depth: 0, parent: None }));
    }
    draw(&rows, state, lang, link)
}

fn zone_rows<'a>(
    topo: &'a Topology,
    state: &'a State,
    name: &'a str,
    depth: usize,
    parent: Option<usize>,
    rows: &mut Vec<Row<'a>>,
) {
    rows.push(Row::Zone { name, depth, parent });
    let me = rows.len() - 1;
    let mut mine: Vec<&Element> = state.elements.iter().filter(|e| e.zone == name).collect();
    mine.sort_by(|a, b| (a.kind, &a.device).cmp(&(b.kind, &b.device)));
    rows.extend(mine.into_iter().map(|e| Row::Element { e, depth: depth + 1, parent: Some(me) }));
    for child in topo.children(name) {
        zone_rows(topo, state, &child.name, depth + 1, Some(me), rows);
    }
}

fn x_of(depth: usize) -> f64 {
    16.0 + depth as f64 * STEP
}

fn draw(rows: &[Row<'_>], state: &State, lang: Lang, link: bool) -> String {
    let width = 860.0;
    let height = ROW * rows.len() as f64 + 16.0;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="schematic" data-k="schematic" width="{width}" height="{height}" viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" font-family="system-ui, 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif" font-size="12" role="img"><title>{}</title>"##,
        lang.t("Network map", "管网分布图")
    );
    let y_of = |i: usize| 12.0 + ROW * i as f64 + ROW / 2.0;
    let depth_of = |r: &Row<'_>| match r {
        Row::Header(_) => 0,
        Row::Source(_) => 0,
        Row::Zone { depth, .. } | Row::Element { depth, .. } => *depth,
    };
    // connectors first, under the symbols: down from the parent, across to the row
    for (i, r) in rows.iter().enumerate() {
        let parent = match r {
            Row::Zone { parent, .. } | Row::Element { parent, .. } => *parent,
            _ => None,
        };
        if let Some(p) = parent {
            let px = x_of(depth_of(&rows[p])) + 6.0;
            let (py, y, x) = (y_of(p), y_of(i), x_of(depth_of(r)));
            let _ = write!(s, r##"<path d="M{px:.1} {py:.1} V{y:.1} H{x:.1}" fill="none" stroke="#8a96a3"/>"##);
        }
    }
    // an element in a link to its page, on the page; as it is elsewhere
    let linked = |path: String, inner: String| {
        if link {
            format!(
                r##"<a href="{path}{}lang={}">{inner}</a>"##,
                if path.contains('?') { "&amp;" } else { "?" },
                lang.code()
            )
        } else {
            inner
        }
    };
    for (i, r) in rows.iter().enumerate() {
        let y = y_of(i);
        match r {
            Row::Header(t) => {
                let _ =
                    write!(s, r##"<text x="8" y="{:.1}" font-weight="600" font-size="13">{}</text>"##, y + 4.0, esc(t));
            }
            Row::Source(u) => {
                let label = match u {
                    Utility::Water => lang.t("source and plant", "水源与水厂"),
                    Utility::Electricity => lang.t("grid intake", "电网进线"),
                };
                let x = x_of(0);
                let _ = write!(
                    s,
                    r##"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="#14324a"/><text x="{:.1}" y="{:.1}">{}</text>"##,
                    y - 6.0,
                    x + 18.0,
                    y + 4.0,
                    esc(label)
                );
            }
            Row::Zone { name, depth, .. } => {
                let share = state.shares.get(*name).copied().flatten();
                let class = share_class(share);
                let alerted = state.zone_alerts.contains(*name);
                let x = x_of(*depth);
                let shown = share.map_or("—".to_string(), |v| format!("{:.1} %", v * 100.0));
                // the month's share where there is one to give (the page, the workbook)
                let label = if state.live || !state.shares.is_empty() {
                    format!("{name} · {} {shown}", lang.t("non-revenue", "产销差率"))
                } else {
                    name.to_string()
                };
                let w = 16.0 + text_width(&label);
                let g = format!(
                    r##"<g data-zone="{}" data-nrw="{class}" data-alert="{}"><rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="20" rx="4" fill="{}" stroke="#5b6b7b"/><text x="{:.1}" y="{:.1}" font-weight="600">{}</text>{}</g>"##,
                    esc(name),
                    u8::from(alerted),
                    y - 10.0,
                    colour(class),
                    x + 8.0,
                    y + 4.0,
                    esc(&label),
                    marker(alerted, x + w + 6.0, y)
                );
                s.push_str(&linked(format!("/network?zone={}", esc(name)), g));
            }
            Row::Element { e, depth, .. } => {
                let x = x_of(*depth);

                let status = match (state.live, e.good) {
                    (false, _) => String::new(),
                    (true, None) => lang.t("no reading yet", "尚无读数").to_string(),
                    (true, Some(false)) => lang.t("bad reading", "读数异常").to_string(),
                    (true, Some(true)) => e.state.clone(),
                };
                let label = if status.is_empty() { e.device.clone() } else { format!("{} — {status}", e.device) };
                let g = format!(
                    r##"<g data-device="{}" data-kind="{:?}" data-good="{}" data-alert="{}">{}<text x="{:.1}" y="{:.1}" fill="{}">{}</text>{}</g>"##,
                    esc(&e.device),
                    e.kind,
                    match (state.live, e.good) {
                        (false, _) => "unknown",
                        (true, None) => "none",
                        (true, Some(true)) => "yes",
                        (true, Some(false)) => "no",
                    },
                    u8::from(e.alerted),
                    symbol(e.kind, x + 6.0, y),
                    x + 18.0,
                    y + 4.0,
                    if e.good == Some(true) || !state.live { "#1d2733" } else { "#b3261e" },
                    esc(&label),
                    marker(e.alerted, x + 24.0 + text_width(&label), y)
                );
                s.push_str(&linked(format!("/device/{}", esc(&e.device)), g));
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// A red warning sign after an element with an active alert.
fn marker(on: bool, x: f64, y: f64) -> String {
    if !on {
        return String::new();
    }
    format!(
        r##"<g class="alert-marker"><path d="M{x:.1} {:.1} l7 -12 l7 12 z" fill="#b3261e"/><text x="{:.1}" y="{:.1}" fill="#fff" font-size="9" font-weight="700">!</text></g>"##,
        y + 6.0,
        x + 5.5,
        y + 4.5
    )
}

/// The element's symbol, centred on (x, y).
fn symbol(kind: Kind, x: f64, y: f64) -> String {
    match kind {
        // a flow arrow into the zone
        Kind::Inlet => format!(
            r##"<path d="M{:.1} {y:.1} h10 m-4 -4 l4 4 l-4 4" stroke="#14324a" fill="none" stroke-width="2"/>"##,
            x - 5.0
        ),
        // a gate valve: two triangles point to point
        Kind::Valve => format!(r##"<path d="M{:.1} {:.1} l12 10 v-10 l-12 10 z" fill="#5b6b7b"/>"##, x - 6.0, y - 5.0),
        Kind::Pressure => format!(
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="6" fill="#fff" stroke="#14324a"/><text x="{:.1}" y="{:.1}" font-size="9">P</text>"##,
            x - 3.0,
            y + 3.0
        ),
        Kind::Quality => format!(r##"<path d="M{x:.1} {:.1} l6 6 l-6 6 l-6 -6 z" fill="#3a7bd5"/>"##, y - 6.0),
        Kind::Billed => {
            format!(r##"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="#14324a"/>"##, x - 5.0, y - 5.0)
        }
        Kind::Unbilled => format!(
            r##"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="#fff" stroke="#14324a"/>"##,
            x - 5.0,
            y - 5.0
        ),
        Kind::Device => format!(r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="#8a96a3"/>"##),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::topology::Zone;

    fn topo() -> Topology {
        let zone = |name: &str, utility, parent: Option<&str>| Zone {
            name: name.into(),
            utility,
            parent: parent.map(str::to_string),
            inlets: vec![],
        };
        Topology {
            zones: vec![
                zone("campus", Utility::Water, None),
                zone("north", Utility::Water, Some("campus")),
                zone("grid", Utility::Electricity, None),
            ],
            ..Default::default()
        }
    }

    fn element(device: &str, zone: &str, kind: Kind, alerted: bool) -> Element {
        Element { device: device.into(), zone: zone.into(), kind, state: "1.0 m³/h".into(), good: Some(true), alerted }
    }

    #[test]
    fn every_device_appears_under_its_zone_and_colours_follow_the_data() {
        let state = State {
            elements: vec![
                element("inlet-north", "north", Kind::Inlet, false),
                element("valve-north", "north", Kind::Valve, true),
                element("power-main", "grid", Kind::Billed, false),
                element("stray", "nowhere", Kind::Device, false),
            ],
            shares: [("campus".to_string(), Some(0.10)), ("north".to_string(), Some(0.42))].into(),
            zone_alerts: ["north".to_string()].into(),
            live: true,
        };
        let s = svg(&topo(), &state, Lang::Zh, true);
        for d in ["inlet-north", "valve-north", "power-main", "stray"] {
            assert!(s.contains(&format!("data-device=\"{d}\"")), "{d}");
        }
        assert!(s.contains(r#"data-zone="campus" data-nrw="nrw-low" data-alert="0""#), "{s}");
        assert!(s.contains(r#"data-zone="north" data-nrw="nrw-high" data-alert="1""#), "{s}");
        assert!(s.contains(r#"data-zone="grid" data-nrw="nrw-unknown""#), "{s}");
        assert!(s.contains(r#"data-device="valve-north" data-kind="Valve" data-good="yes" data-alert="1""#));
        assert_eq!(s.matches("alert-marker").count(), 2, "the valve and its zone");
        assert!(s.contains("供水管网") && s.contains("供电网络") && s.contains("不在分区图上的设备"));
        // north is drawn below campus, its devices below north
        let at = |needle: &str| s.find(needle).unwrap();
        assert!(at("data-zone=\"campus\"") < at("data-zone=\"north\""));
        assert!(at("data-zone=\"north\"") < at("data-device=\"inlet-north\""));
        assert!(at("data-device=\"inlet-north\"") < at("data-device=\"valve-north\""), "inlets first");
        assert!(s.contains("href=\"/network?zone=north&amp;lang=zh\""), "{s}");
        assert!(s.contains("href=\"/device/valve-north?lang=zh\""), "{s}");
    }

    #[test]
    fn names_are_escaped_and_unknowns_read_unknown() {
        let state = State {
            elements: vec![Element { good: None, ..element("a<b", "campus", Kind::Billed, false) }],
            live: true,
            ..Default::default()
        };
        let s = svg(&topo(), &state, Lang::En, false);
        assert!(s.contains("a&lt;b — no reading yet") && !s.contains("a<b"), "{s}");
        assert!(s.contains("campus · non-revenue —"));
        assert!(!s.contains("<a "), "no links outside the page");
    }
}

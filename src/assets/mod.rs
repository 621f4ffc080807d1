//! The register of the water network's pipe sections (`[[assets.pipes]]`) and the
//! renewal list computed from it and the store's failure records ([`renewal`]).
//!
//! ```toml
//! [[assets.pipes]]
//! id = "S-03"                 # the section's name on the drawings
//! zone = "south"              # a water zone of [[zones]]
//! from = "plant"              # optional: where it runs, for people
//! to = "dorm 3"
//! material = "cast_iron"      # see Material
//! diameter_mm = 150
//! length_m = 420
//! laid = 1972                 # the year it was laid
//!
//! [assets.material_life]      # optional: years, replacing the defaults
//! cast_iron = 60
//!
//! [assets]
//! exercise_every = "365d"     # how often a gate valve is to be moved (the page's due date)
//! ```

pub mod renewal;
pub mod valves;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::diag::Diagnostics;

/// What a pipe is made of; each has a design life (years) a section's age is read against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Material {
    CastIron,
    DuctileIron,
    Steel,
    GalvanizedSteel,
    Pvc,
    Pe,
    AsbestosCement,
    Concrete,
    Copper,
}

impl Material {
    pub const ALL: [Material; 9] = [
        Material::CastIron,
        Material::DuctileIron,
        Material::Steel,
        Material::GalvanizedSteel,
        Material::Pvc,
        Material::Pe,
        Material::AsbestosCement,
        Material::Concrete,
        Material::Copper,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Material::CastIron => "cast_iron",
            Material::DuctileIron => "ductile_iron",
            Material::Steel => "steel",
            Material::GalvanizedSteel => "galvanized_steel",
            Material::Pvc => "pvc",
            Material::Pe => "pe",
            Material::AsbestosCement => "asbestos_cement",
            Material::Concrete => "concrete",
            Material::Copper => "copper",
        }
    }

    pub fn label(self, lang: crate::lang::Lang) -> &'static str {
        match self {
            Material::CastIron => lang.t("cast iron", "灰口铸铁"),
            Material::DuctileIron => lang.t("ductile iron", "球墨铸铁"),
            Material::Steel => lang.t("steel", "钢管"),
            Material::GalvanizedSteel => lang.t("galvanized steel", "镀锌钢管"),
            Material::Pvc => lang.t("PVC-U", "PVC-U"),
            Material::Pe => lang.t("PE", "PE"),
            Material::AsbestosCement => lang.t("asbestos cement", "石棉水泥管"),
            Material::Concrete => lang.t("concrete", "混凝土管"),
            Material::Copper => lang.t("copper", "铜管"),
        }
    }

    fn parse(s: &str) -> Option<Material> {
        Material::ALL.into_iter().find(|m| m.id() == s)
    }

    /// The default design life in years (the README gives the source of each): 50 for
    /// the pipes the Chinese structural code designs for 50 years and the plastics whose
    /// strength is rated at 50 years; 30 for galvanized steel, which corrodes from inside
    /// and was withdrawn from drinking-water use.
    pub fn default_life(self) -> u32 {
        match self {
            Material::GalvanizedSteel => 30,
            _ => 50,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssets {
    #[serde(default)]
    pub pipes: Vec<RawPipe>,
    #[serde(default)]
    pub material_life: BTreeMap<String, i64>,
    /// How often a gate valve is to be moved (it seizes if it never is).
    pub exercise_every: Option<String>,
    #[serde(default)]
    pub valves: Vec<valves::RawValve>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipe {
    pub id: Option<String>,
    pub zone: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub material: Option<String>,
    pub diameter_mm: Option<i64>,
    pub length_m: Option<f64>,
    pub laid: Option<i64>,
}

/// One pipe section of the register.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipe {
    pub id: String,
    pub zone: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub material: Material,
    pub diameter_mm: u32,
    pub length_m: f64,
    pub laid: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assets {
    pub pipes: Vec<Pipe>,
    /// Design life per material, years (the defaults, with `material_life` over them).
    pub life: BTreeMap<Material, u32>,
    /// How often a valve is to be moved: the page's "exercise due" (default a year).
    pub exercise_every: std::time::Duration,
    pub valves: Vec<valves::Valve>,
}

impl Default for Assets {
    fn default() -> Self {
        Assets { pipes: Vec::new(), life: BTreeMap::new(), exercise_every: EXERCISE_EVERY, valves: Vec::new() }
    }
}

/// Gate valves are exercised once a year unless the utility says otherwise.
pub const EXERCISE_EVERY: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);

impl Assets {
    /// `exercise_every` as a span of time (validated to at most ten years, so it fits).
    pub fn exercise_interval(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.exercise_every).unwrap_or(chrono::TimeDelta::days(365))
    }

    pub fn life(&self, m: Material) -> u32 {
        self.life.get(&m).copied().unwrap_or_else(|| m.default_life())
    }
}

/// The renewal list from the register and the store's records: its bursts and leaks, the
/// years its alert rules have covered, the end of the data they saw. `None` for the store
/// (none yet): the failure figures are unknown.
pub fn renewal_list(
    assets: &Assets,
    store: Option<&crate::store::Store>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<renewal::Candidate>, crate::store::StoreError> {
    use crate::model::AlertRule;
    if assets.pipes.is_empty() {
        return Ok(Vec::new()); // no register: nothing to read the store for
    }
    let Some(store) = store else {
        return Ok(renewal::rank(assets, &[], None, now, now.date_naive()));
    };
    let passes = store.alert_passes()?;
    let covered_ms: i64 = passes.iter().map(|(a, b)| (b - a).max(0)).sum();
    let years = (covered_ms > 0).then(|| covered_ms as f64 / (365.25 * 86_400_000.0));
    let ms = chrono::DateTime::from_timestamp_millis;
    let seen_to = passes.iter().map(|(_, b)| *b).max().and_then(ms).map_or(now, |t| t.min(now));
    // the sections repairs were recorded on, by the alert they ended
    let sections: std::collections::HashMap<i64, String> =
        store.asset_records()?.into_iter().filter_map(|r| Some((r.alert?, r.asset))).collect();
    let failures: Vec<renewal::Failure> = store
        .alerts(false)?
        .into_iter()
        .filter(|a| matches!(a.rule, AlertRule::Burst | AlertRule::NightFlow))
        .filter_map(|a| {
            Some(renewal::Failure {
                zone: a.zone,
                rule: a.rule,
                start: ms(a.start_ms)?,
                end: a.end_ms.and_then(ms),
                loss_per_day: a.loss_per_day,
                loss_fen_per_day: a.loss_fen_per_day,
                section: sections.get(&a.id).cloned(),
            })
        })
        .collect();
    Ok(renewal::rank(assets, &failures, years, seen_to, now.date_naive()))
}

/// Validates `[assets]` against the topology's water zones.
pub fn validate_for(
    raw: &RawAssets,
    topology: &crate::ledger::topology::Topology,
    valve_devices: &[&str],
    diags: &mut Diagnostics,
) -> Assets {
    let water: Vec<&str> = topology
        .zones
        .iter()
        .filter(|z| z.utility == crate::ledger::topology::Utility::Water)
        .map(|z| z.name.as_str())
        .collect();
    let mut assets = validate(raw, &water, diags);
    let mut taken: std::collections::BTreeSet<String> = assets.pipes.iter().map(|p| p.id.clone()).collect();
    assets.valves = valves::validate(&raw.valves, &water, valve_devices, &mut taken, diags);
    assets
}

/// Validates `[assets]` against the configured water zones; every error at once.
pub fn validate(raw: &RawAssets, water_zones: &[&str], diags: &mut Diagnostics) -> Assets {
    let known = || Material::ALL.iter().map(|m| m.id()).collect::<Vec<_>>().join(", ");
    let mut life: BTreeMap<Material, u32> = Material::ALL.iter().map(|m| (*m, m.default_life())).collect();
    for (k, v) in &raw.material_life {
        let path = format!("assets.material_life.{k}");
        match (Material::parse(k), u32::try_from(*v)) {
            (None, _) => diags.error(path, format!("not a material: one of {}", known())),
            (Some(_), Ok(y)) if (1..=200).contains(&y) => {
                if let Some(m) = Material::parse(k) {
                    life.insert(m, y);
                }
            }
            _ => diags.error(path, "a design life in years, 1 to 200"),
        }
    }
    let mut pipes = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, p) in raw.pipes.iter().enumerate() {
        let path = format!("assets.pipes[{i}]");
        let before = diags.items.len();
        let id = p.id.clone().filter(|s| !s.trim().is_empty());
        match &id {
            None => diags.error(format!("{path}.id"), "needs the section's name"),
            Some(x) if !seen.insert(x.clone()) => diags.error(format!("{path}.id"), format!("`{x}` is named twice")),
            _ => {}
        }
        let zone = p.zone.clone();
        match zone.as_deref() {
            None => diags.error(format!("{path}.zone"), "needs the water zone the section is in"),
            Some(z) if !water_zones.contains(&z) => diags.error(
                format!("{path}.zone"),
                format!("`{z}` is not a water zone of [[zones]] (known: {})", water_zones.join(", ")),
            ),
            _ => {}
        }
        let material = p.material.as_deref().and_then(Material::parse);
        if material.is_none() {
            diags.error(format!("{path}.material"), format!("needs one of {}", known()));
        }
        let diameter = p.diameter_mm.and_then(|d| u32::try_from(d).ok()).filter(|d| (10..=4000).contains(d));
        if diameter.is_none() {
            diags.error(format!("{path}.diameter_mm"), "needs the nominal diameter in mm, 10 to 4000");
        }
        let length = p.length_m.filter(|l| l.is_finite() && *l > 0.0 && *l <= 100_000.0);
        if length.is_none() {
            diags.error(format!("{path}.length_m"), "needs the length in metres, above 0 and at most 100 km");
        }
        let laid = p.laid.and_then(|y| i32::try_from(y).ok()).filter(|y| (1850..=2200).contains(y));
        if laid.is_none() {
            diags.error(format!("{path}.laid"), "needs the year the section was laid (1850 to 2200)");
        }
        if diags.items.len() != before {
            continue;
        }
        if let (Some(id), Some(zone), Some(material), Some(diameter_mm), Some(length_m), Some(laid)) =
            (id, zone, material, diameter, length, laid)
        {
            pipes.push(Pipe {
                id,
                zone,
                from: p.from.clone(),
                to: p.to.clone(),
                material,
                diameter_mm,
                length_m,
                laid,
            });
        }
    }
    let day = std::time::Duration::from_secs(86_400);
    let exercise_every = crate::diag::duration_field(
        &raw.exercise_every,
        EXERCISE_EVERY,
        7 * day..=3653 * day,
        "assets.exercise_every",
        diags,
    );
    Assets { pipes, life, exercise_every, valves: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe(id: &str, zone: &str, material: &str, laid: i64) -> RawPipe {
        RawPipe {
            id: Some(id.into()),
            zone: Some(zone.into()),
            material: Some(material.into()),
            diameter_mm: Some(150),
            length_m: Some(400.0),
            laid: Some(laid),
            ..Default::default()
        }
    }

    #[test]
    fn a_register_is_checked_whole() {
        let raw = RawAssets {
            pipes: vec![
                pipe("S-01", "south", "cast_iron", 1972),
                pipe("S-01", "south", "pe", 2015),
                pipe("N-01", "nowhere", "lead", 1900),
                RawPipe { id: Some("E-01".into()), zone: Some("south".into()), ..Default::default() },
            ],
            material_life: [("pe".to_string(), 60), ("wood".to_string(), 20), ("pvc".to_string(), 0)].into(),
            exercise_every: Some("3d".into()),
            valves: Vec::new(),
        };
        let mut d = Diagnostics::default();
        let a = validate(&raw, &["south", "north"], &mut d);
        let said: Vec<String> = d.items.iter().map(|x| format!("{}: {}", x.path, x.message)).collect();
        for want in [
            "assets.pipes[1].id: `S-01` is named twice",
            "assets.pipes[2].zone: `nowhere` is not a water zone",
            "assets.pipes[2].material: needs one of cast_iron",
            "assets.pipes[3].material",
            "assets.pipes[3].diameter_mm",
            "assets.pipes[3].length_m",
            "assets.pipes[3].laid",
            "assets.material_life.wood: not a material",
            "assets.material_life.pvc: a design life in years",
            "assets.exercise_every: `3d` is outside",
        ] {
            assert!(said.iter().any(|s| s.starts_with(want)), "{want} not in {said:#?}");
        }
        assert_eq!(a.pipes.len(), 1);
        assert_eq!(a.exercise_every, EXERCISE_EVERY, "a refused value leaves the default");
        assert_eq!((a.life(Material::Pe), a.life(Material::CastIron), a.life(Material::GalvanizedSteel)), (60, 50, 30));
    }
}

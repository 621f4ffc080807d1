//! `pumphouse assets renewal`: the register's pipe sections ranked for renewal
//! ([`crate::assets::renewal`]), from the configuration's `[assets]` and the store's burst
//! and leak records. Without a store (or before the alert rules have run over it) the
//! failure figures are unknown and said to be, never 0.

use anyhow::bail;
use chrono::Utc;

use crate::assets::renewal::Candidate;
use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewalFormat {
    Text,
    Csv,
    Json,
}

pub fn renewal(cfg: &Config, format: RenewalFormat) -> anyhow::Result<String> {
    if cfg.assets.pipes.is_empty() {
        bail!("{} registers no pipe sections: add [[assets.pipes]] (see the README's asset register)", cfg.source);
    }
    let store = if cfg.store.path.exists() { Some(super::open_store(cfg, true)?) } else { None };
    let list = crate::assets::renewal_list(&cfg.assets, store.as_ref(), Utc::now())?;
    let lang = cfg.site.language;
    Ok(match format {
        RenewalFormat::Text => text(&list, lang),
        RenewalFormat::Csv => csv(&list, lang),
        RenewalFormat::Json => json(&list, lang)?,
    })
}

fn text(list: &[Candidate], lang: crate::lang::Lang) -> String {
    let mut out = lang
        .t(
            "Renewal list: ranked by the zone's bursts and leaks per km per year, then by age against design life\n",
            "管段更新排序：先按所在分区每公里每年的爆管与漏损次数，再按已用年限占设计年限的比例\n",
        )
        .to_string();
    for c in list {
        out.push_str(&format!("{:>3}. {}\n", c.rank, c.reason(lang)));
    }
    out
}

fn csv(list: &[Candidate], lang: crate::lang::Lang) -> String {
    use crate::untrusted::cell;
    let head = if lang == crate::lang::Lang::Zh {
        "排名,管段,分区,材质,管径(mm),长度(m),敷设年份,已用年限,设计年限,分区每公里每年故障,分摊损失水量(m³),分摊损失金额(元),原因"
    } else {
        "rank,section,zone,material,diameter_mm,length_m,laid,age,design_life,zone_failures_per_km_year,lost_m3_share,lost_yuan_share,reason"
    };
    let bom = if lang == crate::lang::Lang::Zh { "\u{feff}" } else { "" };
    let mut out = format!("{bom}{head}\n");
    for c in list {
        let q = |s: &str| format!("\"{}\"", cell(s).replace('"', "\"\""));
        let known = c.per_km_year.is_some();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            c.rank,
            q(&c.pipe.id),
            q(&c.pipe.zone),
            q(c.pipe.material.label(lang)),
            c.pipe.diameter_mm,
            c.pipe.length_m,
            c.pipe.laid,
            c.age,
            c.life,
            c.per_km_year.map(|r| format!("{r:.3}")).unwrap_or_default(),
            if known { format!("{:.1}", c.lost_m3) } else { String::new() },
            if known { crate::ledger::export::yuan_text(c.lost_fen) } else { String::new() },
            q(&c.reason(lang)),
        ));
    }
    out
}

fn json(list: &[Candidate], lang: crate::lang::Lang) -> anyhow::Result<String> {
    let rows: Vec<serde_json::Value> = list
        .iter()
        .map(|c| {
            let known = c.per_km_year.is_some();
            serde_json::json!({
                "rank": c.rank,
                "section": c.pipe.id,
                "zone": c.pipe.zone,
                "material": c.pipe.material.id(),
                "diameter_mm": c.pipe.diameter_mm,
                "length_m": c.pipe.length_m,
                "laid": c.pipe.laid,
                "age": c.age,
                "design_life": c.life,
                "zone_bursts": known.then_some(c.bursts),
                "zone_leaks": known.then_some(c.leaks),
                "years_watched": c.years,
                "zone_failures_per_km_year": c.per_km_year,
                "lost_m3_share": known.then_some(c.lost_m3),
                "lost_fen_share": known.then_some(c.lost_fen),
                "reason": c.reason(lang),
            })
        })
        .collect();
    Ok(serde_json::to_string_pretty(&rows)? + "\n")
}

//! Charts as inline SVG: nothing to load, prints and screenshots as it is shown.

use maud::{html, Markup, PreEscaped};

use super::Lang;

/// Bars per month: this year's gap (dark) beside the baseline year's (light), in yuan;
/// negative gaps (a surplus) hang below the axis.
pub(super) fn gap_bars(lang: Lang, key: &str, months: &[(String, Option<i64>, Option<i64>)]) -> Markup {
    let (w, h, pad) = (760.0_f64, 220.0_f64, 36.0_f64);
    let values: Vec<f64> =
        months.iter().flat_map(|(_, a, b)| [a, b]).filter_map(|v| v.map(|x| x as f64 / 100.0)).collect();
    if values.is_empty() {
        return html! {};
    }
    let top = values.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let bottom = values.iter().copied().fold(0.0_f64, f64::min);
    let span = top - bottom;
    let y = |v: f64| pad / 2.0 + (top - v) / span * (h - pad);
    let slot = (w - pad) / months.len().max(1) as f64;
    let bar = (slot / 3.0).min(28.0);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" data-k="chart-{key}"><title>{}</title>"##,
        lang.t("Gap per month against the baseline year", "每月收支差额与基准年对比")
    );
    svg.push_str(&format!(r##"<line x1="{pad}" x2="{w}" y1="{0:.1}" y2="{0:.1}" stroke="#889"/>"##, y(0.0)));
    svg.push_str(&format!(
        r##"<text x="2" y="{:.1}">{:.0}</text><text x="2" y="{:.1}">{:.0}</text>"##,
        y(top) + 4.0,
        top,
        y(bottom).min(h - 4.0),
        bottom
    ));
    for (i, (label, now, base)) in months.iter().enumerate() {
        let x = pad + i as f64 * slot + slot / 2.0;
        for (dx, v, color) in [(-bar, base, "#9fc3e0"), (0.0, now, "#14324a")] {
            if let Some(v) = v {
                let v = *v as f64 / 100.0;
                let (y0, y1) = (y(v.max(0.0)), y(v.min(0.0)));
                svg.push_str(&format!(
                    r##"<rect x="{:.1}" y="{y0:.1}" width="{bar:.1}" height="{:.1}" fill="{color}"><title>{label}: {v:.2}</title></rect>"##,
                    x + dx,
                    (y1 - y0).max(0.5)
                ));
            }
        }
        svg.push_str(&format!(
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            x,
            h - 4.0,
            &label[5..]
        ));
    }
    svg.push_str(&format!(
        r##"<rect x="{0}" y="2" width="10" height="10" fill="#14324a"/><text x="{1}" y="11">{2}</text><rect x="{3}" y="2" width="10" height="10" fill="#9fc3e0"/><text x="{4}" y="11">{5}</text></svg>"##,
        w - 300.0,
        w - 286.0,
        lang.t("this year", "本年"),
        w - 160.0,
        w - 146.0,
        lang.t("baseline year", "基准年")
    ));
    html! { (PreEscaped(svg)) }
}

//! Charts as inline SVG: nothing to load, prints and screenshots as it is shown.

use std::fmt::Write as _;

use chrono::{DateTime, TimeZone, Utc};
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

/// A series over time as a line, broken where readings are missing (a gap of more than
/// three times the usual spacing), with its lowest and highest value and a tick at each
/// local midnight. `data-n` on the drawing is the number of points drawn.
pub(super) fn line(
    key: &str,
    title: &str,
    unit: &str,
    tz: chrono_tz::Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    points: &[(DateTime<Utc>, f64)],
) -> Markup {
    let (w, h, left, pad) = (760.0_f64, 170.0_f64, 64.0_f64, 18.0_f64);
    let span_ms = (to - from).num_milliseconds().max(1) as f64;
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if points.is_empty() {
        (0.0, 1.0)
    } else if hi - lo < 1e-9 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let x = |t: DateTime<Utc>| left + (t - from).num_milliseconds() as f64 / span_ms * (w - left - 8.0);
    let y = |v: f64| pad + (hi - v) / (hi - lo) * (h - 2.0 * pad);
    let mut gaps: Vec<i64> = points.windows(2).map(|p| (p[1].0 - p[0].0).num_milliseconds()).collect();
    gaps.sort_unstable();
    let usual = gaps.get(gaps.len() / 2).copied().unwrap_or(i64::MAX / 4);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" style="max-width:100%;height:auto" role="img" data-k="chart-{key}" data-n="{}"><title>{}</title>"##,
        points.len(),
        esc(title)
    );
    let mut day = from.with_timezone(&tz).date_naive().succ_opt();
    while let Some(d) = day {
        let Some(t) = d.and_hms_opt(0, 0, 0).and_then(|m| tz.from_local_datetime(&m).earliest()) else { break };
        let t = t.with_timezone(&Utc);
        if t >= to {
            break;
        }
        let _ = write!(
            svg,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{pad}" y2="{1:.1}" stroke="#e3e7eb"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{3}</text>"##,
            x(t),
            h - pad,
            h - 4.0,
            d.format("%m-%d")
        );
        day = d.succ_opt();
    }
    let _ = write!(
        svg,
        r##"<text x="{0}" y="{1:.1}" text-anchor="end">{2}</text><text x="{0}" y="{3:.1}" text-anchor="end">{4}</text>"##,
        left - 6.0,
        y(hi) + 4.0,
        esc(&format!("{} {unit}", fmt_value(hi))),
        y(lo) + 4.0,
        esc(&format!("{} {unit}", fmt_value(lo)))
    );
    let mut run: Vec<(f64, f64)> = Vec::new();
    let flush = |run: &mut Vec<(f64, f64)>, svg: &mut String| {
        match run.as_slice() {
            [] => {}
            [(cx, cy)] => {
                let _ = write!(svg, r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="1.5" fill="#14324a"/>"##);
            }
            _ => {
                let pts: Vec<String> = run.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
                let _ = write!(
                    svg,
                    r##"<polyline fill="none" stroke="#14324a" stroke-width="1.3" points="{}"/>"##,
                    pts.join(" ")
                );
            }
        }
        run.clear();
    };
    for (i, (t, v)) in points.iter().enumerate() {
        if i > 0 && (*t - points[i - 1].0).num_milliseconds() > usual.saturating_mul(3) {
            flush(&mut run, &mut svg);
        }
        run.push((x(*t), y(*v)));
    }
    flush(&mut run, &mut svg);
    svg.push_str("</svg>");
    html! { (PreEscaped(svg)) }
}

/// A value with as many decimals as its size needs.
fn fmt_value(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// Text for inside an SVG drawn as a string.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

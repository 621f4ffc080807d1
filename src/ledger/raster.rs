//! The schematic as a PNG, for the monthly workbook (a spreadsheet holds pictures, not
//! SVG). Rendered with resvg; its text in the machine's fonts. A drawing whose characters
//! no installed font has would come out with its labels missing, so that is an error
//! naming the character, not a picture.

use resvg::tiny_skia;
use resvg::usvg::{self, fontdb};

#[derive(Debug, thiserror::Error)]
pub enum RasterError {
    #[error("no font on this machine has the character `{0}` the drawing uses; install one (Debian: fonts-noto-cjk or fonts-wqy-zenhei)")]
    NoFont(char),
    #[error("the drawing could not be read: {0}")]
    Svg(String),
    #[error("the drawing is too large to render ({0} × {1} px)")]
    Size(u32, u32),
    #[error("the picture could not be encoded: {0}")]
    Png(String),
}

/// The characters a drawing's text uses (letters, digits, CJK), once each.
fn characters(svg: &str) -> Result<Vec<char>, RasterError> {
    let doc = usvg::roxmltree::Document::parse(svg).map_err(|e| RasterError::Svg(e.to_string()))?;
    let mut out: Vec<char> = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .flat_map(str::chars)
        .filter(|c| c.is_alphanumeric())
        .collect();
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The family of the face that has the most of `needed` (all, usually), for the drawing's
/// `sans-serif`; the first character no face has, when one is missing.
fn family_for(db: &fontdb::Database, needed: &[char]) -> Result<Option<String>, char> {
    use skrifa::MetadataProvider;
    let mut left: Vec<char> = needed.to_vec();
    let mut best: Option<(usize, String)> = None;
    for face in db.faces() {
        let has = db
            .with_face_data(face.id, |data, index| {
                let font = skrifa::FontRef::from_index(data, index).ok()?;
                let map = font.charmap();
                left.retain(|c| map.map(*c).is_none());
                Some(needed.iter().filter(|c| map.map(**c).is_some()).count())
            })
            .flatten()
            .unwrap_or(0);
        if has > best.as_ref().map_or(0, |b| b.0) {
            best = face.families.first().map(|(name, _)| (has, name.clone()));
        }
    }
    match left.first() {
        Some(c) => Err(*c),
        None => Ok(best.map(|b| b.1)),
    }
}

/// Renders `svg` at `scale` (2: sharp when shown at half size) to PNG bytes.
pub fn png(svg: &str, scale: f32) -> Result<Vec<u8>, RasterError> {
    let mut opt = usvg::Options::default();
    opt.fontdb_mut().load_system_fonts();
    // the drawing asks for system-ui, the CJK families of Windows and Noto, then
    // sans-serif: whatever the machine has, sans-serif is the face with the characters
    if let Some(family) = family_for(&opt.fontdb, &characters(svg)?).map_err(RasterError::NoFont)? {
        opt.fontdb_mut().set_sans_serif_family(family);
    }
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| RasterError::Svg(e.to_string()))?;
    let size = tree.size().to_int_size().scale_by(scale).ok_or(RasterError::Size(0, 0))?;
    let (w, h) = (size.width(), size.height());
    if u64::from(w) * u64::from(h) > 40_000_000 {
        return Err(RasterError::Size(w, h));
    }
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or(RasterError::Size(w, h))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| RasterError::Png(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_characters_of_the_text_are_what_a_font_must_have() {
        let svg =
            r#"<svg xmlns="http://www.w3.org/2000/svg"><text>north · 产销差率 7.8 %</text><title>管网</title></svg>"#;
        let c = characters(svg).unwrap();
        for want in ['n', '产', '管', '7'] {
            assert!(c.contains(&want), "{c:?}");
        }
        assert!(!c.contains(&' ') && !c.contains(&'%'));
        assert!(matches!(characters("<svg"), Err(RasterError::Svg(_))));
        // an empty font database has nothing
        assert_eq!(family_for(&fontdb::Database::new(), &['水']), Err('水'));
        assert_eq!(family_for(&fontdb::Database::new(), &[]), Ok(None));
    }
}

//! The one language type: Chinese (the default) or English, parsed in one place, with
//! the one helper that picks a text.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Zh,
    En,
}

/// A language code that is neither `zh` nor `en`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language `{0}`; use zh or en")]
pub struct UnknownLang(pub String);

impl Lang {
    /// `zh` or `en` (as written in the configuration, a query or a flag).
    pub fn parse(code: &str) -> Result<Lang, UnknownLang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "zh" => Ok(Lang::Zh),
            "en" => Ok(Lang::En),
            _ => Err(UnknownLang(code.to_string())),
        }
    }

    /// The text in this language.
    pub fn t<'s>(self, en: &'s str, zh: &'s str) -> &'s str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Lang::parse("zh"), Ok(Lang::Zh));
        assert_eq!(Lang::parse("EN"), Ok(Lang::En));
        assert_eq!(Lang::parse("fr"), Err(UnknownLang("fr".into())));
        assert_eq!(Lang::En.t("water", "水"), "water");
    }
}

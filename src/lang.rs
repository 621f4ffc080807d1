//! The one language type: Chinese (the default) or English, parsed in one place, with
//! the one helper that picks a text, and [`Text`], a sentence kept in both.

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

/// A sentence in both languages, chosen when read: a ledger's or a target's note is
/// computed once and read on the page, in files and in the API in either language. The
/// JSON carries the English one, as before, so programs reading it see no change. It has
/// no `Display`: whoever shows it says in which language.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text {
    pub en: String,
    pub zh: String,
}

impl Text {
    pub fn new(en: impl Into<String>, zh: impl Into<String>) -> Text {
        Text { en: en.into(), zh: zh.into() }
    }

    /// The sentence in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        lang.t(&self.en, &self.zh)
    }

    /// Sentences joined with each language's separator.
    pub fn joined(items: &[Text]) -> Text {
        let pick = |f: fn(&Text) -> &str| items.iter().map(f).collect::<Vec<_>>();
        Text::new(pick(|t| &t.en).join("; "), pick(|t| &t.zh).join("；"))
    }

    /// The sentence after a name (an identifier, the same in both languages).
    pub fn after(&self, name: &str) -> Text {
        Text::new(format!("{name}: {}", self.en), format!("{name}：{}", self.zh))
    }

    /// Whether the English sentence contains `pat` (the notes' tests read English).
    pub fn contains(&self, pat: &str) -> bool {
        self.en.contains(pat)
    }

    pub fn starts_with(&self, pat: &str) -> bool {
        self.en.starts_with(pat)
    }

    /// Several sentences, each in `lang`, joined with its separator.
    pub fn join(items: &[Text], lang: Lang) -> String {
        items.iter().map(|t| t.get(lang)).collect::<Vec<_>>().join(lang.t("; ", "；"))
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.en)
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

//! Reads the till's settings file (`till.toml` in the data directory) into the core's
//! [`TillConfig`] and the card reader's [`CardSettings`] (where the card master key lives, which
//! campus the till belongs to). Every field is optional; a missing file means factory defaults.
//! A malformed file is refused with a message naming the field, and the till does not start on
//! it.

use serde::Deserialize;
use shared::ids::DisplayName;
use shared::{Fen, MinuteOfDay};
use std::path::{Path, PathBuf};

use crate::core::config::{Lang, MealLabel, MealPeriod, TillConfig};
use crate::wallet::layout::CampusId;
use crate::wallet::{load_master_key, MasterKeyFileError, WalletConfig, DEMO_CAMPUS};

/// The name of the settings file inside the data directory.
pub const SETTINGS_FILE: &str = "till.toml";

/// A settings file with every default written out, for staff to edit.
pub const SETTINGS_TEMPLATE: &str = r#"# Campus canteen till settings. Delete a line to get its default.
language = "zh"            # "zh" (中文) or "en"
max_sale = "200.00"        # most one sale may charge, in yuan
utc_offset_minutes = 480   # local time = UTC + this (China: 480)
duplicate_window_secs = 600 # same payer, same amount within this many seconds: ask to confirm
staff_pin = "123456"       # PIN for F2+1+7 (staff menu: machine number, issue, top-up); change it
merchant_name = ""         # shown on the customer display when idle; at most 16 characters,
                           # no control or invisible characters (meal labels likewise)

[[meal]]
label = "breakfast"
start = "06:00"
end = "09:30"

[[meal]]
label = "lunch"
start = "10:30"
end = "13:30"

[[meal]]
label = "dinner"
start = "16:30"
end = "19:30"

# The campus card wallet (docs/card-layout.md). Without master_key_file the till uses the
# simulator's DEMO key, which is public: a real till must name its key file (32 bytes as 64 hex
# digits, owned by root, mode 0600).
# [card]
# master_key_file = "/etc/campus-pos/card-master.key"
# campus_id = 1
"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    language: Option<String>,
    max_sale: Option<String>,
    utc_offset_minutes: Option<i32>,
    duplicate_window_secs: Option<u64>,
    staff_pin: Option<String>,
    merchant_name: Option<String>,
    meal: Option<Vec<MealFile>>,
    card: Option<CardFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardFile {
    master_key_file: Option<PathBuf>,
    campus_id: Option<u16>,
}

/// How the till reads campus cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSettings {
    /// The card master key file; `None` means the public demo key (simulator only).
    pub master_key_file: Option<PathBuf>,
    pub campus: CampusId,
}

impl Default for CardSettings {
    fn default() -> Self {
        CardSettings {
            master_key_file: None,
            campus: DEMO_CAMPUS,
        }
    }
}

impl CardSettings {
    /// The wallet configuration: the key file's master key, or the demo key without one.
    pub fn wallet_config(&self) -> Result<WalletConfig, MasterKeyFileError> {
        let mut config = WalletConfig::demo();
        config.campus = self.campus;
        if let Some(path) = &self.master_key_file {
            config.master = load_master_key(path)?;
        }
        Ok(config)
    }
}

/// Parses the `[card]` table of settings text.
pub fn parse_card_settings(text: &str) -> Result<CardSettings, String> {
    let file: SettingsFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut settings = CardSettings::default();
    if let Some(card) = file.card {
        settings.master_key_file = card.master_key_file;
        if let Some(campus) = card.campus_id {
            settings.campus = CampusId(campus);
        }
    }
    Ok(settings)
}

/// Loads the `[card]` table of `<dir>/till.toml`; defaults when the file does not exist.
pub fn load_card_settings(dir: &Path) -> Result<CardSettings, SettingsError> {
    let path = dir.join(SETTINGS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_card_settings(&text).map_err(|detail| SettingsError::Invalid {
            path: path.display().to_string(),
            detail,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CardSettings::default()),
        Err(source) => Err(SettingsError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MealFile {
    label: String,
    start: String,
    end: String,
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Invalid { path: String, detail: String },
}

/// Parses settings text on top of the defaults.
pub fn parse_settings(text: &str) -> Result<TillConfig, String> {
    let file: SettingsFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut config = TillConfig::default();
    if let Some(language) = file.language {
        config.lang = match language.as_str() {
            "zh" => Lang::Zh,
            "en" => Lang::En,
            other => return Err(format!("language: '{other}' is not \"zh\" or \"en\"")),
        };
    }
    if let Some(max_sale) = file.max_sale {
        config.max_sale = Fen::parse_yuan(&max_sale).map_err(|e| format!("max_sale: {e}"))?;
    }
    if let Some(offset) = file.utc_offset_minutes {
        config.utc_offset_minutes = offset;
    }
    if let Some(secs) = file.duplicate_window_secs {
        config.duplicate_window_ms = secs.saturating_mul(1000);
    }
    if let Some(pin) = file.staff_pin {
        config.staff_pin = pin;
    }
    if let Some(name) = file.merchant_name {
        // The same rule as the campus's names: no control or direction-steering characters, at
        // most MAX_DISPLAY_NAME_CHARS characters.
        config.merchant_name = DisplayName::new(name)
            .map_err(|e| format!("merchant_name: {e}"))?
            .to_string();
    }
    if let Some(meals) = file.meal {
        config.meal_periods = meals
            .into_iter()
            .enumerate()
            .map(|(i, meal)| {
                let time = |text: &str| {
                    MinuteOfDay::parse(text)
                        .ok_or_else(|| format!("meal {}: '{text}' is not HH:MM", i + 1))
                };
                let label = match meal.label.as_str() {
                    "breakfast" => MealLabel::Breakfast,
                    "lunch" => MealLabel::Lunch,
                    "dinner" => MealLabel::Dinner,
                    other => MealLabel::Named(
                        DisplayName::new(other)
                            .map_err(|e| format!("meal {} label: {e}", i + 1))?
                            .to_string(),
                    ),
                };
                Ok(MealPeriod {
                    label,
                    start: time(&meal.start)?,
                    end: time(&meal.end)?,
                })
            })
            .collect::<Result<_, String>>()?;
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// Loads `<dir>/till.toml`; defaults when the file does not exist.
pub fn load_settings(dir: &Path) -> Result<TillConfig, SettingsError> {
    let path = dir.join(SETTINGS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_settings(&text).map_err(|detail| SettingsError::Invalid {
            path: path.display().to_string(),
            detail,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TillConfig::default()),
        Err(source) => Err(SettingsError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_the_defaults() {
        assert_eq!(parse_settings(SETTINGS_TEMPLATE), Ok(TillConfig::default()));
        assert_eq!(parse_settings(""), Ok(TillConfig::default()));
    }

    #[test]
    fn fields_override_defaults() {
        let config = parse_settings("language = \"en\"\nmax_sale = \"15.5\"\n[[meal]]\nlabel = \"夜宵\"\nstart = \"21:00\"\nend = \"23:00\"\n").unwrap();
        assert_eq!(config.lang, Lang::En);
        assert_eq!(config.max_sale, Fen::new(1550));
        assert_eq!(config.meal_periods.len(), 1);
        assert_eq!(
            config.meal_periods[0].label,
            MealLabel::Named("夜宵".into())
        );
    }

    #[test]
    fn card_settings_name_the_key_file_and_campus() {
        assert_eq!(
            parse_card_settings(SETTINGS_TEMPLATE),
            Ok(CardSettings::default())
        );
        let settings = parse_card_settings(
            "[card]\nmaster_key_file = \"/etc/campus-pos/card-master.key\"\ncampus_id = 7\n",
        )
        .unwrap();
        assert_eq!(settings.campus, CampusId(7));
        assert_eq!(
            settings.master_key_file.as_deref(),
            Some(Path::new("/etc/campus-pos/card-master.key"))
        );
        // The key file must exist: a till never falls back to the demo key silently.
        assert!(settings.wallet_config().is_err());
        assert!(parse_card_settings("[card]\ncampus = 1").is_err());
    }

    #[test]
    fn bad_settings_name_the_problem() {
        assert!(parse_settings("language = \"fr\"")
            .unwrap_err()
            .contains("language"));
        assert!(parse_settings("max_sale = \"1.234\"")
            .unwrap_err()
            .contains("max_sale"));
        assert!(parse_settings("max_sal = \"1\"")
            .unwrap_err()
            .contains("max_sal"));
        assert!(
            parse_settings("[[meal]]\nlabel=\"x\"\nstart=\"25:00\"\nend=\"26:00\"")
                .unwrap_err()
                .contains("HH:MM")
        );
        assert!(parse_settings("staff_pin = \"12\"")
            .unwrap_err()
            .contains("PIN"));
    }

    #[test]
    fn names_in_till_toml_follow_the_display_name_rule() {
        for bad in [
            "merchant_name = \"食堂\\u001b[2J\"",
            "merchant_name = \"A\\rforged\"",
            "merchant_name = \"abc\\u202ecba\"",
            "merchant_name = \"一二三四五六七八九十一二三四五六七\"",
        ] {
            let error = parse_settings(bad).unwrap_err();
            assert!(error.starts_with("merchant_name: name "), "{bad}: {error}");
        }
        let error =
            parse_settings("[[meal]]\nlabel=\"夜宵\\u0007\"\nstart=\"21:00\"\nend=\"23:00\"")
                .unwrap_err();
        assert!(error.contains("meal 1 label: name holds"), "{error}");
        let config = parse_settings("merchant_name = \"第一食堂 3号窗口\"").unwrap();
        assert_eq!(config.merchant_name, "第一食堂 3号窗口");
    }
}

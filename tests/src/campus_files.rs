//! The campus simulator's input files, for demos: a campus configuration in TOML
//! (`docs/campus-config.example.toml`) mapped onto [`CampusConfig`] and checked with the till's
//! own rules (`validate_campus_config`), and a blacklist file of card UIDs, one per line. Bad
//! files are refused with a message naming the file, the field and what is wrong, so a demo
//! never publishes something every till would reject.

use pos_firmware::core::downlink::validate_campus_config;
use serde::Deserialize;
use shared::campus::{Blacklist, CampusConfig, MealPeriodSpec, OfflineLimits};
use shared::ids::DisplayName;
use shared::{CardUid, Fen, MinuteOfDay, UnixMillis};
use std::path::{Path, PathBuf};

/// Milliseconds in an hour (the file gives the offline ages in hours).
const MS_PER_HOUR: u64 = 3_600_000;

/// A configuration or blacklist file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CampusFileError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    version: u64,
    merchant_name: String,
    max_sale: String,
    #[serde(default)]
    fixed_price_presets: Vec<String>,
    #[serde(default)]
    meal: Vec<MealFile>,
    offline: OfflineFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MealFile {
    name: String,
    start: String,
    end: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OfflineFile {
    max_sale: String,
    max_per_card_per_day: String,
    max_unsent_total: String,
    max_unsent_age_hours: u64,
    max_blacklist_age_hours: u64,
}

fn yuan(field: &str, text: &str) -> Result<Fen, String> {
    Fen::parse_yuan(text).map_err(|e| format!("{field}: \"{text}\" is not an amount in yuan ({e})"))
}

fn minute(field: &str, text: &str) -> Result<MinuteOfDay, String> {
    MinuteOfDay::parse(text).ok_or_else(|| format!("{field}: \"{text}\" is not a time HH:MM"))
}

fn hours_ms(field: &str, hours: u64) -> Result<u64, String> {
    hours
        .checked_mul(MS_PER_HOUR)
        .ok_or_else(|| format!("{field}: {hours} hours is too long"))
}

/// Parses and validates a campus configuration (the text of a TOML file).
pub fn parse_campus_config(text: &str) -> Result<CampusConfig, String> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let meal_periods = file
        .meal
        .iter()
        .enumerate()
        .map(|(i, meal)| {
            Ok(MealPeriodSpec {
                name: DisplayName::new(meal.name.clone())
                    .map_err(|e| format!("meal {} name: {e}", i + 1))?,
                start: minute(&format!("meal {} start", i + 1), &meal.start)?,
                end: minute(&format!("meal {} end", i + 1), &meal.end)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let fixed_price_presets = file
        .fixed_price_presets
        .iter()
        .enumerate()
        .map(|(i, preset)| yuan(&format!("fixed_price_presets[{i}]"), preset))
        .collect::<Result<Vec<_>, String>>()?;
    let offline = &file.offline;
    let config = CampusConfig {
        version: file.version,
        merchant_name: DisplayName::new(file.merchant_name.clone())
            .map_err(|e| format!("merchant_name: {e}"))?,
        meal_periods,
        max_sale: yuan("max_sale", &file.max_sale)?,
        fixed_price_presets,
        offline: OfflineLimits {
            max_sale: yuan("offline.max_sale", &offline.max_sale)?,
            max_per_card_per_day: yuan(
                "offline.max_per_card_per_day",
                &offline.max_per_card_per_day,
            )?,
            max_unsent_total: yuan("offline.max_unsent_total", &offline.max_unsent_total)?,
            max_unsent_age_ms: hours_ms(
                "offline.max_unsent_age_hours",
                offline.max_unsent_age_hours,
            )?,
            max_blacklist_age_ms: hours_ms(
                "offline.max_blacklist_age_hours",
                offline.max_blacklist_age_hours,
            )?,
        },
        payments: None,
    };
    if config.version == 0 {
        return Err("version: must be at least 1 (a till applies only newer versions)".into());
    }
    validate_campus_config(&config).map_err(|e| format!("a till would refuse it: {e}"))?;
    Ok(config)
}

/// Reads, parses and validates a campus configuration file.
pub fn load_campus_config(path: &Path) -> Result<CampusConfig, CampusFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| CampusFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_campus_config(&text).map_err(|message| CampusFileError::Invalid {
        path: path.to_path_buf(),
        message,
    })
}

/// Parses a blacklist file: one card UID in hex per line (4, 7 or 10 bytes); blank lines and
/// `#` comments are ignored.
pub fn parse_blacklist(
    text: &str,
    version: u64,
    issued_at: UnixMillis,
) -> Result<Blacklist, String> {
    let mut uids = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let uid = line.split('#').next().unwrap_or_default().trim();
        if uid.is_empty() {
            continue;
        }
        let uid = CardUid::parse_hex(uid)
            .map_err(|e| format!("line {}: \"{uid}\" is not a card UID ({e})", index + 1))?;
        uids.push(uid);
    }
    Blacklist::new(version, issued_at, uids).map_err(|e| e.to_string())
}

/// Reads and parses a blacklist file.
pub fn load_blacklist(
    path: &Path,
    version: u64,
    issued_at: UnixMillis,
) -> Result<Blacklist, CampusFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| CampusFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_blacklist(&text, version, issued_at).map_err(|message| CampusFileError::Invalid {
        path: path.to_path_buf(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/campus-config.example.toml");
        std::fs::read_to_string(path).expect("docs/campus-config.example.toml exists")
    }

    #[test]
    fn the_example_configuration_parses_and_a_till_would_accept_it() {
        let config = parse_campus_config(&example()).expect("the example is valid");
        assert_eq!(config.version, 1);
        assert_eq!(config.merchant_name, "第一食堂");
        assert_eq!(config.max_sale, Fen::from_yuan(200));
        assert_eq!(config.meal_periods.len(), 3);
        assert_eq!(
            config.meal_periods[1].start,
            MinuteOfDay::from_hm(10, 30).unwrap()
        );
        assert_eq!(config.fixed_price_presets.len(), 3);
        assert_eq!(config.offline.max_sale, Fen::from_yuan(20));
        assert_eq!(config.offline.max_unsent_age_ms, 24 * MS_PER_HOUR);
        assert_eq!(validate_campus_config(&config), Ok(()));
    }

    #[test]
    fn bad_configurations_are_refused_naming_what_is_wrong() {
        let example = example();
        let cases = [
            (
                "max_sale = \"200.00\"",
                "max_sale = \"2x\"",
                "max_sale: \"2x\"",
            ),
            ("start = \"10:30\"", "start = \"25:00\"", "meal 2 start"),
            ("start = \"10:30\"", "start = \"08:00\"", "overlap"),
            ("version = 1", "version = 0", "version"),
            (
                "version = 1",
                "version = 1\ncolour = \"red\"",
                "unknown field",
            ),
            (
                "max_sale = \"20.00\"",
                "max_sale = \"300.00\"",
                "offline max_sale",
            ),
            ("\"15.00\"]", "\"250.00\"]", "fixed-price preset"),
        ];
        for (from, to, wanted) in cases {
            assert!(example.contains(from), "the example has {from}");
            let error = parse_campus_config(&example.replacen(from, to, 1))
                .expect_err(&format!("{to} is refused"));
            assert!(error.contains(wanted), "{to}: {error}");
        }
        let missing = example.replace("merchant_name", "# merchant_name");
        assert!(parse_campus_config(&missing)
            .unwrap_err()
            .contains("merchant_name"));
    }

    #[test]
    fn a_blacklist_file_has_one_uid_a_line() {
        let list = parse_blacklist(
            "# lost cards\nA1B2C3D4\n\n04a1b2c3d4e5f6  # 7-byte UID\na1b2c3d4\n",
            5,
            UnixMillis(9),
        )
        .unwrap();
        assert_eq!((list.version(), list.len()), (5, 2));
        let error = parse_blacklist("A1B2C3D4\nnot-a-uid\n", 1, UnixMillis(0)).unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
    }
}

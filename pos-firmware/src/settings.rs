//! Reads the till's settings file (`till.toml` in the data directory) into the core's
//! [`TillConfig`] and the card reader's [`CardSettings`] (where the card master key lives, which
//! campus the till belongs to). Every field is optional; a missing file means factory defaults.
//! A malformed file is refused with a message naming the field, and the till does not start on
//! it.
//!
//! On a till the same file lives at [`DEFAULT_CONFIG_PATH`] (`/etc/campus-pos/till.toml`) and
//! also says where the data directory is (`data_dir`) and where the hardware is wired
//! (`[device]`, [`DeviceSettings`]); the simulator keeps reading `DATA_DIR/till.toml`.

use serde::Deserialize;
use shared::ids::DisplayName;
use shared::qrpay::{TerminalQrKey, QR_KEY_BYTES};
use shared::{Fen, MinuteOfDay};
use std::path::{Path, PathBuf};

use crate::core::config::{Lang, MealLabel, MealPeriod, TillConfig};
use crate::journal::{MAX_RETENTION_DAYS, MIN_RETENTION_DAYS};
use crate::wallet::layout::CampusId;
use crate::wallet::{load_master_key, MasterKeyFileError, WalletConfig, DEMO_CAMPUS};

/// The name of the settings file inside the data directory.
pub const SETTINGS_FILE: &str = "till.toml";

/// The till's settings file on a till (`pos-firmware device` and `check-config` read it unless
/// `--config` names another; packaging/etc/till.toml is the installed example).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/campus-pos/till.toml";
/// The till's data directory on a till (journal), unless `data_dir` or `--data-dir` says
/// otherwise; the package creates it, owned by the till's user.
pub const DEFAULT_DEVICE_DATA_DIR: &str = "/var/lib/campus-pos";

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

# Code payments (virtual campus card, WeChat Pay, Alipay, UnionPay; docs/code-payments.md).
[payments]
query_interval_secs = 3    # while the payer confirms on the phone, ask the campus this often (1-30)
pay_window_secs = 60       # the payer has this long to confirm, then the order is reversed (20-300)
# The till's offline QR key (docs/offline-qr.md): 32 bytes as 64 hex digits, written by the card
# centre's provisioning, owned by root, mode 0600. Without it an offline till takes cards only.
# qr_key_file = "/etc/campus-pos/qr.key"

# The journal (docs/journal.md): records the campus server acknowledged and older than this
# are pruned (never an unsent one, never one an unresolved sale needs). 7-3650 days.
[journal]
retention_days = 90

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
    payments: Option<PaymentsFile>,
    journal: Option<JournalFile>,
    card: Option<CardFile>,
    /// Only in the till's `/etc` file: the data directory (the simulator's is `--data-dir`).
    data_dir: Option<PathBuf>,
    device: Option<DeviceFile>,
}

/// The `[payments]` table: how the till follows a code-payment order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentsFile {
    query_interval_secs: Option<u64>,
    pay_window_secs: Option<u64>,
    /// The file holding this till's offline QR key (64 hex digits).
    qr_key_file: Option<PathBuf>,
}

/// The `[journal]` table: how long acknowledged records stay (docs/journal.md, Retention).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalFile {
    retention_days: Option<u32>,
}

/// The `[device]` table: where the till's hardware is wired (every `device` flag has a key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceFile {
    spi: Option<PathBuf>,
    reset_chip: Option<PathBuf>,
    reset_line: Option<u32>,
    keypad: Option<PathBuf>,
    scanner: Option<PathBuf>,
    link: Option<PathBuf>,
    no_link: Option<bool>,
    display: Option<DisplayFile>,
    buzzer: Option<BuzzerFile>,
}

/// The `[device.display]` table: the panels (the `--fb`, `--customer-fb` and `--panel` flags).
/// The bench's `--fb-png` and `--qr-test-pattern` stay flag-only
/// (`device::outputs::BENCH_ONLY_OUTPUT_FLAGS`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DisplayFile {
    fb: Option<PathBuf>,
    customer_fb: Option<PathBuf>,
    panel: Option<String>,
}

/// The `[device.buzzer]` table: the buzzer's and the status light's GPIO lines (the
/// `--gpio-chip`, `--buzzer-line` and `--light-line` flags).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuzzerFile {
    gpio_chip: Option<PathBuf>,
    buzzer_line: Option<u32>,
    light_line: Option<u32>,
}

/// The buzzer's wiring from `[device.buzzer]`: the chip and the buzzer's line, both or neither,
/// and the light's line only with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuzzerKeys {
    pub gpio_chip: PathBuf,
    pub buzzer_line: u32,
    pub light_line: Option<u32>,
}

/// Where the till's data and hardware are, from the `/etc` file (`data_dir` and `[device]`);
/// `None` where the file says nothing (the flag's or the built-in default then applies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceSettings {
    pub data_dir: Option<PathBuf>,
    pub spi: Option<PathBuf>,
    /// The reader's reset line: chip and line number, both or neither.
    pub reset: Option<(PathBuf, u32)>,
    pub keypad: Option<PathBuf>,
    pub scanner: Option<PathBuf>,
    pub link: Option<PathBuf>,
    pub no_link: bool,
    /// `[device.display]`: the merchant's framebuffer, and the customer's own (only with `fb`).
    pub fb: Option<PathBuf>,
    pub customer_fb: Option<PathBuf>,
    /// `[device.display] panel`, checked as `--panel` is. A build without the `device` feature
    /// has no panels: it reads the key and ignores it.
    #[cfg(feature = "device")]
    pub panel: Option<crate::device::panel::PanelSize>,
    /// `[device.buzzer]`.
    pub buzzer: Option<BuzzerKeys>,
}

/// Parses the `data_dir` key and the `[device]` table of settings text.
pub fn parse_device_settings(text: &str) -> Result<DeviceSettings, String> {
    let file: SettingsFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut settings = DeviceSettings {
        data_dir: file.data_dir,
        ..DeviceSettings::default()
    };
    if let Some(dir) = &settings.data_dir {
        if !dir.is_absolute() {
            return Err(format!(
                "data_dir: '{}' is not an absolute path",
                dir.display()
            ));
        }
    }
    if let Some(device) = file.device {
        settings.reset = match (device.reset_chip, device.reset_line) {
            (Some(chip), Some(line)) => Some((chip, line)),
            (None, None) => None,
            (Some(_), None) => {
                return Err("device.reset_chip: set without device.reset_line".into())
            }
            (None, Some(_)) => {
                return Err("device.reset_line: set without device.reset_chip".into())
            }
        };
        settings.spi = device.spi;
        settings.keypad = device.keypad;
        settings.scanner = device.scanner;
        settings.link = device.link;
        settings.no_link = device.no_link.unwrap_or(false);
        if settings.no_link && settings.link.is_some() {
            return Err("device.no_link: true together with device.link".into());
        }
        if let Some(display) = device.display {
            parse_display(display, &mut settings)?;
        }
        if let Some(buzzer) = device.buzzer {
            settings.buzzer = parse_buzzer(buzzer)?;
        }
    }
    Ok(settings)
}

/// Checks `[device.display]` into `settings`.
fn parse_display(display: DisplayFile, settings: &mut DeviceSettings) -> Result<(), String> {
    if display.customer_fb.is_some() && display.fb.is_none() {
        return Err("device.display.customer_fb: set without device.display.fb".into());
    }
    settings.fb = display.fb;
    settings.customer_fb = display.customer_fb;
    // No panels without the `device` feature: the key is read and not checked.
    #[cfg(not(feature = "device"))]
    let _ = display.panel;
    #[cfg(feature = "device")]
    if let Some(panel) = display.panel {
        settings.panel = Some(
            panel
                .parse()
                .map_err(|e| format!("device.display.panel: {e}"))?,
        );
    }
    Ok(())
}

/// Checks `[device.buzzer]`: the chip and the buzzer's line both or neither, the light's line
/// only with them and not on the buzzer's.
fn parse_buzzer(buzzer: BuzzerFile) -> Result<Option<BuzzerKeys>, String> {
    let (gpio_chip, buzzer_line) = match (buzzer.gpio_chip, buzzer.buzzer_line) {
        (Some(chip), Some(line)) => (chip, line),
        (None, None) if buzzer.light_line.is_some() => {
            return Err("device.buzzer.light_line: set without device.buzzer.buzzer_line".into())
        }
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err("device.buzzer.gpio_chip: set without device.buzzer.buzzer_line".into())
        }
        (None, Some(_)) => {
            return Err("device.buzzer.buzzer_line: set without device.buzzer.gpio_chip".into())
        }
    };
    if buzzer.light_line == Some(buzzer_line) {
        return Err(format!(
            "device.buzzer.light_line: {buzzer_line} is the buzzer's line too"
        ));
    }
    Ok(Some(BuzzerKeys {
        gpio_chip,
        buzzer_line,
        light_line: buzzer.light_line,
    }))
}

/// The whole settings file at `path` (the `/etc` file of a till): the till's settings, the
/// card's and the device's. The file must exist: a till never starts on defaults by accident.
pub fn load_config_file(
    path: &Path,
) -> Result<(TillConfig, CardSettings, DeviceSettings), SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let invalid = |detail| SettingsError::Invalid {
        path: path.display().to_string(),
        detail,
    };
    Ok((
        parse_settings(&text).map_err(invalid)?,
        parse_card_settings(&text).map_err(invalid)?,
        parse_device_settings(&text).map_err(invalid)?,
    ))
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
    if let Some(payments) = file.payments {
        if let Some(secs) = payments.query_interval_secs {
            config.order_query_interval_ms = secs.saturating_mul(1000);
        }
        if let Some(secs) = payments.pay_window_secs {
            config.order_pay_window_ms = secs.saturating_mul(1000);
        }
        if let Some(path) = payments.qr_key_file {
            config.qr_key = Some(load_qr_key(&path)?);
        }
    }
    if let Some(days) = file.journal.and_then(|journal| journal.retention_days) {
        if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&days) {
            return Err(format!(
                "journal.retention_days: {days} is outside {MIN_RETENTION_DAYS}-{MAX_RETENTION_DAYS} \
                 days"
            ));
        }
        config.journal_retention_days = days;
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// Reads a till's offline QR key file: 32 bytes as 64 hex digits (surrounding whitespace
/// allowed). The error names the file, never its content (the key is a secret).
pub fn load_qr_key(path: &Path) -> Result<TerminalQrKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("qr_key_file {}: {e}", path.display()))?;
    let bytes = hex::decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; QR_KEY_BYTES]>::try_from(bytes).ok())
        .ok_or_else(|| {
            format!(
                "qr_key_file {}: not {QR_KEY_BYTES} bytes as {} hex digits",
                path.display(),
                QR_KEY_BYTES * 2
            )
        })?;
    Ok(TerminalQrKey::from_bytes(bytes))
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
mod tests;

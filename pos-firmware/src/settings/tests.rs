//! The tests of `settings.rs`: each section of `till.toml`, its ranges and its errors.

use super::*;

#[test]
fn the_template_is_the_defaults() {
    assert_eq!(parse_settings(SETTINGS_TEMPLATE), Ok(TillConfig::default()));
    assert_eq!(parse_settings(""), Ok(TillConfig::default()));
}

#[test]
fn the_payments_section_sets_the_order_timings_within_their_ranges() {
    let config =
        parse_settings("[payments]\nquery_interval_secs = 5\npay_window_secs = 90\n").unwrap();
    assert_eq!(config.order_query_interval_ms, 5_000);
    assert_eq!(config.order_pay_window_ms, 90_000);
    let too_fast = parse_settings("[payments]\nquery_interval_secs = 0\n").unwrap_err();
    assert!(too_fast.contains("query interval"), "{too_fast}");
    let too_long = parse_settings("[payments]\npay_window_secs = 3600\n").unwrap_err();
    assert!(too_long.contains("pay window"), "{too_long}");
    let unknown = parse_settings("[payments]\nwindow = 3\n").unwrap_err();
    assert!(unknown.contains("window"), "{unknown}");
}

#[test]
fn the_journal_section_sets_the_retention_within_its_range() {
    assert_eq!(
        parse_settings("").unwrap().journal_retention_days,
        crate::journal::DEFAULT_RETENTION_DAYS
    );
    let config = parse_settings("[journal]\nretention_days = 30\n").unwrap();
    assert_eq!(config.journal_retention_days, 30);
    let too_short = parse_settings("[journal]\nretention_days = 1\n").unwrap_err();
    assert!(too_short.contains("retention_days"), "{too_short}");
    let unknown = parse_settings("[journal]\nkeep = 3\n").unwrap_err();
    assert!(unknown.contains("keep"), "{unknown}");
}

#[test]
fn the_qr_key_file_gives_the_till_its_offline_qr_key_and_a_bad_one_is_named() {
    let dir = std::env::temp_dir().join(format!("qr-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("qr.key");
    std::fs::write(&good, format!("{}\n", "ab".repeat(32))).unwrap();
    let config =
        parse_settings(&format!("[payments]\nqr_key_file = {:?}\n", good.display())).unwrap();
    assert_eq!(config.qr_key, Some(TerminalQrKey::from_bytes([0xab; 32])));
    assert_eq!(
        parse_settings("").unwrap().qr_key,
        None,
        "no file: cards only"
    );
    let short = dir.join("short.key");
    std::fs::write(&short, "abcd").unwrap();
    let error = parse_settings(&format!(
        "[payments]\nqr_key_file = {:?}\n",
        short.display()
    ))
    .unwrap_err();
    assert!(error.contains("64 hex digits"), "{error}");
    assert!(
        !error.contains("abcd"),
        "the key's text is never echoed: {error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
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
fn the_device_table_names_every_device_flag() {
    let text = "data_dir = \"/srv/till\"\n[device]\nspi = \"/dev/spidev1.0\"\n\
                reset_chip = \"/dev/gpiochip1\"\nreset_line = 25\nkeypad = \"/dev/input/event3\"\n\
                scanner = \"/dev/ttyACM0\"\nlink = \"/run/x/link.sock\"\n";
    let device = parse_device_settings(text).unwrap();
    assert_eq!(
        device,
        DeviceSettings {
            data_dir: Some("/srv/till".into()),
            spi: Some("/dev/spidev1.0".into()),
            reset: Some(("/dev/gpiochip1".into(), 25)),
            keypad: Some("/dev/input/event3".into()),
            scanner: Some("/dev/ttyACM0".into()),
            link: Some("/run/x/link.sock".into()),
            no_link: false,
            ..DeviceSettings::default()
        }
    );
    // The till's own settings ignore the device's keys, and the other way round.
    assert_eq!(parse_settings(text), Ok(TillConfig::default()));
    assert_eq!(
        parse_device_settings(SETTINGS_TEMPLATE),
        Ok(DeviceSettings::default())
    );
}

#[test]
fn the_installed_example_is_a_whole_till_config() {
    let example = include_str!("../../../packaging/etc/till.toml");
    assert_eq!(parse_settings(example), Ok(TillConfig::default()));
    let card = parse_card_settings(example).unwrap();
    assert_eq!(
        card.master_key_file.as_deref(),
        Some(Path::new("/etc/campus-pos/card-master.key"))
    );
    let device = parse_device_settings(example).unwrap();
    assert_eq!(
        device.data_dir.as_deref(),
        Some(Path::new(DEFAULT_DEVICE_DATA_DIR))
    );
    assert_eq!(
        device.link.as_deref(),
        Some(Path::new(crate::link::DEVICE_LINK_SOCKET_PATH))
    );
    // Every commented key is a real one too.
    let uncommented: String = example
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            // A commented-out key (`# reset_line = 25`), not a comment's prose.
            Some(key)
                if key.split_once(" = ").is_some_and(|(k, _)| {
                    k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                }) =>
            {
                key
            }
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let device = parse_device_settings(&uncommented.replace("no_link = true", "")).unwrap();
    assert!(device.reset.is_some() && device.scanner.is_some());
    assert!(device.fb.is_some() && device.customer_fb.is_some());
    assert!(device.buzzer.is_some_and(|b| b.light_line.is_some()));
}

#[cfg(feature = "device")]
#[test]
fn the_installed_example_names_the_default_panel_and_no_framebuffer_or_buzzer() {
    let device = parse_device_settings(include_str!("../../../packaging/etc/till.toml")).unwrap();
    assert_eq!(
        device.panel,
        Some(crate::device::outputs::DEFAULT_PANEL_SIZE)
    );
    assert_eq!((device.fb, device.buzzer), (None, None));
}

#[test]
fn the_display_and_buzzer_tables_name_the_panels_and_the_gpio_lines() {
    let text = "[device.display]\nfb = \"/dev/fb0\"\ncustomer_fb = \"/dev/fb1\"\n\
                panel = \"480x272\"\n[device.buzzer]\ngpio_chip = \"/dev/gpiochip2\"\n\
                buzzer_line = 17\nlight_line = 27\n";
    let device = parse_device_settings(text).unwrap();
    assert_eq!(device.fb.as_deref(), Some(Path::new("/dev/fb0")));
    assert_eq!(device.customer_fb.as_deref(), Some(Path::new("/dev/fb1")));
    #[cfg(feature = "device")]
    assert_eq!(device.panel, Some(crate::device::panel::PanelSize::LARGE));
    assert_eq!(
        device.buzzer,
        Some(BuzzerKeys {
            gpio_chip: "/dev/gpiochip2".into(),
            buzzer_line: 17,
            light_line: Some(27),
        })
    );
    // An empty table (every key commented out, as in the example) is no wiring.
    let empty = parse_device_settings("[device.display]\n[device.buzzer]\n").unwrap();
    assert_eq!(empty, DeviceSettings::default());
}

/// The keys `parse_device_settings` accepts in `[device.TABLE]`, from the message it gives
/// for a key it does not know ("unknown field `x`, expected one of `a`, `b`").
#[cfg(feature = "device")]
fn keys_of_table(table: &str) -> Vec<String> {
    let error = parse_device_settings(&format!("[device.{table}]\nno_such_key = 1\n")).unwrap_err();
    let (_, expected) = error
        .split_once("expected")
        .unwrap_or_else(|| panic!("{error}"));
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

#[cfg(feature = "device")]
#[test]
fn every_display_and_buzzer_flag_has_a_key_unless_it_is_bench_only() {
    use crate::device::outputs::{OutputArgs, BENCH_ONLY_OUTPUT_FLAGS};
    let keys: Vec<String> = ["display", "buzzer"]
        .into_iter()
        .flat_map(keys_of_table)
        .collect();
    assert!(keys.contains(&"panel".to_string()), "{keys:?}");
    let flags = <OutputArgs as clap::Args>::augment_args(clap::Command::new("device"));
    let mut seen = 0;
    for flag in flags.get_arguments() {
        let id = flag.get_id().as_str();
        let keyed = keys.iter().any(|key| key == id);
        let bench_only = BENCH_ONLY_OUTPUT_FLAGS.contains(&id);
        assert!(
            keyed != bench_only,
            "--{id}: a till's flag needs a key in [device.display] or [device.buzzer], \
             a bench's goes in BENCH_ONLY_OUTPUT_FLAGS (keyed {keyed}, bench-only {bench_only})"
        );
        seen += 1;
    }
    assert_eq!(seen, keys.len() + BENCH_ONLY_OUTPUT_FLAGS.len());
}

#[test]
fn a_bad_device_table_names_the_key() {
    for (text, key) in [
        ("[device]\nreset_line = 3", "device.reset_line"),
        (
            "[device]\nreset_chip = \"/dev/gpiochip0\"",
            "device.reset_chip",
        ),
        (
            "[device]\nreset_line = -1\nreset_chip = \"/dev/gpiochip0\"",
            "reset_line",
        ),
        ("[device]\nspy = \"/dev/spidev0.0\"", "spy"),
        (
            "[device]\nno_link = true\nlink = \"/run/l.sock\"",
            "device.no_link",
        ),
        ("data_dir = \"relative/dir\"", "data_dir"),
        (
            "[device.display]\ncustomer_fb = \"/dev/fb1\"",
            "device.display.customer_fb",
        ),
        (
            "[device.buzzer]\nbuzzer_line = 17",
            "device.buzzer.buzzer_line: set without device.buzzer.gpio_chip",
        ),
        (
            "[device.buzzer]\ngpio_chip = \"/dev/gpiochip0\"",
            "device.buzzer.gpio_chip",
        ),
        (
            "[device.buzzer]\nlight_line = 27",
            "device.buzzer.light_line",
        ),
        (
            "[device.buzzer]\ngpio_chip = \"/dev/gpiochip0\"\nbuzzer_line = 17\nlight_line = 17",
            "device.buzzer.light_line: 17",
        ),
        ("[device.buzzer]\nbuzzer = 17", "buzzer"),
        ("[device.display]\nfbdev = \"/dev/fb0\"", "fbdev"),
    ] {
        let error = parse_device_settings(text).unwrap_err();
        assert!(error.contains(key), "{text}: {error}");
    }
    #[cfg(feature = "device")]
    for panel in ["320", "321x240", "320x20", "4000x240", "widexhigh"] {
        let text = format!("[device.display]\npanel = \"{panel}\"");
        let error = parse_device_settings(&text).unwrap_err();
        assert!(
            error.starts_with("device.display.panel: panel size"),
            "{panel}: {error}"
        );
    }
}

#[test]
fn a_config_file_that_is_missing_or_bad_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("till.toml");
    let missing = load_config_file(&path).unwrap_err().to_string();
    assert!(missing.contains(&path.display().to_string()), "{missing}");
    std::fs::write(&path, "max_sale = \"-3\"\n").unwrap();
    let bad = load_config_file(&path).unwrap_err().to_string();
    assert!(
        bad.starts_with(&format!("{}: max_sale: ", path.display())),
        "{bad}"
    );
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
    let error = parse_settings("[[meal]]\nlabel=\"夜宵\\u0007\"\nstart=\"21:00\"\nend=\"23:00\"")
        .unwrap_err();
    assert!(error.contains("meal 1 label: name holds"), "{error}");
    let config = parse_settings("merchant_name = \"第一食堂 3号窗口\"").unwrap();
    assert_eq!(config.merchant_name, "第一食堂 3号窗口");
}

//! The till's settings file in `/etc` as the binary sees it: `check-config` accepts the
//! installed example (packaging/etc/till.toml) and names the file, the key and what is wrong in
//! a bad one (exit 2); `device` refuses to start on a bad file the same way, before it touches
//! the journal; `journal-status` says what the package's preinst needs, and never runs beside
//! a till that holds the journal.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The exit status of a bad settings file (`EXIT_BAD_CONFIG` in main.rs, docs/device.md).
const EXIT_BAD_CONFIG: i32 = 2;

fn firmware(args: &[&str], paths: &[&Path]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pos-firmware"));
    command.args(args);
    for path in paths {
        command.arg(path);
    }
    command.output().unwrap()
}

/// The installed example with its `/etc` and `/var/lib` paths moved into `root`, and a key file.
fn installed_example(root: &Path) -> PathBuf {
    let etc = root.join("etc/campus-pos");
    std::fs::create_dir_all(&etc).unwrap();
    let key = etc.join("card-master.key");
    std::fs::write(&key, "7a".repeat(32)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = include_str!("../../packaging/etc/till.toml")
        .replace("\"/etc/", &format!("\"{}/etc/", root.display()))
        .replace("\"/var/", &format!("\"{}/var/", root.display()));
    let config = etc.join("till.toml");
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn check_config_accepts_the_installed_example_and_says_where_the_data_goes() {
    let root = tempfile::tempdir().unwrap();
    let config = installed_example(root.path());
    let output = firmware(&["check-config", "--config"], &[&config]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("ok"), "{stdout}");
    assert!(stdout.contains("var/lib/campus-pos"), "{stdout}");
}

#[test]
fn check_config_names_the_file_the_key_and_what_is_wrong() {
    let root = tempfile::tempdir().unwrap();
    let config = installed_example(root.path());
    let good = std::fs::read_to_string(&config).unwrap();
    for (bad, key) in [
        (
            good.replace("max_sale = \"200.00\"", "max_sale = \"2.345\""),
            "max_sale",
        ),
        (good.replace("keypad = ", "keypod = "), "keypod"),
        (
            good.replace("# reset_line = 25", "reset_line = 25"),
            "device.reset_line",
        ),
        (
            good.replace("campus_id = 1", "campus_id = \"one\""),
            "campus_id",
        ),
        (
            good.replace("master_key_file = ", "# master_key_file = "),
            "master_key_file",
        ),
        (
            good.replace("panel = \"320x240\"", "panel = \"320x20\""),
            "device.display.panel: panel size \"320x20\"",
        ),
        (
            good.replace("# buzzer_line = 17", "buzzer_line = 17"),
            "device.buzzer.buzzer_line: set without device.buzzer.gpio_chip",
        ),
    ] {
        std::fs::write(&config, &bad).unwrap();
        let output = firmware(&["check-config", "--config"], &[&config]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(EXIT_BAD_CONFIG),
            "{key}: {stderr}"
        );
        assert!(
            stderr.contains(&config.display().to_string()) && stderr.contains(key),
            "{key}: {stderr}"
        );
    }
    // A key file anyone may read is refused too: check-config loads it as the till would.
    std::fs::write(&config, &good).unwrap();
    let key = root.path().join("etc/campus-pos/card-master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = firmware(&["check-config", "--config"], &[&config]);
    assert_eq!(output.status.code(), Some(EXIT_BAD_CONFIG), "{output:?}");
    let missing = root.path().join("nowhere.toml");
    let output = firmware(&["check-config", "--config"], &[&missing]);
    assert_eq!(output.status.code(), Some(EXIT_BAD_CONFIG), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("nowhere.toml"));
}

#[cfg(feature = "device")]
#[test]
fn the_device_does_not_start_on_a_bad_file_and_makes_no_journal() {
    let root = tempfile::tempdir().unwrap();
    let config = installed_example(root.path());
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        good.replace("language = \"zh\"", "language = \"fr\""),
    )
    .unwrap();
    let output = firmware(&["device", "--config"], &[&config]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(EXIT_BAD_CONFIG), "{stderr}");
    assert!(
        stderr.contains("ALARM") && stderr.contains("language"),
        "{stderr}"
    );
    assert!(!root.path().join("var/lib/campus-pos/db").exists());
}

/// A flag overrides its key, so the flags that need each other are checked with the file's
/// keys: a buzzer line needs a chip from one or the other.
#[cfg(feature = "device")]
#[test]
fn the_device_does_not_start_on_a_buzzer_line_without_a_chip_in_flags_or_file() {
    let root = tempfile::tempdir().unwrap();
    let config = installed_example(root.path());
    let output = Command::new(env!("CARGO_BIN_EXE_pos-firmware"))
        .args(["device", "--buzzer-line", "17", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(EXIT_BAD_CONFIG), "{stderr}");
    assert!(
        stderr.contains("ALARM") && stderr.contains("--buzzer-line: 17 without a GPIO chip"),
        "{stderr}"
    );
    assert!(!root.path().join("var/lib/campus-pos/db").exists());
}

#[test]
fn journal_status_says_no_journal_then_what_is_unsent_and_refuses_a_held_journal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let output = firmware(&["journal-status", "--data-dir"], &[&data]);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("no journal"));
    assert!(!data.exists(), "journal-status creates nothing");

    let journal = pos_firmware::journal::Journal::open(&data).unwrap();
    // The till holds the journal: journal-status cannot open it, and says so.
    let output = firmware(&["journal-status", "--data-dir"], &[&data]);
    assert!(!output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("lock"),
        "{output:?}"
    );
    drop(journal);
    let output = firmware(&["journal-status", "--data-dir"], &[&data]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout.trim(), "unsent=0 oldest_unsent_age_s=");
}

/// What the preinst reads: a sale scripted in January is unsent, and about eleven months old.
#[cfg(feature = "script")]
#[test]
fn journal_status_counts_unsent_records_and_ages_the_oldest() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut script = Command::new(env!("CARGO_BIN_EXE_pos-firmware"))
        .args(["script", "-", "--start", "2026-01-05 11:30", "--data-dir"])
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    script
        .stdin
        .take()
        .unwrap()
        .write_all(
            "type 12.5\nkeys Enter\ntap card-1\nexpect merchant 交易成功 | ¥12.50 | 余额 ¥87.50\n"
                .as_bytes(),
        )
        .unwrap();
    assert!(script.wait().unwrap().success());

    let output = firmware(&["journal-status", "--data-dir"], &[&data]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (unsent, age) = stdout
        .trim()
        .strip_prefix("unsent=")
        .and_then(|rest| rest.split_once(" oldest_unsent_age_s="))
        .unwrap_or_else(|| panic!("{stdout}"));
    let unsent: u64 = unsent.parse().unwrap();
    let age: u64 = age.parse().unwrap();
    assert!(
        unsent >= 2,
        "the sale's intent and commit at least: {stdout}"
    );
    // The script's clock started on 2026-01-05; this test runs later than that.
    assert!(age > 3_600, "{stdout}");
}

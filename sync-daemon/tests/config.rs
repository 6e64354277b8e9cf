//! The daemon's settings file as the binary sees it: `check-config` accepts the installed
//! example and names the file, the key and what is wrong in a bad one (exit 2); the daemon
//! itself refuses to start on a bad file the same way, with an ALARM line.

use std::path::Path;
use std::process::{Command, Output};

/// The exit status of a bad settings file (`cli::EXIT_BAD_CONFIG`, docs/device.md).
const EXIT_BAD_CONFIG: i32 = 2;

fn daemon(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sync-daemon"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn check_config_accepts_the_installed_example() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sync-daemon.toml");
    std::fs::write(
        &config,
        include_str!("../../packaging/etc/sync-daemon.toml"),
    )
    .unwrap();
    let output = daemon(&["check-config"], &config);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ok") && stdout.contains("/run/campus-pos/link.sock"),
        "{stdout}"
    );
}

#[test]
fn a_bad_file_stops_the_check_and_the_start_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sync-daemon.toml");
    std::fs::write(&config, "ack_timeout_ms = 5\n").unwrap();
    for args in [&["check-config"][..], &[][..]] {
        let output = daemon(args, &config);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(EXIT_BAD_CONFIG),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(&config.display().to_string())
                && stderr.contains("ack_timeout_ms: 5 is outside 500..=600000"),
            "{args:?}: {stderr}"
        );
    }
    // Starting says it as an ALARM for the operator.
    let output = daemon(&[], &config);
    assert!(String::from_utf8_lossy(&output.stderr).contains("ALARM"));
    // A --config that names nothing is an error, not the defaults.
    let output = daemon(&[], &dir.path().join("missing.toml"));
    assert_eq!(output.status.code(), Some(EXIT_BAD_CONFIG), "{output:?}");
}

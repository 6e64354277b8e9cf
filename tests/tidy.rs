//! Architecture invariants from ARCHITECTURE.md, enforced on the source tree: every file says
//! why it exists, the till core does no I/O and reads no clock, only `shared` encodes, only the
//! firmware's journal touches sled, the till's device build carries none of the test bench,
//! the README's two commands are the ones CI runs, and the docs cannot drift: every path and
//! type ARCHITECTURE.md names exists (and every repository path the README and docs/ name).

use std::fs;
use std::path::{Path, PathBuf};

/// Docs that cannot drift: the checker of the names ARCHITECTURE.md, README.md and docs/ use,
/// and its tests.
#[path = "tidy/docs.rs"]
mod docs;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository root")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn workspace_rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for member in ["shared", "keymap", "pos-firmware", "sync-daemon", "tests"] {
        rust_files(&repo_root().join(member), &mut files);
    }
    assert!(files.len() > 20, "found the sources");
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Source lines that are production code: not comments, and not in the `#[cfg(test)]` module
/// that ends a file.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .filter(|line| {
            let trimmed = line.trim_start();
            !(trimmed.starts_with("//") || trimmed.starts_with("///") || trimmed.starts_with("//!"))
        })
}

#[test]
fn every_rust_file_opens_with_a_why_header() {
    let missing: Vec<String> = workspace_rust_files()
        .into_iter()
        .filter(|path| {
            !fs::read_to_string(path)
                .unwrap_or_default()
                .trim_start()
                .starts_with("//!")
        })
        .map(|path| relative(&path))
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` header: {missing:?}"
    );
}

#[test]
fn the_till_core_does_no_io_and_reads_no_clock() {
    // Clippy enforces the named items (pos-firmware/clippy.toml: `SystemTime`, `Instant`, sled,
    // `println!`, …; postcard is not even a dependency of the firmware). These string checks are
    // what it cannot: whole modules, any `now()`, and tracing's macros.
    const FORBIDDEN: &[&str] = &[
        "std::fs",
        "std::net",
        "std::io",
        "std::thread",
        "std::process",
        "std::env",
        "::now(",
        "tracing::",
    ];
    let mut files = Vec::new();
    rust_files(&repo_root().join("pos-firmware/src/core"), &mut files);
    assert!(files.len() >= 6, "found the core");
    let mut found = Vec::new();
    for path in files {
        let text = fs::read_to_string(&path).unwrap_or_default();
        for (number, line) in code_lines(&text).enumerate() {
            for word in FORBIDDEN.iter().filter(|word| line.contains(*word)) {
                found.push(format!(
                    "{}: code line {}: {word}",
                    relative(&path),
                    number + 1
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the core must stay pure:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_shared_encodes() {
    let mut found = Vec::new();
    for path in workspace_rust_files() {
        let rel = relative(&path);
        if rel.starts_with("shared/") || rel == "tests/tidy.rs" {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap_or_default();
        if code_lines(&text).any(|line| line.contains("postcard::")) {
            found.push(rel);
        }
    }
    assert!(
        found.is_empty(),
        "only shared::codec may call postcard: {found:?}"
    );
    // Which crates may depend on postcard at all: only_shared_depends_on_postcard_and_….
}

#[test]
fn only_the_firmware_journal_touches_sled() {
    let mut found = Vec::new();
    for path in workspace_rust_files() {
        let rel = relative(&path);
        if rel.starts_with("pos-firmware/src/journal")
            || rel.starts_with("pos-firmware/tests/journal")
            || rel.starts_with("pos-firmware/benches/")
            || rel == "tests/tidy.rs"
        {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap_or_default();
        if code_lines(&text).any(|line| line.contains("sled::")) {
            found.push(rel);
        }
    }
    assert!(
        found.is_empty(),
        "sled is opened only by pos-firmware's journal module: {found:?}"
    );
}

#[test]
fn the_readme_opens_with_the_two_commands_ci_runs() {
    let readme = fs::read_to_string(repo_root().join("README.md")).expect("README.md exists");
    let head: String = readme.lines().take(15).collect::<Vec<_>>().join("\n");
    assert!(
        head.contains("cargo run --release -p pos-firmware -- sim"),
        "README starts with the till command"
    );
    assert!(
        head.contains("cargo test --workspace"),
        "README starts with the test command"
    );
    let ci = fs::read_to_string(repo_root().join(".ci/run")).expect(".ci/run exists");
    assert!(
        ci.contains("cargo test --workspace"),
        ".ci/run runs the README's test command"
    );
}

/// The firmware that goes on a till, as `.ci/run` builds it.
const DEVICE_BUILD: &[&str] = &[
    "-p",
    "pos-firmware",
    "--no-default-features",
    "--features",
    "device",
];

/// Crates of the test bench that must never be in the till's firmware.
const BENCH_CRATES: &[&str] = &["ratatui", "crossterm"];

#[test]
fn the_device_firmware_depends_on_no_terminal_ui() {
    let output = std::process::Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .args(["tree", "--locked", "-e", "normal", "--prefix", "none"])
        .args(DEVICE_BUILD)
        .output()
        .expect("cargo can be run");
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"linux-embedded-hal"),
        "the device tree has the reader's driver:\n{tree}"
    );
    let bench: Vec<&&str> = BENCH_CRATES
        .iter()
        .filter(|name| crates.contains(*name))
        .collect();
    assert!(
        bench.is_empty(),
        "the till's firmware ({}) depends on {bench:?}",
        DEVICE_BUILD.join(" ")
    );
}

/// The test bench's modules, each declared behind the feature that carries it.
const BENCH_MODULES: &[(&str, &str, &str)] = &[
    ("pos-firmware/src/lib.rs", "pub mod sim;", "script"),
    ("pos-firmware/src/sim/mod.rs", "pub mod tui;", "sim"),
    (
        "pos-firmware/src/reader/mod.rs",
        "pub mod emulator;",
        "emulator",
    ),
    (
        "pos-firmware/src/wallet/mod.rs",
        "pub mod memory;",
        "emulator",
    ),
    ("pos-firmware/src/lib.rs", "pub mod device;", "device"),
];

#[test]
fn the_test_bench_is_compiled_only_with_its_feature() {
    for (file, declaration, feature) in BENCH_MODULES {
        let text = fs::read_to_string(repo_root().join(file)).expect("the module file exists");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let at = lines
            .iter()
            .position(|line| line == declaration)
            .unwrap_or_else(|| panic!("{file} declares `{declaration}`"));
        let attribute = format!("#[cfg(feature = \"{feature}\")]");
        assert!(
            at > 0 && lines[at - 1] == attribute,
            "{file}: `{declaration}` must sit right under `{attribute}`"
        );
    }
    // Production code names none of the bench: the device build would not compile.
    const BENCH_PATHS: &[&str] = &["sim::", "reader::emulator", "wallet::memory"];
    let mut found = Vec::new();
    for path in workspace_rust_files() {
        let rel = relative(&path);
        let bench = rel.starts_with("pos-firmware/src/sim/")
            || rel.starts_with("pos-firmware/src/reader/emulator/")
            || rel == "pos-firmware/src/wallet/memory.rs"
            || rel == "pos-firmware/src/main.rs";
        if !rel.starts_with("pos-firmware/src/") || bench {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap_or_default();
        for line in code_lines(&text) {
            for word in BENCH_PATHS.iter().filter(|word| line.contains(*word)) {
                found.push(format!("{rel}: {word}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "production code imports the test bench:\n{}",
        found.join("\n")
    );
}

/// Whether `line` calls the bare `tr(lang, zh, en)` (not `foo_tr(` or `.tr(`).
fn calls_tr(line: &str) -> bool {
    line.match_indices("tr(").any(|(at, _)| {
        line[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'))
    })
}

#[test]
fn the_till_core_names_its_texts_and_spells_them_only_in_text_rs() {
    const SPELLED: &[&str] = &["Lang::Zh =>", "Lang::En =>", "Text::new("];
    let mut files = Vec::new();
    rust_files(&repo_root().join("pos-firmware/src/core"), &mut files);
    assert!(files.len() >= 6, "found the core");
    let mut found = Vec::new();
    for path in files.iter().filter(|path| !path.ends_with("core/text.rs")) {
        let text = fs::read_to_string(path).unwrap_or_default();
        for (number, line) in code_lines(&text).enumerate() {
            let spelled = SPELLED.iter().find(|word| line.contains(*word));
            if calls_tr(line) || spelled.is_some() {
                found.push(format!(
                    "{}: code line {}: {}",
                    relative(path),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "texts of the till belong in pos-firmware/src/core/text.rs (a `Text` constant or a \
         function there), Chinese and English side by side:\n{}",
        found.join("\n")
    );
    assert!(
        calls_tr(r#"vec![tr(lang, "请刷卡", "Tap")]"#),
        "the check sees a pair"
    );
    assert!(
        !calls_tr("self.centre_tap(&centre, &card)"),
        "and no other call"
    );
}

/// The lints that turn pos-firmware/clippy.toml's lists into errors.
const CORE_LINTS: &[&str] = &[
    "clippy::disallowed_methods",
    "clippy::disallowed_types",
    "clippy::disallowed_macros",
];

#[test]
fn clippy_denies_the_core_io_clock_and_printing() {
    let lib = fs::read_to_string(repo_root().join("pos-firmware/src/lib.rs")).expect("lib.rs");
    let declaration = lib
        .find("\npub mod core;")
        .expect("lib.rs declares `pub mod core;`");
    let attribute_start = lib[..declaration]
        .rfind("#[deny(")
        .expect("a `#[deny(…)]` sits on `pub mod core;`");
    let attribute = &lib[attribute_start..declaration];
    for lint in CORE_LINTS {
        assert!(
            attribute.contains(lint)
                && !attribute[attribute.find(')').unwrap_or(0)..].contains("#["),
            "lib.rs must declare the core under `#[deny({})]`, found:\n{attribute}",
            CORE_LINTS.join(", ")
        );
    }
    let config = fs::read_to_string(repo_root().join("pos-firmware/clippy.toml"))
        .expect("pos-firmware/clippy.toml exists");
    for item in [
        "\"std::fs::read\"",
        "\"std::time::SystemTime\"",
        "\"std::time::Instant::now\"",
        "\"std::thread::spawn\"",
        "\"std::env::var\"",
        "\"sled::open\"",
        "\"std::println\"",
    ] {
        assert!(config.contains(item), "clippy.toml forbids {item}");
    }
    // Nothing in the core lowers the level again.
    let mut files = Vec::new();
    rust_files(&repo_root().join("pos-firmware/src/core"), &mut files);
    let lowered: Vec<String> = files
        .iter()
        .filter(|path| {
            fs::read_to_string(path)
                .unwrap_or_default()
                .contains("clippy::disallowed_")
        })
        .map(|path| relative(path))
        .collect();
    assert!(
        lowered.is_empty(),
        "the core must not allow what clippy.toml forbids: {lowered:?}"
    );
}

/// The packages that depend directly (normal dependencies, the default features) on `krate`.
fn direct_dependents(krate: &str) -> Vec<String> {
    let output = std::process::Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .args(["tree", "--locked", "--workspace", "-e", "normal"])
        .args(["--prefix", "none", "--depth", "1", "-i", krate])
        .output()
        .expect("cargo can be run");
    assert!(
        output.status.success(),
        "cargo tree -i {krate} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(String::from)
        .collect()
}

#[test]
fn only_shared_depends_on_postcard_and_only_the_firmware_on_sled() {
    assert_eq!(
        direct_dependents("postcard"),
        ["shared"],
        "only shared encodes (tests may use postcard as a dev-dependency)"
    );
    assert_eq!(
        direct_dependents("sled"),
        ["pos-firmware"],
        "only the firmware's journal opens sled"
    );
}

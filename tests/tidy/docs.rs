//! Docs that cannot drift: every path and every type ARCHITECTURE.md names exists in the
//! workspace, and every repository path README.md and docs/ name. A part of `tests/tidy.rs`
//! (its own file so the tidy test stays a size a person can hold).

use std::fs;
use std::path::{Path, PathBuf};

use super::{relative, repo_root, workspace_rust_files};

/// Files the till and the daemon make at run time, named in the docs but never in the
/// repository.
const RUNTIME_FILES: &[&str] = &[
    "till.toml",
    "sim-cards.toml",
    "journal.hwm",
    "pos-data/",
    "campus.toml",
];

/// Crates outside the workspace whose items the docs name (`std::fs`, `linux_embedded_hal::…`):
/// a path starting with one of them is not looked up in the workspace.
const EXTERNAL_CRATES: &[&str] = &[
    "std",
    "sled",
    "postcard",
    "serde",
    "tokio",
    "rumqttc",
    "rustls",
    "linux_embedded_hal",
    "embedded_hal",
    "mfrc522",
    "ratatui",
    "crossterm",
    "clap",
    "tracing",
];

/// Names of other crates' items the docs use unqualified (`SpiDevice` is embedded-hal's,
/// `SystemTime` and `Instant` std's, `generate_id` sled's).
const EXTERNAL_NAMES: &[&str] = &[
    "SpiDevice",
    "SpidevDevice",
    "SystemTime",
    "Instant",
    "generate_id",
];

/// File extensions that make a backticked token a path.
const PATH_EXTENSIONS: &[&str] = &[
    ".rs", ".md", ".toml", ".txt", ".till", ".lock", ".sh", ".json", ".conf", ".acl",
];

/// What the workspace declares, read from its sources (comment lines skipped).
#[derive(Default)]
struct Declarations {
    /// `struct|enum|trait|type|union NAME`.
    types: std::collections::HashSet<String>,
    /// `fn NAME`.
    fns: std::collections::HashSet<String>,
    /// `const|static NAME`.
    consts: std::collections::HashSet<String>,
    /// `mod NAME`, every file stem and every crate name.
    modules: std::collections::HashSet<String>,
    /// Each enum's variants (enums of the same name in different modules share one list).
    variants: std::collections::HashMap<String, std::collections::HashSet<String>>,
    /// The string literals of the sources (environment variables are named by them).
    strings: std::collections::HashSet<String>,
    /// Every identifier the code uses (fields, methods, locals): a snake_case name a document
    /// uses alone (`handle_card`, `max_sale`) must be one of them.
    words: std::collections::HashSet<String>,
    /// Every file and directory of the workspace, relative to the repository root.
    paths: Vec<String>,
}

fn identifier_words(line: &str) -> Vec<&str> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

impl Declarations {
    /// Reads `sources` (file name → text) and `paths` (relative paths of files and dirs).
    fn read(sources: &[(String, String)], paths: Vec<String>) -> Declarations {
        let mut found = Declarations {
            paths,
            ..Declarations::default()
        };
        for krate in [
            "shared",
            "keymap",
            "pos_firmware",
            "sync_daemon",
            "till_tests",
        ] {
            found.modules.insert(krate.to_string());
        }
        for path in &found.paths {
            let name = path.rsplit('/').next().unwrap_or(path);
            found
                .modules
                .insert(name.trim_end_matches(".rs").to_string());
        }
        for (name, text) in sources {
            if let Some(stem) = Path::new(name).file_stem() {
                found.modules.insert(stem.to_string_lossy().into_owned());
            }
            // (enum name, brace depth inside it) while reading an enum's body.
            let mut open_enum: Option<(String, i32)> = None;
            let mut pending_enum: Option<String> = None;
            for line in text.lines() {
                let trimmed = line.trim_start();
                if trimmed.starts_with("//") || trimmed.starts_with("#[") {
                    continue;
                }
                for literal in trimmed.split('"').skip(1).step_by(2) {
                    found.strings.insert(literal.to_string());
                }
                let words = identifier_words(trimmed);
                found.words.extend(words.iter().map(|w| w.to_string()));
                for pair in words.windows(2) {
                    let set = match pair[0] {
                        "struct" | "enum" | "trait" | "type" | "union" => &mut found.types,
                        "fn" => &mut found.fns,
                        "const" | "static" => &mut found.consts,
                        "mod" => &mut found.modules,
                        _ => continue,
                    };
                    set.insert(pair[1].to_string());
                    if pair[0] == "enum" && open_enum.is_none() {
                        pending_enum = Some(pair[1].to_string());
                    }
                }
                let opens = trimmed.matches('{').count() as i32;
                let closes = trimmed.matches('}').count() as i32;
                if let Some((name, depth)) = &mut open_enum {
                    if *depth == 1 {
                        if let Some(first) = words.first().filter(|w| trimmed.starts_with(**w)) {
                            if first.starts_with(|c: char| c.is_ascii_uppercase()) {
                                found
                                    .variants
                                    .entry(name.clone())
                                    .or_default()
                                    .insert(first.to_string());
                            }
                        }
                    }
                    *depth += opens - closes;
                    if *depth <= 0 {
                        open_enum = None;
                    }
                } else if opens > 0 {
                    if let Some(name) = pending_enum.take() {
                        let depth = opens - closes;
                        if depth > 0 {
                            open_enum = Some((name, depth));
                        }
                    }
                }
            }
        }
        found
    }

    /// The workspace as it is on disk (but this file, whose test text declares made-up names),
    /// read once for all the tests that check documents against it.
    fn of_workspace() -> &'static Declarations {
        static DECLARED: std::sync::OnceLock<Declarations> = std::sync::OnceLock::new();
        DECLARED.get_or_init(Declarations::read_workspace)
    }

    fn read_workspace() -> Declarations {
        let sources: Vec<(String, String)> = workspace_rust_files()
            .into_iter()
            .filter(|path| !path.ends_with("tests/tidy/docs.rs"))
            .map(|path| {
                (
                    relative(&path),
                    fs::read_to_string(&path).unwrap_or_default(),
                )
            })
            .collect();
        let mut paths = Vec::new();
        all_paths(&repo_root(), &mut paths);
        let mut declared = Declarations::read(&sources, paths);
        // This file's own tests are named by ARCHITECTURE.md.
        let this = fs::read_to_string(repo_root().join("tests/tidy/docs.rs")).unwrap_or_default();
        for line in this.lines() {
            if let Some(name) = line.strip_prefix("fn ") {
                declared
                    .words
                    .extend(identifier_words(name).first().map(|w| w.to_string()));
            }
        }
        declared
    }

    /// Whether a path a document names exists: from the repository root, or as the tail of a
    /// path in it (a section about a crate names its files relative to the crate or its
    /// `src/`). `*` stands for any file name.
    fn has_path(&self, token: &str) -> bool {
        if RUNTIME_FILES.contains(&token) {
            return true;
        }
        let token = token.trim_start_matches("./").trim_end_matches('/');
        let (dir, glob) = match token.rsplit_once("/*") {
            Some((dir, _)) => (dir, true),
            None => (token, false),
        };
        let matches = |path: &String| path == dir || path.ends_with(&format!("/{dir}"));
        if glob {
            self.paths.iter().any(|path| {
                path.rsplit_once('/')
                    .is_some_and(|(parent, _)| matches(&parent.to_string()))
            })
        } else {
            self.paths.iter().any(matches)
        }
    }

    /// Why a `::`-path of identifiers a document names is not declared, if it is not.
    fn missing(&self, chain: &[&str]) -> Option<String> {
        let is_camel = |w: &str| {
            w.starts_with(|c: char| c.is_ascii_uppercase()) && w.chars().any(|c| c.is_lowercase())
        };
        let is_screaming = |w: &str| {
            w.contains('_')
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        };
        let is_upper = |w: &str| w.starts_with(|c: char| c.is_ascii_uppercase());
        let last = *chain.last()?;
        if EXTERNAL_CRATES.contains(&chain[0]) || EXTERNAL_NAMES.contains(&last) {
            return None;
        }
        if let Some(module) = chain[..chain.len() - 1]
            .iter()
            .find(|w| !is_upper(w) && !self.modules.contains(**w))
        {
            return Some(format!("no module `{module}`"));
        }
        let declared_type =
            |w: &str| self.types.contains(w) || self.variants.values().any(|v| v.contains(w));
        let previous = chain.len().checked_sub(2).map(|i| chain[i]);
        if is_screaming(last) {
            return (!self.consts.contains(last)).then(|| format!("no const `{last}`"));
        }
        match previous {
            Some(owner) if is_upper(owner) && is_upper(last) => {
                if !self.types.contains(owner) {
                    return Some(format!("no type `{owner}`"));
                }
                let variants = self.variants.get(owner);
                (!variants.is_some_and(|v| v.contains(last)))
                    .then(|| format!("no variant `{last}` in enum `{owner}`"))
            }
            Some(owner) if is_upper(owner) || !is_upper(last) => (!self.fns.contains(last)
                && !self.modules.contains(last))
            .then(|| format!("no fn `{last}`")),
            _ if is_camel(last) => (!declared_type(last)).then(|| format!("no type `{last}`")),
            None if last.contains('_') && !is_upper(last) && !last.ends_with('_') => {
                (!self.words.contains(last)).then(|| format!("no identifier `{last}` in the code"))
            }
            _ => None,
        }
    }
}

fn all_paths(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "target" || name.starts_with('.') && name != ".ci" {
            continue;
        }
        out.push(relative(&path));
        if path.is_dir() {
            all_paths(&path, out);
        }
    }
}

/// The backticked tokens of a markdown text outside fenced code blocks, and the targets of its
/// relative links, each with its line number.
fn named_in(markdown: &str) -> Vec<(usize, String, bool)> {
    let mut names = Vec::new();
    let mut fenced = false;
    for (number, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for (i, piece) in line.split('`').enumerate() {
            if i % 2 == 1 && !piece.is_empty() {
                names.push((number + 1, piece.to_string(), false));
            }
        }
        for target in line.split("](").skip(1) {
            let target = target.split([')', '#']).next().unwrap_or_default();
            if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
                names.push((number + 1, target.to_string(), true));
            }
        }
    }
    names
}

fn looks_like_path(token: &str) -> bool {
    token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./*".contains(c))
        && (token.contains('/') || PATH_EXTENSIONS.iter().any(|e| token.ends_with(e)))
}

/// How much of a document is checked.
#[derive(Clone, Copy, PartialEq)]
enum Check {
    /// Every path, link and declaration (ARCHITECTURE.md).
    Everything,
    /// Links, and the paths that are the repository's own: `.rs`/`.md` files and paths under a
    /// top-level folder (the README and docs also name device files, MQTT topics and the
    /// files a till makes at run time).
    RepositoryPaths,
}

/// Every path and declaration `markdown` names that the workspace lacks, as
/// "line N: `token`: why". Link targets are resolved from `doc_dir` (the document's folder).
fn stale_names(
    markdown: &str,
    doc_dir: &str,
    declared: &Declarations,
    check: Check,
) -> Vec<String> {
    let mut stale = Vec::new();
    for (line, token, link) in named_in(markdown) {
        if link {
            let joined = Path::new(doc_dir).join(&token);
            let mut resolved = PathBuf::new();
            for part in joined.components() {
                match part {
                    std::path::Component::ParentDir => {
                        resolved.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => resolved.push(other),
                }
            }
            let resolved = resolved.display().to_string();
            let resolved = resolved.trim_end_matches('/');
            if !declared.paths.iter().any(|p| p == resolved) {
                stale.push(format!("line {line}: link ({token}): no such file"));
            }
            continue;
        }
        if check == Check::RepositoryPaths {
            let top = token.split('/').next().unwrap_or_default();
            let ours = token.ends_with(".rs")
                || token.ends_with(".md")
                || token.contains('/') && declared.paths.iter().any(|p| p == top);
            if looks_like_path(&token) && ours && !declared.has_path(&token) {
                stale.push(format!("line {line}: `{token}`: no such path"));
            }
            continue;
        }
        if looks_like_path(&token) {
            if !declared.has_path(&token) {
                stale.push(format!("line {line}: `{token}`: no such path"));
            }
            continue;
        }
        // An environment variable (`SIM_SEED=x`): the sources read it by name.
        if let Some((variable, _)) = token.split_once('=') {
            if !variable.is_empty()
                && variable
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                if !declared.strings.contains(variable) {
                    stale.push(format!(
                        "line {line}: `{token}`: no variable `{variable}` read"
                    ));
                }
                continue;
            }
        }
        // Identifiers outside string literals, joined by `::`.
        let code: String = token.split('"').step_by(2).collect::<Vec<_>>().join(" ");
        let mut chain: Vec<&str> = Vec::new();
        let mut rest = code.as_str();
        let mut chains: Vec<Vec<&str>> = Vec::new();
        while !rest.is_empty() {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (word, after) = rest.split_at(end);
            if !word.is_empty() && !word.starts_with(|c: char| c.is_ascii_digit()) {
                chain.push(word);
            }
            if let Some(next) = after.strip_prefix("::") {
                rest = next;
            } else {
                if !chain.is_empty() {
                    chains.push(std::mem::take(&mut chain));
                }
                rest = after
                    .get(after.chars().next().map_or(0, char::len_utf8)..)
                    .unwrap_or("");
            }
        }
        for chain in chains {
            if let Some(why) = declared.missing(&chain) {
                stale.push(format!("line {line}: `{token}`: {why}"));
            }
        }
    }
    stale
}

#[test]
fn the_name_checker_flags_a_made_up_path_type_variant_const_and_module() {
    let sources = vec![(
        "pos-firmware/src/core/card.rs".to_string(),
        "//! card\npub enum Effect {\n    /// a doc { brace\n    Journal { seq: u64 },\n    Beep(u8),\n}\npub struct Till;\npub const MAX_SALE: u64 = 1;\npub fn debit_evidence() {}\n".to_string(),
    )];
    let paths = [
        "pos-firmware",
        "pos-firmware/src",
        "pos-firmware/src/core",
        "pos-firmware/src/core/card.rs",
        "docs",
        "docs/device.md",
    ]
    .map(String::from)
    .to_vec();
    let declared = Declarations::read(&sources, paths);
    let text = "\
Real: `Till`, `core::card::debit_evidence`, `Effect::Journal{seq}`, `MAX_SALE`, `core/card.rs`,
`docs/device.md`, [device](docs/device.md), `std::fs::Nothing`, `debit_evidence()`, `seq`.
```
`InAFence` is not read.
```
Made up: `Tilly`, `Effect::Teleport`, `MAX_SALES`, `core/cards.rs`, `core::nothing::Till`,
[gone](docs/gone.md), `core::card::credit_evidence`, `handle_tap`.
";
    let stale = stale_names(text, "", &declared, Check::Everything);
    let expected = [
        "line 6: `Tilly`: no type `Tilly`",
        "line 6: `Effect::Teleport`: no variant `Teleport` in enum `Effect`",
        "line 6: `MAX_SALES`: no const `MAX_SALES`",
        "line 6: `core/cards.rs`: no such path",
        "line 6: `core::nothing::Till`: no module `nothing`",
        "line 7: `core::card::credit_evidence`: no fn `credit_evidence`",
        "line 7: `handle_tap`: no identifier `handle_tap` in the code",
        "line 7: link (docs/gone.md): no such file",
    ];
    assert_eq!(stale, expected);
}

#[test]
fn every_path_and_type_architecture_md_names_exists() {
    let declared = Declarations::of_workspace();
    let text = fs::read_to_string(repo_root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let stale = stale_names(&text, "", declared, Check::Everything);
    assert!(
        stale.is_empty(),
        "ARCHITECTURE.md names what the code no longer has:\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_path_the_readme_and_the_docs_name_exists() {
    let declared = Declarations::of_workspace();
    let mut documents = vec!["README.md".to_string()];
    let mut docs: Vec<String> = declared
        .paths
        .iter()
        .filter(|p| p.starts_with("docs/") && p.ends_with(".md") || p.ends_with("KEYS.md"))
        .cloned()
        .collect();
    docs.sort();
    documents.extend(docs);
    let mut stale = Vec::new();
    for document in &documents {
        let text = fs::read_to_string(repo_root().join(document)).expect("the document exists");
        let dir = document.rsplit_once('/').map_or("", |(dir, _)| dir);
        for found in stale_names(&text, dir, declared, Check::RepositoryPaths) {
            stale.push(format!("{document} {found}"));
        }
    }
    assert!(
        stale.is_empty(),
        "the docs name what the code no longer has:\n{}",
        stale.join("\n")
    );
}

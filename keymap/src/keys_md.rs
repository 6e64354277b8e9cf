//! Keeps `KEYS.md` honest: its data tables are regenerated from the crate's constants and must
//! appear in the file verbatim. On a mismatch the test prints the table to paste.

use crate::linux::tests::NAMES as LINUX_NAMES;
use crate::{TillKey, COMBOS, LINUX_KEYCODES, PC_KEYS};

const KEYS_MD: &str = include_str!("../KEYS.md");

/// A key as the docs show it: its text form, plus its Chinese legend where it has one.
fn key_cell(key: TillKey) -> String {
    let text = key.to_string();
    let zh = key.name_zh();
    if zh == text {
        format!("`{text}`")
    } else {
        format!("`{text}` {zh}")
    }
}

fn till_keys_table() -> String {
    let mut t = String::from("| key | text form | 中文 |\n|---|---|---|\n");
    for key in TillKey::ALL {
        t += &format!("| `{key:?}` | `{key}` | {} |\n", key.name_zh());
    }
    t
}

fn combos_table() -> String {
    let mut t = String::from("| keys | 按键 | command | manual (说明书) |\n|---|---|---|---|\n");
    for spec in COMBOS {
        t += &format!(
            "| `{spec}` | {} | `{}` | {} |\n",
            spec.keys_zh(),
            spec.command,
            spec.manual_zh
        );
    }
    t
}

fn linux_table() -> String {
    let mut t = String::from("| code | name | till key |\n|---:|---|---|\n");
    for ((code, key), (name, _)) in LINUX_KEYCODES.iter().zip(LINUX_NAMES) {
        t += &format!("| {code} | `{name}` | {} |\n", key_cell(*key));
    }
    t
}

fn pc_table() -> String {
    let mut t = String::from("| till key | PC keys |\n|---|---|\n");
    for binding in PC_KEYS {
        let keys: Vec<String> = binding.pc_keys.iter().map(|k| format!("`{k}`")).collect();
        t += &format!(
            "| {} | {} |\n",
            key_cell(binding.till_key),
            keys.join(" / ")
        );
    }
    t
}

#[test]
fn keys_md_tables_match_the_data() {
    let mut stale = Vec::new();
    for (what, table) in [
        ("till keys", till_keys_table()),
        ("manual combos", combos_table()),
        ("Linux key codes", linux_table()),
        ("PC keys", pc_table()),
    ] {
        if !KEYS_MD.contains(&table) {
            stale.push(format!("--- {what} table, as it should read:\n{table}"));
        }
    }
    assert!(
        stale.is_empty(),
        "KEYS.md is out of date:\n{}",
        stale.join("\n")
    );
}

//! The PC-keyboard layout of the terminal simulator: which PC key plays which till key.
//!
//! Independent of any terminal crate: the simulator converts its terminal library's key event into
//! a [`PcKey`] and looks it up here, and prints [`pc_key_help`] so the user knows the layout.
//! Letters double the F-keys and arrows because terminals often swallow F1/F2.

use std::fmt;

use crate::{combo::COMBOS, TillKey, CLEAR_COMBO_WINDOW_MS, F2_COMBO_STEP_WINDOW_MS};

/// A key of a PC keyboard, as a terminal reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PcKey {
    /// A printable character (letters are matched case-insensitively).
    Char(char),
    /// Enter / Return.
    Enter,
    /// Backspace.
    Backspace,
    /// Delete (Del).
    Delete,
    /// Escape.
    Esc,
    /// A function key, `F(1)` = F1.
    F(u8),
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
}

/// The key's usual keycap name: the character itself, `Enter`, `Backspace`, `Delete`, `Esc`,
/// `F1`, `Up`, `Down`.
impl fmt::Display for PcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcKey::Char(c) => write!(f, "{c}"),
            PcKey::Enter => f.write_str("Enter"),
            PcKey::Backspace => f.write_str("Backspace"),
            PcKey::Delete => f.write_str("Delete"),
            PcKey::Esc => f.write_str("Esc"),
            PcKey::F(n) => write!(f, "F{n}"),
            PcKey::Up => f.write_str("Up"),
            PcKey::Down => f.write_str("Down"),
        }
    }
}

/// One till key and the PC keys that play it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcBinding {
    /// The till key.
    pub till_key: TillKey,
    /// The PC keys that press it, the main one first. Letters are listed in lower case.
    pub pc_keys: &'static [PcKey],
}

impl PcBinding {
    /// The label to show next to the till key on screen: the PC keys joined by `" / "`, e.g.
    /// `"Esc / c"`.
    pub fn label(&self) -> String {
        self.pc_keys
            .iter()
            .map(PcKey::to_string)
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

/// The simulator's layout, one row per till key in [`TillKey::ALL`] order; no PC key appears
/// twice.
pub const PC_KEYS: &[PcBinding] = &[
    bind(TillKey::Digit(0), &[PcKey::Char('0')]),
    bind(TillKey::Digit(1), &[PcKey::Char('1')]),
    bind(TillKey::Digit(2), &[PcKey::Char('2')]),
    bind(TillKey::Digit(3), &[PcKey::Char('3')]),
    bind(TillKey::Digit(4), &[PcKey::Char('4')]),
    bind(TillKey::Digit(5), &[PcKey::Char('5')]),
    bind(TillKey::Digit(6), &[PcKey::Char('6')]),
    bind(TillKey::Digit(7), &[PcKey::Char('7')]),
    bind(TillKey::Digit(8), &[PcKey::Char('8')]),
    bind(TillKey::Digit(9), &[PcKey::Char('9')]),
    bind(TillKey::Dot, &[PcKey::Char('.')]),
    bind(TillKey::Clear, &[PcKey::Esc, PcKey::Char('c')]),
    bind(TillKey::Delete, &[PcKey::Backspace, PcKey::Delete]),
    bind(TillKey::Enter, &[PcKey::Enter]),
    bind(TillKey::F1, &[PcKey::F(1), PcKey::Char('a')]),
    bind(TillKey::F2, &[PcKey::F(2), PcKey::Char('s')]),
    bind(TillKey::Up, &[PcKey::Up, PcKey::Char('k')]),
    bind(TillKey::Down, &[PcKey::Down, PcKey::Char('j')]),
];

const fn bind(till_key: TillKey, pc_keys: &'static [PcKey]) -> PcBinding {
    PcBinding { till_key, pc_keys }
}

/// The till key a PC key plays in the simulator, or `None` if it plays none.
///
/// Letters match in either case (`C` is Clear too), so Caps Lock does not break the layout.
pub fn till_key_from_pc(key: PcKey) -> Option<TillKey> {
    let key = match key {
        PcKey::Char(c) => PcKey::Char(c.to_ascii_lowercase()),
        other => other,
    };
    PC_KEYS
        .iter()
        .find(|binding| binding.pc_keys.contains(&key))
        .map(|binding| binding.till_key)
}

/// The help text the simulator prints: the key layout with English and Chinese key names, then
/// the manual's combos, then the timing rules. One string per line, no trailing newlines.
pub fn pc_key_help() -> Vec<String> {
    // Digits collapse into one row; every other binding gets its own.
    let mut rows: Vec<(String, String, &str)> =
        vec![("0 … 9".to_owned(), "0 … 9".to_owned(), "数字")];
    rows.extend(
        PC_KEYS
            .iter()
            .filter(|binding| !matches!(binding.till_key, TillKey::Digit(_)))
            .map(|binding| {
                let key = binding.till_key;
                (binding.label(), key.to_string(), key.name_zh())
            }),
    );
    let label_width = rows
        .iter()
        .map(|(label, _, _)| label.chars().count())
        .max()
        .unwrap_or(0);

    let mut lines = vec!["Keys (PC keyboard -> till key 按键):".to_owned()];
    lines.extend(
        rows.iter()
            .map(|(label, key, zh)| format!("  {label:<label_width$}  {key:<5}  {zh}")),
    );

    lines.push("Combos, pressed one key after another (组合键):".to_owned());
    let combo_width = COMBOS
        .iter()
        .map(|spec| spec.to_string().len())
        .max()
        .unwrap_or(0);
    let command_width = COMBOS
        .iter()
        .map(|spec| spec.command.to_string().len())
        .max()
        .unwrap_or(0);
    lines.extend(COMBOS.iter().map(|spec| {
        format!(
            "  {:<combo_width$}  {:<command_width$}  {} {}",
            spec.to_string(),
            spec.command.to_string(),
            spec.keys_zh(),
            spec.manual_zh
        )
    }));
    lines.push(format!(
        "Clear waits {CLEAR_COMBO_WINDOW_MS} ms for its second key (Clear twice clears at once); \
         F2+1+7 allows {F2_COMBO_STEP_WINDOW_MS} ms between keys."
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_brief() {
        let expect = [
            (PcKey::Char('7'), TillKey::Digit(7)),
            (PcKey::Char('.'), TillKey::Dot),
            (PcKey::Esc, TillKey::Clear),
            (PcKey::Char('c'), TillKey::Clear),
            (PcKey::Char('C'), TillKey::Clear),
            (PcKey::Backspace, TillKey::Delete),
            (PcKey::Delete, TillKey::Delete),
            (PcKey::Enter, TillKey::Enter),
            (PcKey::F(1), TillKey::F1),
            (PcKey::Char('a'), TillKey::F1),
            (PcKey::F(2), TillKey::F2),
            (PcKey::Char('S'), TillKey::F2),
            (PcKey::Up, TillKey::Up),
            (PcKey::Char('k'), TillKey::Up),
            (PcKey::Down, TillKey::Down),
            (PcKey::Char('j'), TillKey::Down),
        ];
        for (pc, till) in expect {
            assert_eq!(till_key_from_pc(pc), Some(till), "{pc:?}");
        }
        for unbound in [
            PcKey::Char('x'),
            PcKey::Char(' '),
            PcKey::Char('清'),
            PcKey::F(3),
            PcKey::F(0),
            PcKey::F(u8::MAX),
        ] {
            assert_eq!(till_key_from_pc(unbound), None, "{unbound:?}");
        }
    }

    #[test]
    fn one_row_per_key_in_order_and_no_pc_key_twice() {
        let keys: Vec<TillKey> = PC_KEYS.iter().map(|b| b.till_key).collect();
        assert_eq!(keys, TillKey::ALL);
        let all: Vec<PcKey> = PC_KEYS
            .iter()
            .flat_map(|b| b.pc_keys.iter().copied())
            .collect();
        for (i, key) in all.iter().enumerate() {
            assert!(!all.iter().skip(i + 1).any(|k| k == key), "{key:?} twice");
            if let PcKey::Char(c) = key {
                assert!(
                    !c.is_ascii_uppercase(),
                    "{key:?}: list letters in lower case"
                );
            }
        }
        for binding in PC_KEYS {
            assert!(!binding.pc_keys.is_empty(), "{binding:?}");
        }
    }

    #[test]
    fn labels() {
        let label = |key| {
            PC_KEYS
                .iter()
                .find(|b| b.till_key == key)
                .map(PcBinding::label)
        };
        assert_eq!(label(TillKey::Clear).as_deref(), Some("Esc / c"));
        assert_eq!(
            label(TillKey::Delete).as_deref(),
            Some("Backspace / Delete")
        );
        assert_eq!(label(TillKey::Digit(4)).as_deref(), Some("4"));
    }

    #[test]
    fn help_names_keys_in_both_languages_and_lists_every_combo() {
        let help = pc_key_help().join("\n");
        for word in [
            "清零", "删除", "回车", "Clear", "Del", "Enter", "Esc / c", "F2 / s",
        ] {
            assert!(help.contains(word), "{word} missing from:\n{help}");
        }
        for spec in COMBOS {
            assert!(help.contains(spec.manual_zh), "{spec} missing");
            assert!(help.contains(&spec.command.to_string()), "{spec} missing");
        }
        assert!(pc_key_help().iter().all(|line| !line.contains('\n')));
    }
}

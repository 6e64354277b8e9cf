//! Linux input-event key codes (`EV_KEY` codes from `linux/input-event-codes.h`) of the keypad.
//!
//! The till's keypad reaches Linux as a USB/matrix keyboard; its driver reads `struct input_event`
//! from evdev and looks the code up here. Kept as data so the table in the docs and the lookup
//! cannot drift apart.

use crate::TillKey;

/// Linux `EV_KEY` codes and the till key each stands for.
///
/// Several codes map to one key (top-row and keypad digits, `KEY_ESC` and `KEY_NUMLOCK` for
/// Clear, …); no code appears twice. Feed only key-press events (`value == 1`): ignore releases
/// (`0`) and autorepeats (`2`), or a held Clear would arrive as a double Clear.
pub const LINUX_KEYCODES: &[(u16, TillKey)] = &[
    (2, TillKey::Digit(1)),  // KEY_1
    (3, TillKey::Digit(2)),  // KEY_2
    (4, TillKey::Digit(3)),  // KEY_3
    (5, TillKey::Digit(4)),  // KEY_4
    (6, TillKey::Digit(5)),  // KEY_5
    (7, TillKey::Digit(6)),  // KEY_6
    (8, TillKey::Digit(7)),  // KEY_7
    (9, TillKey::Digit(8)),  // KEY_8
    (10, TillKey::Digit(9)), // KEY_9
    (11, TillKey::Digit(0)), // KEY_0
    (82, TillKey::Digit(0)), // KEY_KP0
    (79, TillKey::Digit(1)), // KEY_KP1
    (80, TillKey::Digit(2)), // KEY_KP2
    (81, TillKey::Digit(3)), // KEY_KP3
    (75, TillKey::Digit(4)), // KEY_KP4
    (76, TillKey::Digit(5)), // KEY_KP5
    (77, TillKey::Digit(6)), // KEY_KP6
    (71, TillKey::Digit(7)), // KEY_KP7
    (72, TillKey::Digit(8)), // KEY_KP8
    (73, TillKey::Digit(9)), // KEY_KP9
    (52, TillKey::Dot),      // KEY_DOT
    (83, TillKey::Dot),      // KEY_KPDOT
    (28, TillKey::Enter),    // KEY_ENTER
    (96, TillKey::Enter),    // KEY_KPENTER
    (14, TillKey::Delete),   // KEY_BACKSPACE
    (111, TillKey::Delete),  // KEY_DELETE
    (1, TillKey::Clear),     // KEY_ESC
    (69, TillKey::Clear),    // KEY_NUMLOCK
    (59, TillKey::F1),       // KEY_F1
    (60, TillKey::F2),       // KEY_F2
    (103, TillKey::Up),      // KEY_UP
    (108, TillKey::Down),    // KEY_DOWN
];

/// The till key for a Linux `EV_KEY` code, or `None` for a key the till does not use.
pub fn till_key_from_linux(code: u16) -> Option<TillKey> {
    LINUX_KEYCODES
        .iter()
        .find(|&&(c, _)| c == code)
        .map(|&(_, key)| key)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The `input-event-codes.h` name of every code in [`LINUX_KEYCODES`], in table order. Kept
    /// apart from the table so the header check below compares two independent spellings.
    pub(crate) const NAMES: [(&str, u16); 32] = [
        ("KEY_1", 2),
        ("KEY_2", 3),
        ("KEY_3", 4),
        ("KEY_4", 5),
        ("KEY_5", 6),
        ("KEY_6", 7),
        ("KEY_7", 8),
        ("KEY_8", 9),
        ("KEY_9", 10),
        ("KEY_0", 11),
        ("KEY_KP0", 82),
        ("KEY_KP1", 79),
        ("KEY_KP2", 80),
        ("KEY_KP3", 81),
        ("KEY_KP4", 75),
        ("KEY_KP5", 76),
        ("KEY_KP6", 77),
        ("KEY_KP7", 71),
        ("KEY_KP8", 72),
        ("KEY_KP9", 73),
        ("KEY_DOT", 52),
        ("KEY_KPDOT", 83),
        ("KEY_ENTER", 28),
        ("KEY_KPENTER", 96),
        ("KEY_BACKSPACE", 14),
        ("KEY_DELETE", 111),
        ("KEY_ESC", 1),
        ("KEY_NUMLOCK", 69),
        ("KEY_F1", 59),
        ("KEY_F2", 60),
        ("KEY_UP", 103),
        ("KEY_DOWN", 108),
    ];

    #[test]
    fn names_follow_the_table() {
        assert_eq!(NAMES.len(), LINUX_KEYCODES.len());
        for ((name, code), (table_code, key)) in NAMES.iter().zip(LINUX_KEYCODES) {
            assert_eq!(code, table_code, "{name}");
            let suffix = name.trim_start_matches("KEY_").trim_start_matches("KP");
            match key {
                TillKey::Digit(n) => assert_eq!(suffix, n.to_string(), "{name}"),
                _ => assert!(!suffix.chars().all(|c| c.is_ascii_digit()), "{name}"),
            }
        }
    }

    #[test]
    fn every_key_is_reachable_and_no_code_repeats() {
        for key in TillKey::ALL {
            assert!(LINUX_KEYCODES.iter().any(|&(_, k)| k == key), "{key}");
        }
        for (i, (code, _)) in LINUX_KEYCODES.iter().enumerate() {
            assert!(
                LINUX_KEYCODES.iter().skip(i + 1).all(|(c, _)| c != code),
                "code {code} repeats"
            );
        }
    }

    #[test]
    fn lookup() {
        assert_eq!(till_key_from_linux(1), Some(TillKey::Clear));
        assert_eq!(till_key_from_linux(79), Some(TillKey::Digit(1)));
        assert_eq!(till_key_from_linux(96), Some(TillKey::Enter));
        assert_eq!(till_key_from_linux(0), None); // KEY_RESERVED
        assert_eq!(till_key_from_linux(30), None); // KEY_A
        assert_eq!(till_key_from_linux(u16::MAX), None);
        for &(code, key) in LINUX_KEYCODES {
            assert_eq!(till_key_from_linux(code), Some(key));
        }
    }

    /// Cross-checks the numbers against the build machine's kernel header when it has one.
    #[test]
    fn codes_match_the_kernel_header_when_installed() {
        let path = "/usr/include/linux/input-event-codes.h";
        let Ok(header) = std::fs::read_to_string(path) else {
            eprintln!("{path} not installed; skipping the header cross-check");
            return;
        };
        for (name, code) in NAMES {
            let defined = header.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                match (words.next(), words.next(), words.next()) {
                    (Some("#define"), Some(n), Some(value)) if n == name => {
                        value.parse::<u16>().ok()
                    }
                    _ => None,
                }
            });
            assert_eq!(defined, Some(code), "{name} in {path}");
        }
    }
}

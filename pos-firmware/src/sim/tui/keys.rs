//! The simulator's keyboard: a terminal key event becomes a till key (through the PC layout of
//! `keymap`), a card tap, a scan-prompt edit or one of the simulator's own keys, depending on
//! what the screen is doing ([`UiMode`]); plus the combo hint, the poll timeout and the help
//! text for these keys. Pure functions, unit-tested here.

use std::time::Duration;

use keymap::{till_key_from_pc, PcKey, TillKey};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use shared::UnixMillis;

use super::{
    UiMode, FATAL_QUIT_KEY, HELP_KEY, MAX_POLL_MS, MIN_POLL_MS, PICK_KEY, SCAN_KEY, TAP_KEYS,
    TEAR_KEY,
};
use crate::runtime::Now;
use crate::sim::cards::WriteFault;

/// What one key press asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Quit,
    Till(TillKey),
    Tap(usize),
    OpenPrompt,
    PromptChar(char),
    PromptBackspace,
    PromptSubmit,
    PromptCancel,
    OpenPicker,
    /// Moves the picker's cursor by this many lines.
    PickerMove(isize),
    PickerChoose,
    PickerCancel,
    ArmTear,
    OpenHelp,
    CloseHelp,
    Ignore,
}

/// The PC key a terminal key code is, for `keymap::till_key_from_pc`; `None` for keys the layout
/// does not know (Tab, Home, …).
pub fn pc_key_from_crossterm(code: KeyCode) -> Option<PcKey> {
    Some(match code {
        KeyCode::Char(c) => PcKey::Char(c),
        KeyCode::Enter => PcKey::Enter,
        KeyCode::Backspace => PcKey::Backspace,
        KeyCode::Delete => PcKey::Delete,
        KeyCode::Esc => PcKey::Esc,
        KeyCode::F(n) => PcKey::F(n),
        KeyCode::Up => PcKey::Up,
        KeyCode::Down => PcKey::Down,
        _ => return None,
    })
}

/// Esc followed quickly by a key reaches us as one Alt+key event: terminals send Alt+key as
/// `ESC key`, and tmux (escape-time) or a slow link joins a real Esc with the next key the same
/// way. Esc is Clear, so Esc then 5 (Clear+5) must not be lost: such an event is split back into
/// an Esc press and the key without Alt. The simulator gives Alt no other meaning.
pub(super) fn split_escape_prefix(key: &KeyEvent) -> Option<(KeyEvent, KeyEvent)> {
    let joined = key.kind == KeyEventKind::Press
        && key.modifiers.contains(KeyModifiers::ALT)
        && !key.modifiers.contains(KeyModifiers::CONTROL);
    if !joined {
        return None;
    }
    let esc = KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE);
    let rest = KeyEvent {
        modifiers: key.modifiers.difference(KeyModifiers::ALT),
        ..*key
    };
    Some((esc, rest))
}

/// Which simulated card a key taps, if any.
pub(super) fn tap_index(code: KeyCode) -> Option<usize> {
    TAP_KEYS.iter().position(|&(f, letter)| match code {
        KeyCode::F(n) => n == f,
        KeyCode::Char(c) => c.eq_ignore_ascii_case(&letter),
        _ => false,
    })
}

/// What a key event means in `mode`. Only presses count (a release or an autorepeat of Esc would
/// be a second Clear); Ctrl-C and Ctrl-Q quit everywhere; other Ctrl/Alt chords do nothing.
pub(super) fn action_for(key: &KeyEvent, mode: UiMode) -> Action {
    if key.kind != KeyEventKind::Press {
        return Action::Ignore;
    }
    let chord = KeyModifiers::CONTROL
        | KeyModifiers::ALT
        | KeyModifiers::SUPER
        | KeyModifiers::HYPER
        | KeyModifiers::META;
    if key.modifiers.contains(KeyModifiers::CONTROL)
        && matches!(key.code, KeyCode::Char(c) if c.eq_ignore_ascii_case(&'c') || c.eq_ignore_ascii_case(&'q'))
    {
        return Action::Quit;
    }
    let plain = !key.modifiers.intersects(chord);
    match mode {
        UiMode::Fatal => match key.code {
            KeyCode::Char(c) if plain && c.eq_ignore_ascii_case(&FATAL_QUIT_KEY) => Action::Quit,
            _ => Action::Ignore,
        },
        UiMode::Help => Action::CloseHelp,
        UiMode::Picker => match key.code {
            KeyCode::Up | KeyCode::Char('k') => Action::PickerMove(-1),
            KeyCode::Down | KeyCode::Char('j') => Action::PickerMove(1),
            KeyCode::PageUp => Action::PickerMove(-10),
            KeyCode::PageDown => Action::PickerMove(10),
            KeyCode::Enter => Action::PickerChoose,
            KeyCode::Esc => Action::PickerCancel,
            _ => Action::Ignore,
        },
        UiMode::Prompt => match key.code {
            KeyCode::Enter => Action::PromptSubmit,
            KeyCode::Esc => Action::PromptCancel,
            KeyCode::Backspace => Action::PromptBackspace,
            KeyCode::Char(c) if plain => Action::PromptChar(c),
            _ => Action::Ignore,
        },
        UiMode::Selling if !plain => Action::Ignore,
        UiMode::Selling => match key.code {
            KeyCode::Char(SCAN_KEY) => Action::OpenPrompt,
            KeyCode::Char(HELP_KEY) => Action::OpenHelp,
            KeyCode::Char(c) if c.eq_ignore_ascii_case(&TEAR_KEY) => Action::ArmTear,
            KeyCode::Char(c) if c.eq_ignore_ascii_case(&PICK_KEY) => Action::OpenPicker,
            code => match tap_index(code) {
                Some(index) => Action::Tap(index),
                None => pc_key_from_crossterm(code)
                    .and_then(till_key_from_pc)
                    .map_or(Action::Ignore, Action::Till),
            },
        },
    }
}

/// The hint shown while the keymap holds a started combo, e.g. "清零+ …" or "F2+1+ …".
pub(super) fn combo_hint(prefix: &[TillKey], armed: bool) -> Option<String> {
    if !armed {
        return None;
    }
    if prefix.is_empty() {
        return Some("组合键 combo …".to_string());
    }
    let keys: Vec<&str> = prefix.iter().map(|k| k.name_zh()).collect();
    Some(format!("{}+ …", keys.join("+")))
}

/// How long to wait for a key: until the nearest deadline (the core's on the wall clock, the
/// keymap's on the monotonic one), between [`MIN_POLL_MS`] and [`MAX_POLL_MS`].
pub(super) fn poll_timeout(deadlines: (Option<UnixMillis>, Option<u64>), now: Now) -> Duration {
    let (wall, mono) = deadlines;
    let wall = wall.map(|d| d.millis_since(now.wall));
    let mono = mono.map(|d| d.saturating_sub(now.mono_ms));
    let ms = [wall, mono]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(MAX_POLL_MS);
    Duration::from_millis(ms.clamp(MIN_POLL_MS, MAX_POLL_MS))
}

/// What the tear key arms after `armed`: the classic tear first, then every other fault in
/// turn, then nothing.
pub(super) fn next_fault(armed: Option<WriteFault>) -> Option<WriteFault> {
    let order = std::iter::once(WriteFault::PulledAfterWrite).chain(
        WriteFault::ALL
            .into_iter()
            .filter(|f| *f != WriteFault::PulledAfterWrite),
    );
    match armed {
        None => Some(WriteFault::PulledAfterWrite),
        Some(fault) => order.skip_while(|f| *f != fault).nth(1),
    }
}

/// The labels of the keys that tap card `index` ("F5 z"), or blanks.
pub(super) fn tap_label(index: usize) -> String {
    match TAP_KEYS.get(index) {
        Some((f, letter)) => format!("F{f} {letter}"),
        None => String::new(),
    }
}

/// The simulator's own keys, for the full help screen.
pub(super) fn sim_key_help() -> Vec<String> {
    let fkeys = match (TAP_KEYS.first(), TAP_KEYS.last()) {
        (Some((first, _)), Some((last, _))) => format!("F{first}…F{last}"),
        _ => String::new(),
    };
    let letters: Vec<String> = TAP_KEYS.iter().map(|(_, c)| c.to_string()).collect();
    vec![
        "Simulator (模拟器):".to_string(),
        format!(
            "  {fkeys} / {}  tap simulated card 1…{} 刷卡",
            letters.join(" "),
            TAP_KEYS.len()
        ),
        format!("  {SCAN_KEY}  scan a payment code 扫码 (type it, Enter scans, Esc cancels)"),
        format!("  {PICK_KEY}  pick a payment code to scan 选码: each back-end behaviour, a virtual card"),
        "     of each demo account (answered here with --backend local, else by the daemon)"
            .to_string(),
        format!("  {TEAR_KEY}  tear the next card write 拔卡: pulled-after-write; again: the next fault"),
        format!("     ({}), then none", fault_names()),
        format!("  {HELP_KEY}  this help 帮助"),
        "  Ctrl-C / Ctrl-Q  quit 退出".to_string(),
    ]
}

/// The faults the tear key steps through, in its order.
pub(super) fn fault_names() -> String {
    let mut names = Vec::new();
    let mut fault = next_fault(None);
    while let Some(f) = fault {
        names.push(f.name());
        fault = next_fault(Some(f));
    }
    names.join(", ")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use keymap::PC_KEYS;

    pub(in crate::sim::tui) fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    pub(in crate::sim::tui) fn with(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn crossterm_keys_translate_to_pc_keys() {
        let cases = [
            (KeyCode::Char('7'), Some(PcKey::Char('7'))),
            (KeyCode::Char('.'), Some(PcKey::Char('.'))),
            (KeyCode::Char('C'), Some(PcKey::Char('C'))),
            (KeyCode::Enter, Some(PcKey::Enter)),
            (KeyCode::Backspace, Some(PcKey::Backspace)),
            (KeyCode::Delete, Some(PcKey::Delete)),
            (KeyCode::Esc, Some(PcKey::Esc)),
            (KeyCode::F(1), Some(PcKey::F(1))),
            (KeyCode::F(2), Some(PcKey::F(2))),
            (KeyCode::Up, Some(PcKey::Up)),
            (KeyCode::Down, Some(PcKey::Down)),
            (KeyCode::Tab, None),
            (KeyCode::Home, None),
            (KeyCode::Left, None),
            (KeyCode::Null, None),
        ];
        for (code, expected) in cases {
            assert_eq!(pc_key_from_crossterm(code), expected, "{code:?}");
        }
        // And through the keymap: the keys the brief's check presses.
        let till = |code| action_for(&press(code), UiMode::Selling);
        assert_eq!(till(KeyCode::Char('1')), Action::Till(TillKey::Digit(1)));
        assert_eq!(till(KeyCode::Char('.')), Action::Till(TillKey::Dot));
        assert_eq!(till(KeyCode::Enter), Action::Till(TillKey::Enter));
        assert_eq!(till(KeyCode::Esc), Action::Till(TillKey::Clear));
        assert_eq!(till(KeyCode::Char('c')), Action::Till(TillKey::Clear));
        assert_eq!(till(KeyCode::Char('C')), Action::Till(TillKey::Clear));
        assert_eq!(till(KeyCode::Backspace), Action::Till(TillKey::Delete));
        assert_eq!(till(KeyCode::F(2)), Action::Till(TillKey::F2));
        assert_eq!(till(KeyCode::Char('s')), Action::Till(TillKey::F2));
        assert_eq!(till(KeyCode::Tab), Action::Ignore);
        assert_eq!(
            action_for(
                &with(KeyCode::Char('1'), KeyModifiers::SHIFT),
                UiMode::Selling
            ),
            Action::Till(TillKey::Digit(1)),
            "shift is not a chord (keypad digits, Caps Lock)"
        );
    }

    #[test]
    fn esc_joined_with_the_next_key_is_split_again() {
        let joined = with(KeyCode::Char('5'), KeyModifiers::ALT);
        let (esc, rest) = split_escape_prefix(&joined).expect("split");
        assert_eq!(
            action_for(&esc, UiMode::Selling),
            Action::Till(TillKey::Clear)
        );
        assert_eq!(
            action_for(&rest, UiMode::Selling),
            Action::Till(TillKey::Digit(5))
        );
        let (_, rest) =
            split_escape_prefix(&with(KeyCode::Enter, KeyModifiers::ALT)).expect("split");
        assert_eq!(
            action_for(&rest, UiMode::Selling),
            Action::Till(TillKey::Enter),
            "Clear+Enter"
        );
        assert_eq!(split_escape_prefix(&press(KeyCode::Char('5'))), None);
        assert_eq!(
            split_escape_prefix(&with(
                KeyCode::Char('c'),
                KeyModifiers::CONTROL | KeyModifiers::ALT
            )),
            None
        );
        let mut released = joined;
        released.kind = KeyEventKind::Release;
        assert_eq!(split_escape_prefix(&released), None);
    }

    #[test]
    fn only_presses_count() {
        for kind in [KeyEventKind::Release, KeyEventKind::Repeat] {
            let mut key = press(KeyCode::Esc);
            key.kind = kind;
            for mode in [UiMode::Selling, UiMode::Prompt, UiMode::Help, UiMode::Fatal] {
                assert_eq!(action_for(&key, mode), Action::Ignore, "{kind:?} {mode:?}");
            }
        }
    }

    #[test]
    fn ctrl_c_and_ctrl_q_quit_everywhere_and_other_chords_do_nothing() {
        for mode in [UiMode::Selling, UiMode::Prompt, UiMode::Help, UiMode::Fatal] {
            for c in ['c', 'C', 'q', 'Q'] {
                assert_eq!(
                    action_for(&with(KeyCode::Char(c), KeyModifiers::CONTROL), mode),
                    Action::Quit,
                    "{c} {mode:?}"
                );
            }
        }
        // Ctrl-C must not be read as `c` = Clear.
        assert_eq!(
            action_for(
                &with(KeyCode::Char('1'), KeyModifiers::ALT),
                UiMode::Selling
            ),
            Action::Ignore
        );
        assert_eq!(
            action_for(
                &with(KeyCode::Char('z'), KeyModifiers::CONTROL),
                UiMode::Selling
            ),
            Action::Ignore
        );
        assert_eq!(
            action_for(
                &with(KeyCode::Char('x'), KeyModifiers::CONTROL),
                UiMode::Prompt
            ),
            Action::Ignore
        );
        assert_eq!(
            action_for(&press(KeyCode::Char('q')), UiMode::Selling),
            Action::Ignore,
            "q alone does not quit a till"
        );
    }

    #[test]
    fn simulator_keys() {
        let act = |code| action_for(&press(code), UiMode::Selling);
        for (i, (f, letter)) in TAP_KEYS.iter().enumerate() {
            assert_eq!(act(KeyCode::F(*f)), Action::Tap(i));
            assert_eq!(act(KeyCode::Char(*letter)), Action::Tap(i));
            assert_eq!(
                act(KeyCode::Char(letter.to_ascii_uppercase())),
                Action::Tap(i)
            );
        }
        assert_eq!(act(KeyCode::Char('/')), Action::OpenPrompt);
        assert_eq!(act(KeyCode::Char('r')), Action::ArmTear);
        assert_eq!(act(KeyCode::Char('R')), Action::ArmTear);
        assert_eq!(act(KeyCode::Char('?')), Action::OpenHelp);
        assert_eq!(act(KeyCode::Char('p')), Action::OpenPicker);

        let pick = |code| action_for(&press(code), UiMode::Picker);
        assert_eq!(pick(KeyCode::Down), Action::PickerMove(1));
        assert_eq!(pick(KeyCode::Char('k')), Action::PickerMove(-1));
        assert_eq!(pick(KeyCode::Enter), Action::PickerChoose);
        assert_eq!(pick(KeyCode::Esc), Action::PickerCancel);
        assert_eq!(
            pick(KeyCode::Char('5')),
            Action::Ignore,
            "no till key while picking"
        );

        let prompt = |code| action_for(&press(code), UiMode::Prompt);
        assert_eq!(
            prompt(KeyCode::Char('c')),
            Action::PromptChar('c'),
            "letters are typed, not Clear"
        );
        assert_eq!(
            prompt(KeyCode::Char('z')),
            Action::PromptChar('z'),
            "nor taps"
        );
        assert_eq!(prompt(KeyCode::Enter), Action::PromptSubmit);
        assert_eq!(prompt(KeyCode::Esc), Action::PromptCancel);
        assert_eq!(prompt(KeyCode::Backspace), Action::PromptBackspace);
        assert_eq!(prompt(KeyCode::F(5)), Action::Ignore);

        assert_eq!(
            action_for(&press(KeyCode::Char('1')), UiMode::Help),
            Action::CloseHelp
        );
        assert_eq!(
            action_for(&press(KeyCode::Char('q')), UiMode::Fatal),
            Action::Quit
        );
        assert_eq!(
            action_for(&press(KeyCode::Char('Q')), UiMode::Fatal),
            Action::Quit
        );
        for code in [
            KeyCode::Char('1'),
            KeyCode::Enter,
            KeyCode::Esc,
            KeyCode::F(5),
            KeyCode::Char('z'),
        ] {
            assert_eq!(
                action_for(&press(code), UiMode::Fatal),
                Action::Ignore,
                "{code:?}: no sales after a fatal error"
            );
        }
    }

    #[test]
    fn simulator_keys_are_not_till_keys() {
        let mut ours: Vec<PcKey> = vec![];
        for (f, letter) in TAP_KEYS {
            ours.push(PcKey::F(f));
            ours.push(PcKey::Char(letter));
            ours.push(PcKey::Char(letter.to_ascii_uppercase()));
        }
        for c in [SCAN_KEY, TEAR_KEY, HELP_KEY, FATAL_QUIT_KEY, PICK_KEY] {
            ours.push(PcKey::Char(c));
            ours.push(PcKey::Char(c.to_ascii_uppercase()));
        }
        for key in &ours {
            assert_eq!(till_key_from_pc(*key), None, "{key:?} is a till key");
            assert!(!PC_KEYS.iter().any(|b| b.pc_keys.contains(key)), "{key:?}");
        }
        let mut letters: Vec<char> = TAP_KEYS.iter().map(|(_, c)| *c).collect();
        letters.extend([SCAN_KEY, TEAR_KEY, HELP_KEY, PICK_KEY]);
        let count = letters.len();
        letters.sort_unstable();
        letters.dedup();
        assert_eq!(letters.len(), count, "a simulator key is used twice");
    }

    #[test]
    fn poll_timeout_follows_the_nearest_deadline() {
        let now = Now {
            wall: UnixMillis(1_000_000),
            mono_ms: 5_000,
        };
        let ms = |d: (Option<UnixMillis>, Option<u64>)| poll_timeout(d, now).as_millis();
        assert_eq!(ms((None, None)), u128::from(MAX_POLL_MS));
        assert_eq!(ms((None, Some(5_100))), 100);
        assert_eq!(ms((Some(UnixMillis(1_000_040)), Some(5_100))), 40);
        assert_eq!(ms((Some(UnixMillis(1_000_040)), None)), 40);
        assert_eq!(
            ms((Some(UnixMillis(9_000_000)), Some(u64::MAX))),
            u128::from(MAX_POLL_MS)
        );
        assert_eq!(
            ms((Some(UnixMillis(0)), None)),
            u128::from(MIN_POLL_MS),
            "overdue: soon, never a spin"
        );
        assert_eq!(
            ms((Some(UnixMillis(i64::MIN)), Some(0))),
            u128::from(MIN_POLL_MS)
        );
    }

    #[test]
    fn combo_hints() {
        assert_eq!(
            combo_hint(&[TillKey::Clear], true).as_deref(),
            Some("清零+ …")
        );
        assert_eq!(
            combo_hint(&[TillKey::F2, TillKey::Digit(1)], true).as_deref(),
            Some("F2+1+ …")
        );
        assert_eq!(combo_hint(&[TillKey::Clear], false), None);
        assert!(combo_hint(&[], true).is_some());
    }
}

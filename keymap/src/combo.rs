//! The combo engine: a small sans-IO state machine turning [`TillKey`] presses into [`Command`]s.
//!
//! It exists because the manual's combos (`Clear+…`, `F2+1+7`) make the meaning of a key depend on
//! the key before it and on time. Time is an input (`now_ms`, a monotonic millisecond count); the
//! detector never reads a clock, so drivers, the simulator and tests all drive it the same way:
//! call [`ComboDetector::press`] for each key, and [`ComboDetector::tick`] at
//! [`ComboDetector::deadline_ms`].

use std::fmt;

use crate::{Command, RecentSlot, TillKey};

/// How long a lone Clear stays armed waiting for its second key, in milliseconds.
///
/// A second key at `armed_at + CLEAR_COMBO_WINDOW_MS - 1` still forms a combo; at
/// `armed_at + CLEAR_COMBO_WINDOW_MS` the window has passed and the Clear is emitted on its own.
pub const CLEAR_COMBO_WINDOW_MS: u64 = 1_000;

/// The longest gap allowed between F2 and 1, and between 1 and 7, in milliseconds (same
/// half-open rule as [`CLEAR_COMBO_WINDOW_MS`]).
pub const F2_COMBO_STEP_WINDOW_MS: u64 = 2_000;

/// The most commands one [`ComboDetector::press`] or [`ComboDetector::tick`] can return: a timed
/// out combo flushed by a late press, plus the press's own command.
pub const MAX_COMMANDS_PER_CALL: usize = 2;

/// One combo of the till's manual (section 三): the keys, pressed one after another, and the
/// command they produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComboSpec {
    /// The keys in order, first key first.
    pub keys: &'static [TillKey],
    /// What the detector emits on the last key.
    pub command: Command,
    /// The manual's own description of the combo.
    pub manual_zh: &'static str,
}

impl ComboSpec {
    /// The keys in Chinese, as the manual writes them: `清零+1`, `F2+1+7`.
    pub fn keys_zh(&self) -> String {
        join_keys(self.keys, TillKey::name_zh)
    }
}

/// The keys joined with `+`: `Clear+1`, `Clear+Enter`, `F2+1+7`.
impl fmt::Display for ComboSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&join_keys(self.keys, |k| k.to_string()))
    }
}

fn join_keys<S: AsRef<str>>(keys: &[TillKey], name: impl Fn(TillKey) -> S) -> String {
    keys.iter()
        .map(|&k| name(k).as_ref().to_owned())
        .collect::<Vec<_>>()
        .join("+")
}

/// Every combo of the manual's table, in the manual's order.
///
/// This is reference data (for help screens and docs); the detector's behaviour is checked
/// against it by tests. Double Clear and the timeouts are not in the manual and so not listed.
pub const COMBOS: &[ComboSpec] = &[
    ComboSpec {
        keys: &[TillKey::Clear, TillKey::Digit(1)],
        command: Command::ShowRecentAmount(RecentSlot::ThirdLast),
        manual_zh: "查看倒数第三笔交易额",
    },
    ComboSpec {
        keys: &[TillKey::Clear, TillKey::Digit(2)],
        command: Command::ShowRecentAmount(RecentSlot::SecondLast),
        manual_zh: "查看倒数第二笔交易额",
    },
    ComboSpec {
        keys: &[TillKey::Clear, TillKey::Digit(3)],
        command: Command::ShowRecentAmount(RecentSlot::Last),
        manual_zh: "查看倒数第一笔交易额",
    },
    ComboSpec {
        keys: &[TillKey::Clear, TillKey::Digit(5)],
        command: Command::ShowTodayTotal,
        manual_zh: "查看日累",
    },
    ComboSpec {
        keys: &[TillKey::Clear, TillKey::Digit(6)],
        command: Command::ShowMealTotal,
        manual_zh: "查看餐累",
    },
    ComboSpec {
        keys: &[TillKey::Clear, TillKey::Digit(7)],
        command: Command::ToggleOffline,
        manual_zh: "将 POS 机设为脱机模式",
    },
    ComboSpec {
        keys: &[TillKey::Clear, TillKey::Digit(8)],
        command: Command::ShowMachineInfo,
        manual_zh: "查看 POS 机机号和版本号",
    },
    ComboSpec {
        keys: &[TillKey::Clear, TillKey::Digit(9)],
        command: Command::BrowseJournal,
        manual_zh: "查看 POS 机流水明细",
    },
    ComboSpec {
        keys: &[TillKey::Clear, TillKey::Digit(0)],
        command: Command::ShowClock,
        manual_zh: "查看 POS 机时间",
    },
    ComboSpec {
        keys: &[TillKey::Clear, TillKey::Enter],
        command: Command::EnterFixedPrice,
        manual_zh: "将 POS 机设置为定额",
    },
    ComboSpec {
        keys: &[TillKey::Clear, TillKey::Delete],
        command: Command::LeaveFixedPrice,
        manual_zh: "取消 POS 机定额模式",
    },
    ComboSpec {
        keys: &[TillKey::F2, TillKey::Digit(1), TillKey::Digit(7)],
        command: Command::SetMachineNumber,
        manual_zh: "设置 POS 机机号",
    },
];

/// The commands one call of [`ComboDetector::press`] or [`ComboDetector::tick`] returns: zero, one
/// or two ([`MAX_COMMANDS_PER_CALL`]), in the order the core must apply them. No heap.
#[derive(Clone, Copy)]
pub struct Commands {
    /// Slots `len..` hold an arbitrary filler and are never exposed.
    buf: [Command; MAX_COMMANDS_PER_CALL],
    /// Always `<= MAX_COMMANDS_PER_CALL`: only [`Commands::from_parts`] builds values.
    len: u8,
}

impl Commands {
    /// No commands.
    pub const EMPTY: Commands = Commands {
        buf: [Command::Clear; MAX_COMMANDS_PER_CALL],
        len: 0,
    };

    /// `first` then `second`, skipping whichever is `None`.
    const fn from_parts(first: Option<Command>, second: Option<Command>) -> Commands {
        match (first, second) {
            (None, None) => Commands::EMPTY,
            (Some(only), None) | (None, Some(only)) => Commands {
                buf: [only; MAX_COMMANDS_PER_CALL],
                len: 1,
            },
            (Some(first), Some(second)) => Commands {
                buf: [first, second],
                len: 2,
            },
        }
    }

    /// The commands, in order.
    pub fn as_slice(&self) -> &[Command] {
        // `len <= MAX_COMMANDS_PER_CALL` always holds, so `get` never falls back.
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// How many commands there are (0, 1 or 2).
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether there are no commands.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Iterates over the commands, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Command> {
        self.as_slice().iter()
    }
}

impl Default for Commands {
    fn default() -> Self {
        Commands::EMPTY
    }
}

impl PartialEq for Commands {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Commands {}

impl std::hash::Hash for Commands {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl fmt::Debug for Commands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// The commands separated by single spaces (nothing for none), as scenario files write them.
impl fmt::Display for Commands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, command) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{command}")?;
        }
        Ok(())
    }
}

impl IntoIterator for Commands {
    type Item = Command;
    type IntoIter = std::iter::Take<std::array::IntoIter<Command, MAX_COMMANDS_PER_CALL>>;

    fn into_iter(self) -> Self::IntoIter {
        self.buf.into_iter().take(usize::from(self.len))
    }
}

impl<'a> IntoIterator for &'a Commands {
    type Item = &'a Command;
    type IntoIter = std::slice::Iter<'a, Command>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Which combo the detector has started and is waiting to complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pending {
    /// Clear was pressed; waiting up to [`CLEAR_COMBO_WINDOW_MS`] for the second key.
    Clear,
    /// F2 was pressed; waiting up to [`F2_COMBO_STEP_WINDOW_MS`] for 1.
    F2,
    /// F2 then 1 were pressed; waiting up to [`F2_COMBO_STEP_WINDOW_MS`] for 7.
    F2Then1,
}

impl Pending {
    /// What the detector emits when this pending combo times out: a lone Clear is just a Clear,
    /// a half-entered staff sequence is reported as [`Command::InvalidCombo`].
    pub const fn timeout_command(self) -> Command {
        match self {
            Pending::Clear => Command::Clear,
            Pending::F2 | Pending::F2Then1 => Command::InvalidCombo,
        }
    }

    /// How long this step waits for its next key, in milliseconds.
    pub const fn window_ms(self) -> u64 {
        match self {
            Pending::Clear => CLEAR_COMBO_WINDOW_MS,
            Pending::F2 | Pending::F2Then1 => F2_COMBO_STEP_WINDOW_MS,
        }
    }
}

/// A started combo and the moment it times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Armed {
    pending: Pending,
    /// First `now_ms` at which the step has timed out (`armed_at + window`, saturating).
    deadline_ms: u64,
}

/// The combo state machine. See the crate docs for the full behaviour table.
///
/// ```
/// use keymap::{Command, ComboDetector, RecentSlot, TillKey, CLEAR_COMBO_WINDOW_MS};
///
/// let mut detector = ComboDetector::new();
/// assert!(detector.press(TillKey::Clear, 0).is_empty()); // armed, nothing yet
/// assert_eq!(detector.deadline_ms(), Some(CLEAR_COMBO_WINDOW_MS));
/// let out = detector.press(TillKey::Digit(3), 400);
/// assert_eq!(out.as_slice(), [Command::ShowRecentAmount(RecentSlot::Last)]);
///
/// detector.press(TillKey::Clear, 5_000);
/// assert!(detector.tick(5_999).is_empty());
/// assert_eq!(detector.tick(6_000).as_slice(), [Command::Clear]); // the window passed
/// assert!(!detector.is_armed());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComboDetector {
    /// The started combo, if any. `deadline_ms()` is `Some` exactly when this is.
    armed: Option<Armed>,
    /// The latest `now_ms` seen; earlier times are clamped to it ("no time passed").
    latest_ms: u64,
}

impl ComboDetector {
    /// A detector with no combo started, at time 0.
    pub const fn new() -> Self {
        Self {
            armed: None,
            latest_ms: 0,
        }
    }

    /// Feeds one key press at `now_ms` and returns what the core must do, in order.
    ///
    /// If a started combo's deadline has passed (`now_ms >= deadline`) because `tick` was not
    /// called in time, its timeout command comes first, then the key is handled as if no combo
    /// had been started. `Digit(n)` with `n > 9` names no real key and is ignored.
    pub fn press(&mut self, key: TillKey, now_ms: u64) -> Commands {
        let now_ms = self.observe(now_ms);
        let timed_out = self.expire(now_ms);
        let from_key = if key.is_valid() {
            self.step(key, now_ms)
        } else {
            None
        };
        Commands::from_parts(timed_out, from_key)
    }

    /// Fires the started combo's timeout if `now_ms` has reached its deadline.
    ///
    /// Calling it early, late, often or never changes only *when* a timeout is reported, never
    /// *what* is reported: a press after the deadline reports it too.
    pub fn tick(&mut self, now_ms: u64) -> Commands {
        let now_ms = self.observe(now_ms);
        Commands::from_parts(self.expire(now_ms), None)
    }

    /// When [`tick`](Self::tick) next has something to do; `None` when no combo is started.
    ///
    /// A driver can sleep until this instant (or until the next key) and then call `tick`.
    pub fn deadline_ms(&self) -> Option<u64> {
        self.armed.map(|armed| armed.deadline_ms)
    }

    /// Whether a combo is started and waiting for its next key.
    pub fn is_armed(&self) -> bool {
        self.armed.is_some()
    }

    /// Which combo is started, if any (for example to show "清零+" on the display).
    pub fn pending(&self) -> Option<Pending> {
        self.armed.map(|armed| armed.pending)
    }

    /// Records `now_ms` and returns the time to use: never earlier than any time seen before.
    fn observe(&mut self, now_ms: u64) -> u64 {
        self.latest_ms = self.latest_ms.max(now_ms);
        self.latest_ms
    }

    /// Disarms and returns the timeout command if the started combo's deadline has been reached.
    fn expire(&mut self, now_ms: u64) -> Option<Command> {
        match self.armed {
            Some(armed) if now_ms >= armed.deadline_ms => {
                self.armed = None;
                Some(armed.pending.timeout_command())
            }
            _ => None,
        }
    }

    fn arm(&mut self, pending: Pending, now_ms: u64) {
        self.armed = Some(Armed {
            pending,
            deadline_ms: now_ms.saturating_add(pending.window_ms()),
        });
    }

    /// Handles a valid key with no timed-out combo left. Every path either arms (returning
    /// `None`) or ends disarmed.
    fn step(&mut self, key: TillKey, now_ms: u64) -> Option<Command> {
        let Some(armed) = self.armed.take() else {
            return match key {
                TillKey::Clear => {
                    self.arm(Pending::Clear, now_ms);
                    None
                }
                TillKey::F2 => {
                    self.arm(Pending::F2, now_ms);
                    None
                }
                TillKey::Digit(n) => Some(Command::Digit(n)),
                TillKey::Dot => Some(Command::Dot),
                TillKey::Delete => Some(Command::Delete),
                TillKey::Enter => Some(Command::Enter),
                TillKey::F1 => Some(Command::F1),
                TillKey::Up => Some(Command::Up),
                TillKey::Down => Some(Command::Down),
            };
        };
        match (armed.pending, key) {
            (Pending::Clear, second) => Some(clear_combo_command(second)),
            (Pending::F2, TillKey::Digit(1)) => {
                self.arm(Pending::F2Then1, now_ms);
                None
            }
            (Pending::F2Then1, TillKey::Digit(7)) => Some(Command::SetMachineNumber),
            (Pending::F2 | Pending::F2Then1, _) => Some(Command::InvalidCombo),
        }
    }
}

/// What `Clear` followed by `second` (within the window) means.
const fn clear_combo_command(second: TillKey) -> Command {
    match second {
        TillKey::Digit(1) => Command::ShowRecentAmount(RecentSlot::ThirdLast),
        TillKey::Digit(2) => Command::ShowRecentAmount(RecentSlot::SecondLast),
        TillKey::Digit(3) => Command::ShowRecentAmount(RecentSlot::Last),
        TillKey::Digit(5) => Command::ShowTodayTotal,
        TillKey::Digit(6) => Command::ShowMealTotal,
        TillKey::Digit(7) => Command::ToggleOffline,
        TillKey::Digit(8) => Command::ShowMachineInfo,
        TillKey::Digit(9) => Command::BrowseJournal,
        TillKey::Digit(0) => Command::ShowClock,
        TillKey::Enter => Command::EnterFixedPrice,
        TillKey::Delete => Command::LeaveFixedPrice,
        // Double Clear: clear at once instead of waiting for the window.
        TillKey::Clear => Command::Clear,
        TillKey::Digit(_)
        | TillKey::Dot
        | TillKey::F1
        | TillKey::F2
        | TillKey::Up
        | TillKey::Down => Command::InvalidCombo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Presses `keys` one millisecond apart from time 0 and returns every command emitted.
    fn press_all(keys: &[TillKey]) -> Vec<Vec<Command>> {
        let mut detector = ComboDetector::new();
        (0u64..)
            .zip(keys)
            .map(|(t, &key)| detector.press(key, t).as_slice().to_vec())
            .collect()
    }

    #[test]
    fn every_manual_combo_produces_its_command_on_the_last_key_only() {
        assert_eq!(COMBOS.len(), 12, "the manual lists twelve combos");
        for spec in COMBOS {
            assert!(spec.keys.len() >= 2, "{spec:?}");
            let outputs = press_all(spec.keys);
            let (last, before) = outputs.split_last().expect("checked non-empty above");
            assert!(before.iter().all(Vec::is_empty), "{spec}: {outputs:?}");
            assert_eq!(last, &[spec.command], "{spec}");
        }
    }

    #[test]
    fn every_combo_result_except_invalid_is_in_the_manual_table_once() {
        for command in Command::ALL.into_iter().filter(|c| c.is_combo_result()) {
            let rows = COMBOS.iter().filter(|s| s.command == command).count();
            let expected = usize::from(command != Command::InvalidCombo);
            assert_eq!(rows, expected, "{command}");
        }
    }

    #[test]
    fn combo_spec_text_forms() {
        let texts: Vec<(String, String)> = COMBOS
            .iter()
            .map(|s| (s.to_string(), s.keys_zh()))
            .collect();
        assert!(texts.contains(&("Clear+Enter".into(), "清零+回车".into())));
        assert!(texts.contains(&("Clear+Del".into(), "清零+删除".into())));
        assert!(texts.contains(&("F2+1+7".into(), "F2+1+7".into())));
    }

    #[test]
    fn plain_keys_map_one_to_one() {
        let keys = [
            TillKey::Digit(1),
            TillKey::Digit(2),
            TillKey::Dot,
            TillKey::Digit(5),
            TillKey::Digit(0),
            TillKey::Delete,
            TillKey::Enter,
            TillKey::Up,
            TillKey::Down,
            TillKey::F1,
        ];
        let expected: Vec<Vec<Command>> = [
            Command::Digit(1),
            Command::Digit(2),
            Command::Dot,
            Command::Digit(5),
            Command::Digit(0),
            Command::Delete,
            Command::Enter,
            Command::Up,
            Command::Down,
            Command::F1,
        ]
        .map(|c| vec![c])
        .to_vec();
        assert_eq!(press_all(&keys), expected);
    }

    #[test]
    fn invalid_digits_are_ignored_in_every_state() {
        let mut detector = ComboDetector::new();
        assert!(detector.press(TillKey::Digit(10), 0).is_empty());
        assert!(!detector.is_armed());
        for (arm, pending) in [
            (&[TillKey::Clear][..], Pending::Clear),
            (&[TillKey::F2][..], Pending::F2),
            (&[TillKey::F2, TillKey::Digit(1)][..], Pending::F2Then1),
        ] {
            let mut detector = ComboDetector::new();
            for &key in arm {
                detector.press(key, 0);
            }
            let before = detector.clone();
            assert!(detector.press(TillKey::Digit(255), 1).is_empty());
            assert_eq!(detector.pending(), Some(pending));
            assert_eq!(detector.deadline_ms(), before.deadline_ms());
        }
    }

    #[test]
    fn invalid_digit_after_a_missed_deadline_still_flushes_the_timeout() {
        let mut detector = ComboDetector::new();
        detector.press(TillKey::Clear, 0);
        let out = detector.press(TillKey::Digit(42), CLEAR_COMBO_WINDOW_MS);
        assert_eq!(out.as_slice(), [Command::Clear]);
        assert!(!detector.is_armed());
    }

    #[test]
    fn deadlines_saturate_at_the_end_of_time() {
        let mut detector = ComboDetector::new();
        assert!(detector.press(TillKey::Clear, u64::MAX - 1).is_empty());
        assert_eq!(detector.deadline_ms(), Some(u64::MAX));
        assert_eq!(detector.tick(u64::MAX).as_slice(), [Command::Clear]);
        // At the end of time a new combo times out at once: it is armed with deadline == now.
        assert!(detector.press(TillKey::F2, u64::MAX).is_empty());
        assert_eq!(detector.deadline_ms(), Some(u64::MAX));
        assert_eq!(detector.tick(0).as_slice(), [Command::InvalidCombo]);
    }

    #[test]
    fn commands_container_behaviour() {
        let none = Commands::from_parts(None, None);
        let one = Commands::from_parts(None, Some(Command::Dot));
        let two = Commands::from_parts(Some(Command::Clear), Some(Command::Digit(1)));
        assert_eq!(none, Commands::default());
        assert!(none.is_empty() && none.as_slice().is_empty() && none.to_string().is_empty());
        assert_eq!(none.len(), 0);
        assert_eq!(one, Commands::from_parts(Some(Command::Dot), None));
        assert_eq!(one.as_slice(), [Command::Dot]);
        assert_eq!(two.len(), 2);
        assert_eq!(two.to_string(), "Clear Digit(1)");
        assert_eq!(format!("{two:?}"), "[Clear, Digit(1)]");
        assert_eq!(two.into_iter().collect::<Vec<_>>(), two.as_slice());
        assert_eq!((&two).into_iter().count(), 2);
        // Filler slots do not take part in equality.
        let filler_differs = Commands {
            buf: [Command::Dot, Command::F1],
            len: 1,
        };
        assert_eq!(filler_differs, one);
    }

    // ---- properties -------------------------------------------------------------------------

    #[derive(Debug, Clone, Copy)]
    enum Op {
        Press(TillKey),
        Tick,
    }

    /// Keys including the odd invalid digit, weighted towards the combo keys.
    fn any_key() -> impl Strategy<Value = TillKey> {
        prop_oneof![
            4 => prop::sample::select(TillKey::ALL.to_vec()),
            2 => Just(TillKey::Clear),
            1 => Just(TillKey::F2),
            1 => Just(TillKey::Digit(1)),
            1 => Just(TillKey::Digit(7)),
            1 => (10u8..=u8::MAX).prop_map(TillKey::Digit),
        ]
    }

    /// How the clock moves between two calls.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Forward(u64),
        Back(u64),
        JumpTo(u64),
    }

    /// Absolute times: mostly small forward steps around the windows, sometimes backwards,
    /// sometimes anywhere, sometimes near or at the end of time.
    fn any_times(len: usize) -> impl Strategy<Value = Vec<u64>> {
        prop::collection::vec(
            prop_oneof![
                8 => (0u64..2_500).prop_map(Step::Forward),
                1 => (1u64..3_000).prop_map(Step::Back),
                1 => any::<u64>().prop_map(Step::JumpTo),
                1 => (u64::MAX - 5_000..=u64::MAX).prop_map(Step::JumpTo),
            ],
            len,
        )
        .prop_map(|steps| {
            let mut t = 0u64;
            steps
                .into_iter()
                .map(|step| {
                    t = match step {
                        Step::Forward(d) => t.saturating_add(d),
                        Step::Back(d) => t.saturating_sub(d),
                        Step::JumpTo(at) => at,
                    };
                    t
                })
                .collect()
        })
    }

    fn any_run() -> impl Strategy<Value = Vec<(Op, u64)>> {
        (0usize..60).prop_flat_map(|len| {
            (
                prop::collection::vec(
                    prop_oneof![4 => any_key().prop_map(Op::Press), 1 => Just(Op::Tick)],
                    len,
                ),
                any_times(len),
            )
                .prop_map(|(ops, times)| ops.into_iter().zip(times).collect())
        })
    }

    fn apply(detector: &mut ComboDetector, op: Op, t: u64) -> Commands {
        match op {
            Op::Press(key) => detector.press(key, t),
            Op::Tick => detector.tick(t),
        }
    }

    /// The run with every time replaced by the latest time so far.
    fn monotone(run: &[(Op, u64)]) -> Vec<(Op, u64)> {
        let mut latest = 0u64;
        run.iter()
            .map(|&(op, t)| {
                latest = latest.max(t);
                (op, latest)
            })
            .collect()
    }

    /// Every command a run emits, with a final `tick(u64::MAX)` flushing what is left.
    fn stream(run: &[(Op, u64)]) -> Vec<Command> {
        let mut detector = ComboDetector::new();
        let mut out: Vec<Command> = run
            .iter()
            .flat_map(|&(op, t)| apply(&mut detector, op, t))
            .collect();
        out.extend(detector.tick(u64::MAX));
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn every_call_is_bounded_and_keeps_the_invariants(run in any_run()) {
            let mut detector = ComboDetector::new();
            let mut latest = 0u64;
            for (op, t) in run {
                let deadline_before = detector.deadline_ms();
                let out = apply(&mut detector, op, t);
                latest = latest.max(t);
                prop_assert!(out.len() <= MAX_COMMANDS_PER_CALL);
                prop_assert_eq!(detector.deadline_ms().is_some(), detector.is_armed());
                prop_assert_eq!(detector.pending().is_some(), detector.is_armed());
                if let Some(deadline) = detector.deadline_ms() {
                    // Still armed: the deadline lies at or after the effective now.
                    prop_assert!(deadline >= latest);
                    if deadline == latest {
                        // Only possible when the window saturated at the end of time.
                        prop_assert_eq!(latest, u64::MAX);
                    }
                }
                // Exact accounting: a call emits the timeout of a started combo iff its deadline
                // has been reached, then one command per valid key unless the key (re)armed.
                let flushed = deadline_before.is_some_and(|d| latest >= d);
                if flushed {
                    prop_assert!(matches!(
                        out.iter().next(),
                        Some(Command::Clear | Command::InvalidCombo)
                    ));
                }
                match op {
                    Op::Tick => {
                        prop_assert_eq!(out.len(), usize::from(flushed));
                        prop_assert!(!(flushed && detector.is_armed()));
                    }
                    Op::Press(key) if key.is_valid() => {
                        let armed = detector.is_armed();
                        prop_assert_eq!(out.len(), usize::from(flushed) + usize::from(!armed));
                        if armed {
                            prop_assert!(matches!(
                                key,
                                TillKey::Clear | TillKey::F2 | TillKey::Digit(1)
                            ));
                        }
                    }
                    Op::Press(_) => {
                        // An invalid key is ignored: only the timeout may fire.
                        prop_assert_eq!(out.len(), usize::from(flushed));
                        if !flushed {
                            prop_assert_eq!(detector.deadline_ms(), deadline_before);
                        }
                    }
                }
            }
            let _ = detector.tick(u64::MAX);
            prop_assert!(!detector.is_armed());
            prop_assert_eq!(detector.deadline_ms(), None);
        }

        #[test]
        fn ticks_change_when_not_what(run in any_run()) {
            // With a clock that never goes back, the same presses with every tick removed emit
            // the same commands in the same order. (When the clock goes back, a tick matters: it
            // has raised the detector's clock, which the next property pins down.)
            let run = monotone(&run);
            let presses_only: Vec<(Op, u64)> =
                run.iter().copied().filter(|(op, _)| matches!(op, Op::Press(_))).collect();
            prop_assert_eq!(stream(&run), stream(&presses_only));
        }

        #[test]
        fn time_going_backwards_is_no_time_passing(run in any_run()) {
            // Replacing every time by the running maximum changes nothing.
            let clamped = monotone(&run);
            let mut a = ComboDetector::new();
            let mut b = ComboDetector::new();
            for (&(op, t), &(_, t_clamped)) in run.iter().zip(&clamped) {
                prop_assert_eq!(apply(&mut a, op, t), apply(&mut b, op, t_clamped));
                prop_assert_eq!(&a, &b);
            }
        }

        #[test]
        fn without_combo_keys_every_press_maps_one_to_one(
            keys in prop::collection::vec(
                prop::sample::select(
                    TillKey::ALL
                        .into_iter()
                        .filter(|k| !matches!(k, TillKey::Clear | TillKey::F2))
                        .collect::<Vec<_>>(),
                ),
                0..40,
            ),
            times in any_times(40),
        ) {
            let mut detector = ComboDetector::new();
            for (key, t) in keys.into_iter().zip(times) {
                let out = detector.press(key, t);
                prop_assert_eq!(out.to_string(), key_command_name(key));
                prop_assert!(!detector.is_armed());
            }
        }
    }

    /// The command text a plain key maps to, written independently of the detector.
    fn key_command_name(key: TillKey) -> String {
        match key {
            TillKey::Digit(n) => format!("Digit({n})"),
            TillKey::Dot => "Dot".into(),
            TillKey::Delete => "Delete".into(),
            TillKey::Enter => "Enter".into(),
            TillKey::F1 => "F1".into(),
            TillKey::Up => "Up".into(),
            TillKey::Down => "Down".into(),
            TillKey::Clear | TillKey::F2 => "(combo key)".into(),
        }
    }
}

//! The driver loop around the pure core: feeds it keys (through the keymap's combo detector),
//! card reads, scanned codes and time; carries out its effects in order (journal appends made
//! durable before anything else, card writes, journal look-ups, beeps); and reports what the
//! outside world should see. The simulator (TUI and headless script) and the device binary all
//! drive the till through this one loop, so they behave the same.

use keymap::{ComboDetector, TillKey};
use shared::record::{JournalRecord, RecordBody};
use shared::UnixMillis;
use std::path::Path;

use crate::core::card::{CardRead, CardWrite, CardWriteOutcome, IssueOutcome};
use crate::core::config::TillConfig;
use crate::core::{Beep, BrowseDirection, Displays, Effect, Till};
use crate::journal::{Direction, Journal, JournalError};

/// The card reader as the runtime needs it: write the card that is on the reader, or format
/// the blank card on it as a campus wallet.
pub trait CardWriter {
    fn write_card(&mut self, write: &CardWrite) -> CardWriteOutcome;
    fn issue_card(&mut self) -> IssueOutcome;
}

/// An instant as the runtime needs it: wall time for the core and the journal, a monotonic
/// count for key-combo timing (which must not jump with the wall clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub wall: UnixMillis,
    pub mono_ms: u64,
}

/// Something from the outside world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Key(TillKey),
    Card(CardRead),
    Code(String),
    /// Nothing happened but time passed (timers).
    Tick,
}

/// Something the outside world should see or hear, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The displays changed (only sent when they did).
    Displays(Displays),
    Beep(Beep),
    /// A record became durable.
    Journaled(JournalRecord),
}

/// Why the till must stop selling.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Config(#[from] crate::core::config::ConfigError),
}

/// The till with its keymap and journal, driven by inputs.
pub struct TillRuntime {
    till: Till,
    keys: ComboDetector,
    journal: Journal,
    shown: Option<Displays>,
}

impl TillRuntime {
    /// Opens the journal in `journal_dir` and starts the till from its snapshot.
    pub fn open(
        journal_dir: &Path,
        config: TillConfig,
        now: Now,
    ) -> Result<TillRuntime, RuntimeError> {
        config.validate()?;
        let journal = Journal::open(journal_dir)?;
        let till = Till::new(
            config,
            journal.terminal_id(),
            journal.snapshot().clone(),
            now.wall,
        );
        Ok(TillRuntime {
            till,
            keys: ComboDetector::new(),
            journal,
            shown: None,
        })
    }

    pub fn till(&self) -> &Till {
        &self.till
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// When the runtime next needs a [`Input::Tick`], as (wall deadline of the core, monotonic
    /// deadline of the keymap).
    pub fn deadlines(&self) -> (Option<UnixMillis>, Option<u64>) {
        (self.till.next_deadline(), self.keys.deadline_ms())
    }

    /// The earliest of both deadlines, on the monotonic clock of `now` (the core's wall-clock
    /// deadline is converted by its distance from `now.wall`). Front ends that run a clock of
    /// their own sleep until this and then feed [`Input::Tick`].
    pub fn next_deadline_mono(&self, now: Now) -> Option<u64> {
        let (wall, mono) = self.deadlines();
        let wall_in_mono = wall.map(|d| now.mono_ms.saturating_add(d.millis_since(now.wall)));
        [wall_in_mono, mono].into_iter().flatten().min()
    }

    /// Whether the keymap is holding a started combo (Clear or F2 pressed, second key awaited).
    pub fn combo_armed(&self) -> bool {
        self.keys.is_armed()
    }

    /// Feeds one input and carries out everything it causes. An error means the journal cannot
    /// be trusted: the caller must stop selling and show the error.
    pub fn handle(
        &mut self,
        input: Input,
        now: Now,
        reader: &mut dyn CardWriter,
    ) -> Result<Vec<Output>, RuntimeError> {
        let mut outputs = Vec::new();
        match input {
            Input::Key(key) => {
                for command in self.keys.press(key, now.mono_ms) {
                    self.till.handle_command(command, now.wall);
                    self.run_effects(now, reader, &mut outputs)?;
                }
            }
            Input::Card(read) => {
                let known = match &read {
                    CardRead::Card(card) => self.journal.card_counter(&card.uid)?,
                    CardRead::Unreadable(_) => None,
                };
                self.till.handle_card(read, known, now.wall);
            }
            Input::Code(code) => self.till.handle_code(&code, now.wall),
            Input::Tick => {
                for command in self.keys.tick(now.mono_ms) {
                    self.till.handle_command(command, now.wall);
                    self.run_effects(now, reader, &mut outputs)?;
                }
                self.till.handle_tick(now.wall);
            }
        }
        self.run_effects(now, reader, &mut outputs)?;
        // Drawn only now, after every effect (and so every journal append) has run.
        self.refresh(&mut outputs);
        Ok(outputs)
    }

    /// The displays as they are now (e.g. for the first frame).
    pub fn displays(&self) -> Displays {
        self.till.displays()
    }

    fn refresh(&mut self, outputs: &mut Vec<Output>) {
        let displays = self.till.displays();
        if self.shown.as_ref() != Some(&displays) {
            self.shown = Some(displays.clone());
            outputs.push(Output::Displays(displays));
        }
    }

    fn run_effects(
        &mut self,
        now: Now,
        reader: &mut dyn CardWriter,
        outputs: &mut Vec<Output>,
    ) -> Result<(), RuntimeError> {
        while let Some(effect) = self.till.poll_effect() {
            match effect {
                Effect::Journal { record, snapshot } => {
                    self.journal.append(&record, &snapshot)?;
                    outputs.push(Output::Journaled(record));
                }
                Effect::WriteCard(write) => {
                    // Show "charging, keep the card still" while the (slow) write runs.
                    self.refresh(outputs);
                    let outcome = reader.write_card(&write);
                    self.till.handle_card_written(outcome, now.wall);
                }
                Effect::FindSale { from, direction } => {
                    let direction = match direction {
                        BrowseDirection::Older => Direction::Older,
                        BrowseDirection::Newer => Direction::Newer,
                    };
                    let found = self.journal.find(from, direction, |record| {
                        matches!(record.body, RecordBody::SaleCommitted(_))
                    })?;
                    self.till.handle_sale_found(found, now.wall);
                }
                Effect::IssueCard => {
                    self.refresh(outputs);
                    let outcome = reader.issue_card();
                    self.till.handle_card_issued(outcome, now.wall);
                }
                Effect::RememberCard { uid, counter } => {
                    self.journal.remember_card_counter(&uid, counter)?;
                }
                Effect::Beep(beep) => outputs.push(Output::Beep(beep)),
            }
        }
        Ok(())
    }
}

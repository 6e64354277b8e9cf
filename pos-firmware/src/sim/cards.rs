//! Simulated campus cards for the terminal simulator: a few named cards whose wallets persist in
//! `sim-cards.toml` in the data directory, and a reader that writes them with the same contract
//! as real hardware (refuse when the card changed since the read, report "unknown" when the card
//! was pulled away mid-write). Faults can be armed to rehearse torn writes.

use serde::{Deserialize, Serialize};
use shared::record::TxnTag;
use shared::{CardUid, Fen};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::core::card::{
    CardImage, CardProblem, CardRead, CardWrite, CardWriteOutcome, IssueOutcome, IssueRefusal,
};
use crate::runtime::CardWriter;

/// The name of the simulated cards' file inside the data directory.
pub const SIM_CARDS_FILE: &str = "sim-cards.toml";

/// One simulated card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCard {
    pub name: String,
    pub uid: CardUid,
    pub balance: Fen,
    pub counter: u32,
    pub last_tag: TxnTag,
    /// False for a card of another system (a bus card, say): the till must refuse it.
    pub campus: bool,
}

impl SimCard {
    pub fn image(&self) -> CardImage {
        CardImage {
            uid: self.uid,
            balance: self.balance,
            counter: self.counter,
            last_tag: self.last_tag,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CardsFile {
    card: Vec<CardFile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CardFile {
    name: String,
    uid: String,
    balance: String,
    counter: u32,
    last_tag: u32,
    campus: bool,
}

/// The cards a fresh simulator starts with.
pub fn default_cards() -> Vec<SimCard> {
    let card = |name: &str, uid: &[u8], yuan: u64, campus: bool| SimCard {
        name: name.to_string(),
        uid: CardUid::new(uid).expect("literal UIDs have valid lengths"),
        balance: Fen::from_yuan(yuan),
        counter: 0,
        last_tag: TxnTag(0),
        campus,
    };
    vec![
        card("card-1", &[0x1A, 0x2B, 0x3C, 0x4D], 100, true),
        card(
            "card-2",
            &[0x04, 0x52, 0x61, 0x7A, 0x8B, 0x9C, 0x80],
            50,
            true,
        ),
        card("card-3", &[0x5E, 0x6F, 0x70, 0x81], 3, true),
        card("bus-card", &[0x99, 0x88, 0x77, 0x66], 20, false),
    ]
}

/// A fault to inject into the next card write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// The card leaves before the write reaches it: unchanged, outcome unknown.
    PulledBeforeWrite,
    /// The write reaches the card, but the card leaves before the answer: changed, outcome unknown.
    PulledAfterWrite,
    /// The reader refuses the write cleanly: unchanged, outcome refused.
    Refused,
}

/// Where the simulator stops dead (for the kill tests): it prints a marker line and sleeps until
/// killed, so a test can SIGKILL the till at an exact point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PausePoint {
    /// The sale's intent is durable, the card not written yet.
    BeforeCardWrite,
    /// The card holds the debit, the commit is not journaled yet.
    AfterCardWrite,
}

/// The simulated cards and the reader they are tapped on.
#[derive(Debug)]
pub struct SimCards {
    path: Option<PathBuf>,
    cards: Vec<SimCard>,
    on_reader: Option<usize>,
    fault: Option<WriteFault>,
    pause: Option<PausePoint>,
}

/// Why the cards file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SimCardsError {
    #[error("{path}: {detail}")]
    Invalid { path: String, detail: String },
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
}

impl SimCards {
    /// Cards kept only in memory.
    pub fn in_memory(cards: Vec<SimCard>) -> SimCards {
        SimCards {
            path: None,
            cards,
            on_reader: None,
            fault: None,
            pause: None,
        }
    }

    /// Loads `<dir>/sim-cards.toml`, creating it with [`default_cards`] when missing.
    pub fn open(dir: &Path) -> Result<SimCards, SimCardsError> {
        let path = dir.join(SIM_CARDS_FILE);
        let shown = path.display().to_string();
        let io = |error| SimCardsError::Io {
            path: shown.clone(),
            error,
        };
        let cards = match fs::read_to_string(&path) {
            Ok(text) => parse_cards(&text).map_err(|detail| SimCardsError::Invalid {
                path: shown.clone(),
                detail,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => default_cards(),
            Err(e) => return Err(io(e)),
        };
        let store = SimCards {
            path: Some(path),
            cards,
            on_reader: None,
            fault: None,
            pause: None,
        };
        store.save().map_err(io)?;
        Ok(store)
    }

    pub fn cards(&self) -> &[SimCard] {
        &self.cards
    }

    pub fn by_name(&self, name: &str) -> Option<&SimCard> {
        self.cards.iter().find(|c| {
            c.name.eq_ignore_ascii_case(name) || c.uid.to_string().eq_ignore_ascii_case(name)
        })
    }

    /// Puts card number `index` on the reader and reads it.
    pub fn tap(&mut self, index: usize) -> Option<CardRead> {
        let card = self.cards.get(index)?;
        self.on_reader = Some(index);
        Some(if card.campus {
            CardRead::Card(card.image())
        } else {
            CardRead::Unreadable(CardProblem::NotCampusCard)
        })
    }

    /// Taps the card called `name` (or with that UID in hex).
    pub fn tap_named(&mut self, name: &str) -> Option<CardRead> {
        let index = self.cards.iter().position(|c| {
            c.name.eq_ignore_ascii_case(name) || c.uid.to_string().eq_ignore_ascii_case(name)
        })?;
        self.tap(index)
    }

    /// Arms a fault for the next write.
    pub fn arm_fault(&mut self, fault: WriteFault) {
        self.fault = Some(fault);
    }

    pub fn armed_fault(&self) -> Option<WriteFault> {
        self.fault
    }

    /// Makes the process stop dead at `point` of the next sale (kill tests).
    pub fn pause_at(&mut self, point: PausePoint) {
        self.pause = Some(point);
    }

    fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = CardsFile {
            card: self
                .cards
                .iter()
                .map(|c| CardFile {
                    name: c.name.clone(),
                    uid: c.uid.to_string(),
                    balance: c.balance.to_string(),
                    counter: c.counter,
                    last_tag: c.last_tag.0,
                    campus: c.campus,
                })
                .collect(),
        };
        let text = toml::to_string(&file).map_err(std::io::Error::other)?;
        // Write-then-rename so a crash leaves the old or the new file, never half of one: the
        // simulated cards must keep their money across a kill just like real ones.
        let tmp = path.with_extension("toml.tmp");
        let mut out = File::create(&tmp)?;
        out.write_all(
            b"# Simulated campus cards (balances in yuan). Edit while the simulator is stopped.\n",
        )?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn stop_dead(point: PausePoint) -> ! {
        println!("PAUSED {point:?}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

impl CardWriter for SimCards {
    fn write_card(&mut self, write: &CardWrite) -> CardWriteOutcome {
        if self.pause == Some(PausePoint::BeforeCardWrite) {
            SimCards::stop_dead(PausePoint::BeforeCardWrite);
        }
        let Some(index) = self
            .on_reader
            .filter(|&i| self.cards.get(i).is_some_and(|c| c.uid == write.uid))
        else {
            return CardWriteOutcome::Unknown; // that card is not on the reader any more
        };
        let fault = self.fault.take();
        if fault == Some(WriteFault::Refused) {
            return CardWriteOutcome::Refused;
        }
        if fault == Some(WriteFault::PulledBeforeWrite) {
            self.on_reader = None;
            return CardWriteOutcome::Unknown;
        }
        let card = &mut self.cards[index];
        if card.counter != write.counter_before {
            return CardWriteOutcome::Refused;
        }
        let before = card.clone();
        card.balance = write.new_balance;
        card.counter = write.new_counter;
        card.last_tag = write.tag;
        let image = card.image();
        if self.save().is_err() {
            // The simulated card could not keep the write: it stays as it was, as if pulled away.
            self.cards[index] = before;
            return CardWriteOutcome::Unknown;
        }
        if self.pause == Some(PausePoint::AfterCardWrite) {
            SimCards::stop_dead(PausePoint::AfterCardWrite);
        }
        if fault == Some(WriteFault::PulledAfterWrite) {
            self.on_reader = None;
            return CardWriteOutcome::Unknown;
        }
        CardWriteOutcome::Written(image)
    }

    fn issue_card(&mut self) -> IssueOutcome {
        match self.on_reader.and_then(|i| self.cards.get(i)) {
            None => IssueOutcome::NotIssued(IssueRefusal::NoCard),
            Some(card) if card.campus => IssueOutcome::NotIssued(IssueRefusal::AlreadyIssued),
            Some(_) => IssueOutcome::NotIssued(IssueRefusal::NotBlank),
        }
    }
}

fn parse_cards(text: &str) -> Result<Vec<SimCard>, String> {
    let file: CardsFile = toml::from_str(text).map_err(|e| e.to_string())?;
    file.card
        .into_iter()
        .map(|c| {
            Ok(SimCard {
                uid: CardUid::parse_hex(&c.uid).map_err(|e| format!("card {}: {e}", c.name))?,
                balance: Fen::parse_yuan(&c.balance)
                    .map_err(|e| format!("card {}: balance: {e}", c.name))?,
                name: c.name,
                counter: c.counter,
                last_tag: TxnTag(c.last_tag),
                campus: c.campus,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_for(card: &SimCard, amount: u64) -> CardWrite {
        CardWrite {
            uid: card.uid,
            counter_before: card.counter,
            new_counter: card.counter + 1,
            new_balance: Fen::new(card.balance.get() - amount),
            tag: TxnTag(7),
        }
    }

    #[test]
    fn cards_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut cards = SimCards::open(dir.path()).unwrap();
        cards.tap(0);
        let write = write_for(&cards.cards()[0], 150);
        assert!(matches!(
            cards.write_card(&write),
            CardWriteOutcome::Written(_)
        ));
        let again = SimCards::open(dir.path()).unwrap();
        assert_eq!(again.cards()[0].balance, Fen::new(10_000 - 150));
        assert_eq!(again.cards()[0].counter, 1);
    }

    #[test]
    fn faults_behave_like_a_pulled_card() {
        let mut cards = SimCards::in_memory(default_cards());
        cards.tap(0);
        let write = write_for(&cards.cards()[0], 100);
        cards.arm_fault(WriteFault::PulledBeforeWrite);
        assert_eq!(cards.write_card(&write), CardWriteOutcome::Unknown);
        assert_eq!(cards.cards()[0].counter, 0);
        cards.tap(0);
        cards.arm_fault(WriteFault::PulledAfterWrite);
        assert_eq!(cards.write_card(&write), CardWriteOutcome::Unknown);
        assert_eq!(cards.cards()[0].counter, 1);
        cards.tap(0);
        assert_eq!(
            cards.write_card(&write),
            CardWriteOutcome::Refused,
            "stale counter"
        );
    }

    #[test]
    fn a_foreign_card_is_unreadable() {
        let mut cards = SimCards::in_memory(default_cards());
        assert_eq!(
            cards.tap_named("bus-card"),
            Some(CardRead::Unreadable(CardProblem::NotCampusCard))
        );
        assert!(cards.tap_named("nope").is_none());
    }

    #[test]
    fn a_broken_cards_file_is_refused() {
        assert!(parse_cards(
            "[[card]]\nname=\"x\"\nuid=\"zz\"\nbalance=\"1\"\ncounter=0\nlast_tag=0\ncampus=true"
        )
        .is_err());
        assert!(parse_cards("nonsense").is_err());
    }
}

//! The issue's exhaustive proof that a card write can fail anywhere without losing or doubling
//! money: the whole till (the real [`TillRuntime`] and its sled journal on disk) over the real
//! card stack ([`WalletReader`] → [`Mfrc522Reader`] → the `mfrc522` crate → the emulated
//! MFRC522 and Mifare Classic card), for a sale's debit and a card-centre top-up, 4- and 7-byte
//! UIDs, a fault at every card operation the till makes (every block write × every
//! [`WriteFault`], every authentication, every read, the reader dying at each of them, the card
//! leaving after each exchange, and the same again on the fresh-session paths a bad read opens),
//! with and without a till restart between the fault and the next tap, with the till's power cut
//! at the fault itself (its process unwinds in the middle of the card operation, before the
//! outcome is handled, and it restarts from the journal), and with the card used at another
//! till in between or not. After the fault the merchant's screen is checked, then
//! the card goes back and the test does what the till asks until the money has moved, and
//! checks the card against the journal:
//! - every card state is decoded from the emulated card's raw blocks (wallet layout + demo
//!   keys), independently of the reader path, after every step; a tap's image must equal it;
//! - committed ⇔ the card holds that write, aborted ⇔ it never did, in doubt only when the card
//!   was used elsewhere (whether the write landed is counted per case);
//! - exactly one debit (or load) is committed, the card's counter only ever steps by one, and
//!   its balance change is exactly the committed amounts + the other till's debit + the writes
//!   the server settles (in doubt);
//! - the journal audit: contiguous seqs, each intent resolved at most once and by its own kind,
//!   nothing unresolved at the end, the snapshot's pending lists equal the unresolved intents;
//! - a debit card then restored to its earlier blocks is refused at the next tap (a
//!   `CardAnomaly`, no intent), with and without a restart.
//!
//! Also here, on the same whole-till rig: a dead reader is a reader fault and never settles a
//! write; a card above the card centre's balance cap pays but takes no top-up; a torn debit or
//! top-up whose card never returns goes in doubt after the age limit and is not charged again
//! when the card does return; an interrupted card issue whose writes landed is journaled once
//! at the re-tap (a fault at every operation of the issue).
//!
//! Fault points are counted from fault-free dry runs through the emulator's counters, never
//! hard-coded. The test prints the case count and breakdown (`--nocapture`).
//!
//! The files: `rig.rs` the whole-till rigs ([`TillRig`], [`DebitRig`]) and card helpers,
//! `audit.rs` the journal audit, `exhaustive.rs` the matrix of every fault, `directed.rs` the
//! directed cases, `issue.rs` the interrupted card issue.
//!
//! In these files `unwrap`/`expect` are assertions: where one fails, the test fails.

#[path = "../common/mod.rs"]
mod common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use embedded_hal::spi::{ErrorType, Operation as SpiOperation, SpiDevice};
use keymap::TillKey;
use pos_firmware::core::card::{CardImage, CardProblem, CardRead, CardWrite, CardWriteOutcome};
use pos_firmware::core::cardcentre::MAX_CARD_BALANCE;
use pos_firmware::core::config::TillConfig;
use pos_firmware::core::{Beep, MESSAGE_SHOW_MS, UNRESOLVED_MAX_AGE_MS};
use pos_firmware::journal::Journal;
use pos_firmware::reader::driver::{Mfrc522Reader, ReaderOptions};
use pos_firmware::reader::emulator::{
    EmulatedCard, EmulatedMfrc522, EmulatedSpiError, EmulatorControl, Fault, Op, OpCounters,
    ReadFault, WriteFault,
};
use pos_firmware::runtime::{Input, Now, Output, TillRuntime};
use pos_firmware::wallet::layout::{
    choose_slot, decode_header, decode_slot, CardSerial, Slot, SlotState,
    CARD_FORMAT_MAX_BALANCE_FEN, HEADER_BLOCK, TRAILER_BLOCK,
};
use pos_firmware::wallet::{WalletConfig, WalletReader};
use shared::record::{InDoubtReason, JournalRecord, RecordBody, TxnTag};
use shared::{CardUid, Fen, Seq, UnixMillis};

/// The balance the test cards are issued with (¥100).
const OPENING_FEN: u64 = 10_000;
/// The sale: ¥5, typed as "5".
const SALE_FEN: u64 = 500;
const SALE_KEYS: [u8; 1] = [5];
/// The top-up: ¥50, typed as "50".
const LOAD_FEN: u64 = 5_000;
const LOAD_KEYS: [u8; 2] = [5, 0];
/// The debit another till makes when the card is used elsewhere.
const OTHER_TILL_DEBIT_FEN: u64 = 300;
const OTHER_TILL_TAG: TxnTag = TxnTag(0x07E4_0001);
/// The staff PIN of `TillConfig::default()`.
const STAFF_PIN: [u8; 6] = [1, 2, 3, 4, 5, 6];
/// Time between two inputs: inside every key-combo window.
const STEP_MS: u64 = 200;
/// Inputs the test may make after the fault before the money must have moved.
const FOLLOW_STEPS_MAX: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Debit,
    Load,
}

impl Operation {
    fn amount(self) -> Fen {
        Fen::new(match self {
            Operation::Debit => SALE_FEN,
            Operation::Load => LOAD_FEN,
        })
    }

    /// The card's balance after this operation from `before`.
    fn after(self, before: Fen) -> Option<Fen> {
        match self {
            Operation::Debit => before.checked_sub(self.amount()),
            Operation::Load => before.checked_add(self.amount()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextTap {
    /// The same card comes straight back to this till.
    Same,
    /// The card pays at another till first (a legit debit there), then comes back.
    UsedElsewhere,
}

/// What strikes during the faulted tap, indexes relative to the operation counters at the
/// moment the card is tapped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Injection {
    faults: Vec<Fault>,
    /// The card leaves the field once this many exchanges (selects, authentications, reads,
    /// writes) have completed.
    leave_after_exchanges: Option<u32>,
}

fn exchanges(c: &OpCounters) -> u32 {
    c.selects + c.auths + c.reads + c.writes
}

/// Moves a fault's index by `base` (the counters when the case's tap starts).
fn shifted(fault: Fault, base: &OpCounters) -> Fault {
    match fault {
        Fault::Write { write_index, fault } => Fault::Write {
            write_index: write_index + base.writes,
            fault,
        },
        Fault::AuthFails { auth_index } => Fault::AuthFails {
            auth_index: auth_index + base.auths,
        },
        Fault::Read { read_index, fault } => Fault::Read {
            read_index: read_index + base.reads,
            fault,
        },
        Fault::ReaderDies {
            op,
            index,
            reads_as,
        } => Fault::ReaderDies {
            op,
            index: index
                + match op {
                    Op::Auth => base.auths,
                    Op::Read => base.reads,
                    Op::Write => base.writes,
                },
            reads_as,
        },
    }
}

mod audit;
mod directed;
mod exhaustive;
mod issue;
mod rig;

use audit::*;
use common::{journal, Till};
use exhaustive::*;
use rig::*;

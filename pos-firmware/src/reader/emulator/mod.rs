//! An emulated MFRC522 reader chip with Mifare Classic 1K cards, behind the real
//! `embedded_hal::spi::SpiDevice` trait, so the real `mfrc522` driver (and our
//! [`super::driver::Mfrc522Reader`] on top of it) runs unchanged in tests and in the terminal
//! simulator. [`EmulatorControl`] is the other side: put cards in the field and take them away,
//! inspect or forge blocks, and inject [`Fault`]s keyed on operation indexes. Everything is
//! deterministic: no clock, no randomness.
//!
//! Layout: `chip` (registers, FIFO, commands), `field` (card slot, fault application, counters),
//! `card` (ISO 14443-3 + Mifare Classic state machine), `frame` (what goes over the air), `access` (access conditions), `faults`.

pub mod access;
pub mod card;
mod chip;
pub mod faults;
mod field;
pub mod frame;

use std::sync::{Arc, Mutex, MutexGuard};

use embedded_hal::spi::{ErrorKind, ErrorType, Operation, SpiDevice};

pub use access::KeyType;
pub use card::{CardState, EmulatedCard};
pub use faults::{Fault, Op, OpCounters, ReadFault, WriteFault};

use super::Block;
use chip::Chip;
use field::Field;

/// VersionReg of a genuine MFRC522 v2.0, what the emulator reports unless told otherwise.
pub const EMULATED_VERSION: u8 = 0x92;

/// Misuse of the emulator's control API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmulatorError {
    #[error("the emulator emulates 4- and 7-byte UIDs, not {0}-byte ones")]
    UnsupportedUidLength(usize),
    #[error("a Mifare Classic 1K has no block {0}")]
    NoSuchBlock(u8),
    #[error("no card in the field")]
    NoCard,
}

/// The emulated SPI bus error (only a poisoned lock, after a panic elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("emulated MFRC522 state poisoned by an earlier panic")]
pub struct EmulatedSpiError;

impl embedded_hal::spi::Error for EmulatedSpiError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

#[derive(Debug)]
struct Emulator {
    chip: Chip,
    field: Field,
}

/// The emulated chip as an SPI device: hand it to the driver.
#[derive(Debug, Clone)]
pub struct EmulatedMfrc522 {
    shared: Arc<Mutex<Emulator>>,
}

impl ErrorType for EmulatedMfrc522 {
    type Error = EmulatedSpiError;
}

impl SpiDevice for EmulatedMfrc522 {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Self::Error> {
        let mut emulator = self.shared.lock().map_err(|_| EmulatedSpiError)?;
        let Emulator { chip, field } = &mut *emulator;
        chip.transaction(field, operations);
        Ok(())
    }
}

/// The test's and simulator's handle on the emulated world. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EmulatorControl {
    shared: Arc<Mutex<Emulator>>,
}

impl Default for EmulatorControl {
    fn default() -> Self {
        EmulatorControl::new()
    }
}

impl EmulatorControl {
    /// A powered chip reporting [`EMULATED_VERSION`], an empty field, no faults.
    pub fn new() -> EmulatorControl {
        EmulatorControl::with_version(EMULATED_VERSION)
    }

    /// A chip reporting `version` in VersionReg (clones, wrong chips).
    pub fn with_version(version: u8) -> EmulatorControl {
        EmulatorControl {
            shared: Arc::new(Mutex::new(Emulator {
                chip: Chip::new(version),
                field: Field::default(),
            })),
        }
    }

    /// The SPI device to give the driver.
    pub fn device(&self) -> EmulatedMfrc522 {
        EmulatedMfrc522 {
            shared: Arc::clone(&self.shared),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Emulator> {
        // A poisoned lock only means a test panicked while holding it; the state is still
        // what it was, and the test is failing anyway.
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts `card` into the field (replacing any card there); it powers up in IDLE.
    pub fn place_card(&self, card: EmulatedCard) {
        self.lock().field.place(card);
    }

    /// Takes the card out of the field; if a fault already took it, returns that one.
    pub fn remove_card(&self) -> Option<EmulatedCard> {
        let mut emulator = self.lock();
        emulator
            .field
            .card
            .take()
            .or_else(|| emulator.field.removed.take())
    }

    /// Puts back the card a fault (or [`Self::remove_card`]) took away: a fresh tap.
    pub fn return_card(&self) -> Result<(), EmulatorError> {
        let mut emulator = self.lock();
        let card = emulator.field.removed.take().ok_or(EmulatorError::NoCard)?;
        emulator.field.place(card);
        Ok(())
    }

    /// A copy of the card in the field, else of the card a fault took away.
    pub fn card(&self) -> Option<EmulatedCard> {
        let emulator = self.lock();
        emulator
            .field
            .card
            .clone()
            .or_else(|| emulator.field.removed.clone())
    }

    /// The card is in the field.
    pub fn card_in_field(&self) -> bool {
        self.lock().field.card.is_some()
    }

    /// A block of [`Self::card`].
    pub fn block(&self, block: u8) -> Option<Block> {
        self.card()?.block(block)
    }

    /// Overwrites a block of the card in the field (or the removed one): replay, forgery.
    pub fn set_block(&self, block: u8, data: Block) -> Result<(), EmulatorError> {
        self.with_card(|card| card.set_block(block, data))
    }

    /// Runs `change` on the card in the field, else on the removed one.
    pub fn with_card<T>(
        &self,
        change: impl FnOnce(&mut EmulatedCard) -> Result<T, EmulatorError>,
    ) -> Result<T, EmulatorError> {
        let mut emulator = self.lock();
        let field = &mut emulator.field;
        match field.card.as_mut().or(field.removed.as_mut()) {
            Some(card) => change(card),
            None => Err(EmulatorError::NoCard),
        }
    }

    /// Adds a fault to strike when its operation comes.
    pub fn inject(&self, fault: Fault) {
        self.lock().field.faults.inject(fault);
    }

    /// Faults that have not struck yet.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.lock().field.faults.pending().to_vec()
    }

    /// Removes all pending faults.
    pub fn clear_faults(&self) {
        self.lock().field.faults.clear();
    }

    /// Kills the chip now (`Some(0x00)` / `Some(0xFF)`: what every SPI byte reads as) or
    /// revives it (`None`; its registers are as the dead chip left them).
    pub fn set_reader_dead(&self, reads_as: Option<u8>) {
        self.lock().field.reader_dead = reads_as;
    }

    /// Operation and SPI counters since the emulator was made.
    pub fn counters(&self) -> OpCounters {
        self.lock().field.counters
    }

    /// The chip's Crypto1 unit is on.
    pub fn crypto_on(&self) -> bool {
        self.lock().chip.crypto_on()
    }

    /// The protocol state of the card in the field.
    pub fn card_state(&self) -> Option<CardState> {
        self.lock().field.card.as_ref().map(EmulatedCard::state)
    }
}

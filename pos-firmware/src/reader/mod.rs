//! The card reader at the level the wallet needs: select a Mifare Classic card in the field,
//! authenticate a sector with key A, read and write 16-byte blocks. The MFRC522 driver (over real
//! spidev, or over the emulated chip in tests and the simulator) implements [`MifareReader`]; the
//! wallet logic is written against this trait only, so it behaves the same on both.

use shared::CardUid;

/// A Mifare Classic sector key (key A).
pub type SectorKey = [u8; 6];
/// One Mifare Classic block.
pub type Block = [u8; 16];

/// A card the reader selected (anticollision done, the card is in the ACTIVE state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TappedCard {
    /// 4-byte (single size) or 7-byte (double size) UID.
    pub uid: CardUid,
    /// The card's SAK (0x08 for Mifare Classic 1K).
    pub sak: u8,
}

/// Why an exchange with the card failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardIoError {
    /// The card did not answer in time: it left the field, or it is not there.
    #[error("no answer from the card")]
    NoCard,
    /// The card answered with a NAK (the 4-bit code is kept).
    #[error("the card refused the command (NAK {0:#x})")]
    Nak(u8),
    /// The sector key did not authenticate.
    #[error("authentication failed")]
    AuthFailed,
    /// The answer was garbled: bad CRC, parity, bit count or a collision.
    #[error("garbled answer from the card: {0}")]
    Garbled(&'static str),
    /// The reader chip itself failed: SPI error, no answer from the chip, wrong version.
    #[error("card reader fault: {0}")]
    Reader(String),
}

/// Why a block write failed, split by what it means for the block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// Failed before any data reached the card (the write command itself was refused or
    /// unanswered): the block is unchanged.
    #[error("block not written: {0}")]
    NotWritten(CardIoError),
    /// Failed after the data was sent: the block may hold the old data, the new data, or a
    /// torn mix. Only a fresh read can tell.
    #[error("block write interrupted: {0}")]
    MaybeWritten(CardIoError),
}

impl WriteError {
    /// The failed exchange, whichever side of the data it came.
    pub fn cause(&self) -> &CardIoError {
        match self {
            WriteError::NotWritten(e) | WriteError::MaybeWritten(e) => e,
        }
    }
}

/// A Mifare Classic reader. Every call is bounded in time: a dead reader or a card that left
/// gives an error, never a hang.
pub trait MifareReader {
    /// Looks for a card in the field (REQA) and selects it; `Ok(None)` when there is none.
    fn select(&mut self) -> Result<Option<TappedCard>, CardIoError>;
    /// Like [`MifareReader::select`] but with WUPA, which also wakes a card halted at the end of
    /// an earlier exchange while it stayed on the reader (the card centre issues the blank card
    /// its tap just read).
    fn wake(&mut self) -> Result<Option<TappedCard>, CardIoError>;
    /// Authenticates the sector holding `block` with key A.
    fn authenticate(
        &mut self,
        card: &TappedCard,
        block: u8,
        key: &SectorKey,
    ) -> Result<(), CardIoError>;
    /// Reads one block of the authenticated sector.
    fn read_block(&mut self, block: u8) -> Result<Block, CardIoError>;
    /// Writes one block of the authenticated sector; success means the card ACKed the data.
    fn write_block(&mut self, block: u8, data: &Block) -> Result<(), WriteError>;
    /// Ends the exchange: halts the card and switches the reader's crypto off.
    fn release(&mut self) -> Result<(), CardIoError>;
}

/// A boxed reader reads like the reader in it (the device loop holds its real or emulated
/// reader as one boxed type).
impl<R: MifareReader + ?Sized> MifareReader for Box<R> {
    fn select(&mut self) -> Result<Option<TappedCard>, CardIoError> {
        (**self).select()
    }
    fn wake(&mut self) -> Result<Option<TappedCard>, CardIoError> {
        (**self).wake()
    }
    fn authenticate(
        &mut self,
        card: &TappedCard,
        block: u8,
        key: &SectorKey,
    ) -> Result<(), CardIoError> {
        (**self).authenticate(card, block, key)
    }
    fn read_block(&mut self, block: u8) -> Result<Block, CardIoError> {
        (**self).read_block(block)
    }
    fn write_block(&mut self, block: u8, data: &Block) -> Result<(), WriteError> {
        (**self).write_block(block, data)
    }
    fn release(&mut self) -> Result<(), CardIoError> {
        (**self).release()
    }
}

pub mod budget;
pub mod crc;
pub mod driver;
/// The test bench's reader chip (feature `emulator`): never on a till.
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod spidev;

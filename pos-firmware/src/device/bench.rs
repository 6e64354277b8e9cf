//! The reader the `device` loop runs on, as one type whatever it is: the real MFRC522 on spidev,
//! or, on a newcomer's bench built with the `emulator` feature, the emulated MFRC522 with a few
//! cards issued at start with the till's own master key (`--bench-cards N`), tapped and lifted by
//! `tap N` / `lift` lines of the text keypad (docs/device.md, "A bench without a till"). The
//! emulator itself is named only in `main.rs`, behind its feature: this module knows the cards
//! only as [`CardAction`]s and a [`CardHandler`].

use shared::Fen;

use super::ReaderHealth;
use crate::reader::MifareReader;

/// The balance each bench card is issued with (¥100.00).
pub const BENCH_CARD_BALANCE: Fen = Fen::new(10_000);
/// The most bench cards a run may ask for.
pub const MAX_BENCH_CARDS: usize = 9;

/// A card on the bench's emulated reader: put one there (taking off the one there), or lift it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardAction {
    /// Card 1..=[`MAX_BENCH_CARDS`].
    Tap(usize),
    Lift,
}

/// Does a [`CardAction`] (the bench's cards), or says why it cannot.
pub type CardHandler = Box<dyn FnMut(CardAction) -> Result<(), String> + Send>;

/// A reader the device loop can run on.
pub trait LoopReader: MifareReader + ReaderHealth {}

impl<R: MifareReader + ReaderHealth> LoopReader for R {}

/// The device loop's reader, real or emulated.
pub type TillReader = Box<dyn LoopReader>;

/// The real reader's opener as the loop's.
pub fn real_reader<R: LoopReader + 'static>(
    mut open: super::ReaderOpener<R>,
) -> super::ReaderOpener<TillReader> {
    Box::new(move || open().map(|reader| Box::new(reader) as TillReader))
}

//! The reader the `device` loop runs on: the real MFRC522 on spidev, or, on a newcomer's bench
//! built with the `emulator` feature, the emulated MFRC522 with a few cards issued at start with
//! the till's own master key (`--bench-cards N`), tapped and lifted by `tap N` / `lift` lines of
//! the text keypad (docs/device.md, "A bench without a till"). The till build has no emulator:
//! there [`TillReader`] is the spidev reader alone and asking for bench cards is an error.

use shared::Fen;

use super::ReaderHealth;
use crate::reader::spidev::SpidevReader;
use crate::reader::{Block, CardIoError, MifareReader, SectorKey, TappedCard, WriteError};

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

/// The reader of the device loop.
pub enum TillReader {
    Spidev(SpidevReader),
    #[cfg(feature = "emulator")]
    Emulated(crate::reader::driver::Mfrc522Reader<crate::reader::emulator::EmulatedMfrc522>),
}

macro_rules! each_reader {
    ($self:ident, $r:ident => $body:expr) => {
        match $self {
            TillReader::Spidev($r) => $body,
            #[cfg(feature = "emulator")]
            TillReader::Emulated($r) => $body,
        }
    };
}

impl MifareReader for TillReader {
    fn select(&mut self) -> Result<Option<TappedCard>, CardIoError> {
        each_reader!(self, r => r.select())
    }
    fn wake(&mut self) -> Result<Option<TappedCard>, CardIoError> {
        each_reader!(self, r => r.wake())
    }
    fn authenticate(
        &mut self,
        card: &TappedCard,
        block: u8,
        key: &SectorKey,
    ) -> Result<(), CardIoError> {
        each_reader!(self, r => r.authenticate(card, block, key))
    }
    fn read_block(&mut self, block: u8) -> Result<Block, CardIoError> {
        each_reader!(self, r => r.read_block(block))
    }
    fn write_block(&mut self, block: u8, data: &Block) -> Result<(), WriteError> {
        each_reader!(self, r => r.write_block(block, data))
    }
    fn release(&mut self) -> Result<(), CardIoError> {
        each_reader!(self, r => r.release())
    }
}

impl ReaderHealth for TillReader {
    fn check_chip(&self) -> Result<(), CardIoError> {
        each_reader!(self, r => r.check_chip())
    }
}

/// The emulated reader with `count` cards issued with `wallet` (the till's master key and
/// campus): its opener, and the handler of `tap N` / `lift`.
#[cfg(feature = "emulator")]
pub fn bench_reader(
    wallet: &crate::wallet::WalletConfig,
    count: usize,
) -> Result<(super::ReaderOpener<TillReader>, CardHandler), String> {
    use crate::reader::driver::{Mfrc522Reader, ReaderOptions};
    use crate::reader::emulator::{EmulatedCard, EmulatorControl};
    use crate::wallet::layout::CardSerial;
    use crate::wallet::WalletReader;

    if !(1..=MAX_BENCH_CARDS).contains(&count) {
        return Err(format!("--bench-cards {count}: 1 to {MAX_BENCH_CARDS}"));
    }
    let mut cards = Vec::new();
    for n in 1..=count {
        let uid = [0x04, 0xBE, 0x9C, 0x00, 0x00, 0x00, n as u8];
        let control = EmulatorControl::new();
        control.place_card(EmulatedCard::blank(&uid).map_err(|e| e.to_string())?);
        let reader = Mfrc522Reader::new(control.device(), ReaderOptions::EMULATOR)
            .map_err(|e| e.to_string())?;
        let mut wallet = WalletReader::new(reader, wallet.clone());
        wallet
            .issue(CardSerial(n as u32), BENCH_CARD_BALANCE)
            .map_err(|e| format!("bench card {n}: {e:?}"))?;
        drop(wallet);
        cards.push(control.remove_card());
    }
    let control = EmulatorControl::new();
    let opener_control = control.clone();
    let opener: super::ReaderOpener<TillReader> = Box::new(move || {
        Mfrc522Reader::new(opener_control.device(), ReaderOptions::EMULATOR)
            .map(TillReader::Emulated)
            .map_err(|e| e.to_string())
    });
    let mut on_reader: Option<usize> = None;
    let handler: CardHandler = Box::new(move |action| {
        if let Some(n) = on_reader.take() {
            cards[n - 1] = control.remove_card();
        }
        match action {
            CardAction::Lift => Ok(()),
            CardAction::Tap(n) => {
                let count = cards.len();
                let slot = n
                    .checked_sub(1)
                    .and_then(|i| cards.get_mut(i))
                    .ok_or_else(|| format!("no bench card {n} (1 to {count})"))?;
                let card = slot
                    .take()
                    .ok_or_else(|| format!("bench card {n} is lost"))?;
                control.place_card(card);
                on_reader = Some(n);
                Ok(())
            }
        }
    });
    Ok((opener, handler))
}

#[cfg(all(test, feature = "emulator"))]
mod tests {
    use super::*;
    use crate::core::card::CardRead;
    use crate::wallet::{WalletConfig, WalletReader};

    #[test]
    fn a_bench_card_tapped_reads_with_the_tills_key_and_a_lifted_one_is_gone() {
        let config = WalletConfig::demo();
        let (mut opener, mut cards) = bench_reader(&config, 2).unwrap();
        let mut wallet = WalletReader::new(opener().unwrap(), config);
        assert!(wallet.tap().is_none(), "no card on the reader at start");
        cards(CardAction::Tap(2)).unwrap();
        match wallet.tap() {
            Some(CardRead::Card(image)) => assert_eq!(image.balance, BENCH_CARD_BALANCE),
            other => panic!("bench card 2 does not read: {other:?}"),
        }
        cards(CardAction::Lift).unwrap();
        assert!(wallet.tap().is_none(), "the lifted card is off the reader");
        cards(CardAction::Tap(1)).unwrap();
        assert!(matches!(wallet.tap(), Some(CardRead::Card(_))));
        assert!(cards(CardAction::Tap(3))
            .unwrap_err()
            .contains("no bench card 3"));
        assert!(bench_reader(&WalletConfig::demo(), MAX_BENCH_CARDS + 1).is_err());
    }
}

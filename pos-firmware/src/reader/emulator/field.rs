//! The RF field in front of the emulated chip: which card is in it, the card a fault took out
//! of it, whether the chip is dead, and the fault plan. The chip hands every frame and every
//! MFAuthent here; this layer counts the operations, lets the faults strike at their index,
//! and otherwise passes the frame to the card.

use super::card::{CardState, EmulatedCard, MIFARE_ACK, MIFARE_NAK_TRANSMISSION};
use super::faults::{garble, Fault, FaultPlan, Op, OpCounters, ReadFault, WriteFault};
use super::frame::{Answer, Frame};
use crate::reader::SectorKey;

const MF_READ: u8 = 0x30;
const MF_WRITE: u8 = 0xA0;
/// What a dying chip's MISO shows when a write fault kills it.
const DEAD_READER_READS_AS: u8 = 0x00;

/// Everything outside the chip.
#[derive(Debug, Default)]
pub(super) struct Field {
    /// The card in the field.
    pub card: Option<EmulatedCard>,
    /// The last card a fault removed from the field (kept so tests can inspect it).
    pub removed: Option<EmulatedCard>,
    /// The chip's antenna drives the field.
    pub antenna_on: bool,
    /// The chip is dead; every SPI byte reads as this value.
    pub reader_dead: Option<u8>,
    pub faults: FaultPlan,
    pub counters: OpCounters,
    /// The fault of the write whose command phase was answered, waiting for the data phase.
    armed_write_fault: Option<WriteFault>,
}

impl Field {
    /// Puts `card` into the field; it powers up in IDLE if the antenna is on.
    pub fn place(&mut self, mut card: EmulatedCard) {
        card.power_cycle();
        self.card = Some(card);
        self.armed_write_fault = None;
    }

    /// Takes the card out of the field (a fault did it: keep it for inspection).
    fn remove_by_fault(&mut self) {
        if let Some(card) = self.card.take() {
            self.removed = Some(card);
        }
        self.armed_write_fault = None;
    }

    /// The antenna went on or off; either way the card loses or regains power.
    pub fn set_antenna(&mut self, on: bool) {
        if on != self.antenna_on {
            if let Some(card) = self.card.as_mut() {
                card.power_cycle();
            }
        }
        self.antenna_on = on;
    }

    fn powered_card(&mut self) -> Option<&mut EmulatedCard> {
        if self.antenna_on {
            self.card.as_mut()
        } else {
            None
        }
    }

    /// Takes the fault striking `op` now; `ReaderDies` is applied here and reported as true.
    fn fault_for(&mut self, op: Op) -> (Option<Fault>, bool) {
        let index = self.counters.next(op);
        match self.faults.take(op, index) {
            Some(Fault::ReaderDies { reads_as, .. }) => {
                self.reader_dead = Some(reads_as);
                (None, true)
            }
            other => (other, false),
        }
    }

    /// MFAuthent with the 12 bytes the chip took from its FIFO; true when the card accepted.
    pub fn authenticate(&mut self, command: &[u8; 12]) -> bool {
        let Some(card) = self.powered_card() else {
            return false;
        };
        if !matches!(
            card.state(),
            CardState::Active | CardState::Authenticated { .. }
        ) {
            return false;
        }
        let (fault, died) = self.fault_for(Op::Auth);
        let Some(card) = self.card.as_mut() else {
            return false;
        };
        if died {
            return false;
        }
        if matches!(fault, Some(Fault::AuthFails { .. })) {
            card.fail();
            return false;
        }
        let mut key: SectorKey = [0; 6];
        key.copy_from_slice(&command[2..8]);
        let mut uid4 = [0u8; 4];
        uid4.copy_from_slice(&command[8..12]);
        card.authenticate(command[0], command[1], &key, &uid4)
    }

    /// One frame from the chip; `None` is silence (the chip's timer then fires).
    pub fn transceive(&mut self, frame: Frame<'_>) -> Option<Answer> {
        let card = self.powered_card()?;
        let counted = frame.encrypted && card.is_authenticated() && frame.last_bits == 0;
        let armed = card.armed_write();
        if counted && armed.is_some() {
            return self.write_data(frame);
        }
        let op = match frame.bytes {
            [MF_WRITE, _, _, _] if counted => Op::Write,
            [MF_READ, _, _, _] if counted => Op::Read,
            _ => {
                let answer = card.handle(frame);
                self.count_completion(&answer, frame);
                return answer;
            }
        };
        let (fault, died) = self.fault_for(op);
        if died {
            return None;
        }
        match fault {
            Some(Fault::Write { fault, .. }) => self.write_command(frame, fault),
            Some(Fault::Read { fault, .. }) => self.read_with_fault(frame, fault),
            _ => self.card.as_mut()?.handle(frame),
        }
    }

    fn count_completion(&mut self, answer: &Option<Answer>, frame: Frame<'_>) {
        let Some(card) = self.card.as_ref() else {
            return;
        };
        match card.state() {
            CardState::Active if answer.is_some() && frame.bytes.len() == 9 => {
                self.counters.selects += 1;
            }
            CardState::Halt if answer.is_none() && frame.bytes.first() == Some(&0x50) => {
                self.counters.halts += 1;
            }
            _ => {}
        }
    }

    fn read_with_fault(&mut self, frame: Frame<'_>, fault: ReadFault) -> Option<Answer> {
        match fault {
            ReadFault::Removed => {
                self.remove_by_fault();
                None
            }
            ReadFault::CorruptedCrc => {
                let mut answer = self.card.as_mut()?.handle(frame)?;
                if let Some(last) = answer.bytes.last_mut() {
                    *last ^= 0xFF;
                }
                Some(answer)
            }
        }
    }

    fn write_command(&mut self, frame: Frame<'_>, fault: WriteFault) -> Option<Answer> {
        match fault {
            WriteFault::RemovedBeforeCommand => {
                self.remove_by_fault();
                None
            }
            WriteFault::CommandNak => {
                self.card.as_mut()?.fail();
                Some(Answer::nibble(MIFARE_NAK_TRANSMISSION))
            }
            WriteFault::RemovedAfterCommand => {
                let answer = self.card.as_mut()?.handle(frame);
                self.remove_by_fault();
                answer
            }
            data_phase_fault => {
                let answer = self.card.as_mut()?.handle(frame);
                if self
                    .card
                    .as_ref()
                    .and_then(EmulatedCard::armed_write)
                    .is_some()
                {
                    self.armed_write_fault = Some(data_phase_fault);
                }
                answer
            }
        }
    }

    fn write_data(&mut self, frame: Frame<'_>) -> Option<Answer> {
        let fault = self.armed_write_fault.take();
        let card = self.card.as_mut()?;
        let (Some(fault), Some(block)) = (fault, card.armed_write()) else {
            return card.handle(frame);
        };
        let well_formed =
            frame.bytes.len() == 18 && crate::reader::crc::has_valid_crc_a(frame.bytes);
        let Some(old) = card.block(block).filter(|_| well_formed) else {
            return card.handle(frame);
        };
        let mut data = [0u8; 16];
        data.copy_from_slice(&frame.bytes[..16]);
        match fault {
            WriteFault::RemovedAfterData => {
                card.commit_write(block, &data);
                self.remove_by_fault();
                None
            }
            WriteFault::AckLost => {
                card.commit_write(block, &data);
                None
            }
            WriteFault::DataNak => {
                card.fail();
                Some(Answer::nibble(MIFARE_NAK_TRANSMISSION))
            }
            WriteFault::HalfWritten { new_bytes } => {
                let mut torn = old;
                let new_bytes = new_bytes.min(16);
                torn[..new_bytes].copy_from_slice(&data[..new_bytes]);
                card.commit_write(block, &torn);
                self.remove_by_fault();
                None
            }
            WriteFault::Garbled { acked } => {
                card.commit_write(block, &garble(&data));
                if acked {
                    Some(Answer::nibble(MIFARE_ACK))
                } else {
                    self.remove_by_fault();
                    None
                }
            }
            WriteFault::ReaderDiesAfterData => {
                card.commit_write(block, &data);
                self.reader_dead = Some(DEAD_READER_READS_AS);
                None
            }
            // Command-phase faults never arm the data phase.
            WriteFault::RemovedBeforeCommand
            | WriteFault::CommandNak
            | WriteFault::RemovedAfterCommand => card.handle(frame),
        }
    }
}

//! The real `mfrc522` 0.8 driver, through our `Mfrc522Reader`, against the emulated MFRC522 and
//! Mifare Classic 1K cards: selection of 4- and 7-byte UIDs, authentication, reads and writes,
//! access conditions, every write fault at every write, dead readers bounded by the SPI budget,
//! halted cards, and CRC_A through the emulated chip's coprocessor.

use embedded_hal::spi::{Operation, SpiDevice};
use pos_firmware::reader::budget::MAX_SPI_TRANSFERS_PER_OPERATION;
use pos_firmware::reader::driver::{Mfrc522Reader, ReaderInitError, ReaderOptions, VersionPolicy};
use pos_firmware::reader::emulator::access::encode_access_bits;
use pos_firmware::reader::emulator::faults::garble;
use pos_firmware::reader::emulator::{
    CardState, EmulatedCard, EmulatedMfrc522, EmulatorControl, Fault, Op, ReadFault, WriteFault,
};
use pos_firmware::reader::{CardIoError, MifareReader, TappedCard, WriteError};

const UID4: [u8; 4] = [0xDE, 0xAD, 0xBE, 0xEF];
const UID7: [u8; 7] = [0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
const KEY: [u8; 6] = [0xFF; 6];
const WRONG_KEY: [u8; 6] = [0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5];

fn reader_for(control: &EmulatorControl) -> Mfrc522Reader<EmulatedMfrc522> {
    Mfrc522Reader::new(control.device(), ReaderOptions::EMULATOR).expect("emulated reader")
}

fn with_card(uid: &[u8]) -> (EmulatorControl, Mfrc522Reader<EmulatedMfrc522>) {
    let control = EmulatorControl::new();
    let reader = reader_for(&control);
    control.place_card(EmulatedCard::blank(uid).expect("blank card"));
    (control, reader)
}

fn tap_and_auth(reader: &mut Mfrc522Reader<EmulatedMfrc522>, block: u8) -> TappedCard {
    let card = reader.select().expect("select").expect("a card");
    reader.authenticate(&card, block, &KEY).expect("auth");
    card
}

#[test]
fn selects_a_4_byte_uid() {
    let (control, mut reader) = with_card(&UID4);
    let card = reader.select().unwrap().expect("card answers");
    assert_eq!(card.uid.as_bytes(), UID4);
    assert_eq!(card.sak, 0x08);
    assert_eq!(control.card_state(), Some(CardState::Active));
    assert_eq!(control.counters().selects, 1);
}

#[test]
fn selects_a_7_byte_uid_over_two_cascade_levels() {
    let (control, mut reader) = with_card(&UID7);
    let card = reader.select().unwrap().expect("card answers");
    assert_eq!(card.uid.as_bytes(), UID7);
    assert_eq!(card.sak, 0x08);
    assert_eq!(control.card_state(), Some(CardState::Active));
}

#[test]
fn empty_field_selects_nothing() {
    let control = EmulatorControl::new();
    let mut reader = reader_for(&control);
    assert_eq!(reader.select(), Ok(None));
}

#[test]
fn blank_card_block_0_holds_uid_bcc_sak_atqa() {
    let card = EmulatedCard::blank(&UID4).unwrap();
    let block0 = card.block(0).unwrap();
    assert_eq!(block0[..4], UID4);
    assert_eq!(block0[4], 0xDE ^ 0xAD ^ 0xBE ^ 0xEF);
    assert_eq!(block0[5..8], [0x08, 0x04, 0x00]);
    let trailer = card.block(7).unwrap();
    assert_eq!(trailer[..6], KEY);
    assert_eq!(trailer[6..10], [0xFF, 0x07, 0x80, 0x69]);
    let card7 = EmulatedCard::blank(&UID7).unwrap();
    assert_eq!(card7.block(0).unwrap()[7..10], [0x08, 0x44, 0x00]);
    assert!(EmulatedCard::blank(&[1, 2, 3]).is_err());
}

#[test]
fn authentication_with_the_right_and_a_wrong_key() {
    let (control, mut reader) = with_card(&UID4);
    let card = reader.select().unwrap().unwrap();
    assert_eq!(
        reader.authenticate(&card, 4, &WRONG_KEY),
        Err(CardIoError::AuthFailed)
    );
    assert!(!control.crypto_on());
    assert_eq!(control.card_state(), Some(CardState::Idle));
    // The card fell back to IDLE: a new REQA finds it again.
    let card = reader.select().unwrap().expect("card still there");
    reader.authenticate(&card, 4, &KEY).unwrap();
    assert!(control.crypto_on());
    assert_eq!(control.counters().auths, 2);
}

#[test]
fn seven_byte_uid_authenticates_with_its_last_four_bytes() {
    let (control, mut reader) = with_card(&UID7);
    tap_and_auth(&mut reader, 8);
    assert!(matches!(
        control.card_state(),
        Some(CardState::Authenticated { sector: 2, .. })
    ));
    assert_eq!(control.card().unwrap().auth_uid(), [0x33, 0x44, 0x55, 0x66]);
}

#[test]
fn the_crates_own_auth_of_a_7_byte_uid_fails_on_a_card_that_checks_the_right_bytes() {
    // The unpatched crate path: its select (with the chip's CalcCRC) then mf_authenticate with
    // the Uid::Double it returns, which passes the first 4 UID bytes.
    let control = EmulatorControl::new();
    control.place_card(EmulatedCard::blank(&UID7).unwrap());
    let spi = mfrc522::comm::blocking::spi::SpiInterface::new(control.device());
    let mut raw = mfrc522::Mfrc522::new(spi).init().expect("init");
    let atqa = raw.reqa().expect("ATQA");
    let uid = raw.select(&atqa).expect("crate select");
    assert_eq!(uid.as_bytes(), UID7);
    assert_eq!(
        raw.mf_authenticate(&uid, 4, &KEY),
        Err(mfrc522::Error::Timeout)
    );
}

#[test]
fn the_crates_own_mf_write_takes_a_nak_for_success() {
    // Why Mfrc522Reader does its own two-phase write: the card NAKs the data phase.
    let control = EmulatorControl::new();
    control.place_card(EmulatedCard::blank(&UID4).unwrap());
    control.set_block(4, OLD).unwrap();
    control.inject(Fault::Write {
        write_index: 0,
        fault: WriteFault::DataNak,
    });
    let spi = mfrc522::comm::blocking::spi::SpiInterface::new(control.device());
    let mut raw = mfrc522::Mfrc522::new(spi).init().expect("init");
    let atqa = raw.reqa().expect("ATQA");
    let uid = raw.select(&atqa).expect("crate select");
    raw.mf_authenticate(&uid, 4, &KEY)
        .expect("4-byte UID auth works");
    assert_eq!(raw.mf_write(4, NEW), Ok(()), "the gap this driver closes");
    assert_eq!(control.block(4), Some(OLD), "nothing was written");
}

#[test]
fn write_then_read_round_trip() {
    let (control, mut reader) = with_card(&UID4);
    tap_and_auth(&mut reader, 4);
    let data = *b"campus wallet 01";
    reader.write_block(5, &data).unwrap();
    assert_eq!(reader.read_block(5), Ok(data));
    assert_eq!(control.block(5), Some(data));
    assert_eq!(control.counters().writes, 1);
    assert_eq!(control.counters().reads, 1);
    // A normal write is far inside the budget.
    assert!(reader.last_operation_usage().transfers_used < 40);
}

#[test]
fn reading_outside_the_authenticated_sector_is_a_nak() {
    let (_control, mut reader) = with_card(&UID4);
    tap_and_auth(&mut reader, 4);
    assert_eq!(reader.read_block(8), Err(CardIoError::Nak(0x4)));
}

#[test]
fn trailer_reads_hide_key_a_and_a_trailer_write_changes_the_key() {
    let (control, mut reader) = with_card(&UID4);
    let card = tap_and_auth(&mut reader, 7);
    let trailer = reader.read_block(7).unwrap();
    assert_eq!(trailer[..6], [0; 6]);
    assert_eq!(trailer[6..10], [0xFF, 0x07, 0x80, 0x69]);
    let mut new_trailer = [0u8; 16];
    new_trailer[..6].copy_from_slice(&WRONG_KEY);
    new_trailer[6..10].copy_from_slice(&[0xFF, 0x07, 0x80, 0x69]);
    new_trailer[10..].copy_from_slice(&KEY);
    reader.write_block(7, &new_trailer).unwrap();
    assert_eq!(control.block(7), Some(new_trailer));
    reader.release().unwrap();
    control.place_card(control.remove_card().unwrap());
    let card2 = reader.select().unwrap().unwrap();
    assert_eq!(card2, card);
    assert_eq!(
        reader.authenticate(&card2, 4, &KEY),
        Err(CardIoError::AuthFailed)
    );
    let card3 = reader.select().unwrap().unwrap();
    reader.authenticate(&card3, 4, &WRONG_KEY).unwrap();
}

#[test]
fn access_bits_forbid_a_write_with_a_nak_and_the_block_stays() {
    let (control, mut reader) = with_card(&UID4);
    // Sector 1: block 4 read-only (010), the others transport, trailer 001.
    let mut access = [0u8; 4];
    access[..3].copy_from_slice(&encode_access_bits([0b010, 0, 0, 0b001]));
    access[3] = 0x69;
    control
        .with_card(|card| card.set_access_bytes(1, access))
        .unwrap();
    control.set_block(4, [7; 16]).unwrap();
    tap_and_auth(&mut reader, 4);
    assert_eq!(
        reader.write_block(4, &[9; 16]),
        Err(WriteError::NotWritten(CardIoError::Nak(0x4)))
    );
    assert_eq!(control.block(4), Some([7; 16]));
    // The NAK sent the card to IDLE; a fresh session can still read the block.
    tap_and_auth(&mut reader, 4);
    assert_eq!(reader.read_block(4), Ok([7; 16]));
    assert!(reader.write_block(5, &[1; 16]).is_ok());
}

#[test]
fn manufacturer_block_is_read_only() {
    let (control, mut reader) = with_card(&UID4);
    tap_and_auth(&mut reader, 0);
    let before = control.block(0).unwrap();
    assert_eq!(
        reader.write_block(0, &[0; 16]),
        Err(WriteError::NotWritten(CardIoError::Nak(0x4)))
    );
    assert_eq!(control.block(0), Some(before));
}

const OLD: [u8; 16] = [0x11; 16];
const NEW: [u8; 16] = [0x22; 16];
/// The blocks a three-write session writes, in order.
const SESSION_BLOCKS: [u8; 3] = [4, 5, 6];

/// What a write fault must give and leave in the block.
fn expected(fault: WriteFault) -> (Result<(), WriteError>, [u8; 16]) {
    use CardIoError::*;
    let mut half = OLD;
    half[..7].copy_from_slice(&NEW[..7]);
    match fault {
        WriteFault::RemovedBeforeCommand => (Err(WriteError::NotWritten(NoCard)), OLD),
        WriteFault::CommandNak => (Err(WriteError::NotWritten(Nak(0x5))), OLD),
        WriteFault::RemovedAfterCommand => (Err(WriteError::MaybeWritten(NoCard)), OLD),
        WriteFault::RemovedAfterData => (Err(WriteError::MaybeWritten(NoCard)), NEW),
        WriteFault::AckLost => (Err(WriteError::MaybeWritten(NoCard)), NEW),
        WriteFault::DataNak => (Err(WriteError::MaybeWritten(Nak(0x5))), OLD),
        WriteFault::HalfWritten { new_bytes } => {
            assert_eq!(new_bytes, 7, "table written for 7 bytes");
            (Err(WriteError::MaybeWritten(NoCard)), half)
        }
        WriteFault::Garbled { acked: false } => {
            (Err(WriteError::MaybeWritten(NoCard)), garble(&NEW))
        }
        WriteFault::Garbled { acked: true } => (Ok(()), garble(&NEW)),
        WriteFault::ReaderDiesAfterData => {
            (Err(WriteError::MaybeWritten(Reader(String::new()))), NEW)
        }
    }
}

/// Reader errors carry a message; compare only the kind for them.
fn same_outcome(got: &Result<(), WriteError>, want: &Result<(), WriteError>) -> bool {
    let kind = |r: &Result<(), WriteError>| match r {
        Err(WriteError::NotWritten(CardIoError::Reader(_))) => "not-written reader".to_string(),
        Err(WriteError::MaybeWritten(CardIoError::Reader(_))) => "maybe-written reader".into(),
        other => format!("{other:?}"),
    };
    kind(got) == kind(want)
}

#[test]
fn every_write_fault_at_every_write_gives_its_error_and_leaves_its_block_state() {
    let mut cases = 0;
    for struck in 0..SESSION_BLOCKS.len() {
        for fault in WriteFault::ALL {
            let (control, mut reader) = with_card(&UID4);
            for block in SESSION_BLOCKS {
                control.set_block(block, OLD).unwrap();
            }
            control.inject(Fault::Write {
                write_index: struck as u32,
                fault,
            });
            tap_and_auth(&mut reader, 4);
            for (index, block) in SESSION_BLOCKS.into_iter().enumerate() {
                let result = reader.write_block(block, &NEW);
                if index < struck {
                    assert_eq!(result, Ok(()), "write {index} before the fault");
                    continue;
                }
                let (want, want_block) = expected(fault);
                assert!(
                    same_outcome(&result, &want),
                    "{fault:?} at write {struck}: got {result:?}, want {want:?}"
                );
                assert_eq!(
                    control.block(block),
                    Some(want_block),
                    "{fault:?} at write {struck}: block {block}"
                );
                for later in &SESSION_BLOCKS[index + 1..] {
                    assert_eq!(control.block(*later), Some(OLD), "{fault:?}: later block");
                }
                break;
            }
            assert!(control.pending_faults().is_empty(), "{fault:?} struck");
            cases += 1;
        }
    }
    assert_eq!(cases, SESSION_BLOCKS.len() * WriteFault::ALL.len());
}

#[test]
fn a_torn_card_comes_back_on_the_next_tap_and_shows_its_real_block() {
    let (control, mut reader) = with_card(&UID4);
    control.set_block(4, OLD).unwrap();
    control.inject(Fault::Write {
        write_index: 0,
        fault: WriteFault::HalfWritten { new_bytes: 3 },
    });
    tap_and_auth(&mut reader, 4);
    assert_eq!(
        reader.write_block(4, &NEW),
        Err(WriteError::MaybeWritten(CardIoError::NoCard))
    );
    assert!(!control.card_in_field());
    assert_eq!(reader.select(), Ok(None));
    control.return_card().unwrap();
    tap_and_auth(&mut reader, 4);
    let mut torn = OLD;
    torn[..3].copy_from_slice(&NEW[..3]);
    assert_eq!(reader.read_block(4), Ok(torn));
}

#[test]
fn injected_auth_and_read_faults() {
    let (control, mut reader) = with_card(&UID4);
    control.inject(Fault::AuthFails { auth_index: 0 });
    control.inject(Fault::Read {
        read_index: 0,
        fault: ReadFault::CorruptedCrc,
    });
    control.inject(Fault::Read {
        read_index: 1,
        fault: ReadFault::Removed,
    });
    let card = reader.select().unwrap().unwrap();
    assert_eq!(
        reader.authenticate(&card, 4, &KEY),
        Err(CardIoError::AuthFailed)
    );
    tap_and_auth(&mut reader, 4);
    assert_eq!(reader.read_block(4), Err(CardIoError::Garbled("bad CRC")));
    assert_eq!(reader.read_block(4), Err(CardIoError::NoCard));
    assert!(!control.card_in_field());
}

#[test]
fn halted_card_is_not_selected_again_until_it_is_tapped_again() {
    let (control, mut reader) = with_card(&UID4);
    tap_and_auth(&mut reader, 4);
    reader.release().unwrap();
    assert!(!control.crypto_on());
    assert_eq!(control.card_state(), Some(CardState::Halt));
    assert_eq!(control.counters().halts, 1);
    assert_eq!(reader.select(), Ok(None));
    assert_eq!(reader.select(), Ok(None));
    let card = control.remove_card().unwrap();
    control.place_card(card);
    assert!(reader.select().unwrap().is_some());
}

/// Regression: a read garbled mid-session leaves the card AUTHENTICATED; it takes the next
/// REQA as a protocol error and drops to IDLE without answering. The wallet's fresh-session
/// read-back after a write depends on the next select finding it, so the driver asks again
/// after a session it never released (and only then: a halted card stays halted).
#[test]
fn a_card_left_selected_by_an_unreleased_session_is_selected_again() {
    for uid in [&UID4[..], &UID7[..]] {
        let (control, mut reader) = with_card(uid);
        control.set_block(4, OLD).unwrap();
        control.inject(Fault::Read {
            read_index: 0,
            fault: ReadFault::CorruptedCrc,
        });
        let card = tap_and_auth(&mut reader, 4);
        assert_eq!(reader.read_block(4), Err(CardIoError::Garbled("bad CRC")));
        assert!(matches!(
            control.card_state(),
            Some(CardState::Authenticated { .. })
        ));
        let again = reader
            .select()
            .unwrap()
            .expect("the card is still in the field");
        assert_eq!(again, card);
        reader.authenticate(&again, 4, &KEY).unwrap();
        assert_eq!(reader.read_block(4), Ok(OLD));
        reader.release().unwrap();
        assert_eq!(reader.select(), Ok(None), "released: halted, not woken");
    }
}

#[test]
fn wake_selects_a_card_halted_on_the_reader_and_a_failed_auth_halts_it_again() {
    let (control, mut reader) = with_card(&UID7);
    tap_and_auth(&mut reader, 4);
    reader.release().unwrap();
    assert_eq!(
        reader.select(),
        Ok(None),
        "REQA: a halted card stays silent"
    );
    let card = reader.wake().unwrap().expect("WUPA wakes it");
    assert_eq!(card.uid.as_bytes(), &UID7);
    // A card woken from HALT goes back to HALT on a protocol error (a wrong key here).
    assert_eq!(
        reader.authenticate(&card, 4, &[0x12; 6]),
        Err(CardIoError::AuthFailed)
    );
    assert_eq!(control.card_state(), Some(CardState::Halt));
    assert_eq!(reader.select(), Ok(None));
    assert!(reader.wake().unwrap().is_some());
}

#[test]
fn release_without_auth_halts_too() {
    let (control, mut reader) = with_card(&UID7);
    reader.select().unwrap().unwrap();
    reader.release().unwrap();
    assert_eq!(control.card_state(), Some(CardState::Halt));
}

#[test]
fn construction_checks_the_chip_version() {
    let dead_low = EmulatorControl::new();
    dead_low.set_reader_dead(Some(0x00));
    assert_eq!(
        Mfrc522Reader::new(dead_low.device(), ReaderOptions::EMULATOR).err(),
        Some(ReaderInitError::NoChip(0x00))
    );
    let dead_high = EmulatorControl::new();
    dead_high.set_reader_dead(Some(0xFF));
    assert_eq!(
        Mfrc522Reader::new(dead_high.device(), ReaderOptions::EMULATOR).err(),
        Some(ReaderInitError::NoChip(0xFF))
    );
    let counterfeit = EmulatorControl::with_version(0x12);
    assert_eq!(
        Mfrc522Reader::new(counterfeit.device(), ReaderOptions::EMULATOR).err(),
        Some(ReaderInitError::UnsupportedVersion(0x12))
    );
    let clone = EmulatorControl::with_version(0x88);
    assert_eq!(
        Mfrc522Reader::new(clone.device(), ReaderOptions::EMULATOR).err(),
        Some(ReaderInitError::CloneRefused(0x88))
    );
    let lenient = ReaderOptions {
        version_policy: VersionPolicy::AllowKnownClones,
        ..ReaderOptions::EMULATOR
    };
    let reader = Mfrc522Reader::new(clone.device(), lenient).expect("clone accepted");
    assert_eq!(reader.chip_version(), 0x88);
    assert_eq!(
        reader_for(&EmulatorControl::with_version(0x91)).chip_version(),
        0x91
    );
}

#[test]
fn a_reader_dead_at_zero_fails_when_the_transfer_budget_runs_out() {
    let (control, mut reader) = with_card(&UID4);
    control.set_reader_dead(Some(0x00));
    let result = reader.select();
    assert!(matches!(result, Err(CardIoError::Reader(_))), "{result:?}");
    let usage = reader.last_operation_usage();
    assert_eq!(usage.transfers_used, MAX_SPI_TRANSFERS_PER_OPERATION);
    assert_eq!(
        usage.transfers_refused, 1,
        "the first refused transfer ends it"
    );
    // Every later operation fails the same bounded way.
    let spi_before = control.counters().spi_transactions;
    assert!(matches!(reader.read_block(4), Err(CardIoError::Reader(_))));
    let spent = control.counters().spi_transactions - spi_before;
    assert!(
        spent <= u64::from(MAX_SPI_TRANSFERS_PER_OPERATION),
        "{spent}"
    );
}

#[test]
fn a_reader_dead_at_ff_is_caught_by_the_version_probe() {
    let (control, mut reader) = with_card(&UID4);
    control.set_reader_dead(Some(0xFF));
    let result = reader.select();
    assert!(matches!(result, Err(CardIoError::Reader(_))), "{result:?}");
    let usage = reader.last_operation_usage();
    assert_eq!(usage.probes, 1);
    assert!(usage.transfers_used < 20, "{usage:?}");
}

#[test]
fn a_reader_dying_at_any_operation_gives_a_reader_error() {
    for (op, reads_as) in [
        (Op::Auth, 0x00),
        (Op::Read, 0x00),
        (Op::Write, 0x00),
        (Op::Auth, 0xFF),
        (Op::Read, 0xFF),
        (Op::Write, 0xFF),
    ] {
        let (control, mut reader) = with_card(&UID4);
        control.set_block(4, OLD).unwrap();
        control.inject(Fault::ReaderDies {
            op,
            index: 0,
            reads_as,
        });
        let card = reader.select().unwrap().unwrap();
        let outcome = match op {
            Op::Auth => reader
                .authenticate(&card, 4, &KEY)
                .map_err(WriteError::NotWritten),
            Op::Read => {
                reader.authenticate(&card, 4, &KEY).unwrap();
                reader
                    .read_block(4)
                    .map(|_| ())
                    .map_err(WriteError::NotWritten)
            }
            Op::Write => {
                reader.authenticate(&card, 4, &KEY).unwrap();
                reader.write_block(4, &NEW)
            }
        };
        assert!(
            matches!(outcome, Err(WriteError::NotWritten(CardIoError::Reader(_)))),
            "{op:?} {reads_as:#x}: {outcome:?}"
        );
        assert!(reader.last_operation_usage().transfers_used <= MAX_SPI_TRANSFERS_PER_OPERATION);
        assert_eq!(control.block(4), Some(OLD));
    }
}

/// One register write over raw SPI, as the MFRC522 expects it.
fn write_register(spi: &mut EmulatedMfrc522, register: u8, value: u8) {
    spi.write(&[register << 1, value]).unwrap();
}

fn read_register(spi: &mut EmulatedMfrc522, register: u8) -> u8 {
    let mut buffer = [(register << 1) | 0x80, 0];
    spi.transfer_in_place(&mut buffer).unwrap();
    buffer[1]
}

#[test]
fn crc_a_vectors_through_the_emulated_crc_coprocessor() {
    let control = EmulatorControl::new();
    let mut spi = control.device();
    write_register(&mut spi, 0x11, 0x3D); // ModeReg: CRC preset 0x6363
    for (data, crc) in [
        (&[0x00u8, 0x00][..], [0xA0, 0x1E]),
        (&[0x12, 0x34][..], [0x26, 0xCF]),
        (&[0x50, 0x00][..], [0x57, 0xCD]),
    ] {
        write_register(&mut spi, 0x01, 0x00); // Idle
        write_register(&mut spi, 0x0A, 0x80); // flush FIFO
        let address = [0x09 << 1];
        spi.transaction(&mut [Operation::Write(&address), Operation::Write(data)])
            .unwrap();
        assert_eq!(read_register(&mut spi, 0x0A), data.len() as u8);
        write_register(&mut spi, 0x01, 0x03); // CalcCRC
        assert_ne!(read_register(&mut spi, 0x05) & 0x04, 0, "CRCIRq");
        let low = read_register(&mut spi, 0x22);
        let high = read_register(&mut spi, 0x21);
        assert_eq!([low, high], crc, "{data:02X?}");
        assert_eq!(pos_firmware::reader::crc::crc_a(data), crc);
    }
}

#[test]
fn spi_multi_byte_fifo_read_returns_bytes_in_order() {
    let control = EmulatorControl::new();
    let mut spi = control.device();
    let address = [0x09 << 1];
    spi.transaction(&mut [Operation::Write(&address), Operation::Write(&[1, 2, 3])])
        .unwrap();
    // As the crate's read_many: address, then [addr, addr, 0] transferred in place.
    let read_address = [(0x09 << 1) | 0x80];
    let mut buffer = [read_address[0], read_address[0], 0];
    spi.transaction(&mut [
        Operation::Write(&read_address),
        Operation::TransferInPlace(&mut buffer),
    ])
    .unwrap();
    assert_eq!(buffer, [1, 2, 3]);
    assert_eq!(read_register(&mut spi, 0x0A), 0);
}

#[test]
fn a_halted_card_answers_wupa_but_not_reqa() {
    let (control, mut reader) = with_card(&UID4);
    reader.select().unwrap().unwrap();
    reader.release().unwrap();
    let spi = mfrc522::comm::blocking::spi::SpiInterface::new(control.device());
    let mut raw = mfrc522::Mfrc522::new(spi).init().expect("init");
    // init's SoftReset switched the field off and on: the card powered up again in IDLE.
    assert_eq!(control.card_state(), Some(CardState::Idle));
    raw.reqa().expect("an IDLE card answers REQA");
    raw.hlta().expect("HLTA is never answered");
    assert_eq!(
        control.card_state(),
        Some(CardState::Idle),
        "READY ignores HLTA"
    );
    let atqa_again = raw.reqa().expect("IDLE again");
    raw.select(&atqa_again).expect("selected");
    raw.hlta().expect("halted");
    assert_eq!(control.card_state(), Some(CardState::Halt));
    assert!(matches!(raw.reqa(), Err(mfrc522::Error::Timeout)));
    raw.wupa().expect("WUPA wakes a halted card");
    assert_eq!(
        control.card_state(),
        Some(CardState::Ready { cascade_level: 1 })
    );
}

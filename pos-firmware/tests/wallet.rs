//! Tests of the campus-card wallet (`pos_firmware::wallet`) on the in-memory Mifare Classic
//! card: issuing, every way a tap can fail (unformatted, wrong key, other campus, not a Mifare
//! Classic, forged data), replay and cloning as the till sees them, and the exhaustive tear test:
//! for a debit and a load, from several card states, with every write fault, authentication
//! fault and departure point, the card afterwards reads as exactly the old or exactly the new
//! state, `Refused` leaves it byte-identical and `Written` means it holds the new state.
//!
//! In this file `unwrap`/`expect` are assertions: where one fails, the test fails.

mod common;

use pos_firmware::core::card::{CardImage, CardProblem, CardRead, CardWrite, CardWriteOutcome};
use pos_firmware::reader::MifareReader;
use pos_firmware::runtime::CardWriter;
use pos_firmware::wallet::keys::MasterKey;
use pos_firmware::wallet::layout::{
    CampusId, CardSerial, HEADER_BLOCK, SLOT_BLOCKS, TRAILER_BLOCK,
};
use pos_firmware::wallet::memory::{MemoryCard, MemoryCardReader, WriteFault, SAK_ISO_14443_4};
use pos_firmware::wallet::{
    issue_card, load_master_key, read_card, write_card, IssueError, MasterKeyFileError,
    WalletConfig, WalletReader, DEMO_CAMPUS,
};
use shared::record::TxnTag;
use shared::{CardUid, Fen};

const OPENING_FEN: u64 = 10_000;
const DEBIT_FEN: u64 = 1_234;
const LOAD_FEN: u64 = 5_000;
/// Departure points tried in the exhaustive test: more than the exchanges of any write.
const LEAVE_BEFORE_EXCHANGE_MAX: u64 = 14;

fn uid4() -> CardUid {
    CardUid::new(&[0x1A, 0x2B, 0x3C, 0x4D]).unwrap()
}

fn uid7() -> CardUid {
    CardUid::new(&[0x04, 0x52, 0x61, 0x7A, 0x8B, 0x9C, 0x80]).unwrap()
}

fn cfg() -> WalletConfig {
    WalletConfig::demo()
}

/// A reader holding a freshly issued card.
fn issued(uid: CardUid) -> MemoryCardReader {
    let mut reader = MemoryCardReader::new(MemoryCard::blank(uid));
    let image = issue_card(&mut reader, &cfg(), CardSerial(42), Fen::new(OPENING_FEN)).unwrap();
    assert_eq!(image.balance, Fen::new(OPENING_FEN));
    reader.retap();
    reader
}

fn tap(reader: &mut MemoryCardReader, cfg: &WalletConfig) -> Option<CardRead> {
    reader.retap();
    read_card(reader, cfg)
}

fn card_image(reader: &mut MemoryCardReader) -> CardImage {
    match tap(reader, &cfg()) {
        Some(CardRead::Card(image)) => image,
        other => panic!("expected a wallet, read {other:?}"),
    }
}

fn debit(card: &CardImage, amount: u64, tag: u32) -> CardWrite {
    CardWrite {
        uid: card.uid,
        counter_before: card.counter,
        new_counter: card.counter + 1,
        new_balance: card.balance.checked_sub(Fen::new(amount)).unwrap(),
        tag: TxnTag(tag),
    }
}

fn load(card: &CardImage, amount: u64, tag: u32) -> CardWrite {
    CardWrite {
        new_balance: card.balance.checked_add(Fen::new(amount)).unwrap(),
        ..debit(card, 0, tag)
    }
}

fn image_after(write: &CardWrite) -> CardImage {
    CardImage {
        uid: write.uid,
        balance: write.new_balance,
        counter: write.new_counter,
        last_tag: write.tag,
    }
}

fn write(reader: &mut MemoryCardReader, write: &CardWrite) -> CardWriteOutcome {
    reader.retap();
    write_card(reader, &cfg(), write)
}

#[test]
fn issue_then_read_for_4_and_7_byte_uids() {
    for uid in [uid4(), uid7()] {
        let mut reader = issued(uid);
        let image = card_image(&mut reader);
        assert_eq!(
            image,
            CardImage {
                uid,
                balance: Fen::new(OPENING_FEN),
                counter: 0,
                last_tag: TxnTag(0),
            }
        );
        let card = reader.card().unwrap();
        assert_eq!(
            card.block(TRAILER_BLOCK).unwrap()[6..10],
            [0x7F, 0x07, 0x88, 0x69]
        );
        assert_eq!(
            card.block(TRAILER_BLOCK).unwrap()[..6],
            cfg().master.card_keys(&uid).key_a
        );
    }
}

#[test]
fn issue_refuses_an_issued_card_and_a_foreign_one() {
    let mut reader = issued(uid4());
    let before = reader.card().unwrap().clone();
    assert_eq!(
        issue_card(&mut reader, &cfg(), CardSerial(1), Fen::new(1)),
        Err(IssueError::AlreadyIssued)
    );
    assert_eq!(reader.card().unwrap(), &before);

    let other_master = WalletConfig {
        master: MasterKey::from_bytes([7; 32]).unwrap(),
        campus: DEMO_CAMPUS,
    };
    reader.retap();
    assert_eq!(
        issue_card(&mut reader, &other_master, CardSerial(1), Fen::new(1)),
        Err(IssueError::UnknownKeys)
    );
    assert_eq!(reader.card().unwrap(), &before);

    let mut bus = MemoryCardReader::new(MemoryCard::blank(uid4()).with_sak(SAK_ISO_14443_4));
    assert_eq!(
        issue_card(&mut bus, &cfg(), CardSerial(1), Fen::new(1)),
        Err(IssueError::NotMifareClassic(SAK_ISO_14443_4))
    );
    let mut nothing = MemoryCardReader::empty();
    assert_eq!(
        issue_card(&mut nothing, &cfg(), CardSerial(1), Fen::new(1)),
        Err(IssueError::NoCard)
    );
}

#[test]
fn every_fault_at_every_issue_write_leaves_a_blank_an_issued_or_a_lost_card() {
    let mut cases = 0;
    let mut lost = 0;
    for uid in [uid4(), uid7()] {
        // Four writes: header, slot A, slot B, trailer.
        for n in 1..=4 {
            for fault in WriteFault::all() {
                cases += 1;
                let mut reader = MemoryCardReader::new(MemoryCard::blank(uid));
                reader.fail_write(n, fault);
                let result = issue_card(&mut reader, &cfg(), CardSerial(9), Fen::new(500));
                reader.clear_faults();
                let read = tap(&mut reader, &cfg());
                match (&result, read) {
                    (Ok(image), Some(CardRead::Card(read))) => assert_eq!(*image, read),
                    (
                        Err(
                            IssueError::DataWriteFailed { .. } | IssueError::DataNotVerified { .. },
                        ),
                        Some(CardRead::Unreadable(p)),
                    ) => {
                        assert_eq!(p, CardProblem::Unformatted, "n={n} {fault:?}");
                    }
                    (Err(IssueError::TrailerWriteFailed(_)), read) => match read {
                        Some(CardRead::Unreadable(CardProblem::Unformatted)) => {}
                        Some(CardRead::Card(image)) => assert_eq!(image.balance, Fen::new(500)),
                        Some(CardRead::Unreadable(CardProblem::WrongKey)) => lost += 1,
                        other => panic!("n={n} {fault:?}: {other:?}"),
                    },
                    (result, read) => panic!("n={n} {fault:?}: {result:?} then {read:?}"),
                }
                // Whatever happened before the trailer, the card can be issued again.
                if matches!(read, Some(CardRead::Unreadable(CardProblem::Unformatted))) {
                    reader.retap();
                    let image = issue_card(&mut reader, &cfg(), CardSerial(9), Fen::new(500))
                        .expect("a card still on transport keys issues");
                    assert_eq!(image.balance, Fen::new(500));
                }
            }
        }
    }
    println!("issue faults: {cases} cases, {lost} cards lost to a torn trailer write");
    assert!(lost > 0, "a torn trailer must be exercised");
}

#[test]
fn problems_a_tap_reports() {
    let mut blank = MemoryCardReader::new(MemoryCard::blank(uid4()));
    assert_eq!(
        read_card(&mut blank, &cfg()),
        Some(CardRead::Unreadable(CardProblem::Unformatted))
    );

    let mut reader = issued(uid4());
    let wrong_master = WalletConfig {
        master: MasterKey::from_bytes([7; 32]).unwrap(),
        campus: DEMO_CAMPUS,
    };
    assert_eq!(
        tap(&mut reader, &wrong_master),
        Some(CardRead::Unreadable(CardProblem::WrongKey))
    );
    let other_campus = WalletConfig {
        campus: CampusId(DEMO_CAMPUS.0 + 1),
        ..cfg()
    };
    assert_eq!(
        tap(&mut reader, &other_campus),
        Some(CardRead::Unreadable(CardProblem::OtherCampus))
    );

    let mut bus = MemoryCardReader::new(MemoryCard::blank(uid4()).with_sak(SAK_ISO_14443_4));
    assert_eq!(
        read_card(&mut bus, &cfg()),
        Some(CardRead::Unreadable(CardProblem::NotCampusCard))
    );

    assert_eq!(read_card(&mut MemoryCardReader::empty(), &cfg()), None);

    let mut leaving = issued(uid4());
    leaving.leave_before_exchange(3);
    assert_eq!(
        read_card(&mut leaving, &cfg()),
        Some(CardRead::Unreadable(CardProblem::ReadFailed))
    );
}

#[test]
fn a_forged_balance_fails_the_mac() {
    let mut reader = issued(uid4());
    let card = reader.card_mut().unwrap();
    for block in SLOT_BLOCKS {
        let mut data = card.block(block).unwrap();
        data[7] = data[7].wrapping_add(100); // +100 fen, MAC left as it was
        card.set_block(block, data);
    }
    assert_eq!(
        tap(&mut reader, &cfg()),
        Some(CardRead::Unreadable(CardProblem::BadMac))
    );
    let mut reader = issued(uid4());
    let card = reader.card_mut().unwrap();
    let mut header = card.block(HEADER_BLOCK).unwrap();
    header[5] ^= 1; // campus id
    card.set_block(HEADER_BLOCK, header);
    assert_eq!(
        tap(&mut reader, &cfg()),
        Some(CardRead::Unreadable(CardProblem::BadMac))
    );
}

#[test]
fn a_damaged_newest_slot_falls_back_to_the_previous_state() {
    let mut reader = issued(uid4());
    let first = card_image(&mut reader);
    let w = debit(&first, 100, 1);
    assert_eq!(
        write(&mut reader, &w),
        CardWriteOutcome::Written(image_after(&w))
    );
    let second = card_image(&mut reader);
    assert_eq!(second, image_after(&w));
    // Debit 1 went to slot B (a fresh card's current slot is A).
    let card = reader.card_mut().unwrap();
    let mut torn = card.block(SLOT_BLOCKS[1]).unwrap();
    torn[15] ^= 0x40;
    card.set_block(SLOT_BLOCKS[1], torn);
    assert_eq!(card_image(&mut reader), first);
}

#[test]
fn a_replay_of_old_blocks_reads_as_an_older_valid_state() {
    let mut reader = issued(uid4());
    let start = card_image(&mut reader);
    let saved = reader.card().unwrap().clone();
    let w1 = debit(&start, 100, 1);
    assert!(matches!(
        write(&mut reader, &w1),
        CardWriteOutcome::Written(_)
    ));
    let w2 = debit(&image_after(&w1), 200, 2);
    assert!(matches!(
        write(&mut reader, &w2),
        CardWriteOutcome::Written(_)
    ));
    assert_eq!(card_image(&mut reader).counter, 2);
    // An attacker with the keys (Crypto1 is broken) writes the saved slots back.
    let card = reader.card_mut().unwrap();
    for block in SLOT_BLOCKS {
        card.set_block(block, saved.block(block).unwrap());
    }
    let replayed = card_image(&mut reader);
    assert_eq!(replayed, start, "the till sees a valid, older state");
    assert!(replayed.counter < 2, "visible as a counter that went back");
}

#[test]
fn a_clone_reads_exactly_like_the_original() {
    // Only the server's shadow ledger can tell the two apart (two histories, one counter).
    let mut original = issued(uid7());
    let mut clone = MemoryCardReader::new(original.card().unwrap().clone());
    assert_eq!(card_image(&mut original), card_image(&mut clone));
}

#[test]
fn writes_are_refused_when_the_card_changed_or_is_another_card() {
    let mut reader = issued(uid4());
    let start = card_image(&mut reader);
    let w = debit(&start, 100, 1);
    assert!(matches!(
        write(&mut reader, &w),
        CardWriteOutcome::Written(_)
    ));
    let before = reader.card().unwrap().clone();
    // Same write again: the counter moved on since its read.
    assert_eq!(write(&mut reader, &w), CardWriteOutcome::Refused);
    // A write meant for another card.
    let other = CardWrite {
        uid: uid7(),
        ..debit(&image_after(&w), 1, 2)
    };
    assert_eq!(write(&mut reader, &other), CardWriteOutcome::Refused);
    // A load above the card maximum.
    let too_much = CardWrite {
        new_balance: Fen::new(1_000_001),
        ..debit(&image_after(&w), 0, 3)
    };
    assert_eq!(write(&mut reader, &too_much), CardWriteOutcome::Refused);
    // A counter that does not step by one.
    let skip = CardWrite {
        new_counter: w.new_counter + 2,
        ..debit(&image_after(&w), 1, 4)
    };
    assert_eq!(write(&mut reader, &skip), CardWriteOutcome::Refused);
    assert_eq!(reader.card().unwrap(), &before);
}

#[test]
fn wallet_reader_taps_and_writes_for_the_runtime() {
    let mut wallet = WalletReader::new(issued(uid4()), cfg());
    let Some(CardRead::Card(card)) = wallet.tap() else {
        panic!("a wallet")
    };
    let w = debit(&card, 250, 9);
    assert_eq!(
        wallet.write_card(&w),
        CardWriteOutcome::Written(image_after(&w))
    );
    assert_eq!(
        wallet.tap(),
        None,
        "the card stays halted until it is lifted"
    );
    wallet.reader_mut().retap();
    assert_eq!(wallet.tap(), Some(CardRead::Card(image_after(&w))));
    // A tap without a write, then a new tap: the first card is released.
    assert_eq!(wallet.tap(), None);
}

/// A card state the exhaustive test starts from.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// Freshly issued: both slots hold counter 0.
    Fresh,
    /// One write: slot B is current.
    OneWrite,
    /// Two writes: slot A is current.
    TwoWrites,
    /// One write, then the older slot (A) garbled: only B is valid.
    OnlyOneValidSlot,
}

fn prepare(uid: CardUid, start: Start) -> MemoryCard {
    let mut reader = issued(uid);
    let writes = match start {
        Start::Fresh => 0,
        Start::OneWrite | Start::OnlyOneValidSlot => 1,
        Start::TwoWrites => 2,
    };
    for tag in 0..writes {
        let card = card_image(&mut reader);
        let w = debit(&card, 10, 100 + tag);
        assert!(matches!(
            write(&mut reader, &w),
            CardWriteOutcome::Written(_)
        ));
    }
    let mut card = reader.take_card().unwrap();
    if let Start::OnlyOneValidSlot = start {
        card.set_block(SLOT_BLOCKS[0], [0x5A; 16]);
    }
    card
}

#[derive(Debug, Default)]
struct Tally {
    cases: u64,
    written: u64,
    refused: u64,
    unknown_old: u64,
    unknown_new: u64,
    recovered: u64,
}

#[test]
fn every_fault_leaves_exactly_the_old_or_the_new_state() {
    let starts = [
        Start::Fresh,
        Start::OneWrite,
        Start::TwoWrites,
        Start::OnlyOneValidSlot,
    ];
    let mut write_faults: Vec<Option<WriteFault>> = vec![None];
    write_faults.extend(WriteFault::all().into_iter().map(Some));
    let mut tally = Tally::default();
    for uid in [uid4(), uid7()] {
        for start in starts {
            let card = prepare(uid, start);
            let old = card_image(&mut MemoryCardReader::new(card.clone()));
            for is_load in [false, true] {
                let w = if is_load {
                    load(&old, LOAD_FEN, 0xC0FFEE)
                } else {
                    debit(&old, DEBIT_FEN, 0xBEEF)
                };
                let new = image_after(&w);
                for through_wallet_reader in [false, true] {
                    for write_fault in &write_faults {
                        for auth_fault in [None, Some(1), Some(2)] {
                            for leave in
                                (0..=LEAVE_BEFORE_EXCHANGE_MAX).map(|n| (n > 0).then_some(n))
                            {
                                let case = format!(
                                    "{uid} {start:?} load={is_load} wallet_reader={through_wallet_reader} \
                                     {write_fault:?} auth={auth_fault:?} leave={leave:?}"
                                );
                                run_case(
                                    &card,
                                    &w,
                                    &old,
                                    &new,
                                    through_wallet_reader,
                                    (*write_fault, auth_fault, leave),
                                    &mut tally,
                                    &case,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    println!(
        "wallet exhaustive: {} cases: {} written, {} refused, {} unknown (card old), \
         {} unknown (card new), {} unknown-then-old rewritten to new",
        tally.cases,
        tally.written,
        tally.refused,
        tally.unknown_old,
        tally.unknown_new,
        tally.recovered
    );
    assert!(
        tally.written > 0 && tally.refused > 0 && tally.unknown_old > 0 && tally.unknown_new > 0
    );
}

#[allow(clippy::too_many_arguments)]
fn run_case(
    card: &MemoryCard,
    w: &CardWrite,
    old: &CardImage,
    new: &CardImage,
    through_wallet_reader: bool,
    (write_fault, auth_fault, leave): (Option<WriteFault>, Option<u64>, Option<u64>),
    tally: &mut Tally,
    case: &str,
) {
    tally.cases += 1;
    let mut reader = MemoryCardReader::new(card.clone());
    let arm = |reader: &mut MemoryCardReader| {
        if let Some(fault) = write_fault {
            reader.fail_write(1, fault);
        }
        if let Some(n) = auth_fault {
            reader.fail_auth(n);
        }
        if let Some(n) = leave {
            reader.leave_before_exchange(n);
        }
    };
    let outcome = if through_wallet_reader {
        let mut wallet = WalletReader::new(reader, cfg());
        assert_eq!(wallet.tap(), Some(CardRead::Card(*old)), "{case}");
        arm(wallet.reader_mut());
        let outcome = wallet.write_card(w);
        reader = wallet.into_reader();
        outcome
    } else {
        arm(&mut reader);
        write_card(&mut reader, &cfg(), w)
    };
    reader.clear_faults();
    let after = card_image(&mut reader);
    assert!(
        after == *old || after == *new,
        "{case}: {outcome:?}, card reads {after:?}"
    );
    match outcome {
        CardWriteOutcome::Written(image) => {
            tally.written += 1;
            assert_eq!(image, *new, "{case}");
            assert_eq!(after, *new, "{case}");
        }
        CardWriteOutcome::Refused => {
            tally.refused += 1;
            assert_eq!(
                reader.card().unwrap(),
                card,
                "{case}: refused but the card changed"
            );
        }
        CardWriteOutcome::Unknown if after == *new => tally.unknown_new += 1,
        CardWriteOutcome::Unknown => {
            tally.unknown_old += 1;
            // The core re-writes the same sale when the card shows it was not debited: the
            // torn slot is overwritten cleanly and the current one is still never touched.
            let retry = write(&mut reader, w);
            assert_eq!(retry, CardWriteOutcome::Written(*new), "{case}: retry");
            assert_eq!(card_image(&mut reader), *new, "{case}: retry");
            tally.recovered += 1;
        }
    }
}

#[test]
fn the_reader_refuses_key_a_writes_to_the_wallet_trailer() {
    let mut reader = issued(uid4());
    let uid = uid4();
    let keys = cfg().master.card_keys(&uid);
    let card = reader.select().unwrap().unwrap();
    reader
        .authenticate(&card, TRAILER_BLOCK, &keys.key_a)
        .unwrap();
    let before = reader.card().unwrap().clone();
    assert!(reader.write_block(TRAILER_BLOCK, &[0xFF; 16]).is_err());
    assert_eq!(reader.card().unwrap(), &before);
    // Key A reads the access bits but neither key.
    let card = {
        reader.retap();
        reader.select().unwrap().unwrap()
    };
    reader
        .authenticate(&card, TRAILER_BLOCK, &keys.key_a)
        .unwrap();
    let trailer = reader.read_block(TRAILER_BLOCK).unwrap();
    assert_eq!(trailer[..6], [0; 6]);
    assert_eq!(trailer[6..10], [0x7F, 0x07, 0x88, 0x69]);
    assert_eq!(trailer[10..], [0; 6]);
}

#[test]
fn the_master_key_file_must_be_private_and_hex() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card-master.key");
    std::fs::write(
        &path,
        "64656d6f2d6f6e6c792d6d61737465722d6b65792d6e6f742d7365637265742e\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        load_master_key(&path),
        Err(MasterKeyFileError::TooOpen { mode: 0o644, .. })
    ));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = load_master_key(&path).unwrap();
    assert_eq!(key, MasterKey::demo());
    assert!(!format!("{key:?}").contains("6465"));
    std::fs::write(&path, "not a key").unwrap();
    assert!(matches!(
        load_master_key(&path),
        Err(MasterKeyFileError::Invalid { .. })
    ));
    assert!(matches!(
        load_master_key(&dir.path().join("missing")),
        Err(MasterKeyFileError::Read { .. })
    ));
}

/// The whole till over the wallet: a sale whose card write tears is settled at the next tap of
/// the same card, by re-writing the same sale, and the card ends debited exactly once.
#[test]
fn the_runtime_sells_through_the_wallet_and_settles_a_torn_write() {
    use keymap::TillKey;
    use pos_firmware::core::config::TillConfig;
    use pos_firmware::runtime::{Input, Now, Output};
    use shared::record::RecordBody;
    use shared::UnixMillis;

    let now = Now {
        wall: UnixMillis(1_700_000_000_000),
        mono_ms: 0,
    };
    let mut till = common::Till::open(TillConfig::default(), now);
    let mut wallet = WalletReader::new(issued(uid4()), cfg());
    let mut records = Vec::new();
    let mut feed = |till: &mut common::Till, wallet: &mut WalletReader<MemoryCardReader>, input| {
        till.pass(1_500);
        for output in till.handle(input, wallet) {
            if let Output::Journaled(record) = output {
                records.push(record.body);
            }
        }
    };
    for key in [TillKey::Digit(5), TillKey::Enter] {
        feed(&mut till, &mut wallet, Input::Key(key));
    }
    let read = wallet.tap().unwrap();
    wallet
        .reader_mut()
        .fail_write(1, WriteFault::Torn { new_bytes: 6 });
    feed(&mut till, &mut wallet, Input::Card(read));
    // The card left mid-write: nothing is settled yet.
    wallet.reader_mut().put_back();
    let read = wallet.tap().unwrap();
    feed(&mut till, &mut wallet, Input::Card(read));
    let committed = records
        .iter()
        .filter(|body| matches!(body, RecordBody::SaleCommitted(_)))
        .count();
    let intents = records
        .iter()
        .filter(|body| matches!(body, RecordBody::SaleIntent(_)))
        .count();
    assert_eq!((intents, committed), (1, 1), "{records:?}");
    let mut reader = wallet.into_reader();
    let card = card_image(&mut reader);
    assert_eq!(card.balance, Fen::new(OPENING_FEN - 500));
    assert_eq!(card.counter, 1);
}

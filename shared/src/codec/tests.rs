//! Golden bytes: if one of these fails, the stored format changed. Never "fix" the expected
//! bytes; add a new envelope version instead and keep decoding the old one.
//! (The tests of `codec.rs`, in their own file so the codec reads in one sitting.)

use super::*;
use crate::ids::*;
use crate::money::Fen;
use crate::record::*;

fn machine() -> MachineNumber {
    MachineNumber::new(58).unwrap()
}

fn uid() -> CardUid {
    CardUid::new(&[0xDE, 0xAD, 0xBE, 0xEF]).unwrap()
}

fn intent_record() -> JournalRecord {
    JournalRecord {
        seq: Seq(7),
        at: UnixMillis(1_700_000_000_000),
        machine: machine(),
        body: RecordBody::SaleIntent(SaleIntent {
            amount: Fen::new(1250),
            payer: Payer::CampusCard(uid()),
            card: CardDebitPlan {
                counter_before: 3,
                balance_before: Fen::new(10_000),
                tag: TxnTag(0x0102_0304),
            },
            fixed_price: false,
        }),
    }
}

#[test]
fn sale_intent_golden_bytes() {
    let bytes = encode_record(&intent_record());
    #[rustfmt::skip]
    let golden: &[u8] = &[
        0x00,                                     // RecordEnvelope::V1
        0x07,                                     // seq 7
        0x80, 0xA0, 0xAB, 0xFE, 0xF9, 0x62,       // at: zigzag varint of 1.7e12 ms
        0x3A,                                     // machine 58
        0x00,                                     // RecordBody::SaleIntent
        0xE2, 0x09,                               // amount 1250
        0x00,                                     // Payer::CampusCard
        0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, // uid: len 4, 10 bytes
        0x03,                                     // counter_before
        0x90, 0x4E,                               // balance_before 10000
        0x84, 0x86, 0x88, 0x08,                   // tag
        0x00,                                     // fixed_price false
    ];
    assert_eq!(bytes, golden);
    assert_eq!(decode_record(&bytes), Ok(intent_record()));
}

#[test]
fn other_record_bodies_golden_bytes() {
    let cases: Vec<(RecordBody, &[u8])> = vec![
        (
            RecordBody::SaleCommitted(SaleCommitted {
                intent: Seq(7),
                amount: Fen::new(1250),
                payer: Payer::CampusCard(uid()),
                balance_after: Fen::new(8750),
                recovered: true,
            }),
            &[
                0x01, 0x07, 0xE2, 0x09, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, 0xAE,
                0x44, 0x01,
            ],
        ),
        (
            RecordBody::SaleAborted(SaleAborted {
                intent: Seq(7),
                reason: AbortReason::WriteRefused,
            }),
            &[0x02, 0x07, 0x01],
        ),
        (
            RecordBody::SaleInDoubt(SaleInDoubt {
                intent: Seq(7),
                reason: InDoubtReason::CardMovedOn,
            }),
            &[0x03, 0x07, 0x01],
        ),
        (
            RecordBody::ModeChanged(ModeChange::FixedPriceOn(Fen::new(800))),
            &[0x04, 0x02, 0xA0, 0x06],
        ),
        (
            RecordBody::ModeChanged(ModeChange::OfflineOff),
            &[0x04, 0x01],
        ),
        (
            RecordBody::MachineNumberChanged {
                old: machine(),
                new: MachineNumber::new(300).unwrap(),
            },
            &[0x05, 0x3A, 0xAC, 0x02],
        ),
        (
            RecordBody::CardIssued(CardIssued {
                uid: uid(),
                opening_balance: Fen::new(10_000),
            }),
            &[
                0x06, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, 0x90, 0x4E,
            ],
        ),
        (
            RecordBody::LoadAborted(LoadAborted {
                intent: Seq(7),
                reason: AbortReason::WriteRefused,
            }),
            &[0x09, 0x07, 0x01],
        ),
        (
            RecordBody::CampusConfigApplied { version: 5 },
            &[0x0B, 0x05],
        ),
        (
            RecordBody::ServerTimeSeen {
                server: UnixMillis(0),
                offset_ms: -3,
            },
            &[0x0D, 0x00, 0x05],
        ),
        (
            RecordBody::StaffPinChanged(StaffPinState {
                failures: 3,
                locked_until: Some(UnixMillis(1_700_000_000_000)),
            }),
            &[0x0F, 0x03, 0x01, 0x80, 0xA0, 0xAB, 0xFE, 0xF9, 0x62],
        ),
        (
            RecordBody::LoadResumed {
                intent: Seq(7),
                resume: 2,
            },
            &[0x10, 0x07, 0x02],
        ),
        (
            RecordBody::CardIssueInterrupted { uid: uid() },
            &[0x11, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0],
        ),
    ];
    for (body, golden_body) in cases {
        let record = JournalRecord {
            seq: Seq(1),
            at: UnixMillis(0),
            machine: machine(),
            body,
        };
        let mut golden = vec![0x00, 0x01, 0x00, 0x3A];
        golden.extend_from_slice(golden_body);
        let bytes = encode_record(&record);
        assert_eq!(bytes, golden, "{:?}", record.body);
        assert_eq!(decode_record(&bytes), Ok(record));
    }
}

/// The fields versions 1 and 2 share, as both store them.
#[rustfmt::skip]
const V1_FIELDS: &[u8] = &[
    0x09,             // next_seq
    0x3A,             // machine
    0x01,             // offline
    0x01, 0xA0, 0x06, // fixed_price Some(800)
    0x01, 0xC0, 0xB8, 0x02, 0x02, 0xDC, 0x0B, // today: day 20000 (zigzag), 2 sales, 1500
    0x00,             // meal None
    0x02, 0xBC, 0x05, 0xA0, 0x06, // recent amounts [700, 800]
    0x00,             // last_sale None
    0x00,             // pending []
];

/// What [`V1_FIELDS`] hold, migrated to the current snapshot.
fn migrated_snapshot() -> TillSnapshot {
    TillSnapshot {
        next_seq: Seq(9),
        machine: machine(),
        offline: true,
        fixed_price: Some(Fen::new(800)),
        days: vec![DayTally {
            day: LocalDay(20_000),
            tally: SalesTally {
                count: 2,
                total: Fen::new(1500),
            },
        }],
        meals: vec![],
        recent_amounts: vec![Fen::new(700), Fen::new(800)],
        last_sale: None,
        pending: vec![],
        pending_loads: vec![],
        campus: None,
        blacklist: None,
        server_time: None,
        staff_pin: StaffPinState::default(),
        interrupted_issue: None,
        pending_orders: Vec::new(),
        code_days: Vec::new(),
        code_meals: Vec::new(),
        offline_accounts: Vec::new(),
        seen_nonces: Vec::new(),
        qr_attempts: Vec::new(),
        recent_methods: vec![PaidBy::Card; 2],
    }
}

#[test]
fn snapshot_version_1_golden_bytes_still_decode_and_migrate() {
    let mut bytes = vec![0x00]; // SnapshotEnvelope::V1
    bytes.extend_from_slice(V1_FIELDS);
    assert_eq!(decode_snapshot(&bytes), Ok(migrated_snapshot()));
}

#[test]
fn snapshot_version_2_golden_bytes_still_decode_and_migrate() {
    let mut bytes = vec![0x01]; // SnapshotEnvelope::V2
    bytes.extend_from_slice(V1_FIELDS);
    #[rustfmt::skip]
    bytes.extend_from_slice(&[
        0x01,             // pending_loads: one
        0x07, 0x00,       // intent 7, at 0
        0xE8, 0x07,       // amount 1000
        0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, // uid
        0x03, 0x90, 0x4E, 0x84, 0x86, 0x88, 0x08, // counter 3, balance 10000, tag
        0x00,             // campus None
        0x00,             // blacklist None
        0x00,             // server_time None
    ]);
    let mut expected = migrated_snapshot();
    expected.pending_loads = vec![pending_load(0)];
    assert_eq!(decode_snapshot(&bytes), Ok(expected));
}

fn pending_load(resumes: u8) -> PendingLoad {
    PendingLoad {
        intent: Seq(7),
        at: UnixMillis(0),
        load: LoadIntent {
            amount: Fen::new(1000),
            uid: uid(),
            card: CardDebitPlan {
                counter_before: 3,
                balance_before: Fen::new(10_000),
                tag: TxnTag(0x0102_0304),
            },
        },
        resumes,
    }
}

#[test]
fn snapshot_version_3_golden_bytes_still_decode_and_migrate() {
    let snapshot = TillSnapshot {
        days: vec![
            DayTally {
                day: LocalDay(19_999),
                tally: SalesTally {
                    count: 1,
                    total: Fen::new(100),
                },
            },
            DayTally {
                day: LocalDay(20_000),
                tally: SalesTally {
                    count: 2,
                    total: Fen::new(1500),
                },
            },
        ],
        meals: vec![MealTally {
            day: LocalDay(20_000),
            meal_start: MinuteOfDay::new(690).unwrap(),
            tally: SalesTally {
                count: 2,
                total: Fen::new(1500),
            },
        }],
        pending_loads: vec![pending_load(2)],
        staff_pin: StaffPinState {
            failures: 3,
            locked_until: Some(UnixMillis(1_700_000_000_000)),
        },
        interrupted_issue: Some(uid()),
        ..migrated_snapshot()
    };
    let bytes = encode_snapshot(&snapshot);
    #[rustfmt::skip]
    let golden: &[u8] = &[
        0x02,             // SnapshotEnvelope::V3
        0x09,             // next_seq
        0x3A,             // machine
        0x01,             // offline
        0x01, 0xA0, 0x06, // fixed_price Some(800)
        0x02,             // days: two
        0xBE, 0xB8, 0x02, 0x01, 0x64, // day 19999, 1 sale, 100
        0xC0, 0xB8, 0x02, 0x02, 0xDC, 0x0B, // day 20000, 2 sales, 1500
        0x01,             // meals: one
        0xC0, 0xB8, 0x02, 0xB2, 0x05, 0x02, 0xDC, 0x0B, // day 20000, 11:30, 2 sales, 1500
        0x02, 0xBC, 0x05, 0xA0, 0x06, // recent amounts [700, 800]
        0x00,             // last_sale None
        0x00,             // pending []
        0x01,             // pending_loads: one
        0x07, 0x00,       // intent 7, at 0
        0xE8, 0x07,       // amount 1000
        0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, // uid
        0x03, 0x90, 0x4E, 0x84, 0x86, 0x88, 0x08, // counter 3, balance 10000, tag
        0x02,             // resumes 2
        0x00,             // campus None
        0x00,             // blacklist None
        0x00,             // server_time None
        0x03,             // staff PIN: 3 failures
        0x01, 0x80, 0xA0, 0xAB, 0xFE, 0xF9, 0x62, // locked until 1.7e12 ms
        0x01, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, // interrupted issue
    ];
    assert_eq!(decode_snapshot(golden), Ok(snapshot.clone()));
    // Version 4 writes the same fields, then no orders, no code-paid tallies, the two recent
    // sales' methods (migrated: by card), and no offline accounts, nonces or QR attempts.
    let mut v4 = vec![0x03];
    v4.extend_from_slice(&golden[1..]);
    v4.extend_from_slice(&[0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(bytes, v4);
    assert_eq!(decode_snapshot(&bytes), Ok(snapshot));
    assert_eq!(
        decode_snapshot(&encode_snapshot(&TillSnapshot::factory_new())),
        Ok(TillSnapshot::factory_new())
    );
}

/// The snapshot is rewritten with every record: with every tally list full (the largest
/// days and totals the types allow), a PIN lockout and an interrupted issue, and nothing
/// unresolved, it stays under 768 bytes (a real day's figures take about half that).
#[test]
fn a_snapshot_with_full_tallies_stays_small() {
    let big = SalesTally {
        count: u32::MAX,
        total: Fen::new(u64::MAX),
    };
    let snapshot = TillSnapshot {
        days: (0..TALLY_DAYS_KEPT)
            .map(|i| DayTally {
                day: LocalDay(i32::MAX - i as i32),
                tally: big,
            })
            .collect(),
        meals: (0..TALLY_MEALS_KEPT)
            .map(|i| MealTally {
                day: LocalDay(i32::MAX - i as i32),
                meal_start: MinuteOfDay::new(1439).unwrap(),
                tally: big,
            })
            .collect(),
        staff_pin: StaffPinState {
            failures: u8::MAX,
            locked_until: Some(UnixMillis(i64::MAX)),
        },
        interrupted_issue: Some(CardUid::new(&[0xFF; 10]).unwrap()),
        pending_orders: Vec::new(),
        code_days: Vec::new(),
        code_meals: Vec::new(),
        offline_accounts: Vec::new(),
        seen_nonces: Vec::new(),
        qr_attempts: Vec::new(),
        ..migrated_snapshot()
    };
    let size = encode_snapshot(&snapshot).len();
    assert!(size < 768, "snapshot of {size} bytes");
}

#[test]
fn mqtt_payloads_golden_bytes() {
    use crate::link::UploadRecord;
    use crate::mqtt::{ServerTime, UploadAck, UploadBatch};
    let batch = UploadBatch {
        terminal: TerminalId(0x0102),
        session: None,
        records: vec![
            UploadRecord {
                seq: Seq(5),
                bytes: vec![0xAA, 0xBB],
            },
            UploadRecord {
                seq: Seq(6),
                bytes: vec![0xCC],
            },
        ],
    };
    let bytes = encode_upload_batch(&batch);
    #[rustfmt::skip]
    let golden: &[u8] = &[
        0x00,             // UploadBatchEnvelope::V1
        0x82, 0x02,       // terminal 0x0102
        0x02,             // 2 records
        0x05, 0x02, 0xAA, 0xBB, // seq 5, 2 bytes
        0x06, 0x01, 0xCC, // seq 6, 1 byte
    ];
    assert_eq!(bytes, golden);
    assert_eq!(decode_upload_batch(&bytes), Ok(batch.clone()));

    let with_session = UploadBatch {
        session: Some(UploadSession(7)),
        ..batch.clone()
    };
    let bytes = encode_upload_batch(&with_session);
    #[rustfmt::skip]
    let golden: &[u8] = &[
        0x01,             // UploadBatchEnvelope::V2
        0x82, 0x02,       // terminal 0x0102
        0x07,             // session 7
        0x02,             // 2 records
        0x05, 0x02, 0xAA, 0xBB, // seq 5, 2 bytes
        0x06, 0x01, 0xCC, // seq 6, 1 byte
    ];
    assert_eq!(bytes, golden);
    assert_eq!(decode_upload_batch(&bytes), Ok(with_session));

    let ack = UploadAck {
        terminal: TerminalId(0x0102),
        stored_through: Some(Seq(300)),
        answers: None,
    };
    let bytes = encode_upload_ack(&ack);
    assert_eq!(bytes, [0x00, 0x82, 0x02, 0x01, 0xAC, 0x02]);
    assert_eq!(decode_upload_ack(&bytes), Ok(ack));
    let ack = UploadAck {
        answers: Some(SessionAnswered {
            session: UploadSession(7),
            received_through: Seq(290),
        }),
        ..ack
    };
    let bytes = encode_upload_ack(&ack);
    // V2, terminal, Some(300), session 7, received through 290.
    assert_eq!(
        bytes,
        [0x01, 0x82, 0x02, 0x01, 0xAC, 0x02, 0x07, 0xA2, 0x02]
    );
    assert_eq!(decode_upload_ack(&bytes), Ok(ack));

    let time = ServerTime {
        server: UnixMillis(1_700_000_000_000),
    };
    let bytes = encode_server_time(&time);
    assert_eq!(bytes, [0x00, 0x80, 0xA0, 0xAB, 0xFE, 0xF9, 0x62]);
    assert_eq!(decode_server_time(&bytes), Ok(time));
}

#[test]
fn blacklist_page_golden_bytes() {
    use crate::mqtt::BlacklistPage;
    let page = BlacklistPage {
        version: 9,
        issued_at: UnixMillis(1_700_000_000_000),
        page: 1,
        pages: 2,
        uids: vec![uid()],
    };
    let bytes = encode_blacklist_page(&page);
    #[rustfmt::skip]
    let golden: &[u8] = &[
        0x00,                               // BlacklistPageEnvelope::V1
        0x09,                               // version 9
        0x80, 0xA0, 0xAB, 0xFE, 0xF9, 0x62, // issued at 1_700_000_000_000
        0x01, 0x02,                         // page 1 of 2
        0x01,                               // 1 UID
        0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, // 4 bytes, padded to 10
    ];
    assert_eq!(bytes, golden);
    assert_eq!(decode_blacklist_page(&bytes), Ok(page));
}

#[test]
fn blacklist_pages_out_of_shape_are_refused() {
    use crate::mqtt::BlacklistPage;
    let uid_n = |n: u32| CardUid::new(&n.to_be_bytes()).unwrap();
    let page = |page, pages, uids: Vec<CardUid>| BlacklistPage {
        version: 1,
        issued_at: UnixMillis(1),
        page,
        pages,
        uids,
    };
    for bad in [
        page(0, 0, vec![]),
        page(1, 1, vec![]),
        page(0, MAX_BLACKLIST_PAGES + 1, vec![]),
        page(0, 1, vec![uid_n(2), uid_n(1)]),
        page(0, 1, vec![uid_n(1), uid_n(1)]),
        page(
            0,
            1,
            (0..=MAX_BLACKLIST_PAGE_ENTRIES as u32).map(uid_n).collect(),
        ),
    ] {
        assert!(
            matches!(
                decode_blacklist_page(&encode_blacklist_page(&bad)),
                Err(DecodeError::Malformed { .. })
            ),
            "page {} of {} with {} entries was accepted",
            bad.page,
            bad.pages,
            bad.uids.len()
        );
    }
    let last = page(MAX_BLACKLIST_PAGES - 1, MAX_BLACKLIST_PAGES, vec![uid_n(1)]);
    assert_eq!(
        decode_blacklist_page(&encode_blacklist_page(&last)),
        Ok(last)
    );
}

#[test]
fn upload_batches_with_gaps_or_no_records_are_refused() {
    use crate::link::UploadRecord;
    use crate::mqtt::UploadBatch;
    let record = |seq| UploadRecord {
        seq: Seq(seq),
        bytes: vec![1],
    };
    for records in [
        vec![],
        vec![record(0)],
        vec![record(1), record(3)],
        vec![record(2), record(1)],
        (1..=501).map(record).collect(),
    ] {
        let bytes = encode_upload_batch(&UploadBatch {
            session: None,
            terminal: TerminalId(1),
            records,
        });
        assert!(matches!(
            decode_upload_batch(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert!(matches!(
        decode_record(&[]),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        decode_record(&[0x09, 0x01]),
        Err(DecodeError::Malformed { .. })
    ));
    let mut bytes = encode_record(&intent_record());
    bytes.push(0);
    assert_eq!(
        decode_record(&bytes),
        Err(DecodeError::TrailingBytes {
            what: "journal record",
            extra: 1
        })
    );
    for cut in 0..bytes.len() - 1 {
        assert!(
            decode_record(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes decoded"
        );
    }
}

/// A code-payment order as journaled, requested and answered. The code travels only inside the
/// submit; the record holds its digest and last four characters.
#[test]
fn order_records_and_messages_golden_bytes() {
    use crate::pay::*;
    use crate::paycode::*;
    let code = PaymentCode::recognise("134567890123456789").unwrap();
    let intent = JournalRecord {
        seq: Seq(9),
        at: UnixMillis(0),
        machine: machine(),
        body: RecordBody::OrderIntent(OrderIntent {
            amount: Fen::new(1250),
            method: CodeMethod::WeChat,
            code: code.digest(),
            hint: code.hint(),
            account: None,
            fixed_price: false,
        }),
    };
    let bytes = encode_record(&intent);
    let mut golden = vec![
        0x00, // RecordEnvelope::V1
        0x09, 0x00, 0x3A, // seq 9, at 0, machine 58
        0x12, // RecordBody::OrderIntent (variant 18)
        0xE2, 0x09, // amount 1250
        0x01, // CodeMethod::WeChat
    ];
    golden.extend_from_slice(&code.digest().0); // 8 digest bytes
    golden.extend_from_slice(b"6789"); // the last four characters
    golden.extend_from_slice(&[0x00, 0x00]); // no account, not fixed price
    assert_eq!(bytes, golden);
    assert_eq!(decode_record(&bytes), Ok(intent));
    assert!(
        !bytes.windows(18).any(|w| w == b"134567890123456789"),
        "the code is never journaled"
    );

    let order = OrderId {
        terminal: TerminalId(0x0102),
        intent: Seq(9),
    };
    let call = OrderCall {
        order,
        request: OrderRequest::Query,
    };
    let bytes = encode_order_call(&call);
    #[rustfmt::skip]
    assert_eq!(bytes, [
        0x00,             // OrderCallEnvelope::V1
        0x82, 0x02, 0x09, // terminal 0x102, intent 9
        0x01,             // OrderRequest::Query
    ]);
    assert_eq!(decode_order_call(&bytes), Ok(call));

    let result = OrderResult {
        order,
        state: OrderState::Paid {
            payer: CodePayer::Campus(VirtualAccount(5)),
            balance_after: Some(Fen::new(100)),
            booked_at: UnixMillis(1),
        },
        server_time: UnixMillis(2),
    };
    let bytes = encode_order_result(&result);
    #[rustfmt::skip]
    assert_eq!(bytes, [
        0x00,             // OrderResultEnvelope::V1
        0x82, 0x02, 0x09, // order
        0x00,             // OrderState::Paid
        0x00, 0x05,       // CodePayer::Campus(5)
        0x01, 0x64,       // balance after Some(100)
        0x02,             // booked at 1 (zigzag)
        0x04,             // server time 2 (zigzag)
    ]);
    assert_eq!(decode_order_result(&bytes), Ok(result));
}

/// The fields a campus configuration of both envelope versions carries, in order: version 5,
/// merchant "A", no meal periods, max sale 50.00, no presets, offline limits 1.00 / 2.00 /
/// 3.00, 60 s and 120 s.
#[rustfmt::skip]
const CAMPUS_V1_FIELDS: &[u8] = &[
    0x05,                   // version 5
    0x01, b'A',             // merchant name
    0x00,                   // meal periods: none
    0x88, 0x27,             // max sale 5000
    0x00,                   // presets: none
    0x64, 0xC8, 0x01, 0xAC, 0x02, // offline 100, 200, 300
    0xE0, 0xD4, 0x03,       // unsent age 60000
    0xC0, 0xA9, 0x07,       // blacklist age 120000
];

fn campus_v1_fields() -> CampusConfig {
    use crate::campus::OfflineLimits;
    CampusConfig {
        version: 5,
        merchant_name: DisplayName::new("A").unwrap(),
        meal_periods: vec![],
        max_sale: Fen::new(5000),
        fixed_price_presets: vec![],
        offline: OfflineLimits {
            max_sale: Fen::new(100),
            max_per_card_per_day: Fen::new(200),
            max_unsent_total: Fen::new(300),
            max_unsent_age_ms: 60_000,
            max_blacklist_age_ms: 120_000,
        },
        payments: None,
    }
}

#[test]
fn campus_configuration_version_2_golden_bytes_carry_the_timings_and_keys() {
    use crate::campus::{CampusKey, CodePaymentSettings};
    let public = crate::paycode::signing_key_from_seed([7; 32])
        .verifying_key()
        .to_bytes();
    let config = CampusConfig {
        payments: Some(CodePaymentSettings {
            query_interval_ms: 3_000,
            pay_window_ms: 60_000,
            virtual_card_keys: vec![CampusKey { id: 1, public }],
            offline_codes: Some(crate::campus::DEFAULT_OFFLINE_CODE_LIMITS),
        }),
        ..campus_v1_fields()
    };
    let mut golden = vec![0x01]; // CampusConfigEnvelope::V2
    golden.extend_from_slice(CAMPUS_V1_FIELDS);
    #[rustfmt::skip]
    golden.extend_from_slice(&[
        0x01,             // payments Some
        0xB8, 0x17,       // query interval 3000
        0xE0, 0xD4, 0x03, // pay window 60000
        0x01, 0x01,       // one key, id 1
    ]);
    golden.extend_from_slice(&public); // 32 bytes, no length
    #[rustfmt::skip]
    golden.extend_from_slice(&[
        0x01,       // offline codes Some
        0xB8, 0x17, // max sale 3000 fen
        0xF0, 0x2E, // per account per day 6000 fen
        0x04,       // 4 codes per account per day
    ]);
    assert_eq!(encode_campus_config(&config), golden);
    assert_eq!(decode_campus_config(&golden), Ok(config.clone()));
    // A link message carries the same shape.
    let mut link = vec![0x00, 0x04]; // ToTillEnvelope::V1, ToTill::Config
    link.extend_from_slice(&golden[1..]);
    assert_eq!(encode_to_till(&ToTill::Config(config.clone())), link);
    assert_eq!(decode_to_till(&link), Ok(ToTill::Config(config)));
}

#[test]
fn campus_configuration_version_1_golden_bytes_still_decode_without_code_payment_settings() {
    let mut v1 = vec![0x00]; // CampusConfigEnvelope::V1
    v1.extend_from_slice(CAMPUS_V1_FIELDS);
    let config = decode_campus_config(&v1).unwrap();
    assert_eq!(config, campus_v1_fields());
    assert_eq!(config.payments, None, "the till keeps its own timings");
    // Written again, it is a V2 with no settings.
    let mut v2 = vec![0x01];
    v2.extend_from_slice(CAMPUS_V1_FIELDS);
    v2.push(0x00); // payments None
    assert_eq!(encode_campus_config(&config), v2);
}

#[test]
fn a_version_3_snapshot_keeps_its_campus_configuration_of_the_old_shape() {
    let v3 = [0x02u8] // SnapshotEnvelope::V3
        .iter()
        .chain(V1_FIELDS)
        .chain(&[0x00]) // pending_loads: none
        .chain(&[0x01]) // campus Some, the V1 shape
        .chain(CAMPUS_V1_FIELDS)
        .chain(&[0x00, 0x00, 0x00, 0x00, 0x00]) // blacklist, server time, PIN, interrupted
        .copied()
        .collect::<Vec<u8>>();
    let opened = decode_snapshot(&v3).unwrap();
    assert_eq!(opened.campus, Some(campus_v1_fields()));
    assert_eq!(opened.next_seq, migrated_snapshot().next_seq);
    // Version 4 stores the new shape: the same fields, then no code-payment settings.
    let v4 = encode_snapshot(&opened);
    assert!(v4
        .windows(CAMPUS_V1_FIELDS.len() + 1)
        .any(
            |w| w[..CAMPUS_V1_FIELDS.len()] == *CAMPUS_V1_FIELDS && w[CAMPUS_V1_FIELDS.len()] == 0
        ));
    assert_eq!(decode_snapshot(&v4), Ok(opened));
}

//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/`: the values of the
//! golden-bytes tests (`shared/src/codec/tests.rs`) encoded by today's codec (and the old
//! snapshot versions' golden bytes as they stand there), the payment codes of the scenario
//! scripts' kinds, the shipped TOML files and a simulator cards file. Run once after a format
//! change (`cargo run --manifest-path fuzz/Cargo.toml --bin make-seeds`); the corpora are
//! committed, so a fuzz run never needs this.

use pos_firmware::sim::cards::{default_cards, SimCards, SIM_CARDS_FILE};
use shared::campus::Blacklist;
use shared::codec::*;
use shared::ids::{MachineNumber, Seq, TerminalId};
use shared::link::{frame, BrokerLink, DownlinkKind, ToDaemon, ToTill, UploadRecord};
use shared::mqtt::{
    BlacklistPage, ServerTime, SessionAnswered, UploadAck, UploadBatch, UploadSession,
};
use shared::pay::{CodePayer, OrderCall, OrderId, OrderRequest, OrderResult, OrderState};
use shared::paycode::{
    signing_key_from_seed, CodeMethod, PaymentCode, VirtualAccount, VirtualCardCode,
};
use shared::record::{
    CardDebitPlan, JournalRecord, OrderIntent, Payer, RecordBody, SaleIntent, TxnTag,
};
use shared::{CardUid, Fen, UnixMillis};
use std::path::{Path, PathBuf};

/// The snapshot fields versions 1 and 2 share (`V1_FIELDS` of the golden tests).
#[rustfmt::skip]
const SNAPSHOT_V1_FIELDS: &[u8] = &[
    0x09, 0x3A, 0x01, 0x01, 0xA0, 0x06, 0x01, 0xC0, 0xB8, 0x02, 0x02, 0xDC, 0x0B, 0x00,
    0x02, 0xBC, 0x05, 0xA0, 0x06, 0x00, 0x00,
];

/// A version 3 snapshot (the golden test's bytes).
#[rustfmt::skip]
const SNAPSHOT_V3: &[u8] = &[
    0x02, 0x09, 0x3A, 0x01, 0x01, 0xA0, 0x06, 0x02, 0xBE, 0xB8, 0x02, 0x01, 0x64,
    0xC0, 0xB8, 0x02, 0x02, 0xDC, 0x0B, 0x01, 0xC0, 0xB8, 0x02, 0xB2, 0x05, 0x02, 0xDC, 0x0B,
    0x02, 0xBC, 0x05, 0xA0, 0x06, 0x00, 0x00, 0x01, 0x07, 0x00, 0xE8, 0x07,
    0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, 0x03, 0x90, 0x4E, 0x84, 0x86, 0x88, 0x08,
    0x02, 0x00, 0x00, 0x00, 0x03, 0x01, 0x80, 0xA0, 0xAB, 0xFE, 0xF9, 0x62,
    0x01, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0,
];

/// A WeChat, an Alipay and a UnionPay code of the shapes the scenario scripts scan.
const WALLET_CODES: [&str; 3] = [
    "134567890123456789",
    "281234567890123456",
    "6212345678901234567",
];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("corpus");
    let put = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(name), bytes).expect("seed file");
    };

    let machine = MachineNumber::new(58).expect("58 is a machine number");
    let uid = CardUid::new(&[0xDE, 0xAD, 0xBE, 0xEF]).expect("4-byte UID");
    let sale = JournalRecord {
        seq: Seq(7),
        at: UnixMillis(1_700_000_000_000),
        machine,
        body: RecordBody::SaleIntent(SaleIntent {
            amount: Fen::new(1250),
            payer: Payer::CampusCard(uid),
            card: CardDebitPlan {
                counter_before: 3,
                balance_before: Fen::new(10_000),
                tag: TxnTag(0x0102_0304),
            },
            fixed_price: false,
        }),
    };
    let wechat = PaymentCode::recognise(WALLET_CODES[0]).expect("a WeChat code");
    let order_intent = JournalRecord {
        seq: Seq(9),
        at: UnixMillis(0),
        machine,
        body: RecordBody::OrderIntent(OrderIntent {
            amount: Fen::new(1250),
            method: CodeMethod::WeChat,
            code: wechat.digest(),
            hint: wechat.hint(),
            account: None,
            fixed_price: false,
        }),
    };
    put("journal_record", "sale-intent", &encode_record(&sale));
    put(
        "journal_record",
        "order-intent",
        &encode_record(&order_intent),
    );

    let mut v1 = vec![0x00];
    v1.extend_from_slice(SNAPSHOT_V1_FIELDS);
    put("journal_snapshot", "v1", &v1);
    let mut v2 = vec![0x01];
    v2.extend_from_slice(SNAPSHOT_V1_FIELDS);
    v2.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]);
    put("journal_snapshot", "v2", &v2);
    put("journal_snapshot", "v3", SNAPSHOT_V3);
    let v4 = decode_snapshot(SNAPSHOT_V3).expect("the golden V3 snapshot decodes");
    put("journal_snapshot", "v4", &encode_snapshot(&v4));

    let terminal = TerminalId(0x0102);
    let records = vec![
        UploadRecord {
            seq: Seq(7),
            bytes: encode_record(&sale),
        },
        UploadRecord {
            seq: Seq(8),
            bytes: vec![0xCC],
        },
    ];
    let batch = UploadBatch {
        terminal,
        session: None,
        records: records.clone(),
    };
    put("mqtt_upload_batch", "v1", &encode_upload_batch(&batch));
    let batch = UploadBatch {
        session: Some(UploadSession(7)),
        ..batch
    };
    put("mqtt_upload_batch", "v2", &encode_upload_batch(&batch));
    let ack = UploadAck {
        terminal,
        stored_through: Some(Seq(300)),
        answers: None,
    };
    put("mqtt_upload_ack", "v1", &encode_upload_ack(&ack));
    let answers = SessionAnswered {
        session: UploadSession(7),
        received_through: Seq(290),
    };
    let ack = UploadAck {
        answers: Some(answers),
        ..ack
    };
    put("mqtt_upload_ack", "v2", &encode_upload_ack(&ack));
    let time = ServerTime {
        server: UnixMillis(1_700_000_000_000),
    };
    put("mqtt_server_time", "v1", &encode_server_time(&time));

    let config = shared::testing::campus_config(5);
    put("mqtt_campus_config", "v2", &encode_campus_config(&config));
    let uids: Vec<CardUid> = [[1u8, 2, 3, 4], [0xDE, 0xAD, 0xBE, 0xEF]]
        .iter()
        .map(|bytes| CardUid::new(bytes).expect("4-byte UID"))
        .chain([CardUid::new(&[1, 2, 3, 4, 5, 6, 7]).expect("7-byte UID")])
        .collect();
    let list = Blacklist::new(3, time.server, uids.clone()).expect("a valid blacklist");
    put("mqtt_blacklist", "v1", &encode_blacklist(&list));
    for (index, page) in BlacklistPage::paginate(3, time.server, &uids)
        .iter()
        .enumerate()
    {
        put(
            "mqtt_blacklist_page",
            &format!("page-{index}"),
            &encode_blacklist_page(page),
        );
    }

    let order = OrderId {
        terminal,
        intent: Seq(9),
    };
    let submit = OrderCall {
        order,
        request: OrderRequest::Submit {
            amount: Fen::new(1250),
            method: CodeMethod::WeChat,
            code: wechat.clone(),
            at: UnixMillis(1_700_000_000_000),
        },
    };
    let query = OrderCall {
        order,
        request: OrderRequest::Query,
    };
    put("mqtt_order_call", "submit", &encode_order_call(&submit));
    put("mqtt_order_call", "query", &encode_order_call(&query));
    let paid = OrderResult {
        order,
        state: OrderState::Paid {
            payer: CodePayer::Campus(VirtualAccount(5)),
            balance_after: Some(Fen::new(100)),
            booked_at: UnixMillis(1),
        },
        server_time: UnixMillis(2),
    };
    put("mqtt_order_result", "paid", &encode_order_result(&paid));

    // Link streams: a read size, then every message of one direction, framed.
    let stream = |messages: Vec<Vec<u8>>| {
        let mut bytes = vec![7];
        for message in messages {
            bytes.extend(frame(&message).expect("a small frame"));
        }
        bytes
    };
    let to_till = [
        ToTill::Hello {
            protocol: shared::link::LINK_PROTOCOL_VERSION,
            daemon: "sync-daemon".into(),
        },
        ToTill::Fetch {
            after: Some(Seq(6)),
            max: 100,
        },
        ToTill::Acked { through: Seq(8) },
        ToTill::Broker(BrokerLink::Up),
        ToTill::Config(config.clone()),
        ToTill::Blacklist(list.clone()),
        ToTill::ServerTime {
            server: time.server,
        },
        ToTill::OrderResult(paid),
        ToTill::OrderNotSent {
            order,
            why: "no broker".into(),
        },
    ];
    put(
        "link_to_till",
        "all",
        &stream(to_till.iter().map(encode_to_till).collect()),
    );
    let to_daemon = [
        ToDaemon::Welcome {
            protocol: shared::link::LINK_PROTOCOL_VERSION,
            terminal,
            machine,
            uploaded_through: Some(Seq(6)),
            last_seq: Some(Seq(8)),
        },
        ToDaemon::Records { records },
        ToDaemon::Watermark {
            uploaded_through: Some(Seq(8)),
        },
        ToDaemon::Appended { last_seq: Seq(9) },
        ToDaemon::Applied {
            kind: DownlinkKind::Config,
            version: 5,
        },
        ToDaemon::Rejected {
            kind: DownlinkKind::Blacklist,
            reason: "too old".into(),
        },
        ToDaemon::Refused {
            reason: "protocol 1".into(),
        },
        ToDaemon::Order(submit),
    ];
    put(
        "link_to_daemon",
        "all",
        &stream(to_daemon.iter().map(encode_to_daemon).collect()),
    );

    // Card inputs: UID selector, 10 UID bytes, flags, header, slot A, slot B, trailer.
    for (name, flags) in [("raw", 0x00u8), ("signed", 0x0F), ("slot-a-only", 0x0B)] {
        let mut card = vec![0, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0, 0, flags];
        card.extend_from_slice(b"CPW\x01\x00\x01\x00\x00\x00\x2A\x00\x00\x00\x00\x00\x00");
        card.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0x27, 0x10, 1, 2, 3, 4, 0, 0, 0, 0]);
        card.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0x27, 0x10, 1, 2, 3, 3, 0, 0, 0, 0]);
        card.extend_from_slice(&[0xFF; 6]);
        card.extend_from_slice(&[0xFF, 0x07, 0x80, 0x69]);
        card.extend_from_slice(&[0xFF; 6]);
        put("card_blocks", name, &card);
    }

    let key = signing_key_from_seed([7; 32]);
    let virtual_code = VirtualCardCode::sign(&key, 1, VirtualAccount(5), 1_700_000_000, 60, 42);
    for (index, code) in WALLET_CODES
        .iter()
        .chain([&virtual_code.as_str()])
        .enumerate()
    {
        put("scanner_code", &format!("code-{index}"), code.as_bytes());
    }
    put(
        "scanner_code",
        "padded",
        format!("  {}\r\n", WALLET_CODES[2]).as_bytes(),
    );

    let qr_key = shared::qrpay::TerminalQrKey::from_bytes([7; 32]);
    let qr_order = shared::qrpay::QrOrder {
        terminal: shared::TerminalId(0x0102_0304_0506_0708),
        intent: shared::Seq(1234),
        amount: shared::Fen::new(1250),
        machine: shared::MachineNumber::new(58).expect("a machine number"),
        created_at_s: 1_700_000_000,
        valid_for_s: 600,
    };
    let qr_payload = qr_order.payload(&qr_key).expect("fits");
    put("qr_payload", "order", qr_payload.as_bytes());

    let repo = root.parent().expect("fuzz/ sits in the repository");
    let copy = |target: &str, from: PathBuf| {
        let bytes = std::fs::read(&from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        let name = from
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        put(target, &name, &bytes);
    };
    copy("till_toml", repo.join("packaging/etc/till.toml"));
    copy("campus_files", repo.join("docs/campus-config.example.toml"));
    put(
        "campus_files",
        "blacklist.txt",
        b"# lost cards\nA1B2C3D4\n04A1B2C3D4E5F6  # staff\n\n",
    );
    copy(
        "sim_cards_toml",
        repo.join("pos-firmware/src/sim/cards/testdata/sim-cards-written-by-the-old-writer.toml"),
    );
    let scratch = std::env::temp_dir().join(format!("till-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    SimCards::create(&scratch, default_cards()).expect("the factory cards are made");
    let factory = std::fs::read(scratch.join(SIM_CARDS_FILE)).expect("the cards file");
    put("sim_cards_toml", "factory.toml", &factory);
    let _ = std::fs::remove_dir_all(&scratch);
    println!("seeds written under {}", corpus.display());
}

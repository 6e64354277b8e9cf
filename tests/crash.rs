//! The till survives SIGKILL at the moments that matter for money: right after it showed
//! success, between a sale's (or a top-up's) intent and its card write, between the card write
//! and the commit, and at random points under a stream of sales. After each kill the journal is audited and the
//! simulated cards are compared with it: zero sales lost, zero taken twice, no phantom success.

use shared::record::RecordBody;
use shared::Fen;
use till_tests::{assert_cards_match_journal, audit_journal, TillProcess};

const SALE: &str = "type 12.5\nkeys Enter\ntap card-1\n";

#[test]
fn a_sale_shown_as_successful_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut till = TillProcess::start(dir.path(), &[]);
    till.send(SALE);
    till.wait_for("M| 机号0001 联机 | 交易成功 | ¥12.50");
    till.kill();

    let audit = audit_journal(dir.path());
    assert_eq!(
        (audit.intents, audit.committed, audit.unresolved.len()),
        (1, 1, 0)
    );
    assert_cards_match_journal(dir.path(), &audit);

    // After the restart the till's totals still count the sale.
    let mut till = TillProcess::start(dir.path(), &[]);
    till.send("keys Clear 5\nexpect merchant 1笔 ¥12.50\nkeys Clear 3\nexpect merchant ¥12.50\n");
    till.finish();
}

/// Starts a sale on a fresh till that stops dead at `pause_at`, SIGKILLs it there, and checks
/// the journal holds exactly one unresolved intent. The intent is durable before the card is
/// touched (printed lines lag the journal, so this audit is what proves it).
fn sale_killed_at(pause_at: &str, paused_marker: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut till = TillProcess::start(dir.path(), &["--pause-at", pause_at]);
    till.send(SALE);
    till.wait_for(paused_marker);
    till.kill();
    let audit = audit_journal(dir.path());
    assert_eq!(
        (audit.intents, audit.committed, audit.unresolved.len()),
        (1, 0, 1)
    );
    dir
}

#[test]
fn a_kill_between_intent_and_card_write_leaves_no_phantom_sale() {
    let dir = sale_killed_at("before-card-write", "PAUSED BeforeCardWrite");
    let audit = audit_journal(dir.path());
    assert_cards_match_journal(dir.path(), &audit); // the card still has its ¥100

    // The restarted till says a sale is unresolved, counts nothing, and the card's next tap
    // settles it as not charged.
    let mut till = TillProcess::start(dir.path(), &[]);
    till.send("expect merchant 待核1\nkeys Clear 5\nexpect merchant 0笔 ¥0.00\ntap card-1\n");
    till.wait_for("sale-aborted #1 CardNotDebited");
    till.send("expect merchant 未扣款\n");
    let transcript = till.finish();
    assert!(
        !transcript.iter().any(|l| l.contains("交易成功")),
        "no success was ever shown"
    );

    let audit = audit_journal(dir.path());
    assert_eq!(
        (audit.committed, audit.aborted, audit.unresolved.len()),
        (0, 1, 0)
    );
    assert_cards_match_journal(dir.path(), &audit);
}

#[test]
fn a_kill_after_the_card_write_loses_no_sale_and_never_charges_twice() {
    let dir = sale_killed_at("after-card-write", "PAUSED AfterCardWrite");

    // The card was charged but the commit never made it: the next tap of that card, during a new
    // sale, first settles the old one as paid (without charging again) and asks to tap again.
    let mut till = TillProcess::start(dir.path(), &[]);
    till.send("type 3\nkeys Enter\ntap card-1\n");
    till.wait_for("sale-committed #1 ¥12.50 card 1A2B3C4D balance ¥87.50 recovered");
    till.send("expect merchant 已扣款\nexpect card card-1 87.50\ntap card-1\n");
    till.wait_for("交易成功");
    till.send("expect card card-1 84.50\nkeys Clear 5\nexpect merchant 2笔 ¥15.50\n");
    till.finish();

    let audit = audit_journal(dir.path());
    assert_eq!(
        (
            audit.intents,
            audit.committed,
            audit.recovered,
            audit.unresolved.len()
        ),
        (2, 2, 1, 0)
    );
    assert_cards_match_journal(dir.path(), &audit);
}

/// The card centre's top-up of ¥50 onto card-2 (staff menu 3).
const TOP_UP: &str =
    "keys F2 1 7\ntype 123456\nkeys Enter\ntype 3\ntype 50\nkeys Enter\ntap card-2\n";

#[test]
fn a_top_up_killed_before_its_card_write_is_resumed_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut till = TillProcess::start(dir.path(), &["--pause-at", "before-card-write"]);
    till.send(TOP_UP);
    till.wait_for("PAUSED BeforeCardWrite");
    till.kill();
    let audit = audit_journal(dir.path());
    assert_eq!((audit.load_intents, audit.unresolved.len()), (1, 1));
    assert_cards_match_journal(dir.path(), &audit); // card-2 still ¥50

    // At the card centre again, the unchanged card continues the paid top-up (the seeds'
    // "continue load"), once.
    let mut till = TillProcess::start(dir.path(), &[]);
    till.send("keys F2 1 7\ntype 123456\nkeys Enter\ntype 3\ntype 10\nkeys Enter\ntap card-2\n");
    till.wait_for("load-committed #1 ¥50.00 card 0452617A8B9C80 balance ¥100.00");
    till.send("expect card card-2 100.00\n");
    till.finish();
    let audit = audit_journal(dir.path());
    assert_eq!(
        (
            audit.load_intents,
            audit.loads_committed,
            audit.unresolved.len()
        ),
        (1, 1, 0)
    );
    assert_cards_match_journal(dir.path(), &audit);
}

#[test]
fn a_top_up_killed_after_its_card_write_is_recovered_never_loaded_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut till = TillProcess::start(dir.path(), &["--pause-at", "after-card-write"]);
    till.send(TOP_UP);
    till.wait_for("PAUSED AfterCardWrite");
    till.kill();
    let audit = audit_journal(dir.path());
    assert_eq!((audit.load_intents, audit.loads_committed), (1, 0));

    // The card holds the load; its next tap (here at a sale) commits it as recovered and the
    // sale goes on at the following tap: ¥50 + ¥50 - ¥3.
    let mut till = TillProcess::start(dir.path(), &[]);
    till.send("expect merchant 待核1\ntype 3\nkeys Enter\ntap card-2\n");
    till.wait_for("load-committed #1 ¥50.00 card 0452617A8B9C80 balance ¥100.00 recovered");
    till.send("expect merchant 上次充值已到账\ntap card-2\n");
    till.wait_for("交易成功");
    till.send("expect card card-2 97.00\n");
    till.finish();
    let audit = audit_journal(dir.path());
    assert_eq!(
        (
            audit.loads_committed,
            audit.committed,
            audit.unresolved.len()
        ),
        (1, 1, 0)
    );
    assert_cards_match_journal(dir.path(), &audit);
}

/// A small deterministic generator, so a failing run can be replayed with its seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_sigkills_under_a_stream_of_sales_lose_nothing() {
    const KILLS: u64 = 40;
    const SALES_PER_RUN: u64 = 40;
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_CAFE_u64);
    let mut rng = XorShift(seed);
    let dir = tempfile::tempdir().unwrap();
    let cards = ["card-1", "card-2"];
    let mut sale_number: u64 = 0;
    for run in 0..KILLS {
        // Each run starts later in the day, so times move forward like on a real till.
        let start = format!("2026-11-23 {:02}:{:02}:00", 11 + run / 20, (run % 20) * 3);
        let mut till = TillProcess::start(dir.path(), &["--start", &start]);
        let mut script = String::new();
        for _ in 0..SALES_PER_RUN {
            sale_number += 1;
            // Distinct small amounts: no duplicate reminders, and the cards last the whole test.
            let amount = Fen::new(50 + sale_number % 97);
            let card = cards[(rng.next() % 2) as usize];
            script.push_str(&format!(
                "type {amount}\nkeys Enter\ntap {card}\ntap {card}\nwait 1s\nkeys Clear\n"
            ));
        }
        till.send(&script);
        till.wait_for("till started");
        std::thread::sleep(std::time::Duration::from_millis(rng.next() % 150));
        till.kill();
        audit_journal(dir.path()); // every intermediate state is consistent too
    }

    // Every card comes back once: unresolved sales settle, and the books must balance.
    let mut till = TillProcess::start(dir.path(), &["--start", "2026-11-23 18:00:00"]);
    till.send("tap card-1\nwait 4s\ntap card-2\nwait 4s\n");
    till.finish();
    let audit = audit_journal(dir.path());
    assert!(
        audit.unresolved.is_empty(),
        "unresolved after every card returned: {:?}",
        audit.unresolved
    );
    assert_cards_match_journal(dir.path(), &audit);
    println!(
        "random kills: seed {seed:#x}, {KILLS} kills, {} records, {} intents, {} committed ({} recovered after a kill), {} aborted, {} in doubt",
        audit.records, audit.intents, audit.committed, audit.recovered, audit.aborted, audit.in_doubt
    );
    assert!(audit.committed > 0, "the stream made sales");
    let journal = pos_firmware::journal::Journal::open(dir.path()).unwrap();
    let first_sale = journal
        .records_from(shared::Seq::FIRST)
        .filter_map(Result::ok)
        .any(|r| matches!(r.body, RecordBody::SaleCommitted(_)));
    assert!(first_sale);
}

/// Runs the till once on `data_dir` with no script and returns its output and its stderr.
fn start_with_no_input(data_dir: &std::path::Path) -> (std::process::Output, String) {
    let output = std::process::Command::new(till_tests::till_binary())
        .args(["script", "-", "--data-dir"])
        .arg(data_dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

#[test]
fn a_damaged_journal_stops_the_till_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut till = TillProcess::start(dir.path(), &[]);
    till.send(SALE);
    till.wait_for("交易成功");
    till.finish();

    // Damage sled's log: the till must refuse to start rather than sell without its journal.
    let db = dir.path().join("db");
    let length = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(length / 3)
        .unwrap();
    let (output, stderr) = start_with_no_input(dir.path());
    assert_eq!(
        output.status.code(),
        Some(3),
        "refused to start; stderr: {stderr}"
    );
    assert!(
        stderr.contains("cannot start the till") && stderr.contains("journal"),
        "says why: {stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("请输入金额"),
        "never reached the sales screen"
    );

    // A second till on a journal that is in use is refused too.
    let fresh = tempfile::tempdir().unwrap();
    let mut first = TillProcess::start(fresh.path(), &[]);
    first.wait_for("till started");
    let (output, stderr) = start_with_no_input(fresh.path());
    assert_eq!(
        output.status.code(),
        Some(3),
        "second till refused; stderr: {stderr}"
    );
    assert!(
        stderr.contains("in use") || stderr.contains("lock"),
        "says the journal is in use: {stderr}"
    );
    first.finish();
}

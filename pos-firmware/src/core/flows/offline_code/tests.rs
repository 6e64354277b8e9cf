//! The offline virtual-card sale: what is accepted, each refusal (journaling nothing), the
//! limits at and over their boundaries, across a restart and across clock jumps.

use crate::core::testkit::code_payments;
use keymap::Command;
use shared::campus::{CampusConfig, OfflineCodeLimits};
use shared::paycode::VirtualAccount;
use shared::record::{OfflineCodeSale, RecordBody, SeenNonce, TillSnapshot};
use shared::{Fen, TerminalId, UnixMillis};

use super::super::super::testkit::{
    effects, order_calls, records, till, virtual_code, wechat_code, NOW,
};
use super::super::super::{Effect, Mode, Till};
use super::super::sale::SaleMode;
use super::MAX_SEEN_NONCES;

/// The test campus's limits: ¥10 a sale, ¥20 and 3 codes per account per day.
const LIMITS: OfflineCodeLimits = OfflineCodeLimits {
    max_sale: Fen::from_yuan(10),
    max_per_account_per_day: Fen::from_yuan(20),
    max_count_per_account_per_day: 3,
};
const ALICE: u64 = 2024_0001;
const BOB: u64 = 2024_0002;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn at(offset_ms: i64) -> UnixMillis {
    UnixMillis(NOW.0 + offset_ms)
}

/// An English till with no link (offline) that applied a campus configuration with these
/// offline limits and keys: (key id, seed of the signing key).
fn offline_till(limits: Option<OfflineCodeLimits>, keys: &[(u8, u8)]) -> Till {
    let mut till = till();
    let config = CampusConfig {
        payments: Some(code_payments(keys, limits)),
        ..shared::testing::campus_config(1)
    };
    till.handle_campus_config(config, NOW).unwrap();
    effects(&mut till);
    assert!(till.is_offline());
    till
}

/// The till the test campus configured: limits [`LIMITS`], test key 7 as id 1.
fn good_till() -> Till {
    offline_till(Some(LIMITS), &[(1, 7)])
}

/// Types `fen` as an amount and Enter at `now`, then scans `code`: the effects of the scan.
fn sell(till: &mut Till, fen: u64, code: &str, now: UnixMillis) -> Vec<Effect> {
    let amount = Fen::new(fen).to_string();
    for key in amount.chars() {
        let command = match key {
            '.' => Command::Dot,
            digit => Command::Digit(digit as u8 - b'0'),
        };
        till.handle_command(command, now);
    }
    till.handle_command(Command::Enter, now);
    effects(till);
    till.handle_code(code, now);
    let out = effects(till);
    if !matches!(till.mode, Mode::Sale(SaleMode::ConfirmDuplicate { .. })) {
        // Back to amount entry for the next sale (a refusal leaves the amount waiting).
        till.handle_command(Command::Clear, now);
        effects(till);
    }
    out
}

/// Alice's code number `nonce`, issued at `issued`.
fn alice(issued: UnixMillis, nonce: u64) -> String {
    virtual_code(ALICE, issued, nonce)
}

/// The offline sales among `effects`.
fn sales(effects: &[Effect]) -> Vec<OfflineCodeSale> {
    records(effects)
        .into_iter()
        .filter_map(|body| match body {
            RecordBody::OfflineCodeSale(sale) => Some(sale),
            _ => None,
        })
        .collect()
}

/// The merchant's lines (status line left out) and the customer's, each joined by " | ".
fn shown(till: &Till) -> (String, String) {
    let displays = till.displays();
    let join = |lines: &[String]| {
        let end = lines
            .iter()
            .rposition(|l| !l.is_empty())
            .map_or(0, |at| at + 1);
        lines[..end].join(" | ")
    };
    (
        join(&displays.merchant.lines[1..]),
        join(&displays.customer.lines),
    )
}

/// The till started again from its snapshot at `now` (a power cut).
fn restart(till: &Till, now: UnixMillis) -> Till {
    let snapshot: TillSnapshot = till.snapshot().clone();
    Till::new(till.base_config.clone(), TerminalId(9), snapshot, now)
}

#[test]
fn an_offline_virtual_card_code_is_one_durable_sale_with_its_nonce_and_the_accounts_day() {
    let mut till = good_till();
    let effects = sell(&mut till, 800, &alice(NOW, 42), NOW);
    assert!(order_calls(&effects).is_empty(), "nothing is sent: offline");
    let journaled: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Journal { record, snapshot } => Some((record.body.clone(), snapshot.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(journaled.len(), 1, "one record: {effects:?}");
    let (RecordBody::OfflineCodeSale(sale), snapshot) = &journaled[0] else {
        panic!("{journaled:?}");
    };
    assert_eq!(sale.amount, Fen::from_yuan(8));
    assert_eq!(sale.account, VirtualAccount(ALICE));
    assert_eq!((sale.key_id, sale.nonce, sale.valid_for_s), (1, 42, 60));
    // The snapshot written with the record holds its nonce, the account's day and the totals.
    assert_eq!(snapshot.seen_nonces.len(), 1);
    assert_eq!(snapshot.seen_nonces[0].nonce, 42);
    assert_eq!(snapshot.offline_accounts.len(), 1);
    assert_eq!(snapshot.offline_accounts[0].tally.count, 1);
    assert_eq!(snapshot.offline_accounts[0].tally.total, Fen::from_yuan(8));
    assert_eq!(snapshot.days[0].tally.total, Fen::from_yuan(8));
    assert_eq!(snapshot.code_days[0].tally.total, Fen::from_yuan(8));
    assert_eq!(snapshot.recent_amounts, vec![Fen::from_yuan(8)]);
    assert_eq!(
        snapshot.last_sale.map(|s| s.payer),
        Some(shared::record::Payer::VirtualCard(VirtualAccount(ALICE)))
    );
    // The success screen says it was offline (before the Clear `sell` typed after it).
    let mut till = good_till();
    till.handle_command(Command::Digit(8), NOW);
    till.handle_command(Command::Enter, NOW);
    till.handle_code(&alice(NOW, 43), NOW);
    assert_eq!(
        shown(&till),
        (
            "Payment OK | ¥8.00 | Offline Virtual card".to_string(),
            "Payment OK ¥8.00 | Offline Virtual card".to_string()
        )
    );
}

#[test]
fn each_refusal_says_why_and_journals_nothing() {
    let cases: [(Till, String, &str); 6] = [
        (
            offline_till(None, &[(1, 7)]),
            alice(NOW, 1),
            "Campus allows no offline codes | Tap card or scan the QR",
        ),
        (
            offline_till(Some(LIMITS), &[]),
            alice(NOW, 1),
            "No campus keys to verify | Tap card or scan the QR",
        ),
        (
            offline_till(Some(LIMITS), &[(1, 8)]),
            alice(NOW, 1),
            "Code invalid | Signature does not verify",
        ),
        (
            offline_till(Some(LIMITS), &[(2, 7)]),
            alice(NOW, 1),
            "Code invalid | Unknown key 1",
        ),
        (
            good_till(),
            alice(at(-60_000), 1),
            "Code expired, refresh it",
        ),
        (
            good_till(),
            alice(at(60_000), 1),
            "Code time is wrong | Check the clock",
        ),
    ];
    for (mut till, code, why) in cases {
        let scanned = {
            till.handle_command(Command::Digit(8), NOW);
            till.handle_command(Command::Enter, NOW);
            effects(&mut till);
            till.handle_code(&code, NOW);
            effects(&mut till)
        };
        assert!(records(&scanned).is_empty(), "{why}: {scanned:?}");
        assert!(order_calls(&scanned).is_empty(), "{why}");
        let (merchant, customer) = shown(&till);
        assert!(merchant.starts_with(why), "{merchant:?} is not {why:?}");
        assert!(
            customer.starts_with(why),
            "the payer reads it too: {customer:?}"
        );
        assert!(till.snapshot().seen_nonces.is_empty());
    }
}

#[test]
fn a_wallet_code_offline_tells_the_merchant_to_offer_the_qr() {
    let mut till = good_till();
    till.handle_command(Command::Digit(8), NOW);
    till.handle_command(Command::Enter, NOW);
    effects(&mut till);
    till.handle_code(&wechat_code(1), NOW);
    let scanned = effects(&mut till);
    assert!(records(&scanned).is_empty() && order_calls(&scanned).is_empty());
    let (merchant, customer) = shown(&till);
    assert_eq!(
        merchant,
        "WeChat | No link: codes cannot pay | Offer the QR code instead"
    );
    assert_eq!(customer, "WeChat | Tap card or scan the QR");
    // In Chinese.
    till.base_config.lang = super::super::super::config::Lang::Zh;
    till.config.lang = super::super::super::config::Lang::Zh;
    till.handle_code(&wechat_code(2), NOW);
    assert!(
        shown(&till).0.ends_with("请改用扫码付款(二维码)"),
        "{:?}",
        shown(&till)
    );
}

#[test]
fn a_nonce_seen_is_refused_again_after_a_restart_and_after_the_clock_jumps_back() {
    let mut till = good_till();
    let code = alice(NOW, 42);
    assert_eq!(sales(&sell(&mut till, 500, &code, NOW)).len(), 1);
    // After a power cut the RAM list of used codes is gone; the snapshot's nonces are not.
    let mut till = restart(&till, at(1_000));
    let again = sell(&mut till, 600, &code, at(1_000));
    assert!(records(&again).is_empty(), "{again:?}");
    till.handle_command(Command::Digit(6), at(1_000));
    till.handle_command(Command::Enter, at(1_000));
    till.handle_code(&code, at(1_000));
    assert_eq!(shown(&till).0, "Code already used");
    // The clock set back 30 s: still inside the code's minute, still used.
    let back = sell(&mut till, 700, &code, at(-30_000));
    assert!(records(&back).is_empty(), "{back:?}");
}

#[test]
fn the_per_sale_limit_takes_its_amount_and_refuses_a_fen_more() {
    let mut till = good_till();
    assert_eq!(sales(&sell(&mut till, 1_000, &alice(NOW, 1), NOW)).len(), 1);
    till.handle_command(Command::Digit(1), NOW);
    till.handle_command(Command::Digit(0), NOW);
    till.handle_command(Command::Dot, NOW);
    till.handle_command(Command::Digit(0), NOW);
    till.handle_command(Command::Digit(1), NOW);
    till.handle_command(Command::Enter, NOW);
    effects(&mut till);
    till.handle_code(&virtual_code(BOB, NOW, 2), NOW);
    assert!(records(&effects(&mut till)).is_empty());
    assert_eq!(shown(&till).0, "Offline code limit | Per sale ¥10.00");
}

#[test]
fn the_day_limit_per_account_holds_at_its_boundary_across_a_restart_and_a_clock_jump_back() {
    let mut till = good_till();
    assert_eq!(sales(&sell(&mut till, 1_000, &alice(NOW, 1), NOW)).len(), 1);
    assert_eq!(sales(&sell(&mut till, 999, &alice(NOW, 2), NOW)).len(), 1);
    // ¥19.99 paid: one fen more reaches ¥20.00 exactly (taken), two fen would not be.
    let refused = sell(&mut till, 2, &alice(NOW, 3), NOW);
    assert!(sales(&refused).is_empty());
    let mut till = restart(&till, at(1_000));
    till.handle_command(Command::Digit(0), at(1_000));
    till.handle_command(Command::Dot, at(1_000));
    till.handle_command(Command::Digit(0), at(1_000));
    till.handle_command(Command::Digit(2), at(1_000));
    till.handle_command(Command::Enter, at(1_000));
    till.handle_code(&alice(at(1_000), 4), at(1_000));
    assert_eq!(
        shown(&till).0,
        "Offline code limit | Per account a day ¥20.00"
    );
    till.handle_command(Command::Clear, at(1_000));
    assert_eq!(
        sales(&sell(&mut till, 1, &alice(at(1_000), 5), at(1_000))).len(),
        1
    );
    // The clock set back an hour (same local day, a code of that time): still the same day.
    let back = sell(&mut till, 1, &alice(at(-HOUR_MS), 6), at(-HOUR_MS));
    assert!(sales(&back).is_empty(), "{back:?}");
    // Another account is not held by Alice's day.
    let bob = sell(&mut till, 1_000, &virtual_code(BOB, NOW, 7), NOW);
    assert_eq!(sales(&bob).len(), 1);
}

#[test]
fn the_count_limit_per_account_holds_across_a_restart_and_a_new_day_starts_afresh() {
    let mut till = good_till();
    for n in 1..=3 {
        let sold = sell(&mut till, 100 * n, &alice(NOW, n), NOW);
        assert_eq!(sales(&sold).len(), 1, "code {n}");
    }
    let mut till = restart(&till, at(2_000));
    till.handle_command(Command::Digit(4), at(2_000));
    till.handle_command(Command::Enter, at(2_000));
    till.handle_code(&alice(at(2_000), 4), at(2_000));
    assert_eq!(
        shown(&till).0,
        "Offline code limit | At most 3 a day per account"
    );
    till.handle_command(Command::Clear, at(2_000));
    // The clock jumps a day on, and so does the campus (a code issued then): a new day.
    let tomorrow = sell(&mut till, 400, &alice(at(DAY_MS), 5), at(DAY_MS));
    assert_eq!(sales(&tomorrow).len(), 1);
    // A code older than its minute is expired, whatever day the till thinks it is.
    let stale = sell(
        &mut till,
        500,
        &alice(at(DAY_MS - 30_000), 6),
        at(DAY_MS + 40_000),
    );
    assert!(sales(&stale).is_empty());
}

#[test]
fn the_duplicate_reminder_applies_offline_and_an_enter_lets_the_next_code_pay() {
    let mut till = good_till();
    assert_eq!(sales(&sell(&mut till, 500, &alice(NOW, 1), NOW)).len(), 1);
    let second = sell(&mut till, 500, &alice(NOW, 2), NOW);
    assert!(records(&second).is_empty(), "{second:?}");
    assert!(matches!(
        till.mode,
        Mode::Sale(SaleMode::ConfirmDuplicate { .. })
    ));
    till.handle_command(Command::Enter, NOW);
    effects(&mut till);
    till.handle_code(&alice(NOW, 2), NOW);
    assert_eq!(sales(&effects(&mut till)).len(), 1);
}

#[test]
fn a_full_nonce_list_drops_expired_nonces_first_and_full_of_live_ones_refuses() {
    let till = good_till();
    let mut snapshot = till.snapshot().clone();
    snapshot.seen_nonces = (0..MAX_SEEN_NONCES as u64)
        .map(|n| SeenNonce {
            key_id: 1,
            nonce: 1_000 + n,
            expires_at: at(30_000),
        })
        .collect();
    let mut full = Till::new(
        till.base_config.clone(),
        TerminalId(9),
        snapshot.clone(),
        NOW,
    );
    let refused = sell(&mut full, 500, &alice(NOW, 1), NOW);
    assert!(records(&refused).is_empty());
    full.handle_command(Command::Digit(5), NOW);
    full.handle_command(Command::Enter, NOW);
    full.handle_code(&alice(NOW, 1), NOW);
    assert_eq!(
        shown(&full).0,
        "Offline code list full | Reconnect to upload"
    );
    // One of them expired: it makes the room, the others stay.
    snapshot.seen_nonces[7].expires_at = at(-1);
    let mut room = Till::new(till.base_config.clone(), TerminalId(9), snapshot, NOW);
    assert_eq!(sales(&sell(&mut room, 500, &alice(NOW, 1), NOW)).len(), 1);
    let nonces = &room.snapshot().seen_nonces;
    assert_eq!(nonces.len(), MAX_SEEN_NONCES);
    assert!(nonces.iter().all(|n| n.nonce != 1_007));
    assert!(nonces.iter().any(|n| n.nonce == 1));
}

//! The campus settling uploaded offline virtual-card sales: once per record, a nonce once
//! across tills and online orders, forged and over-limit sales as alarms, debt for a short
//! balance, and the same state after a restart.

use super::super::codes::virtual_card_code;
use super::super::*;
use shared::campus::OfflineCodeLimits;
use shared::pay::OrderRequest;
use shared::paycode::VirtualCardCode;
use shared::record::OfflineCodeSale;

const TILL_A: TerminalId = TerminalId(0xA);
const TILL_B: TerminalId = TerminalId(0xB);
const ALICE: VirtualAccount = VirtualAccount(2024_0001);
const POOR: VirtualAccount = VirtualAccount(2024_0009);
const T0: UnixMillis = UnixMillis(1_800_000_000_000);
/// The campus's limits in these tests: ¥10 a sale, ¥20 and 3 codes per account per day.
const RULES: OfflineRules = OfflineRules {
    limits: OfflineCodeLimits {
        max_sale: Fen::from_yuan(10),
        max_per_account_per_day: Fen::from_yuan(20),
        max_count_per_account_per_day: 3,
    },
    utc_offset_minutes: 480,
};

fn backend() -> PaymentBackend {
    PaymentBackend::new(
        SIM_CAMPUS_KEY_SEED,
        [(ALICE, Fen::from_yuan(50)), (POOR, Fen::from_yuan(3))],
    )
    .with_offline_rules(RULES)
}

/// The record a till journals for `account`'s code `nonce` (issued at T0) paying `fen`.
fn sale(account: VirtualAccount, nonce: u64, fen: u64) -> OfflineCodeSale {
    let text = virtual_card_code(account, T0, nonce);
    let code = VirtualCardCode::parse(&text).expect("a code");
    OfflineCodeSale {
        amount: Fen::new(fen),
        account,
        key_id: code.key_id,
        issued_at_s: code.issued_at_s,
        valid_for_s: code.valid_for_s,
        nonce,
        signature: code.signature(),
        fixed_price: false,
    }
}

fn later(s: i64) -> UnixMillis {
    UnixMillis(T0.0 + s * 1000)
}

fn charged(settled: OfflineSettlement) -> (Fen, Fen, Option<OfflineAlarm>) {
    match settled {
        OfflineSettlement::Charged {
            balance_after,
            debt,
            alarm,
            ..
        } => (balance_after, debt, alarm),
        refused => panic!("not charged: {refused:?}"),
    }
}

#[test]
fn an_uploaded_offline_sale_is_charged_once_however_often_it_is_resent() {
    let mut campus = backend();
    let record = sale(ALICE, 1, 800);
    let first = campus
        .settle_offline_sale(TILL_A, Seq(5), &record, later(600))
        .unwrap();
    assert_eq!(charged(first), (Fen::from_yuan(42), Fen::ZERO, None));
    for resend in 0..3 {
        let again = campus
            .settle_offline_sale(TILL_A, Seq(5), &record, later(700 + resend))
            .unwrap();
        assert_eq!(again, first, "the first answer, nothing more charged");
    }
    assert_eq!(campus.balance(ALICE), Some(Fen::from_yuan(42)));
    assert_eq!(campus.ledger().len(), 1);
    let entry = campus.ledger()[0];
    assert_eq!(entry.statement.label(), "付款码");
    assert_eq!((entry.terminal, entry.order.intent), (TILL_A, Seq(5)));
    assert_eq!(entry.amount, Fen::from_yuan(8));
    assert_eq!(campus.offline_alarms(), 0);
}

#[test]
fn a_nonce_replayed_at_a_second_till_is_an_alarm_and_one_charge() {
    let mut campus = backend();
    let record = sale(ALICE, 7, 500);
    charged(
        campus
            .settle_offline_sale(TILL_A, Seq(3), &record, later(300))
            .unwrap(),
    );
    let replay = campus
        .settle_offline_sale(TILL_B, Seq(9), &record, later(400))
        .unwrap();
    assert_eq!(replay, OfflineSettlement::Refused(OfflineAlarm::NonceSpent));
    assert_eq!(campus.balance(ALICE), Some(Fen::from_yuan(45)));
    assert_eq!(campus.ledger().len(), 1);
    assert_eq!(campus.offline_alarms(), 1);
    // Till B resends its upload: the same alarm, not counted again.
    campus
        .settle_offline_sale(TILL_B, Seq(9), &record, later(500))
        .unwrap();
    assert_eq!(campus.offline_alarms(), 1);
}

#[test]
fn a_nonce_is_spent_once_between_online_orders_and_offline_sales() {
    let mut campus = backend();
    // Spent online first: the offline upload of the same code is a replay.
    let text = virtual_card_code(ALICE, T0, 11);
    let submit = OrderCall {
        order: OrderId {
            terminal: TILL_A,
            intent: Seq(1),
        },
        request: OrderRequest::Submit {
            amount: Fen::from_yuan(2),
            method: CodeMethod::VirtualCard,
            code: PaymentCode::recognise(&text).unwrap(),
            at: T0,
        },
    };
    campus.handle_call(&submit, later(1)).unwrap();
    let offline = campus
        .settle_offline_sale(TILL_B, Seq(4), &sale(ALICE, 11, 200), later(60))
        .unwrap();
    assert_eq!(
        offline,
        OfflineSettlement::Refused(OfflineAlarm::NonceSpent)
    );
    // Spent offline first: an online submit of that code is declined as used.
    charged(
        campus
            .settle_offline_sale(TILL_B, Seq(5), &sale(ALICE, 12, 200), later(2))
            .unwrap(),
    );
    let online = OrderCall {
        order: OrderId {
            terminal: TILL_A,
            intent: Seq(2),
        },
        request: OrderRequest::Submit {
            amount: Fen::from_yuan(2),
            method: CodeMethod::VirtualCard,
            code: PaymentCode::recognise(&virtual_card_code(ALICE, T0, 12)).unwrap(),
            at: T0,
        },
    };
    let answer = campus.handle_call(&online, later(3)).unwrap().unwrap();
    assert_eq!(answer.state, OrderState::Declined(DeclineReason::CodeUsed));
    assert_eq!(campus.balance(ALICE), Some(Fen::from_yuan(46)));
}

#[test]
fn a_forged_or_altered_sale_is_an_alarm_not_a_charge() {
    let mut campus = backend();
    let mut altered = sale(ALICE, 21, 500);
    altered.account = POOR; // the signature was over Alice's account
    let settled = campus
        .settle_offline_sale(TILL_A, Seq(1), &altered, later(10))
        .unwrap();
    assert_eq!(
        settled,
        OfflineSettlement::Refused(OfflineAlarm::BadSignature)
    );
    let mut forged = sale(ALICE, 22, 500);
    forged.signature[0] ^= 1;
    let settled = campus
        .settle_offline_sale(TILL_A, Seq(2), &forged, later(10))
        .unwrap();
    assert_eq!(
        settled,
        OfflineSettlement::Refused(OfflineAlarm::BadSignature)
    );
    assert!(campus.ledger().is_empty());
    assert_eq!(campus.offline_alarms(), 2);
    // A forged sale does not spend the real code's nonce.
    charged(
        campus
            .settle_offline_sale(TILL_A, Seq(3), &sale(ALICE, 22, 500), later(11))
            .unwrap(),
    );
}

#[test]
fn limits_are_recomputed_across_tills_over_the_sale_limit_refused_over_the_day_charged_with_an_alarm(
) {
    let mut campus = backend();
    let over_sale = campus
        .settle_offline_sale(TILL_A, Seq(1), &sale(ALICE, 31, 1_001), later(1))
        .unwrap();
    assert_eq!(
        over_sale,
        OfflineSettlement::Refused(OfflineAlarm::OverSaleLimit)
    );
    // Till A kept to ¥20 a day for Alice, and so did till B; together they went over.
    for (seq, nonce) in [(2, 32), (3, 33)] {
        let at_a = sale(ALICE, nonce, 1_000);
        let (_, _, alarm) = charged(
            campus
                .settle_offline_sale(TILL_A, Seq(seq), &at_a, later(2))
                .unwrap(),
        );
        assert_eq!(alarm, None, "within ¥20 so far");
    }
    let at_b = campus
        .settle_offline_sale(TILL_B, Seq(1), &sale(ALICE, 34, 1_000), later(3))
        .unwrap();
    assert_eq!(
        charged(at_b).2,
        Some(OfflineAlarm::OverDayLimit),
        "¥30 in a day"
    );
    assert_eq!(
        campus.balance(ALICE),
        Some(Fen::from_yuan(20)),
        "charged all the same"
    );
    assert_eq!(campus.offline_alarms(), 2);
}

#[test]
fn a_short_balance_is_charged_to_zero_and_the_rest_booked_as_debt() {
    let mut campus = backend();
    let settled = campus
        .settle_offline_sale(TILL_A, Seq(1), &sale(POOR, 41, 500), later(1))
        .unwrap();
    assert_eq!(
        charged(settled),
        (
            Fen::ZERO,
            Fen::from_yuan(2),
            Some(OfflineAlarm::BalanceShort)
        )
    );
    assert_eq!(campus.debt(POOR), Fen::from_yuan(2));
    assert_eq!(
        campus.ledger()[0].amount,
        Fen::from_yuan(5),
        "the merchant is paid"
    );
    assert_eq!(campus.offline_alarms(), 1);
}

#[test]
fn a_reopened_campus_remembers_its_offline_settlements_and_charges_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payments.log");
    let accounts = [(ALICE, Fen::from_yuan(50)), (POOR, Fen::from_yuan(3))];
    let open = || {
        PaymentBackend::new(SIM_CAMPUS_KEY_SEED, accounts)
            .with_offline_rules(RULES)
            .durable(&path)
            .unwrap()
    };
    let mut campus = open();
    let record = sale(ALICE, 51, 700);
    campus
        .settle_offline_sale(TILL_A, Seq(1), &record, later(1))
        .unwrap();
    campus
        .settle_offline_sale(TILL_B, Seq(1), &record, later(2))
        .unwrap();
    let mut reopened = open();
    assert_eq!(reopened.balance(ALICE), Some(Fen::from_yuan(43)));
    assert_eq!(reopened.offline_alarms(), 1);
    assert_eq!(reopened.ledger(), campus.ledger());
    let again = reopened
        .settle_offline_sale(TILL_A, Seq(1), &record, later(3))
        .unwrap();
    assert_eq!(charged(again).0, Fen::from_yuan(43));
    assert_eq!(reopened.balance(ALICE), Some(Fen::from_yuan(43)));
}

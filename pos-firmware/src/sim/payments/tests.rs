//! Tests of the simulated payment back end, as sentences: each wallet behaviour, the virtual
//! card's checks, idempotency, reversals, the ledger and the durable call log.

use super::*;
use proptest::prelude::*;
use shared::paycode::VirtualCardCode;
use shared::Seq;

const TILL: TerminalId = TerminalId(0x7);
const ALICE: VirtualAccount = VirtualAccount(2024_0001);
const BOB: VirtualAccount = VirtualAccount(2024_0002);
const FROZEN: VirtualAccount = VirtualAccount(2024_0003);
/// The campus's clock at the start of every test.
const T0: UnixMillis = UnixMillis(1_800_000_000_000);

fn at(seconds: i64) -> UnixMillis {
    UnixMillis(T0.0 + seconds * 1000)
}

fn backend() -> PaymentBackend {
    PaymentBackend::new_with_frozen(
        SIM_CAMPUS_KEY_SEED,
        [
            (ALICE, Fen::from_yuan(50)),
            (BOB, Fen::new(300)),
            (FROZEN, Fen::from_yuan(50)),
        ],
        [FROZEN],
    )
}

fn order(intent: u64) -> OrderId {
    OrderId {
        terminal: TILL,
        intent: Seq(intent),
    }
}

fn submit(intent: u64, code: &str, amount: Fen) -> OrderCall {
    let code = PaymentCode::recognise(code).expect("a payment code");
    OrderCall {
        order: order(intent),
        request: OrderRequest::Submit {
            amount,
            method: code.method(),
            code,
            at: at(-1),
        },
    }
}

fn query(intent: u64) -> OrderCall {
    OrderCall {
        order: order(intent),
        request: OrderRequest::Query,
    }
}

fn reverse(intent: u64) -> OrderCall {
    OrderCall {
        order: order(intent),
        request: OrderRequest::Reverse,
    }
}

/// The state the back end answers, panicking on "no answer" and log errors (tests only).
fn answer(backend: &mut PaymentBackend, call: &OrderCall, now: UnixMillis) -> OrderState {
    let result = backend
        .handle_call(call, now)
        .expect("in memory")
        .expect("an answer");
    assert_eq!(result.order, call.order);
    assert_eq!(result.server_time, now);
    result.state
}

fn wallet(behaviour: WalletBehaviour, serial: u32) -> String {
    wallet_code(CodeMethod::WeChat, behaviour, serial)
}

fn card(account: VirtualAccount, issued: UnixMillis, nonce: u64) -> String {
    virtual_card_code(account, issued, nonce)
}

fn paid_by(payer: CodePayer, balance_after: Option<Fen>, booked_at: UnixMillis) -> OrderState {
    OrderState::Paid {
        payer,
        balance_after,
        booked_at,
    }
}

fn charges_and_refunds(backend: &PaymentBackend, id: OrderId) -> (usize, usize) {
    let lines = backend.ledger().iter().filter(|e| e.order == id);
    let charges = lines
        .clone()
        .filter(|e| e.kind == EntryKind::Charge)
        .count();
    (charges, lines.count() - charges)
}

#[test]
fn a_paid_at_once_wallet_code_is_charged_as_the_submit_arrives() {
    let mut backend = backend();
    let code = wallet(WalletBehaviour::PaidAtOnce, 42);
    let paid = answer(&mut backend, &submit(1, &code, Fen::new(850)), at(0));
    assert_eq!(paid, paid_by(CodePayer::Wallet(42), None, at(0)));
    let line = backend.ledger()[0];
    assert_eq!(backend.ledger().len(), 1);
    assert_eq!(
        (line.kind, line.statement, line.method, line.amount),
        (
            EntryKind::Charge,
            StatementType::PaymentCode,
            CodeMethod::WeChat,
            Fen::new(850)
        )
    );
    assert_eq!(
        (line.terminal, line.sale_at, line.booked_at),
        (TILL, at(-1), at(0))
    );
    assert_eq!(line.statement.label(), "付款码");
}

#[test]
fn a_user_paying_order_is_paid_after_its_seconds_whether_or_not_anyone_asks() {
    let mut backend = backend();
    let code = wallet(WalletBehaviour::UserPayingThenPaid { after_s: 5 }, 1);
    let first = answer(&mut backend, &submit(1, &code, Fen::new(100)), at(0));
    assert_eq!(first, OrderState::UserPaying);
    assert_eq!(
        answer(&mut backend, &query(1), at(4)),
        OrderState::UserPaying
    );
    assert!(backend.ledger().is_empty());
    // Nobody asks about order 1 at 5 s; a later call of another order books it at 5 s.
    answer(&mut backend, &query(99), at(9));
    assert_eq!(backend.ledger()[0].booked_at, at(5));
    let later = answer(&mut backend, &query(1), at(10));
    assert_eq!(later, paid_by(CodePayer::Wallet(1), None, at(5)));
}

#[test]
fn a_payer_who_never_confirms_stays_user_paying_until_the_reversal_closes_it_unpaid() {
    let mut backend = backend();
    let code = wallet(WalletBehaviour::UserPayingNever, 1);
    answer(&mut backend, &submit(1, &code, Fen::new(100)), at(0));
    assert_eq!(
        answer(&mut backend, &query(1), at(600)),
        OrderState::UserPaying
    );
    let closed = answer(&mut backend, &reverse(1), at(601));
    assert_eq!(closed, OrderState::Reversed { refunded: false });
    assert!(backend.ledger().is_empty());
}

#[test]
fn a_reversal_before_the_payer_confirms_means_the_payer_is_never_charged() {
    let mut backend = backend();
    let code = wallet(WalletBehaviour::UserPayingThenPaid { after_s: 30 }, 1);
    answer(&mut backend, &submit(1, &code, Fen::new(100)), at(0));
    let closed = answer(&mut backend, &reverse(1), at(29));
    assert_eq!(closed, OrderState::Reversed { refunded: false });
    answer(&mut backend, &query(1), at(60));
    assert!(backend.ledger().is_empty());
}

#[test]
fn a_declining_wallet_code_is_declined_with_its_reason_and_charges_nothing() {
    for reason in [
        DeclineReason::InsufficientFunds,
        DeclineReason::PayerCancelled,
        DeclineReason::Other(4321),
    ] {
        let mut backend = backend();
        let code = wallet(WalletBehaviour::Declined(reason), 1);
        let state = answer(&mut backend, &submit(1, &code, Fen::new(100)), at(0));
        assert_eq!(state, OrderState::Declined(reason));
        // A declined order stays declined, even when reversed.
        assert_eq!(answer(&mut backend, &reverse(1), at(1)), state);
        assert!(backend.ledger().is_empty());
    }
}

#[test]
fn a_no_answer_code_is_booked_paid_and_a_query_says_so() {
    let mut backend = backend();
    let code = wallet(WalletBehaviour::NoAnswer, 3);
    let call = submit(1, &code, Fen::new(100));
    assert_eq!(backend.handle_call(&call, at(0)).unwrap(), None);
    assert_eq!(backend.ledger().len(), 1);
    let paid = paid_by(CodePayer::Wallet(3), None, at(0));
    assert_eq!(answer(&mut backend, &query(1), at(3)), paid);
    // The till resends its submit: answered this time, and not charged again.
    assert_eq!(answer(&mut backend, &call, at(4)), paid);
    assert_eq!(backend.ledger().len(), 1);
}

#[test]
fn the_phones_duplicate_payment_prompt_is_user_paying_then_paid_eight_seconds_later() {
    let mut backend = backend();
    let code = wallet(WalletBehaviour::DuplicatePrompt, 1);
    let first = answer(&mut backend, &submit(1, &code, Fen::new(100)), at(0));
    assert_eq!(first, OrderState::UserPaying);
    assert_eq!(
        answer(&mut backend, &query(1), at(7)),
        OrderState::UserPaying
    );
    let paid = paid_by(CodePayer::Wallet(1), None, at(8));
    assert_eq!(answer(&mut backend, &query(1), at(8)), paid);
}

#[test]
fn a_payer_who_confirms_during_the_reversal_is_charged_and_refunded() {
    let mut backend = backend();
    let code = wallet(WalletBehaviour::PaidDuringReversal, 1);
    answer(&mut backend, &submit(1, &code, Fen::new(100)), at(0));
    assert_eq!(
        answer(&mut backend, &query(1), at(57)),
        OrderState::UserPaying
    );
    let closed = answer(&mut backend, &reverse(1), at(60));
    assert_eq!(closed, OrderState::Reversed { refunded: true });
    assert_eq!(charges_and_refunds(&backend, order(1)), (1, 1));
    // Asked again, the reversal answers the same.
    assert_eq!(answer(&mut backend, &reverse(1), at(61)), closed);
    assert_eq!(answer(&mut backend, &query(1), at(62)), closed);
    assert_eq!(charges_and_refunds(&backend, order(1)), (1, 1));
}

#[test]
fn a_submit_resent_for_a_known_order_is_answered_its_state_and_charged_once() {
    let mut backend = backend();
    let first = card(ALICE, at(0), 1);
    let paid = answer(&mut backend, &submit(1, &first, Fen::new(500)), at(1));
    // The same order id again, even with another good code: the first answer, no charge.
    let second = card(ALICE, at(0), 2);
    assert_eq!(
        answer(&mut backend, &submit(1, &second, Fen::new(500)), at(2)),
        paid
    );
    assert_eq!(
        answer(&mut backend, &submit(1, &first, Fen::new(500)), at(3)),
        paid
    );
    assert_eq!(backend.ledger().len(), 1);
    assert_eq!(backend.balance(ALICE), Some(Fen::new(4500)));
}

#[test]
fn a_submit_arriving_after_its_reversal_is_answered_reversed_and_never_charged() {
    let mut backend = backend();
    assert_eq!(answer(&mut backend, &query(1), at(0)), OrderState::NotFound);
    let closed = answer(&mut backend, &reverse(1), at(1));
    assert_eq!(closed, OrderState::Reversed { refunded: false });
    assert_eq!(backend.order(order(1)).map(|o| o.sale), Some(None));
    let late = submit(1, &wallet(WalletBehaviour::PaidAtOnce, 1), Fen::new(100));
    assert_eq!(answer(&mut backend, &late, at(2)), closed);
    let late_card = submit(1, &card(ALICE, at(0), 1), Fen::new(100));
    assert_eq!(answer(&mut backend, &late_card, at(3)), closed);
    assert!(backend.ledger().is_empty());
    assert_eq!(backend.balance(ALICE), Some(Fen::from_yuan(50)));
}

#[test]
fn a_virtual_card_pays_from_its_campus_account_and_says_the_balance_after() {
    let mut backend = backend();
    let code = card(ALICE, at(0), 7);
    let paid = answer(&mut backend, &submit(1, &code, Fen::new(1250)), at(2));
    assert_eq!(
        paid,
        paid_by(CodePayer::Campus(ALICE), Some(Fen::new(3750)), at(2))
    );
    assert_eq!(backend.balance(ALICE), Some(Fen::new(3750)));
    assert_eq!(backend.ledger()[0].method, CodeMethod::VirtualCard);
}

#[test]
fn a_virtual_card_nonce_pays_once_even_on_another_order() {
    let mut backend = backend();
    let code = card(ALICE, at(0), 7);
    answer(&mut backend, &submit(1, &code, Fen::new(100)), at(1));
    let replay = answer(&mut backend, &submit(2, &code, Fen::new(100)), at(2));
    assert_eq!(replay, OrderState::Declined(DeclineReason::CodeUsed));
    assert_eq!(backend.balance(ALICE), Some(Fen::new(4900)));
}

#[test]
fn an_expired_virtual_card_code_is_declined_as_expired() {
    let mut backend = backend();
    let code = card(ALICE, at(0), 7);
    let late = at(i64::from(SIM_VIRTUAL_CARD_VALIDITY_S));
    let state = answer(&mut backend, &submit(1, &code, Fen::new(100)), late);
    assert_eq!(state, OrderState::Declined(DeclineReason::CodeExpired));
    assert!(backend.ledger().is_empty());
}

#[test]
fn a_tampered_or_foreign_virtual_card_code_is_declined_as_invalid() {
    let mut backend = backend();
    // The same fields signed by another key: the signature does not verify.
    let foreign = VirtualCardCode::sign(
        &signing_key_from_seed([9; 32]),
        SIM_CAMPUS_KEY_ID,
        ALICE,
        (at(0).0 / 1000) as u32,
        60,
        7,
    );
    let state = answer(&mut backend, &submit(1, &foreign, Fen::new(100)), at(1));
    assert_eq!(state, OrderState::Declined(DeclineReason::CodeInvalid));
    // Signed by the campus key but naming a key id the campus does not have.
    let unknown_key = VirtualCardCode::sign(
        &signing_key_from_seed(SIM_CAMPUS_KEY_SEED),
        SIM_CAMPUS_KEY_ID + 1,
        ALICE,
        (at(0).0 / 1000) as u32,
        60,
        8,
    );
    let state = answer(&mut backend, &submit(2, &unknown_key, Fen::new(100)), at(1));
    assert_eq!(state, OrderState::Declined(DeclineReason::CodeInvalid));
    // One character of a good code changed: still a code's shape, but it does not verify.
    let mut tampered = card(ALICE, at(0), 9).into_bytes();
    tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let state = answer(&mut backend, &submit(3, &tampered, Fen::new(100)), at(1));
    assert_eq!(state, OrderState::Declined(DeclineReason::CodeInvalid));
    assert!(backend.ledger().is_empty());
    assert_eq!(backend.balance(ALICE), Some(Fen::from_yuan(50)));
}

#[test]
fn a_code_claiming_another_method_than_its_shape_is_declined_as_invalid() {
    let mut backend = backend();
    let mut call = submit(1, &wallet(WalletBehaviour::PaidAtOnce, 1), Fen::new(100));
    if let OrderRequest::Submit { method, .. } = &mut call.request {
        *method = CodeMethod::VirtualCard;
    }
    let state = answer(&mut backend, &call, at(0));
    assert_eq!(state, OrderState::Declined(DeclineReason::CodeInvalid));
    // A good virtual-card code called a WeChat code: declined, and its nonce is spent.
    let code = card(ALICE, at(0), 1);
    let mut call = submit(2, &code, Fen::new(100));
    if let OrderRequest::Submit { method, .. } = &mut call.request {
        *method = CodeMethod::WeChat;
    }
    let state = answer(&mut backend, &call, at(1));
    assert_eq!(state, OrderState::Declined(DeclineReason::CodeInvalid));
    let again = answer(&mut backend, &submit(3, &code, Fen::new(100)), at(2));
    assert_eq!(again, OrderState::Declined(DeclineReason::CodeUsed));
    assert!(backend.ledger().is_empty());
}

#[test]
fn a_short_balance_an_unknown_or_frozen_account_are_declined_and_charge_nothing() {
    let mut backend = backend();
    let short = answer(
        &mut backend,
        &submit(1, &card(BOB, at(0), 1), Fen::new(301)),
        at(1),
    );
    assert_eq!(
        short,
        OrderState::Declined(DeclineReason::InsufficientFunds)
    );
    let frozen = answer(
        &mut backend,
        &submit(2, &card(FROZEN, at(0), 2), Fen::new(1)),
        at(1),
    );
    assert_eq!(frozen, OrderState::Declined(DeclineReason::AccountFrozen));
    let unknown = VirtualAccount(99);
    let nobody = answer(
        &mut backend,
        &submit(3, &card(unknown, at(0), 3), Fen::new(1)),
        at(1),
    );
    assert_eq!(nobody, OrderState::Declined(DeclineReason::AccountFrozen));
    assert!(backend.ledger().is_empty());
    assert_eq!(backend.balance(BOB), Some(Fen::new(300)));
    // Exactly the balance is enough.
    let all = answer(
        &mut backend,
        &submit(4, &card(BOB, at(0), 4), Fen::new(300)),
        at(1),
    );
    assert_eq!(all, paid_by(CodePayer::Campus(BOB), Some(Fen::ZERO), at(1)));
}

#[test]
fn zero_and_over_limit_amounts_are_declined_and_still_spend_a_virtual_cards_nonce() {
    let mut backend = backend();
    let code = card(ALICE, at(0), 1);
    let zero = answer(&mut backend, &submit(1, &code, Fen::ZERO), at(1));
    assert_eq!(
        zero,
        OrderState::Declined(DeclineReason::Other(DECLINE_ZERO_AMOUNT))
    );
    let again = answer(&mut backend, &submit(2, &code, Fen::new(100)), at(1));
    assert_eq!(again, OrderState::Declined(DeclineReason::CodeUsed));
    let over = MAX_CODE_PAYMENT.checked_add(Fen::new(1)).unwrap();
    let wallet = wallet(WalletBehaviour::PaidAtOnce, 1);
    let big = answer(&mut backend, &submit(3, &wallet, over), at(1));
    assert_eq!(big, OrderState::Declined(DeclineReason::OverLimit));
    assert!(backend.ledger().is_empty());
}

#[test]
fn reversing_a_paid_virtual_card_order_refunds_the_account_and_books_both() {
    let mut backend = backend();
    answer(
        &mut backend,
        &submit(1, &card(ALICE, at(0), 1), Fen::new(700)),
        at(1),
    );
    let closed = answer(&mut backend, &reverse(1), at(2));
    assert_eq!(closed, OrderState::Reversed { refunded: true });
    assert_eq!(backend.balance(ALICE), Some(Fen::from_yuan(50)));
    let kinds: Vec<_> = backend
        .ledger()
        .iter()
        .map(|e| (e.kind, e.booked_at))
        .collect();
    assert_eq!(
        kinds,
        [(EntryKind::Charge, at(1)), (EntryKind::Refund, at(2))]
    );
    // A second reversal refunds nothing more.
    assert_eq!(answer(&mut backend, &reverse(1), at(3)), closed);
    assert_eq!(backend.ledger().len(), 2);
}

#[test]
fn a_query_of_an_order_never_submitted_answers_not_found_and_stores_nothing() {
    let mut backend = backend();
    assert_eq!(answer(&mut backend, &query(5), at(0)), OrderState::NotFound);
    assert!(backend.order(order(5)).is_none());
}

#[test]
fn a_call_naming_another_terminal_than_its_topics_is_refused_and_stores_nothing() {
    let mut backend = backend();
    let call = submit(1, &wallet(WalletBehaviour::PaidAtOnce, 1), Fen::new(100));
    let refused = backend.handle_call_from(TerminalId(0x8), &call, at(0));
    assert_eq!(refused.unwrap(), None);
    assert_eq!(backend.orders().count(), 0);
    assert!(backend.ledger().is_empty());
    let taken = backend.handle_call_from(TILL, &call, at(0)).unwrap();
    assert!(matches!(
        taken.map(|r| r.state),
        Some(OrderState::Paid { .. })
    ));
}

#[test]
fn the_back_end_keeps_only_a_codes_hint_never_the_code() {
    let mut backend = backend();
    let code = card(ALICE, at(0), 1);
    answer(&mut backend, &submit(1, &code, Fen::new(100)), at(1));
    let wallet = wallet(WalletBehaviour::UserPayingNever, 77);
    answer(&mut backend, &submit(2, &wallet, Fen::new(100)), at(1));
    let shown = format!("{backend:?}");
    assert!(!shown.contains(&code[..40]), "{shown}");
    assert!(!shown.contains(&wallet), "{shown}");
    let hint = backend.order(order(2)).and_then(|o| o.sale).map(|s| s.hint);
    assert_eq!(hint.map(|h| h.to_string()), Some("…0077".to_owned()));
}

#[test]
fn a_durable_back_end_replays_its_log_to_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payments.log");
    let accounts = [(ALICE, Fen::from_yuan(50))];
    let calls = [
        (submit(1, &card(ALICE, at(0), 1), Fen::new(700)), at(1)),
        (
            submit(
                2,
                &wallet(WalletBehaviour::UserPayingThenPaid { after_s: 4 }, 2),
                Fen::new(300),
            ),
            at(2),
        ),
        (query(2), at(7)),
        (
            submit(
                3,
                &wallet(WalletBehaviour::PaidDuringReversal, 3),
                Fen::new(200),
            ),
            at(8),
        ),
        (reverse(3), at(9)),
        (reverse(1), at(10)),
        (reverse(4), at(11)),
    ];
    let mut first = PaymentBackend::open(&path, SIM_CAMPUS_KEY_SEED, accounts).unwrap();
    let answers: Vec<_> = calls
        .iter()
        .map(|(call, now)| first.handle_call(call, *now).unwrap())
        .collect();
    let reopened = PaymentBackend::open(&path, SIM_CAMPUS_KEY_SEED, accounts).unwrap();
    assert_eq!(reopened.ledger(), first.ledger());
    assert_eq!(reopened.balance(ALICE), first.balance(ALICE));
    assert!(reopened.orders().eq(first.orders()));
    assert_eq!(reopened.ledger().len(), 5);
    // Replayed, the back end answers a resent reversal as it answered the first time.
    let mut reopened = reopened;
    let again = reopened.handle_call(&calls[5].0, at(12)).unwrap();
    assert_eq!(again.map(|r| r.state), answers[5].map(|r| r.state));
    assert_eq!(
        again.map(|r| r.state),
        Some(OrderState::Reversed { refunded: true })
    );
    // And the nonce it spent stays spent.
    let replay = submit(9, &card(ALICE, at(0), 1), Fen::new(100));
    assert_eq!(
        reopened
            .handle_call(&replay, at(13))
            .unwrap()
            .map(|r| r.state),
        Some(OrderState::Declined(DeclineReason::CodeUsed))
    );
}

#[test]
fn a_torn_last_record_is_dropped_on_open_and_the_log_goes_on_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payments.log");
    let accounts = [(ALICE, Fen::from_yuan(50))];
    let mut backend = PaymentBackend::open(&path, SIM_CAMPUS_KEY_SEED, accounts).unwrap();
    backend
        .handle_call(&submit(1, &card(ALICE, at(0), 1), Fen::new(100)), at(1))
        .unwrap();
    let one_record = std::fs::metadata(&path).unwrap().len();
    backend
        .handle_call(&submit(2, &card(ALICE, at(0), 2), Fen::new(100)), at(2))
        .unwrap();
    drop(backend);
    // A crash in the middle of the second append.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(one_record + 10).unwrap();
    let mut reopened = PaymentBackend::open(&path, SIM_CAMPUS_KEY_SEED, accounts).unwrap();
    assert_eq!(reopened.balance(ALICE), Some(Fen::new(4900)));
    assert!(reopened.order(order(2)).is_none());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), one_record);
    reopened
        .handle_call(&submit(3, &card(ALICE, at(0), 3), Fen::new(100)), at(3))
        .unwrap();
    let again = PaymentBackend::open(&path, SIM_CAMPUS_KEY_SEED, accounts).unwrap();
    assert_eq!(again.balance(ALICE), Some(Fen::new(4800)));
}

#[test]
fn a_log_damaged_before_its_end_is_an_error_not_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payments.log");
    let accounts = [(ALICE, Fen::from_yuan(50))];
    let mut backend = PaymentBackend::open(&path, SIM_CAMPUS_KEY_SEED, accounts).unwrap();
    for intent in 1..=2 {
        let code = wallet(WalletBehaviour::PaidAtOnce, intent as u32);
        backend
            .handle_call(&submit(intent, &code, Fen::new(100)), at(1))
            .unwrap();
    }
    drop(backend);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = LOG_MAGIC.len() + 20;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let error = PaymentBackend::open(&path, SIM_CAMPUS_KEY_SEED, accounts).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    std::fs::write(&path, b"not a log at all").unwrap();
    assert!(PaymentBackend::open(&path, SIM_CAMPUS_KEY_SEED, accounts).is_err());
}

#[test]
fn wallet_codes_have_their_wallets_published_shapes() {
    for method in [CodeMethod::WeChat, CodeMethod::Alipay, CodeMethod::UnionPay] {
        let code = wallet_code(method, WalletBehaviour::PaidAtOnce, u32::MAX);
        assert_eq!(
            PaymentCode::recognise(&code).map(|c| c.method()),
            Ok(method)
        );
    }
    assert_eq!(
        wallet_code(
            CodeMethod::WeChat,
            WalletBehaviour::UserPayingThenPaid { after_s: 5 },
            12
        ),
        "139010050000000012"
    );
}

#[test]
fn a_wallet_code_not_made_by_the_simulator_selects_no_behaviour_and_is_paid_at_once() {
    assert_eq!(behaviour_of("134567890123456789"), None);
    assert_eq!(behaviour_of("not a code"), None);
    assert_eq!(behaviour_of(&card(ALICE, at(0), 1)), None);
    let mut backend = backend();
    let state = answer(
        &mut backend,
        &submit(1, "134567890123456789", Fen::new(100)),
        at(0),
    );
    assert_eq!(
        state,
        paid_by(
            CodePayer::Wallet(4_567_890_123_456_789 % 10_000_000_000),
            None,
            at(0)
        )
    );
}

#[test]
fn the_example_codes_of_the_documents_table_select_their_behaviours() {
    use WalletBehaviour::*;
    let examples = [
        ("139000000000000001", PaidAtOnce),
        ("139010050000000001", UserPayingThenPaid { after_s: 5 }),
        ("139000010000000001", UserPayingNever),
        (
            "139001050000000001",
            Declined(DeclineReason::PayerCancelled),
        ),
        ("139100420000000001", Declined(DeclineReason::Other(42))),
        ("139000020000000001", NoAnswer),
        ("139000030000000001", DuplicatePrompt),
        ("139000040000000001", PaidDuringReversal),
        ("289010050000000002", UserPayingThenPaid { after_s: 5 }),
        ("6299000040000000003", PaidDuringReversal),
    ];
    for (code, behaviour) in examples {
        assert_eq!(behaviour_of(code), Some(behaviour), "{code}");
    }
    let documented = "CV1AEAAAAAAPCR4UALLJHJAAAB4AAAAAAAAAAAAC5NG7DJGDG7JQ5ZPYT2O3HJR2R5ZGMVDGJZB4NPC6TDLOUU3QFJ3HCNTIABAL5VFFGFWOLG6WSC5JXCZYCB3GPXHWG6VE4IO6QE5GYFA";
    let made = virtual_card_code(VirtualAccount(2024000001), at(0), 1);
    assert_eq!(made, documented);
}

fn any_behaviour() -> impl Strategy<Value = WalletBehaviour> {
    let reason = prop_oneof![
        Just(DeclineReason::InsufficientFunds),
        Just(DeclineReason::CodeExpired),
        Just(DeclineReason::CodeInvalid),
        Just(DeclineReason::CodeUsed),
        Just(DeclineReason::AccountFrozen),
        Just(DeclineReason::PayerCancelled),
        Just(DeclineReason::OverLimit),
        any::<u16>().prop_map(DeclineReason::Other),
    ];
    prop_oneof![
        Just(WalletBehaviour::PaidAtOnce),
        any::<u8>().prop_map(|after_s| WalletBehaviour::UserPayingThenPaid { after_s }),
        Just(WalletBehaviour::UserPayingNever),
        reason.prop_map(WalletBehaviour::Declined),
        Just(WalletBehaviour::NoAnswer),
        Just(WalletBehaviour::DuplicatePrompt),
        Just(WalletBehaviour::PaidDuringReversal),
    ]
}

fn any_wallet() -> impl Strategy<Value = CodeMethod> {
    prop_oneof![
        Just(CodeMethod::WeChat),
        Just(CodeMethod::Alipay),
        Just(CodeMethod::UnionPay),
    ]
}

/// Steps of a till's calls: (intent, kind of call, wallet behaviour, amount in fen, seconds
/// since the step before).
type Step = (u64, u8, WalletBehaviour, u64, u64);

fn any_steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        (0u64..6, 0u8..4, any_behaviour(), 0u64..800, 0u64..20),
        1..40,
    )
}

/// The calls the steps make, with the campus's time of each (a fresh virtual-card nonce each).
fn calls_of(steps: Vec<Step>) -> Vec<(OrderCall, UnixMillis)> {
    let mut now = at(0);
    let mut calls = Vec::new();
    for (nonce, (intent, kind, behaviour, amount, wait)) in steps.into_iter().enumerate() {
        now = now.saturating_add_millis(wait * 1000);
        let call = match kind {
            0 => submit(intent, &card(ALICE, now, nonce as u64), Fen::new(amount)),
            1 => submit(intent, &wallet(behaviour, 1), Fen::new(amount)),
            2 => query(intent),
            _ => reverse(intent),
        };
        calls.push((call, now));
    }
    calls
}

proptest! {
    // Each case fdatasyncs every call: a few dozen cases are enough.
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the calls, a back end reopened from its log holds the same orders, balances
    /// and ledger as one that never stopped (in memory), and answers the next call as it does.
    #[test]
    fn a_reopened_back_end_is_the_one_that_never_stopped(steps in any_steps()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payments.log");
        let accounts = [(ALICE, Fen::from_yuan(50))];
        let mut durable = PaymentBackend::open(&path, SIM_CAMPUS_KEY_SEED, accounts).unwrap();
        let mut never_stopped = PaymentBackend::new(SIM_CAMPUS_KEY_SEED, accounts);
        let calls = calls_of(steps);
        for (call, now) in &calls {
            let answer = durable.handle_call(call, *now).unwrap();
            prop_assert_eq!(answer, never_stopped.handle_call(call, *now).unwrap());
        }
        drop(durable);
        let mut reopened = PaymentBackend::open(&path, SIM_CAMPUS_KEY_SEED, accounts).unwrap();
        prop_assert!(reopened.orders().eq(never_stopped.orders()));
        prop_assert_eq!(reopened.ledger(), never_stopped.ledger());
        prop_assert_eq!(reopened.balance(ALICE), never_stopped.balance(ALICE));
        let (last, now) = &calls[calls.len() - 1];
        let later = now.saturating_add_millis(60_000);
        prop_assert_eq!(
            reopened.handle_call(last, later).unwrap(),
            never_stopped.handle_call(last, later).unwrap()
        );
    }
}

proptest! {
    #[test]
    fn every_wallet_code_selects_the_behaviour_it_was_made_for(
        method in any_wallet(),
        behaviour in any_behaviour(),
        serial in any::<u32>(),
    ) {
        let code = wallet_code(method, behaviour, serial);
        prop_assert_eq!(PaymentCode::recognise(&code).map(|c| c.method()), Ok(method));
        prop_assert_eq!(behaviour_of(&code), Some(behaviour));
        prop_assert_eq!(codes::wallet_payer_of(&code), u64::from(serial));
    }

    /// Whatever the tills ask, in whatever order: every campus account lost exactly its
    /// charges minus its refunds, no order is charged twice, and a reversed order is refunded
    /// exactly when it was charged.
    #[test]
    fn the_ledger_always_matches_the_balances_and_the_orders(steps in any_steps()) {
        let mut backend = backend();
        for (call, now) in calls_of(steps) {
            backend.handle_call(&call, now).unwrap();
        }
        let sum = |kind| -> u64 {
            backend.ledger().iter()
                .filter(|e| e.kind == kind && e.payer == CodePayer::Campus(ALICE))
                .map(|e| e.amount.get()).sum()
        };
        let lost = Fen::from_yuan(50).get() - backend.balance(ALICE).unwrap().get();
        prop_assert_eq!(sum(EntryKind::Charge) - sum(EntryKind::Refund), lost);
        for record in backend.orders() {
            let (charges, refunds) = charges_and_refunds(&backend, record.id);
            prop_assert!(charges <= 1 && refunds <= charges, "{:?}", record);
            match record.state() {
                OrderState::Reversed { refunded } => {
                    prop_assert_eq!((charges, refunds), (usize::from(refunded), usize::from(refunded)));
                }
                OrderState::Paid { .. } => prop_assert_eq!((charges, refunds), (1, 0)),
                _ => prop_assert_eq!((charges, refunds), (0, 0)),
            }
        }
    }
}

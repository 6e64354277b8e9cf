//! The campus simulator's payment side: order requests from the tills' `…/pay/req` topics go
//! to the simulated payment back end ([`PaymentBackend`], durable: its call log lies beside the
//! campus store), and its answers go back on the till's `…/pay/res` topic — only once the back
//! end's log append returned (it fdatasyncs before answering), so an answer a till saw is never
//! contradicted after a campus restart. Exactly-once is the back end's: it is idempotent by
//! order id, whatever the broker delivers twice.
//!
//! Without I/O: [`CampusPayments::handle_request`] takes a topic, a payload and the campus's
//! time and returns what to publish; `campus.rs` does the MQTT. For tests it can hold its
//! answers (the back end still acts on and logs every call) and release them later, so a kill
//! provably hits a call the campus booked and whose answer the till has not seen.
//!
//! The tills' uploads bring offline virtual-card sales (`RecordBody::OfflineCodeSale`): once
//! a batch is durable in the campus store, [`CampusPayments::settle_uploaded`] hands each one to
//! the back end, which charges it once by (terminal, seq) and raises an alarm for a replayed,
//! forged or over-limit one (`pos_firmware::sim::payments`'s `offline.rs`). Every such record of
//! a batch is settled, new or resent, before the ack: a settlement lost to a crash is made on
//! the resend.

use pos_firmware::core::config::DEFAULT_UTC_OFFSET_MINUTES;
use pos_firmware::sim::payments::{
    LedgerEntry, OfflineRules, OfflineSettlement, OrderRecord, PaymentBackend, SIM_CAMPUS_KEY_SEED,
};
use pos_firmware::sim::script::orders::{DEFAULT_ACCOUNTS, DEFAULT_FROZEN};
use shared::campus::DEFAULT_OFFLINE_CODE_LIMITS;
use shared::codec::{decode_order_call, decode_record, encode_order_result};
use shared::mqtt::{order_result_topic, terminal_of_order_request_topic};
use shared::pay::{OrderId, OrderResult, OrderState};
use shared::paycode::VirtualAccount;
use shared::record::RecordBody;
use shared::{Fen, Seq, TerminalId, UnixMillis};
use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// The name of the back end's call log inside the campus store's directory.
pub const PAYMENTS_LOG_FILE: &str = "payments.log";
/// The first of the plain accounts of the default set (beside the demo accounts).
pub const SIM_FIRST_ACCOUNT: u64 = 1;
/// How many plain accounts the default set has: 0000000001 … 0000000020.
pub const SIM_ACCOUNTS: u64 = 20;
/// The opening balance of every plain account of the default set: ¥500.00.
pub const SIM_OPENING_BALANCE: Fen = Fen::from_yuan(500);
/// The largest order request payload the campus reads (a submit is about 200 bytes).
pub const MAX_ORDER_REQUEST_BYTES: usize = 4 * 1024;
/// How many of the latest calls' back-end times the payment side keeps
/// ([`CampusPayments::call_times`], the order latency bench's "back end's own time").
pub const CALL_TIMES_KEPT: usize = 100_000;

/// The simulated campus's default accounts: the till simulator's demo accounts
/// (`pos_firmware::sim::script::orders::DEFAULT_ACCOUNTS`, which its script runner and code
/// picker make virtual-card codes for, so the whole path answers them as the till's own simulated
/// campus does) and
/// [`SIM_ACCOUNTS`] plain ones from [`SIM_FIRST_ACCOUNT`], each opening with
/// [`SIM_OPENING_BALANCE`].
pub fn sim_accounts() -> Vec<(VirtualAccount, Fen)> {
    let demo = DEFAULT_ACCOUNTS
        .iter()
        .map(|&(_, id, balance)| (VirtualAccount(id), balance));
    let plain = (SIM_FIRST_ACCOUNT..SIM_FIRST_ACCOUNT + SIM_ACCOUNTS)
        .map(|id| (VirtualAccount(id), SIM_OPENING_BALANCE));
    demo.chain(plain).collect()
}

/// The frozen accounts of the default set (the demo's frozen one).
pub fn sim_frozen() -> Vec<VirtualAccount> {
    DEFAULT_ACCOUNTS
        .iter()
        .filter(|&&(name, _, _)| name == DEFAULT_FROZEN)
        .map(|&(_, id, _)| VirtualAccount(id))
        .collect()
}

/// What the payment side counted since the simulator started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaymentStats {
    /// Requests handed to the back end (every call it logged).
    pub calls: u64,
    /// Requests whose order names another terminal than the topic's: refused, not logged,
    /// not answered.
    pub refused: u64,
    /// Payloads on a request topic that are not a request (or too long): dropped.
    pub malformed: u64,
    /// Calls the back end left unanswered on purpose (its scripted "no answer").
    pub unanswered: u64,
    /// Calls the back end could not log (not durable: not answered; the till asks again).
    pub log_errors: u64,
    pub results_published: u64,
    /// Answers kept back while a test holds them ([`CampusPayments::hold`]).
    pub results_held: u64,
    /// Uploaded offline virtual-card sales settled (each record once, resends not counted).
    pub offline_sales: u64,
    /// Of them, the ones that raised an alarm (replayed, forged, over a limit, balance short).
    pub offline_alarms: u64,
}

/// The campus's offline rules for virtual-card codes: the limits the simulator announces to
/// its tills (`campus::with_sim_code_payments`) in the tills' default time zone.
pub const SIM_OFFLINE_RULES: OfflineRules = OfflineRules {
    limits: DEFAULT_OFFLINE_CODE_LIMITS,
    utc_offset_minutes: DEFAULT_UTC_OFFSET_MINUTES,
};

/// A message for the broker: QoS 1, not retained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultMessage {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// The campus's payment side: the back end and what tests hold back.
#[derive(Debug)]
pub struct CampusPayments {
    backend: PaymentBackend,
    stats: PaymentStats,
    hold: bool,
    held: Vec<OrderResult>,
    /// How long the back end took over each of the latest calls (its log's fdatasync
    /// included); at most [`CALL_TIMES_KEPT`], oldest first.
    call_times: VecDeque<Duration>,
}

impl CampusPayments {
    /// Opens the back end's call log `log` (replaying what an earlier run logged) with these
    /// opening balances and frozen accounts (give the same ones every time).
    pub fn open(
        log: &Path,
        accounts: impl IntoIterator<Item = (VirtualAccount, Fen)>,
        frozen: impl IntoIterator<Item = VirtualAccount>,
    ) -> io::Result<CampusPayments> {
        Ok(CampusPayments {
            backend: PaymentBackend::new_with_frozen(SIM_CAMPUS_KEY_SEED, accounts, frozen)
                .with_offline_rules(SIM_OFFLINE_RULES)
                .durable(log)?,
            stats: PaymentStats::default(),
            hold: false,
            held: Vec::new(),
            call_times: VecDeque::new(),
        })
    }

    /// One message on a till's request topic; the answer to publish, if any. `topic` must be
    /// a request topic (`campus.rs` routes only those here).
    pub fn handle_request(
        &mut self,
        topic: &str,
        payload: &[u8],
        now: UnixMillis,
    ) -> Option<ResultMessage> {
        let Some(from) = terminal_of_order_request_topic(topic) else {
            self.stats.malformed += 1;
            return None;
        };
        let call = match decode_order_call(payload) {
            Ok(call) if payload.len() <= MAX_ORDER_REQUEST_BYTES => call,
            _ => {
                self.stats.malformed += 1;
                eprintln!(
                    "campus: {topic}: {} bytes that are not an order request; dropped",
                    payload.len()
                );
                return None;
            }
        };
        if call.order.terminal != from {
            // Booked on the other till's statement, it would be money nobody took there.
            self.stats.refused += 1;
            eprintln!(
                "campus: ALARM order {} arrived on terminal {from}'s topic; refused",
                call.order
            );
            return None;
        }
        let started = Instant::now();
        let answered = self.backend.handle_call_from(from, &call, now);
        if self.call_times.len() == CALL_TIMES_KEPT {
            self.call_times.pop_front();
        }
        self.call_times.push_back(started.elapsed());
        let answer = match answered {
            Ok(answer) => answer,
            Err(error) => {
                self.stats.log_errors += 1;
                eprintln!(
                    "campus: ALARM order {}: the payment log failed ({error}); not answered",
                    call.order
                );
                return None;
            }
        };
        self.stats.calls += 1;
        let Some(result) = answer else {
            self.stats.unanswered += 1;
            return None;
        };
        if self.hold {
            self.stats.results_held += 1;
            self.held.push(result);
            return None;
        }
        Some(self.publish(result))
    }

    /// Settles the offline virtual-card sales among `records` (durably stored as terminal
    /// `terminal`'s: a conflicting version is never passed here). Other records and records
    /// that do not decode are left alone (the store keeps them). An error: the back end could
    /// not log a settlement; the batch must not be acked (the till resends, and settling is
    /// idempotent).
    pub fn settle_uploaded(
        &mut self,
        terminal: TerminalId,
        records: &[(Seq, &[u8])],
        now: UnixMillis,
    ) -> io::Result<()> {
        for &(seq, bytes) in records {
            let Ok(record) = decode_record(bytes) else {
                continue;
            };
            let RecordBody::OfflineCodeSale(sale) = record.body else {
                continue;
            };
            if record.seq != seq {
                continue; // the store's own checks report it; not a sale to charge
            }
            let new = self.backend.offline_settlement(terminal, seq).is_none();
            let settled = self
                .backend
                .settle_offline_sale(terminal, seq, &sale, now)
                .inspect_err(|error| {
                    self.stats.log_errors += 1;
                    eprintln!(
                        "campus: ALARM offline sale {terminal}/{}: the payment log failed \
                         ({error}); not acked",
                        seq.0
                    );
                })?;
            if new {
                self.stats.offline_sales += 1;
                let alarm = match settled {
                    OfflineSettlement::Refused(alarm) => Some(alarm),
                    OfflineSettlement::Charged { alarm, .. } => alarm,
                };
                if let Some(alarm) = alarm {
                    self.stats.offline_alarms += 1;
                    eprintln!(
                        "campus: ALARM offline virtual-card sale {terminal}/{} of ¥{} by \
                         account {}: {alarm:?}",
                        seq.0, sale.amount, sale.account
                    );
                }
            }
        }
        Ok(())
    }

    /// The campus app pays an offline QR payload (`PaymentBackend::pay_qr`): durable before
    /// it answers with the confirmation code.
    pub fn pay_qr(
        &mut self,
        payload: &str,
        account: VirtualAccount,
        now: UnixMillis,
    ) -> Result<u32, pos_firmware::sim::payments::QrRefusal> {
        self.backend.pay_qr(payload, account, now)
    }

    /// What an account owes for offline sales its balance did not cover.
    pub fn debt(&self, account: VirtualAccount) -> Fen {
        self.backend.debt(account)
    }

    /// From now on calls are handled (and logged) as always, but their answers kept back.
    pub fn hold(&mut self) {
        self.hold = true;
    }

    /// Answers again; the ones held, oldest first, to publish now.
    pub fn release(&mut self) -> Vec<ResultMessage> {
        self.hold = false;
        std::mem::take(&mut self.held)
            .into_iter()
            .map(|result| self.publish(result))
            .collect()
    }

    fn publish(&mut self, result: OrderResult) -> ResultMessage {
        self.stats.results_published += 1;
        ResultMessage {
            topic: order_result_topic(result.order.terminal),
            payload: encode_order_result(&result),
        }
    }

    pub fn stats(&self) -> PaymentStats {
        self.stats
    }

    /// How long the back end took over each of the latest calls (at most [`CALL_TIMES_KEPT`]),
    /// oldest first.
    pub fn call_times(&self) -> Vec<Duration> {
        self.call_times.iter().copied().collect()
    }

    pub fn balance(&self, account: VirtualAccount) -> Option<Fen> {
        self.backend.balance(account)
    }

    /// Every charge and refund, in booking order.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.backend.ledger().to_vec()
    }

    pub fn order(&self, id: OrderId) -> Option<OrderRecord> {
        self.backend.order(id).copied()
    }

    /// An order's state as a query would answer it now (not counting payers who confirm
    /// between the last call and now: the back end books those on its next call).
    pub fn order_state(&self, id: OrderId) -> Option<OrderState> {
        self.backend.order(id).map(OrderRecord::state)
    }

    /// Every order the back end holds, by order id.
    pub fn orders(&self) -> Vec<OrderRecord> {
        self.backend.orders().copied().collect()
    }

    /// How many orders the back end holds (tombstones of reversals included).
    pub fn order_count(&self) -> usize {
        self.backend.orders().count()
    }
}

/// `config` as the simulator publishes it: code-payment settings it does not set are the
/// simulated campus's (its virtual-card public key, from `SIM_CAMPUS_KEY_SEED`, as key id
/// `SIM_CAMPUS_KEY_ID`, the tills' default timings and the default offline limits for codes,
/// `DEFAULT_OFFLINE_CODE_LIMITS`), so tills verify its codes offline and accept them there.
pub fn with_sim_code_payments(
    mut config: shared::campus::CampusConfig,
) -> shared::campus::CampusConfig {
    use pos_firmware::core::config::{
        DEFAULT_ORDER_PAY_WINDOW_MS, DEFAULT_ORDER_QUERY_INTERVAL_MS,
    };
    use pos_firmware::sim::payments::{SIM_CAMPUS_KEY_ID, SIM_CAMPUS_KEY_SEED};
    let public = shared::paycode::signing_key_from_seed(SIM_CAMPUS_KEY_SEED).verifying_key();
    config
        .payments
        .get_or_insert_with(|| shared::campus::CodePaymentSettings {
            query_interval_ms: DEFAULT_ORDER_QUERY_INTERVAL_MS,
            pay_window_ms: DEFAULT_ORDER_PAY_WINDOW_MS,
            virtual_card_keys: vec![shared::campus::CampusKey {
                id: SIM_CAMPUS_KEY_ID,
                public: public.to_bytes(),
            }],
            offline_codes: Some(shared::campus::DEFAULT_OFFLINE_CODE_LIMITS),
        });
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use pos_firmware::sim::payments::{virtual_card_code, wallet_code, WalletBehaviour};
    use shared::codec::{decode_order_result, encode_order_call};
    use shared::mqtt::order_request_topic;
    use shared::pay::{CodePayer, OrderCall, OrderRequest};
    use shared::paycode::{CodeMethod, PaymentCode};
    use shared::{Seq, TerminalId};

    const T: TerminalId = TerminalId(0x7E57);
    const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

    fn payments(dir: &Path) -> CampusPayments {
        CampusPayments::open(&dir.join(PAYMENTS_LOG_FILE), sim_accounts(), sim_frozen()).unwrap()
    }

    fn submit(terminal: TerminalId, intent: u64, code: &str, amount: Fen) -> OrderCall {
        let code = PaymentCode::recognise(code).unwrap();
        OrderCall {
            order: OrderId {
                terminal,
                intent: Seq(intent),
            },
            request: OrderRequest::Submit {
                amount,
                method: code.method(),
                code,
                at: NOW,
            },
        }
    }

    fn answer(message: Option<ResultMessage>) -> OrderResult {
        let message = message.expect("an answer");
        assert_eq!(message.topic, order_result_topic(T));
        decode_order_result(&message.payload).unwrap()
    }

    #[test]
    fn a_virtual_card_submit_is_charged_once_answered_on_the_tills_result_topic() {
        let dir = tempfile::tempdir().unwrap();
        let mut campus = payments(dir.path());
        let code = virtual_card_code(VirtualAccount(3), NOW, 42);
        let call = submit(T, 9, &code, Fen::new(1_250));
        let topic = order_request_topic(T);
        let first = answer(campus.handle_request(&topic, &encode_order_call(&call), NOW));
        let again = answer(campus.handle_request(&topic, &encode_order_call(&call), NOW));
        let OrderState::Paid { balance_after, .. } = first.state else {
            panic!("{first:?}");
        };
        assert_eq!(balance_after, Some(Fen::new(50_000 - 1_250)));
        assert_eq!(
            again.state, first.state,
            "the same answer, not a second charge"
        );
        assert_eq!(campus.ledger().len(), 1);
        assert_eq!(campus.balance(VirtualAccount(3)), Some(Fen::new(48_750)));
    }

    #[test]
    fn the_demo_accounts_pay_as_in_the_till_simulator_and_the_frozen_one_is_declined() {
        let dir = tempfile::tempdir().unwrap();
        let mut campus = payments(dir.path());
        let topic = order_request_topic(T);
        let alice = virtual_card_code(VirtualAccount(2_026_000_001), NOW, 1);
        let call = submit(T, 1, &alice, Fen::new(1_000));
        let paid = answer(campus.handle_request(&topic, &encode_order_call(&call), NOW));
        assert!(
            matches!(paid.state, OrderState::Paid { balance_after: Some(b), .. } if b == Fen::new(9_000)),
            "{paid:?}"
        );
        let carol = virtual_card_code(sim_frozen()[0], NOW, 2);
        let call = submit(T, 2, &carol, Fen::new(100));
        let declined = answer(campus.handle_request(&topic, &encode_order_call(&call), NOW));
        assert_eq!(
            declined.state,
            OrderState::Declined(shared::pay::DeclineReason::AccountFrozen)
        );
    }

    #[test]
    fn a_request_naming_another_terminal_than_its_topic_is_refused_and_not_logged() {
        let dir = tempfile::tempdir().unwrap();
        let mut campus = payments(dir.path());
        let code = wallet_code(CodeMethod::WeChat, WalletBehaviour::PaidAtOnce, 1);
        let call = submit(TerminalId(0xBAD), 1, &code, Fen::new(100));
        let topic = order_request_topic(T);
        assert_eq!(
            campus.handle_request(&topic, &encode_order_call(&call), NOW),
            None
        );
        assert_eq!(campus.stats().refused, 1);
        assert_eq!(campus.order_count(), 0);
        drop(campus);
        assert_eq!(payments(dir.path()).order_count(), 0, "nothing was logged");
    }

    #[test]
    fn garbage_on_a_request_topic_is_counted_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut campus = payments(dir.path());
        assert_eq!(
            campus.handle_request(&order_request_topic(T), b"\xff\xfe", NOW),
            None
        );
        assert_eq!(campus.stats().malformed, 1);
    }

    #[test]
    fn held_answers_are_booked_at_once_and_published_on_release() {
        let dir = tempfile::tempdir().unwrap();
        let mut campus = payments(dir.path());
        campus.hold();
        let code = wallet_code(CodeMethod::Alipay, WalletBehaviour::PaidAtOnce, 7);
        let call = submit(T, 4, &code, Fen::new(800));
        let topic = order_request_topic(T);
        assert_eq!(
            campus.handle_request(&topic, &encode_order_call(&call), NOW),
            None
        );
        assert_eq!(campus.ledger().len(), 1, "booked while held");
        let released = campus.release();
        assert_eq!(released.len(), 1);
        let result = answer(released.into_iter().next());
        assert!(matches!(
            result.state,
            OrderState::Paid {
                payer: CodePayer::Wallet(7),
                ..
            }
        ));
    }

    #[test]
    fn a_reopened_campus_answers_as_before_and_charges_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let code = virtual_card_code(VirtualAccount(5), NOW, 77);
        let call = submit(T, 2, &code, Fen::new(300));
        let topic = order_request_topic(T);
        let first =
            answer(payments(dir.path()).handle_request(&topic, &encode_order_call(&call), NOW));
        let mut reopened = payments(dir.path());
        let again = answer(reopened.handle_request(&topic, &encode_order_call(&call), NOW));
        assert_eq!(again.state, first.state);
        assert_eq!(reopened.ledger().len(), 1);
        assert_eq!(reopened.balance(VirtualAccount(5)), Some(Fen::new(49_700)));
    }

    /// Terminal `terminal`'s journal record `seq`: an offline sale of `fen` by `account`'s
    /// virtual-card code `nonce` (issued at NOW), as the till's upload carries it.
    fn offline_sale_record(seq: u64, account: u64, nonce: u64, fen: u64) -> Vec<u8> {
        use shared::paycode::VirtualCardCode;
        use shared::record::{JournalRecord, OfflineCodeSale};
        let text = virtual_card_code(VirtualAccount(account), NOW, nonce);
        let code = VirtualCardCode::parse(&text).unwrap();
        shared::codec::encode_record(&JournalRecord {
            seq: Seq(seq),
            at: NOW,
            machine: shared::ids::MachineNumber::FACTORY_DEFAULT,
            body: RecordBody::OfflineCodeSale(OfflineCodeSale {
                amount: Fen::new(fen),
                account: VirtualAccount(account),
                key_id: code.key_id,
                issued_at_s: code.issued_at_s,
                valid_for_s: code.valid_for_s,
                nonce,
                signature: code.signature(),
                fixed_price: false,
            }),
        })
    }

    #[test]
    fn an_uploaded_offline_sale_is_charged_once_on_a_resent_upload_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let sale = offline_sale_record(4, 5, 901, 800);
        let batch: [(Seq, &[u8]); 1] = [(Seq(4), &sale)];
        let mut campus = payments(dir.path());
        campus.settle_uploaded(T, &batch, NOW).unwrap();
        campus.settle_uploaded(T, &batch, NOW).unwrap();
        assert_eq!(campus.balance(VirtualAccount(5)), Some(Fen::new(49_200)));
        assert_eq!(campus.ledger().len(), 1);
        assert_eq!(campus.ledger()[0].statement.label(), "付款码");
        assert_eq!(
            campus.stats().offline_sales,
            1,
            "a resend is not a new sale"
        );
        let mut reopened = payments(dir.path());
        reopened.settle_uploaded(T, &batch, NOW).unwrap();
        assert_eq!(reopened.balance(VirtualAccount(5)), Some(Fen::new(49_200)));
        assert_eq!(reopened.ledger().len(), 1);
    }

    #[test]
    fn a_nonce_replayed_at_a_second_till_is_an_alarm_and_charged_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut campus = payments(dir.path());
        let at_a = offline_sale_record(4, 6, 902, 500);
        let at_b = offline_sale_record(11, 6, 902, 500);
        campus.settle_uploaded(T, &[(Seq(4), &at_a)], NOW).unwrap();
        campus
            .settle_uploaded(TerminalId(0xB0B), &[(Seq(11), &at_b)], NOW)
            .unwrap();
        assert_eq!(campus.balance(VirtualAccount(6)), Some(Fen::new(49_500)));
        assert_eq!(campus.ledger().len(), 1);
        let stats = campus.stats();
        assert_eq!((stats.offline_sales, stats.offline_alarms), (2, 1));
        // Records that are not offline sales, or do not decode, are left to the store.
        let junk: &[u8] = b"not a record";
        campus.settle_uploaded(T, &[(Seq(5), junk)], NOW).unwrap();
        assert_eq!(campus.stats().offline_sales, 2);
    }
}

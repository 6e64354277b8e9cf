//! Directed reproductions of what the simulation found, on a till driven by hand
//! ([`HandRig`]: the default simulated cards, a virtual clock, and where an order needs one, the
//! campus back end answering at once). A defect found in another part's code stays here as an
//! ignored test naming it until that part is fixed.

use super::*;

use shared::record::PendingOrder;

/// A till on a fresh data directory with the default simulated cards, driven by hand.
struct HandRig {
    pub(crate) till: Till,
    pub(crate) cards: SimCards,
}

impl HandRig {
    pub(crate) fn open(config: TillConfig, wall: UnixMillis) -> HandRig {
        let till = Till::open(config, Now { wall, mono_ms: 0 });
        let cards = SimCards::open(till.dir.path()).expect("the default cards");
        HandRig { till, cards }
    }

    /// Power cut and start again with `config`.
    pub(crate) fn reopen(&mut self, config: TillConfig) {
        self.till.stop();
        self.wait(5_000);
        self.till.reopen(config);
    }

    pub(crate) fn runtime(&mut self) -> &mut TillRuntime {
        self.till.runtime_mut()
    }

    fn feed(&mut self, input: Input) -> Vec<Output> {
        self.till.handle(input, &mut self.cards)
    }

    pub(crate) fn wait(&mut self, ms: u64) {
        self.till.pass(ms);
        if self.till.runtime.is_some() {
            self.feed(Input::Tick);
        }
    }

    /// Keys 200 ms apart (so Clear + key is a combo), then the gesture is let finish.
    pub(crate) fn keys(&mut self, keys: &[TillKey]) -> Vec<Output> {
        let mut outputs = Vec::new();
        for &key in keys {
            self.wait(200);
            outputs.extend(self.feed(Input::Key(key)));
        }
        self.wait(1_500);
        outputs
    }

    pub(crate) fn tap(&mut self, index: usize) -> Vec<Output> {
        let read = self.cards.tap(index).expect("a default card");
        self.feed(Input::Card(read))
    }

    pub(crate) fn merchant(&mut self) -> Vec<String> {
        self.till.merchant()
    }
}

const D1: TillKey = TillKey::Digit(1);
const D3: TillKey = TillKey::Digit(3);
const D5: TillKey = TillKey::Digit(5);

/// Regression, found by the simulation: a fixed price lives in the snapshot, so after staff lower
/// `max_sale` below it the till must refuse to charge it (`start_debit` checks every amount
/// against the limit), not keep charging ¥15 under a ¥10 limit.
#[test]
fn a_fixed_price_above_a_lowered_max_sale_is_not_charged() {
    let wall = UnixMillis(START_LOCAL_MIDNIGHT_MS + (12 * 60) as i64 * MINUTE_MS as i64);
    let mut rig = HandRig::open(TillConfig::default(), wall);
    rig.keys(&[D1, D5, TillKey::Clear, TillKey::Enter]); // ¥15, Clear+Enter: fixed price
    assert_eq!(
        rig.runtime().till().snapshot().fixed_price,
        Some(Fen::from_yuan(15))
    );
    let max_sale = Fen::from_yuan(10);
    rig.reopen(TillConfig {
        max_sale,
        ..TillConfig::default()
    });
    rig.wait(5_000);
    let balance_before = rig.cards.cards()[0].balance;
    let outputs = rig.tap(0); // card-1, ¥100
    let charged: Vec<Fen> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Journaled(JournalRecord {
                body: RecordBody::SaleIntent(sale),
                ..
            }) => Some(sale.amount),
            _ => None,
        })
        .collect();
    assert!(
        charged.iter().all(|amount| *amount <= max_sale),
        "sales of {charged:?} started although max_sale is ¥{max_sale}"
    );
    let shown = rig.merchant();
    assert_eq!(
        rig.cards.cards()[0].balance,
        balance_before,
        "the card was charged above max_sale; the till shows {shown:?}"
    );
}

/// Regression, found by the simulation's clock jumps: after the clock is set back across
/// midnight, new sales must count on the clock's day (`count_in_tallies` in core/tally.rs keeps a
/// tally per day), so Clear+5 shows them instead of "0 sales".
#[test]
fn sales_after_the_clock_goes_back_across_midnight_count_today() {
    // 2026-11-24 00:05 local.
    let wall = UnixMillis(START_LOCAL_MIDNIGHT_MS + (DAY_MS + 5 * MINUTE_MS) as i64);
    let mut rig = HandRig::open(TillConfig::default(), wall);
    rig.keys(&[D5, TillKey::Enter]);
    rig.tap(0); // ¥5 from card-1 on 11-24
    rig.wait(5_000);
    // The clock is corrected back ten minutes: 2026-11-23 23:55.
    rig.till.now.wall = UnixMillis(rig.till.now.wall.0 - (10 * MINUTE_MS) as i64);
    rig.wait(100);
    rig.keys(&[D3, TillKey::Enter]);
    let outputs = rig.tap(1); // ¥3 from card-2 on 11-23
    assert!(
        outputs.iter().any(|o| matches!(
            o,
            Output::Journaled(JournalRecord {
                body: RecordBody::SaleCommitted(_),
                ..
            })
        )),
        "the ¥3 sale commits"
    );
    rig.wait(5_000);
    let outputs = rig.keys(&[TillKey::Clear, D5]); // Clear+5: today's total
    let shown = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Displays(d) => Some(d.merchant.lines.clone()),
            _ => None,
        })
        .find(|lines| lines[1] == "今日累计")
        .expect("Clear+5 shows today's total");
    assert_eq!(
        shown[2],
        "1笔 ¥3.00",
        "today's total on 11-23 after its ¥3 sale; snapshot tallies: {:?}",
        rig.runtime().till().snapshot().days
    );
}

/// A till with the link up, paid by a WeChat code whose payer never confirms, every order
/// request answered at once by the campus back end; the till's wall clock is moved by
/// `clock_step_ms` ten seconds after the scan. Returns the orders still pending after two
/// minutes of the till's (monotonic) time: the payment window is one minute.
fn orders_pending_after_a_never_confirmed_code(clock_step_ms: i64) -> Vec<PendingOrder> {
    use pos_firmware::sim::payments::{
        wallet_code, PaymentBackend, WalletBehaviour, SIM_CAMPUS_KEY_SEED,
    };
    let wall = UnixMillis(START_LOCAL_MIDNIGHT_MS + (12 * 60 * MINUTE_MS) as i64);
    let mut rig = HandRig::open(TillConfig::default(), wall);
    let now = rig.till.now;
    rig.runtime().enable_link(now);
    rig.feed(Input::Link(LinkUpdate::Peer(LinkPeer {
        daemon_connected: true,
        broker: Some(BrokerLink::Up),
    })));
    let mut campus = PaymentBackend::new(SIM_CAMPUS_KEY_SEED, []);
    rig.keys(&[D5, TillKey::Enter]);
    let code = wallet_code(CodeMethod::WeChat, WalletBehaviour::UserPayingNever, 1);
    let mut outputs = rig.feed(Input::Code(code));
    for second in 0..120u64 {
        let mut answered = 0;
        while let Some(call) = outputs.iter().find_map(|o| match o {
            Output::Order(call) => Some(call.clone()),
            _ => None,
        }) {
            answered += 1;
            assert!(answered < MAX_ANSWERS_PER_INPUT, "the till keeps asking");
            // The campus's clock is true time: the till's clock step does not move it.
            let campus_now = wall.saturating_add_millis(rig.till.now.mono_ms);
            let result = campus
                .handle_call(&call, campus_now)
                .expect("in memory")
                .expect("the back end answers");
            outputs = rig.feed(Input::OrderResult(result));
        }
        if second == 10 {
            rig.till.now.wall = UnixMillis(rig.till.now.wall.0 + clock_step_ms);
        }
        rig.till.pass(1_000);
        outputs = rig.feed(Input::Tick);
    }
    rig.runtime().till().snapshot().pending_orders.clone()
}

/// The payment window: a payer who never confirms is reversed a minute after the scan.
#[test]
fn a_user_paying_order_is_reversed_when_its_window_ends() {
    let pending = orders_pending_after_a_never_confirmed_code(0);
    assert!(pending.is_empty(), "still pending: {pending:?}");
}

/// Regression (found by the simulation, `SIM_SEEDS=300` seed 192: after a clock step back of
/// 2939 minutes an order of a payer who never confirms stayed "user paying", queried every 3 s).
/// The window was measured on the wall clock from the intent's time; now a clock set back moves
/// the window's end back as much (`Till::orders_clock_went_back`).
#[test]
fn a_user_paying_order_is_reversed_when_its_window_ends_even_after_the_clock_is_set_back() {
    let pending = orders_pending_after_a_never_confirmed_code(-(DAY_MS as i64));
    assert!(pending.is_empty(), "still pending: {pending:?}");
}

/// Regression (found by the simulation, seed 24: a submit left the till after its order had
/// closed): the requests the core makes when the route comes back ("every pending order is asked
/// about at once") leave with the link update's own outputs, not the next input's.
#[test]
fn when_the_link_comes_back_the_pending_order_is_asked_about_at_once() {
    use pos_firmware::sim::payments::{wallet_code, WalletBehaviour};
    let wall = UnixMillis(START_LOCAL_MIDNIGHT_MS + (12 * 60 * MINUTE_MS) as i64);
    let mut rig = HandRig::open(TillConfig::default(), wall);
    let now = rig.till.now;
    rig.runtime().enable_link(now);
    let up = LinkPeer {
        daemon_connected: true,
        broker: Some(BrokerLink::Up),
    };
    rig.feed(Input::Link(LinkUpdate::Peer(up)));
    rig.keys(&[D5, TillKey::Enter]);
    let code = wallet_code(CodeMethod::WeChat, WalletBehaviour::PaidAtOnce, 1);
    let outputs = rig.feed(Input::Code(code));
    let submitted = outputs.iter().any(|o| matches!(o, Output::Order(_)));
    assert!(submitted, "the submit leaves: {outputs:?}");
    // Its answer is lost; the broker goes away and comes back.
    let down = LinkPeer {
        broker: Some(BrokerLink::Down),
        ..up
    };
    rig.feed(Input::Link(LinkUpdate::Peer(down)));
    let outputs = rig.feed(Input::Link(LinkUpdate::Peer(up)));
    let asked = outputs.iter().any(|o| matches!(o, Output::Order(_)));
    let later = rig.feed(Input::Tick);
    assert!(
        asked,
        "no request with the link's return; the next input's outputs carry {:?}",
        later
            .iter()
            .filter(|o| matches!(o, Output::Order(_)))
            .collect::<Vec<_>>()
    );
}

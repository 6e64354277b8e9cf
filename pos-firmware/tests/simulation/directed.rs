//! Directed reproductions of what the simulation found, on a till driven by hand
//! ([`HandRig`]: the default simulated cards, a virtual clock).

use super::*;

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

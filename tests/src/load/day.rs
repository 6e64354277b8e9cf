//! A day of sales behind one till, as the load test's fake tills hold it: realistic journal
//! records (a sale intent and its commit per sale, card payers from a campus-sized pool, lunch
//! prices, timestamps over a day), encoded exactly as the firmware journals them, so the
//! campus stores the bytes and sizes a real morning brings. Deterministic from a seed.

use shared::codec::encode_record;
use shared::record::{
    CardDebitPlan, JournalRecord, Payer, RecordBody, SaleCommitted, SaleIntent, TxnTag,
};
use shared::{CardUid, Fen, MachineNumber, Seq, TerminalId, UnixMillis};

/// The day the records are from: 2026-12-06 07:00 UTC+8 (the day before the morning).
const DAY_START: UnixMillis = UnixMillis(1_796_511_600_000);
/// Cards on campus the payers are drawn from.
const CAMPUS_CARDS: u64 = 20_000;
/// The cheapest and the dearest meal, in fen.
const MEAL_PRICE_MIN_FEN: u64 = 600;
const MEAL_PRICE_MAX_FEN: u64 = 2_500;
/// A card's balance before its sale: at least this much, in fen.
const BALANCE_MIN_FEN: u64 = 3_000;
/// The most a balance exceeds [`BALANCE_MIN_FEN`], in fen.
const BALANCE_SPREAD_FEN: u64 = 50_000;
/// The longest pause between two sales at one till, in milliseconds.
const MAX_SALE_GAP_MS: u64 = 40_000;
/// The time between an intent and its commit (a card tap), in milliseconds.
const TAP_MS: u64 = 350;

/// A small deterministic generator (SplitMix64): the load test needs spread, not secrecy.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`0` when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }
}

/// `count` encoded journal records of one till's day (seq 1..=count): sales as intent +
/// commit pairs; an odd count ends on an intent (a sale whose commit comes later).
pub fn day_of_sales(terminal: TerminalId, count: u64, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = SplitMix::new(seed ^ terminal.0);
    let machine = MachineNumber::FACTORY_DEFAULT;
    let mut at = DAY_START;
    let mut records = Vec::with_capacity(count as usize);
    let mut seq = 1;
    while seq <= count {
        at = at.saturating_add_millis(rng.below(MAX_SALE_GAP_MS) + 1);
        let card = rng.below(CAMPUS_CARDS) as u32;
        let uid = CardUid::new(&card.to_be_bytes()).expect("a 4-byte UID is valid");
        let payer = Payer::CampusCard(uid);
        let amount =
            Fen::new(MEAL_PRICE_MIN_FEN + rng.below(MEAL_PRICE_MAX_FEN - MEAL_PRICE_MIN_FEN));
        let balance_before = Fen::new(BALANCE_MIN_FEN + rng.below(BALANCE_SPREAD_FEN));
        let intent = JournalRecord {
            seq: Seq(seq),
            at,
            machine,
            body: RecordBody::SaleIntent(SaleIntent {
                amount,
                payer,
                card: CardDebitPlan {
                    counter_before: rng.below(1_000) as u32,
                    balance_before,
                    tag: TxnTag(rng.next_u64() as u32),
                },
                fixed_price: rng.below(2) == 0,
            }),
        };
        records.push(encode_record(&intent));
        seq += 1;
        if seq > count {
            break;
        }
        at = at.saturating_add_millis(TAP_MS);
        let committed = JournalRecord {
            seq: Seq(seq),
            at,
            machine,
            body: RecordBody::SaleCommitted(SaleCommitted {
                intent: Seq(seq - 1),
                amount,
                payer,
                balance_after: balance_before.checked_sub(amount).unwrap_or_default(),
                recovered: false,
            }),
        };
        records.push(encode_record(&committed));
        seq += 1;
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::codec::decode_record;

    #[test]
    fn a_day_of_sales_decodes_as_contiguous_intents_and_their_commits() {
        let records = day_of_sales(TerminalId(7), 5, 1);
        let decoded: Vec<JournalRecord> = records
            .iter()
            .map(|bytes| decode_record(bytes).expect("the firmware's encoding"))
            .collect();
        let seqs: Vec<u64> = decoded.iter().map(|r| r.seq.0).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        assert!(matches!(decoded[0].body, RecordBody::SaleIntent(_)));
        assert!(matches!(decoded[1].body, RecordBody::SaleCommitted(ref c) if c.intent == Seq(1)));
        assert!(matches!(decoded[4].body, RecordBody::SaleIntent(_)));
    }

    #[test]
    fn two_tills_have_different_days_and_one_till_the_same_day_again() {
        assert_ne!(
            day_of_sales(TerminalId(1), 10, 9),
            day_of_sales(TerminalId(2), 10, 9)
        );
        assert_eq!(
            day_of_sales(TerminalId(1), 10, 9),
            day_of_sales(TerminalId(1), 10, 9)
        );
    }
}

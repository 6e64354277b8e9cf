//! What every tap and every scanned code goes through before a flow sees it, and where it goes.
//!
//! A card: a write under way owns the reader (a second tap is noise); an unreadable card is
//! reported (a blank one goes to the card centre's issue screen); a readable one waits for the
//! journal's facts about it (`Effect::LookUpCard`, answered by `handle_card_facts`); a card whose
//! counter went back
//! is refused and journaled; a blacklisted card is refused; the card centre takes the card it
//! waits for; an unresolved top-up or sale of this card is settled first (`flows/card_centre.rs`,
//! `flows/sale.rs`); then the active flow gets it.
//!
//! A scanned code: recognised by `shared::paycode::PaymentCode::recognise` (anything else is
//! "无法识别的付款码" on both displays, nothing journaled, nothing sent), then handed to the
//! order flow (`flows/order.rs`), which refuses it when no amount waits, a card write or another
//! order is under way, the same code was used, a virtual-card code's signature does not verify
//! with the campus keys the till holds (none held: the campus verifies) or the code has expired.
//! While the campus server cannot be reached, the code goes to `flows/offline_code.rs` instead
//! (an offline virtual-card sale within the campus's limits; a wallet's code: offer the QR).

use shared::record::{CardAnomaly, CardAnomalyKind, Payer, RecordBody};

use super::card::{CardHistory, CardImage, CardProblem};
use super::flows::card_centre::CentreMode;
use super::flows::entry::EntryMode;
use super::flows::sale::SaleMode;
use super::text::{self, balance};
use super::{Beep, Effect, Mode, Till};
use shared::paycode::PaymentCode;

impl Till {
    /// Whether a card write (or format) is under way: it owns the reader.
    pub(super) fn reader_busy(&self) -> bool {
        match &self.mode {
            Mode::Sale(SaleMode::Debiting { .. }) => true,
            Mode::CardCentre(centre) => centre.is_writing(),
            _ => false,
        }
    }

    /// The reader saw a card it could not read as a campus wallet.
    pub(super) fn unreadable(&mut self, problem: CardProblem) {
        if self.reader_busy() {
            return; // the write under way owns the reader; a second tap is noise
        }
        if problem == CardProblem::Unformatted
            && self.mode == Mode::CardCentre(CentreMode::IssueAwaitingCard)
        {
            return self.tap_blank_for_issue();
        }
        self.show_card_problem(problem);
    }

    /// A campus card was tapped and read; `history` is what the journal's card index knows of
    /// it (asked for with `Effect::LookUpCard`).
    pub(super) fn tap(&mut self, card: CardImage, history: CardHistory) {
        let lang = self.lang();
        if self.reader_busy() {
            return; // the write under way owns the reader; a second tap is noise
        }
        if let Some(known) = history.known_counter.filter(|known| card.counter < *known) {
            return self.card_went_back(&card, known);
        }
        if self.is_blacklisted(&card.uid) {
            // Reported lost: no sale, no settling, nothing written. An interrupted sale or top-up
            // of this card stays unresolved and goes to the server as in doubt in time.
            return self.show_error_to_both(vec![
                text::CARD_REPORTED_LOST.get(lang),
                card.uid.to_string(),
            ]);
        }
        self.remember_card(&card);
        if let Mode::CardCentre(centre) = self.mode.clone() {
            if self.centre_tap(&centre, &card) {
                return;
            }
        }
        if let Some(pending) = self.pending_load_for(&card) {
            return self.resolve_pending_load(pending, &card);
        }
        if let Some(pending) = self.pending_for(Payer::CampusCard(card.uid)) {
            if Some(pending.intent) == self.retry_intent() {
                return self.resume_interrupted_sale(pending, &card);
            }
            return self.resolve_pending(pending, &card);
        }
        match self.mode.clone() {
            Mode::Sale(sale) => self.sale_tap(sale, &card, history),
            Mode::Entry(EntryMode::Typing(_)) => {
                self.show_info(vec![
                    text::CARD.get(lang) + " " + &card.uid.to_string(),
                    balance(lang, card.balance),
                ]);
            }
            Mode::Order(_) => self.show_error(vec![text::ORDER_IN_PROGRESS.get(lang)]),
            Mode::Entry(EntryMode::PickFixedPrice)
            | Mode::Browse(_)
            | Mode::Staff(_)
            | Mode::CardCentre(_) => {
                self.show_error(vec![text::EXIT_FIRST_CLEAR.get(lang)]);
            }
        }
    }

    fn show_card_problem(&mut self, problem: CardProblem) {
        let lang = self.lang();
        let lines = match problem {
            CardProblem::ReaderFault => {
                let customer = text::reader_fault_customer(lang);
                return self.show_message(text::reader_fault(lang), Some(customer), Beep::Error);
            }
            CardProblem::ReadFailed => {
                vec![text::CARD_READ_FAILED.get(lang), text::TAP_AGAIN.get(lang)]
            }
            CardProblem::NotCampusCard => vec![text::NOT_A_CAMPUS_CARD.get(lang)],
            CardProblem::Unformatted => vec![
                text::CARD_NOT_ISSUED.get(lang),
                text::SEE_THE_CARD_CENTRE.get(lang),
            ],
            CardProblem::OtherCampus => {
                vec![text::CARD_OF_ANOTHER_CAMPUS.get(lang)]
            }
            CardProblem::WrongKey => vec![
                text::CARD_KEY_MISMATCH.get(lang),
                text::SEE_THE_CARD_CENTRE.get(lang),
            ],
            CardProblem::BadMac => vec![
                text::CARD_DATA_CHECK_FAILED.get(lang),
                text::SEE_THE_CARD_CENTRE.get(lang),
            ],
        };
        self.show_error_to_both(lines);
    }

    /// The card's counter is below one this till saw or wrote: its blocks were restored from an
    /// earlier copy. Refused, and journaled as an alarm for the server.
    fn card_went_back(&mut self, card: &CardImage, known: u32) {
        let lang = self.lang();
        self.write(RecordBody::CardAnomaly(CardAnomaly {
            uid: card.uid,
            kind: CardAnomalyKind::CounterWentBack {
                on_card: card.counter,
                known,
            },
        }));
        self.show_error_to_both(vec![
            text::CARD_DATA_IS_STALE.get(lang),
            text::SEE_THE_CARD_CENTRE.get(lang),
        ]);
    }

    /// Asks the drivers to remember the card's counter (see [`Effect::RememberCard`]).
    pub(super) fn remember_card(&mut self, card: &CardImage) {
        self.effects.push_back(Effect::RememberCard {
            uid: card.uid,
            counter: card.counter,
        });
    }

    /// The scanner read a code: a payment code goes to the order flow.
    pub(super) fn scanned(&mut self, scanned: &str) {
        let lang = self.lang();
        match PaymentCode::recognise(scanned) {
            Ok(code) => self.code_scanned(code),
            Err(_) => self.show_error_to_both(vec![text::UNRECOGNISED_PAYMENT_CODE.get(lang)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::card::{CardFacts, CardRead};
    use super::super::testkit::{
        card, effects, keys, order_calls, records, till, virtual_code, NOW,
    };
    use super::*;
    use shared::{Fen, UnixMillis};

    #[test]
    fn a_tap_asks_the_journal_about_the_card_and_goes_on_with_the_answer() {
        let mut till = till();
        keys(&mut till, "5E");
        till.handle_card(CardRead::Card(card(20, 7)), NOW);
        assert_eq!(
            effects(&mut till),
            vec![Effect::LookUpCard {
                uid: card(20, 7).uid
            }],
            "nothing happens before the answer"
        );
        // The journal saw this card at counter 9: it was restored from an older copy.
        let facts = CardFacts {
            history: CardHistory {
                known_counter: Some(9),
                spent: None,
            },
            ..CardFacts::default()
        };
        till.handle_card_facts(facts, NOW);
        assert!(matches!(
            records(&effects(&mut till)).as_slice(),
            [RecordBody::CardAnomaly(_)]
        ));
        // A second answer with no tap waiting is stale and changes nothing.
        till.handle_card_facts(CardFacts::default(), NOW);
        assert!(effects(&mut till).is_empty());
        assert_eq!(
            till.mode,
            Mode::Sale(SaleMode::typed(Fen::from_yuan(5))),
            "the sale still waits"
        );
    }

    /// An online English till holding the campus configuration's virtual-card keys: id and
    /// the seed of the signing key whose public half it is.
    fn till_with_keys(keys: &[(u8, u8)]) -> Till {
        use shared::campus::CampusConfig;
        let mut till = super::super::testkit::online_till();
        let config = CampusConfig {
            payments: Some(super::super::testkit::code_payments(keys, None)),
            max_sale: Fen::from_yuan(50),
            ..shared::testing::campus_config(1)
        };
        till.handle_campus_config(config, NOW).unwrap();
        effects(&mut till);
        till
    }

    /// Scans `code` for a ¥8 sale: the effects of the scan.
    fn scan_for_8(till: &mut Till, code: &str) -> Vec<Effect> {
        keys(till, "8E");
        effects(till);
        till.handle_code(code, NOW);
        effects(till)
    }

    fn shown(till: &Till) -> (String, String) {
        let displays = till.displays();
        (
            displays.merchant.lines[1..3].join(" | "),
            displays.customer.lines[..2].join(" | "),
        )
    }

    #[test]
    fn a_virtual_card_code_the_campus_keys_do_not_verify_is_refused_before_anything_is_journaled() {
        // The code is signed with test key 7 as key id 1 (`testkit::virtual_code`).
        let code = virtual_code(2024_0001, NOW, 1);
        // Key 1 is another key: the signature does not verify (a forged code).
        let mut till = till_with_keys(&[(1, 8)]);
        let effects = scan_for_8(&mut till, &code);
        assert!(records(&effects).is_empty(), "{effects:?}");
        assert!(order_calls(&effects).is_empty(), "{effects:?}");
        assert!(till.snapshot().pending_orders.is_empty());
        let refusal = "Code invalid | Signature does not verify".to_string();
        assert_eq!(shown(&till), (refusal.clone(), refusal));
        // Key 1 is not announced at all (only key 2, which is the right key): unknown key.
        let mut till = till_with_keys(&[(2, 7)]);
        let effects = scan_for_8(&mut till, &code);
        assert!(records(&effects).is_empty() && order_calls(&effects).is_empty());
        assert_eq!(shown(&till).0, "Code invalid | Unknown key 1");
        // The Chinese screen says 付款码无效 and why.
        let mut till = till_with_keys(&[(1, 8)]);
        till.base_config.lang = super::super::config::Lang::Zh;
        till.config.lang = super::super::config::Lang::Zh;
        scan_for_8(&mut till, &code);
        assert_eq!(shown(&till).0, "付款码无效 | 签名不符");
    }

    #[test]
    fn a_virtual_card_code_the_campus_keys_verify_goes_on_to_its_order() {
        let mut till = till_with_keys(&[(2, 9), (1, 7)]);
        let effects = scan_for_8(&mut till, &virtual_code(2024_0001, NOW, 1));
        assert!(matches!(
            records(&effects).as_slice(),
            [RecordBody::OrderIntent(_)]
        ));
        assert_eq!(order_calls(&effects).len(), 1, "submitted");
        // An expired code signed right is still refused for its age, not its signature.
        let mut till = till_with_keys(&[(1, 7)]);
        let old = virtual_code(2024_0001, UnixMillis(NOW.0 - 61_000), 2);
        let effects = scan_for_8(&mut till, &old);
        assert!(records(&effects).is_empty());
        assert_eq!(shown(&till).0, "Code expired, refresh it | ");
    }

    #[test]
    fn with_no_campus_keys_any_virtual_card_code_goes_on_and_the_campus_verifies() {
        let mut till = super::super::testkit::online_till();
        assert!(till.config().virtual_card_keys.is_empty());
        let code = shared::paycode::VirtualCardCode::sign(
            &shared::paycode::signing_key_from_seed([42; 32]),
            9,
            shared::paycode::VirtualAccount(2024_0001),
            u32::try_from(NOW.0 / 1000).unwrap(),
            60,
            1,
        );
        let effects = scan_for_8(&mut till, &code);
        assert_eq!(
            order_calls(&effects).len(),
            1,
            "submitted: the campus checks it"
        );
    }

    #[test]
    fn an_unreadable_card_is_reported_without_asking_the_journal() {
        let mut till = till();
        till.handle_card(CardRead::Unreadable(CardProblem::ReadFailed), NOW);
        assert_eq!(effects(&mut till), vec![Effect::Beep(Beep::Error)]);
        assert_eq!(
            till.displays().merchant.lines[1..],
            ["Card read failed", "Tap again", ""]
        );
    }
}

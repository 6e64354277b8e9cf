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
//! order is under way, the same code was used, the till is offline or the code has expired.

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
    use super::super::testkit::{card, effects, keys, records, till, NOW};
    use super::*;
    use shared::Fen;

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

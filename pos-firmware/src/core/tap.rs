//! What every tap and every scanned code goes through before a flow sees it, and where it goes.
//!
//! A card: a write under way owns the reader (a second tap is noise); an unreadable card is
//! reported (a blank one goes to the card centre's issue screen); a card whose counter went back
//! is refused and journaled; a blacklisted card is refused; the card centre takes the card it
//! waits for; an unresolved top-up or sale of this card is settled first (`flows/card_centre.rs`,
//! `flows/sale.rs`); then the active flow gets it.
//!
//! A scanned code: classified (`codes.rs`) and, until code payments exist, refused with the
//! reason. Code payment will route here to `flows/sale.rs` as a second payment source.

use shared::record::{CardAnomaly, CardAnomalyKind, Payer, RecordBody};

use super::card::{CardHistory, CardImage, CardProblem, CardRead};
use super::flows::card_centre::CentreMode;
use super::flows::entry::EntryMode;
use super::flows::sale::SaleMode;
use super::text::{self, balance, tr};
use super::{classify_code, Beep, CodeKind, Effect, Mode, Till};

impl Till {
    /// A card was tapped and read; `history` is what the journal's card index knows of it.
    pub(super) fn tap(&mut self, read: CardRead, history: CardHistory) {
        let lang = self.lang();
        let writing = match &self.mode {
            Mode::Sale(SaleMode::Debiting { .. }) => true,
            Mode::CardCentre(centre) => centre.is_writing(),
            _ => false,
        };
        if writing {
            return; // the write under way owns the reader; a second tap is noise
        }
        let card = match read {
            CardRead::Card(card) => card,
            CardRead::Unreadable(CardProblem::Unformatted)
                if self.mode == Mode::CardCentre(CentreMode::IssueAwaitingCard) =>
            {
                return self.tap_blank_for_issue();
            }
            CardRead::Unreadable(problem) => return self.show_card_problem(problem),
        };
        if let Some(known) = history.known_counter.filter(|known| card.counter < *known) {
            return self.card_went_back(&card, known);
        }
        if self.is_blacklisted(&card.uid) {
            // Reported lost: no sale, no settling, nothing written. An interrupted sale or top-up
            // of this card stays unresolved and goes to the server as in doubt in time.
            return self.show_error_to_both(vec![
                tr(lang, "挂失卡 请联系卡务中心", "Card reported lost"),
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
                    tr(lang, "卡号", "Card") + " " + &card.uid.to_string(),
                    balance(lang, card.balance),
                ]);
            }
            Mode::Entry(EntryMode::PickFixedPrice)
            | Mode::Browse(_)
            | Mode::Staff(_)
            | Mode::CardCentre(_) => {
                self.show_error(vec![tr(lang, "请先退出(清零)", "Exit first (Clear)")]);
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
            CardProblem::ReadFailed => vec![
                tr(lang, "读卡失败", "Card read failed"),
                tr(lang, "请重新刷卡", "Tap again"),
            ],
            CardProblem::NotCampusCard => vec![tr(lang, "非本校园卡", "Not a campus card")],
            CardProblem::Unformatted => vec![
                tr(lang, "未开通的卡", "Card not issued"),
                tr(lang, "请到卡务中心", "See the card centre"),
            ],
            CardProblem::OtherCampus => {
                vec![tr(lang, "非本校园卡(外校)", "Card of another campus")]
            }
            CardProblem::WrongKey => vec![
                tr(lang, "卡片密钥错误", "Card key mismatch"),
                tr(lang, "请到卡务中心", "See the card centre"),
            ],
            CardProblem::BadMac => vec![
                tr(lang, "卡片数据校验失败", "Card data check failed"),
                tr(lang, "请到卡务中心", "See the card centre"),
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
            tr(lang, "卡片数据异常", "Card data is stale"),
            tr(lang, "请到卡务中心", "See the card centre"),
        ]);
    }

    /// Asks the drivers to remember the card's counter (see [`Effect::RememberCard`]).
    pub(super) fn remember_card(&mut self, card: &CardImage) {
        self.effects.push_back(Effect::RememberCard {
            uid: card.uid,
            counter: card.counter,
        });
    }

    /// The scanner read a code.
    pub(super) fn scanned(&mut self, code: &str) {
        let lang = self.lang();
        let name = match classify_code(code) {
            CodeKind::WeChat => tr(lang, "微信付款码", "WeChat Pay code"),
            CodeKind::Alipay => tr(lang, "支付宝付款码", "Alipay code"),
            CodeKind::UnionPay => tr(lang, "云闪付付款码", "UnionPay code"),
            CodeKind::Unknown => {
                return self.show_error_to_both(vec![tr(
                    lang,
                    "无法识别的码",
                    "Unrecognised code",
                )]);
            }
        };
        let why = if self.snap.offline {
            tr(lang, "脱机模式不能扫码付款", "Offline: codes cannot pay")
        } else {
            tr(lang, "本机未开通扫码付款", "Code payment not enabled")
        };
        let use_card = tr(lang, "请刷校园卡", "Please use the campus card");
        let customer = vec![name.clone(), use_card.clone()];
        self.show_message(vec![name, why, use_card], Some(customer), Beep::Error);
    }
}

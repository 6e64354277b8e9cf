//! A session's code payments as the merchant and the payer make them: a sale paid by a phone's
//! code, the merchant's reactions while the order is on screen (waiting, Clear, the till
//! restarted or its power cut between the intent and the submit, after the submit, while
//! reversing), and the link to the daemon going down and coming back.

use super::*;

impl Session {
    /// The till starts (or starts again): time passes, then the daemon connects if it is up.
    pub(crate) fn after_boot(&mut self) -> Result<(), String> {
        self.input(Input::Tick)?;
        self.tell_link()
    }

    /// Tells the till the link's state: up, or down (no daemon, or a daemon without broker).
    fn tell_link(&mut self) -> Result<(), String> {
        let peer = if self.link_up {
            LinkPeer {
                daemon_connected: true,
                broker: Some(BrokerLink::Up),
            }
        } else if self.rng.chance(50) {
            LinkPeer {
                daemon_connected: false,
                broker: None,
            }
        } else {
            LinkPeer {
                daemon_connected: true,
                broker: Some(BrokerLink::Down),
            }
        };
        self.link_connected = self.link_up;
        self.input(Input::Link(LinkUpdate::Peer(peer)))
    }

    /// The daemon or its broker goes down: answers on their way are lost with the connection.
    pub(crate) fn link_down(&mut self) -> Result<(), String> {
        if !self.link_up {
            return Ok(());
        }
        self.stats.link_downs += 1;
        self.note("link down".into());
        self.link_up = false;
        self.link_connected = false;
        self.link_epoch += 1;
        self.campus.link_lost();
        self.tell_link()
    }

    /// The daemon and its broker are back: a new connection.
    pub(crate) fn link_up(&mut self) -> Result<(), String> {
        if self.link_up {
            return Ok(());
        }
        self.note("link up".into());
        self.link_up = true;
        self.link_epoch += 1;
        self.tell_link()
    }

    /// A code on the scanner (one a phone showed: counted).
    pub(crate) fn scan(&mut self, code: String) -> Result<(), String> {
        self.stats.codes_scanned += 1;
        self.input(Input::Code(code))
    }

    /// The request reaches the campus, which acts on it; its answer is lost (the till died).
    pub(crate) fn campus_acts_unanswered(&mut self, call: &OrderCall) -> Result<(), String> {
        let now = self.campus_now();
        self.campus
            .backend
            .handle_call(call, now)
            .map_err(|e| format!("the in-memory back end failed: {e}"))?;
        self.stats.lost_answers += 1;
        Ok(())
    }

    /// A sale paid by a phone's code: the amount, Enter, the code (maybe with a power cut armed
    /// for its submit), the duplicate reminder answered, then the merchant's reactions while
    /// the order is open.
    pub(crate) fn code_sale(&mut self) -> Result<(), String> {
        if self.rng.chance(20) {
            self.press(TillKey::Clear)?;
            self.advance(1_100)?;
        }
        let text = self.amount_text();
        self.type_text(&text)?;
        self.gap()?;
        self.press(TillKey::Enter)?;
        let wait = self.rng.between(300, 4_000);
        self.advance(wait)?;
        let now = self.campus_now();
        let code = match self.campus.make_code(&mut self.rng, now) {
            Some(code) if self.rng.chance(93) => code,
            _ => self.random_code(),
        };
        let first_new = self.books.next_seq();
        self.arm_order_cut();
        self.scan(code.clone())?;
        self.order_cut = None;
        if self.showing(DUPLICATE_REMINDER) {
            self.stats.duplicate_reminders += 1;
            if self.rng.chance(60) {
                self.gap()?;
                self.press(TillKey::Enter)?;
                let wait = self.rng.between(300, 2_000);
                self.advance(wait)?;
                self.scan(code)?;
            } else if self.rng.chance(50) {
                self.press(TillKey::Clear)?;
            }
        }
        self.follow_order(first_new)
    }

    /// Counts (and notes) a power cut as `calls` left the till.
    pub(crate) fn count_order_cut(&mut self, cut: OrderCut, calls: &[OrderCall]) {
        let submit = calls
            .iter()
            .any(|c| matches!(c.request, OrderRequest::Submit { .. }));
        let reverse = calls
            .iter()
            .any(|c| matches!(c.request, OrderRequest::Reverse));
        match cut {
            OrderCut::Unsent if submit => self.stats.cuts_before_submit += 1,
            OrderCut::Unanswered if submit => self.stats.cuts_after_submit += 1,
            _ if reverse => self.stats.cuts_while_reversing += 1,
            _ => {}
        }
        self.note(format!(
            "power cut ({cut:?}) as {} order requests left",
            calls.len()
        ));
    }

    fn arm_order_cut(&mut self) {
        if self.rng.chance(ORDER_CUT_PERCENT) {
            let cut = self.rng.pick(&[OrderCut::Unsent, OrderCut::Unanswered]);
            self.note(format!(
                "power cut armed for the next order request: {cut:?}"
            ));
            self.order_cut = Some(cut);
        }
    }

    /// While the order started at or after `first_new` is open: wait (payers confirm, windows
    /// end), Clear (cancel, or send a reversing order to the background), a restart, a power
    /// cut as the reversal leaves, the link down or up.
    fn follow_order(&mut self, first_new: Seq) -> Result<(), String> {
        let Some(intent) = self.books.orders.range(first_new..).next().map(|(s, _)| *s) else {
            return Ok(());
        };
        for _ in 0..ORDER_FOLLOW_STEPS {
            if !self.books.open_orders.contains(&intent) {
                return Ok(());
            }
            match self.rng.below(100) {
                0..62 => {
                    let ms = self.rng.between(200, 8_000);
                    self.advance(ms)?;
                }
                62..74 => {
                    self.stats.clears_mid_order += 1;
                    self.press(TillKey::Clear)?;
                    self.advance(1_200)?;
                }
                74..79 => {
                    // A power cut as the reversal (or a query due) leaves.
                    self.stats.clears_mid_order += 1;
                    let cut = self.rng.pick(&[OrderCut::Unsent, OrderCut::Unanswered]);
                    self.order_cut = Some(cut);
                    self.press(TillKey::Clear)?;
                    self.advance(1_200)?;
                    self.order_cut = None;
                }
                79..84 => self.restart(false)?,
                84..88 => self.link_down()?,
                88..92 => self.link_up()?,
                _ => {
                    let ms = self.rng.between(10_000, 70_000);
                    self.advance(ms)?;
                }
            }
        }
        Ok(())
    }
}

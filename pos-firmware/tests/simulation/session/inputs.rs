//! The session's random inputs (amounts, codes, settings), its cards file, and the action log a
//! failure report prints.

use super::*;

impl Session {
    pub(crate) fn runtime(&self) -> Result<&TillRuntime, String> {
        self.runtime
            .as_ref()
            .ok_or_else(|| "the till is not running".to_string())
    }

    pub(crate) fn snapshot(&self) -> Result<TillSnapshot, String> {
        Ok(self.runtime()?.till().snapshot().clone())
    }

    pub(crate) fn now(&self) -> Now {
        Now {
            wall: self.wall,
            mono_ms: self.mono_ms,
        }
    }

    pub(crate) fn showing(&self, texts: &[&str]) -> bool {
        self.runtime.as_ref().is_some_and(|r| {
            r.displays()
                .merchant
                .lines
                .iter()
                .any(|line| texts.contains(&line.as_str()))
        })
    }

    /// Replaces the reader (power cut or new reader): the cards file must hold every write.
    pub(crate) fn reopen_cards(&mut self) -> Result<(), String> {
        let reopened =
            SimCards::open(self.dir.path()).map_err(|e| format!("sim cards reopen: {e}"))?;
        ensure!(
            reopened.cards() == self.cards.cards(),
            "the cards file lost a write: {:?} vs {:?}",
            reopened.cards(),
            self.cards.cards()
        );
        self.cards = reopened;
        Ok(())
    }

    pub(crate) fn amount_text(&mut self) -> String {
        match self.rng.below(100) {
            0..70 => self.rng.between(1, 25).to_string(),
            70..82 => format!("{}.{}", self.rng.between(0, 30), self.rng.between(1, 9)),
            82..86 => format!("{}.{:02}", self.rng.between(0, 30), self.rng.below(100)),
            86..88 => ".5".into(),
            88..90 => "0.01".into(),
            90..95 => self
                .rng
                .pick(&["150", "199.99", "200", "300", "9999", "123456789"])
                .into(),
            _ => self
                .rng
                .pick(&["0", "00", "0.00", "1..2", "1.234", ".", "05"])
                .into(),
        }
    }

    pub(crate) fn random_code(&mut self) -> String {
        match self.rng.below(10) {
            0 => String::new(),
            1 => format!("{}{}", self.rng.between(10, 15), self.rng.digits(16)),
            2 => {
                let len = self.rng.between(14, 22);
                format!("{}{}", self.rng.between(25, 30), self.rng.digits(len))
            }
            3 => format!("62{}", self.rng.digits(17)),
            4 => {
                let len = self.rng.between(1, 40);
                (0..len)
                    .map(|_| char::from(self.rng.between(0x20, 0x7E) as u8))
                    .collect()
            }
            5 => {
                let len = self.rng.between(2_000, 20_000);
                if self.rng.chance(50) {
                    self.rng.digits(len)
                } else {
                    "x".repeat(len as usize)
                }
            }
            6 => self
                .rng
                .pick(&[
                    "付款码",
                    "💳🙂",
                    "١٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩",
                    "１３４５６７８９０１２３４５６７８９",
                    "13456789012345678é",
                ])
                .into(),
            7 => self
                .rng
                .pick(&[
                    " 134567890123456789 ",
                    "\n",
                    "\u{0}\u{7f}",
                    "12\r\n",
                    "\t62\t",
                ])
                .into(),
            _ => {
                let len = self.rng.between(1, 30);
                self.rng.digits(len)
            }
        }
    }

    pub(crate) fn random_config(&mut self) -> TillConfig {
        TillConfig {
            lang: self.rng.pick(&[Lang::Zh, Lang::En]),
            max_sale: self.rng.pick(&[
                Fen::new(1),
                Fen::from_yuan(5),
                Fen::from_yuan(20),
                DEFAULT_MAX_SALE,
                MAX_SALE_CEILING,
            ]),
            duplicate_window_ms: self.rng.pick(&[DEFAULT_DUPLICATE_WINDOW_MS, 60_000, 0]),
            merchant_name: self
                .rng
                .pick(&["", "第一食堂 3号窗口", "Noodles"])
                .to_string(),
            ..TillConfig::default()
        }
    }

    pub(crate) fn begin_action(&mut self, name: String) {
        if self.log.len() == REPORT_ACTIONS {
            self.log.pop_front();
        }
        self.log.push_back(ActionLog {
            step: self.step,
            name,
            inputs: Vec::new(),
        });
    }

    pub(crate) fn note(&mut self, line: String) {
        let stamp = format_wall(local_time(self.wall, self.config.utc_offset_minutes).wall);
        let line = format!(
            "[{stamp} +{}ms mono {}] {line}",
            self.wall.0 % 1000,
            self.mono_ms
        );
        if let Some(action) = self.log.back_mut() {
            action.inputs.push(line);
        }
    }

    pub(crate) fn describe_input(&self, input: &Input) -> String {
        match input {
            Input::Key(key) => format!("key {key}"),
            Input::Card(read) => {
                format!("tap {read:?} (fault armed: {:?})", self.cards.armed_fault())
            }
            Input::Code(code) if code.chars().count() > 40 => format!(
                "scan {:?}… ({} chars)",
                code.chars().take(20).collect::<String>(),
                code.chars().count()
            ),
            Input::Code(code) => format!("scan {code:?}"),
            Input::Tick => "tick".into(),
            Input::Link(peer) => format!("link {peer:?}"),
            Input::Downlink(downlink) => format!("downlink {:?}", downlink.kind()),
            Input::OrderResult(result) => format!("order result {result:?}"),
            Input::OrderNotSent(order) => format!("order {order} not sent"),
        }
    }

    pub(crate) fn report(&self, message: &str, seed: u64) -> String {
        let mut text = format!(
            "seed {seed} failed at step {}: {message}\nreplay: SIM_SEED={seed} cargo test -p pos-firmware --test simulation -- --nocapture\nlast {} actions:\n",
            self.step,
            self.log.len()
        );
        for action in &self.log {
            let _ = writeln!(text, "  step {} {}", action.step, action.name);
            for input in &action.inputs {
                let _ = writeln!(text, "      {input}");
            }
        }
        if let Some(runtime) = &self.runtime {
            let _ = writeln!(text, "displays now: {:?}", runtime.displays());
        }
        let _ = writeln!(text, "cards now: {:?}", self.cards.cards());
        text
    }
}

/// Seeds the cards file: usually richer wallets than the defaults (so a session can sell for a
/// few hundred steps), card-3 poor, sometimes a card-2 counter at its very end, sometimes a
/// crowd of extra student cards (returns whether it did); sometimes the defaults exactly as
/// the simulator creates them. The cards are made as the card centre would (issued through the
/// wallet on the emulated reader, then given the seeded state with the key).
pub(crate) fn write_cards_file(rng: &mut Rng, dir: &Path) -> Result<bool, String> {
    if rng.chance(15) {
        return Ok(false);
    }
    let crowd = rng.chance(CROWD_PERCENT);
    let mut cards = default_cards();
    ensure!(
        cards.len() as u64 == DEFAULT_CARD_COUNT,
        "DEFAULT_CARD_COUNT is out of date"
    );
    if crowd {
        for k in 0..CROWD_CARDS {
            let uid = CardUid::new(&[0xC0, 0xDE, 0, k as u8]).map_err(|e| e.to_string())?;
            cards.push(SimCard {
                name: format!("student-{k}"),
                uid,
                balance: Fen::ZERO,
                counter: 0,
                last_tag: shared::record::TxnTag(0),
                campus: true,
                kind: SimCardKind::Wallet,
            });
        }
    }
    for card in cards.iter_mut().filter(|c| c.campus) {
        card.balance = match card.name.as_str() {
            "card-3" => Fen::new(rng.between(0, 500)),
            _ => Fen::new(rng.between(5_000, 200_000)),
        };
        card.counter = if card.name == "card-2" && rng.chance(15) {
            u32::MAX - rng.below(3) as u32
        } else {
            rng.below(1_000) as u32
        };
        card.last_tag = shared::record::TxnTag(rng.below(u64::from(u32::MAX)) as u32);
    }
    SimCards::create(dir, cards).map_err(|e| format!("cards file: {e}"))?;
    Ok(crowd)
}

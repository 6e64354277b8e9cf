//! The checks a session runs after every input: the journal (no payment code in it), the card
//! writes and changes, the money on the cards, the snapshot's totals and pending orders, and the
//! displays.

use super::*;

impl Session {
    /// The records reported as journaled are exactly the new records in the journal.
    pub(crate) fn check_journal(&mut self, outputs: &[Output]) -> Result<(), String> {
        let runtime = self.runtime.as_ref().ok_or("the till is not running")?;
        let mut fresh = Vec::new();
        for record in runtime.journal().records_from(self.books.next_seq()) {
            fresh.push(record.map_err(|e| format!("reading the journal: {e}"))?);
        }
        let journaled: Vec<&JournalRecord> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Journaled(record) => Some(record),
                _ => None,
            })
            .collect();
        ensure!(
            fresh.iter().eq(journaled.iter().copied()),
            "records reported as durable {journaled:?} are not the new records in the journal {fresh:?}"
        );
        if !fresh.is_empty() {
            let snapshot = shared::codec::encode_snapshot(runtime.journal().snapshot());
            ensure!(
                self.campus.code_in(&snapshot).is_none(),
                "the snapshot carries a payment code in clear"
            );
        }
        for record in fresh {
            self.check_no_code_in(&record)?;
            if let RecordBody::SaleIntent(sale) = &record.body {
                if sale.amount > self.config.max_sale {
                    self.stats.over_max_sale += 1;
                }
            }
            self.books.ingest(record, self.terminal)?;
        }
        Ok(())
    }

    /// Every card write is the planned write of a durable intent that was still open.
    pub(crate) fn check_card_writes(
        &mut self,
        writes: &[(CardWrite, CardWriteOutcome)],
        unresolved_before: &BTreeSet<Seq>,
        first_new: Seq,
    ) -> Result<(), String> {
        for (write, outcome) in writes {
            self.stats.card_writes += 1;
            match outcome {
                CardWriteOutcome::Written(_) => {}
                CardWriteOutcome::Refused => self.stats.writes_refused += 1,
                CardWriteOutcome::Unknown => self.stats.writes_unknown += 1,
            }
            let seq = self
                .books
                .intent_by_tag(write.uid, write.tag.0, write.counter_before)
                .ok_or_else(|| format!("card write {write:?} belongs to no durable intent"))?;
            ensure!(
                unresolved_before.contains(&seq) || seq >= first_new,
                "card write for intent {seq}, which was resolved before ({:?})",
                self.books.resolutions.get(&seq)
            );
            let (_, sale) = self.books.intents[&seq];
            ensure!(
                Some(write.new_counter) == sale.card.counter_before.checked_add(1)
                    && Some(write.new_balance) == sale.card.balance_before.checked_sub(sale.amount),
                "card write {write:?} is not the plan of intent {seq} {sale:?}"
            );
        }
        Ok(())
    }

    /// Ground truth: every change of a card is exactly one write of one durable intent, once.
    pub(crate) fn check_card_changes(&mut self, before: &[SimCard]) -> Result<(), String> {
        let after = self.cards.cards();
        ensure!(after.len() == before.len(), "the number of cards changed");
        for (b, a) in before.iter().zip(after) {
            if a == b {
                continue;
            }
            ensure!(
                a.uid == b.uid && a.name == b.name && a.campus == b.campus,
                "card {} changed identity",
                b.name
            );
            ensure!(
                Some(a.counter) == b.counter.checked_add(1),
                "card {}: counter went {} -> {} in one input",
                a.name,
                b.counter,
                a.counter
            );
            let seq = self
                .books
                .intent_by_tag(a.uid, a.last_tag.0, b.counter)
                .ok_or_else(|| {
                    format!(
                        "card {} was written with tag {:?} of no durable intent",
                        a.name, a.last_tag
                    )
                })?;
            let (_, sale) = self.books.intents[&seq];
            ensure!(
                sale.card.balance_before == b.balance
                    && Some(a.balance) == b.balance.checked_sub(sale.amount),
                "card {}: ¥{} -> ¥{} is not intent {seq} (¥{} from ¥{})",
                a.name,
                b.balance,
                a.balance,
                sale.amount,
                sale.card.balance_before
            );
            ensure!(
                self.landed.insert(seq, a.uid).is_none(),
                "intent {seq} reached card {} twice",
                a.name
            );
        }
        Ok(())
    }

    /// No money lost, none taken twice.
    pub(crate) fn check_money(&self) -> Result<(), String> {
        for (initial, now) in self.initial.iter().zip(self.cards.cards()) {
            let taken = initial
                .balance
                .checked_sub(now.balance)
                .ok_or_else(|| format!("card {} gained money", now.name))?;
            // The brief's rule, from the journal and the card as it is now.
            let committed = self.books.committed(now.uid);
            let mut unresolved_landed = Fen::ZERO;
            for seq in &self.books.unresolved {
                let (_, sale) = self.books.intents[seq];
                if sale.payer == Payer::CampusCard(now.uid)
                    && Some(now.counter) == sale.card.counter_before.checked_add(1)
                    && now.last_tag == sale.card.tag
                {
                    unresolved_landed = unresolved_landed
                        .checked_add(sale.amount)
                        .ok_or("overflow")?;
                }
            }
            // Sales handed to the server as "in doubt" whose write did reach the card (ground
            // truth: the card's state cannot tell any more once it moved on).
            let in_doubt_landed = self.in_doubt_landed(now.uid)?;
            let accounted = committed
                .checked_add(unresolved_landed)
                .and_then(|f| f.checked_add(in_doubt_landed))
                .ok_or("overflow")?;
            ensure!(
                taken == accounted,
                "card {}: ¥{taken} taken from the card, but the journal has ¥{committed} committed \
                 + ¥{unresolved_landed} in unresolved sales that reached the card + \
                 ¥{in_doubt_landed} in doubt that reached it: money {}",
                now.name,
                if taken > accounted {
                    "taken without a record"
                } else {
                    "recorded but never taken"
                }
            );
            // The same from the card side: what reached the card, write by write.
            let (mut landed_fen, mut landed_count) = (Fen::ZERO, 0u64);
            for (seq, _) in self.landed.iter().filter(|(_, uid)| **uid == now.uid) {
                landed_fen = landed_fen
                    .checked_add(self.books.intents[seq].1.amount)
                    .ok_or("overflow")?;
                landed_count += 1;
            }
            ensure!(
                taken == landed_fen && u64::from(now.counter - initial.counter) == landed_count,
                "card {}: ¥{taken} taken / counter +{} but the writes seen sum to ¥{landed_fen} / {landed_count}",
                now.name,
                now.counter - initial.counter
            );
        }
        for (seq, resolution) in &self.books.resolutions {
            match resolution {
                Resolution::Committed => ensure!(
                    self.landed.contains_key(seq),
                    "intent {seq} is committed but its write never reached the card"
                ),
                Resolution::Aborted => ensure!(
                    !self.landed.contains_key(seq),
                    "intent {seq} is aborted but its write reached the card: money taken without a sale"
                ),
                Resolution::InDoubt => {}
            }
        }
        Ok(())
    }

    /// What the sales of `uid` that went to the server "in doubt" took from the card after all.
    pub(crate) fn in_doubt_landed(&self, uid: CardUid) -> Result<Fen, String> {
        let mut total = Fen::ZERO;
        for (seq, resolution) in &self.books.resolutions {
            if *resolution == Resolution::InDoubt && self.landed.get(seq) == Some(&uid) {
                total = total
                    .checked_add(self.books.intents[seq].1.amount)
                    .ok_or("overflow")?;
            }
        }
        Ok(total)
    }

    /// The snapshot: durable == in memory, pending == unresolved, totals == the commits.
    pub(crate) fn check_snapshot(
        &mut self,
        today_before: (LocalDay, SalesTally),
    ) -> Result<(), String> {
        let runtime = self.runtime.as_ref().ok_or("the till is not running")?;
        let snap = runtime.till().snapshot();
        ensure!(
            snap == runtime.journal().snapshot(),
            "the till's snapshot differs from the durable one (a restart would lose it):\n  till:    {snap:?}\n  durable: {:?}",
            runtime.journal().snapshot()
        );
        let books = &self.books;
        ensure!(
            snap.next_seq == books.next_seq(),
            "snapshot next_seq {} but the journal ends before {}",
            snap.next_seq,
            books.next_seq()
        );
        let pending: BTreeSet<Seq> = snap.pending.iter().map(|p| p.intent).collect();
        ensure!(
            pending == books.unresolved,
            "snapshot pending {pending:?} but unresolved intents {:?}",
            books.unresolved
        );
        for p in &snap.pending {
            ensure!(
                books.intents.get(&p.intent) == Some(&(p.at, p.sale)),
                "pending sale {} differs from its intent record",
                p.intent
            );
        }
        self.stats.max_pending = self.stats.max_pending.max(snap.pending.len() as u64);
        let open: BTreeSet<Seq> = snap.pending_orders.iter().map(|p| p.intent).collect();
        ensure!(
            open == books.open_orders,
            "snapshot pending orders {open:?} but open order intents {:?}",
            books.open_orders
        );
        for p in &snap.pending_orders {
            ensure!(
                books.orders.get(&p.intent) == Some(&(p.at, p.order))
                    && p.reversing == books.reversing.contains(&p.intent),
                "pending order {p:?} differs from its records (reversing journaled: {})",
                books.reversing.contains(&p.intent)
            );
        }
        self.stats.most_orders_pending = self
            .stats
            .most_orders_pending
            .max(snap.pending_orders.len() as u64);
        ensure!(
            snap.recent_amounts.len() <= RECENT_AMOUNTS_LEN,
            "{} recent amounts",
            snap.recent_amounts.len()
        );
        let expected = expected_totals(&books.commits, &self.config);
        ensure!(
            snap.recent_amounts == expected.recent,
            "recent amounts {:?}, the last commits say {:?}",
            snap.recent_amounts,
            expected.recent
        );
        ensure!(
            snap.last_sale == expected.last_sale,
            "last sale {:?}, the journal says {:?}",
            snap.last_sale,
            expected.last_sale
        );
        ensure!(
            snap.days == expected.days,
            "day tallies {:?}, the commits say {:?}",
            snap.days,
            expected.days
        );
        ensure!(
            snap.meals == expected.meals,
            "meal tallies {:?}, the commits say {:?}",
            snap.meals,
            expected.meals
        );
        let by_code: Vec<Commit> = books
            .commits
            .iter()
            .filter(|c| c.by_code)
            .copied()
            .collect();
        let expected_code = expected_totals(&by_code, &self.config);
        ensure!(
            snap.code_days == expected_code.days && snap.code_meals == expected_code.meals,
            "code tallies {:?} / {:?}, the journal's paid orders say {:?} / {:?}",
            snap.code_days,
            snap.code_meals,
            expected_code.days,
            expected_code.meals
        );
        // What Clear+5 shows (the snapshot's tally of the clock's day) is the sum of the
        // journal's sales of that day, and what Clear+6 shows that of the clock's meal.
        let offset = self.config.utc_offset_minutes;
        let clock = local_time(self.wall, offset);
        let journal_today = self.journal_tally_of_day(clock.day)?;
        ensure!(
            snap.day_tally(clock.day) == journal_today,
            "Clear+5 would show {:?}, the journal's sales of the clock's day {:?} say {journal_today:?}",
            snap.day_tally(clock.day),
            clock.day
        );
        if let Some(meal) = self.config.meal_at(clock.minute) {
            let journal_meal = self
                .books
                .commits
                .iter()
                .filter(|c| {
                    let local = local_time(c.intent_at, offset);
                    local.day == clock.day
                        && self
                            .config
                            .meal_at(local.minute)
                            .is_some_and(|m| m.start == meal.start)
                })
                .try_fold(SalesTally::default(), |tally, c| tally.plus(c.amount))
                .ok_or("the meal's total overflows")?;
            ensure!(
                snap.meal_tally(clock.day, meal.start) == journal_meal,
                "Clear+6 would show {:?}, the journal's sales of the clock's meal say {journal_meal:?}",
                snap.meal_tally(clock.day, meal.start)
            );
        }
        let (day_before, before) = today_before;
        if day_before == clock.day {
            let after = snap.day_tally(clock.day);
            ensure!(
                after.count >= before.count,
                "today's count fell from {} to {} within day {day_before:?}",
                before.count,
                after.count
            );
        }
        Ok(())
    }

    pub(crate) fn check_displays(&self, outputs: &[Output], first_new: Seq) -> Result<(), String> {
        let lang = self.config.lang;
        let durable_before = &self.books.records[..(first_new.0 - 1) as usize];
        for (i, output) in outputs.iter().enumerate() {
            let Output::Displays(displays) = output else {
                continue;
            };
            check_shape(displays, lang)?;
            if let Some(shown) = success_shown(displays, lang) {
                let journaled_earlier = outputs[..i].iter().any(|o| match o {
                    Output::Journaled(record) => commit_matches(record, &shown, lang),
                    _ => false,
                });
                let already = durable_before
                    .iter()
                    .any(|r| commit_matches(r, &shown, lang));
                ensure!(
                    journaled_earlier || already,
                    "success {shown:?} shown before its SaleCommitted was durable; outputs: {outputs:?}"
                );
            }
        }
        let runtime = self.runtime.as_ref().ok_or("the till is not running")?;
        let displays = runtime.displays();
        check_shape(&displays, lang)?;
        if let Some(shown) = success_shown(&displays, lang) {
            ensure!(
                self.books
                    .records
                    .iter()
                    .any(|r| commit_matches(r, &shown, lang)),
                "success {shown:?} on screen with no such commit in the journal"
            );
        }
        let snap = runtime.till().snapshot();
        let status = &displays.merchant.lines[0];
        let (machine, online, offline, fixed, check) = match lang {
            Lang::Zh => ("机号", "联机", "脱机", "定额", "待核"),
            Lang::En => ("No.", "ONLINE", "OFFLINE", "FIXED", "CHECK"),
        };
        let (manual, link_down, net_down) = match lang {
            Lang::Zh => ("手动", "链路断", "网断"),
            Lang::En => ("MANUAL", "LINK DOWN", "NET DOWN"),
        };
        ensure!(
            status.starts_with(&format!("{machine}{}", snap.machine)),
            "status line {status:?} lacks machine number {}",
            snap.machine
        );
        // One state: 脱机 手动 when switched offline, else 联机 or 脱机 with the link's why.
        let state = status.split_once(' ').map_or("", |(_, rest)| rest);
        let says = |why: &str| state.starts_with(&format!("{offline} {why}"));
        let fits = if snap.offline {
            says(manual)
        } else {
            state.starts_with(online) || says(link_down) || says(net_down)
        };
        ensure!(
            fits,
            "status line {status:?} should name one state (offline by hand: {})",
            snap.offline
        );
        ensure!(
            status.contains(fixed) == snap.fixed_price.is_some(),
            "status line {status:?} vs fixed price {:?}",
            snap.fixed_price
        );
        let marker = format!("{check}{}", if lang == Lang::En { " " } else { "" });
        // Sales, top-ups and orders waiting; the link's state and the unsent count follow.
        // (Offline QR orders are counted apart, as 码单N.)
        let orders = snap
            .pending_orders
            .iter()
            .filter(|p| p.order.method != shared::paycode::CodeMethod::OfflineQr)
            .count();
        let pending = snap.pending.len() + snap.pending_loads.len() + orders;
        let count = format!("{marker}{pending}");
        let shown = if pending == 0 {
            !status.contains(&marker)
        } else {
            status.ends_with(&count) || status.contains(&format!("{count} "))
        };
        ensure!(
            shown,
            "status line {status:?} with {} pending sales and {} pending orders",
            snap.pending.len(),
            snap.pending_orders.len()
        );
        Ok(())
    }
}

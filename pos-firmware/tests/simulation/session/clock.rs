//! The session's clock gestures: standing before or crossing midnight, the wall clock set back
//! or corrected by whole days (the monotonic clock never jumps), and Clear+5 checked against the
//! journal's sales of the clock's day.

use super::*;

impl Session {
    pub(crate) fn midnight(&mut self) -> Result<(), String> {
        self.stats.midnights += 1;
        let offset_ms = i64::from(self.config.utc_offset_minutes) * 60_000;
        let into_day = (self.wall.0 + offset_ms).rem_euclid(DAY_MS as i64) as u64;
        let to_midnight = DAY_MS - into_day;
        match self.rng.below(3) {
            // Stand just before midnight: the next steps cross it.
            0 if to_midnight > 120_000 => {
                let before = self.rng.between(1_000, 120_000);
                self.advance(to_midnight - before)
            }
            // Cross it, then the clock is set back across it again.
            1 => {
                let after = self.rng.between(0, 60_000);
                self.advance(to_midnight + after)?;
                let back = after + self.rng.between(1, 10 * MINUTE_MS);
                self.clock_back(back)
            }
            _ => {
                let after = self.rng.between(0, 60_000);
                self.advance(to_midnight + after)
            }
        }
    }

    pub(crate) fn clock_back(&mut self, ms: u64) -> Result<(), String> {
        self.stats.clock_jumps += 1;
        self.wall = UnixMillis(self.wall.0 - ms as i64);
        self.mono_ms += self.rng.between(1, 100); // the monotonic clock never jumps
        self.note(format!("clock set back {}", duration(ms)));
        self.input(Input::Tick)
    }

    /// A wrong clock corrected: the wall clock steps a day or two back or forward (the
    /// monotonic clock does not). Sessions keep within a few days of their start, fewer than
    /// `TALLY_DAYS_KEPT`, so every day the clock comes back to still has its tally.
    pub(crate) fn clock_days(&mut self) -> Result<(), String> {
        self.stats.clock_day_steps += 1;
        let days = self.rng.between(1, CLOCK_STEP_DAYS_MAX);
        let minutes = self.rng.between(0, 60);
        let ms = (days * DAY_MS + minutes * MINUTE_MS) as i64;
        // Back when ahead of the start, forward when behind it.
        let step = if self.wall > self.start_wall { -ms } else { ms };
        self.wall = UnixMillis(self.wall.0 + step);
        self.mono_ms += self.rng.between(1, 100);
        self.note(format!(
            "clock set {} {}",
            if step < 0 { "back" } else { "forward" },
            duration(ms.unsigned_abs())
        ));
        self.input(Input::Tick)
    }

    /// Clear+5 (after Clear ends whatever is on the screen): when the till shows today's total,
    /// it is the sum of the journal's committed sales whose intent was made on the clock's day.
    pub(crate) fn today_total(&mut self) -> Result<(), String> {
        self.press(TillKey::Clear)?;
        self.advance(200)?;
        self.press(TillKey::Digit(5))?;
        let lang = self.config.lang;
        let title = match lang {
            Lang::Zh => "今日累计",
            Lang::En => "Today",
        };
        let lines = self.runtime()?.displays().merchant.lines;
        if lines.get(1).map(String::as_str) != Some(title) {
            return Ok(()); // not idle (a sale under way, a menu): Clear+5 is refused there
        }
        let tally = self.journal_tally_of_day(self.clock_day())?;
        let expected = count_and_total(lang, tally.count, tally.total);
        ensure!(
            lines.get(2) == Some(&expected),
            "Clear+5 shows {lines:?}, the journal's sales of the clock's day say {expected:?}"
        );
        self.stats.today_totals_checked += 1;
        Ok(())
    }

    /// The clock's local day now.
    pub(crate) fn clock_day(&self) -> LocalDay {
        local_time(self.wall, self.config.utc_offset_minutes).day
    }

    /// The committed sales in the journal whose intent was made on `day`.
    pub(crate) fn journal_tally_of_day(&self, day: LocalDay) -> Result<SalesTally, String> {
        self.books
            .commits
            .iter()
            .filter(|c| local_time(c.intent_at, self.config.utc_offset_minutes).day == day)
            .try_fold(SalesTally::default(), |tally, c| tally.plus(c.amount))
            .ok_or_else(|| "the day's total overflows".to_string())
    }
}

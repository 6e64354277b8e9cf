//! The sales tallies of the snapshot (Clear+5 today, Clear+6 this meal), one per day and per
//! meal of a day, and the one rule for counting a sale in them.

use shared::record::{DayTally, MealTally, SalesTally};
use shared::{Fen, LocalDay, MinuteOfDay};

/// A tally the snapshot keeps several of, one per period (a day, or a meal of a day).
pub(super) trait KeptTally: Copy {
    type Period: Ord + Copy;
    fn period(&self) -> Self::Period;
    fn tally_mut(&mut self) -> &mut SalesTally;
    fn new(period: Self::Period, tally: SalesTally) -> Self;
}

impl KeptTally for DayTally {
    type Period = LocalDay;
    fn period(&self) -> LocalDay {
        self.day
    }
    fn tally_mut(&mut self) -> &mut SalesTally {
        &mut self.tally
    }
    fn new(day: LocalDay, tally: SalesTally) -> DayTally {
        DayTally { day, tally }
    }
}

impl KeptTally for MealTally {
    type Period = (LocalDay, MinuteOfDay);
    fn period(&self) -> (LocalDay, MinuteOfDay) {
        (self.day, self.meal_start)
    }
    fn tally_mut(&mut self) -> &mut SalesTally {
        &mut self.tally
    }
    fn new((day, meal_start): (LocalDay, MinuteOfDay), tally: SalesTally) -> MealTally {
        MealTally {
            day,
            meal_start,
            tally,
        }
    }
}

/// The one rule for tallies: a sale counts in the period of its intent (`sale`), kept in
/// `tallies` (ascending by period, at most `limit`). Past the limit the period furthest in the
/// past goes, never the clock's current one (`clock`), so that Clear+5 and Clear+6 always find
/// every sale of the clock's day and meal, whether the clock was set back, forward or across
/// midnight in between. A sale of a period older than every kept one, when the list is full,
/// counts nowhere (the journal keeps it). A total that would overflow stays as it was (the
/// amounts are bounded far below that).
pub(super) fn count_in_tallies<T: KeptTally>(
    tallies: &mut Vec<T>,
    sale: T::Period,
    clock: Option<T::Period>,
    amount: Fen,
    limit: usize,
) {
    match tallies.binary_search_by_key(&sale, T::period) {
        Ok(i) => {
            let tally = tallies[i].tally_mut();
            *tally = tally.plus(amount).unwrap_or(*tally);
        }
        Err(i) => {
            let first = SalesTally::default().plus(amount).unwrap_or_default();
            tallies.insert(i, T::new(sale, first));
        }
    }
    while tallies.len() > limit {
        let Some(oldest) = tallies.iter().position(|t| Some(t.period()) != clock) else {
            break;
        };
        tallies.remove(oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i32, count: u32) -> DayTally {
        DayTally {
            day: LocalDay(n),
            tally: SalesTally {
                count,
                total: Fen::new(100 * u64::from(count)),
            },
        }
    }

    fn sell(tallies: &mut Vec<DayTally>, sale: i32, clock: i32, limit: usize) {
        count_in_tallies(
            tallies,
            LocalDay(sale),
            Some(LocalDay(clock)),
            Fen::new(100),
            limit,
        );
    }

    #[test]
    fn a_sale_counts_in_the_day_of_its_intent_and_every_day_keeps_its_total() {
        let mut days = Vec::new();
        sell(&mut days, 5, 5, 8);
        sell(&mut days, 5, 5, 8);
        // The clock is set back a day: the new sale counts on day 4, day 5 keeps its two.
        sell(&mut days, 4, 4, 8);
        // Forward again: day 5 goes on from two.
        sell(&mut days, 5, 5, 8);
        // A sale of day 4 settled late, on day 5, counts on day 4.
        sell(&mut days, 4, 5, 8);
        assert_eq!(days, vec![day(4, 2), day(5, 3)]);
    }

    #[test]
    fn past_the_limit_the_oldest_day_goes_but_never_the_clocks() {
        let mut days = Vec::new();
        for n in 10..13 {
            sell(&mut days, n, n, 3);
        }
        // A fourth day: day 10, the oldest, goes.
        sell(&mut days, 13, 13, 3);
        assert_eq!(days, vec![day(11, 1), day(12, 1), day(13, 1)]);
        // The clock is set back to day 2: its sale is the oldest but stays; day 11 goes.
        sell(&mut days, 2, 2, 3);
        assert_eq!(days, vec![day(2, 1), day(12, 1), day(13, 1)]);
        sell(&mut days, 2, 2, 3);
        assert_eq!(days, vec![day(2, 2), day(12, 1), day(13, 1)]);
        // A late sale of day 1 (older than all, the clock on day 13) counts nowhere.
        sell(&mut days, 1, 13, 3);
        assert_eq!(days, vec![day(2, 2), day(12, 1), day(13, 1)]);
    }
}

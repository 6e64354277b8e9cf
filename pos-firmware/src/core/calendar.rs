//! Turns the instants the driver passes in into the till's local calendar: which day (for
//! today's totals), which minute (for meal periods), and text for the clock screen. Pure: the
//! UTC offset comes from the configuration, never from the machine's time zone.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime};
use shared::{LocalDay, MinuteOfDay, UnixMillis};

/// The till's local view of one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub day: LocalDay,
    pub minute: MinuteOfDay,
    pub wall: NaiveDateTime,
}

fn epoch_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// The local time of `at` at `utc_offset_minutes` east of UTC. Instants chrono cannot represent
/// (hundreds of millennia away) are clamped to the epoch, so a broken clock cannot crash the till.
pub fn local_time(at: UnixMillis, utc_offset_minutes: i32) -> LocalTime {
    let utc = DateTime::from_timestamp_millis(at.0)
        .unwrap_or_default()
        .naive_utc();
    let wall = utc
        .checked_add_signed(Duration::minutes(i64::from(utc_offset_minutes)))
        .unwrap_or(utc);
    let days = (wall.date() - epoch_day()).num_days();
    let day = LocalDay(i32::try_from(days).unwrap_or(0));
    let minute = MinuteOfDay::new(
        u16::try_from(
            wall.time()
                .signed_duration_since(chrono::NaiveTime::MIN)
                .num_minutes(),
        )
        .unwrap_or(0),
    )
    .unwrap_or(MinuteOfDay::MIDNIGHT);
    LocalTime { day, minute, wall }
}

/// "2026-11-23 12:31:05".
pub fn format_wall(wall: NaiveDateTime) -> String {
    wall.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// "11-23 12:31", for journal lines.
pub fn format_short(wall: NaiveDateTime) -> String {
    wall.format("%m-%d %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_day_and_minute_follow_the_offset() {
        // 2026-11-23 16:30 UTC is 2026-11-24 00:30 in China.
        let at = UnixMillis(1_795_451_400_000);
        let utc = local_time(at, 0);
        assert_eq!(utc.minute.to_string(), "16:30");
        let china = local_time(at, 480);
        assert_eq!(china.minute.to_string(), "00:30");
        assert_eq!(china.day.0, utc.day.0 + 1);
        assert_eq!(format_wall(china.wall), "2026-11-24 00:30:00");
    }

    #[test]
    fn absurd_instants_do_not_panic() {
        let _ = local_time(UnixMillis(i64::MAX), 480);
        let _ = local_time(UnixMillis(i64::MIN), -480);
    }
}

//! [`Command`]: what the till core is asked to do, the output of the combo detector.
//!
//! The core never sees raw keys; it sees these. The text form (`Display`/`FromStr`, the variant
//! names such as `Digit(5)` or `ShowRecentAmount(Last)`) is what scenario files and logs use.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::key::{deserialize_digit, parse_single_digit};
use crate::{ParseError, RecentSlot};

/// What the till core is asked to do.
///
/// The first eight variants are plain keys passed through one to one; the rest are the results of
/// the manual's key combos (see the crate docs for the full table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    /// A digit was typed, `0..=9`.
    Digit(#[serde(deserialize_with = "deserialize_digit")] u8),
    /// The decimal point was typed.
    Dot,
    /// 删除: delete the last typed character.
    Delete,
    /// 清零: clear the entry (a lone Clear after its combo window, or Clear pressed twice).
    Clear,
    /// 回车: confirm.
    Enter,
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Function key 1.
    F1,
    /// `Clear+1` / `Clear+2` / `Clear+3`: show one of the last three sale amounts.
    ShowRecentAmount(RecentSlot),
    /// `Clear+5`: show today's total (日累).
    ShowTodayTotal,
    /// `Clear+6`: show the current meal period's total (餐累).
    ShowMealTotal,
    /// `Clear+7`: put the till into offline mode (the manual: 将 POS 机设为脱机模式).
    ToggleOffline,
    /// `Clear+8`: show the machine number and firmware version.
    ShowMachineInfo,
    /// `Clear+9`: browse the till's journal.
    BrowseJournal,
    /// `Clear+0`: show the till's clock.
    ShowClock,
    /// `Clear+Enter`: enter fixed-price mode (定额) with the current amount.
    EnterFixedPrice,
    /// `Clear+Delete`: leave fixed-price mode.
    LeaveFixedPrice,
    /// `F2+1+7`: staff sets the machine number.
    SetMachineNumber,
    /// A started combo was followed by a key that completes no combo, or a half-entered staff
    /// sequence timed out. The till shows "无效组合键" and changes nothing.
    InvalidCombo,
}

impl Command {
    /// Every valid command value (digits `0..=9`, every [`RecentSlot`]), in declaration order.
    pub const ALL: [Command; 30] = [
        Command::Digit(0),
        Command::Digit(1),
        Command::Digit(2),
        Command::Digit(3),
        Command::Digit(4),
        Command::Digit(5),
        Command::Digit(6),
        Command::Digit(7),
        Command::Digit(8),
        Command::Digit(9),
        Command::Dot,
        Command::Delete,
        Command::Clear,
        Command::Enter,
        Command::Up,
        Command::Down,
        Command::F1,
        Command::ShowRecentAmount(RecentSlot::ThirdLast),
        Command::ShowRecentAmount(RecentSlot::SecondLast),
        Command::ShowRecentAmount(RecentSlot::Last),
        Command::ShowTodayTotal,
        Command::ShowMealTotal,
        Command::ToggleOffline,
        Command::ShowMachineInfo,
        Command::BrowseJournal,
        Command::ShowClock,
        Command::EnterFixedPrice,
        Command::LeaveFixedPrice,
        Command::SetMachineNumber,
        Command::InvalidCombo,
    ];

    /// The variant name without its argument, e.g. `"Digit"` or `"ShowRecentAmount"`.
    pub const fn variant_name(self) -> &'static str {
        match self {
            Command::Digit(_) => "Digit",
            Command::Dot => "Dot",
            Command::Delete => "Delete",
            Command::Clear => "Clear",
            Command::Enter => "Enter",
            Command::Up => "Up",
            Command::Down => "Down",
            Command::F1 => "F1",
            Command::ShowRecentAmount(_) => "ShowRecentAmount",
            Command::ShowTodayTotal => "ShowTodayTotal",
            Command::ShowMealTotal => "ShowMealTotal",
            Command::ToggleOffline => "ToggleOffline",
            Command::ShowMachineInfo => "ShowMachineInfo",
            Command::BrowseJournal => "BrowseJournal",
            Command::ShowClock => "ShowClock",
            Command::EnterFixedPrice => "EnterFixedPrice",
            Command::LeaveFixedPrice => "LeaveFixedPrice",
            Command::SetMachineNumber => "SetMachineNumber",
            Command::InvalidCombo => "InvalidCombo",
        }
    }

    /// Whether this command is produced by a combo (`ShowRecentAmount` … `InvalidCombo`), as
    /// opposed to a plain key passed through (`Digit` … `F1`, and a lone `Clear`).
    pub const fn is_combo_result(self) -> bool {
        match self {
            Command::Digit(_)
            | Command::Dot
            | Command::Delete
            | Command::Clear
            | Command::Enter
            | Command::Up
            | Command::Down
            | Command::F1 => false,
            Command::ShowRecentAmount(_)
            | Command::ShowTodayTotal
            | Command::ShowMealTotal
            | Command::ToggleOffline
            | Command::ShowMachineInfo
            | Command::BrowseJournal
            | Command::ShowClock
            | Command::EnterFixedPrice
            | Command::LeaveFixedPrice
            | Command::SetMachineNumber
            | Command::InvalidCombo => true,
        }
    }
}

/// The variant name, with its argument in parentheses where it has one: `Digit(5)`,
/// `ShowRecentAmount(Last)`, `ShowTodayTotal`.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.variant_name();
        match self {
            Command::Digit(n) => write!(f, "{name}({n})"),
            Command::ShowRecentAmount(slot) => write!(f, "{name}({slot})"),
            _ => f.write_str(name),
        }
    }
}

/// What [`Command`]'s `FromStr` accepts, for error messages.
const COMMAND_SPELLINGS: &str = "a variant name as printed by Display, e.g. Digit(5), Dot, Clear, \
     ShowRecentAmount(ThirdLast), ShowTodayTotal, SetMachineNumber, InvalidCombo (case-sensitive)";

/// Parses exactly the [`Display`](fmt::Display) form (case-sensitive, no spaces).
impl FromStr for Command {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || ParseError::new("command", s, COMMAND_SPELLINGS);
        let (name, argument) = match s.split_once('(') {
            Some((name, rest)) => (name, Some(rest.strip_suffix(')').ok_or_else(error)?)),
            None => (s, None),
        };
        match (name, argument) {
            ("Digit", Some(arg)) => parse_single_digit(arg)
                .map(Command::Digit)
                .ok_or_else(error),
            ("ShowRecentAmount", Some(arg)) => arg
                .parse::<RecentSlot>()
                .map(Command::ShowRecentAmount)
                .map_err(|_| error()),
            (_, Some(_)) => Err(error()),
            (name, None) => Command::ALL
                .into_iter()
                .filter(|c| !matches!(c, Command::Digit(_) | Command::ShowRecentAmount(_)))
                .find(|c| c.variant_name() == name)
                .ok_or_else(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips_for_every_command() {
        for command in Command::ALL {
            let text = command.to_string();
            assert_eq!(text.parse::<Command>(), Ok(command), "{text}");
        }
    }

    #[test]
    fn all_lists_each_command_once() {
        for (i, a) in Command::ALL.iter().enumerate() {
            for b in Command::ALL.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn display_examples() {
        assert_eq!(Command::Digit(5).to_string(), "Digit(5)");
        assert_eq!(
            Command::ShowRecentAmount(RecentSlot::Last).to_string(),
            "ShowRecentAmount(Last)"
        );
        assert_eq!(Command::SetMachineNumber.to_string(), "SetMachineNumber");
    }

    #[test]
    fn junk_does_not_parse() {
        for bad in [
            "",
            "Digit",
            "Digit()",
            "Digit(10)",
            "Digit(5",
            "Digit(5))",
            "Digit( 5)",
            "ShowRecentAmount",
            "ShowRecentAmount(last)",
            "ShowTodayTotal(1)",
            "showtodaytotal",
            "Clear ",
            "Nope",
        ] {
            let err = bad.parse::<Command>().expect_err(bad);
            assert_eq!(err.input(), bad);
            assert_eq!(err.what(), "command");
        }
    }

    #[test]
    fn serde_round_trips_and_rejects_out_of_range_digits() {
        for command in Command::ALL {
            let bytes = postcard::to_stdvec(&command).expect("serializing to a Vec cannot fail");
            assert_eq!(postcard::from_bytes::<Command>(&bytes), Ok(command));
        }
        let bad =
            postcard::to_stdvec(&Command::Digit(200)).expect("serializing to a Vec cannot fail");
        assert!(postcard::from_bytes::<Command>(&bad).is_err());
    }
}

//! `keymap` turns the till's raw key presses into till [`Command`]s, including the manual's key
//! combos, so the firmware core never deals with keyboards, key codes or combo timing.
//!
//! It is pure: no I/O and no clock (time comes in as `now_ms`, a monotonic millisecond count).
//! The rest of these docs is `KEYS.md` from the crate's folder, included verbatim, so the tables
//! below are also what a reader of the repository sees.
//!
#![doc = include_str!("../KEYS.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

mod combo;
mod command;
mod error;
mod key;
#[cfg(test)]
mod keys_md;
mod linux;
mod pc;

pub use combo::{
    ComboDetector, ComboSpec, Commands, Pending, CLEAR_COMBO_WINDOW_MS, COMBOS,
    F2_COMBO_STEP_WINDOW_MS, MAX_COMMANDS_PER_CALL,
};
pub use command::Command;
pub use error::ParseError;
pub use key::{RecentSlot, TillKey, MAX_DIGIT};
pub use linux::{till_key_from_linux, LINUX_KEYCODES};
pub use pc::{pc_key_help, till_key_from_pc, PcBinding, PcKey, PC_KEYS};

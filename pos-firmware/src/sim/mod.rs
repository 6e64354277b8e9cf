//! The simulated hardware that lets the whole till run on a PC: simulated cards, the headless
//! script runner (feature `script`), and the terminal UI (feature `sim`). Both front ends drive
//! the till through [`crate::host::TillHost`], as the device does. None of it is in the
//! firmware that goes on a till (`--no-default-features --features device`).

pub mod cards;
pub mod payments;
pub mod script;
#[cfg(feature = "sim")]
pub mod tui;

//! The simulated hardware that lets the whole till run on a PC: simulated cards, the headless
//! script runner, and the terminal UI.

pub mod cards;
pub mod script;
pub mod tui;

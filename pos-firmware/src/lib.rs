//! The till's firmware: the pure core ([`core`]) and the drivers around it: the durable
//! [`journal`], the [`link`] server the sync daemon talks to, the [`runtime`] loop that connects
//! them, the [`host`] every front end drives that loop through, the [`settings`] file, the text
//! lines screens and records read as ([`present`]), the simulated hardware (`sim`, features
//! `script` and `sim`) that runs the whole till in a terminal, the `device` front end (feature
//! `device`) that runs it on the till's own hardware (with the real [`clock`]), and the
//! campus-card [`wallet`] on Mifare Classic over the [`reader`] trait. What each feature
//! carries: pos-firmware/Cargo.toml `[features]`.

pub mod clock;
// The core does no I/O and reads no clock: what that means is pos-firmware/clippy.toml.
#[deny(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::disallowed_macros
)]
pub mod core;
#[cfg(feature = "device")]
pub mod device;
pub mod host;
pub mod journal;
pub mod link;
pub mod present;
pub mod reader;
pub mod runtime;
pub mod settings;
#[cfg(feature = "script")]
pub mod sim;
pub mod wallet;

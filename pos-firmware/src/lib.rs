//! The till's firmware: the pure core ([`core`]) and the drivers around it: the durable
//! [`journal`], the [`link`] server the sync daemon talks to, the [`runtime`] loop that connects
//! them, the [`settings`] file, the simulated hardware ([`sim`]) that runs the whole till in a
//! terminal, the [`device`] front end that runs it on the till's own hardware (with the real
//! [`clock`]), and the campus-card [`wallet`] on Mifare Classic over the [`reader`] trait.

pub mod clock;
pub mod core;
pub mod device;
pub mod journal;
pub mod link;
pub mod reader;
pub mod runtime;
pub mod settings;
pub mod sim;
pub mod wallet;

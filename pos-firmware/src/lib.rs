//! The till's firmware: the pure core ([`core`]) and the drivers around it: the durable
//! [`journal`], the [`link`] server the sync daemon talks to, the [`runtime`] loop that connects them, the [`settings`] file, and the simulated
//! hardware ([`sim`]) that runs the whole till in a terminal.

pub mod core;
pub mod journal;
pub mod link;
pub mod reader;
pub mod runtime;
pub mod settings;
pub mod sim;

//! Domain types of the campus canteen till, shared by the firmware, the sync daemon and the tests,
//! and the only crate that knows how they are encoded for storage and the wire ([`codec`]).
//!
//! Money is [`Fen`] (integer fen, checked arithmetic, never floats). The one reconnect back-off
//! of the daemon and the till's reader is [`backoff::Backoff`] (sans-IO: it returns delays).

pub mod backoff;
pub mod campus;
pub mod codec;
pub mod ids;
pub mod link;
pub mod money;
pub mod mqtt;
pub mod pay;
pub mod paycode;
pub mod qrpay;
pub mod record;
#[cfg(feature = "test-fixtures")]
pub mod testing;

pub use ids::{CardUid, LocalDay, MachineNumber, MinuteOfDay, Seq, TerminalId, UnixMillis};
pub use money::{Fen, MoneyParseError};

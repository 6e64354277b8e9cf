//! The till's flows, one file each: a flow owns its own states (one variant of the core's
//! `Mode`), the keys it takes, the taps it takes, and the screens it shows. `core/mod.rs` routes
//! each input to the active flow; the money path every paying flow shares is `core/money.rs`.
//!
//! - `entry.rs`: amount entry, the fixed-price presets (Clear+Enter) and leaving fixed price;
//! - `sale.rs`: a sale waiting for its payer, its card debit, the duplicate reminder, the settling
//!   of interrupted sales at their card's next tap;
//! - `order.rs`: a sale paid by a scanned payment code, as an order with the campus server (intent,
//!   submit, answers, countdown, reversal, the start-up check of open orders);
//! - `offline_code.rs`: a code scanned while the campus server cannot be reached: an offline
//!   virtual-card sale within the campus's limits, or a refusal that says why;
//! - `staff.rs`: the staff PIN (with its journaled lockout), the staff menu, the machine number;
//! - `card_centre.rs`: issuing blank cards and top-ups;
//! - `browse.rs`: Clear+9, the journal browser;
//! - `messages.rs`: the message overlay over every flow, and the information combos
//!   (Clear+1 … Clear+8, Clear+0) that show one.

pub mod browse;
pub mod card_centre;
pub mod entry;
pub mod messages;
pub mod offline_code;
pub mod order;
pub mod sale;
pub mod staff;

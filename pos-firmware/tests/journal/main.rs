//! Tests of the till's durable journal (`pos_firmware::journal`) against the real sled, in
//! temporary directories: reopen round trips, the append guards, sled's exclusive lock (in this
//! process and from a child process), damaged and inconsistent directories, browsing, and a
//! property test over random record sequences with reopens.
//!
//! Some tests write sled's trees directly to build states the journal's API never produces (gaps,
//! undecodable records, unknown formats). They rely on the layout documented in the journal
//! module: trees `records` (key `Seq::to_key`) and `meta` (`format`, `terminal_id`, `snapshot`).
//!
//! In these files `unwrap`/`expect` are assertions: where one fails, the test fails.
//!
//! Files: `model.rs` (the till model that makes records), `round_trips.rs`, `lock.rs`,
//! `damaged.rs`, `browse.rs`, `flash_cost.rs`, `property.rs`, `retention.rs` (pruning, compaction,
//! the bounded check at open); reading a journal back is shared
//! with the other test binaries through `tests/common/`.

#[path = "../common/mod.rs"]
mod common;
mod model;

mod browse;
mod damaged;
mod flash_cost;
mod lock;
mod property;
mod retention;
mod round_trips;

use pos_firmware::journal::{
    Direction, Journal, JournalError, BROWSE_SCAN_LIMIT, MAX_SNAPSHOT_BYTES,
};
use proptest::prelude::*;
use shared::codec::{encode_record, encode_snapshot};
use shared::record::{
    AbortReason, CardDebitPlan, DayTally, InDoubtReason, JournalRecord, LastSale, ModeChange,
    Payer, PendingSale, RecordBody, SaleAborted, SaleCommitted, SaleInDoubt, SaleIntent,
    SalesTally, TillSnapshot, TxnTag, RECENT_AMOUNTS_LEN,
};
use shared::{CardUid, Fen, LocalDay, MachineNumber, Seq, TerminalId, UnixMillis};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use model::*;

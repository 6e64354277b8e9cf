//! Benchmark of the lost-card blacklist: the lookup the till does at every tap, with 100,000 and
//! 1,000,000 entries, against raw floors measured in the same run; and storing / loading the list
//! through the journal (the transaction that replaces it, and the open that loads and validates
//! it).
//!
//! Run: `cargo bench -p pos-firmware --bench blacklist_lookup`
//!
//! Prints, per list size:
//! 1. `Blacklist::contains` (binary search over sorted `CardUid`s) for [`LOOKUPS`] UIDs, half of
//!    them listed: ns per lookup;
//! 2. the raw floor: `binary_search` over the same UIDs as sorted `u64`s (the cheapest ordered
//!    representation), and the ratio `contains` / floor;
//! 3. for reference a `HashSet<CardUid>` lookup;
//! 4. `Journal::append_replacing_blacklist` (durable) and `Journal::open` with the list.
//!
//! Temporary directories are made under the workspace's `target/blacklist-bench/`.

use pos_firmware::journal::Journal;
use shared::campus::Blacklist;
use shared::record::{JournalRecord, RecordBody, TillSnapshot};
use shared::{CardUid, MachineNumber, Seq, UnixMillis};
use std::collections::HashSet;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Lookups timed per list size.
const LOOKUPS: usize = 1_000_000;
/// The list sizes measured.
const SIZES: [usize; 2] = [100_000, 1_000_000];

fn uid_of(n: u64) -> CardUid {
    // 7-byte UIDs, as most campus cards have.
    CardUid::new(&n.to_be_bytes()[1..]).expect("7 bytes is a valid UID length")
}

fn key_of(n: u64) -> u64 {
    n & 0x00FF_FFFF_FFFF_FFFF
}

fn ns_per(elapsed: std::time::Duration, count: usize) -> f64 {
    elapsed.as_nanos() as f64 / count as f64
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/blacklist-bench");
    std::fs::create_dir_all(&root).expect("bench directory");
    println!("blacklist_lookup bench; {LOOKUPS} lookups per size, half of them listed");
    for size in SIZES {
        // Seeded, so every run looks up the same UIDs.
        let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15 ^ size as u64);
        let listed: Vec<u64> = (0..size).map(|_| key_of(rng.u64(..))).collect();
        let list = Blacklist::new(
            1,
            UnixMillis(0),
            listed.iter().map(|&n| uid_of(n)).collect(),
        )
        .expect("within the size limit");
        let mut sorted = listed.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let set: HashSet<CardUid> = list.uids().iter().copied().collect();

        let probes: Vec<u64> = (0..LOOKUPS)
            .map(|i| {
                if i % 2 == 0 {
                    listed[rng.usize(..size)]
                } else {
                    key_of(rng.u64(..))
                }
            })
            .collect();
        let probe_uids: Vec<CardUid> = probes.iter().map(|&n| uid_of(n)).collect();

        let started = Instant::now();
        let hits = probe_uids
            .iter()
            .filter(|u| list.contains(black_box(u)))
            .count();
        let contains = ns_per(started.elapsed(), LOOKUPS);

        let started = Instant::now();
        let floor_hits = probes
            .iter()
            .filter(|k| sorted.binary_search(black_box(k)).is_ok())
            .count();
        let floor = ns_per(started.elapsed(), LOOKUPS);

        let started = Instant::now();
        let set_hits = probe_uids
            .iter()
            .filter(|u| set.contains(black_box(u)))
            .count();
        let hashed = ns_per(started.elapsed(), LOOKUPS);
        assert_eq!(hits, floor_hits, "same answers");
        assert_eq!(hits, set_hits, "same answers");

        println!(
            "{size:>9} entries: contains {contains:.1} ns, raw u64 binary search {floor:.1} ns \
             (ratio {:.2}x), HashSet {hashed:.1} ns; {hits} hits",
            contains / floor
        );

        let dir = tempfile::tempdir_in(&root).expect("temporary directory");
        let mut journal = Journal::open(dir.path()).expect("new journal");
        let mut snapshot = TillSnapshot::factory_new();
        snapshot.next_seq = Seq(2);
        snapshot.blacklist = Some(list.info());
        let record = JournalRecord {
            seq: Seq::FIRST,
            at: UnixMillis(0),
            machine: MachineNumber::FACTORY_DEFAULT,
            body: RecordBody::BlacklistReplaced(list.info()),
        };
        let started = Instant::now();
        journal
            .append_replacing_blacklist(&record, &snapshot, Arc::new(list))
            .expect("store the list");
        let store = started.elapsed();
        drop(journal);
        let started = Instant::now();
        let journal = Journal::open(dir.path()).expect("reopen");
        let open = started.elapsed();
        assert_eq!(journal.blacklist().len(), sorted.len());
        println!(
            "{size:>9} entries: durable replace {:.0} ms, open with load + validation {:.0} ms",
            store.as_secs_f64() * 1000.0,
            open.as_secs_f64() * 1000.0
        );
    }
}

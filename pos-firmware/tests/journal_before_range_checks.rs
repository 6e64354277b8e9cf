//! A till whose journal was written before the campus values were range-checked still opens
//! when its snapshot or its stored blacklist holds a value the checks now refuse: that value
//! falls back (the till's own settings; the list without the entry) and everything else the
//! journal holds is kept (issue 15, item 3). The snapshot
//! bytes are those an older till wrote: a valid snapshot's bytes with one value patched to what
//! the old decoder took and today's refuses.

use pos_firmware::core::config::TillConfig;
use pos_firmware::core::downlink::effective_config;
use pos_firmware::journal::Journal;
use shared::campus::{Blacklist, CampusConfig};
use shared::codec::{decode_blacklist, decode_snapshot, encode_blacklist, encode_snapshot};
use shared::record::TillSnapshot;
use shared::{CardUid, Fen, UnixMillis};
use std::path::Path;
use std::time::Duration;

fn campus() -> CampusConfig {
    shared::testing::campus_config(6)
}

/// Replaces the only occurrence of `from` in `bytes` with `to`.
fn patched(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at: Vec<usize> = (0..=bytes.len() - from.len())
        .filter(|&i| &bytes[i..i + from.len()] == from)
        .collect();
    assert_eq!(at.len(), 1, "{from:02X?} occurs once");
    [&bytes[..at[0]], to, &bytes[at[0] + from.len()..]].concat()
}

/// Opens sled in a journal directory, waiting out the lock of a just-dropped `Journal`.
fn raw_sled(dir: &Path) -> sled::Db {
    for _ in 0..200 {
        match sled::Config::new().path(dir).flush_every_ms(None).open() {
            Ok(db) => return db,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    panic!("sled stayed locked");
}

/// A new journal whose stored snapshot is replaced by `snapshot_bytes` and, if given, whose
/// stored blacklist is `blacklist_bytes` (one chunk; docs/journal.md names the keys).
fn journal_with(snapshot_bytes: Vec<u8>, blacklist_bytes: Option<Vec<u8>>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    drop(Journal::open(dir.path()).unwrap());
    let db = raw_sled(dir.path());
    db.open_tree("meta")
        .unwrap()
        .insert("snapshot", snapshot_bytes)
        .unwrap();
    if let Some(bytes) = blacklist_bytes {
        let tree = db.open_tree("blacklist").unwrap();
        tree.insert(b"n", &1u32.to_be_bytes()).unwrap();
        tree.insert([&b"c"[..], &0u32.to_be_bytes()].concat(), bytes)
            .unwrap();
    }
    db.flush().unwrap();
    drop(db);
    dir
}

fn journal_with_snapshot(snapshot_bytes: Vec<u8>) -> tempfile::TempDir {
    journal_with(snapshot_bytes, None)
}

#[test]
fn a_journal_whose_snapshot_holds_a_refused_campus_value_opens_without_it() {
    let snapshot = TillSnapshot {
        offline: true,
        fixed_price: Some(Fen::new(800)),
        campus: Some(campus()),
        ..TillSnapshot::factory_new()
    };
    let good = encode_snapshot(&snapshot);
    // 13:00 is minute 780 (varint 8C 06) after the name 午餐 and 11:00 (94 05); an older till
    // stored 65535 (FF FF 03), shown by Clear+6 as "00:00-1092:15".
    let name = "午餐".as_bytes();
    let meal = [&[name.len() as u8][..], name, &[0x94, 0x05, 0x8C, 0x06]].concat();
    let bad_end = [
        &[name.len() as u8][..],
        name,
        &[0x94, 0x05, 0xFF, 0xFF, 0x03],
    ]
    .concat();
    // 一食堂 is 9 bytes; an escape sequence that clears the screen in the same 9 bytes.
    let merchant = "一食堂".as_bytes();
    let escape = "\u{1b}[2J\u{1b}[H12".as_bytes();
    assert_eq!(merchant.len(), escape.len());
    for old in [
        patched(&good, &meal, &bad_end),
        patched(&good, merchant, escape),
    ] {
        assert!(decode_snapshot(&old).is_err(), "today's decoder refuses it");
        let dir = journal_with_snapshot(old);
        let journal = Journal::open(dir.path()).expect("the old journal opens");
        let opened = journal.snapshot();
        assert_eq!(opened.campus, None, "the refused configuration fell back");
        assert!(opened.offline);
        assert_eq!(opened.fixed_price, Some(Fen::new(800)));
        // The till runs on its own settings until the server's retained configuration comes.
        let effective = effective_config(&TillConfig::default(), opened.campus.as_ref());
        assert_eq!(effective, TillConfig::default());
    }
    // The unpatched bytes open with the configuration.
    let dir = journal_with_snapshot(good);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.snapshot().campus, Some(campus()));
}

#[test]
fn a_journal_whose_stored_blacklist_holds_a_refused_uid_opens_without_that_entry() {
    let lost = CardUid::new(&[1, 2, 3, 4]).unwrap();
    let other = CardUid::new(&[0xA0, 0xB0, 0xC0, 0xD0]).unwrap();
    let list = Blacklist::new(3, UnixMillis(1_800_000_000_000), vec![lost, other]).unwrap();
    let snapshot = TillSnapshot {
        blacklist: Some(list.info()),
        ..TillSnapshot::factory_new()
    };
    let good = encode_blacklist(&list);
    // The last entry's length byte: 4 → 5, as an older till took it from the campus.
    let mut old = good.clone();
    let len_at = old.len() - 11;
    assert_eq!(old[len_at], 4);
    old[len_at] = 5;
    assert!(
        decode_blacklist(&old).is_err(),
        "today's decoder refuses it"
    );

    let dir = journal_with(encode_snapshot(&snapshot), Some(old));
    let journal = Journal::open(dir.path()).expect("the old journal opens");
    let held = journal.blacklist();
    assert_eq!((held.version(), held.len()), (3, 1));
    assert!(held.contains(&lost));
    drop(journal);

    // The unpatched list opens whole; a list that differs otherwise is still corrupt.
    let dir = journal_with(encode_snapshot(&snapshot), Some(good));
    assert_eq!(Journal::open(dir.path()).unwrap().blacklist().len(), 2);
    let shorter = Blacklist::new(3, list.issued_at(), vec![lost]).unwrap();
    let dir = journal_with(encode_snapshot(&snapshot), Some(encode_blacklist(&shorter)));
    assert!(Journal::open(dir.path()).is_err());
}

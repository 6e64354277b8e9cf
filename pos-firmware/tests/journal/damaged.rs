//! Damaged directories: garbage in sled's files, a lost log tail, damaged side files, a missing or
//! foreign high-water mark, and trees written directly into states the journal never writes. Each
//! is refused with a clear error, never silently shortened.

use super::*;

/// A journal directory to damage, with what it held.
struct Original {
    dir: tempfile::TempDir,
    terminal: TerminalId,
    records: Vec<JournalRecord>,
    snapshot: TillSnapshot,
}

/// Writes `count` records; with `reopened`, in two sessions and opened once more, so that sled
/// has written its recovery snapshot file (`snap.*`) as a long-lived till's directory has.
fn original(count: usize, reopened: bool) -> Original {
    let dir = tempfile::tempdir().unwrap();
    let steps = lunch_steps(count);
    let half = if reopened { count / 2 } else { count };
    let (journal, mut till, mut records) = journal_with(dir.path(), &steps[..half]);
    let terminal = journal.terminal_id();
    drop(journal);
    if reopened {
        let mut journal = Journal::open(dir.path()).unwrap();
        for step in &steps[half..] {
            records.push(till.append(&mut journal, step));
        }
        drop(journal);
        drop(Journal::open(dir.path()).unwrap());
    }
    Original {
        dir,
        terminal,
        records,
        snapshot: till.snapshot,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// Something done to a copy of a journal directory.
type Damage = Box<dyn Fn(&Path)>;

/// How an open of a damaged directory ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Opened, and every record and the snapshot are exactly as written.
    Intact,
    /// Refused with `Corrupt`.
    Corrupt,
    /// Refused with `Io`.
    Io,
}

/// Opens the damaged copy `dir` of `original` and checks the only acceptable outcomes: all of
/// it intact, or `Corrupt`/`Io` with a message. Never fewer records, never a panic. A refused
/// directory must stay refused on the next open (sled rewrites a damaged log while recovering).
fn open_damaged(dir: &Path, original: &Original, case: &str) -> Outcome {
    let outcome = match Journal::open(dir) {
        Ok(journal) => {
            assert_eq!(journal.terminal_id(), original.terminal, "{case}");
            assert_eq!(journal.snapshot(), &original.snapshot, "{case}");
            let records: Result<Vec<_>, _> = journal.records_from(Seq::FIRST).collect();
            match records {
                Ok(records) => assert_eq!(records, original.records, "{case}"),
                Err(e) => panic!("{case}: opened, but reading records failed: {e}"),
            }
            Outcome::Intact
        }
        Err(JournalError::Corrupt { path, detail }) => {
            assert_eq!(path, dir, "{case}");
            assert!(detail.len() > 20, "{case}: unhelpful detail {detail:?}");
            Outcome::Corrupt
        }
        Err(JournalError::Io { .. }) => Outcome::Io,
        Err(other) => panic!("{case}: unexpected error {other}"),
    };
    if outcome != Outcome::Intact {
        std::thread::sleep(Duration::from_millis(20));
        if let Ok(journal) = Journal::open(dir) {
            panic!(
                "{case}: refused once, then opened with last seq {:?} (original {:?})",
                journal.last_seq(),
                original.records.last().map(|r| r.seq)
            );
        }
    }
    outcome
}

/// A deterministic byte generator for garbage (xorshift64).
struct Garbage(u64);

impl Garbage {
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0 as u8
            })
            .collect()
    }
}

/// Overwrites `<dir>/db` at `offset` with `bytes` (clipped to the file).
fn overwrite_db(dir: &Path, offset: u64, bytes: &[u8]) {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(dir.join("db"))
        .unwrap();
    let len = file.metadata().unwrap().len();
    let end = (offset + bytes.len() as u64).min(len);
    if offset < end {
        file.write_all_at(&bytes[..(end - offset) as usize], offset)
            .unwrap();
    }
}

#[test]
fn damaged_db_file_is_refused_never_silently_shortened() {
    let mut garbage = Garbage(0x9E37_79B9_7F4A_7C15);
    let mut summary: BTreeMap<(String, Outcome), usize> = BTreeMap::new();
    for reopened in [false, true] {
        let original = original(400, reopened);
        let base = original.dir.path();
        let len = fs::metadata(base.join("db")).unwrap().len();
        let label = if reopened {
            "with snap file"
        } else {
            "one session"
        };
        let mut cases: Vec<(String, Damage)> = Vec::new();
        for i in 0..12u64 {
            let offset = len * i / 12;
            let random = garbage.bytes(4096);
            cases.push((
                format!("4 KiB random at {offset}"),
                Box::new(move |d| overwrite_db(d, offset, &random)),
            ));
            cases.push((
                format!("4 KiB zeros at {offset}"),
                Box::new(move |d| overwrite_db(d, offset, &[0; 4096])),
            ));
            cases.push((
                format!("4 KiB 0xFF at {offset}"),
                Box::new(move |d| overwrite_db(d, offset, &[0xFF; 4096])),
            ));
            let flip_at = offset + 17;
            cases.push((
                format!("one bit flipped at {flip_at}"),
                Box::new(move |d| {
                    let file = fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(d.join("db"))
                        .unwrap();
                    let mut byte = [0u8];
                    if file.read_exact_at(&mut byte, flip_at).is_ok() {
                        byte[0] ^= 0x08;
                        file.write_all_at(&byte, flip_at).unwrap();
                    }
                }),
            ));
        }
        for cut in [0, 1, len / 3, len / 2, len * 9 / 10, len - 1] {
            cases.push((
                format!("truncated to {cut} of {len}"),
                Box::new(move |d| {
                    fs::OpenOptions::new()
                        .write(true)
                        .open(d.join("db"))
                        .unwrap()
                        .set_len(cut)
                        .unwrap()
                }),
            ));
        }
        for (name, damage) in cases {
            let copy = tempfile::tempdir().unwrap();
            copy_dir(base, copy.path());
            damage(copy.path());
            let outcome = open_damaged(copy.path(), &original, &format!("{label}: {name}"));
            let kind = name.split(" at ").next().unwrap_or(&name).to_string();
            let kind = kind.split(" to ").next().unwrap_or(&kind).to_string();
            *summary
                .entry((format!("{label}: {kind}"), outcome))
                .or_default() += 1;
        }
    }
    eprintln!("damaged db outcomes:");
    for ((case, outcome), count) in &summary {
        eprintln!("  {count:3} × {case}: {outcome:?}");
    }
    // The damage is real: most of these must be refused.
    let refused: usize = summary
        .iter()
        .filter(|((_, outcome), _)| *outcome != Outcome::Intact)
        .map(|(_, count)| count)
        .sum();
    assert!(refused > 40, "only {refused} damaged copies were refused");
}

#[test]
fn lost_sled_tail_is_detected_by_the_high_water_mark() {
    // sled recovers a damaged log by keeping the consistent prefix: simulate exactly that by
    // putting back sled's files from an earlier moment, keeping the journal's high-water mark.
    let dir = tempfile::tempdir().unwrap();
    let early = tempfile::tempdir().unwrap();
    let (journal, mut till, _) = journal_with(dir.path(), &lunch_steps(10));
    drop(journal);
    copy_dir(dir.path(), early.path());
    let mut journal = Journal::open(dir.path()).unwrap();
    for step in lunch_steps(10) {
        till.append(&mut journal, &step);
    }
    drop(journal);
    for entry in fs::read_dir(early.path()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "journal.hwm" && entry.path().is_file() {
            fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    match Journal::open(dir.path()) {
        Err(JournalError::Corrupt { detail, .. }) => {
            assert!(detail.contains("#11..=#20"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn damaged_sled_side_files() {
    for reopened in [false, true] {
        let original = original(60, reopened);
        let label = if reopened {
            "with snap file"
        } else {
            "one session"
        };
        let snap_files = |d: &Path| -> Vec<std::path::PathBuf> {
            fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("snap.")
                })
                .collect()
        };
        assert_eq!(!snap_files(original.dir.path()).is_empty(), reopened);
        // (case, damage, intact is acceptable)
        let cases: Vec<(&str, Damage, bool)> = vec![
            (
                // sled rewrites a missing `conf` with its defaults, which are ours.
                "conf deleted",
                Box::new(|d| fs::remove_file(d.join("conf")).unwrap()),
                true,
            ),
            (
                "conf garbage",
                Box::new(|d| {
                    fs::write(d.join("conf"), b"segment_size: lots\nuse_compression: ?\n").unwrap()
                }),
                false,
            ),
            (
                "db deleted",
                Box::new(|d| fs::remove_file(d.join("db")).unwrap()),
                false,
            ),
            (
                "db emptied",
                Box::new(|d| fs::write(d.join("db"), b"").unwrap()),
                false,
            ),
            (
                // A missing recovery snapshot only makes sled scan its whole log.
                "snap files deleted",
                Box::new(move |d| {
                    for path in snap_files(d) {
                        fs::remove_file(path).unwrap();
                    }
                }),
                true,
            ),
            (
                "snap files garbage",
                Box::new(move |d| {
                    for path in snap_files(d) {
                        fs::write(path, [0x33u8; 100]).unwrap();
                    }
                }),
                // Without snap files there is nothing to damage.
                !reopened,
            ),
        ];
        for (name, damage, intact_ok) in cases {
            let copy = tempfile::tempdir().unwrap();
            copy_dir(original.dir.path(), copy.path());
            damage(copy.path());
            let case = format!("{label}: {name}");
            let outcome = open_damaged(copy.path(), &original, &case);
            eprintln!("{case}: {outcome:?}");
            assert!(intact_ok || outcome != Outcome::Intact, "{case} opened");
        }
    }
}

#[test]
fn high_water_mark_damaged_foreign_or_missing() {
    let original = original(8, false);
    let hwm = |d: &Path| d.join("journal.hwm");

    // Missing: recreated from the verified journal (only deleting it by hand does that).
    let copy = tempfile::tempdir().unwrap();
    copy_dir(original.dir.path(), copy.path());
    fs::remove_file(hwm(copy.path())).unwrap();
    assert_eq!(
        open_damaged(copy.path(), &original, "hwm deleted"),
        Outcome::Intact
    );
    assert!(hwm(copy.path()).exists());

    // Damaged: refused, with a way out in the message.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(original.dir.path(), copy.path());
    let mut bytes = fs::read(hwm(copy.path())).unwrap();
    bytes[20] ^= 0x01;
    fs::write(hwm(copy.path()), &bytes).unwrap();
    match Journal::open(copy.path()) {
        Err(JournalError::Corrupt { detail, .. }) => {
            assert!(detail.contains("journal.hwm is damaged"), "{detail}");
            assert!(detail.contains("checksum"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }

    // Another journal's mark: refused.
    let other = original_dir_mark_of_other_terminal();
    let copy = tempfile::tempdir().unwrap();
    copy_dir(original.dir.path(), copy.path());
    fs::write(hwm(copy.path()), other).unwrap();
    match Journal::open(copy.path()) {
        Err(JournalError::Corrupt { detail, .. }) => {
            assert!(detail.contains("belongs to terminal"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// The high-water mark file of a fresh journal of some other terminal.
fn original_dir_mark_of_other_terminal() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    drop(Journal::open(dir.path()).unwrap());
    fs::read(dir.path().join("journal.hwm")).unwrap()
}

#[test]
fn inconsistent_trees_are_refused_with_the_seq() {
    let dir = tampered(10, |records, _| {
        records.remove(Seq(4).to_key()).unwrap();
    });
    expect_corrupt(
        dir.path(),
        "seq gap: after 3 contiguous records from #1 expected #4, found #5",
    );

    let dir = tampered(10, |records, _| {
        records
            .insert(Seq(6).to_key(), &[0x00, 0x06, 0xFF][..])
            .unwrap();
    });
    expect_corrupt(dir.path(), "record #6 does not decode");

    let dir = tampered(10, |records, _| {
        let mut moved = records
            .get(Seq(7).to_key())
            .unwrap()
            .map(|bytes| shared::codec::decode_record(&bytes).unwrap())
            .unwrap();
        moved.seq = Seq(70);
        records
            .insert(Seq(7).to_key(), encode_record(&moved))
            .unwrap();
    });
    expect_corrupt(dir.path(), "the record stored under #7 says it is #70");

    let dir = tampered(10, |records, _| {
        records.insert([1u8, 2, 3], &[0u8][..]).unwrap();
    });
    expect_corrupt(dir.path(), "a record key is 3 bytes");

    // The snapshot disagrees with the records: ahead (records lost) and behind.
    let dir = tampered(10, |records, _| {
        records.remove(Seq(10).to_key()).unwrap();
    });
    expect_corrupt(
        dir.path(),
        "the snapshot's next seq is #11 but the last record is #9",
    );
    // Behind by two records (one is a cut append, undone on open: see
    // `an_append_cut_between_its_record_and_its_snapshot_is_undone_on_open`).
    let dir = tampered(10, |records, _| {
        for seq in [Seq(11), Seq(12)] {
            let record = JournalRecord {
                seq,
                at: UnixMillis(0),
                machine: MachineNumber::FACTORY_DEFAULT,
                body: RecordBody::ModeChanged(ModeChange::OfflineOn),
            };
            records
                .insert(seq.to_key(), encode_record(&record))
                .unwrap();
        }
    });
    expect_corrupt(
        dir.path(),
        "the snapshot's next seq is #11 but the last record is #12",
    );

    // Meta damaged.
    let dir = tampered(10, |_, meta| {
        meta.remove("snapshot").unwrap();
    });
    expect_corrupt(dir.path(), "no snapshot");
    let dir = tampered(10, |_, meta| {
        meta.insert("snapshot", &[0x07u8, 0x01][..]).unwrap();
    });
    expect_corrupt(dir.path(), "the snapshot does not decode");
    let dir = tampered(10, |_, meta| {
        meta.insert("terminal_id", &0u64.to_be_bytes()[..]).unwrap();
    });
    expect_corrupt(dir.path(), "terminal id is zero");
    let dir = tampered(10, |_, meta| {
        meta.clear().unwrap();
    });
    expect_corrupt(
        dir.path(),
        "records are present (first: #1) but the meta tree has no format",
    );
    let dir = tampered(0, |_, meta| {
        meta.clear().unwrap();
    });
    expect_corrupt(dir.path(), "sled's database is empty, but journal.hwm says");

    // A journal written by a newer firmware.
    let dir = tampered(2, |_, meta| {
        meta.insert("format", &2u32.to_be_bytes()[..]).unwrap();
    });
    match Journal::open(dir.path()) {
        Err(JournalError::UnsupportedFormat {
            found, supported, ..
        }) => assert_eq!((found, supported), (2, 1)),
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
}

#[test]
fn snapshot_written_directly_matches_what_append_writes() {
    // Guards the layout the tampering tests rely on: the journal stores exactly the codec's bytes.
    let dir = tempfile::tempdir().unwrap();
    let (journal, till, records) = journal_with(dir.path(), &lunch_steps(3));
    drop(journal);
    let db = raw_sled(dir.path());
    let meta = db.open_tree("meta").unwrap();
    let stored = db.open_tree("records").unwrap();
    assert_eq!(
        meta.get("snapshot").unwrap().as_deref(),
        Some(&encode_snapshot(&till.snapshot)[..])
    );
    for record in &records {
        assert_eq!(
            stored.get(record.seq.to_key()).unwrap().as_deref(),
            Some(&encode_record(record)[..])
        );
    }
}

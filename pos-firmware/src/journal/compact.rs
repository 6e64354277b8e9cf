//! Giving the space of pruned records back: sled 0.34 keeps its `db` file at its high-water size
//! after keys are removed (it reuses freed segments, it does not shrink the file; see
//! BENCHMARKS.md for the figures), so [`Journal::compact`] copies what the journal keeps into a
//! fresh sled database and swaps sled's files.
//!
//! # Steps, and what a crash at each leaves
//! 1. Copy every tree (records from the first kept one) into `<dir>/compact.new/`, flush it,
//!    fsync its files and both directories. A crash: `compact.new/` is incomplete and there is
//!    no marker; the next open deletes it and opens the old journal, untouched.
//! 2. Write the marker `<dir>/compact.swap` durably (temp file, fsync, rename, directory fsync),
//!    listing the new database's file names. From here the new database is complete and wins.
//! 3. Move the old sled files (`conf`, `db`, `snap.*`, `blobs`) into `<dir>/compact.old/` and
//!    the new ones into `<dir>`, one `rename` each, then fsync `<dir>`. A crash: the next open
//!    sees the marker and finishes the moves (every step is idempotent: a name still in
//!    `compact.new/` has not moved yet, and whatever stands in its place in `<dir>` is old).
//! 4. Remove the marker (fsync `<dir>`), then `compact.old/` and `compact.new/`. A crash: no
//!    marker, `<dir>` holds the new database complete; the next open deletes the leftovers.
//!
//! `journal.hwm`, `till.toml` and the other files of the data directory stay where they are (the
//! new database ends at the same seq, for the same terminal). Compaction runs inside the till's
//! process, at start-up, before the link server gets a reader: one owner, nothing else opens sled.

use super::{
    corrupt, guard_panic, io_error, sled_error, sync_dir, Journal, JournalError,
    COMPACTED_THROUGH_KEY, META_TREE, RECORDS_TREE, SLED_CACHE_CAPACITY_BYTES,
};
use shared::Seq;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Compact when at least this many records were pruned since the last compaction (about
/// 7 MB of sled's file at ≈ 350 bytes per record as stored; less is not worth the copy).
pub const COMPACT_AFTER_PRUNED_RECORDS: u64 = 20_000;

/// The directory the fresh database is built in.
const NEW_DIR: &str = "compact.new";
/// The directory the old sled files are moved to during the swap.
const OLD_DIR: &str = "compact.old";
/// The marker: the new database is complete, the swap is in progress.
const MARKER: &str = "compact.swap";
/// The marker's temporary name before it is renamed into place.
const MARKER_TEMP: &str = "compact.swap.tmp";
/// Keys copied per sled batch.
const COPY_CHUNK: usize = 10_000;
/// The longest marker accepted (a handful of file names).
const MAX_MARKER_BYTES: u64 = 4_096;

/// Whether `name` is one of sled 0.34's files in a database directory.
fn is_sled_file(name: &str) -> bool {
    matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap.")
}

/// Counts the steps of a compaction and says when a test's simulated crash stops it.
struct Steps {
    done: usize,
    stop_after: Option<usize>,
}

impl Steps {
    /// One step is done; `true` when the compaction must stop here (as if the power went).
    fn stop(&mut self) -> bool {
        self.done += 1;
        self.stop_after.is_some_and(|n| self.done >= n)
    }
}

impl Journal {
    /// Whether enough was pruned since the last compaction ([`COMPACT_AFTER_PRUNED_RECORDS`]).
    pub fn compaction_due(&self) -> bool {
        self.pruned_through.saturating_sub(self.compacted_through) >= COMPACT_AFTER_PRUNED_RECORDS
    }

    /// Copies what the journal keeps into a fresh sled database and swaps it in (see the module
    /// documentation), then reopens it. Every [`super::JournalReader`] must be dropped first.
    /// Takes time in proportion to what is kept, not to what was ever written.
    pub fn compact(self) -> Result<Journal, JournalError> {
        let dir = self.dir.clone();
        match self.compact_inner(None)? {
            Some(journal) => Ok(journal),
            None => Journal::open(&dir),
        }
    }

    /// For the crash tests: runs [`Journal::compact`] but stops, as a power cut would, after
    /// `steps` steps (`Ok(None)`; the journal is dropped), or completes (`Ok(Some(journal))`).
    #[doc(hidden)]
    pub fn compact_stopping_after(self, steps: usize) -> Result<Option<Journal>, JournalError> {
        self.compact_inner(Some(steps))
    }

    fn compact_inner(self, stop_after: Option<usize>) -> Result<Option<Journal>, JournalError> {
        self.check_poison()?;
        let dir = self.dir.clone();
        let mut steps = Steps {
            done: 0,
            stop_after,
        };
        let new_dir = dir.join(NEW_DIR);
        remove_dir_if_present(&new_dir)?;
        remove_dir_if_present(&dir.join(OLD_DIR))?;
        let pruned = self.pruned_through;
        guard_panic(&dir, "copying the journal", || {
            self.copy_into(&new_dir, pruned)
        })??;
        drop(self);
        if steps.stop() {
            return Ok(None);
        }
        let mut names = Vec::new();
        for entry in fs::read_dir(&new_dir).map_err(|source| io_error(&new_dir, source))? {
            let entry = entry.map_err(|source| io_error(&new_dir, source))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_sled_file(&name) {
                continue; // not sled's (none expected); never moved
            }
            let path = entry.path();
            if path.is_dir() {
                sync_dir(&path)?;
            } else {
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(|source| io_error(&path, source))?;
            }
            names.push(name);
        }
        sync_dir(&new_dir)?;
        sync_dir(&dir)?;
        if steps.stop() {
            return Ok(None);
        }
        write_marker(&dir, &names)?;
        if steps.stop() {
            return Ok(None);
        }
        if !swap(&dir, &names, &mut steps)? {
            return Ok(None);
        }
        tracing::info!(dir = %dir.display(), pruned_through = pruned, "journal compacted");
        Journal::open(&dir).map(Some)
    }

    /// Copies every tree into a new sled database in `new_dir` (records after `pruned`), with
    /// `compacted_through = pruned`, and flushes it. The new database is closed on return.
    fn copy_into(&self, new_dir: &Path, pruned: u64) -> Result<(), JournalError> {
        let to_new = |e| sled_error(new_dir, "building the compacted journal", e);
        let from_old = |e| sled_error(&self.dir, "copying the journal", e);
        let new = sled::Config::new()
            .path(new_dir)
            .cache_capacity(SLED_CACHE_CAPACITY_BYTES)
            .mode(sled::Mode::LowSpace)
            .flush_every_ms(None)
            .open()
            .map_err(to_new)?;
        for name in self.db.tree_names() {
            let old = self.db.open_tree(&name).map_err(from_old)?;
            let tree = new.open_tree(&name).map_err(to_new)?;
            let iter = if name == RECORDS_TREE.as_bytes() {
                old.range(Seq(pruned.saturating_add(1)).to_key()..)
            } else {
                old.iter()
            };
            let mut batch = sled::Batch::default();
            let mut in_batch = 0;
            for item in iter {
                let (key, value) = item.map_err(from_old)?;
                batch.insert(key, value);
                in_batch += 1;
                if in_batch == COPY_CHUNK {
                    tree.apply_batch(std::mem::take(&mut batch))
                        .map_err(to_new)?;
                    in_batch = 0;
                }
            }
            tree.apply_batch(batch).map_err(to_new)?;
        }
        new.open_tree(META_TREE)
            .and_then(|meta| meta.insert(COMPACTED_THROUGH_KEY, &pruned.to_be_bytes()))
            .map_err(to_new)?;
        new.flush().map_err(to_new)?;
        Ok(())
    }
}

/// Writes the marker durably: the new database's file names, one per line.
fn write_marker(dir: &Path, names: &[String]) -> Result<(), JournalError> {
    let temp = dir.join(MARKER_TEMP);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(|source| io_error(&temp, source))?;
    file.write_all(names.join("\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| io_error(&temp, source))?;
    fs::rename(&temp, dir.join(MARKER)).map_err(|source| io_error(&temp, source))?;
    sync_dir(dir)
}

/// Moves the old sled files out and the new ones in, then removes the marker and the leftovers.
/// Idempotent: the same moves finish a swap a crash cut. `Ok(false)`: stopped by a test's cut.
fn swap(dir: &Path, names: &[String], steps: &mut Steps) -> Result<bool, JournalError> {
    let new_dir = dir.join(NEW_DIR);
    let old_dir = dir.join(OLD_DIR);
    if !old_dir.exists() {
        fs::create_dir(&old_dir).map_err(|source| io_error(&old_dir, source))?;
    }
    // Old sled files the new database has no file of that name for (its `snap.*`).
    for entry in fs::read_dir(dir).map_err(|source| io_error(dir, source))? {
        let entry = entry.map_err(|source| io_error(dir, source))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_sled_file(&name) && !names.contains(&name) {
            move_entry(&entry.path(), &old_dir.join(&name))?;
            if steps.stop() {
                return Ok(false);
            }
        }
    }
    for name in names {
        let new = new_dir.join(name);
        if !new.exists() {
            continue; // moved in before
        }
        let current = dir.join(name);
        if current.exists() {
            move_entry(&current, &old_dir.join(name))?;
            if steps.stop() {
                return Ok(false);
            }
        }
        move_entry(&new, &current)?;
        if steps.stop() {
            return Ok(false);
        }
    }
    sync_dir(dir)?;
    let marker = dir.join(MARKER);
    fs::remove_file(&marker).map_err(|source| io_error(&marker, source))?;
    sync_dir(dir)?;
    if steps.stop() {
        return Ok(false);
    }
    remove_dir_if_present(&old_dir)?;
    remove_dir_if_present(&new_dir)?;
    Ok(true)
}

/// Finishes or discards a compaction a crash cut (see the module documentation); nothing to do
/// in a directory without one. Called by [`Journal::open`] before sled opens.
pub(super) fn recover(dir: &Path) -> Result<(), JournalError> {
    let marker = dir.join(MARKER);
    match fs::metadata(&marker) {
        Ok(meta) if meta.len() > MAX_MARKER_BYTES => Err(corrupt(
            dir,
            format!("{MARKER} is {} bytes: not a compaction marker", meta.len()),
        )),
        Ok(_) => {
            let text = fs::read_to_string(&marker).map_err(|source| io_error(&marker, source))?;
            let names: Vec<String> = text.lines().map(str::to_string).collect();
            if names.is_empty() || !names.iter().all(|n| is_sled_file(n)) {
                return Err(corrupt(
                    dir,
                    format!("{MARKER} does not list sled's files: {text:?}"),
                ));
            }
            tracing::warn!(
                dir = %dir.display(),
                "a compaction of the journal was cut after its copy was complete; finishing it"
            );
            swap(
                dir,
                &names,
                &mut Steps {
                    done: 0,
                    stop_after: None,
                },
            )
            .map(drop)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            for leftover in [NEW_DIR, OLD_DIR] {
                let path = dir.join(leftover);
                if path.exists() {
                    tracing::warn!(
                        dir = %dir.display(),
                        "removing {leftover}/, left by a compaction a crash cut (the journal in \
                         use is complete)"
                    );
                    remove_dir_if_present(&path)?;
                }
            }
            let _ = fs::remove_file(dir.join(MARKER_TEMP));
            Ok(())
        }
        Err(source) => Err(io_error(&marker, source)),
    }
}

fn move_entry(from: &Path, to: &PathBuf) -> Result<(), JournalError> {
    fs::rename(from, to).map_err(|source| io_error(from, source))
}

fn remove_dir_if_present(path: &Path) -> Result<(), JournalError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io_error(path, source)),
    }
}

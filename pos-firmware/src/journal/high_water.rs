//! The journal's high-water mark: a 32-byte file next to sled's files that records the terminal id
//! and the last seq that was *durable* in sled, so that an open can tell "sled lost records" from
//! "there never were records".
//!
//! Why it exists: when sled 0.34 recovers a log with a damaged region it does not fail; it keeps
//! the consistent prefix before the damage and zeroes everything after it. Because the till writes
//! its snapshot with each record (right after it, in the same log write), the shortened journal is
//! internally consistent, and a check made only inside sled cannot see the loss. This file lives outside
//! sled's log, so its claim survives sled's recovery.
//!
//! It is updated after every durable append with one in-place `pwrite` and *no* fsync: it is only
//! ever written after sled's data is on stable storage, so whatever version of it survives a crash
//! is never ahead of sled, only possibly behind. A stale mark weakens detection a little; it never
//! raises a false alarm. The file is created durably (temp file, fsync, rename, directory fsync).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The file name of the high-water mark inside the journal directory.
pub(crate) const FILE_NAME: &str = "journal.hwm";
/// The temporary name the mark is written under before it is renamed into place.
const TEMP_FILE_NAME: &str = "journal.hwm.tmp";
/// First bytes of the file; the last byte is the layout version.
const MAGIC: [u8; 8] = *b"POSJHWM\x01";
/// Size of the file: magic, terminal id, last durable seq, checksum (8 bytes each).
const FILE_LEN_BYTES: usize = 32;

/// What the high-water mark file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    /// The terminal id of the journal the mark belongs to.
    pub terminal: u64,
    /// The last seq known durable in sled; 0 when no record had been written.
    pub last_seq: u64,
}

/// Why the mark file could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(io::Error),
    /// The file exists but is not a valid mark; the text says what is wrong.
    Invalid(String),
}

/// The path of the mark file in journal directory `dir`.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// FNV-1a (64 bit): enough to tell a valid mark from garbage or a torn write; not a MAC.
fn checksum(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

fn encode(mark: Mark) -> [u8; FILE_LEN_BYTES] {
    let mut bytes = [0u8; FILE_LEN_BYTES];
    bytes[0..8].copy_from_slice(&MAGIC);
    bytes[8..16].copy_from_slice(&mark.terminal.to_le_bytes());
    bytes[16..24].copy_from_slice(&mark.last_seq.to_le_bytes());
    let check = checksum(&bytes[0..24]);
    bytes[24..32].copy_from_slice(&check.to_le_bytes());
    bytes
}

fn u64_at(bytes: &[u8; FILE_LEN_BYTES], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn decode(bytes: &[u8]) -> Result<Mark, String> {
    let bytes: &[u8; FILE_LEN_BYTES] = bytes
        .try_into()
        .map_err(|_| format!("{} bytes long, expected {FILE_LEN_BYTES}", bytes.len()))?;
    if bytes[0..8] != MAGIC {
        return Err(format!("unknown magic {:02x?}", &bytes[0..8]));
    }
    let stored = u64_at(bytes, 24);
    let computed = checksum(&bytes[0..24]);
    if stored != computed {
        return Err(format!(
            "checksum mismatch (stored {stored:016x}, computed {computed:016x})"
        ));
    }
    Ok(Mark {
        terminal: u64_at(bytes, 8),
        last_seq: u64_at(bytes, 16),
    })
}

/// Reads the mark in `dir`; `Ok(None)` if there is no mark file.
pub(crate) fn read(dir: &Path) -> Result<Option<Mark>, ReadError> {
    let mut file = match File::open(path(dir)) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ReadError::Io(e)),
    };
    // Read at most one byte more than a valid mark, so a huge garbage file is not loaded.
    let mut bytes = Vec::with_capacity(FILE_LEN_BYTES + 1);
    (&mut file)
        .take(FILE_LEN_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    decode(&bytes).map(Some).map_err(ReadError::Invalid)
}

/// Creates (or replaces) the mark durably: temp file, fsync, rename, fsync of `dir`. Returns the
/// file opened for the in-place updates of [`update`].
pub(crate) fn create(dir: &Path, mark: Mark) -> io::Result<File> {
    let temp = dir.join(TEMP_FILE_NAME);
    {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        file.write_all_at(&encode(mark), 0)?;
        file.sync_all()?;
    }
    fs::rename(&temp, path(dir))?;
    File::open(dir)?.sync_all()?;
    open_for_update(dir)
}

/// Opens the existing mark file for [`update`].
pub(crate) fn open_for_update(dir: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).open(path(dir))
}

/// Overwrites the mark in place, without fsync (see the module documentation for why that is
/// enough). One 32-byte write at offset 0 lies in one disk sector, so it is not torn in practice;
/// if it were, the checksum would say so.
pub(crate) fn update(file: &File, mark: Mark) -> io::Result<()> {
    file.write_all_at(&encode(mark), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_garbage_is_rejected() {
        let mark = Mark {
            terminal: 0x0123_4567_89ab_cdef,
            last_seq: 42,
        };
        let bytes = encode(mark);
        assert_eq!(decode(&bytes), Ok(mark));
        for at in 0..FILE_LEN_BYTES {
            let mut damaged = bytes;
            damaged[at] ^= 0x10;
            assert!(decode(&damaged).is_err(), "flip at byte {at} accepted");
        }
        assert!(decode(&bytes[..31]).is_err());
        assert!(decode(&[0u8; FILE_LEN_BYTES]).is_err());
    }
}

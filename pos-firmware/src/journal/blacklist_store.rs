//! The lost-card blacklist stored beside the journal, in the sled tree `blacklist`.
//!
//! The list arrives whole (up to 1,000,000 entries, about 12 MB encoded) and is replaced whole, in
//! the same sled transaction as its `BlacklistReplaced` record and the snapshot that names its
//! version (see `Journal::append_replacing_blacklist`). It is stored as the bytes of
//! `shared::codec::encode_blacklist`, cut into chunks of [`BLACKLIST_CHUNK_BYTES`]: a sled value
//! (more precisely a leaf page holding up to 17 of them) larger than the blob threshold (segment
//! size / 4 = 128 KiB) goes to a separate `blobs/` file that sled never fsyncs.
//!
//! Keys: `n` → number of chunks (4 bytes big-endian); `c` + chunk index (4 bytes big-endian) →
//! chunk bytes. An open reads them back, decodes (which checks UIDs, order, size and version) and
//! checks the list against the snapshot's `BlacklistInfo`. Entries with a UID refused today but
//! stored before UIDs were checked are dropped with an ALARM line, not a corrupt journal.

use shared::campus::{Blacklist, BlacklistInfo};
use shared::codec::{decode_stored_blacklist, encode_blacklist};
use sled::IVec;
use std::path::Path;

use super::{corrupt, sled_error, JournalError};

/// The sled tree of the blacklist.
pub(super) const BLACKLIST_TREE: &str = "blacklist";
/// Bytes per stored chunk: a sled leaf holds up to 17 entries before it splits, and 17 × 4 KiB
/// stays well below sled's 128 KiB blob threshold.
pub const BLACKLIST_CHUNK_BYTES: usize = 4 * 1024;
const COUNT_KEY: &[u8] = b"n";
const CHUNK_KEY_PREFIX: u8 = b'c';

fn chunk_key(index: u32) -> [u8; 5] {
    let mut key = [CHUNK_KEY_PREFIX; 5];
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The list cut into the chunks to store.
pub(super) struct Chunks {
    pub(super) chunks: Vec<IVec>,
}

impl Chunks {
    pub(super) fn of(list: &Blacklist) -> Chunks {
        Chunks {
            chunks: encode_blacklist(list)
                .chunks(BLACKLIST_CHUNK_BYTES)
                .map(IVec::from)
                .collect(),
        }
    }
}

/// Inside an append transaction: replaces whatever list is stored by `chunks`.
pub(super) fn replace_in(
    tree: &sled::transaction::TransactionalTree,
    chunks: &Chunks,
) -> Result<(), sled::transaction::UnabortableTransactionError> {
    let old = match tree.get(COUNT_KEY)? {
        Some(bytes) => <[u8; 4]>::try_from(bytes.as_ref()).map_or(0, u32::from_be_bytes),
        None => 0,
    };
    let new = u32::try_from(chunks.chunks.len()).unwrap_or(u32::MAX);
    for index in new..old {
        tree.remove(&chunk_key(index))?;
    }
    for (index, chunk) in (0..new).zip(&chunks.chunks) {
        tree.insert(&chunk_key(index), chunk.clone())?;
    }
    tree.insert(COUNT_KEY, &new.to_be_bytes())?;
    Ok(())
}

/// Loads the list the snapshot names (`None`: the till never got one: the empty list).
pub(super) fn load(
    dir: &Path,
    tree: &sled::Tree,
    info: Option<BlacklistInfo>,
) -> Result<Blacklist, JournalError> {
    let Some(info) = info else {
        return Ok(Blacklist::empty());
    };
    let count = tree
        .get(COUNT_KEY)
        .map_err(|e| sled_error(dir, "reading the blacklist", e))?
        .ok_or_else(|| {
            corrupt(
                dir,
                format!(
                    "the snapshot names blacklist version {} but none is stored",
                    info.version
                ),
            )
        })?;
    let count = <[u8; 4]>::try_from(count.as_ref())
        .map(u32::from_be_bytes)
        .map_err(|_| corrupt(dir, "the blacklist's chunk count is malformed".to_string()))?;
    let mut bytes = Vec::new();
    for index in 0..count {
        let chunk = tree
            .get(chunk_key(index))
            .map_err(|e| sled_error(dir, "reading the blacklist", e))?
            .ok_or_else(|| corrupt(dir, format!("blacklist chunk {index} is missing")))?;
        bytes.extend_from_slice(&chunk);
    }
    let (list, dropped) = decode_stored_blacklist(&bytes)
        .map_err(|e| corrupt(dir, format!("the stored blacklist does not decode: {e}")))?;
    // Entries stored before UIDs were checked and refused now were dropped: the count the
    // snapshot names is then larger by as many.
    let expected_entries = usize::try_from(info.entries).unwrap_or(usize::MAX);
    let same_list = list.version() == info.version && list.issued_at() == info.issued_at;
    if same_list && !dropped.is_empty() && list.len() + dropped.len() == expected_entries {
        tracing::error!(
            dir = %dir.display(),
            version = info.version,
            dropped = dropped.len(),
            "ALARM the stored blacklist holds entries today's checks refuse; opened without \
             them (the first: {})",
            dropped[0]
        );
    } else if list.info() != info {
        return Err(corrupt(
            dir,
            format!(
                "the stored blacklist is {:?} but the snapshot names {info:?}",
                list.info()
            ),
        ));
    }
    Ok(list)
}

//! The card-centre master key and everything derived from it: each card's sector keys (key A,
//! key B) and its MAC key, and the 32-bit MACs that protect the wallet blocks. Mifare Classic's
//! Crypto1 is broken, so the sector keys only keep casual readers out; the MAC (with a key the
//! card never holds) is what stops forged balances. Pure: no I/O, no clock.
//!
//! Derivation (documented in `docs/card-layout.md`):
//! `HMAC-SHA256(master, label ‖ 0x00 ‖ uid_len ‖ uid)`, with the labels below; key A / key B
//! are the first 6 bytes, the MAC key is all 32.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use shared::CardUid;
use std::fmt;

use crate::reader::SectorKey;

type HmacSha256 = Hmac<Sha256>;

/// Length of the master key, in bytes.
pub const MASTER_KEY_LEN_BYTES: usize = 32;
/// Length of a per-card MAC key, in bytes (the whole HMAC-SHA256 output).
pub const MAC_KEY_LEN_BYTES: usize = 32;
/// Length of the MAC stored on the card, in bytes (HMAC-SHA256 truncated).
pub const MAC_LEN_BYTES: usize = 4;
/// SHA-256's block size, in bytes: HMAC zero-pads shorter keys to this length.
const SHA256_BLOCK_LEN_BYTES: usize = 64;

/// Domain-separation label of key A (the key the till authenticates the wallet sector with).
pub const LABEL_KEY_A: &[u8] = b"pos/v1/key-a";
/// Domain-separation label of key B (card-centre key: the only key that may rewrite the trailer).
pub const LABEL_KEY_B: &[u8] = b"pos/v1/key-b";
/// Domain-separation label of the per-card MAC key.
pub const LABEL_MAC_KEY: &[u8] = b"pos/v1/mac";

/// The factory (transport) key of a blank Mifare Classic card.
pub const TRANSPORT_KEY: SectorKey = [0xFF; 6];

/// The fixed key of the simulator and the tests. **Demo only: never put this on a till that
/// takes real money** (anyone can read it here).
pub const DEMO_MASTER_KEY: &[u8; MASTER_KEY_LEN_BYTES] = b"demo-only-master-key-not-secret.";

/// Why a master key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the master key must be {expected} hex digits, found {found}")]
    WrongLength { expected: usize, found: usize },
    #[error("the master key contains a character that is not a hex digit")]
    NotHex,
    #[error("the master key is all zero bytes or all 0xFF bytes: not a real key")]
    Trivial,
}

/// The card-centre master key. `Debug` never prints it; it is wiped (best effort) when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; MASTER_KEY_LEN_BYTES]);

impl MasterKey {
    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN_BYTES]) -> Result<MasterKey, MasterKeyError> {
        if bytes.iter().all(|b| *b == 0) || bytes.iter().all(|b| *b == 0xFF) {
            return Err(MasterKeyError::Trivial);
        }
        Ok(MasterKey(bytes))
    }

    /// Parses 64 hex digits; surrounding whitespace (a trailing newline in the key file) is
    /// ignored.
    pub fn from_hex(text: &str) -> Result<MasterKey, MasterKeyError> {
        let text = text.trim();
        if text.len() != 2 * MASTER_KEY_LEN_BYTES {
            return Err(MasterKeyError::WrongLength {
                expected: 2 * MASTER_KEY_LEN_BYTES,
                found: text.len(),
            });
        }
        let mut bytes = [0u8; MASTER_KEY_LEN_BYTES];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| MasterKeyError::NotHex)?;
        MasterKey::from_bytes(bytes)
    }

    /// The simulator's fixed key ([`DEMO_MASTER_KEY`]). Demo only.
    pub fn demo() -> MasterKey {
        MasterKey(*DEMO_MASTER_KEY)
    }

    /// This card's keys.
    pub fn card_keys(&self, uid: &CardUid) -> CardKeys {
        let key_a = self.derive(LABEL_KEY_A, uid);
        let key_b = self.derive(LABEL_KEY_B, uid);
        let mut a = [0u8; 6];
        a.copy_from_slice(&key_a[..6]);
        let mut b = [0u8; 6];
        b.copy_from_slice(&key_b[..6]);
        CardKeys {
            key_a: a,
            key_b: b,
            mac: MacKey(self.derive(LABEL_MAC_KEY, uid)),
        }
    }

    fn derive(&self, label: &[u8], uid: &CardUid) -> [u8; MAC_KEY_LEN_BYTES] {
        let mut mac = hmac_with_key(&self.0);
        mac.update(label);
        mac.update(&[0x00, uid_len_byte(uid)]);
        mac.update(uid.as_bytes());
        let mut out = [0u8; MAC_KEY_LEN_BYTES];
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        for byte in self.0.iter_mut() {
            // SAFETY: `byte` is a valid, aligned, exclusive reference to a u8 we own.
            unsafe { std::ptr::write_volatile(byte, 0) };
        }
    }
}

/// The key material of one card.
#[derive(Clone, PartialEq, Eq)]
pub struct CardKeys {
    pub key_a: SectorKey,
    pub key_b: SectorKey,
    pub mac: MacKey,
}

impl fmt::Debug for CardKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardKeys(<redacted>)")
    }
}

/// A card's MAC key.
#[derive(Clone, PartialEq, Eq)]
pub struct MacKey([u8; MAC_KEY_LEN_BYTES]);

impl MacKey {
    /// HMAC-SHA256 over the concatenated `parts`, truncated to [`MAC_LEN_BYTES`].
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; MAC_LEN_BYTES] {
        let mut mac = hmac_with_key(&self.0);
        for part in parts {
            mac.update(part);
        }
        let mut out = [0u8; MAC_LEN_BYTES];
        out.copy_from_slice(&mac.finalize().into_bytes()[..MAC_LEN_BYTES]);
        out
    }

    /// Checks a stored MAC in constant time.
    pub fn verify(&self, parts: &[&[u8]], stored: &[u8; MAC_LEN_BYTES]) -> bool {
        let mut mac = hmac_with_key(&self.0);
        for part in parts {
            mac.update(part);
        }
        mac.verify_truncated_left(stored).is_ok()
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(<redacted>)")
    }
}

/// The UID length as one byte (4, 7 or 10: always fits).
pub(crate) fn uid_len_byte(uid: &CardUid) -> u8 {
    u8::try_from(uid.as_bytes().len()).unwrap_or(u8::MAX)
}

/// HMAC-SHA256 keyed with a 32-byte key. HMAC zero-pads a key shorter than the hash's block to
/// the block size, so keying with the padded 64-byte array is exactly HMAC with the 32-byte
/// key, and needs no fallible `new_from_slice`.
fn hmac_with_key(key: &[u8; 32]) -> HmacSha256 {
    let mut padded = [0u8; SHA256_BLOCK_LEN_BYTES];
    padded[..key.len()].copy_from_slice(key);
    <HmacSha256 as KeyInit>::new(&padded.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_keying_equals_hmac_with_the_short_key() {
        let key = [0x0bu8; 32];
        let mut ours = hmac_with_key(&key);
        ours.update(b"Hi There");
        let mut reference = <HmacSha256 as KeyInit>::new_from_slice(&key).expect("any length");
        reference.update(b"Hi There");
        assert_eq!(
            ours.finalize().into_bytes(),
            reference.finalize().into_bytes()
        );
    }

    #[test]
    fn derivation_matches_an_independent_implementation() {
        // Computed with Python's hmac/hashlib (docs/card-layout.md "Worked example").
        let keys =
            MasterKey::demo().card_keys(&CardUid::new(&[0x1A, 0x2B, 0x3C, 0x4D]).expect("4"));
        assert_eq!(keys.key_a, [0xb3, 0x5b, 0x6f, 0x9e, 0xb3, 0xf4]);
        assert_eq!(keys.key_b, [0xad, 0x7e, 0xb1, 0x33, 0xe3, 0xc9]);
        assert_eq!(keys.mac.0[..4], [0x76, 0x75, 0xcc, 0x35]);
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let key = MasterKey::demo();
        let shown = format!("{key:?} {:?}", key.card_keys(&uid4()));
        assert!(!shown.contains("64656d6f"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(
            MasterKey::from_hex(
                "64656d6f2d6f6e6c792d6d61737465722d6b65792d6e6f742d7365637265742e\n"
            ),
            Ok(MasterKey::demo())
        );
        assert!(matches!(
            MasterKey::from_hex("abcd"),
            Err(MasterKeyError::WrongLength { found: 4, .. })
        ));
        assert_eq!(
            MasterKey::from_hex(&"zz".repeat(32)),
            Err(MasterKeyError::NotHex)
        );
        assert_eq!(
            MasterKey::from_hex(&"00".repeat(32)),
            Err(MasterKeyError::Trivial)
        );
    }

    /// Regression: a `+` sign in a byte ("+1") was taken for the digit it precedes.
    #[test]
    fn a_master_key_takes_only_hex_digits() {
        assert_eq!(
            MasterKey::from_hex(&"+1".repeat(32)),
            Err(MasterKeyError::NotHex)
        );
    }

    #[test]
    fn keys_differ_per_card_and_per_label() {
        let master = MasterKey::demo();
        let a = master.card_keys(&uid4());
        let b = master.card_keys(&CardUid::new(&[1, 2, 3, 5]).expect("4 bytes"));
        assert_ne!(a.key_a, b.key_a);
        assert_ne!(a.key_a, a.key_b);
        assert_ne!(a.mac, b.mac);
        assert_ne!(a.key_a, TRANSPORT_KEY);
    }

    #[test]
    fn mac_verifies_and_rejects() {
        let keys = MasterKey::demo().card_keys(&uid4());
        let tag = keys.mac.mac(&[b"abc", b"def"]);
        assert!(keys.mac.verify(&[b"abcdef"], &tag));
        let mut bad = tag;
        bad[3] ^= 1;
        assert!(!keys.mac.verify(&[b"abcdef"], &bad));
    }

    fn uid4() -> CardUid {
        CardUid::new(&[1, 2, 3, 4]).expect("4 bytes")
    }
}

//! Mifare Classic access conditions (MF1S50yyX datasheet, 8.7): decoding the access bits of a
//! sector trailer and the tables saying which key may read or write a data block and each part
//! of the trailer. The emulated card refuses with a NAK what these tables forbid, as a real card.

/// The key a sector was authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Key A (authentication command 0x60).
    A,
    /// Key B (authentication command 0x61).
    B,
}

/// Which key an access condition grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    Never,
    KeyA,
    KeyB,
    KeyAOrB,
}

impl Grant {
    fn allows(self, key: KeyType) -> bool {
        matches!(
            (self, key),
            (Grant::KeyAOrB, _) | (Grant::KeyA, KeyType::A) | (Grant::KeyB, KeyType::B)
        )
    }
}

/// Blocks per sector of a Mifare Classic 1K.
pub const BLOCKS_PER_SECTOR: u8 = 4;
/// Blocks of a Mifare Classic 1K (16 sectors of 4).
pub const BLOCK_COUNT: u8 = 64;
/// Access bytes 6..=9 of a factory-fresh trailer (transport configuration).
pub const TRANSPORT_ACCESS_BYTES: [u8; 4] = [0xFF, 0x07, 0x80, 0x69];

/// The sector holding `block`.
pub fn sector_of(block: u8) -> u8 {
    block / BLOCKS_PER_SECTOR
}

/// The trailer block of `sector`.
pub fn trailer_of(sector: u8) -> u8 {
    sector * BLOCKS_PER_SECTOR + (BLOCKS_PER_SECTOR - 1)
}

/// `block` is a sector trailer.
pub fn is_trailer(block: u8) -> bool {
    block % BLOCKS_PER_SECTOR == BLOCKS_PER_SECTOR - 1
}

/// The access conditions (C1 C2 C3 as a 3-bit number, C1 the high bit) of the four blocks of a
/// sector, from trailer bytes 6..=8; `None` when the inverted copies disagree (a real card then
/// blocks the sector for good).
pub fn decode_access_bits(trailer: &[u8; 16]) -> Option<[u8; 4]> {
    let (b6, b7, b8) = (trailer[6], trailer[7], trailer[8]);
    let c1 = b7 >> 4;
    let c2 = b8 & 0x0F;
    let c3 = b8 >> 4;
    let c1_inverted = b6 & 0x0F;
    let c2_inverted = b6 >> 4;
    let c3_inverted = b7 & 0x0F;
    if c1 != !c1_inverted & 0x0F || c2 != !c2_inverted & 0x0F || c3 != !c3_inverted & 0x0F {
        return None;
    }
    let mut conditions = [0u8; 4];
    for (i, condition) in conditions.iter_mut().enumerate() {
        let bit = |c: u8| (c >> i) & 1;
        *condition = (bit(c1) << 2) | (bit(c2) << 1) | bit(c3);
    }
    Some(conditions)
}

/// Encodes four access conditions (C1 C2 C3 each) into trailer bytes 6..=8.
pub fn encode_access_bits(conditions: [u8; 4]) -> [u8; 3] {
    let (mut c1, mut c2, mut c3) = (0u8, 0u8, 0u8);
    for (i, condition) in conditions.iter().enumerate() {
        c1 |= ((condition >> 2) & 1) << i;
        c2 |= ((condition >> 1) & 1) << i;
        c3 |= (condition & 1) << i;
    }
    [
        ((!c2 & 0x0F) << 4) | (!c1 & 0x0F),
        (c1 << 4) | (!c3 & 0x0F),
        (c3 << 4) | c2,
    ]
}

/// Key B is readable under this trailer condition, so it cannot be used to authenticate access.
fn key_b_readable(trailer_condition: u8) -> bool {
    // Conditions 000, 001 and 010.
    trailer_condition <= 0b010
}

fn usable(key: KeyType, trailer_condition: u8) -> bool {
    !(key == KeyType::B && key_b_readable(trailer_condition))
}

/// (read, write) grants of a data block.
fn data_grants(condition: u8) -> (Grant, Grant) {
    use Grant::*;
    match condition & 0b111 {
        0b000 => (KeyAOrB, KeyAOrB),
        0b010 | 0b001 => (KeyAOrB, Never),
        0b100 | 0b110 => (KeyAOrB, KeyB),
        0b011 => (KeyB, KeyB),
        0b101 => (KeyB, Never),
        _ => (Never, Never),
    }
}

/// Grants on the parts of a trailer.
struct TrailerGrants {
    key_a_write: Grant,
    access_read: Grant,
    access_write: Grant,
    key_b_read: Grant,
    key_b_write: Grant,
}

fn trailer_grants(condition: u8) -> TrailerGrants {
    use Grant::*;
    let (key_a_write, access_read, access_write, key_b_read, key_b_write) = match condition & 0b111
    {
        0b000 => (KeyA, KeyA, Never, KeyA, KeyA),
        0b010 => (Never, KeyA, Never, KeyA, Never),
        0b100 => (KeyB, KeyAOrB, Never, Never, KeyB),
        0b110 => (Never, KeyAOrB, Never, Never, Never),
        0b001 => (KeyA, KeyA, KeyA, KeyA, KeyA),
        0b011 => (KeyB, KeyAOrB, KeyB, Never, KeyB),
        0b101 => (Never, KeyAOrB, KeyB, Never, Never),
        _ => (Never, KeyAOrB, Never, Never, Never),
    };
    TrailerGrants {
        key_a_write,
        access_read,
        access_write,
        key_b_read,
        key_b_write,
    }
}

/// The sector's access rules as one trailer states them.
#[derive(Debug, Clone, Copy)]
pub struct SectorAccess {
    /// `None`: the access bits are inconsistent and the sector is blocked.
    conditions: Option<[u8; 4]>,
}

impl SectorAccess {
    /// Reads the rules from a trailer block.
    pub fn from_trailer(trailer: &[u8; 16]) -> SectorAccess {
        SectorAccess {
            conditions: decode_access_bits(trailer),
        }
    }

    fn condition(&self, index_in_sector: u8) -> Option<(u8, u8)> {
        let conditions = self.conditions?;
        let own = *conditions.get(usize::from(index_in_sector))?;
        Some((own, conditions[3]))
    }

    /// `key` may read data block number `index_in_sector` (0..=2).
    pub fn may_read_data(&self, index_in_sector: u8, key: KeyType) -> bool {
        self.condition(index_in_sector)
            .is_some_and(|(c, t)| usable(key, t) && data_grants(c).0.allows(key))
    }

    /// `key` may write data block number `index_in_sector` (0..=2).
    pub fn may_write_data(&self, index_in_sector: u8, key: KeyType) -> bool {
        self.condition(index_in_sector)
            .is_some_and(|(c, t)| usable(key, t) && data_grants(c).1.allows(key))
    }

    /// The trailer as `key` reads it: key A always as zeros, the access bytes and key B only
    /// where the conditions let `key` read them.
    pub fn read_trailer(&self, trailer: &[u8; 16], key: KeyType) -> [u8; 16] {
        let mut shown = [0u8; 16];
        let Some((t, _)) = self.condition(3) else {
            return shown;
        };
        if !usable(key, t) {
            return shown;
        }
        let grants = trailer_grants(t);
        if grants.access_read.allows(key) {
            shown[6..10].copy_from_slice(&trailer[6..10]);
        }
        if grants.key_b_read.allows(key) {
            shown[10..16].copy_from_slice(&trailer[10..16]);
        }
        shown
    }

    /// `key` may write at least one part of the trailer (else the write command gets a NAK).
    pub fn may_write_trailer(&self, key: KeyType) -> bool {
        self.condition(3).is_some_and(|(t, _)| {
            let g = trailer_grants(t);
            usable(key, t)
                && (g.key_a_write.allows(key)
                    || g.access_write.allows(key)
                    || g.key_b_write.allows(key))
        })
    }

    /// The trailer after `key` wrote `data` to it: only the parts `key` may write change.
    pub fn write_trailer(&self, old: &[u8; 16], data: &[u8; 16], key: KeyType) -> [u8; 16] {
        let mut new = *old;
        let Some((t, _)) = self.condition(3) else {
            return new;
        };
        if !usable(key, t) {
            return new;
        }
        let grants = trailer_grants(t);
        if grants.key_a_write.allows(key) {
            new[0..6].copy_from_slice(&data[0..6]);
        }
        if grants.access_write.allows(key) {
            new[6..10].copy_from_slice(&data[6..10]);
        }
        if grants.key_b_write.allows(key) {
            new[10..16].copy_from_slice(&data[10..16]);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer(access: [u8; 3]) -> [u8; 16] {
        let mut t = [0xFF; 16];
        t[6..9].copy_from_slice(&access);
        t[9] = 0x69;
        t
    }

    #[test]
    fn transport_bits_decode_to_000_000_000_001() {
        let t = trailer([0xFF, 0x07, 0x80]);
        assert_eq!(decode_access_bits(&t), Some([0, 0, 0, 0b001]));
        assert_eq!(encode_access_bits([0, 0, 0, 0b001]), [0xFF, 0x07, 0x80]);
    }

    #[test]
    fn encode_decode_round_trip_every_condition() {
        for c in 0..8u8 {
            let conditions = [c, (c + 1) % 8, (c + 3) % 8, (c + 5) % 8];
            let t = trailer(encode_access_bits(conditions));
            assert_eq!(decode_access_bits(&t), Some(conditions));
        }
    }

    #[test]
    fn inconsistent_bits_block_the_sector() {
        let t = trailer([0xFF, 0x07, 0x81]);
        assert_eq!(decode_access_bits(&t), None);
        let access = SectorAccess::from_trailer(&t);
        assert!(!access.may_read_data(0, KeyType::A));
        assert!(!access.may_write_trailer(KeyType::A));
    }

    #[test]
    fn read_only_data_block_with_key_a() {
        // Block 1 read-only (010), trailer transport (001).
        let access = SectorAccess::from_trailer(&trailer(encode_access_bits([0, 0b010, 0, 1])));
        assert!(access.may_read_data(1, KeyType::A));
        assert!(!access.may_write_data(1, KeyType::A));
        assert!(access.may_write_data(0, KeyType::A));
        // Key B is readable under 001, so it grants nothing.
        assert!(!access.may_read_data(0, KeyType::B));
    }

    #[test]
    fn trailer_read_hides_key_a_and_write_keeps_forbidden_parts() {
        let mut t = trailer(encode_access_bits([0, 0, 0, 0b000]));
        t[0..6].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        let access = SectorAccess::from_trailer(&t);
        let shown = access.read_trailer(&t, KeyType::A);
        assert_eq!(shown[0..6], [0; 6]);
        assert_eq!(shown[6..10], t[6..10]);
        assert!(access.may_write_trailer(KeyType::A));
        let new = access.write_trailer(&t, &[9; 16], KeyType::A);
        assert_eq!(new[0..6], [9; 6], "key A writable under 000");
        assert_eq!(new[6..10], t[6..10], "access bits not writable under 000");
        assert_eq!(new[10..16], [9; 6], "key B writable under 000");
        let frozen = SectorAccess::from_trailer(&trailer(encode_access_bits([0, 0, 0, 0b110])));
        assert!(!frozen.may_write_trailer(KeyType::A));
    }
}

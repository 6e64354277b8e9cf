//! CRC_A of ISO/IEC 14443-3 (6.2.4, Annex B), computed in software. The driver checks card
//! answers with it (the `mfrc522` crate keeps its own CRC helper private), and the emulated
//! chip uses it for its CalcCRC coprocessor and the emulated card for its frames, so all three
//! agree on one tested implementation.

/// The CRC_A register value before the first byte (ISO/IEC 14443-3: 0x6363).
pub const CRC_A_PRESET: u16 = 0x6363;
/// The reflected CRC-16/CCITT polynomial x^16 + x^12 + x^5 + 1 used by CRC_A.
const CRC_A_POLY_REFLECTED: u16 = 0x8408;

/// CRC over `data` starting from `preset`, as the MFRC522 CRC coprocessor computes it.
pub fn crc16_reflected(preset: u16, data: &[u8]) -> u16 {
    let mut crc = preset;
    for &byte in data {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ CRC_A_POLY_REFLECTED
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// CRC_A of `data` in transmission order (low byte first), as it is appended to a frame.
pub fn crc_a(data: &[u8]) -> [u8; 2] {
    crc16_reflected(CRC_A_PRESET, data).to_le_bytes()
}

/// `frame` ends with a correct CRC_A over the bytes before it.
pub fn has_valid_crc_a(frame: &[u8]) -> bool {
    match frame.len().checked_sub(2) {
        Some(body) if body > 0 => crc_a(&frame[..body]) == frame[body..],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_14443_3_annex_b_vectors() {
        assert_eq!(crc_a(&[0x00, 0x00]), [0xA0, 0x1E]);
        assert_eq!(crc_a(&[0x12, 0x34]), [0x26, 0xCF]);
    }

    #[test]
    fn well_known_command_crcs() {
        assert_eq!(crc_a(&[0x50, 0x00]), [0x57, 0xCD], "HLTA");
        assert_eq!(crc_a(&[0x30, 0x00]), [0x02, 0xA8], "READ block 0");
        assert!(has_valid_crc_a(&[0x50, 0x00, 0x57, 0xCD]));
        assert!(!has_valid_crc_a(&[0x50, 0x00, 0x57, 0xCE]));
        assert!(!has_valid_crc_a(&[0x57, 0xCD]));
    }
}

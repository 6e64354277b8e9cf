//! The offline QR fallback (seed 004 §五): when the till cannot reach the campus, it shows a QR
//! code of an order; the student's campus app (which has its own network) scans it, pays it at
//! the campus, and shows a short confirmation code that the merchant types into the till. This
//! file is the one definition of that QR payload and of the confirmation code, shared by the
//! till, the campus and the campus-app simulator. `docs/offline-qr.md` is the prose version.
//!
//! **Payload**: `CQ1` followed by the RFC 4648 base32 (no padding) of 32 bytes: terminal (8),
//! order intent seq (4), amount in fen (4), machine number (2), created at (4, Unix seconds, the
//! till's clock corrected by the server offset), valid for (2, seconds), then the first 8 bytes
//! of `HMAC-SHA256(terminal key, "campus-offline-qr/v1" ‖ the 24 bytes before)`. 55 characters of
//! QR alphanumeric mode (upper-case base32 is in its set): QR version 3 at error correction M
//! holds 61, so the code stays 29 modules a side and a phone reads it off a small panel.
//!
//! **Terminal key**: `HMAC-SHA256(campus QR master key, "till-qr-key/v1" ‖ terminal id)`. The
//! campus holds only the master and derives any till's key on demand; a till holds only its own
//! key (installed with its configuration). A stolen till key forges payloads for that till
//! alone: it can ask its own payers to pay it, as the till always could.
//!
//! **Confirmation code**: 6 decimal digits, `HMAC-SHA256(terminal key, "campus-offline-qr-paid/v1"
//! ‖ terminal ‖ intent ‖ amount)` read as a big-endian u64, mod 10^6. Only the campus (after it
//! booked the payment) and the till can make it; the till limits wrong guesses
//! ([`MAX_CONFIRMATION_ATTEMPTS`]).

use crate::ids::{MachineNumber, Seq, TerminalId, UnixMillis};
use crate::money::Fen;
use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of an offline QR payload.
pub const QR_PAYLOAD_PREFIX: &str = "CQ1";
/// Bytes of the fields the MAC covers.
const QR_FIELDS_BYTES: usize = 8 + 4 + 4 + 2 + 4 + 2;
/// Bytes of the truncated MAC.
pub const QR_MAC_BYTES: usize = 8;
/// Characters of a payload: the prefix and the base32 of fields and MAC.
pub const QR_PAYLOAD_CHARS: usize = 3 + (8 * (QR_FIELDS_BYTES + QR_MAC_BYTES)).div_ceil(5);
/// Digits of the confirmation code the campus app shows.
pub const CONFIRMATION_DIGITS: u32 = 6;
/// Wrong confirmation codes the till accepts for one order before it stops asking and waits for
/// the campus's word (a guess has one chance in a million; five guesses stay below 10^-5).
pub const MAX_CONFIRMATION_ATTEMPTS: u8 = 5;
/// Bytes of a terminal key and of the campus's QR master key.
pub const QR_KEY_BYTES: usize = 32;
const PAYLOAD_DOMAIN: &[u8] = b"campus-offline-qr/v1";
const CONFIRM_DOMAIN: &[u8] = b"campus-offline-qr-paid/v1";
const TERMINAL_KEY_DOMAIN: &[u8] = b"till-qr-key/v1";

/// One till's key for its QR payloads and confirmation codes.
#[derive(Clone, PartialEq, Eq)]
pub struct TerminalQrKey([u8; QR_KEY_BYTES]);

impl std::fmt::Debug for TerminalQrKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TerminalQrKey(…)")
    }
}

impl TerminalQrKey {
    pub fn from_bytes(bytes: [u8; QR_KEY_BYTES]) -> TerminalQrKey {
        TerminalQrKey(bytes)
    }

    /// The key of `terminal` under the campus's QR master key (the campus side; the card
    /// centre's provisioning writes it into the till's configuration).
    pub fn derive(master: &[u8; QR_KEY_BYTES], terminal: TerminalId) -> TerminalQrKey {
        let mut mac = hmac(master);
        mac.update(TERMINAL_KEY_DOMAIN);
        mac.update(&terminal.0.to_be_bytes());
        TerminalQrKey(mac.finalize().into_bytes().into())
    }

    fn mac(&self, domain: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = hmac(&self.0);
        mac.update(domain);
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

fn hmac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length")
}

/// What an offline QR code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrOrder {
    pub terminal: TerminalId,
    /// The seq of the till's intent record of this order (with `terminal`, the order id).
    pub intent: Seq,
    pub amount: Fen,
    pub machine: MachineNumber,
    /// When the till made it (Unix seconds, the server's clock as the till knows it).
    pub created_at_s: u32,
    pub valid_for_s: u16,
}

/// Why a payload is not a valid offline QR order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QrPayloadError {
    #[error("not an offline QR payload")]
    NotAPayload,
    #[error("damaged payload")]
    Damaged,
    #[error("a field is out of range")]
    OutOfRange,
    #[error("the MAC does not match (tampered, or another till's key)")]
    BadMac,
    #[error("expired")]
    Expired,
}

impl QrOrder {
    /// When the payload stops being payable.
    pub fn expires_at(&self) -> UnixMillis {
        UnixMillis((i64::from(self.created_at_s) + i64::from(self.valid_for_s)) * 1000)
    }

    fn fields(&self) -> Option<[u8; QR_FIELDS_BYTES]> {
        let mut out = [0; QR_FIELDS_BYTES];
        out[0..8].copy_from_slice(&self.terminal.0.to_be_bytes());
        out[8..12].copy_from_slice(&u32::try_from(self.intent.0).ok()?.to_be_bytes());
        out[12..16].copy_from_slice(&u32::try_from(self.amount.get()).ok()?.to_be_bytes());
        out[16..18].copy_from_slice(&self.machine.get().to_be_bytes());
        out[18..22].copy_from_slice(&self.created_at_s.to_be_bytes());
        out[22..24].copy_from_slice(&self.valid_for_s.to_be_bytes());
        Some(out)
    }

    /// The payload text to draw as a QR code; `None` if a field does not fit its bytes (an
    /// intent seq past 2^32, an amount past ¥42,949,672.95).
    pub fn payload(&self, key: &TerminalQrKey) -> Option<String> {
        let fields = self.fields()?;
        let mac = key.mac(PAYLOAD_DOMAIN, &[&fields]);
        let mut bytes = fields.to_vec();
        bytes.extend_from_slice(&mac[..QR_MAC_BYTES]);
        Some(format!(
            "{QR_PAYLOAD_PREFIX}{}",
            BASE32_NOPAD.encode(&bytes)
        ))
    }

    /// Reads a payload's fields without checking its MAC (the campus needs the terminal to find
    /// the key; [`QrOrder::verify`] checks it).
    pub fn parse(payload: &str) -> Result<QrOrder, QrPayloadError> {
        let (order, _) = split(payload)?;
        Ok(order)
    }

    /// Reads and checks a payload: its MAC under `key` and its validity at `now` (the campus's
    /// clock).
    pub fn verify(
        payload: &str,
        key: &TerminalQrKey,
        now: UnixMillis,
    ) -> Result<QrOrder, QrPayloadError> {
        let (order, mac) = split(payload)?;
        let fields = order.fields().ok_or(QrPayloadError::OutOfRange)?;
        let expected = key.mac(PAYLOAD_DOMAIN, &[&fields]);
        // Not secret-dependent timing worth hiding: a wrong MAC only refuses.
        if expected[..QR_MAC_BYTES] != mac {
            return Err(QrPayloadError::BadMac);
        }
        if now >= order.expires_at() {
            return Err(QrPayloadError::Expired);
        }
        Ok(order)
    }

    /// The confirmation code the campus app shows once the campus booked this order's payment.
    pub fn confirmation_code(&self, key: &TerminalQrKey) -> u32 {
        let mac = key.mac(
            CONFIRM_DOMAIN,
            &[
                &self.terminal.0.to_be_bytes(),
                &self.intent.0.to_be_bytes(),
                &self.amount.get().to_be_bytes(),
            ],
        );
        let mut first = [0; 8];
        first.copy_from_slice(&mac[..8]);
        (u64::from_be_bytes(first) % 10u64.pow(CONFIRMATION_DIGITS)) as u32
    }
}

fn split(payload: &str) -> Result<(QrOrder, [u8; QR_MAC_BYTES]), QrPayloadError> {
    let body = payload
        .trim()
        .strip_prefix(QR_PAYLOAD_PREFIX)
        .ok_or(QrPayloadError::NotAPayload)?;
    if body.len() > QR_PAYLOAD_CHARS {
        return Err(QrPayloadError::Damaged);
    }
    let bytes = BASE32_NOPAD
        .decode(body.as_bytes())
        .map_err(|_| QrPayloadError::Damaged)?;
    let bytes: [u8; QR_FIELDS_BYTES + QR_MAC_BYTES] =
        bytes.try_into().map_err(|_| QrPayloadError::Damaged)?;
    let be32 =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let mut terminal = [0; 8];
    terminal.copy_from_slice(&bytes[0..8]);
    let machine = MachineNumber::new(u16::from_be_bytes([bytes[16], bytes[17]]))
        .map_err(|_| QrPayloadError::OutOfRange)?;
    let valid_for_s = u16::from_be_bytes([bytes[22], bytes[23]]);
    let order = QrOrder {
        terminal: TerminalId(u64::from_be_bytes(terminal)),
        intent: Seq(u64::from(be32(8))),
        amount: Fen::new(u64::from(be32(12))),
        machine,
        created_at_s: be32(18),
        valid_for_s,
    };
    if order.intent.0 == 0 || order.amount.is_zero() || valid_for_s == 0 {
        return Err(QrPayloadError::OutOfRange);
    }
    let mut mac = [0; QR_MAC_BYTES];
    mac.copy_from_slice(&bytes[QR_FIELDS_BYTES..]);
    Ok((order, mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TerminalQrKey {
        TerminalQrKey::derive(&[9; 32], TerminalId(0xABCD))
    }

    fn order() -> QrOrder {
        QrOrder {
            terminal: TerminalId(0xABCD),
            intent: Seq(1234),
            amount: Fen::new(1250),
            machine: MachineNumber::new(58).unwrap(),
            created_at_s: 1_800_000_000,
            valid_for_s: 600,
        }
    }

    const NOW: UnixMillis = UnixMillis(1_800_000_100_000);

    #[test]
    fn a_payload_is_55_alphanumeric_characters_and_verifies_under_its_terminal_key() {
        let payload = order().payload(&key()).unwrap();
        assert_eq!(payload.len(), QR_PAYLOAD_CHARS);
        assert_eq!(QR_PAYLOAD_CHARS, 55);
        assert!(payload
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert_eq!(QrOrder::verify(&payload, &key(), NOW), Ok(order()));
        assert_eq!(QrOrder::parse(&payload), Ok(order()));
    }

    #[test]
    fn a_tampered_expired_or_foreign_payload_is_refused() {
        let payload = order().payload(&key()).unwrap();
        let other = TerminalQrKey::derive(&[9; 32], TerminalId(0xABCE));
        assert_eq!(
            QrOrder::verify(&payload, &other, NOW),
            Err(QrPayloadError::BadMac)
        );
        let late = UnixMillis(NOW.0 + 600_000);
        assert_eq!(
            QrOrder::verify(&payload, &key(), late),
            Err(QrPayloadError::Expired)
        );
        // Every single-character change is refused (or is no payload at all).
        for at in 3..payload.len() {
            let mut bytes = payload.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(
                QrOrder::verify(&changed, &key(), NOW).is_err(),
                "a change at {at} went through"
            );
        }
        assert_eq!(QrOrder::parse("CV1AAAA"), Err(QrPayloadError::NotAPayload));
        assert_eq!(QrOrder::parse("CQ1!!"), Err(QrPayloadError::Damaged));
    }

    #[test]
    fn the_confirmation_code_is_six_digits_tied_to_the_order_and_the_key() {
        let code = order().confirmation_code(&key());
        assert!(code < 1_000_000);
        let other_amount = QrOrder {
            amount: Fen::new(1251),
            ..order()
        };
        assert_ne!(other_amount.confirmation_code(&key()), code);
        let other_key = TerminalQrKey::derive(&[8; 32], TerminalId(0xABCD));
        assert_ne!(order().confirmation_code(&other_key), code);
    }
}

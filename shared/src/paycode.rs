//! The payment codes a till's scanner reads from a payer's phone, recognised by their shapes: the
//! campus virtual card (a format of ours, signed by the campus: `docs/code-payments.md`) and the
//! WeChat Pay, Alipay and UnionPay (云闪付) payment codes (their published shapes). Anything else
//! is not a payment code.
//!
//! A payment code is a bearer token valid about a minute: whoever holds it can spend from the
//! payer's account. So [`PaymentCode`] never prints itself (`Debug` shows the method and the
//! last four characters), the journal keeps only its [`CodeDigest`] and its last four
//! characters, and the clear text travels only in the one order submit that needs it.
//!
//! The virtual card's code: `CV1` followed by the RFC 4648 base32 (no padding) of 87 bytes:
//! key id (1), account (8, big-endian), issued at (4, Unix seconds), valid for (2, seconds),
//! nonce (8), then an Ed25519 signature (64) of `"campus-virtual-card/v1"` followed by the first
//! 23 bytes. Upper-case base32 is QR alphanumeric mode, the densest a phone app can show: 143
//! characters fit a version-7 code at error correction M.

use crate::ids::UnixMillis;
use data_encoding::BASE32_NOPAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The prefix of a campus virtual-card code.
pub const VIRTUAL_CARD_PREFIX: &str = "CV1";
/// What the campus signs before the code's fields (domain separation from any other use of
/// the key).
const VIRTUAL_CARD_DOMAIN: &[u8] = b"campus-virtual-card/v1";
/// Bytes of the signed fields of a virtual-card code.
const VIRTUAL_CARD_FIELDS_BYTES: usize = 1 + 8 + 4 + 2 + 8;
/// Bytes of a decoded virtual-card code (fields and signature).
const VIRTUAL_CARD_BYTES: usize = VIRTUAL_CARD_FIELDS_BYTES + 64;
/// The longest validity a virtual-card code may claim (the campus app issues about 60 s).
pub const MAX_VIRTUAL_CARD_VALIDITY_S: u16 = 300;
/// The longest text the scanner may hand over that is still looked at (longer: not a code).
pub const MAX_SCANNED_CODE_CHARS: usize = 256;
/// How many of a code's last characters may be shown and journaled (the rest is the token).
pub const CODE_HINT_CHARS: usize = 4;

/// How a code pays. Append-only (journaled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CodeMethod {
    /// The campus app's virtual campus card (微信校园 一卡通): paid from the campus account.
    VirtualCard,
    WeChat,
    Alipay,
    UnionPay,
    /// The till's own offline QR code (扫一扫, `crate::qrpay`), paid in the campus app: an order
    /// of this method is never submitted; the campus books it when the app pays it.
    OfflineQr,
}

impl CodeMethod {
    /// Whether the campus ledger pays it itself (the virtual card) or a wallet's back end does.
    pub fn is_campus(self) -> bool {
        self == CodeMethod::VirtualCard
    }
}

/// A campus account that a virtual card pays from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VirtualAccount(pub u64);

impl fmt::Display for VirtualAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:010}", self.0)
    }
}

/// The first 8 bytes of the SHA-256 of a code's text: enough to tell the same code scanned twice
/// and to find the order a code paid, useless for paying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodeDigest(pub [u8; 8]);

/// The last [`CODE_HINT_CHARS`] characters of a code, for the merchant and the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodeHint(pub [u8; CODE_HINT_CHARS]);

impl fmt::Display for CodeHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "…{}", String::from_utf8_lossy(&self.0))
    }
}

/// A recognised payment code: its method and its text (a bearer token, see the module header).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCode {
    method: CodeMethod,
    text: String,
}

impl fmt::Debug for PaymentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentCode({:?} {})", self.method, self.hint())
    }
}

/// Why scanned text is not a payment code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("not a payment code")]
    Unrecognised,
    #[error("virtual-card code damaged: {0}")]
    Damaged(&'static str),
}

impl PaymentCode {
    /// Recognises scanned text (surrounding whitespace ignored).
    pub fn recognise(scanned: &str) -> Result<PaymentCode, CodeError> {
        if scanned.len() > MAX_SCANNED_CODE_CHARS {
            return Err(CodeError::Unrecognised);
        }
        let text = scanned.trim();
        let method = if text.starts_with(VIRTUAL_CARD_PREFIX) {
            VirtualCardCode::parse(text)?;
            CodeMethod::VirtualCard
        } else {
            wallet_method(text).ok_or(CodeError::Unrecognised)?
        };
        Ok(PaymentCode {
            method,
            text: text.to_owned(),
        })
    }

    pub fn method(&self) -> CodeMethod {
        self.method
    }

    /// The clear text: only for the order submit that spends it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    pub fn digest(&self) -> CodeDigest {
        let hash = Sha256::digest(self.text.as_bytes());
        let mut digest = [0; 8];
        digest.copy_from_slice(&hash[..8]);
        CodeDigest(digest)
    }

    pub fn hint(&self) -> CodeHint {
        let bytes = self.text.as_bytes();
        let mut hint = [b'?'; CODE_HINT_CHARS];
        let tail = &bytes[bytes.len().saturating_sub(CODE_HINT_CHARS)..];
        hint[CODE_HINT_CHARS - tail.len()..].copy_from_slice(tail);
        CodeHint(hint)
    }

    /// The virtual card's fields, for a virtual-card code.
    pub fn virtual_card(&self) -> Option<VirtualCardCode> {
        match self.method {
            CodeMethod::VirtualCard => VirtualCardCode::parse(&self.text).ok(),
            _ => None,
        }
    }
}

/// Tells wallet payment codes apart by their published shapes: WeChat Pay 18 digits starting
/// 10–15, Alipay 16–24 digits starting 25–30, UnionPay QR 19 digits starting 62.
fn wallet_method(code: &str) -> Option<CodeMethod> {
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix: u32 = code.get(..2)?.parse().ok()?;
    match (code.len(), prefix) {
        (18, 10..=15) => Some(CodeMethod::WeChat),
        (16..=24, 25..=30) => Some(CodeMethod::Alipay),
        (19, 62) => Some(CodeMethod::UnionPay),
        _ => None,
    }
}

/// The fields of a campus virtual-card code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualCardCode {
    /// Which campus signing key signed it (keys rotate).
    pub key_id: u8,
    pub account: VirtualAccount,
    /// When the campus app made it (Unix seconds, the campus's clock).
    pub issued_at_s: u32,
    pub valid_for_s: u16,
    /// Unique per code: the campus pays a nonce once.
    pub nonce: u64,
    signature: [u8; 64],
}

/// Why a virtual-card code is not good for paying now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VirtualCardRefusal {
    #[error("signature does not verify")]
    BadSignature,
    #[error("unknown signing key {0}")]
    UnknownKey(u8),
    #[error("expired")]
    Expired,
    #[error("issued in the future")]
    NotYetValid,
}

impl VirtualCardCode {
    /// Makes and signs a code (the campus app's side; tests and the campus simulator).
    pub fn sign(
        key: &SigningKey,
        key_id: u8,
        account: VirtualAccount,
        issued_at_s: u32,
        valid_for_s: u16,
        nonce: u64,
    ) -> String {
        let mut code = VirtualCardCode {
            key_id,
            account,
            issued_at_s,
            valid_for_s,
            nonce,
            signature: [0; 64],
        };
        code.signature = key.sign(&code.signed_bytes()).to_bytes();
        let mut bytes = code.fields().to_vec();
        bytes.extend_from_slice(&code.signature);
        format!("{VIRTUAL_CARD_PREFIX}{}", BASE32_NOPAD.encode(&bytes))
    }

    /// Reads a code's fields (the signature is checked by [`VirtualCardCode::verify`]).
    pub fn parse(text: &str) -> Result<VirtualCardCode, CodeError> {
        let body = text
            .strip_prefix(VIRTUAL_CARD_PREFIX)
            .ok_or(CodeError::Unrecognised)?;
        let bytes = BASE32_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| CodeError::Damaged("not base32"))?;
        let bytes: [u8; VIRTUAL_CARD_BYTES] = bytes
            .try_into()
            .map_err(|_| CodeError::Damaged("wrong length"))?;
        let u64_at = |at: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let valid_for_s = u16::from_be_bytes([bytes[13], bytes[14]]);
        if valid_for_s == 0 || valid_for_s > MAX_VIRTUAL_CARD_VALIDITY_S {
            return Err(CodeError::Damaged("validity out of range"));
        }
        let mut signature = [0; 64];
        signature.copy_from_slice(&bytes[VIRTUAL_CARD_FIELDS_BYTES..]);
        Ok(VirtualCardCode {
            key_id: bytes[0],
            account: VirtualAccount(u64_at(1)),
            issued_at_s: u32::from_be_bytes([bytes[9], bytes[10], bytes[11], bytes[12]]),
            valid_for_s,
            nonce: u64_at(15),
            signature,
        })
    }

    /// A code from fields and a signature kept apart (an uploaded offline sale, whose record
    /// keeps them): [`VirtualCardCode::verify`] judges it like a scanned one.
    pub fn from_parts(
        key_id: u8,
        account: VirtualAccount,
        issued_at_s: u32,
        valid_for_s: u16,
        nonce: u64,
        signature: [u8; 64],
    ) -> VirtualCardCode {
        VirtualCardCode {
            key_id,
            account,
            issued_at_s,
            valid_for_s,
            nonce,
            signature,
        }
    }

    /// The campus's signature over the fields (what an offline sale's record keeps as the
    /// payer's authorisation).
    pub fn signature(&self) -> [u8; 64] {
        self.signature
    }

    fn fields(&self) -> [u8; VIRTUAL_CARD_FIELDS_BYTES] {
        let mut out = [0; VIRTUAL_CARD_FIELDS_BYTES];
        out[0] = self.key_id;
        out[1..9].copy_from_slice(&self.account.0.to_be_bytes());
        out[9..13].copy_from_slice(&self.issued_at_s.to_be_bytes());
        out[13..15].copy_from_slice(&self.valid_for_s.to_be_bytes());
        out[15..23].copy_from_slice(&self.nonce.to_be_bytes());
        out
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut signed = VIRTUAL_CARD_DOMAIN.to_vec();
        signed.extend_from_slice(&self.fields());
        signed
    }

    /// When the code stops being good (campus clock).
    pub fn expires_at(&self) -> UnixMillis {
        UnixMillis((i64::from(self.issued_at_s) + i64::from(self.valid_for_s)) * 1000)
    }

    /// Checks the signature with the campus key `keys` names for the code's key id, and that
    /// `now` (the campus's clock, or the till's corrected by the server offset) is inside the
    /// code's validity (a few seconds of clock skew allowed before its issue time).
    pub fn verify(
        &self,
        keys: &dyn Fn(u8) -> Option<VerifyingKey>,
        now: UnixMillis,
    ) -> Result<(), VirtualCardRefusal> {
        let key = keys(self.key_id).ok_or(VirtualCardRefusal::UnknownKey(self.key_id))?;
        key.verify(
            &self.signed_bytes(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| VirtualCardRefusal::BadSignature)?;
        let issued_ms = i64::from(self.issued_at_s) * 1000;
        if now.0 < issued_ms - VIRTUAL_CARD_CLOCK_SKEW_MS {
            return Err(VirtualCardRefusal::NotYetValid);
        }
        if now >= self.expires_at() {
            return Err(VirtualCardRefusal::Expired);
        }
        Ok(())
    }
}

/// How far before its issue time a virtual-card code is still accepted (clocks disagree).
pub const VIRTUAL_CARD_CLOCK_SKEW_MS: i64 = 5_000;

/// The campus's signing key made from a 32-byte seed (the campus simulator and tests).
pub fn signing_key_from_seed(seed: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&seed)
}

pub use ed25519_dalek::{SigningKey as CampusSigningKey, VerifyingKey as CampusVerifyingKey};

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        signing_key_from_seed([7; 32])
    }

    fn code(issued_at_s: u32) -> String {
        VirtualCardCode::sign(&key(), 1, VirtualAccount(2024_0001), issued_at_s, 60, 42)
    }

    #[test]
    fn wallet_codes_are_told_apart_by_their_published_shapes() {
        let method = |s: &str| PaymentCode::recognise(s).map(|c| c.method());
        assert_eq!(method("134567890123456789"), Ok(CodeMethod::WeChat));
        assert_eq!(method("281234567890123456"), Ok(CodeMethod::Alipay));
        assert_eq!(method("6212345678901234567"), Ok(CodeMethod::UnionPay));
        for junk in [
            "",
            "hello",
            "1345678901234567890",
            "+34567890123456789",
            "99",
        ] {
            assert_eq!(method(junk), Err(CodeError::Unrecognised), "{junk:?}");
        }
    }

    #[test]
    fn a_signed_virtual_card_code_verifies_and_a_tampered_one_does_not() {
        let text = code(1_800_000_000);
        assert!(text.len() < 150, "{}", text.len());
        let parsed = PaymentCode::recognise(&text).unwrap();
        assert_eq!(parsed.method(), CodeMethod::VirtualCard);
        let fields = parsed.virtual_card().unwrap();
        assert_eq!(fields.account, VirtualAccount(2024_0001));
        let keys = |id: u8| (id == 1).then(|| key().verifying_key());
        let now = UnixMillis(1_800_000_010_000);
        assert_eq!(fields.verify(&keys, now), Ok(()));
        assert_eq!(
            fields.verify(&keys, UnixMillis(1_800_000_060_000)),
            Err(VirtualCardRefusal::Expired)
        );
        // One changed character changes a field or the signature.
        let mut tampered = text.clone().into_bytes();
        let at = 10;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let refused = VirtualCardCode::parse(&tampered).map(|c| c.verify(&keys, now));
        assert!(!matches!(refused, Ok(Ok(()))), "{refused:?}");
        let other = |_: u8| Some(signing_key_from_seed([8; 32]).verifying_key());
        assert_eq!(
            fields.verify(&other, now),
            Err(VirtualCardRefusal::BadSignature)
        );
    }

    #[test]
    fn a_code_prints_its_method_and_last_characters_only() {
        let code = PaymentCode::recognise("134567890123456789").unwrap();
        assert_eq!(format!("{code:?}"), "PaymentCode(WeChat …6789)");
        assert_eq!(code.hint().to_string(), "…6789");
        assert_ne!(
            code.digest(),
            PaymentCode::recognise("134567890123456788")
                .unwrap()
                .digest()
        );
    }

    #[test]
    fn damaged_virtual_card_codes_are_not_codes() {
        assert!(PaymentCode::recognise("CV1").is_err());
        assert!(PaymentCode::recognise("CV1!!!!").is_err());
        assert!(PaymentCode::recognise(&"CV1AAAA".repeat(100)).is_err());
        let short = &code(1_800_000_000)[..100];
        assert!(PaymentCode::recognise(short).is_err());
    }
}

//! The simulated back end's durable call log: every call it acted on, with the campus's time,
//! appended and fdatasynced before the answer goes back. Replaying the log through the same
//! (deterministic) back end rebuilds its state exactly, so an answer once given is never
//! contradicted after a restart.
//!
//! The file: the magic [`LOG_MAGIC`], then records of `length (u32 LE) | check (4) | time (i64
//! LE) | call`, where the call is a till's order call (`shared::codec::encode_order_call`, whose
//! first byte, the envelope's variant, is 0), a campus-app QR payment ([`QR_PAY_TAG`], the
//! account (u64 BE), the payload's ASCII text), or an uploaded offline virtual-card sale settled
//! ([`Logged::OfflineSale`]: the tag [`OFFLINE_SALE_TAG`], then terminal and seq (u64 LE each)
//! and the sale's fields in a fixed layout), and where `length` counts what follows the check and the
//! check is the first four bytes of the SHA-256 of what follows it. A record cut short at the end
//! of the file is a write torn by a crash: dropped (the file is cut back to the records before
//! it). Anything else damaged is an error: the log is not guessed at.

use sha2::{Digest, Sha256};
use shared::codec::{decode_order_call, encode_order_call};
use shared::pay::OrderCall;
use shared::paycode::VirtualAccount;
use shared::record::OfflineCodeSale;
use shared::{Fen, Seq, TerminalId, UnixMillis};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The first bytes of a call log.
pub const LOG_MAGIC: &[u8; 8] = b"PAYLOG01";
/// The first byte of a QR-pay record's call (an order call's encoding starts with 0).
pub const QR_PAY_TAG: u8 = 0xA5;
/// Bytes of a QR-pay record's account.
const ACCOUNT_BYTES: usize = 8;

fn decode_call(bytes: &[u8]) -> Result<Logged, String> {
    match bytes.split_first() {
        Some((&QR_PAY_TAG, rest)) if rest.len() >= ACCOUNT_BYTES => {
            let (account, payload) = rest.split_at(ACCOUNT_BYTES);
            let mut number = [0; ACCOUNT_BYTES];
            number.copy_from_slice(account);
            let payload = std::str::from_utf8(payload)
                .map_err(|_| "QR payment: the payload is not text".to_string())?;
            Ok(Logged::QrPay {
                payload: payload.to_string(),
                account: VirtualAccount(u64::from_be_bytes(number)),
            })
        }
        Some((&QR_PAY_TAG, _)) => Err("QR payment: cut short".to_string()),
        Some((&OFFLINE_SALE_TAG, _)) => {
            decode_offline_sale(bytes).ok_or_else(|| "offline sale".to_string())
        }
        _ => decode_order_call(bytes)
            .map(Logged::Call)
            .map_err(|e| format!("order call: {e}")),
    }
}

/// Bytes of a record's length field.
const LENGTH_BYTES: usize = 4;
/// Bytes of a record's check.
const CHECK_BYTES: usize = 4;
/// Bytes of a record's time.
const TIME_BYTES: usize = 8;
/// The longest record body (time and call) a log may hold: far above any order call, so a
/// damaged length is an error rather than an allocation.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// The first byte of a logged offline sale: an order call's envelope never starts with it
/// (postcard's variant index 0xF0 would be a multi-byte varint of a variant no envelope has).
pub const OFFLINE_SALE_TAG: u8 = 0xF0;
/// Bytes of a logged offline sale after its tag: terminal, seq, amount, account (8 each), key
/// id (1), issued at (4), valid for (2), nonce (8), signature (64), fixed price (1).
const OFFLINE_SALE_BYTES: usize = 8 * 4 + 1 + 4 + 2 + 8 + 64 + 1;

/// One thing the back end acted on, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logged {
    /// A till's order request.
    Call(OrderCall),
    /// The campus app paid an offline QR payload from an account (`super::qr`).
    QrPay {
        payload: String,
        account: VirtualAccount,
    },
    /// An offline virtual-card sale that terminal `terminal` uploaded as its record `seq`.
    OfflineSale {
        terminal: TerminalId,
        seq: Seq,
        sale: OfflineCodeSale,
    },
}

fn encode_offline_sale(terminal: TerminalId, seq: Seq, sale: &OfflineCodeSale) -> Vec<u8> {
    let mut out = vec![OFFLINE_SALE_TAG];
    for word in [terminal.0, seq.0, sale.amount.get(), sale.account.0] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.push(sale.key_id);
    out.extend_from_slice(&sale.issued_at_s.to_le_bytes());
    out.extend_from_slice(&sale.valid_for_s.to_le_bytes());
    out.extend_from_slice(&sale.nonce.to_le_bytes());
    out.extend_from_slice(&sale.signature);
    out.push(u8::from(sale.fixed_price));
    out
}

fn decode_offline_sale(bytes: &[u8]) -> Option<Logged> {
    let bytes: &[u8; OFFLINE_SALE_BYTES] = bytes.get(1..)?.try_into().ok()?;
    let word = |at: usize| {
        let mut b = [0; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let mut signature = [0; 64];
    signature.copy_from_slice(&bytes[47..111]);
    let fixed_price = match bytes[111] {
        0 => false,
        1 => true,
        _ => return None,
    };
    Some(Logged::OfflineSale {
        terminal: TerminalId(word(0)),
        seq: Seq(word(8)),
        sale: OfflineCodeSale {
            amount: Fen::new(word(16)),
            account: VirtualAccount(word(24)),
            key_id: bytes[32],
            issued_at_s: u32::from_le_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]),
            valid_for_s: u16::from_le_bytes([bytes[37], bytes[38]]),
            nonce: word(39),
            signature,
            fixed_price,
        },
    })
}

/// An open call log, positioned at its end.
#[derive(Debug)]
pub struct CallLog {
    file: File,
    /// Bytes of the whole records in the file (where the next one goes).
    len: u64,
    /// Set when a failed append could not be cut back: nothing more is written.
    broken: bool,
}

fn damaged(at: u64, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("payment call log damaged at byte {at}: {what}"),
    )
}

fn check_of(body: &[u8]) -> [u8; CHECK_BYTES] {
    let hash = Sha256::digest(body);
    let mut check = [0; CHECK_BYTES];
    check.copy_from_slice(&hash[..CHECK_BYTES]);
    check
}

impl CallLog {
    /// Opens (creating) the log at `path` and reads its calls in order. A torn last record is
    /// dropped and cut off; the count of dropped bytes is logged.
    pub fn open(path: &Path) -> io::Result<(CallLog, Vec<(UnixMillis, Logged)>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        if bytes.len() < LOG_MAGIC.len() {
            if !LOG_MAGIC.starts_with(&bytes) {
                return Err(damaged(0, "not a payment call log"));
            }
            // New, or its creation was torn: write the magic afresh.
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(LOG_MAGIC)?;
            file.sync_data()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            let len = LOG_MAGIC.len() as u64;
            return Ok((
                CallLog {
                    file,
                    len,
                    broken: false,
                },
                Vec::new(),
            ));
        }
        if &bytes[..LOG_MAGIC.len()] != LOG_MAGIC {
            return Err(damaged(0, "not a payment call log"));
        }
        let mut calls = Vec::new();
        let mut at = LOG_MAGIC.len();
        while at < bytes.len() {
            let Some((time, call, next)) = Self::read_record(&bytes, at)? else {
                tracing::warn!(
                    "payment call log: dropped a torn last record ({} bytes)",
                    bytes.len() - at
                );
                file.set_len(at as u64)?;
                file.sync_data()?;
                break;
            };
            calls.push((time, call));
            at = next;
        }
        file.seek(SeekFrom::Start(at as u64))?;
        Ok((
            CallLog {
                file,
                len: at as u64,
                broken: false,
            },
            calls,
        ))
    }

    /// The record at `at`: Ok(None) if it is cut short by the end of the file.
    fn read_record(bytes: &[u8], at: usize) -> io::Result<Option<(UnixMillis, Logged, usize)>> {
        let Some(length) = bytes.get(at..at + LENGTH_BYTES) else {
            return Ok(None);
        };
        let mut length_bytes = [0; LENGTH_BYTES];
        length_bytes.copy_from_slice(length);
        let length = u32::from_le_bytes(length_bytes) as usize;
        if !(TIME_BYTES..=MAX_RECORD_BYTES).contains(&length) {
            return Err(damaged(at as u64, "record length out of range"));
        }
        let check_at = at + LENGTH_BYTES;
        let body_at = check_at + CHECK_BYTES;
        let end = body_at + length;
        let (Some(check), Some(body)) = (bytes.get(check_at..body_at), bytes.get(body_at..end))
        else {
            return Ok(None);
        };
        if check != check_of(body) {
            return Err(damaged(at as u64, "record check does not match"));
        }
        let mut time = [0; TIME_BYTES];
        time.copy_from_slice(&body[..TIME_BYTES]);
        let call = decode_call(&body[TIME_BYTES..]).map_err(|e| damaged(at as u64, &e))?;
        Ok(Some((UnixMillis(i64::from_le_bytes(time)), call, end)))
    }

    /// Appends one call and fdatasyncs it. On failure the file is cut back to the records
    /// before it (or, if that fails too, the log refuses every later append).
    pub fn append(&mut self, now: UnixMillis, call: &OrderCall) -> io::Result<()> {
        self.append_payload(now, &encode_order_call(call))
    }

    /// Appends one QR payment of the campus app and fdatasyncs it (as [`CallLog::append`]).
    pub fn append_qr_pay(
        &mut self,
        now: UnixMillis,
        payload: &str,
        account: VirtualAccount,
    ) -> io::Result<()> {
        let mut call = vec![QR_PAY_TAG];
        call.extend_from_slice(&account.0.to_be_bytes());
        call.extend_from_slice(payload.as_bytes());
        self.append_payload(now, &call)
    }

    /// Appends one settled offline sale and fdatasyncs it, like [`CallLog::append`].
    pub fn append_offline_sale(
        &mut self,
        now: UnixMillis,
        terminal: TerminalId,
        seq: Seq,
        sale: &OfflineCodeSale,
    ) -> io::Result<()> {
        self.append_payload(now, &encode_offline_sale(terminal, seq, sale))
    }

    fn append_payload(&mut self, now: UnixMillis, payload: &[u8]) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "payment call log: an earlier append failed and could not be undone",
            ));
        }
        let mut body = now.0.to_le_bytes().to_vec();
        body.extend_from_slice(payload);
        if body.len() > MAX_RECORD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "order call too large for the payment call log",
            ));
        }
        let mut record = (body.len() as u32).to_le_bytes().to_vec();
        record.extend_from_slice(&check_of(&body));
        record.extend_from_slice(&body);
        let written = self
            .file
            .write_all(&record)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += record.len() as u64;
                Ok(())
            }
            Err(e) => {
                let undone = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.seek(SeekFrom::Start(self.len)).map(drop));
                if undone.is_err() {
                    self.broken = true;
                }
                Err(e)
            }
        }
    }
}

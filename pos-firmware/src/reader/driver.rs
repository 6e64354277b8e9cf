//! [`Mfrc522Reader`]: the [`MifareReader`] on a real MFRC522, through the `mfrc522` 0.8 crate,
//! with the crate's gaps closed here:
//! - every wait is bounded: the SPI device is a [`BudgetedSpi`], so the crate's unbounded
//!   polling loops (`reset`, `transceive`, `mf_authenticate`) end with an SPI error;
//! - the chip's version is checked before `init` (a dead bus reads 0x00/0xFF);
//! - select is our own REQA + anticollision/select over the crate's public `transceive`: it
//!   checks BCC and CRC, refuses a cascade beyond level 3 instead of panicking, and never wakes
//!   a halted card (REQA, not WUPA); a card still selected from a session that was never
//!   released (a read garbled mid-session) takes the first REQA as a protocol error and drops
//!   to IDLE without answering, so after such a session a silent REQA is sent once more;
//! - authentication of a 7-byte UID uses its last 4 bytes (the crate passes the first 4);
//! - READ and WRITE are our own over `transceive`: the 4-bit ACK of both WRITE phases is
//!   checked (the crate's `mf_write` takes a NAK for success), a NAK to READ is reported as a
//!   NAK, and WRITE failures are split into not-written / maybe-written.

use ::mfrc522::comm::blocking::spi::{DummyDelay, SpiInterface};
use ::mfrc522::{Error as DriverError, FifoData, GenericUid, Initialized, Mfrc522, Uid};
use embedded_hal::spi::SpiDevice;
use shared::CardUid;

use super::budget::{Budget, BudgetUsage, BudgetedSpi, BudgetedSpiError};
use super::crc::{crc_a, has_valid_crc_a};
use super::{Block, CardIoError, MifareReader, SectorKey, TappedCard, WriteError};

/// VersionReg values of genuine NXP MFRC522 chips (v1.0, v2.0).
pub const GENUINE_MFRC522_VERSIONS: [u8; 2] = [0x91, 0x92];
/// VersionReg values of register-compatible clones seen on cheap modules (Fudan FM17522 0x88,
/// FM17522E 0xB2). Accepted only with [`VersionPolicy::AllowKnownClones`]: they work with this
/// driver as far as is known, but have not been qualified on our tills.
pub const KNOWN_CLONE_VERSIONS: [u8; 2] = [0x88, 0xB2];
/// VersionReg address.
const VERSION_REG: u8 = 0x37;
/// TxControlReg: its two low bits drive the antenna pins TX1/TX2 (on after init).
const TX_CONTROL_REG: u8 = 0x14;
/// Both antenna drivers on.
const ANTENNA_ON_BITS: u8 = 0x03;
/// Status2Reg address and its MFCrypto1On bit.
const STATUS2_REG: u8 = 0x08;
const MF_CRYPTO1_ON: u8 = 0x08;
/// Cascade levels of ISO/IEC 14443-3 (UIDs of 4, 7, 10 bytes).
const MAX_CASCADE_LEVELS: usize = 3;
const SELECT_COMMANDS: [u8; MAX_CASCADE_LEVELS] = [0x93, 0x95, 0x97];
const REQA: u8 = 0x26;
/// ISO 14443-3 WUPA: like REQA, but halted cards answer too.
const WUPA: u8 = 0x52;
/// Bits of the short REQA frame.
const SHORT_FRAME_BITS: u8 = 7;
/// NVB of an anticollision frame with no UID bits known.
const NVB_ANTICOLLISION: u8 = 0x20;
/// NVB of a SELECT with the whole cascade part (7 bytes).
const NVB_SELECT: u8 = 0x70;
const SAK_UID_INCOMPLETE: u8 = 0x04;
const CASCADE_TAG: u8 = 0x88;
const MF_READ: u8 = 0x30;
const MF_WRITE: u8 = 0xA0;
const MIFARE_ACK: u8 = 0x0A;
/// Bits of a Mifare ACK/NAK.
const ACK_BITS: usize = 4;

/// Which chip versions the reader accepts at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionPolicy {
    /// Only [`GENUINE_MFRC522_VERSIONS`].
    GenuineOnly,
    /// Also [`KNOWN_CLONE_VERSIONS`].
    AllowKnownClones,
}

/// How a reader is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderOptions {
    pub version_policy: VersionPolicy,
    /// The limits of each operation.
    pub budget: Budget,
}

impl ReaderOptions {
    /// Real hardware: genuine chips, transfer and wall-clock limits.
    pub const PRODUCTION: ReaderOptions = ReaderOptions {
        version_policy: VersionPolicy::GenuineOnly,
        budget: Budget::PRODUCTION,
    };
    /// The emulator: deterministic transfer limits only.
    pub const EMULATOR: ReaderOptions = ReaderOptions {
        version_policy: VersionPolicy::GenuineOnly,
        budget: Budget::TRANSFERS_ONLY,
    };
}

/// Why the reader could not be brought up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReaderInitError {
    #[error("no MFRC522 answers on the SPI bus (VersionReg reads {0:#04x})")]
    NoChip(u8),
    #[error("VersionReg {0:#04x} is not an MFRC522 this till supports")]
    UnsupportedVersion(u8),
    #[error("VersionReg {0:#04x} is an MFRC522 clone; the version policy refuses clones")]
    CloneRefused(u8),
    #[error("SPI failure while talking to the reader: {0}")]
    Spi(String),
    #[error("reader initialisation failed: {0}")]
    Init(String),
}

type Driver<SPI> = Mfrc522<SpiInterface<BudgetedSpi<SPI>, DummyDelay>, Initialized>;
type DriverResult<T, SPI> =
    Result<T, DriverError<BudgetedSpiError<<SPI as embedded_hal::spi::ErrorType>::Error>>>;

/// A Mifare Classic reader on an MFRC522 behind `SPI`.
pub struct Mfrc522Reader<SPI: SpiDevice> {
    driver: Driver<SPI>,
    spi: BudgetedSpi<SPI>,
    budget: Budget,
    version: u8,
    /// A card was selected and not released since: it may still be ACTIVE or AUTHENTICATED,
    /// where it ignores REQA (and falls back to IDLE).
    session_open: bool,
}

impl<SPI: SpiDevice> Mfrc522Reader<SPI> {
    /// Checks the chip's version, then initialises it (soft reset, timer, antenna on).
    pub fn new(spi: SPI, options: ReaderOptions) -> Result<Self, ReaderInitError> {
        let budgeted = BudgetedSpi::new(spi, options.budget);
        let version = budgeted
            .read_register(VERSION_REG)
            .map_err(|e| ReaderInitError::Spi(e.to_string()))?;
        check_version(version, options.version_policy)?;
        let driver = Mfrc522::new(SpiInterface::new(budgeted.clone()))
            .init()
            .map_err(|e| ReaderInitError::Init(describe(&e)))?;
        Ok(Mfrc522Reader {
            driver,
            spi: budgeted,
            budget: options.budget,
            version,
            session_open: false,
        })
    }

    /// The VersionReg value seen at construction.
    pub fn chip_version(&self) -> u8 {
        self.version
    }

    /// Checks that the chip is still the one set up at start: it answers with the same
    /// VersionReg and its antenna drivers are still on. A chip that lost power or was reset
    /// behind our back (brown-out, loose cable) fails this even though it answers: its
    /// registers are back at their power-on values with the antenna off, so it would never find
    /// a card. The device re-opens the reader when this fails.
    pub fn check_chip(&self) -> Result<(), CardIoError> {
        let version = self
            .spi
            .probe_register(VERSION_REG)
            .map_err(|e| CardIoError::Reader(e.to_string()))?;
        if version != self.version {
            return Err(CardIoError::Reader(format!(
                "the reader stopped answering (VersionReg {version:#04x}, was {:#04x})",
                self.version
            )));
        }
        let tx_control = self
            .spi
            .probe_register(TX_CONTROL_REG)
            .map_err(|e| CardIoError::Reader(e.to_string()))?;
        if tx_control & ANTENNA_ON_BITS != ANTENNA_ON_BITS {
            return Err(CardIoError::Reader(format!(
                "the reader was reset: its antenna is off (TxControlReg {tx_control:#04x})"
            )));
        }
        Ok(())
    }

    /// What the current or last operation used of its budget.
    pub fn last_operation_usage(&self) -> BudgetUsage {
        self.spi.usage()
    }

    fn begin(&self) -> Result<(), CardIoError> {
        self.spi
            .begin_operation(self.budget)
            .map_err(|e| CardIoError::Reader(e.to_string()))
    }

    /// Maps a driver error; any failure that is not the SPI itself is first checked against a
    /// dead chip by reading VersionReg once.
    fn card_error(&self, error: DriverError<BudgetedSpiError<SPI::Error>>) -> CardIoError {
        if let DriverError::Comm(e) = &error {
            return CardIoError::Reader(e.to_string());
        }
        match self.spi.probe_register(VERSION_REG) {
            Ok(version) if version == self.version => map_card_error(error),
            Ok(version) => CardIoError::Reader(format!(
                "the reader stopped answering (VersionReg {version:#04x})"
            )),
            Err(e) => CardIoError::Reader(e.to_string()),
        }
    }

    fn transceive<const RX: usize>(
        &mut self,
        frame: &[u8],
        last_bits: u8,
    ) -> Result<FifoData<RX>, CardIoError> {
        let result: DriverResult<FifoData<RX>, SPI> = self.driver.transceive(frame, last_bits, 0);
        result.map_err(|e| self.card_error(e))
    }

    /// One cascade level: anticollision (no bits known: one card expected) then SELECT.
    /// Returns the 5 bytes (4 UID/CT bytes + BCC) and the SAK.
    fn select_level(&mut self, select_command: u8) -> Result<([u8; 5], u8), CardIoError> {
        let part = self.transceive::<5>(&[select_command, NVB_ANTICOLLISION], 0)?;
        if part.valid_bytes != 5 || part.valid_bits != 0 {
            return Err(CardIoError::Garbled("short anticollision answer"));
        }
        let uid_part = part.buffer;
        if uid_part[..4].iter().fold(0, |bcc, b| bcc ^ b) != uid_part[4] {
            return Err(CardIoError::Garbled("bad BCC in the UID"));
        }
        let mut select = [0u8; 9];
        select[0] = select_command;
        select[1] = NVB_SELECT;
        select[2..7].copy_from_slice(&uid_part);
        let crc = crc_a(&select[..7]);
        select[7..].copy_from_slice(&crc);
        let sak = self.transceive::<3>(&select, 0)?;
        if sak.valid_bytes != 3 || sak.valid_bits != 0 || !has_valid_crc_a(&sak.buffer) {
            return Err(CardIoError::Garbled("bad SAK"));
        }
        Ok((uid_part, sak.buffer[0]))
    }

    /// `command` (REQA or WUPA): the ATQA of a card that answered, `None` when none did.
    fn request(&mut self, command: u8) -> Result<Option<FifoData<2>>, CardIoError> {
        let atqa: DriverResult<FifoData<2>, SPI> =
            self.driver.transceive(&[command], SHORT_FRAME_BITS, 0);
        match atqa {
            Ok(atqa) => Ok(Some(atqa)),
            Err(DriverError::Timeout) => Ok(None),
            Err(e) => Err(self.card_error(e)),
        }
    }

    /// `command` is REQA (idle cards only) or WUPA (halted ones too).
    fn select_card(&mut self, command: u8) -> Result<Option<TappedCard>, CardIoError> {
        // A previous session may have left Crypto1 on; REQA must go out in plain text.
        self.driver.stop_crypto1().map_err(|e| self.card_error(e))?;
        let atqa = match self.request(command)? {
            Some(atqa) => atqa,
            // The card of an unreleased session took that request as an error and is IDLE now
            // (ISO/IEC 14443-3): ask once more, within a fresh budget.
            None if std::mem::take(&mut self.session_open) => {
                self.begin()?;
                match self.request(command)? {
                    Some(atqa) => atqa,
                    None => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        if atqa.valid_bytes != 2 || atqa.valid_bits != 0 {
            return Err(CardIoError::Garbled("bad ATQA"));
        }
        if (atqa.buffer[0] & 0x1F).count_ones() != 1 {
            return Err(CardIoError::Garbled("proprietary anticollision"));
        }
        let mut uid = Vec::with_capacity(10);
        for select_command in SELECT_COMMANDS {
            let (part, sak) = self.select_level(select_command)?;
            if sak & SAK_UID_INCOMPLETE == 0 {
                uid.extend_from_slice(&part[..4]);
                let uid = CardUid::new(&uid).map_err(|_| CardIoError::Garbled("UID length"))?;
                return Ok(Some(TappedCard { uid, sak }));
            }
            if part[0] != CASCADE_TAG {
                return Err(CardIoError::Garbled("cascade without the cascade tag"));
            }
            uid.extend_from_slice(&part[1..4]);
        }
        Err(CardIoError::Garbled("UID longer than three cascade levels"))
    }
}

fn check_version(version: u8, policy: VersionPolicy) -> Result<(), ReaderInitError> {
    if GENUINE_MFRC522_VERSIONS.contains(&version) {
        Ok(())
    } else if KNOWN_CLONE_VERSIONS.contains(&version) {
        match policy {
            VersionPolicy::AllowKnownClones => Ok(()),
            VersionPolicy::GenuineOnly => Err(ReaderInitError::CloneRefused(version)),
        }
    } else if version == 0x00 || version == 0xFF {
        Err(ReaderInitError::NoChip(version))
    } else {
        Err(ReaderInitError::UnsupportedVersion(version))
    }
}

/// The UID bytes Mifare Classic authentication uses: the last four (NXP AN10927; for a 7-byte
/// UID the cascade level 2 part).
pub fn auth_uid_bytes(uid: &CardUid) -> [u8; 4] {
    let bytes = uid.as_bytes();
    let mut last4 = [0u8; 4];
    if let Some(tail) = bytes.len().checked_sub(4).map(|start| &bytes[start..]) {
        last4.copy_from_slice(tail);
    }
    last4
}

fn describe<E: core::fmt::Display>(error: &DriverError<E>) -> String {
    match error {
        DriverError::Comm(e) => e.to_string(),
        other => format!("{}", map_card_error_ref(other)),
    }
}

fn map_card_error<E: core::fmt::Display>(error: DriverError<E>) -> CardIoError {
    map_card_error_ref(&error)
}

fn map_card_error_ref<E: core::fmt::Display>(error: &DriverError<E>) -> CardIoError {
    match error {
        DriverError::Timeout => CardIoError::NoCard,
        DriverError::Comm(e) => CardIoError::Reader(e.to_string()),
        DriverError::Crc => CardIoError::Garbled("bad CRC"),
        DriverError::Parity => CardIoError::Garbled("parity error"),
        DriverError::Collision => CardIoError::Garbled("collision: more than one card"),
        DriverError::IncompleteFrame => CardIoError::Garbled("incomplete frame"),
        DriverError::Bcc => CardIoError::Garbled("bad BCC"),
        DriverError::NoRoom => CardIoError::Garbled("answer longer than expected"),
        DriverError::Proprietary => CardIoError::Garbled("proprietary anticollision"),
        DriverError::Protocol => CardIoError::Garbled("protocol error"),
        DriverError::Nak => CardIoError::Garbled("unexpected answer"),
        DriverError::BufferOverflow => CardIoError::Reader("FIFO overflow".into()),
        DriverError::Overheating => CardIoError::Reader("chip overheated".into()),
        DriverError::Wr => CardIoError::Reader("FIFO written at the wrong time".into()),
    }
}

/// The answer is a 4-bit ACK; a 4-bit NAK keeps its code.
fn expect_ack(answer: &FifoData<1>) -> Result<(), CardIoError> {
    if answer.valid_bytes != 1 || answer.valid_bits != ACK_BITS {
        return Err(CardIoError::Garbled("expected a 4-bit ACK"));
    }
    match answer.buffer[0] & 0x0F {
        MIFARE_ACK => Ok(()),
        nak => Err(CardIoError::Nak(nak)),
    }
}

impl<SPI: SpiDevice> MifareReader for Mfrc522Reader<SPI> {
    fn select(&mut self) -> Result<Option<TappedCard>, CardIoError> {
        self.begin()?;
        let selected = self.select_card(REQA)?;
        self.session_open = selected.is_some();
        Ok(selected)
    }

    fn wake(&mut self) -> Result<Option<TappedCard>, CardIoError> {
        self.begin()?;
        let selected = self.select_card(WUPA)?;
        self.session_open = selected.is_some();
        Ok(selected)
    }

    fn authenticate(
        &mut self,
        card: &TappedCard,
        block: u8,
        key: &SectorKey,
    ) -> Result<(), CardIoError> {
        self.begin()?;
        // The crate passes the first 4 UID bytes of a 7-byte UID; hand it the right 4.
        let uid = Uid::Single(GenericUid::new(auth_uid_bytes(&card.uid), card.sak));
        match self.driver.mf_authenticate(&uid, block, key) {
            Ok(()) => {}
            // The card stays silent after a wrong key; the chip's timer fires.
            Err(DriverError::Timeout) => return Err(CardIoError::AuthFailed),
            Err(e) => return Err(self.card_error(e)),
        }
        // The crate takes IdleIRq for success without looking at MFCrypto1On.
        let status2 = self
            .spi
            .read_register(STATUS2_REG)
            .map_err(|e| CardIoError::Reader(e.to_string()))?;
        if status2 & MF_CRYPTO1_ON == 0 {
            return Err(CardIoError::AuthFailed);
        }
        Ok(())
    }

    fn read_block(&mut self, block: u8) -> Result<Block, CardIoError> {
        self.begin()?;
        let mut read = [MF_READ, block, 0, 0];
        let crc = crc_a(&read[..2]);
        read[2..].copy_from_slice(&crc);
        let answer = self.transceive::<18>(&read, 0)?;
        if answer.valid_bytes == 1 && answer.valid_bits == ACK_BITS {
            return Err(CardIoError::Nak(answer.buffer[0] & 0x0F));
        }
        if answer.valid_bytes != 18 || answer.valid_bits != 0 {
            return Err(CardIoError::Garbled("short block"));
        }
        if !has_valid_crc_a(&answer.buffer) {
            return Err(CardIoError::Garbled("bad CRC"));
        }
        let mut data = [0u8; 16];
        data.copy_from_slice(&answer.buffer[..16]);
        Ok(data)
    }

    fn write_block(&mut self, block: u8, data: &Block) -> Result<(), WriteError> {
        self.begin().map_err(WriteError::NotWritten)?;
        let mut command = [MF_WRITE, block, 0, 0];
        let crc = crc_a(&command[..2]);
        command[2..].copy_from_slice(&crc);
        let answer = self
            .transceive::<1>(&command, 0)
            .map_err(WriteError::NotWritten)?;
        expect_ack(&answer).map_err(WriteError::NotWritten)?;
        // From here on the card may have stored the data: every failure is "maybe".
        let mut frame = [0u8; 18];
        frame[..16].copy_from_slice(data);
        let crc = crc_a(data);
        frame[16..].copy_from_slice(&crc);
        let answer = self
            .transceive::<1>(&frame, 0)
            .map_err(WriteError::MaybeWritten)?;
        expect_ack(&answer).map_err(WriteError::MaybeWritten)
    }

    fn release(&mut self) -> Result<(), CardIoError> {
        self.session_open = false;
        self.begin()?;
        let halted = self.driver.hlta().map_err(|e| match e {
            DriverError::Nak => CardIoError::Garbled("the card answered HLTA"),
            other => self.card_error(other),
        });
        let stopped = self.driver.stop_crypto1().map_err(|e| self.card_error(e));
        halted.and(stopped)
    }
}

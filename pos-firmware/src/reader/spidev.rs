//! Opening the real reader: an MFRC522 on a Linux spidev device (e.g. `/dev/spidev0.0`), SPI
//! mode 0, [`SPI_CLOCK_HZ`], with an optional reset line (NRSTPD) on a GPIO character device.
//! With the line, the chip gets a hard reset pulse before start (a chip wedged by a brown-out
//! only recovers this way); without it the pin must be tied high and the driver's SoftReset is
//! all there is. Cannot run without the hardware; the emulator covers the driver path in tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use embedded_hal::digital::OutputPin;
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::{CdevPin, SpidevDevice};

use super::driver::{Mfrc522Reader, ReaderInitError, ReaderOptions};
use super::{Block, CardIoError, MifareReader, SectorKey, TappedCard, WriteError};

/// SPI clock for the MFRC522 (the chip allows up to 10 MHz; 1 MHz is robust on long wires).
pub const SPI_CLOCK_HZ: u32 = 1_000_000;
/// Where the reader usually is on the till's board.
pub const DEFAULT_SPIDEV_PATH: &str = "/dev/spidev0.0";
/// Bits per SPI word.
const SPI_BITS_PER_WORD: u8 = 8;
/// How long the reset line is held low (the datasheet asks for more than 100 ns).
pub const RESET_PULSE_MS: u64 = 1;
/// How long the chip needs after reset before it answers (oscillator start-up; the datasheet's
/// worst case is well under this).
pub const RESET_SETTLE_MS: u64 = 50;
/// The name the till gives its GPIO request (shown by `gpioinfo`).
const RESET_CONSUMER: &str = "campus-pos-mfrc522-reset";

/// The MFRC522's reset pin on a GPIO character device, e.g. `/dev/gpiochip0` line 25.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetLine {
    pub chip: PathBuf,
    pub line: u32,
}

/// The real reader: the driver on spidev, and the reset line held high while it runs.
pub struct SpidevReader {
    pub reader: Mfrc522Reader<SpidevDevice>,
    /// Kept so that the line stays requested (and high) for as long as the reader is used.
    pub reset: Option<CdevPin>,
}

impl SpidevReader {
    /// See [`Mfrc522Reader::check_chip`].
    pub fn check_chip(&self) -> Result<(), CardIoError> {
        self.reader.check_chip()
    }
}

impl MifareReader for SpidevReader {
    fn select(&mut self) -> Result<Option<TappedCard>, CardIoError> {
        self.reader.select()
    }
    fn wake(&mut self) -> Result<Option<TappedCard>, CardIoError> {
        self.reader.wake()
    }
    fn authenticate(
        &mut self,
        card: &TappedCard,
        block: u8,
        key: &SectorKey,
    ) -> Result<(), CardIoError> {
        self.reader.authenticate(card, block, key)
    }
    fn read_block(&mut self, block: u8) -> Result<Block, CardIoError> {
        self.reader.read_block(block)
    }
    fn write_block(&mut self, block: u8, data: &Block) -> Result<(), WriteError> {
        self.reader.write_block(block, data)
    }
    fn release(&mut self) -> Result<(), CardIoError> {
        self.reader.release()
    }
}

/// Why the real reader could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenReaderError {
    #[error("cannot open the SPI device {path}: {source}")]
    Open {
        path: String,
        source: linux_embedded_hal::SPIError,
    },
    #[error("cannot configure the SPI device {path}: {source}")]
    Configure {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot drive the reset line {line} of {chip}: {detail}")]
    Reset {
        chip: String,
        line: u32,
        detail: String,
    },
    #[error("the reader on {path} is not usable: {source}")]
    Reader {
        path: String,
        source: ReaderInitError,
    },
}

/// Pulses the reset line low, then holds it high; returns the held line.
fn hard_reset(line: &ResetLine) -> Result<CdevPin, OpenReaderError> {
    let error = |detail: String| OpenReaderError::Reset {
        chip: line.chip.display().to_string(),
        line: line.line,
        detail,
    };
    let mut chip = Chip::new(&line.chip).map_err(|e| error(e.to_string()))?;
    let handle = chip
        .get_line(line.line)
        .and_then(|l| l.request(LineRequestFlags::OUTPUT, 1, RESET_CONSUMER))
        .map_err(|e| error(e.to_string()))?;
    let mut pin = CdevPin::new(handle).map_err(|e| error(e.to_string()))?;
    pin.set_low().map_err(|e| error(e.to_string()))?;
    std::thread::sleep(Duration::from_millis(RESET_PULSE_MS));
    pin.set_high().map_err(|e| error(e.to_string()))?;
    std::thread::sleep(Duration::from_millis(RESET_SETTLE_MS));
    Ok(pin)
}

/// Opens and initialises the MFRC522 on `path` with the production limits, after a hard reset
/// through `reset` when the board wires one.
pub fn open_reader(
    path: &Path,
    reset: Option<&ResetLine>,
) -> Result<SpidevReader, OpenReaderError> {
    let reset = reset.map(hard_reset).transpose()?;
    let shown = path.display().to_string();
    let mut device = SpidevDevice::open(path).map_err(|source| OpenReaderError::Open {
        path: shown.clone(),
        source,
    })?;
    let options = SpidevOptions::new()
        .bits_per_word(SPI_BITS_PER_WORD)
        .max_speed_hz(SPI_CLOCK_HZ)
        .mode(SpiModeFlags::SPI_MODE_0)
        .build();
    device
        .configure(&options)
        .map_err(|source| OpenReaderError::Configure {
            path: shown.clone(),
            source,
        })?;
    let reader = Mfrc522Reader::new(device, ReaderOptions::PRODUCTION).map_err(|source| {
        OpenReaderError::Reader {
            path: shown,
            source,
        }
    })?;
    Ok(SpidevReader { reader, reset })
}

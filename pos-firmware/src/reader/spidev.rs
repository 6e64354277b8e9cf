//! Opening the real reader: an MFRC522 on a Linux spidev device (e.g. `/dev/spidev0.0`), SPI
//! mode 0, [`SPI_CLOCK_HZ`]. The chip's reset pin is expected to be tied high (or driven by
//! the board); the driver resets the chip by software (SoftReset) at start. Cannot run without
//! the hardware; the emulator covers the driver path in tests.

use std::path::Path;

use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::SpidevDevice;

use super::driver::{Mfrc522Reader, ReaderInitError, ReaderOptions};

/// SPI clock for the MFRC522 (the chip allows up to 10 MHz; 1 MHz is robust on long wires).
pub const SPI_CLOCK_HZ: u32 = 1_000_000;
/// Where the reader usually is on the till's board.
pub const DEFAULT_SPIDEV_PATH: &str = "/dev/spidev0.0";
/// Bits per SPI word.
const SPI_BITS_PER_WORD: u8 = 8;

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
    #[error("the reader on {path} is not usable: {source}")]
    Reader {
        path: String,
        source: ReaderInitError,
    },
}

/// Opens and initialises the MFRC522 on `path` with the production limits.
pub fn open_reader(path: &Path) -> Result<Mfrc522Reader<SpidevDevice>, OpenReaderError> {
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
    Mfrc522Reader::new(device, ReaderOptions::PRODUCTION).map_err(|source| {
        OpenReaderError::Reader {
            path: shown,
            source,
        }
    })
}

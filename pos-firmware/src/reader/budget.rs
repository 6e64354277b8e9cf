//! A budget on SPI traffic, so that no reader operation can hang. The `mfrc522` 0.8 driver polls
//! the chip in loops that end only when the chip says so (`reset`, `transceive`,
//! `mf_authenticate`); a dead or unplugged reader never says so. [`BudgetedSpi`] wraps the SPI
//! device and fails every transfer once the current operation has used its transfer budget or
//! passed its deadline, which turns each of those loops into a prompt `Error::Comm`.
//!
//! The wrapper is a cheap clone around shared state: one clone goes into the driver, the
//! [`super::driver::Mfrc522Reader`] keeps another to start each operation's budget, read the
//! counters, and read a register directly (the crate has no public register read).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use embedded_hal::spi::{ErrorKind, ErrorType, Operation, SpiDevice};

/// SPI transactions one reader operation may use. A healthy exchange with a card takes about a
/// dozen per frame plus the polls while the chip's 25 ms timer runs (about 1 000 at 1 MHz);
/// a write (two frames) stays well below this.
pub const MAX_SPI_TRANSFERS_PER_OPERATION: u32 = 5_000;
/// Wall-clock limit of one reader operation on real hardware, whatever the transfer count.
pub const OPERATION_DEADLINE_MS: u64 = 300;

/// The limits of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Transactions allowed before every further transfer fails.
    pub max_transfers: u32,
    /// Wall-clock deadline from the start of the operation; `None` for deterministic tests.
    pub deadline: Option<Duration>,
}

impl Budget {
    /// The limits used on real hardware.
    pub const PRODUCTION: Budget = Budget {
        max_transfers: MAX_SPI_TRANSFERS_PER_OPERATION,
        deadline: Some(Duration::from_millis(OPERATION_DEADLINE_MS)),
    };
    /// Transfer count only: deterministic, for the emulator.
    pub const TRANSFERS_ONLY: Budget = Budget {
        max_transfers: MAX_SPI_TRANSFERS_PER_OPERATION,
        deadline: None,
    };
}

/// What the current (or last) operation used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BudgetUsage {
    /// Transactions passed to the device.
    pub transfers_used: u32,
    /// Transactions refused because the budget was spent.
    pub transfers_refused: u32,
    /// The limit the operation ran under.
    pub max_transfers: u32,
    /// Single-register probes made outside the budget (see [`BudgetedSpi::probe_register`]).
    pub probes: u32,
}

/// Why a budgeted transfer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetedSpiError<E: core::fmt::Debug> {
    /// The operation used all its transfers: the chip never finished what it was asked.
    #[error("reader did not finish within {max_transfers} SPI transfers")]
    TransfersExhausted { max_transfers: u32 },
    /// The operation ran past its wall-clock deadline.
    #[error("reader did not finish within {deadline_ms} ms")]
    DeadlinePassed { deadline_ms: u128 },
    /// The SPI device itself failed.
    #[error("SPI device error: {0:?}")]
    Device(E),
    /// A previous panic poisoned the shared state.
    #[error("reader state poisoned by an earlier panic")]
    Poisoned,
}

impl<E: embedded_hal::spi::Error> embedded_hal::spi::Error for BudgetedSpiError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            BudgetedSpiError::Device(e) => e.kind(),
            _ => ErrorKind::Other,
        }
    }
}

struct Meter {
    budget: Budget,
    started: Instant,
    usage: BudgetUsage,
}

struct Shared<SPI> {
    spi: SPI,
    meter: Meter,
}

/// An SPI device that refuses transfers once the current operation's [`Budget`] is spent.
pub struct BudgetedSpi<SPI> {
    shared: Arc<Mutex<Shared<SPI>>>,
}

impl<SPI> Clone for BudgetedSpi<SPI> {
    fn clone(&self) -> Self {
        BudgetedSpi {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<SPI: SpiDevice> BudgetedSpi<SPI> {
    /// Wraps `spi`; the first operation runs under `budget`.
    pub fn new(spi: SPI, budget: Budget) -> Self {
        BudgetedSpi {
            shared: Arc::new(Mutex::new(Shared {
                spi,
                meter: Meter {
                    budget,
                    started: Instant::now(),
                    usage: BudgetUsage {
                        max_transfers: budget.max_transfers,
                        ..BudgetUsage::default()
                    },
                },
            })),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Shared<SPI>>, BudgetedSpiError<SPI::Error>> {
        self.shared.lock().map_err(|_| BudgetedSpiError::Poisoned)
    }

    /// Starts a new operation with a fresh budget.
    pub fn begin_operation(&self, budget: Budget) -> Result<(), BudgetedSpiError<SPI::Error>> {
        let mut shared = self.lock()?;
        shared.meter = Meter {
            budget,
            started: Instant::now(),
            usage: BudgetUsage {
                max_transfers: budget.max_transfers,
                ..BudgetUsage::default()
            },
        };
        Ok(())
    }

    /// What the current operation used so far.
    pub fn usage(&self) -> BudgetUsage {
        self.lock().map(|s| s.meter.usage).unwrap_or_default()
    }

    /// Reads one MFRC522 register directly (counted against the budget).
    pub fn read_register(&self, register: u8) -> Result<u8, BudgetedSpiError<SPI::Error>> {
        let mut buffer = [((register & 0x3F) << 1) | 0x80, 0];
        let mut clone = self.clone();
        clone.transfer_in_place(&mut buffer)?;
        Ok(buffer[1])
    }

    /// Reads one register outside the budget (one transfer, cannot loop): the probe that tells
    /// a dead chip from a card problem after the budget is spent. Counted in `probes`.
    pub fn probe_register(&self, register: u8) -> Result<u8, BudgetedSpiError<SPI::Error>> {
        let mut shared = self.lock()?;
        shared.meter.usage.probes = shared.meter.usage.probes.saturating_add(1);
        let mut buffer = [((register & 0x3F) << 1) | 0x80, 0];
        shared
            .spi
            .transfer_in_place(&mut buffer)
            .map_err(BudgetedSpiError::Device)?;
        Ok(buffer[1])
    }
}

impl<SPI: SpiDevice> ErrorType for BudgetedSpi<SPI> {
    type Error = BudgetedSpiError<SPI::Error>;
}

impl<SPI: SpiDevice> SpiDevice for BudgetedSpi<SPI> {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Self::Error> {
        let mut shared = self.lock()?;
        let meter = &mut shared.meter;
        if meter.usage.transfers_used >= meter.budget.max_transfers {
            meter.usage.transfers_refused = meter.usage.transfers_refused.saturating_add(1);
            return Err(BudgetedSpiError::TransfersExhausted {
                max_transfers: meter.budget.max_transfers,
            });
        }
        if let Some(deadline) = meter.budget.deadline {
            if meter.started.elapsed() > deadline {
                meter.usage.transfers_refused = meter.usage.transfers_refused.saturating_add(1);
                return Err(BudgetedSpiError::DeadlinePassed {
                    deadline_ms: deadline.as_millis(),
                });
            }
        }
        meter.usage.transfers_used += 1;
        shared
            .spi
            .transaction(operations)
            .map_err(BudgetedSpiError::Device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SPI device that accepts everything.
    struct NullSpi;

    impl ErrorType for NullSpi {
        type Error = ErrorKind;
    }

    impl SpiDevice for NullSpi {
        fn transaction(&mut self, _: &mut [Operation<'_, u8>]) -> Result<(), ErrorKind> {
            Ok(())
        }
    }

    const SMALL: Budget = Budget {
        max_transfers: 3,
        deadline: None,
    };

    #[test]
    fn transfers_fail_once_the_budget_is_spent_until_the_next_operation() {
        let mut spi = BudgetedSpi::new(NullSpi, SMALL);
        for _ in 0..3 {
            assert!(spi.write(&[0x02, 0x00]).is_ok());
        }
        assert_eq!(
            spi.write(&[0x02, 0x00]),
            Err(BudgetedSpiError::TransfersExhausted { max_transfers: 3 })
        );
        assert!(spi.read_register(0x37).is_err());
        assert!(
            spi.probe_register(0x37).is_ok(),
            "the probe is outside the budget"
        );
        let usage = spi.usage();
        assert_eq!(
            (usage.transfers_used, usage.transfers_refused, usage.probes),
            (3, 2, 1)
        );
        spi.begin_operation(SMALL).unwrap();
        assert!(spi.write(&[0x02, 0x00]).is_ok());
        assert_eq!(spi.usage().transfers_used, 1);
    }

    #[test]
    fn transfers_fail_after_the_deadline() {
        let budget = Budget {
            max_transfers: 100,
            deadline: Some(Duration::ZERO),
        };
        let mut spi = BudgetedSpi::new(NullSpi, budget);
        std::thread::sleep(Duration::from_millis(1));
        assert!(matches!(
            spi.write(&[0x02, 0x00]),
            Err(BudgetedSpiError::DeadlinePassed { .. })
        ));
    }
}

//! The faults the emulator can inject, each keyed on the index of an operation (the n-th block
//! write, the n-th authentication, the n-th read, counted from 0 since the emulator was made),
//! so a test can enumerate "every block write × every fault" deterministically.

/// The counted kinds of card operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A MFAuthent that reached a selected card.
    Auth,
    /// A READ command that reached an authenticated card.
    Read,
    /// A WRITE command (phase 1) that reached an authenticated card.
    Write,
}

/// What goes wrong during one block write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteFault {
    /// The card leaves before the write command: no answer, block unchanged.
    RemovedBeforeCommand,
    /// The card NAKs the write command (transmission error): block unchanged.
    CommandNak,
    /// The card ACKs the command, then leaves before the data: block unchanged.
    RemovedAfterCommand,
    /// The card stores the data and leaves before its ACK: block holds the new data.
    RemovedAfterData,
    /// The card stores the data and ACKs, but the reader never sees the ACK; the card stays.
    AckLost,
    /// The card NAKs the data phase: block unchanged.
    DataNak,
    /// Power is lost mid-write: the first `new_bytes` bytes are new, the rest old; no ACK and
    /// the card is gone.
    HalfWritten { new_bytes: usize },
    /// The block is stored with corrupted bytes ([`garble`]); with `acked` the card even ACKs
    /// (a weak EEPROM write), else it is gone without an ACK.
    Garbled { acked: bool },
    /// The block is stored, then the reader chip dies before the ACK arrives.
    ReaderDiesAfterData,
}

impl WriteFault {
    /// One of each kind, for exhaustive tests.
    pub const ALL: [WriteFault; 10] = [
        WriteFault::RemovedBeforeCommand,
        WriteFault::CommandNak,
        WriteFault::RemovedAfterCommand,
        WriteFault::RemovedAfterData,
        WriteFault::AckLost,
        WriteFault::DataNak,
        WriteFault::HalfWritten { new_bytes: 7 },
        WriteFault::Garbled { acked: false },
        WriteFault::Garbled { acked: true },
        WriteFault::ReaderDiesAfterData,
    ];
}

/// What goes wrong during one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadFault {
    /// The card leaves before answering.
    Removed,
    /// The answer arrives with a broken CRC.
    CorruptedCrc,
}

/// A fault and the operation it strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Strikes the block write number `write_index`.
    Write { write_index: u32, fault: WriteFault },
    /// The authentication number `auth_index` fails as with a wrong key.
    AuthFails { auth_index: u32 },
    /// Strikes the read number `read_index`.
    Read { read_index: u32, fault: ReadFault },
    /// The reader chip dies just before operation `op` number `index` reaches the card: from
    /// then on every SPI byte reads as `reads_as` (0x00 or 0xFF) and no command completes.
    ReaderDies { op: Op, index: u32, reads_as: u8 },
}

impl Fault {
    fn strikes(&self, op: Op, index: u32) -> bool {
        match *self {
            Fault::Write { write_index, .. } => op == Op::Write && write_index == index,
            Fault::AuthFails { auth_index } => op == Op::Auth && auth_index == index,
            Fault::Read { read_index, .. } => op == Op::Read && read_index == index,
            Fault::ReaderDies {
                op: at, index: i, ..
            } => at == op && i == index,
        }
    }
}

/// XOR applied to the odd bytes of a garbled write.
pub const GARBLE_XOR: u8 = 0x5A;

/// The deterministic corruption of a [`WriteFault::Garbled`] write.
pub fn garble(data: &[u8; 16]) -> [u8; 16] {
    let mut out = *data;
    for byte in out.iter_mut().skip(1).step_by(2) {
        *byte ^= GARBLE_XOR;
    }
    out
}

/// How many operations of each kind reached the card, and SPI transactions the chip saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpCounters {
    pub auths: u32,
    pub reads: u32,
    pub writes: u32,
    /// Cards that completed selection (SAK with a complete UID).
    pub selects: u32,
    /// HLTA commands a card obeyed.
    pub halts: u32,
    pub spi_transactions: u64,
}

impl OpCounters {
    /// Counts one `op` and returns its index.
    pub fn next(&mut self, op: Op) -> u32 {
        let counter = match op {
            Op::Auth => &mut self.auths,
            Op::Read => &mut self.reads,
            Op::Write => &mut self.writes,
        };
        let index = *counter;
        *counter = counter.saturating_add(1);
        index
    }
}

/// The faults waiting for their operation.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    pending: Vec<Fault>,
}

impl FaultPlan {
    /// Adds a fault.
    pub fn inject(&mut self, fault: Fault) {
        self.pending.push(fault);
    }

    /// Removes every pending fault.
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// Faults not yet triggered.
    pub fn pending(&self) -> &[Fault] {
        &self.pending
    }

    /// Takes the first fault striking `op` number `index`.
    pub fn take(&mut self, op: Op, index: u32) -> Option<Fault> {
        let at = self.pending.iter().position(|f| f.strikes(op, index))?;
        Some(self.pending.remove(at))
    }
}

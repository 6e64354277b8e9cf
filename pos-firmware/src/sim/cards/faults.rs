//! The faults the simulator can arm on the emulated chip's next block write ([`WriteFault`]):
//! the simulator's classic tears and one for each of the emulator's write faults, by the names
//! a script's `fault` line uses.

use super::*;

/// A fault for the emulated chip's next block write. The first three are the simulator's
/// classic tears; the others mirror [`emulator::WriteFault`] one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// The card leaves before the write command: the driver sees no ACK, nothing was sent, the
    /// wallet reports a clean refusal (unchanged).
    PulledBeforeWrite,
    /// The card ACKs the write command, then leaves before the data: unchanged, but the driver
    /// cannot know: outcome unknown.
    PulledAfterCommand,
    /// The data reaches the card, which leaves before its ACK: written, outcome unknown.
    PulledAfterWrite,
    /// The card NAKs the write command: unchanged, refused.
    Refused,
    /// The data is stored and ACKed, the reader never sees the ACK; the card stays.
    AckLost,
    /// The card NAKs the data phase: unchanged, but data was sent: outcome unknown.
    DataNak,
    /// Power lost mid-write: the first [`HALF_WRITTEN_NEW_BYTES`] bytes are new; the card is gone.
    HalfWritten,
    /// The block is stored corrupted and the card is gone without an ACK.
    Garbled,
    /// The block is stored corrupted, and the card even ACKs it.
    GarbledAcked,
    /// The data is stored, then the reader chip dies before the ACK (revived at the next tap).
    ReaderDies,
}

impl WriteFault {
    /// Every fault, in the order of the script's documentation.
    pub const ALL: [WriteFault; 10] = [
        WriteFault::PulledBeforeWrite,
        WriteFault::PulledAfterCommand,
        WriteFault::PulledAfterWrite,
        WriteFault::Refused,
        WriteFault::AckLost,
        WriteFault::DataNak,
        WriteFault::HalfWritten,
        WriteFault::Garbled,
        WriteFault::GarbledAcked,
        WriteFault::ReaderDies,
    ];

    /// The name a script's `fault` line uses.
    pub fn name(self) -> &'static str {
        match self {
            WriteFault::PulledBeforeWrite => "pulled-before-write",
            WriteFault::PulledAfterCommand => "pulled-after-command",
            WriteFault::PulledAfterWrite => "pulled-after-write",
            WriteFault::Refused => "refused",
            WriteFault::AckLost => "ack-lost",
            WriteFault::DataNak => "data-nak",
            WriteFault::HalfWritten => "half-written",
            WriteFault::Garbled => "garbled",
            WriteFault::GarbledAcked => "garbled-acked",
            WriteFault::ReaderDies => "reader-dies",
        }
    }

    /// The fault called `name` (see [`WriteFault::name`]).
    pub fn from_name(name: &str) -> Option<WriteFault> {
        WriteFault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// What the emulated chip does.
    pub fn emulated(self) -> emulator::WriteFault {
        use emulator::WriteFault as E;
        match self {
            WriteFault::PulledBeforeWrite => E::RemovedBeforeCommand,
            WriteFault::PulledAfterCommand => E::RemovedAfterCommand,
            WriteFault::PulledAfterWrite => E::RemovedAfterData,
            WriteFault::Refused => E::CommandNak,
            WriteFault::AckLost => E::AckLost,
            WriteFault::DataNak => E::DataNak,
            WriteFault::HalfWritten => E::HalfWritten {
                new_bytes: HALF_WRITTEN_NEW_BYTES,
            },
            WriteFault::Garbled => E::Garbled { acked: false },
            WriteFault::GarbledAcked => E::Garbled { acked: true },
            WriteFault::ReaderDies => E::ReaderDiesAfterData,
        }
    }
}

impl fmt::Display for WriteFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

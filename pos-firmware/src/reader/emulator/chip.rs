//! The emulated MFRC522 chip: the SPI byte protocol (address byte `(reg << 1) | 0x80` to read,
//! `reg << 1` to write, further bytes in the same transaction reading the next address or
//! writing the same register), the registers the `mfrc522` driver touches, the 64-byte FIFO,
//! the CRC coprocessor and the commands Idle, CalcCRC, Transceive, MFAuthent and SoftReset
//! (MFRC522 datasheet rev. 3.9, sections 8 and 9). Frames go to the [`Field`].

use std::collections::VecDeque;

use embedded_hal::spi::Operation;

use super::field::Field;
use super::frame::Frame;
use crate::reader::crc::crc16_reflected;

/// FIFO size of the MFRC522.
pub const FIFO_CAPACITY_BYTES: usize = 64;
/// Number of registers (6-bit address).
const REGISTER_COUNT: usize = 64;
/// Bytes the MFAuthent command takes from the FIFO: command, block, 6 key bytes, 4 UID bytes.
const MF_AUTHENT_FIFO_BYTES: usize = 12;

// Register addresses (datasheet table 20).
const COMMAND_REG: u8 = 0x01;
const COM_IRQ_REG: u8 = 0x04;
const DIV_IRQ_REG: u8 = 0x05;
const ERROR_REG: u8 = 0x06;
const STATUS1_REG: u8 = 0x07;
const STATUS2_REG: u8 = 0x08;
const FIFO_DATA_REG: u8 = 0x09;
const FIFO_LEVEL_REG: u8 = 0x0A;
const CONTROL_REG: u8 = 0x0C;
const BIT_FRAMING_REG: u8 = 0x0D;
const COLL_REG: u8 = 0x0E;
const MODE_REG: u8 = 0x11;
const TX_CONTROL_REG: u8 = 0x14;
const CRC_RESULT_HIGH_REG: u8 = 0x21;
const CRC_RESULT_LOW_REG: u8 = 0x22;
const T_MODE_REG: u8 = 0x2A;
const VERSION_REG: u8 = 0x37;

// Commands (datasheet table 149).
const CMD_IDLE: u8 = 0x0;
const CMD_CALC_CRC: u8 = 0x3;
const CMD_TRANSMIT: u8 = 0x4;
const CMD_NO_CMD_CHANGE: u8 = 0x7;
const CMD_TRANSCEIVE: u8 = 0xC;
const CMD_MF_AUTHENT: u8 = 0xE;
const CMD_SOFT_RESET: u8 = 0xF;

// Bits.
const POWER_DOWN: u8 = 0x10;
const IRQ_SET_BIT: u8 = 0x80;
const TIMER_IRQ: u8 = 0x01;
const ERR_IRQ: u8 = 0x02;
const IDLE_IRQ: u8 = 0x10;
const RX_IRQ: u8 = 0x20;
const TX_IRQ: u8 = 0x40;
const CRC_IRQ: u8 = 0x04;
const PROTOCOL_ERR: u8 = 0x01;
const BUFFER_OVFL_ERR: u8 = 0x10;
const TEMP_ERR: u8 = 0x40;
const MF_CRYPTO1_ON: u8 = 0x08;
const FLUSH_BUFFER: u8 = 0x80;
const START_SEND: u8 = 0x80;
const T_AUTO: u8 = 0x80;
const ANTENNA_BITS: u8 = 0x03;
const COLL_POS_NOT_VALID: u8 = 0x20;
const CRC_READY: u8 = 0x20;

/// Register values after power-on or SoftReset (datasheet section 9.2).
fn reset_registers() -> [u8; REGISTER_COUNT] {
    let mut regs = [0u8; REGISTER_COUNT];
    for (reg, value) in [
        (0x02, 0x80),
        (0x0B, 0x08),
        (0x0C, 0x10),
        (COLL_REG, 0xA0),
        (MODE_REG, 0x3F),
        (TX_CONTROL_REG, 0x80),
        (0x16, 0x10),
        (0x17, 0x84),
        (0x18, 0x84),
        (0x19, 0x4D),
        (0x1C, 0x62),
        (0x1F, 0xEB),
        (0x24, 0x26),
        (0x26, 0x48),
        (0x27, 0x88),
        (0x28, 0x20),
        (0x29, 0x20),
    ] {
        regs[usize::from(reg)] = value;
    }
    regs
}

/// Where the current SPI transaction is in its byte stream.
#[derive(Debug, Clone, Copy)]
enum Stream {
    AddressNext,
    Reading(u8),
    Writing(u8),
    Done,
}

/// The chip's internal state.
#[derive(Debug)]
pub(super) struct Chip {
    regs: [u8; REGISTER_COUNT],
    fifo: VecDeque<u8>,
    command: u8,
    power_down: bool,
    com_irq: u8,
    div_irq: u8,
    error: u8,
    crypto_on: bool,
    rx_last_bits: u8,
    crc_result: u16,
    crc_ready: bool,
    version: u8,
    stream: Stream,
}

impl Chip {
    /// A chip reporting `version` in VersionReg, as after power-on.
    pub fn new(version: u8) -> Chip {
        Chip {
            regs: reset_registers(),
            fifo: VecDeque::with_capacity(FIFO_CAPACITY_BYTES),
            command: CMD_IDLE,
            power_down: false,
            com_irq: 0x14,
            div_irq: 0,
            error: 0,
            crypto_on: false,
            rx_last_bits: 0,
            crc_result: 0xFFFF,
            crc_ready: false,
            version,
            stream: Stream::Done,
        }
    }

    /// The reader's Crypto1 unit is on (Status2Reg MFCrypto1On).
    pub fn crypto_on(&self) -> bool {
        self.crypto_on
    }

    fn soft_reset(&mut self, field: &mut Field) {
        *self = Chip::new(self.version);
        field.set_antenna(false);
    }

    /// Runs one SPI transaction (chip select held low over all `operations`).
    pub fn transaction(&mut self, field: &mut Field, operations: &mut [Operation<'_, u8>]) {
        field.counters.spi_transactions = field.counters.spi_transactions.saturating_add(1);
        self.stream = Stream::AddressNext;
        for operation in operations.iter_mut() {
            match operation {
                Operation::Write(bytes) => {
                    for &byte in bytes.iter() {
                        self.clock_byte(field, byte);
                    }
                }
                Operation::Read(buffer) => {
                    for byte in buffer.iter_mut() {
                        *byte = self.clock_byte(field, 0);
                    }
                }
                Operation::Transfer(read, write) => {
                    for i in 0..read.len().max(write.len()) {
                        let miso = self.clock_byte(field, write.get(i).copied().unwrap_or(0));
                        if let Some(slot) = read.get_mut(i) {
                            *slot = miso;
                        }
                    }
                }
                Operation::TransferInPlace(buffer) => {
                    for byte in buffer.iter_mut() {
                        *byte = self.clock_byte(field, *byte);
                    }
                }
                Operation::DelayNs(_) => {}
            }
        }
        self.stream = Stream::Done;
    }

    /// One byte on the bus: `mosi` in, the returned MISO byte out.
    fn clock_byte(&mut self, field: &mut Field, mosi: u8) -> u8 {
        if let Some(stuck) = field.reader_dead {
            return stuck;
        }
        let address = (mosi >> 1) & 0x3F;
        match self.stream {
            Stream::AddressNext => {
                self.stream = if mosi & 0x80 != 0 {
                    Stream::Reading(address)
                } else {
                    Stream::Writing(address)
                };
                0
            }
            Stream::Reading(register) => {
                let value = self.read_register(register);
                self.stream = if mosi & 0x80 != 0 {
                    Stream::Reading(address)
                } else {
                    Stream::Done
                };
                value
            }
            Stream::Writing(register) => {
                self.write_register(field, register, mosi);
                0
            }
            Stream::Done => 0,
        }
    }

    fn read_register(&mut self, register: u8) -> u8 {
        match register {
            COMMAND_REG => {
                (self.regs[usize::from(COMMAND_REG)] & 0x20)
                    | if self.power_down { POWER_DOWN } else { 0 }
                    | self.command
            }
            COM_IRQ_REG => self.com_irq & 0x7F,
            DIV_IRQ_REG => self.div_irq & 0x7F,
            ERROR_REG => self.error,
            STATUS1_REG => {
                (if self.crc_ready { CRC_READY } else { 0 })
                    | if self.com_irq & 0x7F != 0 { 0x10 } else { 0 }
            }
            STATUS2_REG => {
                (self.regs[usize::from(STATUS2_REG)] & 0xC0)
                    | if self.crypto_on { MF_CRYPTO1_ON } else { 0 }
            }
            FIFO_DATA_REG => self.fifo.pop_front().unwrap_or(0),
            FIFO_LEVEL_REG => u8::try_from(self.fifo.len()).unwrap_or(0x7F) & 0x7F,
            CONTROL_REG => (self.regs[usize::from(CONTROL_REG)] & 0xF8) | self.rx_last_bits,
            COLL_REG => (self.regs[usize::from(COLL_REG)] & 0x80) | COLL_POS_NOT_VALID,
            CRC_RESULT_HIGH_REG => self.crc_result.to_be_bytes()[0],
            CRC_RESULT_LOW_REG => self.crc_result.to_be_bytes()[1],
            VERSION_REG => self.version,
            other => self.regs[usize::from(other & 0x3F)],
        }
    }

    fn write_register(&mut self, field: &mut Field, register: u8, value: u8) {
        match register {
            COMMAND_REG => {
                self.regs[usize::from(COMMAND_REG)] = value & 0x20;
                self.power_down = value & POWER_DOWN != 0;
                let command = value & 0x0F;
                if command != CMD_NO_CMD_CHANGE {
                    self.start_command(field, command);
                }
            }
            COM_IRQ_REG => set_or_clear(&mut self.com_irq, value),
            DIV_IRQ_REG => set_or_clear(&mut self.div_irq, value),
            ERROR_REG | STATUS1_REG | VERSION_REG | CRC_RESULT_HIGH_REG | CRC_RESULT_LOW_REG => {}
            STATUS2_REG => {
                self.regs[usize::from(STATUS2_REG)] = value & 0xC0;
                if value & MF_CRYPTO1_ON == 0 {
                    self.crypto_on = false;
                }
            }
            FIFO_DATA_REG => {
                if self.fifo.len() < FIFO_CAPACITY_BYTES {
                    self.fifo.push_back(value);
                } else {
                    self.error |= BUFFER_OVFL_ERR;
                }
            }
            FIFO_LEVEL_REG => {
                if value & FLUSH_BUFFER != 0 {
                    self.fifo.clear();
                    self.error &= !BUFFER_OVFL_ERR;
                }
            }
            BIT_FRAMING_REG => {
                self.regs[usize::from(BIT_FRAMING_REG)] = value;
                if value & START_SEND != 0 && self.command == CMD_TRANSCEIVE {
                    self.transmit(field, true);
                }
            }
            TX_CONTROL_REG => {
                self.regs[usize::from(TX_CONTROL_REG)] = value;
                field.set_antenna(value & ANTENNA_BITS != 0);
            }
            other => self.regs[usize::from(other & 0x3F)] = value,
        }
    }

    fn start_command(&mut self, field: &mut Field, command: u8) {
        match command {
            CMD_IDLE => self.command = CMD_IDLE,
            CMD_CALC_CRC => {
                self.command = CMD_CALC_CRC;
                let preset = match self.regs[usize::from(MODE_REG)] & 0x03 {
                    0b00 => 0x0000,
                    0b01 => 0x6363,
                    0b10 => 0xA671,
                    _ => 0xFFFF,
                };
                let data: Vec<u8> = self.fifo.drain(..).collect();
                self.crc_result = crc16_reflected(preset, &data);
                self.crc_ready = true;
                self.div_irq |= CRC_IRQ;
            }
            CMD_TRANSCEIVE => {
                self.error &= TEMP_ERR;
                self.command = CMD_TRANSCEIVE;
            }
            CMD_TRANSMIT => {
                self.error &= TEMP_ERR;
                self.command = CMD_TRANSMIT;
                self.transmit(field, false);
                self.command = CMD_IDLE;
                self.com_irq |= IDLE_IRQ;
            }
            CMD_MF_AUTHENT => self.mf_authent(field),
            CMD_SOFT_RESET => self.soft_reset(field),
            // Mem, GenerateRandomID, Receive and the rest are not used by the driver: they
            // are accepted and do nothing observable.
            other => self.command = other,
        }
    }

    /// The timer (started at the end of transmission in TAuto mode) ran out: TimerIRq.
    fn timer_expires(&mut self) {
        if self.regs[usize::from(T_MODE_REG)] & T_AUTO != 0 {
            self.com_irq |= TIMER_IRQ;
        }
    }

    fn transmit(&mut self, field: &mut Field, receive: bool) {
        let framing = self.regs[usize::from(BIT_FRAMING_REG)];
        let bytes: Vec<u8> = self.fifo.drain(..).collect();
        let frame = Frame {
            bytes: &bytes,
            last_bits: framing & 0x07,
            encrypted: self.crypto_on,
        };
        self.com_irq |= TX_IRQ;
        let answer = field.transceive(frame);
        if field.reader_dead.is_some() || !receive {
            return;
        }
        match answer {
            Some(answer) => {
                for byte in answer.bytes {
                    if self.fifo.len() < FIFO_CAPACITY_BYTES {
                        self.fifo.push_back(byte);
                    } else {
                        self.error |= BUFFER_OVFL_ERR;
                    }
                }
                self.rx_last_bits = answer.last_bits & 0x07;
                self.com_irq |= RX_IRQ;
                if self.error & !TEMP_ERR != 0 {
                    self.com_irq |= ERR_IRQ;
                }
            }
            None => self.timer_expires(),
        }
    }

    fn mf_authent(&mut self, field: &mut Field) {
        self.error &= TEMP_ERR;
        self.command = CMD_MF_AUTHENT;
        if self.fifo.len() < MF_AUTHENT_FIFO_BYTES {
            self.error |= PROTOCOL_ERR;
            self.com_irq |= ERR_IRQ | IDLE_IRQ;
            self.command = CMD_IDLE;
            return;
        }
        let mut command = [0u8; MF_AUTHENT_FIFO_BYTES];
        for (slot, byte) in command
            .iter_mut()
            .zip(self.fifo.drain(..MF_AUTHENT_FIFO_BYTES))
        {
            *slot = byte;
        }
        if field.authenticate(&command) {
            self.crypto_on = true;
            self.command = CMD_IDLE;
            self.com_irq |= IDLE_IRQ;
        } else if field.reader_dead.is_none() {
            self.crypto_on = false;
            self.timer_expires();
        }
    }
}

/// ComIrqReg/DivIrqReg write: bit 7 says whether the marked bits are set or cleared.
fn set_or_clear(register: &mut u8, value: u8) {
    if value & IRQ_SET_BIT != 0 {
        *register |= value & 0x7F;
    } else {
        *register &= !(value & 0x7F);
    }
}

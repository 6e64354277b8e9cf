//! The bench's framebuffer: both screens as one PNG file, rewritten after every redraw, so a
//! newcomer without a till can watch the displays in an image viewer (docs/device.md, "A bench
//! without a till"). The encoder is the minimal PNG a viewer needs (8-bit grey, stored deflate
//! blocks, CRC-32 and Adler-32 by hand): the device build carries no image library for it. The
//! file is written beside and renamed over, so a viewer never reads half an image.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::canvas::Canvas;
use super::{PanelOutput, Which};

/// Grey rows between the merchant's screen (top) and the customer's (bottom).
pub const SEPARATOR_PX: u32 = 8;
/// Grey levels: ink, paper, separator.
const INK: u8 = 0;
const PAPER: u8 = 255;
const SEPARATOR: u8 = 160;
/// The largest stored deflate block.
const STORED_BLOCK_MAX: usize = 65_535;

/// Both screens as one picture (merchant above, customer below).
pub struct PngFile {
    path: PathBuf,
    merchant: Option<Canvas>,
    customer: Option<Canvas>,
}

impl PngFile {
    pub fn new(path: &Path) -> PngFile {
        PngFile {
            path: path.to_path_buf(),
            merchant: None,
            customer: None,
        }
    }
}

impl PanelOutput for PngFile {
    fn write(
        &mut self,
        which: Which,
        canvas: &Canvas,
        _rows: std::ops::Range<u32>,
    ) -> std::io::Result<()> {
        let slot = match which {
            Which::Merchant => &mut self.merchant,
            Which::Customer => &mut self.customer,
        };
        *slot = Some(canvas.clone());
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        let (Some(merchant), Some(customer)) = (&self.merchant, &self.customer) else {
            return Ok(());
        };
        let png = encode_screens(merchant, customer);
        let mut partial = self.path.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let written = std::fs::File::create(&partial).and_then(|mut f| f.write_all(&png));
        written
            .and_then(|()| std::fs::rename(&partial, &self.path))
            .map_err(|e| std::io::Error::other(format!("{}: {e}", self.path.display())))
    }
}

/// The two screens stacked (merchant on top) as a PNG.
pub fn encode_screens(merchant: &Canvas, customer: &Canvas) -> Vec<u8> {
    let width = merchant.size().width.max(customer.size().width);
    let mut rows: Vec<Vec<u8>> = Vec::new();
    let grey = |row: &[u8]| -> Vec<u8> {
        let mut line: Vec<u8> = row
            .iter()
            .map(|p| if *p != 0 { INK } else { PAPER })
            .collect();
        line.resize(width as usize, PAPER);
        line
    };
    rows.extend((0..merchant.size().height).map(|y| grey(merchant.row(y))));
    rows.extend((0..SEPARATOR_PX).map(|_| vec![SEPARATOR; width as usize]));
    rows.extend((0..customer.size().height).map(|y| grey(customer.row(y))));
    encode_grey(width, &rows)
}

/// An 8-bit greyscale PNG of `rows` (each `width` bytes).
pub fn encode_grey(width: u32, rows: &[Vec<u8>]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(rows.len() * (width as usize + 1));
    for row in rows {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&(rows.len() as u32).to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit, greyscale, deflate, no filter, no interlace
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = png.len();
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let crc = crc32(&png[start..]);
    png.extend_from_slice(&crc.to_be_bytes());
}

/// `data` as a zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(STORED_BLOCK_MAX).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % MOD;
        b = (b + a) % MOD;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksums_are_the_standard_ones() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }
}

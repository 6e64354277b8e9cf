//! The Linux framebuffer (`/dev/fbN`) as the panels' output: its geometry and pixel format from
//! the fbdev ioctls (`FBIOGET_VSCREENINFO`, `FBIOGET_FSCREENINFO` through `libc`), the canvas
//! rows converted to 1, 16 or 32 bits a pixel ([`PixelFormat::encode_row`], pure and tested) and
//! written with `pwrite` at their place: only the rows a redraw changed, no `mmap`, so a panel
//! that goes away is an error on a write, never a fault in the loop.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::canvas::Canvas;
use super::{PanelOutput, PanelSize, Which};

/// `FBIOGET_VSCREENINFO` and `FBIOGET_FSCREENINFO` (linux/fb.h).
const FBIOGET_VSCREENINFO: u64 = 0x4600;
const FBIOGET_FSCREENINFO: u64 = 0x4602;
/// `visual` values of `fb_fix_screeninfo` (linux/fb.h): monochrome with 1 = black, or 1 = white.
const FB_VISUAL_MONO01: u32 = 0;
const FB_VISUAL_MONO10: u32 = 1;

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FbBitfield {
    offset: u32,
    length: u32,
    msb_right: u32,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FbVarScreeninfo {
    xres: u32,
    yres: u32,
    xres_virtual: u32,
    yres_virtual: u32,
    xoffset: u32,
    yoffset: u32,
    bits_per_pixel: u32,
    grayscale: u32,
    red: FbBitfield,
    green: FbBitfield,
    blue: FbBitfield,
    transp: FbBitfield,
    nonstd: u32,
    activate: u32,
    height: u32,
    width: u32,
    accel_flags: u32,
    // pixclock, the margins, hsync_len, vsync_len, sync, vmode, rotate.
    timings: [u32; 10],
    colorspace: u32,
    reserved: [u32; 4],
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct FbFixScreeninfo {
    id: [u8; 16],
    smem_start: libc::c_ulong,
    smem_len: u32,
    fb_type: u32,
    type_aux: u32,
    visual: u32,
    xpanstep: u16,
    ypanstep: u16,
    ywrapstep: u16,
    line_length: u32,
    mmio_start: libc::c_ulong,
    mmio_len: u32,
    accel: u32,
    capabilities: u16,
    reserved: [u16; 2],
}

/// A channel of a true-colour pixel: where its bits are and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    pub offset: u32,
    pub length: u32,
}

impl Channel {
    fn full(self) -> u32 {
        match self.length {
            0 => 0,
            n if n >= 32 => u32::MAX,
            n => ((1u32 << n) - 1) << self.offset,
        }
    }
}

/// How a framebuffer stores a pixel. Ink is black, paper white (a till's LCD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 1 bit a pixel, most significant bit leftmost; `ink_bit` is the bit value of black.
    Mono { ink_bit: bool },
    /// 16 or 32 bits a pixel, little-endian, channels where the driver says.
    TrueColor {
        bytes: usize,
        red: Channel,
        green: Channel,
        blue: Channel,
        alpha: Channel,
    },
}

impl PixelFormat {
    /// RGB565 (16 bits), the usual small TFT panel.
    pub const RGB565: PixelFormat = PixelFormat::TrueColor {
        bytes: 2,
        red: Channel {
            offset: 11,
            length: 5,
        },
        green: Channel {
            offset: 5,
            length: 6,
        },
        blue: Channel {
            offset: 0,
            length: 5,
        },
        alpha: Channel {
            offset: 0,
            length: 0,
        },
    };
    /// XRGB8888 (32 bits), the desktop's and most HDMI framebuffers'.
    pub const XRGB8888: PixelFormat = PixelFormat::TrueColor {
        bytes: 4,
        red: Channel {
            offset: 16,
            length: 8,
        },
        green: Channel {
            offset: 8,
            length: 8,
        },
        blue: Channel {
            offset: 0,
            length: 8,
        },
        alpha: Channel {
            offset: 24,
            length: 0,
        },
    };

    /// Bits a pixel.
    pub fn bits(&self) -> u32 {
        match self {
            PixelFormat::Mono { .. } => 1,
            PixelFormat::TrueColor { bytes, .. } => *bytes as u32 * 8,
        }
    }

    /// `row` (one byte a pixel, 1 = ink) in this format, appended to `out`. A 1-bit row is
    /// padded to whole bytes with paper.
    pub fn encode_row(&self, row: &[u8], out: &mut Vec<u8>) {
        match *self {
            PixelFormat::Mono { ink_bit } => {
                for chunk in row.chunks(8) {
                    let mut byte = if ink_bit { 0u8 } else { 0xff };
                    for (i, ink) in chunk.iter().enumerate() {
                        if (*ink != 0) == ink_bit {
                            byte |= 0x80 >> i;
                        } else {
                            byte &= !(0x80 >> i);
                        }
                    }
                    out.push(byte);
                }
            }
            PixelFormat::TrueColor {
                bytes,
                red,
                green,
                blue,
                alpha,
            } => {
                let ink = alpha.full();
                let paper = ink | red.full() | green.full() | blue.full();
                let (ink, paper) = (ink.to_le_bytes(), paper.to_le_bytes());
                for pixel in row {
                    let value = if *pixel != 0 { &ink } else { &paper };
                    out.extend_from_slice(&value[..bytes]);
                }
            }
        }
    }
}

/// One open framebuffer device.
pub struct Framebuffer {
    path: PathBuf,
    file: File,
    /// Visible resolution.
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next in the device's memory.
    line_length: u32,
    /// The visible area's place in the virtual screen.
    xoffset: u32,
    yoffset: u32,
    pub format: PixelFormat,
}

impl Framebuffer {
    /// Opens `path` and reads its geometry; a pixel format other than 1, 16 or 32 bits is
    /// refused with the format in the message.
    pub fn open(path: &Path) -> std::io::Result<Framebuffer> {
        let error = |what: String| std::io::Error::other(format!("{}: {what}", path.display()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| error(e.to_string()))?;
        let mut var = FbVarScreeninfo::default();
        // SAFETY: FBIOGET_VSCREENINFO fills a `struct fb_var_screeninfo`, which `var` is
        // (repr(C), same fields); the fd is open for the whole call.
        let got = unsafe { libc::ioctl(file.as_raw_fd(), FBIOGET_VSCREENINFO as _, &mut var) };
        if got != 0 {
            let os = std::io::Error::last_os_error();
            return Err(error(format!(
                "not a framebuffer (FBIOGET_VSCREENINFO: {os})"
            )));
        }
        let mut fix = FbFixScreeninfo {
            id: [0; 16],
            smem_start: 0,
            smem_len: 0,
            fb_type: 0,
            type_aux: 0,
            visual: 0,
            xpanstep: 0,
            ypanstep: 0,
            ywrapstep: 0,
            line_length: 0,
            mmio_start: 0,
            mmio_len: 0,
            accel: 0,
            capabilities: 0,
            reserved: [0; 2],
        };
        // SAFETY: as above, for FBIOGET_FSCREENINFO and `struct fb_fix_screeninfo`.
        let got = unsafe { libc::ioctl(file.as_raw_fd(), FBIOGET_FSCREENINFO as _, &mut fix) };
        if got != 0 {
            let os = std::io::Error::last_os_error();
            return Err(error(format!("FBIOGET_FSCREENINFO: {os}")));
        }
        let channel = |b: FbBitfield| Channel {
            offset: b.offset,
            length: b.length,
        };
        let format = match var.bits_per_pixel {
            1 => PixelFormat::Mono {
                ink_bit: fix.visual != FB_VISUAL_MONO10,
            },
            16 | 32 if fix.visual != FB_VISUAL_MONO01 => PixelFormat::TrueColor {
                bytes: var.bits_per_pixel as usize / 8,
                red: channel(var.red),
                green: channel(var.green),
                blue: channel(var.blue),
                alpha: channel(var.transp),
            },
            bits => {
                return Err(error(format!(
                    "{bits} bits a pixel (visual {}): only 1, 16 and 32 are supported",
                    fix.visual
                )))
            }
        };
        Ok(Framebuffer {
            path: path.to_path_buf(),
            file,
            width: var.xres,
            height: var.yres,
            line_length: fix.line_length,
            xoffset: var.xoffset,
            yoffset: var.yoffset,
            format,
        })
    }

    /// Writes `rows` of `canvas` with its top-left corner at (`x`, `y`) of the visible screen.
    pub fn write_rows(
        &self,
        x: u32,
        y: u32,
        canvas: &Canvas,
        rows: std::ops::Range<u32>,
        scratch: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        let bits = u64::from(self.format.bits());
        for row in rows {
            scratch.clear();
            self.format.encode_row(canvas.row(row), scratch);
            let line = u64::from(self.yoffset + y + row) * u64::from(self.line_length);
            let offset = line + u64::from(self.xoffset + x) * bits / 8;
            self.file
                .write_all_at(scratch, offset)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", self.path.display())))?;
        }
        Ok(())
    }
}

/// Where one screen goes: which framebuffer, and its top-left corner there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub fb: usize,
    pub x: u32,
    pub y: u32,
}

/// The two screens on one framebuffer (as two regions) or on two.
pub struct FbPanels {
    fbs: Vec<Framebuffer>,
    merchant: Placement,
    customer: Placement,
    scratch: Vec<u8>,
}

impl FbPanels {
    /// The merchant's screen on `merchant`, the customer's on `customer` or, without one,
    /// below (or else beside) the merchant's on the same framebuffer.
    pub fn open(
        merchant: &Path,
        customer: Option<&Path>,
        size: PanelSize,
    ) -> std::io::Result<FbPanels> {
        let mut fbs = vec![Framebuffer::open(merchant)?];
        let first = &fbs[0];
        let customer_at = match customer {
            Some(path) => {
                fbs.push(Framebuffer::open(path)?);
                Placement { fb: 1, x: 0, y: 0 }
            }
            None if first.height >= 2 * size.height => Placement {
                fb: 0,
                x: 0,
                y: size.height,
            },
            None if first.width >= 2 * size.width => Placement {
                fb: 0,
                x: size.width,
                y: 0,
            },
            None => {
                return Err(std::io::Error::other(format!(
                    "{} is {}x{}: too small for two {size} screens; give the customer's its own \
                     framebuffer (--customer-fb)",
                    merchant.display(),
                    first.width,
                    first.height
                )))
            }
        };
        for fb in &fbs {
            if fb.width < size.width || fb.height < size.height {
                return Err(std::io::Error::other(format!(
                    "{} is {}x{}: smaller than the {size} panel configured",
                    fb.path.display(),
                    fb.width,
                    fb.height
                )));
            }
        }
        Ok(FbPanels {
            fbs,
            merchant: Placement { fb: 0, x: 0, y: 0 },
            customer: customer_at,
            scratch: Vec::new(),
        })
    }
}

impl PanelOutput for FbPanels {
    fn write(
        &mut self,
        which: Which,
        canvas: &Canvas,
        rows: std::ops::Range<u32>,
    ) -> std::io::Result<()> {
        let at = match which {
            Which::Merchant => self.merchant,
            Which::Customer => self.customer,
        };
        self.fbs[at.fb].write_rows(at.x, at.y, canvas, rows, &mut self.scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mono_row_packs_eight_pixels_a_byte_leftmost_first_padded_with_paper() {
        let row = [1, 0, 0, 0, 0, 0, 0, 1, 1, 1];
        let mut out = Vec::new();
        PixelFormat::Mono { ink_bit: true }.encode_row(&row, &mut out);
        assert_eq!(out, vec![0b1000_0001, 0b1100_0000]);
        out.clear();
        PixelFormat::Mono { ink_bit: false }.encode_row(&row, &mut out);
        assert_eq!(out, vec![0b0111_1110, 0b0011_1111]);
    }

    #[test]
    fn true_colour_rows_are_black_ink_on_white_paper_little_endian() {
        let mut out = Vec::new();
        PixelFormat::RGB565.encode_row(&[1, 0], &mut out);
        assert_eq!(out, vec![0x00, 0x00, 0xff, 0xff]);
        out.clear();
        PixelFormat::XRGB8888.encode_row(&[0, 1], &mut out);
        assert_eq!(out, vec![0xff, 0xff, 0xff, 0x00, 0, 0, 0, 0]);
    }

    #[test]
    fn a_file_that_is_not_a_framebuffer_is_refused_with_its_name() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let error = Framebuffer::open(file.path()).err().unwrap().to_string();
        assert!(error.contains("not a framebuffer"), "{error}");
        assert!(
            error.contains(&file.path().display().to_string()),
            "{error}"
        );
    }
}

//! The script runner's `--qr-png DIR`: each offline QR code the customer's display shows
//! (`Displays.qr`) written as a PNG file, so a phone (or `rqrr`) can scan what the till showed.
//! The picture is the QR's modules, black on white, [`QR_PNG_MODULE_PX`] pixels a module, with
//! the standard quiet zone; the encoder is the bench panel's own minimal PNG writer.

use std::path::{Path, PathBuf};

/// Pixels a side of one QR module in the PNG (a version 3 code is 37 × 8 = 296 px with its
/// quiet zone: big enough for any phone on a monitor).
pub const QR_PNG_MODULE_PX: usize = 8;
/// Modules of light quiet zone around the code (the QR standard's 4).
pub const QR_PNG_QUIET_MODULES: usize = 4;
/// Error correction of the code (M, the level the offline payload is sized for).
const QR_PNG_EC_LEVEL: qrcode::EcLevel = qrcode::EcLevel::M;

/// The grey rows (0 ink, 255 paper) of the QR code of `payload`; `None` if it fits no QR code.
pub fn qr_rows(payload: &str) -> Option<(u32, Vec<Vec<u8>>)> {
    let code =
        qrcode::QrCode::with_error_correction_level(payload.as_bytes(), QR_PNG_EC_LEVEL).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let side = (width + 2 * QR_PNG_QUIET_MODULES) * QR_PNG_MODULE_PX;
    let rows = (0..side)
        .map(|y| {
            (0..side)
                .map(|x| {
                    let (mx, my) = (x / QR_PNG_MODULE_PX, y / QR_PNG_MODULE_PX);
                    let inside = QR_PNG_QUIET_MODULES..QR_PNG_QUIET_MODULES + width;
                    let dark = inside.contains(&mx)
                        && inside.contains(&my)
                        && colors[(my - QR_PNG_QUIET_MODULES) * width + mx - QR_PNG_QUIET_MODULES]
                            == qrcode::Color::Dark;
                    if dark {
                        0
                    } else {
                        255
                    }
                })
                .collect()
        })
        .collect();
    Some((u32::try_from(side).ok()?, rows))
}

/// Writes the QR code of `payload` as `DIR/qr-NNNN.png` (`number`, from 1) and returns the path.
#[cfg(feature = "device")]
pub fn write_qr_png(dir: &Path, number: u32, payload: &str) -> std::io::Result<PathBuf> {
    let (width, rows) = qr_rows(payload).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the payload does not fit a QR code",
        )
    })?;
    let bytes = crate::device::panel::png::encode_grey(width, &rows);
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("qr-{number:04}.png"));
    std::fs::write(&path, bytes)?;
    Ok(path)
}

/// Without the `device` feature there is no PNG encoder in the build: `--qr-png` says so.
#[cfg(not(feature = "device"))]
pub fn write_qr_png(_dir: &Path, _number: u32, _payload: &str) -> std::io::Result<PathBuf> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "--qr-png needs the build's `device` feature (its PNG encoder)",
    ))
}

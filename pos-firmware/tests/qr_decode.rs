//! Every renderer of the offline QR code decodes back to its payload with an independent decoder
//! (`rqrr`), for every payload shape the till can make: the smallest and largest amounts, the
//! first and the largest intent seqs, machine numbers of every width, terminals and keys of any
//! value. The renderers: the device panel's modules (`QrImage`) and its customer canvas, the
//! terminal simulator's half blocks, and the script runner's `--qr-png` picture. It also pins the
//! QR version (3 at error correction M: 29 modules a side), which the panel's and the TUI's room
//! are sized for.

use pos_firmware::device::panel::render::{self, Layout, QrImage};
use pos_firmware::device::panel::{Canvas, PanelSize};
use pos_firmware::sim::script::qr_png::qr_rows;
use pos_firmware::sim::tui::qr::half_block_lines;
use shared::ids::{MachineNumber, Seq, TerminalId};
use shared::qrpay::{QrOrder, TerminalQrKey, QR_PAYLOAD_CHARS};
use shared::Fen;

/// The QR version every payload must fit (the aim is ≤ 5 at error correction M; 55 characters
/// of alphanumeric mode are version 3).
const EXPECTED_VERSION: i16 = 3;
/// Pixels a module when a module matrix is turned into a picture for the decoder.
const MODULE_PX: usize = 4;

/// Every payload shape: amounts of 1 fen to the largest, seqs of 1 to 2^32-1, machine numbers
/// of one to four digits (every value of each met at least once, in 12 combinations), for a
/// small and a large terminal id under two keys.
fn payloads() -> Vec<String> {
    let amounts = [1_u64, 1_250, 99_999, u64::from(u32::MAX)];
    let intents = [1_u64, 4_321, u64::from(u32::MAX)];
    let machines = [1_u16, 58, 999, 9_999];
    let mut out = Vec::new();
    for (terminal, master) in [(1_u64, [0_u8; 32]), (u64::MAX, [0xFF; 32])] {
        let key = TerminalQrKey::derive(&master, TerminalId(terminal));
        for i in 0..12 {
            let order = QrOrder {
                terminal: TerminalId(terminal),
                intent: Seq(intents[i % intents.len()]),
                amount: Fen::new(amounts[i % amounts.len()]),
                machine: MachineNumber::new(machines[(i / 3) % machines.len()]).unwrap(),
                created_at_s: 1_800_000_000,
                valid_for_s: u16::MAX,
            };
            out.push(order.payload(&key).unwrap());
        }
    }
    out
}

/// Decodes the single QR code of a greyscale picture (0 ink, 255 paper).
fn decode(width: usize, height: usize, grey: impl Fn(usize, usize) -> u8) -> String {
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, grey);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the picture");
    grids[0].decode().expect("the QR code decodes").1
}

/// Decodes a module matrix (`true` dark) of `width` modules a side, drawn with a quiet zone.
fn decode_modules(width: usize, dark: &[bool]) -> String {
    let quiet = 4;
    let side = (width + 2 * quiet) * MODULE_PX;
    decode(side, side, |x, y| {
        let (mx, my) = (x / MODULE_PX, y / MODULE_PX);
        let inside = quiet..quiet + width;
        if inside.contains(&mx) && inside.contains(&my) && dark[(my - quiet) * width + mx - quiet] {
            0
        } else {
            255
        }
    })
}

#[test]
fn every_payload_shape_is_a_version_3_code_at_error_correction_m() {
    for payload in payloads() {
        assert_eq!(payload.len(), QR_PAYLOAD_CHARS);
        let code =
            qrcode::QrCode::with_error_correction_level(payload.as_bytes(), qrcode::EcLevel::M)
                .unwrap();
        assert_eq!(code.version(), qrcode::Version::Normal(EXPECTED_VERSION));
        assert_eq!(code.width(), 29);
        let modules = QrImage::encode(payload.as_bytes()).unwrap();
        assert_eq!(modules.width, 29, "the panel encodes at the same version");
    }
}

#[test]
fn the_panels_modules_of_every_payload_decode_back() {
    for payload in payloads() {
        let modules = QrImage::encode(payload.as_bytes()).unwrap();
        assert_eq!(decode_modules(modules.width, &modules.dark), payload);
    }
}

#[test]
fn the_customer_canvas_of_every_panel_size_decodes_back_for_every_payload() {
    let screen = pos_firmware::core::Screen {
        lines: vec!["请刷卡或扫码".to_string(), "¥12.50".to_string()],
    };
    for size in [PanelSize::SMALL, PanelSize::MEDIUM, PanelSize::LARGE] {
        let layout = Layout::new(size);
        for payload in payloads() {
            let qr = QrImage::encode(payload.as_bytes()).unwrap();
            let mut canvas = Canvas::new(size);
            render::draw_customer(&layout, &screen, Some(&qr), &mut canvas);
            let text = decode(size.width as usize, size.height as usize, |x, y| {
                if canvas.is_ink(x as u32, y as u32) {
                    0
                } else {
                    255
                }
            });
            assert_eq!(text, payload, "{size}");
        }
    }
}

#[test]
fn the_terminal_simulators_half_blocks_of_every_payload_decode_back() {
    for payload in payloads() {
        let lines = half_block_lines(&payload).unwrap();
        // Each character is two modules, one above the other: '█' both dark, '▀' the upper,
        // '▄' the lower, ' ' none. The quiet zone is in the lines already.
        let width = lines[0].chars().count();
        let mut dark = Vec::new();
        for line in &lines {
            let chars: Vec<char> = line.chars().collect();
            assert_eq!(chars.len(), width);
            let upper: Vec<bool> = chars.iter().map(|c| matches!(c, '█' | '▀')).collect();
            let lower: Vec<bool> = chars.iter().map(|c| matches!(c, '█' | '▄')).collect();
            assert!(chars.iter().all(|c| matches!(c, '█' | '▀' | '▄' | ' ')));
            dark.push(upper);
            dark.push(lower);
        }
        let side = width * MODULE_PX;
        let text = decode(side, dark.len() * MODULE_PX, |x, y| {
            if dark[y / MODULE_PX][x / MODULE_PX] {
                0
            } else {
                255
            }
        });
        assert_eq!(text, payload);
    }
}

#[test]
fn the_script_runners_png_picture_of_every_payload_decodes_back() {
    for payload in payloads() {
        let (width, rows) = qr_rows(&payload).unwrap();
        let text = decode(width as usize, rows.len(), |x, y| rows[y][x]);
        assert_eq!(text, payload);
    }
}

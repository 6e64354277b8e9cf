//! The panels as a payer and a merchant see them: every screen of a scenario rendered at two
//! panel sizes and compared pixel for pixel with the committed images in `tests/golden/`; every
//! character of every text the till can show has a glyph in the panel's fonts; the customer's
//! QR test pattern decodes back with `rqrr`; the bench's PNG file is a PNG a viewer reads.
//!
//! After a deliberate change of the screens or the rendering, regenerate the images with
//!     UPDATE_GOLDEN=1 cargo test -p pos-firmware --test panel
//! and look at them before committing (docs/device.md, "Golden images").

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pos_firmware::core::{Displays, Screen};
use pos_firmware::device::panel::png::{encode_screens, PngFile};
use pos_firmware::device::panel::render::{
    self, digit_fonts, has_glyph, small_font, text_font, Layout, QrImage,
};
use pos_firmware::device::panel::{Canvas, PanelDisplay, PanelSize, Which, QR_TEST_PAYLOAD};
use pos_firmware::device::DeviceDisplay;

/// The scenario whose screens are the golden images (it shows the most screens).
const SCENARIO: &str = "merchants_day";
/// The two panel sizes rendered.
const SIZES: [PanelSize; 2] = [PanelSize::SMALL, PanelSize::LARGE];
/// Grey rows between two screens in a golden image.
const GAP_PX: u32 = 4;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn screen(text: &str) -> Screen {
    Screen {
        lines: text.split(" | ").map(str::to_string).collect(),
    }
}

/// The distinct merchant and customer screens of the scenario's recorded output, in order.
fn scenario_screens(name: &str) -> (Vec<Screen>, Vec<Screen>) {
    let path = manifest().join(format!("tests/scenarios/{name}.out"));
    let text = std::fs::read_to_string(&path).unwrap();
    let (mut merchant, mut customer) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let Some((_, shown)) = line.split_once("] ") else {
            continue;
        };
        let (list, rest) = if let Some(rest) = shown.strip_prefix("M| ") {
            (&mut merchant, rest)
        } else if let Some(rest) = shown.strip_prefix("C| ") {
            (&mut customer, rest)
        } else {
            continue;
        };
        let screen = screen(rest);
        if !list.contains(&screen) {
            list.push(screen);
        }
    }
    (merchant, customer)
}

/// The screens drawn one below the other, as grey rows (0 ink, 255 paper, 128 the gaps).
fn sheet(size: PanelSize, canvases: &[Canvas]) -> Vec<Vec<u8>> {
    let mut rows = Vec::new();
    for canvas in canvases {
        for y in 0..size.height {
            rows.push(
                canvas
                    .row(y)
                    .iter()
                    .map(|p| if *p != 0 { 0 } else { 255 })
                    .collect(),
            );
        }
        rows.extend((0..GAP_PX).map(|_| vec![128u8; size.width as usize]));
    }
    rows
}

fn write_png(path: &Path, width: u32, rows: &[Vec<u8>]) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, rows.len() as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&rows.concat()).unwrap();
}

/// (width, height, grey bytes) of a PNG.
fn read_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut data = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut data).unwrap();
    assert_eq!(
        info.color_type,
        png::ColorType::Grayscale,
        "golden images are grey"
    );
    data.truncate(info.buffer_size());
    (info.width, info.height, data)
}

/// Compares the sheet with its golden image (or writes it with UPDATE_GOLDEN=1); on a
/// difference the rendered sheet is left next to the target dir for a look.
fn check_golden(name: &str, size: PanelSize, canvases: &[Canvas]) -> Result<(), String> {
    let rows = sheet(size, canvases);
    let golden = manifest().join(format!("tests/golden/{name}.png"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        write_png(&golden, size.width, &rows);
        return Ok(());
    }
    let bytes = std::fs::read(&golden)
        .map_err(|e| format!("{}: {e} (UPDATE_GOLDEN=1 writes it)", golden.display()))?;
    let (width, height, pixels) = read_png(&bytes);
    let actual = rows.concat();
    if (width, height as usize) == (size.width, rows.len()) && pixels == actual {
        return Ok(());
    }
    let out = std::env::temp_dir().join(format!("{name}.actual.png"));
    write_png(&out, size.width, &rows);
    let first = pixels.iter().zip(&actual).position(|(a, b)| a != b);
    let where_ = first.map_or("size".to_string(), |i| {
        let y = i as u32 / size.width;
        format!(
            "screen {} pixel ({}, {})",
            y / (size.height + GAP_PX),
            i as u32 % size.width,
            y % (size.height + GAP_PX)
        )
    });
    Err(format!(
        "{name}: differs from {} at {where_} ({width}x{height} golden, {}x{} now); rendered: {}",
        golden.display(),
        size.width,
        rows.len(),
        out.display()
    ))
}

#[test]
fn every_screen_of_a_merchants_day_matches_its_golden_image_at_two_panel_sizes() {
    let (merchant, customer) = scenario_screens(SCENARIO);
    assert!(
        merchant.len() >= 20 && customer.len() >= 10,
        "too few screens to prove anything"
    );
    let mut failures = Vec::new();
    for size in SIZES {
        let layout = Layout::new(size);
        let draw = |screens: &[Screen], which: Which| -> Vec<Canvas> {
            screens
                .iter()
                .map(|s| {
                    let mut canvas = Canvas::new(size);
                    match which {
                        Which::Merchant => render::draw_merchant(&layout, s, &mut canvas),
                        Which::Customer => render::draw_customer(&layout, s, None, &mut canvas),
                    }
                    canvas
                })
                .collect()
        };
        for (which, canvases) in [
            ("merchant", draw(&merchant, Which::Merchant)),
            ("customer", draw(&customer, Which::Customer)),
        ] {
            let name = format!("{SCENARIO}_{which}_{size}");
            if let Err(e) = check_golden(&name, size, &canvases) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_customer_screen_with_the_qr_test_pattern_matches_its_golden_image_and_decodes_back() {
    let qr = QrImage::encode(QR_TEST_PAYLOAD.as_bytes()).unwrap();
    for size in SIZES.into_iter().chain([PanelSize::MEDIUM]) {
        let layout = Layout::new(size);
        let mut canvas = Canvas::new(size);
        render::draw_customer(
            &layout,
            &screen("请扫码付款 | ¥12.50"),
            Some(&qr),
            &mut canvas,
        );
        let (width, height) = (size.width as usize, size.height as usize);
        let image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
            if canvas.is_ink(x as u32, y as u32) {
                0
            } else {
                255
            }
        });
        let mut image = image;
        let grids = image.detect_grids();
        assert_eq!(
            grids.len(),
            1,
            "{size}: one QR code on the customer's screen"
        );
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, QR_TEST_PAYLOAD, "{size}");
        // The amount keeps left of the QR square.
        let qr_left = layout.qr_square.top_left.x as u32;
        let text_right = (0..size.width)
            .rev()
            .find(|x| (0..size.height / 2).any(|y| canvas.is_ink(*x, y) && *x < qr_left))
            .unwrap();
        assert!(text_right < qr_left, "{size}");
        if SIZES.contains(&size) {
            check_golden(&format!("customer_qr_{size}"), size, &[canvas]).unwrap();
        }
    }
}

/// Every string literal of a Rust source (outside comments), escapes left as written.
fn string_literals(source: &str) -> Vec<String> {
    let mut literals = Vec::new();
    for line in source.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut chars = code.chars();
        while let Some(c) = chars.next() {
            if c != '"' {
                continue;
            }
            let mut literal = String::new();
            let mut escaped = false;
            for c in chars.by_ref() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    _ => {
                        escaped = false;
                        literal.push(c);
                    }
                }
            }
            literals.push(literal);
        }
    }
    literals
}

/// The Chinese/English pairs of a source: `Text::new("中文", "English")` (the text table,
/// `core/text.rs`) and `tr(lang, "中文", "English")`.
fn tr_pairs(source: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let calls = source
        .match_indices("tr(")
        .chain(source.match_indices("Text::new("));
    for (i, call) in calls {
        let before = source[..i].chars().last().unwrap_or(' ');
        if call == "tr(" && (before.is_alphanumeric() || before == '_') {
            continue;
        }
        let call: String = source[i..].chars().take(400).collect();
        let literals = string_literals(&call.replace('\n', " "));
        if let [zh, en, ..] = literals.as_slice() {
            pairs.push((zh.clone(), en.clone()));
        }
    }
    pairs
}

fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// Every character the till can show: the translated texts of the core (`tr` pairs, and every
/// literal of `core/`, its formats included), what the device itself shows when it stops, the
/// scenario's recorded screens, and printable ASCII (codes, English, numbers).
fn every_character_shown() -> (BTreeSet<char>, usize) {
    let mut files = Vec::new();
    sources(&manifest().join("src/core"), &mut files);
    let device = manifest().join("src/device/mod.rs");
    let mut texts: Vec<String> = Vec::new();
    let mut pairs = 0;
    for (_, source) in &files {
        for (zh, en) in tr_pairs(source) {
            texts.push(zh);
            texts.push(en);
            pairs += 1;
        }
        texts.extend(string_literals(source));
    }
    texts.extend(string_literals(&std::fs::read_to_string(device).unwrap()));
    let (merchant, customer) = scenario_screens(SCENARIO);
    texts.extend(
        merchant
            .iter()
            .chain(&customer)
            .flat_map(|s| s.lines.clone()),
    );
    texts.push((' '..='~').collect());
    let mut chars: BTreeSet<char> = texts.iter().flat_map(|t| t.chars()).collect();
    chars.retain(|c| !c.is_control() && !"{}".contains(*c));
    (chars, pairs)
}

#[test]
fn every_character_of_every_text_the_till_can_show_has_a_glyph_in_the_panel_fonts() {
    let (chars, pairs) = every_character_shown();
    assert!(
        pairs >= 150,
        "only {pairs} text pairs found: is the walk still reading core/?"
    );
    assert!(chars.len() >= 300, "only {} characters found", chars.len());
    for (name, font) in [
        ("text (wqy16)", text_font()),
        ("status (wqy12)", small_font()),
    ] {
        let missing: String = chars.iter().filter(|c| !has_glyph(&font, **c)).collect();
        assert!(missing.is_empty(), "the {name} font lacks {missing:?}");
    }
    for font in digit_fonts() {
        let missing: String = "0123456789."
            .chars()
            .filter(|c| !has_glyph(&font, *c))
            .collect();
        assert!(missing.is_empty(), "a digit font lacks {missing:?}");
    }
}

#[test]
fn the_bench_png_file_is_both_screens_as_a_viewer_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("till.png");
    let size = PanelSize::SMALL;
    let mut panel = PanelDisplay::new(size, PngFile::new(&path));
    let displays = Displays {
        merchant: screen("机号0001 联机 | 请刷卡 | ¥4.50 | 清零取消"),
        customer: screen("请付款 | ¥4.50"),
        qr: None,
    };
    panel.show(&displays).unwrap();
    let (width, height, pixels) = read_png(&std::fs::read(&path).unwrap());
    let expected = encode_screens(panel.canvas(Which::Merchant), panel.canvas(Which::Customer));
    assert_eq!(read_png(&expected).2, pixels);
    assert_eq!(width, size.width);
    assert_eq!(
        height,
        2 * size.height + pos_firmware::device::panel::png::SEPARATOR_PX
    );
    let ink = pixels.iter().filter(|p| **p == 0).count();
    assert!(
        ink > 1_000,
        "the screens are drawn, not blank ({ink} ink pixels)"
    );
}

/// A PanelOutput that keeps nothing (the panel's canvases are read back).
struct Nowhere;

impl pos_firmware::device::panel::PanelOutput for Nowhere {
    fn write(&mut self, _: Which, _: &Canvas, _: std::ops::Range<u32>) -> std::io::Result<()> {
        Ok(())
    }
}

/// The texts of the QR codes `rqrr` finds on a canvas.
fn decode_canvas(canvas: &Canvas) -> Vec<String> {
    let size = canvas.size();
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(
        size.width as usize,
        size.height as usize,
        |x, y| {
            if canvas.is_ink(x as u32, y as u32) {
                0
            } else {
                255
            }
        },
    );
    image
        .detect_grids()
        .iter()
        .map(|grid| grid.decode().unwrap().1)
        .collect()
}

/// An offline QR payload as the till makes it (`shared::qrpay`).
fn offline_payload() -> String {
    use shared::ids::{MachineNumber, Seq, TerminalId};
    use shared::qrpay::{QrOrder, TerminalQrKey};
    let key = TerminalQrKey::derive(&[7; 32], TerminalId(0x5EED_0001));
    QrOrder {
        terminal: TerminalId(0x5EED_0001),
        intent: Seq(4_321),
        amount: shared::Fen::new(1_250),
        machine: MachineNumber::new(58).unwrap(),
        created_at_s: 1_800_000_000,
        valid_for_s: 600,
    }
    .payload(&key)
    .unwrap()
}

#[test]
fn the_offline_qr_of_the_displays_is_drawn_on_the_customer_screen_decodes_back_and_goes_away() {
    let payload = offline_payload();
    for size in SIZES.into_iter().chain([PanelSize::MEDIUM]) {
        // The bench's test pattern is on: the till's own QR code wins over it.
        let mut panel = PanelDisplay::new(size, Nowhere).with_qr_test_pattern();
        let mut displays = Displays {
            merchant: screen("机号0058 脱机 链路断 | 扫码待付 | ¥12.50 | 清零取消"),
            customer: screen("请刷卡或扫码 | ¥12.50"),
            qr: Some(payload.clone()),
        };
        panel.show(&displays).unwrap();
        let canvas = panel.canvas(Which::Customer).clone();
        assert_eq!(decode_canvas(&canvas), vec![payload.clone()], "{size}");
        if SIZES.contains(&size) {
            check_golden(&format!("customer_offline_qr_{size}"), size, &[canvas]).unwrap();
        }
        // The same lines without the QR code: the customer's screen is redrawn, the till's
        // code is gone (the test pattern is back in its square).
        displays.qr = None;
        panel.show(&displays).unwrap();
        assert_eq!(
            decode_canvas(panel.canvas(Which::Customer)),
            vec![QR_TEST_PAYLOAD.to_string()],
            "{size}"
        );
    }
}

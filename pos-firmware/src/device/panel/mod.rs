//! The till's two screens on real panels: [`PanelDisplay`] is the [`DeviceDisplay`] that renders
//! each screen into a [`Canvas`] in memory ([`render`]: pure, `embedded-graphics` with the
//! `u8g2-fonts` GB2312 font) and hands the output only the rows that changed: a Linux
//! framebuffer ([`fb::FbPanels`]: one `/dev/fbN` with both screens as regions, or one each) or
//! the bench's PNG file ([`png::PngFile`]). Panel sizes come from the configuration
//! ([`PanelSize`]: 240x128, 320x240, 480x272 or another within the limits). `tests/panel.rs`
//! renders a scenario's screens against golden images; `benches/panel_redraw.rs` times a full
//! redraw.

pub mod canvas;
pub mod fb;
pub mod png;
pub mod render;

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

pub use canvas::Canvas;
pub use render::{Layout, QrImage};

use super::display::DeviceDisplay;
use crate::core::{Beep, Displays, Screen};

/// The narrowest and widest panel, and the lowest and tallest, a configuration may name.
pub const MIN_PANEL_WIDTH: u32 = 128;
pub const MAX_PANEL_WIDTH: u32 = 1_024;
pub const MIN_PANEL_HEIGHT: u32 = 64;
pub const MAX_PANEL_HEIGHT: u32 = 768;
/// Panel widths are whole bytes of a 1-bit framebuffer row.
pub const PANEL_WIDTH_STEP: u32 = 8;

/// What the customer's screen shows in the QR square on the bench (`--qr-test-pattern`) while the
/// till shows no offline QR order of its own (`Displays.qr`, which always wins): a QR code of
/// this text, so the room and a phone's scan can be tried.
pub const QR_TEST_PAYLOAD: &str = "CAMPUS-POS QR TEST PATTERN";

/// The pixel size of one screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PanelSize {
    pub width: u32,
    pub height: u32,
}

impl PanelSize {
    /// The common till panels.
    pub const SMALL: PanelSize = PanelSize {
        width: 240,
        height: 128,
    };
    pub const MEDIUM: PanelSize = PanelSize {
        width: 320,
        height: 240,
    };
    pub const LARGE: PanelSize = PanelSize {
        width: 480,
        height: 272,
    };

    pub fn pixel_count(&self) -> usize {
        self.width as usize * self.height as usize
    }
}

impl fmt::Display for PanelSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// `WIDTHxHEIGHT`, e.g. `320x240`, within the limits above.
impl FromStr for PanelSize {
    type Err = String;

    fn from_str(s: &str) -> Result<PanelSize, String> {
        let (w, h) = s
            .split_once(['x', 'X'])
            .ok_or_else(|| format!("panel size {s:?}: expected WIDTHxHEIGHT, e.g. 320x240"))?;
        let number = |n: &str| {
            n.trim()
                .parse::<u32>()
                .map_err(|_| format!("panel size {s:?}: {n:?} is not a number of pixels"))
        };
        let size = PanelSize {
            width: number(w)?,
            height: number(h)?,
        };
        if !(MIN_PANEL_WIDTH..=MAX_PANEL_WIDTH).contains(&size.width)
            || !(MIN_PANEL_HEIGHT..=MAX_PANEL_HEIGHT).contains(&size.height)
            || !size.width.is_multiple_of(PANEL_WIDTH_STEP)
        {
            return Err(format!(
                "panel size {s:?}: width {MIN_PANEL_WIDTH}..={MAX_PANEL_WIDTH} in steps of \
                 {PANEL_WIDTH_STEP}, height {MIN_PANEL_HEIGHT}..={MAX_PANEL_HEIGHT}"
            ));
        }
        Ok(size)
    }
}

/// Which of the two screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Merchant,
    Customer,
}

/// Where rendered screens go.
pub trait PanelOutput {
    /// `canvas` is now `which` screen; only `rows` differ from what was written before.
    fn write(&mut self, which: Which, canvas: &Canvas, rows: Range<u32>) -> std::io::Result<()>;
    /// The end of a redraw (the PNG file is written here).
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One screen: what it shows, and its pixels as written to the output.
struct Shown {
    screen: Option<Screen>,
    canvas: Canvas,
    /// Whether the output has the canvas yet (the first write is the whole screen).
    written: bool,
}

/// The till's displays on panels.
pub struct PanelDisplay<O: PanelOutput> {
    layout: Layout,
    merchant: Shown,
    customer: Shown,
    /// Where the next picture is drawn before it is compared with the one shown.
    scratch: Canvas,
    /// The QR test pattern (bench only), shown while the till shows no QR code of its own.
    test_pattern: Option<QrImage>,
    /// The offline QR payload of `Displays.qr` and its modules, as last encoded (a payload is
    /// encoded once, not at every redraw); `None` modules when it does not fit a QR code.
    qr: Option<(String, Option<QrImage>)>,
    /// The payload drawn on the customer's canvas (a QR change redraws the customer's screen).
    customer_qr: Option<String>,
    output: O,
}

impl<O: PanelOutput> PanelDisplay<O> {
    pub fn new(size: PanelSize, output: O) -> PanelDisplay<O> {
        let shown = || Shown {
            screen: None,
            canvas: Canvas::new(size),
            written: false,
        };
        PanelDisplay {
            layout: Layout::new(size),
            merchant: shown(),
            customer: shown(),
            scratch: Canvas::new(size),
            test_pattern: None,
            qr: None,
            customer_qr: None,
            output,
        }
    }

    /// Shows the QR test pattern ([`QR_TEST_PAYLOAD`]) in the customer's QR square.
    pub fn with_qr_test_pattern(mut self) -> PanelDisplay<O> {
        self.test_pattern = QrImage::encode(QR_TEST_PAYLOAD.as_bytes());
        self
    }

    pub fn output(&self) -> &O {
        &self.output
    }

    /// The screen's pixels as last drawn.
    pub fn canvas(&self, which: Which) -> &Canvas {
        match which {
            Which::Merchant => &self.merchant.canvas,
            Which::Customer => &self.customer.canvas,
        }
    }

    /// Draws `screen` as `which` when it changed, and writes the rows that changed.
    fn update(&mut self, which: Which, screen: &Screen) -> std::io::Result<()> {
        let shown = match which {
            Which::Merchant => &mut self.merchant,
            Which::Customer => &mut self.customer,
        };
        let qr_payload = self.qr.as_ref().map(|(payload, _)| payload.clone());
        let qr_changed = which == Which::Customer && self.customer_qr != qr_payload;
        if shown.written && shown.screen.as_ref() == Some(screen) && !qr_changed {
            return Ok(());
        }
        match which {
            Which::Merchant => render::draw_merchant(&self.layout, screen, &mut self.scratch),
            Which::Customer => {
                let qr = match &self.qr {
                    Some((_, modules)) => modules.as_ref(),
                    None => self.test_pattern.as_ref(),
                };
                render::draw_customer(&self.layout, screen, qr, &mut self.scratch);
                self.customer_qr = qr_payload;
            }
        }
        let rows = match shown.written {
            false => Some(0..self.layout.size.height),
            true => self.scratch.changed_rows(&shown.canvas),
        };
        if let Some(rows) = rows {
            self.output.write(which, &self.scratch, rows)?;
            std::mem::swap(&mut shown.canvas, &mut self.scratch);
        }
        shown.written = true;
        shown.screen = Some(screen.clone());
        Ok(())
    }
}

impl<O: PanelOutput> DeviceDisplay for PanelDisplay<O> {
    fn show(&mut self, displays: &Displays) -> std::io::Result<()> {
        let encoded = self.qr.as_ref().map(|(payload, _)| payload);
        if encoded != displays.qr.as_ref() {
            self.qr = displays.qr.as_ref().map(|payload| {
                let modules = QrImage::encode(payload.as_bytes());
                if modules.is_none() {
                    tracing::error!("the offline QR payload does not fit a QR code");
                }
                (payload.clone(), modules)
            });
        }
        self.update(Which::Merchant, &displays.merchant)?;
        self.update(Which::Customer, &displays.customer)?;
        self.output.finish()
    }

    /// The panels make no sound: [`super::buzzer::Signalling`] plays beeps on the buzzer.
    fn beep(&mut self, beep: Beep) -> std::io::Result<()> {
        tracing::debug!("beep {beep:?}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows each write carried.
    #[derive(Default)]
    struct Writes(Vec<(Which, Range<u32>)>);

    impl PanelOutput for Writes {
        fn write(&mut self, which: Which, _: &Canvas, rows: Range<u32>) -> std::io::Result<()> {
            self.0.push((which, rows));
            Ok(())
        }
    }

    fn displays(merchant: &[&str], customer: &[&str]) -> Displays {
        let screen = |lines: &[&str]| Screen {
            lines: lines.iter().map(|l| l.to_string()).collect(),
        };
        Displays {
            merchant: screen(merchant),
            customer: screen(customer),
            qr: None,
        }
    }

    #[test]
    fn the_first_redraw_writes_both_screens_whole_and_then_only_the_rows_that_changed() {
        let size = PanelSize::MEDIUM;
        let mut panel = PanelDisplay::new(size, Writes::default());
        let status = "机号0001 联机";
        panel
            .show(&displays(
                &[status, "请输入金额", "", ""],
                &["欢迎光临", "", ""],
            ))
            .unwrap();
        assert_eq!(
            panel.output().0,
            vec![(Which::Merchant, 0..240), (Which::Customer, 0..240)]
        );
        // The amount appears on the merchant's third row only; the customer's screen is the same.
        panel
            .show(&displays(
                &[status, "请输入金额", "¥4", ""],
                &["欢迎光临", "", ""],
            ))
            .unwrap();
        let (which, rows) = panel.output().0[2].clone();
        assert_eq!(which, Which::Merchant);
        let layout = Layout::new(size);
        let row_height = (size.height - layout.status_height) / 3;
        let third_row = layout.status_height + row_height..layout.status_height + 2 * row_height;
        assert!(
            rows.start >= third_row.start && rows.end <= third_row.end,
            "{rows:?} outside the third row {third_row:?}"
        );
        assert_eq!(panel.output().0.len(), 3);
        // The same displays again: nothing is drawn or written.
        panel
            .show(&displays(
                &[status, "请输入金额", "¥4", ""],
                &["欢迎光临", "", ""],
            ))
            .unwrap();
        assert_eq!(panel.output().0.len(), 3);
    }

    #[test]
    fn panel_sizes_parse_within_limits_and_say_what_is_wrong() {
        assert_eq!("480x272".parse(), Ok(PanelSize::LARGE));
        assert!("320*240"
            .parse::<PanelSize>()
            .unwrap_err()
            .contains("WIDTHxHEIGHT"));
        assert!("321x240"
            .parse::<PanelSize>()
            .unwrap_err()
            .contains("steps of 8"));
        assert!("99999x240".parse::<PanelSize>().is_err());
    }
}

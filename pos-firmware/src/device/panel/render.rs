//! The till's two screens drawn as a till shows them, into a [`Canvas`] in memory (no I/O): the
//! merchant's status bar and three lines, the customer's lines with the amount in large digits
//! and, when there is one, the QR code in the square kept for it on the right. CJK text is the
//! WenQuanYi GB2312 bitmap font of `u8g2-fonts`; amounts (`¥12.50`) are the Logisoso digits in
//! the largest size the row holds. A character the font lacks is drawn as an empty box (never a
//! panic); `tests/panel.rs` checks that every text the till can show has its glyphs.

use std::convert::Infallible;

use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use u8g2_fonts::types::{FontColor, VerticalPosition};
use u8g2_fonts::{fonts, FontRenderer};

use super::canvas::Canvas;
use super::PanelSize;
use crate::core::Screen;

/// Pixels between a panel's edge (or the QR square) and the text.
pub const MARGIN_PX: u32 = 4;
/// Rows of the merchant's screen below the status bar, and of the customer's screen: a screen
/// with more lines gets more (smaller) rows.
pub const ROWS: usize = 3;
/// Panels at least this tall get the 16 px font in the merchant's status bar (12 px below).
pub const TALL_PANEL_PX: u32 = 200;
/// Text lines are drawn this many times the font's size where they fit (see `text_scale`).
pub const TEXT_SCALE_LARGE: u32 = 2;
/// The quiet zone around the QR code, in modules (the QR standard asks for 4).
pub const QR_QUIET_MODULES: u32 = 4;
/// The QR codes' error correction: M (15 % of the code may be lost), the level the offline QR
/// payload is sized for (`shared::qrpay`: 55 characters, version 3 at M).
pub const QR_EC_LEVEL: qrcode::EcLevel = qrcode::EcLevel::M;

/// Characters the till's texts use that GB2312 lacks, drawn as the GB2312 character that
/// means the same: the yen sign of every amount (U+00A5) is the full-width yen (U+FFE5).
pub const SUBSTITUTES: [(char, char); 1] = [('¥', '￥')];

/// The character drawn for `ch` ([`SUBSTITUTES`], else `ch` itself).
pub fn substitute(ch: char) -> char {
    SUBSTITUTES
        .iter()
        .find(|(from, _)| *from == ch)
        .map_or(ch, |(_, to)| *to)
}

/// The text font: WenQuanYi 16 px, the whole GB2312 set (ASCII, CJK, full-width forms).
pub fn text_font() -> FontRenderer {
    FontRenderer::new::<fonts::u8g2_font_wqy16_t_gb2312>()
}

/// The status bar's font on panels under [`TALL_PANEL_PX`].
pub fn small_font() -> FontRenderer {
    FontRenderer::new::<fonts::u8g2_font_wqy12_t_gb2312>()
}

/// The amount digits, smallest first (Logisoso, numbers only: digits, `.`, `,`, `-`...).
pub fn digit_fonts() -> [FontRenderer; 12] {
    [
        FontRenderer::new::<fonts::u8g2_font_logisoso16_tn>(),
        FontRenderer::new::<fonts::u8g2_font_logisoso20_tn>(),
        FontRenderer::new::<fonts::u8g2_font_logisoso24_tn>(),
        FontRenderer::new::<fonts::u8g2_font_logisoso28_tn>(),
        FontRenderer::new::<fonts::u8g2_font_logisoso32_tn>(),
        FontRenderer::new::<fonts::u8g2_font_logisoso38_tn>(),
        FontRenderer::new::<fonts::u8g2_font_logisoso42_tn>(),
        FontRenderer::new::<fonts::u8g2_font_logisoso46_tn>(),
        FontRenderer::new::<fonts::u8g2_font_logisoso50_tn>(),
        FontRenderer::new::<fonts::u8g2_font_logisoso54_tn>(),
        FontRenderer::new::<fonts::u8g2_font_logisoso58_tn>(),
        FontRenderer::new::<fonts::u8g2_font_logisoso62_tn>(),
    ]
}

/// A QR code as modules (`true` dark), `width` modules a side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrImage {
    pub width: usize,
    pub dark: Vec<bool>,
}

impl QrImage {
    /// The QR code of `payload` at [`QR_EC_LEVEL`] (the smallest version it fits, alphanumeric
    /// mode where the text allows), or `None` if it does not fit a QR code.
    pub fn encode(payload: &[u8]) -> Option<QrImage> {
        let code = qrcode::QrCode::with_error_correction_level(payload, QR_EC_LEVEL).ok()?;
        Some(QrImage {
            width: code.width(),
            dark: code
                .to_colors()
                .into_iter()
                .map(|c| c == qrcode::Color::Dark)
                .collect(),
        })
    }
}

/// Where things go on a panel of one size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub size: PanelSize,
    /// Height of the merchant's status bar.
    pub status_height: u32,
    /// The square kept for the QR code on the customer's screen (right side).
    pub qr_square: Rectangle,
}

impl Layout {
    pub fn new(size: PanelSize) -> Layout {
        let status_font = if size.height >= TALL_PANEL_PX {
            text_font()
        } else {
            small_font()
        };
        let status_height = status_font.get_default_line_height() + MARGIN_PX;
        let side = (size.height.saturating_sub(2 * MARGIN_PX)).min(size.width * 2 / 5);
        let qr_square = Rectangle::new(
            Point::new(
                (size.width - side - MARGIN_PX) as i32,
                ((size.height - side) / 2) as i32,
            ),
            Size::new(side, side),
        );
        Layout {
            size,
            status_height,
            qr_square,
        }
    }

    fn status_font(&self) -> FontRenderer {
        if self.size.height >= TALL_PANEL_PX {
            text_font()
        } else {
            small_font()
        }
    }
}

/// Draws the merchant's screen: line 0 is the status line, white on a black bar; the other
/// lines below it in [`ROWS`] (or more) rows.
pub fn draw_merchant(layout: &Layout, screen: &Screen, canvas: &mut Canvas) {
    canvas.clear();
    let width = layout.size.width;
    let bar = Rectangle::new(Point::zero(), Size::new(width, layout.status_height));
    fill(canvas, bar, BinaryColor::On);
    let mut lines = screen.lines.iter();
    if let Some(status) = lines.next() {
        let font = layout.status_font();
        let top = (layout
            .status_height
            .saturating_sub(font.get_default_line_height()))
            / 2;
        let area = bar.resized_width(
            width - MARGIN_PX,
            embedded_graphics::geometry::AnchorX::Right,
        );
        let mut clipped = canvas.clipped(&area);
        draw_text(
            &mut clipped,
            &font,
            status,
            Point::new(MARGIN_PX as i32, top as i32),
            BinaryColor::Off,
        );
    }
    let rest: Vec<&String> = lines.collect();
    let body = Rectangle::new(
        Point::new(0, layout.status_height as i32),
        Size::new(width, layout.size.height - layout.status_height),
    );
    draw_rows(canvas, body, &rest);
}

/// Draws the customer's screen: its lines in [`ROWS`] (or more) rows, amounts in large digits;
/// with a QR code, the text keeps left of the QR square.
pub fn draw_customer(layout: &Layout, screen: &Screen, qr: Option<&QrImage>, canvas: &mut Canvas) {
    canvas.clear();
    let size = layout.size;
    let text_width = match qr {
        Some(_) => (layout.qr_square.top_left.x as u32).saturating_sub(MARGIN_PX),
        None => size.width,
    };
    let body = Rectangle::new(Point::zero(), Size::new(text_width, size.height));
    let lines: Vec<&String> = screen.lines.iter().collect();
    draw_rows(canvas, body, &lines);
    if let Some(qr) = qr {
        draw_qr(canvas, layout.qr_square, qr);
    }
}

/// Draws `lines` in equal rows filling `area`.
fn draw_rows(canvas: &mut Canvas, area: Rectangle, lines: &[&String]) {
    let rows = lines.len().max(ROWS) as u32;
    let row_height = area.size.height / rows;
    let text = text_font();
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() {
            continue;
        }
        let top = area.top_left.y + (i as u32 * row_height) as i32;
        let row = Rectangle::new(
            Point::new(area.top_left.x, top),
            Size::new(area.size.width, row_height),
        );
        let inner_width = area.size.width.saturating_sub(2 * MARGIN_PX) as i32;
        let left = area.top_left.x + MARGIN_PX as i32;
        let mut clipped = canvas.clipped(&row);
        if let Some(digits) = amount_digits(line) {
            if let Some(font) = digit_font_for(row_height, digits, inner_width, &text) {
                draw_amount(&mut clipped, &text, &font, digits, left, top, row_height);
                continue;
            }
        }
        let scale = text_scale(row_height, text_width(&text, line), inner_width);
        let height = text.get_default_line_height() * scale;
        let at = Point::new(left, top + (row_height.saturating_sub(height) / 2) as i32);
        let mut scaled = Scaled {
            target: &mut clipped,
            offset: at,
            factor: scale,
        };
        draw_text(&mut scaled, &text, line, Point::zero(), BinaryColor::On);
    }
}

/// How many times its size a text line is drawn: [`TEXT_SCALE_LARGE`] when the row is tall
/// and wide enough for it (320x240 and larger panels), else 1.
fn text_scale(row_height: u32, width: i32, inner_width: i32) -> u32 {
    let tall = text_font().get_default_line_height() * TEXT_SCALE_LARGE + 2 * MARGIN_PX;
    let fits = row_height >= tall && width * TEXT_SCALE_LARGE as i32 <= inner_width;
    if fits {
        TEXT_SCALE_LARGE
    } else {
        1
    }
}

/// A draw target that draws every pixel as a `factor`-sided square from `offset`: the 16 px
/// bitmap font at 32 px on the larger panels, without a second font.
struct Scaled<'a, D> {
    target: &'a mut D,
    offset: Point,
    factor: u32,
}

impl<D: DrawTarget<Color = BinaryColor, Error = Infallible>> OriginDimensions for Scaled<'_, D> {
    fn size(&self) -> Size {
        self.target.bounding_box().size / self.factor
    }
}

impl<D: DrawTarget<Color = BinaryColor, Error = Infallible>> DrawTarget for Scaled<'_, D> {
    type Color = BinaryColor;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Infallible>
    where
        I: IntoIterator<Item = Pixel<BinaryColor>>,
    {
        let side = Size::new(self.factor, self.factor);
        for Pixel(point, color) in pixels {
            let at = self.offset + point * self.factor as i32;
            self.target.fill_solid(&Rectangle::new(at, side), color)?;
        }
        Ok(())
    }
}

/// The digits of an amount line (`¥12.50`, `¥4.` while it is typed), or `None` for any other.
pub fn amount_digits(line: &str) -> Option<&str> {
    let digits = line.strip_prefix('¥')?;
    let is_amount = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c == '.');
    is_amount.then_some(digits)
}

/// The largest digit font whose digits fit a row `row_height` tall with the `¥` sign in
/// `width`; `None` when even the smallest does not.
fn digit_font_for(
    row_height: u32,
    digits: &str,
    width: i32,
    text: &FontRenderer,
) -> Option<FontRenderer> {
    digit_fonts().into_iter().rev().find(|font| {
        let sign = text_width(text, "¥") * sign_scale(font, text) as i32 + MARGIN_PX as i32;
        let tall = i32::from(font.get_ascent()) + 2 * MARGIN_PX as i32;
        tall <= row_height as i32 && sign + text_width(font, digits) <= width
    })
}

/// The yen sign before large digits is drawn [`TEXT_SCALE_LARGE`] times the text size when
/// the digits are at least that tall.
fn sign_scale(digits: &FontRenderer, text: &FontRenderer) -> u32 {
    let large = text.get_default_line_height() * TEXT_SCALE_LARGE;
    if i32::from(digits.get_ascent()) >= large as i32 {
        TEXT_SCALE_LARGE
    } else {
        1
    }
}

fn draw_amount(
    target: &mut impl DrawTarget<Color = BinaryColor, Error = Infallible>,
    text: &FontRenderer,
    font: &FontRenderer,
    digits: &str,
    left: i32,
    top: i32,
    row_height: u32,
) {
    let ascent = i32::from(font.get_ascent());
    let baseline = top + (row_height as i32 + ascent) / 2;
    let scale = sign_scale(font, text);
    let sign_top = baseline - (text.get_default_line_height() * scale) as i32;
    let mut scaled = Scaled {
        target: &mut *target,
        offset: Point::new(left, sign_top),
        factor: scale,
    };
    let sign = draw_text(&mut scaled, text, "¥", Point::zero(), BinaryColor::On) * scale as i32;
    let mut x = left + sign + MARGIN_PX as i32;
    for ch in digits.chars() {
        let at = Point::new(x, baseline);
        match font.render(
            ch,
            at,
            VerticalPosition::Baseline,
            FontColor::Transparent(BinaryColor::On),
            target,
        ) {
            Ok(drawn) => x += drawn.advance.x,
            Err(_) => {
                // Unreachable for an amount (digits and '.'); the box says a glyph is missing.
                missing_glyph(target, Point::new(x, baseline - ascent), ascent as u32);
                x += ascent / 2 + 1;
            }
        }
    }
}

/// Draws `text` one character at a time from `top_left` (font top); a character the font lacks
/// is an empty box. Returns the width drawn.
pub fn draw_text(
    target: &mut impl DrawTarget<Color = BinaryColor, Error = Infallible>,
    font: &FontRenderer,
    text: &str,
    top_left: Point,
    color: BinaryColor,
) -> i32 {
    let mut x = top_left.x;
    let height = font.get_default_line_height();
    for ch in text.chars().map(substitute) {
        let at = Point::new(x, top_left.y);
        match font.render(
            ch,
            at,
            VerticalPosition::Top,
            FontColor::Transparent(color),
            target,
        ) {
            Ok(drawn) => x += drawn.advance.x,
            Err(_) => {
                missing_glyph(target, at, height);
                x += (height / 2 + 1) as i32;
            }
        }
    }
    x - top_left.x
}

/// The width of `text` in `font` as [`draw_text`] draws it.
pub fn text_width(font: &FontRenderer, text: &str) -> i32 {
    let height = font.get_default_line_height();
    text.chars()
        .map(substitute)
        .map(
            |ch| match font.get_rendered_dimensions(ch, Point::zero(), VerticalPosition::Top) {
                Ok(d) => d.advance.x,
                Err(_) => (height / 2 + 1) as i32,
            },
        )
        .sum()
}

/// Whether `font` has a glyph for `ch` as it is drawn (after [`substitute`]; a space has one
/// with nothing to draw).
pub fn has_glyph(font: &FontRenderer, ch: char) -> bool {
    font.get_rendered_dimensions(substitute(ch), Point::zero(), VerticalPosition::Top)
        .is_ok()
}

fn missing_glyph(
    target: &mut impl DrawTarget<Color = BinaryColor, Error = Infallible>,
    at: Point,
    height: u32,
) {
    let outline = Rectangle::new(at + Point::new(1, 1), Size::new(height / 2 - 1, height - 2));
    let _ = outline
        .into_styled(PrimitiveStyle::with_stroke(BinaryColor::On, 1))
        .draw(target);
}

/// The QR code centred in `square`, as many whole pixels a module as fit with its quiet zone;
/// a square too small for one pixel a module gets a crossed box instead.
fn draw_qr(canvas: &mut Canvas, square: Rectangle, qr: &QrImage) {
    let modules = qr.width as u32 + 2 * QR_QUIET_MODULES;
    let scale = square.size.width / modules.max(1);
    if scale == 0 || qr.dark.len() != qr.width * qr.width {
        let _ = square
            .into_styled(PrimitiveStyle::with_stroke(BinaryColor::On, 1))
            .draw(canvas);
        return;
    }
    let side = modules * scale;
    let origin = square.top_left
        + Point::new(
            ((square.size.width - side) / 2 + QR_QUIET_MODULES * scale) as i32,
            ((square.size.height - side) / 2 + QR_QUIET_MODULES * scale) as i32,
        );
    for (i, dark) in qr.dark.iter().enumerate() {
        if *dark {
            let (mx, my) = ((i % qr.width) as u32, (i / qr.width) as u32);
            let module = Rectangle::new(
                origin + Point::new((mx * scale) as i32, (my * scale) as i32),
                Size::new(scale, scale),
            );
            fill(canvas, module, BinaryColor::On);
        }
    }
}

fn fill(canvas: &mut Canvas, area: Rectangle, color: BinaryColor) {
    let _ = canvas.fill_solid(&area, color);
}

//! The offline QR code on the terminal simulator's screen (issue 11): `Displays.qr` carries the
//! payload while the till shows an offline QR order, and the simulator draws it in unicode half
//! blocks (the `qrcode` crate's `Dense1x2` renderer: two modules a character, with the quiet
//! zone), black on white whatever the terminal's colours, beside the customer's display, so a
//! phone camera reads it off the terminal. `tests/qr_decode.rs` decodes these lines back.

use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

/// The error correction the offline QR payload is sized for (M: version 3 for its 55
/// characters), as the device's panel draws it.
pub const QR_EC_LEVEL: qrcode::EcLevel = qrcode::EcLevel::M;
/// The box's title.
const TITLE: &str = " 扫码付款 Scan to pay ";
/// Columns and rows the box's borders take.
const BORDER: u16 = 2;

/// The QR code of `payload` as lines of half blocks (`█▀▄` and space; a dark module is ink),
/// quiet zone included; `None` if the payload does not fit a QR code.
pub fn half_block_lines(payload: &str) -> Option<Vec<String>> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), QR_EC_LEVEL).ok()?;
    let text = code.render::<Dense1x2>().quiet_zone(true).build();
    Some(text.lines().map(str::to_string).collect())
}

/// Where the QR box goes: right of `beside` (the left column's displays) when the screen has the
/// room, else over the area under the displays (`below`); `None` when neither holds it.
fn place(area: Rect, beside: Rect, below: Rect, width: u16, height: u16) -> Option<Rect> {
    let right_x = beside.x.saturating_add(beside.width);
    let right_room = area.x.saturating_add(area.width).saturating_sub(right_x);
    if right_room >= width && area.height >= height {
        return Some(Rect::new(right_x, area.y, width, height));
    }
    if below.width >= width && area.y.saturating_add(area.height) >= below.y.saturating_add(height)
    {
        return Some(Rect::new(below.x, below.y, width, height));
    }
    None
}

/// Draws the QR code of `payload` beside the displays of `plan` (see [`place`]: right of them,
/// else over the cards and the log, never over the bottom bar); on a screen too small for it, a
/// one-line box says so and shows the payload's text.
pub(super) fn draw_qr(frame: &mut Frame, area: Rect, plan: &super::draw::Plan, payload: &str) {
    let area = Rect {
        height: plan.bar.y.saturating_sub(area.y),
        ..area
    };
    let (beside, below) = (plan.merchant.union(plan.customer), plan.cards);
    let Some(lines) = half_block_lines(payload) else {
        return;
    };
    let width = lines
        .first()
        .map_or(0, |l| l.chars().count())
        .try_into()
        .unwrap_or(u16::MAX)
        .saturating_add(BORDER);
    let height = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_add(BORDER);
    let block = Block::bordered()
        .title(TITLE)
        .border_style(Style::new().fg(Color::Cyan));
    let Some(rect) = place(area, beside, below, width, height) else {
        let rect = Rect::new(below.x, below.y, below.width, 3.min(below.height));
        frame.render_widget(Clear, rect);
        frame.render_widget(
            Paragraph::new(format!("终端太小 too small for the QR: {payload}")).block(block),
            rect,
        );
        return;
    };
    let ink = Style::new().fg(Color::Black).bg(Color::White);
    let text: Vec<Line> = lines.into_iter().map(|l| Line::styled(l, ink)).collect();
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(text).block(block), rect);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_55_character_payload_is_a_version_3_code_of_19_lines_of_37_columns() {
        let lines = half_block_lines(&"CQ1".repeat(19)[..55]).unwrap();
        // 29 modules and 4 of quiet zone each side: 37 columns, 37 rows in 19 lines.
        assert_eq!(lines.len(), 19);
        assert!(lines.iter().all(|l| l.chars().count() == 37));
        assert!(
            lines[0].chars().all(|c| c == ' '),
            "the quiet zone is light"
        );
    }

    /// The QR code's rows as the screen shows them (`width` columns from `x`), and whether every
    /// one of its cells is black on white.
    fn shown_rows(
        buffer: &ratatui::buffer::Buffer,
        x: u16,
        y: u16,
        lines: usize,
        width: u16,
    ) -> (Vec<String>, bool) {
        let mut ink = true;
        let rows = (0..lines as u16)
            .map(|row| {
                (0..width)
                    .map(|col| {
                        let cell = &buffer[(x + col, y + row)];
                        ink &= cell.fg == Color::Black && cell.bg == Color::White;
                        cell.symbol().to_string()
                    })
                    .collect()
            })
            .collect();
        (rows, ink)
    }

    #[test]
    fn the_simulator_draws_the_qr_of_the_displays_beside_them_black_on_white_or_below_them() {
        let payload = "CQ1".repeat(19)[..55].to_string();
        let lines = half_block_lines(&payload).unwrap();
        let mut fixture = super::super::draw::tests::fixture();
        fixture.displays.qr = Some(payload.clone());
        let view = super::super::draw::tests::view(&fixture);
        // Wide: right of the displays (the left column is 42 wide; the box's border is 1).
        let (_, buffer) = super::super::draw::tests::render(&view, 100, 40);
        let (rows, ink) = shown_rows(&buffer, 43, 1, lines.len(), 37);
        assert_eq!(rows, lines);
        assert!(
            ink,
            "black modules on white, whatever the terminal's colours"
        );
        // Narrow: under the displays, over the cards.
        let (_, buffer) = super::super::draw::tests::render(&view, 60, 40);
        let top = super::super::draw::MERCHANT_H + super::super::draw::CUSTOMER_H;
        let (rows, _) = shown_rows(&buffer, 1, top + 1, lines.len(), 37);
        assert_eq!(rows, lines);
        // Too small for it: the payload's text instead.
        let (text, _) = super::super::draw::tests::render(&view, 45, 20);
        assert!(text.contains("too small for the QR"), "{text}");
    }

    #[test]
    fn the_box_goes_right_of_the_displays_when_it_fits_and_below_them_otherwise() {
        let beside = Rect::new(0, 0, 42, 10);
        let below = Rect::new(0, 10, 42, 30);
        assert_eq!(
            place(Rect::new(0, 0, 100, 40), beside, below, 39, 21),
            Some(Rect::new(42, 0, 39, 21))
        );
        assert_eq!(
            place(Rect::new(0, 0, 60, 40), beside, below, 39, 21),
            Some(Rect::new(0, 10, 39, 21))
        );
        assert_eq!(place(Rect::new(0, 0, 60, 20), beside, below, 39, 21), None);
    }
}

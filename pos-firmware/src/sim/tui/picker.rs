//! The code picker of the terminal simulator: a list of the payment codes the simulator's
//! campus can make (every scripted behaviour of each wallet, a virtual card of each demo
//! account, an expired one and a replay; `sim::script::orders::picker_choices`), moved through
//! with Up/Down (or k/j) and chosen with Enter; the chosen code goes on the scanner. The list
//! and its window are pure and unit-tested; drawing it is a full-screen panel like the help.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use crate::sim::script::orders::CodeSpec;

/// The open picker: the choices and the one under the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Picker {
    choices: Vec<(String, CodeSpec)>,
    selected: usize,
}

impl Picker {
    pub(super) fn new(choices: Vec<(String, CodeSpec)>) -> Picker {
        Picker {
            choices,
            selected: 0,
        }
    }

    /// Moves the cursor by `step` (wrapping around the list).
    pub(super) fn step(&mut self, step: isize) {
        let len = self.choices.len();
        if len == 0 {
            return;
        }
        let len_i = isize::try_from(len).unwrap_or(isize::MAX);
        let at = isize::try_from(self.selected).unwrap_or(0);
        self.selected = usize::try_from((at + step).rem_euclid(len_i)).unwrap_or(0);
    }

    /// The choice under the cursor.
    pub(super) fn chosen(&self) -> Option<&(String, CodeSpec)> {
        self.choices.get(self.selected)
    }

    /// The lines that fit `rows` rows, the cursor's line marked `▶` and always in view.
    pub(super) fn window(&self, rows: usize) -> Vec<(bool, String)> {
        let rows = rows.max(1);
        let first = self.selected.saturating_sub(rows - 1);
        self.choices
            .iter()
            .enumerate()
            .skip(first)
            .take(rows)
            .map(|(i, (label, _))| {
                let here = i == self.selected;
                (here, format!("{} {label}", if here { "▶" } else { " " }))
            })
            .collect()
    }
}

/// Draws the picker over the whole screen.
pub(super) fn draw_picker(frame: &mut Frame, area: Rect, picker: &Picker) {
    frame.render_widget(Clear, area);
    let block =
        Block::bordered().title(" 付款码 Payment code - ↑↓ choose, Enter scans, Esc cancels ");
    let rows = usize::from(area.height.saturating_sub(2));
    let lines: Vec<Line> = picker
        .window(rows)
        .into_iter()
        .map(|(here, text)| {
            let line = Line::from(text);
            if here {
                line.style(Style::default().add_modifier(Modifier::REVERSED))
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::script::orders::{picker_choices, LocalCampus};

    #[test]
    fn the_cursor_wraps_and_stays_in_the_window() {
        let mut picker = Picker::new(picker_choices(&LocalCampus::new()));
        let len = picker.choices.len();
        assert!(picker.window(5)[0].0, "the first choice starts selected");
        picker.step(-1);
        assert_eq!(picker.selected, len - 1, "up from the top wraps to the end");
        let window = picker.window(5);
        assert_eq!(window.len(), 5);
        assert!(window[4].0, "the cursor is the window's last line");
        assert!(window[4].1.starts_with('▶'));
        picker.step(1);
        assert_eq!(picker.selected, 0);
        picker.step(3);
        assert_eq!(picker.chosen(), picker.choices.get(3));
    }

    #[test]
    fn the_picker_draws_the_cursor_line_and_the_keys_to_use() {
        use ratatui::backend::TestBackend;
        use ratatui::Terminal;
        let mut picker = Picker::new(picker_choices(&LocalCampus::new()));
        picker.step(1);
        let mut terminal = Terminal::new(TestBackend::new(80, 12)).expect("test backend");
        terminal
            .draw(|frame| draw_picker(frame, frame.area(), &picker))
            .expect("draw");
        let text = format!("{:?}", terminal.backend().buffer());
        assert!(text.contains("Enter scans"), "{text}");
        assert!(
            text.contains("▶ WeChat: user paying, paid after 8 s"),
            "{text}"
        );
        assert!(text.contains("  WeChat: paid at once"), "{text}");
    }
}

//! What the terminal simulator draws: the layout of its panels ([`plan_layout`]) and the
//! drawing of a [`View`] — both displays as boxes, the simulated cards, the key panel, the log,
//! the bottom bar, and the help, fatal and too-small screens. A pure function of the view,
//! tested by rendering into ratatui's `TestBackend`.

use std::collections::VecDeque;

use keymap::COMBOS;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::keys::{sim_key_help, tap_label};
use super::{LogEntry, LogKind, HELP_KEY, LOG_LEN, PICK_KEY, SCAN_KEY, TAP_KEYS, TEAR_KEY};
use crate::core::{Displays, CUSTOMER_LINES, MERCHANT_LINES};
use crate::sim::cards::{SimCard, SimCardKind, WriteFault};

/// The smallest terminal the simulator draws its screen in.
pub const MIN_WIDTH: u16 = 40;
/// See [`MIN_WIDTH`]: both displays, one card, one log line and the bar.
pub const MIN_HEIGHT: u16 = MERCHANT_H + CUSTOMER_H + CARDS_MIN_H + LOG_MIN_H + BAR_H;

pub(super) const MERCHANT_H: u16 = MERCHANT_LINES as u16 + 2;
pub(super) const CUSTOMER_H: u16 = CUSTOMER_LINES as u16 + 2;
/// One card, the torn-write line and the borders.
pub(super) const CARDS_MIN_H: u16 = 4;
/// One event and the borders.
pub(super) const LOG_MIN_H: u16 = 3;
pub(super) const LOG_MAX_H: u16 = LOG_LEN as u16 + 2;
pub(super) const BAR_H: u16 = 1;
/// Width of the left column (displays and cards) when the key panel fits beside it.
pub(super) const LEFT_WIDTH: u16 = 42;
/// The key panel is shown only when it gets at least this many columns.
pub(super) const HELP_MIN_WIDTH: u16 = 50;

/// Everything the screen shows; [`draw`] is a pure function of it.
pub(super) struct View<'a> {
    pub(super) displays: &'a Displays,
    pub(super) cards: &'a [SimCard],
    pub(super) help: &'a [String],
    pub(super) log: &'a VecDeque<LogEntry>,
    /// The payment code being typed, when the scan prompt is open.
    pub(super) prompt: Option<&'a str>,
    pub(super) help_open: bool,
    /// The code picker, when open (drawn over everything but a fatal error and the help).
    pub(super) picker: Option<&'a super::picker::Picker>,
    pub(super) fatal: Option<&'a str>,
    pub(super) combo_hint: Option<String>,
    /// The fault armed for the next card write.
    pub(super) tear_armed: Option<WriteFault>,
}

/// Where each panel goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) merchant: Rect,
    pub(super) customer: Rect,
    pub(super) cards: Rect,
    help: Option<Rect>,
    log: Rect,
    pub(super) bar: Rect,
}

/// Lays the panels out in `area`, or `None` when it is too small. Left column: the two displays
/// and the cards; right of it (when wide enough) the keys; under both the log; at the bottom the
/// bar.
pub(super) fn plan_layout(area: Rect, card_count: usize) -> Option<Plan> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let body_h = area.height.saturating_sub(BAR_H);
    let displays_h = MERCHANT_H + CUSTOMER_H;
    let spare = body_h.saturating_sub(displays_h);
    let cards_wanted = u16::try_from(card_count.max(1))
        .unwrap_or(u16::MAX)
        .saturating_add(3);
    let cards_h = cards_wanted
        .min(spare.saturating_sub(LOG_MIN_H))
        .max(CARDS_MIN_H);
    let log_h = spare.saturating_sub(cards_h).clamp(LOG_MIN_H, LOG_MAX_H);
    let top_h = body_h.saturating_sub(log_h);
    let (left_w, help) = if area.width >= LEFT_WIDTH + HELP_MIN_WIDTH {
        let help = Rect::new(
            area.x.saturating_add(LEFT_WIDTH),
            area.y,
            area.width - LEFT_WIDTH,
            top_h,
        );
        (LEFT_WIDTH, Some(help))
    } else {
        (area.width, None)
    };
    Some(Plan {
        merchant: Rect::new(area.x, area.y, left_w, MERCHANT_H),
        customer: Rect::new(
            area.x,
            area.y.saturating_add(MERCHANT_H),
            left_w,
            CUSTOMER_H,
        ),
        cards: Rect::new(
            area.x,
            area.y.saturating_add(displays_h),
            left_w,
            top_h.saturating_sub(displays_h),
        ),
        help,
        log: Rect::new(area.x, area.y.saturating_add(top_h), area.width, log_h),
        bar: Rect::new(area.x, area.y.saturating_add(body_h), area.width, BAR_H),
    })
}

pub(super) fn draw(frame: &mut Frame, view: &View) {
    let area = frame.area();
    if let Some(error) = view.fatal {
        draw_fatal(frame, area, error);
        return;
    }
    if view.help_open {
        draw_help_screen(frame, area, view.help);
        return;
    }
    if let Some(picker) = view.picker {
        super::picker::draw_picker(frame, area, picker);
        return;
    }
    let Some(plan) = plan_layout(area, view.cards.len()) else {
        draw_too_small(frame, area);
        return;
    };
    draw_display(
        frame,
        plan.merchant,
        " 商户屏 Merchant ",
        &view.displays.merchant.lines,
        true,
        view.combo_hint.as_deref(),
    );
    draw_display(
        frame,
        plan.customer,
        " 顾客屏 Customer ",
        &view.displays.customer.lines,
        false,
        None,
    );
    draw_cards(frame, plan.cards, view.cards, view.tear_armed);
    if let Some(help) = plan.help {
        let block = Block::bordered()
            .title(" 按键 Keys (? 全部 all) ")
            .border_style(Style::new().fg(Color::Blue));
        let width = usize::from(help.width.saturating_sub(2));
        let lines: Vec<Line> = side_help(view.help, width)
            .into_iter()
            .map(Line::from)
            .collect();
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block),
            help,
        );
    }
    draw_log(frame, plan.log, view.log);
    // Over the keys, the cards and the log: the payer must be able to scan it.
    if let Some(qr) = &view.displays.qr {
        super::qr::draw_qr(frame, area, &plan, qr);
    }
    draw_bar(frame, plan.bar, view.prompt, view.cards.len());
}

/// One of the till's displays: a box with the screen's lines; the merchant's first line is the
/// status line, drawn as a bar.
pub(super) fn draw_display(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    lines: &[String],
    status: bool,
    hint: Option<&str>,
) {
    let mut block = Block::bordered()
        .title(Line::from(title).style(Style::new().add_modifier(Modifier::BOLD)))
        .border_style(Style::new().fg(Color::Cyan));
    if let Some(hint) = hint {
        let hint = Span::styled(
            format!(" {hint} "),
            Style::new().fg(Color::Black).bg(Color::Yellow),
        );
        block = block.title_bottom(Line::from(hint).right_aligned());
    }
    let inner_w = usize::from(area.width.saturating_sub(2));
    let text: Vec<Line> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            if status && i == 0 {
                Line::from(Span::styled(
                    pad_right(line, inner_w),
                    Style::new().add_modifier(Modifier::REVERSED),
                ))
            } else {
                Line::from(line.as_str())
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(text).block(block), area);
}

pub(super) fn draw_cards(
    frame: &mut Frame,
    area: Rect,
    cards: &[SimCard],
    tear_armed: Option<WriteFault>,
) {
    let block = Block::bordered()
        .title(" 模拟卡 Cards (刷卡 tap) ")
        .border_style(Style::new().fg(Color::Green));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    let name_w = cards
        .iter()
        .map(|c| display_width(&c.name))
        .max()
        .unwrap_or(0);
    let uid_w = cards
        .iter()
        .map(|c| c.uid.to_string().len())
        .max()
        .unwrap_or(0);
    let key_w = (0..cards.len())
        .map(|i| tap_label(i).len())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line> = cards
        .iter()
        .enumerate()
        .map(|(i, card)| {
            let dim = Style::new().fg(Color::DarkGray);
            let (balance, balance_style) = match card.kind {
                SimCardKind::Wallet => {
                    (format!("¥{}", card.balance), Style::new().fg(Color::Green))
                }
                SimCardKind::OtherCampus(_) => ("外校卡".to_string(), dim),
                SimCardKind::Blank => ("空白卡".to_string(), Style::new().fg(Color::Cyan)),
                SimCardKind::Unreadable => ("非校园卡".to_string(), dim),
            };
            Line::from(vec![
                Span::styled(
                    format!("{:<key_w$} ", tap_label(i)),
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ),
                Span::raw(pad_right(&card.name, name_w)),
                Span::raw(" "),
                Span::styled(
                    format!("{:<uid_w$} ", card.uid.to_string()),
                    Style::new().fg(Color::DarkGray),
                ),
                Span::styled(pad_left(&balance, 8), balance_style),
            ])
        })
        .collect();
    let list = Rect {
        height: inner.height.saturating_sub(1),
        ..inner
    };
    frame.render_widget(Paragraph::new(lines), list);
    let tear_row = Rect {
        y: inner.y.saturating_add(inner.height.saturating_sub(1)),
        height: 1,
        ..inner
    };
    let tear = if let Some(fault) = tear_armed {
        Line::from(Span::styled(
            format!("(!) next write: {fault} 下次写卡中断"),
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ))
    } else {
        Line::from(Span::styled(
            format!("{TEAR_KEY} = tear the next card write 拔卡"),
            Style::new().fg(Color::DarkGray),
        ))
    };
    frame.render_widget(Paragraph::new(tear), tear_row);
}

pub(super) fn draw_log(frame: &mut Frame, area: Rect, log: &VecDeque<LogEntry>) {
    let block = Block::bordered()
        .title(" 记录 Log ")
        .border_style(Style::new().fg(Color::Magenta));
    let inner = block.inner(area);
    let shown = usize::from(inner.height).min(log.len());
    let lines: Vec<Line> = log
        .iter()
        .skip(log.len().saturating_sub(shown))
        .map(|entry| {
            let style = match entry.kind {
                LogKind::Info => Style::new(),
                LogKind::Good => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
                LogKind::Bad => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                LogKind::Warn => Style::new().fg(Color::Yellow),
                LogKind::Record => Style::new().fg(Color::Cyan),
            };
            Line::from(vec![
                Span::styled(entry.time.clone(), Style::new().fg(Color::DarkGray)),
                Span::raw(" "),
                Span::styled(entry.text.clone(), style),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The bottom bar: the scan prompt while it is open, the simulator's keys otherwise.
pub(super) fn draw_bar(frame: &mut Frame, area: Rect, prompt: Option<&str>, card_count: usize) {
    let key = Style::new().fg(Color::Black).bg(Color::Gray);
    match prompt {
        Some(text) => {
            let label = " 扫码 Scan code: ";
            let tail = "  Enter 扫码 scan, Esc 取消 cancel";
            let room = usize::from(area.width)
                .saturating_sub(display_width(label))
                .saturating_sub(display_width(tail))
                .max(1);
            let shown = tail_fitting(text, room.saturating_sub(1));
            let line = Line::from(vec![
                Span::styled(label, Style::new().fg(Color::Black).bg(Color::Yellow)),
                Span::raw(" "),
                Span::styled(shown, Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(" "),
                Span::styled(tail, Style::new().fg(Color::DarkGray)),
            ]);
            frame.render_widget(Paragraph::new(line), area);
            let cursor_x = display_width(label)
                .saturating_add(1)
                .saturating_add(display_width(shown));
            let cursor_x = area
                .x
                .saturating_add(u16::try_from(cursor_x).unwrap_or(u16::MAX));
            if cursor_x < area.right() && area.height > 0 {
                frame.set_cursor_position(Position::new(cursor_x, area.y));
            }
        }
        None => {
            // Fits 80 columns: the F-keys are shown next to the cards; past four cards only the
            // first and the last letter.
            let letters: Vec<String> = TAP_KEYS
                .iter()
                .take(card_count)
                .map(|(_, c)| c.to_string())
                .collect();
            let letters = match (letters.first(), letters.last()) {
                (Some(first), Some(last)) if letters.len() > 4 => vec![format!("{first}…{last}")],
                _ => letters,
            };
            let mut spans = Vec::new();
            for (keys, what) in [
                (letters.join(" "), "刷卡 tap"),
                // Both keys scan: the first types a code, the second picks one.
                (format!("{SCAN_KEY} {PICK_KEY}"), "扫码 scan"),
                (TEAR_KEY.to_string(), "拔卡 tear"),
                (HELP_KEY.to_string(), "按键 keys"),
                ("Ctrl-Q".to_string(), "退出 quit"),
            ] {
                if !keys.is_empty() {
                    spans.push(Span::styled(format!(" {keys} "), key));
                    spans.push(Span::raw(format!(" {what} ")));
                }
            }
            frame.render_widget(Paragraph::new(Line::from(spans)), area);
        }
    }
}

pub(super) fn draw_fatal(frame: &mut Frame, area: Rect, error: &str) {
    frame.render_widget(Clear, area);
    let style = Style::new().fg(Color::White).bg(Color::Red);
    let block = Block::bordered().title(" 致命错误 FATAL ").style(style);
    let text = vec![
        Line::from("停止收款 The till has stopped selling.").style(Style::new().add_modifier(Modifier::BOLD)),
        Line::from(""),
        Line::from("账本写入失败 The journal failed:"),
        Line::from(error),
        Line::from(""),
        Line::from(
            "No more sales are taken. Fix the cause (disk full? data directory gone?) and start the \
             simulator again: the till resumes its unfinished sales from the journal.",
        ),
        Line::from(""),
        Line::from("按 q 退出 - press q to quit").style(Style::new().add_modifier(Modifier::BOLD)),
    ];
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(block),
        area,
    );
}

pub(super) fn draw_help_screen(frame: &mut Frame, area: Rect, help: &[String]) {
    frame.render_widget(Clear, area);
    let block = Block::bordered().title(" 按键 Keys - 任意键关闭 any key closes ");
    let mut lines: Vec<Line> = help.iter().map(|l| Line::from(l.as_str())).collect();
    lines.extend(sim_key_help().into_iter().map(Line::from));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

pub(super) fn draw_too_small(frame: &mut Frame, area: Rect) {
    let text = format!(
        "终端太小 Terminal too small ({}×{}): please enlarge it to at least {MIN_WIDTH}×{MIN_HEIGHT}. Ctrl-Q 退出 quit",
        area.width, area.height
    );
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

/// Columns `text` takes on a terminal (wide characters count two).
pub(super) fn display_width(text: &str) -> usize {
    Span::raw(text).width()
}

/// `text` padded with spaces to `width` columns (unchanged when already wider).
pub(super) fn pad_right(text: &str, width: usize) -> String {
    let pad = width.saturating_sub(display_width(text));
    format!("{text}{}", " ".repeat(pad))
}

/// `text` right-aligned in `width` columns (unchanged when already wider).
pub(super) fn pad_left(text: &str, width: usize) -> String {
    let pad = width.saturating_sub(display_width(text));
    format!("{}{text}", " ".repeat(pad))
}

/// The key panel beside the displays: [`pc_key_help`] with its combo table shortened to the
/// keys and the manual's words (two columns when `width` allows), so the whole panel fits a
/// 110x32 terminal; `?` shows the full text. Falls back to the full text if its shape changes.
pub(super) fn side_help(help: &[String], width: usize) -> Vec<String> {
    let Some(split) = help.iter().position(|l| l.starts_with("Combos")) else {
        return help.to_vec();
    };
    let mut lines: Vec<String> = help.iter().take(split.saturating_add(1)).cloned().collect();
    let entries: Vec<String> = COMBOS
        .iter()
        .map(|spec| format!("{spec} {}", spec.manual_zh))
        .collect();
    let col_w = entries.iter().map(|e| display_width(e)).max().unwrap_or(0);
    let cols = if col_w.saturating_mul(2).saturating_add(4) <= width {
        2
    } else {
        1
    };
    let rows = entries.len().div_ceil(cols);
    for row in 0..rows {
        let left = entries.get(row).map_or("", String::as_str);
        let line = match entries.get(row.saturating_add(rows)).filter(|_| cols == 2) {
            Some(right) => format!("  {}  {right}", pad_right(left, col_w)),
            None => format!("  {left}"),
        };
        lines.push(line);
    }
    // What follows the combo table (the timing rules); the table's own rows are indented.
    lines.extend(
        help.iter()
            .skip(split.saturating_add(1))
            .filter(|l| !l.starts_with(' '))
            .cloned(),
    );
    lines
}

/// The longest end of `text` that fits in `width` columns (so the cursor end of a long code shows).
pub(super) fn tail_fitting(text: &str, width: usize) -> &str {
    let mut start = text.len();
    let mut used = 0;
    for (i, c) in text.char_indices().rev() {
        let w = display_width(c.encode_utf8(&mut [0; 4]));
        if used + w > width {
            break;
        }
        used += w;
        start = i;
    }
    text.get(start..).unwrap_or("")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::core::Screen;
    use crate::sim::tui::keys::combo_hint;
    use crate::sim::tui::MAX_CODE_CHARS;
    use keymap::pc_key_help;
    use keymap::TillKey;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use shared::Fen;

    #[test]
    fn the_side_panel_keeps_every_key_and_combo() {
        let help = pc_key_help();
        for width in [66, 40] {
            let side = side_help(&help, width).join("\n");
            for spec in COMBOS {
                assert!(
                    side.contains(&spec.to_string()) && side.contains(spec.manual_zh),
                    "{spec}:\n{side}"
                );
            }
            for line in help.iter().take(10) {
                assert!(side.contains(line.as_str()), "{line}");
            }
            assert!(side.contains("Clear waits"), "{side}");
        }
        assert_eq!(
            side_help(&help, 66).len(),
            10 + 1 + COMBOS.len().div_ceil(2) + 1,
            "two columns"
        );
        assert_eq!(
            side_help(&help, 40).len(),
            10 + 1 + COMBOS.len() + 1,
            "one column"
        );
        let odd = vec!["something else".to_string()];
        assert_eq!(side_help(&odd, 66), odd);
    }

    #[test]
    fn text_helpers() {
        assert_eq!(display_width("欢迎光临"), 8);
        assert_eq!(pad_right("机号1", 8), "机号1   ");
        assert_eq!(pad_right("toolong", 3), "toolong");
        assert_eq!(tail_fitting("1234567890", 4), "7890");
        assert_eq!(tail_fitting("码码码", 5), "码码");
        assert_eq!(tail_fitting("abc", 0), "");
        assert_eq!(tap_label(0), "F5 z");
        assert_eq!(tap_label(99), "");
    }

    pub(in crate::sim::tui) struct Fixture {
        pub(in crate::sim::tui) displays: Displays,
        cards: Vec<SimCard>,
        help: Vec<String>,
        log: VecDeque<LogEntry>,
    }

    pub(in crate::sim::tui) fn fixture() -> Fixture {
        let screen = |lines: &[&str]| Screen {
            lines: lines.iter().map(|l| l.to_string()).collect(),
        };
        let mut cards = crate::sim::cards::default_cards();
        if let Some(card) = cards.first_mut() {
            card.balance = Fen::new(8_750);
        }
        let log = [
            LogEntry {
                time: "11:30:01".into(),
                kind: LogKind::Info,
                text: "刷卡 tap card-1 1A2B3C4D".into(),
            },
            LogEntry {
                time: "11:30:01".into(),
                kind: LogKind::Record,
                text: "1 m1 sale-intent ¥12.50".into(),
            },
            LogEntry {
                time: "11:30:02".into(),
                kind: LogKind::Good,
                text: "♪ 成功".into(),
            },
        ];
        Fixture {
            displays: Displays {
                merchant: screen(&["机号1 联机", "交易成功", "¥12.50", "余额 ¥87.50"]),
                customer: screen(&["交易成功", "余额 ¥87.50"]),
                qr: None,
            },
            cards,
            help: pc_key_help(),
            log: log.into_iter().collect(),
        }
    }

    pub(in crate::sim::tui) fn view(f: &Fixture) -> View<'_> {
        View {
            displays: &f.displays,
            cards: &f.cards,
            help: &f.help,
            log: &f.log,
            prompt: None,
            help_open: false,
            picker: None,
            fatal: None,
            combo_hint: None,
            tear_armed: None,
        }
    }

    /// Renders `view` at `width`×`height`; returns the screen as text, one row per line.
    pub(in crate::sim::tui) fn render(
        view: &View,
        width: u16,
        height: u16,
    ) -> (String, ratatui::buffer::Buffer) {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
        terminal.draw(|frame| draw(frame, view)).expect("draw");
        let buffer = terminal.backend().buffer().clone();
        // The buffer's Debug form writes each row once, skipping the cells wide characters cover.
        (format!("{buffer:?}"), buffer)
    }

    #[test]
    fn the_main_screen_shows_displays_cards_keys_and_log() {
        let f = fixture();
        let (text, buffer) = render(&view(&f), 100, 30);
        for expected in [
            "商户屏 Merchant",
            "顾客屏 Customer",
            "机号1 联机",
            "交易成功",
            "余额 ¥87.50",
            "card-1",
            "1A2B3C4D",
            "¥87.50",
            "0452617A8B9C80",
            "F5 z",
            "F8 b",
            "外校卡",
            "空白卡",
            "非校园卡",
            "Esc / c",
            "清零",
            "♪ 成功",
            "sale-intent",
            " / p ",
            "扫码 scan",
            "tear the next card write",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
        // Wide characters keep the boxes square: the merchant box's right border is in place on
        // the rows with Chinese text.
        let right = LEFT_WIDTH - 1;
        for y in 0..MERCHANT_H + CUSTOMER_H {
            let symbol = buffer.cell((right, y)).map(|c| c.symbol().to_string());
            let expected = if y == 0 || y == MERCHANT_H {
                "┐"
            } else if y == MERCHANT_H - 1 || y == MERCHANT_H + CUSTOMER_H - 1 {
                "┘"
            } else {
                "│"
            };
            assert_eq!(symbol.as_deref(), Some(expected), "row {y}:\n{text}");
        }
    }

    #[test]
    fn prompt_combo_and_tear_states_show() {
        let f = fixture();
        let mut v = view(&f);
        v.prompt = Some("134567890123456789");
        v.combo_hint = combo_hint(&[TillKey::Clear], true);
        v.tear_armed = Some(WriteFault::PulledAfterWrite);
        let (text, _) = render(&v, 110, 32);
        for expected in [
            "扫码 Scan code",
            "134567890123456789",
            "Esc 取消",
            "清零+ …",
            "next write: pulled-after-write",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn fatal_and_help_screens() {
        let f = fixture();
        let mut v = view(&f);
        v.help_open = true;
        let (text, _) = render(&v, 110, 40);
        assert!(
            text.contains("任意键关闭")
                && text.contains("F2+1+7")
                && text.contains("Ctrl-C / Ctrl-Q"),
            "{text}"
        );
        v.fatal = Some("journal: I/O error on journal /x: No space left on device");
        let (text, _) = render(&v, 100, 30);
        assert!(
            text.contains("FATAL")
                && text.contains("No space left")
                && text.contains("press q to quit"),
            "{text}"
        );
        assert!(
            !text.contains("Merchant"),
            "nothing of the till stays on screen:\n{text}"
        );
    }

    #[test]
    fn a_small_terminal_asks_to_be_enlarged() {
        let f = fixture();
        let (text, _) = render(&view(&f), 60, 12);
        assert!(
            text.contains("终端太小") && text.contains("enlarge"),
            "{text}"
        );
        let (text, _) = render(&view(&f), MIN_WIDTH, MIN_HEIGHT);
        assert!(
            text.contains("机号1") && !text.contains("终端太小"),
            "{text}"
        );
    }

    #[test]
    fn every_size_draws_without_panicking() {
        let mut f = fixture();
        // Worst cases: lines wider than any box, many cards, a long prompt, a full log.
        f.displays.merchant.lines[1] = "长".repeat(200);
        f.cards = (0..40)
            .flat_map(|_| crate::sim::cards::default_cards())
            .collect();
        for i in 0..LOG_LEN {
            f.log.push_back(LogEntry {
                time: "00:00:00".into(),
                kind: LogKind::Bad,
                text: format!("{i} {}", "x".repeat(300)),
            });
        }
        let code = "码".repeat(MAX_CODE_CHARS);
        let mut v = view(&f);
        v.prompt = Some(&code);
        v.combo_hint = Some("F2+1+ …".into());
        v.tear_armed = Some(WriteFault::PulledAfterWrite);
        for width in (0..=130)
            .step_by(7)
            .chain([1, 2, MIN_WIDTH - 1, MIN_WIDTH, 91, 92, 93])
        {
            for height in (0..=45).step_by(4).chain([1, MIN_HEIGHT - 1, MIN_HEIGHT]) {
                render(&v, width, height);
                if let Some(plan) = plan_layout(Rect::new(0, 0, width, height), f.cards.len()) {
                    let area = Rect::new(0, 0, width, height);
                    for rect in [plan.merchant, plan.customer, plan.cards, plan.log, plan.bar]
                        .into_iter()
                        .chain(plan.help)
                    {
                        assert_eq!(
                            area.intersection(rect),
                            rect,
                            "{width}x{height}: {rect:?} outside"
                        );
                    }
                }
            }
        }
        v.help_open = true;
        render(&v, 3, 2);
        v.fatal = Some("x");
        render(&v, 1, 1);
        render(&v, 0, 0);
    }

    #[test]
    fn layout_at_the_checked_sizes() {
        let plan = plan_layout(Rect::new(0, 0, 110, 32), 4).expect("110x32 fits");
        assert!(plan.help.is_some());
        assert_eq!(plan.log.height, LOG_MAX_H, "eight log lines");
        assert!(plan.cards.height >= 4 + 3);
        let plan = plan_layout(Rect::new(0, 0, 80, 24), 4).expect("80x24 fits");
        assert_eq!(plan.help, None, "too narrow for the key panel: ? shows it");
        assert!(plan.log.height >= LOG_MIN_H);
        assert_eq!(plan_layout(Rect::new(0, 0, 80, MIN_HEIGHT - 1), 4), None);
        let f = fixture();
        let (text, _) = render(&view(&f), 80, 24);
        assert!(
            text.contains("z…m") && text.contains("退出 quit"),
            "the bar fits 80 columns:\n{text}"
        );
    }
}

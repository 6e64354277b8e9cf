//! The till's displays and buzzer as the device loop drives them. [`DeviceDisplay`] is the
//! seam for the panel drivers ([`super::panel::PanelDisplay`] on a Linux framebuffer or a PNG
//! file, [`super::buzzer::Signalling`] for the buzzer and light); [`LineDisplay`] is the plain
//! one: every change of the merchant's or the customer's display, and every beep, as one text
//! line on a stream (the console, a serial line to a character LCD's controller, or a pipe to a
//! panel process). The format is the headless script's (`M| line | line`, `C| …`,
//! `BEEP success`), so a device log reads like a replayed day.

use std::io::Write;

use crate::core::{Beep, Displays};
use crate::present::screen_text;

/// Where the till shows its screens and sounds its buzzer.
pub trait DeviceDisplay {
    /// The displays changed (called only when they did).
    fn show(&mut self, displays: &Displays) -> std::io::Result<()>;
    fn beep(&mut self, beep: Beep) -> std::io::Result<()>;
    /// Called by the loop on every pass with the monotonic time: whatever plays over time (the
    /// buzzer's patterns) moves on here, without blocking.
    fn poll(&mut self, _now_mono_ms: u64) -> std::io::Result<()> {
        Ok(())
    }
    /// When [`DeviceDisplay::poll`] next has something to do (the loop waits no longer).
    fn next_change_ms(&self, _now_mono_ms: u64) -> Option<u64> {
        None
    }
}

impl<D: DeviceDisplay + ?Sized> DeviceDisplay for Box<D> {
    fn show(&mut self, displays: &Displays) -> std::io::Result<()> {
        (**self).show(displays)
    }
    fn beep(&mut self, beep: Beep) -> std::io::Result<()> {
        (**self).beep(beep)
    }
    fn poll(&mut self, now_mono_ms: u64) -> std::io::Result<()> {
        (**self).poll(now_mono_ms)
    }
    fn next_change_ms(&self, now_mono_ms: u64) -> Option<u64> {
        (**self).next_change_ms(now_mono_ms)
    }
}

/// Displays and beeps as lines on a stream; only the screen that changed is written.
pub struct LineDisplay<W: Write> {
    out: W,
    shown: Option<Displays>,
}

impl<W: Write> LineDisplay<W> {
    pub fn new(out: W) -> LineDisplay<W> {
        LineDisplay { out, shown: None }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> DeviceDisplay for LineDisplay<W> {
    fn show(&mut self, displays: &Displays) -> std::io::Result<()> {
        let before = self.shown.as_ref();
        if before.is_none_or(|b| b.merchant != displays.merchant) {
            writeln!(self.out, "M| {}", screen_text(&displays.merchant))?;
        }
        if before.is_none_or(|b| b.customer != displays.customer) {
            writeln!(self.out, "C| {}", screen_text(&displays.customer))?;
        }
        // The offline QR payload, as the script runner prints it: a till without a panel shows
        // what a phone would scan (an order, not a bearer token).
        if let Some(payload) = &displays.qr {
            if before.is_none_or(|b| b.qr.as_ref() != Some(payload)) {
                writeln!(self.out, "QR {payload}")?;
            }
        }
        self.out.flush()?;
        self.shown = Some(displays.clone());
        Ok(())
    }

    fn beep(&mut self, beep: Beep) -> std::io::Result<()> {
        let name = match beep {
            Beep::Success => "success",
            Beep::Error => "error",
            Beep::Attention => "attention",
        };
        writeln!(self.out, "BEEP {name}")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Screen;

    fn displays(merchant: &str, customer: &str) -> Displays {
        Displays {
            merchant: Screen {
                lines: vec![merchant.to_string(), String::new()],
            },
            customer: Screen {
                lines: vec![customer.to_string()],
            },
            qr: None,
        }
    }

    #[test]
    fn only_the_screen_that_changed_is_written() {
        let mut display = LineDisplay::new(Vec::new());
        display.show(&displays("请输入金额", "欢迎")).unwrap();
        display.show(&displays("金额 5.00", "欢迎")).unwrap();
        display.show(&displays("金额 5.00", "请刷卡 5.00")).unwrap();
        display.beep(Beep::Success).unwrap();
        let text = String::from_utf8(display.into_inner()).unwrap();
        assert_eq!(
            text,
            "M| 请输入金额\nC| 欢迎\nM| 金额 5.00\nC| 请刷卡 5.00\nBEEP success\n"
        );
    }

    #[test]
    fn an_offline_qr_is_written_once_when_it_appears_or_changes() {
        let mut display = LineDisplay::new(Vec::new());
        let mut shown = displays("扫码待付", "请刷卡或扫码");
        shown.qr = Some("CQ1AAAA".to_string());
        display.show(&shown).unwrap();
        display.show(&shown).unwrap();
        shown.qr = Some("CQ1BBBB".to_string());
        display.show(&shown).unwrap();
        shown.qr = None;
        display.show(&shown).unwrap();
        let text = String::from_utf8(display.into_inner()).unwrap();
        assert_eq!(
            text,
            "M| 扫码待付\nC| 请刷卡或扫码\nQR CQ1AAAA\nQR CQ1BBBB\n"
        );
    }
}

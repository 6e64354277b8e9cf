//! The script's campus app (issue 11): `app pay NAME` scans the offline QR code the till shows
//! and pays it from the script campus's account NAME through
//! [`crate::sim::payments::PaymentBackend::pay_qr`], as the student's phone would over its own
//! network (whatever the till's link); `app type` types the confirmation code the app showed on
//! the till's keypad, so a script can confirm a QR sale without knowing the code (the terminal
//! id, hence the payload and the code, is random per journal).

use shared::qrpay::{QrOrder, CONFIRMATION_DIGITS};
use std::io::Write;

use super::{ScriptError, ScriptRunner};
use keymap::TillKey;

impl<W: Write> ScriptRunner<W> {
    /// `app pay NAME` and `app type`.
    pub(super) fn app_line(&mut self, rest: &str) -> Result<(), ScriptError> {
        let words: Vec<&str> = rest.split_whitespace().collect();
        match words[..] {
            ["pay", name] => self.app_pay(name),
            ["type"] => self.app_type(),
            _ => Err(self.parse_error("usage: app pay ACCOUNT, or app type".into())),
        }
    }

    /// Pays the last QR payload the till showed from account `name`; prints `APP …`.
    fn app_pay(&mut self, name: &str) -> Result<(), ScriptError> {
        let Some(payload) = self.last_qr.clone() else {
            return Err(self.parse_error("app pay: the till has shown no QR code yet".into()));
        };
        let account = self
            .campus
            .account(name)
            .map(|a| (a.name.clone(), a.account))
            .ok_or_else(|| self.parse_error(format!("no campus account '{name}'")))?;
        let intent = QrOrder::parse(&payload)
            .map(|order| format!("#{}", order.intent.0))
            .unwrap_or_else(|_| "?".into());
        let said = match self.campus.pay_qr(&payload, account.1, self.wall) {
            Ok(code) => {
                self.app_code = Some(code);
                // The code is the merchant's to type, shown by the phone: the script prints it
                // (a confirmation, not a payment code: it pays nothing by itself).
                format!(
                    "order {intent} paid by {} ({}), code {code:0width$}",
                    account.0,
                    account.1 .0,
                    width = CONFIRMATION_DIGITS as usize
                )
            }
            Err(refusal) => format!("order {intent} refused: {refusal}"),
        };
        if !self.quiet {
            writeln!(self.out, "{} APP {said}", self.stamp())?;
        }
        Ok(())
    }

    /// Types the code the app last showed on the keypad, then Enter.
    fn app_type(&mut self) -> Result<(), ScriptError> {
        let Some(code) = self.app_code else {
            return Err(self.parse_error("app type: the app has shown no code yet".into()));
        };
        let text = format!("{code:0width$}", width = CONFIRMATION_DIGITS as usize);
        let mut keys: Vec<TillKey> = text
            .bytes()
            .filter_map(|b| TillKey::digit(b - b'0'))
            .collect();
        keys.push(TillKey::Enter);
        self.press_all(keys)
    }
}

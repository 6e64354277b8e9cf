//! The one error type of the crate: a piece of text that does not name a key, slot or command.
//!
//! It carries the rejected input and the accepted spellings, so a script or scenario author sees
//! what to write instead without reading the source.

use std::fmt;

/// Text that could not be parsed as a [`TillKey`](crate::TillKey),
/// [`RecentSlot`](crate::RecentSlot) or [`Command`](crate::Command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    what: &'static str,
    input: String,
    expected: &'static str,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, input: &str, expected: &'static str) -> Self {
        Self {
            what,
            input: input.to_owned(),
            expected,
        }
    }

    /// The text that was rejected.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What the text was parsed as: `"till key"`, `"recent slot"` or `"command"`.
    pub fn what(&self) -> &'static str {
        self.what
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a {}; expected {}",
            self.input, self.what, self.expected
        )
    }
}

impl std::error::Error for ParseError {}

//! What the whole-till test binaries share instead of copying it: a till on a temporary data
//! directory driven by hand on a virtual clock ([`Till`]), reading its journal back
//! ([`journal`]), and the one seeded generator the randomised tests use ([`Rng`]). Each test binary includes it with `mod common;`; not every
//! binary uses every helper, hence the `dead_code` and `unused_imports` allowance.
#![allow(dead_code, unused_imports)]

pub mod journal;
mod rng;
mod till;

pub use rng::Rng;
pub use till::Till;

//! Fuzz target: the simulator's cards file `sim-cards.toml` as `sim::cards` loads it (parsed,
//! validated, every card's blocks put on the emulated chip, saved back), through the public
//! loader on a scratch directory.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pos_firmware::sim::cards::{SimCards, SIM_CARDS_FILE};
use std::path::PathBuf;
use std::sync::OnceLock;
use till_fuzz::MAX_INPUT_BYTES;

/// This process's scratch directory (under `TMPDIR`; run.sh points it at /dev/shm when there).
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("till-fuzz-sim-cards-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the scratch directory can be made");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    let path = scratch().join(SIM_CARDS_FILE);
    std::fs::write(&path, data).expect("the scratch file can be written");
    if let Ok(cards) = SimCards::open(scratch()) {
        // What was accepted is saved back in a form that loads to the same cards.
        let views = cards.cards().to_vec();
        drop(cards);
        let again = SimCards::open(scratch()).expect("a saved cards file loads again");
        assert_eq!(again.cards(), &views[..]);
    }
});

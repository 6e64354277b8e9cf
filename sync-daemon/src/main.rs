//! The sync daemon: the separate process that will upload the till's journal to the campus
//! server over MQTT and bring down configuration and the lost-card blacklist (see
//! ARCHITECTURE.md, "sync-daemon"). This is the workspace skeleton only: the till runs and sells
//! entirely without it, and the upload protocol arrives with the sync issue. Until then it tells
//! whoever starts it so, and exits with a failure status rather than pretending to sync.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "sync-daemon {}: journal upload is not built yet; the till keeps every sale in its own \
         journal (pos-data/) until it is",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}

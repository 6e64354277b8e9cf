//! A whole till (the real [`TillRuntime`] and its sled journal) on a temporary data directory,
//! driven by hand on a virtual clock: the part every whole-till test rig starts from. The rig
//! around it brings the card reader (emulated chip, simulated cards) and hands it to
//! [`Till::handle`].

use pos_firmware::core::config::TillConfig;
use pos_firmware::runtime::{CardWriter, Input, Now, Output, TillRuntime};

/// A till on its own data directory, the directory kept (and removed) with it.
pub struct Till {
    pub dir: tempfile::TempDir,
    /// `None` while the till is down (between a power cut and [`Till::reopen`]).
    pub runtime: Option<TillRuntime>,
    pub now: Now,
}

impl Till {
    /// A till on a fresh temporary data directory, started at `now` with `config`.
    pub fn open(config: TillConfig, now: Now) -> Till {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let runtime = TillRuntime::open(dir.path(), config, now).expect("the till opens");
        Till {
            dir,
            runtime: Some(runtime),
            now,
        }
    }

    pub fn runtime(&self) -> &TillRuntime {
        self.runtime.as_ref().expect("the till is running")
    }

    pub fn runtime_mut(&mut self) -> &mut TillRuntime {
        self.runtime.as_mut().expect("the till is running")
    }

    /// Both clocks move on by `ms`.
    pub fn pass(&mut self, ms: u64) {
        self.now.wall = self.now.wall.saturating_add_millis(ms);
        self.now.mono_ms += ms;
    }

    /// Hands `input` to the till at the current instant, with `reader` as its card reader.
    pub fn handle(&mut self, input: Input, reader: &mut dyn CardWriter) -> Vec<Output> {
        let now = self.now;
        self.runtime_mut()
            .handle(input, now, reader)
            .expect("the journal works")
    }

    /// The process is gone (power cut): the till is down until [`Till::reopen`].
    pub fn stop(&mut self) {
        self.runtime = None;
    }

    /// Starts the till again from the journal on disk, with `config`, at the current instant.
    pub fn reopen(&mut self, config: TillConfig) {
        self.runtime = None;
        let runtime =
            TillRuntime::open(self.dir.path(), config, self.now).expect("the till reopens");
        self.runtime = Some(runtime);
    }

    /// The merchant display's lines.
    pub fn merchant(&self) -> Vec<String> {
        self.runtime().displays().merchant.lines
    }

    /// The customer display's lines.
    pub fn customer(&self) -> Vec<String> {
        self.runtime().displays().customer.lines
    }
}

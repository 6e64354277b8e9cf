//! Harness for the sync path: runs the real `sync-daemon` binary against a till's link socket
//! and a broker, keeps its log in a file (the tests count its reconnects there), and kills it
//! with SIGKILL whenever a test says so.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// A binary of this workspace, (re)built once per test process with `cargo build` (a no-op when
/// it is up to date): `cargo test -p till-tests` does not rebuild another package's binaries,
/// and a stale `sync-daemon` would silently test old code.
pub fn workspace_binary(package: &str, binary: &str) -> PathBuf {
    static BUILT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let path = profile_dir.join(binary);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if built.insert(binary.to_string()) {
        let release = profile_dir
            .file_name()
            .is_some_and(|name| name == "release");
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-p", package, "--bin", binary]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("cargo can be run");
        assert!(status.success(), "building {binary} failed");
    }
    path
}

/// How the daemon reaches the broker in a test.
#[derive(Debug, Clone)]
pub struct DaemonSetup {
    pub socket: PathBuf,
    pub broker_port: u16,
    pub username: Option<String>,
    /// Written to a file and passed with `--password-file`.
    pub password: Option<String>,
    pub tls_ca: Option<PathBuf>,
    pub ack_timeout_ms: u64,
    pub broker_backoff_cap_ms: u64,
    pub batch_records: u32,
    /// Where the daemon's log and password file go.
    pub dir: PathBuf,
}

impl DaemonSetup {
    pub fn new(socket: &Path, broker_port: u16, dir: &Path) -> DaemonSetup {
        DaemonSetup {
            socket: socket.to_path_buf(),
            broker_port,
            username: None,
            password: None,
            tls_ca: None,
            ack_timeout_ms: 3_000,
            broker_backoff_cap_ms: 1_000,
            batch_records: 100,
            dir: dir.to_path_buf(),
        }
    }
}

/// A running `sync-daemon`.
pub struct DaemonProcess {
    child: Option<Child>,
    log: PathBuf,
    /// SIGKILLs so far (over restarts).
    pub kills: u32,
    setup: DaemonSetup,
    starts: u32,
}

impl DaemonProcess {
    pub fn start(setup: &DaemonSetup) -> DaemonProcess {
        let mut daemon = DaemonProcess {
            child: None,
            log: setup.dir.join("sync-daemon.log"),
            kills: 0,
            setup: setup.clone(),
            starts: 0,
        };
        daemon.launch();
        daemon
    }

    fn launch(&mut self) {
        let setup = &self.setup;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the daemon's log file opens");
        let mut command = Command::new(workspace_binary("sync-daemon", "sync-daemon"));
        command
            .arg("--socket")
            .arg(&setup.socket)
            .args(["--broker-host", "127.0.0.1", "--broker-port"])
            .arg(setup.broker_port.to_string())
            .arg("--ack-timeout-ms")
            .arg(setup.ack_timeout_ms.to_string())
            .arg("--broker-backoff-cap-ms")
            .arg(setup.broker_backoff_cap_ms.to_string())
            .arg("--batch-records")
            .arg(setup.batch_records.to_string())
            .arg("--seed")
            .arg((u64::from(self.starts) + 1).to_string())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(user) = &setup.username {
            command.arg("--username").arg(user);
        }
        if let Some(password) = &setup.password {
            let file = setup.dir.join("daemon-password");
            std::fs::write(&file, format!("{password}\n")).expect("writing the password file");
            command.arg("--password-file").arg(file);
        }
        if let Some(ca) = &setup.tls_ca {
            command.arg("--tls-ca").arg(ca);
        }
        self.child = Some(command.spawn().expect("sync-daemon starts"));
        self.starts += 1;
    }

    /// SIGKILL, whatever it was doing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.kills += 1;
        }
    }

    /// Starts it again after [`DaemonProcess::kill`].
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Whether the current run is alive (not exited, not killed).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Everything the daemon logged, over all its runs.
    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// How often the daemon reported "broker up" (first connections and reconnects).
    pub fn broker_connections(&self) -> usize {
        self.log_text().matches("broker up").count()
    }

    /// The last `lines` lines of its log (for failure messages).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

//! The load test's processes: one real `sync-daemon` per fake till (its log in a file of its
//! own, SIGKILLed on drop), the machine's limits the report states, and resident memory read
//! from `/proc` (the broker's, the daemons', the harness's own).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// One running `sync-daemon` of the fleet.
pub struct FleetDaemon {
    child: Child,
    log: PathBuf,
}

impl FleetDaemon {
    /// Starts `binary` against the till's `socket` and the broker on `port`, logging to `log`;
    /// `extra_args` are passed through (the smoke test shortens the daemon's timings).
    pub fn start(
        binary: &Path,
        socket: &Path,
        port: u16,
        seed: u64,
        log: &Path,
        extra_args: &[String],
    ) -> std::io::Result<FleetDaemon> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(binary)
            .arg("--socket")
            .arg(socket)
            .args(["--broker-host", "127.0.0.1", "--broker-port"])
            .arg(port.to_string())
            .arg("--seed")
            .arg(seed.to_string())
            .args(extra_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()?;
        Ok(FleetDaemon {
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log so far (empty when unreadable).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of its log (for a report on a till that did not drain).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for FleetDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The resident memory of process `pid` in KiB (`VmRSS` in `/proc/PID/status`); `None` when
/// it is gone or the line is missing.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib_field(&status, "VmRSS:")
}

/// The harness's own resident memory (campus simulator + fake tills) in KiB.
pub fn own_rss_kib() -> Option<u64> {
    rss_kib(std::process::id())
}

/// A `NAME:   1234 kB` field of a `/proc` status or meminfo text, in KiB.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

/// What the machine allows, stated with every report.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineLimits {
    pub cpus: usize,
    pub memory_mib: u64,
    /// The soft limit on open files of this process (children inherit it).
    pub open_files: u64,
    /// The soft limit on processes of this user.
    pub processes: u64,
}

/// Reads the machine's limits.
pub fn machine_limits() -> MachineLimits {
    let limit = |resource| {
        let mut value = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes only into the struct we pass, which outlives the call.
        let ok = unsafe { libc::getrlimit(resource, &mut value) } == 0;
        if ok {
            value.rlim_cur
        } else {
            0
        }
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    MachineLimits {
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        memory_mib: kib_field(&meminfo, "MemTotal:").unwrap_or(0) / 1024,
        open_files: limit(libc::RLIMIT_NOFILE),
        processes: limit(libc::RLIMIT_NPROC),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_size_is_read_from_a_status_text_in_kib() {
        let status = "Name:\tmosquitto\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\n";
        assert_eq!(kib_field(status, "VmRSS:"), Some(5120));
        assert_eq!(kib_field(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_has_a_resident_size_and_the_machine_has_limits() {
        assert!(own_rss_kib().is_some_and(|kib| kib > 0));
        let limits = machine_limits();
        assert!(limits.cpus > 0 && limits.memory_mib > 0 && limits.open_files > 0);
    }
}

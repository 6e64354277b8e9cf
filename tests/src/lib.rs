//! Harness for process-level tests of the till: finds the real `pos-firmware` binary, runs it in
//! headless script mode with a piped standard input, reads its output line by line with bounded
//! waits, and kills it with SIGKILL at exact or random points. After a kill, tests open the
//! journal and the simulated cards directly to check that no money was lost or taken twice.
//!
//! The sync path's harness lives in modules: [`mosquitto`] (a real broker), [`campus`],
//! [`campus_store`] and [`campus_pay`] (the campus server simulator and its payment side),
//! [`campus_files`] (its configuration and blacklist files), [`statement`] (the merchant's
//! statement from the store and the payment ledger), [`sync`] (till + daemon processes).

pub mod campus;
pub mod campus_files;
pub mod campus_pay;
pub mod campus_store;
pub mod fake_till;
pub mod load;
pub mod mosquitto;
pub mod statement;
pub mod sync;

use pos_firmware::journal::Journal;
use pos_firmware::sim::cards::{default_cards, SimCards};
use shared::record::{JournalRecord, Payer, RecordBody};
use shared::{Fen, Seq};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The longest any test waits for one expected line of the till's output.
pub const LINE_WAIT: Duration = Duration::from_secs(30);

/// The `pos-firmware` binary of this build (built next to the test binary by `cargo test
/// --workspace`; built on demand otherwise).
pub fn till_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    // target/<profile>/deps/<test> → target/<profile>/pos-firmware
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let binary = profile_dir.join("pos-firmware");
    if !binary.exists() {
        let release = profile_dir
            .file_name()
            .is_some_and(|name| name == "release");
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-p", "pos-firmware", "--bin", "pos-firmware"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("cargo can be run to build the till");
        assert!(status.success(), "building pos-firmware failed");
    }
    binary
}

/// A till process in headless script mode, fed line by line.
pub struct TillProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Everything the till printed so far (for failure messages).
    pub transcript: Vec<String>,
}

impl TillProcess {
    /// Starts the till on `data_dir` with extra CLI arguments (e.g. `--pause-at`).
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> TillProcess {
        TillProcess::start_logged(data_dir, extra_args, None)
    }

    /// Like [`TillProcess::start`], its log (standard error) appended to `log` when given.
    pub fn start_logged(data_dir: &Path, extra_args: &[&str], log: Option<&Path>) -> TillProcess {
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("the till's log file opens"),
            ),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(till_binary())
            .args(["script", "-", "--data-dir"])
            .arg(data_dir)
            .args(extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the till binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stdin = child.stdin.take();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        TillProcess {
            child,
            stdin,
            lines,
            transcript: Vec::new(),
        }
    }

    /// Sends script lines.
    pub fn send(&mut self, script: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            // A till that already died (killed, or paused and killed) simply stops reading.
            let _ = stdin.write_all(script.as_bytes());
            let _ = stdin.flush();
        }
    }

    /// Waits (at most [`LINE_WAIT`]) for a line containing `marker`; returns it.
    pub fn wait_for(&mut self, marker: &str) -> String {
        let deadline = Instant::now() + LINE_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.transcript.push(line.clone());
                    if line.contains(marker) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "the till never printed \"{marker}\"; it printed:\n{}",
                    self.transcript.join("\n")
                ),
            }
        }
    }

    /// Like [`TillProcess::wait_for`], but gives up after `timeout` and returns `None` (for a
    /// test that drives the till's clock until something happens).
    pub fn wait_for_within(&mut self, marker: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.transcript.push(line.clone());
                    if line.contains(marker) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "the till stopped before printing \"{marker}\"; it printed:\n{}",
                    self.transcript.join("\n")
                ),
            }
        }
    }

    /// Closes standard input and waits for a clean exit.
    pub fn finish(mut self) -> Vec<String> {
        self.stdin = None;
        while let Ok(line) = self.lines.recv_timeout(LINE_WAIT) {
            self.transcript.push(line);
        }
        let status = self.child.wait().expect("the till can be waited for");
        let transcript = std::mem::take(&mut self.transcript);
        assert!(
            status.success(),
            "the till failed ({status}):\n{}",
            transcript.join("\n")
        );
        transcript
    }

    /// SIGKILL: no chance to flush or clean up, as in a power cut of the process.
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for TillProcess {
    /// A till is never left behind, also when a test fails half-way (a paused till sleeps forever).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the journal says happened, checked against its invariants.
#[derive(Debug, Default)]
pub struct JournalAudit {
    pub records: u64,
    pub intents: u64,
    pub committed: u64,
    pub recovered: u64,
    pub aborted: u64,
    pub in_doubt: u64,
    /// Committed amount per card UID (hex).
    pub charged: BTreeMap<String, Fen>,
    /// Intents (sales and top-ups) still unresolved.
    pub unresolved: BTreeSet<Seq>,
    pub load_intents: u64,
    pub loads_committed: u64,
    /// Committed top-ups per card UID (hex).
    pub loaded: BTreeMap<String, Fen>,
}

/// Reads the whole journal in `data_dir` and checks: contiguous seqs from 1; every resolution
/// refers to an earlier intent; no intent resolved twice; the snapshot's pending list is exactly
/// the unresolved intents.
pub fn audit_journal(data_dir: &Path) -> JournalAudit {
    let journal = Journal::open(data_dir).expect("the journal opens after the crash");
    let mut audit = JournalAudit::default();
    let mut intents: BTreeMap<Seq, JournalRecord> = BTreeMap::new();
    let mut expected = Seq::FIRST;
    for record in journal.records_from(Seq::FIRST) {
        let record = record.expect("every record decodes");
        assert_eq!(record.seq, expected, "sequence numbers are contiguous");
        expected = record.seq.next().expect("seq fits");
        audit.records += 1;
        let resolve = |intent: Seq, audit: &mut JournalAudit| {
            assert!(
                intents.contains_key(&intent),
                "{} resolves unknown intent {intent}",
                record.seq
            );
            assert!(
                audit.unresolved.remove(&intent),
                "{} resolves intent {intent} a second time",
                record.seq
            );
        };
        match &record.body {
            RecordBody::SaleIntent(_) | RecordBody::OrderIntent(_) => {
                audit.intents += 1;
                audit.unresolved.insert(record.seq);
                intents.insert(record.seq, record.clone());
            }
            RecordBody::SaleCommitted(sale) => {
                resolve(sale.intent, &mut audit);
                audit.committed += 1;
                audit.recovered += u64::from(sale.recovered);
                let total = audit.charged.entry(payer_key(&sale.payer)).or_default();
                *total = total.checked_add(sale.amount).expect("no overflow");
            }
            RecordBody::OrderPaid(order) => {
                resolve(order.intent, &mut audit);
                audit.committed += 1;
                audit.recovered += u64::from(order.recovered);
                let total = audit.charged.entry(payer_key(&order.payer)).or_default();
                *total = total.checked_add(order.amount).expect("no overflow");
            }
            RecordBody::OrderClosed(order) => {
                resolve(order.intent, &mut audit);
                audit.aborted += 1;
            }
            RecordBody::SaleAborted(sale) => {
                resolve(sale.intent, &mut audit);
                audit.aborted += 1;
            }
            RecordBody::SaleInDoubt(sale) => {
                resolve(sale.intent, &mut audit);
                audit.in_doubt += 1;
            }
            RecordBody::LoadIntent(_) => {
                audit.load_intents += 1;
                audit.unresolved.insert(record.seq);
                intents.insert(record.seq, record.clone());
            }
            RecordBody::LoadCommitted(load) => {
                resolve(load.intent, &mut audit);
                audit.loads_committed += 1;
                let total = audit.loaded.entry(load.uid.to_string()).or_default();
                *total = total.checked_add(load.amount).expect("no overflow");
            }
            RecordBody::LoadAborted(load) => {
                resolve(load.intent, &mut audit);
                audit.aborted += 1;
            }
            RecordBody::LoadInDoubt(load) => {
                resolve(load.intent, &mut audit);
                audit.in_doubt += 1;
            }
            RecordBody::ModeChanged(_)
            | RecordBody::MachineNumberChanged { .. }
            | RecordBody::CardIssued(_)
            | RecordBody::CampusConfigApplied { .. }
            | RecordBody::BlacklistReplaced(_)
            | RecordBody::ServerTimeSeen { .. }
            | RecordBody::CardAnomaly(_)
            | RecordBody::StaffPinChanged(_)
            | RecordBody::LoadResumed { .. }
            | RecordBody::CardIssueInterrupted { .. }
            | RecordBody::OrderReversing { .. }
            | RecordBody::OrderPaidAfterClose { .. }
            | RecordBody::QrConfirmedByCode { .. }
            | RecordBody::QrCodeRejected { .. } => {}
            // An offline virtual-card sale is done when journaled (no intent to resolve).
            RecordBody::OfflineCodeSale(sale) => {
                audit.committed += 1;
                let payer = Payer::VirtualCard(sale.account);
                let total = audit.charged.entry(payer_key(&payer)).or_default();
                *total = total.checked_add(sale.amount).expect("no overflow");
            }
        }
    }
    let snapshot = journal.snapshot();
    let pending: BTreeSet<Seq> = snapshot
        .pending
        .iter()
        .map(|p| p.intent)
        .chain(snapshot.pending_loads.iter().map(|p| p.intent))
        .chain(snapshot.pending_orders.iter().map(|p| p.intent))
        .collect();
    assert_eq!(
        pending, audit.unresolved,
        "the snapshot's unresolved sales match the journal"
    );
    assert_eq!(
        journal.snapshot().next_seq,
        expected,
        "the snapshot continues the journal"
    );
    audit
}

/// Checks that every simulated card holds exactly its starting balance plus the top-ups and minus
/// the sales the journal committed for it.
pub fn assert_cards_match_journal(data_dir: &Path, audit: &JournalAudit) {
    let cards = SimCards::open(data_dir).expect("the simulated cards load");
    for initial in default_cards() {
        let now = cards.by_name(&initial.name).expect("card still exists");
        let of = |map: &BTreeMap<String, Fen>| {
            map.get(&initial.uid.to_string())
                .copied()
                .unwrap_or_default()
        };
        let (charged, loaded) = (of(&audit.charged), of(&audit.loaded));
        let expected = initial
            .balance
            .checked_add(loaded)
            .and_then(|funded| funded.checked_sub(charged))
            .expect("the journal never charges more than the card held");
        assert_eq!(
            now.balance, expected,
            "card {}: ¥{} at the start + ¥{loaded} loaded - ¥{charged} charged in the journal",
            initial.name, initial.balance
        );
    }
}

/// The key of `charged` for a payer: a card's UID as the card tests always named it, any other
/// payer as it prints.
fn payer_key(payer: &Payer) -> String {
    match payer {
        Payer::CampusCard(uid) => uid.to_string(),
        other => other.to_string(),
    }
}

//! The real firmware on the link (`pos-firmware script - --link SOCK`): a till that sells, is
//! killed and restarted, and whose journal is read back after it stopped, and the end state every
//! test with it must reach (campus store == journal, watermark == last seq).

use super::*;

/// The till's data directory and socket, and the till process when it runs.
pub(crate) struct RealTill {
    pub(crate) data: std::path::PathBuf,
    pub(crate) socket: std::path::PathBuf,
    /// The till's log (standard error), over all its runs.
    log: std::path::PathBuf,
    pub(crate) process: Option<till_tests::TillProcess>,
    pub(crate) kills: u32,
}

impl RealTill {
    pub(crate) fn start(dir: &std::path::Path) -> RealTill {
        let mut till = RealTill {
            data: dir.join("till"),
            socket: dir.join("link.sock"),
            log: dir.join("till.log"),
            process: None,
            kills: 0,
        };
        till.launch();
        till
    }

    /// Starts the till once to create its journal (and so its terminal id, its MQTT user name),
    /// then stops it; `launch` starts it again.
    pub(crate) fn created(dir: &std::path::Path) -> (RealTill, TerminalId) {
        let mut till = RealTill::start(dir);
        till.process().send("expect journal 0 records\n");
        if let Some(process) = till.process.take() {
            process.finish();
        }
        let terminal = till.journal().terminal;
        (till, terminal)
    }

    pub(crate) fn launch(&mut self) {
        let socket = self.socket.to_string_lossy().into_owned();
        self.process = Some(till_tests::TillProcess::start_logged(
            &self.data,
            &["--link", socket.as_str()],
            Some(&self.log),
        ));
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn process(&mut self) -> &mut till_tests::TillProcess {
        self.process.as_mut().expect("the till is running")
    }

    /// `n` sales of 0.01 on `card` (2 records each); returns at once.
    pub(crate) fn sell(&mut self, n: u32, card: &str) {
        self.process().send(&format!("sales {n} 0.01 {card}\n"));
    }

    pub(crate) fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
            self.kills += 1;
        }
    }

    /// Waits until the till says everything is uploaded, then stops it cleanly.
    pub(crate) fn finish_uploaded(&mut self) {
        let process = self.process();
        process.send("wait-uploaded 60s\nexpect link 0 unsent\n");
        if let Some(process) = self.process.take() {
            process.finish();
        }
    }

    /// The journal (read after the till stopped): records as their stored bytes, and the
    /// watermark.
    pub(crate) fn journal(&self) -> JournalView {
        let journal = pos_firmware::journal::Journal::open(&self.data).expect("the journal opens");
        // The exact bytes sled holds (what the link serves), not a re-encoding of them.
        let records = journal
            .reader()
            .fetch(None, u32::MAX, u32::MAX)
            .expect("every record reads and decodes")
            .into_iter()
            .map(|record| (record.seq, record.bytes))
            .collect();
        JournalView {
            terminal: journal.terminal_id(),
            records,
            uploaded_through: journal.uploaded_through(),
            last_seq: journal.last_seq(),
        }
    }
}

/// What the till's journal holds, read after it stopped.
pub(crate) struct JournalView {
    pub(crate) terminal: TerminalId,
    pub(crate) records: Vec<(Seq, Vec<u8>)>,
    pub(crate) uploaded_through: Option<Seq>,
    pub(crate) last_seq: Option<Seq>,
}

/// The end state every test must reach: store == journal, watermark == last seq.
pub(crate) fn assert_everything_uploaded(campus: &CampusSim, till: &RealTill) -> u64 {
    let JournalView {
        terminal,
        records,
        uploaded_through,
        last_seq,
    } = till.journal();
    assert_store_equals(campus, terminal, &records);
    assert_eq!(
        uploaded_through, last_seq,
        "the till's watermark is its last seq"
    );
    assert_eq!(last_seq, Some(Seq(records.len() as u64)));
    records.len() as u64
}

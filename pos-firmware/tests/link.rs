//! Tests of the firmware's link server against a running till: the real `pos-firmware script -
//! --link PATH` binary (lines fed through its standard input, run as they arrive) and a test
//! daemon speaking the real protocol over the real Unix socket. Covers the handshake, fetches
//! (exact stored bytes, contiguous, bounded), the upload watermark (durable, monotonic, refusing
//! acks beyond the journal, surviving restarts), downlinks (applied and journaled, older and
//! malformed ones rejected), the blacklist at the tap, the status line's unsent count, the
//! till selling on while no daemon is connected or a daemon sends garbage, and code-payment
//! orders: out to a welcomed daemon only, answers back into the core, "not sent" when no daemon
//! takes them (every request the link accepted is either written or reported), and the code
//! never in the till's output or log.
//!
//! Every wait is bounded and waits for a condition (an output line, a frame), never a fixed sleep.
//! In this file `unwrap`/`expect` are assertions: where one fails, the test fails.

use pos_firmware::journal::{Journal, JournalError};
use shared::campus::{Blacklist, CampusConfig, MealPeriodSpec, OfflineLimits};
use shared::codec::{decode_to_daemon, encode_record, encode_to_till};
use shared::link::{
    frame, DownlinkKind, FrameReader, ToDaemon, ToTill, LINK_PROTOCOL_VERSION,
    MAX_RECORDS_PER_FETCH,
};
use shared::record::RecordBody;
use shared::{CardUid, Fen, MachineNumber, MinuteOfDay, Seq, UnixMillis};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The longest any wait in these tests may take before the test fails.
const WAIT_LIMIT: Duration = Duration::from_secs(60);
/// card-1 of the simulator.
const CARD_1_UID: &str = "1A2B3C4D";

/// Text a child process printed, with a condition variable to wait for more.
#[derive(Default)]
struct Captured {
    text: Mutex<String>,
    grew: Condvar,
}

impl Captured {
    fn spawn_reader(stream: impl Read + Send + 'static) -> Arc<Captured> {
        let captured = Arc::new(Captured::default());
        let sink = Arc::clone(&captured);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                sink.text.lock().unwrap().push_str(&line);
                sink.grew.notify_all();
                line.clear();
            }
        });
        captured
    }

    fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Waits until `done(text)` holds; panics with the text after [`WAIT_LIMIT`].
    fn wait_until(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT_LIMIT;
        let mut text = self.text.lock().unwrap();
        loop {
            if done(&text) {
                return text.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; output:\n{text}"
            );
            text = self.grew.wait_timeout(text, left).unwrap().0;
        }
    }
}

/// A running till: `pos-firmware script - --link PATH`.
struct Till {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Captured>,
    err: Arc<Captured>,
    shows: usize,
}

impl Till {
    fn start(dir: &Path) -> Till {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pos-firmware"))
            .args(["script", "-", "--data-dir"])
            .arg(dir)
            .arg("--link")
            .arg(socket(dir))
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the till");
        let out = Captured::spawn_reader(child.stdout.take().unwrap());
        let err = Captured::spawn_reader(child.stderr.take().unwrap());
        let stdin = child.stdin.take();
        let till = Till {
            child,
            stdin,
            out,
            err,
            shows: 0,
        };
        till.out
            .wait_until("the till to start", |t| t.contains("till started"));
        till
    }

    /// Runs script lines and waits until they ran (a `show` after them was echoed).
    fn run(&mut self, lines: &str) -> String {
        let stdin = self.stdin.as_mut().expect("the till runs");
        writeln!(stdin, "{lines}\nshow").unwrap();
        stdin.flush().unwrap();
        self.shows += 1;
        let shows = self.shows;
        // `show` echoes itself, then prints both screens: done once its customer line is out.
        self.out.wait_until(&format!("`{lines}` to run"), |t| {
            t.match_indices("> show\n")
                .nth(shows - 1)
                .is_some_and(|(at, _)| t[at..].contains("C| "))
        })
    }

    /// The merchant's display as last printed.
    fn merchant(&self) -> String {
        let text = self.out.text();
        text.lines()
            .rev()
            .find_map(|l| l.split_once("M| ").map(|(_, m)| m.to_string()))
            .unwrap_or_default()
    }

    /// Ends the script (standard input closes) and waits for a clean exit.
    fn stop(mut self) -> String {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let out = self.out.text();
                assert!(
                    status.success(),
                    "till exited with {status}:\n{out}\n{}",
                    self.err.text()
                );
                return out;
            }
            assert!(Instant::now() < deadline, "the till did not exit");
            // Polling a child's exit has no blocking form with a timeout in std.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Till {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn socket(dir: &Path) -> PathBuf {
    dir.join("link.sock")
}

/// A test daemon: the protocol by hand.
struct Daemon {
    stream: UnixStream,
    frames: FrameReader,
}

impl Daemon {
    fn connect(dir: &Path) -> Daemon {
        let stream = UnixStream::connect(socket(dir)).expect("connect to the till");
        stream.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
        Daemon {
            stream,
            frames: FrameReader::new(),
        }
    }

    /// Connects and says hello; returns the welcome.
    fn hello(dir: &Path) -> (Daemon, ToDaemon) {
        let mut daemon = Daemon::connect(dir);
        daemon.send(&ToTill::Hello {
            protocol: LINK_PROTOCOL_VERSION,
            daemon: "test".into(),
        });
        let welcome = daemon.recv();
        assert!(matches!(welcome, ToDaemon::Welcome { .. }), "{welcome:?}");
        (daemon, welcome)
    }

    fn send(&mut self, message: &ToTill) {
        let bytes = frame(&encode_to_till(message)).unwrap();
        self.stream.write_all(&bytes).unwrap();
    }

    /// The next message, or `None` when the till closed the connection.
    fn try_recv(&mut self) -> Option<ToDaemon> {
        let mut buffer = [0u8; 64 * 1024];
        loop {
            if let Some(payload) = self.frames.next_frame().unwrap() {
                return Some(decode_to_daemon(&payload).unwrap());
            }
            let n = self
                .stream
                .read(&mut buffer)
                .expect("read within the limit");
            if n == 0 {
                return None;
            }
            self.frames.push(&buffer[..n]);
        }
    }

    fn recv(&mut self) -> ToDaemon {
        self.try_recv()
            .expect("a message, not the end of the connection")
    }

    /// The next message that is not an `Appended` push.
    fn answer(&mut self) -> ToDaemon {
        loop {
            match self.recv() {
                ToDaemon::Appended { .. } => continue,
                other => return other,
            }
        }
    }

    fn fetch(&mut self, after: Option<u64>, max: u32) -> Vec<shared::link::UploadRecord> {
        self.send(&ToTill::Fetch {
            after: after.map(Seq),
            max,
        });
        match self.answer() {
            ToDaemon::Records { records } => records,
            other => panic!("expected records, got {other:?}"),
        }
    }

    fn ack(&mut self, through: u64) -> Option<Seq> {
        self.send(&ToTill::Acked {
            through: Seq(through),
        });
        match self.answer() {
            ToDaemon::Watermark { uploaded_through } => uploaded_through,
            other => panic!("expected the watermark, got {other:?}"),
        }
    }

    /// Waits until the till closes the connection (skipping whatever it still sends).
    fn expect_closed(&mut self) {
        while let Some(message) = self.try_recv() {
            if let ToDaemon::Refused { .. } = message {
                continue;
            }
        }
    }
}

fn campus(version: u64, max_sale_yuan: u64) -> CampusConfig {
    CampusConfig {
        version,
        merchant_name: "一食堂".parse().unwrap(),
        meal_periods: vec![MealPeriodSpec {
            name: "午餐".parse().unwrap(),
            start: MinuteOfDay::from_hm(10, 0).unwrap(),
            end: MinuteOfDay::from_hm(14, 0).unwrap(),
        }],
        max_sale: Fen::from_yuan(max_sale_yuan),
        fixed_price_presets: vec![Fen::from_yuan(8)],
        offline: OfflineLimits {
            max_sale: Fen::from_yuan(20),
            max_per_card_per_day: Fen::from_yuan(100),
            max_unsent_total: Fen::from_yuan(5_000),
            max_unsent_age_ms: 86_400_000,
            max_blacklist_age_ms: 86_400_000,
        },
        payments: None,
    }
}

fn journal_count(output: &str) -> u64 {
    output
        .lines()
        .rev()
        .find_map(|l| {
            l.split_once("journal at #")
                .map(|(_, n)| n.trim().parse().unwrap())
        })
        .unwrap()
}

#[test]
fn hello_fetch_and_exact_stored_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut till = Till::start(dir.path());
    let mode = std::fs::metadata(socket(dir.path()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket permissions");
    till.run("sales 3 1.00 card-1");

    let (mut daemon, welcome) = Daemon::hello(dir.path());
    let ToDaemon::Welcome {
        protocol,
        machine,
        uploaded_through,
        last_seq,
        terminal,
    } = welcome
    else {
        unreachable!()
    };
    assert_eq!(protocol, LINK_PROTOCOL_VERSION);
    assert_eq!(machine, MachineNumber::FACTORY_DEFAULT);
    assert_eq!(uploaded_through, None);
    assert_eq!(last_seq, Some(Seq(6)));

    let first = daemon.fetch(None, 4);
    assert_eq!(
        first.iter().map(|r| r.seq.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let rest = daemon.fetch(Some(4), 100);
    assert_eq!(rest.iter().map(|r| r.seq.0).collect::<Vec<_>>(), vec![5, 6]);
    assert!(daemon.fetch(Some(6), 100).is_empty());
    assert!(daemon.fetch(None, 0).is_empty());

    // A sale while connected is pushed as `Appended`.
    till.run("sales 1 2.00 card-2");
    loop {
        match daemon.recv() {
            ToDaemon::Appended { last_seq: Seq(8) } => break,
            ToDaemon::Appended { .. } => continue,
            other => panic!("expected Appended, got {other:?}"),
        }
    }
    drop(daemon);
    till.stop();

    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.terminal_id(), terminal);
    for record in first.iter().chain(&rest) {
        let stored = journal.get(record.seq).unwrap().unwrap();
        assert_eq!(
            record.bytes,
            encode_record(&stored),
            "bytes of {}",
            record.seq
        );
    }
}

#[test]
fn fetch_is_bounded_by_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut till = Till::start(dir.path());
    // 520 sales of one fen are 1,040 records, more than one fetch may return.
    let out = till.run("sales 520 0.01 card-1");
    assert!(journal_count(&out) > u64::from(MAX_RECORDS_PER_FETCH));
    let (mut daemon, _) = Daemon::hello(dir.path());
    let records = daemon.fetch(None, u32::MAX);
    assert_eq!(records.len(), MAX_RECORDS_PER_FETCH as usize);
    assert!(records
        .iter()
        .enumerate()
        .all(|(i, r)| r.seq.0 == i as u64 + 1));
    let after = daemon.fetch(Some(u64::from(MAX_RECORDS_PER_FETCH)), u32::MAX);
    assert_eq!(after.first().map(|r| r.seq.0), Some(1001));
    assert_eq!(after.last().map(|r| r.seq.0), Some(1040));
}

#[test]
fn acks_move_the_watermark_durably_and_monotonically() {
    let dir = tempfile::tempdir().unwrap();
    let mut till = Till::start(dir.path());
    till.run("sales 3 1.00 card-1");
    let merchant = till.merchant();
    assert!(merchant.contains("未上传6笔"), "{merchant}");

    let (mut daemon, _) = Daemon::hello(dir.path());
    assert_eq!(daemon.ack(4), Some(Seq(4)));
    till.run("wait 1ms");
    assert!(till.merchant().contains("未上传2笔"), "{}", till.merchant());
    // An older ack changes nothing.
    assert_eq!(daemon.ack(2), Some(Seq(4)));
    // An ack beyond the journal is refused, logged as an alarm, and the watermark stays.
    assert_eq!(daemon.ack(99), Some(Seq(4)));
    till.err.wait_until("the alarm in the log", |t| {
        t.contains("ALARM") && t.contains("beyond")
    });

    assert_eq!(daemon.ack(6), Some(Seq(6)));
    till.run("wait-uploaded 10s\nexpect link 0 unsent, uploaded through 6");
    assert!(!till.merchant().contains("未上传"), "{}", till.merchant());
    till.run("keys Clear 8\nexpect merchant 未上传0笔");

    // The watermark survives a restart of the till (the daemon is dropped and reconnects).
    till.run("restart");
    daemon.expect_closed();
    let (_daemon, welcome) = Daemon::hello(dir.path());
    assert!(
        matches!(
            welcome,
            ToDaemon::Welcome {
                uploaded_through: Some(Seq(6)),
                last_seq: Some(Seq(6)),
                ..
            }
        ),
        "{welcome:?}"
    );
    drop(_daemon);
    till.stop();

    // And it is in the journal on disk.
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.uploaded_through(), Some(Seq(6)));
    assert_eq!(journal.unsent_count(), 0);
}

#[test]
fn the_journal_keeps_the_watermark_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut till = Till::start(dir.path());
    till.run("sales 2 1.00 card-1");
    till.stop();
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.uploaded_through(), None);
    assert_eq!(journal.unsent_count(), 4);
    assert!(journal.oldest_unsent_at().unwrap().is_some());
    assert_eq!(journal.mark_uploaded(Seq(3)).unwrap(), Some(Seq(3)));
    assert_eq!(journal.mark_uploaded(Seq(1)).unwrap(), Some(Seq(3)));
    assert!(matches!(
        journal.mark_uploaded(Seq(5)),
        Err(JournalError::AckBeyondEnd { .. })
    ));
    let reader = journal.reader();
    assert_eq!(reader.unsent_count(), 1);
    drop(reader);
    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.uploaded_through(), Some(Seq(3)));
}

#[test]
fn downlinks_are_applied_journaled_or_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut till = Till::start(dir.path());
    let (mut daemon, _) = Daemon::hello(dir.path());
    daemon.send(&ToTill::Broker(shared::link::BrokerLink::Up));

    daemon.send(&ToTill::Config(campus(3, 50)));
    assert_eq!(
        daemon.answer(),
        ToDaemon::Applied {
            kind: DownlinkKind::Config,
            version: 3
        }
    );
    let out = till.run("expect customer 一食堂");
    assert!(out.contains("J| #1 m0001 campus-config v3"), "{out}");
    // The campus max_sale (¥50) applies.
    till.run("type 60\nexpect merchant 超过单笔限额 ¥50.00\nkeys Clear");

    // Not newer, or invalid: rejected, nothing journaled.
    daemon.send(&ToTill::Config(campus(3, 40)));
    assert!(matches!(
        daemon.answer(),
        ToDaemon::Rejected {
            kind: DownlinkKind::Config,
            ..
        }
    ));
    daemon.send(&ToTill::Config(campus(4, 20_000)));
    assert!(matches!(
        daemon.answer(),
        ToDaemon::Rejected {
            kind: DownlinkKind::Config,
            ..
        }
    ));
    till.run("expect journal 1 records");

    // Server time: journaled the first time, not again for the same offset.
    let server = UnixMillis(1_900_000_000_000);
    daemon.send(&ToTill::ServerTime { server });
    assert!(matches!(
        daemon.answer(),
        ToDaemon::Applied {
            kind: DownlinkKind::ServerTime,
            ..
        }
    ));
    let out = till.run("expect journal 2 records\nkeys Clear 0\nexpect merchant 服务器差");
    assert!(out.contains("server-time 1900000000000"), "{out}");

    // The blacklist: card-1 reported lost.
    let lost = CardUid::parse_hex(CARD_1_UID).unwrap();
    let list = Blacklist::new(7, UnixMillis(0), vec![lost]).unwrap();
    daemon.send(&ToTill::Blacklist(list.clone()));
    assert_eq!(
        daemon.answer(),
        ToDaemon::Applied {
            kind: DownlinkKind::Blacklist,
            version: 7
        }
    );
    // The same list again (the retained message after a reconnect): already held, answered
    // applied, nothing journaled; the same version with other entries: rejected.
    daemon.send(&ToTill::Blacklist(list));
    assert_eq!(
        daemon.answer(),
        ToDaemon::Applied {
            kind: DownlinkKind::Blacklist,
            version: 7
        }
    );
    daemon.send(&ToTill::Blacklist(
        Blacklist::new(7, UnixMillis(0), vec![]).unwrap(),
    ));
    assert!(matches!(
        daemon.answer(),
        ToDaemon::Rejected {
            kind: DownlinkKind::Blacklist,
            ..
        }
    ));
    let out = till.run(
        "expect journal 3 records\ntype 5\nkeys Enter\ntap card-1\n\
         expect merchant 挂失卡 请联系卡务中心\nexpect customer 挂失卡 请联系卡务中心\n\
         expect journal 3 records\nexpect card card-1 100.00",
    );
    assert!(out.contains("blacklist v7 1 entries"), "{out}");
    // Another card still pays.
    till.run("wait 4s\ntap card-2\nexpect merchant 交易成功\nexpect journal 5 records");

    // After a restart the config and the blacklist are still in force.
    till.run("restart");
    daemon.expect_closed();
    till.run(
        "expect customer 一食堂\ntype 5\nkeys Enter\ntap card-1\nexpect customer 挂失卡\n\
         expect journal 5 records",
    );
    let (mut daemon, _) = Daemon::hello(dir.path());
    daemon.send(&ToTill::Blacklist(
        Blacklist::new(5, UnixMillis(0), vec![]).unwrap(),
    ));
    assert!(matches!(
        daemon.answer(),
        ToDaemon::Rejected {
            kind: DownlinkKind::Blacklist,
            ..
        }
    ));
    drop(daemon);
    till.stop();

    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.blacklist().version(), 7);
    let bodies: Vec<RecordBody> = journal
        .records_from(Seq::FIRST)
        .map(|r| r.unwrap().body)
        .collect();
    assert!(!bodies
        .iter()
        .any(|b| matches!(b, RecordBody::SaleIntent(s) if s.payer == shared::record::Payer::CampusCard(lost))));
}

#[test]
fn the_till_sells_on_without_a_daemon_and_through_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let mut till = Till::start(dir.path());
    till.run("sales 1 1.00 card-1\nexpect merchant 链路断 未上传2笔");

    // Garbage instead of a frame: the till drops the connection, logs it, and sells on.
    let mut daemon = Daemon::connect(dir.path());
    daemon
        .stream
        .write_all(&[0, 0, 0, 3, 0xFF, 0xFF, 0xFF])
        .unwrap();
    daemon.expect_closed();
    till.err
        .wait_until("the malformed message in the log", |t| {
            t.contains("malformed message")
        });
    // An oversized frame header: dropped too.
    let mut daemon = Daemon::connect(dir.path());
    daemon.stream.write_all(&u32::MAX.to_be_bytes()).unwrap();
    daemon.expect_closed();
    // A message before Hello: refused.
    let mut daemon = Daemon::connect(dir.path());
    daemon.send(&ToTill::Fetch {
        after: None,
        max: 1,
    });
    assert!(matches!(daemon.try_recv(), Some(ToDaemon::Refused { .. })));
    daemon.expect_closed();
    // A protocol mismatch: refused.
    let mut daemon = Daemon::connect(dir.path());
    daemon.send(&ToTill::Hello {
        protocol: LINK_PROTOCOL_VERSION + 1,
        daemon: "future".into(),
    });
    assert!(matches!(daemon.try_recv(), Some(ToDaemon::Refused { .. })));
    daemon.expect_closed();

    till.run("sales 2 1.50 card-2\nexpect journal 6 records");

    // A second daemon replaces the first.
    let (mut first, _) = Daemon::hello(dir.path());
    let (mut second, _) = Daemon::hello(dir.path());
    first.expect_closed();
    assert_eq!(second.fetch(None, 1).len(), 1);
    till.run("wait-daemon 10s");
    till.stop();
}

#[test]
fn a_large_blacklist_is_stored_with_its_record_and_survives_reopen() {
    use shared::record::{JournalRecord, TillSnapshot};
    let dir = tempfile::tempdir().unwrap();
    let uids: Vec<CardUid> = (0u32..100_000)
        .map(|n| CardUid::new(&n.wrapping_mul(2_654_435_761).to_be_bytes()).unwrap())
        .collect();
    let list = Blacklist::new(9, UnixMillis(5), uids.clone()).unwrap();
    let info = list.info();
    let mut journal = Journal::open(dir.path()).unwrap();
    let record = JournalRecord {
        seq: Seq::FIRST,
        at: UnixMillis(5),
        machine: MachineNumber::FACTORY_DEFAULT,
        body: RecordBody::BlacklistReplaced(info),
    };
    let mut snapshot = TillSnapshot::factory_new();
    snapshot.next_seq = Seq(2);
    // A record that does not describe the list, or a plain append of it, is refused.
    let mut wrong = snapshot.clone();
    wrong.blacklist = None;
    assert!(matches!(
        journal.append_replacing_blacklist(&record, &wrong, Arc::new(list.clone())),
        Err(JournalError::BlacklistMismatch(_))
    ));
    snapshot.blacklist = Some(info);
    assert!(matches!(
        journal.append(&record, &snapshot),
        Err(JournalError::BlacklistMismatch(_))
    ));
    journal
        .append_replacing_blacklist(&record, &snapshot, Arc::new(list))
        .unwrap();
    drop(journal);

    let journal = Journal::open(dir.path()).unwrap();
    let loaded = journal.blacklist();
    assert_eq!(loaded.info(), info);
    assert!(uids.iter().step_by(997).all(|uid| loaded.contains(uid)));
    assert!(!loaded.contains(&CardUid::new(&[1, 2, 3, 4, 5, 6, 7]).unwrap()));
}

#[test]
fn a_stale_socket_from_a_crash_is_replaced_and_a_foreign_file_is_not() {
    let dir = tempfile::tempdir().unwrap();
    // A socket nobody listens on any more, as a SIGKILLed till leaves behind.
    drop(std::os::unix::net::UnixListener::bind(socket(dir.path())).unwrap());
    assert!(socket(dir.path()).exists());
    let mut till = Till::start(dir.path());
    let (mut daemon, _) = Daemon::hello(dir.path());
    assert!(daemon.fetch(None, 10).is_empty());
    drop(daemon);
    till.run("sales 1 1.00 card-1");
    till.stop();
    assert!(
        !socket(dir.path()).exists(),
        "a clean stop removes the socket"
    );

    // A regular file where the socket should be is never deleted: the till refuses to start.
    std::fs::write(socket(dir.path()), b"not a socket").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pos-firmware"))
        .args(["script", "-", "--data-dir"])
        .arg(dir.path())
        .arg("--link")
        .arg(socket(dir.path()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a socket"));
    assert_eq!(std::fs::read(socket(dir.path())).unwrap(), b"not a socket");
}

#[test]
fn server_times_alternating_over_the_link_journal_a_few_corrections_and_count_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut till = Till::start(dir.path());
    let (mut daemon, _) = Daemon::hello(dir.path());
    // 300 messages whose offsets alternate 100 s apart: before, 300 journal records.
    for i in 0..300 {
        let server = UnixMillis(1_900_000_000_000 + if i % 2 == 0 { 0 } else { 100_000 });
        daemon.send(&ToTill::ServerTime { server });
        assert!(matches!(
            daemon.answer(),
            ToDaemon::Applied {
                kind: DownlinkKind::ServerTime,
                ..
            }
        ));
    }
    let limit = pos_firmware::core::downlink::SERVER_TIME_JOURNAL_MAX_PER_WINDOW;
    till.run(&format!("expect journal {limit} records"));
    // The later ones are counted on Clear+0 (the odd ones repeat the journaled offset).
    till.run("keys Clear 0\nexpect merchant 未记148次");
}

#[test]
fn an_implausible_server_time_on_the_link_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut till = Till::start(dir.path());
    for server in [UnixMillis(0), UnixMillis(i64::MAX)] {
        let (mut daemon, _) = Daemon::hello(dir.path());
        daemon.send(&ToTill::ServerTime { server });
        daemon.expect_closed();
    }
    till.run("expect journal 0 records\nkeys Clear 0");
    let shown = till.merchant();
    assert!(!shown.contains("服务器差"), "{shown}");
}

/// Code-payment orders over the link.
#[path = "link/orders.rs"]
mod orders;

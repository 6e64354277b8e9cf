//! The sync path end to end with real processes and a real broker: the till's journal goes up
//! through `sync-daemon` and Mosquitto to the campus simulator, across broker kills, daemon
//! kills, till restarts and duplicated deliveries; at the end the campus store equals the
//! journal exactly and the till's watermark is its last seq. Each test prints its counts.

use shared::{Seq, TerminalId};
use std::time::{Duration, Instant};
use till_tests::campus::{CampusOptions, CampusSim};
use till_tests::fake_till::FakeTill;
use till_tests::mosquitto::{make_test_pki, write_password_file, Mosquitto, MosquittoOptions};
use till_tests::sync::{DaemonProcess, DaemonSetup};

/// The longest any test waits for the upload to catch up after its last fault.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the campus simulator and waits (bounded) until it is subscribed to the uploads, so
/// a test's first batches are not published before anyone listens.
fn campus_up(options: CampusOptions) -> CampusSim {
    let campus = CampusSim::start(options).expect("the campus simulator starts");
    assert!(
        campus.wait_until(Duration::from_secs(10), |c| c.stats().subscribed > 0),
        "the campus server subscribed to the uploads"
    );
    campus
}

/// Waits (bounded) until `done`, panicking with `what` and the daemon's log otherwise.
fn wait(what: &str, timeout: Duration, daemon: &DaemonProcess, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; daemon log tail:\n{}",
            daemon.log_tail(40)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The campus store holds exactly the journal: every (terminal, seq) once, same bytes, no gaps.
fn assert_store_equals(campus: &CampusSim, terminal: TerminalId, journal: &[(Seq, Vec<u8>)]) {
    let stored = campus.records(terminal);
    assert_eq!(stored.len(), journal.len(), "record count");
    for ((seq, bytes), (stored_seq, stored_bytes)) in journal.iter().zip(&stored) {
        assert_eq!(seq, stored_seq, "no gaps, no extras");
        assert_eq!(bytes, stored_bytes, "identical bytes at {seq}");
    }
    assert_eq!(campus.conflicts(), 0, "no conflicting duplicates");
}

#[test]
fn daemon_uploads_ten_thousand_records_across_five_broker_kills() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(&MosquittoOptions::default());
    let mut campus_options = CampusOptions::new(broker.port(), dir.path().join("campus"));
    campus_options.duplicate_every_nth_batch = Some(7);
    let campus = campus_up(campus_options);
    let socket = dir.path().join("link.sock");
    let till = FakeTill::start(&socket, TerminalId(0x00C0_FFEE));
    let daemon = DaemonProcess::start(&DaemonSetup::new(&socket, broker.port(), dir.path()));
    const RECORDS: u64 = 10_000;
    const BROKER_KILLS: u32 = 5;
    let per_step = RECORDS / u64::from(BROKER_KILLS + 1);
    let mut unacked_at_kills = Vec::new();
    for kill in 0..BROKER_KILLS {
        till.append(per_step);
        let total = per_step * (u64::from(kill) + 1);
        // Kill mid-upload: once half of this step's records are acked (which needs the daemon
        // to be reconnected after the previous kill).
        let target = Seq(total - per_step / 2);
        wait(
            "upload progress before a kill",
            CATCH_UP_TIMEOUT,
            &daemon,
            || till.uploaded_through() >= Some(target),
        );
        broker.restart();
        let acked = till.uploaded_through().map_or(0, |s| s.0);
        unacked_at_kills.push(total - acked);
    }
    till.append(RECORDS - per_step * u64::from(BROKER_KILLS));
    wait("the whole journal acked", CATCH_UP_TIMEOUT, &daemon, || {
        till.uploaded_through() == Some(Seq(RECORDS))
    });
    assert_store_equals(&campus, till.terminal(), &till.journal());
    assert_eq!(till.bad_acks(), 0);
    let stats = campus.stats();
    let reconnects = daemon.broker_connections().saturating_sub(1);
    println!(
        "records {RECORDS}, broker kills {} (records not yet acked at each: {unacked_at_kills:?}), \
         daemon reconnects {reconnects}, campus reconnects {}, duplicates {}, batches {}, {:.1} s",
        broker.kills,
        stats.connections.saturating_sub(1),
        stats.duplicates,
        stats.batches,
        started.elapsed().as_secs_f64()
    );
    assert!(
        reconnects >= BROKER_KILLS as usize,
        "the daemon reconnected after every kill"
    );
    assert!(
        unacked_at_kills.iter().all(|&n| n > 0),
        "every kill hit an upload in progress"
    );
    assert!(
        stats.duplicates > 0,
        "duplicated deliveries happened and were ignored"
    );
}

// ---------------------------------------------------------------------------------------------
// With the real firmware: `pos-firmware script - --link SOCK`.

/// The till's data directory and socket, and the till process when it runs.
struct RealTill {
    data: std::path::PathBuf,
    socket: std::path::PathBuf,
    /// The till's log (standard error), over all its runs.
    log: std::path::PathBuf,
    process: Option<till_tests::TillProcess>,
    kills: u32,
}

impl RealTill {
    fn start(dir: &std::path::Path) -> RealTill {
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
    fn created(dir: &std::path::Path) -> (RealTill, TerminalId) {
        let mut till = RealTill::start(dir);
        till.process().send("expect journal 0 records\n");
        if let Some(process) = till.process.take() {
            process.finish();
        }
        let terminal = till.journal().terminal;
        (till, terminal)
    }

    fn launch(&mut self) {
        let socket = self.socket.to_string_lossy().into_owned();
        self.process = Some(till_tests::TillProcess::start_logged(
            &self.data,
            &["--link", socket.as_str()],
            Some(&self.log),
        ));
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn process(&mut self) -> &mut till_tests::TillProcess {
        self.process.as_mut().expect("the till is running")
    }

    /// `n` sales of 0.01 on `card` (2 records each); returns at once.
    fn sell(&mut self, n: u32, card: &str) {
        self.process().send(&format!("sales {n} 0.01 {card}\n"));
    }

    fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
            self.kills += 1;
        }
    }

    /// Waits until the till says everything is uploaded, then stops it cleanly.
    fn finish_uploaded(&mut self) {
        let process = self.process();
        process.send("wait-uploaded 60s\nexpect link 0 unsent\n");
        if let Some(process) = self.process.take() {
            process.finish();
        }
    }

    /// The journal (read after the till stopped): records as their stored bytes, and the
    /// watermark.
    fn journal(&self) -> JournalView {
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
struct JournalView {
    terminal: TerminalId,
    records: Vec<(Seq, Vec<u8>)>,
    uploaded_through: Option<Seq>,
    last_seq: Option<Seq>,
}

/// The end state every test must reach: store == journal, watermark == last seq.
fn assert_everything_uploaded(campus: &CampusSim, till: &RealTill) -> u64 {
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

#[test]
fn ten_thousand_sales_records_reach_the_campus_across_five_broker_kills() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(&MosquittoOptions::default());
    let mut campus_options = CampusOptions::new(broker.port(), dir.path().join("campus"));
    campus_options.duplicate_every_nth_batch = Some(5);
    let campus = campus_up(campus_options);
    let mut till = RealTill::start(dir.path());
    let daemon = DaemonProcess::start(&DaemonSetup::new(&till.socket, broker.port(), dir.path()));
    const ROUNDS: u64 = 5;
    const SALES_PER_ROUND: u32 = 1_000;
    let records_per_round = 2 * u64::from(SALES_PER_ROUND);
    let terminal = till_terminal(&daemon);
    let mut unacked_at_kills = Vec::new();
    let mut resent_after_kills = Vec::new();
    for round in 0..ROUNDS {
        // Kill while the till is selling and the daemon uploading: the campus holds its acks
        // from the round's start, and the kill waits until it stored records whose ack the
        // till therefore never got — the kill hits them in flight, for sure.
        campus.hold_acks();
        let held_before = campus.stats().acks_held;
        till.sell(SALES_PER_ROUND, "card-1");
        wait(
            "records stored and not acked before a broker kill",
            CATCH_UP_TIMEOUT,
            &daemon,
            || campus.stats().acks_held > held_before && campus.stored_not_acked(terminal) > 0,
        );
        let resends_before = campus.stats().resend_duplicates();
        broker.restart();
        let unacked = campus.stored_not_acked(terminal);
        unacked_at_kills.push(unacked);
        // The daemon resends from the till's watermark: every record stored and not acked
        // comes again and is recognised as a duplicate (then acked, not stored twice).
        wait(
            "the unacked records resent after the kill",
            CATCH_UP_TIMEOUT,
            &daemon,
            || campus.stats().resend_duplicates() >= resends_before + unacked,
        );
        resent_after_kills.push(campus.stats().resend_duplicates() - resends_before);
        campus.release_acks();
        let through = (round + 1) * records_per_round;
        till.process().wait_for(&format!("journal at #{through}"));
    }
    till.finish_uploaded();
    let records = assert_everything_uploaded(&campus, &till);
    let stats = campus.stats();
    let reconnects = daemon.broker_connections().saturating_sub(1);
    println!(
        "records {records}, broker kills {} (records stored and not acked at each: \
         {unacked_at_kills:?}; resent as duplicates after each: {resent_after_kills:?}), daemon \
         reconnects {reconnects}, duplicates {} ({} resent by the till, {} injected), batches {}, \
         {:.1} s",
        broker.kills,
        stats.duplicates,
        stats.resend_duplicates(),
        stats.injected_duplicates,
        stats.batches,
        started.elapsed().as_secs_f64()
    );
    assert!(
        unacked_at_kills.iter().all(|&n| n > 0),
        "every kill hit stored records whose ack the till had not got"
    );
    assert!(records >= 10_000);
    assert!(
        stats.injected_duplicates > 0,
        "the injected double deliveries happened and were ignored"
    );
    assert!(
        reconnects >= ROUNDS as usize,
        "the daemon reconnected after every kill"
    );
    assert!(
        stats.duplicates > 0,
        "duplicated deliveries happened and were ignored"
    );
}

#[test]
fn daemon_and_till_killed_and_restarted_in_every_order() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(&MosquittoOptions::default());
    let campus_dir = dir.path().join("campus");
    let mut campus = campus_up(CampusOptions::new(broker.port(), campus_dir.clone()));
    let mut till = RealTill::start(dir.path());
    let setup = DaemonSetup::new(&till.socket, broker.port(), dir.path());
    let mut daemon = DaemonProcess::start(&setup);
    const SALES_PER_ROUND: u32 = 150;
    let mut sold: u64 = 0;
    let mut campus_restarts = 0;
    let mut duplicates = 0;
    let sell_round = |till: &mut RealTill, sold: &mut u64| {
        till.sell(SALES_PER_ROUND, "card-2");
        *sold += u64::from(SALES_PER_ROUND);
    };

    // 1. The daemon is SIGKILLed mid-upload (the till keeps selling) and restarted: the
    //    campus holds its acks, so the kill comes after it stored records and before the till
    //    got their ack, deterministically. The restarted daemon resends them from the till's
    //    watermark; they must be recognised as duplicates, then acked, and stored once.
    let terminal = till_terminal(&daemon);
    campus.hold_acks();
    sell_round(&mut till, &mut sold);
    wait(
        "records stored and not acked",
        CATCH_UP_TIMEOUT,
        &daemon,
        || campus.stored_not_acked(terminal) >= 50,
    );
    daemon.kill();
    let unacked_at_kill = campus.stored_not_acked(terminal);
    let resends_before = campus.stats().resend_duplicates();
    daemon.restart();
    wait(
        "the stored, unacked records resent after the daemon kill",
        CATCH_UP_TIMEOUT,
        &daemon,
        || campus.stats().resend_duplicates() >= resends_before + unacked_at_kill,
    );
    let resent_after_kill = campus.stats().resend_duplicates() - resends_before;
    campus.release_acks();
    till.process()
        .wait_for(&format!("journal at #{}", 2 * sold));

    // 2. The till is SIGKILLed while the daemon is connected, and restarted; the daemon
    //    reconnects to it on its own.
    sell_round(&mut till, &mut sold);
    till.process()
        .wait_for(&format!("journal at #{}", 2 * sold));
    till.kill();
    till.launch();

    // 3.-6. Both stopped, in both orders, and started again in both orders; the campus
    //       server restarts too, reloading its store.
    for (kill_daemon_first, start_daemon_first) in
        [(true, false), (false, true), (true, true), (false, false)]
    {
        sell_round(&mut till, &mut sold);
        till.process()
            .wait_for(&format!("journal at #{}", 2 * sold));
        if kill_daemon_first {
            daemon.kill();
            till.kill();
        } else {
            till.kill();
            daemon.kill();
        }
        if kill_daemon_first && start_daemon_first {
            duplicates += campus.stats().duplicates;
            campus.stop();
            campus = campus_up(CampusOptions::new(broker.port(), campus_dir.clone()));
            campus_restarts += 1;
        }
        if start_daemon_first {
            daemon.restart();
            till.launch();
        } else {
            till.launch();
            daemon.restart();
        }
    }
    till.finish_uploaded();
    let records = assert_everything_uploaded(&campus, &till);
    duplicates += campus.stats().duplicates;
    println!(
        "records {records}, daemon kills {} (the first with {unacked_at_kill} records stored \
         and not acked, {resent_after_kill} of them resent and recognised as duplicates), till \
         kills {}, campus restarts {campus_restarts}, daemon broker connections {}, duplicates \
         {duplicates} (all resent by the till: nothing injected), {:.1} s",
        daemon.kills,
        till.kills,
        daemon.broker_connections(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(records, 2 * sold);
    assert!(
        duplicates > 0,
        "resends after the kills were recognised as duplicates"
    );
}

fn campus_config(version: u64) -> shared::campus::CampusConfig {
    use shared::campus::{CampusConfig, MealPeriodSpec, OfflineLimits};
    use shared::{Fen, MinuteOfDay};
    CampusConfig {
        version,
        merchant_name: "一食堂".parse().unwrap(),
        meal_periods: vec![MealPeriodSpec {
            name: "午餐".parse().unwrap(),
            start: MinuteOfDay::from_hm(10, 0).unwrap(),
            end: MinuteOfDay::from_hm(14, 0).unwrap(),
        }],
        max_sale: Fen::from_yuan(200),
        fixed_price_presets: vec![Fen::from_yuan(8)],
        offline: OfflineLimits {
            max_sale: Fen::from_yuan(20),
            max_per_card_per_day: Fen::from_yuan(100),
            max_unsent_total: Fen::from_yuan(5_000),
            max_unsent_age_ms: 86_400_000,
            max_blacklist_age_ms: 86_400_000,
        },
    }
}

fn repo_file(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// The example configuration of docs/mosquitto/ with its paths pointed into `dir`.
fn example_config(
    port: u16,
    dir: &std::path::Path,
    pki: &till_tests::mosquitto::TestPki,
    users: &[(String, String)],
) -> String {
    let example = std::fs::read_to_string(repo_file("docs/mosquitto/mosquitto.conf"))
        .expect("docs/mosquitto/mosquitto.conf exists");
    let passwords = write_password_file(dir, users);
    let acl = repo_file("docs/mosquitto/acl");
    example
        .replace("listener 8883", &format!("listener {port} 127.0.0.1"))
        .replace(
            "/etc/mosquitto/certs/server.pem",
            &pki.server.cert.to_string_lossy(),
        )
        .replace(
            "/etc/mosquitto/certs/server.key",
            &pki.server.key.to_string_lossy(),
        )
        .replace("/etc/mosquitto/passwd", &passwords.to_string_lossy())
        .replace("/etc/mosquitto/acl", &acl.to_string_lossy())
        .replace("/var/lib/mosquitto/", &format!("{}/", dir.display()))
        .replace("log_dest syslog", "log_dest stderr")
}

#[test]
fn tls_passwords_and_the_example_config_carry_uploads_and_a_big_blacklist() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // The till's journal (and so its terminal id, its MQTT user name) exists before the broker.
    let (mut till, terminal) = RealTill::created(dir.path());
    let Some(pki) = make_test_pki(dir.path()) else {
        return;
    };
    let users = vec![
        (
            shared::mqtt::till_username(terminal),
            "till secret".to_string(),
        ),
        ("campus-server".to_string(), "campus secret".to_string()),
    ];
    let broker =
        Mosquitto::start_raw(|port, broker_dir| example_config(port, broker_dir, &pki, &users));
    let mut campus_options = CampusOptions::new(broker.port(), dir.path().join("campus"));
    campus_options.username = Some("campus-server".into());
    campus_options.password = Some("campus secret".into());
    campus_options.tls_ca = Some(pki.ca_cert.clone());
    campus_options.time_interval_ms = Some(200);
    let campus = campus_up(campus_options);
    campus.publish_config(terminal, &campus_config(3));
    // 100,000 lost cards: about 1.1 MB, in two retained pages under the broker's 2 MiB limit.
    const BLACKLIST_ENTRIES: u32 = 100_000;
    let uids = (0..BLACKLIST_ENTRIES)
        .map(|n| shared::CardUid::new(&(0xB000_0000u32 | n).to_be_bytes()).unwrap())
        .collect();
    let blacklist = shared::campus::Blacklist::new(2, shared::UnixMillis(1), uids).unwrap();
    campus.publish_blacklist(&blacklist);

    till.launch();
    let mut setup = DaemonSetup::new(&till.socket, broker.port(), dir.path());
    setup.password = Some("till secret".into());
    setup.tls_ca = Some(pki.ca_cert.clone());
    let daemon = DaemonProcess::start(&setup);
    till.process().wait_for("Config applied 3");
    till.process().wait_for("Blacklist applied 2");
    till.sell(50, "card-1");
    till.process().wait_for("journal at #");
    till.finish_uploaded();
    let records = assert_everything_uploaded(&campus, &till);
    assert!(
        daemon.log_text().contains("broker up"),
        "connected over TLS with a password"
    );
    println!(
        "records {records} over TLS with passwords, blacklist of {BLACKLIST_ENTRIES} entries ({} bytes) applied, \
         campus connections {}, {:.1} s",
        shared::codec::encode_blacklist(&blacklist).len(),
        campus.stats().connections,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn an_oversized_retained_message_on_the_blacklist_or_config_topic_never_stops_uploads() {
    use shared::mqtt::{blacklist_page_topic, config_topic, BLACKLIST_TOPIC};
    // The 17 MiB (`head -c 17825792 /dev/urandom`), on a broker without a limit (a
    // plain `mosquitto -p 1883`): the daemon's MQTT 5 Maximum Packet Size makes the broker
    // drop it for the till instead of the connection ending on it again and again.
    const OVERSIZED_BYTES: usize = 17 * 1024 * 1024;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (mut till, terminal) = RealTill::created(dir.path());
    let broker = Mosquitto::start(&MosquittoOptions::default());
    let topics = [
        blacklist_page_topic(0),
        BLACKLIST_TOPIC.to_string(),
        config_topic(terminal),
    ];
    for topic in &topics {
        till_tests::mosquitto::retain_raw(broker.port(), topic, vec![0xA5; OVERSIZED_BYTES]);
    }
    let campus = campus_up(CampusOptions::new(broker.port(), dir.path().join("campus")));
    till.launch();
    let daemon = DaemonProcess::start(&DaemonSetup::new(&till.socket, broker.port(), dir.path()));
    till.sell(50, "card-1");
    till.process().wait_for("journal at #");
    till.finish_uploaded();
    let records = assert_everything_uploaded(&campus, &till);
    let log = daemon.log_text();
    assert_eq!(
        log.matches("broker up").count(),
        1,
        "one connection carried everything:\n{log}"
    );
    assert!(!log.contains("broker down"), "never dropped:\n{log}");
    println!(
        "records {records} uploaded on one connection with {OVERSIZED_BYTES} bytes retained on \
         {topics:?}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_million_entry_blacklist_arrives_in_pages_under_the_broker_limit_and_is_applied() {
    use shared::mqtt::{MAX_BLACKLIST_PAGES, MAX_MQTT_PACKET_BYTES};
    const ENTRIES: u32 = 1_000_000;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (mut till, _terminal) = RealTill::created(dir.path());
    // The broker limit of docs/mosquitto/mosquitto.conf: a whole list of a million (11 MB)
    // would be refused; its pages are not.
    let broker = Mosquitto::start(&MosquittoOptions {
        max_packet_size: Some(MAX_MQTT_PACKET_BYTES),
        ..MosquittoOptions::default()
    });
    let campus = campus_up(CampusOptions::new(broker.port(), dir.path().join("campus")));
    let uids = (0..ENTRIES)
        .map(|n| shared::CardUid::new(&(0xC000_0000u32 | n).to_be_bytes()).unwrap())
        .collect();
    let blacklist = shared::campus::Blacklist::new(3, shared::UnixMillis(1), uids).unwrap();
    campus.publish_blacklist(&blacklist);
    till.launch();
    let daemon = DaemonProcess::start(&DaemonSetup::new(&till.socket, broker.port(), dir.path()));
    till.process().wait_for("Blacklist applied 3");
    till.sell(5, "card-1");
    till.process().wait_for("journal at #");
    till.finish_uploaded();
    let records = assert_everything_uploaded(&campus, &till);
    let log = daemon.log_text();
    assert!(
        log.contains("version=3 entries=1000000") && log.contains("blacklist received"),
        "the daemon reassembled every page:\n{}",
        daemon.log_tail(20)
    );
    println!(
        "blacklist of {ENTRIES} entries in {MAX_BLACKLIST_PAGES} pages under a broker limit of \
         {MAX_MQTT_PACKET_BYTES} bytes applied, records {records} uploaded, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_example_acl_confines_a_till_to_its_own_topics() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    use shared::link::UploadRecord;
    use shared::mqtt::{config_topic, upload_topic, UploadBatch};
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (TerminalId(0x0a), TerminalId(0x0b));
    let users = vec![
        (shared::mqtt::till_username(a), "a".to_string()),
        (shared::mqtt::till_username(b), "b".to_string()),
        ("campus-server".to_string(), "campus".to_string()),
    ];
    let broker = Mosquitto::start(&MosquittoOptions {
        users,
        acl: Some(std::fs::read_to_string(repo_file("docs/mosquitto/acl")).unwrap()),
        ..MosquittoOptions::default()
    });
    let mut campus_options = CampusOptions::new(broker.port(), dir.path().join("campus"));
    campus_options.password = Some("campus".into());
    let campus = campus_up(campus_options);
    campus.publish_config(b, &campus_config(7));
    campus.publish_config(a, &campus_config(8));
    assert!(
        campus.wait_until(Duration::from_secs(10), |c| c.stats().subscribed > 0),
        "the campus server subscribed to the uploads"
    );
    let batch = |terminal| {
        shared::codec::encode_upload_batch(&UploadBatch {
            terminal,
            session: None,
            records: vec![UploadRecord {
                seq: Seq(1),
                bytes: vec![0x42],
            }],
        })
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let received_configs = runtime.block_on(async {
        let mut options = MqttOptions::new("till-a", "127.0.0.1", broker.port());
        options.set_credentials(shared::mqtt::till_username(a), "a");
        let (client, mut events) = AsyncClient::new(options, 16);
        // As till A: publish under B's topic (denied), then under its own (allowed); read B's
        // configuration (denied), then its own (allowed). The broker handles one client's
        // packets in order, so once A's own arrive, B's would have arrived before them.
        client
            .publish(upload_topic(b), QoS::AtLeastOnce, false, batch(b))
            .await
            .unwrap();
        client
            .publish(upload_topic(a), QoS::AtLeastOnce, false, batch(a))
            .await
            .unwrap();
        client
            .subscribe(config_topic(b), QoS::AtLeastOnce)
            .await
            .unwrap();
        client
            .subscribe(config_topic(a), QoS::AtLeastOnce)
            .await
            .unwrap();
        let mut topics = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !topics.contains(&config_topic(a)) {
            let event = tokio::time::timeout_at(deadline, events.poll())
                .await
                .expect("till A receives its own configuration in time")
                .expect("the broker accepts till A");
            if let Event::Incoming(Packet::Publish(publish)) = event {
                topics.push(publish.topic);
            }
        }
        topics
    });
    assert!(
        campus.wait_until(Duration::from_secs(10), |c| c.stored_through(a)
            == Some(Seq(1)))
    );
    assert_eq!(
        campus.records(b).len(),
        0,
        "till A could not publish as till B"
    );
    assert_eq!(
        received_configs,
        vec![config_topic(a)],
        "till A could not read B's configuration"
    );
    println!("ACL: A's upload stored, B's topic refused to A, B's configuration unreadable by A");
}

/// Copies a directory tree (the till's data directory, while the till is stopped).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_till_restored_from_an_old_backup_raises_alarms_and_never_overwrites_the_campus_store() {
    restored_till(false);
}

/// The same restore, but the daemon keeps running across it: it must not forward an ack it
/// got from the campus before the restore once the restored journal grows past it.
#[test]
fn a_till_restored_while_the_daemon_runs_never_gets_a_stale_ack() {
    restored_till(true);
}

/// A till restored from an old backup sells under seqs the campus holds, and past them;
/// `daemon_stays_alive` keeps the same daemon process (and its memory) across the restore.
fn restored_till(daemon_stays_alive: bool) {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(&MosquittoOptions::default());
    let campus = campus_up(CampusOptions::new(broker.port(), dir.path().join("campus")));
    let mut till = RealTill::start(dir.path());
    let mut daemon =
        DaemonProcess::start(&DaemonSetup::new(&till.socket, broker.port(), dir.path()));
    // Sales are 2 records each (intent, commit).
    const N_SALES: u64 = 40;
    const M_SALES: u64 = 30;
    // More than M: the restored till runs past the campus's old end, where a plain
    // stored-through ack would cover its re-used seqs.
    const K_SALES: u64 = 40;

    // 1. N sales uploaded; the till stops and its data directory is copied aside.
    till.sell(N_SALES as u32, "card-1");
    till.finish_uploaded();
    let backup = dir.path().join("till-backup");
    copy_dir(&till.data, &backup);
    // 2. M more sales uploaded; both stop.
    till.launch();
    till.sell(M_SALES as u32, "card-1");
    till.finish_uploaded();
    if !daemon_stays_alive {
        daemon.kill();
    }
    let original = till.journal();
    assert_eq!(original.last_seq, Some(Seq(2 * (N_SALES + M_SALES))));
    // 3. The old copy is restored and sells K different sales (other card, other amount)
    //    under the seqs the campus already holds, and past them.
    std::fs::remove_dir_all(&till.data).unwrap();
    copy_dir(&backup, &till.data);
    till.launch();
    if daemon_stays_alive {
        // The running daemon reconnects before the restored till sells: it sees the journal
        // end at the backup's seq, below the campus's ack it got before the restore.
        till.process().send("wait-daemon 30s\n");
    }
    till.process()
        .send(&format!("sales {K_SALES} 0.02 card-2\n"));
    let restored_end = 2 * (N_SALES + K_SALES);
    till.process()
        .wait_for(&format!("journal at #{restored_end}"));
    // 4. The daemon starts again (or, still running, reconnects to the restored till).
    if !daemon_stays_alive {
        daemon.restart();
    }
    let reused = 2 * M_SALES;
    let beyond = restored_end - 2 * (N_SALES + M_SALES);
    let unsent = restored_end - 2 * N_SALES;
    assert!(
        campus.wait_until(CATCH_UP_TIMEOUT, |c| c.stats().conflicts >= reused
            && c.records(original.terminal).len() as u64 == 2 * (N_SALES + M_SALES) + beyond),
        "every re-used seq raised an alarm and the records past the old end arrived; campus {:?}, daemon log:\n{}",
        campus.stats(),
        daemon.log_tail(30)
    );
    // The campus never acks past the first conflict: the till's watermark stays at the backup's
    // and every record it wrote since stays unsent, also those past the campus's old end.
    assert_eq!(
        campus.acked_through(original.terminal),
        Some(Seq(2 * N_SALES))
    );
    // Two more acks after everything arrived (the daemon's ack-timeout resends): a daemon that
    // remembered the campus's ack from before the restore would have forwarded it on the first
    // one, the restored journal now reaching past it; the second comes a resend later.
    let acks_then = campus.stats().acks_published;
    assert!(
        campus.wait_until(CATCH_UP_TIMEOUT, |c| c.stats().acks_published
            >= acks_then + 2),
        "the daemon kept resending and the campus kept acking"
    );
    till.process().send(&format!(
        "expect link daemon connected, {unsent} unsent, uploaded through {}\n",
        2 * N_SALES
    ));
    assert!(daemon.is_running(), "the daemon keeps running");
    if let Some(process) = till.process.take() {
        process.finish();
    }
    let restored = till.journal();
    assert_eq!(restored.last_seq, Some(Seq(restored_end)));
    assert_eq!(restored.uploaded_through, Some(Seq(2 * N_SALES)));

    // The campus kept the ORIGINAL bytes of every re-used seq; the restored ones differ.
    let stored = campus.records(original.terminal);
    assert_eq!(stored.len() as u64, 2 * (N_SALES + M_SALES) + beyond);
    for (seq, bytes) in &original.records {
        assert_eq!(stored.get(seq), Some(bytes), "original bytes kept at {seq}");
    }
    for (seq, bytes) in restored
        .records
        .iter()
        .filter(|(seq, _)| seq.0 > 2 * (N_SALES + M_SALES))
    {
        assert_eq!(
            stored.get(seq),
            Some(bytes),
            "the restored till's new record {seq} stored"
        );
    }
    let differing = restored
        .records
        .iter()
        .filter(|(seq, bytes)| stored.get(seq) != Some(bytes))
        .count() as u64;
    assert_eq!(differing, reused);
    let stats = campus.stats();
    assert_eq!(
        stats.conflicts, reused,
        "each conflicting version alarmed once"
    );
    assert_eq!(campus.conflicts(), reused);
    let alarms = std::fs::read_to_string(dir.path().join("campus").join("alarms.log")).unwrap();
    assert_eq!(
        alarms.lines().count() as u64,
        reused,
        "one quarantine line per version"
    );
    let daemon_log = daemon.log_text();
    assert!(
        !daemon_log.contains("panicked") && !till.log_text().contains("panicked"),
        "nothing panicked"
    );
    if daemon_stays_alive {
        assert!(
            daemon_log.contains("ALARM the till's journal ends before records it reported"),
            "the daemon noticed the restore"
        );
    }
    println!(
        "daemon {}: backup at #{}, campus held #{}, restored till sold {K_SALES} sales to #{restored_end}: \
         campus conflicts {} (repeats {}), duplicates {}, original bytes kept for all {} \
         re-used seqs, {beyond} records past the old end stored, campus ack held at #{}, till watermark {:?} \
         with {unsent} unsent, daemon running, {:.1} s",
        if daemon_stays_alive {
            "kept running across the restore"
        } else {
            "restarted after the restore"
        },
        2 * N_SALES,
        2 * (N_SALES + M_SALES),
        stats.conflicts,
        stats.conflict_repeats,
        stats.duplicates,
        reused,
        2 * N_SALES,
        restored.uploaded_through,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn killing_the_daemon_makes_the_broker_publish_the_tills_last_will() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let terminal = TerminalId(0x0000_7111_5000_0001);
    // Through the example ACL with passwords: the will's topic must be allowed to the till.
    let users = vec![
        (shared::mqtt::till_username(terminal), "till".to_string()),
        ("campus-server".to_string(), "campus".to_string()),
    ];
    let broker = Mosquitto::start(&MosquittoOptions {
        users,
        acl: Some(std::fs::read_to_string(repo_file("docs/mosquitto/acl")).unwrap()),
        ..MosquittoOptions::default()
    });
    let mut campus_options = CampusOptions::new(broker.port(), dir.path().join("campus"));
    campus_options.password = Some("campus".into());
    // The demo configuration goes to every till that uploads.
    campus_options.default_config = Some(
        till_tests::campus_files::load_campus_config(&repo_file("docs/campus-config.example.toml"))
            .unwrap(),
    );
    let campus = campus_up(campus_options);
    let socket = dir.path().join("link.sock");
    let till = FakeTill::start(&socket, terminal);
    let mut setup = DaemonSetup::new(&socket, broker.port(), dir.path());
    setup.password = Some("till".into());
    let mut daemon = DaemonProcess::start(&setup);
    const PRESENCE_TIMEOUT: Duration = Duration::from_secs(10);
    let mut transitions = Vec::new();
    for round in 0..2 {
        if round > 0 {
            daemon.restart();
        }
        let online_at = Instant::now();
        assert!(
            campus.wait_until(PRESENCE_TIMEOUT, |c| c.presence(terminal) == Some(true)),
            "the till came online (round {round}); daemon log:\n{}",
            daemon.log_tail(20)
        );
        // Uploads still flow on the same connection.
        till.append(5);
        let through = Seq(5 * (round + 1));
        wait("the upload acked", CATCH_UP_TIMEOUT, &daemon, || {
            till.uploaded_through() == Some(through)
        });
        let online_ms = online_at.elapsed().as_millis();
        daemon.kill();
        let killed_at = Instant::now();
        assert!(
            campus.wait_until(PRESENCE_TIMEOUT, |c| c.presence(terminal) == Some(false)),
            "the broker published the last will after SIGKILL (round {round})"
        );
        transitions.push((online_ms, killed_at.elapsed().as_millis()));
    }
    let stats = campus.stats();
    assert!(
        stats.presence_online >= 2 && stats.presence_offline >= 2,
        "{stats:?}"
    );
    assert_eq!(campus.presence_counts(), (0, 1), "one till, offline");
    assert!(
        till.downlinks()
            .contains(&shared::link::DownlinkKind::Config),
        "the till that uploaded got the default configuration"
    );
    daemon.restart();
    assert!(
        campus.wait_until(PRESENCE_TIMEOUT, |c| c.presence(terminal) == Some(true)),
        "online again after the restart"
    );
    println!(
        "presence over 2 SIGKILLs: online messages {}, offline (last will) messages {}, \
         (ms to online+acked, ms from SIGKILL to the will) {transitions:?}, configurations \
         published {}, {:.1} s",
        stats.presence_online,
        stats.presence_offline,
        stats.configs_published,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn campus_sim_publishes_its_configuration_file_and_a_changed_blacklist_file() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let started = Instant::now();
    let started_unix = unix_ms_now();
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(&MosquittoOptions::default());
    let terminal = TerminalId(0x0000_00c0_ffee_0042);
    let blacklist_file = dir.path().join("lost-cards.txt");
    std::fs::write(&blacklist_file, "# lost\nA1B2C3D4\n").unwrap();
    // A bad file is refused before anything is published, naming the field.
    let bad = dir.path().join("bad.toml");
    let example = std::fs::read_to_string(repo_file("docs/campus-config.example.toml")).unwrap();
    std::fs::write(
        &bad,
        example.replace("start = \"10:30\"", "start = \"08:00\""),
    )
    .unwrap();
    let sim_binary = till_tests::sync::workspace_binary("till-tests", "campus-sim");
    let refused = std::process::Command::new(&sim_binary)
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && message.contains("overlap"),
        "{message}"
    );

    let mut sim = std::process::Command::new(&sim_binary)
        .args(["--broker-port", &broker.port().to_string(), "--store"])
        .arg(dir.path().join("store"))
        .arg("--config")
        .arg(repo_file("docs/campus-config.example.toml"))
        .args(["--terminal", &terminal.to_string(), "--blacklist-file"])
        .arg(&blacklist_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (config, versions) = runtime.block_on(async {
        let mut options = MqttOptions::new("observer", "127.0.0.1", broker.port());
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(options, 16);
        client
            .subscribe(shared::mqtt::config_topic(terminal), QoS::AtLeastOnce)
            .await
            .unwrap();
        client
            .subscribe(shared::mqtt::BLACKLIST_PAGES_FILTER, QoS::AtLeastOnce)
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut config = None;
        let mut versions: Vec<(u64, usize)> = Vec::new();
        let mut rewritten = false;
        while config.is_none() || versions.len() < 2 {
            let event = tokio::time::timeout_at(deadline, events.poll())
                .await
                .expect("the configuration and two blacklist versions arrive in time")
                .expect("the broker is up");
            let Event::Incoming(Packet::Publish(publish)) = event else {
                continue;
            };
            if shared::mqtt::page_of_blacklist_topic(&publish.topic).is_some() {
                let list = single_page_list(&publish.payload);
                assert_issued_now(&list, started_unix);
                if versions.last().map(|v| v.0) != Some(list.version()) {
                    versions.push((list.version(), list.len()));
                }
                if !rewritten {
                    // A second card reported lost: the file changes (a second later, so even a
                    // file system with 1 s timestamps shows a new mtime), a newer version follows.
                    rewritten = true;
                    tokio::time::sleep(Duration::from_millis(1_100)).await;
                    std::fs::write(&blacklist_file, "A1B2C3D4\n04A1B2C3D4E5F6\n").unwrap();
                }
            } else {
                config = Some(shared::codec::decode_campus_config(&publish.payload).unwrap());
            }
        }
        (config, versions)
    });
    let _ = sim.kill();
    let _ = sim.wait();
    // Restarted with made-up cards: a newer version again, issued now (a till refuses offline
    // sales on a blacklist older than the configuration's limit, 72 h in the example).
    let mut sim = std::process::Command::new(&sim_binary)
        .args(["--broker-port", &broker.port().to_string(), "--store"])
        .arg(dir.path().join("store"))
        .args(["--blacklist-entries", "5"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let made_up = runtime.block_on(async {
        let options = MqttOptions::new("observer-2", "127.0.0.1", broker.port());
        let (client, mut events) = AsyncClient::new(options, 16);
        client
            .subscribe(shared::mqtt::BLACKLIST_PAGES_FILTER, QoS::AtLeastOnce)
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let event = tokio::time::timeout_at(deadline, events.poll())
                .await
                .expect("the made-up blacklist arrives in time")
                .expect("the broker is up");
            if let Event::Incoming(Packet::Publish(publish)) = event {
                let list = single_page_list(&publish.payload);
                if list.len() == 5 {
                    return list;
                }
            }
        }
    });
    let _ = sim.kill();
    let _ = sim.wait();
    assert_issued_now(&made_up, started_unix);
    assert!(
        made_up.version() > versions[1].0,
        "newer than the last run's: {} vs {versions:?}",
        made_up.version()
    );
    let config = config.unwrap();
    assert_eq!(config.merchant_name, "第一食堂");
    assert_eq!(config.version, 1);
    assert_eq!(versions.len(), 2);
    assert!(
        versions[1].0 > versions[0].0,
        "a newer version: {versions:?}"
    );
    assert_eq!((versions[0].1, versions[1].1), (1, 2));
    println!(
        "campus-sim: configuration v{} retained for {terminal}, blacklist versions {versions:?} \
         (version, cards), then v{} with 5 made-up cards after a restart, all issued now, bad \
         file refused, {:.1} s",
        config.version,
        made_up.version(),
        started.elapsed().as_secs_f64()
    );
}

/// The whole list in a blacklist page that is the only page of its version.
fn single_page_list(payload: &[u8]) -> shared::campus::Blacklist {
    let page = shared::codec::decode_blacklist_page(payload).unwrap();
    assert_eq!((page.page, page.pages), (0, 1), "a short list is one page");
    shared::campus::Blacklist::new(page.version, page.issued_at, page.uids).unwrap()
}

fn unix_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The blacklist was issued during this test and its version is the clock's (milliseconds).
fn assert_issued_now(list: &shared::campus::Blacklist, started_unix_ms: i64) {
    let issued = list.issued_at().0;
    assert!(
        issued >= started_unix_ms - 1_000 && issued <= unix_ms_now(),
        "issued at {issued}, the test started at {started_unix_ms}"
    );
    assert!(
        list.version() >= started_unix_ms as u64,
        "version {} from the clock",
        list.version()
    );
}

#[test]
fn malformed_invalid_and_older_downlinks_leave_the_till_unchanged_and_a_newer_one_applies() {
    use shared::codec::{encode_blacklist_page, encode_campus_config};
    use shared::mqtt::{blacklist_page_topic, config_topic, BlacklistPage};
    use shared::record::RecordBody;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (mut till, terminal) = RealTill::created(dir.path());
    let broker = Mosquitto::start(&MosquittoOptions::default());
    let campus = campus_up(CampusOptions::new(broker.port(), dir.path().join("campus")));
    let blacklist = |version| {
        let uid = shared::CardUid::new(&[0xB0, 0, 0, version as u8]).unwrap();
        // Issued before the scripted till's clock (2026-11-23 11:30): a list issued after it
        // (more than an hour) is refused as issued in the future.
        shared::campus::Blacklist::new(version, shared::UnixMillis(1_795_000_000_000), vec![uid])
            .unwrap()
    };
    let truncated = |bytes: Vec<u8>| bytes[..bytes.len() / 2].to_vec();
    campus.publish_config(terminal, &campus_config(5));
    campus.publish_blacklist(&blacklist(5));
    till.launch();
    let daemon = DaemonProcess::start(&DaemonSetup::new(&till.socket, broker.port(), dir.path()));
    till.process().wait_for("Config applied 5");
    till.process().wait_for("Blacklist applied 5");

    // Undecodable: cut in half. Decodable but refused by the till's rules: a per-sale maximum
    // of ¥20,000 (above the till's ceiling of ¥10,000), as version 6. Older than held: version 4 (after 6 for the
    // configuration, after 5 for the blacklist).
    campus.publish_retained_raw(
        &config_topic(terminal),
        truncated(encode_campus_config(&campus_config(9))),
    );
    let page_of_9 = BlacklistPage::paginate(9, blacklist(9).issued_at(), blacklist(9).uids());
    campus.publish_retained_raw(
        &blacklist_page_topic(0),
        truncated(encode_blacklist_page(&page_of_9[0])),
    );
    let mut invalid = campus_config(6);
    invalid.max_sale = shared::Fen::from_yuan(20_000);
    campus.publish_config(terminal, &invalid);
    campus.publish_config(terminal, &campus_config(4));
    campus.publish_blacklist(&blacklist(4));
    // Then newer ones: they still apply.
    campus.publish_config(terminal, &campus_config(7));
    campus.publish_blacklist(&blacklist(7));
    till.process().wait_for("Config rejected");
    till.process().wait_for("Config applied 7");
    till.process().wait_for("Blacklist applied 7");
    let transcript = till.process.take().expect("the till runs").finish();
    let link_lines: Vec<&String> = transcript
        .iter()
        .filter(|line| line.contains("LINK Config") || line.contains("LINK Blacklist"))
        .collect();
    let journal = pos_firmware::journal::Journal::open(&till.data).expect("the journal opens");
    let mut configs = Vec::new();
    let mut blacklists = Vec::new();
    for record in journal.records_from(Seq::FIRST) {
        match record.expect("every record decodes").body {
            RecordBody::CampusConfigApplied { version } => configs.push(version),
            RecordBody::BlacklistReplaced(info) => blacklists.push(info.version),
            _ => {}
        }
    }
    assert_eq!(
        configs,
        vec![5, 7],
        "only the good configurations were applied: {link_lines:?}"
    );
    assert_eq!(
        blacklists,
        vec![5, 7],
        "only the good blacklists were applied: {link_lines:?}"
    );
    assert_eq!(
        journal.snapshot().campus.as_ref().map(|c| c.version),
        Some(7)
    );
    drop(journal);
    let log = daemon.log_text();
    for wanted in [
        "bad configuration; dropped",
        "bad blacklist page; dropped",
        "kind=Config got=4 held=6",
        "kind=Blacklist got=4 held=5",
    ] {
        assert!(
            log.contains(wanted),
            "the daemon logged \"{wanted}\":\n{log}"
        );
    }
    assert!(!log.contains("panicked"), "nothing panicked");
    println!(
        "downlinks: 1 undecodable configuration and 1 undecodable blacklist dropped by the daemon, \
         configuration v6 refused by the till, v4 of both dropped as older; applied \
         configurations {configs:?}, blacklists {blacklists:?}; till link lines {link_lines:?}, \
         {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn uploads_end_exactly_once_across_a_restart_of_a_persistent_broker_that_keeps_the_sessions() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(&MosquittoOptions {
        persistence: true,
        ..MosquittoOptions::default()
    });
    let campus = campus_up(CampusOptions::new(broker.port(), dir.path().join("campus")));
    let socket = dir.path().join("link.sock");
    let till = FakeTill::start(&socket, TerminalId(0x00C0_FFEE_0007));
    let daemon = DaemonProcess::start(&DaemonSetup::new(&socket, broker.port(), dir.path()));
    const RECORDS: u64 = 3_000;
    const RESTARTS: u64 = 2;
    let per_step = RECORDS / (RESTARTS + 1);
    let mut unacked_at_restarts = Vec::new();
    for restart in 0..RESTARTS {
        till.append(per_step);
        let total = per_step * (restart + 1);
        let target = Seq(total - per_step / 2);
        wait(
            "upload progress before a restart",
            CATCH_UP_TIMEOUT,
            &daemon,
            || till.uploaded_through() >= Some(target),
        );
        let connections = daemon.broker_connections();
        broker.stop_and_start();
        unacked_at_restarts.push(total - till.uploaded_through().map_or(0, |s| s.0));
        wait(
            "the daemon back on the broker",
            CATCH_UP_TIMEOUT,
            &daemon,
            || daemon.broker_connections() > connections,
        );
    }
    till.append(RECORDS - per_step * RESTARTS);
    wait("the whole journal acked", CATCH_UP_TIMEOUT, &daemon, || {
        till.uploaded_through() == Some(Seq(RECORDS))
    });
    assert_store_equals(&campus, till.terminal(), &till.journal());
    assert_eq!(till.bad_acks(), 0);
    let log = daemon.log_text();
    let kept = log.matches("session_present=true").count();
    assert!(
        kept as u64 >= RESTARTS,
        "the broker kept the daemon's session over each restart:\n{log}"
    );
    let stats = campus.stats();
    println!(
        "persistent broker: records {RECORDS}, clean restarts {RESTARTS} (records not yet acked at \
         each: {unacked_at_restarts:?}), daemon reconnects with the session kept {kept}, campus \
         connections {}, duplicates {}, {:.1} s",
        stats.connections,
        stats.duplicates,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_example_configuration_refuses_anonymous_clients_and_wrong_passwords() {
    use rumqttc::{
        AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet,
        TlsConfiguration, Transport,
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = make_test_pki(dir.path()) else {
        return;
    };
    let users = vec![("campus-server".to_string(), "campus secret".to_string())];
    let broker =
        Mosquitto::start_raw(|port, broker_dir| example_config(port, broker_dir, &pki, &users));
    let tls = std::sync::Arc::new(sync_daemon::broker::tls_config(&pki.ca_cert).unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let connect = |id: &str, credentials: Option<(&str, &str)>| {
        let mut options = MqttOptions::new(id, "127.0.0.1", broker.port());
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls.clone(),
        )));
        if let Some((user, password)) = credentials {
            options.set_credentials(user, password);
        }
        runtime.block_on(async {
            let (_client, mut events) = AsyncClient::new(options, 4);
            loop {
                let event = tokio::time::timeout(Duration::from_secs(10), events.poll())
                    .await
                    .expect("the broker answers in time");
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => return Ok(ack.code),
                    Ok(_) => continue,
                    Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
                    Err(other) => panic!("{id}: not a refusal but {other:?}"),
                }
            }
        })
    };
    let anonymous = connect("anonymous", None);
    let wrong = connect("campus-server", Some(("campus-server", "wrong")));
    let unknown = connect("till-x", Some(("00000000000000aa", "campus secret")));
    let right = connect("campus-server", Some(("campus-server", "campus secret")));
    println!(
        "example configuration over TLS: anonymous {anonymous:?}, wrong password {wrong:?}, \
         unknown user {unknown:?}, right password {right:?}"
    );
    for (who, result) in [
        ("anonymous", anonymous),
        ("wrong password", wrong),
        ("unknown user", unknown),
    ] {
        assert!(
            matches!(
                result,
                Err(ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword)
            ),
            "{who} is refused: {result:?}"
        );
    }
    assert_eq!(
        right,
        Ok(ConnectReturnCode::Success),
        "the right password is let in"
    );
}

/// The terminal id the daemon logged on its first till connection.
fn till_terminal(daemon: &DaemonProcess) -> TerminalId {
    let mut found = None;
    wait(
        "the daemon connected to the till",
        CATCH_UP_TIMEOUT,
        daemon,
        || {
            found = daemon
                .log_text()
                .lines()
                .find(|line| line.contains("till connected"))
                .and_then(|line| line.split("terminal=").nth(1))
                .and_then(|rest| rest.get(..16))
                .and_then(shared::mqtt::parse_terminal);
            found.is_some()
        },
    );
    found.expect("found above")
}

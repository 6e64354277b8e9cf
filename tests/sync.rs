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
    process: Option<till_tests::TillProcess>,
    kills: u32,
}

impl RealTill {
    fn start(dir: &std::path::Path) -> RealTill {
        let mut till = RealTill {
            data: dir.join("till"),
            socket: dir.join("link.sock"),
            process: None,
            kills: 0,
        };
        till.launch();
        till
    }

    fn launch(&mut self) {
        let socket = self.socket.to_string_lossy().into_owned();
        self.process = Some(till_tests::TillProcess::start(
            &self.data,
            &["--link", socket.as_str()],
        ));
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
        let records = journal
            .records_from(Seq::FIRST)
            .map(|record| {
                let record = record.expect("every record decodes");
                (record.seq, shared::codec::encode_record(&record))
            })
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
    let mut unacked_at_kills = Vec::new();
    for round in 0..ROUNDS {
        till.sell(SALES_PER_ROUND, "card-1");
        // Kill while the till is selling and the daemon uploading.
        let target = round * records_per_round + records_per_round / 3;
        wait(
            "upload progress before a broker kill",
            CATCH_UP_TIMEOUT,
            &daemon,
            || campus.record_count() >= target,
        );
        broker.restart();
        let through = (round + 1) * records_per_round;
        unacked_at_kills.push(through - campus.record_count());
        till.process().wait_for(&format!("journal at #{through}"));
    }
    till.finish_uploaded();
    let records = assert_everything_uploaded(&campus, &till);
    let stats = campus.stats();
    let reconnects = daemon.broker_connections().saturating_sub(1);
    println!(
        "records {records}, broker kills {} (records not yet stored at each: {unacked_at_kills:?}), \
         daemon reconnects {reconnects}, duplicates {}, batches {}, {:.1} s",
        broker.kills,
        stats.duplicates,
        stats.batches,
        started.elapsed().as_secs_f64()
    );
    assert!(records >= 10_000);
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

    // 1. The daemon is SIGKILLed mid-upload (the till keeps selling) and restarted.
    sell_round(&mut till, &mut sold);
    let before = campus.record_count();
    wait("upload progress", CATCH_UP_TIMEOUT, &daemon, || {
        campus.record_count() >= before + 50
    });
    daemon.kill();
    let at_kill = campus.record_count();
    till.process()
        .wait_for(&format!("journal at #{}", 2 * sold));
    daemon.restart();
    assert!(at_kill < 2 * sold, "the daemon was killed mid-upload");

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
        "records {records}, daemon kills {}, till kills {}, campus restarts {campus_restarts}, \
         daemon broker connections {}, duplicates {duplicates}, {:.1} s",
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
        merchant_name: "一食堂".into(),
        meal_periods: vec![MealPeriodSpec {
            name: "午餐".into(),
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
    let mut till = RealTill::start(dir.path());
    till.process().send("expect journal 0 records\n");
    if let Some(process) = till.process.take() {
        process.finish();
    }
    let terminal = till.journal().terminal;
    let pki = make_test_pki(dir.path());
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
    // 100,000 lost cards: about 1.2 MB in one retained message, far above rumqttc's default.
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
        tls: None,
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

//! The example broker configuration (`docs/mosquitto/`): TLS and passwords carry the uploads,
//! anonymous clients and wrong passwords are refused, the ACL confines a till to its own topics
//! (uploads, configuration, code-payment orders and their results),
//! the packet limit drops an oversized retained message without stopping uploads, and the
//! till's last will is published when the daemon dies.

use super::*;

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
fn the_example_acl_confines_a_till_to_its_own_topics() {
    use pos_firmware::sim::payments::{wallet_code, WalletBehaviour};
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    use shared::link::UploadRecord;
    use shared::mqtt::{
        config_topic, order_request_topic, order_result_topic, upload_topic, UploadBatch,
    };
    use shared::pay::{OrderCall, OrderId, OrderRequest};
    use shared::paycode::{CodeMethod, PaymentCode};
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (TerminalId(0x0a), TerminalId(0x0b));
    let users = vec![
        (shared::mqtt::till_username(a), "a".to_string()),
        (shared::mqtt::till_username(b), "b".to_string()),
        ("campus-server".to_string(), "campus".to_string()),
    ];
    let (broker, campus_options) = broker_with_example_acl(users, dir.path());
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
    let order = |terminal, serial| {
        let code = wallet_code(CodeMethod::WeChat, WalletBehaviour::PaidAtOnce, serial);
        shared::codec::encode_order_call(&OrderCall {
            order: OrderId {
                terminal,
                intent: Seq(1),
            },
            request: OrderRequest::Submit {
                amount: shared::Fen::new(100),
                method: CodeMethod::WeChat,
                code: PaymentCode::recognise(&code).unwrap(),
                at: campus.now(),
            },
        })
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let received = runtime.block_on(async {
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
        // The same with orders: read B's results (denied) and its own; send an order as B
        // (denied: the campus would answer it on B's result topic first), then its own.
        for terminal in [b, a] {
            client
                .subscribe(order_result_topic(terminal), QoS::AtLeastOnce)
                .await
                .unwrap();
        }
        for (terminal, serial) in [(b, 2), (a, 1)] {
            client
                .publish(
                    order_request_topic(terminal),
                    QoS::AtLeastOnce,
                    false,
                    order(terminal, serial),
                )
                .await
                .unwrap();
        }
        let mut topics = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !topics.contains(&config_topic(a)) || !topics.contains(&order_result_topic(a)) {
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
        received,
        vec![config_topic(a), order_result_topic(a)],
        "till A could not read B's configuration, nor B's order results"
    );
    assert_eq!(
        (campus.order_count(), campus.payment_stats().calls),
        (1, 1),
        "only A's own order reached the campus: A could not order as B"
    );
    println!(
        "ACL: A's upload and order handled, B's upload and order topics refused to A, B's \
         configuration and order results unreadable by A"
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
    let (broker, mut campus_options) = broker_with_example_acl(users, dir.path());
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

/// A broker with `users` under the example ACL (`docs/mosquitto/acl`), and the options of a campus
/// server on it that logs in as `campus-server` (password `campus`, which `users` must hold).
fn broker_with_example_acl(
    users: Vec<(String, String)>,
    dir: &std::path::Path,
) -> (Mosquitto, CampusOptions) {
    let broker = Mosquitto::start(&MosquittoOptions {
        users,
        acl: Some(std::fs::read_to_string(repo_file("docs/mosquitto/acl")).unwrap()),
        ..MosquittoOptions::default()
    });
    let mut campus_options = CampusOptions::new(broker.port(), dir.join("campus"));
    campus_options.password = Some("campus".into());
    (broker, campus_options)
}

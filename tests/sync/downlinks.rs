//! Downlinks: the campus simulator publishes its configuration and blacklist files, a million-entry
//! blacklist arrives in pages under the broker limit, and malformed, invalid or older downlinks
//! leave the till unchanged while a newer one applies.

use super::*;

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

//! Uploads across faults: broker kills (with the fake till and with the real one), the daemon and
//! the till killed and restarted in every order, and a persistent broker restarted with its
//! sessions. Every record reaches the campus exactly once.

use super::*;

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

//! A till restored from an old backup (its journal shorter, then growing with other records under
//! seqs the campus already holds): alarms, never an overwrite of the campus store and never a
//! stale ack, with the daemon restarted or kept running across the restore.

use super::*;

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

//! The uploader's rules (the header of `uploader.rs`) as tests: one sentence each, with time
//! as an input and no broker and no till. In their own file so that the state machine reads in
//! one sitting.

use super::*;

const T: TerminalId = TerminalId(0xAB);
const SESSION_SEED: u64 = 1_000;

fn limits() -> UploadLimits {
    UploadLimits {
        batch_records: 10,
        window_batches: 2,
        ack_timeout_ms: 1_000,
    }
}

fn records(from: u64, to: u64) -> Vec<UploadRecord> {
    (from..=to)
        .map(|seq| UploadRecord {
            seq: Seq(seq),
            bytes: vec![seq as u8],
        })
        .collect()
}

fn drain(up: &mut Uploader) -> Vec<Action> {
    std::iter::from_fn(|| up.poll_action()).collect()
}

fn fetches(actions: &[Action]) -> Vec<Option<Seq>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ToTill(ToTill::Fetch { after, .. }) => Some(*after),
            _ => None,
        })
        .collect()
}

fn published(actions: &[Action]) -> Vec<(Seq, Seq)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish(batch) => batch.span(),
            _ => None,
        })
        .collect()
}

/// An ack of the current session of `up`, the server having received through `through`.
fn ack(up: &Uploader, through: u64) -> UploadAck {
    let session = up.session().unwrap_or(UploadSession(0));
    session_ack(through, session, through)
}

/// An ack answering `session`, whose batches the server received through `received`.
fn session_ack(through: u64, session: UploadSession, received: u64) -> UploadAck {
    UploadAck {
        terminal: T,
        stored_through: Some(Seq(through)),
        answers: Some(shared::mqtt::SessionAnswered {
            session,
            received_through: Seq(received),
        }),
    }
}

fn acked(actions: &[Action]) -> Vec<Seq> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ToTill(ToTill::Acked { through }) => Some(*through),
            _ => None,
        })
        .collect()
}

/// A till with 35 records, 5 of them uploaded, and a broker that is up.
fn started() -> Uploader {
    let mut up = Uploader::new(limits(), SESSION_SEED);
    up.handle_till_welcome(T, Some(Seq(5)), Some(Seq(35)));
    assert_eq!(
        drain(&mut up),
        vec![Action::ToTill(ToTill::Broker(BrokerLink::Down))],
        "nothing is fetched while the broker is down"
    );
    up.handle_broker_up();
    let actions = drain(&mut up);
    assert_eq!(fetches(&actions), vec![Some(Seq(5))]);
    up
}

#[test]
fn uploads_from_the_watermark_within_the_window_and_forwards_only_server_acks() {
    let mut up = started();
    up.handle_till_message(
        ToDaemon::Records {
            records: records(6, 15),
        },
        0,
    );
    let actions = drain(&mut up);
    assert_eq!(published(&actions), vec![(Seq(6), Seq(15))]);
    assert_eq!(fetches(&actions), vec![Some(Seq(15))]);
    up.handle_till_message(
        ToDaemon::Records {
            records: records(16, 25),
        },
        0,
    );
    let actions = drain(&mut up);
    assert_eq!(published(&actions), vec![(Seq(16), Seq(25))]);
    assert_eq!(fetches(&actions), vec![], "the window of 2 batches is full");
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::ToTill(ToTill::Acked { .. }))),
        "publishing alone never moves the watermark"
    );
    up.handle_ack(ack(&up, 15));
    let actions = drain(&mut up);
    assert_eq!(
        actions,
        vec![
            Action::ToTill(ToTill::Acked { through: Seq(15) }),
            Action::ToTill(ToTill::Fetch {
                after: Some(Seq(25)),
                max: 10
            })
        ]
    );
    // A repeated (redelivered) ack changes nothing.
    up.handle_ack(ack(&up, 15));
    assert_eq!(drain(&mut up), vec![]);
}

#[test]
fn a_reconnect_resends_from_the_tills_watermark_not_from_what_was_published() {
    let mut up = started();
    up.handle_till_message(
        ToDaemon::Records {
            records: records(6, 15),
        },
        0,
    );
    drain(&mut up);
    up.handle_broker_down();
    up.handle_broker_up();
    let actions = drain(&mut up);
    assert_eq!(
        fetches(&actions),
        vec![],
        "the earlier fetch is still outstanding"
    );
    // The answer to the fetch made before the reconnect is stale and dropped...
    up.handle_till_message(
        ToDaemon::Records {
            records: records(16, 25),
        },
        0,
    );
    let actions = drain(&mut up);
    assert_eq!(published(&actions), vec![]);
    // ...and the round starts again at the watermark.
    assert_eq!(fetches(&actions), vec![Some(Seq(5))]);
    assert_eq!(up.counters().resends, 2);
}

#[test]
fn an_ack_timeout_resends_everything_after_the_watermark() {
    let mut up = started();
    up.handle_till_message(
        ToDaemon::Records {
            records: records(6, 15),
        },
        100,
    );
    drain(&mut up);
    up.handle_till_message(
        ToDaemon::Records {
            records: records(16, 25),
        },
        200,
    );
    drain(&mut up);
    assert_eq!(up.next_deadline_ms(), Some(1_100));
    up.handle_tick(1_099);
    assert_eq!(drain(&mut up), vec![]);
    up.handle_tick(1_100);
    assert_eq!(fetches(&drain(&mut up)), vec![Some(Seq(5))]);
    assert_eq!(up.counters().ack_timeouts, 1);
}

#[test]
fn a_session_less_ack_is_counted_and_never_moves_the_watermark() {
    let mut up = started();
    up.handle_till_message(
        ToDaemon::Records {
            records: records(6, 15),
        },
        0,
    );
    drain(&mut up);
    // A forged ack of the first format (or one of a server that does not answer
    // sessions), within the journal and within what was published: no progress.
    for through in [15, 10, 50] {
        up.handle_ack(UploadAck {
            terminal: T,
            stored_through: Some(Seq(through)),
            answers: None,
        });
        assert_eq!(drain(&mut up), vec![], "ack of {through} without a session");
    }
    assert_eq!(up.counters().acks_without_session, 3);
    assert_eq!(up.counters().acks_forwarded, 0);
    assert_eq!(up.counters().acks_beyond_journal, 0);
    assert_eq!(
        up.next_deadline_ms(),
        Some(1_000),
        "the batch still waits for a real ack (and is resent without one)"
    );
    // Another terminal's ack is ignored.
    let session = up.session().unwrap();
    up.handle_ack(UploadAck {
        terminal: TerminalId(1),
        ..session_ack(15, session, 15)
    });
    assert_eq!(drain(&mut up), vec![]);
    // The server's ack of this session is progress.
    up.handle_ack(session_ack(15, session, 15));
    assert_eq!(acked(&drain(&mut up)), vec![Seq(15)]);
}

#[test]
fn an_ack_that_arrives_while_the_till_is_away_is_dropped_and_the_resend_earns_a_fresh_one() {
    let mut up = started();
    up.handle_till_lost();
    up.handle_ack(ack(&up, 30));
    assert_eq!(drain(&mut up), vec![]);
    up.handle_till_welcome(T, Some(Seq(5)), Some(Seq(40)));
    let actions = drain(&mut up);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::ToTill(ToTill::Acked { .. }))),
        "an ack from before this connection is not forwarded: {actions:?}"
    );
    assert_eq!(
        fetches(&actions),
        vec![Some(Seq(5))],
        "the resend starts from the till's own watermark"
    );
    up.handle_till_message(
        ToDaemon::Records {
            records: records(6, 15),
        },
        0,
    );
    drain(&mut up);
    // The server answers the resend with what it holds: that goes to the till, for the
    // records published on this connection.
    up.handle_ack(ack(&up, 30));
    assert!(drain(&mut up).contains(&Action::ToTill(ToTill::Acked { through: Seq(15) })));
}

#[test]
fn a_till_restored_while_the_daemon_runs_never_gets_an_ack_from_before_the_restore() {
    // The till held 100 records, all acked by the server.
    let mut up = Uploader::new(limits(), SESSION_SEED);
    up.handle_till_welcome(T, Some(Seq(90)), Some(Seq(100)));
    up.handle_broker_up();
    drain(&mut up);
    up.handle_till_message(
        ToDaemon::Records {
            records: records(91, 100),
        },
        0,
    );
    drain(&mut up);
    up.handle_ack(ack(&up, 100));
    assert!(drain(&mut up).contains(&Action::ToTill(ToTill::Acked { through: Seq(100) })));
    // It is switched off and restored from a backup holding 50 records, 40 of them acked;
    // the daemon keeps running. The restored till sells on past 100 with other records
    // under seqs 51..=100, which the server holds in their original version.
    up.handle_till_lost();
    up.handle_till_welcome(T, Some(Seq(40)), Some(Seq(50)));
    up.handle_till_message(ToDaemon::Appended { last_seq: Seq(120) }, 0);
    let actions = drain(&mut up);
    assert_eq!(fetches(&actions), vec![Some(Seq(40))]);
    assert_eq!(up.counters().journal_rollbacks, 1, "the restore is noticed");
    // An ack the server sent for a batch of the connection before the restore arrives
    // now, before anything was published on this one: ignored, although the restored
    // journal reaches past it.
    up.handle_ack(ack(&up, 100));
    assert_eq!(drain(&mut up), vec![]);
    assert_eq!(up.counters().acks_before_publish, 1);
    up.handle_till_message(
        ToDaemon::Records {
            records: records(41, 50),
        },
        0,
    );
    drain(&mut up);
    // The server never acks past its first conflict (51): it acks 50. Only that reaches the
    // till; the ack of 100 from before the restore is never forwarded.
    up.handle_ack(ack(&up, 50));
    let acked: Vec<Seq> = drain(&mut up)
        .into_iter()
        .filter_map(|a| match a {
            Action::ToTill(ToTill::Acked { through }) => Some(through),
            _ => None,
        })
        .collect();
    assert_eq!(acked, vec![Seq(50)]);
    up.handle_ack(ack(&up, 50));
    assert!(
        !drain(&mut up)
            .iter()
            .any(|a| matches!(a, Action::ToTill(ToTill::Acked { .. }))),
        "nothing beyond 50, and 50 not twice"
    );
}

#[test]
fn every_till_connection_uploads_in_a_session_of_its_own_and_batches_carry_it() {
    let mut up = started();
    let first = up.session().expect("a till is connected");
    assert_eq!(first, UploadSession(SESSION_SEED));
    up.handle_till_message(
        ToDaemon::Records {
            records: records(6, 15),
        },
        0,
    );
    let sessions: Vec<_> = drain(&mut up)
        .into_iter()
        .filter_map(|a| match a {
            Action::Publish(batch) => Some(batch.session),
            _ => None,
        })
        .collect();
    assert_eq!(sessions, vec![Some(first)]);
    up.handle_till_lost();
    assert_eq!(up.session(), None);
    up.handle_till_welcome(T, Some(Seq(5)), Some(Seq(35)));
    assert_eq!(up.session(), Some(UploadSession(SESSION_SEED + 1)));
}

#[test]
fn a_session_ack_counts_only_for_its_session_and_what_the_server_received_in_it() {
    let mut up = started();
    let session = up.session().unwrap();
    let mut batches = Vec::new();
    for (from, to) in [(6, 15), (16, 25)] {
        up.handle_till_message(
            ToDaemon::Records {
                records: records(from, to),
            },
            0,
        );
        batches.extend(published(&drain(&mut up)));
    }
    assert_eq!(batches, vec![(Seq(6), Seq(15)), (Seq(16), Seq(25))]);
    // Another session's ack — whatever it claims — is no progress.
    up.handle_ack(session_ack(25, UploadSession(session.0 + 7), 25));
    assert_eq!(drain(&mut up), vec![]);
    assert_eq!(up.counters().acks_other_session, 1);
    // The server stores through 25 but has received only the first batch in this session:
    // progress through 15.
    up.handle_ack(session_ack(25, session, 15));
    assert_eq!(acked(&drain(&mut up)), vec![Seq(15)]);
    up.handle_ack(session_ack(25, session, 25));
    assert_eq!(acked(&drain(&mut up)), vec![Seq(25)]);
}

#[test]
fn a_restored_till_never_gets_a_late_ack_of_an_earlier_session_even_after_publishing() {
    // The till held 100 records, acked through 100 in the first session.
    let mut up = Uploader::new(limits(), SESSION_SEED);
    up.handle_till_welcome(T, Some(Seq(90)), Some(Seq(100)));
    up.handle_broker_up();
    drain(&mut up);
    let old = up.session().unwrap();
    up.handle_till_message(
        ToDaemon::Records {
            records: records(91, 100),
        },
        0,
    );
    drain(&mut up);
    // Restored from a backup of 50 records (40 acked) while the daemon runs; it sells on
    // past 100 with other records under 51..=100.
    up.handle_till_lost();
    up.handle_till_welcome(T, Some(Seq(40)), Some(Seq(120)));
    drain(&mut up);
    let mut batches = Vec::new();
    for (from, to) in [(41, 50), (51, 60)] {
        up.handle_till_message(
            ToDaemon::Records {
                records: records(from, to),
            },
            0,
        );
        batches.extend(published(&drain(&mut up)));
    }
    assert_eq!(batches, vec![(Seq(41), Seq(50)), (Seq(51), Seq(60))]);
    // The old session's ack of 100 arrives only now, after this session published (the
    // case the first format cannot tell from a fresh ack): ignored.
    up.handle_ack(session_ack(100, old, 100));
    assert_eq!(drain(&mut up), vec![]);
    assert_eq!(up.counters().acks_other_session, 1);
    // This session's ack: the server holds 1..=100 (its 51..=100 are the old versions; it
    // quarantines the restored till's 51.. as conflicts and never acks past 50).
    let new = up.session().unwrap();
    up.handle_ack(session_ack(50, new, 60));
    assert_eq!(acked(&drain(&mut up)), vec![Seq(50)]);
}

#[test]
fn a_session_ack_beyond_the_journal_is_an_alarm_never_passed_to_the_till() {
    let mut up = started();
    let session = up.session().unwrap();
    up.handle_till_message(
        ToDaemon::Records {
            records: records(6, 15),
        },
        0,
    );
    drain(&mut up);
    // The server stores through 50; the till's journal ends at 35 and may grow past 50
    // with other records before it could judge a forwarded ack: only 15, what the server
    // received in this session, is progress.
    up.handle_ack(session_ack(50, session, 15));
    assert_eq!(acked(&drain(&mut up)), vec![Seq(15)]);
    assert_eq!(up.counters().acks_beyond_journal, 1);
    up.handle_ack(session_ack(50, session, 15));
    assert_eq!(acked(&drain(&mut up)), vec![]);
    assert_eq!(up.counters().acks_beyond_journal, 1, "one alarm per value");
}

#[test]
fn downlink_messages_are_passed_on_and_the_newest_is_kept_for_a_returning_till() {
    let mut up = started();
    let list = Blacklist::empty();
    up.handle_blacklist(list.clone()).unwrap();
    up.handle_server_time(UnixMillis(9));
    assert_eq!(
        drain(&mut up),
        vec![
            Action::ToTill(ToTill::Blacklist(list.clone())),
            Action::ToTill(ToTill::ServerTime {
                server: UnixMillis(9)
            })
        ]
    );
    up.handle_till_lost();
    up.handle_server_time(UnixMillis(10));
    up.handle_till_welcome(T, Some(Seq(5)), Some(Seq(5)));
    assert_eq!(
        drain(&mut up),
        vec![
            Action::ToTill(ToTill::Broker(BrokerLink::Up)),
            Action::ToTill(ToTill::Blacklist(list))
        ]
    );
}

#[test]
fn an_empty_answer_waits_for_appended() {
    let mut up = started();
    up.handle_till_message(ToDaemon::Records { records: vec![] }, 0);
    assert_eq!(drain(&mut up), vec![]);
    up.handle_till_message(ToDaemon::Appended { last_seq: Seq(6) }, 0);
    assert_eq!(fetches(&drain(&mut up)), vec![Some(Seq(5))]);
}

#[test]
fn an_older_configuration_or_blacklist_is_dropped_and_reported() {
    let mut up = started();
    let list = |version| Blacklist::new(version, UnixMillis(1), Vec::new()).unwrap();
    up.handle_blacklist(list(5)).unwrap();
    assert_eq!(
        up.handle_blacklist(list(4)),
        Err(StaleDownlink {
            kind: DownlinkKind::Blacklist,
            held: 5,
            got: 4
        })
    );
    // The same version again (a retained message redelivered) is passed on for the till
    // to judge; a newer one is.
    up.handle_blacklist(list(5)).unwrap();
    up.handle_blacklist(list(6)).unwrap();
    let versions: Vec<u64> = drain(&mut up)
        .into_iter()
        .filter_map(|a| match a {
            Action::ToTill(ToTill::Blacklist(l)) => Some(l.version()),
            _ => None,
        })
        .collect();
    assert_eq!(versions, vec![5, 5, 6]);
    up.handle_till_lost();
    up.handle_till_welcome(T, Some(Seq(5)), Some(Seq(5)));
    assert!(drain(&mut up).contains(&Action::ToTill(ToTill::Blacklist(list(6)))));
}

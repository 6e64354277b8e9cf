//! The daemon's async loop: keeps a connection to the till's Unix socket and one to the broker,
//! each re-established with capped exponential backoff and jitter, feeds every event to the
//! [`Uploader`] (journal upload, downlinks) and the [`OrderRelay`] (code-payment orders) with
//! the current time and carries out what they ask for. It holds no state that is not in the
//! till's journal, the campus back end or the broker, so SIGKILL at any point loses nothing.

use crate::blacklist_pages::{PageAssembler, PageOutcome};
use crate::broker::{mqtt_options, BrokerConfig, BrokerConnection, BrokerEvent};
use crate::error::DaemonError;
use crate::orders::{OrderAction, OrderRelay, OrderReport};
use crate::till_link::TillLink;
use crate::uploader::{Action, StaleDownlink, UploadLimits, Uploader};
use rumqttc::v5::mqttbytes::QoS;
use shared::backoff::Backoff;
use shared::codec::{
    decode_blacklist_page, decode_campus_config, decode_server_time, decode_upload_ack,
    encode_order_call, encode_upload_batch,
};
use shared::link::{DownlinkKind, ToDaemon};
use shared::mqtt::{
    ack_topic, config_topic, order_result_topic, page_of_blacklist_topic, upload_topic, TIME_TOPIC,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

/// The first delay before reconnecting to the till's socket.
pub const TILL_BACKOFF_BASE_MS: u64 = 100;
/// The longest delay between attempts to reach the till's socket.
pub const TILL_BACKOFF_CAP_MS: u64 = 2_000;
/// The first delay before reconnecting to the broker.
pub const BROKER_BACKOFF_BASE_MS: u64 = 200;
/// The default longest delay between broker connection attempts.
pub const DEFAULT_BROKER_BACKOFF_CAP_MS: u64 = 30_000;
/// How often progress is logged while records flow.
const PROGRESS_LOG_INTERVAL_MS: u64 = 5_000;

/// Everything the daemon needs to run.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub socket: PathBuf,
    pub broker: BrokerConfig,
    pub limits: UploadLimits,
    pub broker_backoff_cap_ms: u64,
    /// Seed of the jitter of both backoffs.
    pub seed: u64,
}

/// The name the daemon gives in its hello.
fn daemon_name() -> String {
    format!("sync-daemon {}", env!("CARGO_PKG_VERSION"))
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(config: DaemonConfig) -> Result<(), DaemonError> {
    let tls = match &config.broker.tls_ca {
        Some(ca) => Some(Arc::new(crate::broker::tls_config(ca)?)),
        None => None,
    };
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let origin = Instant::now();
    let now_ms = move || origin.elapsed().as_millis() as u64;

    // Always from the clock, even with `--seed` (which only fixes the jitter): a restarted
    // daemon must never reuse an upload session, or an ack queued for the old one would count.
    let mut uploader = Uploader::new(config.limits, time_seed());
    let mut blacklist_pages = PageAssembler::new();
    let mut orders = OrderRelay::new();
    let mut till: Option<TillLink> = None;
    let mut till_backoff = Backoff::new(TILL_BACKOFF_BASE_MS, TILL_BACKOFF_CAP_MS, config.seed);
    let mut till_retry_at = Instant::now();
    let mut broker: Option<BrokerConnection> = None;
    let mut broker_terminal = None;
    let mut broker_backoff = Backoff::new(
        BROKER_BACKOFF_BASE_MS,
        config.broker_backoff_cap_ms,
        config.seed.rotate_left(17) ^ 0x5EED,
    );
    let mut broker_retry_at = Instant::now();
    let mut broker_connections: u64 = 0;
    let mut next_progress_log_ms = PROGRESS_LOG_INTERVAL_MS;

    loop {
        let ack_deadline = uploader
            .next_deadline_ms()
            .map(|ms| origin + Duration::from_millis(ms));
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = tokio::time::sleep_until(till_retry_at), if till.is_none() => {
                match TillLink::connect(&config.socket, &daemon_name()).await {
                    Ok((link, welcome)) => {
                        info!(
                            terminal = %welcome.terminal,
                            machine = %welcome.machine,
                            uploaded_through = ?welcome.uploaded_through,
                            last_seq = ?welcome.last_seq,
                            "till connected"
                        );
                        till_backoff.reset();
                        till = Some(link);
                        let rollbacks = uploader.counters().journal_rollbacks;
                        uploader.handle_till_welcome(
                            welcome.terminal,
                            welcome.uploaded_through,
                            welcome.last_seq,
                        );
                        if uploader.counters().journal_rollbacks > rollbacks {
                            error!(
                                terminal = %welcome.terminal,
                                last_seq = ?welcome.last_seq,
                                "ALARM the till's journal ends before records it reported \
                                 earlier (restored from an old backup?); acks from before \
                                 this connection are not forwarded"
                            );
                        }
                        orders.handle_till_welcome(welcome.terminal);
                        if broker_terminal != Some(welcome.terminal) {
                            // A new identity (first start or a new journal): a new session.
                            broker = None;
                            orders.handle_broker_down();
                            broker_terminal = Some(welcome.terminal);
                            broker_retry_at = Instant::now();
                        }
                    }
                    Err(error) => {
                        let delay = till_backoff.next_delay();
                        if till_backoff.failures() <= 1 {
                            warn!(%error, "cannot reach the till; retrying");
                        } else {
                            debug!(%error, delay_ms = delay.as_millis() as u64, "till still unreachable");
                        }
                        till_retry_at = Instant::now() + delay;
                    }
                }
            }
            message = async { match till.as_mut() { Some(link) => link.recv().await, None => std::future::pending().await } }, if till.is_some() => {
                match message {
                    Ok(ToDaemon::Order(call)) => orders.handle_call(call),
                    Ok(message) => handle_till_message(&mut uploader, message, now_ms()),
                    Err(error) => {
                        warn!(%error, "till connection lost");
                        till = None;
                        uploader.handle_till_lost();
                        orders.handle_till_lost();
                        till_retry_at = Instant::now() + till_backoff.next_delay();
                    }
                }
            }
            _ = tokio::time::sleep_until(broker_retry_at), if broker.is_none() && broker_terminal.is_some() => {
                if let Some(terminal) = broker_terminal {
                    let options = mqtt_options(&config.broker, terminal, tls.as_ref());
                    debug!(host = %config.broker.host, port = config.broker.port, "connecting to the broker");
                    broker = Some(BrokerConnection::start(options, terminal));
                }
            }
            event = async { match broker.as_mut() { Some(conn) => conn.events.recv().await, None => std::future::pending().await } }, if broker.is_some() => {
                match event {
                    Some(BrokerEvent::Subscribed { session_present }) => {
                        broker_connections += 1;
                        broker_backoff.reset();
                        info!(connection = broker_connections, session_present, "broker up");
                        uploader.handle_broker_up();
                        orders.handle_broker_up();
                    }
                    Some(BrokerEvent::Message { topic, payload }) => {
                        if broker_terminal.is_some_and(|t| topic == order_result_topic(t)) {
                            orders.handle_result_payload(&payload);
                        } else {
                            handle_downlink(&mut uploader, &mut blacklist_pages, &topic, &payload);
                        }
                    }
                    Some(BrokerEvent::Down(reason)) => {
                        broker = None;
                        uploader.handle_broker_down();
                        orders.handle_broker_down();
                        let delay = broker_backoff.next_delay();
                        warn!(%reason, retry_in_ms = delay.as_millis() as u64, "broker down");
                        broker_retry_at = Instant::now() + delay;
                    }
                    None => {
                        broker = None;
                        uploader.handle_broker_down();
                        orders.handle_broker_down();
                        broker_retry_at = Instant::now() + broker_backoff.next_delay();
                    }
                }
            }
            _ = async { match ack_deadline { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } }, if ack_deadline.is_some() => {
                let before = uploader.counters().ack_timeouts;
                uploader.handle_tick(now_ms());
                if uploader.counters().ack_timeouts > before {
                    warn!("no ack from the campus server in time; resending from the watermark");
                }
            }
        }

        // Carry out what the uploader decided.
        while let Some(action) = uploader.poll_action() {
            match action {
                Action::ToTill(message) => {
                    let Some(link) = till.as_mut() else { continue };
                    if let shared::link::ToTill::Acked { through } = &message {
                        debug!(%through, "ack forwarded to the till");
                    }
                    if let Err(error) = link.send(&message).await {
                        warn!(%error, "cannot write to the till");
                        till = None;
                        uploader.handle_till_lost();
                        orders.handle_till_lost();
                        till_retry_at = Instant::now() + till_backoff.next_delay();
                    }
                }
                Action::Publish(batch) => {
                    let Some(conn) = broker.as_ref() else {
                        continue;
                    };
                    let topic = upload_topic(batch.terminal);
                    if let Err(error) = conn.client.try_publish(
                        topic,
                        QoS::AtLeastOnce,
                        false,
                        encode_upload_batch(&batch),
                    ) {
                        // The batch is still in the journal: the ack timeout resends it.
                        warn!(%error, "cannot queue a batch for the broker");
                    }
                }
            }
        }

        // Carry out what the order relay decided (a refused publish queues a "not sent").
        while let Some(action) = orders.poll_action() {
            match action {
                OrderAction::Report(report) => log_order_report(&report),
                OrderAction::Publish { topic, call } => {
                    let queued = match broker.as_ref() {
                        Some(conn) => conn
                            .client
                            .try_publish(topic, QoS::AtLeastOnce, false, encode_order_call(&call))
                            .map_err(|error| error.to_string()),
                        None => Err("no broker connection".to_string()),
                    };
                    if let Err(error) = queued {
                        warn!(order = %call.order, %error, "cannot queue an order call for the broker");
                        orders.handle_publish_refused(&call);
                    }
                }
                OrderAction::ToTill(message) => {
                    let Some(link) = till.as_mut() else { continue };
                    if let Err(error) = link.send(&message).await {
                        warn!(%error, "cannot write to the till");
                        till = None;
                        uploader.handle_till_lost();
                        orders.handle_till_lost();
                        till_retry_at = Instant::now() + till_backoff.next_delay();
                    }
                }
            }
        }

        if now_ms() >= next_progress_log_ms {
            next_progress_log_ms = now_ms() + PROGRESS_LOG_INTERVAL_MS;
            let counters = uploader.counters();
            info!(
                uploaded_through = ?uploader.uploaded_through(),
                batches = counters.batches_published,
                records = counters.records_published,
                resends = counters.resends,
                ack_timeouts = counters.ack_timeouts,
                "progress"
            );
        }
    }
    info!(counters = ?uploader.counters(), orders = ?orders.counters(), "stopping");
    Ok(())
}

fn handle_till_message(uploader: &mut Uploader, message: ToDaemon, now_ms: u64) {
    match &message {
        ToDaemon::Rejected { kind, reason } => {
            warn!(?kind, %reason, "the till rejected a downlink message");
        }
        ToDaemon::Applied { kind, version } => info!(?kind, version, "the till applied"),
        ToDaemon::Refused { reason } => warn!(%reason, "the till refused"),
        ToDaemon::Watermark { uploaded_through } => {
            debug!(?uploaded_through, "watermark durable")
        }
        _ => {}
    }
    uploader.handle_till_message(message, now_ms);
}

/// One line per order event; never the payment code (the report carries only its hint).
fn log_order_report(report: &OrderReport) {
    match report {
        OrderReport::Sending { order, kind } => info!(%order, %kind, "order call sent"),
        OrderReport::NotSent { order, kind, why } => {
            warn!(%order, %kind, %why, "order call not sent; the till was told")
        }
        OrderReport::AlarmForeignCall { order, till, kind } => error!(
            %order,
            %till,
            %kind,
            "ALARM the till sent an order call naming another terminal; refused, not sent"
        ),
        OrderReport::Passed { order, state } => {
            info!(%order, ?state, "order result passed to the till")
        }
        OrderReport::DroppedNoTill { order, state } => debug!(
            %order,
            ?state,
            "order result while no till is connected; dropped (the till asks again)"
        ),
        OrderReport::AlarmForeignResult { order, till } => error!(
            %order,
            %till,
            "ALARM an order result naming another terminal on this till's result topic; dropped"
        ),
        OrderReport::AlarmUndecodable { bytes, error } => error!(
            bytes,
            %error,
            "ALARM an undecodable payload on this till's order result topic; dropped"
        ),
    }
}

/// Decodes a message from the broker and hands it to the uploader; bad payloads are logged
/// with their topic and size, and dropped.
fn handle_downlink(
    uploader: &mut Uploader,
    blacklist_pages: &mut PageAssembler,
    topic: &str,
    payload: &[u8],
) {
    let Some(terminal) = uploader.terminal() else {
        return;
    };
    let bytes = payload.len();
    if topic == ack_topic(terminal) {
        match decode_upload_ack(payload) {
            Ok(ack) => {
                debug!(stored_through = ?ack.stored_through, "server ack");
                let before = uploader.counters().acks_beyond_journal;
                let without_session = uploader.counters().acks_without_session;
                uploader.handle_ack(ack);
                if uploader.counters().acks_without_session > without_session {
                    error!(
                        stored_through = ?ack.stored_through,
                        count = uploader.counters().acks_without_session,
                        "ALARM an ack without an upload session (the first format: an outdated \
                         campus server, or forged); ignored, the watermark stays"
                    );
                }
                if uploader.counters().acks_beyond_journal > before {
                    error!(
                        stored_through = ?ack.stored_through,
                        till_uploaded_through = ?uploader.uploaded_through(),
                        "ALARM the campus server holds records beyond this till's journal \
                         (restored from an old backup?); its watermark stays"
                    );
                }
            }
            Err(error) => warn!(%topic, bytes, %error, "bad ack"),
        }
    } else if topic == config_topic(terminal) {
        match decode_campus_config(payload) {
            Ok(config) => {
                if let Err(stale) = uploader.handle_config(config) {
                    warn_stale(stale);
                }
            }
            Err(error) => warn!(%topic, bytes, %error, "bad configuration; dropped"),
        }
    } else if let Some(topic_page) = page_of_blacklist_topic(topic) {
        if payload.is_empty() {
            // The campus cleared a page a shorter new version no longer has.
            debug!(%topic, "a blacklist page was cleared");
            return;
        }
        let page = match decode_blacklist_page(payload) {
            Ok(page) => page,
            Err(error) => {
                warn!(%topic, bytes, %error, "bad blacklist page; dropped");
                return;
            }
        };
        match blacklist_pages.handle_page(topic_page, page) {
            PageOutcome::Incomplete {
                version,
                have,
                pages,
            } => debug!(version, have, pages, "blacklist page received"),
            PageOutcome::Complete(list) => {
                info!(
                    version = list.version(),
                    entries = list.len(),
                    "blacklist received"
                );
                if let Err(stale) = uploader.handle_blacklist(list) {
                    warn_stale(stale);
                }
            }
            PageOutcome::Stale { got, newest } => warn_stale(StaleDownlink {
                kind: DownlinkKind::Blacklist,
                held: newest,
                got,
            }),
            PageOutcome::Refused(reason) => {
                warn!(%topic, bytes, %reason, "bad blacklist page; dropped")
            }
        }
    } else if topic == TIME_TOPIC {
        match decode_server_time(payload) {
            Ok(time) => uploader.handle_server_time(time.server),
            Err(error) => warn!(%topic, bytes, %error, "bad server time"),
        }
    } else {
        debug!(%topic, bytes, "message on an unexpected topic");
    }
}

/// A downlink message older than the one held: dropped, and said so.
fn warn_stale(stale: StaleDownlink) {
    warn!(
        kind = ?stale.kind,
        got = stale.got,
        held = stale.held,
        "an older version than the one held; dropped"
    );
}

/// A seed from the wall clock and the process id, for the upload session and for a daemon
/// started without `--seed` (the jitter of its back-offs).
pub fn time_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

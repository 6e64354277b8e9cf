//! A faithful simulator of the campus server's MQTT side, for tests and demos (`campus-sim`):
//! it subscribes to every till's upload topic, stores records idempotently by (terminal, seq)
//! in a [`CampusStore`], fsyncs, and only then publishes the application ack (contiguous
//! stored-through per terminal). It publishes configuration and the blacklist retained (again
//! after every reconnect: a restarted broker without persistence has forgotten them) — the
//! blacklist in pages, and nothing at all over the broker's packet limit
//! ([`MAX_MQTT_PACKET_BYTES`]: a message that would exceed it is refused and printed) — and its
//! clock; with a default configuration it configures every terminal it has records of or sees
//! upload. It follows every till's presence (`…/status`, "online" or the last will's
//! "offline"). It answers every till's code-payment orders (`…/pay/req` → its payment back
//! end → `…/pay/res`, [`crate::campus_pay`]), publishing an answer only once the back end has
//! logged the call durably. It runs on a thread of its own with a single-threaded tokio
//! runtime. For tests it can handle every n-th batch twice (counted as injected duplicates,
//! apart from the ones the tills really resent), hold its acks while still storing, so a kill
//! provably hits records stored and not acked, hold its order answers while still booking, and
//! move its clock forward ([`CampusSim::advance_clock`]) so that a payer who confirms "after
//! 10 s" does so without a test waiting 10 s. Its default configuration announces the
//! simulated campus's virtual-card key and the default order timings
//! ([`with_sim_code_payments`]).
//!
//! This file is long because the simulator's MQTT event loop and the accessors the tests read
//! share one state and stay together; the payment side is `campus_pay.rs`, the store
//! `campus_store.rs`, its tests `campus/tests.rs`.

use crate::campus_pay::{
    sim_accounts, sim_frozen, CampusPayments, PaymentStats, ResultMessage, PAYMENTS_LOG_FILE,
};
use crate::campus_store::{CampusStore, StoreError};
use crate::statement::{Statement, StatementQuery};
use pos_firmware::sim::payments::{LedgerEntry, OrderRecord, QrRefusal};
use rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter, TlsConfiguration, Transport,
};
use shared::campus::{Blacklist, CampusConfig};
use shared::codec::{
    decode_upload_batch, encode_blacklist_page, encode_campus_config, encode_server_time,
    encode_upload_ack,
};
use shared::mqtt::{
    ack_topic, blacklist_page_topic, config_topic, terminal_of_order_request_topic,
    terminal_of_status_topic, terminal_of_upload_topic, BlacklistPage, ServerTime, SessionAnswered,
    UploadAck, UploadBatch, ALL_ORDER_REQUESTS_FILTER, ALL_STATUS_FILTER, ALL_UPLOADS_FILTER,
    MAX_MQTT_PACKET_BYTES, MAX_UPLOAD_BATCH_BYTES, STATUS_OFFLINE, STATUS_ONLINE, TIME_TOPIC,
};
use shared::pay::{OrderId, OrderState};
use shared::paycode::VirtualAccount;
use shared::{Fen, Seq, TerminalId, UnixMillis};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The campus server's MQTT client id (fixed: the broker keeps its session and queue).
pub const CAMPUS_CLIENT_ID: &str = "campus-server";
/// The campus server's MQTT user name in the example ACL.
pub const CAMPUS_USERNAME: &str = "campus-server";
/// Requests queued towards rumqttc (acks and retained publishes).
const CAMPUS_REQUEST_CHANNEL_CAPACITY: usize = 4_096;
/// The pause before reconnecting after the broker went away.
const CAMPUS_RECONNECT_DELAY_MS: u64 = 100;
/// The largest packet the campus side sends or receives: the broker's limit (a blacklist of a
/// million UIDs goes in pages far below it).
const CAMPUS_MAX_PACKET_BYTES: usize = MAX_MQTT_PACKET_BYTES;
/// MQTT's fixed header and the topic's length field, beyond topic and payload, at most.
const PUBLISH_OVERHEAD_BYTES: usize = 16;
/// How often [`CampusSim::wait_until`] looks again.
const WAIT_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Where and how to reach the broker.
#[derive(Debug, Clone)]
pub struct CampusOptions {
    pub broker_host: String,
    pub broker_port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls_ca: Option<PathBuf>,
    pub store_dir: PathBuf,
    /// Publish the server time this often (not at all when `None`).
    pub time_interval_ms: Option<u64>,
    /// Handle every n-th batch twice, as if the broker had delivered it twice.
    pub duplicate_every_nth_batch: Option<u64>,
    /// Published (retained) to every terminal the store has records of and to every terminal
    /// that uploads for the first time; without code-payment settings of its own, with the
    /// simulated campus's ([`with_sim_code_payments`]).
    pub default_config: Option<CampusConfig>,
    /// The payment back end's call log (default: [`PAYMENTS_LOG_FILE`] in `store_dir`).
    pub payments_log: Option<PathBuf>,
    /// The campus accounts virtual cards pay from, with their opening balances (the same on
    /// every start: the log replays from them). Default: [`sim_accounts`].
    pub accounts: Vec<(VirtualAccount, Fen)>,
    /// Accounts whose virtual-card codes are declined (frozen). Default: [`sim_frozen`].
    pub frozen: Vec<VirtualAccount>,
}

impl CampusOptions {
    pub fn new(port: u16, store_dir: PathBuf) -> CampusOptions {
        CampusOptions {
            broker_host: "127.0.0.1".to_string(),
            broker_port: port,
            username: None,
            password: None,
            tls_ca: None,
            store_dir,
            time_interval_ms: None,
            duplicate_every_nth_batch: None,
            default_config: None,
            payments_log: None,
            accounts: sim_accounts(),
            frozen: sim_frozen(),
        }
    }
}

pub use crate::campus_pay::with_sim_code_payments;

/// What the simulator counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CampusStats {
    pub connections: u64,
    /// Subscriptions to the upload and presence topics the broker confirmed (one per
    /// connection).
    pub subscribed: u64,
    pub batches: u64,
    pub records_stored: u64,
    pub duplicates: u64,
    /// Distinct conflicting versions (same id, different bytes) received: alarms.
    pub conflicts: u64,
    /// Conflicting versions received again (resends of an alarmed version).
    pub conflict_repeats: u64,
    pub acks_published: u64,
    /// Acks not published because a test holds them ([`CampusSim::hold_acks`]).
    pub acks_held: u64,
    /// Duplicates from handling a batch a second time on purpose
    /// ([`CampusOptions::duplicate_every_nth_batch`]); the rest of `duplicates` came again
    /// from the till (resends).
    pub injected_duplicates: u64,
    /// Configurations published (explicitly or as the default to a terminal).
    pub configs_published: u64,
    /// Presence messages received: "online" (a daemon connected) and "offline" (a last will:
    /// a daemon's connection ended without a goodbye), retained ones included.
    pub presence_online: u64,
    pub presence_offline: u64,
    /// Payloads that are not a valid batch, or whose terminal differs from the topic's.
    pub malformed: u64,
    pub queue_full: u64,
}

impl CampusStats {
    /// Duplicates the tills really sent again (resends after reconnects and ack timeouts).
    pub fn resend_duplicates(&self) -> u64 {
        self.duplicates.saturating_sub(self.injected_duplicates)
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum CampusError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] sync_daemon::error::BrokerSetupError),
    #[error("cannot start the simulator's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot open the payment back end's log {path}: {source}")]
    Payments {
        path: PathBuf,
        source: std::io::Error,
    },
}

enum Command {
    Retain { topic: String, payload: Vec<u8> },
    ReleaseAcks,
    ReleaseOrderResults,
    Stop,
}

struct Shared {
    store: Mutex<CampusStore>,
    stats: Mutex<CampusStats>,
    /// The last presence each till reported: `true` online, `false` offline.
    presence: Mutex<BTreeMap<TerminalId, bool>>,
    /// Store on, but publish no acks (a test makes a kill hit records stored and not acked).
    hold_acks: Mutex<bool>,
    /// The last ack published to each terminal.
    acks_published: Mutex<BTreeMap<TerminalId, Option<Seq>>>,
    /// Per terminal, the upload session of its newest batch and the highest seq received in
    /// that session: what an ack answers (`SessionAnswered`).
    sessions: Mutex<BTreeMap<TerminalId, SessionAnswered>>,
    /// Pages of the blacklist last published: a shorter new version clears the rest.
    blacklist_pages: Mutex<u32>,
    /// The payment back end and the answers a test holds.
    payments: Mutex<CampusPayments>,
    /// How far a test moved the campus's clock ahead of the wall clock.
    clock_ahead_ms: Mutex<u64>,
}

impl Shared {
    /// The campus's clock: the wall clock plus what a test moved it ahead.
    fn now(&self) -> UnixMillis {
        now_unix_ms().saturating_add_millis(*lock(&self.clock_ahead_ms))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going with it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running campus server simulator; stops on drop.
pub struct CampusSim {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    thread: Option<JoinHandle<()>>,
}

fn now_unix_ms() -> UnixMillis {
    UnixMillis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    )
}

impl CampusSim {
    /// Opens the store (reloading what an earlier run stored) and starts serving.
    pub fn start(options: CampusOptions) -> Result<CampusSim, CampusError> {
        let store = CampusStore::open(&options.store_dir)?;
        let payments_log = options
            .payments_log
            .clone()
            .unwrap_or_else(|| options.store_dir.join(PAYMENTS_LOG_FILE));
        let payments = CampusPayments::open(
            &payments_log,
            options.accounts.clone(),
            options.frozen.clone(),
        )
        .map_err(|source| CampusError::Payments {
            path: payments_log.clone(),
            source,
        })?;
        let mut mqtt = MqttOptions::new(
            CAMPUS_CLIENT_ID,
            options.broker_host.clone(),
            options.broker_port,
        );
        mqtt.set_clean_session(false)
            .set_manual_acks(true)
            .set_keep_alive(Duration::from_secs(10))
            .set_max_packet_size(CAMPUS_MAX_PACKET_BYTES, CAMPUS_MAX_PACKET_BYTES);
        if let Some(password) = &options.password {
            let user = options
                .username
                .clone()
                .unwrap_or_else(|| CAMPUS_USERNAME.to_string());
            mqtt.set_credentials(user, password.clone());
        }
        if let Some(ca) = &options.tls_ca {
            let config = sync_daemon::broker::tls_config(ca)?;
            mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(config),
            )));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CampusError::Runtime)?;
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            stats: Mutex::new(CampusStats::default()),
            presence: Mutex::new(BTreeMap::new()),
            hold_acks: Mutex::new(false),
            sessions: Mutex::new(BTreeMap::new()),
            acks_published: Mutex::new(BTreeMap::new()),
            blacklist_pages: Mutex::new(0),
            payments: Mutex::new(payments),
            clock_ahead_ms: Mutex::new(0),
        });
        let (commands, rx) = mpsc::unbounded_channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("campus-sim".into())
            .spawn(move || runtime.block_on(serve(mqtt, options, thread_shared, rx)))
            .map_err(CampusError::Runtime)?;
        Ok(CampusSim {
            shared,
            commands,
            thread: Some(thread),
        })
    }

    /// Publishes (retained) a till's configuration; repeated after every reconnect.
    pub fn publish_config(&self, terminal: TerminalId, config: &CampusConfig) {
        let _ = self.commands.send(Command::Retain {
            topic: config_topic(terminal),
            payload: encode_campus_config(config),
        });
    }

    /// Publishes (retained) the blacklist in pages, one retained topic each; repeated after
    /// every reconnect. Pages left over from a longer earlier version are cleared (an empty
    /// retained message deletes one), so only the current version stays retained.
    pub fn publish_blacklist(&self, list: &Blacklist) {
        let pages = BlacklistPage::paginate(list.version(), list.issued_at(), list.uids());
        let count = u32::try_from(pages.len()).unwrap_or(u32::MAX);
        for page in &pages {
            let _ = self.commands.send(Command::Retain {
                topic: blacklist_page_topic(page.page),
                payload: encode_blacklist_page(page),
            });
        }
        let mut published = lock(&self.shared.blacklist_pages);
        for stale in count..*published {
            let _ = self.commands.send(Command::Retain {
                topic: blacklist_page_topic(stale),
                payload: Vec::new(),
            });
        }
        *published = count;
    }

    /// Publishes (retained) any payload on any topic, e.g. a malformed one; repeated after
    /// every reconnect like the others.
    pub fn publish_retained_raw(&self, topic: &str, payload: Vec<u8>) {
        let _ = self.commands.send(Command::Retain {
            topic: topic.to_string(),
            payload,
        });
    }

    /// The last presence `terminal` reported: `Some(true)` online, `Some(false)` offline.
    pub fn presence(&self, terminal: TerminalId) -> Option<bool> {
        lock(&self.shared.presence).get(&terminal).copied()
    }

    /// Tills whose last presence was "online" and "offline".
    pub fn presence_counts(&self) -> (usize, usize) {
        let presence = lock(&self.shared.presence);
        let online = presence.values().filter(|&&online| online).count();
        (online, presence.len() - online)
    }

    pub fn stats(&self) -> CampusStats {
        *lock(&self.shared.stats)
    }

    pub fn stored_through(&self, terminal: TerminalId) -> Option<Seq> {
        lock(&self.shared.store).stored_through(terminal)
    }

    /// What the campus acknowledges to `terminal` (never past a conflict).
    pub fn acked_through(&self, terminal: TerminalId) -> Option<Seq> {
        lock(&self.shared.store).ack_through(terminal)
    }

    /// From now on batches are stored (durably, as always) but not acked, until
    /// [`CampusSim::release_acks`]: so a test can kill a process while records are stored and
    /// their ack has not reached the till, deterministically.
    pub fn hold_acks(&self) {
        *lock(&self.shared.hold_acks) = true;
    }

    /// Acks again, at once to every terminal whose ack was held.
    pub fn release_acks(&self) {
        *lock(&self.shared.hold_acks) = false;
        let _ = self.commands.send(Command::ReleaseAcks);
    }

    /// The last ack published to `terminal` (`None`: none, or one for nothing).
    pub fn ack_published(&self, terminal: TerminalId) -> Option<Seq> {
        lock(&self.shared.acks_published)
            .get(&terminal)
            .copied()
            .flatten()
    }

    /// Records of `terminal` stored whose ack was not published (held): the till cannot have
    /// them marked uploaded.
    pub fn stored_not_acked(&self, terminal: TerminalId) -> u64 {
        let stored = self.records(terminal).len() as u64;
        stored.saturating_sub(self.ack_published(terminal).map_or(0, |s| s.0))
    }

    /// The terminals the store holds records of.
    pub fn terminals(&self) -> Vec<TerminalId> {
        lock(&self.shared.store).terminals()
    }

    /// Records stored over all terminals (the store's whole life, not just this run).
    pub fn record_count(&self) -> u64 {
        lock(&self.shared.store).record_count()
    }

    /// Every record stored for `terminal`.
    pub fn records(&self, terminal: TerminalId) -> BTreeMap<Seq, Vec<u8>> {
        lock(&self.shared.store)
            .terminal(terminal)
            .map(|t| t.records.clone())
            .unwrap_or_default()
    }

    /// The store's fsyncs since the simulator started (the load test's figure).
    pub fn store_fsyncs(&self) -> u64 {
        lock(&self.shared.store).fsyncs()
    }

    /// Conflicts (same id, different bytes) over the store's whole life.
    pub fn conflicts(&self) -> u64 {
        lock(&self.shared.store).conflicts
    }

    /// What the payment side counted.
    pub fn payment_stats(&self) -> PaymentStats {
        lock(&self.shared.payments).stats()
    }

    /// What an account owes for offline virtual-card sales its balance did not cover.
    pub fn debt(&self, account: VirtualAccount) -> Fen {
        lock(&self.shared.payments).debt(account)
    }

    /// How long the payment back end took over each of its latest calls (log append and
    /// fdatasync included), oldest first.
    pub fn payment_call_times(&self) -> Vec<Duration> {
        lock(&self.shared.payments).call_times()
    }

    /// A campus account's balance now.
    pub fn balance(&self, account: VirtualAccount) -> Option<Fen> {
        lock(&self.shared.payments).balance(account)
    }

    /// Every charge and refund the back end booked, in booking order (over its log's whole
    /// life).
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        lock(&self.shared.payments).ledger()
    }

    /// An order as the back end holds it.
    pub fn order(&self, id: OrderId) -> Option<OrderRecord> {
        lock(&self.shared.payments).order(id)
    }

    /// The campus app pays an offline QR `payload` from `account` at the campus's clock: the
    /// confirmation code it shows, or why the campus refused (nothing charged).
    pub fn pay_qr(&self, payload: &str, account: VirtualAccount) -> Result<u32, QrRefusal> {
        lock(&self.shared.payments).pay_qr(payload, account, self.shared.now())
    }

    /// The merchant's statement `query` asks for, from the store and the ledger as they are.
    pub fn statement(&self, query: &StatementQuery) -> Statement {
        let ledger = self.ledger();
        crate::statement::statement(&lock(&self.shared.store), &ledger, query)
    }

    /// An order's state as the back end last settled it.
    pub fn order_state(&self, id: OrderId) -> Option<OrderState> {
        lock(&self.shared.payments).order_state(id)
    }

    /// Every order the back end holds, by order id (tombstones of reversals included).
    pub fn orders(&self) -> Vec<OrderRecord> {
        lock(&self.shared.payments).orders()
    }

    /// Orders the back end holds.
    pub fn order_count(&self) -> usize {
        lock(&self.shared.payments).order_count()
    }

    /// From now on order calls are acted on and logged, but their answers kept back until
    /// [`CampusSim::release_order_results`]: so a test can kill a process while the campus has
    /// booked a call whose answer has not reached the till.
    pub fn hold_order_results(&self) {
        lock(&self.shared.payments).hold();
    }

    /// Publishes the answers held, oldest first, and answers at once again.
    pub fn release_order_results(&self) {
        let _ = self.commands.send(Command::ReleaseOrderResults);
    }

    /// The campus's clock (what its payment back end books with).
    pub fn now(&self) -> UnixMillis {
        self.shared.now()
    }

    /// Moves the campus's clock ahead by `by` (payers confirm, codes expire).
    pub fn advance_clock(&self, by: Duration) {
        let by_ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let mut ahead = lock(&self.shared.clock_ahead_ms);
        *ahead = ahead.saturating_add(by_ms);
    }

    /// Waits (at most `timeout`) until `done` holds for the stats; returns whether it did.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&CampusSim) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(WAIT_POLL_INTERVAL);
        }
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for CampusSim {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn serve(
    mqtt: MqttOptions,
    options: CampusOptions,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let (client, mut event_loop) = AsyncClient::new(mqtt, CAMPUS_REQUEST_CHANNEL_CAPACITY);
    // Answers go out at once, not after the broker's delayed ACK of the packet before.
    let mut network = event_loop.network_options();
    network.set_tcp_nodelay(true);
    event_loop.set_network_options(network);
    let mut retained: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let time_period = Duration::from_millis(options.time_interval_ms.unwrap_or(3_600_000).max(10));
    let mut time_tick = tokio::time::interval(time_period);
    let mut batches_seen: u64 = 0;
    // Terminals given the default configuration (all the store knows of, then new uploaders).
    let mut configured: BTreeSet<TerminalId> = BTreeSet::new();
    let default_config = options.default_config.clone().map(with_sim_code_payments);
    if let Some(config) = &default_config {
        let payload = encode_campus_config(config);
        for terminal in lock(&shared.store).terminals() {
            configured.insert(terminal);
            retained.insert(config_topic(terminal), payload.clone());
        }
    }
    let count_full = |result: Result<(), rumqttc::ClientError>| {
        if result.is_err() {
            lock(&shared.stats).queue_full += 1;
        }
    };
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Retain { topic, payload }) => {
                    let bytes = topic.len() + payload.len() + PUBLISH_OVERHEAD_BYTES;
                    if bytes > CAMPUS_MAX_PACKET_BYTES {
                        // The broker would refuse it (and rumqttc end the connection on it).
                        eprintln!(
                            "campus-sim: {topic}: {bytes} bytes exceed the broker's packet \
                             limit of {CAMPUS_MAX_PACKET_BYTES}; not published"
                        );
                        continue;
                    }
                    if payload.is_empty() {
                        // Clears the retained message; nothing to publish again later.
                        count_full(client.try_publish(topic.clone(), QoS::AtLeastOnce, true, payload));
                        retained.remove(&topic);
                        continue;
                    }
                    if topic.ends_with("/config") {
                        lock(&shared.stats).configs_published += 1;
                    }
                    count_full(client.try_publish(topic.clone(), QoS::AtLeastOnce, true, payload.clone()));
                    retained.insert(topic, payload);
                }
                Some(Command::ReleaseAcks) => {
                    let terminals = lock(&shared.store).terminals();
                    for terminal in terminals {
                        let ack = UploadAck {
                            terminal,
                            stored_through: lock(&shared.store).ack_through(terminal),
                            answers: lock(&shared.sessions).get(&terminal).copied(),
                        };
                        count_full(publish_ack(&client, &shared, ack));
                    }
                }
                Some(Command::ReleaseOrderResults) => {
                    let released = lock(&shared.payments).release();
                    for message in released {
                        count_full(publish_result(&client, message));
                    }
                }
                Some(Command::Stop) | None => {
                    let _ = client.try_disconnect();
                    return;
                }
            },
            _ = time_tick.tick(), if options.time_interval_ms.is_some() => {
                let payload = encode_server_time(&ServerTime { server: now_unix_ms() });
                count_full(client.try_publish(TIME_TOPIC, QoS::AtMostOnce, false, payload));
            }
            event = event_loop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    lock(&shared.stats).connections += 1;
                    // One SUBSCRIBE (so one SUBACK per connection, counted in `subscribed`).
                    count_full(client.try_subscribe_many([
                        SubscribeFilter::new(ALL_UPLOADS_FILTER.to_string(), QoS::AtLeastOnce),
                        SubscribeFilter::new(ALL_STATUS_FILTER.to_string(), QoS::AtLeastOnce),
                        SubscribeFilter::new(ALL_ORDER_REQUESTS_FILTER.to_string(), QoS::AtLeastOnce),
                    ]));
                    for (topic, payload) in &retained {
                        if topic.ends_with("/config") {
                            lock(&shared.stats).configs_published += 1;
                        }
                        count_full(client.try_publish(topic.clone(), QoS::AtLeastOnce, true, payload.clone()));
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) if terminal_of_status_topic(&publish.topic).is_some() => {
                    if let Some(terminal) = terminal_of_status_topic(&publish.topic) {
                        handle_presence(&shared, terminal, &publish.payload);
                    }
                    count_full(client.try_ack(&publish));
                }
                Ok(Event::Incoming(Packet::Publish(publish))) if terminal_of_order_request_topic(&publish.topic).is_some() => {
                    // Durable in the back end's log before the answer goes out, and before the
                    // broker may forget the request.
                    let answer = lock(&shared.payments).handle_request(&publish.topic, &publish.payload, shared.now());
                    if let Some(message) = answer {
                        count_full(publish_result(&client, message));
                    }
                    count_full(client.try_ack(&publish));
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if let (Some(config), Some(terminal)) =
                        (&default_config, terminal_of_upload_topic(&publish.topic))
                    {
                        if configured.insert(terminal) {
                            let topic = config_topic(terminal);
                            let payload = encode_campus_config(config);
                            lock(&shared.stats).configs_published += 1;
                            count_full(client.try_publish(topic.clone(), QoS::AtLeastOnce, true, payload.clone()));
                            retained.insert(topic, payload);
                        }
                    }
                    batches_seen += 1;
                    let twice = options
                        .duplicate_every_nth_batch
                        .is_some_and(|n| n > 0 && batches_seen.is_multiple_of(n));
                    for pass in 0..if twice { 2 } else { 1 } {
                        let injected = pass > 0;
                        if let Some(ack) = handle_upload(&shared, &publish.topic, &publish.payload, injected) {
                            if *lock(&shared.hold_acks) {
                                lock(&shared.stats).acks_held += 1;
                            } else {
                                count_full(publish_ack(&client, &shared, ack));
                            }
                        }
                    }
                    // The broker may forget the message only now that it is durable here.
                    count_full(client.try_ack(&publish));
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => lock(&shared.stats).subscribed += 1,
                Ok(_) => {}
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(CAMPUS_RECONNECT_DELAY_MS)).await;
                }
            },
        }
    }
}

/// Publishes an order's answer (QoS 1, not retained).
fn publish_result(
    client: &AsyncClient,
    message: ResultMessage,
) -> Result<(), rumqttc::ClientError> {
    client.try_publish(message.topic, QoS::AtLeastOnce, false, message.payload)
}

/// Publishes an ack and remembers it.
fn publish_ack(
    client: &AsyncClient,
    shared: &Shared,
    ack: UploadAck,
) -> Result<(), rumqttc::ClientError> {
    let result = client.try_publish(
        ack_topic(ack.terminal),
        QoS::AtLeastOnce,
        false,
        encode_upload_ack(&ack),
    );
    if result.is_ok() {
        lock(&shared.stats).acks_published += 1;
        lock(&shared.acks_published).insert(ack.terminal, ack.stored_through);
    }
    result
}

/// Records a till's presence message (anything but the two payloads is ignored).
fn handle_presence(shared: &Shared, terminal: TerminalId, payload: &[u8]) {
    let online = match payload {
        STATUS_ONLINE => true,
        STATUS_OFFLINE => false,
        _ => return,
    };
    {
        let mut stats = lock(&shared.stats);
        if online {
            stats.presence_online += 1;
        } else {
            stats.presence_offline += 1;
        }
    }
    lock(&shared.presence).insert(terminal, online);
    eprintln!(
        "campus: till {terminal} {}",
        if online { "online" } else { "offline" }
    );
}

/// Stores one upload durably; the ack to publish, if any. `injected`: handled a second time
/// on purpose (its duplicates are counted apart).
fn handle_upload(
    shared: &Shared,
    topic: &str,
    payload: &[u8],
    injected: bool,
) -> Option<UploadAck> {
    let topic_terminal = terminal_of_upload_topic(topic);
    let batch = match decode_upload_batch(payload) {
        Ok(batch) if payload.len() <= MAX_UPLOAD_BATCH_BYTES => batch,
        _ => {
            lock(&shared.stats).malformed += 1;
            return None;
        }
    };
    if topic_terminal != Some(batch.terminal) {
        lock(&shared.stats).malformed += 1;
        return None;
    }
    let mut store = lock(&shared.store);
    let records: Vec<(Seq, &[u8])> = batch
        .records
        .iter()
        .map(|r| (r.seq, r.bytes.as_slice()))
        .collect();
    let outcome = match store.apply(batch.terminal, &records) {
        Ok(outcome) => outcome,
        Err(error) => {
            // Not durable: no ack. The till resends after its ack timeout.
            eprintln!("campus: {error}");
            return None;
        }
    };
    // Never past a conflict (see `CampusStore::ack_through`).
    let stored_through = store.ack_through(batch.terminal);
    // Offline sales are settled before the ack (idempotent: a resend settles what a crash left).
    let as_stored = store.stored_as_sent(batch.terminal, &records);
    drop(store);
    let payments = lock(&shared.payments).settle_uploaded(batch.terminal, &as_stored, shared.now());
    payments.ok()?; // not durable: no ack; the till resends
    let mut stats = lock(&shared.stats);
    stats.batches += 1;
    stats.records_stored += outcome.stored;
    stats.duplicates += outcome.duplicates;
    if injected {
        stats.injected_duplicates += outcome.duplicates;
    }
    stats.conflicts += outcome.conflicts;
    stats.conflict_repeats += outcome.conflict_repeats;
    drop(stats);
    Some(UploadAck {
        terminal: batch.terminal,
        stored_through,
        answers: answer_session(shared, &batch),
    })
}

/// What an ack of `batch` says about its session (`None` for a batch of the first format):
/// the highest seq received in that session so far. The session of the newest batch to arrive
/// is the terminal's current one; a late batch of an older session takes its place until the
/// next batch of the daemon's session, whose acks then start from that batch (they say less
/// than they could for a while, never more).
fn answer_session(shared: &Shared, batch: &UploadBatch) -> Option<SessionAnswered> {
    let session = batch.session?;
    let (_, last) = batch.span()?;
    let mut sessions = lock(&shared.sessions);
    match sessions.get_mut(&batch.terminal) {
        Some(current) if current.session == session => {
            current.received_through = current.received_through.max(last);
            Some(*current)
        }
        _ => {
            let answered = SessionAnswered {
                session,
                received_through: last,
            };
            sessions.insert(batch.terminal, answered);
            Some(answered)
        }
    }
}

#[cfg(test)]
mod tests;

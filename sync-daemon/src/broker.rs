//! The daemon's MQTT side: rumqttc options for one terminal (MQTT 5, persistent session under
//! a fixed client id, credentials, optional TLS on rustls with the `ring` provider) and a task
//! per broker connection that turns rumqttc's event loop into a few [`BrokerEvent`]s.
//! Presence: every connection carries a last will (`campus/v1/till/{terminal}/status` =
//! "offline", retained) and publishes "online" (retained) once connected, so the campus sees a
//! till go away even when the daemon is killed.
//!
//! Size: the CONNECT carries MQTT 5's Maximum Packet Size ([`MAX_INCOMING_PACKET_BYTES`]), so
//! the broker itself discards any message larger than the daemon accepts instead of sending it
//! (MQTT 5 §3.1.2.11.4): one oversized retained message, on any topic, never ends the
//! connection and never stops uploads. The blacklist comes in pages well under it
//! ([`crate::blacklist_pages`]). A broker that speaks only MQTT 3.1.1 refuses the connection
//! (the daemon logs "broker down" with the reason and retries with backoff; nothing uploads):
//! the campus broker must speak MQTT 5 (Mosquitto 1.6 or later).
//!
//! A connection is never reused after an error: a new `EventLoop` is built for every attempt,
//! so nothing from rumqttc's queue of a dead connection is ever replayed on its own. What was not
//! acked by the campus server is fetched from the till's journal and published again.

use crate::error::BrokerSetupError;
use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Filter, LastWill, Packet, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use shared::mqtt::{
    ack_topic, config_topic, order_result_topic, status_topic, BLACKLIST_PAGES_FILTER,
    MAX_MQTT_PACKET_BYTES, STATUS_OFFLINE, STATUS_ONLINE, TIME_TOPIC,
};
use shared::TerminalId;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// The largest MQTT packet the daemon accepts, announced to the broker in the CONNECT (MQTT 5
/// Maximum Packet Size): 2 MiB, the campus broker's own limit. Every downlink fits far below
/// it (a blacklist page of 50,000 UIDs is about 550 KB); the broker drops what is larger.
pub const MAX_INCOMING_PACKET_BYTES: u32 = MAX_MQTT_PACKET_BYTES as u32;
/// How long the broker keeps a till's session (queued acks and configuration) while the till
/// is away: 60 days (a long holiday), like `persistent_client_expiration` in
/// docs/mosquitto/mosquitto.conf. MQTT 5 ends a session at once without it.
pub const SESSION_EXPIRY_S: u32 = 60 * 24 * 3600;
/// Requests (publishes, subscribes) queued towards the event loop; more than a window of
/// batches, so `try_publish` never finds it full in normal operation.
pub const REQUEST_CHANNEL_CAPACITY: usize = 64;
/// Events queued from the event-loop task to the daemon loop.
const EVENT_CHANNEL_CAPACITY: usize = 64;
/// How long a TCP connect + TLS handshake + CONNACK may take.
pub const CONNECT_TIMEOUT_S: u64 = 5;
/// The default MQTT keep-alive.
pub const DEFAULT_KEEP_ALIVE_S: u64 = 15;

/// How to reach and log in to the broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub host: String,
    pub port: u16,
    /// Defaults to the terminal id in hex (what the broker's ACL expects).
    pub username: Option<String>,
    pub password: Option<String>,
    /// TLS is used when set: the CA that signed the broker's certificate.
    pub tls_ca: Option<PathBuf>,
    /// Defaults to `till-<terminal>`; fixed per terminal so the broker keeps its session.
    pub client_id: Option<String>,
    pub keep_alive_s: u64,
}

/// What the connection task reports.
#[derive(Debug)]
pub enum BrokerEvent {
    /// CONNACK received and our subscriptions acknowledged: uploads may start.
    Subscribed { session_present: bool },
    /// A message on one of our subscriptions.
    Message { topic: String, payload: Bytes },
    /// The connection is gone (or never came up).
    Down(String),
}

/// The MQTT client id of a terminal.
pub fn default_client_id(terminal: TerminalId) -> String {
    format!("till-{terminal}")
}

/// Builds the rustls client configuration trusting only the CA in `ca_path`, on `ring`.
pub fn tls_config(ca_path: &PathBuf) -> Result<ClientConfig, BrokerSetupError> {
    let pem = std::fs::read(ca_path).map_err(|source| BrokerSetupError::CaFile {
        path: ca_path.clone(),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()).flatten() {
        // A certificate rustls cannot parse is skipped; none at all is an error below.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(BrokerSetupError::NoCaCertificate(ca_path.clone()));
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The rumqttc options of one terminal.
pub fn mqtt_options(
    config: &BrokerConfig,
    terminal: TerminalId,
    tls: Option<&Arc<ClientConfig>>,
) -> MqttOptions {
    let client_id = config
        .client_id
        .clone()
        .unwrap_or_else(|| default_client_id(terminal));
    let mut options = MqttOptions::new(client_id, config.host.clone(), config.port);
    options
        .set_clean_start(false)
        .set_session_expiry_interval(Some(SESSION_EXPIRY_S))
        .set_keep_alive(Duration::from_secs(config.keep_alive_s))
        .set_max_packet_size(Some(MAX_INCOMING_PACKET_BYTES))
        .set_request_channel_capacity(REQUEST_CHANNEL_CAPACITY)
        .set_connection_timeout(CONNECT_TIMEOUT_S)
        .set_last_will(LastWill::new(
            status_topic(terminal),
            STATUS_OFFLINE,
            QoS::AtLeastOnce,
            true,
            None,
        ));
    // Each order call and answer is one small packet: Nagle's algorithm would hold one back
    // until the broker's delayed ACK of the one before (40 ms on Linux).
    let mut network = options.network_options();
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    let username = config
        .username
        .clone()
        .unwrap_or_else(|| shared::mqtt::till_username(terminal));
    if let Some(password) = &config.password {
        options.set_credentials(username, password.clone());
    }
    if let Some(tls) = tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls.clone(),
        )));
    }
    options
}

/// The subscriptions of one terminal: its acks, configuration and order results, the shared
/// blacklist's pages and time.
pub fn subscriptions(terminal: TerminalId) -> Vec<Filter> {
    vec![
        Filter::new(ack_topic(terminal), QoS::AtLeastOnce),
        Filter::new(config_topic(terminal), QoS::AtLeastOnce),
        Filter::new(order_result_topic(terminal), QoS::AtLeastOnce),
        Filter::new(BLACKLIST_PAGES_FILTER, QoS::AtLeastOnce),
        Filter::new(TIME_TOPIC, QoS::AtMostOnce),
    ]
}

/// One broker connection attempt and, if it succeeds, its life. Dropping it ends the task.
pub struct BrokerConnection {
    pub client: AsyncClient,
    pub events: mpsc::Receiver<BrokerEvent>,
    task: JoinHandle<()>,
}

impl Drop for BrokerConnection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BrokerConnection {
    /// Starts connecting in a new task; progress arrives on `events`.
    pub fn start(options: MqttOptions, terminal: TerminalId) -> BrokerConnection {
        let (client, mut event_loop) = AsyncClient::new(options, REQUEST_CHANNEL_CAPACITY);
        let (tx, events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let task_client = client.clone();
        let task = tokio::spawn(async move {
            let reason = run_connection(&mut event_loop, &task_client, terminal, &tx).await;
            let _ = tx.send(BrokerEvent::Down(reason)).await;
        });
        BrokerConnection {
            client,
            events,
            task,
        }
    }
}

/// Polls one connection until it fails; returns why.
async fn run_connection(
    event_loop: &mut EventLoop,
    client: &AsyncClient,
    terminal: TerminalId,
    tx: &mpsc::Sender<BrokerEvent>,
) -> String {
    let mut session_present = false;
    loop {
        let event = match event_loop.poll().await {
            Ok(event) => event,
            Err(error) => return error.to_string(),
        };
        let report = match event {
            Event::Incoming(Packet::ConnAck(connack)) => {
                session_present = connack.session_present;
                // Subscribe on every connection: a broker restarted without its persistence
                // has forgotten the session even though we asked to keep it.
                if let Err(error) = client.try_subscribe_many(subscriptions(terminal)) {
                    return format!("cannot queue the subscription: {error}");
                }
                // Presence: replaces the retained "offline" of our last will (or of a
                // predecessor the broker just dropped for us).
                if let Err(error) = client.try_publish(
                    status_topic(terminal),
                    QoS::AtLeastOnce,
                    true,
                    STATUS_ONLINE,
                ) {
                    return format!("cannot queue the presence message: {error}");
                }
                None
            }
            Event::Incoming(Packet::SubAck(suback)) => {
                let refused = suback
                    .return_codes
                    .iter()
                    .any(|code| !matches!(code, SubscribeReasonCode::Success(_)));
                if refused {
                    return "the broker refused a subscription (check its ACL)".to_string();
                }
                Some(BrokerEvent::Subscribed { session_present })
            }
            Event::Incoming(Packet::Publish(publish)) => Some(BrokerEvent::Message {
                topic: String::from_utf8_lossy(&publish.topic).into_owned(),
                payload: publish.payload,
            }),
            _ => None,
        };
        if let Some(report) = report {
            if tx.send(report).await.is_err() {
                return "the daemon dropped the connection".to_string();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_keep_the_session_under_a_fixed_id_and_announce_the_largest_packet_taken() {
        let config = BrokerConfig {
            host: "127.0.0.1".into(),
            port: 1883,
            username: None,
            password: Some("secret".into()),
            tls_ca: None,
            client_id: None,
            keep_alive_s: DEFAULT_KEEP_ALIVE_S,
        };
        let options = mqtt_options(&config, TerminalId(0xAB), None);
        assert!(!options.clean_start());
        assert_eq!(options.session_expiry_interval(), Some(SESSION_EXPIRY_S));
        let will = options.last_will().expect("a last will");
        assert_eq!(
            (&will.topic[..], &will.message[..], will.retain),
            (
                &b"campus/v1/till/00000000000000ab/status"[..],
                STATUS_OFFLINE,
                true
            )
        );
        assert_eq!(options.client_id(), "till-00000000000000ab");
        assert_eq!(
            options.credentials().map(|l| l.username),
            Some("00000000000000ab".to_string())
        );
        // The broker is told the largest packet we take; a full blacklist page fits far below.
        assert_eq!(options.max_packet_size(), Some(MAX_INCOMING_PACKET_BYTES));
        assert!(
            shared::mqtt::MAX_BLACKLIST_PAGE_ENTRIES * 12 < MAX_INCOMING_PACKET_BYTES as usize / 2
        );
    }

    #[test]
    fn a_till_subscribes_to_its_own_order_results_at_qos_1() {
        let filters = subscriptions(TerminalId(0xAB));
        let results: Vec<_> = filters
            .iter()
            .filter(|f| f.path.ends_with("/pay/res"))
            .collect();
        assert_eq!(results.len(), 1, "{filters:?}");
        assert_eq!(results[0].path, "campus/v1/till/00000000000000ab/pay/res");
        assert_eq!(results[0].qos, QoS::AtLeastOnce);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("sync-daemon-ca-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("empty.pem");
        std::fs::write(&path, b"not a certificate\n").unwrap();
        assert!(matches!(
            tls_config(&path),
            Err(BrokerSetupError::NoCaCertificate(_))
        ));
        assert!(matches!(
            tls_config(&dir.join("missing.pem")),
            Err(BrokerSetupError::CaFile { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

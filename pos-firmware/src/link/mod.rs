//! The firmware's end of the local link to the sync daemon: a Unix-socket server (std threads and
//! channels, no async runtime) that answers the daemon from the journal and hands what the campus
//! server sent down to the main loop. Protocol and rules: `docs/link.md`.
//!
//! Threads: one accepts connections; each connection has a reader (frames in, answers fetches
//! and acks itself through a [`JournalReader`], forwards the rest as [`LinkEvent`]s) and a writer
//! (frames out, including `Appended` pushes when the journal grows). The main loop never touches
//! the socket, so a daemon that stops reading can never stop the till from selling: the writer
//! gives up after [`LINK_WRITE_TIMEOUT_MS`] and drops the connection.
//!
//! Code-payment orders go out through the current connection once its daemon was welcomed
//! ([`LinkServer::send_order`]); the campus server's answers come back as [`LinkEvent`]s. An
//! order request that cannot go out (no daemon, or the connection died with it queued) is
//! reported "not sent", so the till never waits for an answer that cannot come.
//!
//! One daemon at a time: a new connection **replaces** the current one (the old one is shut
//! down). A daemon that restarts therefore never waits for the till to notice the old connection
//! is dead, and a hung daemon cannot lock its successor out.

mod socket;
mod types;

use shared::codec::{decode_to_till, encode_to_daemon};
use shared::link::{
    frame, DownlinkKind, FrameReader, ToDaemon, ToTill, LINK_PROTOCOL_VERSION,
    MAX_RECORDS_PER_FETCH,
};
use shared::pay::{OrderCall, OrderId, OrderResult};
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::journal::{JournalError, JournalReader};

pub use socket::LINK_SOCKET_MODE;
pub use types::{Downlink, DownlinkAnswer, LinkPeer};

/// The socket's file name in the simulator's data directory.
pub const SIM_LINK_SOCKET_NAME: &str = "link.sock";
/// Where the socket lives on a device (tmpfs, gone at reboot, so never stale across boots).
pub const DEVICE_LINK_SOCKET_PATH: &str = "/run/campus-pos/link.sock";
/// How long a connection waits for the main loop to apply a downlink before it answers
/// `Rejected` (the main loop is busy with a card write, or stopped).
pub const DOWNLINK_REPLY_TIMEOUT_MS: u64 = 10_000;
/// How long one write to the daemon may block before the connection is dropped.
pub const LINK_WRITE_TIMEOUT_MS: u64 = 10_000;
/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// How often threads waiting on a channel check whether the server is stopping.
const STOP_CHECK_INTERVAL_MS: u64 = 100;

/// What the link tells the main loop. Answer a `Downlink` through its `reply`.
#[derive(Debug)]
pub enum LinkEvent {
    /// The daemon connected (said hello), reported its broker, or went away.
    Peer(LinkPeer),
    /// The upload watermark moved (the unsent count fell).
    Uploaded,
    /// The campus server sent something down: claim it, apply it through the till's loop, then
    /// answer.
    Downlink(PendingDownlink),
    /// The campus server's answer about a code-payment order.
    OrderResult(OrderResult),
    /// An order request did not reach the campus server: the daemon had no broker, or the
    /// connection it was queued on died before writing it (`why` says which).
    OrderNotSent { order: OrderId, why: String },
}

/// A downlink waiting for the main loop. The connection that brought it answers the daemon
/// `Rejected` if the main loop does not claim it within [`DOWNLINK_REPLY_TIMEOUT_MS`]; claiming
/// and that timeout exclude each other, so a downlink answered `Rejected` is never applied
/// later, and one claimed is always answered with its real result.
#[derive(Debug)]
pub struct PendingDownlink {
    downlink: Downlink,
    reply: LinkReply,
}

impl PendingDownlink {
    /// What it is (known without claiming it).
    pub fn kind(&self) -> DownlinkKind {
        self.downlink.kind()
    }

    /// Takes the downlink to apply it, with where its answer goes; `None` when its connection
    /// already gave up on it (answered `Rejected`): then it must not be applied.
    pub fn claim(self) -> Option<(Downlink, LinkReply)> {
        take_claim(&self.reply.state).then_some((self.downlink, self.reply))
    }
}

/// The main loop's side: true when it may apply the downlink (its connection still waits).
fn take_claim(state: &AtomicU8) -> bool {
    state
        .compare_exchange(
            REPLY_WAITING,
            REPLY_CLAIMED,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
}

/// The connection's side on its timeout: true when it may answer `Rejected` (the main loop has
/// not claimed the downlink, and now never will).
fn abandon(state: &AtomicU8) -> bool {
    state
        .compare_exchange(
            REPLY_WAITING,
            REPLY_ABANDONED,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
}

/// The downlink waits for the main loop.
const REPLY_WAITING: u8 = 0;
/// The main loop took it: it will be answered with its real result.
const REPLY_CLAIMED: u8 = 1;
/// Its connection timed out and answered `Rejected`: it must not be applied.
const REPLY_ABANDONED: u8 = 2;

/// Where the answer to a downlink goes (the connection that brought it waits for it).
#[derive(Debug)]
pub struct LinkReply {
    answer: Sender<DownlinkAnswer>,
    state: Arc<AtomicU8>,
}

impl LinkReply {
    /// Sends the answer; a connection that has gone away in the meantime is not an error.
    pub fn send(self, answer: DownlinkAnswer) {
        let _ = self.answer.send(answer);
    }
}

/// Why the link server could not start.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("link socket {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("link socket {} is in use by a running process", path.display())]
    InUse { path: PathBuf },
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket { path: PathBuf },
}

/// The callback the link server reports to (it runs on the link's threads: send to a channel).
pub type EventSink = Arc<dyn Fn(LinkEvent) + Send + Sync>;

/// What the writer thread of a connection is asked to do.
enum Out {
    Message(ToDaemon),
    /// The journal may have grown: push `Appended` if it did.
    Wake,
}

/// The current connection, as the server keeps it.
struct Current {
    id: u64,
    stream: UnixStream,
    out: Sender<Out>,
    wake_pending: Arc<AtomicBool>,
    /// Set once the daemon said `Hello` and was welcomed: only then may orders go out.
    welcomed: Arc<AtomicBool>,
}

struct ServerState {
    stop: AtomicBool,
    current: Mutex<Option<Current>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
    reader: JournalReader,
    events: EventSink,
}

/// The running link server. Stop it (or drop it) before the journal is reopened: its threads
/// hold the journal's read handle, which keeps sled open.
pub struct LinkServer {
    path: PathBuf,
    state: Arc<ServerState>,
    listener: UnixListener,
    accept: Option<JoinHandle<()>>,
    bound: socket::Bound,
}

impl std::fmt::Debug for LinkServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkServer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LinkServer {
    /// Binds the socket at `path` (a stale socket left by a crash is replaced; a live one or a
    /// file that is not a socket is refused), mode [`LINK_SOCKET_MODE`], and starts accepting.
    pub fn start(
        path: &Path,
        reader: JournalReader,
        events: EventSink,
    ) -> Result<LinkServer, LinkError> {
        let (listener, bound) = socket::bind(path)?;
        let state = Arc::new(ServerState {
            stop: AtomicBool::new(false),
            current: Mutex::new(None),
            threads: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            reader,
            events,
        });
        let accept_listener = listener.try_clone().map_err(|source| LinkError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let accept_state = Arc::clone(&state);
        let accept = thread::Builder::new()
            .name("link-accept".into())
            .spawn(move || accept_loop(&accept_listener, &accept_state))
            .map_err(|source| LinkError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        tracing::info!(path = %path.display(), "link server listening");
        Ok(LinkServer {
            path: path.to_path_buf(),
            state,
            listener,
            accept: Some(accept),
            bound,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The journal grew: the connected daemon gets `Appended`. Never blocks.
    pub fn journal_grew(&self) {
        if let Some(current) = lock(&self.state.current).as_ref() {
            if !current.wake_pending.swap(true, Ordering::AcqRel) {
                let _ = current.out.send(Out::Wake);
            }
        }
    }

    /// Queues an order request for the connected daemon (never blocks). `Err(why)` when there
    /// is no welcomed daemon to take it: the request did not leave the till. A request queued
    /// here whose connection dies before writing it is reported as
    /// [`LinkEvent::OrderNotSent`].
    pub fn send_order(&self, call: OrderCall) -> Result<(), String> {
        let current = lock(&self.state.current);
        let Some(current) = current
            .as_ref()
            .filter(|c| c.welcomed.load(Ordering::Acquire))
        else {
            return Err("no daemon connected".to_string());
        };
        let order = call.order;
        current
            .out
            .send(Out::Message(ToDaemon::Order(call)))
            .map_err(|_| {
                tracing::warn!(%order, "link: the daemon's connection is closing; order not sent");
                "the daemon's connection is closing".to_string()
            })
    }

    /// Stops accepting, drops the connection, waits for every thread and removes the socket.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        socket::wake_accept(&self.listener);
        if let Some(current) = lock(&self.state.current).take() {
            let _ = current.stream.shutdown(std::net::Shutdown::Both);
        }
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let threads = std::mem::take(&mut *lock(&self.state.threads));
        for handle in threads {
            let _ = handle.join();
        }
        self.bound.remove();
    }
}

impl Drop for LinkServer {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.shutdown();
        }
    }
}

fn accept_loop(listener: &UnixListener, state: &Arc<ServerState>) {
    loop {
        let accepted = listener.accept();
        if state.stop.load(Ordering::Acquire) {
            return;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!(error = %e, "link: accept failed");
                thread::sleep(Duration::from_millis(STOP_CHECK_INTERVAL_MS));
                continue;
            }
        };
        if let Err(e) = start_connection(stream, state) {
            tracing::error!(error = %e, "link: cannot start a connection");
        }
    }
}

fn start_connection(stream: UnixStream, state: &Arc<ServerState>) -> io::Result<()> {
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    stream.set_write_timeout(Some(Duration::from_millis(LINK_WRITE_TIMEOUT_MS)))?;
    let (out, out_rx) = mpsc::channel();
    let wake_pending = Arc::new(AtomicBool::new(false));
    let welcomed = Arc::new(AtomicBool::new(false));
    let writer_stream = stream.try_clone()?;
    let shutdown_handle = stream.try_clone()?;
    {
        let mut current = lock(&state.current);
        if let Some(old) = current.take() {
            tracing::warn!(
                old = old.id,
                new = id,
                "link: a new daemon connection replaces the current one"
            );
            let _ = old.stream.shutdown(std::net::Shutdown::Both);
        }
        *current = Some(Current {
            id,
            stream: shutdown_handle,
            out: out.clone(),
            wake_pending: Arc::clone(&wake_pending),
            welcomed: Arc::clone(&welcomed),
        });
    }
    let writer_state = Arc::clone(state);
    let writer_welcomed = Arc::clone(&welcomed);
    let writer = thread::Builder::new()
        .name(format!("link-write-{id}"))
        .spawn(move || {
            writer_loop(writer_stream, &out_rx, &writer_state, &wake_pending);
            report_unsent_orders(&out_rx, &writer_state, &writer_welcomed);
        })?;
    let reader_state = Arc::clone(state);
    let reader = thread::Builder::new()
        .name(format!("link-read-{id}"))
        .spawn(move || {
            let mut connection = Connection {
                id,
                stream,
                out,
                state: reader_state,
                greeted: false,
                welcomed,
            };
            connection.run();
        })?;
    let mut threads = lock(&state.threads);
    threads.retain(|t| !t.is_finished());
    threads.push(writer);
    threads.push(reader);
    Ok(())
}

fn writer_loop(
    mut stream: UnixStream,
    out: &Receiver<Out>,
    state: &ServerState,
    wake_pending: &AtomicBool,
) {
    // `Appended` is pushed only once the daemon was welcomed, and only for growth past what it
    // was told.
    let mut announced: Option<u64> = None;
    loop {
        let message = match out.recv_timeout(Duration::from_millis(STOP_CHECK_INTERVAL_MS)) {
            Ok(Out::Message(message)) => {
                if let ToDaemon::Welcome { last_seq, .. } = &message {
                    announced = Some(last_seq.map_or(0, |s| s.0));
                }
                Some(message)
            }
            Ok(Out::Wake) => {
                wake_pending.store(false, Ordering::Release);
                let last = state.reader.last_seq();
                match (announced, last) {
                    (Some(told), Some(last)) if last.0 > told => {
                        announced = Some(last.0);
                        Some(ToDaemon::Appended { last_seq: last })
                    }
                    _ => None,
                }
            }
            Err(RecvTimeoutError::Timeout) if state.stop.load(Ordering::Acquire) => return,
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let Some(message) = message else { continue };
        let closing = matches!(message, ToDaemon::Refused { .. });
        let bytes = match frame(&encode_to_daemon(&message)) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(error = %e, "link: an answer is too large to send");
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return;
            }
        };
        if let Err(e) = stream.write_all(&bytes) {
            tracing::warn!(error = %e, "link: writing to the daemon failed; dropping it");
            let _ = stream.shutdown(std::net::Shutdown::Both);
            if let ToDaemon::Order(call) = message {
                report_not_sent(state, call.order);
            }
            return;
        }
        if closing {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// What to do after a message.
enum Next {
    Continue,
    Close,
}

struct Connection {
    id: u64,
    stream: UnixStream,
    out: Sender<Out>,
    state: Arc<ServerState>,
    greeted: bool,
    /// Shared with the server's [`Current`]: orders may go out on this connection.
    welcomed: Arc<AtomicBool>,
}

impl Connection {
    fn run(&mut self) {
        let mut frames = FrameReader::new();
        let mut buffer = vec![0u8; READ_CHUNK_BYTES];
        'read: loop {
            let n = match self.stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if !self.state.stop.load(Ordering::Acquire) {
                        tracing::info!(connection = self.id, error = %e, "link: read failed");
                    }
                    break;
                }
            };
            frames.push(&buffer[..n]);
            loop {
                let payload = match frames.next_frame() {
                    Ok(Some(payload)) => payload,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(connection = self.id, error = %e, "link: bad frame; dropping the daemon");
                        break 'read;
                    }
                };
                let message = match decode_to_till(&payload) {
                    Ok(message) => message,
                    Err(e) => {
                        tracing::error!(connection = self.id, error = %e, "link: malformed message; dropping the daemon");
                        break 'read;
                    }
                };
                if let Next::Close = self.handle(message) {
                    break 'read;
                }
            }
        }
        self.close();
    }

    fn send(&self, message: ToDaemon) {
        let _ = self.out.send(Out::Message(message));
    }

    fn handle(&mut self, message: ToTill) -> Next {
        let reader = &self.state.reader;
        match message {
            ToTill::Hello { protocol, daemon } => {
                if self.greeted {
                    tracing::error!(
                        connection = self.id,
                        "link: a second Hello; dropping the daemon"
                    );
                    return Next::Close;
                }
                if protocol != LINK_PROTOCOL_VERSION {
                    let reason = format!(
                        "protocol {protocol} is not supported; this till speaks {LINK_PROTOCOL_VERSION}"
                    );
                    tracing::error!(connection = self.id, daemon, "link: {reason}");
                    self.send(ToDaemon::Refused { reason });
                    return Next::Close;
                }
                self.greeted = true;
                tracing::info!(connection = self.id, daemon, "link: daemon connected");
                self.send(ToDaemon::Welcome {
                    protocol: LINK_PROTOCOL_VERSION,
                    terminal: reader.terminal_id(),
                    machine: reader.machine(),
                    uploaded_through: reader.uploaded_through(),
                    last_seq: reader.last_seq(),
                });
                // After the `Welcome` is queued, so no order can overtake it.
                self.welcomed.store(true, Ordering::Release);
                self.report_peer(LinkPeer {
                    daemon_connected: true,
                    broker: None,
                });
                Next::Continue
            }
            _ if !self.greeted => {
                tracing::error!(
                    connection = self.id,
                    "link: message before Hello; dropping the daemon"
                );
                self.send(ToDaemon::Refused {
                    reason: "say Hello first".to_string(),
                });
                Next::Close
            }
            ToTill::Fetch { after, max } => match reader.fetch(after, max, MAX_RECORDS_PER_FETCH) {
                Ok(records) => {
                    self.send(ToDaemon::Records { records });
                    Next::Continue
                }
                Err(e) => {
                    tracing::error!(connection = self.id, error = %e, "link: cannot read the journal for a fetch");
                    Next::Close
                }
            },
            ToTill::Acked { through } => match reader.mark_uploaded(through) {
                Ok(uploaded_through) => {
                    self.send(ToDaemon::Watermark { uploaded_through });
                    (self.state.events)(LinkEvent::Uploaded);
                    Next::Continue
                }
                Err(e @ JournalError::AckBeyondEnd { .. }) => {
                    tracing::error!(
                        connection = self.id,
                        error = %e,
                        "ALARM link: the campus server acknowledged records this till never wrote; watermark unchanged"
                    );
                    self.send(ToDaemon::Watermark {
                        uploaded_through: reader.uploaded_through(),
                    });
                    Next::Continue
                }
                Err(e) => {
                    tracing::error!(connection = self.id, error = %e, "link: cannot store the upload watermark");
                    Next::Close
                }
            },
            ToTill::Broker(broker) => {
                self.report_peer(LinkPeer {
                    daemon_connected: true,
                    broker: Some(broker),
                });
                Next::Continue
            }
            ToTill::Config(config) => self.downlink(Downlink::Config(config)),
            // Decoding checked the list's invariants (a `Blacklist` cannot break them).
            ToTill::Blacklist(list) => self.downlink(Downlink::Blacklist(list)),
            ToTill::ServerTime { server } => self.downlink(Downlink::ServerTime(server)),
            // From any connection, the current one or not: an answer is the campus server's.
            ToTill::OrderResult(result) => {
                tracing::info!(connection = self.id, order = %result.order, state = ?result.state, "link: order result");
                (self.state.events)(LinkEvent::OrderResult(result));
                Next::Continue
            }
            ToTill::OrderNotSent { order, why } => {
                tracing::warn!(connection = self.id, %order, why, "link: order not sent by the daemon");
                (self.state.events)(LinkEvent::OrderNotSent { order, why });
                Next::Continue
            }
        }
    }

    /// Hands a downlink to the main loop and answers with its result.
    fn downlink(&self, downlink: Downlink) -> Next {
        let kind = downlink.kind();
        let (reply, answer) = mpsc::channel();
        let claim = Arc::new(AtomicU8::new(REPLY_WAITING));
        (self.state.events)(LinkEvent::Downlink(PendingDownlink {
            downlink,
            reply: LinkReply {
                answer: reply,
                state: Arc::clone(&claim),
            },
        }));
        let deadline = Instant::now() + Duration::from_millis(DOWNLINK_REPLY_TIMEOUT_MS);
        let answer = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.state.stop.load(Ordering::Acquire) {
                // Give up only if the main loop has not claimed it: then it is never applied.
                // Claimed, it is being applied now (one journal append): wait for the result.
                if abandon(&claim) {
                    break Err("the till did not apply it in time (not applied)".to_string());
                }
            }
            let check = Duration::from_millis(STOP_CHECK_INTERVAL_MS);
            let wait = if left.is_zero() {
                check
            } else {
                left.min(check)
            };
            match answer.recv_timeout(wait) {
                Ok(answer) => break answer.result,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    break Err("the till dropped it unanswered".to_string())
                }
            }
        };
        match answer {
            Ok(version) => {
                tracing::info!(
                    connection = self.id,
                    ?kind,
                    version,
                    "link: downlink applied"
                );
                self.send(ToDaemon::Applied { kind, version });
            }
            Err(reason) => {
                tracing::warn!(
                    connection = self.id,
                    ?kind,
                    reason,
                    "link: downlink rejected"
                );
                self.send(ToDaemon::Rejected { kind, reason });
            }
        }
        Next::Continue
    }

    fn report_peer(&self, peer: LinkPeer) {
        if self.is_current() {
            (self.state.events)(LinkEvent::Peer(peer));
        }
    }

    fn is_current(&self) -> bool {
        lock(&self.state.current)
            .as_ref()
            .is_some_and(|c| c.id == self.id)
    }

    fn close(&mut self) {
        let was_current = {
            let mut current = lock(&self.state.current);
            if current.as_ref().is_some_and(|c| c.id == self.id) {
                *current = None;
                true
            } else {
                false
            }
        };
        // The writer sends what is queued (a `Refused`) and then sees the channel close; the
        // read half is done.
        let _ = self.stream.shutdown(std::net::Shutdown::Read);
        if was_current && self.greeted {
            tracing::info!(connection = self.id, "link: daemon disconnected");
            (self.state.events)(LinkEvent::Peer(LinkPeer::default()));
        }
    }
}

/// After a connection's writer stopped: the order requests still queued for it never left the
/// till; each is reported so the till does not wait for its answer. The connection stops taking
/// orders first, under the lock [`LinkServer::send_order`] queues them under, so every order it
/// accepted is either written or reported here.
fn report_unsent_orders(out: &Receiver<Out>, state: &ServerState, welcomed: &AtomicBool) {
    {
        let _current = lock(&state.current);
        welcomed.store(false, Ordering::Release);
    }
    while let Ok(message) = out.try_recv() {
        if let Out::Message(ToDaemon::Order(call)) = message {
            report_not_sent(state, call.order);
        }
    }
}

/// An order request queued on a connection that died before writing it.
fn report_not_sent(state: &ServerState, order: OrderId) {
    tracing::warn!(%order, "link: the connection died before the order went out");
    (state.events)(LinkEvent::OrderNotSent {
        order,
        why: "the daemon's connection died before it was sent".to_string(),
    });
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_downlink_is_either_claimed_and_answered_or_abandoned_and_never_applied() {
        // The main loop first: the connection's timeout can no longer answer `Rejected`.
        let state = AtomicU8::new(REPLY_WAITING);
        assert!(take_claim(&state));
        assert!(!abandon(&state));
        assert!(!take_claim(&state), "claimed once only");

        // The timeout first: the main loop must not apply it.
        let state = AtomicU8::new(REPLY_WAITING);
        assert!(abandon(&state));
        assert!(!take_claim(&state));
        let (answer, _) = mpsc::channel();
        let pending = PendingDownlink {
            downlink: Downlink::ServerTime(shared::UnixMillis(1)),
            reply: LinkReply {
                answer,
                state: Arc::new(AtomicU8::new(REPLY_ABANDONED)),
            },
        };
        assert_eq!(pending.kind(), DownlinkKind::ServerTime);
        assert!(pending.claim().is_none());
    }
}

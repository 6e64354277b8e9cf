//! A stand-in for the firmware's link server, for tests that exercise the daemon and the
//! broker without the till's journal: an in-memory journal of arbitrary record bytes and an
//! in-memory watermark, served on a Unix socket with the real link protocol. It answers like
//! the firmware (`Welcome`, `Records`, `Watermark`, `Applied`) and refuses an ack beyond its
//! journal. It sends code-payment order calls when a test says so ([`FakeTill::send_order`])
//! and collects the daemon's answers (`OrderResult`, `OrderNotSent`). The end-to-end tests use
//! the real `pos-firmware`; this one is for the daemon alone.

use shared::codec::{decode_to_till, encode_to_daemon};
use shared::link::{
    frame, DownlinkKind, FrameReader, ToDaemon, ToTill, UploadRecord, LINK_PROTOCOL_VERSION,
    MAX_RECORDS_PER_FETCH,
};
use shared::pay::{OrderCall, OrderId};
use shared::{MachineNumber, Seq, TerminalId};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often the server thread checks whether it must stop.
const FAKE_TILL_POLL_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
struct State {
    journal: Vec<Vec<u8>>,
    uploaded_through: Option<Seq>,
    /// Acks beyond the journal: must stay zero.
    bad_acks: u64,
    connections: u64,
    downlinks: Vec<DownlinkKind>,
    /// Order results and "not sent" notices the daemon passed on, in order.
    order_answers: Vec<ToTill>,
    /// Connections on which the daemon's hello was answered (so it knows the terminal).
    welcomed: u64,
    /// The connected daemon, to push `Appended`.
    peer: Option<UnixStream>,
    stop: bool,
}

/// A fake till serving its link socket on a thread; stops on drop.
pub struct FakeTill {
    state: Arc<Mutex<State>>,
    terminal: TerminalId,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn send(stream: &mut UnixStream, message: &ToDaemon) -> std::io::Result<()> {
    let bytes = frame(&encode_to_daemon(message))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    stream.write_all(&bytes)
}

impl FakeTill {
    pub fn start(socket: &Path, terminal: TerminalId) -> FakeTill {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).expect("the fake till binds its socket");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let state = Arc::new(Mutex::new(State::default()));
        let thread_state = state.clone();
        let thread = std::thread::spawn(move || loop {
            if lock(&thread_state).stop {
                return;
            }
            match listener.accept() {
                Ok((stream, _)) => serve(stream, terminal, &thread_state),
                Err(_) => std::thread::sleep(FAKE_TILL_POLL_INTERVAL),
            }
        });
        FakeTill {
            state,
            terminal,
            thread: Some(thread),
        }
    }

    pub fn terminal(&self) -> TerminalId {
        self.terminal
    }

    /// Appends `count` records (distinct bytes per seq) and tells the daemon.
    pub fn append(&self, count: u64) {
        let mut state = lock(&self.state);
        for _ in 0..count {
            let seq = state.journal.len() as u64 + 1;
            let bytes = format!("record {seq} of {}", self.terminal).into_bytes();
            state.journal.push(bytes);
        }
        let last_seq = Seq(state.journal.len() as u64);
        if let Some(peer) = state.peer.as_mut() {
            let _ = send(peer, &ToDaemon::Appended { last_seq });
        }
    }

    /// Appends these records (their bytes as given: the load test's day of sales) and tells
    /// the daemon.
    pub fn append_bytes(&self, records: Vec<Vec<u8>>) {
        let mut state = lock(&self.state);
        state.journal.extend(records);
        let last_seq = Seq(state.journal.len() as u64);
        if let Some(peer) = state.peer.as_mut() {
            let _ = send(peer, &ToDaemon::Appended { last_seq });
        }
    }

    /// The journal as `(seq, bytes)`.
    pub fn journal(&self) -> Vec<(Seq, Vec<u8>)> {
        lock(&self.state)
            .journal
            .iter()
            .enumerate()
            .map(|(i, bytes)| (Seq(i as u64 + 1), bytes.clone()))
            .collect()
    }

    pub fn uploaded_through(&self) -> Option<Seq> {
        lock(&self.state).uploaded_through
    }

    pub fn bad_acks(&self) -> u64 {
        lock(&self.state).bad_acks
    }

    pub fn connections(&self) -> u64 {
        lock(&self.state).connections
    }

    pub fn downlinks(&self) -> Vec<DownlinkKind> {
        lock(&self.state).downlinks.clone()
    }

    /// Connections on which the daemon said hello and was welcomed.
    pub fn welcomed(&self) -> u64 {
        lock(&self.state).welcomed
    }

    /// Sends an order call to the connected daemon; `false` when no daemon is connected.
    pub fn send_order(&self, call: &OrderCall) -> bool {
        let mut state = lock(&self.state);
        match state.peer.as_mut() {
            Some(peer) => send(peer, &ToDaemon::Order(call.clone())).is_ok(),
            None => false,
        }
    }

    /// Every order answer the daemon passed on so far, oldest first.
    pub fn order_answers(&self) -> Vec<ToTill> {
        lock(&self.state).order_answers.clone()
    }

    /// The answers about `order` so far, oldest first.
    pub fn answers_about(&self, order: OrderId) -> Vec<ToTill> {
        self.order_answers()
            .into_iter()
            .filter(|answer| answer_order(answer) == Some(order))
            .collect()
    }

    /// Sends `call` and waits (at most `timeout`) for the first answer about its order that
    /// comes after it; `None` if none came.
    pub fn call(&self, call: &OrderCall, timeout: Duration) -> Option<ToTill> {
        let before = self.answers_about(call.order).len();
        if !self.send_order(call) {
            return None;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(answer) = self.answers_about(call.order).into_iter().nth(before) {
                return Some(answer);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(FAKE_TILL_POLL_INTERVAL);
        }
    }
}

/// The order an order answer is about (`None` for other messages).
pub fn answer_order(answer: &ToTill) -> Option<OrderId> {
    match answer {
        ToTill::OrderResult(result) => Some(result.order),
        ToTill::OrderNotSent { order, .. } => Some(*order),
        _ => None,
    }
}

impl Drop for FakeTill {
    fn drop(&mut self) {
        {
            let mut state = lock(&self.state);
            state.stop = true;
            if let Some(peer) = state.peer.take() {
                let _ = peer.shutdown(std::net::Shutdown::Both);
            }
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves one daemon connection until it closes or the till stops.
fn serve(mut stream: UnixStream, terminal: TerminalId, state: &Arc<Mutex<State>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(FAKE_TILL_POLL_INTERVAL));
    let mut frames = FrameReader::new();
    let mut chunk = vec![0u8; 64 * 1024];
    {
        let mut state = lock(state);
        state.connections += 1;
        state.peer = stream.try_clone().ok();
    }
    loop {
        if lock(state).stop {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => frames.push(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        }
        while let Ok(Some(payload)) = frames.next_frame() {
            let Ok(message) = decode_to_till(&payload) else {
                return;
            };
            let answer = {
                let mut state = lock(state);
                answer(message, terminal, &mut state)
            };
            if let Some(answer) = answer {
                // Writes go through the state's clone too (Appended): keep them under the lock.
                let mut state = lock(state);
                let ok = match state.peer.as_mut() {
                    Some(peer) => send(peer, &answer).is_ok(),
                    None => false,
                };
                if !ok {
                    return;
                }
            }
        }
    }
    lock(state).peer = None;
}

fn answer(message: ToTill, terminal: TerminalId, state: &mut State) -> Option<ToDaemon> {
    let last_seq = (!state.journal.is_empty()).then_some(Seq(state.journal.len() as u64));
    match message {
        ToTill::Hello { .. } => {
            state.welcomed += 1;
            Some(ToDaemon::Welcome {
                protocol: LINK_PROTOCOL_VERSION,
                terminal,
                machine: MachineNumber::FACTORY_DEFAULT,
                uploaded_through: state.uploaded_through,
                last_seq,
            })
        }
        ToTill::Fetch { after, max } => {
            let start = after.map_or(0, |s| s.0 as usize);
            let max = max.min(MAX_RECORDS_PER_FETCH) as usize;
            let records = state
                .journal
                .iter()
                .enumerate()
                .skip(start)
                .take(max)
                .map(|(i, bytes)| UploadRecord {
                    seq: Seq(i as u64 + 1),
                    bytes: bytes.clone(),
                })
                .collect();
            Some(ToDaemon::Records { records })
        }
        ToTill::Acked { through } => {
            if Some(through) > last_seq {
                state.bad_acks += 1;
            } else {
                state.uploaded_through = state.uploaded_through.max(Some(through));
            }
            Some(ToDaemon::Watermark {
                uploaded_through: state.uploaded_through,
            })
        }
        ToTill::Broker(_) => None,
        ToTill::Config(config) => {
            state.downlinks.push(DownlinkKind::Config);
            Some(ToDaemon::Applied {
                kind: DownlinkKind::Config,
                version: config.version,
            })
        }
        ToTill::Blacklist(list) => {
            state.downlinks.push(DownlinkKind::Blacklist);
            Some(ToDaemon::Applied {
                kind: DownlinkKind::Blacklist,
                version: list.version(),
            })
        }
        ToTill::ServerTime { .. } => {
            state.downlinks.push(DownlinkKind::ServerTime);
            None
        }
        answer @ (ToTill::OrderResult(_) | ToTill::OrderNotSent { .. }) => {
            state.order_answers.push(answer);
            None
        }
    }
}

//! The one host every front end drives the till through: it owns the [`TillRuntime`], the
//! optional [`LinkServer`] and what the link reported (the daemon's state lives in the
//! runtime, where the status line reads it). It turns link events into inputs — the daemon's
//! state, [`LinkUpdate::Uploaded`] when the watermark moved, downlinks applied and answered once
//! durable —, tells the link when the journal grew, and hands the front end only what to draw,
//! sound, print or log ([`HostOutput`]). The terminal simulator (`sim::tui`), the script runner
//! (`sim::script`) and the device loop (`device`) translate their own inputs (keys, card taps,
//! codes, time, script lines) into [`Input`]s and render these outputs; nothing else.
//!
//! Code-payment orders ([`Output::Order`]) are routed here: to the daemon over the link when one
//! is connected; else to the front end ([`HostOutput::Order`]) when it answers orders itself
//! (the simulator's in-process campus back end, [`TillHost::answer_orders_locally`]); else they
//! are "not sent" at once. Every answer goes back into the till as an input, after the input
//! that caused the request: the till never waits for an answer nobody will give.
//!
//! A journal that fails stops the till for good: the host says so once
//! ([`HostOutput::Stopped`]) and takes no input after it; a downlink that arrives then is not
//! answered, so its connection answers "rejected" itself.

use std::fmt;
use std::path::Path;

use std::collections::VecDeque;

use shared::link::{BrokerLink, DownlinkKind};
use shared::pay::{OrderCall, OrderId, OrderRequest, OrderResult};
use shared::record::JournalRecord;

use crate::core::config::TillConfig;
use crate::core::{Beep, Displays};
use crate::link::{DownlinkAnswer, EventSink, LinkError, LinkEvent, LinkPeer, LinkServer};
use crate::runtime::{CardWriter, Input, LinkUpdate, Now, Output, RuntimeError, TillRuntime};

/// What a front end shows, sounds, prints or logs, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOutput {
    /// The displays changed (only sent when they did).
    Displays(Displays),
    Beep(Beep),
    /// A record became durable (the link has been told).
    Journaled(JournalRecord),
    /// Something about the link worth a line in the log.
    Note(HostNote),
    /// The till stopped selling (its journal failed), with why: nothing more is taken.
    Stopped(String),
    /// An order request for the front end's own campus back end (only after
    /// [`TillHost::answer_orders_locally`], while no daemon takes orders). Answer it with
    /// [`TillHost::order_result`] or [`TillHost::order_not_sent`]; an order left unanswered is
    /// queried again by the till. A submit carries the code in clear: never log it.
    Order(OrderCall),
}

/// The most order answers the host feeds back into the till for one input (a till that asks
/// again on every "not sent" must not spin the host).
pub const MAX_ORDER_ANSWERS_PER_INPUT: usize = 16;

/// What the link did, as a front end logs it ([`fmt::Display`] gives the words every front end
/// uses: the script prints them after `LINK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostNote {
    /// The daemon connected, went away or reported its broker.
    Daemon(LinkPeer),
    /// A downlink was applied or refused, and answered.
    Downlink(DownlinkAnswer),
    /// A downlink's connection gave up waiting before the till took it: not applied.
    DownlinkTimedOut(DownlinkKind),
    /// An order request went to the daemon.
    OrderSent(OrderId, RequestKind),
    /// An order request did not leave the till, with why.
    OrderNotSent(OrderId, String),
    /// The campus server answered about an order (through the daemon).
    OrderResult(OrderResult),
}

/// An order request's kind, for the log (never the request itself: a submit holds the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Submit,
    Query,
    Reverse,
}

impl RequestKind {
    pub fn of(request: &OrderRequest) -> RequestKind {
        match request {
            OrderRequest::Submit { .. } => RequestKind::Submit,
            OrderRequest::Query => RequestKind::Query,
            OrderRequest::Reverse => RequestKind::Reverse,
        }
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestKind::Submit => "submit",
            RequestKind::Query => "query",
            RequestKind::Reverse => "reverse",
        })
    }
}

impl HostNote {
    /// Whether the operator should look at it (a refused or lost downlink).
    pub fn is_warning(&self) -> bool {
        match self {
            HostNote::Daemon(_) => false,
            HostNote::Downlink(answer) => answer.result.is_err(),
            HostNote::DownlinkTimedOut(_) => true,
            HostNote::OrderSent(..) | HostNote::OrderResult(_) => false,
            HostNote::OrderNotSent(..) => true,
        }
    }
}

impl fmt::Display for HostNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostNote::Daemon(peer) => match (peer.daemon_connected, peer.broker) {
                (false, _) => write!(f, "daemon disconnected"),
                (true, None) => write!(f, "daemon connected"),
                (true, Some(broker)) => write!(f, "daemon reports broker {broker:?}"),
            },
            HostNote::Downlink(answer) => match &answer.result {
                Ok(version) => write!(f, "{:?} applied {version}", answer.kind),
                Err(reason) => write!(f, "{:?} rejected: {reason}", answer.kind),
            },
            HostNote::DownlinkTimedOut(kind) => write!(f, "{kind:?} timed out, not applied"),
            // By the seq of its intent: the terminal is always this till.
            HostNote::OrderSent(order, kind) => write!(f, "order #{} {kind} sent", order.intent.0),
            HostNote::OrderNotSent(order, why) => {
                write!(f, "order #{} not sent: {why}", order.intent.0)
            }
            HostNote::OrderResult(result) => {
                write!(
                    f,
                    "order #{} result {:?}",
                    result.order.intent.0, result.state
                )
            }
        }
    }
}

/// The till as every front end drives it.
pub struct TillHost {
    runtime: TillRuntime,
    link: Option<LinkServer>,
    /// Why the till stopped selling, once it has.
    stopped: Option<String>,
    /// The front end's own campus and its broker's state, when it answers the orders no
    /// daemon takes ([`HostOutput::Order`]).
    local_orders: Option<BrokerLink>,
    /// The daemon as the link last reported it.
    daemon: LinkPeer,
    /// Kill tests only: sees each order request just before it leaves the till.
    #[cfg(feature = "script")]
    before_order: Option<OrderPause>,
}

/// A kill test's hook on order requests ([`TillHost::pause_before_orders`]).
#[cfg(feature = "script")]
pub type OrderPause = Box<dyn FnMut(&OrderCall) + Send>;

impl TillHost {
    /// Opens the journal in `data_dir` and starts the till from its snapshot (no link yet).
    pub fn open(data_dir: &Path, config: TillConfig, now: Now) -> Result<TillHost, RuntimeError> {
        Ok(TillHost {
            runtime: TillRuntime::open(data_dir, config, now)?,
            link: None,
            stopped: None,
            local_orders: None,
            daemon: LinkPeer::default(),
            #[cfg(feature = "script")]
            before_order: None,
        })
    }

    /// Starts the link server on `path`; its events go to `sink`, and the front end hands them
    /// back through [`TillHost::handle_link`]. From now on the status line shows the link.
    pub fn start_link(&mut self, path: &Path, sink: EventSink, now: Now) -> Result<(), LinkError> {
        let server = LinkServer::start(path, self.runtime.journal().reader(), sink)?;
        self.runtime.enable_link(now);
        self.link = Some(server);
        Ok(())
    }

    /// Connects the front end's own campus back end (the simulator's `--backend local`, a
    /// script's `backend` lines), whose broker is `broker` (`Down`: it takes no request), or
    /// disconnects it (`None`). While it is connected and no daemon is, an order request goes
    /// to the front end as [`HostOutput::Order`] instead of being "not sent", and the till sees
    /// a route to the campus (a daemon connected with that broker): without one it refuses
    /// codes. The status line then shows the link as for a daemon.
    pub fn answer_orders_locally(
        &mut self,
        broker: Option<BrokerLink>,
        now: Now,
        writer: &mut dyn CardWriter,
    ) -> Vec<HostOutput> {
        self.local_orders = broker;
        let mut out = Vec::new();
        if broker.is_some() {
            self.runtime.enable_link(now);
        }
        let peer = self.effective_peer();
        self.feed(Input::Link(LinkUpdate::Peer(peer)), now, writer, &mut out);
        out
    }

    /// The route to the campus as the till sees it: the daemon, or (while none is connected)
    /// the front end's own campus.
    fn effective_peer(&self) -> LinkPeer {
        match self.local_orders {
            Some(broker) if !self.daemon.daemon_connected => LinkPeer {
                daemon_connected: true,
                broker: Some(broker),
            },
            _ => self.daemon,
        }
    }

    /// The front end's back end answered an order of [`HostOutput::Order`].
    pub fn order_result(
        &mut self,
        result: OrderResult,
        now: Now,
        writer: &mut dyn CardWriter,
    ) -> Vec<HostOutput> {
        self.handle(Input::OrderResult(result), now, writer)
    }

    /// The front end's back end could not take an order of [`HostOutput::Order`] (it is down;
    /// the front end says why in its own log).
    pub fn order_not_sent(
        &mut self,
        order: OrderId,
        now: Now,
        writer: &mut dyn CardWriter,
    ) -> Vec<HostOutput> {
        self.handle(Input::OrderNotSent(order), now, writer)
    }

    /// Kill tests (script mode's `--pause-at before-order-…`): `hook` sees every order request
    /// after the records before it are durable and before it leaves the till, and may stop the
    /// process dead there.
    #[cfg(feature = "script")]
    pub fn pause_before_orders(&mut self, hook: OrderPause) {
        self.before_order = Some(hook);
    }

    /// Whether a link server runs.
    pub fn has_link(&self) -> bool {
        self.link.is_some()
    }

    /// The daemon as the link last reported it (disconnected without a link).
    pub fn peer(&self) -> LinkPeer {
        self.runtime.link_peer().unwrap_or_default()
    }

    pub fn runtime(&self) -> &TillRuntime {
        &self.runtime
    }

    /// The displays as they are now (the first frame, or a front end that redraws on its own).
    pub fn displays(&self) -> Displays {
        self.runtime.displays()
    }

    /// Why the till stopped selling, once it has.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Stops the link server (its threads hold the journal's read handle), then closes the
    /// journal, as a power cut would.
    pub fn stop(self) {
        if let Some(link) = self.link {
            link.stop();
        }
    }

    /// Feeds one input from the front end, with `writer` as the card on the reader.
    pub fn handle(
        &mut self,
        input: Input,
        now: Now,
        writer: &mut dyn CardWriter,
    ) -> Vec<HostOutput> {
        let mut out = Vec::new();
        self.feed(input, now, writer, &mut out);
        out
    }

    /// Handles one event of the link server: the daemon's state and the watermark become
    /// inputs; a downlink is claimed, applied, and answered once its record is durable.
    pub fn handle_link(
        &mut self,
        event: LinkEvent,
        now: Now,
        writer: &mut dyn CardWriter,
    ) -> Vec<HostOutput> {
        let mut out = Vec::new();
        if self.stopped.is_some() {
            return out;
        }
        match event {
            LinkEvent::Peer(peer) => {
                out.push(HostOutput::Note(HostNote::Daemon(peer)));
                self.daemon = peer;
                let peer = self.effective_peer();
                self.feed(Input::Link(LinkUpdate::Peer(peer)), now, writer, &mut out);
            }
            LinkEvent::Uploaded => {
                self.feed(Input::Link(LinkUpdate::Uploaded), now, writer, &mut out);
            }
            LinkEvent::OrderResult(result) => {
                out.push(HostOutput::Note(HostNote::OrderResult(result)));
                self.feed(Input::OrderResult(result), now, writer, &mut out);
            }
            LinkEvent::OrderNotSent { order, why } => {
                out.push(HostOutput::Note(HostNote::OrderNotSent(order, why)));
                self.feed(Input::OrderNotSent(order), now, writer, &mut out);
            }
            LinkEvent::Downlink(pending) => {
                let kind = pending.kind();
                let Some((downlink, reply)) = pending.claim() else {
                    out.push(HostOutput::Note(HostNote::DownlinkTimedOut(kind)));
                    return out;
                };
                // `None`: the till stopped; dropping the reply lets the connection say so.
                if let Some(answer) = self.feed(Input::Downlink(downlink), now, writer, &mut out) {
                    out.push(HostOutput::Note(HostNote::Downlink(answer.clone())));
                    reply.send(answer);
                }
            }
        }
        out
    }

    /// Runs one input through the runtime and appends what came out, then the answers to the
    /// order requests that could not leave the till (at most [`MAX_ORDER_ANSWERS_PER_INPUT`]);
    /// returns the downlink answer among it, if any.
    fn feed(
        &mut self,
        input: Input,
        now: Now,
        writer: &mut dyn CardWriter,
        out: &mut Vec<HostOutput>,
    ) -> Option<DownlinkAnswer> {
        let mut answers = VecDeque::new();
        let answer = self.feed_one(input, now, writer, out, &mut answers);
        let mut fed = 0;
        while let Some(order) = answers.pop_front() {
            if fed == MAX_ORDER_ANSWERS_PER_INPUT {
                tracing::error!(
                    %order,
                    "ALARM the till asked for more than {MAX_ORDER_ANSWERS_PER_INPUT} orders \
                     that could not leave it in one input; the rest are left to its queries"
                );
                break;
            }
            fed += 1;
            self.feed_one(Input::OrderNotSent(order), now, writer, out, &mut answers);
        }
        answer
    }

    /// Where an order request goes: the daemon, the front end, or nowhere ("not sent", queued
    /// in `not_sent` to be answered after the current input).
    fn route_order(
        &mut self,
        call: OrderCall,
        out: &mut Vec<HostOutput>,
        not_sent: &mut VecDeque<OrderId>,
    ) {
        #[cfg(feature = "script")]
        if let Some(hook) = self.before_order.as_mut() {
            hook(&call);
        }
        let order = call.order;
        let kind = RequestKind::of(&call.request);
        let refused = match &self.link {
            Some(link) => match link.send_order(call.clone()) {
                Ok(()) => {
                    out.push(HostOutput::Note(HostNote::OrderSent(order, kind)));
                    return;
                }
                Err(why) => why,
            },
            None => "no link".to_string(),
        };
        if self.local_orders.is_some() {
            out.push(HostOutput::Order(call));
        } else {
            out.push(HostOutput::Note(HostNote::OrderNotSent(order, refused)));
            not_sent.push_back(order);
        }
    }

    fn feed_one(
        &mut self,
        input: Input,
        now: Now,
        writer: &mut dyn CardWriter,
        out: &mut Vec<HostOutput>,
        not_sent: &mut VecDeque<OrderId>,
    ) -> Option<DownlinkAnswer> {
        if self.stopped.is_some() {
            return None;
        }
        let outputs = match self.runtime.handle(input, now, writer) {
            Ok(outputs) => outputs,
            Err(error) => {
                let why = error.to_string();
                self.stopped = Some(why.clone());
                out.push(HostOutput::Stopped(why));
                return None;
            }
        };
        let mut answer = None;
        let mut grew = false;
        for output in outputs {
            match output {
                Output::Displays(displays) => out.push(HostOutput::Displays(displays)),
                Output::Beep(beep) => out.push(HostOutput::Beep(beep)),
                Output::Journaled(record) => {
                    grew = true;
                    out.push(HostOutput::Journaled(record));
                }
                Output::Downlink(given) => answer = Some(given),
                Output::Order(call) => self.route_order(call, out, not_sent),
            }
        }
        if grew {
            if let Some(link) = &self.link {
                link.journal_grew();
            }
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::card::{CardWrite, CardWriteOutcome, IssueOutcome, IssueRefusal};
    use crate::link::Downlink;
    use shared::link::BrokerLink;
    use shared::UnixMillis;
    use std::sync::Arc;

    /// No card ever on the reader.
    struct NoCard;

    impl CardWriter for NoCard {
        fn write_card(&mut self, _write: &CardWrite) -> CardWriteOutcome {
            CardWriteOutcome::Unknown
        }
        fn issue_card(&mut self) -> IssueOutcome {
            IssueOutcome::NotIssued(IssueRefusal::ReaderFault)
        }
    }

    const NOW: Now = Now {
        wall: UnixMillis(1_795_000_000_000),
        mono_ms: 0,
    };

    fn host_with_link(dir: &Path) -> TillHost {
        let mut host = TillHost::open(dir, TillConfig::default(), NOW).unwrap();
        let sink: EventSink = Arc::new(|_event: LinkEvent| {});
        host.start_link(&dir.join("link.sock"), sink, NOW).unwrap();
        host
    }

    fn outputs_text(outputs: &[HostOutput]) -> Vec<String> {
        outputs
            .iter()
            .map(|output| match output {
                HostOutput::Note(note) => format!("note {note}"),
                HostOutput::Journaled(record) => crate::present::describe_record(record),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn an_upload_refreshes_the_unsent_count_and_keeps_the_daemon_as_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = host_with_link(dir.path());
        let connected = LinkPeer {
            daemon_connected: true,
            broker: Some(BrokerLink::Up),
        };
        let out = host.handle_link(LinkEvent::Peer(connected), NOW, &mut NoCard);
        assert_eq!(outputs_text(&out)[0], "note daemon reports broker Up");
        // A record to upload: the first server time is journaled.
        let server = Downlink::ServerTime(UnixMillis(NOW.wall.0 + 60_000));
        let out = host.handle(Input::Downlink(server), NOW, &mut NoCard);
        assert!(
            outputs_text(&out).iter().any(|l| l.contains("server-time")),
            "{out:?}"
        );
        let status = host.runtime().till().link_status().unwrap();
        assert_eq!(status.unsent, 1);

        // The daemon's ack moves the watermark (through the link's own journal handle)…
        let last = host.runtime().journal().last_seq().unwrap();
        host.runtime()
            .journal()
            .reader()
            .mark_uploaded(last)
            .unwrap();
        // …and the link's `Uploaded` alone brings the status line up to date.
        host.handle_link(LinkEvent::Uploaded, NOW, &mut NoCard);
        let status = host.runtime().till().link_status().unwrap();
        assert_eq!(status.unsent, 0);
        assert!(status.daemon_connected, "the daemon is still connected");
        assert_eq!(status.broker, Some(BrokerLink::Up));
        assert_eq!(host.peer(), connected);
        host.stop();
    }

    #[test]
    fn a_downlink_answer_is_noted_in_the_words_every_front_end_prints() {
        let applied = HostNote::Downlink(DownlinkAnswer {
            kind: DownlinkKind::Config,
            result: Ok(3),
        });
        let refused = HostNote::Downlink(DownlinkAnswer {
            kind: DownlinkKind::Blacklist,
            result: Err("older than v4".into()),
        });
        let lost = HostNote::DownlinkTimedOut(DownlinkKind::ServerTime);
        assert_eq!(applied.to_string(), "Config applied 3");
        assert!(!applied.is_warning());
        assert_eq!(refused.to_string(), "Blacklist rejected: older than v4");
        assert!(refused.is_warning());
        assert_eq!(lost.to_string(), "ServerTime timed out, not applied");
        assert!(lost.is_warning());
        let gone = HostNote::Daemon(LinkPeer::default());
        assert_eq!(gone.to_string(), "daemon disconnected");
    }

    #[test]
    fn without_a_link_the_host_sells_and_reports_no_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = TillHost::open(dir.path(), TillConfig::default(), NOW).unwrap();
        assert!(!host.has_link());
        let out = host.handle(Input::Tick, NOW, &mut NoCard);
        assert!(
            matches!(out.first(), Some(HostOutput::Displays(_))),
            "{out:?}"
        );
        assert_eq!(host.peer(), LinkPeer::default());
        assert!(host.runtime().till().link_status().is_none());
        assert!(host.stopped().is_none());
    }

    #[test]
    fn the_front_ends_campus_is_the_route_only_while_no_daemon_is() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = host_with_link(dir.path());
        let status = |host: &TillHost| {
            let s = host.runtime().till().link_status().unwrap();
            (s.daemon_connected, s.broker)
        };
        assert_eq!(
            status(&host),
            (false, None),
            "no daemon, no campus: no route"
        );
        host.answer_orders_locally(Some(BrokerLink::Up), NOW, &mut NoCard);
        assert_eq!(status(&host), (true, Some(BrokerLink::Up)));
        // A daemon connects: its state is the route's, whatever the local campus says.
        let daemon = LinkPeer {
            daemon_connected: true,
            broker: Some(BrokerLink::Down),
        };
        host.handle_link(LinkEvent::Peer(daemon), NOW, &mut NoCard);
        assert_eq!(status(&host), (true, Some(BrokerLink::Down)));
        // It goes away: the local campus is the route again.
        let out = host.handle_link(LinkEvent::Peer(LinkPeer::default()), NOW, &mut NoCard);
        assert_eq!(outputs_text(&out)[0], "note daemon disconnected");
        assert_eq!(status(&host), (true, Some(BrokerLink::Up)));
        host.answer_orders_locally(None, NOW, &mut NoCard);
        assert_eq!(status(&host), (false, None));
        host.stop();
    }

    #[test]
    fn an_order_note_names_the_order_by_its_intent_never_the_code() {
        use shared::pay::{OrderId, OrderResult, OrderState};
        let order = OrderId {
            terminal: shared::TerminalId(0xABCD),
            intent: shared::Seq(5),
        };
        let sent = HostNote::OrderSent(order, RequestKind::Submit);
        assert_eq!(sent.to_string(), "order #5 submit sent");
        assert!(!sent.is_warning());
        let lost = HostNote::OrderNotSent(order, "no daemon connected".into());
        assert_eq!(lost.to_string(), "order #5 not sent: no daemon connected");
        assert!(lost.is_warning());
        let answered = HostNote::OrderResult(OrderResult {
            order,
            state: OrderState::UserPaying,
            server_time: UnixMillis(0),
        });
        assert_eq!(answered.to_string(), "order #5 result UserPaying");
    }

    #[test]
    fn without_a_route_an_order_request_is_answered_not_sent_within_the_same_input() {
        use keymap::TillKey;
        use shared::pay::{OrderResult, OrderState};
        let dir = tempfile::tempdir().unwrap();
        // A till with its own campus takes an order the payer must confirm, and stops.
        let mut host = TillHost::open(dir.path(), TillConfig::default(), NOW).unwrap();
        host.answer_orders_locally(Some(BrokerLink::Up), NOW, &mut NoCard);
        for key in [TillKey::Digit(5), TillKey::Enter] {
            host.handle(Input::Key(key), NOW, &mut NoCard);
        }
        let out = host.handle(Input::Code("134567890123456789".into()), NOW, &mut NoCard);
        let Some(HostOutput::Order(call)) = out.iter().find(|o| matches!(o, HostOutput::Order(_)))
        else {
            panic!("the submit goes to the front end's campus: {out:?}");
        };
        let paying = OrderResult {
            order: call.order,
            state: OrderState::UserPaying,
            server_time: NOW.wall,
        };
        host.order_result(paying, NOW, &mut NoCard);
        host.stop();

        // Started again with no link and no campus: the start-up query cannot leave the till,
        // and the till hears so in the input that asked.
        let mut host = TillHost::open(dir.path(), TillConfig::default(), NOW).unwrap();
        let out = host.handle(Input::Tick, NOW, &mut NoCard);
        let notes = outputs_text(&out);
        assert!(
            notes.contains(&"note order #1 not sent: no link".to_string()),
            "{notes:?}"
        );
        assert!(
            !out.iter().any(|o| matches!(o, HostOutput::Order(_))),
            "nothing for a campus that is not there"
        );
    }
}

//! What the link and the till's loop say to each other: the daemon's state ([`LinkPeer`]), what
//! the campus server sent down ([`Downlink`]) and the till's answer ([`DownlinkAnswer`]). In a
//! file of their own so the dependency points one way: the runtime and the host name these
//! types, and the link server needs nothing from either of them.

use shared::campus::{Blacklist, CampusConfig};
use shared::link::{BrokerLink, DownlinkKind};
use shared::UnixMillis;

/// The sync daemon as the link server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkPeer {
    pub daemon_connected: bool,
    /// As the daemon last reported it (`None` before its first report or without a daemon).
    pub broker: Option<BrokerLink>,
}

/// What the campus server sent down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Downlink {
    Config(CampusConfig),
    Blacklist(Blacklist),
    ServerTime(UnixMillis),
}

impl Downlink {
    pub fn kind(&self) -> DownlinkKind {
        match self {
            Downlink::Config(_) => DownlinkKind::Config,
            Downlink::Blacklist(_) => DownlinkKind::Blacklist,
            Downlink::ServerTime(_) => DownlinkKind::ServerTime,
        }
    }
}

/// The answer to a downlink, given once its record (if any) is durable: `Ok(version)` applied
/// (for server time, the server's clock in ms), `Err(reason)` rejected with nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownlinkAnswer {
    pub kind: DownlinkKind,
    pub result: Result<u64, String>,
}

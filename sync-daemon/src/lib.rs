//! The sync daemon as a library: the binary (`main.rs`) only parses the command line and sets
//! up logging. The till owns the journal and the upload watermark; this process connects the
//! till's Unix socket to the campus MQTT broker and keeps nothing about money, so it can be
//! killed at any moment (see docs/mqtt.md and ARCHITECTURE.md, "sync-daemon").
//!
//! - [`uploader`]: the sans-IO decisions (fetch, publish, resend, forward acks and downlink);
//! - [`orders`]: the sans-IO relay of code-payment orders (till → campus, answers back), no
//!   order state kept;
//! - [`blacklist_pages`]: reassembles the blacklist from its pages before the till gets it;
//! - [`till_link`]: the framed Unix-socket connection to the firmware;
//! - [`broker`]: rumqttc options (persistent session, credentials, TLS on rustls + ring) and
//!   one event-loop task per broker connection;
//! - [`cli`]: the command line, every tunable refused outside its named range;
//! - [`daemon`]: the async loop tying them together, with reconnect back-off
//!   ([`shared::backoff::Backoff`]).

pub mod blacklist_pages;
pub mod broker;
pub mod cli;
pub mod daemon;
pub mod error;
pub mod orders;
pub mod till_link;
pub mod uploader;

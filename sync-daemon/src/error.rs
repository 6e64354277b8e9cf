//! The daemon's typed errors: what can go wrong talking to the till, setting up the broker
//! connection, and starting up. `anyhow` is used only by `main.rs`.

use std::path::PathBuf;

/// The till's Unix-socket connection failed or said something we cannot use.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("till socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("till link framing: {0}")]
    Frame(#[from] shared::link::FrameError),
    #[error("till sent an undecodable message: {0}")]
    Decode(#[from] shared::codec::DecodeError),
    #[error("the till closed the connection")]
    Closed,
    #[error("the till did not answer within {0} ms")]
    Timeout(u64),
    #[error("the till refused the connection: {0}")]
    Refused(String),
    #[error("the till speaks link protocol {theirs}, we speak {ours}")]
    ProtocolMismatch { ours: u16, theirs: u16 },
    #[error("the till answered hello with {0}")]
    UnexpectedAnswer(String),
}

/// The broker settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BrokerSetupError {
    #[error("cannot read the TLS CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the TLS CA file {0} holds no usable certificate")]
    NoCaCertificate(PathBuf),
    #[error("TLS setup: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
}

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    BrokerSetup(#[from] BrokerSetupError),
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
}

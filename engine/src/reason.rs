//! Why a connection to a peer ended.

/// Why a connection to a peer (or a web seed) ended: in
/// [`TorrentEvent::PeerDropped`](crate::TorrentEvent::PeerDropped) and the
/// logs. Its `Display` is a sentence for people; match on the variant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Dialling failed or timed out.
    #[error("{0}")]
    Connect(String),
    /// The handshakes failed (MSE or BitTorrent), timed out, or named
    /// another torrent.
    #[error("{0}")]
    Handshake(String),
    /// The peer closed the connection.
    #[error("closed by the peer")]
    ClosedByPeer,
    /// Sending failed.
    #[error("send failed: {0}")]
    SendFailed(String),
    /// The peer stopped reading what we send.
    #[error("does not read what we send")]
    NotReading,
    /// The peer sent nothing for this many seconds.
    #[error("silent for {0} s")]
    Silent(u64),
    /// The peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer unchoked us and rejected every request.
    #[error("rejected {rejected} requests without sending a block")]
    RefusesWork {
        /// Requests it rejected in a row.
        rejected: u32,
    },
    /// The peer sent too many blocks nobody asked for.
    #[error("too many blocks we did not ask for")]
    Unrequested,
    /// The peer sent data that failed a hash check (or is banned for it).
    #[error("banned: sent bad data")]
    Banned,
    /// The peer is this session.
    #[error("that is us")]
    Ourselves,
    /// A second connection to a peer we have: one of the two goes.
    #[error("connected twice; keeping the other connection")]
    Duplicate,
    /// Both sides have every piece.
    #[error("both are seeds")]
    BothSeeds,
    /// The table was full: an idle peer gave its place to a new one.
    #[error("idle; gave its place to a new peer")]
    GaveWay,
    /// The table was full: our dial, unanswered, gave its place to a peer
    /// that dialled us.
    #[error("not answered; gave its place to a peer that dialled us")]
    DialGaveWay,
    /// The slowest peer, replaced by a newcomer.
    #[error("replaced by a faster peer")]
    Replaced,
    /// A leecher a seed unchoked asked for nothing.
    #[error("unchoked, it asked for nothing")]
    AskedForNothing,
    /// The torrent was paused.
    #[error("paused")]
    Paused,
    /// The torrent stopped.
    #[error("the torrent stopped")]
    Stopped,
    /// The torrent stopped on an error.
    #[error("the torrent stopped on an error")]
    TorrentFailed,
    /// A block to upload could not be read from the disk.
    #[error("cannot read a block to upload: {0}")]
    DiskRead(String),
    /// Closed on purpose by a test's fault injection.
    #[error("closed on purpose (fault injection)")]
    Injected,
    /// The torrent let go of the connection.
    #[error("closed by us")]
    ClosedByUs,
    /// A web seed's request failed or it sent nothing in time.
    #[error("{0}")]
    WebSeed(String),
}

impl DropReason {
    /// A short name of the kind of reason, without its details: for
    /// counting reasons in a report.
    pub fn kind(&self) -> &'static str {
        match self {
            DropReason::Connect(_) => "connect failed",
            DropReason::Handshake(_) => "handshake failed",
            DropReason::ClosedByPeer => "closed by the peer",
            DropReason::SendFailed(_) => "send failed",
            DropReason::NotReading => "not reading",
            DropReason::Silent(_) => "silent",
            DropReason::Protocol(_) => "protocol error",
            DropReason::RefusesWork { .. } => "refuses work",
            DropReason::Unrequested => "unrequested blocks",
            DropReason::Banned => "banned",
            DropReason::Ourselves => "ourselves",
            DropReason::Duplicate => "duplicate",
            DropReason::BothSeeds => "both seeds",
            DropReason::GaveWay | DropReason::DialGaveWay => "gave way",
            DropReason::Replaced => "replaced",
            DropReason::AskedForNothing => "asked for nothing",
            DropReason::Paused => "paused",
            DropReason::Stopped | DropReason::TorrentFailed => "stopped",
            DropReason::DiskRead(_) => "disk read failed",
            DropReason::Injected => "fault injection",
            DropReason::ClosedByUs => "closed by us",
            DropReason::WebSeed(_) => "web seed failed",
        }
    }
}

//! What a torrent reports: live statistics and a stream of events.

use std::net::SocketAddr;
use std::time::Duration;

/// Where a torrent is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TorrentState {
    /// Hashing the data already on disk.
    Checking,
    /// Downloading.
    Downloading,
    /// Every wanted piece is verified and every wanted file is there (the
    /// empty ones made too, or a failure to make one logged); serving
    /// others.
    Seeding,
    /// Paused by the user: no connections.
    Paused,
    /// Stopped after an error it cannot go on from (a full disk, say); the
    /// message says what to do.
    Error(String),
    /// Shut down.
    Stopped,
}

/// A snapshot of a torrent's statistics, refreshed every second and at
/// every change of state.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// The state.
    pub state: TorrentState,
    /// Verified pieces.
    pub pieces_have: u32,
    /// All pieces.
    pub pieces_total: u32,
    /// Bytes still missing (of the wanted pieces).
    pub bytes_left: u64,
    /// Bytes to download in all: the whole torrent, or the pieces of the
    /// wanted files.
    pub bytes_total: u64,
    /// Payload bytes received (blocks accepted) since the start.
    pub downloaded: u64,
    /// Payload bytes sent since the start.
    pub uploaded: u64,
    /// Bytes received that were of no use: duplicates, unrequested, and
    /// pieces that failed their hash.
    pub wasted: u64,
    /// Bytes per second received, over the last seconds.
    pub download_rate: f64,
    /// Bytes per second sent, over the last seconds.
    pub upload_rate: f64,
    /// Connected peers (handshake done), web seeds not included.
    pub peers: usize,
    /// Of those, the ones that have every piece.
    pub seeds: usize,
    /// Of those, the ones whose payload is ciphered (MSE/PE with RC4).
    pub encrypted_peers: usize,
    /// Of those, the ones over uTP (the others are over TCP).
    pub utp_peers: usize,
    /// Web seeds (BEP 19) in use now.
    pub web_seeds: usize,
    /// Addresses known and not yet tried.
    pub candidates: usize,
    /// Pieces that failed their hash check.
    pub hash_failures: u32,
    /// Peers banned for sending bad data.
    pub banned: usize,
    /// Time to completion at the current rate.
    pub eta: Option<Duration>,
    /// Announces made to the trackers, answered or not.
    pub announces: u32,
    /// Connections to peers open now, handshakes under way included (web
    /// seeds not included).
    pub connections: usize,
    /// Peers that completed a handshake since the start.
    pub peers_ever: u32,
    /// Of those (web seeds aside), the ones over uTP.
    pub utp_peers_ever: u32,
    /// Dials that ended before a handshake (refused, timed out, …).
    pub dial_failures: u32,
    /// The last tracker error, until a tracker answers again.
    pub tracker_error: Option<String>,
    /// Payload exchanged with each peer since the start, by peer id, for
    /// the first [`MAX_PEER_TOTALS`] peers met (sorted by id).
    pub peer_totals: Vec<PeerTotals>,
    /// Connected peers by where their address came from.
    pub sources: PeerSources,
    /// Peers ever connected (web seeds aside), by where their address
    /// came from.
    pub sources_ever: PeerSources,
}

/// Where a peer's address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerSource {
    /// A tracker's answer.
    Tracker,
    /// The DHT.
    Dht,
    /// Another peer's `ut_pex`.
    Pex,
    /// Given by the user (`--peer`, a magnet's `x.pe`).
    Given,
    /// It dialled us.
    Incoming,
}

/// Connected peers counted by [`PeerSource`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerSources {
    /// From trackers.
    pub tracker: usize,
    /// From the DHT.
    pub dht: usize,
    /// From peer exchange.
    pub pex: usize,
    /// Given by the user.
    pub given: usize,
    /// Dialled us.
    pub incoming: usize,
}

impl PeerSources {
    /// Counts one more peer from `source`.
    pub fn add(&mut self, source: PeerSource) {
        match source {
            PeerSource::Tracker => self.tracker += 1,
            PeerSource::Dht => self.dht += 1,
            PeerSource::Pex => self.pex += 1,
            PeerSource::Given => self.given += 1,
            PeerSource::Incoming => self.incoming += 1,
        }
    }
}

impl Stats {
    /// The statistics of a torrent about to be checked: `pieces_total`
    /// pieces and `bytes_total` bytes, nothing done yet.
    pub fn new(pieces_total: u32, bytes_total: u64) -> Stats {
        Stats {
            state: TorrentState::Checking,
            pieces_have: 0,
            pieces_total,
            bytes_left: bytes_total,
            bytes_total,
            downloaded: 0,
            uploaded: 0,
            wasted: 0,
            download_rate: 0.0,
            upload_rate: 0.0,
            peers: 0,
            seeds: 0,
            encrypted_peers: 0,
            utp_peers: 0,
            web_seeds: 0,
            candidates: 0,
            hash_failures: 0,
            banned: 0,
            eta: None,
            peer_totals: Vec::new(),
            sources: PeerSources::default(),
            sources_ever: PeerSources::default(),
            announces: 0,
            connections: 0,
            peers_ever: 0,
            utp_peers_ever: 0,
            dial_failures: 0,
            tracker_error: None,
        }
    }
}

/// Peers whose totals are kept, so that a long-running torrent's statistics
/// stay bounded.
pub const MAX_PEER_TOTALS: usize = 256;

/// What was exchanged with one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerTotals {
    /// The peer's id.
    pub id: metainfo::PeerId,
    /// Payload bytes received from it (blocks accepted).
    pub downloaded: u64,
    /// Payload bytes sent to it.
    pub uploaded: u64,
}

/// Something that happened to a torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TorrentEvent {
    /// A peer finished its handshake.
    PeerConnected {
        /// Its address.
        addr: SocketAddr,
    },
    /// A peer's connection ended.
    PeerDropped {
        /// Its address.
        addr: SocketAddr,
        /// Why.
        reason: crate::DropReason,
    },
    /// A piece passed its hash check and is on disk.
    PieceVerified(u32),
    /// A piece failed its hash check; it will be downloaded again.
    HashFailed {
        /// The piece.
        piece: u32,
        /// The peers whose blocks made it.
        peers: Vec<SocketAddr>,
    },
    /// A peer was banned for sending bad data.
    PeerBanned {
        /// Its address.
        addr: SocketAddr,
        /// Its id.
        id: Option<metainfo::PeerId>,
    },
    /// Every wanted piece is verified and every wanted file is there (see
    /// [`TorrentState::Seeding`]).
    Finished,
    /// A tracker could not be reached or refused (the torrent goes on).
    TrackerError(String),
    /// The torrent stopped on an error.
    Error(String),
}

//! The download and seeding engine: torrents, trackers and peers in,
//! verified files out.
//!
//! A [`Session`] listens on one port for all its torrents and routes each
//! incoming handshake by info-hash. [`Session::add`] checks a torrent's data
//! on disk and starts it; the [`TorrentHandle`] it returns gives live
//! [`Stats`], a stream of [`TorrentEvent`]s, pause and resume, and a
//! graceful stop (`stopped` announced, files flushed, resume data saved).
//!
//! Inside, each torrent is one task that owns all of its state: the
//! [`Picker`] (rarest first, partial pieces first, endgame), the [`Choker`]
//! (the best uploaders plus one optimistic unchoke while downloading, every
//! interested peer in turn while seeding) and the peer table.
//! Each connection is a task of its own; received blocks go from it straight
//! to the disk thread (see the `storage` crate) as shared `Bytes`, never
//! copied and never through the torrent task, and only if they were asked
//! for. The picker, the choker and the [`turnover`] rule (who gives way
//! when the peer table is full and a new peer wants in) are plain values,
//! tested without sockets.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use engine::{Session, SessionConfig, TorrentOptions};
//!
//! let torrent = metainfo::Metainfo::from_bytes(&std::fs::read("debian.iso.torrent")?)?;
//! let session = Session::start(SessionConfig::default()).await?;
//! let handle = session.add(torrent, TorrentOptions::new("downloads")).await?;
//! handle.wait_complete().await?;
//! session.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod announce;
pub mod choker;
mod discovery;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod limit;
mod metadata;
mod peer;
pub mod picker;
mod rate;
mod reason;
mod session;
mod stats;
mod torrent;
pub mod turnover;
mod webseed;
mod wire;

pub use choker::Choker;
pub use discovery::DhtConfig;
pub use picker::Picker;
pub use rate::Rate;
pub use reason::DropReason;
pub use session::{EngineError, Faults, Session, SessionConfig, TorrentHandle, TorrentOptions};
pub use stats::{
    MAX_PEER_TOTALS, PeerSource, PeerSources, PeerTotals, Stats, TorrentEvent, TorrentState,
};
// The storage settings `TorrentOptions::storage` holds.
pub use storage::{Allocation, StorageConfig};
pub use webseed::is_usable_web_seed;
pub use wire::{Encryption, Transport};

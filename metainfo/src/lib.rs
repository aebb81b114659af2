//! BitTorrent metainfo: what a `.torrent` file or a magnet link says, checked.
//!
//! - [`Metainfo::from_bytes`] parses and validates a torrent (BEP 3, with
//!   BEP 12 tiers, BEP 19 web seeds, BEP 27 private flag, `name.utf-8` and
//!   `path.utf-8`). A [`Metainfo`] only exists once it is valid: its paths
//!   cannot leave the download folder and its pieces fit its length.
//! - [`InfoHash`] is computed over the info dictionary's bytes as received.
//! - [`Layout`] is the torrent's geometry: pieces, [`BlockRef`]s of
//!   [`BLOCK_SIZE`], and the [`FileSlice`]s a piece or block covers.
//! - [`PeerId`] generates and reads Azureus-style peer ids.
//! - [`MagnetLink`] parses and formats `magnet:?xt=urn:btih:…` links.
//! - [`TorrentBuilder`] creates torrents that agree with `mktorrent`.
//! - [`Sha1`] is the one seam every SHA-1 goes through ([`Sha1Backend`]).
//!
//! Nothing here does network I/O; only [`TorrentBuilder`] reads files.
//!
//! ```
//! use metainfo::{Metainfo, TorrentBuilder};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("hello.txt"), b"hello, swarm")?;
//! let made = TorrentBuilder::new(dir.path().join("hello.txt"))
//!     .tracker_tier(vec!["http://127.0.0.1:6969/announce".into()])
//!     .build(|_, _| {})?;
//! let torrent = Metainfo::from_bytes(&made.to_bytes())?;
//! assert_eq!(torrent.info().name(), "hello.txt");
//! assert_eq!(torrent.info().total_length(), 12);
//! assert_eq!(torrent.info_hash(), made.info_hash());
//! assert_eq!(torrent.layout().num_pieces(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod create;
mod error;
mod fields;
mod ids;
mod info;
mod layout;
mod magnet;
mod path;
mod sha1;
mod torrent;

pub use create::{CreateError, TorrentBuilder, auto_piece_length};
pub use error::Error;
pub use ids::{CLIENT_PREFIX, InfoHash, ParseInfoHashError, PeerId};
pub use info::{FileEntry, Info, MAX_PIECE_LENGTH, MAX_TOTAL_LENGTH};
pub use layout::{BLOCK_SIZE, BlockRef, FileSlice, FileSlices, Layout};
pub use magnet::{MagnetError, MagnetLink};
pub use sha1::{Sha1, Sha1Backend, sha1};
pub use torrent::Metainfo;

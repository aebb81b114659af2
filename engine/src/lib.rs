//! The download and seeding engine: torrents, trackers and peers in, verified
//! files out.
//!
//! Not built yet. This crate will hold the session with its listening port, the
//! per-torrent actor, the rarest-first piece picker and the choker as pure
//! values, pipelined block requests, endgame, and graceful shutdown.

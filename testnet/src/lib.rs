//! Swarm simulations on one machine.
//!
//! This crate will build a swarm on 127.0.0.1 from a description (an
//! in-process tracker, btc seeders and leechers, real clients), inject
//! faults per peer, check every download byte for byte, and report what
//! happened; `cargo xtask testnet` will be its front door. So far it holds
//! [`Content`] (files generated from a seed, their torrent, and the
//! byte-for-byte check) and [`real`]: drivers for real BitTorrent clients
//! (aria2, Transmission) run as child processes on 127.0.0.1, used by the
//! interoperability tests.

mod content;
pub mod real;

pub use content::Content;

//! Swarm simulations on one machine.
//!
//! Not built yet. This crate will build a swarm on 127.0.0.1 from a
//! description (an in-process tracker, btc seeders and leechers, optionally
//! real clients), inject faults per peer, check every download byte for byte,
//! and report what happened. `cargo xtask testnet` will be its front door.

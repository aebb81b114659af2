//! The peer wire protocol: the bytes that pass between BitTorrent peers.
//!
//! Not built yet. This crate will hold the handshake, every message of BEP 3,
//! the fast extension (BEP 6), the extension protocol (BEP 10) with
//! `ut_metadata` (BEP 9) and `ut_pex` (BEP 11), a bounded tokio-util codec that
//! trusts nothing the other side sends, and a validated `Bitfield` type.

//! Everything btc says to BitTorrent trackers, and a tracker btc can run itself.
//!
//! Not built yet. This crate will hold HTTP(S) and UDP (BEP 15) announce and
//! scrape clients with multitracker tiers (BEP 12), and an in-process tracker
//! server whose state is a plain data structure with no I/O, so that tests,
//! the testnet and `btc tracker` can all run one on 127.0.0.1.

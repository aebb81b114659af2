//! The BitTorrent mainline DHT: how peers of a torrent are found without a
//! tracker (BEP 5), over IPv4 and IPv6 (BEP 32), with node ids tied to
//! addresses (BEP 42) and read-only nodes (BEP 43).
//!
//! The protocol is sans-IO: it reads no clock and touches no socket.
//! - [`Node`] is one DHT node: a routing table ([`Table`]), iterative
//!   lookups, `announce_peer` tokens and a bounded store of announced
//!   peers. Feed it datagrams with [`Node::handle`] and time with
//!   [`Node::handle_timeout`]; take what it sends with
//!   [`Node::poll_transmit`] and what it learns with [`Node::poll_event`].
//! - [`Message`] is a KRPC message, decoded within bounds and encoded.
//! - [`NodeId`] is a 160-bit id with its XOR [`Distance`] and BEP 42's rule.
//! - [`Saved`] is a node's id and table as bytes for the next run.
//!
//! With the default `tokio` feature, [`Dht`] puts a node on a UDP socket and
//! answers lookups through a cheap handle.
//!
//! ```
//! use std::time::Instant;
//! use dht::{Config, Event, Node, NodeId};
//!
//! // Two nodes, the second bootstrapping from the first, wired by hand.
//! let now = Instant::now();
//! let a_addr = "127.0.0.2:6881".parse()?;
//! let b_addr = "127.0.0.3:6881".parse()?;
//! let mut a = Node::new(Config { seed: Some(1), ..Config::default() }, now);
//! let mut b = Node::new(Config { seed: Some(2), bootstrap: vec![a_addr], ..Config::default() }, now);
//! let lookup = b.get_peers(NodeId([7; 20]), None, now);
//! let mut done = false;
//! for _ in 0..10 {
//!     while let Some(t) = b.poll_transmit() {
//!         a.handle(now, b_addr, &t.packet);
//!     }
//!     while let Some(t) = a.poll_transmit() {
//!         b.handle(now, a_addr, &t.packet);
//!     }
//!     while let Some(event) = b.poll_event() {
//!         done |= matches!(event, Event::LookupDone(d) if d.lookup == lookup);
//!     }
//! }
//! assert!(done);
//! // `a` pinged `b` back when it was queried, and keeps it.
//! assert_eq!(a.stats().nodes, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod id;
pub mod krpc;
mod lookup;
mod node;
mod saved;
mod store;
mod table;
mod token;

#[cfg(feature = "tokio")]
mod shell;
#[cfg(test)]
mod sim;

pub use id::{Distance, NodeId, is_exempt};
pub use krpc::{Message, NodeInfo};
pub use lookup::{ALPHA, Announce};
pub use node::{Config, Event, LookupDone, LookupId, Node, Stats, Transmit};
pub use saved::{Saved, SavedError};
pub use store::StoreLimits;
pub use table::{
    BAD_AFTER_FAILURES, Entry, Insert, K, Liveness, QUESTIONABLE_AFTER, Table, TableRules,
};
pub use token::{ROTATE_EVERY, Tokens};

#[cfg(feature = "tokio")]
pub use shell::{Dht, Found, PAIR_EVERY, PUBLIC_ROUTERS, RESOLVE_TIMEOUT, resolve};

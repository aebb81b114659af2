//! Everything btc says to BitTorrent trackers, and a tracker btc can run itself.
//!
//! The protocol lives in sans-IO types that touch no socket:
//! - [`AnnounceRequest`] builds announce URLs (client) and reads announce
//!   query strings (server); [`scrape_url`] derives a scrape URL.
//! - [`AnnounceResponse`] and [`ScrapeResponse`] read and write tracker
//!   answers: compact (BEP 23) and dictionary peer lists, `peers6` (BEP 7).
//! - [`Tracker`] is a tracker's whole state as a plain value: swarms, peers,
//!   expiry, counts and the allow-list.
//!
//! - [`UdpRequest`] and [`UdpResponse`] are BEP 15's packets.
//!
//! Thin tokio layers put them on the network: [`HttpClient`] announces and
//! scrapes over HTTP and HTTPS (hyper, rustls) with timeouts, bounded
//! redirects and a bounded body; [`UdpClient`] does so over UDP with
//! BEP 15's retransmissions and connection ids; [`TrackerClient`] picks by
//! URL, and [`TrackerTiers`] walks a torrent's tiers (BEP 12).
//! [`HttpTracker`] and [`UdpTracker`] serve one [`Tracker`] state.
//!
//! ```
//! use std::time::Instant;
//! use metainfo::{InfoHash, PeerId};
//! use tracker::{AnnounceRequest, AnnounceResponse, Tracker, TrackerConfig};
//!
//! let mut tracker = Tracker::new(TrackerConfig::default());
//! let hash = InfoHash([7; 20]);
//! let seeder = AnnounceRequest::new(hash, PeerId::generate(), 6881, 0);
//! let leecher = AnnounceRequest::new(hash, PeerId::generate(), 6882, 1000);
//! let now = Instant::now();
//! tracker.announce(&seeder, "127.0.0.1".parse()?, now)?;
//! let answer = tracker.announce(&leecher, "127.0.0.1".parse()?, now)?;
//! assert_eq!(answer.peers.len(), 1);
//! assert_eq!(answer.peers[0].addr, "127.0.0.1:6881".parse()?);
//! // The answer as the HTTP server would send it, and as a client reads it.
//! let body = answer.to_bytes(true, false);
//! assert_eq!(AnnounceResponse::from_bytes(&body)?.peers.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod http_client;
mod http_server;
mod request;
mod response;
mod running;
mod swarm;
mod udp;
mod udp_client;
mod udp_server;

pub use client::{TrackerClient, TrackerTiers};
pub use http_client::{
    HttpClient, HttpOptions, TrackerError, error_chain, https_connector, https_connector_from,
    redirect_target,
};
pub use http_server::HttpTracker;
pub use request::{
    AnnounceRequest, Event, MAX_SCRAPE_HASHES, RequestError, scrape_info_hashes,
    scrape_request_url, scrape_url,
};
pub use response::{
    AnnounceResponse, MAX_INTERVAL, MAX_PEERS, Peer, ResponseError, ScrapeResponse, ScrapeStats,
    failure_bytes, shown,
};
pub use swarm::{Tracker, TrackerConfig, answer_http};
pub use udp::{MAX_SCRAPE, PROTOCOL_ID, PacketError, UdpRequest, UdpResponse, stray_peer_bytes};
pub use udp_client::{UdpClient, UdpOptions};
pub use udp_server::UdpTracker;

//! The tracker's state: who is in which swarm. A plain data structure with
//! no I/O and no clock of its own, so it is tested directly; the HTTP and UDP
//! servers are thin layers over it.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use metainfo::{InfoHash, PeerId};
use rand::seq::IteratorRandom;

use crate::request::{AnnounceRequest, Event, RequestError};
use crate::response::{AnnounceResponse, Peer, ScrapeResponse, ScrapeStats};

/// How a [`Tracker`] behaves.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    /// The announce interval told to clients, in seconds.
    pub interval: u32,
    /// The minimum interval told to clients, in seconds.
    pub min_interval: u32,
    /// Peers returned when a client does not say how many it wants.
    pub default_numwant: usize,
    /// The most peers returned, whatever a client asks for.
    pub max_numwant: usize,
    /// A peer that has not announced for this long is dropped.
    pub peer_timeout: Duration,
    /// The most torrents tracked; announces for new ones are refused beyond.
    pub max_torrents: usize,
    /// The most peers in one swarm; new peers are refused beyond.
    pub max_peers_per_torrent: usize,
    /// When set, only these torrents are tracked.
    pub allow_list: Option<HashSet<InfoHash>>,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            interval: 1800,
            min_interval: 60,
            default_numwant: 50,
            max_numwant: 200,
            peer_timeout: Duration::from_secs(2 * 1800 + 60),
            max_torrents: 100_000,
            max_peers_per_torrent: 10_000,
            allow_list: None,
        }
    }
}

/// The swarms a tracker knows.
#[derive(Debug, Default)]
pub struct Tracker {
    config: TrackerConfig,
    swarms: HashMap<InfoHash, Swarm>,
}

#[derive(Debug, Default)]
struct Swarm {
    peers: HashMap<PeerId, PeerEntry>,
    /// Completed events seen, for scrape's `downloaded`.
    completed: u32,
}

#[derive(Clone, Copy, Debug)]
struct PeerEntry {
    addr: SocketAddr,
    left: u64,
    last_seen: Instant,
}

impl Swarm {
    fn stats(&self) -> ScrapeStats {
        let seeders = self.peers.values().filter(|p| p.left == 0).count();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        ScrapeStats {
            complete: count(seeders),
            downloaded: self.completed,
            incomplete: count(self.peers.len() - seeders),
        }
    }

    fn expire(&mut self, now: Instant, timeout: Duration) {
        self.peers
            .retain(|_, p| now.saturating_duration_since(p.last_seen) < timeout);
    }
}

impl Tracker {
    /// An empty tracker.
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            swarms: HashMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Handles an announce from `ip`, the address the request came from.
    ///
    /// The peer is recorded at `ip` and the port it announced: the `ip`
    /// parameter a client may send is not trusted, since anyone could point
    /// a swarm at a third party with it. The peer list never includes the
    /// announcing peer.
    pub fn announce(
        &mut self,
        request: &AnnounceRequest,
        ip: IpAddr,
        now: Instant,
    ) -> Result<AnnounceResponse, RequestError> {
        if self
            .config
            .allow_list
            .as_ref()
            .is_some_and(|allowed| !allowed.contains(&request.info_hash))
        {
            return Err(RequestError::NotAllowed);
        }
        if request.port == 0 {
            return Err(RequestError::Invalid {
                param: "port",
                problem: "must not be 0",
            });
        }
        let full = self.swarms.len() >= self.config.max_torrents;
        if full && !self.swarms.contains_key(&request.info_hash) {
            return Err(RequestError::Invalid {
                param: "info_hash",
                problem: "is a new torrent, and this tracker is full",
            });
        }
        let config = &self.config;
        let swarm = self.swarms.entry(request.info_hash).or_default();
        swarm.expire(now, config.peer_timeout);
        let addr = SocketAddr::new(ip, request.port);
        let numwant = request
            .numwant
            .map_or(config.default_numwant, |n| n as usize)
            .min(config.max_numwant);
        let peers = match request.event {
            Some(Event::Stopped) => {
                swarm.peers.remove(&request.peer_id);
                Vec::new()
            }
            event => {
                let known = swarm.peers.contains_key(&request.peer_id);
                if !known && swarm.peers.len() >= config.max_peers_per_torrent {
                    return Err(RequestError::Invalid {
                        param: "info_hash",
                        problem: "names a swarm that is full",
                    });
                }
                if event == Some(Event::Completed) {
                    swarm.completed = swarm.completed.saturating_add(1);
                }
                swarm.peers.insert(
                    request.peer_id,
                    PeerEntry {
                        addr,
                        left: request.left,
                        last_seen: now,
                    },
                );
                swarm
                    .peers
                    .iter()
                    .filter(|(id, p)| **id != request.peer_id && p.addr != addr)
                    .map(|(id, p)| Peer {
                        addr: p.addr,
                        peer_id: Some(*id),
                    })
                    .choose_multiple(&mut rand::rng(), numwant)
            }
        };
        let stats = swarm.stats();
        if swarm.peers.is_empty() {
            self.swarms.remove(&request.info_hash);
        }
        Ok(AnnounceResponse {
            interval: self.config.interval,
            min_interval: Some(self.config.min_interval),
            tracker_id: None,
            complete: Some(stats.complete),
            incomplete: Some(stats.incomplete),
            warning: None,
            peers,
        })
    }

    /// Numbers for the torrents asked about; all torrents when none are named.
    pub fn scrape(&self, info_hashes: &[InfoHash]) -> ScrapeResponse {
        let files = if info_hashes.is_empty() {
            self.swarms.iter().map(|(h, s)| (*h, s.stats())).collect()
        } else {
            info_hashes
                .iter()
                .filter_map(|h| self.swarms.get(h).map(|s| (*h, s.stats())))
                .collect()
        };
        ScrapeResponse { files }
    }

    /// Drops every peer not heard from within the timeout, and empty swarms.
    pub fn expire(&mut self, now: Instant) {
        let timeout = self.config.peer_timeout;
        self.swarms.retain(|_, swarm| {
            swarm.expire(now, timeout);
            !swarm.peers.is_empty()
        });
    }

    /// Numbers for one torrent, if it has peers.
    pub fn stats(&self, info_hash: &InfoHash) -> Option<ScrapeStats> {
        self.swarms.get(info_hash).map(Swarm::stats)
    }

    /// The addresses of a torrent's peers, for tests and logs.
    pub fn peers(&self, info_hash: &InfoHash) -> Vec<SocketAddr> {
        let mut peers: Vec<_> = self
            .swarms
            .get(info_hash)
            .map(|s| s.peers.values().map(|p| p.addr).collect())
            .unwrap_or_default();
        peers.sort();
        peers
    }
}

/// The state behind a mutex, even if a request panicked while holding it:
/// the tracker's data stays consistent between statements, so serving on is
/// the better choice.
pub(crate) fn lock(state: &std::sync::Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

//! The tracker's state: who is in which swarm. A plain data structure with
//! no I/O and no clock of its own, so it is tested directly; the HTTP and UDP
//! servers are thin layers over it.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use metainfo::{InfoHash, PeerId};
use rand::seq::IteratorRandom;

use crate::request::{AnnounceRequest, Event, RequestError, scrape_info_hashes};
use crate::response::{AnnounceResponse, Peer, ScrapeResponse, ScrapeStats, failure_bytes};

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
    /// The most peers one IP address may have in one swarm, so that one host
    /// cannot fill a swarm with made-up peers. Many clients on one machine
    /// (a test swarm on 127.0.0.1) need it well above 1.
    pub max_peers_per_ip: usize,
    /// The most peers one host (an IPv4 address, an IPv6 /64) may have in
    /// all swarms together, so that one host cannot fill the tracker with
    /// made-up torrents and shut everyone else's new torrents out.
    pub max_peers_per_host: usize,
    /// The most peers in all swarms together.
    pub max_peers: usize,
    /// The most torrents a full scrape (one naming none) lists.
    pub max_full_scrape: usize,
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
            max_peers_per_ip: 100,
            max_peers_per_host: 10_000,
            max_peers: 1_000_000,
            max_full_scrape: 1000,
            allow_list: None,
        }
    }
}

/// How often silent peers are looked for across all swarms, at most.
const EXPIRY_PERIOD: Duration = Duration::from_secs(60);

/// The swarms a tracker knows.
///
/// Silent peers are dropped as requests come in: the swarm asked about at
/// once, every swarm at most once a minute. No timer is needed.
#[derive(Debug, Default)]
pub struct Tracker {
    config: TrackerConfig,
    swarms: HashMap<InfoHash, Swarm>,
    total_peers: usize,
    /// Peers of each host (see [`host`]) in all swarms.
    hosts: HashMap<IpAddr, usize>,
    last_expiry: Option<Instant>,
}

#[derive(Debug, Default)]
struct Swarm {
    peers: HashMap<PeerId, PeerEntry>,
    /// Kept up to date as peers come, change and go, so scrapes cost O(1).
    seeders: usize,
    /// Completed events seen, for scrape's `downloaded`.
    completed: u32,
}

#[derive(Clone, Copy, Debug)]
struct PeerEntry {
    addr: SocketAddr,
    left: u64,
    key: Option<u32>,
    last_seen: Instant,
}

impl Swarm {
    fn stats(&self) -> ScrapeStats {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        ScrapeStats {
            complete: count(self.seeders),
            downloaded: self.completed,
            incomplete: count(self.peers.len() - self.seeders),
        }
    }

    /// Removes silent peers, uncounting them from `hosts`; returns how
    /// many.
    fn expire(
        &mut self,
        now: Instant,
        timeout: Duration,
        hosts: &mut HashMap<IpAddr, usize>,
    ) -> usize {
        let before = self.peers.len();
        self.peers.retain(|_, p| {
            let keep = now.saturating_duration_since(p.last_seen) < timeout;
            if !keep {
                uncount(hosts, p.addr.ip());
            }
            keep
        });
        self.seeders = self.peers.values().filter(|p| p.left == 0).count();
        before - self.peers.len()
    }

    fn remove(&mut self, id: &PeerId, hosts: &mut HashMap<IpAddr, usize>) -> bool {
        match self.peers.remove(id) {
            Some(old) => {
                self.seeders -= usize::from(old.left == 0);
                uncount(hosts, old.addr.ip());
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, id: PeerId, entry: PeerEntry) -> bool {
        let old = self.peers.insert(id, entry);
        self.seeders += usize::from(entry.left == 0);
        if let Some(old) = old {
            self.seeders -= usize::from(old.left == 0);
        }
        old.is_none()
    }
}

impl Tracker {
    /// An empty tracker.
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            ..Tracker::default()
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
    /// a swarm at a third party with it. For the same reason a peer id
    /// already in the swarm can be updated or stopped only from its address,
    /// or with the `key` it first announced. The peer list never includes
    /// the announcing peer.
    pub fn announce(
        &mut self,
        request: &AnnounceRequest,
        ip: IpAddr,
        now: Instant,
    ) -> Result<AnnounceResponse, RequestError> {
        self.announce_from(request, ip, now, false)
    }

    /// [`Tracker::announce`], listing only peers of the asker's address
    /// family when `same_family` (UDP answers carry one family).
    pub fn announce_from(
        &mut self,
        request: &AnnounceRequest,
        ip: IpAddr,
        now: Instant,
        same_family: bool,
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
        self.expire_now_and_then(now);
        if self.swarms.len() >= self.config.max_torrents
            && !self.swarms.contains_key(&request.info_hash)
        {
            return Err(RequestError::Invalid {
                param: "info_hash",
                problem: "is a new torrent, and this tracker is full",
            });
        }
        let config = &self.config;
        let swarm = self.swarms.entry(request.info_hash).or_default();
        self.total_peers -= swarm.expire(now, config.peer_timeout, &mut self.hosts);
        let addr = SocketAddr::new(ip, request.port);
        let known = swarm.peers.get(&request.peer_id).copied();
        if let Some(old) = known {
            let same_key = old.key.is_some() && old.key == request.key;
            if old.addr.ip() != ip && !same_key {
                return Err(RequestError::Invalid {
                    param: "peer_id",
                    problem: "is in use by a peer at another address",
                });
            }
        }
        let peers = if request.event == Some(Event::Stopped) {
            self.total_peers -= usize::from(swarm.remove(&request.peer_id, &mut self.hosts));
            Vec::new()
        } else {
            if known.is_none() {
                let from_ip = swarm.peers.values().filter(|p| p.addr.ip() == ip).count();
                let refusal = if swarm.peers.len() >= config.max_peers_per_torrent {
                    Some("names a swarm that is full")
                } else if from_ip >= config.max_peers_per_ip {
                    Some("names a swarm that already has the most peers allowed from your address")
                } else if self.hosts.get(&host(ip)).copied().unwrap_or(0)
                    >= config.max_peers_per_host
                {
                    Some("cannot be tracked: your address has the most peers allowed here")
                } else if self.total_peers >= config.max_peers {
                    Some("cannot be tracked: this tracker is full")
                } else {
                    None
                };
                if let Some(problem) = refusal {
                    return Err(RequestError::Invalid {
                        param: "info_hash",
                        problem,
                    });
                }
            }
            // A completion counts once: when a leecher becomes a seeder.
            if request.event == Some(Event::Completed)
                && request.left == 0
                && known.is_none_or(|old| old.left > 0)
            {
                swarm.completed = swarm.completed.saturating_add(1);
            }
            let entry = PeerEntry {
                addr,
                left: request.left,
                key: request.key,
                last_seen: now,
            };
            if swarm.insert(request.peer_id, entry) {
                self.total_peers += 1;
                *self.hosts.entry(host(ip)).or_default() += 1;
            } else if let Some(old) = known
                && host(old.addr.ip()) != host(ip)
            {
                // Moved (with its key): counted where it is now.
                uncount(&mut self.hosts, old.addr.ip());
                *self.hosts.entry(host(ip)).or_default() += 1;
            }
            let numwant = request
                .numwant
                .map_or(config.default_numwant, |n| n as usize);
            let numwant = numwant.min(config.max_numwant).min(swarm.peers.len());
            swarm
                .peers
                .iter()
                .filter(|(id, p)| **id != request.peer_id && p.addr != addr)
                .filter(|(_, p)| !same_family || p.addr.is_ipv4() == ip.is_ipv4())
                .map(|(id, p)| Peer {
                    addr: p.addr,
                    peer_id: Some(*id),
                })
                .choose_multiple(&mut rand::rng(), numwant)
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

    /// Numbers for the torrents asked about (each once; unknown ones are left
    /// out); when none are named, for up to `max_full_scrape` torrents.
    pub fn scrape(&mut self, info_hashes: &[InfoHash], now: Instant) -> ScrapeResponse {
        self.expire_now_and_then(now);
        let files = if info_hashes.is_empty() {
            self.swarms
                .iter()
                .take(self.config.max_full_scrape)
                .map(|(h, s)| (*h, s.stats()))
                .collect()
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
        let mut dropped = 0;
        let hosts = &mut self.hosts;
        self.swarms.retain(|_, swarm| {
            dropped += swarm.expire(now, timeout, hosts);
            !swarm.peers.is_empty()
        });
        self.total_peers -= dropped;
        self.last_expiry = Some(now);
    }

    fn expire_now_and_then(&mut self, now: Instant) {
        let due = self
            .last_expiry
            .is_none_or(|last| now.saturating_duration_since(last) >= EXPIRY_PERIOD);
        if due {
            self.expire(now);
        }
    }

    /// Numbers for one torrent, if it has peers.
    pub fn stats(&self, info_hash: &InfoHash) -> Option<ScrapeStats> {
        self.swarms.get(info_hash).map(Swarm::stats)
    }

    /// How many torrents have peers.
    pub fn torrents(&self) -> usize {
        self.swarms.len()
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

/// The host an address belongs to: an IPv4 address, or the /64 network
/// of an IPv6 one (a host commonly has a whole /64).
fn host(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// One peer of `ip`'s host fewer.
fn uncount(hosts: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    let host = host(ip);
    if let Some(count) = hosts.get_mut(&host) {
        *count -= 1;
        if *count == 0 {
            hosts.remove(&host);
        }
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

/// The body of the HTTP answer to a request for `path` with `query` (still
/// percent-encoded) from `ip`: an announce or scrape answer, or, for
/// anything else, a bencoded `failure reason`, as clients expect. The lock
/// is held only for the state change; parsing, logging and encoding happen
/// outside it.
pub fn answer_http(
    state: &std::sync::Mutex<Tracker>,
    path: &str,
    query: &str,
    ip: IpAddr,
    now: Instant,
) -> Vec<u8> {
    let body = match path {
        "/announce" => AnnounceRequest::from_query(query).and_then(|announce| {
            let answer = lock(state).announce(&announce, ip, now)?;
            tracing::info!(
                info_hash = %announce.info_hash, peer = %SocketAddr::new(ip, announce.port),
                event = ?announce.event, left = announce.left, "announce"
            );
            Ok(answer.to_bytes(announce.compact, announce.no_peer_id))
        }),
        "/scrape" => scrape_info_hashes(query).map(|hashes| {
            let answer = lock(state).scrape(&hashes, now);
            answer.to_bytes()
        }),
        _ => Err(RequestError::UnknownPath),
    };
    body.unwrap_or_else(|err| {
        tracing::debug!(%ip, "refused: {err}");
        failure_bytes(&err.to_string())
    })
}

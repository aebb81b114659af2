//! The peers other nodes announced to us (`announce_peer`), bounded in
//! torrents, in peers per torrent and in age.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::IteratorRandom;

use crate::id::NodeId;

/// The store's bounds.
#[derive(Clone, Copy, Debug)]
pub struct StoreLimits {
    /// Torrents kept at once; announces for others are refused.
    pub torrents: usize,
    /// Peers kept per torrent; the oldest announce gives way to a new one.
    pub peers_per_torrent: usize,
    /// How long an announce is kept (peers announce again every 15 to 30
    /// minutes).
    pub max_age: Duration,
}

impl Default for StoreLimits {
    fn default() -> StoreLimits {
        StoreLimits {
            torrents: 512,
            peers_per_torrent: 128,
            max_age: Duration::from_secs(30 * 60),
        }
    }
}

/// Entries of one torrent one IP address may hold.
pub(crate) const PER_IP: usize = 4;

/// Announced peers per info-hash.
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerStore {
    limits: StoreLimits,
    swarms: HashMap<NodeId, Vec<(SocketAddr, Instant)>>,
}

impl PeerStore {
    /// An empty store.
    pub(crate) fn new(limits: StoreLimits) -> PeerStore {
        PeerStore {
            limits,
            swarms: HashMap::new(),
        }
    }

    /// Keeps `peer` for `info_hash`. A full store forgets the torrent
    /// announced least lately; one address holds at most [`PER_IP`]
    /// entries of a torrent (a few peers behind one NAT), so that one host
    /// with one token cannot fill it.
    pub(crate) fn announce(&mut self, info_hash: NodeId, peer: SocketAddr, now: Instant) {
        if !self.swarms.contains_key(&info_hash)
            && self.swarms.len() >= self.limits.torrents
            && let Some(stalest) = self
                .swarms
                .iter()
                .min_by_key(|(_, peers)| peers.iter().map(|(_, at)| *at).max())
                .map(|(hash, _)| *hash)
        {
            self.swarms.remove(&stalest);
        }
        let peers = self.swarms.entry(info_hash).or_default();
        if let Some(known) = peers.iter_mut().find(|(addr, _)| *addr == peer) {
            known.1 = now;
            return;
        }
        let same_ip = peers.iter().filter(|(a, _)| a.ip() == peer.ip()).count();
        let slot = if same_ip >= PER_IP {
            peers
                .iter_mut()
                .filter(|(a, _)| a.ip() == peer.ip())
                .min_by_key(|(_, at)| *at)
        } else if peers.len() >= self.limits.peers_per_torrent {
            peers.iter_mut().min_by_key(|(_, at)| *at)
        } else {
            peers.push((peer, now));
            None
        };
        if let Some(slot) = slot {
            *slot = (peer, now);
        }
    }

    /// Up to `count` peers of `info_hash`, chosen at random.
    pub(crate) fn peers(
        &self,
        info_hash: &NodeId,
        count: usize,
        rng: &mut impl Rng,
    ) -> Vec<SocketAddr> {
        self.swarms
            .get(info_hash)
            .map(|peers| {
                peers
                    .iter()
                    .map(|(addr, _)| *addr)
                    .choose_multiple(rng, count)
            })
            .unwrap_or_default()
    }

    /// Forgets announces older than the limit.
    pub(crate) fn expire(&mut self, now: Instant) {
        let max_age = self.limits.max_age;
        self.swarms.retain(|_, peers| {
            peers.retain(|(_, at)| now.saturating_duration_since(*at) < max_age);
            !peers.is_empty()
        });
    }

    /// Torrents and peers held.
    pub(crate) fn len(&self) -> (usize, usize) {
        (self.swarms.len(), self.swarms.values().map(Vec::len).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_is_bounded_and_forgets() {
        let limits = StoreLimits {
            torrents: 2,
            peers_per_torrent: 3,
            max_age: Duration::from_secs(60),
        };
        let mut store = PeerStore::new(limits);
        let start = Instant::now();
        let peer = |n: u8| SocketAddr::from(([127, 0, 0, n], 6881));
        let at = |s: u64| start + Duration::from_secs(s);
        let mut rng = rand::rng();
        for n in 1..=10 {
            store.announce(NodeId([1; 20]), peer(n), at(u64::from(n)));
        }
        let mut kept = store.peers(&NodeId([1; 20]), 10, &mut rng);
        kept.sort();
        assert_eq!(
            kept,
            vec![peer(8), peer(9), peer(10)],
            "the newest announces stay"
        );
        // One address, many ports: at most PER_IP of them (here the
        // torrent's own bound of 3 comes first).
        for port in 1..=9u16 {
            let from = SocketAddr::from(([10, 0, 0, 1], port));
            store.announce(NodeId([2; 20]), from, at(port.into()));
        }
        assert_eq!(store.peers(&NodeId([2; 20]), 10, &mut rng).len(), 3);
        // A third torrent: the one announced least lately (torrent 2, last
        // at 9 s, against torrent 1's 10 s) gives way.
        store.announce(NodeId([3; 20]), peer(1), at(20));
        assert!(store.peers(&NodeId([2; 20]), 10, &mut rng).is_empty());
        assert_eq!(store.len(), (2, 4));
        store.expire(at(75));
        assert_eq!(store.len(), (1, 1));
        store.expire(at(100));
        assert_eq!(store.len(), (0, 0));
    }

    #[test]
    fn one_address_holds_a_few_entries_of_a_torrent() {
        let mut store = PeerStore::new(StoreLimits::default());
        let start = Instant::now();
        for port in 1..=100u16 {
            let from = SocketAddr::from(([10, 0, 0, 1], port));
            store.announce(
                NodeId([1; 20]),
                from,
                start + Duration::from_secs(port.into()),
            );
        }
        let mut rng = rand::rng();
        let mut kept = store.peers(&NodeId([1; 20]), 200, &mut rng);
        kept.sort();
        let ports: Vec<u16> = kept.iter().map(SocketAddr::port).collect();
        assert_eq!(ports, vec![97, 98, 99, 100]);
    }
}

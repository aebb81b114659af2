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

    /// Keeps `peer` for `info_hash`. False if the store is full of other
    /// torrents.
    pub(crate) fn announce(&mut self, info_hash: NodeId, peer: SocketAddr, now: Instant) -> bool {
        if !self.swarms.contains_key(&info_hash) && self.swarms.len() >= self.limits.torrents {
            return false;
        }
        let peers = self.swarms.entry(info_hash).or_default();
        if let Some(known) = peers.iter_mut().find(|(addr, _)| *addr == peer) {
            known.1 = now;
        } else if peers.len() < self.limits.peers_per_torrent {
            peers.push((peer, now));
        } else if let Some(oldest) = peers.iter_mut().min_by_key(|(_, at)| *at) {
            *oldest = (peer, now);
        }
        true
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
        let peer = |n: u16| SocketAddr::from(([127, 0, 0, 1], n));
        let mut rng = rand::rng();
        for n in 1..=10 {
            assert!(store.announce(
                NodeId([1; 20]),
                peer(n),
                start + Duration::from_secs(u64::from(n))
            ));
        }
        assert!(store.announce(NodeId([2; 20]), peer(1), start));
        assert!(
            !store.announce(NodeId([3; 20]), peer(1), start),
            "a third torrent"
        );
        let mut kept = store.peers(&NodeId([1; 20]), 10, &mut rng);
        kept.sort();
        assert_eq!(
            kept,
            vec![peer(8), peer(9), peer(10)],
            "the newest announces stay"
        );
        store.expire(start + Duration::from_secs(65));
        assert_eq!(store.len(), (1, 3));
        store.expire(start + Duration::from_secs(100));
        assert_eq!(store.len(), (0, 0));
    }
}

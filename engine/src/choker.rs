//! Who gets served: every round (10 seconds) the best few interested peers
//! are unchoked, plus one optimistic unchoke rotated every third round (30
//! seconds) so that newcomers get a chance to show their speed.
//!
//! Sans-IO: the torrent task calls [`Choker::round`] with what it knows of
//! its peers and sends `choke`/`unchoke` for the difference.

use std::collections::HashSet;

use rand::seq::IndexedRandom as _;

use crate::picker::PeerKey;

/// What the choker needs to know of a peer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// The connection.
    pub key: PeerKey,
    /// Whether it wants our data.
    pub interested: bool,
    /// Its merit, bytes per second: what it uploads to us while we
    /// download (reciprocation), what we upload to it once we seed (so the
    /// fastest takers spread the data fastest).
    pub rate: f64,
    /// Whether it has stopped sending what we asked for.
    pub snubbed: bool,
}

/// The choking state machine.
#[derive(Debug)]
pub struct Choker {
    slots: usize,
    optimistic: Option<PeerKey>,
    round: u64,
}

/// Rounds between optimistic rotations (3 × 10 s).
const OPTIMISTIC_EVERY: u64 = 3;

impl Choker {
    /// A choker with `slots` unchoked peers, one of them optimistic.
    pub fn new(slots: usize) -> Choker {
        Choker {
            slots: slots.max(1),
            optimistic: None,
            round: 0,
        }
    }

    /// The optimistic unchoke, if any.
    pub fn optimistic(&self) -> Option<PeerKey> {
        self.optimistic
    }

    /// One round: the peers to have unchoked from now on.
    pub fn round(&mut self, peers: &[Candidate]) -> HashSet<PeerKey> {
        let rotate = self.round.is_multiple_of(OPTIMISTIC_EVERY);
        self.round += 1;
        let mut interested: Vec<&Candidate> = peers.iter().filter(|p| p.interested).collect();
        // Best first; snubbed peers last whatever their past rate.
        interested.sort_by(|a, b| {
            a.snubbed
                .cmp(&b.snubbed)
                .then(b.rate.total_cmp(&a.rate))
                .then(a.key.cmp(&b.key))
        });
        let regular = self.slots.saturating_sub(1).max(1).min(self.slots);
        let mut unchoked: HashSet<PeerKey> =
            interested.iter().take(regular).map(|p| p.key).collect();
        let still_valid = self
            .optimistic
            .is_some_and(|o| interested.iter().any(|p| p.key == o) && !unchoked.contains(&o));
        if rotate || !still_valid {
            let others: Vec<PeerKey> = interested
                .iter()
                .map(|p| p.key)
                .filter(|k| !unchoked.contains(k))
                .collect();
            self.optimistic = others.choose(&mut rand::rng()).copied();
        }
        if unchoked.len() < self.slots
            && let Some(o) = self.optimistic
        {
            unchoked.insert(o);
        }
        unchoked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(key: PeerKey, interested: bool, rate: f64) -> Candidate {
        Candidate {
            key,
            interested,
            rate,
            snubbed: false,
        }
    }

    #[test]
    fn the_fastest_interested_peers_and_one_optimistic_are_unchoked() {
        let mut choker = Choker::new(4);
        let peers: Vec<Candidate> = (0..10).map(|k| peer(k, k != 9, k as f64 * 100.0)).collect();
        let unchoked = choker.round(&peers);
        assert_eq!(unchoked.len(), 4);
        // 8, 7, 6 by rate (9 is not interested).
        for k in [8, 7, 6] {
            assert!(unchoked.contains(&k), "{unchoked:?}");
        }
        let optimistic = choker.optimistic().unwrap();
        assert!(optimistic <= 5 && unchoked.contains(&optimistic));
        // Kept for two more rounds, then rotated among the others.
        assert_eq!(choker.round(&peers), unchoked);
        assert_eq!(choker.round(&peers), unchoked);
        let mut seen = HashSet::new();
        for _ in 0..60 {
            choker.round(&peers);
            seen.insert(choker.optimistic().unwrap());
        }
        assert!(seen.len() > 1, "the optimistic unchoke rotates: {seen:?}");
        assert!(!seen.contains(&9) && !seen.contains(&8));
    }

    #[test]
    fn snubbed_peers_lose_their_slot_and_few_peers_all_get_served() {
        let mut choker = Choker::new(4);
        let mut peers = vec![peer(1, true, 1000.0), peer(2, true, 10.0)];
        peers[0].snubbed = true;
        let unchoked = choker.round(&peers);
        assert_eq!(unchoked, HashSet::from([1, 2]));
        let peers: Vec<Candidate> = (0..5).map(|k| peer(k, true, 0.0)).collect();
        let mut choker = Choker::new(4);
        assert_eq!(choker.round(&peers).len(), 4);
        assert!(choker.round(&[]).is_empty());
    }
}

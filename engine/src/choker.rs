//! Who gets served. Every round (10 seconds by default) the choker picks
//! the interested peers to unchoke, `slots` of them:
//!
//! - While downloading, the peers that upload to us fastest (tit for tat),
//!   snubbed ones last, plus one optimistic unchoke rotated every third
//!   round so that newcomers get a chance to show their speed.
//! - While seeding, every interested peer in turn: a peer keeps its slot
//!   for [`TURN_ROUNDS`] rounds, then yields it to the peer that has waited
//!   longest. Ranking by upload rate would serve the same fast peers for
//!   ever while the others starve; turns serve everyone, as libtorrent's
//!   default round-robin seeding choker does.
//!
//! Between rounds, [`Choker::refill`] gives a slot that fell free (its peer
//! left or lost interest) to the next peer in line at once, instead of
//! leaving it empty until the next round.
//!
//! Sans-IO: the torrent task calls [`Choker::round`] and [`Choker::refill`]
//! with what it knows of its peers and sends `choke`/`unchoke` for the
//! difference.

use std::collections::{HashMap, HashSet};

use rand::seq::IndexedRandom as _;

use crate::picker::PeerKey;

/// What the choker needs to know of a peer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// The connection.
    pub key: PeerKey,
    /// Whether it wants our data.
    pub interested: bool,
    /// Whether we unchoke it now.
    pub unchoked: bool,
    /// Its merit while we download, bytes per second: what it uploads to
    /// us. While seeding, it breaks ties between peers that waited as long.
    pub rate: f64,
    /// Whether it has stopped sending what we asked for.
    pub snubbed: bool,
}

/// Whom the slots go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// We still download: the fastest uploaders to us, and one optimistic.
    Downloading,
    /// We have all we want: every interested peer in turn.
    Seeding,
}

/// The choking state machine.
#[derive(Debug)]
pub struct Choker {
    slots: usize,
    optimistic: Option<PeerKey>,
    round: u64,
    /// The slot of each unchoked peer.
    held: HashMap<PeerKey, Slot>,
    /// The round each choked peer last lost a slot; a peer never unchoked
    /// has none and comes first.
    last_turn: HashMap<PeerKey, u64>,
}

/// An unchoked peer's slot, in rounds.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Since when it has been unchoked without a break.
    since: u64,
    /// When its current turn began: `since`, or later if it was kept
    /// for another turn because nobody waited.
    turn: u64,
}

impl Slot {
    fn new(round: u64) -> Slot {
        Slot {
            since: round,
            turn: round,
        }
    }
}

/// Rounds between optimistic rotations (3 × 10 s).
const OPTIMISTIC_EVERY: u64 = 3;

/// Rounds a seeding turn lasts (6 × 10 s) before the slot goes to a peer
/// that waits.
pub const TURN_ROUNDS: u64 = 6;

impl Choker {
    /// A choker with `slots` unchoked peers.
    pub fn new(slots: usize) -> Choker {
        Choker {
            slots: slots.max(1),
            optimistic: None,
            round: 0,
            held: HashMap::new(),
            last_turn: HashMap::new(),
        }
    }

    /// The optimistic unchoke, if any (only while downloading).
    pub fn optimistic(&self) -> Option<PeerKey> {
        self.optimistic
    }

    /// One round: the peers to have unchoked from now on.
    pub fn round(&mut self, peers: &[Candidate], mode: Mode) -> HashSet<PeerKey> {
        self.sync(peers);
        let unchoked = match mode {
            Mode::Downloading => self.by_rate(peers),
            Mode::Seeding => {
                self.optimistic = None;
                self.in_turn(peers)
            }
        };
        self.note(peers, &unchoked);
        self.round += 1;
        unchoked
    }

    /// Between rounds: the choked peers to unchoke now, to fill the slots
    /// that interested peers do not hold. Nobody is choked.
    pub fn refill(&mut self, peers: &[Candidate], mode: Mode) -> Vec<PeerKey> {
        self.sync(peers);
        let held = peers.iter().filter(|p| p.interested && p.unchoked).count();
        let mut waiting: Vec<&Candidate> = peers
            .iter()
            .filter(|p| p.interested && !p.unchoked)
            .collect();
        match mode {
            Mode::Downloading => waiting.sort_by(|a, b| by_merit(a, b)),
            Mode::Seeding => waiting.sort_by(|a, b| self.by_wait(a, b)),
        }
        let chosen: Vec<PeerKey> = waiting
            .iter()
            .take(self.slots.saturating_sub(held))
            .map(|p| p.key)
            .collect();
        for &key in &chosen {
            self.held.insert(key, Slot::new(self.round));
        }
        chosen
    }

    /// Learns what changed outside the choker (a peer unchoked or choked
    /// by other means, or gone), so that turns are counted right and the
    /// maps hold only peers that are here.
    fn sync(&mut self, peers: &[Candidate]) {
        let here: HashSet<PeerKey> = peers.iter().map(|p| p.key).collect();
        self.held.retain(|k, _| here.contains(k));
        self.last_turn.retain(|k, _| here.contains(k));
        for p in peers {
            if p.unchoked {
                self.held.entry(p.key).or_insert(Slot::new(self.round));
            } else if self.held.remove(&p.key).is_some() {
                self.last_turn.insert(p.key, self.round);
            }
        }
    }

    /// Records the slots that `unchoked` gives, keeps (a turn over is
    /// renewed) and takes.
    fn note(&mut self, peers: &[Candidate], unchoked: &HashSet<PeerKey>) {
        for p in peers {
            match (p.unchoked, unchoked.contains(&p.key)) {
                (false, true) => {
                    self.held.insert(p.key, Slot::new(self.round));
                }
                (true, true) => {
                    if let Some(slot) = self.held.get_mut(&p.key)
                        && self.round.saturating_sub(slot.turn) >= TURN_ROUNDS
                    {
                        slot.turn = self.round;
                    }
                }
                (true, false) => {
                    self.held.remove(&p.key);
                    self.last_turn.insert(p.key, self.round);
                }
                (false, false) => {}
            }
        }
    }

    /// Downloading: the fastest uploaders to us, and one optimistic.
    fn by_rate(&mut self, peers: &[Candidate]) -> HashSet<PeerKey> {
        let rotate = self.round.is_multiple_of(OPTIMISTIC_EVERY);
        let mut interested: Vec<&Candidate> = peers.iter().filter(|p| p.interested).collect();
        interested.sort_by(|a, b| by_merit(a, b));
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

    /// Seeding: peers within their turn keep their slot; then the peers
    /// that waited longest; then, if slots remain, peers whose turn is
    /// over, those that held a slot the shortest first, so that no slot
    /// stays empty while someone is interested.
    fn in_turn(&self, peers: &[Candidate]) -> HashSet<PeerKey> {
        let slot = |p: &Candidate| {
            self.held
                .get(&p.key)
                .copied()
                .unwrap_or(Slot::new(self.round))
        };
        let (holding, mut waiting): (Vec<&Candidate>, Vec<&Candidate>) = peers
            .iter()
            .filter(|p| p.interested)
            .partition(|p| p.unchoked);
        let (current, mut over): (Vec<&Candidate>, Vec<&Candidate>) = holding
            .into_iter()
            .partition(|p| self.round.saturating_sub(slot(p).turn) < TURN_ROUNDS);
        over.sort_by_key(|p| (std::cmp::Reverse(slot(p).since), p.key));
        waiting.sort_by(|a, b| self.by_wait(a, b));
        current
            .into_iter()
            .chain(waiting)
            .chain(over)
            .take(self.slots)
            .map(|p| p.key)
            .collect()
    }

    /// Seeding's queue: never served first, then the longest waiting, then
    /// the fastest.
    fn by_wait(&self, a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
        self.last_turn
            .get(&a.key)
            .cmp(&self.last_turn.get(&b.key))
            .then(b.rate.total_cmp(&a.rate))
            .then(a.key.cmp(&b.key))
    }
}

/// Downloading's order: best first, snubbed peers last whatever their
/// past rate.
fn by_merit(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    a.snubbed
        .cmp(&b.snubbed)
        .then(b.rate.total_cmp(&a.rate))
        .then(a.key.cmp(&b.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(key: PeerKey, interested: bool, rate: f64) -> Candidate {
        Candidate {
            key,
            interested,
            unchoked: false,
            rate,
            snubbed: false,
        }
    }

    /// `peers` with the unchoked flags of `unchoked`, as the torrent task
    /// would pass them after acting on a round.
    fn after(peers: &[Candidate], unchoked: &HashSet<PeerKey>) -> Vec<Candidate> {
        peers
            .iter()
            .map(|p| Candidate {
                unchoked: unchoked.contains(&p.key),
                ..*p
            })
            .collect()
    }

    #[test]
    fn the_fastest_interested_peers_and_one_optimistic_are_unchoked() {
        let mut choker = Choker::new(4);
        let mut peers: Vec<Candidate> =
            (0..10).map(|k| peer(k, k != 9, k as f64 * 100.0)).collect();
        let unchoked = choker.round(&peers, Mode::Downloading);
        assert_eq!(unchoked.len(), 4);
        // 8, 7, 6 by rate (9 is not interested).
        for k in [8, 7, 6] {
            assert!(unchoked.contains(&k), "{unchoked:?}");
        }
        let optimistic = choker.optimistic().unwrap();
        assert!(optimistic <= 5 && unchoked.contains(&optimistic));
        // Kept for two more rounds, then rotated among the others.
        peers = after(&peers, &unchoked);
        assert_eq!(choker.round(&peers, Mode::Downloading), unchoked);
        assert_eq!(choker.round(&peers, Mode::Downloading), unchoked);
        let mut seen = HashSet::new();
        for _ in 0..60 {
            let unchoked = choker.round(&peers, Mode::Downloading);
            peers = after(&peers, &unchoked);
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
        let unchoked = choker.round(&peers, Mode::Downloading);
        assert_eq!(unchoked, HashSet::from([1, 2]));
        let peers: Vec<Candidate> = (0..5).map(|k| peer(k, true, 0.0)).collect();
        let mut choker = Choker::new(4);
        assert_eq!(choker.round(&peers, Mode::Downloading).len(), 4);
        assert!(choker.round(&[], Mode::Downloading).is_empty());
    }

    #[test]
    fn a_seed_serves_every_interested_peer_in_turn_however_slow() {
        // Ten peers for three slots; the fast ones would keep every slot
        // if rate decided.
        let mut choker = Choker::new(3);
        let mut peers: Vec<Candidate> = (0..10)
            .map(|k| peer(k, k != 9, 1000.0 * (10 - k) as f64))
            .collect();
        let mut served: HashMap<PeerKey, u64> = HashMap::new();
        let mut slot_lengths = Vec::new();
        let mut held: HashMap<PeerKey, u64> = HashMap::new();
        let rounds = 3 * TURN_ROUNDS;
        for round in 0..rounds {
            let unchoked = choker.round(&peers, Mode::Seeding);
            assert_eq!(unchoked.len(), 3, "round {round}: no slot stays empty");
            assert!(!unchoked.contains(&9), "9 is not interested");
            for &k in &unchoked {
                *served.entry(k).or_default() += 1;
                *held.entry(k).or_default() += 1;
            }
            for p in &peers {
                if p.unchoked && !unchoked.contains(&p.key) {
                    slot_lengths.push(held.remove(&p.key).unwrap());
                }
            }
            peers = after(&peers, &unchoked);
        }
        // 9 interested peers × 1 turn of TURN_ROUNDS each over 3 slots:
        // everyone had exactly one whole turn.
        assert_eq!(served.len(), 9, "{served:?}");
        for (k, rounds) in &served {
            assert_eq!(*rounds, TURN_ROUNDS, "peer {k}: {served:?}");
        }
        assert!(
            slot_lengths.iter().all(|&n| n == TURN_ROUNDS),
            "{slot_lengths:?}"
        );
        assert_eq!(choker.optimistic(), None);
    }

    #[test]
    fn a_seed_shares_slots_evenly_and_never_leaves_one_empty() {
        // Three peers, two slots: whoever had a slot the longest yields
        // it, and a turn kept because nobody else waited is a whole turn.
        let mut choker = Choker::new(2);
        let mut peers: Vec<Candidate> = (0..3).map(|k| peer(k, true, 0.0)).collect();
        let mut served: HashMap<PeerKey, u64> = HashMap::new();
        let mut changes = 0;
        for _ in 0..6 * TURN_ROUNDS {
            let unchoked = choker.round(&peers, Mode::Seeding);
            assert_eq!(unchoked.len(), 2);
            changes += peers
                .iter()
                .filter(|p| p.unchoked != unchoked.contains(&p.key))
                .count();
            for &k in &unchoked {
                *served.entry(k).or_default() += 1;
            }
            peers = after(&peers, &unchoked);
        }
        assert_eq!(
            served,
            HashMap::from([
                (0, 4 * TURN_ROUNDS),
                (1, 4 * TURN_ROUNDS),
                (2, 4 * TURN_ROUNDS)
            ])
        );
        // Two unchokes at first, then one choke and one unchoke a turn.
        assert_eq!(changes, 2 + 2 * 5);
        // With only one peer interested, it keeps its slot turn after turn.
        let mut choker = Choker::new(2);
        let mut peers = vec![peer(5, true, 0.0), peer(6, false, 0.0)];
        for _ in 0..3 * TURN_ROUNDS {
            let unchoked = choker.round(&peers, Mode::Seeding);
            assert_eq!(unchoked, HashSet::from([5]));
            peers = after(&peers, &unchoked);
        }
    }

    #[test]
    fn a_freed_slot_goes_to_a_newcomer_before_a_peer_just_served() {
        let mut choker = Choker::new(1);
        let mut peers = vec![peer(1, true, 0.0), peer(2, true, 900.0)];
        let unchoked = choker.round(&peers, Mode::Seeding);
        assert_eq!(
            unchoked,
            HashSet::from([2]),
            "the fastest first among equals"
        );
        peers = after(&peers, &unchoked);
        for _ in 0..TURN_ROUNDS {
            let unchoked = choker.round(&peers, Mode::Seeding);
            peers = after(&peers, &unchoked);
        }
        assert_eq!(peers.iter().filter(|p| p.unchoked).count(), 1);
        assert!(peers[0].unchoked, "1's turn after 2's: {peers:?}");
        // 1 leaves; 2 was served, newcomer 3 never was: 3 goes first.
        peers.remove(0);
        peers.push(peer(3, true, 0.0));
        assert_eq!(choker.refill(&peers, Mode::Seeding), vec![3]);
    }

    #[test]
    fn refill_fills_only_free_slots_in_the_modes_order() {
        let mut choker = Choker::new(2);
        let mut peers = vec![
            peer(1, true, 10.0),
            peer(2, true, 500.0),
            peer(3, true, 100.0),
            peer(4, false, 900.0),
        ];
        peers[0].unchoked = true;
        // One slot held; the fastest waiting peer gets the other.
        assert_eq!(choker.refill(&peers, Mode::Downloading), vec![2]);
        peers[1].unchoked = true;
        assert!(choker.refill(&peers, Mode::Downloading).is_empty());
        // An unchoked peer that is not interested holds nothing.
        peers[0].interested = false;
        assert_eq!(choker.refill(&peers, Mode::Downloading), vec![3]);
    }
}

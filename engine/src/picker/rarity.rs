//! How many peers have each piece, and the pieces that may be started in
//! that order, so the rarest is found without a scan of every piece.

use peerwire::Bitfield;
use rand::Rng as _;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom as _;

/// Each piece's availability, and the candidates (the pieces that may be
/// started) in a list sorted by it, with each piece's place in the list and
/// where each availability's run begins. A change of one in a piece's
/// availability is one swap; adding or removing a candidate costs one swap
/// per availability above its own.
#[derive(Clone, Debug)]
pub(super) struct Rarity {
    /// How many peers have each piece.
    availability: Vec<u32>,
    /// The candidates, by availability; at random among equals.
    order: Vec<u32>,
    /// Each piece's index in `order`, or `NOT_A_CANDIDATE`.
    slot: Vec<u32>,
    /// `starts[a]`: the index in `order` of the first candidate with
    /// availability `a` or more.
    starts: Vec<u32>,
}

const NOT_A_CANDIDATE: u32 = u32::MAX;

impl Rarity {
    /// `pieces` pieces no peer has yet, none of them a candidate.
    pub(super) fn new(pieces: usize) -> Rarity {
        Rarity {
            availability: vec![0; pieces],
            order: Vec::new(),
            slot: vec![NOT_A_CANDIDATE; pieces],
            starts: vec![0],
        }
    }

    /// How many peers have `piece`.
    pub(super) fn of(&self, piece: u32) -> u32 {
        self.availability.get(piece as usize).copied().unwrap_or(0)
    }

    /// Makes `pieces` the candidates, in a random order among equals.
    pub(super) fn set_candidates(&mut self, mut pieces: Vec<u32>, rng: &mut SmallRng) {
        pieces.retain(|p| (*p as usize) < self.availability.len());
        pieces.shuffle(rng);
        pieces.sort_by_key(|p| self.availability[*p as usize]);
        self.slot.fill(NOT_A_CANDIDATE);
        for (i, piece) in pieces.iter().enumerate() {
            self.slot[*piece as usize] = i as u32;
        }
        let top = pieces.last().map_or(0, |p| self.of(*p) as usize);
        self.starts = (0..=top)
            .map(|a| pieces.partition_point(|p| (self.of(*p) as usize) < a) as u32)
            .collect();
        self.order = pieces;
    }

    /// A candidate `has` holds, from a random place on.
    pub(super) fn any(&self, has: &Bitfield, rng: &mut SmallRng) -> Option<u32> {
        first_held(&self.order, has, rng)
    }

    /// The rarest candidate `has` holds, at random among equally rare ones
    /// (so that leechers of one seed do not all fetch the same pieces).
    pub(super) fn rarest(&self, has: &Bitfield, rng: &mut SmallRng) -> Option<u32> {
        // The candidates before the first it holds, in that one's run, are
        // ones it lacks.
        let first = self.order.iter().position(|p| has.get(*p))?;
        let a = self.of(self.order[first]) as usize;
        let end = self
            .starts
            .get(a + 1)
            .map_or(self.order.len(), |s| *s as usize);
        first_held(&self.order[first..end], has, rng)
    }

    /// Whether `piece` is a candidate.
    pub(super) fn contains(&self, piece: u32) -> bool {
        self.slot
            .get(piece as usize)
            .is_some_and(|s| *s != NOT_A_CANDIDATE)
    }

    /// Gives availability `a` a run (empty, at the end) if it has none.
    fn reach(&mut self, a: usize) {
        while self.starts.len() <= a {
            self.starts.push(self.order.len() as u32);
        }
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.order.swap(i, j);
        self.slot[self.order[i] as usize] = i as u32;
        self.slot[self.order[j] as usize] = j as u32;
    }

    /// One more peer has `piece`. A candidate moves to the end of its run,
    /// which then ends one earlier.
    pub(super) fn raise(&mut self, piece: u32) {
        let Some(a) = self.availability.get_mut(piece as usize) else {
            return;
        };
        let was = *a as usize;
        *a += 1;
        if !self.contains(piece) {
            return;
        }
        self.reach(was + 1);
        let last = self.starts[was + 1] as usize - 1;
        self.swap(self.slot[piece as usize] as usize, last);
        self.starts[was + 1] -= 1;
    }

    /// One peer fewer has `piece` (never below none). A candidate moves to
    /// the start of its run, which then begins one later.
    pub(super) fn lower(&mut self, piece: u32) {
        let Some(a) = self
            .availability
            .get_mut(piece as usize)
            .filter(|a| **a > 0)
        else {
            return;
        };
        let was = *a as usize;
        *a -= 1;
        if !self.contains(piece) {
            return;
        }
        let first = self.starts[was] as usize;
        self.swap(self.slot[piece as usize] as usize, first);
        self.starts[was] += 1;
    }

    /// `piece` is no longer a candidate: it climbs to the end of the list,
    /// run by run, and leaves.
    pub(super) fn remove(&mut self, piece: u32) {
        if !self.contains(piece) {
            return;
        }
        let mut at = self.slot[piece as usize] as usize;
        for b in self.of(piece) as usize + 1..self.starts.len() {
            let last = self.starts[b] as usize - 1;
            self.swap(at, last);
            self.starts[b] -= 1;
            at = last;
        }
        let end = self.order.len() - 1;
        self.swap(at, end);
        self.order.pop();
        self.slot[piece as usize] = NOT_A_CANDIDATE;
    }

    /// `piece` becomes a candidate again: it joins at the end and sinks,
    /// run by run, to the end of its own.
    pub(super) fn insert(&mut self, piece: u32) {
        if self.contains(piece) || piece as usize >= self.slot.len() {
            return;
        }
        let a = self.of(piece) as usize;
        self.reach(a);
        let mut at = self.order.len();
        self.order.push(piece);
        self.slot[piece as usize] = at as u32;
        for b in (a + 1..self.starts.len()).rev() {
            let first = self.starts[b] as usize;
            self.swap(at, first);
            self.starts[b] += 1;
            at = first;
        }
    }

    /// Asserts that the candidates are `expected`, each once, where `slot`
    /// says, in order of availability, with the right runs (for tests).
    pub(super) fn check_invariants(&self, mut expected: Vec<u32>) {
        let mut got = self.order.clone();
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got, expected, "candidates");
        for (i, piece) in self.order.iter().enumerate() {
            assert_eq!(self.slot[*piece as usize], i as u32, "slot of {piece}");
            let a = self.of(*piece) as usize;
            assert!(self.starts.len() > a, "no run for availability {a}");
            assert!(self.starts[a] as usize <= i, "piece {piece} before its run");
            if let Some(next) = self.starts.get(a + 1) {
                assert!(i < *next as usize, "piece {piece} after its run");
            }
        }
        let listed = self.slot.iter().filter(|s| **s != NOT_A_CANDIDATE).count();
        assert_eq!(listed, self.order.len(), "slots of pieces not listed");
        assert!(
            self.starts.windows(2).all(|w| w[0] <= w[1]),
            "{:?}",
            self.starts
        );
        assert!(self.starts.iter().all(|s| *s as usize <= self.order.len()));
    }
}

/// The first piece of `run` that `has` holds, looking from a random place
/// and wrapping around.
fn first_held(run: &[u32], has: &Bitfield, rng: &mut SmallRng) -> Option<u32> {
    if run.is_empty() {
        return None;
    }
    let start = rng.random_range(0..run.len());
    run[start..]
        .iter()
        .chain(&run[..start])
        .copied()
        .find(|p| has.get(*p))
}

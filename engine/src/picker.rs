//! Which blocks to ask which peer for: rarest first, partial pieces
//! finished before new ones are started, and an endgame that asks a second
//! peer for the last blocks without a request storm.
//!
//! Sans-IO: [`Picker`] is a value driven by the torrent task. It is the one
//! place that knows the state of every block of every piece still missing.

use std::collections::HashMap;

use metainfo::{BlockRef, Layout};
use peerwire::Bitfield;
use rand::Rng as _;
use rand::SeedableRng as _;
use rand::rngs::SmallRng;

/// A connection, as the picker knows it.
pub type PeerKey = u64;

/// Pieces picked at random, rather than rarest first, until this many are
/// had: the first pieces should complete fast so there is something to
/// trade, and the rarest are often on one slow peer.
const RANDOM_FIRST: u32 = 4;

/// In endgame, a block is asked of at most this many peers at once.
const MAX_ENDGAME_REQUESTERS: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Piece {
    /// Not had, no block asked for.
    Missing,
    /// Some blocks asked for or received; see `Picker::partial`.
    Partial,
    /// Verified and on disk.
    Have,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Block {
    Missing,
    /// Asked of these peers (one, or two in endgame).
    Requested(Vec<PeerKey>),
    /// Received from this peer and handed to the disk.
    Received(PeerKey),
}

#[derive(Clone, Debug)]
struct Partial {
    blocks: Vec<Block>,
    /// Blocks in `Block::Missing`.
    missing: u32,
    /// Blocks in `Block::Received`.
    received: u32,
}

/// What became of a block that a peer delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivered {
    /// New data; the other peers it was asked of should get a cancel.
    New {
        /// Peers to cancel the block at (endgame copies).
        cancel: Vec<PeerKey>,
    },
    /// Already received from someone else, or its piece is already had.
    Duplicate,
}

/// The block-level state of a download.
///
/// Invariants (checked by [`Picker::check_invariants`] in tests): a piece is
/// `Partial` exactly when it has an entry in `partial`; the counts in each
/// entry match its blocks; a block is asked of at most
/// `MAX_ENDGAME_REQUESTERS` peers and never twice of one; `missing_blocks`
/// and `unstarted` count what they say.
#[derive(Debug)]
pub struct Picker {
    layout: Layout,
    pieces: Vec<Piece>,
    availability: Vec<u32>,
    partial: HashMap<u32, Partial>,
    have: u32,
    /// Pieces in `Piece::Missing`.
    unstarted: u32,
    /// Missing blocks over all partial pieces.
    missing_blocks: u32,
    /// At most this many partial pieces at once (the disk's memory bound).
    max_partial: usize,
    rng: SmallRng,
}

impl Picker {
    /// A picker for `layout`, with the pieces in `have` already had, and at
    /// most `max_partial` pieces in progress at once.
    pub fn new(layout: Layout, have: &[bool], max_partial: usize) -> Picker {
        let num = layout.num_pieces() as usize;
        let pieces: Vec<Piece> = (0..num)
            .map(|i| {
                if have.get(i) == Some(&true) {
                    Piece::Have
                } else {
                    Piece::Missing
                }
            })
            .collect();
        let have = pieces.iter().filter(|p| **p == Piece::Have).count() as u32;
        Picker {
            layout,
            availability: vec![0; num],
            partial: HashMap::new(),
            unstarted: num as u32 - have,
            have,
            pieces,
            missing_blocks: 0,
            max_partial: max_partial.max(1),
            rng: SmallRng::from_rng(&mut rand::rng()),
        }
    }

    /// The geometry.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// How many pieces are had.
    pub fn have_count(&self) -> u32 {
        self.have
    }

    /// Whether piece `piece` is had.
    pub fn has(&self, piece: u32) -> bool {
        self.pieces.get(piece as usize) == Some(&Piece::Have)
    }

    /// Every piece had.
    pub fn is_complete(&self) -> bool {
        self.have == self.layout.num_pieces()
    }

    /// The pieces had, as a bitfield.
    pub fn bitfield(&self) -> Bitfield {
        let mut bitfield = Bitfield::new(self.layout.num_pieces());
        for (i, _) in self
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| **p == Piece::Have)
        {
            bitfield.set(i as u32);
        }
        bitfield
    }

    /// The pieces had, as booleans (for resume data).
    pub fn have_vec(&self) -> Vec<bool> {
        self.pieces.iter().map(|p| *p == Piece::Have).collect()
    }

    /// Bytes still missing (pieces not verified).
    pub fn bytes_left(&self) -> u64 {
        self.pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| **p != Piece::Have)
            .map(|(i, _)| u64::from(self.layout.piece_len(i as u32).unwrap_or(0)))
            .sum()
    }

    /// Whether every missing block has been asked for: the endgame.
    pub fn in_endgame(&self) -> bool {
        !self.is_complete() && self.unstarted == 0 && self.missing_blocks == 0
    }

    /// A peer's pieces count towards availability.
    pub fn add_peer(&mut self, has: &Bitfield) {
        for piece in has.iter() {
            if let Some(a) = self.availability.get_mut(piece as usize) {
                *a += 1;
            }
        }
    }

    /// A peer's pieces no longer count (it left).
    pub fn remove_peer(&mut self, has: &Bitfield) {
        for piece in has.iter() {
            if let Some(a) = self.availability.get_mut(piece as usize) {
                *a = a.saturating_sub(1);
            }
        }
    }

    /// A peer announced one more piece.
    pub fn add_have(&mut self, piece: u32) {
        if let Some(a) = self.availability.get_mut(piece as usize) {
            *a += 1;
        }
    }

    /// Whether a peer with `has` has a piece we lack.
    pub fn is_interesting(&self, has: &Bitfield) -> bool {
        has.iter().any(|p| !self.has(p))
    }

    /// Up to `want` blocks to ask of `peer`, which has the pieces in `has`.
    /// The blocks are recorded as requested from `peer`.
    ///
    /// Order: blocks of partial pieces (the nearest to done first), then new
    /// pieces (random for the first few, then rarest first, random among
    /// equals), then, in endgame, blocks already asked of one other peer.
    pub fn pick(&mut self, peer: PeerKey, has: &Bitfield, want: usize) -> Vec<BlockRef> {
        let mut out = Vec::new();
        if want == 0 || self.is_complete() {
            return out;
        }
        // 1. Partial pieces this peer has, nearest to done first.
        let mut partial: Vec<(u32, u32)> = self
            .partial
            .iter()
            .filter(|(piece, p)| p.missing > 0 && has.get(**piece))
            .map(|(piece, p)| (p.missing, *piece))
            .collect();
        partial.sort_unstable();
        for (_, piece) in partial {
            self.take_missing(peer, piece, want, &mut out);
            if out.len() >= want {
                return out;
            }
        }
        // 2. New pieces.
        while out.len() < want && self.partial.len() < self.max_partial {
            let Some(piece) = self.choose_new(has) else {
                break;
            };
            self.start(piece);
            self.take_missing(peer, piece, want, &mut out);
        }
        // 3. Endgame: blocks asked of others, fewest askers first.
        if out.len() < want && self.in_endgame() {
            self.take_endgame(peer, has, want, &mut out);
        }
        out
    }

    fn start(&mut self, piece: u32) {
        let blocks = self.layout.num_blocks(piece).unwrap_or(0);
        self.pieces[piece as usize] = Piece::Partial;
        self.unstarted -= 1;
        self.missing_blocks += blocks;
        self.partial.insert(
            piece,
            Partial {
                blocks: vec![Block::Missing; blocks as usize],
                missing: blocks,
                received: 0,
            },
        );
    }

    fn take_missing(&mut self, peer: PeerKey, piece: u32, want: usize, out: &mut Vec<BlockRef>) {
        let Some(partial) = self.partial.get_mut(&piece) else {
            return;
        };
        for (index, block) in partial.blocks.iter_mut().enumerate() {
            if out.len() >= want {
                break;
            }
            if *block == Block::Missing
                && let Some(r) = self.layout.block(piece, index as u32)
            {
                *block = Block::Requested(vec![peer]);
                partial.missing -= 1;
                self.missing_blocks -= 1;
                out.push(r);
            }
        }
    }

    fn take_endgame(
        &mut self,
        peer: PeerKey,
        has: &Bitfield,
        want: usize,
        out: &mut Vec<BlockRef>,
    ) {
        let mut candidates: Vec<(usize, u32, u32)> = Vec::new();
        for (&piece, partial) in &self.partial {
            if !has.get(piece) {
                continue;
            }
            for (index, block) in partial.blocks.iter().enumerate() {
                if let Block::Requested(askers) = block
                    && askers.len() < MAX_ENDGAME_REQUESTERS
                    && !askers.contains(&peer)
                {
                    candidates.push((askers.len(), piece, index as u32));
                }
            }
        }
        candidates.sort_unstable();
        for (_, piece, index) in candidates {
            if out.len() >= want {
                break;
            }
            let Some(r) = self.layout.block(piece, index) else {
                continue;
            };
            if let Some(Block::Requested(askers)) = self
                .partial
                .get_mut(&piece)
                .and_then(|p| p.blocks.get_mut(index as usize))
            {
                askers.push(peer);
                out.push(r);
            }
        }
    }

    /// A piece to start for a peer with `has`: random among the first few,
    /// then the rarest, random among equals.
    fn choose_new(&mut self, has: &Bitfield) -> Option<u32> {
        let random = self.have < RANDOM_FIRST;
        let mut best: Option<u32> = None;
        let mut best_availability = u32::MAX;
        let mut ties = 0u32;
        for (i, state) in self.pieces.iter().enumerate() {
            let piece = i as u32;
            if *state != Piece::Missing || !has.get(piece) {
                continue;
            }
            let availability = if random { 0 } else { self.availability[i] };
            if availability < best_availability {
                best_availability = availability;
                best = Some(piece);
                ties = 1;
            } else if availability == best_availability {
                // Reservoir sampling: each equal piece is kept with equal
                // chance.
                ties += 1;
                if self.rng.random_range(0..ties) == 0 {
                    best = Some(piece);
                }
            }
        }
        best
    }

    /// `peer` delivered `block`, and the disk took it.
    pub fn delivered(&mut self, peer: PeerKey, block: BlockRef) -> Delivered {
        let Some((partial, index)) = self.locate(block) else {
            return Delivered::Duplicate;
        };
        let state = std::mem::replace(&mut partial.blocks[index], Block::Received(peer));
        match state {
            Block::Received(first) => {
                partial.blocks[index] = Block::Received(first);
                Delivered::Duplicate
            }
            Block::Missing => {
                partial.missing -= 1;
                partial.received += 1;
                self.missing_blocks -= 1;
                Delivered::New { cancel: Vec::new() }
            }
            Block::Requested(askers) => {
                partial.received += 1;
                Delivered::New {
                    cancel: askers.into_iter().filter(|p| *p != peer).collect(),
                }
            }
        }
    }

    /// The request for `block` from `peer` is gone (rejected, cancelled,
    /// choked, timed out or the peer left): the block may be asked of
    /// someone else.
    pub fn withdrawn(&mut self, peer: PeerKey, block: BlockRef) {
        let Some((partial, index)) = self.locate(block) else {
            return;
        };
        if let Block::Requested(askers) = &mut partial.blocks[index] {
            askers.retain(|p| *p != peer);
            if askers.is_empty() {
                partial.blocks[index] = Block::Missing;
                partial.missing += 1;
                self.missing_blocks += 1;
            }
        }
    }

    /// Piece `piece` was verified and written. Returns the peers whose
    /// blocks made it.
    pub fn verified(&mut self, piece: u32) -> Vec<PeerKey> {
        let contributors = self.finish(piece);
        if let Some(state) = self.pieces.get_mut(piece as usize)
            && *state != Piece::Have
        {
            if *state == Piece::Missing {
                self.unstarted -= 1;
            }
            *state = Piece::Have;
            self.have += 1;
        }
        contributors
    }

    /// Piece `piece` failed its hash check: every block must be downloaded
    /// again. Returns the peers whose blocks made it, one entry per block.
    pub fn failed(&mut self, piece: u32) -> Vec<PeerKey> {
        let contributors = self.finish(piece);
        if let Some(state) = self.pieces.get_mut(piece as usize)
            && *state == Piece::Partial
        {
            *state = Piece::Missing;
            self.unstarted += 1;
        }
        contributors
    }

    /// Ends a partial piece, returning who delivered its blocks. Requests
    /// still out for it are left to be cancelled by the caller (they come
    /// back as duplicates or withdrawals and are ignored).
    fn finish(&mut self, piece: u32) -> Vec<PeerKey> {
        let Some(partial) = self.partial.remove(&piece) else {
            return Vec::new();
        };
        self.missing_blocks -= partial.missing;
        partial
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Received(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    fn locate(&mut self, block: BlockRef) -> Option<(&mut Partial, usize)> {
        let index = (block.offset / metainfo::BLOCK_SIZE) as usize;
        let partial = self.partial.get_mut(&block.piece)?;
        (index < partial.blocks.len()).then_some((partial, index))
    }

    /// Asserts the invariants in the type's documentation (for tests).
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let mut missing_blocks = 0;
        for (i, state) in self.pieces.iter().enumerate() {
            assert_eq!(
                *state == Piece::Partial,
                self.partial.contains_key(&(i as u32)),
                "piece {i}"
            );
        }
        for (piece, partial) in &self.partial {
            let missing = partial
                .blocks
                .iter()
                .filter(|b| **b == Block::Missing)
                .count() as u32;
            let received = partial
                .blocks
                .iter()
                .filter(|b| matches!(b, Block::Received(_)))
                .count() as u32;
            assert_eq!(missing, partial.missing, "piece {piece}");
            assert_eq!(received, partial.received, "piece {piece}");
            for block in &partial.blocks {
                if let Block::Requested(askers) = block {
                    assert!(!askers.is_empty() && askers.len() <= MAX_ENDGAME_REQUESTERS);
                    let mut sorted = askers.clone();
                    sorted.sort_unstable();
                    sorted.dedup();
                    assert_eq!(sorted.len(), askers.len(), "asked twice of one peer");
                }
            }
            missing_blocks += missing;
        }
        assert_eq!(missing_blocks, self.missing_blocks);
        let unstarted = self.pieces.iter().filter(|p| **p == Piece::Missing).count() as u32;
        assert_eq!(unstarted, self.unstarted);
        let have = self.pieces.iter().filter(|p| **p == Piece::Have).count() as u32;
        assert_eq!(have, self.have);
    }
}

//! Which blocks to ask which peer for: rarest first, partial pieces
//! finished before new ones are started, and an endgame that asks a second
//! peer for the last blocks without a request storm.
//!
//! Sans-IO: [`Picker`] is a value driven by the torrent task. It is the one
//! place that knows the state of every block of every piece still missing.

use std::collections::HashMap;

use metainfo::{BlockRef, Layout};
use peerwire::Bitfield;
use rand::SeedableRng as _;
use rand::rngs::SmallRng;

mod rarity;
use rarity::Rarity;

/// A connection, as the picker knows it.
pub type PeerKey = u64;

/// Pieces picked at random, rather than rarest first, until this many are
/// had: the first pieces should complete fast so there is something to
/// trade, and the rarest are often on one slow peer.
const RANDOM_FIRST: u32 = 4;

/// In endgame, a block is asked of at most this many peers at once, not
/// counting peers found slow ...
const MAX_ENDGAME_REQUESTERS: usize = 2;
/// ... and of at most this many counting them.
const MAX_ASKERS: usize = 4;
/// In endgame, blocks a peer may have out that another peer was asked for
/// too. Without a bound, a fast peer that runs out of work copies its whole
/// pipeline (up to a thousand blocks) from the others' queues, and many of
/// those copies come twice: the cancels reach the other peers too late. In
/// `cargo xtask bench --scenario four` (1 GiB, four seeders), btc received
/// 18.6–22.0 MB twice without the bound, 3.3–8.0 MB at 32 and 0.9–2.3 MB
/// at 8, in the same time (1.34–1.46 s at 8, 1.37–1.64 s without).
const MAX_ENDGAME_COPIES: usize = 8;
/// How far past its last piece a peer picked with [`Picker::pick_after`]
/// looks for the next one to start, before it takes any piece: a bound on
/// the work of a pick.
const FOLLOW_AHEAD: u32 = 64;

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
/// `MAX_ASKERS` peers and never twice of one; `missing_blocks`
/// and `unstarted` count what they say; the candidates are exactly the
/// wanted pieces in `Piece::Missing`, in order of availability.
#[derive(Debug)]
pub struct Picker {
    layout: Layout,
    pieces: Vec<Piece>,
    /// How many peers have each piece, and the pieces that may be started,
    /// rarest first.
    rarity: Rarity,
    partial: HashMap<u32, Partial>,
    have: u32,
    /// Pieces to download (those of the wanted files); all by default.
    wanted: Vec<bool>,
    /// Wanted pieces, their bytes, and wanted pieces had.
    wanted_count: u32,
    wanted_bytes: u64,
    have_wanted: u32,
    /// Bytes of the wanted pieces had.
    have_wanted_bytes: u64,
    /// Wanted pieces in `Piece::Missing`.
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
        let total = layout.total_length();
        let mut picker = Picker {
            layout,
            rarity: Rarity::new(num),
            partial: HashMap::new(),
            unstarted: num as u32 - have,
            have,
            wanted: vec![true; num],
            wanted_count: num as u32,
            wanted_bytes: total,
            have_wanted: have,
            have_wanted_bytes: 0,
            pieces,
            missing_blocks: 0,
            max_partial: max_partial.max(1),
            rng: SmallRng::from_rng(&mut rand::rng()),
        };
        picker.have_wanted_bytes = picker.bytes(|state, wanted| wanted && state == Piece::Have);
        picker.rebuild_candidates();
        picker
    }

    /// The wanted pieces in `Missing`: those that may be started.
    fn candidates(&self) -> Vec<u32> {
        (0..self.layout.num_pieces())
            .filter(|p| self.wanted[*p as usize] && self.pieces[*p as usize] == Piece::Missing)
            .collect()
    }

    fn rebuild_candidates(&mut self) {
        let candidates = self.candidates();
        self.rarity.set_candidates(candidates, &mut self.rng);
    }

    /// Downloads only the pieces of the files flagged in `files` (one flag
    /// per file of the layout): a piece is wanted if any wanted file has a
    /// byte in it. Call before any piece is picked.
    pub fn want_files(&mut self, files: &[bool]) {
        let mut wanted = vec![false; self.pieces.len()];
        for (file, _) in files.iter().enumerate().filter(|(_, w)| **w) {
            for piece in self.layout.file_pieces(file) {
                if let Some(w) = wanted.get_mut(piece as usize) {
                    *w = true;
                }
            }
        }
        self.wanted = wanted;
        self.wanted_count = self.wanted.iter().filter(|w| **w).count() as u32;
        self.wanted_bytes = self.bytes(|_, wanted| wanted);
        self.have_wanted = self.count(|state, wanted| wanted && state == Piece::Have);
        self.have_wanted_bytes = self.bytes(|state, wanted| wanted && state == Piece::Have);
        self.unstarted = self.count(|state, wanted| wanted && state == Piece::Missing);
        self.rebuild_candidates();
    }

    fn count(&self, pred: impl Fn(Piece, bool) -> bool) -> u32 {
        self.pieces
            .iter()
            .zip(&self.wanted)
            .filter(|(state, wanted)| pred(**state, **wanted))
            .count() as u32
    }

    /// Bytes of the pieces for which `pred(state, wanted)` holds.
    fn bytes(&self, pred: impl Fn(Piece, bool) -> bool) -> u64 {
        (0..self.layout.num_pieces())
            .filter(|p| pred(self.pieces[*p as usize], self.wanted[*p as usize]))
            .map(|p| u64::from(self.layout.piece_len(p).unwrap_or(0)))
            .sum()
    }

    /// Whether piece `piece` is to be downloaded.
    pub fn is_wanted(&self, piece: u32) -> bool {
        self.wanted.get(piece as usize) == Some(&true)
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

    /// Every wanted piece had (every piece, unless files were chosen).
    pub fn is_complete(&self) -> bool {
        self.have_wanted == self.wanted_count
    }

    /// Bytes of the wanted pieces.
    pub fn bytes_wanted(&self) -> u64 {
        self.wanted_bytes
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

    /// Bytes still missing (wanted pieces not verified).
    pub fn bytes_left(&self) -> u64 {
        self.wanted_bytes - self.have_wanted_bytes
    }

    /// Bytes of every piece not had, wanted or not: what a tracker is told
    /// is `left`, so that a download of chosen files is not taken for a
    /// seed.
    pub fn bytes_missing(&self) -> u64 {
        let layout = &self.layout;
        let piece_length = u64::from(layout.piece_length());
        let mut had = u64::from(self.have) * piece_length;
        let last = layout.num_pieces().saturating_sub(1);
        if self.has(last) {
            had -= piece_length - u64::from(layout.piece_len(last).unwrap_or(0));
        }
        layout.total_length() - had
    }

    /// Whether every missing block has been asked for: the endgame.
    pub fn in_endgame(&self) -> bool {
        !self.is_complete() && self.unstarted == 0 && self.missing_blocks == 0
    }

    /// A peer's pieces count towards availability.
    pub fn add_peer(&mut self, has: &Bitfield) {
        for piece in has.iter() {
            self.add_have(piece);
        }
    }

    /// A peer's pieces no longer count (it left).
    pub fn remove_peer(&mut self, has: &Bitfield) {
        for piece in has.iter() {
            self.rarity.lower(piece);
        }
    }

    /// A peer announced one more piece.
    pub fn add_have(&mut self, piece: u32) {
        self.rarity.raise(piece);
    }

    /// Whether a peer with `has` has a piece we lack.
    pub fn is_interesting(&self, has: &Bitfield) -> bool {
        if has.is_full() {
            // A seed (the usual case, asked after every piece): no scan.
            return !self.is_complete();
        }
        has.iter().any(|p| !self.has(p) && self.is_wanted(p))
    }

    /// Up to `want` blocks to ask of `peer`, which has the pieces in `has`.
    /// The blocks are recorded as requested from `peer`.
    ///
    /// Order: blocks of partial pieces (the nearest to done first), then new
    /// pieces (random for the first few, then rarest first, random among
    /// equals), then, in endgame, blocks already asked of one other peer.
    pub fn pick(&mut self, peer: PeerKey, has: &Bitfield, want: usize) -> Vec<BlockRef> {
        self.pick_judging(peer, has, want, |_| false)
    }

    /// As [`Picker::pick`], but in endgame the peers for which `is_slow`
    /// holds do not count against a block's two askers: a block that two
    /// slow peers were asked for can still be asked of a fast one, instead
    /// of waiting on them.
    pub fn pick_judging(
        &mut self,
        peer: PeerKey,
        has: &Bitfield,
        want: usize,
        is_slow: impl Fn(PeerKey) -> bool,
    ) -> Vec<BlockRef> {
        self.pick_inner(peer, has, want, is_slow, None)
    }

    /// As [`Picker::pick_judging`], for a peer best asked for adjacent
    /// pieces: a web seed, which answers a run of them with one HTTP
    /// request. New pieces are, before any other, the first among the next
    /// few after `after` (the last piece asked of it, if any) that can be
    /// started and is among the rarest, then after each other.
    pub fn pick_after(
        &mut self,
        peer: PeerKey,
        has: &Bitfield,
        want: usize,
        after: Option<u32>,
        is_slow: impl Fn(PeerKey) -> bool,
    ) -> Vec<BlockRef> {
        self.pick_inner(peer, has, want, is_slow, Some(after))
    }

    /// Picks as [`Picker::pick_judging`] says; with `follow`, new pieces
    /// follow the one given, or the last one started.
    fn pick_inner(
        &mut self,
        peer: PeerKey,
        has: &Bitfield,
        want: usize,
        is_slow: impl Fn(PeerKey) -> bool,
        mut follow: Option<Option<u32>>,
    ) -> Vec<BlockRef> {
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
            let next = follow
                .flatten()
                .and_then(|last| self.startable_after(last, has));
            let Some(piece) = next.or_else(|| self.choose_new(has)) else {
                break;
            };
            if follow.is_some() {
                follow = Some(Some(piece));
            }
            self.start(piece);
            self.take_missing(peer, piece, want, &mut out);
        }
        // 3. Endgame: blocks asked of others, fewest askers first.
        if out.len() < want && self.in_endgame() {
            self.take_endgame(peer, has, want, &is_slow, &mut out);
        }
        out
    }

    fn start(&mut self, piece: u32) {
        let blocks = self.layout.num_blocks(piece).unwrap_or(0);
        self.pieces[piece as usize] = Piece::Partial;
        self.rarity.remove(piece);
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
        is_slow: &impl Fn(PeerKey) -> bool,
        out: &mut Vec<BlockRef>,
    ) {
        let mut candidates: Vec<(usize, u32, u32)> = Vec::new();
        let mut shared = 0;
        for (&piece, partial) in &self.partial {
            for (index, block) in partial.blocks.iter().enumerate() {
                let Block::Requested(askers) = block else {
                    continue;
                };
                if askers.contains(&peer) {
                    shared += usize::from(askers.len() > 1);
                    continue;
                }
                let counted = askers.iter().filter(|a| !is_slow(**a)).count();
                if counted < MAX_ENDGAME_REQUESTERS && askers.len() < MAX_ASKERS && has.get(piece) {
                    candidates.push((counted, piece, index as u32));
                }
            }
        }
        let want = want.min(out.len() + MAX_ENDGAME_COPIES.saturating_sub(shared));
        // Only the best few are taken: those are chosen, then sorted,
        // rather than sorting every candidate (thousands of blocks at the
        // start of an endgame with deep pipelines, at every top-up).
        let take = want.saturating_sub(out.len());
        if take == 0 {
            return;
        }
        if candidates.len() > take {
            candidates.select_nth_unstable(take);
            candidates.truncate(take);
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

    /// The first piece among the [`FOLLOW_AHEAD`] after `last` that `has`
    /// holds and may be started, and that is as rare as any it holds: a
    /// piece others have too is better fetched from them, so that a web
    /// seed, often a swarm's slowest source, sends what only it has.
    fn startable_after(&mut self, last: u32, has: &Bitfield) -> Option<u32> {
        let rarest = self.rarity.rarest(has, &mut self.rng)?;
        let floor = self.rarity.of(rarest);
        let end = last
            .saturating_add(FOLLOW_AHEAD)
            .min(self.layout.num_pieces().saturating_sub(1));
        (last.saturating_add(1)..=end)
            .find(|p| self.rarity.contains(*p) && has.get(*p) && self.rarity.of(*p) <= floor)
    }

    /// A piece to start for a peer with `has`: any at random among the
    /// first few, then the rarest, at random among equally rare ones (so
    /// that leechers of one seed do not all fetch the same pieces).
    fn choose_new(&mut self, has: &Bitfield) -> Option<u32> {
        if self.have < RANDOM_FIRST {
            self.rarity.any(has, &mut self.rng)
        } else {
            self.rarity.rarest(has, &mut self.rng)
        }
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

    /// `peer` is gone: every block still asked of it may be asked of others,
    /// including blocks whose data was on its way to the disk when the
    /// connection ended (their answer is lost with it).
    pub fn peer_gone(&mut self, peer: PeerKey) {
        for partial in self.partial.values_mut() {
            for block in &mut partial.blocks {
                if let Block::Requested(askers) = block {
                    askers.retain(|p| *p != peer);
                    if askers.is_empty() {
                        *block = Block::Missing;
                        partial.missing += 1;
                        self.missing_blocks += 1;
                    }
                }
            }
        }
    }

    /// Piece `piece` was verified and written. Returns the peers whose
    /// blocks made it.
    pub fn verified(&mut self, piece: u32) -> Vec<PeerKey> {
        let contributors = self.finish(piece);
        let wanted = self.is_wanted(piece);
        if let Some(state) = self.pieces.get_mut(piece as usize)
            && *state != Piece::Have
        {
            if *state == Piece::Missing && wanted {
                self.unstarted -= 1;
            }
            if *state == Piece::Missing {
                self.rarity.remove(piece);
            }
            *state = Piece::Have;
            self.have += 1;
            if wanted {
                self.have_wanted += 1;
                self.have_wanted_bytes += u64::from(self.layout.piece_len(piece).unwrap_or(0));
            }
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
            if self.wanted[piece as usize] {
                self.unstarted += 1;
                self.rarity.insert(piece);
            }
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
                    assert!(!askers.is_empty() && askers.len() <= MAX_ASKERS);
                    let mut sorted = askers.clone();
                    sorted.sort_unstable();
                    sorted.dedup();
                    assert_eq!(sorted.len(), askers.len(), "asked twice of one peer");
                }
            }
            missing_blocks += missing;
        }
        assert_eq!(missing_blocks, self.missing_blocks);
        let unstarted = self.count(|state, wanted| wanted && state == Piece::Missing);
        assert_eq!(unstarted, self.unstarted);
        assert_eq!(
            self.count(|state, wanted| wanted && state == Piece::Have),
            self.have_wanted
        );
        let have = self.pieces.iter().filter(|p| **p == Piece::Have).count() as u32;
        assert_eq!(have, self.have);
        assert_eq!(
            self.have_wanted_bytes,
            self.bytes(|state, wanted| wanted && state == Piece::Have)
        );
        self.rarity.check_invariants(self.candidates());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::{BTreeMap, HashSet};

    use proptest::prelude::*;

    use super::*;

    fn layout(pieces: u32, piece_length: u32) -> Layout {
        Layout::new(
            u64::from(piece_length),
            [u64::from(pieces) * u64::from(piece_length) - 100],
        )
        .unwrap()
    }

    #[test]
    fn bytes_missing_counts_every_piece_not_had_the_short_last_one_too() {
        let layout = layout(10, BLOCK);
        let total = layout.total_length();
        let mut have = vec![false; 10];
        assert_eq!(
            Picker::new(layout.clone(), &have, 100).bytes_missing(),
            total
        );
        have[..4].fill(true);
        let picker = Picker::new(layout.clone(), &have, 100);
        assert_eq!(picker.bytes_missing(), total - 4 * u64::from(BLOCK));
        have[9] = true;
        let picker = Picker::new(layout.clone(), &have, 100);
        assert_eq!(
            picker.bytes_missing(),
            total - 4 * u64::from(BLOCK) - u64::from(BLOCK - 100)
        );
        let picker = Picker::new(layout, &[true; 10], 100);
        assert_eq!(picker.bytes_missing(), 0);
    }

    #[test]
    fn a_web_seed_is_given_runs_of_adjacent_pieces() {
        let layout = layout(200, BLOCK);
        let mut picker = Picker::new(layout, &[false; 200], 1000);
        let all = Bitfield::full(200);
        picker.add_peer(&all);
        // Another peer takes a few pieces at random.
        let other = picker.pick(1, &all, 20);
        let taken: HashSet<u32> = other.iter().map(|b| b.piece).collect();
        // The web seed's pieces follow the last one asked of it, skipping
        // those already started (20 of the 64 it looks at, at most), and
        // the next pick goes on from there.
        let free_after = |last: u32| (last + 1..200).filter(|p| !taken.contains(p));
        let first = picker.pick_after(2, &all, 10, Some(50), |_| false);
        let pieces: Vec<u32> = first.iter().map(|b| b.piece).collect();
        assert_eq!(pieces, free_after(50).take(10).collect::<Vec<_>>());
        let more = picker.pick_after(2, &all, 1, Some(pieces[9]), |_| false);
        assert_eq!(more[0].piece, free_after(pieces[9]).next().unwrap());
        // Past its look-ahead, or at the end, any piece will do.
        let far = picker.pick_after(2, &all, 1, Some(199), |_| false);
        assert_eq!(far.len(), 1);
        picker.check_invariants();
    }

    #[test]
    fn rarest_pieces_come_first_once_a_few_are_had() {
        let layout = layout(10, BLOCK);
        let mut have = vec![false; 10];
        have[..4].fill(true);
        let mut picker = Picker::new(layout, &have, 100);
        // Three peers have everything; one more has piece 7 and 8 only.
        for _ in 0..3 {
            picker.add_peer(&Bitfield::full(10));
        }
        let mut some = Bitfield::new(10);
        some.set(7);
        some.set(8);
        picker.add_peer(&some);
        // Pieces 4, 5, 6 and 9 are held by 3 peers, 7 and 8 by 4: the rarest
        // first.
        let picked: HashSet<u32> = picker
            .pick(1, &Bitfield::full(10), 4)
            .iter()
            .map(|b| b.piece)
            .collect();
        assert_eq!(picked, HashSet::from([4, 5, 6, 9]));
        picker.check_invariants();
    }

    const BLOCK: u32 = metainfo::BLOCK_SIZE;

    #[test]
    fn partial_pieces_are_finished_before_new_ones_start() {
        let layout = layout(8, 4 * BLOCK);
        let mut picker = Picker::new(layout, &[], 100);
        let all = Bitfield::full(8);
        picker.add_peer(&all);
        let first = picker.pick(1, &all, 2);
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].piece, first[1].piece);
        // Peer 1 leaves: its blocks go back, and the next peer finishes
        // that piece before starting another.
        for block in &first {
            picker.withdrawn(1, *block);
        }
        let next = picker.pick(2, &all, 4);
        assert!(next.iter().all(|b| b.piece == first[0].piece), "{next:?}");
        picker.check_invariants();
    }

    #[test]
    fn endgame_asks_one_more_peer_and_cancels_the_copy() {
        let layout = layout(1, 2 * BLOCK);
        let mut picker = Picker::new(layout, &[], 100);
        let all = Bitfield::full(1);
        let blocks = picker.pick(1, &all, 10);
        assert_eq!(blocks.len(), 2);
        assert!(picker.in_endgame());
        // A second peer gets the same two blocks; a third gets none (at
        // most two askers per block).
        let copies = picker.pick(2, &all, 10);
        assert_eq!(copies.len(), 2);
        assert!(picker.pick(3, &all, 10).is_empty());
        assert!(
            picker.pick(1, &all, 10).is_empty(),
            "never twice of one peer"
        );
        assert_eq!(
            picker.delivered(2, blocks[0]),
            Delivered::New { cancel: vec![1] }
        );
        assert_eq!(picker.delivered(1, blocks[0]), Delivered::Duplicate);
        picker.check_invariants();
        assert_eq!(
            picker.delivered(1, blocks[1]),
            Delivered::New { cancel: vec![2] }
        );
        assert_eq!(picker.verified(0), vec![2, 1]);
        assert!(picker.is_complete());
        assert!(picker.pick(2, &all, 10).is_empty());
        picker.check_invariants();
    }

    #[test]
    fn a_block_two_slow_peers_hold_is_still_asked_of_a_fast_one() {
        let layout = layout(1, 2 * BLOCK);
        let mut picker = Picker::new(layout, &[], 100);
        let all = Bitfield::full(1);
        // Slow peers 1 and 2 hold both blocks.
        assert_eq!(picker.pick(1, &all, 10).len(), 2);
        assert_eq!(picker.pick(2, &all, 10).len(), 2);
        // Judged by rate alone, a third peer would wait on them.
        assert!(picker.pick(3, &all, 10).is_empty());
        let slow = |k: PeerKey| k == 1 || k == 2;
        let fast = picker.pick_judging(3, &all, 10, slow);
        assert_eq!(fast.len(), 2, "the fast peer is asked too");
        picker.check_invariants();
        // A second fast peer may join; then two askers count and four
        // in all hold each block: nobody else is asked.
        assert_eq!(picker.pick_judging(4, &all, 10, slow).len(), 2);
        assert!(
            picker.pick_judging(5, &all, 10, |_| true).is_empty(),
            "never more than {MAX_ASKERS} askers"
        );
        assert!(picker.pick_judging(5, &all, 10, slow).is_empty());
        // The fast copy arrives: the slow ones and the other copy are
        // cancelled.
        assert_eq!(
            picker.delivered(3, fast[0]),
            Delivered::New {
                cancel: vec![1, 2, 4]
            }
        );
        picker.check_invariants();
    }

    #[test]
    fn endgame_copies_per_peer_are_bounded() {
        let blocks = 3 * MAX_ENDGAME_COPIES as u32;
        let layout = layout(1, blocks * BLOCK);
        let mut picker = Picker::new(layout, &[], 100);
        let all = Bitfield::full(1);
        let first = picker.pick(1, &all, 1000);
        assert_eq!(first.len(), blocks as usize);
        assert!(picker.in_endgame());
        let copies = picker.pick(2, &all, 1000);
        // The first blocks among those with the fewest askers.
        assert_eq!(copies, first[..MAX_ENDGAME_COPIES]);
        assert!(picker.pick(2, &all, 1000).is_empty(), "at the bound");
        // A copy delivered (and cancelled at peer 1) makes room for one.
        assert_eq!(
            picker.delivered(2, copies[0]),
            Delivered::New { cancel: vec![1] }
        );
        let more = picker.pick(2, &all, 1000);
        assert_eq!(more, first[MAX_ENDGAME_COPIES..=MAX_ENDGAME_COPIES]);
        // Another peer has its own bound, and is asked for blocks that
        // have one asker, not those that have two.
        assert_eq!(
            picker.pick(3, &all, 1000),
            first[MAX_ENDGAME_COPIES + 1..=2 * MAX_ENDGAME_COPIES]
        );
        picker.check_invariants();
    }

    #[test]
    fn a_failed_piece_is_downloaded_again_and_names_its_senders() {
        let layout = layout(2, 2 * BLOCK);
        let mut picker = Picker::new(layout, &[], 100);
        let all = Bitfield::full(2);
        let blocks = picker.pick(7, &all, 2);
        for block in &blocks {
            picker.delivered(7, *block);
        }
        assert_eq!(picker.failed(blocks[0].piece), vec![7, 7]);
        picker.check_invariants();
        let again = picker.pick(8, &all, 4);
        assert!(again.iter().any(|b| b.piece == blocks[0].piece));
        assert_eq!(picker.have_count(), 0);
        picker.check_invariants();
    }

    #[test]
    fn only_pieces_of_wanted_files_are_picked_and_they_complete_the_download() {
        // Two files of 2.5 pieces each: piece 2 holds both.
        let layout = Layout::new(u64::from(BLOCK), [40_960, 40_960]).unwrap();
        let mut picker = Picker::new(layout, &[], 100);
        picker.want_files(&[false, true]);
        let all = Bitfield::full(5);
        assert!(picker.is_interesting(&all));
        let picked: HashSet<u32> = picker.pick(1, &all, 100).iter().map(|b| b.piece).collect();
        assert_eq!(picked, HashSet::from([2, 3, 4]));
        for piece in [2, 3, 4] {
            picker.verified(piece);
        }
        assert!(picker.is_complete());
        assert_eq!(picker.bytes_left(), 0);
        assert!(!picker.is_interesting(&all), "nothing more is wanted");
        assert_eq!(picker.have_count(), 3);
        picker.check_invariants();
    }

    #[test]
    fn the_number_of_partial_pieces_is_bounded() {
        let layout = layout(10, 4 * BLOCK);
        let mut picker = Picker::new(layout, &[], 2);
        let all = Bitfield::full(10);
        let picked = picker.pick(1, &all, 100);
        let pieces: HashSet<u32> = picked.iter().map(|b| b.piece).collect();
        assert_eq!(pieces.len(), 2);
        assert_eq!(picked.len(), 8);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Pick { peer: u64, want: usize },
        Deliver { peer: u64, nth: usize },
        Withdraw { peer: u64, nth: usize },
        Gone { peer: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..4u64, 1..20usize).prop_map(|(peer, want)| Op::Pick { peer, want }),
            (0..4u64, 0..50usize).prop_map(|(peer, nth)| Op::Deliver { peer, nth }),
            (0..4u64, 0..50usize).prop_map(|(peer, nth)| Op::Withdraw { peer, nth }),
            (0..4u64).prop_map(|peer| Op::Gone { peer }),
        ]
    }

    proptest! {
        /// Whatever peers do, the invariants hold, a block is never asked
        /// twice of one peer, and the download completes once every peer
        /// delivers what it was asked.
        #[test]
        fn any_sequence_keeps_the_books_straight_and_completes(
            pieces in 1..12u32,
            blocks_per_piece in 1..4u32,
            ops in proptest::collection::vec(op(), 0..200),
            max_partial in 1..6usize,
        ) {
            let layout = Layout::new(
                u64::from(blocks_per_piece * BLOCK),
                [u64::from(pieces * blocks_per_piece * BLOCK) - 1],
            ).unwrap();
            let mut picker = Picker::new(layout.clone(), &[], max_partial);
            let all = Bitfield::full(pieces);
            for _ in 0..4 {
                picker.add_peer(&all);
            }
            // What each peer was asked and has not answered.
            let mut asked: BTreeMap<u64, Vec<BlockRef>> = BTreeMap::new();
            // Blocks of each piece received.
            let mut received: BTreeMap<u32, HashSet<u32>> = BTreeMap::new();
            let deliver = |picker: &mut Picker, peer: u64, block: BlockRef,
                               received: &mut BTreeMap<u32, HashSet<u32>>,
                               asked: &mut BTreeMap<u64, Vec<BlockRef>>| {
                if let Delivered::New { cancel } = picker.delivered(peer, block) {
                    for other in cancel {
                        let list = asked.entry(other).or_default();
                        list.retain(|b| *b != block);
                    }
                    let got = received.entry(block.piece).or_default();
                    got.insert(block.offset);
                    if got.len() as u32 == layout.num_blocks(block.piece).unwrap() {
                        received.remove(&block.piece);
                        picker.verified(block.piece);
                    }
                }
            };
            for op in ops {
                match op {
                    Op::Pick { peer, want } => {
                        let picked = picker.pick(peer, &all, want);
                        let list = asked.entry(peer).or_default();
                        for block in picked {
                            prop_assert!(!list.contains(&block), "asked twice of {}", peer);
                            list.push(block);
                        }
                    }
                    Op::Deliver { peer, nth } => {
                        let list = asked.entry(peer).or_default();
                        if !list.is_empty() {
                            let block = list.remove(nth % list.len());
                            deliver(&mut picker, peer, block, &mut received, &mut asked);
                        }
                    }
                    Op::Gone { peer } => {
                        asked.remove(&peer);
                        picker.peer_gone(peer);
                    }
                    Op::Withdraw { peer, nth } => {
                        let list = asked.entry(peer).or_default();
                        if !list.is_empty() {
                            let block = list.remove(nth % list.len());
                            picker.withdrawn(peer, block);
                        }
                    }
                }
                picker.check_invariants();
            }
            // Now every peer answers everything, and asks until done.
            for _ in 0..10_000 {
                if picker.is_complete() {
                    break;
                }
                for peer in 0..4 {
                    let picked = picker.pick(peer, &all, 8);
                    asked.entry(peer).or_default().extend(picked);
                    while let Some(block) = asked.entry(peer).or_default().pop() {
                        deliver(&mut picker, peer, block, &mut received, &mut asked);
                    }
                }
                picker.check_invariants();
            }
            prop_assert!(picker.is_complete());
            prop_assert_eq!(picker.bytes_left(), 0);
        }
    }

    #[test]
    fn equally_rare_pieces_are_started_at_random() {
        let mut have = vec![false; 100];
        have[..RANDOM_FIRST as usize].fill(true);
        let firsts: HashSet<u32> = (0..20)
            .map(|_| {
                let mut picker = Picker::new(layout(100, BLOCK), &have, 10);
                picker.add_peer(&Bitfield::full(100));
                picker.pick(1, &Bitfield::full(100), 1)[0].piece
            })
            .collect();
        // Twenty leechers of one seed do not all start with the same piece
        // (all twenty alike by chance: one in 96^19).
        assert!(firsts.len() > 1, "{firsts:?}");
    }

    #[derive(Clone, Debug)]
    enum Swarm {
        Join(Vec<bool>),
        Leave(usize),
        Have(usize, u32),
        Pick(usize, usize),
        Verify(u32),
        Fail(u32),
    }

    fn swarm_op(pieces: u32) -> impl Strategy<Value = Swarm> {
        prop_oneof![
            proptest::collection::vec(any::<bool>(), pieces as usize).prop_map(Swarm::Join),
            (0..8usize).prop_map(Swarm::Leave),
            (0..8usize, 0..pieces).prop_map(|(peer, piece)| Swarm::Have(peer, piece)),
            (0..8usize, 1..40usize).prop_map(|(peer, want)| Swarm::Pick(peer, want)),
            (0..pieces).prop_map(Swarm::Verify),
            (0..pieces).prop_map(Swarm::Fail),
        ]
    }

    proptest! {
        /// Peers come and go with any pieces: the rarest-first list stays
        /// right, and a new piece is never started while a rarer one the
        /// peer has waits (once the first few random pieces are had).
        #[test]
        fn the_rarest_piece_a_peer_has_is_started_first(
            ops in (1..40u32).prop_flat_map(|n| {
                (
                    Just(n),
                    proptest::collection::vec(swarm_op(n), 0..120),
                    proptest::collection::vec(any::<bool>(), n as usize),
                )
            }),
        ) {
            let (pieces, ops, had) = ops;
            let layout = Layout::new(
                u64::from(2 * BLOCK),
                [u64::from(pieces * 2 * BLOCK)],
            ).unwrap();
            let mut picker = Picker::new(layout, &had, 1000);
            picker.check_invariants();
            let mut peers: Vec<Bitfield> = Vec::new();
            for op in ops {
                match op {
                    Swarm::Join(bits) => {
                        let mut has = Bitfield::new(pieces);
                        for (piece, _) in bits.iter().enumerate().filter(|(_, b)| **b) {
                            has.set(piece as u32);
                        }
                        picker.add_peer(&has);
                        peers.push(has);
                    }
                    Swarm::Leave(i) if !peers.is_empty() => {
                        let has = peers.remove(i % peers.len());
                        picker.remove_peer(&has);
                    }
                    Swarm::Have(i, piece) if !peers.is_empty() => {
                        let n = peers.len();
                        if peers[i % n].set(piece) {
                            picker.add_have(piece);
                        }
                    }
                    Swarm::Pick(i, want) if !peers.is_empty() => {
                        let has = peers[i % peers.len()].clone();
                        let before: Vec<Piece> = picker.pieces.clone();
                        let random = picker.have < RANDOM_FIRST;
                        let picked = picker.pick(i as u64, &has, want);
                        let started: HashSet<u32> = picked
                            .iter()
                            .map(|b| b.piece)
                            .filter(|p| before[*p as usize] == Piece::Missing)
                            .collect();
                        for piece in &started {
                            prop_assert!(has.get(*piece));
                        }
                        let waiting = (0..pieces).filter(|p| {
                            picker.pieces[*p as usize] == Piece::Missing && has.get(*p)
                        });
                        if !random {
                            for waits in waiting {
                                for piece in &started {
                                    prop_assert!(
                                        picker.rarity.of(*piece) <= picker.rarity.of(waits),
                                        "started {} over rarer {}", piece, waits
                                    );
                                }
                            }
                        }
                    }
                    Swarm::Verify(piece) => {
                        picker.verified(piece);
                    }
                    Swarm::Fail(piece) => {
                        picker.failed(piece);
                    }
                    _ => {}
                }
                picker.check_invariants();
            }
        }
    }
}

//! Blocks in, whole pieces out: pieces are assembled in memory, within a
//! bound on the bytes held.

use std::collections::HashMap;

use metainfo::{BLOCK_SIZE, BlockRef, Layout};

/// What adding a block did.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// Stored; the piece still lacks blocks.
    Partial,
    /// This block was already there (endgame duplicates); nothing changed.
    Duplicate,
    /// The piece is whole: here are its bytes, to verify and write.
    Complete(Vec<u8>),
}

/// A block that cannot be taken.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssemblyError {
    /// Not a block of this torrent (wrong piece, offset or length), or data
    /// of another length than the block's.
    #[error("not a block of this torrent: {0:?}")]
    NotABlock(BlockRef),
    /// Starting this piece would pass the memory bound: finish or drop other
    /// pieces first. This is the back-pressure signal.
    #[error("{held} bytes of unfinished pieces are held; the limit is {limit}")]
    Full {
        /// Bytes held now.
        held: usize,
        /// The limit.
        limit: usize,
    },
}

#[derive(Debug)]
struct Pending {
    data: Vec<u8>,
    /// Who sent each block held (see [`Assembler::add_from`]).
    senders: Vec<Option<u64>>,
    missing: usize,
}

/// Unfinished pieces in memory.
///
/// Pieces are assembled in memory rather than written block by block and
/// read back: a piece is hashed from the bytes received, with no read, and
/// written in one pass; the cost is memory, bounded here by `limit`.
#[derive(Debug)]
pub struct Assembler {
    layout: Layout,
    pending: HashMap<u32, Pending>,
    held: usize,
    limit: usize,
    /// Who sent the blocks of the piece completed last, block by block.
    last_senders: Vec<u64>,
    /// Buffers of pieces done with (see [`Assembler::recycle`]), at most
    /// [`SPARE_BUFFERS`], for the next pieces to start in.
    spare: Vec<Vec<u8>>,
}

/// Piece buffers kept for reuse. A new piece starts in a spare buffer
/// rather than a fresh, zeroed one: the zeroing (a memset of every byte
/// downloaded) and the page faults of fresh memory are saved, and a piece
/// done with is usually followed at once by the next one. Spare buffers
/// count against the bound on bytes held, as unfinished pieces do.
const SPARE_BUFFERS: usize = 2;

impl Assembler {
    /// An assembler that holds at most `limit` bytes of unfinished pieces
    /// (at least one piece, whatever the limit).
    pub fn new(layout: Layout, limit: usize) -> Self {
        Assembler {
            layout,
            pending: HashMap::new(),
            held: 0,
            limit,
            last_senders: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Gives back the buffer of a piece returned by [`Added::Complete`] once
    /// it is written, for a later piece to be assembled in. Optional: a
    /// buffer not given back is simply freed.
    pub fn recycle(&mut self, buffer: Vec<u8>) {
        let room = self.limit.saturating_sub(self.held + self.spare_bytes());
        if self.spare.len() < SPARE_BUFFERS && !buffer.is_empty() && buffer.len() <= room {
            self.spare.push(buffer);
        }
    }

    /// Bytes of the spare buffers.
    fn spare_bytes(&self) -> usize {
        self.spare.iter().map(Vec::len).sum()
    }

    /// A buffer of `len` bytes for a new piece: a spare one if one is that
    /// long, otherwise a new one. A spare one still holds an earlier
    /// piece's bytes; every byte is overwritten before the piece is whole,
    /// since its blocks cover it exactly. Spares that would take the bytes
    /// held past the bound, with this piece's, are freed.
    fn buffer(&mut self, len: usize) -> Vec<u8> {
        let buffer = match self.spare.iter().position(|b| b.len() == len) {
            Some(at) => self.spare.swap_remove(at),
            None => vec![0; len],
        };
        while !self.spare.is_empty() && self.held + len + self.spare_bytes() > self.limit {
            self.spare.pop();
        }
        buffer
    }

    /// Adds a block received from a peer.
    pub fn add(&mut self, block: BlockRef, data: &[u8]) -> Result<Added, AssemblyError> {
        self.add_from(block, data, 0)
    }

    /// Adds a block received from `sender` (any number the caller uses to
    /// tell peers apart). When the block completes its piece,
    /// [`Assembler::last_senders`] names who sent each of its blocks: the
    /// blocks actually in the piece, whatever copies arrived late.
    pub fn add_from(
        &mut self,
        block: BlockRef,
        data: &[u8],
        sender: u64,
    ) -> Result<Added, AssemblyError> {
        let index = block.offset / BLOCK_SIZE;
        let valid = block.offset.is_multiple_of(BLOCK_SIZE)
            && self.layout.block(block.piece, index) == Some(block)
            && data.len() == block.length as usize;
        if !valid {
            return Err(AssemblyError::NotABlock(block));
        }
        if !self.pending.contains_key(&block.piece) {
            let len = self.layout.piece_len(block.piece).unwrap_or(0) as usize;
            if self.held > 0 && self.held + len > self.limit {
                return Err(AssemblyError::Full {
                    held: self.held,
                    limit: self.limit,
                });
            }
            let blocks = self.layout.num_blocks(block.piece).unwrap_or(0) as usize;
            let data = self.buffer(len);
            self.pending.insert(
                block.piece,
                Pending {
                    data,
                    senders: vec![None; blocks],
                    missing: blocks,
                },
            );
            self.held += len;
        }
        let Some(pending) = self.pending.get_mut(&block.piece) else {
            return Err(AssemblyError::NotABlock(block));
        };
        if pending.senders[index as usize].is_some() {
            return Ok(Added::Duplicate);
        }
        let start = block.offset as usize;
        pending.data[start..start + data.len()].copy_from_slice(data);
        pending.senders[index as usize] = Some(sender);
        pending.missing -= 1;
        if pending.missing > 0 {
            return Ok(Added::Partial);
        }
        let Some(done) = self.pending.remove(&block.piece) else {
            return Err(AssemblyError::NotABlock(block));
        };
        self.held -= done.data.len();
        self.last_senders = done.senders.into_iter().flatten().collect();
        Ok(Added::Complete(done.data))
    }

    /// Who sent each block of the piece completed last (by
    /// [`Assembler::add_from`]'s `sender`).
    pub fn last_senders(&self) -> &[u64] {
        &self.last_senders
    }

    /// Drops an unfinished piece (its peer left, or it is being given up).
    pub fn discard(&mut self, piece: u32) {
        if let Some(p) = self.pending.remove(&piece) {
            self.held -= p.data.len();
            self.recycle(p.data);
        }
    }

    /// Drops every unfinished piece that holds a block from `sender` (a
    /// peer found to lie: its other blocks are as suspect), returning them
    /// in order.
    pub fn discard_from(&mut self, sender: u64) -> Vec<u32> {
        let mut pieces: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.senders.contains(&Some(sender)))
            .map(|(piece, _)| *piece)
            .collect();
        pieces.sort_unstable();
        for piece in &pieces {
            self.discard(*piece);
        }
        pieces
    }

    /// Bytes held for unfinished pieces.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Whether a block is already held.
    pub fn has(&self, block: BlockRef) -> bool {
        self.pending.get(&block.piece).is_some_and(|p| {
            p.senders
                .get((block.offset / BLOCK_SIZE) as usize)
                .is_some_and(Option::is_some)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u32 = 2 * BLOCK_SIZE;

    fn piece(assembler: &mut Assembler, piece: u32) -> Added {
        let mut added = Added::Partial;
        for index in 0..2 {
            let block = BlockRef {
                piece,
                offset: index * BLOCK_SIZE,
                length: BLOCK_SIZE,
            };
            added = assembler
                .add(block, &[piece as u8; BLOCK_SIZE as usize])
                .unwrap();
        }
        added
    }

    #[test]
    fn spare_buffers_count_against_the_bound() {
        let layout = Layout::new(
            u64::from(PIECE),
            [8 * u64::from(PIECE) + u64::from(BLOCK_SIZE)],
        )
        .unwrap();
        // Room for two pieces in all.
        let mut assembler = Assembler::new(layout, 2 * PIECE as usize);
        let Added::Complete(done) = piece(&mut assembler, 0) else {
            panic!("piece 0 is whole");
        };
        assembler.recycle(done);
        assert_eq!(assembler.spare_bytes(), PIECE as usize);
        // One piece held and one spare fill the bound: no second spare.
        let block = BlockRef {
            piece: 1,
            offset: 0,
            length: BLOCK_SIZE,
        };
        assembler.add(block, &[1; BLOCK_SIZE as usize]).unwrap();
        assert_eq!(assembler.spare_bytes(), 0, "piece 1 took the spare");
        let Added::Complete(done) = piece(&mut assembler, 2) else {
            panic!("piece 2 is whole");
        };
        assembler.recycle(done);
        assert_eq!(
            assembler.held() + assembler.spare_bytes(),
            2 * PIECE as usize
        );
        assembler.recycle(vec![0; PIECE as usize]);
        assert_eq!(assembler.spare_bytes(), PIECE as usize, "past the bound");
        // Two spares and nothing held; then the short last piece, which no
        // spare fits, frees the spare that would pass the bound.
        assembler.discard(1);
        assert_eq!(assembler.spare_bytes(), 2 * PIECE as usize);
        let last = BlockRef {
            piece: 8,
            offset: 0,
            length: BLOCK_SIZE,
        };
        assert!(matches!(
            assembler.add(last, &[8; BLOCK_SIZE as usize]),
            Ok(Added::Complete(_))
        ));
        assert_eq!(assembler.spare_bytes(), PIECE as usize);
    }
}

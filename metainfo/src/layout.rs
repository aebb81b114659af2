//! The geometry of a torrent: pieces, blocks, and where they fall in files.
//!
//! Pure arithmetic on lengths; storage and the engine build on it, and it is
//! the only place where piece, block and file offsets are computed.

use std::ops::Range;

/// The size of a block, the unit peers request: 16 KiB, as every client uses.
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// Piece, block and file geometry of one torrent.
///
/// ```
/// use metainfo::{BlockRef, FileSlice, Layout};
///
/// // Two files of 10 and 30 bytes, pieces of 16 bytes.
/// let layout = Layout::new(16, [10, 30]).expect("valid lengths");
/// assert_eq!(layout.num_pieces(), 3);
/// assert_eq!(layout.piece_len(2), Some(8));
/// let spans: Vec<FileSlice> = layout.piece_slices(0).collect();
/// assert_eq!(spans, [
///     FileSlice { file: 0, offset: 0, length: 10 },
///     FileSlice { file: 1, offset: 0, length: 6 },
/// ]);
/// assert_eq!(layout.block(2, 0), Some(BlockRef { piece: 2, offset: 0, length: 8 }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    piece_length: u64,
    total_length: u64,
    num_pieces: u32,
    /// Where each file starts in the torrent's byte stream.
    file_starts: Vec<u64>,
    file_lengths: Vec<u64>,
}

/// A block of a piece: what a peer requests and sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRef {
    /// The piece index.
    pub piece: u32,
    /// Byte offset within the piece.
    pub offset: u32,
    /// Length in bytes.
    pub length: u32,
}

/// A run of bytes inside one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSlice {
    /// The file's index in the torrent.
    pub file: usize,
    /// Byte offset within the file.
    pub offset: u64,
    /// Length in bytes (never zero).
    pub length: u64,
}

impl Layout {
    /// The layout of files with these lengths, in torrent order, cut into
    /// pieces of `piece_length`. `None` if the piece length is zero, the total
    /// overflows, or there would be more than `u32::MAX` pieces.
    pub fn new(piece_length: u64, file_lengths: impl IntoIterator<Item = u64>) -> Option<Layout> {
        let file_lengths: Vec<u64> = file_lengths.into_iter().collect();
        let mut file_starts = Vec::with_capacity(file_lengths.len());
        let mut total: u64 = 0;
        for &length in &file_lengths {
            file_starts.push(total);
            total = total.checked_add(length)?;
        }
        if piece_length == 0 || piece_length > u64::from(u32::MAX) {
            return None;
        }
        let num_pieces = u32::try_from(total.div_ceil(piece_length)).ok()?;
        Some(Layout {
            piece_length,
            total_length: total,
            num_pieces,
            file_starts,
            file_lengths,
        })
    }

    /// Bytes per piece, except perhaps the last.
    pub fn piece_length(&self) -> u32 {
        // `new` refuses anything larger.
        u32::try_from(self.piece_length).unwrap_or(u32::MAX)
    }

    /// The sum of all file lengths.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// How many pieces there are.
    pub fn num_pieces(&self) -> u32 {
        self.num_pieces
    }

    /// How many files there are (zero-length ones included).
    pub fn num_files(&self) -> usize {
        self.file_lengths.len()
    }

    /// The length of a file.
    pub fn file_length(&self, file: usize) -> Option<u64> {
        self.file_lengths.get(file).copied()
    }

    /// Where a file starts in the torrent's byte stream.
    pub fn file_start(&self, file: usize) -> Option<u64> {
        self.file_starts.get(file).copied()
    }

    /// The length of a piece: the piece length, or less for the last piece.
    pub fn piece_len(&self, piece: u32) -> Option<u32> {
        let start = self.piece_offset(piece)?;
        let len = (self.total_length - start).min(self.piece_length);
        u32::try_from(len).ok()
    }

    /// Where a piece starts in the torrent's byte stream.
    pub fn piece_offset(&self, piece: u32) -> Option<u64> {
        (piece < self.num_pieces).then(|| u64::from(piece) * self.piece_length)
    }

    /// How many blocks a piece has.
    pub fn num_blocks(&self, piece: u32) -> Option<u32> {
        self.piece_len(piece).map(|len| len.div_ceil(BLOCK_SIZE))
    }

    /// The `index`th block of a piece (the last block of a piece may be short).
    pub fn block(&self, piece: u32, index: u32) -> Option<BlockRef> {
        let piece_len = self.piece_len(piece)?;
        let offset = index.checked_mul(BLOCK_SIZE).filter(|&o| o < piece_len)?;
        Some(BlockRef {
            piece,
            offset,
            length: (piece_len - offset).min(BLOCK_SIZE),
        })
    }

    /// All blocks of a piece, in order; empty for a piece that does not exist.
    pub fn blocks(&self, piece: u32) -> impl Iterator<Item = BlockRef> + '_ {
        (0..self.num_blocks(piece).unwrap_or(0)).filter_map(move |i| self.block(piece, i))
    }

    /// Checks a range a peer asked for or sent: it must lie inside the piece
    /// and be non-empty. Returns it as a `BlockRef` if so.
    pub fn check_range(&self, piece: u32, offset: u32, length: u32) -> Option<BlockRef> {
        let piece_len = self.piece_len(piece)?;
        let end = offset.checked_add(length)?;
        (length > 0 && end <= piece_len).then_some(BlockRef {
            piece,
            offset,
            length,
        })
    }

    /// The file slices a piece covers, in order.
    pub fn piece_slices(&self, piece: u32) -> FileSlices<'_> {
        let len = self.piece_len(piece).unwrap_or(0);
        self.slices(piece, 0, len)
    }

    /// The file slices a block covers, in order.
    pub fn block_slices(&self, block: BlockRef) -> FileSlices<'_> {
        self.slices(block.piece, block.offset, block.length)
    }

    /// The file slices covering `length` bytes at `offset` in `piece`. Empty
    /// if the range is not inside the piece.
    pub fn slices(&self, piece: u32, offset: u32, length: u32) -> FileSlices<'_> {
        let empty = FileSlices {
            layout: self,
            file: 0,
            pos: 0,
            end: 0,
        };
        let Some(block) = self.check_range(piece, offset, length) else {
            return empty;
        };
        let Some(piece_start) = self.piece_offset(block.piece) else {
            return empty;
        };
        let pos = piece_start + u64::from(block.offset);
        // The last file starting at or before `pos` holds it (see FileSlices).
        let file = self
            .file_starts
            .partition_point(|&s| s <= pos)
            .saturating_sub(1);
        FileSlices {
            layout: self,
            file,
            pos,
            end: pos + u64::from(block.length),
        }
    }

    /// The pieces holding any byte of a file: an empty range for an empty
    /// file. Pieces at either end may be shared with neighbouring files.
    pub fn file_pieces(&self, file: usize) -> Range<u32> {
        let (Some(start), Some(length)) = (self.file_start(file), self.file_length(file)) else {
            return 0..0;
        };
        if length == 0 {
            return 0..0;
        }
        let first = start / self.piece_length;
        let last = (start + length - 1) / self.piece_length;
        // Both are below num_pieces, which fits u32.
        let first = u32::try_from(first).unwrap_or(u32::MAX);
        let last = u32::try_from(last).unwrap_or(u32::MAX);
        first..last.saturating_add(1)
    }
}

/// Iterator over the [`FileSlice`]s of a byte range; see [`Layout::slices`].
///
/// Zero-length files hold no bytes and are never yielded.
#[derive(Clone, Debug)]
pub struct FileSlices<'a> {
    layout: &'a Layout,
    file: usize,
    pos: u64,
    end: u64,
}

impl Iterator for FileSlices<'_> {
    type Item = FileSlice;

    fn next(&mut self) -> Option<FileSlice> {
        while self.pos < self.end {
            let start = *self.layout.file_starts.get(self.file)?;
            let file_end = start + self.layout.file_lengths[self.file];
            if file_end <= self.pos {
                self.file += 1;
                continue;
            }
            let length = file_end.min(self.end) - self.pos;
            let slice = FileSlice {
                file: self.file,
                offset: self.pos - start,
                length,
            };
            self.pos += length;
            return Some(slice);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_piece_over_three_files_and_empty_ones() {
        let layout = Layout::new(8, [3, 0, 1, 0, 2, 10]).unwrap();
        let slices: Vec<_> = layout.piece_slices(0).collect();
        assert_eq!(
            slices,
            [
                FileSlice {
                    file: 0,
                    offset: 0,
                    length: 3
                },
                FileSlice {
                    file: 2,
                    offset: 0,
                    length: 1
                },
                FileSlice {
                    file: 4,
                    offset: 0,
                    length: 2
                },
                FileSlice {
                    file: 5,
                    offset: 0,
                    length: 2
                },
            ]
        );
        assert_eq!(layout.file_pieces(1), 0..0);
        assert_eq!(layout.file_pieces(5), 0..2);
        assert_eq!(layout.piece_len(1), Some(8));
        assert_eq!(layout.piece_len(2), None);
    }

    #[test]
    fn blocks_of_an_odd_last_piece() {
        let layout =
            Layout::new(u64::from(BLOCK_SIZE) * 4, [u64::from(BLOCK_SIZE) * 5 + 7]).unwrap();
        assert_eq!(layout.num_pieces(), 2);
        let last: Vec<_> = layout.blocks(1).collect();
        assert_eq!(
            last,
            [
                BlockRef {
                    piece: 1,
                    offset: 0,
                    length: BLOCK_SIZE
                },
                BlockRef {
                    piece: 1,
                    offset: BLOCK_SIZE,
                    length: 7
                },
            ]
        );
        assert_eq!(layout.block(1, 2), None);
        assert_eq!(layout.blocks(2).count(), 0);
    }

    #[test]
    fn hostile_ranges_are_refused() {
        let layout = Layout::new(100, [250]).unwrap();
        assert_eq!(
            layout.check_range(2, 0, 50),
            Some(BlockRef {
                piece: 2,
                offset: 0,
                length: 50
            })
        );
        assert_eq!(layout.check_range(2, 0, 51), None);
        assert_eq!(layout.check_range(0, u32::MAX, 2), None);
        assert_eq!(layout.check_range(0, 10, 0), None);
        assert_eq!(layout.check_range(3, 0, 1), None);
        assert_eq!(layout.slices(2, 40, 20).count(), 0);
    }

    #[test]
    fn impossible_layouts_are_none() {
        assert!(Layout::new(0, [1]).is_none());
        assert!(Layout::new(1, [u64::MAX, 1]).is_none());
        assert!(Layout::new(1, [1 << 40]).is_none(), "too many pieces");
        assert!(Layout::new(1 << 33, [1]).is_none(), "piece longer than u32");
    }

    proptest! {
        /// Every byte of the torrent is covered exactly once, in order, by
        /// the slices of the pieces, and again by the slices of the blocks.
        #[test]
        fn slices_tile_the_files(
            lengths in prop::collection::vec(prop_oneof![Just(0u64), 1u64..5, 1u64..70_000], 1..8),
            piece_length in prop_oneof![1u64..40, Just(u64::from(BLOCK_SIZE)), 20_000u64..70_000],
        ) {
            let layout = Layout::new(piece_length, lengths.iter().copied()).unwrap();
            prop_assume!(layout.total_length() > 0);
            let mut by_piece = Vec::new();
            let mut by_block = Vec::new();
            for piece in 0..layout.num_pieces() {
                let piece_len = layout.piece_len(piece).unwrap();
                let slices: Vec<_> = layout.piece_slices(piece).collect();
                prop_assert_eq!(slices.iter().map(|s| s.length).sum::<u64>(), u64::from(piece_len));
                by_piece.extend(slices);
                let mut next_offset = 0;
                for block in layout.blocks(piece) {
                    prop_assert_eq!(block.offset, next_offset);
                    prop_assert!(block.length > 0 && block.length <= BLOCK_SIZE);
                    next_offset += block.length;
                    by_block.extend(layout.block_slices(block));
                }
                prop_assert_eq!(next_offset, piece_len);
            }
            // Expand to (file, offset) for every byte; both must be the files in order.
            let bytes = |slices: &[FileSlice]| -> Vec<(usize, u64)> {
                slices.iter().flat_map(|s| (s.offset..s.offset + s.length).map(move |o| (s.file, o))).collect()
            };
            let expected: Vec<(usize, u64)> = lengths.iter().enumerate().flat_map(|(f, &l)| (0..l).map(move |o| (f, o))).collect();
            prop_assert_eq!(bytes(&by_piece), expected.clone());
            prop_assert_eq!(bytes(&by_block), expected);
            for (file, &length) in lengths.iter().enumerate() {
                let pieces = layout.file_pieces(file);
                let touching: Vec<u32> = (0..layout.num_pieces())
                    .filter(|&p| layout.piece_slices(p).any(|s| s.file == file))
                    .collect();
                prop_assert_eq!(pieces.collect::<Vec<_>>(), touching, "file {} of length {}", file, length);
            }
        }
    }
}

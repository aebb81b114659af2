//! Reading and writing whole pieces and blocks across the torrent's files.

use std::os::unix::fs::FileExt as _;
use std::path::Path;

use metainfo::{InfoHash, Layout, Metainfo, Sha1, Sha1Backend};

use crate::error::StorageError;
use crate::files::FileSet;
use crate::resume::{FileStamp, ResumeData};

/// The most bytes handed to the kernel in one write.
///
/// Linux gives a buffered write page-cache folios as large as the write.
/// Folios of up to 32 KiB come from per-CPU lists of recently freed pages;
/// larger ones from the free lists of large blocks, which a VM with free page
/// reporting (virtio-balloon) has handed back to its host, so that their first
/// touch faults on the host. On the 2-core VM of `cargo xtask bench`, the disk
/// thread of a 1 GiB download spent 0.34–2.2 s of system time writing whole
/// 256 KiB pieces (bimodal, run to run) and 0.36–0.57 s writing 32 KiB chunks;
/// 16 KiB chunks cost 0.46–0.80 s (more calls), 64 KiB ones were bimodal again.
/// On bare metal the chunks cost a few thousand more calls per GiB.
const WRITE_CHUNK: usize = 32 * 1024;

/// How a [`Storage`] behaves.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    /// The most files open at once.
    pub max_open_files: usize,
    /// The SHA-1 implementation pieces are verified with.
    pub hasher: Sha1Backend,
    /// Fault injection: writes fail as on a full disk (`ENOSPC`) once this
    /// many bytes have been written. `None` in normal use; the testnet and
    /// tests use it to check how a full disk is handled.
    pub disk_space: Option<u64>,
    /// How files get their length when first written.
    pub allocation: Allocation,
    /// Which files are wanted, one flag per file of the torrent; `None`
    /// for all. An unwanted file is never created or written: the parts
    /// of pieces that fall in it (a piece on the border of a wanted file)
    /// go to a part file, `.<info-hash>.parts` in the download folder, so
    /// that such pieces can still be verified, rechecked and seeded.
    pub wanted: Option<Vec<bool>>,
}

/// How a file gets its full length when it is first written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Allocation {
    /// A sparse file: disk blocks are used only as pieces are written, so
    /// a download takes its room bit by bit (what libtorrent does by
    /// default).
    Sparse,
    /// Every block reserved at once (`fallocate`), so a full disk is found
    /// when a file is created rather than halfway through, and files are
    /// less fragmented. Sparse where the file system cannot do it. The
    /// default: writes into reserved blocks also cost the kernel less (on
    /// ext4, 1 GiB in 32 KiB writes took 0.16–0.17 s of system time against
    /// 0.24–0.25 s sparse).
    #[default]
    Full,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            max_open_files: 128,
            hasher: Sha1Backend::Fast,
            disk_space: None,
            allocation: Allocation::Full,
            wanted: None,
        }
    }
}

/// A torrent's data on disk, under one download folder.
///
/// Synchronous and blocking: the engine runs it on its own threads, never
/// on the async runtime. Pieces are written whole, after their hash was
/// checked ([`Storage::write_verified`]), so a piece on disk is either what
/// the torrent says or not there yet.
#[derive(Debug)]
pub struct Storage {
    files: FileSet,
    /// Which files are wanted (see [`StorageConfig::wanted`]).
    wanted: Vec<bool>,
    layout: Layout,
    hashes: Vec<[u8; 20]>,
    info_hash: InfoHash,
    hasher: Sha1Backend,
    /// Bytes that may still be written before the injected "disk full".
    space_left: Option<u64>,
}

impl Storage {
    /// Storage for `torrent` under `root` (created if missing). Files are
    /// created only when first written.
    pub fn new(
        torrent: &Metainfo,
        root: &Path,
        config: StorageConfig,
    ) -> Result<Storage, StorageError> {
        let info = torrent.info();
        let count = info.files().len();
        let wanted = match config.wanted {
            Some(w) if w.len() == count => w,
            _ => vec![true; count],
        };
        let parts = format!(".{}.parts", torrent.info_hash().to_hex());
        Ok(Storage {
            wanted,
            files: FileSet::new(info, root, config.max_open_files, config.allocation, &parts)?,
            layout: info.layout().clone(),
            hashes: info.pieces().to_vec(),
            info_hash: torrent.info_hash(),
            hasher: config.hasher,
            space_left: config.disk_space,
        })
    }

    /// The geometry.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// One flag per piece: whether it holds a byte of a wanted file.
    pub fn wanted_pieces(&self) -> Vec<bool> {
        let mut pieces = vec![false; self.layout.num_pieces() as usize];
        for (file, wanted) in self.wanted.iter().enumerate() {
            if *wanted {
                for piece in self.layout.file_pieces(file) {
                    if let Some(flag) = pieces.get_mut(piece as usize) {
                        *flag = true;
                    }
                }
            }
        }
        pieces
    }

    /// Checks `data` against piece `piece`'s hash and, if it matches, writes
    /// it. Returns whether it matched; a piece that does not is not written.
    pub fn write_verified(&mut self, piece: u32, data: &[u8]) -> Result<bool, StorageError> {
        if !self.matches(piece, data)? {
            return Ok(false);
        }
        self.write_piece(piece, data)?;
        Ok(true)
    }

    /// True if `data` is piece `piece` as the torrent describes it.
    pub fn matches(&self, piece: u32, data: &[u8]) -> Result<bool, StorageError> {
        let expected = self
            .hashes
            .get(piece as usize)
            .ok_or(no_such_piece(piece))?;
        let mut hasher = Sha1::new(self.hasher);
        hasher.update(data);
        Ok(&hasher.finish() == expected)
    }

    /// Writes a whole piece, unchecked (see [`Storage::write_verified`]).
    pub fn write_piece(&mut self, piece: u32, data: &[u8]) -> Result<(), StorageError> {
        let len = self.layout.piece_len(piece).ok_or(no_such_piece(piece))?;
        if data.len() != len as usize {
            return Err(StorageError::BadRequest {
                piece,
                problem: "data is not the piece's length",
            });
        }
        let mut at = 0usize;
        let slices: Vec<_> = self.layout.piece_slices(piece).collect();
        for slice in slices {
            let part = &data[at..at + slice.length as usize];
            let (file, offset) = self.place(piece, at as u32, slice.file, slice.offset);
            at += slice.length as usize;
            if self.files.files[slice.file].padding {
                continue;
            }
            let path = self.files.files[file].path.clone();
            if let Some(left) = &mut self.space_left {
                if *left < part.len() as u64 {
                    *left = 0;
                    let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
                    return Err(StorageError::io("write", &path, full));
                }
                *left -= part.len() as u64;
            }
            let handle = self.files.get(file, true)?;
            let mut to = offset;
            for chunk in part.chunks(WRITE_CHUNK) {
                handle
                    .write_all_at(chunk, to)
                    .map_err(|e| StorageError::io("write", &path, e))?;
                to += chunk.len() as u64;
            }
            self.files.wrote(file, part.len() as u64);
        }
        Ok(())
    }

    /// Where a slice of file `file` at `offset` goes: there if the file is
    /// wanted; otherwise in the part file, at the slice's place in the
    /// torrent (piece `piece`, `in_piece` bytes in).
    fn place(&self, piece: u32, in_piece: u32, file: usize, offset: u64) -> (usize, u64) {
        if self.wanted.get(file) != Some(&false) {
            return (file, offset);
        }
        let at = u64::from(piece) * u64::from(self.layout.piece_length()) + u64::from(in_piece);
        (self.files.parts_index(), at)
    }

    /// Reads `buf.len()` bytes at `offset` in piece `piece`: a block to send
    /// to a peer, or a whole piece to check. Padding files read as zeros.
    pub fn read(&mut self, piece: u32, offset: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        let length = u32::try_from(buf.len()).map_err(|_| StorageError::BadRequest {
            piece,
            problem: "read too long",
        })?;
        if self.layout.check_range(piece, offset, length).is_none() {
            return Err(StorageError::BadRequest {
                piece,
                problem: "range outside the piece",
            });
        }
        let mut at = 0usize;
        let slices: Vec<_> = self.layout.slices(piece, offset, length).collect();
        for slice in slices {
            let (file, file_offset) =
                self.place(piece, offset + at as u32, slice.file, slice.offset);
            let part = &mut buf[at..at + slice.length as usize];
            at += slice.length as usize;
            if self.files.files[slice.file].padding {
                part.fill(0);
                continue;
            }
            let path = self.files.files[file].path.clone();
            let handle = self.files.get(file, false)?;
            handle
                .read_exact_at(part, file_offset)
                .map_err(|e| StorageError::io("read", &path, e))?;
        }
        Ok(())
    }

    /// Reads piece `piece` back and checks it against its hash: whether the
    /// disk holds it. Missing or short files count as not holding it.
    pub fn verify(&mut self, piece: u32) -> Result<bool, StorageError> {
        let len = self.layout.piece_len(piece).ok_or(no_such_piece(piece))?;
        let mut buf = vec![0u8; len as usize];
        match self.read(piece, 0, &mut buf) {
            Ok(()) => self.matches(piece, &buf),
            Err(StorageError::Missing { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Creates the torrent's zero-length files, which hold no piece and so
    /// are never written: call once the download is complete.
    pub fn create_empty_files(&mut self) -> Result<(), StorageError> {
        let mut next = Some(0);
        while let Some(from) = next {
            next = self.create_empty_files_from(from, usize::MAX)?;
        }
        Ok(())
    }

    /// Does [`Storage::create_empty_files`] a few at a time: among the
    /// `count` files from index `from` on. Returns where to go on from, or
    /// `None` once every file was looked at. A torrent of many empty files
    /// so leaves room between steps for other work, and for stopping.
    pub fn create_empty_files_from(
        &mut self,
        from: usize,
        count: usize,
    ) -> Result<Option<usize>, StorageError> {
        self.files.create_empty_files(&self.wanted, from, count)
    }

    /// With every file wanted, removes the part file an earlier download of
    /// chosen files left (nothing reads it now): call once the download is
    /// complete. Whether there was one.
    pub fn remove_stale_parts(&mut self) -> Result<bool, StorageError> {
        if self.wanted.iter().any(|w| !w) {
            return Ok(false);
        }
        self.files.remove_parts()
    }

    /// Which pieces the disk holds, one flag per piece: on start, or for
    /// `btc seed`.
    ///
    /// With `resume` for this torrent, a piece it records is trusted without
    /// hashing when every file the piece touches has the size and
    /// modification time recorded; every other piece is read and hashed,
    /// but for pieces in wanted files that do not exist, which are missing.
    /// `progress` is told each piece as it is decided.
    pub fn check(
        &mut self,
        resume: Option<&ResumeData>,
        mut progress: impl FnMut(u32),
    ) -> Result<Vec<bool>, StorageError> {
        // Fresh handles: a file replaced or deleted since it was opened must
        // be seen as it is now. Resume data of another torrent is ignored.
        self.files.sync_and_close()?;
        let resume = resume.filter(|r| r.info_hash == self.info_hash);
        let stamps = self.stamps();
        let unchanged: Vec<bool> = match resume {
            Some(r) if r.files.len() == stamps.len() && r.pieces.len() == self.hashes.len() => r
                .files
                .iter()
                .zip(&stamps)
                .map(|(then, now)| then.is_some() && then == now)
                .collect(),
            _ => vec![false; stamps.len()],
        };
        // Wanted files that do not exist (any other failure to look, and
        // the piece is read, to fail or succeed as it will). A file with a
        // stamp is there; only the others are looked at again.
        let missing: Vec<bool> = self
            .files
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                matches!(stamps.get(i), Some(None))
                    && self.wanted.get(i) == Some(&true)
                    && !f.padding
                    && std::fs::symlink_metadata(&f.path)
                        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
            })
            .collect();
        let mut have = Vec::with_capacity(self.hashes.len());
        for piece in 0..self.layout.num_pieces() {
            let recorded = resume.is_some_and(|r| r.pieces.get(piece as usize) == Some(&true));
            let trusted = recorded
                && self
                    .layout
                    .piece_slices(piece)
                    .all(|s| unchanged[s.file] || self.files.files[s.file].padding);
            // A piece in a wanted file that is not there is not read: a
            // fresh download would otherwise try to open its file once for
            // every piece.
            let absent = self
                .layout
                .piece_slices(piece)
                .any(|s| missing.get(s.file) == Some(&true));
            have.push(trusted || (!absent && self.verify(piece)?));
            progress(piece);
        }
        Ok(have)
    }

    /// Resume data for the pieces in `have`, with the files' stamps now.
    /// Every file written is flushed to the disk first, so that the stamps
    /// never describe data a power cut could still lose.
    pub fn resume_data(&mut self, have: &[bool]) -> Result<ResumeData, StorageError> {
        self.files.sync_and_close()?;
        Ok(ResumeData {
            info_hash: self.info_hash,
            pieces: have.to_vec(),
            files: self.stamps(),
        })
    }

    /// The torrent's files' stamps (not the part file's: pieces that touch
    /// unwanted files are always rehashed).
    fn stamps(&self) -> Vec<Option<FileStamp>> {
        self.files
            .files
            .iter()
            .take(self.wanted.len())
            .zip(&self.wanted)
            .map(|(f, wanted)| wanted.then(|| FileStamp::of(&f.path)).flatten())
            .collect()
    }

    /// How many files are open now (at most `max_open_files`; up to five
    /// more handles being closed may wait for their flush on the flushing
    /// thread).
    pub fn open_files(&self) -> usize {
        self.files.open_count()
    }
}

fn no_such_piece(piece: u32) -> StorageError {
    StorageError::BadRequest {
        piece,
        problem: "no such piece",
    }
}

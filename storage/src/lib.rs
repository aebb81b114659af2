//! Where downloaded bytes become files and seeded bytes come from.
//!
//! - [`Assembler`] takes 16 KiB blocks in any order, from any number of
//!   peers, and hands back whole pieces, holding at most a configured number
//!   of bytes of unfinished pieces ([`AssemblyError::Full`] is the
//!   back-pressure signal).
//! - [`Storage`] writes a verified piece across the files it spans, reads
//!   blocks for seeding, and rechecks pieces on disk. Files are created when
//!   first written, sparse or fully allocated ([`Allocation`]); zero-length
//!   ones at the end. At most `max_open_files` handles are open at once,
//!   and a few more while they are flushed before closing.
//! - Nothing is written outside the download folder: paths come from
//!   `metainfo`'s checks, and every file is opened with `openat2` and
//!   `RESOLVE_BENEATH`, so the kernel refuses a symbolic link on the way
//!   that leads out, whenever it was put there. (On kernels without
//!   `openat2` the folders are checked first, then the path is opened.) A
//!   file that is itself a symbolic link is not opened.
//! - A file deleted or truncated underneath an open handle is noticed before
//!   the next write into it, instead of losing the write or leaving holes.
//! - [`ResumeData`] records the verified pieces with each file's size and
//!   modification time, written atomically; [`Storage::check`] trusts it
//!   for files that have not changed and hashes the rest.
//! - Errors ([`StorageError`]) say what to do: disk full, permission denied,
//!   a file missing or truncated underneath us.
//!
//! [`Storage`] and [`Assembler`] are synchronous and block. [`Disk`] puts
//! them on a dedicated thread behind a bounded channel, so async code never
//! blocks on the disk and a slow disk slows its callers rather than growing
//! memory.
//!
//! ```
//! use metainfo::TorrentBuilder;
//! use storage::{Added, Assembler, Storage, StorageConfig};
//!
//! let source = tempfile::tempdir()?;
//! std::fs::write(source.path().join("a.bin"), vec![7u8; 40_000])?;
//! let torrent = TorrentBuilder::new(source.path().join("a.bin")).piece_length(32 * 1024).build(|_, _| {})?;
//! let download = tempfile::tempdir()?;
//! let mut storage = Storage::new(&torrent, download.path(), StorageConfig::default())?;
//! let mut assembler = Assembler::new(torrent.layout().clone(), 1 << 20);
//! for block in torrent.layout().blocks(0) {
//!     if let Added::Complete(piece) = assembler.add(block, &vec![7u8; block.length as usize])? {
//!         assert!(storage.write_verified(0, &piece)?);
//!     }
//! }
//! assert!(storage.verify(0)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod assembler;
mod disk;
mod error;
mod files;
mod flusher;
mod resume;
mod store;

pub use assembler::{Added, Assembler, AssemblyError};
pub use disk::{
    BlockOutcome, Disk, DiskError, DiskThread, PendingBlock, PendingBlocks, PendingFiles,
};
pub use error::StorageError;
pub use resume::{FileStamp, ResumeData};
pub use store::{Allocation, Storage, StorageConfig};

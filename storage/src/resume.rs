//! Resume data: which pieces were verified, and the state of the files then,
//! so an unchanged download restarts without hashing everything again.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::time::UNIX_EPOCH;

use bencode::{Bytes as B, Encoder};
use metainfo::InfoHash;

use crate::error::StorageError;

/// A file's size and modification time when pieces were last recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time: seconds and nanoseconds since the Unix epoch.
    pub modified: (i64, u32),
}

impl FileStamp {
    /// The stamp of the file at `path`, or `None` if it does not exist.
    pub fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        let modified = meta.modified().ok()?;
        let since = modified.duration_since(UNIX_EPOCH).ok()?;
        Some(FileStamp {
            size: meta.len(),
            modified: (
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
                since.subsec_nanos(),
            ),
        })
    }
}

/// What a resume file records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeData {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Verified pieces, one flag per piece.
    pub pieces: Vec<bool>,
    /// Each file's stamp when `pieces` was recorded (`None`: not there).
    pub files: Vec<Option<FileStamp>>,
}

/// The largest resume file read: far more than a torrent of millions of
/// pieces and files needs.
const MAX_RESUME_FILE: u64 = 64 << 20;

impl ResumeData {
    /// The resume file's bytes: a bencoded dictionary.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        e.dict(|d| {
            d.entry(b"btc resume", &1i64);
            d.entry(b"info hash", &B(self.info_hash.as_bytes()));
            let bits: Vec<u8> = self
                .pieces
                .chunks(8)
                .map(|c| {
                    c.iter()
                        .enumerate()
                        .fold(0u8, |b, (i, &had)| b | (u8::from(had) << (7 - i)))
                })
                .collect();
            d.entry(b"pieces", &B(&bits));
            d.entry(b"piece count", &(self.pieces.len() as u64));
            d.entry_with(b"files", |e| {
                e.list(|e| {
                    for stamp in &self.files {
                        e.list(|e| {
                            if let Some(s) = stamp {
                                e.uint(s.size);
                                e.int(s.modified.0);
                                e.uint(u64::from(s.modified.1));
                            }
                        });
                    }
                })
            });
        });
        e.into_bytes()
    }

    /// Writes the resume file atomically: to a temporary name beside it,
    /// synced, then renamed over the old one, so a crash leaves either the
    /// old file or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), StorageError> {
        let bytes = self.encode();
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // A name of our own beside the target: never another file's, never
        // through a link, and removed if anything fails.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = dir.join(format!(".{name}.{}.{unique}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)?;
            // Make the rename itself durable.
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            StorageError::io("write", path, e)
        })
    }

    /// Reads a resume file for the torrent `info_hash` with `num_pieces`
    /// pieces and `num_files` files. Anything unreadable, for another
    /// torrent, or of another shape gives `None`: the caller then hashes.
    pub fn load(
        path: &Path,
        info_hash: InfoHash,
        num_pieces: u32,
        num_files: usize,
    ) -> Option<ResumeData> {
        use std::io::Read as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut bytes = Vec::new();
        file.take(MAX_RESUME_FILE + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        if bytes.len() as u64 > MAX_RESUME_FILE {
            return None;
        }
        ResumeData::decode(&bytes, info_hash, num_pieces, num_files)
    }

    /// Reads a resume file's bytes (see [`ResumeData::load`]): `None` for
    /// anything that is not the resume data of this torrent with this
    /// shape.
    pub fn decode(
        bytes: &[u8],
        info_hash: InfoHash,
        num_pieces: u32,
        num_files: usize,
    ) -> Option<ResumeData> {
        let value = bencode::decode(bytes).ok()?;
        let d = value.as_dict()?;
        if d.get(b"btc resume")?.as_int()? != 1
            || d.get(b"info hash")?.as_bytes()? != info_hash.as_bytes()
        {
            return None;
        }
        if d.get(b"piece count")?.as_int()? != i64::from(num_pieces) {
            return None;
        }
        let bits = d.get(b"pieces")?.as_bytes()?;
        if bits.len() != (num_pieces as usize).div_ceil(8) {
            return None;
        }
        let pieces = (0..num_pieces as usize)
            .map(|i| bits[i / 8] & (0x80 >> (i % 8)) != 0)
            .collect();
        let list = d.get(b"files")?.as_list()?;
        // Counted before anything is built from it.
        if list.len() != num_files {
            return None;
        }
        let mut files = Vec::with_capacity(num_files);
        for entry in list.iter() {
            let fields: Vec<i64> = entry
                .as_list()?
                .iter()
                .map(|v| v.as_int())
                .collect::<Option<_>>()?;
            files.push(match fields[..] {
                [] => None,
                [size, secs, nanos] => Some(FileStamp {
                    size: u64::try_from(size).ok()?,
                    modified: (secs, u32::try_from(nanos).ok()?),
                }),
                _ => return None,
            });
        }
        (files.len() == num_files).then_some(ResumeData {
            info_hash,
            pieces,
            files,
        })
    }
}

//! Making torrents from files on disk.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use bencode::{Bytes, Encoder};

use crate::error::Error;
use crate::torrent::Metainfo;

/// Why a torrent could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// Reading the content failed.
    #[error("cannot read {}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// There is nothing to share: no files, or only empty ones.
    #[error("{} holds no data to share (no files, or only empty ones)", .0.display())]
    Empty(PathBuf),
    /// A file changed size while it was being hashed.
    #[error("{} changed while it was being read; try again when it is not being written", .0.display())]
    Changed(PathBuf),
    /// A piece length that is not a power of two of at least 16 KiB.
    #[error("piece length {0} is not a power of two between 16 KiB and 64 MiB")]
    BadPieceLength(u64),
    /// A file or folder name cannot be used in a torrent.
    #[error("cannot put {} in a torrent: {problem}", path.display())]
    BadName {
        /// The file.
        path: PathBuf,
        /// Why not.
        problem: &'static str,
    },
    /// The content is larger than a torrent may describe.
    #[error("the content is larger than the {0} bytes a torrent may describe")]
    TooLarge(u64),
    /// The torrent made does not pass validation (for example a path conflict).
    #[error("the torrent made is not valid: {0}")]
    Invalid(Error),
}

/// Builds a torrent from a file or a folder.
///
/// Files in a folder are taken in byte order of their `/`-joined relative
/// paths, as `mktorrent` takes them, so both tools give the same info-hash for
/// the same content, piece length and flags. Symbolic links are followed.
///
/// ```no_run
/// use metainfo::TorrentBuilder;
///
/// let torrent = TorrentBuilder::new("some/folder")
///     .tracker_tier(vec!["http://127.0.0.1:6969/announce".into()])
///     .comment("made with btc")
///     .build(|done, total| eprintln!("hashed {done} of {total} bytes"))?;
/// std::fs::write("folder.torrent", torrent.to_bytes())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TorrentBuilder {
    path: PathBuf,
    trackers: Vec<Vec<String>>,
    piece_length: Option<u64>,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
    private: bool,
    web_seeds: Vec<String>,
    threads: usize,
    exclude: Vec<PathBuf>,
}

/// The piece length mainstream tools choose for content of this size: the
/// table Transmission uses, extended up to 16 MiB pieces, so that torrents
/// keep between about 500 and 2,000 pieces.
pub fn auto_piece_length(total_length: u64) -> u64 {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;
    match total_length {
        n if n >= 32 * GIB => 16 * MIB,
        n if n >= 16 * GIB => 8 * MIB,
        n if n >= 8 * GIB => 4 * MIB,
        n if n >= 2 * GIB => 2 * MIB,
        n if n >= GIB => MIB,
        n if n >= 512 * MIB => 512 * KIB,
        n if n >= 350 * MIB => 256 * KIB,
        n if n >= 150 * MIB => 128 * KIB,
        n if n >= 50 * MIB => 64 * KIB,
        _ => 32 * KIB,
    }
}

impl TorrentBuilder {
    /// A builder for the file or folder at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TorrentBuilder {
            path: path.into(),
            trackers: Vec::new(),
            piece_length: None,
            comment: None,
            created_by: Some(concat!("btc ", env!("CARGO_PKG_VERSION")).to_string()),
            creation_date: None,
            private: false,
            web_seeds: Vec::new(),
            // More threads than this only add memory: reading is the bottleneck.
            threads: thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            exclude: Vec::new(),
        }
    }

    /// Leaves the file at `path` out of the torrent if the folder holds it:
    /// the `.torrent` being written into the folder it describes, say, which
    /// a second run would otherwise take in. A path that does not exist
    /// leaves nothing out.
    pub fn exclude(mut self, path: impl Into<PathBuf>) -> Self {
        self.exclude.push(path.into());
        self
    }

    /// Adds a tier of trackers (BEP 12). The first tracker of the first tier
    /// becomes `announce`; `announce-list` is written when there is more than
    /// one tracker in all.
    pub fn tracker_tier(mut self, tier: Vec<String>) -> Self {
        if !tier.is_empty() {
            self.trackers.push(tier);
        }
        self
    }

    /// Sets the piece length, a power of two from 16 KiB to 64 MiB; by
    /// default [`auto_piece_length`] picks one.
    pub fn piece_length(mut self, piece_length: u64) -> Self {
        self.piece_length = Some(piece_length);
        self
    }

    /// Sets the comment.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Sets `created by` (default `btc` and its version); `None` leaves it out.
    pub fn created_by(mut self, created_by: Option<String>) -> Self {
        self.created_by = created_by;
        self
    }

    /// Sets the creation date in seconds since the Unix epoch (default: now).
    pub fn creation_date(mut self, seconds: i64) -> Self {
        self.creation_date = Some(seconds);
        self
    }

    /// Marks the torrent private (BEP 27).
    pub fn private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    /// Adds a web seed URL (BEP 19).
    pub fn web_seed(mut self, url: impl Into<String>) -> Self {
        self.web_seeds.push(url.into());
        self
    }

    /// How many threads hash pieces (default: one per core, at most 8).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Reads and hashes the content and returns the torrent. `progress` is
    /// called with bytes hashed so far and the total, after each piece.
    pub fn build(&self, mut progress: impl FnMut(u64, u64)) -> Result<Metainfo, CreateError> {
        // Compared by resolved path; one that does not resolve is not there.
        let exclude: Vec<PathBuf> = self
            .exclude
            .iter()
            .filter_map(|p| p.canonicalize().ok())
            .collect();
        let content = Content::scan(&self.path, &exclude)?;
        let total = content.total;
        if total == 0 {
            return Err(CreateError::Empty(self.path.clone()));
        }
        let piece_length = match self.piece_length {
            None => auto_piece_length(total),
            Some(n) if n.is_power_of_two() && (16 << 10..=64 << 20).contains(&n) => n,
            Some(n) => return Err(CreateError::BadPieceLength(n)),
        };
        let pieces = hash_pieces(&content.files, piece_length, self.threads, &mut progress)?;

        let mut info = Encoder::default();
        info.dict(|d| {
            if content.single_file {
                d.entry(b"length", &total);
            } else {
                d.entry_with(b"files", |e| {
                    e.list(|e| {
                        for file in &content.files {
                            e.dict(|d| {
                                d.entry(b"length", &file.length);
                                d.entry(b"path", &file.components);
                            });
                        }
                    })
                });
            }
            d.entry(b"name", &content.name);
            d.entry(b"piece length", &piece_length);
            d.entry(b"pieces", &Bytes(&pieces));
            if self.private {
                d.entry(b"private", &1i64);
            }
        });
        let info = info.into_bytes();

        let creation_date = self.creation_date.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        });
        let tracker_count: usize = self.trackers.iter().map(Vec::len).sum();
        let mut torrent = Encoder::default();
        torrent.dict(|d| {
            d.entry_opt(b"announce", self.trackers.first().and_then(|t| t.first()));
            if tracker_count > 1 {
                d.entry(b"announce-list", &self.trackers);
            }
            d.entry_opt(b"comment", self.comment.as_ref());
            d.entry_opt(b"created by", self.created_by.as_ref());
            d.entry(b"creation date", &creation_date);
            d.entry_with(b"info", |e| e.raw(&info));
            if !self.web_seeds.is_empty() {
                d.entry(b"url-list", &self.web_seeds);
            }
        });
        Metainfo::from_bytes(&torrent.into_bytes()).map_err(CreateError::Invalid)
    }
}

struct ContentFile {
    path: PathBuf,
    components: Vec<String>,
    length: u64,
}

struct Content {
    name: String,
    single_file: bool,
    files: Vec<ContentFile>,
    total: u64,
}

impl Content {
    fn scan(root: &Path, exclude: &[PathBuf]) -> Result<Content, CreateError> {
        let io_err = |error| CreateError::Io {
            path: root.to_path_buf(),
            error,
        };
        let absolute = root.canonicalize().map_err(io_err)?;
        // The name of the path as given, as mktorrent takes it: a symbolic
        // link keeps its own name. Only `.` and `..` need the resolved one.
        let name = utf8_name(root, root.file_name().or(absolute.file_name()))?;
        let meta = std::fs::metadata(&absolute).map_err(io_err)?;
        if meta.is_file() {
            let file = ContentFile {
                path: absolute,
                components: vec![name.clone()],
                length: meta.len(),
            };
            return Content::new(name, true, vec![file]);
        }
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(&absolute)
            .follow_links(true)
            .min_depth(1)
        {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(&absolute).to_path_buf();
                CreateError::Io {
                    error: e.into(),
                    path,
                }
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let excluded = exclude.iter().any(|x| {
                x.file_name() == Some(entry.file_name())
                    && entry.path().canonicalize().ok().as_ref() == Some(x)
            });
            if excluded {
                continue;
            }
            let relative = entry.path().strip_prefix(&absolute).unwrap_or(entry.path());
            let components = relative
                .components()
                .map(|c| utf8_name(entry.path(), Some(c.as_os_str())))
                .collect::<Result<Vec<_>, _>>()?;
            let metadata = entry.metadata().map_err(|e| CreateError::Io {
                path: entry.path().to_path_buf(),
                error: e.into(),
            })?;
            files.push(ContentFile {
                path: entry.path().to_path_buf(),
                components,
                length: metadata.len(),
            });
        }
        // mktorrent's order: byte order of the joined path.
        files.sort_by_cached_key(|f| f.components.join("/"));
        Content::new(name, false, files)
    }

    /// Checks, before any reading, what would make the torrent invalid.
    fn new(
        name: String,
        single_file: bool,
        files: Vec<ContentFile>,
    ) -> Result<Content, CreateError> {
        let too_large = || CreateError::TooLarge(crate::MAX_TOTAL_LENGTH);
        let total = files
            .iter()
            .try_fold(0u64, |sum, f| sum.checked_add(f.length))
            .filter(|&t| t <= crate::MAX_TOTAL_LENGTH)
            .ok_or_else(too_large)?;
        for file in &files {
            for component in &file.components {
                crate::path::check_component(component).map_err(|problem| {
                    CreateError::BadName {
                        path: file.path.clone(),
                        problem,
                    }
                })?;
            }
        }
        Ok(Content {
            name,
            single_file,
            files,
            total,
        })
    }
}

fn utf8_name(path: &Path, name: Option<&std::ffi::OsStr>) -> Result<String, CreateError> {
    let bad = |problem| CreateError::BadName {
        path: path.to_path_buf(),
        problem,
    };
    let name = name.ok_or_else(|| bad("it has no name"))?;
    name.to_str()
        .map(str::to_string)
        .ok_or_else(|| bad("its name is not valid UTF-8"))
}

/// Reads the files as one stream cut into pieces and hashes the pieces on
/// `threads` threads, reporting progress as pieces are hashed. At most
/// `2 × threads + 1` pieces are in memory at once: one being read, `threads`
/// waiting in the queue, and one per hashing thread.
fn hash_pieces(
    files: &[ContentFile],
    piece_length: u64,
    threads: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<u8>, CreateError> {
    let total: u64 = files.iter().map(|f| f.length).sum();
    let num_pieces = usize::try_from(total.div_ceil(piece_length)).unwrap_or(usize::MAX);
    let piece_len = usize::try_from(piece_length).unwrap_or(usize::MAX);
    let mut hashes = vec![0u8; num_pieces.saturating_mul(20)];
    let (job_tx, job_rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(threads);
    let (done_tx, done_rx) = mpsc::channel::<(usize, [u8; 20], usize)>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    thread::scope(|scope| {
        for _ in 0..threads {
            let (job_rx, done_tx) = (Arc::clone(&job_rx), done_tx.clone());
            scope.spawn(move || {
                loop {
                    let job = job_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok((index, piece))) = job else { break };
                    let hash = crate::sha1(&piece);
                    if done_tx.send((index, hash, piece.len())).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let reader = scope.spawn(move || {
            read_pieces(files, piece_len, |index, piece| {
                job_tx.send((index, piece)).is_ok()
            })
        });
        // Results arrive while the reader runs; the loop ends when every
        // hashing thread has stopped, which is after the reader has.
        let mut hashed = 0u64;
        for (index, hash, len) in done_rx {
            if let Some(slot) = hashes.get_mut(index * 20..index * 20 + 20) {
                slot.copy_from_slice(&hash);
            }
            hashed += len as u64;
            progress(hashed, total);
        }
        reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;
    Ok(hashes)
}

/// Reads the files in order, handing each full piece (and the short last one)
/// to `emit`, which returns false to stop. A file that is shorter or longer
/// than when it was listed is an error: the torrent would not match it.
fn read_pieces(
    files: &[ContentFile],
    piece_len: usize,
    mut emit: impl FnMut(usize, Vec<u8>) -> bool,
) -> Result<(), CreateError> {
    let mut index = 0;
    let mut piece = Vec::with_capacity(piece_len);
    for file in files {
        let io_err = |error| CreateError::Io {
            path: file.path.clone(),
            error,
        };
        let mut reader = File::open(&file.path).map_err(io_err)?;
        let mut left = file.length;
        while left > 0 {
            let want = (piece_len - piece.len()) as u64;
            let n = (&mut reader)
                .take(want.min(left))
                .read_to_end(&mut piece)
                .map_err(io_err)?;
            if n == 0 {
                return Err(CreateError::Changed(file.path.clone()));
            }
            left -= n as u64;
            if piece.len() == piece_len {
                let full = std::mem::replace(&mut piece, Vec::with_capacity(piece_len));
                if !emit(index, full) {
                    return Ok(());
                }
                index += 1;
            }
        }
        if reader.read(&mut [0u8; 1]).map_err(io_err)? != 0 {
            return Err(CreateError::Changed(file.path.clone()));
        }
    }
    if !piece.is_empty() {
        emit(index, piece);
    }
    Ok(())
}

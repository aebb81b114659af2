//! The torrent's files under the download folder: safe paths, created when
//! first needed, and a bounded cache of open handles.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use metainfo::Info;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::StorageError;
use crate::flusher::Flusher;
use crate::store::Allocation;

/// Bytes written to one file after which a background flush of it begins.
const FLUSH_AFTER: u64 = 64 << 20;

/// One file of the torrent, as stored.
#[derive(Clone, Debug)]
pub(crate) struct StoredFile {
    /// The absolute path, under the download folder, for messages and
    /// stamps.
    pub(crate) path: PathBuf,
    /// The path relative to the download folder, which is what is opened.
    relative: PathBuf,
    pub(crate) length: u64,
    /// BEP 47 padding: never written, reads as zeros.
    pub(crate) padding: bool,
}

/// Open handles, at most `capacity` at once, least recently used closed
/// first, so a torrent of thousands of files does not run out of
/// descriptors.
#[derive(Debug)]
pub(crate) struct FileSet {
    root: PathBuf,
    /// The download folder, open, when the kernel has `openat2`: every path
    /// is then resolved beneath it by the kernel, race-free. Without it
    /// (Linux before 5.6, some sandboxes) paths are checked, then opened.
    root_dir: Option<OwnedFd>,
    allocation: Allocation,
    pub(crate) files: Vec<StoredFile>,
    open: Vec<Option<(File, bool)>>,
    order: VecDeque<usize>,
    capacity: usize,
    /// Bytes written to each file since its last flush began.
    unflushed: Vec<u64>,
    flush_after: u64,
    /// Started when a first file has `flush_after` bytes to flush.
    flusher: Option<Flusher>,
}

impl FileSet {
    /// The files of `info` under `root`, which is created if missing.
    pub(crate) fn new(
        info: &Info,
        root: &Path,
        capacity: usize,
        allocation: Allocation,
        parts: &str,
    ) -> Result<FileSet, StorageError> {
        std::fs::create_dir_all(root).map_err(|e| StorageError::io("create", root, e))?;
        let root = root
            .canonicalize()
            .map_err(|e| StorageError::io("open", root, e))?;
        // Sized for the part file too: pushed onto a full vector, it would
        // double the capacity (megabytes for a torrent of many files).
        let mut files: Vec<StoredFile> = Vec::with_capacity(info.files().len() + 1);
        files.extend(info.files().iter().map(|f| {
            // metainfo's paths are relative and free of `..`: joining
            // them cannot climb out; symbolic links are checked on open.
            let relative: PathBuf = info.file_path(f).collect();
            StoredFile {
                path: root.join(&relative),
                relative,
                length: f.length,
                padding: f.is_padding(),
            }
        }));
        // Last, the part file: where pieces' parts in unwanted files go.
        // Its name starts with a dot and holds the info-hash, so no torrent
        // path (checked by metainfo) can be it by accident... except one
        // that names it on purpose, which then simply shares it.
        files.push(StoredFile {
            path: root.join(parts),
            relative: PathBuf::from(parts),
            length: 0,
            padding: false,
        });
        let open = files.iter().map(|_| None).collect();
        Ok(FileSet {
            unflushed: vec![0; files.len()],
            flush_after: FLUSH_AFTER,
            flusher: None,
            root_dir: open_beneath_root(&root),
            root,
            allocation,
            files,
            open,
            order: VecDeque::new(),
            capacity: capacity.max(1),
        })
    }

    /// The handle of file `index`, opened for writing (created, and given
    /// its full length as the allocation mode says, if shorter) or for
    /// reading.
    pub(crate) fn get(&mut self, index: usize, write: bool) -> Result<&File, StorageError> {
        if write {
            // Data a background flush failed on may be lost: no more
            // writes, so the download stops with the error (as it would
            // had the flush been this thread's).
            self.flush_failure()?;
        }
        self.order.retain(|&i| i != index);
        let entry = match self.open[index].take() {
            Some((file, true)) if write => {
                self.check_unchanged(index, &file)?;
                (file, true)
            }
            Some((file, writable)) if writable || !write => (file, writable),
            // Not open, or open only for reading when writing is wanted.
            _ => {
                if self.order.len() >= self.capacity
                    && let Some(oldest) = self.order.pop_front()
                    && let Some((file, writable)) = self.open[oldest].take()
                    && writable
                {
                    self.retire(oldest, file)?;
                }
                (self.open_file(index, write)?, write)
            }
        };
        self.order.push_back(index);
        Ok(&self.open[index].insert(entry).0)
    }

    /// Closes a handle written through, once its data is on the disk, so
    /// that resume stamps never describe data still in memory. The flushing
    /// thread does it while the download goes on (a torrent of many small
    /// files evicts a handle for nearly every piece, and an `fdatasync`
    /// each on this thread cost more than the writes); it takes a few
    /// handles at most, then this waits. A failure there fails every later
    /// write and every flush before stamps.
    fn retire(&mut self, index: usize, file: File) -> Result<(), StorageError> {
        if self.flusher.is_none() {
            self.flusher = Flusher::start().ok();
        }
        let file = match &self.flusher {
            Some(flusher) => match flusher.close(index, file) {
                Ok(()) => return Ok(()),
                Err(file) => file,
            },
            None => file,
        };
        file.sync_data()
            .map_err(|e| StorageError::io("sync", &self.files[index].path, e))
    }

    /// The first background flush that failed, as an error.
    fn flush_failure(&self) -> Result<(), StorageError> {
        match self.flusher.as_ref().map(Flusher::failed) {
            Some(Err((index, e))) => Err(StorageError::io("sync", &self.files[index].path, e)),
            _ => Ok(()),
        }
    }

    /// Refuses to write through a handle whose file was deleted or
    /// truncated since it was opened: the write would be lost, or would
    /// leave holes where verified pieces were.
    fn check_unchanged(&self, index: usize, file: &File) -> Result<(), StorageError> {
        let stored = &self.files[index];
        let meta = file
            .metadata()
            .map_err(|e| StorageError::io("open", &stored.path, e))?;
        if meta.nlink() == 0 || meta.len() < stored.length {
            return Err(StorageError::Missing {
                path: stored.path.clone(),
            });
        }
        Ok(())
    }

    fn open_file(&self, index: usize, write: bool) -> Result<File, StorageError> {
        let stored = &self.files[index];
        let path = &stored.path;
        let file = match &self.root_dir {
            Some(root_dir) => open_beneath(root_dir, &self.root, stored, write)?,
            None => self.open_checked(stored, write)?,
        };
        let meta = file
            .metadata()
            .map_err(|e| StorageError::io("open", path, e))?;
        if !meta.is_file() {
            // A folder, FIFO or device where the torrent's file should be.
            return Err(StorageError::Missing { path: path.clone() });
        }
        if write {
            // A hard link could lead to a file outside the folder.
            if meta.nlink() > 1 {
                return Err(StorageError::OutsideFolder { path: path.clone() });
            }
            if meta.len() < stored.length {
                self.allocate(&file, stored)?;
            } else if meta.len() > stored.length && index != self.parts_index() {
                // A longer file in the way (an older or other version) is
                // cut to the torrent's length, so the download comes out
                // byte for byte; the part file has no set length.
                file.set_len(stored.length)
                    .map_err(|e| StorageError::io("truncate", path, e))?;
            }
        }
        Ok(file)
    }

    /// Gives a file its full length: sparse (no blocks until written), or
    /// with every block reserved now when full allocation was asked for and
    /// the file system can do it.
    fn allocate(&self, file: &File, stored: &StoredFile) -> Result<(), StorageError> {
        if self.allocation == Allocation::Full {
            match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, stored.length)
            {
                Ok(()) => return Ok(()),
                // Not supported by this file system: sparse it is.
                Err(Errno::OPNOTSUPP | Errno::NOSYS) => {}
                Err(e) => return Err(StorageError::io("allocate", &stored.path, e.into())),
            }
        }
        file.set_len(stored.length)
            .map_err(|e| StorageError::io("extend", &stored.path, e))
    }

    /// Opens by path after checking the folders on the way, for kernels
    /// without `openat2`. A folder swapped for a symbolic link between the
    /// check and the open is the race this cannot close.
    fn open_checked(&self, stored: &StoredFile, write: bool) -> Result<File, StorageError> {
        let path = &stored.path;
        if write {
            self.create_folders(path)?;
        } else if let Some(parent) = path.parent() {
            // Reads too: a folder on the way must lead inside.
            match parent.canonicalize() {
                Ok(real) if !real.starts_with(&self.root) => {
                    return Err(StorageError::OutsideFolder { path: path.clone() });
                }
                Ok(_) => {}
                Err(e) => return Err(StorageError::io("open", path, e)),
            }
        }
        // The file itself must not be a symbolic link at all, and opening
        // must not block (on a FIFO put where a file should be).
        let mut options = OpenOptions::new();
        options
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
        if write {
            options.write(true).create(true);
        }
        let action = if write { "create" } else { "open" };
        options
            .open(path)
            .map_err(|e| StorageError::io(action, path, e))
    }

    /// Counts `bytes` written to file `index`; past `flush_after` since
    /// the last, a background flush of the file begins.
    pub(crate) fn wrote(&mut self, index: usize, bytes: u64) {
        let Some(unflushed) = self.unflushed.get_mut(index) else {
            return;
        };
        *unflushed += bytes;
        if *unflushed < self.flush_after {
            return;
        }
        *unflushed = 0;
        let Some(Some((file, true))) = self.open.get(index) else {
            return;
        };
        let Ok(file) = file.try_clone() else {
            return;
        };
        if self.flusher.is_none() {
            // Without the thread, the flush before the stamps does it all.
            self.flusher = Flusher::start().ok();
        }
        if let Some(flusher) = &self.flusher {
            flusher.flush(index, file);
        }
    }

    /// Flushes every file written since the last call to the disk, so that
    /// stamps taken afterwards describe data that is really there. Closes
    /// all handles, so the next access sees the files as they are now.
    pub(crate) fn sync_and_close(&mut self) -> Result<(), StorageError> {
        let background = match &self.flusher {
            Some(flusher) => flusher.wait(),
            None => Ok(()),
        };
        self.unflushed.fill(0);
        let mut first_error = None;
        for index in 0..self.open.len() {
            if let Some((file, true)) = &self.open[index]
                && let Err(e) = file.sync_data()
            {
                first_error.get_or_insert(StorageError::io("sync", &self.files[index].path, e));
            }
            self.open[index] = None;
        }
        self.order.clear();
        if let Err((index, e)) = background {
            return Err(StorageError::io("sync", &self.files[index].path, e));
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Creates the folders above `path`, one at a time from the download
    /// folder down. A folder on the way that is a symbolic link must lead
    /// inside the download folder; nothing is created through one that does
    /// not.
    fn create_folders(&self, path: &Path) -> Result<(), StorageError> {
        let relative = path
            .strip_prefix(&self.root)
            .map_err(|_| StorageError::OutsideFolder {
                path: path.to_path_buf(),
            })?;
        let mut current = self.root.clone();
        let folders: Vec<_> = relative
            .parent()
            .map(|p| p.components().collect())
            .unwrap_or_default();
        for component in folders {
            current.push(component);
            match std::fs::symlink_metadata(&current) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let real = current
                        .canonicalize()
                        .map_err(|e| StorageError::io("open", &current, e))?;
                    if !real.starts_with(&self.root) {
                        return Err(StorageError::OutsideFolder { path: current });
                    }
                }
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    let error =
                        std::io::Error::other("a file is in the way of a folder the torrent needs");
                    return Err(StorageError::io("create", &current, error));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match std::fs::create_dir(&current) {
                        // Created meanwhile by another thread: fine.
                        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                            return Err(StorageError::io("create", &current, e));
                        }
                        _ => {}
                    }
                }
                Err(e) => return Err(StorageError::io("open", &current, e)),
            }
        }
        Ok(())
    }

    /// Creates the wanted zero-length files (they are never written
    /// otherwise) among the `count` files from `from` on; the index to go on
    /// from, or `None` once past the last. One that exists already is left
    /// alone, so that seeding from a read-only or hard-linked copy works.
    /// Nothing is kept open or flushed: an empty file holds no data, and
    /// one lost in a crash is made again at the next start.
    pub(crate) fn create_empty_files(
        &mut self,
        wanted: &[bool],
        from: usize,
        count: usize,
    ) -> Result<Option<usize>, StorageError> {
        let end = from
            .saturating_add(count)
            .min(wanted.len())
            .min(self.files.len());
        for (index, wanted) in wanted.iter().enumerate().take(end).skip(from) {
            let file = &self.files[index];
            if *wanted
                && file.length == 0
                && !file.padding
                && self.open[index].is_none()
                && self.open_file(index, false).is_err()
            {
                drop(self.open_file(index, true)?);
            }
        }
        Ok((end < wanted.len().min(self.files.len())).then_some(end))
    }

    /// The index of the part file.
    pub(crate) fn parts_index(&self) -> usize {
        self.files.len() - 1
    }

    /// Removes the part file, left by an earlier download of chosen files,
    /// once a download of every file no longer needs it; whether it was
    /// there. Left alone if it is open, or if a file of the torrent has its
    /// path (a torrent may name it on purpose).
    pub(crate) fn remove_parts(&mut self) -> Result<bool, StorageError> {
        let index = self.parts_index();
        let parts = &self.files[index];
        let named = self.files[..index]
            .iter()
            .any(|f| f.relative == parts.relative);
        if named || self.open[index].is_some() {
            return Ok(false);
        }
        match std::fs::remove_file(&parts.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StorageError::io("remove", &parts.path, e)),
        }
    }

    /// How many handles are open now.
    pub(crate) fn open_count(&self) -> usize {
        self.open.iter().filter(|f| f.is_some()).count()
    }
}

/// `openat2` beneath `dir`, retried on `EAGAIN`: the kernel gives that when
/// a rename elsewhere races a lookup through `..` (a relative link such as
/// `../real` inside the folder), and asks the caller to try again.
fn openat2_beneath(
    dir: &OwnedFd,
    path: &Path,
    flags: OFlags,
    mode: Mode,
) -> rustix::io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(dir, path, flags, mode, BENEATH) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            other => return other,
        }
    }
}

/// How paths are resolved beneath the download folder by the kernel.
const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

/// The download folder, open for `openat2`, or `None` if this kernel (or
/// sandbox) does not offer `openat2` with `RESOLVE_BENEATH`.
fn open_beneath_root(root: &Path) -> Option<OwnedFd> {
    let flags = OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC;
    let dir = rustix::fs::open(root, flags, Mode::empty()).ok()?;
    // Probe: any failure here means the fallback.
    if let Err(e) = rustix::fs::openat2(&dir, ".", flags, Mode::empty(), BENEATH) {
        tracing::warn!(
            error = %e,
            "openat2 is not available (Linux before 5.6, or a sandbox): paths are checked, then opened"
        );
        return None;
    }
    Some(dir)
}

/// Opens `stored` with every component resolved beneath `root_dir` by the
/// kernel: a symbolic link (or `..`) that would lead out fails with `EXDEV`
/// whenever it was put there. Folders are created one at a time, each in a
/// folder already resolved beneath the root. The file itself must not be a
/// symbolic link.
fn open_beneath(
    root_dir: &OwnedFd,
    root: &Path,
    stored: &StoredFile,
    write: bool,
) -> Result<File, StorageError> {
    let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    // openat2 refuses a mode without O_CREAT.
    let (flags, mode) = if write {
        (
            flags | OFlags::RDWR | OFlags::CREATE,
            Mode::from_raw_mode(0o644),
        )
    } else {
        (flags | OFlags::RDONLY, Mode::empty())
    };
    let action = if write { "create" } else { "open" };
    let mut opened = openat2_beneath(root_dir, &stored.relative, flags, mode);
    // The folders are made when the file's open finds them missing (or a
    // file in the way, which they report clearly), not walked on every
    // open: the kernel resolves the whole path beneath the root either way.
    if write
        && matches!(opened, Err(Errno::NOENT | Errno::NOTDIR))
        && let Some(parent) = stored.relative.parent()
    {
        create_folders_beneath(root_dir, root, parent)?;
        opened = openat2_beneath(root_dir, &stored.relative, flags, mode);
    }
    let fd = opened.map_err(|e| StorageError::io(action, &stored.path, e.into()))?;
    Ok(File::from(fd))
}

/// Creates the folders of `relative` (a folder path under the root) that do
/// not exist yet.
fn create_folders_beneath(
    root_dir: &OwnedFd,
    root: &Path,
    relative: &Path,
) -> Result<(), StorageError> {
    let flags = OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC;
    let mut above = PathBuf::new();
    for component in relative.components() {
        let current = above.join(component);
        match openat2_beneath(root_dir, &current, flags, Mode::empty()) {
            Ok(_) => {}
            Err(Errno::NOENT) => {
                let parent = openat2_beneath(root_dir, dot_if_empty(&above), flags, Mode::empty())
                    .map_err(|e| StorageError::io("open", &root.join(&above), e.into()))?;
                match rustix::fs::mkdirat(
                    &parent,
                    component.as_os_str(),
                    Mode::from_raw_mode(0o755),
                ) {
                    // Created meanwhile by another thread: fine.
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => {
                        return Err(StorageError::io("create", &root.join(&current), e.into()));
                    }
                }
            }
            Err(Errno::NOTDIR) => {
                let error =
                    std::io::Error::other("a file is in the way of a folder the torrent needs");
                return Err(StorageError::io("create", &root.join(&current), error));
            }
            Err(e) => return Err(StorageError::io("open", &root.join(&current), e.into())),
        }
        above = current;
    }
    Ok(())
}

fn dot_if_empty(path: &Path) -> &Path {
    if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use metainfo::{Metainfo, TorrentBuilder};
    use std::os::unix::fs::FileExt as _;

    /// A torrent of `content/sub/file` (100 bytes).
    fn torrent(dir: &Path) -> Metainfo {
        let content = dir.join("content");
        std::fs::create_dir_all(content.join("sub")).unwrap();
        std::fs::write(content.join("sub/file"), [7u8; 100]).unwrap();
        TorrentBuilder::new(&content)
            .piece_length(16 * 1024)
            .build(|_, _| {})
            .unwrap()
    }

    /// A file set of `torrent` under `root`: four handles, sparse files.
    fn file_set(torrent: &Metainfo, root: &Path) -> FileSet {
        FileSet::new(torrent.info(), root, 4, Allocation::Sparse, ".parts").unwrap()
    }

    /// File sets both with `openat2` and with the path-checking fallback.
    fn both_modes(torrent: &Metainfo, root: &Path) -> Vec<FileSet> {
        let beneath = file_set(torrent, root);
        assert!(
            beneath.root_dir.is_some(),
            "this kernel has openat2 (Linux 5.6+); the test needs it"
        );
        let mut checked = file_set(torrent, root);
        checked.root_dir = None;
        vec![beneath, checked]
    }

    #[test]
    fn a_failed_background_flush_stops_writes_and_every_later_flush() {
        let source = tempfile::tempdir().unwrap();
        let torrent = torrent(source.path());
        let target = tempfile::tempdir().unwrap();
        let mut set = file_set(&torrent, target.path());
        set.get(0, true)
            .unwrap()
            .write_all_at(&[1u8; 100], 0)
            .unwrap();
        // fdatasync of a pipe fails (EINVAL): a flush the disk refused.
        let (_reader, writer) = std::io::pipe().unwrap();
        let flusher = Flusher::start().unwrap();
        flusher.close(0, File::from(OwnedFd::from(writer))).unwrap();
        set.flusher = Some(flusher);
        for _ in 0..2 {
            let err = set.sync_and_close().unwrap_err().to_string();
            assert!(err.contains("sync"), "{err}");
            let err = set.get(0, true).unwrap_err().to_string();
            assert!(err.contains("sync"), "{err}");
        }
        // Reading, to seed what is on the disk, still works.
        let mut back = [0u8; 100];
        set.get(0, false)
            .unwrap()
            .read_exact_at(&mut back, 0)
            .unwrap();
        assert_eq!(back, [1u8; 100]);
    }

    #[test]
    fn evicted_handles_are_flushed_by_the_thread_before_stamps() {
        let source = tempfile::tempdir().unwrap();
        let content = source.path().join("content");
        std::fs::create_dir_all(content.join("deep/er")).unwrap();
        for name in ["a", "deep/b", "deep/er/c"] {
            std::fs::write(content.join(name), [0u8; 10]).unwrap();
        }
        let torrent = TorrentBuilder::new(&content)
            .piece_length(16 * 1024)
            .build(|_, _| {})
            .unwrap();
        let target = tempfile::tempdir().unwrap();
        for mut set in both_modes(&torrent, target.path()) {
            set.capacity = 1;
            // a, b, c, then a again: three handles written through evicted.
            for (round, index) in [0, 1, 2, 0].into_iter().enumerate() {
                let byte = u8::try_from(round).unwrap() + 1;
                set.get(index, true)
                    .unwrap()
                    .write_all_at(&[byte; 5], 5 * (round as u64 / 3))
                    .unwrap();
                assert_eq!(set.open_count(), 1);
            }
            set.sync_and_close().unwrap();
            let flusher = set.flusher.as_ref().expect("evictions start the thread");
            assert_eq!(flusher.done(), 3);
            assert_eq!(set.open_count(), 0);
            let read =
                |name: &str| std::fs::read(target.path().join("content").join(name)).unwrap();
            assert_eq!(read("a"), [[1u8; 5], [4u8; 5]].concat());
            assert_eq!(read("deep/b"), [[2u8; 5], [0u8; 5]].concat());
            assert_eq!(read("deep/er/c"), [[3u8; 5], [0u8; 5]].concat());
        }
    }

    #[test]
    fn written_files_are_flushed_in_the_background_and_waited_for_before_stamps() {
        let source = tempfile::tempdir().unwrap();
        let torrent = torrent(source.path());
        let target = tempfile::tempdir().unwrap();
        let mut set = file_set(&torrent, target.path());
        set.flush_after = 40;
        set.get(0, true)
            .unwrap()
            .write_all_at(&[1u8; 30], 0)
            .unwrap();
        set.wrote(0, 30);
        assert!(set.flusher.is_none(), "30 bytes are not enough to flush");
        set.get(0, true)
            .unwrap()
            .write_all_at(&[2u8; 70], 30)
            .unwrap();
        set.wrote(0, 70);
        set.sync_and_close().unwrap();
        let flusher = set.flusher.as_ref().expect("a flusher past 40 bytes");
        // The flush before stamps waited for the background one.
        assert_eq!(flusher.done(), 1);
        assert_eq!(set.unflushed[0], 0);
        // Counting starts again; a file not open for writing is skipped.
        set.wrote(0, 50);
        set.sync_and_close().unwrap();
        assert_eq!(set.flusher.as_ref().unwrap().done(), 1);
    }

    #[test]
    fn links_that_lead_out_are_refused_in_both_modes() {
        let source = tempfile::tempdir().unwrap();
        let torrent = torrent(source.path());
        for mode in 0..2 {
            // A folder on the way is a link out.
            let outside = tempfile::tempdir().unwrap();
            let target = tempfile::tempdir().unwrap();
            std::fs::create_dir(target.path().join("content")).unwrap();
            std::os::unix::fs::symlink(outside.path(), target.path().join("content/sub")).unwrap();
            let mut set = both_modes(&torrent, target.path()).swap_remove(mode);
            let err = set.get(0, true).unwrap_err();
            assert!(
                matches!(err, StorageError::OutsideFolder { .. }),
                "mode {mode}: {err}"
            );
            let err = set.get(0, false).unwrap_err();
            assert!(
                matches!(err, StorageError::OutsideFolder { .. }),
                "mode {mode}: {err}"
            );
            assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);

            // The file is a link, even one that stays inside.
            let target = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(target.path().join("content/sub")).unwrap();
            std::fs::write(target.path().join("elsewhere"), b"x").unwrap();
            std::os::unix::fs::symlink(
                target.path().join("elsewhere"),
                target.path().join("content/sub/file"),
            )
            .unwrap();
            let mut set = both_modes(&torrent, target.path()).swap_remove(mode);
            let err = set.get(0, true).unwrap_err();
            assert!(
                matches!(err, StorageError::OutsideFolder { .. }),
                "mode {mode}: {err}"
            );
            assert_eq!(
                std::fs::read(target.path().join("elsewhere")).unwrap(),
                b"x"
            );
        }
    }

    #[test]
    fn links_that_stay_inside_are_followed_in_both_modes() {
        let source = tempfile::tempdir().unwrap();
        let torrent = torrent(source.path());
        for mode in 0..2 {
            let target = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(target.path().join("content/real")).unwrap();
            std::os::unix::fs::symlink("real", target.path().join("content/sub")).unwrap();
            let mut set = both_modes(&torrent, target.path()).swap_remove(mode);
            set.get(0, true).unwrap();
            let meta = std::fs::metadata(target.path().join("content/real/file")).unwrap();
            assert_eq!(meta.len(), 100, "mode {mode}");
        }
    }

    #[test]
    fn a_file_in_the_way_of_a_folder_is_an_error_in_both_modes() {
        let source = tempfile::tempdir().unwrap();
        let torrent = torrent(source.path());
        for mode in 0..2 {
            let target = tempfile::tempdir().unwrap();
            std::fs::create_dir(target.path().join("content")).unwrap();
            std::fs::write(target.path().join("content/sub"), b"x").unwrap();
            let mut set = both_modes(&torrent, target.path()).swap_remove(mode);
            let err = set.get(0, true).unwrap_err().to_string();
            assert!(err.contains("a file is in the way"), "mode {mode}: {err}");
        }
    }
}

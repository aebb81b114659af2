//! The torrent's files under the download folder: safe paths, created when
//! first needed, and a bounded cache of open handles.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use metainfo::Info;

use crate::error::StorageError;

/// One file of the torrent, as stored.
#[derive(Clone, Debug)]
pub(crate) struct StoredFile {
    /// The absolute path, under the download folder.
    pub(crate) path: PathBuf,
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
    pub(crate) files: Vec<StoredFile>,
    open: Vec<Option<(File, bool)>>,
    order: VecDeque<usize>,
    capacity: usize,
}

impl FileSet {
    /// The files of `info` under `root`, which is created if missing.
    pub(crate) fn new(info: &Info, root: &Path, capacity: usize) -> Result<FileSet, StorageError> {
        std::fs::create_dir_all(root).map_err(|e| StorageError::io("create", root, e))?;
        let root = root
            .canonicalize()
            .map_err(|e| StorageError::io("open", root, e))?;
        let files: Vec<StoredFile> = info
            .files()
            .iter()
            .map(|f| StoredFile {
                // metainfo's paths are relative and free of `..`: joining
                // them cannot climb out; symbolic links are checked on open.
                path: info.file_path(f).fold(root.clone(), |p, c| p.join(c)),
                length: f.length,
                padding: f.is_padding(),
            })
            .collect();
        let open = files.iter().map(|_| None).collect();
        Ok(FileSet {
            root,
            files,
            open,
            order: VecDeque::new(),
            capacity: capacity.max(1),
        })
    }

    /// The handle of file `index`, opened for writing (created, and extended
    /// to its full length as a sparse file, if needed) or for reading.
    pub(crate) fn get(&mut self, index: usize, write: bool) -> Result<&File, StorageError> {
        self.order.retain(|&i| i != index);
        let entry = match self.open[index].take() {
            Some((file, writable)) if writable || !write => (file, writable),
            // Not open, or open only for reading when writing is wanted.
            _ => {
                if self.order.len() >= self.capacity
                    && let Some(oldest) = self.order.pop_front()
                    && let Some((file, writable)) = self.open[oldest].take()
                    && writable
                {
                    // Written data reaches the disk before its handle goes, so
                    // that resume stamps never describe data still in memory.
                    file.sync_data()
                        .map_err(|e| StorageError::io("sync", &self.files[oldest].path, e))?;
                }
                (self.open_file(index, write)?, write)
            }
        };
        self.order.push_back(index);
        Ok(&self.open[index].insert(entry).0)
    }

    fn open_file(&self, index: usize, write: bool) -> Result<File, StorageError> {
        let stored = &self.files[index];
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
        let file = options
            .open(path)
            .map_err(|e| StorageError::io(action, path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| StorageError::io("open", path, e))?;
        if !meta.is_file() {
            // A folder, FIFO or device where the torrent's file should be.
            return Err(StorageError::Missing { path: path.clone() });
        }
        if write {
            // A hard link could lead to a file outside the folder.
            if std::os::unix::fs::MetadataExt::nlink(&meta) > 1 {
                return Err(StorageError::OutsideFolder { path: path.clone() });
            }
            if meta.len() < stored.length {
                // Sparse: no blocks are allocated until written.
                file.set_len(stored.length)
                    .map_err(|e| StorageError::io("extend", path, e))?;
            }
        }
        Ok(file)
    }

    /// Flushes every file written since the last call to the disk, so that
    /// stamps taken afterwards describe data that is really there. Closes
    /// all handles, so the next access sees the files as they are now.
    pub(crate) fn sync_and_close(&mut self) -> Result<(), StorageError> {
        for index in 0..self.open.len() {
            if let Some((file, true)) = &self.open[index] {
                file.sync_data()
                    .map_err(|e| StorageError::io("sync", &self.files[index].path, e))?;
            }
            self.open[index] = None;
        }
        self.order.clear();
        Ok(())
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

    /// Creates every zero-length file (they are never written otherwise).
    pub(crate) fn create_empty_files(&mut self) -> Result<(), StorageError> {
        for index in 0..self.files.len() {
            if self.files[index].length == 0 && !self.files[index].padding {
                self.get(index, true)?;
            }
        }
        Ok(())
    }

    /// How many handles are open now.
    pub(crate) fn open_count(&self) -> usize {
        self.open.iter().filter(|f| f.is_some()).count()
    }
}

use std::io;
use std::path::{Path, PathBuf};

/// A storage failure, classified so that the user can be told what to do.
///
/// None of these leaves a verified piece changed: pieces are written whole,
/// only after their hash matched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The disk (or quota) is full.
    #[error("the disk holding {} is full: free some space, then resume", path.display())]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// Not allowed to read or write a file or folder.
    #[error("permission denied for {}: check who owns the download folder", path.display())]
    PermissionDenied {
        /// The file or folder.
        path: PathBuf,
    },
    /// A file that should hold downloaded data is missing or shorter than
    /// the torrent says: something changed it underneath us.
    #[error("{} is missing or shorter than expected: it was moved, deleted or truncated", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A path would lead outside the download folder (through a symbolic
    /// link, say), so it is not used.
    #[error("refusing to use {}: it leads outside the download folder", path.display())]
    OutsideFolder {
        /// The path.
        path: PathBuf,
    },
    /// Any other I/O error.
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        /// What was being done ("write", "read", "create").
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// A caller passed data of the wrong size for a piece or block: a bug,
    /// not a disk problem.
    #[error("piece {piece}: {problem}")]
    BadRequest {
        /// The piece.
        piece: u32,
        /// What was wrong.
        problem: &'static str,
    },
}

impl StorageError {
    /// Classifies an I/O error on `path`.
    pub(crate) fn io(action: &'static str, path: &Path, error: io::Error) -> Self {
        let path = path.to_path_buf();
        match error.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                StorageError::DiskFull { path }
            }
            io::ErrorKind::PermissionDenied => StorageError::PermissionDenied { path },
            io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof => {
                StorageError::Missing { path }
            }
            _ if matches!(error.raw_os_error(), Some(libc::ELOOP | libc::EXDEV)) => {
                StorageError::OutsideFolder { path }
            }
            _ => StorageError::Io {
                action,
                path,
                error,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors the OS gives map to what the user is told. (An end-to-end
    /// disk-full test, on a small file system, is still to come.)
    #[test]
    fn os_errors_are_classified() {
        let path = Path::new("/downloads/x.bin");
        let cases = [
            (
                libc::ENOSPC,
                "the disk holding /downloads/x.bin is full: free some space, then resume",
            ),
            (
                libc::EDQUOT,
                "the disk holding /downloads/x.bin is full: free some space, then resume",
            ),
            (
                libc::EACCES,
                "permission denied for /downloads/x.bin: check who owns the download folder",
            ),
            (
                libc::ENOENT,
                "/downloads/x.bin is missing or shorter than expected: it was moved, deleted or truncated",
            ),
            (
                libc::ELOOP,
                "refusing to use /downloads/x.bin: it leads outside the download folder",
            ),
            (
                libc::EIO,
                "cannot write /downloads/x.bin: Input/output error (os error 5)",
            ),
        ];
        for (errno, message) in cases {
            let err = StorageError::io("write", path, io::Error::from_raw_os_error(errno));
            assert_eq!(err.to_string(), message, "errno {errno}");
        }
    }
}

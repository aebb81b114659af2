/// Why a `.torrent` file was refused. Each message names the field at fault
/// (`info.files[2].path`, say) and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not bencode.
    #[error("invalid bencode: {0}")]
    Bencode(bencode::Error),
    /// The bencode is not a dictionary.
    #[error("it holds a bencoded {found}, not a dictionary")]
    NotADictionary {
        /// What it holds.
        found: &'static str,
    },
    /// A required field is absent.
    #[error("missing field `{field}`")]
    Missing {
        /// Where the field was expected.
        field: String,
    },
    /// A field holds the wrong kind of value.
    #[error("field `{field}` should be {expected}, found a {found}")]
    WrongType {
        /// The field.
        field: String,
        /// What it should be.
        expected: &'static str,
        /// What it was.
        found: &'static str,
    },
    /// A field has a value out of its range or otherwise unusable.
    #[error("field `{field}` {problem}")]
    BadValue {
        /// The field.
        field: String,
        /// What is wrong with its value.
        problem: String,
    },
    /// A file path could lead outside the download folder or cannot be a file
    /// name.
    #[error("unsafe file path {path:?} in `{field}`: {reason}")]
    UnsafePath {
        /// The field holding the path.
        field: String,
        /// The path, `/`-joined, as the torrent gives it.
        path: String,
        /// What makes it unsafe.
        reason: &'static str,
    },
    /// Two files have the same path, or one file's path is another's folder.
    #[error("file path {path:?} {conflict}")]
    PathConflict {
        /// The path, `/`-joined.
        path: String,
        /// How it conflicts.
        conflict: &'static str,
    },
    /// The torrent is BitTorrent v2 only (BEP 52: a `file tree` and
    /// `meta version` 2, no v1 `pieces`), which btc cannot download.
    #[error(
        "the torrent is for BitTorrent v2 only (BEP 52), which btc does not support; a hybrid v1/v2 torrent of the same content would work"
    )]
    V2Only,
    /// The number of piece hashes does not fit the total length.
    #[error(
        "the torrent has {found} piece hashes, but {total_length} bytes in pieces of {piece_length} need {expected}"
    )]
    PieceCount {
        /// Hashes present.
        found: u64,
        /// Hashes needed.
        expected: u64,
        /// Sum of the file lengths.
        total_length: u64,
        /// The piece length.
        piece_length: u64,
    },
}

// Not `#[from]`: the message already includes the bencode error, so it is not
// also reported as a source (which would print it twice in a chain).
impl From<bencode::Error> for Error {
    fn from(err: bencode::Error) -> Self {
        Error::Bencode(err)
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

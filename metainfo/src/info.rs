//! The info dictionary: what the info-hash identifies, checked strictly.

use std::collections::BTreeMap;

use bencode::{OwnedValue, Value};

use crate::error::{Error, Result};
use crate::fields::{
    bad, bytes, dict, extra_keys, int, length, list, lossy, missing, opt_int, opt_lossy,
    opt_string, required,
};
use crate::layout::Layout;
use crate::path;

/// The largest piece length accepted: 256 MiB. Real torrents stay far below;
/// a larger one would make verifying a single piece cost too much memory.
pub const MAX_PIECE_LENGTH: u64 = 256 << 20;

/// The largest total length accepted: 1 PiB.
pub const MAX_TOTAL_LENGTH: u64 = 1 << 50;

/// The info dictionary of a torrent, validated.
///
/// Obtained from a [`Metainfo`](crate::Metainfo), never built by hand, so its
/// paths are safe and its pieces fit its files.
#[derive(Clone, Debug)]
pub struct Info {
    name: String,
    piece_length: u32,
    pieces: Vec<[u8; 20]>,
    files: Vec<FileEntry>,
    multi_file: bool,
    private: bool,
    extra: BTreeMap<Vec<u8>, OwnedValue>,
    layout: Layout,
}

/// One file of a torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// The path as safe components, relative to the torrent's root: the
    /// folder `name` for a multi-file torrent, the download folder for a
    /// single-file one (whose only file's path is `[name]`). Use
    /// [`Info::file_path`] for the path relative to the download folder.
    pub path: Vec<String>,
    /// Length in bytes.
    pub length: u64,
    /// BEP 47 attributes (`p` padding, `x` executable, `h` hidden, `l` link).
    pub attr: Option<String>,
}

impl FileEntry {
    /// True for a BEP 47 padding file, which holds only zeros and is not
    /// meant to be written out.
    pub fn is_padding(&self) -> bool {
        self.attr.as_deref().is_some_and(|a| a.contains('p'))
    }
}

impl Info {
    /// The suggested name: the file name of a single-file torrent, the folder
    /// name of a multi-file one (`name.utf-8` when present).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes per piece (the last piece may be shorter).
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// The SHA-1 hash of every piece, in order.
    pub fn pieces(&self) -> &[[u8; 20]] {
        &self.pieces
    }

    /// The SHA-1 hash of one piece.
    pub fn piece_hash(&self, piece: u32) -> Option<&[u8; 20]> {
        self.pieces.get(piece as usize)
    }

    /// The files in torrent order, padding files (BEP 47) included.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// True when the torrent lists its files (even just one) in `files`, so
    /// that they live in a folder called [`Info::name`].
    pub fn is_multi_file(&self) -> bool {
        self.multi_file
    }

    /// `private` (BEP 27): find peers only through the torrent's trackers.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// Info keys this crate does not interpret (`source`, say). They count
    /// in the info-hash, which is why the raw info bytes are kept.
    pub fn extra(&self) -> &BTreeMap<Vec<u8>, OwnedValue> {
        &self.extra
    }

    /// The sum of the file lengths.
    pub fn total_length(&self) -> u64 {
        self.layout.total_length()
    }

    /// The piece and file geometry.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A file's path relative to the download folder, as components.
    pub fn file_path<'a>(&'a self, file: &'a FileEntry) -> impl Iterator<Item = &'a str> + 'a {
        let root = self.multi_file.then_some(self.name.as_str());
        root.into_iter().chain(file.path.iter().map(String::as_str))
    }

    /// A file's path relative to the download folder, `/`-joined, for display.
    pub fn display_path(&self, file: &FileEntry) -> String {
        self.file_path(file).collect::<Vec<_>>().join("/")
    }

    pub(crate) fn from_value(value: Value<'_>) -> Result<Info> {
        let info = dict(value, "info")?;
        let name = match opt_string(info, b"name.utf-8", "info.name.utf-8")? {
            Some(name) => name,
            None => lossy(required(info, b"name", "info.name")?, "info.name")?,
        };
        path::check_component(&name).map_err(|reason| Error::UnsafePath {
            field: "info.name".into(),
            path: name.clone(),
            reason,
        })?;

        let field = "info.piece length";
        let piece_length = int(required(info, b"piece length", field)?, field)?;
        let piece_length = u32::try_from(piece_length)
            .ok()
            .filter(|&n| n > 0 && u64::from(n) <= MAX_PIECE_LENGTH)
            .ok_or_else(|| {
                let problem =
                    format!("must be between 1 and {MAX_PIECE_LENGTH}, not {piece_length}");
                bad(field, problem)
            })?;

        if info.get(b"pieces").is_none()
            && (info.get(b"file tree").is_some() || info.get(b"meta version").is_some())
        {
            return Err(Error::V2Only);
        }
        let pieces = bytes(required(info, b"pieces", "info.pieces")?, "info.pieces")?;
        let (pieces, rest) = pieces.as_chunks::<20>();
        if !rest.is_empty() {
            let problem = format!(
                "must be a multiple of 20 bytes long, not {}",
                pieces.len() * 20 + rest.len()
            );
            return Err(bad("info.pieces", problem));
        }

        let (files, multi_file) = match (info.get(b"length"), info.get(b"files")) {
            (Some(len), None) => {
                let file = FileEntry {
                    path: vec![name.clone()],
                    length: length(len, "info.length")?,
                    attr: opt_lossy(info, b"attr", "info.attr")?,
                };
                (vec![file], false)
            }
            (None, Some(files)) => (parse_files(files)?, true),
            (Some(_), Some(_)) => {
                let problem = "has both `length` and `files`; a torrent is single-file or multi-file, not both";
                return Err(bad("info", problem.into()));
            }
            (None, None) => return Err(missing("info.length` or `info.files")),
        };
        // Padding files are never written, so they may share a path.
        path::check_conflicts(
            multi_file.then_some(name.as_str()),
            files
                .iter()
                .filter(|f| !f.is_padding())
                .map(|f| f.path.as_slice()),
        )?;

        let layout = Layout::new(u64::from(piece_length), files.iter().map(|f| f.length))
            .filter(|l| l.total_length() <= MAX_TOTAL_LENGTH)
            .ok_or_else(|| {
                let problem =
                    format!("describes more than {MAX_TOTAL_LENGTH} bytes or 2^32 pieces");
                bad("info", problem)
            })?;
        if layout.total_length() == 0 {
            return Err(bad("info", "describes no data: every file is empty".into()));
        }
        if u64::from(layout.num_pieces()) != pieces.len() as u64 {
            return Err(Error::PieceCount {
                found: pieces.len() as u64,
                expected: u64::from(layout.num_pieces()),
                total_length: layout.total_length(),
                piece_length: u64::from(piece_length),
            });
        }
        let private = opt_int(info, b"private", "info.private")?.is_some_and(|p| p != 0);
        let known: &[&[u8]] = &[
            b"attr",
            b"files",
            b"length",
            b"name",
            b"name.utf-8",
            b"piece length",
            b"pieces",
            b"private",
        ];
        Ok(Info {
            name,
            piece_length,
            pieces: pieces.to_vec(),
            files,
            multi_file,
            private,
            extra: extra_keys(info, known),
            layout,
        })
    }
}

fn parse_files(value: Value<'_>) -> Result<Vec<FileEntry>> {
    let entries = list(value, "info.files")?;
    // Sized once, and each path to its components: a torrent of a hundred
    // thousand files would otherwise hold tens of megabytes of slack.
    let mut files = Vec::with_capacity(entries.len());
    for (i, item) in entries.iter().enumerate() {
        let field = format!("info.files[{i}]");
        let file = dict(item, &field)?;
        let length_field = format!("{field}.length");
        let length = length(required(file, b"length", &length_field)?, &length_field)?;
        let (key, path_field) = match file.get(b"path.utf-8") {
            Some(_) => (&b"path.utf-8"[..], format!("{field}.path.utf-8")),
            None => (&b"path"[..], format!("{field}.path")),
        };
        let components = list(required(file, key, &path_field)?, &path_field)?;
        let mut path = Vec::with_capacity(components.len());
        for component in components.iter() {
            path.push(lossy(component, &path_field)?);
        }
        path::check_path(&path, &path_field)?;
        let attr = opt_lossy(file, b"attr", &format!("{field}.attr"))?;
        files.push(FileEntry { path, length, attr });
    }
    if files.is_empty() {
        return Err(bad("info.files", "is empty".into()));
    }
    Ok(files)
}

//! The parsed, validated contents of a `.torrent` file.

use std::collections::BTreeMap;

use bencode::{Dict, Encoder, List, OwnedValue, Raw, Value};

use crate::error::{Error, Result};
use crate::ids::InfoHash;
use crate::layout::Layout;
use crate::path;

/// The largest piece length accepted: 256 MiB. Real torrents stay far below;
/// a larger one would make verifying a single piece cost too much memory.
pub const MAX_PIECE_LENGTH: u64 = 256 << 20;

/// The largest total length accepted: 1 PiB.
pub const MAX_TOTAL_LENGTH: u64 = 1 << 50;

/// A parsed and validated `.torrent` file.
///
/// It can only be made by [`Metainfo::from_bytes`] (or a
/// [`TorrentBuilder`](crate::TorrentBuilder)), so its file paths are safe, its
/// piece hashes fit its length, and its info-hash is the SHA-1 of the info
/// dictionary's bytes as they were in the file.
#[derive(Clone, Debug)]
pub struct Metainfo {
    /// The `announce` URL, if any.
    pub announce: Option<String>,
    /// The `announce-list` tiers (BEP 12), with empty tiers dropped.
    pub announce_list: Vec<Vec<String>>,
    /// `creation date`, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// `comment` (`comment.utf-8` when present).
    pub comment: Option<String>,
    /// `created by`.
    pub created_by: Option<String>,
    /// Web seeds from `url-list` (BEP 19).
    pub url_list: Vec<String>,
    /// The info dictionary.
    pub info: Info,
    /// Top-level keys this crate does not interpret, kept for writing back.
    pub extra: BTreeMap<Vec<u8>, OwnedValue>,
    info_hash: InfoHash,
    raw_info: Vec<u8>,
}

/// The info dictionary: what the info-hash identifies.
#[derive(Clone, Debug)]
pub struct Info {
    /// The suggested name: the file name of a single-file torrent, the folder
    /// name of a multi-file one (`name.utf-8` when present).
    pub name: String,
    /// Bytes per piece (the last piece may be shorter).
    pub piece_length: u32,
    /// One SHA-1 hash per piece.
    pub pieces: Vec<[u8; 20]>,
    /// The files in torrent order. A single-file torrent has one, named `name`.
    pub files: Vec<FileEntry>,
    /// True when the torrent lists its files (even just one) in `files`;
    /// their paths then start with the folder `name`.
    pub multi_file: bool,
    /// `private` (BEP 27): use only the torrent's trackers to find peers.
    pub private: bool,
    /// Info keys this crate does not interpret (`source`, say). They are part
    /// of the info-hash, which is why the raw bytes are kept.
    pub extra: BTreeMap<Vec<u8>, OwnedValue>,
    layout: Layout,
}

/// One file of a torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// The path relative to the download folder, as safe components: for a
    /// multi-file torrent it starts with the torrent's name.
    pub path: Vec<String>,
    /// Length in bytes.
    pub length: u64,
    /// BEP 47 attributes (`p` padding, `x` executable, `h` hidden, `l` link).
    pub attr: Option<String>,
}

impl FileEntry {
    /// The path `/`-joined, for display.
    pub fn display_path(&self) -> String {
        self.path.join("/")
    }

    /// True for a BEP 47 padding file, which holds only zeros and is not
    /// meant to be written out.
    pub fn is_padding(&self) -> bool {
        self.attr.as_deref().is_some_and(|a| a.contains('p'))
    }
}

impl Metainfo {
    /// Parses and validates a `.torrent` file.
    ///
    /// Dictionary keys may be out of order (real torrents have such files);
    /// everything else of BEP 3 is enforced.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo> {
        let root = bencode::Decoder::lenient().decode(bytes)?;
        let root = root.as_dict().ok_or(Error::NotADictionary {
            found: root.kind_name(),
        })?;
        let info_value = root.get(b"info").ok_or_else(|| missing("info"))?;
        let info = Info::from_value(info_value)?;
        let raw_info = info_value.raw().to_vec();

        let announce = opt_string(root, b"announce", "announce")?;
        let announce_list = match root.get(b"announce-list") {
            None => Vec::new(),
            Some(value) => parse_tiers(value)?,
        };
        let url_list = match root.get(b"url-list") {
            None => Vec::new(),
            Some(value) if value.as_bytes().is_some_and(<[u8]>::is_empty) => Vec::new(),
            Some(value) if value.as_bytes().is_some() => vec![string(value, "url-list")?],
            Some(value) => list(value, "url-list")?
                .iter()
                .enumerate()
                .map(|(i, v)| string(v, &format!("url-list[{i}]")))
                .collect::<Result<_>>()?,
        };
        let comment = match opt_string(root, b"comment.utf-8", "comment.utf-8")? {
            Some(c) => Some(c),
            None => opt_lossy(root, b"comment", "comment")?,
        };
        let known: &[&[u8]] = &[
            b"announce",
            b"announce-list",
            b"comment",
            b"comment.utf-8",
            b"created by",
            b"creation date",
            b"info",
            b"url-list",
        ];
        Ok(Metainfo {
            announce,
            announce_list,
            creation_date: opt_int(root, b"creation date", "creation date")?,
            comment,
            created_by: opt_lossy(root, b"created by", "created by")?,
            url_list,
            extra: extra_keys(root, known),
            info_hash: InfoHash::of_info_bytes(&raw_info),
            info,
            raw_info,
        })
    }

    /// The v1 info-hash.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The info dictionary's bytes, exactly as in the file.
    pub fn raw_info(&self) -> &[u8] {
        &self.raw_info
    }

    /// The piece and file geometry.
    pub fn layout(&self) -> &Layout {
        &self.info.layout
    }

    /// Trackers by tier: `announce-list` when it has any, else `announce`
    /// alone, as BEP 12 says.
    pub fn trackers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            self.announce_list.clone()
        } else {
            self.announce.iter().map(|a| vec![a.clone()]).collect()
        }
    }

    /// Encodes the torrent as a `.torrent` file. The info dictionary is
    /// written as its original bytes, so the info-hash cannot change.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        e.dict(|d| {
            for (key, value) in &self.extra {
                d.entry(key, value);
            }
            d.entry_opt(b"announce", self.announce.as_ref());
            if !self.announce_list.is_empty() {
                d.entry(b"announce-list", &self.announce_list);
            }
            d.entry_opt(b"comment", self.comment.as_ref());
            d.entry_opt(b"created by", self.created_by.as_ref());
            d.entry_opt(b"creation date", self.creation_date.as_ref());
            d.entry(b"info", &Raw(&self.raw_info));
            // BEP 19 allows a string or a list; one URL is written as a string,
            // as mktorrent does.
            match self.url_list.as_slice() {
                [] => {}
                [one] => d.entry(b"url-list", one),
                many => d.entry(b"url-list", many),
            }
        });
        e.into_bytes()
    }
}

impl Info {
    fn from_value(value: Value<'_>) -> Result<Info> {
        let info = dict(value, "info")?;
        let name = match opt_string(info, b"name.utf-8", "info.name.utf-8")? {
            Some(name) => name,
            None => lossy(
                info.get(b"name").ok_or_else(|| missing("info.name"))?,
                "info.name",
            )?,
        };
        path::check_component(&name).map_err(|reason| Error::UnsafePath {
            field: "info.name".into(),
            path: name.clone(),
            reason,
        })?;

        let piece_length = int(
            required(info, b"piece length", "info.piece length")?,
            "info.piece length",
        )?;
        let piece_length = u64::try_from(piece_length)
            .ok()
            .filter(|n| (1..=MAX_PIECE_LENGTH).contains(n))
            .ok_or_else(|| {
                bad(
                    "info.piece length",
                    format!("must be between 1 and {MAX_PIECE_LENGTH}, not {piece_length}"),
                )
            })?;

        let pieces_bytes = bytes(required(info, b"pieces", "info.pieces")?, "info.pieces")?;
        if pieces_bytes.len() % 20 != 0 {
            return Err(bad(
                "info.pieces",
                format!(
                    "must be a multiple of 20 bytes long, not {}",
                    pieces_bytes.len()
                ),
            ));
        }
        let pieces: Vec<[u8; 20]> = pieces_bytes
            .chunks_exact(20)
            .map(|c| <[u8; 20]>::try_from(c).unwrap_or([0; 20]))
            .collect();

        let (files, multi_file) = match (info.get(b"length"), info.get(b"files")) {
            (Some(length), None) => {
                let length = length_of(length, "info.length")?;
                (
                    vec![FileEntry {
                        path: vec![name.clone()],
                        length,
                        attr: None,
                    }],
                    false,
                )
            }
            (None, Some(files)) => (parse_files(files, &name)?, true),
            (Some(_), Some(_)) => {
                return Err(bad("info", "has both `length` and `files`; a torrent is single-file or multi-file, not both".into()));
            }
            (None, None) => return Err(missing("info.length` or `info.files")),
        };
        path::check_conflicts(files.iter().map(|f| f.path.as_slice()))?;

        let too_large = || {
            bad(
                "info",
                format!("describes more than {MAX_TOTAL_LENGTH} bytes"),
            )
        };
        let layout =
            Layout::new(piece_length, files.iter().map(|f| f.length)).ok_or_else(too_large)?;
        let total_length = layout.total_length();
        if total_length > MAX_TOTAL_LENGTH {
            return Err(too_large());
        }
        if total_length == 0 {
            return Err(bad("info", "describes no data: every file is empty".into()));
        }
        let expected = total_length.div_ceil(piece_length);
        if expected != pieces.len() as u64 {
            return Err(Error::PieceCount {
                found: pieces.len() as u64,
                expected,
                total_length,
                piece_length,
            });
        }
        let private = opt_int(info, b"private", "info.private")?.is_some_and(|p| p != 0);
        let known: &[&[u8]] = &[
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
            // MAX_PIECE_LENGTH < 2^32.
            piece_length: u32::try_from(piece_length).unwrap_or(u32::MAX),
            pieces,
            files,
            multi_file,
            private,
            extra: extra_keys(info, known),
            layout,
        })
    }

    /// The sum of the file lengths.
    pub fn total_length(&self) -> u64 {
        self.layout.total_length()
    }

    /// The piece and file geometry.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

fn parse_files(value: Value<'_>, name: &str) -> Result<Vec<FileEntry>> {
    let items = list(value, "info.files")?;
    let mut files = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("info.files[{i}]");
        let file = dict(item, &field)?;
        let length = length_of(
            required(file, b"length", &format!("{field}.length"))?,
            &format!("{field}.length"),
        )?;
        let (key, path_field) = match file.get(b"path.utf-8") {
            Some(_) => (&b"path.utf-8"[..], format!("{field}.path.utf-8")),
            None => (&b"path"[..], format!("{field}.path")),
        };
        let components = list(required(file, key, &path_field)?, &path_field)?
            .iter()
            .map(|c| lossy(c, &path_field))
            .collect::<Result<Vec<String>>>()?;
        path::check_path(&components, &path_field)?;
        let mut path = Vec::with_capacity(components.len() + 1);
        path.push(name.to_string());
        path.extend(components);
        let attr = opt_lossy(file, b"attr", &format!("{field}.attr"))?;
        files.push(FileEntry { path, length, attr });
    }
    if files.is_empty() {
        return Err(bad("info.files", "is empty".into()));
    }
    Ok(files)
}

fn parse_tiers(value: Value<'_>) -> Result<Vec<Vec<String>>> {
    let mut tiers = Vec::new();
    for (i, tier) in list(value, "announce-list")?.iter().enumerate() {
        let field = format!("announce-list[{i}]");
        let urls = list(tier, &field)?
            .iter()
            .enumerate()
            .map(|(j, url)| string(url, &format!("{field}[{j}]")))
            .filter(|url| !url.as_ref().is_ok_and(String::is_empty))
            .collect::<Result<Vec<_>>>()?;
        if !urls.is_empty() {
            tiers.push(urls);
        }
    }
    Ok(tiers)
}

fn extra_keys(dict: Dict<'_>, known: &[&[u8]]) -> BTreeMap<Vec<u8>, OwnedValue> {
    dict.iter()
        .filter(|(k, _)| !known.contains(k))
        .map(|(k, v)| (k.to_vec(), v.to_owned_value()))
        .collect()
}

// Typed access to fields, each error naming the field.

fn missing(field: &str) -> Error {
    Error::Missing {
        field: field.into(),
    }
}

fn bad(field: &str, problem: String) -> Error {
    Error::BadValue {
        field: field.into(),
        problem,
    }
}

fn wrong(value: Value<'_>, field: &str, expected: &'static str) -> Error {
    Error::WrongType {
        field: field.into(),
        expected,
        found: value.kind_name(),
    }
}

fn required<'a>(dict: Dict<'a>, key: &[u8], field: &str) -> Result<Value<'a>> {
    dict.get(key).ok_or_else(|| missing(field))
}

fn dict<'a>(value: Value<'a>, field: &str) -> Result<Dict<'a>> {
    value
        .as_dict()
        .ok_or_else(|| wrong(value, field, "a dictionary"))
}

fn list<'a>(value: Value<'a>, field: &str) -> Result<List<'a>> {
    value.as_list().ok_or_else(|| wrong(value, field, "a list"))
}

fn bytes<'a>(value: Value<'a>, field: &str) -> Result<&'a [u8]> {
    value
        .as_bytes()
        .ok_or_else(|| wrong(value, field, "a byte string"))
}

fn int(value: Value<'_>, field: &str) -> Result<i64> {
    value
        .as_int()
        .ok_or_else(|| wrong(value, field, "an integer"))
}

fn length_of(value: Value<'_>, field: &str) -> Result<u64> {
    let n = int(value, field)?;
    u64::try_from(n).map_err(|_| bad(field, format!("must not be negative, not {n}")))
}

/// A string that must be UTF-8 (URLs).
fn string(value: Value<'_>, field: &str) -> Result<String> {
    let b = bytes(value, field)?;
    String::from_utf8(b.to_vec()).map_err(|_| bad(field, "is not valid UTF-8".into()))
}

/// A string for display or a file name: invalid UTF-8 becomes U+FFFD, as
/// other clients show it, rather than refusing the whole torrent.
fn lossy(value: Value<'_>, field: &str) -> Result<String> {
    Ok(String::from_utf8_lossy(bytes(value, field)?).into_owned())
}

fn opt_string(dict: Dict<'_>, key: &[u8], field: &str) -> Result<Option<String>> {
    dict.get(key).map(|v| string(v, field)).transpose()
}

fn opt_lossy(dict: Dict<'_>, key: &[u8], field: &str) -> Result<Option<String>> {
    dict.get(key).map(|v| lossy(v, field)).transpose()
}

fn opt_int(dict: Dict<'_>, key: &[u8], field: &str) -> Result<Option<i64>> {
    dict.get(key).map(|v| int(v, field)).transpose()
}

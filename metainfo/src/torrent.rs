//! The parsed, validated contents of a `.torrent` file.

use std::collections::BTreeMap;

use bencode::{Encoder, OwnedValue, Raw, Value};

use crate::error::{Error, Result};
use crate::fields::{extra_keys, missing, text};
use crate::ids::InfoHash;
use crate::info::Info;
use crate::layout::Layout;

/// A parsed and validated `.torrent` file.
///
/// It can only be made by [`Metainfo::from_bytes`] (or a
/// [`TorrentBuilder`](crate::TorrentBuilder)), so its [`Info`] is valid: file
/// paths are safe, piece hashes fit the length, and the info-hash is the SHA-1
/// of the info dictionary's bytes as they were in the file.
///
/// The fields outside the info dictionary do not change what the torrent is,
/// so they are public, and read tolerantly: a malformed `announce-list` entry
/// or `creation date` is skipped, as other clients skip it, rather than making
/// the torrent unusable. The info dictionary is checked strictly.
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
    /// Top-level keys this crate does not interpret, kept for writing back.
    pub extra: BTreeMap<Vec<u8>, OwnedValue>,
    info: Info,
    info_hash: InfoHash,
    raw_info: Vec<u8>,
}

impl Metainfo {
    /// Parses and validates a `.torrent` file.
    ///
    /// Dictionary keys may be out of order (real torrents have such files);
    /// everything else of BEP 3 is enforced in the info dictionary.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo> {
        // A line end or spaces after the dictionary (a file saved by an
        // editor or some web servers) are not part of the torrent; any
        // other trailing data is still an error.
        let bytes = bytes.trim_ascii_end();
        let root = bencode::Decoder::lenient().decode(bytes)?;
        let root = root.as_dict().ok_or(Error::NotADictionary {
            found: root.kind_name(),
        })?;
        let info_value = root.get(b"info").ok_or_else(|| missing("info"))?;
        let info = Info::from_value(info_value)?;
        let raw_info = info_value.raw().to_vec();
        let lossy = |key: &[u8]| {
            root.get(key)
                .and_then(|v| v.as_bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned())
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
            announce: root
                .get(b"announce")
                .and_then(text)
                .filter(|a| !a.is_empty()),
            announce_list: root.get(b"announce-list").map(tiers).unwrap_or_default(),
            creation_date: root.get(b"creation date").and_then(|v| v.as_int()),
            comment: root
                .get(b"comment.utf-8")
                .and_then(text)
                .or_else(|| lossy(b"comment")),
            created_by: lossy(b"created by"),
            url_list: root.get(b"url-list").map(url_list).unwrap_or_default(),
            extra: extra_keys(root, known),
            info_hash: InfoHash::of_info_bytes(&raw_info),
            info,
            raw_info,
        })
    }

    /// The info dictionary.
    pub fn info(&self) -> &Info {
        &self.info
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
        self.info.layout()
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

/// `announce-list`: a list of tiers, each a list of URLs. Entries that are
/// not UTF-8 strings are skipped, a bare string counts as a tier of one, and
/// empty tiers are dropped.
fn tiers(value: Value<'_>) -> Vec<Vec<String>> {
    let Some(list) = value.as_list() else {
        return Vec::new();
    };
    list.iter()
        .map(|tier| match tier.as_list() {
            Some(urls) => urls
                .iter()
                .filter_map(text)
                .filter(|u| !u.is_empty())
                .collect(),
            None => text(tier).into_iter().filter(|u| !u.is_empty()).collect(),
        })
        .filter(|tier: &Vec<String>| !tier.is_empty())
        .collect()
}

/// `url-list` (BEP 19): one URL as a string, or a list of them.
fn url_list(value: Value<'_>) -> Vec<String> {
    match value.as_list() {
        Some(list) => list
            .iter()
            .filter_map(text)
            .filter(|u| !u.is_empty())
            .collect(),
        None => text(value).into_iter().filter(|u| !u.is_empty()).collect(),
    }
}

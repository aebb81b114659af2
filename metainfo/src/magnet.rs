//! Magnet links (`magnet:?xt=urn:btih:…`), as BEP 9 describes them.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::ids::InfoHash;

/// A parsed BitTorrent v1 magnet link.
///
/// ```
/// use metainfo::MagnetLink;
///
/// let link: MagnetLink = "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a\
///     &dn=Some+File&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce&x.pe=127.0.0.1:6881"
///     .parse()?;
/// assert_eq!(link.display_name.as_deref(), Some("Some File"));
/// assert_eq!(link.trackers, ["http://127.0.0.1:6969/announce"]);
/// assert_eq!(link.peers, ["127.0.0.1:6881"]);
/// assert_eq!(link.to_string().parse::<MagnetLink>()?, link);
/// # Ok::<(), metainfo::MagnetError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MagnetLink {
    /// The v1 info-hash (`xt=urn:btih:`).
    pub info_hash: InfoHash,
    /// `dn`: a name to show until the metadata arrives.
    pub display_name: Option<String>,
    /// `tr`: tracker URLs, in order.
    pub trackers: Vec<String>,
    /// `x.pe`: peers to dial directly, as `host:port`.
    pub peers: Vec<String>,
    /// `ws`: web seeds (BEP 19).
    pub web_seeds: Vec<String>,
}

/// Why a magnet link was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MagnetError {
    /// It does not start with `magnet:?`.
    #[error("not a magnet link: it should start with `magnet:?`")]
    NotMagnet,
    /// It has no `xt=urn:btih:` topic.
    #[error("the magnet link has no BitTorrent info-hash (`xt=urn:btih:…`)")]
    NoInfoHash,
    /// Its only topics are v2 (`urn:btmh:`), which btc does not support yet.
    #[error("the magnet link is for BitTorrent v2 only (`urn:btmh:`), which btc does not support")]
    V2Only,
    /// The btih hash is not 40 hex or 32 base32 characters.
    #[error("the magnet link's info-hash {0:?} is not 40 hex digits or 32 base32 characters")]
    BadInfoHash(String),
    /// Two different btih hashes.
    #[error("the magnet link names two different info-hashes")]
    ConflictingInfoHashes,
    /// A parameter's value is not valid percent-encoded UTF-8.
    #[error("the magnet link's `{0}` parameter is not valid UTF-8 once decoded")]
    BadEncoding(String),
}

impl MagnetLink {
    /// A link for just an info-hash.
    pub fn new(info_hash: InfoHash) -> Self {
        MagnetLink {
            info_hash,
            display_name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
            web_seeds: Vec::new(),
        }
    }
}

fn decode(key: &str, value: &str) -> Result<String, MagnetError> {
    // `+` means a space in query strings; a literal plus arrives as %2B.
    let value = value.replace('+', " ");
    percent_decode_str(&value)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| MagnetError::BadEncoding(key.to_string()))
}

impl FromStr for MagnetLink {
    type Err = MagnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let query = s
            .trim()
            .strip_prefix("magnet:?")
            .or_else(|| s.trim().strip_prefix("MAGNET:?"))
            .ok_or(MagnetError::NotMagnet)?;
        let mut info_hash = None;
        let mut saw_v2 = false;
        let mut link = MagnetLink::new(InfoHash([0; 20]));
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            // BEP 9 allows numbered repeats: `tr.1=…&tr.2=…`.
            let base = key
                .rsplit_once('.')
                .filter(|(_, n)| n.parse::<u32>().is_ok())
                .map_or(key, |(b, _)| b);
            match base {
                "xt" => {
                    let value = decode(key, raw)?;
                    if let Some(hash) = value.strip_prefix("urn:btih:") {
                        let hash: InfoHash = hash
                            .parse()
                            .map_err(|_| MagnetError::BadInfoHash(hash.to_string()))?;
                        if info_hash.is_some_and(|h| h != hash) {
                            return Err(MagnetError::ConflictingInfoHashes);
                        }
                        info_hash = Some(hash);
                    } else if value.starts_with("urn:btmh:") {
                        saw_v2 = true;
                    }
                }
                "dn" => link.display_name = Some(decode(key, raw)?),
                "tr" => link.trackers.push(decode(key, raw)?),
                "x.pe" => link.peers.push(decode(key, raw)?),
                "ws" => link.web_seeds.push(decode(key, raw)?),
                // Other parameters (xl, as, so, …) are not needed to download.
                _ => {}
            }
        }
        link.info_hash = match (info_hash, saw_v2) {
            (Some(hash), _) => hash,
            (None, true) => return Err(MagnetError::V2Only),
            (None, false) => return Err(MagnetError::NoInfoHash),
        };
        Ok(link)
    }
}

/// Characters left as they are in parameter values: unreserved ones, plus
/// `:` and `/`, which keep URLs readable and are legal in a query.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'/');

impl fmt::Display for MagnetLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash)?;
        let params = self
            .display_name
            .iter()
            .map(|v| ("dn", v))
            .chain(self.trackers.iter().map(|v| ("tr", v)))
            .chain(self.peers.iter().map(|v| ("x.pe", v)))
            .chain(self.web_seeds.iter().map(|v| ("ws", v)));
        for (key, value) in params {
            write!(f, "&{key}={}", utf8_percent_encode(value, VALUE))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HASH: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    #[test]
    fn parses_every_parameter() {
        let link: MagnetLink = "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK&dn=a%20b%2Bc&tr=udp%3A%2F%2Ft1%3A80&tr.2=http://t2/announce\
             &x.pe=[::1]:6881&x.pe=127.0.0.1:1&ws=http%3A%2F%2Fw%2Ff&xl=123&so=0"
        .parse()
        .unwrap();
        assert_eq!(link.info_hash.to_hex(), HASH);
        assert_eq!(link.display_name.as_deref(), Some("a b+c"));
        assert_eq!(link.trackers, ["udp://t1:80", "http://t2/announce"]);
        assert_eq!(link.peers, ["[::1]:6881", "127.0.0.1:1"]);
        assert_eq!(link.web_seeds, ["http://w/f"]);
    }

    #[test]
    fn formats_readably() {
        let mut link = MagnetLink::new(HASH.parse().unwrap());
        link.display_name = Some("Debian 12 & more".into());
        link.trackers
            .push("http://127.0.0.1:6969/announce?k=v".into());
        assert_eq!(
            link.to_string(),
            format!(
                "magnet:?xt=urn:btih:{HASH}&dn=Debian%2012%20%26%20more&tr=http://127.0.0.1:6969/announce%3Fk%3Dv"
            )
        );
    }

    #[test]
    fn clear_errors() {
        let cases = [
            ("http://example/", MagnetError::NotMagnet),
            ("magnet:?dn=x", MagnetError::NoInfoHash),
            ("magnet:?xt=urn:btmh:1220abcd", MagnetError::V2Only),
            (
                "magnet:?xt=urn:btih:1234",
                MagnetError::BadInfoHash("1234".into()),
            ),
            (
                &format!("magnet:?xt=urn:btih:{HASH}&xt=urn:btih:{}", "0".repeat(40)),
                MagnetError::ConflictingInfoHashes,
            ),
            (
                &format!("magnet:?xt=urn:btih:{HASH}&dn=%ff"),
                MagnetError::BadEncoding("dn".into()),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<MagnetLink>(), Err(expected), "{input}");
        }
        // A hybrid link with both v1 and v2 topics is fine.
        let hybrid = format!("magnet:?xt=urn:btmh:1220abcd&xt=urn:btih:{HASH}");
        assert!(hybrid.parse::<MagnetLink>().is_ok());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(
            hash in any::<[u8; 20]>(),
            name in proptest::option::of("\\PC{0,20}"),
            trackers in prop::collection::vec("\\PC{1,20}", 0..3),
            peers in prop::collection::vec("[a-z0-9.:\\[\\]]{1,20}", 0..3),
        ) {
            let link = MagnetLink { info_hash: InfoHash(hash), display_name: name, trackers, peers, web_seeds: vec![] };
            prop_assert_eq!(link.to_string().parse::<MagnetLink>(), Ok(link));
        }

        #[test]
        fn arbitrary_text_never_panics(s in "magnet:\\?\\PC{0,80}") {
            let _ = s.parse::<MagnetLink>();
        }
    }
}

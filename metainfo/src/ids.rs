use std::fmt;
use std::str::FromStr;

use data_encoding::{BASE32_NOPAD, HEXLOWER_PERMISSIVE};
use rand::RngCore;

/// A torrent's v1 info-hash: SHA-1 of its bencoded info dictionary, exactly
/// as the bytes appear in the `.torrent` file.
///
/// Displays as 40 lowercase hex digits; parses from 40 hex digits (any case)
/// or 32 base32 characters (as some magnet links carry it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// The SHA-1 of `info_bytes`, which must be the raw bencoded info dictionary.
    pub fn of_info_bytes(info_bytes: &[u8]) -> Self {
        InfoHash(crate::sha1(info_bytes))
    }

    /// The 20 raw bytes, as sent in handshakes and tracker requests.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// 40 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        HEXLOWER_PERMISSIVE.encode(&self.0)
    }

    /// 32 uppercase base32 characters (RFC 4648, no padding).
    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(&self.0)
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

/// The text was neither 40 hex digits nor 32 base32 characters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an info-hash is 40 hex digits or 32 base32 characters, not {0:?}")]
pub struct ParseInfoHashError(String);

impl FromStr for InfoHash {
    type Err = ParseInfoHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let decoded = match s.len() {
            40 => HEXLOWER_PERMISSIVE.decode(s.as_bytes()).ok(),
            32 => BASE32_NOPAD.decode(s.to_ascii_uppercase().as_bytes()).ok(),
            _ => None,
        };
        decoded
            .and_then(|bytes| <[u8; 20]>::try_from(bytes).ok())
            .map(InfoHash)
            .ok_or_else(|| ParseInfoHashError(s.chars().take(64).collect()))
    }
}

/// A peer's 20-byte id, as sent in handshakes and tracker announces.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 20]);

/// btc's Azureus-style client prefix: `-BQ`, then the version's digits
/// (0.1.0.0). `BQ` is in no client table we know of (libtorrent's, BEP
/// 20's); `-BT` would say mainline BitTorrent.
pub const CLIENT_PREFIX: &[u8; 8] = b"-BQ0100-";

impl PeerId {
    /// A fresh id: [`CLIENT_PREFIX`] followed by 12 random bytes.
    pub fn generate() -> Self {
        Self::with_prefix(CLIENT_PREFIX)
    }

    /// A fresh id with the given Azureus-style prefix (`-XXnnnn-`) followed by
    /// random bytes.
    pub fn with_prefix(prefix: &[u8; 8]) -> Self {
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(prefix);
        rand::rng().fill_bytes(&mut id[8..]);
        PeerId(id)
    }

    /// The 20 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The client code and version of an Azureus-style id (`-qB4520-…` gives
    /// `("qB", "4520")`), or `None` for ids of another style.
    pub fn azureus_client(&self) -> Option<(&str, &str)> {
        let id = &self.0;
        let well_formed = id[0] == b'-'
            && id[7] == b'-'
            && id[1..3].iter().all(u8::is_ascii_alphabetic)
            && id[3..7].iter().all(u8::is_ascii_alphanumeric);
        if !well_formed {
            return None;
        }
        let code = std::str::from_utf8(&id[1..3]).ok()?;
        let version = std::str::from_utf8(&id[3..7]).ok()?;
        Some((code, version))
    }
}

impl fmt::Display for PeerId {
    /// Printable ASCII as is, other bytes as `%XX`, so ids read like the
    /// URL-encoded form trackers see.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_hash_hex_and_base32_agree() {
        let hex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
        let hash: InfoHash = hex.parse().unwrap();
        assert_eq!(hash.to_hex(), hex);
        assert_eq!(hash.to_base32(), "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK");
        assert_eq!(
            "yex6dqdlxisuvhoj6um3gnnkpqjwpkek".parse::<InfoHash>(),
            Ok(hash)
        );
        assert_eq!(hex.to_uppercase().parse::<InfoHash>(), Ok(hash));
    }

    #[test]
    fn info_hash_rejects_wrong_lengths_and_alphabets() {
        for bad in ["", "abc", &"g".repeat(40), &"1".repeat(32), &"a".repeat(41)] {
            assert!(bad.parse::<InfoHash>().is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_peer_ids_carry_the_prefix_and_differ() {
        let (a, b) = (PeerId::generate(), PeerId::generate());
        assert_eq!(&a.0[..8], CLIENT_PREFIX);
        assert_ne!(a, b);
        assert_eq!(a.azureus_client(), Some(("BQ", "0100")));
    }

    #[test]
    fn peer_id_display_escapes_binary() {
        let mut id = *b"-qB4520-abcdefghijkl";
        id[19] = 0xff;
        let id = PeerId(id);
        assert_eq!(id.to_string(), "-qB4520-abcdefghijk%FF");
        assert_eq!(id.azureus_client(), Some(("qB", "4520")));
        assert_eq!(PeerId(*b"M7-2-2--abcdefghijkl").azureus_client(), None);
    }
}

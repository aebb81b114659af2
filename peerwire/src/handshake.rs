//! The 68-byte handshake that opens every peer connection (BEP 3), with the
//! reserved bits that announce extensions.

use std::fmt;

use metainfo::{InfoHash, PeerId};

/// The protocol string, after its length byte.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// The handshake's length in bytes.
pub const HANDSHAKE_LEN: usize = 68;

/// The eight reserved bytes, where peers say which extensions they speak.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// The extension protocol (BEP 10): byte 5, bit 0x10.
    pub const EXTENSION_PROTOCOL: (usize, u8) = (5, 0x10);
    /// The fast extension (BEP 6): byte 7, bit 0x04.
    pub const FAST: (usize, u8) = (7, 0x04);
    /// DHT (BEP 5): byte 7, bit 0x01.
    pub const DHT: (usize, u8) = (7, 0x01);

    fn get(&self, (byte, bit): (usize, u8)) -> bool {
        self.0[byte] & bit != 0
    }

    fn with(mut self, (byte, bit): (usize, u8), on: bool) -> Self {
        if on {
            self.0[byte] |= bit;
        } else {
            self.0[byte] &= !bit;
        }
        self
    }

    /// True if the extension protocol (BEP 10) is offered.
    pub fn extension_protocol(&self) -> bool {
        self.get(Self::EXTENSION_PROTOCOL)
    }

    /// True if the fast extension (BEP 6) is offered.
    pub fn fast(&self) -> bool {
        self.get(Self::FAST)
    }

    /// True if DHT (BEP 5) is offered.
    pub fn dht(&self) -> bool {
        self.get(Self::DHT)
    }

    /// Sets or clears the extension protocol bit.
    pub fn with_extension_protocol(self, on: bool) -> Self {
        self.with(Self::EXTENSION_PROTOCOL, on)
    }

    /// Sets or clears the fast extension bit.
    pub fn with_fast(self, on: bool) -> Self {
        self.with(Self::FAST, on)
    }

    /// Sets or clears the DHT bit.
    pub fn with_dht(self, on: bool) -> Self {
        self.with(Self::DHT, on)
    }
}

impl fmt::Debug for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reserved({:02x?}", self.0)?;
        for (name, on) in [
            ("ext", self.extension_protocol()),
            ("fast", self.fast()),
            ("dht", self.dht()),
        ] {
            if on {
                write!(f, " {name}")?;
            }
        }
        f.write_str(")")
    }
}

/// A handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// The extensions offered.
    pub reserved: Reserved,
    /// The torrent the connection is about.
    pub info_hash: InfoHash,
    /// The sender's id.
    pub peer_id: PeerId,
}

/// Why a handshake was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Fewer than 68 bytes.
    #[error("handshake too short: {0} bytes of 68")]
    TooShort(usize),
    /// Not `\x13BitTorrent protocol`: another protocol, or an encrypted
    /// (MSE) handshake, which aria2 tries first.
    #[error("not a BitTorrent handshake: the protocol string is {0:?}")]
    WrongProtocol(String),
    /// The peer is in another torrent's swarm.
    #[error("the peer's handshake is for torrent {found}, not {expected}")]
    WrongInfoHash {
        /// The info-hash wanted.
        expected: InfoHash,
        /// The one received.
        found: InfoHash,
    },
}

impl Handshake {
    /// A handshake offering the extensions in `reserved`.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, reserved: Reserved) -> Self {
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// The 68 bytes.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = 19;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved.0);
        out[28..48].copy_from_slice(self.info_hash.as_bytes());
        out[48..68].copy_from_slice(self.peer_id.as_bytes());
        out
    }

    /// Reads a handshake from the first 68 bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Handshake, HandshakeError> {
        let bytes: &[u8; HANDSHAKE_LEN] = bytes
            .get(..HANDSHAKE_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(HandshakeError::TooShort(bytes.len()))?;
        if bytes[0] != 19 || &bytes[1..20] != PROTOCOL {
            let shown = bytes[..20].escape_ascii().to_string();
            return Err(HandshakeError::WrongProtocol(shown));
        }
        let field =
            |range: std::ops::Range<usize>| <[u8; 20]>::try_from(&bytes[range]).unwrap_or([0; 20]);
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&bytes[20..28]);
        Ok(Handshake {
            reserved: Reserved(reserved),
            info_hash: InfoHash(field(28..48)),
            peer_id: PeerId(field(48..68)),
        })
    }

    /// Reads a handshake that must be for `expected`.
    pub fn decode_for(bytes: &[u8], expected: InfoHash) -> Result<Handshake, HandshakeError> {
        let handshake = Handshake::decode(bytes)?;
        if handshake.info_hash != expected {
            return Err(HandshakeError::WrongInfoHash {
                expected,
                found: handshake.info_hash,
            });
        }
        Ok(handshake)
    }
}

//! Extension messages (BEP 10): the extension handshake, `ut_metadata`
//! (BEP 9) and `ut_pex` (BEP 11). Each is decoded from, and encoded to, the
//! payload of a [`Message::Extended`](crate::Message::Extended).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bencode::{Bytes as B, Dict, Encoder};
use bytes::Bytes;

/// The extension name for BEP 9.
pub const UT_METADATA: &str = "ut_metadata";
/// The extension name for BEP 11.
pub const UT_PEX: &str = "ut_pex";
/// The size of a metadata piece (BEP 9).
pub const METADATA_PIECE: usize = 16 * 1024;
/// The largest info dictionary accepted: more than any real torrent needs,
/// little enough to hold in memory.
pub const MAX_METADATA_SIZE: u32 = 16 << 20;
/// The most peers of each list read from one PEX message. The convention is
/// 50; this is lenient with clients that send more.
pub const MAX_PEX_PEERS: usize = 500;
/// The most peers of each list written in one PEX message: the convention
/// of µTorrent and libtorrent, some of which disconnect a peer that sends
/// more.
pub const PEX_PER_MESSAGE: usize = 50;

/// A bad extension message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionError {
    /// The payload is not bencode.
    #[error("extension message is not bencode: {0}")]
    Bencode(bencode::Error),
    /// A field is missing or wrong.
    #[error("extension message has a bad `{field}`: {problem}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
}

fn bad(field: &'static str, problem: &'static str) -> ExtensionError {
    ExtensionError::BadField { field, problem }
}

fn dict(payload: &[u8]) -> Result<Dict<'_>, ExtensionError> {
    let value = bencode::Decoder::lenient()
        .decode(payload)
        .map_err(ExtensionError::Bencode)?;
    value
        .as_dict()
        .ok_or(bad("(top level)", "not a dictionary"))
}

fn uint<T: TryFrom<i64>>(dict: Dict<'_>, field: &'static str) -> Result<Option<T>, ExtensionError> {
    dict.get(field.as_bytes())
        .map(|v| {
            v.as_int()
                .and_then(|n| T::try_from(n).ok())
                .ok_or(bad(field, "not an integer in range"))
        })
        .transpose()
}

/// The extension handshake (extended message id 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtensionHandshake {
    /// Extension names and the ids the sender wants them sent with. Id 0
    /// means the sender disables that extension (in a later handshake);
    /// [`ExtensionHandshake::id`] reads an enabled one.
    pub m: BTreeMap<String, u8>,
    /// The sender's listening port.
    pub p: Option<u16>,
    /// The client name and version.
    pub v: Option<String>,
    /// How many outstanding requests the sender accepts.
    pub reqq: Option<u32>,
    /// The receiver's address, as the sender sees it.
    pub yourip: Option<IpAddr>,
    /// The size of the info dictionary (BEP 9).
    pub metadata_size: Option<u32>,
}

impl ExtensionHandshake {
    /// The id to send extension `name` with, if the peer has it enabled.
    pub fn id(&self, name: &str) -> Option<u8> {
        self.m.get(name).copied().filter(|&id| id != 0)
    }

    /// Reads a handshake payload. `m` must be a dictionary; entries in it
    /// whose id is not 0 to 255 are skipped and at most 128 are read. Other
    /// fields that are malformed or out of range (a `metadata_size` of 0 or
    /// over 16 MiB, say) read as absent, as other clients treat them.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let d = dict(payload)?;
        let mut m = BTreeMap::new();
        if let Some(value) = d.get(b"m") {
            let entries = value.as_dict().ok_or(bad("m", "not a dictionary"))?;
            for (name, id) in entries.iter().take(128) {
                if let Some(id) = id.as_int().and_then(|n| u8::try_from(n).ok()) {
                    m.insert(String::from_utf8_lossy(name).into_owned(), id);
                }
            }
        }
        let metadata_size = uint::<u32>(d, "metadata_size")
            .ok()
            .flatten()
            .filter(|&s| s != 0 && s <= MAX_METADATA_SIZE);
        let yourip = d
            .get(b"yourip")
            .and_then(|v| v.as_bytes())
            .and_then(|b| match b.len() {
                4 => <[u8; 4]>::try_from(b)
                    .ok()
                    .map(|o| IpAddr::from(Ipv4Addr::from(o))),
                16 => <[u8; 16]>::try_from(b)
                    .ok()
                    .map(|o| IpAddr::from(Ipv6Addr::from(o))),
                _ => None,
            });
        Ok(ExtensionHandshake {
            m,
            // Some clients send a port of 0 or out of range: treat as absent.
            p: uint::<u16>(d, "p").ok().flatten().filter(|&p| p != 0),
            v: d.get(b"v")
                .and_then(|v| v.as_bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            reqq: uint::<u32>(d, "reqq").ok().flatten(),
            yourip,
            metadata_size,
        })
    }

    /// The payload.
    pub fn encode(&self) -> Bytes {
        let mut e = Encoder::default();
        e.dict(|d| {
            d.entry(
                b"m",
                &self
                    .m
                    .iter()
                    .map(|(k, v)| (k.as_bytes(), i64::from(*v)))
                    .collect::<BTreeMap<_, _>>(),
            );
            d.entry_opt(b"p", self.p.as_ref());
            d.entry_opt(b"v", self.v.as_ref());
            d.entry_opt(b"reqq", self.reqq.as_ref());
            d.entry_opt(b"metadata_size", self.metadata_size.as_ref());
            if let Some(ip) = self.yourip {
                match ip {
                    IpAddr::V4(v4) => d.entry(b"yourip", &B(&v4.octets())),
                    IpAddr::V6(v6) => d.entry(b"yourip", &B(&v6.octets())),
                }
            }
        });
        Bytes::from(e.into_bytes())
    }
}

/// A `ut_metadata` message (BEP 9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UtMetadata {
    /// Asks for a piece of the info dictionary.
    Request {
        /// The piece.
        piece: u32,
    },
    /// A piece of the info dictionary.
    Data {
        /// The piece.
        piece: u32,
        /// The whole dictionary's size.
        total_size: u32,
        /// The piece's bytes (the payload after the bencoded dictionary).
        data: Bytes,
    },
    /// The sender will not send this piece.
    Reject {
        /// The piece.
        piece: u32,
    },
    /// A message type BEP 9 does not define; BEP 9 says to ignore it.
    Unknown {
        /// The type.
        msg_type: i64,
    },
}

impl UtMetadata {
    /// Reads a payload. A data message's piece is what follows the bencoded
    /// dictionary, shared with the payload rather than copied.
    pub fn decode(payload: &Bytes) -> Result<Self, ExtensionError> {
        let (value, used) = bencode::Decoder::lenient()
            .decode_prefix(payload)
            .map_err(ExtensionError::Bencode)?;
        let d = value
            .as_dict()
            .ok_or(bad("(top level)", "not a dictionary"))?;
        let msg_type = d
            .get(b"msg_type")
            .and_then(|v| v.as_int())
            .ok_or(bad("msg_type", "missing"))?;
        if !(0..=2).contains(&msg_type) {
            return Ok(UtMetadata::Unknown { msg_type });
        }
        let piece = uint::<u32>(d, "piece")?.ok_or(bad("piece", "missing"))?;
        let trailing = payload.slice(used..);
        let only_dict = |m: UtMetadata| {
            if trailing.is_empty() {
                Ok(m)
            } else {
                Err(bad("msg_type", "carries data it should not"))
            }
        };
        match msg_type {
            0 => only_dict(UtMetadata::Request { piece }),
            2 => only_dict(UtMetadata::Reject { piece }),
            1 => {
                let total_size =
                    uint::<u32>(d, "total_size")?.ok_or(bad("total_size", "missing"))?;
                if total_size == 0 || total_size > MAX_METADATA_SIZE {
                    return Err(bad("total_size", "is 0 or larger than 16 MiB"));
                }
                if trailing.is_empty() || trailing.len() > METADATA_PIECE {
                    return Err(bad("piece", "data is empty or longer than 16 KiB"));
                }
                Ok(UtMetadata::Data {
                    piece,
                    total_size,
                    data: trailing,
                })
            }
            _ => Ok(UtMetadata::Unknown { msg_type }),
        }
    }

    /// The payload.
    pub fn encode(&self) -> Bytes {
        let mut e = Encoder::default();
        let (msg_type, piece) = match self {
            UtMetadata::Request { piece } => (0, Some(piece)),
            UtMetadata::Data { piece, .. } => (1, Some(piece)),
            UtMetadata::Reject { piece } => (2, Some(piece)),
            UtMetadata::Unknown { msg_type } => (*msg_type, None),
        };
        e.dict(|d| {
            d.entry(b"msg_type", &msg_type);
            d.entry_opt(b"piece", piece);
            if let UtMetadata::Data { total_size, .. } = self {
                d.entry(b"total_size", total_size);
            }
        });
        let mut out = e.into_bytes();
        if let UtMetadata::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
        Bytes::from(out)
    }
}

/// A `ut_pex` message (BEP 11): peers joined and left since the last one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UtPex {
    /// Peers added, each with its flags byte (`added.f`, `added6.f`; 0 when
    /// absent): 0x01 prefers encryption, 0x02 is a seed, 0x04 supports uTP,
    /// 0x08 holepunch, 0x10 reachable.
    pub added: Vec<(SocketAddr, u8)>,
    /// Peers gone.
    pub dropped: Vec<SocketAddr>,
}

impl UtPex {
    /// Reads a payload: IPv4 peers in `added`/`dropped`, IPv6 ones in
    /// `added6`/`dropped6`. At most [`MAX_PEX_PEERS`] of each are read.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let d = dict(payload)?;
        let mut pex = UtPex::default();
        for (key, flags_key, size) in [("added", "added.f", 6), ("added6", "added6.f", 18)] {
            let peers = compact(d, key, size)?;
            let flags = d
                .get(flags_key.as_bytes())
                .and_then(|v| v.as_bytes())
                .unwrap_or_default();
            pex.added.extend(
                peers
                    .into_iter()
                    .enumerate()
                    .map(|(i, addr)| (addr, flags.get(i).copied().unwrap_or(0))),
            );
        }
        for (key, size) in [("dropped", 6), ("dropped6", 18)] {
            pex.dropped.extend(compact(d, key, size)?);
        }
        Ok(pex)
    }

    /// The payload, with at most [`PEX_PER_MESSAGE`] added and as many
    /// dropped peers: the rest belong in later messages.
    pub fn encode(&self) -> Bytes {
        let mut fields: BTreeMap<&[u8], Vec<u8>> = BTreeMap::new();
        for (addr, flags) in self.added.iter().take(PEX_PER_MESSAGE) {
            let (key, flags_key): (&[u8], &[u8]) = if addr.is_ipv4() {
                (b"added", b"added.f")
            } else {
                (b"added6", b"added6.f")
            };
            put_compact(fields.entry(key).or_default(), addr);
            fields.entry(flags_key).or_default().push(*flags);
        }
        for addr in self.dropped.iter().take(PEX_PER_MESSAGE) {
            let key: &[u8] = if addr.is_ipv4() {
                b"dropped"
            } else {
                b"dropped6"
            };
            put_compact(fields.entry(key).or_default(), addr);
        }
        // Both address lists are always present, as BEP 11 writes them.
        for key in [&b"added"[..], b"added.f", b"dropped"] {
            fields.entry(key).or_default();
        }
        let mut e = Encoder::default();
        e.dict(|d| fields.iter().for_each(|(k, v)| d.entry(k, &B(v))));
        Bytes::from(e.into_bytes())
    }
}

fn put_compact(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

fn compact(
    d: Dict<'_>,
    field: &'static str,
    size: usize,
) -> Result<Vec<SocketAddr>, ExtensionError> {
    let Some(bytes) = d.get(field.as_bytes()) else {
        return Ok(Vec::new());
    };
    let bytes = bytes.as_bytes().ok_or(bad(field, "not a string"))?;
    // Whole entries are kept and a truncated last one dropped, as for a
    // tracker's peer list: one bad byte should not cost the other peers.
    Ok(bytes
        .chunks_exact(size)
        .take(MAX_PEX_PEERS)
        .map(|c| {
            let (ip, port) = c.split_at(size - 2);
            let ip: IpAddr = match <[u8; 4]>::try_from(ip) {
                Ok(v4) => Ipv4Addr::from(v4).into(),
                Err(_) => Ipv6Addr::from(<[u8; 16]>::try_from(ip).unwrap_or_default()).into(),
            };
            SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]]))
        })
        .collect())
}

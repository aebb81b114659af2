//! One uTP datagram: a 20-byte header, a chain of extensions, a payload.
//!
//! ```text
//! 0       4       8               16              24              32
//! +-------+-------+---------------+---------------+---------------+
//! | type  | ver   | extension     | connection_id                 |
//! +-------+-------+---------------+---------------+---------------+
//! | timestamp_microseconds                                        |
//! | timestamp_difference_microseconds                             |
//! | wnd_size                                                      |
//! | seq_nr                        | ack_nr                        |
//! +---------------+---------------+---------------+---------------+
//! ```
//!
//! Each extension is `next extension type, length, bytes`; type 1 is the
//! selective ACK, a bitmask of packets received past `ack_nr + 1`. Type
//! 0x42 is this crate's own: in a SYN or the answer to one, the largest
//! datagram the sender reads whole (two bytes, big-endian), after empty
//! extension bits (type 2, libutp's), as libutp reads a packet whose first
//! extension is past 2 as another version of the protocol. Other
//! implementations skip an extension they do not know, as BEP 29's chain
//! allows, and read datagrams into buffers of about 1,500 bytes, silently
//! cutting longer ones short; so datagrams past [`UNANNOUNCED_DATAGRAM`]
//! go only to a peer that announced it takes them.

/// Bytes in the fixed header.
pub const HEADER_LEN: usize = 20;

/// The protocol version this crate speaks (BEP 29's).
const VERSION: u8 = 1;

/// The extension type of the selective ACK.
const EXT_SACK: u8 = 1;

/// The extension type of libutp's (and µTorrent's) extension bits.
const EXT_BITS: u8 = 2;

/// The extension type of the largest datagram the sender reads whole.
const EXT_LARGEST_DATAGRAM: u8 = 0x42;

/// The largest datagram sent to a peer that did not announce more:
/// Ethernet's 1,500 bytes less the IPv4 and UDP headers.
pub const UNANNOUNCED_DATAGRAM: u16 = 1472;

/// The longest selective ACK this crate sends: 256 packets past the gap.
/// Longer ones (up to 255 bytes, the most a length byte allows) are read,
/// and shorter ones of any length: BEP 29 asks for a multiple of four
/// bytes, but libtorrent sends as many as its bits need.
pub const MAX_SACK_BYTES: usize = 32;

/// What a packet is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `ST_DATA`: payload.
    Data,
    /// `ST_FIN`: the last packet of the sender's stream.
    Fin,
    /// `ST_STATE`: an acknowledgement, no payload.
    State,
    /// `ST_RESET`: the connection is over, at once.
    Reset,
    /// `ST_SYN`: opens a connection.
    Syn,
}

impl PacketType {
    fn code(self) -> u8 {
        match self {
            PacketType::Data => 0,
            PacketType::Fin => 1,
            PacketType::State => 2,
            PacketType::Reset => 3,
            PacketType::Syn => 4,
        }
    }

    fn from_code(code: u8) -> Option<PacketType> {
        Some(match code {
            0 => PacketType::Data,
            1 => PacketType::Fin,
            2 => PacketType::State,
            3 => PacketType::Reset,
            4 => PacketType::Syn,
            _ => return None,
        })
    }
}

/// The fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// What the packet is for.
    pub kind: PacketType,
    /// The connection: the receiving side's id for it (a SYN carries the
    /// sender's receive id).
    pub connection_id: u16,
    /// The sender's clock when it sent the packet, in microseconds.
    pub timestamp_us: u32,
    /// The sender's last measured one-way delay (its clock minus the
    /// timestamp of the last packet it received), in microseconds.
    pub timestamp_difference_us: u32,
    /// Bytes the sender can still take in (its receive window).
    pub window: u32,
    /// This packet's sequence number.
    pub seq_nr: u16,
    /// The last sequence number received in order.
    pub ack_nr: u16,
}

/// The selective ACK extension: which packets past the first one not yet
/// received (`ack_nr + 1`) have arrived, as a bitmask whose bit *i* (the
/// low bit of byte *i* / 8 first) stands for `ack_nr + 2 + i`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SelectiveAck {
    mask: Vec<u8>,
}

impl SelectiveAck {
    /// The selective ACK of a receiver whose `ack_nr` is `ack_nr`, for the
    /// packets in `received` (sequence numbers past `ack_nr + 1`, with
    /// wrap-around; others, and those past [`MAX_SACK_BYTES`] × 8, are
    /// left out). The mask is as short as it can be, in steps of four
    /// bytes.
    pub fn new(ack_nr: u16, received: impl IntoIterator<Item = u16>) -> SelectiveAck {
        let mut mask = vec![0u8; MAX_SACK_BYTES];
        let mut last = None;
        for seq in received {
            let i = usize::from(seq.wrapping_sub(ack_nr).wrapping_sub(2));
            if i < MAX_SACK_BYTES * 8 {
                mask[i / 8] |= 1 << (i % 8);
                last = last.max(Some(i));
            }
        }
        let bytes = last.map_or(4, |i| (i / 8 + 1).div_ceil(4) * 4);
        mask.truncate(bytes);
        SelectiveAck { mask }
    }

    /// The sequence numbers it acknowledges, given the packet's `ack_nr`.
    pub fn acked(&self, ack_nr: u16) -> impl Iterator<Item = u16> + '_ {
        self.mask.iter().enumerate().flat_map(move |(byte, bits)| {
            (0..8)
                .filter(move |bit| bits & (1 << bit) != 0)
                .map(move |bit| {
                    // At most 255 × 8 bits: the index fits in a u16.
                    let i = (byte * 8 + bit) as u16;
                    ack_nr.wrapping_add(2).wrapping_add(i)
                })
        })
    }

    /// The bitmask as sent.
    pub fn mask(&self) -> &[u8] {
        &self.mask
    }
}

/// One uTP datagram.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    /// The fixed header.
    pub header: Header,
    /// The selective ACK, if it carries one.
    pub selective_ack: Option<SelectiveAck>,
    /// The largest datagram the sender reads whole, if it says (this
    /// crate's extension, in a SYN and its answer).
    pub largest_datagram: Option<u16>,
    /// The payload (for `ST_DATA`; empty for the others).
    pub payload: Vec<u8>,
}

/// Why a datagram is not a uTP packet this crate takes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than the fixed header.
    #[error("{0} bytes, shorter than a uTP header")]
    TooShort(usize),
    /// Another version of the protocol.
    #[error("uTP version {0}, not 1")]
    Version(u8),
    /// A packet type past `ST_SYN`.
    #[error("packet type {0} is not a uTP type")]
    Type(u8),
    /// An extension runs past the end of the datagram.
    #[error("an extension runs past the end of the packet")]
    Truncated,
}

impl Packet {
    /// Decodes one datagram. Unknown extensions are skipped; a second
    /// selective ACK is ignored.
    pub fn decode(bytes: &[u8]) -> Result<Packet, PacketError> {
        if bytes.len() < HEADER_LEN {
            return Err(PacketError::TooShort(bytes.len()));
        }
        let version = bytes[0] & 0x0f;
        if version != VERSION {
            return Err(PacketError::Version(version));
        }
        let kind = PacketType::from_code(bytes[0] >> 4).ok_or(PacketError::Type(bytes[0] >> 4))?;
        let u16_at = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let u32_at = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let header = Header {
            kind,
            connection_id: u16_at(2),
            timestamp_us: u32_at(4),
            timestamp_difference_us: u32_at(8),
            window: u32_at(12),
            seq_nr: u16_at(16),
            ack_nr: u16_at(18),
        };
        let mut next = bytes[1];
        let mut at = HEADER_LEN;
        let mut selective_ack = None;
        let mut largest_datagram = None;
        // Each extension takes at least two bytes: the chain ends.
        while next != 0 {
            let (Some(&following), Some(&len)) = (bytes.get(at), bytes.get(at + 1)) else {
                return Err(PacketError::Truncated);
            };
            let len = usize::from(len);
            let data = bytes
                .get(at + 2..at + 2 + len)
                .ok_or(PacketError::Truncated)?;
            // An empty selective ACK says nothing.
            if next == EXT_SACK && len > 0 {
                selective_ack.get_or_insert_with(|| SelectiveAck {
                    mask: data.to_vec(),
                });
            } else if next == EXT_LARGEST_DATAGRAM
                && let [high, low] = *data
            {
                largest_datagram.get_or_insert(u16::from_be_bytes([high, low]));
            }
            next = following;
            at += 2 + len;
        }
        Ok(Packet {
            header,
            selective_ack,
            largest_datagram,
            payload: bytes[at..].to_vec(),
        })
    }

    /// The datagram's bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(
            &self.header,
            self.selective_ack.as_ref(),
            self.largest_datagram,
            &self.payload,
        )
    }
}

/// A datagram's bytes from its parts (for a sender that keeps its payloads
/// apart from their headers).
pub(crate) fn encode(
    h: &Header,
    sack: Option<&SelectiveAck>,
    largest_datagram: Option<u16>,
    payload: &[u8],
) -> Vec<u8> {
    // Each extension: the type of the next, its length, its bytes.
    let mut extensions: Vec<(u8, &[u8])> = Vec::with_capacity(3);
    if let Some(sack) = sack {
        extensions.push((EXT_SACK, sack.mask()));
    }
    let largest = largest_datagram.map(u16::to_be_bytes);
    if let Some(largest) = &largest {
        // libutp (Transmission's) takes a packet whose first extension is
        // past 2 for another version of the protocol: empty extension
        // bits lead, as µTorrent's SYN carries them.
        if sack.is_none() {
            extensions.push((EXT_BITS, &[0; 8]));
        }
        extensions.push((EXT_LARGEST_DATAGRAM, largest));
    }
    let room: usize = extensions.iter().map(|(_, data)| 2 + data.len()).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + room + payload.len());
    out.push(h.kind.code() << 4 | VERSION);
    out.push(extensions.first().map_or(0, |(kind, _)| *kind));
    out.extend(h.connection_id.to_be_bytes());
    out.extend(h.timestamp_us.to_be_bytes());
    out.extend(h.timestamp_difference_us.to_be_bytes());
    out.extend(h.window.to_be_bytes());
    out.extend(h.seq_nr.to_be_bytes());
    out.extend(h.ack_nr.to_be_bytes());
    for (i, (_, data)) in extensions.iter().enumerate() {
        out.push(extensions.get(i + 1).map_or(0, |(kind, _)| *kind));
        // A mask read from the wire is at most 255 bytes; one made here
        // at most MAX_SACK_BYTES.
        out.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
        out.extend(*data);
    }
    out.extend(payload);
    out
}

/// Whether a datagram on a socket shared with the DHT is uTP: a DHT
/// packet is a bencoded dictionary (`d…`), a uTP one starts with a type
/// up to `ST_SYN` and version 1.
pub fn is_utp(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] & 0x0f == VERSION && datagram[0] >> 4 <= 4
}

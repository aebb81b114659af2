//! The messages peers exchange after the handshake (BEP 3, BEP 6, BEP 10).

use bytes::Bytes;
use metainfo::BlockRef;

/// A peer wire message.
///
/// Block data and bitfields are [`Bytes`] that share the buffer they were
/// read into: decoding copies no payload. Encoding copies a payload once,
/// into the outgoing buffer. A kept `Bytes` keeps its whole read buffer
/// alive: copy small payloads that live long (a bitfield) into their own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// An empty frame, sent to keep the connection open.
    KeepAlive,
    /// The sender will not answer requests.
    Choke,
    /// The sender will answer requests.
    Unchoke,
    /// The sender wants pieces the receiver has.
    Interested,
    /// The sender wants nothing the receiver has.
    NotInterested,
    /// The sender now has this piece.
    Have(u32),
    /// The pieces the sender has, as BEP 3's bitfield (checked against the
    /// piece count by the codec when it knows it).
    Bitfield(Bytes),
    /// Asks for a block.
    Request(BlockRef),
    /// A block of data.
    Piece {
        /// The piece index.
        piece: u32,
        /// The offset within the piece.
        offset: u32,
        /// The data.
        data: Bytes,
    },
    /// Withdraws a request.
    Cancel(BlockRef),
    /// The sender's DHT port (BEP 5).
    Port(u16),
    /// Suggests a piece to download (BEP 6).
    Suggest(u32),
    /// The sender has every piece (BEP 6).
    HaveAll,
    /// The sender has no piece (BEP 6).
    HaveNone,
    /// A request the sender will not answer (BEP 6).
    Reject(BlockRef),
    /// A piece the receiver may request even while choked (BEP 6).
    AllowedFast(u32),
    /// An extension message (BEP 10): id 0 is the extension handshake, other
    /// ids are those the receiver assigned in its handshake.
    Extended {
        /// The extension message id.
        id: u8,
        /// The payload, decoded by the extension (see [`crate::extension`]).
        payload: Bytes,
    },
    /// A message with an id this crate does not know. Its payload is
    /// dropped; the connection goes on, since new extensions appear over
    /// time. Meant to be decoded, not sent: encoding one writes a frame of
    /// the id alone.
    Unknown {
        /// The message id.
        id: u8,
    },
}

/// Message ids.
pub(crate) mod id {
    pub(crate) const CHOKE: u8 = 0;
    pub(crate) const UNCHOKE: u8 = 1;
    pub(crate) const INTERESTED: u8 = 2;
    pub(crate) const NOT_INTERESTED: u8 = 3;
    pub(crate) const HAVE: u8 = 4;
    pub(crate) const BITFIELD: u8 = 5;
    pub(crate) const REQUEST: u8 = 6;
    pub(crate) const PIECE: u8 = 7;
    pub(crate) const CANCEL: u8 = 8;
    pub(crate) const PORT: u8 = 9;
    pub(crate) const SUGGEST: u8 = 13;
    pub(crate) const HAVE_ALL: u8 = 14;
    pub(crate) const HAVE_NONE: u8 = 15;
    pub(crate) const REJECT: u8 = 16;
    pub(crate) const ALLOWED_FAST: u8 = 17;
    pub(crate) const EXTENDED: u8 = 20;
}

impl Message {
    /// The length of the frame after its 4-byte length prefix.
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::KeepAlive => 0,
            Message::Choke | Message::Unchoke | Message::Interested | Message::NotInterested => 1,
            Message::HaveAll | Message::HaveNone | Message::Unknown { .. } => 1,
            Message::Have(_) | Message::Suggest(_) | Message::AllowedFast(_) => 5,
            Message::Bitfield(bits) => 1 + bits.len(),
            Message::Request(_) | Message::Cancel(_) | Message::Reject(_) => 13,
            Message::Piece { data, .. } => 9 + data.len(),
            Message::Port(_) => 3,
            Message::Extended { payload, .. } => 2 + payload.len(),
        }
    }
}

//! The tokio-util codec: frames in, [`Message`]s out, and back.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use metainfo::{BLOCK_SIZE, BlockRef};
use tokio_util::codec::{Decoder, Encoder};

use crate::bitfield::{Bitfield, BitfieldError};
use crate::message::{Message, id};

/// The largest extension message accepted: a 16 KiB metadata piece (BEP 9)
/// and its dictionary, with room to spare.
pub const MAX_EXTENDED_LEN: usize = 2 + 16 * 1024 + 8 * 1024;

/// The largest bitfield accepted before the piece count is known (a magnet
/// link's metadata not yet fetched): 8 million pieces.
pub const MAX_UNKNOWN_BITFIELD: usize = 1 << 20;

/// Why a frame was refused. Any of these means the peer broke the protocol
/// and the connection should be closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Reading or writing the socket failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// A frame longer than any legal message for this torrent.
    #[error("frame of {len} bytes is longer than the largest legal message ({max})")]
    FrameTooLong {
        /// The length announced.
        len: u32,
        /// The limit.
        max: usize,
    },
    /// A message whose length does not fit its id.
    #[error("message id {id} with a payload of {len} bytes, which it cannot have")]
    BadLength {
        /// The message id.
        id: u8,
        /// The payload length.
        len: usize,
    },
    /// A piece message carrying no data, or more than a block.
    #[error("piece message with {0} bytes of data (a block is 1 to 16384)")]
    BadBlock(usize),
    /// A bitfield that does not fit the torrent.
    #[error(transparent)]
    Bitfield(#[from] BitfieldError),
}

/// Frames peer messages: a 4-byte big-endian length, an id, a payload.
///
/// Every length is checked before anything is buffered for it: a frame may
/// be no longer than the largest message of its kind legal for the torrent
/// (a 16 KiB block, the torrent's bitfield, [`MAX_EXTENDED_LEN`] for
/// extended and unknown messages), and messages with a fixed size must have
/// exactly it. So the read buffer holds at most one such frame (and the
/// allocator may round that up to twice). Unknown ids within the limit decode
/// to [`Message::Unknown`] and are otherwise skipped.
#[derive(Clone, Debug)]
pub struct PeerCodec {
    num_pieces: Option<u32>,
    max_len: usize,
}

impl PeerCodec {
    /// A codec for a torrent of `num_pieces` pieces, or of an unknown count
    /// (`None`, while a magnet link's metadata is fetched).
    pub fn new(num_pieces: Option<u32>) -> Self {
        let bitfield = num_pieces.map_or(MAX_UNKNOWN_BITFIELD, Bitfield::bytes_for);
        let block = 9 + BLOCK_SIZE as usize;
        PeerCodec {
            num_pieces,
            max_len: block.max(MAX_EXTENDED_LEN).max(1 + bitfield),
        }
    }

    /// Learns the piece count once the metadata is known, tightening the
    /// limits to it.
    pub fn set_num_pieces(&mut self, num_pieces: u32) {
        *self = PeerCodec::new(Some(num_pieces));
    }

    /// The longest frame accepted, after the length prefix.
    pub fn max_len(&self) -> usize {
        self.max_len
    }
}

impl Decoder for PeerCodec {
    type Item = Message;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, WireError> {
        let Some(prefix) = src.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix);
        if len as usize > self.max_len {
            return Err(WireError::FrameTooLong {
                len,
                max: self.max_len,
            });
        }
        // With the id in hand, hold the frame to that message's own limit
        // before buffering any of it.
        if let Some(&message_id) = src.get(4) {
            let limit = self.limit_for(message_id);
            if len as usize > limit {
                return Err(WireError::FrameTooLong { len, max: limit });
            }
        }
        let frame_len = 4 + len as usize;
        if src.len() < frame_len {
            src.reserve(frame_len - src.len());
            return Ok(None);
        }
        let mut frame = src.split_to(frame_len).freeze();
        frame.advance(4);
        if frame.is_empty() {
            return Ok(Some(Message::KeepAlive));
        }
        let message_id = frame.get_u8();
        parse(message_id, frame, self.num_pieces).map(Some)
    }
}

impl PeerCodec {
    /// The longest frame (after the length prefix) a message with this id
    /// may have.
    fn limit_for(&self, message_id: u8) -> usize {
        match message_id {
            id::CHOKE
            | id::UNCHOKE
            | id::INTERESTED
            | id::NOT_INTERESTED
            | id::HAVE_ALL
            | id::HAVE_NONE => 1,
            id::HAVE | id::SUGGEST | id::ALLOWED_FAST => 5,
            id::REQUEST | id::CANCEL | id::REJECT => 13,
            id::PORT => 3,
            id::PIECE => 9 + BLOCK_SIZE as usize,
            id::BITFIELD => self.max_len,
            // Extended and unknown messages.
            _ => MAX_EXTENDED_LEN,
        }
    }
}

/// A payload of exactly `N` bytes, or the error for `message_id`.
fn fixed<const N: usize>(message_id: u8, payload: &Bytes) -> Result<[u8; N], WireError> {
    payload
        .as_ref()
        .try_into()
        .map_err(|_| WireError::BadLength {
            id: message_id,
            len: payload.len(),
        })
}

fn block_ref(message_id: u8, payload: &Bytes) -> Result<BlockRef, WireError> {
    let b: [u8; 12] = fixed(message_id, payload)?;
    let n = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    Ok(BlockRef {
        piece: n(0),
        offset: n(4),
        length: n(8),
    })
}

fn parse(
    message_id: u8,
    mut payload: Bytes,
    num_pieces: Option<u32>,
) -> Result<Message, WireError> {
    let index = |payload: &Bytes| fixed::<4>(message_id, payload).map(u32::from_be_bytes);
    let empty = |payload: &Bytes| fixed::<0>(message_id, payload);
    Ok(match message_id {
        id::CHOKE => empty(&payload).map(|_| Message::Choke)?,
        id::UNCHOKE => empty(&payload).map(|_| Message::Unchoke)?,
        id::INTERESTED => empty(&payload).map(|_| Message::Interested)?,
        id::NOT_INTERESTED => empty(&payload).map(|_| Message::NotInterested)?,
        id::HAVE_ALL => empty(&payload).map(|_| Message::HaveAll)?,
        id::HAVE_NONE => empty(&payload).map(|_| Message::HaveNone)?,
        id::HAVE => Message::Have(index(&payload)?),
        id::SUGGEST => Message::Suggest(index(&payload)?),
        id::ALLOWED_FAST => Message::AllowedFast(index(&payload)?),
        id::REQUEST => Message::Request(block_ref(message_id, &payload)?),
        id::CANCEL => Message::Cancel(block_ref(message_id, &payload)?),
        id::REJECT => Message::Reject(block_ref(message_id, &payload)?),
        id::PORT => Message::Port(u16::from_be_bytes(fixed(message_id, &payload)?)),
        id::BITFIELD => {
            if let Some(pieces) = num_pieces {
                Bitfield::from_bytes(&payload, pieces)?;
            }
            Message::Bitfield(payload)
        }
        id::PIECE => {
            if payload.len() < 8 {
                return Err(WireError::BadLength {
                    id: message_id,
                    len: payload.len(),
                });
            }
            let piece = payload.get_u32();
            let offset = payload.get_u32();
            if payload.is_empty() || payload.len() > BLOCK_SIZE as usize {
                return Err(WireError::BadBlock(payload.len()));
            }
            Message::Piece {
                piece,
                offset,
                data: payload,
            }
        }
        id::EXTENDED => {
            if payload.is_empty() {
                return Err(WireError::BadLength {
                    id: message_id,
                    len: 0,
                });
            }
            let ext_id = payload.get_u8();
            Message::Extended {
                id: ext_id,
                payload,
            }
        }
        other => Message::Unknown { id: other },
    })
}

impl Encoder<Message> for PeerCodec {
    type Error = WireError;

    fn encode(&mut self, message: Message, dst: &mut BytesMut) -> Result<(), WireError> {
        encode(&message, dst);
        Ok(())
    }
}

impl Encoder<&Message> for PeerCodec {
    type Error = WireError;

    fn encode(&mut self, message: &Message, dst: &mut BytesMut) -> Result<(), WireError> {
        encode(message, dst);
        Ok(())
    }
}

/// Appends one framed message to `dst`.
pub fn encode(message: &Message, dst: &mut BytesMut) {
    let len = message.encoded_len();
    debug_assert!(u32::try_from(len).is_ok(), "a frame over 4 GiB");
    dst.reserve(4 + len);
    dst.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    let block = |dst: &mut BytesMut, b: &BlockRef| {
        dst.put_u32(b.piece);
        dst.put_u32(b.offset);
        dst.put_u32(b.length);
    };
    match message {
        Message::KeepAlive => {}
        Message::Choke => dst.put_u8(id::CHOKE),
        Message::Unchoke => dst.put_u8(id::UNCHOKE),
        Message::Interested => dst.put_u8(id::INTERESTED),
        Message::NotInterested => dst.put_u8(id::NOT_INTERESTED),
        Message::HaveAll => dst.put_u8(id::HAVE_ALL),
        Message::HaveNone => dst.put_u8(id::HAVE_NONE),
        Message::Unknown { id } => dst.put_u8(*id),
        Message::Have(piece) => {
            dst.put_u8(id::HAVE);
            dst.put_u32(*piece);
        }
        Message::Suggest(piece) => {
            dst.put_u8(id::SUGGEST);
            dst.put_u32(*piece);
        }
        Message::AllowedFast(piece) => {
            dst.put_u8(id::ALLOWED_FAST);
            dst.put_u32(*piece);
        }
        Message::Bitfield(bits) => {
            dst.put_u8(id::BITFIELD);
            dst.put_slice(bits);
        }
        Message::Request(b) => {
            dst.put_u8(id::REQUEST);
            block(dst, b);
        }
        Message::Cancel(b) => {
            dst.put_u8(id::CANCEL);
            block(dst, b);
        }
        Message::Reject(b) => {
            dst.put_u8(id::REJECT);
            block(dst, b);
        }
        Message::Piece {
            piece,
            offset,
            data,
        } => {
            dst.put_u8(id::PIECE);
            dst.put_u32(*piece);
            dst.put_u32(*offset);
            dst.put_slice(data);
        }
        Message::Port(port) => {
            dst.put_u8(id::PORT);
            dst.put_u16(*port);
        }
        Message::Extended { id: ext, payload } => {
            dst.put_u8(id::EXTENDED);
            dst.put_u8(*ext);
            dst.put_slice(payload);
        }
    }
}

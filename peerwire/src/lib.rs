//! The peer wire protocol: the bytes that pass between BitTorrent peers, as
//! BEP 3, 6, 9, 10 and 11 say, with nothing trusted that the other side sends.
//!
//! - [`Handshake`] and [`Reserved`]: the 68 bytes that open a connection and
//!   the extension bits (BEP 10, BEP 6, BEP 5) in them.
//! - [`Message`]: every message of BEP 3 and BEP 6, and BEP 10's extended
//!   messages, framed by [`PeerCodec`], a tokio-util `Decoder`/`Encoder`
//!   that bounds every length before buffering for it and hands block data
//!   on as shared [`bytes::Bytes`].
//! - [`extension`]: the extension handshake, `ut_metadata` and `ut_pex`.
//! - [`Bitfield`]: a validated set of pieces; [`allowed_fast_set`]: BEP 6's
//!   generator.
//!
//! Nothing here touches a socket: the codec works on buffers, so it is
//! tested by feeding it bytes.
//!
//! ```
//! use bytes::BytesMut;
//! use metainfo::BlockRef;
//! use peerwire::{Message, PeerCodec};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let mut codec = PeerCodec::new(Some(100));
//! let mut buf = BytesMut::new();
//! let request = Message::Request(BlockRef { piece: 3, offset: 16384, length: 16384 });
//! codec.encode(request.clone(), &mut buf)?;
//! assert_eq!(buf.len(), 17);
//! assert_eq!(codec.decode(&mut buf)?, Some(request));
//! // A hostile length is refused before anything is buffered for it.
//! buf.extend_from_slice(&u32::MAX.to_be_bytes());
//! assert!(codec.decode(&mut buf).is_err());
//! # Ok::<(), peerwire::WireError>(())
//! ```

mod bitfield;
mod codec;
pub mod extension;
mod fast;
mod handshake;
mod message;

pub use bitfield::{Bitfield, BitfieldError};
pub use codec::{MAX_EXTENDED_LEN, MAX_UNKNOWN_BITFIELD, PeerCodec, WireError, encode};
pub use fast::allowed_fast_set;
pub use handshake::{HANDSHAKE_LEN, Handshake, HandshakeError, PROTOCOL, Reserved};
pub use message::Message;

//! Message Stream Encryption (MSE, also called PE): the obfuscated
//! handshake BitTorrent clients use so that a connection does not look
//! like BitTorrent, and the RC4 cipher that may carry the payload after
//! it.
//!
//! A Diffie-Hellman exchange over a 768-bit prime gives both sides a
//! secret; the torrent's info-hash (SKEY) proves that the dialler knows
//! what it asks for, without saying it in the clear; each direction then
//! has its own RC4 stream, and the two sides agree on ciphering the
//! payload or leaving it plain.
//!
//! The protocol is sans-IO:
//! - [`Initiator`] is the side that dialled, [`Responder`] the side that
//!   was dialled. Feed each the bytes that arrive (`handle`) and send what
//!   [`Initiator::take_output`] / [`Responder::take_output`] give, until
//!   `established()` returns the [`Established`] connection: the method
//!   chosen, the [`Cipher`]s, and the payload bytes that came with the end
//!   of the handshake.
//! - A responder finds the torrent asked for through [`Skeys`]; [`req2`]
//!   is what to index its torrents by.
//! - [`is_plaintext_handshake`] tells an incoming plaintext BitTorrent
//!   handshake from an MSE one by its first bytes.
//!
//! With the default `tokio` feature, [`initiate`] and [`respond`] run a
//! handshake over any tokio stream, and [`Reader`] and [`Writer`] cipher
//! the two halves of a connection after it.
//!
//! ```
//! use mse::{Initiator, Method, Methods, Responder};
//!
//! let info_hash = [7u8; 20];
//! let mut rng = rand::rng();
//! let mut a = Initiator::new(info_hash, Methods::BOTH, b"hello".to_vec(), &mut rng)?;
//! let mut b = Responder::new(Methods::BOTH, Method::Rc4, &mut rng);
//! while !(a.is_done() && b.is_done()) {
//!     b.handle(&a.take_output(), &info_hash)?;
//!     a.handle(&b.take_output())?;
//! }
//! let (mut a, mut b) = (a.established().unwrap(), b.established().unwrap());
//! assert_eq!(b.initial_payload, b"hello");
//! assert_eq!((a.method, b.method), (Method::Rc4, Method::Rc4));
//!
//! // A's payload, ciphered by A and deciphered by B.
//! let mut payload = *b"a piece";
//! a.encrypt.as_mut().unwrap().apply(&mut payload);
//! b.decrypt.as_mut().unwrap().apply(&mut payload);
//! assert_eq!(&payload, b"a piece");
//! # Ok::<(), mse::Error>(())
//! ```

mod cipher;
mod dh;
mod handshake;
#[cfg(feature = "tokio")]
mod shell;

pub use cipher::{Cipher, req2};
pub use dh::KEY_LEN;
pub use handshake::{
    Established, Initiator, MAX_INITIAL_PAYLOAD, MAX_PAD, Method, Methods, Responder, Skeys,
};
#[cfg(feature = "tokio")]
pub use shell::{HandshakeError, Reader, Writer, initiate, respond};

/// The first bytes of a plaintext BitTorrent handshake: the protocol
/// name's length (19) and the name.
pub const PLAINTEXT_PREFIX: &[u8; 20] = b"\x13BitTorrent protocol";

/// Whether the first bytes of an incoming connection are those of a
/// plaintext BitTorrent handshake (else, an MSE public key). `first` may
/// be shorter than [`PLAINTEXT_PREFIX`]: then whether it could still be.
pub fn is_plaintext_handshake(first: &[u8]) -> bool {
    let n = first.len().min(PLAINTEXT_PREFIX.len());
    first[..n] == PLAINTEXT_PREFIX[..n]
}

/// Why a handshake failed. The connection is to be closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The other side's public key is 0, 1, P − 1 or not below P.
    #[error("a degenerate Diffie-Hellman public key")]
    BadPublicKey,
    /// A marker was not within the padding's bound: the other side does
    /// not speak MSE, or not to us.
    #[error("{0} not found within the padding's bound")]
    SyncNotFound(&'static str),
    /// The torrent asked for is not one of ours.
    #[error("the initiator asks for a torrent we do not have")]
    UnknownSkey,
    /// The verification constant did not decipher to zeros.
    #[error("the verification constant is wrong")]
    BadVc,
    /// The responder chose a method we did not offer, or more than one.
    #[error("the responder selected {0:#x}, which was not offered")]
    BadSelect(u32),
    /// The initiator offered nothing we accept.
    #[error("no method in common: offered {offered:#x}, accepted {accepted:#x}")]
    NoCommonMethod {
        /// `crypto_provide`.
        offered: u32,
        /// What we accept.
        accepted: u32,
    },
    /// An initiator was asked to offer no method.
    #[error("no method offered")]
    NoMethod,
    /// PadC or PadD longer than [`MAX_PAD`].
    #[error("padding of {0} bytes (at most 512)")]
    PadTooLong(usize),
    /// An initial payload longer than [`MAX_INITIAL_PAYLOAD`].
    #[error("an initial payload of {0} bytes (at most 65,535)")]
    InitialPayloadTooLong(usize),
    /// The handshake failed before; nothing more is taken.
    #[error("the handshake already failed")]
    Failed,
}

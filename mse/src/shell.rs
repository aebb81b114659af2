//! The handshakes over a tokio stream, and the two ciphering halves of a
//! connection after them.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};

use crate::{Cipher, Error, Established, Initiator, Method, Methods, Responder, Skeys};

/// Why a handshake over a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The stream failed, or closed before the end.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The other side broke the protocol.
    #[error("{0}")]
    Protocol(#[from] Error),
}

/// Bytes read from the stream at once during a handshake.
const READ_CHUNK: usize = 4096;

/// Runs an initiator's handshake over `stream` (see [`Initiator::new`]).
/// Wrap it in a timeout: a silent peer makes it wait for ever.
pub async fn initiate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    skey: [u8; 20],
    provide: Methods,
    initial_payload: Vec<u8>,
) -> Result<Established, HandshakeError> {
    let mut initiator = Initiator::new(skey, provide, initial_payload, &mut rand::rng())?;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let out = initiator.take_output();
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
        if let Some(established) = initiator.established() {
            return Ok(established);
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        initiator.handle(&buf[..n])?;
    }
}

/// Runs a responder's handshake over `stream`, whose first bytes were
/// already read into `first` (to tell MSE from a plaintext handshake).
/// Wrap it in a timeout: a silent peer makes it wait for ever.
pub async fn respond<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    first: &[u8],
    accept: Methods,
    prefer: Method,
    skeys: &impl Skeys,
) -> Result<Established, HandshakeError> {
    let mut responder = Responder::new(accept, prefer, &mut rand::rng());
    responder.handle(first, skeys)?;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let out = responder.take_output();
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
        if let Some(established) = responder.established() {
            return Ok(established);
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        responder.handle(&buf[..n], skeys)?;
    }
}

/// The read half of a connection: deciphers what it reads (with a
/// cipher; without one, passes bytes through), after giving the payload
/// bytes that came with the handshake.
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    cipher: Option<Cipher>,
    /// Payload already read and deciphered, and how much of it was given.
    first: Vec<u8>,
    given: usize,
}

impl<R> Reader<R> {
    /// Reads `inner` deciphered by `cipher`, `first` before it.
    pub fn new(inner: R, cipher: Option<Cipher>, first: Vec<u8>) -> Reader<R> {
        Reader {
            inner,
            cipher,
            first,
            given: 0,
        }
    }

    /// A reader without a cipher, that gives `first` before `inner`.
    pub fn plain(inner: R, first: Vec<u8>) -> Reader<R> {
        Reader::new(inner, None, first)
    }

    /// Whether it deciphers.
    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Reader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.given < this.first.len() {
            let n = buf.remaining().min(this.first.len() - this.given);
            buf.put_slice(&this.first[this.given..this.given + n]);
            this.given += n;
            if this.given == this.first.len() {
                this.first = Vec::new();
                this.given = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if let Some(cipher) = &mut this.cipher {
            cipher.apply(&mut buf.filled_mut()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

/// Bytes ciphered at once by a [`Writer`].
const WRITE_CHUNK: usize = 64 * 1024;

/// The write half of a connection: ciphers what it writes (with a cipher;
/// without one, passes bytes through).
#[derive(Debug)]
pub struct Writer<W> {
    inner: W,
    cipher: Option<Cipher>,
    /// Ciphered bytes not yet written, and how many of them were.
    pending: Vec<u8>,
    written: usize,
}

impl<W> Writer<W> {
    /// Writes to `inner` ciphered by `cipher`.
    pub fn new(inner: W, cipher: Option<Cipher>) -> Writer<W> {
        Writer {
            inner,
            cipher,
            pending: Vec::new(),
            written: 0,
        }
    }

    /// Whether it ciphers.
    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    /// Writes the ciphered bytes still waiting.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Writer<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cipher.is_none() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        // The stream has moved on past bytes ciphered earlier: they go
        // first, whole.
        ready!(this.poll_pending(cx))?;
        let n = buf.len().min(WRITE_CHUNK);
        this.pending.extend_from_slice(&buf[..n]);
        if let Some(cipher) = &mut this.cipher {
            cipher.apply(&mut this.pending);
        }
        // Taken: they are sent by this call if the socket has room, else
        // by the next write or flush.
        let _ = this.poll_pending(cx)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

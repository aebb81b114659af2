//! Crowds that take a peer's places and give nothing back, for testing
//! that a full peer table still lets useful peers in and that a seed's
//! memory stays bounded: connections that finish their handshake and then
//! only keep alive, bursts of handshakes all at once, and greedy leechers
//! that pull blocks as fast as they are given.
//!
//! Each member of a crowd dials from a loopback address of its own
//! ([`member_ip`]), so a limit on connections per host sees as many hosts
//! as there are members, as it would on the internet.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::join_all;
use metainfo::{InfoHash, PeerId};
use peerwire::{HANDSHAKE_LEN, Handshake, Reserved};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// The loopback address of crowd member `i`: 127.x.y.z with x from 1, and
/// y and z from 1 to 250, so the first 62,500 members each have one of
/// their own, apart from 127.0.0.1 where the peers under test live.
pub fn member_ip(i: usize) -> IpAddr {
    let octet = |n: usize| u8::try_from(n % 250 + 1).unwrap_or(1);
    let x = u8::try_from(1 + i / (250 * 250)).unwrap_or(u8::MAX);
    IpAddr::V4(Ipv4Addr::new(127, x, octet(i / 250), octet(i)))
}

/// Dials `to` from `from` (any port) and sends a plain handshake for
/// `info_hash`, offering no extension.
pub async fn dial(from: IpAddr, to: SocketAddr, info_hash: InfoHash) -> io::Result<TcpStream> {
    let socket = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(from, 0))?;
    let mut stream = socket.connect(to).await?;
    let ours = Handshake::new(info_hash, PeerId::generate(), Reserved::default());
    stream.write_all(&ours.encode()).await?;
    Ok(stream)
}

/// Reads the handshake that answers ours, within `timeout`: `false` if the
/// other side closed the connection (or sent something else) instead.
pub async fn answered(stream: &mut TcpStream, info_hash: InfoHash, timeout: Duration) -> bool {
    let mut theirs = [0u8; HANDSHAKE_LEN];
    match tokio::time::timeout(timeout, stream.read_exact(&mut theirs)).await {
        Ok(Ok(_)) => Handshake::decode(&theirs).is_ok_and(|h| h.info_hash == info_hash),
        _ => false,
    }
}

/// A connection that finished its handshake and then says nothing but
/// keep-alives: it wants no piece and offers none. It reads and drops
/// whatever it is sent, and closes when dropped.
#[derive(Debug)]
pub struct SilentPeer {
    task: JoinHandle<()>,
    closed: Arc<AtomicBool>,
}

impl SilentPeer {
    /// Dials `to` from `from` and shakes hands for `info_hash`; then, if it
    /// was answered, sends a keep-alive every `keep_alive`. `None` if the
    /// other side closed the connection instead of answering.
    pub async fn join(
        from: IpAddr,
        to: SocketAddr,
        info_hash: InfoHash,
        keep_alive: Duration,
    ) -> io::Result<Option<SilentPeer>> {
        let mut stream = dial(from, to, info_hash).await?;
        if !answered(&mut stream, info_hash, Duration::from_secs(30)).await {
            return Ok(None);
        }
        let closed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&closed);
        let task = tokio::spawn(async move {
            let (mut read, mut write) = stream.into_split();
            let mut tick = tokio::time::interval(keep_alive);
            let mut sink = vec![0u8; 16 * 1024];
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if write.write_all(&[0, 0, 0, 0]).await.is_err() {
                            break;
                        }
                    }
                    read = read.read(&mut sink) => {
                        if !matches!(read, Ok(n) if n > 0) {
                            break;
                        }
                    }
                }
            }
            flag.store(true, Ordering::Relaxed);
        });
        Ok(Some(SilentPeer { task, closed }))
    }

    /// Whether the other side has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

impl Drop for SilentPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Fills `to` with silent peers for `info_hash`, one per address from
/// [`member_ip`]`(first)` on, until `count` were answered or one is
/// refused (the table is full). Returns those answered.
pub async fn fill(
    to: SocketAddr,
    info_hash: InfoHash,
    first: usize,
    count: usize,
    keep_alive: Duration,
) -> io::Result<Vec<SilentPeer>> {
    let mut peers = Vec::new();
    for i in first..first + count {
        match SilentPeer::join(member_ip(i), to, info_hash, keep_alive).await? {
            Some(peer) => peers.push(peer),
            None => break,
        }
    }
    Ok(peers)
}

/// `count` handshakes sent to `to` at once, each from an address of its
/// own (from [`member_ip`]`(first)` on); the number answered within
/// `timeout`. The connections stay open until every answer is in or the
/// time is up.
pub async fn burst(
    to: SocketAddr,
    info_hash: InfoHash,
    first: usize,
    count: usize,
    timeout: Duration,
) -> io::Result<usize> {
    let dials = (first..first + count).map(|i| dial(member_ip(i), to, info_hash));
    let streams = join_all(dials).await;
    let mut open = Vec::new();
    for stream in streams {
        open.push(stream?);
    }
    let answers = open
        .iter_mut()
        .map(|stream| answered(stream, info_hash, timeout));
    Ok(join_all(answers).await.into_iter().filter(|ok| *ok).count())
}

/// A leecher that asks for blocks as fast as it is given them and never
/// gives any: it dials `to` from `from`, says it is interested, and while
/// unchoked keeps [`GREEDY_PIPELINE`] requests for random blocks of
/// `torrent` in flight, until `until` or the other side closes. Returns the
/// payload bytes it received, or `None` if its handshake was not answered.
pub async fn greedy(
    from: IpAddr,
    to: SocketAddr,
    torrent: &metainfo::Metainfo,
    until: tokio::time::Instant,
) -> io::Result<Option<u64>> {
    use futures::{SinkExt, StreamExt as _};
    use peerwire::{Message, PeerCodec};

    let info_hash = torrent.info_hash();
    let mut stream = dial(from, to, info_hash).await?;
    if !answered(&mut stream, info_hash, Duration::from_secs(30)).await {
        return Ok(None);
    }
    let layout = torrent.layout();
    let mut framed =
        tokio_util::codec::Framed::new(stream, PeerCodec::new(Some(layout.num_pieces())));
    framed
        .send(Message::Interested)
        .await
        .map_err(io::Error::other)?;
    let mut received = 0u64;
    let mut in_flight = 0usize;
    let mut unchoked = false;
    loop {
        while unchoked && in_flight < GREEDY_PIPELINE {
            let piece = rand::random_range(0..layout.num_pieces());
            let blocks = layout.num_blocks(piece).unwrap_or(1);
            let Some(block) = layout.block(piece, rand::random_range(0..blocks)) else {
                break;
            };
            framed
                .feed(Message::Request(block))
                .await
                .map_err(io::Error::other)?;
            in_flight += 1;
        }
        SinkExt::<Message>::flush(&mut framed)
            .await
            .map_err(io::Error::other)?;
        let message = tokio::select! {
            message = framed.next() => message,
            () = tokio::time::sleep_until(until) => return Ok(Some(received)),
        };
        match message {
            None | Some(Err(_)) => return Ok(Some(received)),
            Some(Ok(Message::Piece { data, .. })) => {
                received += data.len() as u64;
                in_flight = in_flight.saturating_sub(1);
            }
            Some(Ok(Message::Reject(_))) => in_flight = in_flight.saturating_sub(1),
            Some(Ok(Message::Unchoke)) => unchoked = true,
            Some(Ok(Message::Choke)) => {
                // Without the fast extension a choke drops every request.
                unchoked = false;
                in_flight = 0;
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Requests a greedy leecher keeps in flight.
pub const GREEDY_PIPELINE: usize = 32;

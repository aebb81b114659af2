//! One connection to a peer: the thin async shell around `peerwire`.
//!
//! A connection is one task running two halves side by side. The reader
//! decodes frames; blocks go straight to the disk (no copy, no detour through
//! the torrent task) if and only if they were asked for, and everything else
//! is passed to the torrent task as an [`Event`]. The writer sends what the
//! torrent task commands and serves upload requests from the disk, a batch at
//! a time, the next batch read while the last one is sent; a peer that stops
//! reading slows only its own connection.
//! The torrent task never waits on a connection: it commands over an
//! unbounded channel whose length the protocol bounds (requests within the
//! pipeline depth, serves within [`MAX_SERVE_QUEUE`]).
//!
//! This file dials or accepts, does the handshakes and runs the two halves;
//! they live in `reader` and `writer`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use metainfo::{BlockRef, InfoHash, PeerId};
use peerwire::{Handshake, Message, PeerCodec, Reserved};
use storage::{BlockOutcome, Disk, DiskError};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::picker::PeerKey;
use crate::wire::Wire;
use crate::{DropReason, Faults};

mod reader;
mod writer;
use reader::{ReadContext, read_half};
use writer::Writer;

/// Requests a peer may have queued with us at once; more are refused. Sent
/// to peers as our `reqq`, which libtorrent takes as the most requests to
/// keep in flight to us: at 256, a libtorrent 2.0 leecher stalled on it
/// (2.84–3.04 s for 1 GiB from a btc seeder, 2.23–2.94 s from a libtorrent
/// seeder); at 512, 2.26–2.41 s; at 2000, libtorrent's own default,
/// 1.95–2.03 s. Only the requests wait here, not their data: a full
/// queue is about 64 KiB, and a cancel looks through it, as libtorrent's
/// does.
pub(crate) const MAX_SERVE_QUEUE: usize = 2000;

/// Bytes read from a socket at once, and buffered before a write.
const READ_BUFFER: usize = 128 * 1024;
const WRITE_BUFFER: usize = 64 * 1024;

/// Unsent bytes a socket may hold before it takes no more writes
/// (`TCP_NOTSENT_LOWAT`). Unbounded, Linux takes megabytes ahead of a peer
/// that reads slowly. Bounded, what is not yet sent stays in our queue,
/// where a cancel or choke still reaches it, and on loopback the sending
/// is done by our writes rather than by the reader's acknowledgements.
/// In `cargo xtask bench` (1 GiB, two interleaved runs of three rounds),
/// a libtorrent leecher of a btc seeder went from 2.27–2.32 s to
/// 2.06–2.07 s, and an rqbit leecher from 2.69–2.74 s to 2.34–2.43 s.
#[cfg(any(target_os = "linux", target_os = "android"))]
const NOTSENT_LOWAT: u32 = 64 * 1024;

/// Sets a peer connection's socket options: no Nagle delay (requests are
/// small and urgent), and a bound on unsent bytes where the system has one.
pub(crate) fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = socket2::SockRef::from(stream).set_tcp_notsent_lowat(NOTSENT_LOWAT);
    }
}

/// Blocks we asked a peer for and have not received, shared by the torrent
/// task (which adds and withdraws) and the reader (which takes a block out
/// when it arrives). Only what the reader takes out goes to the disk, so a
/// block is delivered at most once per request.
pub(crate) type Requests = Arc<Mutex<HashSet<BlockRef>>>;

/// Locks a request set; a panic elsewhere while holding it cannot leave a
/// set in a state worse than stale, so poisoning is ignored.
pub(crate) fn lock(requests: &Requests) -> std::sync::MutexGuard<'_, HashSet<BlockRef>> {
    requests.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the torrent task tells a connection to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send a message.
    Send(Message),
    /// Send this block when its turn comes.
    Serve(BlockRef),
    /// The peer cancelled a block: do not send it.
    Unserve(BlockRef),
    /// Choke the peer and drop its queued requests (rejecting each, with the
    /// fast extension).
    Choke {
        /// Send a reject for each dropped request.
        reject: bool,
    },
}

/// What a connection tells the torrent task.
#[derive(Debug)]
pub(crate) enum Event {
    /// The handshake is done; `encrypted` if the payload is ciphered
    /// (MSE with RC4), `utp` if it runs over uTP.
    Ready {
        key: PeerKey,
        handshake: Handshake,
        encrypted: bool,
        utp: bool,
    },
    /// A message other than a block.
    Message { key: PeerKey, message: Message },
    /// Blocks we asked for, with what the disk made of each, in the order
    /// they arrived (those read together come together).
    Blocks {
        key: PeerKey,
        blocks: Vec<(BlockRef, Result<BlockOutcome, DiskError>)>,
    },
    /// A block we did not ask for (or no longer wanted): dropped.
    Unrequested { key: PeerKey, bytes: u64 },
    /// A block was sent to the peer.
    Uploaded { key: PeerKey, bytes: u64 },
    /// The connection is over.
    Closed { key: PeerKey, reason: DropReason },
    /// Peers learnt from a tracker, the DHT or another peer.
    Discovered {
        source: crate::stats::PeerSource,
        /// The tier whose tracker answered, for a tracker's peers.
        tier: Option<usize>,
        peers: Vec<SocketAddr>,
    },
    /// No tracker answered an announce; the last error.
    AnnounceFailed {
        /// The tier none of whose trackers answered.
        tier: usize,
        error: String,
    },
    /// The disk could not read a block to upload (a file deleted or
    /// truncated, an I/O error): the torrent cannot go on as it is.
    ReadFailed(String),
    /// Unfinished pieces the disk dropped because a banned peer had sent
    /// some of their blocks: to be downloaded again, whole.
    Discarded(Vec<u32>),
    /// Pieces a web seed said it had but cannot serve (a file of theirs is
    /// missing on its server).
    Lacks { key: PeerKey, pieces: Vec<u32> },
    /// The disk has made the empty files of the complete download: it is
    /// finished.
    FilesMade,
}

/// Everything a connection task needs.
pub(crate) struct Link {
    pub(crate) key: PeerKey,
    pub(crate) info_hash: InfoHash,
    pub(crate) our_id: PeerId,
    /// The reserved bits of our handshake.
    pub(crate) reserved: Reserved,
    /// The address our dials come from, if the session listens on one.
    pub(crate) local_ip: Option<std::net::IpAddr>,
    pub(crate) num_pieces: u32,
    pub(crate) disk: Disk,
    pub(crate) events: mpsc::Sender<Event>,
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    /// Commands queued and not yet carried out (counted up by the torrent
    /// task, down here).
    pub(crate) queued: Arc<AtomicUsize>,
    pub(crate) requests: Requests,
    pub(crate) faults: Faults,
    pub(crate) handshake_timeout: Duration,
    pub(crate) encryption: crate::Encryption,
    pub(crate) dialled: Arc<crate::wire::Dialer>,
    pub(crate) idle_timeout: Duration,
    pub(crate) limits: crate::torrent::Limits,
}

/// Dials `addr` from `local` (the session's own address, when it listens
/// on one and `addr` is of its family), so that the peer sees the address
/// we listen on: a peer exchange names us by it. A loopback address is
/// used only to reach loopback: from it, nothing else can be reached.
pub(crate) async fn dial(
    addr: SocketAddr,
    local: Option<std::net::IpAddr>,
) -> std::io::Result<TcpStream> {
    match local {
        Some(ip)
            if ip.is_ipv4() == addr.is_ipv4()
                && !ip.is_unspecified()
                && (!ip.is_loopback() || addr.ip().is_loopback()) =>
        {
            let socket = if ip.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(addr).await
        }
        _ => TcpStream::connect(addr).await,
    }
}

/// The extensions we offer: the fast extension (BEP 6) and the extension
/// protocol (BEP 10).
/// With a DHT node, also the DHT bit (BEP 5): peers then send their DHT
/// port.
pub(crate) fn our_reserved(dht: bool) -> Reserved {
    Reserved::default()
        .with_fast(true)
        .with_extension_protocol(true)
        .with_dht(dht)
}

/// How a connection starts.
pub(crate) enum Start {
    /// We dial.
    Connect { addr: SocketAddr, timeout: Duration },
    /// They dialled; their handshake is read (through MSE or not).
    Accepted {
        wire: Box<Wire>,
        handshake: Handshake,
    },
}

/// Runs a connection to its end, then reports [`Event::Closed`].
pub(crate) async fn run(mut link: Link, start: Start) {
    let key = link.key;
    let events = link.events.clone();
    // Dialling and handshaking end early if the torrent lets go of us (it
    // commands nothing before `Ready`, so a closed channel is all `recv`
    // can see here).
    let (_, placeholder) = mpsc::unbounded_channel();
    let mut commands = std::mem::replace(&mut link.commands, placeholder);
    let connected = tokio::select! {
        connected = connect(&link, start) => connected,
        _ = commands.recv() => Err(DropReason::ClosedByUs),
    };
    link.commands = commands;
    let reason = match connected {
        Ok((wire, handshake)) => {
            let ready = Event::Ready {
                key,
                handshake,
                encrypted: wire.encrypted,
                utp: wire.utp,
            };
            if events.send(ready).await.is_err() {
                return;
            }
            exchange(link, wire, handshake).await
        }
        Err(reason) => reason,
    };
    let _ = events.send(Event::Closed { key, reason }).await;
}

async fn connect(link: &Link, start: Start) -> Result<(Wire, Handshake), DropReason> {
    let ours = Handshake::new(link.info_hash, link.our_id, link.reserved);
    match start {
        Start::Connect { addr, timeout } => {
            crate::wire::dial(crate::wire::Dial {
                addr,
                local: link.local_ip,
                ours: &ours,
                policy: link.encryption,
                memory: &link.dialled,
                connect_timeout: timeout,
                handshake_timeout: link.handshake_timeout,
            })
            .await
        }
        Start::Accepted {
            mut wire,
            handshake,
        } => {
            let send = async {
                wire.write.write_all(&ours.encode()).await?;
                wire.write.flush().await
            };
            tokio::time::timeout(link.handshake_timeout, send)
                .await
                .map_err(|_| DropReason::Handshake("handshake timed out".into()))?
                .map_err(|e| DropReason::Handshake(format!("handshake failed: {e}")))?;
            Ok((*wire, handshake))
        }
    }
}

/// The message exchange after the handshakes, until either side ends it.
async fn exchange(link: Link, wire: Wire, handshake: Handshake) -> DropReason {
    let Wire { read, write, .. } = wire;
    // Large reads: a block per system call at least, rather than 8 KiB.
    let reader =
        FramedRead::with_capacity(read, PeerCodec::new(Some(link.num_pieces)), READ_BUFFER);
    let mut writer = FramedWrite::new(write, PeerCodec::new(Some(link.num_pieces)));
    writer.set_backpressure_boundary(WRITE_BUFFER);
    let fast = handshake.reserved.fast() && link.reserved.fast();
    let Link {
        key,
        disk,
        events,
        commands,
        queued,
        requests,
        faults,
        idle_timeout,
        limits,
        ..
    } = link;
    let writer = Writer {
        upload_limit: limits.upload.clone(),
        key,
        sink: writer,
        fast,
        faults,
        timeout: idle_timeout,
        queued,
        served: 0,
    };
    let mut writing = FuturesOrdered::new();
    let reason = tokio::select! {
        reason = read_half(reader, ReadContext {
            key,
            disk: &disk,
            events: &events,
            requests: &requests,
            idle_timeout,
            download_limit: limits.download.as_deref(),
        }, &mut writing) => reason,
        reason = writer.run(&disk, &events, commands) => reason,
    };
    // Blocks already handed to the disk are reported even now: one of them
    // may have completed (or failed) its piece, and the torrent must know.
    while let Some(blocks) = writing.next().await {
        if events.send(Event::Blocks { key, blocks }).await.is_err() {
            break;
        }
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tuned_socket_has_no_nagle_delay_and_a_bound_on_unsent_bytes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        tune(&stream);
        assert!(stream.nodelay().unwrap());
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert_eq!(
            socket2::SockRef::from(&stream).tcp_notsent_lowat().unwrap(),
            NOTSENT_LOWAT
        );
    }
}

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

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::FuturesOrdered;
use futures::{SinkExt, StreamExt as _};
use metainfo::{BLOCK_SIZE, BlockRef, InfoHash, PeerId};
use peerwire::{HANDSHAKE_LEN, Handshake, Message, PeerCodec, Reserved};
use storage::{BlockOutcome, Disk, DiskError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder as _, FramedRead, FramedWrite};

use crate::Faults;
use crate::picker::PeerKey;

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
fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = socket2::SockRef::from(stream).set_tcp_notsent_lowat(NOTSENT_LOWAT);
    }
}

/// Blocks of one connection handed to the disk and not yet answered; the
/// connection stops reading beyond.
const MAX_WRITING: usize = 64;

/// Uploads read from the disk at once: half a megabyte of 16 KiB blocks.
/// A connection holds at most two batches: one being sent, one read ahead.
const SERVE_BATCH: usize = 32;

/// How often something is sent on an idle connection.
const KEEPALIVE: Duration = Duration::from_secs(60);

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
    /// The handshake is done.
    Ready { key: PeerKey, handshake: Handshake },
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
    Closed { key: PeerKey, reason: String },
    /// Peers learnt from a tracker.
    Discovered(Vec<SocketAddr>),
    /// No tracker answered an announce; the last error.
    AnnounceFailed(String),
}

/// Everything a connection task needs.
pub(crate) struct Link {
    pub(crate) key: PeerKey,
    pub(crate) info_hash: InfoHash,
    pub(crate) our_id: PeerId,
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
    pub(crate) idle_timeout: Duration,
    pub(crate) limits: crate::torrent::Limits,
}

/// The extensions we offer: the fast extension (BEP 6) and the extension
/// protocol (BEP 10).
pub(crate) fn our_reserved() -> Reserved {
    Reserved::default()
        .with_fast(true)
        .with_extension_protocol(true)
}

/// How a connection starts.
pub(crate) enum Start {
    /// We dial.
    Connect { addr: SocketAddr, timeout: Duration },
    /// They dialled; their handshake is read.
    Accepted {
        stream: TcpStream,
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
        _ = commands.recv() => Err("closed by us".to_string()),
    };
    link.commands = commands;
    let reason = match connected {
        Ok((stream, handshake)) => {
            let ready = Event::Ready { key, handshake };
            if events.send(ready).await.is_err() {
                return;
            }
            exchange(link, stream, handshake).await
        }
        Err(reason) => reason,
    };
    let _ = events.send(Event::Closed { key, reason }).await;
}

async fn connect(link: &Link, start: Start) -> Result<(TcpStream, Handshake), String> {
    let ours = Handshake::new(link.info_hash, link.our_id, our_reserved()).encode();
    match start {
        Start::Connect { addr, timeout } => {
            let mut stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
                .await
                .map_err(|_| "connect timed out".to_string())?
                .map_err(|e| format!("connect failed: {e}"))?;
            tune(&stream);
            let theirs = tokio::time::timeout(link.handshake_timeout, async {
                stream.write_all(&ours).await?;
                let mut buf = [0u8; HANDSHAKE_LEN];
                stream.read_exact(&mut buf).await?;
                Ok::<_, std::io::Error>(buf)
            })
            .await
            .map_err(|_| "handshake timed out".to_string())?
            .map_err(|e| format!("handshake failed: {e}"))?;
            let handshake = Handshake::decode_for(&theirs, link.info_hash)
                .map_err(|e| format!("bad handshake: {e}"))?;
            Ok((stream, handshake))
        }
        Start::Accepted {
            mut stream,
            handshake,
        } => {
            tune(&stream);
            tokio::time::timeout(link.handshake_timeout, stream.write_all(&ours))
                .await
                .map_err(|_| "handshake timed out".to_string())?
                .map_err(|e| format!("handshake failed: {e}"))?;
            Ok((stream, handshake))
        }
    }
}

/// The message exchange after the handshakes, until either side ends it.
async fn exchange(link: Link, stream: TcpStream, handshake: Handshake) -> String {
    let (read, write) = stream.into_split();
    // Large reads: a block per system call at least, rather than 8 KiB.
    let reader =
        FramedRead::with_capacity(read, PeerCodec::new(Some(link.num_pieces)), READ_BUFFER);
    let mut writer = FramedWrite::new(write, PeerCodec::new(Some(link.num_pieces)));
    writer.set_backpressure_boundary(WRITE_BUFFER);
    let fast = handshake.reserved.fast() && our_reserved().fast();
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

/// What the reading half works with.
struct ReadContext<'a> {
    key: PeerKey,
    disk: &'a Disk,
    events: &'a mpsc::Sender<Event>,
    requests: &'a Requests,
    idle_timeout: Duration,
    download_limit: Option<&'a crate::limit::Limiter>,
}

/// The outcomes to come of a batch of blocks handed to the disk.
type Outcomes = std::pin::Pin<
    Box<dyn std::future::Future<Output = Vec<(BlockRef, Result<BlockOutcome, DiskError>)>> + Send>,
>;

/// Batches of blocks handed to the disk whose outcomes are still to come,
/// in order.
type Writing = FuturesOrdered<Outcomes>;

type Reader = FramedRead<tokio::net::tcp::OwnedReadHalf, PeerCodec>;

async fn read_half(mut reader: Reader, ctx: ReadContext<'_>, writing: &mut Writing) -> String {
    let mut last_heard = tokio::time::Instant::now();
    // Blocks in `writing`, all batches together.
    let mut in_flight = 0;
    // An event found while gathering a batch, to send next.
    let mut stashed = None;
    loop {
        // Room for the event first: once an outcome is taken from
        // `writing`, it is sent without waiting, so no cancellation can
        // lose it between the two.
        let Ok(permit) = ctx.events.reserve().await else {
            return "the torrent stopped".into();
        };
        if let Some(event) = stashed.take() {
            permit.send(event);
            continue;
        }
        let event = tokio::select! {
            biased;
            Some(blocks) = writing.next(), if !writing.is_empty() => {
                in_flight -= blocks.len();
                Event::Blocks { key: ctx.key, blocks }
            }
            frame = reader.next(), if in_flight < MAX_WRITING => {
                last_heard = tokio::time::Instant::now();
                let message = match frame {
                    None => return "closed by the peer".into(),
                    Some(Err(e)) => return format!("protocol error: {e}"),
                    Some(Ok(message)) => message,
                };
                match message {
                    Message::KeepAlive => continue,
                    Message::Piece { piece, offset, data } => {
                        let first = (piece, offset, data);
                        match on_blocks(&mut reader, &ctx, first, in_flight, &mut stashed).await {
                            Err(reason) => return reason,
                            Ok(Gathered::Sent(count, pending)) => {
                                in_flight += count;
                                writing.push_back(pending);
                                continue;
                            }
                            Ok(Gathered::Event(event)) => event,
                        }
                    }
                    message => Event::Message { key: ctx.key, message },
                }
            }
            () = tokio::time::sleep_until(last_heard + ctx.idle_timeout) => {
                return format!("silent for {} s", ctx.idle_timeout.as_secs());
            }
        };
        permit.send(event);
    }
}

/// What became of a received block and those read with it.
enum Gathered {
    /// This many blocks went to the disk; their outcomes to come.
    Sent(usize, Outcomes),
    /// Nothing went to the disk: this event says why.
    Event(Event),
}

/// Takes a received block, and every further block already in the read
/// buffer (up to the in-flight bound), to the disk as one job: one wake-up
/// of the disk thread and one answer for all the blocks of one socket read,
/// rather than one each. A block we did not ask for ends the batch; its
/// event is stashed to be sent after.
async fn on_blocks(
    reader: &mut Reader,
    ctx: &ReadContext<'_>,
    first: (u32, u32, bytes::Bytes),
    in_flight: usize,
    stashed: &mut Option<Event>,
) -> Result<Gathered, String> {
    let mut batch = Vec::new();
    let mut next = Some(first);
    while let Some((piece, offset, data)) = next.take() {
        // Over the download limit, reading pauses here, and TCP slows the
        // sender down.
        if let Some(limit) = ctx.download_limit {
            limit.take(data.len() as u64).await;
        }
        let block = BlockRef {
            piece,
            offset,
            length: data.len() as u32,
        };
        if !lock(ctx.requests).remove(&block) {
            let event = Event::Unrequested {
                key: ctx.key,
                bytes: data.len() as u64,
            };
            if batch.is_empty() {
                return Ok(Gathered::Event(event));
            }
            *stashed = Some(event);
            break;
        }
        batch.push((block, data));
        if in_flight + batch.len() < MAX_WRITING {
            next = buffered_block(reader)?;
        }
    }
    let blocks: Vec<BlockRef> = batch.iter().map(|(block, _)| *block).collect();
    let count = blocks.len();
    match ctx.disk.send_blocks(batch, ctx.key).await {
        Ok(pending) => Ok(Gathered::Sent(
            count,
            Box::pin(async move { blocks.into_iter().zip(pending.await).collect() }),
        )),
        Err(e) => {
            // The disk stopped: every block of the batch fails alike.
            let message = e.to_string();
            let mut blocks = blocks.into_iter();
            let first = blocks.next().map(|block| (block, Err(e)));
            let rest = blocks.map(|block| (block, Err(DiskError::Stopped)));
            tracing::debug!(%message, "disk refused a batch");
            Ok(Gathered::Event(Event::Blocks {
                key: ctx.key,
                blocks: first.into_iter().chain(rest).collect(),
            }))
        }
    }
}

/// The `piece` message id (BEP 3).
const PIECE_ID: u8 = 7;

/// The next frame, if it is a whole `piece` message already in the read
/// buffer; anything else stays there for the reader.
fn buffered_block(reader: &mut Reader) -> Result<Option<(u32, u32, bytes::Bytes)>, String> {
    let buffer = reader.read_buffer();
    let Some(header) = buffer.get(..5) else {
        return Ok(None);
    };
    let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if header[4] != PIECE_ID || buffer.len() - 4 < length {
        return Ok(None);
    }
    // One whole frame, decoded (and checked) by the codec as the reader
    // would, without a copy.
    let mut frame = reader.read_buffer_mut().split_to(4 + length);
    match reader.decoder_mut().decode(&mut frame) {
        Ok(Some(Message::Piece {
            piece,
            offset,
            data,
        })) => Ok(Some((piece, offset, data))),
        Ok(other) => Err(format!(
            "protocol error: a piece frame decoded as {other:?}"
        )),
        Err(e) => Err(format!("protocol error: {e}")),
    }
}

/// The sending half of a connection.
struct Writer {
    key: PeerKey,
    upload_limit: Option<Arc<crate::limit::Limiter>>,
    sink: FramedWrite<tokio::net::tcp::OwnedWriteHalf, PeerCodec>,
    fast: bool,
    faults: Faults,
    /// A send that cannot go out for this long means the peer stopped
    /// reading: the connection ends.
    timeout: Duration,
    queued: Arc<AtomicUsize>,
    /// Blocks uploaded so far.
    served: u64,
}

/// Uploads a connection owes its peer.
#[derive(Default)]
struct ServeQueue {
    /// Requests not yet read, each with the time it may go (now, unless an
    /// added latency is injected).
    serving: VecDeque<(BlockRef, tokio::time::Instant)>,
    /// Blocks read from the disk and not yet sent: at most one batch.
    /// Their upload tokens are taken.
    read: Vec<(BlockRef, bytes::Bytes)>,
    /// Blocks in `serving` whose upload tokens are already taken.
    paid: HashSet<BlockRef>,
}

impl Writer {
    async fn run(
        mut self,
        disk: &Disk,
        events: &mpsc::Sender<Event>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) -> String {
        let mut queue = ServeQueue::default();
        loop {
            // Everything already commanded, in order.
            loop {
                match commands.try_recv() {
                    Ok(command) => {
                        if let Err(e) = self.obey(command, &mut queue).await {
                            return e;
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return "closed by us".into(),
                }
            }
            let now = tokio::time::Instant::now();
            if queue.serving.is_empty() {
                queue.paid.clear();
            }
            let batch = self.next_batch(&mut queue.serving, &mut queue.paid, now);
            if batch.is_empty() && queue.read.is_empty() {
                if let Err(e) = self.flush().await {
                    return e;
                }
                let next_due = queue.serving.front().map(|(_, due)| *due);
                tokio::select! {
                    command = commands.recv() => match command {
                        Some(command) => {
                            if let Err(e) = self.obey(command, &mut queue).await {
                                return e;
                            }
                        }
                        None => return "closed by us".into(),
                    },
                    () = tokio::time::sleep_until(next_due.unwrap_or(now + KEEPALIVE)) => {
                        if next_due.is_none()
                            && let Err(e) = self.feed(Message::KeepAlive).await
                        {
                            return e;
                        }
                    }
                }
                continue;
            }
            // The blocks read last go out while the disk reads the next
            // batch, so the socket does not sit idle during a read.
            let read = async {
                if batch.is_empty() {
                    Ok(Vec::new())
                } else {
                    disk.read_blocks(batch.clone()).await
                }
            };
            let ready = std::mem::take(&mut queue.read);
            let (sent, read) = futures::join!(self.send_blocks(ready, events), read);
            if let Err(e) = sent {
                return e;
            }
            let read = match read {
                Ok(read) => read,
                Err(e) => return format!("cannot read a block to upload: {e}"),
            };
            for (block, data) in batch.into_iter().zip(read) {
                match data {
                    Ok(data) => queue.read.push((block, data)),
                    Err(e) => return format!("cannot read a block to upload: {e}"),
                }
            }
        }
    }

    /// Takes the uploads due now from the queue, to be read from the disk
    /// together (blocks of one piece with one read); one at a time under a
    /// fault.
    fn next_batch(
        &self,
        serving: &mut VecDeque<(BlockRef, tokio::time::Instant)>,
        paid: &mut HashSet<BlockRef>,
        now: tokio::time::Instant,
    ) -> Vec<BlockRef> {
        let mut batch = Vec::new();
        let one_at_a_time =
            self.faults.upload_rate.is_some() || self.faults.close_after_uploads.is_some();
        while batch.len() < SERVE_BATCH {
            let Some((block, _)) = serving.pop_front_if(|(_, due)| *due <= now) else {
                break;
            };
            // Over the upload limit, the block waits its turn in the queue,
            // and commands (our requests, haves, cancels) keep flowing
            // meanwhile.
            if let Some(limit) = &self.upload_limit
                && !paid.remove(&block)
            {
                let wait = limit.reserve(u64::from(block.length));
                if !wait.is_zero() {
                    paid.insert(block);
                    serving.push_front((block, now + wait));
                    break;
                }
            }
            batch.push(block);
            if one_at_a_time {
                break;
            }
        }
        batch
    }

    /// Sends blocks read from the disk, and tells the torrent task.
    async fn send_blocks(
        &mut self,
        blocks: Vec<(BlockRef, bytes::Bytes)>,
        events: &mpsc::Sender<Event>,
    ) -> Result<(), String> {
        if blocks.is_empty() {
            return Ok(());
        }
        let mut bytes = 0;
        for (block, data) in blocks {
            let data = if self.faults.corrupt_uploads {
                // A lying peer, for tests: every byte flipped.
                data.iter().map(|b| !b).collect::<Vec<u8>>().into()
            } else {
                data
            };
            bytes += data.len() as u64;
            let piece = Message::Piece {
                piece: block.piece,
                offset: block.offset,
                data,
            };
            self.feed(piece).await?;
            self.served += 1;
        }
        let key = self.key;
        if events.send(Event::Uploaded { key, bytes }).await.is_err() {
            return Err("the torrent stopped".into());
        }
        if let Some(rate) = self.faults.upload_rate {
            self.flush().await?;
            let pause = Duration::from_secs_f64(bytes as f64 / rate.max(1) as f64);
            tokio::time::sleep(pause).await;
        }
        if self
            .faults
            .close_after_uploads
            .is_some_and(|n| self.served >= n)
        {
            // A peer that drops the connection mid-piece, for tests.
            let _ = self.flush().await;
            return Err("closed on purpose (fault injection)".into());
        }
        Ok(())
    }

    async fn feed(&mut self, message: Message) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, self.sink.feed(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("send failed: {e}")),
            Err(_) => Err("the peer stopped reading".into()),
        }
    }

    async fn flush(&mut self) -> Result<(), String> {
        let flush = SinkExt::<Message>::flush(&mut self.sink);
        match tokio::time::timeout(self.timeout, flush).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("send failed: {e}")),
            Err(_) => Err("the peer stopped reading".into()),
        }
    }

    /// Gives back the upload tokens taken for a block that will not go.
    fn refund(&self, block: BlockRef) {
        if let Some(limit) = &self.upload_limit {
            limit.refund(u64::from(block.length));
        }
    }

    async fn obey(&mut self, command: Command, queue: &mut ServeQueue) -> Result<(), String> {
        self.queued.fetch_sub(1, Ordering::Relaxed);
        match command {
            Command::Send(message) => self.feed(message).await?,
            Command::Serve(block) => {
                let queued = queue.serving.len() + queue.read.len();
                if queued < MAX_SERVE_QUEUE && block.length <= BLOCK_SIZE {
                    let due = tokio::time::Instant::now() + self.faults.latency.unwrap_or_default();
                    queue.serving.push_back((block, due));
                } else if self.fast {
                    self.feed(Message::Reject(block)).await?;
                }
            }
            Command::Unserve(block) => {
                let found = if let Some(i) = queue.serving.iter().position(|(b, _)| *b == block) {
                    queue.serving.remove(i);
                    if queue.paid.remove(&block) {
                        self.refund(block);
                    }
                    true
                } else if let Some(i) = queue.read.iter().position(|(b, _)| *b == block) {
                    queue.read.remove(i);
                    self.refund(block);
                    true
                } else {
                    false
                };
                if found && self.fast {
                    // BEP 6: a cancelled request is answered with a reject.
                    self.feed(Message::Reject(block)).await?;
                }
            }
            Command::Choke { reject } => {
                self.feed(Message::Choke).await?;
                let mut paid = std::mem::take(&mut queue.paid);
                let read = std::mem::take(&mut queue.read)
                    .into_iter()
                    .map(|(b, _)| (b, true));
                let serving = std::mem::take(&mut queue.serving)
                    .into_iter()
                    .map(move |(b, _)| (b, paid.remove(&b)));
                for (block, paid) in read.chain(serving) {
                    if paid {
                        self.refund(block);
                    }
                    if reject {
                        self.feed(Message::Reject(block)).await?;
                    }
                }
            }
        }
        Ok(())
    }
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

//! The writing half of a connection: what the torrent task commands, and
//! the uploads owed to the peer, read from the disk a batch at a time
//! while the batch before is sent.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::SinkExt;
use metainfo::{BLOCK_SIZE, BlockRef};
use peerwire::{Message, PeerCodec};
use storage::{Disk, DiskError};
use tokio::sync::mpsc;
use tokio_util::codec::FramedWrite;

use super::{Command, Event, MAX_SERVE_QUEUE};
use crate::DropReason;
use crate::Faults;
use crate::picker::PeerKey;

/// Uploads read from the disk at once: half a megabyte of 16 KiB blocks.
/// A connection holds at most two batches: one being sent, one read ahead.
const SERVE_BATCH: usize = 32;

/// How often something is sent on an idle connection.
const KEEPALIVE: Duration = Duration::from_secs(60);

/// The sending half of a connection.
pub(super) struct Writer {
    pub(super) key: PeerKey,
    pub(super) upload_limit: Option<Arc<crate::limit::Limiter>>,
    pub(super) sink: FramedWrite<crate::wire::WireWrite, PeerCodec>,
    pub(super) fast: bool,
    pub(super) faults: Faults,
    /// A send that cannot go out for this long means the peer stopped
    /// reading: the connection ends.
    pub(super) timeout: Duration,
    pub(super) queued: Arc<AtomicUsize>,
    /// Blocks uploaded so far.
    pub(super) served: u64,
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
    pub(super) async fn run(
        mut self,
        disk: &Disk,
        events: &mpsc::Sender<Event>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) -> DropReason {
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
                    Err(mpsc::error::TryRecvError::Disconnected) => return DropReason::ClosedByUs,
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
                        None => return DropReason::ClosedByUs,
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
                Err(e) => return read_failed(e, events).await,
            };
            for (block, data) in batch.into_iter().zip(read) {
                match data {
                    Ok(data) => queue.read.push((block, data)),
                    Err(e) => return read_failed(e, events).await,
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
    ) -> Result<(), DropReason> {
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
            return Err(DropReason::Stopped);
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
            return Err(DropReason::Injected);
        }
        Ok(())
    }

    async fn feed(&mut self, message: Message) -> Result<(), DropReason> {
        match tokio::time::timeout(self.timeout, self.sink.feed(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DropReason::SendFailed(e.to_string())),
            Err(_) => Err(DropReason::NotReading),
        }
    }

    async fn flush(&mut self) -> Result<(), DropReason> {
        let flush = SinkExt::<Message>::flush(&mut self.sink);
        match tokio::time::timeout(self.timeout, flush).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DropReason::SendFailed(e.to_string())),
            Err(_) => Err(DropReason::NotReading),
        }
    }

    /// Gives back the upload tokens taken for a block that will not go.
    fn refund(&self, block: BlockRef) {
        if let Some(limit) = &self.upload_limit {
            limit.refund(u64::from(block.length));
        }
    }

    async fn obey(&mut self, command: Command, queue: &mut ServeQueue) -> Result<(), DropReason> {
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

/// Tells the torrent task that the disk failed a read (the torrent's
/// fault, not the peer's: requests are checked before they get here), and
/// gives the reason this connection ends. A disk stopped is a shutdown.
async fn read_failed(error: DiskError, events: &mpsc::Sender<Event>) -> DropReason {
    if !matches!(error, DiskError::Stopped) {
        let _ = events.send(Event::ReadFailed(error.to_string())).await;
    }
    DropReason::DiskRead(error.to_string())
}

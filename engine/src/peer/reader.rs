//! The reading half of a connection: frames decoded from the socket,
//! blocks we asked for handed to the disk a socket read at a time, and
//! everything else passed to the torrent task.

use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use metainfo::BlockRef;
use peerwire::{Message, PeerCodec};
use storage::{BlockOutcome, Disk, DiskError};
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder as _, FramedRead};

use crate::DropReason;

use super::{Event, Requests, lock};
use crate::picker::PeerKey;

/// Blocks of one connection handed to the disk and not yet answered; the
/// connection stops reading beyond.
const MAX_WRITING: usize = 64;

/// What the reading half works with.
pub(super) struct ReadContext<'a> {
    pub(super) key: PeerKey,
    pub(super) disk: &'a Disk,
    pub(super) events: &'a mpsc::Sender<Event>,
    pub(super) requests: &'a Requests,
    pub(super) idle_timeout: Duration,
    pub(super) download_limit: Option<&'a crate::limit::Limiter>,
}

/// The outcomes to come of a batch of blocks handed to the disk.
type Outcomes = std::pin::Pin<
    Box<dyn std::future::Future<Output = Vec<(BlockRef, Result<BlockOutcome, DiskError>)>> + Send>,
>;

/// Batches of blocks handed to the disk whose outcomes are still to come,
/// in order.
type Writing = FuturesOrdered<Outcomes>;

type Reader = FramedRead<crate::wire::WireRead, PeerCodec>;

pub(super) async fn read_half(
    mut reader: Reader,
    ctx: ReadContext<'_>,
    writing: &mut Writing,
) -> DropReason {
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
            return DropReason::Stopped;
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
                    None => return DropReason::ClosedByPeer,
                    Some(Err(e)) => return DropReason::Protocol(e.to_string()),
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
                return DropReason::Silent(ctx.idle_timeout.as_secs());
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
) -> Result<Gathered, DropReason> {
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
        let requested = {
            let mut requests = lock(ctx.requests);
            if requests.remove(&block) {
                true
            } else if let Some(asked) = requests
                .iter()
                .find(|r| r.piece == piece && r.offset == offset)
            {
                // The answer to a request, cut short or too long: the
                // request would stay out until the peer is snubbed.
                return Err(DropReason::Protocol(format!(
                    "a block of {} bytes for a request of {}",
                    data.len(),
                    asked.length
                )));
            } else {
                false
            }
        };
        if !requested {
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
fn buffered_block(reader: &mut Reader) -> Result<Option<(u32, u32, bytes::Bytes)>, DropReason> {
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
        Ok(other) => Err(DropReason::Protocol(format!(
            "a piece frame decoded as {other:?}"
        ))),
        Err(e) => Err(DropReason::Protocol(e.to_string())),
    }
}

//! The download side: asking peers for blocks, what each block's arrival
//! means (stored, a copy, a piece verified or failed), banning the peers
//! that sent bad data, and snubbing those that stop sending.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use metainfo::BlockRef;
use peerwire::Message;
use storage::{AssemblyError, BlockOutcome, DiskError};

use super::{Running, Torrent, count, host};
use crate::DropReason;
use crate::peer::{self, Event};
use crate::picker::{Delivered, PeerKey};

/// A peer this many times slower than the fastest is slow (see
/// [`slow_peers`]) ...
const SLOW_FACTOR: f64 = 8.0;
/// ... once it has sent something, or kept us waiting this long.
const SLOW_AFTER: Duration = Duration::from_secs(2);
use crate::stats::TorrentEvent;

impl Torrent {
    /// Asks `key` for more blocks, up to its queue depth.
    pub(super) fn fill(&self, run: &mut Running, key: PeerKey) {
        if run.paused || run.error.is_some() {
            return;
        }
        let slow = if run.picker.in_endgame() {
            slow_peers(run)
        } else {
            HashSet::new()
        };
        let Some(peer) = run.peers.get_mut(&key) else {
            return;
        };
        if !peer.ready() || peer.peer_choking || !peer.am_interested {
            return;
        }
        let depth = peer.queue_depth();
        let mut requests = peer::lock(&peer.requests);
        let room = depth.saturating_sub(requests.len());
        // Top up in batches, not one block per block received.
        if room == 0 || (room < depth / 4 && !requests.is_empty()) {
            return;
        }
        let is_slow = |k| slow.contains(&k);
        let picked = if peer.web.is_some() {
            let picked = run
                .picker
                .pick_after(key, &peer.has, room, peer.last_piece, is_slow);
            peer.last_piece = picked.last().map(|b| b.piece).or(peer.last_piece);
            picked
        } else {
            run.picker.pick_judging(key, &peer.has, room, is_slow)
        };
        if picked.is_empty() {
            return;
        }
        if requests.is_empty() {
            peer.waiting_since = Some(Instant::now());
        }
        for block in picked {
            requests.insert(block);
            peer.send(Message::Request(block));
        }
    }

    /// Tops up every peer's requests (after blocks were given back).
    pub(super) fn fill_all(&self, run: &mut Running) {
        let keys: Vec<PeerKey> = run.peers.keys().copied().collect();
        for key in keys {
            self.fill(run, key);
        }
    }

    /// A peer that sent nothing for a while after being asked: its requests
    /// go to others, and it gets one at a time until it sends again.
    pub(super) fn snub(&self, run: &mut Running, key: PeerKey) {
        let Some(peer) = run.peers.get_mut(&key) else {
            return;
        };
        // A web seed has nothing to come back with by itself (a server
        // that trickles a byte a second would hold its requests for
        // hours): it is dropped, to be tried again later.
        if peer.web.is_some() {
            let reason = format!(
                "sent no block in {} s",
                peer.waiting_since
                    .map_or(0, |since| since.elapsed().as_secs())
            );
            self.drop_peer(run, key, DropReason::WebSeed(reason));
            return;
        }
        tracing::debug!(addr = %peer.addr, "peer snubbed");
        peer.snubbed = true;
        peer.waiting_since = None;
        let withdrawn: Vec<BlockRef> = peer::lock(&peer.requests).drain().collect();
        peer.unasked.took_back(withdrawn.len());
        for block in &withdrawn {
            peer.send(Message::Cancel(*block));
        }
        for block in withdrawn {
            run.picker.withdrawn(key, block);
        }
        self.fill_all(run);
    }

    /// A block from `key` reached the disk (or failed to): counts it, cancels
    /// its other copies, and acts on a piece verified or failed.
    pub(super) fn on_block(
        &self,
        run: &mut Running,
        key: PeerKey,
        block: BlockRef,
        outcome: Result<BlockOutcome, DiskError>,
    ) {
        let bytes = u64::from(block.length);
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(DiskError::Block(AssemblyError::Full { .. })) => {
                // The memory bound: the block is dropped and asked for again.
                run.picker.withdrawn(key, block);
                run.wasted += bytes;
                self.fill_all(run);
                return;
            }
            Err(DiskError::Block(e)) => {
                self.drop_peer(run, key, DropReason::Protocol(format!("bad block: {e}")));
                return;
            }
            Err(e) => {
                self.fail(run, format!("{e}"));
                return;
            }
        };
        // Counted for its sender even if the connection has ended since.
        let sender = run
            .peers
            .get(&key)
            .map(|p| p.id)
            .or_else(|| run.gone.get(&key).map(|g| g.0))
            .flatten();
        if let Some(id) = sender {
            count(&mut run.totals, id, bytes, 0);
        }
        if let Some(peer) = run.peers.get_mut(&key) {
            peer.down.add(bytes);
            peer.active_at = Instant::now();
            peer.snubbed = false;
            peer.rejects = 0;
            peer.waiting_since = if peer::lock(&peer.requests).is_empty() {
                None
            } else {
                Some(Instant::now())
            };
        }
        run.down.add(bytes);
        if outcome == BlockOutcome::Duplicate {
            // The disk holds this block already (an endgame copy, or a copy
            // that arrived after its peer left): wasted bytes, but the
            // picker below still learns the block is in.
            run.wasted += bytes;
        }
        match outcome {
            BlockOutcome::AlreadyVerified(piece) => {
                run.wasted += bytes;
                if !run.picker.has(piece) {
                    self.piece_verified(run, piece);
                }
            }
            BlockOutcome::Stored
            | BlockOutcome::Duplicate
            | BlockOutcome::PieceVerified { .. }
            | BlockOutcome::PieceFailed { .. } => {
                match run.picker.delivered(key, block) {
                    Delivered::Duplicate => {
                        if outcome != BlockOutcome::Duplicate {
                            run.wasted += bytes;
                        }
                    }
                    Delivered::New { cancel } => {
                        for other in cancel {
                            if let Some(peer) = run.peers.get_mut(&other)
                                && peer::lock(&peer.requests).remove(&block)
                            {
                                peer.unasked.took_back(1);
                                peer.send(Message::Cancel(block));
                            }
                        }
                    }
                }
                match outcome {
                    // Once: an `AlreadyVerified` from another peer may have
                    // overtaken this answer.
                    BlockOutcome::PieceVerified { piece, ref liars } => {
                        // The liars are banned whatever the order of
                        // events; the piece is counted once.
                        for liar in liars {
                            self.ban(run, *liar);
                        }
                        if !run.picker.has(piece) {
                            self.piece_verified(run, piece);
                        }
                    }
                    BlockOutcome::PieceFailed { piece, senders } => {
                        self.piece_failed(run, piece, senders);
                    }
                    _ => {}
                }
            }
        }
        self.fill(run, key);
    }

    /// Piece `piece` is verified and on disk.
    pub(super) fn piece_verified(&self, run: &mut Running, piece: u32) {
        run.picker.verified(piece);
        run.dirty = true;
        let _ = self.broadcast.send(TorrentEvent::PieceVerified(piece));
        let keys: Vec<PeerKey> = run.peers.keys().copied().collect();
        for key in keys {
            if let Some(peer) = run.peers.get(&key)
                && peer.ready()
            {
                peer.send(Message::Have(piece));
                if peer.am_interested && !run.picker.is_interesting(&peer.has) {
                    self.update_interest(run, key);
                }
            }
        }
        self.update_progress(run);
        if run.picker.is_complete() {
            tracing::info!(
                name = %self.metainfo.info().name(),
                wasted_bytes = run.wasted,
                "download complete"
            );
            // Every peer met, those gone included.
            for totals in run.totals.values() {
                let web = run
                    .web_seeds
                    .iter()
                    .find(|slot| slot.seed.peer_id() == totals.id);
                match web {
                    Some(slot) => tracing::debug!(
                        url = %slot.seed.url(),
                        received = totals.downloaded,
                        "web seed's share"
                    ),
                    None => tracing::debug!(
                        id = %totals.id,
                        received = totals.downloaded,
                        sent = totals.uploaded,
                        "peer's share"
                    ),
                }
            }
            // Finished once its empty files are made too.
            self.await_files(run, true);
            // Seeds have nothing to give each other, and web seeds nothing
            // to a complete download (one that lacks files included).
            let seeds: Vec<PeerKey> = run
                .peers
                .iter()
                .filter(|(_, p)| p.has.is_full() || p.web.is_some())
                .map(|(k, _)| *k)
                .collect();
            for key in seeds {
                self.drop_peer(run, key, DropReason::BothSeeds);
            }
            self.publish(run);
        }
    }

    /// Piece `piece` failed its hash check; `senders` are the peers whose
    /// blocks were hashed, as the disk saw them (a late copy from an earlier
    /// round counts against whoever sent it, not whoever was asked since).
    pub(super) fn piece_failed(&self, run: &mut Running, piece: u32, senders: Vec<PeerKey>) {
        self.restart_piece(run, piece);
        run.hash_failures += 1;
        run.wasted += u64::from(run.picker.layout().piece_len(piece).unwrap_or(0));
        let mut distinct = senders;
        distinct.sort_unstable();
        distinct.dedup();
        // Those gone too (a liar banned on another piece, say): the blame
        // must not seem to fall on the honest peers alone.
        // Web seeds have no address (they stand as the unspecified one).
        let addrs = distinct
            .iter()
            .filter_map(|k| {
                run.peers
                    .get(k)
                    .map(|p| p.addr)
                    .or_else(|| run.gone.get(k).map(|g| g.1))
            })
            .filter(|addr| !addr.ip().is_unspecified())
            .collect();
        let webs: Vec<&str> = run
            .web_seeds
            .iter()
            .filter(|slot| slot.key.is_some_and(|k| distinct.contains(&k)))
            .map(|slot| slot.seed.url())
            .collect();
        if webs.is_empty() {
            tracing::info!(piece, peers = ?addrs, "piece failed its hash check");
        } else {
            tracing::info!(piece, peers = ?addrs, web_seeds = ?webs, "piece failed its hash check");
        }
        let _ = self.broadcast.send(TorrentEvent::HashFailed {
            piece,
            peers: addrs,
        });
        // A peer that sent the whole piece sent the bad data. When several
        // did, the good copy to come will tell which (`piece_verified`).
        if let [alone] = distinct[..] {
            self.ban(run, alone);
        }
    }

    /// Piece `piece` starts over: every block is asked for again. Copies
    /// still asked for (endgame) would bring back data from the round given
    /// up: they are cancelled, so that the next round's blocks all come
    /// from the peers it asks.
    fn restart_piece(&self, run: &mut Running, piece: u32) {
        run.picker.failed(piece);
        for peer in run.peers.values_mut() {
            let stale: Vec<BlockRef> = {
                let mut requests = peer::lock(&peer.requests);
                let stale: Vec<BlockRef> = requests
                    .iter()
                    .filter(|b| b.piece == piece)
                    .copied()
                    .collect();
                for block in &stale {
                    requests.remove(block);
                }
                stale
            };
            peer.unasked.took_back(stale.len());
            for block in stale {
                peer.send(Message::Cancel(block));
            }
        }
    }

    /// The disk dropped these unfinished pieces, which held blocks from a
    /// banned peer: they are downloaded again.
    pub(super) fn pieces_discarded(&self, run: &mut Running, pieces: Vec<u32>) {
        for piece in pieces {
            if !run.picker.has(piece) {
                tracing::debug!(piece, "piece started over: it held a banned peer's blocks");
                run.wasted += u64::from(run.picker.layout().piece_len(piece).unwrap_or(0));
                self.restart_piece(run, piece);
            }
        }
        self.fill_all(run);
    }

    /// Bans the peer behind connection `key` (live, or gone): its id and,
    /// if we dialled it, its address. Every live connection with that id
    /// is dropped, so a liar that reconnected meanwhile goes too.
    pub(super) fn ban(&self, run: &mut Running, key: PeerKey) {
        let Some((id, addr, outgoing)) = run
            .peers
            .get(&key)
            .map(|p| (p.id, p.addr, p.outgoing))
            .or_else(|| run.gone.get(&key).copied())
        else {
            return;
        };
        if outgoing {
            run.banned_addrs.insert(addr);
        }
        let new = match id {
            Some(id) => run.banned_ids.insert((id, host(addr))),
            None => true,
        };
        // By connection, not by id: a peer could claim a web seed's id (it
        // is public) to have the web seed banned for its own bad data.
        let web = run
            .web_seeds
            .iter_mut()
            .find(|slot| slot.last_key == Some(key));
        if let Some(slot) = web {
            slot.banned = true;
            if new {
                tracing::warn!(url = %slot.seed.url(), "web seed dropped for good: it sent data that failed its hash check");
            }
        } else if new {
            tracing::warn!(%addr, "banned for sending data that failed its hash check");
            let _ = self.broadcast.send(TorrentEvent::PeerBanned { addr, id });
        }
        let same: Vec<PeerKey> = run
            .peers
            .iter()
            .filter(|(k, p)| {
                **k == key || (id.is_some() && p.id == id && host(p.addr) == host(addr))
            })
            .map(|(k, _)| *k)
            .collect();
        for key in &same {
            self.drop_peer(run, *key, DropReason::Banned);
        }
        // Its blocks in pieces not yet finished are as suspect: the disk
        // drops those pieces, and they are asked for again.
        let disk = self.disk.clone();
        let events = self.events_tx.clone();
        let mut senders = same;
        if !senders.contains(&key) {
            senders.push(key);
        }
        tokio::spawn(async move {
            let mut pieces = Vec::new();
            for sender in senders {
                if let Ok(mut dropped) = disk.forget_sender(sender).await {
                    pieces.append(&mut dropped);
                }
            }
            if !pieces.is_empty() {
                let _ = events.send(Event::Discarded(pieces)).await;
            }
        });
    }
}

/// The peers much slower than the fastest, whose endgame copies a faster
/// peer need not wait on. A block is asked of two peers at most; were both
/// slow (leechers that upload a few KiB/s), it would wait on them while a
/// seeder sat idle: with three 1 KiB/s leechers beside a 2 MiB/s seeder,
/// the last 2% took 15 s, until the snub timeout.
fn slow_peers(run: &Running) -> HashSet<PeerKey> {
    let best = run
        .peers
        .values()
        .map(|p| p.down.per_second())
        .fold(0.0, f64::max);
    run.peers
        .iter()
        .filter(|(_, p)| {
            let judged =
                p.down.total() > 0 || p.waiting_since.is_some_and(|t| t.elapsed() >= SLOW_AFTER);
            judged && p.down.per_second() * SLOW_FACTOR < best
        })
        .map(|(k, _)| *k)
        .collect()
}

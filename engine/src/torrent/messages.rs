//! What a connection's messages do to the torrent: the pieces a peer has
//! and our interest in them, choking, requests to serve, and the extension
//! handshake and metadata requests (BEP 10, 9).

use std::net::SocketAddr;

use metainfo::{BLOCK_SIZE, BlockRef};
use peerwire::extension::{ExtensionHandshake, UtMetadata};
use peerwire::{Bitfield, Message};

use super::pipeline::MAX_QUEUE;
use super::{MAX_REJECTS, Running, Torrent};
use crate::DropReason;
use crate::peer::{self, Command};
use crate::picker::PeerKey;
use crate::stats::PeerSource;

impl Torrent {
    /// One message from a peer; an error is why to drop it.
    pub(super) fn on_message(
        &self,
        run: &mut Running,
        key: PeerKey,
        message: Message,
    ) -> Result<(), DropReason> {
        let num_pieces = run.picker.layout().num_pieces();
        let Some(peer) = run.peers.get_mut(&key) else {
            return Ok(());
        };
        let first = !peer.said_pieces;
        tracing::trace!(addr = %peer.addr, ?message, "received");
        if !matches!(message, Message::KeepAlive) {
            peer.said_anything = true;
        }
        match message {
            Message::KeepAlive | Message::Piece { .. } | Message::Suggest(_) => {}
            Message::Port(port) => {
                if let Some(dht) = &self.dht
                    && port != 0
                {
                    dht.add_node(SocketAddr::new(peer.addr.ip(), port));
                }
            }
            Message::Unknown { .. } | Message::AllowedFast(_) => {}
            Message::Choke => {
                peer.peer_choking = true;
                if !peer.fast {
                    // Without the fast extension a choke drops every request.
                    let withdrawn: Vec<BlockRef> = peer::lock(&peer.requests).drain().collect();
                    peer.waiting_since = None;
                    for block in withdrawn {
                        run.picker.withdrawn(key, block);
                    }
                    self.fill_all(run);
                }
            }
            Message::Unchoke => {
                peer.peer_choking = false;
                self.fill(run, key);
            }
            Message::Interested => {
                peer.peer_interested = true;
                // A free upload slot is given at once rather than at the
                // next round, so a newcomer starts without waiting.
                if peer.am_choking {
                    self.refill_slots(run);
                }
            }
            Message::NotInterested => {
                peer.peer_interested = false;
                // Its slot goes to a peer that waits, as libtorrent does;
                // it gets one again when it is interested again.
                if !peer.am_choking {
                    self.set_choke(run, key, true);
                    self.refill_slots(run);
                }
            }
            Message::Have(piece) => {
                if piece >= num_pieces {
                    return Err(DropReason::Protocol(format!(
                        "have for piece {piece} of {num_pieces}"
                    )));
                }
                peer.said_pieces = true;
                if !peer.has.get(piece) {
                    peer.has.set(piece);
                    run.picker.add_have(piece);
                    self.after_pieces_changed(run, key);
                }
            }
            Message::Bitfield(bytes) => {
                let mut has = Bitfield::from_bytes(&bytes, num_pieces)
                    .map_err(|e| DropReason::Protocol(e.to_string()))?;
                if !first {
                    // BEP 3 wants it first, but some clients (aria2) send
                    // one after other messages: taken as more pieces.
                    for piece in peer.has.iter() {
                        has.set(piece);
                    }
                }
                self.set_pieces(run, key, has);
            }
            Message::HaveAll => {
                if !peer.fast {
                    return Err(DropReason::Protocol(
                        "have-all without the fast extension".into(),
                    ));
                }
                self.set_pieces(run, key, Bitfield::full(num_pieces));
            }
            Message::HaveNone => {
                if !peer.fast {
                    return Err(DropReason::Protocol(
                        "have-none without the fast extension".into(),
                    ));
                }
                if first {
                    self.set_pieces(run, key, Bitfield::new(num_pieces));
                }
            }
            Message::Request(block) => self.on_request(run, key, block)?,
            Message::Cancel(block) => {
                peer.command(Command::Unserve(block));
            }
            Message::Reject(block) => {
                if !peer.fast {
                    return Err(DropReason::Protocol(
                        "reject without the fast extension".into(),
                    ));
                }
                if peer::lock(&peer.requests).remove(&block) {
                    run.picker.withdrawn(key, block);
                    // A choking peer rejects what it had queued; one that
                    // rejects while unchoked is refusing work. It is not
                    // asked again at once (it would be asked in a loop):
                    // only at the next tick, or when it sends a block.
                    if !peer.peer_choking {
                        peer.rejects += 1;
                        if peer.rejects > MAX_REJECTS {
                            return Err(DropReason::RefusesWork {
                                rejected: peer.rejects,
                            });
                        }
                    }
                    let others: Vec<PeerKey> =
                        run.peers.keys().copied().filter(|k| *k != key).collect();
                    for other in others {
                        self.fill(run, other);
                    }
                }
            }
            Message::Extended { id, payload } => {
                if id == 0 && peer.extended {
                    // A malformed extension handshake is ignored, as other
                    // clients do; `reqq` and `ut_metadata` matter here.
                    if let Ok(theirs) = ExtensionHandshake::decode(&payload) {
                        tracing::debug!(
                            addr = %peer.addr,
                            client = ?theirs.v,
                            reqq = ?theirs.reqq,
                            "extension handshake"
                        );
                        if let Some(reqq) = theirs.reqq {
                            peer.reqq = (reqq as usize).clamp(1, MAX_QUEUE);
                        }
                        peer.ut_metadata = theirs.id("ut_metadata");
                        if self.pex_enabled() {
                            peer.ut_pex = theirs.id("ut_pex");
                        }
                        // A peer that dialled us is not dialled back when a
                        // tracker lists it: a second connection to the same
                        // peer would cost one of the two, and the requests
                        // in flight on it.
                        if !peer.outgoing
                            && peer.listen.is_none()
                            && let Some(port) = theirs.p
                        {
                            let listen = SocketAddr::new(peer.addr.ip(), port);
                            peer.listen = Some(listen);
                            run.known.insert(listen, PeerSource::Incoming);
                            run.candidates.retain(|a| *a != listen);
                        }
                    }
                } else if id == super::pex::UT_PEX_ID {
                    self.on_pex(run, key, &payload);
                } else if id == crate::metadata::UT_METADATA_ID
                    && let Some(their_id) = peer.ut_metadata
                    && let Ok(UtMetadata::Request { piece }) = UtMetadata::decode(&payload)
                {
                    let answer = crate::metadata::answer(self.metainfo.raw_info(), piece);
                    peer.send(Message::Extended {
                        id: their_id,
                        payload: answer.encode(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The peer's pieces are now `has` (a bitfield, have-all or have-none).
    pub(super) fn set_pieces(&self, run: &mut Running, key: PeerKey, has: Bitfield) {
        let Some(peer) = run.peers.get_mut(&key) else {
            return;
        };
        peer.said_pieces = true;
        run.picker.remove_peer(&peer.has);
        run.picker.add_peer(&has);
        peer.has = has;
        self.after_pieces_changed(run, key);
    }

    /// A web seed cannot serve these pieces after all (a file of theirs is
    /// not on its server): they no longer count as its, and its requests
    /// for them go back to the picker for others.
    pub(super) fn peer_lacks(&self, run: &mut Running, key: PeerKey, pieces: Vec<u32>) {
        let Some(peer) = run.peers.get_mut(&key) else {
            return;
        };
        let mut lost = Bitfield::new(run.picker.layout().num_pieces());
        for piece in pieces {
            if peer.has.get(piece) {
                peer.has.unset(piece);
                lost.set(piece);
            }
        }
        run.picker.remove_peer(&lost);
        let (withdrawn, none_left) = {
            let mut requests = peer::lock(&peer.requests);
            let stale: Vec<BlockRef> = requests
                .iter()
                .filter(|b| lost.get(b.piece))
                .copied()
                .collect();
            for block in &stale {
                requests.remove(block);
            }
            (stale, requests.is_empty())
        };
        if none_left {
            peer.waiting_since = None;
        }
        for block in withdrawn {
            run.picker.withdrawn(key, block);
        }
        self.update_interest(run, key);
        self.fill_all(run);
    }

    /// A peer's pieces changed: both seeds means nothing to trade; else our
    /// interest, then requests.
    pub(super) fn after_pieces_changed(&self, run: &mut Running, key: PeerKey) {
        let Some(peer) = run.peers.get(&key) else {
            return;
        };
        if run.picker.is_complete() && peer.has.is_full() {
            self.drop_peer(run, key, DropReason::BothSeeds);
            return;
        }
        self.update_interest(run, key);
        self.fill(run, key);
    }

    /// Tells the peer whether we are interested, if that changed.
    pub(super) fn update_interest(&self, run: &mut Running, key: PeerKey) {
        let Some(peer) = run.peers.get_mut(&key) else {
            return;
        };
        let interested = run.error.is_none() && run.picker.is_interesting(&peer.has);
        if interested != peer.am_interested {
            peer.am_interested = interested;
            peer.send(if interested {
                Message::Interested
            } else {
                Message::NotInterested
            });
        }
    }

    /// A peer asks for a block: served if it is unchoked and the block is ours
    /// and well formed; else rejected (BEP 6) or ignored.
    pub(super) fn on_request(
        &self,
        run: &mut Running,
        key: PeerKey,
        block: BlockRef,
    ) -> Result<(), DropReason> {
        let layout = run.picker.layout();
        if layout
            .check_range(block.piece, block.offset, block.length)
            .is_none()
        {
            return Err(DropReason::Protocol(format!(
                "request outside the torrent: piece {} offset {} length {}",
                block.piece, block.offset, block.length
            )));
        }
        let have = run.picker.has(block.piece);
        let Some(peer) = run.peers.get(&key) else {
            return Ok(());
        };
        if peer.am_choking || !have || block.length > BLOCK_SIZE || run.error.is_some() {
            // BEP 6: refused requests are rejected; without it, ignored.
            if peer.fast {
                peer.send(Message::Reject(block));
            }
            return Ok(());
        }
        peer.command(Command::Serve(block));
        if let Some(peer) = run.peers.get_mut(&key) {
            peer.asked_at = Some(std::time::Instant::now());
        }
        Ok(())
    }

    /// Chokes or unchokes a peer, if that changes anything.
    pub(super) fn set_choke(&self, run: &mut Running, key: PeerKey, choke: bool) {
        let Some(peer) = run.peers.get_mut(&key) else {
            return;
        };
        if peer.am_choking == choke
            || !peer.ready()
            || (!choke && self.options.faults.never_unchoke)
        {
            return;
        }
        peer.am_choking = choke;
        if choke {
            peer.unchoked_at = None;
            peer.command(Command::Choke { reject: peer.fast });
        } else {
            peer.unchoked_at = Some(std::time::Instant::now());
            peer.send(Message::Unchoke);
        }
    }
}

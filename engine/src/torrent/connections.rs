//! Who the torrent talks to: addresses waiting to be dialled, connections
//! dialled and accepted, the checks a handshake must pass (not ourselves,
//! not banned, not a second connection to the same peer), and forgetting a
//! peer that leaves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use peerwire::{Bitfield, Handshake, Message};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::pipeline::Unasked;
use super::{
    DEFAULT_REQQ, Incoming, MAX_GONE, Peer, REPLACE_EVERY, RETRY_AFTER, RETRY_MAX, Running,
    SEED_RETRY, Torrent, WebSeedSlot, host, host_group,
};
use crate::DropReason;
use crate::peer::{self, Link, Requests, Start};
use crate::picker::PeerKey;
use crate::rate::Rate;
use crate::stats::{PeerSource, TorrentEvent};
use crate::turnover::{self, Kind, Newcomer, Standing};
use crate::webseed::{WebClient, WebSeed};

/// Dials under way beyond which no peer is dropped to make room for
/// another: an address from a tracker may well be dead, and each dial that
/// fails frees its place again.
const TURNOVER_DIALS: usize = 4;
/// Addresses waiting to be dialled at most: the DHT and peer exchange
/// could otherwise name more than a torrent will ever dial.
const MAX_CANDIDATES: usize = 2000;
/// Why a peer is dropped for a newcomer, and how long its addresses rest
/// before they are dialled again.
const GAVE_WAY_RETRY: Duration = Duration::from_secs(10 * 60);

/// Connections we dialled that have not finished their handshake.
fn dialling(run: &Running) -> usize {
    run.peers
        .values()
        .filter(|p| p.outgoing && !p.ready())
        .count()
}

impl Torrent {
    /// Queues an address to dial, unless it is ours, known, banned or cooling
    /// down after a failure.
    pub(super) fn add_candidate(&self, run: &mut Running, addr: SocketAddr, source: PeerSource) {
        let ours =
            addr.port() == self.port && (addr.ip().is_loopback() || addr.ip().is_unspecified());
        if ours
            || run.known.contains_key(&addr)
            || run.banned_addrs.contains(&addr)
            || run.cooling.get(&addr).is_some_and(|t| *t > Instant::now())
        {
            return;
        }
        if run.candidates.len() >= MAX_CANDIDATES {
            return;
        }
        run.known.insert(addr, source);
        run.candidates.push_back(addr);
    }

    /// Dials candidates while there is room, or while peers with nothing
    /// to trade can give way to them (a few dials at a time).
    pub(super) fn connect_more(&self, run: &mut Running) {
        if run.paused || run.error.is_some() {
            return;
        }
        while let Some(&addr) = run.candidates.front() {
            if self.host_full(run, addr) {
                // Forgotten, not kept: the tracker names it again later.
                run.candidates.pop_front();
                run.known.remove(&addr);
                continue;
            }
            if self.table_full(run)
                && (dialling(run) >= TURNOVER_DIALS || !self.make_room(run, Newcomer::Candidate))
            {
                break;
            }
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                break;
            };
            run.candidates.pop_front();
            self.spawn_peer(
                run,
                addr,
                true,
                permit,
                Start::Connect {
                    addr,
                    timeout: self.config.connect_timeout,
                },
            );
        }
    }

    /// Starts a connection task for `addr` and enters it in the peer table.
    pub(super) fn spawn_peer(
        &self,
        run: &mut Running,
        addr: SocketAddr,
        outgoing: bool,
        permit: OwnedSemaphorePermit,
        start: Start,
    ) {
        let link = self.enter_peer(run, addr, outgoing, permit, None);
        tokio::spawn(peer::run(link, start));
    }

    /// Enters a connection in the peer table: the [`Link`] its task runs
    /// with.
    fn enter_peer(
        &self,
        run: &mut Running,
        addr: SocketAddr,
        outgoing: bool,
        permit: OwnedSemaphorePermit,
        web: Option<usize>,
    ) -> Link {
        let key = run.next_key;
        run.next_key += 1;
        let now = Instant::now();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let requests = Requests::default();
        let num_pieces = run.picker.layout().num_pieces();
        run.peers.insert(
            key,
            Peer {
                addr,
                outgoing,
                source: if outgoing {
                    run.known.get(&addr).copied().unwrap_or(PeerSource::Given)
                } else {
                    PeerSource::Incoming
                },
                id: None,
                commands,
                queued: queued.clone(),
                requests: requests.clone(),
                has: Bitfield::new(num_pieces),
                said_pieces: false,
                said_anything: false,
                fast: false,
                extended: false,
                ut_metadata: None,
                ut_pex: None,
                pex_sent: Default::default(),
                pex_heard_at: None,
                reqq: DEFAULT_REQQ,
                am_choking: true,
                am_interested: false,
                peer_choking: true,
                peer_interested: false,
                down: Rate::default(),
                up: Rate::default(),
                waiting_since: None,
                snubbed: false,
                rejects: 0,
                unasked: Unasked::default(),
                connected_at: now,
                active_at: now,
                unchoked_at: None,
                asked_at: None,
                listen: None,
                encrypted: false,
                utp: false,
                web,
                last_piece: None,
                _permit: permit,
            },
        );
        Link {
            key,
            info_hash: self.info_hash,
            our_id: self.config.peer_id,
            reserved: peer::our_reserved(self.dht.is_some()),
            local_ip: Some(self.config.listen.ip()),
            num_pieces,
            disk: self.disk.clone(),
            events: self.events_tx.clone(),
            commands: commands_rx,
            queued,
            requests,
            faults: self.options.faults.clone(),
            handshake_timeout: self.config.handshake_timeout,
            encryption: self.config.encryption,
            dialled: self.dialled.clone(),
            idle_timeout: self.config.idle_timeout,
            limits: self.limits.clone(),
        }
    }

    /// The torrent's usable web seeds, each URL once; the others are
    /// reported and left out.
    pub(super) fn web_seeds(&self) -> Vec<WebSeedSlot> {
        let mut slots: Vec<WebSeedSlot> = Vec::new();
        for url in &self.metainfo.url_list {
            if slots.iter().any(|s| s.seed.url() == url) {
                continue;
            }
            match WebSeed::new(url, self.metainfo.info()) {
                Ok(seed) => slots.push(WebSeedSlot {
                    seed: Arc::new(seed),
                    key: None,
                    last_key: None,
                    failures: 0,
                    next_try: Instant::now(),
                    banned: false,
                }),
                Err(e) => tracing::warn!(url = %tracker::shown(url), "web seed left out: {e}"),
            }
        }
        slots
    }

    /// Starts the web seeds that are due, while there is something to
    /// download and room for a connection.
    pub(super) fn connect_web_seeds(&self, run: &mut Running) {
        if run.paused || run.error.is_some() || run.picker.is_complete() {
            return;
        }
        let now = Instant::now();
        for index in 0..run.web_seeds.len() {
            let slot = &run.web_seeds[index];
            if slot.key.is_some() || slot.banned || slot.next_try > now {
                continue;
            }
            if run.peers.len() >= self.config.max_peers_per_torrent {
                return;
            }
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                return;
            };
            let seed = slot.seed.clone();
            let client = run.web_client.get_or_insert_with(WebClient::new).clone();
            // A web seed has no address; the unspecified one stands in
            // where the peer table wants one, and is never dialled.
            let addr = SocketAddr::from(([0, 0, 0, 0], 0));
            let link = self.enter_peer(run, addr, false, permit, Some(index));
            run.web_seeds[index].key = Some(link.key);
            run.web_seeds[index].last_key = Some(link.key);
            let layout = run.picker.layout().clone();
            if run.web_seeds[index].failures == 0 {
                tracing::info!(url = %seed.url(), "downloading from a web seed");
            } else {
                tracing::debug!(url = %seed.url(), "web seed tried again");
            }
            tokio::spawn(crate::webseed::run(link, seed, layout, client));
        }
    }

    /// A web seed's connection ended: it is tried again later, the later
    /// the more tries in a row failed, unless the download is done.
    fn web_seed_gone(&self, run: &mut Running, index: usize, delivered: bool, reason: &DropReason) {
        let retry = self.config.web_seed_retry;
        let Some(slot) = run.web_seeds.get_mut(index) else {
            return;
        };
        slot.key = None;
        if run.picker.is_complete() {
            tracing::debug!(url = %slot.seed.url(), "web seed done: the download is complete");
            return;
        }
        if run.paused || slot.banned {
            tracing::debug!(url = %slot.seed.url(), %reason, "web seed stopped");
            return;
        }
        slot.failures = if delivered {
            1
        } else {
            slot.failures.saturating_add(1)
        };
        let wait = retry
            .saturating_mul(1 << (slot.failures - 1).min(6))
            .min(RETRY_MAX);
        slot.next_try = Instant::now() + wait;
        // Said once in a row of failures, not at every retry.
        if slot.failures == 1
            && !matches!(reason, DropReason::WebSeed(r) if r == crate::webseed::LACKING_IDLE_REASON)
        {
            tracing::warn!(url = %slot.seed.url(), "web seed failed: {reason}; trying again in {} s", wait.as_secs());
        } else {
            tracing::debug!(url = %slot.seed.url(), %reason, "web seed failed again");
        }
    }

    /// A peer dialled us: taken if it is not banned, its host has room, and
    /// the table has room or a peer that may give way to it. A second
    /// connection to a peer we have (both dialled at once), or to
    /// ourselves, costs nobody a place: it is let in over the limit, and its
    /// handshake settles at once which connection stays (`on_ready`).
    pub(super) fn on_incoming(&self, run: &mut Running, incoming: Incoming) {
        let addr = incoming.addr;
        let id = incoming.handshake.peer_id;
        let settles_itself = id == self.config.peer_id
            || run
                .peers
                .values()
                .any(|p| p.id == Some(id) && host(p.addr) == host(addr));
        let refusal = if run.paused {
            Some("the torrent is paused")
        } else if run.error.is_some() {
            Some("the torrent stopped on an error")
        } else if run
            .banned_ids
            .contains(&(incoming.handshake.peer_id, host(addr)))
        {
            Some("banned")
        } else if self.host_full(run, addr) {
            Some("too many connections from its address")
        } else if self.table_full(run)
            && !settles_itself
            && !self.make_room(run, Newcomer::Incoming)
        {
            Some("the peer table is full and no peer has been idle long enough to give way")
        } else {
            None
        };
        let permit = match refusal {
            Some(reason) => Err(reason),
            None => self
                .permits
                .clone()
                .try_acquire_owned()
                .map_err(|_| "the session's connection limit is reached"),
        };
        let permit = match permit {
            Ok(permit) => permit,
            Err(reason) => {
                tracing::debug!(%addr, %reason, "incoming peer refused");
                return;
            }
        };
        let start = Start::Accepted {
            wire: incoming.wire,
            handshake: incoming.handshake,
        };
        self.spawn_peer(run, incoming.addr, false, permit, start);
    }

    /// A connection's handshake is done: it is dropped if it is us, banned or
    /// a second connection to a peer we have; else it gets our pieces and, if
    /// it speaks BEP 10, our extension handshake.
    pub(super) fn on_ready(&self, run: &mut Running, key: PeerKey, handshake: Handshake) {
        let id = handshake.peer_id;
        let host_of_key = run.peers.get(&key).map(|p| host(p.addr));
        let reason = if id == self.config.peer_id {
            Some(DropReason::Ourselves)
        } else if host_of_key.is_some_and(|ip| run.banned_ids.contains(&(id, ip))) {
            Some(DropReason::Banned)
        } else if let Some((new_addr, new_outgoing)) =
            run.peers.get(&key).map(|p| (p.addr, p.outgoing))
            && let Some((&other, _)) = run.peers.iter().find(|(k, p)| {
                // A peer id is only a claim: the same id from another IP
                // is another peer, so that nobody can keep a peer out by
                // connecting first under its id.
                **k != key && p.id == Some(id) && host(p.addr) == host(new_addr)
            })
        {
            let old = run.peers.get_mut(&other);
            let old_outgoing = old.as_ref().is_some_and(|p| p.outgoing);
            let old_busy = old
                .as_ref()
                .is_some_and(|p| p.down.total() > 0 || p.up.total() > 0);
            // Both sides dialled at about the same time. Both keep the
            // connection dialled by the peer with the lower id, so they
            // never drop one each.
            let dialled_by = |outgoing: bool| if outgoing { self.config.peer_id } else { id };
            let keep_new = new_outgoing != old_outgoing
                && !old_busy
                && dialled_by(new_outgoing).0 < dialled_by(old_outgoing).0;
            if keep_new {
                self.drop_peer(run, other, DropReason::Duplicate);
                None
            } else {
                // A connection that already carries blocks is kept, whoever
                // dialled it: dropping it would lose the requests in flight.
                // A peer that dialled us without saying where it listens
                // (rqbit, aria2) has now shown us: that address is not
                // dialled again while the connection lasts.
                if new_outgoing
                    && let Some(old) = old
                    && !old.outgoing
                {
                    old.listen.get_or_insert(new_addr);
                }
                Some(DropReason::Duplicate)
            }
        } else {
            None
        };
        if let Some(reason) = reason {
            // Ourselves: never dial that address again.
            if id == self.config.peer_id
                && let Some(peer) = run.peers.get(&key)
                && peer.outgoing
            {
                run.banned_addrs.insert(peer.addr);
            }
            self.drop_peer(run, key, reason);
            return;
        }
        let complete = run.picker.is_complete();
        let bitfield = run.picker.bitfield();
        let have_count = run.picker.have_count();
        let Some(peer) = run.peers.get_mut(&key) else {
            return;
        };
        peer.id = Some(id);
        peer.fast = handshake.reserved.fast();
        peer.extended = handshake.reserved.extension_protocol();
        // Every piece, not just every wanted one: a partial download
        // (chosen files) sends its bitfield.
        if peer.fast && complete && have_count == run.picker.layout().num_pieces() {
            peer.send(Message::HaveAll);
        } else if peer.fast && have_count == 0 {
            peer.send(Message::HaveNone);
        } else if have_count > 0 {
            peer.send(Message::Bitfield(bitfield.to_bytes()));
        }
        if peer.extended {
            // We serve the info dictionary to magnet downloaders.
            let ours = crate::wire::extension_handshake(
                Some(self.port),
                u32::try_from(self.metainfo.raw_info().len()).ok(),
                self.pex_enabled(),
            );
            peer.send(Message::Extended {
                id: 0,
                payload: ours.encode(),
            });
        }
        // BEP 5: a peer with a DHT node learns where ours listens.
        if handshake.reserved.dht()
            && let Some(port) = self.dht.as_ref().and_then(|dht| dht.port())
        {
            peer.send(Message::Port(port));
        }
        let addr = peer.addr;
        let source = peer.source;
        let (utp, encrypted) = (peer.utp, peer.encrypted);
        run.peers_ever += 1;
        if peer.web.is_some() {
            return;
        }
        run.sources_ever.add(source);
        run.utp_peers_ever += u32::from(utp);
        run.failures.remove(&addr);
        tracing::info!(
            %addr,
            over = if utp { "uTP" } else { "TCP" },
            encrypted,
            from = ?source,
            "peer connected"
        );
        let _ = self.broadcast.send(TorrentEvent::PeerConnected { addr });
    }

    /// Closes a connection from our side.
    pub(super) fn drop_peer(&self, run: &mut Running, key: PeerKey, reason: DropReason) {
        // Dropping its command channel ends the connection task.
        self.forget_peer(run, key, &reason);
    }

    /// Removes a peer, gives its requests back to the picker and its
    /// availability up.
    pub(super) fn forget_peer(&self, run: &mut Running, key: PeerKey, reason: &DropReason) {
        let Some(peer) = run.peers.remove(&key) else {
            return;
        };
        peer::lock(&peer.requests).clear();
        run.picker.peer_gone(key);
        // Keys only grow, so the smallest is the oldest.
        if run.gone.len() >= MAX_GONE
            && let Some(oldest) = run.gone.keys().min().copied()
        {
            run.gone.remove(&oldest);
        }
        run.gone.insert(key, (peer.id, peer.addr, peer.outgoing));
        run.picker.remove_peer(&peer.has);
        if !peer.am_choking && peer.peer_interested {
            self.refill_slots(run);
        }
        if let Some(index) = peer.web {
            self.web_seed_gone(run, index, peer.down.total() > 0, reason);
            self.fill_all(run);
            return;
        }
        // Its addresses may be dialled again, unless another connection
        // to the same peer still stands for them.
        let taken = |addr: SocketAddr| {
            run.peers
                .values()
                .any(|p| p.addr == addr || p.listen == Some(addr))
        };
        for addr in [Some(peer.addr), peer.listen].into_iter().flatten() {
            if !taken(addr) {
                run.known.remove(&addr);
            }
        }
        if peer.outgoing && !peer.ready() {
            run.dial_failures += 1;
            // A peer the user named is worth a word at -v; the tracker's
            // many dead addresses only at -vv.
            if self.options.peers.contains(&peer.addr) {
                tracing::info!(addr = %peer.addr, %reason, "cannot connect");
            } else {
                tracing::debug!(addr = %peer.addr, %reason, "cannot connect");
            }
        }
        let now = Instant::now();
        if run.picker.is_complete() && peer.has.is_full() {
            // Neither has anything for the other, whoever hung up: its
            // addresses rest long, rather than be dialled at every tick or
            // announce.
            for addr in [Some(peer.addr), peer.listen].into_iter().flatten() {
                run.cooling.insert(addr, now + SEED_RETRY);
            }
        } else if peer.outgoing {
            let failed = !peer.ready();
            let rest = if failed && !self.options.peers.contains(&peer.addr) {
                // A dead or refusing address waits longer after each try.
                let entry = run.failures.entry(peer.addr).or_insert((0, now));
                *entry = (entry.0.saturating_add(1), now);
                RETRY_AFTER
                    .saturating_mul(1 << (entry.0 - 1).min(8))
                    .min(RETRY_MAX)
            } else {
                RETRY_AFTER
            };
            run.cooling.insert(peer.addr, now + rest);
        }
        if peer.ready() {
            tracing::info!(addr = %peer.addr, %reason, "peer dropped");
            let _ = self.broadcast.send(TorrentEvent::PeerDropped {
                addr: peer.addr,
                reason: reason.clone(),
            });
        }
        // Its blocks may now be asked of others.
        self.fill_all(run);
    }

    /// Whether a new connection needs another to go first: the torrent's
    /// table or the session's connections are full.
    fn table_full(&self, run: &Running) -> bool {
        run.peers.len() >= self.config.max_peers_per_torrent
            || self.permits.available_permits() == 0
    }

    /// Whether the host of `addr` has as many connections as one may.
    fn host_full(&self, run: &Running, addr: SocketAddr) -> bool {
        let group = host_group(addr);
        run.peers
            .values()
            .filter(|p| p.web.is_none() && host_group(p.addr) == group)
            .take(self.config.max_peers_per_ip)
            .count()
            >= self.config.max_peers_per_ip
    }

    /// Drops the peer that should give way to `newcomer` (see
    /// [`crate::turnover`]), if one may; false if none.
    fn make_room(&self, run: &mut Running, newcomer: Newcomer) -> bool {
        let now = Instant::now();
        let standings = run
            .peers
            .iter()
            .filter(|(_, p)| (p.ready() || p.outgoing) && p.web.is_none())
            .map(|(&key, p)| Standing {
                key,
                active_at: p.active_at,
                kind: if !p.ready() {
                    Kind::Dialling
                } else if p.am_interested || p.peer_interested {
                    Kind::Trading
                } else if p.said_anything {
                    Kind::Idle
                } else {
                    Kind::Mute
                },
            });
        let seeding = run.picker.is_complete();
        let grace = self.config.turnover;
        let Some(key) = turnover::give_way(now, standings, grace, newcomer, seeding) else {
            return false;
        };
        let Some((addrs, dial)) = run
            .peers
            .get(&key)
            .map(|p| ([Some(p.addr), p.listen], !p.ready()))
        else {
            return false;
        };
        let reason = if dial {
            DropReason::DialGaveWay
        } else {
            DropReason::GaveWay
        };
        self.drop_peer(run, key, reason);
        // Not dialled back soon: it was of no use.
        for addr in addrs.into_iter().flatten() {
            run.cooling.insert(addr, now + GAVE_WAY_RETRY);
        }
        true
    }

    /// At the peer limit with addresses waiting, the slowest downloader (not
    /// new, not a fresh optimistic unchoke) makes room for a new peer.
    pub(super) fn replace_slowest(&self, run: &mut Running) {
        if run.candidates.is_empty()
            || run.peers.len() < self.config.max_peers_per_torrent
            || run.picker.is_complete()
        {
            return;
        }
        let now = Instant::now();
        let slowest = run
            .peers
            .iter()
            .filter(|(_, p)| {
                p.web.is_none()
                    && now.duration_since(p.connected_at) > Duration::from_secs(REPLACE_EVERY)
            })
            .min_by(|a, b| a.1.down.per_second().total_cmp(&b.1.down.per_second()))
            .map(|(k, _)| *k);
        if let Some(key) = slowest {
            self.drop_peer(run, key, DropReason::Replaced);
        }
    }
}

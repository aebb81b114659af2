//! The torrent task: one task per torrent owns its picker, choker and peer
//! table, and is the only writer of them. Connections report [`Event`]s to it
//! over one bounded channel; it commands them over unbounded ones and never
//! waits on a connection, so a slow peer cannot stall the torrent.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use metainfo::{BLOCK_SIZE, BlockRef, InfoHash, Metainfo, PeerId};
use peerwire::extension::{ExtensionHandshake, UtMetadata};
use peerwire::{Bitfield, Handshake, Message};
use storage::{AssemblyError, BlockOutcome, Disk, DiskError, DiskThread, ResumeData};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot, watch};

use crate::announce::{Order, Progress};
use crate::choker::{Candidate, Choker};
use crate::peer::{self, Command, Event, Link, Requests, Start};
use crate::picker::{Delivered, PeerKey, Picker};
use crate::rate::Rate;
use crate::session::{SessionConfig, TorrentOptions};
use crate::stats::{MAX_PEER_TOTALS, PeerTotals, Stats, TorrentEvent, TorrentState};

mod pipeline;
use pipeline::{MAX_QUEUE, Unasked, pipeline_depth};

/// The `reqq` assumed for a peer that does not say (libtorrent's default).
const DEFAULT_REQQ: usize = 250;
/// Commands waiting for one connection's writer beyond which the peer is
/// taken not to read what we send (requests within the pipeline, serves
/// within the serve queue, and the rest, fall far below).
const MAX_QUEUED_COMMANDS: usize = 4 * MAX_QUEUE + 2 * peer::MAX_SERVE_QUEUE;
/// Peers that left whose identity is kept, so that a liar found out after
/// it left (see `piece_verified`) is still banned.
const MAX_GONE: usize = 1024;
/// Seconds between choker rounds, and between resume-data saves.
const CHOKE_EVERY: u64 = 10;
const SAVE_EVERY: u64 = 60;
/// Seconds between replacing the slowest peer when better ones wait.
const REPLACE_EVERY: u64 = 60;
/// How long an address waits before it is dialled again after a failure.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Orders from a [`crate::TorrentHandle`].
#[derive(Debug)]
pub(crate) enum Control {
    Pause,
    Resume,
    Stop(oneshot::Sender<()>),
}

/// A connection someone else dialled, with its handshake read.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) stream: tokio::net::TcpStream,
    pub(crate) handshake: Handshake,
    pub(crate) addr: SocketAddr,
}

/// The host of an address, the same whether an IPv4 peer shows as
/// `a.b.c.d` or, on a dual-stack socket, as `::ffff:a.b.c.d`.
fn host(addr: SocketAddr) -> IpAddr {
    addr.ip().to_canonical()
}

struct Peer {
    addr: SocketAddr,
    /// Whether we dialled (and may dial again).
    outgoing: bool,
    /// Where a peer that dialled us listens, if its extension handshake
    /// said (`p`) or our own dial reached it again on this IP: an address
    /// we need not dial while this connection lasts.
    listen: Option<SocketAddr>,
    id: Option<PeerId>,
    commands: mpsc::UnboundedSender<Command>,
    /// Commands sent and not yet carried out by the writer.
    queued: Arc<AtomicUsize>,
    requests: Requests,
    has: Bitfield,
    /// Whether it sent a bitfield, have-all or have-none yet (only the first
    /// message may).
    said_pieces: bool,
    fast: bool,
    extended: bool,
    /// The id the peer wants `ut_metadata` messages sent with, if any.
    ut_metadata: Option<u8>,
    reqq: usize,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    down: Rate,
    up: Rate,
    /// Since when we wait for a block with requests out; `None` when none
    /// are out.
    waiting_since: Option<Instant>,
    snubbed: bool,
    unasked: Unasked,
    connected_at: Instant,
    _permit: OwnedSemaphorePermit,
}

impl Peer {
    fn ready(&self) -> bool {
        self.id.is_some()
    }

    /// Requests to keep in flight: one while snubbed, else as
    /// `pipeline_depth` says from its rate and `reqq`.
    fn queue_depth(&self) -> usize {
        if self.snubbed {
            return 1;
        }
        pipeline_depth(&self.down, self.reqq)
    }

    fn send(&self, message: Message) {
        self.command(Command::Send(message));
    }

    /// Queues a command; the writer counts it off when done.
    fn command(&self, command: Command) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        let _ = self.commands.send(command);
    }

    /// Whether the peer has stopped reading what we send: more commands wait
    /// for its connection than the protocol lets pile up.
    fn not_reading(&self) -> bool {
        self.queued.load(Ordering::Relaxed) > MAX_QUEUED_COMMANDS
    }
}

/// The session's rate limits, shared by its torrents' connections.
#[derive(Clone, Debug, Default)]
pub(crate) struct Limits {
    pub(crate) download: Option<Arc<crate::limit::Limiter>>,
    pub(crate) upload: Option<Arc<crate::limit::Limiter>>,
}

pub(crate) struct Torrent {
    pub(crate) info_hash: InfoHash,
    pub(crate) limits: Limits,
    pub(crate) metainfo: Arc<Metainfo>,
    pub(crate) config: Arc<SessionConfig>,
    pub(crate) options: TorrentOptions,
    pub(crate) port: u16,
    pub(crate) disk: Disk,
    pub(crate) disk_thread: Option<DiskThread>,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) events_tx: mpsc::Sender<Event>,
    pub(crate) events_rx: mpsc::Receiver<Event>,
    pub(crate) control: mpsc::Receiver<Control>,
    pub(crate) incoming: mpsc::Receiver<Incoming>,
    pub(crate) stats: watch::Sender<Stats>,
    pub(crate) broadcast: broadcast::Sender<TorrentEvent>,
    pub(crate) progress: watch::Sender<Progress>,
    pub(crate) announcer: Option<mpsc::Sender<Order>>,
}

/// The torrent's running state, once its data is checked.
struct Running {
    picker: Picker,
    choker: Choker,
    peers: HashMap<PeerKey, Peer>,
    next_key: PeerKey,
    candidates: VecDeque<SocketAddr>,
    /// Addresses connected, being dialled or queued.
    known: HashSet<SocketAddr>,
    /// Addresses that failed or left, and when they may be dialled again.
    cooling: HashMap<SocketAddr, Instant>,
    /// Peers banned for bad data, by id and IP together: an id alone is
    /// only a claim, which a liar could make in another peer's name.
    banned_ids: HashSet<(PeerId, IpAddr)>,
    banned_addrs: HashSet<SocketAddr>,
    down: Rate,
    up: Rate,
    wasted: u64,
    hash_failures: u32,
    paused: bool,
    error: Option<String>,
    ticks: u64,
    /// Whether pieces were verified since resume data was last saved.
    dirty: bool,
    /// Announces made (answered or not), peers that completed a handshake,
    /// and dials that ended before one: for telling a user that nobody
    /// can be found.
    announces: u32,
    peers_ever: u32,
    dial_failures: u32,
    tracker_error: Option<String>,
    /// Who the peers that left were (see [`MAX_GONE`]).
    gone: HashMap<PeerKey, (Option<PeerId>, SocketAddr, bool)>,
    /// Payload exchanged with each peer id met (see `Stats::peer_totals`).
    totals: std::collections::BTreeMap<PeerId, PeerTotals>,
    /// The periodic resume save under way, if any.
    saving: Option<tokio::task::JoinHandle<()>>,
}

impl Torrent {
    /// Checks the data on disk, then runs until stopped.
    pub(crate) async fn run(mut self) {
        let layout = self.metainfo.layout().clone();
        let resume = self.options.resume_file.as_deref().and_then(|path| {
            ResumeData::load(
                path,
                self.info_hash,
                layout.num_pieces(),
                self.metainfo.info().files().len(),
            )
        });
        self.publish_state(TorrentState::Checking);
        let have = match self.disk.check(resume).await {
            Ok(have) => have,
            Err(e) => {
                let message = format!("cannot check the data on disk: {e}");
                let _ = self.broadcast.send(TorrentEvent::Error(message.clone()));
                self.publish_state(TorrentState::Error(message));
                self.finish(None).await;
                return;
            }
        };
        let max_partial =
            (self.options.memory_limit / layout.piece_length().max(1) as usize).max(2);
        let mut picker = Picker::new(layout, &have, max_partial);
        if let Some(wanted) = &self.options.wanted_files {
            picker.want_files(wanted);
        }
        let mut run = Running {
            picker,
            choker: Choker::new(self.config.upload_slots),
            peers: HashMap::new(),
            next_key: 0,
            candidates: VecDeque::new(),
            known: HashSet::new(),
            cooling: HashMap::new(),
            banned_ids: HashSet::new(),
            banned_addrs: HashSet::new(),
            down: Rate::default(),
            up: Rate::default(),
            wasted: 0,
            hash_failures: 0,
            paused: false,
            error: None,
            ticks: 0,
            dirty: false,
            saving: None,
            announces: 0,
            peers_ever: 0,
            dial_failures: 0,
            tracker_error: None,
            gone: HashMap::new(),
            totals: std::collections::BTreeMap::new(),
        };
        if run.picker.is_complete() {
            let _ = self.broadcast.send(TorrentEvent::Finished);
        }
        self.update_progress(&run);
        self.start_announcer();
        for addr in self.options.peers.clone() {
            self.add_candidate(&mut run, addr);
        }
        self.publish(&run);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(event) = self.events_rx.recv() => self.on_event(&mut run, event),
                Some(incoming) = self.incoming.recv() => self.on_incoming(&mut run, incoming),
                control = self.control.recv() => match control {
                    Some(Control::Pause) => self.pause(&mut run),
                    Some(Control::Resume) => {
                        run.paused = false;
                        // Peers we left when pausing are dialled at once.
                        run.cooling.clear();
                        for addr in self.options.peers.clone() {
                            self.add_candidate(&mut run, addr);
                        }
                        self.publish(&run);
                    }
                    Some(Control::Stop(done)) => {
                        self.finish(Some(&mut run)).await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.finish(Some(&mut run)).await;
                        return;
                    }
                },
                _ = tick.tick() => self.on_tick(&mut run),
            }
        }
    }

    fn start_announcer(&mut self) {
        let tiers = self.metainfo.trackers();
        if tiers.is_empty() {
            return;
        }
        let (orders, rx) = mpsc::channel(4);
        let announcer = crate::announce::Announcer {
            tiers: tracker::TrackerTiers::new(tiers),
            client: self.config.tracker_client.clone(),
            info_hash: self.info_hash,
            peer_id: self.config.peer_id,
            port: self.port,
            compact: self.options.compact,
            key: rand::random(),
            numwant: 50,
            progress: self.progress.subscribe(),
            peers: self.events_tx.clone(),
            events: self.broadcast.clone(),
        };
        tokio::spawn(announcer.run(rx));
        self.announcer = Some(orders);
    }

    /// Graceful end: connections closed, `stopped` announced, resume data
    /// saved, the disk thread joined.
    async fn finish(mut self, run: Option<&mut Running>) {
        if let Some(run) = run {
            self.publish(run);
            // Dropping their command channels ends the connections.
            run.peers.clear();
            // A periodic save must not land after (and over) the last one.
            if let Some(saving) = run.saving.take() {
                let _ = saving.await;
            }
            self.save_resume(run).await;
            self.update_progress(run);
        }
        if let Some(orders) = self.announcer.take() {
            let (done, wait) = oneshot::channel();
            if orders.send(Order::Stop(done)).await.is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(6), wait).await;
            }
        }
        let mut stats = self.stats.borrow().clone();
        if !matches!(stats.state, TorrentState::Error(_)) {
            stats.state = TorrentState::Stopped;
        }
        stats.peers = 0;
        stats.seeds = 0;
        stats.download_rate = 0.0;
        stats.upload_rate = 0.0;
        // The disk thread ends once every `Disk` handle is gone: ours here,
        // the connections' as they end (their events now go nowhere, so
        // none waits on a full channel). It is joined off the runtime.
        let Torrent {
            disk,
            disk_thread,
            events_tx,
            events_rx,
            stats: stats_tx,
            ..
        } = self;
        drop((disk, events_tx, events_rx));
        if let Some(thread) = disk_thread {
            let join = tokio::task::spawn_blocking(move || thread.join());
            let _ = tokio::time::timeout(Duration::from_secs(30), join).await;
        }
        let _ = stats_tx.send(stats);
    }

    async fn save_resume(&self, run: &mut Running) {
        let Some(path) = &self.options.resume_file else {
            return;
        };
        match self.disk.resume_data(run.picker.have_vec()).await {
            Ok(data) => {
                let path = path.clone();
                let saved = tokio::task::spawn_blocking(move || data.save(&path)).await;
                match saved {
                    Ok(Ok(())) => run.dirty = false,
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot save resume data"),
                    Err(e) => tracing::warn!(error = %e, "cannot save resume data"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot save resume data"),
        }
    }

    fn pause(&mut self, run: &mut Running) {
        run.paused = true;
        let keys: Vec<PeerKey> = run.peers.keys().copied().collect();
        for key in keys {
            self.drop_peer(run, key, "paused");
        }
        for addr in run.candidates.drain(..) {
            run.known.remove(&addr);
        }
        self.publish(run);
    }

    fn add_candidate(&self, run: &mut Running, addr: SocketAddr) {
        let ours =
            addr.port() == self.port && (addr.ip().is_loopback() || addr.ip().is_unspecified());
        if ours
            || run.known.contains(&addr)
            || run.banned_addrs.contains(&addr)
            || run.cooling.get(&addr).is_some_and(|t| *t > Instant::now())
        {
            return;
        }
        run.known.insert(addr);
        run.candidates.push_back(addr);
    }

    /// Dials candidates while there is room.
    fn connect_more(&self, run: &mut Running) {
        if run.paused || run.error.is_some() {
            return;
        }
        while run.peers.len() < self.config.max_peers_per_torrent {
            let Some(addr) = run.candidates.pop_front() else {
                break;
            };
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                run.candidates.push_front(addr);
                break;
            };
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

    fn spawn_peer(
        &self,
        run: &mut Running,
        addr: SocketAddr,
        outgoing: bool,
        permit: OwnedSemaphorePermit,
        start: Start,
    ) {
        let key = run.next_key;
        run.next_key += 1;
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let requests = Requests::default();
        let num_pieces = run.picker.layout().num_pieces();
        run.peers.insert(
            key,
            Peer {
                addr,
                outgoing,
                id: None,
                commands,
                queued: queued.clone(),
                requests: requests.clone(),
                has: Bitfield::new(num_pieces),
                said_pieces: false,
                fast: false,
                extended: false,
                ut_metadata: None,
                reqq: DEFAULT_REQQ,
                am_choking: true,
                am_interested: false,
                peer_choking: true,
                peer_interested: false,
                down: Rate::default(),
                up: Rate::default(),
                waiting_since: None,
                snubbed: false,
                unasked: Unasked::default(),
                connected_at: Instant::now(),
                listen: None,
                _permit: permit,
            },
        );
        let link = Link {
            key,
            info_hash: self.info_hash,
            our_id: self.config.peer_id,
            num_pieces,
            disk: self.disk.clone(),
            events: self.events_tx.clone(),
            commands: commands_rx,
            queued,
            requests,
            faults: self.options.faults.clone(),
            handshake_timeout: self.config.handshake_timeout,
            idle_timeout: self.config.idle_timeout,
            limits: self.limits.clone(),
        };
        tokio::spawn(peer::run(link, start));
    }

    fn on_incoming(&self, run: &mut Running, incoming: Incoming) {
        if run.paused || run.error.is_some() || run.peers.len() >= self.config.max_peers_per_torrent
        {
            return;
        }
        if run
            .banned_ids
            .contains(&(incoming.handshake.peer_id, host(incoming.addr)))
        {
            return;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return;
        };
        let start = Start::Accepted {
            stream: incoming.stream,
            handshake: incoming.handshake,
        };
        self.spawn_peer(run, incoming.addr, false, permit, start);
    }

    fn on_event(&self, run: &mut Running, event: Event) {
        match event {
            Event::Ready { key, handshake } => self.on_ready(run, key, handshake),
            Event::Message { key, message } => {
                if let Err(reason) = self.on_message(run, key, message) {
                    self.drop_peer(run, key, &reason);
                } else if run.peers.get(&key).is_some_and(Peer::not_reading) {
                    self.drop_peer(run, key, "does not read what we send");
                }
            }
            Event::Blocks { key, blocks } => {
                for (block, outcome) in blocks {
                    self.on_block(run, key, block, outcome);
                }
            }
            Event::Unrequested { key, bytes } => {
                run.wasted += bytes;
                if let Some(peer) = run.peers.get_mut(&key)
                    && peer.unasked.arrived()
                {
                    self.drop_peer(run, key, "too many blocks we did not ask for");
                }
            }
            Event::Uploaded { key, bytes } => {
                run.up.add(bytes);
                if let Some(peer) = run.peers.get_mut(&key) {
                    peer.up.add(bytes);
                    if let Some(id) = peer.id {
                        count(&mut run.totals, id, 0, bytes);
                    }
                }
            }
            Event::Closed { key, reason } => self.forget_peer(run, key, &reason),
            Event::AnnounceFailed(error) => {
                run.announces += 1;
                run.tracker_error = Some(error);
            }
            Event::Discovered(addrs) => {
                run.announces += 1;
                run.tracker_error = None;
                if !run.paused {
                    for addr in addrs {
                        self.add_candidate(run, addr);
                    }
                    self.connect_more(run);
                }
            }
        }
    }

    fn on_ready(&self, run: &mut Running, key: PeerKey, handshake: Handshake) {
        let id = handshake.peer_id;
        let host_of_key = run.peers.get(&key).map(|p| host(p.addr));
        let reason = if id == self.config.peer_id {
            Some("that is us")
        } else if host_of_key.is_some_and(|ip| run.banned_ids.contains(&(id, ip))) {
            Some("banned")
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
                self.drop_peer(run, other, "connected twice; keeping the other connection");
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
                Some("already connected to this peer")
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
            let mut ours = ExtensionHandshake {
                v: Some(concat!("btc ", env!("CARGO_PKG_VERSION")).to_string()),
                reqq: Some(peer::MAX_SERVE_QUEUE as u32),
                p: Some(self.port),
                yourip: None,
                // We serve the info dictionary to magnet downloaders.
                metadata_size: u32::try_from(self.metainfo.raw_info().len()).ok(),
                ..ExtensionHandshake::default()
            };
            ours.m
                .insert("ut_metadata".into(), crate::metadata::UT_METADATA_ID);
            peer.send(Message::Extended {
                id: 0,
                payload: ours.encode(),
            });
        }
        let addr = peer.addr;
        run.peers_ever += 1;
        tracing::debug!(%addr, "peer connected");
        let _ = self.broadcast.send(TorrentEvent::PeerConnected { addr });
    }

    fn on_message(&self, run: &mut Running, key: PeerKey, message: Message) -> Result<(), String> {
        let num_pieces = run.picker.layout().num_pieces();
        let Some(peer) = run.peers.get_mut(&key) else {
            return Ok(());
        };
        let first = !peer.said_pieces;
        tracing::trace!(addr = %peer.addr, ?message, "received");
        match message {
            Message::KeepAlive | Message::Piece { .. } | Message::Port(_) | Message::Suggest(_) => {
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
                let unchoked = run.peers.values().filter(|p| !p.am_choking).count();
                if unchoked < self.config.upload_slots {
                    self.set_choke(run, key, false);
                }
            }
            Message::NotInterested => peer.peer_interested = false,
            Message::Have(piece) => {
                if piece >= num_pieces {
                    return Err(format!("have for piece {piece} of {num_pieces}"));
                }
                peer.said_pieces = true;
                if !peer.has.get(piece) {
                    peer.has.set(piece);
                    run.picker.add_have(piece);
                    self.after_pieces_changed(run, key);
                }
            }
            Message::Bitfield(bytes) => {
                let mut has =
                    Bitfield::from_bytes(&bytes, num_pieces).map_err(|e| e.to_string())?;
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
                    return Err("have-all without the fast extension".into());
                }
                self.set_pieces(run, key, Bitfield::full(num_pieces));
            }
            Message::HaveNone => {
                if !peer.fast {
                    return Err("have-none without the fast extension".into());
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
                    return Err("reject without the fast extension".into());
                }
                if peer::lock(&peer.requests).remove(&block) {
                    run.picker.withdrawn(key, block);
                    self.fill_all(run);
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
                            run.known.insert(listen);
                            run.candidates.retain(|a| *a != listen);
                        }
                    }
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

    fn set_pieces(&self, run: &mut Running, key: PeerKey, has: Bitfield) {
        let Some(peer) = run.peers.get_mut(&key) else {
            return;
        };
        peer.said_pieces = true;
        run.picker.remove_peer(&peer.has);
        run.picker.add_peer(&has);
        peer.has = has;
        self.after_pieces_changed(run, key);
    }

    /// A peer's pieces changed: both seeds means nothing to trade; else our
    /// interest, then requests.
    fn after_pieces_changed(&self, run: &mut Running, key: PeerKey) {
        let Some(peer) = run.peers.get(&key) else {
            return;
        };
        if run.picker.is_complete() && peer.has.is_full() {
            self.drop_peer(run, key, "both are seeds");
            return;
        }
        self.update_interest(run, key);
        self.fill(run, key);
    }

    fn update_interest(&self, run: &mut Running, key: PeerKey) {
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

    fn on_request(&self, run: &mut Running, key: PeerKey, block: BlockRef) -> Result<(), String> {
        let layout = run.picker.layout();
        if layout
            .check_range(block.piece, block.offset, block.length)
            .is_none()
        {
            return Err(format!(
                "request outside the torrent: piece {} offset {} length {}",
                block.piece, block.offset, block.length
            ));
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
        Ok(())
    }

    /// Asks `key` for more blocks, up to its queue depth.
    fn fill(&self, run: &mut Running, key: PeerKey) {
        if run.paused || run.error.is_some() {
            return;
        }
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
        let picked = run.picker.pick(key, &peer.has, room);
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

    fn on_block(
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
                self.drop_peer(run, key, &format!("bad block: {e}"));
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
            peer.snubbed = false;
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
    fn piece_verified(&self, run: &mut Running, piece: u32) {
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
                tracing::debug!(
                    id = %totals.id,
                    received = totals.downloaded,
                    sent = totals.uploaded,
                    "peer's share"
                );
            }
            // The state says so before the event does: a listener woken by
            // `Finished` reads `Seeding`.
            self.publish(run);
            let _ = self.broadcast.send(TorrentEvent::Finished);
            if let Some(orders) = &self.announcer {
                let _ = orders.try_send(Order::Completed);
            }
            // Seeds have nothing to give each other.
            let seeds: Vec<PeerKey> = run
                .peers
                .iter()
                .filter(|(_, p)| p.has.is_full())
                .map(|(k, _)| *k)
                .collect();
            for key in seeds {
                self.drop_peer(run, key, "both are seeds");
            }
            self.publish(run);
        }
    }

    /// Piece `piece` failed its hash check; `senders` are the peers whose
    /// blocks were hashed, as the disk saw them (a late copy from an earlier
    /// round counts against whoever sent it, not whoever was asked since).
    fn piece_failed(&self, run: &mut Running, piece: u32, senders: Vec<PeerKey>) {
        run.picker.failed(piece);
        let contributors = senders;
        // Copies still asked for (endgame) would bring back data from the
        // failed round: cancel them, so that the next round's blocks all
        // come from the peers it asks.
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
        run.hash_failures += 1;
        run.wasted += u64::from(run.picker.layout().piece_len(piece).unwrap_or(0));
        let mut distinct: Vec<PeerKey> = contributors.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let addrs = distinct
            .iter()
            .filter_map(|k| run.peers.get(k).map(|p| p.addr))
            .collect();
        tracing::info!(piece, peers = ?addrs, "piece failed its hash check");
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

    /// Bans the peer behind connection `key` (live, or gone): its id and,
    /// if we dialled it, its address. Every live connection with that id
    /// is dropped, so a liar that reconnected meanwhile goes too.
    fn ban(&self, run: &mut Running, key: PeerKey) {
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
        if new {
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
        for key in same {
            self.drop_peer(run, key, "banned: sent bad data");
        }
    }

    /// Stops the torrent on an error it cannot go on from.
    fn fail(&self, run: &mut Running, message: String) {
        if run.error.is_some() {
            return;
        }
        tracing::error!(%message, "torrent stopped");
        run.error = Some(message.clone());
        let _ = self.broadcast.send(TorrentEvent::Error(message));
        let keys: Vec<PeerKey> = run.peers.keys().copied().collect();
        for key in keys {
            self.drop_peer(run, key, "the torrent stopped on an error");
        }
        self.publish(run);
    }

    fn set_choke(&self, run: &mut Running, key: PeerKey, choke: bool) {
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
            peer.command(Command::Choke { reject: peer.fast });
        } else {
            peer.send(Message::Unchoke);
        }
    }

    /// Closes a connection from our side.
    fn drop_peer(&self, run: &mut Running, key: PeerKey, reason: &str) {
        // Dropping its command channel ends the connection task.
        self.forget_peer(run, key, reason);
    }

    /// Removes a peer, gives its requests back to the picker and its
    /// availability up.
    fn forget_peer(&self, run: &mut Running, key: PeerKey, reason: &str) {
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
        }
        if peer.outgoing {
            run.cooling.insert(peer.addr, Instant::now() + RETRY_AFTER);
        }
        if peer.ready() {
            tracing::debug!(addr = %peer.addr, %reason, "peer dropped");
            let _ = self.broadcast.send(TorrentEvent::PeerDropped {
                addr: peer.addr,
                reason: reason.to_string(),
            });
        }
        // Its blocks may now be asked of others.
        self.fill_all(run);
    }

    /// Tops up every peer's requests (after blocks were given back).
    fn fill_all(&self, run: &mut Running) {
        let keys: Vec<PeerKey> = run.peers.keys().copied().collect();
        for key in keys {
            self.fill(run, key);
        }
    }

    fn on_tick(&mut self, run: &mut Running) {
        run.ticks += 1;
        run.down.tick();
        run.up.tick();
        let now = Instant::now();
        // Under a download limit, blocks are held back on purpose: waiting
        // for one is not a sign of a bad peer.
        let snub_timeout = if self.limits.download.is_some() {
            self.config.snub_timeout.max(Duration::from_secs(120))
        } else {
            self.config.snub_timeout
        };
        let mut snubbed = Vec::new();
        for (key, peer) in run.peers.iter_mut() {
            peer.down.tick();
            peer.up.tick();
            peer.unasked.tick();
            if let Some(since) = peer.waiting_since
                && now.duration_since(since) > snub_timeout
                && !peer.snubbed
            {
                snubbed.push(*key);
            }
        }
        for key in snubbed {
            self.snub(run, key);
        }
        if run.ticks.is_multiple_of(CHOKE_EVERY) {
            self.choke_round(run);
        }
        if run.ticks.is_multiple_of(REPLACE_EVERY) {
            self.replace_slowest(run);
        }
        // Direct peers are dialled again after they leave.
        run.cooling.retain(|_, until| *until > now);
        if !run.paused {
            for addr in self.options.peers.clone() {
                self.add_candidate(run, addr);
            }
        }
        self.connect_more(run);
        // Anyone idle with room gets work (a piece slot may have freed).
        self.fill_all(run);
        if run.ticks.is_multiple_of(SAVE_EVERY) && run.dirty {
            // Saved from its own task so the torrent task never waits on the
            // disk; the next save covers anything newer.
            if let Some(path) = self.options.resume_file.clone() {
                let disk = self.disk.clone();
                let have = run.picker.have_vec();
                run.dirty = false;
                run.saving = Some(tokio::spawn(async move {
                    match disk.resume_data(have).await {
                        Ok(data) => {
                            let saved = tokio::task::spawn_blocking(move || data.save(&path)).await;
                            if let Ok(Err(e)) = saved {
                                tracing::warn!(error = %e, "cannot save resume data");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot save resume data"),
                    }
                }));
            }
        }
        self.update_progress(run);
        self.publish(run);
    }

    /// A peer that sent nothing for a while after being asked: its requests
    /// go to others, and it gets one at a time until it sends again.
    fn snub(&self, run: &mut Running, key: PeerKey) {
        let Some(peer) = run.peers.get_mut(&key) else {
            return;
        };
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

    fn choke_round(&self, run: &mut Running) {
        let seeding = run.picker.is_complete();
        let candidates: Vec<Candidate> = run
            .peers
            .iter()
            .filter(|(_, p)| p.ready())
            .map(|(key, p)| Candidate {
                key: *key,
                interested: p.peer_interested,
                rate: if seeding {
                    p.up.per_second()
                } else {
                    p.down.per_second()
                },
                snubbed: p.snubbed,
            })
            .collect();
        let unchoke = run.choker.round(&candidates);
        let keys: Vec<PeerKey> = run.peers.keys().copied().collect();
        for key in keys {
            self.set_choke(run, key, !unchoke.contains(&key));
        }
    }

    /// At the peer limit with addresses waiting, the slowest downloader (not
    /// new, not a fresh optimistic unchoke) makes room for a new peer.
    fn replace_slowest(&self, run: &mut Running) {
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
                now.duration_since(p.connected_at) > Duration::from_secs(REPLACE_EVERY)
            })
            .min_by(|a, b| a.1.down.per_second().total_cmp(&b.1.down.per_second()))
            .map(|(k, _)| *k);
        if let Some(key) = slowest {
            self.drop_peer(run, key, "replaced by a faster peer");
        }
    }

    fn update_progress(&self, run: &Running) {
        let _ = self.progress.send(Progress {
            uploaded: run.up.total(),
            downloaded: run.down.total(),
            left: run.picker.bytes_left(),
        });
    }

    fn publish_state(&self, state: TorrentState) {
        self.stats.send_modify(|s| s.state = state);
    }

    fn publish(&self, run: &Running) {
        let state = if let Some(e) = &run.error {
            TorrentState::Error(e.clone())
        } else if run.paused {
            TorrentState::Paused
        } else if run.picker.is_complete() {
            TorrentState::Seeding
        } else {
            TorrentState::Downloading
        };
        let layout = run.picker.layout();
        let left = run.picker.bytes_left();
        let stats = Stats {
            state,
            pieces_have: run.picker.have_count(),
            pieces_total: layout.num_pieces(),
            bytes_left: left,
            bytes_total: run.picker.bytes_wanted(),
            downloaded: run.down.total(),
            uploaded: run.up.total(),
            wasted: run.wasted,
            download_rate: run.down.per_second(),
            upload_rate: run.up.per_second(),
            peers: run.peers.values().filter(|p| p.ready()).count(),
            seeds: run
                .peers
                .values()
                .filter(|p| p.ready() && p.has.is_full())
                .count(),
            candidates: run.candidates.len(),
            hash_failures: run.hash_failures,
            banned: run.banned_ids.len(),
            eta: if left == 0 { None } else { run.down.eta(left) },
            peer_totals: run.totals.values().copied().collect(),
            announces: run.announces,
            connections: run.peers.len(),
            peers_ever: run.peers_ever,
            dial_failures: run.dial_failures,
            tracker_error: run.tracker_error.clone(),
        };
        self.stats.send_if_modified(|old| {
            if *old == stats {
                false
            } else {
                *old = stats;
                true
            }
        });
    }
}

/// Adds to the totals of peer `id`, within [`MAX_PEER_TOTALS`] peers.
fn count(
    totals: &mut std::collections::BTreeMap<PeerId, PeerTotals>,
    id: PeerId,
    downloaded: u64,
    uploaded: u64,
) {
    if totals.len() >= MAX_PEER_TOTALS && !totals.contains_key(&id) {
        return;
    }
    let entry = totals.entry(id).or_insert(PeerTotals {
        id,
        downloaded: 0,
        uploaded: 0,
    });
    entry.downloaded += downloaded;
    entry.uploaded += uploaded;
}

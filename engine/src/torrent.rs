//! The torrent task: one task per torrent owns its picker, choker and peer
//! table, and is the only writer of them. Connections report [`Event`]s to it
//! over one bounded channel; it commands them over unbounded ones and never
//! waits on a connection, so a slow peer cannot stall the torrent.
//!
//! This file holds the task's state and its loop (ticks, choking rounds,
//! resume saves, the published stats); the handlers sit in submodules by
//! what they handle: `connections`, `messages`, `requests`, and
//! `pipeline` for the depth of a peer's request queue.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use metainfo::{InfoHash, Metainfo, PeerId};
use peerwire::{Bitfield, Handshake, Message};
use storage::{Disk, DiskThread, ResumeData};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot, watch};

use crate::DropReason;
use crate::announce::{Order, Progress, TierStatus};
use crate::choker::{Candidate, Choker, Mode};
use crate::peer::{self, Command, Event, Requests};
use crate::picker::{PeerKey, Picker};
use crate::rate::Rate;
use crate::session::{SessionConfig, TorrentOptions};
use crate::stats::{
    MAX_PEER_TOTALS, PeerSource, PeerSources, PeerTotals, Stats, TorrentEvent, TorrentState,
};
use crate::webseed::{WebClient, WebSeed};

mod connections;
mod messages;
mod pex;
pub(crate) use pex::UT_PEX_ID;
mod pipeline;
mod requests;
use pipeline::{MAX_QUEUE, Unasked, pipeline_depth, web_seed_depth};

/// The `reqq` assumed for a peer that does not say (libtorrent's default).
const DEFAULT_REQQ: usize = 250;
/// Commands waiting for one connection's writer beyond which the peer is
/// taken not to read what we send (requests within the pipeline, serves
/// within the serve queue, and the rest, fall far below).
const MAX_QUEUED_COMMANDS: usize = 4 * MAX_QUEUE + 2 * peer::MAX_SERVE_QUEUE;
/// Peers that left whose identity is kept, so that a liar found out after
/// it left (see `piece_verified`) is still banned.
const MAX_GONE: usize = 1024;
/// Seconds between resume-data saves.
const SAVE_EVERY: u64 = 60;
/// Seconds between replacing the slowest peer when better ones wait.
const REPLACE_EVERY: u64 = 60;
/// Requests an unchoked peer may reject (BEP 6) without sending a block
/// in between before it is dropped: one that rejects everything would
/// otherwise be asked again and again, at about its pipeline depth a
/// second.
const MAX_REJECTS: u32 = 128;
/// How long an address waits before it is dialled again after a failure;
/// doubled for each failure in a row (but for the peers the user named),
/// up to [`RETRY_MAX`].
const RETRY_AFTER: Duration = Duration::from_secs(10);
const RETRY_MAX: Duration = Duration::from_secs(30 * 60);
/// Why a seed is dropped by a seed, and how long its address then rests
/// (whichever side hung up): two seeds have nothing to trade for as long
/// as both stay seeds.
const SEED_RETRY: Duration = Duration::from_secs(30 * 60);

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
    pub(crate) wire: Box<crate::wire::Wire>,
    pub(crate) handshake: Handshake,
    pub(crate) addr: SocketAddr,
}

/// The host of an address, the same whether an IPv4 peer shows as
/// `a.b.c.d` or, on a dual-stack socket, as `::ffff:a.b.c.d`.
fn host(addr: SocketAddr) -> IpAddr {
    addr.ip().to_canonical()
}

/// The addresses one machine can be taken to hold, for the limit on
/// connections per host: an IPv4 address (each of 127.0.0.0/8 its own), or
/// an IPv6 /64, which a single host is commonly given whole.
fn host_group(addr: SocketAddr) -> IpAddr {
    match host(addr) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

struct Peer {
    addr: SocketAddr,
    /// Whether its payload is ciphered (MSE with RC4).
    encrypted: bool,
    /// Whether it runs over uTP.
    utp: bool,
    /// Whether we dialled (and may dial again).
    outgoing: bool,
    /// Where its address came from.
    source: PeerSource,
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
    /// Whether it sent anything but keep-alives since its handshake.
    said_anything: bool,
    fast: bool,
    extended: bool,
    /// The id the peer wants `ut_metadata` messages sent with, if any.
    ut_metadata: Option<u8>,
    /// The id the peer wants `ut_pex` messages sent with, if any.
    ut_pex: Option<u8>,
    /// The peers our `ut_pex` messages told it of, and not dropped since.
    pex_sent: HashSet<SocketAddr>,
    /// When its last `ut_pex` came.
    pex_heard_at: Option<Instant>,
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
    /// Requests it rejected while unchoking us since its last block.
    rejects: u32,
    unasked: Unasked,
    connected_at: Instant,
    /// The later of `connected_at` and the last block either way: how
    /// long it has been of no use (see `crate::turnover`).
    active_at: Instant,
    /// Since when we unchoke it, and when it last asked for a block: a
    /// leecher a seed serves that asks for nothing is dropped
    /// (`Torrent::drop_idle_unchoked`).
    unchoked_at: Option<Instant>,
    asked_at: Option<Instant>,
    /// For a web seed, its index in `Running::web_seeds`.
    web: Option<usize>,
    /// For a web seed, the last piece asked of it: the next ones follow it,
    /// so that one HTTP request fetches several.
    last_piece: Option<u32>,
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
        if self.web.is_some() {
            return web_seed_depth(&self.down);
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
    /// Whether the accept task hands us peers: only while the loop runs.
    pub(crate) accepting: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) stats: watch::Sender<Stats>,
    pub(crate) broadcast: broadcast::Sender<TorrentEvent>,
    pub(crate) progress: watch::Sender<Progress>,
    /// Orders for each tier's announcer (and the DHT's).
    pub(crate) announcers: Vec<mpsc::Sender<Order>>,
    /// The announcers a pause stopped, still saying `stopped`: announcers
    /// started again wait for them, so a tracker never hears `stopped`
    /// after the next `started`.
    pub(crate) stopping: Option<tokio::task::JoinHandle<()>>,
    /// What each address took when dialled (MSE or plaintext), shared by
    /// the session's torrents.
    pub(crate) dialled: Arc<crate::wire::Dialer>,
    /// The session's DHT node, unless the torrent is private or the
    /// session has none.
    pub(crate) dht: Option<crate::discovery::Nodes>,
}

/// The torrent's running state, once its data is checked.
struct Running {
    picker: Picker,
    choker: Choker,
    peers: HashMap<PeerKey, Peer>,
    next_key: PeerKey,
    candidates: VecDeque<SocketAddr>,
    /// When peers are next told whom we are connected to (`ut_pex`).
    next_pex: Instant,
    /// Addresses connected, being dialled or queued, and where each came
    /// from.
    known: HashMap<SocketAddr, PeerSource>,
    /// Addresses that failed or left, and when they may be dialled again.
    cooling: HashMap<SocketAddr, Instant>,
    /// Dials or handshakes that failed in a row, per address, with the
    /// last one's time (forgotten after [`RETRY_MAX`] without one).
    failures: HashMap<SocketAddr, (u32, Instant)>,
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
    /// Whether the complete download's empty files are made (see
    /// `Torrent::await_files`); it reads as seeding only then.
    files_made: bool,
    /// Whether trackers are to hear `completed` once the files are made.
    announce_completed: bool,
    /// Announce rounds and errors of each tier, peers that completed a
    /// handshake, and dials that ended before one: for telling a user
    /// that nobody can be found.
    tiers: TierStatus,
    peers_ever: u32,
    /// Of those, the ones over uTP.
    utp_peers_ever: u32,
    /// Peers ever connected, by where their address came from.
    sources_ever: PeerSources,
    dial_failures: u32,
    /// Who the peers that left were (see [`MAX_GONE`]).
    gone: HashMap<PeerKey, (Option<PeerId>, SocketAddr, bool)>,
    /// Payload exchanged with each peer id met (see `Stats::peer_totals`).
    totals: std::collections::BTreeMap<PeerId, PeerTotals>,
    /// The periodic resume save under way, if any.
    saving: Option<tokio::task::JoinHandle<()>>,
    /// The torrent's web seeds (BEP 19), and the client they share.
    web_seeds: Vec<WebSeedSlot>,
    web_client: Option<WebClient>,
}

/// A web seed, running or waiting to be tried again.
struct WebSeedSlot {
    seed: Arc<WebSeed>,
    /// Its connection, while one runs.
    key: Option<PeerKey>,
    /// Its latest connection, running or not: a liar found out after it
    /// left is still known by it.
    last_key: Option<PeerKey>,
    /// Tries in a row that ended without a block.
    failures: u32,
    /// When it may be tried again.
    next_try: Instant,
    /// It sent data that failed a hash check: never tried again.
    banned: bool,
}

impl Torrent {
    /// Checks the data on disk, then runs until stopped.
    pub(crate) async fn run(mut self) {
        let layout = self.metainfo.layout().clone();
        let trusted = self
            .options
            .resume_file
            .as_deref()
            .filter(|_| !self.options.recheck);
        let resume = trusted.and_then(|path| {
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
            known: HashMap::new(),
            next_pex: Instant::now() + self.config.pex_interval,
            cooling: HashMap::new(),
            failures: HashMap::new(),
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
            files_made: false,
            announce_completed: false,
            saving: None,
            tiers: TierStatus::default(),
            peers_ever: 0,
            utp_peers_ever: 0,
            sources_ever: PeerSources::default(),
            dial_failures: 0,
            gone: HashMap::new(),
            totals: std::collections::BTreeMap::new(),
            web_seeds: self.web_seeds(),
            web_client: None,
        };
        if run.picker.is_complete() {
            self.await_files(&mut run, false);
        }
        self.update_progress(&run);
        self.start_announcers();
        for addr in self.options.peers.clone() {
            self.add_candidate(&mut run, addr, PeerSource::Given);
        }
        self.connect_web_seeds(&mut run);
        self.publish(&run);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.accepting.store(true, Ordering::Relaxed);
        loop {
            tokio::select! {
                Some(event) = self.events_rx.recv() => self.on_event(&mut run, event),
                Some(incoming) = self.incoming.recv() => self.on_incoming(&mut run, incoming),
                control = self.control.recv() => match control {
                    Some(Control::Pause) => self.pause(&mut run),
                    Some(Control::Resume) if run.paused => {
                        run.paused = false;
                        self.start_announcers();
                        // Peers we left when pausing are dialled at once.
                        run.cooling.clear();
                        for addr in self.options.peers.clone() {
                            self.add_candidate(&mut run, addr, PeerSource::Given);
                        }
                        for slot in &mut run.web_seeds {
                            slot.next_try = Instant::now();
                        }
                        self.connect_web_seeds(&mut run);
                        self.publish(&run);
                    }
                    Some(Control::Resume) => {}
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

    /// Starts the torrent's trackers' announcers and its DHT lookups (once
    /// the announcers a pause stopped have said `stopped`).
    fn start_announcers(&mut self) {
        let mut tasks: Vec<futures::future::BoxFuture<'static, ()>> = Vec::new();
        if let Some(dht) = &self.dht {
            let (orders, rx) = mpsc::channel(4);
            let settings = self.config.dht.clone().unwrap_or_default();
            let announcer = crate::discovery::DhtAnnouncer {
                dht: dht.clone(),
                info_hash: self.info_hash,
                port: self.port,
                reannounce: settings.reannounce,
                reannounce_few: settings.reannounce_few,
                few_peers: settings.few_peers,
                progress: self.progress.subscribe(),
                peers: self.events_tx.clone(),
            };
            tasks.push(Box::pin(announcer.run(rx)));
            self.announcers.push(orders);
        }
        let key = rand::random();
        for (tier, urls) in self.metainfo.trackers().into_iter().enumerate() {
            let (orders, rx) = mpsc::channel(4);
            let announcer = crate::announce::Announcer {
                tier,
                tiers: tracker::TrackerTiers::new(vec![urls]),
                client: self.config.tracker_client.clone(),
                info_hash: self.info_hash,
                peer_id: self.config.peer_id,
                port: self.port,
                compact: self.options.compact,
                key,
                numwant: 50,
                min_interval: self
                    .config
                    .min_announce_interval
                    .max(Duration::from_secs(1)),
                progress: self.progress.subscribe(),
                peers: self.events_tx.clone(),
                events: self.broadcast.clone(),
            };
            tasks.push(Box::pin(announcer.run(rx)));
            self.announcers.push(orders);
        }
        match self.stopping.take() {
            None => {
                for task in tasks {
                    tokio::spawn(task);
                }
            }
            Some(stopping) => {
                tokio::spawn(async move {
                    let _ = stopping.await;
                    for task in tasks {
                        tokio::spawn(task);
                    }
                });
            }
        }
    }

    /// Tells every announcer to stop (trackers hear `stopped`, each within
    /// its own timeout); done when all have.
    fn stop_announcers(&mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let stops = std::mem::take(&mut self.announcers)
            .into_iter()
            .map(|orders| async move {
                let (done, wait) = oneshot::channel();
                if orders.send(Order::Stop(done)).await.is_ok() {
                    let _ = tokio::time::timeout(Duration::from_secs(6), wait).await;
                }
            });
        let earlier = self.stopping.take();
        async move {
            if let Some(earlier) = earlier {
                let _ = earlier.await;
            }
            futures::future::join_all(stops).await;
        }
    }

    /// Graceful end: connections closed, `stopped` announced, resume data
    /// saved, the disk thread joined.
    async fn finish(mut self, run: Option<&mut Running>) {
        self.accepting.store(false, Ordering::Relaxed);
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
        // Every tier hears `stopped` at once; each has its own timeout.
        self.stop_announcers().await;
        let mut stats = self.stats.borrow().clone();
        if !matches!(stats.state, TorrentState::Error(_)) {
            stats.state = TorrentState::Stopped;
        }
        stats.peers = 0;
        stats.seeds = 0;
        stats.encrypted_peers = 0;
        stats.utp_peers = 0;
        stats.web_seeds = 0;
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

    /// Closes every connection and stops announcing (trackers hear
    /// `stopped`; DHT lookups end), as Transmission and libtorrent do.
    fn pause(&mut self, run: &mut Running) {
        if run.paused {
            return;
        }
        run.paused = true;
        self.stopping = Some(tokio::spawn(self.stop_announcers()));
        let keys: Vec<PeerKey> = run.peers.keys().copied().collect();
        for key in keys {
            self.drop_peer(run, key, DropReason::Paused);
        }
        for addr in run.candidates.drain(..) {
            run.known.remove(&addr);
        }
        self.publish(run);
    }

    fn on_event(&self, run: &mut Running, event: Event) {
        match event {
            Event::Ready {
                key,
                handshake,
                encrypted,
                utp,
            } => {
                if let Some(peer) = run.peers.get_mut(&key) {
                    peer.encrypted = encrypted;
                    peer.utp = utp;
                }
                self.on_ready(run, key, handshake);
            }
            Event::Message { key, message } => {
                if let Err(reason) = self.on_message(run, key, message) {
                    self.drop_peer(run, key, reason);
                } else if run.peers.get(&key).is_some_and(Peer::not_reading) {
                    self.drop_peer(run, key, DropReason::NotReading);
                }
            }
            Event::Lacks { key, pieces } => self.peer_lacks(run, key, pieces),
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
                    self.drop_peer(run, key, DropReason::Unrequested);
                }
            }
            Event::Uploaded { key, bytes } => {
                run.up.add(bytes);
                if let Some(peer) = run.peers.get_mut(&key) {
                    peer.up.add(bytes);
                    peer.active_at = Instant::now();
                    if let Some(id) = peer.id {
                        count(&mut run.totals, id, 0, bytes);
                    }
                }
            }
            Event::Closed { key, reason } => self.forget_peer(run, key, &reason),
            // As libtorrent and Transmission do: the files are not what
            // the torrent says, so it stops until they are checked again.
            Event::ReadFailed(error) => {
                self.fail(run, format!("cannot read what peers ask for: {error}"));
            }
            Event::Discarded(pieces) => self.pieces_discarded(run, pieces),
            Event::FilesMade => self.files_made(run),
            Event::AnnounceFailed { tier, error } => {
                run.tiers.failed(tier, error);
            }
            Event::Discovered {
                source,
                tier,
                peers: addrs,
            } => {
                if let Some(tier) = tier {
                    run.tiers.answered(tier);
                }
                if !run.paused {
                    for addr in addrs {
                        self.add_candidate(run, addr, source);
                    }
                    self.connect_more(run);
                }
            }
        }
    }

    /// The download is complete: once the disk has made its empty files
    /// (which may take a while for many), it is finished
    /// ([`Torrent::files_made`]). `just_completed`: it completed in this
    /// run, so trackers are told (not at every start of a seed).
    fn await_files(&self, run: &mut Running, just_completed: bool) {
        run.announce_completed = just_completed;
        let wanted = self.options.wanted_files.as_deref();
        let any_empty = self
            .metainfo
            .info()
            .files()
            .iter()
            .enumerate()
            .any(|(i, f)| {
                f.length == 0 && !f.is_padding() && wanted.is_none_or(|w| w.get(i) == Some(&true))
            });
        if !any_empty {
            self.files_made(run);
            return;
        }
        run.files_made = false;
        let disk = self.disk.clone();
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            let Ok(pending) = disk.files_made().await else {
                return;
            };
            // No handle is held while waiting: a torrent stopped meanwhile
            // lets the disk thread end (and make the rest next time).
            drop(disk);
            if pending.await.is_ok() {
                let _ = events.send(Event::FilesMade).await;
            }
        });
    }

    /// The complete download's files are all there: it is finished.
    fn files_made(&self, run: &mut Running) {
        if !run.picker.is_complete() || run.files_made {
            return;
        }
        run.files_made = true;
        // The state says so before the event does: a listener woken by
        // `Finished` reads `Seeding`.
        self.publish(run);
        let _ = self.broadcast.send(TorrentEvent::Finished);
        // `completed` only for the whole torrent, downloaded in this run:
        // chosen files alone do not make a seed.
        if std::mem::take(&mut run.announce_completed)
            && run.picker.have_count() == run.picker.layout().num_pieces()
        {
            for orders in &self.announcers {
                let _ = orders.try_send(Order::Completed);
            }
        }
    }

    /// Stops the torrent on an error it cannot go on from.
    fn fail(&self, run: &mut Running, message: String) {
        if run.error.is_some() {
            return;
        }
        // Said at info, not error: the application hears of it through
        // `TorrentEvent::Error` and the state, and reports it in its words.
        tracing::info!(%message, "torrent stopped");
        run.error = Some(message.clone());
        let _ = self.broadcast.send(TorrentEvent::Error(message));
        let keys: Vec<PeerKey> = run.peers.keys().copied().collect();
        for key in keys {
            self.drop_peer(run, key, DropReason::TorrentFailed);
        }
        self.publish(run);
    }

    fn on_tick(&mut self, run: &mut Running) {
        run.ticks += 1;
        if Instant::now() >= run.next_pex {
            run.next_pex = Instant::now() + self.config.pex_interval;
            self.send_pex(run);
        }
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
        self.drop_idle_unchoked(run, now);
        if run
            .ticks
            .is_multiple_of(self.config.choke_interval.as_secs().max(1))
        {
            self.choke_round(run);
        }
        if run.ticks.is_multiple_of(REPLACE_EVERY) {
            self.replace_slowest(run);
        }
        // Direct peers are dialled again after they leave.
        run.cooling.retain(|_, until| *until > now);
        run.failures
            .retain(|_, (_, last)| now.duration_since(*last) < RETRY_MAX);
        if !run.paused {
            for addr in self.options.peers.clone() {
                self.add_candidate(run, addr, PeerSource::Given);
            }
        }
        self.connect_more(run);
        self.connect_web_seeds(run);
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

    /// While seeding, a peer we unchoke that asks for no block for as long
    /// as a stalled peer may stay ([`crate::turnover::Grace::stalled`]) is
    /// dropped, as libtorrent does: it holds an upload slot, and a place,
    /// that leechers who would use them wait for.
    fn drop_idle_unchoked(&self, run: &mut Running, now: Instant) {
        if !run.picker.is_complete() {
            return;
        }
        let limit = self.config.turnover.stalled;
        let idle: Vec<PeerKey> = run
            .peers
            .iter()
            .filter(|(_, p)| p.web.is_none() && !p.am_choking && p.peer_interested)
            .filter(|(_, p)| {
                let since = [p.unchoked_at, p.asked_at, Some(p.active_at)]
                    .into_iter()
                    .flatten()
                    .max();
                since.is_some_and(|t| now.saturating_duration_since(t) > limit)
            })
            .map(|(key, _)| *key)
            .collect();
        for key in idle {
            self.drop_peer(run, key, DropReason::AskedForNothing);
        }
    }

    fn choke_round(&self, run: &mut Running) {
        let (candidates, mode) = choke_candidates(run);
        let unchoke = run.choker.round(&candidates, mode);
        let keys: Vec<PeerKey> = run.peers.keys().copied().collect();
        for key in keys {
            self.set_choke(run, key, !unchoke.contains(&key));
        }
    }

    /// Gives upload slots that interested peers do not hold to peers that
    /// wait, at once: called when a peer becomes interested, loses
    /// interest or leaves.
    fn refill_slots(&self, run: &mut Running) {
        if run.paused || run.error.is_some() {
            return;
        }
        let (candidates, mode) = choke_candidates(run);
        for key in run.choker.refill(&candidates, mode) {
            self.set_choke(run, key, false);
        }
    }

    /// Gives the announcer what it reports. `send_replace`, not `send`: the
    /// first update comes before the announcer subscribes, and `send`
    /// drops a value nobody listens to, which made the first `started`
    /// announce say `left=0`, as a seed would. `left` counts every piece
    /// missing, so chosen files complete are still a leecher's.
    fn update_progress(&self, run: &Running) {
        self.progress.send_replace(Progress {
            uploaded: run.up.total(),
            downloaded: run.down.total(),
            left: run.picker.bytes_missing(),
            peers: run.peers.values().filter(|p| p.ready()).count(),
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
        } else if run.picker.is_complete() && run.files_made {
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
            peers: run
                .peers
                .values()
                .filter(|p| p.ready() && p.web.is_none())
                .count(),
            seeds: run
                .peers
                .values()
                .filter(|p| p.ready() && p.web.is_none() && p.has.is_full())
                .count(),
            encrypted_peers: run
                .peers
                .values()
                .filter(|p| p.ready() && p.encrypted)
                .count(),
            utp_peers: run.peers.values().filter(|p| p.ready() && p.utp).count(),
            web_seeds: run
                .peers
                .values()
                .filter(|p| p.ready() && p.web.is_some())
                .count(),
            candidates: run.candidates.len(),
            hash_failures: run.hash_failures,
            banned: run.banned_ids.len(),
            eta: if left == 0 { None } else { run.down.eta(left) },
            peer_totals: run.totals.values().copied().collect(),
            announces: run.tiers.rounds(),
            connections: run.peers.values().filter(|p| p.web.is_none()).count(),
            peers_ever: run.peers_ever,
            utp_peers_ever: run.utp_peers_ever,
            sources_ever: run.sources_ever,
            dial_failures: run.dial_failures,
            tracker_error: run.tiers.error(),
            sources: {
                let mut sources = PeerSources::default();
                for peer in run.peers.values().filter(|p| p.ready() && p.web.is_none()) {
                    sources.add(peer.source);
                }
                sources
            },
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

/// What the choker is told of the ready peers, and whom it serves.
fn choke_candidates(run: &Running) -> (Vec<Candidate>, Mode) {
    let seeding = run.picker.is_complete();
    let candidates = run
        .peers
        .iter()
        .filter(|(_, p)| p.ready())
        .map(|(key, p)| Candidate {
            key: *key,
            interested: p.peer_interested,
            unchoked: !p.am_choking,
            rate: if seeding {
                p.up.per_second()
            } else {
                p.down.per_second()
            },
            snubbed: p.snubbed,
        })
        .collect();
    let mode = if seeding {
        Mode::Seeding
    } else {
        Mode::Downloading
    };
    (candidates, mode)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_an_ipv4_address_or_an_ipv6_64() {
        let group = |s: &str| host_group(s.parse().unwrap());
        assert_eq!(group("127.0.0.1:1"), group("127.0.0.1:2"));
        assert_ne!(group("127.0.0.1:1"), group("127.0.0.2:1"));
        // Seen on a dual-stack socket, an IPv4 peer is the same host.
        assert_eq!(group("[::ffff:10.0.0.1]:1"), group("10.0.0.1:1"));
        assert_eq!(
            group("[2001:db8:1:2::1]:1"),
            group("[2001:db8:1:2:ffff::9]:7")
        );
        assert_ne!(group("[2001:db8:1:2::1]:1"), group("[2001:db8:1:3::1]:1"));
    }
}

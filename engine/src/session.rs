//! The session: one listening port for all torrents, peer limits, and the
//! handles through which torrents are added, watched and stopped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dht::Dht;
use metainfo::{InfoHash, Metainfo, PeerId};
use storage::{Disk, Storage, StorageConfig, StorageError};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracker::TrackerClient;

use crate::discovery::DhtConfig;
use crate::stats::{Stats, TorrentEvent, TorrentState};
use crate::torrent::{Control, Incoming, Torrent};
use crate::turnover::Grace;
use crate::wire::{Encryption, PeerStream, Transport};

/// How a [`Session`] behaves.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The address to accept peers on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Our peer id, sent in every handshake and announce.
    pub peer_id: PeerId,
    /// Most connections over all torrents; also the most incoming
    /// connections waiting for their handshake at once (at least 16).
    pub max_peers: usize,
    /// Most connections per torrent.
    pub max_peers_per_torrent: usize,
    /// Most connections per torrent with one host: an IPv4 address, or an
    /// IPv6 /64 (every address of 127.0.0.0/8 is a host of its own). Bounds
    /// how much of a table one machine can take, whatever it does.
    pub max_peers_per_ip: usize,
    /// When a torrent's table is full, how long a peer may go without a
    /// block either way before it gives way to a new one (see
    /// [`crate::turnover`]).
    pub turnover: Grace,
    /// Peers unchoked at once per torrent (while downloading, one of them
    /// optimistically).
    pub upload_slots: usize,
    /// Time between choking rounds, in whole seconds (at least one). A
    /// seeding turn lasts six rounds.
    pub choke_interval: Duration,
    /// How long dialling a peer may take.
    pub connect_timeout: Duration,
    /// How long a peer has to send its handshake.
    pub handshake_timeout: Duration,
    /// A peer silent this long is dropped (BEP 3 says two minutes).
    pub idle_timeout: Duration,
    /// A peer that sends nothing this long while we wait for blocks is
    /// snubbed: its requests go to others.
    pub snub_timeout: Duration,
    /// How trackers are reached.
    pub tracker_client: TrackerClient,
    /// The shortest wait between announces to a tracker, whatever interval
    /// it asks for: a tracker saying 0 or 1 second would otherwise be
    /// asked again all the time.
    pub min_announce_interval: Duration,
    /// How long a web seed (BEP 19) that failed waits before it is tried
    /// again; doubled for each failure in a row, up to 30 minutes.
    pub web_seed_retry: Duration,
    /// Most payload bytes per second received, over all torrents.
    pub download_limit: Option<u64>,
    /// Most payload bytes per second sent, over all torrents.
    pub upload_limit: Option<u64>,
    /// The mainline DHT (BEP 5), if the session runs a node: public
    /// torrents find peers in it and magnet links their metadata. `None`
    /// by default, so that nothing reaches the public network unasked.
    pub dht: Option<DhtConfig>,
    /// Peer exchange (BEP 11) with peers that speak it; never for private
    /// torrents.
    pub pex: bool,
    /// How often peers are told whom we are connected to (BEP 11 says
    /// not more than once a minute; tests go faster).
    pub pex_interval: Duration,
    /// Which connections are encrypted with MSE/PE, both ways (see
    /// [`Encryption`]; by default MSE first, plaintext if a peer does not
    /// speak it, as Transmission does).
    pub encryption: Encryption,
    /// Which transports peers are dialled and accepted over (see
    /// [`Transport`]). uTP runs on the UDP port of the listen port's
    /// number, shared with the DHT.
    pub transport: Transport,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            peer_id: PeerId::generate(),
            max_peers: 500,
            max_peers_per_torrent: 50,
            max_peers_per_ip: 8,
            turnover: Grace::default(),
            upload_slots: 4,
            choke_interval: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            snub_timeout: Duration::from_secs(30),
            tracker_client: TrackerClient::default(),
            min_announce_interval: Duration::from_secs(30),
            web_seed_retry: Duration::from_secs(30),
            download_limit: None,
            upload_limit: None,
            dht: None,
            pex: true,
            pex_interval: Duration::from_secs(60),
            encryption: Encryption::default(),
            transport: Transport::default(),
        }
    }
}

/// Faults a torrent can be told to commit, to test how its peers cope.
/// Off by default; the testnet and tests turn them on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Every uploaded block has its bytes flipped: a lying peer.
    pub corrupt_uploads: bool,
    /// Uploads are paced to at most this many bytes per second per
    /// connection: a slow peer.
    pub upload_rate: Option<u64>,
    /// Each connection is closed after uploading this many blocks: a peer
    /// that leaves mid-piece.
    pub close_after_uploads: Option<u64>,
    /// Each requested block is sent this much later than it could be: a
    /// peer far away.
    pub latency: Option<Duration>,
    /// No peer is ever unchoked: a peer that takes and never gives.
    pub never_unchoke: bool,
}

/// How one torrent is run.
#[derive(Clone, Debug)]
pub struct TorrentOptions {
    /// The folder the torrent's files go in (a multi-file torrent's own
    /// folder is made inside it).
    pub download_dir: PathBuf,
    /// Where the resume data is kept, if anywhere.
    pub resume_file: Option<PathBuf>,
    /// Hash every piece at the start instead of trusting the resume data
    /// (which vouches for files whose size and modification time have not
    /// changed); the resume data is still saved.
    pub recheck: bool,
    /// Peers to dial besides those trackers give.
    pub peers: Vec<SocketAddr>,
    /// Ask trackers for compact peer lists.
    pub compact: bool,
    /// Storage settings.
    pub storage: StorageConfig,
    /// Most bytes of unfinished pieces held in memory.
    pub memory_limit: usize,
    /// Faults to commit (tests only).
    pub faults: Faults,
    /// Which files to download, one flag per file of the torrent; `None`
    /// for all. Only the pieces of wanted files are fetched, and nothing is
    /// written into the others (see `storage::StorageConfig::wanted`).
    pub wanted_files: Option<Vec<bool>>,
}

impl TorrentOptions {
    /// Defaults, downloading into `download_dir`.
    pub fn new(download_dir: impl Into<PathBuf>) -> TorrentOptions {
        TorrentOptions {
            download_dir: download_dir.into(),
            resume_file: None,
            recheck: false,
            peers: Vec::new(),
            compact: true,
            storage: StorageConfig::default(),
            memory_limit: 64 << 20,
            faults: Faults::default(),
            wanted_files: None,
        }
    }
}

/// Why the engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The download folder could not be used.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A socket or thread could not be set up.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The torrent is already in the session.
    #[error("this torrent is already added")]
    AlreadyAdded,
    /// The torrent stopped on an error.
    #[error("{0}")]
    Failed(String),
    /// The torrent was stopped before it finished.
    #[error("the torrent was stopped")]
    Stopped,
}

/// Where the accept task hands each torrent's peers.
#[derive(Clone, Debug)]
struct Route {
    incoming: mpsc::Sender<Incoming>,
    /// Whether the torrent takes peers now: not while it checks its data
    /// or stops, when a peer waiting for it would hold a handshake's place.
    accepting: Arc<AtomicBool>,
}

type Routes = Arc<Mutex<HashMap<InfoHash, Route>>>;

/// A BitTorrent session: one listening port shared by its torrents.
#[derive(Debug)]
pub struct Session {
    config: Arc<SessionConfig>,
    limits: crate::torrent::Limits,
    local_addr: SocketAddr,
    routes: Routes,
    permits: Arc<Semaphore>,
    torrents: Mutex<Vec<TorrentHandle>>,
    /// One accept task per listener (IPv4, and IPv6 beside it).
    accept: Vec<JoinHandle<()>>,
    dht: Option<crate::discovery::Nodes>,
    /// Saves the DHT's table now and then.
    dht_saver: Option<JoinHandle<()>>,
    /// What each address took when dialled (MSE or plaintext).
    dialled: Arc<crate::wire::Dialer>,
}

impl Session {
    /// Binds the listening port and starts accepting peers.
    pub async fn start(config: SessionConfig) -> std::io::Result<Session> {
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let routes = Routes::default();
        let config = Arc::new(config);
        let handshaking = config.max_peers.max(MIN_HANDSHAKING);
        let (utp, shared_udp) = bind_utp(&config, local_addr);
        // A DHT that cannot start (its UDP port taken, say) leaves the
        // session without it rather than without peers at all.
        let dht = match &config.dht {
            Some(settings) => match crate::discovery::start(settings, local_addr, shared_udp).await
            {
                Ok(nodes) => Some(nodes),
                Err(e) => {
                    tracing::warn!("the DHT is off: cannot bind its UDP socket: {e}");
                    None
                }
            },
            None => None,
        };
        let dht_saver = dht.as_ref().and_then(|dht| {
            let path = config.dht.as_ref()?.state_file.clone()?;
            let dht = dht.clone();
            Some(tokio::spawn(async move {
                let mut every = tokio::time::interval(DHT_SAVE_EVERY);
                every.tick().await;
                loop {
                    every.tick().await;
                    crate::discovery::save(&dht, &path).await;
                }
            }))
        });
        let mut listeners = vec![listener];
        // Listening on every IPv4 address: every IPv6 one too, on the same
        // port (BEP 7), if the system has IPv6.
        if local_addr.ip() == std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED) {
            match listen_v6_only(local_addr.port()) {
                Ok(v6) => listeners.push(v6),
                Err(e) => tracing::debug!(port = local_addr.port(), "no IPv6 listener: {e}"),
            }
        }
        let permits = Arc::new(Semaphore::new(handshaking));
        let dialled = Arc::new(crate::wire::Dialer::new(utp.clone(), config.transport));
        let listeners = listeners
            .into_iter()
            .filter(|_| config.transport != Transport::Utp)
            .map(Listener::Tcp)
            .chain(utp.iter().cloned().map(Listener::Utp));
        let accept = listeners
            .map(|listener| {
                tokio::spawn(accept(
                    listener,
                    routes.clone(),
                    config.handshake_timeout,
                    config.encryption,
                    permits.clone(),
                ))
            })
            .collect();
        Ok(Session {
            limits: crate::torrent::Limits {
                download: config
                    .download_limit
                    .map(|r| Arc::new(crate::limit::Limiter::new(r))),
                upload: config
                    .upload_limit
                    .map(|r| Arc::new(crate::limit::Limiter::new(r))),
            },
            permits: Arc::new(Semaphore::new(config.max_peers)),
            config,
            local_addr,
            routes,
            torrents: Mutex::new(Vec::new()),
            accept,
            dht,
            dht_saver,
            dialled,
        })
    }

    /// The address peers reach us at (the port is what trackers are told).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.config.peer_id
    }

    /// The session's IPv4 DHT node (its only one, if it binds an IPv6
    /// address), if it runs one.
    pub fn dht(&self) -> Option<&Dht> {
        self.dht.as_ref().and_then(|n| n.all().next())
    }

    /// The session's IPv6 DHT node, if it runs one beside the IPv4 one.
    pub fn dht6(&self) -> Option<&Dht> {
        self.dht
            .as_ref()
            .and_then(|n| n.v4.as_ref().and(n.v6.as_ref()))
    }

    /// Fetches the torrent a magnet link names: its info dictionary, from
    /// the link's direct peers, `peers`, and the peers its trackers list
    /// (`ut_metadata`, BEP 9), checked against the info-hash. Give the
    /// result to [`Session::add`] (it may also be saved as a `.torrent`).
    pub async fn fetch_metadata(
        &self,
        link: &metainfo::MagnetLink,
        peers: &[SocketAddr],
        deadline: Duration,
    ) -> Result<Metainfo, EngineError> {
        crate::metadata::fetch(
            link,
            peers,
            self.dht.as_ref(),
            self.config.peer_id,
            (self.config.encryption, &self.dialled),
            self.local_addr.port(),
            &self.config.tracker_client,
            deadline,
        )
        .await
        .map_err(EngineError::Failed)
    }

    /// Adds a torrent: its data on disk is checked (trusting the resume
    /// file for unchanged files), then it downloads or seeds.
    pub async fn add(
        &self,
        torrent: Metainfo,
        options: TorrentOptions,
    ) -> Result<TorrentHandle, EngineError> {
        let info_hash = torrent.info_hash();
        let mut options = options;
        options.storage.wanted.clone_from(&options.wanted_files);
        // The disk must be able to hold at least one whole piece.
        options.memory_limit = options
            .memory_limit
            .max(torrent.layout().piece_length() as usize);
        if self.routes().contains_key(&info_hash) {
            return Err(EngineError::AlreadyAdded);
        }
        let torrent = Arc::new(torrent);
        let storage = {
            let torrent = torrent.clone();
            let dir = options.download_dir.clone();
            let config = options.storage.clone();
            tokio::task::spawn_blocking(move || Storage::new(&torrent, &dir, config))
                .await
                .map_err(std::io::Error::other)??
        };
        let (disk, disk_thread) = Disk::start(storage, options.memory_limit, 256)?;
        let (events_tx, events_rx) = mpsc::channel(4096);
        let (control_tx, control) = mpsc::channel(16);
        let (incoming_tx, incoming) = mpsc::channel(16);
        let accepting = Arc::new(AtomicBool::new(false));
        let layout = torrent.layout();
        let (stats, stats_rx) =
            watch::channel(Stats::new(layout.num_pieces(), layout.total_length()));
        let (broadcast, _) = broadcast::channel(1024);
        let (progress, _) = watch::channel(crate::announce::Progress::default());
        let task = Torrent {
            info_hash,
            metainfo: torrent.clone(),
            config: self.config.clone(),
            options,
            port: self.local_addr.port(),
            disk,
            disk_thread: Some(disk_thread),
            permits: self.permits.clone(),
            limits: self.limits.clone(),
            events_tx,
            events_rx,
            control,
            incoming,
            accepting: accepting.clone(),
            stats,
            broadcast: broadcast.clone(),
            progress,
            announcers: Vec::new(),
            stopping: None,
            dialled: self.dialled.clone(),
            // BEP 27: a private torrent's peers come from its trackers only.
            dht: if torrent.info().is_private() {
                None
            } else {
                self.dht.clone()
            },
        };
        {
            let mut routes = self.routes();
            if routes.contains_key(&info_hash) {
                return Err(EngineError::AlreadyAdded);
            }
            routes.insert(
                info_hash,
                Route {
                    incoming: incoming_tx,
                    accepting,
                },
            );
        }
        let routes = self.routes.clone();
        tokio::spawn(async move {
            task.run().await;
            routes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&info_hash);
        });
        let handle = TorrentHandle {
            info_hash,
            stats: stats_rx,
            events: broadcast,
            control: control_tx,
        };
        self.torrents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle.clone());
        Ok(handle)
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, HashMap<InfoHash, Route>> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops every torrent gracefully (`stopped` announced, resume data
    /// saved, files flushed) and closes the listening port.
    pub async fn shutdown(self) {
        for accept in &self.accept {
            accept.abort();
        }
        let torrents =
            std::mem::take(&mut *self.torrents.lock().unwrap_or_else(|e| e.into_inner()));
        futures::future::join_all(torrents.iter().map(TorrentHandle::stop)).await;
        if let Some(saver) = &self.dht_saver {
            saver.abort();
        }
        if let (Some(dht), Some(path)) = (
            &self.dht,
            self.config.dht.as_ref().and_then(|d| d.state_file.as_ref()),
        ) {
            crate::discovery::save(dht, path).await;
        }
    }
}

/// A listener on every IPv6 address at `port`, for IPv6 alone (IPv4 has
/// its own listener on the same port).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn listen_v6_only(port: u16) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(true)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    let addr = SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), port);
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn listen_v6_only(_port: u16) -> std::io::Result<TcpListener> {
    Err(std::io::Error::other(
        "IPv6 listening is set up on Linux only",
    ))
}

impl Drop for Session {
    /// A session dropped without [`Session::shutdown`] leaves nothing
    /// running behind it: its listeners and the DHT's saver stop (the DHT
    /// nodes end with their last handle).
    fn drop(&mut self) {
        for accept in &self.accept {
            accept.abort();
        }
        if let Some(saver) = &self.dht_saver {
            saver.abort();
        }
    }
}

/// How often the DHT's table is saved while the session runs (and once at
/// shutdown).
const DHT_SAVE_EVERY: Duration = Duration::from_secs(10 * 60);

/// Incoming connections that may wait for their handshake at once, when
/// `max_peers` is lower.
const MIN_HANDSHAKING: usize = 16;

/// Accepts connections, reads each handshake (within the timeout) and
/// hands the connection to the torrent it names. At most `handshaking`
/// connections wait for their handshake at once; more are closed at once,
/// so that a flood of idle connections cannot hold thousands of
/// descriptors for the length of the timeout.
/// Where peers' connections come from.
enum Listener {
    Tcp(TcpListener),
    Utp(utp::Socket),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<(PeerStream, SocketAddr)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, addr) = l.accept().await?;
                Ok((PeerStream::Tcp(stream), addr))
            }
            Listener::Utp(s) => {
                let (stream, addr) = s.accept().await?;
                Ok((PeerStream::Utp(stream), addr))
            }
        }
    }
}

/// The uTP sockets, unless the transport is TCP alone: on the listen
/// address and port, and on every IPv6 address too when listening on
/// every IPv4 one; with their DHT shares when the DHT is on. A port that
/// is taken leaves that family without uTP.
fn bind_utp(
    config: &SessionConfig,
    local: SocketAddr,
) -> (Vec<utp::Socket>, crate::discovery::SharedUdp) {
    let mut sockets = Vec::new();
    let mut shared = crate::discovery::SharedUdp::default();
    if config.transport == Transport::Tcp {
        return (sockets, shared);
    }
    let mut addrs = vec![local];
    if local.ip() == std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED) {
        addrs.push(SocketAddr::new(
            std::net::Ipv6Addr::UNSPECIFIED.into(),
            local.port(),
        ));
    }
    for addr in addrs {
        let udp = match utp::udp_socket(addr) {
            Ok(udp) => Arc::new(udp),
            Err(e) => {
                if addr.is_ipv4() {
                    tracing::warn!(%addr, "no uTP: cannot bind its UDP socket: {e}");
                } else {
                    tracing::debug!(%addr, "no uTP over IPv6: {e}");
                }
                continue;
            }
        };
        let others = config.dht.as_ref().map(|_| {
            let (tx, rx) = tokio::sync::mpsc::channel(256);
            let share = Some((udp.clone(), rx));
            if addr.is_ipv4() {
                shared.v4 = share;
            } else {
                shared.v6 = share;
            }
            tx
        });
        match utp::Socket::with_udp(udp, utp::SocketConfig::default(), others) {
            Ok(socket) => sockets.push(socket),
            Err(e) => tracing::warn!(%addr, "no uTP: {e}"),
        }
    }
    (sockets, shared)
}

async fn accept(
    listener: Listener,
    routes: Routes,
    timeout: Duration,
    encryption: Encryption,
    permits: Arc<Semaphore>,
) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, say: wait a little rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::debug!(%addr, "too many connections waiting for a handshake; closed");
            continue;
        };
        let routes = routes.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // MSE needs the torrents an initiator may ask for. (Hashed per
            // connection: cheap beside the key exchange for a few hundred
            // torrents.)
            let torrents = || -> Vec<InfoHash> {
                routes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .keys()
                    .copied()
                    .collect()
            };
            let accepted = crate::wire::accept(stream, encryption, torrents);
            let (wire, handshake) = match tokio::time::timeout(timeout, accepted).await {
                Ok(Ok(done)) => done,
                Ok(Err(reason)) => {
                    tracing::debug!(%addr, %reason, "incoming connection dropped");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%addr, "no handshake in time; dropped");
                    return;
                }
            };
            let route = routes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&handshake.info_hash)
                .cloned();
            let Some(route) = route else {
                tracing::debug!(%addr, info_hash = %handshake.info_hash, "a handshake for a torrent we do not have; dropped");
                return;
            };
            let incoming = Incoming {
                wire: Box::new(wire),
                handshake,
                addr,
            };
            if !route.accepting.load(Ordering::Relaxed) {
                // Checking its data (or stopping), the torrent takes no
                // peer for a while: as many as its queue holds wait, the
                // others go at once rather than hold a handshake's place.
                if route.incoming.try_send(incoming).is_err() {
                    tracing::debug!(%addr, "the torrent takes no peers now (it checks its data, or stops); dropped");
                }
                return;
            }
            // Waits its turn, holding its permit, however many arrive at
            // once: the torrent alone decides whether it has room, and
            // says why when it has none. Bounded, in case the torrent
            // stops and never takes it.
            match tokio::time::timeout(timeout, route.incoming.send(incoming)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => tracing::debug!(%addr, "the torrent stopped; dropped"),
                Err(_) => {
                    tracing::debug!(%addr, "the torrent took too long to take the peer; dropped")
                }
            }
        });
    }
}

/// A torrent in a session: statistics, events and control.
#[derive(Clone, Debug)]
pub struct TorrentHandle {
    info_hash: InfoHash,
    stats: watch::Receiver<Stats>,
    events: broadcast::Sender<TorrentEvent>,
    control: mpsc::Sender<Control>,
}

impl TorrentHandle {
    /// The torrent.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The statistics now.
    pub fn stats(&self) -> Stats {
        self.stats.borrow().clone()
    }

    /// A receiver that sees every new statistics snapshot.
    pub fn watch(&self) -> watch::Receiver<Stats> {
        self.stats.clone()
    }

    /// Events from now on.
    pub fn events(&self) -> broadcast::Receiver<TorrentEvent> {
        self.events.subscribe()
    }

    /// Closes every connection and stops dialling until resumed; trackers
    /// hear `stopped` and DHT lookups end (both start again on resume).
    pub async fn pause(&self) {
        let _ = self.control.send(Control::Pause).await;
    }

    /// Undoes [`TorrentHandle::pause`].
    pub async fn resume(&self) {
        let _ = self.control.send(Control::Resume).await;
    }

    /// Waits until every wanted piece is verified and the download's files
    /// are all there, or the torrent fails or stops.
    pub async fn wait_complete(&self) -> Result<(), EngineError> {
        let mut stats = self.stats.clone();
        let state = stats
            .wait_for(|s| {
                matches!(
                    s.state,
                    TorrentState::Seeding | TorrentState::Error(_) | TorrentState::Stopped
                )
            })
            .await
            .map(|s| s.state.clone())
            .unwrap_or(TorrentState::Stopped);
        match state {
            TorrentState::Seeding => Ok(()),
            TorrentState::Error(e) => Err(EngineError::Failed(e)),
            _ => Err(EngineError::Stopped),
        }
    }

    /// Stops the torrent gracefully and waits until it has.
    pub async fn stop(&self) {
        let (done, wait) = oneshot::channel();
        if self.control.send(Control::Stop(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

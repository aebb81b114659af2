//! Peers found without a tracker: the session's DHT node (BEP 5) and each
//! torrent's lookups in it.
//!
//! The session runs one node on a UDP socket at its listen port (the
//! address peers learn from our `port` message). Each public torrent looks
//! up its peers at start and then every [`DhtConfig::reannounce`] (every
//! minute while it has few peers), announcing our listen port; peers found
//! join the torrent's candidates as a tracker's do. Private torrents (BEP
//! 27) never use it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use dht::{Announce, Dht, Found, NodeId, Saved};
use metainfo::InfoHash;
use tokio::sync::{mpsc, watch};

use crate::announce::{Order, Progress};
use crate::peer::Event;
use crate::stats::PeerSource;

/// How the session's DHT node runs.
#[derive(Clone, Debug)]
pub struct DhtConfig {
    /// The UDP address to bind. Port 0 takes the session's listen port
    /// (any free port if that one is taken); an unspecified IP takes the
    /// listen address's.
    pub bind: SocketAddr,
    /// Nodes to start from, as `host:port`, when the saved table has too
    /// few. [`dht::PUBLIC_ROUTERS`] are what the network uses; tests give
    /// nodes of their own.
    pub bootstrap: Vec<String>,
    /// Where the node's id and table are kept between runs.
    pub state_file: Option<PathBuf>,
    /// The node's rules (rate limits, BEP 42, one node per address…).
    pub node: dht::Config,
    /// Time between a torrent's lookups.
    pub reannounce: Duration,
    /// Time between lookups while a torrent has fewer than
    /// [`DhtConfig::few_peers`] peers.
    pub reannounce_few: Duration,
    /// Below this many connected peers, lookups come more often.
    pub few_peers: usize,
    /// When the node binds every IPv4 address, run an IPv6 node beside it
    /// on the same port (BEP 32), if the system has IPv6.
    pub ipv6: bool,
}

impl Default for DhtConfig {
    fn default() -> DhtConfig {
        DhtConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 0)),
            bootstrap: Vec::new(),
            state_file: None,
            node: dht::Config::default(),
            reannounce: Duration::from_secs(15 * 60),
            reannounce_few: Duration::from_secs(60),
            few_peers: 8,
            ipv6: true,
        }
    }
}

/// The session's DHT nodes: one per address family (BEP 32), on the same
/// port. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Nodes {
    pub(crate) v4: Option<Dht>,
    pub(crate) v6: Option<Dht>,
    /// Read-only nodes (BEP 43) answer nobody, so peers are not told of
    /// them.
    pub(crate) read_only: bool,
}

impl Nodes {
    /// Each node.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Dht> {
        self.v4.iter().chain(self.v6.iter())
    }

    /// The UDP port peers are told (BEP 5's `port` message), unless
    /// the nodes are read-only.
    pub(crate) fn port(&self) -> Option<u16> {
        if self.read_only {
            return None;
        }
        self.all().next().map(|d| d.local_addr().port())
    }

    /// A node's address a peer told us: to the node of its family.
    pub(crate) fn add_node(&self, addr: SocketAddr) {
        let node = if addr.is_ipv6() { &self.v6 } else { &self.v4 };
        if let Some(node) = node {
            node.add_node(addr);
        }
    }

    /// A lookup in every node at once: their peers on one channel, and a
    /// [`Found::Done`] from each (as many as the second value says).
    pub(crate) async fn get_peers(
        &self,
        target: NodeId,
        announce: Option<Announce>,
    ) -> (mpsc::UnboundedReceiver<Found>, usize) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut lookups = 0;
        for node in self.all() {
            let mut found = node.get_peers(target, announce).await;
            let tx = tx.clone();
            lookups += 1;
            tokio::spawn(async move {
                while let Some(next) = found.recv().await {
                    if tx.send(next).is_err() {
                        return;
                    }
                }
            });
        }
        (rx, lookups)
    }
}

/// UDP sockets the DHT shares with uTP (the listen port's), each with the
/// channel its DHT datagrams come on.
#[derive(Debug, Default)]
pub(crate) struct SharedUdp {
    pub(crate) v4: Option<UdpShare>,
    pub(crate) v6: Option<UdpShare>,
}

/// A socket shared with uTP, and the channel its DHT datagrams come on.
pub(crate) type UdpShare = (
    std::sync::Arc<tokio::net::UdpSocket>,
    mpsc::Receiver<(SocketAddr, Vec<u8>)>,
);

/// Starts the session's nodes: an IPv4 one on the listen port (any free
/// port if that one is taken) and, when listening on every address, an
/// IPv6 one on the same port; each from the saved table.
pub(crate) async fn start(
    config: &DhtConfig,
    listen: SocketAddr,
    mut shared: SharedUdp,
) -> std::io::Result<Nodes> {
    let mut bind = config.bind;
    if bind.port() != 0 {
        // A port of its own was asked for.
        shared = SharedUdp::default();
    }
    if bind.ip().is_unspecified() && !listen.ip().is_unspecified() {
        bind.set_ip(listen.ip());
    }
    let mut node = config.node.clone();
    if let Some(path) = &config.state_file {
        match std::fs::read(path).map(|bytes| Saved::decode(&bytes)) {
            Ok(Ok(saved)) => {
                tracing::debug!(nodes = saved.nodes.len(), path = %path.display(), "DHT table loaded");
                node.last_id = node.last_id.or(saved.id);
                node.known.extend(saved.nodes);
            }
            Ok(Err(e)) => tracing::warn!(path = %path.display(), "DHT state ignored: {e}"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), "DHT state unreadable: {e}"),
        }
    }
    let family = |ipv6: bool| {
        let mut node = node.clone();
        node.ipv6 = ipv6;
        node.known.retain(|n| n.addr.is_ipv6() == ipv6);
        node
    };
    let mut v4_config = family(false);
    let mut v6_config = family(true);
    (v4_config.bootstrap, v6_config.bootstrap) = tokio::join!(
        dht::resolve(&config.bootstrap, false),
        dht::resolve(&config.bootstrap, true)
    );
    if bind.is_ipv6() {
        let v6 = match shared.v6.take() {
            Some((socket, packets)) => Dht::spawn(socket, Some(packets), v6_config)?,
            None => bind_at(bind, listen.port(), v6_config).await?,
        };
        return Ok(Nodes {
            v4: None,
            v6: Some(v6),
            read_only: config.node.read_only,
        });
    }
    let v4 = match shared.v4.take() {
        Some((socket, packets)) => Dht::spawn(socket, Some(packets), v4_config)?,
        None => bind_at(bind, listen.port(), v4_config).await?,
    };
    let mut v6 = None;
    if config.ipv6 && bind.ip().is_unspecified() {
        let socket = match shared.v6.take() {
            Some((socket, packets)) => Ok((socket, Some(packets))),
            None => udp_v6_only(v4.local_addr().port()).map(|s| (std::sync::Arc::new(s), None)),
        };
        match socket {
            Ok((socket, packets)) => match Dht::spawn(socket, packets, v6_config) {
                Ok(node) => {
                    // One dual-stack node to the network (BEP 32's `want`).
                    v4.pair(&node, dht::PAIR_EVERY);
                    v6 = Some(node);
                }
                Err(e) => tracing::debug!("no IPv6 DHT node: {e}"),
            },
            Err(e) => tracing::debug!("no IPv6 DHT node: {e}"),
        }
    }
    Ok(Nodes {
        v4: Some(v4),
        v6,
        read_only: config.node.read_only,
    })
}

/// A node at `bind`; port 0 takes `listen_port` if free, else any.
async fn bind_at(bind: SocketAddr, listen_port: u16, config: dht::Config) -> std::io::Result<Dht> {
    if bind.port() == 0 {
        let at_listen = SocketAddr::new(bind.ip(), listen_port);
        match Dht::bind(at_listen, config.clone()).await {
            Ok(dht) => return Ok(dht),
            Err(e) => tracing::info!("DHT cannot use UDP port {listen_port}: {e}"),
        }
    }
    Dht::bind(bind, config).await
}

/// A UDP socket on every IPv6 address at `port`, for IPv6 alone (the IPv4
/// node has the same port).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn udp_v6_only(port: u16) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_only_v6(true)?;
    socket.set_nonblocking(true)?;
    let addr = SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), port);
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn udp_v6_only(_port: u16) -> std::io::Result<tokio::net::UdpSocket> {
    Err(std::io::Error::other(
        "an IPv6 DHT node is set up on Linux only",
    ))
}

/// Writes the nodes' id and tables to `path` (atomically: a temporary
/// file renamed over the old one).
pub(crate) async fn save(nodes: &Nodes, path: &std::path::Path) {
    let mut saved = Saved::default();
    for node in nodes.all() {
        let Some(one) = node.saved().await else {
            continue;
        };
        saved.id = saved.id.or(one.id);
        saved.nodes.extend(one.nodes);
    }
    let bytes = saved.encode();
    let tmp = path.with_extension("tmp");
    let result = tokio::fs::write(&tmp, &bytes).await;
    let result = match result {
        Ok(()) => tokio::fs::rename(&tmp, path).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => tracing::debug!(nodes = saved.nodes.len(), "DHT table saved"),
        Err(e) => tracing::warn!(path = %path.display(), "cannot save the DHT table: {e}"),
    }
}

/// One torrent's lookups: at once, then again and again until stopped.
pub(crate) struct DhtAnnouncer {
    pub(crate) dht: Nodes,
    pub(crate) info_hash: InfoHash,
    /// Our listen port, announced.
    pub(crate) port: u16,
    pub(crate) reannounce: Duration,
    pub(crate) reannounce_few: Duration,
    pub(crate) few_peers: usize,
    pub(crate) progress: watch::Receiver<Progress>,
    pub(crate) peers: mpsc::Sender<Event>,
}

impl DhtAnnouncer {
    pub(crate) async fn run(self, mut orders: mpsc::Receiver<Order>) {
        let target = NodeId(self.info_hash.0);
        loop {
            let (mut found, mut lookups) = self
                .dht
                .get_peers(target, Some(Announce::Port(self.port)))
                .await;
            while lookups > 0 {
                tokio::select! {
                    next = found.recv() => match next {
                        Some(Found::Peers(peers)) => {
                            let event = Event::Discovered { source: PeerSource::Dht, tier: None, peers };
                            // A stopping torrent reads no events: a stop
                            // must still get through.
                            tokio::select! {
                                sent = self.peers.send(event) => if sent.is_err() {
                                    return;
                                },
                                order = orders.recv() => if stops(order) {
                                    return;
                                },
                            }
                        }
                        Some(Found::Done(done)) => {
                            tracing::info!(
                                peers = done.peers,
                                queries = done.queries,
                                answers = done.answers,
                                announced = done.announced,
                                "DHT lookup done"
                            );
                            lookups -= 1;
                        }
                        None => return,
                    },
                    order = orders.recv() => if stops(order) {
                        return;
                    },
                }
            }
            let wait = if self.progress.borrow().peers < self.few_peers {
                self.reannounce_few
            } else {
                self.reannounce
            };
            let sleep = tokio::time::sleep(wait);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    order = orders.recv() => if stops(order) {
                        return;
                    },
                }
            }
        }
    }
}

/// Whether an order (or the torrent gone) ends the announcer; a stop is
/// acknowledged. `completed` means nothing to the DHT.
fn stops(order: Option<Order>) -> bool {
    match order {
        Some(Order::Completed) => false,
        Some(Order::Stop(done)) => {
            let _ = done.send(());
            true
        }
        None => true,
    }
}

/// Peers of `info_hash` the DHT knows, looked up once (without announcing),
/// for a magnet link's metadata; gives up after `deadline`.
pub(crate) async fn lookup(
    dht: &Nodes,
    info_hash: InfoHash,
    deadline: Duration,
) -> Vec<SocketAddr> {
    let (mut found, mut lookups) = dht.get_peers(NodeId(info_hash.0), None).await;
    let mut peers = Vec::new();
    let collect = async {
        while lookups > 0 {
            match found.recv().await {
                Some(Found::Peers(more)) => peers.extend(more),
                Some(Found::Done(_)) => lookups -= 1,
                None => break,
            }
        }
    };
    let _ = tokio::time::timeout(deadline, collect).await;
    peers
}

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
        }
    }
}

/// Starts the session's node: on the listen port if free, from the saved
/// table if there is one.
pub(crate) async fn start(config: &DhtConfig, listen: SocketAddr) -> std::io::Result<Dht> {
    let mut bind = config.bind;
    if bind.ip().is_unspecified() && !listen.ip().is_unspecified() {
        bind.set_ip(listen.ip());
    }
    let mut node = config.node.clone();
    node.ipv6 = bind.is_ipv6();
    if let Some(path) = &config.state_file {
        match std::fs::read(path).map(|bytes| Saved::decode(&bytes)) {
            Ok(Ok(saved)) => {
                tracing::debug!(nodes = saved.nodes.len(), path = %path.display(), "DHT table loaded");
                node.id = node.id.or(saved.id);
                node.known.extend(saved.nodes);
            }
            Ok(Err(e)) => tracing::warn!(path = %path.display(), "DHT state ignored: {e}"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), "DHT state unreadable: {e}"),
        }
    }
    node.bootstrap
        .extend(dht::resolve(&config.bootstrap, node.ipv6).await);
    if bind.port() == 0 {
        let at_listen = SocketAddr::new(bind.ip(), listen.port());
        match Dht::bind(at_listen, node.clone()).await {
            Ok(dht) => return Ok(dht),
            Err(e) => tracing::info!("DHT cannot use UDP port {}: {e}", listen.port()),
        }
    }
    Dht::bind(bind, node).await
}

/// Writes the node's id and table to `path` (atomically: a temporary file
/// renamed over the old one).
pub(crate) async fn save(dht: &Dht, path: &std::path::Path) {
    let Some(saved) = dht.saved().await else {
        return;
    };
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
    pub(crate) dht: Dht,
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
            let mut found = self
                .dht
                .get_peers(target, Some(Announce::Port(self.port)))
                .await;
            loop {
                tokio::select! {
                    next = found.recv() => match next {
                        Some(Found::Peers(peers)) => {
                            let event = Event::Discovered { source: PeerSource::Dht, tier: None, peers };
                            if self.peers.send(event).await.is_err() {
                                return;
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
                            break;
                        }
                        None => return,
                    },
                    order = orders.recv() => match order {
                        Some(Order::Completed) => {}
                        Some(Order::Stop(done)) => {
                            let _ = done.send(());
                            return;
                        }
                        None => return,
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
                    order = orders.recv() => match order {
                        Some(Order::Completed) => {}
                        Some(Order::Stop(done)) => {
                            let _ = done.send(());
                            return;
                        }
                        None => return,
                    },
                }
            }
        }
    }
}

/// Peers of `info_hash` the DHT knows, looked up once (without announcing),
/// for a magnet link's metadata; gives up after `deadline`.
pub(crate) async fn lookup(dht: &Dht, info_hash: InfoHash, deadline: Duration) -> Vec<SocketAddr> {
    let mut found = dht.get_peers(NodeId(info_hash.0), None).await;
    let mut peers = Vec::new();
    let collect = async {
        while let Some(next) = found.recv().await {
            match next {
                Found::Peers(more) => peers.extend(more),
                Found::Done(_) => break,
            }
        }
    };
    let _ = tokio::time::timeout(deadline, collect).await;
    peers
}

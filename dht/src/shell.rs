//! [`Dht`]: a [`Node`] on a tokio UDP socket, driven by one task.
//!
//! The task owns the node. It reads datagrams, sleeps until the node's
//! next timer, and takes commands from cheap handles. The socket may be
//! shared: give [`Dht::spawn`] a channel of datagrams and it reads none
//! itself, so a demultiplexer can hand it the packets that start with `d`
//! and keep the rest (uTP) for others.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::krpc::MAX_PACKET;
use crate::lookup::Announce;
use crate::node::{Config, Event, LookupDone, LookupId, Node, Stats};
use crate::{NodeId, Saved};

/// The routers most clients bootstrap from. Nothing uses them unless told
/// to: [`Config::bootstrap`] is empty by default, and tests never name
/// them.
pub const PUBLIC_ROUTERS: &[&str] = &[
    "router.bittorrent.com:6881",
    "router.utorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
];

/// Resolves `host:port` names (bootstrap routers) to the addresses of one
/// family, all at once and within [`RESOLVE_TIMEOUT`]; names that do not
/// resolve in time are skipped (a slow resolver must not hold up a
/// download).
pub async fn resolve(names: &[String], ipv6: bool) -> Vec<SocketAddr> {
    let mut lookups = tokio::task::JoinSet::new();
    for name in names {
        let name = name.clone();
        lookups.spawn(async move {
            let found =
                tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(name.clone())).await;
            match found {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(e)) => {
                    tracing::debug!("DHT bootstrap {name} does not resolve: {e}");
                    Vec::new()
                }
                Err(_) => {
                    tracing::debug!("DHT bootstrap {name} did not resolve in time");
                    Vec::new()
                }
            }
        });
    }
    let mut out: Vec<SocketAddr> = Vec::new();
    while let Some(found) = lookups.join_next().await {
        out.extend(
            found
                .unwrap_or_default()
                .into_iter()
                .filter(|a: &SocketAddr| a.is_ipv6() == ipv6),
        );
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// How long [`resolve`] waits for a name.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a lookup started through [`Dht::get_peers`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// Peers not reported before.
    Peers(Vec<SocketAddr>),
    /// The lookup ended.
    Done(LookupDone),
}

enum Command {
    GetPeers {
        info_hash: NodeId,
        announce: Option<Announce>,
        reply: mpsc::UnboundedSender<Found>,
    },
    AddNode(SocketAddr),
    Stats(oneshot::Sender<(NodeId, Stats)>),
    Saved(oneshot::Sender<Saved>),
    OtherFamily(Vec<crate::krpc::NodeInfo>),
}

/// A handle on a running DHT node; clones share it. The node stops when
/// every handle is dropped.
#[derive(Clone, Debug)]
pub struct Dht {
    commands: mpsc::Sender<Command>,
    local: SocketAddr,
}

impl Dht {
    /// Binds a UDP socket at `addr` and runs a node on it.
    pub async fn bind(addr: SocketAddr, config: Config) -> io::Result<Dht> {
        let socket = Arc::new(UdpSocket::bind(addr).await?);
        Dht::spawn(socket, None, config)
    }

    /// Runs a node on `socket`. With `packets`, the node takes its
    /// datagrams from that channel and never reads the socket (which
    /// someone else shares); it still sends on it.
    pub fn spawn(
        socket: Arc<UdpSocket>,
        packets: Option<mpsc::Receiver<(SocketAddr, Vec<u8>)>>,
        mut config: Config,
    ) -> io::Result<Dht> {
        let local = socket.local_addr()?;
        config.ipv6 = local.is_ipv6();
        let (commands, receiver) = mpsc::channel(64);
        let node = Node::new(config, Instant::now());
        tracing::debug!("DHT node {} on {local}", node.id());
        tokio::spawn(drive(node, socket, packets, receiver));
        Ok(Dht { commands, local })
    }

    /// The address the node's socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Looks up peers of `info_hash` (and announces, with `announce`).
    /// The receiver gets [`Found::Peers`] as they come and one
    /// [`Found::Done`]; it closes if the node stops.
    pub async fn get_peers(
        &self,
        info_hash: NodeId,
        announce: Option<Announce>,
    ) -> mpsc::UnboundedReceiver<Found> {
        let (reply, receiver) = mpsc::unbounded_channel();
        let _ = self
            .commands
            .send(Command::GetPeers {
                info_hash,
                announce,
                reply,
            })
            .await;
        receiver
    }

    /// Tells the node of another node's address (a peer's `port` message).
    pub fn add_node(&self, addr: SocketAddr) {
        let _ = self.commands.try_send(Command::AddNode(addr));
    }

    /// The node's id and counters; `None` if it stopped.
    pub async fn stats(&self) -> Option<(NodeId, Stats)> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Stats(reply)).await.ok()?;
        answer.await.ok()
    }

    /// The node's id and table, to save for the next run.
    pub async fn saved(&self) -> Option<Saved> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Saved(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Makes an IPv4 and an IPv6 node one dual-stack node to the network:
    /// each answers queries that `want` the other's family (BEP 32) from
    /// the other's table, copied at once and then `every` ([`PAIR_EVERY`]
    /// is a good default). The task holds neither node alive; it ends when
    /// either stops.
    pub fn pair(&self, other: &Dht, every: Duration) -> tokio::task::JoinHandle<()> {
        let (a, b) = (self.commands.downgrade(), other.commands.downgrade());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(every);
            loop {
                every.tick().await;
                for (from, to) in [(&a, &b), (&b, &a)] {
                    let (Some(from), Some(to)) = (from.upgrade(), to.upgrade()) else {
                        return;
                    };
                    let (reply, answer) = oneshot::channel();
                    if from.send(Command::Saved(reply)).await.is_err() {
                        return;
                    }
                    let Ok(saved) = answer.await else { return };
                    if to.send(Command::OtherFamily(saved.nodes)).await.is_err() {
                        return;
                    }
                }
            }
        })
    }
}

/// How often paired nodes ([`Dht::pair`]) may copy each other's tables.
pub const PAIR_EVERY: Duration = Duration::from_secs(10);

async fn drive(
    mut node: Node,
    socket: Arc<UdpSocket>,
    mut packets: Option<mpsc::Receiver<(SocketAddr, Vec<u8>)>>,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut waiting: HashMap<LookupId, mpsc::UnboundedSender<Found>> = HashMap::new();
    // One byte more than a DHT packet: a longer datagram is seen as such.
    let mut buf = vec![0u8; MAX_PACKET + 1];
    loop {
        flush(&mut node, &socket, &mut waiting).await;
        let deadline = tokio::time::Instant::from_std(node.poll_timeout());
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { break };
                let now = Instant::now();
                match command {
                    Command::GetPeers { info_hash, announce, reply } => {
                        let lookup = node.get_peers(info_hash, announce, now);
                        waiting.insert(lookup, reply);
                    }
                    Command::AddNode(addr) => node.add_node(addr, now),
                    Command::Stats(reply) => {
                        let _ = reply.send((node.id(), node.stats()));
                    }
                    Command::Saved(reply) => {
                        let _ = reply.send(Saved { id: Some(node.id()), nodes: node.nodes() });
                    }
                    Command::OtherFamily(nodes) => node.set_other_family(nodes),
                }
            }
            received = recv(&socket, packets.as_mut(), &mut buf) => match received {
                Some((from, len)) => node.handle(Instant::now(), from, &buf[..len]),
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => node.handle_timeout(Instant::now()),
        }
    }
    tracing::debug!("DHT node on {:?} stopped", socket.local_addr());
}

/// The next datagram, copied into `buf`: from the channel if there is one,
/// else from the socket. `None` when the channel closed.
async fn recv(
    socket: &UdpSocket,
    packets: Option<&mut mpsc::Receiver<(SocketAddr, Vec<u8>)>>,
    buf: &mut [u8],
) -> Option<(SocketAddr, usize)> {
    match packets {
        Some(packets) => {
            let (from, packet) = packets.recv().await?;
            let len = packet.len().min(buf.len());
            buf[..len].copy_from_slice(&packet[..len]);
            Some((from, len))
        }
        None => loop {
            match socket.recv_from(buf).await {
                Ok((len, from)) => return Some((from, len)),
                // ICMP errors from earlier sends surface here on some
                // systems; they say nothing about the next datagram.
                Err(e) => {
                    tracing::trace!("DHT socket: {e}");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        },
    }
}

async fn flush(
    node: &mut Node,
    socket: &UdpSocket,
    waiting: &mut HashMap<LookupId, mpsc::UnboundedSender<Found>>,
) {
    while let Some(transmit) = node.poll_transmit() {
        if let Err(e) = socket.send_to(&transmit.packet, transmit.to).await {
            tracing::trace!("DHT send to {}: {e}", transmit.to);
        }
    }
    while let Some(event) = node.poll_event() {
        match event {
            Event::Peers { lookup, peers, .. } => {
                if let Some(reply) = waiting.get(&lookup)
                    && reply.send(Found::Peers(peers)).is_err()
                {
                    waiting.remove(&lookup);
                    node.cancel(lookup);
                }
            }
            Event::LookupDone(done) => {
                if let Some(reply) = waiting.remove(&done.lookup) {
                    let _ = reply.send(Found::Done(done));
                }
            }
            Event::IdChanged { id, external } => {
                tracing::info!("DHT id is now {id}, for our address {external}");
            }
        }
    }
}

//! [`Node`]: one DHT node as a sans-IO state machine.
//!
//! The caller feeds it datagrams ([`Node::handle`]) and the passing of time
//! ([`Node::handle_timeout`] at [`Node::poll_timeout`]), asks it for lookups
//! ([`Node::get_peers`], [`Node::find_node`]), and takes what it wants sent
//! ([`Node::poll_transmit`]) and what it learnt ([`Node::poll_event`]). It
//! never reads a clock or touches a socket.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::id::NodeId;
use crate::krpc::{Body, Message, NodeInfo, Query, Response, Want, code};
use crate::lookup::{Announce, Goal, Lookup};
use crate::store::{PeerStore, StoreLimits};
use crate::table::{Insert, K, Table, TableRules};
use crate::token::Tokens;

mod answer;
#[cfg(test)]
mod tests;

/// How a node runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Our id, kept whatever our address; `None` for one BEP 42 allows for
    /// our address as other nodes report it.
    pub id: Option<NodeId>,
    /// The id of an earlier run (from [`crate::Saved`]), used until BEP 42
    /// says another fits our address better; random without one.
    pub last_id: Option<NodeId>,
    /// The address family this node serves (one table per family, BEP 32).
    pub ipv6: bool,
    /// Where to start when the table is empty: resolved addresses of
    /// routers or known nodes. They are asked, but not kept in the table
    /// unless another node names them.
    pub bootstrap: Vec<SocketAddr>,
    /// Nodes known from an earlier run, asked first.
    pub known: Vec<NodeInfo>,
    /// BEP 43: ask, never answer, and tell others not to keep us.
    pub read_only: bool,
    /// At most one node per IP address in the table. Off for tests where
    /// many nodes share an address.
    pub one_node_per_ip: bool,
    /// Refuse nodes whose id BEP 42 does not allow for their IP (exempt
    /// addresses such as loopback always pass).
    pub enforce_secure_ids: bool,
    /// How long a query may go unanswered.
    pub query_timeout: Duration,
    /// After this, a lookup stops waiting for a query and asks another node.
    pub slow_after: Duration,
    /// Queries answered per second from one IP address; the rest are
    /// ignored.
    pub answers_per_ip: u32,
    /// Queries answered per second in all.
    pub answers_total: u32,
    /// Queries outstanding at most; lookups wait beyond it.
    pub max_outstanding: usize,
    /// Bounds of the announce store.
    pub store: StoreLimits,
    /// Seed of the node's random numbers (ids, tokens, transaction ids);
    /// `None` for one from the OS.
    pub seed: Option<u64>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            id: None,
            last_id: None,
            ipv6: false,
            bootstrap: Vec::new(),
            known: Vec::new(),
            read_only: false,
            one_node_per_ip: true,
            enforce_secure_ids: false,
            query_timeout: Duration::from_secs(4),
            slow_after: Duration::from_secs(1),
            answers_per_ip: 50,
            answers_total: 1000,
            max_outstanding: 1024,
            store: StoreLimits::default(),
            seed: None,
        }
    }
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub to: SocketAddr,
    /// The bencoded message.
    pub packet: Vec<u8>,
}

/// Names a lookup started by [`Node::get_peers`] or [`Node::find_node`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub u64);

/// What a node tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A `get_peers` lookup found peers not reported before.
    Peers {
        /// The lookup.
        lookup: LookupId,
        /// The torrent.
        info_hash: NodeId,
        /// The new peers.
        peers: Vec<SocketAddr>,
    },
    /// A lookup ended.
    LookupDone(LookupDone),
    /// Our id changed to one BEP 42 allows for the address other nodes see.
    IdChanged {
        /// The new id.
        id: NodeId,
        /// Our address as others see it.
        external: IpAddr,
    },
}

/// How a lookup went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupDone {
    /// The lookup.
    pub lookup: LookupId,
    /// What it sought.
    pub target: NodeId,
    /// Queries sent.
    pub queries: u32,
    /// Answers received.
    pub answers: u32,
    /// Distinct peers found (for `get_peers`).
    pub peers: usize,
    /// `announce_peer` queries sent.
    pub announced: usize,
    /// The k closest nodes that answered.
    pub closest: Vec<NodeInfo>,
    /// From start to end.
    pub elapsed: Duration,
}

/// Counters, for logs and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Nodes in the routing table.
    pub nodes: usize,
    /// Buckets of the routing table.
    pub buckets: usize,
    /// Lookups running.
    pub lookups: usize,
    /// Torrents with announced peers held.
    pub torrents: usize,
    /// Announced peers held.
    pub peers: usize,
    /// Datagrams received.
    pub received: u64,
    /// Datagrams that were not KRPC, or not for us.
    pub dropped: u64,
    /// Queries answered.
    pub answered: u64,
    /// Queries ignored by the rate limits.
    pub limited: u64,
    /// Datagrams sent.
    pub sent: u64,
}

/// Why a query of ours was sent.
#[derive(Clone, Copy, Debug)]
enum Purpose {
    /// Part of a lookup; `id` is `None` for a bootstrap address.
    Lookup {
        lookup: LookupId,
        id: Option<NodeId>,
    },
    /// Checking a table member gone quiet.
    Ping { id: Option<NodeId> },
    /// Checking a node we do not know (one that queried us, or one a peer
    /// named): few at a time, so strangers cannot crowd out lookups.
    Probe { id: Option<NodeId> },
    /// Announcing; the answer only proves the node alive.
    Announce { id: NodeId },
}

#[derive(Clone, Debug)]
struct Outstanding {
    to: SocketAddr,
    purpose: Purpose,
    sent: Instant,
    /// Past the slow grace: sent once more, and no longer holding up a
    /// lookup.
    slow: bool,
    /// The query, to send again.
    packet: Vec<u8>,
}

/// How often the table is looked after.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(5);
/// A bucket with no news for this long is refreshed by a lookup.
const REFRESH_AFTER: Duration = Duration::from_secs(15 * 60);
/// A bucket with room is refreshed this often: nodes may be missing from
/// it (a network that started all at once knows itself in patches).
const REFRESH_SPARSE_AFTER: Duration = Duration::from_secs(60);
/// Values in one `get_peers` answer at most. 50 compact IPv4 peers are
/// 400 bytes: the answer stays within a small datagram.
const VALUES_PER_ANSWER: usize = 50;
/// Pings to nodes we do not know, outstanding at most.
const MAX_PROBES: usize = 256;
/// A table with fewer than k nodes bootstraps again this often.
const REBOOTSTRAP_AFTER: Duration = Duration::from_secs(60);
/// Buckets filled by lookups when a node joins, at most.
const MAX_JOIN_REFRESHES: usize = 24;
/// Votes on our external address before BEP 42's id is taken.
const VOTES_NEEDED: u32 = 10;
/// The other family's nodes kept for answering `want` (a full table's
/// worth).
const MAX_OTHER_FAMILY: usize = 160 * K;

/// One DHT node, as a state machine.
///
/// Feed it datagrams ([`Node::handle`]) and the passing of time
/// ([`Node::handle_timeout`] at [`Node::poll_timeout`]), ask it for lookups
/// ([`Node::get_peers`], [`Node::find_node`]), and take what it wants sent
/// ([`Node::poll_transmit`]) and what it learnt ([`Node::poll_event`]). It
/// never reads a clock or touches a socket.
#[derive(Debug)]
pub struct Node {
    config: Config,
    rng: SmallRng,
    pub(crate) table: Table,
    tokens: Tokens,
    store: PeerStore,
    outstanding: BTreeMap<u16, Outstanding>,
    next_tid: u16,
    lookups: BTreeMap<LookupId, Lookup>,
    next_lookup: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_maintenance: Instant,
    window: (Instant, u32, HashMap<IpAddr, u32>),
    votes: HashMap<IpAddr, u32>,
    /// Hosts that voted since the last count.
    voters: std::collections::HashSet<IpAddr>,
    /// The bootstrap lookup, while it runs.
    bootstrapping: Option<LookupId>,
    /// When the last bootstrap ended.
    bootstrapped: Instant,
    /// Nodes of the other address family, from a node of that family
    /// beside us (see [`Node::set_other_family`]).
    other_family: Vec<NodeInfo>,
    stats: Stats,
}

impl Node {
    /// A node that starts bootstrapping at once (if it has anywhere to
    /// start from).
    pub fn new(config: Config, now: Instant) -> Node {
        let mut rng = match config.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        let id = config
            .id
            .or(config.last_id)
            .unwrap_or_else(|| NodeId::random(&mut rng));
        let rules = TableRules {
            one_node_per_ip: config.one_node_per_ip,
            enforce_secure_ids: config.enforce_secure_ids,
        };
        let mut node = Node {
            table: Table::new(id, rules, now),
            tokens: Tokens::new(now, &mut rng),
            store: PeerStore::new(config.store),
            outstanding: BTreeMap::new(),
            next_tid: rng.random(),
            lookups: BTreeMap::new(),
            next_lookup: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_maintenance: now + MAINTENANCE_EVERY,
            window: (now, 0, HashMap::new()),
            votes: HashMap::new(),
            voters: Default::default(),
            bootstrapping: None,
            bootstrapped: now,
            other_family: Vec::new(),
            stats: Stats::default(),
            rng,
            config,
        };
        node.bootstrap(now);
        node
    }

    /// Our id.
    pub fn id(&self) -> NodeId {
        self.table.own()
    }

    /// The routing table's nodes that have not failed us, for saving.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.table
            .entries()
            .filter(|e| e.failures < crate::table::BAD_AFTER_FAILURES)
            .map(|e| e.info)
            .collect()
    }

    /// Gives the node the table of a node of the other address family
    /// (its [`Node::nodes`]), so that it can answer queries that `want`
    /// both families (BEP 32) as a dual-stack node should. Replaces what
    /// an earlier call gave; nodes of our own family and any past a full
    /// table's worth are left out.
    pub fn set_other_family(&mut self, mut nodes: Vec<NodeInfo>) {
        let ipv6 = self.config.ipv6;
        nodes.retain(|n| n.addr.is_ipv6() != ipv6);
        nodes.truncate(MAX_OTHER_FAMILY);
        self.other_family = nodes;
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let (torrents, peers) = self.store.len();
        Stats {
            nodes: self.table.len(),
            buckets: self.table.buckets(),
            lookups: self.lookups.len(),
            torrents,
            peers,
            ..self.stats
        }
    }

    /// Looks for the nodes closest to our own id, from the table, the
    /// known nodes and the bootstrap addresses. Done at start; worth doing
    /// again when the table has emptied.
    pub fn bootstrap(&mut self, now: Instant) -> LookupId {
        let mut seeds: Vec<SocketAddr> = self.config.bootstrap.clone();
        seeds.retain(|a| a.is_ipv6() == self.config.ipv6);
        let mut nodes = self.table.closest(&self.id(), K, now);
        let ipv6 = self.config.ipv6;
        nodes.extend(
            self.config
                .known
                .iter()
                .filter(|n| n.addr.is_ipv6() == ipv6)
                .copied(),
        );
        let lookup = self.start(self.id(), Goal::FindNode, nodes, seeds, now);
        // With nobody to ask it has ended already; the next try comes after
        // the usual wait.
        if self.lookups.contains_key(&lookup) {
            self.bootstrapping = Some(lookup);
        } else {
            self.bootstrapping = None;
            self.bootstrapped = now;
        }
        lookup
    }

    /// Once the nodes near our id are known, fills the buckets farther
    /// than the closest of them with a lookup of a random id in each, as
    /// Kademlia does on joining. Without it a new node knows only its
    /// neighbourhood.
    fn refresh_far_buckets(&mut self, closest: Option<NodeId>, now: Instant) {
        let depth = closest.map_or(0, |id| self.id().common_prefix(&id));
        for prefix in 0..depth.clamp(1, MAX_JOIN_REFRESHES) {
            let target = self.id().random_at(prefix, &mut self.rng);
            self.find_node(target, now);
        }
    }

    /// Starts a `find_node` lookup for `target`.
    pub fn find_node(&mut self, target: NodeId, now: Instant) -> LookupId {
        let nodes = self.table.closest(&target, K, now);
        let seeds = self.seeds_if_few(nodes.len());
        self.start(target, Goal::FindNode, nodes, seeds, now)
    }

    /// Starts a `get_peers` lookup for `info_hash`; with `announce`, ends
    /// it by announcing to the closest nodes. Peers come as
    /// [`Event::Peers`], the end as [`Event::LookupDone`].
    pub fn get_peers(
        &mut self,
        info_hash: NodeId,
        announce: Option<Announce>,
        now: Instant,
    ) -> LookupId {
        let nodes = self.table.closest(&info_hash, K, now);
        let seeds = self.seeds_if_few(nodes.len());
        let lookup = self.start(info_hash, Goal::GetPeers { announce }, nodes, seeds, now);
        // Peers announced to this very node count too.
        let ours = self.store.peers(
            &info_hash,
            self.config.store.peers_per_torrent,
            &mut self.rng,
        );
        if let Some(l) = self.lookups.get_mut(&lookup) {
            let fresh = l.found(&ours);
            if !fresh.is_empty() {
                self.events.push_back(Event::Peers {
                    lookup,
                    info_hash,
                    peers: fresh,
                });
            }
        }
        lookup
    }

    fn seeds_if_few(&self, nodes: usize) -> Vec<SocketAddr> {
        if nodes >= K {
            return Vec::new();
        }
        self.config
            .bootstrap
            .iter()
            .copied()
            .filter(|a| a.is_ipv6() == self.config.ipv6)
            .collect()
    }

    fn start(
        &mut self,
        target: NodeId,
        goal: Goal,
        nodes: Vec<NodeInfo>,
        seeds: Vec<SocketAddr>,
        now: Instant,
    ) -> LookupId {
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        self.table.touch(&target, now);
        self.lookups
            .insert(id, Lookup::new(target, goal, nodes, seeds, now));
        self.advance(id, now);
        id
    }

    /// Stops a lookup; nothing more is reported of it.
    pub fn cancel(&mut self, lookup: LookupId) {
        self.lookups.remove(&lookup);
    }

    /// A node told us its DHT port (BEP 5's `port` message): ping it, and
    /// keep it if it answers.
    pub fn add_node(&mut self, addr: SocketAddr, now: Instant) {
        if addr.is_ipv6() == self.config.ipv6 && addr.port() != 0 && !self.table.contains_addr(addr)
        {
            self.probe(addr, None, now);
        }
    }

    /// Pings a node we do not know, unless too many such pings are out or
    /// one to its address already is.
    pub(crate) fn probe(&mut self, to: SocketAddr, id: Option<NodeId>, now: Instant) {
        let mut probes = 0;
        for o in self.outstanding.values() {
            if o.to.ip() == to.ip() {
                return;
            }
            if matches!(o.purpose, Purpose::Probe { .. }) {
                probes += 1;
            }
        }
        if probes >= MAX_PROBES || self.outstanding.len() >= self.config.max_outstanding {
            return;
        }
        let query = Query::Ping {
            id: self.table.own(),
        };
        self.send_query(to, query, Purpose::Probe { id }, now);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing learnt.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Instant {
        let mut next = self.next_maintenance;
        for o in self.outstanding.values() {
            let due = if o.slow {
                o.sent + self.config.query_timeout
            } else {
                o.sent + self.config.slow_after.min(self.config.query_timeout)
            };
            next = next.min(due);
        }
        next
    }

    /// Lets time pass: queries time out, lookups go on, the table is
    /// looked after.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timeout = self.config.query_timeout;
        let slow_after = self.config.slow_after;
        let mut expired = Vec::new();
        let mut resend = Vec::new();
        for (tid, o) in self.outstanding.iter_mut() {
            let age = now.saturating_duration_since(o.sent);
            if age >= timeout {
                expired.push(*tid);
            } else if age >= slow_after && !o.slow {
                // Once more: one lost datagram should cost a second, not
                // the whole timeout.
                o.slow = true;
                resend.push((o.to, o.packet.clone()));
                if let Purpose::Lookup {
                    lookup,
                    id: Some(_),
                } = o.purpose
                    && let Some(l) = self.lookups.get_mut(&lookup)
                {
                    l.slow(o.to);
                }
            }
        }
        for (to, packet) in resend {
            self.stats.sent += 1;
            self.transmits.push_back(Transmit { to, packet });
        }
        for tid in expired {
            if let Some(o) = self.outstanding.remove(&tid) {
                self.failed(o);
            }
        }
        let lookups: Vec<LookupId> = self.lookups.keys().copied().collect();
        for lookup in lookups {
            self.advance(lookup, now);
        }
        if now >= self.next_maintenance {
            self.next_maintenance = now + MAINTENANCE_EVERY;
            self.maintain(now);
        }
    }

    fn failed(&mut self, o: Outstanding) {
        let id = match o.purpose {
            Purpose::Lookup { lookup, id } => {
                if let Some(l) = self.lookups.get_mut(&lookup) {
                    l.failed(o.to, id.is_none());
                }
                id
            }
            Purpose::Ping { id } | Purpose::Probe { id } => id,
            Purpose::Announce { id } => Some(id),
        };
        if let Some(id) = id {
            self.table.failed(&NodeInfo { id, addr: o.to });
        }
    }

    fn maintain(&mut self, now: Instant) {
        let rng = &mut self.rng;
        self.tokens.rotate(now, rng);
        self.store.expire(now);
        if let Some(quiet) = self.table.quietest(now)
            && !self.outstanding.values().any(|o| o.to == quiet.addr)
        {
            self.ping(quiet.addr, Some(quiet.id), now);
        }
        let few = self.table.len() < K
            && self.bootstrapping.is_none()
            && now.saturating_duration_since(self.bootstrapped) >= REBOOTSTRAP_AFTER;
        if self.table.is_empty() && self.lookups.is_empty() || few {
            self.bootstrap(now);
        } else if let Some(prefix) =
            self.table
                .take_stale_bucket(now, REFRESH_AFTER, REFRESH_SPARSE_AFTER)
        {
            let target = self.id().random_at(prefix, &mut self.rng);
            self.find_node(target, now);
        }
    }

    /// Sends what a lookup may send now, or ends it.
    fn advance(&mut self, lookup_id: LookupId, now: Instant) {
        let Some(lookup) = self.lookups.get_mut(&lookup_id) else {
            return;
        };
        if self.outstanding.len() < self.config.max_outstanding {
            let target = lookup.target;
            let goal = lookup.goal;
            for (id, to) in lookup.next_queries() {
                let query = match goal {
                    Goal::FindNode => Query::FindNode {
                        id: self.table.own(),
                        target,
                        want: Want::default(),
                    },
                    Goal::GetPeers { .. } => Query::GetPeers {
                        id: self.table.own(),
                        info_hash: target,
                        want: Want::default(),
                    },
                };
                let purpose = Purpose::Lookup {
                    lookup: lookup_id,
                    id,
                };
                self.send_query(to, query, purpose, now);
            }
        }
        let Some(lookup) = self.lookups.get(&lookup_id) else {
            return;
        };
        if !lookup.is_done() {
            return;
        }
        let Some(lookup) = self.lookups.remove(&lookup_id) else {
            return;
        };
        let mut announced = 0;
        if let Goal::GetPeers {
            announce: Some(announce),
        } = lookup.goal
        {
            for (node, token) in lookup.announce_to() {
                let (port, implied_port) = match announce {
                    Announce::Port(port) => (port, false),
                    Announce::Implied => (0, true),
                };
                let query = Query::AnnouncePeer {
                    id: self.table.own(),
                    info_hash: lookup.target,
                    port,
                    implied_port,
                    token,
                };
                self.send_query(node.addr, query, Purpose::Announce { id: node.id }, now);
                announced += 1;
            }
        }
        self.events.push_back(Event::LookupDone(LookupDone {
            lookup: lookup_id,
            target: lookup.target,
            queries: lookup.queries,
            answers: lookup.answers,
            peers: lookup.peers_found(),
            announced,
            closest: lookup.closest_answered(),
            elapsed: now.saturating_duration_since(lookup.started),
        }));
        if self.bootstrapping == Some(lookup_id) {
            self.bootstrapping = None;
            self.bootstrapped = now;
            let closest = lookup.closest_answered().first().map(|n| n.id);
            self.refresh_far_buckets(closest, now);
        }
    }

    fn ping(&mut self, to: SocketAddr, id: Option<NodeId>, now: Instant) {
        if self.outstanding.len() >= self.config.max_outstanding {
            return;
        }
        let query = Query::Ping {
            id: self.table.own(),
        };
        self.send_query(to, query, Purpose::Ping { id }, now);
    }

    fn send_query(&mut self, to: SocketAddr, query: Query, purpose: Purpose, now: Instant) {
        let mut tid = self.next_tid;
        while self.outstanding.contains_key(&tid) {
            tid = tid.wrapping_add(1);
        }
        self.next_tid = tid.wrapping_add(1);
        let message = Message {
            tid: tid.to_be_bytes().to_vec(),
            body: Body::Query(query),
            ip: None,
            read_only: self.config.read_only,
        };
        let packet = message.encode();
        self.outstanding.insert(
            tid,
            Outstanding {
                to,
                purpose,
                sent: now,
                slow: false,
                packet: packet.clone(),
            },
        );
        self.stats.sent += 1;
        self.transmits.push_back(Transmit { to, packet });
    }

    fn send(&mut self, to: SocketAddr, message: &Message) {
        self.stats.sent += 1;
        self.transmits.push_back(Transmit {
            to,
            packet: message.encode(),
        });
    }

    /// A datagram arrived from `from`.
    pub fn handle(&mut self, now: Instant, from: SocketAddr, packet: &[u8]) {
        self.stats.received += 1;
        let message = match Message::decode(packet) {
            Ok(message) => message,
            Err(crate::krpc::DecodeError::Arguments { tid, .. }) => {
                if !self.config.read_only && self.may_answer(from.ip(), now) {
                    self.answer_error(from, tid, code::PROTOCOL, "invalid arguments");
                }
                return;
            }
            Err(_) => {
                self.stats.dropped += 1;
                return;
            }
        };
        match message.body {
            Body::Query(query) => self.on_query(now, from, message.tid, message.read_only, query),
            Body::Response(response) => self.on_response(
                now,
                from,
                &message.tid,
                message.ip,
                message.read_only,
                response,
            ),
            Body::Error(_) => self.on_error(now, from, &message.tid),
        }
    }

    /// The outstanding query a message answers, if it comes from where the
    /// query went.
    fn take_outstanding(&mut self, from: SocketAddr, tid: &[u8]) -> Option<Outstanding> {
        let tid = u16::from_be_bytes(<[u8; 2]>::try_from(tid).ok()?);
        match self.outstanding.get(&tid) {
            Some(o) if o.to == from => self.outstanding.remove(&tid),
            _ => None,
        }
    }

    fn on_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tid: &[u8],
        ip: Option<SocketAddr>,
        read_only: bool,
        response: Response,
    ) {
        let Some(o) = self.take_outstanding(from, tid) else {
            self.stats.dropped += 1;
            return;
        };
        let info = NodeInfo {
            id: response.id,
            addr: from,
        };
        let expected = match o.purpose {
            Purpose::Lookup { id, .. } | Purpose::Ping { id } | Purpose::Probe { id } => id,
            Purpose::Announce { id } => Some(id),
        };
        if expected.is_some_and(|id| id != response.id) {
            // Another node at that address now: it answers, but the old id
            // is gone and the new one must earn its place.
            if let Some(old) = expected {
                self.table.failed(&NodeInfo {
                    id: old,
                    addr: from,
                });
            }
        }
        let router = matches!(o.purpose, Purpose::Lookup { id: None, .. })
            && self.config.bootstrap.contains(&from);
        if !read_only
            && !router
            && let Insert::Full { ping: Some(quiet) } = self.table.answered(info, now)
            && !self.outstanding.values().any(|o| o.to == quiet.addr)
        {
            self.ping(quiet.addr, Some(quiet.id), now);
        }
        if let Some(ip) = ip {
            self.vote(ip.ip(), from.ip(), now);
        }
        if let Purpose::Lookup { lookup, id } = o.purpose {
            let nodes = if self.config.ipv6 {
                response.nodes6
            } else {
                response.nodes
            };
            let nodes: Vec<NodeInfo> = nodes
                .into_iter()
                .filter(|n| n.id != self.table.own())
                .collect();
            let Some(l) = self.lookups.get_mut(&lookup) else {
                return;
            };
            let fresh = l.answered(info, id.is_none(), nodes, &response.values, response.token);
            if !fresh.is_empty() {
                self.events.push_back(Event::Peers {
                    lookup,
                    info_hash: l.target,
                    peers: fresh,
                });
            }
            self.advance(lookup, now);
        }
    }

    fn on_error(&mut self, now: Instant, from: SocketAddr, tid: &[u8]) {
        let Some(o) = self.take_outstanding(from, tid) else {
            self.stats.dropped += 1;
            return;
        };
        if let Purpose::Lookup { lookup, id } = o.purpose {
            if let Some(l) = self.lookups.get_mut(&lookup) {
                l.failed(from, id.is_none());
            }
            self.advance(lookup, now);
        }
    }

    /// BEP 42: once enough answers agree on our address and our id does
    /// not fit it, take one that does (unless the id was given).
    fn vote(&mut self, ip: IpAddr, voter: IpAddr, now: Instant) {
        if self.config.id.is_some() || crate::id::is_exempt(ip) {
            return;
        }
        // One vote per voting host, or one host with many ports would
        // choose our id.
        if self.voters.len() >= 64 || !self.voters.insert(voter) {
            return;
        }
        if self.votes.len() < 64 || self.votes.contains_key(&ip) {
            *self.votes.entry(ip).or_insert(0) += 1;
        }
        let total: u32 = self.votes.values().sum();
        if total < VOTES_NEEDED {
            return;
        }
        let Some((&external, _)) = self.votes.iter().max_by_key(|(_, n)| **n) else {
            return;
        };
        self.votes.clear();
        self.voters.clear();
        if self.id().is_secure_for(external) {
            return;
        }
        let id = NodeId::secure(external, &mut self.rng);
        let nodes: Vec<NodeInfo> = self.table.entries().map(|e| e.info).collect();
        let rules = TableRules {
            one_node_per_ip: self.config.one_node_per_ip,
            enforce_secure_ids: self.config.enforce_secure_ids,
        };
        self.table = Table::new(id, rules, now);
        for node in nodes {
            self.table.answered(node, now);
        }
        self.events.push_back(Event::IdChanged { id, external });
        self.bootstrap(now);
    }
}

//! The routing table: k-buckets of nodes that have answered us (BEP 5).
//!
//! Bucket `i` holds nodes whose ids share exactly `i` leading bits with
//! ours; the last bucket holds every node closer than that, and splits when
//! it fills, up to 160 buckets. That is BEP 5's table, where only the bucket
//! covering our own id may split, kept as a list.
//!
//! Only nodes that answered one of our queries get in: a node that merely
//! queries us could be anyone at any address. A full bucket keeps its good
//! nodes; a newcomer waits in the bucket's replacement cache and takes the
//! place of the first node that fails twice in a row.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::id::NodeId;
use crate::krpc::NodeInfo;

/// Nodes per bucket (BEP 5's k).
pub const K: usize = 8;
/// A node not heard from for this long is questionable (BEP 5).
pub const QUESTIONABLE_AFTER: Duration = Duration::from_secs(15 * 60);
/// Queries a node may fail in a row before it is bad.
pub const BAD_AFTER_FAILURES: u8 = 2;
const MAX_BUCKETS: usize = 160;

/// How a node stands, in BEP 5's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// It answered us lately, or answered once and queried us lately.
    Good,
    /// Nothing heard for [`QUESTIONABLE_AFTER`].
    Questionable,
    /// It failed [`BAD_AFTER_FAILURES`] queries in a row.
    Bad,
}

/// One node in the table.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its id and address.
    pub info: NodeInfo,
    /// The last time it answered or queried us.
    pub last_seen: Instant,
    /// Queries it failed since its last answer.
    pub failures: u8,
    /// Whether its id is the one BEP 42 gives its IP.
    pub secure: bool,
}

impl Entry {
    /// Its liveness at `now`.
    pub fn liveness(&self, now: Instant) -> Liveness {
        if self.failures >= BAD_AFTER_FAILURES {
            Liveness::Bad
        } else if now.saturating_duration_since(self.last_seen) < QUESTIONABLE_AFTER {
            Liveness::Good
        } else {
            Liveness::Questionable
        }
    }
}

#[derive(Clone, Debug)]
struct Bucket {
    nodes: Vec<Entry>,
    /// Nodes that answered while the bucket was full, newest last.
    replacements: VecDeque<Entry>,
    /// The last time a node of the bucket answered, or a lookup went there.
    refreshed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            nodes: Vec::with_capacity(K),
            replacements: VecDeque::new(),
            refreshed: now,
        }
    }
}

/// What the table did with a node that answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// It was there already, and is fresh again.
    Refreshed,
    /// It took a place.
    Added,
    /// Its bucket is full: it waits as a replacement. If a node of that
    /// bucket has gone quiet, `ping` names it so the caller checks it is
    /// still there.
    Full {
        /// The longest-quiet questionable node of the bucket, if any.
        ping: Option<NodeInfo>,
    },
    /// Not taken: our own id, another id at a known address, or another
    /// node from an address that already has one.
    Refused,
}

/// The table's rules.
#[derive(Clone, Copy, Debug)]
pub struct TableRules {
    /// At most one node per IP address (and per /64 for IPv6): a host
    /// cannot fill the table with ids of its choosing.
    pub one_node_per_ip: bool,
    /// Refuse nodes whose id BEP 42 does not allow for their IP.
    pub enforce_secure_ids: bool,
}

/// A routing table.
#[derive(Clone, Debug)]
pub struct Table {
    own: NodeId,
    rules: TableRules,
    buckets: Vec<Bucket>,
}

impl Table {
    /// An empty table around `own`.
    pub fn new(own: NodeId, rules: TableRules, now: Instant) -> Table {
        Table {
            own,
            rules,
            buckets: vec![Bucket::new(now)],
        }
    }

    /// Our id.
    pub fn own(&self) -> NodeId {
        self.own
    }

    /// The number of nodes in the table.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    /// Whether the table has no node.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.nodes.is_empty())
    }

    /// The number of buckets.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    fn index(&self, id: &NodeId) -> usize {
        self.own.common_prefix(id).min(self.buckets.len() - 1)
    }

    /// Every node, for saving.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| b.nodes.iter())
    }

    /// The node with this id, if in the table.
    pub fn get(&self, id: &NodeId) -> Option<&Entry> {
        self.buckets[self.index(id)]
            .nodes
            .iter()
            .find(|e| e.info.id == *id)
    }

    /// Whether `addr` belongs to a node of the table.
    pub fn contains_addr(&self, addr: SocketAddr) -> bool {
        self.entries().any(|e| e.info.addr == addr)
    }

    /// Another node of the table on `info`'s host. Only for global
    /// addresses: on a LAN or loopback, many nodes share one address
    /// without anyone attacking.
    fn host_taken(&self, info: &NodeInfo) -> bool {
        self.rules.one_node_per_ip
            && !crate::id::is_exempt(info.addr.ip())
            && self
                .entries()
                .any(|e| e.info.id != info.id && same_host(e.info.addr.ip(), info.addr.ip()))
    }

    /// Whether a node that answered would get a place (used to decide
    /// whether a node that queried us is worth a ping).
    pub fn would_take(&self, info: &NodeInfo, now: Instant) -> bool {
        if info.id == self.own || self.host_taken(info) {
            return false;
        }
        if self.rules.enforce_secure_ids && !info.id.is_secure_for(info.addr.ip()) {
            return false;
        }
        let index = self.index(&info.id);
        let bucket = &self.buckets[index];
        bucket.nodes.iter().any(|e| e.info.id == info.id)
            || bucket.nodes.len() < K
            || (index == self.buckets.len() - 1 && self.buckets.len() < MAX_BUCKETS)
            || bucket
                .nodes
                .iter()
                .any(|e| e.liveness(now) != Liveness::Good)
    }

    /// A node answered one of our queries.
    pub fn answered(&mut self, info: NodeInfo, now: Instant) -> Insert {
        if info.id == self.own {
            return Insert::Refused;
        }
        let secure = info.id.is_secure_for(info.addr.ip());
        if self.rules.enforce_secure_ids && !secure {
            return Insert::Refused;
        }
        let index = self.index(&info.id);
        if let Some(entry) = self.buckets[index]
            .nodes
            .iter_mut()
            .find(|e| e.info.id == info.id)
        {
            if entry.info.addr != info.addr {
                // An id moving to another address is how a table is poisoned.
                return Insert::Refused;
            }
            entry.last_seen = now;
            entry.failures = 0;
            self.buckets[index].refreshed = now;
            return Insert::Refreshed;
        }
        if self.host_taken(&info) || self.contains_addr(info.addr) {
            return Insert::Refused;
        }
        let entry = Entry {
            info,
            last_seen: now,
            failures: 0,
            secure,
        };
        loop {
            let index = self.index(&info.id);
            // Whatever happens below, it is no longer only a replacement.
            self.buckets[index]
                .replacements
                .retain(|e| e.info.id != info.id && e.info.addr != info.addr);
            let splittable = index == self.buckets.len() - 1 && self.buckets.len() < MAX_BUCKETS;
            let bucket = &mut self.buckets[index];
            if bucket.nodes.len() < K {
                bucket.nodes.push(entry);
                bucket.refreshed = now;
                return Insert::Added;
            }
            if let Some(bad) = bucket
                .nodes
                .iter()
                .position(|e| e.liveness(now) == Liveness::Bad)
            {
                bucket.nodes[bad] = entry;
                bucket.refreshed = now;
                return Insert::Added;
            }
            if splittable {
                self.split(now);
                continue;
            }
            // BEP 42: a node whose id fits its address beats one whose
            // does not, once that one has gone quiet.
            if secure
                && let Some(weak) = bucket
                    .nodes
                    .iter()
                    .position(|e| !e.secure && e.liveness(now) != Liveness::Good)
            {
                bucket.nodes[weak] = entry;
                return Insert::Added;
            }
            bucket.replacements.retain(|e| e.info.id != info.id);
            if bucket.replacements.len() == K {
                bucket.replacements.pop_front();
            }
            bucket.replacements.push_back(entry);
            let ping = bucket
                .nodes
                .iter()
                .filter(|e| e.liveness(now) == Liveness::Questionable)
                .min_by_key(|e| e.last_seen)
                .map(|e| e.info);
            return Insert::Full { ping };
        }
    }

    fn split(&mut self, now: Instant) {
        let depth = self.buckets.len();
        let own = self.own;
        let last = self.buckets.last_mut().expect("a table has a bucket");
        let (deeper, stay): (Vec<Entry>, Vec<Entry>) = last
            .nodes
            .drain(..)
            .partition(|e| own.common_prefix(&e.info.id) >= depth);
        last.nodes = stay;
        let (deeper_spares, spares): (VecDeque<Entry>, VecDeque<Entry>) = last
            .replacements
            .drain(..)
            .partition(|e| own.common_prefix(&e.info.id) >= depth);
        last.replacements = spares;
        let mut next = Bucket::new(now);
        next.nodes = deeper;
        next.replacements = deeper_spares;
        self.buckets.push(next);
    }

    /// A node we queried there sent us a query: it is alive.
    pub fn heard_from(&mut self, info: &NodeInfo, now: Instant) {
        let index = self.index(&info.id);
        if let Some(entry) = self.buckets[index]
            .nodes
            .iter_mut()
            .find(|e| e.info == *info)
        {
            entry.last_seen = now;
        }
    }

    /// A node failed to answer. A node that is bad gives its place to the
    /// newest replacement, if there is one.
    pub fn failed(&mut self, info: &NodeInfo) {
        let index = self.index(&info.id);
        let bucket = &mut self.buckets[index];
        let Some(position) = bucket.nodes.iter().position(|e| e.info == *info) else {
            return;
        };
        let entry = &mut bucket.nodes[position];
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures >= BAD_AFTER_FAILURES {
            while let Some(replacement) = bucket.replacements.pop_back() {
                let already = bucket.nodes.iter().any(|e| {
                    e.info.id == replacement.info.id || e.info.addr == replacement.info.addr
                });
                if !already {
                    bucket.nodes[position] = replacement;
                    break;
                }
            }
        }
    }

    /// Up to `count` nodes closest to `target` that are not bad, closest
    /// first.
    pub fn closest(&self, target: &NodeId, count: usize, now: Instant) -> Vec<NodeInfo> {
        let mut nodes: Vec<&Entry> = self
            .entries()
            .filter(|e| e.liveness(now) != Liveness::Bad)
            .collect();
        nodes.sort_unstable_by_key(|e| target.distance(&e.info.id));
        nodes.into_iter().take(count).map(|e| e.info).collect()
    }

    /// The questionable node quiet the longest, to ping.
    pub fn quietest(&self, now: Instant) -> Option<NodeInfo> {
        self.entries()
            .filter(|e| e.liveness(now) == Liveness::Questionable)
            .min_by_key(|e| e.last_seen)
            .map(|e| e.info)
    }

    /// The prefix length of a bucket to refresh, marked refreshed: the
    /// one refreshed least lately, if that was more than `age` ago (`short`
    /// for a bucket with room, where nodes may be missing).
    pub fn take_stale_bucket(
        &mut self,
        now: Instant,
        age: Duration,
        short: Duration,
    ) -> Option<usize> {
        let (index, bucket) = self
            .buckets
            .iter_mut()
            .enumerate()
            .filter(|(_, b)| {
                let wait = if b.nodes.len() < K { short } else { age };
                now.saturating_duration_since(b.refreshed) >= wait
            })
            .min_by_key(|(_, b)| b.refreshed)?;
        bucket.refreshed = now;
        Some(index)
    }

    /// Marks the bucket `target` falls in as refreshed: a lookup went there.
    pub fn touch(&mut self, target: &NodeId, now: Instant) {
        let index = self.index(target);
        self.buckets[index].refreshed = now;
    }
}

/// Two addresses are one host: the same IPv4 address, or the same IPv6 /64.
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a == b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a.segments()[..4] == b.segments()[..4],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const OPEN: TableRules = TableRules {
        one_node_per_ip: false,
        enforce_secure_ids: false,
    };

    fn info(id: NodeId, n: u32) -> NodeInfo {
        NodeInfo {
            id,
            addr: SocketAddr::new(Ipv4Addr::from(0x0a00_0000 + n).into(), 6881),
        }
    }

    /// The table's invariants: every node is in the bucket its distance
    /// puts it in, no bucket holds more than k, no id or address twice.
    fn check(table: &Table) {
        let mut ids = std::collections::HashSet::new();
        let mut addrs = std::collections::HashSet::new();
        for (i, bucket) in table.buckets.iter().enumerate() {
            assert!(bucket.nodes.len() <= K);
            assert!(bucket.replacements.len() <= K);
            for e in &bucket.nodes {
                assert_eq!(table.index(&e.info.id), i);
                assert!(ids.insert(e.info.id), "id twice");
                assert!(addrs.insert(e.info.addr), "address twice");
                assert_ne!(e.info.id, table.own);
            }
        }
        assert!(table.buckets.len() <= MAX_BUCKETS);
    }

    proptest! {
        #[test]
        fn invariants_hold_under_random_inserts_and_failures(
            ops in proptest::collection::vec((any::<[u8; 20]>(), 0u32..300, any::<bool>(), 0u64..3600), 1..400)
        ) {
            let start = Instant::now();
            let mut table = Table::new(NodeId([0x55; 20]), OPEN, start);
            for (raw, n, fail, secs) in ops {
                let now = start + Duration::from_secs(secs);
                let node = info(NodeId(raw), n);
                if fail {
                    table.failed(&node);
                } else {
                    table.answered(node, now);
                }
                check(&table);
            }
        }
    }

    #[test]
    fn buckets_split_around_our_own_id_only() {
        let now = Instant::now();
        let own = NodeId([0; 20]);
        let mut table = Table::new(own, OPEN, now);
        let mut rng = rand::rng();
        // 40 nodes far away (first bit differs): one bucket of 8 holds them
        // all, the rest wait as replacements.
        for n in 0..40 {
            let mut id = NodeId::random(&mut rng);
            id.0[0] |= 0x80;
            table.answered(info(id, n), now);
        }
        assert_eq!(table.buckets[0].nodes.len(), K);
        // Nodes ever closer to us keep splitting the last bucket.
        for depth in 1..30 {
            let id = own.random_at(depth, &mut rng);
            assert_eq!(
                table.answered(info(id, 1000 + depth as u32), now),
                Insert::Added
            );
        }
        check(&table);
        // One node per depth: the last bucket holds the deepest 8, every
        // shallower depth got its own bucket.
        assert_eq!(table.buckets(), 30 - K + 1);
        assert_eq!(table.len(), K + 29);
    }

    #[test]
    fn a_full_bucket_keeps_good_nodes_and_a_bad_one_gives_way() {
        let now = Instant::now();
        let mut table = Table::new(NodeId([0; 20]), OPEN, now);
        let far = |n: u8| {
            let mut id = NodeId([n; 20]);
            id.0[0] = 0x80 | n;
            id
        };
        for n in 0..K as u8 {
            table.answered(info(far(n), u32::from(n)), now);
        }
        // Split the last bucket away so bucket 0 is a full, unsplittable one.
        table.answered(
            info(NodeId([0; 20]).random_at(5, &mut rand::rng()), 99),
            now,
        );
        let newcomer = info(far(50), 50);
        assert_eq!(table.answered(newcomer, now), Insert::Full { ping: None });
        // After 15 minutes of silence, the quietest node is to be pinged.
        let later = now + QUESTIONABLE_AFTER;
        assert!(matches!(
            table.answered(info(far(51), 51), later),
            Insert::Full { ping: Some(_) }
        ));
        // A node that fails twice is replaced by the newest replacement.
        let victim = info(far(3), 3);
        table.failed(&victim);
        assert!(table.get(&victim.id).is_some());
        table.failed(&victim);
        assert!(table.get(&victim.id).is_none());
        assert!(table.get(&far(51)).is_some());
        check(&table);
    }

    #[test]
    fn one_host_gets_one_place_and_ids_do_not_move() {
        let now = Instant::now();
        let rules = TableRules {
            one_node_per_ip: true,
            enforce_secure_ids: false,
        };
        let mut table = Table::new(NodeId([0; 20]), rules, now);
        // A global address: on a LAN or loopback the rule does not apply.
        let a = NodeInfo {
            id: NodeId([1; 20]),
            addr: "198.51.100.7:6881".parse().expect("addr"),
        };
        assert_eq!(table.answered(a, now), Insert::Added);
        let lan = info(NodeId([3; 20]), 5);
        let lan_again = NodeInfo {
            id: NodeId([4; 20]),
            addr: SocketAddr::new(lan.addr.ip(), 7000),
        };
        assert_eq!(table.answered(lan, now), Insert::Added);
        assert_eq!(table.answered(lan_again, now), Insert::Added);
        let same_host = NodeInfo {
            id: NodeId([2; 20]),
            addr: SocketAddr::new(a.addr.ip(), 7000),
        };
        assert_eq!(table.answered(same_host, now), Insert::Refused);
        let moved = NodeInfo {
            id: a.id,
            addr: "198.51.100.8:6881".parse().expect("addr"),
        };
        assert_eq!(table.answered(moved, now), Insert::Refused);
        assert_eq!(
            table.answered(info(NodeId([0; 20]), 3), now),
            Insert::Refused
        );
        assert_eq!(table.len(), 3);
    }
}

//! A simulated network of nodes in virtual time: datagrams take a random
//! latency and some are lost. No sockets, no clock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::lookup::Announce;
use crate::node::{Config, Event, LookupDone, LookupId, Node};
use crate::{NodeId, NodeInfo};

/// A datagram in flight: arrival, sequence (for a stable order), sender,
/// receiving node, bytes.
type Datagram = (Instant, u64, SocketAddr, usize, Vec<u8>);

pub(crate) struct Sim {
    pub(crate) nodes: Vec<Node>,
    pub(crate) addrs: Vec<SocketAddr>,
    by_addr: HashMap<SocketAddr, usize>,
    wire: BinaryHeap<Reverse<Datagram>>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    seq: u64,
    pub(crate) now: Instant,
    rng: SmallRng,
    pub(crate) loss: f64,
    pub(crate) delivered: u64,
    pub(crate) events: Vec<(usize, Event)>,
}

pub(crate) fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::from(0x0a00_0000 + i as u32 + 1).into(), 6881)
}

impl Sim {
    pub(crate) fn new(seed: u64) -> Sim {
        Sim {
            nodes: Vec::new(),
            addrs: Vec::new(),
            by_addr: HashMap::new(),
            wire: BinaryHeap::new(),
            timers: BinaryHeap::new(),
            seq: 0,
            now: Instant::now(),
            rng: SmallRng::seed_from_u64(seed),
            loss: 0.0,
            delivered: 0,
            events: Vec::new(),
        }
    }

    /// Adds a node that bootstraps from `bootstrap` (indices of nodes).
    pub(crate) fn add(&mut self, bootstrap: &[usize], tweak: impl FnOnce(&mut Config)) -> usize {
        let i = self.nodes.len();
        let mut config = Config {
            seed: Some(self.rng.random()),
            bootstrap: bootstrap.iter().map(|&b| self.addrs[b]).collect(),
            ..Config::default()
        };
        tweak(&mut config);
        let node = Node::new(config, self.now);
        self.nodes.push(node);
        self.addrs.push(addr(i));
        self.by_addr.insert(addr(i), i);
        self.flush(i);
        i
    }

    /// Sends what node `i` has to send and notes its next timer.
    pub(crate) fn flush(&mut self, i: usize) {
        let alive = self.by_addr.contains_key(&self.addrs[i]);
        while let Some(t) = self.nodes[i].poll_transmit() {
            let Some(&to) = self.by_addr.get(&t.to) else {
                continue;
            };
            if !alive {
                continue;
            }
            if self.rng.random_bool(self.loss) {
                continue;
            }
            let latency = Duration::from_millis(self.rng.random_range(5..80));
            self.seq += 1;
            self.wire.push(Reverse((
                self.now + latency,
                self.seq,
                self.addrs[i],
                to,
                t.packet,
            )));
        }
        while let Some(event) = self.nodes[i].poll_event() {
            self.events.push((i, event));
        }
        self.timers.push(Reverse((self.nodes[i].poll_timeout(), i)));
    }

    /// Runs until `until` in virtual time.
    pub(crate) fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        self.run_until(end, |_| false);
    }

    /// Runs until `done` holds or `end` passes; whether `done` held.
    pub(crate) fn run_until(&mut self, end: Instant, mut done: impl FnMut(&Sim) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let next_packet = self.wire.peek().map(|Reverse(p)| p.0);
            let next_timer = self.timers.peek().map(|Reverse(t)| t.0);
            let next = match (next_packet, next_timer) {
                (Some(p), Some(t)) => p.min(t),
                (Some(p), None) => p,
                (None, Some(t)) => t,
                (None, None) => return false,
            };
            if next > end {
                self.now = end;
                return false;
            }
            self.now = self.now.max(next);
            if next_packet == Some(next) {
                let Some(Reverse((_, _, from, to, packet))) = self.wire.pop() else {
                    continue;
                };
                self.delivered += 1;
                self.nodes[to].handle(self.now, from, &packet);
                self.flush(to);
            } else {
                let Some(Reverse((at, i))) = self.timers.pop() else {
                    continue;
                };
                // Only the newest timer of a node counts.
                if self.nodes[i].poll_timeout() == at {
                    self.nodes[i].handle_timeout(self.now);
                    self.flush(i);
                }
            }
        }
    }

    /// Runs node `i`'s lookup to its end and returns how it went.
    pub(crate) fn finish(&mut self, i: usize, lookup: LookupId) -> Option<LookupDone> {
        self.flush(i);
        let end = self.now + Duration::from_secs(120);
        let found = |sim: &Sim| {
            sim.events
                .iter()
                .any(|(n, e)| *n == i && matches!(e, Event::LookupDone(d) if d.lookup == lookup))
        };
        self.run_until(end, found);
        self.events.iter().find_map(|(n, e)| match e {
            Event::LookupDone(d) if *n == i && d.lookup == lookup => Some(d.clone()),
            _ => None,
        })
    }

    pub(crate) fn get_peers(
        &mut self,
        i: usize,
        hash: NodeId,
        announce: Option<Announce>,
    ) -> LookupId {
        let now = self.now;
        self.nodes[i].get_peers(hash, announce, now)
    }

    /// The peers node `i` was told of for `lookup`.
    pub(crate) fn peers(&self, i: usize, lookup: LookupId) -> Vec<SocketAddr> {
        self.events
            .iter()
            .filter_map(|(n, e)| match e {
                Event::Peers {
                    lookup: l, peers, ..
                } if *n == i && *l == lookup => Some(peers.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// The `count` nodes truly closest to `target`, from every node's id.
    pub(crate) fn truly_closest(&self, target: &NodeId, count: usize) -> Vec<NodeInfo> {
        let mut all: Vec<NodeInfo> = self
            .nodes
            .iter()
            .zip(&self.addrs)
            .map(|(n, a)| NodeInfo {
                id: n.id(),
                addr: *a,
            })
            .collect();
        all.sort_by_key(|n| target.distance(&n.id));
        all.truncate(count);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::K;

    /// 1,000 nodes join one after another through the first; then lookups
    /// from random nodes find the true closest nodes, and a peer announced
    /// by one node is found by others.
    #[test]
    fn a_thousand_nodes_converge_and_find_what_was_announced() {
        let mut sim = Sim::new(42);
        sim.loss = 0.02;
        sim.add(&[], |_| {});
        for _ in 1..1000 {
            sim.add(&[0], |_| {});
            sim.run_for(Duration::from_millis(20));
        }
        sim.run_for(Duration::from_secs(30));
        let sizes: Vec<usize> = sim.nodes.iter().map(|n| n.stats().nodes).collect();
        let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
        assert!(
            sizes.iter().all(|&s| s >= K),
            "every node knows k nodes: {:?}",
            sizes.iter().min()
        );

        let mut rng = SmallRng::seed_from_u64(9);
        let mut messages = Vec::new();
        let mut times = Vec::new();
        let mut exact = 0;
        let mut all_hits = Vec::new();
        for _ in 0..30 {
            let from = rng.random_range(0..1000);
            let target = NodeId::random(&mut rng);
            let lookup = sim.nodes[from].find_node(target, sim.now);
            let done = sim.finish(from, lookup).expect("lookup ends");
            let want: Vec<NodeId> = sim.truly_closest(&target, K).iter().map(|n| n.id).collect();
            let got: Vec<NodeId> = done.closest.iter().map(|n| n.id).collect();
            let hits = got.iter().filter(|id| want.contains(id)).count();
            all_hits.push(hits);
            exact += usize::from(hits == K);
            messages.push(done.queries);
            times.push(done.elapsed);
        }
        messages.sort();
        times.sort();
        assert!(
            exact >= 25,
            "{exact} of 30 lookups found exactly the k closest"
        );

        // A node announces; others look and find it.
        let hash = NodeId::random(&mut rng);
        let lookup = sim.get_peers(7, hash, Some(Announce::Port(7777)));
        let done = sim.finish(7, lookup).expect("announce ends");
        assert!(done.announced >= K - 1, "announced to {}", done.announced);
        let peer = SocketAddr::new(sim.addrs[7].ip(), 7777);
        for seeker in [100, 500, 999] {
            let lookup = sim.get_peers(seeker, hash, None);
            sim.finish(seeker, lookup).expect("get_peers ends");
            assert_eq!(sim.peers(seeker, lookup), vec![peer]);
        }
        eprintln!(
            "1000 nodes, 2% loss: mean table {mean:.0} nodes; find_node median {} queries, {:?}; p90 {} queries, {:?}",
            messages[15], times[15], messages[27], times[27]
        );
    }

    /// Nodes that stop answering are found out and replaced, and lookups
    /// still end when a third of the network is gone.
    #[test]
    fn lookups_end_when_nodes_die() {
        let mut sim = Sim::new(5);
        sim.add(&[], |_| {});
        for _ in 1..200 {
            sim.add(&[0], |_| {});
            sim.run_for(Duration::from_millis(20));
        }
        sim.run_for(Duration::from_secs(10));
        // Kill a third: they drop everything from now on.
        let dead: Vec<SocketAddr> = (100..166).map(addr).collect();
        for a in &dead {
            sim.by_addr.remove(a);
        }
        let target = NodeId([0x42; 20]);
        let lookup = sim.nodes[10].find_node(target, sim.now);
        let done = sim.finish(10, lookup).expect("ends despite the dead");
        assert!(done.closest.iter().all(|n| !dead.contains(&n.addr)));
        assert_eq!(done.closest.len(), K);
        // After the questionable period, pings find the dead out.
        sim.run_for(crate::table::QUESTIONABLE_AFTER + Duration::from_secs(600));
        let remaining = sim.nodes[10]
            .nodes()
            .iter()
            .filter(|n| dead.contains(&n.addr))
            .count();
        assert_eq!(remaining, 0, "dead nodes still in the table");
    }
}

#[cfg(test)]
mod hubless {
    use super::*;
    use crate::table::K;

    /// Without a router everyone knows: each node joins through a random
    /// earlier one, all at the same moment, so that each first knows only
    /// a patch of the network. Five minutes later lookups converge.
    #[test]
    fn nodes_that_join_through_random_others_still_converge() {
        let mut sim = Sim::new(77);
        let mut rng = SmallRng::seed_from_u64(78);
        sim.add(&[], |_| {});
        for i in 1..300 {
            let from = rng.random_range(0..i);
            sim.add(&[from], |_| {});
        }
        // Patchy at first; refreshes of buckets with room mend it.
        sim.run_for(Duration::from_secs(300));
        let mut hits = Vec::new();
        for _ in 0..20 {
            let from = rng.random_range(0..300);
            let target = NodeId::random(&mut rng);
            let lookup = sim.nodes[from].find_node(target, sim.now);
            let done = sim.finish(from, lookup).expect("ends");
            let want: Vec<NodeId> = sim.truly_closest(&target, K).iter().map(|n| n.id).collect();
            hits.push(done.closest.iter().filter(|n| want.contains(&n.id)).count());
        }
        // Of the 8 truly closest, lookups find 6.55 on average (5.0 when
        // buckets with room wait 15 minutes like the others).
        let mean = hits.iter().sum::<usize>() as f64 / hits.len() as f64;
        assert!(mean >= 6.0, "{mean}: {hits:?}");
    }
}

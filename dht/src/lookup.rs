//! Iterative lookups (BEP 5): ask the closest nodes known, learn closer
//! ones from their answers, and stop when the k closest have all answered.
//!
//! At most [`ALPHA`] queries are outstanding at once; one that has not been
//! answered within the slow grace stops counting, so a dead node delays the
//! lookup by that grace rather than by the whole timeout.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

use crate::id::NodeId;
use crate::krpc::NodeInfo;
use crate::table::K;

/// Queries a lookup keeps outstanding.
pub const ALPHA: usize = 3;
/// Candidates a lookup remembers, closest first.
const MAX_CANDIDATES: usize = 8 * K;
/// Distinct peers a lookup reports at most.
const MAX_PEERS: usize = 4096;

/// What a lookup is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Goal {
    /// `find_node`: the nodes closest to the target.
    FindNode,
    /// `get_peers`: the peers of the target, then (if `announce` is set)
    /// `announce_peer` to the closest nodes that gave a token.
    GetPeers {
        /// The port to announce, or `None` to only look.
        announce: Option<Announce>,
    },
}

/// The port an announce names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announce {
    /// This port.
    Port(u16),
    /// The port the DHT's packets come from (`implied_port`, for a peer that
    /// shares the DHT's UDP port, as uTP does).
    Implied,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Fresh,
    Asked,
    /// Asked, and past the slow grace: no longer counted as outstanding.
    Slow,
    Answered,
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    info: NodeInfo,
    state: State,
    token: Option<Vec<u8>>,
}

/// One lookup's state.
#[derive(Clone, Debug)]
pub(crate) struct Lookup {
    /// The id sought.
    pub(crate) target: NodeId,
    /// What for.
    pub(crate) goal: Goal,
    /// When it started.
    pub(crate) started: Instant,
    /// Queries sent.
    pub(crate) queries: u32,
    /// Answers received.
    pub(crate) answers: u32,
    /// Addresses without ids to ask first (bootstrap nodes).
    seeds: Vec<SocketAddr>,
    seeds_outstanding: usize,
    candidates: Vec<Candidate>,
    peers: HashSet<SocketAddr>,
}

impl Lookup {
    /// A lookup for `target` that starts from `nodes` and `seeds`.
    pub(crate) fn new(
        target: NodeId,
        goal: Goal,
        nodes: Vec<NodeInfo>,
        seeds: Vec<SocketAddr>,
        now: Instant,
    ) -> Lookup {
        let mut lookup = Lookup {
            target,
            goal,
            started: now,
            queries: 0,
            answers: 0,
            seeds,
            seeds_outstanding: 0,
            candidates: Vec::new(),
            peers: HashSet::new(),
        };
        lookup.add(nodes);
        lookup
    }

    /// Adds nodes learnt from an answer, keeping the closest.
    pub(crate) fn add(&mut self, nodes: impl IntoIterator<Item = NodeInfo>) {
        for info in nodes {
            if self
                .candidates
                .iter()
                .any(|c| c.info.id == info.id || c.info.addr == info.addr)
            {
                continue;
            }
            let distance = self.target.distance(&info.id);
            let at = self
                .candidates
                .partition_point(|c| self.target.distance(&c.info.id) < distance);
            if at >= MAX_CANDIDATES {
                continue;
            }
            self.candidates.insert(
                at,
                Candidate {
                    info,
                    state: State::Fresh,
                    token: None,
                },
            );
            self.candidates.truncate(MAX_CANDIDATES);
        }
    }

    fn outstanding(&self) -> usize {
        self.seeds_outstanding
            + self
                .candidates
                .iter()
                .filter(|c| c.state == State::Asked)
                .count()
    }

    /// The next addresses to query, marked as asked. A seed has no id.
    pub(crate) fn next_queries(&mut self) -> Vec<(Option<NodeId>, SocketAddr)> {
        let mut out = Vec::new();
        let mut outstanding = self.outstanding();
        while outstanding < ALPHA {
            if let Some(seed) = self.seeds.pop() {
                self.seeds_outstanding += 1;
                out.push((None, seed));
            } else if let Some(candidate) = self
                .candidates
                .iter_mut()
                .filter(|c| c.state != State::Failed)
                .take(K)
                .find(|c| c.state == State::Fresh)
            {
                candidate.state = State::Asked;
                out.push((Some(candidate.info.id), candidate.info.addr));
            } else {
                break;
            }
            outstanding += 1;
            self.queries += 1;
        }
        out
    }

    /// Whether the k closest nodes that did not fail have all answered (or
    /// there is nobody left to ask).
    pub(crate) fn is_done(&self) -> bool {
        if !self.seeds.is_empty() || self.seeds_outstanding > 0 {
            return false;
        }
        self.candidates
            .iter()
            .filter(|c| c.state != State::Failed)
            .take(K)
            .all(|c| c.state == State::Answered)
    }

    fn find(&mut self, addr: SocketAddr) -> Option<&mut Candidate> {
        self.candidates.iter_mut().find(|c| c.info.addr == addr)
    }

    /// A queried node answered: its nodes join the candidates and its
    /// values are returned if new.
    pub(crate) fn answered(
        &mut self,
        from: NodeInfo,
        seed: bool,
        nodes: Vec<NodeInfo>,
        values: &[SocketAddr],
        token: Option<Vec<u8>>,
    ) -> Vec<SocketAddr> {
        self.answers += 1;
        if seed {
            // Now that its id is known, a bootstrap node is a candidate
            // like any other: in a small network it may be among the
            // closest, and the one to announce to.
            self.seeds_outstanding = self.seeds_outstanding.saturating_sub(1);
            self.add([from]);
        }
        if let Some(candidate) = self.find(from.addr) {
            candidate.state = State::Answered;
            candidate.token = token;
        }
        self.add(nodes);
        self.found(values)
    }

    /// Peers learnt, and which of them are new.
    pub(crate) fn found(&mut self, values: &[SocketAddr]) -> Vec<SocketAddr> {
        let mut fresh = Vec::new();
        for peer in values {
            if self.peers.len() < MAX_PEERS && self.peers.insert(*peer) {
                fresh.push(*peer);
            }
        }
        fresh
    }

    /// A query has gone unanswered for the slow grace.
    pub(crate) fn slow(&mut self, addr: SocketAddr) {
        if let Some(candidate) = self.find(addr)
            && candidate.state == State::Asked
        {
            candidate.state = State::Slow;
        }
    }

    /// A query failed (timed out or answered with an error).
    pub(crate) fn failed(&mut self, addr: SocketAddr, seed: bool) {
        if seed {
            self.seeds_outstanding = self.seeds_outstanding.saturating_sub(1);
        } else if let Some(candidate) = self.find(addr)
            && matches!(candidate.state, State::Asked | State::Slow)
        {
            candidate.state = State::Failed;
        }
    }

    /// The k closest nodes that answered with a token: where to announce.
    pub(crate) fn announce_to(&self) -> Vec<(NodeInfo, Vec<u8>)> {
        self.candidates
            .iter()
            .filter(|c| c.state == State::Answered)
            .filter_map(|c| c.token.clone().map(|t| (c.info, t)))
            .take(K)
            .collect()
    }

    /// The k closest nodes that answered.
    pub(crate) fn closest_answered(&self) -> Vec<NodeInfo> {
        self.candidates
            .iter()
            .filter(|c| c.state == State::Answered)
            .take(K)
            .map(|c| c.info)
            .collect()
    }

    /// Distinct peers found so far.
    pub(crate) fn peers_found(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(byte: u8) -> NodeInfo {
        NodeInfo {
            id: NodeId([byte; 20]),
            addr: SocketAddr::from(([10, 0, 0, byte], 1)),
        }
    }

    #[test]
    fn asks_alpha_at_a_time_closest_first_and_ends_when_the_k_closest_answered() {
        let target = NodeId([0; 20]);
        let nodes: Vec<NodeInfo> = (1..=20).map(node).collect();
        let mut lookup = Lookup::new(target, Goal::FindNode, nodes, Vec::new(), Instant::now());
        let first = lookup.next_queries();
        assert_eq!(
            first.iter().map(|(_, a)| *a).collect::<Vec<_>>(),
            vec![node(1).addr, node(2).addr, node(3).addr]
        );
        assert!(lookup.next_queries().is_empty(), "alpha are outstanding");
        // Node 1 fails, node 2 is slow: two more may go.
        lookup.failed(node(1).addr, false);
        lookup.slow(node(2).addr);
        assert_eq!(lookup.next_queries().len(), 2);
        for byte in 2..=9 {
            lookup.answered(node(byte), false, Vec::new(), &[], None);
            lookup.next_queries();
        }
        assert!(lookup.is_done(), "nodes 2 to 9 are the 8 closest alive");
        assert_eq!(lookup.closest_answered().len(), K);
    }

    #[test]
    fn closer_nodes_learnt_from_answers_are_asked_next() {
        let target = NodeId([0; 20]);
        let mut lookup = Lookup::new(
            target,
            Goal::FindNode,
            vec![node(200)],
            Vec::new(),
            Instant::now(),
        );
        lookup.next_queries();
        lookup.answered(node(200), false, vec![node(5), node(6)], &[], None);
        let next: Vec<SocketAddr> = lookup.next_queries().into_iter().map(|(_, a)| a).collect();
        assert_eq!(next, vec![node(5).addr, node(6).addr]);
        assert!(!lookup.is_done());
    }

    #[test]
    fn peers_are_reported_once() {
        let mut lookup = Lookup::new(
            NodeId([0; 20]),
            Goal::GetPeers { announce: None },
            vec![node(1), node(2)],
            Vec::new(),
            Instant::now(),
        );
        lookup.next_queries();
        let peer = SocketAddr::from(([127, 0, 0, 2], 6881));
        assert_eq!(
            lookup.answered(node(1), false, Vec::new(), &[peer], Some(vec![1])),
            vec![peer]
        );
        assert!(
            lookup
                .answered(node(2), false, Vec::new(), &[peer], None)
                .is_empty()
        );
        assert_eq!(lookup.announce_to().len(), 1, "only node 1 gave a token");
    }
}

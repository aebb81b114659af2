//! Answering queries: what a node tells others, within its rate limits.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::{Node, VALUES_PER_ANSWER};
use crate::id::NodeId;
use crate::krpc::{Body, KrpcError, Message, NodeInfo, Query, Response, Want, code};
use crate::table::K;

impl Node {
    pub(super) fn may_answer(&mut self, ip: IpAddr, now: Instant) -> bool {
        let (start, total, per_ip) = &mut self.window;
        if now.saturating_duration_since(*start) >= Duration::from_secs(1) {
            *start = now;
            *total = 0;
            per_ip.clear();
        }
        if *total >= self.config.answers_total || per_ip.len() >= 4096 && !per_ip.contains_key(&ip)
        {
            self.stats.limited += 1;
            return false;
        }
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.config.answers_per_ip {
            self.stats.limited += 1;
            return false;
        }
        *count += 1;
        *total += 1;
        true
    }

    pub(super) fn on_query(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tid: Vec<u8>,
        read_only: bool,
        query: Query,
    ) {
        if self.config.read_only || from.is_ipv6() != self.config.ipv6 {
            self.stats.dropped += 1;
            return;
        }
        if !self.may_answer(from.ip(), now) {
            return;
        }
        let sender = NodeInfo {
            id: query.id(),
            addr: from,
        };
        if !read_only {
            self.table.heard_from(&sender, now);
            if self.table.get(&sender.id).is_none() && self.table.would_take(&sender, now) {
                self.probe(from, Some(sender.id), now);
            }
        }
        let own = self.table.own();
        let response = match query {
            Query::Ping { .. } => Response {
                id: own,
                ..Response::default()
            },
            Query::FindNode { target, want, .. } => {
                let mut response = Response {
                    id: own,
                    ..Response::default()
                };
                self.fill_nodes(&mut response, &target, want, now);
                response
            }
            Query::GetPeers {
                info_hash, want, ..
            } => {
                let mut response = Response {
                    id: own,
                    token: Some(self.tokens.make(from.ip())),
                    values: self
                        .store
                        .peers(&info_hash, VALUES_PER_ANSWER, &mut self.rng),
                    ..Response::default()
                };
                // Values leave no room under 1,500 bytes for both
                // families' nodes: only ours come with them.
                let want = if response.values.is_empty() {
                    want
                } else {
                    Want::default()
                };
                self.fill_nodes(&mut response, &info_hash, want, now);
                response
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
                ..
            } => {
                if !self.tokens.check(&token, from.ip()) {
                    self.answer_error(from, tid, code::PROTOCOL, "bad token");
                    return;
                }
                let port = if implied_port { from.port() } else { port };
                if port == 0 {
                    self.answer_error(from, tid, code::PROTOCOL, "port 0");
                    return;
                }
                self.store
                    .announce(info_hash, SocketAddr::new(from.ip(), port), now);
                Response {
                    id: own,
                    ..Response::default()
                }
            }
            Query::Other { .. } => {
                self.answer_error(from, tid, code::METHOD_UNKNOWN, "Method Unknown");
                return;
            }
        };
        self.stats.answered += 1;
        let message = Message {
            tid,
            body: Body::Response(response),
            ip: Some(from),
            read_only: false,
        };
        self.send(from, &message);
    }

    /// Nodes closest to `target` of the families asked for (our own when
    /// `want` is absent): our own family's from the table, the other's
    /// from what [`Node::set_other_family`] gave.
    fn fill_nodes(&self, response: &mut Response, target: &NodeId, want: Want, now: Instant) {
        let (own, other) = if self.config.ipv6 {
            (want.v6, want.v4)
        } else {
            (want.v4, want.v6)
        };
        let own = own || want == Want::default();
        let own_nodes = if own {
            self.table.closest(target, K, now)
        } else {
            Vec::new()
        };
        let other_nodes = if other {
            closest_of(&self.other_family, target)
        } else {
            Vec::new()
        };
        let (v4, v6) = if self.config.ipv6 {
            (other_nodes, own_nodes)
        } else {
            (own_nodes, other_nodes)
        };
        response.nodes = v4;
        response.nodes6 = v6;
    }

    pub(super) fn answer_error(&mut self, to: SocketAddr, tid: Vec<u8>, code: i64, message: &str) {
        let message = Message {
            tid,
            body: Body::Error(KrpcError {
                code,
                message: message.into(),
            }),
            ip: None,
            read_only: false,
        };
        self.send(to, &message);
    }
}

/// The [`K`] of `nodes` closest to `target`, closest first.
fn closest_of(nodes: &[NodeInfo], target: &NodeId) -> Vec<NodeInfo> {
    let mut nodes = nodes.to_vec();
    nodes.sort_unstable_by_key(|n| n.id.distance(target));
    nodes.truncate(K);
    nodes
}

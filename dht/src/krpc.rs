//! KRPC, the DHT's bencoded messages (BEP 5), with BEP 32's `nodes6` and
//! `want`, BEP 42's `ip` and BEP 43's `ro`.
//!
//! Decoding trusts nothing: transaction ids and tokens have a bounded
//! length, lists of nodes and peers are cut at a bound, malformed entries in
//! them are skipped, and a packet is never longer than [`MAX_PACKET`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bencode::{Dict, Encoder};

use crate::id::NodeId;

/// The longest datagram read or sent: what fits in an Ethernet frame, which
/// is also the buffer other clients read into.
pub const MAX_PACKET: usize = 1500;
/// The longest transaction id taken from a stranger.
pub const MAX_TID: usize = 16;
/// The longest token taken from a stranger.
pub const MAX_TOKEN: usize = 64;
/// At most this many nodes are read from one `nodes` or `nodes6`.
pub const MAX_NODES: usize = 64;
/// At most this many peers are read from one `values`.
pub const MAX_VALUES: usize = 256;

/// KRPC error codes (BEP 5).
pub mod code {
    /// Generic error.
    pub const GENERIC: i64 = 201;
    /// Server error.
    pub const SERVER: i64 = 202;
    /// Protocol error: a malformed packet, invalid arguments or a bad token.
    pub const PROTOCOL: i64 = 203;
    /// Method unknown.
    pub const METHOD_UNKNOWN: i64 = 204;
}

/// One KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The transaction id, echoed in the answer.
    pub tid: Vec<u8>,
    /// What the message is.
    pub body: Body,
    /// BEP 42: in an answer, the address the answering node saw the query
    /// come from.
    pub ip: Option<SocketAddr>,
    /// BEP 43: the sender is a read-only node and must not be added to
    /// routing tables.
    pub read_only: bool,
}

/// A query, an answer or an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// A question (`y` = `q`).
    Query(Query),
    /// An answer (`y` = `r`).
    Response(Response),
    /// An error (`y` = `e`).
    Error(KrpcError),
}

/// The address families a query wants nodes of (BEP 32). Empty means the
/// family the query came over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// `n4`: IPv4 nodes in `nodes`.
    pub v4: bool,
    /// `n6`: IPv6 nodes in `nodes6`.
    pub v6: bool,
}

/// The four queries of BEP 5, and any other one by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// `ping`.
    Ping {
        /// The querying node.
        id: NodeId,
    },
    /// `find_node`: the nodes closest to `target`.
    FindNode {
        /// The querying node.
        id: NodeId,
        /// The id sought.
        target: NodeId,
        /// Families wanted.
        want: Want,
    },
    /// `get_peers`: peers of `info_hash`, or the nodes closest to it.
    GetPeers {
        /// The querying node.
        id: NodeId,
        /// The torrent.
        info_hash: NodeId,
        /// Families wanted.
        want: Want,
    },
    /// `announce_peer`: the querying node is a peer of `info_hash`.
    AnnouncePeer {
        /// The querying node.
        id: NodeId,
        /// The torrent.
        info_hash: NodeId,
        /// The peer's port, unless `implied_port`.
        port: u16,
        /// The peer's port is the UDP source port (BEP 5).
        implied_port: bool,
        /// The token from an earlier `get_peers` answer.
        token: Vec<u8>,
    },
    /// A method this node does not know (answered with error 204).
    Other {
        /// The querying node.
        id: NodeId,
        /// The method's name.
        method: Vec<u8>,
    },
}

impl Query {
    /// The querying node's id.
    pub fn id(&self) -> NodeId {
        match self {
            Query::Ping { id }
            | Query::FindNode { id, .. }
            | Query::GetPeers { id, .. }
            | Query::AnnouncePeer { id, .. }
            | Query::Other { id, .. } => *id,
        }
    }

    fn method(&self) -> &[u8] {
        match self {
            Query::Ping { .. } => b"ping",
            Query::FindNode { .. } => b"find_node",
            Query::GetPeers { .. } => b"get_peers",
            Query::AnnouncePeer { .. } => b"announce_peer",
            Query::Other { method, .. } => method,
        }
    }
}

/// A node's id and address, as compact node info carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// The node's id.
    pub id: NodeId,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// An answer. Which fields it has depends on the query it answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The answering node.
    pub id: NodeId,
    /// IPv4 nodes (`nodes`).
    pub nodes: Vec<NodeInfo>,
    /// IPv6 nodes (`nodes6`).
    pub nodes6: Vec<NodeInfo>,
    /// Peers (`values`), of either family.
    pub values: Vec<SocketAddr>,
    /// The token for a later `announce_peer`.
    pub token: Option<Vec<u8>>,
}

/// A KRPC error: a code and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KrpcError {
    /// One of [`code`]'s values, or another.
    pub code: i64,
    /// A human-readable message.
    pub message: String,
}

/// Why a packet is not a KRPC message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Longer than [`MAX_PACKET`].
    #[error("packet of {0} bytes is longer than a DHT packet")]
    TooLong(usize),
    /// Not bencode, or not a dictionary.
    #[error("not a bencoded dictionary: {0}")]
    Bencode(String),
    /// A field is missing or has the wrong type or size.
    #[error("field `{0}` is missing or malformed")]
    Field(&'static str),
    /// A query whose arguments are wrong; the transaction id is kept so the
    /// sender can be told (error 203).
    #[error("query `{method}` has malformed `{field}`")]
    Arguments {
        /// The transaction id to answer.
        tid: Vec<u8>,
        /// The method.
        method: String,
        /// The malformed argument.
        field: &'static str,
    },
}

impl Message {
    /// Decodes one datagram.
    pub fn decode(packet: &[u8]) -> Result<Message, DecodeError> {
        if packet.len() > MAX_PACKET {
            return Err(DecodeError::TooLong(packet.len()));
        }
        let value = bencode::Decoder::lenient()
            .max_depth(4)
            .decode(packet)
            .map_err(|e| DecodeError::Bencode(e.to_string()))?;
        let dict = value
            .as_dict()
            .ok_or(DecodeError::Bencode("not a dictionary".into()))?;
        let tid = bytes(&dict, b"t")
            .filter(|t| t.len() <= MAX_TID)
            .ok_or(DecodeError::Field("t"))?
            .to_vec();
        let kind = bytes(&dict, b"y").ok_or(DecodeError::Field("y"))?;
        let read_only = dict.get(b"ro").and_then(|v| v.as_int()) == Some(1);
        let ip = bytes(&dict, b"ip").and_then(compact_addr);
        let body = match kind {
            b"q" => Body::Query(decode_query(&dict, &tid)?),
            b"r" => {
                let r = dict
                    .get(b"r")
                    .and_then(|v| v.as_dict())
                    .ok_or(DecodeError::Field("r"))?;
                Body::Response(decode_response(&r)?)
            }
            b"e" => Body::Error(decode_error(&dict)?),
            _ => return Err(DecodeError::Field("y")),
        };
        Ok(Message {
            tid,
            body,
            ip,
            read_only,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Encoder::default();
        out.dict(|d| {
            d.entry_with(b"t", |e| e.bytes(&self.tid));
            if let Some(ip) = self.ip {
                d.entry_with(b"ip", |e| e.bytes(&compact(ip)));
            }
            if self.read_only {
                d.entry_with(b"ro", |e| e.int(1));
            }
            match &self.body {
                Body::Query(q) => {
                    d.entry_with(b"y", |e| e.bytes(b"q"));
                    d.entry_with(b"q", |e| e.bytes(q.method()));
                    d.entry_with(b"a", |e| encode_arguments(q, e));
                }
                Body::Response(r) => {
                    d.entry_with(b"y", |e| e.bytes(b"r"));
                    d.entry_with(b"r", |e| encode_response(r, e));
                }
                Body::Error(err) => {
                    d.entry_with(b"y", |e| e.bytes(b"e"));
                    d.entry_with(b"e", |e| {
                        e.list(|l| {
                            l.int(err.code);
                            l.bytes(err.message.as_bytes());
                        })
                    });
                }
            }
        });
        out.into_bytes()
    }
}

fn bytes<'a>(dict: &Dict<'a>, key: &[u8]) -> Option<&'a [u8]> {
    dict.get(key).and_then(|v| v.as_bytes())
}

fn node_id(dict: &Dict<'_>, key: &[u8]) -> Option<NodeId> {
    bytes(dict, key)
        .and_then(|b| <[u8; 20]>::try_from(b).ok())
        .map(NodeId)
}

fn decode_query(dict: &Dict<'_>, tid: &[u8]) -> Result<Query, DecodeError> {
    let method = bytes(dict, b"q").ok_or(DecodeError::Field("q"))?;
    let bad = |field| DecodeError::Arguments {
        tid: tid.to_vec(),
        method: String::from_utf8_lossy(method).into_owned(),
        field,
    };
    let a = dict.get(b"a").and_then(|v| v.as_dict()).ok_or(bad("a"))?;
    let id = node_id(&a, b"id").ok_or(bad("id"))?;
    let want = || {
        let mut want = Want::default();
        for family in a
            .get(b"want")
            .and_then(|v| v.as_list())
            .iter()
            .flat_map(|l| l.iter())
        {
            match family.as_bytes() {
                Some(b"n4") => want.v4 = true,
                Some(b"n6") => want.v6 = true,
                _ => {}
            }
        }
        want
    };
    Ok(match method {
        b"ping" => Query::Ping { id },
        b"find_node" => Query::FindNode {
            id,
            target: node_id(&a, b"target").ok_or(bad("target"))?,
            want: want(),
        },
        b"get_peers" => Query::GetPeers {
            id,
            info_hash: node_id(&a, b"info_hash").ok_or(bad("info_hash"))?,
            want: want(),
        },
        b"announce_peer" => {
            let implied_port = a.get(b"implied_port").and_then(|v| v.as_int()) == Some(1);
            let port = a
                .get(b"port")
                .and_then(|v| v.as_int())
                .and_then(|p| u16::try_from(p).ok());
            let port = match (port, implied_port) {
                (Some(port), _) => port,
                (None, true) => 0,
                (None, false) => return Err(bad("port")),
            };
            Query::AnnouncePeer {
                id,
                info_hash: node_id(&a, b"info_hash").ok_or(bad("info_hash"))?,
                port,
                implied_port,
                token: bytes(&a, b"token")
                    .filter(|t| t.len() <= MAX_TOKEN)
                    .ok_or(bad("token"))?
                    .to_vec(),
            }
        }
        other => Query::Other {
            id,
            method: other.iter().copied().take(32).collect(),
        },
    })
}

fn decode_response(r: &Dict<'_>) -> Result<Response, DecodeError> {
    let id = node_id(r, b"id").ok_or(DecodeError::Field("id"))?;
    let nodes = bytes(r, b"nodes")
        .map(|b| compact_nodes(b, 26))
        .unwrap_or_default();
    let nodes6 = bytes(r, b"nodes6")
        .map(|b| compact_nodes(b, 38))
        .unwrap_or_default();
    let values = r
        .get(b"values")
        .and_then(|v| v.as_list())
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_bytes().and_then(compact_addr))
                .filter(|addr| addr.port() != 0)
                .take(MAX_VALUES)
                .collect()
        })
        .unwrap_or_default();
    let token = bytes(r, b"token")
        .filter(|t| t.len() <= MAX_TOKEN)
        .map(<[u8]>::to_vec);
    Ok(Response {
        id,
        nodes,
        nodes6,
        values,
        token,
    })
}

fn decode_error(dict: &Dict<'_>) -> Result<KrpcError, DecodeError> {
    let list = dict
        .get(b"e")
        .and_then(|v| v.as_list())
        .ok_or(DecodeError::Field("e"))?;
    let mut items = list.iter();
    let code = items
        .next()
        .and_then(|v| v.as_int())
        .ok_or(DecodeError::Field("e"))?;
    let message = items
        .next()
        .and_then(|v| v.as_bytes())
        .map(|m| String::from_utf8_lossy(m).chars().take(200).collect())
        .unwrap_or_default();
    Ok(KrpcError { code, message })
}

fn encode_arguments(q: &Query, e: &mut Encoder) {
    e.dict(|a| {
        a.entry_with(b"id", |e| e.bytes(&q.id().0));
        let want = |a: &mut bencode::DictEncoder, want: &Want| {
            if want.v4 || want.v6 {
                a.entry_with(b"want", |e| {
                    e.list(|l| {
                        if want.v4 {
                            l.bytes(b"n4");
                        }
                        if want.v6 {
                            l.bytes(b"n6");
                        }
                    })
                });
            }
        };
        match q {
            Query::Ping { .. } | Query::Other { .. } => {}
            Query::FindNode {
                target, want: w, ..
            } => {
                a.entry_with(b"target", |e| e.bytes(&target.0));
                want(a, w);
            }
            Query::GetPeers {
                info_hash, want: w, ..
            } => {
                a.entry_with(b"info_hash", |e| e.bytes(&info_hash.0));
                want(a, w);
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
                ..
            } => {
                a.entry_with(b"info_hash", |e| e.bytes(&info_hash.0));
                a.entry_with(b"port", |e| e.uint(u64::from(*port)));
                if *implied_port {
                    a.entry_with(b"implied_port", |e| e.int(1));
                }
                a.entry_with(b"token", |e| e.bytes(token));
            }
        }
    });
}

fn encode_response(r: &Response, e: &mut Encoder) {
    e.dict(|d| {
        d.entry_with(b"id", |e| e.bytes(&r.id.0));
        for (key, nodes) in [(&b"nodes"[..], &r.nodes), (&b"nodes6"[..], &r.nodes6)] {
            if !nodes.is_empty() {
                let mut compact_nodes = Vec::with_capacity(nodes.len() * 38);
                for node in nodes {
                    compact_nodes.extend_from_slice(&node.id.0);
                    compact_nodes.extend_from_slice(&compact(node.addr));
                }
                d.entry_with(key, |e| e.bytes(&compact_nodes));
            }
        }
        if !r.values.is_empty() {
            d.entry_with(b"values", |e| {
                e.list(|l| {
                    for peer in &r.values {
                        l.bytes(&compact(*peer));
                    }
                })
            });
        }
        if let Some(token) = &r.token {
            d.entry_with(b"token", |e| e.bytes(token));
        }
    });
}

/// An address as 6 (IPv4) or 18 (IPv6) bytes: the address, then the port,
/// big-endian.
pub fn compact(addr: SocketAddr) -> Vec<u8> {
    let mut out = match addr.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

/// Reads a 6- or 18-byte compact address.
pub fn compact_addr(bytes: &[u8]) -> Option<SocketAddr> {
    match bytes.len() {
        6 => {
            let ip: [u8; 4] = bytes[..4].try_into().ok()?;
            let port = u16::from_be_bytes([bytes[4], bytes[5]]);
            Some(SocketAddr::new(Ipv4Addr::from(ip).into(), port))
        }
        18 => {
            let ip: [u8; 16] = bytes[..16].try_into().ok()?;
            let port = u16::from_be_bytes([bytes[16], bytes[17]]);
            Some(SocketAddr::new(Ipv6Addr::from(ip).into(), port))
        }
        _ => None,
    }
}

/// Whole compact node entries of `size` bytes (26 or 38), at most
/// [`MAX_NODES`], without those of port 0.
fn compact_nodes(bytes: &[u8], size: usize) -> Vec<NodeInfo> {
    bytes
        .chunks_exact(size)
        .take(MAX_NODES)
        .filter_map(|entry| {
            let id = NodeId(entry[..20].try_into().ok()?);
            let addr = compact_addr(&entry[20..])?;
            (addr.port() != 0).then_some(NodeInfo { id, addr })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> NodeId {
        NodeId([byte; 20])
    }

    fn query(q: Query) -> Message {
        Message {
            tid: b"aa".to_vec(),
            body: Body::Query(q),
            ip: None,
            read_only: false,
        }
    }

    /// BEP 5's examples, byte for byte (with `id` values of 20 bytes).
    #[test]
    fn bep5_examples() {
        let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
        let decoded = Message::decode(ping).expect("ping");
        assert_eq!(
            decoded,
            query(Query::Ping {
                id: NodeId(*b"abcdefghij0123456789")
            })
        );
        assert_eq!(decoded.encode(), ping);

        let announce = b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe";
        let decoded = Message::decode(announce).expect("announce");
        assert!(matches!(
            decoded.body,
            Body::Query(Query::AnnouncePeer {
                port: 6881,
                implied_port: true,
                ..
            })
        ));
        assert_eq!(decoded.encode(), announce);

        let error = b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee";
        let decoded = Message::decode(error).expect("error");
        assert_eq!(
            decoded.body,
            Body::Error(KrpcError {
                code: 201,
                message: "A Generic Error Ocurred".into()
            })
        );
        assert_eq!(decoded.encode(), error);
    }

    #[test]
    fn every_message_round_trips() {
        let values = vec![
            "127.0.0.2:6881".parse().expect("addr"),
            "[::1]:51413".parse().expect("addr"),
        ];
        let nodes = vec![NodeInfo {
            id: id(3),
            addr: "10.0.0.1:1".parse().expect("addr"),
        }];
        let nodes6 = vec![NodeInfo {
            id: id(4),
            addr: "[fe80::1]:2".parse().expect("addr"),
        }];
        let messages = [
            query(Query::Ping { id: id(1) }),
            query(Query::FindNode {
                id: id(1),
                target: id(2),
                want: Want { v4: true, v6: true },
            }),
            query(Query::GetPeers {
                id: id(1),
                info_hash: id(2),
                want: Want::default(),
            }),
            query(Query::AnnouncePeer {
                id: id(1),
                info_hash: id(2),
                port: 1,
                implied_port: false,
                token: vec![1, 2, 3],
            }),
            query(Query::Other {
                id: id(1),
                method: b"vote".to_vec(),
            }),
            Message {
                tid: vec![0, 1, 2, 3],
                body: Body::Response(Response {
                    id: id(9),
                    nodes,
                    nodes6,
                    values,
                    token: Some(b"tok".to_vec()),
                }),
                ip: Some("1.2.3.4:5".parse().expect("addr")),
                read_only: true,
            },
            Message {
                tid: vec![],
                body: Body::Error(KrpcError {
                    code: code::METHOD_UNKNOWN,
                    message: "Method Unknown".into(),
                }),
                ip: None,
                read_only: false,
            },
        ];
        for message in messages {
            let bytes = message.encode();
            assert_eq!(Message::decode(&bytes).as_ref(), Ok(&message), "{bytes:?}");
        }
    }

    #[test]
    fn malformed_packets_are_refused() {
        for packet in [
            &b""[..],
            b"le",
            b"d1:t2:aae",
            b"d1:t2:aa1:y1:xe",
            b"d1:t2:aa1:y1:re",
            b"d1:rd2:id3:abce1:t2:aa1:y1:re",
            b"d1:t17:aaaaaaaaaaaaaaaaa1:y1:ee",
            b"d1:q4:ping1:t2:aa1:y1:qe",
        ] {
            assert!(Message::decode(packet).is_err(), "{packet:?}");
        }
        assert!(Message::decode(&vec![b'x'; 2000]).is_err());
        // Arguments that are wrong keep the transaction id for error 203.
        let bad = b"d1:ad2:id3:abce1:q4:ping1:t2:xy1:y1:qe";
        assert!(matches!(
            Message::decode(bad),
            Err(DecodeError::Arguments { tid, field: "id", .. }) if tid == b"xy"
        ));
    }

    #[test]
    fn node_and_peer_lists_keep_whole_good_entries_only() {
        let mut nodes = Vec::new();
        for i in 0..3u8 {
            nodes.extend_from_slice(&[i; 20]);
            nodes.extend_from_slice(&[127, 0, 0, i + 1]);
            nodes.extend_from_slice(&u16::from(i).to_be_bytes());
        }
        nodes.extend_from_slice(b"trailing");
        let response = decode_response(
            &bencode::decode(&bencode_dict(&nodes))
                .expect("bencode")
                .as_dict()
                .expect("dict"),
        )
        .expect("response");
        // Entry 0 has port 0; the trailing bytes are not an entry.
        assert_eq!(response.nodes.len(), 2);
        assert_eq!(response.nodes[0].addr, "127.0.0.2:1".parse().expect("addr"));
    }

    fn bencode_dict(nodes: &[u8]) -> Vec<u8> {
        let mut e = Encoder::default();
        e.dict(|d| {
            d.entry_with(b"id", |e| e.bytes(&[1; 20]));
            d.entry_with(b"nodes", |e| e.bytes(nodes));
            d.entry_with(b"values", |e| {
                e.list(|l| {
                    l.bytes(&[1, 2, 3, 4, 0, 0]);
                    l.bytes(b"short");
                    l.int(5);
                })
            });
        });
        e.into_bytes()
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(packet in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = Message::decode(&packet);
        }

        #[test]
        fn responses_round_trip(
            tid in proptest::collection::vec(proptest::num::u8::ANY, 0..=MAX_TID),
            raw_id in proptest::array::uniform20(proptest::num::u8::ANY),
            peers in proptest::collection::vec((proptest::array::uniform4(proptest::num::u8::ANY), 1u16..), 0..20),
            token in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..=MAX_TOKEN)),
        ) {
            let message = Message {
                tid,
                body: Body::Response(Response {
                    id: NodeId(raw_id),
                    values: peers.iter().map(|(ip, port)| SocketAddr::new(Ipv4Addr::from(*ip).into(), *port)).collect(),
                    token,
                    ..Response::default()
                }),
                ip: None,
                read_only: false,
            };
            proptest::prop_assert_eq!(Message::decode(&message.encode()), Ok(message));
        }
    }
}

//! A node against peers that lie, flood and send garbage, driven by hand.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::krpc::{KrpcError, code};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

fn node(config: Config, now: Instant) -> Node {
    Node::new(
        Config {
            seed: Some(11),
            ..config
        },
        now,
    )
}

fn query(tid: &[u8], q: Query) -> Vec<u8> {
    Message {
        tid: tid.to_vec(),
        body: Body::Query(q),
        ip: None,
        read_only: false,
    }
    .encode()
}

fn answers(node: &mut Node) -> Vec<(SocketAddr, Message)> {
    std::iter::from_fn(|| node.poll_transmit())
        .map(|t| {
            (
                t.to,
                Message::decode(&t.packet).expect("we send valid KRPC"),
            )
        })
        .collect()
}

/// The answer to `to`, ignoring the pings a node sends to newcomers.
fn answer_to(node: &mut Node, to: SocketAddr) -> Message {
    answers(node)
        .into_iter()
        .find(|(a, m)| *a == to && !matches!(m.body, Body::Query(_)))
        .map(|(_, m)| m)
        .expect("an answer")
}

fn get_peers(id: u8, hash: NodeId) -> Query {
    Query::GetPeers {
        id: NodeId([id; 20]),
        info_hash: hash,
        want: Want::default(),
    }
}

fn announce(id: u8, hash: NodeId, port: u16, token: Vec<u8>) -> Query {
    Query::AnnouncePeer {
        id: NodeId([id; 20]),
        info_hash: hash,
        port,
        implied_port: false,
        token,
    }
}

fn token_of(message: &Message) -> Vec<u8> {
    match &message.body {
        Body::Response(r) => r.token.clone().expect("a token"),
        other => panic!("not a response: {other:?}"),
    }
}

fn error_code(message: &Message) -> Option<i64> {
    match &message.body {
        Body::Error(KrpcError { code, .. }) => Some(*code),
        _ => None,
    }
}

#[test]
fn announces_need_the_token_given_to_that_address() {
    let now = Instant::now();
    let mut n = node(Config::default(), now);
    let hash = NodeId([5; 20]);
    let x = addr("127.0.0.2:1000");
    let y = addr("127.0.0.3:1000");
    n.handle(now, x, &query(b"1", get_peers(1, hash)));
    let token = token_of(&answer_to(&mut n, x));

    // A forged token, and x's token used by y, are refused.
    n.handle(
        now,
        x,
        &query(b"2", announce(1, hash, 7000, b"forged".to_vec())),
    );
    assert_eq!(error_code(&answer_to(&mut n, x)), Some(code::PROTOCOL));
    n.handle(now, y, &query(b"3", announce(2, hash, 7000, token.clone())));
    assert_eq!(error_code(&answer_to(&mut n, y)), Some(code::PROTOCOL));
    // Port 0 is no peer.
    n.handle(now, x, &query(b"4", announce(1, hash, 0, token.clone())));
    assert_eq!(error_code(&answer_to(&mut n, x)), Some(code::PROTOCOL));
    assert_eq!(n.stats().peers, 0);

    n.handle(now, x, &query(b"5", announce(1, hash, 7000, token)));
    assert_eq!(error_code(&answer_to(&mut n, x)), None);
    n.handle(now, y, &query(b"6", get_peers(2, hash)));
    match answer_to(&mut n, y).body {
        Body::Response(r) => assert_eq!(r.values, vec![addr("127.0.0.2:7000")]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_flood_from_one_address_is_answered_only_up_to_the_limit() {
    let now = Instant::now();
    let mut n = node(Config::default(), now);
    let flooder = addr("127.0.0.9:4000");
    for i in 0..500u16 {
        n.handle(
            now,
            flooder,
            &query(
                &i.to_be_bytes(),
                Query::Ping {
                    id: NodeId([9; 20]),
                },
            ),
        );
    }
    let answered = answers(&mut n)
        .iter()
        .filter(|(to, m)| *to == flooder && matches!(m.body, Body::Response(_)))
        .count();
    assert_eq!(answered, Config::default().answers_per_ip as usize);
    assert_eq!(n.stats().limited, 450);
    // Another address is still answered, and the flooder again a second later.
    n.handle(
        now,
        addr("127.0.0.10:1"),
        &query(
            b"x",
            Query::Ping {
                id: NodeId([1; 20]),
            },
        ),
    );
    assert_eq!(
        answers(&mut n).len(),
        2,
        "the answer and a ping to the newcomer"
    );
    let later = now + Duration::from_secs(1);
    n.handle(
        later,
        flooder,
        &query(
            b"y",
            Query::Ping {
                id: NodeId([9; 20]),
            },
        ),
    );
    assert_eq!(answer_to(&mut n, flooder).tid, b"y");
}

#[test]
fn garbage_and_strangers_answers_get_silence() {
    let now = Instant::now();
    let router = addr("127.0.0.2:6881");
    let mut n = node(
        Config {
            bootstrap: vec![router],
            ..Config::default()
        },
        now,
    );
    let (to, first) = answers(&mut n).into_iter().next().expect("bootstrap query");
    assert_eq!(to, router);
    for garbage in [&b"hello"[..], b"d1:y1:re", &[0xff; 1400], &[b'd'; 2000]] {
        n.handle(now, router, garbage);
    }
    // The right transaction id from the wrong address: a spoof.
    let spoof = Message {
        tid: first.tid.clone(),
        body: Body::Response(Response {
            id: NodeId([3; 20]),
            ..Response::default()
        }),
        ip: None,
        read_only: false,
    };
    n.handle(now, addr("127.0.0.66:6881"), &spoof.encode());
    assert!(answers(&mut n).is_empty());
    assert_eq!(n.stats().dropped, 5);
    assert_eq!(n.stats().lookups, 1, "the bootstrap still waits");
}

#[test]
fn unknown_methods_and_bad_arguments_get_their_error_codes() {
    let now = Instant::now();
    let mut n = node(Config::default(), now);
    let x = addr("127.0.0.2:1");
    n.handle(
        now,
        x,
        &query(
            b"1",
            Query::Other {
                id: NodeId([1; 20]),
                method: b"vote".to_vec(),
            },
        ),
    );
    assert_eq!(
        error_code(&answer_to(&mut n, x)),
        Some(code::METHOD_UNKNOWN)
    );
    n.handle(now, x, b"d1:ad2:id3:abce1:q4:ping1:t2:xy1:y1:qe");
    let answer = answer_to(&mut n, x);
    assert_eq!(
        (error_code(&answer), answer.tid),
        (Some(code::PROTOCOL), b"xy".to_vec())
    );
}

#[test]
fn one_address_cannot_fill_the_table_and_read_only_nodes_are_not_kept() {
    let now = Instant::now();
    let mut n = node(Config::default(), now);
    // 40 ids from one IP, each answering the ping we send it.
    for i in 0..40u8 {
        let from = SocketAddr::new(addr("198.51.100.7:1").ip(), 1000 + u16::from(i));
        let mut id = NodeId([i; 20]);
        id.0[0] = i.wrapping_mul(37);
        n.handle(now, from, &query(&[i], Query::Ping { id }));
        for (to, m) in answers(&mut n) {
            if let Body::Query(Query::Ping { .. }) = m.body {
                let pong = Message {
                    tid: m.tid,
                    body: Body::Response(Response {
                        id,
                        ..Response::default()
                    }),
                    ip: None,
                    read_only: false,
                };
                n.handle(now, to, &pong.encode());
            }
        }
    }
    assert_eq!(n.stats().nodes, 1);

    // A read-only node is answered but neither pinged nor kept.
    let ro = Message {
        tid: b"r".to_vec(),
        body: Body::Query(Query::Ping {
            id: NodeId([0x77; 20]),
        }),
        ip: None,
        read_only: true,
    };
    let from = addr("127.0.0.8:1");
    n.handle(now, from, &ro.encode());
    let sent = answers(&mut n);
    assert_eq!(sent.len(), 1);
    assert!(matches!(sent[0].1.body, Body::Response(_)));
}

#[test]
fn a_read_only_node_asks_but_never_answers() {
    let now = Instant::now();
    let mut n = node(
        Config {
            read_only: true,
            bootstrap: vec![addr("127.0.0.2:1")],
            ..Config::default()
        },
        now,
    );
    let (_, bootstrap) = answers(&mut n).into_iter().next().expect("a query");
    assert!(bootstrap.read_only);
    n.handle(
        now,
        addr("127.0.0.3:1"),
        &query(
            b"1",
            Query::Ping {
                id: NodeId([1; 20]),
            },
        ),
    );
    // Nor a query with bad arguments (error 203 for others).
    n.handle(
        now,
        addr("127.0.0.3:1"),
        b"d1:ad2:id3:abce1:q4:ping1:t2:xy1:y1:qe",
    );
    assert!(answers(&mut n).is_empty());
}

#[test]
fn answers_stay_small_whatever_the_store_holds() {
    let now = Instant::now();
    let mut n = node(Config::default(), now);
    let hash = NodeId([5; 20]);
    for i in 0..300u32 {
        let from = SocketAddr::new(std::net::Ipv4Addr::from(0x0a00_0000 + i).into(), 6881);
        n.handle(now, from, &query(b"g", get_peers(1, hash)));
        let token = token_of(&answer_to(&mut n, from));
        n.handle(now, from, &query(b"a", announce(1, hash, 6881, token)));
        answers(&mut n);
    }
    assert_eq!(n.stats().peers, StoreLimits::default().peers_per_torrent);
    let asker = addr("127.0.0.4:1");
    n.handle(now, asker, &query(b"q", get_peers(4, hash)));
    let raw = std::iter::from_fn(|| n.poll_transmit())
        .find(|t| t.to == asker && !t.packet.windows(4).any(|w| w == b"ping"))
        .expect("answer");
    assert!(raw.packet.len() < 1000, "{} bytes", raw.packet.len());
    match Message::decode(&raw.packet).expect("valid").body {
        Body::Response(r) => assert_eq!(r.values.len(), VALUES_PER_ANSWER),
        other => panic!("{other:?}"),
    }
}

/// Ids spread over the key space, so that the table has room for them.
fn spread(i: u8) -> NodeId {
    let mut id = NodeId([i + 1; 20]);
    id.0[0] = i.wrapping_mul(25);
    id
}

#[test]
fn answers_that_agree_on_our_address_give_us_a_secure_id() {
    let now = Instant::now();
    let external = addr("84.124.73.14:6881");
    let mut n = node(Config::default(), now);
    assert!(!n.id().is_secure_for(external.ip()));
    for i in 0..VOTES_NEEDED {
        let peer = SocketAddr::new(std::net::Ipv4Addr::from(0x0a00_0100 + i).into(), 6881);
        n.add_node(peer, now);
        let (_, ping) = answers(&mut n).into_iter().next().expect("a ping");
        let pong = Message {
            tid: ping.tid,
            body: Body::Response(Response {
                id: spread(i as u8),
                ..Response::default()
            }),
            ip: Some(external),
            read_only: false,
        };
        n.handle(now, peer, &pong.encode());
    }
    assert!(n.id().is_secure_for(external.ip()));
    assert!(std::iter::from_fn(|| n.poll_event()).any(|e| matches!(e, Event::IdChanged { .. })));
    assert_eq!(
        n.stats().nodes,
        VOTES_NEEDED as usize,
        "the table moved to the new id"
    );
}

#[test]
fn strangers_named_by_peers_or_querying_us_get_a_bounded_number_of_pings() {
    let now = Instant::now();
    let mut n = node(Config::default(), now);
    // A peer that sends a thousand port messages: one host, one ping.
    for port in 1..=1000u16 {
        n.add_node(SocketAddr::from(([198, 51, 100, 9], port)), now);
    }
    assert_eq!(answers(&mut n).len(), 1);
    // A thousand hosts: at most MAX_PROBES pings out at once, however
    // many there are; lookups keep the rest of the budget.
    for i in 0..1000u32 {
        n.add_node(
            SocketAddr::new(std::net::Ipv4Addr::from(0x0b00_0000 + i).into(), 6881),
            now,
        );
    }
    assert_eq!(answers(&mut n).len(), MAX_PROBES - 1);
    assert!(MAX_PROBES < Config::default().max_outstanding);
}

#[test]
fn one_host_answering_from_many_ports_cannot_choose_our_id() {
    let now = Instant::now();
    let external = addr("84.124.73.14:6881");
    let mut n = node(Config::default(), now);
    let before = n.id();
    for i in 0..(VOTES_NEEDED * 3) as u16 {
        let peer = SocketAddr::from(([10, 0, 1, 1], 1000 + i));
        let pong = Message {
            tid: Vec::new(),
            body: Body::Response(Response {
                id: spread(i as u8),
                ..Response::default()
            }),
            ip: Some(external),
            read_only: false,
        };
        // Each answers a ping of ours: the one host probes once at a time,
        // so ping, answer, and again.
        n.add_node(peer, now);
        if let Some((_, ping)) = answers(&mut n).into_iter().next() {
            let pong = Message {
                tid: ping.tid,
                ..pong
            };
            n.handle(now, peer, &pong.encode());
        }
    }
    assert_eq!(n.id(), before, "one voter, one vote");
}

fn v6_node(i: u16) -> NodeInfo {
    NodeInfo {
        id: spread(i as u8),
        addr: SocketAddr::new(
            std::net::Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 1).into(),
            6881,
        ),
    }
}

fn response(message: Message) -> Response {
    match message.body {
        Body::Response(r) => r,
        other => panic!("not a response: {other:?}"),
    }
}

#[test]
fn a_want_for_the_other_family_is_answered_from_the_sibling_nodes_table() {
    let now = Instant::now();
    let mut n = node(Config::default(), now);
    let mut sibling: Vec<NodeInfo> = (1..=20).map(v6_node).collect();
    // Nodes of our own family in the sibling's list are not its to give.
    sibling.push(NodeInfo {
        id: NodeId([9; 20]),
        addr: addr("10.0.0.9:6881"),
    });
    n.set_other_family(sibling.clone());
    let target = spread(7);
    let find = |want| Query::FindNode {
        id: NodeId([1; 20]),
        target,
        want,
    };
    let asker = addr("127.0.0.4:1");

    n.handle(now, asker, &query(b"1", find(Want { v4: true, v6: true })));
    let both = response(answer_to(&mut n, asker));
    let mut closest: Vec<NodeInfo> = sibling[..20].to_vec();
    closest.sort_by_key(|x| x.id.distance(&target));
    assert_eq!(both.nodes6, closest[..8]);
    assert!(both.nodes.iter().all(|x| x.addr.is_ipv4()));

    n.handle(
        now,
        asker,
        &query(
            b"2",
            find(Want {
                v4: false,
                v6: true,
            }),
        ),
    );
    let v6_only = response(answer_to(&mut n, asker));
    assert_eq!((v6_only.nodes.len(), v6_only.nodes6.len()), (0, 8));

    // Without `want`, a node gives its own family alone.
    n.handle(now, asker, &query(b"3", find(Want::default())));
    assert!(response(answer_to(&mut n, asker)).nodes6.is_empty());
}

#[test]
fn an_ipv6_answer_with_values_and_both_families_asked_for_stays_under_1500_bytes() {
    let now = Instant::now();
    let mut n = node(
        Config {
            ipv6: true,
            ..Config::default()
        },
        now,
    );
    n.set_other_family(
        (0..100u32)
            .map(|i| NodeInfo {
                id: spread(i as u8),
                addr: SocketAddr::new(std::net::Ipv4Addr::from(0x0a00_0000 + i).into(), 6881),
            })
            .collect(),
    );
    // Our own table full near the hash: nodes6 is eight nodes long.
    for i in 0..40u16 {
        n.table.answered(v6_node(i), now);
    }
    let hash = NodeId([5; 20]);
    let get = |id| Query::GetPeers {
        id: NodeId([id; 20]),
        info_hash: hash,
        want: Want { v4: true, v6: true },
    };
    for i in 1..=300u16 {
        let from = SocketAddr::new(
            std::net::Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 1).into(),
            6881,
        );
        n.handle(now, from, &query(b"g", get(1)));
        let message = answer_to(&mut n, from);
        if i == 1 {
            // No values yet: both families' nodes.
            assert_eq!(response(message.clone()).nodes.len(), 8);
        }
        let token = token_of(&message);
        n.handle(now, from, &query(b"a", announce(1, hash, 6881, token)));
        answers(&mut n);
    }
    let asker = addr("[::1]:1");
    n.handle(now, asker, &query(b"q", get(4)));
    let raw = std::iter::from_fn(|| n.poll_transmit())
        .find(|t| t.to == asker && !t.packet.windows(4).any(|w| w == b"ping"))
        .expect("answer");
    assert!(raw.packet.len() <= 1500, "{} bytes", raw.packet.len());
    let r = response(Message::decode(&raw.packet).expect("valid"));
    assert_eq!(r.values.len(), VALUES_PER_ANSWER);
    assert_eq!(r.nodes6.len(), 8);
}

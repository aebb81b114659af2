use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use dht::{Announce, Config, Dht, Found, NodeId};

fn local(i: u32) -> SocketAddr {
    // 127.0.1.x: every node its own address, as across hosts.
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x7f00_0100 + i)), 0)
}

async fn swarm(count: u32) -> Vec<Dht> {
    let first = Dht::bind(local(1), Config::default()).await.expect("bind");
    let bootstrap = vec![first.local_addr()];
    let mut nodes = vec![first];
    for i in 2..=count {
        let config = Config {
            bootstrap: bootstrap.clone(),
            ..Config::default()
        };
        nodes.push(Dht::bind(local(i), config).await.expect("bind"));
    }
    nodes
}

/// Waits until every node knows at least `want` others: bootstrapped.
/// (A node need not know all of a small network: those that joined after
/// it and never queried it may be missing.)
async fn settle(nodes: &[Dht], want: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut smallest = usize::MAX;
        let mut sizes = Vec::new();
        for node in nodes {
            let (_, stats) = node.stats().await.expect("running");
            smallest = smallest.min(stats.nodes);
            sizes.push((stats.nodes, stats.buckets));
        }
        if smallest >= want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tables stay small: {smallest} {sizes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn finish(
    mut found: tokio::sync::mpsc::UnboundedReceiver<Found>,
) -> (Vec<SocketAddr>, dht::LookupDone) {
    let mut peers = Vec::new();
    let deadline = Duration::from_secs(30);
    loop {
        match tokio::time::timeout(deadline, found.recv()).await {
            Ok(Some(Found::Peers(more))) => peers.extend(more),
            Ok(Some(Found::Done(done))) => return (peers, done),
            Ok(None) => panic!("the node stopped"),
            Err(_) => panic!("the lookup did not end in {deadline:?}"),
        }
    }
}

#[tokio::test]
async fn fifty_nodes_on_loopback_find_an_announced_peer() {
    let nodes = swarm(50).await;
    settle(&nodes, 4).await;
    let hash = NodeId([0xab; 20]);
    let (_, done) = finish(nodes[10].get_peers(hash, Some(Announce::Port(51413))).await).await;
    assert!(done.announced >= 4, "announced to {} nodes", done.announced);
    let expected = SocketAddr::new(nodes[10].local_addr().ip(), 51413);
    for seeker in [20, 30, 49] {
        let (peers, _) = finish(nodes[seeker].get_peers(hash, None).await).await;
        assert_eq!(peers, vec![expected], "node {seeker}");
    }
    // The table survives a restart: a node built from the saved state
    // knows its nodes before it hears from anyone.
    let saved = nodes[5].saved().await.expect("running");
    let decoded = dht::Saved::decode(&saved.encode()).expect("round trip");
    assert!(
        decoded.nodes.len() >= 4,
        "{} nodes saved",
        decoded.nodes.len()
    );
    let reborn = Dht::bind(
        local(200),
        Config {
            id: decoded.id,
            known: decoded.nodes,
            ..Config::default()
        },
    )
    .await
    .expect("bind");
    settle(std::slice::from_ref(&reborn), 4).await;
    let (peers, _) = finish(reborn.get_peers(hash, None).await).await;
    assert_eq!(peers, vec![expected]);
}

#[tokio::test]
async fn implied_port_announces_the_dht_port() {
    let nodes = swarm(12).await;
    settle(&nodes, 4).await;
    let hash = NodeId([0x11; 20]);
    finish(nodes[3].get_peers(hash, Some(Announce::Implied)).await).await;
    let (peers, _) = finish(nodes[7].get_peers(hash, None).await).await;
    assert_eq!(peers, vec![nodes[3].local_addr()]);
}

/// An IPv4 node paired with an IPv6 one answers a query that wants both
/// families with IPv6 nodes too (BEP 32), as a dual-stack node does.
#[tokio::test]
async fn a_paired_ipv4_node_answers_want_n6_from_its_ipv6_sibling() {
    let v4 = Dht::bind(local(200), Config::default())
        .await
        .expect("bind");
    let v6_at = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0));
    let v6 = Dht::bind(v6_at, Config::default()).await.expect("bind ::1");
    // An IPv6 node that joins through the sibling: in its table soon.
    let joiner = Dht::bind(
        v6_at,
        Config {
            bootstrap: vec![v6.local_addr()],
            ..Config::default()
        },
    )
    .await
    .expect("bind ::1");
    settle(std::slice::from_ref(&v6), 1).await;
    let _pairing = v4.pair(&v6, Duration::from_millis(50));

    let asker = tokio::net::UdpSocket::bind(local(201)).await.expect("bind");
    let query = dht::Message {
        tid: b"aa".to_vec(),
        body: dht::krpc::Body::Query(dht::krpc::Query::FindNode {
            id: NodeId([7; 20]),
            target: NodeId([8; 20]),
            want: dht::krpc::Want { v4: true, v6: true },
        }),
        ip: None,
        read_only: true,
    }
    .encode();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut buf = vec![0; 1500];
    loop {
        asker.send_to(&query, v4.local_addr()).await.expect("send");
        if let Ok(Ok((len, _))) =
            tokio::time::timeout(Duration::from_millis(200), asker.recv_from(&mut buf)).await
        {
            let answer = dht::Message::decode(&buf[..len]).expect("valid KRPC");
            let dht::krpc::Body::Response(response) = answer.body else {
                panic!("not an answer: {answer:?}");
            };
            if response
                .nodes6
                .iter()
                .any(|n| n.addr == joiner.local_addr())
            {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the IPv4 node never gave its sibling's nodes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
